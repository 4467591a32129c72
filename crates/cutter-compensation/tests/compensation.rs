//! Compensation A and B against real PostgreSQL: soft and hard reverts, B, the refusals,
//! idempotency, interruption, re-cut after revert, lock and target checks.

mod common;

use common::*;
use cutter_compensation::{
    compensate_a, compensate_b, execute, inspect, plan, revert_run_for, Error, HardDeleteApproval,
    RecountDifference, RevertMode, RunFacts, Step, StepOutcome,
};
use cutter_core::{
    ApprovalGate, ApprovalStatement, ChangeSetId, Compensation, Phase, PhaseSet, Refusal,
    SystemIdentifier, UnixTime,
};

fn now() -> UnixTime {
    UnixTime(
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .expect("clock")
            .as_secs() as i64,
    )
}

#[test]
fn soft_revert_a_and_b_then_a_second_run_is_a_no_op() {
    let db = db();
    let p = scale_plan("doc-soft", 25);
    let sim = simulate(&db, "r-soft", &p, Some(Phase::WriteVerify));
    let pre = sim.facts.pre_snapshot.clone();
    let mut c = exec(&db);
    let facts = sim.facts.cross_check(&mut c).expect("cross-check");
    let plan = plan(&facts);
    assert_eq!(plan.compensation(), Compensation::AB);
    assert_eq!(plan.steps(), [Step::A, Step::B]);
    let shown = plan.to_string();
    assert!(shown.contains("matrix:       A+B"), "{shown}");
    assert!(shown.contains("the database agrees"), "{shown}");

    let revert = revert_run_for(&facts.run_id);
    let before = public_counts(&db);
    let report = execute(&mut c, &plan, &RevertMode::Soft, &revert, ACTOR).expect("compensate");
    assert!(report.wrote() && !report.already_compensated(), "{report}");
    let a = &report.steps[0];
    assert_eq!(
        (a.step, a.outcome, a.units, a.versions, a.lifecycle_log_rows),
        (Step::A, StepOutcome::Done, 25, 25, 25)
    );
    assert_eq!(report.steps[1].outcome, StepOutcome::Done);

    // Soft: no unit or version added or removed, one lifecycle log row per unit.
    let after = public_counts(&db);
    assert_eq!(after, [before[0], before[1], before[2] + 25]);
    let cs = ChangeSetId::for_run(&facts.run_id);
    assert_eq!(
        units_by_status(&db, &cs),
        vec![("withdrawn".to_string(), 25)]
    );
    let logged: i64 = db
        .admin()
        .query_one(
            "SELECT count(*) FROM public.iu_lifecycle_log WHERE change_set_id = $1 \
             AND from_status = 'draft' AND to_status = 'withdrawn' AND run_id = $2 AND actor = $3",
            &[&cs.as_str(), &revert.as_str(), &ACTOR],
        )
        .unwrap()
        .get(0);
    assert_eq!(logged, 25);
    // B: the decision names the revert run; the ledger chains verify.
    let payload: String = db
        .admin()
        .query_one(
            "SELECT payload::text FROM cutter_governance.review_decision \
             WHERE change_set_id = $1 AND decision = 'reverted'",
            &[&cs.as_str()],
        )
        .unwrap()
        .get(0);
    assert!(payload.contains(revert.as_str()), "{payload}");
    assert!(ledger_intact(&db));
    // Rows that existed before the run are untouched.
    let mut target = db.target();
    let post = target.snapshot().unwrap();
    for t in ["public.information_unit", "public.unit_version"] {
        assert_eq!(post.rows(t), pre.rows(t) + 25, "{t}");
    }

    // Again: a no-op that says so.
    let snap = target.snapshot().unwrap();
    let again = execute(&mut c, &plan, &RevertMode::Soft, &revert, ACTOR).expect("again");
    assert!(again.already_compensated(), "{again}");
    assert!(
        again
            .to_string()
            .contains("already compensated: nothing was written"),
        "{again}"
    );
    assert_eq!(target.snapshot().unwrap(), snap);
    // The compensated run can be voided, releasing its claim.
    let v = cutter_governance::void(&mut c, &facts.run_id, "compensated (A+B soft)", ACTOR)
        .expect("void");
    assert!(v.newly_voided && v.released_claim.is_some());
}

