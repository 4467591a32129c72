//! The one error type of this crate. Each variant says what failed, on what (table, plan
//! row, canonical address, server, lock holder) and what the operator can do next; server
//! errors keep their SQLSTATE. No variant ever holds a password.

use std::fmt;
use std::path::PathBuf;

use cutter_core::{ChangeSetId, Phase, RunId, Sha256Digest, SystemIdentifier};

use crate::config::ConfigError;

/// Result with this crate's [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// What a PostgreSQL server reported, kept whole so callers can match on the SQLSTATE.
#[derive(Clone, PartialEq, Eq, Debug, Default)]
pub struct ServerError {
    /// Five-character SQLSTATE, e.g. `23505`; `None` when the failure was not reported by
    /// the server (connection lost, I/O, protocol).
    pub sqlstate: Option<String>,
    /// The primary message.
    pub message: String,
    /// DETAIL, if any.
    pub detail: Option<String>,
    /// HINT, if any.
    pub hint: Option<String>,
    /// `schema.table` (and `.column`) the server named, if any.
    pub object: Option<String>,
    /// CONTEXT (where in a function), if any.
    pub context: Option<String>,
}

impl ServerError {
    /// Extracts everything the server said from a driver error.
    pub fn from_pg(e: &postgres::Error) -> Self {
        match e.as_db_error() {
            Some(db) => {
                let object = match (db.schema(), db.table(), db.column()) {
                    (Some(s), Some(t), Some(c)) => Some(format!("{s}.{t}.{c}")),
                    (Some(s), Some(t), None) => Some(format!("{s}.{t}")),
                    (None, Some(t), _) => Some(t.to_string()),
                    (_, None, Some(c)) => Some(c.to_string()),
                    _ => None,
                };
                ServerError {
                    sqlstate: Some(db.code().code().to_string()),
                    message: db.message().to_string(),
                    detail: db.detail().map(str::to_string),
                    hint: db.hint().map(str::to_string),
                    object,
                    context: db.where_().map(str::to_string),
                }
            }
            None => ServerError {
                sqlstate: e.code().map(|c| c.code().to_string()),
                message: e.to_string(),
                ..ServerError::default()
            },
        }
    }

    /// The plan row a cutter function named in DETAIL (`plan row N`), if any.
    pub(crate) fn plan_row(&self) -> Option<u64> {
        self.detail
            .as_deref()?
            .strip_prefix("plan row ")?
            .trim()
            .parse()
            .ok()
    }
}

impl fmt::Display for ServerError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)?;
        if let Some(d) = &self.detail {
            write!(f, " (detail: {d})")?;
        }
        if let Some(h) = &self.hint {
            write!(f, " (hint: {h})")?;
        }
        if let Some(o) = &self.object {
            write!(f, " [object {o}]")?;
        }
        match &self.sqlstate {
            Some(s) => write!(f, " [SQLSTATE {s}]"),
            None => Ok(()),
        }
    }
}

/// Who holds the per-target run lock.
#[derive(Clone, PartialEq, Eq, Debug)]
pub struct LockHolder {
    /// Server process id of the holding session.
    pub pid: i32,
    /// Its `application_name` (`cutter/<run id>` for cutter sessions).
    pub application_name: String,
    /// The run id parsed from the application name, when it is a cutter session.
    pub run_id: Option<String>,
    /// The role of the holding session.
    pub user: Option<String>,
    /// Client address, if TCP.
    pub client_addr: Option<String>,
    /// When the holding session connected (server time, text).
    pub since: Option<String>,
}

impl LockHolder {
    /// A holder that cannot be named (`reason` says why): the lock was held when asked,
    /// but its session was gone or had changed by the time it was looked up.
    pub fn unknown(reason: &str) -> LockHolder {
        LockHolder {
            pid: 0,
            application_name: format!("(unknown: {reason})"),
            run_id: None,
            user: None,
            client_addr: None,
            since: None,
        }
    }
}

impl fmt::Display for LockHolder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.run_id {
            Some(r) => write!(f, "run {r} (")?,
            None => f.write_str("a session (")?,
        }
        write!(
            f,
            "pid {}, application_name {:?}",
            self.pid, self.application_name
        )?;
        if let Some(u) = &self.user {
            write!(f, ", user {u}")?;
        }
        if let Some(a) = &self.client_addr {
            write!(f, ", from {a}")?;
        }
        if let Some(s) = &self.since {
            write!(f, ", connected since {s}")?;
        }
        f.write_str(")")
    }
}

