//! The CLI's error type and its documented exit codes.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

/// Exit codes scripts can trust.
pub mod exit {
    /// Success.
    pub const OK: u8 = 0;
    /// The operation failed (a check, a phase, a verification).
    pub const FAILURE: u8 = 1;
    /// Bad usage: unknown flag or config key, missing argument, malformed input file.
    pub const USAGE: u8 = 2;
    /// Refused: by the gate, a lock held by someone else, a claim, a safety rule.
    pub const REFUSED: u8 = 3;
    /// A HOLD is in place (written by this command, or blocking it).
    pub const HELD: u8 = 4;
    /// SIGINT stopped a run (128 + 2): its phase rolled back, the run is held.
    pub const SIGINT: u8 = 130;
    /// SIGTERM stopped a run (128 + 15): its phase rolled back, the run is held.
    pub const SIGTERM: u8 = 143;
}

/// Result alias.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Everything the CLI reports as an error.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// Wrong usage or configuration.
    #[error("{0}")]
    Usage(String),
    /// A file could not be read or written.
    #[error("{}: {source}", path.display())]
    Io {
        /// The file.
        path: PathBuf,
        /// The OS error.
        source: std::io::Error,
    },
    /// A state file is not what cutter wrote.
    #[error("{}: not a valid cutter state file ({detail}); do not edit state files by hand", path.display())]
    Corrupt {
        /// The file.
        path: PathBuf,
        /// What is wrong.
        detail: String,
    },
    /// Another process holds a lock.
    #[error("{0}")]
    Busy(String),
    /// A safety rule refused the operation.
    #[error("{0}")]
    Refused(String),
    /// A HOLD blocks the operation, or the operation ended in one.
    #[error("{0}")]
    Held(String),
    /// The operation failed.
    #[error("{0}")]
    Failed(String),
    /// A domain rule.
    #[error(transparent)]
    Core(#[from] cutter_core::Error),
    /// A bug: the message says where.
    #[error("internal error: {0}")]
    Internal(String),
    /// SIGINT or SIGTERM stopped a run: the phase in progress rolled back and the run is
    /// held, as after any failure.
    #[error("{message}")]
    Interrupted {
        /// The signal.
        signal: crate::interrupt::Signal,
        /// What happened and what to do next.
        message: String,
    },
}

/// Every `error.code` of the `--json` envelope, with what it means: stable names a
/// script can match on (`docs/cli-json.md` lists the same). [`Error::code`] returns
/// one of them for every error.
pub const ERROR_CODES: &[(&str, &str)] = &[
    (
        "usage",
        "bad usage: an unknown flag or config key, a missing argument, a malformed input file",
    ),
    (
        "invalid_id",
        "a run id, document id or other name does not have the required form",
    ),
    (
        "plan_contract",
        "the cut plan breaks the row contract; the message lists the rows",
    ),
    (
        "io",
        "a file could not be read or written; the message names it",
    ),
    ("state_corrupt", "a state file is not what cutter wrote"),
    (
        "busy",
        "another process holds the state directory's lock or the target's run lock",
    ),
    (
        "refused",
        "a safety rule refused the operation (claim, pin, role, existing file, …)",
    ),
    (
        "gate_refused",
        "the gate refused a live run: kill-switch, HOLD, approvals, target",
    ),
    ("illegal_transition", "the run cannot do this in its state"),
    (
        "held",
        "a HOLD blocks the operation, or the operation ended in one",
    ),
    (
        "failed",
        "the operation failed: a check, a phase, a verification, the database",
    ),
    (
        "interrupted",
        "SIGINT or SIGTERM stopped a run: its phase rolled back, the run is held",
    ),
    ("internal", "a bug in cutter; the message says where"),
];

impl From<cutter_fs::Error> for Error {
    fn from(e: cutter_fs::Error) -> Self {
        match e {
            cutter_fs::Error::Exists { path } => Error::Refused(format!(
                "{} already exists; cutter never replaces it — choose another path or move it away",
                path.display()
            )),
            cutter_fs::Error::Dir { path, source, .. }
            | cutter_fs::Error::Io { path, source, .. } => Error::Io { path, source },
        }
    }
}