#[test]
fn hard_delete_with_verified_approvals_restores_the_pre_snapshot_counts() {
    let db = db();
    let p = scale_plan("doc-hard", 30);
    let sim = simulate(&db, "r-hard", &p, Some(Phase::LifecycleEnact));
    let pre = sim.facts.pre_snapshot.clone();
    let mut c = exec(&db);
    let facts = sim.facts.cross_check(&mut c).unwrap();
    let plan = plan(&facts);
    assert_eq!(plan.compensation(), Compensation::AB);
    let revert = revert_run_for(&facts.run_id);
    let approval = approvers()
        .hard_delete_approval(&plan, &revert, &database(&db))
        .expect("approval");
    assert_eq!(approval.approvals().len(), 2);
    let report = execute(
        &mut c,
        &plan,
        &RevertMode::Hard(approval.clone()),
        &revert,
        ACTOR,
    )
    .expect("hard");
    assert_eq!(report.steps[0].units, 30);
    assert_eq!(report.steps[0].versions, 30);
    let mut target = db.target();
    let post = target.snapshot().unwrap();
    for t in [
        "public.information_unit",
        "public.unit_version",
        "public.iu_lifecycle_log",
    ] {
        assert_eq!(
            post.tables
                .iter()
                .find(|(n, _)| n.to_string() == t)
                .unwrap()
                .1,
            pre.tables
                .iter()
                .find(|(n, _)| n.to_string() == t)
                .unwrap()
                .1,
            "{t}: rows and digest equal the pre snapshot"
        );
    }
    assert_eq!(post.unit_statuses, pre.unit_statuses);
    assert!(ledger_intact(&db));
    // Again (soft or hard): nothing remains, already done.
    let again = execute(&mut c, &plan, &RevertMode::Hard(approval), &revert, ACTOR).unwrap();
    assert!(again.already_compensated(), "{again}");
    let again = execute(&mut c, &plan, &RevertMode::Soft, &revert, ACTOR).unwrap();
    assert!(again.already_compensated(), "{again}");
}

#[test]
fn a_only_when_leg_b_failed_and_no_ledger_decision() {
    let db = db();
    let p = scale_plan("doc-a-only", 7);
    let sim = simulate(&db, "r-a-only", &p, Some(Phase::LegBRecord));
    let mut c = exec(&db);
    let facts = sim.facts.cross_check(&mut c).unwrap();
    let plan = plan(&facts);
    assert_eq!(plan.compensation(), Compensation::A);
    let revert = revert_run_for(&facts.run_id);
    let decisions = db.count("cutter_governance.review_decision");
    let report = execute(&mut c, &plan, &RevertMode::Soft, &revert, ACTOR).unwrap();
    assert_eq!(report.steps.len(), 1);
    assert_eq!(report.steps[0].units, 7);
    assert_eq!(db.count("cutter_governance.review_decision"), decisions);
    assert!(matches!(
        compensate_b(&mut c, &plan, &revert, ACTOR),
        Err(Error::NotPrescribed { step: Step::B, .. })
    ));
    // A hard delete of an A-only change set, re-run: the claim still names the change set.
    let db2 = self::db();
    let sim = simulate(
        &db2,
        "r-a-only-hard",
        &plan_fixture(),
        Some(Phase::LegBRecord),
    );
    let mut c2 = exec(&db2);
    let plan2 = cutter_compensation::plan(&sim.facts.cross_check(&mut c2).unwrap());
    let revert2 = revert_run_for(plan2.run_id());
    let approval = approvers()
        .hard_delete_approval(&plan2, &revert2, &database(&db2))
        .unwrap();
    let mode = RevertMode::Hard(approval);
    assert!(execute(&mut c2, &plan2, &mode, &revert2, ACTOR)
        .unwrap()
        .wrote());
    assert!(execute(&mut c2, &plan2, &mode, &revert2, ACTOR)
        .unwrap()
        .already_compensated());
}

