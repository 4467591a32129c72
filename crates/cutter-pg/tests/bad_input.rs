//! Bad input: each case gets an error naming the object or the plan row, and the phase
//! leaves zero rows (checked by counting).

use std::time::Duration;

use cutter_core::{CutPlan, DocumentId, Phase, SourceVersionId};
use cutter_pg::fixtures;
use cutter_pg::testing::TestDb;
use cutter_pg::{BatchLimits, Error, Password, Target};

fn baseline_untouched(db: &TestDb) {
    assert_eq!(db.count("public.information_unit"), 158);
    assert_eq!(db.count("public.unit_version"), 165);
    assert_eq!(db.count("public.iu_lifecycle_log"), 60);
}

#[test]
fn a_target_without_the_schema_is_named_object_by_object() {
    let db = TestDb::empty();
    let mut t = db.target();
    let report = t.preflight().unwrap();
    let text = report.to_string();
    let version_line = format!(
        "cutter_governance.schema_version: version none, reference {}",
        cutter_pg::schema::REFERENCE_VERSION
    );
    for needle in [
        "schema vocab: missing",
        "schema cutter_governance: missing",
        "table public.information_unit: missing",
        "table cutter_governance.verify_result: missing",
        "function public.fn_iu_create(text,text,text,text,text,text,text,text,text,text,text): missing",
        "trigger trg_iu_enacted_immut on public.information_unit: missing",
        version_line.as_str(),
    ] {
        assert!(text.contains(needle), "{needle} not in\n{text}");
    }
    let plan = fixtures::scale_plan("noschema-doc", 3).unwrap();
    let auth = db.authorization("r-noschema", plan.digest());
    let e = t.cut_leg_a(&auth, &plan, &mut |_| {}).unwrap_err();
    let msg = e.to_string();
    assert!(
        matches!(
            e,
            Error::UnsafeTarget {
                phase: Phase::CutLegA,
                ..
            }
        ),
        "{msg}"
    );
    for needle in [
        "trigger trg_iu_enacted_immut on public.information_unit is missing",
        "function public.fn_iu_create_batch(",
        "table public.information_unit is missing",
    ] {
        assert!(msg.contains(needle), "{needle} not in {msg}");
    }
    // Nothing was created.
    let mut c = db.admin();
    let n: i64 = c
        .query_one(
            "SELECT count(*) FROM pg_class WHERE relname = 'information_unit'",
            &[],
        )
        .unwrap()
        .get(0);
    assert_eq!(n, 0);
}

#[test]
fn a_disabled_trigger_stops_every_phase() {
    let db = TestDb::new();
    db.admin()
        .batch_execute("ALTER TABLE public.unit_version DISABLE TRIGGER trg_uv_enacted_immut")
        .unwrap();
    let mut t = db.target();
    let report = t.preflight().unwrap();
    assert!(
        report.to_string().contains(
            "trigger trg_uv_enacted_immut on public.unit_version: tgenabled = 'D', reference 'O'"
        ),
        "{report}"
    );
    let plan = fixtures::scale_plan("trigger-doc", 3).unwrap();
    let auth = db.authorization("r-trigger", plan.digest());
    let e = t.cut_leg_a(&auth, &plan, &mut |_| {}).unwrap_err();
    assert!(
        e.to_string().contains(
            "trigger trg_uv_enacted_immut on public.unit_version is not enabled (tgenabled = 'D'"
        ),
        "{e}"
    );
    let e = t.phase_transaction(&auth, Phase::LegBRecord).unwrap_err();
    assert!(matches!(e, Error::UnsafeTarget { .. }), "{e}");
    baseline_untouched(&db);
    assert!(!t.snapshot().unwrap().immutability_triggers_enabled());
}

