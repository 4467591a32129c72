//! The signed run report: `report.json` carrying the report key's public key
//! (`signed_by`), with a detached OpenPGP signature by that key, pinned by
//! `[report].signing_fingerprint` as the backup keys are pinned (no variable replaces the
//! pin; the secret key file must be private). [`verify`] checks the signature against the
//! pin at the caller's *now*, then recomputes every field of the report from the ledger,
//! read through the read-only role (`[database] verify_user`; SELECT is enough): the run's
//! record as its `run_state` rows recorded it while it ran (phases with their timings and
//! outcomes, snapshots, backup, counts, state, events), its approvals from
//! `dot_pair_signature` with the signers' names from the approver registry, write_verify's
//! counts from `verify_result`, the ledger's chain heads as recorded (a head stays
//! checkable after the chain grows) and the chains' integrity, and the restore proof of
//! the run's backup as the ledger holds it (the run's recorded state, or a later
//! `restore_proof` row). The run's rows are read up to the report's recorded
//! `review_decision` head, so a report made before a compensation (or a later proof)
//! still verifies after it. Each field that differs is named, and so is each `run_state`
//! row the run itself could not have appended ([`crate::replay`]: a row after the run's
//! recorded end, an event its state machine refuses, a change of what is fixed). A restore proof record in
//! the state directory that the ledger does not hold is never trusted: it is named as
//! not checked.

use std::time::SystemTime;

use cutter_core::{Fingerprint, RunId};
use cutter_openpgp::{Passphrase, PublicKey, SecretKey};
use serde_json::{json, Value};

use crate::ctx::{target_config, Ctx};
use crate::error::{Error, Result};
use crate::replay::RefusedRow;
use crate::report::{report_extras_as, to_json};
use crate::runs::RunRecord;
use crate::statedir::{JournalEntry, StateDir};

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
    /// The run's `run_state` rows the run itself could not have appended (a forged
    /// row: see [`crate::replay`]), left out of the recomputation.
    pub refused: Vec<RefusedRow>,
    /// Fields the ledger could not check: `/restore_proof` when the ledger holds no restore
    /// proof of the run's backup but the state directory has a record of one (made where
    /// cutter could not write the ledger). Empty otherwise.
    pub not_checked: Vec<NotChecked>,
}

/// A field of the report that the ledger could not check.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct NotChecked {
    /// The field, as a JSON pointer.
    pub field: String,
    /// Why.
    pub why: String,
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
    if v["mode"] != json!(cutter_core::Mode::Live) {
        return Err(Error::Refused(format!(
            "the report's mode is {}: only a live run's report is recomputed from the ledger (a \
             rehearsal's ledger rows were written to its throwaway clone, which is gone)",
            v["mode"]
        )));
    }
    let read_only = target_config(ctx)?.with_user(&ctx.settings.verify_user, None);
    let mut c = read_only.connect().map_err(|e| {
        Error::Failed(format!(
            "connecting as the read-only role {}: {e}",
            ctx.settings.verify_user
        ))
    })?;
    // The run's rows as far as the report's recorded head of review_decision reaches.
    let through = v["ledger"]["tables"].as_array().and_then(|t| {
        t.iter()
            .find(|t| t["table"] == cutter_governance::LedgerTable::ReviewDecision.name())
            .and_then(|t| t["head"][0].as_i64())
    });
    let (rec, entries, refused) = record_from_ledger(&mut c, &run_id, through)?;
    let mut extras = report_extras_as(
        &read_only,
        dir,
        &rec,
        ctx.settings.backup_signing_fingerprint.as_deref(),
        through,
    );
    extras.events = crate::report::timeline_events(rec.machine.mode, &entries);
    let mut recomputed = to_json(&rec, &extras);
    // The key as the signer writes it: anything else in the field is named.
    recomputed["signed_by"] = json!({
        "fingerprint": signer,
        "public_key": public_armored,
    });
    if let Some(tables) = v["ledger"]["tables"].as_array() {
        // The chains grow after a report: each recorded head is checked where it was.
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
        refused,
        not_checked: extras
            .restore_proof_file
            .filter(|_| extras.restore_proof.is_none())
            .map(|why| NotChecked {
                field: "/restore_proof".into(),
                why,
            })
            .into_iter()
            .collect(),
    })
}

