//! Compensation of amendment runs against real PostgreSQL: after a first load, an
//! amendment (articles reworded, one added, one removed) stopped before lifecycle_enact
//! is reverted soft (its versions and units withdrawn) or hard (deleted); the previously
//! enacted text stays current and no row that existed before changes. An enacted
//! amendment is never compensated.

mod common;

use common::*;
use cutter_compensation::{
    compensate_a, execute, plan, revert_run_for, Error, RevertMode, StepOutcome,
};
use cutter_core::{ChangeSetId, Compensation, Phase, PhaseSet, ValidPlan};
use cutter_pg::testing::{plan_text, TestDb};

const DOC: &str = "amend-comp";

/// Articles 2–9 reworded, article 15 removed, a new article added.
fn amended(base: &ValidPlan) -> ValidPlan {
    plan_of(DOC, cutter_pg::fixtures::amended_rows(DOC, base.rows()))
}

/// A first load of 20 articles, enacted; returns its plan.
fn first_load(db: &TestDb) -> ValidPlan {
    let first = scale_plan(DOC, 20);
    simulate(db, "first-load", &first, None);
    assert_eq!(db.current_text(DOC), plan_text(first.rows()));
    first
}

fn versions_of(db: &TestDb, cs: &ChangeSetId) -> Vec<(String, i64)> {
    db.admin()
        .query(
            "SELECT lifecycle_status, count(*) FROM public.unit_version WHERE change_set_id = $1 \
             GROUP BY 1 ORDER BY 1",
            &[&cs.as_str()],
        )
        .unwrap()
        .iter()
        .map(|r| (r.get(0), r.get(1)))
        .collect()
}

#[test]
fn a_soft_revert_withdraws_the_amendments_versions_and_units_and_the_enacted_text_stays_current() {
    let db = db();
    let first = first_load(&db);
    let second = amended(&first);
    let before = db.unit_rows();
    let sim = simulate(&db, "amend-soft", &second, Some(Phase::WriteVerify));
    let mut c = exec(&db);
    let facts = sim.facts.cross_check(&mut c).unwrap();
    let plan = plan(&facts);
    assert_eq!(plan.compensation(), Compensation::AB);
    let cs = ChangeSetId::for_run(&facts.run_id);
    assert_eq!(versions_of(&db, &cs), [("draft".to_string(), 9)]);
    assert_eq!(
        db.current_text(DOC),
        plan_text(first.rows()),
        "drafts are never current"
    );

    let revert = revert_run_for(&facts.run_id);
    let report = execute(&mut c, &plan, &RevertMode::Soft, &revert, ACTOR).expect("compensate");
    let a = &report.steps[0];
    // 1 new unit (its version 1) and 9 versions of enacted units (8 rewordings, 1
    // repeal), each withdrawn with one lifecycle log row.
    assert_eq!(
        (a.outcome, a.units, a.versions, a.lifecycle_log_rows),
        (StepOutcome::Done, 1, 10, 10),
        "{report}"
    );
    assert_eq!(versions_of(&db, &cs), [("withdrawn".to_string(), 9)]);
    assert_eq!(units_by_status(&db, &cs), [("withdrawn".to_string(), 1)]);
    assert_eq!(db.current_text(DOC), plan_text(first.rows()));
    // Every row that existed before the amendment is byte-identical.
    let after = db.unit_rows();
    for (k, v) in &before {
        assert_eq!(after.get(k), Some(v), "{k:?} changed");
    }
    assert!(ledger_intact(&db));
    // Again: already done, nothing written.
    let again = execute(&mut c, &plan, &RevertMode::Soft, &revert, ACTOR).unwrap();
    assert!(again.already_compensated(), "{again}");
    assert_eq!(db.unit_rows(), after);

    // Voided, the run releases its claim, and its withdrawn drafts no longer keep the
    // next amendment out: the same text again, as a new run, is enacted and current.
    cutter_governance::void(&mut c, &facts.run_id, "compensated (A+B soft)", ACTOR).unwrap();
    simulate(&db, "amend-again", &second, None);
    assert_eq!(db.current_text(DOC), plan_text(second.rows()));
}

