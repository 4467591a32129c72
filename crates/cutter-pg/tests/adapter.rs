//! The adapter: one transaction per phase, authorization and target checks, the run
//! lock, snapshots, streamed plans, hostile text, phase and rollback-only transactions.

use cutter_core::{
    ChangeSetId, CutPlan, DocumentId, Phase, RunId, SourceVersionId, SystemIdentifier,
};
use cutter_pg::fixtures::{self, HOSTILE_ADDRESS, HOSTILE_TITLE};
use cutter_pg::testing::TestDb;
use cutter_pg::{BatchLimits, Error, Target};

#[test]
fn cut_leg_a_writes_the_plan_in_batches_as_drafts_of_one_change_set() {
    let db = TestDb::new();
    let mut t = db.target();
    t.set_batch_limits(BatchLimits {
        rows: 1000,
        bytes: usize::MAX,
    });
    let plan = fixtures::scale_plan("batch-doc", 2500).unwrap();
    let auth = db.authorization("r-batches", plan.digest());
    let mut seen = Vec::new();
    let report = t.cut_leg_a(&auth, &plan, &mut |n| seen.push(n)).unwrap();
    assert_eq!(seen, [1000, 2000, 2500]);
    assert_eq!(report.units_created, 2500);
    assert_eq!(report.versions_created, 2500);
    assert_eq!(report.batches, 3);
    assert_eq!(report.change_set_id.as_str(), "cs-r-batches");
    assert_eq!(report.first_unit_id, Some(159));
    assert_eq!(report.last_unit_id, Some(158 + 2500));
    assert_eq!(db.count("public.information_unit"), 158 + 2500);
    assert_eq!(db.count("public.unit_version"), 165 + 2500);
    let mut c = db.admin();
    let r = c
        .query_one(
            "SELECT count(*) FILTER (WHERE iu.lifecycle_status = 'draft' AND uv.lifecycle_status = 'draft'), \
                    count(*) FILTER (WHERE uv.body_sha256 = encode(sha256(convert_to(uv.body, 'UTF8')), 'hex')), \
                    count(*) FILTER (WHERE iu.identity_profile->>'primary_section_type_ref' = 'vocab.section_type.clause'), \
                    min(iu.canonical_address COLLATE \"C\") \
               FROM public.information_unit iu JOIN public.unit_version uv ON uv.information_unit_id = iu.id \
              WHERE iu.change_set_id = 'cs-r-batches'",
            &[],
        )
        .unwrap();
    assert_eq!(r.get::<_, i64>(0), 2500);
    assert_eq!(r.get::<_, i64>(1), 2500);
    assert_eq!(r.get::<_, i64>(2), 500);
    assert_eq!(
        t.change_set_units(&report.change_set_id)
            .unwrap()
            .get("draft"),
        Some(&2500)
    );
    // Each row is the plan's row, in plan order.
    let row = c
        .query_one(
            "SELECT iu.title, uv.body, iu.owner_ref FROM public.information_unit iu \
             JOIN public.unit_version uv ON uv.information_unit_id = iu.id WHERE iu.id = 158 + 1234",
            &[],
        )
        .unwrap();
    let expect = &plan.rows()[1233];
    assert_eq!(row.get::<_, String>(0), expect.title);
    assert_eq!(row.get::<_, String>(1), expect.body);
    assert_eq!(row.get::<_, Option<String>>(2), expect.owner_ref);
}

