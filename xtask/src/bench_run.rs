//! `cargo xtask bench run --units N`: the real release `cutter` binary runs an N-unit plan
//! live through all five mutating phases on a throwaway cluster — keys, approvals signed
//! by two approvers, kill-switch disarmed for the run — and this reports the phases'
//! times (from the run report) and the binary's peak resident memory (VmHWM of
//! `/proc/<pid>/status`, sampled every millisecond until it exits). The plan file is
//! written streaming. Target: the process stays under 128 MiB at 100,000 units.
//! `cargo run --release -p xtask -- bench run --units 100000`.

use std::fs::File;
use std::io::{BufWriter, Write as _};
use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use cutter_core::{ApprovalGate, ApprovalStatement, RunId, UnixTime};
use cutter_pg::fixtures;
use cutter_pg::testing::TestCluster;

const DOC: &str = "bench-run-doc";
const RUN: &str = "bench-run-1";
const MEMORY_LIMIT_MIB: f64 = 128.0;

fn private(path: &Path, bytes: &[u8]) -> Result<(), String> {
    std::fs::write(path, bytes).map_err(|e| format!("{}: {e}", path.display()))?;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600))
        .map_err(|e| format!("{}: {e}", path.display()))
}

/// VmHWM of `pid` in KiB, while it runs.
fn hwm_kib(pid: u32) -> Option<u64> {
    vmhwm_kib(&std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?)
}

/// The VmHWM line of a procfs status text, in KiB.
fn vmhwm_kib(status: &str) -> Option<u64> {
    cutter_testkit::status_kib(status, "VmHWM:")
}

/// The memory check: the peak in MiB if it was measured and is under the limit. A peak
/// never read (procfs unreadable, or the process gone before the first sample) fails:
/// no measurement is not a pass.
fn memory_check(peak_kib: Option<u64>, pid: u32) -> Result<f64, String> {
    let kib = peak_kib.ok_or_else(|| {
        format!(
            "the peak memory of the cutter process was never measured: VmHWM of \
             /proc/{pid}/status could not be read while it ran"
        )
    })?;
    let mib = kib as f64 / 1024.0;
    if mib < MEMORY_LIMIT_MIB {
        Ok(mib)
    } else {
        Err(format!(
            "peak memory {mib:.1} MiB is over {MEMORY_LIMIT_MIB} MiB"
        ))
    }
}

/// A throwaway cluster with the reference schema and baseline, a state directory and
/// configuration for the release `cutter` binary, and two registered approvers: what a
/// benchmark needs to run plans live through the binary.
pub(crate) struct LiveTarget {
    bin: std::path::PathBuf,
    _tc: TestCluster,
    work: tempfile::TempDir,
    state: std::path::PathBuf,
    pgpass: std::path::PathBuf,
    approvers: Vec<cutter_openpgp::SecretKey>,
    database: cutter_core::TargetDatabase,
}

/// One measured live run: its phases `(name, ms)`, its report's context, wall time and
/// the binary's peak memory.
pub(crate) struct Measured {
    pub phases: Vec<(String, i64)>,
    pub context: serde_json::Value,
    pub wall: Duration,
    pub peak_kib: Option<u64>,
    pub pid: u32,
}

