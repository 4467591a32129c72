-- Adoption A1: takes a database of the pre-cutter production shape (the earlier tool's:
-- the tables, fn_iu_create, fn_iu_enact, the two immutability triggers and the roles of
-- the seeds, governance tables without prev_hash/row_hash, no ledger trigger, no
-- schema_version) to exactly what V1__reference.sql installs, without rewriting or
-- losing a row. `cutter db upgrade` applies it in place of V1 when it finds that shape
-- and records it as version 1 under this name; V2 and later then apply as everywhere.
--
-- Safe on a live database: nothing here rewrites a table. The columns added are
-- nullable without a default (a catalog change only); the functions added are the
-- reference's own text (a test compares every function of an adopted database with a
-- fresh install's); the grants are V1's. The runner sets lock_timeout first, so a step
-- that cannot get its lock gives up instead of queueing production behind it. The
-- indexes on the large tables are built after this transaction, CONCURRENTLY (the
-- `cutter:concurrent-index` sections at the end). Idempotent. Never edit it: add a
-- migration.

-- Roles, as V1 creates them when missing (in production the DBA has created them).
DO $roles$
BEGIN
    IF NOT EXISTS (SELECT 1 FROM pg_catalog.pg_roles WHERE rolname = 'cutter_exec') THEN
        CREATE ROLE cutter_exec NOLOGIN;
    END IF;
    IF NOT EXISTS (SELECT 1 FROM pg_catalog.pg_roles WHERE rolname = 'cutter_verify') THEN
        CREATE ROLE cutter_verify NOLOGIN;
    END IF;
END
$roles$;

-- The version table the runner records into.
CREATE TABLE IF NOT EXISTS cutter_governance.schema_version (
    version      integer PRIMARY KEY,
    name         text NOT NULL,
    sha256       text NOT NULL,
    installed_at timestamptz NOT NULL DEFAULT now()
);

-- The hash-chain columns of the ledger. Rows written before cutter keep NULL here; V3
-- anchors them with one genesis entry per chain.
ALTER TABLE cutter_governance.cut_change_set
    ADD COLUMN IF NOT EXISTS prev_hash text, ADD COLUMN IF NOT EXISTS row_hash text;
ALTER TABLE cutter_governance.cut_change_set_affected_row
    ADD COLUMN IF NOT EXISTS prev_hash text, ADD COLUMN IF NOT EXISTS row_hash text;
ALTER TABLE cutter_governance.manifest_envelope
    ADD COLUMN IF NOT EXISTS prev_hash text, ADD COLUMN IF NOT EXISTS row_hash text;
ALTER TABLE cutter_governance.review_decision
    ADD COLUMN IF NOT EXISTS prev_hash text, ADD COLUMN IF NOT EXISTS row_hash text;
ALTER TABLE cutter_governance.verify_result
    ADD COLUMN IF NOT EXISTS prev_hash text, ADD COLUMN IF NOT EXISTS row_hash text;
ALTER TABLE cutter_governance.dot_pair_signature
    ADD COLUMN IF NOT EXISTS prev_hash text, ADD COLUMN IF NOT EXISTS row_hash text;

-- The reference vocabulary codes the document cutter emits; codes of the target's own
-- are kept.
INSERT INTO vocab.unit_kind (code, label) VALUES
    ('law_unit', 'Unit of a legal document'),
    ('document_root', 'Root of a legal document')
    ON CONFLICT (code) DO NOTHING;

INSERT INTO vocab.section_type (code, label) VALUES
    ('preamble', 'Lời nói đầu'),
    ('part', 'Phần'),
    ('chapter', 'Chương'),
    ('section', 'Mục'),
    ('article', 'Điều'),
    ('clause', 'Khoản'),
    ('point', 'Điểm')
    ON CONFLICT (code) DO NOTHING;

INSERT INTO vocab.publication_type (code, label) VALUES
    ('constitution', 'Hiến pháp'),
    ('law', 'Luật'),
    ('decree', 'Nghị định'),
    ('circular', 'Thông tư'),
    ('resolution', 'Nghị quyết'),
    ('explicit', 'Explicitly typed publication')
    ON CONFLICT (code) DO NOTHING;


