//! The adapter: a connected target database. Reads (preflight, vocabularies, snapshots)
//! are plain methods; every mutating phase is one method that owns exactly one
//! transaction, rolled back on any error and on drop, and can only be called with a
//! [`LiveAuthorization`] for the connected server.
//!
//! Invariants: before any write, inside the phase's transaction, the connected server's
//! system identifier is compared with `auth.target()` and the immutability triggers and
//! functions are checked; the per-target run lock is held for `auth.run_id()`; values are
//! always bind parameters.

use std::borrow::Borrow;
use std::collections::BTreeMap;
use std::fmt;

use postgres::{Client, GenericClient, IsolationLevel, Statement, Transaction};
use serde::{Deserialize, Serialize};

use cutter_core::{
    AuthorizationScope, ChangeSetId, CutPlanRow, DiffBuilder, DiffClass, LiveAuthorization, Phase,
    PlanDiff, RowFacts, RunId, Sha256Digest, Snapshot, SystemIdentifier, TableName, TableStat,
    ValidPlan, Vocabularies,
};

use crate::config::ConnConfig;
use crate::error::{next_for, Error, LockHolder, PgContext, Result, ServerError};
use crate::preflight::{self, PreflightReport};
use crate::schema::{FUNCTIONS, IMMUTABILITY_TRIGGERS};
use crate::stream::{PlanHasher, StreamedPlan};
use crate::surface::{self, SurfaceMark};

/// The advisory lock key of the per-target run lock: (`'CUTT'`, 1). Advisory locks are
/// scoped to one database, so this excludes two runs on the same target database.
pub const RUN_LOCK_KEY: (i32, i32) = (0x4355_5454, 1);

/// Prefix of the `application_name` of a session holding the run lock.
pub const APPLICATION_NAME_PREFIX: &str = "cutter/";

/// How cut_leg_a cuts a plan into batches (one round trip each).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct BatchLimits {
    /// At most this many rows per batch.
    pub rows: usize,
    /// A batch is sent once its text reaches this many bytes.
    pub bytes: usize,
}

impl Default for BatchLimits {
    fn default() -> Self {
        Self {
            rows: 2000,
            bytes: 4 << 20,
        }
    }
}

/// What cut_leg_a committed.
#[derive(Clone, PartialEq, Eq, Debug, Serialize, Deserialize)]
pub struct LegAReport {
    /// The change set every created unit is tagged with.
    pub change_set_id: ChangeSetId,
    /// Units created (all `draft`).
    pub units_created: u64,
    /// Unit versions created (version 1 of each unit).
    pub versions_created: u64,
    /// New versions of live units (an amendment's changed articles).
    #[serde(default)]
    pub versions_amended: u64,
    /// Repeals written (units no longer in the text).
    #[serde(default)]
    pub repeals: u64,
    /// The diff against the live document, computed in the phase's transaction; `None`
    /// for a first load (the document had no live unit).
    #[serde(skip)]
    pub diff: Option<Box<PlanDiff>>,
    /// Lowest id of the created units.
    pub first_unit_id: Option<i64>,
    /// Highest id of the created units.
    pub last_unit_id: Option<i64>,
    /// Round trips used.
    pub batches: u64,
}

/// A connected target database.
pub struct Target {
    client: Client,
    label: String,
    system_identifier: SystemIdentifier,
    database: cutter_core::TargetDatabase,
    lock: Option<RunId>,
    batch: BatchLimits,
    before_commit: Option<BeforeCommit>,
    /// How it was connected (for [`Target::canceller`]); `None` from [`Target::from_client`].
    config: Option<ConnConfig>,
}

/// Cancels the statement a [`Target`]'s connection is running, from any thread (a
/// signal handler's): the phase's transaction then fails and rolls back.
#[derive(Clone)]
pub struct Canceller {
    token: postgres::CancelToken,
    config: Option<ConnConfig>,
}

impl fmt::Debug for Canceller {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Canceller").finish_non_exhaustive()
    }
}

impl Canceller {
    /// Sends the cancel request; harmless when nothing is running.
    pub fn cancel(&self) -> Result<()> {
        match &self.config {
            Some(c) => c.cancel(&self.token).map_err(Error::from),
            None => self
                .token
                .cancel_query(postgres::NoTls)
                .doing("sending the cancel request"),
        }
    }
}

/// A callback run inside a phase's transaction just before its COMMIT (see
/// [`Target::set_before_commit`]). An `Err` rolls the phase back.
pub type BeforeCommit = Box<dyn FnMut(Phase) -> std::result::Result<(), String> + Send>;

/// Releases the run lock before the connection closes. Closing alone would release it
/// too, but only once the server's backend has processed the termination, which can be
/// after the client has already moved on: the next connection of the same run (the next
/// phase) would then find the lock still held and be refused.
impl Drop for Target {
    fn drop(&mut self) {
        if self.lock.is_some() && !self.client.is_closed() {
            if let Err(e) = self.unlock_target() {
                tracing::debug!(target = %self.label, "releasing the run lock on drop: {e}");
            }
        }
    }
}

impl fmt::Debug for Target {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Target")
            .field("target", &self.label)
            .field("system_identifier", &self.system_identifier)
            .field("locked_for", &self.lock)
            .finish_non_exhaustive()
    }
}

const BATCH_SQL: &str = "SELECT created, first_id, last_id FROM public.fn_iu_create_batch(\
    $1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12)";

const AMEND_SQL: &str = "SELECT public.fn_uv_amend_batch($1, $2, $3, $4, $5, $6, $7, $8, $9)";

impl Target {
    /// Connects (see [`ConnConfig::connect`]) and reads the server's system identifier.
    pub fn connect(config: &ConnConfig) -> Result<Target> {
        let client = config.connect()?;
        let mut target = Self::from_client(client, config.redacted())?;
        target.config = Some(config.clone());
        Ok(target)
    }

    /// What cancels the statement this connection is running, from another thread.
    pub fn canceller(&self) -> Canceller {
        Canceller {
            token: self.client.cancel_token(),
            config: self.config.clone(),
        }
    }

    /// Wraps an open connection; `label` names the target in messages (no password).
    pub fn from_client(mut client: Client, label: impl Into<String>) -> Result<Target> {
        let database = surface::target_database(&mut client)?;
        Ok(Target {
            client,
            label: label.into(),
            system_identifier: database.system_identifier,
            database,
            lock: None,
            batch: BatchLimits::default(),
            before_commit: None,
            config: None,
        })
    }

    /// The target as given when connecting, without password.
    pub fn label(&self) -> &str {
        &self.label
    }

    /// The system identifier read when connecting. Phases re-read it inside their
    /// transaction.
    pub fn system_identifier(&self) -> SystemIdentifier {
        self.system_identifier
    }

    /// The database read when connecting (system identifier, name, OID): what approvals
    /// name. Phases re-read it inside their transaction.
    pub fn database(&self) -> &cutter_core::TargetDatabase {
        &self.database
    }

    /// Installs a callback that cut_leg_a and lifecycle_enact run inside their transaction
    /// just before COMMIT; an error from it rolls the phase back. The CLI uses it for its
    /// interrupt check (SIGINT, SIGTERM) and its test-only failpoints (debug builds).
    pub fn set_before_commit(&mut self, hook: Option<BeforeCommit>) {
        self.before_commit = hook;
    }

    /// Changes how cut_leg_a batches the plan.
    pub fn set_batch_limits(&mut self, limits: BatchLimits) {
        self.batch = BatchLimits {
            rows: limits.rows.max(1),
            bytes: limits.bytes.max(1),
        };
    }

    /// Compares the target with the reference schema; only reads.
    pub fn preflight(&mut self) -> Result<PreflightReport> {
        preflight::preflight(&mut self.client)
    }

