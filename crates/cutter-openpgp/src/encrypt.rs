//! Streaming encryption to one pinned recipient.
//!
//! rpgp 0.21's `MessageBuilder` is pull-based (it reads from a `Read` source), while the
//! backup pushes pg_dump's output into a `Write` sink. So the packet framing is done
//! here, on top of rpgp for the PKESK, `aes` + `cfb-mode` for the cipher and `sha1` for
//! the MDC (RFC 4880 §5.13 / RFC 9580 §5.13.1). The output is exactly what GnuPG 2.2
//! and rpgp expect:
//!
//! ```text
//! PKESK v3 (rpgp)            tag 1
//! SEIPD v1                   tag 18, partial body lengths
//!   0x01 (version)
//!   AES-256-CFB(IV = 0, no resync) of:
//!     16 random octets, last two repeated
//!     Literal Data packet    tag 11, partial body lengths, 'b', no name, date 0
//!     MDC packet             0xD3 0x14 SHA-1(prefix ‖ literal packet ‖ 0xD3 0x14)
//! ```
//!
//! Memory is bounded by two `CHUNK_SIZE` buffers whatever the input size: one for
//! plaintext awaiting its literal-packet framing, one for ciphertext awaiting its SEIPD
//! framing. A full chunk is emitted as a partial body only once more data arrives, so
//! the last chunk of each packet is never empty.

use std::{fmt, io, io::Write, time::SystemTime};

use aes::Aes256;
use cfb_mode::{cipher::KeyIvInit, BufEncryptor};
use cutter_core::Fingerprint;
use pgp::{
    composed::RawSessionKey,
    crypto::sym::SymmetricKeyAlgorithm,
    packet::{PacketTrait, PublicKeyEncryptedSessionKey},
};
use rand::{rngs::OsRng, RngCore};
use sha1::{Digest, Sha1};
use zeroize::{Zeroize, Zeroizing};

use crate::{
    error::{Error, Result},
    keys::{EncryptionKeyRef, PublicKey},
    validity,
};

