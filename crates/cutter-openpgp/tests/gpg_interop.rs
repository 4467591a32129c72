//! Interoperability with real GnuPG 2.2, both directions.

mod common;

use std::time::SystemTime;

use common::{data, encrypt_pieces, Gpg};
use cutter_openpgp::{
    decrypt, generate_key, sign_detached, verify_detached, Error, Fingerprint, Passphrase,
    PublicKey, Recipient, SecretKey,
};

fn fp(s: &str) -> Fingerprint {
    Fingerprint::new(s).expect("fingerprint")
}

fn encrypt(r: &Recipient, plain: &[u8]) -> Vec<u8> {
    // Uneven reads, as a pipe would deliver them.
    encrypt_pieces(r, plain, &[100_003])
}

/// A key made by gpg is a valid pinned recipient; gpg decrypts what we encrypt.
fn gpg_key_as_recipient(algo: &str, uid: &str) {
    let gpg = Gpg::new();
    let gpg_fpr = gpg.gen_key(uid, algo, "default", "never", "");
    let gpg_sub = gpg.encryption_subkey(&gpg_fpr);

    for armor in [true, false] {
        let key = PublicKey::from_bytes(&gpg.export_public(&gpg_fpr, armor)).expect("parse");
        assert_eq!(key.fingerprint(), fp(&gpg_fpr));
        assert_eq!(key.user_ids(), vec![uid.to_string()]);
        assert_eq!(
            key.encryption_subkey_fingerprint().expect("can encrypt"),
            fp(&gpg_sub)
        );
    }
    let key = PublicKey::from_bytes(&gpg.export_public(&gpg_fpr, true)).expect("parse");
    let recipient = Recipient::pinned(key, &fp(&gpg_fpr)).expect("pinned recipient");
    assert_eq!(recipient.encryption_key_fingerprint(), fp(&gpg_sub));

    // Empty, one byte, several MB, and the sizes where the literal packet's body
    // (6 header octets + data) ends exactly on a 256 KiB partial-body chunk.
    const CHUNK: usize = 256 * 1024;
    for (size, seed) in [
        (0usize, 1u64),
        (1, 2),
        (5 * 1024 * 1024 + 3, 3),
        (CHUNK - 6, 11),
        (2 * CHUNK - 6, 12),
        (3 * CHUNK, 13),
    ] {
        let plain = data(size, seed);
        let ct = encrypt(&recipient, &plain);
        let (back, status) = gpg.decrypt(&ct, None);
        assert!(
            back == plain,
            "{algo}: gpg's plaintext differs for size {size}"
        );
        assert!(status.contains("DECRYPTION_OKAY"), "{status}");
        assert!(status.contains("GOODMDC"), "gpg saw no valid MDC: {status}");
        // AES-256 (algo 9), SEIPD v1 with MDC: "DECRYPTION_INFO 2 9".
        assert!(status.contains("DECRYPTION_INFO 2 9"), "{status}");
        assert!(
            status.contains(&format!("ENC_TO {}", &gpg_sub[24..])),
            "{status}"
        );
    }

    // The packet structure, as gpg sees it: PKESK v3, SEIPD with MDC, literal data,
    // no compression.
    let ct = encrypt(&recipient, &data(300_000, 4));
    let f = gpg.file("listme.pgp", &ct);
    let out = gpg.run(&["--list-packets", f.to_str().expect("utf8")], None);
    let listing = String::from_utf8_lossy(&out.stdout);
    assert!(
        listing.contains(":pubkey enc packet: version 3"),
        "{listing}"
    );
    assert!(listing.contains(":encrypted data packet:"), "{listing}");
    assert!(listing.contains("mdc_method: 2"), "{listing}");
    assert!(listing.contains(":literal data packet:"), "{listing}");
    assert!(!listing.contains(":compressed packet:"), "{listing}");
}

#[test]
fn gpg_rsa_key_is_a_recipient_gpg_decrypts_our_output() {
    gpg_key_as_recipient("default", "Backup <b@example.org>");
}

