//! The restore proof fails when it should: real backups of a real database, decrypted
//! into real throwaway clusters by the real pg_restore, compared with manifests that do
//! not describe what was restored, or restored without an intact immutability trigger.
//! And the proof record is written on every failure once a restore target exists.
//!
//! The manifest is signed: a manifest whose table figures were changed is refused
//! before anything is decrypted (see `authenticity.rs`). These tests re-sign the edited
//! manifest with the pinned signing key — what only its holder can do — so that the
//! comparison itself is exercised. A real manifest of another backup placed beside an
//! artifact is refused before decrypting (its sha256 is the other artifact's).

mod common;

use std::fs;
use std::path::Path;

use common::{fake_program, Fixture, PASSPHRASE};
use cutter_backup::{
    pre_write_backup, restore_proof, verify_artifact, Error, Manifest, PassphraseSource,
    RestoreConfig, RestoreProof,
};
use cutter_core::{mutation_surface, TableName};

fn config(f: &Fixture, artifact: &Path) -> RestoreConfig {
    RestoreConfig::new(artifact, &f.keys.secret_key, f.pin())
        .passphrase(PassphraseSource::File(f.passphrase_file.clone()))
}

/// Rewrites a manifest in place and re-signs it with the pinned signing key.
fn edit_manifest(f: &Fixture, path: &Path, edit: impl FnOnce(&mut Manifest)) {
    let mut m: Manifest = serde_json::from_slice(&fs::read(path).unwrap()).unwrap();
    edit(&mut m);
    fs::write(path, m.to_json()).unwrap();
    f.resign(path);
}

/// The proof record inside a [`Error::ProofFailed`].
fn failed(err: Error) -> (RestoreProof, String) {
    let text = err.to_string();
    match err {
        Error::ProofFailed { proof } => (*proof, text),
        other => panic!("expected the restore proof to fail on the comparison, got: {other}"),
    }
}

fn read_record(path: &Path) -> RestoreProof {
    let bytes = fs::read(path)
        .unwrap_or_else(|e| panic!("the proof record {} was not written: {e}", path.display()));
    serde_json::from_slice(&bytes).unwrap()
}

/// The throwaway cluster the proof used no longer exists.
fn assert_torn_down(proof: &RestoreProof) {
    let dir = proof
        .restore_target
        .strip_prefix("throwaway cluster ")
        .unwrap_or_else(|| panic!("unexpected target {:?}", proof.restore_target));
    assert!(!Path::new(dir).exists(), "{dir} left behind");
}

fn table(schema: &str, name: &str) -> TableName {
    TableName::new(schema, name).unwrap()
}

#[test]
fn a_row_count_the_restore_does_not_have_fails_the_proof_naming_the_table_and_both_counts() {
    let f = Fixture::new();
    let art = pre_write_backup(&f.config("rows"), &mut |_| {}).expect("backup");
    let iu = table("public", "information_unit");
    assert_eq!(art.manifest.tables[&iu].rows, 158);
    edit_manifest(&f, &art.manifest_path, |m| {
        m.tables.get_mut(&iu).unwrap().rows = 159;
    });
    // Re-signed by the signing key: the altered manifest verifies against the artifact.
    assert_eq!(
        verify_artifact(&art.path, &f.pin())
            .unwrap()
            .manifest
            .tables[&iu]
            .rows,
        159
    );

    let record = f.backups.join("rows.restore-proof.json");
    let err = restore_proof(&config(&f, &art.path).record_to(&record, &f.signer)).unwrap_err();
    let (proof, text) = failed(err);
    assert!(!proof.passed);
    assert_eq!(
        proof.failures,
        ["public.information_unit: 158 rows restored, the manifest says 159"],
        "{text}"
    );
    assert!(
        text.contains("rows.dump.pgp FAILED")
            && text.contains("public.information_unit: 158 rows restored, the manifest says 159"),
        "{text}"
    );
    assert_eq!(proof.tables.len(), 10);
    for check in &proof.tables {
        if check.table == iu {
            assert!(!check.ok);
            assert_eq!(check.expected.rows, 159);
            let actual = check.actual.expect("the table was restored");
            assert_eq!(actual.rows, 158);
            // The digest in the manifest was left alone, and the data is the same.
            assert_eq!(actual.digest, check.expected.digest);
        } else {
            assert!(check.ok, "{check:?}");
        }
    }
    assert_eq!(proof.triggers["trg_iu_enacted_immut"], "O");
    assert_eq!(proof.triggers["trg_uv_enacted_immut"], "O");
    assert_eq!(read_record(&record), proof);
    assert_torn_down(&proof);
    f.assert_no_plaintext();
}

