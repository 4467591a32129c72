//! `cargo xtask bench upgrade --units N`: `cutter db upgrade` of the earlier tool's
//! production database grown to N units, on a throwaway cluster, while a probe
//! connection writes one row to each public table of the mutation surface every 50 ms.
//!
//! Prints each step's time and the longest wait of the probe during it (the longest
//! lock the upgrade made production wait for). Target: no probe write waits 1 s or
//! more. Run it in release mode:
//! `cargo run --release -p xtask -- bench upgrade --units 1000000`.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use cutter_pg::migrate::{self, UpgradeOptions};
use cutter_pg::testing::TestCluster;

const PROBE_EVERY: Duration = Duration::from_millis(50);
const TARGET: Duration = Duration::from_secs(1);

/// One probe write: when it started (since the bench's epoch) and how long it took.
#[derive(Clone, Copy, Debug)]
struct Probe {
    at: Duration,
    took: Duration,
}

fn server(what: &str, e: &postgres::Error) -> String {
    match e.as_db_error() {
        Some(db) => format!("{what}: {} (SQLSTATE {})", db.message(), db.code().code()),
        None => format!("{what}: {e}"),
    }
}

/// Grows the legacy fixture to `units` units: one version, one lifecycle log row and
/// one affected ledger row (written the earlier tool's way) per unit.
const GROW_SQL: &str = "
INSERT INTO public.information_unit
    (id, canonical_address, title, unit_kind_ref, identity_profile, publication_type,
     document_id, source_version_id, lifecycle_status, change_set_id, created_by)
SELECT g, 'bench-upgrade/dieu-' || g, 'Điều ' || g, 'vocab.unit_kind.law_unit',
       '{\"primary_section_type_ref\": \"vocab.section_type.article\"}'::jsonb, 'law',
       'bench-upgrade', 'v1', 'enacted', 'cs-bench-' || (g / 1000), 'bench'
  FROM generate_series(159, $1::bigint) AS g;
INSERT INTO public.unit_version
    (id, information_unit_id, version_no, body, body_sha256, lifecycle_status, created_by)
SELECT g + 7, g, 1, repeat('Mọi người đều bình đẳng trước pháp luật. ', 4),
       encode(sha256(convert_to(repeat('Mọi người đều bình đẳng trước pháp luật. ', 4), 'UTF8')), 'hex'),
       'enacted', 'bench'
  FROM generate_series(159, $1::bigint) AS g;
INSERT INTO public.iu_lifecycle_log
    (information_unit_id, from_status, to_status, actor, run_id, change_set_id, reason)
SELECT g, 'draft', 'enacted', 'bench', 'bench-upgrade', 'cs-bench-' || (g / 1000), 'lifecycle_enact'
  FROM generate_series(159, $1::bigint) AS g;
INSERT INTO cutter_governance.cut_change_set_affected_row
    (change_set_id, information_unit_id, canonical_address, body_sha256)
SELECT 'cs-bench-' || (g / 1000), g, 'bench-upgrade/dieu-' || g, repeat('ab', 32)
  FROM generate_series(159, $1::bigint) AS g;
";

