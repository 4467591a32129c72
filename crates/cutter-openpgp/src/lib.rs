//! OpenPGP for cutter: pinned recipient keys, streaming encryption and decryption,
//! detached signatures and key generation, interoperable with GnuPG both ways.
//!
//! ```
//! use cutter_openpgp::{generate_key, sign_detached, verify_detached, Passphrase, PublicKey, SecretKey};
//!
//! let g = generate_key("alice <alice@example.invalid>", None)?;
//! let secret = SecretKey::from_bytes(g.secret_armored.as_bytes())?;
//! let signature = sign_detached(&secret, &Passphrase::new(String::new()), b"cutter-approval/2 ...")?;
//! let public = PublicKey::from_bytes(g.public_armored.as_bytes())?;
//! let signer = verify_detached(&[public], b"cutter-approval/2 ...", signature.as_bytes(), std::time::SystemTime::now())?;
//! assert_eq!(signer, secret.fingerprint());
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
//!
//! Everything produced here is readable by GnuPG 2.2: v4 keys (Ed25519 primary, Curve25519
//! ECDH encryption subkey), v3 PKESK + SEIPDv1 (with MDC) messages encrypted with AES-256,
//! v4 detached signatures.
//!
//! * [`encrypt`] streams everything a `Read` yields into a `Write` as a binary OpenPGP
//!   message, in bounded memory; [`encrypt_hashed`] also returns the message's SHA-256,
//!   hashed as it is written. rpgp writes the PKESK; the SEIPD framing is ours, so that
//!   the MDC's SHA-1, AES-CFB and the SHA-256 run interleaved (rpgp's streaming builder
//!   runs them one after the other, too slow for the backup's targets).
//! * [`decrypt`] streams an encrypted message from a `Read` into a `Write`, in bounded
//!   memory, accepting only AES-128/192/256 in SEIPDv1 with MDC around uncompressed literal
//!   data: 3DES, CAST5, IDEA and the other ciphers, SEIPDv2, and any compressed packet are
//!   refused by name.
//! * [`sign_detached`] / [`verify_detached`] handle approvals; a signature is judged at
//!   the verifier's time, and weak digests and keys are refused.
//! * [`PublicKey`] / [`SecretKey`] parse keys; [`Recipient::pinned`] only accepts a key whose
//!   primary fingerprint is the configured pin and which can encrypt now.
//!
//! Key validity (expiry, revocation, key flags) is judged from self-signatures only
//! (third-party certifications are ignored); see [`PublicKey::encryption_key_at`].

#![warn(missing_docs)]

mod decrypt;
mod encrypt;
mod error;
mod keys;
mod passphrase;
mod seal;
mod sign;
mod validity;

pub use cutter_core::Fingerprint;
pub use decrypt::decrypt;
pub use encrypt::{encrypt, encrypt_chunked, encrypt_hashed, Encrypted, Recipient, CHUNK_SIZE};
pub use error::{Error, Result};
pub use keys::{generate_key, GeneratedKey, PublicKey, SecretKey};
pub use passphrase::Passphrase;
pub use sign::{sign_detached, signature_created, verify_detached, MAX_CLOCK_SKEW_SECS};
