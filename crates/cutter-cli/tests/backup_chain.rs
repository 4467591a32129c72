//! Runs over a backup chain. `[run] prove_backup`: a live run whose pre-write backup
//! cannot be proven writes nothing (a wrong secret key; an artifact altered between the
//! backup and its proof), and each mode — before-write (full, then increment proof),
//! after-run, off — is recorded in run.json and in the Markdown, JSON and HTML reports.
//! A dry-run's clone is restored from the chain: full backup and every increment.

mod common;

use std::io::Read as _;

use common::{plan_json, text, World};
use serde_json::Value;

fn run_json(w: &World, run: &str) -> Value {
    serde_json::from_slice(&std::fs::read(w.state.join(format!("runs/{run}/run.json"))).unwrap())
        .unwrap()
}

fn report(w: &World, run: &str) -> (Value, String, String) {
    let dir = w.state.join(format!("runs/{run}"));
    (
        serde_json::from_slice(&std::fs::read(dir.join("report.json")).unwrap()).unwrap(),
        std::fs::read_to_string(dir.join("report.md")).unwrap(),
        std::fs::read_to_string(dir.join("report.html")).unwrap(),
    )
}

/// Everything a refused proof must leave: the run held in pre_write_backup, nothing
/// written, the kill-switch re-armed, the proof's failure recorded.
fn assert_nothing_written(w: &World, run: &str, before: &cutter_core::Snapshot, out: &str) {
    assert!(out.contains("could not be proven"), "{out}");
    assert!(out.contains("nothing was written"), "{out}");
    // No unit or version was written (the ledger holds the recorded approvals and the
    // SG_3 escalation, as for any run held before cut_leg_a).
    let after = w.snapshot();
    for t in ["public.information_unit", "public.unit_version"] {
        assert_eq!(after.rows(t), before.rows(t), "{t}: {out}");
    }
    assert!(w.hold_exists(), "{out}");
    assert!(w.kill_switch().contains("engaged"), "{}", w.kill_switch());
    let r = run_json(w, run);
    assert!(r["context"]["units_created"].is_null(), "{r}");
    let p = &r["context"]["backup_proof"];
    assert_eq!(p["mode"], "before-write", "{r}");
    assert_eq!(p["passed"], false, "{r}");
    assert!(r["context"]["change_set_id"].is_null(), "{r}");
}

#[test]
fn a_backup_the_configured_secret_key_cannot_decrypt_stops_the_run_before_it_writes() {
    let w = World::new();
    // The operator configured another key's secret half: the backup is encrypted to the
    // pinned recipient, so nothing on this host could restore it.
    let other =
        cutter_backup::generate_keys(w.work.path(), "other", "Other <o@test.invalid>", None)
            .unwrap();
    let cfg = std::fs::read_to_string(&w.config).unwrap();
    let (head, tail) = cfg.split_once("secret_key = \"").unwrap();
    let (_, tail) = tail.split_once('"').unwrap();
    let cfg = format!(
        "{head}secret_key = \"{}\"{}",
        other.secret_key.display(),
        tail.replace("passphrase_file", "# passphrase_file")
    );
    std::fs::write(&w.config, cfg).unwrap();
    let before = w.snapshot();
    let a = w.disarm("r-wrong-key");
    let o = w.run_live("r-wrong-key", &a).output().unwrap();
    let out = text(&o);
    assert_eq!(o.status.code(), Some(4), "held: {out}");
    assert!(out.contains("pre_write_backup"), "{out}");
    assert_nothing_written(&w, "r-wrong-key", &before, &out);
}

#[test]
fn an_artifact_altered_between_backup_and_proof_stops_the_run_before_it_writes() {
    let w = World::new();
    let before = w.snapshot();
    let run = "r-altered";
    let a = w.disarm(run);
    let mut cmd = w.std_cmd();
    cmd.args(["run", "--mode", "live", "--run-id", run, "--plan"])
        .arg(&w.plan)
        .env("CUTTER_FAILPOINT", "pre_write_backup:before_proof:sleep=8");
    for x in &a {
        cmd.args(["--approval", x]);
    }
    let (child, mut stderr, seen) = common::spawn_to_failpoint(cmd);
    // One byte of the signed artifact changes while the run waits to prove it.
    let artifact = w.state.join(format!("backups/{run}.dump.pgp"));
    let mut bytes = std::fs::read(&artifact).unwrap();
    let i = bytes.len() / 2;
    bytes[i] ^= 0x01;
    std::fs::write(&artifact, &bytes).unwrap();
    let mut rest = String::new();
    stderr.read_to_string(&mut rest).unwrap();
    let o = child.wait_with_output().unwrap();
    let out = format!("{}{seen}{rest}", String::from_utf8_lossy(&o.stdout));
    assert_eq!(o.status.code(), Some(4), "held: {out}");
    assert!(
        out.contains("sha256"),
        "the proof names the altered artifact: {out}"
    );
    assert_nothing_written(&w, run, &before, &out);
}

