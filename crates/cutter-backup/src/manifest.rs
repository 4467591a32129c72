//! The manifest written beside every artifact (`<name>.manifest.json`): what was dumped,
//! from which server, by which pg_dump, encrypted to which key, its sha256 and size, and
//! per-table row counts and content digests read in the very snapshot pg_dump used, and
//! the key that signs it. Its detached OpenPGP signature (`<name>.manifest.json.sig`,
//! armored; `gpg --verify` reads it) covers every byte of it. The manifest is written
//! last: an artifact without one is not a backup.
//!
//! Nothing trusts an artifact until [`verify_artifact`] has checked, in this order, that
//! the manifest is signed by the pinned signing key, and that the artifact's sha256 and
//! size, read through the one file descriptor that is then used to decrypt it, match
//! the manifest. Encrypting to the backup key needs no secret, so without the signature
//! anyone could make an artifact and a manifest that match.

use std::collections::BTreeMap;
use std::fs::File;
use std::io::{Read, Seek, SeekFrom};
use std::path::{Path, PathBuf};
use std::time::SystemTime;

use cutter_core::{
    BackupFacts, Fingerprint, ProofKind, RunId, Sha256Digest, SystemIdentifier, TableName,
    TableStat, UnixTime,
};
use serde::{Deserialize, Serialize};
use sha2::{Digest as _, Sha256};

use crate::error::{Error, Result};

/// The value of [`Manifest::format`].
pub const MANIFEST_FORMAT: &str = "cutter-backup-manifest/2";

/// Manifests larger than this are refused unread (a real one is a few kilobytes).
const MAX_MANIFEST_BYTES: u64 = 4 << 20;

/// The artifact file name of a backup: `<name>.dump.pgp`.
pub fn artifact_file_name(name: &RunId) -> String {
    format!("{name}.dump.pgp")
}

/// The manifest file name of a backup: `<name>.manifest.json`.
pub fn manifest_file_name(name: &RunId) -> String {
    format!("{name}.manifest.json")
}

/// The file name of the record of a `kind` proof of backup `name`:
/// `<name>.<word>-proof.json` ([`ProofKind::record_word`]).
pub fn proof_record_name(name: &str, kind: ProofKind) -> String {
    format!("{name}.{}-proof.json", kind.record_word())
}

