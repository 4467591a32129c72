//! Test helpers: a throw-away GnuPG home, and deterministic test data.
//!
//! Passphrases are never put on a command line: they go to gpg through its stdin with
//! `--passphrase-fd 0` (a pipe), while the data is passed in files.

#![allow(dead_code)]

use std::{
    fs,
    io::Write,
    os::unix::fs::PermissionsExt,
    path::{Path, PathBuf},
    process::{Command, Output, Stdio},
};

use tempfile::TempDir;

/// The program `name` on `PATH`. Panics (fails the test, never skips it) with `missing`
/// if it is absent.
pub fn binary_on_path(name: &str, missing: &str) -> PathBuf {
    let path = std::env::var_os("PATH").expect("PATH is set");
    std::env::split_paths(&path)
        .map(|d| d.join(name))
        .find(|p| p.is_file())
        .unwrap_or_else(|| panic!("{missing}"))
}

/// Runs `c` with `input` on its stdin and its stdout and stderr captured. Returns the
/// output whatever the exit status.
pub fn output_with_input(mut c: Command, input: &[u8]) -> Output {
    let mut child = c
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("spawn {:?}: {e}", c.get_program()));
    child
        .stdin
        .take()
        .expect("stdin")
        .write_all(input)
        .expect("write to the child's stdin");
    child.wait_with_output().expect("wait for the child")
}

/// The `gpg` binary, looked up once on `PATH`. Panics (fails the test) if absent.
pub fn gpg_binary() -> PathBuf {
    static GPG: std::sync::OnceLock<PathBuf> = std::sync::OnceLock::new();
    GPG.get_or_init(|| {
        binary_on_path(
            "gpg",
            "gpg (GnuPG 2.2) must be installed and on PATH for these tests",
        )
    })
    .clone()
}

/// A temporary GNUPGHOME (mode 0700); the agent is killed on drop.
pub struct Gpg {
    home: TempDir,
    pub work: TempDir,
}

impl Gpg {
    pub fn new() -> Self {
        let home = tempfile::Builder::new()
            .prefix("gh")
            .tempdir_in("/tmp")
            .expect("temp GNUPGHOME");
        fs::set_permissions(home.path(), fs::Permissions::from_mode(0o700)).expect("chmod 700");
        let work = tempfile::tempdir().expect("temp work dir");
        Self { home, work }
    }

    pub fn home(&self) -> &Path {
        self.home.path()
    }

    /// A path in the work directory.
    pub fn path(&self, name: &str) -> PathBuf {
        self.work.path().join(name)
    }

    /// Writes `data` to a work file and returns its path.
    pub fn file(&self, name: &str, data: &[u8]) -> PathBuf {
        let p = self.path(name);
        fs::write(&p, data).expect("write work file");
        p
    }

    fn command(&self) -> Command {
        let mut c = Command::new(gpg_binary());
        c.env("GNUPGHOME", self.home.path())
            .env("LC_ALL", "C")
            .arg("--batch")
            .arg("--no-tty")
            .arg("--pinentry-mode")
            .arg("loopback");
        c
    }

    /// Runs gpg with `args`; `passphrase` (possibly empty) is fed on stdin for
    /// `--passphrase-fd 0`. Returns the output whatever the exit status.
    pub fn try_run(&self, args: &[&str], passphrase: Option<&str>) -> Output {
        let mut c = self.command();
        if passphrase.is_some() {
            c.arg("--passphrase-fd").arg("0");
        }
        c.args(args);
        let input = passphrase.map(|p| format!("{p}\n")).unwrap_or_default();
        output_with_input(c, input.as_bytes())
    }

    /// Runs gpg with `args` and `input` on its stdin (e.g. for `--command-fd 0`). Returns
    /// the output whatever the exit status.
    pub fn try_run_with_input(&self, args: &[&str], input: &[u8]) -> Output {
        let mut c = self.command();
        c.args(args);
        output_with_input(c, input)
    }

    /// Like [`try_run`](Self::try_run) but panics with gpg's stderr unless it succeeded.
    pub fn run(&self, args: &[&str], passphrase: Option<&str>) -> Output {
        let out = self.try_run(args, passphrase);
        assert!(
            out.status.success(),
            "gpg {args:?} failed: {}\n{}",
            out.status,
            String::from_utf8_lossy(&out.stderr)
        );
        out
    }

