//! Commands over the state directory alone: `init`, `status`, `runs list`,
//! `kill-switch show|arm`, `hold show`.

use std::fmt::Write as _;
use std::path::Path;

use cutter_core::{KillSwitch, RunState};
use serde_json::json;

use super::Ctx;
use crate::error::{exit, Result};
use crate::output::Output;
use crate::runs::RunRecord;
use crate::settings::TEMPLATE;
use crate::statedir::{write_file, Replace, StateDir};

/// `cutter init DIR`.
pub fn init(dir: &Path, out: Output) -> Result<u8> {
    let state = StateDir::create(dir)?;
    let cfg = dir.join("cutter.toml");
    let wrote = if cfg.exists() {
        false
    } else {
        write_file(&cfg, TEMPLATE.as_bytes(), Replace::No)?;
        true
    };
    if state.kill_switch_file_missing() {
        state.set_kill_switch(&KillSwitch::Engaged)?;
    }
    let human = format!(
        "state directory ready: {}\n  runs/ state/ backups/ rollback/ locks/ (mode 0700)\n  kill-switch: engaged\n  config: {} ({})\nnext: edit the config, then `export CUTTER_CONFIG={}` and run `cutter doctor`",
        dir.display(),
        cfg.display(),
        if wrote { "written" } else { "kept, it already existed" },
        cfg.display()
    );
    out.emit(&human, json!({"state_dir": dir, "config": cfg, "config_written": wrote, "kill_switch": KillSwitch::Engaged}));
    Ok(exit::OK)
}

fn open(ctx: &Ctx) -> Result<StateDir> {
    StateDir::open(ctx.settings.require_state_dir()?)
}

/// The kill-switch for humans.
pub fn describe_ks(ks: &KillSwitch) -> String {
    match ks {
        KillSwitch::Engaged => "engaged (live runs refused)".into(),
        KillSwitch::Disarmed { run_id } => format!("disarmed for run {run_id} only"),
    }
}

/// `cutter kill-switch show`.
pub fn kill_switch_show(ctx: &Ctx) -> Result<u8> {
    let ks = open(ctx)?.kill_switch()?;
    ctx.out.emit(
        &format!("kill-switch: {}", describe_ks(&ks)),
        json!({"kill_switch": ks}),
    );
    Ok(exit::OK)
}

/// `cutter kill-switch arm`: always allowed, never needs approval.
pub fn kill_switch_arm(ctx: &Ctx) -> Result<u8> {
    let dir = open(ctx)?;
    dir.set_kill_switch(&KillSwitch::Engaged)?;
    ctx.out.emit(
        "kill-switch: engaged (live runs refused)",
        json!({"kill_switch": KillSwitch::Engaged}),
    );
    Ok(exit::OK)
}

/// `cutter hold show`.
pub fn hold_show(ctx: &Ctx) -> Result<u8> {
    let dir = open(ctx)?;
    match dir.hold()? {
        None => {
            ctx.out.emit("no HOLD", json!({"hold": null}));
            Ok(exit::OK)
        }
        Some(h) => {
            let human = format!(
                "HOLD by run {}\n  failed phase: {}\n  reason: {}\n  at: {}\n  prescribed compensation: {}\n  next: `cutter compensate --run-id {}`, then `cutter hold release` with SG_1 and SG_2",
                h.record.run_id,
                h.record.failed_phase.map_or("none (stopped between phases)".to_string(), |p| p.to_string()),
                h.record.reason,
                crate::runs::rfc3339(h.record.at),
                h.compensation.describe(),
                h.record.run_id
            );
            ctx.out.emit(&human, json!({"hold": h}));
            Ok(exit::HELD)
        }
    }
}