/// log2 of the partial body chunk size.
const CHUNK_LOG2: u8 = 18;
/// Size of the partial-body chunks, and of each of the writer's two buffers (256 KiB).
pub(crate) const CHUNK_SIZE: usize = 1 << CHUNK_LOG2;
/// Partial body length octet for a chunk of `CHUNK_SIZE` (RFC 4880 §4.2.2.4).
const PARTIAL: u8 = 0xE0 | CHUNK_LOG2;
/// Room before the ciphertext buffer's data for the longest length header (5 octets).
const HEADROOM: usize = 5;
/// New-format packet tags (0xC0 | tag).
const TAG_SEIPD: u8 = 0xC0 | 18;
const TAG_LITERAL: u8 = 0xC0 | 11;
const MDC_HEADER: [u8; 2] = [0xD3, 0x14];
/// Slice size for interleaving SHA-1 (MDC) and AES-CFB work.
const INTERLEAVE: usize = 128;

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

    fn pkesk(&self, session_key: &RawSessionKey) -> Result<PublicKeyEncryptedSessionKey> {
        let alg = SymmetricKeyAlgorithm::AES256;
        let res = match self.target {
            Target::Primary => PublicKeyEncryptedSessionKey::from_session_key_v3(
                OsRng,
                session_key,
                alg,
                &self.key.inner().primary_key,
            ),
            Target::Subkey(i) => PublicKeyEncryptedSessionKey::from_session_key_v3(
                OsRng,
                session_key,
                alg,
                &self.key.inner().public_subkeys[i].key,
            ),
        };
        res.map_err(|e| Error::Encrypt {
            fingerprint: self.encryption_fingerprint.clone(),
            detail: e.to_string(),
        })
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

/// New-format length header for a body of `len` octets (RFC 4880 §4.2.2.1–3), written
/// right-aligned into `out`; returns how many octets it took.
fn fixed_len_header(len: usize, out: &mut [u8; 5]) -> usize {
    if len < 192 {
        out[4] = len as u8;
        1
    } else if len < 8384 {
        let v = len - 192;
        out[3] = ((v >> 8) as u8) + 192;
        out[4] = (v & 0xFF) as u8;
        2
    } else {
        out[0] = 0xFF;
        out[1..].copy_from_slice(&(len as u32).to_be_bytes());
        5
    }
}

/// Appends `plain` to `buf`, hashing it into `mdc` (if any) and encrypting it.
/// `offset` counts the octets hashed and encrypted so far.
///
/// CFB encryption is a serial chain of AES calls, bound by their latency; hashing small
/// interleaved slices lets the CPU run SHA-1 in the gaps (about 1.4× the throughput of
/// hashing and encrypting whole chunks one after the other). The slices are aligned to
/// SHA-1's 64-octet blocks (and so to AES's 16-octet blocks), so that each update
/// compresses whole blocks straight from the input.
fn seal(
    cfb: &mut BufEncryptor<Aes256>,
    mut mdc: Option<&mut Sha1>,
    offset: &mut u64,
    buf: &mut Vec<u8>,
    plain: &[u8],
) {
    let mut rest = plain;
    while !rest.is_empty() {
        let aligned = INTERLEAVE - (*offset % 64) as usize;
        let (piece, tail) = rest.split_at(aligned.min(rest.len()));
        if let Some(mdc) = mdc.as_deref_mut() {
            mdc.update(piece);
        }
        let start = buf.len();
        buf.extend_from_slice(piece);
        cfb.encrypt(&mut buf[start..]);
        *offset += piece.len() as u64;
        rest = tail;
    }
}

/// The SEIPD layer: hashes plaintext for the MDC, encrypts it, frames the ciphertext.
struct Seipd {
    cfb: BufEncryptor<Aes256>,
    mdc: Sha1,
    /// Octets encrypted so far.
    offset: u64,
    /// `HEADROOM` octets, then SEIPD body octets not yet written (at most `CHUNK_SIZE`).
    buf: Vec<u8>,
}

impl Seipd {
    fn body_len(&self) -> usize {
        self.buf.len() - HEADROOM
    }

    /// Encrypts `plain` (hashing it into the MDC if `hash`), emitting full chunks to `out`.
    fn push(&mut self, plain: &[u8], hash: bool, out: &mut impl Write) -> io::Result<()> {
        let mut rest = plain;
        while !rest.is_empty() {
            if self.body_len() == CHUNK_SIZE {
                self.buf[HEADROOM - 1] = PARTIAL;
                out.write_all(&self.buf[HEADROOM - 1..])?;
                self.buf.truncate(HEADROOM);
            }
            let n = rest.len().min(CHUNK_SIZE - self.body_len());
            let mdc = if hash { Some(&mut self.mdc) } else { None };
            seal(
                &mut self.cfb,
                mdc,
                &mut self.offset,
                &mut self.buf,
                &rest[..n],
            );
            rest = &rest[n..];
        }
        Ok(())
    }

    /// Appends the MDC packet and writes the last chunk.
    fn finish(&mut self, out: &mut impl Write) -> io::Result<()> {
        self.push(&MDC_HEADER, true, out)?;
        let digest = self.mdc.finalize_reset();
        self.push(&digest, false, out)?;
        let mut hdr = [0u8; 5];
        let n = fixed_len_header(self.body_len(), &mut hdr);
        self.buf[HEADROOM - n..HEADROOM].copy_from_slice(&hdr[5 - n..]);
        out.write_all(&self.buf[HEADROOM - n..])?;
        self.buf.truncate(HEADROOM);
        Ok(())
    }
}

/// Encrypts everything written to it to one [`Recipient`], streaming a binary OpenPGP
/// message (PKESK v3 + SEIPDv1 with MDC, AES-256, uncompressed literal data with partial
/// body lengths) into `W`. Memory use is bounded (about 2 × `CHUNK_SIZE`) whatever
/// the amount of data.
///
/// [`finish`](Self::finish) **must** be called: it writes the last chunk and the
/// integrity check (MDC). A writer that is dropped without `finish` — or whose `finish`
/// or any write failed — leaves an incomplete artifact in `W` that no OpenPGP
/// implementation will decrypt; discard it.
///
/// Dropping an unfinished writer (other than after an error or during a panic) also logs
/// a `tracing` warning.
///
/// `flush` flushes `W` but cannot push out buffered data: chunks are only committed once
/// full, or by `finish`.
#[must_use = "call finish(): a dropped EncryptingWriter leaves an incomplete artifact"]
pub struct EncryptingWriter<W: Write> {
    sink: Option<W>,
    /// Literal packet body octets not yet framed (at most `CHUNK_SIZE`): plaintext.
    lit: Vec<u8>,
    seipd: Seipd,
    /// An earlier write to the sink failed; the output is broken.
    failed: bool,
    plaintext_len: u64,
    recipient: Fingerprint,
}

impl<W: Write> EncryptingWriter<W> {
    /// Starts a message to `recipient`: writes the PKESK packet and the start of the
    /// SEIPD packet to `sink` right away.
    pub fn new(recipient: &Recipient, mut sink: W) -> Result<Self> {
        let mut key = Zeroizing::new([0u8; 32]);
        OsRng.fill_bytes(&mut key[..]);
        let session_key = RawSessionKey::from(&key[..]);
        let pkesk = recipient.pkesk(&session_key)?;
        drop(session_key);

        let out_err = |source: io::Error| Error::EncryptOutput { source };
        let mut head = Vec::with_capacity(256);
        pkesk
            .to_writer_with_header(&mut head)
            .map_err(|e| Error::Encrypt {
                fingerprint: recipient.encryption_fingerprint.clone(),
                detail: format!("serializing the PKESK packet: {e}"),
            })?;
        head.push(TAG_SEIPD);
        sink.write_all(&head).map_err(out_err)?;

        let cfb = BufEncryptor::<Aes256>::new_from_slices(&key[..], &[0u8; 16])
            .expect("AES-256 takes a 32-octet key and a 16-octet IV");
        let mut buf = Vec::with_capacity(HEADROOM + CHUNK_SIZE);
        buf.resize(HEADROOM, 0);
        buf.push(1); // SEIPD version 1, not encrypted
        let mut seipd = Seipd {
            cfb,
            mdc: Sha1::new(),
            offset: 0,
            buf,
        };

        // Random prefix with its last two octets repeated, then the literal packet's tag.
        let mut prefix = [0u8; 18];
        OsRng.fill_bytes(&mut prefix[..16]);
        prefix[16] = prefix[14];
        prefix[17] = prefix[15];
        seipd
            .push(&prefix, true, &mut sink)
            .and_then(|()| seipd.push(&[TAG_LITERAL], true, &mut sink))
            .map_err(out_err)?;

        let mut lit = Vec::with_capacity(CHUNK_SIZE);
        // Literal data body header: binary, empty file name, date 0.
        lit.extend_from_slice(&[b'b', 0, 0, 0, 0, 0]);

        Ok(Self {
            sink: Some(sink),
            lit,
            seipd,
            failed: false,
            plaintext_len: 0,
            recipient: recipient.fingerprint(),
        })
    }

    /// How many plaintext octets were written so far.
    pub fn plaintext_len(&self) -> u64 {
        self.plaintext_len
    }

    /// Writes the last chunks and the MDC, flushes, and returns the sink.
    /// On error the artifact in the sink is incomplete and must be discarded.
    pub fn finish(mut self) -> Result<W> {
        let broken = || Error::EncryptOutput {
            source: io::Error::other("an earlier write failed; the output is broken"),
        };
        if self.failed {
            return Err(broken());
        }
        let mut sink = self.sink.take().ok_or_else(broken)?;
        let mut hdr = [0u8; 5];
        let n = fixed_len_header(self.lit.len(), &mut hdr);
        let res = self
            .seipd
            .push(&hdr[5 - n..], true, &mut sink)
            .and_then(|()| self.seipd.push(&self.lit, true, &mut sink))
            .and_then(|()| self.seipd.finish(&mut sink))
            .and_then(|()| sink.flush());
        self.lit.zeroize();
        match res {
            Ok(()) => Ok(sink),
            Err(source) => Err(Error::EncryptOutput { source }),
        }
    }

    fn write_inner(&mut self, data: &[u8]) -> io::Result<()> {
        let sink = self
            .sink
            .as_mut()
            .ok_or_else(|| io::Error::other("writer already finished"))?;
        let mut rest = data;
        while !rest.is_empty() {
            if self.lit.len() == CHUNK_SIZE {
                // A full chunk with more data to come: commit it as a partial body.
                self.seipd.push(&[PARTIAL], true, sink)?;
                self.seipd.push(&self.lit, true, sink)?;
                self.lit.clear();
            }
            if self.lit.is_empty() && rest.len() > CHUNK_SIZE {
                // Whole chunk straight from the caller's buffer, known not to be the last.
                self.seipd.push(&[PARTIAL], true, sink)?;
                self.seipd.push(&rest[..CHUNK_SIZE], true, sink)?;
                rest = &rest[CHUNK_SIZE..];
                continue;
            }
            let n = rest.len().min(CHUNK_SIZE - self.lit.len());
            self.lit.extend_from_slice(&rest[..n]);
            rest = &rest[n..];
        }
        Ok(())
    }
}

impl<W: Write> Write for EncryptingWriter<W> {
    fn write(&mut self, data: &[u8]) -> io::Result<usize> {
        if self.failed {
            return Err(io::Error::other(
                "an earlier write failed; the encrypted output is broken",
            ));
        }
        match self.write_inner(data) {
            Ok(()) => {
                self.plaintext_len += data.len() as u64;
                Ok(data.len())
            }
            Err(e) => {
                self.failed = true;
                Err(e)
            }
        }
    }

    fn flush(&mut self) -> io::Result<()> {
        match self.sink.as_mut() {
            Some(s) => s.flush(),
            None => Ok(()),
        }
    }
}

impl<W: Write> Drop for EncryptingWriter<W> {
    fn drop(&mut self) {
        // Buffered plaintext must not linger in freed memory.
        self.lit.zeroize();
        if self.sink.is_some() && !self.failed && !std::thread::panicking() {
            tracing::warn!(
                recipient = %self.recipient,
                plaintext_len = self.plaintext_len,
                "EncryptingWriter dropped without finish(): the encrypted artifact is \
                 incomplete and cannot be decrypted; discard it"
            );
        }
    }
}

impl<W: Write> fmt::Debug for EncryptingWriter<W> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("EncryptingWriter")
            .field("recipient", &self.recipient)
            .field("plaintext_len", &self.plaintext_len)
            .field("finished", &self.sink.is_none())
            .field("failed", &self.failed)
            .finish()
    }
}
