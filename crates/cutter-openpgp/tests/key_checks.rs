//! Recipient pinning and usability checks, with keys made by GnuPG.

mod common;

use std::time::{Duration, SystemTime};

use common::Gpg;
use cutter_openpgp::{generate_key, Error, Fingerprint, PublicKey, Recipient, SecretKey};

fn fp(s: &str) -> Fingerprint {
    Fingerprint::new(s).expect("fingerprint")
}

#[test]
fn pin_mismatch_is_refused_naming_both_fingerprints() {
    let a = generate_key("A <a@example.org>", None).expect("a");
    let b = generate_key("B <b@example.org>", None).expect("b");
    let key_a = PublicKey::from_bytes(a.public_armored.as_bytes()).expect("a");
    let err = Recipient::pinned(key_a.clone(), &b.fingerprint).expect_err("mismatch accepted");
    let Error::PinMismatch { pinned, actual } = &err else {
        panic!("unexpected error {err:?}");
    };
    assert_eq!(pinned, &b.fingerprint);
    assert_eq!(actual, &a.fingerprint);
    let msg = err.to_string();
    assert!(msg.contains(a.fingerprint.as_str()), "{msg}");
    assert!(msg.contains(b.fingerprint.as_str()), "{msg}");

    // Pinning the encryption subkey's fingerprint instead of the primary is refused too.
    let sub = key_a.encryption_subkey_fingerprint().expect("sub");
    assert_ne!(sub, a.fingerprint);
    assert!(matches!(
        Recipient::pinned(key_a.clone(), &sub),
        Err(Error::PinMismatch { .. })
    ));
    assert!(Recipient::pinned(key_a, &a.fingerprint).is_ok());
}

#[test]
fn signing_only_key_is_not_a_recipient() {
    let gpg = Gpg::new();
    let fpr = gpg.gen_key("Sign Only <so@example.org>", "ed25519", "sign", "never", "");
    gpg.add_key(&fpr, "ed25519", "sign", "never", "");
    let key = PublicKey::from_bytes(&gpg.export_public(&fpr, true)).expect("parse");
    assert_eq!(key.fingerprint(), fp(&fpr));
    let err = Recipient::pinned(key.clone(), &fp(&fpr)).expect_err("sign-only key accepted");
    let Error::NotEncryptionCapable { fingerprint, .. } = &err else {
        panic!("unexpected error {err:?}");
    };
    assert_eq!(fingerprint, &fp(&fpr));
    let msg = err.to_string();
    assert!(msg.contains("not encryption-capable"), "{msg}");
    assert!(msg.contains(&fpr), "{msg}");
    assert!(msg.contains("gpg --quick-add-key"), "{msg}");
    assert!(key.encryption_subkey_fingerprint().is_err());
}

#[test]
fn expired_key_is_refused_after_its_expiry() {
    let gpg = Gpg::new();
    let fpr = gpg.gen_key(
        "Short Lived <sl@example.org>",
        "future-default",
        "default",
        "1d",
        "",
    );
    let key = PublicKey::from_bytes(&gpg.export_public(&fpr, true)).expect("parse");
    let now = SystemTime::now();
    assert!(Recipient::pinned_at(key.clone(), &fp(&fpr), now).is_ok());
    assert!(Recipient::pinned(key.clone(), &fp(&fpr)).is_ok());

    let later = now + Duration::from_secs(2 * 86_400);
    let err = Recipient::pinned_at(key.clone(), &fp(&fpr), later).expect_err("expired accepted");
    assert!(matches!(err, Error::NotEncryptionCapable { .. }), "{err:?}");
    let msg = err.to_string();
    assert!(msg.contains("expired"), "{msg}");
    assert!(msg.contains(&fpr), "{msg}");
    assert!(key.encryption_key_at(later).is_err());

    // Before the key existed it is not usable either.
    let before = now - Duration::from_secs(86_400);
    assert!(key.encryption_key_at(before).is_err());
}

#[test]
fn expired_encryption_subkey_alone_is_refused() {
    let gpg = Gpg::new();
    let fpr = gpg.gen_key(
        "Sub Expiry <se@example.org>",
        "ed25519",
        "cert,sign",
        "never",
        "",
    );
    gpg.add_key(&fpr, "cv25519", "encr", "1d", "");
    let key = PublicKey::from_bytes(&gpg.export_public(&fpr, false)).expect("parse");
    let now = SystemTime::now();
    assert_eq!(
        key.encryption_key_at(now).expect("usable now"),
        fp(&gpg.encryption_subkey(&fpr))
    );
    let err = key
        .encryption_key_at(now + Duration::from_secs(3 * 86_400))
        .expect_err("expired subkey accepted");
    let msg = err.to_string();
    assert!(msg.contains("expired"), "{msg}");
    assert!(msg.contains(&gpg.encryption_subkey(&fpr)), "{msg}");
}

#[test]
fn revoked_key_is_refused() {
    let gpg = Gpg::new();
    let fpr = gpg.gen_key(
        "Revoked <rv@example.org>",
        "future-default",
        "default",
        "never",
        "",
    );
    let before = PublicKey::from_bytes(&gpg.export_public(&fpr, true)).expect("parse");
    assert!(Recipient::pinned(before, &fp(&fpr)).is_ok());

    // Import the revocation certificate gpg made at key generation (its armor header is
    // prefixed with ':' against accidental import).
    let rev_path = gpg
        .home()
        .join("openpgp-revocs.d")
        .join(format!("{fpr}.rev"));
    let rev = std::fs::read_to_string(rev_path).expect("revocation certificate");
    let rev = rev.replace(
        ":-----BEGIN PGP PUBLIC KEY BLOCK-----",
        "-----BEGIN PGP PUBLIC KEY BLOCK-----",
    );
    gpg.import(rev.as_bytes(), None);

    let after = PublicKey::from_bytes(&gpg.export_public(&fpr, true)).expect("parse");
    let err = Recipient::pinned(after, &fp(&fpr)).expect_err("revoked key accepted");
    assert!(matches!(err, Error::NotEncryptionCapable { .. }), "{err:?}");
    assert!(err.to_string().contains("revoked"), "{err}");
}

#[test]
fn key_files_with_several_or_no_keys_are_refused() {
    let gpg = Gpg::new();
    let a = gpg.gen_key(
        "One <one@example.org>",
        "future-default",
        "default",
        "never",
        "",
    );
    let b = gpg.gen_key(
        "Two <two@example.org>",
        "future-default",
        "default",
        "never",
        "",
    );
    let both = gpg.run(&["--armor", "--export", &a, &b], None).stdout;
    let err = PublicKey::from_bytes(&both).expect_err("two keys accepted");
    let Error::KeyCount { count, .. } = &err else {
        panic!("unexpected {err:?}");
    };
    assert_eq!(*count, 2);
    let msg = err.to_string();
    assert!(msg.contains("found 2"), "{msg}");
    assert!(msg.contains(&a) && msg.contains(&b), "{msg}");

    for junk in [
        &b""[..],
        b"hello",
        b"-----BEGIN PGP PUBLIC KEY BLOCK-----\n\n!!\n",
    ] {
        assert!(PublicKey::from_bytes(junk).is_err(), "{junk:?} accepted");
    }
    // A secret key is not a public key file, and vice versa.
    let secret = gpg.export_secret(&a, "");
    assert!(PublicKey::from_bytes(&secret).is_err());
    assert!(SecretKey::from_bytes(&gpg.export_public(&a, true)).is_err());
    assert_eq!(
        SecretKey::from_bytes(&secret)
            .expect("secret")
            .fingerprint(),
        fp(&a)
    );
}
