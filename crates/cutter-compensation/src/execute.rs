//! The executors: compensation A (revert the change set's draft units, and the draft
//! versions an amendment added to enacted units) and B (append the
//! compensating `reverted` review decision), each ONE transaction that first checks the
//! connected server is the run's target, takes the per-target run lock for its duration,
//! and checks the immutability triggers and functions.
//!
//! Idempotent: each step first reads what the database already holds; a step already
//! done writes nothing and says so, so a compensation interrupted at any point (process
//! killed inside a step: the server rolls it back; between A and B: A is found done) is
//! finished by running it again.

use std::collections::BTreeMap;
use std::fmt;

use postgres::{GenericClient, Transaction};
use serde::Serialize;

use cutter_core::{ChangeSetId, Compensation, RunId, Sha256Digest};
use cutter_pg::schema::IMMUTABILITY_TRIGGERS;
use cutter_pg::{LockHolder, ServerError, APPLICATION_NAME_PREFIX, RUN_LOCK_KEY};

use crate::approval::{RevertKind, RevertMode};
use crate::error::{Doing, Error, Result, UnitRef};
use crate::plan::{CompensationPlan, Step};
use crate::recount::{recount, Before, Expected};

/// What the database holds of one change set. Read by every step before it writes, and by
/// `cutter compensate --show`.
#[derive(Clone, PartialEq, Eq, Debug, Serialize)]
pub struct ChangeSetState {
    /// The change set.
    pub change_set: ChangeSetId,
    /// Its units by lifecycle status.
    pub units: BTreeMap<String, u64>,
    /// The versions of its units by lifecycle status.
    pub versions: BTreeMap<String, u64>,
    /// The versions it added to units of other change sets (an amendment's new wordings
    /// and repeals), by lifecycle status.
    pub amendments: BTreeMap<String, u64>,
    /// Lifecycle log rows of its units.
    pub lifecycle_log_rows: u64,
    /// Rows naming it in `cut_change_set` and `cut_change_set_affected_row`.
    pub ledger_rows: u64,
    /// Review decisions naming it (claim, reverted, void, escalation).
    pub review_decisions: u64,
    /// Lifecycle log rows naming it (also of units no longer present).
    pub logged: u64,
    /// The `reverted` review decision (compensation B), if recorded.
    pub reverted_decision: Option<i64>,
}

impl ChangeSetState {
    /// Units in `status`.
    pub fn units_in(&self, status: &str) -> u64 {
        self.units.get(status).copied().unwrap_or(0)
    }
    /// All its units.
    pub fn units_total(&self) -> u64 {
        self.units.values().sum()
    }
    /// Units still draft or enacted (committed writes not reverted).
    pub fn live_units(&self) -> u64 {
        self.units_total() - self.units_in("withdrawn")
    }
    /// Amended versions in `status`.
    pub fn amendments_in(&self, status: &str) -> u64 {
        self.amendments.get(status).copied().unwrap_or(0)
    }
    /// All its amended versions.
    pub fn amendments_total(&self) -> u64 {
        self.amendments.values().sum()
    }
    /// Amended versions still draft or enacted.
    pub fn live_amendments(&self) -> u64 {
        self.amendments_total() - self.amendments_in("withdrawn")
    }
    /// All versions of its units.
    pub fn versions_total(&self) -> u64 {
        self.versions.values().sum()
    }
    /// Whether anything in the target carries the change set.
    pub fn is_known(&self) -> bool {
        self.units_total() > 0
            || self.amendments_total() > 0
            || self.ledger_rows > 0
            || self.review_decisions > 0
            || self.logged > 0
    }
}

impl fmt::Display for ChangeSetState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let by = |m: &BTreeMap<String, u64>| {
            if m.is_empty() {
                "none".to_string()
            } else {
                m.iter()
                    .map(|(k, v)| format!("{v} {k}"))
                    .collect::<Vec<_>>()
                    .join(", ")
            }
        };
        write!(
            f,
            "change set {}: units {}; versions {}; versions of other units (amendment) {}; {} lifecycle log row(s); {} ledger row(s); {} review decision(s); compensation B {}",
            self.change_set,
            by(&self.units),
            by(&self.versions),
            by(&self.amendments),
            self.lifecycle_log_rows,
            self.ledger_rows,
            self.review_decisions,
            match self.reverted_decision {
                Some(id) => format!("recorded (review_decision id {id})"),
                None => "not recorded".into(),
            }
        )
    }
}

