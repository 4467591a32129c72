//! `cutter cut`, `cutter plan check`, `cutter plan diff`, `cutter plan show`: documents to
//! plans, and plans checked against the row contract and compared with the live document
//! before anything is written.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::path::Path;

use cutter_core::{Conflict, DocumentId, PlanDiff, PlanDigester, SourceVersionId};
use serde_json::json;

use super::Ctx;
use crate::cli::{CutArgs, InputFormat};
use crate::error::{exit, CliError, Result};
use crate::planfile::PlanFile;
use crate::statedir::{write_file, Replace};

/// `cutter cut FILE --document-id … --source-version … -o PLAN`.
pub fn cut(ctx: &Ctx, args: &CutArgs) -> Result<u8> {
    let bytes = std::fs::read(&args.file).map_err(|e| CliError::io(&args.file, e))?;
    let mut opts = cutter_doc::CutOptions::new(
        DocumentId::new(args.document_id.clone())?,
        SourceVersionId::new(args.source_version.clone())?,
        ctx.settings.actor.clone(),
    );
    opts.publication_type = args.publication_type.clone();
    opts.accept_forbidden_characters = args.accept_forbidden_characters;
    opts.format = match args.format {
        InputFormat::Auto => cutter_doc::InputFormat::Auto,
        InputFormat::Html => cutter_doc::InputFormat::Html,
        InputFormat::Text => cutter_doc::InputFormat::Text,
    };
    let outcome = cutter_doc::cut(&bytes, &opts)
        .map_err(|e| CliError::Usage(format!("{}: {e}", args.file.display())))?;
    if args.output.exists() {
        return Err(CliError::Refused(format!(
            "{} already exists; cutter never overwrites a plan — choose another -o path or remove it",
            args.output.display()
        )));
    }
    let plan_json = outcome.plan.to_json();
    write_file(&args.output, plan_json.as_bytes(), Replace::No)?;
    if let Some(r) = &args.report {
        write_file(r, outcome.report.to_string().as_bytes(), Replace::Yes)?;
    }
    let digest = outcome.plan.digest();
    let findings = outcome
        .plan
        .findings
        .as_ref()
        .map(ToString::to_string)
        .unwrap_or_default();
    let human = format!(
        "{}\nplan: {} ({} rows, sha256 {digest})\n{findings}\nnext: `cutter plan check {}`",
        outcome.report,
        args.output.display(),
        outcome.plan.rows.len(),
        args.output.display()
    );
    ctx.out.emit(&human, json!({"plan": args.output, "rows": outcome.plan.rows.len(), "plan_digest": digest, "findings": outcome.plan.findings, "report": outcome.report}));
    Ok(exit::OK)
}

pub use cutter_run::amend::{compare, file_diff_digest, refuse_conflicts};

/// `cutter plan diff PLAN`.
pub fn diff(ctx: &Ctx, plan: &Path) -> Result<u8> {
    let p = PlanFile::open(plan)?;
    let mut target = super::connect_target(ctx)?;
    let vocab = target.vocabularies().map_err(super::pg_err)?;
    let valid = p
        .validate(&vocab)
        .map_err(|r| CliError::Usage(format!("{}: {r}", plan.display())))?;
    let (d, conflicts) = compare(&mut target, &valid)?;
    let mut human = format!(
        "plan {} against {} — document {}, source version {}\n{}",
        plan.display(),
        target.label(),
        d.document_id,
        d.source_version_id,
        cutter_core::amend::summary_table(&d)
    );
    if let Some(w) = d.scheme_warning() {
        let _ = write!(human, "\nwarning: {w}");
    }
    for c in &conflicts {
        let _ = write!(human, "\nconflict: {c}");
    }
    if !conflicts.is_empty() {
        let _ = write!(
            human,
            "\n{} conflict(s): `cutter plan check` refuses this plan",
            conflicts.len()
        );
    }
    ctx.out.emit(&human, diff_json(&d, Some(&conflicts)));
    Ok(exit::OK)
}

/// The `--json` form of a diff (`plan diff`, `plan check`).
fn diff_json(d: &PlanDiff, conflicts: Option<&[Conflict]>) -> serde_json::Value {
    let counts: serde_json::Map<String, serde_json::Value> = d
        .summary()
        .iter()
        .map(|s| (s.class.name().to_string(), json!(s.count)))
        .collect();
    json!({
        "document_id": d.document_id,
        "source_version_id": d.source_version_id,
        "plan_digest": d.plan_digest,
        "amendment": d.is_amendment(),
        "diff_digest": d.digest(),
        "approval_diff_digest": d.approval_digest(),
        "counts": counts,
        "classes": d.summary(),
        "entries": d.written().collect::<Vec<_>>(),
        "warning": d.scheme_warning(),
        "conflicts": conflicts,
    })
}

