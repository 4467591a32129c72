//! Detached signatures over approvals.

use std::time::SystemTime;

use cutter_core::Fingerprint;
use pgp::{
    composed::{ArmorOptions, Deserializable, DetachedSignature},
    crypto::hash::HashAlgorithm,
    packet::{self, Signature, SignatureType},
    types::{KeyDetails, Password, SecretParams, SigningKey},
};
use rand::rngs::OsRng;

use crate::{
    error::{Error, Result},
    keys::{armor_blocks, fpr, key_id},
    validity::{self, Secs},
    Passphrase, PublicKey, SecretKey,
};

/// Signs `data` with `secret` (its primary key if that may sign, else its newest valid
/// signing subkey), SHA-256, and returns an ASCII-armored v4 binary-mode detached
/// signature, as `gpg --detach-sign --armor` would.
pub fn sign_detached(secret: &SecretKey, passphrase: &Passphrase, data: &[u8]) -> Result<String> {
    let now = validity::secs(SystemTime::now());
    let fingerprint = secret.fingerprint();
    let ssk = secret.inner();
    let public = secret.public_key().inner();
    let no_key = |reason: String| Error::NoSigningKey {
        fingerprint: fingerprint.clone(),
        reason,
    };
    let primary_caps =
        validity::primary_at(&public.primary_key, &public.details, now).map_err(&no_key)?;
    let pw = passphrase.to_pgp();

    if primary_caps.can_sign() {
        let key = &ssk.primary_key;
        check_unlock(
            key.unlock(&pw, |_, _| Ok(())),
            key.secret_params(),
            &fingerprint,
            "primary key",
        )?;
        return make(key, &pw, data, &fingerprint);
    }

    // Newest valid signing subkey that has secret material here.
    let mut best: Option<(&packet::SecretSubkey, u32)> = None;
    let mut reasons = vec![format!(
        "the primary key may not sign ({})",
        primary_caps.describe()
    )];
    for sub in &ssk.secret_subkeys {
        let sub_fp = sub.key.fingerprint();
        let Some(public_sub) = public
            .public_subkeys
            .iter()
            .find(|p| p.key.fingerprint() == sub_fp)
        else {
            continue;
        };
        match validity::subkey_at(&public.primary_key, public_sub, now) {
            Ok(caps) if caps.can_sign() => {
                let c = sub.key.created_at().as_secs();
                if best.is_none_or(|(_, b)| c >= b) {
                    best = Some((&sub.key, c));
                }
            }
            Ok(caps) => reasons.push(format!(
                "subkey {} may not sign ({})",
                fpr(&sub_fp),
                caps.describe()
            )),
            Err(r) => reasons.push(r),
        }
    }
    let Some((key, _)) = best else {
        return Err(no_key(reasons.join("; ")));
    };
    let label = format!("subkey {}", fpr(&key.fingerprint()));
    check_unlock(
        key.unlock(&pw, |_, _| Ok(())),
        key.secret_params(),
        &fingerprint,
        &label,
    )?;
    make(key, &pw, data, &fpr(&key.fingerprint()))
}

fn check_unlock(
    res: pgp::errors::Result<pgp::errors::Result<()>>,
    params: &SecretParams,
    fingerprint: &Fingerprint,
    label: &str,
) -> Result<()> {
    match res {
        Ok(_) => Ok(()),
        Err(_) if matches!(params, SecretParams::Encrypted(_)) => Err(Error::WrongPassphrase {
            fingerprint: fingerprint.clone(),
            component: label.to_owned(),
        }),
        Err(e) => Err(Error::Sign {
            fingerprint: fingerprint.clone(),
            detail: format!("unlocking the {label}: {e}"),
        }),
    }
}

fn make(key: &impl SigningKey, pw: &Password, data: &[u8], signer: &Fingerprint) -> Result<String> {
    let sign_err = |detail: String| Error::Sign {
        fingerprint: signer.clone(),
        detail,
    };
    let sig = DetachedSignature::sign_binary_data(OsRng, key, pw, HashAlgorithm::Sha256, data)
        .map_err(|e| sign_err(e.to_string()))?;
    sig.to_armored_string(ArmorOptions::default())
        .map_err(|e| sign_err(format!("armoring the signature: {e}")))
}

/// What the signature says about its issuer, for messages.
fn issuer_text(sig: &Signature) -> String {
    let fps: Vec<String> = sig
        .issuer_fingerprint()
        .iter()
        .map(|f| hex::encode_upper(f.as_bytes()))
        .collect();
    if !fps.is_empty() {
        return format!("fingerprint {}", fps.join(", "));
    }
    let ids: Vec<String> = sig.issuer_key_id().iter().map(|k| key_id(k)).collect();
    if !ids.is_empty() {
        return format!("key id {}", ids.join(", "));
    }
    "(the signature names no issuer)".into()
}

