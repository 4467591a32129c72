//! The reference schema (DDL, functions, triggers, roles, grants) and the baseline fixture
//! as embedded, versioned SQL; installers; and the names the phases rely on.
//!
//! Invariant: installing is one transaction per file, and the installed version and the
//! SHA-256 of its text are recorded in `cutter_governance.schema_version`.

use postgres::GenericClient;

use crate::config::Password;
use crate::error::{Error, PgContext, Result};
use crate::ident::{quote_ident, quote_literal};

/// One versioned SQL file of the reference schema (or the adoption of the earlier
/// tool's database). Applied by [`crate::migrate`].
#[derive(Clone, Copy, Debug)]
pub struct Migration {
    /// Version number (`V1__…`).
    pub version: i32,
    /// File name: the one name this migration has, recorded in `schema_version`.
    pub name: &'static str,
    /// The SQL text.
    pub sql: &'static str,
}

/// The reference schema, version by version.
pub const MIGRATIONS: [Migration; 9] = [
    Migration {
        version: 1,
        name: "V1__reference.sql",
        sql: include_str!("../sql/V1__reference.sql"),
    },
    Migration {
        version: 2,
        name: "V2__ledger.sql",
        sql: include_str!("../sql/V2__ledger.sql"),
    },
    Migration {
        version: 3,
        name: "V3__history_and_anchors.sql",
        sql: include_str!("../sql/V3__history_and_anchors.sql"),
    },
    Migration {
        version: 4,
        name: "V4__hold_guard.sql",
        sql: include_str!("../sql/V4__hold_guard.sql"),
    },
    Migration {
        version: 5,
        name: "V5__approver_registry_and_gate.sql",
        sql: include_str!("../sql/V5__approver_registry_and_gate.sql"),
    },
    Migration {
        version: 6,
        name: "V6__amendments.sql",
        sql: include_str!("../sql/V6__amendments.sql"),
    },
    Migration {
        version: 7,
        name: "V7__incremental_backup.sql",
        sql: include_str!("../sql/V7__incremental_backup.sql"),
    },
    Migration {
        version: 8,
        name: "V8__amendment_compensation.sql",
        sql: include_str!("../sql/V8__amendment_compensation.sql"),
    },
    Migration {
        version: 9,
        name: "V9__set_based_enact.sql",
        sql: include_str!("../sql/V9__set_based_enact.sql"),
    },
];

/// Version 1 for a database of the earlier tool's shape: takes it to what
/// `V1__reference.sql` installs, in place, and is recorded as version 1 under its own
/// name.
pub const ADOPTION: Migration = Migration {
    version: 1,
    name: "A1__adopt_legacy.sql",
    sql: include_str!("../sql/A1__adopt_legacy.sql"),
};

/// The schema version this build of cutter expects.
pub const REFERENCE_VERSION: i32 = 9;

/// The baseline fixture (for reference version 1).
pub const BASELINE_SQL: &str = include_str!("../sql/V1__baseline.sql");

/// Rows of the baseline: `public.information_unit`.
pub const BASELINE_UNITS: u64 = 158;
/// Rows of the baseline: `public.unit_version`.
pub const BASELINE_VERSIONS: u64 = 165;
/// Rows of the baseline: `public.iu_lifecycle_log`.
pub const BASELINE_LIFECYCLE_LOG: u64 = 60;
/// Enacted units of the baseline.
pub const BASELINE_ENACTED: u64 = 60;

/// The role that executes runs: writes only through the functions and ledger INSERTs.
pub const EXEC_ROLE: &str = "cutter_exec";
/// The read-only role (write_verify's re-read, backups).
pub const VERIFY_ROLE: &str = "cutter_verify";

/// The statement triggers of V4 that refuse new units and enactments while the
/// database records an unresolved HOLD: (trigger, table).
pub const HOLD_GUARD_TRIGGERS: [(&str, &str); 4] = [
    ("trg_iu_hold_guard_insert", "public.information_unit"),
    ("trg_iu_hold_guard_enact", "public.information_unit"),
    ("trg_uv_hold_guard_insert", "public.unit_version"),
    ("trg_uv_hold_guard_enact", "public.unit_version"),
];

