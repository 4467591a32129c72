//! An amendment's comparison with what is live: the diff the approvals must name
//! (`diff_digest`) and what keeps a plan from being written over the live document.

use std::path::Path;

use cutter_core::{Conflict, PlanDiff, PlanFacts};

use crate::ctx::pg_err;
use crate::error::{Error, Result};
use crate::planfile::PlanFile;

/// The plan compared with the live document, read in one snapshot of the target.
pub fn compare(
    target: &mut cutter_pg::Target,
    plan: &dyn PlanFacts,
) -> Result<(PlanDiff, Vec<Conflict>)> {
    target
        .read_only(|tx| cutter_pg::amend::plan_diff(tx, plan))
        .map_err(pg_err)
}

/// What the approvals of a live run of `plan` must name as `diff_digest`
/// ([`PlanDiff::approval_digest`]), and what keeps the plan from being written (the
/// caller refuses them, after the gate's own refusals).
pub fn approval_diff_digest(
    target: &mut cutter_pg::Target,
    plan: &dyn PlanFacts,
) -> Result<(Option<cutter_core::Sha256Digest>, Vec<Conflict>)> {
    let (d, conflicts) = compare(target, plan)?;
    Ok((d.approval_digest(), conflicts))
}

/// [`approval_diff_digest`] of a plan file, validated against the target's
/// vocabularies first.
pub fn file_diff_digest(
    target: &mut cutter_pg::Target,
    plan: &Path,
) -> Result<(Option<cutter_core::Sha256Digest>, Vec<Conflict>)> {
    let vocab = target.vocabularies().map_err(pg_err)?;
    let valid = PlanFile::open(plan)?
        .validate(&vocab)
        .map_err(|r| Error::Usage(format!("{}: {r}", plan.display())))?;
    approval_diff_digest(target, &valid)
}

/// A refusal listing what keeps a plan from being written.
pub fn refuse_conflicts(plan: &Path, conflicts: &[Conflict]) -> Result<()> {
    if conflicts.is_empty() {
        return Ok(());
    }
    let lines: Vec<String> = conflicts.iter().map(|c| format!("  - {c}")).collect();
    Err(Error::Refused(format!(
        "{}: {} address(es) cannot be written over what is live:\n{}\n\
         another document's units keep their addresses (choose other addresses, or cut the \
         amendment under that document's id); a pending draft is enacted or compensated first",
        plan.display(),
        conflicts.len(),
        lines.join("\n")
    )))
}
