//! `cargo xtask bench ledger --units N`: how fast the governance ledger is, on a
//! throwaway cluster with the reference schema, the baseline and migration G1:
//!
//! * leg_b_record of an N-unit change set (cut by cut_leg_a first, not timed), in its
//!   phase transaction as `cutter_exec`, commit included;
//! * write_verify of the same change set, reading as `cutter_verify`, commit included;
//! * verify_ledger over every ledger row (≈ N + 5), as `cutter_verify`.
//!
//! Targets: leg_b_record and write_verify each within a few seconds for N = 100 000
//! (≤ 5 s), verify_ledger ≥ 100 000 rows/s. Run it in release mode:
//! `cargo run --release -p xtask -- bench ledger --units 100000`.

use std::time::{Duration, Instant};

use cutter_core::{Phase, RunId};
use cutter_pg::fixtures;
use cutter_pg::schema::{EXEC_ROLE, VERIFY_ROLE};
use cutter_pg::testing::{TestCluster, TEMPLATE_DB};
use cutter_pg::Target;

const DOC: &str = "bench-ledger";
const PHASE_LIMIT: Duration = Duration::from_secs(5);
const VERIFY_RATE: f64 = 100_000.0;

/// A driver error with the server's message and SQLSTATE.
fn server(what: &str, e: &postgres::Error) -> String {
    match e.as_db_error() {
        Some(db) => format!("{what}: {} (SQLSTATE {})", db.message(), db.code().code()),
        None => format!("{what}: {e}"),
    }
}

/// Runs the ledger benchmark: a change set of `units` units (at least 1), verify_ledger
/// timed `rounds` times (at least 1), best kept.
pub fn run(units: u64, rounds: u32) -> Result<(), String> {
    let pg = |e: cutter_pg::Error| e.to_string();
    let gov = |e: cutter_governance::Error| e.to_string();
    eprintln!("bench: starting a throwaway cluster (reference schema + baseline template)");
    let tc = TestCluster::start().map_err(pg)?;
    let cluster = tc.cluster();
    let coords = tc.coordinates();
    let db = "bench_ledger";
    cluster.create_database(db, Some(TEMPLATE_DB)).map_err(pg)?;
    cutter_governance::install(&mut cluster.connect(db).map_err(pg)?).map_err(gov)?;

    eprintln!("bench: generating and validating the {}-unit plan", units);
    let plan = fixtures::scale_plan(DOC, units).map_err(|r| r.to_string())?;
    let mut target = Target::connect(&coords.config(db, EXEC_ROLE).map_err(pg)?).map_err(pg)?;
    let run = RunId::new("bench-ledger-run").map_err(|e| e.to_string())?;
    let auth = cutter_pg::testing::rehearsal_authorization(
        &mut cluster.connect(db).map_err(|x| x.to_string())?,
        run,
        plan.digest(),
    )
    .map_err(|e| e.to_string())?;
    eprintln!("bench: cut_leg_a (not timed)");
    let t = Instant::now();
    target.cut_leg_a(&auth, &plan, &mut |_| {}).map_err(pg)?;
    let leg_a = t.elapsed();
    let mut admin = cluster.connect(db).map_err(pg)?;
    for sql in ["VACUUM ANALYZE", "CHECKPOINT"] {
        admin.batch_execute(sql).map_err(|e| server(sql, &e))?;
    }
    drop(admin);

    eprintln!("bench: leg_b_record");
    let t = Instant::now();
    let legb = {
        let mut pt = target
            .phase_transaction(&auth, Phase::LegBRecord)
            .map_err(pg)?;
        let r = cutter_governance::leg_b_record(pt.client(), &auth, &plan, "bench").map_err(gov)?;
        pt.commit().map_err(pg)?;
        r
    };
    let leg_b = t.elapsed();
    if legb.units != units {
        return Err(format!(
            "leg_b_record recorded {} units, expected {}",
            legb.units, units
        ));
    }

    eprintln!("bench: write_verify");
    let mut verify = coords
        .config(db, VERIFY_ROLE)
        .map_err(pg)?
        .connect()
        .map_err(|e| e.to_string())?;
    let t = Instant::now();
    let v = {
        let mut pt = target
            .phase_transaction(&auth, Phase::WriteVerify)
            .map_err(pg)?;
        let r = cutter_governance::write_verify(pt.client(), &mut verify, &auth, &plan, "bench")
            .map_err(gov)?;
        pt.commit().map_err(pg)?;
        r
    };
    let write_verify = t.elapsed();
    if v.facts.matched != units {
        return Err(format!(
            "write_verify matched {} units, expected {}",
            v.facts.matched, units
        ));
    }
    drop(target);

    eprintln!("bench: verify_ledger ({} passes)", rounds);
    let mut best = Duration::MAX;
    let mut rows = 0;
    for _ in 0..rounds {
        let t = Instant::now();
        let report = cutter_governance::verify_ledger(&mut verify).map_err(gov)?;
        best = best.min(t.elapsed());
        report.ensure_intact().map_err(gov)?;
        rows = report.rows();
    }
    let rss = cutter_testkit::peak_rss_mib();
    drop(verify);
    drop(tc);

    let secs = |d: Duration| d.as_secs_f64();
    let mut ok = true;
    println!();
    println!(
        "bench ledger: {} units, bodies ~{} bytes (cut_leg_a, not timed: {:.2}s)",
        units,
        fixtures::BODY_BYTES,
        secs(leg_a)
    );
    println!("{:<16} {:>9} {:>12}  target", "step", "seconds", "rows/s");
    let mut phase = |name: &str, d: Duration, n: u64| {
        let pass = d <= PHASE_LIMIT;
        ok &= pass;
        println!(
            "{name:<16} {:>9.2} {:>12.0}  ≤ {}s for the change set  {}",
            secs(d),
            n as f64 / secs(d),
            PHASE_LIMIT.as_secs(),
            if pass { "PASS" } else { "FAIL" }
        );
    };
    phase("leg_b_record", leg_b, units + 3);
    phase("write_verify", write_verify, units);
    let rate = rows as f64 / secs(best);
    let pass = rate >= VERIFY_RATE;
    ok &= pass;
    println!(
        "{:<16} {:>9.2} {:>12.0}  ≥ {VERIFY_RATE:.0} rows/s ({rows} rows, best of {})  {}",
        "verify_ledger",
        secs(best),
        rate,
        rounds,
        if pass { "PASS" } else { "FAIL" }
    );
    if let Some(mib) = rss {
        println!("peak memory of this process (VmHWM): {mib:.1} MiB (the plan is held in memory)");
    }
    if ok {
        Ok(())
    } else {
        Err("benchmark targets missed".into())
    }
}