#[test]
fn gpg_cv25519_key_is_a_recipient_gpg_decrypts_our_output() {
    gpg_key_as_recipient("future-default", "Backup Ed <bed@example.org>");
}

/// Our generated key imported into gpg: gpg encrypts to it, we decrypt; gpg decrypts
/// with our (passphrase-protected) secret key; and gpg's export of it parses back.
#[test]
fn our_key_in_gpg_both_directions() {
    let gpg = Gpg::new();
    let pass_text = "s3cret passphrase";
    let pass = Passphrase::new(pass_text.into());
    let generated = generate_key("Ours <ours@example.org>", Some(&pass)).expect("generate");
    gpg.import(generated.public_armored.as_bytes(), None);
    gpg.import(generated.secret_armored.as_bytes(), Some(pass_text));
    let (gpg_fpr, subs) = gpg.fingerprints(generated.fingerprint.as_str());
    assert_eq!(fp(&gpg_fpr), generated.fingerprint);
    assert_eq!(subs.len(), 1);
    assert!(
        subs[0].1.contains('e'),
        "encryption subkey as gpg sees it: {subs:?}"
    );

    let secret = SecretKey::from_bytes(generated.secret_armored.as_bytes()).expect("secret");

    // gpg --encrypt → our decrypt (gpg compresses by default: ZLIB per our preferences).
    for (size, seed) in [(0usize, 5u64), (1, 6), (3 * 1024 * 1024 + 11, 7)] {
        let plain = data(size, seed);
        let ct = gpg.encrypt(&gpg_fpr, &plain);
        let mut out = Vec::new();
        let n = decrypt(&secret, &pass, &ct[..], &mut out).expect("decrypt gpg's message");
        assert_eq!(n, size as u64);
        assert!(out == plain, "size {size}: plaintext differs");
    }
    // Also uncompressed and armored gpg output.
    let plain = data(70_000, 8);
    let input = gpg.file("plain2.bin", &plain);
    let output = gpg.path("plain2.asc");
    gpg.run(
        &[
            "--trust-model",
            "always",
            "--compress-algo",
            "none",
            "--armor",
            "--output",
            output.to_str().expect("utf8"),
            "-r",
            &gpg_fpr,
            "--encrypt",
            input.to_str().expect("utf8"),
        ],
        None,
    );
    let ct = std::fs::read(&output).expect("armored ciphertext");
    assert!(ct.starts_with(b"-----BEGIN PGP MESSAGE-----"));
    let mut out = Vec::new();
    decrypt(&secret, &pass, &ct[..], &mut out).expect("decrypt armored");
    assert!(out == plain);

    // Our encryption → gpg decrypts with our imported, passphrase-protected secret key.
    let recipient = Recipient::pinned(
        PublicKey::from_bytes(generated.public_armored.as_bytes()).expect("public"),
        &generated.fingerprint,
    )
    .expect("pinned");
    let plain = data(2 * 1024 * 1024 + 1, 9);
    let (back, status) = gpg.decrypt(&encrypt(&recipient, &plain), Some(pass_text));
    assert!(back == plain, "gpg's plaintext differs");
    assert!(status.contains("GOODMDC"), "{status}");

    // gpg's export of the secret key (re-protected by gpg-agent) parses and decrypts.
    let exported = gpg.export_secret(&gpg_fpr, pass_text);
    let secret2 = SecretKey::from_bytes(&exported).expect("gpg-exported secret key");
    assert_eq!(secret2.fingerprint(), generated.fingerprint);
    let ct = encrypt(&recipient, b"via gpg export");
    let mut out = Vec::new();
    decrypt(&secret2, &pass, &ct[..], &mut out).expect("decrypt with gpg-exported key");
    assert_eq!(out, b"via gpg export");
    let err = decrypt(
        &secret2,
        &Passphrase::new("wrong".into()),
        &ct[..],
        Vec::new(),
    )
    .expect_err("wrong passphrase");
    assert!(matches!(err, Error::WrongPassphrase { .. }), "{err:?}");
}

