//! The real `cutter` binary against throwaway databases: the operator's paths, the gate's
//! refusals, failures in every mutating phase, crashes and recovery, concurrency, void.

mod common;

use common::World;
use cutter_core::Phase;
use predicates::prelude::*;

fn stdout(o: &std::process::Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}
fn stderr(o: &std::process::Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

#[test]
fn a_mistyped_flag_is_a_usage_error_and_runs_nothing() {
    let w = World::new();
    let before = w.snapshot();
    w.cmd()
        .args(["run", "--mode", "live", "--run-id", "r-typo", "--plan"])
        .arg(&w.plan)
        .arg("--stage-onyl")
        .assert()
        .code(2)
        .stderr(predicate::str::contains(
            "unexpected argument '--stage-onyl'",
        ));
    assert!(!w.state.join("runs/r-typo").exists());
    // With --json, a script still gets the documented envelope on stdout.
    let o = w
        .cmd()
        .args([
            "--json", "run", "--mode", "live", "--run-id", "r-typo", "--plan",
        ])
        .arg(&w.plan)
        .arg("--stage-onyl")
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(2), "{}", stderr(&o));
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(v["ok"], false);
    assert_eq!(v["error"]["kind"], "usage");
    assert_eq!(v["error"]["exit_code"], 2);
    assert!(
        v["error"]["message"]
            .as_str()
            .unwrap()
            .contains("unexpected argument '--stage-onyl'"),
        "{v}"
    );
    assert!(!w.state.join("runs/r-typo").exists());
    assert_eq!(w.snapshot(), before);
    // An unknown key in the config file is an error too.
    let cfg = std::fs::read_to_string(&w.config).unwrap();
    std::fs::write(&w.config, cfg.replace("verify_user", "verify_usr")).unwrap();
    w.cmd()
        .args(["status"])
        .assert()
        .code(2)
        .stderr(predicate::str::contains("unknown field `verify_usr`"));
}

