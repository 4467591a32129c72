//! Tamper evidence: one hash chain per ledger table, recomputed by verify_ledger; the
//! ledger is append-only for every role but the owner.

mod common;

use common::*;
use cutter_governance::{
    check_installed, install, record_sg3, verify_ledger, Error, LedgerTable, Sg3Record,
};

/// A database whose ledger holds a recorded and verified run plus a few decisions.
fn populated() -> cutter_pg::testing::TestDb {
    let db = db();
    let plan = plan("law-chain", 40);
    let r = run("r-chain");
    let auth = live_auth(&db, &r, &plan);
    cut(&db, &auth, &plan);
    leg_b(&db, &auth, &plan).unwrap();
    write_verify(&db, &auth, &plan).unwrap();
    let mut c = exec(&db);
    for i in 0..3 {
        record_sg3(
            &mut c,
            &Sg3Record::new(
                run(&format!("r-x{i}")),
                None,
                format!("failure {i}"),
                None,
                None,
            ),
            ACTOR,
        )
        .unwrap();
    }
    db
}

fn first_broken(db: &cutter_pg::testing::TestDb) -> (LedgerTable, i64, String) {
    let report = verify_ledger(&mut db.verify_config().connect().unwrap()).unwrap();
    let b = report.first_broken().expect("a broken link").clone();
    // ensure_intact turns it into an error naming table and id.
    let err = report.ensure_intact().unwrap_err();
    assert!(matches!(err, Error::LedgerTampered { id, .. } if id == b.id));
    (b.table, b.id, b.what)
}

#[test]
fn an_untouched_ledger_verifies() {
    let db = populated();
    let report = verify_ledger(&mut db.verify_config().connect().unwrap()).unwrap();
    assert!(report.is_intact(), "{report}");
    let rows: Vec<u64> = report.tables.iter().map(|t| t.rows).collect();
    assert_eq!(rows, vec![1, 40, 1, 5, 1, 2]);
    // Each head is the row_hash of the table's last row.
    let mut admin = db.admin();
    for t in &report.tables {
        let (id, hash) = t.head.clone().expect("head");
        let stored: String = admin
            .query_one(
                &format!(
                    "SELECT row_hash FROM cutter_governance.{} WHERE id = $1",
                    t.table.name()
                ),
                &[&id],
            )
            .unwrap()
            .get(0);
        assert_eq!(stored, hash);
    }
    // The first row of each chain starts at the genesis hash; prev_hash links rows.
    let broken_links: i64 = admin
        .query_one(
            "SELECT count(*) FROM (SELECT prev_hash, lag(row_hash, 1, repeat('0', 64)) OVER (ORDER BY id) AS expected \
             FROM cutter_governance.cut_change_set_affected_row) x WHERE prev_hash <> expected",
            &[],
        )
        .unwrap()
        .get(0);
    assert_eq!(broken_links, 0);
}

#[test]
fn a_modified_row_is_found_by_table_and_id() {
    let db = populated();
    let mut admin = db.admin();
    let id: i64 = admin
        .query_one(
            "SELECT id FROM cutter_governance.cut_change_set_affected_row ORDER BY id OFFSET 17 LIMIT 1",
            &[],
        )
        .unwrap()
        .get(0);
    // The owner changes a unit's recorded body digest.
    admin
        .execute(
            "UPDATE cutter_governance.cut_change_set_affected_row SET body_sha256 = repeat('a', 64) WHERE id = $1",
            &[&id],
        )
        .unwrap();
    let (table, at, what) = first_broken(&db);
    assert_eq!(table, LedgerTable::CutChangeSetAffectedRow);
    assert_eq!(at, id);
    assert!(what.contains("modified"), "{what}");
}

