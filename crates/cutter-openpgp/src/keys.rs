//! Public and secret keys, and key generation.

use std::{fmt, time::SystemTime};

use cutter_core::Fingerprint;
use pgp::{
    composed::{
        ArmorOptions, Deserializable, EncryptionCaps, KeyType, SecretKeyParamsBuilder,
        SignedPublicKey, SignedSecretKey, SubkeyParamsBuilder,
    },
    crypto::{ecc_curve::ECCCurve, hash::HashAlgorithm, sym::SymmetricKeyAlgorithm},
    packet,
    types::{CompressionAlgorithm, KeyDetails, KeyVersion},
};

use crate::{
    error::{Error, Result},
    validity::{self, Secs},
    Passphrase,
};

/// Converts an rpgp fingerprint (v4: 20 bytes, v6: 32 bytes) to ours.
pub(crate) fn fpr(f: &pgp::types::Fingerprint) -> Fingerprint {
    Fingerprint::new(&hex::encode_upper(f.as_bytes()))
        .expect("v4/v6 fingerprints are 40/64 hex digits")
}

/// A key id as GnuPG prints it (16 upper-case hex digits).
pub(crate) fn key_id(id: &pgp::types::KeyId) -> String {
    hex::encode_upper(id.as_ref())
}

fn check_v4(what: &'static str, key: &packet::PublicKey) -> Result<()> {
    match key.version() {
        KeyVersion::V4 => Ok(()),
        v => Err(Error::KeyParse {
            what,
            detail: format!(
                "the key {} is a {v:?} key; only v4 keys are supported (GnuPG 2.2 compatibility)",
                hex::encode_upper(key.fingerprint().as_bytes())
            ),
        }),
    }
}

/// The key packet an encryption will be addressed to.
pub(crate) enum EncryptionKeyRef<'a> {
    Primary,
    Subkey(&'a packet::PublicSubkey),
}

/// An OpenPGP public key (certificate): one v4 primary key with its user ids and subkeys.
///
/// Validity (expiry, revocation, key flags) is judged from self-signatures only: the
/// newest live self-signature of each component decides; a valid revocation signature
/// makes the component unusable; third-party certifications are ignored.
#[derive(Clone)]
pub struct PublicKey {
    inner: SignedPublicKey,
    fingerprint: Fingerprint,
}

impl PublicKey {
    /// Parses one public key, ASCII-armored or binary. Data holding several primary keys
    /// is an error naming how many (and which) were found.
    pub fn from_bytes(data: &[u8]) -> Result<Self> {
        const WHAT: &str = "public key";
        let parse_err = |e: pgp::errors::Error| Error::KeyParse {
            what: WHAT,
            detail: e.to_string(),
        };
        let mut keys = Vec::new();
        for block in armor_blocks(data) {
            let (parsed, _headers) = SignedPublicKey::from_reader_many(block).map_err(parse_err)?;
            for k in parsed {
                keys.push(k.map_err(parse_err)?);
            }
        }
        let key = single(WHAT, keys, |k| &k.primary_key)?;
        check_v4(WHAT, &key.primary_key)?;
        Ok(Self::wrap(key))
    }

    pub(crate) fn wrap(inner: SignedPublicKey) -> Self {
        let fingerprint = fpr(&inner.primary_key.fingerprint());
        Self { inner, fingerprint }
    }

    /// The primary key's fingerprint (upper-case hex).
    pub fn fingerprint(&self) -> Fingerprint {
        self.fingerprint.clone()
    }

    /// The user ids carrying at least one cryptographically valid self-certification,
    /// as text (invalid UTF-8 replaced).
    pub fn user_ids(&self) -> Vec<String> {
        let primary = &self.inner.primary_key;
        self.inner
            .details
            .users
            .iter()
            .filter(|u| {
                u.signatures.iter().any(|s| {
                    s.is_certification()
                        && validity::names_issuer(s, primary)
                        && s.verify_certification(primary, pgp::types::Tag::UserId, &u.id)
                            .is_ok()
                })
            })
            .map(|u| String::from_utf8_lossy(u.id.id()).into_owned())
            .collect()
    }

    /// The fingerprint of the (sub)key that encryption at `now` would use: the newest
    /// valid encryption-capable subkey, else the primary key if it is itself
    /// encryption-capable. Errors if the key is expired, revoked, not bound by a valid
    /// self-signature, or has no encryption-capable key at `now`.
    pub fn encryption_key_at(&self, now: SystemTime) -> Result<Fingerprint> {
        let (_, fp) = self.select_encryption_key(validity::secs(now))?;
        Ok(fp)
    }

    /// [`encryption_key_at`](Self::encryption_key_at) the current time.
    pub fn encryption_subkey_fingerprint(&self) -> Result<Fingerprint> {
        self.encryption_key_at(SystemTime::now())
    }