    /// The codes of the three vocabularies, to validate a plan against.
    pub fn vocabularies(&mut self) -> Result<Vocabularies> {
        let rows = self
            .client
            .query(
                "SELECT 'unit_kind', code FROM vocab.unit_kind \
                 UNION ALL SELECT 'section_type', code FROM vocab.section_type \
                 UNION ALL SELECT 'publication_type', code FROM vocab.publication_type",
                &[],
            )
            .doing("reading vocab.unit_kind, vocab.section_type, vocab.publication_type")?;
        let mut v = Vocabularies::default();
        for r in rows {
            let which: &str = r.get(0);
            let code: String = r.get(1);
            match which {
                "unit_kind" => v.unit_kind.insert(code),
                "section_type" => v.section_type.insert(code),
                _ => v.publication_type.insert(code),
            };
        }
        Ok(v)
    }

    /// Runs `f` in a READ ONLY, REPEATABLE READ transaction (the server refuses any
    /// write in it), then ends it.
    pub fn read_only<R>(&mut self, f: impl FnOnce(&mut Transaction<'_>) -> Result<R>) -> Result<R> {
        let mut tx = self
            .client
            .build_transaction()
            .isolation_level(IsolationLevel::RepeatableRead)
            .read_only(true)
            .start()
            .doing("BEGIN READ ONLY")?;
        let r = f(&mut tx)?;
        tx.rollback().doing("ending a read-only transaction")?;
        Ok(r)
    }

    /// A snapshot of the mutation surface at one instant (see [`crate::surface`] for the
    /// digest's canonical form).
    pub fn snapshot(&mut self) -> Result<Snapshot> {
        self.read_only(|tx| surface::snapshot_in(tx))
    }

    /// The highest id of each mutation-surface table.
    pub fn surface_mark(&mut self) -> Result<SurfaceMark> {
        self.read_only(|tx| surface::surface_mark(tx))
    }

    /// Rows and content digests of the rows that existed at `mark` (ids up to the mark),
    /// read at one instant.
    pub fn surface_stats_upto(
        &mut self,
        mark: &SurfaceMark,
    ) -> Result<BTreeMap<TableName, TableStat>> {
        self.read_only(|tx| surface::surface_stats(tx, Some(mark)))
    }

    /// Units of `change_set` by lifecycle status: what a crashed run committed.
    pub fn change_set_units(&mut self, change_set: &ChangeSetId) -> Result<BTreeMap<String, u64>> {
        let rows = self
            .client
            .query(
                "SELECT lifecycle_status, count(*) FROM public.information_unit \
                 WHERE change_set_id = $1 GROUP BY 1 ORDER BY 1",
                &[&change_set.as_str()],
            )
            .doing("counting the units of the change set in public.information_unit")?;
        Ok(rows
            .iter()
            .map(|r| {
                let n: i64 = r.get(1);
                (r.get::<_, String>(0), u64::try_from(n).unwrap_or(0))
            })
            .collect())
    }

    // ------------------------------------------------------------------------------
    // The run lock.
    // ------------------------------------------------------------------------------

    /// Takes the per-target run lock for `run_id` (a session advisory lock, released when
    /// the connection closes or by [`Target::unlock_target`]). The session's
    /// `application_name` becomes `cutter/<run id>` so another run's error names it.
    /// Fails, naming the holder (pid, application_name, run id, user, since), if another
    /// session holds it.
    pub fn lock_target(&mut self, run_id: &RunId) -> Result<()> {
        match &self.lock {
            Some(held) if held == run_id => return Ok(()),
            Some(held) => {
                return Err(Error::LockedForOtherRun {
                    held: held.clone(),
                    wanted: run_id.clone(),
                })
            }
            None => {}
        }
        let app = application_name(run_id);
        self.client
            .execute("SELECT set_config('application_name', $1, false)", &[&app])
            .doing("setting application_name")?;
        for _ in 0..3 {
            let got: bool = self
                .client
                .query_one(
                    "SELECT pg_try_advisory_lock($1, $2)",
                    &[&RUN_LOCK_KEY.0, &RUN_LOCK_KEY.1],
                )
                .doing("taking the per-target run lock (pg_try_advisory_lock)")?
                .get(0);
            if got {
                tracing::debug!(run_id = %run_id, target = %self.label, "run lock taken");
                self.lock = Some(run_id.clone());
                return Ok(());
            }
            if let Some(holder) = self.lock_holder()? {
                return Err(Error::Locked {
                    holder: Box::new(holder),
                    wanted: run_id.clone(),
                });
            }
            // Released between the two queries: try again.
        }
        Err(Error::Locked {
            holder: Box::new(LockHolder::unknown("the lock changed hands repeatedly")),
            wanted: run_id.clone(),
        })
    }

    /// Releases the run lock, if held.
    pub fn unlock_target(&mut self) -> Result<()> {
        if self.lock.take().is_some() {
            self.client
                .query_one(
                    "SELECT pg_advisory_unlock($1, $2)",
                    &[&RUN_LOCK_KEY.0, &RUN_LOCK_KEY.1],
                )
                .doing("releasing the per-target run lock")?;
        }
        Ok(())
    }

    /// The run the lock is held for by this connection.
    pub fn locked_for(&self) -> Option<&RunId> {
        self.lock.as_ref()
    }

    /// The session holding the run lock on this database, if any.
    pub fn lock_holder(&mut self) -> Result<Option<LockHolder>> {
        run_lock_holder(&mut self.client)
    }

    // ------------------------------------------------------------------------------
    // Mutating phases.
    // ------------------------------------------------------------------------------

    /// Takes the run lock for the authorized run and begins the phase's transaction,
    /// after checking, inside it, that the server is `auth.target()` and the target is
    /// safe (triggers enabled, functions and tables present).
    fn begin_phase(&mut self, auth: &LiveAuthorization, phase: Phase) -> Result<Transaction<'_>> {
        self.lock_target(auth.run_id())?;
        let mut tx = self
            .client
            .transaction()
            .doing(&format!("{phase}: BEGIN"))?;
        guard(&mut tx, auth.target(), phase)?;
        check_database(&mut tx, auth)?;
        refuse_rehearsal_on_real_server(&mut tx, auth)?;
        refuse_voided_run(&mut tx, auth.run_id())?;
        Ok(tx)
    }

    /// cut_leg_a: creates every unit of the plan and its first version, as `draft`,
    /// tagged with `ChangeSetId::for_run(auth.run_id())`, in ONE transaction, sending the
    /// plan in batches through `public.fn_iu_create_batch` (arrays, set-based). Calls
    /// `progress` with the number of units written after each batch. On any error the
    /// transaction rolls back: zero rows; the error names the plan row and canonical
    /// address that failed, with its SQLSTATE.
    ///
    /// It cannot be called without an authorization:
    ///
    /// ```compile_fail,E0061
    /// fn cut(target: &mut cutter_pg::Target, plan: &cutter_core::ValidPlan) {
    ///     target.cut_leg_a(plan, &mut |_| {});
    /// }
    /// ```
    ///
    /// With one, it compiles:
    ///
    /// ```no_run
    /// fn cut(
    ///     target: &mut cutter_pg::Target,
    ///     auth: &cutter_core::LiveAuthorization,
    ///     plan: &cutter_core::ValidPlan,
    /// ) -> cutter_pg::Result<cutter_pg::LegAReport> {
    ///     target.cut_leg_a(auth, plan, &mut |_| {})
    /// }
    /// ```
    pub fn cut_leg_a(
        &mut self,
        auth: &LiveAuthorization,
        plan: &ValidPlan,
        progress: &mut dyn FnMut(u64),
    ) -> Result<LegAReport> {
        if auth.plan_digest() != plan.digest() {
            return Err(Error::PlanNotAuthorized {
                authorized: auth.plan_digest(),
                given: plan.digest(),
            });
        }
        let p = plan.plan();
        let change_set = ChangeSetId::for_run(auth.run_id());
        let input = LegAInput {
            document_id: p.document_id.as_str(),
            source_version_id: p.source_version_id.as_str(),
            change_set: &change_set,
            total: plan.rows().len() as u64,
            plan_digest: plan.digest(),
            ids: (&p.document_id, &p.source_version_id),
            authorized_diff: authorized_diff(auth),
        };
        self.run_leg_a(auth, &input, plan.rows().iter(), progress, None)
    }

