//! Bad input and faults. In every case: no artifact left behind, a clear error, no
//! plaintext dump bytes in the state or temp directory, no secret in the error.
//!
//! The disk-full and read-only cases mount small tmpfs file systems and so need root
//! (as CI runs); elsewhere they fail with a message saying so, never skip.

mod common;

use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use common::{assert_secret_free, descendants, fake_program, Fixture, PASSPHRASE};
use cutter_backup::{
    generate_keys, load_recipient, pre_write_backup, recipient_pin, remove_stale_partials,
    restore_proof, verify_artifact, Error, Passphrase, PassphraseSource, RestoreConfig,
    RestoreTarget,
};
use cutter_core::Fingerprint;

/// A tmpfs mounted for the duration of a test.
struct Mount(PathBuf);

impl Mount {
    fn tmpfs(at: &Path, options: &str) -> Mount {
        fs::create_dir_all(at).unwrap();
        let out = Command::new("mount")
            .args(["-t", "tmpfs", "-o", options, "tmpfs"])
            .arg(at)
            .output()
            .expect("run mount");
        assert!(
            out.status.success(),
            "this test mounts a tmpfs and must run as root (as CI does): mount failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        Mount(at.to_path_buf())
    }
}

impl Drop for Mount {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg(&self.0).status();
    }
}

fn fake_pg_dump(f: &Fixture, body: &str) -> (PathBuf, PathBuf) {
    fake_program(f.bin.path(), "pg_dump", "pg_dump (PostgreSQL) 99.0", body)
}

fn marker_free_fake(f: &Fixture) -> PathBuf {
    fake_program(
        f.bin.path(),
        "pg_dump2",
        "pg_dump (PostgreSQL) 99.0",
        "exit 0",
    )
    .0
}

fn fake_pg_restore(f: &Fixture) -> (PathBuf, PathBuf) {
    fake_program(
        f.bin.path(),
        "pg_restore",
        "pg_restore (PostgreSQL) 99.0",
        "cat > /dev/null; exit 0",
    )
}

fn check_clean(f: &Fixture, err: &Error) {
    assert!(f.listing().is_empty(), "left behind: {:?}", f.listing());
    f.assert_no_plaintext();
    assert_secret_free("the error", &err.to_string(), &f.secrets());
    assert_secret_free("the error's Debug", &format!("{err:?}"), &f.secrets());
}

/// The pg_dump among the descendants of `root` that dumps database `dbname`: its
/// environment says `PGDATABASE=<dbname>` (cutter passes the connection only through
/// the environment), and each test has a database of its own, so under `cargo test`
/// (all tests as threads of one process) another test's pg_dump is never picked.
fn pg_dump_of(root: u32, dbname: &str) -> Option<u32> {
    let wanted = format!("PGDATABASE={dbname}");
    descendants(root)
        .into_iter()
        .filter(|(_, comm)| comm == "pg_dump")
        .map(|(pid, _)| pid)
        .find(|pid| {
            let fields = |f: &str| -> Vec<Vec<u8>> {
                fs::read(format!("/proc/{pid}/{f}"))
                    .unwrap_or_default()
                    .split(|b| *b == 0)
                    .map(<[u8]>::to_vec)
                    .collect()
            };
            fields("cmdline")
                .iter()
                .any(|a| a.starts_with(b"--snapshot="))
                && fields("environ").iter().any(|v| v == wanted.as_bytes())
        })
}

/// Whether process `pid` has exited (gone, or a zombie nobody reaped yet).
fn exited(pid: u32) -> bool {
    match fs::read_to_string(format!("/proc/{pid}/stat")) {
        Err(_) => true,
        Ok(stat) => stat
            .rfind(')')
            .and_then(|i| stat[i + 1..].split_whitespace().next())
            .is_none_or(|state| state == "Z" || state == "X"),
    }
}

