//! The manifest written beside every artifact (`<name>.manifest.json`): what was dumped,
//! from which server, by which pg_dump, encrypted to which key, its sha256 and size, and
//! per-table row counts and content digests read in the very snapshot pg_dump used. The
//! manifest is written last: an artifact without one is not a backup. Nothing trusts an
//! artifact until [`verify_artifact`] matched its sha256 and size to the manifest.

use std::collections::BTreeMap;
use std::fs::File;
use std::io::Read;
use std::path::{Path, PathBuf};

use cutter_core::{
    BackupFacts, Fingerprint, RunId, Sha256Digest, SystemIdentifier, TableName, TableStat, UnixTime,
};
use serde::{Deserialize, Serialize};
use sha2::{Digest as _, Sha256};

use crate::error::{Error, Result};

/// The value of [`Manifest::format`].
pub const MANIFEST_FORMAT: &str = "cutter-backup-manifest/1";

/// The artifact file name of a backup: `<name>.dump.pgp`.
pub fn artifact_file_name(name: &RunId) -> String {
    format!("{name}.dump.pgp")
}

/// The manifest file name of a backup: `<name>.manifest.json`.
pub fn manifest_file_name(name: &RunId) -> String {
    format!("{name}.manifest.json")
}

/// The manifest path that belongs to an artifact path (`x/<name>.dump.pgp` →
/// `x/<name>.manifest.json`).
pub fn manifest_path_for(artifact: &Path) -> Result<PathBuf> {
    let name = artifact
        .file_name()
        .and_then(|n| n.to_str())
        .and_then(|n| n.strip_suffix(".dump.pgp"))
        .ok_or_else(|| Error::Manifest {
            path: artifact.to_path_buf(),
            problem: "an artifact's name ends in .dump.pgp; give the path of the artifact \
                      (its manifest is <name>.manifest.json beside it)"
                .into(),
        })?;
    Ok(artifact.with_file_name(format!("{name}.manifest.json")))
}

/// How pg_dump compressed the archive.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize, Default)]
#[serde(rename_all = "snake_case", tag = "method", content = "level")]
pub enum DumpCompression {
    /// `-Z0`: no compression (the default; see the crate docs for why).
    #[default]
    None,
    /// `-Z<level>` (gzip, 1–9).
    Gzip(u8),
}

impl DumpCompression {
    /// The `--compress` argument value.
    pub(crate) fn arg(self) -> String {
        match self {
            DumpCompression::None => "0".into(),
            DumpCompression::Gzip(l) => l.clamp(1, 9).to_string(),
        }
    }
}

/// The dump itself.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DumpInfo {
    /// Always `custom` (`pg_dump -Fc`).
    pub format: String,
    /// pg_dump's compression.
    pub compression: DumpCompression,
    /// pg_dump's version (e.g. `15.14`).
    pub pg_dump_version: String,
    /// The snapshot pg_dump ran in (`pg_export_snapshot()`), also used for `tables`.
    pub snapshot: String,
    /// Bytes pg_dump wrote (the plaintext size; never stored).
    pub plaintext_bytes: u64,
}

/// The encryption.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EncryptionInfo {
    /// The pinned recipient key (primary fingerprint).
    pub recipient: Fingerprint,
    /// The (sub)key the session key is encrypted to.
    pub encryption_key: Fingerprint,
    /// The message format, e.g. `OpenPGP PKESKv3 + SEIPDv1 (MDC), AES-256, uncompressed`.
    pub scheme: String,
}

/// The server the dump was taken from.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ServerInfo {
    /// `server_version` (e.g. `15.14`).
    pub version: String,
    /// `server_version_num` (e.g. 150014).
    pub version_num: u32,
    /// `pg_control_system().system_identifier`.
    pub system_identifier: SystemIdentifier,
    /// The database dumped.
    pub database: String,
    /// The role pg_dump and the digests ran as.
    pub role: String,
}

/// Everything recorded about one backup.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Manifest {
    /// [`MANIFEST_FORMAT`].
    pub format: String,
    /// The run (or the name of a manual backup).
    pub run_id: RunId,
    /// The artifact's file name (beside this manifest).
    pub artifact: String,
    /// When the backup was finalized.
    pub created_at: UnixTime,
    /// SHA-256 of the artifact (ciphertext).
    pub sha256: Sha256Digest,
    /// Size of the artifact in bytes.
    pub size_bytes: u64,
    /// The encryption.
    pub encryption: EncryptionInfo,
    /// The dump.
    pub dump: DumpInfo,
    /// The source server.
    pub server: ServerInfo,
    /// The canonical table digest used for `tables` (see `cutter-pg`).
    pub digest_method: String,
    /// The nine tables, each with rows and content digest read in the dump's snapshot.
    pub tables: BTreeMap<TableName, TableStat>,
    /// Where each digest was computed: `dump stream` (from the very bytes dumped) or
    /// `server (<why not from the stream>)` (in the same snapshot).
    pub digest_sources: BTreeMap<TableName, String>,
    /// Wall time of the whole backup, milliseconds.
    pub duration_ms: u64,
}

