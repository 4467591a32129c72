//! The backup and its restore proof against real PostgreSQL, pg_dump and pg_restore.

mod common;

use std::collections::BTreeMap;
use std::fs;

use common::{assert_secret_free, ChildWatcher, Fixture};
use cutter_backup::{
    pre_write_backup, restore_proof, verify_artifact, DumpCompression, PassphraseSource,
    RestoreConfig, MANIFEST_FORMAT,
};
use cutter_core::{mutation_surface, TableName};

fn server_stats(f: &Fixture) -> BTreeMap<TableName, cutter_core::TableStat> {
    let mut c = f.db.admin();
    let mut tx = c.transaction().unwrap();
    cutter_pg::surface::surface_stats(&mut tx, None).unwrap()
}

#[test]
fn backup_then_restore_proof_round_trip() {
    let f = Fixture::new();
    let expected = server_stats(&f);
    let watcher = ChildWatcher::start(&["pg_dump", "pg_restore"]);

    let mut calls = 0u64;
    let mut last = 0u64;
    let art = pre_write_backup(&f.config("r-1").cross_check_digests(true), &mut |n| {
        calls += 1;
        assert!(n > last);
        last = n;
    })
    .expect("backup");
    assert!(calls >= 1);

    // The artifact, its manifest and the manifest's signature, nothing else.
    assert_eq!(
        f.listing(),
        vec!["r-1.dump.pgp", "r-1.manifest.json", "r-1.manifest.json.sig"]
    );
    let m = &art.manifest;
    assert_eq!(m.format, MANIFEST_FORMAT);
    assert_eq!(m.run_id.as_str(), "r-1");
    assert_eq!(m.artifact, "r-1.dump.pgp");
    assert_eq!(m.encryption.recipient, f.keys.fingerprint);
    assert_eq!(m.dump.compression, DumpCompression::None);
    assert_eq!(m.dump.plaintext_bytes, last);
    assert_eq!(m.server.system_identifier, f.db.system_identifier());
    assert_eq!(m.server.role, "cutter_verify");
    assert_eq!(m.size_bytes, fs::metadata(&art.path).unwrap().len());
    // Row counts and digests equal cutter-pg's snapshot of the same data, and come from
    // the dump stream.
    assert_eq!(m.tables, expected);
    assert_eq!(m.tables.len(), 10);
    let rows = |t: &str| m.tables[&TableName::try_from(t.to_string()).unwrap()].rows;
    assert_eq!(rows("public.information_unit"), 158);
    assert_eq!(rows("public.unit_version"), 165);
    assert_eq!(rows("public.iu_lifecycle_log"), 60);
    assert_eq!(rows("cutter_governance.review_decision"), 1);
    for t in mutation_surface() {
        assert_eq!(m.digest_sources[&t], "dump stream", "{t}");
    }
    // The manifest on disk is the one returned; the artifact verifies.
    let on_disk: cutter_backup::Manifest =
        serde_json::from_slice(&fs::read(&art.manifest_path).unwrap()).unwrap();
    assert_eq!(&on_disk, m);
    assert_eq!(verify_artifact(&art.path, &f.pin()).unwrap().manifest, *m);
    assert_eq!(m.signer.fingerprint, f.signing.fingerprint);
    assert_eq!(m.backup_facts().sha256, m.sha256);

    // Restore proof with the passphrase from a file.
    let record = f.dir.path().join("r-1.restore-proof.json");
    let seen = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
    let progress = seen.clone();
    let proof = restore_proof(
        &f.restore(&art.path)
            .record_to(&record, &f.signer)
            .on_progress(move |n| progress.lock().unwrap().push(n)),
    )
    .expect("restore proof");
    assert!(proof.passed, "{:?}", proof.failures);
    // Progress rises monotonically to the artifact's size.
    let seen = seen.lock().unwrap();
    assert!(seen.windows(2).all(|w| w[0] <= w[1]), "{seen:?}");
    assert_eq!(seen.last().copied(), Some(m.size_bytes));
    assert_eq!(proof.tables.len(), 10);
    assert!(proof.tables.iter().all(|t| t.ok));
    assert_eq!(proof.triggers["trg_iu_enacted_immut"], "O");
    assert_eq!(proof.triggers["trg_uv_enacted_immut"], "O");
    assert_eq!(proof.plaintext_bytes, m.dump.plaintext_bytes);
    assert_ne!(
        proof.restore_system_identifier,
        Some(m.server.system_identifier)
    );
    assert_eq!(proof.decrypted_with, f.keys.fingerprint);
    assert_eq!(proof.manifest_signed_by, f.signing.fingerprint);
    assert!(
        proof.restored_as.starts_with("cutter_restore_")
            && proof.restored_as.contains("not a superuser"),
        "{}",
        proof.restored_as
    );
    let recorded: cutter_backup::RestoreProof =
        serde_json::from_slice(&fs::read(&record).unwrap()).unwrap();
    assert_eq!(recorded, proof);
    // The throwaway cluster is gone.
    let dir = proof
        .restore_target
        .strip_prefix("throwaway cluster ")
        .unwrap();
    assert!(!std::path::Path::new(dir).exists(), "{dir} left behind");

    // Secrets never reached a child's arguments or environment; the password only
    // travels in a private passfile.
    let seen: Vec<_> = watcher
        .finish()
        .into_iter()
        .filter(|(_, s)| !s.cmdline.contains("--version"))
        .collect();
    let names: Vec<&str> = seen.iter().map(|(c, _)| c.as_str()).collect();
    assert!(names.contains(&"pg_dump"), "{names:?}");
    assert!(names.contains(&"pg_restore"), "{names:?}");
    for (comm, s) in &seen {
        assert_secret_free(&format!("{comm} arguments"), &s.cmdline, &f.secrets());
        assert_secret_free(&format!("{comm} environment"), &s.environ, &f.secrets());
        assert!(!s.environ.contains("PGPASSWORD="), "{comm}: {}", s.environ);
        assert!(s.environ.contains("PGPASSFILE="), "{comm}: {}", s.environ);
    }
    let dump = seen.iter().find(|(c, _)| c == "pg_dump").unwrap();
    assert_eq!(
        dump.1.cmdline.matches("--table=").count(),
        10,
        "{}",
        dump.1.cmdline
    );
    assert!(dump.1.cmdline.contains("--snapshot="));
    assert!(dump.1.environ.contains("PGUSER=cutter_verify"));

    // Nothing readable left anywhere, and nothing in the manifest that is secret.
    f.assert_no_plaintext();
    assert_secret_free("the manifest", &m.to_json(), &f.secrets());
    assert_secret_free("the proof", &proof.to_json(), &f.secrets());
    assert_secret_free(
        "the config's Debug",
        &format!("{:?}", f.config("x")),
        &f.secrets(),
    );
    let rc = f.restore(&art.path);
    assert_secret_free(
        "the restore config's Debug",
        &format!("{rc:?}"),
        &f.secrets(),
    );
}