impl Error {
    /// An I/O error on `path`.
    pub fn io(path: &Path, source: std::io::Error) -> Self {
        Error::Io {
            path: path.to_path_buf(),
            source,
        }
    }
    /// An internal error.
    pub fn internal(msg: impl Into<String>) -> Self {
        Error::Internal(msg.into())
    }
    /// The exit code for this error.
    pub fn exit_code(&self) -> u8 {
        match self {
            Error::Usage(_)
            | Error::Core(cutter_core::Error::Contract(_))
            | Error::Core(cutter_core::Error::InvalidId { .. }) => exit::USAGE,
            Error::Busy(_)
            | Error::Refused(_)
            | Error::Core(cutter_core::Error::Gate(_))
            | Error::Core(cutter_core::Error::Transition(_)) => exit::REFUSED,
            Error::Held(_) => exit::HELD,
            Error::Io { .. } | Error::Corrupt { .. } | Error::Failed(_) | Error::Internal(_) => {
                exit::FAILURE
            }
            Error::Interrupted { signal, .. } => signal.exit_code(),
        }
    }
    /// The stable `error.code` of `--json` (one of [`ERROR_CODES`]). The match names
    /// every variant: a new error does not compile until it has a code.
    pub fn code(&self) -> &'static str {
        use cutter_core::Error as Core;
        match self {
            Error::Usage(_) => "usage",
            Error::Io { .. } => "io",
            Error::Corrupt { .. } => "state_corrupt",
            Error::Busy(_) => "busy",
            Error::Refused(_) => "refused",
            Error::Held(_) => "held",
            Error::Failed(_) => "failed",
            Error::Core(Core::InvalidId { .. }) => "invalid_id",
            Error::Core(Core::Contract(_)) => "plan_contract",
            Error::Core(Core::Gate(_)) => "gate_refused",
            Error::Core(Core::Transition(_)) => "illegal_transition",
            Error::Internal(_) => "internal",
            Error::Interrupted { .. } => "interrupted",
        }
    }
    /// A stable kind name for `--json`.
    pub fn kind(&self) -> &'static str {
        if let Error::Interrupted { .. } = self {
            return "interrupted";
        }
        match self.exit_code() {
            exit::USAGE => "usage",
            exit::REFUSED => "refused",
            exit::HELD => "held",
            _ => "failure",
        }
    }
}

impl From<Error> for ExitCode {
    fn from(e: Error) -> Self {
        ExitCode::from(e.exit_code())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// One error of every kind the CLI returns.
    fn one_of_each() -> Vec<Error> {
        use cutter_core::Error as Core;
        let io = || std::io::Error::other("x");
        vec![
            Error::Usage("u".into()),
            Error::Io {
                path: "f".into(),
                source: io(),
            },
            Error::Corrupt {
                path: "f".into(),
                detail: "d".into(),
            },
            Error::Busy("b".into()),
            Error::Refused("r".into()),
            Error::Held("h".into()),
            Error::Failed("f".into()),
            Error::Core(Core::InvalidId {
                kind: "run id",
                value: "x y".into(),
                rule: "no spaces".into(),
            }),
            Error::Core(Core::Contract(cutter_core::ContractReport::default())),
            Error::Core(Core::Gate(cutter_core::GateRefusal { reasons: vec![] })),
            Error::Core(Core::Transition(
                cutter_core::RunMachine::new(
                    cutter_core::RunId::new("r").unwrap(),
                    cutter_core::Mode::Live,
                    cutter_core::Phase::LifecycleEnact,
                    cutter_core::KillSwitch::Engaged,
                )
                .apply(&cutter_core::Event::Released)
                .unwrap_err(),
            )),
            Error::Internal("i".into()),
            Error::Interrupted {
                signal: crate::interrupt::Signal::TERM,
                message: "m".into(),
            },
        ]
    }

    #[test]
    fn every_error_has_a_listed_code_and_the_codes_are_unique() {
        let listed: Vec<&str> = ERROR_CODES.iter().map(|(c, _)| *c).collect();
        let mut unique = listed.clone();
        unique.sort_unstable();
        unique.dedup();
        assert_eq!(unique.len(), listed.len(), "duplicate codes in {listed:?}");
        let used: Vec<&str> = one_of_each().iter().map(Error::code).collect();
        for c in &used {
            assert!(listed.contains(c), "{c} is not in ERROR_CODES");
        }
        // No listed code is dead: each is what some error returns.
        for c in &listed {
            assert!(
                used.contains(c),
                "ERROR_CODES lists {c}, which no error returns"
            );
        }
    }

    #[test]
    fn kinds_and_exit_codes_agree() {
        for e in one_of_each() {
            let expected = match e.exit_code() {
                exit::USAGE => "usage",
                exit::REFUSED => "refused",
                exit::HELD => "held",
                exit::SIGINT | exit::SIGTERM => "interrupted",
                _ => "failure",
            };
            assert_eq!(e.kind(), expected, "{e:?}");
        }
    }
}
