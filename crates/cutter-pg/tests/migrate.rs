//! The migration runner against real databases: adopting the earlier tool's production
//! shape, idempotence, changed checksums, the owner rule, and lock timeouts that leave
//! production working.

use std::time::{Duration, Instant};

use cutter_pg::fixtures::{install_legacy, LEGACY_LEDGER_ROWS};
use cutter_pg::migrate::{self, IndexState, Shape, Step, UpgradeOptions};
use cutter_pg::schema::{self, ADOPTION, MIGRATIONS, REFERENCE_VERSION};
use cutter_pg::testing::TestDb;
use cutter_pg::Error;
use postgres::Client;

/// Count and digest of every table of the mutation surface over the columns the earlier
/// tool had (all but the hash chain's and the backup watermark).
fn surface_digests(c: &mut Client) -> Vec<(String, i64, String)> {
    // The approver registry is cutter's (V5): the earlier tool had none. V6 adds
    // nullable columns to unit_version, NULL on every existing row: nulls are stripped,
    // so the digest names what a row holds, not how many columns its table has.
    cutter_core::mutation_surface()
        .into_iter()
        .filter(|t| t.name() != "approver")
        .map(|t| {
            let t = cutter_pg::quote_table(&t);
            let r = c
                .query_one(
                    &format!(
                        "SELECT count(*), coalesce(md5(string_agg(jsonb_strip_nulls(to_jsonb(x) - 'prev_hash' - 'row_hash' - 'cutter_xid')::text, '|' ORDER BY x.id)), '') FROM {t} x"
                    ),
                    &[],
                )
                .unwrap();
            (t.to_string(), r.get(0), r.get(1))
        })
        .collect()
}

fn legacy_db() -> TestDb {
    let db = TestDb::empty();
    install_legacy(&mut db.admin()).unwrap();
    db
}

fn upgrade(c: &mut Client) -> cutter_pg::Result<migrate::UpgradeReport> {
    migrate::upgrade(c, &UpgradeOptions::default(), &mut |_| {})
}

fn names(shape: &Shape) -> Vec<String> {
    match shape {
        Shape::Versioned { applied } => applied.iter().map(|a| a.name.clone()).collect(),
        other => panic!("not versioned: {other:?}"),
    }
}

#[test]
fn the_earlier_tools_database_is_adopted_without_losing_a_row() {
    let db = legacy_db();
    let mut c = db.admin();
    assert_eq!(migrate::detect(&mut c).unwrap(), Shape::Legacy);
    for (table, rows) in LEGACY_LEDGER_ROWS {
        assert_eq!(db.count(&format!("cutter_governance.{table}")), rows);
    }
    // Before: preflight names what the earlier tool lacks, among them the extra grant.
    let before_report = db.admin_target().preflight().unwrap().to_string();
    for needle in [
        "cutter_governance.schema_version: version none",
        "function public.fn_iu_create_batch(",
        "privilege UPDATE on cutter_governance.review_decision for cutter_exec: granted, the reference does not grant it",
        "privilege SELECT on cutter_governance.cut_change_set for cutter_verify: missing",
        "index public.information_unit_change_set on public.information_unit: missing",
    ] {
        assert!(before_report.contains(needle), "{needle} not in\n{before_report}");
    }
    let before = surface_digests(&mut c);
    let plan = migrate::plan(&mut c).unwrap();
    let steps: Vec<String> = plan.steps.iter().map(|s| s.to_string()).collect();
    assert_eq!(steps[0], "A1__adopt_legacy.sql");
    assert!(steps
        .iter()
        .any(|s| s.contains("build index public.iu_lifecycle_log_unit CONCURRENTLY")));
    // V6's constraint is added NOT VALID in its transaction and validated after it, once
    // its index is built, before V7 begins.
    let at = |name: &str| {
        steps
            .iter()
            .position(|s| s == name)
            .unwrap_or_else(|| panic!("no step {name:?} in {steps:#?}"))
    };
    let validate = at("validate constraint unit_version_amendment_shape on public.unit_version (declared by V6__amendments.sql)");
    assert!(at("V6__amendments.sql") < validate);
    assert!(validate < at("V7__incremental_backup.sql"));

    let report = upgrade(&mut c).unwrap();
    assert_eq!(report.from, Shape::Legacy);
    assert_eq!(report.to, REFERENCE_VERSION);
    assert_eq!(report.done.len(), plan.steps.len());

    // After: the versions are recorded under their one name, with who applied them.
    let shape = migrate::detect(&mut c).unwrap();
    assert_eq!(
        names(&shape),
        [
            "A1__adopt_legacy.sql",
            "V2__ledger.sql",
            "V3__history_and_anchors.sql",
            "V4__hold_guard.sql",
            "V5__approver_registry_and_gate.sql",
            "V6__amendments.sql",
            "V7__incremental_backup.sql",
            "V8__amendment_compensation.sql",
            "V9__set_based_enact.sql"
        ]
    );
    let Shape::Versioned { applied } = &shape else {
        unreachable!()
    };
    // Every version this upgrade applied names who applied it, also those recorded
    // before V3 added the column.
    for a in applied {
        assert_eq!(
            a.applied_by.as_deref(),
            Some(db.coordinates().superuser.as_str()),
            "{a:?}"
        );
    }
    // Nothing lost or rewritten, and every role sees a conforming database.
    assert_eq!(surface_digests(&mut c), before);
    for config in [db.exec_config(), db.verify_config(), db.admin_config()] {
        let report = cutter_pg::Target::connect(&config)
            .unwrap()
            .preflight()
            .unwrap();
        assert!(report.is_ok(), "{report}");
    }
    // One genesis entry per chain, over exactly the earlier rows.
    let anchors: Vec<(String, i64)> = c
        .query(
            "SELECT ledger_table, row_count FROM cutter_governance.ledger_anchor ORDER BY ledger_table",
            &[],
        )
        .unwrap()
        .iter()
        .map(|r| (r.get(0), r.get(1)))
        .collect();
    let mut want: Vec<(String, i64)> = LEGACY_LEDGER_ROWS
        .iter()
        .map(|(t, n)| (t.to_string(), *n))
        .collect();
    want.sort();
    assert_eq!(anchors, want);
    // Every function is the reference's own text.
    let fresh = TestDb::new();
    let defs = |c: &mut Client| -> Vec<(String, String)> {
        c.query(
            "SELECT p.oid::regprocedure::text, pg_get_functiondef(p.oid) FROM pg_proc p \
              WHERE p.pronamespace IN ('public'::regnamespace, 'cutter_governance'::regnamespace) ORDER BY 1",
            &[],
        )
        .unwrap()
        .iter()
        .map(|r| (r.get(0), r.get(1)))
        .collect()
    };
    assert_eq!(defs(&mut c), defs(&mut fresh.admin()));

    // A second upgrade does nothing.
    let again = upgrade(&mut c).unwrap();
    assert!(again.done.is_empty(), "{:?}", again.done);
    assert_eq!(surface_digests(&mut c), before);
}