impl LiveTarget {
    /// Builds the release binary, starts the cluster and database `db`, writes keys,
    /// registers two approvers and configures the state directory.
    pub(crate) fn start(db: &str) -> Result<Self, String> {
        let bin = crate::faults::build_cutter(true)?;
        let err = |e: cutter_pg::Error| e.to_string();
        eprintln!("bench: starting a throwaway cluster (reference schema + baseline)");
        let tc = TestCluster::start().map_err(err)?;
        let c = tc.coordinates().clone();
        tc.cluster()
            .create_database(db, Some(&c.template))
            .map_err(err)?;
        let work = tempfile::Builder::new()
            .prefix("cutter-bench-run-")
            .tempdir()
            .map_err(|e| e.to_string())?;
        let w = work.path();

        // Keys: the backup recipient, the manifest signer and two approvers.
        let keys = w.join("keys");
        std::fs::create_dir_all(&keys).map_err(|e| e.to_string())?;
        let backup =
            cutter_backup::generate_keys(&keys, "backup", "bench <backup@bench.invalid>", None)
                .map_err(|e| e.to_string())?;
        let signing = cutter_backup::generate_keys(
            &keys,
            "backup-signing",
            "bench <backup-signing@bench.invalid>",
            None,
        )
        .map_err(|e| e.to_string())?;
        let mut publics = Vec::new();
        let mut approvers = Vec::new();
        let mut armored = Vec::new();
        for name in ["alice", "bob"] {
            let g = cutter_openpgp::generate_key(&format!("{name} <{name}@bench.invalid>"), None)
                .map_err(|e| e.to_string())?;
            let public = keys.join(format!("{name}.pub.asc"));
            std::fs::write(&public, &g.public_armored).map_err(|e| e.to_string())?;
            approvers.push(
                cutter_openpgp::SecretKey::from_bytes(g.secret_armored.as_bytes())
                    .map_err(|e| e.to_string())?,
            );
            publics.push(public);
            armored.push((g.public_armored, name));
        }
        // Registered by the owner (the bootstrap), as the database's gate requires.
        let database = {
            let mut owner = tc.cluster().connect(db).map_err(err)?;
            let keys: Vec<(&str, &str)> = armored.iter().map(|(k, n)| (k.as_str(), *n)).collect();
            cutter_governance::bootstrap_approvers(&mut owner, &keys, "bench")
                .map_err(|e| e.to_string())?;
            cutter_pg::surface::target_database(&mut owner).map_err(err)?
        };

        // State directory, configuration, passwords in a private .pgpass.
        let state = w.join("state");
        let pgpass = w.join("pgpass");
        private(&pgpass, c.pgpass_lines(db, c.port).as_bytes())?;
        let t = LiveTarget {
            bin,
            _tc: tc,
            work,
            state,
            pgpass,
            approvers,
            database,
        };
        t.ok(
            t.cutter(&["init", &t.state.display().to_string()]),
            "cutter init",
        )?;
        let config = format!(
            "state_dir = \".\"\n[database]\nurl = \"postgres://cutter_exec@{}:{}/{db}?sslmode=disable\"\n\
             verify_user = \"cutter_verify\"\n[backup]\nrecipient_fingerprint = \"{}\"\nrecipient_key = \"{}\"\n\
             signing_fingerprint = \"{}\"\nsigning_key = \"{}\"\n[approvals]\napprover_keys = [\"{}\", \"{}\"]\n[run]\nactor = \"bench\"\n",
            c.host,
            c.port,
            backup.fingerprint,
            backup.public_key.display(),
            signing.fingerprint,
            signing.secret_key.display(),
            publics[0].display(),
            publics[1].display()
        );
        std::fs::write(t.state.join("cutter.toml"), config).map_err(|e| e.to_string())?;
        Ok(t)
    }

    /// The scratch directory.
    pub(crate) fn dir(&self) -> &Path {
        self.work.path()
    }

    /// `cutter <args>` with this target's configuration and nothing of the caller's
    /// environment.
    pub(crate) fn cutter(&self, args: &[&str]) -> Command {
        let mut cmd = Command::new(&self.bin);
        cutter_testkit::clear_caller_env(&mut cmd);
        cmd.env("PGPASSFILE", &self.pgpass)
            .env("CUTTER_CONFIG", self.state.join("cutter.toml"))
            .args(args)
            .stdin(Stdio::null());
        cmd
    }

    /// Runs `cmd` to completion; its stdout, or an error with both outputs.
    pub(crate) fn ok(&self, mut cmd: Command, what: &str) -> Result<Vec<u8>, String> {
        let o = cmd.output().map_err(|e| format!("{what}: {e}"))?;
        if !o.status.success() {
            return Err(format!(
                "{what} failed ({}): {}{}",
                o.status,
                String::from_utf8_lossy(&o.stdout),
                String::from_utf8_lossy(&o.stderr)
            ));
        }
        Ok(o.stdout)
    }

