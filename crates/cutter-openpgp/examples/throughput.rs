//! Measures encryption and decryption throughput (run by hand, in release mode):
//!
//! ```text
//! cargo run --release -p cutter-openpgp --example throughput -- [MiB, default 1024] [enc|dec]
//! ```
//!
//! On a shared machine wall-clock figures vary with load; `perf stat -e cycles:u` over
//! a single phase (`enc` or `dec`) gives a steadier cycles-per-byte figure.

use std::{
    io::{self, Read, Write},
    time::Instant,
};

use cutter_openpgp::{decrypt, encrypt, generate_key, Passphrase, PublicKey, Recipient, SecretKey};

/// `total` octets of `block`, repeated, handed out at most `piece` octets per read (as
/// pg_dump's pipe delivers them).
struct Source<'a> {
    block: &'a [u8],
    pos: usize,
    left: usize,
    piece: usize,
}

impl Read for Source<'_> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        if self.pos == self.block.len() {
            self.pos = 0;
        }
        let n = buf
            .len()
            .min(self.piece)
            .min(self.left)
            .min(self.block.len() - self.pos);
        buf[..n].copy_from_slice(&self.block[self.pos..self.pos + n]);
        self.pos += n;
        self.left -= n;
        Ok(n)
    }
}

#[derive(Default)]
struct Count(u64);

impl Write for Count {
    fn write(&mut self, b: &[u8]) -> io::Result<usize> {
        self.0 += b.len() as u64;
        Ok(b.len())
    }
    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mib: usize = std::env::args()
        .nth(1)
        .map(|a| a.parse())
        .transpose()?
        .unwrap_or(1024);
    let total = mib * 1024 * 1024;
    let phase = std::env::args().nth(2).unwrap_or_default();

    let pass = Passphrase::new("throughput".into());
    let g = generate_key("Throughput <t@example.org>", Some(&pass))?;
    let recipient = Recipient::pinned(
        PublicKey::from_bytes(g.public_armored.as_bytes())?,
        &g.fingerprint,
    )?;
    let secret = SecretKey::from_bytes(g.secret_armored.as_bytes())?;

    // 16 MiB of pseudo-random data, written repeatedly in 1 MiB pieces (pg_dump's pipe
    // delivers 64 KiB–1 MiB reads).
    let block = cutter_testkit::noise(16 << 20, 1);
    let pieces: &[usize] = match phase.as_str() {
        "dec" => &[],
        "enc" => &[1 << 20],
        _ => &[64 * 1024, 1 << 20],
    };
    for &piece in pieces {
        let t = Instant::now();
        let mut out = Count::default();
        let src = Source {
            block: &block,
            pos: 0,
            left: total,
            piece,
        };
        let n = encrypt(&recipient, src, &mut out)?;
        assert_eq!(n as usize, total);
        let s = t.elapsed().as_secs_f64();
        println!(
            "encrypt: {mib} MiB in reads of at most {piece} bytes: {s:.3} s, {:.0} MB/s ({:.0} MiB/s), ciphertext {} bytes",
            total as f64 / s / 1e6,
            total as f64 / s / (1 << 20) as f64,
            out.0
        );
    }

    if phase == "enc" {
        return Ok(());
    }
    // Decryption from an in-memory ciphertext.
    let mut ct = Vec::with_capacity(total + 4096);
    let src = Source {
        block: &block,
        pos: 0,
        left: total,
        piece: 1 << 20,
    };
    encrypt(&recipient, src, &mut ct)?;
    let t = Instant::now();
    let mut out = Count::default();
    let n = decrypt(&secret, &pass, &ct[..], &mut out)?;
    let s = t.elapsed().as_secs_f64();
    assert_eq!(n as usize, total);
    println!(
        "decrypt: {mib} MiB: {s:.3} s, {:.0} MB/s ({:.0} MiB/s)",
        total as f64 / s / 1e6,
        total as f64 / s / (1 << 20) as f64
    );
    Ok(())
}
