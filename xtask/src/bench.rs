//! `cargo xtask bench write --units N`: how fast cut_leg_a writes a plan, against two
//! anchors measured in the same run, on the same data, each into a fresh database copied
//! from the same template (reference schema + baseline) on one throwaway cluster:
//!
//! * (a) the seed tool's way: one `SELECT public.fn_iu_create(…)` per row, fed to the real
//!   `psql` through stdin, in one transaction;
//! * (b) the set-based limit: binary `COPY` into a staged temporary table, then one
//!   server-side `INSERT … SELECT` into both tables (the COPY counted in its time).
//!
//! The plan is generated deterministically (bodies of ~1.5 KB of Vietnamese text) and
//! streamed, never held whole in memory. Prints units/s, the ratios against the targets
//! (≥ 0.85 × (b), ≥ 2.5 × (a)) and the peak resident memory of this process (VmHWM).
//! Run it in release mode: `cargo run --release -p xtask -- bench write --units 100000`.

use std::io::{BufWriter, Write as _};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use cutter_core::RunId;
use cutter_pg::fixtures;
use cutter_pg::schema::EXEC_ROLE;
use cutter_pg::testing::{TestCluster, TEMPLATE_DB};
use cutter_pg::{BatchLimits, Target};

use postgres::binary_copy::BinaryCopyInWriter;
use postgres::types::Type;

const DOC: &str = "bench-doc";
const TARGET_VS_B: f64 = 0.85;
const TARGET_VS_A: f64 = 2.5;
const MEMORY_LIMIT_MIB: f64 = 128.0;

/// `bench write`'s options.
#[derive(Debug, clap::Args)]
pub struct WriteArgs {
    /// Units in the plan.
    #[arg(long, value_name = "N", default_value_t = 100_000, value_parser = crate::count)]
    units: u64,
    /// cut_leg_a batch size in rows.
    #[arg(long, value_name = "R", default_value_t = BatchLimits::default().rows as u64, value_parser = crate::count)]
    batch_rows: u64,
    /// cut_leg_a batch size in bytes.
    #[arg(long, value_name = "B", default_value_t = BatchLimits::default().bytes as u64, value_parser = crate::count)]
    batch_bytes: u64,
    /// Do not measure anchor (a) (psql, one call per row).
    #[arg(long)]
    skip_psql: bool,
}

struct Measured {
    name: &'static str,
    what: String,
    elapsed: Duration,
}

impl Measured {
    fn rate(&self, units: u64) -> f64 {
        units as f64 / self.elapsed.as_secs_f64()
    }
}

/// `cargo xtask bench <benchmark>`.
#[derive(Debug, clap::Subcommand)]
pub enum Bench {
    /// cut_leg_a throughput against psql-per-row and COPY+INSERT…SELECT, and peak memory.
    Write(WriteArgs),
    /// leg_b_record and write_verify of an N-unit change set, and verify_ledger
    /// throughput.
    Ledger {
        /// Units in the change set.
        #[arg(long, value_name = "N", default_value_t = 100_000, value_parser = crate::count)]
        units: u64,
        /// verify_ledger passes to time, best kept.
        #[arg(long, value_name = "R", default_value_t = 3, value_parser = clap::value_parser!(u32).range(1..))]
        rounds: u32,
    },
    /// Compensation A (soft and hard delete) of an N-unit change set.
    Compensation {
        /// Units in the change set.
        #[arg(long, value_name = "N", default_value_t = 100_000, value_parser = crate::count)]
        units: u64,
        /// Rounds per revert mode, best kept.
        #[arg(long, value_name = "R", default_value_t = 1, value_parser = clap::value_parser!(u32).range(1..=100))]
        rounds: u32,
    },
    /// The pre-write backup against pg_dump and pg_dump | gpg, and the restore proof.
    Backup(crate::bench_backup::Args),
    /// Full and incremental backups and their proofs, per run, at N/10 and N units.
    #[command(name = "backup-incremental")]
    BackupIncremental(crate::bench_incremental::Args),
    /// The document cutter over the whole corpus, best of N rounds.
    Cut {
        /// Rounds, best kept.
        #[arg(long, value_name = "N", default_value_t = 10, value_parser = clap::value_parser!(u32).range(1..))]
        rounds: u32,
    },
    /// The release cutter binary's live run of an N-unit plan: phase times and its peak
    /// memory (target < 128 MiB at 100000 units).
    Run {
        /// Units in the plan.
        #[arg(long, value_name = "N", default_value_t = 100_000, value_parser = crate::count)]
        units: u64,
    },
    /// A first load of N units, then an amendment rewording K of them: `plan diff`'s
    /// time and both runs' phases (target: the amendment's phases after the backup
    /// <= 10% of the first load's at K = 1% of N).
    Amend {
        /// Units of the document.
        #[arg(long, value_name = "N", default_value_t = 100_000, value_parser = crate::count)]
        units: u64,
        /// Units the amendment rewords.
        #[arg(long, value_name = "K", default_value_t = 1_000, value_parser = crate::count)]
        changed: u64,
    },
    /// `cutter db upgrade` of the earlier tool's database grown to N units, while a probe
    /// writes to every public table each 50 ms: step times and the longest probe wait
    /// (target < 1 s).
    Upgrade {
        /// Units of the grown database (at least 158, the baseline).
        #[arg(long, value_name = "N", default_value_t = 1_000_000, value_parser = crate::count)]
        units: u64,
    },
}