#[test]
fn hostile_text_is_stored_verbatim() {
    let db = TestDb::named("hostile \"db\"; DROP DATABASE x; --$$");
    let mut t = db.target();
    let row = fixtures::hostile_row();
    let plan = CutPlan::new(
        DocumentId::new("doc").unwrap(),
        SourceVersionId::new("v1").unwrap(),
        vec![row.clone()],
    )
    .validate(&t.vocabularies().unwrap())
    .unwrap();
    let auth = db.authorization("r-hostile", plan.digest());
    t.cut_leg_a(&auth, &plan, &mut |_| {}).unwrap();
    let mut c = db.admin();
    let r = c
        .query_one(
            "SELECT iu.canonical_address, iu.title, uv.body, iu.created_by, iu.owner_ref, uv.body_sha256 \
             FROM public.information_unit iu JOIN public.unit_version uv ON uv.information_unit_id = iu.id \
             WHERE iu.change_set_id = 'cs-r-hostile'",
            &[],
        )
        .unwrap();
    assert_eq!(r.get::<_, String>(0), HOSTILE_ADDRESS);
    assert_eq!(r.get::<_, String>(1), HOSTILE_TITLE);
    assert_eq!(r.get::<_, String>(2), row.body);
    assert_eq!(r.get::<_, String>(3), row.actor);
    assert_eq!(r.get::<_, Option<String>>(4), row.owner_ref);
    assert_eq!(
        r.get::<_, String>(5),
        cutter_core::Sha256Digest::of(row.body.as_bytes()).to_hex()
    );
    // Enact it too (actor and run id are bound, never formatted).
    assert_eq!(
        t.lifecycle_enact(&auth, &ChangeSetId::for_run(auth.run_id()))
            .unwrap(),
        1
    );
    assert_eq!(db.count("public.information_unit"), 159);
}

#[test]
fn lifecycle_enact_enacts_the_change_set_and_only_its_own() {
    let db = TestDb::new();
    let mut t = db.target();
    let plan = fixtures::scale_plan("enact-doc", 30).unwrap();
    let auth = db.authorization("r-enact", plan.digest());
    let cs = t
        .cut_leg_a(&auth, &plan, &mut |_| {})
        .unwrap()
        .change_set_id;
    let other = ChangeSetId::for_run(&RunId::new("someone-else").unwrap());
    let e = t.lifecycle_enact(&auth, &other).unwrap_err();
    assert!(matches!(e, Error::ChangeSetNotAuthorized { .. }), "{e}");
    assert_eq!(t.lifecycle_enact(&auth, &cs).unwrap(), 30);
    assert_eq!(db.count("public.iu_lifecycle_log"), 90);
    let snap = t.snapshot().unwrap();
    assert_eq!(snap.unit_statuses.get("enacted"), Some(&90));
    // Enacting again finds no drafts.
    assert_eq!(t.lifecycle_enact(&auth, &cs).unwrap(), 0);
}

#[test]
fn cut_leg_a_refuses_a_second_cut_of_the_same_run() {
    let db = TestDb::new();
    let mut t = db.target();
    let plan = fixtures::scale_plan("twice-doc", 3).unwrap();
    let auth = db.authorization("r-twice", plan.digest());
    t.cut_leg_a(&auth, &plan, &mut |_| {}).unwrap();
    let e = t.cut_leg_a(&auth, &plan, &mut |_| {}).unwrap_err();
    assert!(matches!(e, Error::ChangeSetExists { units: 3, .. }), "{e}");
    assert!(e.to_string().contains("cutter recover"), "{e}");
    assert_eq!(db.count("public.information_unit"), 161);
}

#[test]
fn writes_need_the_authorized_server_and_plan() {
    let db = TestDb::new();
    let mut t = db.target();
    let plan = fixtures::scale_plan("auth-doc", 2).unwrap();
    // An authorization for another server.
    let elsewhere = cutter_core::LiveAuthorization::rehearsal(
        RunId::new("r-elsewhere").unwrap(),
        plan.digest(),
        db.system_identifier(),
        cutter_core::TargetDatabase {
            system_identifier: SystemIdentifier::new(42),
            ..t.database().clone()
        },
    )
    .unwrap();
    let e = t.cut_leg_a(&elsewhere, &plan, &mut |_| {}).unwrap_err();
    assert!(
        matches!(e, Error::WrongTarget { authorized, connected } if authorized.get() == 42 && connected == db.system_identifier()),
        "{e}"
    );
    let e = t
        .phase_transaction(&elsewhere, Phase::LegBRecord)
        .unwrap_err();
    assert!(matches!(e, Error::WrongTarget { .. }), "{e}");
    let e = t
        .lifecycle_enact(&elsewhere, &ChangeSetId::for_run(elsewhere.run_id()))
        .unwrap_err();
    assert!(matches!(e, Error::WrongTarget { .. }), "{e}");
    t.unlock_target().unwrap();
    // An authorization for another plan.
    let other = fixtures::scale_plan("auth-doc", 3).unwrap();
    let auth = db.authorization("r-other-plan", other.digest());
    let e = t.cut_leg_a(&auth, &plan, &mut |_| {}).unwrap_err();
    assert!(matches!(e, Error::PlanNotAuthorized { .. }), "{e}");
    assert_eq!(db.count("public.information_unit"), 158);
}