fn plan_fixture() -> cutter_core::ValidPlan {
    scale_plan("doc-fixture", 4)
}

#[test]
fn nothing_to_do_in_the_database_when_the_matrix_says_so() {
    let db = db();
    let mut c = exec(&db);
    for (id, fail, want) in [
        (
            "r-backup",
            Some(Phase::PreWriteBackup),
            Compensation::DiscardArtifact,
        ),
        ("r-cut", Some(Phase::CutLegA), Compensation::DiscardArtifact),
        ("r-ok", None, Compensation::None),
    ] {
        let p = scale_plan(&format!("doc-{id}"), 3);
        let sim = simulate(&db, id, &p, fail);
        let facts = sim.facts.cross_check(&mut c).unwrap();
        let plan = plan(&facts);
        assert_eq!(plan.compensation(), want, "{id}");
        let before = db.target().snapshot().unwrap();
        let report = execute(
            &mut c,
            &plan,
            &RevertMode::Soft,
            &revert_run_for(&facts.run_id),
            ACTOR,
        )
        .unwrap();
        assert!(report.steps.is_empty() && !report.wrote(), "{report}");
        assert!(
            report.to_string().contains("nothing to do in the database"),
            "{report}"
        );
        assert_eq!(db.target().snapshot().unwrap(), before);
    }
}

#[test]
fn refuses_an_enacted_unit_naming_it() {
    let db = db();
    let p = scale_plan("doc-enacted", 5);
    let sim = simulate(&db, "r-enacted", &p, Some(Phase::WriteVerify));
    let cs = ChangeSetId::for_run(&sim.facts.run_id);
    let mut c = exec(&db);
    // Somebody enacted one unit by hand.
    let (id, addr): (i64, String) = {
        let r = c
            .query_one(
                "SELECT iu.id, iu.canonical_address FROM public.information_unit iu \
                 CROSS JOIN LATERAL public.fn_iu_enact(iu.id, 'someone', NULL) e \
                 WHERE iu.id = (SELECT min(id) FROM public.information_unit WHERE change_set_id = $1)",
                &[&cs.as_str()],
            )
            .unwrap();
        (r.get(0), r.get(1))
    };
    let facts = sim.facts.cross_check(&mut c).unwrap();
    let plan = plan(&facts);
    assert_eq!(
        plan.compensation(),
        Compensation::AB,
        "one enacted unit is not a committed enact"
    );
    let before = db.target().snapshot().unwrap();
    let err = execute(
        &mut c,
        &plan,
        &RevertMode::Soft,
        &revert_run_for(&facts.run_id),
        ACTOR,
    )
    .unwrap_err();
    match &err {
        Error::EnactedUnits { total, units, .. } => {
            assert_eq!(*total, 1);
            assert_eq!(
                (units[0].id, units[0].canonical_address.as_str()),
                (id, addr.as_str())
            );
        }
        other => panic!("unexpected: {other}"),
    }
    let text = err.to_string();
    assert!(
        text.contains(&format!("id {id}")) && text.contains(&addr),
        "{text}"
    );
    assert_eq!(db.target().snapshot().unwrap(), before, "nothing written");

    // The baseline's enacted constitution, as a change set: all 60 refused, 20 named.
    let baseline = RunFacts {
        run_id: run("baseline-2013"),
        ..facts.clone()
    };
    let err = execute(
        &mut c,
        &plan_for(&baseline),
        &RevertMode::Soft,
        &run("baseline-2013-revert"),
        ACTOR,
    )
    .unwrap_err();
    assert!(
        matches!(&err, Error::EnactedUnits { total: 60, units, .. } if units.len() == 20),
        "{err}"
    );
    assert!(err.to_string().contains("and 40 more"), "{err}");
}

