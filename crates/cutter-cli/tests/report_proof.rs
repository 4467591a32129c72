//! A rehearsal's report takes its restore proof from the state directory (its ledger
//! went with its clone), and shows a record there only when the pinned backup signing
//! key signed it for that very backup: a record edited after signing, one whose
//! signature was removed, one signed by another key, one copied from another backup, and
//! any record while no signing key is pinned are each refused in the Markdown, JSON and
//! HTML reports, naming the file. The clone's "restored from … link(s)" line is said once.

mod common;

use std::path::{Path, PathBuf};

use common::{sign_record, text, World};
use serde_json::Value;

/// A rehearsal of `run` with the world's plan; its whole output (stdout, then stderr).
fn dry_run(w: &World, run: &str) -> String {
    let o = w.dry_run(run).output().unwrap();
    assert!(o.status.success(), "{run}: {}", text(&o));
    text(&o)
}

/// The report of `run` as `--json`, Markdown and HTML.
fn report(w: &World, run: &str) -> (Value, String, String) {
    let o = w
        .cmd()
        .args(["--json", "report", "--run-id", run])
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", text(&o));
    let v: Value = serde_json::from_slice(&o.stdout).unwrap();
    let format = |f: &str| {
        let o = w
            .cmd()
            .args(["report", "--run-id", run, "--format", f])
            .output()
            .unwrap();
        assert!(o.status.success(), "{}", text(&o));
        String::from_utf8(o.stdout).unwrap()
    };
    (v["report"].clone(), format("markdown"), format("html"))
}

/// The proof record of backup `name` and its signature.
fn record_of(w: &World, name: &str) -> (PathBuf, PathBuf) {
    let record = w.state.join(format!("backups/{name}.restore-proof.json"));
    let sig = cutter_backup::record_signature_path(&record);
    (record, sig)
}

#[test]
fn a_rehearsal_report_shows_only_a_restore_proof_record_signed_for_its_own_backup() {
    let w = World::new();
    let first = "r-proof.dry-run-1";
    let second = "r-proof.dry-run-2";
    let out = dry_run(&w, "r-proof");
    assert_eq!(
        out.matches("the clone was restored from 1 link(s) of backup chain")
            .count(),
        1,
        "said once: {out}"
    );
    // The second rehearsal's backup is an increment on the first's.
    let out = dry_run(&w, "r-proof");
    let line = format!(
        "the clone was restored from 2 link(s) of backup chain {first}: {first} → {second}"
    );
    assert_eq!(out.matches(&line).count(), 1, "said once: {out}");

    // Nothing proven yet: no proof, no error.
    let (v, md, _) = report(&w, first);
    assert!(
        v["restore_proof"].is_null() && v["restore_proof_error"].is_null(),
        "{v}"
    );
    assert!(
        md.contains("## Restore proof\n\nNot run for this backup"),
        "{md}"
    );

    // (a) The genuine record, signed by the pinned key for this backup: shown.
    let artifact = w.state.join(format!("backups/{first}.dump.pgp"));
    w.restore_proof(&artifact);
    let (record, sig) = record_of(&w, first);
    let genuine = std::fs::read(&record).unwrap();
    let genuine_sig = std::fs::read(&sig).unwrap();
    let manifest: Value = serde_json::from_slice(
        &std::fs::read(w.state.join(format!("backups/{first}.manifest.json"))).unwrap(),
    )
    .unwrap();
    let (v, md, html) = report(&w, first);
    assert_eq!(
        v["restore_proof"],
        serde_json::from_slice::<Value>(&genuine).unwrap(),
        "{v}"
    );
    assert_eq!(
        v["restore_proof"]["artifact_sha256"], manifest["sha256"],
        "{v}"
    );
    assert!(v["restore_proof_error"].is_null(), "{v}");
    assert!(
        md.contains("## Restore proof\n\nStatus: PASSED: the backup restored into a throwaway cluster and matched its manifest."),
        "{md}"
    );
    assert!(html.contains("<table id=\"restore-proof\">"), "{html}");

    let restore_genuine = || {
        std::fs::write(&record, &genuine).unwrap();
        std::fs::write(&sig, &genuine_sig).unwrap();
    };
    // Refused: no proof in any form, and the error names the file, why, and what to do.
    let refused = |what: &str, run: &str, file: &Path, why: &str, next: &str| {
        let (v, md, html) = report(&w, run);
        assert!(v["restore_proof"].is_null(), "{what}: {v}");
        let e = v["restore_proof_error"]
            .as_str()
            .unwrap_or_else(|| panic!("{what}: {v}"));
        let file = file.display().to_string();
        for n in [file.as_str(), why, next] {
            assert!(e.contains(n), "{what}: {n:?} not in {e}");
        }
        assert!(
            md.contains("## Restore proof\n\nStatus: not usable: "),
            "{what}: {md}"
        );
        assert!(md.contains(&file), "{what}: {md}");
        for shown in ["PASSED", "| rows in manifest |"] {
            assert!(!md.contains(shown), "{what}: {shown} in {md}");
        }
        assert!(!html.contains("id=\"restore-proof\""), "{what}: {html}");
        assert!(!html.contains("PASSED"), "{what}: {html}");
    };

    // (b) The genuine record with a field edited: its signature no longer verifies.
    let mut edited: Value = serde_json::from_slice(&genuine).unwrap();
    let rows = edited["tables"][0]["expected"]["rows"].as_u64().unwrap();
    edited["tables"][0]["expected"]["rows"] = Value::from(rows + 1);
    edited["tables"][0]["actual"]["rows"] = Value::from(rows + 1);
    std::fs::write(&record, serde_json::to_vec_pretty(&edited).unwrap()).unwrap();
    refused(
        "edited",
        first,
        &record,
        "does not verify",
        "cutter backup restore-proof",
    );

    // (c) Written by hand, its signature removed.
    std::fs::write(&record, serde_json::to_vec_pretty(&edited).unwrap()).unwrap();
    std::fs::remove_file(&sig).unwrap();
    refused(
        "unsigned",
        first,
        &record,
        "unsigned",
        "cutter backup restore-proof",
    );

    // (d) Signed by a key other than the pinned one.
    let other =
        cutter_backup::generate_keys(w.work.path(), "other", "Other <other@test.invalid>", None)
            .unwrap();
    std::fs::write(&record, &genuine).unwrap();
    sign_record(&other.secret_key, &record, &genuine);
    refused(
        "another key",
        first,
        &record,
        "does not verify",
        "cutter backup restore-proof",
    );
    restore_genuine();
    assert!(report(&w, first).0["restore_proof_error"].is_null());

    // (e) The genuine record and signature copied to the second rehearsal's backup.
    let (copied, copied_sig) = record_of(&w, second);
    std::fs::copy(&record, &copied).unwrap();
    std::fs::copy(&sig, &copied_sig).unwrap();
    refused(
        "copied",
        second,
        &copied,
        "a record of another backup",
        "cutter backup restore-proof",
    );

    // No signing key pinned: no record can be trusted, so none is shown.
    let config = std::fs::read_to_string(&w.config).unwrap();
    let unpinned: String = config
        .lines()
        .filter(|l| !l.starts_with("signing_fingerprint"))
        .map(|l| format!("{l}\n"))
        .collect();
    assert_ne!(config, unpinned);
    std::fs::write(&w.config, unpinned).unwrap();
    refused(
        "no pin",
        first,
        &record,
        "only a record the pinned backup signing key signed counts, and no backup signing key is pinned",
        "set [backup].signing_fingerprint",
    );
}
