//! `[run] prove_backup`: a live run proves its own pre-write backup — `before-write`
//! between pre_write_backup and cut_leg_a (a failed proof fails pre_write_backup, so
//! nothing is written), `after-run` once the run's phases are done — by restoring it
//! into a throwaway cluster: the increment proof for an increment whose predecessor is
//! proven, the chain proof for one whose predecessor is not, the full restore proof for a
//! full backup. The proof's record goes beside the artifact in `backups/`; the run's
//! context records mode and verdict for the report, and the run's recorded state the
//! full restore proof's record itself, so the ledger holds it ([`ledger_proof`] records
//! one made later by `cutter backup restore-proof`).

use std::path::{Path, PathBuf};
use std::time::Instant;

use cutter_backup::{LinkKind, PassphraseSource};
use cutter_core::{BackupProofFacts, Fingerprint, ProofKind, ProveBackup};
use serde_json::Value;

use crate::ctx::Ctx;
use crate::error::{Error, Result};

/// What proving a run's backup needs, resolved before the run claims its id.
#[derive(Clone, Debug)]
pub struct ProveSetup {
    /// The mode.
    pub mode: ProveBackup,
    secret_key: Option<PathBuf>,
    passphrase: PassphraseSource,
    signing_pin: Option<Fingerprint>,
    /// Signs the proof's record (the backup signing key).
    signer: Option<cutter_backup::ManifestSigner>,
    pg_bindir: Option<PathBuf>,
}

impl ProveSetup {
    /// The configured mode and what it needs; a mode that proves without a backup secret
    /// key is refused (before anything is claimed or written).
    pub fn from_ctx(ctx: &Ctx) -> Result<Self> {
        let mode = ctx.settings.prove_backup;
        let secret_key = ctx.settings.backup_secret_key.clone();
        if mode != ProveBackup::Off && secret_key.is_none() {
            return Err(Error::Usage(format!(
                "[run] prove_backup = {mode} needs the backup secret key on this host: set \
                 [backup] secret_key (or CUTTER_BACKUP_SECRET_KEY), or set prove_backup = \"off\" \
                 and prove backups elsewhere with `cutter backup restore-proof`"
            )));
        }
        let (signing_pin, signer) = if mode == ProveBackup::Off {
            (None, None)
        } else {
            (
                Some(crate::run::signing_pin(ctx)?),
                Some(crate::run::backup_signer(ctx)?),
            )
        };
        Ok(Self {
            mode,
            secret_key,
            passphrase: crate::dryrun::passphrase_source(ctx),
            signing_pin,
            signer,
            pg_bindir: ctx.settings.pg_bindir.clone(),
        })
    }

    /// Proves the artifact `artifact` (a file name in `backups`) and says how it went,
    /// with the full restore proof's record (JSON) when that is the proof that ran and it
    /// got as far as writing one; never fails itself: a proof that cannot run is a
    /// failed proof.
    pub fn prove(&self, backups: &Path, artifact: &str) -> (BackupProofFacts, Option<Value>) {
        let mut facts = BackupProofFacts::pending(self.mode);
        let (Some(secret), Some(pin), Some(signer)) =
            (&self.secret_key, &self.signing_pin, &self.signer)
        else {
            facts.detail = Some("prove_backup is off".into());
            return (facts, None);
        };
        let started = Instant::now();
        let path = backups.join(artifact);
        let stem = artifact.trim_end_matches(".dump.pgp");
        // Which proof: from the manifest as written (each proof checks its signature).
        let manifest = cutter_backup::manifest_path_for(&path)
            .and_then(|p| cutter_backup::Manifest::read(&p))
            .ok();
        let predecessor = manifest
            .as_ref()
            .and_then(|m| m.chain.as_ref())
            .filter(|c| c.kind == LinkKind::Incremental)
            .and_then(|c| c.predecessor.as_ref());
        let kind = match predecessor {
            None => ProofKind::Full,
            // The increment proof needs a proven predecessor (a record signed by the
            // backup signing key): else, or if a record cannot be trusted, the chain.
            Some(p) => match cutter_backup::is_proven(backups, &p.run_id, pin) {
                Ok(true) => ProofKind::Increment,
                Ok(false) => ProofKind::Chain,
                Err(e) => {
                    tracing::warn!(error = %e, "proving the whole chain instead");
                    ProofKind::Chain
                }
            },
        };
        let record_name = cutter_backup::proof_record_name(stem, kind);
        let record = backups.join(&record_name);
        let mut content = None;
        let verdict: std::result::Result<bool, String> = if kind == ProofKind::Full {
            let cfg = cutter_backup::RestoreConfig::new(&path, secret, pin.clone())
                .passphrase(self.passphrase.clone())
                .pg_bindir(self.pg_bindir.clone())
                .record_to(&record, signer);
            let result = cutter_backup::restore_proof(&cfg);
            content = proof_content(&result, &record);
            result.map(|p| p.passed).map_err(|e| e.to_string())
        } else {
            let cfg = cutter_backup::ChainProofConfig::new(&path, secret, pin.clone())
                .passphrase(self.passphrase.clone())
                .pg_bindir(self.pg_bindir.clone())
                .record_to(&record, signer);
            let proof = if kind == ProofKind::Chain {
                cutter_backup::chain_proof(&cfg)
            } else {
                cutter_backup::increment_proof(&cfg)
            };
            proof.map(|p| p.passed).map_err(|e| e.to_string())
        };
        facts.kind = Some(kind);
        facts.duration_ms = Some(started.elapsed().as_millis() as u64);
        facts.record = record.exists().then_some(record_name);
        match verdict {
            Ok(true) => facts.passed = Some(true),
            Ok(false) => {
                facts.passed = Some(false);
                facts.detail = Some("the restored backup did not match its manifest".into());
            }
            Err(e) => {
                facts.passed = Some(false);
                facts.detail = Some(e);
            }
        }
        tracing::info!(mode = %self.mode, kind = %kind, passed = ?facts.passed, "backup proof");
        (facts, content)
    }
}

