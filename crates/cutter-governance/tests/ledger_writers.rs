//! leg_b_record and write_verify against a real PostgreSQL: any N, set-based, one
//! transaction each, nothing written on failure.

mod common;

use common::*;
use cutter_core::{ChangeSetId, LiveAuthorization, Phase, SystemIdentifier};
use cutter_governance::{
    body_sha256, run_status_in_db, verify_ledger, Error, MismatchKind, MANIFEST_FORMAT,
};

#[test]
fn leg_b_record_and_write_verify_record_a_change_set_of_any_size() {
    let db = db();
    let n = 1234;
    let plan = plan("law-any-n", n);
    let r = run("r-any-n");
    let auth = live_auth(&db, &r, &plan);
    cut(&db, &auth, &plan);

    let legb = leg_b(&db, &auth, &plan).expect("leg_b_record");
    assert_eq!(legb.units, n);
    assert_eq!(legb.change_set, ChangeSetId::for_run(&r));
    assert_eq!(legb.signature_rows.len(), 2);
    assert_eq!(
        ledger_counts(&db),
        vec![1, n as i64, 1, 2, 0, 2],
        "one change set, N affected rows, one manifest, two signatures (and the two approvers' registrations)"
    );

    let mut admin = db.admin();
    // One affected row per unit, joined from the units as stored.
    let joined: i64 = admin
        .query_one(
            "SELECT count(*) FROM cutter_governance.cut_change_set_affected_row a \
             JOIN public.information_unit iu ON iu.id = a.information_unit_id \
              AND iu.canonical_address = a.canonical_address AND iu.change_set_id = a.change_set_id \
             JOIN public.unit_version uv ON uv.information_unit_id = iu.id AND uv.body_sha256 = a.body_sha256 \
             WHERE a.change_set_id = $1",
            &[&"cs-r-any-n"],
        )
        .unwrap()
        .get(0);
    assert_eq!(joined, n as i64);
    // The change set row.
    let cs = admin
        .query_one(
            "SELECT run_id, document_id, source_version_id, plan_digest, unit_count \
             FROM cutter_governance.cut_change_set",
            &[],
        )
        .unwrap();
    assert_eq!(cs.get::<_, &str>(0), "r-any-n");
    assert_eq!(cs.get::<_, &str>(1), "law-any-n");
    assert_eq!(cs.get::<_, &str>(2), "v1");
    assert_eq!(cs.get::<_, String>(3), plan.digest().to_hex());
    assert_eq!(cs.get::<_, i64>(4), n as i64);
    // The manifest: plan digest and every unit's planned body digest, in plan order.
    let m: serde_json::Value = serde_json::from_str(
        admin
            .query_one(
                "SELECT manifest::text FROM cutter_governance.manifest_envelope",
                &[],
            )
            .unwrap()
            .get::<_, &str>(0),
    )
    .unwrap();
    assert_eq!(m["format"], MANIFEST_FORMAT);
    assert_eq!(m["plan_digest"], plan.digest().to_hex());
    assert_eq!(m["unit_count"], n);
    let units = m["units"].as_array().unwrap();
    assert_eq!(units.len(), n as usize);
    for (u, row) in units.iter().zip(plan.rows()) {
        assert_eq!(u[0], row.canonical_address.as_str());
        assert_eq!(u[1], body_sha256(&row.body).as_str());
    }
    assert_eq!(m["units_digest"], legb.units_digest.to_hex());
    // The pair signatures are the ones that authorized the run.
    let sigs = admin
        .query(
            "SELECT gate, signer_fpr, statement, signature FROM cutter_governance.dot_pair_signature ORDER BY id",
            &[],
        )
        .unwrap();
    for (row, a) in sigs.iter().zip(auth.approvals()) {
        assert_eq!(row.get::<_, &str>(0), a.gate.name());
        assert_eq!(row.get::<_, &str>(1), a.signer.as_str());
        assert_eq!(row.get::<_, String>(2), a.statement.canonical_text());
        assert_eq!(row.get::<_, &str>(3), a.signature);
    }

    let v = write_verify(&db, &auth, &plan).expect("write_verify");
    assert_eq!(v.facts.checked, n);
    assert_eq!(v.facts.matched, n);
    assert_eq!(v.facts.mismatched, 0);
    assert_eq!(v.read_as, "cutter_verify");
    let vr = admin
        .query_one(
            "SELECT checked, matched, mismatched, verdict, details ->> 'read_as' FROM cutter_governance.verify_result",
            &[],
        )
        .unwrap();
    assert_eq!(vr.get::<_, i64>(0), n as i64);
    assert_eq!(vr.get::<_, i64>(1), n as i64);
    assert_eq!(vr.get::<_, i64>(2), 0);
    assert_eq!(vr.get::<_, &str>(3), "match");
    assert_eq!(vr.get::<_, &str>(4), "cutter_verify");

    // Every chain is intact, checked as the read-only role.
    let mut verify = db.verify_config().connect().unwrap();
    let report = verify_ledger(&mut verify).expect("verify_ledger");
    assert!(report.is_intact(), "{report}");
    // change set, affected rows, manifest, verify result, the two signatures, and the
    // two approvers' registrations.
    assert_eq!(report.rows(), 1 + n + 1 + 1 + 2 + 2);

    let facts = run_status_in_db(&mut verify, &r).unwrap();
    assert_eq!(facts.units_by_status.get("draft"), Some(&n));
    assert!(facts.change_set_row.is_some());
    assert_eq!(facts.affected_rows, n);
    assert_eq!(facts.signatures, 2);
    assert_eq!(
        facts.verify_result.as_ref().map(|v| v.1.as_str()),
        Some("match")
    );
    assert!(facts.voided.is_none() && facts.reverted.is_none());
}