/// `cargo xtask bench <benchmark> …`.
pub fn main(b: Bench) -> Result<(), String> {
    match b {
        Bench::Write(o) => write(&o),
        Bench::Ledger { units, rounds } => crate::bench_ledger::run(units, rounds),
        Bench::Compensation { units, rounds } => crate::bench_compensation::run(units, rounds),
        Bench::Backup(o) => crate::bench_backup::main(&o),
        Bench::BackupIncremental(o) => crate::bench_incremental::main(&o),
        Bench::Cut { rounds } => crate::bench_cut::main(rounds),
        Bench::Run { units } => crate::bench_run::main(units),
        Bench::Amend { units, changed } => crate::bench_amend::main(units, changed),
        Bench::Upgrade { units } => crate::bench_upgrade::run(units),
    }
}

fn write(o: &WriteArgs) -> Result<(), String> {
    let batch = BatchLimits {
        rows: o.batch_rows as usize,
        bytes: o.batch_bytes as usize,
    };
    let e = |e: cutter_pg::Error| e.to_string();
    eprintln!("bench: starting a throwaway cluster (reference schema + baseline template)");
    let tc = TestCluster::start().map_err(e)?;
    let cluster = tc.cluster();
    let coords = tc.coordinates();

    eprintln!(
        "bench: validating and digesting the {}-unit plan (streamed)",
        o.units
    );
    let t = Instant::now();
    let plan = fixtures::scale_streamed(DOC, o.units).map_err(|r| r.to_string())?;
    let validate = t.elapsed();

    let mut results = Vec::new();
    let fresh = |name: &str| -> Result<String, String> {
        cluster
            .create_database(name, Some(TEMPLATE_DB))
            .map_err(e)?;
        let mut c = cluster.connect(name).map_err(e)?;
        c.batch_execute("CHECKPOINT").map_err(|x| x.to_string())?;
        Ok(name.to_string())
    };
    let check_count = |db: &str, expect: u64| -> Result<(), String> {
        let mut c = cluster.connect(db).map_err(e)?;
        let n: i64 = c
            .query_one(
                "SELECT (SELECT count(*) FROM public.information_unit) + (SELECT count(*) FROM public.unit_version)",
                &[],
            )
            .map_err(|x| x.to_string())?
            .get(0);
        if n as u64 != expect {
            return Err(format!(
                "{db}: expected {expect} rows in information_unit + unit_version, found {n}"
            ));
        }
        Ok(())
    };
    let expected_rows = 158 + 165 + 2 * o.units;

    // cut_leg_a through the adapter, as cutter_exec.
    {
        let db = fresh("bench_adapter")?;
        let mut target = Target::connect(&coords.config(&db, EXEC_ROLE).map_err(e)?).map_err(e)?;
        target.set_batch_limits(batch);
        let run = RunId::new("bench-run").map_err(|x| x.to_string())?;
        let auth = cutter_pg::testing::rehearsal_authorization(
            &mut cluster.connect(&db).map_err(|x| x.to_string())?,
            run,
            plan.digest(),
        )
        .map_err(|x| x.to_string())?;
        eprintln!(
            "bench: cut_leg_a ({} rows/batch, {} bytes/batch)",
            batch.rows, batch.bytes
        );
        let t = Instant::now();
        let report = target
            .cut_leg_a_streamed(&auth, &plan, &mut |_| {})
            .map_err(e)?;
        let elapsed = t.elapsed();
        if report.units_created != o.units {
            return Err(format!(
                "cut_leg_a created {} units, expected {}",
                report.units_created, o.units
            ));
        }
        drop(target);
        check_count(&db, expected_rows)?;
        results.push(Measured {
            name: "cut_leg_a",
            what: format!(
                "adapter, fn_iu_create_batch, {} round trips, as cutter_exec",
                report.batches
            ),
            elapsed,
        });
    }

    // (b) COPY into a staged table + one INSERT … SELECT into both tables.
    {
        let db = fresh("bench_copy")?;
        let mut c = cluster.connect(&db).map_err(e)?;
        eprintln!("bench: anchor (b) COPY + INSERT … SELECT");
        let t = Instant::now();
        copy_insert_select(&mut c, o.units).map_err(|x| format!("anchor (b): {x}"))?;
        let elapsed = t.elapsed();
        drop(c);
        check_count(&db, expected_rows)?;
        results.push(Measured {
            name: "(b) COPY+INSERT…SELECT",
            what: "binary COPY to a temp table, one INSERT … SELECT into both tables, as owner"
                .into(),
            elapsed,
        });
    }

    // (a) psql, one SELECT fn_iu_create(…) per row.
    if !o.skip_psql {
        let db = fresh("bench_psql")?;
        // As the superuser: since V5 the writer may not call the per-row fn_iu_create,
        // and the anchor measures its cost, not the gate's.
        let config = coords.config(&db, &coords.superuser).map_err(e)?;
        eprintln!("bench: anchor (a) psql, one SELECT public.fn_iu_create(…) per row");
        let t = Instant::now();
        psql_per_row(&config, o.units)?;
        let elapsed = t.elapsed();
        check_count(&db, expected_rows)?;
        results.push(Measured {
            name: "(a) psql per row",
            what: "one SELECT public.fn_iu_create(…) per row through psql stdin, one transaction, as the superuser".into(),
            elapsed,
        });
    }

    let rss = cutter_testkit::peak_rss_mib();
    drop(tc);

    let rate = |name: &str| {
        results
            .iter()
            .find(|m| m.name == name)
            .map(|m| m.rate(o.units))
    };
    let adapter = rate("cut_leg_a").unwrap_or(0.0);
    println!();
    println!(
        "bench write: {} units, bodies ~{} bytes of Vietnamese text, plan validated+digested (streamed) in {:.2}s",
        o.units,
        fixtures::BODY_BYTES,
        validate.as_secs_f64()
    );
    println!("{:<24} {:>10} {:>12}  how", "method", "seconds", "units/s");
    for m in &results {
        println!(
            "{:<24} {:>10.2} {:>12.0}  {}",
            m.name,
            m.elapsed.as_secs_f64(),
            m.rate(o.units),
            m.what
        );
    }
    let mut ok = true;
    let mut verdict = |label: &str, ratio: Option<f64>, target: f64| match ratio {
        Some(r) => {
            let pass = r >= target;
            ok &= pass;
            println!(
                "ratio cut_leg_a / {label:<22} {r:>6.2}×  (target ≥ {target}×)  {}",
                if pass { "PASS" } else { "FAIL" }
            );
        }
        None => println!("ratio cut_leg_a / {label:<22}    n/a  (not measured)"),
    };
    verdict(
        "(b) COPY+INSERT…SELECT",
        rate("(b) COPY+INSERT…SELECT").map(|b| adapter / b),
        TARGET_VS_B,
    );
    verdict(
        "(a) psql per row",
        rate("(a) psql per row").map(|a| adapter / a),
        TARGET_VS_A,
    );
    match rss {
        Some(mib) => {
            let pass = mib < MEMORY_LIMIT_MIB;
            ok &= pass;
            println!(
                "peak memory of this process (VmHWM): {mib:.1} MiB  (limit < {MEMORY_LIMIT_MIB} MiB)  {}",
                if pass { "PASS" } else { "FAIL" }
            );
        }
        None => println!("peak memory: /proc/self/status not readable"),
    }
    if ok {
        Ok(())
    } else {
        Err("benchmark targets missed".into())
    }
}

