//! Our encryption → our decryption, and the decryption error paths.

mod common;

use std::io::{Read, Write};

use common::{data, encrypt_pieces};
use cutter_openpgp::{decrypt, generate_key, Error, Passphrase, PublicKey, Recipient, SecretKey};

struct Pair {
    secret: SecretKey,
    recipient: Recipient,
    pass: Passphrase,
}

fn pair(uid: &str, pass: &str) -> Pair {
    let pass = Passphrase::new(pass.to_owned());
    let generated = generate_key(uid, Some(&pass)).expect("generate key");
    let public = PublicKey::from_bytes(generated.public_armored.as_bytes()).expect("public");
    let secret = SecretKey::from_bytes(generated.secret_armored.as_bytes()).expect("secret");
    assert_eq!(public.fingerprint(), generated.fingerprint);
    assert_eq!(secret.fingerprint(), generated.fingerprint);
    let recipient = Recipient::pinned(public, &generated.fingerprint).expect("pinned");
    Pair {
        secret,
        recipient,
        pass,
    }
}

/// Encrypts `plain`, read in pieces of the given sizes (cycled).
fn encrypt(r: &Recipient, plain: &[u8], pieces: &[usize]) -> Vec<u8> {
    encrypt_pieces(r, plain, pieces)
}

fn decrypt_vec(p: &Pair, ct: &[u8]) -> Result<Vec<u8>, Error> {
    let mut out = Vec::new();
    let n = decrypt(&p.secret, &p.pass, ct, &mut out)?;
    assert_eq!(n, out.len() as u64, "returned count matches output");
    Ok(out)
}

const CHUNK: usize = 256 * 1024;

#[test]
fn round_trip_across_partial_body_boundaries() {
    let p = pair("Round Trip <rt@example.org>", "correct horse");
    let sizes = [
        0,
        1,
        5,
        6,
        7,
        191,
        192,
        511,
        512,
        513,
        8383,
        8384,
        CHUNK - 7,
        CHUNK - 6,
        CHUNK - 5,
        CHUNK - 1,
        CHUNK,
        CHUNK + 1,
        2 * CHUNK - 6,
        2 * CHUNK,
        (1 << 20) + 7,
        3 * CHUNK + 100,
    ];
    for (i, &size) in sizes.iter().enumerate() {
        let plain = data(size, i as u64);
        for pieces in [&[usize::MAX][..], &[1, 7, 4096, 65_537, 300_000]] {
            let ct = encrypt(&p.recipient, &plain, pieces);
            // Binary OpenPGP: a new-format PKESK packet (tag 1) comes first.
            assert_eq!(ct[0], 0xC1, "size {size}: PKESK first");
            let back = decrypt_vec(&p, &ct).unwrap_or_else(|e| panic!("size {size}: {e}"));
            assert!(
                back == plain,
                "size {size}, pieces {pieces:?}: plaintext differs"
            );
        }
    }
}

#[test]
fn ciphertext_is_not_the_plaintext_and_differs_each_time() {
    let p = pair("Fresh <fresh@example.org>", "pw");
    let plain = vec![b'A'; 100_000];
    let a = encrypt(&p.recipient, &plain, &[usize::MAX]);
    let b = encrypt(&p.recipient, &plain, &[usize::MAX]);
    assert_ne!(a, b, "fresh session key and prefix per message");
    assert!(
        !a.windows(64).any(|w| w == &plain[..64]),
        "plaintext visible in ciphertext"
    );
    // No compression: ciphertext is plaintext plus small overhead.
    assert!(
        a.len() > plain.len() && a.len() < plain.len() + 400,
        "{}",
        a.len()
    );
}