/// A live run's record and journal as the ledger recorded them while it ran: its
/// `run_state` rows (up to `review_decision` id `through`, if given) replayed in order
/// ([`crate::replay::checked_replay`]: a row the run could not have appended is refused,
/// returned, and left out),
/// then what other ledger tables hold on their own — the approvals as `dot_pair_signature`
/// recorded them (the signers' names from the approver registry) and write_verify's counts
/// as `verify_result` recorded them. Reads only.
pub fn record_from_ledger(
    c: &mut postgres::Client,
    run: &RunId,
    through: Option<i64>,
) -> Result<(RunRecord, Vec<JournalEntry>, Vec<RefusedRow>)> {
    let failed = |e: cutter_governance::Error| Error::Failed(e.to_string());
    let rows = cutter_governance::run_states(c, run, through).map_err(failed)?;
    if rows.is_empty() {
        return Err(Error::Failed(format!(
            "the ledger records no state of run {run} (no review_decision `run_state` row{}): the report's \
             run_id names no live run recorded in this database's ledger — check the report against the \
             database its run wrote to",
            through.map_or(String::new(), |t| format!(" up to id {t}"))
        )));
    }
    let (state, taken, refused) = crate::replay::checked_replay(&rows);
    let mut entries = Vec::new();
    for (id, p) in rows.iter().filter(|(id, _)| taken.contains(id)) {
        if !p["event"].is_null() {
            let event = serde_json::from_value(p["event"].clone()).map_err(|e| {
                Error::Failed(format!(
                    "review_decision {id} (run_state of run {run}): its event: {e}"
                ))
            })?;
            entries.push(JournalEntry {
                at_ms: p["at_ms"].as_i64().unwrap_or_default(),
                event,
            });
        }
    }
    let mut rec = RunRecord::from_ledger_state(&state).map_err(|e| {
        Error::Failed(format!(
            "the ledger's run_state rows of run {run} do not make a run record: {e}"
        ))
    })?;
    let db = |e: postgres::Error| Error::Failed(format!("reading the ledger of run {run}: {e}"));
    let mut approvals = Vec::new();
    for r in c
        .query(
            "SELECT id, gate, signer_fpr, statement, signature \
               FROM cutter_governance.dot_pair_signature WHERE run_id = $1 ORDER BY id",
            &[&run.as_str()],
        )
        .map_err(db)?
    {
        let id: i64 = r.get(0);
        let bad = |what: String| {
            Error::Failed(format!(
                "dot_pair_signature {id} (run {run}) is not an approval this cutter reads: {what}"
            ))
        };
        approvals.push(cutter_core::VerifiedApproval {
            gate: cutter_core::ApprovalGate::parse(r.get(1))
                .ok_or_else(|| bad(format!("gate {:?}", r.get::<_, &str>(1))))?,
            signer: Fingerprint::new(r.get::<_, &str>(2)).map_err(|e| bad(e.to_string()))?,
            statement: cutter_core::ApprovalStatement::parse(r.get::<_, &str>(3).as_bytes())
                .map_err(bad)?,
            signature: r.get(4),
        });
    }
    let registry = cutter_governance::load_registry(c).map_err(failed)?;
    let verifier = registry.verifier().map_err(failed)?;
    rec.context.signers = approvals
        .iter()
        .filter_map(|a| Some((a.signer.clone(), verifier.user_id(&a.signer)?)))
        .collect();
    rec.context.approvals = approvals;
    let cs = cutter_core::ChangeSetId::for_run(run);
    rec.context.verify = c
        .query_opt(
            "SELECT checked, matched, mismatched FROM cutter_governance.verify_result \
              WHERE change_set_id = $1",
            &[&cs.as_str()],
        )
        .map_err(db)?
        .map(|r| cutter_core::VerifyFacts {
            checked: r.get::<_, i64>(0) as u64,
            matched: r.get::<_, i64>(1) as u64,
            mismatched: r.get::<_, i64>(2) as u64,
        });
    Ok((rec, entries, refused))
}

/// Every leaf where `a` and `b` differ, as JSON pointers; a field only one side has is a
/// difference too.
pub(crate) fn diff(path: &str, a: &Value, b: &Value, out: &mut Vec<Difference>) {
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