/// Pending, running, held or done. A compensated run is still held until its HOLD is
/// released — unless it never failed (a staged run that was compensated by choice).
fn bucket(r: &RunRecord) -> &'static str {
    match &r.machine.state {
        RunState::Created => "pending",
        RunState::Running { .. } | RunState::Passed { .. } => "running",
        RunState::Compensated { .. } if r.last_error.is_none() => "done",
        RunState::Held { .. } | RunState::Compensated { .. } => "held",
        RunState::Succeeded | RunState::Released | RunState::Voided => "done",
    }
}

fn load_all(dir: &StateDir) -> Result<Vec<RunRecord>> {
    let mut out = Vec::new();
    for id in dir.run_ids()? {
        if let Some(r) = RunRecord::load(dir, &id)? {
            out.push(r);
        }
    }
    out.sort_by(|a, b| {
        a.context
            .created_at
            .cmp(&b.context.created_at)
            .then(a.machine.run_id.cmp(&b.machine.run_id))
    });
    Ok(out)
}

fn run_line(r: &RunRecord) -> String {
    let alive = if matches!(
        r.machine.state,
        RunState::Running { .. } | RunState::Passed { .. }
    ) && !crate::statedir::process_alive(r.pid)
    {
        " — its process is gone: run `cutter recover`"
    } else {
        ""
    };
    format!(
        "{:<24} {:<8} {:<8} {:<32} {}{alive}",
        r.machine.run_id.as_str(),
        bucket(r),
        match r.machine.mode {
            cutter_core::Mode::DryRun => "dry-run",
            cutter_core::Mode::Live => "live",
        },
        r.machine.state.to_string(),
        r.context.document_id
    )
}

fn run_json(r: &RunRecord) -> serde_json::Value {
    json!({
        "run_id": r.machine.run_id,
        "bucket": bucket(r),
        "mode": r.machine.mode,
        "state": r.machine.state,
        "document_id": r.context.document_id,
        "plan_digest": r.context.plan_digest,
        "created_at": crate::runs::rfc3339(r.context.created_at),
        "updated_at": r.updated_at,
        "last_error": r.last_error,
    })
}

/// `cutter runs list`.
pub fn runs_list(ctx: &Ctx) -> Result<u8> {
    let dir = open(ctx)?;
    let runs = load_all(&dir)?;
    let mut human = format!(
        "{:<24} {:<8} {:<8} {:<32} {}\n",
        "RUN", "BUCKET", "MODE", "STATE", "DOCUMENT"
    );
    for r in &runs {
        let _ = writeln!(human, "{}", run_line(r));
    }
    if runs.is_empty() {
        human.push_str("(no runs)\n");
    }
    ctx.out.emit(
        &human,
        json!({"runs": runs.iter().map(run_json).collect::<Vec<_>>()}),
    );
    Ok(exit::OK)
}

/// `cutter status`: the kill-switch, the HOLD, and runs by bucket.
pub fn status(ctx: &Ctx) -> Result<u8> {
    let dir = open(ctx)?;
    let ks = dir.kill_switch()?;
    let hold = dir.hold()?;
    let runs = load_all(&dir)?;
    let mut human = format!(
        "state directory: {}\nkill-switch: {}\n",
        dir.root().display(),
        describe_ks(&ks)
    );
    match &hold {
        Some(h) => {
            let _ = writeln!(
                human,
                "HOLD: run {} — {} (compensation: {})",
                h.record.run_id, h.record.reason, h.compensation
            );
        }
        None => human.push_str("HOLD: none\n"),
    }
    for b in ["pending", "running", "held", "done"] {
        let of: Vec<&RunRecord> = runs.iter().filter(|r| bucket(r) == b).collect();
        let _ = writeln!(human, "{b}: {}", of.len());
        for r in of {
            let _ = writeln!(human, "  {}", run_line(r));
        }
    }
    ctx.out.emit(
        &human,
        json!({"state_dir": dir.root(), "kill_switch": ks, "hold": hold, "runs": runs.iter().map(run_json).collect::<Vec<_>>()}),
    );
    Ok(if hold.is_some() { exit::HELD } else { exit::OK })
}
