//! The one error type of this crate. Each variant says what failed, on what (run, change
//! set, units by id and canonical address) and what the operator can do next; server
//! errors keep their SQLSTATE. Every step is one transaction, rolled back on any error, so
//! an error never leaves half a step behind.

use std::fmt;

use serde::Serialize;

use cutter_core::{ChangeSetId, Compensation, Difference, Refusal, RunId, SystemIdentifier};
use cutter_pg::{LockHolder, ServerError};

use crate::execute::StepReport;
use crate::plan::Step;

/// `Result` with this crate's [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// A unit named in an error or a report.
#[derive(Clone, PartialEq, Eq, Debug, Serialize)]
pub struct UnitRef {
    /// `public.information_unit.id`.
    pub id: i64,
    /// Its canonical address.
    pub canonical_address: String,
    /// Its lifecycle status.
    pub lifecycle_status: String,
}

impl fmt::Display for UnitRef {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "id {} ({:?}, {})",
            self.id, self.canonical_address, self.lifecycle_status
        )
    }
}

/// One difference the re-count before COMMIT found.
#[derive(Clone, PartialEq, Eq, Debug, Serialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum RecountDifference {
    /// Rows outside the change set (the rows that existed before the run) differ from
    /// the run's pre snapshot: row count, content digest or units by status.
    PreExisting {
        /// The difference, as the core snapshot diff words it.
        difference: Difference,
    },
    /// A whole table's row count is not what the revert must leave.
    Total {
        /// `schema.table`.
        table: String,
        /// Expected rows: the pre snapshot, plus (soft revert) the change set's rows as
        /// counted before the step.
        expected: u64,
        /// Rows counted.
        found: u64,
    },
    /// The change set's own rows are not what the revert must leave.
    ChangeSet {
        /// What was counted.
        what: String,
        /// Expected.
        expected: u64,
        /// Counted.
        found: u64,
    },
}

impl fmt::Display for RecountDifference {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            RecountDifference::PreExisting { difference } => {
                write!(f, "rows that existed before the run: {difference}")
            }
            RecountDifference::Total {
                table,
                expected,
                found,
            } => write!(f, "{table}: {found} rows, expected {expected}"),
            RecountDifference::ChangeSet {
                what,
                expected,
                found,
            } => write!(f, "{what}: {found}, expected {expected}"),
        }
    }
}

/// Up to `max` items, then "… and N more".
pub(crate) fn list_some<T: fmt::Display>(items: &[T], total: u64, max: usize) -> String {
    if items.is_empty() {
        return "none".into();
    }
    let mut s = items
        .iter()
        .take(max)
        .map(ToString::to_string)
        .collect::<Vec<_>>()
        .join(", ");
    let shown = items.len().min(max) as u64;
    if total > shown {
        s.push_str(&format!(" … and {} more", total - shown));
    }
    s
}

