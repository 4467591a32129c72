//! What a run's report shows, recorded in the ledger as it happens: one `review_decision`
//! row `run_state` per transition of a live run (and per change of its record between
//! transitions). Its payload is `{"at_ms", "event", "patch"}`: when, the journal's event
//! (or `null`), and a JSON merge patch (RFC 7396) from the run's previously recorded state
//! to its state now. Replaying a run's rows in id order rebuilds its record; that is what
//! `cutter report verify` recomputes a report from.
//!
//! A restore proof of a run's backup made later (`cutter backup restore-proof`) is a
//! `review_decision` row `restore_proof` of the run: `{"at_ms", "proof", "record"}`.
//! The run's restore proof is the latest of the two: the one its recorded state carries
//! (`restore_proof`, set when the run proved its own backup) or a later row's
//! ([`ledger_restore_proof`]).

use cutter_core::RunId;
use postgres::GenericClient;
use serde_json::Value;

use crate::chain::LedgerTable;
use crate::decisions::append_run_decision;
use crate::error::{Error, Result};

/// `decision` of a run's recorded state.
pub const DECISION_RUN_STATE: &str = "run_state";

/// `decision` of a restore proof of a run's backup made after the run.
pub const DECISION_RESTORE_PROOF: &str = "restore_proof";

/// Appends one row of `run`'s record in the ledger: `decision` is
/// [`DECISION_RUN_STATE`] (payload `{"at_ms", "event", "patch"}`) or
/// [`DECISION_RESTORE_PROOF`] (payload `{"at_ms", "proof", "record"}`: when, the proof
/// record's content, its file name). In a transaction of its own; returns its id.
pub fn record_run_row<C: GenericClient>(
    client: &mut C,
    run: &RunId,
    decision: &str,
    payload: &Value,
    actor: &str,
) -> Result<i64> {
    let what = match decision {
        DECISION_RUN_STATE => "state record",
        DECISION_RESTORE_PROOF => "restore proof record",
        other => {
            return Err(Error::Invalid(format!(
                "{other:?} is not a row of a run's record ({DECISION_RUN_STATE}, {DECISION_RESTORE_PROOF})"
            )))
        }
    };
    append_run_decision(client, run, decision, payload, actor, what)
}

/// The restore proof the ledger holds for `run` (as far as `review_decision` id
/// `through` reaches, if given), with the id of the row that recorded it: the latest of
/// the run's recorded state (`restore_proof` of its `run_state` rows, replayed) and its
/// `restore_proof` rows. `None` if neither holds one. Reads only.
pub fn ledger_restore_proof<C: GenericClient>(
    client: &mut C,
    run: &RunId,
    through: Option<i64>,
) -> Result<Option<(i64, Value)>> {
    let rows = client
        .query(
            "SELECT id, decision, payload::text FROM cutter_governance.review_decision \
             WHERE run_id = $1 AND decision IN ('run_state', 'restore_proof') \
               AND ($2::bigint IS NULL OR id <= $2) ORDER BY id",
            &[&run.as_str(), &through],
        )
        .map_err(Error::db(format!(
            "reading the restore proofs of run {run}"
        )))?;
    let mut state = Value::Null;
    let mut found = None;
    for r in &rows {
        let id: i64 = r.get(0);
        let p: Value = serde_json::from_str(r.get::<_, &str>(2)).map_err(|e| Error::Corrupt {
            table: LedgerTable::ReviewDecision,
            id,
            detail: format!("{} payload is not JSON: {e}", r.get::<_, &str>(1)),
        })?;
        if r.get::<_, &str>(1) == DECISION_RESTORE_PROOF {
            found = Some((id, p["proof"].clone()));
            continue;
        }
        let Some(patch) = p.get("patch").filter(|x| !x.is_null()) else {
            continue;
        };
        merge_patch_apply(&mut state, patch);
        if patch.get("restore_proof").is_some() {
            found = Some((id, state["restore_proof"].clone()));
        }
    }
    Ok(found.filter(|(_, p)| !p.is_null()))
}

