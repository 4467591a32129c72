//! Files that matter, written atomically: a temp file named `.<final name>.partial-<pid>`
//! in the same directory, fsync, a no-replace link to the final name, unlink of the temp
//! name, fsync of the directory. A file under its final name is therefore always
//! complete, and an existing file is never replaced. Temp files left behind by a crash
//! carry the pid of their writer, so [`remove_stale_partials`] can tell them from live
//! ones.

use std::fs::{self, File, OpenOptions};
use std::io;
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};

use crate::error::{Error, Result};

const PARTIAL_MARK: &str = ".partial-";

/// `.<name>.partial-<pid>` in `dir`.
pub(crate) fn partial_path(dir: &Path, name: &str) -> PathBuf {
    dir.join(format!(".{name}{PARTIAL_MARK}{}", std::process::id()))
}

/// A temp file that is removed when dropped, unless it was committed.
#[derive(Debug)]
pub(crate) struct PartialFile {
    path: PathBuf,
    final_path: PathBuf,
    armed: bool,
}

impl PartialFile {
    /// Creates `.<name>.partial-<pid>` in `dir` (mode 0600, must not exist) for the
    /// final file `dir/name`, refusing if the final file already exists.
    pub(crate) fn create(dir: &Path, name: &str) -> Result<(Self, File)> {
        let final_path = dir.join(name);
        refuse_existing(&final_path)?;
        let path = partial_path(dir, name);
        // A leftover temp of a dead process that had our pid: ours to replace.
        if path.exists() {
            fs::remove_file(&path).map_err(|e| Error::io("removing stale", &path, e))?;
        }
        let file = OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .open(&path)
            .map_err(|e| state_dir_error(dir, &path, e))?;
        Ok((
            Self {
                path,
                final_path,
                armed: true,
            },
            file,
        ))
    }

    pub(crate) fn path(&self) -> &Path {
        &self.path
    }

    /// Links the (already fsynced) temp file to its final name without replacing an
    /// existing file, then removes the temp name. The caller fsyncs the directory.
    pub(crate) fn commit(mut self) -> Result<PathBuf> {
        match fs::hard_link(&self.path, &self.final_path) {
            Ok(()) => {}
            Err(e) if e.kind() == io::ErrorKind::AlreadyExists => {
                return Err(Error::ArtifactExists {
                    path: self.final_path.clone(),
                })
            }
            Err(e) => return Err(Error::io("linking", &self.final_path, e)),
        }
        self.armed = false;
        // The final name is in place; a failure to drop the temp name leaves a second
        // link to the same complete file, which remove_stale_partials cleans up.
        let _ = fs::remove_file(&self.path);
        Ok(self.final_path.clone())
    }
}

impl Drop for PartialFile {
    fn drop(&mut self) {
        if self.armed {
            let _ = fs::remove_file(&self.path);
        }
    }
}

/// Writes `bytes` to `dir/name` atomically (temp + fsync + no-replace link + dir fsync).
pub(crate) fn write_new(dir: &Path, name: &str, bytes: &[u8]) -> Result<PathBuf> {
    use std::io::Write;
    let (partial, mut file) = PartialFile::create(dir, name)?;
    file.write_all(bytes)
        .map_err(|e| Error::io("writing", partial.path(), e))?;
    file.sync_all()
        .map_err(|e| Error::io("syncing", partial.path(), e))?;
    drop(file);
    let path = partial.commit()?;
    sync_dir(dir)?;
    Ok(path)
}

/// Refuses if `path` exists (as anything, even a dangling symlink).
pub(crate) fn refuse_existing(path: &Path) -> Result<()> {
    match fs::symlink_metadata(path) {
        Ok(_) => Err(Error::ArtifactExists {
            path: path.to_path_buf(),
        }),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(()),
        Err(e) => Err(Error::io("checking", path, e)),
    }
}