/// Values that stress the COPY-text → record-text translation; the stream digest must
/// equal the server's (cross-check) for every table.
#[test]
fn stream_digests_equal_the_servers_on_hostile_content() {
    let f = Fixture::new();
    let mut c = f.db.admin();
    c.batch_execute(
        r#"
        INSERT INTO cutter_governance.review_decision (run_id, change_set_id, decision, payload, actor) VALUES
          ('q"uote', NULL, 'back\slash', '{"a": "x\"y\\z", "b": [1, 2.5e-7, null, true], "c": "tab\there"}', 'a,b'),
          ('(paren)', '', ' lead', '{}', 'new
line'),
          ('cr' || chr(13) || 'vt' || chr(11) || 'ff' || chr(12) || 'bs' || chr(8), 'x', 'Điều 1 — “quoted” ✓', '{"k": "🙂"}', 'NULL'),
          ('\N', 'N', '\\N', '"just a string"', E'\\');
        INSERT INTO cutter_governance.dot_pair_signature (run_id, gate, signer_fpr, statement, signature)
          SELECT 'r', 'SG_1', 'F', repeat('long value with spaces and "quotes" and \ ', 60000), 'sig';
        INSERT INTO cutter_governance.dot_pair_signature (run_id, gate, signer_fpr, statement, signature)
          SELECT 'r', 'SG_2', 'F', repeat('x', 2500000), 'nospaces';
        INSERT INTO cutter_governance.verify_result (run_id, change_set_id, checked, matched, mismatched, verdict, details)
          VALUES ('r', 'cs', 9223372036854775807, -1, 0, '', '{"nested": {"deep": ["a\\b"]}}');
        -- Rows that moved: physical order differs from id order.
        UPDATE public.information_unit SET updated_at = updated_at + interval '1 second'
          WHERE id % 7 = 0 AND lifecycle_status = 'draft';
        UPDATE cutter_governance.review_decision SET actor = actor || '!' WHERE id % 2 = 1;
        "#,
    )
    .expect("hostile rows");
    let art = pre_write_backup(&f.config("hostile").cross_check_digests(true), &mut |_| {})
        .expect("backup with cross-checked digests");
    for t in mutation_surface() {
        assert_eq!(art.manifest.digest_sources[&t], "dump stream", "{t}");
    }
    assert_eq!(art.manifest.tables, server_stats(&f));
    let proof = restore_proof(&f.restore(&art.path)).expect("restore proof of hostile content");
    assert!(proof.passed);
}

/// A table whose physical order is far from id order (beyond the reordering window)
/// is digested on the server, in the same snapshot; with pg_dump compression, all are.
#[test]
fn digests_fall_back_to_the_server_when_the_stream_cannot_give_them() {
    let f = Fixture::new();
    let mut c = f.db.admin();
    c.batch_execute(
        "INSERT INTO cutter_governance.verify_result (run_id, change_set_id, checked, matched, mismatched, verdict) \
           SELECT 'r', 'cs-' || g, g, g, 0, 'ok' FROM generate_series(1, 70000) g; \
         UPDATE cutter_governance.verify_result SET verdict = 'moved' \
           WHERE id = (SELECT min(id) FROM cutter_governance.verify_result);",
    )
    .unwrap();
    let vr = TableName::new("cutter_governance", "verify_result").unwrap();
    let art =
        pre_write_backup(&f.config("far").cross_check_digests(true), &mut |_| {}).expect("backup");
    let src = &art.manifest.digest_sources[&vr];
    assert!(
        src.starts_with("server (") && src.contains("physical order"),
        "{src}"
    );
    assert_eq!(art.manifest.tables, server_stats(&f));

    let art = pre_write_backup(
        &f.config("gz").compression(DumpCompression::Gzip(1)),
        &mut |_| {},
    )
    .expect("compressed backup");
    assert_eq!(art.manifest.dump.compression, DumpCompression::Gzip(1));
    assert!(art
        .manifest
        .digest_sources
        .values()
        .all(|s| s.starts_with("server (")));
    assert_eq!(art.manifest.tables, server_stats(&f));
    let proof = restore_proof(&f.restore(&art.path)).expect("restore proof of a compressed dump");
    assert!(proof.passed);
}

#[test]
fn an_existing_artifact_is_never_overwritten() {
    let f = Fixture::new();
    let first = pre_write_backup(&f.config("same"), &mut |_| {}).expect("first");
    let before = fs::read(&first.path).unwrap();
    let err = pre_write_backup(&f.config("same"), &mut |_| {}).unwrap_err();
    assert!(
        matches!(err, cutter_backup::Error::ArtifactExists { .. }),
        "{err}"
    );
    assert!(err.to_string().contains("never overwritten"), "{err}");
    assert_eq!(fs::read(&first.path).unwrap(), before);
    assert_eq!(
        f.listing(),
        vec![
            "same.dump.pgp",
            "same.manifest.json",
            "same.manifest.json.sig"
        ]
    );
    // An orphan manifest blocks the name too.
    fs::write(f.backups.join("other.manifest.json"), b"{}").unwrap();
    let err = pre_write_backup(&f.config("other"), &mut |_| {}).unwrap_err();
    assert!(
        matches!(err, cutter_backup::Error::ArtifactExists { .. }),
        "{err}"
    );
}

#[test]
fn passphrase_from_the_environment() {
    let f = Fixture::new();
    let art = pre_write_backup(&f.config("env"), &mut |_| {}).unwrap();
    let var = format!("CUTTER_TEST_PASSPHRASE_{}", std::process::id());
    std::env::set_var(&var, common::PASSPHRASE);
    let proof = restore_proof(
        &RestoreConfig::new(&art.path, &f.keys.secret_key, f.pin())
            .passphrase(PassphraseSource::Env(var.clone())),
    );
    std::env::remove_var(&var);
    assert!(proof.expect("restore proof").passed);
}