/// A gpg key's secret part, exported by gpg, decrypts gpg's own uncompressed messages
/// here; gpg's default message to that key (compressed, as its preferences say) is
/// refused, naming the compression.
#[test]
fn gpg_secret_key_decrypts_gpg_message() {
    let gpg = Gpg::new();
    let pass_text = "gpg pass";
    let fpr = gpg.gen_key(
        "Gpg Sec <gsec@example.org>",
        "future-default",
        "default",
        "never",
        pass_text,
    );
    let secret = SecretKey::from_bytes(&gpg.export_secret(&fpr, pass_text)).expect("secret");
    assert_eq!(secret.fingerprint(), fp(&fpr));
    let pass = Passphrase::new(pass_text.into());
    let plain = data(1_000_000, 10);
    let ct = gpg.encrypt_with(&fpr, &plain, &["--compress-algo", "none"]);
    let mut out = Vec::new();
    decrypt(&secret, &pass, &ct[..], &mut out).expect("decrypt");
    assert!(out == plain);

    let ct = gpg.encrypt(&fpr, &plain);
    let mut out = Vec::new();
    let err = decrypt(&secret, &pass, &ct[..], &mut out).expect_err("compressed accepted");
    assert!(matches!(err, Error::Refused { .. }), "{err:?}");
    let text = err.to_string();
    assert!(
        text.contains("a compressed packet (ZLIB)") || text.contains("a compressed packet (ZIP)"),
        "{text}"
    );
    assert!(out.is_empty(), "plaintext released: {} bytes", out.len());
}

/// The allow-list: only AES-128/192/256 in SEIPDv1 with MDC around uncompressed literal
/// data. gpg's 3DES and CAST5 messages, its compressed ones, and rpgp's SEIPDv2 message
/// to the same key are refused with a message naming what was found, and release no
/// plaintext; AES-128 and AES-192 are accepted.
#[test]
fn weak_ciphers_compression_and_seipdv2_are_refused_by_name() {
    let gpg = Gpg::new();
    let generated = generate_key("Allow <allow@example.org>", None).expect("generate");
    gpg.import(generated.public_armored.as_bytes(), None);
    let fpr = generated.fingerprint.to_string();
    let secret = SecretKey::from_bytes(generated.secret_armored.as_bytes()).expect("secret");
    let none = Passphrase::new(String::new());
    let plain = data(300_000, 31);
    let try_decrypt = |ct: &[u8]| {
        let mut out = Vec::new();
        let r = decrypt(&secret, &none, ct, &mut out);
        (r, out)
    };

    for (algo, name) in [("3DES", "3DES"), ("CAST5", "CAST5")] {
        let ct = gpg.encrypt_with(
            &fpr,
            &plain,
            &["--cipher-algo", algo, "--compress-algo", "none"],
        );
        let (r, out) = try_decrypt(&ct);
        let err = r.expect_err(&format!("{algo} accepted"));
        assert!(matches!(err, Error::Refused { .. }), "{algo}: {err:?}");
        let text = err.to_string();
        assert!(text.contains(&format!("the cipher {name}")), "{text}");
        assert!(text.contains("nothing was decrypted"), "{text}");
        assert!(out.is_empty(), "{algo}: plaintext released");
    }
    for algo in ["zip", "zlib", "bzip2"] {
        let ct = gpg.encrypt_with(
            &fpr,
            &plain,
            &["--cipher-algo", "AES256", "--compress-algo", algo],
        );
        let (r, out) = try_decrypt(&ct);
        let err = r.expect_err(&format!("{algo} accepted"));
        let text = err.to_string();
        assert!(
            text.contains(&format!("a compressed packet ({})", algo.to_uppercase()))
                || (algo == "bzip2" && text.contains("a compressed packet (BZip2)")),
            "{text}"
        );
        assert!(out.is_empty(), "{algo}: plaintext released");
    }
    for algo in ["AES", "AES192", "AES256"] {
        let ct = gpg.encrypt_with(
            &fpr,
            &plain,
            &["--cipher-algo", algo, "--compress-algo", "none"],
        );
        let (r, out) = try_decrypt(&ct);
        r.unwrap_or_else(|e| panic!("{algo} refused: {e}"));
        assert!(out == plain, "{algo}: plaintext differs");
    }

    // SEIPDv2 (AEAD), as rpgp writes it to the same encryption subkey.
    {
        use pgp::composed::{Deserializable, MessageBuilder, SignedPublicKey};
        use pgp::crypto::{aead::AeadAlgorithm, aead::ChunkSize, sym::SymmetricKeyAlgorithm};
        let (cert, _) = SignedPublicKey::from_string(&generated.public_armored).expect("rpgp cert");
        let mut rng = rand::thread_rng();
        let mut b = MessageBuilder::from_bytes("", plain.clone()).seipd_v2(
            &mut rng,
            SymmetricKeyAlgorithm::AES256,
            AeadAlgorithm::Ocb,
            ChunkSize::default(),
        );
        b.encrypt_to_key(&mut rng, &cert.public_subkeys[0].key)
            .expect("PKESK v6");
        let ct = b.to_vec(&mut rng).expect("SEIPDv2 message");
        let (r, out) = try_decrypt(&ct);
        let err = r.expect_err("SEIPDv2 accepted");
        assert!(err.to_string().contains("SEIPDv2"), "{err}");
        assert!(out.is_empty(), "SEIPDv2: plaintext released");
    }
}

