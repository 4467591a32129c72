//! A live run's `run_state` rows replayed as `cutter report verify` trusts them: each
//! row must be one the run itself could have appended at that point. The writer role
//! can append rows (that is how a run records itself), so the hash chain makes a forged
//! row visible, not impossible; [`checked_replay`] refuses, and names, a row that
//!
//! * changes the state machine other than its event does (an event the machine does not
//!   allow, a machine that is not the event's result, a change without an event), or
//!   carries a first state that is not a new run's;
//! * changes what is fixed when the run is created (plan, target, approvals, signers,
//!   pre snapshot), changes a value once set (backup, change set, counts, post
//!   snapshot, compensation, restore proof, a proof verdict), or rewrites a recorded
//!   phase;
//! * comes after the run's recorded end — `succeeded` through `lifecycle_enact`, or
//!   `voided`: nothing moves such a run on — unless it only fills what the run itself
//!   fills after its last phase: the post snapshot, the after-run proof, the prescribed
//!   compensation (`none`).
//!
//! Refused rows are left out of the replay. Pure: no database, no files.

use cutter_core::{Event, Phase, RunMachine, RunState};
use serde_json::Value;

/// A `run_state` row the replay refuses.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct RefusedRow {
    /// Its `review_decision` id.
    pub id: i64,
    /// Why the run could not have appended it.
    pub why: String,
}

/// The fields of `context` fixed when the run is created.
const FIXED: [&str; 11] = [
    "run_id",
    "mode",
    "document_id",
    "source_version_id",
    "plan_digest",
    "plan_rows",
    "target",
    "created_at",
    "pre_snapshot",
    "approvals",
    "signers",
];

/// The fields of `context` that are set once and never change.
const SET_ONCE: [&str; 8] = [
    "backup",
    "change_set_id",
    "units_created",
    "ledger_rows",
    "verify",
    "units_enacted",
    "post_snapshot",
    "compensation",
];

/// What may still change after the run's recorded end: what the run fills after its
/// last phase (`context` fields, and the top-level `restore_proof`).
const AFTER_END: [&str; 3] = ["post_snapshot", "backup_proof", "compensation"];

/// `rows` (a run's `run_state` rows, in id order, as `(id, payload)`) replayed: the
/// state they record, the ids of the rows taken, and the rows refused (see the module
/// docs), which the state leaves out.
pub fn checked_replay(rows: &[(i64, Value)]) -> (Value, Vec<i64>, Vec<RefusedRow>) {
    let mut state = Value::Null;
    let mut taken = Vec::new();
    let mut refused = Vec::new();
    let mut ended: Option<(i64, String)> = None;
    for (id, p) in rows {
        let mut next = state.clone();
        if let Some(patch) = p.get("patch").filter(|x| !x.is_null()) {
            cutter_governance::merge_patch_apply(&mut next, patch);
        }
        match check(&state, &next, p, ended.as_ref()) {
            Ok(m) => {
                if ended.is_none() && is_end(&m) {
                    ended = Some((*id, m.state.to_string()));
                }
                state = next;
                taken.push(*id);
            }
            Err(why) => refused.push(RefusedRow { id: *id, why }),
        }
    }
    (state, taken, refused)
}

/// Nothing moves a run on from here.
fn is_end(m: &RunMachine) -> bool {
    match m.state {
        RunState::Voided => true,
        RunState::Succeeded => m.final_phase == Phase::LifecycleEnact,
        _ => false,
    }
}

fn machine(v: &Value) -> Result<RunMachine, String> {
    serde_json::from_value(v["machine"].clone())
        .map_err(|e| format!("its state has no run machine ({e})"))
}

