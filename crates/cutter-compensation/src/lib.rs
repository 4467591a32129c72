//! Compensation of a held run, per cut: A reverts the draft units of its change set (soft by
//! default: `withdrawn`, lineage kept; hard delete only with verified SG_1 + SG_2 and only
//! while every row is draft), B appends a compensating `reverted` review decision to the
//! ledger. What to do is cutter-core's matrix, never chosen by hand.
//!
//! ```
//! use cutter_core::{Compensation, Phase, PhaseSet, RunId, Sha256Digest, Snapshot, SystemIdentifier};
//!
//! // A run that committed cut_leg_a and failed in leg_b_record: revert its draft units.
//! let target = SystemIdentifier::new(7_000_000_000_000_000_001);
//! let pre_snapshot = Snapshot {
//!     system_identifier: target,
//!     tables: Default::default(),
//!     unit_statuses: Default::default(),
//!     triggers: Default::default(),
//!     functions: Default::default(),
//! };
//! let facts = cutter_compensation::RunFacts {
//!     run_id: RunId::new("r-1")?,
//!     target,
//!     plan_digest: Sha256Digest::of(b"plan"),
//!     failed: Some(Phase::LegBRecord),
//!     committed: PhaseSet::default().with(Phase::PreWriteBackup).with(Phase::CutLegA),
//!     pre_snapshot,
//!     database: None,
//! };
//! let plan = cutter_compensation::plan(&facts);
//! assert_eq!(plan.compensation(), Compensation::A);
//! println!("{plan}"); // what `cutter compensate --show` prints before anything runs
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
//!
//! * [`plan`] turns a run's [`RunFacts`] into a [`CompensationPlan`] (shown before it runs);
//! * [`execute`] runs its steps, each ONE transaction on the run's target (checked by system
//!   identifier) under the per-target run lock; A re-counts against the run's pre snapshot
//!   before COMMIT and rolls back on any difference;
//! * every step reads the database first, so compensating again is a no-op that says so and
//!   an interrupted compensation is finished by running it again.
//!
//! An amendment run's change set also holds versions of enacted units of other change sets
//! (new wordings, repeals): A withdraws (soft) or deletes (hard) them too, so the
//! previously enacted text stays current; an enacted amendment is refused (it is the text
//! in force: a new amendment brings the old text back).
//!
//! Invariants: no ledger row is written except through cutter-governance's chained writer;
//! units and versions are changed only through the reference schema's `fn_iu_withdraw`,
//! `fn_uv_change_set_status`, `fn_iu_hard_delete_draft` and `fn_uv_hard_delete_draft`;
//! enacted units and versions are never touched.

#![warn(missing_docs)]

mod approval;
mod error;
mod execute;
mod plan;
pub mod proof;
mod recount;
mod throwaway;

pub use approval::{HardDeleteApproval, RevertKind, RevertMode};
pub use error::{Error, RecountDifference, Result, UnitRef};
pub use execute::{
    compensate_a, compensate_b, execute, inspect, revert_run_for, ChangeSetState,
    CompensationReport, StepOutcome, StepReport,
};
pub use plan::{plan, CompensationPlan, RunFacts, Step};

/// Test and benchmark support (cargo feature `testing`): throwaway approver keys whose
/// signatures go through the real verifier, for hard deletes on throwaway databases.
#[cfg(feature = "testing")]
pub mod testing {
    pub use crate::throwaway::ThrowawayApprovers;
}
