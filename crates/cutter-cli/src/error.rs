//! The CLI's errors and exit codes: those of the orchestration library
//! ([`cutter_run::Error`]), under the name the command modules use.

pub use cutter_run::error::{exit, Error as CliError, Result, ERROR_CODES};
