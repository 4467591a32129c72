//! Our SEIPD framing (`encrypt.rs`, sealed by `seal.rs`) against three independent
//! OpenPGP readers: rpgp (through [`decrypt`]), GnuPG 2.2 and Sequoia's `sqop`.
//!
//! Every partial-length boundary of both packets is reached with small messages by
//! encrypting with small partial-body chunks (512 octets to 16 KiB; production uses
//! 256 KiB, covered by `gpg_interop.rs`): sizes where the literal body or the SEIPD
//! body ends one octet before, on, or one octet after a chunk boundary, and where the
//! last length header changes size (191/192 and 8383/8384 octets); then a thousand
//! sizes drawn at random, each read in random pieces as a pipe delivers them.

mod common;

use std::{collections::BTreeSet, fs};

use common::{data, Interop, Pieces};
use cutter_openpgp::{decrypt, encrypt_chunked, Passphrase};
use sha2::{Digest as _, Sha256};

/// The chunk sizes tested (log2): the smallest partial length the format allows, the
/// next, and either side of 8384, where a fixed length header grows to 5 octets.
const CHUNK_LOG2S: [u8; 4] = [9, 10, 13, 14];
const RANDOM_SIZES: usize = 1000;

/// Length header octets of a packet body of `len` octets cut into `chunk`-octet
/// partial bodies, a full chunk being partial only when more follows; and the length
/// of its last (fixed-length) piece.
fn framing(len: usize, chunk: usize) -> (usize, usize) {
    let (q, r) = (len / chunk, len % chunk);
    let (partials, last) = if r == 0 && len > 0 {
        (q - 1, chunk)
    } else {
        (q, r)
    };
    let fixed = match last {
        0..=191 => 1,
        192..=8383 => 2,
        _ => 5,
    };
    (partials + fixed, last)
}

/// (literal body length, SEIPD body length, their last pieces) for `n` octets of data.
fn bodies(n: usize, chunk: usize) -> (usize, usize, usize, usize) {
    let lit = 6 + n; // 'b', empty name, date, data
    let (lit_headers, lit_last) = framing(lit, chunk);
    // version, 18-octet prefix, literal tag + headers + body, MDC packet (22 octets)
    let seipd = 1 + 18 + 1 + lit_headers + lit + 22;
    let (_, seipd_last) = framing(seipd, chunk);
    (lit, seipd, lit_last, seipd_last)
}

/// Sizes at every boundary for `chunk`, up to three chunks and a bit.
fn boundary_sizes(chunk: usize) -> BTreeSet<usize> {
    let near = |x: usize| {
        let m = x % chunk;
        m == chunk - 1 || m == 0 || m == 1
    };
    (0..3 * chunk + 64)
        .filter(|&n| {
            let (lit, seipd, lit_last, seipd_last) = bodies(n, chunk);
            near(lit)
                || near(seipd)
                || [191, 192, 8383, 8384].contains(&lit_last)
                || [191, 192, 8383, 8384].contains(&seipd_last)
        })
        .collect()
}

/// xorshift64: reproducible random sizes and read pieces.
struct Rng(u64);
impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }
}

struct Case {
    chunk_log2: u8,
    size: usize,
    seed: u64,
}

