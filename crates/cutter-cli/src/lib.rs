//! The `cutter` command: argument parsing, configuration, the state directory,
//! progress and output. Thin: decisions live in `cutter-core`, I/O in the library
//! crates; this crate wires them and prints.

pub mod cli;
pub mod commands;
pub mod error;
pub mod failpoint;
pub mod interrupt;
pub mod logging;
pub mod manual;
pub mod output;
pub mod planfile;
pub mod report;
pub mod runs;
pub mod settings;
pub mod statedir;
pub mod version;

pub use error::{exit, CliError, Result};
