//! Output: a human summary on stdout, or one JSON document with `--json`; logs and
//! progress on stderr. Progress bars are hidden when stderr is not a terminal.

use std::io::IsTerminal;

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use serde_json::{json, Value};

use crate::error::CliError;

/// How to print.
#[derive(Debug, Clone, Copy)]
pub struct Output {
    /// `--json`.
    pub json: bool,
}

impl Output {
    /// Prints a result: `human` unless `--json`, then `{"ok": true, ...data}`.
    pub fn emit(&self, human: &str, data: Value) {
        if self.json {
            let mut obj = json!({"ok": true});
            if let (Some(o), Value::Object(d)) = (obj.as_object_mut(), data) {
                o.extend(d);
            }
            println!("{}", serde_json::to_string_pretty(&obj).unwrap_or_default());
        } else if !human.is_empty() {
            println!("{}", human.trim_end());
        }
    }

    /// Prints an error: to stderr for humans, as `{"ok": false, "error": …}` on stdout
    /// with `--json` (and a one-line copy on stderr).
    pub fn error(&self, e: &CliError) {
        if self.json {
            let v = json!({"ok": false, "error": {"kind": e.kind(), "exit_code": e.exit_code(), "message": e.to_string()}});
            println!("{}", serde_json::to_string_pretty(&v).unwrap_or_default());
        }
        eprintln!("cutter: {e}");
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
            "{msg:>18} [{bar:32}] {pos}/{len} ({per_sec}, eta {eta})"
        };
        if let Ok(style) = ProgressStyle::with_template(template) {
            pb.set_style(style.progress_chars("=> "));
        }
        pb.set_message(what.to_string());
        pb
    }
}