/// The `run_state` rows of `run` as `(id, payload)`, in id order, up to and including
/// `through` (a `review_decision` id) if given. Reads only.
pub fn run_states<C: GenericClient>(
    client: &mut C,
    run: &RunId,
    through: Option<i64>,
) -> Result<Vec<(i64, Value)>> {
    let rows = client
        .query(
            "SELECT id, payload::text FROM cutter_governance.review_decision \
             WHERE run_id = $1 AND decision = 'run_state' AND ($2::bigint IS NULL OR id <= $2) \
             ORDER BY id",
            &[&run.as_str(), &through],
        )
        .map_err(Error::db(format!(
            "reading the recorded states of run {run}"
        )))?;
    rows.iter()
        .map(|r| {
            let id: i64 = r.get(0);
            serde_json::from_str(r.get::<_, &str>(1))
                .map(|v| (id, v))
                .map_err(|e| Error::Corrupt {
                    table: LedgerTable::ReviewDecision,
                    id,
                    detail: format!("run_state payload is not JSON: {e}"),
                })
        })
        .collect()
}

/// The state the `run_state` rows `rows` (in id order) record: their patches applied in
/// turn (fields whose value is `null` are absent).
pub fn replay_run_states(rows: &[(i64, Value)]) -> Value {
    let mut state = Value::Null;
    for (_, p) in rows {
        if let Some(patch) = p.get("patch").filter(|x| !x.is_null()) {
            merge_patch_apply(&mut state, patch);
        }
    }
    state
}

/// The merge patch (RFC 7396) that turns `from` into `to`: objects recursively, a
/// removed field as `null`, anything else replaced whole; an absent field and a `null`
/// one are the same. `None` if nothing differs.
pub fn merge_patch_diff(from: &Value, to: &Value) -> Option<Value> {
    match (from, to) {
        (Value::Object(a), Value::Object(b)) => {
            let mut patch = serde_json::Map::new();
            for (k, vb) in b {
                match a.get(k) {
                    Some(va) => {
                        if let Some(p) = merge_patch_diff(va, vb) {
                            patch.insert(k.clone(), p);
                        }
                    }
                    None if vb.is_null() => {}
                    None => {
                        patch.insert(k.clone(), vb.clone());
                    }
                }
            }
            for k in a.keys().filter(|k| b.get(*k).is_none_or(Value::is_null)) {
                if a[k].is_null() {
                    continue;
                }
                patch.insert(k.clone(), Value::Null);
            }
            (!patch.is_empty()).then_some(Value::Object(patch))
        }
        // A null inside a patch means "remove": an object becoming null is removed.
        _ if from == to => None,
        _ => Some(to.clone()),
    }
}

/// Applies a merge patch (RFC 7396) to `target`.
pub fn merge_patch_apply(target: &mut Value, patch: &Value) {
    let Value::Object(p) = patch else {
        *target = patch.clone();
        return;
    };
    if !target.is_object() {
        *target = Value::Object(serde_json::Map::new());
    }
    let t = target.as_object_mut().expect("made an object above");
    for (k, v) in p {
        if v.is_null() {
            t.remove(k);
        } else {
            merge_patch_apply(t.entry(k.clone()).or_insert(Value::Null), v);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn a_patch_rebuilds_the_state_it_was_taken_to() {
        let states = [
            json!({"machine": {"state": "created"}, "context": {"phases": [], "backup": null}}),
            json!({"machine": {"state": "running", "phase": "x"}, "context": {"phases": [1], "backup": {"sha": "a"}}}),
            json!({"machine": {"state": "held"}, "context": {"phases": [1, 2], "backup": null}, "last_error": "e"}),
        ];
        let mut rebuilt = Value::Null;
        let mut last = Value::Null;
        for s in &states {
            if let Some(p) = merge_patch_diff(&last, s) {
                merge_patch_apply(&mut rebuilt, &p);
            }
            last = s.clone();
            // A null field is absent after a patch: compare without nulls.
            assert_eq!(strip_nulls(&rebuilt), strip_nulls(s));
        }
        assert_eq!(merge_patch_diff(&states[2], &states[2]), None);
        // What a replay reads back (no null fields) equals the state it came from.
        assert_eq!(merge_patch_diff(&strip_nulls(&states[2]), &states[2]), None);
        assert_eq!(merge_patch_diff(&states[2], &strip_nulls(&states[2])), None);
        let p = merge_patch_diff(&states[1], &states[2]).unwrap();
        assert_eq!(
            p["machine"]["phase"],
            Value::Null,
            "a removed field is patched to null"
        );
        assert_eq!(
            p["context"]["phases"],
            json!([1, 2]),
            "arrays are replaced whole"
        );
    }

    fn strip_nulls(v: &Value) -> Value {
        match v {
            Value::Object(m) => Value::Object(
                m.iter()
                    .filter(|(_, x)| !x.is_null())
                    .map(|(k, x)| (k.clone(), strip_nulls(x)))
                    .collect(),
            ),
            other => other.clone(),
        }
    }
}
