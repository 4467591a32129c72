//! leg_b_record: the change set, one affected row per unit, the manifest envelope and the
//! pair signatures, for any number of units, in the phase's one transaction. Set-based:
//! a fixed number of statements whatever N is.

use std::collections::HashMap;

use cutter_core::{
    CanonicalHasher, ChangeSetId, LiveAuthorization, PlanFacts, RowFacts, RunId, Sha256Digest,
    VerifiedApproval,
};
use cutter_pg::RollbackOnly;
use postgres::{fallible_iterator::FallibleIterator, Transaction};
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

/// Affected rows appended per statement: bounds memory for any number of units.
const AFFECTED_CHUNK: usize = 10_000;

/// The manifest's canonical JSON text: `fields` (with `"units": null`) in the canonical
/// form of the ledger, with the units array — `[[address, body digest], …]` in plan
/// order — written straight into the text instead of being built as a value tree.
fn manifest_text<'a>(
    fields: serde_json::Value,
    units: impl Iterator<Item = (&'a str, &'a str)>,
) -> String {
    let mut array = String::from("[");
    for (i, (a, d)) in units.enumerate() {
        if i > 0 {
            array.push(',');
        }
        array.push('[');
        array.push_str(&serde_json::Value::from(a).to_string());
        array.push(',');
        array.push_str(&serde_json::Value::from(d).to_string());
        array.push(']');
    }
    array.push(']');
    // Keys are written sorted and strings escaped (a quote inside a string is `\"`), so
    // `"units":null` occurs exactly once: as the placeholder.
    canonical_json(&fields).replacen("\"units\":null", &format!("\"units\":{array}"), 1)
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
///
/// The SG_1/SG_2 signatures that authorized the run are recorded before it writes, by
/// [`record_run_approvals`].
///
/// Refuses (writing nothing) a wrong server, a plan other than the authorized one, a
/// voided run, a change set already recorded, and units that do not match the plan's
/// addresses one to one.
pub fn leg_b_record(
    tx: &mut Transaction<'_>,
    auth: &LiveAuthorization,
    plan: &dyn PlanFacts,
    actor: &str,
) -> Result<LegBReport> {
    check_actor(actor)?;
    check_plan(auth, plan)?;
    check_target(tx, auth)?;
    let written = crate::Written::read(tx, plan)?;
    record_in(tx, auth.run_id(), &written, auth.approvals(), actor)
}

/// [`leg_b_record`] right after cut_leg_a in the same process, with the diff it returned
/// (`None` for a first load) instead of reading the whole document again: see
/// [`crate::Written::cut`].
pub fn leg_b_record_cut(
    tx: &mut Transaction<'_>,
    auth: &LiveAuthorization,
    plan: &dyn PlanFacts,
    cut: Option<&cutter_core::PlanDiff>,
    actor: &str,
) -> Result<LegBReport> {
    check_actor(actor)?;
    check_plan(auth, plan)?;
    check_target(tx, auth)?;
    let written = crate::Written::cut(auth, plan, cut)?;
    record_in(tx, auth.run_id(), &written, auth.approvals(), actor)
}

/// The ids of the pair signatures recorded for `run`, in id order.
fn recorded_signature_ids<C: postgres::GenericClient>(c: &mut C, run: &RunId) -> Result<Vec<i64>> {
    Ok(c.query(
        "SELECT id FROM cutter_governance.dot_pair_signature WHERE run_id = $1 ORDER BY id",
        &[&run.as_str()],
    )
    .map_err(Error::db(format!(
        "reading the pair signatures of run {run}"
    )))?
    .iter()
    .map(|r| r.get(0))
    .collect())
}

/// `dot_pair_signature` rows for `run`'s `approvals`, recorded at `now`.
fn signature_rows(run: &RunId, approvals: &[VerifiedApproval], now: &str) -> Vec<NewRow> {
    approvals
        .iter()
        .map(|a| {
            NewRow(vec![
                Some(run.as_str().to_string()),
                Some(a.gate.name().to_string()),
                Some(a.signer.to_string()),
                Some(a.statement.canonical_text()),
                Some(a.signature.clone()),
                Some(now.to_string()),
            ])
        })
        .collect()
}

/// Records the SG_1/SG_2 approvals the gate accepted for `auth`'s run in
/// `dot_pair_signature`, in a transaction of its own, before the run writes anything:
/// the database (reference V5) creates and enacts units, and takes the run's change set,
/// manifest and verify result, only for a run whose two live-run approvals it records.
/// Idempotent: the same approvals already recorded return their ids; other approvals
/// recorded for the run are refused. A rehearsal records nothing. Returns the row ids.
pub fn record_run_approvals<C: postgres::GenericClient>(
    client: &mut C,
    auth: &LiveAuthorization,
) -> Result<Vec<i64>> {
    if auth.scope() == cutter_core::AuthorizationScope::Rehearsal {
        return Ok(Vec::new());
    }
    let run = auth.run_id();
    let mut tx = client.transaction().map_err(Error::db(format!(
        "starting to record the approvals of run {run}"
    )))?;
    check_target(&mut tx, auth)?;
    lock_tables(&mut tx, &[LedgerTable::DotPairSignature])?;
    ensure_not_voided(&mut tx, run)?;
    let recorded = tx
        .query(
            "SELECT id, gate, signer_fpr, statement, signature \
               FROM cutter_governance.dot_pair_signature WHERE run_id = $1 ORDER BY gate",
            &[&run.as_str()],
        )
        .map_err(Error::db(format!(
            "reading the pair signatures of run {run}"
        )))?;
    if !recorded.is_empty() {
        let mut want: Vec<(String, String, String, String)> = auth
            .approvals()
            .iter()
            .map(|a| {
                (
                    a.gate.name().to_string(),
                    a.signer.to_string(),
                    a.statement.canonical_text(),
                    a.signature.clone(),
                )
            })
            .collect();
        want.sort();
        let have: Vec<(String, String, String, String)> = recorded
            .iter()
            .map(|r| (r.get(1), r.get(2), r.get(3), r.get(4)))
            .collect();
        if have != want {
            return Err(Error::AlreadyRecorded {
                phase: "the gate",
                run_id: run.clone(),
                change_set: ChangeSetId::for_run(run),
                table: LedgerTable::DotPairSignature,
                id: recorded[0].get(0),
            });
        }
        return Ok(recorded.iter().map(|r| r.get(0)).collect());
    }
    let now = now_text(&mut tx)?;
    let rows = signature_rows(run, auth.approvals(), &now);
    let app = append(&mut tx, LedgerTable::DotPairSignature, &rows)?;
    tx.commit()
        .map_err(Error::db(format!("committing the approvals of run {run}")))?;
    Ok(app.map_or_else(Vec::new, |a| a.ids))
}

/// Two approvals as the rollback-only proof records them in place of real ones (inside
/// its transaction, which can never commit): SG_1 and SG_2 naming two registered
/// approvers allowed `purpose`, this database, `run`, `plan_digest` (and `change_set`),
/// with a signature that is not one. The database's gate (reference V5) checks
/// everything of a recorded approval but its OpenPGP signature, so the proof's writes go
/// through the same gate a run's do; committed, such rows would fail `ledger verify`.
/// Refused when the registry has fewer than two such approvers.
fn proof_approvals(
    tx: &mut Transaction<'_>,
    purpose: cutter_core::Purpose,
    run: &RunId,
    plan_digest: Sha256Digest,
    change_set: Option<&ChangeSetId>,
) -> Result<Vec<VerifiedApproval>> {
    let registry = crate::registry::load_registry(tx)?;
    let signers: Vec<_> = registry
        .approver_set(purpose)
        .0
        .into_iter()
        .take(2)
        .collect();
    if signers.len() < 2 {
        return Err(Error::Invalid(format!(
            "the rollback-only proof needs two registered {purpose} approvers; the registry has {} \
             (register them with `cutter approvers add`)",
            signers.len()
        )));
    }
    let database = cutter_pg::surface::target_database(tx)
        .map_err(|e| Error::Invalid(format!("reading the database identity: {e}")))?;
    let now: i64 = tx
        .query_one("SELECT extract(epoch FROM now())::bigint", &[])
        .map_err(Error::db("reading the time"))?
        .get(0);
    Ok([
        cutter_core::ApprovalGate::Sg1,
        cutter_core::ApprovalGate::Sg2,
    ]
    .into_iter()
    .zip(signers)
    .map(|(gate, signer)| VerifiedApproval {
        gate,
        signer,
        statement: cutter_core::ApprovalStatement {
            purpose,
            run_id: run.clone(),
            plan_digest,
            change_set: change_set.cloned(),
            findings_digest: None,
            diff_digest: None,
            target: database.clone(),
            gate,
            not_before: cutter_core::UnixTime(now - 60),
            expires_at: cutter_core::UnixTime(now + 3600),
        },
        signature: "rollback-only proof: not a signature; never committed".into(),
    })
    .collect())
}

/// Records, in the rollback-only proof's transaction, two live-run approvals for the
/// proof's run (see `proof_approvals`): what a run records before it writes.
pub fn prove_authorize(ro: &mut RollbackOnly<'_>, plan_digest: Sha256Digest) -> Result<Vec<i64>> {
    let run = ro.run_id().clone();
    prove_authorize_run(ro, &run, plan_digest)
}

/// [`prove_authorize`] for another run of the proof (one whose writes it needs as
/// foreign to the proof's run).
pub fn prove_authorize_run(
    ro: &mut RollbackOnly<'_>,
    run: &RunId,
    plan_digest: Sha256Digest,
) -> Result<Vec<i64>> {
    let run = run.clone();
    let tx = ro.client();
    let approvals = proof_approvals(tx, cutter_core::Purpose::LiveRun, &run, plan_digest, None)?;
    lock_tables(tx, &[LedgerTable::DotPairSignature])?;
    let stamp = now_text(tx)?;
    let rows = signature_rows(&run, &approvals, &stamp);
    let app = append(tx, LedgerTable::DotPairSignature, &rows)?;
    Ok(app.map_or_else(Vec::new, |a| a.ids))
}

/// Records, in the rollback-only proof's transaction, the hard-delete approval of
/// `change_set` by `revert_run` (see `proof_approvals`): what compensation A records
/// before a hard delete. Returns the decision's id.
pub fn prove_hard_delete_authorize(
    ro: &mut RollbackOnly<'_>,
    change_set: &ChangeSetId,
    revert_run: &RunId,
    plan_digest: Sha256Digest,
) -> Result<i64> {
    let tx = ro.client();
    let approvals = proof_approvals(
        tx,
        cutter_core::Purpose::HardDelete,
        revert_run,
        plan_digest,
        Some(change_set),
    )?;
    crate::decisions::record_hard_delete_approval(
        tx,
        change_set,
        revert_run,
        &approvals,
        "cutter-proof",
    )
}

/// leg_b_record's SQL for the rollback-only proof, in the proof's transaction (which can
/// never commit): the same rows for the proof's run id, without pair signatures.
pub fn prove_leg_b_record(
    ro: &mut RollbackOnly<'_>,
    plan: &dyn PlanFacts,
    actor: &str,
) -> Result<LegBReport> {
    check_actor(actor)?;
    let run = ro.run_id().clone();
    let written = crate::Written::read(ro.client(), plan)?;
    record_in(ro.client(), &run, &written, &[], actor)
}

fn record_in(
    tx: &mut Transaction<'_>,
    run: &RunId,
    written: &crate::Written<'_>,
    approvals: &[VerifiedApproval],
    actor: &str,
) -> Result<LegBReport> {
    let plan: &dyn PlanFacts = written;
    let cs = ChangeSetId::for_run(run);
    lock_tables(
        tx,
        &[
            LedgerTable::CutChangeSet,
            LedgerTable::CutChangeSetAffectedRow,
            LedgerTable::ManifestEnvelope,
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

    // The units cut_leg_a committed, with their stored body digests, matched to the
    // plan rows by address while streaming: per plan row only (unit id, digest), so
    // memory stays small whatever N is.
    let rows: Vec<RowFacts<'_>> = plan.row_facts().collect();
    let index: HashMap<&str, usize> = rows
        .iter()
        .enumerate()
        .map(|(i, r)| (r.canonical_address, i))
        .collect();
    let mut found: Vec<Option<(i64, String)>> = vec![None; rows.len()];
    // Plan row indices in unit id order: the order the affected rows are chained in.
    let mut order: Vec<usize> = Vec::with_capacity(rows.len());
    let mut unexpected = Vec::new();
    let mut units_found = 0u64;
    {
        let what = format!("reading the units of change set {cs}");
        let mut it = tx
            .query_raw(
                "SELECT iu.id, iu.canonical_address, uv.body_sha256 \
                 FROM public.information_unit iu \
                 LEFT JOIN LATERAL (SELECT v.body_sha256 FROM public.unit_version v \
                                     WHERE v.information_unit_id = iu.id \
                                     ORDER BY v.version_no DESC LIMIT 1) uv ON true \
                 WHERE iu.change_set_id = $1 \
                 UNION ALL \
                 SELECT iu.id, iu.canonical_address, v.body_sha256 \
                 FROM public.unit_version v JOIN public.information_unit iu ON iu.id = v.information_unit_id \
                 WHERE v.change_set_id = $1 \
                 ORDER BY 1",
                [cs.as_str()],
            )
            .map_err(Error::db(what.clone()))?;
        while let Some(u) = it.next().map_err(Error::db(what.clone()))? {
            units_found += 1;
            let id: i64 = u.get(0);
            let addr: &str = u.get(1);
            let sha: Option<&str> = u.get(2);
            match index.get(addr) {
                Some(&i) if found[i].is_none() => {
                    found[i] = Some((id, sha.unwrap_or_default().to_string()));
                    order.push(i);
                }
                Some(_) => unexpected.push(format!("{addr} (a second unit, id {id})")),
                None => unexpected.push(addr.to_string()),
            }
            if sha.is_none() {
                unexpected.push(format!("{addr} (unit id {id} has no version)"));
            }
        }
    }
    let missing: Vec<String> = rows
        .iter()
        .zip(&found)
        .filter(|(_, f)| f.is_none())
        .map(|(r, _)| r.canonical_address.to_string())
        .collect();
    if !missing.is_empty() || !unexpected.is_empty() {
        return Err(Error::UnitsDoNotMatchPlan {
            change_set: cs,
            plan_rows: rows.len() as u64,
            found: units_found,
            missing,
            unexpected,
        });
    }
    drop(index);

    let now = now_text(tx)?;
    let digest_hex = plan.digest().to_hex();
    let cs_row = NewRow(vec![
        Some(cs.as_str().to_string()),
        Some(run.as_str().to_string()),
        Some(plan.document_id().as_str().to_string()),
        Some(plan.source_version_id().as_str().to_string()),
        Some(digest_hex.clone()),
        Some(rows.len().to_string()),
        Some(now.clone()),
    ]);
    let cs_app = append(tx, LedgerTable::CutChangeSet, &[cs_row])?;
    // The affected rows, appended in chunks (one chain: each chunk continues the last).
    let mut affected_ids = (0, 0);
    for chunk in order.chunks(AFFECTED_CHUNK) {
        let batch: Vec<NewRow> = chunk
            .iter()
            .filter_map(|&i| {
                let (id, sha) = found[i].as_ref()?;
                Some(NewRow(vec![
                    Some(cs.as_str().to_string()),
                    Some(id.to_string()),
                    Some(rows[i].canonical_address.to_string()),
                    Some(sha.clone()),
                    Some(now.clone()),
                ]))
            })
            .collect();
        if let Some(a) = append(tx, LedgerTable::CutChangeSetAffectedRow, &batch)? {
            if affected_ids.0 == 0 {
                affected_ids.0 = a.first_id();
            }
            affected_ids.1 = a.last_id();
        }
    }
    drop(found);
    drop(order);

    let body_digests: Vec<String> = rows.iter().map(|r| r.body_sha256.to_hex()).collect();
    let units_digest = units_digest(
        rows.iter()
            .zip(&body_digests)
            .map(|(r, d)| (r.canonical_address, d.as_str())),
    );
    let mut fields = json!({
        "format": MANIFEST_FORMAT,
        "run_id": run.as_str(),
        "change_set_id": cs.as_str(),
        "document_id": plan.document_id().as_str(),
        "source_version_id": plan.source_version_id().as_str(),
        "plan_digest": digest_hex,
        "unit_count": rows.len() as u64,
        "units_digest": units_digest.to_hex(),
        "recorded_by": actor,
        "units": null,
    });
    // An amendment records its diff: each class's count and digest.
    if let Some(d) = written.manifest_diff() {
        fields["diff"] = d;
    }
    let manifest = manifest_text(
        fields,
        rows.iter()
            .zip(&body_digests)
            .map(|(r, d)| (r.canonical_address, d.as_str())),
    );
    drop(body_digests);
    let manifest_row = NewRow(vec![
        Some(cs.as_str().to_string()),
        Some(run.as_str().to_string()),
        Some(digest_hex),
        Some(manifest),
        Some(now.clone()),
    ]);

    let man_app = append(tx, LedgerTable::ManifestEnvelope, &[manifest_row])?;
    // The run's approvals were recorded before it wrote (record_run_approvals): the
    // database refuses the rows above without them.
    let signature_rows = if approvals.is_empty() {
        Vec::new()
    } else {
        recorded_signature_ids(tx, run)?
    };

    Ok(LegBReport {
        change_set: cs,
        units: rows.len() as u64,
        change_set_row: cs_app.as_ref().map_or(0, Appended::first_id),
        affected_rows: affected_ids,
        manifest_row: man_app.as_ref().map_or(0, Appended::first_id),
        signature_rows,
        units_digest,
    })
}
