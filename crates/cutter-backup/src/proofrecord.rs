//! Proof records (`<name>.<word>-proof.json`, one per [`ProofKind`]), signed by the backup
//! signing key: a detached armored signature `<record>.sig` (`gpg --verify` reads it,
//! as it reads a manifest's), written before the record, so a record under its final
//! name always has its signature.
//!
//! A record counts as proof of a backup ([`is_proven`]) only when its signature is by
//! the pinned signing key (checked with the public key the backup's own manifest carries,
//! itself verified against the pin), it names that backup's artifact by SHA-256 (a record
//! copied from another backup names another), and it says `"passed": true`. A record
//! present but unsigned, signed by another key, edited, or naming another artifact is an
//! error naming the file: someone who can write the state directory must not be able to
//! declare a link proven.

use std::path::{Path, PathBuf};
use std::time::SystemTime;

use cutter_core::{Fingerprint, ProofKind, RunId};
use cutter_fs::Replace;

use crate::error::{Error, Result};
use crate::keys::ManifestSigner;
use crate::manifest::{manifest_file_name, proof_record_name, verify_manifest};

/// Largest record read (a real one is a few kilobytes).
const MAX_RECORD_BYTES: u64 = 4 << 20;

/// The detached signature of a proof record: `<record>.sig`.
pub fn record_signature_path(record: &Path) -> PathBuf {
    let mut s = record.as_os_str().to_owned();
    s.push(".sig");
    PathBuf::from(s)
}

/// Writes `json` to `path` (never overwriting) with its detached signature by `signer`
/// beside it, the signature first.
pub(crate) fn write_signed_record(path: &Path, json: &str, signer: &ManifestSigner) -> Result<()> {
    if std::fs::symlink_metadata(path).is_ok() {
        return Err(Error::RecordExists {
            path: path.to_path_buf(),
        });
    }
    let signature = signer.sign(json.as_bytes())?;
    // A signature without its record (a crash between the two) is replaced; the record
    // itself never is.
    cutter_fs::write(
        &record_signature_path(path),
        signature.as_bytes(),
        Replace::Yes,
    )?;
    cutter_fs::write(path, json.as_bytes(), Replace::No)?;
    Ok(())
}

fn untrusted(path: &Path, problem: impl Into<String>) -> Error {
    Error::ProofRecord {
        path: path.to_path_buf(),
        problem: problem.into(),
    }
}

fn read_small(path: &Path) -> Result<Vec<u8>> {
    let meta = std::fs::symlink_metadata(path).map_err(|e| Error::io("reading", path, e))?;
    if !meta.is_file() || meta.len() > MAX_RECORD_BYTES {
        return Err(untrusted(path, "it is not a regular file of at most 4 MiB"));
    }
    std::fs::read(path).map_err(|e| Error::io("reading", path, e))
}

/// Checks the record at `record` against the backup `name` in `dir`: signed by the
/// pinned key, naming that backup's artifact; returns whether it says it passed.
pub fn verify_record(
    record: &Path,
    dir: &Path,
    name: &RunId,
    signing_pin: &Fingerprint,
) -> Result<bool> {
    read_verified_record(record, dir, name, signing_pin)
        .map(|v| v["passed"] == serde_json::Value::Bool(true))
}

/// The record at `record` as [`verify_record`] checks it, parsed from the very bytes
/// whose signature was verified (a record swapped after the check is never the one
/// returned).
pub fn read_verified_record(
    record: &Path,
    dir: &Path,
    name: &RunId,
    signing_pin: &Fingerprint,
) -> Result<serde_json::Value> {
    let (manifest, _) = verify_manifest(&dir.join(manifest_file_name(name)), signing_pin)?;
    let bytes = read_small(record)?;
    let sig_path = record_signature_path(record);
    if std::fs::symlink_metadata(&sig_path).is_err() {
        return Err(untrusted(
            record,
            format!(
                "it is unsigned ({} is missing); only a record signed by the backup signing key \
                 counts",
                sig_path.display()
            ),
        ));
    }
    let signature = read_small(&sig_path)?;
    let key = cutter_openpgp::PublicKey::from_bytes(manifest.signer.public_key.as_bytes())
        .map_err(|e| untrusted(record, format!("the signing key cannot be read: {e}")))?;
    match cutter_openpgp::verify_detached(&[key], &bytes, &signature, SystemTime::now()) {
        Ok(fp) if &fp == signing_pin => {}
        Ok(fp) => {
            return Err(untrusted(
                record,
                format!("it is signed by key {fp}, not the pinned signing key {signing_pin}"),
            ))
        }
        Err(e) => {
            return Err(untrusted(
                record,
                format!(
                    "its signature does not verify with the pinned signing key {signing_pin} \
                     (edited, or signed by another key): {e}"
                ),
            ))
        }
    }
    let v: serde_json::Value = serde_json::from_slice(&bytes)
        .map_err(|e| untrusted(record, format!("it is not JSON: {e}")))?;
    let named = v["artifact_sha256"].as_str().unwrap_or("");
    if named != manifest.sha256.to_string() {
        return Err(untrusted(
            record,
            format!(
                "it proves artifact sha256 {named:?}, but {} is {}: a record of another backup",
                manifest.artifact, manifest.sha256
            ),
        ));
    }
    Ok(v)
}

/// Whether backup `name` in `dir` has a passed proof record (of any kind) that
/// [`verify_record`] trusts. `Ok(false)`: no passed record. An error names a record that
/// is present but cannot be trusted.
pub fn is_proven(dir: &Path, name: &RunId, signing_pin: &Fingerprint) -> Result<bool> {
    let mut proven = false;
    for kind in ProofKind::ALL {
        let record = dir.join(proof_record_name(name.as_str(), kind));
        if std::fs::symlink_metadata(&record).is_err() {
            continue;
        }
        proven |= verify_record(&record, dir, name, signing_pin)?;
    }
    Ok(proven)
}