/// The test database as approvals name it.
fn database(db: &cutter_pg::testing::TestDb) -> cutter_core::TargetDatabase {
    db.target().database().clone()
}

fn plan_for(f: &RunFacts) -> cutter_compensation::CompensationPlan {
    plan(f)
}

#[test]
fn hard_delete_without_valid_approvals_is_refused() {
    let db = db();
    let p = scale_plan("doc-noapproval", 3);
    let sim = simulate(&db, "r-noapproval", &p, Some(Phase::WriteVerify));
    let plan = plan(&sim.facts);
    let revert = revert_run_for(plan.run_id());
    let a = approvers();
    let exp = UnixTime(now().0 + 600);
    let dbid = database(&db);
    let from = UnixTime(now().0 - 60);
    let verify = |signed: &[cutter_core::SignedApproval], revert: &cutter_core::RunId| {
        HardDeleteApproval::verify(
            &plan,
            revert,
            &dbid,
            signed,
            a.approvers(),
            now(),
            cutter_core::ApprovalPolicy::default(),
            a.verifier(),
        )
    };
    // Only SG_1.
    let sg1 = a
        .sign(
            0,
            &HardDeleteApproval::statement(&plan, &revert, &dbid, ApprovalGate::Sg1, from, exp),
        )
        .unwrap();
    match verify(std::slice::from_ref(&sg1), &revert) {
        Err(Error::ApprovalRefused { reasons, .. }) => {
            assert_eq!(
                reasons,
                vec![Refusal::MissingApproval {
                    gate: ApprovalGate::Sg2
                }]
            )
        }
        other => panic!("unexpected: {other:?}"),
    }
    // The run's own approvals (naming the run, not the revert run) replayed.
    let own = |gate, signer| {
        a.sign(
            signer,
            &ApprovalStatement {
                purpose: cutter_core::Purpose::LiveRun,
                run_id: plan.run_id().clone(),
                plan_digest: plan.plan_digest(),
                change_set: None,
                findings_digest: None,
                diff_digest: None,
                target: dbid.clone(),
                gate,
                not_before: from,
                expires_at: exp,
            },
        )
        .unwrap()
    };
    match verify(
        &[own(ApprovalGate::Sg1, 0), own(ApprovalGate::Sg2, 1)],
        &revert,
    ) {
        Err(Error::ApprovalRefused { reasons, .. }) => {
            assert!(
                reasons
                    .iter()
                    .any(|r| matches!(r, Refusal::WrongRun { .. })),
                "{reasons:?}"
            )
        }
        other => panic!("unexpected: {other:?}"),
    }
    // Both signed by the same approver.
    let sg2_same = a
        .sign(
            0,
            &HardDeleteApproval::statement(&plan, &revert, &dbid, ApprovalGate::Sg2, from, exp),
        )
        .unwrap();
    assert!(matches!(
        verify(&[sg1.clone(), sg2_same], &revert),
        Err(Error::ApprovalRefused { .. })
    ));
    // Expired.
    let old = UnixTime(now().0 - 1);
    let from = UnixTime(old.0 - 60);
    let expired = [
        a.sign(
            0,
            &HardDeleteApproval::statement(&plan, &revert, &dbid, ApprovalGate::Sg1, from, old),
        )
        .unwrap(),
        a.sign(
            1,
            &HardDeleteApproval::statement(&plan, &revert, &dbid, ApprovalGate::Sg2, from, old),
        )
        .unwrap(),
    ];
    assert!(matches!(
        verify(&expired, &revert),
        Err(Error::ApprovalRefused { .. })
    ));
    // A valid approval for another revert run is not this compensation's.
    let other_revert = run("r-noapproval-other");
    let approval = a
        .hard_delete_approval(&plan, &other_revert, &database(&db))
        .unwrap();
    let mut c = exec(&db);
    let before = db.target().snapshot().unwrap();
    let err = execute(&mut c, &plan, &RevertMode::Hard(approval), &revert, ACTOR).unwrap_err();
    assert!(matches!(err, Error::ApprovalMismatch { .. }), "{err}");
    assert_eq!(db.target().snapshot().unwrap(), before, "nothing written");
}

