//! The compensation part of `cargo xtask proof --rollback-only`: the real executors
//! ([`crate::execute`], compensation A soft and hard, B, their refusals and idempotency)
//! run against a real database inside one cutter-pg rollback-only transaction, each case
//! in a savepoint that is rolled back, and the target is checked net-zero afterwards.

use std::fmt::Write as _;
use std::time::{SystemTime, UNIX_EPOCH};

use postgres::GenericClient;

use cutter_core::{
    ApprovalGate, ApprovalPolicy, ApprovalStatement, Phase, PhaseSet, Purpose, RunId, UnixTime,
};
use cutter_pg::{fixtures, RollbackOnly, Target};

use crate::approval::{HardDeleteApproval, RevertMode};
use crate::error::{Error, Result};
use crate::execute::{compensate_a, compensate_b, execute, revert_run_for, StepOutcome};
use crate::plan::{plan, CompensationPlan, RunFacts};
use crate::throwaway::{now, ThrowawayApprovers};

const ACTOR: &str = "cutter-proof";
const UNITS: u64 = 3;

/// One proof and its outcome: `Ok(detail)` passed, `Err(detail)` failed.
#[derive(Clone, PartialEq, Eq, Debug)]
pub struct ProofRow {
    /// What is proven.
    pub name: String,
    /// Passed with a detail, or failed with why.
    pub outcome: std::result::Result<String, String>,
}

fn row(name: &str, outcome: std::result::Result<String, String>) -> ProofRow {
    ProofRow {
        name: name.into(),
        outcome,
    }
}

fn pg(e: impl std::fmt::Display) -> cutter_pg::Error {
    cutter_pg::Error::Install {
        what: "compensation proof".into(),
        reason: e.to_string(),
    }
}

/// Rows of the three public tables, review decisions, withdrawn units.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
struct Counts {
    units: i64,
    versions: i64,
    log: i64,
    decisions: i64,
    withdrawn: i64,
}

fn counts(c: &mut impl GenericClient) -> std::result::Result<Counts, String> {
    let r = c
        .query_one(
            "SELECT (SELECT count(*) FROM public.information_unit), \
                    (SELECT count(*) FROM public.unit_version), \
                    (SELECT count(*) FROM public.iu_lifecycle_log), \
                    (SELECT count(*) FROM cutter_governance.review_decision), \
                    (SELECT count(*) FROM public.information_unit WHERE lifecycle_status = 'withdrawn')",
            &[],
        )
        .map_err(|e| format!("counting: {e}"))?;
    Ok(Counts {
        units: r.get(0),
        versions: r.get(1),
        log: r.get(2),
        decisions: r.get(3),
        withdrawn: r.get(4),
    })
}

fn check(ok: bool, detail: String) -> std::result::Result<String, String> {
    if ok {
        Ok(detail)
    } else {
        Err(detail)
    }
}

