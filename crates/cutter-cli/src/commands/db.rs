//! `cutter db`: the schema's status, upgrade, validation and installation, through
//! cutter-pg's migration runner, connected as the schema owner (never the writer).

use std::time::Duration;

use serde_json::json;

use super::{config_for, pg_err, target_config, Ctx};
use crate::cli::{DbCommand, OwnerArgs};
use crate::error::{exit, CliError, Result};
use cutter_pg::migrate::{self, Checksum, Shape, UpgradeOptions};

/// Runs one `cutter db` command.
pub fn db(ctx: &Ctx, cmd: &DbCommand) -> Result<u8> {
    match cmd {
        DbCommand::Status(owner) => status(ctx, owner),
        DbCommand::Upgrade { owner, dry_run } => upgrade(ctx, owner, *dry_run, false, false),
        DbCommand::Validate(owner) => validate(ctx, owner),
        DbCommand::Install { owner, baseline } => upgrade(ctx, owner, false, true, *baseline),
    }
}

/// The owner's connection: `--owner-url`, else `CUTTER_OWNER_URL` / `[database]
/// owner_url`; refused when it names the writer's role.
fn owner_config(ctx: &Ctx, args: &OwnerArgs) -> Result<Option<cutter_pg::ConnConfig>> {
    let url = match args
        .owner_url
        .as_deref()
        .or(ctx.settings.owner_url.as_deref())
    {
        Some(u) => u,
        None => return Ok(None),
    };
    crate::settings::refuse_password("--owner-url", url)?;
    let owner = config_for(ctx, Some(url))?.with_application_name(migrate::APPLICATION_NAME);
    if let Ok(writer) = target_config(ctx) {
        if writer.user() == owner.user() {
            return Err(CliError::Refused(format!(
                "the owner URL names role {}, the writer's: the schema is changed only by its owner, \
                 never with the credentials cutter runs with; give the owner's URL",
                owner.user()
            )));
        }
    }
    Ok(Some(owner))
}

pub(crate) fn require_owner(ctx: &Ctx, args: &OwnerArgs) -> Result<cutter_pg::ConnConfig> {
    owner_config(ctx, args)?.ok_or_else(|| {
        CliError::Usage(
            "this command changes the schema and connects as its owner: pass --owner-url, set \
             CUTTER_OWNER_URL, or set [database] owner_url (never the writer's role)"
                .into(),
        )
    })
}

/// A read-only look: as the owner when one is configured, else as the writer.
fn reader(ctx: &Ctx, args: &OwnerArgs) -> Result<(postgres::Client, String)> {
    let cfg = match owner_config(ctx, args)? {
        Some(c) => c,
        None => target_config(ctx)?,
    };
    let label = label(&cfg);
    let c = cfg.connect().map_err(|e| CliError::Failed(e.to_string()))?;
    Ok((c, label))
}

fn lock_timeout(ctx: &Ctx, args: &OwnerArgs) -> Duration {
    Duration::from_millis(match args.lock_timeout_ms {
        Some(ms) => ms,
        None if ctx.settings.lock_timeout_ms > 0 => ctx.settings.lock_timeout_ms,
        None => 10_000,
    })
}

/// `user@host:port/database`: what an operator recognises (the password is never in it).
fn label(cfg: &cutter_pg::ConnConfig) -> String {
    format!("{}@{}/{}", cfg.user(), cfg.host_display(), cfg.dbname())
}

fn short(sha: &str) -> &str {
    sha.get(..12).unwrap_or(sha)
}

