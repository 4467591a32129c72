//! write_verify: re-read every planned unit as the read-only role, in one repeatable-read
//! snapshot, compare it with the plan (canonical address, title, body digest, status,
//! document) and with the change set recorded by leg_b_record, and record the verdict.
//! A difference fails the phase: nothing is written and the error lists every difference.
//! The body digest compared is computed by the server from the stored body in the same
//! query; the stored `body_sha256` column must agree with it, never stands in for it.

use std::collections::HashMap;
use std::fmt;

use cutter_core::{
    CanonicalHasher, ChangeSetId, LiveAuthorization, PlanFacts, RowFacts, RunId, Sha256Digest,
    VerifyFacts,
};
use cutter_pg::RollbackOnly;
use postgres::{
    fallible_iterator::FallibleIterator, Client, GenericClient, IsolationLevel, Transaction,
};
use serde::Serialize;
use serde_json::json;

use crate::chain::{append, canonical_json, lock_tables, LedgerTable, NewRow};
use crate::common::{
    check_actor, check_plan, check_target, ensure_not_voided, now_text, system_identifier,
};
use crate::error::{Error, Result};

/// How a unit differs from the plan.
#[derive(Clone, PartialEq, Eq, Debug, Serialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum MismatchKind {
    /// The plan has the address; the database has no unit for it.
    Missing,
    /// A unit of the change set whose address is not in the plan.
    Unexpected,
    /// More than one unit of the change set has the address.
    Duplicate,
    /// The title differs.
    Title {
        /// As planned.
        expected: String,
        /// As stored.
        found: String,
    },
    /// The body digest differs (or the unit has no version).
    Body {
        /// SHA-256 of the planned body.
        expected: String,
        /// SHA-256 of the latest version's `body`, computed by the server, if any.
        found: Option<String>,
    },
    /// The latest version's stored `body_sha256` is not the digest of its `body` (the body
    /// or the digest was changed after insert).
    StoredDigest {
        /// `unit_version.body_sha256` as stored.
        stored: String,
        /// SHA-256 of `unit_version.body`, computed by the server.
        computed: String,
    },
    /// The unit is not a draft.
    Status {
        /// The stored `lifecycle_status`.
        found: String,
    },
    /// The unit names another document or version.
    Document {
        /// `document_id/source_version_id` as stored.
        found: String,
    },
    /// The ledger's affected rows (leg_b_record) disagree with the unit.
    Ledger {
        /// What disagrees.
        detail: String,
    },
}

/// One difference, by canonical address.
#[derive(Clone, PartialEq, Eq, Debug, Serialize)]
pub struct Mismatch {
    /// The unit's canonical address.
    pub canonical_address: String,
    /// What differs.
    #[serde(flatten)]
    pub kind: MismatchKind,
}

impl fmt::Display for Mismatch {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let a = &self.canonical_address;
        match &self.kind {
            MismatchKind::Missing => write!(f, "{a}: no unit in the database"),
            MismatchKind::Unexpected => write!(f, "{a}: unit not in the plan"),
            MismatchKind::Duplicate => write!(f, "{a}: more than one unit"),
            MismatchKind::Title { expected, found } => {
                write!(f, "{a}: title {found:?}, planned {expected:?}")
            }
            MismatchKind::Body { expected, found } => write!(
                f,
                "{a}: body sha256 {}, planned {expected}",
                found.as_deref().unwrap_or("(no version)")
            ),
            MismatchKind::StoredDigest { stored, computed } => write!(
                f,
                "{a}: stored body_sha256 {stored} is not the digest of the stored body ({computed})"
            ),
            MismatchKind::Status { found } => write!(f, "{a}: status {found}, expected draft"),
            MismatchKind::Document { found } => write!(f, "{a}: belongs to {found}"),
            MismatchKind::Ledger { detail } => write!(f, "{a}: ledger: {detail}"),
        }
    }
}