#[test]
fn happy_path_live_run_then_report_status_and_ledger() {
    let w = World::new();
    let before = w.snapshot();
    let a = w.disarm("r-happy");
    // The backup is proven by hand below (`prove_backup` has its own tests).
    let o = w
        .run_live("r-happy", &a)
        .env("CUTTER_PROVE_BACKUP", "off")
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(0), "{}\n{}", stdout(&o), stderr(&o));
    assert!(
        stdout(&o)
            .contains("run r-happy succeeded: 12 units created, verify 12/12 matched, 12 enacted"),
        "{}",
        stdout(&o)
    );
    let after = w.snapshot();
    assert_eq!(
        after.rows("public.information_unit"),
        before.rows("public.information_unit") + 12
    );
    assert_eq!(
        after.unit_statuses["enacted"],
        before.unit_statuses["enacted"] + 12
    );
    assert!(
        w.kill_switch().contains("engaged"),
        "the kill-switch re-arms after the run: {}",
        w.kill_switch()
    );
    assert!(!w.hold_exists());
    assert!(w.state.join("backups/r-happy.dump.pgp").exists());
    // Nothing in the state directory is plaintext dump.
    for e in walk(&w.state) {
        let bytes = std::fs::read(&e).unwrap();
        assert!(
            !bytes.windows(5).any(|x| x == b"PGDMP"),
            "plaintext dump bytes in {}",
            e.display()
        );
    }
    let report_md = || {
        stdout(
            &w.cmd()
                .args(["report", "--run-id", "r-happy"])
                .output()
                .unwrap(),
        )
    };
    let md = report_md();
    insta::with_settings!({filters => redactions()}, {
        insta::assert_snapshot!("happy_summary", stdout(&o));
        insta::assert_snapshot!("happy_report", md);
    });
    for needle in [
        "# cutter run report — r-happy",
        "| cut_leg_a | committed |",
        "SG_1 signed by",
        "SG_2 signed by",
        "units enacted: 12",
    ] {
        assert!(md.contains(needle), "{needle} missing from\n{md}");
    }
    // The report stored at the end of the run has the ledger's chain verified then.
    let stored = std::fs::read_to_string(w.state.join("runs/r-happy/report.md")).unwrap();
    assert!(
        // 18 of the run's phases, 18 `run_state` records of what its report shows (one
        // per journaled event and per change between them), the two approvers'
        // registrations.
        stored.contains("## Ledger\n\nStatus: 38 row(s) in 6 table(s), every hash chain intact."),
        "{stored}"
    );
    let stored: serde_json::Value =
        serde_json::from_slice(&std::fs::read(w.state.join("runs/r-happy/report.json")).unwrap())
            .unwrap();
    assert_eq!(stored["ledger_intact"], true, "{stored}");
    assert_eq!(stored["ledger"]["tables"].as_array().unwrap().len(), 6);
    assert!(stored["restore_proof"].is_null() && stored["restore_proof_error"].is_null());
    w.cmd().args(["ledger", "verify"]).assert().success();
    // A restore proof of the run's backup shows in its report from then on…
    let proof = w
        .cmd()
        .args(["backup", "restore-proof"])
        .arg(w.state.join("backups/r-happy.dump.pgp"))
        .output()
        .unwrap();
    assert_eq!(proof.status.code(), Some(0), "{}", stderr(&proof));
    let md = report_md();
    assert!(
        md.contains("## Restore proof\n\nStatus: PASSED: the backup restored into a throwaway cluster and matched its manifest."),
        "{md}"
    );
    // One row per table of the surface, read by a person rather than pasted as JSON.
    let rows: Vec<&str> = md
        .lines()
        .filter(|l| l.starts_with("| public.") || l.starts_with("| cutter_governance."))
        .filter(|l| l.ends_with("| yes |"))
        .collect();
    assert_eq!(rows.len(), 10, "{md}");
    assert!(
        rows.iter().any(
            |l| l.starts_with("| public.information_unit | 158 | 158 | `")
                && l.contains("` equal |")
        ),
        "{md}"
    );
    assert!(!md.contains("```json"), "{md}");
    // …and the state directory's record edited to prove another artifact is not passed
    // off as the proof: the ledger's is shown, and the edited record, whose signature no
    // longer verifies, is named as untrusted.
    let record = w.state.join("backups/r-happy.restore-proof.json");
    let mut v: serde_json::Value =
        serde_json::from_slice(&std::fs::read(&record).unwrap()).unwrap();
    let proved = v["artifact_sha256"].clone();
    v["artifact_sha256"] = serde_json::json!("00".repeat(32));
    std::fs::write(&record, serde_json::to_vec(&v).unwrap()).unwrap();
    let j: serde_json::Value = serde_json::from_slice(
        &w.cmd()
            .args(["--json", "report", "--run-id", "r-happy"])
            .output()
            .unwrap()
            .stdout,
    )
    .unwrap();
    assert_eq!(
        j["report"]["restore_proof"]["artifact_sha256"], proved,
        "{j}"
    );
    assert!(j["report"]["restore_proof_error"].is_null(), "{j}");
    let md = report_md();
    assert!(
        md.contains("r-happy.restore-proof.json cannot be trusted: its signature does not verify")
            && md.contains("the ledger's restore proof (review_decision")
            && !md.contains("differs from the ledger's"),
        "{md}"
    );
    let st = w.cmd().args(["--json", "status"]).output().unwrap();
    let v: serde_json::Value = serde_json::from_slice(&st.stdout).unwrap();
    assert_eq!(v["runs"][0]["bucket"], "done");
    // A run id never runs twice.
    w.run_live("r-happy", &a)
        .assert()
        .code(3)
        .stderr(predicate::str::contains("already used"));
}

/// What differs between two identical runs: keys, digests, times, paths, ids.
fn redactions() -> Vec<(&'static str, &'static str)> {
    vec![
        (r"[0-9A-F]{40}", "[FINGERPRINT]"),
        (r"[0-9a-f]{64}", "[SHA256]"),
        (r"`[0-9a-f]{16}…`", "`[SHA256 PREFIX]…`"),
        (r"\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d+)?Z", "[TIME]"),
        (r"/tmp/cutter-cli-test-[A-Za-z0-9]+", "[WORK]"),
        (r"system identifier \d+", "system identifier [SYSID]"),
        (r"\| \d+ ms \|", "| [MS] |"),
        (r"\d+ bytes", "[N] bytes"),
    ]
}

fn walk(dir: &std::path::Path) -> Vec<std::path::PathBuf> {
    let mut out = Vec::new();
    for e in std::fs::read_dir(dir).unwrap().flatten() {
        let p = e.path();
        if p.is_dir() {
            out.extend(walk(&p));
        } else {
            out.push(p);
        }
    }
    out
}