#[test]
fn refuses_an_unknown_change_set() {
    let db = db();
    let p = scale_plan("doc-known", 2);
    let sim = simulate(&db, "r-known", &p, Some(Phase::WriteVerify));
    let facts = RunFacts {
        run_id: run("r-never-ran"),
        ..sim.facts
    };
    let plan = plan(&facts);
    let mut c = exec(&db);
    let err = execute(
        &mut c,
        &plan,
        &RevertMode::Soft,
        &run("r-never-ran-revert"),
        ACTOR,
    )
    .unwrap_err();
    assert!(matches!(err, Error::UnknownChangeSet { .. }), "{err}");
    assert!(err.to_string().contains("cs-r-never-ran"), "{err}");
}

#[test]
fn hard_delete_after_a_soft_revert_is_refused() {
    let db = db();
    let p = scale_plan("doc-soft-then-hard", 4);
    let sim = simulate(&db, "r-soft-hard", &p, Some(Phase::WriteVerify));
    let plan = plan(&sim.facts);
    let revert = revert_run_for(plan.run_id());
    let mut c = exec(&db);
    compensate_a(&mut c, &plan, &RevertMode::Soft, &revert, ACTOR).unwrap();
    let approval = approvers()
        .hard_delete_approval(&plan, &revert, &database(&db))
        .unwrap();
    let err = compensate_a(&mut c, &plan, &RevertMode::Hard(approval), &revert, ACTOR).unwrap_err();
    match &err {
        Error::NotAllDraft { problems, next, .. } => {
            assert!(
                problems[0].contains("4 unit(s) are not draft"),
                "{problems:?}"
            );
            assert!(next.contains("soft-reverted"), "{next}");
        }
        other => panic!("unexpected: {other}"),
    }
}

#[test]
fn interrupted_between_a_and_b_finishes_b() {
    let db = db();
    let p = scale_plan("doc-half", 6);
    let sim = simulate(&db, "r-half", &p, Some(Phase::WriteVerify));
    let plan = plan(&sim.facts);
    let revert = revert_run_for(plan.run_id());
    let mut c = exec(&db);
    assert!(matches!(
        compensate_b(&mut c, &plan, &revert, ACTOR),
        Err(Error::BBeforeA { live: 6, .. })
    ));
    compensate_a(&mut c, &plan, &RevertMode::Soft, &revert, ACTOR).unwrap();
    // The process died here. Run the whole compensation again.
    let report = execute(&mut c, &plan, &RevertMode::Soft, &revert, ACTOR).unwrap();
    assert_eq!(report.steps[0].outcome, StepOutcome::AlreadyDone);
    assert_eq!(report.steps[1].outcome, StepOutcome::Done);
    assert!(!report.already_compensated());
    let state = inspect(&mut c, plan.change_set()).unwrap();
    assert!(state.reverted_decision.is_some(), "{state}");
}

