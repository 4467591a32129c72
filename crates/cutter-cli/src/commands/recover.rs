//! `cutter recover`: after a crash, find what each unfinished run committed — its
//! journal cross-checked with the database, where the change set's units, its ledger
//! rows and its verify result are the markers — catch the journal up with commits it
//! missed (carrying out their effects), hold the run and prescribe the matrix's
//! compensation. A run whose journal already ends held or succeeded gets the effects of
//! that last transition its process died before carrying out (kill-switch, post
//! snapshot, HOLD, SG_3). Never retries.

use std::fmt::Write as _;

use cutter_core::state::Observed;
use cutter_core::{Effect, Event, Phase, PhaseSet, RunMachine, RunState};
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
    if facts.cut_committed() {
        s = s.with(Phase::CutLegA);
    }
    if facts.change_set_row.is_some() {
        s = s.with(Phase::LegBRecord);
    }
    if facts.verify_result.is_some() {
        s = s.with(Phase::WriteVerify);
    }
    if facts.enacted() {
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
    let mut removed = cutter_backup::remove_stale_partials(&dir.backups())
        .map_err(|e| CliError::Failed(e.to_string()))?;
    // Plan copies of runs whose process died before the run had a directory.
    let plans = cutter_backup::remove_stale_partials(&dir.root().join("runs"))
        .map_err(|e| CliError::Failed(e.to_string()))?;
    removed.removed.extend(plans.removed);
    removed.in_use.extend(plans.in_use);
    let paths = |p: &[std::path::PathBuf]| {
        p.iter()
            .map(|p| p.display().to_string())
            .collect::<Vec<_>>()
    };
    let (gone, in_use) = (paths(&removed.removed), paths(&removed.in_use));
    let _ = writeln!(
        human,
        "partial files of dead processes removed: {}{}",
        if gone.is_empty() {
            "none".to_string()
        } else {
            gone.join(", ")
        },
        if in_use.is_empty() {
            String::new()
        } else {
            format!(" (still being written, left alone: {})", in_use.join(", "))
        }
    );
    let mut runs_out = Vec::new();
    let mut held = false;
    for id in dir.run_ids()? {
        let Some(mut rec) = RunRecord::load(&dir, &id)?.map(|r| r.with_ledger(ctx)) else {
            continue;
        };
        let (journal_machine, torn) = replay(&dir, &rec)?;
        rec.machine.clone_from(&journal_machine);
        if matches!(
            rec.machine.state,
            RunState::Held { .. } | RunState::Succeeded
        ) {
            if let Some(out) = complete_effects(ctx, &dir, &mut rec, &mut human)? {
                held |= matches!(rec.machine.state, RunState::Held { .. });
                runs_out.push(out);
            }
            continue;
        }
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
        // Catch the journal up with commits that happened after its last line, through
        // the state machine, carrying out each transition's effects (the final phase's
        // commit re-arms the kill-switch).
        for event in rec.machine.catch_up(in_db) {
            match &event {
                Event::PhaseCommitted { phase } => {
                    let _ = writeln!(human, "  {phase} committed in the database after the journal's last line; recording it");
                }
                Event::PhaseStarted { phase } => {
                    let _ = writeln!(human, "  {phase} committed in the database although the journal never recorded its start; recording its start and commit");
                }
                _ => {}
            }
            let effects = super::run::record_and_apply(
                &dir,
                &mut rec,
                event,
                Some(&exec_cfg),
                &ctx.settings.actor,
                ctx.out,
            )?;
            if effects.contains(&Effect::RearmKillSwitch) {
                let _ = writeln!(human, "  kill-switch engaged");
            }
        }
        let unexplained: Vec<Phase> = in_db
            .iter()
            .filter(|p| !rec.machine.committed.contains(*p))
            .collect();
        if !unexplained.is_empty() {
            let _ = writeln!(human, "  WARNING: the database shows {unexplained:?} committed, which the journal cannot account for; `cutter compensate` cross-checks the database before it acts — investigate first");
        }
        let journal_only: Vec<Phase> = rec
            .machine
            .committed
            .iter()
            .filter(|p| !in_db.contains(*p))
            .collect();
        if !journal_only.is_empty() {
            let _ = writeln!(human, "  WARNING: the journal says {journal_only:?} committed, of which the database (and backups/) show no trace");
        }
        if rec.machine.state == RunState::Succeeded {
            let _ = writeln!(human, "  the run had in fact succeeded");
            runs_out.push(json!({"run_id": id, "committed_journal": journal, "committed_db": in_db, "state": rec.machine.state}));
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
        super::run::record_and_apply(
            &dir,
            &mut rec,
            Event::Held {
                reason: format!("recovered after a crash: {phase_note}"),
            },
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
        json!({"runs": runs_out, "stale_lock": stale, "removed_partials": gone, "partials_in_use": in_use}),
    );
    Ok(if held { exit::HELD } else { exit::OK })
}

/// For a live run whose journal ends held or succeeded: carries out the effects of that
/// last transition which the state directory and the ledger do not show (the process died
/// after the journal line, before them). `None` if nothing was missing.
fn complete_effects(
    ctx: &Ctx,
    dir: &StateDir,
    rec: &mut RunRecord,
    human: &mut String,
) -> Result<Option<serde_json::Value>> {
    if rec.machine.mode != cutter_core::Mode::Live {
        return Ok(None);
    }
    let id = rec.machine.run_id.clone();
    let rollback = dir.rollback_dir(&id)?;
    let held = matches!(rec.machine.state, RunState::Held { .. });
    let mut seen = Observed {
        kill_switch: dir.kill_switch()?,
        // An unreadable HOLD is no HOLD: one for this run replaces it.
        hold: dir.hold().ok().flatten().map(|h| h.record.run_id),
        post_snapshot: rollback.join("post.json").exists(),
        sg3_file: rollback.join("sg3.json").exists(),
        sg3_ledger: None,
    };
    if !held {
        let outstanding = rec.machine.outstanding_effects(&seen);
        if outstanding.is_empty() {
            return Ok(None);
        }
        let _ = writeln!(human, "run {id}: journal says succeeded, but the kill-switch is still disarmed for it (the process died before re-arming it)");
        super::run::apply_effects(dir, rec, &outstanding, None, &ctx.settings.actor, ctx.out)?;
        let _ = writeln!(human, "  kill-switch engaged");
        return Ok(Some(
            json!({"run_id": id, "state": rec.machine.state, "reapplied": outstanding}),
        ));
    }
    // Whether the SG_3 row is in the ledger: the database is asked, and a database that
    // does not answer leaves the local effects to be carried out all the same.
    let exec_cfg = super::target_config(ctx).ok();
    let mut ledger_note = None;
    match exec_cfg.as_ref().map(|c| {
        c.connect()
            .map_err(|e| e.to_string())
            .and_then(|mut client| {
                cutter_governance::run_status_in_db(&mut client, &id).map_err(|e| e.to_string())
            })
    }) {
        Some(Ok(facts)) => seen.sg3_ledger = Some(!facts.sg3_escalations.is_empty()),
        Some(Err(e)) => ledger_note = Some(e),
        None => ledger_note = Some("no connection configuration".into()),
    }
    let outstanding = rec.machine.outstanding_effects(&seen);
    if outstanding.is_empty() {
        if let Some(e) = ledger_note {
            let _ = writeln!(human, "run {id}: held; whether its SG_3 escalation is in the ledger could not be checked ({e}); run `cutter recover` again once the database answers");
        }
        return Ok(None);
    }
    let _ = writeln!(
        human,
        "run {id}: journal says {}, but its process died before carrying out all of the failure's effects; missing: {}; carrying them out now",
        rec.machine.state,
        outstanding
            .iter()
            .map(effect_name)
            .collect::<Vec<_>>()
            .join(", ")
    );
    if rec.context.post_snapshot.is_none() {
        // Captured before the crash, not yet in run.json: the SG_3 record carries it.
        rec.context.post_snapshot =
            crate::statedir::read_json(&rollback.join("post.json")).unwrap_or(None);
    }
    super::run::apply_effects(
        dir,
        rec,
        &outstanding,
        exec_cfg.as_ref(),
        &ctx.settings.actor,
        ctx.out,
    )?;
    if let Some(other) = seen.hold.as_ref().filter(|h| **h != id) {
        let _ = writeln!(human, "  the HOLD present is run {other}'s and stays; run `cutter recover` again once it is released to write this run's");
    }
    if let Some(e) = ledger_note {
        let _ = writeln!(human, "  the SG_3 ledger row could not be checked ({e}); run `cutter recover` again once the database answers");
    }
    let done: String = outstanding
        .iter()
        .map(|e| match e {
            Effect::RearmKillSwitch => "kill-switch engaged; ",
            Effect::CapturePostSnapshot => "post snapshot captured; ",
            Effect::WriteHold => "HOLD written; ",
            Effect::RecordSg3 => "SG_3 escalation recorded; ",
            _ => "",
        })
        .collect();
    let comp = rec.machine.prescribed_compensation();
    let _ = writeln!(
        human,
        "  {done}prescribed: {}\n  next: `cutter compensate --run-id {id}`",
        comp.describe()
    );
    Ok(Some(json!({
        "run_id": id,
        "committed_journal": rec.machine.committed,
        "compensation": comp,
        "state": rec.machine.state,
        "reapplied": outstanding,
    })))
}

fn effect_name(e: &Effect) -> &'static str {
    match e {
        Effect::RearmKillSwitch => "the kill-switch re-arm",
        Effect::WriteHold => "the HOLD",
        Effect::CapturePostSnapshot => "the post snapshot",
        Effect::RecordSg3 => "the SG_3 record",
        Effect::PrescribeCompensation { .. } => "the prescription",
        Effect::RemoveHold => "the HOLD's removal",
        Effect::ReleaseClaim => "the claim's release",
    }
}
