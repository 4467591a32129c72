//! Reading what an amendment compares a plan with: the current text of a document's
//! units (the reference view `public.unit_current_text`, V6) and the addresses a plan
//! cannot write (held by another document, or drafts of a run neither enacted nor
//! compensated). Only reads.

use cutter_core::{diff_plan, Conflict, LiveUnit, PlanDiff, PlanFacts, Sha256Digest};
use postgres::GenericClient;

use crate::error::{PgContext, Result};

/// The current text of every enacted unit of `document_id`, by unit id (repealed ones
/// included, flagged).
pub fn live_units(c: &mut impl GenericClient, document_id: &str) -> Result<Vec<LiveUnit>> {
    let what =
        format!("reading the current text of document {document_id} (public.unit_current_text)");
    c.query(
        "SELECT t.information_unit_id, t.canonical_address, t.title, t.body_sha256, t.version_no, t.repealed \
           FROM public.unit_current_text t WHERE t.document_id = $1 ORDER BY t.information_unit_id",
        &[&document_id],
    )
    .doing(&what)?
    .iter()
    .map(|r| {
        let sha: &str = r.get(3);
        Ok(LiveUnit {
            unit_id: r.get(0),
            canonical_address: r.get(1),
            title: r.get(2),
            body_sha256: Sha256Digest::from_hex(sha).map_err(|e| crate::Error::Db {
                doing: what.clone(),
                server: Box::new(crate::ServerError {
                    message: e.to_string(),
                    ..crate::ServerError::default()
                }),
                next: "a stored body digest is malformed; run `cutter ledger verify` and ask the DBA".into(),
            })?,
            version_no: r.get(4),
            repealed: r.get(5),
        })
    })
    .collect()
}

/// What keeps `addresses` of `document_id` from being written: live units of another
/// document at those addresses, and units of the document that are drafts or have a
/// draft version (a run neither enacted nor compensated). In address order.
pub fn conflicts(
    c: &mut impl GenericClient,
    document_id: &str,
    addresses: &[&str],
) -> Result<Vec<Conflict>> {
    let rows = c
        .query(
            "SELECT iu.id, iu.canonical_address, iu.document_id, \
                    CASE WHEN iu.lifecycle_status = 'draft' THEN iu.change_set_id \
                         ELSE (SELECT d.change_set_id FROM public.unit_version d \
                                WHERE d.information_unit_id = iu.id AND d.lifecycle_status = 'draft' \
                                ORDER BY d.version_no DESC LIMIT 1) END, \
                    iu.document_id = $1 \
               FROM public.information_unit iu \
              WHERE iu.lifecycle_status <> 'withdrawn' \
                AND ((iu.canonical_address = ANY ($2) AND iu.document_id <> $1) \
                     OR (iu.document_id = $1 AND (iu.lifecycle_status = 'draft' \
                         OR EXISTS (SELECT 1 FROM public.unit_version d \
                                     WHERE d.information_unit_id = iu.id AND d.lifecycle_status = 'draft')))) \
              ORDER BY iu.canonical_address",
            &[&document_id, &addresses],
        )
        .doing(&format!(
            "looking for addresses of document {document_id} held by other documents or pending drafts"
        ))?;
    Ok(rows
        .iter()
        .map(|r| {
            let own: bool = r.get(4);
            if own {
                Conflict::Pending {
                    canonical_address: r.get(1),
                    unit_id: r.get(0),
                    change_set: r.get(3),
                }
            } else {
                Conflict::OtherDocument {
                    canonical_address: r.get(1),
                    unit_id: r.get(0),
                    document_id: r.get(2),
                }
            }
        })
        .collect())
}

/// The plan compared with its live document, and what keeps it from being written.
/// Call it inside one snapshot ([`crate::Target::read_only`], or a phase's transaction)
/// so that both are read at the same instant.
pub fn plan_diff(
    c: &mut impl GenericClient,
    plan: &dyn PlanFacts,
) -> Result<(PlanDiff, Vec<Conflict>)> {
    let doc = plan.document_id().as_str();
    let live = live_units(c, doc)?;
    let conflicts = {
        let addresses: Vec<&str> = plan.row_facts().map(|r| r.canonical_address).collect();
        conflicts(c, doc, &addresses)?
    };
    Ok((diff_plan(plan, live), conflicts))
}

/// The text a new version of an amendment run replaced, and the new one.
#[derive(Clone, PartialEq, Eq, Debug)]
pub struct ChangedText {
    /// The unit's address.
    pub canonical_address: String,
    /// The previously enacted body.
    pub old_body: String,
    /// The new body (empty for a repeal).
    pub new_body: String,
    /// Whether the new version is a repeal.
    pub repeal: bool,
}

/// The new versions change set `change_set` wrote over enacted text (at most `limit`,
/// by address), each with the body it follows — for the run report's side by side.
pub fn changed_texts(
    c: &mut impl GenericClient,
    change_set: &str,
    limit: i64,
) -> Result<Vec<ChangedText>> {
    Ok(c.query(
        "SELECT iu.canonical_address, p.body, v.body, coalesce(v.repeal, false) \
               FROM public.unit_version v \
               JOIN public.information_unit iu ON iu.id = v.information_unit_id \
               JOIN LATERAL (SELECT q.body FROM public.unit_version q \
                              WHERE q.information_unit_id = v.information_unit_id \
                                AND q.version_no < v.version_no AND q.lifecycle_status = 'enacted' \
                              ORDER BY q.version_no DESC LIMIT 1) p ON true \
              WHERE v.change_set_id = $1 \
              ORDER BY iu.canonical_address LIMIT $2",
        &[&change_set, &limit],
    )
    .doing(&format!(
        "reading the texts change set {change_set} replaced"
    ))?
    .iter()
    .map(|r| ChangedText {
        canonical_address: r.get(0),
        old_body: r.get(1),
        new_body: r.get(2),
        repeal: r.get(3),
    })
    .collect())
}
