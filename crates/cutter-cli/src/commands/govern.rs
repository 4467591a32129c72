//! Commands of governance: `approve`, `kill-switch disarm`, `hold release`, `void`,
//! `ledger verify`, `report`.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use cutter_core::{
    ApprovalGate, ApprovalScope, ApprovalStatement, ChangeSetId, Event, KillSwitch, Purpose, RunId,
    RunState, UnixTime,
};
use serde_json::json;

use super::run::{approval_policy, approvers, check_signed, read_approvals};
use super::{connect_target, Ctx};
use crate::cli::ApproveArgs;
use crate::error::{exit, CliError, Result};
use crate::runs::{now_rfc3339, now_unix, rfc3339, RunRecord};
use crate::statedir::{write_file, Replace, StateDir};
use cutter_run::report::report_extras;
use cutter_run::run::refuse_database_hold;

fn open(ctx: &Ctx) -> Result<StateDir> {
    StateDir::open(ctx.settings.require_state_dir()?)
}

/// The digest of the plan file an approval names (streamed: any size), and the digest
/// of the findings it records, if it records them: a live run's approvals sign them off.
fn plan_digests(
    plan: &Path,
) -> Result<(cutter_core::Sha256Digest, Option<cutter_core::Sha256Digest>)> {
    let file = crate::planfile::PlanFile::open(plan)?;
    let findings = file.header().findings.as_ref().map(|f| f.digest);
    Ok((file.digest()?, findings))
}

/// The purpose, run and change set an approval names, from `cutter approve`'s flags.
fn approve_scope(args: &ApproveArgs) -> Result<(Purpose, RunId, Option<ChangeSetId>)> {
    let purpose = Purpose::parse(&args.purpose).ok_or_else(|| {
        CliError::Usage(format!(
            "--purpose {:?}: one of live-run, hold-release, hard-delete (void needs no approval; \
             approver changes are written by `cutter approvers add|revoke --gate …`)",
            args.purpose
        ))
    })?;
    if matches!(purpose, Purpose::Void | Purpose::ApproverChange) {
        return Err(CliError::Usage(format!(
            "--purpose {purpose}: void needs no approval; approver-change statements are written by \
             `cutter approvers add|revoke --gate SG_1 -o FILE`"
        )));
    }
    let run_id = RunId::new(args.run_id.clone())?;
    let change_set = match (purpose, &args.change_set) {
        (Purpose::HardDelete, Some(cs)) => Some(ChangeSetId::parse(cs)?),
        (Purpose::HardDelete, None) => {
            return Err(CliError::Usage(
                "a hard-delete approval names the change set it deletes: --change-set cs-<run>"
                    .into(),
            ))
        }
        (_, Some(_)) => {
            return Err(CliError::Usage(
                "--change-set is only for --purpose hard-delete".into(),
            ))
        }
        (_, None) => None,
    };
    Ok((purpose, run_id, change_set))
}

