//! The ledger's part of the reference schema, `V2__ledger.sql` in cutter-pg (unique
//! `prev_hash` per chain, id allocation for `cutter_exec`, the append-only trigger,
//! uniqueness per change set, lookup indexes): bringing a database to it, and checking it.

use postgres::GenericClient;

use crate::error::{Error, Result};

/// The migration that creates what [`check_installed`] checks.
pub const MIGRATION: &str = "V2__ledger.sql";

/// Brings the database to cutter-pg's reference schema through its migration runner
/// (which records every version it applies). Run it as the owner of the
/// `cutter_governance` tables; running it again changes nothing.
pub fn install(client: &mut postgres::Client) -> Result<()> {
    cutter_pg::schema::install_reference(client)
        .map(|_| ())
        .map_err(|e| Error::Invalid(format!("bringing the schema to the reference: {e}")))
}

/// The objects V2 creates, checked by [`check_installed`]: (kind, name).
const OBJECTS: &[(&str, &str)] = &[
    ("index", "cut_change_set_chain"),
    ("index", "cut_change_set_affected_row_chain"),
    ("index", "manifest_envelope_chain"),
    ("index", "review_decision_chain"),
    ("index", "verify_result_chain"),
    ("index", "dot_pair_signature_chain"),
    ("index", "manifest_envelope_change_set"),
    ("index", "verify_result_change_set"),
    ("index", "dot_pair_signature_run_gate"),
    ("index", "review_decision_run"),
    ("index", "review_decision_change_set"),
    ("index", "review_decision_claim_key"),
];

/// Checks that V2 is installed: its indexes, the append-only trigger on each ledger
/// table, and `cutter_exec`'s USAGE on the id sequences. [`Error::NotInstalled`] lists
/// what is missing.
pub fn check_installed<C: GenericClient>(client: &mut C) -> Result<()> {
    let mut missing = Vec::new();
    let names: Vec<&str> = OBJECTS.iter().map(|(_, n)| *n).collect();
    let present: Vec<String> = client
        .query(
            "SELECT c.relname::text FROM pg_catalog.pg_class c \
             JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace \
             WHERE n.nspname = 'cutter_governance' AND c.relname = ANY($1)",
            &[&names],
        )
        .map_err(Error::db("checking the V2 ledger indexes"))?
        .iter()
        .map(|r| r.get(0))
        .collect();
    for (kind, name) in OBJECTS {
        if !present.iter().any(|p| p == name) {
            missing.push(format!("{kind} {name}"));
        }
    }
    let rows = client
        .query(
            "SELECT t.name, \
                    EXISTS (SELECT 1 FROM pg_catalog.pg_trigger g \
                             WHERE g.tgrelid = ('cutter_governance.' || t.name)::regclass \
                               AND g.tgname = 'trg_ledger_append_only' AND g.tgenabled <> 'D'), \
                    CASE WHEN EXISTS (SELECT 1 FROM pg_catalog.pg_roles WHERE rolname = 'cutter_exec') \
                         THEN pg_catalog.has_sequence_privilege('cutter_exec', \
                                pg_catalog.pg_get_serial_sequence('cutter_governance.' || t.name, 'id'), 'USAGE') \
                         ELSE false END \
             FROM unnest($1::text[]) AS t(name)",
            &[&crate::chain::LedgerTable::ALL
                .iter()
                .map(|t| t.name())
                .collect::<Vec<_>>()],
        )
        .map_err(Error::db("checking the V2 ledger triggers and grants"))?;
    for r in rows {
        let name: String = r.get(0);
        if !r.get::<_, bool>(1) {
            missing.push(format!("enabled trigger trg_ledger_append_only on {name}"));
        }
        if !r.get::<_, bool>(2) {
            missing.push(format!("cutter_exec USAGE on the id sequence of {name}"));
        }
    }
    if missing.is_empty() {
        Ok(())
    } else {
        Err(Error::NotInstalled {
            migration: MIGRATION,
            missing: missing.join(", "),
        })
    }
}
