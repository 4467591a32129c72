//! The one error type of this crate. Each message says what failed, on which key, and
//! what to do next.

use std::io;

use cutter_core::Fingerprint;

/// `Result` with this crate's [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;

fn list<T: std::fmt::Display>(items: &[T]) -> String {
    if items.is_empty() {
        return "none".into();
    }
    items
        .iter()
        .map(ToString::to_string)
        .collect::<Vec<_>>()
        .join(", ")
}

/// Everything that can go wrong in the OpenPGP layer.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// Key data could not be parsed.
    #[error(
        "cannot read the OpenPGP {what}: {detail}; provide an ASCII-armored or binary \
         OpenPGP {what} (e.g. from `gpg --export{export_flag} <fingerprint>`)",
        export_flag = if *what == "secret key" { "-secret-keys" } else { "" }
    )]
    KeyParse {
        /// "public key" or "secret key".
        what: &'static str,
        /// What the parser said.
        detail: String,
    },

    /// The key data holds no key or several keys.
    #[error(
        "expected exactly one OpenPGP {what} in the key data, found {count}{listed}; \
         export only the intended key (`gpg --export <fingerprint>`)",
        listed = if fingerprints.is_empty() { String::new() } else { format!(" ({})", list(fingerprints)) }
    )]
    KeyCount {
        /// "public key" or "secret key".
        what: &'static str,
        /// How many primary keys were found.
        count: usize,
        /// Their fingerprints.
        fingerprints: Vec<Fingerprint>,
    },

    /// The key is of a kind this crate does not handle (e.g. a v6 key, which GnuPG 2.2
    /// cannot use).
    #[error("key {fingerprint} is not supported: {reason}; use a v4 key (e.g. ed25519/cv25519 or RSA made by GnuPG 2.2)")]
    UnsupportedKey {
        /// The key's primary fingerprint.
        fingerprint: Fingerprint,
        /// Why.
        reason: String,
    },

    /// The recipient key's primary fingerprint is not the pinned one.
    #[error(
        "recipient key {actual} does not match the pinned fingerprint {pinned}; refusing to \
         encrypt to it. Check which key file is configured; change the pin only if the key \
         change is intended and verified"
    )]
    PinMismatch {
        /// The configured pin.
        pinned: Fingerprint,
        /// The primary fingerprint of the key that was supplied.
        actual: Fingerprint,
    },

    /// The key cannot be used to encrypt (expired, revoked, no encryption-capable key).
    #[error("key {fingerprint} cannot be used for encryption: {reason}; {hint}")]
    NotEncryptionCapable {
        /// The key's primary fingerprint.
        fingerprint: Fingerprint,
        /// Why.
        reason: String,
        /// What to do about it.
        hint: &'static str,
    },

    /// Building the encrypted session key for the recipient failed.
    #[error("encrypting the session key to key {fingerprint} failed: {detail}")]
    Encrypt {
        /// The recipient's encryption (sub)key fingerprint.
        fingerprint: Fingerprint,
        /// What rpgp said.
        detail: String,
    },

    /// Reading the plaintext to encrypt failed.
    #[error("reading the data to encrypt failed: {source}; the encrypted artifact is incomplete and must be discarded")]
    EncryptInput {
        /// The underlying I/O error, as the input returned it.
        #[source]
        source: io::Error,
    },

    /// Writing the encrypted output failed.
    #[error("writing the encrypted output failed: {source}; the encrypted artifact is incomplete and must be discarded")]
    EncryptOutput {
        /// The underlying I/O error.
        #[source]
        source: io::Error,
    },

    /// The input of [`decrypt`](crate::decrypt) is not an OpenPGP message.
    #[error("the input is not an OpenPGP message: {detail}; expected a binary or armored OpenPGP encrypted message")]
    NotAMessage {
        /// What the parser said.
        detail: String,
    },

    /// The message is valid OpenPGP but not encrypted to a public key.
    #[error("the OpenPGP message is not public-key encrypted ({detail}); nothing to decrypt with a secret key")]
    NotEncrypted {
        /// What was found instead.
        detail: String,
    },

    /// The message was encrypted to other keys than the secret key given.
    #[error(
        "the message is encrypted to key id(s) {}, but the secret key given is {fingerprint} \
         (key ids {}); use the secret key of one of the recipients",
        list(recipients),
        list(key_ids)
    )]
    WrongKey {
        /// Key ids named in the message's PKESK packets (`0000000000000000` is an anonymous
        /// recipient).
        recipients: Vec<String>,
        /// The primary fingerprint of the secret key given.
        fingerprint: Fingerprint,
        /// The key ids of that key's primary key and subkeys.
        key_ids: Vec<String>,
    },

    /// The passphrase does not unlock the secret key.
    #[error("wrong passphrase for secret key {fingerprint} (it does not unlock the {component}); supply the passphrase of this key")]
    WrongPassphrase {
        /// The primary fingerprint of the secret key.
        fingerprint: Fingerprint,
        /// Which part of the key: `primary key` or `subkey <fingerprint>`.
        component: String,
    },

    /// The session key could not be recovered although the key matched.
    #[error("decrypting the session key with secret key {fingerprint} failed: {detail}; the key may not belong to this message or the message is damaged")]
    SessionKey {
        /// The primary fingerprint of the secret key.
        fingerprint: Fingerprint,
        /// What rpgp said.
        detail: String,
    },

    /// The message is not of the one accepted shape (AES-128/192/256, SEIPDv1 with MDC,
    /// uncompressed literal data); nothing was decrypted.
    #[error(
        "the encrypted message uses {what}, which cutter refuses: only AES-128, AES-192 or \
         AES-256 in a SEIPDv1 packet with MDC, holding uncompressed literal data, is accepted \
         (e.g. `gpg --encrypt --cipher-algo AES256 --compress-algo none`); nothing was decrypted"
    )]
    Refused {
        /// What was found (the algorithm or packet, by name).
        what: String,
    },

    /// The ciphertext was modified: the SEIPD integrity check (MDC) failed.
    #[error(
        "integrity check failed: the encrypted data was modified or corrupted ({detail}); \
         any output already written is untrusted and must be discarded"
    )]
    IntegrityCheckFailed {
        /// What was detected.
        detail: String,
    },

    /// The message ends before its end.
    #[error(
        "the encrypted message is truncated ({detail}); the artifact is incomplete: any \
         output already written is untrusted and must be discarded"
    )]
    Truncated {
        /// What was detected.
        detail: String,
    },

    /// The message is damaged in some other way.
    #[error(
        "the encrypted message is malformed ({detail}); any output already written is \
         untrusted and must be discarded"
    )]
    Malformed {
        /// What was detected.
        detail: String,
    },

    /// Reading the encrypted input failed.
    #[error("reading the encrypted input failed: {source}; any output already written is untrusted and must be discarded")]
    DecryptInput {
        /// The underlying I/O error.
        #[source]
        source: io::Error,
    },

    /// Writing the decrypted output failed.
    #[error("writing the decrypted output failed: {source}; the output is incomplete")]
    DecryptOutput {
        /// The underlying I/O error.
        #[source]
        source: io::Error,
    },

    /// The secret key has no usable signing (sub)key.
    #[error("secret key {fingerprint} cannot sign: {reason}; use a key with a valid signing-capable primary key or subkey")]
    NoSigningKey {
        /// The key's primary fingerprint.
        fingerprint: Fingerprint,
        /// Why.
        reason: String,
    },

    /// Making a signature failed.
    #[error("signing with key {fingerprint} failed: {detail}")]
    Sign {
        /// The signing (sub)key's fingerprint.
        fingerprint: Fingerprint,
        /// What rpgp said.
        detail: String,
    },

    /// The signature data is not a (well-formed) OpenPGP signature.
    #[error("the signature is not a well-formed OpenPGP detached signature: {detail}; expected one armored (-----BEGIN PGP SIGNATURE-----) or binary signature, as made by `gpg --detach-sign`")]
    MalformedSignature {
        /// What the parser said.
        detail: String,
    },

    /// The signature data holds no signature or several.
    #[error("expected exactly one signature, found {count}; supply a detached signature made by a single key")]
    SignatureCount {
        /// How many were found.
        count: usize,
    },

    /// The signature was made by a key that is not among the trusted keys.
    #[error(
        "signature was made by unknown key {issuer}, which is none of the {} trusted key(s) \
         [{}]; add the signer's public key to the trusted keys if it should be accepted",
        trusted.len(), list(trusted)
    )]
    UnknownSigner {
        /// Issuer fingerprint(s) / key id(s) found in the signature.
        issuer: String,
        /// Primary fingerprints of the keys that were tried.
        trusted: Vec<Fingerprint>,
    },

    /// The signature does not verify against the data.
    #[error("BAD signature by key {fingerprint}: {detail}; the data was changed after signing, or the signature belongs to other data")]
    BadSignature {
        /// The primary fingerprint of the (known) signer.
        fingerprint: Fingerprint,
        /// What failed.
        detail: String,
    },

    /// The signing key is not valid for signing at the time of verification or was not
    /// when the signature was made, or the signature is expired or dated in the future.
    #[error("signature by key {fingerprint} is not acceptable: {reason}")]
    SignerNotValid {
        /// The primary fingerprint of the signer.
        fingerprint: Fingerprint,
        /// Why.
        reason: String,
    },

    /// The signature, or the key that made it, uses an algorithm that is refused
    /// (MD5, SHA-1 or RIPEMD-160 digests; RSA below 2048 bits, DSA or ElGamal keys).
    #[error("signature by key {fingerprint} is refused: {rule}; {hint}")]
    WeakAlgorithm {
        /// The primary fingerprint of the signer.
        fingerprint: Fingerprint,
        /// What is weak, and the rule it breaks.
        rule: String,
        /// What to do about it.
        hint: &'static str,
    },

    /// Key generation failed.
    #[error("generating an OpenPGP key failed: {detail}")]
    KeyGeneration {
        /// What rpgp said.
        detail: String,
    },
}