/// Runs the compensation proofs on `target` (already checked to be the intended server)
/// in one rollback-only transaction of a run of its own, then checks the target is
/// unchanged. Releases the run lock it took. Every case is a row; an `Err` is returned
/// only when the proof could not run at all.
pub fn prove(target: &mut Target) -> Result<Vec<ProofRow>> {
    let approvers = ThrowawayApprovers::generate()?;
    let before = target.snapshot()?;
    let stamp = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    let run = RunId::new(format!("proof-comp-{stamp}-{}", std::process::id()))
        .map_err(|e| Error::Invalid(e.to_string()))?;
    let doc = format!("cutter-proof-comp-{stamp}-{}", std::process::id());
    let valid = fixtures::scale_plan(&doc, UNITS).map_err(|r| Error::Invalid(r.to_string()))?;
    let sysid = target.system_identifier();
    let mut rows = Vec::new();
    {
        let mut ro = target.rollback_only(&run)?;
        let pre = ro.snapshot()?;
        cutter_governance::prove_authorize(&mut ro, valid.digest())?;
        ro.step(|s| s.cut_leg_a(&valid, &mut |_| {}))?;
        ro.step(|s| cutter_governance::prove_leg_b_record(s, &valid, ACTOR).map_err(pg))?;
        let facts = RunFacts {
            run_id: run.clone(),
            target: sysid,
            plan_digest: valid.digest(),
            failed: Some(Phase::WriteVerify),
            committed: PhaseSet::mutating_before(Phase::WriteVerify),
            pre_snapshot: pre,
            database: None,
        }
        .cross_check(ro.client())?;
        let p = plan(&facts);
        rows.push(row(
            "compensation plan: the matrix's answer",
            check(
                p.compensation() == cutter_core::Compensation::AB,
                format!(
                    "write_verify failed after {}: {} ({} draft units, change set {})",
                    p.committed()
                        .iter()
                        .map(Phase::name)
                        .collect::<Vec<_>>()
                        .join(", "),
                    p.compensation(),
                    UNITS,
                    p.change_set()
                ),
            ),
        ));
        let revert = revert_run_for(&run);
        let database = cutter_pg::surface::target_database(ro.client())?;
        let hard = approvers.hard_delete_approval(&p, &revert, &database)?;
        rows.extend(ro.probe(|s| Ok(soft(s, &p, &revert)))?);
        rows.extend(ro.probe(|s| Ok(hard_delete(s, &p, &revert, hard)))?);
        rows.extend(ro.probe(|s| Ok(refusals(s, &p, &revert, &approvers)))?);
        ro.rollback()?;
    }
    target.unlock_target()?;
    let after = target.snapshot()?;
    rows.push(row(
        "compensation proofs: net-zero",
        match before.net_zero(&after) {
            Ok(()) => Ok(
                "counts, digests of the surface tables, triggers, system identifier identical"
                    .into(),
            ),
            Err(v) => Err(v.to_string()),
        },
    ));
    Ok(rows)
}