#[test]
fn a_deleted_row_breaks_the_link_of_the_next_one() {
    let db = populated();
    let mut admin = db.admin();
    let ids: Vec<i64> = admin
        .query(
            "SELECT id FROM cutter_governance.review_decision ORDER BY id",
            &[],
        )
        .unwrap()
        .iter()
        .map(|r| r.get(0))
        .collect();
    admin
        .execute(
            "DELETE FROM cutter_governance.review_decision WHERE id = $1",
            &[&ids[1]],
        )
        .unwrap();
    let (table, at, what) = first_broken(&db);
    assert_eq!(table, LedgerTable::ReviewDecision);
    assert_eq!(at, ids[2]);
    assert!(what.contains("deleted"), "{what}");
}

#[test]
fn a_changed_json_payload_and_a_renumbered_row_are_found() {
    let db = populated();
    let mut admin = db.admin();
    // A key added to the manifest's JSON (same meaning elsewhere, different content).
    admin
        .batch_execute(
            "UPDATE cutter_governance.manifest_envelope SET manifest = manifest || '{\"note\": \"x\"}'",
        )
        .unwrap();
    let (table, _, what) = first_broken(&db);
    assert_eq!(table, LedgerTable::ManifestEnvelope);
    assert!(what.contains("modified"), "{what}");
    // Rewriting the jsonb with the same value (re-cast) is not a change.
    admin
        .batch_execute(
            "UPDATE cutter_governance.manifest_envelope SET manifest = manifest - 'note'; \
             UPDATE cutter_governance.manifest_envelope SET manifest = (manifest::text)::jsonb;",
        )
        .unwrap();
    let report = verify_ledger(&mut admin).unwrap();
    assert!(report.is_intact(), "{report}");
    // A re-numbered signature row: its hash covers its id.
    admin
        .batch_execute(
            "UPDATE cutter_governance.dot_pair_signature SET id = id + 1000 \
             WHERE id = (SELECT max(id) FROM cutter_governance.dot_pair_signature)",
        )
        .unwrap();
    let (table, at, what) = first_broken(&db);
    assert_eq!(table, LedgerTable::DotPairSignature);
    assert!(at > 1000, "{at}");
    assert!(what.contains("modified"), "{what}");
}

#[test]
fn a_row_inserted_without_the_writers_is_found() {
    let db = populated();
    db.admin()
        .batch_execute(
            "INSERT INTO cutter_governance.verify_result (run_id, change_set_id, checked, matched, mismatched, verdict) \
             VALUES ('r-forged', 'cs-r-forged', 1, 1, 0, 'match')",
        )
        .unwrap();
    let (table, _, what) = first_broken(&db);
    assert_eq!(table, LedgerTable::VerifyResult);
    assert!(what.contains("prev_hash is missing"), "{what}");
}

#[test]
fn the_ledger_is_append_only_for_cutter_exec() {
    let db = populated();
    let mut c = exec(&db);
    for t in LEDGER {
        for sql in [
            format!("UPDATE {t} SET prev_hash = prev_hash"),
            format!("DELETE FROM {t}"),
            format!("TRUNCATE {t}"),
        ] {
            let err = c.batch_execute(&sql).expect_err(&sql);
            assert_eq!(err.code().map(|c| c.code()), Some("42501"), "{sql}: {err}");
        }
    }
    assert_eq!(ledger_counts(&db), vec![1, 40, 1, 5, 1, 2]);
    // Even if UPDATE and DELETE were granted by mistake, the trigger refuses them for
    // anyone but the owner.
    db.admin()
        .batch_execute(
            "GRANT UPDATE, DELETE, TRUNCATE ON cutter_governance.review_decision TO cutter_exec",
        )
        .unwrap();
    for sql in [
        "UPDATE cutter_governance.review_decision SET actor = 'mallory'",
        "DELETE FROM cutter_governance.review_decision",
        "TRUNCATE cutter_governance.review_decision",
    ] {
        let err = c.batch_execute(sql).expect_err(sql);
        let db_err = err.as_db_error().expect("server error");
        assert_eq!(db_err.code().code(), "42501");
        assert!(
            db_err.message().contains("append-only ledger"),
            "{sql}: {err}"
        );
    }
    assert_eq!(decisions(&db), 3);
    let report = verify_ledger(&mut c).unwrap();
    assert!(report.is_intact(), "{report}");
}