#[test]
fn each_prove_backup_mode_is_recorded_in_the_reports() {
    let w = World::new();
    // (run, CUTTER_PROVE_BACKUP, proof kind, verdict, Markdown line)
    let cases: [(&str, Option<&str>, Value, Value, &str); 4] = [
        (
            "r-bw-full",
            None,
            "full".into(),
            true.into(),
            "prove_backup = before-write: full proof PASSED",
        ),
        (
            "r-bw-incr",
            None,
            "increment".into(),
            true.into(),
            "prove_backup = before-write: increment proof PASSED",
        ),
        (
            "r-after",
            Some("after-run"),
            "increment".into(),
            true.into(),
            "prove_backup = after-run: increment proof PASSED",
        ),
        (
            "r-off",
            Some("off"),
            Value::Null,
            Value::Null,
            "prove_backup = off: not proven by the run",
        ),
    ];
    for (i, (run, mode, kind, passed, line)) in cases.into_iter().enumerate() {
        std::fs::write(&w.plan, plan_json(&format!("prove-doc-{i}"), 4)).unwrap();
        let a = w.disarm(run);
        let mut c = w.run_live(run, &a);
        if let Some(m) = mode {
            c.env("CUTTER_PROVE_BACKUP", m);
        }
        let o = c.output().unwrap();
        let out = text(&o);
        assert!(o.status.success(), "{run}: {out}");
        assert!(
            out.contains(&format!("backup proof: {line}")),
            "{run}: {out}"
        );
        let (js, md, html) = report(&w, run);
        let p = &js["context"]["backup_proof"];
        assert_eq!(p["mode"], mode.unwrap_or("before-write"), "{run}: {js}");
        assert_eq!(p["kind"], kind, "{run}: {p}");
        assert_eq!(p["passed"], passed, "{run}: {p}");
        assert!(
            md.contains(&format!("- backup proof: {line}")),
            "{run}: {md}"
        );
        assert!(html.contains(&format!("Backup proof: {line}")), "{run}");
        // A proof that ran left its record beside the artifact.
        if let Some(record) = p["record"].as_str() {
            let rec: Value = serde_json::from_slice(
                &std::fs::read(w.state.join("backups").join(record)).unwrap(),
            )
            .unwrap();
            assert_eq!(rec["passed"], true, "{run}: {rec}");
        } else {
            assert!(kind.is_null(), "{run}: {p}");
        }
    }
}

#[test]
fn a_dry_run_clone_is_restored_from_the_full_backup_and_every_increment() {
    let w = World::new();
    // A full backup (r-a), then an increment (r-b) holding document b's units only.
    for (run, doc) in [("r-a", "chain-doc-a"), ("r-b", "chain-doc-b")] {
        std::fs::write(&w.plan, plan_json(doc, 4)).unwrap();
        let a = w.disarm(run);
        let o = w.run_live(run, &a).output().unwrap();
        assert!(o.status.success(), "{run}: {}", text(&o));
    }
    let dry = |run: &str| {
        let o = w.dry_run(run).output().unwrap();
        let out = text(&o);
        assert!(o.status.success(), "{run}: {out}");
        out
    };
    // Document b again, unchanged: its units came to the clone only with the increment,
    // so the rehearsal finds them and writes nothing new.
    let out = dry("r-c");
    assert!(
        out.contains(
            "the clone was restored from 3 link(s) of backup chain r-a: r-a → r-b → r-c.dry-run-1"
        ),
        "{out}"
    );
    assert!(out.contains("succeeded: 0 units created"), "{out}");
    // A new document: its units take ids after every restored one (the id sequences were
    // moved past the increments' rows), so the rehearsal writes them all.
    std::fs::write(&w.plan, plan_json("chain-doc-c", 5)).unwrap();
    let out = dry("r-d");
    assert!(out.contains("from 4 link(s)"), "{out}");
    assert!(
        out.contains("succeeded: 5 units created, verify 5/5 matched, 5 enacted"),
        "{out}"
    );
}

