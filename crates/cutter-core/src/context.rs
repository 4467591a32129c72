//! `RunContext`: what each phase of a run produced, recorded as it happens and read by
//! `recover`, `report` and reviewers months later.

use serde::{Deserialize, Serialize};

use crate::compensation::Compensation;
use crate::digest::Sha256Digest;
use crate::gate::VerifiedApproval;
use crate::ids::{
    ChangeSetId, DocumentId, Fingerprint, RunId, SourceVersionId, SystemIdentifier, UnixTime,
};
use crate::phase::Phase;
use crate::snapshot::Snapshot;
use crate::state::Mode;

/// The backup a run took before writing.
#[derive(Clone, PartialEq, Eq, Debug, Serialize, Deserialize)]
pub struct BackupFacts {
    /// File name of the artifact in the state directory's `backups/`.
    pub artifact: String,
    /// SHA-256 of the encrypted artifact.
    pub sha256: Sha256Digest,
    /// Its size in bytes.
    pub size_bytes: u64,
    /// The pinned recipient key.
    pub recipient: Fingerprint,
}

/// When a live run proves its own pre-write backup (`[run] prove_backup`).
#[derive(Clone, Copy, PartialEq, Eq, Debug, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum ProveBackup {
    /// Between pre_write_backup and cut_leg_a; a failed proof stops the run before it
    /// writes.
    BeforeWrite,
    /// After the run's last phase; the report records the result.
    AfterRun,
    /// Never (prove with `cutter backup restore-proof` elsewhere).
    Off,
}

impl ProveBackup {
    /// The setting's spelling.
    pub fn name(self) -> &'static str {
        match self {
            ProveBackup::BeforeWrite => "before-write",
            ProveBackup::AfterRun => "after-run",
            ProveBackup::Off => "off",
        }
    }

    /// Parses the setting's spelling.
    pub fn parse(s: &str) -> Result<Self, String> {
        match s.trim() {
            "before-write" => Ok(ProveBackup::BeforeWrite),
            "after-run" => Ok(ProveBackup::AfterRun),
            "off" => Ok(ProveBackup::Off),
            other => Err(format!(
                "{other:?} is not a prove_backup mode: expected before-write, after-run or off"
            )),
        }
    }
}

impl std::fmt::Display for ProveBackup {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

/// A proof of a backup: the restore proof of a full backup, the proof of an increment
/// on top of its proven predecessor, or the proof of a whole chain.
#[derive(Clone, Copy, PartialEq, Eq, Debug, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ProofKind {
    /// A full backup restored into a throwaway cluster.
    Full,
    /// An incremental backup proven on top of its proven predecessor.
    Increment,
    /// A whole chain restored from its full backup on.
    Chain,
}

impl ProofKind {
    /// Every kind, in the order a backup's files list their records.
    pub const ALL: [ProofKind; 3] = [Self::Full, Self::Increment, Self::Chain];

    /// How run records and reports name it: `full`, `increment`, `chain`.
    pub fn name(self) -> &'static str {
        match self {
            Self::Full => "full",
            Self::Increment => "increment",
            Self::Chain => "chain",
        }
    }

    /// The word in its record's file name (`<backup>.<word>-proof.json`): `restore`,
    /// `increment`, `chain`.
    pub fn record_word(self) -> &'static str {
        match self {
            Self::Full => "restore",
            Self::Increment => "increment",
            Self::Chain => "chain",
        }
    }
}

impl std::fmt::Display for ProofKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

/// The proof a live run ran of its own backup, and in which mode.
#[derive(Clone, PartialEq, Eq, Debug, Serialize, Deserialize)]
pub struct BackupProofFacts {
    /// The configured mode.
    pub mode: ProveBackup,
    /// Which proof ran (absent: none did).
    pub kind: Option<ProofKind>,
    /// The verdict (absent: no proof ran).
    pub passed: Option<bool>,
    /// The proof record's file name in `backups/`.
    pub record: Option<String>,
    /// Why the proof failed, or why none ran.
    pub detail: Option<String>,
    /// How long the proof took, in milliseconds.
    pub duration_ms: Option<u64>,
}

impl BackupProofFacts {
    /// No proof (yet) in `mode`.
    pub fn pending(mode: ProveBackup) -> Self {
        Self {
            mode,
            kind: None,
            passed: None,
            record: None,
            detail: None,
            duration_ms: None,
        }
    }

    /// One line: mode and result.
    pub fn summary(&self) -> String {
        let result = match (self.passed, &self.kind) {
            (Some(true), Some(k)) => format!("{k} proof PASSED"),
            (Some(false), Some(k)) => format!(
                "{k} proof FAILED: {}",
                self.detail.as_deref().unwrap_or("no reason recorded")
            ),
            _ => match (self.mode, &self.detail) {
                (_, Some(d)) => format!("not proven: {d}"),
                (ProveBackup::Off, None) => {
                    "not proven by the run (`cutter backup restore-proof`)".into()
                }
                (_, None) => "not proven: the run stopped before the proof".into(),
            },
        };
        format!("prove_backup = {}: {result}", self.mode)
    }
}

/// What write_verify found.
#[derive(Clone, Copy, PartialEq, Eq, Debug, Serialize, Deserialize)]
pub struct VerifyFacts {
    /// Units re-read.
    pub checked: u64,
    /// Units equal to the plan.
    pub matched: u64,
    /// Units that differ from the plan.
    pub mismatched: u64,
}

