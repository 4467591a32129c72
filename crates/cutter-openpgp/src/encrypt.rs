//! Streaming encryption to one pinned recipient, framed by rpgp's streaming message
//! builder (`pgp::composed::MessageBuilder::from_reader`).
//!
//! The builder pulls the plaintext from a `Read` (the backup hands it pg_dump's stdout,
//! wrapped) and pushes the message into a `Write`. What it writes, and what GnuPG 2.2,
//! Sequoia's `sqop` and rpgp read:
//!
//! ```text
//! PKESK v3                   tag 1, the session key encrypted to the recipient
//! SEIPD v1                   tag 18, partial body lengths of `CHUNK_SIZE`
//!   0x01 (version)
//!   AES-256-CFB of:
//!     16 random octets, last two repeated
//!     Literal Data packet    tag 11, partial body lengths, 'b', no name
//!     MDC packet             0xD3 0x14 SHA-1(prefix ‖ literal packet ‖ 0xD3 0x14)
//! ```
//!
//! Memory is bounded whatever the input size: the builder holds one literal-data chunk
//! and one SEIPD chunk (`CHUNK_SIZE` each) and an 8 KiB cipher buffer. Those buffers
//! belong to rpgp and are freed, not wiped, when the message ends.

use std::{
    error::Error as StdError,
    fmt,
    io::{self, Read, Write},
    time::SystemTime,
};

use cutter_core::Fingerprint;
use pgp::{composed::MessageBuilder, crypto::sym::SymmetricKeyAlgorithm};
use rand::rngs::OsRng;

use crate::{
    error::{Error, Result},
    keys::{EncryptionKeyRef, PublicKey},
    validity,
};

/// Size of the partial-body chunks of both the literal data and the SEIPD packet
/// (256 KiB; a power of two, as partial lengths require).
pub const CHUNK_SIZE: u32 = 256 * 1024;

/// The symmetric algorithm of every message written here.
const CIPHER: SymmetricKeyAlgorithm = SymmetricKeyAlgorithm::AES256;

/// Which key packet of the recipient's certificate the session key is encrypted to.
#[derive(Clone, Copy)]
enum Target {
    Primary,
    Subkey(usize),
}

/// A recipient key that passed the pin and usability checks.
#[derive(Clone)]
pub struct Recipient {
    key: PublicKey,
    target: Target,
    encryption_fingerprint: Fingerprint,
}

impl Recipient {
    /// Accepts `key` as recipient only if its primary fingerprint equals `pin` and it can
    /// encrypt now (not expired, not revoked, has a valid encryption-capable key).
    pub fn pinned(key: PublicKey, pin: &Fingerprint) -> Result<Self> {
        Self::pinned_at(key, pin, SystemTime::now())
    }

    /// [`pinned`](Self::pinned), judging expiry and revocation at `now`.
    pub fn pinned_at(key: PublicKey, pin: &Fingerprint, now: SystemTime) -> Result<Self> {
        let actual = key.fingerprint();
        if &actual != pin {
            return Err(Error::PinMismatch {
                pinned: pin.clone(),
                actual,
            });
        }
        let (target, encryption_fingerprint) = {
            let (r, fp) = key.select_encryption_key(validity::secs(now))?;
            let target = match r {
                EncryptionKeyRef::Primary => Target::Primary,
                EncryptionKeyRef::Subkey(sk) => Target::Subkey(
                    key.inner()
                        .public_subkeys
                        .iter()
                        .position(|s| std::ptr::eq(&s.key, sk))
                        .expect("selected subkey belongs to the key"),
                ),
            };
            (target, fp)
        };
        Ok(Self {
            key,
            target,
            encryption_fingerprint,
        })
    }

    /// The recipient's primary fingerprint (the pin).
    pub fn fingerprint(&self) -> Fingerprint {
        self.key.fingerprint()
    }

    /// The fingerprint of the (sub)key the session key is encrypted to.
    pub fn encryption_key_fingerprint(&self) -> Fingerprint {
        self.encryption_fingerprint.clone()
    }
}

impl fmt::Debug for Recipient {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Recipient")
            .field("fingerprint", &self.key.fingerprint())
            .field("encryption_key", &self.encryption_fingerprint)
            .finish()
    }
}

/// Marks I/O errors of the caller's reader.
#[derive(Debug)]
struct FromInput(io::Error);
/// Marks I/O errors of the caller's writer.
#[derive(Debug)]
struct FromOutput(io::Error);

impl fmt::Display for FromInput {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.fmt(f)
    }
}
impl fmt::Display for FromOutput {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.fmt(f)
    }
}
impl StdError for FromInput {
    fn source(&self) -> Option<&(dyn StdError + 'static)> {
        Some(&self.0)
    }
}
impl StdError for FromOutput {
    fn source(&self) -> Option<&(dyn StdError + 'static)> {
        Some(&self.0)
    }
}

/// Wraps an I/O error so that it can be told apart after rpgp has passed it on; an
/// interruption stays as it is (rpgp retries nothing, but `Read` callers may).
fn marked(
    e: io::Error,
    wrap: impl FnOnce(io::Error) -> Box<dyn StdError + Send + Sync>,
) -> io::Error {
    if e.kind() == io::ErrorKind::Interrupted {
        return e;
    }
    io::Error::new(e.kind(), wrap(e))
}