/// Backup A, one row changed, backup B; B's manifest given A's table figures (a
/// manifest of a different database state, as far as the comparison can tell): the
/// proof of B fails on exactly that table, naming both digests. A's own manifest beside
/// B's artifact is refused before decrypting.
#[test]
fn a_manifest_of_a_different_database_state_fails_the_proof_naming_both_digests() {
    let f = Fixture::new();
    let a = pre_write_backup(&f.config("a"), &mut |_| {}).expect("backup A");
    let changed =
        f.db.admin()
            .execute(
                "UPDATE cutter_governance.review_decision SET actor = 'someone else' \
             WHERE run_id = 'canary-run'",
                &[],
            )
            .unwrap();
    assert_eq!(changed, 1);
    let b = pre_write_backup(&f.config("b"), &mut |_| {}).expect("backup B");
    let rd = table("cutter_governance", "review_decision");
    // The change shows in exactly one table's digest, not in its row count.
    for t in mutation_surface() {
        let (sa, sb) = (a.manifest.tables[&t], b.manifest.tables[&t]);
        assert_eq!(sa.rows, sb.rows, "{t}");
        assert_eq!(sa.digest == sb.digest, t != rd, "{t}");
    }
    let (expected, actual) = (a.manifest.tables[&rd].digest, b.manifest.tables[&rd].digest);

    // A's manifest itself cannot be paired with B's artifact: its sha256 is A's.
    let paired = f.dir.path().join("paired");
    fs::create_dir(&paired).unwrap();
    fs::copy(&b.path, paired.join("a.dump.pgp")).unwrap();
    fs::copy(&a.manifest_path, paired.join("a.manifest.json")).unwrap();
    fs::copy(&a.signature_path, paired.join("a.manifest.json.sig")).unwrap();
    let err = restore_proof(&config(&f, &paired.join("a.dump.pgp"))).unwrap_err();
    assert!(matches!(err, Error::ChecksumMismatch { .. }), "{err}");

    // B's manifest with A's table figures.
    let a_tables = a.manifest.tables.clone();
    edit_manifest(&f, &b.manifest_path, |m| m.tables = a_tables);
    let err = restore_proof(&config(&f, &b.path)).unwrap_err();
    let (proof, text) = failed(err);
    let line = format!(
        "cutter_governance.review_decision: content digest {actual} differs from the \
         manifest's {expected}"
    );
    assert_eq!(proof.failures, std::slice::from_ref(&line), "{text}");
    assert!(text.contains(&line), "{text}");
    assert!(
        text.contains(&actual.to_hex()) && text.contains(&expected.to_hex()),
        "{text}"
    );
    let bad: Vec<_> = proof.tables.iter().filter(|c| !c.ok).collect();
    assert_eq!(bad.len(), 1, "{:?}", proof.tables);
    assert_eq!(bad[0].table, rd);
    assert_eq!(bad[0].expected, a.manifest.tables[&rd]);
    assert_eq!(bad[0].actual, Some(b.manifest.tables[&rd]));
    assert_torn_down(&proof);
}

/// The dump carries each table's triggers as they are on the source: one immutability
/// trigger disabled there and the other dropped, the restored database has one disabled
/// and one missing, and the proof fails naming both, though every table matches.
#[test]
fn a_disabled_or_missing_immutability_trigger_fails_the_proof_naming_it() {
    let f = Fixture::new();
    f.db.admin()
        .batch_execute(
            "ALTER TABLE public.information_unit DISABLE TRIGGER trg_iu_enacted_immut; \
             DROP TRIGGER trg_uv_enacted_immut ON public.unit_version;",
        )
        .unwrap();
    let art = pre_write_backup(&f.config("trg"), &mut |_| {}).expect("backup");
    let err = restore_proof(&config(&f, &art.path)).unwrap_err();
    let (proof, text) = failed(err);
    assert_eq!(
        proof.failures,
        [
            "trigger trg_iu_enacted_immut is restored but not enabled (tgenabled = D)",
            "trigger trg_uv_enacted_immut is missing after the restore",
        ],
        "{text}"
    );
    assert!(
        text.contains("trg_iu_enacted_immut") && text.contains("trg_uv_enacted_immut"),
        "{text}"
    );
    assert!(proof.tables.iter().all(|c| c.ok), "{:?}", proof.tables);
    assert_eq!(proof.triggers.len(), 1, "{:?}", proof.triggers);
    assert_eq!(proof.triggers["trg_iu_enacted_immut"], "D");
    assert_torn_down(&proof);
}