    /// Signs SG_1 and SG_2 for `run` (plan `digest`, amendment `diff`), disarms the
    /// kill-switch, then runs the plan live and measures it.
    pub(crate) fn run_live(
        &self,
        run: &str,
        plan: &Path,
        digest: cutter_core::Sha256Digest,
        diff: Option<cutter_core::Sha256Digest>,
    ) -> Result<Measured, String> {
        let w = self.dir();
        let run_id = RunId::new(run).map_err(|e| e.to_string())?;
        let expires = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_err(|e| e.to_string())?
            .as_secs() as i64
            + 3600;
        let mut approval_args = Vec::new();
        for (gate, secret) in [ApprovalGate::Sg1, ApprovalGate::Sg2]
            .into_iter()
            .zip(&self.approvers)
        {
            let st = ApprovalStatement {
                purpose: cutter_core::Purpose::LiveRun,
                run_id: run_id.clone(),
                plan_digest: digest,
                change_set: None,
                findings_digest: None,
                diff_digest: diff,
                target: self.database.clone(),
                gate,
                not_before: UnixTime(expires - 3660),
                expires_at: UnixTime(expires),
            };
            let signed = cutter_governance::sign_approval(
                &st,
                secret,
                &cutter_openpgp::Passphrase::new(String::new()),
                gate.name(),
            )
            .map_err(|e| e.to_string())?;
            let stem = w.join(format!("{run}-{}", gate.name().to_lowercase()));
            let (s, a) = (stem.with_extension("txt"), stem.with_extension("txt.asc"));
            private(&s, &signed.statement)?;
            private(&a, &signed.signature)?;
            approval_args.push(format!("{}:{}", s.display(), a.display()));
        }
        let plan_arg = plan.display().to_string();
        let mut disarm = vec![
            "kill-switch",
            "disarm",
            "--run-id",
            run,
            "--plan",
            &plan_arg,
        ];
        for a in &approval_args {
            disarm.extend(["--approval", a.as_str()]);
        }
        self.ok(self.cutter(&disarm), "cutter kill-switch disarm")?;

        let mut live = vec![
            "--json", "run", "--plan", &plan_arg, "--run-id", run, "--mode", "live",
        ];
        for a in &approval_args {
            live.extend(["--approval", a.as_str()]);
        }
        let started = Instant::now();
        let mut cmd = self.cutter(&live);
        let report_path = w.join(format!("{run}.json"));
        let report_file = File::create(&report_path).map_err(|e| e.to_string())?;
        let stderr_path = w.join(format!("{run}.stderr"));
        let stderr_file = File::create(&stderr_path).map_err(|e| e.to_string())?;
        let mut child = cmd
            .stdout(report_file)
            .stderr(stderr_file)
            .spawn()
            .map_err(|e| format!("starting cutter run: {e}"))?;
        let pid = child.id();
        let mut peak_kib: Option<u64> = None;
        let status = loop {
            if let Some(k) = hwm_kib(pid) {
                peak_kib = peak_kib.max(Some(k));
            }
            match child.try_wait().map_err(|e| e.to_string())? {
                Some(st) => break st,
                None => std::thread::sleep(Duration::from_millis(1)),
            }
        };
        let wall = started.elapsed();
        let stderr = std::fs::read_to_string(&stderr_path).unwrap_or_default();
        let v: serde_json::Value =
            serde_json::from_slice(&std::fs::read(&report_path).map_err(|e| e.to_string())?)
                .map_err(|e| format!("cutter run --json: {e}; stderr: {stderr}"))?;
        if !status.success() || v["run"]["state"]["state"] != "succeeded" {
            return Err(format!("cutter run {run} failed ({status}): {stderr}\n{v}"));
        }
        let context = v["run"]["context"].clone();
        let phases = context["phases"]
            .as_array()
            .map(Vec::as_slice)
            .unwrap_or_default()
            .iter()
            .map(|p| {
                (
                    p["phase"].as_str().unwrap_or("?").to_string(),
                    p["ended_ms"].as_i64().unwrap_or(0) - p["started_ms"].as_i64().unwrap_or(0),
                )
            })
            .collect();
        Ok(Measured {
            phases,
            context,
            wall,
            peak_kib,
            pid,
        })
    }
}