#[test]
fn an_applied_migration_whose_text_changed_is_refused() {
    let db = TestDb::new();
    let mut c = db.admin();
    c.batch_execute(
        "UPDATE cutter_governance.schema_version SET sha256 = repeat('ab', 32) WHERE version = 2",
    )
    .unwrap();
    let e = upgrade(&mut c).unwrap_err();
    assert!(
        matches!(&e, Error::MigrationChanged(c) if c.version == 2),
        "{e}"
    );
    let text = e.to_string();
    assert!(
        text.contains("V2__ledger.sql") && text.contains(&"ab".repeat(32)),
        "{text}"
    );
    let findings = migrate::validate(&mut c).unwrap();
    assert!(
        findings
            .iter()
            .any(|f| f.starts_with("migration V2__ledger.sql (version 2): recorded sha256")),
        "{findings:?}"
    );
    // An intact database validates clean.
    assert_eq!(
        migrate::validate(&mut TestDb::new().admin()).unwrap(),
        Vec::<String>::new()
    );
}

#[test]
fn the_writer_and_the_verifier_cannot_upgrade() {
    let db = legacy_db();
    for config in [db.exec_config(), db.verify_config()] {
        let mut c = config.connect().unwrap();
        let e = upgrade(&mut c).unwrap_err();
        assert!(matches!(e, Error::NotOwner { .. }), "{e}");
        assert!(e.to_string().contains("--owner-url"), "{e}");
    }
    assert_eq!(migrate::detect(&mut db.admin()).unwrap(), Shape::Legacy);
}

#[test]
fn an_empty_database_is_installed_only_on_request() {
    let db = TestDb::empty();
    let mut c = db.admin();
    let e = upgrade(&mut c).unwrap_err().to_string();
    assert!(
        e.contains("the database is empty") && e.contains("cutter db install"),
        "{e}"
    );
    let options = UpgradeOptions {
        install: true,
        ..Default::default()
    };
    let r = migrate::upgrade(&mut c, &options, &mut |_| {}).unwrap();
    assert_eq!(r.to, REFERENCE_VERSION);
    assert_eq!(
        names(&migrate::detect(&mut c).unwrap()),
        MIGRATIONS.iter().map(|m| m.name).collect::<Vec<_>>()
    );
    // install refuses a database that is not empty.
    let e = migrate::upgrade(&mut c, &options, &mut |_| {})
        .unwrap_err()
        .to_string();
    assert!(e.contains("the database is not empty"), "{e}");
    assert!(ADOPTION.name.starts_with("A1__"));
    assert_eq!(
        schema::installed_version(&mut c).unwrap(),
        Some(REFERENCE_VERSION)
    );
}

