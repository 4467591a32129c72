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

/// demo-1 as an amendment's report: two articles amended (one with markup characters in
/// its text, one word replaced in the middle), one repealed, as
/// `cutter_pg::amend::changed_texts` reads them back after an amendment run.
#[allow(dead_code)] // not every test binary uses every fixture
pub fn amendment_run() -> (RunRecord, ReportExtras) {
    use cutter_run::report::ChangedArticle;
    let (rec, mut extras) = demo_run();
    let article = |n: u32, old: &str, new: Option<&str>| ChangedArticle {
        address: format!("vn-constitution-2013/dieu-{n}"),
        old: old.into(),
        new: new.map(Into::into),
    };
    extras.changed_articles = vec![
        article(
            1,
            "Nước Cộng hòa xã hội chủ nghĩa Việt Nam là một nước độc lập, có chủ quyền, thống nhất và toàn vẹn lãnh thổ, bao gồm đất liền, hải đảo, vùng biển và vùng trời.",
            Some("Nước Cộng hòa xã hội chủ nghĩa Việt Nam là một nước độc lập, có chủ quyền, thống nhất và toàn vẹn lãnh thổ, bao gồm đất liền, hải đảo, vùng biển và vùng trời. Sửa đổi, bổ sung năm 2025."),
        ),
        article(
            14,
            "Quyền con người, quyền công dân chỉ có thể bị hạn chế theo quy định của luật <khoản 2> & trong trường hợp cần thiết.",
            Some("Quyền con người, quyền công dân chỉ có thể bị tạm ngừng theo quy định của luật <khoản 2> & trong trường hợp cần thiết."),
        ),
        article(
            120,
            "Hiến pháp này được Quốc hội thông qua.",
            None,
        ),
    ];
    (rec, extras)
}
