//! What the backup role may do with the surface tables: it must be able to read them and
//! their sequences (pg_dump reads the sequences' state), and it must not be able to
//! change them — the backup runs as the read-only role.

use cutter_core::{mutation_surface, TableName};
use postgres::GenericClient;

use crate::error::{Error, Result};

/// Problems with the connected role's privileges on the mutation surface, as
/// sentences; empty when it reads everything and writes nothing.
pub(crate) fn problems(c: &mut impl GenericClient) -> Result<Vec<String>> {
    let names: Vec<String> = mutation_surface().iter().map(TableName::quoted).collect();
    let rows = c
        .query(
            "SELECT t, to_regclass(t) IS NOT NULL, \
                    coalesce(has_table_privilege(to_regclass(t), 'SELECT'), false), \
                    coalesce(has_table_privilege(to_regclass(t), 'INSERT, UPDATE, DELETE, TRUNCATE'), false), \
                    coalesce((SELECT bool_and(has_sequence_privilege(d.objid, 'SELECT')) \
                                FROM pg_catalog.pg_depend d \
                                JOIN pg_catalog.pg_class s ON s.oid = d.objid AND s.relkind = 'S' \
                               WHERE d.classid = 'pg_catalog.pg_class'::regclass \
                                 AND d.refobjid = to_regclass(t) AND d.deptype IN ('a', 'i')), true), \
                    current_user::text \
             FROM unnest($1::text[]) AS t",
            &[&names],
        )
        .map_err(|e| Error::sql("checking the backup role's privileges", e))?;
    let mut missing = Vec::new();
    let mut unreadable = Vec::new();
    let mut no_seq = Vec::new();
    let mut writable = Vec::new();
    let mut role = String::new();
    for r in &rows {
        let t: String = r.get(0);
        role = r.get(5);
        if !r.get::<_, bool>(1) {
            missing.push(t);
            continue;
        }
        if !r.get::<_, bool>(2) {
            unreadable.push(t.clone());
        }
        if r.get::<_, bool>(3) {
            writable.push(t.clone());
        }
        if !r.get::<_, bool>(4) {
            no_seq.push(t);
        }
    }
    let mut out = Vec::new();
    if !missing.is_empty() {
        out.push(format!("tables missing: {}", missing.join(", ")));
    }
    if !unreadable.is_empty() {
        out.push(format!(
            "role {role} cannot SELECT {}; GRANT SELECT on them to it",
            unreadable.join(", ")
        ));
    }
    if !no_seq.is_empty() {
        out.push(format!(
            "role {role} cannot read the sequences of {} (pg_dump needs them); \
             GRANT SELECT ON ALL SEQUENCES IN SCHEMA public, cutter_governance TO {role}",
            no_seq.join(", ")
        ));
    }
    if !writable.is_empty() {
        out.push(format!(
            "role {role} can change {}; backups run as the read-only role (e.g. cutter_verify), \
             never as a role that can write",
            writable.join(", ")
        ));
    }
    Ok(out)
}
