//! `cutter compensate`: execute the compensation the matrix prescribes for a held (or
//! staged) run — never one chosen by hand. `--show` prints the plan and executes nothing.
//! Running it again after it completed, or after it was interrupted, is safe.

use cutter_core::{Compensation, Event, RunId, RunState};
use serde_json::json;

use super::run::{approvers, read_approvals};
use super::Ctx;
use crate::cli::CompensateArgs;
use crate::error::{exit, CliError, Result};
use crate::runs::{now_rfc3339, now_unix, RunRecord};
use crate::statedir::StateDir;

fn comp_err(e: cutter_compensation::Error) -> CliError {
    match e {
        e @ (cutter_compensation::Error::ApprovalRefused { .. }
        | cutter_compensation::Error::Invalid(_)) => CliError::Refused(e.to_string()),
        other => CliError::Failed(other.to_string()),
    }
}

/// `cutter compensate --run-id R`.
pub fn compensate(ctx: &Ctx, args: &CompensateArgs) -> Result<u8> {
    let dir = StateDir::open(ctx.settings.require_state_dir()?)?;
    let run = RunId::new(args.run_id.clone())?;
    let (_lock, _) = dir.lock(&format!("compensate {run}"), &now_rfc3339())?;
    let mut rec = RunRecord::require(&dir, &run)?.with_ledger(ctx);
    let failed = match &rec.machine.state {
        RunState::Held { failed_phase, .. } => *failed_phase,
        RunState::Compensated { .. } => None,
        RunState::Succeeded if rec.machine.final_phase == cutter_core::Phase::WriteVerify => None,
        other => {
            return Err(CliError::Refused(format!(
                "run {run} is {other}; only a held run (or one staged with --stage-only) is compensated{}",
                if matches!(other, RunState::Running { .. } | RunState::Passed { .. }) { " — run `cutter recover` first" } else { "" }
            )))
        }
    };
    if rec.machine.mode == cutter_core::Mode::DryRun {
        return Err(CliError::Refused(format!("run {run} was a dry-run: its writes died with its throwaway clone; nothing to compensate")));
    }
    let mut client = super::target_config(ctx)?
        .connect()
        .map_err(|e| CliError::Failed(e.to_string()))?;
    let facts =
        cutter_compensation::RunFacts::from_context(&rec.context, failed, rec.machine.committed)
            .and_then(|f| f.cross_check(&mut client))
            .map_err(comp_err)?;
    let plan = cutter_compensation::plan(&facts);
    let plan_json = serde_json::to_value(&plan).unwrap_or_default();
    if args.show {
        ctx.out.emit(
            &format!("{plan}\n(nothing executed; run without --show to execute)"),
            json!({"plan": plan_json}),
        );
        return Ok(exit::OK);
    }
    let compensation = plan.compensation();
    if compensation == Compensation::DiscardArtifact {
        // Refused while a later chain link names it (see `discard_backup`).
        let pin = super::backup::signing_pin(ctx)?;
        cutter_backup::discard_backup(&dir.backups(), &run, &pin).map_err(|e| match e {
            e @ cutter_backup::Error::StillNeeded { .. } => CliError::Refused(e.to_string()),
            e => CliError::Failed(e.to_string()),
        })?;
    }
    let revert_run = cutter_compensation::revert_run_for(&run);
    let mode = if args.hard_delete {
        let (set, verifier) = approvers(ctx, cutter_core::Purpose::HardDelete)?;
        let signed = read_approvals(&args.approvals)?;
        let database = cutter_pg::surface::target_database(&mut client).map_err(super::pg_err)?;
        cutter_compensation::RevertMode::Hard(
            cutter_compensation::HardDeleteApproval::verify(
                &plan,
                &revert_run,
                &database,
                &signed,
                &set,
                now_unix(),
                super::run::approval_policy(ctx)?,
                &verifier,
            )
            .map_err(comp_err)?,
        )
    } else {
        cutter_compensation::RevertMode::Soft
    };
    let report = if compensation.touches_database() {
        Some(
            cutter_compensation::execute(
                &mut client,
                &plan,
                &mode,
                &revert_run,
                &ctx.settings.actor,
            )
            .map_err(comp_err)?,
        )
    } else {
        None
    };
    if !matches!(rec.machine.state, RunState::Compensated { .. })
        && compensation != Compensation::None
    {
        rec.record(&dir, Event::Compensated { compensation })?;
    }
    rec.context.compensation = Some(compensation);
    rec.save(&dir)?;
    let human = match &report {
        Some(r) => format!("{r}\nnext: `cutter hold release` with SG_1 and SG_2 (if a HOLD is present), or `cutter void --run-id {run}` to release its claim"),
        None => format!("run {run}: {}", compensation.describe()),
    };
    ctx.out.emit(
        &human,
        json!({"run_id": run, "compensation": compensation, "plan": plan_json, "report": report}),
    );
    Ok(exit::OK)
}