/// The record a full restore proof made (JSON): the proof it returned, passed or failed,
/// else the record it wrote at `record` before it stopped (a proof that set up its
/// restore target records every outcome, never over an existing record, so the file is
/// this proof's own). `None`: it stopped before anything was restored, and wrote none.
pub fn proof_content(
    result: &cutter_backup::Result<cutter_backup::RestoreProof>,
    record: &Path,
) -> Option<Value> {
    match result {
        Ok(p) => serde_json::to_value(p).ok(),
        Err(cutter_backup::Error::ProofFailed { proof }) => serde_json::to_value(proof).ok(),
        Err(cutter_backup::Error::RecordExists { .. }) => None,
        Err(_) => std::fs::read(record)
            .ok()
            .and_then(|b| serde_json::from_slice(&b).ok()),
    }
}

/// Records a restore proof made after its run (`cutter backup restore-proof`) in the
/// ledger, as a `restore_proof` row of the run whose backup it proves, through the
/// writer's connection (`[database] url`), and says what happened in one line:
/// recorded, or why not. Recorded only for a live run the ledger knows whose recorded
/// backup has the proven artifact's sha256; otherwise nothing is written, and a report
/// of that run shows the restore proof the ledger holds (if any), not this one.
pub fn ledger_proof(
    ctx: &Ctx,
    result: &cutter_backup::Result<cutter_backup::RestoreProof>,
    record: &Path,
) -> String {
    let Some(proof) = proof_content(result, record) else {
        return "ledger: nothing to record (the proof wrote no record)".into();
    };
    match append_proof(ctx, &proof, record) {
        Ok(line) => line,
        Err(why) => format!(
            "ledger: NOT recorded ({why}); a report of this backup's run leaves its restore proof \
             out and names this record as not checked — prove it again where cutter can write the \
             ledger"
        ),
    }
}

fn append_proof(ctx: &Ctx, proof: &Value, record: &Path) -> std::result::Result<String, String> {
    let run = cutter_core::RunId::new(proof["run_id"].as_str().unwrap_or_default())
        .map_err(|e| format!("the proof's run_id: {e}"))?;
    let cfg = crate::ctx::target_config(ctx).map_err(|e| e.to_string())?;
    let mut c = cfg
        .connect()
        .map_err(|e| format!("connecting to the target as the writer: {e}"))?;
    let rows = cutter_governance::run_states(&mut c, &run, None).map_err(|e| e.to_string())?;
    if rows.is_empty() {
        return Ok(format!(
            "ledger: not recorded: {run} is no live run this database's ledger records (a backup \
             of its own, or another database's run)"
        ));
    }
    let state = cutter_governance::replay_run_states(&rows);
    let recorded = &state["context"]["backup"]["sha256"];
    if recorded != &proof["artifact_sha256"] {
        return Err(format!(
            "the ledger records run {run}'s backup with sha256 {recorded}, and this proof is of an \
             artifact with sha256 {}",
            proof["artifact_sha256"]
        ));
    }
    let payload = serde_json::json!({
        "at_ms": crate::runs::now_ms(),
        "proof": proof,
        "record": record.file_name().map(|n| n.to_string_lossy().into_owned()),
    });
    let id = cutter_governance::record_run_row(
        &mut c,
        &run,
        cutter_governance::DECISION_RESTORE_PROOF,
        &payload,
        &ctx.settings.actor,
    )
    .map_err(|e| e.to_string())?;
    Ok(format!(
        "ledger: recorded for run {run} (review_decision {id}); its report takes the restore proof \
         from there"
    ))
}
