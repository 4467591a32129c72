//! Planning: the recorded facts of a run → the compensation cutter-core's matrix
//! prescribes, as a [`CompensationPlan`] that can be shown (text or JSON) before anything is
//! executed. The compensation is never chosen by hand: a plan can only be made by [`plan`].

use std::fmt;

use postgres::GenericClient;
use serde::Serialize;

use cutter_core::{
    compensation_for, ChangeSetId, Compensation, Phase, PhaseSet, RunContext, RunId, Sha256Digest,
    Snapshot, SystemIdentifier,
};

use crate::error::{Error, Result};

/// What a run left behind, as its journal (state file, RunContext) records it.
#[derive(Clone, PartialEq, Eq, Debug, Serialize)]
pub struct RunFacts {
    /// The run to compensate.
    pub run_id: RunId,
    /// The server it wrote to.
    pub target: SystemIdentifier,
    /// The digest of its plan (a hard-delete approval names it).
    pub plan_digest: Sha256Digest,
    /// The phase that failed, if a phase was running.
    pub failed: Option<Phase>,
    /// The mutating phases the journal says committed.
    pub committed: PhaseSet,
    /// The snapshot taken before the run's first write; compensation A re-counts against
    /// it before COMMIT.
    pub pre_snapshot: Snapshot,
    /// The mutating phases the database shows committed, once [`RunFacts::cross_check`]
    /// asked it.
    pub database: Option<PhaseSet>,
}

impl RunFacts {
    /// The facts of a run from its RunContext, the failed phase and the committed phases
    /// of its state machine. Fails if the context has no pre snapshot.
    pub fn from_context(
        context: &RunContext,
        failed: Option<Phase>,
        committed: PhaseSet,
    ) -> Result<RunFacts> {
        let pre_snapshot = context
            .pre_snapshot
            .clone()
            .ok_or_else(|| Error::NoPreSnapshot {
                run_id: context.run_id.clone(),
            })?;
        Ok(RunFacts {
            run_id: context.run_id.clone(),
            target: context.target,
            plan_digest: context.plan_digest,
            failed,
            committed,
            pre_snapshot,
            database: None,
        })
    }

    /// The run's change set, `cs-<run id>`.
    pub fn change_set(&self) -> ChangeSetId {
        ChangeSetId::for_run(&self.run_id)
    }

    /// Asks the database which mutating phases of the run committed (units or amended
    /// versions of the change set → cut_leg_a; its `cut_change_set` row → leg_b_record; its
    /// `verify_result` → write_verify; every unit and version of it enacted →
    /// lifecycle_enact) and records the answer: the
    /// matrix then decides on journal ∪ database, so a COMMIT whose reply was lost is not
    /// mistaken for a rollback. Read-only; refuses a connection to another server.
    pub fn cross_check<C: GenericClient>(mut self, client: &mut C) -> Result<RunFacts> {
        let connected = cutter_pg::surface::system_identifier(client)?;
        if connected != self.target {
            return Err(Error::WrongTarget {
                run_id: self.run_id.clone(),
                expected: self.target,
                connected,
            });
        }
        let db = cutter_governance::run_status_in_db(client, &self.run_id)?;
        let mut seen = PhaseSet::EMPTY;
        if db.cut_committed() || db.change_set_row.is_some() || db.verify_result.is_some() {
            seen = seen.with(Phase::PreWriteBackup).with(Phase::CutLegA);
        }
        if db.change_set_row.is_some() || db.verify_result.is_some() {
            seen = seen.with(Phase::LegBRecord);
        }
        if db.verify_result.is_some() {
            seen = seen.with(Phase::WriteVerify);
        }
        if db.enacted() {
            seen = seen.with(Phase::LifecycleEnact);
        }
        self.database = Some(seen);
        Ok(self)
    }

    /// The phases the matrix decides on: the journal's, and the database's if asked.
    pub fn effective_committed(&self) -> PhaseSet {
        let extra = self.database.unwrap_or(PhaseSet::EMPTY);
        extra.iter().fold(self.committed, PhaseSet::with)
    }
}

/// One step of a compensation; each is one transaction.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Debug, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Step {
    /// Compensation A: revert the change set's draft units.
    A,
    /// Compensation B: append the compensating `reverted` review decision.
    B,
}

impl fmt::Display for Step {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Step::A => "A",
            Step::B => "B",
        })
    }
}

