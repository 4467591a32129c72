//! Review decisions: the idempotency claim of a run, `void` (disable level 2), the
//! compensating `reverted` decision (compensation B) and the SG_3 failure escalation.
//! All are rows of the append-only `review_decision` chain; nothing is ever updated.
//!
//! A claim is active while its run has no `void` decision. `decision` values:
//! `claim`, `void`, `reverted`, `sg3_escalation`.

use cutter_core::{
    CanonicalHasher, ChangeSetId, LiveAuthorization, Phase, PlanFacts, RunId, Snapshot,
};
use postgres::{GenericClient, Transaction};
use serde::{Deserialize, Serialize};
use serde_json::json;

use crate::chain::{append, canonical_json, lock_tables, LedgerTable, NewRow};
use crate::common::{check_actor, check_plan, check_target, now_text, voided_by};
use crate::error::{Error, LiveUnit, Result};

/// `decision` of a claim.
pub const DECISION_CLAIM: &str = "claim";
/// `decision` of a void.
pub const DECISION_VOID: &str = "void";
/// `decision` of compensation B.
pub const DECISION_REVERTED: &str = "reverted";
/// `decision` of an SG_3 escalation.
pub const DECISION_SG3: &str = "sg3_escalation";

/// The key of a claim: `CanonicalHasher("cutter-claim-v1")` over document id, source
/// version id and the plan digest (hex), as 64 hex digits.
pub fn claim_key(document_id: &str, source_version_id: &str, plan_digest_hex: &str) -> String {
    let mut h = CanonicalHasher::new("cutter-claim-v1");
    h.field(document_id.as_bytes())
        .field(source_version_id.as_bytes())
        .field(plan_digest_hex.as_bytes());
    h.finish().to_hex()
}

/// A claim as recorded.
#[derive(Clone, PartialEq, Eq, Debug, Serialize)]
pub struct Claim {
    /// The `review_decision` row.
    pub decision_id: i64,
    /// The run holding it.
    pub run_id: RunId,
    /// The document.
    pub document_id: String,
    /// Its version.
    pub source_version_id: String,
    /// The plan digest (hex).
    pub plan_digest: String,
    /// [`claim_key`].
    pub claim_key: String,
}

/// What [`claim`] did.
#[derive(Clone, PartialEq, Eq, Debug, Serialize)]
#[serde(tag = "outcome", rename_all = "snake_case")]
pub enum ClaimOutcome {
    /// The claim was written.
    Claimed(Claim),
    /// This run already held this very claim; nothing was written.
    AlreadyHeld(Claim),
}

impl ClaimOutcome {
    /// The claim held.
    pub fn claim(&self) -> &Claim {
        match self {
            ClaimOutcome::Claimed(c) | ClaimOutcome::AlreadyHeld(c) => c,
        }
    }
}

fn claim_from_row(r: &postgres::Row) -> Result<Claim> {
    let id: i64 = r.get("id");
    let run: String = r.get("run_id");
    let payload: serde_json::Value =
        serde_json::from_str(r.get::<_, &str>("payload")).map_err(|e| Error::Corrupt {
            table: LedgerTable::ReviewDecision,
            id,
            detail: format!("claim payload is not JSON: {e}"),
        })?;
    let field = |k: &str| -> Result<String> {
        payload
            .get(k)
            .and_then(|v| v.as_str())
            .map(str::to_string)
            .ok_or_else(|| Error::Corrupt {
                table: LedgerTable::ReviewDecision,
                id,
                detail: format!("claim payload lacks {k}"),
            })
    };
    Ok(Claim {
        decision_id: id,
        run_id: RunId::new(run).map_err(|e| Error::Corrupt {
            table: LedgerTable::ReviewDecision,
            id,
            detail: e.to_string(),
        })?,
        document_id: field("document_id")?,
        source_version_id: field("source_version_id")?,
        plan_digest: field("plan_digest")?,
        claim_key: field("claim_key")?,
    })
}

const CLAIM_COLUMNS: &str = "id, run_id, payload::text AS payload";

/// The claim `run` holds (or held, if voided), if any.
pub fn claim_of<C: GenericClient>(c: &mut C, run: &RunId) -> Result<Option<Claim>> {
    c.query_opt(
        &format!(
            "SELECT {CLAIM_COLUMNS} FROM cutter_governance.review_decision \
             WHERE run_id = $1 AND decision = 'claim' ORDER BY id LIMIT 1"
        ),
        &[&run.as_str()],
    )
    .map_err(Error::db(format!("looking up the claim of run {run}")))?
    .as_ref()
    .map(claim_from_row)
    .transpose()
}

