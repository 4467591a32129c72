//! `cargo xtask faults`: every fault case of the acceptance table, provoked through the
//! real `cutter` binary (a debug build: it has the test-only failpoints) against
//! throwaway databases, each followed by its prescribed recovery, and measured: rows that
//! existed before and changed (must be 0), plaintext dump bytes on disk, secrets in any
//! output, state file, artifact or process argument/environment.
//!
//! Cases run in parallel on one shared cluster (one database per world, so they cannot
//! interfere); the server-restart case has its own cluster. The secrets audit (case 21)
//! runs last and sums every other case's audit. Waits are on observable conditions (a
//! line on stderr, a file's size, a backend in `pg_stat_activity`), never on guessed
//! sleeps; [`world::PATIENCE`] only bounds a hang.

mod audit;
mod backup;
mod chain;
mod database;
mod env;
mod input;
mod runs;
mod secrets;
mod separation;
mod world;

use std::io::Write as _;
use std::path::PathBuf;
use std::process::Command;
use std::sync::{Arc, Mutex};
use std::time::Instant;

use serde_json::json;

use env::Env;
use world::Cx;

/// One case of the table.
pub struct Case {
    pub num: u32,
    pub name: &'static str,
    pub expected: &'static str,
    run: fn(&mut Cx) -> Result<(), String>,
}

