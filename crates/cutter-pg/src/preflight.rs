//! Preflight: compares a target with the reference schema — schemas, tables, columns,
//! the unique address index, functions (SECURITY DEFINER, pinned search_path), both
//! immutability triggers (present, `tgenabled = 'O'`), the ledger objects of V2 (one
//! unique `prev_hash` index per chain, the uniqueness and lookup indexes, the append-only
//! trigger on each ledger table, `cutter_exec`'s USAGE on the ledger id sequences), roles
//! and their privileges, the vocabularies and the schema version — and reports every
//! difference by name. V7's backup stamp and event triggers, missing or disabled, are
//! warnings (`PreflightReport::warnings`): they do not block a run, but every backup is
//! then full.
//!
//! Invariant: preflight only reads, inside a READ ONLY transaction.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;

use postgres::GenericClient;
use serde::{Deserialize, Serialize};

use cutter_core::SystemIdentifier;

use crate::error::{PgContext, Result};
use crate::ident::quote_ident;
use crate::schema::{
    EVENT_TRIGGERS, EXEC_ROLE, FUNCTIONS, IMMUTABILITY_TRIGGERS, IMMUTABILITY_TRIGGER_FUNCTION,
    REFERENCE_VERSION, VERIFY_ROLE, VOCABULARIES, WATERMARK_TRIGGER,
};

/// One difference between the target and the reference.
#[derive(Clone, PartialEq, Eq, Debug, Serialize, Deserialize)]
pub struct Finding {
    /// The object concerned: `public.information_unit.title`, `trigger trg_iu_enacted_immut`,
    /// `role cutter_exec`, ….
    pub object: String,
    /// What differs from the reference.
    pub problem: String,
}

impl fmt::Display for Finding {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.object, self.problem)
    }
}

/// What preflight found.
#[derive(Clone, PartialEq, Eq, Debug, Serialize, Deserialize)]
pub struct PreflightReport {
    /// The server checked.
    pub system_identifier: SystemIdentifier,
    /// `server_version`.
    pub server_version: String,
    /// The role preflight ran as.
    pub connected_as: String,
    /// The recorded schema version, if any.
    pub schema_version: Option<i32>,
    /// Every difference from the reference; empty when the target conforms.
    pub findings: Vec<Finding>,
    /// What does not block a run but weakens a guarantee: V7's backup stamp or event
    /// triggers missing or disabled (every backup is then full).
    #[serde(default)]
    pub warnings: Vec<Finding>,
}

impl PreflightReport {
    /// Whether the target conforms to the reference.
    pub fn is_ok(&self) -> bool {
        self.findings.is_empty()
    }
}

impl fmt::Display for PreflightReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(
            f,
            "preflight of server {} (PostgreSQL {}, as {}): schema version {}",
            self.system_identifier,
            self.server_version,
            self.connected_as,
            self.schema_version
                .map_or_else(|| "none".to_string(), |v| v.to_string())
        )?;
        for w in &self.warnings {
            writeln!(f, "  warning: {w}")?;
        }
        if self.findings.is_empty() {
            writeln!(f, "  conforms to the reference schema")
        } else {
            writeln!(
                f,
                "  {} difference(s) from the reference:",
                self.findings.len()
            )?;
            for x in &self.findings {
                writeln!(f, "  - {x}")?;
            }
            Ok(())
        }
    }
}

/// (schema, table, [(column, type, not null)]) of the reference.
pub(crate) type TableSpec = (
    &'static str,
    &'static str,
    &'static [(&'static str, &'static str, bool)],
);

const TS: &str = "timestamp with time zone";

/// The columns of `public.unit_version` that reference V6 adds for amendments.
const AMENDMENT_COLUMNS: [&str; 4] = ["change_set_id", "title", "source_version_id", "repeal"];