#[test]
fn no_recipient_key_or_a_different_key_is_refused_before_pg_dump() {
    let f = Fixture::new();
    let (fake, marker) = fake_pg_dump(&f, "exit 0");
    // The phase as the CLI runs it: pin, key, then the dump.
    let run = |pin: Option<&str>, key: &Path| -> Result<(), Error> {
        let pin = recipient_pin(pin, &|_| None)?;
        let recipient = load_recipient(key, &pin)?;
        let cfg = cutter_backup::BackupConfig::new(
            &f.backups,
            cutter_core::RunId::new("r").unwrap(),
            recipient,
            f.signer.clone(),
            f.ro(),
        )
        .pg_dump(&fake);
        pre_write_backup(&cfg, &mut |_| {}).map(|_| ())
    };
    let fpr = f.keys.fingerprint.to_string();

    let err = run(None, &f.keys.public_key).unwrap_err();
    assert!(matches!(err, Error::PinMissing), "{err}");
    assert!(err.to_string().contains("BACKUP_GPG_FPR"), "{err}");

    let err = run(Some(&fpr), &f.dir.path().join("no-such-key.asc")).unwrap_err();
    assert!(matches!(err, Error::KeyFile { .. }), "{err}");
    assert!(err.to_string().contains("no-such-key.asc"), "{err}");

    let other = generate_keys(f.dir.path(), "other", "Other <o@example.org>", None).unwrap();
    let err = run(Some(&fpr), &other.public_key).unwrap_err();
    let text = err.to_string();
    assert!(
        text.contains("does not match the pinned fingerprint"),
        "{text}"
    );
    assert!(
        text.contains(&fpr) && text.contains(other.fingerprint.as_str()),
        "{text}"
    );

    // Not a key at all.
    let junk = f.dir.path().join("junk.asc");
    fs::write(&junk, "hello").unwrap();
    let err = run(Some(&fpr), &junk).unwrap_err();
    assert!(matches!(err, Error::Recipient { .. }), "{err}");

    assert!(!marker.exists(), "pg_dump was started");
    check_clean(&f, &err);
    // The environment variable is honoured.
    let pin = recipient_pin(None, &|k| (k == "BACKUP_GPG_FPR").then(|| fpr.clone())).unwrap();
    assert_eq!(pin, f.keys.fingerprint);
}

#[test]
fn pg_dump_exiting_non_zero_leaves_nothing_and_reports_its_stderr() {
    let f = Fixture::new();
    let (fake, marker) = fake_pg_dump(
        &f,
        &format!(
            "printf 'PGDMP\\001\\016\\000 %s%s' '{}' '{}'; echo 'pg_dump: error: simulated failure on purpose' >&2; exit 3",
            &f.canary[..7],
            &f.canary[7..]
        ),
    );
    let err = pre_write_backup(&f.config("r").pg_dump(&fake), &mut |_| {}).unwrap_err();
    assert!(marker.exists());
    let text = err.to_string();
    assert!(matches!(err, Error::ChildFailed { .. }), "{text}");
    assert!(text.contains("exit status 3"), "{text}");
    assert!(text.contains("simulated failure on purpose"), "{text}");
    check_clean(&f, &err);

    // A real pg_dump failure: another session holds an exclusive lock on a table.
    let mut locker = f.db.admin();
    let mut tx = locker.transaction().unwrap();
    tx.batch_execute("LOCK TABLE cutter_governance.verify_result IN ACCESS EXCLUSIVE MODE")
        .unwrap();
    let err = pre_write_backup(
        &f.config("r2").lock_wait_timeout(Duration::from_millis(300)),
        &mut |_| {},
    )
    .unwrap_err();
    drop(tx);
    let text = err.to_string();
    assert!(matches!(err, Error::ChildFailed { .. }), "{text}");
    assert!(
        text.contains("LOCK TABLE cutter_governance.verify_result"),
        "{text}"
    );
    check_clean(&f, &err);

    // The role lost access to one table: refused before pg_dump, with the fix.
    f.db.admin()
        .batch_execute("REVOKE SELECT ON cutter_governance.verify_result FROM cutter_verify")
        .unwrap();
    let err =
        pre_write_backup(&f.config("r4").pg_dump(marker_free_fake(&f)), &mut |_| {}).unwrap_err();
    let text = err.to_string();
    assert!(matches!(err, Error::Role { .. }), "{text}");
    assert!(
        text.contains("cannot SELECT \"cutter_governance\".\"verify_result\""),
        "{text}"
    );
    assert!(!f.bin.path().join("pg_dump2.ran").exists());
    check_clean(&f, &err);
    f.db.admin()
        .batch_execute("GRANT SELECT ON cutter_governance.verify_result TO cutter_verify")
        .unwrap();

    // Something that is not an archive.
    let (fake, _) = fake_pg_dump(&f, "echo 'SELECT 1;'; exit 0");
    let err = pre_write_backup(&f.config("r3").pg_dump(&fake), &mut |_| {}).unwrap_err();
    assert!(matches!(err, Error::NotAnArchive { .. }), "{err}");
    check_clean(&f, &err);
}

