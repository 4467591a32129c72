//! OpenPGP for cutter: pinned recipient keys, streaming encryption and decryption,
//! detached signatures and key generation, interoperable with GnuPG both ways.
//!
//! Everything produced here is readable by GnuPG 2.2: v4 keys (Ed25519 primary, Curve25519
//! ECDH encryption subkey), v3 PKESK + SEIPDv1 (with MDC) messages encrypted with AES-256,
//! v4 detached signatures.
//!
//! * [`EncryptingWriter`] encrypts whatever is written to it straight into a `Write` sink,
//!   in bounded memory (two 256 KiB buffers), as a binary OpenPGP message.
//! * [`decrypt`] streams an encrypted message from a `Read` into a `Write`, in bounded memory.
//! * [`sign_detached`] / [`verify_detached`] handle approvals; a signature is judged at
//!   the verifier's time, and weak digests and keys are refused.
//! * [`PublicKey`] / [`SecretKey`] parse keys; [`Recipient::pinned`] only accepts a key whose
//!   primary fingerprint is the configured pin and which can encrypt now.
//!
//! Key validity (expiry, revocation, key flags) is judged from self-signatures only
//! (third-party certifications are ignored); see [`PublicKey::encryption_key_at`].

mod decrypt;
mod encrypt;
mod error;
mod keys;
mod passphrase;
mod sign;
mod validity;

pub use cutter_core::Fingerprint;
pub use decrypt::decrypt;
pub use encrypt::{EncryptingWriter, Recipient};
pub use error::{Error, Result};
pub use keys::{generate_key, GeneratedKey, PublicKey, SecretKey};
pub use passphrase::Passphrase;
pub use sign::{sign_detached, verify_detached, MAX_CLOCK_SKEW_SECS};