/// The row taking `before` to `after` (payload `p`), or why the run could not have
/// appended it; returns the machine after it.
fn check(
    before: &Value,
    after: &Value,
    p: &Value,
    ended: Option<&(i64, String)>,
) -> Result<RunMachine, String> {
    let next = machine(after)?;
    let event: Option<Event> = match &p["event"] {
        Value::Null => None,
        e => Some(serde_json::from_value(e.clone()).map_err(|e| format!("its event: {e}"))?),
    };
    if before.is_null() {
        // The run's first row: a new run, nothing committed, no gate passed.
        if next.state != RunState::Created && event.is_none()
            || !next.committed.is_empty()
            || next.gate_passed
        {
            return Err(format!(
                "the run's first recorded state is not a new run's ({}, {} phase(s) committed)",
                next.state,
                next.committed.iter().count()
            ));
        }
        return Ok(next);
    }
    let prev = machine(before)?;
    if let Some((end, state)) = ended {
        let changed = changed_fields(before, after);
        if event.is_some() || changed.iter().any(|f| !f.after_end()) {
            return Err(format!(
                "appended after the run's recorded end (review_decision {end}: {state}), \
                 changing {}",
                describe(&changed, event.as_ref())
            ));
        }
    }
    match &event {
        Some(e) => {
            let (expected, _) = prev.apply(e).map_err(|i| {
                format!("{i} (a row the run did not append, or rows missing before it)")
            })?;
            if expected != next {
                return Err(format!(
                    "its machine is not what {e} makes of the state recorded before it \
                     (state {}, expected {}): a row the run did not append, or rows missing \
                     before it",
                    next.state, expected.state
                ));
            }
        }
        None if prev != next => {
            return Err(format!(
                "it changes the run's state machine ({} → {}) without an event",
                prev.state, next.state
            ));
        }
        None => {}
    }
    for f in changed_fields(before, after) {
        match f {
            Field::Context(k) if FIXED.contains(&k.as_str()) => {
                return Err(format!(
                    "it changes context.{k}, which is fixed when the run is created"
                ));
            }
            Field::Context(k)
                if SET_ONCE.contains(&k.as_str()) && !before["context"][&k].is_null() =>
            {
                return Err(format!(
                    "it changes context.{k}, which was already recorded"
                ));
            }
            Field::Context(k)
                if k == "backup_proof" && !before["context"][&k]["passed"].is_null() =>
            {
                return Err(
                    "it changes context.backup_proof after its verdict was recorded".into(),
                );
            }
            Field::Context(k) if k == "phases" => {
                let old = before["context"]["phases"].as_array().cloned();
                let new = after["context"]["phases"].as_array().cloned();
                let grows = match (old, new) {
                    (Some(o), Some(n)) => n.len() >= o.len() && n[..o.len()] == o[..],
                    (None, _) => true,
                    (Some(o), None) => o.is_empty(),
                };
                if !grows {
                    return Err("it rewrites a phase already recorded".into());
                }
            }
            Field::RestoreProof if !before["restore_proof"].is_null() => {
                return Err("it changes the restore proof, which was already recorded".into());
            }
            _ => {}
        }
    }
    if ended.is_some()
        && after["context"]["compensation"] != before["context"]["compensation"]
        && after["context"]["compensation"] != serde_json::json!(prev.prescribed_compensation())
    {
        return Err(format!(
            "appended after the run's recorded end, it records a compensation other than \
             the prescribed {}",
            prev.prescribed_compensation()
        ));
    }
    Ok(next)
}

/// A top-level field of the recorded state, or a field of its `context`.
#[derive(Debug, Clone, PartialEq)]
enum Field {
    Machine,
    LastError,
    RestoreProof,
    Context(String),
    Other(String),
}

impl Field {
    fn after_end(&self) -> bool {
        match self {
            Field::RestoreProof => true,
            Field::Context(k) => AFTER_END.contains(&k.as_str()),
            _ => false,
        }
    }

    fn name(&self) -> String {
        match self {
            Field::Machine => "machine".into(),
            Field::LastError => "last_error".into(),
            Field::RestoreProof => "restore_proof".into(),
            Field::Context(k) => format!("context.{k}"),
            Field::Other(k) => k.clone(),
        }
    }
}

fn describe(changed: &[Field], event: Option<&Event>) -> String {
    let mut what: Vec<String> = changed
        .iter()
        .filter(|f| !f.after_end())
        .map(Field::name)
        .collect();
    if let Some(e) = event {
        what.insert(0, format!("event {e}"));
    }
    what.join(", ")
}

