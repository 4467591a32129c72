//! Idempotency claims, void (disable level 2), compensation B's `reverted` decision and
//! the SG_3 escalation record, against a real PostgreSQL.

mod common;

use common::*;
use cutter_core::{ChangeSetId, Phase};
use cutter_governance::{
    append_reverted, claim, claim_of, is_reverted, record_sg3, run_status_in_db, void,
    ClaimOutcome, Error, Sg3Record,
};

#[test]
fn a_second_run_of_the_same_claim_is_refused_naming_the_first() {
    let db = db();
    let plan = plan("law-claim", 5);
    let (r1, r2) = (run("r-first"), run("r-second"));
    let a1 = live_auth(&db, &r1, &plan);
    let a2 = live_auth(&db, &r2, &plan);
    let mut c = exec(&db);
    let first = claim(&mut c, &a1, &plan, ACTOR).unwrap();
    assert!(matches!(first, ClaimOutcome::Claimed(_)));
    assert_eq!(first.claim().plan_digest, plan.digest().to_hex());

    let err = claim(&mut c, &a2, &plan, ACTOR).unwrap_err();
    match &err {
        Error::ClaimCollision {
            first_run,
            decision_id,
            ..
        } => {
            assert_eq!(first_run, &r1);
            assert_eq!(*decision_id, first.claim().decision_id);
        }
        other => panic!("expected ClaimCollision, got {other:?}"),
    }
    assert!(err.to_string().contains("r-first"), "{err}");
    assert_eq!(decisions(&db), 1, "nothing written");

    // The same run claiming again is idempotent; another plan is another claim.
    assert!(matches!(
        claim(&mut c, &a1, &plan, ACTOR).unwrap(),
        ClaimOutcome::AlreadyHeld(_)
    ));
    let other = common::plan("law-claim", 6);
    let a3 = live_auth(&db, &r2, &other);
    assert!(matches!(
        claim(&mut c, &a3, &other, ACTOR).unwrap(),
        ClaimOutcome::Claimed(_)
    ));
    // …but a run claims one plan only.
    let err = claim(&mut c, &a2, &plan, ACTOR).unwrap_err();
    assert!(matches!(err, Error::RunHasOtherClaim { .. }), "{err:?}");
    assert_eq!(decisions(&db), 2);
}

#[test]
fn void_retires_a_run_that_did_not_write_and_releases_its_claim() {
    let db = db();
    let plan = plan("law-void", 5);
    let (r1, r2) = (run("r-void-1"), run("r-void-2"));
    let a1 = live_auth(&db, &r1, &plan);
    let mut c = exec(&db);
    let held = claim(&mut c, &a1, &plan, ACTOR).unwrap();

    let report = void(&mut c, &r1, "operator aborted before the backup", ACTOR).unwrap();
    assert!(report.newly_voided);
    assert_eq!(report.released_claim.as_ref(), Some(held.claim()));
    // Voiding again writes nothing.
    let again = void(&mut c, &r1, "again", ACTOR).unwrap();
    assert!(!again.newly_voided);
    assert_eq!(again.decision_id, report.decision_id);
    assert_eq!(decisions(&db), 2);

    // The claim is free for another run.
    let a2 = live_auth(&db, &r2, &plan);
    assert!(matches!(
        claim(&mut c, &a2, &plan, ACTOR).unwrap(),
        ClaimOutcome::Claimed(_)
    ));
    // The voided run id never runs again: no claim, no ledger phase.
    let err = claim(&mut c, &a1, &plan, ACTOR).unwrap_err();
    assert!(matches!(err, Error::RunVoided { .. }), "{err:?}");
    let units = db.count("public.information_unit");
    let err = db.target().cut_leg_a(&a1, &plan, &mut |_| {}).unwrap_err();
    assert!(
        matches!(err, cutter_pg::Error::RunVoided { decision_id, .. } if decision_id == report.decision_id),
        "{err}"
    );
    assert_eq!(
        db.count("public.information_unit"),
        units,
        "cut_leg_a wrote nothing"
    );
    // The adapter's phase transaction refuses it before any writer runs…
    let Err(err) = db.target().phase_transaction(&a1, Phase::LegBRecord) else {
        panic!("the phase transaction of a voided run must be refused");
    };
    assert!(
        matches!(err, cutter_pg::Error::RunVoided { decision_id, .. } if decision_id == report.decision_id),
        "{err}"
    );
    // …and the ledger writer refuses it on any transaction too.
    let mut admin = db.admin();
    let mut tx = admin.transaction().unwrap();
    let err = cutter_governance::leg_b_record(&mut tx, &a1, &plan, ACTOR).unwrap_err();
    assert!(
        matches!(err, Error::RunVoided { decision_id, .. } if decision_id == report.decision_id),
        "{err:?}"
    );
    drop(tx);
    assert_eq!(db.count("cutter_governance.cut_change_set"), 0);

    let facts = run_status_in_db(&mut c, &r1).unwrap();
    assert_eq!(facts.voided, Some(report.decision_id));
    assert_eq!(facts.claim.map(|c| c.run_id), Some(r1.clone()));
}