/// Everything that can go wrong in the PostgreSQL adapter.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The connection configuration is invalid, or connecting failed (wrong password,
    /// unreachable host, TLS); the message names host, port, user and database.
    #[error(transparent)]
    Config(#[from] ConfigError),

    /// A statement failed on the server.
    #[error("{doing}: {server}; {next}")]
    Db {
        /// What the adapter was doing, naming the table or function.
        doing: String,
        /// What the server said.
        server: Box<ServerError>,
        /// What the operator can do next.
        next: String,
    },

    /// One row of the plan failed inside a phase; the phase rolled back whole.
    #[error(
        "{phase}: plan row {row} of {total} (canonical_address {canonical_address:?}) failed: {server}; \
         the phase rolled back and wrote nothing; fix the row or the target and run again"
    )]
    PlanRow {
        /// The phase.
        phase: Phase,
        /// 1-based row number in the plan.
        row: u64,
        /// Rows in the plan.
        total: u64,
        /// The row's canonical address.
        canonical_address: String,
        /// What the server said.
        server: Box<ServerError>,
    },

    /// A batch of the plan failed and the failing row could not be singled out.
    #[error(
        "{phase}: plan rows {first_row}–{last_row} of {total} failed: {server}; the phase rolled back \
         and wrote nothing"
    )]
    PlanBatch {
        /// The phase.
        phase: Phase,
        /// First row of the batch (1-based).
        first_row: u64,
        /// Last row of the batch.
        last_row: u64,
        /// Rows in the plan.
        total: u64,
        /// What the server said.
        server: Box<ServerError>,
    },

    /// Connected to a different server than the authorization names.
    /// The connection is to another database of the authorized server (or to the same
    /// name with another OID: dropped and re-created).
    #[error(
        "refusing to write: the authorization is for {authorized}, but this connection is to \
         {connected}; connect to the authorized database"
    )]
    WrongDatabase {
        /// `LiveAuthorization::database()`.
        authorized: Box<cutter_core::TargetDatabase>,
        /// The connected database.
        connected: Box<cutter_core::TargetDatabase>,
    },

    /// The authorization names another server than the connected one.
    #[error(
        "refusing to write: the authorization is for server {authorized}, but this connection is to \
         server {connected}; connect to the authorized target"
    )]
    WrongTarget {
        /// `LiveAuthorization::target()`.
        authorized: SystemIdentifier,
        /// The connected server's system identifier.
        connected: SystemIdentifier,
    },

    /// The run id was retired by `void`: it never writes again.
    #[error(
        "refusing to write: run {run_id} was voided (review_decision {decision_id}); a voided \
         run id never runs again: start a new run with a new run id"
    )]
    RunVoided {
        /// The voided run.
        run_id: RunId,
        /// The `review_decision` that voided it.
        decision_id: i64,
    },

    /// A rehearsal authorization (no approvals) offered to a server that is not a
    /// throwaway cluster: rehearsals write only to clusters this crate started.
    #[error(
        "refusing to write: the authorization of run {run_id} is a rehearsal (no approvals), but \
         this server is not a throwaway cluster (cluster_name = {cluster_name:?}); a live target \
         needs the gate's SG_1 and SG_2"
    )]
    RehearsalOnRealServer {
        /// The run the rehearsal is for.
        run_id: RunId,
        /// The server's `cluster_name`.
        cluster_name: String,
    },

    /// The plan given is not the plan the gate authorized.
    #[error(
        "refusing to write: the authorization is for plan {authorized}, but the plan given has digest \
         {given}; run the gate for this plan"
    )]
    PlanNotAuthorized {
        /// `LiveAuthorization::plan_digest()`.
        authorized: Sha256Digest,
        /// The digest of the plan given.
        given: Sha256Digest,
    },

    /// The diff cut_leg_a computed against the live document, inside its transaction,
    /// is not the one the approvals name (the document changed since they were signed,
    /// or a first load met live units).
    #[error(
        "cut_leg_a: the plan's diff against the live document is {}, but the approvals name {}; \
         the phase rolled back and wrote nothing; read `cutter plan diff` and have the run approved again",
        computed.map_or("none (a first load)".to_string(), |d| format!("sha256:{d}")),
        authorized.map_or("none".to_string(), |d| format!("sha256:{d}"))
    )]
    DiffNotAuthorized {
        /// `LiveAuthorization::diff_digest()`.
        authorized: Option<Sha256Digest>,
        /// `PlanDiff::approval_digest()` of the diff computed in the transaction.
        computed: Option<Sha256Digest>,
    },

    /// A row read back from the plan for writing is not the row validated and approved.
    #[error(
        "plan row {row} ({canonical_address}) could not be read back as validated: {why}; \
         the phase rolled back and wrote nothing. The run's copy of the plan changed after \
         validation: start a new run from the plan the approvers signed"
    )]
    PlanRowChanged {
        /// The plan row (1-based).
        row: u64,
        /// Its address when validated.
        canonical_address: String,
        /// What differs.
        why: String,
    },

    /// A streamed plan produced different rows while writing than when it was validated.
    #[error(
        "the plan source changed between validation and writing (digest {validated} then {written}); \
         the phase rolled back and wrote nothing"
    )]
    PlanChanged {
        /// Digest when validated.
        validated: Sha256Digest,
        /// Digest of the rows written.
        written: Sha256Digest,
    },

    /// A run may only touch its own change set.
    #[error("refusing: run {run_id} may only touch change set {authorized}, not {requested}")]
    ChangeSetNotAuthorized {
        /// The run.
        run_id: RunId,
        /// `ChangeSetId::for_run(run)`.
        authorized: ChangeSetId,
        /// The change set asked for.
        requested: ChangeSetId,
    },

    /// cut_leg_a of this run already committed (a crashed or repeated run).
    #[error(
        "cut_leg_a: change set {change_set} already has {units} unit(s) in the target: this run's cut \
         already committed; do not cut again, run `cutter recover` for run {run_id}"
    )]
    ChangeSetExists {
        /// The run.
        run_id: RunId,
        /// Its change set.
        change_set: ChangeSetId,
        /// Units found.
        units: u64,
    },

    /// Another session holds the per-target run lock.
    #[error(
        "target is locked by {holder}; run {wanted} must wait until it finishes (or, if that run is \
         dead, until its session is gone)"
    )]
    Locked {
        /// Who holds it.
        holder: Box<LockHolder>,
        /// The run that asked.
        wanted: RunId,
    },

    /// This connection already holds the run lock for another run.
    /// The caller's before-commit callback stopped the phase; it rolled back.
    #[error(
        "{phase}: stopped before COMMIT ({reason}); the transaction rolled back and wrote nothing"
    )]
    Interrupted {
        /// The phase.
        phase: Phase,
        /// What the callback said.
        reason: String,
    },
    /// The connection holds the target's run lock for another run.
    #[error("this connection holds the target lock for run {held}, not for run {wanted}")]
    LockedForOtherRun {
        /// The run the lock is held for.
        held: RunId,
        /// The run that asked.
        wanted: RunId,
    },

    /// The target is not safe to write to; every problem is named.
    #[error("{phase}: refusing to write, the target is not safe: {}; run `cutter preflight` and fix the target", problems.join("; "))]
    UnsafeTarget {
        /// The phase refused.
        phase: Phase,
        /// Each problem, naming the object.
        problems: Vec<String>,
    },

    /// A rollback-only transaction was ended by a statement sent through it.
    #[error(
        "the rollback-only transaction was ended by a statement sent through it (COMMIT or \
         ROLLBACK): its effects may have persisted; compare a snapshot with the one taken before"
    )]
    RollbackOnlyEnded,

    /// A migration step failed or was refused; what was applied before it is named
    /// (committed), and running the upgrade again continues from the failed step.
    #[error("{0}")]
    Migration(Box<MigrationFailure>),

    /// The text of an applied migration differs from the file this cutter embeds.
    #[error("{0}")]
    MigrationChanged(Box<ChangedMigration>),

    /// The connected role may not change the schema.
    #[error(
        "refusing to change the schema as role {user}: {why}; connect as the schema owner with \
         --owner-url or [database] owner_url"
    )]
    NotOwner {
        /// The connected role.
        user: String,
        /// Why it may not.
        why: String,
    },

    /// Installing the reference schema or fixture failed.
    #[error("installing {what}: {reason}")]
    Install {
        /// `reference schema V1`, `baseline fixture`, ...
        what: String,
        /// Why.
        reason: String,
    },

    /// A PostgreSQL program (initdb, postgres, psql, pg_config) failed.
    #[error("{program}: {problem}{}", if .output.is_empty() { String::new() } else { format!("\n--- output ---\n{}", .output) })]
    Program {
        /// The program (path).
        program: String,
        /// What went wrong and what to do.
        problem: String,
        /// Its stderr or server log, trimmed.
        output: String,
    },

    /// A file or directory operation failed.
    #[error("{what} {}: {source}", .path.display())]
    Io {
        /// What was being done.
        what: String,
        /// On what.
        path: PathBuf,
        /// The OS error.
        source: std::io::Error,
    },
}

