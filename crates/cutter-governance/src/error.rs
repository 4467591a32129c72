//! The one error type of this crate. Each variant says what failed, on what (table, id,
//! run, fingerprint), and what the operator can do next; database errors keep their
//! SQLSTATE.

use std::path::PathBuf;

use cutter_core::{ChangeSetId, Fingerprint, Refusal, RunId, SystemIdentifier};

use crate::chain::LedgerTable;
use crate::verify::Mismatch;

/// `Result` with this crate's [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Up to `max` items, then "… and N more".
pub(crate) fn list_some<T: std::fmt::Display>(items: &[T], max: usize) -> String {
    if items.is_empty() {
        return "none".into();
    }
    let mut s = items
        .iter()
        .take(max)
        .map(ToString::to_string)
        .collect::<Vec<_>>()
        .join(", ");
    if items.len() > max {
        s.push_str(&format!(" … and {} more", items.len() - max));
    }
    s
}

/// A unit of a change set that still counts as a committed write.
#[derive(Clone, PartialEq, Eq, Debug, serde::Serialize)]
pub struct LiveUnit {
    /// `public.information_unit.id`.
    pub id: i64,
    /// Its canonical address.
    pub canonical_address: String,
    /// `draft` or `enacted`.
    pub lifecycle_status: String,
}

impl std::fmt::Display for LiveUnit {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "id {} ({:?}, {})",
            self.id, self.canonical_address, self.lifecycle_status
        )
    }
}