/// A real pg_restore failure after the throwaway cluster was prepared: the source has
/// a trigger calling a function the reference schema does not provide (a `--table`
/// dump carries the trigger, not the function). The error is pg_restore's, and the
/// record is written with the reason. A second proof is refused before restoring,
/// because the record is never overwritten.
#[test]
fn a_pg_restore_failure_is_recorded_with_its_reason() {
    let f = Fixture::new();
    f.db.admin()
        .batch_execute(
            "CREATE FUNCTION public.audit_extra() RETURNS trigger LANGUAGE plpgsql \
               AS $$BEGIN RETURN NEW; END$$; \
             CREATE TRIGGER trg_audit_extra AFTER INSERT ON public.unit_version \
               FOR EACH ROW EXECUTE FUNCTION public.audit_extra();",
        )
        .unwrap();
    let art = pre_write_backup(&f.config("extra"), &mut |_| {}).expect("backup");
    let record = f.backups.join("extra.restore-proof.json");
    let err = restore_proof(&config(&f, &art.path).record_to(&record, &f.signer)).unwrap_err();
    let text = err.to_string();
    match &err {
        Error::ChildFailed {
            program,
            status,
            stderr,
            ..
        } => {
            assert!(program.ends_with("/pg_restore"), "{program}");
            assert_eq!(status, "exit status 1");
            assert!(stderr.contains("audit_extra"), "{stderr}");
        }
        other => panic!("expected pg_restore's failure, got: {other}"),
    }

    let proof = read_record(&record);
    assert!(!proof.passed);
    assert_eq!(proof.failures.len(), 1, "{:?}", proof.failures);
    let reason = &proof.failures[0];
    assert!(
        reason.starts_with("the restore into throwaway cluster ")
            && reason.contains("stopped before the comparison: ")
            && reason.contains(&text),
        "{reason}"
    );
    assert_eq!(proof.artifact, "extra.dump.pgp");
    assert_eq!(proof.artifact_sha256, art.manifest.sha256);
    assert_eq!(proof.decrypted_with, f.keys.fingerprint);
    assert_eq!(
        proof.source_system_identifier,
        art.manifest.server.system_identifier
    );
    assert!(proof.restore_system_identifier.is_some());
    assert_ne!(
        proof.restore_system_identifier,
        Some(proof.source_system_identifier)
    );
    assert_eq!(proof.tables.len(), 10);
    for check in &proof.tables {
        assert!(!check.ok && check.actual.is_none(), "{check:?}");
        assert_eq!(check.expected, art.manifest.tables[&check.table]);
    }
    assert!(proof.triggers.is_empty());
    assert_torn_down(&proof);
    f.assert_no_plaintext();
    common::assert_secret_free("the record", &proof.to_json(), &f.secrets());

    // Again, with the record in place: refused before pg_restore (or a cluster) runs.
    let before = fs::read(&record).unwrap();
    let (fake, marker) = fake_program(
        f.bin.path(),
        "pg_restore",
        "pg_restore (PostgreSQL) 99.0",
        "cat > /dev/null; exit 0",
    );
    let err = restore_proof(
        &config(&f, &art.path)
            .pg_restore(&fake)
            .record_to(&record, &f.signer),
    )
    .unwrap_err();
    assert!(
        matches!(&err, Error::RecordExists { path } if path == &record),
        "{err}"
    );
    assert!(
        err.to_string().contains("never overwritten") && err.to_string().contains("move it away"),
        "{err}"
    );
    assert!(!marker.exists(), "pg_restore was started");
    assert_eq!(fs::read(&record).unwrap(), before);
}

/// pg_restore that stops reading: the decryption into it fails mid-stream, after the
/// cluster was prepared; the record says so. A wrong passphrase is refused on the first
/// chunk, before any cluster exists, and leaves no record.
#[test]
fn a_restore_that_stops_mid_stream_is_recorded_and_a_wrong_passphrase_leaves_no_record() {
    let f = Fixture::new();
    f.grow(2); // well beyond a pipe's buffer
    let art = pre_write_backup(&f.config("stop"), &mut |_| {}).expect("backup");

    let wrong = f.dir.path().join("wrong-pass");
    common::write_private(&wrong, format!("{PASSPHRASE}x\n").as_bytes());
    let early = f.backups.join("early.restore-proof.json");
    let err = restore_proof(
        &RestoreConfig::new(&art.path, &f.keys.secret_key, f.pin())
            .passphrase(PassphraseSource::File(wrong))
            .record_to(&early, &f.signer),
    )
    .unwrap_err();
    assert!(
        matches!(
            &err,
            Error::Decrypt {
                source: cutter_openpgp::Error::WrongPassphrase { .. },
                ..
            }
        ),
        "{err}"
    );
    assert!(!early.exists(), "a record of a proof that restored nothing");

    let (fake, marker) = fake_program(
        f.bin.path(),
        "pg_restore",
        "pg_restore (PostgreSQL) 99.0",
        "echo 'pg_restore: error: simulated: gives up at once' >&2; exit 1",
    );
    let record = f.backups.join("stop.restore-proof.json");
    let err = restore_proof(
        &config(&f, &art.path)
            .pg_restore(&fake)
            .record_to(&record, &f.signer),
    )
    .unwrap_err();
    let text = err.to_string();
    assert!(marker.exists(), "the fake pg_restore did not run");
    match &err {
        Error::ChildFailed { status, stderr, .. } => {
            assert_eq!(status, "it stopped reading its input");
            assert!(stderr.contains("simulated: gives up at once"), "{stderr}");
        }
        other => panic!("expected pg_restore's failure, got: {other}"),
    }
    let proof = read_record(&record);
    assert!(!proof.passed);
    assert_eq!(proof.failures.len(), 1, "{:?}", proof.failures);
    assert!(
        proof.failures[0].contains("stopped before the comparison")
            && proof.failures[0].contains(&text),
        "{:?}",
        proof.failures
    );
    assert_eq!(proof.pg_restore_version, "99.0");
    assert!(proof.tables.iter().all(|c| c.actual.is_none()));
    assert_torn_down(&proof);
    f.assert_no_plaintext();
}