/// Why an upgrade stopped ([`Error::Migration`]).
#[derive(Debug, thiserror::Error)]
#[error(
    "db upgrade stopped at {step}: {reason}; {}; {next}",
    if .applied.is_empty() { "nothing was applied before it".to_string() } else { format!("applied before it (committed): {}", .applied.join(", ")) }
)]
pub struct MigrationFailure {
    /// The step.
    pub step: String,
    /// The steps applied before it.
    pub applied: Vec<String>,
    /// What went wrong.
    pub reason: String,
    /// What to do next.
    pub next: String,
}

/// An applied migration whose text changed ([`Error::MigrationChanged`]).
#[derive(Debug, thiserror::Error)]
#[error(
    "migration {name} (version {version}) was applied with sha256 {recorded}, but this cutter's {name} has \
     sha256 {embedded}: the file changed after it was applied; refusing to upgrade (restore the released \
     file, or use the cutter release that applied it)"
)]
pub struct ChangedMigration {
    /// Version.
    pub version: i32,
    /// File name.
    pub name: String,
    /// SHA-256 recorded in the database.
    pub recorded: String,
    /// SHA-256 of the embedded file.
    pub embedded: String,
}

impl Error {
    /// An upgrade that stopped at `step`.
    pub(crate) fn migration(
        step: impl Into<String>,
        applied: Vec<String>,
        reason: impl Into<String>,
        next: impl Into<String>,
    ) -> Self {
        Error::Migration(Box::new(MigrationFailure {
            step: step.into(),
            applied,
            reason: reason.into(),
            next: next.into(),
        }))
    }