#[test]
fn void_of_a_run_with_live_writes_is_refused_naming_them() {
    let db = db();
    let plan = plan("law-live", 12);
    let r = run("r-live");
    let auth = live_auth(&db, &r, &plan);
    let mut c = exec(&db);
    claim(&mut c, &auth, &plan, ACTOR).unwrap();
    cut(&db, &auth, &plan);
    leg_b(&db, &auth, &plan).unwrap();
    let before = ledger_counts(&db);

    let err = void(&mut c, &r, "try", ACTOR).unwrap_err();
    match &err {
        Error::VoidRefused {
            live_units,
            live_total,
            ledger_unreverted,
            ..
        } => {
            assert_eq!(*live_total, 12);
            assert_eq!(live_units.len(), 12);
            assert_eq!(live_units[0].canonical_address, "law-live/dieu-1");
            assert_eq!(live_units[0].lifecycle_status, "draft");
            assert!(*ledger_unreverted);
        }
        other => panic!("expected VoidRefused, got {other:?}"),
    }
    let text = err.to_string();
    assert!(
        text.contains("law-live/dieu-1") && text.contains("12 unit(s)"),
        "{text}"
    );
    assert_eq!(ledger_counts(&db), before, "nothing written");

    // Compensation B is refused while the units are live.
    let revert = run("r-live-revert");
    let cs = ChangeSetId::for_run(&r);
    let mut tx = c.transaction().unwrap();
    let err = append_reverted(&mut tx, &cs, &revert, ACTOR).unwrap_err();
    assert!(err.to_string().contains("compensation A"), "{err}");
    drop(tx);

    // Compensation A (soft revert), then the ledger still needs B.
    c.execute(
        "SELECT public.fn_iu_withdraw($1, $2, $3)",
        &[&cs.as_str(), &revert.as_str(), &ACTOR],
    )
    .unwrap();
    let err = void(&mut c, &r, "after A", ACTOR).unwrap_err();
    match &err {
        Error::VoidRefused {
            live_total,
            ledger_unreverted,
            ..
        } => assert_eq!((*live_total, *ledger_unreverted), (0, true)),
        other => panic!("expected VoidRefused, got {other:?}"),
    }
    assert!(err.to_string().contains("reverted"), "{err}");

    // Compensation B, idempotent.
    let mut tx = c.transaction().unwrap();
    let b = append_reverted(&mut tx, &cs, &revert, ACTOR).unwrap();
    assert!(b.newly_recorded);
    let again = append_reverted(&mut tx, &cs, &revert, ACTOR).unwrap();
    assert!(!again.newly_recorded);
    assert_eq!(again.decision_id, b.decision_id);
    tx.commit().unwrap();
    assert_eq!(is_reverted(&mut c, &cs).unwrap(), Some(b.decision_id));

    let v = void(&mut c, &r, "compensated", ACTOR).unwrap();
    assert!(v.newly_voided);
    let facts = run_status_in_db(&mut c, &r).unwrap();
    assert_eq!(facts.units_by_status.get("withdrawn"), Some(&12));
    assert_eq!(facts.live_units(), 0);
    assert_eq!(facts.reverted, Some(b.decision_id));
    assert_eq!(facts.voided, Some(v.decision_id));
    let report = cutter_governance::verify_ledger(&mut c).unwrap();
    assert!(report.is_intact(), "{report}");
}