/// The fields whose value differs between `a` and `b`.
fn changed_fields(a: &Value, b: &Value) -> Vec<Field> {
    let keys = |v: &Value| -> Vec<String> {
        v.as_object()
            .map(|o| o.keys().cloned().collect())
            .unwrap_or_default()
    };
    let mut top = keys(a);
    top.extend(keys(b));
    top.sort();
    top.dedup();
    let mut out = Vec::new();
    for k in top {
        if a[&k] == b[&k] {
            continue;
        }
        match k.as_str() {
            "machine" => out.push(Field::Machine),
            "last_error" => out.push(Field::LastError),
            "restore_proof" => out.push(Field::RestoreProof),
            "context" => {
                let mut ck = keys(&a[&k]);
                ck.extend(keys(&b[&k]));
                ck.sort();
                ck.dedup();
                out.extend(
                    ck.into_iter()
                        .filter(|c| a[&k][c] != b[&k][c])
                        .map(Field::Context),
                );
            }
            _ => out.push(Field::Other(k)),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use cutter_core::{KillSwitch, Mode, RunId};
    use serde_json::json;

    /// The rows a run that succeeded records: created, its events, then the post
    /// snapshot and the after-run proof; each row's patch from the state before.
    fn rows_of_a_succeeded_run() -> (Vec<(i64, Value)>, Value) {
        let run = RunId::new("r-1").unwrap();
        let mut m = RunMachine::new(
            run.clone(),
            Mode::Live,
            Phase::LifecycleEnact,
            KillSwitch::Disarmed { run_id: run },
        );
        let mut state = json!({"machine": m, "context": {"run_id": "r-1", "plan_rows": 3,
            "backup_proof": {"mode": "after-run", "passed": null}, "phases": []},
            "restore_proof": null});
        let mut rows = vec![(1, json!({"event": null, "patch": state.clone()}))];
        let mut events = vec![];
        for p in Phase::ORDER {
            events.push(Event::PhaseStarted { phase: p });
            events.push(if p == Phase::Gate {
                Event::GatePassed
            } else {
                Event::PhaseCommitted { phase: p }
            });
        }
        let mut id = 1;
        for e in events {
            let before = state.clone();
            m = m.apply(&e).unwrap().0;
            state["machine"] = json!(m);
            if let Event::PhaseCommitted { phase } = &e {
                state["context"]["phases"]
                    .as_array_mut()
                    .unwrap()
                    .push(json!({"phase": phase}));
            }
            id += 1;
            let patch = cutter_governance::merge_patch_diff(&before, &state);
            rows.push((id, json!({"event": e, "patch": patch})));
        }
        let mut after = |f: &dyn Fn(&mut Value)| {
            let before = state.clone();
            f(&mut state);
            id += 1;
            let patch = cutter_governance::merge_patch_diff(&before, &state);
            rows.push((id, json!({"event": null, "patch": patch})));
        };
        after(&|s| s["context"]["post_snapshot"] = json!({"tables": {}}));
        after(&|s| {
            s["context"]["backup_proof"]["passed"] = json!(true);
            s["restore_proof"] = json!({"passed": true});
        });
        (rows, state)
    }

    #[test]
    fn what_the_run_appended_replays_whole() {
        let (rows, state) = rows_of_a_succeeded_run();
        let (replayed, taken, refused) = checked_replay(&rows);
        assert!(refused.is_empty(), "{refused:?}");
        assert_eq!(taken.len(), rows.len());
        assert_eq!(replayed["machine"], state["machine"]);
        assert_eq!(replayed["restore_proof"], json!({"passed": true}));
    }

    fn refused_with(extra: Value) -> Vec<RefusedRow> {
        let (mut rows, _) = rows_of_a_succeeded_run();
        rows.push((999, extra));
        checked_replay(&rows).2
    }

    #[test]
    fn a_row_after_the_end_is_refused_unless_it_only_fills_the_post_run_fields() {
        let r = refused_with(json!({"event": null, "patch": {"context": {"units_enacted": 7}}}));
        assert_eq!(r.len(), 1, "{r:?}");
        assert_eq!(r[0].id, 999);
        assert!(
            r[0].why.contains("after the run's recorded end")
                && r[0].why.contains("context.units_enacted"),
            "{r:?}"
        );
        let r = refused_with(json!({"event": {"event": "voided"}, "patch": null}));
        assert!(r[0].why.contains("after the run's recorded end"), "{r:?}");
        // The restore proof, once recorded, is not replaced by a later row.
        let r = refused_with(json!({"event": null, "patch": {"restore_proof": {"passed": false}}}));
        assert!(r[0].why.contains("restore proof"), "{r:?}");
        // The prescribed compensation of a run that succeeded: none.
        assert!(refused_with(
            json!({"event": null, "patch": {"context": {"compensation": "none"}}})
        )
        .is_empty());
        let r = refused_with(json!({"event": null, "patch": {"context": {"compensation": "a_b"}}}));
        assert!(r[0].why.contains("compensation"), "{r:?}");
    }

    #[test]
    fn a_forged_row_inside_the_run_is_refused_and_left_out() {
        let (mut rows, state) = rows_of_a_succeeded_run();
        // A phase's timing rewritten, a fixed field changed, a state without its event.
        let at = rows.len() - 3;
        for (n, patch) in [
            json!({"context": {"phases": [{"phase": "preflight", "started_ms": 1}]}}),
            json!({"context": {"plan_rows": 4}}),
            json!({"machine": {"state": {"state": "voided"}}}),
        ]
        .into_iter()
        .enumerate()
        {
            rows.insert(
                at + n,
                (500 + n as i64, json!({"event": null, "patch": patch})),
            );
        }
        // An event the machine does not allow where it stands.
        rows.insert(
            at,
            (600, json!({"event": {"event": "released"}, "patch": {"machine": {"state": "released"}}})),
        );
        let (replayed, _, refused) = checked_replay(&rows);
        let ids: Vec<i64> = refused.iter().map(|r| r.id).collect();
        assert_eq!(ids, [600, 500, 501, 502], "{refused:?}");
        assert!(refused[0].why.contains("release"), "{refused:?}");
        assert!(refused[1].why.contains("rewrites a phase"), "{refused:?}");
        assert!(refused[2].why.contains("context.plan_rows"), "{refused:?}");
        assert!(refused[3].why.contains("without an event"), "{refused:?}");
        assert_eq!(
            replayed["machine"], state["machine"],
            "refused rows are left out"
        );
        assert_eq!(replayed["context"]["plan_rows"], 3);
    }
}
