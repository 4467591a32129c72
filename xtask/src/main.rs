//! `cargo xtask <command>`: the project's chores, in Rust. Run `cargo xtask help`.

use std::process::{Command, ExitCode};

mod bench;
mod bench_backup;
mod bench_compensation;
mod bench_cut;
mod bench_ledger;
mod bench_run;
mod bench_upgrade;
mod faults;
mod prereq;
mod proof;
mod proof_compensation;

const HELP: &str = "\
cargo xtask <command>

Commands:
  test             install missing prerequisites, then run every test (the README's test command)
  check-layering   fail if cutter-core depends on an I/O crate (postgres, pgp, tempfile, tokio)
  proof --rollback-only [--database-url URL --expect-system-identifier ID]
                   run the real SQL of every mutating phase (cut_leg_a, leg_b_record and
                   write_verify through cutter-governance, lifecycle_enact) and of
                   compensation A and B (cutter-compensation) in transactions that always
                   roll back, assert each contract, the ledger's hash chains and net-zero;
                   without --database-url on a throwaway cluster with the reference schema
                   and the baseline
  bench write --units N
                   cut_leg_a throughput against psql-per-row and COPY+INSERT…SELECT, and
                   peak memory
  bench ledger --units N [--rounds R]
                   leg_b_record and write_verify of an N-unit change set, and verify_ledger
                   throughput
  bench compensation --units N
                   compensation A (soft and hard delete) of an N-unit change set
  bench backup --megabytes N
                   the pre-write backup against pg_dump and pg_dump | gpg, and the restore
                   proof
  bench cut [--rounds N]
                   the document cutter over the whole corpus, best of N rounds
  bench run --units N
                   the release cutter binary's live run of an N-unit plan: phase times
                   and its peak memory (target < 128 MiB at 100000 units)
  bench upgrade --units N
                   `cutter db upgrade` of the earlier tool's database grown to N units
                   while a probe writes every 50 ms: step times and the longest probe wait
                   (target < 1 s)
                   Run benchmarks in release mode, e.g.
                   cargo run --release -p xtask -- bench write --units 100000
  faults [--only N[,N…]] [--json] [--jobs N]
                   the fault suite: every case of the fault table through the real cutter
                   binary (debug build) against throwaway clusters; one row per case (rows
                   lost, plaintext dump bytes on disk, secrets found); fails if any case fails
  help             this text
";

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let result = match args.first().map(String::as_str) {
        Some("test") => test(&args[1..]),
        Some("check-layering") => check_layering(),
        Some("proof") => proof::main(&args[1..]),
        Some("bench") => bench::main(&args[1..]),
        Some("faults") => faults::main(&args[1..]),
        Some("help") | Some("--help") | Some("-h") | None => {
            print!("{HELP}");
            Ok(())
        }
        Some(other) => Err(format!("unknown command {other:?}\n\n{HELP}")),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("xtask: {e}");
            ExitCode::FAILURE
        }
    }
}

fn cargo() -> Command {
    Command::new(std::env::var("CARGO").unwrap_or_else(|_| "cargo".into()))
}

fn run(cmd: &mut Command) -> Result<(), String> {
    eprintln!("xtask: running {cmd:?}");
    let status = cmd
        .status()
        .map_err(|e| format!("cannot start {cmd:?}: {e}"))?;
    if status.success() {
        Ok(())
    } else {
        Err(format!("{cmd:?} failed with {status}"))
    }
}

/// Crates `cutter-core` must never depend on: the domain stays free of I/O.
const FORBIDDEN_IN_CORE: [&str; 6] = [
    "postgres",
    "tokio-postgres",
    "pgp",
    "tempfile",
    "tokio",
    "libc",
];

fn check_layering() -> Result<(), String> {
    let out = cargo()
        .args([
            "tree",
            "-p",
            "cutter-core",
            "-e",
            "normal",
            "--prefix",
            "none",
            "--locked",
        ])
        .output()
        .map_err(|e| format!("cannot run cargo tree: {e}"))?;
    if !out.status.success() {
        return Err(format!(
            "cargo tree failed: {}",
            String::from_utf8_lossy(&out.stderr)
        ));
    }
    let tree = String::from_utf8_lossy(&out.stdout);
    let bad: Vec<&str> = tree
        .lines()
        .filter_map(|l| l.split_whitespace().next())
        .filter(|name| FORBIDDEN_IN_CORE.contains(name))
        .collect();
    if bad.is_empty() {
        println!("layering: cutter-core depends on none of {FORBIDDEN_IN_CORE:?}");
        Ok(())
    } else {
        Err(format!(
            "cutter-core must not depend on I/O crates, but its tree has {bad:?}"
        ))
    }
}

fn test(extra: &[String]) -> Result<(), String> {
    prereq::ensure()?;
    check_layering()?;
    // One throwaway cluster for the whole run: every test process finds it through
    // CUTTER_TEST_CLUSTER and takes a fresh database from its template. Dropped (server
    // stopped, directory removed) when this function returns, pass or fail.
    let cluster = cutter_pg::testing::TestCluster::start()
        .map_err(|e| format!("cannot start the shared test cluster: {e}"))?;
    for (k, v) in cluster.env() {
        // SAFETY of set_var: xtask is single-threaded here; children inherit it.
        std::env::set_var(k, v);
    }
    let result = run_tests(extra);
    if let Err(e) = cluster.stop() {
        eprintln!("xtask: stopping the shared test cluster: {e}");
    }
    result
}

fn run_tests(extra: &[String]) -> Result<(), String> {
    let nextest = cargo()
        .args(["nextest", "--version"])
        .output()
        .is_ok_and(|o| o.status.success());
    if nextest {
        run(cargo()
            .args([
                "nextest",
                "run",
                "--workspace",
                "--locked",
                "--no-fail-fast",
            ])
            .args(extra))?;
        run(cargo().args(["test", "--doc", "--workspace", "--locked"]))?;
    } else {
        eprintln!("xtask: cargo-nextest not found; using cargo test");
        run(cargo()
            .args(["test", "--workspace", "--locked", "--no-fail-fast"])
            .args(extra))?;
    }
    Ok(())
}