/// Everything that can go wrong in the governance layer.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// A statement failed on the server (or the connection broke). The SQLSTATE is kept:
    /// see [`Error::sqlstate`].
    #[error("{what}: {}{}", describe_db(source), hint_db(source))]
    Db {
        /// What was being done, on which table / run.
        what: String,
        /// The driver's error, with the server's SQLSTATE.
        #[source]
        source: postgres::Error,
    },

    /// A key or approval file could not be read.
    #[error("cannot read {what} {}: {source}", path.display())]
    Io {
        /// What the file is (approver key, approval statement, …).
        what: &'static str,
        /// The file.
        path: PathBuf,
        /// The I/O error.
        #[source]
        source: std::io::Error,
    },

    /// An approver key could not be used.
    #[error("approver key {}: {source}", path.display())]
    ApproverKey {
        /// The key file.
        path: PathBuf,
        /// Why.
        #[source]
        source: cutter_openpgp::Error,
    },

    /// The same key was configured twice as an approver.
    #[error("approver key {fingerprint} is configured twice ({} and {}); each approver must be listed once", first.display(), second.display())]
    DuplicateApprover {
        /// The key.
        fingerprint: Fingerprint,
        /// Where it was first listed.
        first: PathBuf,
        /// Where it was listed again.
        second: PathBuf,
    },

    /// No approver keys are configured, so no approval can ever verify.
    #[error("no approver keys are configured; list the public keys of the SG_1/SG_2 approvers in the configuration")]
    NoApprovers,

    /// The approvals were refused; every reason is listed.
    #[error("approvals refused for run {run_id}:{}", reasons.iter().map(|r| format!("\n  - {r}")).collect::<String>())]
    ApprovalsRefused {
        /// The run the approvals were checked for.
        run_id: RunId,
        /// Every reason, in check order.
        reasons: Vec<Refusal>,
    },

    /// The connection reaches another server than the authorization names.
    #[error("connected to the server with system identifier {actual}, but the authorization is for {expected}; refusing to write. Check the connection settings")]
    WrongTarget {
        /// What the authorization names.
        expected: SystemIdentifier,
        /// What the server reports.
        actual: SystemIdentifier,
    },

    /// A rehearsal authorization (no approvals) offered to a server that is not a
    /// throwaway cluster.
    #[error("refusing to write: the authorization of run {run_id} is a rehearsal (no approvals), but this server is not a throwaway cluster (cluster_name = {cluster_name:?}); a live target needs the gate's SG_1 and SG_2")]
    RehearsalOnRealServer {
        /// The run the rehearsal is for.
        run_id: RunId,
        /// The server's `cluster_name`.
        cluster_name: String,
    },

    /// The ledger part of the reference schema (`V2__ledger.sql`) is missing or broken.
    #[error("the governance ledger support (migration {migration}) is not installed: {missing}; run `cutter db status` to see what differs, then `cutter db upgrade` as the owner of the cutter_governance tables")]
    NotInstalled {
        /// The migration.
        migration: &'static str,
        /// What is missing.
        missing: String,
    },

    /// The units cut_leg_a left for the change set do not match the plan.
    #[error("change set {change_set}: the plan has {plan_rows} unit(s) but the database has {found} with this change set; missing: {}; not in the plan: {}. Nothing was recorded; the run must be held and compensated (A)", list_some(missing, 10), list_some(unexpected, 10))]
    UnitsDoNotMatchPlan {
        /// The change set.
        change_set: ChangeSetId,
        /// Rows in the plan.
        plan_rows: u64,
        /// Units found with the change set.
        found: u64,
        /// Plan addresses without a unit.
        missing: Vec<String>,
        /// Units whose address is not in the plan.
        unexpected: Vec<String>,
    },

    /// The phase was already recorded for this run.
    #[error("{table} already holds row id {id} for change set {change_set}; {phase} was already recorded for run {run_id} and is not written twice")]
    AlreadyRecorded {
        /// The phase.
        phase: &'static str,
        /// The run.
        run_id: RunId,
        /// The change set.
        change_set: ChangeSetId,
        /// The table holding the earlier row.
        table: LedgerTable,
        /// Its id.
        id: i64,
    },

    /// write_verify found units that differ from the plan. Nothing was written; the run
    /// must be held and compensated (A + B).
    #[error("write_verify of run {run_id}: {} of {checked} unit(s) differ from the plan: {}. Nothing was recorded; hold the run and compensate (A + B)", mismatches.len(), list_some(mismatches, 10))]
    VerifyMismatch {
        /// The run.
        run_id: RunId,
        /// Units compared.
        checked: u64,
        /// Every difference, by canonical address.
        mismatches: Vec<Mismatch>,
    },

    /// Another writer appended to the same ledger chain concurrently.
    #[error("{table}: another transaction appended to the ledger chain concurrently (unique prev_hash); nothing was written by this one. Retry the phase")]
    ChainContention {
        /// The table.
        table: LedgerTable,
        /// The server's error.
        #[source]
        source: postgres::Error,
    },

    /// The ledger chain of a table cannot be extended.
    #[error("{table}: cannot append to the ledger chain: {detail}; run `cutter ledger verify` and escalate (SG_3)")]
    ChainUnusable {
        /// The table.
        table: LedgerTable,
        /// Why.
        detail: String,
    },

    /// A ledger row read back is not what this crate writes.
    #[error("{table} row id {id}: {detail}; the ledger may have been tampered with: run `cutter ledger verify`")]
    Corrupt {
        /// The table.
        table: LedgerTable,
        /// The row.
        id: i64,
        /// What is wrong.
        detail: String,
    },

    /// The ledger failed verification.
    #[error("ledger verification failed: {table} row id {id}: {what}; the ledger was modified outside cutter: escalate (SG_3) and compare with the last backup")]
    LedgerTampered {
        /// The table of the first broken link.
        table: LedgerTable,
        /// The row.
        id: i64,
        /// What is wrong.
        what: String,
    },

    /// Another run holds the idempotency claim.
    #[error("document {document_id} version {source_version_id} with plan sha256:{plan_digest} is already claimed by run {first_run} (review_decision id {decision_id}); a plan is applied once. If run {first_run} did not write (or was compensated), retire it with `cutter void --run-id {first_run} --reason …` first")]
    ClaimCollision {
        /// The document.
        document_id: String,
        /// Its version.
        source_version_id: String,
        /// The plan digest.
        plan_digest: String,
        /// The run holding the claim.
        first_run: RunId,
        /// Its claim row.
        decision_id: i64,
    },

    /// The run already holds a different claim.
    #[error("run {run_id} already claims document {document_id} version {source_version_id} plan sha256:{plan_digest} (review_decision id {decision_id}); a run applies one plan: start a new run id")]
    RunHasOtherClaim {
        /// The run.
        run_id: RunId,
        /// Its claimed document.
        document_id: String,
        /// Its claimed version.
        source_version_id: String,
        /// Its claimed plan.
        plan_digest: String,
        /// The claim row.
        decision_id: i64,
    },

    /// Another session holds the per-target run lock: a run is under way, so the void
    /// waits for it to end rather than retiring a run id mid-write.
    #[error("cannot void run {run_id} now: the target's run lock is held by {holder}; wait for that run to end (or see `cutter status`), then void again")]
    RunInFlight {
        /// The run to void.
        run_id: RunId,
        /// Who holds the run lock.
        holder: Box<cutter_pg::LockHolder>,
    },

    /// The run id was voided and can never run again.
    #[error("run {run_id} was voided (review_decision id {decision_id}) and can never run again; start a new run id")]
    RunVoided {
        /// The run.
        run_id: RunId,
        /// The void row.
        decision_id: i64,
    },

    /// void was refused because the run has committed writes that were not compensated.
    #[error("void of run {run_id} refused: {}{}; compensate first (`cutter compensate --run-id {run_id}`), then void", describe_live(live_units, *live_total), describe_ledger(change_set, *ledger_unreverted))]
    VoidRefused {
        /// The run.
        run_id: RunId,
        /// Its change set.
        change_set: ChangeSetId,
        /// Units of the change set that are not withdrawn (first ones).
        live_units: Vec<LiveUnit>,
        /// How many units are not withdrawn in all.
        live_total: u64,
        /// The change set is recorded in the ledger and no `reverted` decision exists.
        ledger_unreverted: bool,
    },

    /// An argument is unusable.
    #[error("{0}")]
    Invalid(String),
}