#[test]
fn the_gate_refuses_and_nothing_is_written() {
    let w = World::new();
    let before = w.snapshot();
    let a = w.approvals("r-gate");
    // 1. Kill-switch engaged.
    let o = w.run_live("r-gate", &a).output().unwrap();
    assert_eq!(o.status.code(), Some(3), "{}", stderr(&o));
    assert!(
        stderr(&o).contains("the kill-switch is engaged"),
        "{}",
        stderr(&o)
    );
    // Disarm for this run, then: 2. one approval only.
    w.disarm("r-gate");
    let o = w.run_live("r-gate", &a[..1]).output().unwrap();
    assert_eq!(o.status.code(), Some(3));
    assert!(
        stderr(&o).contains("no valid SG_2 approval"),
        "{}",
        stderr(&o)
    );
    // 3. Approvals for another run.
    let other = w.approvals("r-other");
    let o = w.run_live("r-gate", &other).output().unwrap();
    assert_eq!(o.status.code(), Some(3));
    assert!(
        stderr(&o).contains("approves run r-other, not this run"),
        "{}",
        stderr(&o)
    );
    // 4. Same signer twice; 5. a signer who is not an approver.
    let same = w.approvals_for("r-gate", &w.plan, [0, 0], w.database(), 3600);
    assert!(
        stderr(&w.run_live("r-gate", &same).output().unwrap()).contains("two distinct approvers")
    );
    let mallory = w.approvals_for("r-gate", &w.plan, [0, 2], w.database(), 3600);
    let m = stderr(&w.run_live("r-gate", &mallory).output().unwrap());
    let fpr = w.approvers[2].secret.fingerprint().to_string();
    assert!(
        m.contains(&format!(
            "made by unknown key fingerprint {fpr}, which is none of the 2 trusted key(s)"
        )),
        "{m}"
    );
    // 6. Expired.
    let expired = w.approvals_for("r-gate", &w.plan, [0, 1], w.database(), -60);
    assert!(stderr(&w.run_live("r-gate", &expired).output().unwrap()).contains("expired"));
    assert_eq!(w.snapshot(), before, "a refused run writes nothing");
    assert!(
        !w.state.join("runs/r-gate").exists(),
        "a refused run leaves no run behind"
    );
    assert_eq!(
        std::fs::read_dir(w.state.join("backups")).unwrap().count(),
        0
    );
}

/// An injected failure in each mutating phase: HOLD, kill-switch re-armed, the matrix's
/// compensation; `compensate` then restores the pre-run snapshot (live units).
#[test]
fn an_injected_failure_in_each_mutating_phase_holds_and_compensates() {
    let cases = [
        (Phase::PreWriteBackup, "discard the backup artifact"),
        (Phase::CutLegA, "discard the backup artifact"),
        (Phase::LegBRecord, "compensation A:"),
        (Phase::WriteVerify, "compensation A + B"),
        (Phase::LifecycleEnact, "compensation A + B"),
    ];
    for (phase, prescribed) in cases {
        let w = World::new();
        let before = w.snapshot();
        let run = format!("r-fail-{}", phase.name().replace('_', "-"));
        let a = w.disarm(&run);
        let o = w
            .run_live(&run, &a)
            .env("CUTTER_FAILPOINT", format!("{phase}:before_commit:error"))
            .output()
            .unwrap();
        assert_eq!(
            o.status.code(),
            Some(4),
            "{phase}: {}\n{}",
            stdout(&o),
            stderr(&o)
        );
        let err = stderr(&o);
        assert!(
            err.contains(&format!("failed in {phase}")),
            "{phase}: {err}"
        );
        assert!(
            err.contains(prescribed),
            "{phase}: expected {prescribed:?} in {err}"
        );
        assert!(w.hold_exists(), "{phase}: no HOLD");
        let hold = hold_of(&w);
        assert_eq!(hold["run_id"], run.as_str(), "{phase}: {hold}");
        assert_eq!(hold["failed_phase"], phase.name(), "{phase}: {hold}");
        assert!(
            hold["reason"]
                .as_str()
                .unwrap()
                .contains(&format!("injected failure at {phase}:before_commit")),
            "{phase}: {hold}"
        );
        assert!(
            w.kill_switch().contains("engaged"),
            "{phase}: kill-switch not re-armed"
        );
        assert!(w.state.join(format!("rollback/{run}/sg3.json")).exists());
        assert_eq!(sg3_rows(&w, &run), 1, "{phase}: one SG_3 ledger row");
        // The gate now refuses any live run while the HOLD stands.
        let b = w.approvals("r-next");
        w.run_live("r-next", &b)
            .assert()
            .code(3)
            .stderr(predicate::str::contains("a HOLD from run"));
        let c = w
            .cmd()
            .args(["compensate", "--run-id", &run])
            .output()
            .unwrap();
        assert_eq!(
            c.status.code(),
            Some(0),
            "{phase}: {}\n{}",
            stdout(&c),
            stderr(&c)
        );
        let after = w.snapshot();
        assert_eq!(
            World::live_statuses(&after),
            World::live_statuses(&before),
            "{phase}: live units differ after compensation"
        );
        // Compensating again is a no-op that says so.
        let again = w
            .cmd()
            .args(["compensate", "--run-id", &run])
            .output()
            .unwrap();
        assert_eq!(again.status.code(), Some(0), "{}", stderr(&again));
        assert_eq!(
            World::live_statuses(&w.snapshot()),
            World::live_statuses(&before)
        );
        if phase >= Phase::LegBRecord {
            assert!(
                stdout(&again).contains("already"),
                "{phase}: {}",
                stdout(&again)
            );
        }
    }
}