#[test]
fn void_of_an_enacted_run_is_refused() {
    let db = db();
    let plan = plan("law-enacted", 3);
    let r = run("r-enacted");
    let auth = live_auth(&db, &r, &plan);
    cut(&db, &auth, &plan);
    leg_b(&db, &auth, &plan).unwrap();
    write_verify(&db, &auth, &plan).unwrap();
    db.target()
        .lifecycle_enact(&auth, &ChangeSetId::for_run(&r))
        .unwrap();
    let mut c = exec(&db);
    match void(&mut c, &r, "too late", ACTOR).unwrap_err() {
        Error::VoidRefused { live_units, .. } => {
            assert!(live_units.iter().all(|u| u.lifecycle_status == "enacted"))
        }
        other => panic!("expected VoidRefused, got {other:?}"),
    }
    assert_eq!(decisions(&db), 0);
}

#[test]
fn sg3_is_recorded_with_phase_reason_and_snapshots() {
    let db = db();
    let pre = db.target().snapshot().unwrap();
    let plan = plan("law-sg3", 2);
    let r = run("r-sg3");
    let auth = live_auth(&db, &r, &plan);
    cut(&db, &auth, &plan);
    let post = db.target().snapshot().unwrap();
    let record = Sg3Record::new(
        r.clone(),
        Some(Phase::LegBRecord),
        "leg_b_record failed: connection reset",
        Some(pre.clone()),
        Some(post.clone()),
    );
    let id = record_sg3(&mut exec(&db), &record, ACTOR).unwrap();
    let row = db
        .admin()
        .query_one(
            "SELECT run_id, change_set_id, decision, payload::text, actor FROM cutter_governance.review_decision WHERE id = $1",
            &[&id],
        )
        .unwrap();
    assert_eq!(row.get::<_, &str>(0), "r-sg3");
    assert_eq!(row.get::<_, &str>(1), "cs-r-sg3");
    assert_eq!(row.get::<_, &str>(2), "sg3_escalation");
    assert_eq!(row.get::<_, &str>(4), ACTOR);
    let back: Sg3Record = serde_json::from_str(row.get::<_, &str>(3)).unwrap();
    assert_eq!(back, record, "the ledger row holds the whole record");
    assert_eq!(back.failed_phase, Some(Phase::LegBRecord));
    assert_eq!(
        back.post_snapshot.unwrap().unit_statuses.get("draft"),
        Some(&(98 + 2))
    );
    // The state file's text is the same record.
    let file: Sg3Record = serde_json::from_str(&record.to_json_pretty()).unwrap();
    assert_eq!(file, record);
    let facts = run_status_in_db(&mut exec(&db), &r).unwrap();
    assert_eq!(facts.sg3_escalations, vec![id]);
    assert!(claim_of(&mut exec(&db), &r).unwrap().is_none());
}

/// A run holds the per-target run lock for all of its phases; a void of that run while it
/// is under way is refused, naming the holder, and writes nothing. Once the run lets go,
/// the void goes through.
#[test]
fn void_waits_for_a_run_in_flight() {
    let db = db();
    let r = run("r-in-flight");
    let mut t = db.target();
    t.lock_target(&r).unwrap();
    let mut c = exec(&db);
    let before = decisions(&db);
    let err = void(&mut c, &r, "operator changed their mind", ACTOR).unwrap_err();
    assert!(
        matches!(&err, Error::RunInFlight { holder, .. } if holder.run_id.as_deref() == Some("r-in-flight")),
        "{err}"
    );
    assert!(err.to_string().contains("run r-in-flight"), "{err}");
    assert_eq!(decisions(&db), before);
    t.unlock_target().unwrap();
    assert!(
        void(&mut c, &r, "operator changed their mind", ACTOR)
            .unwrap()
            .newly_voided
    );
}
