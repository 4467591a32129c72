//! An artifact is trusted only after its manifest's signature by the pinned signing key
//! and its sha256, read through the one descriptor that is then decrypted; the restore
//! runs without privilege and only the surface tables; the decryption allow-list; secret
//! files must be private. Real backups, real gpg, real pg_restore, real throwaway
//! clusters.

mod common;

use std::fs;
use std::io::Write;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use common::{fake_program, Fixture, Gpg, PASSPHRASE};
use cutter_backup::{
    generate_keys, pre_write_backup, restore_data_into, restore_proof, signature_path_for,
    verify_artifact, Error, Manifest, Passphrase, PassphraseSource,
};

/// The dump inside `art`, decrypted with the fixture's secret key (test-only: the
/// plaintext stays in memory).
fn plaintext(f: &Fixture, art: &Path) -> Vec<u8> {
    let secret = cutter_backup::load_secret_key(&f.keys.secret_key).unwrap();
    let mut out = Vec::new();
    cutter_openpgp::decrypt(
        &secret,
        &Passphrase::new(PASSPHRASE.into()),
        fs::File::open(art).unwrap(),
        &mut out,
    )
    .unwrap();
    out
}

/// Writes `ciphertext` as artifact `<name>.dump.pgp` with a manifest copied from
/// `template` and rewritten to match it (name, sha256, size). Unsigned.
fn forge(f: &Fixture, name: &str, ciphertext: &[u8], template: &Manifest) -> PathBuf {
    let art = f.backups.join(format!("{name}.dump.pgp"));
    fs::write(&art, ciphertext).unwrap();
    let mut m = template.clone();
    m.artifact = format!("{name}.dump.pgp");
    m.run_id = cutter_core::RunId::new(name).unwrap();
    m.sha256 = cutter_core::Sha256Digest::of(ciphertext);
    m.size_bytes = ciphertext.len() as u64;
    fs::write(f.backups.join(format!("{name}.manifest.json")), m.to_json()).unwrap();
    art
}

/// `bytes` with the first occurrence of `from` replaced by `to`, padded with spaces to
/// the same length (the archive's length prefixes stay right).
fn replace_same_len(bytes: &[u8], from: &[u8], to: &str) -> Vec<u8> {
    assert!(
        to.len() <= from.len(),
        "{to:?} is longer than {:?}",
        String::from_utf8_lossy(from)
    );
    let at = bytes
        .windows(from.len())
        .position(|w| w == from)
        .unwrap_or_else(|| panic!("{:?} not in the dump", String::from_utf8_lossy(from)));
    let mut out = bytes.to_vec();
    let mut new = to.as_bytes().to_vec();
    new.resize(from.len(), b' ');
    out[at..at + from.len()].copy_from_slice(&new);
    out
}

/// The text of the first archive string that starts with `prefix`: the archive stores
/// strings as <sign byte><length><text>, and the next field starts with a sign byte 0,
/// so the text ends at the first NUL.
fn string_starting(bytes: &[u8], prefix: &[u8]) -> Vec<u8> {
    let at = bytes
        .windows(prefix.len())
        .position(|w| w == prefix)
        .unwrap_or_else(|| panic!("{:?} not in the dump", String::from_utf8_lossy(prefix)));
    let end = bytes[at..].iter().position(|b| *b == 0).unwrap() + at;
    bytes[at..end].to_vec()
}

/// `gpg --encrypt` of `plain` to the backup key (imported from its public key only),
/// through files: `extra` chooses the algorithms.
fn gpg_encrypt(f: &Fixture, gpg: &Gpg, plain: &[u8], extra: &[&str]) -> Vec<u8> {
    let input = f.dir.path().join("gpg-in.bin");
    let output = f.dir.path().join("gpg-out.pgp");
    let _ = fs::remove_file(&output);
    fs::write(&input, plain).unwrap();
    let mut args: Vec<&str> = extra.to_vec();
    let (i, o) = (input.to_str().unwrap(), output.to_str().unwrap());
    args.extend([
        "--recipient",
        f.keys.fingerprint.as_str(),
        "--output",
        o,
        "--encrypt",
        i,
    ]);
    gpg.run(&args, b"");
    fs::remove_file(&input).unwrap();
    let ct = fs::read(&output).unwrap();
    fs::remove_file(&output).unwrap();
    ct
}