/// The triggers of V5 through which the database enforces the gate: (trigger, table,
/// function). Units, versions and enactments need a run's two recorded live-run
/// approvals; so do the run path's ledger rows; a recorded signature must name a
/// registered approver and this database; a hard delete needs a recorded hard-delete
/// approval for its change set; a HOLD release needs hold-release approvals;
/// the approver registry changes only as `cutter approvers` records it.
pub const GATE_TRIGGERS: [(&str, &str, &str); 14] = [
    (
        "trg_iu_run_gate_insert",
        "public.information_unit",
        "public.fn_trg_run_gate()",
    ),
    (
        "trg_iu_run_gate_enact",
        "public.information_unit",
        "public.fn_trg_run_gate()",
    ),
    (
        "trg_uv_run_gate_insert",
        "public.unit_version",
        "public.fn_trg_run_gate()",
    ),
    (
        "trg_uv_run_gate_enact",
        "public.unit_version",
        "public.fn_trg_run_gate()",
    ),
    (
        "trg_iu_hard_delete_gate",
        "public.information_unit",
        "public.fn_trg_hard_delete_gate()",
    ),
    (
        "trg_uv_hard_delete_gate",
        "public.unit_version",
        "public.fn_trg_hard_delete_gate()",
    ),
    (
        "trg_ledger_run_gate",
        "cutter_governance.cut_change_set",
        "cutter_governance.fn_trg_ledger_run_gate()",
    ),
    (
        "trg_ledger_run_gate",
        "cutter_governance.cut_change_set_affected_row",
        "cutter_governance.fn_trg_ledger_run_gate()",
    ),
    (
        "trg_ledger_run_gate",
        "cutter_governance.manifest_envelope",
        "cutter_governance.fn_trg_ledger_run_gate()",
    ),
    (
        "trg_ledger_run_gate",
        "cutter_governance.verify_result",
        "cutter_governance.fn_trg_ledger_run_gate()",
    ),
    (
        "trg_signature_gate",
        "cutter_governance.dot_pair_signature",
        "cutter_governance.fn_trg_signature_gate()",
    ),
    (
        "trg_decision_gate",
        "cutter_governance.review_decision",
        "cutter_governance.fn_trg_decision_gate()",
    ),
    (
        "trg_approver_guard",
        "cutter_governance.approver",
        "cutter_governance.fn_trg_approver_guard()",
    ),
    (
        "trg_approver_guard_truncate",
        "cutter_governance.approver",
        "cutter_governance.fn_trg_approver_guard()",
    ),
];

/// The stamp trigger V7 puts on every watermarked surface table (the backup chain's
/// watermark; `docs/design/incremental-backup.md`).
pub const WATERMARK_TRIGGER: &str = "z_backup_watermark";

/// V7's event triggers recording DDL on the surface (created only by a superuser).
pub const EVENT_TRIGGERS: [&str; 2] = ["cutter_surface_ddl_audit", "cutter_surface_drop_audit"];

/// The function both immutability triggers must execute.
pub const IMMUTABILITY_TRIGGER_FUNCTION: &str = "public.fn_trg_enacted_immut()";

/// The immutability triggers: (trigger, table).
pub const IMMUTABILITY_TRIGGERS: [(&str, &str); 2] = [
    ("trg_iu_enacted_immut", "public.information_unit"),
    ("trg_uv_enacted_immut", "public.unit_version"),
];

/// The SECURITY DEFINER functions the phases and compensation call, by name and
/// `regprocedure` signature.
pub const FUNCTIONS: [(&str, &str); 9] = [
    (
        "fn_iu_create",
        "public.fn_iu_create(text,text,text,text,text,text,text,text,text,text,text)",
    ),
    (
        "fn_iu_create_batch",
        "public.fn_iu_create_batch(text,text,text,bigint,text[],text[],text[],text[],text[],text[],text[],text[])",
    ),
    ("fn_iu_enact", "public.fn_iu_enact(bigint,text,text)"),
    ("fn_iu_withdraw", "public.fn_iu_withdraw(text,text,text)"),
    (
        "fn_iu_hard_delete_draft",
        "public.fn_iu_hard_delete_draft(text,text,text)",
    ),
    (
        "fn_uv_amend_batch",
        "public.fn_uv_amend_batch(text,text,text,bigint[],bigint[],text[],text[],text[],boolean[])",
    ),
    (
        "fn_uv_change_set_status",
        "public.fn_uv_change_set_status(text,text,text,text)",
    ),
    (
        "fn_uv_hard_delete_draft",
        "public.fn_uv_hard_delete_draft(text,text,text)",
    ),
    (
        "fn_iu_enact_change_set",
        "public.fn_iu_enact_change_set(text,text,text)",
    ),
];

