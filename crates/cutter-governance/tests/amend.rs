//! Amendment runs through the real phases on a real database: a first load, then the
//! consolidated text with articles reworded, added and removed. The current text
//! (`public.unit_current_text`) must equal the last document, exactly the changed rows
//! are written, and no row that existed before changes by a byte.

mod common;

use std::collections::BTreeMap;

use common::*;
use cutter_core::{ChangeSetId, CutPlan, CutPlanRow, DocumentId, SourceVersionId, ValidPlan};
use cutter_pg::testing::TestDb;
use cutter_pg::LegAReport;

const DOC: &str = "amend-doc";

fn rows(n: u64) -> Vec<CutPlanRow> {
    cutter_pg::fixtures::scale_rows(DOC, n).collect()
}

fn valid(version: &str, rows: Vec<CutPlanRow>) -> ValidPlan {
    CutPlan::new(
        DocumentId::new(DOC).unwrap(),
        SourceVersionId::new(version).unwrap(),
        rows,
    )
    .validate(&cutter_pg::schema::reference_vocabularies())
    .expect("valid plan")
}

fn all_rows(db: &TestDb) -> BTreeMap<(String, i64), String> {
    db.unit_rows()
}

/// The document's current text: (address, title, body) of every unit not repealed.
fn current(db: &TestDb) -> Vec<(String, String, String)> {
    db.current_text(DOC)
}

fn expected(plan: &ValidPlan) -> Vec<(String, String, String)> {
    cutter_pg::testing::plan_text(plan.rows())
}

/// Approvals for `plan` as run `r`, naming its diff as `plan diff` reads it.
fn approved(
    db: &TestDb,
    r: &cutter_core::RunId,
    plan: &ValidPlan,
) -> cutter_core::LiveAuthorization {
    let (diff, conflicts) = db
        .target()
        .read_only(|tx| cutter_pg::amend::plan_diff(tx, plan))
        .unwrap();
    assert!(conflicts.is_empty(), "{conflicts:?}");
    live_auth_diff(db, r, plan, diff.approval_digest())
}

/// A whole live run of `plan` as `run`: its diff read as `plan diff` reads it, approvals
/// naming it, then cut_leg_a, leg_b_record, write_verify and lifecycle_enact.
fn live_run(db: &TestDb, run_id: &str, plan: &ValidPlan) -> LegAReport {
    let r = run(run_id);
    let auth = approved(db, &r, plan);
    let report = db.target().cut_leg_a(&auth, plan, &mut |_| {}).unwrap();
    leg_b(db, &auth, plan).unwrap();
    write_verify(db, &auth, plan).unwrap();
    db.target()
        .lifecycle_enact(&auth, &ChangeSetId::for_run(&r))
        .unwrap();
    report
}

/// `plan` as run `run_id` up to cut_leg_a, approved with its diff: its drafts pending.
fn staged(db: &TestDb, run_id: &str, plan: &ValidPlan) -> cutter_core::LiveAuthorization {
    let (diff, _) = db
        .target()
        .read_only(|tx| cutter_pg::amend::plan_diff(tx, plan))
        .unwrap();
    let auth = live_auth_diff(db, &run(run_id), plan, diff.approval_digest());
    db.target().cut_leg_a(&auth, plan, &mut |_| {}).unwrap();
    auth
}

/// Reads rows back from memory, as a plan file's picker reads them from the file; notes
/// which rows were asked for, and hands back `tampered` instead of its row.
struct VecPicker {
    rows: Vec<CutPlanRow>,
    asked: std::sync::Arc<std::sync::Mutex<Vec<u64>>>,
    tampered: Option<(u64, CutPlanRow)>,
}

impl cutter_pg::RowPicker for VecPicker {
    fn pick(&self, rows: &[u64]) -> Result<Vec<CutPlanRow>, String> {
        self.asked.lock().unwrap().extend_from_slice(rows);
        Ok(rows
            .iter()
            .map(|&n| match &self.tampered {
                Some((t, row)) if *t == n => row.clone(),
                _ => self.rows[n as usize - 1].clone(),
            })
            .collect())
    }
}