/// The active claim of a key (its run not voided), if any.
fn active_claim<C: GenericClient>(c: &mut C, key: &str) -> Result<Option<Claim>> {
    c.query_opt(
        &format!(
            "SELECT {CLAIM_COLUMNS} FROM cutter_governance.review_decision c \
             WHERE c.decision = 'claim' AND c.payload ->> 'claim_key' = $1 \
               AND NOT EXISTS (SELECT 1 FROM cutter_governance.review_decision v \
                                WHERE v.decision = 'void' AND v.run_id = c.run_id) \
             ORDER BY c.id LIMIT 1"
        ),
        &[&key],
    )
    .map_err(Error::db("looking up an active claim"))?
    .as_ref()
    .map(claim_from_row)
    .transpose()
}

/// Claims `(document_id, source_version_id, plan digest)` of `plan` for `auth`'s run on
/// the target, so that the same plan is never applied twice. Refuses (writing nothing):
/// a key claimed by another run that was not voided ([`Error::ClaimCollision`], naming
/// it), a voided run id ([`Error::RunVoided`]), a run that already claims another key.
/// Claiming again what the run already holds writes nothing and returns
/// [`ClaimOutcome::AlreadyHeld`]. Runs in its own transaction (a savepoint inside one).
pub fn claim<C: GenericClient>(
    client: &mut C,
    auth: &LiveAuthorization,
    plan: &dyn PlanFacts,
    actor: &str,
) -> Result<ClaimOutcome> {
    check_actor(actor)?;
    check_plan(auth, plan)?;
    let run = auth.run_id();
    let digest = plan.digest().to_hex();
    let key = claim_key(
        plan.document_id().as_str(),
        plan.source_version_id().as_str(),
        &digest,
    );
    let mut tx = client
        .transaction()
        .map_err(Error::db(format!("starting the claim of run {run}")))?;
    check_target(&mut tx, auth)?;
    lock_tables(&mut tx, &[LedgerTable::ReviewDecision])?;
    if let Some(decision_id) = voided_by(&mut tx, run)? {
        return Err(Error::RunVoided {
            run_id: run.clone(),
            decision_id,
        });
    }
    if let Some(mine) = claim_of(&mut tx, run)? {
        if mine.claim_key == key {
            return Ok(ClaimOutcome::AlreadyHeld(mine));
        }
        return Err(Error::RunHasOtherClaim {
            run_id: run.clone(),
            document_id: mine.document_id,
            source_version_id: mine.source_version_id,
            plan_digest: mine.plan_digest,
            decision_id: mine.decision_id,
        });
    }
    if let Some(first) = active_claim(&mut tx, &key)? {
        return Err(Error::ClaimCollision {
            document_id: plan.document_id().to_string(),
            source_version_id: plan.source_version_id().to_string(),
            plan_digest: digest,
            first_run: first.run_id,
            decision_id: first.decision_id,
        });
    }
    let payload = json!({
        "claim_key": key,
        "document_id": plan.document_id().as_str(),
        "source_version_id": plan.source_version_id().as_str(),
        "plan_digest": digest,
    });
    let now = now_text(&mut tx)?;
    let cs = ChangeSetId::for_run(run);
    let app = append(
        &mut tx,
        LedgerTable::ReviewDecision,
        &[decision_row(
            run,
            Some(&cs),
            DECISION_CLAIM,
            &payload,
            actor,
            now,
        )],
    )?;
    tx.commit()
        .map_err(Error::db(format!("committing the claim of run {run}")))?;
    Ok(ClaimOutcome::Claimed(Claim {
        decision_id: app.map_or(0, |a| a.first_id()),
        run_id: run.clone(),
        document_id: plan.document_id().to_string(),
        source_version_id: plan.source_version_id().to_string(),
        plan_digest: digest,
        claim_key: key,
    }))
}

pub(crate) fn decision_row(
    run: &RunId,
    cs: Option<&ChangeSetId>,
    decision: &str,
    payload: &serde_json::Value,
    actor: &str,
    now: String,
) -> NewRow {
    NewRow(vec![
        Some(run.as_str().to_string()),
        cs.map(|c| c.as_str().to_string()),
        Some(decision.to_string()),
        Some(canonical_json(payload)),
        Some(actor.to_string()),
        Some(now),
    ])
}

