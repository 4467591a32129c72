//! The ledger's history (`cutter ledger log`, the counterpart of `sqitch log`): one entry
//! per change set, approval, verification result and review decision, newest first.
//! Reads only; works as `cutter_exec` or `cutter_verify`. Per-unit rows
//! (`cut_change_set_affected_row`) and leg B manifests are summarized by their change
//! set, not listed.

use postgres::GenericClient;
use serde::Serialize;

use cutter_core::RunId;

use crate::error::{Error, Result};

/// One entry of the ledger's history.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct LogEntry {
    /// When the row was written, UTC (`2026-01-31T12:00:00.123Z`).
    pub at: String,
    /// `change_set`, `approval`, `verify` or `decision`.
    pub kind: String,
    /// The ledger table.
    pub table: String,
    /// The row's id in it.
    pub id: i64,
    /// The run.
    pub run_id: String,
    /// The change set, where the row names one.
    pub change_set_id: Option<String>,
    /// What the row records, in one line.
    pub summary: String,
    /// Who wrote it (review decisions) or signed it (approvals: the key fingerprint).
    pub actor: Option<String>,
}

const LOG_SQL: &str = "\
WITH entries AS (
  SELECT created_at, 'change_set' AS kind, 'cutter_governance.cut_change_set' AS tbl, id, run_id,
         change_set_id,
         format('change set of %s units, document %s version %s, plan %s',
                unit_count, document_id, source_version_id, left(plan_digest, 12)) AS summary,
         NULL::text AS actor
    FROM cutter_governance.cut_change_set
  UNION ALL
  SELECT created_at, 'approval', 'cutter_governance.dot_pair_signature', id, run_id, NULL,
         format('%s signed by %s', gate, signer_fpr), signer_fpr
    FROM cutter_governance.dot_pair_signature
  UNION ALL
  SELECT created_at, 'verify', 'cutter_governance.verify_result', id, run_id, change_set_id,
         format('verify %s: %s of %s matched, %s mismatched', verdict, matched, checked, mismatched),
         NULL
    FROM cutter_governance.verify_result
  UNION ALL
  SELECT created_at, 'decision', 'cutter_governance.review_decision', id, run_id, change_set_id,
         decision || coalesce(': ' || nullif(payload->>'reason', ''), ''), actor
    FROM cutter_governance.review_decision
)
SELECT to_char(created_at AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS.MS\"Z\"'),
       kind, tbl, id, run_id, change_set_id, summary, actor
  FROM entries
 WHERE $1::text IS NULL OR run_id = $1
 ORDER BY created_at DESC, tbl DESC, id DESC
 LIMIT $2";

/// The newest `limit` entries of the ledger (of `run` only, if given), newest first.
pub fn ledger_log<C: GenericClient>(
    c: &mut C,
    run: Option<&RunId>,
    limit: u64,
) -> Result<Vec<LogEntry>> {
    let run = run.map(|r| r.as_str());
    let limit = i64::try_from(limit).unwrap_or(i64::MAX);
    let rows = c
        .query(LOG_SQL, &[&run, &limit])
        .map_err(Error::db("reading the ledger's history"))?;
    Ok(rows
        .iter()
        .map(|r| LogEntry {
            at: r.get(0),
            kind: r.get(1),
            table: r.get(2),
            id: r.get(3),
            run_id: r.get(4),
            change_set_id: r.get(5),
            summary: r.get(6),
            actor: r.get(7),
        })
        .collect())
}
