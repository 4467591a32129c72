-- Reference schema V2 (cutter-governance's migration G1): what the hash-chained ledger
-- needs on top of V1. Idempotent: applied by install_reference after V1, and by
-- `cutter_governance::install` to a target still at V1, as the owner of the
-- cutter_governance tables, any number of times. Never edit a released version: add V3.
--
-- 1. One chain per table: prev_hash is unique, so two writers can never fork a chain
--    (the second fails with unique_violation on <table>_chain and writes nothing).
-- 2. cutter_exec allocates row ids in bulk (the id is part of the row hash): USAGE on
--    the six identity sequences.
-- 3. Append-only for every role but the owner, also if someone grants UPDATE, DELETE or
--    TRUNCATE by mistake: a statement trigger refuses them unless the current role is
--    (a member of) the table's owner. The owner can still modify rows; verify_ledger
--    detects that.
-- 4. One manifest and one verify result per change set, one signature per gate per run
--    (cut_change_set.change_set_id is already unique, and leg_b_record writes a change
--    set's affected rows in the same transaction as its cut_change_set row).
-- 5. Lookups of review decisions by run, change set and claim key.

CREATE UNIQUE INDEX IF NOT EXISTS cut_change_set_chain
    ON cutter_governance.cut_change_set (prev_hash COLLATE "C");
CREATE UNIQUE INDEX IF NOT EXISTS cut_change_set_affected_row_chain
    ON cutter_governance.cut_change_set_affected_row (prev_hash COLLATE "C");
CREATE UNIQUE INDEX IF NOT EXISTS manifest_envelope_chain
    ON cutter_governance.manifest_envelope (prev_hash COLLATE "C");
CREATE UNIQUE INDEX IF NOT EXISTS review_decision_chain
    ON cutter_governance.review_decision (prev_hash COLLATE "C");
CREATE UNIQUE INDEX IF NOT EXISTS verify_result_chain
    ON cutter_governance.verify_result (prev_hash COLLATE "C");
CREATE UNIQUE INDEX IF NOT EXISTS dot_pair_signature_chain
    ON cutter_governance.dot_pair_signature (prev_hash COLLATE "C");

CREATE UNIQUE INDEX IF NOT EXISTS manifest_envelope_change_set
    ON cutter_governance.manifest_envelope (change_set_id);
CREATE UNIQUE INDEX IF NOT EXISTS verify_result_change_set
    ON cutter_governance.verify_result (change_set_id);
CREATE UNIQUE INDEX IF NOT EXISTS dot_pair_signature_run_gate
    ON cutter_governance.dot_pair_signature (run_id, gate);
CREATE INDEX IF NOT EXISTS review_decision_run
    ON cutter_governance.review_decision (run_id, decision);
CREATE INDEX IF NOT EXISTS review_decision_change_set
    ON cutter_governance.review_decision (change_set_id, decision);
CREATE INDEX IF NOT EXISTS review_decision_claim_key
    ON cutter_governance.review_decision ((payload ->> 'claim_key'))
    WHERE decision = 'claim';

DO $grants$
DECLARE
    t text;
BEGIN
    FOREACH t IN ARRAY ARRAY['cut_change_set', 'cut_change_set_affected_row', 'manifest_envelope',
                             'review_decision', 'verify_result', 'dot_pair_signature']
    LOOP
        EXECUTE format('GRANT USAGE ON SEQUENCE %s TO cutter_exec',
                       pg_catalog.pg_get_serial_sequence('cutter_governance.' || t, 'id'));
    END LOOP;
END
$grants$;

CREATE OR REPLACE FUNCTION cutter_governance.fn_ledger_append_only() RETURNS trigger
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $fn$
DECLARE
    v_owner oid;
BEGIN
    SELECT c.relowner INTO v_owner FROM pg_catalog.pg_class c WHERE c.oid = TG_RELID;
    IF NOT pg_catalog.pg_has_role(current_user, v_owner, 'MEMBER') THEN
        RAISE EXCEPTION '%.% is an append-only ledger: % by role % refused',
                TG_TABLE_SCHEMA, TG_TABLE_NAME, TG_OP, current_user
            USING ERRCODE = 'insufficient_privilege',
                  SCHEMA = TG_TABLE_SCHEMA, TABLE = TG_TABLE_NAME,
                  HINT = 'ledger rows are never changed; append a compensating review_decision instead';
    END IF;
    RETURN NULL;
END
$fn$;
REVOKE ALL ON FUNCTION cutter_governance.fn_ledger_append_only() FROM PUBLIC;

DO $triggers$
DECLARE
    t text;
BEGIN
    FOREACH t IN ARRAY ARRAY['cut_change_set', 'cut_change_set_affected_row', 'manifest_envelope',
                             'review_decision', 'verify_result', 'dot_pair_signature']
    LOOP
        IF NOT EXISTS (SELECT 1 FROM pg_catalog.pg_trigger g
                        WHERE g.tgrelid = ('cutter_governance.' || t)::regclass
                          AND g.tgname = 'trg_ledger_append_only') THEN
            EXECUTE format('CREATE TRIGGER trg_ledger_append_only '
                           'BEFORE UPDATE OR DELETE OR TRUNCATE ON cutter_governance.%I '
                           'FOR EACH STATEMENT EXECUTE FUNCTION cutter_governance.fn_ledger_append_only()', t);
        END IF;
    END LOOP;
END
$triggers$;
