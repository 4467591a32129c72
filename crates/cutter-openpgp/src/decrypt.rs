//! Streaming decryption with rpgp's message reader in SEIPDv1 streaming mode.

use std::{
    error::Error as StdError,
    fmt,
    io::{self, BufRead, BufReader, Read, Write},
    sync::{
        atomic::{AtomicBool, Ordering},
        Arc,
    },
};

use pgp::{
    composed::{DecryptionOptions, Edata, Esk, Message, PlainSessionKey, TheRing},
    crypto::sym::SymmetricKeyAlgorithm,
    packet::{ProtectedDataConfig, PublicKeyEncryptedSessionKey, SymEncryptedProtectedDataConfig},
    types::{
        CompressionAlgorithm, DecryptionKey, EskType, KeyDetails, SecretParams, Seipdv1ReadMode,
    },
};

use crate::{
    error::{Error, Result},
    keys::{fpr, key_id},
    Passphrase, SecretKey,
};

/// Read buffer for the encrypted input.
const INPUT_BUFFER: usize = 256 * 1024;

/// Marks I/O errors of the caller's reader, to tell them apart from malformed data.
#[derive(Debug)]
struct InputError(io::Error);

impl fmt::Display for InputError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.fmt(f)
    }
}
impl StdError for InputError {}

/// The caller's reader, buffered, with its errors marked and its end noted.
struct Input<R> {
    inner: BufReader<R>,
    /// Set once the reader has reported its end (no more octets) to rpgp.
    ended: Arc<AtomicBool>,
}

impl<R: Read> Read for Input<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf).map_err(mark)?;
        if n == 0 && !buf.is_empty() {
            self.ended.store(true, Ordering::Relaxed);
        }
        Ok(n)
    }
}
impl<R: Read> BufRead for Input<R> {
    fn fill_buf(&mut self) -> io::Result<&[u8]> {
        let buf = self.inner.fill_buf().map_err(mark)?;
        if buf.is_empty() {
            self.ended.store(true, Ordering::Relaxed);
        }
        Ok(buf)
    }
    fn consume(&mut self, amt: usize) {
        self.inner.consume(amt)
    }
}
impl<R> fmt::Debug for Input<R> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Input")
    }
}

fn mark(e: io::Error) -> io::Error {
    if e.kind() == io::ErrorKind::Interrupted {
        return e;
    }
    io::Error::new(e.kind(), InputError(e))
}

/// What an error found while reading the message means.
enum Kind {
    Input,
    Mdc,
    Truncated,
    Other,
}