#[test]
fn our_framing_decrypts_byte_identically_with_rpgp_gpg_and_sqop_at_every_boundary_and_a_thousand_random_sizes(
) {
    let mut cases = Vec::new();
    for log2 in CHUNK_LOG2S {
        let sizes = boundary_sizes(1 << log2);
        // The set must reach what it claims: each body ending exactly on a boundary.
        let chunk = 1usize << log2;
        assert!(sizes
            .iter()
            .any(|&n| bodies(n, chunk).0.is_multiple_of(chunk)));
        assert!(sizes
            .iter()
            .any(|&n| bodies(n, chunk).1.is_multiple_of(chunk)));
        if log2 >= 14 {
            assert!(sizes.iter().any(|&n| bodies(n, chunk).2 == 8384));
        }
        for n in sizes {
            cases.push(Case {
                chunk_log2: log2,
                size: n,
                seed: cases.len() as u64 + 1,
            });
        }
    }
    let boundary_cases = cases.len();
    let mut rng = Rng(0x5EED_CAFE_F00D_0017);
    for _ in 0..RANDOM_SIZES {
        let log2 = CHUNK_LOG2S[rng.below(CHUNK_LOG2S.len())];
        let size = rng.below(4 << log2);
        cases.push(Case {
            chunk_log2: log2,
            size,
            seed: cases.len() as u64 + 1,
        });
    }

    let ix = Interop::new("Differential <diff@example.org>");
    let none = Passphrase::new(String::new());

    // Encrypt each case, reading in random pieces; check what encrypt_chunked says it
    // wrote; decrypt with rpgp.
    let mut files = Vec::new();
    for (i, c) in cases.iter().enumerate() {
        let plain = data(c.size, c.seed);
        let pieces: Vec<usize> = (0..7).map(|_| 1 + rng.below(3 << c.chunk_log2)).collect();
        let mut ct = Vec::new();
        let written = encrypt_chunked(
            &ix.recipient,
            Pieces {
                data: &plain,
                pieces: &pieces,
                i: 0,
            },
            &mut ct,
            c.chunk_log2,
        )
        .unwrap_or_else(|e| panic!("case {i} (size {}): {e}", c.size));
        assert_eq!(written.plaintext_bytes, c.size as u64, "case {i}");
        assert_eq!(written.message_bytes, ct.len() as u64, "case {i}");
        assert_eq!(
            written.message_sha256.as_bytes(),
            &<[u8; 32]>::from(Sha256::digest(&ct)),
            "case {i}: the SHA-256 hashed while writing"
        );
        let mut ours = Vec::new();
        decrypt(&ix.secret, &none, &ct[..], &mut ours)
            .unwrap_or_else(|e| panic!("rpgp: case {i} (size {}): {e}", c.size));
        assert!(ours == plain, "rpgp: case {i} (size {}) differs", c.size);
        files.push(ix.gpg.file(&format!("case-{i}.pgp"), &ct));
    }

    // GnuPG: every message in a few processes (--decrypt-files writes case-N beside
    // case-N.pgp); every one must have a good MDC.
    for batch in files.chunks(400) {
        let mut args = vec!["--status-fd", "2", "--decrypt-files"];
        args.extend(batch.iter().map(|p| p.to_str().expect("utf8")));
        let out = ix.gpg.run(&args, None);
        let status = String::from_utf8_lossy(&out.stderr);
        assert_eq!(
            status.matches("[GNUPG:] GOODMDC").count(),
            batch.len(),
            "gpg: not every message had a good MDC"
        );
        assert!(!status.contains("DECRYPTION_FAILED"), "{status}");
    }
    for (i, c) in cases.iter().enumerate() {
        let back = fs::read(ix.gpg.path(&format!("case-{i}")))
            .unwrap_or_else(|e| panic!("gpg: case {i}: no output: {e}"));
        assert!(
            back == data(c.size, c.seed),
            "gpg: case {i} (size {}, chunk 2^{}) differs",
            c.size,
            c.chunk_log2
        );
    }

    // sqop: one process per message, on two threads.
    let (even, odd): (Vec<_>, Vec<_>) = files.iter().enumerate().partition(|(i, _)| i % 2 == 0);
    std::thread::scope(|s| {
        for half in [even, odd] {
            let (ix, cases) = (&ix, &cases);
            s.spawn(move || {
                for (i, path) in half {
                    let out = ix.sqop_decrypt(&fs::read(path).expect("ciphertext"));
                    let c = &cases[i];
                    assert!(
                        out.status.success(),
                        "sqop: case {i} (size {}): {}",
                        c.size,
                        String::from_utf8_lossy(&out.stderr)
                    );
                    assert!(
                        out.stdout == data(c.size, c.seed),
                        "sqop: case {i} (size {}, chunk 2^{}) differs",
                        c.size,
                        c.chunk_log2
                    );
                }
            });
        }
    });
    println!(
        "{} messages ({boundary_cases} at boundaries, {RANDOM_SIZES} random sizes) decrypted \
         byte-identically by rpgp, gpg and sqop",
        cases.len()
    );
}