/// Every table and column of the reference schema, in table order.
pub(crate) const REFERENCE_TABLES: [TableSpec; 17] = [
    (
        "public",
        "information_unit",
        &[
            ("id", "bigint", true),
            ("canonical_address", "text", true),
            ("title", "text", true),
            ("unit_kind_ref", "text", true),
            ("identity_profile", "jsonb", true),
            ("publication_type", "text", true),
            ("owner_ref", "text", false),
            ("document_id", "text", true),
            ("source_version_id", "text", true),
            ("lifecycle_status", "text", true),
            ("change_set_id", "text", false),
            ("created_by", "text", true),
            ("created_at", TS, true),
            ("updated_at", TS, true),
            ("enacted_at", TS, false),
            ("cutter_xid", "xid8", false),
        ],
    ),
    (
        "public",
        "unit_version",
        &[
            ("id", "bigint", true),
            ("information_unit_id", "bigint", true),
            ("version_no", "integer", true),
            ("body", "text", true),
            ("body_sha256", "text", true),
            ("lifecycle_status", "text", true),
            ("created_by", "text", true),
            ("created_at", TS, true),
            ("change_set_id", "text", false),
            ("title", "text", false),
            ("source_version_id", "text", false),
            ("repeal", "boolean", false),
            ("cutter_xid", "xid8", false),
        ],
    ),
    (
        "public",
        "iu_lifecycle_log",
        &[
            ("id", "bigint", true),
            ("information_unit_id", "bigint", true),
            ("from_status", "text", false),
            ("to_status", "text", true),
            ("actor", "text", true),
            ("run_id", "text", false),
            ("change_set_id", "text", false),
            ("reason", "text", false),
            ("created_at", TS, true),
            ("cutter_xid", "xid8", false),
        ],
    ),
    (
        "cutter_governance",
        "cut_change_set",
        &[
            ("id", "bigint", true),
            ("change_set_id", "text", true),
            ("run_id", "text", true),
            ("document_id", "text", true),
            ("source_version_id", "text", true),
            ("plan_digest", "text", true),
            ("unit_count", "bigint", true),
            ("created_at", TS, true),
            ("prev_hash", "text", false),
            ("row_hash", "text", false),
            ("cutter_xid", "xid8", false),
        ],
    ),
    (
        "cutter_governance",
        "cut_change_set_affected_row",
        &[
            ("id", "bigint", true),
            ("change_set_id", "text", true),
            ("information_unit_id", "bigint", true),
            ("canonical_address", "text", true),
            ("body_sha256", "text", true),
            ("created_at", TS, true),
            ("prev_hash", "text", false),
            ("row_hash", "text", false),
            ("cutter_xid", "xid8", false),
        ],
    ),
    (
        "cutter_governance",
        "manifest_envelope",
        &[
            ("id", "bigint", true),
            ("change_set_id", "text", true),
            ("run_id", "text", true),
            ("plan_digest", "text", true),
            ("manifest", "jsonb", true),
            ("created_at", TS, true),
            ("prev_hash", "text", false),
            ("row_hash", "text", false),
            ("cutter_xid", "xid8", false),
        ],
    ),
    (
        "cutter_governance",
        "review_decision",
        &[
            ("id", "bigint", true),
            ("run_id", "text", true),
            ("change_set_id", "text", false),
            ("decision", "text", true),
            ("payload", "jsonb", true),
            ("actor", "text", true),
            ("created_at", TS, true),
            ("prev_hash", "text", false),
            ("row_hash", "text", false),
            ("cutter_xid", "xid8", false),
        ],
    ),
    (
        "cutter_governance",
        "verify_result",
        &[
            ("id", "bigint", true),
            ("run_id", "text", true),
            ("change_set_id", "text", true),
            ("checked", "bigint", true),
            ("matched", "bigint", true),
            ("mismatched", "bigint", true),
            ("verdict", "text", true),
            ("details", "jsonb", true),
            ("created_at", TS, true),
            ("prev_hash", "text", false),
            ("row_hash", "text", false),
            ("cutter_xid", "xid8", false),
        ],
    ),
    (
        "cutter_governance",
        "dot_pair_signature",
        &[
            ("id", "bigint", true),
            ("run_id", "text", true),
            ("gate", "text", true),
            ("signer_fpr", "text", true),
            ("statement", "text", true),
            ("signature", "text", true),
            ("created_at", TS, true),
            ("prev_hash", "text", false),
            ("row_hash", "text", false),
            ("cutter_xid", "xid8", false),
        ],
    ),
    (
        "cutter_governance",
        "schema_version",
        &[
            ("version", "integer", true),
            ("name", "text", true),
            ("sha256", "text", true),
            ("installed_at", TS, true),
            ("applied_by", "text", false),
        ],
    ),
    (
        "cutter_governance",
        "ledger_anchor",
        &[
            ("ledger_table", "text", true),
            ("through_id", "bigint", true),
            ("row_count", "bigint", true),
            ("rows_sha256", "text", true),
            ("anchor_hash", "text", true),
            ("anchored_at", TS, true),
            ("anchored_by", "text", true),
        ],
    ),
    (
        "cutter_governance",
        "approver",
        &[
            ("id", "bigint", true),
            ("fingerprint", "text", true),
            ("name", "text", true),
            ("public_key", "text", true),
            ("purposes", "text[]", true),
            ("added_by", "text", true),
            ("added_at", TS, true),
            ("added_decision_id", "bigint", true),
            ("revoked_by", "text", false),
            ("revoked_at", TS, false),
            ("revoked_decision_id", "bigint", false),
        ],
    ),
    (
        "cutter_governance",
        "surface_ddl_audit",
        &[
            ("id", "bigint", true),
            ("recorded_at", TS, true),
            ("session_role", "text", true),
            ("current_role_", "text", true),
            ("command_tag", "text", true),
            ("object_type", "text", true),
            ("object_identity", "text", true),
        ],
    ),
    (
        "cutter_governance",
        "rehearsal_clone",
        &[("system_identifier", "text", true), ("marked_at", TS, true)],
    ),
    (
        "vocab",
        "unit_kind",
        &[
            ("code", "text", true),
            ("ref", "text", false),
            ("label", "text", true),
        ],
    ),
    (
        "vocab",
        "section_type",
        &[
            ("code", "text", true),
            ("ref", "text", false),
            ("label", "text", true),
        ],
    ),
    (
        "vocab",
        "publication_type",
        &[
            ("code", "text", true),
            ("ref", "text", false),
            ("label", "text", true),
        ],
    ),
];

const LEDGER: [&str; 6] = [
    "cut_change_set",
    "cut_change_set_affected_row",
    "manifest_envelope",
    "review_decision",
    "verify_result",
    "dot_pair_signature",
];