const CASES: [Case; 33] = [
    Case {
        num: 1,
        name: "happy path live run",
        expected: "restore proof equal; ledger chain verifies",
        run: runs::happy_path,
    },
    Case {
        num: 2,
        name: "kill -9 of cutter while pg_dump streams",
        expected: "no artifact, no plaintext, database unchanged, `recover` clean",
        run: backup::kill_during_dump,
    },
    Case {
        num: 3,
        name: "pg_dump exits non-zero (a table of the surface missing or unreadable)",
        expected: "fail closed, pg_dump's stderr in the error",
        run: backup::pg_dump_fails,
    },
    Case {
        num: 4,
        name: "disk full during the backup",
        expected: "no artifact, clear error",
        run: backup::disk_full,
    },
    Case {
        num: 5,
        name: "kill -9 inside cut_leg_a (transaction open)",
        expected: "zero new units; `recover`: nothing of leg A committed",
        run: runs::kill_inside_leg_a,
    },
    Case {
        num: 6,
        name: "kill -9 right after cut_leg_a commits, before the journal is updated",
        expected: "`recover` finds the change set in the database and prescribes A",
        run: runs::kill_after_leg_a_commit,
    },
    Case {
        num: 7,
        name: "pg_terminate_backend of cutter's session in each mutating phase",
        expected: "phase rolled back, HOLD, kill-switch re-armed",
        run: runs::terminate_each_phase,
    },
    Case {
        num: 8,
        name: "server restart in the middle of a run",
        expected: "same as 7",
        run: runs::server_restart,
    },
    Case {
        num: 9,
        name: "two runs at once, same and different state directories",
        expected: "one refused, naming the holder",
        run: runs::two_runs_at_once,
    },
    Case {
        num: 10,
        name: "a stale state lock or advisory lock of a dead process",
        expected: "detected and reported, never silently stolen",
        run: runs::stale_locks,
    },
    Case {
        num: 11,
        name: "truncated artifact; one flipped bit",
        expected: "sha256 refuses before any decryption",
        run: backup::damaged_artifact,
    },
    Case {
        num: 12,
        name: "wrong private key or passphrase",
        expected: "clear error, nothing restored",
        run: backup::wrong_key_or_passphrase,
    },
    Case {
        num: 13,
        name: "recipient key missing or not matching the pin",
        expected: "refused before pg_dump starts",
        run: backup::recipient_refused,
    },
    Case {
        num: 14,
        name: "malformed plan: bad JSON, wrong types, 10 MB title, contract violations",
        expected: "every violation listed, nothing written",
        run: input::malformed_plans,
    },
    Case {
        num: 15,
        name: "hostile text in addresses, titles, bodies, ids",
        expected: "stored verbatim or refused with a clear error; never executed",
        run: input::hostile_text,
    },
    Case {
        num: 16,
        name: "cutter_exec tries UPDATE/DELETE/TRUNCATE on the ledger, direct writes to units, disabling a trigger",
        expected: "all refused by the database",
        run: database::exec_role_refused,
    },
    Case {
        num: 17,
        name: "a hostile object earlier in search_path",
        expected: "the phases and functions are unaffected",
        run: database::hostile_search_path,
    },
    Case {
        num: 18,
        name: "UPDATE or DELETE of an enacted unit or version; compensation A over an enacted unit",
        expected: "triggers reject; compensation refuses, naming units",
        run: database::enacted_is_immutable,
    },
    Case {
        num: 19,
        name: "compensation run twice; compensation killed half-way and rerun",
        expected: "idempotent, final state equal",
        run: database::compensation_idempotent,
    },
    Case {
        num: 20,
        name: "approvals: unknown signer, same signer twice, other run, other plan, expired",
        expected: "gate refuses, nothing written",
        run: input::bad_approvals,
    },
    Case {
        num: 22,
        name: "a .pgpass with loose permissions",
        expected: "ignored with a warning, as libpq does",
        run: input::loose_pgpass,
    },
    Case {
        num: 23,
        name: "self-approval: the operator's own two keys in CUTTER_APPROVER_KEYS, then in the config file",
        expected: "refused: the environment never widens a pin; the database's registry decides",
        run: separation::env_self_approval,
    },
    Case {
        num: 24,
        name: "psql as cutter_exec calls each unit writer and appends run ledger rows without an authorization",
        expected: "each refused by the database; 0 rows written",
        run: separation::writer_functions_without_authorization,
    },
    Case {
        num: 25,
        name: "a forged approval row inserted with psql (registered fingerprint, bad signature, valid chain link)",
        expected: "ledger verify exits 1 naming the table and row",
        run: separation::forged_approval_row,
    },
    Case {
        num: 26,
        name: "HOLD release with the failed run's own approvals, by cutter and by psql",
        expected: "refused by both; a hold-release approval releases it",
        run: separation::hold_release_with_own_approvals,
    },
    Case {
        num: 27,
        name: "a hard-delete approval used as a live-run approval",
        expected: "refused: another purpose",
        run: separation::hard_delete_as_live_run,
    },
    Case {
        num: 28,
        name: "signatures by gpg --digest-algo SHA1 and dated an hour in the future",
        expected: "both refused, naming the rule",
        run: separation::weak_and_future_signatures,
    },
    Case {
        num: 29,
        name: "an approval for database A presented on database B of the same cluster",
        expected: "refused: another database",
        run: separation::approval_for_another_database,
    },
    Case {
        num: 30,
        name: "a second state directory while the database holds an unresolved HOLD",
        expected: "refused (exit 4), 0 units written",
        run: separation::second_state_dir_while_held,
    },
    Case {
        num: 31,
        name: "cutter run with the superuser's credentials",
        expected: "refused inside the phase, 0 units written",
        run: separation::run_as_superuser,
    },
    Case {
        num: 32,
        name: "an approver added after bootstrap without an approver-change approval (cutter and SQL)",
        expected: "refused; the registry unchanged",
        run: separation::approver_added_without_approval,
    },
    Case {
        num: 33,
        name: "a backup chain broken mid-way: a middle link's manifest altered; another's artifact altered at its size",
        expected: "next backup full, naming the link; or the run refuses before writing, naming it",
        run: chain::broken_mid_way,
    },
    Case {
        num: 34,
        name: "kill -9 between an increment's artifact and its signed manifest",
        expected: "the orphan is never a link; the next backup and its proof are correct",
        run: chain::crash_before_manifest,
    },
];

/// The secrets audit's number: it runs last, over every other case.
const AUDIT_CASE: u32 = 21;
const AUDIT_NAME: &str = "secrets audit over all cases";
const AUDIT_EXPECTED: &str = "no password or passphrase anywhere";