type Picked = cutter_pg::StreamedPlan<Box<dyn Fn() -> std::vec::IntoIter<CutPlanRow>>>;

/// `plan` as a streamed plan that reads rows back through a [`VecPicker`], as a run's
/// plan file does; the rows it was asked for are noted in the returned list.
fn picked(
    plan: &ValidPlan,
    tampered: Option<(u64, CutPlanRow)>,
) -> (Picked, std::sync::Arc<std::sync::Mutex<Vec<u64>>>) {
    let rows = plan.rows().to_vec();
    let source_rows = rows.clone();
    let source: Box<dyn Fn() -> std::vec::IntoIter<CutPlanRow>> =
        Box::new(move || source_rows.clone().into_iter());
    let asked = std::sync::Arc::default();
    let p = cutter_pg::StreamedPlan::validate(
        plan.plan().document_id.clone(),
        plan.plan().source_version_id.clone(),
        &cutter_pg::schema::reference_vocabularies(),
        None,
        source,
    )
    .expect("valid streamed plan")
    .with_picker(VecPicker {
        rows,
        asked: std::sync::Arc::clone(&asked),
        tampered,
    });
    (p, asked)
}

/// [`live_run`] the way `cutter run` does it: the plan streamed, cut_leg_a reading back
/// only the rows it writes, leg_b_record and write_verify given cut_leg_a's diff.
fn live_run_picked(db: &TestDb, run_id: &str, plan: &ValidPlan) -> LegAReport {
    let r = run(run_id);
    let auth = approved(db, &r, plan);
    let (streamed, _) = picked(plan, None);
    let report = db
        .target()
        .cut_leg_a_streamed(&auth, &streamed, &mut |_| {})
        .unwrap();
    let cut = report.diff.as_deref();
    let mut target = db.target();
    let mut pt = target
        .phase_transaction(&auth, cutter_core::Phase::LegBRecord)
        .unwrap();
    cutter_governance::leg_b_record_cut(pt.client(), &auth, &streamed, cut, ACTOR).unwrap();
    pt.commit().unwrap();
    let mut verify = db.verify_config().connect().unwrap();
    let mut pt = target
        .phase_transaction(&auth, cutter_core::Phase::WriteVerify)
        .unwrap();
    cutter_governance::write_verify_cut(pt.client(), &mut verify, &auth, &streamed, cut, ACTOR)
        .unwrap();
    pt.commit().unwrap();
    target
        .lifecycle_enact(&auth, &ChangeSetId::for_run(&r))
        .unwrap();
    report
}

#[test]
fn an_amendment_reads_back_only_the_rows_it_writes_and_refuses_one_changed_since_validation() {
    let db = db();
    let base = rows(20);
    live_run_picked(&db, "pick-0", &valid("v1", base.clone()));
    let plan = valid("v2", amended(&base));
    let (diff, _) = db
        .target()
        .read_only(|tx| cutter_pg::amend::plan_diff(tx, &plan))
        .unwrap();
    let written: Vec<u64> = diff.written().filter_map(|e| e.plan_row).collect();
    assert_eq!(written.len(), 9, "8 reworded, 1 added: {written:?}");

    // The plan file changed after validation: one reworded row reads back otherwise.
    let before = db.unit_rows();
    let mut swapped = plan.rows()[written[3] as usize - 1].clone();
    swapped.body.push_str(" (not what was approved)");
    let (streamed, _) = picked(&plan, Some((written[3], swapped)));
    let auth = live_auth_diff(&db, &run("pick-swapped"), &plan, diff.approval_digest());
    let e = db
        .target()
        .cut_leg_a_streamed(&auth, &streamed, &mut |_| {})
        .unwrap_err();
    assert!(
        matches!(e, cutter_pg::Error::PlanRowChanged { row, .. } if row == written[3]),
        "{e}"
    );
    assert!(e.to_string().contains("wrote nothing"), "{e}");
    assert_eq!(db.unit_rows(), before, "nothing written");

    // Honest: exactly the rows written are read back (and row 1, whose actor a repeal
    // records), and the phases after it take cut_leg_a's diff.
    let (streamed, asked) = picked(&plan, None);
    let auth = live_auth_diff(&db, &run("pick-1"), &plan, diff.approval_digest());
    let report = db
        .target()
        .cut_leg_a_streamed(&auth, &streamed, &mut |_| {})
        .unwrap();
    let mut want = vec![1];
    want.extend(&written);
    assert_eq!(*asked.lock().unwrap(), want);
    assert_eq!(
        (
            report.versions_amended,
            report.units_created,
            report.repeals
        ),
        (8, 1, 1)
    );

    // A diff other than the approved one is refused by the phases that take it.
    let mut other = report.diff.clone().expect("an amendment's diff");
    other
        .entries
        .retain(|e| e.class != cutter_core::DiffClass::Repealed);
    let mut target = db.target();
    let mut pt = target
        .phase_transaction(&auth, cutter_core::Phase::LegBRecord)
        .unwrap();
    let e = cutter_governance::leg_b_record_cut(pt.client(), &auth, &streamed, Some(&other), ACTOR)
        .unwrap_err();
    assert!(
        e.to_string()
            .contains("is not the one run pick-1's approvals name"),
        "{e}"
    );
    drop(pt);
    let mut pt = target
        .phase_transaction(&auth, cutter_core::Phase::LegBRecord)
        .unwrap();
    cutter_governance::leg_b_record_cut(
        pt.client(),
        &auth,
        &streamed,
        report.diff.as_deref(),
        ACTOR,
    )
    .unwrap();
    pt.commit().unwrap();
    drop(target);
    write_verify(&db, &auth, &plan).expect("write_verify reading the document agrees");
}

