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

fn corpus(rel: &str) -> std::path::PathBuf {
    std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../corpus")
        .join(rel)
}

/// The amendment fixture, generated from the shipped constitution's plan: eight
/// articles reworded (every 13th from the 5th), one article removed (the 100th), one
/// added after the last, all other rows — headings, preamble, clauses — kept.
fn amend_constitution(first: &CutPlan) -> CutPlan {
    let mut rows = first.rows.clone();
    let articles: Vec<usize> = rows
        .iter()
        .enumerate()
        .filter(|(_, r)| r.section_type.as_deref() == Some("article"))
        .map(|(i, _)| i)
        .collect();
    for k in 0..8 {
        let i = articles[4 + 13 * k];
        rows[i].body = format!("{} Sửa đổi, bổ sung năm 2025.", rows[i].body.trim_end());
    }
    let mut added = rows[*articles.last().unwrap()].clone();
    added.canonical_address = format!("{}-a", added.canonical_address);
    added.title = format!("{} a", added.title);
    added.body = "Điều này được bổ sung năm 2025.".into();
    rows.push(added);
    rows.remove(articles[99]);
    CutPlan::new(
        first.document_id.clone(),
        SourceVersionId::new("2025").unwrap(),
        rows,
    )
}

/// `cutter approve` writes both statements, each approver signs the text as written,
/// then the kill-switch is disarmed and the run goes live. Returns the run's output.
fn approve_and_run(w: &World, run: &str, plan: &std::path::Path) -> String {
    let mut approvals = Vec::new();
    for (who, gate) in [(0usize, "SG_1"), (1, "SG_2")] {
        let st = w.work.path().join(format!("{run}-{gate}.txt"));
        let o = w
            .cmd()
            .args(["approve", "--run-id", run, "--gate", gate, "--plan"])
            .arg(plan)
            .arg("-o")
            .arg(&st)
            .output()
            .unwrap();
        assert!(o.status.success(), "{}", text(&o));
        let statement = cutter_core::ApprovalStatement::parse(&std::fs::read(&st).unwrap())
            .expect("cutter approve writes a statement");
        let signed = cutter_governance::sign_approval(
            &statement,
            &w.approvers[who].secret,
            &cutter_openpgp::Passphrase::new(String::new()),
            "test",
        )
        .unwrap();
        assert_eq!(signed.statement, std::fs::read(&st).unwrap());
        let sig = st.with_extension("asc");
        std::fs::write(&sig, &signed.signature).unwrap();
        approvals.push(format!("{}:{}", st.display(), sig.display()));
    }
    let mut disarm = w.cmd();
    disarm
        .args(["kill-switch", "disarm", "--run-id", run, "--plan"])
        .arg(plan);
    let mut live = w.cmd();
    live.args(["run", "--mode", "live", "--run-id", run, "--plan"])
        .arg(plan);
    for a in &approvals {
        disarm.args(["--approval", a]);
        live.args(["--approval", a]);
    }
    let o = disarm.output().unwrap();
    assert!(o.status.success(), "{}", text(&o));
    let o = live.output().unwrap();
    assert!(o.status.success(), "{}", text(&o));
    text(&o)
}

#[test]
fn the_amended_constitution_runs_live_after_its_first_load() {
    let w = World::new();
    let first = w.work.path().join("constitution-2013.json");
    let o = w
        .cmd()
        .arg("cut")
        .arg(corpus("vn/constitution-2013.html"))
        .args([
            // Not the baseline's document id: its 60 seeded units of that id, under
            // other addresses, would be repealed by a consolidated text.
            "--document-id",
            "vn-hien-phap-2013",
            "--source-version",
            "2013",
            "-o",
        ])
        .arg(&first)
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", text(&o));
    approve_and_run(&w, "load-2013", &first);

    let plan1 = CutPlan::parse_json(&std::fs::read(&first).unwrap()).unwrap();
    let amended = w.work.path().join("constitution-2025.json");
    let plan2 = amend_constitution(&plan1);
    std::fs::write(&amended, plan2.to_json()).unwrap();

    let o = w
        .cmd()
        .args(["--json", "plan", "diff"])
        .arg(&amended)
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", text(&o));
    let d: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    let c = &d["counts"];
    assert_eq!(
        (
            &c["changed_body"],
            &c["changed_title"],
            &c["new"],
            &c["repealed"]
        ),
        (
            &serde_json::json!(8),
            &serde_json::json!(0),
            &serde_json::json!(1),
            &serde_json::json!(1)
        ),
        "{d}"
    );
    assert_eq!(d["amendment"], true);
    let human = w
        .cmd()
        .args(["plan", "diff"])
        .arg(&amended)
        .output()
        .unwrap();
    println!("{}", text(&human));

    let before = w.db.target().snapshot().unwrap();
    let out = approve_and_run(&w, "amend-2025", &amended);
    println!("{out}");
    // The statements named the diff.
    let st = std::fs::read_to_string(w.work.path().join("amend-2025-SG_1.txt")).unwrap();
    assert!(
        st.contains(&format!(
            "diff_digest: sha256:{}",
            d["diff_digest"].as_str().unwrap()
        )),
        "{st}"
    );
    // The current text is the amended document.
    let current: Vec<(String, String, String)> =
        w.db.admin()
            .query(
                "SELECT canonical_address, title, body FROM public.unit_current_text \
              WHERE document_id = 'vn-hien-phap-2013' AND NOT repealed ORDER BY canonical_address",
                &[],
            )
            .unwrap()
            .iter()
            .map(|r| (r.get(0), r.get(1), r.get(2)))
            .collect();
    let mut want: Vec<(String, String, String)> = plan2
        .rows
        .iter()
        .map(|r| (r.canonical_address.clone(), r.title.clone(), r.body.clone()))
        .collect();
    want.sort();
    assert_eq!(current, want);
    // The report shows the changed articles side by side, the added words marked.
    let report = std::fs::read_to_string(w.state.join("runs/amend-2025/report.md")).unwrap();
    assert!(report.contains("## Changed articles"), "{report}");
    assert!(report.contains("**2025.**"), "{report}");
    assert_eq!(
        report.matches("#### ").count(),
        9,
        "8 rewordings and 1 repeal"
    );
    // One unit and ten versions were added; nothing else in the unit tables.
    let after = w.db.target().snapshot().unwrap();
    let rows = |s: &cutter_core::Snapshot, t: &str| {
        s.tables
            .iter()
            .find(|(n, _)| n.to_string() == t)
            .map(|(_, st)| st.rows)
            .unwrap()
    };
    assert_eq!(
        rows(&after, "public.information_unit") - rows(&before, "public.information_unit"),
        1
    );
    assert_eq!(
        rows(&after, "public.unit_version") - rows(&before, "public.unit_version"),
        10
    );
}