/// The versions a change set added to units of other change sets (an amendment), by
/// status: they carry the change set themselves (reference V6).
const AMENDMENTS_BY_STATUS: &str =
    "SELECT uv.lifecycle_status, count(*) FROM public.unit_version uv \
     JOIN public.information_unit iu ON iu.id = uv.information_unit_id \
     WHERE uv.change_set_id = $1 AND iu.change_set_id IS DISTINCT FROM $1 GROUP BY 1";

fn by_status(
    c: &mut impl GenericClient,
    sql: &str,
    cs: &ChangeSetId,
) -> Result<BTreeMap<String, u64>> {
    Ok(c.query(sql, &[&cs.as_str()])
        .doing(|| format!("reading the rows of change set {cs}"))?
        .iter()
        .map(|r| {
            let n: i64 = r.get(1);
            (r.get::<_, String>(0), u64::try_from(n).unwrap_or(0))
        })
        .collect())
}

/// Reads what the database holds of `change_set` (read-only; works as `cutter_exec` or
/// `cutter_verify`).
pub fn inspect<C: GenericClient>(
    client: &mut C,
    change_set: &ChangeSetId,
) -> Result<ChangeSetState> {
    let units = by_status(
        client,
        "SELECT lifecycle_status, count(*) FROM public.information_unit \
         WHERE change_set_id = $1 GROUP BY 1",
        change_set,
    )?;
    let versions = by_status(
        client,
        "SELECT uv.lifecycle_status, count(*) FROM public.unit_version uv \
         JOIN public.information_unit iu ON iu.id = uv.information_unit_id \
         WHERE iu.change_set_id = $1 GROUP BY 1",
        change_set,
    )?;
    let amendments = by_status(client, AMENDMENTS_BY_STATUS, change_set)?;
    let row = client
        .query_one(
            "SELECT (SELECT count(*) FROM public.iu_lifecycle_log g \
                       JOIN public.information_unit iu ON iu.id = g.information_unit_id \
                      WHERE iu.change_set_id = $1), \
                    (SELECT count(*) FROM cutter_governance.cut_change_set WHERE change_set_id = $1) \
                  + (SELECT count(*) FROM cutter_governance.cut_change_set_affected_row WHERE change_set_id = $1), \
                    (SELECT count(*) FROM cutter_governance.review_decision WHERE change_set_id = $1), \
                    (SELECT count(*) FROM public.iu_lifecycle_log WHERE change_set_id = $1)",
            &[&change_set.as_str()],
        )
        .doing(|| format!("reading the lifecycle log and ledger rows of change set {change_set}"))?;
    let n = |i: usize| u64::try_from(row.get::<_, i64>(i)).unwrap_or(0);
    Ok(ChangeSetState {
        change_set: change_set.clone(),
        units,
        versions,
        amendments,
        lifecycle_log_rows: n(0),
        ledger_rows: n(1),
        review_decisions: n(2),
        logged: n(3),
        reverted_decision: cutter_governance::is_reverted(client, change_set)?,
    })
}

/// Whether a step wrote or found its work done.
#[derive(Clone, Copy, PartialEq, Eq, Debug, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum StepOutcome {
    /// The step wrote and committed.
    Done,
    /// The database already held the step's result; nothing was written.
    AlreadyDone,
}

/// What one step did.
#[derive(Clone, PartialEq, Eq, Debug, Serialize)]
pub struct StepReport {
    /// A or B.
    pub step: Step,
    /// Written, or already done.
    pub outcome: StepOutcome,
    /// For A: soft or hard.
    pub revert: Option<RevertKind>,
    /// For A: units withdrawn or deleted now (done), or found reverted (already done).
    pub units: u64,
    /// For A: their versions.
    pub versions: u64,
    /// For A (soft): lifecycle log rows written.
    pub lifecycle_log_rows: u64,
    /// For B: the `reverted` review decision.
    pub decision_id: Option<i64>,
}