#[test]
fn phase_transactions_roll_back_unless_committed() {
    let db = TestDb::new();
    let mut t = db.target();
    let auth = db.authorization("r-ledger", cutter_core::Sha256Digest::of(b"plan"));
    let insert = "INSERT INTO cutter_governance.review_decision (run_id, change_set_id, decision, actor) VALUES ($1, $2, 'claim', 'tester')";
    {
        let mut tx = t.phase_transaction(&auth, Phase::LegBRecord).unwrap();
        assert_eq!(tx.phase(), Phase::LegBRecord);
        assert_eq!(tx.change_set_id().as_str(), "cs-r-ledger");
        let (run, cs) = (tx.run_id().to_string(), tx.change_set_id().to_string());
        tx.client().execute(insert, &[&run, &cs]).unwrap();
        // dropped: rolled back
    }
    assert_eq!(db.count("cutter_governance.review_decision"), 0);
    let mut tx = t.phase_transaction(&auth, Phase::WriteVerify).unwrap();
    tx.client()
        .execute(insert, &[&"r-ledger", &"cs-r-ledger"])
        .unwrap();
    tx.commit().unwrap();
    assert_eq!(db.count("cutter_governance.review_decision"), 1);
    let e = t.phase_transaction(&auth, Phase::Gate).unwrap_err();
    assert!(e.to_string().contains("not a mutating phase"), "{e}");
    // The read-only role for write_verify's re-read.
    let mut verify = Target::connect(&db.verify_config()).unwrap();
    let n = verify
        .read_only(|tx| {
            Ok(tx
                .query_one(
                    "SELECT count(*) FROM cutter_governance.review_decision",
                    &[],
                )
                .map_err(|e| Error::db("count", &e, ""))?
                .get::<_, i64>(0))
        })
        .unwrap();
    assert_eq!(n, 1);
}

#[test]
fn read_only_transactions_refuse_writes() {
    let db = TestDb::new();
    let mut t = db.admin_target();
    let e = t
        .read_only(|tx| {
            tx.execute(
                "UPDATE public.information_unit SET title = 'x' WHERE id = 100",
                &[],
            )
            .map_err(|e| Error::db("update", &e, ""))
        })
        .unwrap_err();
    assert_eq!(e.sqlstate(), Some("25006"), "{e}");
}

#[test]
fn the_run_lock_excludes_a_second_run_and_names_the_holder() {
    let db = TestDb::new();
    let mut a = db.target();
    let mut b = db.target();
    let ra = RunId::new("r-holder-a").unwrap();
    let rb = RunId::new("r-waiter-b").unwrap();
    a.lock_target(&ra).unwrap();
    a.lock_target(&ra).unwrap(); // re-entrant for the same run
    let e = a.lock_target(&rb).unwrap_err();
    assert!(matches!(e, Error::LockedForOtherRun { .. }), "{e}");
    let e = b.lock_target(&rb).unwrap_err();
    match &e {
        Error::Locked { holder, wanted } => {
            assert_eq!(holder.run_id.as_deref(), Some("r-holder-a"));
            assert_eq!(holder.application_name, "cutter/r-holder-a");
            assert_eq!(holder.user.as_deref(), Some("cutter_exec"));
            assert!(holder.pid > 0);
            assert_eq!(wanted, &rb);
        }
        other => panic!("{other}"),
    }
    assert!(
        e.to_string().contains("locked by run r-holder-a (pid "),
        "{e}"
    );
    // A phase of run b is refused too, before anything is written.
    let plan = fixtures::scale_plan("lock-doc", 1).unwrap();
    let auth = db.authorization("r-waiter-b", plan.digest());
    assert!(matches!(
        b.cut_leg_a(&auth, &plan, &mut |_| {}),
        Err(Error::Locked { .. })
    ));
    assert_eq!(db.count("public.information_unit"), 158);
    a.unlock_target().unwrap();
    b.cut_leg_a(&auth, &plan, &mut |_| {}).unwrap();
    // Closing the connection releases the lock.
    drop(b);
    a.lock_target(&ra).unwrap();
}

