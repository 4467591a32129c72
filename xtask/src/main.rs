//! `cargo xtask <command>`: the project's chores, in Rust. Run `cargo xtask help`.

use std::process::{Command as Process, ExitCode};

use clap::{CommandFactory, Parser, Subcommand};

mod bench;
mod bench_amend;
mod bench_backup;
mod bench_compensation;
mod bench_cut;
mod bench_incremental;
mod bench_ledger;
mod bench_run;
mod bench_upgrade;
mod deps;
mod dist;
mod faults;
mod prereq;
mod proof;
mod proof_compensation;

/// `cargo xtask <command>`: the project's chores, in Rust.
#[derive(Debug, Parser)]
#[command(
    name = "cargo xtask",
    bin_name = "cargo xtask",
    flatten_help = true,
    about = "The project's chores, in Rust: tests, layering check, rollback-only proof, fault suite, benchmarks.",
    after_help = "`cargo xtask help <command>` (or `<command> --help`) shows a command's flags.\n\
                  Run benchmarks in release mode, e.g.\n  \
                  cargo run --release -p xtask -- bench write --units 100000"
)]
struct Cli {
    #[command(subcommand)]
    command: Option<Command>,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Install missing prerequisites, then run every test (the README's test command).
    ///
    /// Prerequisites (PostgreSQL server binaries, GnuPG, OpenSSL) are installed with
    /// apt-get when missing and running as root. Then the layering check, one shared
    /// throwaway cluster, nextest (or cargo test) and the doc tests. Arguments after the
    /// command go to nextest (or cargo test).
    Test {
        /// Passed on to `cargo nextest run` (or `cargo test`).
        #[arg(trailing_var_arg = true, allow_hyphen_values = true)]
        extra: Vec<String>,
    },
    /// Dependency checks: cargo machete and cargo deny (licenses, bans).
    ///
    /// Installs cargo-machete and cargo-deny (pinned, `cargo install --locked`) into the
    /// cargo home unless they are there, then fails on an unused dependency or a crate
    /// whose license or duplication `deny.toml` does not allow.
    Deps,
    /// The release binary with man pages and shell completions, in target/dist/.
    ///
    /// Builds `cutter` in release mode and lays out `target/dist/cutter-<version>/`:
    /// `bin/cutter`, `share/man/man1/` (one page per command), bash, zsh and fish
    /// completions under `share/`, and the operator documents in `share/doc/cutter/`.
    Dist,
    /// Fail if cutter-core depends on an I/O crate (postgres, pgp, tempfile, tokio, libc).
    CheckLayering,
    /// The real SQL of every mutating phase and of compensation A and B, rolled back.
    ///
    /// Runs cut_leg_a, leg_b_record and write_verify (through cutter-governance) and
    /// lifecycle_enact, and compensation A and B (cutter-compensation), in transactions
    /// that always roll back; asserts each contract, the ledger's hash chains and
    /// net-zero. Without --database-url on a throwaway cluster with the reference schema
    /// and the baseline.
    Proof(proof::Args),
    /// Benchmarks (run them in release mode).
    #[command(subcommand, flatten_help = true)]
    Bench(bench::Bench),
    /// The fault suite: every case of the fault table through the real cutter binary.
    ///
    /// The debug build (it has the test-only failpoints) against throwaway clusters; one
    /// row per case (rows lost, plaintext dump bytes on disk, secrets found); fails if
    /// any case fails or does not report.
    Faults(faults::Args),
}

/// A count of at least 1; `_` may group digits (`100_000`).
pub(crate) fn count(s: &str) -> Result<u64, String> {
    match s.replace('_', "").parse::<u64>() {
        Ok(0) => Err("must be at least 1".into()),
        Ok(n) => Ok(n),
        Err(e) => Err(format!("{s:?}: {e}")),
    }
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = match cli.command {
        Some(Command::Test { extra }) => test(&extra),
        Some(Command::CheckLayering) => check_layering(),
        Some(Command::Deps) => deps::main(),
        Some(Command::Dist) => dist::main(),
        Some(Command::Proof(a)) => proof::main(&a),
        Some(Command::Bench(b)) => bench::main(b),
        Some(Command::Faults(a)) => faults::main(&a),
        None => Cli::command().print_help().map_err(|e| e.to_string()),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("xtask: {e}");
            ExitCode::FAILURE
        }
    }
}

