//! The few operating-system calls the throwaway cluster needs that std does not offer:
//! the effective uid, signals to the server process, the parent-death signal and an
//! exit hook. Each `unsafe` block is a single libc call with its safety argument.

#![allow(unsafe_code)]

use std::os::unix::process::CommandExt;
use std::process::Command;

/// The effective user id of this process.
pub(crate) fn effective_uid() -> u32 {
    // SAFETY: geteuid has no preconditions, cannot fail and touches no memory of ours.
    unsafe { libc::geteuid() }
}

/// Sends `signal` to process `pid`. Returns whether the signal was delivered.
pub(crate) fn send_signal(pid: u32, signal: i32) -> bool {
    let Ok(pid) = libc::pid_t::try_from(pid) else {
        return false;
    };
    if pid <= 0 {
        // 0 and negative pids address process groups; never do that.
        return false;
    }
    // SAFETY: kill takes plain integers and touches no memory of ours; pid is a single,
    // positive process id (our own child), never a group.
    unsafe { libc::kill(pid, signal) == 0 }
}

/// The fast-shutdown signal of the postmaster (`pg_ctl stop -m fast`).
pub(crate) const SIGINT: i32 = libc::SIGINT;
/// The immediate-shutdown signal of the postmaster (`pg_ctl stop -m immediate`).
pub(crate) const SIGQUIT: i32 = libc::SIGQUIT;
/// The last resort.
pub(crate) const SIGKILL: i32 = libc::SIGKILL;

/// Makes the child receive SIGQUIT (postmaster: immediate shutdown) when the thread that
/// spawned it exits. The cluster spawns servers from a keeper thread that lives as long as
/// the process, so in effect: when this process dies, however it dies, its servers stop.
pub(crate) fn quit_with_parent(cmd: &mut Command) {
    // SAFETY: the closure runs in the forked child before exec; it only calls prctl and
    // getppid, both async-signal-safe, and allocates nothing. It runs after std has
    // applied uid/gid, so the credential change does not clear the setting.
    let parent = libc::pid_t::try_from(std::process::id()).unwrap_or(0);
    unsafe {
        cmd.pre_exec(move || {
            if libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGQUIT, 0, 0, 0) != 0 {
                return Err(std::io::Error::last_os_error());
            }
            // The parent may have died between fork and prctl.
            if libc::getppid() != parent {
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
    // SAFETY: atexit stores a function pointer with 'static lifetime; `hook` is a plain
    // extern "C" fn that catches its own panics.
    unsafe { libc::atexit(hook) == 0 }
}