/// The indexes of V2 (`V2__ledger.sql`): (name, table, unique, first key column). The
/// six `<table>_chain` indexes keep each hash chain from forking; the other unique ones
/// allow one manifest and one verify result per change set and one signature per gate
/// per run; the rest are lookups.
const LEDGER_INDEXES: [(&str, &str, bool, &str); 12] = [
    ("cut_change_set_chain", "cut_change_set", true, "prev_hash"),
    (
        "cut_change_set_affected_row_chain",
        "cut_change_set_affected_row",
        true,
        "prev_hash",
    ),
    (
        "manifest_envelope_chain",
        "manifest_envelope",
        true,
        "prev_hash",
    ),
    (
        "review_decision_chain",
        "review_decision",
        true,
        "prev_hash",
    ),
    ("verify_result_chain", "verify_result", true, "prev_hash"),
    (
        "dot_pair_signature_chain",
        "dot_pair_signature",
        true,
        "prev_hash",
    ),
    (
        "manifest_envelope_change_set",
        "manifest_envelope",
        true,
        "change_set_id",
    ),
    (
        "verify_result_change_set",
        "verify_result",
        true,
        "change_set_id",
    ),
    (
        "dot_pair_signature_run_gate",
        "dot_pair_signature",
        true,
        "run_id",
    ),
    ("review_decision_run", "review_decision", false, "run_id"),
    (
        "review_decision_change_set",
        "review_decision",
        false,
        "change_set_id",
    ),
    // An expression index (payload ->> 'claim_key'): no key column.
    ("review_decision_claim_key", "review_decision", false, ""),
];

/// V2's statement trigger that keeps every ledger table append-only for all roles but
/// the owner, and its function.
const LEDGER_TRIGGER: &str = "trg_ledger_append_only";
const LEDGER_TRIGGER_FUNCTION: &str = "cutter_governance.fn_ledger_append_only()";

/// V3's function that digests ledger rows written before cutter.
const LEGACY_DIGEST_FUNCTION: &str = "cutter_governance.fn_ledger_legacy_digest(text,bigint)";

/// Lookup indexes of the reference on tables that grow without end: (index, table).
const LOOKUP_INDEXES: [(&str, &str); 4] = [
    (
        "public.information_unit_change_set",
        "public.information_unit",
    ),
    ("public.iu_lifecycle_log_unit", "public.iu_lifecycle_log"),
    (
        "cutter_governance.cut_change_set_affected_row_cs",
        "cutter_governance.cut_change_set_affected_row",
    ),
    (
        "cutter_governance.review_decision_hold",
        "cutter_governance.review_decision",
    ),
];

const TABLE_PRIVILEGES: [&str; 7] = [
    "SELECT",
    "INSERT",
    "UPDATE",
    "DELETE",
    "TRUNCATE",
    "REFERENCES",
    "TRIGGER",
];

/// The privileges the reference grants `role` on `schema.table`.
fn expected_privileges(role: &str, schema: &str, table: &str) -> BTreeSet<&'static str> {
    let mut p = BTreeSet::from(["SELECT"]);
    if role == EXEC_ROLE && schema == "cutter_governance" && LEDGER.contains(&table) {
        p.insert("INSERT");
    }
    // Only the owner reads the rehearsal mark (through fn_is_rehearsal_clone).
    if role == "public" || (schema == "cutter_governance" && table == "rehearsal_clone") {
        p.clear();
    }
    p
}

/// The privileges the reference grants `role` on the identity sequence of
/// `schema.table`: SELECT to both roles (pg_dump), and since V2 USAGE on the ledger's id
/// sequences to `cutter_exec` (it allocates row ids in bulk: the id is part of the row
/// hash). Nobody may set a sequence (UPDATE).
fn expected_sequence_privilege(role: &str, schema: &str, table: &str, privilege: &str) -> bool {
    match privilege {
        "SELECT" => role != "public",
        "USAGE" => role == EXEC_ROLE && schema == "cutter_governance" && LEDGER.contains(&table),
        _ => false,
    }
}

/// The reference's EXECUTE grants: `cutter_exec` on every function but the per-row
/// `fn_iu_create` (not the writer's since V5), nobody else.
fn expected_execute(role: &str, function: &str) -> bool {
    role == EXEC_ROLE && function != "fn_iu_create"
}

/// Runs every check against the connected target; reads only.
pub fn preflight(c: &mut postgres::Client) -> Result<PreflightReport> {
    let mut tx = c
        .build_transaction()
        .read_only(true)
        .start()
        .doing("BEGIN READ ONLY for preflight")?;
    let report = check(&mut tx)?;
    tx.rollback().doing("ending the preflight transaction")?;
    Ok(report)
}

