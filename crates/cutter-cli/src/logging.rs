//! Logs: on stderr, and with `--log-file` also appended to a file, as text or JSON lines
//! (`--log-format`). `-q` keeps errors only, the default shows cutter's information
//! and warnings, `-v` adds debug and `-vv` trace; `RUST_LOG` decides only when neither
//! flag is given. Other crates stay at warnings unless `RUST_LOG` names them: the
//! database driver's debug output would show bound parameters. Logs never carry a
//! secret: cutter logs no password, passphrase or key material at any level.

use std::fs::OpenOptions;
use std::io::IsTerminal;
use std::os::unix::fs::OpenOptionsExt;
use std::path::Path;

use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::util::SubscriberInitExt;
use tracing_subscriber::{EnvFilter, Layer, Registry};

use crate::cli::LogFormat;
use crate::error::{CliError, Result};

/// The crates whose logs `-v`/`-q` set (the binary's own target is `cutter`): every
/// library crate of the workspace but the test kit.
const OURS: [&str; 12] = [
    "cutter",
    "cutter_cli",
    "cutter_core",
    "cutter_doc",
    "cutter_pg",
    "cutter_fs",
    "cutter_openpgp",
    "cutter_backup",
    "cutter_governance",
    "cutter_compensation",
    "cutter_run",
    "xtask",
];

/// The filter for `-v` counted `verbose` times, or `-q`: warnings from everything else,
/// and for cutter's crates `error` (`-q`), `info` (default), `debug` (`-v`) or `trace`.
pub fn filter_directives(verbose: u8, quiet: bool) -> String {
    let level = match (quiet, verbose) {
        (true, _) => "error",
        (false, 0) => "info",
        (false, 1) => "debug",
        (false, _) => "trace",
    };
    let base = if quiet { "error" } else { "warn" };
    let mut d = format!("{base},pgp=off,html5ever=off,markup5ever=off,selectors=off");
    for c in OURS {
        d.push_str(&format!(",{c}={level}"));
    }
    d
}

/// How logging is set up.
#[derive(Debug, Clone)]
pub struct LogSettings<'a> {
    /// `-v` count.
    pub verbose: u8,
    /// `-q`.
    pub quiet: bool,
    /// `--log-format`.
    pub format: LogFormat,
    /// `--log-file`.
    pub file: Option<&'a Path>,
    /// `RUST_LOG`, used only without `-v`/`-q`.
    pub rust_log: Option<String>,
}

/// Installs the subscriber. The log file is opened for appending (created private, 0600;
/// never through a symlink); a file that cannot be opened is an error before the command
/// runs.
pub fn init(s: &LogSettings<'_>) -> Result<()> {
    let directives = match (&s.rust_log, s.verbose, s.quiet) {
        (Some(env), 0, false) if !env.trim().is_empty() => env.clone(),
        _ => filter_directives(s.verbose, s.quiet),
    };
    let filter = || {
        EnvFilter::try_new(&directives).map_err(|e| {
            CliError::Usage(format!("RUST_LOG={directives:?} is not a log filter: {e}"))
        })
    };
    let ansi = std::io::stderr().is_terminal() && std::env::var_os("NO_COLOR").is_none();
    let mut layers = vec![layer(s.format, std::io::stderr, ansi)
        .with_filter(filter()?)
        .boxed()];
    if let Some(path) = s.file {
        let f = OpenOptions::new()
            .create(true)
            .append(true)
            .mode(0o600)
            .custom_flags(rustix::fs::OFlags::NOFOLLOW.bits() as i32)
            .open(path)
            .map_err(|e| {
                CliError::Usage(format!(
                    "--log-file {}: cannot open it for appending: {e}",
                    path.display()
                ))
            })?;
        layers.push(
            layer(s.format, std::sync::Mutex::new(f), false)
                .with_filter(filter()?)
                .boxed(),
        );
    }
    // A second initialization (a test calling twice) keeps the first.
    let _ = tracing_subscriber::registry().with(layers).try_init();
    Ok(())
}

fn layer<W>(format: LogFormat, writer: W, ansi: bool) -> Box<dyn Layer<Registry> + Send + Sync>
where
    W: for<'w> tracing_subscriber::fmt::MakeWriter<'w> + Send + Sync + 'static,
{
    let base = tracing_subscriber::fmt::layer().with_writer(writer);
    match format {
        LogFormat::Text => base.with_ansi(ansi).with_target(false).boxed(),
        LogFormat::Json => base
            .with_ansi(false)
            .json()
            .with_current_span(false)
            .with_span_list(false)
            .boxed(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn flags_set_our_level_and_leave_other_crates_at_warnings() {
        let d = filter_directives(0, false);
        assert!(d.starts_with("warn,"), "{d}");
        assert!(d.contains(",cutter_pg=info"), "{d}");
        assert!(filter_directives(1, false).contains(",cutter_backup=debug"));
        assert!(filter_directives(2, false).contains(",cutter=trace"));
        let q = filter_directives(3, true);
        assert!(
            q.starts_with("error,") && q.contains(",cutter_cli=error"),
            "{q}"
        );
        assert!(!q.contains("=info") && !q.contains("=debug"), "{q}");
        assert!(EnvFilter::try_new(&d).is_ok());
    }

    /// A crate left out of `OURS` would log at warnings only, whatever `-v` says (the run
    /// orchestrator's information once went unseen that way).
    #[test]
    fn every_crate_of_the_workspace_is_one_of_ours() {
        let crates = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
        let mut missing = Vec::new();
        for entry in std::fs::read_dir(&crates).unwrap() {
            let name = entry
                .unwrap()
                .file_name()
                .to_string_lossy()
                .replace('-', "_");
            if name.starts_with("cutter_")
                && name != "cutter_testkit"
                && !OURS.contains(&name.as_str())
            {
                missing.push(name);
            }
        }
        assert!(missing.is_empty(), "not in OURS: {missing:?}");
        assert!(filter_directives(1, false).contains(",cutter_run=debug"));
    }
}