#[test]
fn flipped_bit_is_an_integrity_error() {
    let p = pair("Flip <flip@example.org>", "pw");
    let plain = data(100_000, 42);
    let ct = encrypt(&p.recipient, &plain, &[usize::MAX]);

    // In the middle of the literal data.
    let mut bad = ct.clone();
    bad[50_000] ^= 0x08;
    let err = decrypt_vec(&p, &bad).expect_err("modified ciphertext accepted");
    assert!(
        matches!(err, Error::IntegrityCheckFailed { .. }),
        "unexpected error: {err}"
    );
    assert!(err.to_string().contains("untrusted"), "{err}");

    // In the encrypted MDC hash only (last 20 octets): the literal data is intact.
    let mut bad = ct.clone();
    let last = bad.len() - 3;
    bad[last] ^= 0x01;
    let err = decrypt_vec(&p, &bad).expect_err("modified MDC accepted");
    assert!(
        matches!(err, Error::IntegrityCheckFailed { .. }),
        "unexpected error: {err}"
    );

    // Everywhere in the SEIPD packet, across a multi-chunk message, some error.
    let plain = data(CHUNK + 1000, 7);
    let ct = encrypt(&p.recipient, &plain, &[usize::MAX]);
    let seipd_start = ct.len() - (CHUNK + 1000) - 100;
    for pos in (seipd_start..ct.len()).step_by(9_973) {
        let mut bad = ct.clone();
        bad[pos] ^= 0x40;
        assert!(
            decrypt_vec(&p, &bad).is_err(),
            "bit flip at {pos} of {} not detected",
            ct.len()
        );
    }
}

#[test]
fn truncated_message_is_an_error() {
    let p = pair("Trunc <trunc@example.org>", "pw");
    for size in [100, 10_000, 3 * CHUNK + 5] {
        let plain = data(size, size as u64);
        let ct = encrypt(&p.recipient, &plain, &[usize::MAX]);
        for cut in [1, 2, 21, 22, 23, 100, ct.len() / 2, ct.len() - 200] {
            if cut >= ct.len() - 100 {
                continue;
            }
            let short = &ct[..ct.len() - cut];
            let err = decrypt_vec(&p, short).expect_err("truncated message accepted");
            assert!(
                matches!(
                    err,
                    Error::Truncated { .. } | Error::IntegrityCheckFailed { .. }
                ),
                "size {size}, cut {cut}: unexpected error {err:?}"
            );
        }
        // Cut exactly after the SEIPD packet's first partial-body chunk.
        if size > CHUNK {
            assert!(ct[1] < 192, "one-octet PKESK length");
            let pkesk_len = 2 + ct[1] as usize;
            assert_eq!(ct[pkesk_len], 0xD2, "SEIPD tag");
            assert_eq!(ct[pkesk_len + 1], 0xE0 | 18, "partial body length 2^18");
            let boundary = pkesk_len + 2 + CHUNK;
            let err = decrypt_vec(&p, &ct[..boundary]).expect_err("truncated accepted");
            assert!(matches!(err, Error::Truncated { .. }), "{err:?}");
        }
    }
    // Cut right after the PKESK packet / in it.
    let ct = encrypt(&p.recipient, b"hello", &[usize::MAX]);
    let err = decrypt_vec(&p, &ct[..40]).expect_err("cut in PKESK accepted");
    assert!(
        matches!(
            err,
            Error::Truncated { .. } | Error::NotAMessage { .. } | Error::Malformed { .. }
        ),
        "{err:?}"
    );
}