-- ---------------------------------------------------------------------------------
-- The helpers and the functions the earlier tool lacked, as V1 defines them.
-- ---------------------------------------------------------------------------------


-- The code of a vocabulary value given as `code` or as `vocab.<vocab>.code`.
CREATE OR REPLACE FUNCTION public.fn_vocab_code(p_vocab text, p_value text) RETURNS text
LANGUAGE sql IMMUTABLE PARALLEL SAFE
RETURN CASE
    WHEN pg_catalog.starts_with(p_value, 'vocab.' || p_vocab || '.')
        THEN pg_catalog.substr(p_value, pg_catalog.length(p_vocab) + 8)
    ELSE p_value
END;

-- "a, b, c": the codes of one vocabulary, for error messages.
CREATE OR REPLACE FUNCTION public.fn_vocab_choices(p_vocab text) RETURNS text
LANGUAGE sql STABLE
SET search_path = pg_catalog, pg_temp
AS $fn$
    SELECT coalesce(pg_catalog.string_agg(code, ', ' ORDER BY code), '(empty vocabulary)')
    FROM (SELECT code FROM vocab.unit_kind WHERE p_vocab = 'unit_kind'
          UNION ALL SELECT code FROM vocab.section_type WHERE p_vocab = 'section_type'
          UNION ALL SELECT code FROM vocab.publication_type WHERE p_vocab = 'publication_type') v
$fn$;


-- ---------------------------------------------------------------------------------
-- fn_iu_create_batch: the same contract, set-based, for one batch of a cut plan.
-- Arrays are parallel (element i of each is plan row p_first_row + i - 1). Validates
-- the whole batch first and raises on the first violating row in plan order, naming
-- it (DETAIL 'plan row N'); then one INSERT ... SELECT into both tables.
-- ---------------------------------------------------------------------------------

CREATE OR REPLACE FUNCTION public.fn_iu_create_batch(
    p_change_set_id     text,
    p_document_id       text,
    p_source_version_id text,
    p_first_row         bigint,
    p_canonical_address text[],
    p_title             text[],
    p_body              text[],
    p_actor             text[],
    p_unit_kind         text[],
    p_section_type      text[],
    p_publication_type  text[],
    p_owner_ref         text[],
    OUT created  bigint,
    OUT first_id bigint,
    OUT last_id  bigint)
LANGUAGE plpgsql
SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $fn$
DECLARE
    v_n   integer := coalesce(cardinality(p_canonical_address), 0);
    v_bad record;
