//! The inner loop of [`encrypt`](crate::encrypt): the MDC's SHA-1 of the plaintext,
//! AES-256-CFB, and the SHA-256 of the message written so far, interleaved one 64-octet
//! block at a time.
//!
//! CFB encryption is one serial chain of AES rounds, bound by their latency rather than
//! by the AES unit's throughput, and SHA-1 and SHA-256 (with the CPU's SHA extensions)
//! are chains of their own. Issued in turn, the three chains overlap in the CPU's
//! out-of-order window instead of running one after the other. The order matters: per
//! 64 octets, SHA-1, two AES blocks, SHA-256, two AES blocks. With the SHA-256 block
//! after all four AES blocks it waited behind their chain, and the cutter process of
//! `cargo xtask bench backup` took about 10% more CPU. The hashes and the
//! cipher are the `sha1`, `sha2` and `aes` crates' (runtime-detected AES-NI and SHA-NI),
//! called a block at a time; nothing cryptographic is implemented here.

use aes::{
    cipher::{generic_array::GenericArray, BlockEncrypt, KeyInit},
    Aes256,
};
use zeroize::Zeroize;

/// A Merkle–Damgård hash over 64-octet blocks (SHA-1: `W = 5`, SHA-256: `W = 8`): the
/// chaining state, the octets of a block not yet complete, and the length so far.
pub(crate) struct Md<const W: usize> {
    state: [u32; W],
    carry: [u8; 64],
    carry_len: usize,
    total: u64,
    compress: fn(&mut [u32; W], &[u8]),
}

fn sha1_block(state: &mut [u32; 5], block: &[u8]) {
    sha1::compress(state, std::slice::from_ref(GenericArray::from_slice(block)));
}

fn sha256_block(state: &mut [u32; 8], block: &[u8]) {
    sha2::compress256(state, std::slice::from_ref(GenericArray::from_slice(block)));
}

impl Md<5> {
    /// SHA-1 (FIPS 180-4 §5.3.1).
    pub(crate) fn sha1() -> Self {
        Self::new(
            [
                0x6745_2301,
                0xEFCD_AB89,
                0x98BA_DCFE,
                0x1032_5476,
                0xC3D2_E1F0,
            ],
            sha1_block,
        )
    }
}

impl Md<8> {
    /// SHA-256 (FIPS 180-4 §5.3.3).
    pub(crate) fn sha256() -> Self {
        Self::new(
            [
                0x6a09_e667,
                0xbb67_ae85,
                0x3c6e_f372,
                0xa54f_f53a,
                0x510e_527f,
                0x9b05_688c,
                0x1f83_d9ab,
                0x5be0_cd19,
            ],
            sha256_block,
        )
    }
}

impl<const W: usize> Md<W> {
    fn new(state: [u32; W], compress: fn(&mut [u32; W], &[u8])) -> Self {
        Self {
            state,
            carry: [0; 64],
            carry_len: 0,
            total: 0,
            compress,
        }
    }

    /// Hashes `data`.
    pub(crate) fn update(&mut self, data: &[u8]) {
        let mid = self.take_blocks(data);
        for b in mid.chunks_exact(64) {
            (self.compress)(&mut self.state, b);
        }
    }

