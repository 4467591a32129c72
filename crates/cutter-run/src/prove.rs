//! `[run] prove_backup`: a live run proves its own pre-write backup — `before-write`
//! between pre_write_backup and cut_leg_a (a failed proof fails pre_write_backup, so
//! nothing is written), `after-run` once the run's phases are done — by restoring it
//! into a throwaway cluster: the increment proof for an increment whose predecessor is
//! proven, the chain proof for one whose predecessor is not, the full restore proof for a
//! full backup. The proof's record goes beside the artifact in `backups/`; the run's
//! context records mode and verdict for the report.

use std::path::{Path, PathBuf};
use std::time::Instant;

use cutter_backup::{LinkKind, PassphraseSource};
use cutter_core::{BackupProofFacts, Fingerprint, ProveBackup};

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

    /// Proves the artifact `artifact` (a file name in `backups`) and says how it went;
    /// never fails itself: a proof that cannot run is a failed proof.
    pub fn prove(&self, backups: &Path, artifact: &str) -> BackupProofFacts {
        let mut facts = BackupProofFacts::pending(self.mode);
        let (Some(secret), Some(pin), Some(signer)) =
            (&self.secret_key, &self.signing_pin, &self.signer)
        else {
            facts.detail = Some("prove_backup is off".into());
            return facts;
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
            None => "full",
            // The increment proof needs a proven predecessor (a record signed by the
            // backup signing key): else, or if a record cannot be trusted, the chain.
            Some(p) => match cutter_backup::is_proven(backups, &p.run_id, pin) {
                Ok(true) => "increment",
                Ok(false) => "chain",
                Err(e) => {
                    tracing::warn!(error = %e, "proving the whole chain instead");
                    "chain"
                }
            },
        };
        let record_name =
            cutter_backup::proof_record_name(stem, if kind == "full" { "restore" } else { kind });
        let record = backups.join(&record_name);
        let verdict: std::result::Result<bool, String> = if kind == "full" {
            let cfg = cutter_backup::RestoreConfig::new(&path, secret, pin.clone())
                .passphrase(self.passphrase.clone())
                .pg_bindir(self.pg_bindir.clone())
                .record_to(&record, signer);
            cutter_backup::restore_proof(&cfg)
                .map(|p| p.passed)
                .map_err(|e| e.to_string())
        } else {
            let cfg = cutter_backup::ChainProofConfig::new(&path, secret, pin.clone())
                .passphrase(self.passphrase.clone())
                .pg_bindir(self.pg_bindir.clone())
                .record_to(&record, signer);
            let proof = if kind == "chain" {
                cutter_backup::chain_proof(&cfg)
            } else {
                cutter_backup::increment_proof(&cfg)
            };
            proof.map(|p| p.passed).map_err(|e| e.to_string())
        };
        facts.kind = Some(kind.into());
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
        tracing::info!(mode = %self.mode, kind, passed = ?facts.passed, "backup proof");
        facts
    }
}
