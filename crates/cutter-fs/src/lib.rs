//! Files that matter, written atomically, and the temp files a crash leaves behind: the
//! one implementation the backup and the CLI share (pgBackRest's model).
//!
//! ```
//! use cutter_fs::{write, Replace};
//!
//! let dir = tempfile::tempdir()?;
//! let artifact = dir.path().join("r-1.manifest.json");
//! write(&artifact, b"{\"run\": \"r-1\"}", Replace::No)?;
//! // An artifact is never replaced; a state file may be.
//! assert!(write(&artifact, b"{}", Replace::No).is_err());
//! write(&artifact, b"{}", Replace::Yes)?;
//! assert_eq!(std::fs::read(&artifact)?, b"{}");
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
//!
//! A file is first written under a temp name `.<final name>.partial-<pid>` in its own
//! directory (created new, mode 0600, `O_NOFOLLOW`), fsynced, then given its final name
//! — by a hard link that never replaces an existing entry ([`Replace::No`], the default
//! of everything that writes artifacts) or by a rename over it ([`Replace::Yes`], state
//! files that are meant to change) — and the directory is fsynced. So a file under its
//! final name is always complete, even after a crash.
//!
//! *Invariants:* nothing is ever written through a symlink: one planted at the temp name
//! is unlinked (never followed) and the temp is created with `O_EXCL | O_NOFOLLOW`; one
//! at the final name is refused ([`Replace::No`]) or replaced as a directory entry
//! ([`Replace::Yes`]), its target untouched. Temp names carry the writer's pid, so
//! [`remove_stale_partials`] tells a crashed writer's from a live one's. One process
//! writes a given final name from one thread at a time. No `unsafe`: system calls go
//! through rustix.

#![warn(missing_docs)]

use std::fs::{self, File, OpenOptions};
use std::io::{self, Write};
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};

const PARTIAL_MARK: &str = ".partial-";

/// Whether giving a file its final name may replace a file already there.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Replace {
    /// Refuse if anything (a file, a directory, even a dangling symlink) has the name.
    No,
    /// Replace the directory entry (a symlink there is replaced, never followed).
    Yes,
}

/// What went wrong, on which path.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The final name is taken and [`Replace::No`] was asked for.
    #[error("{} already exists and is never replaced", path.display())]
    Exists {
        /// The existing entry.
        path: PathBuf,
    },
    /// The directory to write in is missing, not a directory, or not writable.
    #[error("directory {}: {problem} ({source})", path.display())]
    Dir {
        /// The directory.
        path: PathBuf,
        /// What is wrong, e.g. "does not exist".
        problem: &'static str,
        /// The OS error.
        #[source]
        source: io::Error,
    },
    /// Any other I/O failure.
    #[error("{action} {}: {source}", path.display())]
    Io {
        /// What was being done ("writing", "syncing", …).
        action: &'static str,
        /// On which path.
        path: PathBuf,
        /// The OS error.
        #[source]
        source: io::Error,
    },
}

/// `Result` with this crate's [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;

fn io_err(action: &'static str, path: &Path, source: io::Error) -> Error {
    Error::Io {
        action,
        path: path.to_path_buf(),
        source,
    }
}

/// `.<name>.partial-<pid>` in `dir`: the temp name of `dir/name` while this process
/// writes it.
pub fn partial_path(dir: &Path, name: &str) -> PathBuf {
    dir.join(format!(".{name}{PARTIAL_MARK}{}", std::process::id()))
}