impl Manifest {
    /// What the run context records about this backup.
    pub fn backup_facts(&self) -> BackupFacts {
        BackupFacts {
            artifact: self.artifact.clone(),
            sha256: self.sha256,
            size_bytes: self.size_bytes,
            recipient: self.encryption.recipient.clone(),
        }
    }

    /// Pretty JSON with a trailing newline.
    pub fn to_json(&self) -> String {
        let mut s = serde_json::to_string_pretty(self).expect("a manifest always serializes");
        s.push('\n');
        s
    }

    /// Reads and checks a manifest file.
    pub fn read(path: &Path) -> Result<Self> {
        let bytes = std::fs::read(path).map_err(|e| Error::Manifest {
            path: path.to_path_buf(),
            problem: if e.kind() == std::io::ErrorKind::NotFound {
                "does not exist; an artifact without its manifest is not a complete backup \
                 (it may be left over from an interrupted run) and cannot be verified"
                    .into()
            } else {
                format!("cannot be read: {e}")
            },
        })?;
        let m: Manifest = serde_json::from_slice(&bytes).map_err(|e| Error::Manifest {
            path: path.to_path_buf(),
            problem: format!("is not a cutter backup manifest: {e}"),
        })?;
        if m.format != MANIFEST_FORMAT {
            return Err(Error::Manifest {
                path: path.to_path_buf(),
                problem: format!(
                    "has format {:?}; this cutter reads {MANIFEST_FORMAT:?}",
                    m.format
                ),
            });
        }
        Ok(m)
    }
}

/// A verified artifact: its manifest, and the sha256 and size just recomputed.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct VerifiedArtifact {
    /// The artifact file.
    pub path: PathBuf,
    /// Its manifest.
    pub manifest: Manifest,
}

/// Recomputes the artifact's sha256 and size and compares them with its manifest
/// (`<name>.manifest.json` beside it). Nothing is decrypted. Use before trusting an
/// artifact for anything.
pub fn verify_artifact(artifact: &Path) -> Result<VerifiedArtifact> {
    let manifest_path = manifest_path_for(artifact)?;
    let manifest = Manifest::read(&manifest_path)?;
    let file_name = artifact.file_name().and_then(|n| n.to_str()).unwrap_or("");
    if manifest.artifact != file_name {
        return Err(Error::Manifest {
            path: manifest_path,
            problem: format!(
                "belongs to artifact {:?}, not {:?}",
                manifest.artifact, file_name
            ),
        });
    }
    let (actual, actual_size) = sha256_file(artifact)?;
    if actual != manifest.sha256 || actual_size != manifest.size_bytes {
        return Err(Error::ChecksumMismatch {
            path: artifact.to_path_buf(),
            expected: manifest.sha256,
            actual,
            expected_size: manifest.size_bytes,
            actual_size,
        });
    }
    Ok(VerifiedArtifact {
        path: artifact.to_path_buf(),
        manifest,
    })
}

/// SHA-256 and size of a file, streamed.
pub(crate) fn sha256_file(path: &Path) -> Result<(Sha256Digest, u64)> {
    let mut f = File::open(path).map_err(|e| Error::io("opening", path, e))?;
    let mut h = Sha256::new();
    let mut buf = vec![0u8; 256 * 1024];
    let mut n = 0u64;
    loop {
        let k = match f.read(&mut buf) {
            Ok(0) => break,
            Ok(k) => k,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(Error::io("reading", path, e)),
        };
        h.update(&buf[..k]);
        n += k as u64;
    }
    Ok((Sha256Digest::from_bytes(h.finalize().into()), n))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn manifest_paths() {
        let p = manifest_path_for(Path::new("/s/backups/r-1.dump.pgp")).unwrap();
        assert_eq!(p, Path::new("/s/backups/r-1.manifest.json"));
        assert!(manifest_path_for(Path::new("/s/backups/r-1.manifest.json")).is_err());
        let r = RunId::new("r-1").unwrap();
        assert_eq!(artifact_file_name(&r), "r-1.dump.pgp");
        assert_eq!(manifest_file_name(&r), "r-1.manifest.json");
    }

    #[test]
    fn compression_serializes_readably() {
        assert_eq!(
            serde_json::to_string(&DumpCompression::None).unwrap(),
            r#"{"method":"none"}"#
        );
        assert_eq!(
            serde_json::to_string(&DumpCompression::Gzip(6)).unwrap(),
            r#"{"method":"gzip","level":6}"#
        );
        assert_eq!(DumpCompression::Gzip(0).arg(), "1");
    }
}