    /// cut_leg_a for a plan streamed from its source (constant memory whatever its size).
    /// Same contract as [`Target::cut_leg_a`]; additionally re-digests the rows as it
    /// writes and rolls back if they differ from what was validated and authorized.
    pub fn cut_leg_a_streamed<F, I>(
        &mut self,
        auth: &LiveAuthorization,
        plan: &StreamedPlan<F>,
        progress: &mut dyn FnMut(u64),
    ) -> Result<LegAReport>
    where
        F: Fn() -> I,
        I: Iterator<Item = CutPlanRow>,
    {
        if auth.plan_digest() != plan.digest() {
            return Err(Error::PlanNotAuthorized {
                authorized: auth.plan_digest(),
                given: plan.digest(),
            });
        }
        let change_set = ChangeSetId::for_run(auth.run_id());
        let input = LegAInput {
            document_id: plan.document_id().as_str(),
            source_version_id: plan.source_version_id().as_str(),
            change_set: &change_set,
            total: plan.rows(),
            plan_digest: plan.digest(),
            ids: (plan.document_id(), plan.source_version_id()),
            authorized_diff: authorized_diff(auth),
        };
        let mut check = DigestCheck {
            hasher: PlanHasher::new(plan.document_id(), plan.source_version_id(), plan.rows()),
            expected: plan.digest(),
            picker: plan.can_pick().then_some(plan as &dyn Picked),
        };
        self.run_leg_a(auth, &input, plan.iter(), progress, Some(&mut check))
    }

    fn run_leg_a<R: Borrow<CutPlanRow>>(
        &mut self,
        auth: &LiveAuthorization,
        input: &LegAInput<'_>,
        rows: impl Iterator<Item = R>,
        progress: &mut dyn FnMut(u64),
        check: Option<&mut DigestCheck>,
    ) -> Result<LegAReport> {
        // The hook is put back whatever happens, so a refused phase does not lose it for
        // the phases after it.
        let mut hook = self.before_commit.take();
        let outcome = self.leg_a_with(auth, input, rows, progress, check, &mut hook);
        self.before_commit = hook;
        outcome
    }

    fn leg_a_with<R: Borrow<CutPlanRow>>(
        &mut self,
        auth: &LiveAuthorization,
        input: &LegAInput<'_>,
        rows: impl Iterator<Item = R>,
        progress: &mut dyn FnMut(u64),
        check: Option<&mut DigestCheck>,
        hook: &mut Option<BeforeCommit>,
    ) -> Result<LegAReport> {
        let limits = self.batch;
        let failed = {
            let mut tx = self.begin_phase(auth, Phase::CutLegA)?;
            refuse_used_change_set(&mut tx, auth.run_id(), input.change_set)?;
            match write_leg_a(&mut tx, input, rows, limits, progress, check) {
                Ok(report) => {
                    let result = match hook.as_mut().map_or(Ok(()), |h| h(Phase::CutLegA)) {
                        Err(reason) => {
                            drop(tx);
                            Err(Error::Interrupted {
                                phase: Phase::CutLegA,
                                reason,
                            })
                        }
                        Ok(()) => commit(tx, Phase::CutLegA, input.change_set).map(|()| report),
                    };
                    if let Ok(report) = &result {
                        tracing::info!(
                            run_id = %auth.run_id(),
                            change_set = %input.change_set,
                            units = report.units_created,
                            batches = report.batches,
                            "cut_leg_a committed"
                        );
                    }
                    return result;
                }
                Err(LegAFail::Other(e)) => {
                    drop(tx);
                    return Err(e);
                }
                // The transaction is dropped here: rolled back.
                Err(LegAFail::Batch(b)) => {
                    drop(tx);
                    *b
                }
            }
        };
        let e = self.pin_failed_row(auth, input, failed);
        tracing::warn!(run_id = %auth.run_id(), error = %e, "cut_leg_a rolled back");
        Err(e)
    }

    /// Names the plan row of a failed batch: from the server's DETAIL (`plan row N`,
    /// raised by fn_iu_create_batch's set-wise checks), from a unique-violation key, or,
    /// for other data errors, by replaying the batch row by row (batches of one) in a
    /// transaction that always rolls back.
    fn pin_failed_row(
        &mut self,
        auth: &LiveAuthorization,
        input: &LegAInput<'_>,
        b: FailedBatch,
    ) -> Error {
        let at = |i: usize| {
            b.rows
                .get(i)
                .map(|r| r.canonical_address.clone())
                .unwrap_or_default()
        };
        if let Some(n) = b.server.plan_row() {
            let i = usize::try_from(n.saturating_sub(b.first_row)).unwrap_or(usize::MAX);
            return Error::PlanRow {
                phase: Phase::CutLegA,
                row: n,
                total: input.total,
                canonical_address: at(i),
                server: Box::new(b.server),
            };
        }
        if let Some(i) = unique_violation_row(&b.server, &b.rows) {
            return Error::PlanRow {
                phase: Phase::CutLegA,
                row: b.first_row + i as u64,
                total: input.total,
                canonical_address: at(i),
                server: Box::new(b.server),
            };
        }
        let class = b.server.sqlstate.as_deref().and_then(|s| s.get(..2));
        if matches!(class, Some("22" | "23" | "P0" | "55")) {
            if let Ok(Some((i, server))) = self.replay_rows(auth, input, &b.rows) {
                return Error::PlanRow {
                    phase: Phase::CutLegA,
                    row: b.first_row + i as u64,
                    total: input.total,
                    canonical_address: at(i),
                    server: Box::new(server),
                };
            }
        }
        Error::PlanBatch {
            phase: Phase::CutLegA,
            first_row: b.first_row,
            last_row: b.first_row + b.rows.len().saturating_sub(1) as u64,
            total: input.total,
            server: Box::new(b.server),
        }
    }

    fn replay_rows(
        &mut self,
        auth: &LiveAuthorization,
        input: &LegAInput<'_>,
        rows: &[CutPlanRow],
    ) -> Result<Option<(usize, ServerError)>> {
        let mut tx = self.begin_phase(auth, Phase::CutLegA)?;
        let stmt = tx
            .prepare(BATCH_SQL)
            .doing("cut_leg_a: preparing public.fn_iu_create_batch")?;
        for (i, r) in rows.iter().enumerate() {
            if let Err(e) = create_one(&mut tx, &stmt, input, r) {
                return Ok(Some((i, ServerError::from_pg(&e))));
            }
        }
        tx.rollback()
            .doing("cut_leg_a: ROLLBACK of the diagnosis")?;
        Ok(None)
    }

    /// lifecycle_enact: enacts every draft unit of the run's change set through
    /// `public.fn_iu_enact_change_set` (V9: one call, three statements, in id order),
    /// which also enacts their draft versions and writes one lifecycle log row per unit.
    /// One transaction.
    /// Returns the number of units enacted.
    pub fn lifecycle_enact(
        &mut self,
        auth: &LiveAuthorization,
        change_set: &ChangeSetId,
    ) -> Result<u64> {
        authorize_change_set(auth, change_set)?;
        let mut hook = self.before_commit.take();
        let outcome = self.enact_with(auth, change_set, &mut hook);
        self.before_commit = hook;
        let n = outcome?;
        tracing::info!(run_id = %auth.run_id(), change_set = %change_set, units = n, "lifecycle_enact committed");
        Ok(n)
    }

    fn enact_with(
        &mut self,
        auth: &LiveAuthorization,
        change_set: &ChangeSetId,
        hook: &mut Option<BeforeCommit>,
    ) -> Result<u64> {
        let mut tx = self.begin_phase(auth, Phase::LifecycleEnact)?;
        let n = enact_in(&mut tx, change_set, auth.run_id())?;
        if let Some(h) = hook.as_mut() {
            h(Phase::LifecycleEnact).map_err(|reason| Error::Interrupted {
                phase: Phase::LifecycleEnact,
                reason,
            })?;
        }
        commit(tx, Phase::LifecycleEnact, change_set)?;
        Ok(n)
    }