#[test]
fn leg_b_record_leaves_zero_rows_when_it_fails_midway() {
    let db = db();
    let plan = plan("law-fail", 300);
    let r = run("r-fail");
    let auth = live_auth(&db, &r, &plan);
    cut(&db, &auth, &plan);
    // A fault after the change set and the affected rows are inserted: the manifest
    // insert fails.
    db.admin()
        .batch_execute(
            "CREATE FUNCTION public.fail_manifest() RETURNS trigger LANGUAGE plpgsql AS \
             $$BEGIN RAISE EXCEPTION 'injected fault' USING ERRCODE = 'XX000'; END$$; \
             CREATE TRIGGER fail_manifest BEFORE INSERT ON cutter_governance.manifest_envelope \
             FOR EACH ROW EXECUTE FUNCTION public.fail_manifest();",
        )
        .unwrap();
    let err = leg_b(&db, &auth, &plan).expect_err("the injected fault fails the phase");
    assert!(err.to_string().contains("injected fault"), "{err}");
    assert_eq!(err.sqlstate().map(|s| s.code()), Some("XX000"));
    assert_eq!(
        ledger_counts(&db),
        AUTHORIZED.to_vec(),
        "nothing is written"
    );

    // Without the fault, the same phase succeeds.
    db.admin()
        .batch_execute("DROP TRIGGER fail_manifest ON cutter_governance.manifest_envelope")
        .unwrap();
    leg_b(&db, &auth, &plan).expect("leg_b_record");
    assert_eq!(ledger_counts(&db), vec![1, 300, 1, 2, 0, 2]);
    let report = verify_ledger(&mut db.admin()).unwrap();
    assert!(report.is_intact(), "{report}");
}

#[test]
fn leg_b_record_refuses_units_that_do_not_match_the_plan() {
    let db = db();
    let plan = plan("law-extra", 20);
    let r = run("r-extra");
    let auth = live_auth(&db, &r, &plan);
    cut(&db, &auth, &plan);
    // A unit that is not in the plan, tagged with the run's change set; and a planned
    // unit moved away.
    db.admin()
        .batch_execute(
            "SELECT public.fn_iu_create('law-extra/stray', 'Stray', 'body', 'x', 'law_unit', \
             'article', 'law', 'law-extra', 'v1', NULL, 'cs-r-extra'); \
             UPDATE public.information_unit SET change_set_id = 'cs-other' \
              WHERE canonical_address = 'law-extra/dieu-7';",
        )
        .unwrap();
    match leg_b(&db, &auth, &plan) {
        Err(Error::UnitsDoNotMatchPlan {
            missing,
            unexpected,
            plan_rows,
            found,
            ..
        }) => {
            assert_eq!(missing, vec!["law-extra/dieu-7".to_string()]);
            assert_eq!(unexpected, vec!["law-extra/stray".to_string()]);
            assert_eq!((plan_rows, found), (20, 20));
        }
        other => panic!("expected UnitsDoNotMatchPlan, got {other:?}"),
    }
    assert_eq!(ledger_counts(&db), AUTHORIZED.to_vec());
}

#[test]
fn leg_b_record_is_not_written_twice() {
    let db = db();
    let plan = plan("law-twice", 5);
    let r = run("r-twice");
    let auth = live_auth(&db, &r, &plan);
    cut(&db, &auth, &plan);
    let first = leg_b(&db, &auth, &plan).unwrap();
    let err = leg_b(&db, &auth, &plan).expect_err("second leg_b_record");
    match &err {
        Error::AlreadyRecorded { id, .. } => assert_eq!(*id, first.change_set_row),
        other => panic!("expected AlreadyRecorded, got {other:?}"),
    }
    assert!(err.to_string().contains("cut_change_set"), "{err}");
    assert_eq!(ledger_counts(&db), vec![1, 5, 1, 2, 0, 2]);
}

