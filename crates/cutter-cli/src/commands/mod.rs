//! One module per command group; `dispatch` routes a parsed command line.

use crate::cli::{Cli, Command, HoldCommand, KillSwitchCommand, PlanCommand, RunsCommand};
use crate::error::Result;
use crate::output::Output;
use crate::settings::{Overrides, Settings};

pub use cutter_run::ctx::{
    config_for, connect_target, pg_err, target_config, Ctx, PINNED_SEARCH_PATH,
};

mod approvers;
mod backup;
mod compensate;
mod config;
mod db;
mod demo;
mod govern;
mod plan;
mod recover;
pub mod run;
pub(crate) mod state;

/// Runs the command; returns the exit code on success paths that are not plain OK.
pub fn dispatch(cli: Cli, out: Output) -> Result<u8> {
    let flags = Overrides {
        config: cli.config.clone(),
        state_dir: cli.state_dir.clone(),
        database_url: cli.database_url.clone(),
    };
    if let Command::Init { dir } = &cli.command {
        return state::init(dir, out);
    }
    if let Command::Demo { keep } = &cli.command {
        return demo::demo(*keep, out);
    }
    if let Command::Completions { shell } = &cli.command {
        crate::manual::print_completions(*shell)?;
        return Ok(crate::error::exit::OK);
    }
    let settings = Settings::load(&flags, &|k| std::env::var(k).ok())?;
    let ctx = Ctx { settings, out };
    match cli.command {
        Command::Init { .. } | Command::Demo { .. } | Command::Completions { .. } => {
            unreachable!("handled above")
        }
        Command::Status => state::status(&ctx),
        Command::Runs(RunsCommand::List) => state::runs_list(&ctx),
        Command::KillSwitch(KillSwitchCommand::Show) => state::kill_switch_show(&ctx),
        Command::KillSwitch(KillSwitchCommand::Arm) => state::kill_switch_arm(&ctx),
        Command::Hold(HoldCommand::Show) => state::hold_show(&ctx),
        Command::Cut(args) => plan::cut(&ctx, &args),
        Command::Run(args) => run::run(&ctx, &args),
        Command::Doctor => backup::doctor(&ctx),
        Command::Config(crate::cli::ConfigCommand::Show) => config::show(&ctx),
        Command::Db(cmd) => db::db(&ctx, &cmd),
        Command::Approvers(cmd) => approvers::approvers(&ctx, &cmd),
        Command::Recover => recover::recover(&ctx),
        Command::Compensate(args) => compensate::compensate(&ctx, &args),
        Command::Backup(crate::cli::BackupCommand::Create { name, full }) => {
            backup::create(&ctx, name.as_deref(), full)
        }
        Command::Backup(crate::cli::BackupCommand::Selftest) => backup::selftest(&ctx),
        Command::Backup(crate::cli::BackupCommand::List) => backup::list(&ctx),
        Command::Backup(crate::cli::BackupCommand::Verify { artifact }) => {
            backup::verify(&ctx, &artifact)
        }
        Command::Backup(crate::cli::BackupCommand::RestoreProof { artifact, chain }) => {
            backup::restore_proof(&ctx, &artifact, chain)
        }
        Command::Backup(crate::cli::BackupCommand::Prune {
            keep_chains,
            dry_run,
        }) => backup::prune(&ctx, keep_chains as usize, dry_run),
        Command::Approve(args) => govern::approve(&ctx, &args),
        Command::KillSwitch(KillSwitchCommand::Disarm {
            run_id,
            plan,
            approvals,
        }) => govern::disarm(&ctx, &run_id, &plan, &approvals),
        Command::Hold(HoldCommand::Release { approvals }) => govern::release(&ctx, &approvals),
        Command::Void { run_id, reason } => govern::void(&ctx, &run_id, &reason),
        Command::Ledger(crate::cli::LedgerCommand::Verify) => govern::ledger_verify(&ctx),
        Command::Ledger(crate::cli::LedgerCommand::Log {
            run_id,
            limit,
            reverse,
        }) => govern::ledger_log(&ctx, run_id.as_deref(), limit, reverse),
        Command::Report(args) => govern::report(&ctx, &args),
        Command::Plan(PlanCommand::Check { plan, offline }) => plan::check(&ctx, &plan, offline),
        Command::Plan(PlanCommand::Show { plan, rows }) => plan::show(&ctx, &plan, rows),
        Command::Plan(PlanCommand::Diff { plan }) => plan::diff(&ctx, &plan),
    }
}