BEGIN
    IF p_change_set_id IS NULL OR btrim(p_change_set_id) = ''
       OR p_document_id IS NULL OR btrim(p_document_id) = ''
       OR p_source_version_id IS NULL OR btrim(p_source_version_id) = '' THEN
        RAISE EXCEPTION 'change_set_id, document_id and source_version_id must not be empty'
            USING ERRCODE = 'check_violation';
    END IF;
    IF p_first_row IS NULL OR p_first_row < 1 THEN
        RAISE EXCEPTION 'p_first_row must be >= 1' USING ERRCODE = 'invalid_parameter_value';
    END IF;
    IF coalesce(cardinality(p_title), 0) <> v_n OR coalesce(cardinality(p_body), 0) <> v_n
       OR coalesce(cardinality(p_actor), 0) <> v_n OR coalesce(cardinality(p_unit_kind), 0) <> v_n
       OR coalesce(cardinality(p_section_type), 0) <> v_n
       OR coalesce(cardinality(p_publication_type), 0) <> v_n
       OR coalesce(cardinality(p_owner_ref), 0) <> v_n THEN
        RAISE EXCEPTION 'batch arrays have unequal lengths' USING ERRCODE = 'invalid_parameter_value';
    END IF;
    IF v_n = 0 THEN
        created := 0;
        RETURN;
    END IF;

    SELECT u.ord, u.addr, c.problem, c.errcode, c.col
      INTO v_bad
      FROM ROWS FROM (unnest(p_canonical_address), unnest(p_title), unnest(p_body),
                      unnest(p_actor), unnest(p_unit_kind), unnest(p_section_type),
                      unnest(p_publication_type))
           WITH ORDINALITY AS u(addr, title, body, actor, kind, st, pub, ord)
      LEFT JOIN vocab.unit_kind k ON k.code = public.fn_vocab_code('unit_kind', u.kind)
      LEFT JOIN vocab.section_type s ON s.code = public.fn_vocab_code('section_type', u.st)
      LEFT JOIN vocab.publication_type t ON t.code = public.fn_vocab_code('publication_type', u.pub)
      LEFT JOIN LATERAL (
            SELECT e.id FROM public.information_unit e
             WHERE e.canonical_address = u.addr AND e.lifecycle_status <> 'withdrawn'
             LIMIT 1) ex ON true
      CROSS JOIN LATERAL (SELECT
            CASE
                WHEN u.addr IS NULL OR btrim(u.addr) = '' THEN 'canonical_address: must not be empty'
                WHEN u.title IS NULL OR btrim(u.title) = '' THEN 'title: must not be empty'
                WHEN u.body IS NULL THEN 'body: must not be null'
                WHEN u.actor IS NULL OR btrim(u.actor) = '' THEN 'actor: must not be empty'
                WHEN k.code IS NULL THEN format('unit_kind: %s does not resolve in vocab.unit_kind; choose: %s',
                                                quote_nullable(u.kind), public.fn_vocab_choices('unit_kind'))
                WHEN u.st IS NULL THEN format('section_type: Multiple, choose: %s',
                                              public.fn_vocab_choices('section_type'))
                WHEN s.code IS NULL THEN format('section_type: %s does not resolve in vocab.section_type; choose: %s',
                                                quote_literal(u.st), public.fn_vocab_choices('section_type'))
                WHEN t.code IS NULL THEN format('publication_type: %s does not resolve in vocab.publication_type; choose: %s',
                                                quote_nullable(u.pub), public.fn_vocab_choices('publication_type'))
                WHEN ex.id IS NOT NULL THEN format('canonical_address: already exists as information_unit id %s', ex.id)
            END AS problem,
            CASE
                WHEN u.addr IS NULL OR btrim(u.addr) = '' OR u.title IS NULL OR btrim(u.title) = ''
                     THEN '23514'
                WHEN u.body IS NULL THEN '22004'
                WHEN u.actor IS NULL OR btrim(u.actor) = '' THEN '23514'
                WHEN k.code IS NULL THEN '23503'
                WHEN u.st IS NULL THEN '22004'
                WHEN s.code IS NULL OR t.code IS NULL THEN '23503'
                ELSE '23505'
            END AS errcode,
            CASE
                WHEN u.addr IS NULL OR btrim(u.addr) = '' THEN 'canonical_address'
                WHEN u.title IS NULL OR btrim(u.title) = '' THEN 'title'
                WHEN u.body IS NULL THEN 'body'
                WHEN u.actor IS NULL OR btrim(u.actor) = '' THEN 'actor'
                WHEN k.code IS NULL THEN 'unit_kind'
                WHEN u.st IS NULL OR s.code IS NULL THEN 'section_type'
                WHEN t.code IS NULL THEN 'publication_type'
                ELSE 'canonical_address'
            END AS col) c
     WHERE c.problem IS NOT NULL
     ORDER BY u.ord
     LIMIT 1;

    IF v_bad.ord IS NOT NULL THEN
        RAISE EXCEPTION 'plan row % (canonical_address %): %',
                p_first_row + v_bad.ord - 1, quote_nullable(left(v_bad.addr, 200)), v_bad.problem
            USING ERRCODE = v_bad.errcode, COLUMN = v_bad.col,
                  DETAIL = format('plan row %s', p_first_row + v_bad.ord - 1);
    END IF;

    -- Duplicates inside the batch (a validated plan has none; the unique index would
    -- catch them too, without naming the row).
    SELECT d.ord, d.addr INTO v_bad
      FROM (SELECT u.addr, u.ord, row_number() OVER (PARTITION BY u.addr ORDER BY u.ord) AS k
              FROM unnest(p_canonical_address) WITH ORDINALITY AS u(addr, ord)) d
     WHERE d.k > 1 ORDER BY d.ord LIMIT 1;
    IF v_bad.ord IS NOT NULL THEN
        RAISE EXCEPTION 'plan row % (canonical_address %): canonical_address: duplicate inside the plan',
                p_first_row + v_bad.ord - 1, quote_literal(left(v_bad.addr, 200))
            USING ERRCODE = 'unique_violation', COLUMN = 'canonical_address',
                  DETAIL = format('plan row %s', p_first_row + v_bad.ord - 1);
    END IF;

    WITH u AS (
        SELECT * FROM ROWS FROM (unnest(p_canonical_address), unnest(p_title), unnest(p_body),
                                 unnest(p_actor), unnest(p_unit_kind), unnest(p_section_type),
                                 unnest(p_publication_type), unnest(p_owner_ref))
               WITH ORDINALITY AS u(addr, title, body, actor, kind, st, pub, owner, ord)
    ), ins AS (
        INSERT INTO public.information_unit
            (canonical_address, title, unit_kind_ref, identity_profile, publication_type, owner_ref,
             document_id, source_version_id, lifecycle_status, change_set_id, created_by)
        SELECT u.addr, u.title, 'vocab.unit_kind.' || public.fn_vocab_code('unit_kind', u.kind),
               jsonb_build_object('primary_section_type_ref',
                                  'vocab.section_type.' || public.fn_vocab_code('section_type', u.st)),
               public.fn_vocab_code('publication_type', u.pub), u.owner,
               p_document_id, p_source_version_id, 'draft', p_change_set_id, u.actor
          FROM u ORDER BY u.ord
        RETURNING id, canonical_address
    ), ver AS (
        INSERT INTO public.unit_version
            (information_unit_id, version_no, body, body_sha256, lifecycle_status, created_by)
        SELECT ins.id, 1, u.body, encode(sha256(convert_to(u.body, 'UTF8')), 'hex'), 'draft', u.actor
          FROM ins JOIN u ON u.addr = ins.canonical_address
         ORDER BY ins.id
        RETURNING information_unit_id
    )
    SELECT count(*), min(ver.information_unit_id), max(ver.information_unit_id)
      INTO created, first_id, last_id
      FROM ver;