impl fmt::Display for StepReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match (self.step, self.outcome, self.revert) {
            (Step::A, StepOutcome::Done, Some(RevertKind::Hard)) => write!(
                f,
                "A (hard): {} draft unit(s) and {} version(s) deleted; the re-count equals the pre snapshot",
                self.units, self.versions
            ),
            (Step::A, StepOutcome::Done, _) => write!(
                f,
                "A (soft): {} unit(s) and {} version(s) withdrawn, {} lifecycle log row(s) written, lineage kept; \
                 the re-count matched the pre snapshot",
                self.units, self.versions, self.lifecycle_log_rows
            ),
            (Step::A, StepOutcome::AlreadyDone, _) if self.units == 0 => write!(
                f,
                "A: already done: no unit of the change set remains (hard-deleted earlier); nothing written"
            ),
            (Step::A, StepOutcome::AlreadyDone, _) => write!(
                f,
                "A: already done: all {} unit(s) of the change set are withdrawn; nothing written",
                self.units
            ),
            (Step::B, StepOutcome::Done, _) => write!(
                f,
                "B: `reverted` review_decision id {} appended",
                self.decision_id.unwrap_or(0)
            ),
            (Step::B, StepOutcome::AlreadyDone, _) => write!(
                f,
                "B: already done: `reverted` review_decision id {}; nothing written",
                self.decision_id.unwrap_or(0)
            ),
        }
    }
}

/// What a compensation did.
#[derive(Clone, PartialEq, Eq, Debug, Serialize)]
pub struct CompensationReport {
    /// The compensated run.
    pub run_id: RunId,
    /// Its change set.
    pub change_set: ChangeSetId,
    /// The revert run named in the lifecycle log and the `reverted` decision.
    pub revert_run: RunId,
    /// The matrix's answer that was executed.
    pub compensation: Compensation,
    /// The steps, in order (empty when the database needed nothing).
    pub steps: Vec<StepReport>,
}

impl CompensationReport {
    /// Whether every step was already done: the call wrote nothing.
    pub fn already_compensated(&self) -> bool {
        !self.steps.is_empty()
            && self
                .steps
                .iter()
                .all(|s| s.outcome == StepOutcome::AlreadyDone)
    }
    /// Whether any step wrote.
    pub fn wrote(&self) -> bool {
        self.steps.iter().any(|s| s.outcome == StepOutcome::Done)
    }
}

impl fmt::Display for CompensationReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(
            f,
            "compensation {} of run {} (change set {}), revert run {}",
            self.compensation, self.run_id, self.change_set, self.revert_run
        )?;
        if self.steps.is_empty() {
            return writeln!(
                f,
                "  {}: nothing to do in the database",
                self.compensation.describe()
            );
        }
        for s in &self.steps {
            writeln!(f, "  {s}")?;
        }
        if self.already_compensated() {
            writeln!(f, "  already compensated: nothing was written")?;
        }
        Ok(())
    }
}

/// A run id for the revert of `run`: `<run>-revert`, or, when that is longer than 64
/// characters, the first 48 characters of the run id, 8 hex digits of its SHA-256 and
/// `-revert`. The same run always gets the same revert run, so a compensation run again
/// names the same revert run.
pub fn revert_run_for(run: &RunId) -> RunId {
    let simple = format!("{run}-revert");
    let id = if simple.len() <= 64 {
        simple
    } else {
        let hash = Sha256Digest::of(run.as_str().as_bytes()).to_hex();
        format!("{}-{}-revert", &run.as_str()[..48], &hash[..8])
    };
    RunId::new(id).unwrap_or_else(|_| run.clone())
}