/// A session with an open snapshot on information_unit (production reading) makes the
/// CONCURRENTLY build wait: it gives up at lock_timeout with a message naming the
/// lock, production's writes go on meanwhile, the index is left INVALID, and the next
/// upgrade rebuilds it.
#[test]
fn a_lock_held_on_information_unit_makes_the_upgrade_give_up_at_lock_timeout() {
    let db = legacy_db();
    let mut holder = db.admin();
    holder
        .batch_execute(
            "BEGIN ISOLATION LEVEL REPEATABLE READ; SELECT count(*) FROM public.information_unit",
        )
        .unwrap();
    let options = UpgradeOptions {
        lock_timeout: Duration::from_millis(800),
        install: false,
    };
    let coordinates_config = db.admin_config();
    let upgrader = std::thread::spawn(move || {
        let mut c = coordinates_config.connect().unwrap();
        let started = Instant::now();
        let r = migrate::upgrade(&mut c, &options, &mut |_| {});
        (r, started.elapsed())
    });
    // Production keeps writing while the upgrade waits.
    let mut production = db.admin();
    let mut longest = Duration::ZERO;
    while !upgrader.is_finished() {
        let t = Instant::now();
        production
            .batch_execute(
                "INSERT INTO public.iu_lifecycle_log (information_unit_id, from_status, to_status, actor, reason) \
                 VALUES (1, 'enacted', 'enacted', 'probe', 'production keeps working')",
            )
            .unwrap();
        longest = longest.max(t.elapsed());
        std::thread::sleep(Duration::from_millis(20));
    }
    let (result, took) = upgrader.join().unwrap();
    let e = result.unwrap_err();
    let text = e.to_string();
    assert!(text.contains("lock_timeout (800 ms)"), "{text}");
    assert!(text.contains("CONCURRENTLY"), "{text}");
    assert!(
        text.contains("applied before it (committed): A1__adopt_legacy.sql"),
        "{text}"
    );
    assert!(took < Duration::from_secs(20), "{took:?}");
    assert!(
        longest < Duration::from_millis(500),
        "a production write waited {longest:?}"
    );
    holder.batch_execute("ROLLBACK").unwrap();

    let mut c = db.admin();
    assert_eq!(
        migrate::index_state(&mut c, "public.information_unit_change_set").unwrap(),
        IndexState::Invalid
    );
    let plan = migrate::plan(&mut c).unwrap();
    assert!(
        matches!(&plan.steps[0], Step::Index { state: IndexState::Invalid, index, .. } if index.name == "public.information_unit_change_set"),
        "{:?}",
        plan.steps
    );
    assert!(db
        .admin_target()
        .preflight()
        .unwrap()
        .to_string()
        .contains("INVALID"));
    let report = upgrade(&mut c).unwrap();
    assert_eq!(report.to, REFERENCE_VERSION);
    assert!(report.done[0]
        .step
        .starts_with("rebuild INVALID index public.information_unit_change_set"));
    assert_eq!(
        migrate::index_state(&mut c, "public.information_unit_change_set").unwrap(),
        IndexState::Valid
    );
    assert!(db.admin_target().preflight().unwrap().is_ok());
}

/// A transactional step that cannot get its lock rolls back whole: nothing of A1 is
/// left, and the next upgrade applies it.
#[test]
fn a_transactional_step_that_times_out_leaves_nothing() {
    let db = legacy_db();
    let mut holder = db.admin();
    holder
        .batch_execute("BEGIN; SELECT count(*) FROM cutter_governance.review_decision")
        .unwrap();
    let options = UpgradeOptions {
        lock_timeout: Duration::from_millis(300),
        install: false,
    };
    let mut c = db.admin();
    let e = migrate::upgrade(&mut c, &options, &mut |_| {})
        .unwrap_err()
        .to_string();
    assert!(
        e.contains("db upgrade stopped at A1__adopt_legacy.sql"),
        "{e}"
    );
    assert!(
        e.contains("its transaction rolled back: nothing of it was applied"),
        "{e}"
    );
    assert!(
        e.contains("holds AccessShareLock on cutter_governance.review_decision"),
        "{e}"
    );
    assert!(e.contains("nothing was applied before it"), "{e}");
    assert_eq!(migrate::detect(&mut c).unwrap(), Shape::Legacy);
    holder.batch_execute("ROLLBACK").unwrap();
    assert_eq!(upgrade(&mut c).unwrap().to, REFERENCE_VERSION);
}

/// Two upgrades at once: the second is refused, naming the first.
#[test]
fn one_upgrade_at_a_time() {
    let db = legacy_db();
    let mut first = db.admin();
    first
        .query_one(
            "SELECT pg_advisory_lock($1)",
            &[&migrate::MIGRATION_LOCK_KEY],
        )
        .unwrap();
    let e = upgrade(&mut db.admin()).unwrap_err().to_string();
    assert!(e.contains("another upgrade holds it: pid"), "{e}");
    assert_eq!(migrate::detect(&mut db.admin()).unwrap(), Shape::Legacy);
}