#[test]
fn concurrent_writers_never_fork_a_chain() {
    let db = db();
    let threads: Vec<_> = (0..6)
        .map(|t| {
            let config = db.exec_config();
            std::thread::spawn(move || {
                let mut c = config.connect().unwrap();
                for i in 0..15 {
                    record_sg3(
                        &mut c,
                        &Sg3Record::new(run(&format!("r-{t}-{i}")), None, "concurrent", None, None),
                        ACTOR,
                    )
                    .unwrap();
                }
            })
        })
        .collect();
    for t in threads {
        t.join().unwrap();
    }
    let report = verify_ledger(&mut db.admin()).unwrap();
    assert!(report.is_intact(), "{report}");
    assert_eq!(report.tables[3].rows, 90);
}

/// The reference schema carries the ledger's part (V2); installing again changes
/// nothing; check_installed names what is missing or disabled, and so do preflight and
/// `db validate` (a drifted object is reported, never silently recreated).
#[test]
fn install_is_idempotent_and_checked() {
    let db = cutter_pg::testing::TestDb::new();
    let mut admin = db.admin();
    check_installed(&mut admin).unwrap();
    check_installed(&mut exec(&db)).unwrap();
    let objects = |c: &mut postgres::Client| -> (i64, i64) {
        let r = c
            .query_one(
                "SELECT (SELECT count(*) FROM pg_trigger WHERE tgname = 'trg_ledger_append_only'), \
                        (SELECT count(*) FROM pg_index i JOIN pg_class c ON c.oid = i.indexrelid \
                          WHERE c.relnamespace = 'cutter_governance'::regnamespace)",
                &[],
            )
            .unwrap();
        (r.get(0), r.get(1))
    };
    let before = objects(&mut admin);
    // Six ledger tables, the genesis anchors (V3), and since V7 the lifecycle log and
    // the surface DDL audit.
    assert_eq!(before.0, 9);
    install(&mut admin).unwrap();
    install(&mut admin).unwrap();
    check_installed(&mut admin).unwrap();
    assert_eq!(
        objects(&mut admin),
        before,
        "a second install creates nothing"
    );

    // What is missing is named, as the owner drops or revokes it.
    admin
        .batch_execute(
            "DROP INDEX cutter_governance.review_decision_chain; \
             REVOKE USAGE ON SEQUENCE cutter_governance.verify_result_id_seq FROM cutter_exec; \
             ALTER TABLE cutter_governance.manifest_envelope DISABLE TRIGGER trg_ledger_append_only",
        )
        .unwrap();
    for c in [&mut admin, &mut exec(&db)] {
        let err = check_installed(c).unwrap_err();
        assert!(matches!(err, Error::NotInstalled { .. }), "{err:?}");
        let text = err.to_string();
        for needle in [
            "index review_decision_chain",
            "cutter_exec USAGE on the id sequence of verify_result",
            "enabled trigger trg_ledger_append_only on manifest_envelope",
            "cutter db status",
        ] {
            assert!(text.contains(needle), "{needle} not in {text}");
        }
        for intact in [
            "cut_change_set_chain",
            "sequence of review_decision",
            "trigger trg_ledger_append_only on review_decision",
        ] {
            assert!(!text.contains(intact), "{intact} named in {text}");
        }
    }
    let findings = cutter_pg::migrate::validate(&mut admin).unwrap().join("\n");
    for needle in [
        "index cutter_governance.review_decision_chain on cutter_governance.review_decision: missing",
        "privilege USAGE on sequence cutter_governance.verify_result_id_seq for cutter_exec: missing",
        "trigger trg_ledger_append_only on cutter_governance.manifest_envelope: tgenabled = 'D'",
    ] {
        assert!(findings.contains(needle), "{needle} not in {findings}");
    }
    admin
        .batch_execute(
            "CREATE UNIQUE INDEX review_decision_chain ON cutter_governance.review_decision (prev_hash COLLATE \"C\"); \
             GRANT USAGE ON SEQUENCE cutter_governance.verify_result_id_seq TO cutter_exec; \
             ALTER TABLE cutter_governance.manifest_envelope ENABLE TRIGGER trg_ledger_append_only",
        )
        .unwrap();
    check_installed(&mut admin).unwrap();
    assert_eq!(objects(&mut admin), before);
    assert!(cutter_pg::migrate::validate(&mut admin).unwrap().is_empty());
}

