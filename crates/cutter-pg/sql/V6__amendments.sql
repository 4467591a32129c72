-- Reference schema V6: amendments. Applied by `cutter db upgrade` as the schema owner.
-- Never edit it: add V7.
--
-- An amendment run writes a consolidated text over a document that is already enacted.
-- Enacted units and versions never change (trg_*_enacted_immut), so an amendment only
-- adds rows:
--   * a changed article (body or title): a new unit_version, version_no + 1, carrying
--     its own change set, title and source version;
--   * a new article: a new information_unit with its version 1 (fn_iu_create_batch);
--   * an article no longer in the text: a repeal, recorded as a new unit_version with
--     `repeal = true` and an empty body. No new table: the repeal is one more version
--     of the unit, so it is drafted, verified, enacted, withdrawn and backed up exactly
--     like a new wording, and the mutation surface stays what it was.
-- The new columns are NULL on every row written before V6 (and on a unit's version 1,
-- which inherits its unit's change set, title and source version): nullable columns
-- without a default add no table rewrite, nothing is backfilled (an enacted row is
-- never UPDATEd), and the one CHECK is added NOT VALID and validated after the
-- transaction (`-- cutter:validate-constraint`), under a lock that blocks no reader or
-- writer.
--
-- The current text of a unit (title and body) is defined in one place:
-- public.unit_current_text, below.

ALTER TABLE public.unit_version
    ADD COLUMN change_set_id     text,
    ADD COLUMN title             text,
    ADD COLUMN source_version_id text,
    ADD COLUMN repeal            boolean;

ALTER TABLE public.unit_version
    ADD CONSTRAINT unit_version_amendment_shape CHECK (
        (change_set_id IS NULL AND title IS NULL AND source_version_id IS NULL AND repeal IS NULL)
        OR (change_set_id IS NOT NULL AND btrim(change_set_id) <> ''
            AND source_version_id IS NOT NULL AND btrim(source_version_id) <> ''
            AND repeal IS NOT NULL
            AND ((NOT repeal AND title IS NOT NULL AND btrim(title) <> '')
                 OR (repeal AND title IS NULL AND body = '')))
    ) NOT VALID;

-- ---------------------------------------------------------------------------------
-- The current text of a unit: its enacted version with the highest version_no, with
-- the title that version carries (or, for a version written with its unit, the unit's
-- title). A unit whose current version is a repeal is listed with repealed = true and
-- an empty body: it is no longer in its document's text. Draft and withdrawn units and
-- versions are never current. Every reader of "what is in force" reads this view.
-- ---------------------------------------------------------------------------------

CREATE VIEW public.unit_current_text AS
SELECT iu.id                                               AS information_unit_id,
       iu.canonical_address,
       iu.document_id,
       uv.id                                               AS unit_version_id,
       uv.version_no,
       coalesce(uv.title, iu.title)                        AS title,
       uv.body,
       uv.body_sha256,
       coalesce(uv.source_version_id, iu.source_version_id) AS source_version_id,
       coalesce(uv.change_set_id, iu.change_set_id)        AS change_set_id,
       coalesce(uv.repeal, false)                          AS repealed
  FROM public.information_unit iu
  CROSS JOIN LATERAL (
        SELECT v.id, v.version_no, v.title, v.body, v.body_sha256, v.source_version_id,
               v.change_set_id, v.repeal
          FROM public.unit_version v
         WHERE v.information_unit_id = iu.id AND v.lifecycle_status = 'enacted'
         ORDER BY v.version_no DESC
         LIMIT 1) uv
 WHERE iu.lifecycle_status = 'enacted';

COMMENT ON VIEW public.unit_current_text IS
    'The current text of every enacted unit: its enacted version with the highest version_no '
    '(title from that version, else the unit). repealed = true: no longer in the document''s text.';

-- ---------------------------------------------------------------------------------
-- fn_uv_amend_batch: new draft versions of enacted units of one document, for one batch
-- of an amendment run (arrays parallel; element i is plan row p_row[i], 0 for a repeal,
-- which follows the plan). A repeal has p_repeal[i] = true, no title and no body.
-- Refuses, naming the row, a unit that is not an enacted unit of the document, or one
-- that already has a draft version (another run's amendment not yet enacted or
-- compensated).
-- ---------------------------------------------------------------------------------

CREATE FUNCTION public.fn_uv_amend_batch(
    p_change_set_id     text,
    p_document_id       text,
    p_source_version_id text,
    p_row               bigint[],
    p_unit_id           bigint[],
    p_title             text[],
    p_body              text[],
    p_actor             text[],
    p_repeal            boolean[])
RETURNS bigint
LANGUAGE plpgsql
SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $fn$
DECLARE
    v_n   integer := coalesce(cardinality(p_unit_id), 0);
    v_bad record;
    v_out bigint;
BEGIN
    IF p_change_set_id IS NULL OR btrim(p_change_set_id) = ''
       OR p_document_id IS NULL OR btrim(p_document_id) = ''
       OR p_source_version_id IS NULL OR btrim(p_source_version_id) = '' THEN
        RAISE EXCEPTION 'change_set_id, document_id and source_version_id must not be empty'
            USING ERRCODE = 'check_violation';
    END IF;
    IF coalesce(cardinality(p_row), 0) <> v_n OR coalesce(cardinality(p_title), 0) <> v_n
       OR coalesce(cardinality(p_body), 0) <> v_n OR coalesce(cardinality(p_actor), 0) <> v_n
       OR coalesce(cardinality(p_repeal), 0) <> v_n THEN
        RAISE EXCEPTION 'batch arrays have unequal lengths' USING ERRCODE = 'invalid_parameter_value';
    END IF;
    IF v_n = 0 THEN
        RETURN 0;
    END IF;

    PERFORM 1 FROM public.information_unit iu WHERE iu.id = ANY (p_unit_id) ORDER BY iu.id FOR SHARE;

    SELECT u.ord, u.row_no, u.uid, iu.canonical_address AS addr, c.problem, c.errcode
      INTO v_bad
      FROM ROWS FROM (unnest(p_row), unnest(p_unit_id), unnest(p_title), unnest(p_body),
                      unnest(p_actor), unnest(p_repeal))
           WITH ORDINALITY AS u(row_no, uid, title, body, actor, rep, ord)
      LEFT JOIN public.information_unit iu ON iu.id = u.uid
      CROSS JOIN LATERAL (SELECT
            CASE
                WHEN iu.id IS NULL THEN format('information_unit id %s does not exist', u.uid)
                WHEN iu.document_id <> p_document_id
                     THEN format('unit id %s belongs to document %s, not %s', iu.id,
                                 quote_literal(iu.document_id), quote_literal(p_document_id))
                WHEN iu.lifecycle_status <> 'enacted'
                     THEN format('unit id %s is %s; only enacted units are amended', iu.id, iu.lifecycle_status)
                WHEN u.rep IS NULL THEN 'repeal: must not be null'
                WHEN u.actor IS NULL OR btrim(u.actor) = '' THEN 'actor: must not be empty'
                WHEN NOT u.rep AND (u.title IS NULL OR btrim(u.title) = '') THEN 'title: must not be empty'
                WHEN NOT u.rep AND u.body IS NULL THEN 'body: must not be null'
                WHEN u.rep AND (u.title IS NOT NULL OR coalesce(u.body, '') <> '')
                     THEN 'a repeal carries no title and no body'
                WHEN EXISTS (SELECT 1 FROM public.unit_version d
                              WHERE d.information_unit_id = iu.id AND d.lifecycle_status = 'draft')
                     THEN format('unit id %s already has a draft version (of change set %s); enact or compensate that run first',
                                 iu.id, (SELECT coalesce(d.change_set_id, '(none)') FROM public.unit_version d
                                          WHERE d.information_unit_id = iu.id AND d.lifecycle_status = 'draft'
                                          ORDER BY d.version_no DESC LIMIT 1))
            END AS problem,
            CASE
                WHEN iu.id IS NULL THEN 'P0002'
                WHEN iu.document_id <> p_document_id OR iu.lifecycle_status <> 'enacted' THEN '55000'
                WHEN u.rep IS NULL OR (NOT u.rep AND u.body IS NULL) THEN '22004'
                WHEN u.actor IS NULL OR btrim(u.actor) = '' OR NOT u.rep THEN '23514'
                WHEN u.rep AND (u.title IS NOT NULL OR coalesce(u.body, '') <> '') THEN '22023'
                ELSE '55000'
            END AS errcode) c
     WHERE c.problem IS NOT NULL
     ORDER BY u.ord
     LIMIT 1;
    IF v_bad.ord IS NOT NULL THEN
        RAISE EXCEPTION 'plan row % (canonical_address %): %',
                v_bad.row_no, quote_nullable(left(v_bad.addr, 200)), v_bad.problem
            USING ERRCODE = v_bad.errcode, SCHEMA = 'public', TABLE = 'unit_version',
                  DETAIL = format('plan row %s', v_bad.row_no);
    END IF;

    SELECT d.uid INTO v_bad
      FROM (SELECT u.uid, count(*) AS k FROM unnest(p_unit_id) AS u(uid) GROUP BY u.uid) d
     WHERE d.k > 1 LIMIT 1;
    IF v_bad.uid IS NOT NULL THEN
        RAISE EXCEPTION 'unit id % appears more than once in the batch', v_bad.uid
            USING ERRCODE = 'unique_violation';
    END IF;

    WITH u AS (
        SELECT * FROM ROWS FROM (unnest(p_unit_id), unnest(p_title), unnest(p_body),
                                 unnest(p_actor), unnest(p_repeal))
               WITH ORDINALITY AS u(uid, title, body, actor, rep, ord)
    ), ins AS (
        INSERT INTO public.unit_version
            (information_unit_id, version_no, body, body_sha256, lifecycle_status, created_by,
             change_set_id, title, source_version_id, repeal)
        SELECT u.uid,
               (SELECT max(v.version_no) FROM public.unit_version v WHERE v.information_unit_id = u.uid) + 1,
               CASE WHEN u.rep THEN '' ELSE u.body END,
               encode(sha256(convert_to(CASE WHEN u.rep THEN '' ELSE u.body END, 'UTF8')), 'hex'),
               'draft', u.actor, p_change_set_id,
               CASE WHEN u.rep THEN NULL ELSE u.title END,
               p_source_version_id, u.rep
          FROM u ORDER BY u.ord
        RETURNING 1
    )
    SELECT count(*) INTO v_out FROM ins;
    RETURN v_out;
END
$fn$;

-- ---------------------------------------------------------------------------------
-- fn_uv_change_set_status: moves the draft versions one amendment run added (selected
-- by their change set) to `enacted` (lifecycle_enact) or `withdrawn` (compensation A,
-- soft revert: lineage kept, the previously enacted version stays current), one
-- lifecycle log row each. A withdrawal refuses, naming them, if any is enacted.
-- Returns the number of versions moved.
-- ---------------------------------------------------------------------------------

CREATE FUNCTION public.fn_uv_change_set_status(
    p_change_set_id text, p_to text, p_run_id text, p_actor text)
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
    IF p_change_set_id IS NULL OR btrim(p_change_set_id) = '' OR p_actor IS NULL OR btrim(p_actor) = ''
       OR (p_to = 'withdrawn' AND (p_run_id IS NULL OR btrim(p_run_id) = '')) THEN
        RAISE EXCEPTION 'change_set_id, actor (and for a withdrawal run_id) must not be empty'
            USING ERRCODE = 'check_violation';
    END IF;
    IF p_to IS NULL OR p_to NOT IN ('enacted', 'withdrawn') THEN
        RAISE EXCEPTION 'p_to %: draft versions become enacted or withdrawn', quote_nullable(p_to)
            USING ERRCODE = 'invalid_parameter_value';
    END IF;
    PERFORM 1 FROM public.unit_version uv WHERE uv.change_set_id = p_change_set_id ORDER BY uv.id FOR UPDATE;
    SELECT count(*) INTO v_enacted FROM public.unit_version uv
     WHERE uv.change_set_id = p_change_set_id AND uv.lifecycle_status = 'enacted';
    IF p_to = 'withdrawn' AND v_enacted > 0 THEN
        SELECT string_agg(format('unit id %s version %s', x.information_unit_id, x.version_no), ', '
                          ORDER BY x.information_unit_id)
          INTO v_names
          FROM (SELECT uv.information_unit_id, uv.version_no FROM public.unit_version uv
                 WHERE uv.change_set_id = p_change_set_id AND uv.lifecycle_status = 'enacted'
                 ORDER BY uv.information_unit_id LIMIT 20) x;
        RAISE EXCEPTION 'change set %: % version(s) are enacted and immutable; nothing withdrawn: %',
                quote_literal(p_change_set_id), v_enacted, v_names
            USING ERRCODE = 'object_not_in_prerequisite_state', SCHEMA = 'public',
                  TABLE = 'unit_version',
                  HINT = 'enacted versions cannot be reverted by compensation A; escalate (SG_3)';
    END IF;
    WITH m AS (
        UPDATE public.unit_version uv
           SET lifecycle_status = p_to
         WHERE uv.change_set_id = p_change_set_id AND uv.lifecycle_status = 'draft'
        RETURNING uv.information_unit_id, uv.version_no, uv.repeal
    ), l AS (
        INSERT INTO public.iu_lifecycle_log
            (information_unit_id, from_status, to_status, actor, run_id, change_set_id, reason)
        SELECT m.information_unit_id, 'draft', p_to, p_actor, p_run_id, p_change_set_id,
               CASE p_to WHEN 'enacted' THEN 'lifecycle_enact: ' ELSE 'compensation A: soft revert of ' END
               || CASE WHEN m.repeal THEN 'repeal' ELSE 'amended' END || ' version ' || m.version_no
          FROM m
        RETURNING 1
    )
    SELECT count(*) INTO v_n FROM m;
    RETURN v_n;
END
$fn$;

-- ---------------------------------------------------------------------------------
-- The run gate, for versions that carry their own change set: a new version, and its
-- enactment, need the approvals of the run that wrote it (the version's change set),
-- not of the run that first created its unit. Same triggers, same checks otherwise.
-- ---------------------------------------------------------------------------------

CREATE OR REPLACE FUNCTION public.fn_trg_run_gate() RETURNS trigger
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $fn$
DECLARE
    v_cs text;
    v_what text := format('%s.%s: %s', TG_TABLE_SCHEMA, TG_TABLE_NAME,
                          CASE TG_OP WHEN 'UPDATE' THEN 'enactment' ELSE TG_OP END);
BEGIN
    IF cutter_governance.fn_session_owns(TG_RELID) THEN
        RETURN NULL;
    END IF;
    -- Transition tables exist only for the statement's own operation, and the two
    -- tables have different columns: one query per case.
    IF TG_TABLE_NAME = 'information_unit' AND TG_OP = 'INSERT' THEN
        FOR v_cs IN SELECT DISTINCT n.change_set_id FROM new_rows n LOOP
            PERFORM cutter_governance.fn_assert_run_authorized(cutter_governance.fn_change_set_run(v_cs), v_what);
        END LOOP;
    ELSIF TG_TABLE_NAME = 'information_unit' THEN
        FOR v_cs IN SELECT DISTINCT n.change_set_id FROM new_rows n JOIN old_rows o ON o.id = n.id
                     WHERE n.lifecycle_status = 'enacted' AND o.lifecycle_status <> 'enacted' LOOP
            PERFORM cutter_governance.fn_assert_run_authorized(cutter_governance.fn_change_set_run(v_cs), v_what);
        END LOOP;
    ELSIF TG_OP = 'INSERT' THEN
        FOR v_cs IN SELECT DISTINCT coalesce(n.change_set_id, iu.change_set_id) FROM new_rows n
                      JOIN public.information_unit iu ON iu.id = n.information_unit_id LOOP
            PERFORM cutter_governance.fn_assert_run_authorized(cutter_governance.fn_change_set_run(v_cs), v_what);
        END LOOP;
    ELSE
        FOR v_cs IN SELECT DISTINCT coalesce(n.change_set_id, iu.change_set_id) FROM new_rows n
                      JOIN old_rows o ON o.id = n.id
                      JOIN public.information_unit iu ON iu.id = n.information_unit_id
                     WHERE n.lifecycle_status = 'enacted' AND o.lifecycle_status <> 'enacted' LOOP
            PERFORM cutter_governance.fn_assert_run_authorized(cutter_governance.fn_change_set_run(v_cs), v_what);
        END LOOP;
    END IF;
    RETURN NULL;
END
$fn$;

-- ---------------------------------------------------------------------------------
-- Privileges.
-- ---------------------------------------------------------------------------------

REVOKE ALL ON public.unit_current_text FROM PUBLIC;
GRANT SELECT ON public.unit_current_text TO cutter_exec, cutter_verify;

REVOKE ALL ON FUNCTION public.fn_uv_amend_batch(text, text, text, bigint[], bigint[], text[], text[], text[], boolean[]) FROM PUBLIC;
REVOKE ALL ON FUNCTION public.fn_uv_change_set_status(text, text, text, text) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION public.fn_uv_amend_batch(text, text, text, bigint[], bigint[], text[], text[], text[], boolean[]),
                          public.fn_uv_change_set_status(text, text, text, text)
    TO cutter_exec;

-- cutter:concurrent-index public.unit_version_change_set
CREATE INDEX CONCURRENTLY unit_version_change_set ON public.unit_version (change_set_id) WHERE change_set_id IS NOT NULL;

-- After the index: VALIDATE CONSTRAINT, outside the transaction (SHARE UPDATE EXCLUSIVE:
-- reads and writes go on while it scans).
-- cutter:validate-constraint public.unit_version unit_version_amendment_shape