END
$fn$;


-- ---------------------------------------------------------------------------------
-- Compensation A. Soft revert (default): the draft units of one change set become
-- `withdrawn`, lineage kept, one lifecycle log row each. Refuses, naming them, if any
-- unit of the change set is enacted. Hard delete: only while every unit is draft.
-- ---------------------------------------------------------------------------------

CREATE OR REPLACE FUNCTION public.fn_iu_withdraw(p_change_set_id text, p_run_id text, p_actor text)
RETURNS bigint
LANGUAGE plpgsql
SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $fn$
DECLARE
    v_enacted bigint;
    v_names   text;
    v_n       bigint;
BEGIN
    IF p_change_set_id IS NULL OR btrim(p_change_set_id) = ''
       OR p_run_id IS NULL OR btrim(p_run_id) = '' OR p_actor IS NULL OR btrim(p_actor) = '' THEN
        RAISE EXCEPTION 'change_set_id, run_id and actor must not be empty' USING ERRCODE = 'check_violation';
    END IF;
    PERFORM 1 FROM public.information_unit iu WHERE iu.change_set_id = p_change_set_id FOR UPDATE;
    SELECT count(*) INTO v_enacted FROM public.information_unit iu
     WHERE iu.change_set_id = p_change_set_id AND iu.lifecycle_status = 'enacted';
    IF v_enacted > 0 THEN
        SELECT string_agg(format('id %s (%s)', x.id, quote_literal(x.canonical_address)), ', ' ORDER BY x.id)
          INTO v_names
          FROM (SELECT iu.id, iu.canonical_address FROM public.information_unit iu
                 WHERE iu.change_set_id = p_change_set_id AND iu.lifecycle_status = 'enacted'
                 ORDER BY iu.id LIMIT 20) x;
        RAISE EXCEPTION 'change set %: % unit(s) are enacted and immutable; nothing withdrawn: %',
                quote_literal(p_change_set_id), v_enacted, v_names
            USING ERRCODE = 'object_not_in_prerequisite_state', SCHEMA = 'public',
                  TABLE = 'information_unit',
                  HINT = 'enacted units cannot be reverted by compensation A; escalate (SG_3)';
    END IF;

    WITH w AS (
        UPDATE public.information_unit iu
           SET lifecycle_status = 'withdrawn', updated_at = now()
         WHERE iu.change_set_id = p_change_set_id AND iu.lifecycle_status = 'draft'
        RETURNING iu.id
    ), v AS (
        UPDATE public.unit_version uv
           SET lifecycle_status = 'withdrawn'
          FROM w
         WHERE uv.information_unit_id = w.id AND uv.lifecycle_status = 'draft'
        RETURNING uv.id
    ), l AS (
        INSERT INTO public.iu_lifecycle_log
            (information_unit_id, from_status, to_status, actor, run_id, change_set_id, reason)
        SELECT w.id, 'draft', 'withdrawn', p_actor, p_run_id, p_change_set_id, 'compensation A: soft revert'
          FROM w
        RETURNING 1
    )
    -- v and l run whether or not they are referenced.
    SELECT count(*) INTO v_n FROM w;
    RETURN v_n;
