//! SIGINT and SIGTERM during `cutter run`: a stop the run handles as a failure of the
//! phase it interrupts. [`install`] turns both signals into a flag (and a cancel request
//! for the statement in flight, see [`set_canceller`]); the run checks the flag before
//! each phase and inside each phase's transaction just before COMMIT ([`check`]), so an
//! interrupted phase rolls back, the run is held as for any failure, and the process
//! exits 128 + the signal's number (130, 143). Other commands keep the default: they
//! die at once, and a transaction they had open rolls back with the connection.

use std::sync::atomic::{AtomicI32, Ordering};
use std::sync::Mutex;

use signal_hook::consts::{SIGINT, SIGTERM};

/// The first signal received, or 0.
static RECEIVED: AtomicI32 = AtomicI32::new(0);

/// Cancels what the run has in flight on the server (the phase's statement).
type Canceller = Box<dyn Fn() + Send>;

static CANCELLER: Mutex<Option<Canceller>> = Mutex::new(None);

/// Catches SIGINT and SIGTERM for the rest of the process: the first one is recorded
/// (a second one changes nothing: the run is already stopping) and cancels the
/// statement in flight. Called once, by `cutter run`; a second call adds nothing.
pub fn install() -> std::io::Result<()> {
    static INSTALLED: std::sync::Once = std::sync::Once::new();
    let mut result = Ok(());
    INSTALLED.call_once(|| {
        result = signal_hook::iterator::Signals::new([SIGINT, SIGTERM]).and_then(|mut signals| {
            std::thread::Builder::new()
                .name("signals".into())
                .spawn(move || {
                    for sig in signals.forever() {
                        if RECEIVED
                            .compare_exchange(0, sig, Ordering::SeqCst, Ordering::SeqCst)
                            .is_ok()
                        {
                            tracing::warn!(
                                "{}: stopping; the phase in progress rolls back, the run is held",
                                name(sig)
                            );
                            if let Ok(c) = CANCELLER.lock() {
                                if let Some(cancel) = c.as_ref() {
                                    cancel();
                                }
                            }
                        }
                    }
                })
                .map(drop)
        });
    });
    result
}

/// Sets (or with `None` clears) what a signal cancels on the server. A signal that came
/// before the canceller was set is caught by [`check`], not by the canceller.
pub fn set_canceller(cancel: Option<Canceller>) {
    if let Ok(mut c) = CANCELLER.lock() {
        *c = cancel;
    }
}

/// The signal received, if any.
pub fn received() -> Option<Signal> {
    match RECEIVED.load(Ordering::SeqCst) {
        0 => None,
        sig => Some(Signal(sig)),
    }
}

/// `Err("interrupted by SIGINT")` once a signal was received: a phase that gets it
/// before its COMMIT rolls back.
pub fn check() -> Result<(), String> {
    match received() {
        None => Ok(()),
        Some(s) => Err(format!("interrupted by {s}")),
    }
}

/// Why a phase failed, beginning with the signal when one was received: the phase's own
/// error follows in parentheses (a statement cancelled by the signal fails with the
/// server's "canceling statement due to user request").
pub fn annotate(reason: String) -> String {
    match received() {
        Some(s) if reason != format!("interrupted by {s}") => {
            format!("interrupted by {s} ({reason})")
        }
        _ => reason,
    }
}

/// A signal that stopped the run.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Signal(i32);

impl Signal {
    /// SIGINT.
    pub const INT: Signal = Signal(SIGINT);
    /// SIGTERM.
    pub const TERM: Signal = Signal(SIGTERM);

    /// The exit code of a process stopped by it, as shells report one killed by it:
    /// 128 + its number (130 for SIGINT, 143 for SIGTERM).
    pub fn exit_code(self) -> u8 {
        u8::try_from(128 + self.0).unwrap_or(u8::MAX)
    }
}

impl std::fmt::Display for Signal {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(name(self.0))
    }
}

fn name(sig: i32) -> &'static str {
    match sig {
        SIGINT => "SIGINT",
        SIGTERM => "SIGTERM",
        _ => "a signal",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exit_codes_are_those_shells_report() {
        assert_eq!(Signal::INT.exit_code(), 130);
        assert_eq!(Signal::TERM.exit_code(), 143);
        assert_eq!(Signal::INT.to_string(), "SIGINT");
        assert_eq!(Signal::TERM.to_string(), "SIGTERM");
    }
}