#[test]
fn kill_9_inside_cut_leg_a_and_after_its_commit_then_recover() {
    // Inside the transaction: nothing of leg A commits.
    let w = World::new();
    let before = w.snapshot();
    let a = w.disarm("r-kill-a");
    let o = w
        .run_live("r-kill-a", &a)
        .env("CUTTER_FAILPOINT", "cut_leg_a:before_commit:abort")
        .output()
        .unwrap();
    assert!(!o.status.success());
    assert_eq!(
        w.snapshot().rows("public.information_unit"),
        before.rows("public.information_unit"),
        "zero new units"
    );
    // The run read its own copy of the plan: kept as the run's plan.json, and left under
    // its temporary name too by the crash.
    let partials = || -> Vec<String> {
        std::fs::read_dir(w.state.join("runs"))
            .unwrap()
            .filter_map(|e| e.ok()?.file_name().into_string().ok())
            .filter(|n| n.starts_with(".plan-") && n.contains(".partial-"))
            .collect()
    };
    assert_eq!(partials().len(), 1, "{:?}", partials());
    assert_eq!(
        std::fs::read(w.state.join("runs/r-kill-a/plan.json")).unwrap(),
        std::fs::read(&w.plan).unwrap()
    );
    let r = w.cmd().args(["recover"]).output().unwrap();
    assert_eq!(r.status.code(), Some(4), "{}\n{}", stdout(&r), stderr(&r));
    assert!(
        partials().is_empty(),
        "recover removes it: {:?}",
        partials()
    );
    assert!(w.state.join("runs/r-kill-a/plan.json").is_file());
    let text = stdout(&r);
    assert!(
        text.contains("the process died during cut_leg_a; nothing of cut_leg_a committed"),
        "{text}"
    );
    assert!(text.contains("discard the backup artifact"), "{text}");
    // Right after the commit, before the journal records it: the database is the marker.
    let w = World::new();
    let a = w.disarm("r-kill-b");
    let o = w
        .run_live("r-kill-b", &a)
        .env("CUTTER_FAILPOINT", "cut_leg_a:after_commit:abort")
        .output()
        .unwrap();
    assert!(!o.status.success());
    let r = w.cmd().args(["recover"]).output().unwrap();
    let text = stdout(&r);
    assert!(
        text.contains("cut_leg_a committed in the database after the journal's last line"),
        "{text}"
    );
    assert!(text.contains("compensation A:"), "{text}");
    w.cmd()
        .args(["compensate", "--run-id", "r-kill-b"])
        .assert()
        .success();
}

#[test]
fn kill_9_inside_write_verify_then_recover_prescribes_a_and_b() {
    let w = World::new();
    let a = w.disarm("r-kill-v");
    let o = w
        .run_live("r-kill-v", &a)
        .env("CUTTER_FAILPOINT", "write_verify:before_commit:abort")
        .output()
        .unwrap();
    assert!(!o.status.success());
    let r = w.cmd().args(["recover"]).output().unwrap();
    let text = stdout(&r);
    assert!(
        text.contains("the process died during write_verify"),
        "{text}"
    );
    assert!(text.contains("compensation A + B"), "{text}");
}

