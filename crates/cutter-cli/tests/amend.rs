//! Amendments from the operator's side: `plan diff` and `plan check` compare a plan with
//! the live document, and a plan whose addresses another document holds is refused
//! before anything runs — nothing written, no HOLD.

mod common;

use common::{text, World};
use cutter_core::{CutPlan, CutPlanRow, DocumentId, SourceVersionId};

#[test]
fn a_plan_colliding_with_another_documents_units_is_refused_at_plan_check() {
    let w = World::new();
    // A live unit of the baseline, of another document than the plan's.
    let r = w
        .db
        .admin()
        .query_one(
            "SELECT id, canonical_address, document_id FROM public.information_unit \
              WHERE lifecycle_status <> 'withdrawn' AND document_id <> 'cli-doc' ORDER BY id LIMIT 1",
            &[],
        )
        .unwrap();
    let (id, address, other): (i64, String, String) = (r.get(0), r.get(1), r.get(2));
    let mut rows: Vec<CutPlanRow> = cutter_pg::fixtures::scale_rows("cli-doc", 3).collect();
    rows[1].canonical_address = address.clone();
    let plan = w.work.path().join("colliding.json");
    std::fs::write(
        &plan,
        CutPlan::new(
            DocumentId::new("cli-doc").unwrap(),
            SourceVersionId::new("v1").unwrap(),
            rows,
        )
        .to_json(),
    )
    .unwrap();
    let before = w.db.target().snapshot().unwrap();

    let o = w.cmd().args(["plan", "check"]).arg(&plan).output().unwrap();
    let out = text(&o);
    assert_eq!(o.status.code(), Some(3), "{out}");
    assert!(
        out.contains(&format!(
            "{address}: held by unit id {id} of document {other}"
        )),
        "{out}"
    );
    // plan diff shows the same conflict, and that the rest is new.
    let o = w.cmd().args(["plan", "diff"]).arg(&plan).output().unwrap();
    let out = text(&o);
    assert!(o.status.success(), "{out}");
    assert!(out.contains("conflict: "), "{out}");
    assert!(out.contains("1 conflict(s)"), "{out}");
    // Offline there is nothing to compare with, and it says so.
    let o = w
        .cmd()
        .args(["plan", "check", "--offline"])
        .arg(&plan)
        .output()
        .unwrap();
    let out = text(&o);
    assert!(o.status.success(), "{out}");
    assert!(out.contains("not compared (--offline)"), "{out}");

    // Nothing was written and nothing is held.
    let after = w.db.target().snapshot().unwrap();
    assert_eq!(before.tables, after.tables);
    assert!(!w.state.join("locks/HOLD").exists());
    let o = w.cmd().args(["hold", "show"]).output().unwrap();
    assert!(text(&o).contains("no HOLD"), "{}", text(&o));
}
