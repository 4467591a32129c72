//! Output: a human summary on stdout, or one JSON document with `--json`; logs and
//! progress on stderr. Progress bars are hidden when stderr is not a terminal. Notes for
//! the operator (what a run's effects could not do) go to the sink the caller gives
//! ([`Output::with_notes`]; the CLI prints them on stderr), never printed by the library.

use std::io::IsTerminal;

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use serde_json::{json, Value};

use crate::error::Error;

/// The version of the `--json` envelope (`docs/cli-json.md`, `docs/cli-json.schema.json`):
/// a key of every object cutter prints with `--json`. A change that removes or
/// retypes a key makes it `cutter-cli/2`; adding keys does not.
pub const SCHEMA: &str = "cutter-cli/1";

/// How to print.
#[derive(Debug, Clone, Copy)]
pub struct Output {
    /// `--json`.
    pub json: bool,
    /// With `json`: keep results for [`Output::take_captured`] instead of printing them,
    /// so that a command made of other commands (`demo`) prints one object.
    capture: bool,
    /// Where the operator's notes go ([`Output::note`]); `None`: to the log only.
    notes: Option<fn(&str)>,
}

thread_local! {
    static CAPTURED: std::cell::RefCell<Vec<Value>> = const { std::cell::RefCell::new(Vec::new()) };
}

impl Output {
    /// Human output, or one JSON object per command with `json`.
    pub fn new(json: bool) -> Self {
        Self {
            json,
            capture: false,
            notes: None,
        }
    }

    /// Notes for the operator ([`Output::note`]) go to `sink` too (the CLI's prints them
    /// on stderr), except with `--json`.
    pub fn with_notes(self, sink: fn(&str)) -> Self {
        Self {
            notes: Some(sink),
            ..self
        }
    }

    /// A note for the operator while a command runs — what an effect of a run's
    /// transition could not do, and where its record went instead: logged (debug), and handed
    /// to the sink of [`Output::with_notes`] unless `--json` (whose result says it).
    pub fn note(&self, note: &str) {
        tracing::debug!("{note}");
        if let (Some(sink), false) = (self.notes, self.json) {
            sink(note);
        }
    }

    /// For the steps of a composite command under `--json`: their results are kept (in
    /// this thread) until [`Output::take_captured`], not printed.
    pub fn capturing(self) -> Self {
        Self {
            capture: self.json,
            ..self
        }
    }

    /// The results captured so far in this thread, in order; clears them.
    pub fn take_captured() -> Vec<Value> {
        CAPTURED.with(|c| std::mem::take(&mut *c.borrow_mut()))
    }

    /// Prints a result: `human` unless `--json`, then
    /// `{"schema": "cutter-cli/1", "ok": true, ...data}`.
    pub fn emit(&self, human: &str, data: Value) {
        if self.json {
            let mut obj = json!({"schema": SCHEMA, "ok": true});
            if let (Some(o), Value::Object(d)) = (obj.as_object_mut(), data) {
                o.extend(d);
            }
            if self.capture {
                CAPTURED.with(|c| c.borrow_mut().push(obj));
                return;
            }
            println!("{}", serde_json::to_string_pretty(&obj).unwrap_or_default());
        } else if !human.is_empty() {
            println!("{}", human.trim_end());
        }
    }

    /// Prints an error: to stderr for humans, as `{"schema": …, "ok": false, "error": …}`
    /// on stdout with `--json` (and a one-line copy on stderr).
    pub fn error(&self, e: &Error) {
        if self.json {
            let v = json!({"schema": SCHEMA, "ok": false, "error": {"code": e.code(), "kind": e.kind(), "exit_code": e.exit_code(), "message": e.to_string()}});
            println!("{}", serde_json::to_string_pretty(&v).unwrap_or_default());
        }
        eprintln!("cutter: {e}");
    }

    /// A spinner with the elapsed time, for work whose size is not known (a phase that
    /// runs on the server); hidden like [`Output::progress`]. Ticks on its own, and
    /// clears itself when dropped, also on an early return.
    pub fn spinner(&self, what: &str) -> ProgressBar {
        let pb = self
            .progress(0, what)
            .with_finish(indicatif::ProgressFinish::AndClear);
        if let Ok(style) = ProgressStyle::with_template("{spinner} {msg} {elapsed}") {
            pb.set_style(style);
        }
        pb.enable_steady_tick(std::time::Duration::from_millis(120));
        pb
    }

    /// A progress bar over `len` bytes (a restore streaming an artifact of known size),
    /// hidden like [`Output::progress`].
    pub fn bytes_progress(&self, len: u64, what: &str) -> ProgressBar {
        let pb = self.progress(len.max(1), what);
        if let Ok(style) = ProgressStyle::with_template(
            "{msg:>18} [{bar:32}] {bytes}/{total_bytes} ({bytes_per_sec}, eta {eta})",
        ) {
            pb.set_style(style.progress_chars("=> "));
        }
        pb
    }

    /// A progress bar for `len` units of work (`len == 0`: a spinner), hidden when
    /// stderr is not a terminal or with `--json`.
    pub fn progress(&self, len: u64, what: &str) -> ProgressBar {
        let pb = if len == 0 {
            ProgressBar::new_spinner()
        } else {
            ProgressBar::new(len)
        };
        if self.json || !std::io::stderr().is_terminal() {
            pb.set_draw_target(ProgressDrawTarget::hidden());
        }
        let template = if len == 0 {
            "{spinner} {msg} {bytes} ({bytes_per_sec}) {elapsed}"
        } else {
            "{msg:>18} [{bar:32}] {pos}/{len} ({rate}/s, eta {eta})"
        };
        if let Ok(style) = ProgressStyle::with_template(template) {
            pb.set_style(
                style
                    .with_key(
                        "rate",
                        |s: &indicatif::ProgressState, w: &mut dyn std::fmt::Write| {
                            let _ = write!(w, "{:.0}", s.per_sec());
                        },
                    )
                    .progress_chars("=> "),
            );
        }
        pb.set_message(what.to_string());
        pb
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicUsize, Ordering};

    static NOTES: AtomicUsize = AtomicUsize::new(0);

    fn count(note: &str) {
        assert_eq!(note, "post snapshot not captured: x");
        NOTES.fetch_add(1, Ordering::SeqCst);
    }

    #[test]
    fn a_note_goes_to_the_callers_sink_and_never_into_json_output() {
        let note = "post snapshot not captured: x";
        Output::new(false).note(note);
        assert_eq!(NOTES.load(Ordering::SeqCst), 0, "no sink: the log only");
        Output::new(false).with_notes(count).note(note);
        assert_eq!(NOTES.load(Ordering::SeqCst), 1);
        Output::new(true).with_notes(count).note(note);
        assert_eq!(
            NOTES.load(Ordering::SeqCst),
            1,
            "--json: the result says it"
        );
    }
}