/// pg_dump must be at least the server's major version (an older one cannot read the
/// server's catalogs correctly, or refuses): checked from `--version` before any
/// snapshot or dump, leaving nothing behind. A pg_dump of the server's own major
/// version passes the check (and is then run), so the refusal is the version's doing.
#[test]
fn a_pg_dump_older_than_the_server_is_refused_before_any_dump() {
    let f = Fixture::new();
    let row =
        f.db.admin()
            .query_one(
                "SELECT current_setting('server_version'), \
                        current_setting('server_version_num')::int4",
                &[],
            )
            .unwrap();
    let (server_version, num): (String, i32) = (row.get(0), row.get(1));
    let server_major = u32::try_from(num).unwrap() / 10_000;
    assert!(server_major >= 10, "server {server_version}");

    let (old, marker) = fake_program(
        f.bin.path(),
        "pg_dump",
        "pg_dump (PostgreSQL) 9.6",
        "exit 0",
    );
    let err = pre_write_backup(&f.config("r").pg_dump(&old), &mut |_| {
        panic!("nothing may be streamed")
    })
    .unwrap_err();
    let text = err.to_string();
    match &err {
        Error::PgDumpTooOld {
            path,
            client,
            server,
            server_major: major,
        } => {
            assert_eq!(path, &old);
            assert_eq!(client, "9.6");
            assert_eq!(server, &server_version);
            assert_eq!(*major, server_major);
        }
        other => panic!("expected PgDumpTooOld, got {other:?}"),
    }
    assert!(
        text.contains("is version 9.6, older than the server")
            && text.contains(&format!("Install PostgreSQL {server_major} client tools")),
        "{text}"
    );
    assert!(!marker.exists(), "pg_dump was started for a dump");
    check_clean(&f, &err);

    // The same fake claiming the server's major version passes the check and runs.
    let (same, marker) = fake_program(
        f.bin.path(),
        "pg_dump_same",
        &format!("pg_dump (PostgreSQL) {server_major}.0"),
        "exit 0",
    );
    let err = pre_write_backup(&f.config("r").pg_dump(&same), &mut |_| {}).unwrap_err();
    assert!(matches!(err, Error::NotAnArchive { .. }), "{err}");
    assert!(
        marker.exists(),
        "a pg_dump of the server's major version was refused"
    );
    check_clean(&f, &err);
}

#[test]
fn pg_dump_killed_mid_stream_leaves_nothing() {
    let f = Fixture::new();
    f.grow(30);
    let mut killed = None;
    let mut seen_at_kill = 0;
    let err = pre_write_backup(&f.config("r"), &mut |n| {
        if killed.is_none() && n > 2_000_000 {
            let pid = pg_dump_of(std::process::id(), f.db.name())
                .expect("this test's pg_dump is running");
            let ok = Command::new("kill")
                .args(["-KILL", &pid.to_string()])
                .status()
                .unwrap()
                .success();
            assert!(ok);
            killed = Some(pid);
            seen_at_kill = n;
        }
    })
    .unwrap_err();
    assert!(killed.is_some() && seen_at_kill > 0);
    let text = err.to_string();
    assert!(matches!(err, Error::ChildFailed { .. }), "{text}");
    assert!(text.contains("killed by signal 9"), "{text}");
    check_clean(&f, &err);
}

