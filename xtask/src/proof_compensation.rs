//! The compensation part of `cargo xtask proof --rollback-only`: compensation A (soft and
//! hard, with SG_1 + SG_2 from two throwaway keys through the real OpenPGP verifier), B,
//! idempotency, re-cut after a revert, and the refusals (B before A, hard delete without
//! valid approvals, an enacted unit, an unknown change set, a foreign change caught by the
//! re-count) — the real executors of `cutter-compensation`, in one rollback-only
//! transaction of their own, each case in a savepoint that is rolled back; then net-zero.
//!
//! The target needs cutter-governance's migration G1 (the ledger writers use it).

use cutter_pg::Target;

/// Runs the compensation proofs on `target` (whose system identifier the caller already
/// checked) and returns one `(proof, Ok(detail) | Err(detail))` per case, in the order
/// they ran. Leaves the target's run lock released.
pub fn proofs(target: &mut Target) -> Vec<(String, Result<String, String>)> {
    match cutter_compensation::proof::prove(target) {
        Ok(rows) => rows.into_iter().map(|r| (r.name, r.outcome)).collect(),
        Err(e) => vec![(
            "compensation proofs".to_string(),
            Err(format!("could not run: {e}")),
        )],
    }
}
