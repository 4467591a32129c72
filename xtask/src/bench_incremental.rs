//! `cargo xtask bench backup-incremental --units N --run-units M`: per-run cost of full
//! and incremental backups and of their proofs, for surfaces of N/10 and N enacted units,
//! in one run (release mode):
//!
//! ```text
//! cargo run --release -p xtask -- bench backup-incremental --units 1000000 --run-units 1000
//! ```
//!
//! For each size: a source cluster with the reference schema and the generated units
//! (enacted, as most of a production surface is); a full backup (`--full`) and its restore
//! proof; then `--runs` runs, each adding M enacted units and M/10 ledger rows, each
//! followed by an incremental backup and its increment proof; then the chain proof of
//! the chain, and a new full backup at the same state with its restore proof (the
//! "equivalent full artifact"). Timed in process (wall clock); a proof's throwaway
//! cluster start-up (initdb, start, stop) is shown apart and excluded from the ratios.
//!
//! Targets, each PASS or FAIL: at N units, incremental backup + increment proof ≤ 5% of
//! full backup + full proof; the incremental per-run time at N within 1.5× of the same at
//! N/10; the chain proof within 1.2× of the restore proof of the equivalent full artifact.

use std::fs;
use std::path::{Path, PathBuf};
use std::time::Instant;

use cutter_backup::{
    chain_proof, chained_backup, increment_proof, load_recipient, restore_proof, BackupArtifact,
    BackupConfig, ChainPolicy, ChainProof, ChainProofConfig, LinkKind, ManifestSigner,
    PassphraseSource, RestoreConfig, RestoreProof,
};
use cutter_core::{Fingerprint, RunId};
use cutter_pg::config::ConnConfig;
use cutter_pg::{Cluster, Password};

use crate::bench_backup::{bench_keys, generate_as, random_hex, SENTENCES};

const DB: &str = "bench";
const BATCH: u64 = 50_000;
const INCR_VS_FULL: f64 = 0.05;
const FLAT: f64 = 1.5;
const CHAIN_VS_FULL: f64 = 1.2;

/// `bench backup-incremental`'s options.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// Units of the larger surface (the smaller has a tenth).
    #[arg(long, value_name = "N", default_value_t = 1_000_000, value_parser = crate::count)]
    units: u64,
    /// Units each run adds.
    #[arg(long, value_name = "M", default_value_t = 1_000, value_parser = crate::count)]
    run_units: u64,
    /// Runs (increments) per size; the median counts.
    #[arg(long, value_name = "R", default_value_t = 3, value_parser = clap::value_parser!(u32).range(1..=50))]
    runs: u32,
}

/// Keys shared by both sizes.
struct Keys {
    recipient: cutter_backup::Recipient,
    signer: ManifestSigner,
    secret: PathBuf,
    pin: Fingerprint,
    passfile: PathBuf,
}

/// Seconds: measured part, and the throwaway cluster's start-up (proofs only).
#[derive(Clone, Copy, Default)]
struct Timed {
    work: f64,
    startup: f64,
}

struct Figures {
    units: u64,
    surface_mb: f64,
    full_backup: f64,
    full_proof: Timed,
    incr_backup: f64,
    incr_proof: Timed,
    incr_rows: u64,
    incr_bytes: u64,
    chain_proof: Timed,
    links: usize,
    equiv_full_proof: Timed,
}

/// A database error with the server's message.
fn db(what: &str, e: &postgres::Error) -> String {
    match e.as_db_error() {
        Some(d) => format!("{what}: {}", d.message()),
        None => format!("{what}: {e}"),
    }
}