/// fsyncs a directory so a rename or link in it is durable.
pub(crate) fn sync_dir(dir: &Path) -> Result<()> {
    File::open(dir)
        .and_then(|d| d.sync_all())
        .map_err(|e| Error::io("syncing directory", dir, e))
}

fn state_dir_error(dir: &Path, file: &Path, e: io::Error) -> Error {
    let problem = match e.kind() {
        io::ErrorKind::NotFound => "does not exist",
        io::ErrorKind::PermissionDenied => "is not writable",
        io::ErrorKind::ReadOnlyFilesystem => "is on a read-only file system",
        io::ErrorKind::NotADirectory => "is not a directory",
        _ => {
            if e.raw_os_error() == Some(30) {
                "is on a read-only file system"
            } else {
                return Error::io("creating", file, e);
            }
        }
    };
    Error::StateDir {
        path: dir.to_path_buf(),
        problem,
        source: e,
    }
}

/// Checks that `dir` is an existing, writable directory, by creating, syncing and
/// removing a probe file in it.
pub(crate) fn check_writable_dir(dir: &Path) -> Result<()> {
    match fs::metadata(dir) {
        Ok(m) if m.is_dir() => {}
        Ok(_) => {
            return Err(Error::StateDir {
                path: dir.to_path_buf(),
                problem: "is not a directory",
                source: io::Error::from(io::ErrorKind::NotADirectory),
            })
        }
        Err(e) => {
            return Err(Error::StateDir {
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
        .map_err(|e| Error::io("syncing", probe.path(), e))?;
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

/// Removes the temp files (`.<name>.partial-<pid>`) in `dir` whose writing process is
/// no longer alive, e.g. after `kill -9` of cutter in the middle of a backup. Temp files
/// of live processes are left alone and listed. Temp files only ever hold ciphertext,
/// but are never complete artifacts: nothing trusts a file that is not under its final
/// name with a matching manifest.
pub fn remove_stale_partials(dir: &Path) -> Result<StalePartials> {
    let mut out = StalePartials::default();
    let entries = fs::read_dir(dir).map_err(|e| Error::StateDir {
        path: dir.to_path_buf(),
        problem: "cannot be listed",
        source: e,
    })?;
    for entry in entries {
        let entry = entry.map_err(|e| Error::io("listing", dir, e))?;
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
                Err(e) => return Err(Error::io("removing", &path, e)),
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
pub(crate) fn partial_pid(name: &str) -> Option<u32> {
    if !name.starts_with('.') {
        return None;
    }
    let (_, pid) = name.rsplit_once(PARTIAL_MARK)?;
    if pid.is_empty() || !pid.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    pid.parse().ok()
}

/// Whether a process with this pid exists (signal 0 probe). Our own pid is alive.
pub(crate) fn pid_alive(pid: u32) -> bool {
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
        // Exists but belongs to someone else.
        Err(e) => e == rustix::io::Errno::PERM,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn partial_names_round_trip() {
        let p = partial_path(Path::new("/x"), "r1.dump.pgp");
        let name = p.file_name().unwrap().to_str().unwrap();
        assert_eq!(partial_pid(name), Some(std::process::id()));
        assert_eq!(partial_pid("r1.dump.pgp"), None);
        assert_eq!(partial_pid(".r1.dump.pgp.partial-"), None);
        assert_eq!(partial_pid(".r1.dump.pgp.partial-12x"), None);
        assert_eq!(partial_pid("r1.partial-12"), None);
    }

    #[test]
    fn atomic_write_never_overwrites() {
        let dir = tempfile::tempdir().unwrap();
        write_new(dir.path(), "a.json", b"one").unwrap();
        let err = write_new(dir.path(), "a.json", b"two").unwrap_err();
        assert!(matches!(err, Error::ArtifactExists { .. }), "{err}");
        assert_eq!(fs::read(dir.path().join("a.json")).unwrap(), b"one");
        // No temp file left behind.
        let names: Vec<_> = fs::read_dir(dir.path())
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        assert_eq!(names.len(), 1, "{names:?}");
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
