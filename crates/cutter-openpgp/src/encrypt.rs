//! Streaming encryption to one pinned recipient.
//!
//! rpgp writes the PKESK packet; the SEIPD framing is ours, because rpgp's streaming
//! builder hashes and encrypts each buffer one after the other, and the backup's
//! speed targets need the MDC's SHA-1, AES-CFB and the artifact's SHA-256 interleaved
//! (`seal.rs`; `cargo xtask bench backup` compares both). What it writes, and what
//! GnuPG 2.2, Sequoia's `sqop` and rpgp read (a differential test holds all three to
//! it at every partial-length boundary):
//!
//! ```text
//! PKESK v3 (rpgp)            tag 1, the session key encrypted to the recipient
//! SEIPD v1                   tag 18, partial body lengths of `CHUNK_SIZE`
//!   0x01 (version)
//!   AES-256-CFB (IV = 0, no resync) of:
//!     16 random octets, last two repeated
//!     Literal Data packet    tag 11, partial body lengths, 'b', no name, date 0
//!     MDC packet             0xD3 0x14 SHA-1(prefix ‖ literal packet ‖ 0xD3 0x14)
//! ```
//!
//! Memory is bounded whatever the input size: one `CHUNK_SIZE` buffer of literal data
//! being filled (encrypted in place once full), and two of ciphertext (one being framed,
//! one waiting to be hashed and written). Plaintext is wiped from the first when the
//! message ends or fails.

use std::{
    fmt,
    io::{self, Read, Write},
    time::SystemTime,
};

use cutter_core::{Fingerprint, Sha256Digest};
use pgp::{
    composed::RawSessionKey,
    crypto::sym::SymmetricKeyAlgorithm,
    packet::{PacketTrait, PublicKeyEncryptedSessionKey},
};
use rand::{rngs::OsRng, RngCore};
use zeroize::{Zeroize, Zeroizing};

use crate::{
    error::{Error, Result},
    keys::{EncryptionKeyRef, PublicKey},
    seal::{seal, Cfb, Md},
    validity,
};

/// log2 of [`CHUNK_SIZE`].
const CHUNK_LOG2: u8 = 18;

/// Size of the partial-body chunks of both the literal data and the SEIPD packet
/// (256 KiB; a power of two, as partial lengths require).
pub const CHUNK_SIZE: u32 = 1 << CHUNK_LOG2;

