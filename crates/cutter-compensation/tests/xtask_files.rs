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
    let mut target = db.target();
    let rows = proof_compensation::proofs(&mut target);
    assert!(rows.len() >= 14, "{rows:#?}");
    assert!(rows.iter().all(|(_, r)| r.is_ok()), "{rows:#?}");
}

#[test]
fn the_benchmark_runs_and_checks_its_arguments() {
    let args = |s: &[&str]| s.iter().map(|x| x.to_string()).collect::<Vec<_>>();
    assert!(bench_compensation::main(&args(&["write"])).is_err());
    assert!(bench_compensation::main(&args(&["compensation", "--units", "0"])).is_err());
    assert!(bench_compensation::main(&args(&["compensation", "--bogus"])).is_err());
    // A small change set (or CUTTER_COMPENSATION_BENCH_UNITS): the run itself must
    // succeed; the rate target is for 100 000 units in release mode, so a miss here is not
    // a failure of the code.
    let units = std::env::var("CUTTER_COMPENSATION_BENCH_UNITS").unwrap_or_else(|_| "500".into());
    let rounds = std::env::var("CUTTER_COMPENSATION_BENCH_ROUNDS").unwrap_or_else(|_| "1".into());
    match bench_compensation::main(&args(&[
        "compensation",
        "--units",
        &units,
        "--rounds",
        &rounds,
    ])) {
        Ok(()) => {}
        Err(e) => assert_eq!(e, "benchmark target missed"),
    }
}