    /// `gpg --quick-gen-key uid algo usage expire`, returns the primary fingerprint.
    /// An empty passphrase makes an unprotected key.
    pub fn gen_key(&self, uid: &str, algo: &str, usage: &str, expire: &str, pass: &str) -> String {
        self.run(&["--quick-gen-key", uid, algo, usage, expire], Some(pass));
        self.fingerprints(uid).0
    }

    /// `gpg --quick-add-key fpr algo usage expire`.
    pub fn add_key(&self, fpr: &str, algo: &str, usage: &str, expire: &str, pass: &str) {
        self.run(&["--quick-add-key", fpr, algo, usage, expire], Some(pass));
    }

    /// (primary fingerprint, [(subkey fingerprint, capabilities)]) of the key matching
    /// `which`.
    pub fn fingerprints(&self, which: &str) -> (String, Vec<(String, String)>) {
        let out = self.run(&["--with-colons", "--list-keys", which], None);
        let text = String::from_utf8(out.stdout).expect("utf8");
        let mut primary = None;
        let mut subs = Vec::new();
        let mut last = "";
        let mut caps = String::new();
        for line in text.lines() {
            let f: Vec<&str> = line.split(':').collect();
            match f[0] {
                "pub" => {
                    last = "pub";
                }
                "sub" => {
                    last = "sub";
                    caps = f[11].to_string();
                }
                "fpr" if last == "pub" => {
                    primary = Some(f[9].to_string());
                    last = "";
                }
                "fpr" if last == "sub" => {
                    subs.push((f[9].to_string(), caps.clone()));
                    last = "";
                }
                _ => {}
            }
        }
        (primary.expect("a primary key"), subs)
    }

    /// The fingerprint of the (single) encryption subkey.
    pub fn encryption_subkey(&self, fpr: &str) -> String {
        let (_, subs) = self.fingerprints(fpr);
        let enc: Vec<_> = subs.into_iter().filter(|(_, c)| c.contains('e')).collect();
        assert_eq!(enc.len(), 1, "exactly one encryption subkey expected");
        enc[0].0.clone()
    }

    pub fn export_public(&self, fpr: &str, armor: bool) -> Vec<u8> {
        let mut args = vec!["--export"];
        if armor {
            args.insert(0, "--armor");
        }
        args.push(fpr);
        let out = self.run(&args, None).stdout;
        assert!(!out.is_empty(), "gpg exported nothing for {fpr}");
        out
    }

    pub fn export_secret(&self, fpr: &str, pass: &str) -> Vec<u8> {
        let out = self
            .run(&["--armor", "--export-secret-keys", fpr], Some(pass))
            .stdout;
        assert!(!out.is_empty(), "gpg exported no secret key for {fpr}");
        out
    }

    pub fn import(&self, data: &[u8], pass: Option<&str>) {
        let f = self.file("import.asc", data);
        self.run(&["--import", f.to_str().expect("utf8 path")], pass);
    }

    /// `gpg --decrypt` of `ciphertext`; returns (plaintext, status lines).
    pub fn decrypt(&self, ciphertext: &[u8], pass: Option<&str>) -> (Vec<u8>, String) {
        let input = self.file("to-decrypt.pgp", ciphertext);
        let output = self.path("decrypted.bin");
        let _ = fs::remove_file(&output);
        let out = self.run(
            &[
                "--status-fd",
                "2",
                "--output",
                output.to_str().expect("utf8"),
                "--decrypt",
                input.to_str().expect("utf8"),
            ],
            pass,
        );
        (
            fs::read(&output).expect("decrypted output"),
            String::from_utf8_lossy(&out.stderr).into_owned(),
        )
    }

    /// `gpg --encrypt -r fpr <extra>` of `plaintext` (binary output), e.g. with
    /// `--cipher-algo 3DES --compress-algo none`.
    pub fn encrypt_with(&self, fpr: &str, plaintext: &[u8], extra: &[&str]) -> Vec<u8> {
        let input = self.file("to-encrypt.bin", plaintext);
        let output = self.path("encrypted.pgp");
        let _ = fs::remove_file(&output);
        let mut args = vec![
            "--trust-model",
            "always",
            "--output",
            output.to_str().expect("utf8"),
            "--recipient",
            fpr,
        ];
        args.extend_from_slice(extra);
        args.extend(["--encrypt", input.to_str().expect("utf8")]);
        self.run(&args, None);
        fs::read(&output).expect("encrypted output")
    }

