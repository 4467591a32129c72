//! Encrypted, streaming pre-write backups of the mutation surface, their manifest,
//! selftest, and the restore proof into a throwaway cluster.
//!
//! ```no_run
//! # fn main() -> Result<(), Box<dyn std::error::Error>> {
//! # let (keys, backups) = (std::path::Path::new("keys"), std::path::PathBuf::from("backups"));
//! # let read_only: cutter_pg::ConnConfig = todo!();
//! // The pinned recipient and manifest signer (cutter-run's `backup_recipient` does this
//! // for every run; the CLI tests and `cargo xtask bench backup` run it for real).
//! let recipient_keys = cutter_backup::generate_keys(keys, "backup", "backups <b@example.invalid>", None)?;
//! let signing_keys = cutter_backup::generate_keys(keys, "signing", "manifests <m@example.invalid>", None)?;
//! let pin = cutter_backup::recipient_pin(Some(&recipient_keys.fingerprint.to_string()), &|_| None)?;
//! let recipient = cutter_backup::load_recipient(&recipient_keys.public_key, &pin)?;
//! let signer = cutter_backup::ManifestSigner::load(
//!     &signing_keys.secret_key,
//!     &signing_keys.fingerprint,
//!     &cutter_backup::PassphraseSource::None,
//! )?;
//! let run = cutter_core::RunId::new("r-1")?;
//! let cfg = cutter_backup::BackupConfig::new(backups, run, recipient, signer, read_only);
//! let artifact = cutter_backup::pre_write_backup(&cfg, &mut |_bytes| {})?;
//! println!("{} sha256 {}", artifact.path.display(), artifact.manifest.sha256);
//! # Ok(())
//! # }
//! ```
//!
//! * [`pre_write_backup`] — `pg_dump -Fc` of exactly the mutation surface's tables, as the read-only
//!   role, in an exported snapshot, streamed through OpenPGP encryption (in process,
//!   `cutter_openpgp::encrypt_hashed`, which also hashes what it writes) into
//!   `<backups>/<name>.dump.pgp`,
//!   written atomically, with `<name>.manifest.json` and its detached signature by the
//!   pinned signing key (`<name>.manifest.json.sig`) beside it.
//! * [`verify_artifact`] — the manifest's signature by the pinned signing key, then the
//!   artifact's sha256 and size against it, through the one descriptor later decrypted;
//!   nothing is trusted (or decrypted) before this passes.
//! * [`restore_proof`] — decrypt while streaming into `pg_restore` in a throwaway
//!   cluster, as an unprivileged role and only the surface tables' entries, compare
//!   per-table rows and content digests with the manifest, check the immutability
//!   triggers, record the result, tear the cluster down.
//! * [`selftest`] — one line per check; fail-closed.
//! * [`remove_stale_partials`] — clean up after a crash (`kill -9`) in the middle of a
//!   backup.
//!
//! # Defaults, and why
//!
//! pg_dump runs with `--compress=0` and the OpenPGP message is not compressed either.
//! Compression is CPU-bound (zlib at level 6 manages a few tens of MB/s per core, far
//! below what pg_dump and the disk deliver), and the backup is the phase that holds a
//! snapshot open on production: a short phase matters more than a smaller artifact. An
//! uncompressed archive also lets the backup take the manifest's per-table digests from
//! the dump stream itself, in the same pass, instead of scanning every table a second
//! time on the server. `DumpCompression::Gzip(level)` is available when disk space
//! matters more; digests are then computed on the server (same snapshot).
//!
//! # Invariants
//!
//! Plaintext never touches disk: it exists only in pg_dump's pipe, in a few fixed-size
//! pooled buffers, which are wiped, in the encryptor's literal-data buffer (wiped when
//! the message ends) and in rpgp's message reader while decrypting (a few chunk-sized
//! buffers, freed when the message ends). A file under a final name is
//! complete and synced; temp files (`.<name>.partial-<pid>`) only ever hold ciphertext
//! (or the manifest and its signature). The `pg_restore --use-list` file holds dump ids
//! only. Secrets (database password, secret keys, passphrases) never appear in a child's
//! arguments or environment, in logs or in errors, and secret files that group or
//! others may access are refused. Nothing is decrypted before the manifest's signature
//! by the pinned signing key and the artifact's sha256 (through the descriptor then
//! decrypted) matched; nothing is restored as a privileged role.

#![warn(missing_docs)]

mod archive;
mod backup;
mod chain;
mod chainproof;
mod clone;
mod error;
mod keys;
mod manifest;
mod privileges;
mod programs;
mod proofrecord;
mod prune;
mod restore;
mod rowdigest;
mod sandbox;
mod selftest;
mod streamstats;

pub use backup::{pre_write_backup, BackupArtifact, BackupConfig, DIGEST_METHOD};
pub use chain::{
    chain_links, chained_backup, AuditMark, ChainInfo, ChainPolicy, ChainTable, Link, LinkKind,
    LinkRef, DEFAULT_FULL_EVERY, EVENT_TRIGGERS, INCREMENT_FORMAT, WATERMARK_TRIGGER,
};
pub use chainproof::{
    chain_proof, increment_proof, verify_chain, ChainProof, ChainProofConfig, ChainTableCheck,
    ChainTimings, CHAIN_PROOF_FORMAT, INCREMENT_PROOF_FORMAT,
};
pub use clone::{pg_restore_data_args, restore_chain_into, restore_data_into};
pub use cutter_fs::{remove_stale_partials, StalePartials};
pub use error::{Error, Result};
pub use keys::{
    generate_keys, load_recipient, load_secret_key, load_secret_key_as, recipient_pin, signing_pin,
    GeneratedKeyFiles, ManifestSigner, PassphraseSource, PIN_ENV, SIGNING_KEY_ENV,
    SIGNING_PASSPHRASE_ENV,
};
pub use manifest::{
    artifact_file_name, backup_file_names, manifest_file_name, manifest_path_for,
    proof_record_name, signature_path_for, verify_artifact, ArtifactReader, DumpCompression,
    DumpInfo, EncryptionInfo, Manifest, ServerInfo, SignerInfo, VerifiedArtifact, MANIFEST_FORMAT,
};
pub use programs::{bindir, PgProgram};
pub use proofrecord::{is_proven, read_verified_record, record_signature_path, verify_record};
pub use prune::{discard_backup, execute_prune, plan_prune, KeepReason, PruneLink, PrunePlan};
pub use restore::{
    pg_restore_args, prepare_restore_database, restore_proof, start_restore_cluster, ProofTimings,
    RestoreConfig, RestoreProof, RestoreTarget, TableCheck, PROOF_FORMAT, RESTORE_CLUSTER_SETTINGS,
};
pub use selftest::{selftest, Check, SelftestConfig, SelftestReport};

/// Re-exported so callers need not depend on `cutter-openpgp` for the common case.
pub use cutter_openpgp::{Passphrase, Recipient};