/// The directory of `path` (`.` for a bare file name) and its file name.
fn split(path: &Path) -> Result<(&Path, &str)> {
    let dir = path
        .parent()
        .filter(|d| !d.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    let name = path.file_name().and_then(|n| n.to_str()).ok_or_else(|| {
        io_err(
            "naming",
            path,
            io::Error::new(io::ErrorKind::InvalidInput, "no UTF-8 file name"),
        )
    })?;
    Ok((dir, name))
}

/// A temp file that is removed when dropped, unless it was committed.
#[derive(Debug)]
pub struct PartialFile {
    path: PathBuf,
    armed: bool,
}

impl PartialFile {
    /// Creates `.<name>.partial-<pid>` in `dir` (mode 0600, `O_EXCL | O_NOFOLLOW`). An
    /// entry already at that name was left by a dead process that had our pid, or planted:
    /// it is unlinked (a symlink is removed, never followed) before the create.
    pub fn create(dir: &Path, name: &str) -> Result<(Self, File)> {
        let path = partial_path(dir, name);
        if fs::symlink_metadata(&path).is_ok() {
            fs::remove_file(&path).map_err(|e| io_err("removing stale", &path, e))?;
        }
        let file = OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .custom_flags(rustix::fs::OFlags::NOFOLLOW.bits() as i32)
            .open(&path)
            .map_err(|e| dir_error(dir, &path, e))?;
        Ok((Self { path, armed: true }, file))
    }

    /// The temp file.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Gives the (already fsynced) temp file a second, lasting name `to` without
    /// replacing anything there, and fsyncs `to`'s directory. The temp name stays until
    /// this value is dropped or committed.
    pub fn link_as(&self, to: &Path) -> Result<()> {
        match fs::hard_link(&self.path, to) {
            Ok(()) => {}
            Err(e) if e.kind() == io::ErrorKind::AlreadyExists => {
                return Err(Error::Exists {
                    path: to.to_path_buf(),
                })
            }
            Err(e) => return Err(io_err("linking", to, e)),
        }
        sync_dir(split(to)?.0)
    }

    /// Gives the (already fsynced) temp file its final name `to` and drops the temp name:
    /// [`Replace::No`] links (refusing an existing entry), [`Replace::Yes`] renames over
    /// it. The caller fsyncs the directory ([`sync_dir`]), once for several commits.
    pub fn commit(mut self, to: &Path, replace: Replace) -> Result<()> {
        match replace {
            Replace::No => match fs::hard_link(&self.path, to) {
                Ok(()) => {
                    self.armed = false;
                    // The final name is in place; a failure to drop the temp name leaves
                    // a second link to the same complete file, which
                    // remove_stale_partials cleans up.
                    let _ = fs::remove_file(&self.path);
                }
                Err(e) if e.kind() == io::ErrorKind::AlreadyExists => {
                    return Err(Error::Exists {
                        path: to.to_path_buf(),
                    })
                }
                Err(e) => return Err(io_err("linking", to, e)),
            },
            Replace::Yes => {
                fs::rename(&self.path, to).map_err(|e| io_err("renaming", to, e))?;
                self.armed = false;
            }
        }
        Ok(())
    }
}

impl Drop for PartialFile {
    fn drop(&mut self) {
        if self.armed {
            let _ = fs::remove_file(&self.path);
        }
    }
}

/// Writes `bytes` to `path` atomically: temp file, fsync, final name (see [`Replace`]),
/// fsync of the directory. With [`Replace::No`] an existing `path` is refused before
/// anything is written.
pub fn write(path: &Path, bytes: &[u8], replace: Replace) -> Result<()> {
    let (dir, name) = split(path)?;
    if replace == Replace::No {
        refuse_existing(path)?;
    }
    let (partial, mut file) = PartialFile::create(dir, name)?;
    file.write_all(bytes)
        .map_err(|e| io_err("writing", partial.path(), e))?;
    file.sync_all()
        .map_err(|e| io_err("syncing", partial.path(), e))?;
    drop(file);
    partial.commit(path, replace)?;
    sync_dir(dir)
}

/// Refuses if `path` exists (as anything, even a dangling symlink).
pub fn refuse_existing(path: &Path) -> Result<()> {
    match fs::symlink_metadata(path) {
        Ok(_) => Err(Error::Exists {
            path: path.to_path_buf(),
        }),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(()),
        Err(e) => Err(io_err("checking", path, e)),
    }
}

/// fsyncs a directory so a rename or link in it is durable.
pub fn sync_dir(dir: &Path) -> Result<()> {
    File::open(dir)
        .and_then(|d| d.sync_all())
        .map_err(|e| io_err("syncing directory", dir, e))
}

fn dir_error(dir: &Path, file: &Path, e: io::Error) -> Error {
    let problem = match e.kind() {
        io::ErrorKind::NotFound => "does not exist",
        io::ErrorKind::PermissionDenied => "is not writable",
        io::ErrorKind::ReadOnlyFilesystem => "is on a read-only file system",
        io::ErrorKind::NotADirectory => "is not a directory",
        _ => return io_err("creating", file, e),
    };
    Error::Dir {
        path: dir.to_path_buf(),
        problem,
        source: e,
    }
}

/// Checks that `dir` is an existing, writable directory, by creating, syncing and
/// removing a probe file in it.
pub fn check_writable_dir(dir: &Path) -> Result<()> {
    match fs::metadata(dir) {
        Ok(m) if m.is_dir() => {}
        Ok(_) => {
            return Err(Error::Dir {
                path: dir.to_path_buf(),
                problem: "is not a directory",
                source: io::Error::from(io::ErrorKind::NotADirectory),
            })
        }
        Err(e) => {
            return Err(Error::Dir {
                path: dir.to_path_buf(),
                problem: if e.kind() == io::ErrorKind::NotFound {
                    "does not exist"
                } else {
                    "cannot be inspected"
                },
                source: e,
            })
        }
    }
    let (probe, file) = PartialFile::create(dir, ".write-probe")?;
    file.sync_all()
        .map_err(|e| io_err("syncing", probe.path(), e))?;
    drop(file);
    drop(probe);
    Ok(())
}

/// What [`remove_stale_partials`] did.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct StalePartials {
    /// Temp files whose writer is dead; removed.
    pub removed: Vec<PathBuf>,
    /// Temp files whose writer is still running; left alone.
    pub in_use: Vec<PathBuf>,
}

