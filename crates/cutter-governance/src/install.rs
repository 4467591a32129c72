//! Migration G1 — shipped as the reference schema's `V2__ledger.sql` in cutter-pg, so
//! every install of the reference schema has it: what the ledger needs on top of V1 — unique `prev_hash` per chain, id allocation for `cutter_exec`, the
//! append-only trigger, uniqueness per change set, lookup indexes. Idempotent.

use postgres::GenericClient;

use crate::error::{Error, Result};

/// The migration's name.
pub const MIGRATION: &str = "G1__ledger";

/// The migration's SQL text.
pub const G1_SQL: &str = cutter_pg::schema::LEDGER_SQL;

/// The objects G1 creates, checked by [`check_installed`]: (kind, name).
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

/// Applies migration G1 in one transaction. Run it as the owner of the
/// `cutter_governance` tables, after cutter-pg's reference schema; running it again
/// changes nothing.
pub fn install<C: GenericClient>(client: &mut C) -> Result<()> {
    let mut tx = client
        .transaction()
        .map_err(Error::db("starting the G1 migration"))?;
    tx.batch_execute(G1_SQL)
        .map_err(Error::db(format!("applying migration {MIGRATION}")))?;
    tx.commit()
        .map_err(Error::db(format!("committing migration {MIGRATION}")))
}

/// Checks that G1 is installed: its indexes, the append-only trigger on each ledger
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
        .map_err(Error::db("checking the G1 indexes"))?
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
        .map_err(Error::db("checking the G1 triggers and grants"))?;
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