/// Writes a plan file of `rows` for `doc` at source version `version`, one row at a
/// time.
pub(crate) fn write_plan(
    path: &Path,
    doc: &str,
    version: &str,
    rows: impl Iterator<Item = cutter_core::CutPlanRow>,
) -> Result<(), String> {
    let f = File::create(path).map_err(|e| e.to_string())?;
    let mut out = BufWriter::new(f);
    let io = |e: std::io::Error| e.to_string();
    write!(
        out,
        "{{\"format\":\"{}\",\"document_id\":\"{doc}\",\"source_version_id\":\"{version}\",\"rows\":[",
        cutter_core::PLAN_FORMAT
    )
    .map_err(io)?;
    for (i, row) in rows.enumerate() {
        if i > 0 {
            out.write_all(b",\n").map_err(io)?;
        }
        serde_json::to_writer(&mut out, &row).map_err(|e| e.to_string())?;
    }
    out.write_all(b"]}\n").map_err(io)?;
    out.flush().map_err(io)
}

/// `cargo xtask bench run --units N` (at least 1).
pub fn main(units: u64) -> Result<(), String> {
    let t = LiveTarget::start("bench_run")?;
    eprintln!("bench: writing and digesting the {units}-unit plan (streamed)");
    let plan_path = t.dir().join("plan.json");
    write_plan(&plan_path, DOC, "v1", fixtures::scale_rows(DOC, units))?;
    let digest = fixtures::scale_streamed(DOC, units)
        .map_err(|r| r.to_string())?
        .digest();

    eprintln!("bench: cutter run --mode live ({units} units)");
    let m = t.run_live(RUN, &plan_path, digest, None)?;
    let ctx = &m.context;
    println!("\nbench run: cutter run --mode live of a {units}-unit plan (bodies ~1500 bytes of Vietnamese text), release binary");
    println!("{:<18} {:>10} {:>12}", "phase", "ms", "units/s");
    for (phase, ms) in &m.phases {
        let rate = if *ms > 0 {
            format!("{:.0}", units as f64 * 1000.0 / *ms as f64)
        } else {
            "-".into()
        };
        println!("{phase:<18} {ms:>10} {rate:>12}");
    }
    println!(
        "units created {}, verified {}/{}, enacted {}; ledger rows {}",
        ctx["units_created"],
        ctx["verify"]["matched"],
        ctx["verify"]["checked"],
        ctx["units_enacted"],
        ctx["ledger_rows"]
    );
    let verdict = memory_check(m.peak_kib, m.pid);
    println!(
        "wall {:.2} s; peak memory of the cutter process (VmHWM, sampled each ms): {}  (limit < {MEMORY_LIMIT_MIB} MiB)  {}",
        m.wall.as_secs_f64(),
        m.peak_kib.map_or("not measured".into(), |k| format!("{:.1} MiB", k as f64 / 1024.0)),
        if verdict.is_ok() { "PASS" } else { "FAIL" }
    );
    verdict.map(|_| ())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_unread_peak_fails_the_memory_check() {
        let e = memory_check(None, 42).unwrap_err();
        assert!(
            e.contains("never measured") && e.contains("/proc/42/status"),
            "{e}"
        );
    }

    #[test]
    fn the_memory_check_compares_the_peak_with_the_limit() {
        assert_eq!(memory_check(Some(64 * 1024), 1), Ok(64.0));
        assert!(memory_check(Some(128 * 1024), 1).is_err());
    }

    #[test]
    fn vmhwm_is_read_from_its_status_line_only() {
        let status = "Name:\tcutter\nVmPeak:\t  9000 kB\nVmHWM:\t  5120 kB\nVmRSS:\t 100 kB\n";
        assert_eq!(vmhwm_kib(status), Some(5120));
        assert_eq!(vmhwm_kib("Name:\tcutter\nState:\tZ (zombie)\n"), None);
    }
}
