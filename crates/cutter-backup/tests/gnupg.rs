//! GnuPG interoperability, both ways, and Sequoia's `sqop`, on real backups.

mod common;

use std::fs;
use std::io::Write;
use std::process::{Command, Stdio};

use common::{Fixture, Gpg, PASSPHRASE};
use cutter_backup::{
    load_recipient, pre_write_backup, restore_proof, BackupConfig, PassphraseSource, PgProgram,
    RestoreConfig,
};
use cutter_core::{Fingerprint, RunId};

/// `pg_restore --list` of an archive given on stdin: the TABLE DATA entries.
fn table_data_entries(archive: &[u8]) -> Vec<String> {
    let pg_restore = PgProgram::locate("pg_restore").unwrap();
    let mut child = Command::new(&pg_restore.path)
        .arg("--list")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut stdin = child.stdin.take().unwrap();
    let data = archive.to_vec();
    let feeder = std::thread::spawn(move || {
        let _ = stdin.write_all(&data);
    });
    let out = child.wait_with_output().unwrap();
    feeder.join().unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let mut v: Vec<String> = String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter(|l| l.contains("TABLE DATA"))
        .map(|l| {
            let w: Vec<&str> = l.split_whitespace().collect();
            format!("{}.{}", w[w.len() - 3], w[w.len() - 2])
        })
        .collect();
    v.sort();
    v
}

fn nine() -> Vec<String> {
    let mut v: Vec<String> = cutter_core::mutation_surface()
        .iter()
        .map(ToString::to_string)
        .collect();
    v.sort();
    v
}

#[test]
fn a_key_made_by_gpg_is_a_recipient_and_gpg_decrypts_the_artifact() {
    let f = Fixture::new();
    let gpg = Gpg::new();
    let fpr = gpg.gen_key("Ops Backup <ops@example.org>");
    let public = f.dir.path().join("gpg.pub.asc");
    fs::write(&public, gpg.run(&["--armor", "--export", &fpr], b"")).unwrap();
    let pin = Fingerprint::new(&fpr).unwrap();
    let recipient = load_recipient(&public, &pin).expect("a gpg key is a valid recipient");
    let cfg = BackupConfig::new(
        &f.backups,
        RunId::new("g").unwrap(),
        recipient,
        f.signer.clone(),
        f.ro(),
    );
    let art = pre_write_backup(&cfg, &mut |_| {}).expect("backup");
    assert_eq!(art.manifest.encryption.recipient, pin);

    // gpg opens it; what comes out is the dump pg_restore reads.
    let plain = gpg.run(
        &["--decrypt", "--output", "-", art.path.to_str().unwrap()],
        b"",
    );
    assert!(plain.starts_with(b"PGDMP"));
    assert_eq!(plain.len() as u64, art.manifest.dump.plaintext_bytes);
    assert_eq!(table_data_entries(&plain), nine());
    drop(plain);

    // And gpg's secret key, exported armored or binary, runs the restore proof.
    for armor in [true, false] {
        let mut args = vec!["--pinentry-mode", "loopback", "--passphrase", ""];
        if armor {
            args.push("--armor");
        }
        args.extend(["--export-secret-keys", &fpr]);
        let secret = f.dir.path().join(format!("gpg-{armor}.sec"));
        fs::write(&secret, gpg.run(&args, b"")).unwrap();
        // A secret key file must be private.
        fs::set_permissions(&secret, std::os::unix::fs::PermissionsExt::from_mode(0o600)).unwrap();
        let proof = restore_proof(&RestoreConfig::new(&art.path, &secret, f.pin()))
            .expect("restore proof with gpg's secret key");
        assert!(proof.passed);
        assert_eq!(proof.decrypted_with, pin);
        fs::remove_file(&secret).unwrap();
    }
    f.assert_no_plaintext();
}

#[test]
fn a_key_made_by_the_project_is_imported_and_used_by_gpg() {
    let f = Fixture::new();
    let gpg = Gpg::new();
    let art = pre_write_backup(&f.config("p"), &mut |_| {}).expect("backup");

    gpg.run(&["--import", f.keys.public_key.to_str().unwrap()], b"");
    gpg.import_secret(&f.keys.secret_key);
    let listing =
        String::from_utf8(gpg.run(&["--with-colons", "--list-secret-keys"], b"")).unwrap();
    assert!(listing.contains(f.keys.fingerprint.as_str()), "{listing}");

    // The passphrase goes through a file descriptor, never the command line.
    let plain = gpg.decrypt(&art.path);
    assert!(plain.starts_with(b"PGDMP"));
    assert_eq!(plain.len() as u64, art.manifest.dump.plaintext_bytes);
    assert_eq!(table_data_entries(&plain), nine());
    drop(plain);

    // gpg encrypts to the project's key too, and the restore proof's decryption (the
    // same code path) reads gpg's message.
    let msg = gpg.run(
        &[
            "--encrypt",
            "--recipient",
            f.keys.fingerprint.as_str(),
            "--output",
            "-",
        ],
        b"sample",
    );
    let secret = cutter_backup::load_secret_key(&f.keys.secret_key).unwrap();
    let mut back = Vec::new();
    cutter_openpgp::decrypt(
        &secret,
        &cutter_backup::Passphrase::new(PASSPHRASE.into()),
        &msg[..],
        &mut back,
    )
    .unwrap();
    assert_eq!(back, b"sample");
    let _ = PassphraseSource::None;
    f.assert_no_plaintext();
}

/// Sequoia's `sqop` decrypts the artifact too (with the passphrase-protected secret
/// key, its passphrase in a file): what comes out is the dump pg_restore reads.
#[test]
fn sqop_decrypts_the_artifact() {
    let f = Fixture::new();
    let art = pre_write_backup(&f.config("s"), &mut |_| {}).expect("backup");
    let out = std::process::Command::new("sqop")
        .arg("decrypt")
        .arg("--with-key-password")
        .arg(&f.passphrase_file)
        .arg(&f.keys.secret_key)
        .stdin(fs::File::open(&art.path).unwrap())
        .output()
        .expect("sqop must be installed (Debian package `sqop`)");
    assert!(
        out.status.success(),
        "sqop decrypt failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(out.stdout.starts_with(b"PGDMP"));
    assert_eq!(out.stdout.len() as u64, art.manifest.dump.plaintext_bytes);
    assert_eq!(table_data_entries(&out.stdout), nine());
}
