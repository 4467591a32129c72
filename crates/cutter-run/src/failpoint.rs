//! Test-only failpoints: `CUTTER_FAILPOINT=<phase>:<when>:<action>` makes a phase fail,
//! pause or die at a chosen moment, so tests can prove what a crash leaves behind.
//! `when` is `before_commit`, `after_commit` or (pre_write_backup only) `before_proof`,
//! between the backup and its `prove_backup = before-write` proof; `action` is `error`, `abort` (the process
//! dies at once, like `kill -9`) or `sleep=<seconds>` (ended early by SIGINT/SIGTERM). Compiled only into debug builds:
//! a release build contains none of this. `cutter-backup` has one more, below this crate:
//! `pre_write_backup:after_artifact:abort`, once an artifact is under its final name and
//! before its signed manifest is (any backup, a run's or `cutter backup create`'s).

use cutter_core::Phase;

/// When in a phase.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum When {
    /// Inside the phase's transaction, before COMMIT.
    BeforeCommit,
    /// After COMMIT, before the journal records it.
    AfterCommit,
    /// Between the pre-write backup and its proof (`prove_backup = before-write`).
    BeforeProof,
}

/// Fires the failpoint for `phase` at `when`, if one is set: returns an error to inject,
/// sleeps, or aborts the process.
#[cfg(debug_assertions)]
pub fn hit(phase: Phase, when: When) -> Result<(), String> {
    let Ok(spec) = std::env::var("CUTTER_FAILPOINT") else {
        return Ok(());
    };
    let mut parts = spec.splitn(3, ':');
    let (Some(p), Some(w), Some(action)) = (parts.next(), parts.next(), parts.next()) else {
        return Ok(());
    };
    let when_name = match when {
        When::BeforeCommit => "before_commit",
        When::AfterCommit => "after_commit",
        When::BeforeProof => "before_proof",
    };
    if Phase::parse(p) != Some(phase) || w != when_name {
        return Ok(());
    }
    eprintln!("cutter: failpoint {phase}:{when_name}:{action}");
    match action {
        "error" => Err(format!(
            "injected failure at {phase}:{when_name} (CUTTER_FAILPOINT)"
        )),
        "abort" => std::process::abort(),
        s if s.starts_with("sleep=") => {
            // A pause a signal ends early (the run then stops as it would have).
            let secs: u64 = s["sleep=".len()..].parse().unwrap_or(60);
            let until = std::time::Instant::now() + std::time::Duration::from_secs(secs);
            while std::time::Instant::now() < until && crate::interrupt::received().is_none() {
                std::thread::sleep(std::time::Duration::from_millis(20));
            }
            Ok(())
        }
        _ => Ok(()),
    }
}

/// Release builds: no failpoints.
#[cfg(not(debug_assertions))]
#[inline(always)]
pub fn hit(_phase: Phase, _when: When) -> Result<(), String> {
    Ok(())
}