fn check(c: &mut impl GenericClient) -> Result<PreflightReport> {
    let mut findings = Vec::new();
    let mut push = |object: String, problem: String| findings.push(Finding { object, problem });

    let head = c
        .query_one(
            "SELECT current_setting('server_version'), current_user::text",
            &[],
        )
        .doing("reading server_version")?;
    let server_version: String = head.get(0);
    let connected_as: String = head.get(1);
    let system_identifier = crate::surface::system_identifier(c)?;

    // Schemas.
    for schema in ["public", "vocab", "cutter_governance"] {
        let ok: bool = c
            .query_one("SELECT to_regnamespace($1) IS NOT NULL", &[&schema])
            .doing("looking for schemas")?
            .get(0);
        if !ok {
            push(format!("schema {schema}"), "missing".into());
        }
    }

    // Tables and columns.
    let mut present_tables = BTreeSet::new();
    for (schema, table, columns) in REFERENCE_TABLES {
        let qualified = format!("{schema}.{table}");
        let found = table_columns(c, &qualified)?;
        if found.is_empty() {
            push(format!("table {qualified}"), "missing".into());
            continue;
        }
        present_tables.insert(qualified.clone());
        for (col, ty, not_null) in columns.iter() {
            match found.get(*col) {
                None => push(
                    format!("column {qualified}.{col}"),
                    format!(
                        "missing (reference: {ty}{})",
                        if *not_null { " NOT NULL" } else { "" }
                    ),
                ),
                Some((t, nn)) => {
                    if t != ty {
                        push(
                            format!("column {qualified}.{col}"),
                            format!("type {t}, reference {ty}"),
                        );
                    }
                    if nn != not_null {
                        push(
                            format!("column {qualified}.{col}"),
                            if *not_null {
                                "nullable, reference NOT NULL".into()
                            } else {
                                "NOT NULL, reference nullable".into()
                            },
                        );
                    }
                }
            }
        }
    }

    // The unique index that keeps live canonical addresses unique.
    if present_tables.contains("public.information_unit") {
        let unique: bool = c
            .query_one(
                "SELECT EXISTS (SELECT 1 FROM pg_catalog.pg_index i \
                   JOIN pg_catalog.pg_attribute a ON a.attrelid = i.indrelid AND a.attnum = i.indkey[0] \
                  WHERE i.indrelid = 'public.information_unit'::regclass AND i.indisunique \
                    AND i.indnatts = 1 AND a.attname = 'canonical_address')",
                &[],
            )
            .doing("looking for the unique index on canonical_address")?
            .get(0);
        if !unique {
            push(
                "index on public.information_unit (canonical_address)".into(),
                "no unique index: duplicate addresses would not be refused".into(),
            );
        }
    }

    // Functions.
    for (name, signature) in FUNCTIONS {
        let row = c
            .query_opt(
                "SELECT p.prosecdef, coalesce(array_to_string(p.proconfig, ','), '') \
                 FROM pg_catalog.pg_proc p WHERE p.oid = to_regprocedure($1)",
                &[&signature],
            )
            .doing(&format!("looking for function {name}"))?;
        let Some(row) = row else {
            push(format!("function {signature}"), "missing".into());
            continue;
        };
        let secdef: bool = row.get(0);
        let config: String = row.get(1);
        if !secdef {
            push(
                format!("function {signature}"),
                "not SECURITY DEFINER (cutter_exec cannot write without it)".into(),
            );
        }
        if !config.contains("search_path=pg_catalog, pg_temp") {
            push(
                format!("function {signature}"),
                format!(
                    "search_path not pinned to `pg_catalog, pg_temp` (settings: {})",
                    if config.is_empty() { "none" } else { &config }
                ),
            );
        }
        for role in [EXEC_ROLE, VERIFY_ROLE, "public"] {
            if role != "public" && !role_exists(c, role)? {
                continue;
            }
            let has: bool = c
                .query_one(
                    "SELECT has_function_privilege($1, to_regprocedure($2), 'EXECUTE')",
                    &[&role, &signature],
                )
                .doing(&format!("checking EXECUTE on {name}"))?
                .get(0);
            let want = expected_execute(role, name);
            if has != want {
                push(
                    format!("privilege EXECUTE on {name} for {}", role_label(role)),
                    if has {
                        "granted, the reference does not grant it".into()
                    } else {
                        "missing".into()
                    },
                );
            }
        }
    }

    // Triggers.
    let hollow = crate::surface::hollow_immutability_triggers(c)?;
    for (name, table) in IMMUTABILITY_TRIGGERS {
        let row = c
            .query_opt(
                "SELECT t.tgenabled::text, t.tgtype::int FROM pg_catalog.pg_trigger t \
                 WHERE t.tgrelid = to_regclass($1) AND t.tgname = $2 AND NOT t.tgisinternal",
                &[&table, &name],
            )
            .doing(&format!("looking for trigger {name}"))?;
        match row {
            None => push(format!("trigger {name} on {table}"), "missing".into()),
            Some(r) => {
                let enabled: String = r.get(0);
                let tgtype: i32 = r.get(1);
                if enabled != "O" {
                    push(
                        format!("trigger {name} on {table}"),
                        format!("tgenabled = '{enabled}', reference 'O' (enabled)"),
                    );
                }
                if let Some(runs) = hollow.get(name) {
                    push(
                        format!("trigger {name} on {table}"),
                        format!(
                            "executes {runs}, reference {IMMUTABILITY_TRIGGER_FUNCTION}: a trigger \
                             that runs another function may not protect enacted rows"
                        ),
                    );
                }
                // ROW (1) | BEFORE (2) | DELETE (8) | UPDATE (16)
                if tgtype & 0b11011 != 0b11011 {
                    push(
                        format!("trigger {name} on {table}"),
                        format!("fires on tgtype {tgtype}, reference BEFORE UPDATE OR DELETE FOR EACH ROW"),
                    );
                }
            }
        }
    }

    // The ledger objects of V2.
    let ledger_function: bool = c
        .query_one(
            "SELECT to_regprocedure($1) IS NOT NULL",
            &[&LEDGER_TRIGGER_FUNCTION],
        )
        .doing("looking for the ledger's append-only function")?
        .get(0);
    if !ledger_function {
        push(
            format!("function {LEDGER_TRIGGER_FUNCTION}"),
            "missing".into(),
        );
    }
    // The ledger tables and, since V3, the genesis anchors are append-only.
    for table in LEDGER.iter().chain(&["ledger_anchor"]) {
        let qualified = format!("cutter_governance.{table}");
        if !present_tables.contains(&qualified) {
            continue;
        }
        let object = format!("trigger {LEDGER_TRIGGER} on {qualified}");
        let row = c
            .query_opt(
                "SELECT t.tgenabled::text, t.tgtype::int,                         t.tgfoid = coalesce(to_regprocedure($3)::oid, 0)                  FROM pg_catalog.pg_trigger t                  WHERE t.tgrelid = to_regclass($1) AND t.tgname = $2 AND NOT t.tgisinternal",
                &[&qualified, &LEDGER_TRIGGER, &LEDGER_TRIGGER_FUNCTION],
            )
            .doing(&format!("looking for trigger {LEDGER_TRIGGER} on {qualified}"))?;
        let Some(r) = row else {
            push(
                object,
                "missing: the ledger is not append-only if UPDATE, DELETE or TRUNCATE is ever granted"
                    .into(),
            );
            continue;
        };
        let enabled: String = r.get(0);
        let tgtype: i32 = r.get(1);
        let function_ok: bool = r.get(2);
        if enabled != "O" {
            push(
                object.clone(),
                format!("tgenabled = '{enabled}', reference 'O' (enabled)"),
            );
        }
        // BEFORE (2) | DELETE (8) | UPDATE (16) | TRUNCATE (32), FOR EACH STATEMENT (no ROW bit 1).
        if tgtype & 0b11_1011 != 0b11_1010 {
            push(
                object.clone(),
                format!(
                    "fires on tgtype {tgtype}, reference BEFORE UPDATE OR DELETE OR TRUNCATE FOR EACH STATEMENT"
                ),
            );
        }
        if !function_ok {
            push(
                object,
                format!("does not execute {LEDGER_TRIGGER_FUNCTION}"),
            );
        }
    }
    for (name, table, unique, column) in LEDGER_INDEXES {
        let qualified = format!("cutter_governance.{table}");
        if !present_tables.contains(&qualified) {
            continue;
        }
        let object = format!("index cutter_governance.{name} on {qualified}");
        let row = c
            .query_opt(
                "SELECT i.indrelid = to_regclass($2), i.indisunique, i.indisvalid,                         coalesce((SELECT a.attname::text FROM pg_catalog.pg_attribute a                                    WHERE a.attrelid = i.indrelid AND a.attnum = i.indkey[0]), '')                  FROM pg_catalog.pg_index i                  WHERE i.indexrelid = to_regclass($1)",
                &[&format!("cutter_governance.{name}"), &qualified],
            )
            .doing(&format!("looking for index {name}"))?;
        let Some(r) = row else {
            push(
                object,
                if unique {
                    "missing (unique index of the ledger, reference V2)".into()
                } else {
                    "missing (lookup index of the ledger, reference V2)".into()
                },
            );
            continue;
        };
        let on_table: bool = r.get(0);
        let is_unique: bool = r.get(1);
        let valid: bool = r.get(2);
        let first: String = r.get(3);
        if !on_table {
            push(object, "is an index of another table".into());
            continue;
        }
        if unique && !is_unique {
            push(
                object.clone(),
                "not unique: the reference refuses a second row here".into(),
            );
        }
        if !valid {
            push(object.clone(), "invalid (indisvalid = false)".into());
        }
        if first != column {
            push(
                object,
                format!(
                    "first key column {}, reference {}",
                    if first.is_empty() {
                        "an expression"
                    } else {
                        &first
                    },
                    if column.is_empty() {
                        "an expression"
                    } else {
                        column
                    }
                ),
            );
        }
    }

    // V3's digest of rows written before cutter (ledger verify needs it).
    let digest_fn: bool = c
        .query_one(
            "SELECT to_regprocedure($1) IS NOT NULL",
            &[&LEGACY_DIGEST_FUNCTION],
        )
        .doing("looking for the ledger's legacy digest function")?
        .get(0);
    if !digest_fn {
        push(
            format!("function {LEGACY_DIGEST_FUNCTION}"),
            "missing (reference V3)".into(),
        );
    }

    // V6's one definition of the current text (plan diff and amendment runs read it),
    // and the run gate that judges a version by its own change set.
    let view: bool = c
        .query_one(
            "SELECT to_regclass($1) IS NOT NULL",
            &[&crate::schema::CURRENT_TEXT_VIEW],
        )
        .doing("looking for the current-text view")?
        .get(0);
    if !view {
        push(
            format!("view {}", crate::schema::CURRENT_TEXT_VIEW),
            "missing (reference V6): the current text of a unit is not defined".into(),
        );
    }

    // V4's HOLD guard: its function and its four enabled statement triggers.
    let holds_fn: bool = c
        .query_one(
            "SELECT to_regprocedure('cutter_governance.fn_unresolved_holds()') IS NOT NULL \
                AND to_regprocedure('public.fn_trg_hold_guard()') IS NOT NULL",
            &[],
        )
        .doing("looking for the HOLD guard's functions")?
        .get(0);
    if !holds_fn {
        push(
            "function cutter_governance.fn_unresolved_holds() / public.fn_trg_hold_guard()".into(),
            "missing (reference V4): a HOLD recorded in the database would not stop writes".into(),
        );
    }
    for (name, table) in crate::schema::HOLD_GUARD_TRIGGERS {
        if !present_tables.contains(table) {
            continue;
        }
        let row = c
            .query_opt(
                "SELECT t.tgenabled::text, t.tgfoid = coalesce(to_regprocedure('public.fn_trg_hold_guard()')::oid, 0) \
                   FROM pg_catalog.pg_trigger t WHERE t.tgrelid = to_regclass($1) AND t.tgname = $2",
                &[&table, &name],
            )
            .doing(&format!("looking for trigger {name}"))?;
        match row {
            None => push(
                format!("trigger {name} on {table}"),
                "missing (reference V4)".into(),
            ),
            Some(r) => {
                let enabled: String = r.get(0);
                if enabled != "O" {
                    push(
                        format!("trigger {name} on {table}"),
                        format!("tgenabled = '{enabled}', reference 'O' (enabled)"),
                    );
                }
                if !r.get::<_, bool>(1) {
                    push(
                        format!("trigger {name} on {table}"),
                        "does not execute public.fn_trg_hold_guard()".into(),
                    );
                }
            }
        }
    }

    // V5's gate: the triggers that make the database refuse unauthorized writes.
    for (name, table, function) in crate::schema::GATE_TRIGGERS {
        if !present_tables.contains(table) {
            continue;
        }
        let row = c
            .query_opt(
                "SELECT t.tgenabled::text, t.tgfoid = coalesce(to_regprocedure($3)::oid, 0) \
                   FROM pg_catalog.pg_trigger t WHERE t.tgrelid = to_regclass($1) AND t.tgname = $2",
                &[&table, &name, &function],
            )
            .doing(&format!("looking for trigger {name}"))?;
        let object = format!("trigger {name} on {table}");
        match row {
            None => push(
                object,
                "missing (reference V5): the database would not enforce the gate".into(),
            ),
            Some(r) => {
                let enabled: String = r.get(0);
                if enabled != "O" {
                    push(
                        object.clone(),
                        format!("tgenabled = '{enabled}', reference 'O' (enabled)"),
                    );
                }
                if !r.get::<_, bool>(1) {
                    push(object, format!("does not execute {function}"));
                }
            }
        }
    }

    // The lookup indexes on tables that grow without end (built CONCURRENTLY when a
    // database is adopted): present and valid.
    for (index, table) in LOOKUP_INDEXES {
        if !present_tables.contains(table) {
            continue;
        }
        match crate::migrate::index_state(c, index)? {
            crate::migrate::IndexState::Valid => {}
            crate::migrate::IndexState::Missing => push(
                format!("index {index} on {table}"),
                "missing; `cutter db upgrade` builds it CONCURRENTLY".into(),
            ),
            crate::migrate::IndexState::Invalid => push(
                format!("index {index} on {table}"),
                "INVALID (an interrupted CONCURRENTLY build); `cutter db upgrade` rebuilds it"
                    .into(),
            ),
        }
    }

    // Roles and table privileges.
    for role in [EXEC_ROLE, VERIFY_ROLE] {
        let row = c
            .query_opt(
                "SELECT rolsuper, rolbypassrls FROM pg_catalog.pg_roles WHERE rolname = $1",
                &[&role],
            )
            .doing(&format!("looking for role {role}"))?;
        match row {
            None => push(format!("role {role}"), "missing".into()),
            Some(r) => {
                let sup: bool = r.get(0);
                let bypass: bool = r.get(1);
                if sup || bypass {
                    push(
                        format!("role {role}"),
                        "is a superuser or bypasses row security; the reference role is unprivileged".into(),
                    );
                }
            }
        }
    }
    for (schema, table, _) in REFERENCE_TABLES {
        let qualified = format!("{schema}.{table}");
        if !present_tables.contains(&qualified) {
            continue;
        }
        for role in [EXEC_ROLE, VERIFY_ROLE, "public"] {
            if role != "public" && !role_exists(c, role)? {
                continue;
            }
            let want = expected_privileges(role, schema, table);
            for privilege in TABLE_PRIVILEGES {
                let has: bool = c
                    .query_one(
                        "SELECT has_table_privilege($1, to_regclass($2), $3)",
                        &[&role, &qualified, &privilege],
                    )
                    .doing(&format!("checking {privilege} on {qualified}"))?
                    .get(0);
                if has != want.contains(privilege) {
                    push(
                        format!(
                            "privilege {privilege} on {qualified} for {}",
                            role_label(role)
                        ),
                        if has {
                            "granted, the reference does not grant it".into()
                        } else {
                            "missing".into()
                        },
                    );
                }
            }
        }
        // The ledger is append-only for every role but the owner.
        if schema == "cutter_governance" {
            let rows = c
                .query(
                    "SELECT DISTINCT CASE WHEN a.grantee = 0 THEN 'PUBLIC' ELSE pg_get_userbyid(a.grantee)::text END, \
                            a.privilege_type \
                       FROM pg_catalog.pg_class c, aclexplode(c.relacl) a \
                      WHERE c.oid = to_regclass($1) AND a.grantee <> c.relowner \
                        AND a.privilege_type IN ('UPDATE', 'DELETE', 'TRUNCATE') ORDER BY 1, 2",
                    &[&qualified],
                )
                .doing(&format!("reading the grants on {qualified}"))?;
            for r in rows {
                let who: String = r.get(0);
                let what: String = r.get(1);
                if who != EXEC_ROLE && who != VERIFY_ROLE && who != "PUBLIC" {
                    push(
                        format!("privilege {what} on {qualified} for role {who}"),
                        "granted, but the ledger is append-only for every role but its owner"
                            .into(),
                    );
                }
            }
        }
    }

    // Identity sequences: readable (pg_dump), never settable by hand; only cutter_exec may
    // advance the ledger's id sequences (V2).
    for (schema, table, _) in REFERENCE_TABLES {
        let qualified = format!("{schema}.{table}");
        if schema == "vocab" || !present_tables.contains(&qualified) {
            continue;
        }
        let column = match table {
            "schema_version" => "version",
            // Keyed by ledger table name, or by system identifier: no sequence.
            "ledger_anchor" | "rehearsal_clone" => continue,
            _ => "id",
        };
        let seq: Option<String> = c
            .query_one(
                "SELECT pg_get_serial_sequence($1, $2)",
                &[&qualified, &column],
            )
            .doing(&format!("looking for the identity sequence of {qualified}"))?
            .get(0);
        let Some(seq) = seq else {
            continue;
        };
        for role in [EXEC_ROLE, VERIFY_ROLE, "public"] {
            if role != "public" && !role_exists(c, role)? {
                continue;
            }
            for privilege in ["SELECT", "USAGE", "UPDATE"] {
                let has: bool = c
                    .query_one(
                        "SELECT has_sequence_privilege($1, $2, $3)",
                        &[&role, &seq, &privilege],
                    )
                    .doing(&format!("checking {privilege} on {seq}"))?
                    .get(0);
                let want = expected_sequence_privilege(role, schema, table, privilege);
                if has != want {
                    push(
                        format!(
                            "privilege {privilege} on sequence {seq} for {}",
                            role_label(role)
                        ),
                        if has {
                            "granted, the reference does not grant it".into()
                        } else if privilege == "USAGE" {
                            "missing (cutter_exec allocates ledger row ids, reference V2)".into()
                        } else {
                            "missing (pg_dump of the mutation surface needs it)".into()
                        },
                    );
                }
            }
        }
    }

    // Schema usage.
    for role in [EXEC_ROLE, VERIFY_ROLE] {
        if !role_exists(c, role)? {
            continue;
        }
        for schema in ["public", "vocab", "cutter_governance"] {
            let has: bool = c
                .query_one(
                    "SELECT CASE WHEN to_regnamespace($2) IS NULL THEN true \
                     ELSE has_schema_privilege($1, $2, 'USAGE') END",
                    &[&role, &schema],
                )
                .doing("checking schema USAGE")?
                .get(0);
            if !has {
                push(
                    format!("privilege USAGE on schema {schema} for {role}"),
                    "missing".into(),
                );
            }
        }
    }

    // Vocabularies.
    let reference = crate::schema::reference_vocabularies();
    for vocab in VOCABULARIES {
        if !present_tables.contains(vocab) {
            continue;
        }
        let (schema, table) = vocab.split_once('.').unwrap_or(("vocab", vocab));
        let codes: std::collections::BTreeSet<String> = c
            .query(
                &format!(
                    "SELECT code::text FROM {}.{}",
                    quote_ident(schema),
                    quote_ident(table)
                ),
                &[],
            )
            .doing(&format!("reading the codes of {vocab}"))?
            .iter()
            .map(|r| r.get(0))
            .collect();
        if codes.is_empty() {
            push(
                format!("vocabulary {vocab}"),
                "empty: no plan row can resolve against it".into(),
            );
            continue;
        }
        // Codes the reference holds (and the document cutter emits) that the target lacks:
        // plan rows using them would fail in cut_leg_a. Extra codes are the target's own.
        let wanted = match vocab {
            "vocab.unit_kind" => &reference.unit_kind,
            "vocab.section_type" => &reference.section_type,
            _ => &reference.publication_type,
        };
        let missing: Vec<&str> = wanted
            .iter()
            .filter(|w| !codes.contains(*w))
            .map(String::as_str)
            .collect();
        if !missing.is_empty() {
            push(
                format!("vocabulary {vocab}"),
                format!(
                    "lacks the reference code(s) {}: plan rows using them cannot resolve",
                    missing.join(", ")
                ),
            );
        }
    }

    // Schema version.
    let schema_version = if present_tables.contains("cutter_governance.schema_version") {
        crate::schema::installed_version(c)?
    } else {
        None
    };
    if schema_version != Some(REFERENCE_VERSION) {
        push(
            "cutter_governance.schema_version".into(),
            format!(
                "version {}, reference {REFERENCE_VERSION}",
                schema_version.map_or_else(|| "none".to_string(), |v| v.to_string())
            ),
        );
    }

    let warnings = if schema_version.is_some_and(|v| v >= 7) {
        backup_warnings(c)?
    } else {
        Vec::new()
    };
    Ok(PreflightReport {
        system_identifier,
        server_version,
        connected_as,
        schema_version,
        findings,
        warnings,
    })
}