/// Removes the temp files (`.<name>.partial-<pid>`) in `dir` whose writing process is no
/// longer alive, e.g. after `kill -9` in the middle of a backup. Temp files of live
/// processes are left alone and listed. Nothing trusts a file that is not under its
/// final name.
pub fn remove_stale_partials(dir: &Path) -> Result<StalePartials> {
    let mut out = StalePartials::default();
    let entries = fs::read_dir(dir).map_err(|e| Error::Dir {
        path: dir.to_path_buf(),
        problem: "cannot be listed",
        source: e,
    })?;
    for entry in entries {
        let entry = entry.map_err(|e| io_err("listing", dir, e))?;
        let name = entry.file_name();
        let Some(name) = name.to_str() else { continue };
        let Some(pid) = partial_pid(name) else {
            continue;
        };
        let path = entry.path();
        if pid_alive(pid) {
            out.in_use.push(path);
        } else {
            match fs::remove_file(&path) {
                Ok(()) => out.removed.push(path),
                Err(e) if e.kind() == io::ErrorKind::NotFound => {}
                Err(e) => return Err(io_err("removing", &path, e)),
            }
        }
    }
    if !out.removed.is_empty() {
        sync_dir(dir)?;
    }
    out.removed.sort();
    out.in_use.sort();
    Ok(out)
}

/// The pid of a temp file name `.<name>.partial-<pid>`, if it is one.
pub fn partial_pid(name: &str) -> Option<u32> {
    if !name.starts_with('.') {
        return None;
    }
    let (_, pid) = name.rsplit_once(PARTIAL_MARK)?;
    if pid.is_empty() || !pid.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    pid.parse().ok()
}

