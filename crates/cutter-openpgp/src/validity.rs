//! Key validity from self-signatures: which components are bound, what they may be
//! used for, whether they are expired or revoked at a given time.
//!
//! Simplified but conservative model (documented on [`crate::PublicKey`]):
//! * only self-signatures count (issued by the primary key and cryptographically valid);
//!   third-party certifications are ignored;
//! * the newest live binding signature (created at or before `now`, not itself expired)
//!   of a component decides its key flags and expiry;
//! * any valid revocation signature created at or before `now` revokes the component
//!   (the revocation reason is not weighed).

use std::time::{SystemTime, UNIX_EPOCH};

use pgp::{
    composed::{SignedKeyDetails, SignedPublicSubKey},
    crypto::hash::HashAlgorithm,
    packet::{self, KeyFlags, Signature, SignatureType, SubpacketData},
    ser::Serialize,
    types::{KeyDetails, PublicParams, Tag},
};

/// Seconds since the Unix epoch.
pub(crate) type Secs = u64;

pub(crate) fn secs(t: SystemTime) -> Secs {
    t.duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

/// `YYYY-MM-DD HH:MM:SS UTC` for error messages.
pub(crate) fn utc(t: Secs) -> String {
    let days = (t / 86_400) as i64;
    let rem = t % 86_400;
    // Howard Hinnant's civil_from_days.
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + i64::from(m <= 2);
    format!(
        "{y:04}-{m:02}-{d:02} {:02}:{:02}:{:02} UTC",
        rem / 3600,
        (rem % 3600) / 60,
        rem % 60
    )
}

fn created(sig: &Signature) -> Option<Secs> {
    sig.created().map(|t| u64::from(t.as_secs()))
}

/// Created at or before `now` and not past its own signature expiration time.
fn live_at(sig: &Signature, now: Secs) -> bool {
    let Some(c) = created(sig) else { return false };
    if c > now {
        return false;
    }
    match sig
        .signature_expiration_time()
        .map(|d| u64::from(d.as_secs()))
    {
        Some(d) if d > 0 => c + d > now,
        _ => true,
    }
}

/// Whether `sig` names `key` as its issuer (or names no issuer at all).
pub(crate) fn names_issuer(sig: &Signature, key: &impl KeyDetails) -> bool {
    let ids = sig.issuer_key_id();
    let fps = sig.issuer_fingerprint();
    if ids.is_empty() && fps.is_empty() {
        return true;
    }
    let id = key.legacy_key_id();
    let fp = key.fingerprint();
    ids.iter().any(|k| **k == id) || fps.iter().any(|f| **f == fp)
}

/// The key flags subpacket of `sig`, if it has one.
fn flags_of(sig: &Signature) -> Option<KeyFlags> {
    sig.config()?
        .hashed_subpackets()
        .find_map(|p| match &p.data {
            SubpacketData::KeyFlags(f) => Some(f.clone()),
            _ => None,
        })
}

fn expiry(component_created: Secs, sig: &Signature) -> Option<Secs> {
    match sig.key_expiration_time().map(|d| u64::from(d.as_secs())) {
        Some(d) if d > 0 => Some(component_created + d),
        _ => None,
    }
}

/// What a bound, live component may do.
#[derive(Debug, Clone)]
pub(crate) struct Caps {
    /// Key flags of the binding signature (`None`: no key flags subpacket).
    flags: Option<KeyFlags>,
    algorithm_can_sign: bool,
    algorithm_can_encrypt: bool,
}

impl Caps {
    pub(crate) fn can_sign(&self) -> bool {
        self.algorithm_can_sign && self.flags.as_ref().is_none_or(|f| f.sign())
    }
    pub(crate) fn can_encrypt(&self) -> bool {
        self.algorithm_can_encrypt
            && self
                .flags
                .as_ref()
                .is_none_or(|f| f.encrypt_comms() || f.encrypt_storage())
    }
    pub(crate) fn describe(&self) -> String {
        let Some(f) = &self.flags else {
            return "no key flags".into();
        };
        let mut v = Vec::new();
        if f.certify() {
            v.push("certify");
        }
        if f.sign() {
            v.push("sign");
        }
        if f.encrypt_comms() || f.encrypt_storage() {
            v.push("encrypt");
        }
        if f.authentication() {
            v.push("authenticate");
        }
        if v.is_empty() {
            "no usage flags".into()
        } else {
            format!("usable for: {}", v.join(", "))
        }
    }
}

/// A valid revocation of the primary key created at or before `now`, described.
pub(crate) fn primary_revocation(
    primary: &packet::PublicKey,
    details: &SignedKeyDetails,
    now: Secs,
) -> Option<String> {
    details.revocation_signatures.iter().find_map(|rev| {
        let valid = rev.typ() == Some(SignatureType::KeyRevocation)
            && names_issuer(rev, primary)
            && created(rev).is_some_and(|c| c <= now)
            && rev.verify_key(primary).is_ok();
        if !valid {
            return None;
        }
        let why = rev
            .revocation_reason_string()
            .map(|s| String::from_utf8_lossy(s).into_owned())
            .filter(|s| !s.is_empty())
            .map(|s| format!(" ({s})"))
            .unwrap_or_default();
        Some(format!(
            "the primary key was revoked on {}{why}",
            utc(created(rev).unwrap_or(0))
        ))
    })
}

/// Checks the primary key at `now`: bound by a live self-signature, not revoked, not
/// expired. Returns its capabilities, or why it is unusable.
pub(crate) fn primary_at(
    primary: &packet::PublicKey,
    details: &SignedKeyDetails,
    now: Secs,
) -> Result<Caps, String> {
    let key_created = u64::from(primary.created_at().as_secs());
    if key_created > now {
        return Err(format!(
            "the primary key was created on {}, after the time of use ({})",
            utc(key_created),
            utc(now)
        ));
    }
    if let Some(why) = primary_revocation(primary, details, now) {
        return Err(why);
    }

    // Candidate self-signatures: direct-key signatures and certifications of user ids
    // that are not themselves revoked.
    let mut newest: Option<(&Signature, Secs)> = None;
    fn consider<'a>(sig: &'a Signature, newest: &mut Option<(&'a Signature, Secs)>) {
        let c = created(sig).unwrap_or(0);
        if newest.is_none_or(|(_, n)| c >= n) {
            *newest = Some((sig, c));
        }
    }
    for sig in &details.direct_signatures {
        if sig.typ() == Some(SignatureType::Key)
            && names_issuer(sig, primary)
            && live_at(sig, now)
            && sig.verify_key(primary).is_ok()
        {
            consider(sig, &mut newest);
        }
    }
    for user in &details.users {
        let revoked = user.signatures.iter().any(|s| {
            s.typ() == Some(SignatureType::CertRevocation)
                && names_issuer(s, primary)
                && created(s).is_some_and(|c| c <= now)
                && s.verify_certification(primary, Tag::UserId, &user.id)
                    .is_ok()
        });
        if revoked {
            continue;
        }
        for sig in &user.signatures {
            if sig.is_certification()
                && sig.typ() != Some(SignatureType::CertRevocation)
                && names_issuer(sig, primary)
                && live_at(sig, now)
                && sig
                    .verify_certification(primary, Tag::UserId, &user.id)
                    .is_ok()
            {
                consider(sig, &mut newest);
            }
        }
    }
    let Some((binding, _)) = newest else {
        return Err(format!(
            "no valid self-signature binds the primary key as of {}",
            utc(now)
        ));
    };
    if let Some(exp) = expiry(key_created, binding) {
        if exp <= now {
            return Err(format!("the primary key expired on {}", utc(exp)));
        }
    }
    Ok(Caps {
        flags: flags_of(binding),
        algorithm_can_sign: primary.algorithm().can_sign(),
        algorithm_can_encrypt: primary.algorithm().can_encrypt(),
    })
}

/// Checks a subkey at `now` (the primary is checked separately): bound by a live binding
/// signature, not revoked, not expired; signing-capable subkeys must carry a valid
/// primary-key binding ("back") signature.
pub(crate) fn subkey_at(
    primary: &packet::PublicKey,
    sub: &SignedPublicSubKey,
    now: Secs,
) -> Result<Caps, String> {
    let fp = hex::encode_upper(sub.key.fingerprint().as_bytes());
    let mut newest: Option<(&Signature, Secs)> = None;
    for sig in &sub.signatures {
        let ok = names_issuer(sig, primary)
            && created(sig).is_some_and(|c| c <= now)
            && sig.verify_subkey_binding(primary, &sub.key).is_ok();
        if !ok {
            continue;
        }
        match sig.typ() {
            Some(SignatureType::SubkeyRevocation) => {
                return Err(format!(
                    "subkey {fp} was revoked on {}",
                    utc(created(sig).unwrap_or(0))
                ));
            }
            Some(SignatureType::SubkeyBinding) if live_at(sig, now) => {
                let c = created(sig).unwrap_or(0);
                if newest.is_none_or(|(_, n)| c >= n) {
                    newest = Some((sig, c));
                }
            }
            _ => {}
        }
    }
    let Some((binding, _)) = newest else {
        return Err(format!(
            "subkey {fp} has no valid binding signature as of {}",
            utc(now)
        ));
    };
    let key_created = u64::from(sub.key.created_at().as_secs());
    if key_created > now {
        return Err(format!(
            "subkey {fp} was created on {}, after the time of use ({})",
            utc(key_created),
            utc(now)
        ));
    }
    if let Some(exp) = expiry(key_created, binding) {
        if exp <= now {
            return Err(format!("subkey {fp} expired on {}", utc(exp)));
        }
    }
    let flags = flags_of(binding);
    let mut caps = Caps {
        flags,
        algorithm_can_sign: sub.key.algorithm().can_sign(),
        algorithm_can_encrypt: sub.key.algorithm().can_encrypt(),
    };
    if caps.can_sign() {
        let backsig_ok = binding
            .embedded_signature()
            .is_some_and(|b| b.verify_primary_key_binding(&sub.key, primary).is_ok());
        if !backsig_ok {
            // Without a back signature the subkey cannot sign on behalf of the primary.
            caps.algorithm_can_sign = false;
        }
    }
    Ok(caps)
}

/// The smallest RSA modulus accepted for a signing key, in bits.
pub(crate) const MIN_RSA_BITS: u16 = 2048;

/// Why signatures by `key` are refused (RSA below [`MIN_RSA_BITS`], DSA, ElGamal), if
/// they are: the algorithm and the rule it breaks.
pub(crate) fn weak_key(key: &impl KeyDetails) -> Option<String> {
    match key.public_params() {
        PublicParams::RSA(p) => {
            // The serialized modulus is an MPI, which starts with its length in bits.
            let bits = p
                .to_bytes()
                .ok()
                .and_then(|b| Some(u16::from_be_bytes([*b.first()?, *b.get(1)?])))
                .unwrap_or(0);
            (bits < MIN_RSA_BITS).then(|| {
                format!("it is an RSA-{bits} key, and RSA keys need at least {MIN_RSA_BITS} bits")
            })
        }
        PublicParams::DSA(_) => Some("it is a DSA key, and DSA keys are not accepted".into()),
        PublicParams::Elgamal(_) => {
            Some("it is an ElGamal key, and ElGamal keys are not accepted".into())
        }
        _ => None,
    }
}

/// Why `sig`'s hash algorithm is refused (MD5, SHA-1, RIPEMD-160), if it is.
pub(crate) fn weak_hash(sig: &Signature) -> Option<String> {
    let name = match sig.hash_alg()? {
        HashAlgorithm::Md5 => "MD5",
        HashAlgorithm::Sha1 => "SHA-1",
        HashAlgorithm::Ripemd160 => "RIPEMD-160",
        _ => return None,
    };
    Some(format!(
        "the signature uses the {name} digest, and MD5, SHA-1 and RIPEMD-160 signatures are not accepted"
    ))
}
