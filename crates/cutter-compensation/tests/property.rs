//! The compensation property, against a throwaway cluster: for a random plan of 1–200
//! units and a random failing phase (or none), after the failure and the matrix's
//! compensation (soft, or hard with approvals), the rows that existed before the run are
//! byte for byte the pre snapshot's, no enacted row changed, a hard revert leaves the
//! counts of the pre snapshot exactly, and compensating again writes nothing.
//!
//! Cases: `CUTTER_COMPENSATION_CASES` (default 64). Each case uses a fresh database.

mod common;

use common::*;
use cutter_compensation::{execute, plan, revert_run_for, RevertMode, StepOutcome};
use cutter_core::{
    compensation_for, ChangeSetId, Compensation, CutPlanRow, Phase, PhaseSet, TableName,
};
use cutter_pg::testing::TestDb;
use proptest::prelude::*;
use proptest::test_runner::TestCaseError;

/// `CUTTER_COMPENSATION_CASES` (default 64). Zero or a value that is not a number is
/// refused: zero cases would pass without checking anything.
fn cases() -> u32 {
    cases_from(std::env::var("CUTTER_COMPENSATION_CASES").ok())
}

fn cases_from(value: Option<String>) -> u32 {
    match value.as_deref().map(|v| v.trim().parse::<u32>()) {
        None => 64,
        Some(Ok(n)) if n > 0 => n,
        _ => panic!("CUTTER_COMPENSATION_CASES={value:?}: must be a number of cases of at least 1"),
    }
}

#[test]
fn a_case_count_of_zero_is_refused() {
    assert_eq!(cases_from(None), 64);
    assert_eq!(cases_from(Some(" 3 ".into())), 3);
    let refused = std::panic::catch_unwind(|| cases_from(Some("0".into())));
    let msg = refused
        .expect_err("0 cases")
        .downcast::<String>()
        .expect("a message");
    assert!(msg.contains("CUTTER_COMPENSATION_CASES"), "{msg}");
}

const SECTIONS: [&str; 3] = ["article", "clause", "preamble"];

fn row() -> impl Strategy<Value = (String, String, usize, bool)> {
    (
        "[\\p{L}\\p{N}][\\p{L}\\p{N} .,;'\"$()-]{0,40}",
        // Any text the row contract accepts in a body: no NUL, no C0/C1 control but
        // tab and line feed, no bidirectional control, no replacement character.
        "[^\u{0}-\u{8}\u{B}-\u{1F}\u{7F}-\u{9F}\u{61C}\u{200E}\u{200F}\u{202A}-\u{202E}\u{2066}-\u{2069}\u{FFFD}]{0,300}",
        0..SECTIONS.len(),
        any::<bool>(),
    )
}

fn rows() -> impl Strategy<Value = Vec<CutPlanRow>> {
    prop::collection::vec(row(), 1..=200).prop_map(|v| {
        v.into_iter()
            .enumerate()
            .map(|(i, (title, body, section, owner))| CutPlanRow {
                canonical_address: format!("prop-doc/dieu-{}", i + 1),
                title,
                body,
                actor: "proptest".into(),
                unit_kind: "law_unit".into(),
                section_type: Some(SECTIONS[section].into()),
                publication_type: "law".into(),
                owner_ref: owner.then(|| "quoc-hoi".to_string()),
            })
            .collect()
    })
}

/// (rows, digest) of the enacted rows of `table` with `id <= upto`, canonical output.
fn enacted_digest(db: &TestDb, table: &str, upto: i64) -> (i64, Vec<u8>) {
    let mut c = db.admin();
    let mut tx = c.transaction().unwrap();
    cutter_pg::surface::set_canonical_output(&mut tx).unwrap();
    let r = tx
        .query_one(
            &format!(
                "SELECT count(*), coalesce(sha256(string_agg(sha256(convert_to(r::text, 'UTF8')), ''::bytea \
                 ORDER BY r.id)), sha256(''::bytea)) FROM {table} r \
                 WHERE r.lifecycle_status = 'enacted' AND r.id <= $1"
            ),
            &[&upto],
        )
        .unwrap();
    (r.get(0), r.get(1))
}

fn table(name: &str) -> TableName {
    TableName::try_from(name.to_string()).unwrap()
}

