//! The two xtask files of this crate (`xtask/src/proof_compensation.rs`,
//! `xtask/src/bench_compensation.rs`) compiled and run here, so they are tested where the
//! code they drive lives: the proof wrapper on a fresh database, the benchmark on a small
//! change set.

#[path = "../../../xtask/src/bench_compensation.rs"]
mod bench_compensation;
#[path = "../../../xtask/src/proof_compensation.rs"]
mod proof_compensation;

mod common;

#[test]
fn the_proof_wrapper_reports_every_case_passed() {
    let db = common::db();
    cutter_compensation::testing::ThrowawayApprovers::generate()
        .unwrap()
        .register(&mut db.admin())
        .unwrap();
    let mut target = db.target();
    let rows = proof_compensation::proofs(&mut target);
    assert!(rows.len() >= 14, "{rows:#?}");
    assert!(rows.iter().all(|(_, r)| r.is_ok()), "{rows:#?}");
}

#[test]
fn the_benchmark_runs() {
    // A small change set (or CUTTER_COMPENSATION_BENCH_UNITS): the run itself must
    // succeed; the rate target is for 100 000 units in release mode, so a miss here is not
    // a failure of the code. Its arguments are xtask's (clap), tested there.
    let number = |var: &str, default: u64| -> u64 {
        std::env::var(var).map_or(default, |v| {
            v.trim()
                .parse()
                .unwrap_or_else(|e| panic!("{var}={v:?}: {e}"))
        })
    };
    let units = number("CUTTER_COMPENSATION_BENCH_UNITS", 500);
    let rounds = number("CUTTER_COMPENSATION_BENCH_ROUNDS", 1) as u32;
    match bench_compensation::run(units, rounds) {
        Ok(()) => {}
        Err(e) => assert_eq!(e, "benchmark target missed"),
    }
}