/// Every file of backup `name`, in the order they are removed: the manifest first (a
/// manifest under its final name always has its artifact and its signature), its
/// signature, the artifact, then the records of its proofs, each before its signature.
pub fn backup_file_names(name: &RunId) -> [String; 9] {
    let manifest = manifest_file_name(name);
    let [restore, increment, chain] = ProofKind::ALL.map(|k| proof_record_name(name.as_str(), k));
    let signature = format!("{manifest}.sig");
    let sig = |r: &str| format!("{r}.sig");
    [
        manifest,
        signature,
        artifact_file_name(name),
        restore.clone(),
        sig(&restore),
        increment.clone(),
        sig(&increment),
        chain.clone(),
        sig(&chain),
    ]
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

/// The detached signature of a manifest: `<manifest>.sig` beside it.
pub fn signature_path_for(manifest: &Path) -> PathBuf {
    let mut name = manifest
        .file_name()
        .map(|n| n.to_os_string())
        .unwrap_or_default();
    name.push(".sig");
    manifest.with_file_name(name)
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

/// The key that signed the manifest.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SignerInfo {
    /// Its primary fingerprint (`[backup].signing_fingerprint`).
    pub fingerprint: Fingerprint,
    /// The public key, armored: a reviewer checks it against the pin, then the signature
    /// (`gpg --import`, `gpg --verify <name>.manifest.json.sig <name>.manifest.json`).
    pub public_key: String,
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
    /// The surface tables, each with rows and content digest read in the dump's snapshot.
    pub tables: BTreeMap<TableName, TableStat>,
    /// Where each digest was computed: `dump stream` (from the very bytes dumped) or
    /// `server (<why not from the stream>)` (in the same snapshot).
    pub digest_sources: BTreeMap<TableName, String>,
    /// Wall time of the whole backup, milliseconds.
    pub duration_ms: u64,
    /// The key that signs this manifest.
    pub signer: SignerInfo,
    /// This backup as a link of a chain (full or incremental); absent in backups taken
    /// outside a chain (see `docs/design/incremental-backup.md`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub chain: Option<crate::chain::ChainInfo>,
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

    /// Reads and parses a manifest file. The signature is not checked: use
    /// [`verify_artifact`] before trusting what it says.
    pub fn read(path: &Path) -> Result<Self> {
        Self::parse(path, &read_small(path, "manifest")?)
    }

    /// Parses manifest bytes read from `path`.
    fn parse(path: &Path, bytes: &[u8]) -> Result<Self> {
        let m: Manifest = serde_json::from_slice(bytes).map_err(|e| Error::Manifest {
            path: path.to_path_buf(),
            problem: format!("is not a cutter backup manifest of format {MANIFEST_FORMAT:?}: {e}"),
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

/// A verified artifact: its manifest (signed by the pinned key), and the artifact file,
/// open, whose sha256 and size were just recomputed through this very descriptor. Read
/// it again only through [`VerifiedArtifact::reader`], never by path: a file swapped in
/// under the same name after the check is never read.
#[derive(Debug)]
pub struct VerifiedArtifact {
    /// The artifact file's path (for messages).
    pub path: PathBuf,
    /// Its manifest.
    pub manifest: Manifest,
    file: File,
}

impl VerifiedArtifact {
    /// The artifact from its first byte, through the descriptor that was verified;
    /// the reader hashes what it yields, for [`ArtifactReader::check`].
    pub fn reader(&self) -> Result<ArtifactReader<'_>> {
        (&self.file)
            .seek(SeekFrom::Start(0))
            .map_err(|e| Error::io("rewinding", &self.path, e))?;
        Ok(ArtifactReader {
            file: &self.file,
            sha: Sha256::new(),
            len: 0,
            path: &self.path,
            expected: (self.manifest.sha256, self.manifest.size_bytes),
        })
    }
}

/// The verified artifact's bytes, hashed as they are read.
pub struct ArtifactReader<'a> {
    file: &'a File,
    sha: Sha256,
    len: u64,
    path: &'a Path,
    expected: (Sha256Digest, u64),
}

impl std::fmt::Debug for ArtifactReader<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ArtifactReader")
            .field("path", &self.path)
            .field("read", &self.len)
            .finish_non_exhaustive()
    }
}

impl Read for ArtifactReader<'_> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let n = self.file.read(buf)?;
        self.sha.update(&buf[..n]);
        self.len += n as u64;
        Ok(n)
    }
}

impl ArtifactReader<'_> {
    /// After reading to the end: the bytes read are the ones verified (same sha256 and
    /// size), else [`Error::ArtifactChanged`]: the file was written to in place.
    pub fn check(self) -> Result<()> {
        let mut rest = self;
        let mut buf = vec![0u8; 64 * 1024];
        // Whatever the reader of the message left unread still belongs to the file.
        loop {
            match rest.read(&mut buf) {
                Ok(0) => break,
                Ok(_) => {}
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
                Err(e) => return Err(Error::io("reading", rest.path, e)),
            }
        }
        let actual = Sha256Digest::from_bytes(rest.sha.finalize().into());
        if actual != rest.expected.0 || rest.len != rest.expected.1 {
            return Err(Error::ArtifactChanged {
                path: rest.path.to_path_buf(),
                expected: rest.expected.0,
                actual,
            });
        }
        Ok(())
    }
}

/// Reads a small file whole (manifest, signature), refusing anything larger than
/// [`MAX_MANIFEST_BYTES`].
fn read_small(path: &Path, what: &str) -> Result<Vec<u8>> {
    let f = File::open(path).map_err(|e| Error::Manifest {
        path: path.to_path_buf(),
        problem: if e.kind() == std::io::ErrorKind::NotFound {
            format!(
                "does not exist; an artifact without its {what} is not a complete backup \
                 (it may be left over from an interrupted run) and cannot be verified"
            )
        } else {
            format!("cannot be read: {e}")
        },
    })?;
    let mut bytes = Vec::new();
    f.take(MAX_MANIFEST_BYTES + 1)
        .read_to_end(&mut bytes)
        .map_err(|e| Error::io("reading", path, e))?;
    if bytes.len() as u64 > MAX_MANIFEST_BYTES {
        return Err(Error::Manifest {
            path: path.to_path_buf(),
            problem: format!("is larger than {MAX_MANIFEST_BYTES} bytes; not a cutter {what}"),
        });
    }
    Ok(bytes)
}