    /// A transaction for a mutating phase whose SQL lives in another crate (the ledger
    /// writers of leg_b_record and write_verify, compensation). Same checks as the
    /// phase methods (run lock, system identifier, triggers, functions); rolls back on
    /// drop unless [`PhaseTransaction::commit`] consumes it.
    pub fn phase_transaction(
        &mut self,
        auth: &LiveAuthorization,
        phase: Phase,
    ) -> Result<PhaseTransaction<'_>> {
        if !phase.is_mutating() {
            return Err(Error::UnsafeTarget {
                phase,
                problems: vec![format!(
                    "{phase} is not a mutating phase; it needs no write transaction"
                )],
            });
        }
        let run_id = auth.run_id().clone();
        let change_set = ChangeSetId::for_run(&run_id);
        let tx = self.begin_phase(auth, phase)?;
        Ok(PhaseTransaction {
            tx,
            phase,
            run_id,
            change_set,
        })
    }

    /// A transaction that can never commit, for the rollback-only proof: the real SQL of
    /// the phases runs in it and is undone when it is dropped (or by
    /// [`RollbackOnly::rollback`]). Needs no authorization because nothing it does can
    /// persist; takes the run lock for `run_id` so it does not run beside a real run.
    pub fn rollback_only(&mut self, run_id: &RunId) -> Result<RollbackOnly<'_>> {
        self.lock_target(run_id)?;
        let mut tx = self
            .client
            .transaction()
            .doing("rollback-only proof: BEGIN")?;
        let xid: i64 = tx
            .query_one("SELECT txid_current()", &[])
            .doing("rollback-only proof: reading the transaction id")?
            .get(0);
        // Arm the trap in a savepoint: a role without TEMP privilege still gets the
        // transaction-id check of `rollback`.
        let commit_trap = {
            let mut sp = tx.transaction().doing("SAVEPOINT")?;
            match sp.batch_execute(COMMIT_TRAP_SQL) {
                Ok(()) => sp.commit().doing("RELEASE SAVEPOINT").is_ok(),
                Err(_) => false,
            }
        };
        Ok(RollbackOnly {
            tx,
            run_id: run_id.clone(),
            batch: self.batch,
            xid,
            commit_trap,
        })
    }
}

/// Makes COMMIT of the surrounding transaction fail: a deferred constraint trigger on a
/// temporary table that raises at commit time. Everything it creates lives in the
/// transaction and vanishes with its rollback.
const COMMIT_TRAP_SQL: &str = "\
    CREATE TEMPORARY TABLE cutter_rollback_only (armed boolean) ON COMMIT DROP; \
    CREATE FUNCTION pg_temp.cutter_rollback_only() RETURNS trigger LANGUAGE plpgsql AS \
      'BEGIN RAISE EXCEPTION ''cutter: COMMIT of a rollback-only transaction refused'' \
       USING ERRCODE = ''25000''; END'; \
    CREATE CONSTRAINT TRIGGER cutter_rollback_only AFTER INSERT ON pg_temp.cutter_rollback_only \
      DEFERRABLE INITIALLY DEFERRED FOR EACH ROW EXECUTE FUNCTION pg_temp.cutter_rollback_only(); \
    INSERT INTO pg_temp.cutter_rollback_only VALUES (true);";

/// `cutter/<run id>`, cut to the 63 bytes PostgreSQL keeps.
/// The diff a live authorization names; `None` (not checked) for a rehearsal.
fn authorized_diff(auth: &LiveAuthorization) -> Option<Option<Sha256Digest>> {
    (auth.scope() == AuthorizationScope::Live).then(|| auth.diff_digest())
}

fn application_name(run_id: &RunId) -> String {
    let mut s = format!("{APPLICATION_NAME_PREFIX}{run_id}");
    s.truncate(63); // run ids are ASCII
    s
}

fn authorize_change_set(auth: &LiveAuthorization, change_set: &ChangeSetId) -> Result<()> {
    let authorized = ChangeSetId::for_run(auth.run_id());
    if *change_set == authorized {
        Ok(())
    } else {
        Err(Error::ChangeSetNotAuthorized {
            run_id: auth.run_id().clone(),
            authorized,
            requested: change_set.clone(),
        })
    }
}

fn commit(tx: Transaction<'_>, phase: Phase, change_set: &ChangeSetId) -> Result<()> {
    tx.commit().map_err(|e| {
        let server = ServerError::from_pg(&e);
        let next = if server.sqlstate.is_none() {
            format!(
                "the connection failed during COMMIT, so whether {phase} committed is unknown; run \
                 `cutter recover`, which asks the target whether change set {change_set} exists"
            )
        } else {
            format!("{phase} did not commit and wrote nothing; {}", next_for(&e))
        };
        Error::Db {
            doing: format!("{phase}: COMMIT"),
            server: Box::new(server),
            next,
        }
    })
}

/// Reads the system identifier through any client.
pub(crate) fn read_system_identifier(c: &mut impl GenericClient) -> Result<SystemIdentifier> {
    surface::system_identifier(c)
}

/// The checks every mutating phase runs first, inside its transaction.
/// The session holding the per-target run lock ([`RUN_LOCK_KEY`]) on `c`'s database, if
/// any: its pid, the run it works for (from its `application_name`), user and since when.
pub fn run_lock_holder(c: &mut impl GenericClient) -> Result<Option<LockHolder>> {
    let row = c
        .query_opt(
            "SELECT a.pid, coalesce(a.application_name, ''), a.usename::text, a.client_addr::text, \
                    to_char(a.backend_start AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS\"Z\"') \
               FROM pg_catalog.pg_locks l JOIN pg_catalog.pg_stat_activity a ON a.pid = l.pid \
              WHERE l.locktype = 'advisory' AND l.granted \
                AND l.database = (SELECT oid FROM pg_catalog.pg_database WHERE datname = current_database()) \
                AND l.classid::bigint = $1 AND l.objid::bigint = $2 AND l.objsubid = 2 \
              LIMIT 1",
            &[&i64::from(RUN_LOCK_KEY.0), &i64::from(RUN_LOCK_KEY.1)],
        )
        .doing("looking up the holder of the run lock (pg_locks, pg_stat_activity)")?;
    Ok(row.map(|r| {
        let application_name: String = r.get(1);
        LockHolder {
            pid: r.get(0),
            run_id: application_name
                .strip_prefix(APPLICATION_NAME_PREFIX)
                .map(str::to_string),
            application_name,
            user: r.get(2),
            client_addr: r.get(3),
            since: r.get(4),
        }
    }))
}

/// The `review_decision` that voided `run_id` (a decision of kind `void`), if any. A
/// voided run id never writes again; the adapter's phases and the ledger writers both
/// ask this, and wrap it in their own errors.
pub fn void_decision(
    c: &mut impl GenericClient,
    run_id: &RunId,
) -> std::result::Result<Option<i64>, postgres::Error> {
    Ok(c.query_opt(
        "SELECT id FROM cutter_governance.review_decision \
         WHERE run_id = $1 AND decision = 'void' ORDER BY id LIMIT 1",
        &[&run_id.as_str()],
    )?
    .map(|r| r.get(0)))
}

/// Refuses a voided run. Checked inside the phase's transaction, after the run lock is
/// held: `void` takes the same lock, so it cannot commit while a phase of that run is
/// under way.
fn refuse_voided_run(c: &mut impl GenericClient, run_id: &RunId) -> Result<()> {
    match void_decision(c, run_id).doing("looking up a void decision of the run")? {
        None => Ok(()),
        Some(decision_id) => Err(Error::RunVoided {
            run_id: run_id.clone(),
            decision_id,
        }),
    }
}

/// A rehearsal authorization carries no approvals: it is good only on a throwaway
/// cluster (see [`crate::cluster::rehearsal_refused_by`]), whatever system identifier
/// its maker passed in.
fn refuse_rehearsal_on_real_server(
    c: &mut impl GenericClient,
    auth: &LiveAuthorization,
) -> Result<()> {
    match crate::cluster::rehearsal_refused_by(c, auth)
        .doing("reading the server's cluster_name")?
    {
        None => Ok(()),
        Some(cluster_name) => Err(Error::RehearsalOnRealServer {
            run_id: auth.run_id().clone(),
            cluster_name,
        }),
    }
}