fn check_actor(actor: &str) -> Result<()> {
    if actor.trim().is_empty() || actor.chars().any(char::is_control) {
        Err(Error::Invalid(format!(
            "actor {actor:?} is not usable: give a non-empty name without control characters"
        )))
    } else {
        Ok(())
    }
}

fn check_step(plan: &CompensationPlan, step: Step, revert_run: &RunId, actor: &str) -> Result<()> {
    check_actor(actor)?;
    if !plan.steps().contains(&step) {
        return Err(Error::NotPrescribed {
            run_id: plan.run_id().clone(),
            prescribed: plan.compensation(),
            step,
        });
    }
    if revert_run == plan.run_id() {
        return Err(Error::Invalid(format!(
            "the revert run must be a new run id, not the compensated run {} (see revert_run_for)",
            plan.run_id()
        )));
    }
    if plan.pre_snapshot().system_identifier != plan.target() {
        return Err(Error::SnapshotOtherServer {
            run_id: plan.run_id().clone(),
            snapshot: plan.pre_snapshot().system_identifier,
            target: plan.target(),
        });
    }
    Ok(())
}

fn lock_holder(c: &mut impl GenericClient) -> Result<LockHolder> {
    Ok(cutter_pg::run_lock_holder(c)?
        .unwrap_or_else(|| LockHolder::unknown("the lock was released meanwhile")))
}

/// The checks every step runs first, inside its transaction: the server is the run's
/// target; the per-target run lock (held to the end of the transaction, so a killed
/// process never leaves it behind); the session is the writer role; the immutability
/// triggers are enabled and the functions compensation A calls exist.
fn guard(tx: &mut Transaction<'_>, plan: &CompensationPlan, revert_run: &RunId) -> Result<()> {
    let connected = cutter_pg::surface::system_identifier(tx)?;
    if connected != plan.target() {
        return Err(Error::WrongTarget {
            run_id: plan.run_id().clone(),
            expected: plan.target(),
            connected,
        });
    }
    let mut app = format!("{APPLICATION_NAME_PREFIX}{revert_run}");
    app.truncate(63);
    tx.execute("SELECT set_config('application_name', $1, true)", &[&app])
        .doing(|| "setting application_name".into())?;
    let got: bool = tx
        .query_one(
            "SELECT pg_try_advisory_xact_lock($1, $2)",
            &[&RUN_LOCK_KEY.0, &RUN_LOCK_KEY.1],
        )
        .doing(|| "taking the per-target run lock (pg_try_advisory_xact_lock)".into())?
        .get(0);
    if !got {
        return Err(Error::Locked {
            run_id: plan.run_id().clone(),
            revert_run: revert_run.clone(),
            holder: Box::new(lock_holder(tx)?),
        });
    }
    // Only the writer compensates: never a superuser or the ledger's owner.
    let mut problems = cutter_pg::writer_role_problems(tx)?;
    let triggers = cutter_pg::surface::trigger_states(tx)?;
    for (name, table) in IMMUTABILITY_TRIGGERS {
        match triggers.get(name).map(String::as_str) {
            Some("O") => {}
            Some(state) => problems.push(format!(
                "trigger {name} on {table} is not enabled (tgenabled = '{state}', needs 'O')"
            )),
            None => problems.push(format!("trigger {name} on {table} is missing")),
        }
    }
    let functions = cutter_pg::surface::functions_present(tx)?;
    for name in [
        "fn_iu_withdraw",
        "fn_iu_hard_delete_draft",
        "fn_uv_change_set_status",
        "fn_uv_hard_delete_draft",
    ] {
        if !functions.get(name).copied().unwrap_or(false) {
            problems.push(format!("function public.{name} is missing"));
        }
    }
    if problems.is_empty() {
        Ok(())
    } else {
        Err(Error::UnsafeTarget {
            run_id: plan.run_id().clone(),
            problems,
        })
    }
}