    /// `gpg --encrypt -r fpr` of `plaintext` (binary output).
    pub fn encrypt(&self, fpr: &str, plaintext: &[u8]) -> Vec<u8> {
        let input = self.file("to-encrypt.bin", plaintext);
        let output = self.path("encrypted.pgp");
        let _ = fs::remove_file(&output);
        self.run(
            &[
                "--trust-model",
                "always",
                "--output",
                output.to_str().expect("utf8"),
                "--recipient",
                fpr,
                "--encrypt",
                input.to_str().expect("utf8"),
            ],
            None,
        );
        fs::read(&output).expect("encrypted output")
    }
}

impl Drop for Gpg {
    fn drop(&mut self) {
        let gpgconf = gpg_binary().with_file_name("gpgconf");
        let _ = Command::new(gpgconf)
            .env("GNUPGHOME", self.home.path())
            .args(["--kill", "gpg-agent"])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status();
    }
}

/// Deterministic pseudo-random bytes (xorshift64*), incompressible enough to exercise
/// the cipher, reproducible without a dependency.
pub fn data(len: usize, seed: u64) -> Vec<u8> {
    let mut out = Vec::with_capacity(len + 8);
    let mut x = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
    while out.len() < len {
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        out.extend_from_slice(&x.wrapping_mul(0x2545_F491_4F6C_DD1D).to_le_bytes());
    }
    out.truncate(len);
    out
}

/// Reads `data` in pieces of the given sizes (cycled), as a pipe would deliver them.
pub struct Pieces<'a> {
    pub data: &'a [u8],
    pub pieces: &'a [usize],
    pub i: usize,
}

impl std::io::Read for Pieces<'_> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let want = self.pieces[self.i % self.pieces.len()].max(1);
        self.i += 1;
        let n = want.min(buf.len()).min(self.data.len());
        buf[..n].copy_from_slice(&self.data[..n]);
        self.data = &self.data[n..];
        Ok(n)
    }
}

/// Encrypts `plain` to `r`, read in pieces of the given sizes.
pub fn encrypt_pieces(r: &cutter_openpgp::Recipient, plain: &[u8], pieces: &[usize]) -> Vec<u8> {
    let mut out = Vec::new();
    let n = cutter_openpgp::encrypt(
        r,
        Pieces {
            data: plain,
            pieces,
            i: 0,
        },
        &mut out,
    )
    .expect("encrypt");
    assert_eq!(n, plain.len() as u64, "plaintext count");
    out
}

/// A key of ours known to `gpg` (secret imported, no passphrase) and to `sqop` (the
/// secret key file), and the `sqop` binary: for decrypting our messages three ways.
pub struct Interop {
    pub gpg: Gpg,
    pub key_file: PathBuf,
    pub secret: cutter_openpgp::SecretKey,
    pub recipient: cutter_openpgp::Recipient,
    pub sqop: PathBuf,
}

impl Interop {
    pub fn new(uid: &str) -> Self {
        let gpg = Gpg::new();
        let generated = cutter_openpgp::generate_key(uid, None).expect("generate");
        gpg.import(generated.secret_armored.as_bytes(), Some(""));
        let key_file = gpg.file("interop.sec.asc", generated.secret_armored.as_bytes());
        let secret = cutter_openpgp::SecretKey::from_bytes(generated.secret_armored.as_bytes())
            .expect("secret");
        let recipient = cutter_openpgp::Recipient::pinned(
            cutter_openpgp::PublicKey::from_bytes(generated.public_armored.as_bytes())
                .expect("public"),
            &generated.fingerprint,
        )
        .expect("pinned");
        let sqop = binary_on_path(
            "sqop",
            "sqop must be installed (Debian package `sqop`; `cargo xtask test` installs it)",
        );
        Self {
            gpg,
            key_file,
            secret,
            recipient,
            sqop,
        }
    }

    /// `sqop decrypt <key file>` of `ciphertext`.
    pub fn sqop_decrypt(&self, ciphertext: &[u8]) -> Output {
        let mut c = Command::new(&self.sqop);
        c.arg("decrypt").arg(&self.key_file);
        output_with_input(c, ciphertext)
    }
}
