//! The `cutter` command: argument parsing, the commands, logging and manual pages. Thin:
//! decisions live in `cutter-core`, the orchestration of a run in `cutter-run`, I/O in
//! the library crates; this crate wires them and prints.

#![warn(missing_docs)]

pub mod cli;
pub mod commands;
pub mod error;
pub mod logging;
pub mod manual;
pub mod version;

pub use cutter_run::{failpoint, interrupt, output, planfile, report, runs, settings, statedir};
pub use error::{exit, CliError, Result};