/// `cutter plan check PLAN`.
pub fn check(ctx: &Ctx, plan: &Path, offline: bool) -> Result<u8> {
    let p = PlanFile::open(plan)?;
    let mut target = None;
    let (vocab, source) = if offline {
        (
            cutter_pg::schema::reference_vocabularies(),
            "the reference schema".to_string(),
        )
    } else {
        let t = target.insert(super::connect_target(ctx)?);
        let label = t.label().to_string();
        (t.vocabularies().map_err(super::pg_err)?, label)
    };
    let rows = p.header().rows;
    let findings = p.header().findings.as_ref();
    match p.validate(&vocab) {
        Ok(valid) => {
            let summary = match findings {
                Some(f) => {
                    let expected = f.compute_digest(&valid.digest());
                    if f.digest != expected {
                        return Err(CliError::Usage(format!(
                            "{}: the findings digest {} does not match the findings and rows (expected {expected}): the plan was changed after the cut; cut again",
                            plan.display(),
                            f.digest
                        )));
                    }
                    f.to_string()
                }
                None => "findings: none recorded (a plan cut before findings were recorded)".into(),
            };
            let (diff_line, diff) = match target.as_mut() {
                None => (
                    "live units: not compared (--offline); `cutter plan diff` compares with the target".to_string(),
                    serde_json::Value::Null,
                ),
                Some(t) => {
                    let (d, conflicts) = compare(t, &valid)?;
                    refuse_conflicts(plan, &conflicts)?;
                    let warning = d
                        .scheme_warning()
                        .map_or(String::new(), |w| format!("\nwarning: {w}"));
                    (
                        format!(
                            "live units: {}{warning}",
                            cutter_core::amend::counts_line(&d)
                        ),
                        diff_json(&d, None),
                    )
                }
            };
            let human = format!(
                "{}: {rows} rows satisfy the row contract (vocabularies of {source})\nplan digest: sha256 {}\n{summary}\n{diff_line}",
                plan.display(),
                valid.digest()
            );
            ctx.out.emit(&human, json!({"valid": true, "rows": rows, "plan_digest": valid.digest(), "vocabularies_from": source, "findings": findings, "diff": diff}));
            Ok(exit::OK)
        }
        Err(report) => {
            if ctx.out.json {
                ctx.out.emit(
                    "",
                    json!({"valid": false, "rows": rows, "violations": report.violations, "findings": findings}),
                );
                return Ok(exit::USAGE);
            }
            Err(CliError::Usage(format!("{}: {report}", plan.display())))
        }
    }
}

/// `cutter plan show PLAN`: one reading, whatever the plan's size.
pub fn show(ctx: &Ctx, plan: &Path, rows: usize) -> Result<u8> {
    let p = PlanFile::open(plan)?;
    let h = p.header();
    let mut per_type: BTreeMap<String, usize> = BTreeMap::new();
    let mut first = Vec::new();
    let mut digest = PlanDigester::new(&h.document_id, &h.source_version_id, h.rows);
    for r in p.rows() {
        digest.row(&r);
        *per_type
            .entry(r.section_type.clone().unwrap_or_else(|| "(null)".into()))
            .or_default() += 1;
        if first.len() < rows {
            first.push(r);
        }
    }
    let digest = digest.finish();
    let mut human = format!(
        "plan {}\n  document: {} (source version {})\n  rows: {}\n  sha256: {digest}\n  by section type:",
        plan.display(),
        h.document_id,
        h.source_version_id,
        h.rows
    );
    for (t, n) in &per_type {
        let _ = write!(human, " {t}={n}");
    }
    human.push('\n');
    for (i, r) in first.iter().enumerate() {
        let first_line = r.body.lines().next().unwrap_or_default();
        let short: String = first_line.chars().take(70).collect();
        let _ = writeln!(
            human,
            "  {:>5}  {:<48} {}",
            i + 1,
            r.canonical_address,
            short
        );
    }
    if h.rows > first.len() as u64 {
        let _ = writeln!(human, "  … {} more", h.rows - first.len() as u64);
    }
    ctx.out.emit(
        &human,
        json!({"document_id": h.document_id, "source_version_id": h.source_version_id, "rows": h.rows, "plan_digest": digest, "by_section_type": per_type, "first_rows": first}),
    );
    Ok(exit::OK)
}