#[test]
fn two_runs_at_once_one_is_refused_naming_the_holder() {
    let w = World::new();
    let a = w.disarm("r-slow");
    let mut slow = std::process::Command::new(assert_cmd::cargo::cargo_bin("cutter"));
    slow.env("CUTTER_CONFIG", &w.config)
        .env("PGPASSFILE", &w.pgpass)
        .env("CUTTER_FAILPOINT", "cut_leg_a:before_commit:sleep=8")
        .args(["run", "--mode", "live", "--run-id", "r-slow", "--plan"])
        .arg(&w.plan)
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null());
    for x in &a {
        slow.args(["--approval", x]);
    }
    let mut child = slow.spawn().unwrap();
    // Wait until it holds the lock (its journal exists).
    for _ in 0..100 {
        if w.state.join("runs/r-slow/journal.jsonl").exists() {
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
    let b = w.approvals("r-second");
    let o = w.run_live("r-second", &b).output().unwrap();
    assert_eq!(o.status.code(), Some(3), "{}", stderr(&o));
    assert!(
        stderr(&o).contains(&format!("locked by pid {} (run r-slow)", child.id())),
        "{}",
        stderr(&o)
    );
    assert!(child.wait().unwrap().success());
}

#[test]
fn void_refuses_live_writes_and_retires_a_compensated_run() {
    let w = World::new();
    let a = w.disarm("r-void");
    w.run_live("r-void", &a)
        .arg("--stage-only")
        .assert()
        .success();
    w.cmd()
        .args(["void", "--run-id", "r-void", "--reason", "test"])
        .assert()
        .code(3)
        .stderr(predicate::str::contains("cannot void run r-void"));
    w.cmd()
        .args(["compensate", "--run-id", "r-void"])
        .assert()
        .success();
    w.cmd()
        .args(["void", "--run-id", "r-void", "--reason", "superseded"])
        .assert()
        .success()
        .stdout(predicate::str::contains("run r-void voided"));
    // The same plan can now run under a new run id.
    let b = w.disarm("r-void-2");
    w.run_live("r-void-2", &b).assert().success();
}

#[test]
fn a_dry_run_rehearses_on_a_throwaway_clone_and_leaves_the_target_unchanged() {
    let w = World::new();
    let before = w.snapshot();
    let o = w
        .cmd()
        .args(["run", "--mode", "dry-run", "--run-id", "r-dry", "--plan"])
        .arg(&w.plan)
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(0), "{}\n{}", stdout(&o), stderr(&o));
    assert!(
        stdout(&o).contains("rehearsal of run r-dry, recorded as r-dry.dry-run-1"),
        "{}",
        stdout(&o)
    );
    assert!(
        stdout(&o).contains(
            "run r-dry.dry-run-1 succeeded: 12 units created, verify 12/12 matched, 12 enacted"
        ),
        "{}",
        stdout(&o)
    );
    assert_eq!(
        w.snapshot(),
        before,
        "the target is never written by a dry-run"
    );
    assert!(
        w.kill_switch().contains("engaged"),
        "a dry-run needs no disarm and changes nothing"
    );
    let report = stdout(
        &w.cmd()
            .args(["report", "--run-id", "r-dry.dry-run-1"])
            .output()
            .unwrap(),
    );
    assert!(report.contains("| mode | dry-run |"), "{report}");
    assert!(
        report.contains("Net-zero: nothing differs between before and after."),
        "{report}"
    );
    // Rehearsals repeat, each under its own id; then the rehearsed run id runs live.
    w.cmd()
        .args(["run", "--mode", "dry-run", "--run-id", "r-dry", "--plan"])
        .arg(&w.plan)
        .assert()
        .success()
        .stdout(predicate::str::contains("recorded as r-dry.dry-run-2"));
    assert_eq!(w.snapshot(), before);
    let a = w.disarm("r-dry");
    w.run_live("r-dry", &a).assert().success();
    // Once it ran live there is nothing left to rehearse.
    w.cmd()
        .args(["run", "--mode", "dry-run", "--run-id", "r-dry", "--plan"])
        .arg(&w.plan)
        .assert()
        .code(3)
        .stderr(predicate::str::contains("run id r-dry has already run"));
}

#[test]
fn cut_then_plan_check_and_show() {
    let w = World::new();
    let doc = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../corpus/udhr/eng.html");
    let plan = w.work.path().join("udhr.json");
    let o = w
        .cmd()
        .args(["cut"])
        .arg(&doc)
        .args([
            "--document-id",
            "udhr-eng",
            "--source-version",
            "1948",
            "-o",
        ])
        .arg(&plan)
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    assert!(stdout(&o).contains("63 rows"), "{}", stdout(&o));
    // Never overwrites.
    w.cmd()
        .args(["cut"])
        .arg(&doc)
        .args([
            "--document-id",
            "udhr-eng",
            "--source-version",
            "1948",
            "-o",
        ])
        .arg(&plan)
        .assert()
        .code(3);
    w.cmd()
        .args(["plan", "check"])
        .arg(&plan)
        .assert()
        .success()
        .stdout(predicate::str::contains("63 rows satisfy the row contract"));
    w.cmd()
        .args(["plan", "check", "--offline"])
        .arg(&plan)
        .assert()
        .success();
    w.cmd()
        .args(["plan", "show", "--rows", "2"])
        .arg(&plan)
        .assert()
        .success()
        .stdout(predicate::str::contains("udhr-eng/preamble"));
    // A broken plan: every violation listed, exit 2.
    let bad = w.work.path().join("bad.json");
    let mut v: serde_json::Value = serde_json::from_slice(&std::fs::read(&plan).unwrap()).unwrap();
    v["rows"][0]["section_type"] = serde_json::Value::Null;
    v["rows"][1]["title"] = serde_json::json!(7);
    v["rows"][2]["unit_kind"] = serde_json::json!("nope");
    std::fs::write(&bad, serde_json::to_vec(&v).unwrap()).unwrap();
    let o = w.cmd().args(["plan", "check"]).arg(&bad).output().unwrap();
    assert_eq!(o.status.code(), Some(2));
    assert!(
        stderr(&o).contains("row 2 (udhr-eng/article-1), title: must be a string, found a number"),
        "{}",
        stderr(&o)
    );
    v["rows"][1]["title"] = serde_json::json!("Article 1");
    std::fs::write(&bad, serde_json::to_vec(&v).unwrap()).unwrap();
    let o = w
        .cmd()
        .args(["--json", "plan", "check"])
        .arg(&bad)
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(2));
    let j: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(j["violations"].as_array().unwrap().len(), 2, "{j}");
}