fn amended(base: &[CutPlanRow]) -> Vec<CutPlanRow> {
    cutter_pg::fixtures::amended_rows(DOC, base)
}

#[test]
fn an_amendment_writes_only_what_changed_and_the_current_text_is_the_amended_document() {
    let db = db();
    let first = valid("2013", rows(20));
    let r1 = live_run(&db, "first-load", &first);
    assert_eq!(
        (r1.units_created, r1.versions_amended, r1.repeals),
        (20, 0, 0)
    );
    assert_eq!(current(&db), expected(&first));

    let before = all_rows(&db);
    let second = valid("2025", amended(first.rows()));
    let r2 = live_run(&db, "amend-2025", &second);
    assert_eq!(
        (r2.units_created, r2.versions_amended, r2.repeals),
        (1, 8, 1),
        "{r2:?}"
    );
    assert_eq!(current(&db), expected(&second));
    // The removed article is repealed, not deleted: its lineage stays.
    let repealed: Vec<(String, i32)> = db
        .admin()
        .query(
            "SELECT canonical_address, version_no FROM public.unit_current_text \
              WHERE document_id = $1 AND repealed",
            &[&DOC],
        )
        .unwrap()
        .iter()
        .map(|r| (r.get(0), r.get(1)))
        .collect();
    assert_eq!(repealed, [(format!("{DOC}/dieu-15"), 2)]);
    // Every row that existed is byte-identical; exactly 1 unit and 10 versions (the new
    // unit's first, 8 rewordings, 1 repeal) were added.
    let after = all_rows(&db);
    for (k, v) in &before {
        assert_eq!(after.get(k), Some(v), "{k:?} changed");
    }
    let added: Vec<&(String, i64)> = after.keys().filter(|k| !before.contains_key(k)).collect();
    let units = added.iter().filter(|k| k.0 == "information_unit").count();
    let versions = added.iter().filter(|k| k.0 == "unit_version").count();
    assert_eq!((units, versions), (1, 10));
    // The new versions record their change set and source version.
    let n: i64 = db
        .admin()
        .query_one(
            "SELECT count(*) FROM public.unit_version \
              WHERE change_set_id = 'cs-amend-2025' AND source_version_id = '2025' \
                AND lifecycle_status = 'enacted'",
            &[],
        )
        .unwrap()
        .get(0);
    assert_eq!(n, 9);
    // The manifest records the diff's classes.
    let manifest: String = db
        .admin()
        .query_one(
            "SELECT manifest::text FROM cutter_governance.manifest_envelope WHERE change_set_id = 'cs-amend-2025'",
            &[],
        )
        .unwrap()
        .get(0);
    let manifest: serde_json::Value = serde_json::from_str(&manifest).unwrap();
    let counts: Vec<u64> = manifest["diff"]["classes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["count"].as_u64().unwrap())
        .collect();
    assert_eq!(counts, [11, 8, 0, 1, 1], "{manifest}");

    // A second amendment on top of the first: article 3 again, a title, article 21a gone.
    let before = all_rows(&db);
    let mut third_rows = second.rows().to_vec();
    third_rows[2].body = "Lần sửa đổi thứ hai.".into();
    third_rows[4].title = "Điều 5 (tên mới)".into();
    third_rows.pop();
    let third = valid("2030", third_rows);
    let r3 = live_run(&db, "amend-2030", &third);
    assert_eq!(
        (r3.units_created, r3.versions_amended, r3.repeals),
        (0, 2, 1)
    );
    assert_eq!(current(&db), expected(&third));
    let after = all_rows(&db);
    for (k, v) in &before {
        assert_eq!(after.get(k), Some(v), "{k:?} changed");
    }
    let v: i32 = db
        .admin()
        .query_one(
            "SELECT version_no FROM public.unit_current_text WHERE canonical_address = $1",
            &[&format!("{DOC}/dieu-3")],
        )
        .unwrap()
        .get(0);
    assert_eq!(v, 3, "article 3: first load, 2025, 2030");
}

#[test]
fn an_amendment_whose_approvals_do_not_name_its_diff_writes_nothing() {
    let db = db();
    let first = valid("2013", rows(20));
    live_run(&db, "first-load", &first);
    let second = valid("2025", amended(first.rows()));
    let before = all_rows(&db);
    // Approvals that name no diff (as for a first load), and approvals naming a diff
    // computed before the live document changed: both refused inside cut_leg_a.
    let stale = {
        let other = valid("2025", rows(20));
        db.target()
            .read_only(|tx| cutter_pg::amend::plan_diff(tx, &other))
            .unwrap()
            .0
            .approval_digest()
    };
    for (i, named) in [None, stale].into_iter().enumerate() {
        let auth = live_auth_diff(&db, &run(&format!("amend-{i}")), &second, named);
        let e = db
            .target()
            .cut_leg_a(&auth, &second, &mut |_| {})
            .unwrap_err();
        assert!(
            matches!(e, cutter_pg::Error::DiffNotAuthorized { .. }),
            "{e}"
        );
        assert!(e.to_string().contains("cutter plan diff"), "{e}");
        assert_eq!(all_rows(&db), before);
    }
}

#[test]
fn an_amendment_stopped_before_lifecycle_enact_leaves_the_enacted_text_current() {
    let db = db();
    let first = valid("2013", rows(20));
    live_run(&db, "first-load", &first);
    let second = valid("2025", amended(first.rows()));
    let auth = staged(&db, "amend-staged", &second);
    assert_eq!(current(&db), expected(&first), "after cut_leg_a");
    leg_b(&db, &auth, &second).unwrap();
    write_verify(&db, &auth, &second).unwrap();
    assert_eq!(current(&db), expected(&first), "after write_verify");
    // The pending drafts (9 versions, 1 new unit) keep another amendment out until this
    // one is enacted or compensated.
    let (_, conflicts) = db
        .target()
        .read_only(|tx| cutter_pg::amend::plan_diff(tx, &second))
        .unwrap();
    assert_eq!(conflicts.len(), 10, "{conflicts:?}");
    assert!(conflicts
        .iter()
        .all(|c| matches!(c, cutter_core::Conflict::Pending { change_set: Some(cs), .. } if cs == "cs-amend-staged")));
}

#[test]
fn a_new_version_of_an_approved_runs_unit_needs_approvals_of_its_own_run() {
    let db = db();
    let first = valid("2013", rows(3));
    live_run(&db, "first-load", &first);
    let unit: i64 = db
        .admin()
        .query_one(
            "SELECT id FROM public.information_unit WHERE change_set_id = 'cs-first-load' LIMIT 1",
            &[],
        )
        .unwrap()
        .get(0);
    let before = all_rows(&db);
    // The writer, with psql, adds a version of that unit under a run nobody approved:
    // the unit's own run is approved, but the version is judged by its change set.
    let e = exec(&db)
        .query_one(
            "SELECT public.fn_uv_amend_batch('cs-rogue', $1, 'v9', ARRAY[1]::bigint[], ARRAY[$2::bigint], \
                    ARRAY['Điều 1'], ARRAY['Văn bản giả mạo.'], ARRAY['mallory'], ARRAY[false])",
            &[&DOC, &unit],
        )
        .unwrap_err();
    let db_err = e.as_db_error().expect("a server error");
    assert_eq!(db_err.code().code(), "42501", "{e}");
    assert!(
        db_err
            .message()
            .contains("no live-run authorization recorded in the database for run rogue"),
        "{e}"
    );
    assert_eq!(all_rows(&db), before);
}

/// SG_1 and SG_2 `hard-delete` approvals of revert run `revert` for change set `cs`,
/// signed by the registered approvers and checked by the core's rules.
fn hard_delete_approvals(
    db: &TestDb,
    plan: &ValidPlan,
    revert: &cutter_core::RunId,
    cs: &ChangeSetId,
) -> Vec<cutter_core::VerifiedApproval> {
    register(db);
    let (a, b) = registered();
    let (set, verifier) = approvers(&[a, b]);
    let target = db.target().database().clone();
    let signed = |k: &Approver, gate| {
        let mut st = statement(
            revert,
            plan,
            db,
            gate,
            cutter_core::UnixTime(now().0 + 3600),
        );
        st.purpose = cutter_core::Purpose::HardDelete;
        st.change_set = Some(cs.clone());
        sign(k, &st)
    };
    let approvals = [
        signed(a, cutter_core::ApprovalGate::Sg1),
        signed(b, cutter_core::ApprovalGate::Sg2),
    ];
    cutter_core::check_approvals(
        &cutter_core::ApprovalScope {
            purpose: cutter_core::Purpose::HardDelete,
            run_id: revert,
            plan_digest: plan.digest(),
            target: &target,
            change_set: Some(cs),
            findings_digest: None,
            diff_digest: None,
        },
        &approvals,
        &set,
        now(),
        cutter_core::ApprovalPolicy::default(),
        &verifier,
    )
    .unwrap_or_else(|r| panic!("{r:?}"))
}

/// The real `psql` as the writer `cutter_exec`, running `sql` with ON_ERROR_STOP.
fn psql_as_writer(db: &TestDb, sql: &str) -> std::process::Output {
    let child = db.exec_config().child_env().expect("child env");
    let mut cmd = std::process::Command::new(cutter_pg::pg_program("psql").expect("psql"));
    cmd.env_clear()
        .env("PATH", std::env::var_os("PATH").unwrap_or_default())
        .env("HOME", std::env::temp_dir())
        .env("LC_ALL", "C")
        .args(["-X", "-tA", "-v", "ON_ERROR_STOP=1", "-c", sql]);
    child.apply(&mut cmd);
    cmd.output().expect("run psql")
}

fn refused_by_psql(db: &TestDb, sql: &str, needle: &str) {
    let out = psql_as_writer(db, sql);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "{sql}: psql should fail");
    assert!(stderr.contains(needle), "{sql}: {stderr}");
}

