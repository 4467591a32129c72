//! SIGINT and SIGTERM inside each mutating phase of a live run: the phase rolls back
//! (nothing of it is in the database), the run is held as after any failure (HOLD,
//! kill-switch re-armed, SG_3), the process exits 130 or 143 naming `cutter status`, and
//! `cutter recover` finds nothing left to do. A failpoint pauses the phase inside its
//! transaction, just before COMMIT, so the signal lands there every time.

mod common;

use common::{text, World};
use cutter_core::{Phase, RunId};

/// Spawns `cmd`, waits for its failpoint line on stderr, runs `meanwhile`, sends
/// `signal` (`INT`, `TERM`) and waits for the process: its exit code, everything it
/// printed, and how long it took to end after the signal.
fn signal_at_failpoint(
    cmd: std::process::Command,
    signal: &str,
    meanwhile: impl FnOnce(),
) -> (Option<i32>, String, std::time::Duration) {
    let (child, mut stderr, mut seen) = common::spawn_to_failpoint(cmd);
    meanwhile();
    let sent = std::time::Instant::now();
    let kill = std::process::Command::new("kill")
        .arg(format!("-{signal}"))
        .arg(child.id().to_string())
        .status()
        .unwrap();
    assert!(kill.success());
    let rest = std::thread::spawn(move || {
        let mut s = String::new();
        std::io::Read::read_to_string(&mut stderr, &mut s).unwrap();
        s
    });
    let out = child.wait_with_output().unwrap();
    let took = sent.elapsed();
    seen.push_str(&rest.join().unwrap());
    (
        out.status.code(),
        format!("{}{seen}", String::from_utf8_lossy(&out.stdout)),
        took,
    )
}

/// `cutter run --mode MODE` of the world's plan as `run`, paused by `failpoint`.
fn run_paused(
    w: &World,
    mode: &str,
    run: &str,
    approvals: &[String],
    failpoint: &str,
) -> std::process::Command {
    let mut cmd = w.std_cmd();
    cmd.args(["run", "--mode", mode, "--run-id", run, "--plan"])
        .arg(&w.plan)
        .env("CUTTER_FAILPOINT", failpoint);
    for x in approvals {
        cmd.args(["--approval", x]);
    }
    cmd
}

/// Starts a live run paused in `phase`, sends `signal` (`INT`, `TERM`) once the pause is
/// reached, and checks everything the interruption must leave.
fn interrupt(phase: Phase, signal: &str, code: i32) {
    let w = World::new();
    let before = w.snapshot();
    let run = format!(
        "r-{}-{}",
        signal.to_lowercase(),
        phase.name().replace('_', "-")
    );
    let a = w.disarm(&run);
    let what = format!("{phase} {signal}");
    let failpoint = format!("{phase}:before_commit:sleep=60");
    let (status, all, took) =
        signal_at_failpoint(run_paused(&w, "live", &run, &a, &failpoint), signal, || {});
    assert!(
        took < std::time::Duration::from_secs(30),
        "{what}: the signal did not end the pause"
    );
    assert_eq!(status, Some(code), "{what}: {all}");
    assert!(
        all.contains(&format!("interrupted by SIG{signal} in {phase}")),
        "{what}: {all}"
    );
    assert!(all.contains("`cutter status`"), "{what}: {all}");
    // Nothing of the interrupted phase is in the database.
    let facts =
        cutter_governance::run_status_in_db(&mut w.db.admin(), &RunId::new(&run).unwrap()).unwrap();
    match phase {
        Phase::PreWriteBackup | Phase::CutLegA => {
            assert!(facts.units_by_status.is_empty(), "{what}: {facts:?}");
            assert_eq!(
                w.snapshot().rows("public.information_unit"),
                before.rows("public.information_unit"),
                "{what}"
            );
        }
        Phase::LegBRecord => {
            assert_eq!(facts.units_by_status.get("draft"), Some(&12), "{what}");
            // The run's two approvals were recorded at the gate, before the backup.
            assert!(
                facts.change_set_row.is_none()
                    && facts.manifest_row.is_none()
                    && facts.signatures == 2
                    && facts.affected_rows == 0,
                "{what}: leg B rows committed: {facts:?}"
            );
        }
        Phase::WriteVerify => {
            assert!(facts.change_set_row.is_some(), "{what}");
            assert!(facts.verify_result.is_none(), "{what}: {facts:?}");
        }
        Phase::LifecycleEnact => {
            assert!(facts.verify_result.is_some(), "{what}");
            assert_eq!(facts.units_by_status.get("enacted"), None, "{what}");
            assert_eq!(facts.units_by_status.get("draft"), Some(&12), "{what}");
        }
        _ => unreachable!(),
    }
    // Held as after any failure: HOLD naming the phase and the signal, kill-switch
    // engaged, one SG_3 escalation in the ledger.
    assert!(w.hold_exists(), "{what}: no HOLD");
    let hold: serde_json::Value =
        serde_json::from_slice(&std::fs::read(w.state.join("locks/HOLD")).unwrap()).unwrap();
    assert_eq!(hold["failed_phase"], phase.name(), "{what}: {hold}");
    assert!(
        hold["reason"]
            .as_str()
            .unwrap()
            .starts_with(&format!("interrupted by SIG{signal}")),
        "{what}: {hold}"
    );
    assert!(w.kill_switch().contains("engaged"), "{what}");
    assert_eq!(facts.sg3_escalations.len(), 1, "{what}: {facts:?}");
    // The journal ends with the phase's failure; recover has nothing to do.
    let journal =
        std::fs::read_to_string(w.state.join(format!("runs/{run}/journal.jsonl"))).unwrap();
    let last: serde_json::Value = serde_json::from_str(journal.lines().last().unwrap()).unwrap();
    assert_eq!(last["event"], "phase_failed", "{what}: {journal}");
    assert_eq!(last["phase"], phase.name(), "{what}: {journal}");
    let r = w.cmd().args(["--json", "recover"]).output().unwrap();
    assert_eq!(r.status.code(), Some(0), "{what}: {}", text(&r));
    let v: serde_json::Value = serde_json::from_slice(&r.stdout).unwrap();
    assert_eq!(v["runs"], serde_json::json!([]), "{what}: {v}");
    // And the prescribed compensation restores the units as they were.
    w.cmd()
        .args(["compensate", "--run-id", &run])
        .assert()
        .success();
    assert_eq!(
        World::live_statuses(&w.snapshot()),
        World::live_statuses(&before),
        "{what}"
    );
}

