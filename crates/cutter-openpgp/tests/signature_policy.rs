//! Which signatures `verify_detached` accepts, with keys and signatures made by GnuPG 2.2
//! (backdated with `--faked-system-time`) and by Sequoia's `sqop`: judged at the
//! verifier's time, never dated in the future, no weak digests, no weak keys.

mod common;

use std::{
    path::PathBuf,
    process::Command,
    time::{Duration, SystemTime, UNIX_EPOCH},
};

use common::Gpg;
use cutter_openpgp::{verify_detached, Error, Fingerprint, PublicKey};

const DAY: u64 = 86_400;
const DOC: &[u8] = b"cutter-approval/1\nrun_id: r-policy\n";

fn fp(s: &str) -> Fingerprint {
    Fingerprint::new(s).expect("fingerprint")
}

fn now_secs() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .expect("clock")
        .as_secs()
}

fn time(secs: u64) -> SystemTime {
    UNIX_EPOCH + Duration::from_secs(secs)
}

/// `--faked-system-time` for a frozen clock at `secs`.
fn faked(secs: u64) -> String {
    format!("{secs}!")
}

impl Gpg {
    /// `--quick-gen-key` with the clock at `at`; returns the primary fingerprint.
    fn gen_key_at(&self, at: u64, uid: &str, algo: &str, usage: &str, expire: &str) -> String {
        let at = faked(at);
        self.run(
            &[
                "--faked-system-time",
                &at,
                "--quick-gen-key",
                uid,
                algo,
                usage,
                expire,
            ],
            Some(""),
        );
        self.fingerprints(uid).0
    }

    /// `--quick-add-key` with the clock at `at`; returns the new subkey's fingerprint.
    fn add_key_at(&self, at: u64, fpr: &str, algo: &str, usage: &str, expire: &str) -> String {
        let before = self.fingerprints(fpr).1;
        let at = faked(at);
        self.run(
            &[
                "--faked-system-time",
                &at,
                "--quick-add-key",
                fpr,
                algo,
                usage,
                expire,
            ],
            Some(""),
        );
        let after = self.fingerprints(fpr).1;
        after
            .into_iter()
            .find(|s| !before.contains(s))
            .expect("a new subkey")
            .0
    }

    /// A detached signature over [`DOC`] by `fpr`, made with the clock at `at`, with
    /// `extra` arguments (e.g. `--digest-algo SHA1`).
    fn sign_at(&self, at: u64, fpr: &str, extra: &[&str]) -> Vec<u8> {
        let doc = self.file("doc.txt", DOC);
        let sig = self.path("doc.sig");
        let _ = std::fs::remove_file(&sig);
        let at = faked(at);
        let mut args = vec!["--faked-system-time", &at, "--local-user", fpr];
        args.extend(extra);
        args.extend(["--output", sig.to_str().expect("utf8")]);
        args.extend(["--detach-sign", doc.to_str().expect("utf8")]);
        self.run(&args, Some(""));
        std::fs::read(&sig).expect("signature")
    }