#[test]
fn the_writer_cannot_delete_an_amendments_versions_without_a_hard_delete_approval() {
    let db = db();
    let first = valid("2013", rows(20));
    live_run(&db, "first-load", &first);
    let second = valid("2025", amended(first.rows()));
    let cs = ChangeSetId::for_run(&run("amend-del"));
    let _drafts = staged(&db, "amend-del", &second);
    let before = all_rows(&db);
    let drafts = format!("DELETE FROM public.unit_version WHERE change_set_id = '{cs}'");

    // Plain psql as the writer: no DELETE privilege at all.
    refused_by_psql(&db, &drafts, "permission denied for table unit_version");
    // A DBA's mistaken grant does not open it: the gate refuses without an approval,
    // and so it does through the writer's own function.
    db.admin()
        .batch_execute("GRANT DELETE ON public.unit_version TO cutter_exec")
        .unwrap();
    let no_approval = format!("hard delete of change set {cs} refused: no hard-delete approval");
    refused_by_psql(&db, &drafts, &no_approval);
    refused_by_psql(
        &db,
        &format!("SELECT public.fn_uv_hard_delete_draft('{cs}', 'amend-del-revert', 'mallory')"),
        &no_approval,
    );
    // Nor does an approval recorded for another change set.
    let mut c = exec(&db);
    let other = ChangeSetId::for_run(&run("first-load"));
    let revert = run("amend-del-revert");
    {
        let mut tx = c.transaction().unwrap();
        let approvals = hard_delete_approvals(&db, &second, &revert, &other);
        cutter_governance::record_hard_delete_approval(&mut tx, &other, &revert, &approvals, ACTOR)
            .unwrap();
        tx.commit().unwrap();
    }
    refused_by_psql(&db, &drafts, &no_approval);
    // The enacted version a draft replaces: immutable, approval or not.
    refused_by_psql(
        &db,
        "DELETE FROM public.unit_version WHERE change_set_id IS NULL AND information_unit_id IN \
         (SELECT id FROM public.information_unit WHERE change_set_id = 'cs-first-load')",
        "enacted rows are immutable",
    );
    assert_eq!(all_rows(&db), before);

    // With the change set's approval recorded, a withdrawn version is still refused:
    // only drafts are deleted.
    {
        let mut tx = c.transaction().unwrap();
        let approvals = hard_delete_approvals(&db, &second, &revert, &cs);
        cutter_governance::record_hard_delete_approval(&mut tx, &cs, &revert, &approvals, ACTOR)
            .unwrap();
        tx.commit().unwrap();
    }
    let mut tx = c.transaction().unwrap();
    let n: i64 = tx
        .query_one(
            "SELECT public.fn_uv_change_set_status($1, 'withdrawn', 'amend-del-revert', 'op')",
            &[&cs.as_str()],
        )
        .unwrap()
        .get(0);
    assert_eq!(n, 9);
    let e = tx
        .batch_execute(&format!(
            "DELETE FROM public.unit_version WHERE change_set_id = '{cs}'"
        ))
        .unwrap_err();
    assert!(
        e.as_db_error()
            .unwrap()
            .message()
            .contains("only drafts are deleted"),
        "{e}"
    );
    drop(tx);
    assert_eq!(all_rows(&db), before);

    // The approved path: the nine draft versions go, the enacted text is untouched.
    let n: i64 = exec(&db)
        .query_one(
            "SELECT public.fn_uv_hard_delete_draft($1, 'amend-del-revert', 'op')",
            &[&cs.as_str()],
        )
        .unwrap()
        .get(0);
    assert_eq!(n, 9);
    let after = all_rows(&db);
    let gone: Vec<_> = before.keys().filter(|k| !after.contains_key(*k)).collect();
    assert_eq!(gone.len(), 9, "{gone:?}");
    assert!(gone.iter().all(|k| k.0 == "unit_version"));
    for (k, v) in &after {
        assert_eq!(before.get(k), Some(v), "{k:?} changed");
    }
    assert_eq!(current(&db), expected(&first));
}