#[test]
fn a_role_that_can_write_is_refused() {
    let f = Fixture::new();
    let cfg = cutter_backup::BackupConfig::new(
        &f.backups,
        cutter_core::RunId::new("r").unwrap(),
        f.recipient.clone(),
        f.signer.clone(),
        f.db.exec_config(),
    );
    let err = pre_write_backup(&cfg, &mut |_| {}).unwrap_err();
    let text = err.to_string();
    assert!(matches!(err, Error::Role { .. }), "{text}");
    assert!(text.contains("cutter_exec can change"), "{text}");
    check_clean(&f, &err);
}

#[test]
fn a_full_disk_leaves_nothing() {
    let f = Fixture::new();
    f.grow(8);
    let small = f.dir.path().join("small");
    let _m = Mount::tmpfs(&small, "size=1m,mode=0700");
    let cfg = cutter_backup::BackupConfig::new(
        &small,
        cutter_core::RunId::new("r").unwrap(),
        f.recipient.clone(),
        f.signer.clone(),
        f.ro(),
    );
    let err = pre_write_backup(&cfg, &mut |_| {}).unwrap_err();
    let text = err.to_string();
    assert!(matches!(err, Error::Io { .. }), "{text}");
    assert!(text.contains("the file system is full"), "{text}");
    assert!(text.contains(".r.dump.pgp.partial-"), "{text}");
    let left: Vec<_> = fs::read_dir(&small).unwrap().collect();
    assert!(left.is_empty(), "left behind: {left:?}");
    check_clean(&f, &err);
}

#[test]
fn a_missing_or_unwritable_state_directory_is_refused_before_pg_dump() {
    let f = Fixture::new();
    let (fake, marker) = fake_pg_dump(&f, "exit 0");
    let with_dir = |dir: &Path| {
        cutter_backup::BackupConfig::new(
            dir,
            cutter_core::RunId::new("r").unwrap(),
            f.recipient.clone(),
            f.signer.clone(),
            f.ro(),
        )
        .pg_dump(&fake)
    };
    let err = pre_write_backup(&with_dir(&f.dir.path().join("missing")), &mut |_| {}).unwrap_err();
    assert!(matches!(err, Error::StateDir { .. }), "{err}");
    assert!(err.to_string().contains("does not exist"), "{err}");

    let file = f.dir.path().join("a-file");
    fs::write(&file, b"").unwrap();
    let err = pre_write_backup(&with_dir(&file), &mut |_| {}).unwrap_err();
    assert!(err.to_string().contains("not a directory"), "{err}");

    // Root ignores permission bits, so unwritable means a read-only file system.
    let ro = f.dir.path().join("ro");
    let _m = Mount::tmpfs(&ro, "ro,size=1m");
    let err = pre_write_backup(&with_dir(&ro), &mut |_| {}).unwrap_err();
    assert!(matches!(err, Error::StateDir { .. }), "{err}");
    assert!(err.to_string().contains("read-only"), "{err}");
    assert!(!marker.exists(), "pg_dump was started");
    check_clean(&f, &err);
}

fn damaged_artifact_is_refused(damage: impl Fn(&Path)) {
    let f = Fixture::new();
    let art = pre_write_backup(&f.config("r"), &mut |_| {}).expect("backup");
    damage(&art.path);
    let err = verify_artifact(&art.path, &f.pin()).unwrap_err();
    assert!(matches!(err, Error::ChecksumMismatch { .. }), "{err}");
    assert!(err.to_string().contains("Nothing was decrypted"), "{err}");
    let (fake, marker) = fake_pg_restore(&f);
    let err = restore_proof(&f.restore(&art.path).pg_restore(&fake)).unwrap_err();
    assert!(matches!(err, Error::ChecksumMismatch { .. }), "{err}");
    assert!(!marker.exists(), "pg_restore was started");
    f.assert_no_plaintext();
    assert_secret_free("the error", &err.to_string(), &f.secrets());
}

#[test]
fn a_truncated_artifact_is_refused_before_decrypting() {
    damaged_artifact_is_refused(|p| {
        let len = fs::metadata(p).unwrap().len();
        fs::OpenOptions::new()
            .write(true)
            .open(p)
            .unwrap()
            .set_len(len - 100)
            .unwrap();
    });
}