fn status(ctx: &Ctx, args: &OwnerArgs) -> Result<u8> {
    let (mut c, label) = reader(ctx, args)?;
    let shape = migrate::detect(&mut c).map_err(pg_err)?;
    let plan = migrate::plan_for(&mut c, shape.clone());
    let report = cutter_pg::preflight::preflight(&mut c).map_err(pg_err)?;
    let grants = migrate::grants(&mut c).map_err(pg_err)?;
    // Preflight names a grant the reference does not make as the object
    // `privilege P on <table | sequence S | function name> for ROLE`.
    let extra: std::collections::BTreeSet<&str> = report
        .findings
        .iter()
        .filter(|f| f.object.starts_with("privilege ") && f.problem.starts_with("granted"))
        .map(|f| f.object.as_str())
        .collect();
    let is_extra = |role: &str, object: &str, privilege: &str| {
        let finding = match object.split_once(' ') {
            Some(("table", name)) => format!("privilege {privilege} on {name} for {role}"),
            Some(("sequence", name)) => {
                format!("privilege {privilege} on sequence {name} for {role}")
            }
            Some(("function", name)) => {
                let short = name.split('(').next().unwrap_or(name);
                let short = short.rsplit('.').next().unwrap_or(short);
                format!("privilege {privilege} on {short} for {role}")
            }
            _ => return false,
        };
        extra.contains(finding.as_str())
    };
    let mut h = format!("database {label}\nschema: {shape}\n");
    let applied: Vec<serde_json::Value> = match &shape {
        Shape::Versioned { applied } => applied
            .iter()
            .map(|a| {
                let state = migrate::checksum(a);
                h.push_str(&format!(
                    "  applied V{} {:<30} sha256 {}…  {}  {} by {}\n",
                    a.version,
                    a.name,
                    short(&a.sha256),
                    match state {
                        Checksum::Matches => "checksum ok",
                        Checksum::Changed => "CHECKSUM CHANGED",
                        Checksum::Unknown => "UNKNOWN to this cutter",
                    },
                    a.installed_at,
                    a.applied_by.as_deref().unwrap_or("(not recorded)")
                ));
                json!({"version": a.version, "name": a.name, "sha256": a.sha256,
                       "checksum": state, "installed_at": a.installed_at, "applied_by": a.applied_by})
            })
            .collect(),
        _ => Vec::new(),
    };
    let (pending, plan_error) = match &plan {
        Ok(p) => (
            p.steps.iter().map(|s| s.to_string()).collect::<Vec<_>>(),
            None,
        ),
        Err(e) => (Vec::new(), Some(e.to_string())),
    };
    match (&plan_error, pending.is_empty()) {
        (Some(e), _) => h.push_str(&format!("upgrade: refused: {e}\n")),
        (None, true) => h.push_str("upgrade: nothing to apply\n"),
        (None, false) => {
            h.push_str(&format!("upgrade would apply {} step(s):\n", pending.len()));
            for s in &pending {
                h.push_str(&format!("  - {s}\n"));
            }
        }
    }
    if report.findings.is_empty() {
        h.push_str("drift from the reference: none\n");
    } else {
        h.push_str(&format!(
            "drift from the reference: {} finding(s)\n",
            report.findings.len()
        ));
        for f in &report.findings {
            h.push_str(&format!("  - {f}\n"));
        }
    }
    for w in &report.warnings {
        h.push_str(&format!("warning: {w}\n"));
    }
    h.push_str("grants (EXTRA = not granted by the reference):\n");
    let mut grant_rows = Vec::new();
    for g in &grants {
        let extras: Vec<&str> = g
            .privileges
            .split(", ")
            .filter(|p| is_extra(&g.role, &g.object, p))
            .collect();
        h.push_str(&format!(
            "  {:<13} {:<60} {}{}\n",
            g.role,
            g.object,
            g.privileges,
            if extras.is_empty() {
                String::new()
            } else {
                format!("  EXTRA: {}", extras.join(", "))
            }
        ));
        grant_rows.push(json!({"role": g.role, "object": g.object, "privileges": g.privileges, "extra": extras}));
    }
    ctx.out.emit(
        &h,
        json!({
            "database": label,
            "shape": shape,
            "reference_version": cutter_pg::schema::REFERENCE_VERSION,
            "applied": applied,
            "pending": pending,
            "upgrade_refused": plan_error,
            "drift": report.findings,
            "warnings": report.warnings,
            "grants": grant_rows,
        }),
    );
    Ok(exit::OK)
}

fn validate(ctx: &Ctx, args: &OwnerArgs) -> Result<u8> {
    let (mut c, label) = reader(ctx, args)?;
    let findings = migrate::validate(&mut c).map_err(pg_err)?;
    let human = if findings.is_empty() {
        format!(
            "database {label}: at reference version {}, checksums match, no drift",
            cutter_pg::schema::REFERENCE_VERSION
        )
    } else {
        findings.join("\n")
    };
    ctx.out.emit(
        &human,
        json!({"database": label, "valid": findings.is_empty(), "findings": findings}),
    );
    Ok(if findings.is_empty() {
        exit::OK
    } else {
        exit::FAILURE
    })
}

fn upgrade(
    ctx: &Ctx,
    args: &OwnerArgs,
    dry_run: bool,
    install: bool,
    baseline: bool,
) -> Result<u8> {
    let cfg = require_owner(ctx, args)?;
    let label = label(&cfg);
    let mut c = cfg.connect().map_err(|e| CliError::Failed(e.to_string()))?;
    let options = UpgradeOptions {
        lock_timeout: lock_timeout(ctx, args),
        install,
    };
    if dry_run {
        let plan = migrate::plan(&mut c).map_err(refusal)?;
        let sql: Vec<String> = plan
            .steps
            .iter()
            .map(|s| s.sql(options.lock_timeout))
            .collect();
        let human = if sql.is_empty() {
            format!("-- {label}: {}; nothing to apply", plan.shape)
        } else {
            format!(
                "-- {label}: {}; {} step(s), nothing applied (--dry-run)\n\n{}",
                plan.shape,
                sql.len(),
                sql.join("\n")
            )
        };
        ctx.out.emit(
            &human,
            json!({"database": label, "dry_run": true, "shape": plan.shape, "steps": plan.steps,
                   "sql": sql}),
        );
        return Ok(exit::OK);
    }
    let mut spinner: Option<indicatif::ProgressBar> = None;
    let out = ctx.out;
    let report = migrate::upgrade(&mut c, &options, &mut |step| {
        spinner = Some(out.spinner(&format!("{step}")));
    })
    .map_err(refusal)?;
    drop(spinner);
    if baseline {
        cutter_pg::schema::install_baseline(&mut c).map_err(pg_err)?;
    }
    let mut human = if report.done.is_empty() {
        format!(
            "database {label}: already at reference version {}; nothing to apply",
            report.to
        )
    } else {
        format!(
            "database {label}: {} → version {} in {} step(s)",
            report.from,
            report.to,
            report.done.len()
        )
    };
    for d in &report.done {
        human.push_str(&format!("\n  {} ({} ms)", d.step, d.millis));
    }
    if baseline {
        human.push_str("\n  baseline fixture: 158 units, 165 versions, 60 lifecycle rows");
    }
    ctx.out.emit(
        &human,
        json!({"database": label, "from": report.from, "to": report.to, "done": report.done,
               "baseline": baseline}),
    );
    Ok(exit::OK)
}

/// The runner's refusals (writer role, changed checksum, lock held) are refusals (exit
/// 3); a failed step is a failure.
fn refusal(e: cutter_pg::Error) -> CliError {
    match e {
        cutter_pg::Error::NotOwner { .. } | cutter_pg::Error::MigrationChanged { .. } => {
            CliError::Refused(e.to_string())
        }
        other => CliError::Failed(other.to_string()),
    }
}
