-- Reference schema V4: a HOLD recorded in the database stops, for every role and every
-- state directory, the creation of units and versions and every enactment, until it is
-- released there. Applied by `cutter db upgrade` as the schema owner. Never edit it:
-- add V5.
--
-- A HOLD is the SG_3 escalation cutter appends to review_decision when a run fails
-- (decision 'sg3_escalation'); `cutter hold release` appends a 'hold_released'
-- decision whose payload lists the escalations it releases ("released": [ids]) and the
-- approvals that allowed it. The database cannot check the approvals' OpenPGP
-- signatures: `cutter ledger verify` re-verifies them, so a release appended by hand is
-- found. Compensation (withdrawing drafts, deleting drafts) goes on while held: it is
-- how a HOLD is resolved.
--
-- The guards are statement-level triggers (one check per statement, whatever its row
-- count) on information_unit and unit_version: any INSERT, and any UPDATE that moves a
-- row to 'enacted', is refused with SQLSTATE 55000 while a HOLD is unresolved.

CREATE FUNCTION cutter_governance.fn_unresolved_holds()
RETURNS TABLE (decision_id bigint, run_id text)
LANGUAGE sql
STABLE
SET search_path = pg_catalog, pg_temp
AS $fn$
    SELECT h.id, h.run_id
      FROM cutter_governance.review_decision h
     WHERE h.decision = 'sg3_escalation'
       AND NOT EXISTS (SELECT 1 FROM cutter_governance.review_decision r
                        WHERE r.decision = 'hold_released'
                          AND r.payload -> 'released' @> pg_catalog.to_jsonb(h.id))
     ORDER BY h.id
$fn$;

CREATE FUNCTION public.fn_trg_hold_guard() RETURNS trigger
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $fn$
DECLARE
    v_id  bigint;
    v_run text;
BEGIN
    IF TG_OP = 'UPDATE' THEN
        PERFORM 1 FROM new_rows n JOIN old_rows o ON o.id = n.id
         WHERE n.lifecycle_status = 'enacted' AND o.lifecycle_status <> 'enacted';
        IF NOT FOUND THEN
            RETURN NULL;
        END IF;
    END IF;
    SELECT h.decision_id, h.run_id INTO v_id, v_run
      FROM cutter_governance.fn_unresolved_holds() h LIMIT 1;
    IF FOUND THEN
        RAISE EXCEPTION '%.%: % refused: the database records an unresolved HOLD (SG_3 of run %, review_decision id %)',
                TG_TABLE_SCHEMA, TG_TABLE_NAME,
                CASE TG_OP WHEN 'UPDATE' THEN 'enactment' ELSE TG_OP END, v_run, v_id
            USING ERRCODE = 'object_not_in_prerequisite_state',
                  SCHEMA = TG_TABLE_SCHEMA, TABLE = TG_TABLE_NAME,
                  HINT = 'compensate the held run, then release the HOLD with `cutter hold release` and two approvals';
    END IF;
    RETURN NULL;
END
$fn$;

CREATE TRIGGER trg_iu_hold_guard_insert
    BEFORE INSERT ON public.information_unit
    FOR EACH STATEMENT EXECUTE FUNCTION public.fn_trg_hold_guard();
CREATE TRIGGER trg_iu_hold_guard_enact
    AFTER UPDATE ON public.information_unit
    REFERENCING OLD TABLE AS old_rows NEW TABLE AS new_rows
    FOR EACH STATEMENT EXECUTE FUNCTION public.fn_trg_hold_guard();
CREATE TRIGGER trg_uv_hold_guard_insert
    BEFORE INSERT ON public.unit_version
    FOR EACH STATEMENT EXECUTE FUNCTION public.fn_trg_hold_guard();
CREATE TRIGGER trg_uv_hold_guard_enact
    AFTER UPDATE ON public.unit_version
    REFERENCING OLD TABLE AS old_rows NEW TABLE AS new_rows
    FOR EACH STATEMENT EXECUTE FUNCTION public.fn_trg_hold_guard();

REVOKE ALL ON FUNCTION public.fn_trg_hold_guard() FROM PUBLIC;
REVOKE ALL ON FUNCTION cutter_governance.fn_unresolved_holds() FROM PUBLIC;
GRANT EXECUTE ON FUNCTION cutter_governance.fn_unresolved_holds() TO cutter_exec, cutter_verify;

-- cutter:concurrent-index cutter_governance.review_decision_hold
CREATE INDEX CONCURRENTLY review_decision_hold ON cutter_governance.review_decision (decision, id) WHERE decision IN ('sg3_escalation', 'hold_released');
