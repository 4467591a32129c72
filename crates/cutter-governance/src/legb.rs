//! leg_b_record: the change set, one affected row per unit, the manifest envelope and the
//! pair signatures, for any number of units, in the phase's one transaction. Set-based:
//! a fixed number of statements whatever N is.

use std::collections::HashMap;

use cutter_core::{
    CanonicalHasher, ChangeSetId, LiveAuthorization, RunId, Sha256Digest, ValidPlan,
    VerifiedApproval,
};
use cutter_pg::RollbackOnly;
use postgres::Transaction;
use serde::Serialize;
use serde_json::json;

use crate::chain::{append, canonical_json, lock_tables, Appended, LedgerTable, NewRow};
use crate::common::{check_actor, check_plan, check_target, ensure_not_voided, now_text};
use crate::error::{Error, Result};

/// The `format` of a manifest envelope's JSON.
pub const MANIFEST_FORMAT: &str = "cutter-manifest/1";

/// What leg_b_record wrote.
#[derive(Clone, PartialEq, Eq, Debug, Serialize)]
pub struct LegBReport {
    /// The change set recorded.
    pub change_set: ChangeSetId,
    /// Units recorded (= plan rows).
    pub units: u64,
    /// `cut_change_set.id`.
    pub change_set_row: i64,
    /// First and last `cut_change_set_affected_row.id`.
    pub affected_rows: (i64, i64),
    /// `manifest_envelope.id`.
    pub manifest_row: i64,
    /// `dot_pair_signature.id` of each approval (none for a rehearsal).
    pub signature_rows: Vec<i64>,
    /// The digest over the plan's per-unit body digests recorded in the manifest.
    pub units_digest: Sha256Digest,
}

/// The lower-case hex SHA-256 of a body's UTF-8 bytes, as `fn_iu_create` stores it in
/// `unit_version.body_sha256`.
pub fn body_sha256(body: &str) -> String {
    Sha256Digest::of(body.as_bytes()).to_hex()
}

/// The digest over `(canonical_address, body_sha256)` pairs in plan order:
/// `CanonicalHasher("cutter-manifest-units-v1")`, the count (u64), then each address and
/// hex digest as fields.
pub fn units_digest<'a>(pairs: impl ExactSizeIterator<Item = (&'a str, &'a str)>) -> Sha256Digest {
    let mut h = CanonicalHasher::new("cutter-manifest-units-v1");
    h.u64_field(pairs.len() as u64);
    for (a, d) in pairs {
        h.field(a.as_bytes()).field(d.as_bytes());
    }
    h.finish()
}

/// Records the change set of `auth`'s run in the ledger, inside the phase transaction
/// `tx` (the caller commits it; dropped, it rolls back and leaves no row):
///
/// * `cut_change_set`: one row (`cs-<run id>`, document, version, plan digest, N);
/// * `cut_change_set_affected_row`: one row per unit carrying the change set, read
///   server-side from `public.information_unit` / `unit_version` (id, address, body
///   digest as stored);
/// * `manifest_envelope`: the plan digest and every unit's body digest as planned
///   (format [`MANIFEST_FORMAT`]);
/// * `dot_pair_signature`: the SG_1/SG_2 signatures that authorized the run.
///
/// Refuses (writing nothing) a wrong server, a plan other than the authorized one, a
/// voided run, a change set already recorded, and units that do not match the plan's
/// addresses one to one.
pub fn leg_b_record(
    tx: &mut Transaction<'_>,
    auth: &LiveAuthorization,
    plan: &ValidPlan,
    actor: &str,
) -> Result<LegBReport> {
    check_actor(actor)?;
    check_plan(auth, plan)?;
    check_target(tx, auth)?;
    record_in(tx, auth.run_id(), plan, auth.approvals(), actor)
}

/// leg_b_record's SQL for the rollback-only proof, in the proof's transaction (which can
/// never commit): the same rows for the proof's run id, without pair signatures.
pub fn prove_leg_b_record(
    ro: &mut RollbackOnly<'_>,
    plan: &ValidPlan,
    actor: &str,
) -> Result<LegBReport> {
    check_actor(actor)?;
    let run = ro.run_id().clone();
    record_in(ro.client(), &run, plan, &[], actor)
}

