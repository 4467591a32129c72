//! The report of a real run, as the fixtures keep it: demo-1 of `cutter demo` (a staged
//! live run of the 2013 Constitution, compensated and voided), its journal, the restore
//! proof of its backup and the ledger's verification.

use std::path::PathBuf;

use cutter_run::report::{timeline_events, ReportExtras};
use cutter_run::runs::RunRecord;
use cutter_run::statedir::JournalEntry;

fn fixture(name: &str) -> String {
    let p = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/demo-1")
        .join(name);
    std::fs::read_to_string(&p).unwrap_or_else(|e| panic!("{}: {e}", p.display()))
}

/// demo-1's record and the report's extras.
pub fn demo_run() -> (RunRecord, ReportExtras) {
    let rec: RunRecord = serde_json::from_str(&fixture("run.json")).unwrap();
    let journal: Vec<JournalEntry> = fixture("journal.jsonl")
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let extras = ReportExtras {
        restore_proof: Some(serde_json::from_str(&fixture("restore-proof.json")).unwrap()),
        ledger: Some(serde_json::from_str(&fixture("ledger.json")).unwrap()),
        events: timeline_events(rec.machine.mode, &journal),
        ..ReportExtras::default()
    };
    (rec, extras)
}

/// demo-1 as if its write_verify had failed: the run held, the phase marked.
pub fn failed_run() -> (RunRecord, ReportExtras) {
    let (mut rec, mut extras) = demo_run();
    let last = rec.context.phases.last_mut().unwrap();
    last.outcome = cutter_core::PhaseOutcome::Failed {
        reason: "injected <failure> & more".into(),
    };
    extras.events.push(cutter_run::report::TimelineEvent {
        at_ms: last.ended_ms,
        what: format!("HOLD: {} failed", last.phase),
    });
    (rec, extras)
}