END
$fn$;

CREATE OR REPLACE FUNCTION public.fn_iu_hard_delete_draft(p_change_set_id text, p_run_id text, p_actor text)
RETURNS bigint
LANGUAGE plpgsql
SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $fn$
DECLARE
    v_other bigint;
    v_names text;
    v_logged bigint;
    v_n     bigint;
BEGIN
    IF p_change_set_id IS NULL OR btrim(p_change_set_id) = ''
       OR p_run_id IS NULL OR btrim(p_run_id) = '' OR p_actor IS NULL OR btrim(p_actor) = '' THEN
        RAISE EXCEPTION 'change_set_id, run_id and actor must not be empty' USING ERRCODE = 'check_violation';
    END IF;
    PERFORM 1 FROM public.information_unit iu WHERE iu.change_set_id = p_change_set_id FOR UPDATE;
    SELECT count(*) INTO v_other FROM public.information_unit iu
     WHERE iu.change_set_id = p_change_set_id AND iu.lifecycle_status <> 'draft';
    IF v_other > 0 THEN
        SELECT string_agg(format('id %s (%s) is %s', x.id, quote_literal(x.canonical_address), x.lifecycle_status),
                          ', ' ORDER BY x.id)
          INTO v_names
          FROM (SELECT iu.id, iu.canonical_address, iu.lifecycle_status FROM public.information_unit iu
                 WHERE iu.change_set_id = p_change_set_id AND iu.lifecycle_status <> 'draft'
                 ORDER BY iu.id LIMIT 20) x;
        RAISE EXCEPTION 'change set %: hard delete needs every unit to be draft, but % are not: %',
                quote_literal(p_change_set_id), v_other, v_names
            USING ERRCODE = 'object_not_in_prerequisite_state', SCHEMA = 'public',
                  TABLE = 'information_unit';
    END IF;
    SELECT count(*) INTO v_logged FROM public.iu_lifecycle_log g
      JOIN public.information_unit iu ON iu.id = g.information_unit_id
     WHERE iu.change_set_id = p_change_set_id;
    IF v_logged > 0 THEN
        RAISE EXCEPTION 'change set %: % lifecycle log row(s) reference its units; hard delete refused',
                quote_literal(p_change_set_id), v_logged
            USING ERRCODE = 'object_not_in_prerequisite_state', SCHEMA = 'public',
                  TABLE = 'iu_lifecycle_log';
    END IF;
    DELETE FROM public.unit_version uv
     USING public.information_unit iu
     WHERE uv.information_unit_id = iu.id AND iu.change_set_id = p_change_set_id;
    DELETE FROM public.information_unit iu WHERE iu.change_set_id = p_change_set_id;
    GET DIAGNOSTICS v_n = ROW_COUNT;
    RETURN v_n;
END
$fn$;


-- ---------------------------------------------------------------------------------
-- Privileges.
-- ---------------------------------------------------------------------------------

REVOKE ALL ON SCHEMA vocab FROM PUBLIC;
REVOKE ALL ON SCHEMA cutter_governance FROM PUBLIC;
GRANT USAGE ON SCHEMA public, vocab, cutter_governance TO cutter_exec, cutter_verify;