#[test]
fn rollback_only_leaves_nothing_behind() {
    let db = TestDb::new();
    // The gate's approvals are not what this proves (the xtask proof records them).
    cutter_pg::mark_rehearsal_clone(&mut db.admin()).unwrap();
    let mut t = db.target();
    let before = t.snapshot().unwrap();
    let run = RunId::new("r-proof").unwrap();
    let plan = fixtures::scale_plan("proof-doc", 5).unwrap();
    {
        let mut ro = t.rollback_only(&run).unwrap();
        ro.guard(db.system_identifier(), Phase::CutLegA).unwrap();
        assert_eq!(
            ro.step(|s| s.cut_leg_a(&plan, &mut |_| {}))
                .unwrap()
                .units_created,
            5
        );
        // A failing step is undone without aborting the transaction.
        assert!(ro.step(|s| s.cut_leg_a(&plan, &mut |_| {})).is_err());
        assert_eq!(ro.step(|s| s.lifecycle_enact()).unwrap(), 5);
        let inside = ro.snapshot().unwrap();
        assert_eq!(inside.rows("public.information_unit"), 163);
        assert_eq!(inside.unit_statuses.get("enacted"), Some(&65));
        // A probe is always undone.
        let n = ro
            .probe(|s| {
                Ok(s.client()
                    .execute("INSERT INTO cutter_governance.review_decision (run_id, decision, actor) VALUES ('r', 'x', 'a')", &[])
                    .unwrap())
            })
            .unwrap();
        assert_eq!(n, 1);
        assert_eq!(
            ro.snapshot()
                .unwrap()
                .rows("cutter_governance.review_decision"),
            0
        );
    }
    let after = t.snapshot().unwrap();
    before.net_zero(&after).unwrap();
}

#[test]
fn surface_stats_up_to_a_mark_ignore_rows_added_after_it() {
    let db = TestDb::new();
    let mut t = db.target();
    let before = t.snapshot().unwrap();
    let mark = t.surface_mark().unwrap();
    assert_eq!(mark.max_ids.values().copied().max(), Some(165));
    let plan = fixtures::scale_plan("mark-doc", 4).unwrap();
    let auth = db.authorization("r-mark", plan.digest());
    t.cut_leg_a(&auth, &plan, &mut |_| {}).unwrap();
    let after = t.snapshot().unwrap();
    assert_ne!(before.tables, after.tables);
    assert_eq!(t.surface_stats_upto(&mark).unwrap(), before.tables);
    // A soft revert changes only rows after the mark.
    let mut c = db.exec_config().connect().unwrap();
    c.query_one(
        "SELECT public.fn_iu_withdraw('cs-r-mark', 'r-revert', 'tester')",
        &[],
    )
    .unwrap();
    assert_eq!(t.surface_stats_upto(&mark).unwrap(), before.tables);
}

#[test]
fn streamed_plans_digest_like_in_memory_plans_and_write_the_same_rows() {
    let in_memory = fixtures::scale_plan("stream-doc", 5000).unwrap();
    let streamed = fixtures::scale_streamed("stream-doc", 5000).unwrap();
    assert_eq!(streamed.digest(), in_memory.digest());
    assert_eq!(streamed.rows(), 5000);

    let db = TestDb::new();
    let mut t = db.target();
    let auth = db.authorization("r-stream", streamed.digest());
    let report = t.cut_leg_a_streamed(&auth, &streamed, &mut |_| {}).unwrap();
    assert_eq!(report.units_created, 5000);
    let content = |db: &TestDb| -> String {
        db.admin()
            .query_one(
                "SELECT md5(string_agg(concat_ws('|', iu.id, iu.canonical_address, iu.title, iu.unit_kind_ref, \
                        iu.identity_profile, iu.publication_type, iu.owner_ref, iu.lifecycle_status, iu.change_set_id, \
                        iu.created_by, uv.version_no, uv.body, uv.body_sha256), E'\\n' ORDER BY iu.id)) \
                   FROM public.information_unit iu JOIN public.unit_version uv ON uv.information_unit_id = iu.id",
                &[],
            )
            .unwrap()
            .get(0)
    };

    let db2 = TestDb::new();
    let mut t2 = db2.target();
    let auth2 = db2.authorization("r-stream", in_memory.digest());
    t2.cut_leg_a(&auth2, &in_memory, &mut |_| {}).unwrap();
    assert_eq!(content(&db), content(&db2));
}