/// The symmetric algorithm of every message written here.
const CIPHER: SymmetricKeyAlgorithm = SymmetricKeyAlgorithm::AES256;
/// New-format packet tags (0xC0 | tag).
const TAG_SEIPD: u8 = 0xC0 | 18;
const TAG_LITERAL: u8 = 0xC0 | 11;
const MDC_HEADER: [u8; 2] = [0xD3, 0x14];
/// Room before a ciphertext chunk for its longest length header (5 octets).
const HEADROOM: usize = 5;
/// Plaintext long enough to hash the pending ciphertext chunk while it is sealed.
const STITCH_MIN: usize = 4096;

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
        let res = match self.target {
            Target::Primary => PublicKeyEncryptedSessionKey::from_session_key_v3(
                OsRng,
                session_key,
                CIPHER,
                &self.key.inner().primary_key,
            ),
            Target::Subkey(i) => PublicKeyEncryptedSessionKey::from_session_key_v3(
                OsRng,
                session_key,
                CIPHER,
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

/// What [`encrypt_hashed`] wrote.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Encrypted {
    /// Plaintext octets read from the input.
    pub plaintext_bytes: u64,
    /// Octets of the message written to the output.
    pub message_bytes: u64,
    /// SHA-256 of the message written to the output.
    pub message_sha256: Sha256Digest,
}

/// The SEIPD layer: seals plaintext (MDC, CFB), frames the ciphertext into partial
/// body chunks, and hashes and writes each framed chunk while the next one is sealed.
struct Seipd<W> {
    out: W,
    cfb: Cfb,
    mdc: Md<5>,
    sha: Md<8>,
    chunk: usize,
    /// The length octet of a partial body of `chunk` octets (both packets use it).
    partial: u8,
    /// `HEADROOM` octets, then SEIPD body octets not yet framed (at most `chunk`).
    body: Vec<u8>,
    /// A framed chunk (from `pending_at`) not yet hashed nor written.
    pending: Vec<u8>,
    pending_at: usize,
    written: u64,
}

impl<W: Write> Seipd<W> {
    /// Hashes and writes what is pending, unless a seal already hashed it.
    fn write_pending(&mut self, hashed: bool) -> io::Result<()> {
        let framed = &self.pending[self.pending_at..];
        if !hashed {
            self.sha.update(framed);
        }
        self.out.write_all(framed)?;
        self.written += framed.len() as u64;
        self.pending.clear();
        self.pending_at = 0;
        Ok(())
    }

    /// Seals `plain` in place (hashing it into the MDC if `mdc`, else only encrypting)
    /// and appends the ciphertext to the SEIPD body. A large `plain` hashes the pending
    /// chunk while it is sealed, then writes it.
    fn push(&mut self, plain: &mut [u8], mdc: bool) -> io::Result<()> {
        let stitch = mdc && !self.pending.is_empty() && plain.len() >= STITCH_MIN;
        if stitch {
            seal(
                &mut self.cfb,
                &mut self.mdc,
                plain,
                &mut self.sha,
                &self.pending[self.pending_at..],
            );
            self.write_pending(true)?;
        } else if mdc {
            seal(&mut self.cfb, &mut self.mdc, plain, &mut self.sha, &[]);
        } else {
            self.cfb.encrypt(plain);
        }
        let mut rest: &[u8] = plain;
        while !rest.is_empty() {
            if self.body.len() - HEADROOM == self.chunk {
                // A full chunk with more to come: a partial body. (The last chunk,
                // full or not, gets a fixed length in `finish`, so it is never empty.)
                if !self.pending.is_empty() {
                    self.write_pending(false)?;
                }
                self.body[HEADROOM - 1] = self.partial;
                std::mem::swap(&mut self.body, &mut self.pending);
                self.pending_at = HEADROOM - 1;
                self.body.resize(HEADROOM, 0);
            }
            let room = self.chunk - (self.body.len() - HEADROOM);
            let n = room.min(rest.len());
            self.body.extend_from_slice(&rest[..n]);
            rest = &rest[n..];
        }
        Ok(())
    }

    /// Appends the MDC packet, writes the last chunk, flushes.
    fn finish(mut self) -> io::Result<(W, u64, Sha256Digest)> {
        let mut header = MDC_HEADER;
        self.push(&mut header, true)?;
        let sha1 = std::mem::replace(&mut self.mdc, Md::sha1()).finish();
        let mut digest: [u8; 20] = sha1.as_slice().try_into().expect("SHA-1 is 20 octets");
        self.push(&mut digest, false)?;
        if !self.pending.is_empty() {
            self.write_pending(false)?;
        }
        let mut hdr = [0u8; 5];
        let n = fixed_len_header(self.body.len() - HEADROOM, &mut hdr);
        self.body[HEADROOM - n..HEADROOM].copy_from_slice(&hdr[5 - n..]);
        std::mem::swap(&mut self.body, &mut self.pending);
        self.pending_at = HEADROOM - n;
        self.write_pending(false)?;
        self.out.flush()?;
        let sha = self.sha.finish();
        let sha256 =
            Sha256Digest::from_bytes(sha.as_slice().try_into().expect("SHA-256 is 32 octets"));
        Ok((self.out, self.written, sha256))
    }
}

/// Reads into `buf[from..]` until it is full or the input ends; returns the new length.
fn fill<R: Read>(input: &mut R, buf: &mut [u8], mut len: usize) -> io::Result<usize> {
    while len < buf.len() {
        match input.read(&mut buf[len..]) {
            Ok(0) => break,
            Ok(n) => len += n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(len)
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
    encrypt_hashed(recipient, input, output).map(|e| e.plaintext_bytes)
}

/// [`encrypt`], also returning the size and SHA-256 of the message written, hashed as
/// it is written (a backup needs no second pass over its artifact).
pub fn encrypt_hashed<R: Read, W: Write>(
    recipient: &Recipient,
    input: R,
    output: W,
) -> Result<Encrypted> {
    encrypt_chunked(recipient, input, output, CHUNK_LOG2)
}

/// [`encrypt_hashed`] with partial-body chunks of `2^chunk_log2` octets (9 to 30), so
/// that tests reach every partial-length boundary with small messages.
#[doc(hidden)]
pub fn encrypt_chunked<R: Read, W: Write>(
    recipient: &Recipient,
    mut input: R,
    mut output: W,
    chunk_log2: u8,
) -> Result<Encrypted> {
    assert!(
        (9..=30).contains(&chunk_log2),
        "partial body chunks are 512 octets to 1 GiB"
    );
    let chunk = 1usize << chunk_log2;
    let out_err = |source: io::Error| Error::EncryptOutput { source };
    let in_err = |source: io::Error| Error::EncryptInput { source };

    let mut key = Zeroizing::new([0u8; 32]);
    OsRng.fill_bytes(&mut key[..]);
    let session_key = RawSessionKey::from(&key[..]);
    let pkesk = recipient.pkesk(&session_key)?;
    drop(session_key);
    let mut head = Vec::with_capacity(256);
    pkesk
        .to_writer_with_header(&mut head)
        .map_err(|e| Error::Encrypt {
            fingerprint: recipient.encryption_fingerprint.clone(),
            detail: format!("serializing the PKESK packet: {e}"),
        })?;
    head.push(TAG_SEIPD);

    let mut body = Vec::with_capacity(HEADROOM + chunk);
    body.resize(HEADROOM, 0);
    body.push(1); // SEIPD version 1, not encrypted
    let mut pending = Vec::with_capacity(HEADROOM + chunk);
    pending.extend_from_slice(&head);
    let mut seipd = Seipd {
        out: &mut output,
        cfb: Cfb::new(&key),
        mdc: Md::sha1(),
        sha: Md::sha256(),
        chunk,
        partial: 0xE0 | chunk_log2,
        body,
        pending,
        pending_at: 0,
        written: 0,
    };
    drop(key);

    // Random prefix with its last two octets repeated, then the literal packet's tag.
    let mut prefix = [0u8; 19];
    OsRng.fill_bytes(&mut prefix[..16]);
    prefix[16] = prefix[14];
    prefix[17] = prefix[15];
    prefix[18] = TAG_LITERAL;
    seipd.push(&mut prefix, true).map_err(out_err)?;

    // The literal packet's body in chunks: binary, empty file name, date 0, then the
    // data. A full chunk becomes a partial body only once more data is known to follow,
    // so the last length header is never a partial one.
    let mut lit = vec![0u8; chunk];
    lit[0] = b'b';
    let mut len = 6;
    let mut plaintext_bytes = 0u64;
    let res = (|| -> Result<()> {
        loop {
            let was = len;
            len = fill(&mut input, &mut lit, len).map_err(in_err)?;
            plaintext_bytes += (len - was) as u64;
            let mut next = [0u8; 1];
            let more = len == chunk && fill(&mut input, &mut next, 0).map_err(in_err)? == 1;
            let mut hdr = [0u8; 5];
            let h = if more {
                hdr[4] = seipd.partial;
                1
            } else {
                fixed_len_header(len, &mut hdr)
            };
            seipd.push(&mut hdr[5 - h..], true).map_err(out_err)?;
            seipd.push(&mut lit[..len], true).map_err(out_err)?;
            if !more {
                return Ok(());
            }
            lit[0] = next[0];
            len = 1;
            plaintext_bytes += 1;
        }
    })();
    lit.zeroize();
    res?;
    let (_, message_bytes, message_sha256) = seipd.finish().map_err(out_err)?;
    Ok(Encrypted {
        plaintext_bytes,
        message_bytes,
        message_sha256,
    })
}