    /// The SQLSTATE the server reported, if this error came from the server.
    pub fn sqlstate(&self) -> Option<&str> {
        match self {
            Error::Db { server, .. }
            | Error::PlanRow { server, .. }
            | Error::PlanBatch { server, .. } => server.sqlstate.as_deref(),
            _ => None,
        }
    }

    /// The server error, if this error came from the server.
    pub fn server(&self) -> Option<&ServerError> {
        match self {
            Error::Db { server, .. }
            | Error::PlanRow { server, .. }
            | Error::PlanBatch { server, .. } => Some(&**server),
            _ => None,
        }
    }

    /// Wraps a driver error: `doing` names the statement's object, `next` says what to do.
    pub fn db(doing: impl Into<String>, e: &postgres::Error, next: impl Into<String>) -> Self {
        Error::Db {
            doing: doing.into(),
            server: Box::new(ServerError::from_pg(e)),
            next: next.into(),
        }
    }

    pub(crate) fn io(
        what: impl Into<String>,
        path: impl Into<PathBuf>,
        source: std::io::Error,
    ) -> Self {
        Error::Io {
            what: what.into(),
            path: path.into(),
            source,
        }
    }
}

/// Adds context to driver results.
pub(crate) trait PgContext<T> {
    /// Maps a driver error to [`Error::Db`].
    fn doing(self, doing: &str) -> Result<T>;
}

impl<T> PgContext<T> for std::result::Result<T, postgres::Error> {
    fn doing(self, doing: &str) -> Result<T> {
        self.map_err(|e| Error::db(doing, &e, next_for(&e)))
    }
}

/// A default "what to do next" from the SQLSTATE class.
pub(crate) fn next_for(e: &postgres::Error) -> &'static str {
    let code = e.code().map(|c| c.code()).unwrap_or("");
    match code {
        "42501" => {
            "the role lacks a privilege; run `cutter preflight` to see which grants differ from the reference"
        }
        "57014" => "the statement timed out; raise statement_timeout or run when the target is quiet",
        "55P03" => "a lock was not granted in time (lock_timeout); run again when the target is quiet",
        "" => "the connection failed or was lost; check the server, then run `cutter recover`",
        _ => match code.get(..2).unwrap_or("") {
            "42" | "3F" => {
                "an object is missing; run `cutter preflight` against this target and install or fix the schema"
            }
            "23" | "22" => "the data breaks a constraint; fix the plan row or the target and run again",
            "55" => "the object is not in the required state (enacted rows are immutable); check the target",
            "40" => "serialization conflict or deadlock; run again when the target is quiet",
            "08" | "57" => "the connection was lost; check the server, then run `cutter recover`",
            "28" => "authentication failed; check the user and password (PGPASSFILE, PGPASSWORD)",
            _ => "see the server message; nothing was committed by the failed statement",
        },
    }
}