/// A pg_restore stand-in that records that it ran.
fn fake_pg_restore(f: &Fixture) -> (PathBuf, PathBuf) {
    fake_program(
        f.bin.path(),
        "pg_restore",
        "pg_restore (PostgreSQL) 99.0",
        "cat > /dev/null; exit 0",
    )
}

/// A crafted artifact — made with gpg from the public key alone, or signed by another
/// key, or a real one whose manifest counts were edited — is refused before anything
/// is decrypted: before the secret key is even read, before any cluster or pg_restore.
#[test]
fn a_crafted_or_edited_manifest_is_refused_before_decryption() {
    let f = Fixture::new();
    let real = pre_write_backup(&f.config("real"), &mut |_| {}).expect("backup");
    let (fake, marker) = fake_pg_restore(&f);
    // Not even a secret key: refused before it is read.
    let proof_of = |art: &Path| {
        restore_proof(
            &cutter_backup::RestoreConfig::new(art, f.dir.path().join("no-key"), f.pin())
                .pg_restore(&fake),
        )
        .unwrap_err()
    };

    // 1. An artifact made with gpg from the public key, and a matching, unsigned
    //    manifest.
    let gpg = Gpg::new();
    gpg.run(&["--import", f.keys.public_key.to_str().unwrap()], b"");
    let crafted_plain = replace_same_len(&plaintext(&f, &real.path), b"canary-run", "crafted-rn");
    let ct = gpg_encrypt(&f, &gpg, &crafted_plain, &["--compress-algo", "none"]);
    drop(crafted_plain);
    let crafted = forge(&f, "crafted", &ct, &real.manifest);
    for err in [
        verify_artifact(&crafted, &f.pin()).unwrap_err(),
        proof_of(&crafted),
    ] {
        assert!(matches!(err, Error::ManifestUnsigned { .. }), "{err}");
        let text = err.to_string();
        assert!(
            text.contains("crafted.manifest.json.sig is missing"),
            "{text}"
        );
        assert!(text.contains("Nothing was decrypted"), "{text}");
    }

    // 2. The same, signed by another key (one the operator might hold): refused, the
    //    signer named.
    let other = generate_keys(f.dir.path(), "other-signer", "Other <o@example.org>", None).unwrap();
    let other_signer = cutter_backup::ManifestSigner::load(
        &other.secret_key,
        &other.fingerprint,
        &PassphraseSource::None,
    )
    .unwrap();
    let manifest_path = f.backups.join("crafted.manifest.json");
    let mut m: Manifest = serde_json::from_slice(&fs::read(&manifest_path).unwrap()).unwrap();
    m.signer.fingerprint = other.fingerprint.clone();
    m.signer.public_key = other_signer.public_key_armored().to_string();
    fs::write(&manifest_path, m.to_json()).unwrap();
    let sign_with = |key: &Path| {
        let secret = cutter_backup::load_secret_key(key).unwrap();
        let sig = cutter_openpgp::sign_detached(
            &secret,
            &Passphrase::new(String::new()),
            &fs::read(&manifest_path).unwrap(),
        )
        .unwrap();
        fs::write(signature_path_for(&manifest_path), sig).unwrap();
    };
    sign_with(&other.secret_key);
    for err in [
        verify_artifact(&crafted, &f.pin()).unwrap_err(),
        proof_of(&crafted),
    ] {
        assert!(matches!(err, Error::ManifestSignature { .. }), "{err}");
        let text = err.to_string();
        assert!(
            text.contains(other.fingerprint.as_str()) && text.contains(f.pin().as_str()),
            "{text}"
        );
    }
    //    …and claiming the pinned key as its signer, while the other key signed it.
    m.signer = real.manifest.signer.clone();
    fs::write(&manifest_path, m.to_json()).unwrap();
    sign_with(&other.secret_key);
    let err = verify_artifact(&crafted, &f.pin()).unwrap_err();
    assert!(matches!(err, Error::ManifestSignature { .. }), "{err}");

    // 3. The real backup's manifest with an edited row count, its signature kept.
    let iu = cutter_core::TableName::new("public", "information_unit").unwrap();
    let mut m = real.manifest.clone();
    m.tables.get_mut(&iu).unwrap().rows += 1;
    fs::write(&real.manifest_path, m.to_json()).unwrap();
    for err in [
        verify_artifact(&real.path, &f.pin()).unwrap_err(),
        proof_of(&real.path),
    ] {
        assert!(matches!(err, Error::ManifestSignature { .. }), "{err}");
        assert!(err.to_string().contains("BAD signature"), "{err}");
    }
    //    …and with the signature removed.
    fs::remove_file(&real.signature_path).unwrap();
    assert!(matches!(
        verify_artifact(&real.path, &f.pin()).unwrap_err(),
        Error::ManifestUnsigned { .. }
    ));

    assert!(!marker.exists(), "pg_restore was started");
    f.assert_no_plaintext();
}