/// `cutter approve`: writes a statement to sign, or verifies a signed one.
pub fn approve(ctx: &Ctx, args: &ApproveArgs) -> Result<u8> {
    let (purpose, run_id, change_set) = approve_scope(args)?;
    let (digest, plan_findings) = plan_digests(&args.plan)?;
    // Only a live run signs off the plan's findings.
    let findings_digest = plan_findings.filter(|_| purpose == Purpose::LiveRun);
    let mut target = connect_target(ctx)?;
    let database = target.database().clone();
    // Only a live run signs off the diff against the live document (an amendment).
    let diff_digest = match purpose {
        Purpose::LiveRun => {
            let (digest, conflicts) = super::plan::file_diff_digest(&mut target, &args.plan)?;
            super::plan::refuse_conflicts(&args.plan, &conflicts)?;
            digest
        }
        _ => None,
    };
    if let Some(files) = &args.verify {
        let (approver_set, verifier) = approvers(ctx, purpose)?;
        let a = cutter_governance::read_signed_approval(&files[0], &files[1])
            .map_err(|e| CliError::Usage(e.to_string()))?;
        let statement = ApprovalStatement::parse(&a.statement)
            .map_err(|e| CliError::Usage(format!("{}: {e}", files[0].display())))?;
        // Checked alone: pair it with a stand-in for the other gate so that only this
        // approval's own problems are reported.
        let verified = cutter_core::check_approvals(
            &ApprovalScope {
                purpose,
                run_id: &run_id,
                plan_digest: digest,
                target: &database,
                change_set: change_set.as_ref(),
                findings_digest,
                diff_digest,
            },
            &[a],
            &approver_set,
            now_unix(),
            approval_policy(ctx)?,
            &verifier,
        );
        let problems: Vec<String> = match verified {
            Ok(_) => vec![],
            Err(reasons) => reasons
                .into_iter()
                .filter(|r| !matches!(r, cutter_core::Refusal::MissingApproval { .. }))
                .map(|r| r.to_string())
                .collect(),
        };
        if problems.is_empty() {
            ctx.out.emit(
                &format!("{}: valid {} {purpose} approval of run {run_id} for plan {digest} on {database}, until {}", files[0].display(), statement.gate, rfc3339(statement.expires_at)),
                json!({"valid": true, "gate": statement.gate, "statement": statement}),
            );
            return Ok(exit::OK);
        }
        return Err(CliError::Refused(format!(
            "{}: not a valid approval:\n  - {}",
            files[0].display(),
            problems.join("\n  - ")
        )));
    }
    let gate = args
        .gate
        .as_deref()
        .and_then(ApprovalGate::parse)
        .ok_or_else(|| {
            CliError::Usage("--gate SG_1 or --gate SG_2 is required to write a statement".into())
        })?;
    let output = args
        .output
        .clone()
        .ok_or_else(|| CliError::Usage("-o FILE is required to write a statement".into()))?;
    if output.exists() {
        return Err(CliError::Refused(format!(
            "{} exists; statements are never overwritten",
            output.display()
        )));
    }
    let now = now_unix();
    let statement = ApprovalStatement {
        purpose,
        run_id: run_id.clone(),
        plan_digest: digest,
        change_set,
        findings_digest,
        diff_digest,
        target: database.clone(),
        gate,
        // A little slack for the signer's clock.
        not_before: UnixTime(now.0 - 300),
        expires_at: UnixTime(now.0 + approval_policy(ctx)?.max_lifetime_secs()),
    };
    write_file(&output, statement.canonical_text().as_bytes(), Replace::No)?;
    let human = format!(
        "{gate} {purpose} statement for run {run_id} written to {}\n  plan sha256 {digest}, {database}, expires {}\nsign it (approver's own key, detached):\n  gpg --detach-sign --armor {}",
        output.display(),
        rfc3339(statement.expires_at),
        output.display()
    );
    ctx.out.emit(
        &human,
        json!({"statement_file": output, "statement": statement}),
    );
    Ok(exit::OK)
}

/// `cutter kill-switch disarm --run-id R --plan P --approval …`.
pub fn disarm(ctx: &Ctx, run_id: &str, plan: &Path, approvals: &[String]) -> Result<u8> {
    let dir = open(ctx)?;
    let run_id = RunId::new(run_id)?;
    let (_lock, _) = dir.lock(&format!("kill-switch disarm {run_id}"), &now_rfc3339())?;
    if let Some(h) = dir.hold()? {
        return Err(CliError::Held(format!(
            "a HOLD from run {} is present ({}); release it first",
            h.record.run_id, h.record.reason
        )));
    }
    refuse_database_hold(&super::target_config(ctx)?)?;
    let (digest, findings_digest) = plan_digests(plan)?;
    let mut target = connect_target(ctx)?;
    let database = target.database().clone();
    // Conflicts are the run's to refuse, after the gate's own refusals.
    let (diff_digest, _) = super::plan::file_diff_digest(&mut target, plan)?;
    let keys = approvers(ctx, Purpose::LiveRun)?;
    let signed = read_approvals(approvals)?;
    let scope = ApprovalScope {
        purpose: Purpose::LiveRun,
        run_id: &run_id,
        plan_digest: digest,
        target: &database,
        change_set: None,
        findings_digest,
        diff_digest,
    };
    check_signed(ctx, &scope, &signed, &keys)?;
    let ks = KillSwitch::Disarmed {
        run_id: run_id.clone(),
    };
    dir.set_kill_switch(&ks)?;
    ctx.out.emit(
        &format!("kill-switch: disarmed for run {run_id} only (it re-arms when that run ends, or with `cutter kill-switch arm`)"),
        json!({"kill_switch": ks}),
    );
    Ok(exit::OK)
}