#[test]
fn prune_keeps_the_newest_chains_and_every_link_a_held_run_needs() {
    let w = World::new();
    let create = |name: &str, full: bool| {
        let mut c = w.cmd();
        c.args(["backup", "create", "--name", name]);
        if full {
            c.arg("--full");
        }
        let o = c.output().unwrap();
        assert!(o.status.success(), "{name}: {}", text(&o));
    };
    // Chain a0: full, two increments, then the backup of a run held in cut_leg_a.
    create("a0", true);
    create("a1", false);
    create("a2", false);
    let a = w.disarm("r-held");
    let o = w
        .run_live("r-held", &a)
        .env("CUTTER_FAILPOINT", "cut_leg_a:before_commit:error")
        .env("CUTTER_PROVE_BACKUP", "off")
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(4), "{}", text(&o));
    // Chain b0: full and one increment; chain c0: full.
    create("b0", true);
    create("b1", false);
    create("c0", true);
    let backups = w.state.join("backups");
    let present = |name: &str| backups.join(format!("{name}.dump.pgp")).exists();
    let all = ["a0", "a1", "a2", "r-held", "b0", "b1", "c0"];

    // --dry-run lists what would go and removes nothing.
    let o = w
        .cmd()
        .args(["backup", "prune", "--keep-chains", "1", "--dry-run"])
        .output()
        .unwrap();
    let out = text(&o);
    assert!(o.status.success(), "{out}");
    for l in ["would remove: b0 ", "would remove: b1 "] {
        assert!(out.contains(l), "{l}: {out}");
    }
    assert!(out.contains("keep (kept chain): c0 "), "{out}");
    assert!(
        out.contains("keep (the backup of a held or unresolved run): r-held "),
        "{out}"
    );
    for l in ["a0", "a1", "a2"] {
        assert!(
            out.contains(&format!("keep (link r-held needs it): {l} ")),
            "{l}: {out}"
        );
    }
    assert!(out.contains("nothing was removed"), "{out}");
    assert!(all.iter().all(|n| present(n)), "{out}");

    // The prune itself, as JSON.
    let o = w
        .cmd()
        .args(["--json", "backup", "prune", "--keep-chains", "1"])
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", text(&o));
    let v: Value = serde_json::from_slice(&o.stdout).unwrap();
    common::contract::success("backup_prune", &v);
    assert_eq!(v["removed"], 2, "{v}");
    assert_eq!(v["kept_chains"], serde_json::json!(["c0"]), "{v}");
    for gone in ["b0", "b1"] {
        assert!(!present(gone), "{gone}");
        for ext in ["manifest.json", "manifest.json.sig"] {
            assert!(
                !backups.join(format!("{gone}.{ext}")).exists(),
                "{gone}.{ext}"
            );
        }
    }
    for kept in ["a0", "a1", "a2", "r-held", "c0"] {
        assert!(present(kept), "{kept}");
    }
    // What was kept still forms whole chains: the held run's backup verifies back to its
    // full backup, and the kept chain takes the next increment.
    let pin = cutter_core::Fingerprint::new(
        std::fs::read_to_string(&w.config)
            .unwrap()
            .split("signing_fingerprint = \"")
            .nth(1)
            .unwrap()
            .split('"')
            .next()
            .unwrap(),
    )
    .unwrap();
    let links = cutter_backup::verify_chain(&backups.join("r-held.dump.pgp"), &pin).unwrap();
    let names: Vec<String> = links
        .iter()
        .map(|l| l.manifest.run_id.to_string())
        .collect();
    assert_eq!(names, ["a0", "a1", "a2", "r-held"]);
    create("c1", false);
    let m: Value =
        serde_json::from_slice(&std::fs::read(backups.join("c1.manifest.json")).unwrap()).unwrap();
    assert_eq!(m["chain"]["chain"], "c0", "{m}");
    assert_eq!(m["chain"]["kind"], "incremental", "{m}");
}
