//! The append-only, hash-chained governance ledger (any N), run-scoped signed
//! approvals (SG_1, SG_2), the SG_3 escalation record, idempotency claims and void.
//!
//! ```no_run
//! # fn main() -> Result<(), Box<dyn std::error::Error>> {
//! # let read_only: cutter_pg::ConnConfig = todo!();
//! // What `cutter ledger verify` does (its tests run it on real clusters): recompute
//! // every chain, as the read-only role.
//! let mut client = read_only.connect()?;
//! let report = cutter_governance::verify_ledger(&mut client)?;
//! for t in &report.tables {
//!     println!("{}: {} rows, head {:?}", t.table, t.rows, t.head);
//! }
//! report.ensure_intact()?;
//! # Ok(())
//! # }
//! ```
//!
//! * [`leg_b_record`] and [`write_verify`] are the bodies of the two ledger phases; each
//!   runs inside the phase's one transaction, set-based, and writes nothing on failure.
//! * Every ledger row carries `prev_hash` and `row_hash` ([`chain`] documents the
//!   canonical form); [`verify_ledger`] recomputes the six chains by streaming them.
//! * [`OpenPgpVerifier`] is the [`cutter_core::SignatureVerifier`] the gate decides
//!   with; [`verify_approvals`] applies the core's approval rules.
//! * [`claim`], [`void`], [`append_reverted`], [`record_sg3`] append review decisions;
//!   [`record_run_row`] records what a live run's report shows as it happens (and a
//!   later proof of its backup), [`ledger_restore_proof`] reads that proof back;
//!   [`run_status_in_db`] reads back what a run committed; [`ledger_log`] lists the
//!   ledger's history.
//! * [`install`] brings a database to cutter-pg's reference schema (its migration
//!   runner); [`check_installed`] names what of the ledger's part (`V2__ledger.sql`) is
//!   missing.
//!
//! Invariant: ledger rows are only ever appended, by the functions of this crate, under
//! a per-table advisory lock; nothing here updates or deletes a ledger row.

#![warn(missing_docs)]

mod approvals;
pub mod chain;
mod common;
mod decisions;
mod error;
mod facts;
mod install;
mod legb;
mod log;
mod registry;
mod runstate;
mod verify;
mod written;

pub use approvals::{
    approvers_from_keys, load_approvers, read_signed_approval, reverify_ledger_signatures,
    reverify_recorded_approvals, sign_approval, verify_approvals, OpenPgpVerifier,
    RecordedApproval, Reverifier, SignatureFinding, SignatureReport,
};
pub use chain::{
    head_at, verify_ledger, verify_table, Anchor, BrokenLink, LedgerReport, LedgerTable,
    TableReport,
};
pub use common::voided_by;
pub use decisions::{
    append_reverted, claim, claim_key, claim_of, is_reverted, record_hard_delete_approval,
    record_hold_release, record_sg3, unresolved_holds, void, Claim, ClaimOutcome, ReleaseApproval,
    RevertedReport, Sg3Record, UnresolvedHold, VoidReport, DECISION_CLAIM,
    DECISION_HARD_DELETE_APPROVED, DECISION_HOLD_RELEASED, DECISION_REVERTED, DECISION_SG3,
    DECISION_VOID,
};
pub use error::{Error, LiveUnit, Result};
pub use facts::{run_status_in_db, DbRunFacts};
pub use install::{check_installed, install, MIGRATION};
pub use legb::{
    body_sha256, leg_b_record, leg_b_record_cut, prove_authorize, prove_authorize_run,
    prove_hard_delete_authorize, prove_leg_b_record, record_run_approvals, units_digest,
    LegBReport, MANIFEST_FORMAT,
};
pub use log::{ledger_log, LogEntry};
pub use registry::{
    apply_change, bootstrap_approvers, load_registry, Approver, ApproverChange, ChangeAction,
    Registry, Revocation, DECISION_APPROVER_ADDED, DECISION_APPROVER_REVOKED,
};
pub use runstate::{
    ledger_restore_proof, merge_patch_apply, merge_patch_diff, record_run_row, replay_run_states,
    run_states, DECISION_RESTORE_PROOF, DECISION_RUN_STATE,
};
pub use verify::{
    prove_write_verify, write_verify, write_verify_cut, Mismatch, MismatchKind, VerifyReport,
};
pub use written::Written;
