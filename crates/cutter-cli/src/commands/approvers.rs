//! `cutter approvers list|add|revoke`: the approver registry in the database
//! (reference V5). Reads as the writer (or the owner); changes only as the schema owner,
//! each recorded in the ledger; after the first two approvers, each change needs SG_1
//! and SG_2 approver-change approvals by two registered approvers, checked here against
//! the registry before anything is written, and again, as far as a database can, by the
//! database.

use std::collections::BTreeSet;
use std::path::Path;

use cutter_core::{ApprovalGate, ApprovalScope, ApprovalStatement, Fingerprint, Purpose, UnixTime};
use cutter_governance::{ApproverChange, Registry};
use serde_json::json;

use super::run::{approval_policy, approvers_in, check_signed, read_approvals};
use super::Ctx;
use crate::cli::{ApproversCommand, ChangeArgs};
use crate::error::{exit, CliError, Result};
use crate::runs::{now_unix, rfc3339};
use crate::statedir::{write_file, Replace};

/// Dispatches `cutter approvers …`.
pub fn approvers(ctx: &Ctx, cmd: &ApproversCommand) -> Result<u8> {
    match cmd {
        ApproversCommand::List => list(ctx),
        ApproversCommand::Add {
            key,
            name,
            purposes,
            change,
        } => {
            let bytes = std::fs::read(key).map_err(|e| CliError::io(key, e))?;
            let text = String::from_utf8_lossy(&bytes);
            let change_value =
                ApproverChange::add(&text, name, parse_purposes(purposes)?).map_err(gov)?;
            apply(ctx, &change_value, change)
        }
        ApproversCommand::Revoke {
            fingerprint,
            change,
        } => {
            let fpr = Fingerprint::new(fingerprint)
                .map_err(|e| CliError::Usage(format!("{fingerprint}: {e}")))?;
            let registry = read_registry(ctx, change)?;
            let entry = registry
                .get(&fpr)
                .ok_or_else(|| CliError::Refused(format!("{fpr} is not a registered approver")))?;
            if entry.revoked.is_some() {
                return Err(CliError::Refused(format!(
                    "{fpr} ({}) is already revoked",
                    entry.name
                )));
            }
            apply(ctx, &ApproverChange::revoke(entry), change)
        }
    }
}

fn gov(e: cutter_governance::Error) -> CliError {
    CliError::Refused(e.to_string())
}

fn parse_purposes(given: &[String]) -> Result<BTreeSet<Purpose>> {
    if given.is_empty() {
        return Ok(Purpose::ALL.into_iter().collect());
    }
    given
        .iter()
        .flat_map(|g| g.split(','))
        .map(|p| {
            Purpose::parse(p.trim()).ok_or_else(|| {
                CliError::Usage(format!(
                    "--purpose {p:?}: one of live-run, hold-release, hard-delete, void, approver-change"
                ))
            })
        })
        .collect()
}

/// The registry, read as the owner when one is given, else as the writer.
fn read_registry(ctx: &Ctx, change: &ChangeArgs) -> Result<Registry> {
    let cfg = match super::db::require_owner(ctx, &change.owner) {
        Ok(c) => c,
        Err(_) => super::target_config(ctx)?,
    };
    let mut c = cfg.connect().map_err(|e| CliError::Failed(e.to_string()))?;
    cutter_governance::load_registry(&mut c).map_err(gov)
}

fn list(ctx: &Ctx) -> Result<u8> {
    let mut c = super::target_config(ctx)?
        .connect()
        .map_err(|e| CliError::Failed(e.to_string()))?;
    let registry = cutter_governance::load_registry(&mut c).map_err(gov)?;
    let mut h = format!("{} approver(s) registered\n", registry.approvers.len());
    for a in &registry.approvers {
        let purposes: Vec<&str> = a.purposes.iter().map(|p| p.name()).collect();
        h.push_str(&format!(
            "  {}  {:<20} {:<58} added {} by {} (review_decision {}){}\n",
            a.fingerprint,
            a.name,
            purposes.join(","),
            a.added_at,
            a.added_by,
            a.added_decision_id,
            match &a.revoked {
                Some(r) => format!(
                    "; REVOKED {} by {} (review_decision {})",
                    r.at, r.by, r.decision_id
                ),
                None => String::new(),
            }
        ));
    }
    if registry.needs_bootstrap() {
        h.push_str("bootstrap: the schema owner registers the first two approvers alone (`cutter approvers add KEY --name N --owner-url …`)\n");
    }
    ctx.out.emit(
        &h,
        json!({"approvers": registry.approvers, "bootstrap_pending": registry.needs_bootstrap()}),
    );
    Ok(exit::OK)
}

