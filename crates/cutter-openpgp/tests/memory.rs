//! Bounded memory: 256 MiB through `encrypt`, and back through `decrypt`,
//! must not grow the process's peak RSS by more than a few chunks. This file holds a
//! single test so no other test in the same process disturbs the measurement.

use std::io::{self, Read, Write};

use cutter_openpgp::{decrypt, encrypt, generate_key, Passphrase, PublicKey, Recipient, SecretKey};

const TOTAL: u64 = 256 * 1024 * 1024;
const LIMIT: u64 = 64 * 1024 * 1024;

/// Peak resident set size so far (VmHWM), in bytes.
fn peak_rss() -> u64 {
    cutter_testkit::peak_rss_bytes().expect("VmHWM of /proc/self/status")
}

/// Generates `left` bytes of cheap pseudo-random data.
struct Source {
    left: u64,
    x: u64,
}

impl Read for Source {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = (buf.len() as u64).min(self.left) as usize;
        for chunk in buf[..n].chunks_mut(8) {
            self.x ^= self.x << 13;
            self.x ^= self.x >> 7;
            self.x ^= self.x << 17;
            let b = self.x.to_le_bytes();
            chunk.copy_from_slice(&b[..chunk.len()]);
        }
        self.left -= n as u64;
        Ok(n)
    }
}

/// Counts what is written to it; keeps a copy of nothing but a small ring of the data.
#[derive(Default)]
struct Counter {
    n: u64,
    sample: Vec<u8>,
}

impl Write for Counter {
    fn write(&mut self, b: &[u8]) -> io::Result<usize> {
        self.n += b.len() as u64;
        if self.sample.len() < 4096 {
            self.sample.extend_from_slice(&b[..b.len().min(4096)]);
        }
        Ok(b.len())
    }
    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

#[test]
fn encryption_and_decryption_run_in_bounded_memory() {
    let pass = Passphrase::new("memory".into());
    let g = generate_key("Mem <mem@example.org>", Some(&pass)).expect("generate");
    let recipient = Recipient::pinned(
        PublicKey::from_bytes(g.public_armored.as_bytes()).expect("public"),
        &g.fingerprint,
    )
    .expect("pinned");
    let secret = SecretKey::from_bytes(g.secret_armored.as_bytes()).expect("secret");

    // Warm up allocator and code paths with a small message first.
    encrypt(&recipient, &[0u8; 1 << 20][..], Counter::default()).expect("warm-up");

    // Encryption: generated source → writer → counting sink.
    let before = peak_rss();
    let mut src = Source {
        left: TOTAL,
        x: 0x1234_5678_9abc_def1,
    };
    let mut sink = Counter::default();
    let copied = encrypt(&recipient, &mut src, &mut sink).expect("encrypt");
    assert_eq!(copied, TOTAL);
    assert!(
        sink.n > TOTAL && sink.n < TOTAL + 4096,
        "ciphertext size {}",
        sink.n
    );
    let grown = peak_rss().saturating_sub(before);
    eprintln!(
        "encrypt {TOTAL} bytes: peak RSS grew by {} KiB",
        grown / 1024
    );
    assert!(
        grown < LIMIT,
        "encrypting {TOTAL} bytes grew peak RSS by {grown} bytes (limit {LIMIT})"
    );

    // Decryption: ciphertext produced on demand by a thread encrypting into a pipe →
    // decrypt → counting sink.
    let before = peak_rss();
    let (input, mut output) = io::pipe().expect("pipe");
    let encryptor = std::thread::spawn(move || {
        let src = Source {
            left: TOTAL,
            x: 0x0fed_cba9_8765_4321,
        };
        encrypt(&recipient, src, &mut output).expect("encrypt into the pipe")
    });
    let mut out = Counter::default();
    let n = decrypt(&secret, &pass, input, &mut out).expect("decrypt");
    assert_eq!(encryptor.join().expect("encryptor"), TOTAL);
    assert_eq!(n, TOTAL);
    assert_eq!(out.n, TOTAL);
    let grown = peak_rss().saturating_sub(before);
    eprintln!(
        "decrypt {TOTAL} bytes: peak RSS grew by {} KiB",
        grown / 1024
    );
    assert!(
        grown < LIMIT,
        "decrypting {TOTAL} bytes grew peak RSS by {grown} bytes (limit {LIMIT})"
    );
}
