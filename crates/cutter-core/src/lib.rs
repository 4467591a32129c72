//! The pure domain of cutter: phases and their order, the run state machine, the gate,
//! the compensation matrix, the cut plan and its row contract, snapshots and digests.
//!
//! ```
//! use cutter_core::{Compensation, Effect, Event, KillSwitch, Mode, Phase, RunId, RunMachine};
//!
//! // A live run whose leg_b_record fails after cut_leg_a committed.
//! let run = RunId::new("r-1")?;
//! let ks = KillSwitch::Disarmed { run_id: run.clone() };
//! let mut m = RunMachine::new(run, Mode::Live, Phase::LifecycleEnact, ks);
//! for phase in [Phase::Preflight, Phase::Cutplan, Phase::Gate, Phase::PreWriteBackup, Phase::CutLegA] {
//!     m = m.apply(&Event::PhaseStarted { phase })?.0;
//!     let done = if phase == Phase::Gate { Event::GatePassed } else { Event::PhaseCommitted { phase } };
//!     m = m.apply(&done)?.0;
//! }
//! m = m.apply(&Event::PhaseStarted { phase: Phase::LegBRecord })?.0;
//! let failed = Event::PhaseFailed { phase: Phase::LegBRecord, reason: "connection lost".into() };
//! let (m, effects) = m.apply(&failed)?;
//! // The orchestrator must re-arm the kill-switch and write the HOLD; the matrix says A.
//! assert!(effects.contains(&Effect::RearmKillSwitch) && effects.contains(&Effect::WriteHold));
//! assert_eq!(m.prescribed_compensation(), Compensation::A);
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
//!
//! Invariant: this crate does no I/O — no files, processes, clock, randomness or
//! network. Time, ids and facts from the database come in as arguments or through traits.

#![warn(missing_docs)]

pub mod amend;
pub mod backupchain;
pub mod compensation;
pub mod context;
pub mod digest;
pub mod gate;
pub mod ids;
pub mod phase;
pub mod plan;
pub mod planread;
pub mod snapshot;
pub mod state;

pub use amend::{
    diff_plan, side_by_side_markdown, word_diff, ClassSummary, Conflict, DiffBuilder, DiffClass,
    DiffEntry, LiveUnit, PlanDiff, UnitText, WordChange,
};
pub use backupchain::{
    class_of, decide, ChainDecision, ChainFacts, SetDigest, SurfaceClass, SURFACE_CLASSES,
};
pub use compensation::{compensation_for, Compensation};
pub use context::{
    BackupFacts, BackupProofFacts, PhaseOutcome, PhaseRecord, ProofKind, ProveBackup, RunContext,
    VerifyFacts,
};
pub use digest::{CanonicalHasher, Sha256Digest};
pub use gate::{
    authorize, check_approvals, recorded_signature_bytes, ApprovalGate, ApprovalPolicy,
    ApprovalScope, ApprovalStatement, ApproverSet, AuthorizationScope, GateRefusal, GateRequest,
    HoldRecord, KillSwitch, LiveAuthorization, Purpose, RecordedStatement, Refusal,
    SignatureVerifier, SignedApproval, TargetDatabase, VerifiedApproval,
    DEFAULT_APPROVAL_LIFETIME_SECS, MAX_APPROVAL_LIFETIME_SECS, STATEMENT_HEADER,
};
pub use ids::{
    mutation_surface, ChangeSetId, DocumentId, Fingerprint, RunId, SourceVersionId,
    SystemIdentifier, TableName, UnixTime, MUTATION_SURFACE,
};
pub use phase::{Phase, PhaseSet};
pub use plan::{
    ContractReport, CutPlan, CutPlanRow, Field, ForbiddenCharacter, OutOfOrderNumber, PlanDigester,
    PlanFacts, PlanFindings, RowFacts, TextInNoUnit, ValidPlan, Violation, Vocabularies,
    PLAN_FORMAT,
};
pub use planread::{parse_plan_row, read_plan, read_plan_spans, PlanHeader, RowSpan};
pub use snapshot::{Difference, NetZeroViolation, Snapshot, TableStat};
pub use state::{Effect, Event, IllegalTransition, Mode, RunMachine, RunState};

/// Everything that can go wrong in the pure domain.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A name or id does not have the required form.
    #[error("invalid {kind} {value:?}: expected {rule}")]
    InvalidId {
        /// What kind of id.
        kind: &'static str,
        /// The offending value (shortened).
        value: String,
        /// The rule it breaks.
        rule: String,
    },
    /// The cut plan breaks the row contract; fix the listed rows and cut again.
    #[error("{0}")]
    Contract(ContractReport),
    /// The gate refused; the reasons say what to fix.
    #[error("{0}")]
    Gate(GateRefusal),
    /// The run cannot do this now.
    #[error(transparent)]
    Transition(#[from] IllegalTransition),
}