/// Everything that can go wrong while planning or executing a compensation.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// A statement failed on the server (or the connection broke). The SQLSTATE is kept:
    /// see [`Error::sqlstate`].
    #[error("{doing}: {server}; {next}")]
    Db {
        /// What was being done, naming the run, change set, table or function.
        doing: String,
        /// What the server said.
        server: Box<ServerError>,
        /// What the operator can do next.
        next: String,
    },

    /// The PostgreSQL adapter failed (reading the system identifier, digests, a proof's
    /// rollback-only transaction).
    #[error(transparent)]
    Pg(Box<cutter_pg::Error>),

    /// The governance ledger refused or failed (compensation B's writer, the database
    /// facts of a run).
    #[error(transparent)]
    Governance(Box<cutter_governance::Error>),

    /// The connection reaches another server than the run wrote to.
    #[error(
        "run {run_id} wrote to server {expected}, but this connection is to server {connected}; \
         nothing was written. Connect to the run's target"
    )]
    WrongTarget {
        /// The run.
        run_id: RunId,
        /// The run's target.
        expected: SystemIdentifier,
        /// The connected server.
        connected: SystemIdentifier,
    },

    /// The pre snapshot does not come from the run's target.
    #[error(
        "run {run_id}: its pre snapshot was read from server {snapshot}, but the run's target is \
         server {target}; these facts do not belong together. Use the run's own RunContext"
    )]
    SnapshotOtherServer {
        /// The run.
        run_id: RunId,
        /// The snapshot's server.
        snapshot: SystemIdentifier,
        /// The run's target.
        target: SystemIdentifier,
    },

    /// The run has no pre snapshot to re-count against.
    #[error(
        "run {run_id} has no pre snapshot; compensation re-counts against it before COMMIT and \
         cannot run without it. Nothing was written; escalate (SG_3) with the run's state file"
    )]
    NoPreSnapshot {
        /// The run.
        run_id: RunId,
    },

    /// Another session holds the per-target run lock.
    #[error(
        "the target is locked by {holder}; compensation of run {run_id} (revert run {revert_run}) \
         wrote nothing. Run it again when that session is gone"
    )]
    Locked {
        /// The run being compensated.
        run_id: RunId,
        /// The revert run.
        revert_run: RunId,
        /// Who holds the lock.
        holder: Box<LockHolder>,
    },

    /// The target is not safe to write to (immutability triggers, functions).
    #[error(
        "compensation of run {run_id} refused, the target is not safe: {}; nothing was written. \
         Run `cutter preflight` and fix the target",
        problems.join("; ")
    )]
    UnsafeTarget {
        /// The run.
        run_id: RunId,
        /// Each problem, naming the object.
        problems: Vec<String>,
    },

    /// Compensation A refuses a change set with enacted units.
    #[error(
        "compensation A of run {run_id} refused: {total} unit(s) of change set {change_set} are \
         enacted, and enacted units are immutable: {}; nothing was written. Enacted units are \
         never reverted by compensation: escalate (SG_3)",
        list_some(units, *total, 20)
    )]
    EnactedUnits {
        /// The run.
        run_id: RunId,
        /// Its change set.
        change_set: ChangeSetId,
        /// How many units are enacted.
        total: u64,
        /// The first of them, by id.
        units: Vec<UnitRef>,
    },

    /// Compensation A refuses an amendment whose versions are enacted: they are the text
    /// in force, and enacted rows never change.
    #[error(
        "compensation A of run {run_id} refused: {total} version(s) that change set {change_set} \
         added to enacted units are enacted, so the amendment is in force and immutable: {}; \
         nothing was written. Compensation never changes enacted rows: to bring the previous \
         text back, cut it as a new amendment of the document (`cutter cut … --source-version …`, \
         `cutter plan diff`, two approvals, `cutter run`), which adds new versions",
        list_some(versions, *total, 20)
    )]
    EnactedAmendment {
        /// The run.
        run_id: RunId,
        /// Its change set.
        change_set: ChangeSetId,
        /// How many of its versions are enacted.
        total: u64,
        /// The first of them: unit id, address, version number.
        versions: Vec<String>,
    },

    /// A hard delete needs every affected row to be draft.
    #[error(
        "hard delete of change set {change_set} (run {run_id}) refused: every affected row must \
         still be draft, but {}; nothing was written. {next}",
        problems.join("; ")
    )]
    NotAllDraft {
        /// The run.
        run_id: RunId,
        /// Its change set.
        change_set: ChangeSetId,
        /// What is not draft (units named by id and address, versions, log rows).
        problems: Vec<String>,
        /// What to do instead.
        next: String,
    },

    /// Nothing in the target carries the change set.
    #[error(
        "run {run_id}: no unit, lifecycle log row or ledger row carries change set {change_set} on \
         server {target}, and the units, versions and lifecycle log differ from the run's pre \
         snapshot; nothing was written. Check the run id and that this is the run's target database"
    )]
    UnknownChangeSet {
        /// The run.
        run_id: RunId,
        /// Its change set.
        change_set: ChangeSetId,
        /// The server asked.
        target: SystemIdentifier,
    },

    /// The re-count before COMMIT differs from the pre snapshot; the step rolled back.
    #[error(
        "compensation A ({mode}) of run {run_id} rolled back: the re-count before COMMIT differs \
         from the run's pre snapshot: {}; nothing was written. Something changed the target \
         outside change set {change_set} since the run started: find out what before compensating",
        differences.iter().map(ToString::to_string).collect::<Vec<_>>().join("; ")
    )]
    RecountMismatch {
        /// The run.
        run_id: RunId,
        /// Its change set.
        change_set: ChangeSetId,
        /// `soft` or `hard`.
        mode: &'static str,
        /// Every difference found.
        differences: Vec<RecountDifference>,
    },

    /// The approvals for a hard delete were refused.
    #[error(
        "hard delete for run {run_id} refused: the SG_1/SG_2 approvals of revert run {revert_run} \
         do not verify:{}\nnothing was written; the default soft revert needs no approval",
        reasons.iter().map(|r| format!("\n  - {r}")).collect::<String>()
    )]
    ApprovalRefused {
        /// The run to compensate.
        run_id: RunId,
        /// The revert run the approvals must name.
        revert_run: RunId,
        /// Every reason, in check order.
        reasons: Vec<Refusal>,
    },

    /// A hard-delete approval was verified for another compensation.
    #[error(
        "hard delete refused: the approval was verified for {approved}, but this compensation is \
         {requested}; nothing was written. Verify approvals for exactly this compensation"
    )]
    ApprovalMismatch {
        /// What the approval covers.
        approved: String,
        /// What was asked.
        requested: String,
    },

    /// A step was asked that the matrix does not prescribe.
    #[error(
        "run {run_id}: the matrix prescribes {prescribed} ({}), so step {step} is not part of its \
         compensation; nothing was written",
        prescribed.describe()
    )]
    NotPrescribed {
        /// The run.
        run_id: RunId,
        /// The matrix's answer.
        prescribed: Compensation,
        /// The step asked for.
        step: Step,
    },

    /// Compensation B needs compensation A first.
    #[error(
        "compensation B of run {run_id} refused: {live} unit(s) of change set {change_set} are still \
         draft or enacted; run compensation A first (`cutter compensate --run-id {run_id}` does both)"
    )]
    BBeforeA {
        /// The run.
        run_id: RunId,
        /// Its change set.
        change_set: ChangeSetId,
        /// Units not yet reverted.
        live: u64,
    },

    /// The connection failed during COMMIT.
    #[error(
        "compensation {step} of run {run_id}: the connection failed during COMMIT ({server}), so \
         whether it committed is unknown; run the same compensation again: it is idempotent and \
         finishes what is missing"
    )]
    CommitUnknown {
        /// The run.
        run_id: RunId,
        /// The step.
        step: Step,
        /// What the driver said.
        server: Box<ServerError>,
    },

    /// A step failed after earlier steps committed; the error carries what was done.
    #[error(
        "compensation of run {run_id} is incomplete: {} committed, then {failed} failed: {source}. \
         Run the same compensation again: it is idempotent and finishes what is missing",
        completed.iter().map(|s| s.step.to_string()).collect::<Vec<_>>().join(", ")
    )]
    Incomplete {
        /// The run.
        run_id: RunId,
        /// The steps that committed (or were already done).
        completed: Vec<StepReport>,
        /// The step that failed.
        failed: Step,
        /// Why.
        #[source]
        source: Box<Error>,
    },

    /// An argument is unusable.
    #[error("{0}")]
    Invalid(String),
}