/// SIGINT (exit 130), then on a new world SIGTERM (exit 143), in `phase`.
fn both_signals(phase: Phase) {
    interrupt(phase, "INT", 130);
    interrupt(phase, "TERM", 143);
}

#[test]
fn sigint_and_sigterm_in_pre_write_backup() {
    both_signals(Phase::PreWriteBackup);
}

#[test]
fn sigint_and_sigterm_in_cut_leg_a() {
    both_signals(Phase::CutLegA);
}

#[test]
fn sigint_and_sigterm_in_leg_b_record() {
    both_signals(Phase::LegBRecord);
}

#[test]
fn sigint_and_sigterm_in_write_verify() {
    both_signals(Phase::WriteVerify);
}

#[test]
fn sigint_and_sigterm_in_lifecycle_enact() {
    both_signals(Phase::LifecycleEnact);
}

/// A signal while the phase's statement waits on the server (here: for row locks another
/// session holds) cancels that statement: the run stops at once instead of after the
/// lock timeout, and the phase rolls back like any other.
#[test]
fn sigterm_cancels_the_statement_in_flight() {
    let w = World::new();
    let run = "r-term-waiting";
    let a = w.disarm(run);
    let mut admin = w.db.admin();
    let mut observer = w.db.admin();
    let mut locker = None;
    // A pause after write_verify commits, for the test to lock the new units.
    let cmd = run_paused(&w, "live", run, &a, "write_verify:after_commit:sleep=3");
    let (status, all, took) = signal_at_failpoint(cmd, "TERM", || {
        let mut tx = admin.transaction().unwrap();
        let locked = tx
            .query(
                "SELECT id FROM public.information_unit WHERE change_set_id = $1 FOR UPDATE",
                &[&format!("cs-{run}")],
            )
            .unwrap();
        assert_eq!(locked.len(), 12);
        locker = Some(tx);
        // Wait until lifecycle_enact waits for those locks.
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
        loop {
            let waiting: i64 = observer
                .query_one(
                    "SELECT count(*) FROM pg_stat_activity WHERE application_name LIKE 'cutter%' AND wait_event_type = 'Lock'",
                    &[],
                )
                .unwrap()
                .get(0);
            if waiting > 0 {
                break;
            }
            assert!(
                std::time::Instant::now() < deadline,
                "lifecycle_enact never waited"
            );
            std::thread::sleep(std::time::Duration::from_millis(50));
        }
    });
    locker.take().unwrap().rollback().unwrap();
    assert_eq!(status, Some(143), "{all}");
    // Well before the 10 s lock timeout: the cancel request ended the wait.
    assert!(took < std::time::Duration::from_secs(5), "{took:?}: {all}");
    let hold: serde_json::Value =
        serde_json::from_slice(&std::fs::read(w.state.join("locks/HOLD")).unwrap()).unwrap();
    assert_eq!(hold["failed_phase"], "lifecycle_enact", "{hold}");
    let reason = hold["reason"].as_str().unwrap();
    assert!(
        reason.starts_with("interrupted by SIGTERM (") && reason.contains("canceling statement"),
        "{reason}"
    );
    let facts =
        cutter_governance::run_status_in_db(&mut observer, &RunId::new(run).unwrap()).unwrap();
    assert_eq!(facts.units_by_status.get("enacted"), None, "{facts:?}");
    assert!(w.kill_switch().contains("engaged"));
}

/// A dry-run interrupted in a phase: exit 130, the clone removed, the target unchanged,
/// and nothing held (a rehearsal never writes a HOLD or touches the kill-switch).
#[test]
fn sigint_stops_a_dry_run_and_removes_its_clone() {
    let w = World::new();
    let before = w.snapshot();
    let kill_switch = w.kill_switch();
    let cmd = run_paused(
        &w,
        "dry-run",
        "r-dry-int",
        &[],
        "cut_leg_a:before_commit:sleep=60",
    );
    let (status, all, _) = signal_at_failpoint(cmd, "INT", || {});
    assert_eq!(status, Some(130), "{all}");
    assert!(
        all.contains("rehearsal r-dry-int.dry-run-1 interrupted by SIGINT in cut_leg_a")
            && all.contains("the clone is removed"),
        "{all}"
    );
    assert!(!w.hold_exists());
    assert_eq!(w.kill_switch(), kill_switch);
    assert_eq!(w.snapshot(), before);
    let rec: serde_json::Value = serde_json::from_slice(
        &std::fs::read(w.state.join("runs/r-dry-int.dry-run-1/run.json")).unwrap(),
    )
    .unwrap();
    assert_eq!(rec["machine"]["state"]["state"], "held", "{rec}");
}
