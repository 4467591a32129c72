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

/// `cutter cut` of the shipped constitution under `doc` and `version`; returns the plan.
fn cut_constitution(w: &World, doc: &str, version: &str) -> std::path::PathBuf {
    let plan = w.work.path().join(format!("{doc}-{version}.json"));
    let o = w
        .cmd()
        .arg("cut")
        .arg(corpus("vn/constitution-2013.html"))
        .args(["--document-id", doc, "--source-version", version, "-o"])
        .arg(&plan)
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", text(&o));
    plan
}

/// `cutter --json plan diff PLAN`, which succeeds.
fn plan_diff_json(w: &World, plan: &std::path::Path) -> serde_json::Value {
    let o = w
        .cmd()
        .args(["--json", "plan", "diff"])
        .arg(plan)
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", text(&o));
    serde_json::from_slice(&o.stdout).unwrap()
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
    let o = approved_run(w, run, plan).output().unwrap();
    assert!(o.status.success(), "{}", text(&o));
    text(&o)
}

/// The approvals as [`approve_and_run`] writes them and the kill-switch disarmed: the
/// live run's command, not yet started.
fn approved_run(w: &World, run: &str, plan: &std::path::Path) -> std::process::Command {
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
    let mut live = w.std_cmd();
    live.args(["run", "--mode", "live", "--run-id", run, "--plan"])
        .arg(plan);
    for a in &approvals {
        disarm.args(["--approval", a]);
        live.args(["--approval", a]);
    }
    let o = disarm.output().unwrap();
    assert!(o.status.success(), "{}", text(&o));
    live
}