/// A key component that may have made the signature.
enum Component<'a> {
    Primary,
    Subkey(&'a pgp::composed::SignedPublicSubKey),
}

/// How far in the future (after `now`) a signature's creation time may lie, for clock
/// skew between the signer and the verifier, in seconds.
pub const MAX_CLOCK_SKEW_SECS: u64 = 5 * 60;

/// The one data signature in `signature` (armored or binary) and its creation time
/// (unix seconds); anything else — no packet, several, another signature type, no
/// creation time — is refused.
fn one_data_signature(signature: &[u8]) -> Result<(Signature, u64)> {
    let malformed = |detail: String| Error::MalformedSignature { detail };
    let mut sigs = Vec::new();
    for block in armor_blocks(signature) {
        let (parsed, _headers) =
            DetachedSignature::from_reader_many(block).map_err(|e| malformed(e.to_string()))?;
        for sig in parsed {
            sigs.push(sig.map_err(|e| malformed(e.to_string()))?);
        }
    }
    let sig = match sigs.len() {
        1 => sigs.remove(0).signature,
        0 => return Err(malformed("no signature packet found".into())),
        count => return Err(Error::SignatureCount { count }),
    };
    match sig.typ() {
        Some(SignatureType::Binary | SignatureType::Text) => {}
        other => {
            return Err(malformed(format!(
                "not a data signature (signature type {other:?})"
            )))
        }
    }
    let Some(created) = sig.created() else {
        return Err(malformed("the signature has no creation time".into()));
    };
    let created = u64::from(created.as_secs());
    Ok((sig, created))
}

/// When the one data signature in `signature` (armored or binary) says it was made, in
/// unix seconds. Parses only: the signer chooses this time, [`verify_detached`] proves
/// who signed.
pub fn signature_created(signature: &[u8]) -> Result<i64> {
    one_data_signature(signature).map(|(_, created)| created as i64)
}

