//! The phases of a run and their order. The order is data (`Phase::ORDER`), so the
//! state machine, the journal and the compensation matrix agree on it by construction.

use std::fmt;

use serde::{Deserialize, Serialize};

/// One phase of a run, in seed order. The first three only read; the last five
/// mutate, each in exactly one atomic transaction (the backup: one atomic artifact).
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Debug, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Phase {
    /// Identity, schema, roles, triggers, vocabularies; the pre snapshot.
    Preflight,
    /// Validate the cut plan against the row contract.
    Cutplan,
    /// Kill-switch, HOLD and approvals; produces the live authorization.
    Gate,
    /// Encrypted narrow `pg_dump` of the mutation surface.
    PreWriteBackup,
    /// Create the plan's units and versions (as drafts) through `fn_iu_create`.
    CutLegA,
    /// Record the change set, its affected rows and the manifest in the ledger.
    LegBRecord,
    /// Re-read every unit as the read-only role and record the verify result.
    WriteVerify,
    /// Enact the change set's units and their versions through `fn_iu_enact_change_set`.
    LifecycleEnact,
}

impl Phase {
    /// All phases in execution order.
    pub const ORDER: [Phase; 8] = [
        Phase::Preflight,
        Phase::Cutplan,
        Phase::Gate,
        Phase::PreWriteBackup,
        Phase::CutLegA,
        Phase::LegBRecord,
        Phase::WriteVerify,
        Phase::LifecycleEnact,
    ];

    /// The five mutating phases in execution order.
    pub const MUTATING: [Phase; 5] = [
        Phase::PreWriteBackup,
        Phase::CutLegA,
        Phase::LegBRecord,
        Phase::WriteVerify,
        Phase::LifecycleEnact,
    ];

    /// Position in [`Phase::ORDER`].
    pub fn index(self) -> usize {
        self as usize
    }

    /// Whether the phase changes the target (or writes the backup artifact).
    pub fn is_mutating(self) -> bool {
        self >= Phase::PreWriteBackup
    }

    /// The phase after this one, if any.
    pub fn next(self) -> Option<Phase> {
        Phase::ORDER.get(self.index() + 1).copied()
    }

    /// The seed's name: `pre_write_backup`, `cut_leg_a`, ….
    pub fn name(self) -> &'static str {
        match self {
            Phase::Preflight => "preflight",
            Phase::Cutplan => "cutplan",
            Phase::Gate => "gate",
            Phase::PreWriteBackup => "pre_write_backup",
            Phase::CutLegA => "cut_leg_a",
            Phase::LegBRecord => "leg_b_record",
            Phase::WriteVerify => "write_verify",
            Phase::LifecycleEnact => "lifecycle_enact",
        }
    }

    /// Parses a seed name (`cut_leg_a`) or its kebab form (`cut-leg-a`).
    pub fn parse(s: &str) -> Option<Phase> {
        let s = s.replace('-', "_");
        Phase::ORDER.into_iter().find(|p| p.name() == s)
    }
}

impl fmt::Display for Phase {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// A set of mutating phases, e.g. the phases a run committed.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Default, Serialize, Deserialize)]
#[serde(into = "Vec<Phase>", from = "Vec<Phase>")]
pub struct PhaseSet(u8);

impl PhaseSet {
    /// The empty set.
    pub const EMPTY: PhaseSet = PhaseSet(0);

    /// Whether `p` is in the set.
    pub fn contains(self, p: Phase) -> bool {
        self.0 & (1 << p.index()) != 0
    }
    /// The set with `p` added.
    #[must_use]
    pub fn with(self, p: Phase) -> Self {
        Self(self.0 | (1 << p.index()))
    }
    /// The phases in execution order.
    pub fn iter(self) -> impl Iterator<Item = Phase> {
        Phase::ORDER.into_iter().filter(move |p| self.contains(*p))
    }
    /// Whether the set is empty.
    pub fn is_empty(self) -> bool {
        self.0 == 0
    }
    /// The set of all mutating phases before `p` (what must have committed for `p` to run).
    pub fn mutating_before(p: Phase) -> Self {
        Phase::MUTATING
            .into_iter()
            .filter(|q| *q < p)
            .fold(Self::EMPTY, Self::with)
    }
    /// All subsets of the five mutating phases, for exhaustive tests.
    pub fn all_mutating_subsets() -> impl Iterator<Item = PhaseSet> {
        (0u8..32).map(|bits| {
            Phase::MUTATING
                .into_iter()
                .enumerate()
                .filter(|(i, _)| bits & (1 << i) != 0)
                .fold(Self::EMPTY, |s, (_, p)| s.with(p))
        })
    }
}

impl From<PhaseSet> for Vec<Phase> {
    fn from(s: PhaseSet) -> Self {
        s.iter().collect()
    }
}
impl From<Vec<Phase>> for PhaseSet {
    fn from(v: Vec<Phase>) -> Self {
        v.into_iter().fold(Self::EMPTY, Self::with)
    }
}
impl FromIterator<Phase> for PhaseSet {
    fn from_iter<I: IntoIterator<Item = Phase>>(it: I) -> Self {
        it.into_iter().fold(Self::EMPTY, Self::with)
    }
}
impl fmt::Debug for PhaseSet {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_set().entries(self.iter().map(Phase::name)).finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn order_is_the_seed_order() {
        let names: Vec<_> = Phase::ORDER.iter().map(|p| p.name()).collect();
        assert_eq!(
            names,
            [
                "preflight",
                "cutplan",
                "gate",
                "pre_write_backup",
                "cut_leg_a",
                "leg_b_record",
                "write_verify",
                "lifecycle_enact"
            ]
        );
        assert!(Phase::MUTATING.iter().all(|p| p.is_mutating()));
        assert!(!Phase::Gate.is_mutating());
        assert_eq!(Phase::LifecycleEnact.next(), None);
        assert_eq!(Phase::parse("cut-leg-a"), Some(Phase::CutLegA));
    }

    #[test]
    fn phase_sets() {
        let s = PhaseSet::mutating_before(Phase::WriteVerify);
        assert_eq!(
            s.iter().collect::<Vec<_>>(),
            [Phase::PreWriteBackup, Phase::CutLegA, Phase::LegBRecord]
        );
        assert_eq!(PhaseSet::all_mutating_subsets().count(), 32);
        let json = serde_json::to_string(&s).unwrap();
        assert_eq!(json, r#"["pre_write_backup","cut_leg_a","leg_b_record"]"#);
        assert_eq!(serde_json::from_str::<PhaseSet>(&json).unwrap(), s);
    }
}