/// What write_verify recorded.
#[derive(Clone, PartialEq, Eq, Debug, Serialize)]
pub struct VerifyReport {
    /// The change set verified.
    pub change_set: ChangeSetId,
    /// Units re-read and compared.
    pub facts: VerifyFacts,
    /// `verify_result.id`.
    pub verify_result_row: i64,
    /// Digest over `(address, title, body sha256)` of every unit in plan order, as read
    /// (the digest computed from the stored body).
    pub units_digest: Sha256Digest,
    /// The role the units were read as.
    pub read_as: String,
}

/// Starts the read-only, repeatable-read transaction write_verify reads in. `verify`
/// must be connected as a role that cannot modify units (`cutter_verify`).
fn verify_snapshot(verify: &mut Client) -> Result<Transaction<'_>> {
    verify
        .build_transaction()
        .isolation_level(IsolationLevel::RepeatableRead)
        .read_only(true)
        .start()
        .map_err(Error::db("starting the read-only verify transaction"))
}

/// Re-reads every unit of `auth`'s change set through `verify` (connected as the
/// read-only role, e.g. `cutter_verify`; read in one READ ONLY REPEATABLE READ
/// snapshot), compares canonical address, title, body digest, status (draft) and document
/// with `plan`, and each unit with its `cut_change_set_affected_row`. If everything
/// matches, appends `verify_result` (verdict `match`) inside the phase transaction `tx`.
/// Otherwise returns [`Error::VerifyMismatch`] listing every difference and writes nothing.
/// Refuses a wrong server (on either connection), a plan other than the authorized one, a
/// voided run, a change set not recorded by leg_b_record or already verified, and a
/// verify connection whose role can write units or the ledger.
pub fn write_verify(
    tx: &mut Transaction<'_>,
    verify: &mut Client,
    auth: &LiveAuthorization,
    plan: &dyn PlanFacts,
    actor: &str,
) -> Result<VerifyReport> {
    check_actor(actor)?;
    check_plan(auth, plan)?;
    check_target(tx, auth)?;
    let written = crate::Written::read(tx, plan)?;
    verify_written(tx, verify, auth, &written, actor)
}

/// [`write_verify`] in the process that ran cut_leg_a, with the diff it returned (`None`
/// for a first load) instead of reading the whole document again: see
/// [`crate::Written::cut`]. The units of the change set are still re-read as the
/// read-only role and must be exactly the rows the diff writes, so a unit the diff calls
/// unchanged that carries the change set is a mismatch.
pub fn write_verify_cut(
    tx: &mut Transaction<'_>,
    verify: &mut Client,
    auth: &LiveAuthorization,
    plan: &dyn PlanFacts,
    cut: Option<&cutter_core::PlanDiff>,
    actor: &str,
) -> Result<VerifyReport> {
    check_actor(actor)?;
    check_plan(auth, plan)?;
    check_target(tx, auth)?;
    let written = crate::Written::cut(auth, plan, cut)?;
    verify_written(tx, verify, auth, &written, actor)
}

fn verify_written(
    tx: &mut Transaction<'_>,
    verify: &mut Client,
    auth: &LiveAuthorization,
    written: &crate::Written<'_>,
    actor: &str,
) -> Result<VerifyReport> {
    let run = auth.run_id();
    let cs = ChangeSetId::for_run(run);
    let plan: &dyn PlanFacts = written;
    preconditions(tx, run, &cs, plan)?;

    let mut vtx = verify_snapshot(verify)?;
    let actual = system_identifier(&mut vtx)?;
    if actual != auth.target() {
        return Err(Error::WrongTarget {
            expected: auth.target(),
            actual,
        });
    }
    let role_row = vtx
        .query_one(
            "SELECT current_user::text, \
                    has_table_privilege(current_user, 'public.information_unit', 'INSERT, UPDATE, DELETE') \
                 OR has_table_privilege(current_user, 'public.unit_version', 'INSERT, UPDATE, DELETE') \
                 OR has_table_privilege(current_user, 'cutter_governance.verify_result', 'INSERT')",
            &[],
        )
        .map_err(Error::db("checking the verify connection's role"))?;
    let read_as: String = role_row.get(0);
    if role_row.get::<_, bool>(1) {
        return Err(Error::Invalid(format!(
            "the verify connection is role {read_as}, which can write units or the ledger; connect it as the read-only role cutter_verify"
        )));
    }
    let compared = compare(&mut vtx, &cs, plan, &read_as)?;
    vtx.commit()
        .map_err(Error::db("ending the read-only verify transaction"))?;
    record(
        tx,
        run,
        &cs,
        plan,
        compared,
        read_as,
        "read only, repeatable read",
        actor,
    )
}