#[test]
fn leg_b_record_refuses_another_server_and_another_plan() {
    let db = db();
    let plan = plan("law-target", 3);
    let r = run("r-target");
    let auth = live_auth(&db, &r, &plan);
    cut(&db, &auth, &plan);
    // An authorization naming another server, used on a raw transaction (the adapter's
    // phase_transaction would already refuse it).
    let elsewhere = LiveAuthorization::rehearsal(
        r.clone(),
        plan.digest(),
        SystemIdentifier::new(1),
        cutter_core::TargetDatabase {
            system_identifier: SystemIdentifier::new(db.system_identifier().get() ^ 0xff),
            ..db.target().database().clone()
        },
    )
    .unwrap();
    let mut c = exec(&db);
    let mut tx = c.transaction().unwrap();
    let err = cutter_governance::leg_b_record(&mut tx, &elsewhere, &plan, ACTOR).unwrap_err();
    assert!(matches!(err, Error::WrongTarget { .. }), "{err:?}");
    drop(tx);
    // The authorized plan, but another plan given.
    let other = common::plan("law-target", 4);
    let mut tx = c.transaction().unwrap();
    let err = cutter_governance::leg_b_record(&mut tx, &auth, &other, ACTOR).unwrap_err();
    assert!(
        err.to_string().contains("pass the plan that was approved"),
        "{err}"
    );
    drop(tx);
    assert_eq!(ledger_counts(&db), AUTHORIZED.to_vec());
}

#[test]
fn write_verify_reports_every_difference_and_writes_nothing() {
    let db = db();
    let plan = plan("law-tamper", 50);
    let r = run("r-tamper");
    let auth = live_auth(&db, &r, &plan);
    cut(&db, &auth, &plan);
    leg_b(&db, &auth, &plan).unwrap();
    db.admin()
        .batch_execute(
            "UPDATE public.information_unit SET title = 'Điều sai' WHERE canonical_address = 'law-tamper/dieu-3'; \
             UPDATE public.unit_version SET body = 'changed', body_sha256 = encode(sha256('changed'), 'hex') \
              WHERE information_unit_id = (SELECT id FROM public.information_unit WHERE canonical_address = 'law-tamper/dieu-9');",
        )
        .unwrap();
    let before = ledger_counts(&db);
    match write_verify(&db, &auth, &plan) {
        Err(Error::VerifyMismatch {
            checked,
            mismatches,
            ..
        }) => {
            assert_eq!(checked, 50);
            let title = mismatches
                .iter()
                .find(|m| m.canonical_address == "law-tamper/dieu-3")
                .expect("dieu-3 reported");
            assert!(
                matches!(&title.kind, MismatchKind::Title { found, .. } if found == "Điều sai")
            );
            let body: Vec<_> = mismatches
                .iter()
                .filter(|m| m.canonical_address == "law-tamper/dieu-9")
                .collect();
            assert!(body
                .iter()
                .any(|m| matches!(m.kind, MismatchKind::Body { .. })));
            // leg_b_record recorded the original body digest: the ledger disagrees too.
            assert!(body
                .iter()
                .any(|m| matches!(m.kind, MismatchKind::Ledger { .. })));
            assert_eq!(
                mismatches
                    .iter()
                    .filter(|m| m.canonical_address != "law-tamper/dieu-3"
                        && m.canonical_address != "law-tamper/dieu-9")
                    .count(),
                0
            );
        }
        other => panic!("expected VerifyMismatch, got {other:?}"),
    }
    assert_eq!(ledger_counts(&db), before, "nothing is written");
    assert_eq!(db.count("cutter_governance.verify_result"), 0);
}