#[test]
fn plan_check_reads_a_plan_that_can_be_read_only_once() {
    // A FIFO, as `cutter plan check <(zcat plan.json.gz)` gives: copied once, then read.
    let w = World::new();
    let fifo = w.work.path().join("plan.fifo");
    let st = std::process::Command::new("mkfifo")
        .arg(&fifo)
        .status()
        .unwrap();
    assert!(st.success());
    let (from, to) = (w.plan.clone(), fifo.clone());
    let writer = std::thread::spawn(move || {
        let bytes = std::fs::read(from).unwrap();
        std::fs::write(to, bytes).unwrap();
    });
    let o = w
        .cmd()
        .args(["--json", "plan", "check", "--offline"])
        .arg(&fifo)
        .output()
        .unwrap();
    writer.join().unwrap();
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(v["valid"], true);
    assert_eq!(v["rows"], 12);
    // The same digest as the regular file's.
    let r: serde_json::Value = serde_json::from_slice(
        &w.cmd()
            .args(["--json", "plan", "check", "--offline"])
            .arg(&w.plan)
            .output()
            .unwrap()
            .stdout,
    )
    .unwrap();
    assert_eq!(v["plan_digest"], r["plan_digest"]);
}

#[test]
fn a_hold_is_released_only_after_compensation_and_with_both_approvals() {
    let w = World::new();
    let a = w.disarm("r-hold");
    w.run_live("r-hold", &a)
        .env("CUTTER_FAILPOINT", "leg_b_record:before_commit:error")
        .assert()
        .code(4);
    w.cmd()
        .args(["hold", "show"])
        .assert()
        .code(4)
        .stdout(predicate::str::contains("HOLD by run r-hold"));
    // The release is approved for that purpose (the run's own live-run approvals are
    // refused by every check, below).
    let h = w.approvals_with(
        "r-hold",
        &w.plan,
        [0, 1],
        cutter_core::Purpose::HoldRelease,
        None,
        w.database(),
        3600,
    );
    // Not before the matrix's compensation…
    w.cmd()
        .args(["hold", "release", "--approval", &h[0], "--approval", &h[1]])
        .assert()
        .code(3)
        .stderr(predicate::str::contains("compensate first"));
    w.cmd()
        .args(["compensate", "--run-id", "r-hold"])
        .assert()
        .success();
    // …and not without both approvals for the held run.
    w.cmd()
        .args(["hold", "release", "--approval", &h[0]])
        .assert()
        .code(3)
        .stderr(predicate::str::contains("no valid SG_2 approval"));
    w.cmd()
        .args(["hold", "release", "--approval", &a[0], "--approval", &a[1]])
        .assert()
        .code(3)
        .stderr(predicate::str::contains(
            "approves purpose live-run, but this action needs a hold-release approval",
        ));
    assert!(w.hold_exists());
    w.cmd()
        .args(["hold", "release", "--approval", &h[0], "--approval", &h[1]])
        .assert()
        .success()
        .stdout(predicate::str::contains(
            "HOLD of run r-hold released; the kill-switch stays engaged",
        ));
    assert!(!w.hold_exists());
    assert!(w.kill_switch().contains("engaged"));
    w.cmd()
        .args(["hold", "show"])
        .assert()
        .success()
        .stdout(predicate::str::contains("no HOLD"));
}

/// The HOLD file as JSON (panics if absent).
fn hold_of(w: &World) -> serde_json::Value {
    serde_json::from_slice(&std::fs::read(w.state.join("locks/HOLD")).unwrap()).unwrap()
}

/// SG_3 escalations the ledger holds for `run`.
fn sg3_rows(w: &World, run: &str) -> usize {
    cutter_governance::run_status_in_db(&mut w.db.admin(), &cutter_core::RunId::new(run).unwrap())
        .unwrap()
        .sg3_escalations
        .len()
}

/// The journal lines of `run`, in order.
fn journal_lines(w: &World, run: &str) -> Vec<serde_json::Value> {
    std::fs::read_to_string(w.state.join(format!("runs/{run}/journal.jsonl")))
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect()
}