/// Whether the three public tables equal the pre snapshot (rows and content digests).
fn public_tables_as_before(tx: &mut Transaction<'_>, plan: &CompensationPlan) -> Result<bool> {
    for name in crate::recount::PUBLIC {
        let t = cutter_core::TableName::new("public", name)
            .map_err(|e| Error::Invalid(e.to_string()))?;
        let now = cutter_pg::surface::table_stat(tx, &t, None)?;
        if plan.pre_snapshot().tables.get(&t) != Some(&now) {
            return Ok(false);
        }
    }
    Ok(true)
}

fn units_where(
    tx: &mut Transaction<'_>,
    cs: &ChangeSetId,
    status_sql: &str,
) -> Result<Vec<UnitRef>> {
    Ok(tx
        .query(
            &format!(
                "SELECT id, canonical_address, lifecycle_status FROM public.information_unit \
                 WHERE change_set_id = $1 AND {status_sql} ORDER BY id LIMIT 20"
            ),
            &[&cs.as_str()],
        )
        .doing(|| format!("listing units of change set {cs}"))?
        .iter()
        .map(|r| UnitRef {
            id: r.get(0),
            canonical_address: r.get(1),
            lifecycle_status: r.get(2),
        })
        .collect())
}

/// The first 20 versions `change_set` added to units of other change sets whose status is
/// `status`, named by unit, address and version number.
fn amendments_where(
    tx: &mut Transaction<'_>,
    cs: &ChangeSetId,
    status: &str,
) -> Result<Vec<String>> {
    Ok(tx
        .query(
            "SELECT iu.id, iu.canonical_address, uv.version_no, uv.repeal FROM public.unit_version uv \
               JOIN public.information_unit iu ON iu.id = uv.information_unit_id \
              WHERE uv.change_set_id = $1 AND iu.change_set_id IS DISTINCT FROM $1 \
                AND uv.lifecycle_status = $2 ORDER BY iu.id LIMIT 20",
            &[&cs.as_str(), &status],
        )
        .doing(|| format!("listing the {status} versions change set {cs} added"))?
        .iter()
        .map(|r| {
            let repeal: Option<bool> = r.get(3);
            format!(
                "unit id {} ({:?}) version {}{}",
                r.get::<_, i64>(0),
                r.get::<_, String>(1),
                r.get::<_, i32>(2),
                if repeal == Some(true) { " (repeal)" } else { "" }
            )
        })
        .collect())
}