/// V7's backup guarantees that a conforming database can still lack: the stamp trigger
/// on every watermarked surface table, and the two event triggers (which V7 creates only
/// when a superuser applies it). Each missing or disabled one is a warning: runs stay
/// safe, but every backup is full and a chain's guarantees cannot be shown.
fn backup_warnings(c: &mut impl GenericClient) -> Result<Vec<Finding>> {
    let mut out = Vec::new();
    let say = |state: Option<String>, what: &str| match state.as_deref() {
        Some("O" | "A") => None,
        Some(s) => Some(format!("{what} is disabled (enabled state {s})")),
        None => Some(format!("{what} is missing")),
    };
    for t in cutter_core::mutation_surface() {
        if cutter_core::class_of(&t) == cutter_core::SurfaceClass::Mutable {
            continue;
        }
        let q = t.to_string();
        let state: Option<String> = c
            .query_opt(
                "SELECT tgenabled::text FROM pg_catalog.pg_trigger \
                  WHERE tgrelid = to_regclass($1) AND tgname = $2 AND NOT tgisinternal",
                &[&q, &WATERMARK_TRIGGER],
            )
            .doing(&format!("reading trigger {WATERMARK_TRIGGER} on {q}"))?
            .map(|r| r.get(0));
        if let Some(p) = say(state, "the backup stamp trigger") {
            out.push(Finding {
                object: format!("trigger {WATERMARK_TRIGGER} on {q}"),
                problem: format!(
                    "{p}: rows written meanwhile carry no stamp, so every backup is full and \
                     the increments of a chain cannot be shown complete; re-enable it \
                     (`ALTER TABLE {q} ENABLE TRIGGER {WATERMARK_TRIGGER}`) — the next backup \
                     is full and starts a chain that can be trusted"
                ),
            });
        }
    }
    for name in EVENT_TRIGGERS {
        let state: Option<String> = c
            .query_opt(
                "SELECT evtenabled::text FROM pg_catalog.pg_event_trigger WHERE evtname = $1",
                &[&name],
            )
            .doing(&format!("reading event trigger {name}"))?
            .map(|r| r.get(0));
        if let Some(p) = say(state, "the surface DDL audit event trigger") {
            out.push(Finding {
                object: format!("event trigger {name}"),
                problem: format!(
                    "{p}: a trigger disabled and re-enabled on the surface would leave no \
                     trace, so every backup is full and a chain's guarantees cannot be shown; \
                     a superuser creates or enables it (V7 needs one for event triggers)"
                ),
            });
        }
    }
    Ok(out)
}