fn soft(ro: &mut RollbackOnly<'_>, p: &CompensationPlan, revert: &RunId) -> Vec<ProofRow> {
    let mut rows = Vec::new();
    let tx = ro.client();
    let r = (|| -> std::result::Result<(), String> {
        let b = counts(tx)?;
        let rep = execute(tx, p, &RevertMode::Soft, revert, ACTOR).map_err(|e| e.to_string())?;
        let a = counts(tx)?;
        let (sa, sb) = (&rep.steps[0], &rep.steps[1]);
        rows.push(row(
            "compensation A (soft): units withdrawn, lineage kept, re-counted",
            check(
                sa.outcome == StepOutcome::Done
                    && sa.units == UNITS
                    && a.units == b.units
                    && a.versions == b.versions
                    && a.log == b.log + UNITS as i64
                    && a.withdrawn == b.withdrawn + UNITS as i64,
                format!(
                    "{sa}; information_unit {}→{}, iu_lifecycle_log {}→{}, withdrawn {}→{}",
                    b.units, a.units, b.log, a.log, b.withdrawn, a.withdrawn
                ),
            ),
        ));
        let payload: Option<String> = tx
            .query_opt(
                "SELECT payload::text FROM cutter_governance.review_decision \
                 WHERE change_set_id = $1 AND decision = 'reverted'",
                &[&p.change_set().as_str()],
            )
            .map_err(|e| e.to_string())?
            .map(|r| r.get(0));
        rows.push(row(
            "compensation B: `reverted` review_decision naming the revert run",
            check(
                sb.outcome == StepOutcome::Done
                    && a.decisions == b.decisions + 1
                    && payload
                        .as_deref()
                        .is_some_and(|t| t.contains(revert.as_str())),
                format!(
                    "{sb}; review_decision {}→{}; payload {}",
                    b.decisions,
                    a.decisions,
                    payload.unwrap_or_default()
                ),
            ),
        ));
        let again = execute(tx, p, &RevertMode::Soft, revert, ACTOR).map_err(|e| e.to_string())?;
        let c = counts(tx)?;
        rows.push(row(
            "compensation idempotent: a second run writes nothing",
            check(
                again.already_compensated() && c == a,
                again.to_string().trim_end().replace('\n', "; "),
            ),
        ));
        let ledger = cutter_governance::verify_ledger(tx).map_err(|e| e.to_string())?;
        rows.push(row(
            "compensation B: the ledger's hash chains verify",
            check(
                ledger.is_intact(),
                format!("{} ledger rows verified", ledger.rows()),
            ),
        ));
        // Re-cut: a withdrawn unit does not hold its canonical address.
        let first: String = tx
            .query_one(
                "SELECT canonical_address FROM public.information_unit \
                 WHERE change_set_id = $1 ORDER BY id LIMIT 1",
                &[&p.change_set().as_str()],
            )
            .map_err(|e| e.to_string())?
            .get(0);
        // Through the writer's batch function, for the proof's run (whose approvals the
        // proof recorded): the database's gate lets nothing else write.
        let recut = tx
            .query_one(
                "SELECT created FROM public.fn_iu_create_batch($3, 'cutter-proof-recut', 'v2', 1, \
                 ARRAY[$1::text], ARRAY['Điều 1'], ARRAY['corrected'], ARRAY[$2::text], ARRAY['law_unit'], \
                 ARRAY['article'], ARRAY['law'], ARRAY[NULL]::text[])",
                &[&first, &ACTOR, &p.change_set().as_str()],
            )
            .map(|r| r.get::<_, i64>(0));
        rows.push(row(
            "re-cut after a soft revert: the address is free again",
            match recut {
                Ok(1) => Ok(format!("{first:?} cut again: 1 unit created")),
                Ok(n) => Err(format!("{n} units created")),
                Err(e) => Err(format!(
                    "{e}: {}",
                    e.as_db_error().map(|d| d.message()).unwrap_or("")
                )),
            },
        ));
        Ok(())
    })();
    if let Err(e) = r {
        rows.push(row("compensation A + B (soft)", Err(e)));
    }
    rows
}

fn hard_delete(
    ro: &mut RollbackOnly<'_>,
    p: &CompensationPlan,
    revert: &RunId,
    approval: HardDeleteApproval,
) -> Vec<ProofRow> {
    let mut rows = Vec::new();
    let pre = p.pre_snapshot();
    // The database's gate (reference V5) deletes units only for a change set whose
    // hard-delete approval by registered approvers is recorded: the proof records one
    // (never committed), as it records its run's approvals.
    if let Err(e) =
        cutter_governance::prove_hard_delete_authorize(ro, p.change_set(), revert, p.plan_digest())
    {
        rows.push(row(
            "compensation A (hard): the proof's approval",
            Err(e.to_string()),
        ));
        return rows;
    }
    let tx = ro.client();
    let r = (|| -> std::result::Result<(), String> {
        let b = counts(tx)?;
        let signers = approval
            .approvals()
            .iter()
            .map(|a| format!("{} by {}", a.gate, a.signer))
            .collect::<Vec<_>>()
            .join(", ");
        let rep = execute(tx, p, &RevertMode::Hard(approval), revert, ACTOR)
            .map_err(|e| e.to_string())?;
        let a = counts(tx)?;
        let exact = a.units as u64 == pre.rows("public.information_unit")
            && a.versions as u64 == pre.rows("public.unit_version")
            && a.log as u64 == pre.rows("public.iu_lifecycle_log");
        rows.push(row(
            "compensation A (hard, approved): draft units deleted, counts = pre snapshot",
            check(
                rep.steps[0].outcome == StepOutcome::Done && rep.steps[0].units == UNITS && exact,
                format!(
                    "{}; information_unit {}→{}, unit_version {}→{} (pre snapshot {}/{}); approvals: {signers}",
                    rep.steps[0],
                    b.units,
                    a.units,
                    b.versions,
                    a.versions,
                    pre.rows("public.information_unit"),
                    pre.rows("public.unit_version")
                ),
            ),
        ));
        rows.push(row(
            "compensation B after a hard delete",
            check(
                // A's hard_delete_approved decision (its approvals), then B's `reverted`.
                rep.steps[1].outcome == StepOutcome::Done && a.decisions == b.decisions + 2,
                rep.steps[1].to_string(),
            ),
        ));
        Ok(())
    })();
    if let Err(e) = r {
        rows.push(row("compensation A + B (hard)", Err(e)));
    }
    rows
}