/// Each way a decryption can fail, pinned to a real input and to exactly one error: rpgp's
/// error variants and I/O error kinds decide, never its message text, so an rpgp upgrade
/// that changes how it reports one of these fails here instead of changing the
/// classification silently.
#[test]
fn each_decryption_failure_has_exactly_one_classification() {
    let p = pair("Classes <classes@example.org>", "pw");
    let ct = encrypt(&p.recipient, b"hello, world", &[usize::MAX]);
    // PKESK with a one-octet length, then the SEIPD packet with a one-octet (fixed) length
    // that runs to the end.
    assert!(ct[1] < 192, "one-octet PKESK length");
    let pk = 2 + ct[1] as usize;
    assert_eq!(ct[pk], 0xD2, "SEIPD tag");
    assert!(ct[pk + 1] < 192, "one-octet SEIPD length");
    assert_eq!(pk + 2 + ct[pk + 1] as usize, ct.len());
    assert_eq!(ct[pk + 2], 1, "SEIPD version 1");
    decrypt_vec(&p, &ct).expect("the intact message decrypts");

    let flipped = |pos: usize| {
        let mut bad = ct.clone();
        bad[pos] ^= 0x40;
        bad
    };
    // The SEIPD packet's header says 11 octets and it holds 11: too short for the 18-octet
    // prefix with its quick check.
    let mut short_seipd = ct[..pk].to_vec();
    short_seipd.extend([0xD2, 11]);
    short_seipd.extend(&ct[pk + 2..pk + 13]);
    let mut trailing = ct.clone();
    trailing.extend(b"trailing");

    let class = |e: &Error| match e {
        Error::Truncated { .. } => "truncated",
        Error::IntegrityCheckFailed { .. } => "integrity",
        Error::Malformed { .. } => "malformed",
        Error::NotAMessage { .. } => "not a message",
        Error::DecryptInput { .. } => "input",
        _ => "other",
    };
    let cases = [
        // The input ends inside a fixed-length packet body.
        (
            "cut inside the SEIPD body",
            ct[..ct.len() - 10].to_vec(),
            "truncated",
        ),
        (
            "cut inside the PKESK body",
            ct[..pk - 5].to_vec(),
            "truncated",
        ),
        // The input ends where the next packet's header should be.
        ("cut after the PKESK", ct[..pk].to_vec(), "truncated"),
        ("SEIPD shorter than its prefix", short_seipd, "truncated"),
        (
            "last octet (MDC) changed",
            flipped(ct.len() - 1),
            "integrity",
        ),
        ("bytes after the message", trailing, "malformed"),
        ("empty input", Vec::new(), "not a message"),
        ("SEIPD version changed", flipped(pk + 2), "not a message"),
    ];
    for (what, input, expected) in cases {
        let err = decrypt_vec(&p, &input).expect_err(what);
        assert_eq!(class(&err), expected, "{what}: {err:?}");
    }

    // The caller's reader fails (with the kind rpgp also uses for a body cut short):
    // the input's error, not the message's.
    struct Failing<'a>(&'a [u8]);
    impl std::io::Read for Failing<'_> {
        fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
            if self.0.is_empty() {
                return Err(std::io::Error::other("the disk went away"));
            }
            let n = buf.len().min(self.0.len());
            buf[..n].copy_from_slice(&self.0[..n]);
            self.0 = &self.0[n..];
            Ok(n)
        }
    }
    let err = decrypt(
        &p.secret,
        &p.pass,
        Failing(&ct[..ct.len() - 10]),
        Vec::new(),
    )
    .expect_err("failing reader");
    assert!(matches!(err, Error::DecryptInput { .. }), "{err:?}");
}

#[test]
fn wrong_key_names_the_key_ids() {
    let alice = pair("Alice <alice@example.org>", "a");
    let bob = pair("Bob <bob@example.org>", "b");
    let ct = encrypt(&alice.recipient, b"for alice only", &[usize::MAX]);
    let mut out = Vec::new();
    let err = decrypt(&bob.secret, &bob.pass, &ct[..], &mut out).expect_err("bob decrypted");
    assert!(out.is_empty());
    let Error::WrongKey {
        recipients,
        fingerprint,
        key_ids,
    } = &err
    else {
        panic!("unexpected error: {err:?}");
    };
    let alice_sub = alice.recipient.encryption_key_fingerprint();
    let alice_sub_id = &alice_sub.as_str()[24..];
    assert_eq!(recipients, &vec![alice_sub_id.to_string()]);
    assert_eq!(fingerprint, &bob.secret.fingerprint());
    assert_eq!(key_ids.len(), 2, "bob's primary and subkey ids");
    let msg = err.to_string();
    assert!(msg.contains(alice_sub_id), "{msg}");
    assert!(msg.contains(bob.secret.fingerprint().as_str()), "{msg}");
    assert!(msg.contains(&key_ids[1]), "{msg}");
}