/// Compensation A inside the caller's transaction `tx` (which it neither commits nor
/// rolls back). Returns `AlreadyDone` without writing when the change set is already
/// reverted.
pub(crate) fn step_a(
    tx: &mut Transaction<'_>,
    plan: &CompensationPlan,
    mode: &RevertMode,
    revert_run: &RunId,
    actor: &str,
) -> Result<StepReport> {
    check_step(plan, Step::A, revert_run, actor)?;
    if let RevertMode::Hard(approval) = mode {
        approval.check_for(plan, revert_run)?;
    }
    guard(tx, plan, revert_run)?;
    let cs = plan.change_set().clone();
    let run_id = plan.run_id().clone();
    let units = by_status(
        tx,
        "SELECT lifecycle_status, count(*) FROM public.information_unit \
         WHERE change_set_id = $1 GROUP BY 1",
        &cs,
    )?;
    let amendments = by_status(tx, AMENDMENTS_BY_STATUS, &cs)?;
    let count = |s: &str| units.get(s).copied().unwrap_or(0);
    let amended = |s: &str| amendments.get(s).copied().unwrap_or(0);
    let total: u64 = units.values().sum();
    let amended_total: u64 = amendments.values().sum();
    if count("enacted") > 0 {
        return Err(Error::EnactedUnits {
            units: units_where(tx, &cs, "lifecycle_status = 'enacted'")?,
            run_id,
            change_set: cs,
            total: count("enacted"),
        });
    }
    if amended("enacted") > 0 {
        return Err(Error::EnactedAmendment {
            versions: amendments_where(tx, &cs, "enacted")?,
            run_id,
            change_set: cs,
            total: amended("enacted"),
        });
    }
    let kind = mode.kind();
    let already = |units: u64| StepReport {
        step: Step::A,
        outcome: StepOutcome::AlreadyDone,
        revert: Some(kind),
        units,
        versions: 0,
        lifecycle_log_rows: 0,
        decision_id: None,
    };
    if total == 0 && amended_total == 0 {
        // Nothing of the change set remains. Already done if anything names the change
        // set (the run's claim, ledger rows) or if the three public tables are exactly the
        // run's pre snapshot (what a hard delete leaves); otherwise this is not the run's
        // database, or the change set never existed.
        let state = inspect(tx, &cs)?;
        if !state.is_known() && !public_tables_as_before(tx, plan)? {
            return Err(Error::UnknownChangeSet {
                run_id,
                change_set: cs,
                target: plan.target(),
            });
        }
        return Ok(already(0));
    }
    // What the re-count compares the step's result with, counted before it writes.
    let before = Before::count(tx, cs.as_str())?;
    let mut hard_versions = 0;
    // Each writer is called only when it has rows to change: (units, amended versions).
    let call = |tx: &mut Transaction<'_>, needed: bool, sql: &str, what: &str| -> Result<i64> {
        if !needed {
            return Ok(0);
        }
        Ok(tx
            .query_one(sql, &[&cs.as_str(), &revert_run.as_str(), &actor])
            .doing(|| format!("compensation A ({kind}): {what} of change set {cs}"))?
            .get(0))
    };
    let (changed, changed_versions) = match kind {
        RevertKind::Soft => {
            if count("draft") == 0 && amended("draft") == 0 {
                return Ok(already(total));
            }
            let units = call(
                tx,
                count("draft") > 0,
                "SELECT public.fn_iu_withdraw($1, $2, $3)",
                "public.fn_iu_withdraw",
            )?;
            // The versions it added to enacted units: withdrawn, so the enacted version
            // before them stays current.
            let versions = call(
                tx,
                amended("draft") > 0,
                "SELECT public.fn_uv_change_set_status($1, 'withdrawn', $2, $3)",
                "public.fn_uv_change_set_status (withdrawn)",
            )?;
            (units, versions)
        }
        RevertKind::Hard => {
            let state = inspect(tx, &cs)?;
            let mut problems = Vec::new();
            let not_draft = total - count("draft");
            if not_draft > 0 {
                let listed = units_where(tx, &cs, "lifecycle_status <> 'draft'")?;
                problems.push(format!(
                    "{not_draft} unit(s) are not draft: {}",
                    crate::error::list_some(&listed, not_draft, 20)
                ));
            }
            let versions =
                state.versions_total() - state.versions.get("draft").copied().unwrap_or(0);
            if versions > 0 {
                problems.push(format!("{versions} version(s) of its units are not draft"));
            }
            let not_draft = amended_total - amended("draft");
            if not_draft > 0 {
                problems.push(format!(
                    "{not_draft} version(s) it added to enacted units are not draft: {}",
                    crate::error::list_some(
                        &amendments_where(tx, &cs, "withdrawn")?,
                        not_draft,
                        20
                    )
                ));
            }
            if state.lifecycle_log_rows > 0 {
                problems.push(format!(
                    "{} lifecycle log row(s) reference its units",
                    state.lifecycle_log_rows
                ));
            } else if state.logged > 0 {
                problems.push(format!(
                    "{} lifecycle log row(s) name the change set",
                    state.logged
                ));
            }
            if !problems.is_empty() {
                let next = if count("withdrawn") > 0 || amended("withdrawn") > 0 {
                    "The change set was soft-reverted already; its lineage stays (a soft revert is final)"
                } else {
                    "Use the default soft revert"
                };
                return Err(Error::NotAllDraft {
                    run_id,
                    change_set: cs,
                    problems,
                    next: next.into(),
                });
            }
            hard_versions = state.versions_total() + state.amendments_total();
            // The approvals go into the ledger first, in this transaction: the database
            // (reference V5) refuses the DELETE of units no recorded approval covers.
            if let RevertMode::Hard(approval) = mode {
                cutter_governance::record_hard_delete_approval(
                    tx,
                    &cs,
                    revert_run,
                    approval.approvals(),
                    actor,
                )?;
            }
            // The database (reference V8) refuses a DELETE of versions whose change set
            // no recorded approval covers, and of any version that is not draft.
            let versions = call(
                tx,
                amended_total > 0,
                "SELECT public.fn_uv_hard_delete_draft($1, $2, $3)",
                "public.fn_uv_hard_delete_draft",
            )?;
            let units = call(
                tx,
                total > 0,
                "SELECT public.fn_iu_hard_delete_draft($1, $2, $3)",
                "public.fn_iu_hard_delete_draft",
            )?;
            (units, versions)
        }
    };
    let changed = u64::try_from(changed).unwrap_or(0);
    let changed_versions = u64::try_from(changed_versions).unwrap_or(0);
    let expected = Expected {
        before,
        changed,
        changed_versions,
    };
    let (differences, versions_withdrawn) = recount(tx, plan, kind, revert_run, expected)?;
    if !differences.is_empty() {
        return Err(Error::RecountMismatch {
            run_id,
            change_set: cs,
            mode: kind.name(),
            differences,
        });
    }
    Ok(StepReport {
        step: Step::A,
        outcome: StepOutcome::Done,
        revert: Some(kind),
        units: changed,
        versions: match kind {
            RevertKind::Soft => versions_withdrawn,
            RevertKind::Hard => hard_versions,
        },
        lifecycle_log_rows: if kind == RevertKind::Soft {
            changed + changed_versions
        } else {
            0
        },
        decision_id: None,
    })
}