/// Anchor (b): binary COPY of the plan into a temporary table, then one INSERT … SELECT
/// into both tables, in one transaction.
fn copy_insert_select(c: &mut postgres::Client, units: u64) -> Result<(), postgres::Error> {
    let mut tx = c.transaction()?;
    tx.batch_execute(
        "CREATE TEMPORARY TABLE stage (n bigint, addr text, title text, body text, actor text, \
         kind text, st text, pub text, owner text) ON COMMIT DROP",
    )?;
    {
        let sink = tx.copy_in("COPY stage FROM STDIN (FORMAT binary)")?;
        let types = [
            Type::INT8,
            Type::TEXT,
            Type::TEXT,
            Type::TEXT,
            Type::TEXT,
            Type::TEXT,
            Type::TEXT,
            Type::TEXT,
            Type::TEXT,
        ];
        let mut w = BinaryCopyInWriter::new(sink, &types);
        for (i, r) in fixtures::scale_rows(DOC, units).enumerate() {
            let n = i as i64 + 1;
            w.write(&[
                &n,
                &r.canonical_address,
                &r.title,
                &r.body,
                &r.actor,
                &r.unit_kind,
                &r.section_type,
                &r.publication_type,
                &r.owner_ref,
            ])?;
        }
        w.finish()?;
    }
    let change_set = "cs-bench-copy";
    tx.execute(
        "WITH ins AS ( \
           INSERT INTO public.information_unit (canonical_address, title, unit_kind_ref, identity_profile, \
                  publication_type, owner_ref, document_id, source_version_id, lifecycle_status, change_set_id, created_by) \
           SELECT s.addr, s.title, 'vocab.unit_kind.' || s.kind, \
                  jsonb_build_object('primary_section_type_ref', 'vocab.section_type.' || s.st), \
                  s.pub, s.owner, $1, $2, 'draft', $3, s.actor \
             FROM stage s ORDER BY s.n \
           RETURNING id, canonical_address) \
         INSERT INTO public.unit_version (information_unit_id, version_no, body, body_sha256, lifecycle_status, created_by) \
         SELECT ins.id, 1, s.body, encode(sha256(convert_to(s.body, 'UTF8')), 'hex'), 'draft', s.actor \
           FROM ins JOIN stage s ON s.addr = ins.canonical_address",
        &[&DOC, &"v1", &change_set],
    )?;
    tx.commit()
}