/// The one definition of "the current text of a unit" (reference V6): a view.
pub const CURRENT_TEXT_VIEW: &str = "public.unit_current_text";

/// The vocabulary tables.
pub const VOCABULARIES: [&str; 3] = [
    "vocab.unit_kind",
    "vocab.section_type",
    "vocab.publication_type",
];

/// The codes the reference schema's vocabularies hold (what `Target::vocabularies`
/// reads from a database with the reference schema; pinned by a test).
pub fn reference_vocabularies() -> cutter_core::Vocabularies {
    let set = |v: &[&str]| v.iter().map(|s| s.to_string()).collect();
    cutter_core::Vocabularies {
        unit_kind: set(&["document_root", "law_unit"]),
        section_type: set(&[
            "article", "chapter", "clause", "part", "point", "preamble", "section",
        ]),
        publication_type: set(&[
            "circular",
            "constitution",
            "decree",
            "explicit",
            "law",
            "resolution",
        ]),
    }
}

/// The version recorded in the target, if the schema_version table exists.
pub fn installed_version(c: &mut impl GenericClient) -> Result<Option<i32>> {
    let exists: bool = c
        .query_one(
            "SELECT to_regclass('cutter_governance.schema_version') IS NOT NULL",
            &[],
        )
        .doing("looking for cutter_governance.schema_version")?
        .get(0);
    if !exists {
        return Ok(None);
    }
    let row = c
        .query_one(
            "SELECT max(version) FROM cutter_governance.schema_version",
            &[],
        )
        .doing("reading cutter_governance.schema_version")?;
    Ok(row.get(0))
}

/// Brings the connected database to the reference schema through the migration
/// runner: installs it into an empty database, or applies the versions not yet
/// recorded. Returns the version now installed. Run as the role that is to own the
/// schema (it owns the SECURITY DEFINER functions); it needs CREATEROLE only if the
/// roles `cutter_exec` and `cutter_verify` do not exist yet. A database of the earlier
/// tool's shape, or with cutter tables and no recorded version, is refused here: adopt
/// it with `cutter db upgrade` ([`crate::migrate::upgrade`]).
pub fn install_reference(c: &mut postgres::Client) -> Result<i32> {
    let shape = crate::migrate::detect(c)?;
    match shape {
        crate::migrate::Shape::Empty | crate::migrate::Shape::Versioned { .. } => {}
        other => {
            return Err(Error::Install {
                what: "reference schema".into(),
                reason: format!(
                    "the database already has cutter tables but no recorded schema version ({other}); \
                     refusing to install over them (use a fresh database, or adopt it with `cutter db upgrade`)"
                ),
            })
        }
    }
    let options = crate::migrate::UpgradeOptions {
        install: shape == crate::migrate::Shape::Empty,
        ..Default::default()
    };
    Ok(crate::migrate::upgrade(c, &options, &mut |_| {})?.to)
}

/// Installs the deterministic baseline (158 units, 165 versions, 60 lifecycle log rows)
/// into a database with the reference schema and no units. One transaction.
pub fn install_baseline(c: &mut postgres::Client) -> Result<()> {
    let mut tx = c.transaction().doing("BEGIN")?;
    let units: i64 = tx
        .query_one("SELECT count(*) FROM public.information_unit", &[])
        .doing("counting public.information_unit")?
        .get(0);
    if units != 0 {
        return Err(Error::Install {
            what: "baseline fixture".into(),
            reason: format!("public.information_unit already has {units} rows; the baseline needs an empty schema"),
        });
    }
    tx.batch_execute(BASELINE_SQL).map_err(|e| Error::Install {
        what: "baseline fixture V1__baseline.sql".into(),
        reason: crate::error::ServerError::from_pg(&e).to_string(),
    })?;
    tx.commit().doing("COMMIT of the baseline fixture")
}

/// Gives `role` LOGIN and `password`. The password is sent as a SCRAM-SHA-256 verifier
/// computed here, so its plain text never reaches the server or its logs.
pub fn set_login_password(
    c: &mut impl GenericClient,
    role: &str,
    password: &Password,
) -> Result<()> {
    let verifier = postgres_protocol::password::scram_sha_256(password.expose_secret().as_bytes());
    c.batch_execute(&format!(
        "ALTER ROLE {} LOGIN PASSWORD {}",
        quote_ident(role),
        quote_literal(&verifier)
    ))
    .doing(&format!(
        "setting the password of role {}",
        quote_ident(role)
    ))
}
