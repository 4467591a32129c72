//! Shared fixtures of the integration tests: a test database with the reference schema
//! and the baseline (cutter-pg's `TestDb`), backup keys, canary rows, scans for
//! plaintext, fake programs, watchers of child processes, GnuPG in a private home.
#![allow(dead_code)]

use std::collections::BTreeMap;
use std::fs;
use std::io::Read;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime};

use cutter_backup::{
    generate_keys, load_recipient, BackupConfig, GeneratedKeyFiles, ManifestSigner, Passphrase,
    PassphraseSource, Recipient, RestoreConfig,
};
use cutter_core::{Fingerprint, RunId};
use cutter_pg::config::ConnConfig;
use cutter_pg::testing::TestDb;

pub const PASSPHRASE: &str = "correct horse battery staple 7f3a";

/// A test database plus everything a backup needs.
pub struct Fixture {
    pub db: TestDb,
    pub dir: tempfile::TempDir,
    /// Fake programs live here, outside the state directory.
    pub bin: tempfile::TempDir,
    pub backups: PathBuf,
    pub keys: GeneratedKeyFiles,
    pub recipient: Recipient,
    /// The manifest signing key (unprotected, mode 0600).
    pub signing: GeneratedKeyFiles,
    pub signer: ManifestSigner,
    pub passphrase_file: PathBuf,
    pub canary: String,
    pub started: SystemTime,
}

impl Fixture {
    pub fn new() -> Fixture {
        let started = SystemTime::now() - Duration::from_secs(1);
        let db = TestDb::new();
        let dir = tempfile::tempdir().expect("tempdir");
        let backups = dir.path().join("backups");
        fs::create_dir(&backups).expect("backups dir");
        let keydir = dir.path().join("keys");
        fs::create_dir(&keydir).expect("keys dir");
        let keys = generate_keys(
            &keydir,
            "backup",
            "Backup <backup@example.org>",
            Some(&Passphrase::new(PASSPHRASE.into())),
        )
        .expect("generate keys");
        let recipient = load_recipient(&keys.public_key, &keys.fingerprint).expect("recipient");
        let signing = generate_keys(&keydir, "signing", "Signing <signing@example.org>", None)
            .expect("generate the signing key");
        let signer = ManifestSigner::load(
            &signing.secret_key,
            &signing.fingerprint,
            &PassphraseSource::None,
        )
        .expect("signer");
        let passphrase_file = keydir.join("passphrase");
        fs::write(&passphrase_file, format!("{PASSPHRASE}\n")).expect("passphrase file");
        fs::set_permissions(&passphrase_file, fs::Permissions::from_mode(0o600)).unwrap();
        let canary = format!("CANARY-{:016x}", rand_u64());
        let f = Fixture {
            db,
            dir,
            bin: tempfile::tempdir().expect("tempdir"),
            backups,
            keys,
            recipient,
            signing,
            signer,
            passphrase_file,
            canary,
            started,
        };
        f.insert_canary();
        f
    }

    /// The read-only role's connection (`cutter_verify`, with a password).
    pub fn ro(&self) -> ConnConfig {
        self.db.verify_config()
    }

    pub fn config(&self, name: &str) -> BackupConfig {
        BackupConfig::new(
            &self.backups,
            RunId::new(name).expect("run id"),
            self.recipient.clone(),
            self.signer.clone(),
            self.ro(),
        )
    }

    /// The pinned manifest signing fingerprint.
    pub fn pin(&self) -> Fingerprint {
        self.signing.fingerprint.clone()
    }

    /// A restore proof of `artifact` with the backup's secret key and passphrase file.
    pub fn restore(&self, artifact: &Path) -> RestoreConfig {
        RestoreConfig::new(artifact, &self.keys.secret_key, self.pin())
            .passphrase(PassphraseSource::File(self.passphrase_file.clone()))
    }

    /// Re-signs a manifest edited in place with the pinned signing key (what only the
    /// holder of that key can do): for tests of the comparison itself.
    pub fn resign(&self, manifest: &Path) {
        let bytes = fs::read(manifest).unwrap();
        let secret = cutter_backup::load_secret_key(&self.signing.secret_key).unwrap();
        let sig = cutter_openpgp::sign_detached(&secret, &Passphrase::new(String::new()), &bytes)
            .unwrap();
        fs::write(cutter_backup::signature_path_for(manifest), sig).unwrap();
    }

    /// A ledger row whose text must never show up in plaintext outside the database.
    fn insert_canary(&self) {
        let mut c = self.db.admin();
        c.execute(
            "INSERT INTO cutter_governance.review_decision (run_id, decision, payload, actor) \
             VALUES ('canary-run', $1, jsonb_build_object('note', $1::text), 'test')",
            &[&self.canary],
        )
        .expect("insert canary");
    }

