//! The compensation matrix of seed 001 as a total function of the facts: which mutating
//! phases committed (and which failed). Compensation is always the matrix's answer,
//! never chosen by hand.

use std::fmt;

use serde::{Deserialize, Serialize};

use crate::phase::{Phase, PhaseSet};

/// What has to be undone after a failure. Every failure also re-arms the kill-switch
/// and writes a HOLD; this says what data compensation the HOLD's release needs.
#[derive(Clone, Copy, PartialEq, Eq, Debug, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Compensation {
    /// Nothing to undo: nothing was written, or the run succeeded.
    None,
    /// No database state changed; discard the backup artifact (complete or partial).
    DiscardArtifact,
    /// Compensation A: revert the change set's draft units.
    A,
    /// Compensation A, then B: append a compensating review decision to the ledger.
    AB,
}

impl Compensation {
    /// Whether the database must be changed to compensate.
    pub fn touches_database(self) -> bool {
        matches!(self, Compensation::A | Compensation::AB)
    }

    /// One line for operators.
    pub fn describe(self) -> &'static str {
        match self {
            Compensation::None => "none needed",
            Compensation::DiscardArtifact => "discard the backup artifact; the database is unchanged",
            Compensation::A => "compensation A: revert the change set's draft units (soft: withdrawn)",
            Compensation::AB => "compensation A + B: revert the draft units, then append a compensating review decision",
        }
    }
}

impl fmt::Display for Compensation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Compensation::None => "none",
            Compensation::DiscardArtifact => "discard artifact + HOLD",
            Compensation::A => "A",
            Compensation::AB => "A+B",
        })
    }
}

/// The matrix. `failed` is the phase that failed (if a phase was running);
/// `committed` the mutating phases whose transaction (or artifact) is known to have
/// committed — for a phase whose COMMIT's outcome was lost, the caller asks the database
/// (the change set and verify rows are the markers).
///
/// Decided on facts, so it is total and safe on any input: units committed and not
/// enacted need A; ledger rows of leg B need B; a backup with nothing after it is
/// discarded; a committed enact means the run succeeded.
pub fn compensation_for(failed: Option<Phase>, committed: PhaseSet) -> Compensation {
    if committed.contains(Phase::LifecycleEnact) {
        Compensation::None
    } else if committed.contains(Phase::LegBRecord) || committed.contains(Phase::WriteVerify) {
        Compensation::AB
    } else if committed.contains(Phase::CutLegA) {
        Compensation::A
    } else if committed.contains(Phase::PreWriteBackup) || failed == Some(Phase::PreWriteBackup) {
        Compensation::DiscardArtifact
    } else {
        Compensation::None
    }
}

/// The matrix rendered as the seed's table: one row per failed mutating phase, the
/// phases already committed when it fails, and the compensation.
pub fn render_matrix() -> String {
    let mut out =
        String::from("| failed phase | already committed | compensation |\n|---|---|---|\n");
    for p in Phase::MUTATING {
        let before = PhaseSet::mutating_before(p);
        let names: Vec<&str> = before.iter().map(Phase::name).collect();
        let committed = if names.is_empty() {
            "none".to_string()
        } else {
            names.join(", ")
        };
        let label = if p == Phase::LifecycleEnact {
            format!("{p} (rolled back)")
        } else {
            p.to_string()
        };
        out.push_str(&format!(
            "| {label} | {committed} | {} |\n",
            compensation_for(Some(p), before)
        ));
    }
    let all: PhaseSet = Phase::MUTATING.into_iter().collect();
    let names: Vec<&str> = all.iter().map(Phase::name).collect();
    out.push_str(&format!(
        "| lifecycle_enact (committed) | {} | {} |\n",
        names.join(", "),
        compensation_for(None, all)
    ));
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use Phase::*;

    fn set(ps: &[Phase]) -> PhaseSet {
        ps.iter().copied().collect()
    }

    /// The seed's table, row by row (seed 001 §3, DESIGN.md "Compensation matrix").
    #[test]
    fn matches_the_seed_table() {
        let rows: [(Option<Phase>, PhaseSet, Compensation); 6] = [
            (
                Some(PreWriteBackup),
                set(&[]),
                Compensation::DiscardArtifact,
            ),
            (
                Some(CutLegA),
                set(&[PreWriteBackup]),
                Compensation::DiscardArtifact,
            ),
            (
                Some(LegBRecord),
                set(&[PreWriteBackup, CutLegA]),
                Compensation::A,
            ),
            (
                Some(WriteVerify),
                set(&[PreWriteBackup, CutLegA, LegBRecord]),
                Compensation::AB,
            ),
            (
                Some(LifecycleEnact),
                set(&[PreWriteBackup, CutLegA, LegBRecord, WriteVerify]),
                Compensation::AB,
            ),
            (
                None,
                set(&[
                    PreWriteBackup,
                    CutLegA,
                    LegBRecord,
                    WriteVerify,
                    LifecycleEnact,
                ]),
                Compensation::None,
            ),
        ];
        for (failed, committed, want) in rows {
            assert_eq!(
                compensation_for(failed, committed),
                want,
                "{failed:?} {committed:?}"
            );
        }
        // The commit of lifecycle_enact went through but its reply was lost: still success.
        assert_eq!(
            compensation_for(Some(LifecycleEnact), set(&Phase::MUTATING)),
            Compensation::None
        );
    }

    /// Every failed phase (or none) × every subset of committed phases: the answer is
    /// defined and obeys the rules the seed's table is made of.
    #[test]
    fn exhaustive_over_all_inputs() {
        let failures = std::iter::once(None).chain(Phase::ORDER.into_iter().map(Some));
        let mut checked = 0;
        for failed in failures {
            for committed in PhaseSet::all_mutating_subsets() {
                let c = compensation_for(failed, committed);
                let enacted = committed.contains(LifecycleEnact);
                let units = committed.contains(CutLegA);
                let ledger = committed.contains(LegBRecord) || committed.contains(WriteVerify);
                // A is prescribed exactly when units or ledger rows exist and nothing was enacted.
                assert_eq!(
                    matches!(c, Compensation::A | Compensation::AB),
                    !enacted && (units || ledger)
                );
                // B exactly when leg B's ledger rows exist and nothing was enacted.
                assert_eq!(c == Compensation::AB, !enacted && ledger);
                // Success never compensates.
                if enacted {
                    assert_eq!(c, Compensation::None);
                }
                // A backup with nothing after it is discarded.
                if !enacted
                    && !units
                    && !ledger
                    && (committed.contains(PreWriteBackup) || failed == Some(PreWriteBackup))
                {
                    assert_eq!(c, Compensation::DiscardArtifact);
                }
                checked += 1;
            }
        }
        assert_eq!(checked, 9 * 32);
    }

    #[test]
    fn rendered_matrix() {
        insta::assert_snapshot!(render_matrix());
    }
}