#[test]
fn killed_inside_a_writes_nothing_and_can_run_again() {
    let db = db();
    let p = scale_plan("doc-killed", 12);
    let sim = simulate(&db, "r-killed", &p, Some(Phase::WriteVerify));
    let plan = plan(&sim.facts);
    let revert = revert_run_for(plan.run_id());
    let before = db.target().snapshot().unwrap();
    {
        // A's transaction runs to just before its COMMIT, then the session dies.
        let mut c = exec(&db);
        let mut tx = c.transaction().unwrap();
        let pid: i32 = tx.query_one("SELECT pg_backend_pid()", &[]).unwrap().get(0);
        let r = compensate_a(&mut tx, &plan, &RevertMode::Soft, &revert, ACTOR).unwrap();
        assert_eq!(r.outcome, StepOutcome::Done);
        let killed: bool = db
            .admin()
            .query_one("SELECT pg_terminate_backend($1, 10000)", &[&pid])
            .unwrap()
            .get(0);
        assert!(killed);
        assert!(tx.commit().is_err(), "the killed session cannot commit");
    }
    assert_eq!(
        db.target().snapshot().unwrap(),
        before,
        "the killed compensation left nothing"
    );
    let mut c = exec(&db);
    let report = execute(&mut c, &plan, &RevertMode::Soft, &revert, ACTOR).unwrap();
    assert!(
        report.steps.iter().all(|s| s.outcome == StepOutcome::Done),
        "{report}"
    );
}

#[test]
fn a_corrected_cut_after_a_soft_revert() {
    let db = db();
    let first = scale_plan("doc-recut", 10);
    let sim = simulate(&db, "r-first", &first, Some(Phase::WriteVerify));
    let plan1 = plan(&sim.facts);
    let mut c = exec(&db);
    execute(
        &mut c,
        &plan1,
        &RevertMode::Soft,
        &revert_run_for(plan1.run_id()),
        ACTOR,
    )
    .unwrap();
    // The corrected plan (another digest, same addresses) runs to the end as a new run.
    let second = corrected(&first, 3);
    assert_ne!(second.digest(), first.digest());
    let ok = simulate(&db, "r-second", &second, None);
    let cs2 = ChangeSetId::for_run(&ok.facts.run_id);
    assert_eq!(
        units_by_status(&db, &cs2),
        vec![("enacted".to_string(), 10)]
    );
    let live: i64 = db
        .admin()
        .query_one(
            "SELECT count(*) FROM public.information_unit WHERE document_id = 'doc-recut' \
             AND lifecycle_status <> 'withdrawn'",
            &[],
        )
        .unwrap()
        .get(0);
    assert_eq!(live, 10);
    // The first run stays compensated; compensating it again says so.
    let again = execute(
        &mut c,
        &plan1,
        &RevertMode::Soft,
        &revert_run_for(plan1.run_id()),
        ACTOR,
    )
    .unwrap();
    assert!(again.already_compensated(), "{again}");
}

#[test]
fn the_same_plan_after_revert_and_void() {
    let db = db();
    let p = scale_plan("doc-again", 8);
    let sim = simulate(&db, "r-one", &p, Some(Phase::LifecycleEnact));
    let plan1 = plan(&sim.facts);
    let mut c = exec(&db);
    // The claim blocks the same plan until the compensated run is voided.
    assert!(
        cutter_governance::void(&mut c, plan1.run_id(), "retry", ACTOR).is_err(),
        "void before compensation"
    );
    execute(
        &mut c,
        &plan1,
        &RevertMode::Soft,
        &revert_run_for(plan1.run_id()),
        ACTOR,
    )
    .unwrap();
    let blocked =
        cutter_governance::claim(&mut c, &db.authorization("r-two", p.digest()), &p, ACTOR);
    assert!(blocked.is_err());
    cutter_governance::void(&mut c, plan1.run_id(), "compensated; cut again", ACTOR).unwrap();
    let ok = simulate(&db, "r-two", &p, None);
    assert_eq!(
        units_by_status(&db, &ChangeSetId::for_run(&ok.facts.run_id)),
        vec![("enacted".to_string(), 8)]
    );
}

