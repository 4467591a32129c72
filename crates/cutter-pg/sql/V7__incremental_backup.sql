-- Reference schema V7: what incremental backups rely on (docs/design/incremental-backup.md).
-- Applied by `cutter db upgrade` as the schema owner. Never edit it: add V8.
--
-- 1. public.iu_lifecycle_log becomes append-only for every role but the owner, like the
--    ledger tables (the same statement trigger, fn_ledger_append_only).
-- 2. A watermark on every table that only grows, or grows and has changeable rows:
--    a nullable column cutter_xid xid8 (no table rewrite; rows older than V7 keep NULL,
--    older than any chain's first, full backup) set by a BEFORE INSERT OR UPDATE row
--    trigger to pg_current_xact_id(): a writer cannot choose it, and an UPDATE re-stamps
--    the row. An incremental backup reads the rows whose stamp is not visible in its
--    predecessor's snapshot. The column is not part of the canonical content digest.
-- 3. cutter_governance.surface_ddl_audit, append-only: every DDL command on a surface
--    table, or on a trigger of one (ALTER TABLE … DISABLE/ENABLE TRIGGER, OWNER TO, DROP
--    TRIGGER, …), recorded by two event triggers. A new row forces the next backup to
--    be full. Event triggers need a superuser: applied by an owner that is not one, the
--    table is created but the event triggers are not, and every backup is full.
-- 4. Indexes for the two lookups of an incremental backup, built CONCURRENTLY after the
--    transaction: the stamp on each watermarked table, and the rows that can still
--    change (lifecycle_status <> 'enacted') of information_unit and unit_version.

DO $append_only$
BEGIN
    IF NOT EXISTS (SELECT 1 FROM pg_catalog.pg_trigger g
                    WHERE g.tgrelid = 'public.iu_lifecycle_log'::regclass
                      AND g.tgname = 'trg_ledger_append_only') THEN
        CREATE TRIGGER trg_ledger_append_only
            BEFORE UPDATE OR DELETE OR TRUNCATE ON public.iu_lifecycle_log
            FOR EACH STATEMENT EXECUTE FUNCTION cutter_governance.fn_ledger_append_only();
    END IF;
END
$append_only$;

CREATE FUNCTION cutter_governance.fn_backup_watermark() RETURNS trigger
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $fn$
BEGIN
    NEW.cutter_xid := pg_catalog.pg_current_xact_id();
    RETURN NEW;
END
$fn$;
REVOKE ALL ON FUNCTION cutter_governance.fn_backup_watermark() FROM PUBLIC;

DO $watermark$
DECLARE
    t text;
BEGIN
    FOREACH t IN ARRAY ARRAY['public.information_unit', 'public.unit_version', 'public.iu_lifecycle_log',
                             'cutter_governance.cut_change_set',
                             'cutter_governance.cut_change_set_affected_row',
                             'cutter_governance.manifest_envelope', 'cutter_governance.review_decision',
                             'cutter_governance.verify_result', 'cutter_governance.dot_pair_signature']
    LOOP
        EXECUTE format('ALTER TABLE %s ADD COLUMN cutter_xid xid8', t);
        -- Named to sort after every other BEFORE trigger: nothing changes NEW after it.
        EXECUTE format('CREATE TRIGGER z_backup_watermark BEFORE INSERT OR UPDATE ON %s '
                       'FOR EACH ROW EXECUTE FUNCTION cutter_governance.fn_backup_watermark()', t);
    END LOOP;
END
$watermark$;

CREATE TABLE cutter_governance.surface_ddl_audit (
    id              bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    recorded_at     timestamptz NOT NULL DEFAULT now(),
    session_role    text NOT NULL DEFAULT session_user,
    current_role_   text NOT NULL DEFAULT current_user,
    command_tag     text NOT NULL,
    object_type     text NOT NULL,
    object_identity text NOT NULL
);
CREATE TRIGGER trg_ledger_append_only
    BEFORE UPDATE OR DELETE OR TRUNCATE ON cutter_governance.surface_ddl_audit
    FOR EACH STATEMENT EXECUTE FUNCTION cutter_governance.fn_ledger_append_only();
REVOKE ALL ON cutter_governance.surface_ddl_audit FROM PUBLIC;
GRANT SELECT ON cutter_governance.surface_ddl_audit TO cutter_exec, cutter_verify;
DO $seq$
BEGIN
    EXECUTE format('REVOKE ALL ON SEQUENCE %s FROM PUBLIC, cutter_exec, cutter_verify',
                   pg_catalog.pg_get_serial_sequence('cutter_governance.surface_ddl_audit', 'id'));
    EXECUTE format('GRANT SELECT ON SEQUENCE %s TO cutter_exec, cutter_verify',
                   pg_catalog.pg_get_serial_sequence('cutter_governance.surface_ddl_audit', 'id'));
END
$seq$;

-- The surface: the tables cutter backs up (cutter_core::MUTATION_SURFACE).
CREATE FUNCTION cutter_governance.fn_is_surface_table(p_rel oid) RETURNS boolean
LANGUAGE sql STABLE
SET search_path = pg_catalog, pg_temp
AS $fn$
    SELECT EXISTS (
        SELECT 1 FROM pg_catalog.pg_class c JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace
         WHERE c.oid = p_rel
           AND (n.nspname, c.relname) IN (('public', 'information_unit'), ('public', 'unit_version'),
                ('public', 'iu_lifecycle_log'), ('cutter_governance', 'cut_change_set'),
                ('cutter_governance', 'cut_change_set_affected_row'),
                ('cutter_governance', 'manifest_envelope'), ('cutter_governance', 'review_decision'),
                ('cutter_governance', 'verify_result'), ('cutter_governance', 'dot_pair_signature'),
                ('cutter_governance', 'approver')))
$fn$;
REVOKE ALL ON FUNCTION cutter_governance.fn_is_surface_table(oid) FROM PUBLIC;

-- ddl_command_end: a command on a surface table, or on a trigger of one.
CREATE FUNCTION cutter_governance.fn_audit_surface_ddl() RETURNS event_trigger
LANGUAGE plpgsql
SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $fn$
BEGIN
    INSERT INTO cutter_governance.surface_ddl_audit (session_role, current_role_, command_tag, object_type, object_identity)
    SELECT session_user, current_user, d.command_tag, d.object_type, coalesce(d.object_identity, '')
      FROM pg_catalog.pg_event_trigger_ddl_commands() d
     WHERE (d.classid = 'pg_catalog.pg_class'::regclass AND cutter_governance.fn_is_surface_table(d.objid))
        OR (d.classid = 'pg_catalog.pg_trigger'::regclass
            AND cutter_governance.fn_is_surface_table(
                    (SELECT g.tgrelid FROM pg_catalog.pg_trigger g WHERE g.oid = d.objid)));
END
$fn$;
REVOKE ALL ON FUNCTION cutter_governance.fn_audit_surface_ddl() FROM PUBLIC;

-- sql_drop: a dropped trigger or table of the surface (gone from the catalogs by now,
-- so matched by name).
CREATE FUNCTION cutter_governance.fn_audit_surface_drop() RETURNS event_trigger
LANGUAGE plpgsql
SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $fn$
BEGIN
    INSERT INTO cutter_governance.surface_ddl_audit (session_role, current_role_, command_tag, object_type, object_identity)
    SELECT session_user, current_user, tg_tag, d.object_type, coalesce(d.object_identity, '')
      FROM pg_catalog.pg_event_trigger_dropped_objects() d
     WHERE d.object_type IN ('trigger', 'table')
       AND d.schema_name IN ('public', 'cutter_governance')
       AND EXISTS (SELECT 1 FROM unnest(ARRAY['information_unit', 'unit_version', 'iu_lifecycle_log',
                       'cut_change_set', 'cut_change_set_affected_row', 'manifest_envelope',
                       'review_decision', 'verify_result', 'dot_pair_signature', 'approver']) s(name)
                    WHERE d.object_identity = d.schema_name || '.' || s.name
                       OR d.object_identity LIKE '% on ' || d.schema_name || '.' || s.name);
END
$fn$;
REVOKE ALL ON FUNCTION cutter_governance.fn_audit_surface_drop() FROM PUBLIC;

DO $event$
BEGIN
    IF (SELECT r.rolsuper FROM pg_catalog.pg_roles r WHERE r.rolname = current_user) THEN
        CREATE EVENT TRIGGER cutter_surface_ddl_audit ON ddl_command_end
            EXECUTE FUNCTION cutter_governance.fn_audit_surface_ddl();
        CREATE EVENT TRIGGER cutter_surface_drop_audit ON sql_drop
            EXECUTE FUNCTION cutter_governance.fn_audit_surface_drop();
    ELSE
        RAISE WARNING 'V7: % is not a superuser, so the event triggers that record trigger and ownership changes on the surface were not created; every backup will be full until a superuser creates them (see docs/design/incremental-backup.md)', current_user;
    END IF;
END
$event$;

-- cutter:concurrent-index public.information_unit_cutter_xid
CREATE INDEX CONCURRENTLY information_unit_cutter_xid ON public.information_unit (cutter_xid);

-- cutter:concurrent-index public.unit_version_cutter_xid
CREATE INDEX CONCURRENTLY unit_version_cutter_xid ON public.unit_version (cutter_xid);

-- cutter:concurrent-index public.iu_lifecycle_log_cutter_xid
CREATE INDEX CONCURRENTLY iu_lifecycle_log_cutter_xid ON public.iu_lifecycle_log (cutter_xid);

-- cutter:concurrent-index cutter_governance.cut_change_set_cutter_xid
CREATE INDEX CONCURRENTLY cut_change_set_cutter_xid ON cutter_governance.cut_change_set (cutter_xid);

-- cutter:concurrent-index cutter_governance.cut_change_set_affected_row_cutter_xid
CREATE INDEX CONCURRENTLY cut_change_set_affected_row_cutter_xid ON cutter_governance.cut_change_set_affected_row (cutter_xid);

-- cutter:concurrent-index cutter_governance.manifest_envelope_cutter_xid
CREATE INDEX CONCURRENTLY manifest_envelope_cutter_xid ON cutter_governance.manifest_envelope (cutter_xid);

-- cutter:concurrent-index cutter_governance.review_decision_cutter_xid
CREATE INDEX CONCURRENTLY review_decision_cutter_xid ON cutter_governance.review_decision (cutter_xid);

-- cutter:concurrent-index cutter_governance.verify_result_cutter_xid
CREATE INDEX CONCURRENTLY verify_result_cutter_xid ON cutter_governance.verify_result (cutter_xid);

-- cutter:concurrent-index cutter_governance.dot_pair_signature_cutter_xid
CREATE INDEX CONCURRENTLY dot_pair_signature_cutter_xid ON cutter_governance.dot_pair_signature (cutter_xid);

-- cutter:concurrent-index public.information_unit_changeable
CREATE INDEX CONCURRENTLY information_unit_changeable ON public.information_unit (id) WHERE lifecycle_status <> 'enacted';

-- cutter:concurrent-index public.unit_version_changeable
CREATE INDEX CONCURRENTLY unit_version_changeable ON public.unit_version (id) WHERE lifecycle_status <> 'enacted';