fn cargo() -> Process {
    Process::new(std::env::var("CARGO").unwrap_or_else(|_| "cargo".into()))
}

fn run(cmd: &mut Process) -> Result<(), String> {
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

/// What each library crate must never depend on (`cargo tree -e normal`): the domain
/// stays free of I/O, and the orchestration library of a run free of the command line
/// (what parses arguments stays in cutter-cli, which stays thin).
const LAYERS: [(&str, &[&str], &str); 2] = [
    ("cutter-core", &FORBIDDEN_IN_CORE, "I/O crates"),
    (
        "cutter-run",
        &["cutter-cli", "clap", "clap_complete", "clap_mangen"],
        "the command line",
    ),
];

fn check_layering() -> Result<(), String> {
    for (krate, forbidden, what) in LAYERS {
        let tree = dependency_tree(krate)?;
        let bad: Vec<&str> = tree
            .lines()
            .filter_map(|l| l.split_whitespace().next())
            .filter(|name| forbidden.contains(name))
            .collect();
        if !bad.is_empty() {
            return Err(format!(
                "{krate} must not depend on {what}, but its tree has {bad:?}"
            ));
        }
        println!("layering: {krate} depends on none of {forbidden:?}");
    }
    Ok(())
}

/// `cargo tree -p KRATE -e normal`, one crate name first on each line.
fn dependency_tree(krate: &str) -> Result<String, String> {
    let out = cargo()
        .args([
            "tree", "-p", krate, "-e", "normal", "--prefix", "none", "--locked",
        ])
        .output()
        .map_err(|e| format!("cannot run cargo tree: {e}"))?;
    if !out.status.success() {
        return Err(format!(
            "cargo tree failed: {}",
            String::from_utf8_lossy(&out.stderr)
        ));
    }
    Ok(String::from_utf8_lossy(&out.stdout).into_owned())
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

#[cfg(test)]
mod tests {
    use super::*;
    use clap::error::ErrorKind;

    /// `cargo xtask <argv…>` parsed: the command, or clap's message.
    pub(crate) fn parse(argv: &[&str]) -> Result<Command, String> {
        let cli = Cli::try_parse_from(std::iter::once("xtask").chain(argv.iter().copied()))
            .map_err(|e| e.to_string())?;
        cli.command.ok_or_else(|| "no command".into())
    }

    fn bench(argv: &[&str]) -> Result<bench::Bench, String> {
        match parse(&[&["bench"], argv].concat())? {
            Command::Bench(b) => Ok(b),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn the_command_line_is_consistent() {
        Cli::command().debug_assert();
    }

    #[test]
    fn help_and_no_command_teach_every_command() {
        for argv in [&["help"][..], &["--help"], &["-h"]] {
            let e = Cli::try_parse_from(std::iter::once("xtask").chain(argv.iter().copied()))
                .unwrap_err();
            assert_eq!(e.kind(), ErrorKind::DisplayHelp, "{argv:?}");
            let text = e.to_string();
            // Every command, benchmark and flag, in the one text.
            for taught in [
                "cargo xtask test",
                "cargo xtask check-layering",
                "cargo xtask proof",
                "--rollback-only",
                "--database-url",
                "--expect-system-identifier",
                "cargo xtask bench write",
                "--batch-rows",
                "--skip-psql",
                "cargo xtask bench ledger",
                "cargo xtask bench compensation",
                "cargo xtask bench backup",
                "--megabytes",
                "cargo xtask bench cut",
                "cargo xtask bench run",
                "--units",
                "--rounds",
                "cargo xtask faults",
                "--only",
                "--jobs",
                "cargo xtask help",
            ] {
                assert!(
                    text.contains(taught),
                    "{argv:?} does not teach {taught}: {text}"
                );
            }
        }
        assert!(Cli::try_parse_from(["xtask"]).unwrap().command.is_none());
        let e = Cli::try_parse_from(["xtask", "help", "bench"]).unwrap_err();
        for benchmark in ["write", "ledger", "compensation", "backup", "cut", "run"] {
            assert!(e.to_string().contains(benchmark), "{e}");
        }
    }

    #[test]
    fn the_readme_and_ci_commands_parse() {
        assert!(matches!(parse(&["test"]), Ok(Command::Test { extra }) if extra.is_empty()));
        assert!(matches!(
            parse(&["test", "--no-capture", "-E", "test(x)"]),
            Ok(Command::Test { extra }) if extra == ["--no-capture", "-E", "test(x)"]
        ));
        assert!(matches!(
            parse(&["check-layering"]),
            Ok(Command::CheckLayering)
        ));
        assert!(matches!(parse(&["deps"]), Ok(Command::Deps)));
        assert!(matches!(
            parse(&["proof", "--rollback-only"]),
            Ok(Command::Proof(_))
        ));
        assert!(matches!(parse(&["faults"]), Ok(Command::Faults(_))));
        assert!(parse(&["frobnicate"]).is_err());
    }

    #[test]
    fn faults_flags_and_defaults() {
        let Ok(Command::Faults(a)) = parse(&["faults"]) else {
            panic!()
        };
        assert_eq!((a.only.is_none(), a.json, a.jobs), (true, false, 4));
        let Ok(Command::Faults(a)) =
            parse(&["faults", "--only", "1,21,22", "--json", "--jobs", "2"])
        else {
            panic!()
        };
        assert_eq!(a.only.as_deref(), Some(&[1, 21, 22][..]));
        assert_eq!((a.json, a.jobs), (true, 2));
        let e = parse(&["faults", "--only", "3,99"]).unwrap_err();
        assert!(e.contains("there is no case 99 (1–34)"), "{e}");
        assert!(parse(&["faults", "--only", "x"]).is_err());
        assert!(parse(&["faults", "--jobs", "0"]).is_err());
        assert!(parse(&["faults", "--bogus"]).is_err());
    }

    #[test]
    fn bench_flags_and_defaults() {
        use bench::Bench;
        assert!(matches!(
            bench(&["ledger"]),
            Ok(Bench::Ledger {
                units: 100_000,
                rounds: 3
            })
        ));
        assert!(matches!(
            bench(&["ledger", "--units", "1_000", "--rounds", "5"]),
            Ok(Bench::Ledger {
                units: 1_000,
                rounds: 5
            })
        ));
        assert!(matches!(
            bench(&["compensation"]),
            Ok(Bench::Compensation {
                units: 100_000,
                rounds: 1
            })
        ));
        assert!(matches!(bench(&["cut"]), Ok(Bench::Cut { rounds: 10 })));
        assert!(matches!(
            bench(&["run", "--units", "20"]),
            Ok(Bench::Run { units: 20 })
        ));
        assert!(matches!(bench(&["run"]), Ok(Bench::Run { units: 100_000 })));
        assert!(matches!(bench(&["write"]), Ok(Bench::Write(_))));
        assert!(matches!(
            bench(&["backup", "--megabytes", "5"]),
            Ok(Bench::Backup(_))
        ));
        assert!(matches!(
            bench(&["backup", "--megabytes", "5", "--rounds", "5"]),
            Ok(Bench::Backup(_))
        ));
        // The benchmark runs itself as the measured backup's and restore proof's child
        // process.
        assert!(matches!(
            bench(&[
                "backup",
                "--child-backup",
                "dir",
                "b1",
                "key.asc",
                "FPR",
                "signing.sec.asc",
                "SIGNING_FPR",
                "host=h",
                "0"
            ]),
            Ok(Bench::Backup(_))
        ));
        assert!(bench(&["backup", "--child-backup", "dir"]).is_err());
        assert!(matches!(
            bench(&["backup", "--child-restore", "a.dump.pgp", "k", "p", "FPR"]),
            Ok(Bench::Backup(_))
        ));
        for bad in [
            &["compensation", "--units", "0"][..],
            &["compensation", "--bogus"],
            &["compensation", "--rounds", "101"],
            &["ledger", "--rounds", "0"],
            &["write", "--units", "many"],
            &["backup", "--megabytes", "0"],
            &["cut", "--rounds", "0"],
            &["frobnicate"],
        ] {
            assert!(bench(bad).is_err(), "{bad:?} was accepted");
        }
    }

    #[test]
    fn counts_are_positive_and_may_group_digits() {
        assert_eq!(count("100_000"), Ok(100_000));
        assert_eq!(count("7"), Ok(7));
        assert!(count("0").is_err());
        assert!(count("-1").is_err());
        assert!(count("").is_err());
    }
}