/// The result of one case.
#[derive(Debug, Clone)]
pub struct Outcome {
    pub num: u32,
    pub name: String,
    pub expected: String,
    pub observed: String,
    pub pass: bool,
    pub rows_lost: u64,
    pub plaintext_bytes: u64,
    pub secrets: usize,
    pub problems: Vec<String>,
    pub seconds: f64,
    pub audit: audit::AuditResult,
}

impl Outcome {
    /// A case whose world could not even be set up: it fails with that reason.
    fn not_started(num: u32, problem: String) -> Outcome {
        Outcome {
            num,
            name: String::new(),
            expected: String::new(),
            observed: observed_column(&[], std::slice::from_ref(&problem)),
            pass: false,
            rows_lost: 0,
            plaintext_bytes: 0,
            secrets: 0,
            problems: vec![problem],
            seconds: 0.0,
            audit: Default::default(),
        }
    }
}

/// The "observed" column: what the case measured, led by its first problem when it has
/// any, so that a failed case can never read as a success.
fn observed_column(observed: &[String], problems: &[String]) -> String {
    let measured = observed.join("; ");
    match problems {
        [] => measured,
        [first, ..] => format!(
            "FAILED ({} problem(s)): {first}{}{measured}",
            problems.len(),
            if measured.is_empty() { "" } else { " | " }
        ),
    }
}

fn finish_case(cx: Cx, result: Result<(), String>, started: Instant) -> Outcome {
    let mut cx = cx;
    if let Err(e) = result {
        cx.problems.push(e);
    }
    let a = cx.audit.finish();
    let mut problems = cx.problems.clone();
    for s in &a.secrets {
        problems.push(format!("secret found: {s}"));
    }
    for (p, n) in &a.plaintext {
        problems.push(format!("plaintext dump bytes: {} ({n} bytes)", p.display()));
    }
    if cx.rows_lost > 0 {
        problems.push(format!("{} pre-existing row(s) lost", cx.rows_lost));
    }
    let pass = problems.is_empty();
    let _ = std::fs::remove_dir_all(&cx.dir);
    Outcome {
        num: cx.num,
        name: String::new(),
        expected: String::new(),
        observed: observed_column(&cx.observed, &problems),
        pass,
        rows_lost: cx.rows_lost,
        plaintext_bytes: a.plaintext_bytes(),
        secrets: a.secrets.len(),
        problems,
        seconds: started.elapsed().as_secs_f64(),
        audit: a,
    }
}

/// The message of a panic's payload.
fn panic_text(p: &(dyn std::any::Any + Send)) -> String {
    p.downcast_ref::<String>()
        .cloned()
        .or_else(|| p.downcast_ref::<&str>().map(|s| s.to_string()))
        .unwrap_or_else(|| "no message".into())
}

/// Adds a failed row for every queued case that reported nothing (its worker thread
/// died, `deaths` says how): a case that did not report never goes missing from the
/// table or the summary, and never counts as passed.
fn account_for_every_case(queued: &[&Case], outcomes: &mut Vec<Outcome>, deaths: &[String]) {
    for case in queued {
        if outcomes.iter().all(|o| o.num != case.num) {
            let why = if deaths.is_empty() {
                "no worker thread panicked".to_string()
            } else {
                deaths.join("; ")
            };
            let mut o = Outcome::not_started(
                case.num,
                format!("the case reported nothing: its worker thread died ({why})"),
            );
            o.name = case.name.into();
            o.expected = case.expected.into();
            outcomes.push(o);
        }
    }
}

/// (passed, failed).
fn tally(outcomes: &[Outcome]) -> (usize, usize) {
    let passed = outcomes.iter().filter(|o| o.pass).count();
    (passed, outcomes.len() - passed)
}

fn run_case(env: &'static Env, case: &Case) -> Outcome {
    let started = Instant::now();
    let mut out = match Cx::new(env, case.num) {
        Ok(mut cx) => {
            let run = case.run;
            let r = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| run(&mut cx)))
                .unwrap_or_else(|p| Err(format!("panicked: {}", panic_text(&*p))));
            finish_case(cx, r, started)
        }
        Err(e) => Outcome::not_started(case.num, e),
    };
    out.name = case.name.into();
    out.expected = case.expected.into();
    out
}