/// How many generated sequences [`generated_amendments_leave_the_last_document_current_and_never_change_an_enacted_row`]
/// runs: `CUTTER_AMEND_CASES` (default 32). Zero would test nothing and is refused.
fn amend_cases(var: Option<&str>) -> Result<u64, String> {
    match var.map(|v| (v, v.trim().parse::<u64>())) {
        None => Ok(32),
        Some((_, Ok(0))) => Err(
            "CUTTER_AMEND_CASES=0 would run no case and prove nothing; unset \
                                 it (32 cases) or give a positive number"
                .into(),
        ),
        Some((_, Ok(n))) => Ok(n),
        Some((v, Err(e))) => Err(format!(
            "CUTTER_AMEND_CASES={v:?} is not a number of cases: {e}"
        )),
    }
}

#[test]
fn the_number_of_generated_cases_is_32_by_default_and_never_zero() {
    assert_eq!(amend_cases(None), Ok(32));
    assert_eq!(amend_cases(Some("500")), Ok(500));
    assert!(amend_cases(Some("0"))
        .unwrap_err()
        .contains("prove nothing"));
    assert!(amend_cases(Some("many"))
        .unwrap_err()
        .contains("not a number"));
}

/// A small deterministic generator (xorshift64*), seeded per case, so a failing case is
/// named by its number and replays exactly.
struct Gen(u64);