/// The columns of table `qualified`: name → (type, not null); empty if it is missing.
fn table_columns(
    c: &mut impl GenericClient,
    qualified: &str,
) -> Result<BTreeMap<String, (String, bool)>> {
    Ok(c.query(
        "SELECT a.attname::text, format_type(a.atttypid, a.atttypmod), a.attnotnull \
             FROM pg_catalog.pg_attribute a \
             WHERE a.attrelid = to_regclass($1) AND a.attnum > 0 AND NOT a.attisdropped",
        &[&qualified],
    )
    .doing(&format!("reading the columns of {qualified}"))?
    .iter()
    .map(|r| (r.get(0), (r.get(1), r.get(2))))
    .collect())
}

/// What differs between the connected database and the earlier tool's shape (the
/// seeds'): every reference table but those cutter added (`schema_version`,
/// `ledger_anchor`, `approver`, `rehearsal_clone`), with its
/// columns but the hash chain's, and the functions `fn_iu_create` and `fn_iu_enact`.
/// Empty when the database has that shape (and may have more).
pub(crate) fn legacy_shape_problems(c: &mut impl GenericClient) -> Result<Vec<String>> {
    let mut problems = Vec::new();
    for (schema, table, columns) in REFERENCE_TABLES {
        if schema == "cutter_governance"
            && matches!(
                table,
                "schema_version"
                    | "ledger_anchor"
                    | "approver"
                    | "rehearsal_clone"
                    | "surface_ddl_audit"
            )
        {
            continue;
        }
        let qualified = format!("{schema}.{table}");
        let found = table_columns(c, &qualified)?;
        if found.is_empty() {
            problems.push(format!("table {qualified}: missing"));
            continue;
        }
        for (col, ty, _) in columns.iter() {
            if *col == "prev_hash" || *col == "row_hash" || *col == "cutter_xid" {
                continue;
            }
            // Added by V6 (amendments); the earlier tool never had them.
            if qualified == "public.unit_version" && AMENDMENT_COLUMNS.contains(col) {
                continue;
            }
            match found.get(*col) {
                None => problems.push(format!("column {qualified}.{col}: missing")),
                Some((t, _)) if t != ty => {
                    problems.push(format!("column {qualified}.{col}: type {t}, expected {ty}"))
                }
                Some(_) => {}
            }
        }
    }
    for (name, signature) in FUNCTIONS {
        if name != "fn_iu_create" && name != "fn_iu_enact" {
            continue;
        }
        let ok: bool = c
            .query_one("SELECT to_regprocedure($1) IS NOT NULL", &[&signature])
            .doing(&format!("looking for function {name}"))?
            .get(0);
        if !ok {
            problems.push(format!("function {signature}: missing"));
        }
    }
    Ok(problems)
}