/// `cargo xtask faults`'s options.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// Run only these cases (case 21, the secrets audit, then sums those).
    #[arg(long, value_name = "N[,N…]", value_delimiter = ',', value_parser = case_number)]
    pub(crate) only: Option<Vec<u32>>,
    /// Print the results as JSON on stdout (the summary line goes to stderr).
    #[arg(long)]
    pub(crate) json: bool,
    /// Cases run at once.
    #[arg(long, value_name = "N", default_value_t = 4, value_parser = crate::count)]
    pub(crate) jobs: u64,
}

/// The number of a case of the table.
fn case_number(s: &str) -> Result<u32, String> {
    let n: u32 = s
        .trim()
        .parse()
        .map_err(|_| format!("{s:?} is not a case number"))?;
    let last = CASES.iter().map(|c| c.num).max().unwrap_or(0);
    if n == AUDIT_CASE || CASES.iter().any(|c| c.num == n) {
        Ok(n)
    } else {
        Err(format!("there is no case {n} (1–{last})"))
    }
}

fn cargo() -> Command {
    Command::new(std::env::var("CARGO").unwrap_or_else(|_| "cargo".into()))
}

/// Builds the debug `cutter` binary and returns its path.
fn build_binary() -> Result<PathBuf, String> {
    build_cutter(false)
}

/// Builds the `cutter` binary (release: without the test-only failpoints) and returns
/// its path.
pub(crate) fn build_cutter(release: bool) -> Result<PathBuf, String> {
    let mut args = vec![
        "build",
        "--quiet",
        "--locked",
        "-p",
        "cutter-cli",
        "--bin",
        "cutter",
    ];
    if release {
        args.push("--release");
    }
    let status = cargo()
        .args(args)
        .status()
        .map_err(|e| format!("cannot run cargo build: {e}"))?;
    if !status.success() {
        return Err(format!("cargo build -p cutter-cli failed with {status}"));
    }
    let out = cargo()
        .args(["metadata", "--format-version", "1", "--no-deps", "--locked"])
        .output()
        .map_err(|e| format!("cannot run cargo metadata: {e}"))?;
    if !out.status.success() {
        return Err(format!(
            "cargo metadata failed: {}",
            String::from_utf8_lossy(&out.stderr)
        ));
    }
    let v: serde_json::Value =
        serde_json::from_slice(&out.stdout).map_err(|e| format!("cargo metadata: {e}"))?;
    let target = v["target_directory"]
        .as_str()
        .ok_or("cargo metadata: no target_directory")?;
    let profile = if release { "release" } else { "debug" };
    let bin = PathBuf::from(target).join(profile).join("cutter");
    if !bin.is_file() {
        return Err(format!("{} was not built", bin.display()));
    }
    Ok(bin)
}

fn short(s: &str, n: usize) -> String {
    if s.chars().count() <= n {
        s.to_string()
    } else {
        let mut t: String = s.chars().take(n.saturating_sub(1)).collect();
        t.push('…');
        t
    }
}

fn print_table(outcomes: &[Outcome]) {
    let mut o = std::io::stdout().lock();
    let _ = writeln!(
        o,
        "{:>2}  {:<40}  {:<40}  {:<56}  {:<4}  {:>9}  {:>9}  {:>7}",
        "#", "case", "expected", "observed", "pass", "rows lost", "plaintext", "secrets"
    );
    let _ = writeln!(
        o,
        "{}",
        "-".repeat(2 + 2 + 40 + 2 + 40 + 2 + 56 + 2 + 4 + 2 + 9 + 2 + 9 + 2 + 7)
    );
    for r in outcomes {
        let _ = writeln!(
            o,
            "{:>2}  {:<40}  {:<40}  {:<56}  {:<4}  {:>9}  {:>9}  {:>7}",
            r.num,
            short(&r.name, 40),
            short(&r.expected, 40),
            short(&r.observed, 56),
            if r.pass { "PASS" } else { "FAIL" },
            r.rows_lost,
            r.plaintext_bytes,
            r.secrets
        );
    }
    let _ = writeln!(o);
    for r in outcomes {
        let _ = writeln!(o, "case {} ({:.1} s): {}", r.num, r.seconds, r.observed);
        for p in &r.problems {
            let _ = writeln!(o, "    FAILED: {p}");
        }
    }
}