/// write_verify's SQL for the rollback-only proof: the same preconditions, comparison
/// and `verify_result` row, but the units are read inside the proof's own transaction
/// (the read-only role cannot see rows that are never committed). Rolled back with the
/// proof.
pub fn prove_write_verify(
    ro: &mut RollbackOnly<'_>,
    plan: &dyn PlanFacts,
    actor: &str,
) -> Result<VerifyReport> {
    check_actor(actor)?;
    let run = ro.run_id().clone();
    let cs = ChangeSetId::for_run(&run);
    let tx = ro.client();
    let written = crate::Written::read(tx, plan)?;
    let plan: &dyn PlanFacts = &written;
    preconditions(tx, &run, &cs, plan)?;
    let read_as: String = tx
        .query_one("SELECT current_user::text", &[])
        .map_err(Error::db("reading the proof's role"))?
        .get(0);
    let compared = compare(tx, &cs, plan, &read_as)?;
    record(
        tx,
        &run,
        &cs,
        plan,
        compared,
        read_as,
        "rollback-only proof transaction",
        actor,
    )
}

/// Locks the chain and checks the run may be verified now.
fn preconditions(
    tx: &mut Transaction<'_>,
    run: &RunId,
    cs: &ChangeSetId,
    plan: &dyn PlanFacts,
) -> Result<()> {
    lock_tables(tx, &[LedgerTable::VerifyResult])?;
    ensure_not_voided(tx, run)?;
    if let Some(r) = tx
        .query_opt(
            "SELECT id FROM cutter_governance.verify_result WHERE change_set_id = $1",
            &[&cs.as_str()],
        )
        .map_err(Error::db(format!("looking up a verify result of {cs}")))?
    {
        return Err(Error::AlreadyRecorded {
            phase: "write_verify",
            run_id: run.clone(),
            change_set: cs.clone(),
            table: LedgerTable::VerifyResult,
            id: r.get(0),
        });
    }
    let recorded = tx
        .query_opt(
            "SELECT plan_digest FROM cutter_governance.cut_change_set WHERE change_set_id = $1",
            &[&cs.as_str()],
        )
        .map_err(Error::db(format!("looking up change set {cs}")))?;
    match recorded {
        None => Err(Error::Invalid(format!(
            "change set {cs} is not recorded in the ledger: leg_b_record must commit before write_verify"
        ))),
        Some(r) if r.get::<_, &str>(0) != plan.digest().to_hex() => Err(Error::Invalid(format!(
            "change set {cs} is recorded for plan sha256:{}, not sha256:{}",
            r.get::<_, &str>(0),
            plan.digest()
        ))),
        Some(_) => Ok(()),
    }
}

/// What the comparison read: per plan row, the unit's (title, body sha256 computed from
/// the body) as read.
struct Compared {
    checked: u64,
    read: Vec<(String, String)>,
}

