//! The `cutter` command: argument parsing, the commands, logging and manual pages. Thin:
//! decisions live in `cutter-core`, the orchestration of a run in `cutter-run`, I/O in
//! the library crates; this crate wires them and prints.
//!
//! ```
//! use clap::Parser;
//! use cutter_cli::cli::{Cli, Command};
//!
//! let cli = Cli::try_parse_from(["cutter", "run", "--plan", "plan.json", "--run-id", "r-1"])?;
//! let Command::Run(args) = &cli.command else { unreachable!() };
//! // A rehearsal unless `--mode live` is given; the library takes it from here.
//! let request = cutter_cli::commands::run::request(args);
//! assert_eq!(request.mode, cutter_core::Mode::DryRun);
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

#![warn(missing_docs)]

pub mod cli;
pub mod commands;
pub mod error;
pub mod logging;
pub mod manual;
pub mod version;

pub use cutter_run::{failpoint, interrupt, output, planfile, report, runs, settings, statedir};
pub use error::{exit, CliError, Result};
