//! The ledger benchmark of `cargo xtask bench ledger`, runnable from this crate at its
//! default size (100 000 units, 3 verify_ledger passes):
//! `cargo run --release -p cutter-governance --example bench_ledger`. Other sizes:
//! `cargo run --release -p xtask -- bench ledger --units N --rounds R`. The code is
//! xtask's (`xtask/src/bench_ledger.rs`), included here so the crate's own build checks
//! it.

use std::process::ExitCode;

#[path = "../../../xtask/src/bench_ledger.rs"]
mod bench_ledger;

fn main() -> ExitCode {
    // The defaults of `cargo xtask bench ledger`.
    match bench_ledger::run(100_000, 3) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("bench: {e}");
            ExitCode::FAILURE
        }
    }
}
