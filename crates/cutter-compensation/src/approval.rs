//! How compensation A reverts: a soft revert (the default, needs nothing) or a hard delete,
//! which needs a [`HardDeleteApproval`] — a value only [`HardDeleteApproval::verify`] makes,
//! from SG_1 and SG_2 signatures checked by cutter-core's approval rules. A hard delete
//! without verified approvals does not compile.
//!
//! The approvers sign the core's canonical statement with purpose `hard-delete`, naming
//! the *revert run* (not the run being compensated), the run's plan digest, the change
//! set deleted and the database: the approvals that let the run write (purpose
//! `live-run`) can never be replayed to delete what it wrote, nor a hard-delete approval
//! used to run.

use std::fmt;

use serde::Serialize;

use cutter_core::{
    check_approvals, ApprovalGate, ApprovalPolicy, ApprovalScope, ApprovalStatement, ApproverSet,
    ChangeSetId, Purpose, RunId, Sha256Digest, SignatureVerifier, SignedApproval, TargetDatabase,
    UnixTime, VerifiedApproval,
};

use crate::error::{Error, Result};
use crate::plan::CompensationPlan;

/// How compensation A reverts the change set's units.
#[derive(Clone, Debug, Default)]
pub enum RevertMode {
    /// Lifecycle status `withdrawn`, one lifecycle log row per unit, lineage kept.
    #[default]
    Soft,
    /// Delete the units and their versions, only while every one is draft.
    Hard(HardDeleteApproval),
}

impl RevertMode {
    /// The kind, without the approval.
    pub fn kind(&self) -> RevertKind {
        match self {
            RevertMode::Soft => RevertKind::Soft,
            RevertMode::Hard(_) => RevertKind::Hard,
        }
    }
}

/// Soft or hard, for reports.
#[derive(Clone, Copy, PartialEq, Eq, Debug, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum RevertKind {
    /// Withdrawn, lineage kept.
    Soft,
    /// Deleted.
    Hard,
}

impl RevertKind {
    /// `soft` or `hard`.
    pub fn name(self) -> &'static str {
        match self {
            RevertKind::Soft => "soft",
            RevertKind::Hard => "hard",
        }
    }
}

impl fmt::Display for RevertKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// Permission to hard-delete the draft units of one run's change set, as one revert run,
/// on one server. Only [`HardDeleteApproval::verify`] constructs it:
///
/// ```compile_fail,E0451
/// let forged = cutter_compensation::HardDeleteApproval {
///     run_id: todo!(),
///     revert_run: todo!(),
///     plan_digest: todo!(),
///     database: todo!(),
///     approvals: vec![],
/// };
/// ```
#[derive(Clone, PartialEq, Eq, Debug, Serialize)]
#[must_use = "an approval that is not passed to the executor approves nothing"]
pub struct HardDeleteApproval {
    run_id: RunId,
    revert_run: RunId,
    plan_digest: Sha256Digest,
    database: TargetDatabase,
    approvals: Vec<VerifiedApproval>,
}

impl HardDeleteApproval {
    /// The statement an approver signs (with `gpg --detach-sign`) to approve the hard
    /// delete of `plan`'s change set by `revert_run` on `database`: purpose
    /// `hard-delete`, the revert run, the compensated run's plan digest and change set.
    pub fn statement(
        plan: &CompensationPlan,
        revert_run: &RunId,
        database: &TargetDatabase,
        gate: ApprovalGate,
        not_before: UnixTime,
        expires_at: UnixTime,
    ) -> ApprovalStatement {
        ApprovalStatement {
            purpose: Purpose::HardDelete,
            run_id: revert_run.clone(),
            plan_digest: plan.plan_digest(),
            change_set: Some(plan.change_set().clone()),
            findings_digest: None,
            diff_digest: None,
            target: database.clone(),
            gate,
            not_before,
            expires_at,
        }
    }

    /// Checks SG_1 and SG_2 with cutter-core's rules ([`check_approvals`]) for purpose
    /// `hard-delete`: each signature verifies against an approver, names exactly
    /// `revert_run`, the plan's digest and change set and `database` (on the plan's
    /// server), is valid at `now` and within `policy`; SG_1 and SG_2 once each from two
    /// distinct keys. Every reason is listed on refusal.
    #[allow(clippy::too_many_arguments)]
    pub fn verify(
        plan: &CompensationPlan,
        revert_run: &RunId,
        database: &TargetDatabase,
        approvals: &[SignedApproval],
        approvers: &ApproverSet,
        now: UnixTime,
        policy: ApprovalPolicy,
        verifier: &dyn SignatureVerifier,
    ) -> Result<HardDeleteApproval> {
        if revert_run == plan.run_id() {
            return Err(Error::Invalid(format!(
                "the revert run must be a new run id, not the compensated run {}",
                plan.run_id()
            )));
        }
        if database.system_identifier != plan.target() {
            return Err(Error::Invalid(format!(
                "the hard delete names {database}, but run {} wrote to server {}",
                plan.run_id(),
                plan.target()
            )));
        }
        let change_set: &ChangeSetId = plan.change_set();
        let approvals = check_approvals(
            &ApprovalScope {
                purpose: Purpose::HardDelete,
                run_id: revert_run,
                plan_digest: plan.plan_digest(),
                target: database,
                change_set: Some(change_set),
                findings_digest: None,
                diff_digest: None,
            },
            approvals,
            approvers,
            now,
            policy,
            verifier,
        )
        .map_err(|reasons| Error::ApprovalRefused {
            run_id: plan.run_id().clone(),
            revert_run: revert_run.clone(),
            reasons,
        })?;
        Ok(HardDeleteApproval {
            run_id: plan.run_id().clone(),
            revert_run: revert_run.clone(),
            plan_digest: plan.plan_digest(),
            database: database.clone(),
            approvals,
        })
    }

    /// The compensated run.
    pub fn run_id(&self) -> &RunId {
        &self.run_id
    }
    /// The revert run the approvals name.
    pub fn revert_run(&self) -> &RunId {
        &self.revert_run
    }
    /// SG_1 and SG_2 as verified.
    pub fn approvals(&self) -> &[VerifiedApproval] {
        &self.approvals
    }
    /// The database the approvals name.
    pub fn database(&self) -> &TargetDatabase {
        &self.database
    }

    /// Refuses unless this approval covers exactly `plan` executed as `revert_run`.
    pub(crate) fn check_for(&self, plan: &CompensationPlan, revert_run: &RunId) -> Result<()> {
        let covers = |run: &RunId,
                      revert: &RunId,
                      digest: Sha256Digest,
                      target: cutter_core::SystemIdentifier| {
            format!(
                "the hard delete of run {run} (plan sha256:{digest}) as revert run {revert} on server {target}"
            )
        };
        let approved = covers(
            &self.run_id,
            &self.revert_run,
            self.plan_digest,
            self.database.system_identifier,
        );
        let requested = covers(plan.run_id(), revert_run, plan.plan_digest(), plan.target());
        if approved == requested {
            Ok(())
        } else {
            Err(Error::ApprovalMismatch {
                approved,
                requested,
            })
        }
    }
}