fn outcome_json(r: &Outcome) -> serde_json::Value {
    json!({
        "case": r.num,
        "name": r.name,
        "expected": r.expected,
        "observed": r.observed,
        "pass": r.pass,
        "rows_lost": r.rows_lost,
        "plaintext_dump_bytes": r.plaintext_bytes,
        "secrets_found": r.secrets,
        "problems": r.problems,
        "seconds": r.seconds,
        "audited": {"streams": r.audit.streams, "processes": r.audit.processes, "files": r.audit.files},
    })
}

/// `cargo xtask faults`.
pub fn main(args: &Args) -> Result<(), String> {
    let started = Instant::now();
    let bin = build_binary()?;

    // The shared cluster: `cargo xtask test`'s, or one of our own, stopped at the end.
    let mut own_cluster = None;
    let cluster_log = match std::env::var_os(cutter_pg::testing::CLUSTER_ENV) {
        Some(f) => PathBuf::from(f).parent().map(|d| d.join("postgres.log")),
        None => {
            let tc = cutter_pg::testing::TestCluster::start()
                .map_err(|e| format!("cannot start a test cluster: {e}"))?;
            for (k, v) in tc.env() {
                // Single-threaded here; read by TestDb's shared_cluster().
                std::env::set_var(k, v);
            }
            let log = tc.cluster().dir().join("postgres.log");
            own_cluster = Some(tc);
            Some(log)
        }
    };
    let result = (|| {
        let coords = cutter_pg::testing::shared_cluster()
            .map_err(|e| format!("the test cluster: {e}"))?
            .clone();
        let root = tempfile::Builder::new()
            .prefix("cutter-faults-")
            .tempdir()
            .map_err(|e| format!("temp dir: {e}"))?;
        let env: &'static Env = Box::leak(Box::new(Env::new(
            bin,
            root.path().to_path_buf(),
            coords,
            cluster_log,
        )?));
        let outcomes = run_all(env, args);
        env.drop_big_template();
        drop(root);
        Ok::<_, String>(outcomes)
    })();
    if let Some(tc) = own_cluster {
        if let Err(e) = tc.stop() {
            eprintln!("xtask faults: stopping the test cluster: {e}");
        }
    }
    let outcomes = result?;
    let (passed, failed) = tally(&outcomes);
    let summary = format!("{passed} passed, {failed} failed");
    if args.json {
        let v = json!({
            "cases": outcomes.iter().map(outcome_json).collect::<Vec<_>>(),
            "passed": passed,
            "failed": failed,
            "seconds": started.elapsed().as_secs_f64(),
        });
        println!("{}", serde_json::to_string_pretty(&v).unwrap_or_default());
        eprintln!("{summary}");
    } else {
        print_table(&outcomes);
        println!("runtime: {:.1} s", started.elapsed().as_secs_f64());
        println!("{summary}");
    }
    if failed > 0 {
        Err(format!("{failed} fault case(s) failed"))
    } else {
        Ok(())
    }
}

