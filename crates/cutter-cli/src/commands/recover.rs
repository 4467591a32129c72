//! `cutter recover`: after a crash, find what each unfinished run committed — its
//! journal cross-checked with the database, where the change set's units, its ledger
//! rows and its verify result are the markers — catch the journal up with commits it
//! missed, hold the run and prescribe the matrix's compensation. Never retries.

use std::fmt::Write as _;

use cutter_core::{Event, Phase, PhaseSet, RunMachine, RunState};
use serde_json::json;

use super::Ctx;
use crate::error::{exit, CliError, Result};
use crate::runs::{now_rfc3339, RunRecord};
use crate::statedir::StateDir;

/// What the database says a run committed.
pub fn committed_in_db(facts: &cutter_governance::DbRunFacts, artifact_exists: bool) -> PhaseSet {
    let mut s = PhaseSet::EMPTY;
    if artifact_exists {
        s = s.with(Phase::PreWriteBackup);
    }
    if facts.units_by_status.values().sum::<u64>() > 0 || facts.cut_committed() {
        s = s.with(Phase::CutLegA);
    }
    if facts.change_set_row.is_some() {
        s = s.with(Phase::LegBRecord);
    }
    if facts.verify_result.is_some() {
        s = s.with(Phase::WriteVerify);
    }
    let enacted = facts.units_by_status.get("enacted").copied().unwrap_or(0);
    if enacted > 0 && enacted == facts.units_by_status.values().sum::<u64>() {
        s = s.with(Phase::LifecycleEnact);
    }
    s
}

/// Replays a run's journal from the start: the journal, not run.json, is the record.
pub fn replay(dir: &StateDir, rec: &RunRecord) -> Result<(RunMachine, bool)> {
    let (entries, torn) = dir.journal(&rec.machine.run_id)?.read()?;
    let start = RunMachine::new(
        rec.machine.run_id.clone(),
        rec.machine.mode,
        rec.machine.final_phase,
        cutter_core::KillSwitch::Disarmed {
            run_id: rec.machine.run_id.clone(),
        },
    );
    let m = start
        .replay(entries.iter().map(|e| &e.event))
        .map_err(cutter_core::Error::from)?;
    Ok((m, torn))
}

/// `cutter recover`.
pub fn recover(ctx: &Ctx) -> Result<u8> {
    let dir = StateDir::open(ctx.settings.require_state_dir()?)?;
    let (_lock, stale) = dir.lock("recover", &now_rfc3339())?;
    let mut human = String::new();
    if let Some(s) = &stale {
        let _ = writeln!(
            human,
            "stale state lock: pid {} ({}) since {} is gone; the kernel released its lock",
            s.pid, s.purpose, s.since
        );
    }
    let removed = cutter_backup::remove_stale_partials(&dir.backups())
        .map_err(|e| CliError::Failed(e.to_string()))?;
    let _ = writeln!(
        human,
        "partial backup files of dead processes removed: {removed:?}"
    );
    let mut runs_out = Vec::new();
    let mut held = false;
    for id in dir.run_ids()? {
        let Some(mut rec) = RunRecord::load(&dir, &id)? else {
            continue;
        };
        let (journal_machine, torn) = replay(&dir, &rec)?;
        rec.machine.clone_from(&journal_machine);
        if !matches!(
            rec.machine.state,
            RunState::Created | RunState::Running { .. } | RunState::Passed { .. }
        ) {
            continue;
        }
        if rec.machine.mode == cutter_core::Mode::DryRun {
            // A rehearsal's clone died with its process; the target was never written.
            let _ = writeln!(human, "run {id}: an interrupted dry-run; its throwaway clone is gone with its process, the target was never written");
            rec.last_error = Some("interrupted dry-run, recovered".into());
            rec.record(
                &dir,
                Event::Held {
                    reason: "interrupted dry-run".into(),
                },
            )?;
            runs_out.push(json!({"run_id": id, "mode": "dry-run", "state": rec.machine.state}));
            continue;
        }
        let exec_cfg = super::target_config(ctx)?;
        let mut client = exec_cfg.connect().map_err(|e| {
            CliError::Failed(format!(
                "recover needs the target to cross-check run {id}: {e}"
            ))
        })?;
        let facts = cutter_governance::run_status_in_db(&mut client, &id)
            .map_err(|e| CliError::Failed(e.to_string()))?;
        let artifact = dir.backups().join(format!("{id}.dump.pgp"));
        let in_db = committed_in_db(&facts, artifact.exists());
        let journal = rec.machine.committed;
        let _ = writeln!(
            human,
            "run {id}: journal says {} (committed {journal:?}){}",
            rec.machine.state,
            if torn { ", last journal line torn" } else { "" }
        );
        let _ = writeln!(human, "  database says committed: {in_db:?} (units of {}: {:?}; change set row: {:?}; verify: {:?})", facts.change_set, facts.units_by_status, facts.change_set_row, facts.verify_result);
        // Catch the journal up with a commit that happened after its last line.
        if let RunState::Running { phase } = rec.machine.state {
            if in_db.contains(phase) && !journal.contains(phase) {
                let _ = writeln!(human, "  {phase} committed in the database after the journal's last line; recording it");
                rec.record(&dir, Event::PhaseCommitted { phase })?;
            }
        }
        let unexplained: Vec<Phase> = in_db
            .iter()
            .filter(|p| !rec.machine.committed.contains(*p))
            .collect();
        if !unexplained.is_empty() {
            let _ = writeln!(human, "  WARNING: the database shows {unexplained:?} committed beyond the journal; the compensation below is computed from the database");
        }
        if rec.machine.state == RunState::Succeeded {
            let _ = writeln!(human, "  the run had in fact succeeded");
            runs_out.push(json!({"run_id": id, "state": rec.machine.state}));
            continue;
        }
        let phase_note = match rec.machine.state {
            RunState::Running { phase } => {
                format!("the process died during {phase}; nothing of {phase} committed")
            }
            RunState::Passed { phase } => format!("the process died after {phase} committed"),
            _ => "the process died before its first phase".into(),
        };
        rec.last_error = Some(format!("recovered after a crash: {phase_note}"));
        // The database is the authority on what committed: the prescription follows it.
        rec.machine.committed = in_db;
        let effects = rec.record(
            &dir,
            Event::Held {
                reason: format!("recovered after a crash: {phase_note}"),
            },
        )?;
        super::run::apply_effects(
            &dir,
            &mut rec,
            &effects,
            Some(&exec_cfg),
            &ctx.settings.actor,
            ctx.out,
        )?;
        held = true;
        let comp = rec.machine.prescribed_compensation();
        let _ = writeln!(human, "  {phase_note}\n  HOLD written; kill-switch engaged; prescribed: {}\n  next: `cutter compensate --run-id {id}`", comp.describe());
        runs_out.push(json!({"run_id": id, "committed_journal": journal, "committed_db": in_db, "compensation": comp, "state": rec.machine.state}));
    }
    if runs_out.is_empty() {
        human.push_str("no unfinished runs: nothing to recover\n");
    }
    ctx.out.emit(
        &human,
        json!({"runs": runs_out, "stale_lock": stale, "removed_partials": format!("{removed:?}")}),
    );
    Ok(if held { exit::HELD } else { exit::OK })
}