/// Verifies a detached signature (armored or binary; exactly one signature) over `data`
/// against `keys` at the time `now`, and returns the primary fingerprint of the key that
/// made it — also when it was made by one of that key's signing subkeys.
///
/// The signature is judged at `now`, not at its own creation time (which the signer
/// chooses): at `now` the primary key must be bound, unexpired and unrevoked, the signing
/// (sub)key bound, unexpired, unrevoked and allowed to sign (a subkey with a valid
/// back-signature), and the signature itself unexpired. A signature dated before the
/// (sub)key that made it, or more than [`MAX_CLOCK_SKEW_SECS`] after `now`, is refused;
/// so are MD5, SHA-1 and RIPEMD-160 signatures and signatures by weak keys (RSA below
/// 2048 bits, DSA, ElGamal) as the primary or signing key ([`Error::WeakAlgorithm`]),
/// and signature types other than binary or text data signatures.
pub fn verify_detached(
    keys: &[PublicKey],
    data: &[u8],
    signature: &[u8],
    now: SystemTime,
) -> Result<Fingerprint> {
    let (sig, created) = one_data_signature(signature)?;
    let sig = &sig;
    let now = validity::secs(now);

    let has_issuer = !sig.issuer_key_id().is_empty() || !sig.issuer_fingerprint().is_empty();
    let mut candidates: Vec<(&PublicKey, Component<'_>)> = Vec::new();
    for key in keys {
        let inner = key.inner();
        if !has_issuer || validity::names_issuer(sig, &inner.primary_key) {
            candidates.push((key, Component::Primary));
        }
        for sub in &inner.public_subkeys {
            if !has_issuer || validity::names_issuer(sig, &sub.key) {
                candidates.push((key, Component::Subkey(sub)));
            }
        }
    }
    if candidates.is_empty() {
        return Err(Error::UnknownSigner {
            issuer: issuer_text(sig),
            trusted: keys.iter().map(PublicKey::fingerprint).collect(),
        });
    }

    // A weak digest is refused before any cryptography: some algorithms (EdDSA) refuse
    // to verify a SHA-1 signature at all, which would read as tampered data.
    if let Some(rule) = validity::weak_hash(sig) {
        return Err(Error::WeakAlgorithm {
            fingerprint: candidates[0].0.fingerprint(),
            rule,
            hint: WEAK_DIGEST_HINT,
        });
    }

    let mut failure: Option<(Fingerprint, String)> = None;
    for (key, component) in &candidates {
        let inner = key.inner();
        let res = match component {
            Component::Primary => sig.verify(&inner.primary_key, data),
            Component::Subkey(sub) => sig.verify(&sub.key, data),
        };
        if let Err(e) = res {
            if failure.is_none() {
                let text = e.to_string();
                let detail = if text.contains("signed hash value") {
                    "the digest of the data does not match the signature".to_owned()
                } else {
                    text.split_whitespace().collect::<Vec<_>>().join(" ")
                };
                failure = Some((key.fingerprint(), detail));
            }
            continue;
        }
        // Cryptographically valid: was the signer entitled to make it, now?
        judge(key, component, sig, created, now)?;
        return Ok(key.fingerprint());
    }
    let (fingerprint, detail) = failure.expect("at least one candidate was tried");
    Err(Error::BadSignature {
        fingerprint,
        detail,
    })
}

const WEAK_DIGEST_HINT: &str =
    "sign again with SHA-256 or stronger (`gpg --digest-algo SHA256 --detach-sign`)";

/// The policy a cryptographically valid signature by `component` of `key` must meet (see
/// [`verify_detached`]).
fn judge(
    key: &PublicKey,
    component: &Component<'_>,
    sig: &Signature,
    created: Secs,
    now: Secs,
) -> Result<()> {
    let inner = key.inner();
    let fingerprint = key.fingerprint();
    let not_valid = |reason: String| Error::SignerNotValid {
        fingerprint: fingerprint.clone(),
        reason,
    };
    let weak = |rule: String, hint: &'static str| Error::WeakAlgorithm {
        fingerprint: fingerprint.clone(),
        rule,
        hint,
    };
    const NEW_KEY: &str = "the approver needs a new key (ed25519, or RSA of 3072 bits), \
                           registered in place of this one";
    if let Some(rule) = validity::weak_hash(sig) {
        return Err(weak(rule, WEAK_DIGEST_HINT));
    }
    if let Some(rule) = validity::weak_key(&inner.primary_key) {
        return Err(weak(format!("the primary key: {rule}"), NEW_KEY));
    }
    if let Component::Subkey(sub) = component {
        if let Some(rule) = validity::weak_key(&sub.key) {
            let sub_fp = fpr(&sub.key.fingerprint());
            return Err(weak(format!("signing subkey {sub_fp}: {rule}"), NEW_KEY));
        }
    }
    if created > now.saturating_add(MAX_CLOCK_SKEW_SECS) {
        return Err(not_valid(format!(
            "the signature is dated {}, more than {} minutes after the time of verification \
             ({}); check the signer's clock and sign again",
            validity::utc(created),
            MAX_CLOCK_SKEW_SECS / 60,
            validity::utc(now)
        )));
    }
    if let Some(exp) = sig
        .signature_expiration_time()
        .map(|d| u64::from(d.as_secs()))
    {
        if exp > 0 && created + exp <= now {
            return Err(not_valid(format!(
                "the signature expired on {}",
                validity::utc(created + exp)
            )));
        }
    }
    // Judged at the time of verification, not at the time the signer wrote into the
    // signature: a key that has expired or been revoked since cannot sign by backdating.
    let when = format!("at the time of verification ({})", validity::utc(now));
    let primary_caps = validity::primary_at(&inner.primary_key, &inner.details, now)
        .map_err(|r| not_valid(format!("{r}, {when}")))?;
    let (signer_created, signer) = match component {
        Component::Primary if !primary_caps.can_sign() => {
            return Err(not_valid(format!(
                "the primary key may not sign ({}), {when}",
                primary_caps.describe()
            )))
        }
        Component::Primary => (inner.primary_key.created_at(), "the primary key".to_owned()),
        Component::Subkey(sub) => {
            let sub_fp = fpr(&sub.key.fingerprint());
            let caps = validity::subkey_at(&inner.primary_key, sub, now)
                .map_err(|r| not_valid(format!("{r}, {when}")))?;
            if !caps.can_sign() {
                return Err(not_valid(format!(
                    "subkey {sub_fp} may not sign ({}), {when}",
                    caps.describe()
                )));
            }
            (sub.key.created_at(), format!("subkey {sub_fp}"))
        }
    };
    // A signature cannot be older than the key that made it.
    let signer_created = u64::from(signer_created.as_secs());
    if created < signer_created {
        return Err(not_valid(format!(
            "the signature is dated {}, before {signer} that made it was created ({})",
            validity::utc(created),
            validity::utc(signer_created)
        )));
    }
    Ok(())
}