/// Walks the error chain (through `io::Error` payloads and `source()`s) and matches rpgp's
/// error variants and I/O error kinds, never their text.
///
/// `input_ended`: the caller's reader had reported its end before the error. rpgp reports a
/// packet body that ends before the length its header gives as a bare `io::Error` of kind
/// `Other` (a message and nothing else, no variant to match): that error, raised after the
/// input ended, is a truncation. An error of kind `Other` that carries one of rpgp's own
/// errors (e.g. trailing bytes after the message) is not.
fn kind_of(top: &(dyn StdError + 'static), input_ended: bool) -> Kind {
    let mut cur: Option<&(dyn StdError + 'static)> = Some(top);
    let mut truncated = false;
    // The deepest error so far is an `io::Error` of kind `Other` with nothing of rpgp's below.
    let mut bare_io = false;
    while let Some(e) = cur {
        if e.downcast_ref::<InputError>().is_some() {
            return Kind::Input;
        }
        if let Some(pe) = e.downcast_ref::<pgp::errors::Error>() {
            bare_io = false;
            match pe {
                pgp::errors::Error::MdcError => return Kind::Mdc,
                pgp::errors::Error::PacketIncomplete { .. } => truncated = true,
                _ => {}
            }
        }
        if let Some(io) = e.downcast_ref::<io::Error>() {
            // E.g. the input ends inside the quick check or before the next packet.
            if io.kind() == io::ErrorKind::UnexpectedEof {
                truncated = true;
            }
            bare_io = io.kind() == io::ErrorKind::Other;
            cur = io.get_ref().map(|i| i as &(dyn StdError + 'static));
            continue;
        }
        cur = e.source();
    }
    if truncated || (input_ended && bare_io) {
        Kind::Truncated
    } else {
        Kind::Other
    }
}

fn read_error(e: io::Error, input_ended: bool) -> Error {
    match kind_of(&e, input_ended) {
        Kind::Input => Error::DecryptInput { source: e },
        Kind::Mdc => Error::IntegrityCheckFailed {
            detail: "the MDC (SHA-1 over the plaintext) does not match".into(),
        },
        Kind::Truncated => Error::Truncated {
            detail: e.to_string(),
        },
        Kind::Other => Error::Malformed {
            detail: e.to_string(),
        },
    }
}

fn pgp_error(
    e: pgp::errors::Error,
    input_ended: bool,
    outside: impl FnOnce(String) -> Error,
) -> Error {
    match kind_of(&e, input_ended) {
        Kind::Input => Error::DecryptInput {
            source: io::Error::other(e.to_string()),
        },
        Kind::Mdc => Error::IntegrityCheckFailed {
            detail: e.to_string(),
        },
        Kind::Truncated => Error::Truncated {
            detail: e.to_string(),
        },
        Kind::Other => outside(e.to_string()),
    }
}

fn recipient_label(p: &PublicKeyEncryptedSessionKey) -> String {
    match p {
        PublicKeyEncryptedSessionKey::V3 { id, .. } => key_id(id),
        PublicKeyEncryptedSessionKey::V6 { fingerprint, .. } => match fingerprint {
            Some(f) => hex::encode_upper(f.as_bytes()),
            None => "anonymous (v6)".into(),
        },
        PublicKeyEncryptedSessionKey::Other { version, .. } => format!("unsupported v{version}"),
    }
}

/// Decrypts one OpenPGP message (binary or armored) from `input` with `secret`, writing
/// the plaintext to `output` as it is decrypted, in bounded memory. Returns the number of
/// plaintext octets written.
///
/// Accepts exactly one shape, the one [`encrypt`](crate::encrypt) writes (and
/// `gpg --encrypt --compress-algo none` to an AES-capable key): PKESK v3 packets, one of
/// them to `secret`, and a SEIPDv1 packet (with MDC) encrypted with AES-128, AES-192 or
/// AES-256, holding one uncompressed literal data packet. Everything else is refused
/// with [`Error::Refused`] naming what was found, before any plaintext is released:
/// other ciphers (3DES, CAST5, IDEA, Blowfish, Twofish, Camellia), SEIPDv2 (AEAD),
/// legacy unprotected (SED) data, GnuPG's OCB packet, any compressed packet, signed or
/// nested messages.
///
/// **Plaintext is released before the integrity check.** The MDC covers the whole
/// message and can only be checked at its end, so when this function returns an error
/// (modified ciphertext: [`Error::IntegrityCheckFailed`]; cut-off input:
/// [`Error::Truncated`]; [`Error::Malformed`]; …), whatever was already written to
/// `output` is untrusted and must be discarded. Only `Ok` means the output is complete
/// and authentic (as far as the MDC goes: the MDC is not a signature).
pub fn decrypt<R, W>(
    secret: &SecretKey,
    passphrase: &Passphrase,
    input: R,
    mut output: W,
) -> Result<u64>
where
    R: Read + Send,
    W: Write,
{
    let ended = Arc::new(AtomicBool::new(false));
    let input_ended = || ended.load(Ordering::Relaxed);
    let input = Input {
        inner: BufReader::with_capacity(INPUT_BUFFER, input),
        ended: Arc::clone(&ended),
    };
    let (msg, _headers) = Message::from_reader(input)
        .map_err(|e| pgp_error(e, input_ended(), |detail| Error::NotAMessage { detail }))?;

    let esks = match &msg {
        Message::Encrypted { esk, .. } => esk,
        Message::Literal { .. } => {
            return Err(Error::NotEncrypted {
                detail: "found plain literal data".into(),
            })
        }
        Message::Compressed { .. } => {
            return Err(Error::NotEncrypted {
                detail: "found compressed, unencrypted data".into(),
            })
        }
        Message::Signed { .. } => {
            return Err(Error::NotEncrypted {
                detail: "found a signed, unencrypted message".into(),
            })
        }
    };
    let pkesks: Vec<&PublicKeyEncryptedSessionKey> = esks
        .iter()
        .filter_map(|e| match e {
            Esk::PublicKeyEncryptedSessionKey(p) => Some(p),
            Esk::SymKeyEncryptedSessionKey(_) => None,
        })
        .collect();
    if pkesks.is_empty() {
        return Err(Error::NotEncrypted {
            detail: if esks.is_empty() {
                "the encrypted data has no session key packet".into()
            } else {
                "the message is encrypted with a password, not to a key".into()
            },
        });
    }
    // The container, before any key is used.
    if let Message::Encrypted { edata, .. } = &msg {
        check_container(edata)?;
    }

    let session_key = find_session_key(secret, passphrase, &pkesks)?;
    // The cipher the session key is for, before any data is decrypted.
    match &session_key {
        PlainSessionKey::V3_4 { sym_alg, .. } => check_cipher(*sym_alg)?,
        PlainSessionKey::V5 { .. } | PlainSessionKey::V6 { .. } => {
            return Err(Error::Refused {
                what: "a v5/v6 session key (SEIPDv2 or GnuPG AEAD)".into(),
            })
        }
    }

    let ring = TheRing {
        session_keys: vec![session_key],
        decrypt_options: DecryptionOptions::new().set_seipdv1_read_mode(Seipdv1ReadMode::Streaming),
        ..Default::default()
    };
    let (mut msg, _) = msg
        .decrypt_the_ring(ring, true)
        .map_err(|e| pgp_error(e, input_ended(), |detail| Error::Malformed { detail }))?;
    // Inside: one literal data packet, nothing else.
    match &mut msg {
        Message::Literal { .. } => {}
        Message::Compressed { reader, .. } => {
            // The packet's first body octet names the algorithm; nothing is decompressed.
            let alg = reader.fill_buf().ok().and_then(|b| b.first().copied());
            return Err(Error::Refused {
                what: match alg {
                    Some(a) => format!(
                        "a compressed packet ({})",
                        compression_name(CompressionAlgorithm::from(a))
                    ),
                    None => "a compressed packet".into(),
                },
            });
        }
        Message::Signed { .. } => return Err(Error::Refused {
            what:
                "a signed message inside the encryption (cutter's artifacts hold literal data only)"
                    .into(),
        }),
        Message::Encrypted { .. } => {
            return Err(Error::Refused {
                what: "a nested encrypted message".into(),
            })
        }
    }

    let mut total = 0u64;
    loop {
        let chunk = msg.fill_buf().map_err(|e| read_error(e, input_ended()))?;
        if chunk.is_empty() {
            break;
        }
        output
            .write_all(chunk)
            .map_err(|source| Error::DecryptOutput { source })?;
        let n = chunk.len();
        msg.consume(n);
        total += n as u64;
    }
    output
        .flush()
        .map_err(|source| Error::DecryptOutput { source })?;
    Ok(total)
}

/// The name of a symmetric algorithm as operators know it.
fn cipher_name(alg: SymmetricKeyAlgorithm) -> String {
    match alg {
        SymmetricKeyAlgorithm::Plaintext => "no cipher (plaintext)".into(),
        SymmetricKeyAlgorithm::IDEA => "IDEA".into(),
        SymmetricKeyAlgorithm::TripleDES => "3DES (TripleDES)".into(),
        SymmetricKeyAlgorithm::CAST5 => "CAST5".into(),
        SymmetricKeyAlgorithm::Blowfish => "Blowfish".into(),
        SymmetricKeyAlgorithm::AES128 => "AES-128".into(),
        SymmetricKeyAlgorithm::AES192 => "AES-192".into(),
        SymmetricKeyAlgorithm::AES256 => "AES-256".into(),
        SymmetricKeyAlgorithm::Twofish => "Twofish".into(),
        SymmetricKeyAlgorithm::Camellia128 => "Camellia-128".into(),
        SymmetricKeyAlgorithm::Camellia192 => "Camellia-192".into(),
        SymmetricKeyAlgorithm::Camellia256 => "Camellia-256".into(),
        SymmetricKeyAlgorithm::Private10 => "a private cipher (110)".into(),
        other => format!("an unknown cipher ({})", u8::from(other)),
    }
}

fn compression_name(alg: CompressionAlgorithm) -> String {
    match alg {
        CompressionAlgorithm::Uncompressed => "algorithm 0, uncompressed".into(),
        CompressionAlgorithm::ZIP => "ZIP".into(),
        CompressionAlgorithm::ZLIB => "ZLIB".into(),
        CompressionAlgorithm::BZip2 => "BZip2".into(),
        other => format!("algorithm {}", u8::from(other)),
    }
}

/// Only AES-128/192/256.
fn check_cipher(alg: SymmetricKeyAlgorithm) -> Result<()> {
    match alg {
        SymmetricKeyAlgorithm::AES128
        | SymmetricKeyAlgorithm::AES192
        | SymmetricKeyAlgorithm::AES256 => Ok(()),
        other => Err(Error::Refused {
            what: format!("the cipher {}", cipher_name(other)),
        }),
    }
}

/// Only SEIPDv1 (with MDC).
fn check_container(edata: &Edata<'_>) -> Result<()> {
    match edata {
        Edata::SymEncryptedProtectedData { reader } => match reader.config() {
            ProtectedDataConfig::Seipd(SymEncryptedProtectedDataConfig::V1) => Ok(()),
            ProtectedDataConfig::Seipd(SymEncryptedProtectedDataConfig::V2 {
                sym_alg,
                aead,
                ..
            }) => Err(Error::Refused {
                what: format!(
                    "a SEIPDv2 packet (AEAD {aead:?} with {})",
                    cipher_name(*sym_alg)
                ),
            }),
            ProtectedDataConfig::GnupgAead(_) => Err(Error::Refused {
                what: "GnuPG's OCB encrypted data packet (tag 20)".into(),
            }),
        },
        Edata::SymEncryptedData { .. } => Err(Error::Refused {
            what: "a legacy Symmetrically Encrypted Data packet (tag 9, no integrity protection)"
                .into(),
        }),
        Edata::GnupgAeadData { .. } => Err(Error::Refused {
            what: "GnuPG's OCB encrypted data packet (tag 20)".into(),
        }),
    }
}

/// Decrypts the session key from the first PKESK addressed to a component of `secret`.
fn find_session_key(
    secret: &SecretKey,
    passphrase: &Passphrase,
    pkesks: &[&PublicKeyEncryptedSessionKey],
) -> Result<PlainSessionKey> {
    let ssk = secret.inner();
    let fingerprint = secret.fingerprint();
    let pw = passphrase.to_pgp();

    // (key, is the secret material passphrase-protected, label)
    let mut components: Vec<(&dyn DecryptionKey, bool, String)> = vec![(
        &ssk.primary_key,
        matches!(ssk.primary_key.secret_params(), SecretParams::Encrypted(_)),
        "primary key".into(),
    )];
    for sub in &ssk.secret_subkeys {
        components.push((
            &sub.key,
            matches!(sub.key.secret_params(), SecretParams::Encrypted(_)),
            format!("subkey {}", fpr(&sub.key.fingerprint())),
        ));
    }

    let mut matched = false;
    let mut last_failure = None;
    for pkesk in pkesks {
        // SEIPDv1 messages only carry v3 PKESKs (rpgp drops others), addressed by key id.
        let PublicKeyEncryptedSessionKey::V3 { id, values, .. } = pkesk else {
            continue;
        };
        for (key, locked, label) in &components {
            if !id.is_wildcard() && *id != key.legacy_key_id() {
                continue;
            }
            matched = true;
            match key.decrypt(&pw, values, EskType::V3_4) {
                Ok(Ok(sk)) => return Ok(sk),
                Ok(Err(e)) => last_failure = Some(e.to_string()),
                Err(e) if *locked => {
                    // Unlocking failed. With a wildcard recipient this may just be the
                    // wrong component; keep looking, but remember.
                    if id.is_wildcard() {
                        last_failure = Some(format!("unlocking the {label}: {e}"));
                        continue;
                    }
                    return Err(Error::WrongPassphrase {
                        fingerprint,
                        component: label.clone(),
                    });
                }
                Err(e) => last_failure = Some(e.to_string()),
            }
        }
    }
    if !matched {
        let mut key_ids = vec![key_id(&ssk.primary_key.legacy_key_id())];
        key_ids.extend(
            ssk.secret_subkeys
                .iter()
                .map(|s| key_id(&s.key.legacy_key_id())),
        );
        return Err(Error::WrongKey {
            recipients: pkesks.iter().map(|p| recipient_label(p)).collect(),
            fingerprint,
            key_ids,
        });
    }
    Err(Error::SessionKey {
        fingerprint,
        detail: last_failure.unwrap_or_else(|| "no usable PKESK packet".into()),
    })
}