#[test]
fn a_lost_commit_reply_is_found_in_the_database() {
    let db = db();
    let p = scale_plan("doc-lost", 5);
    let sim = simulate(&db, "r-lost", &p, Some(Phase::LegBRecord));
    // The journal saw cut_leg_a fail (its COMMIT's reply was lost).
    let facts = RunFacts {
        failed: Some(Phase::CutLegA),
        committed: PhaseSet::mutating_before(Phase::CutLegA),
        ..sim.facts
    };
    assert_eq!(plan(&facts).compensation(), Compensation::DiscardArtifact);
    let mut c = exec(&db);
    let facts = facts.cross_check(&mut c).unwrap();
    let plan = plan(&facts);
    assert_eq!(plan.compensation(), Compensation::A);
    assert!(
        plan.to_string()
            .contains("the database also shows: cut_leg_a"),
        "{plan}"
    );
    let report = execute(
        &mut c,
        &plan,
        &RevertMode::Soft,
        &revert_run_for(&facts.run_id),
        ACTOR,
    )
    .unwrap();
    assert_eq!(report.steps[0].units, 5);
}

#[test]
fn a_change_outside_the_change_set_rolls_the_revert_back() {
    let db = db();
    let p = scale_plan("doc-foreign", 4);
    let sim = simulate(&db, "r-foreign", &p, Some(Phase::WriteVerify));
    let plan = plan(&sim.facts);
    let mut c = exec(&db);
    // Somebody (the owner) wrote a unit after the run's pre snapshot.
    db.admin().query_one(
        "SELECT status FROM public.fn_iu_create('foreign/1', 'Foreign', 'text', 'someone', 'law_unit', \
         'article', 'law', 'foreign', 'v1')",
        &[],
    )
    .unwrap();
    let cs = plan.change_set().clone();
    let err = execute(
        &mut c,
        &plan,
        &RevertMode::Soft,
        &revert_run_for(plan.run_id()),
        ACTOR,
    )
    .unwrap_err();
    match &err {
        Error::RecountMismatch { differences, .. } => {
            assert!(
                differences
                    .iter()
                    .any(|d| matches!(d, RecountDifference::PreExisting { .. })),
                "{differences:?}"
            );
            assert!(
                err.to_string()
                    .contains("public.information_unit: rows 158 → 159"),
                "{err}"
            );
        }
        other => panic!("unexpected: {other}"),
    }
    assert_eq!(
        units_by_status(&db, &cs),
        vec![("draft".to_string(), 4)],
        "rolled back"
    );
}

/// A soft revert must leave every version of the change set in place: if the step
/// deleted one, the re-count (against the versions counted before the step) refuses and
/// nothing commits. The faulty step is a `fn_iu_withdraw` that also deletes a version,
/// installed by the schema owner; the guard only checks that the function exists.
#[test]
fn a_soft_revert_that_deletes_a_version_is_refused_before_commit() {
    let db = db();
    let p = scale_plan("doc-lost-version", 4);
    let sim = simulate(&db, "r-lost-version", &p, Some(Phase::WriteVerify));
    let plan = plan(&sim.facts);
    let cs = plan.change_set().clone();
    db.admin()
        .batch_execute(
            "ALTER FUNCTION public.fn_iu_withdraw(text, text, text) RENAME TO fn_iu_withdraw_real; \
             CREATE FUNCTION public.fn_iu_withdraw(p_change_set_id text, p_run_id text, p_actor text) \
             RETURNS bigint LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp \
             AS $fn$ \
             DECLARE n bigint; \
             BEGIN \
                 n := public.fn_iu_withdraw_real(p_change_set_id, p_run_id, p_actor); \
                 DELETE FROM public.unit_version WHERE id = \
                     (SELECT v.id FROM public.unit_version v \
                        JOIN public.information_unit u ON u.id = v.information_unit_id \
                       WHERE u.change_set_id = p_change_set_id ORDER BY v.id LIMIT 1); \
                 RETURN n; \
             END $fn$; \
             GRANT EXECUTE ON FUNCTION public.fn_iu_withdraw(text, text, text) TO cutter_exec;",
        )
        .unwrap();
    let before = public_counts(&db);
    let mut c = exec(&db);
    let err = compensate_a(
        &mut c,
        &plan,
        &RevertMode::Soft,
        &revert_run_for(plan.run_id()),
        ACTOR,
    )
    .unwrap_err();
    let Error::RecountMismatch { differences, .. } = &err else {
        panic!("expected a re-count mismatch, got: {err}");
    };
    assert!(
        differences.iter().any(|d| matches!(
            d,
            RecountDifference::ChangeSet { what, expected: 4, found: 3 }
                if *what == format!("versions of {cs}")
        )),
        "{differences:?}"
    );
    assert!(
        differences.iter().any(|d| matches!(
            d,
            RecountDifference::Total { table, found, expected }
                if table == "public.unit_version" && *found + 1 == *expected
        )),
        "{differences:?}"
    );
    // Rolled back: the units are still draft and no version is gone.
    assert_eq!(public_counts(&db), before);
    assert_eq!(units_by_status(&db, &cs), vec![("draft".to_string(), 4)]);
}

