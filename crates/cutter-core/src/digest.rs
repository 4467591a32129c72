//! SHA-256 digests and the canonical byte encoding every digest in cutter is taken over:
//! a domain tag, then each field as its length (u64, big-endian) followed by its bytes.
//! Length prefixes make the encoding unambiguous whatever the fields contain.

use std::fmt;

use serde::{Deserialize, Serialize};
use sha2::{Digest as _, Sha256};

use crate::Error;

/// A SHA-256 digest, shown and serialized as 64 lower-case hex digits.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct Sha256Digest([u8; 32]);

impl Sha256Digest {
    /// The digest of `bytes`.
    pub fn of(bytes: &[u8]) -> Self {
        Self(Sha256::digest(bytes).into())
    }
    /// Wraps raw digest bytes.
    pub fn from_bytes(b: [u8; 32]) -> Self {
        Self(b)
    }
    /// The raw bytes.
    pub fn as_bytes(&self) -> &[u8; 32] {
        &self.0
    }
    /// Parses 64 hex digits.
    pub fn from_hex(s: &str) -> Result<Self, Error> {
        let mut out = [0u8; 32];
        hex::decode_to_slice(s.trim(), &mut out).map_err(|_| Error::InvalidId {
            kind: "sha256 digest",
            value: s.chars().take(80).collect(),
            rule: "64 hexadecimal digits".into(),
        })?;
        Ok(Self(out))
    }
    /// 64 lower-case hex digits.
    pub fn to_hex(&self) -> String {
        hex::encode(self.0)
    }
}
impl TryFrom<String> for Sha256Digest {
    type Error = Error;
    fn try_from(s: String) -> Result<Self, Error> {
        Self::from_hex(&s)
    }
}
impl From<Sha256Digest> for String {
    fn from(v: Sha256Digest) -> String {
        v.to_hex()
    }
}
impl fmt::Display for Sha256Digest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.to_hex())
    }
}
impl fmt::Debug for Sha256Digest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "sha256:{}", self.to_hex())
    }
}

/// Builds a digest over the canonical encoding: `tag`, then length-prefixed fields.
#[derive(Clone)]
pub struct CanonicalHasher {
    inner: Sha256,
}

impl fmt::Debug for CanonicalHasher {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("CanonicalHasher")
    }
}

impl CanonicalHasher {
    /// Starts a digest for the domain `tag` (e.g. `cutter-plan-v1`).
    pub fn new(tag: &str) -> Self {
        let mut h = Self {
            inner: Sha256::new(),
        };
        h.field(tag.as_bytes());
        h
    }
    /// Appends one field.
    pub fn field(&mut self, bytes: &[u8]) -> &mut Self {
        self.inner.update((bytes.len() as u64).to_be_bytes());
        self.inner.update(bytes);
        self
    }
    /// Appends an optional field: absent is a single 0x00 byte field marker, present
    /// is 0x01 followed by the field.
    pub fn opt_field(&mut self, bytes: Option<&[u8]>) -> &mut Self {
        match bytes {
            None => self.field(&[0]),
            Some(b) => self.field(&[1]).field(b),
        }
    }
    /// Appends an unsigned integer as a field of 8 big-endian bytes.
    pub fn u64_field(&mut self, v: u64) -> &mut Self {
        self.field(&v.to_be_bytes())
    }
    /// The digest.
    pub fn finish(self) -> Sha256Digest {
        Sha256Digest(self.inner.finalize().into())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn known_vector() {
        // sha256("abc"), FIPS 180-2 appendix B.1.
        assert_eq!(
            Sha256Digest::of(b"abc").to_hex(),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
    }

    #[test]
    fn length_prefix_prevents_ambiguity() {
        let mut a = CanonicalHasher::new("t");
        a.field(b"ab").field(b"c");
        let mut b = CanonicalHasher::new("t");
        b.field(b"a").field(b"bc");
        assert_ne!(a.finish(), b.finish());
    }

    #[test]
    fn hex_round_trip() {
        let d = Sha256Digest::of(b"x");
        assert_eq!(Sha256Digest::from_hex(&d.to_hex()).unwrap(), d);
        assert!(Sha256Digest::from_hex("zz").is_err());
    }
}