/// Compensation B inside the caller's transaction `tx`. Returns `AlreadyDone` without
/// writing when the change set's `reverted` decision exists.
pub(crate) fn step_b(
    tx: &mut Transaction<'_>,
    plan: &CompensationPlan,
    revert_run: &RunId,
    actor: &str,
) -> Result<StepReport> {
    check_step(plan, Step::B, revert_run, actor)?;
    guard(tx, plan, revert_run)?;
    let cs = plan.change_set().clone();
    let report = |outcome, decision_id| StepReport {
        step: Step::B,
        outcome,
        revert: None,
        units: 0,
        versions: 0,
        lifecycle_log_rows: 0,
        decision_id: Some(decision_id),
    };
    if let Some(id) = cutter_governance::is_reverted(tx, &cs)? {
        return Ok(report(StepOutcome::AlreadyDone, id));
    }
    let state = inspect(tx, &cs)?;
    if state.live_units() > 0 {
        return Err(Error::BBeforeA {
            run_id: plan.run_id().clone(),
            change_set: cs,
            live: state.live_units(),
        });
    }
    if !state.is_known() {
        return Err(Error::UnknownChangeSet {
            run_id: plan.run_id().clone(),
            change_set: cs,
            target: plan.target(),
        });
    }
    let r = cutter_governance::append_reverted(tx, &cs, revert_run, actor)?;
    let outcome = if r.newly_recorded {
        StepOutcome::Done
    } else {
        StepOutcome::AlreadyDone
    };
    Ok(report(outcome, r.decision_id))
}

fn finish(
    tx: Transaction<'_>,
    plan: &CompensationPlan,
    step: Step,
    report: &StepReport,
) -> Result<()> {
    if report.outcome == StepOutcome::AlreadyDone {
        return tx.rollback().doing(|| {
            format!(
                "compensation {step} of run {}: ending a transaction that wrote nothing",
                plan.run_id()
            )
        });
    }
    tx.commit().map_err(|e| {
        let server = ServerError::from_pg(&e);
        if server.sqlstate.is_none() {
            Error::CommitUnknown {
                run_id: plan.run_id().clone(),
                step,
                server: Box::new(server),
            }
        } else {
            Error::db(
                format!("compensation {step} of run {}: COMMIT", plan.run_id()),
                &e,
                "the step did not commit and wrote nothing; run the same compensation again",
            )
        }
    })
}

