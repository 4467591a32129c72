-- Reference schema V9: lifecycle_enact in three statements instead of two per unit.
-- Applied by `cutter db upgrade` as the schema owner. Never edit it: add V10.
--
-- lifecycle_enact called V1's fn_iu_enact once per draft unit of the change set. Since
-- V5 every UPDATE statement on information_unit and unit_version fires the run gate,
-- which re-reads and re-checks the run's two approvals: two gate checks per unit, about
-- 2 ms each unit (a 100,000-unit first load spent minutes enacting). This function does
-- the same thing set-wise, so the gate judges each table once per run:
--   * every draft unit of the change set becomes enacted (enacted_at, updated_at = now());
--   * every draft version of those units becomes enacted;
--   * one lifecycle log row per unit, draft -> enacted, reason 'lifecycle_enact';
-- in id order, under FOR UPDATE locks taken in id order (as the per-unit calls did).
-- fn_iu_enact stays for a single unit. No table changes.

CREATE FUNCTION public.fn_iu_enact_change_set(
    p_change_set_id text,
    p_actor         text,
    p_run_id        text,
    OUT units_enacted    bigint,
    OUT versions_enacted bigint)
LANGUAGE plpgsql
SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $fn$
DECLARE
    v_ids bigint[];
BEGIN
    IF p_actor IS NULL OR btrim(p_actor) = '' THEN
        RAISE EXCEPTION 'actor: must not be empty' USING ERRCODE = 'check_violation', COLUMN = 'actor';
    END IF;
    IF p_change_set_id IS NULL OR btrim(p_change_set_id) = '' THEN
        RAISE EXCEPTION 'change_set_id: must not be empty'
            USING ERRCODE = 'check_violation', COLUMN = 'change_set_id';
    END IF;
    SELECT coalesce(array_agg(s.id ORDER BY s.id), '{}')
      INTO v_ids
      FROM (SELECT iu.id FROM public.information_unit iu
             WHERE iu.change_set_id = p_change_set_id AND iu.lifecycle_status = 'draft'
             ORDER BY iu.id
               FOR UPDATE) s;

    UPDATE public.information_unit iu
       SET lifecycle_status = 'enacted', enacted_at = now(), updated_at = now()
     WHERE iu.id = ANY (v_ids);
    GET DIAGNOSTICS units_enacted = ROW_COUNT;
    UPDATE public.unit_version uv
       SET lifecycle_status = 'enacted'
     WHERE uv.information_unit_id = ANY (v_ids) AND uv.lifecycle_status = 'draft';
    GET DIAGNOSTICS versions_enacted = ROW_COUNT;
    INSERT INTO public.iu_lifecycle_log
        (information_unit_id, from_status, to_status, actor, run_id, change_set_id, reason)
    SELECT u.id, 'draft', 'enacted', p_actor, p_run_id, p_change_set_id, 'lifecycle_enact'
      FROM unnest(v_ids) AS u(id)
     ORDER BY u.id;
END
$fn$;

REVOKE ALL ON FUNCTION public.fn_iu_enact_change_set(text, text, text) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION public.fn_iu_enact_change_set(text, text, text) TO cutter_exec;
