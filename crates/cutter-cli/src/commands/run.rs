//! `cutter run`: the arguments as a [`cutter_run::RunRequest`], the signal handler, then
//! the library's orchestrator ([`cutter_run::run()`], live and rehearsal); prints the
//! finished run's summary.

use serde_json::json;

use super::Ctx;
use crate::cli::{RunArgs, RunMode};
use crate::error::{exit, CliError, Result};

pub use cutter_run::run::{
    apply_effects, approval_policy, approvers, approvers_in, backup_recipient, check_signed,
    read_approvals, record_and_apply,
};

/// The library's request for `cutter run`'s arguments.
pub fn request(args: &RunArgs) -> cutter_run::RunRequest {
    cutter_run::RunRequest {
        plan: args.plan.clone(),
        run_id: args.run_id.clone(),
        mode: match args.mode {
            RunMode::Live => cutter_core::Mode::Live,
            RunMode::DryRun => cutter_core::Mode::DryRun,
        },
        approvals: args.approvals.clone(),
        stage_only: args.stage_only,
    }
}

/// `cutter run`.
pub fn run(ctx: &Ctx, args: &RunArgs) -> Result<u8> {
    crate::interrupt::install()
        .map_err(|e| CliError::internal(format!("catching SIGINT and SIGTERM: {e}")))?;
    let done = cutter_run::run(ctx, &request(args))?;
    ctx.out.emit(&done.summary, json!({"run": done.report}));
    Ok(exit::OK)
}