/// Compensation A of `plan`'s change set as ONE transaction on `client` (a savepoint if
/// `client` is already a transaction): refuses enacted units (naming them), withdraws the
/// draft units (soft) or deletes them and their versions (hard, approved, all draft), then
/// re-counts against the pre snapshot and commits only if nothing differs. A change set
/// already reverted is reported as such and nothing is written.
///
/// A hard delete needs an approval; without one it does not compile:
///
/// ```compile_fail,E0308
/// # fn f(c: &mut postgres::Client, p: &cutter_compensation::CompensationPlan, r: &cutter_core::RunId) {
/// cutter_compensation::compensate_a(c, p, &cutter_compensation::RevertMode::Hard, r, "operator");
/// # }
/// ```
pub fn compensate_a<C: GenericClient>(
    client: &mut C,
    plan: &CompensationPlan,
    mode: &RevertMode,
    revert_run: &RunId,
    actor: &str,
) -> Result<StepReport> {
    let mut tx = client
        .transaction()
        .doing(|| format!("compensation A of run {}: BEGIN", plan.run_id()))?;
    let report = step_a(&mut tx, plan, mode, revert_run, actor)?;
    finish(tx, plan, Step::A, &report)?;
    tracing::info!(run = %plan.run_id(), change_set = %plan.change_set(), "{report}");
    Ok(report)
}

/// Compensation B of `plan`'s change set as ONE transaction on `client`: appends the
/// `reverted` review decision naming `revert_run` through cutter-governance's chained
/// writer. Refuses while units of the change set are draft or enacted (A first). Already
/// recorded: reported as such, nothing written.
pub fn compensate_b<C: GenericClient>(
    client: &mut C,
    plan: &CompensationPlan,
    revert_run: &RunId,
    actor: &str,
) -> Result<StepReport> {
    let mut tx = client
        .transaction()
        .doing(|| format!("compensation B of run {}: BEGIN", plan.run_id()))?;
    let report = step_b(&mut tx, plan, revert_run, actor)?;
    finish(tx, plan, Step::B, &report)?;
    tracing::info!(run = %plan.run_id(), change_set = %plan.change_set(), "{report}");
    Ok(report)
}

/// Executes `plan`: its steps in order, each one transaction (see [`compensate_a`],
/// [`compensate_b`]). A plan whose compensation does not touch the database (none, discard
/// the artifact) executes nothing. If a step fails after an earlier one committed, the
/// error ([`Error::Incomplete`]) carries what was done; running the same call again
/// finishes the compensation.
pub fn execute<C: GenericClient>(
    client: &mut C,
    plan: &CompensationPlan,
    mode: &RevertMode,
    revert_run: &RunId,
    actor: &str,
) -> Result<CompensationReport> {
    let mut steps: Vec<StepReport> = Vec::new();
    for &step in plan.steps() {
        let r = match step {
            Step::A => compensate_a(client, plan, mode, revert_run, actor),
            Step::B => compensate_b(client, plan, revert_run, actor),
        };
        match r {
            Ok(report) => steps.push(report),
            Err(e) if steps.is_empty() => return Err(e),
            Err(e) => {
                return Err(Error::Incomplete {
                    run_id: plan.run_id().clone(),
                    completed: steps,
                    failed: step,
                    source: Box::new(e),
                })
            }
        }
    }
    Ok(CompensationReport {
        run_id: plan.run_id().clone(),
        change_set: plan.change_set().clone(),
        revert_run: revert_run.clone(),
        compensation: plan.compensation(),
        steps,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn revert_runs_are_derived_and_valid() {
        let r = RunId::new("r-20261123-ab12").unwrap();
        assert_eq!(revert_run_for(&r).as_str(), "r-20261123-ab12-revert");
        let long = RunId::new("x".repeat(64)).unwrap();
        let rr = revert_run_for(&long);
        assert_eq!(rr.as_str().len(), 64);
        assert!(rr.as_str().ends_with("-revert"));
        assert_ne!(rr, long);
        assert_eq!(rr, revert_run_for(&long));
        let other = RunId::new(format!("{}y", "x".repeat(63))).unwrap();
        assert_ne!(revert_run_for(&other), rr);
    }
}