    /// Runs `gpg --expert --edit-key fpr` with the clock at `at`, giving it the key-edit
    /// `commands` (one per line) to select subkey `sub` and change it.
    fn edit_subkey_at(&self, at: u64, fpr: &str, sub: &str, commands: &str) {
        let (_, subs) = self.fingerprints(fpr);
        let n = subs.iter().position(|(s, _)| s == sub).expect("subkey") + 1;
        let at = faked(at);
        let args = ["--expert", "--faked-system-time", &at, "--command-fd", "0"];
        let out = self.try_run_with_input(
            &[&args[..], &["--edit-key", fpr]].concat(),
            format!("key {n}\n{commands}save\n").as_bytes(),
        );
        assert!(
            out.status.success(),
            "editing subkey {sub} ({commands:?}): {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }

    /// An Ed25519 signing key without expiry made at `at`: its fingerprint.
    fn signing_key_at(&self, at: u64, uid: &str) -> String {
        self.gen_key_at(at, uid, "ed25519", "sign", "never")
    }

    /// A certification-only Ed25519 primary key and an Ed25519 signing subkey expiring
    /// after `sub_expire`, both made at `at`: (primary, subkey) fingerprints.
    fn cert_with_signing_subkey(&self, at: u64, uid: &str, sub_expire: &str) -> (String, String) {
        let fpr = self.gen_key_at(at, uid, "ed25519", "cert", "never");
        let sub = self.add_key_at(at, &fpr, "ed25519", "sign", sub_expire);
        (fpr, sub)
    }

    fn public(&self, fpr: &str) -> PublicKey {
        PublicKey::from_bytes(&self.export_public(fpr, true)).expect("public key")
    }
}

/// Verifies at `at` and expects a refusal whose message names the key and says each of
/// `says`; returns it.
fn refused(key: &PublicKey, sig: &[u8], at: u64, says: &[&str]) -> Error {
    let err = verify_detached(std::slice::from_ref(key), DOC, sig, time(at))
        .expect_err("the signature was accepted");
    let msg = err.to_string();
    assert!(msg.contains(key.fingerprint().as_str()), "{msg}");
    for part in says {
        assert!(msg.contains(part), "{part:?} not in: {msg}");
    }
    err
}

fn accepted(key: &PublicKey, sig: &[u8], at: u64) {
    assert_eq!(
        verify_detached(std::slice::from_ref(key), DOC, sig, time(at)).expect("accepted"),
        key.fingerprint()
    );
}

#[test]
fn a_signature_dated_more_than_five_minutes_ahead_is_refused() {
    let gpg = Gpg::new();
    let now = now_secs();
    let fpr = gpg.signing_key_at(now - DAY, "Ahead <ahead@example.org>");
    let key = gpg.public(&fpr);

    let ahead = gpg.sign_at(now + 10 * 60, &fpr, &[]);
    let err = refused(&key, &ahead, now, &["more than 5 minutes after"]);
    assert!(matches!(err, Error::SignerNotValid { .. }), "{err:?}");
    // The same signature is fine once its time has come.
    accepted(&key, &ahead, now + 10 * 60);

    // Clock skew within five minutes is tolerated.
    let skewed = gpg.sign_at(now + 4 * 60, &fpr, &[]);
    accepted(&key, &skewed, now);
}

#[test]
fn a_signature_older_than_its_key_is_refused() {
    let gpg = Gpg::new();
    let now = now_secs();
    let fpr = gpg.signing_key_at(now - DAY, "Before <before@example.org>");
    // gpg refuses this unless told to ignore the time conflict.
    let sig = gpg.sign_at(now - 2 * DAY, &fpr, &["--ignore-time-conflict"]);
    let says = ["before the primary key that made it was created"];
    refused(&gpg.public(&fpr), &sig, now, &says);
}

#[test]
fn md5_sha1_and_ripemd160_signatures_are_refused() {
    let gpg = Gpg::new();
    let now = now_secs();
    let uid = "Digest <digest@example.org>";
    let fpr = gpg.gen_key_at(now - 60, uid, "rsa2048", "sign", "never");
    let key = gpg.public(&fpr);
    // An RSA-2048 key and SHA-256 are fine.
    accepted(
        &key,
        &gpg.sign_at(now, &fpr, &["--digest-algo", "SHA256"]),
        now,
    );

    for (algo, name) in [
        ("SHA1", "SHA-1"),
        ("MD5", "MD5"),
        ("RIPEMD160", "RIPEMD-160"),
    ] {
        let sig = gpg.sign_at(now, &fpr, &["--digest-algo", algo]);
        let digest = format!("uses the {name} digest");
        let err = refused(&key, &sig, now, &[&digest, "are not accepted"]);
        assert!(matches!(err, Error::WeakAlgorithm { .. }), "{err:?}");
    }
    // An Ed25519 key signing with SHA-1 (which EdDSA itself refuses to verify) is
    // refused for the digest, not reported as tampered data.
    let ed = gpg.signing_key_at(now - 60, "Ed <ed@example.org>");
    let ed_key = gpg.public(&ed);
    let sig = gpg.sign_at(now, &ed, &["--digest-algo", "SHA1"]);
    let err = refused(
        &ed_key,
        &sig,
        now,
        &["uses the SHA-1 digest", "are not accepted"],
    );
    assert!(matches!(err, Error::WeakAlgorithm { .. }), "{err:?}");
}

#[test]
fn rsa_below_2048_bits_and_dsa_keys_are_refused() {
    let gpg = Gpg::new();
    let now = now_secs();
    for (algo, says) in [
        (
            "rsa1024",
            "RSA-1024 key, and RSA keys need at least 2048 bits",
        ),
        ("dsa2048", "DSA key, and DSA keys are not accepted"),
    ] {
        let uid = format!("{algo} <{algo}@example.org>");
        let fpr = gpg.gen_key_at(now - 60, &uid, algo, "sign", "never");
        let sig = gpg.sign_at(now, &fpr, &["--digest-algo", "SHA256"]);
        let err = refused(&gpg.public(&fpr), &sig, now, &[says]);
        assert!(matches!(err, Error::WeakAlgorithm { .. }), "{err:?}");
    }

    // A weak signing subkey under a strong primary key is refused too, naming the subkey.
    let uid = "Weak Sub <ws@example.org>";
    let fpr = gpg.gen_key_at(now - 60, uid, "ed25519", "cert", "never");
    let sub = gpg.add_key_at(now - 60, &fpr, "rsa1024", "sign", "never");
    let sig = gpg.sign_at(now, &fpr, &[]);
    let names = format!("signing subkey {sub}: it is an RSA-1024 key");
    refused(&gpg.public(&fpr), &sig, now, &[&names]);
}

#[test]
fn an_expired_key_cannot_sign_by_backdating() {
    let gpg = Gpg::new();
    let now = now_secs();
    let made = now - 10 * DAY;
    // Valid for two days, ten days ago; the signature claims to be from day one.
    let uid = "Expired <expired@example.org>";
    let fpr = gpg.gen_key_at(made, uid, "ed25519", "sign", "2d");
    let key = gpg.public(&fpr);
    let sig = gpg.sign_at(made + DAY, &fpr, &[]);
    accepted(&key, &sig, made + DAY + 60);

    let says = ["the primary key expired on", "at the time of verification"];
    let err = refused(&key, &sig, now, &says);
    assert!(matches!(err, Error::SignerNotValid { .. }), "{err:?}");
}

#[test]
fn an_expired_signing_subkey_cannot_sign_by_backdating() {
    let gpg = Gpg::new();
    let made = now_secs() - 10 * DAY;
    let (fpr, sub) = gpg.cert_with_signing_subkey(made, "Sub Exp <subexp@example.org>", "2d");
    let key = gpg.public(&fpr);
    let sig = gpg.sign_at(made + DAY, &fpr, &[]);
    accepted(&key, &sig, made + DAY + 60);

    let expired = format!("subkey {sub} expired on");
    refused(&key, &sig, now_secs(), &[&expired]);
}

#[test]
fn a_revoked_signing_subkey_cannot_sign_by_backdating() {
    let gpg = Gpg::new();
    let made = now_secs() - 10 * DAY;
    let (fpr, sub) = gpg.cert_with_signing_subkey(made, "Sub Rev <subrev@example.org>", "never");
    // Signed on day one; the subkey is revoked on day five (reason: none given).
    let sig = gpg.sign_at(made + DAY, &fpr, &[]);
    gpg.edit_subkey_at(made + 5 * DAY, &fpr, &sub, "revkey\ny\n0\n\ny\n");
    let key = gpg.public(&fpr);
    accepted(&key, &sig, made + DAY + 60);

    let revoked = format!("subkey {sub} was revoked on");
    let err = refused(&key, &sig, now_secs(), &[&revoked]);
    assert!(matches!(err, Error::SignerNotValid { .. }), "{err:?}");
}

#[test]
fn a_subkey_that_may_no_longer_sign_is_refused() {
    let gpg = Gpg::new();
    let now = now_secs();
    let made = now - 10 * DAY;
    let (fpr, sub) = gpg.cert_with_signing_subkey(made, "Flags <flags@example.org>", "never");
    let sig = gpg.sign_at(made + DAY, &fpr, &[]);
    accepted(&gpg.public(&fpr), &sig, now);
    // On day five the subkey's binding is renewed for authentication only (gpg replaces
    // the old binding signature): toggle sign off, authenticate on.
    gpg.edit_subkey_at(made + 5 * DAY, &fpr, &sub, "change-usage\nS\nA\nQ\n");
    let flags = format!("subkey {sub} may not sign (usable for: authenticate)");
    refused(
        &gpg.public(&fpr),
        &sig,
        now,
        &[&flags, "at the time of verification"],
    );
}

/// The `sqop` binary (Sequoia's stateless OpenPGP CLI, Debian package `sqop`). Fails the
/// test if absent: `cargo xtask test` installs it.
fn sqop() -> PathBuf {
    common::binary_on_path(
        "sqop",
        "sqop must be installed (Debian package `sqop`; `cargo xtask test` installs it)",
    )
}

/// Runs `sqop args` with `input` on stdin; its stdout, or a panic with its stderr.
fn run_sqop(args: &[&str], input: &[u8]) -> Vec<u8> {
    let mut c = Command::new(sqop());
    c.args(args);
    let out = common::output_with_input(c, input);
    assert!(
        out.status.success(),
        "sqop {args:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    out.stdout
}

#[test]
fn good_signatures_by_gpg_and_sqop_are_accepted() {
    let now = now_secs();
    let gpg = Gpg::new();
    let fpr = gpg.gen_key_at(
        now - 60,
        "Good <good@example.org>",
        "future-default",
        "default",
        "1y",
    );
    let key = gpg.public(&fpr);
    accepted(&key, &gpg.sign_at(now, &fpr, &[]), now);
    accepted(&key, &gpg.sign_at(now, &fpr, &["--armor"]), now);

    let dir = tempfile::tempdir().expect("temp dir");
    let secret = run_sqop(&["generate-key", "Sequoia <sequoia@example.org>"], b"");
    let secret_path = dir.path().join("sequoia.key");
    std::fs::write(&secret_path, &secret).expect("write the sqop key");
    let cert = PublicKey::from_bytes(&run_sqop(&["extract-cert"], &secret)).expect("sqop cert");
    let key_arg = secret_path.to_str().expect("utf8");
    for mode in ["binary", "text"] {
        let sig = run_sqop(&["sign", "--as", mode, key_arg], DOC);
        assert!(sig.starts_with(b"-----BEGIN PGP SIGNATURE-----"));
        assert_eq!(
            verify_detached(std::slice::from_ref(&cert), DOC, &sig, SystemTime::now())
                .expect("a sqop signature is accepted"),
            cert.fingerprint()
        );
        // And it is bound to the data.
        let err = verify_detached(
            std::slice::from_ref(&cert),
            b"other",
            &sig,
            SystemTime::now(),
        )
        .expect_err("a sqop signature over other data was accepted");
        assert!(matches!(err, Error::BadSignature { .. }), "{err:?}");
    }
    assert_ne!(cert.fingerprint(), fp(&fpr));
}