/// What [`void`] did.
#[derive(Clone, PartialEq, Eq, Debug, Serialize)]
pub struct VoidReport {
    /// The run.
    pub run_id: RunId,
    /// The `void` decision (the earlier one if the run was already voided).
    pub decision_id: i64,
    /// False if the run was already voided and nothing was written.
    pub newly_voided: bool,
    /// The claim released, if the run held one.
    pub released_claim: Option<Claim>,
}

/// Retires `run` for good and releases its idempotency claim, by appending a `void`
/// review decision. Allowed only if the run has no uncompensated committed writes: no
/// unit of its change set is draft or enacted, and if its change set is recorded in the
/// ledger, a `reverted` decision (compensation B) exists. Otherwise
/// [`Error::VoidRefused`] names the live units and nothing is written. Voiding a voided
/// run writes nothing and reports the earlier decision.
pub fn void<C: GenericClient>(
    client: &mut C,
    run: &RunId,
    reason: &str,
    actor: &str,
) -> Result<VoidReport> {
    check_actor(actor)?;
    if reason.trim().is_empty() {
        return Err(Error::Invalid(
            "void needs a reason: say why the run is retired".into(),
        ));
    }
    let cs = ChangeSetId::for_run(run);
    let mut tx = client
        .transaction()
        .map_err(Error::db(format!("starting the void of run {run}")))?;
    // Only the writer voids: never a superuser or the ledger's owner.
    let problems = cutter_pg::writer_role_problems(&mut tx)
        .map_err(|e| Error::Invalid(format!("reading the connected role: {e}")))?;
    if !problems.is_empty() {
        return Err(Error::Invalid(format!(
            "void of run {run} refused: {}; nothing was written",
            problems.join("; ")
        )));
    }
    // The per-target run lock, to the end of this transaction: a run holds it for all of
    // its phases, so a void never lands between two of them.
    let got: bool = tx
        .query_one(
            "SELECT pg_catalog.pg_try_advisory_xact_lock($1, $2)",
            &[&cutter_pg::RUN_LOCK_KEY.0, &cutter_pg::RUN_LOCK_KEY.1],
        )
        .map_err(Error::db("taking the per-target run lock for the void"))?
        .get(0);
    if !got {
        let holder = cutter_pg::run_lock_holder(&mut tx)
            .map_err(|e| {
                Error::Invalid(format!(
                    "the run lock is held, and its holder cannot be named: {e}"
                ))
            })?
            .unwrap_or_else(|| cutter_pg::LockHolder::unknown("the lock was released meanwhile"));
        return Err(Error::RunInFlight {
            run_id: run.clone(),
            holder: Box::new(holder),
        });
    }
    lock_tables(&mut tx, &[LedgerTable::ReviewDecision])?;
    let claim = claim_of(&mut tx, run)?;
    if let Some(decision_id) = voided_by(&mut tx, run)? {
        return Ok(VoidReport {
            run_id: run.clone(),
            decision_id,
            newly_voided: false,
            released_claim: None,
        });
    }
    // Committed writes: units of the change set that are not withdrawn.
    let live_total: i64 = tx
        .query_one(
            "SELECT count(*) FROM public.information_unit \
             WHERE change_set_id = $1 AND lifecycle_status <> 'withdrawn'",
            &[&cs.as_str()],
        )
        .map_err(Error::db(format!("counting the live units of {cs}")))?
        .get(0);
    let live_units: Vec<LiveUnit> = if live_total > 0 {
        tx.query(
            "SELECT id, canonical_address, lifecycle_status FROM public.information_unit \
             WHERE change_set_id = $1 AND lifecycle_status <> 'withdrawn' ORDER BY id LIMIT 50",
            &[&cs.as_str()],
        )
        .map_err(Error::db(format!("listing the live units of {cs}")))?
        .iter()
        .map(|r| LiveUnit {
            id: r.get(0),
            canonical_address: r.get(1),
            lifecycle_status: r.get(2),
        })
        .collect()
    } else {
        Vec::new()
    };
    let recorded = tx
        .query_opt(
            "SELECT id FROM cutter_governance.cut_change_set WHERE change_set_id = $1",
            &[&cs.as_str()],
        )
        .map_err(Error::db(format!("looking up change set {cs}")))?
        .is_some();
    let ledger_unreverted = recorded && reverted_decision(&mut tx, &cs)?.is_none();
    if live_total > 0 || ledger_unreverted {
        return Err(Error::VoidRefused {
            run_id: run.clone(),
            change_set: cs,
            live_units,
            live_total: live_total as u64,
            ledger_unreverted,
        });
    }
    let payload = json!({
        "reason": reason,
        "released_claim": claim.as_ref().map(|c| c.claim_key.clone()),
        "released_claim_decision_id": claim.as_ref().map(|c| c.decision_id),
    });
    let now = now_text(&mut tx)?;
    let app = append(
        &mut tx,
        LedgerTable::ReviewDecision,
        &[decision_row(
            run,
            Some(&cs),
            DECISION_VOID,
            &payload,
            actor,
            now,
        )],
    )?;
    tx.commit()
        .map_err(Error::db(format!("committing the void of run {run}")))?;
    Ok(VoidReport {
        run_id: run.clone(),
        decision_id: app.map_or(0, |a| a.first_id()),
        newly_voided: true,
        released_claim: claim,
    })
}