/// The process died right after journaling a phase's failure, before any of the
/// failure's effects: no re-armed kill-switch, no post snapshot, no HOLD, no SG_3.
/// `recover` carries them all out, once.
#[test]
fn recover_carries_out_the_failure_effects_a_crash_left_undone() {
    let w = World::new();
    let run = "r-died-held";
    let a = w.disarm(run);
    // Killed inside leg B's transaction: the journal ends with its start…
    let o = w
        .run_live(run, &a)
        .env("CUTTER_FAILPOINT", "leg_b_record:before_commit:abort")
        .output()
        .unwrap();
    assert!(!o.status.success());
    // …then the failure's journal line, as `fail` writes it before its effects.
    let journal = w.state.join(format!("runs/{run}/journal.jsonl"));
    let mut f = std::fs::OpenOptions::new()
        .append(true)
        .open(&journal)
        .unwrap();
    std::io::Write::write_all(
        &mut f,
        b"{\"at_ms\":1,\"event\":\"phase_failed\",\"phase\":\"leg_b_record\",\"reason\":\"connection to the server was lost\"}\n",
    )
    .unwrap();
    drop(f);
    let rollback = w.state.join(format!("rollback/{run}"));
    assert!(!w.hold_exists());
    assert!(w.kill_switch().contains("disarmed"), "{}", w.kill_switch());
    assert!(!rollback.join("sg3.json").exists() && !rollback.join("post.json").exists());
    assert_eq!(sg3_rows(&w, run), 0);
    // run.json, rewritten right after the journal line, may say running or held.
    let b = w.approvals("r-next");
    w.run_live("r-next", &b)
        .assert()
        .code(3)
        .stderr(predicate::str::contains(format!(
            "run {run} did not finish (running leg_b_record); run `cutter recover`"
        )));
    let run_json = w.state.join(format!("runs/{run}/run.json"));
    let mut v: serde_json::Value =
        serde_json::from_slice(&std::fs::read(&run_json).unwrap()).unwrap();
    v["machine"]["state"] = serde_json::json!({
        "state": "held", "failed_phase": "leg_b_record",
        "reason": "connection to the server was lost", "compensation": "a"
    });
    std::fs::write(&run_json, serde_json::to_vec(&v).unwrap()).unwrap();
    // Held without a HOLD: no other run may start before `recover`.
    w.run_live("r-next", &b)
        .assert()
        .code(3)
        .stderr(predicate::str::contains(format!(
            "run {run} is held after failure of leg_b_record but no HOLD is present"
        )));

    let r = w.cmd().args(["recover"]).output().unwrap();
    assert_eq!(r.status.code(), Some(4), "{}\n{}", stdout(&r), stderr(&r));
    assert!(
        stdout(&r).contains(
            "missing: the kill-switch re-arm, the post snapshot, the HOLD, the SG_3 record"
        ),
        "{}",
        stdout(&r)
    );
    assert!(stdout(&r).contains("compensation A:"), "{}", stdout(&r));
    let hold = hold_of(&w);
    assert_eq!(hold["run_id"], run, "{hold}");
    assert_eq!(hold["failed_phase"], "leg_b_record", "{hold}");
    assert_eq!(
        hold["reason"], "connection to the server was lost",
        "{hold}"
    );
    assert_eq!(hold["compensation"], "a", "{hold}");
    for (key, file) in [("pre_snapshot", "pre.json"), ("post_snapshot", "post.json")] {
        let p = hold[key]
            .as_str()
            .unwrap_or_else(|| panic!("{key}: {hold}"));
        assert_eq!(std::path::Path::new(p), rollback.join(file));
        assert!(rollback.join(file).exists(), "{file}");
    }
    assert!(w.kill_switch().contains("engaged"), "{}", w.kill_switch());
    let sg3: serde_json::Value =
        serde_json::from_slice(&std::fs::read(rollback.join("sg3.json")).unwrap()).unwrap();
    assert_eq!(sg3["run_id"], run);
    assert_eq!(sg3["failed_phase"], "leg_b_record");
    assert_eq!(sg3["reason"], "connection to the server was lost");
    assert!(sg3["pre_snapshot"].is_object() && sg3["post_snapshot"].is_object());
    assert_eq!(sg3_rows(&w, run), 1, "the SG_3 ledger row");
    // The gate now sees the HOLD.
    w.run_live("r-next", &b)
        .assert()
        .code(3)
        .stderr(predicate::str::contains(format!("a HOLD from run {run}")));

    // Again: nothing is missing, nothing is written twice.
    let hold_bytes = std::fs::read(w.state.join("locks/HOLD")).unwrap();
    let r = w.cmd().args(["recover"]).output().unwrap();
    assert_eq!(r.status.code(), Some(0), "{}\n{}", stdout(&r), stderr(&r));
    assert!(stdout(&r).contains("nothing to recover"), "{}", stdout(&r));
    assert_eq!(
        std::fs::read(w.state.join("locks/HOLD")).unwrap(),
        hold_bytes
    );
    assert_eq!(sg3_rows(&w, run), 1);
    // Only the re-arm missing (disarmed again by hand): only the re-arm is carried out.
    std::fs::write(
        w.state.join("state/kill_switch.json"),
        format!("{{\"state\":\"disarmed\",\"run_id\":\"{run}\"}}"),
    )
    .unwrap();
    let r = w.cmd().args(["--json", "recover"]).output().unwrap();
    assert_eq!(r.status.code(), Some(4), "{}\n{}", stdout(&r), stderr(&r));
    let j: serde_json::Value = serde_json::from_slice(&r.stdout).unwrap();
    assert_eq!(j["runs"][0]["run_id"], run, "{j}");
    assert_eq!(
        j["runs"][0]["reapplied"],
        serde_json::json!([{"effect": "rearm_kill_switch"}]),
        "{j}"
    );
    assert!(w.kill_switch().contains("engaged"));
    assert_eq!(
        std::fs::read(w.state.join("locks/HOLD")).unwrap(),
        hold_bytes
    );
    assert_eq!(sg3_rows(&w, run), 1);
    // The held run goes on as any held run: compensation A.
    w.cmd()
        .args(["compensate", "--run-id", run])
        .assert()
        .success();
}