    /// Takes `data` in: completes (and compresses) the carried block from its head and
    /// keeps its tail as the new carry; returns the whole blocks in between, which the
    /// caller must pass to [`block`](Self::block), in order, before anything else is
    /// hashed.
    fn take_blocks<'a>(&mut self, data: &'a [u8]) -> &'a [u8] {
        self.total += data.len() as u64;
        let mut rest = data;
        if self.carry_len > 0 {
            let n = (64 - self.carry_len).min(rest.len());
            self.carry[self.carry_len..self.carry_len + n].copy_from_slice(&rest[..n]);
            self.carry_len += n;
            rest = &rest[n..];
            if self.carry_len < 64 {
                return &[];
            }
            let block = self.carry;
            (self.compress)(&mut self.state, &block);
            self.carry_len = 0;
        }
        let whole = rest.len() - rest.len() % 64;
        let (mid, tail) = rest.split_at(whole);
        self.carry[..tail.len()].copy_from_slice(tail);
        self.carry_len = tail.len();
        mid
    }

    /// Compresses one block returned by [`take_blocks`](Self::take_blocks).
    #[inline]
    fn block(&mut self, b: &[u8]) {
        (self.compress)(&mut self.state, b);
    }

    /// Octets hashed so far, modulo the block size.
    fn phase(&self) -> usize {
        self.carry_len
    }

    /// Pads (`0x80`, zeros, the length in bits, big-endian) and returns the digest.
    pub(crate) fn finish(mut self) -> Vec<u8> {
        let bits = self.total.wrapping_mul(8);
        let mut pad = [0u8; 72];
        pad[0] = 0x80;
        let zeros = (55usize.wrapping_sub(self.carry_len)) % 64;
        let len = 1 + zeros + 8;
        pad[1 + zeros..len].copy_from_slice(&bits.to_be_bytes());
        let total = self.total;
        self.update(&pad[..len]);
        self.total = total;
        debug_assert_eq!(self.carry_len, 0);
        self.state.iter().flat_map(|w| w.to_be_bytes()).collect()
    }
}

impl<const W: usize> Drop for Md<W> {
    fn drop(&mut self) {
        self.carry.zeroize();
        self.state.zeroize();
    }
}

/// AES-256 in OpenPGP's CFB mode (RFC 4880 §13.9 without the resync step, as SEIPD
/// uses it): a zero IV, and each ciphertext block feeds the next block's keystream.
pub(crate) struct Cfb {
    aes: Aes256,
    /// The keystream block being used; its first `pos` octets are already replaced by
    /// the ciphertext they produced.
    reg: [u8; 16],
    pos: usize,
}

impl Cfb {
    pub(crate) fn new(key: &[u8; 32]) -> Self {
        let aes = Aes256::new(GenericArray::from_slice(key));
        let mut reg = GenericArray::from([0u8; 16]);
        aes.encrypt_block(&mut reg);
        Self {
            aes,
            reg: reg.into(),
            pos: 0,
        }
    }

    /// Encrypts `data` in place, any length.
    pub(crate) fn encrypt(&mut self, data: &mut [u8]) {
        let mut rest = data;
        while self.pos != 0 && !rest.is_empty() {
            self.byte(&mut rest[0]);
            rest = &mut rest[1..];
        }
        let whole = rest.len() - rest.len() % 16;
        let (mid, tail) = rest.split_at_mut(whole);
        for b in mid.chunks_exact_mut(16) {
            self.block(b);
        }
        for x in tail {
            self.byte(x);
        }
    }

    fn byte(&mut self, x: &mut u8) {
        *x ^= self.reg[self.pos];
        self.reg[self.pos] = *x;
        self.pos += 1;
        if self.pos == 16 {
            self.next_keystream();
        }
    }

    /// One whole block at a block boundary (`pos == 0`).
    #[inline]
    fn block(&mut self, b: &mut [u8]) {
        let p = u128::from_ne_bytes(b[..16].try_into().expect("16 octets"));
        let c = p ^ u128::from_ne_bytes(self.reg);
        self.reg = c.to_ne_bytes();
        b[..16].copy_from_slice(&self.reg);
        self.next_keystream();
    }

    #[inline]
    fn next_keystream(&mut self) {
        let mut r = GenericArray::from(self.reg);
        self.aes.encrypt_block(&mut r);
        self.reg = r.into();
        self.pos = 0;
    }
}

impl Drop for Cfb {
    fn drop(&mut self) {
        self.reg.zeroize();
    }
}

