//! One module per command group; `dispatch` routes a parsed command line.

use std::time::Duration;

use crate::cli::{Cli, Command, HoldCommand, KillSwitchCommand, PlanCommand, RunsCommand};
use crate::error::{CliError, Result};
use crate::output::Output;
use crate::settings::{Overrides, Settings};

mod approvers;
mod backup;
mod compensate;
mod config;
mod db;
mod demo;
mod dryrun;
mod govern;
mod plan;
mod recover;
pub mod run;
pub(crate) mod state;

/// What every command gets.
#[derive(Debug)]
pub struct Ctx {
    /// Effective settings.
    pub settings: Settings,
    /// Output mode.
    pub out: Output,
}

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
        Command::Report { run_id } => govern::report(&ctx, &run_id),
        Command::Plan(PlanCommand::Check { plan, offline }) => plan::check(&ctx, &plan, offline),
        Command::Plan(PlanCommand::Show { plan, rows }) => plan::show(&ctx, &plan, rows),
    }
}

fn millis(ms: u64) -> Option<Duration> {
    (ms > 0).then(|| Duration::from_millis(ms))
}

/// The search_path every session cutter opens on the target is pinned to, sent as a
/// startup option (it overrides `ALTER ROLE/DATABASE … SET search_path`). The SQL of the
/// phases, the ledger and compensation calls built-in functions unqualified
/// (`set_config`, `pg_try_advisory_lock`, `sha256`, …); under a search_path that lists
/// another schema before `pg_catalog`, a function planted there would run in cutter's
/// sessions instead. Every table cutter uses is schema-qualified, so nothing else needs
/// the search_path; `pg_temp` last keeps temporary objects from shadowing anything.
pub const PINNED_SEARCH_PATH: &str = "-c search_path=pg_catalog,pg_temp";

/// The target's connection configuration: `--database-url`, `CUTTER_DATABASE_URL`, the
/// config file's `[database].url`, then `DATABASE_URL`, else libpq's `PG*` variables
/// (the order [`crate::settings::Settings::load`] resolves); with the configured timeouts and
/// the search_path pinned ([`PINNED_SEARCH_PATH`], appended to `PGOPTIONS`).
pub fn target_config(ctx: &Ctx) -> Result<cutter_pg::ConnConfig> {
    config_for(ctx, ctx.settings.database_url.as_deref())
}

/// The configuration of connection string `url` (else libpq's `PG*` variables), with
/// the configured timeouts and the search_path pinned, as [`target_config`] builds it.
pub fn config_for(ctx: &Ctx, url: Option<&str>) -> Result<cutter_pg::ConnConfig> {
    let env = |k: &str| {
        let v = std::env::var(k).ok();
        if k != "PGOPTIONS" {
            return v;
        }
        Some(match v.filter(|o| !o.trim().is_empty()) {
            Some(o) => format!("{o} {PINNED_SEARCH_PATH}"),
            None => PINNED_SEARCH_PATH.to_string(),
        })
    };
    let cfg =
        cutter_pg::ConnConfig::resolve(url, &env).map_err(|e| CliError::Usage(e.to_string()))?;
    // `options` given in the connection string take the place of PGOPTIONS: they must
    // then pin the search_path themselves.
    if !cfg
        .options()
        .is_some_and(|o| o.trim_end().ends_with(PINNED_SEARCH_PATH))
    {
        return Err(CliError::Usage(format!(
            "the connection string sets `options`, which replaces cutter's pinned search_path: end them with `{PINNED_SEARCH_PATH}`"
        )));
    }
    Ok(cfg
        .with_statement_timeout(millis(ctx.settings.statement_timeout_ms))
        .with_lock_timeout(millis(ctx.settings.lock_timeout_ms))
        .with_application_name("cutter"))
}

/// Connects to the target.
pub fn connect_target(ctx: &Ctx) -> Result<cutter_pg::Target> {
    cutter_pg::Target::connect(&target_config(ctx)?).map_err(pg_err)
}

/// A database error as a CLI error.
pub fn pg_err(e: cutter_pg::Error) -> CliError {
    CliError::Failed(e.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ctx(url: &str) -> Ctx {
        let flags = Overrides {
            database_url: Some(url.into()),
            ..Overrides::default()
        };
        Ctx {
            settings: Settings::load(&flags, &|_| None).unwrap(),
            out: Output::new(false),
        }
    }

    #[test]
    fn every_session_pins_the_search_path() {
        let cfg = target_config(&ctx("postgres://cutter_exec@db.invalid/prod")).unwrap();
        let options = cfg.effective_options().unwrap();
        assert!(options.contains(PINNED_SEARCH_PATH), "{options}");
        // Options in the connection string replace PGOPTIONS: they must keep the pin.
        let err = target_config(&ctx(
            "postgres://cutter_exec@db.invalid/prod?options=-c%20work_mem%3D64MB",
        ))
        .unwrap_err()
        .to_string();
        assert!(
            err.contains("replaces cutter's pinned search_path"),
            "{err}"
        );
        assert!(target_config(&ctx(
            "postgres://cutter_exec@db.invalid/prod?options=-c%20work_mem%3D64MB%20-c%20search_path%3Dpg_catalog%2Cpg_temp"
        ))
        .is_ok());
    }
}