/// The phase writes to the database its authorization names: name and OID, not only the
/// server (every database of a cluster shares its system identifier).
pub(crate) fn check_database(c: &mut impl GenericClient, auth: &LiveAuthorization) -> Result<()> {
    let connected = surface::target_database(c)?;
    if &connected != auth.database() {
        return Err(Error::WrongDatabase {
            authorized: Box::new(auth.database().clone()),
            connected: Box::new(connected),
        });
    }
    Ok(())
}

fn guard(c: &mut impl GenericClient, authorized: SystemIdentifier, phase: Phase) -> Result<()> {
    let connected = surface::system_identifier(c)?;
    if connected != authorized {
        return Err(Error::WrongTarget {
            authorized,
            connected,
        });
    }
    let mut problems = writer_role_problems(c)?;
    let triggers = surface::trigger_states(c)?;
    let hollow = surface::hollow_immutability_triggers(c)?;
    for (name, table) in IMMUTABILITY_TRIGGERS {
        match triggers.get(name).map(String::as_str) {
            Some("O") => {}
            Some(state) => problems.push(format!(
                "trigger {name} on {table} is not enabled (tgenabled = '{state}', needs 'O')"
            )),
            None => problems.push(format!("trigger {name} on {table} is missing")),
        }
        if let Some(runs) = hollow.get(name) {
            problems.push(format!(
                "trigger {name} on {table} executes {runs}, not {}",
                crate::schema::IMMUTABILITY_TRIGGER_FUNCTION
            ));
        }
    }
    let functions = surface::functions_present(c)?;
    for (name, signature) in FUNCTIONS {
        if !functions.get(name).copied().unwrap_or(false) {
            problems.push(format!("function {signature} is missing"));
        }
    }
    for t in cutter_core::mutation_surface() {
        let present: bool = c
            .query_one("SELECT to_regclass($1) IS NOT NULL", &[&t.to_string()])
            .doing("looking for the mutation-surface tables")?
            .get(0);
        if !present {
            problems.push(format!("table {t} is missing"));
        }
    }
    if problems.is_empty() {
        Ok(())
    } else {
        Err(Error::UnsafeTarget { phase, problems })
    }
}

/// A mutating phase runs only as the writer: never as a superuser (the append-only
/// and immutability triggers do not bind one that disables them, and it could write
/// anything), never as the owner of the ledger (whom the append-only trigger lets
/// through), and only as a member of `cutter_exec`. Checked inside each phase's
/// transaction; also what `doctor` reports.
pub fn writer_role_problems(c: &mut impl GenericClient) -> Result<Vec<String>> {
    let r = c
        .query_one(
            "SELECT current_user::text, \
                    coalesce((SELECT rolsuper FROM pg_catalog.pg_roles WHERE rolname = current_user), false), \
                    coalesce((SELECT pg_catalog.pg_has_role(current_user, n.nspowner, 'MEMBER') \
                                FROM pg_catalog.pg_namespace n WHERE n.nspname = 'cutter_governance'), false), \
                    coalesce((SELECT pg_catalog.pg_has_role(current_user, r.oid, 'MEMBER') \
                                FROM pg_catalog.pg_roles r WHERE r.rolname = $1), false)",
            &[&crate::schema::EXEC_ROLE],
        )
        .doing("reading the connected role")?;
    let user: String = r.get(0);
    let (superuser, owner, writer): (bool, bool, bool) = (r.get(1), r.get(2), r.get(3));
    let mut problems = Vec::new();
    if superuser {
        problems.push(format!(
            "connected as {user}, a superuser: runs write only as the writer role {}",
            crate::schema::EXEC_ROLE
        ));
    } else if owner {
        problems.push(format!(
            "connected as {user}, the owner of the ledger tables: runs write only as the writer role {}",
            crate::schema::EXEC_ROLE
        ));
    } else if !writer {
        problems.push(format!(
            "connected as {user}, which is not the writer role {} (nor a member of it)",
            crate::schema::EXEC_ROLE
        ));
    }
    Ok(problems)
}

fn refuse_used_change_set(
    c: &mut impl GenericClient,
    run_id: &RunId,
    change_set: &ChangeSetId,
) -> Result<()> {
    let n: i64 = c
        .query_one(
            "SELECT count(*) FROM public.information_unit WHERE change_set_id = $1",
            &[&change_set.as_str()],
        )
        .doing("cut_leg_a: looking for units of the change set in public.information_unit")?
        .get(0);
    if n > 0 {
        return Err(Error::ChangeSetExists {
            run_id: run_id.clone(),
            change_set: change_set.clone(),
            units: u64::try_from(n).unwrap_or(0),
        });
    }
    Ok(())
}

/// The plan-level inputs of cut_leg_a.
struct LegAInput<'a> {
    document_id: &'a str,
    source_version_id: &'a str,
    change_set: &'a ChangeSetId,
    total: u64,
    plan_digest: Sha256Digest,
    ids: (
        &'a cutter_core::DocumentId,
        &'a cutter_core::SourceVersionId,
    ),
    /// The diff the approvals name; `None` for a rehearsal, which nobody approves.
    authorized_diff: Option<Option<Sha256Digest>>,
}

/// Re-digests a streamed plan while it is written; or, for an amendment of a plan that
/// can read single rows back, reads back only the rows written.
struct DigestCheck<'p> {
    hasher: PlanHasher,
    expected: cutter_core::Sha256Digest,
    picker: Option<&'p dyn Picked>,
}

/// A validated plan whose facts are in memory and whose rows can be read back one by one.
trait Picked: cutter_core::PlanFacts {
    /// Rows `rows` (1-based, ascending), each checked against the validated row digest.
    fn pick(&self, rows: &[u64]) -> Result<Vec<CutPlanRow>>;
}

impl<F> Picked for StreamedPlan<F> {
    fn pick(&self, rows: &[u64]) -> Result<Vec<CutPlanRow>> {
        self.picked(rows).unwrap_or_else(|| {
            Err(Error::PlanRowChanged {
                row: rows.first().copied().unwrap_or(0),
                canonical_address: String::new(),
                why: "the plan cannot read rows back".into(),
            })
        })
    }
}

struct FailedBatch {
    server: ServerError,
    first_row: u64,
    rows: Vec<CutPlanRow>,
}

enum LegAFail {
    Batch(Box<FailedBatch>),
    Other(Error),
}

fn row_bytes(r: &CutPlanRow) -> usize {
    r.canonical_address.len()
        + r.title.len()
        + r.body.len()
        + r.actor.len()
        + r.unit_kind.len()
        + r.section_type.as_ref().map_or(0, String::len)
        + r.publication_type.len()
        + r.owner_ref.as_ref().map_or(0, String::len)
}