fn describe_live(units: &[LiveUnit], total: u64) -> String {
    if total == 0 {
        return "no live units".into();
    }
    format!(
        "{total} unit(s) of the change set are committed and not withdrawn: {}",
        list_some(units, 10)
    )
}

fn describe_ledger(cs: &ChangeSetId, unreverted: bool) -> String {
    if unreverted {
        format!("; change set {cs} is recorded in the ledger without a compensating `reverted` review_decision")
    } else {
        String::new()
    }
}

fn describe_db(e: &postgres::Error) -> String {
    match e.as_db_error() {
        Some(db) => {
            let mut s = format!("{} (SQLSTATE {})", db.message(), db.code().code());
            if let Some(d) = db.detail() {
                s.push_str(&format!("; detail: {d}"));
            }
            s
        }
        None => e.to_string(),
    }
}

fn hint_db(e: &postgres::Error) -> String {
    use postgres::error::SqlState;
    match e.code() {
        Some(c) if *c == SqlState::INSUFFICIENT_PRIVILEGE => {
            "; the role lacks a privilege: check with `cutter db status` that the schema is at the reference and the role is cutter_exec".into()
        }
        Some(c) if *c == SqlState::READ_ONLY_SQL_TRANSACTION => {
            "; the transaction is read-only".into()
        }
        None if e.is_closed() => "; the connection is closed: reconnect and check the run's state with `cutter recover`".into(),
        _ => String::new(),
    }
}

impl Error {
    /// The server's SQLSTATE, when the error came from the server.
    pub fn sqlstate(&self) -> Option<&postgres::error::SqlState> {
        match self {
            Error::Db { source, .. } | Error::ChainContention { source, .. } => source.code(),
            _ => None,
        }
    }

    pub(crate) fn db(what: impl Into<String>) -> impl FnOnce(postgres::Error) -> Error {
        let what = what.into();
        move |source| Error::Db { what, source }
    }
}