fn record_in(
    tx: &mut Transaction<'_>,
    run: &RunId,
    plan: &ValidPlan,
    approvals: &[VerifiedApproval],
    actor: &str,
) -> Result<LegBReport> {
    let cs = ChangeSetId::for_run(run);
    lock_tables(
        tx,
        &[
            LedgerTable::CutChangeSet,
            LedgerTable::CutChangeSetAffectedRow,
            LedgerTable::ManifestEnvelope,
            LedgerTable::DotPairSignature,
        ],
    )?;
    ensure_not_voided(tx, run)?;
    if let Some(r) = tx
        .query_opt(
            "SELECT id FROM cutter_governance.cut_change_set WHERE change_set_id = $1",
            &[&cs.as_str()],
        )
        .map_err(Error::db(format!("looking up change set {cs}")))?
    {
        return Err(Error::AlreadyRecorded {
            phase: "leg_b_record",
            run_id: run.clone(),
            change_set: cs,
            table: LedgerTable::CutChangeSet,
            id: r.get(0),
        });
    }

    // The units cut_leg_a committed, with their stored body digests.
    let units = tx
        .query(
            "SELECT iu.id, iu.canonical_address, uv.body_sha256 \
             FROM public.information_unit iu \
             LEFT JOIN LATERAL (SELECT v.body_sha256 FROM public.unit_version v \
                                 WHERE v.information_unit_id = iu.id \
                                 ORDER BY v.version_no DESC LIMIT 1) uv ON true \
             WHERE iu.change_set_id = $1 \
             ORDER BY iu.id",
            &[&cs.as_str()],
        )
        .map_err(Error::db(format!("reading the units of change set {cs}")))?;

    let rows = plan.rows();
    let mut planned: HashMap<&str, bool> = rows
        .iter()
        .map(|r| (r.canonical_address.as_str(), false))
        .collect();
    let mut unexpected = Vec::new();
    let mut affected = Vec::with_capacity(units.len());
    let now = now_text(tx)?;
    for u in &units {
        let id: i64 = u.get(0);
        let addr: &str = u.get(1);
        let sha: Option<&str> = u.get(2);
        match planned.get_mut(addr) {
            Some(seen @ false) => *seen = true,
            Some(true) => unexpected.push(format!("{addr} (a second unit, id {id})")),
            None => unexpected.push(addr.to_string()),
        }
        let Some(sha) = sha else {
            unexpected.push(format!("{addr} (unit id {id} has no version)"));
            continue;
        };
        affected.push(NewRow(vec![
            Some(cs.as_str().to_string()),
            Some(id.to_string()),
            Some(addr.to_string()),
            Some(sha.to_string()),
            Some(now.clone()),
        ]));
    }
    let missing: Vec<String> = rows
        .iter()
        .filter(|r| planned.get(r.canonical_address.as_str()) == Some(&false))
        .map(|r| r.canonical_address.clone())
        .collect();
    if !missing.is_empty() || !unexpected.is_empty() {
        return Err(Error::UnitsDoNotMatchPlan {
            change_set: cs,
            plan_rows: rows.len() as u64,
            found: units.len() as u64,
            missing,
            unexpected,
        });
    }
    drop(units);

    let p = plan.plan();
    let digest_hex = plan.digest().to_hex();
    let cs_row = NewRow(vec![
        Some(cs.as_str().to_string()),
        Some(run.as_str().to_string()),
        Some(p.document_id.as_str().to_string()),
        Some(p.source_version_id.as_str().to_string()),
        Some(digest_hex.clone()),
        Some(rows.len().to_string()),
        Some(now.clone()),
    ]);

    let body_digests: Vec<String> = rows.iter().map(|r| body_sha256(&r.body)).collect();
    let units_digest = units_digest(
        rows.iter()
            .zip(&body_digests)
            .map(|(r, d)| (r.canonical_address.as_str(), d.as_str())),
    );
    let manifest = json!({
        "format": MANIFEST_FORMAT,
        "run_id": run.as_str(),
        "change_set_id": cs.as_str(),
        "document_id": p.document_id.as_str(),
        "source_version_id": p.source_version_id.as_str(),
        "plan_digest": digest_hex,
        "unit_count": rows.len() as u64,
        "units_digest": units_digest.to_hex(),
        "recorded_by": actor,
        "units": rows.iter().zip(&body_digests)
            .map(|(r, d)| json!([r.canonical_address, d]))
            .collect::<Vec<_>>(),
    });
    let manifest_row = NewRow(vec![
        Some(cs.as_str().to_string()),
        Some(run.as_str().to_string()),
        Some(digest_hex),
        Some(canonical_json(&manifest)),
        Some(now.clone()),
    ]);
    drop(manifest);

    let signatures: Vec<NewRow> = approvals
        .iter()
        .map(|a| {
            NewRow(vec![
                Some(run.as_str().to_string()),
                Some(a.gate.name().to_string()),
                Some(a.signer.as_str().to_string()),
                Some(a.statement.canonical_text()),
                Some(a.signature.clone()),
                Some(now.clone()),
            ])
        })
        .collect();

    let cs_app = append(tx, LedgerTable::CutChangeSet, &[cs_row])?;
    let aff_app = append(tx, LedgerTable::CutChangeSetAffectedRow, &affected)?;
    let man_app = append(tx, LedgerTable::ManifestEnvelope, &[manifest_row])?;
    let sig_app = append(tx, LedgerTable::DotPairSignature, &signatures)?;

    Ok(LegBReport {
        change_set: cs,
        units: rows.len() as u64,
        change_set_row: cs_app.as_ref().map_or(0, Appended::first_id),
        affected_rows: aff_app
            .as_ref()
            .map_or((0, 0), |a| (a.first_id(), a.last_id())),
        manifest_row: man_app.as_ref().map_or(0, Appended::first_id),
        signature_rows: sig_app.map_or_else(Vec::new, |a| a.ids),
        units_digest,
    })
}