fn literal(s: &str) -> String {
    format!("'{}'", s.replace('\'', "''"))
}

fn opt_literal(s: Option<&str>) -> String {
    s.map_or_else(|| "NULL".to_string(), literal)
}

/// Anchor (a): the real psql, one `SELECT public.fn_iu_create(…)` per row on stdin, in one
/// transaction, connecting as the configuration says (password through a private
/// PGPASSFILE, never on the command line).
fn psql_per_row(config: &cutter_pg::ConnConfig, units: u64) -> Result<(), String> {
    let psql = cutter_pg::pg_program("psql").map_err(|e| e.to_string())?;
    let env = config.child_env().map_err(|e| e.to_string())?;
    let mut cmd = Command::new(&psql);
    cmd.args([
        "-X",
        "-q",
        "-A",
        "-t",
        "-v",
        "ON_ERROR_STOP=1",
        "--single-transaction",
        "-o",
        "/dev/null",
    ])
    .stdin(Stdio::piped())
    .stdout(Stdio::null())
    .stderr(Stdio::piped());
    env.apply(&mut cmd);
    let mut child = cmd
        .spawn()
        .map_err(|e| format!("cannot start {}: {e}", psql.display()))?;
    let stdin = child.stdin.take().ok_or("psql has no stdin")?;
    let mut w = BufWriter::with_capacity(1 << 20, stdin);
    let change_set = "cs-bench-psql";
    let mut write = || -> std::io::Result<()> {
        for r in fixtures::scale_rows(DOC, units) {
            writeln!(
                w,
                "SELECT public.fn_iu_create({}, {}, {}, {}, {}, {}, {}, {}, {}, {}, {});",
                literal(&r.canonical_address),
                literal(&r.title),
                literal(&r.body),
                literal(&r.actor),
                literal(&r.unit_kind),
                opt_literal(r.section_type.as_deref()),
                literal(&r.publication_type),
                literal(DOC),
                literal("v1"),
                opt_literal(r.owner_ref.as_deref()),
                literal(change_set),
            )?;
        }
        w.flush()
    };
    let written = write();
    drop(w);
    let out = child
        .wait_with_output()
        .map_err(|e| format!("waiting for psql: {e}"))?;
    if !out.status.success() {
        return Err(format!(
            "psql failed with {}: {}",
            out.status,
            String::from_utf8_lossy(&out.stderr).trim()
        ));
    }
    written.map_err(|e| format!("writing to psql: {e}"))
}