#[test]
fn the_amended_constitution_runs_live_after_its_first_load() {
    let w = World::new();
    // Not the baseline's document id: its 60 seeded units of that id are under other
    // addresses (see the warning test below).
    let first = cut_constitution(&w, "vn-hien-phap-2013", "2013");
    approve_and_run(&w, "load-2013", &first);

    let plan1 = CutPlan::parse_json(&std::fs::read(&first).unwrap()).unwrap();
    let amended = w.work.path().join("constitution-2025.json");
    let plan2 = amend_constitution(&plan1);
    std::fs::write(&amended, plan2.to_json()).unwrap();

    let d = plan_diff_json(&w, &amended);
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

#[test]
fn plan_diff_and_check_warn_when_the_live_units_follow_another_address_scheme() {
    let w = World::new();
    // The seeds' baseline holds enacted units of vn-constitution-2013 at …/dieu-N;
    // `cutter cut` addresses articles …/chuong-X/dieu-N.
    let plan = cut_constitution(&w, "vn-constitution-2013", "2025");
    let before = w.db.target().snapshot().unwrap();
    let live: i64 =
        w.db.admin()
            .query_one(
                "SELECT count(*) FROM public.unit_current_text \
              WHERE document_id = 'vn-constitution-2013' AND NOT repealed",
                &[],
            )
            .unwrap()
            .get(0);
    assert!(live > 0);

    let d = plan_diff_json(&w, &plan);
    // The cut shares no address with the baseline's units: nothing is repealed and all
    // 365 units would stand beside the 60 in force.
    assert_eq!(d["counts"]["repealed"], 0, "{d}");
    assert_eq!(d["counts"]["new"], 365, "{d}");
    let warning = d["warning"].as_str().unwrap_or_else(|| panic!("{d}"));
    let says = format!(
        "document vn-constitution-2013: none of its {live} live unit(s) has an address of this \
         plan, so its 365 unit(s) are new and would stand beside them"
    );
    assert!(warning.contains(&says), "{warning}");
    assert!(warning.contains("another scheme"), "{warning}");
    // The human table and plan check say it too; neither writes anything.
    for args in [["plan", "diff"], ["plan", "check"]] {
        let o = w.cmd().args(args).arg(&plan).output().unwrap();
        let out = text(&o);
        assert!(o.status.success(), "{out}");
        assert!(out.contains(&format!("warning: {says}")), "{out}");
    }
    assert_eq!(w.db.target().snapshot().unwrap().tables, before.tables);

    // A plan of another document id: no live units, no warning.
    let plan = cut_constitution(&w, "vn-hien-phap-2013", "2013");
    let d = plan_diff_json(&w, &plan);
    assert_eq!(d["warning"], serde_json::Value::Null, "{d}");
}

#[test]
fn an_amendment_killed_in_each_phase_is_recovered_and_compensated_to_the_enacted_text() {
    const DOC: &str = "cli-amend";
    for (phase, when) in [
        ("pre_write_backup", "before_commit"),
        ("cut_leg_a", "before_commit"),
        ("cut_leg_a", "after_commit"),
        ("leg_b_record", "before_commit"),
        ("write_verify", "before_commit"),
        ("lifecycle_enact", "before_commit"),
        ("lifecycle_enact", "after_commit"),
    ] {
        let what = format!("{phase}:{when}");
        let w = World::new();
        let first = CutPlan::new(
            DocumentId::new(DOC).unwrap(),
            SourceVersionId::new("2013").unwrap(),
            cutter_pg::fixtures::scale_rows(DOC, 20).collect(),
        );
        let first_path = w.work.path().join("first.json");
        std::fs::write(&first_path, first.to_json()).unwrap();
        approve_and_run(&w, "load", &first_path);
        let enacted = w.db.unit_rows();
        assert_eq!(
            w.db.current_text(DOC),
            cutter_pg::testing::plan_text(&first.rows),
            "{what}"
        );

        // Articles 2–9 reworded, article 15 removed, one added.
        let rows = cutter_pg::fixtures::amended_rows(DOC, &first.rows);
        let second = CutPlan::new(
            first.document_id.clone(),
            SourceVersionId::new("2025").unwrap(),
            rows,
        );
        let second_path = w.work.path().join("second.json");
        std::fs::write(&second_path, second.to_json()).unwrap();
        let o = approved_run(&w, "amend", &second_path)
            .env("CUTTER_FAILPOINT", format!("{phase}:{when}:abort"))
            .output()
            .unwrap();
        assert!(!o.status.success(), "{what}: {}", text(&o));

        let r = w.cmd().arg("recover").output().unwrap();
        let recovered = text(&r);
        let o = w
            .cmd()
            .args(["compensate", "--run-id", "amend"])
            .output()
            .unwrap();
        let compensated = text(&o);
        let enacted_run = (phase, when) == ("lifecycle_enact", "after_commit");
        assert_eq!(
            o.status.success(),
            !enacted_run,
            "{what}: {recovered}\n{compensated}"
        );
        let after = w.db.unit_rows();
        // No row that existed before the amendment changed by a byte.
        for (k, v) in &enacted {
            assert_eq!(
                after.get(k),
                Some(v),
                "{what}: {k:?} changed\n{compensated}"
            );
        }
        if enacted_run {
            // The enactment committed: recover finds the run succeeded, the amended text
            // is current, and compensate refuses a run that is not held.
            assert!(
                recovered.contains("the run had in fact succeeded"),
                "{recovered}"
            );
            assert_eq!(
                w.db.current_text(DOC),
                cutter_pg::testing::plan_text(&second.rows),
                "{what}"
            );
            assert!(
                compensated.contains("is succeeded"),
                "{what}: {compensated}"
            );
            continue;
        }
        assert_eq!(
            w.db.current_text(DOC),
            cutter_pg::testing::plan_text(&first.rows),
            "{what}: the previously enacted text is current\n{recovered}\n{compensated}"
        );
        // What the run added is withdrawn, never current, its lineage kept.
        let live: i64 = w
            .db
            .admin()
            .query_one(
                "SELECT (SELECT count(*) FROM public.unit_version WHERE change_set_id = 'cs-amend' \
                           AND lifecycle_status <> 'withdrawn') \
                      + (SELECT count(*) FROM public.information_unit WHERE change_set_id = 'cs-amend' \
                           AND lifecycle_status <> 'withdrawn')",
                &[],
            )
            .unwrap()
            .get(0);
        assert_eq!(live, 0, "{what}: {compensated}");
    }
}