fn secs(t: Instant) -> f64 {
    t.elapsed().as_secs_f64()
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

fn restore_timed(p: &RestoreProof) -> Timed {
    let t = &p.timings;
    let work = (t.verify_ms + t.restore_ms + t.check_ms) as f64 / 1000.0;
    Timed {
        work,
        startup: t.total_ms as f64 / 1000.0 - work,
    }
}

fn chain_timed(p: &ChainProof) -> Timed {
    let t = &p.timings;
    let work = (t.verify_ms + t.full_restore_ms + t.increments_ms + t.check_ms) as f64 / 1000.0;
    Timed {
        work,
        startup: t.total_ms as f64 / 1000.0 - work,
    }
}

fn backup(
    keys: &Keys,
    dir: &Path,
    ro: &ConnConfig,
    name: &str,
    full: bool,
) -> Result<(BackupArtifact, f64), String> {
    let cfg = BackupConfig::new(
        dir,
        RunId::new(name).map_err(|e| e.to_string())?,
        keys.recipient.clone(),
        keys.signer.clone(),
        ro.clone(),
    );
    let policy = ChainPolicy {
        full_every: 1000,
        full,
    };
    let t = Instant::now();
    let a =
        chained_backup(&cfg, &policy, &mut |_| {}).map_err(|e| format!("backup {name}: {e}"))?;
    Ok((a, secs(t)))
}

fn prove_full(keys: &Keys, dir: &Path, a: &BackupArtifact) -> Result<Timed, String> {
    let name = &a.manifest.run_id;
    let p = restore_proof(
        &RestoreConfig::new(&a.path, &keys.secret, keys.pin.clone())
            .passphrase(PassphraseSource::File(keys.passfile.clone()))
            .record_to(dir.join(format!("{name}.restore-proof.json")), &keys.signer),
    )
    .map_err(|e| format!("restore proof of {name}: {e}"))?;
    Ok(restore_timed(&p))
}

fn chain_config(keys: &Keys, a: &BackupArtifact, dir: &Path, kind: &str) -> ChainProofConfig {
    ChainProofConfig::new(&a.path, &keys.secret, keys.pin.clone())
        .passphrase(PassphraseSource::File(keys.passfile.clone()))
        .record_to(
            dir.join(format!("{}.{kind}-proof.json", a.manifest.run_id)),
            &keys.signer,
        )
}

/// Adds `n` enacted units after `next` and a tenth as many ledger rows.
fn grow(c: &mut postgres::Client, words: &[&str], next: &mut u64, n: u64) -> Result<(), String> {
    let mut from = *next;
    let to = *next + n - 1;
    while from <= to {
        let upto = (from + BATCH - 1).min(to);
        generate_as(c, words, from, upto, "enacted")
            .map_err(|e| format!("generating units {from}–{upto}: {e}"))?;
        from = upto + 1;
    }
    *next = to + 1;
    c.execute(
        "INSERT INTO cutter_governance.review_decision (run_id, change_set_id, decision, payload, actor) \
         SELECT 'bench-run', 'cs-bench', 'approve', jsonb_build_object('unit', g), 'bench' \
           FROM generate_series(1, $1::int8) g",
        &[&((n / 10).max(1) as i64)],
    )
    .map_err(|e| db("ledger rows", &e))?;
    Ok(())
}

fn one_size(keys: &Keys, units: u64, o: &Args, work: &Path) -> Result<Figures, String> {
    let cluster = Cluster::start().map_err(|e| e.to_string())?;
    cluster
        .create_database(DB, Some("template0"))
        .map_err(|e| e.to_string())?;
    let mut c = cluster.connect(DB).map_err(|e| e.to_string())?;
    cutter_pg::schema::install_reference(&mut c).map_err(|e| e.to_string())?;
    cutter_pg::schema::install_baseline(&mut c).map_err(|e| e.to_string())?;
    let pw = Password::new(random_hex()?);
    cutter_pg::schema::set_login_password(&mut c, "cutter_verify", &pw)
        .map_err(|e| e.to_string())?;
    let ro = cluster
        .config(DB, "cutter_verify", Some(pw))
        .map_err(|e| e.to_string())?;
    let words: Vec<&str> = SENTENCES.iter().flat_map(|s| s.split(' ')).collect();
    let t = Instant::now();
    let mut next = 1u64;
    grow(&mut c, &words, &mut next, units)?;
    // One statement each: VACUUM cannot run inside the implicit transaction of a batch.
    for q in ["VACUUM (FREEZE, ANALYZE)", "CHECKPOINT"] {
        c.batch_execute(q).map_err(|e| db(q, &e))?;
    }
    let surface: i64 = c
        .query_one(
            "SELECT sum(pg_table_size(to_regclass(t)))::int8 FROM unnest($1::text[]) t",
            &[&cutter_core::mutation_surface()
                .iter()
                .map(cutter_core::TableName::quoted)
                .collect::<Vec<_>>()],
        )
        .map_err(|e| e.to_string())?
        .get(0);
    eprintln!(
        "bench: {units} units generated ({:.0} s), surface {:.0} MB",
        secs(t),
        surface as f64 / 1e6
    );
    let dir = work.join(format!("backups-{units}"));
    fs::create_dir(&dir).map_err(|e| e.to_string())?;

    let (full, full_backup) = backup(keys, &dir, &ro, "f0", true)?;
    let full_proof = prove_full(keys, &dir, &full)?;
    eprintln!(
        "bench: full backup {full_backup:.2} s, proof {:.2} s",
        full_proof.work
    );

    let mut ib = Vec::new();
    let mut ip = Vec::new();
    let mut is = Vec::new();
    let mut last = full;
    let (mut rows, mut bytes) = (0, 0);
    for i in 1..=o.runs {
        grow(&mut c, &words, &mut next, o.run_units)?;
        let (a, tb) = backup(keys, &dir, &ro, &format!("i{i}"), false)?;
        let chain = a.manifest.chain.as_ref().ok_or("no chain section")?;
        if chain.kind != LinkKind::Incremental {
            return Err(format!(
                "run {i}: a full backup was taken: {}",
                chain.reason
            ));
        }
        rows = chain.tables.values().map(|t| t.increment.rows).sum();
        bytes = a.manifest.size_bytes;
        let p = increment_proof(&chain_config(keys, &a, &dir, "increment"))
            .map_err(|e| format!("increment proof {i}: {e}"))?;
        let pt = chain_timed(&p);
        eprintln!(
            "bench: run {i}: incremental backup {tb:.3} s ({rows} rows), proof {:.3} s",
            pt.work
        );
        ib.push(tb);
        ip.push(pt.work);
        is.push(pt.startup);
        last = a;
    }
    let cp = chain_proof(&chain_config(keys, &last, &dir, "chain"))
        .map_err(|e| format!("chain proof: {e}"))?;
    let (equiv, _) = backup(keys, &dir, &ro, "g0", true)?;
    let equiv_full_proof = prove_full(keys, &dir, &equiv)?;
    drop(c);
    cluster.stop().map_err(|e| e.to_string())?;
    Ok(Figures {
        units,
        surface_mb: surface as f64 / 1e6,
        full_backup,
        full_proof,
        incr_backup: median(ib),
        incr_proof: Timed {
            work: median(ip),
            startup: median(is),
        },
        incr_rows: rows,
        incr_bytes: bytes,
        chain_proof: chain_timed(&cp),
        links: cp.links.len(),
        equiv_full_proof,
    })
}

fn pass(ok: bool) -> &'static str {
    if ok {
        "PASS"
    } else {
        "FAIL"
    }
}