/// The artifact is read through the one descriptor that was verified: a file renamed
/// over it after the check is never read (the proof restores what was verified), and
/// bytes written into the verified file itself while it is decrypted are refused (the
/// second sha256, over the bytes decrypted, differs) and the restore is discarded.
#[test]
fn an_artifact_swapped_between_the_checks_is_refused() {
    let f = Fixture::new();
    f.grow(2); // larger than one read of the decryptor
    let a = pre_write_backup(&f.config("a"), &mut |_| {}).expect("backup A");
    f.db.admin()
        .execute(
            "UPDATE cutter_governance.review_decision SET actor = 'swapped' WHERE run_id = 'canary-run'",
            &[],
        )
        .unwrap();
    let b = pre_write_backup(&f.config("b"), &mut |_| {}).expect("backup B");

    // Renamed over A's path once decryption started: A is restored all the same.
    let swapped = Arc::new(AtomicBool::new(false));
    let (flag, from, to) = (swapped.clone(), b.path.clone(), a.path.clone());
    let proof = restore_proof(&f.restore(&a.path).on_progress(move |n| {
        if n > 0 && !flag.swap(true, Ordering::SeqCst) {
            let tmp = to.with_extension("swap");
            fs::copy(&from, &tmp).unwrap();
            fs::rename(&tmp, &to).unwrap();
        }
    }))
    .expect("the verified artifact is restored");
    assert!(swapped.load(Ordering::SeqCst), "the swap happened");
    assert!(proof.passed, "{:?}", proof.failures);
    assert_eq!(proof.artifact_sha256, a.manifest.sha256);
    // The file now under A's name is B's bytes: verifying it again is refused.
    let err = verify_artifact(&a.path, &f.pin()).unwrap_err();
    assert!(matches!(err, Error::ChecksumMismatch { .. }), "{err}");

    // Written to in place while it is decrypted: an OpenPGP marker packet appended
    // (which decryption itself skips) changes the bytes, and the restore is refused.
    let record = f.backups.join("b.restore-proof.json");
    let appended = Arc::new(AtomicBool::new(false));
    let (flag, path) = (appended.clone(), b.path.clone());
    let err = restore_proof(
        &f.restore(&b.path)
            .record_to(&record, &f.signer)
            .on_progress(move |n| {
                if n > 0 && !flag.swap(true, Ordering::SeqCst) {
                    let mut file = fs::OpenOptions::new().append(true).open(&path).unwrap();
                    file.write_all(&[0xCA, 0x03, b'P', b'G', b'P']).unwrap();
                }
            }),
    )
    .unwrap_err();
    assert!(appended.load(Ordering::SeqCst));
    assert!(matches!(err, Error::ArtifactChanged { .. }), "{err}");
    assert!(
        err.to_string().contains("changed while it was read"),
        "{err}"
    );
    let recorded: cutter_backup::RestoreProof =
        serde_json::from_slice(&fs::read(&record).unwrap()).unwrap();
    assert!(!recorded.passed);
    assert!(recorded.tables.iter().all(|t| t.actual.is_none()));
    let dir = recorded
        .restore_target
        .strip_prefix("throwaway cluster ")
        .unwrap();
    assert!(!Path::new(dir).exists(), "{dir} left behind");
    f.assert_no_plaintext();
}