    /// The key, ASCII-armored (as `gpg --export --armor` writes it; what the approver
    /// registry stores).
    pub fn to_armored(&self) -> Result<String> {
        self.inner
            .to_armored_string(ArmorOptions::default())
            .map_err(|e| Error::KeyParse {
                what: "public key",
                detail: format!("armoring it: {e}"),
            })
    }

    pub(crate) fn inner(&self) -> &SignedPublicKey {
        &self.inner
    }

    pub(crate) fn select_encryption_key(
        &self,
        now: Secs,
    ) -> Result<(EncryptionKeyRef<'_>, Fingerprint)> {
        let not_capable = |reason: String, hint: &'static str| Error::NotEncryptionCapable {
            fingerprint: self.fingerprint.clone(),
            reason,
            hint,
        };
        let primary = &self.inner.primary_key;
        let primary_caps =
            validity::primary_at(primary, &self.inner.details, now).map_err(|r| {
                let hint = if r.contains("after the time of use") {
                    "check the system clock, or the time passed in"
                } else if r.contains("revoked") {
                    "a revoked key must not be used: configure and pin a new recipient key"
                } else if r.contains("expired") {
                    "extend the key's expiry (`gpg --quick-set-expire <fingerprint> <when> '*'`), \
                 re-export it, or configure another key"
                } else {
                    "check that the key file is a complete, unmodified export"
                };
                not_capable(r, hint)
            })?;

        let mut reasons = Vec::new();
        let mut best: Option<(&packet::PublicSubkey, u32)> = None;
        for sub in &self.inner.public_subkeys {
            let sub_fp = fpr(&sub.key.fingerprint());
            if sub.key.version() != KeyVersion::V4 {
                reasons.push(format!("subkey {sub_fp} is not a v4 key"));
                continue;
            }
            match validity::subkey_at(primary, sub, now) {
                Ok(caps) if caps.can_encrypt() => {
                    let created = sub.key.created_at().as_secs();
                    if best.is_none_or(|(_, c)| created >= c) {
                        best = Some((&sub.key, created));
                    }
                }
                Ok(caps) => reasons.push(format!(
                    "subkey {sub_fp} is not encryption-capable ({})",
                    caps.describe()
                )),
                Err(r) => reasons.push(r),
            }
        }
        if let Some((sub, _)) = best {
            return Ok((EncryptionKeyRef::Subkey(sub), fpr(&sub.fingerprint())));
        }
        if primary_caps.can_encrypt() {
            return Ok((EncryptionKeyRef::Primary, self.fingerprint.clone()));
        }
        reasons.insert(
            0,
            format!(
                "no encryption-capable key: the primary key is not ({})",
                primary_caps.describe()
            ),
        );
        if self.inner.public_subkeys.is_empty() {
            reasons.push("the key has no subkeys".into());
        }
        let hint = if reasons.iter().any(|r| r.contains("expired")) {
            "extend the encryption subkey's expiry (`gpg --quick-set-expire <fingerprint> <when> '*'`) \
             or add a new one, re-export the key, or configure another key"
        } else {
            "add an encryption subkey (`gpg --quick-add-key <fingerprint> cv25519 encr`), \
             re-export the key, or configure another key"
        };
        Err(not_capable(reasons.join("; "), hint))
    }
}

impl fmt::Debug for PublicKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PublicKey")
            .field("fingerprint", &self.fingerprint)
            .field("user_ids", &self.user_ids())
            .finish()
    }
}

/// Splits ASCII-armored data holding several armor blocks into one slice per block
/// (rpgp reads only the first block); binary data is returned whole.
pub(crate) fn armor_blocks(data: &[u8]) -> Vec<&[u8]> {
    const BEGIN: &[u8] = b"-----BEGIN PGP ";
    let starts: Vec<usize> = (0..data.len())
        .filter(|&i| data[i..].starts_with(BEGIN) && (i == 0 || data[i - 1] == b'\n'))
        .collect();
    if starts.len() <= 1 {
        return vec![data];
    }
    starts
        .iter()
        .enumerate()
        .map(|(n, &s)| &data[s..starts.get(n + 1).copied().unwrap_or(data.len())])
        .collect()
}

/// Exactly one key, else [`Error::KeyCount`].
fn single<K>(
    what: &'static str,
    mut keys: Vec<K>,
    primary: impl Fn(&K) -> &packet::PublicKey,
) -> Result<K> {
    if keys.len() == 1 {
        return Ok(keys.remove(0));
    }
    Err(Error::KeyCount {
        what,
        count: keys.len(),
        fingerprints: keys
            .iter()
            .map(|k| fpr(&primary(k).fingerprint()))
            .collect(),
    })
}

/// An OpenPGP secret key (transferable secret key), possibly passphrase-protected.
/// `Debug` shows only the fingerprint.
#[derive(Clone)]
pub struct SecretKey {
    inner: SignedSecretKey,
    public: PublicKey,
}

