//! The orchestration of a cutter run, as a library: [`run::run`] takes a
//! [`run::RunRequest`] (a plan file, a run id, live or rehearsal, the approvals) and a
//! [`ctx::Ctx`] (the [`settings::Settings`] and how to report) and drives the run through
//! its phases — preflight, cut plan, gate, then `pre_write_backup → cut_leg_a →
//! leg_b_record → write_verify → lifecycle_enact` — journaling every event in the state
//! directory ([`statedir`], [`runs`]) before acting on it and carrying out the effects
//! the state machine returns ([`run::apply_effects`]: kill-switch, HOLD, SG_3). A
//! rehearsal ([`dryrun`]) runs the same pipeline on a throwaway clone restored from a
//! fresh backup and proves the target unchanged. The report ([`report`]) is written as
//! `report.md` and `report.json`.
//!
//! ```no_run
//! # fn main() -> Result<(), Box<dyn std::error::Error>> {
//! # let config = std::path::PathBuf::from("cutter.toml");
//! // A rehearsal as `cutter run --mode dry-run` does it. `examples/rehearsal.rs` embeds a
//! // whole one, cluster and keys included, and `tests/embedding.rs` runs it.
//! let ctx = cutter_run::Ctx::from_config(config, cutter_run::output::Output::new(false))?;
//! let request = cutter_run::RunRequest::rehearsal("plan.json", "r-1");
//! let done = cutter_run::run(&ctx, &request)?;
//! println!("{}\n{}", done.summary, cutter_run::html::to_html(&done.record, &Default::default()).len());
//! # Ok(())
//! # }
//! ```
//!
//! The `cutter` command is a thin layer over this crate: it parses arguments, installs
//! the signal handler ([`interrupt::install`]) and prints.

#![warn(missing_docs)]

pub mod amend;
pub mod ctx;
pub mod dryrun;
pub mod error;
pub mod failpoint;
pub mod html;
pub mod interrupt;
pub mod output;
pub mod planfile;
pub mod prove;
pub mod replay;
pub mod report;
pub mod run;
pub mod runs;
pub mod settings;
pub mod signed;
pub mod statedir;
pub mod throwaway;

pub use ctx::Ctx;
pub use error::{exit, Error, Result};
pub use run::{run, Finished, RunRequest};
