//! The ledger benchmark of `cargo xtask bench ledger`, runnable from this crate:
//! `cargo run --release -p cutter-governance --example bench_ledger -- ledger --units 100000`.
//! The code is xtask's (`xtask/src/bench_ledger.rs`), included here so the crate's own
//! build checks it.

use std::process::ExitCode;

#[path = "../../../xtask/src/bench_ledger.rs"]
mod bench_ledger;

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    match bench_ledger::main(&args) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("bench: {e}");
            ExitCode::FAILURE
        }
    }
}