/// The `reverted` decision of a change set: (id, revert run).
fn reverted_decision<C: GenericClient>(
    c: &mut C,
    cs: &ChangeSetId,
) -> Result<Option<(i64, String)>> {
    Ok(c.query_opt(
        "SELECT id, coalesce(payload ->> 'revert_run', '') FROM cutter_governance.review_decision \
             WHERE change_set_id = $1 AND decision = 'reverted' ORDER BY id LIMIT 1",
        &[&cs.as_str()],
    )
    .map_err(Error::db(format!("looking up a reverted decision of {cs}")))?
    .map(|r| (r.get(0), r.get(1))))
}

/// The id of the `reverted` decision of `change_set`, if compensation B was recorded.
pub fn is_reverted<C: GenericClient>(c: &mut C, change_set: &ChangeSetId) -> Result<Option<i64>> {
    Ok(reverted_decision(c, change_set)?.map(|(id, _)| id))
}

/// What [`append_reverted`] did.
#[derive(Clone, PartialEq, Eq, Debug, Serialize)]
pub struct RevertedReport {
    /// The `reverted` decision.
    pub decision_id: i64,
    /// False if the change set was already marked reverted (nothing written).
    pub newly_recorded: bool,
}

/// Compensation B's writer: appends a `reverted` review decision for `change_set`, naming
/// `revert_run`, inside the caller's transaction `tx`. Ledger rows are never deleted:
/// this row is what marks the change set's ledger rows as compensated. Idempotent: if the
/// change set is already marked, writes nothing and returns the earlier decision.
/// Refuses while units of the change set are still draft or enacted (run compensation A
/// first, in this or an earlier transaction).
pub fn append_reverted(
    tx: &mut Transaction<'_>,
    change_set: &ChangeSetId,
    revert_run: &RunId,
    actor: &str,
) -> Result<RevertedReport> {
    check_actor(actor)?;
    let original = change_set
        .as_str()
        .strip_prefix("cs-")
        .and_then(|r| RunId::new(r).ok())
        .ok_or_else(|| Error::Invalid(format!("change set {change_set} is not cs-<run id>")))?;
    lock_tables(tx, &[LedgerTable::ReviewDecision])?;
    if let Some((decision_id, _)) = reverted_decision(tx, change_set)? {
        return Ok(RevertedReport {
            decision_id,
            newly_recorded: false,
        });
    }
    let counts = tx
        .query(
            "SELECT lifecycle_status, count(*) FROM public.information_unit \
             WHERE change_set_id = $1 GROUP BY lifecycle_status",
            &[&change_set.as_str()],
        )
        .map_err(Error::db(format!("counting the units of {change_set}")))?;
    let mut withdrawn = 0i64;
    let mut live = Vec::new();
    for r in &counts {
        let status: String = r.get(0);
        let n: i64 = r.get(1);
        if status == "withdrawn" {
            withdrawn = n;
        } else {
            live.push(format!("{n} {status}"));
        }
    }
    if !live.is_empty() {
        return Err(Error::Invalid(format!(
            "change set {change_set} still has {} unit(s); compensation B marks a change set reverted only after compensation A withdrew (or deleted) its units",
            live.join(" and ")
        )));
    }
    let payload = json!({
        "revert_run": revert_run.as_str(),
        "units_withdrawn": withdrawn,
        "compensation": "B",
    });
    let now = now_text(tx)?;
    let app = append(
        tx,
        LedgerTable::ReviewDecision,
        &[decision_row(
            &original,
            Some(change_set),
            DECISION_REVERTED,
            &payload,
            actor,
            now,
        )],
    )?;
    Ok(RevertedReport {
        decision_id: app.map_or(0, |a| a.first_id()),
        newly_recorded: true,
    })
}