/// `cutter hold release --approval …`: needs the held run compensated (or nothing to
/// compensate) and SG_1 + SG_2 hold-release approvals for the held run and its plan
/// (the run's own live-run approvals are refused: another purpose).
pub fn release(ctx: &Ctx, approvals: &[String]) -> Result<u8> {
    let dir = open(ctx)?;
    let (_lock, _) = dir.lock("hold release", &now_rfc3339())?;
    let Some(hold) = dir.hold()? else {
        ctx.out
            .emit("no HOLD to release", json!({"released": false}));
        return Ok(exit::OK);
    };
    let run = hold.record.run_id.clone();
    let mut rec = RunRecord::require(&dir, &run)?.with_ledger(ctx);
    let database = connect_target(ctx)?.database().clone();
    let keys = approvers(ctx, Purpose::HoldRelease)?;
    let signed = read_approvals(approvals)?;
    let scope = ApprovalScope {
        purpose: Purpose::HoldRelease,
        run_id: &run,
        plan_digest: rec.context.plan_digest,
        target: &database,
        change_set: None,
        findings_digest: None,
        diff_digest: None,
    };
    let verified = check_signed(ctx, &scope, &signed, &keys)?;
    // Check the transition before writing anything to the database.
    rec.machine
        .apply(&Event::Released)
        .map_err(|t| CliError::Refused(format!("cannot release the HOLD yet: {}", t.why)))?;
    // The database's HOLD (V4) is released with the approvals, for every reviewer to
    // re-verify.
    let recorded: Vec<cutter_governance::ReleaseApproval> = verified
        .iter()
        .map(cutter_governance::ReleaseApproval::from)
        .collect();
    let mut client = super::target_config(ctx)?
        .connect()
        .map_err(|e| CliError::Failed(e.to_string()))?;
    cutter_governance::record_hold_release(&mut client, &run, &recorded, &ctx.settings.actor)
        .map_err(|e| CliError::Failed(e.to_string()))?;
    let effects = rec.record(&dir, Event::Released).map_err(|e| match e {
        CliError::Core(cutter_core::Error::Transition(t)) => {
            CliError::Refused(format!("cannot release the HOLD yet: {}", t.why))
        }
        other => other,
    })?;
    super::run::apply_effects(&dir, &mut rec, &effects, None, &ctx.settings.actor, ctx.out)?;
    ctx.out.emit(
        &format!("HOLD of run {run} released; the kill-switch stays engaged"),
        json!({"released": true, "run_id": run}),
    );
    Ok(exit::OK)
}

/// `cutter void --run-id R --reason …` (disable level 2).
pub fn void(ctx: &Ctx, run_id: &str, reason: &str) -> Result<u8> {
    let dir = open(ctx)?;
    let run = RunId::new(run_id)?;
    let (_lock, _) = dir.lock(&format!("void {run}"), &now_rfc3339())?;
    let rec = RunRecord::load(&dir, &run)?.map(|r| r.with_ledger(ctx));
    if let Some(r) = &rec {
        if matches!(
            r.machine.state,
            RunState::Running { .. } | RunState::Passed { .. }
        ) {
            return Err(CliError::Refused(format!(
                "run {run} is {}; run `cutter recover` first",
                r.machine.state
            )));
        }
        // The state machine refuses a void with uncompensated writes, naming why.
        r.machine
            .apply(&Event::Voided)
            .map_err(|t| CliError::Refused(format!("cannot void run {run}: {}", t.why)))?;
    }
    let mut client = super::target_config(ctx)?
        .connect()
        .map_err(|e| CliError::Failed(e.to_string()))?;
    let report = cutter_governance::void(&mut client, &run, reason, &ctx.settings.actor)
        .map_err(|e| CliError::Refused(e.to_string()))?;
    if let Some(mut r) = rec {
        if r.machine.state != RunState::Voided {
            super::run::record_and_apply(
                &dir,
                &mut r,
                Event::Voided,
                None,
                &ctx.settings.actor,
                ctx.out,
            )?;
        }
    }
    let human = if report.newly_voided {
        format!(
            "run {run} voided (review_decision {}); {}; the run id can never run again",
            report.decision_id,
            report
                .released_claim
                .as_ref()
                .map_or("it held no claim".to_string(), |c| format!(
                    "its claim on {} / {} was released",
                    c.document_id, c.source_version_id
                ))
        )
    } else {
        format!(
            "run {run} was already voided (review_decision {}); nothing written",
            report.decision_id
        )
    };
    ctx.out.emit(&human, json!({"run_id": run, "decision_id": report.decision_id, "newly_voided": report.newly_voided}));
    Ok(exit::OK)
}