fn check(rows: Vec<CutPlanRow>, fail: Option<Phase>, hard: bool) -> Result<(), TestCaseError> {
    let db = db();
    let n = rows.len() as u64;
    let p = plan_of("prop-doc", rows);
    let (mark, enacted_before) = {
        let mut target = db.target();
        let mark = target.surface_mark().unwrap();
        let e: Vec<_> = ["public.information_unit", "public.unit_version"]
            .iter()
            .map(|t| enacted_digest(&db, t, i64::MAX))
            .collect();
        (mark, e)
    };
    let sim = simulate(&db, "r-prop", &p, fail);
    let pre = sim.facts.pre_snapshot.clone();
    let mut c = exec(&db);
    let facts = sim.facts.cross_check(&mut c).unwrap();
    let plan = plan(&facts);
    let committed = match fail {
        Some(f) => PhaseSet::mutating_before(f),
        None => Phase::MUTATING.into_iter().collect(),
    };
    prop_assert_eq!(plan.compensation(), compensation_for(fail, committed));
    let touches = plan.compensation().touches_database();
    let revert = revert_run_for(&facts.run_id);
    let mode = if hard && touches {
        let database = db.target().database().clone();
        RevertMode::Hard(
            approvers()
                .hard_delete_approval(&plan, &revert, &database)
                .unwrap(),
        )
    } else {
        RevertMode::Soft
    };
    let report = execute(&mut c, &plan, &mode, &revert, ACTOR)
        .map_err(|e| TestCaseError::fail(format!("compensation failed: {e}")))?;
    prop_assert_eq!(report.wrote(), touches);

    // The rows that existed before the run equal the pre snapshot, byte for byte.
    let mut target = db.target();
    let stats = target.surface_stats_upto(&mark).unwrap();
    for t in [
        "public.information_unit",
        "public.unit_version",
        "public.iu_lifecycle_log",
    ] {
        let t = table(t);
        prop_assert_eq!(stats.get(&t), pre.tables.get(&t), "{}", t);
    }
    // No enacted row changed.
    for (i, t) in ["public.information_unit", "public.unit_version"]
        .iter()
        .enumerate()
    {
        let upto = mark.max_ids[&table(t)];
        prop_assert_eq!(&enacted_digest(&db, t, upto), &enacted_before[i], "{}", t);
    }
    let cs = ChangeSetId::for_run(&facts.run_id);
    let counts = public_counts(&db);
    let pre_counts = [
        pre.rows("public.information_unit") as i64,
        pre.rows("public.unit_version") as i64,
        pre.rows("public.iu_lifecycle_log") as i64,
    ];
    match (plan.compensation(), &mode) {
        (Compensation::A | Compensation::AB, RevertMode::Hard(_)) => {
            prop_assert_eq!(counts, pre_counts);
            prop_assert_eq!(
                target.snapshot().unwrap().unit_statuses,
                pre.unit_statuses.clone()
            );
        }
        (Compensation::A | Compensation::AB, RevertMode::Soft) => {
            let k = n as i64;
            prop_assert_eq!(
                counts,
                [pre_counts[0] + k, pre_counts[1] + k, pre_counts[2] + k]
            );
            prop_assert_eq!(
                units_by_status(&db, &cs),
                vec![("withdrawn".to_string(), k)]
            );
        }
        (Compensation::None, _) => {
            prop_assert_eq!(
                units_by_status(&db, &cs),
                vec![("enacted".to_string(), n as i64)]
            );
        }
        (Compensation::DiscardArtifact, _) => {
            prop_assert_eq!(counts, pre_counts);
        }
    }
    let reverted = cutter_governance::is_reverted(&mut c, &cs).unwrap();
    prop_assert_eq!(reverted.is_some(), plan.compensation() == Compensation::AB);
    prop_assert!(ledger_intact(&db));

    // Compensating again writes nothing.
    let snap = target.snapshot().unwrap();
    let again = execute(&mut c, &plan, &mode, &revert, ACTOR)
        .map_err(|e| TestCaseError::fail(format!("second compensation failed: {e}")))?;
    prop_assert!(again
        .steps
        .iter()
        .all(|s| s.outcome == StepOutcome::AlreadyDone));
    prop_assert_eq!(again.already_compensated(), touches);
    prop_assert_eq!(target.snapshot().unwrap(), snap);
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig {
        max_shrink_iters: 64,
        ..ProptestConfig::with_cases(cases())
    })]

    #[test]
    fn compensation_restores_what_existed_before_the_run(
        rows in rows(),
        fail in 0usize..6,
        hard in any::<bool>(),
    ) {
        let fail = Phase::MUTATING.get(fail).copied();
        check(rows, fail, hard)?;
    }
}