/// Writes the approver-change statement for `--gate`, or applies the change as the
/// owner (bootstrap, or with two verified approver-change approvals).
fn apply(ctx: &Ctx, change: &ApproverChange, args: &ChangeArgs) -> Result<u8> {
    let owner_cfg = super::db::require_owner(ctx, &args.owner)?;
    let mut owner = owner_cfg
        .connect()
        .map_err(|e| CliError::Failed(e.to_string()))?;
    if let (Some(gate), Some(output)) = (&args.gate, &args.output) {
        let database = cutter_pg::surface::target_database(&mut owner).map_err(super::pg_err)?;
        let gate = ApprovalGate::parse(gate)
            .ok_or_else(|| CliError::Usage(format!("--gate {gate:?}: SG_1 or SG_2")))?;
        return write_statement(ctx, change, &database, gate, output);
    }
    apply_as_owner(ctx, &mut owner, change, &args.approvals)
}

/// Applies `change` over `owner`, a connection as the schema owner: the bootstrap of
/// the first two approvers, or a change with `approvals` (STATEMENT:SIGNATURE) verified
/// against the registry's approver-change approvers. What `cutter approvers add|revoke`
/// and the demo's registration run.
pub fn apply_as_owner(
    ctx: &Ctx,
    owner: &mut postgres::Client,
    change: &ApproverChange,
    approvals: &[String],
) -> Result<u8> {
    let database = cutter_pg::surface::target_database(owner).map_err(super::pg_err)?;
    let change_id = change.change_id();
    let digest = change.digest();
    let registry = cutter_governance::load_registry(owner).map_err(gov)?;
    let bootstrap =
        registry.needs_bootstrap() && change.action == cutter_governance::ChangeAction::Add;
    let verified = if bootstrap {
        if !approvals.is_empty() {
            return Err(CliError::Usage(format!(
                "the registry holds {} approver(s): the first two are registered by the owner alone; give no --approval",
                registry.approvers.len()
            )));
        }
        Vec::new()
    } else {
        let signed = read_approvals(approvals)?;
        if signed.is_empty() {
            return Err(CliError::Refused(format!(
                "{change}: the registry already holds {} approvers, so this change needs SG_1 and SG_2 \
                 approver-change approvals by two registered approvers; write the statements with \
                 `--gate SG_1 -o FILE` (and SG_2), have them signed, and pass them with --approval",
                registry.approvers.len()
            )));
        }
        let keys = approvers_in(ctx, owner, Purpose::ApproverChange)?;
        let scope = ApprovalScope {
            purpose: Purpose::ApproverChange,
            run_id: &change_id,
            plan_digest: digest,
            target: &database,
            change_set: None,
            findings_digest: None,
            diff_digest: None,
        };
        check_signed(ctx, &scope, &signed, &keys)?
    };
    let id =
        cutter_governance::apply_change(owner, change, &verified, bootstrap, &ctx.settings.actor)
            .map_err(gov)?;
    ctx.out.emit(
        &format!(
            "{change}: done (review_decision {id}{})",
            if bootstrap { ", bootstrap by the schema owner" } else { "" }
        ),
        json!({"change": change.to_string(), "action": change.action, "fingerprint": change.fingerprint,
               "decision_id": id, "bootstrap": bootstrap}),
    );
    Ok(exit::OK)
}

fn write_statement(
    ctx: &Ctx,
    change: &ApproverChange,
    database: &cutter_core::TargetDatabase,
    gate: ApprovalGate,
    output: &Path,
) -> Result<u8> {
    if output.exists() {
        return Err(CliError::Refused(format!(
            "{} exists; statements are never overwritten",
            output.display()
        )));
    }
    let now = now_unix();
    let statement = ApprovalStatement {
        purpose: Purpose::ApproverChange,
        run_id: change.change_id(),
        plan_digest: change.digest(),
        change_set: None,
        findings_digest: None,
        diff_digest: None,
        target: database.clone(),
        gate,
        not_before: UnixTime(now.0 - 300),
        expires_at: UnixTime(now.0 + approval_policy(ctx)?.max_lifetime_secs()),
    };
    write_file(output, statement.canonical_text().as_bytes(), Replace::No)?;
    ctx.out.emit(
        &format!(
            "{gate} approver-change statement written to {}\n  {change}\n  change sha256 {}, expires {}\nsign it (approver's own key, detached):\n  gpg --detach-sign --armor {}",
            output.display(),
            change.digest(),
            rfc3339(statement.expires_at),
            output.display()
        ),
        json!({"statement_file": output, "statement": statement}),
    );
    Ok(exit::OK)
}