impl Gen {
    fn new(case: u64) -> Gen {
        Gen(0x9E37_79B9_7F4A_7C15 ^ (case + 1).wrapping_mul(0xD1B5_4A32_D192_ED03))
    }
    fn below(&mut self, n: u64) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D) % n.max(1)
    }
}

/// One generated amendment of `rows`: at least one article reworded, maybe a title
/// changed, articles removed (one always stays) and added (a new number, or one removed
/// earlier coming back).
fn generate_amendment(
    g: &mut Gen,
    doc: &str,
    rows: &mut Vec<CutPlanRow>,
    next: &mut u64,
    step: u64,
) {
    let i = g.below(rows.len() as u64) as usize;
    rows[i].body = format!("{} (sửa đổi lần {step})", rows[i].body);
    for _ in 0..g.below(3) {
        let i = g.below(rows.len() as u64) as usize;
        match g.below(3) {
            0 => rows[i].body = format!("Văn bản mới {step}.{i}."),
            1 => rows[i].title = format!("{} ({step})", rows[i].title),
            _ if rows.len() > 1 => {
                rows.remove(i);
            }
            _ => {}
        }
    }
    for _ in 0..g.below(3) {
        // A number already used comes back (a repealed article re-enacted) or a new one.
        let n = if g.below(2) == 0 {
            g.below(*next) + 1
        } else {
            *next
        };
        *next = (*next).max(n + 1);
        let mut r = cutter_pg::fixtures::row(doc, n);
        r.body = format!("{} ({step})", r.body);
        if !rows
            .iter()
            .any(|x| x.canonical_address == r.canonical_address)
        {
            rows.push(r);
        }
    }
}