/// A draft body edited in place after insert, its stored `body_sha256` left alone: the
/// digest write_verify compares is computed from the body, so the edit is seen, and the
/// stale stored digest is reported too.
#[test]
fn write_verify_recomputes_the_body_digest_from_the_body() {
    let db = db();
    let plan = plan("law-body-edit", 6);
    let r = run("r-body-edit");
    let auth = live_auth(&db, &r, &plan);
    cut(&db, &auth, &plan);
    leg_b(&db, &auth, &plan).unwrap();
    let address = "law-body-edit/dieu-2";
    let edited = "a body edited after insert";
    // As the table owner, straight through SQL: the body only.
    let changed = db
        .admin()
        .execute(
            "UPDATE public.unit_version SET body = $2 WHERE information_unit_id = \
             (SELECT id FROM public.information_unit WHERE canonical_address = $1)",
            &[&address, &edited],
        )
        .unwrap();
    assert_eq!(changed, 1);
    let planned = plan
        .rows()
        .iter()
        .find(|r| r.canonical_address.as_str() == address)
        .map(|r| body_sha256(&r.body))
        .expect("planned row");
    let edited_sha = body_sha256(edited);
    let before = ledger_counts(&db);
    match write_verify(&db, &auth, &plan) {
        Err(Error::VerifyMismatch { mismatches, .. }) => {
            assert!(
                mismatches.iter().all(|m| m.canonical_address == address),
                "{mismatches:?}"
            );
            let kinds: Vec<&MismatchKind> = mismatches.iter().map(|m| &m.kind).collect();
            assert!(
                kinds.contains(&&MismatchKind::Body {
                    expected: planned.clone(),
                    found: Some(edited_sha.clone()),
                }),
                "{kinds:?}"
            );
            assert!(
                kinds.contains(&&MismatchKind::StoredDigest {
                    stored: planned.clone(),
                    computed: edited_sha.clone(),
                }),
                "{kinds:?}"
            );
        }
        other => panic!("expected VerifyMismatch, got {other:?}"),
    }
    assert_eq!(ledger_counts(&db), before, "nothing is written");
}

#[test]
fn write_verify_needs_leg_b_and_a_read_only_verify_role() {
    let db = db();
    let plan = plan("law-order", 4);
    let r = run("r-order");
    let auth = live_auth(&db, &r, &plan);
    cut(&db, &auth, &plan);
    let err = write_verify(&db, &auth, &plan).expect_err("before leg_b_record");
    assert!(
        err.to_string().contains("leg_b_record must commit"),
        "{err}"
    );
    leg_b(&db, &auth, &plan).unwrap();

    // Reading as cutter_exec (which can write the ledger) is refused.
    {
        let mut target = db.target();
        let mut not_read_only = exec(&db);
        let mut pt = target.phase_transaction(&auth, Phase::WriteVerify).unwrap();
        let err =
            cutter_governance::write_verify(pt.client(), &mut not_read_only, &auth, &plan, ACTOR)
                .unwrap_err();
        assert!(
            err.to_string().contains("read-only role cutter_verify"),
            "{err}"
        );
    }
    assert_eq!(db.count("cutter_governance.verify_result"), 0);

    write_verify(&db, &auth, &plan).expect("as cutter_verify");
    let err = write_verify(&db, &auth, &plan).expect_err("twice");
    assert!(matches!(err, Error::AlreadyRecorded { .. }), "{err:?}");
    assert_eq!(db.count("cutter_governance.verify_result"), 1);
}

#[test]
fn rehearsal_runs_record_no_signatures() {
    let db = db();
    let plan = plan("law-rehearsal", 10);
    let auth = db.authorization("r-rehearsal", plan.digest());
    cut(&db, &auth, &plan);
    let legb = leg_b(&db, &auth, &plan).unwrap();
    assert!(legb.signature_rows.is_empty());
    write_verify(&db, &auth, &plan).unwrap();
    assert_eq!(ledger_counts(&db), vec![1, 10, 1, 0, 1, 0]);
}

/// leg_b_record refuses a rehearsal authorization (no approvals) on a server that is not
/// a throwaway cluster, even when it names that server's system identifier; no ledger
/// row is written.
#[test]
fn leg_b_record_refuses_a_rehearsal_on_a_real_server() {
    let production = cutter_pg::Cluster::start_with(&cutter_pg::ClusterOptions {
        settings: vec![("cluster_name".into(), "production".into())],
    })
    .unwrap();
    let mut admin = production.connect("postgres").unwrap();
    cutter_pg::schema::install_reference(&mut admin).unwrap();
    let plan = plan("law-forged", 4);
    let forged = LiveAuthorization::rehearsal(
        run("r-forged"),
        plan.digest(),
        SystemIdentifier::new(1),
        cutter_pg::surface::target_database(&mut admin).unwrap(),
    )
    .unwrap();
    let mut tx = admin.transaction().unwrap();
    let e = cutter_governance::leg_b_record(&mut tx, &forged, &plan, "tester").unwrap_err();
    assert!(
        matches!(&e, Error::RehearsalOnRealServer { cluster_name, .. } if cluster_name == "production"),
        "{e}"
    );
    drop(tx);
    let rows: i64 = admin
        .query_one("SELECT count(*) FROM cutter_governance.cut_change_set", &[])
        .unwrap()
        .get(0);
    assert_eq!(rows, 0);
}