#[test]
fn streamed_validation_reports_every_violation_with_plan_row_numbers() {
    let rows = move || {
        fixtures::scale_rows("dup-doc", 9000).map(|mut r| {
            if r.canonical_address == "dup-doc/dieu-8000" {
                r.canonical_address = "dup-doc/dieu-3".into();
            }
            if r.canonical_address == "dup-doc/dieu-4500" {
                r.section_type = None;
            }
            r
        })
    };
    let err = cutter_pg::StreamedPlan::validate(
        DocumentId::new("dup-doc").unwrap(),
        SourceVersionId::new("v1").unwrap(),
        &fixtures::vocabularies(),
        None,
        rows,
    )
    .unwrap_err();
    let text = err.to_string();
    assert_eq!(err.violations.len(), 2, "{text}");
    assert!(
        text.contains("row 4500 (dup-doc/dieu-4500), section_type: must be an explicit"),
        "{text}"
    );
    assert!(
        text.contains("row 8000 (dup-doc/dieu-3), canonical_address: duplicate canonical address; first used by row 3"),
        "{text}"
    );
}

/// A plan whose addresses would not fit in the ledger's manifest is refused by the
/// contract, before anything is written (the limit is checked across the whole stream).
#[test]
fn streamed_validation_refuses_a_plan_too_large_for_the_ledger() {
    use cutter_core::plan::limits;
    let n = (limits::ADDRESSES_BYTES / 500 + 1) as u64;
    let rows = move || {
        fixtures::scale_rows("big-doc", n).map(|mut r| {
            let pad = "x".repeat(500 - r.canonical_address.len());
            r.canonical_address.push_str(&pad);
            r
        })
    };
    let err = cutter_pg::StreamedPlan::validate(
        DocumentId::new("big-doc").unwrap(),
        SourceVersionId::new("v1").unwrap(),
        &fixtures::vocabularies(),
        None,
        rows,
    )
    .unwrap_err();
    assert_eq!(err.violations.len(), 1, "{err}");
    assert!(
        err.violations[0].message.contains(&format!(
            "at most {} fit in the ledger's manifest",
            limits::ADDRESSES_BYTES
        )),
        "{err}"
    );
}

#[test]
fn a_streamed_source_that_changes_after_validation_is_rolled_back() {
    use std::sync::atomic::{AtomicU32, Ordering};
    let calls = AtomicU32::new(0);
    let source = || {
        let n = calls.fetch_add(1, Ordering::SeqCst);
        fixtures::scale_rows("shifty-doc", 50).map(move |mut r| {
            // Passes 1 and 2 validate and digest; pass 3 (the write) differs.
            if n >= 2 && r.canonical_address.ends_with("/dieu-7") {
                r.body.push_str(" (changed)");
            }
            r
        })
    };
    let plan = cutter_pg::StreamedPlan::validate(
        DocumentId::new("shifty-doc").unwrap(),
        SourceVersionId::new("v1").unwrap(),
        &fixtures::vocabularies(),
        None,
        source,
    )
    .unwrap();
    let db = TestDb::new();
    let mut t = db.target();
    let auth = db.authorization("r-shifty", plan.digest());
    let e = t.cut_leg_a_streamed(&auth, &plan, &mut |_| {}).unwrap_err();
    assert!(matches!(e, Error::PlanChanged { .. }), "{e}");
    assert_eq!(db.count("public.information_unit"), 158);
}

#[test]
fn debug_and_errors_never_show_passwords() {
    let db = TestDb::new();
    let secret = db.coordinates().exec_password.clone();
    let t = db.target();
    let config = db.exec_config();
    for text in [
        format!("{t:?}"),
        format!("{config:?}"),
        config.redacted(),
        format!("{:?}", db.coordinates()),
        format!("{db:?}"),
    ] {
        assert!(!text.contains(&secret), "password in {text}");
    }
}

