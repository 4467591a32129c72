//! What every operation gets ([`Ctx`]: the effective settings and how to report), and
//! the target's connection configuration built from them, with cutter's pinned
//! search_path.

use std::time::Duration;

use crate::error::{Error, Result};
use crate::output::Output;
use crate::settings::Settings;

/// What every command gets.
#[derive(Debug)]
pub struct Ctx {
    /// Effective settings.
    pub settings: Settings,
    /// Output mode.
    pub out: Output,
}

impl Ctx {
    /// The settings of the configuration file `config` alone (no `CUTTER_*` variable is
    /// read: an embedding program's settings are its file's), reporting through `out`.
    pub fn from_config(config: impl Into<std::path::PathBuf>, out: Output) -> Result<Self> {
        let overrides = crate::settings::Overrides {
            config: Some(config.into()),
            ..Default::default()
        };
        Ok(Self {
            settings: Settings::load(&overrides, &|_| None)?,
            out,
        })
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
    let cfg = cutter_pg::ConnConfig::resolve(url, &env).map_err(|e| Error::Usage(e.to_string()))?;
    // `options` given in the connection string take the place of PGOPTIONS: they must
    // then pin the search_path themselves.
    if !cfg
        .options()
        .is_some_and(|o| o.trim_end().ends_with(PINNED_SEARCH_PATH))
    {
        return Err(Error::Usage(format!(
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
pub fn pg_err(e: cutter_pg::Error) -> Error {
    Error::Failed(e.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::settings::Overrides;

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