/// Runs the benchmark.
pub fn main(o: &Args) -> Result<(), String> {
    let work = tempfile::tempdir().map_err(|e| e.to_string())?;
    let keydir = work.path().join("keys");
    fs::create_dir(&keydir).map_err(|e| e.to_string())?;
    let (k, s, passfile) = bench_keys(&keydir)?;
    let keys = Keys {
        recipient: load_recipient(&k.public_key, &k.fingerprint).map_err(|e| e.to_string())?,
        signer: ManifestSigner::load(&s.secret_key, &s.fingerprint, &PassphraseSource::None)
            .map_err(|e| e.to_string())?,
        secret: k.secret_key.clone(),
        pin: s.fingerprint.clone(),
        passfile,
    };
    let small = one_size(&keys, (o.units / 10).max(1), o, work.path())?;
    let large = one_size(&keys, o.units, o, work.path())?;

    println!(
        "backup-incremental: --units {} --run-units {} --runs {} (release; wall clock, in process; \
         this machine is shared, so figures are noisy; load average {})",
        o.units,
        o.run_units,
        o.runs,
        fs::read_to_string("/proc/loadavg").unwrap_or_default().trim()
    );
    println!(
        "{:>9} {:>9} | {:>9} {:>9} {:>8} | {:>9} {:>9} {:>8} {:>7} {:>10} | {:>9} {:>8} {:>5} | {:>9} {:>8}",
        "units", "surf MB", "full bk s", "proof s", "start s", "incr bk s", "proof s", "start s", "rows", "bytes",
        "chain s", "start s", "links", "eq.full s", "start s"
    );
    for f in [&small, &large] {
        println!(
            "{:>9} {:>9.0} | {:>9.3} {:>9.3} {:>8.2} | {:>9.3} {:>9.3} {:>8.2} {:>7} {:>10} | {:>9.3} {:>8.2} {:>5} | {:>9.3} {:>8.2}",
            f.units, f.surface_mb, f.full_backup, f.full_proof.work, f.full_proof.startup,
            f.incr_backup, f.incr_proof.work, f.incr_proof.startup, f.incr_rows, f.incr_bytes,
            f.chain_proof.work, f.chain_proof.startup, f.links,
            f.equiv_full_proof.work, f.equiv_full_proof.startup
        );
    }
    let per_run = |f: &Figures| f.incr_backup + f.incr_proof.work;
    let full_run = large.full_backup + large.full_proof.work;
    let r1 = per_run(&large) / full_run;
    let r2 = per_run(&large) / per_run(&small);
    let r3 = large.chain_proof.work / large.equiv_full_proof.work;
    println!(
        "target: at {} units, incremental backup + increment proof ≤ {:.0}% of full backup + full proof: \
         {:.3} s vs {:.3} s = {:.2}%  {}",
        large.units,
        INCR_VS_FULL * 100.0,
        per_run(&large),
        full_run,
        r1 * 100.0,
        pass(r1 <= INCR_VS_FULL)
    );
    println!(
        "target: incremental per-run time at {} units within {FLAT}× of {} units: {:.3} s vs {:.3} s = {:.2}×  {}",
        large.units,
        small.units,
        per_run(&large),
        per_run(&small),
        r2,
        pass(r2 <= FLAT)
    );
    println!(
        "target: chain proof ({} links) within {CHAIN_VS_FULL}× of the restore proof of the equivalent full artifact: \
         {:.3} s vs {:.3} s = {:.2}×  {}",
        large.links,
        large.chain_proof.work,
        large.equiv_full_proof.work,
        r3,
        pass(r3 <= CHAIN_VS_FULL)
    );
    Ok(())
}