#[test]
fn a_rollback_only_transaction_cannot_be_committed_even_by_raw_sql() {
    let db = TestDb::new();
    // The gate's approvals are not what this proves (the xtask proof records them).
    cutter_pg::mark_rehearsal_clone(&mut db.admin()).unwrap();
    let mut t = db.target();
    let before = t.snapshot().unwrap();
    let run = RunId::new("r-sneaky").unwrap();
    let plan = fixtures::scale_plan("sneaky-doc", 3).unwrap();
    {
        let mut ro = t.rollback_only(&run).unwrap();
        assert!(ro.commit_refused_by_server());
        ro.cut_leg_a(&plan, &mut |_| {}).unwrap();
        let e = ro.client().batch_execute("COMMIT").unwrap_err();
        assert_eq!(e.code().map(|c| c.code()), Some("25000"), "{e}");
        let message = e
            .as_db_error()
            .map(|d| d.message().to_string())
            .unwrap_or_default();
        assert!(
            message.contains("COMMIT of a rollback-only transaction refused"),
            "{message}"
        );
        // The transaction is gone; rollback() notices.
        assert!(matches!(ro.rollback(), Err(Error::RollbackOnlyEnded)));
    }
    before.net_zero(&t.snapshot().unwrap()).unwrap();
    assert_eq!(db.count("public.information_unit"), 158);
}

/// The before-commit callback runs inside the phase's transaction: an error from it rolls
/// the phase back whole, and the callback stays installed for the next phase.
#[test]
fn before_commit_callback_can_stop_a_phase_inside_its_transaction() {
    let db = cutter_pg::testing::TestDb::new();
    let mut t = cutter_pg::Target::connect(&db.exec_config()).unwrap();
    let before = t.snapshot().unwrap();
    let seen = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
    let seen2 = seen.clone();
    t.set_before_commit(Some(Box::new(move |phase| {
        seen2.lock().unwrap().push(phase);
        Err("stopped by the test".to_string())
    })));
    let plan = cutter_pg::fixtures::scale_plan("hook-doc", 25).unwrap();
    let auth = db.authorization("hook-1", plan.digest());
    let err = t.cut_leg_a(&auth, &plan, &mut |_| {}).unwrap_err();
    assert!(
        err.to_string()
            .contains("cut_leg_a: stopped before COMMIT (stopped by the test)"),
        "{err}"
    );
    assert_eq!(
        t.snapshot().unwrap(),
        before,
        "nothing of the phase may remain"
    );
    assert_eq!(*seen.lock().unwrap(), vec![cutter_core::Phase::CutLegA]);
    t.set_before_commit(None);
    let report = t.cut_leg_a(&auth, &plan, &mut |_| {}).unwrap();
    assert_eq!(report.units_created, 25);
}

/// Dropping a target releases its run lock before the drop returns: the next connection
/// of the same run (the next phase) takes it at once, without racing the server's
/// session teardown.
#[test]
fn a_dropped_target_has_released_its_run_lock() {
    let db = TestDb::new();
    let run = RunId::new("r-reconnect").unwrap();
    for i in 0..100 {
        let mut t = db.target();
        t.lock_target(&run).unwrap();
        drop(t);
        let mut next = db.target();
        next.lock_target(&run)
            .unwrap_or_else(|e| panic!("connection {i} after a drop: {e}"));
    }
}