/// What the matrix prescribes for one run, and how it will be executed. Made only by
/// [`plan`]; shown with `Display` (`cutter compensate --show`) or as JSON.
#[derive(Clone, PartialEq, Eq, Debug, Serialize)]
pub struct CompensationPlan {
    run_id: RunId,
    change_set: ChangeSetId,
    target: SystemIdentifier,
    plan_digest: Sha256Digest,
    failed: Option<Phase>,
    journal: PhaseSet,
    database: Option<PhaseSet>,
    committed: PhaseSet,
    compensation: Compensation,
    steps: Vec<Step>,
    pre_snapshot: Snapshot,
}

/// The compensation of a run: `cutter_core::compensation_for(failed, committed)` on the
/// journal's committed phases united with what the database showed (see
/// [`RunFacts::cross_check`]).
pub fn plan(facts: &RunFacts) -> CompensationPlan {
    let committed = facts.effective_committed();
    let compensation = compensation_for(facts.failed, committed);
    let steps = match compensation {
        Compensation::A => vec![Step::A],
        Compensation::AB => vec![Step::A, Step::B],
        Compensation::None | Compensation::DiscardArtifact => Vec::new(),
    };
    CompensationPlan {
        run_id: facts.run_id.clone(),
        change_set: facts.change_set(),
        target: facts.target,
        plan_digest: facts.plan_digest,
        failed: facts.failed,
        journal: facts.committed,
        database: facts.database,
        committed,
        compensation,
        steps,
        pre_snapshot: facts.pre_snapshot.clone(),
    }
}

impl CompensationPlan {
    /// The run to compensate.
    pub fn run_id(&self) -> &RunId {
        &self.run_id
    }
    /// Its change set.
    pub fn change_set(&self) -> &ChangeSetId {
        &self.change_set
    }
    /// The server the run wrote to; every step checks the connection reaches it.
    pub fn target(&self) -> SystemIdentifier {
        self.target
    }
    /// The digest of the run's plan.
    pub fn plan_digest(&self) -> Sha256Digest {
        self.plan_digest
    }
    /// The phase that failed.
    pub fn failed(&self) -> Option<Phase> {
        self.failed
    }
    /// The committed phases the matrix decided on.
    pub fn committed(&self) -> PhaseSet {
        self.committed
    }
    /// The matrix's answer.
    pub fn compensation(&self) -> Compensation {
        self.compensation
    }
    /// The steps, in execution order (empty when the database needs nothing).
    pub fn steps(&self) -> &[Step] {
        &self.steps
    }
    /// The run's pre snapshot.
    pub fn pre_snapshot(&self) -> &Snapshot {
        &self.pre_snapshot
    }
    /// Pretty JSON, for `--json`.
    pub fn to_json_pretty(&self) -> String {
        serde_json::to_string_pretty(self).unwrap_or_default()
    }
}

fn names(s: PhaseSet) -> String {
    let v: Vec<&str> = s.iter().map(Phase::name).collect();
    if v.is_empty() {
        "none".into()
    } else {
        v.join(", ")
    }
}

