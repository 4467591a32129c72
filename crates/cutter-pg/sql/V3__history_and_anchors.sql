-- Reference schema V3: who applied each migration, and the genesis anchors that bring
-- ledger rows written before cutter (an adopted database, A1) under `ledger verify`.
-- Applied by `cutter db upgrade` as the schema owner, in one transaction, with
-- lock_timeout set by the runner. Touches only cutter_governance's small tables: no
-- table of the mutation surface is rewritten or locked. Never edit it: add V4.
--
-- 1. schema_version.applied_by: the role that applied a migration (NULL for versions
--    recorded before V3).
-- 2. ledger_anchor: one genesis entry per hash chain whose table already held rows
--    without prev_hash/row_hash. It commits to those rows (ids up to through_id) by
--    their count and a digest over the columns they were written with
--    (fn_ledger_legacy_digest); anchor_hash is the sha256 of
--    `cutter-ledger-anchor-v1/<table>/<through_id>/<row_count>/<rows_sha256>`, and the
--    first row cutter appends to that chain has it as prev_hash. `ledger verify`
--    recomputes all of it: a legacy row changed, added or removed afterwards is found.
--    Append-only like the ledger.

ALTER TABLE cutter_governance.schema_version ADD COLUMN applied_by text;
ALTER TABLE cutter_governance.schema_version ALTER COLUMN applied_by SET DEFAULT current_user;

CREATE TABLE cutter_governance.ledger_anchor (
    ledger_table text PRIMARY KEY
                 CHECK (ledger_table IN ('cut_change_set', 'cut_change_set_affected_row',
                                         'manifest_envelope', 'review_decision',
                                         'verify_result', 'dot_pair_signature')),
    through_id   bigint NOT NULL,
    row_count    bigint NOT NULL CHECK (row_count >= 0),
    rows_sha256  text NOT NULL CHECK (rows_sha256 ~ '^[0-9a-f]{64}$'),
    anchor_hash  text NOT NULL CHECK (anchor_hash ~ '^[0-9a-f]{64}$'),
    anchored_at  timestamptz NOT NULL DEFAULT now(),
    anchored_by  text NOT NULL DEFAULT current_user
);

-- The digest of the rows of one ledger table with id <= p_through: sha256 over the
-- concatenated sha256 of each row's `jsonb_build_array(id, <payload columns>)::text`,
-- in id order. The payload columns are the chain's (cutter-governance's chain.rs), which
-- are the columns the earlier tool wrote. TimeZone and DateStyle are pinned, so every
-- reader computes the same digest.
CREATE FUNCTION cutter_governance.fn_ledger_legacy_digest(
    p_table   text,
    p_through bigint,
    OUT row_count   bigint,
    OUT rows_sha256 text)
LANGUAGE plpgsql
STABLE
SET search_path = pg_catalog, pg_temp
SET TimeZone = 'UTC'
SET DateStyle = 'ISO, YMD'
AS $fn$
DECLARE
    v_cols text;
BEGIN
    v_cols := CASE p_table
        WHEN 'cut_change_set' THEN
            'change_set_id, run_id, document_id, source_version_id, plan_digest, unit_count, created_at'
        WHEN 'cut_change_set_affected_row' THEN
            'change_set_id, information_unit_id, canonical_address, body_sha256, created_at'
        WHEN 'manifest_envelope' THEN
            'change_set_id, run_id, plan_digest, manifest, created_at'
        WHEN 'review_decision' THEN
            'run_id, change_set_id, decision, payload, actor, created_at'
        WHEN 'verify_result' THEN
            'run_id, change_set_id, checked, matched, mismatched, verdict, details, created_at'
        WHEN 'dot_pair_signature' THEN
            'run_id, gate, signer_fpr, statement, signature, created_at'
    END;
    IF v_cols IS NULL THEN
        RAISE EXCEPTION '%: not a ledger table', quote_nullable(p_table)
            USING ERRCODE = 'invalid_parameter_value';
    END IF;
    EXECUTE format(
        'SELECT count(*), encode(sha256(coalesce(string_agg(sha256(convert_to(jsonb_build_array(id, %s)::text, ''UTF8'')), ''''::bytea ORDER BY id), ''''::bytea)), ''hex'') '
        'FROM cutter_governance.%I WHERE id <= $1', v_cols, p_table)
        INTO row_count, rows_sha256
        USING p_through;
END
$fn$;

-- The genesis entries: for each chain whose table holds rows without row_hash. Such
-- rows must all come before the first chained row (an earlier cutter refuses to append
-- after them, so anything else is a table edited by hand: refuse, naming it).
DO $anchor$
DECLARE
    t         text;
    v_through bigint;
    v_chained bigint;
    d         record;
BEGIN
    FOREACH t IN ARRAY ARRAY['cut_change_set', 'cut_change_set_affected_row', 'manifest_envelope',
                             'review_decision', 'verify_result', 'dot_pair_signature']
    LOOP
        EXECUTE format('SELECT max(id) FILTER (WHERE row_hash IS NULL), '
                       'min(id) FILTER (WHERE row_hash IS NOT NULL) FROM cutter_governance.%I', t)
            INTO v_through, v_chained;
        CONTINUE WHEN v_through IS NULL;
        IF v_chained IS NOT NULL AND v_chained < v_through THEN
            RAISE EXCEPTION 'cutter_governance.%: row id % has no row_hash but comes after the chained row id %; '
                            'the table was edited outside cutter, so its rows cannot be anchored',
                    t, v_through, v_chained
                USING ERRCODE = 'object_not_in_prerequisite_state', SCHEMA = 'cutter_governance', TABLE = t;
        END IF;
        SELECT * INTO d FROM cutter_governance.fn_ledger_legacy_digest(t, v_through);
        INSERT INTO cutter_governance.ledger_anchor
            (ledger_table, through_id, row_count, rows_sha256, anchor_hash)
        VALUES (t, v_through, d.row_count, d.rows_sha256,
                encode(sha256(convert_to(format('cutter-ledger-anchor-v1/%s/%s/%s/%s',
                                                t, v_through, d.row_count, d.rows_sha256), 'UTF8')), 'hex'));
    END LOOP;
END
$anchor$;

CREATE TRIGGER trg_ledger_append_only
    BEFORE UPDATE OR DELETE OR TRUNCATE ON cutter_governance.ledger_anchor
    FOR EACH STATEMENT EXECUTE FUNCTION cutter_governance.fn_ledger_append_only();

REVOKE ALL ON cutter_governance.ledger_anchor FROM PUBLIC, cutter_exec, cutter_verify;
GRANT SELECT ON cutter_governance.ledger_anchor TO cutter_exec, cutter_verify;
REVOKE ALL ON FUNCTION cutter_governance.fn_ledger_legacy_digest(text, bigint) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION cutter_governance.fn_ledger_legacy_digest(text, bigint) TO cutter_exec, cutter_verify;
