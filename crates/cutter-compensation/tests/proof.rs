//! The compensation part of the rollback-only proof passes on a real database and leaves
//! it as it was.

mod common;

#[test]
fn every_compensation_proof_passes_and_is_net_zero() {
    let db = common::db();
    cutter_compensation::testing::ThrowawayApprovers::generate()
        .unwrap()
        .register(&mut db.admin())
        .unwrap();
    let mut target = db.target();
    let before = target.snapshot().unwrap();
    let rows = cutter_compensation::proof::prove(&mut target).expect("the proof runs");
    let failed: Vec<_> = rows.iter().filter(|r| r.outcome.is_err()).collect();
    for r in &rows {
        println!("{:<80} {:?}", r.name, r.outcome);
    }
    assert!(failed.is_empty(), "{failed:#?}");
    assert!(rows.len() >= 14, "{rows:#?}");
    for name in [
        "compensation A (soft)",
        "compensation A (hard, approved)",
        "compensation B:",
        "idempotent",
        "an enacted unit",
        "without SG_2",
        "unknown change set",
        "net-zero",
    ] {
        assert!(
            rows.iter().any(|r| r.name.contains(name)),
            "no proof row {name:?}: {rows:#?}"
        );
    }
    assert_eq!(target.snapshot().unwrap(), before);
    assert!(target.locked_for().is_none());
}