#[test]
fn a_flipped_bit_is_refused_before_decrypting() {
    damaged_artifact_is_refused(|p| {
        let mut b = fs::read(p).unwrap();
        let mid = b.len() / 2;
        b[mid] ^= 0x10;
        fs::write(p, b).unwrap();
    });
}

#[test]
fn the_wrong_key_or_passphrase_decrypts_nothing() {
    let f = Fixture::new();
    let art = pre_write_backup(&f.config("r"), &mut |_| {}).expect("backup");
    let (fake, marker) = fake_pg_restore(&f);
    let proof = |key: &Path, pass: PassphraseSource| {
        restore_proof(
            &RestoreConfig::new(&art.path, key, f.pin())
                .passphrase(pass)
                .pg_restore(&fake),
        )
        .unwrap_err()
    };

    let other = generate_keys(
        f.dir.path(),
        "other",
        "Other <o@example.org>",
        Some(&Passphrase::new(PASSPHRASE.into())),
    )
    .unwrap();
    let err = proof(
        &other.secret_key,
        PassphraseSource::File(f.passphrase_file.clone()),
    );
    assert!(
        matches!(
            &err,
            Error::Decrypt {
                source: cutter_openpgp::Error::WrongKey { .. },
                ..
            }
        ),
        "{err}"
    );
    assert!(
        err.to_string().contains(other.fingerprint.as_str()),
        "{err}"
    );

    let wrong = f.dir.path().join("wrong-pass");
    common::write_private(&wrong, "not the passphrase\n".as_bytes());
    let err = proof(&f.keys.secret_key, PassphraseSource::File(wrong));
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
    assert!(!err.to_string().contains("not the passphrase"));

    let err = proof(&f.keys.secret_key, PassphraseSource::None);
    assert!(err.to_string().contains("wrong passphrase"), "{err}");
    let err = proof(
        &f.keys.secret_key,
        PassphraseSource::Env("CUTTER_NO_SUCH_VAR_X".into()),
    );
    assert!(matches!(err, Error::Passphrase { .. }), "{err}");
    let err = proof(&f.dir.path().join("missing.sec"), PassphraseSource::None);
    assert!(matches!(err, Error::KeyFile { .. }), "{err}");

    assert!(!marker.exists(), "pg_restore was started");
    f.assert_no_plaintext();
    assert_secret_free("the error", &err.to_string(), &f.secrets());
}

#[test]
fn never_restores_into_the_source_server() {
    let f = Fixture::new();
    let art = pre_write_backup(&f.config("r"), &mut |_| {}).expect("backup");
    let err = restore_proof(
        &f.restore(&art.path)
            .target(RestoreTarget::Server(Box::new(f.db.admin_config()))),
    )
    .unwrap_err();
    assert!(matches!(err, Error::SameServer { .. }), "{err}");
    assert!(err
        .to_string()
        .contains(&f.db.system_identifier().to_string()));
    // Nothing was created on the source.
    let dbs: i64 =
        f.db.admin()
            .query_one(
                "SELECT count(*) FROM pg_database WHERE datname LIKE 'cutter_restore_proof%'",
                &[],
            )
            .unwrap()
            .get(0);
    assert_eq!(dbs, 0);
}