/// The caller's reader: counts the plaintext octets and marks its errors.
struct Input<R> {
    inner: R,
    count: u64,
}

impl<R: Read> Read for Input<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        loop {
            match self.inner.read(buf) {
                Ok(n) => {
                    self.count += n as u64;
                    return Ok(n);
                }
                // rpgp gives up on any error; a signal is not one.
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => return Err(marked(e, |e| Box::new(FromInput(e)))),
            }
        }
    }
}

/// The caller's writer, with its errors marked.
struct Output<W> {
    inner: W,
}

impl<W: Write> Write for Output<W> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.inner
            .write(buf)
            .map_err(|e| marked(e, |e| Box::new(FromOutput(e))))
    }
    fn write_all(&mut self, buf: &[u8]) -> io::Result<()> {
        self.inner
            .write_all(buf)
            .map_err(|e| marked(e, |e| Box::new(FromOutput(e))))
    }
    fn flush(&mut self) -> io::Result<()> {
        self.inner
            .flush()
            .map_err(|e| marked(e, |e| Box::new(FromOutput(e))))
    }
}

enum Marker {
    Input(io::Error),
    Output(io::Error),
}

/// Takes our marker, with the caller's original error, out of what rpgp returned: rpgp
/// passes an I/O error of the source or the sink on as its `IO` variant. Anything else
/// (or a marker found deeper in the chain, copied then) is rpgp's own failure.
fn take_marker(e: pgp::errors::Error) -> std::result::Result<Marker, pgp::errors::Error> {
    let e = match e {
        pgp::errors::Error::IO { source, backtrace } => {
            if source.get_ref().is_some_and(|i| i.is::<FromInput>()) {
                let inner = source.into_inner().expect("checked above");
                let m = inner.downcast::<FromInput>().expect("checked above");
                return Ok(Marker::Input(m.0));
            }
            if source.get_ref().is_some_and(|i| i.is::<FromOutput>()) {
                let inner = source.into_inner().expect("checked above");
                let m = inner.downcast::<FromOutput>().expect("checked above");
                return Ok(Marker::Output(m.0));
            }
            pgp::errors::Error::IO { source, backtrace }
        }
        other => other,
    };
    let mut cur: Option<&(dyn StdError + 'static)> = Some(&e);
    while let Some(x) = cur {
        if let Some(m) = x.downcast_ref::<FromInput>() {
            return Ok(Marker::Input(io::Error::new(m.0.kind(), m.0.to_string())));
        }
        if let Some(m) = x.downcast_ref::<FromOutput>() {
            return Ok(Marker::Output(io::Error::new(m.0.kind(), m.0.to_string())));
        }
        match x.downcast_ref::<io::Error>().and_then(|io| io.get_ref()) {
            Some(inner) => cur = Some(inner as &(dyn StdError + 'static)),
            None => cur = x.source(),
        }
    }
    Err(e)
}

/// Encrypts everything `input` yields, until its end, to one [`Recipient`], streaming a
/// binary OpenPGP message (PKESK v3 + SEIPDv1 with MDC, AES-256, uncompressed literal
/// data with partial body lengths) into `output`; see the module docs. Returns the
/// number of plaintext octets read. Memory use is bounded whatever the amount of data.
///
/// The message is complete only when this returns `Ok`: on any error (the input failed:
/// [`Error::EncryptInput`]; the output failed: [`Error::EncryptOutput`]) whatever was
/// written to `output` is an incomplete message that no OpenPGP implementation will
/// decrypt; discard it. `output` is flushed at the end.
pub fn encrypt<R: Read, W: Write>(recipient: &Recipient, input: R, output: W) -> Result<u64> {
    let mut input = Input {
        inner: input,
        count: 0,
    };
    let mut output = Output { inner: output };
    let res = {
        let mut builder = MessageBuilder::from_reader("", &mut input).seipd_v1(OsRng, CIPHER);
        let added = match recipient.target {
            Target::Primary => builder.encrypt_to_key(OsRng, &recipient.key.inner().primary_key),
            Target::Subkey(i) => {
                builder.encrypt_to_key(OsRng, &recipient.key.inner().public_subkeys[i].key)
            }
        };
        if let Err(e) = added {
            return Err(Error::Encrypt {
                fingerprint: recipient.encryption_fingerprint.clone(),
                detail: e.to_string(),
            });
        }
        builder
            .partial_chunk_size(CHUNK_SIZE)
            .expect("CHUNK_SIZE is a power of two above 512");
        builder.to_writer(OsRng, &mut output)
    };
    let res = res.map_err(|e| match take_marker(e) {
        Ok(Marker::Input(source)) => Error::EncryptInput { source },
        Ok(Marker::Output(source)) => Error::EncryptOutput { source },
        Err(e) => Error::Encrypt {
            fingerprint: recipient.encryption_fingerprint.clone(),
            detail: e.to_string(),
        },
    });
    res?;
    output
        .inner
        .flush()
        .map_err(|source| Error::EncryptOutput { source })?;
    Ok(input.count)
}