/// The body of cut_leg_a, inside the caller's transaction: compares each row with the
/// document's current text (`public.unit_current_text`) as it streams — a new address
/// goes to fn_iu_create_batch (each batch a contiguous run of plan rows, so an error
/// names its row), a changed one to fn_uv_amend_batch, an unchanged one nowhere — then
/// repeals the live units no row named, and refuses a diff the approvals do not name.
/// A first load (no live unit) is every row through fn_iu_create_batch, as before.
fn write_leg_a<R: Borrow<CutPlanRow>>(
    tx: &mut Transaction<'_>,
    input: &LegAInput<'_>,
    rows: impl Iterator<Item = R>,
    limits: BatchLimits,
    progress: &mut dyn FnMut(u64),
    mut check: Option<&mut DigestCheck>,
) -> std::result::Result<LegAReport, LegAFail> {
    let stmt = tx
        .prepare(BATCH_SQL)
        .doing("cut_leg_a: preparing public.fn_iu_create_batch")
        .map_err(LegAFail::Other)?;
    let live = crate::amend::live_units(tx, input.document_id).map_err(LegAFail::Other)?;
    let amending = !live.is_empty();
    if let Some(picker) = check.as_deref().and_then(|c| c.picker).filter(|_| amending) {
        return write_amendment_picked(tx, &stmt, input, picker, live, limits, progress);
    }
    let mut diff = DiffBuilder::new(live);
    let mut amend = AmendBatch::default();
    let mut report = LegAReport::empty(input.change_set);
    let mut batch: Vec<R> = Vec::with_capacity(limits.rows.min(100_000));
    let mut bytes = 0usize;
    let mut first_row = 1u64;
    let mut row_no = 0u64;
    let mut actor = String::new();
    let mut rows = rows.peekable();
    while let Some(r) = rows.next() {
        row_no += 1;
        if let Some(c) = check.as_deref_mut() {
            c.hasher.row(r.borrow());
        }
        let class = if amending {
            let row = r.borrow();
            let facts = RowFacts {
                canonical_address: &row.canonical_address,
                title: &row.title,
                body_sha256: Sha256Digest::of(row.body.as_bytes()),
            };
            let (entry, unit) = diff.row(row_no, &facts);
            if let (true, Some(u)) = (entry.class.writes(), unit) {
                amend.push(row_no, u.unit_id, Some(row), &row.actor);
            }
            entry.class
        } else {
            DiffClass::New
        };
        if actor.is_empty() {
            actor.clone_from(&r.borrow().actor);
        }
        // A new row that does not follow the batch's last row starts a new batch.
        if class == DiffClass::New && !batch.is_empty() && first_row + batch.len() as u64 != row_no
        {
            send_batch(tx, &stmt, input, &batch, first_row, &mut report)?;
            batch.clear();
            bytes = 0;
        }
        if class == DiffClass::New {
            if batch.is_empty() {
                first_row = row_no;
            }
            bytes += row_bytes(r.borrow());
            batch.push(r);
        }
        let last = rows.peek().is_none();
        let mut sent = last;
        if !batch.is_empty() && (batch.len() >= limits.rows || bytes >= limits.bytes || last) {
            send_batch(tx, &stmt, input, &batch, first_row, &mut report)?;
            batch.clear();
            bytes = 0;
            sent = true;
        }
        if amend.len() >= limits.rows || amend.bytes >= limits.bytes || last {
            sent |= amend.len() > 0;
            amend
                .send(tx, input, &mut report)
                .map_err(LegAFail::Other)?;
        }
        if sent {
            progress(row_no);
        }
    }
    if let Some(c) = check {
        let written = c.hasher.clone().finish();
        if written != c.expected {
            return Err(LegAFail::Other(Error::PlanChanged {
                validated: c.expected,
                written,
            }));
        }
    }
    let repealed: Vec<i64> = diff.unseen().map(|u| u.unit_id).collect();
    amend
        .repeal(tx, input, &repealed, &actor, limits, &mut report)
        .map_err(LegAFail::Other)?;
    let diff = diff.finish(input.ids.0.clone(), input.ids.1.clone(), input.plan_digest);
    check_diff(input, &diff)?;
    report.diff = amending.then(|| Box::new(diff));
    Ok(report)
}

/// Refuses a diff other than the one the approvals name.
fn check_diff(input: &LegAInput<'_>, diff: &PlanDiff) -> std::result::Result<(), LegAFail> {
    if let Some(authorized) = input.authorized_diff {
        let computed = diff.approval_digest();
        if computed != authorized {
            return Err(LegAFail::Other(Error::DiffNotAuthorized {
                authorized,
                computed,
            }));
        }
    }
    Ok(())
}

/// cut_leg_a of an amendment whose plan can read rows back: the diff is computed from
/// the facts the plan kept when it was validated (no re-reading of the plan), checked
/// against the approvals, and only the rows written (new and changed ones) are read back,
/// a batch at a time, each checked against the digest taken at validation. The same
/// batches and calls as [`write_leg_a`]: O(rows written) reading instead of O(plan).
fn write_amendment_picked(
    tx: &mut Transaction<'_>,
    stmt: &Statement,
    input: &LegAInput<'_>,
    plan: &dyn Picked,
    live: Vec<cutter_core::LiveUnit>,
    limits: BatchLimits,
    progress: &mut dyn FnMut(u64),
) -> std::result::Result<LegAReport, LegAFail> {
    let diff = cutter_core::diff_plan(plan, live);
    check_diff(input, &diff)?;
    let mut report = LegAReport::empty(input.change_set);
    // A repeal is recorded with the plan's actor: the first row's, as when streaming.
    let actor = plan
        .pick(&[1])
        .map_err(LegAFail::Other)?
        .pop()
        .map(|r| r.actor)
        .unwrap_or_default();
    let wanted: Vec<u64> = diff.written().filter_map(|e| e.plan_row).collect();
    let mut batch: Vec<CutPlanRow> = Vec::new();
    let (mut bytes, mut first_row) = (0usize, 1u64);
    let mut amend = AmendBatch::default();
    for chunk in wanted.chunks(limits.rows.clamp(1, 10_000)) {
        let rows = plan.pick(chunk).map_err(LegAFail::Other)?;
        for (&n, row) in chunk.iter().zip(rows) {
            let entry = usize::try_from(n)
                .ok()
                .and_then(|i| diff.entries.get(i.wrapping_sub(1)))
                .filter(|e| e.plan_row == Some(n));
            let Some(entry) = entry else {
                return Err(LegAFail::Other(Error::PlanRowChanged {
                    row: n,
                    canonical_address: row.canonical_address,
                    why: "the diff has no entry for it".into(),
                }));
            };
            match (entry.class, entry.unit_id) {
                (DiffClass::New, _) => {
                    if !batch.is_empty() && first_row + batch.len() as u64 != n {
                        send_batch(tx, stmt, input, &batch, first_row, &mut report)?;
                        batch.clear();
                        bytes = 0;
                    }
                    if batch.is_empty() {
                        first_row = n;
                    }
                    bytes += row_bytes(&row);
                    batch.push(row);
                    if batch.len() >= limits.rows || bytes >= limits.bytes {
                        send_batch(tx, stmt, input, &batch, first_row, &mut report)?;
                        batch.clear();
                        bytes = 0;
                    }
                }
                (_, Some(unit)) => {
                    amend.push(n, unit, Some(&row), &row.actor);
                    if amend.len() >= limits.rows || amend.bytes >= limits.bytes {
                        amend
                            .send(tx, input, &mut report)
                            .map_err(LegAFail::Other)?;
                    }
                }
                (_, None) => {
                    return Err(LegAFail::Other(Error::PlanRowChanged {
                        row: n,
                        canonical_address: row.canonical_address,
                        why: "the diff names no unit for a changed row".into(),
                    }))
                }
            }
            progress(n);
        }
    }
    if !batch.is_empty() {
        send_batch(tx, stmt, input, &batch, first_row, &mut report)?;
    }
    amend
        .send(tx, input, &mut report)
        .map_err(LegAFail::Other)?;
    let repealed: Vec<i64> = diff
        .entries
        .iter()
        .filter(|e| e.class == DiffClass::Repealed)
        .filter_map(|e| e.unit_id)
        .collect();
    amend
        .repeal(tx, input, &repealed, &actor, limits, &mut report)
        .map_err(LegAFail::Other)?;
    progress(input.total);
    report.diff = Some(Box::new(diff));
    Ok(report)
}

impl LegAReport {
    fn empty(change_set: &ChangeSetId) -> LegAReport {
        LegAReport {
            change_set_id: change_set.clone(),
            units_created: 0,
            versions_created: 0,
            versions_amended: 0,
            repeals: 0,
            diff: None,
            first_unit_id: None,
            last_unit_id: None,
            batches: 0,
        }
    }
}

/// One batch of new versions (changed rows, then repeals) for fn_uv_amend_batch.
#[derive(Default)]
struct AmendBatch {
    row: Vec<i64>,
    unit: Vec<i64>,
    address: Vec<String>,
    title: Vec<Option<String>>,
    body: Vec<String>,
    actor: Vec<String>,
    repeal: Vec<bool>,
    bytes: usize,
}

impl AmendBatch {
    fn len(&self) -> usize {
        self.unit.len()
    }