/// Whether a process with this pid exists (signal 0 probe; a process of another user
/// counts). Our own pid is alive; 0 and pids beyond `i32` are not.
pub fn pid_alive(pid: u32) -> bool {
    if pid == std::process::id() {
        return true;
    }
    let Some(p) = i32::try_from(pid)
        .ok()
        .and_then(rustix::process::Pid::from_raw)
    else {
        return false;
    };
    match rustix::process::test_kill_process(p) {
        Ok(()) => true,
        Err(e) => e == rustix::io::Errno::PERM,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::{symlink, PermissionsExt};

    fn names(dir: &Path) -> Vec<String> {
        let mut v: Vec<_> = fs::read_dir(dir)
            .unwrap()
            .map(|e| e.unwrap().file_name().into_string().unwrap())
            .collect();
        v.sort();
        v
    }

    #[test]
    fn partial_names_round_trip() {
        let p = partial_path(Path::new("/x"), "r1.dump.pgp");
        let name = p.file_name().unwrap().to_str().unwrap();
        assert_eq!(name, format!(".r1.dump.pgp.partial-{}", std::process::id()));
        assert_eq!(partial_pid(name), Some(std::process::id()));
        assert_eq!(partial_pid("r1.dump.pgp"), None);
        assert_eq!(partial_pid(".r1.dump.pgp.partial-"), None);
        assert_eq!(partial_pid(".r1.dump.pgp.partial-12x"), None);
        assert_eq!(partial_pid("r1.partial-12"), None);
    }

    #[test]
    fn no_replace_never_overwrites_and_leaves_no_temp() {
        let dir = tempfile::tempdir().unwrap();
        let a = dir.path().join("a.json");
        write(&a, b"one", Replace::No).unwrap();
        let err = write(&a, b"two", Replace::No).unwrap_err();
        assert!(matches!(err, Error::Exists { .. }), "{err}");
        assert_eq!(fs::read(&a).unwrap(), b"one");
        // The link step refuses too, when the name appears after the early check.
        let (p, mut f) = PartialFile::create(dir.path(), "a.json").unwrap();
        f.write_all(b"three").unwrap();
        let err = p.commit(&a, Replace::No).unwrap_err();
        assert!(matches!(err, Error::Exists { .. }), "{err}");
        assert_eq!(fs::read(&a).unwrap(), b"one");
        assert_eq!(names(dir.path()), ["a.json"]);
    }

    #[test]
    fn replace_yes_replaces_with_mode_0600_and_leaves_no_temp() {
        let dir = tempfile::tempdir().unwrap();
        let a = dir.path().join("x.json");
        write(&a, b"one", Replace::Yes).unwrap();
        write(&a, b"two", Replace::Yes).unwrap();
        assert_eq!(fs::read(&a).unwrap(), b"two");
        assert_eq!(
            fs::metadata(&a).unwrap().permissions().mode() & 0o777,
            0o600
        );
        assert_eq!(names(dir.path()), ["x.json"]);
    }

    /// An attacker who can write the directory plants symlinks at the predictable temp
    /// name and at the final name, both pointing at files of the victim's. Whatever is
    /// asked, neither target changes.
    #[test]
    fn symlinks_at_the_temp_and_final_names_are_never_written_through() {
        let dir = tempfile::tempdir().unwrap();
        let elsewhere = tempfile::tempdir().unwrap();
        let victim_tmp = elsewhere.path().join("victim-tmp");
        let victim_final = elsewhere.path().join("victim-final");
        fs::write(&victim_tmp, b"precious tmp").unwrap();
        fs::write(&victim_final, b"precious final").unwrap();
        let target = dir.path().join("run.json");
        let plant = || {
            let tmp = partial_path(dir.path(), "run.json");
            let _ = fs::remove_file(&tmp);
            symlink(&victim_tmp, &tmp).unwrap();
            if fs::symlink_metadata(&target).is_ok() {
                fs::remove_file(&target).unwrap();
            }
            symlink(&victim_final, &target).unwrap();
        };

        plant();
        let err = write(&target, b"evil", Replace::No).unwrap_err();
        assert!(matches!(err, Error::Exists { .. }), "{err}");

        plant();
        write(&target, b"state", Replace::Yes).unwrap();
        let m = fs::symlink_metadata(&target).unwrap();
        assert!(
            m.file_type().is_file(),
            "the symlink was replaced by a file"
        );
        assert_eq!(fs::read(&target).unwrap(), b"state");

        // A symlink at the temp name, none at the final name.
        plant();
        fs::remove_file(&target).unwrap();
        write(&target, b"new", Replace::No).unwrap();
        assert_eq!(fs::read(&target).unwrap(), b"new");

        assert_eq!(fs::read(&victim_tmp).unwrap(), b"precious tmp");
        assert_eq!(fs::read(&victim_final).unwrap(), b"precious final");
        assert_eq!(names(dir.path()), ["run.json"]);
    }

    #[test]
    fn link_as_keeps_the_temp_and_refuses_an_existing_name() {
        let dir = tempfile::tempdir().unwrap();
        let (p, mut f) = PartialFile::create(dir.path(), "plan").unwrap();
        f.write_all(b"rows").unwrap();
        let kept = dir.path().join("plan.json");
        p.link_as(&kept).unwrap();
        assert!(p.path().exists());
        let err = p.link_as(&kept).unwrap_err();
        assert!(matches!(err, Error::Exists { .. }), "{err}");
        drop(p);
        assert_eq!(names(dir.path()), ["plan.json"]);
        assert_eq!(fs::read(&kept).unwrap(), b"rows");
    }

    #[test]
    fn a_bare_file_name_is_written_in_the_current_directory() {
        assert_eq!(split(Path::new("plan.json")).unwrap().0, Path::new("."));
        assert_eq!(
            split(Path::new("/a/b.json")).unwrap(),
            (Path::new("/a"), "b.json")
        );
    }

    #[test]
    fn stale_partials_of_dead_pids_are_removed_live_ones_kept() {
        let dir = tempfile::tempdir().unwrap();
        // A pid that cannot exist (above the kernel's pid_max of 2^22).
        let dead = dir.path().join(".r1.dump.pgp.partial-99999999");
        let live = partial_path(dir.path(), "r2.dump.pgp");
        let other = dir.path().join("r0.dump.pgp");
        for p in [&dead, &live, &other] {
            fs::write(p, b"x").unwrap();
        }
        let r = remove_stale_partials(dir.path()).unwrap();
        assert_eq!(r.removed, vec![dead.clone()]);
        assert_eq!(r.in_use, vec![live.clone()]);
        assert!(!dead.exists() && live.exists() && other.exists());
    }

    #[test]
    fn pid_alive_probes() {
        assert!(pid_alive(std::process::id()));
        assert!(pid_alive(1), "init exists (EPERM counts as alive)");
        assert!(!pid_alive(0));
        assert!(!pid_alive(99_999_999));
    }

    #[test]
    fn writable_dir_checks() {
        let dir = tempfile::tempdir().unwrap();
        check_writable_dir(dir.path()).unwrap();
        let missing = dir.path().join("nope");
        let err = check_writable_dir(&missing).unwrap_err();
        assert!(err.to_string().contains("does not exist"), "{err}");
        let file = dir.path().join("f");
        fs::write(&file, b"").unwrap();
        let err = check_writable_dir(&file).unwrap_err();
        assert!(err.to_string().contains("not a directory"), "{err}");
    }
}