/// `cutter ledger verify`.
pub fn ledger_verify(ctx: &Ctx) -> Result<u8> {
    let mut client = super::target_config(ctx)?
        .connect()
        .map_err(|e| CliError::Failed(e.to_string()))?;
    let report = cutter_governance::verify_ledger(&mut client)
        .map_err(|e| CliError::Failed(e.to_string()))?;
    // The database cannot check OpenPGP signatures: every recorded approval is
    // re-verified here against the registry's keys, as the gate accepted it. Statements
    // recorded before the registry (cutter-approval/1) may also be signed by the keys
    // the configuration names.
    let registry = cutter_governance::load_registry(&mut client)
        .map_err(|e| CliError::Failed(e.to_string()))?;
    let legacy = if ctx.settings.approver_keys.is_empty() {
        None
    } else {
        Some(
            cutter_governance::load_approvers(&ctx.settings.approver_keys)
                .map_err(|e| CliError::Usage(e.to_string()))?,
        )
    };
    let reverifier =
        cutter_governance::Reverifier::new(&registry, legacy.as_ref().map(|(s, v)| (s, v)))
            .map_err(|e| CliError::Failed(e.to_string()))?;
    let signatures = cutter_governance::reverify_ledger_signatures(&mut client, &reverifier)
        .map_err(|e| CliError::Failed(e.to_string()))?;
    let human = format!("{report}{signatures}");
    let value = serde_json::to_value(&report).unwrap_or_default();
    let intact = report.is_intact() && signatures.is_ok();
    ctx.out.emit(
        &human,
        json!({"intact": intact, "chains_intact": report.is_intact(), "ledger": value,
               "signatures": signatures}),
    );
    Ok(if intact { exit::OK } else { exit::FAILURE })
}

/// `cutter report --run-id R [--format markdown|json|html] [-o FILE] [--sign]`, and
/// `cutter report verify FILE --sig SIG`.
pub fn report(ctx: &Ctx, args: &crate::cli::ReportArgs) -> Result<u8> {
    use crate::cli::{ReportCommand, ReportFormat};
    let dir = open(ctx)?;
    if let Some(ReportCommand::Verify { report, sig }) = &args.command {
        return report_verify(ctx, &dir, report, sig);
    }
    let run_id = args
        .run_id
        .as_deref()
        .ok_or_else(|| CliError::Usage("cutter report needs --run-id".into()))?;
    let run = RunId::new(run_id)?;
    let rec = RunRecord::require(&dir, &run)?;
    let extras = report_extras(ctx, &dir, &rec);
    let js = crate::report::to_json(&rec, &extras);
    if args.sign {
        let signer = cutter_run::signed::ReportSigner::load(ctx)?;
        let (text, sig) = signer.sign(&js)?;
        let path = match &args.output {
            Some(p) => p.clone(),
            None => dir.run_dir(&run)?.join("report.json"),
        };
        let sig_path = PathBuf::from(format!("{}.asc", path.display()));
        write_file(&path, text.as_bytes(), Replace::Yes)?;
        write_file(&sig_path, sig.as_bytes(), Replace::Yes)?;
        let signed: serde_json::Value = serde_json::from_str(&text)
            .map_err(|e| CliError::internal(format!("re-reading the signed report: {e}")))?;
        ctx.out.emit(
            &format!(
                "report of run {run} written to {} and signed by the report key in {}\ncheck it with `cutter report verify {} --sig {}`",
                path.display(),
                sig_path.display(),
                path.display(),
                sig_path.display()
            ),
            json!({"report": signed, "written": path, "signature": sig_path}),
        );
        return Ok(exit::OK);
    }
    let body = match args.format {
        ReportFormat::Markdown => crate::report::to_markdown(&rec, &extras),
        ReportFormat::Json => serde_json::to_string_pretty(&js).unwrap_or_default() + "\n",
        ReportFormat::Html => cutter_run::html::to_html(&rec, &extras),
    };
    match &args.output {
        Some(path) => {
            write_file(path, body.as_bytes(), Replace::Yes)?;
            ctx.out.emit(
                &format!("report of run {run} written to {}", path.display()),
                json!({"report": js, "written": path}),
            );
        }
        None if ctx.out.json => ctx.out.emit("", json!({"report": js})),
        None => println!("{body}"),
    }
    Ok(exit::OK)
}