/// Killed right after the enact committed, before the journal recorded it: `recover`
/// records the commit through the state machine and carries out its effect, the
/// kill-switch re-arm. A run journaled as succeeded whose re-arm was lost gets it too;
/// a kill-switch disarmed for another run is left alone.
#[test]
fn recover_after_a_kill_right_after_the_enact_commits_rearms_the_kill_switch() {
    let w = World::new();
    let run = "r-died-enact";
    let a = w.disarm(run);
    let o = w
        .run_live(run, &a)
        .env("CUTTER_FAILPOINT", "lifecycle_enact:after_commit:abort")
        .output()
        .unwrap();
    assert!(!o.status.success());
    let last = journal_lines(&w, run).pop().unwrap();
    assert_eq!(last["event"], "phase_started", "{last}");
    assert_eq!(last["phase"], "lifecycle_enact", "{last}");
    assert!(w.kill_switch().contains("disarmed"), "{}", w.kill_switch());

    let r = w.cmd().args(["recover"]).output().unwrap();
    assert_eq!(r.status.code(), Some(0), "{}\n{}", stdout(&r), stderr(&r));
    let text = stdout(&r);
    assert!(
        text.contains("lifecycle_enact committed in the database after the journal's last line"),
        "{text}"
    );
    assert!(text.contains("the run had in fact succeeded"), "{text}");
    assert!(
        w.kill_switch().contains("engaged"),
        "the enact's commit re-arms the kill-switch: {}",
        w.kill_switch()
    );
    assert!(!w.hold_exists());
    let last = journal_lines(&w, run).pop().unwrap();
    assert_eq!(last["event"], "phase_committed", "{last}");
    assert_eq!(last["phase"], "lifecycle_enact", "{last}");
    let runs: serde_json::Value = serde_json::from_slice(
        &w.cmd()
            .args(["--json", "runs", "list"])
            .output()
            .unwrap()
            .stdout,
    )
    .unwrap();
    assert_eq!(runs["runs"][0]["state"]["state"], "succeeded", "{runs}");

    // Journaled as succeeded, killed before the re-arm: recover re-arms.
    std::fs::write(
        w.state.join("state/kill_switch.json"),
        format!("{{\"state\":\"disarmed\",\"run_id\":\"{run}\"}}"),
    )
    .unwrap();
    let r = w.cmd().args(["recover"]).output().unwrap();
    assert_eq!(r.status.code(), Some(0), "{}\n{}", stdout(&r), stderr(&r));
    assert!(
        stdout(&r).contains(&format!(
            "run {run}: journal says succeeded, but the kill-switch is still disarmed for it"
        )),
        "{}",
        stdout(&r)
    );
    assert!(w.kill_switch().contains("engaged"), "{}", w.kill_switch());

    // Disarmed for the next run: not recover's to undo.
    w.disarm("r-after");
    let r = w.cmd().args(["recover"]).output().unwrap();
    assert_eq!(r.status.code(), Some(0), "{}", stderr(&r));
    assert!(stdout(&r).contains("nothing to recover"), "{}", stdout(&r));
    assert!(
        w.kill_switch().contains("\"run_id\": \"r-after\""),
        "{}",
        w.kill_switch()
    );
}