/// Runs the benchmark.
pub fn run(units: u64) -> Result<(), String> {
    if units < 158 {
        return Err("--units must be at least 158 (the fixture's baseline)".into());
    }
    let pg = |e: cutter_pg::Error| e.to_string();
    eprintln!("bench: starting a throwaway cluster");
    let tc = TestCluster::start().map_err(pg)?;
    let cluster = tc.cluster();
    let db = "bench_upgrade";
    cluster.create_database(db, Some("template0")).map_err(pg)?;
    let mut owner = cluster.connect(db).map_err(pg)?;
    cutter_pg::fixtures::install_legacy(&mut owner).map_err(pg)?;
    eprintln!("bench: growing the earlier tool's database to {units} units");
    let t = Instant::now();
    for statement in GROW_SQL.split(";\n").filter(|s| !s.trim().is_empty()) {
        owner
            .execute(statement, &[&(units as i64)])
            .map_err(|e| server("growing the fixture", &e))?;
    }
    for sql in [
        "SELECT setval(pg_get_serial_sequence('public.information_unit', 'id'), (SELECT max(id) FROM public.information_unit))",
        "SELECT setval(pg_get_serial_sequence('public.unit_version', 'id'), (SELECT max(id) FROM public.unit_version))",
        "VACUUM ANALYZE",
        "CHECKPOINT",
    ] {
        owner.batch_execute(sql).map_err(|e| server(sql, &e))?;
    }
    let sizes: Vec<(String, i64, String)> = owner
        .query(
            "SELECT c.relname::text, c.reltuples::bigint, pg_size_pretty(pg_total_relation_size(c.oid)) \
               FROM pg_class c WHERE c.oid IN ('public.information_unit'::regclass, 'public.unit_version'::regclass, \
                    'public.iu_lifecycle_log'::regclass, 'cutter_governance.cut_change_set_affected_row'::regclass) \
              ORDER BY 1",
            &[],
        )
        .map_err(|e| server("reading table sizes", &e))?
        .iter()
        .map(|r| (r.get(0), r.get(1), r.get(2)))
        .collect();
    eprintln!("bench: fixture ready in {:.1} s", t.elapsed().as_secs_f64());

    // The probe: production writing while the upgrade runs.
    let epoch = Instant::now();
    let stop = Arc::new(AtomicBool::new(false));
    let probes: Arc<Mutex<Vec<Probe>>> = Arc::default();
    let mut probe_conn = cluster.connect(db).map_err(pg)?;
    let probe = {
        let (stop, probes) = (stop.clone(), probes.clone());
        std::thread::spawn(move || -> Result<(), String> {
            let mut n: i64 = 0;
            while !stop.load(Ordering::Relaxed) {
                n += 1;
                let at = epoch.elapsed();
                let t = Instant::now();
                probe_conn
                    .execute(
                        "WITH u AS (INSERT INTO public.information_unit \
                             (canonical_address, title, unit_kind_ref, identity_profile, publication_type, \
                              document_id, source_version_id, created_by) \
                           VALUES ('bench-probe/' || $1::bigint, 'probe', 'vocab.unit_kind.law_unit', \
                                   '{\"primary_section_type_ref\": \"vocab.section_type.article\"}', 'law', \
                                   'bench-probe', 'v1', 'probe') RETURNING id), \
                         v AS (INSERT INTO public.unit_version (information_unit_id, version_no, body, body_sha256, created_by) \
                               SELECT id, 1, 'p', repeat('0', 64), 'probe' FROM u RETURNING 1) \
                         INSERT INTO public.iu_lifecycle_log (information_unit_id, to_status, actor, reason) \
                         SELECT id, 'draft', 'probe', 'probe' FROM u",
                        &[&n],
                    )
                    .map_err(|e| server("the probe's write", &e))?;
                let took = t.elapsed();
                if let Ok(mut p) = probes.lock() {
                    p.push(Probe { at, took });
                }
                std::thread::sleep(PROBE_EVERY.saturating_sub(took));
            }
            Ok(())
        })
    };
    std::thread::sleep(Duration::from_millis(500));
    eprintln!("bench: cutter db upgrade (migrate::upgrade as the owner)");
    let mut starts: Vec<(String, Duration)> = Vec::new();
    let options = UpgradeOptions {
        lock_timeout: Duration::from_secs(10),
        install: false,
    };
    let t = Instant::now();
    let result = migrate::upgrade(&mut owner, &options, &mut |step| {
        starts.push((step.to_string(), epoch.elapsed()));
    });
    let total = t.elapsed();
    let end = epoch.elapsed();
    std::thread::sleep(Duration::from_millis(500));
    stop.store(true, Ordering::Relaxed);
    probe
        .join()
        .map_err(|_| "the probe thread panicked".to_string())??;
    let report = result.map_err(pg)?;
    let probes = probes.lock().map_err(|_| "probe log poisoned")?.clone();

    println!("\ncutter db upgrade benchmark: --units {units}");
    let version: String = owner
        .query_one("SELECT current_setting('server_version')", &[])
        .map_err(|e| server("server_version", &e))?
        .get(0);
    println!(
        "machine: {} CPUs; PostgreSQL {version}",
        std::thread::available_parallelism().map_or(0, |n| n.get())
    );
    for (t, rows, size) in &sizes {
        println!("  {t:<30} {rows:>10} rows {size:>10}");
    }
    println!(
        "\n{:<72} {:>10} {:>14} {:>7}",
        "step", "wall ms", "probe max ms", "probes"
    );
    let mut worst = Duration::ZERO;
    for (i, (step, from)) in starts.iter().enumerate() {
        let to = starts.get(i + 1).map_or(end, |s| s.1);
        let during: Vec<&Probe> = probes
            .iter()
            .filter(|p| p.at + p.took > *from && p.at < to)
            .collect();
        let max = during.iter().map(|p| p.took).max().unwrap_or_default();
        worst = worst.max(max);
        let ms = report.done.get(i).map_or(0, |d| d.millis);
        println!(
            "{step:<72} {ms:>10} {:>14.1} {:>7}",
            max.as_secs_f64() * 1000.0,
            during.len()
        );
    }
    let overall = probes.iter().map(|p| p.took).max().unwrap_or_default();
    println!(
        "\nupgrade: {} → version {} in {:.2} s; {} probe writes (one row to each of information_unit, unit_version, iu_lifecycle_log every {} ms), longest {:.1} ms",
        report.from,
        report.to,
        total.as_secs_f64(),
        probes.len(),
        PROBE_EVERY.as_millis(),
        overall.as_secs_f64() * 1000.0
    );
    let pass = overall < TARGET && worst < TARGET && !probes.is_empty();
    println!(
        "target: longest probe wait < {} ms: {}",
        TARGET.as_millis(),
        if pass { "PASS" } else { "FAIL" }
    );
    drop(owner);
    tc.stop().map_err(pg)?;
    if pass {
        Ok(())
    } else {
        Err("a production write waited 1 s or more during the upgrade".into())
    }
}