/// `cutter report verify FILE --sig SIG`: fails naming every field that differs.
fn report_verify(ctx: &Ctx, dir: &StateDir, report: &Path, sig: &Path) -> Result<u8> {
    let bytes = std::fs::read(report).map_err(|e| CliError::io(report, e))?;
    let signature = std::fs::read(sig).map_err(|e| CliError::io(sig, e))?;
    let v = cutter_run::signed::verify(ctx, dir, &bytes, &signature)?;
    if !v.differences.is_empty() || !v.refused.is_empty() {
        let lines: Vec<String> = v
            .differences
            .iter()
            .map(|d| {
                format!(
                    "  {}: signed {}, recomputed {}",
                    d.field, d.signed, d.recomputed
                )
            })
            .collect();
        let refused: Vec<String> = v
            .refused
            .iter()
            .map(|r| {
                format!(
                    "  review_decision {} (run_state of run {}): {}",
                    r.id, v.run_id, r.why
                )
            })
            .collect();
        return Err(CliError::Failed(format!(
            "{}: signed by the pinned report key {}, but {} field(s) differ from the ledger{}{}{}",
            report.display(),
            v.signer,
            lines.len(),
            if lines.is_empty() { "" } else { ":\n" },
            lines.join("\n"),
            if refused.is_empty() {
                String::new()
            } else {
                format!(
                    "\nand {} ledger row(s) of the run are refused — rows the run could not have appended \
                     (forged, e.g. by the writer role with psql), left out of the recomputation; \
                     `cutter ledger log --run-id {}` shows when they were appended:\n{}",
                    refused.len(),
                    v.run_id,
                    refused.join("\n")
                )
            }
        )));
    }
    let not_checked: Vec<String> = v
        .not_checked
        .iter()
        .map(|n| format!("not checked: {} ({})", n.field, n.why))
        .collect();
    ctx.out.emit(
        &format!(
            "{}: signed by the pinned report key {}; every field recomputed from the ledger matches\n{}",
            report.display(),
            v.signer,
            not_checked.join("\n")
        ),
        json!({"valid": true, "run_id": v.run_id, "signer": v.signer, "not_checked": v.not_checked}),
    );
    Ok(exit::OK)
}

/// `cutter ledger log [--run-id R] [--limit N] [--reverse]`: the ledger's history, newest
/// first (oldest first with `--reverse`), from the target database. Reads only.
pub fn ledger_log(ctx: &Ctx, run_id: Option<&str>, limit: u64, reverse: bool) -> Result<u8> {
    let run = run_id.map(RunId::new).transpose()?;
    let mut client = super::target_config(ctx)?
        .connect()
        .map_err(|e| CliError::Failed(e.to_string()))?;
    let mut entries = cutter_governance::ledger_log(&mut client, run.as_ref(), limit)
        .map_err(|e| CliError::Failed(e.to_string()))?;
    if reverse {
        entries.reverse();
    }
    let mut human = String::new();
    for e in &entries {
        let _ = writeln!(
            human,
            "{}  {:<10}  {:<12}  {}{}",
            e.at,
            e.kind,
            e.run_id,
            e.summary,
            e.actor
                .as_deref()
                .filter(|_| e.kind == "decision")
                .map_or(String::new(), |a| format!("  (by {a})"))
        );
    }
    if entries.is_empty() {
        human.push_str(match &run {
            Some(_) => "the ledger has no entries for this run\n",
            None => "the ledger is empty\n",
        });
    }
    ctx.out.emit(
        &human,
        json!({"run_id": run.as_ref().map(|r| r.as_str()), "limit": limit, "entries": entries}),
    );
    Ok(exit::OK)
}