/// The SG_3 failure-escalation record: the same content goes into the ledger row
/// (`review_decision`, decision `sg3_escalation`, as its payload) and into the state
/// file the CLI writes.
#[derive(Clone, PartialEq, Eq, Debug, Serialize, Deserialize)]
pub struct Sg3Record {
    /// Always `cutter-sg3/1`.
    pub format: String,
    /// The run that failed.
    pub run_id: RunId,
    /// The phase that failed, if a phase was running.
    pub failed_phase: Option<Phase>,
    /// Why.
    pub reason: String,
    /// The snapshot taken before the run wrote.
    pub pre_snapshot: Option<Snapshot>,
    /// The snapshot taken after the failure.
    pub post_snapshot: Option<Snapshot>,
}

impl Sg3Record {
    /// A record in the current format.
    pub fn new(
        run_id: RunId,
        failed_phase: Option<Phase>,
        reason: impl Into<String>,
        pre_snapshot: Option<Snapshot>,
        post_snapshot: Option<Snapshot>,
    ) -> Self {
        Self {
            format: "cutter-sg3/1".into(),
            run_id,
            failed_phase,
            reason: reason.into(),
            pre_snapshot,
            post_snapshot,
        }
    }

    /// Pretty JSON, for the state file.
    pub fn to_json_pretty(&self) -> String {
        serde_json::to_string_pretty(self).unwrap_or_default()
    }
}

/// Appends the SG_3 escalation of `record` (decision `sg3_escalation`) in its own
/// transaction and returns the row id. Written on every unrecovered failure, next to the
/// state file.
pub fn record_sg3<C: GenericClient>(
    client: &mut C,
    record: &Sg3Record,
    actor: &str,
) -> Result<i64> {
    let payload = serde_json::to_value(record)
        .map_err(|e| Error::Invalid(format!("cannot encode the SG_3 record: {e}")))?;
    append_run_decision(
        client,
        &record.run_id,
        DECISION_SG3,
        &payload,
        actor,
        "SG_3 record",
    )
}

/// Appends one review decision `decision` about `run` (its change set named) in a
/// transaction of its own; returns its id. `what` names it in errors.
pub(crate) fn append_run_decision<C: GenericClient>(
    client: &mut C,
    run: &RunId,
    decision: &str,
    payload: &serde_json::Value,
    actor: &str,
    what: &str,
) -> Result<i64> {
    check_actor(actor)?;
    let mut tx = client
        .transaction()
        .map_err(Error::db(format!("starting the {what} of run {run}")))?;
    lock_tables(&mut tx, &[LedgerTable::ReviewDecision])?;
    let now = now_text(&mut tx)?;
    let cs = ChangeSetId::for_run(run);
    let app = append(
        &mut tx,
        LedgerTable::ReviewDecision,
        &[decision_row(run, Some(&cs), decision, payload, actor, now)],
    )?;
    tx.commit()
        .map_err(Error::db(format!("committing the {what} of run {run}")))?;
    Ok(app.map_or(0, |a| a.first_id()))
}

/// `decision` of a HOLD release (reference V4): its payload lists the SG_3 escalations
/// it releases and the approvals that allowed it.
pub const DECISION_HOLD_RELEASED: &str = "hold_released";

/// An SG_3 escalation the database still holds: no `hold_released` decision names it.
#[derive(Clone, PartialEq, Eq, Debug, Serialize)]
pub struct UnresolvedHold {
    /// The escalation's `review_decision` id.
    pub decision_id: i64,
    /// The held run.
    pub run_id: String,
}