#[test]
fn a_rewording_only_amendment_killed_after_cut_leg_a_is_withdrawn() {
    let db = db();
    let first = first_load(&db);
    let mut rows = first.rows().to_vec();
    rows[3].body.push_str(" (sửa đổi)");
    rows[4].title = "Điều 5 (tên mới)".into();
    let second = plan_of(DOC, rows);
    let before = db.unit_rows();
    let sim = simulate(&db, "amend-words", &second, Some(Phase::LegBRecord));
    let mut c = exec(&db);
    let facts = sim.facts.cross_check(&mut c).unwrap();
    // No unit carries the change set, only versions: the database still shows cut_leg_a.
    assert!(facts.database.unwrap().contains(Phase::CutLegA));
    let plan = plan(&facts);
    assert_eq!(plan.compensation(), Compensation::A);
    let revert = revert_run_for(&facts.run_id);
    let report = execute(&mut c, &plan, &RevertMode::Soft, &revert, ACTOR).unwrap();
    let a = &report.steps[0];
    assert_eq!(
        (a.units, a.versions, a.lifecycle_log_rows),
        (0, 2, 2),
        "{report}"
    );
    assert_eq!(db.current_text(DOC), plan_text(first.rows()));
    let after = db.unit_rows();
    for (k, v) in &before {
        assert_eq!(after.get(k), Some(v), "{k:?} changed");
    }
    let again = execute(&mut c, &plan, &RevertMode::Soft, &revert, ACTOR).unwrap();
    assert!(again.already_compensated(), "{again}");
}

#[test]
fn a_hard_delete_of_an_amendment_restores_the_pre_snapshot() {
    let db = db();
    let first = first_load(&db);
    let second = amended(&first);
    let sim = simulate(&db, "amend-hard", &second, Some(Phase::LifecycleEnact));
    let pre = sim.facts.pre_snapshot.clone();
    let mut c = exec(&db);
    let facts = sim.facts.cross_check(&mut c).unwrap();
    let plan = plan(&facts);
    let revert = revert_run_for(&facts.run_id);
    let approval = approvers()
        .hard_delete_approval(&plan, &revert, &db.target().database().clone())
        .expect("approval");
    let report =
        execute(&mut c, &plan, &RevertMode::Hard(approval), &revert, ACTOR).expect("hard delete");
    assert_eq!(
        (report.steps[0].units, report.steps[0].versions),
        (1, 10),
        "{report}"
    );
    let post = db.target().snapshot().unwrap();
    for t in [
        "public.information_unit",
        "public.unit_version",
        "public.iu_lifecycle_log",
    ] {
        let stat = |s: &cutter_core::Snapshot| {
            s.tables
                .iter()
                .find(|(n, _)| n.to_string() == t)
                .map(|(_, v)| *v)
        };
        assert_eq!(stat(&post), stat(&pre), "{t}: rows and digest");
    }
    assert_eq!(db.current_text(DOC), plan_text(first.rows()));
}

#[test]
fn an_enacted_amendment_is_never_compensated() {
    let db = db();
    let first = first_load(&db);
    let second = amended(&first);
    let sim = simulate(&db, "amend-done", &second, None);
    assert_eq!(db.current_text(DOC), plan_text(second.rows()));
    let before = db.unit_rows();
    let mut c = exec(&db);
    // The database shows lifecycle_enact committed: the run succeeded, nothing to do.
    let checked = sim.facts.clone().cross_check(&mut c).unwrap();
    assert_eq!(plan(&checked).compensation(), Compensation::None);
    // A journal that lost the enactment's commit asks for A + B: A refuses, naming the
    // enacted versions and what to do instead, and writes nothing.
    let journal = cutter_compensation::RunFacts {
        failed: Some(Phase::LifecycleEnact),
        committed: PhaseSet::EMPTY
            .with(Phase::PreWriteBackup)
            .with(Phase::CutLegA)
            .with(Phase::LegBRecord)
            .with(Phase::WriteVerify),
        ..sim.facts
    };
    let p = plan(&journal);
    assert_eq!(p.compensation(), Compensation::AB);
    let revert = revert_run_for(&journal.run_id);
    let e = compensate_a(&mut c, &p, &RevertMode::Soft, &revert, ACTOR).unwrap_err();
    let Error::EnactedUnits { .. } = &e else {
        // The new unit (article 21a) is enacted too; the refusal names units first.
        panic!("{e}");
    };
    assert_eq!(db.unit_rows(), before);

    // A rewording only (no new unit): the refusal names the versions.
    let mut rows = second.rows().to_vec();
    rows[2].body.push_str(" (lần hai)");
    let third = plan_of(DOC, rows);
    let sim = simulate(&db, "amend-done-2", &third, None);
    let journal = cutter_compensation::RunFacts {
        failed: Some(Phase::LifecycleEnact),
        committed: journal.committed,
        ..sim.facts
    };
    let p = plan(&journal);
    let before = db.unit_rows();
    let e = compensate_a(
        &mut c,
        &p,
        &RevertMode::Soft,
        &revert_run_for(&journal.run_id),
        ACTOR,
    )
    .unwrap_err();
    assert!(
        matches!(&e, Error::EnactedAmendment { total: 1, versions, .. } if versions[0].contains("version 3")),
        "{e}"
    );
    let msg = e.to_string();
    assert!(msg.contains("cut it as a new amendment"), "{msg}");
    assert_eq!(db.unit_rows(), before);
    assert_eq!(db.current_text(DOC), plan_text(third.rows()));
}