impl Error {
    /// The server's SQLSTATE (five characters), when the error came from the server.
    pub fn sqlstate(&self) -> Option<&str> {
        match self {
            Error::Db { server, .. } => server.sqlstate.as_deref(),
            Error::Pg(e) => e.sqlstate(),
            Error::Governance(e) => e.sqlstate().map(|s| s.code()),
            Error::Incomplete { source, .. } => source.sqlstate(),
            _ => None,
        }
    }

    /// Wraps a driver error: `doing` names the object, `next` says what to do.
    pub(crate) fn db(
        doing: impl Into<String>,
        e: &postgres::Error,
        next: impl Into<String>,
    ) -> Self {
        Error::Db {
            doing: doing.into(),
            server: Box::new(ServerError::from_pg(e)),
            next: next.into(),
        }
    }
}

impl From<cutter_pg::Error> for Error {
    fn from(e: cutter_pg::Error) -> Self {
        Error::Pg(Box::new(e))
    }
}

impl From<cutter_governance::Error> for Error {
    fn from(e: cutter_governance::Error) -> Self {
        Error::Governance(Box::new(e))
    }
}

/// Adds context to driver results.
pub(crate) trait Doing<T> {
    /// Maps a driver error to [`Error::Db`]; the step's transaction rolls back.
    fn doing(self, doing: impl FnOnce() -> String) -> Result<T>;
}

impl<T> Doing<T> for std::result::Result<T, postgres::Error> {
    fn doing(self, doing: impl FnOnce() -> String) -> Result<T> {
        self.map_err(|e| {
            let next = match e.code().map(|c| c.code()) {
                None => {
                    "the connection failed or was lost; nothing of this step was committed: \
                         run the same compensation again"
                }
                Some("42501") => {
                    "the role lacks a privilege: connect as cutter_exec and run `cutter preflight`"
                }
                Some("55000") => "the rows are not in the state this step needs; see the message",
                Some(c) if c.starts_with("40") => {
                    "serialization conflict or deadlock; run the same compensation again"
                }
                Some(_) => "this step rolled back and wrote nothing; see the server's message",
            };
            Error::db(doing(), &e, next)
        })
    }
}