/// The HOLDs the database records and has not released, oldest first. Empty on a
/// schema before V4 (which has no database-side HOLD).
pub fn unresolved_holds<C: GenericClient>(client: &mut C) -> Result<Vec<UnresolvedHold>> {
    let v4: bool = client
        .query_one(
            "SELECT to_regprocedure('cutter_governance.fn_unresolved_holds()') IS NOT NULL",
            &[],
        )
        .map_err(Error::db(
            "looking for cutter_governance.fn_unresolved_holds",
        ))?
        .get(0);
    if !v4 {
        return Ok(Vec::new());
    }
    Ok(client
        .query(
            "SELECT decision_id, run_id FROM cutter_governance.fn_unresolved_holds()",
            &[],
        )
        .map_err(Error::db("reading the unresolved HOLDs"))?
        .iter()
        .map(|r| UnresolvedHold {
            decision_id: r.get(0),
            run_id: r.get(1),
        })
        .collect())
}

/// One approval as a release records it.
#[derive(Clone, PartialEq, Eq, Debug, Serialize, Deserialize)]
pub struct ReleaseApproval {
    /// `SG_1` or `SG_2`.
    pub gate: String,
    /// The signer's primary-key fingerprint, as the gate found it.
    pub signer_fpr: String,
    /// The statement text that was signed.
    pub statement: String,
    /// The detached signature (armored text, or `hex:` and the binary signature).
    pub signature: String,
}

impl From<&cutter_core::VerifiedApproval> for ReleaseApproval {
    /// An approval the gate verified, as the ledger records it: its statement in
    /// canonical form (byte for byte what was signed: the parser accepts nothing else).
    fn from(v: &cutter_core::VerifiedApproval) -> Self {
        ReleaseApproval {
            gate: v.gate.name().to_string(),
            signer_fpr: v.signer.to_string(),
            statement: v.statement.canonical_text(),
            signature: v.signature.clone(),
        }
    }
}

/// The decision recording the approvals of a hard delete, appended in the transaction
/// that deletes (reference V5 refuses the DELETE without it).
pub const DECISION_HARD_DELETE_APPROVED: &str = "hard_delete_approved";

/// Appends, inside `tx` (the hard delete's transaction), the `hard_delete_approved`
/// decision of `change_set` by `revert_run` with the verified `approvals` (statements
/// and signatures, for `ledger verify` to re-verify). Returns its id.
pub fn record_hard_delete_approval(
    tx: &mut Transaction<'_>,
    change_set: &ChangeSetId,
    revert_run: &RunId,
    approvals: &[cutter_core::VerifiedApproval],
    actor: &str,
) -> Result<i64> {
    check_actor(actor)?;
    lock_tables(tx, &[LedgerTable::ReviewDecision])?;
    let recorded: Vec<ReleaseApproval> = approvals.iter().map(ReleaseApproval::from).collect();
    let payload = json!({"change_set": change_set.as_str(), "approvals": recorded});
    let now = now_text(tx)?;
    let app = append(
        tx,
        LedgerTable::ReviewDecision,
        &[decision_row(
            revert_run,
            None,
            DECISION_HARD_DELETE_APPROVED,
            &payload,
            actor,
            now,
        )],
    )?
    .ok_or_else(|| Error::Invalid("the hard delete's approval was not appended".into()))?;
    Ok(app.first_id())
}

/// Releases, in the database, the HOLD of `run`: appends a `hold_released` decision
/// naming every unresolved SG_3 escalation of the run and the `approvals` the gate
/// accepted for it. Returns the decision's id, or `None` when the database holds
/// nothing for the run. The database cannot check the signatures; `ledger verify`
/// re-verifies them.
pub fn record_hold_release<C: GenericClient>(
    client: &mut C,
    run: &RunId,
    approvals: &[ReleaseApproval],
    actor: &str,
) -> Result<Option<i64>> {
    check_actor(actor)?;
    let mut tx = client
        .transaction()
        .map_err(Error::db(format!("starting the HOLD release of run {run}")))?;
    lock_tables(&mut tx, &[LedgerTable::ReviewDecision])?;
    let released: Vec<i64> = unresolved_holds(&mut tx)?
        .into_iter()
        .filter(|h| h.run_id == run.as_str())
        .map(|h| h.decision_id)
        .collect();
    if released.is_empty() {
        return Ok(None);
    }
    let now = now_text(&mut tx)?;
    let payload = json!({"released": released, "approvals": approvals});
    let app = append(
        &mut tx,
        LedgerTable::ReviewDecision,
        &[decision_row(
            run,
            None,
            DECISION_HOLD_RELEASED,
            &payload,
            actor,
            now,
        )],
    )?;
    tx.commit().map_err(Error::db(format!(
        "committing the HOLD release of run {run}"
    )))?;
    Ok(app.map(|a| a.first_id()))
}