/// Reads the units of `cs` and their affected rows through `reader` and compares them
/// with `plan`; every difference is an [`Error::VerifyMismatch`].
fn compare<C: GenericClient>(
    reader: &mut C,
    cs: &ChangeSetId,
    plan: &dyn PlanFacts,
    read_as: &str,
) -> Result<Compared> {
    let rows: Vec<RowFacts<'_>> = plan.row_facts().collect();
    let doc = plan.document_id().as_str();
    let ver = plan.source_version_id().as_str();
    let index: HashMap<&str, usize> = rows
        .iter()
        .enumerate()
        .map(|(i, r)| (r.canonical_address, i))
        .collect();
    // found[i] = (unit id, title, body sha256 computed from the body) as read.
    let mut found: Vec<Option<(i64, String, String)>> = vec![None; rows.len()];
    let mut mismatches = Vec::new();
    let mut checked = 0u64;
    let what = format!("re-reading the units of {cs} as {read_as}");
    {
        let mut it = reader
            .query_raw(
                "SELECT iu.id, iu.canonical_address, iu.title, iu.lifecycle_status, \
                        iu.document_id, iu.source_version_id, \
                        encode(sha256(convert_to(uv.body, 'UTF8')), 'hex'), uv.body_sha256 \
                 FROM public.information_unit iu \
                 LEFT JOIN LATERAL (SELECT v.body, v.body_sha256 FROM public.unit_version v \
                                     WHERE v.information_unit_id = iu.id \
                                     ORDER BY v.version_no DESC LIMIT 1) uv ON true \
                 WHERE iu.change_set_id = $1 \
                 UNION ALL \
                 SELECT iu.id, iu.canonical_address, CASE WHEN v.repeal THEN '' ELSE v.title END, \
                        v.lifecycle_status, iu.document_id, v.source_version_id, \
                        encode(sha256(convert_to(v.body, 'UTF8')), 'hex'), v.body_sha256 \
                 FROM public.unit_version v JOIN public.information_unit iu ON iu.id = v.information_unit_id \
                 WHERE v.change_set_id = $1",
                [cs.as_str()],
            )
            .map_err(Error::db(what.clone()))?;
        while let Some(u) = it.next().map_err(Error::db(what.clone()))? {
            checked += 1;
            let id: i64 = u.get(0);
            let addr: &str = u.get(1);
            let title: &str = u.get(2);
            let status: &str = u.get(3);
            let (udoc, uver): (&str, &str) = (u.get(4), u.get(5));
            let sha: Option<&str> = u.get(6);
            let stored: Option<&str> = u.get(7);
            let mis = |kind| Mismatch {
                canonical_address: addr.to_string(),
                kind,
            };
            let Some(&i) = index.get(addr) else {
                mismatches.push(mis(MismatchKind::Unexpected));
                continue;
            };
            if found[i].is_some() {
                mismatches.push(mis(MismatchKind::Duplicate));
                continue;
            }
            let r = &rows[i];
            if r.title != title {
                mismatches.push(mis(MismatchKind::Title {
                    expected: r.title.to_string(),
                    found: title.to_string(),
                }));
            }
            let expected = r.body_sha256.to_hex();
            if sha != Some(expected.as_str()) {
                mismatches.push(mis(MismatchKind::Body {
                    expected,
                    found: sha.map(str::to_string),
                }));
            }
            if let (Some(stored), Some(computed)) = (stored, sha) {
                if stored != computed {
                    mismatches.push(mis(MismatchKind::StoredDigest {
                        stored: stored.to_string(),
                        computed: computed.to_string(),
                    }));
                }
            }
            if status != "draft" {
                mismatches.push(mis(MismatchKind::Status {
                    found: status.to_string(),
                }));
            }
            if udoc != doc || uver != ver {
                mismatches.push(mis(MismatchKind::Document {
                    found: format!("{udoc}/{uver}"),
                }));
            }
            found[i] = Some((id, title.to_string(), sha.unwrap_or_default().to_string()));
        }
    }
    for (r, f) in rows.iter().zip(&found) {
        if f.is_none() {
            mismatches.push(Mismatch {
                canonical_address: r.canonical_address.to_string(),
                kind: MismatchKind::Missing,
            });
        }
    }

    // The ledger's affected rows, in the same snapshot.
    let what = format!("re-reading the affected rows of {cs} as {read_as}");
    let mut ledger_seen = vec![false; rows.len()];
    {
        let mut it = reader
            .query_raw(
                "SELECT information_unit_id, canonical_address, body_sha256 \
                 FROM cutter_governance.cut_change_set_affected_row WHERE change_set_id = $1",
                [cs.as_str()],
            )
            .map_err(Error::db(what.clone()))?;
        while let Some(a) = it.next().map_err(Error::db(what.clone()))? {
            let id: i64 = a.get(0);
            let addr: &str = a.get(1);
            let sha: &str = a.get(2);
            let ledger = |detail: String| Mismatch {
                canonical_address: addr.to_string(),
                kind: MismatchKind::Ledger { detail },
            };
            match index.get(addr) {
                None => {
                    mismatches.push(ledger("affected row for an address not in the plan".into()))
                }
                Some(&i) => {
                    if std::mem::replace(&mut ledger_seen[i], true) {
                        mismatches.push(ledger("more than one affected row".into()));
                    }
                    if let Some((uid, _, usha)) = &found[i] {
                        if *uid != id || usha != sha {
                            mismatches.push(ledger(format!(
                                "affected row names unit id {id} body {sha}, the database has unit id {uid} body {usha}"
                            )));
                        }
                    }
                }
            }
        }
    }
    for (r, seen) in rows.iter().zip(&ledger_seen) {
        if !seen {
            mismatches.push(Mismatch {
                canonical_address: r.canonical_address.to_string(),
                kind: MismatchKind::Ledger {
                    detail: "no affected row recorded".into(),
                },
            });
        }
    }
    if !mismatches.is_empty() {
        return Err(Error::VerifyMismatch {
            run_id: RunId::new(cs.as_str().strip_prefix("cs-").unwrap_or_default())
                .map_err(|e| Error::Invalid(e.to_string()))?,
            checked,
            mismatches,
        });
    }
    let read = found
        .into_iter()
        .map(|f| f.map(|(_, t, s)| (t, s)).unwrap_or_default())
        .collect();
    Ok(Compared { checked, read })
}