fn refused(
    name: &str,
    r: Result<impl std::fmt::Debug>,
    expect: impl Fn(&Error) -> bool,
) -> ProofRow {
    row(
        name,
        match r {
            Err(e) if expect(&e) => Ok(format!("refused: {e}")),
            Err(e) => Err(format!("refused, but not as expected: {e}")),
            Ok(v) => Err(format!("NOT refused: {v:?}")),
        },
    )
}

fn refusals(
    ro: &mut RollbackOnly<'_>,
    p: &CompensationPlan,
    revert: &RunId,
    approvers: &ThrowawayApprovers,
) -> Vec<ProofRow> {
    let mut rows = Vec::new();
    // A run of its own writes the foreign unit below: the database's gate needs its
    // approvals recorded too (never committed).
    let foreign = RunId::new(format!("{}-foreign", p.run_id()));
    let foreign_ok = foreign.as_ref().map_err(|e| e.to_string()).and_then(|f| {
        cutter_governance::prove_authorize_run(ro, f, p.plan_digest()).map_err(|e| e.to_string())
    });
    let tx = ro.client();

    rows.push(refused(
        "compensation B before A: refused",
        compensate_b(tx, p, revert, ACTOR),
        |e| matches!(e, Error::BBeforeA { .. }),
    ));

    // Hard delete without valid approvals: only SG_1; the run's own approvals replayed.
    let database = match cutter_pg::surface::target_database(tx) {
        Ok(d) => d,
        Err(e) => {
            rows.push(row("reading the database identity", Err(e.to_string())));
            return rows;
        }
    };
    let (from, exp) = (UnixTime(now().0 - 60), UnixTime(now().0 + 3600));
    let only_sg1 = approvers
        .sign(
            0,
            &HardDeleteApproval::statement(p, revert, &database, ApprovalGate::Sg1, from, exp),
        )
        .map(|a| vec![a]);
    rows.push(refused(
        "hard delete without SG_2: no approval can be made",
        only_sg1.and_then(|a| {
            HardDeleteApproval::verify(
                p,
                revert,
                &database,
                &a,
                approvers.approvers(),
                now(),
                ApprovalPolicy::default(),
                approvers.verifier(),
            )
        }),
        |e| matches!(e, Error::ApprovalRefused { .. }),
    ));
    let replay = |gate, signer| {
        approvers.sign(
            signer,
            &ApprovalStatement {
                purpose: Purpose::LiveRun,
                run_id: p.run_id().clone(),
                plan_digest: p.plan_digest(),
                change_set: None,
                findings_digest: None,
                diff_digest: None,
                target: database.clone(),
                gate,
                not_before: from,
                expires_at: exp,
            },
        )
    };
    let replayed =
        replay(ApprovalGate::Sg1, 0).and_then(|a| Ok(vec![a, replay(ApprovalGate::Sg2, 1)?]));
    rows.push(refused(
        "hard delete with the run's own SG_1/SG_2 replayed: refused",
        replayed.and_then(|a| {
            HardDeleteApproval::verify(
                p,
                revert,
                &database,
                &a,
                approvers.approvers(),
                now(),
                ApprovalPolicy::default(),
                approvers.verifier(),
            )
        }),
        |e| matches!(e, Error::ApprovalRefused { .. }),
    ));

    // An enacted unit in the change set.
    let enacted = (|| -> std::result::Result<String, String> {
        let mut sp = tx.transaction().map_err(|e| e.to_string())?;
        let r = sp
            .query_one(
                "SELECT e.information_unit_id, iu.canonical_address FROM public.information_unit iu \
                 CROSS JOIN LATERAL public.fn_iu_enact(iu.id, $2, $3) e \
                 WHERE iu.id = (SELECT min(id) FROM public.information_unit WHERE change_set_id = $1)",
                &[&p.change_set().as_str(), &ACTOR, &p.run_id().as_str()],
            )
            .map_err(|e| e.to_string())?;
        let id: i64 = r.get(0);
        let res = compensate_a(&mut sp, p, &RevertMode::Soft, revert, ACTOR);
        drop(sp);
        match res {
            Err(e @ Error::EnactedUnits { .. }) if e.to_string().contains(&format!("id {id} ")) => {
                Ok(format!("refused, naming it: {e}"))
            }
            Err(e) => Err(format!("refused, but not as expected: {e}")),
            Ok(r) => Err(format!("NOT refused: {r}")),
        }
    })();
    rows.push(row(
        "compensation A: an enacted unit in the change set is refused",
        enacted,
    ));

    // A change set nothing carries.
    let unknown = RunId::new(format!(
        "{}-unknown",
        p.run_id().as_str().chars().take(50).collect::<String>()
    ))
    .map_err(|e| Error::Invalid(e.to_string()));
    let unknown_plan = unknown.map(|run| {
        plan(&RunFacts {
            run_id: run,
            target: p.target(),
            plan_digest: p.plan_digest(),
            failed: Some(Phase::LegBRecord),
            committed: PhaseSet::mutating_before(Phase::LegBRecord),
            pre_snapshot: p.pre_snapshot().clone(),
            database: None,
        })
    });
    rows.push(refused(
        "compensation A: an unknown change set is refused",
        unknown_plan.and_then(|up| compensate_a(tx, &up, &RevertMode::Soft, revert, ACTOR)),
        |e| matches!(e, Error::UnknownChangeSet { .. }),
    ));

    // A change outside the change set since the pre snapshot: the re-count rolls back.
    let mismatch = (|| -> std::result::Result<String, String> {
        foreign_ok.clone()?;
        let foreign_cs = format!("cs-{}-foreign", p.run_id());
        let mut sp = tx.transaction().map_err(|e| e.to_string())?;
        sp.query_one(
            "SELECT created FROM public.fn_iu_create_batch($2, 'cutter-proof-foreign', 'v1', 1, \
             ARRAY['cutter-proof/foreign'], ARRAY['Foreign'], ARRAY['foreign'], ARRAY[$1::text], \
             ARRAY['law_unit'], ARRAY['article'], ARRAY['law'], ARRAY[NULL]::text[])",
            &[&ACTOR, &foreign_cs],
        )
        .map_err(|e| e.to_string())?;
        let res = compensate_a(&mut sp, p, &RevertMode::Soft, revert, ACTOR);
        let still_draft: i64 = sp
            .query_one(
                "SELECT count(*) FROM public.information_unit WHERE change_set_id = $1 AND lifecycle_status = 'draft'",
                &[&p.change_set().as_str()],
            )
            .map_err(|e| e.to_string())?
            .get(0);
        drop(sp);
        match res {
            Err(e @ Error::RecountMismatch { .. }) if still_draft == UNITS as i64 => {
                let mut s = String::new();
                let _ = write!(s, "rolled back, {still_draft} units still draft: {e}");
                Ok(s)
            }
            Err(e) => Err(format!("failed, but not as expected: {e}")),
            Ok(r) => Err(format!("NOT rolled back: {r}")),
        }
    })();
    rows.push(row(
        "compensation A: a foreign change since the pre snapshot rolls the revert back",
        mismatch,
    ));
    rows
}