#[test]
fn hostile_text_round_trips_through_the_chain() {
    let db = db();
    let rows = vec![
        cutter_pg::fixtures::hostile_row(),
        cutter_pg::fixtures::row("law-hostile", 2),
    ];
    let plan = cutter_core::CutPlan::new(
        cutter_core::DocumentId::new("law-hostile").unwrap(),
        cutter_core::SourceVersionId::new("v1").unwrap(),
        rows,
    )
    .validate(&cutter_pg::fixtures::vocabularies())
    .unwrap();
    let r = run("r-hostile");
    let auth = live_auth(&db, &r, &plan);
    cut(&db, &auth, &plan);
    leg_b(&db, &auth, &plan).unwrap();
    write_verify(&db, &auth, &plan).unwrap();
    let reason = "line one\nline\ttwo \\ backslash \\N \\. \"quoted\" 'single' $$ \u{202E}";
    let id = record_sg3(
        &mut exec(&db),
        &Sg3Record::new(r.clone(), None, reason, None, None),
        "actor with 'quotes' and \\backslash",
    )
    .unwrap();
    let mut admin = db.admin();
    let stored: String = admin
        .query_one(
            "SELECT payload ->> 'reason' FROM cutter_governance.review_decision WHERE id = $1",
            &[&id],
        )
        .unwrap()
        .get(0);
    assert_eq!(stored, reason);
    let addr: String = admin
        .query_one(
            "SELECT canonical_address FROM cutter_governance.cut_change_set_affected_row ORDER BY id LIMIT 1",
            &[],
        )
        .unwrap()
        .get(0);
    assert_eq!(addr, cutter_pg::fixtures::HOSTILE_ADDRESS);
    let report = verify_ledger(&mut admin).unwrap();
    assert!(report.is_intact(), "{report}");
}

#[test]
fn the_ledger_writers_run_in_the_rollback_only_proof_with_net_zero_effect() {
    let db = db();
    let plan = plan("law-proof", 25);
    register(&db);
    let mut target = db.target();
    let before = target.snapshot().unwrap();
    {
        let mut ro = target.rollback_only(&run("r-proof")).unwrap();
        // Without recorded approvals the database refuses the proof's writes too.
        let refused = ro.step(|s| s.cut_leg_a(&plan, &mut |_| {}));
        assert!(
            refused
                .as_ref()
                .is_err_and(|e| e.to_string().contains("no live-run authorization")),
            "{refused:?}"
        );
        assert_eq!(
            cutter_governance::prove_authorize(&mut ro, plan.digest())
                .unwrap()
                .len(),
            2
        );
        ro.cut_leg_a(&plan, &mut |_| {}).unwrap();
        let legb = cutter_governance::prove_leg_b_record(&mut ro, &plan, ACTOR).unwrap();
        assert_eq!(legb.units, 25);
        let v = cutter_governance::prove_write_verify(&mut ro, &plan, ACTOR).unwrap();
        assert_eq!(v.facts.matched, 25);
        assert_eq!(v.read_as, "cutter_exec");
        let report = verify_ledger(ro.client()).unwrap();
        assert!(report.is_intact(), "{report}");
        // The registrations, the proof's two signatures, then leg_b's and write_verify's.
        assert_eq!(report.rows(), 2 + 2 + 1 + 25 + 1 + 1);
        ro.rollback().unwrap();
    }
    assert_eq!(ledger_counts(&db), vec![0, 0, 0, 2, 0, 0]);
    let after = target.snapshot().unwrap();
    assert!(before.diff(&after).is_empty(), "{:?}", before.diff(&after));
}

