//! The signed run report: `report.json` carrying the report key's public key
//! (`signed_by`), with a detached OpenPGP signature by that key, pinned by
//! `[report].signing_fingerprint` as the backup keys are pinned (no variable replaces the
//! pin; the secret key file must be private). [`verify`] checks the signature against the
//! pin at the caller's *now*, then recomputes every field of the report — from the state
//! directory's run record and, through the read-only role, the database: the ledger's
//! chain heads as recorded (a head stays checkable after the chain grows), the chains'
//! integrity, and the run's rows in the ledger — and names each field that differs.

use std::time::SystemTime;

use cutter_core::{Fingerprint, RunId};
use cutter_openpgp::{Passphrase, PublicKey, SecretKey};
use serde_json::{json, Value};

use crate::ctx::{target_config, Ctx};
use crate::error::{Error, Result};
use crate::report::{report_extras_as, to_json};
use crate::runs::RunRecord;
use crate::statedir::StateDir;

/// The variable that may name the report key's secret key file (as the file does).
pub const SIGNING_KEY_ENV: &str = "CUTTER_REPORT_SIGNING_KEY";
/// The variable holding a protected report key's passphrase.
pub const SIGNING_PASSPHRASE_ENV: &str = "CUTTER_REPORT_SIGNING_PASSPHRASE";

/// The pinned report key (`[report].signing_fingerprint`).
pub fn report_pin(ctx: &Ctx) -> Result<Fingerprint> {
    let v = ctx
        .settings
        .report_signing_fingerprint
        .as_deref()
        .ok_or_else(|| {
            Error::Refused(
                "no report key is pinned: set [report].signing_fingerprint to the fingerprint of the \
                 operator's report key"
                    .into(),
            )
        })?;
    Fingerprint::new(v)
        .map_err(|e| Error::Usage(format!("[report].signing_fingerprint {v:?}: {e}")))
}

/// The operator's report key, loaded and checked against the pin.
pub struct ReportSigner {
    key: SecretKey,
    passphrase: Passphrase,
    public_armored: String,
}

impl std::fmt::Debug for ReportSigner {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ReportSigner")
            .field("fingerprint", &self.key.fingerprint())
            .finish_non_exhaustive()
    }
}

impl ReportSigner {
    /// Loads `[report].signing_key` (a private file), requires the pinned fingerprint,
    /// and makes one test signature, so a wrong key or passphrase is refused up front.
    pub fn load(ctx: &Ctx) -> Result<Self> {
        let pin = report_pin(ctx)?;
        let path = ctx.settings.report_signing_key.as_deref().ok_or_else(|| {
            Error::Refused(format!(
                "no report signing key: set [report].signing_key (or {SIGNING_KEY_ENV}) to the secret \
                 key file of the key [report].signing_fingerprint pins ({pin})"
            ))
        })?;
        let refused = |problem: String| {
            Error::Refused(format!("report signing key {}: {problem}", path.display()))
        };
        let key = cutter_backup::load_secret_key_as(path, "report signing key")
            .map_err(|e| Error::Refused(e.to_string()))?;
        let actual = key.fingerprint();
        if actual != pin {
            return Err(refused(format!(
                "it is key {actual}, but [report].signing_fingerprint pins {pin}; configure the pinned \
                 key's secret key file (or pin this one)"
            )));
        }
        let source = if std::env::var_os(SIGNING_PASSPHRASE_ENV).is_some() {
            cutter_backup::PassphraseSource::Env(SIGNING_PASSPHRASE_ENV.into())
        } else {
            cutter_backup::PassphraseSource::None
        };
        let passphrase = source
            .read(&|k| std::env::var(k).ok())
            .map_err(|e| refused(e.to_string()))?;
        cutter_openpgp::sign_detached(&key, &passphrase, b"cutter report signing probe")
            .map_err(|e| refused(format!("it cannot sign: {e}")))?;
        let public_armored = key
            .public_key()
            .to_armored()
            .map_err(|e| refused(e.to_string()))?;
        Ok(Self {
            key,
            passphrase,
            public_armored,
        })
    }

    /// `report` with `signed_by` (the key's fingerprint and public key) as the bytes to
    /// write, and the armored detached signature over exactly those bytes.
    pub fn sign(&self, report: &Value) -> Result<(String, String)> {
        let mut v = report.clone();
        v["signed_by"] = json!({
            "fingerprint": self.key.fingerprint(),
            "public_key": self.public_armored,
        });
        let text = serde_json::to_string_pretty(&v)
            .map_err(|e| Error::internal(format!("serializing the report: {e}")))?
            + "\n";
        let sig = cutter_openpgp::sign_detached(&self.key, &self.passphrase, text.as_bytes())
            .map_err(|e| Error::Failed(format!("signing the report: {e}")))?;
        Ok((text, sig))
    }
}

/// A field of the signed report that its recomputation does not reproduce.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct Difference {
    /// The field, as a JSON pointer (`/context/units_created`).
    pub field: String,
    /// The value the signed report has (`null` if it lacks the field).
    pub signed: Value,
    /// The value recomputed now (`null` if the recomputation lacks it).
    pub recomputed: Value,
}

/// What [`verify`] found: who signed, and every field that differs.
#[derive(Debug, Clone, serde::Serialize)]
pub struct Verification {
    /// The run the report is about.
    pub run_id: RunId,
    /// The pinned key that signed it.
    pub signer: Fingerprint,
    /// Every field whose recomputation differs, in document order.
    pub differences: Vec<Difference>,
}