/// A dump that runs `COPY … TO PROGRAM` during the restore (here: signed with the
/// pinned key, as an insider or a thief of that key could) cannot run it: pg_restore
/// runs as a role that is not a superuser and holds none of pg_execute_server_program,
/// pg_read_server_files, pg_write_server_files. Both the proof (the statement in a
/// trigger's definition) and the dry-run's clone (in a sequence position) are tried.
#[test]
fn a_dump_that_tries_copy_to_program_during_restore_cannot_run_it() {
    let f = Fixture::new();
    let real = pre_write_backup(&f.config("real"), &mut |_| {}).expect("backup");
    let plain = plaintext(&f, &real.path);
    let marker = PathBuf::from(format!(
        "/tmp/cutter-pwned-{:08x}",
        common::rand_u64() as u32
    ));
    let _ = fs::remove_file(&marker);
    let evil = format!("COPY (SELECT 1) TO PROGRAM 'touch {}';", marker.display());

    let sign_forged = |name: &str, dump: &[u8]| {
        let mut ct = Vec::new();
        cutter_openpgp::encrypt(&f.recipient, dump, &mut ct).unwrap();
        let art = forge(&f, name, &ct, &real.manifest);
        f.resign(&f.backups.join(format!("{name}.manifest.json")));
        art
    };

    // The proof: a trigger's definition (pg_restore runs it as SQL).
    let trigger = string_starting(&plain, b"CREATE TRIGGER trg_iu_enacted_immut");
    let art = sign_forged("pwn", &replace_same_len(&plain, &trigger, &evil));
    verify_artifact(&art, &f.pin()).expect("signed by the pinned key");
    let err = restore_proof(&f.restore(&art)).unwrap_err();
    assert_program_refused(err, &marker, "the restore proof");

    // The clone: a sequence position (a data-only restore runs it as SQL).
    let setval = string_starting(
        &plain,
        b"SELECT pg_catalog.setval('public.information_unit_id_seq'",
    );
    let art = sign_forged("pwn2", &replace_same_len(&plain, &setval, &evil));
    let clone = cutter_pg::Cluster::start().expect("clone cluster");
    clone.create_database("clone", Some("template0")).unwrap();
    let admin = clone.superuser_config("clone").unwrap();
    cutter_pg::schema::install_reference(&mut admin.connect().unwrap()).unwrap();
    let err = restore_data_into(
        &art,
        &f.pin(),
        &f.keys.secret_key,
        &PassphraseSource::File(f.passphrase_file.clone()),
        &admin,
        None,
        &mut |_| {},
    )
    .unwrap_err();
    assert_program_refused(err, &marker, "the clone's restore");
    // The clone got its tables back, triggers enabled, and no restore role is left.
    let mut c = admin.connect().unwrap();
    let roles: i64 = c
        .query_one(
            "SELECT count(*) FROM pg_roles WHERE rolname LIKE 'cutter_restore_%'",
            &[],
        )
        .unwrap()
        .get(0);
    assert_eq!(roles, 0);
    let disabled: i64 = c
        .query_one(
            "SELECT count(*) FROM pg_trigger t JOIN pg_class r ON r.oid = t.tgrelid \
             WHERE r.relname = 'information_unit' AND t.tgenabled <> 'O'",
            &[],
        )
        .unwrap()
        .get(0);
    assert_eq!(disabled, 0);
    drop(c);
    clone.stop().unwrap();

    // And an honest artifact restores into a clone the same way, as the restore role.
    let clone = cutter_pg::Cluster::start().expect("clone cluster");
    clone.create_database("clone", Some("template0")).unwrap();
    let admin = clone.superuser_config("clone").unwrap();
    cutter_pg::schema::install_reference(&mut admin.connect().unwrap()).unwrap();
    let n = restore_data_into(
        &real.path,
        &f.pin(),
        &f.keys.secret_key,
        &PassphraseSource::File(f.passphrase_file.clone()),
        &admin,
        None,
        &mut |_| {},
    )
    .expect("data-only restore into the clone");
    assert_eq!(n, real.manifest.dump.plaintext_bytes);
    let mut c = admin.connect().unwrap();
    let mut tx = c.transaction().unwrap();
    let stats = cutter_pg::surface::surface_stats(&mut tx, None).unwrap();
    assert_eq!(stats, real.manifest.tables);
    drop(tx);
    drop(c);
    clone.stop().unwrap();
    f.assert_no_plaintext();
}

