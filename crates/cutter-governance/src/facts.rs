//! What the database says a run committed, for `recover` and `report`: the run's units
//! by status, its ledger rows, its claim, void, revert and escalations. Read-only.

use std::collections::BTreeMap;

use cutter_core::{ChangeSetId, RunId};
use postgres::GenericClient;
use serde::Serialize;

use crate::common::voided_by;
use crate::decisions::{claim_of, is_reverted, Claim};
use crate::error::{Error, Result};

/// The database's facts about one run.
#[derive(Clone, PartialEq, Eq, Debug, Serialize)]
pub struct DbRunFacts {
    /// The run.
    pub run_id: RunId,
    /// Its change set.
    pub change_set: ChangeSetId,
    /// Units carrying the change set, by `lifecycle_status` (cut_leg_a committed if any).
    pub units_by_status: BTreeMap<String, u64>,
    /// Versions carrying the change set (an amendment's new wordings and repeals of
    /// units of other change sets), by `lifecycle_status`.
    pub versions_by_status: BTreeMap<String, u64>,
    /// `cut_change_set.id`, if leg_b_record committed.
    pub change_set_row: Option<i64>,
    /// Affected rows recorded for the change set.
    pub affected_rows: u64,
    /// `manifest_envelope.id`, if recorded.
    pub manifest_row: Option<i64>,
    /// Pair signatures recorded for the run.
    pub signatures: u64,
    /// `verify_result` (id, verdict), if write_verify committed.
    pub verify_result: Option<(i64, String)>,
    /// The run's idempotency claim.
    pub claim: Option<Claim>,
    /// The `void` decision, if the run was voided.
    pub voided: Option<i64>,
    /// The `reverted` decision (compensation B), if recorded.
    pub reverted: Option<i64>,
    /// SG_3 escalations recorded for the run.
    pub sg3_escalations: Vec<i64>,
}

impl DbRunFacts {
    /// Units of the change set that are not withdrawn.
    pub fn live_units(&self) -> u64 {
        self.units_by_status
            .iter()
            .filter(|(s, _)| s.as_str() != "withdrawn")
            .map(|(_, n)| n)
            .sum()
    }
    /// Whether cut_leg_a's units or amended versions are present (in any status).
    pub fn cut_committed(&self) -> bool {
        self.units_by_status
            .values()
            .chain(self.versions_by_status.values())
            .any(|&n| n > 0)
    }
    /// Whether every unit and amended version of the change set is enacted (and there is
    /// at least one): lifecycle_enact committed.
    pub fn enacted(&self) -> bool {
        let all = || self.units_by_status.iter().chain(&self.versions_by_status);
        all().any(|(_, &n)| n > 0) && all().all(|(s, &n)| n == 0 || s.as_str() == "enacted")
    }
}

/// Reads what the database holds about `run`. Works as `cutter_exec` or `cutter_verify`.
pub fn run_status_in_db<C: GenericClient>(c: &mut C, run: &RunId) -> Result<DbRunFacts> {
    let cs = ChangeSetId::for_run(run);
    let what = format!("reading the database facts of run {run}");
    let mut by_status = |table: &str| -> Result<BTreeMap<String, u64>> {
        Ok(c.query(
            &format!(
                "SELECT lifecycle_status, count(*) FROM public.{table} \
                 WHERE change_set_id = $1 GROUP BY lifecycle_status"
            ),
            &[&cs.as_str()],
        )
        .map_err(Error::db(what.clone()))?
        .iter()
        .map(|r| (r.get::<_, String>(0), r.get::<_, i64>(1) as u64))
        .collect())
    };
    let units_by_status = by_status("information_unit")?;
    let versions_by_status = by_status("unit_version")?;
    let row = c
        .query_one(
            "SELECT (SELECT id FROM cutter_governance.cut_change_set WHERE change_set_id = $1), \
                    (SELECT count(*) FROM cutter_governance.cut_change_set_affected_row WHERE change_set_id = $1), \
                    (SELECT min(id) FROM cutter_governance.manifest_envelope WHERE change_set_id = $1), \
                    (SELECT count(*) FROM cutter_governance.dot_pair_signature WHERE run_id = $2), \
                    (SELECT id FROM cutter_governance.verify_result WHERE change_set_id = $1 ORDER BY id LIMIT 1), \
                    (SELECT verdict FROM cutter_governance.verify_result WHERE change_set_id = $1 ORDER BY id LIMIT 1), \
                    ARRAY(SELECT id FROM cutter_governance.review_decision \
                           WHERE run_id = $2 AND decision = 'sg3_escalation' ORDER BY id)",
            &[&cs.as_str(), &run.as_str()],
        )
        .map_err(Error::db(what))?;
    let verify_id: Option<i64> = row.get(4);
    let verdict: Option<String> = row.get(5);
    Ok(DbRunFacts {
        run_id: run.clone(),
        change_set_row: row.get(0),
        affected_rows: row.get::<_, i64>(1) as u64,
        manifest_row: row.get(2),
        signatures: row.get::<_, i64>(3) as u64,
        verify_result: verify_id.zip(verdict),
        sg3_escalations: row.get(6),
        claim: claim_of(c, run)?,
        voided: voided_by(c, run)?,
        reverted: is_reverted(c, &cs)?,
        units_by_status,
        versions_by_status,
        change_set: cs,
    })
}