fn role_label(role: &str) -> String {
    if role == "public" {
        "PUBLIC".into()
    } else {
        role.into()
    }
}

fn role_exists(c: &mut impl GenericClient, role: &str) -> Result<bool> {
    Ok(c.query_one(
        "SELECT EXISTS (SELECT 1 FROM pg_catalog.pg_roles WHERE rolname = $1)",
        &[&role],
    )
    .doing("looking for roles")?
    .get(0))
}

#[cfg(all(test, feature = "testing"))]
mod tests {
    use super::*;
    use crate::testing::TestDb;

    /// The expectations above are exactly the reference: no column of the installed
    /// reference is missing from them (preflight's clean run shows the converse).
    #[test]
    fn expectations_list_every_reference_column() {
        let db = TestDb::new();
        let mut c = db.admin();
        let rows = c
            .query(
                "SELECT n.nspname::text, c.relname::text, a.attname::text, format_type(a.atttypid, a.atttypmod), a.attnotnull \
                   FROM pg_attribute a JOIN pg_class c ON c.oid = a.attrelid JOIN pg_namespace n ON n.oid = c.relnamespace \
                  WHERE n.nspname IN ('public', 'vocab', 'cutter_governance') AND c.relkind = 'r' \
                    AND a.attnum > 0 AND NOT a.attisdropped ORDER BY 1, 2, a.attnum",
                &[],
            )
            .unwrap();
        let mut listed = BTreeSet::new();
        for (s, t, cols) in REFERENCE_TABLES {
            for (col, ty, nn) in cols.iter() {
                listed.insert((
                    s.to_string(),
                    t.to_string(),
                    col.to_string(),
                    ty.to_string(),
                    *nn,
                ));
            }
        }
        let installed: BTreeSet<_> = rows
            .iter()
            .map(|r| {
                (
                    r.get::<_, String>(0),
                    r.get::<_, String>(1),
                    r.get::<_, String>(2),
                    r.get::<_, String>(3),
                    r.get::<_, bool>(4),
                )
            })
            .collect();
        assert_eq!(installed, listed);
    }
}