#[test]
fn wrong_passphrase_is_reported_as_such() {
    let p = pair("Locked <locked@example.org>", "the right one");
    let ct = encrypt(&p.recipient, b"secret backup", &[usize::MAX]);
    let wrong = Passphrase::new("the wrong one".into());
    let mut out = Vec::new();
    let err = decrypt(&p.secret, &wrong, &ct[..], &mut out).expect_err("wrong passphrase");
    assert!(
        matches!(err, Error::WrongPassphrase { .. }),
        "unexpected error: {err:?}"
    );
    let msg = err.to_string();
    assert!(msg.contains("wrong passphrase"), "{msg}");
    assert!(msg.contains(p.secret.fingerprint().as_str()), "{msg}");
    assert!(!msg.contains("the wrong one") && !msg.contains("the right one"));
    assert!(out.is_empty());

    // Unprotected key with any passphrase works.
    let g = generate_key("Open <open@example.org>", None).expect("generate");
    let sk = SecretKey::from_bytes(g.secret_armored.as_bytes()).expect("secret");
    let r = Recipient::pinned(
        PublicKey::from_bytes(g.public_armored.as_bytes()).expect("public"),
        &g.fingerprint,
    )
    .expect("pinned");
    let ct = encrypt(&r, b"open", &[usize::MAX]);
    let mut out = Vec::new();
    decrypt(&sk, &Passphrase::new(String::new()), &ct[..], &mut out).expect("decrypt");
    assert_eq!(out, b"open");
}

#[test]
fn not_an_openpgp_message() {
    let p = pair("Junk <junk@example.org>", "pw");
    for junk in [
        &b""[..],
        b"PGDMP\x01\x0e\x00 this is a pg_dump custom archive header",
        b"-----BEGIN PGP MESSAGE-----\n\nnot base64 !!!\n-----END PGP MESSAGE-----\n",
    ] {
        let err = decrypt_vec(&p, junk).expect_err("junk accepted");
        assert!(
            matches!(
                err,
                Error::NotAMessage { .. } | Error::Malformed { .. } | Error::Truncated { .. }
            ),
            "{junk:?}: unexpected error {err:?}"
        );
    }
    // A key is OpenPGP but not a message.
    let g = generate_key("K <k@example.org>", None).expect("generate");
    let err = decrypt_vec(&p, g.public_armored.as_bytes()).expect_err("key accepted");
    assert!(matches!(err, Error::NotAMessage { .. }), "{err:?}");
}

#[test]
fn armored_input_is_accepted() {
    // gpg --armor output must also decrypt; build one from our binary output with gpg's
    // framing conventions via rpgp's armor writer is not public, so armor by hand.
    let p = pair("Armor <armor@example.org>", "pw");
    let plain = data(5000, 3);
    let ct = encrypt(&p.recipient, &plain, &[usize::MAX]);
    let armored = armor_message(&ct);
    assert_eq!(decrypt_vec(&p, armored.as_bytes()).expect("armored"), plain);
}

fn armor_message(bin: &[u8]) -> String {
    const B64: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut s = String::new();
    for c in bin.chunks(3) {
        let n = (u32::from(c[0]) << 16)
            | (u32::from(*c.get(1).unwrap_or(&0)) << 8)
            | u32::from(*c.get(2).unwrap_or(&0));
        for i in 0..4 {
            if i <= c.len() {
                s.push(B64[((n >> (18 - 6 * i)) & 63) as usize] as char);
            } else {
                s.push('=');
            }
        }
    }
    let body: Vec<String> = s
        .as_bytes()
        .chunks(64)
        .map(|l| String::from_utf8(l.to_vec()).expect("ascii"))
        .collect();
    format!(
        "-----BEGIN PGP MESSAGE-----\n\n{}\n-----END PGP MESSAGE-----\n",
        body.join("\n")
    )
}