/// A rehearsal authorization carries no approvals: aimed at a server that is not a
/// throwaway cluster (a production server is never started with cutter's
/// `cluster_name`), every mutating phase refuses it, even when the caller passed that
/// server's system identifier as the "clone", and nothing is written.
#[test]
fn a_rehearsal_authorization_is_refused_by_a_server_that_is_not_throwaway() {
    let production = cutter_pg::Cluster::start_with(&cutter_pg::ClusterOptions {
        settings: vec![("cluster_name".into(), "production".into())],
    })
    .unwrap();
    let mut admin = production.connect("postgres").unwrap();
    assert!(!cutter_pg::is_throwaway_server(&mut admin).unwrap());
    cutter_pg::schema::install_reference(&mut admin).unwrap();
    cutter_pg::schema::install_baseline(&mut admin).unwrap();
    // As the writer: the superuser is refused before anything else (its own test).
    let pw = cutter_pg::Password::new("rehearsal-writer".to_string());
    cutter_pg::schema::set_login_password(&mut admin, cutter_pg::schema::EXEC_ROLE, &pw).unwrap();
    let mut t = Target::connect(
        &production
            .config("postgres", cutter_pg::schema::EXEC_ROLE, Some(pw))
            .unwrap(),
    )
    .unwrap();
    let plan = fixtures::scale_plan("rehearsal-doc", 3).unwrap();
    let sysid = production.system_identifier().unwrap();
    let forged = cutter_core::LiveAuthorization::rehearsal(
        RunId::new("r-forged").unwrap(),
        plan.digest(),
        SystemIdentifier::new(1),
        cutter_core::TargetDatabase {
            system_identifier: sysid,
            ..t.database().clone()
        },
    )
    .unwrap();
    let refused = |e: &Error| matches!(e, Error::RehearsalOnRealServer { cluster_name, .. } if cluster_name == "production");
    let e = t.cut_leg_a(&forged, &plan, &mut |_| {}).unwrap_err();
    assert!(refused(&e), "{e}");
    assert!(e.to_string().contains("SG_1 and SG_2"), "{e}");
    let e = t.phase_transaction(&forged, Phase::LegBRecord).unwrap_err();
    assert!(refused(&e), "{e}");
    let e = t
        .lifecycle_enact(&forged, &ChangeSetId::for_run(forged.run_id()))
        .unwrap_err();
    assert!(refused(&e), "{e}");
    let units: i64 = admin
        .query_one("SELECT count(*) FROM public.information_unit", &[])
        .unwrap()
        .get(0);
    assert_eq!(units, 158, "nothing was written");

    // The superuser is refused whatever the authorization, inside the phase.
    drop(t);
    let mut su = Target::connect(&production.superuser_config("postgres").unwrap()).unwrap();
    let e = su.cut_leg_a(&forged, &plan, &mut |_| {}).unwrap_err();
    assert!(
        matches!(&e, Error::UnsafeTarget { problems, .. } if problems.iter().any(|p| p.contains("a superuser"))),
        "{e}"
    );

    // The shared test cluster is a throwaway one: the same kind of authorization works.
    let db = TestDb::new();
    let mut c = db.admin();
    assert!(cutter_pg::is_throwaway_server(&mut c).unwrap());
    let auth = db.authorization("r-rehearsal-ok", plan.digest());
    db.target().cut_leg_a(&auth, &plan, &mut |_| {}).unwrap();
    assert_eq!(db.count("public.information_unit"), 161);
}

/// The before-commit hook survives a phase refused before its transaction began (here:
/// an authorization for another server), and runs for the next phase.
#[test]
fn a_refused_phase_keeps_the_before_commit_hook() {
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::sync::Arc;
    let db = TestDb::new();
    let mut t = db.target();
    let calls = Arc::new(AtomicUsize::new(0));
    let seen = Arc::clone(&calls);
    t.set_before_commit(Some(Box::new(move |_phase| {
        seen.fetch_add(1, Ordering::SeqCst);
        Ok(())
    })));
    let plan = fixtures::scale_plan("hook-doc", 2).unwrap();
    let elsewhere = cutter_core::LiveAuthorization::rehearsal(
        RunId::new("r-hook").unwrap(),
        plan.digest(),
        db.system_identifier(),
        cutter_core::TargetDatabase {
            system_identifier: SystemIdentifier::new(42),
            ..t.database().clone()
        },
    )
    .unwrap();
    let e = t.cut_leg_a(&elsewhere, &plan, &mut |_| {}).unwrap_err();
    assert!(matches!(e, Error::WrongTarget { .. }), "{e}");
    t.unlock_target().unwrap();
    let auth = db.authorization("r-hook", plan.digest());
    t.cut_leg_a(&auth, &plan, &mut |_| {}).unwrap();
    assert_eq!(
        calls.load(Ordering::SeqCst),
        1,
        "the hook ran for the committed phase"
    );
}