/// How a phase ended.
#[derive(Clone, PartialEq, Eq, Debug, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum PhaseOutcome {
    /// Passed or committed.
    Committed,
    /// Failed and rolled back.
    Failed {
        /// Why.
        reason: String,
    },
}

/// One phase's timing and outcome.
#[derive(Clone, PartialEq, Eq, Debug, Serialize, Deserialize)]
pub struct PhaseRecord {
    /// The phase.
    pub phase: Phase,
    /// Start, unix milliseconds.
    pub started_ms: i64,
    /// End, unix milliseconds.
    pub ended_ms: i64,
    /// How it ended.
    pub outcome: PhaseOutcome,
}

/// Everything a run produced. Fields fill in as phases commit.
#[derive(Clone, PartialEq, Eq, Debug, Serialize, Deserialize)]
pub struct RunContext {
    /// The run.
    pub run_id: RunId,
    /// Dry-run or live.
    pub mode: Mode,
    /// The document cut.
    pub document_id: DocumentId,
    /// Its source version.
    pub source_version_id: SourceVersionId,
    /// The plan digest.
    pub plan_digest: Sha256Digest,
    /// Rows in the plan.
    pub plan_rows: u64,
    /// The server written to.
    pub target: SystemIdentifier,
    /// When the run was created.
    pub created_at: UnixTime,
    /// The snapshot before the first write.
    pub pre_snapshot: Option<Snapshot>,
    /// The snapshot after the run (or after its failure).
    pub post_snapshot: Option<Snapshot>,
    /// The verified approvals the gate accepted.
    pub approvals: Vec<VerifiedApproval>,
    /// Who the signers are, as their keys said when the run started (OpenPGP user id by
    /// primary fingerprint): a reviewer reads names, the fingerprints prove them.
    #[serde(default, skip_serializing_if = "std::collections::BTreeMap::is_empty")]
    pub signers: std::collections::BTreeMap<crate::Fingerprint, String>,
    /// The backup.
    pub backup: Option<BackupFacts>,
    /// `[run] prove_backup` and the proof of the backup (absent: a rehearsal, or a run
    /// recorded before the setting existed).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub backup_proof: Option<BackupProofFacts>,
    /// The change set of cut_leg_a.
    pub change_set_id: Option<ChangeSetId>,
    /// Units created by cut_leg_a.
    pub units_created: Option<u64>,
    /// Ledger rows written by leg_b_record.
    pub ledger_rows: Option<u64>,
    /// What write_verify found.
    pub verify: Option<VerifyFacts>,
    /// Units enacted by lifecycle_enact.
    pub units_enacted: Option<u64>,
    /// Phase by phase.
    pub phases: Vec<PhaseRecord>,
    /// The compensation executed, if any.
    pub compensation: Option<Compensation>,
}

impl RunContext {
    /// A context for a run that has not started.
    pub fn new(
        run_id: RunId,
        mode: Mode,
        plan: &dyn crate::plan::PlanFacts,
        target: SystemIdentifier,
        created_at: UnixTime,
    ) -> Self {
        Self {
            run_id,
            mode,
            document_id: plan.document_id().clone(),
            source_version_id: plan.source_version_id().clone(),
            plan_digest: plan.digest(),
            plan_rows: plan.row_count(),
            target,
            created_at,
            pre_snapshot: None,
            post_snapshot: None,
            approvals: Vec::new(),
            signers: std::collections::BTreeMap::new(),
            backup: None,
            backup_proof: None,
            change_set_id: None,
            units_created: None,
            ledger_rows: None,
            verify: None,
            units_enacted: None,
            phases: Vec::new(),
            compensation: None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    /// Run records keep the names they were written with, and records' file names the
    /// words backups on disk already have.
    #[test]
    fn proof_kinds_keep_their_recorded_names_and_file_words() {
        for (kind, name, word) in [
            (ProofKind::Full, "full", "restore"),
            (ProofKind::Increment, "increment", "increment"),
            (ProofKind::Chain, "chain", "chain"),
        ] {
            assert_eq!(serde_json::to_value(kind).unwrap(), json!(name));
            assert_eq!(
                serde_json::from_value::<ProofKind>(json!(name)).unwrap(),
                kind
            );
            assert_eq!(kind.to_string(), name);
            assert_eq!(kind.record_word(), word);
        }
        let recorded = json!({"mode": "after-run", "kind": "increment", "passed": true,
            "record": "r.increment-proof.json", "detail": null, "duration_ms": 5});
        let facts: BackupProofFacts = serde_json::from_value(recorded.clone()).unwrap();
        assert_eq!(facts.kind, Some(ProofKind::Increment));
        assert_eq!(serde_json::to_value(&facts).unwrap(), recorded);
        assert!(
            facts.summary().contains("increment proof PASSED"),
            "{}",
            facts.summary()
        );
        let unknown = json!({"mode": "off", "kind": "partial", "passed": null, "record": null,
            "detail": null, "duration_ms": null});
        let e = serde_json::from_value::<BackupProofFacts>(unknown).unwrap_err();
        assert!(e.to_string().contains("partial"), "{e}");
    }
}