REVOKE ALL ON ALL TABLES IN SCHEMA vocab FROM PUBLIC, cutter_exec, cutter_verify;
REVOKE ALL ON ALL TABLES IN SCHEMA cutter_governance FROM PUBLIC, cutter_exec, cutter_verify;
REVOKE ALL ON public.information_unit, public.unit_version, public.iu_lifecycle_log
    FROM PUBLIC, cutter_exec, cutter_verify;

GRANT SELECT ON ALL TABLES IN SCHEMA vocab TO cutter_exec, cutter_verify;
GRANT SELECT ON public.information_unit, public.unit_version, public.iu_lifecycle_log
    TO cutter_exec, cutter_verify;
GRANT SELECT ON ALL TABLES IN SCHEMA cutter_governance TO cutter_exec, cutter_verify;
-- Reading the identity sequences (not advancing them: no USAGE, no UPDATE) lets either
-- role take a pg_dump of the mutation surface.
REVOKE ALL ON ALL SEQUENCES IN SCHEMA public FROM PUBLIC, cutter_exec, cutter_verify;
REVOKE ALL ON ALL SEQUENCES IN SCHEMA cutter_governance FROM PUBLIC, cutter_exec, cutter_verify;
GRANT SELECT ON ALL SEQUENCES IN SCHEMA public, cutter_governance TO cutter_exec, cutter_verify;
GRANT INSERT ON cutter_governance.cut_change_set, cutter_governance.cut_change_set_affected_row,
                cutter_governance.manifest_envelope, cutter_governance.review_decision,
                cutter_governance.verify_result, cutter_governance.dot_pair_signature
    TO cutter_exec;

REVOKE ALL ON FUNCTION public.fn_trg_enacted_immut() FROM PUBLIC;
REVOKE ALL ON FUNCTION public.fn_vocab_code(text, text) FROM PUBLIC;
REVOKE ALL ON FUNCTION public.fn_vocab_choices(text) FROM PUBLIC;
REVOKE ALL ON FUNCTION public.fn_iu_create(text, text, text, text, text, text, text, text, text, text, text) FROM PUBLIC;
REVOKE ALL ON FUNCTION public.fn_iu_create_batch(text, text, text, bigint, text[], text[], text[], text[], text[], text[], text[], text[]) FROM PUBLIC;
REVOKE ALL ON FUNCTION public.fn_iu_enact(bigint, text, text) FROM PUBLIC;
REVOKE ALL ON FUNCTION public.fn_iu_withdraw(text, text, text) FROM PUBLIC;
REVOKE ALL ON FUNCTION public.fn_iu_hard_delete_draft(text, text, text) FROM PUBLIC;

GRANT EXECUTE ON FUNCTION public.fn_iu_create(text, text, text, text, text, text, text, text, text, text, text) TO cutter_exec;
GRANT EXECUTE ON FUNCTION public.fn_iu_create_batch(text, text, text, bigint, text[], text[], text[], text[], text[], text[], text[], text[]) TO cutter_exec;
GRANT EXECUTE ON FUNCTION public.fn_iu_enact(bigint, text, text) TO cutter_exec;
GRANT EXECUTE ON FUNCTION public.fn_iu_withdraw(text, text, text) TO cutter_exec;
GRANT EXECUTE ON FUNCTION public.fn_iu_hard_delete_draft(text, text, text) TO cutter_exec;

-- ---------------------------------------------------------------------------------
-- Indexes on tables that can be large, built CONCURRENTLY after the transaction above
-- (writes go on meanwhile). One statement per section; the runner builds a missing one,
-- drops and rebuilds one left INVALID by an interrupted build, and leaves a valid one.
-- ---------------------------------------------------------------------------------

-- cutter:concurrent-index public.information_unit_change_set
CREATE INDEX CONCURRENTLY information_unit_change_set ON public.information_unit (change_set_id);

-- cutter:concurrent-index public.iu_lifecycle_log_unit
CREATE INDEX CONCURRENTLY iu_lifecycle_log_unit ON public.iu_lifecycle_log (information_unit_id);

-- cutter:concurrent-index cutter_governance.cut_change_set_affected_row_cs
CREATE INDEX CONCURRENTLY cut_change_set_affected_row_cs ON cutter_governance.cut_change_set_affected_row (change_set_id);