#[test]
fn generated_amendments_leave_the_last_document_current_and_never_change_an_enacted_row() {
    let cases = amend_cases(std::env::var("CUTTER_AMEND_CASES").ok().as_deref())
        .unwrap_or_else(|e| panic!("{e}"));
    let db = db();
    for case in 0..cases {
        let mut g = Gen::new(case);
        let doc = format!("prop-{case}");
        let n = 3 + g.below(4);
        let mut rows: Vec<CutPlanRow> = cutter_pg::fixtures::scale_rows(&doc, n).collect();
        let mut next = n + 1;
        let plan_of = |rows: &[CutPlanRow], step: u64| {
            CutPlan::new(
                DocumentId::new(doc.clone()).unwrap(),
                SourceVersionId::new(format!("v{step}")).unwrap(),
                rows.to_vec(),
            )
            .validate(&cutter_pg::schema::reference_vocabularies())
            .unwrap_or_else(|e| panic!("case {case}: {e}"))
        };
        live_run(&db, &format!("p{case}-0"), &plan_of(&rows, 0));
        for step in 1..=1 + g.below(2) {
            generate_amendment(&mut g, &doc, &mut rows, &mut next, step);
            let plan = plan_of(&rows, step);
            let before = db.unit_rows();
            // Both ways a run is written: from a plan in memory, phases reading the
            // document; streamed as `cutter run` does, rows read back, the diff handed on.
            if (case + step) % 2 == 0 {
                live_run(&db, &format!("p{case}-{step}"), &plan);
            } else {
                live_run_picked(&db, &format!("p{case}-{step}"), &plan);
            }
            assert_eq!(
                db.current_text(&doc),
                cutter_pg::testing::plan_text(plan.rows()),
                "case {case}, amendment {step}: the current text is the last document"
            );
            let after = db.unit_rows();
            for (k, v) in &before {
                assert_eq!(
                    after.get(k),
                    Some(v),
                    "case {case}, amendment {step}: {k:?} changed"
                );
            }
        }
    }
}