/// Hashes `plain` into `mdc` and encrypts it in place with `cfb`, while hashing
/// `written` into `out`: the three interleaved a 64-octet block at a time where `plain`
/// is block-aligned, one after the other at its unaligned ends.
///
/// `mdc` and `cfb` must have seen the same octets (the MDC covers exactly what is
/// encrypted), so a block boundary of one is one of the other.
pub(crate) fn seal(
    cfb: &mut Cfb,
    mdc: &mut Md<5>,
    plain: &mut [u8],
    out: &mut Md<8>,
    written: &[u8],
) {
    let h = out.take_blocks(written);
    let head = ((64 - mdc.phase()) % 64).min(plain.len());
    let (head, rest) = plain.split_at_mut(head);
    mdc.update(head);
    cfb.encrypt(head);
    let whole = rest.len() - rest.len() % 64;
    let (mid, tail) = rest.split_at_mut(whole);
    if !mid.is_empty() {
        debug_assert_eq!((mdc.phase(), cfb.pos), (0, 0));
        mdc.total += mid.len() as u64;
    }
    let mut hb = h.chunks_exact(64);
    for p in mid.chunks_exact_mut(64) {
        // SHA-1 reads the plaintext before the cipher overwrites it; the SHA-256 block
        // goes between the halves of the AES chain (see the module's docs).
        mdc.block(p);
        let (a, b) = p.split_at_mut(32);
        cfb.block(&mut a[..16]);
        cfb.block(&mut a[16..]);
        if let Some(h) = hb.next() {
            out.block(h);
        }
        cfb.block(&mut b[..16]);
        cfb.block(&mut b[16..]);
    }
    for b in hb {
        out.block(b);
    }
    mdc.update(tail);
    cfb.encrypt(tail);
}

#[cfg(test)]
mod tests {
    use super::*;
    use cfb_mode::{cipher::KeyIvInit, BufEncryptor};
    use sha1::Digest as _;

    use cutter_testkit::noise;

    /// The interleaved loop gives what the `sha1`, `sha2` and `cfb-mode` crates give
    /// fed the same octets whole, for pieces of every alignment.
    #[test]
    fn sealing_in_pieces_equals_the_reference_crates_on_the_whole() {
        let key: [u8; 32] = noise(32, 1).try_into().unwrap();
        for (case, pieces) in [
            vec![0usize],
            vec![1],
            vec![18, 1, 1, 262_144, 5, 200_000],
            vec![63, 64, 65, 127, 128, 129],
            vec![4096; 9],
            vec![7, 3000, 1, 1, 1, 64 * 100 + 3, 17],
        ]
        .into_iter()
        .enumerate()
        {
            let mut cfb = Cfb::new(&key);
            let mut mdc = Md::sha1();
            let mut out = Md::sha256();
            let mut all_plain = Vec::new();
            let mut all_ct = Vec::new();
            let mut all_written = Vec::new();
            for (i, &n) in pieces.iter().enumerate() {
                let plain = noise(n, (case * 100 + i) as u64 + 7);
                let written = noise((n * 3 / 2) + i, (case * 100 + i) as u64 + 9);
                let mut buf = plain.clone();
                seal(&mut cfb, &mut mdc, &mut buf, &mut out, &written);
                all_plain.extend_from_slice(&plain);
                all_ct.extend_from_slice(&buf);
                all_written.extend_from_slice(&written);
            }
            let mut reference = all_plain.clone();
            BufEncryptor::<Aes256>::new_from_slices(&key, &[0u8; 16])
                .unwrap()
                .encrypt(&mut reference);
            assert!(all_ct == reference, "case {case}: CFB differs");
            assert_eq!(
                mdc.finish(),
                sha1::Sha1::digest(&all_plain).to_vec(),
                "case {case}: SHA-1"
            );
            assert_eq!(
                out.finish(),
                sha2::Sha256::digest(&all_written).to_vec(),
                "case {case}: SHA-256"
            );
        }
    }

    /// Every padding length: messages of 0..=200 octets hash as the crates hash them.
    #[test]
    fn padding_of_every_length_equals_the_reference_crates() {
        for n in 0..=200 {
            let data = noise(n, n as u64);
            let mut a = Md::sha1();
            let mut b = Md::sha256();
            a.update(&data);
            b.update(&data);
            assert_eq!(a.finish(), sha1::Sha1::digest(&data).to_vec(), "{n}");
            assert_eq!(b.finish(), sha2::Sha256::digest(&data).to_vec(), "{n}");
        }
    }
}