/// An adopted database (the earlier tool's, upgraded by the migration runner): the rows
/// written before cutter are covered by one genesis anchor per chain, the rows cutter
/// appends chain from it, and a legacy row changed afterwards, or an edited anchor, is
/// found and named.
#[test]
fn an_adopted_ledger_is_covered_from_its_genesis_anchors() {
    let db = cutter_pg::testing::TestDb::empty();
    let mut admin = db.admin();
    cutter_pg::fixtures::install_legacy(&mut admin).unwrap();
    // Before adoption cutter refuses to append to a chain it cannot anchor.
    let e = record_sg3(
        &mut admin,
        &Sg3Record::new(run("r-early"), None, "too early", None, None),
        ACTOR,
    )
    .unwrap_err();
    assert!(e.to_string().contains("row_hash"), "{e}");
    cutter_pg::migrate::upgrade(&mut admin, &Default::default(), &mut |_| {}).unwrap();
    let verify = |db: &cutter_pg::testing::TestDb| {
        verify_ledger(&mut db.verify_config().connect().unwrap()).unwrap()
    };
    let report = verify(&db);
    assert!(report.is_intact(), "{report}");
    for (t, (name, n)) in report
        .tables
        .iter()
        .zip(cutter_pg::fixtures::LEGACY_LEDGER_ROWS)
    {
        assert_eq!(t.table.name(), name);
        assert_eq!(t.rows as i64, n);
        let a = t.anchor.as_ref().expect("an anchor");
        assert_eq!((a.row_count, a.through_id), (n, n));
    }
    assert!(
        report.to_string().contains("written before cutter"),
        "{report}"
    );

    // cutter's rows chain from the anchors.
    let plan = plan("law-adopted", 20);
    let r = run("r-adopted");
    let auth = live_auth(&db, &r, &plan);
    cut(&db, &auth, &plan);
    leg_b(&db, &auth, &plan).unwrap();
    write_verify(&db, &auth, &plan).unwrap();
    let report = verify(&db);
    assert!(report.is_intact(), "{report}");
    assert_eq!(report.tables[1].rows, 940 + 20);
    let (anchor_hash, first_prev): (String, String) = {
        let r = admin
            .query_one(
                "SELECT (SELECT anchor_hash FROM cutter_governance.ledger_anchor WHERE ledger_table = 'cut_change_set'), \
                        (SELECT prev_hash FROM cutter_governance.cut_change_set WHERE id = 13)",
                &[],
            )
            .unwrap();
        (r.get(0), r.get(1))
    };
    assert_eq!(first_prev, anchor_hash);

    // A legacy row changed by the owner after adoption is found, at the anchor.
    admin
        .batch_execute(
            "UPDATE cutter_governance.review_decision SET actor = 'someone else' WHERE id = 7",
        )
        .unwrap();
    let (table, id, what) = first_broken(&db);
    assert_eq!((table, id), (LedgerTable::ReviewDecision, 48));
    assert!(
        what.contains("no longer match their genesis anchor"),
        "{what}"
    );
    admin
        .batch_execute(
            "UPDATE cutter_governance.review_decision SET actor = 'gpt-sovereign' WHERE id = 7",
        )
        .unwrap();
    assert!(verify(&db).is_intact());
    // So is an anchor edited to match a forged history.
    admin
        .batch_execute(
            "UPDATE cutter_governance.ledger_anchor SET row_count = 11 WHERE ledger_table = 'verify_result'",
        )
        .unwrap();
    let (table, id, what) = first_broken(&db);
    assert_eq!((table, id), (LedgerTable::VerifyResult, 12));
    assert!(what.contains("anchor_hash"), "{what}");
}