#[test]
fn debug_output_never_shows_secrets() {
    let secret_text = "hunter2-very-secret";
    let pass = Passphrase::new(secret_text.into());
    assert_eq!(format!("{pass:?}"), "Passphrase(<redacted>)");
    assert_eq!(format!("{pass}"), "Passphrase(<redacted>)");
    assert!(!format!("{pass:#?}").contains(secret_text));

    let g = generate_key("Dbg <dbg@example.org>", None).expect("generate");
    let dbg = format!("{g:?}");
    assert!(!dbg.contains("PRIVATE KEY"), "{dbg}");
    // A distinctive line of the armored secret key must not appear.
    let body_line = g
        .secret_armored
        .lines()
        .find(|l| l.len() > 40)
        .expect("armor body");
    assert!(!dbg.contains(body_line), "{dbg}");
    assert!(dbg.contains(g.fingerprint.as_str()));

    let sk = SecretKey::from_bytes(g.secret_armored.as_bytes()).expect("secret");
    let dbg = format!("{sk:?} {sk:#?}");
    assert!(dbg.contains(g.fingerprint.as_str()), "{dbg}");
    assert!(!dbg.contains(body_line), "{dbg}");
    assert!(!dbg.to_lowercase().contains("secret_params"), "{dbg}");
    assert!(!dbg.contains("skey") && !dbg.contains("Plain"), "{dbg}");

    let p = pair("Dbg2 <dbg2@example.org>", secret_text);
    let ct = encrypt(&p.recipient, b"x", &[usize::MAX]);
    let err = decrypt(
        &p.secret,
        &Passphrase::new("nope".into()),
        &ct[..],
        Vec::new(),
    )
    .expect_err("wrong pw");
    assert!(!format!("{err:?} {err}").contains(secret_text));
}

#[test]
fn a_failing_input_leaves_an_undecryptable_artifact() {
    struct FailsAfter(Vec<u8>);
    impl Read for FailsAfter {
        fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
            if self.0.is_empty() {
                return Err(std::io::Error::other("pg_dump died"));
            }
            let n = buf.len().min(self.0.len());
            buf[..n].copy_from_slice(&self.0[..n]);
            self.0.drain(..n);
            Ok(n)
        }
    }
    let p = pair("Drop <drop@example.org>", "pw");
    let mut sink = Vec::new();
    let err = cutter_openpgp::encrypt(&p.recipient, FailsAfter(data(CHUNK * 2 + 10, 1)), &mut sink)
        .expect_err("a failing input must fail the encryption");
    match &err {
        Error::EncryptInput { source } => assert!(source.to_string().contains("pg_dump died")),
        other => panic!("expected EncryptInput, got {other:?}"),
    }
    assert!(err.to_string().contains("must be discarded"), "{err}");
    assert!(!sink.is_empty(), "PKESK and full chunks were written");
    let err = decrypt_vec(&p, &sink).expect_err("unfinished artifact accepted");
    assert!(
        matches!(
            err,
            Error::Truncated { .. } | Error::IntegrityCheckFailed { .. }
        ),
        "{err:?}"
    );
}

#[test]
fn a_failing_output_is_reported_as_such() {
    #[derive(Debug)]
    struct Failing(usize);
    impl Write for Failing {
        fn write(&mut self, b: &[u8]) -> std::io::Result<usize> {
            if self.0 < b.len() {
                return Err(std::io::Error::other("disk full"));
            }
            self.0 -= b.len();
            Ok(b.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }
    let p = pair("Fail <fail@example.org>", "pw");
    let plain = data(4 * CHUNK, 9);
    let err = cutter_openpgp::encrypt(&p.recipient, &plain[..], Failing(CHUNK))
        .expect_err("a failing output must fail the encryption");
    match &err {
        Error::EncryptOutput { source } => assert!(source.to_string().contains("disk full")),
        other => panic!("expected EncryptOutput, got {other:?}"),
    }
    assert!(err.to_string().contains("incomplete"), "{err}");
}

#[test]
fn public_types_are_thread_safe() {
    fn send_sync<T: Send + Sync + 'static>() {}
    send_sync::<Error>();
    send_sync::<Recipient>();
    send_sync::<SecretKey>();
    send_sync::<PublicKey>();
    send_sync::<Passphrase>();
}