/// `gpg --cipher-algo 3DES --compress-algo none`, to the backup key, under a manifest
/// signed by the pinned key: refused by the decryption allow-list, naming 3DES, before
/// any cluster or pg_restore.
#[test]
fn a_3des_artifact_is_refused_naming_3des() {
    let f = Fixture::new();
    let real = pre_write_backup(&f.config("real"), &mut |_| {}).expect("backup");
    let gpg = Gpg::new();
    gpg.run(&["--import", f.keys.public_key.to_str().unwrap()], b"");
    let ct = gpg_encrypt(
        &f,
        &gpg,
        &plaintext(&f, &real.path),
        &["--cipher-algo", "3DES", "--compress-algo", "none"],
    );
    let art = forge(&f, "des", &ct, &real.manifest);
    f.resign(&f.backups.join("des.manifest.json"));
    let (fake, marker) = fake_pg_restore(&f);
    let err = restore_proof(&f.restore(&art).pg_restore(&fake)).unwrap_err();
    assert!(
        matches!(
            &err,
            Error::Decrypt {
                source: cutter_openpgp::Error::Refused { .. },
                ..
            }
        ),
        "{err}"
    );
    assert!(err.to_string().contains("3DES"), "{err}");
    assert!(!marker.exists(), "pg_restore was started");
}

/// Secret key and passphrase files that group or others may read are refused, before
/// anything else is done, with the command that fixes it.
#[test]
fn loose_key_file_permissions_are_refused() {
    let f = Fixture::new();
    let real = pre_write_backup(&f.config("real"), &mut |_| {}).expect("backup");
    let (fake, marker) = fake_pg_restore(&f);
    for path in [&f.keys.secret_key, &f.passphrase_file] {
        fs::set_permissions(path, fs::Permissions::from_mode(0o644)).unwrap();
        let err = restore_proof(&f.restore(&real.path).pg_restore(&fake)).unwrap_err();
        assert!(matches!(err, Error::LooseSecretFile { .. }), "{err}");
        assert!(
            err.to_string()
                .contains(&format!("chmod 600 {}", path.display())),
            "{err}"
        );
        fs::set_permissions(path, fs::Permissions::from_mode(0o600)).unwrap();
    }
    fs::set_permissions(&f.signing.secret_key, fs::Permissions::from_mode(0o640)).unwrap();
    let err = cutter_backup::ManifestSigner::load(
        &f.signing.secret_key,
        &f.pin(),
        &PassphraseSource::None,
    )
    .unwrap_err();
    assert!(matches!(err, Error::LooseSecretFile { .. }), "{err}");
    assert!(err.to_string().contains("backup signing key"), "{err}");
    assert!(!marker.exists());
}

/// `err` is pg_restore's failure because the server refused `COPY … TO PROGRAM`, and
/// the program never ran (its `marker` file does not exist).
fn assert_program_refused(err: Error, marker: &std::path::Path, during: &str) {
    let text = err.to_string();
    assert!(matches!(err, Error::ChildFailed { .. }), "{text}");
    assert!(
        text.contains("pg_execute_server_program")
            || text.contains("permission denied to COPY to or from an external program"),
        "{text}"
    );
    assert!(!marker.exists(), "COPY TO PROGRAM ran during {during}");
}