/// Checks `signature` over `report` (the bytes of `report.json`) against the pinned
/// report key at now, then recomputes the report and names every field that differs.
/// A bad signature, a key other than the pinned one, or a report that is not one, is
/// an error; differences are the result.
pub fn verify(ctx: &Ctx, dir: &StateDir, report: &[u8], signature: &[u8]) -> Result<Verification> {
    let pin = report_pin(ctx)?;
    let v: Value = serde_json::from_slice(report)
        .map_err(|e| Error::Usage(format!("the report is not JSON: {e}")))?;
    let public = v["signed_by"]["public_key"].as_str().ok_or_else(|| {
        Error::Refused("the report carries no signed_by.public_key: it was not written by `cutter report --sign`".into())
    })?;
    let key = PublicKey::from_bytes(public.as_bytes())
        .map_err(|e| Error::Refused(format!("the report's signed_by.public_key: {e}")))?;
    if key.fingerprint() != pin || v["signed_by"]["fingerprint"] != json!(pin) {
        return Err(Error::Refused(format!(
            "the report's signed_by names key {} (public key {}), but [report].signing_fingerprint pins {pin}",
            v["signed_by"]["fingerprint"],
            key.fingerprint()
        )));
    }
    let public_armored = key
        .to_armored()
        .map_err(|e| Error::Refused(format!("the report's signed_by.public_key: {e}")))?;
    let signer = cutter_openpgp::verify_detached(&[key], report, signature, SystemTime::now())
        .map_err(|e| {
            Error::Refused(format!(
                "the report's signature does not verify with the pinned report key {pin}: {e}"
            ))
        })?;
    let run_id = RunId::new(v["run_id"].as_str().unwrap_or_default())
        .map_err(|e| Error::Failed(format!("the report's run_id: {e}")))?;
    let rec = RunRecord::load(dir, &run_id)?.ok_or_else(|| {
        Error::Failed(format!(
            "the report's run_id {run_id} names no run in {}; verify it against the state directory of its run",
            dir.root().display()
        ))
    })?;
    let read_only = target_config(ctx)?.with_user(&ctx.settings.verify_user, None);
    let extras = report_extras_as(&read_only, dir, &rec);
    let mut recomputed = to_json(&rec, &extras);
    // The key as the signer writes it: anything else in the field is named.
    recomputed["signed_by"] = json!({
        "fingerprint": signer,
        "public_key": public_armored,
    });
    if let Some(tables) = v["ledger"]["tables"].as_array() {
        // The chains grow after a report: each recorded head is checked where it was.
        let mut c = read_only
            .connect()
            .map_err(|e| Error::Failed(format!("connecting as the read-only role: {e}")))?;
        let now = recomputed["ledger"]["tables"].as_array().cloned();
        let mut at_heads = Vec::new();
        for t in tables {
            let mut entry = now
                .as_ref()
                .and_then(|n| n.iter().find(|x| x["table"] == t["table"]))
                .cloned()
                .unwrap_or(Value::Null);
            let table = cutter_governance::LedgerTable::ALL
                .into_iter()
                .find(|l| t["table"] == l.name());
            if let (Some(table), Some(id), false) = (table, t["head"][0].as_i64(), entry.is_null())
            {
                let head = cutter_governance::head_at(&mut c, table, id)
                    .map_err(|e| Error::Failed(e.to_string()))?;
                entry["rows"] = head.as_ref().map_or(Value::Null, |(rows, _)| json!(rows));
                entry["head"] = head.map_or(Value::Null, |(_, hash)| json!([id, hash]));
            }
            at_heads.push(entry);
        }
        recomputed["ledger"]["tables"] = Value::Array(at_heads);
    }
    let mut differences = Vec::new();
    diff("", &v, &recomputed, &mut differences);
    Ok(Verification {
        run_id,
        signer,
        differences,
    })
}

/// Every leaf where `a` and `b` differ, as JSON pointers; a field only one side has is a
/// difference too.
fn diff(path: &str, a: &Value, b: &Value, out: &mut Vec<Difference>) {
    let escape = |k: &str| k.replace('~', "~0").replace('/', "~1");
    match (a, b) {
        (Value::Object(x), Value::Object(y)) => {
            for (k, va) in x {
                diff(
                    &format!("{path}/{}", escape(k)),
                    va,
                    y.get(k).unwrap_or(&Value::Null),
                    out,
                );
            }
            for (k, vb) in y.iter().filter(|(k, _)| !x.contains_key(*k)) {
                diff(&format!("{path}/{}", escape(k)), &Value::Null, vb, out);
            }
        }
        (Value::Array(x), Value::Array(y)) if x.len() == y.len() => {
            for (i, (va, vb)) in x.iter().zip(y).enumerate() {
                diff(&format!("{path}/{i}"), va, vb, out);
            }
        }
        _ if a == b => {}
        _ => out.push(Difference {
            field: if path.is_empty() {
                "/".into()
            } else {
                path.into()
            },
            signed: a.clone(),
            recomputed: b.clone(),
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_differing_leaf_is_named_by_its_pointer() {
        let a = json!({"run_id": "r", "context": {"n": 1, "list": [1, 2], "a/b": true}, "x": null});
        let b = json!({"run_id": "r", "context": {"n": 2, "list": [1, 3], "a/b": true}, "y": 1});
        let mut out = Vec::new();
        diff("", &a, &b, &mut out);
        let fields: Vec<&str> = out.iter().map(|d| d.field.as_str()).collect();
        assert_eq!(fields, ["/context/list/1", "/context/n", "/y"]);
        let mut out = Vec::new();
        diff("", &json!({"l": [1]}), &json!({"l": [1, 2]}), &mut out);
        assert_eq!(out[0].field, "/l");
    }
}