/// What [`encrypt`] writes decrypts byte-identically with rpgp (ours), GnuPG and
/// Sequoia's `sqop`, at every partial-length boundary of the literal data and the SEIPD
/// packet (the literal body carries 6 header octets; the SEIPD body 1 version octet, an
/// 18-octet prefix and a 22-octet MDC).
#[test]
fn gpg_and_sqop_decrypt_our_output_at_partial_length_boundaries() {
    const CHUNK: usize = cutter_openpgp::CHUNK_SIZE as usize;
    let ix = common::Interop::new("Interop <interop@example.org>");
    let none = Passphrase::new(String::new());
    let mut sizes = vec![0usize, 1, 2, 191, 192, 8383, 8384];
    for k in 1..=3 {
        for d in [-41i64, -19, -7, -6, -5, -1, 0, 1, 41] {
            let s = (k * CHUNK) as i64 + d;
            sizes.push(s as usize);
        }
    }
    sizes.sort_unstable();
    sizes.dedup();
    for (i, &size) in sizes.iter().enumerate() {
        let plain = data(size, 1000 + i as u64);
        let ct = encrypt(&ix.recipient, &plain);
        let mut ours = Vec::new();
        decrypt(&ix.secret, &none, &ct[..], &mut ours).unwrap_or_else(|e| panic!("{size}: {e}"));
        assert!(ours == plain, "rpgp: size {size} differs");
        let (back, status) = ix.gpg.decrypt(&ct, None);
        assert!(back == plain, "gpg: size {size} differs");
        assert!(status.contains("GOODMDC"), "gpg: size {size}: {status}");
        let out = ix.sqop_decrypt(&ct);
        assert!(
            out.status.success(),
            "sqop: size {size}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        assert!(out.stdout == plain, "sqop: size {size} differs");
    }
}

#[test]
fn gpg_detached_signatures_verify_and_ours_verify_in_gpg() {
    let gpg = Gpg::new();
    let pass_text = "signing pass";
    let fpr = gpg.gen_key(
        "Approver <approver@example.org>",
        "future-default",
        "default",
        "never",
        pass_text,
    );
    let public = PublicKey::from_bytes(&gpg.export_public(&fpr, true)).expect("public");
    let other = PublicKey::from_bytes(
        generate_key("Other <other@example.org>", None)
            .expect("generate")
            .public_armored
            .as_bytes(),
    )
    .expect("other");
    let doc = b"approve run r-20261123-ab12\nplan sha256 0123456789abcdef\n";
    let doc_path = gpg.file("approval.txt", doc);

    for armor in [true, false] {
        let sig_path = gpg.path(if armor {
            "approval.asc"
        } else {
            "approval.sig"
        });
        let _ = std::fs::remove_file(&sig_path);
        let mut args = vec!["--local-user", fpr.as_str(), "--output"];
        args.push(sig_path.to_str().expect("utf8"));
        if armor {
            args.push("--armor");
        }
        args.extend(["--detach-sign", doc_path.to_str().expect("utf8")]);
        gpg.run(&args, Some(pass_text));
        let sig = std::fs::read(&sig_path).expect("signature");
        assert_eq!(sig.starts_with(b"-----BEGIN PGP SIGNATURE-----"), armor);

        let keys = [other.clone(), public.clone()];
        assert_eq!(
            verify_detached(&keys, doc, &sig, SystemTime::now()).expect("valid"),
            fp(&fpr)
        );

        // Changed data: bad signature, naming the signer.
        let mut changed = doc.to_vec();
        changed[8] ^= 1;
        let err = verify_detached(&keys, &changed, &sig, SystemTime::now())
            .expect_err("changed data accepted");
        assert!(matches!(err, Error::BadSignature { .. }), "{err:?}");
        assert!(err.to_string().contains(&fpr), "{err}");

        // Unknown signer: the error names the issuer found in the signature.
        let err = verify_detached(std::slice::from_ref(&other), doc, &sig, SystemTime::now())
            .expect_err("unknown signer accepted");
        assert!(matches!(err, Error::UnknownSigner { .. }), "{err:?}");
        let msg = err.to_string();
        assert!(msg.contains(&fpr), "issuer not named: {msg}");
        assert!(msg.contains(other.fingerprint().as_str()), "{msg}");
    }

    // Our signature with a gpg-made secret key → gpg --verify accepts it.
    let secret = SecretKey::from_bytes(&gpg.export_secret(&fpr, pass_text)).expect("secret");
    let ours = sign_detached(&secret, &Passphrase::new(pass_text.into()), doc).expect("sign");
    assert!(ours.starts_with("-----BEGIN PGP SIGNATURE-----"));
    assert_eq!(
        verify_detached(
            std::slice::from_ref(&public),
            doc,
            ours.as_bytes(),
            SystemTime::now()
        )
        .expect("ours"),
        fp(&fpr)
    );
    let sig_path = gpg.file("ours.asc", ours.as_bytes());
    let out = gpg.run(
        &[
            "--status-fd",
            "1",
            "--verify",
            sig_path.to_str().expect("utf8"),
            doc_path.to_str().expect("utf8"),
        ],
        None,
    );
    let status = String::from_utf8_lossy(&out.stdout);
    assert!(status.contains(&format!("VALIDSIG {fpr}")), "{status}");
    // And gpg rejects it over other data.
    let other_doc = gpg.file("other.txt", b"something else");
    let out = gpg.try_run(
        &[
            "--verify",
            sig_path.to_str().expect("utf8"),
            other_doc.to_str().expect("utf8"),
        ],
        None,
    );
    assert!(
        !out.status.success(),
        "gpg accepted a signature over other data"
    );

    // Wrong passphrase when signing.
    let err = sign_detached(&secret, &Passphrase::new("nope".into()), doc).expect_err("wrong pw");
    assert!(matches!(err, Error::WrongPassphrase { .. }), "{err:?}");
}

#[test]
fn our_key_signs_and_gpg_verifies() {
    let gpg = Gpg::new();
    let pass = Passphrase::new("pp".into());
    let generated = generate_key("Signer <signer@example.org>", Some(&pass)).expect("generate");
    gpg.import(generated.public_armored.as_bytes(), None);
    let secret = SecretKey::from_bytes(generated.secret_armored.as_bytes()).expect("secret");
    let doc = b"approval body";
    let sig = sign_detached(&secret, &pass, doc).expect("sign");
    let sig_path = gpg.file("s.asc", sig.as_bytes());
    let doc_path = gpg.file("d.txt", doc);
    let out = gpg.run(
        &[
            "--status-fd",
            "1",
            "--verify",
            sig_path.to_str().expect("utf8"),
            doc_path.to_str().expect("utf8"),
        ],
        None,
    );
    let status = String::from_utf8_lossy(&out.stdout);
    assert!(
        status.contains(&format!("VALIDSIG {}", generated.fingerprint)),
        "{status}"
    );
    let public = PublicKey::from_bytes(generated.public_armored.as_bytes()).expect("public");
    assert_eq!(
        verify_detached(&[public], doc, sig.as_bytes(), SystemTime::now()).expect("verify"),
        generated.fingerprint
    );
}

/// A signature by a signing subkey maps to the primary fingerprint.
#[test]
fn signing_subkey_signature_maps_to_primary() {
    let gpg = Gpg::new();
    let fpr = gpg.gen_key(
        "Sub Signer <subsigner@example.org>",
        "ed25519",
        "cert",
        "never",
        "",
    );
    gpg.add_key(&fpr, "ed25519", "sign", "never", "");
    let (_, subs) = gpg.fingerprints(&fpr);
    let sign_sub = subs
        .iter()
        .find(|(_, c)| c.contains('s'))
        .expect("signing subkey")
        .0
        .clone();
    let doc = gpg.file("doc.txt", b"subkey-signed approval");
    let sig_path = gpg.path("doc.sig");
    gpg.run(
        &[
            "--local-user",
            &fpr,
            "--output",
            sig_path.to_str().expect("utf8"),
            "--detach-sign",
            doc.to_str().expect("utf8"),
        ],
        None,
    );
    let sig = std::fs::read(&sig_path).expect("sig");
    let public = PublicKey::from_bytes(&gpg.export_public(&fpr, false)).expect("public");
    assert_eq!(
        verify_detached(
            std::slice::from_ref(&public),
            b"subkey-signed approval",
            &sig,
            SystemTime::now()
        )
        .expect("valid"),
        fp(&fpr)
    );
    // The unknown-signer error names the subkey that signed.
    let err = verify_detached(&[], b"subkey-signed approval", &sig, SystemTime::now())
        .expect_err("no keys");
    assert!(err.to_string().contains(&sign_sub), "{err}");

    // Our signing with a cert-only primary picks the signing subkey; gpg agrees.
    let secret = SecretKey::from_bytes(&gpg.export_secret(&fpr, "")).expect("secret");
    let ours = sign_detached(&secret, &Passphrase::new(String::new()), b"x").expect("sign");
    assert_eq!(
        verify_detached(
            std::slice::from_ref(&public),
            b"x",
            ours.as_bytes(),
            SystemTime::now()
        )
        .expect("ours"),
        fp(&fpr)
    );
    let s = gpg.file("x.asc", ours.as_bytes());
    let d = gpg.file("x.txt", b"x");
    let out = gpg.run(
        &[
            "--status-fd",
            "1",
            "--verify",
            s.to_str().expect("utf8"),
            d.to_str().expect("utf8"),
        ],
        None,
    );
    let status = String::from_utf8_lossy(&out.stdout);
    // VALIDSIG <signing key fpr> ... <primary fpr>
    assert!(status.contains(&format!("VALIDSIG {sign_sub}")), "{status}");
    assert!(status.contains(&fpr), "{status}");
}

#[test]
fn malformed_and_multiple_signatures_are_refused() {
    let gpg = Gpg::new();
    let a = gpg.gen_key(
        "A <a@example.org>",
        "future-default",
        "default",
        "never",
        "",
    );
    let b = gpg.gen_key(
        "B <b@example.org>",
        "future-default",
        "default",
        "never",
        "",
    );
    let keys = [
        PublicKey::from_bytes(&gpg.export_public(&a, true)).expect("a"),
        PublicKey::from_bytes(&gpg.export_public(&b, true)).expect("b"),
    ];
    let doc = gpg.file("doc.txt", b"doc");
    let sig_path = gpg.path("two.asc");
    gpg.run(
        &[
            "--local-user",
            &a,
            "--local-user",
            &b,
            "--armor",
            "--output",
            sig_path.to_str().expect("utf8"),
            "--detach-sign",
            doc.to_str().expect("utf8"),
        ],
        None,
    );
    let two = std::fs::read(&sig_path).expect("two sigs");
    let err = verify_detached(&keys, b"doc", &two, SystemTime::now())
        .expect_err("two signatures accepted");
    assert!(matches!(err, Error::SignatureCount { count: 2 }), "{err:?}");

    // Malformed armor: damaged base64, missing end line, no signature at all.
    let one_path = gpg.path("one.asc");
    gpg.run(
        &[
            "--local-user",
            &a,
            "--armor",
            "--output",
            one_path.to_str().expect("utf8"),
            "--detach-sign",
            doc.to_str().expect("utf8"),
        ],
        None,
    );
    let one = String::from_utf8(std::fs::read(&one_path).expect("sig")).expect("ascii");
    assert_eq!(
        verify_detached(&keys, b"doc", one.as_bytes(), SystemTime::now()).expect("ok"),
        fp(&a)
    );
    let lines: Vec<&str> = one.lines().collect();
    let body_idx = lines
        .iter()
        .position(|l| l.len() > 20 && !l.starts_with("-----"))
        .expect("body");
    let mut damaged = lines.clone();
    let broken = lines[body_idx].replace(|c: char| c.is_ascii_alphanumeric(), "!");
    damaged[body_idx] = &broken;
    let no_end: String = lines[..lines.len() - 1].join("\n");
    for bad in [
        damaged.join("\n"),
        no_end,
        "-----BEGIN PGP SIGNATURE-----\n\n-----END PGP SIGNATURE-----\n".to_string(),
        "not a signature at all".to_string(),
    ] {
        let err = verify_detached(&keys, b"doc", bad.as_bytes(), SystemTime::now())
            .expect_err("malformed accepted");
        assert!(
            matches!(err, Error::MalformedSignature { .. }),
            "{bad:?}: unexpected {err:?}"
        );
    }
}

#[test]
fn concatenated_armor_blocks_are_counted() {
    let a = generate_key("CA <ca@example.org>", None).expect("a");
    let b = generate_key("CB <cb@example.org>", None).expect("b");
    let both = format!("{}\n{}", a.public_armored, b.public_armored);
    let err = PublicKey::from_bytes(both.as_bytes()).expect_err("two armored keys accepted");
    assert!(matches!(err, Error::KeyCount { count: 2, .. }), "{err:?}");
    let both = format!("{}{}", a.secret_armored, b.secret_armored);
    let err = SecretKey::from_bytes(both.as_bytes()).expect_err("two secret keys accepted");
    assert!(matches!(err, Error::KeyCount { count: 2, .. }), "{err:?}");

    let sa = SecretKey::from_bytes(a.secret_armored.as_bytes()).expect("sa");
    let pass = Passphrase::new(String::new());
    let s1 = sign_detached(&sa, &pass, b"doc").expect("sign");
    let s2 = sign_detached(&sa, &pass, b"doc").expect("sign");
    let pa = PublicKey::from_bytes(a.public_armored.as_bytes()).expect("pa");
    let one = verify_detached(
        std::slice::from_ref(&pa),
        b"doc",
        s1.as_bytes(),
        SystemTime::now(),
    )
    .expect("one");
    assert_eq!(one, a.fingerprint);
    let err = verify_detached(
        &[pa],
        b"doc",
        format!("{s1}{s2}").as_bytes(),
        SystemTime::now(),
    )
    .expect_err("two armored signatures accepted");
    assert!(matches!(err, Error::SignatureCount { count: 2 }), "{err:?}");
}