    /// Adds about `mb` MB of ledger rows (review decisions with 2 KB payloads).
    pub fn grow(&self, mb: usize) {
        let rows = (mb * 1_000_000 / 2_100).max(1) as i64;
        let mut c = self.db.admin();
        c.execute(
            "INSERT INTO cutter_governance.review_decision (run_id, decision, payload, actor) \
             SELECT 'bulk-' || g, 'approve', \
                    jsonb_build_object('text', (SELECT string_agg(md5(g::text || '.' || i), ' ') \
                                                FROM generate_series(1, 60) i)), 'bulk' \
             FROM generate_series(1, $1::int8) g",
            &[&rows],
        )
        .expect("grow");
    }

    pub fn verify_password(&self) -> String {
        self.db.coordinates().verify_password.clone()
    }

    pub fn superuser_password(&self) -> String {
        self.db.coordinates().superuser_password.clone()
    }

    /// Secrets that must never appear in arguments, logs or errors.
    pub fn secrets(&self) -> Vec<String> {
        let mut v = vec![
            self.verify_password(),
            self.superuser_password(),
            PASSPHRASE.to_string(),
        ];
        let sec = fs::read_to_string(&self.keys.secret_key).unwrap();
        // A distinctive line of the armored secret key.
        if let Some(line) = sec.lines().find(|l| l.len() > 40) {
            v.push(line.to_string());
        }
        v
    }

    /// Files in the backups directory (names).
    pub fn listing(&self) -> Vec<String> {
        let mut v: Vec<String> = fs::read_dir(&self.backups)
            .map(|rd| {
                rd.map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
                    .collect()
            })
            .unwrap_or_default();
        v.sort();
        v
    }

    /// No plaintext dump bytes (PGDMP magic, the canary) in the state directory or the
    /// temp directory.
    pub fn assert_no_plaintext(&self) {
        let needles: Vec<&[u8]> = vec![b"PGDMP", self.canary.as_bytes()];
        let hits = scan(self.dir.path(), &needles, None);
        assert!(
            hits.is_empty(),
            "plaintext in the state directory: {hits:?}"
        );
        let tmp = std::env::temp_dir();
        let hits = scan(&tmp, &[self.canary.as_bytes()], Some(self.started));
        assert!(hits.is_empty(), "table data in {}: {hits:?}", tmp.display());
        let hits: Vec<_> = scan(&tmp, &[b"PGDMP"], Some(self.started))
            .into_iter()
            .filter(|(_, at)| *at == 0)
            .collect();
        assert!(hits.is_empty(), "a dump in {}: {hits:?}", tmp.display());
    }
}

/// Writes a secret file with mode 0600 (a looser one is refused).
pub fn write_private(path: &Path, bytes: &[u8]) {
    fs::write(path, bytes).unwrap();
    fs::set_permissions(path, fs::Permissions::from_mode(0o600)).unwrap();
}

pub fn rand_u64() -> u64 {
    let mut b = [0u8; 8];
    fs::File::open("/dev/urandom")
        .and_then(|mut f| f.read_exact(&mut b))
        .expect("urandom");
    u64::from_le_bytes(b)
}

use cutter_testkit::scan;

/// A fake PostgreSQL program: answers `--version` like `version_line`, otherwise runs
/// `body` (a shell snippet) after touching `<dir>/<name>.ran`.
pub fn fake_program(dir: &Path, name: &str, version_line: &str, body: &str) -> (PathBuf, PathBuf) {
    let path = dir.join(name);
    let marker = dir.join(format!("{name}.ran"));
    let script = format!(
        "#!/bin/sh\nif [ \"$1\" = \"--version\" ]; then echo '{version_line}'; exit 0; fi\n\
         touch '{}'\n{body}\n",
        marker.display()
    );
    fs::write(&path, script).unwrap();
    fs::set_permissions(&path, fs::Permissions::from_mode(0o755)).unwrap();
    (path, marker)
}

/// What was seen of a child process.
#[derive(Clone, Debug, Default)]
pub struct Seen {
    pub cmdline: String,
    pub environ: String,
}

/// Records the arguments and environment of every descendant of this process whose
/// name is one of `names`, polling /proc until dropped.
pub struct ChildWatcher {
    stop: Arc<AtomicBool>,
    seen: Arc<Mutex<BTreeMap<u32, (String, Seen)>>>,
    thread: Option<std::thread::JoinHandle<()>>,
}

fn ppid_and_comm(pid: u32) -> Option<(u32, String)> {
    let stat = fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let open = stat.find('(')?;
    let close = stat.rfind(')')?;
    let comm = stat[open + 1..close].to_string();
    let rest: Vec<&str> = stat[close + 2..].split_whitespace().collect();
    Some((rest.get(1)?.parse().ok()?, comm))
}

/// Pids of the descendants of `root`.
pub fn descendants(root: u32) -> Vec<(u32, String)> {
    let mut all = Vec::new();
    if let Ok(rd) = fs::read_dir("/proc") {
        for e in rd.flatten() {
            if let Some(pid) = e.file_name().to_str().and_then(|s| s.parse::<u32>().ok()) {
                if let Some((ppid, comm)) = ppid_and_comm(pid) {
                    all.push((pid, ppid, comm));
                }
            }
        }
    }
    let mut out = Vec::new();
    let mut frontier = vec![root];
    while let Some(p) = frontier.pop() {
        for (pid, ppid, comm) in &all {
            if *ppid == p {
                out.push((*pid, comm.clone()));
                frontier.push(*pid);
            }
        }
    }
    out
}

