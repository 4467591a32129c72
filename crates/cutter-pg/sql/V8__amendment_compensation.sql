-- Reference schema V8: compensation of amendment runs. Applied by `cutter db upgrade` as
-- the schema owner. Never edit it: add V9.
--
-- An amendment run (V6) adds versions — new wordings and repeals — to enacted units of
-- other change sets; each carries the run's change set. Compensation A reaches them:
--   * soft (default): V6's fn_uv_change_set_status(cs, 'withdrawn', …) withdraws them;
--     the previously enacted version stays current (public.unit_current_text);
--   * hard: fn_uv_hard_delete_draft, below, deletes them, only while every one is draft
--     and only with a recorded hard-delete approval for the change set.
-- The hard-delete gate of V5 judged DELETEs of units only. It now also guards
-- public.unit_version: a DELETE of versions by anyone but the tables' owner is refused
-- unless every deleted row is a draft and its change set (the version's own, else its
-- unit's) has a recorded hard-delete approval. On both tables only drafts are deleted.
-- No table changes: functions and one trigger.

CREATE OR REPLACE FUNCTION public.fn_trg_hard_delete_gate() RETURNS trigger
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $fn$
DECLARE
    v_sets    text[];
    v_cs      text;
    v_problem text;
    v_bad     record;
    d         record;
BEGIN
    IF cutter_governance.fn_session_owns(TG_RELID) OR cutter_governance.fn_is_rehearsal_clone() THEN
        RETURN NULL;
    END IF;
    -- Transition tables exist per table and the two tables differ: one query per case.
    IF TG_TABLE_NAME = 'unit_version' THEN
        SELECT format('version id %s (unit id %s, version %s) is %s', o.id, o.information_unit_id,
                      o.version_no, o.lifecycle_status) AS what
          INTO v_bad FROM old_rows o WHERE o.lifecycle_status <> 'draft' ORDER BY o.id LIMIT 1;
        SELECT array_agg(DISTINCT coalesce(o.change_set_id, iu.change_set_id))
          INTO v_sets
          FROM old_rows o LEFT JOIN public.information_unit iu ON iu.id = o.information_unit_id;
    ELSE
        SELECT format('unit id %s (%s) is %s', o.id, quote_literal(o.canonical_address),
                      o.lifecycle_status) AS what
          INTO v_bad FROM old_rows o WHERE o.lifecycle_status <> 'draft' ORDER BY o.id LIMIT 1;
        SELECT array_agg(DISTINCT o.change_set_id) INTO v_sets FROM old_rows o;
    END IF;
    IF v_bad.what IS NOT NULL THEN
        RAISE EXCEPTION '%.%: hard delete refused: only drafts are deleted, but %',
                TG_TABLE_SCHEMA, TG_TABLE_NAME, v_bad.what
            USING ERRCODE = 'object_not_in_prerequisite_state',
                  HINT = 'a withdrawn row keeps its lineage and an enacted one never changes; nothing was deleted';
    END IF;
    FOREACH v_cs IN ARRAY coalesce(v_sets, ARRAY[]::text[]) LOOP
        v_problem := format('no hard-delete approval is recorded for change set %s', coalesce(v_cs, '(none)'));
        FOR d IN SELECT r.run_id, r.payload FROM cutter_governance.review_decision r
                  WHERE r.decision = 'hard_delete_approved' AND r.payload ->> 'change_set' = v_cs
                  ORDER BY r.id DESC LOOP
            v_problem := cutter_governance.fn_pair_problem(d.payload -> 'approvals', 'hard-delete', d.run_id);
            IF v_problem IS NULL AND EXISTS (
                   SELECT 1 FROM jsonb_array_elements(d.payload -> 'approvals') a
                    WHERE cutter_governance.fn_statement_field(a ->> 'statement', 'change_set') IS DISTINCT FROM v_cs) THEN
                v_problem := format('an approval of revert run %s names another change set', d.run_id);
            END IF;
            EXIT WHEN v_problem IS NULL;
        END LOOP;
        IF v_problem IS NOT NULL THEN
            RAISE EXCEPTION '%.%: hard delete of change set % refused: %',
                    TG_TABLE_SCHEMA, TG_TABLE_NAME, coalesce(v_cs, '(none)'), v_problem
                USING ERRCODE = 'insufficient_privilege',
                      HINT = 'a hard delete needs SG_1 and SG_2 hard-delete approvals naming the change set (`cutter compensate --hard-delete`); a soft revert needs none';
        END IF;
    END LOOP;
    RETURN NULL;
END
$fn$;

CREATE TRIGGER trg_uv_hard_delete_gate
    AFTER DELETE ON public.unit_version
    REFERENCING OLD TABLE AS old_rows
    FOR EACH STATEMENT EXECUTE FUNCTION public.fn_trg_hard_delete_gate();

-- ---------------------------------------------------------------------------------
-- fn_uv_hard_delete_draft: compensation A (hard) of an amendment run's versions: deletes
-- the versions that carry the change set, only while every one is draft (a withdrawn
-- version keeps its lineage; an enacted one is immutable). The gate above refuses the
-- DELETE unless a hard-delete approval for the change set is recorded. Returns the
-- number of versions deleted.
-- ---------------------------------------------------------------------------------

CREATE FUNCTION public.fn_uv_hard_delete_draft(p_change_set_id text, p_run_id text, p_actor text)
RETURNS bigint
LANGUAGE plpgsql
SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $fn$
DECLARE
    v_other bigint;
    v_names text;
    v_n     bigint;
BEGIN
    IF p_change_set_id IS NULL OR btrim(p_change_set_id) = ''
       OR p_run_id IS NULL OR btrim(p_run_id) = '' OR p_actor IS NULL OR btrim(p_actor) = '' THEN
        RAISE EXCEPTION 'change_set_id, run_id and actor must not be empty' USING ERRCODE = 'check_violation';
    END IF;
    PERFORM 1 FROM public.unit_version uv WHERE uv.change_set_id = p_change_set_id ORDER BY uv.id FOR UPDATE;
    SELECT count(*) INTO v_other FROM public.unit_version uv
     WHERE uv.change_set_id = p_change_set_id AND uv.lifecycle_status <> 'draft';
    IF v_other > 0 THEN
        SELECT string_agg(format('unit id %s version %s is %s', x.information_unit_id, x.version_no,
                                 x.lifecycle_status), ', ' ORDER BY x.information_unit_id)
          INTO v_names
          FROM (SELECT uv.information_unit_id, uv.version_no, uv.lifecycle_status FROM public.unit_version uv
                 WHERE uv.change_set_id = p_change_set_id AND uv.lifecycle_status <> 'draft'
                 ORDER BY uv.information_unit_id LIMIT 20) x;
        RAISE EXCEPTION 'change set %: hard delete needs every version to be draft, but % are not: %',
                quote_literal(p_change_set_id), v_other, v_names
            USING ERRCODE = 'object_not_in_prerequisite_state', SCHEMA = 'public',
                  TABLE = 'unit_version';
    END IF;
    DELETE FROM public.unit_version uv WHERE uv.change_set_id = p_change_set_id;
    GET DIAGNOSTICS v_n = ROW_COUNT;
    RETURN v_n;
END
$fn$;

REVOKE ALL ON FUNCTION public.fn_uv_hard_delete_draft(text, text, text) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION public.fn_uv_hard_delete_draft(text, text, text) TO cutter_exec;