/// `kill -9` of the process taking the backup, while pg_dump streams: no artifact, the
/// temp file holds only ciphertext, and `remove_stale_partials` removes it.
#[test]
fn kill_9_of_the_backup_process_leaves_only_ciphertext_that_is_cleaned_up() {
    let f = Fixture::new();
    f.grow(60);
    let coords = f.dir.path().join("coordinates.json");
    let json = serde_json::to_vec(f.db.coordinates()).unwrap();
    fs::write(&coords, json).unwrap();
    let child_tmp = f.dir.path().join("child-tmp");
    fs::create_dir(&child_tmp).unwrap();
    let mut child = Command::new(std::env::current_exe().unwrap())
        .env("TMPDIR", &child_tmp)
        .args([
            "--exact",
            "kill_9_helper",
            "--nocapture",
            "--test-threads=1",
        ])
        .env("CUTTER_KILL9_COORDS", &coords)
        .env("CUTTER_KILL9_DB", f.db.name())
        .env("CUTTER_KILL9_DIR", &f.backups)
        .env("CUTTER_KILL9_KEY", &f.keys.public_key)
        .env("CUTTER_KILL9_SIGNING_KEY", &f.signing.secret_key)
        .env("CUTTER_KILL9_SIGNING_FPR", f.signing.fingerprint.as_str())
        .env("CUTTER_KILL9_FPR", f.keys.fingerprint.as_str())
        .spawn()
        .unwrap();
    let partial = f
        .backups
        .join(format!(".r.dump.pgp.partial-{}", child.id()));
    let start = Instant::now();
    loop {
        if fs::metadata(&partial).map(|m| m.len()).unwrap_or(0) > 4_000_000 {
            break;
        }
        assert!(
            start.elapsed() < Duration::from_secs(60),
            "the helper never started streaming"
        );
        assert!(
            child.try_wait().unwrap().is_none(),
            "the helper exited early"
        );
        std::thread::sleep(Duration::from_millis(1));
    }
    let pg_dump = pg_dump_of(child.id(), f.db.name()).expect("the helper's pg_dump is running");
    child.kill().unwrap(); // SIGKILL
    child.wait().unwrap();

    assert_eq!(
        f.listing(),
        vec![partial.file_name().unwrap().to_string_lossy().to_string()]
    );
    let bytes = fs::read(&partial).unwrap();
    assert!(cutter_testkit::memfind(&bytes, b"PGDMP").is_none());
    assert!(cutter_testkit::memfind(&bytes, f.canary.as_bytes()).is_none());
    assert!(cutter_testkit::memfind(&bytes, b"bulk-1").is_none());
    // pg_dump dies with its reader.
    let start = Instant::now();
    while !exited(pg_dump) {
        assert!(
            start.elapsed() < Duration::from_secs(10),
            "pg_dump (pid {pg_dump}) outlived the backup process that read its output"
        );
        std::thread::sleep(Duration::from_millis(10));
    }
    // pg_dump's private password file was removed once it was connected.
    let left: Vec<_> = fs::read_dir(&child_tmp).unwrap().collect();
    assert!(left.is_empty(), "password file left behind: {left:?}");
    let cleaned = remove_stale_partials(&f.backups).unwrap();
    assert_eq!(cleaned.removed, vec![partial.clone()]);
    assert!(f.listing().is_empty());
    f.assert_no_plaintext();
}

/// The child half of the test above; does nothing unless started by it.
#[test]
fn kill_9_helper() {
    let Some(coords) = std::env::var_os("CUTTER_KILL9_COORDS") else {
        return;
    };
    let c: cutter_pg::testing::Coordinates =
        serde_json::from_slice(&fs::read(coords).unwrap()).unwrap();
    let db = std::env::var("CUTTER_KILL9_DB").unwrap();
    let pin = Fingerprint::new(&std::env::var("CUTTER_KILL9_FPR").unwrap()).unwrap();
    let key = PathBuf::from(std::env::var_os("CUTTER_KILL9_KEY").unwrap());
    let recipient = load_recipient(&key, &pin).unwrap();
    let signing_pin =
        Fingerprint::new(&std::env::var("CUTTER_KILL9_SIGNING_FPR").unwrap()).unwrap();
    let signer = cutter_backup::ManifestSigner::load(
        &PathBuf::from(std::env::var_os("CUTTER_KILL9_SIGNING_KEY").unwrap()),
        &signing_pin,
        &PassphraseSource::None,
    )
    .unwrap();
    let cfg = cutter_backup::BackupConfig::new(
        PathBuf::from(std::env::var_os("CUTTER_KILL9_DIR").unwrap()),
        cutter_core::RunId::new("r").unwrap(),
        recipient,
        signer,
        c.config(&db, "cutter_verify").unwrap(),
    );
    // Slow the stream down so the parent surely kills us mid-way.
    let _ = pre_write_backup(&cfg, &mut |_| std::thread::sleep(Duration::from_millis(20)));
    panic!("the helper was not killed");
}