impl ChildWatcher {
    pub fn start(names: &[&str]) -> ChildWatcher {
        let names: Vec<String> = names.iter().map(|s| s.to_string()).collect();
        let stop = Arc::new(AtomicBool::new(false));
        let seen = Arc::new(Mutex::new(BTreeMap::new()));
        let (s2, seen2) = (Arc::clone(&stop), Arc::clone(&seen));
        let me = std::process::id();
        let thread = std::thread::spawn(move || {
            while !s2.load(Ordering::Relaxed) {
                for (pid, comm) in descendants(me) {
                    if !names.contains(&comm) {
                        continue;
                    }
                    let read = |f: &str| {
                        fs::read(format!("/proc/{pid}/{f}"))
                            .map(|b| String::from_utf8_lossy(&b).replace('\0', " "))
                            .unwrap_or_default()
                    };
                    let s = Seen {
                        cmdline: read("cmdline"),
                        environ: read("environ"),
                    };
                    if !s.cmdline.is_empty() {
                        seen2.lock().unwrap().entry(pid).or_insert((comm, s));
                    }
                }
                std::thread::sleep(Duration::from_millis(2));
            }
        });
        ChildWatcher {
            stop,
            seen,
            thread: Some(thread),
        }
    }

    pub fn finish(mut self) -> Vec<(String, Seen)> {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
        let seen = self.seen.lock().unwrap();
        seen.values().cloned().collect()
    }
}

/// Asserts that none of `secrets` is in `text`.
pub fn assert_secret_free(what: &str, text: &str, secrets: &[String]) {
    for s in secrets {
        assert!(!s.is_empty());
        assert!(
            !text.contains(s.as_str()),
            "a secret appears in {what}: {text}"
        );
    }
}

/// GnuPG with a private home directory; its agent is stopped on drop.
pub struct Gpg {
    pub home: tempfile::TempDir,
}

impl Gpg {
    pub fn new() -> Gpg {
        let home = tempfile::Builder::new()
            .prefix("gpg-")
            .tempdir_in("/tmp")
            .expect("gnupg home");
        fs::set_permissions(home.path(), fs::Permissions::from_mode(0o700)).unwrap();
        Gpg { home }
    }

    pub fn cmd(&self) -> Command {
        let mut c = Command::new("gpg");
        c.env("GNUPGHOME", self.home.path()).args([
            "--batch",
            "--no-tty",
            "--quiet",
            "--trust-model",
            "always",
        ]);
        c
    }

    /// Runs gpg with `args`, feeding `stdin`; panics with its stderr on failure.
    pub fn run(&self, args: &[&str], stdin: &[u8]) -> Vec<u8> {
        let mut child = self
            .cmd()
            .args(args)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("spawn gpg");
        {
            use std::io::Write;
            let mut si = child.stdin.take().unwrap();
            let _ = si.write_all(stdin);
        }
        let out = child.wait_with_output().expect("gpg");
        assert!(
            out.status.success(),
            "gpg {args:?} failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        out.stdout
    }

    /// Imports a secret key protected by [`PASSPHRASE`] (given through a descriptor).
    pub fn import_secret(&self, key: &Path) {
        self.with_passphrase("--import", key);
    }

    /// Decrypts `path` to memory with the imported key ([`PASSPHRASE`] through a
    /// descriptor, never the command line).
    pub fn decrypt(&self, path: &Path) -> Vec<u8> {
        self.with_passphrase("--decrypt", path)
    }

    fn with_passphrase(&self, command: &str, path: &Path) -> Vec<u8> {
        let mut args = vec![
            "--pinentry-mode",
            "loopback",
            "--passphrase-fd",
            "0",
            command,
        ];
        if command == "--decrypt" {
            args.extend(["--output", "-"]);
        }
        args.push(path.to_str().unwrap());
        self.run(&args, format!("{PASSPHRASE}\n").as_bytes())
    }

    /// `gpg --quick-gen-key` without a passphrase; returns the fingerprint.
    pub fn gen_key(&self, uid: &str) -> String {
        self.run(
            &[
                "--pinentry-mode",
                "loopback",
                "--passphrase",
                "",
                "--quick-gen-key",
                uid,
                "default",
                "default",
                "never",
            ],
            b"",
        );
        let listing =
            String::from_utf8(self.run(&["--with-colons", "--list-keys", uid], b"")).unwrap();
        listing
            .lines()
            .find(|l| l.starts_with("fpr:"))
            .and_then(|l| l.split(':').nth(9))
            .expect("fingerprint")
            .to_string()
    }
}

impl Drop for Gpg {
    fn drop(&mut self) {
        let _ = Command::new("gpgconf")
            .env("GNUPGHOME", self.home.path())
            .args(["--kill", "all"])
            .status();
    }
}