/// Appends the `verify_result` row of a comparison that matched.
#[allow(clippy::too_many_arguments)]
fn record(
    tx: &mut Transaction<'_>,
    run: &RunId,
    cs: &ChangeSetId,
    plan: &dyn PlanFacts,
    compared: Compared,
    read_as: String,
    isolation: &str,
    actor: &str,
) -> Result<VerifyReport> {
    let rows: Vec<RowFacts<'_>> = plan.row_facts().collect();
    let mut h = CanonicalHasher::new("cutter-verify-units-v1");
    h.u64_field(rows.len() as u64);
    for (r, (title, sha)) in rows.iter().zip(&compared.read) {
        h.field(r.canonical_address.as_bytes())
            .field(title.as_bytes())
            .field(sha.as_bytes());
    }
    let units_digest = h.finish();
    let checked = compared.checked;
    let facts = VerifyFacts {
        checked,
        matched: checked,
        mismatched: 0,
    };
    let now = now_text(tx)?;
    let details = json!({
        "format": "cutter-verify/1",
        "plan_digest": plan.digest().to_hex(),
        "units_digest": units_digest.to_hex(),
        "read_as": read_as,
        "isolation": isolation,
        "actor": actor,
    });
    let row = NewRow(vec![
        Some(run.as_str().to_string()),
        Some(cs.as_str().to_string()),
        Some(checked.to_string()),
        Some(checked.to_string()),
        Some("0".to_string()),
        Some("match".to_string()),
        Some(canonical_json(&details)),
        Some(now),
    ]);
    let app = append(tx, LedgerTable::VerifyResult, &[row])?;
    Ok(VerifyReport {
        change_set: cs.clone(),
        facts,
        verify_result_row: app.map_or(0, |a| a.first_id()),
        units_digest,
        read_as,
    })
}