    /// A new version of `unit` with `row`'s text, or (`row` `None`) its repeal.
    fn push(&mut self, row_no: u64, unit: i64, row: Option<&CutPlanRow>, actor: &str) {
        self.row.push(i64::try_from(row_no).unwrap_or(i64::MAX));
        self.unit.push(unit);
        self.address
            .push(row.map(|r| r.canonical_address.clone()).unwrap_or_default());
        self.title.push(row.map(|r| r.title.clone()));
        self.body
            .push(row.map(|r| r.body.clone()).unwrap_or_default());
        self.actor.push(actor.to_string());
        self.repeal.push(row.is_none());
        self.bytes += row.map_or(0, row_bytes);
    }

    /// Repeals `units` (recorded with `actor`), a batch at a time.
    fn repeal(
        &mut self,
        tx: &mut Transaction<'_>,
        input: &LegAInput<'_>,
        units: &[i64],
        actor: &str,
        limits: BatchLimits,
        report: &mut LegAReport,
    ) -> Result<()> {
        for chunk in units.chunks(limits.rows.max(1)) {
            for &id in chunk {
                self.push(0, id, None, actor);
            }
            self.send(tx, input, report)?;
        }
        Ok(())
    }

    fn send(
        &mut self,
        tx: &mut Transaction<'_>,
        input: &LegAInput<'_>,
        report: &mut LegAReport,
    ) -> Result<()> {
        if self.unit.is_empty() {
            return Ok(());
        }
        let result = tx.query_one(
            AMEND_SQL,
            &[
                &input.change_set.as_str(),
                &input.document_id,
                &input.source_version_id,
                &self.row,
                &self.unit,
                &self.title,
                &self.body,
                &self.actor,
                &self.repeal,
            ],
        );
        let taken = std::mem::take(self);
        match result {
            Ok(r) => {
                let n = u64::try_from(r.get::<_, i64>(0)).unwrap_or(0);
                let repeals = taken.repeal.iter().filter(|r| **r).count() as u64;
                report.repeals += repeals;
                report.versions_amended += n - repeals.min(n);
                report.versions_created += n;
                report.batches += 1;
                Ok(())
            }
            Err(e) => {
                let server = ServerError::from_pg(&e);
                match server.plan_row().filter(|n| *n > 0) {
                    Some(n) => Err(Error::PlanRow {
                        phase: Phase::CutLegA,
                        row: n,
                        total: input.total,
                        canonical_address: taken
                            .row
                            .iter()
                            .position(|r| u64::try_from(*r).ok() == Some(n))
                            .map(|i| taken.address[i].clone())
                            .unwrap_or_default(),
                        server: Box::new(server),
                    }),
                    None => Err(Error::Db {
                        doing: format!(
                            "cut_leg_a: public.fn_uv_amend_batch (new versions and repeals of document {})",
                            input.document_id
                        ),
                        server: Box::new(server),
                        next: "the phase rolled back; `cutter plan diff` shows what the plan changes".into(),
                    }),
                }
            }
        }
    }
}

fn send_batch<R: Borrow<CutPlanRow>>(
    tx: &mut Transaction<'_>,
    stmt: &Statement,
    input: &LegAInput<'_>,
    batch: &[R],
    first_row: u64,
    report: &mut LegAReport,
) -> std::result::Result<(), LegAFail> {
    let col =
        |f: fn(&CutPlanRow) -> &str| -> Vec<&str> { batch.iter().map(|r| f(r.borrow())).collect() };
    let address = col(|r| &r.canonical_address);
    let title = col(|r| &r.title);
    let body = col(|r| &r.body);
    let actor = col(|r| &r.actor);
    let kind = col(|r| &r.unit_kind);
    let publication = col(|r| &r.publication_type);
    let section: Vec<Option<&str>> = batch
        .iter()
        .map(|r| r.borrow().section_type.as_deref())
        .collect();
    let owner: Vec<Option<&str>> = batch
        .iter()
        .map(|r| r.borrow().owner_ref.as_deref())
        .collect();
    let first = i64::try_from(first_row).unwrap_or(i64::MAX);
    let result = tx.query_one(
        stmt,
        &[
            &input.change_set.as_str(),
            &input.document_id,
            &input.source_version_id,
            &first,
            &address,
            &title,
            &body,
            &actor,
            &kind,
            &section,
            &publication,
            &owner,
        ],
    );
    match result {
        Ok(row) => {
            let created: i64 = row.get(0);
            let first_id: Option<i64> = row.get(1);
            let last_id: Option<i64> = row.get(2);
            let created = u64::try_from(created).unwrap_or(0);
            if created != batch.len() as u64 {
                return Err(LegAFail::Other(Error::Db {
                    doing: format!("cut_leg_a: rows {first_row}–{}", first_row + batch.len() as u64 - 1),
                    server: Box::new(ServerError {
                        message: format!("fn_iu_create_batch created {created} of {} units", batch.len()),
                        ..ServerError::default()
                    }),
                    next: "the phase rolled back; check the target's fn_iu_create_batch against the reference".into(),
                }));
            }
            report.units_created += created;
            report.versions_created += created;
            report.batches += 1;
            report.first_unit_id = match (report.first_unit_id, first_id) {
                (Some(a), Some(b)) => Some(a.min(b)),
                (a, b) => a.or(b),
            };
            report.last_unit_id = match (report.last_unit_id, last_id) {
                (Some(a), Some(b)) => Some(a.max(b)),
                (a, b) => a.or(b),
            };
            Ok(())
        }
        Err(e) => Err(LegAFail::Batch(Box::new(FailedBatch {
            server: ServerError::from_pg(&e),
            first_row,
            rows: batch.iter().map(|r| r.borrow().clone()).collect(),
        }))),
    }
}

/// One plan row through `fn_iu_create_batch` as a batch of one (the writer may not call
/// the per-row `fn_iu_create`, reference V5).
fn create_one(
    tx: &mut Transaction<'_>,
    stmt: &Statement,
    input: &LegAInput<'_>,
    r: &CutPlanRow,
) -> std::result::Result<i64, postgres::Error> {
    let row = tx.query_one(
        stmt,
        &[
            &input.change_set.as_str(),
            &input.document_id,
            &input.source_version_id,
            &1i64,
            &vec![r.canonical_address.as_str()],
            &vec![r.title.as_str()],
            &vec![r.body.as_str()],
            &vec![r.actor.as_str()],
            &vec![r.unit_kind.as_str()],
            &vec![r.section_type.as_deref()],
            &vec![r.publication_type.as_str()],
            &vec![r.owner_ref.as_deref()],
        ],
    )?;
    Ok(row.get(0))
}

/// `Key (canonical_address)=(…) already exists.` → the batch row with that address.
fn unique_violation_row(server: &ServerError, rows: &[CutPlanRow]) -> Option<usize> {
    if server.sqlstate.as_deref() != Some("23505") {
        return None;
    }
    let addr = server
        .detail
        .as_deref()?
        .strip_prefix("Key (canonical_address)=(")?
        .strip_suffix(") already exists.")?;
    rows.iter().position(|r| r.canonical_address == addr)
}

/// The body of lifecycle_enact, inside the caller's transaction: the change set's draft
/// units (with their first versions), then the new versions and repeals it added to
/// live units (an amendment). Returns units plus versions enacted.
fn enact_in(c: &mut impl GenericClient, change_set: &ChangeSetId, run_id: &RunId) -> Result<u64> {
    let units = enact_units(c, change_set, run_id)?;
    let actor = application_name(run_id);
    let versions: i64 = c
        .query_one(
            "SELECT public.fn_uv_change_set_status($1, 'enacted', $2, $3)",
            &[&change_set.as_str(), &run_id.as_str(), &actor],
        )
        .doing(&format!(
            "lifecycle_enact: public.fn_uv_change_set_status over the new versions of change set {change_set}"
        ))?
        .get(0);
    Ok(units + u64::try_from(versions).unwrap_or(0))
}