/// Checks that the manifest at `manifest_path` is signed by the pinned key and parses
/// it; returns it with the SHA-256 of its bytes (what a chain link names). The artifact
/// is not read: [`verify_artifact`] does that.
pub(crate) fn verify_manifest(
    manifest_path: &Path,
    signing_pin: &Fingerprint,
) -> Result<(Manifest, Sha256Digest)> {
    let manifest_path = manifest_path.to_path_buf();
    let bytes = read_small(&manifest_path, "manifest")?;
    let signature_path = signature_path_for(&manifest_path);
    let signature = match std::fs::symlink_metadata(&signature_path) {
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            return Err(Error::ManifestUnsigned {
                path: manifest_path,
                signature: signature_path,
            })
        }
        _ => read_small(&signature_path, "manifest signature")?,
    };
    let bad = |problem: String| Error::ManifestSignature {
        path: manifest_path.clone(),
        pinned: signing_pin.clone(),
        problem,
    };
    // The signer's key is taken from the manifest and trusted only if it is the pinned
    // one; the signature then decides whether any byte of the manifest was changed.
    #[derive(Deserialize)]
    struct SignerOnly {
        signer: Option<SignerInfo>,
    }
    let signer = serde_json::from_slice::<SignerOnly>(&bytes)
        .ok()
        .and_then(|s| s.signer)
        .ok_or_else(|| bad("it names no signing key".into()))?;
    let key = cutter_openpgp::PublicKey::from_bytes(signer.public_key.as_bytes())
        .map_err(|e| bad(format!("the signing key it names cannot be read: {e}")))?;
    if &key.fingerprint() != signing_pin {
        return Err(bad(format!(
            "it was signed by key {}, which is not the pinned one",
            key.fingerprint()
        )));
    }
    match cutter_openpgp::verify_detached(&[key], &bytes, &signature, SystemTime::now()) {
        Ok(fp) if &fp == signing_pin => {}
        Ok(fp) => return Err(bad(format!("the signature is by key {fp}"))),
        Err(e) => return Err(bad(e.to_string())),
    }

    let manifest = Manifest::parse(&manifest_path, &bytes)?;
    if manifest.signer.fingerprint != *signing_pin {
        return Err(bad(format!(
            "it records signer {}, not the pinned key",
            manifest.signer.fingerprint
        )));
    }
    Ok((manifest, Sha256Digest::of(&bytes)))
}

/// Checks that the manifest beside `artifact` is signed by the key `signing_pin` names,
/// then recomputes the artifact's sha256 and size through one open descriptor and
/// compares them with the manifest. Nothing is decrypted. Use before trusting an
/// artifact for anything; decrypt it only through the returned [`VerifiedArtifact`].
///
/// Refused, in this order: an unsigned manifest ([`Error::ManifestUnsigned`]), a
/// signature by any other key or over other bytes ([`Error::ManifestSignature`]: an
/// edited count is one), a manifest of another format or artifact
/// ([`Error::Manifest`]), an artifact that does not match ([`Error::ChecksumMismatch`]).
pub fn verify_artifact(artifact: &Path, signing_pin: &Fingerprint) -> Result<VerifiedArtifact> {
    let manifest_path = manifest_path_for(artifact)?;
    let (manifest, _) = verify_manifest(&manifest_path, signing_pin)?;
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
    let file = File::open(artifact).map_err(|e| Error::io("opening", artifact, e))?;
    let (actual, actual_size) = sha256_of(&file, artifact)?;
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
        file,
    })
}

/// SHA-256 and size of an open file, streamed from its start.
fn sha256_of(mut f: &File, path: &Path) -> Result<(Sha256Digest, u64)> {
    f.seek(SeekFrom::Start(0))
        .map_err(|e| Error::io("rewinding", path, e))?;
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