#[test]
fn refuses_another_server_and_a_locked_target() {
    let db = db();
    let p = scale_plan("doc-guard", 2);
    let sim = simulate(&db, "r-guard", &p, Some(Phase::WriteVerify));
    let mut c = exec(&db);
    // The facts name another server.
    let other = SystemIdentifier::new(db.system_identifier().get() ^ 1);
    let mut wrong = sim.facts.clone();
    wrong.target = other;
    wrong.pre_snapshot.system_identifier = other;
    let err = execute(
        &mut c,
        &plan(&wrong),
        &RevertMode::Soft,
        &run("r-guard-revert"),
        ACTOR,
    )
    .unwrap_err();
    assert!(matches!(err, Error::WrongTarget { .. }), "{err}");
    assert!(matches!(
        sim.facts.clone().cross_check(&mut c).map(|_| ()),
        Ok(())
    ));
    assert!(matches!(
        wrong.cross_check(&mut c),
        Err(Error::WrongTarget { .. })
    ));
    let mut mixed = sim.facts.clone();
    mixed.pre_snapshot.system_identifier = other;
    let err = execute(
        &mut c,
        &plan(&mixed),
        &RevertMode::Soft,
        &run("r-guard-revert"),
        ACTOR,
    )
    .unwrap_err();
    assert!(matches!(err, Error::SnapshotOtherServer { .. }), "{err}");
    // Another run holds the target.
    let mut holder = db.target();
    holder.lock_target(&run("r-busy")).unwrap();
    let err = execute(
        &mut c,
        &plan(&sim.facts),
        &RevertMode::Soft,
        &run("r-guard-revert"),
        ACTOR,
    )
    .unwrap_err();
    match &err {
        Error::Locked { holder, .. } => assert_eq!(holder.run_id.as_deref(), Some("r-busy")),
        other => panic!("unexpected: {other}"),
    }
    holder.unlock_target().unwrap();
    execute(
        &mut c,
        &plan(&sim.facts),
        &RevertMode::Soft,
        &run("r-guard-revert"),
        ACTOR,
    )
    .unwrap();
    // The revert run must differ from the run, and the actor must be usable.
    let err = execute(
        &mut c,
        &plan(&sim.facts),
        &RevertMode::Soft,
        &run("r-guard"),
        ACTOR,
    )
    .unwrap_err();
    assert!(matches!(err, Error::Invalid(_)), "{err}");
    let err = execute(
        &mut c,
        &plan(&sim.facts),
        &RevertMode::Soft,
        &run("r-guard-revert"),
        " ",
    )
    .unwrap_err();
    assert!(matches!(err, Error::Invalid(_)), "{err}");
}

#[test]
fn facts_from_a_run_context() {
    let p = scale_plan("doc-context", 1);
    let ctx = cutter_core::RunContext::new(
        run("r-ctx"),
        cutter_core::Mode::Live,
        &p,
        SystemIdentifier::new(42),
        UnixTime(1),
    );
    assert!(matches!(
        RunFacts::from_context(&ctx, Some(Phase::LegBRecord), PhaseSet::EMPTY),
        Err(Error::NoPreSnapshot { .. })
    ));
}