#[test]
fn a_missing_function_is_named() {
    let db = TestDb::new();
    db.admin()
        .batch_execute("DROP FUNCTION public.fn_iu_enact(bigint, text, text)")
        .unwrap();
    let mut t = db.target();
    let report = t.preflight().unwrap();
    assert!(
        report
            .to_string()
            .contains("function public.fn_iu_enact(bigint,text,text): missing"),
        "{report}"
    );
    let plan = fixtures::scale_plan("fn-doc", 3).unwrap();
    let auth = db.authorization("r-fn", plan.digest());
    let e = t.cut_leg_a(&auth, &plan, &mut |_| {}).unwrap_err();
    assert!(
        e.to_string()
            .contains("function public.fn_iu_enact(bigint,text,text) is missing"),
        "{e}"
    );
    baseline_untouched(&db);
    assert_eq!(
        t.snapshot().unwrap().functions.get("fn_iu_enact"),
        Some(&false)
    );
}

#[test]
fn a_wrong_password_is_refused_and_never_echoed() {
    let db = TestDb::new();
    let wrong = "wrong-password-Zq81";
    let config = db
        .exec_config()
        .with_user("cutter_exec", Some(Password::new(wrong)));
    let e = Target::connect(&config).unwrap_err();
    let text = e.to_string();
    assert!(text.contains("cutter_exec"), "{text}");
    assert!(
        text.contains("28P01") || text.contains("password authentication failed"),
        "{text}"
    );
    assert!(!text.contains(wrong), "{text}");
    assert!(!format!("{e:?}").contains(wrong));
    assert!(!format!("{config:?}").contains(wrong));
}

#[test]
fn an_unreachable_host_is_named() {
    let port = {
        let l = std::net::TcpListener::bind(("127.0.0.1", 0)).unwrap();
        l.local_addr().unwrap().port()
    }; // closed again: nothing listens there
    let db = TestDb::new();
    let config = db
        .exec_config()
        .with_port(port)
        .with_connect_timeout(Some(Duration::from_secs(2)));
    let e = Target::connect(&config).unwrap_err();
    let text = e.to_string();
    assert!(
        text.contains(&format!("127.0.0.1:{port}")) || text.contains(&port.to_string()),
        "{text}"
    );
}

#[test]
fn a_vocabulary_value_that_does_not_resolve_names_the_row() {
    let db = TestDb::new();
    let mut t = db.target();
    t.set_batch_limits(BatchLimits {
        rows: 100,
        bytes: usize::MAX,
    });
    // The plan was validated against a vocabulary the target does not have.
    let mut vocab = fixtures::vocabularies();
    vocab.section_type.insert("annex".into());
    let mut rows: Vec<_> = fixtures::scale_rows("vocab-doc", 250).collect();
    rows[172].section_type = Some("annex".into());
    let plan = CutPlan::new(
        DocumentId::new("vocab-doc").unwrap(),
        SourceVersionId::new("v1").unwrap(),
        rows,
    )
    .validate(&vocab)
    .unwrap();
    let auth = db.authorization("r-vocab", plan.digest());
    let e = t.cut_leg_a(&auth, &plan, &mut |_| {}).unwrap_err();
    match &e {
        Error::PlanRow {
            row,
            total,
            canonical_address,
            server,
            ..
        } => {
            assert_eq!(*row, 173);
            assert_eq!(*total, 250);
            assert_eq!(canonical_address, "vocab-doc/dieu-173");
            assert_eq!(server.sqlstate.as_deref(), Some("23503"));
            assert!(server
                .message
                .contains("section_type: 'annex' does not resolve in vocab.section_type"));
        }
        other => panic!("{other}"),
    }
    assert_eq!(e.sqlstate(), Some("23503"));
    assert!(
        e.to_string()
            .contains("plan row 173 of 250 (canonical_address \"vocab-doc/dieu-173\")"),
        "{e}"
    );
    baseline_untouched(&db);
}

#[test]
fn a_canonical_address_already_in_the_table_names_the_row() {
    let db = TestDb::new();
    let mut t = db.target();
    let mut rows: Vec<_> = fixtures::scale_rows("dup-doc", 40).collect();
    rows[29].canonical_address = "vn-constitution-2013/dieu-7".into();
    let plan = CutPlan::new(
        DocumentId::new("dup-doc").unwrap(),
        SourceVersionId::new("v1").unwrap(),
        rows,
    )
    .validate(&fixtures::vocabularies())
    .unwrap();
    let auth = db.authorization("r-dup", plan.digest());
    let e = t.cut_leg_a(&auth, &plan, &mut |_| {}).unwrap_err();
    match &e {
        Error::PlanRow {
            row,
            canonical_address,
            server,
            ..
        } => {
            assert_eq!(*row, 30);
            assert_eq!(canonical_address, "vn-constitution-2013/dieu-7");
            assert_eq!(server.sqlstate.as_deref(), Some("23505"));
            assert!(
                server
                    .message
                    .contains("already exists as information_unit id 7"),
                "{}",
                server.message
            );
        }
        other => panic!("{other}"),
    }
    baseline_untouched(&db);
}