fn enact_units(
    c: &mut impl GenericClient,
    change_set: &ChangeSetId,
    run_id: &RunId,
) -> Result<u64> {
    let actor = application_name(run_id);
    // One call for the whole change set (V9): the run gate judges each table once,
    // not twice per unit.
    let n: i64 = c
        .query_one(
            "SELECT units_enacted FROM public.fn_iu_enact_change_set($1, $2, $3)",
            &[&change_set.as_str(), &actor, &run_id.as_str()],
        )
        .doing(&format!(
            "lifecycle_enact: public.fn_iu_enact_change_set over the draft units of change set {change_set}"
        ))?
        .get(0);
    Ok(u64::try_from(n).unwrap_or(0))
}

/// The transaction of one mutating phase whose SQL lives elsewhere. Rolls back on drop
/// unless [`PhaseTransaction::commit`] consumes it.
#[must_use = "a phase transaction that is dropped rolls back"]
pub struct PhaseTransaction<'a> {
    tx: Transaction<'a>,
    phase: Phase,
    run_id: RunId,
    change_set: ChangeSetId,
}

impl fmt::Debug for PhaseTransaction<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PhaseTransaction")
            .field("phase", &self.phase)
            .field("run_id", &self.run_id)
            .finish_non_exhaustive()
    }
}

impl<'a> PhaseTransaction<'a> {
    /// The phase.
    pub fn phase(&self) -> Phase {
        self.phase
    }
    /// The authorized run.
    pub fn run_id(&self) -> &RunId {
        &self.run_id
    }
    /// The run's change set.
    pub fn change_set_id(&self) -> &ChangeSetId {
        &self.change_set
    }
    /// The transaction, to run the phase's SQL (bind parameters only).
    pub fn client(&mut self) -> &mut Transaction<'a> {
        &mut self.tx
    }
    /// Commits. If the connection fails during COMMIT the error says the outcome is
    /// unknown (recover asks the target).
    pub fn commit(self) -> Result<()> {
        commit(self.tx, self.phase, &self.change_set)
    }
    /// Rolls back explicitly (dropping does the same).
    pub fn rollback(self) -> Result<()> {
        let phase = self.phase;
        self.tx.rollback().doing(&format!("{phase}: ROLLBACK"))
    }
}

/// A transaction that always rolls back: the rollback-only proof runs the real SQL of
/// the phases in it. There is no way to commit it.
#[must_use = "a rollback-only transaction proves nothing unless steps run in it"]
pub struct RollbackOnly<'a> {
    tx: Transaction<'a>,
    run_id: RunId,
    batch: BatchLimits,
    xid: i64,
    commit_trap: bool,
}

impl fmt::Debug for RollbackOnly<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RollbackOnly")
            .field("run_id", &self.run_id)
            .finish_non_exhaustive()
    }
}

impl<'a> RollbackOnly<'a> {
    /// The transaction, for ad-hoc SQL of a proof.
    pub fn client(&mut self) -> &mut Transaction<'a> {
        &mut self.tx
    }

    /// The proof's run id (the change set is `cs-<run id>`).
    pub fn run_id(&self) -> &RunId {
        &self.run_id
    }

    /// Runs `f` in a savepoint: kept (still inside this transaction) if it succeeds,
    /// undone if it fails, so a proof can continue after an expected error.
    pub fn step<R>(&mut self, f: impl FnOnce(&mut RollbackOnly<'_>) -> Result<R>) -> Result<R> {
        let nested = self.tx.transaction().doing("SAVEPOINT")?;
        let mut inner = RollbackOnly {
            tx: nested,
            run_id: self.run_id.clone(),
            batch: self.batch,
            xid: self.xid,
            commit_trap: self.commit_trap,
        };
        match f(&mut inner) {
            Ok(v) => {
                inner.tx.commit().doing("RELEASE SAVEPOINT")?;
                Ok(v)
            }
            Err(e) => {
                inner.tx.rollback().doing("ROLLBACK TO SAVEPOINT")?;
                Err(e)
            }
        }
    }

    /// Runs `f` in a savepoint that is always rolled back, returning what `f` returned:
    /// a proof step whose effects must not outlive it (or that is expected to fail).
    pub fn probe<R>(&mut self, f: impl FnOnce(&mut RollbackOnly<'_>) -> Result<R>) -> Result<R> {
        let nested = self.tx.transaction().doing("SAVEPOINT")?;
        let mut inner = RollbackOnly {
            tx: nested,
            run_id: self.run_id.clone(),
            batch: self.batch,
            xid: self.xid,
            commit_trap: self.commit_trap,
        };
        let r = f(&mut inner);
        inner.tx.rollback().doing("ROLLBACK TO SAVEPOINT")?;
        r
    }

    /// The guard every mutating phase runs (system identifier, triggers, functions).
    pub fn guard(&mut self, expected: SystemIdentifier, phase: Phase) -> Result<()> {
        guard(&mut self.tx, expected, phase)
    }

    /// cut_leg_a's SQL for `plan`, tagged with this proof's change set.
    pub fn cut_leg_a(
        &mut self,
        plan: &ValidPlan,
        progress: &mut dyn FnMut(u64),
    ) -> Result<LegAReport> {
        let p = plan.plan();
        let change_set = ChangeSetId::for_run(&self.run_id);
        // The proof's diff is whatever the live document gives: nobody approves it.
        let input = LegAInput {
            document_id: p.document_id.as_str(),
            source_version_id: p.source_version_id.as_str(),
            change_set: &change_set,
            total: plan.rows().len() as u64,
            plan_digest: plan.digest(),
            ids: (&p.document_id, &p.source_version_id),
            authorized_diff: None,
        };
        refuse_used_change_set(&mut self.tx, &self.run_id, &change_set)?;
        match write_leg_a(
            &mut self.tx,
            &input,
            plan.rows().iter(),
            self.batch,
            progress,
            None,
        ) {
            Ok(r) => Ok(r),
            Err(LegAFail::Other(e)) => Err(e),
            Err(LegAFail::Batch(b)) => {
                let b = *b;
                let row = b.server.plan_row().or_else(|| {
                    unique_violation_row(&b.server, &b.rows).map(|i| b.first_row + i as u64)
                });
                Err(match row {
                    Some(n) => Error::PlanRow {
                        phase: Phase::CutLegA,
                        row: n,
                        total: input.total,
                        canonical_address: plan
                            .rows()
                            .get(usize::try_from(n).unwrap_or(usize::MAX).wrapping_sub(1))
                            .map(|r| r.canonical_address.clone())
                            .unwrap_or_default(),
                        server: Box::new(b.server),
                    },
                    None => Error::PlanBatch {
                        phase: Phase::CutLegA,
                        first_row: b.first_row,
                        last_row: b.first_row + b.rows.len().saturating_sub(1) as u64,
                        total: input.total,
                        server: Box::new(b.server),
                    },
                })
            }
        }
    }

    /// lifecycle_enact's SQL for this proof's change set.
    pub fn lifecycle_enact(&mut self) -> Result<u64> {
        let change_set = ChangeSetId::for_run(&self.run_id);
        enact_in(&mut self.tx, &change_set, &self.run_id)
    }

    /// A snapshot as seen inside this transaction (its own writes included).
    pub fn snapshot(&mut self) -> Result<Snapshot> {
        surface::snapshot_in(&mut self.tx)
    }

    /// Whether the server itself refuses a COMMIT of this transaction (a deferred
    /// trigger raises at commit time; needs the TEMP privilege). Without it, a COMMIT
    /// sent as raw SQL is still detected by [`RollbackOnly::rollback`].
    pub fn commit_refused_by_server(&self) -> bool {
        self.commit_trap
    }

    /// Rolls back (dropping does the same), after checking that the transaction was not
    /// ended behind its back (a raw `COMMIT` or `ROLLBACK` sent through
    /// [`RollbackOnly::client`]).
    pub fn rollback(mut self) -> Result<()> {
        let same = self
            .tx
            .query_one("SELECT txid_current()", &[])
            .map(|r| r.get::<_, i64>(0) == self.xid)
            .unwrap_or(true); // an aborted transaction is still the same transaction
        self.tx.rollback().doing("rollback-only proof: ROLLBACK")?;
        if same {
            Ok(())
        } else {
            Err(Error::RollbackOnlyEnded)
        }
    }
}