impl SecretKey {
    /// Parses one secret key, ASCII-armored or binary (as written by
    /// `gpg --export-secret-keys` or [`generate_key`]).
    pub fn from_bytes(data: &[u8]) -> Result<Self> {
        const WHAT: &str = "secret key";
        let parse_err = |e: pgp::errors::Error| Error::KeyParse {
            what: WHAT,
            detail: e.to_string(),
        };
        let mut keys = Vec::new();
        for block in armor_blocks(data) {
            let (parsed, _headers) = SignedSecretKey::from_reader_many(block).map_err(parse_err)?;
            for k in parsed {
                keys.push(k.map_err(parse_err)?);
            }
        }
        let key = single(WHAT, keys, |k| k.primary_key.public_key())?;
        check_v4(WHAT, key.primary_key.public_key())?;
        let public = PublicKey::wrap(key.to_public_key());
        Ok(Self { inner: key, public })
    }

    /// The primary key's fingerprint (upper-case hex).
    pub fn fingerprint(&self) -> Fingerprint {
        self.public.fingerprint()
    }

    /// The public part of this key.
    pub fn public_key(&self) -> &PublicKey {
        &self.public
    }

    pub(crate) fn inner(&self) -> &SignedSecretKey {
        &self.inner
    }
}

impl fmt::Debug for SecretKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SecretKey")
            .field("fingerprint", &self.public.fingerprint)
            .field("secret", &"<redacted>")
            .finish()
    }
}

/// A freshly generated key pair.
#[derive(Clone)]
pub struct GeneratedKey {
    /// The ASCII-armored secret key (protected by the passphrase, if one was given).
    /// Not shown by `Debug`.
    pub secret_armored: String,
    /// The ASCII-armored public key.
    pub public_armored: String,
    /// The primary key's fingerprint.
    pub fingerprint: Fingerprint,
}

impl fmt::Debug for GeneratedKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("GeneratedKey")
            .field("fingerprint", &self.fingerprint)
            .field("public_armored", &self.public_armored)
            .field("secret_armored", &"<redacted>")
            .finish()
    }
}

/// Generates a v4 key GnuPG 2.2 accepts: an Ed25519 primary key for certification and
/// signing, and a Curve25519 ECDH subkey for encryption; no expiry. With a passphrase,
/// both secret keys are protected with it (iterated+salted S2K, AES-256).
pub fn generate_key(user_id: &str, passphrase: Option<&Passphrase>) -> Result<GeneratedKey> {
    let gen_err = |detail: String| Error::KeyGeneration { detail };
    let passphrase = passphrase.filter(|p| !p.is_empty());

    let mut sub = SubkeyParamsBuilder::default();
    sub.key_type(KeyType::ECDH(ECCCurve::Curve25519Legacy))
        .can_sign(false)
        .can_encrypt(EncryptionCaps::All)
        .can_authenticate(false)
        .passphrase(passphrase.map(|p| p.expose().to_owned()));
    let sub = sub.build().map_err(|e| gen_err(e.to_string()))?;

    let mut params = SecretKeyParamsBuilder::default();
    params
        .version(KeyVersion::V4)
        .key_type(KeyType::Ed25519Legacy)
        .can_certify(true)
        .can_sign(true)
        .can_encrypt(EncryptionCaps::None)
        .primary_user_id(user_id.to_owned())
        .preferred_symmetric_algorithms(
            vec![
                SymmetricKeyAlgorithm::AES256,
                SymmetricKeyAlgorithm::AES192,
                SymmetricKeyAlgorithm::AES128,
            ]
            .into(),
        )
        .preferred_hash_algorithms(
            vec![
                HashAlgorithm::Sha512,
                HashAlgorithm::Sha384,
                HashAlgorithm::Sha256,
            ]
            .into(),
        )
        // Uncompressed only: GnuPG then writes uncompressed messages to this key, and
        // `decrypt` refuses every compressed packet.
        .preferred_compression_algorithms(vec![CompressionAlgorithm::Uncompressed].into())
        .passphrase(passphrase.map(|p| p.expose().to_owned()))
        .subkeys(vec![sub]);
    let params = params.build().map_err(|e| gen_err(e.to_string()))?;
    let secret = params
        .generate(rand::thread_rng())
        .map_err(|e| gen_err(e.to_string()))?;

    let fingerprint = fpr(&secret.fingerprint());
    let secret_armored = secret
        .to_armored_string(ArmorOptions::default())
        .map_err(|e| gen_err(format!("armoring the secret key: {e}")))?;
    let public_armored = secret
        .to_public_key()
        .to_armored_string(ArmorOptions::default())
        .map_err(|e| gen_err(format!("armoring the public key: {e}")))?;
    Ok(GeneratedKey {
        secret_armored,
        public_armored,
        fingerprint,
    })
}