#[test]
fn a_failure_on_row_k_of_n_rolls_back_every_batch_and_names_row_k() {
    let db = TestDb::new();
    // A target-side rule the plan cannot know about: it fails exactly one row.
    db.admin()
        .batch_execute(
            "CREATE FUNCTION public.fn_test_boom() RETURNS trigger LANGUAGE plpgsql AS $$ \
             BEGIN IF NEW.canonical_address = 'k-doc/dieu-1717' THEN \
               RAISE EXCEPTION 'target rule rejects this unit' USING ERRCODE = 'P0001'; END IF; \
             RETURN NEW; END $$; \
             CREATE TRIGGER trg_test_boom BEFORE INSERT ON public.information_unit \
               FOR EACH ROW EXECUTE FUNCTION public.fn_test_boom();",
        )
        .unwrap();
    let mut t = db.target();
    t.set_batch_limits(BatchLimits {
        rows: 500,
        bytes: usize::MAX,
    });
    let plan = fixtures::scale_plan("k-doc", 2000).unwrap();
    let auth = db.authorization("r-k", plan.digest());
    let mut progress = Vec::new();
    let e = t
        .cut_leg_a(&auth, &plan, &mut |n| progress.push(n))
        .unwrap_err();
    assert_eq!(
        progress,
        [500, 1000, 1500],
        "three batches went through before the failure"
    );
    match &e {
        Error::PlanRow {
            row,
            total,
            canonical_address,
            server,
            ..
        } => {
            assert_eq!((*row, *total), (1717, 2000));
            assert_eq!(canonical_address, "k-doc/dieu-1717");
            assert_eq!(server.sqlstate.as_deref(), Some("P0001"));
            assert!(server.message.contains("target rule rejects this unit"));
        }
        other => panic!("{other}"),
    }
    assert!(
        e.to_string().contains("rolled back and wrote nothing"),
        "{e}"
    );
    baseline_untouched(&db);
    // The lock is still held by this run: a retry after fixing the target succeeds.
    db.admin()
        .batch_execute("DROP TRIGGER trg_test_boom ON public.information_unit")
        .unwrap();
    t.cut_leg_a(&auth, &plan, &mut |_| {}).unwrap();
    assert_eq!(db.count("public.information_unit"), 2158);
}

#[test]
fn statement_timeout_and_lock_timeout_are_honoured() {
    let db = TestDb::new();
    let plan = fixtures::scale_plan("timeout-doc", 20).unwrap();
    let auth = db.authorization("r-timeout", plan.digest());

    // lock_timeout: another session holds a conflicting lock on the table.
    let mut blocker = db.admin();
    let mut tx = blocker.transaction().unwrap();
    tx.batch_execute("LOCK TABLE public.information_unit IN ACCESS EXCLUSIVE MODE")
        .unwrap();
    let config = db
        .exec_config()
        .with_lock_timeout(Some(Duration::from_millis(200)));
    let mut t = Target::connect(&config).unwrap();
    let e = t.cut_leg_a(&auth, &plan, &mut |_| {}).unwrap_err();
    assert_eq!(e.sqlstate(), Some("55P03"), "{e}");
    tx.rollback().unwrap();
    drop(t);

    // statement_timeout: a statement that takes longer is cancelled.
    let config = db
        .exec_config()
        .with_statement_timeout(Some(Duration::from_millis(50)));
    let mut t = Target::connect(&config).unwrap();
    let e = t
        .read_only(|tx| {
            tx.batch_execute("SELECT pg_sleep(1)")
                .map_err(|e| Error::db("sleep", &e, ""))
        })
        .unwrap_err();
    assert_eq!(e.sqlstate(), Some("57014"), "{e}");
    baseline_untouched(&db);
}