fn run_all(env: &'static Env, args: &Args) -> Vec<Outcome> {
    let wanted = |n: u32| args.only.as_ref().is_none_or(|o| o.contains(&n));
    // The longest cases first, so they overlap with the short ones; then every other
    // case in table order.
    let longest = [
        2, 7, 4, 8, 10, 19, 1, 9, 17, 15, 5, 6, 18, 3, 12, 11, 16, 13, 20, 14, 22,
    ];
    let queued: Vec<&'static Case> = longest
        .iter()
        .filter_map(|n| CASES.iter().find(|c| c.num == *n))
        .chain(CASES.iter().filter(|c| !longest.contains(&c.num)))
        .filter(|c| wanted(c.num))
        .collect();
    let queue = Arc::new(Mutex::new(queued.clone().into_iter()));
    let results = Arc::new(Mutex::new(Vec::new()));
    let workers: Vec<_> = (0..args.jobs)
        .map(|_| {
            let (q, r) = (Arc::clone(&queue), Arc::clone(&results));
            std::thread::spawn(move || loop {
                let next = q.lock().ok().and_then(|mut g| g.next());
                let Some(case) = next else { break };
                eprintln!("xtask faults: case {} ({}) …", case.num, case.name);
                let o = run_case(env, case);
                eprintln!(
                    "xtask faults: case {} {} in {:.1} s",
                    case.num,
                    if o.pass { "passed" } else { "FAILED" },
                    o.seconds
                );
                if let Ok(mut g) = r.lock() {
                    g.push(o);
                }
            })
        })
        .collect();
    let deaths: Vec<String> = workers
        .into_iter()
        .filter_map(|w| w.join().err())
        .map(|p| format!("a worker panicked: {}", panic_text(&*p)))
        .collect();
    let mut outcomes: Vec<Outcome> = results.lock().map(|g| g.clone()).unwrap_or_default();
    account_for_every_case(&queued, &mut outcomes, &deaths);
    if wanted(AUDIT_CASE) {
        let started = Instant::now();
        let mut o = match Cx::new(env, AUDIT_CASE) {
            Ok(mut cx) => {
                let r = secrets::audit_all(&mut cx, &outcomes);
                finish_case(cx, r, started)
            }
            Err(e) => Outcome::not_started(AUDIT_CASE, e),
        };
        o.name = AUDIT_NAME.into();
        o.expected = AUDIT_EXPECTED.into();
        // The audit's own count is the sum over every case.
        let others: usize = outcomes.iter().map(|x| x.secrets).sum();
        o.secrets += others;
        if others > 0 {
            o.pass = false;
        }
        outcomes.push(o);
    }
    outcomes.sort_by_key(|o| o.num);
    outcomes
}

#[cfg(test)]
mod tests {
    use super::*;

    fn passed(case: &Case) -> Outcome {
        let mut o = Outcome::not_started(case.num, String::new());
        o.pass = true;
        o.problems.clear();
        o
    }

    #[test]
    fn a_case_whose_worker_died_is_counted_as_failed() {
        let queued: Vec<&Case> = CASES.iter().take(3).collect();
        let mut outcomes = vec![passed(queued[0]), passed(queued[2])];
        assert_eq!(tally(&outcomes), (2, 0));
        let deaths = ["a worker panicked: audit lock".to_string()];
        account_for_every_case(&queued, &mut outcomes, &deaths);
        assert_eq!(tally(&outcomes), (2, 1));
        let lost = outcomes
            .iter()
            .find(|o| o.num == queued[1].num)
            .expect("a row");
        assert!(!lost.pass);
        assert_eq!(lost.name, queued[1].name);
        assert!(
            lost.problems[0].contains("audit lock"),
            "{:?}",
            lost.problems
        );
    }

    #[test]
    fn a_failed_case_never_reads_as_success() {
        let observed = ["recover: nothing of cut_leg_a committed".to_string()];
        assert_eq!(observed_column(&observed, &[]), observed[0]);
        let problems = [
            "recover: exit Some(0)".to_string(),
            "HOLD missing".to_string(),
        ];
        assert_eq!(
            observed_column(&observed, &problems),
            "FAILED (2 problem(s)): recover: exit Some(0) | recover: nothing of cut_leg_a committed"
        );
        assert_eq!(
            observed_column(&[], &problems[..1]),
            "FAILED (1 problem(s)): recover: exit Some(0)"
        );
    }

    #[test]
    fn every_case_reported_adds_nothing() {
        let queued: Vec<&Case> = CASES.iter().collect();
        let mut outcomes: Vec<Outcome> = queued.iter().map(|c| passed(c)).collect();
        account_for_every_case(&queued, &mut outcomes, &[]);
        assert_eq!(tally(&outcomes), (CASES.len(), 0));
    }
}