impl fmt::Display for CompensationPlan {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(
            f,
            "compensation plan for run {} (change set {}) on server {}",
            self.run_id, self.change_set, self.target
        )?;
        writeln!(
            f,
            "  failed phase: {}",
            self.failed.map_or("none", Phase::name)
        )?;
        write!(f, "  committed:    {}", names(self.committed))?;
        match self.database {
            None => writeln!(f, " (journal; the database was not asked)")?,
            Some(db) if db.iter().all(|p| self.journal.contains(p)) => {
                writeln!(f, " (journal; the database agrees)")?
            }
            Some(db) => writeln!(
                f,
                " (journal: {}; the database also shows: {})",
                names(self.journal),
                names(db.iter().filter(|p| !self.journal.contains(*p)).collect())
            )?,
        }
        writeln!(
            f,
            "  matrix:       {} — {}",
            self.compensation,
            self.compensation.describe()
        )?;
        let pre = &self.pre_snapshot;
        for (i, step) in self.steps.iter().enumerate() {
            match step {
                Step::A => {
                    writeln!(f, "  step {} (A), one transaction:", i + 1)?;
                    writeln!(
                        f,
                        "      refuse if any unit of {} is enacted (naming them)",
                        self.change_set
                    )?;
                    writeln!(
                        f,
                        "      refuse if any version it added to an enacted unit (an amendment) is \
                         enacted: the amendment is in force"
                    )?;
                    writeln!(
                        f,
                        "      soft (default): its draft units and versions, and the draft versions \
                         it added to enacted units, become withdrawn, one lifecycle log row per \
                         unit and per such version, lineage kept; the enacted text stays current"
                    )?;
                    writeln!(
                        f,
                        "      hard (--hard-delete, SG_1 + SG_2 naming the revert run): delete its \
                         units and versions, and the versions it added, only while every one is draft"
                    )?;
                    writeln!(
                        f,
                        "      re-count before COMMIT against the pre snapshot (information_unit {}, \
                         unit_version {}, iu_lifecycle_log {}); roll back on any difference",
                        pre.rows("public.information_unit"),
                        pre.rows("public.unit_version"),
                        pre.rows("public.iu_lifecycle_log"),
                    )?;
                }
                Step::B => {
                    writeln!(f, "  step {} (B), one transaction:", i + 1)?;
                    writeln!(
                        f,
                        "      append a `reverted` review_decision for {} naming the revert run \
                         (ledger rows are never updated or deleted)",
                        self.change_set
                    )?;
                }
            }
        }
        match self.compensation {
            Compensation::None => writeln!(f, "  nothing to compensate")?,
            Compensation::DiscardArtifact => writeln!(
                f,
                "  nothing to do in the database: discard the run's backup artifact"
            )?,
            Compensation::A | Compensation::AB => {}
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use cutter_core::{mutation_surface, TableStat};

    pub(crate) fn snapshot() -> Snapshot {
        let counts = [158u64, 165, 60, 0, 0, 0, 0, 0, 0];
        Snapshot {
            system_identifier: SystemIdentifier::new(7_000_000_000_000_000_001),
            tables: mutation_surface()
                .into_iter()
                .zip(counts)
                .map(|(t, rows)| {
                    let digest = Sha256Digest::of(format!("{t}{rows}").as_bytes());
                    (t, TableStat { rows, digest })
                })
                .collect(),
            unit_statuses: [("draft".to_string(), 98), ("enacted".to_string(), 60)].into(),
            triggers: Default::default(),
            functions: Default::default(),
        }
    }

    fn facts(failed: Option<Phase>, committed: PhaseSet) -> RunFacts {
        RunFacts {
            run_id: RunId::new("r-1").unwrap(),
            target: SystemIdentifier::new(7_000_000_000_000_000_001),
            plan_digest: Sha256Digest::of(b"plan"),
            failed,
            committed,
            pre_snapshot: snapshot(),
            database: None,
        }
    }

    /// Every failed phase (or none) × every committed subset × every database answer:
    /// the plan's compensation is the matrix's, on journal ∪ database, and its steps
    /// follow from it.
    #[test]
    fn the_plan_is_the_matrix() {
        let failures = std::iter::once(None).chain(Phase::MUTATING.into_iter().map(Some));
        for failed in failures {
            for journal in PhaseSet::all_mutating_subsets() {
                for db in std::iter::once(None).chain(PhaseSet::all_mutating_subsets().map(Some)) {
                    let mut f = facts(failed, journal);
                    f.database = db;
                    let p = plan(&f);
                    let union: PhaseSet = journal
                        .iter()
                        .chain(db.unwrap_or(PhaseSet::EMPTY).iter())
                        .collect();
                    assert_eq!(p.compensation(), compensation_for(failed, union));
                    let want: &[Step] = match p.compensation() {
                        Compensation::A => &[Step::A],
                        Compensation::AB => &[Step::A, Step::B],
                        _ => &[],
                    };
                    assert_eq!(p.steps(), want);
                    assert_eq!(p.change_set().as_str(), "cs-r-1");
                }
            }
        }
    }

    #[test]
    fn shown_plans() {
        let mut out = String::new();
        for p in Phase::MUTATING {
            out.push_str(&plan(&facts(Some(p), PhaseSet::mutating_before(p))).to_string());
            out.push('\n');
        }
        let mut lost = facts(
            Some(Phase::LegBRecord),
            PhaseSet::mutating_before(Phase::LegBRecord),
        );
        lost.database = Some(PhaseSet::mutating_before(Phase::WriteVerify));
        out.push_str(&plan(&lost).to_string());
        insta::assert_snapshot!(out);
    }

    #[test]
    fn plans_serialize_without_a_way_back() {
        let p = plan(&facts(
            Some(Phase::WriteVerify),
            PhaseSet::mutating_before(Phase::WriteVerify),
        ));
        let v: serde_json::Value = serde_json::from_str(&p.to_json_pretty()).unwrap();
        assert_eq!(v["compensation"], "a_b");
        assert_eq!(v["steps"], serde_json::json!(["a", "b"]));
        assert_eq!(v["change_set"], "cs-r-1");
    }
}
