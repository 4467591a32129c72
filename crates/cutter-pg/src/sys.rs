//! The few operating-system calls the throwaway cluster needs that std does not offer:
//! the effective uid, signals to the server process, the parent-death signal and an
//! exit hook. System calls go through rustix; the two `unsafe` blocks left (listed in
//! ARCHITECTURE.md) are `pre_exec`, which std marks unsafe whatever the closure does,
//! and `atexit`, which rustix does not wrap.

use std::os::unix::process::CommandExt;
use std::process::Command;

use rustix::process::{Pid, Signal};

/// The effective user id of this process.
pub(crate) fn effective_uid() -> u32 {
    rustix::process::geteuid().as_raw()
}

/// Sends `signal` to process `pid`. Returns whether the signal was delivered.
pub(crate) fn send_signal(pid: u32, signal: Signal) -> bool {
    // Pid is positive by construction: 0 and negative pids address process groups, which
    // this never does.
    let Some(pid) = i32::try_from(pid).ok().and_then(Pid::from_raw) else {
        return false;
    };
    rustix::process::kill_process(pid, signal).is_ok()
}

/// The fast-shutdown signal of the postmaster (`pg_ctl stop -m fast`).
pub(crate) const SIGINT: Signal = Signal::INT;
/// The immediate-shutdown signal of the postmaster (`pg_ctl stop -m immediate`).
pub(crate) const SIGQUIT: Signal = Signal::QUIT;
/// The last resort.
pub(crate) const SIGKILL: Signal = Signal::KILL;

/// Makes the child receive SIGQUIT (postmaster: immediate shutdown) when the thread that
/// spawned it exits. The cluster spawns servers from a keeper thread that lives as long as
/// the process, so in effect: when this process dies, however it dies, its servers stop.
pub(crate) fn quit_with_parent(cmd: &mut Command) {
    let parent = i32::try_from(std::process::id())
        .ok()
        .and_then(Pid::from_raw);
    #[allow(unsafe_code)]
    // SAFETY: the closure runs in the forked child before exec; it makes two raw system
    // calls (prctl, getppid; rustix's linux_raw backend, no libc state, no locks) and
    // allocates nothing. It runs after std has applied uid/gid, so the credential change
    // does not clear the setting.
    unsafe {
        cmd.pre_exec(move || {
            rustix::process::set_parent_process_death_signal(Some(Signal::QUIT))?;
            // The parent may have died between fork and prctl.
            if rustix::process::getppid() != parent {
                return Err(std::io::Error::other("parent exited before exec"));
            }
            Ok(())
        });
    }
}

/// Runs `hook` when the process exits normally (returning from main, `process::exit`),
/// as the test harness does after the last test.
#[cfg_attr(not(feature = "testing"), allow(dead_code))]
pub(crate) fn at_exit(hook: extern "C" fn()) -> bool {
    #[allow(unsafe_code)]
    // SAFETY: atexit stores a function pointer with 'static lifetime; `hook` is a plain
    // extern "C" fn that catches its own panics. rustix has no atexit.
    unsafe {
        libc::atexit(hook) == 0
    }
}
