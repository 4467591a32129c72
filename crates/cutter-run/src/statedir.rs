//! The state directory the CLI owns: `runs/<run_id>/`, `state/`, `backups/`,
//! `rollback/<run_id>/`, `locks/HOLD`. Files that matter are written atomically by
//! `cutter_fs` (temp + fsync + rename + directory fsync); a run holds an exclusive `flock` on
//! `locks/state.lock` for its whole life, so two runs never share a state directory.

use std::fs::{self, File, OpenOptions};
use std::io::{self, Write};
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};

use cutter_core::{Event, HoldRecord, KillSwitch, RunId};
use rustix::fs::{flock, FlockOperation};
use rustix::io::Errno;
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};
pub use cutter_fs::{pid_alive as process_alive, Replace};

/// Subdirectories created by `cutter init`.
pub const LAYOUT: [&str; 5] = ["runs", "state", "backups", "rollback", "locks"];

/// Writes `bytes` to `path` atomically (see `cutter_fs`): readers see the old or the new
/// file, never a torn one, even after a crash; [`Replace::No`] refuses an existing file.
pub fn write_file(path: &Path, bytes: &[u8], replace: Replace) -> Result<()> {
    Ok(cutter_fs::write(path, bytes, replace)?)
}

/// Serializes `value` as pretty JSON and writes it atomically, replacing the state file
/// it updates.
pub fn write_json<T: Serialize>(path: &Path, value: &T) -> Result<()> {
    let mut bytes = serde_json::to_vec_pretty(value)
        .map_err(|e| Error::internal(format!("serialize {}: {e}", path.display())))?;
    bytes.push(b'\n');
    write_file(path, &bytes, Replace::Yes)
}

/// Reads JSON written by [`write_json`]; `None` if the file does not exist.
pub fn read_json<T: DeserializeOwned>(path: &Path) -> Result<Option<T>> {
    match fs::read(path) {
        Ok(bytes) => serde_json::from_slice(&bytes)
            .map(Some)
            .map_err(|e| Error::Corrupt {
                path: path.to_path_buf(),
                detail: e.to_string(),
            }),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(Error::io(path, e)),
    }
}

/// An opened state directory.
#[derive(Debug, Clone)]
pub struct StateDir {
    root: PathBuf,
}

/// Who holds the state lock, as written into the lock file by its holder.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct LockHolder {
    /// Process id.
    pub pid: u32,
    /// What it is doing (e.g. `run r-…`).
    pub purpose: String,
    /// When it took the lock (RFC 3339).
    pub since: String,
}

/// The exclusive state lock; released when dropped (the kernel also releases it when
/// the process dies, so a crashed holder never blocks forever — but its lock file keeps
/// naming it, which is how a stale holder is detected and reported).
#[derive(Debug)]
pub struct StateLock {
    file: File,
}

impl Drop for StateLock {
    fn drop(&mut self) {
        // Leave a record that the lock was released cleanly.
        let _ = self.file.set_len(0);
        let _ = flock(&self.file, FlockOperation::Unlock);
    }
}

impl StateDir {
    /// Opens an existing state directory, checking its layout.
    pub fn open(root: &Path) -> Result<Self> {
        if !root.is_dir() {
            return Err(Error::Usage(format!(
                "state directory {} does not exist; create it with `cutter init {}`",
                root.display(),
                root.display()
            )));
        }
        for sub in LAYOUT {
            let p = root.join(sub);
            if !p.is_dir() {
                return Err(Error::Usage(format!(
                    "{} is not a cutter state directory ({sub}/ is missing); run `cutter init {}`",
                    root.display(),
                    root.display()
                )));
            }
        }
        Ok(Self {
            root: root.to_path_buf(),
        })
    }

    /// Creates the layout (idempotent), private to the user (0700).
    pub fn create(root: &Path) -> Result<Self> {
        for sub in LAYOUT {
            let p = root.join(sub);
            fs::create_dir_all(&p).map_err(|e| Error::io(&p, e))?;
        }
        for p in std::iter::once(root.to_path_buf()).chain(LAYOUT.iter().map(|s| root.join(s))) {
            fs::set_permissions(&p, fs::Permissions::from_mode(0o700))
                .map_err(|e| Error::io(&p, e))?;
        }
        Self::open(root)
    }

    /// The root.
    pub fn root(&self) -> &Path {
        &self.root
    }
    /// `backups/`.
    pub fn backups(&self) -> PathBuf {
        self.root.join("backups")
    }
    /// `runs/<run_id>/`, created on demand.
    pub fn run_dir(&self, run: &RunId) -> Result<PathBuf> {
        let p = self.root.join("runs").join(run.as_str());
        fs::create_dir_all(&p).map_err(|e| Error::io(&p, e))?;
        Ok(p)
    }
    /// `rollback/<run_id>/`, created on demand (pre.json, post.json).
    pub fn rollback_dir(&self, run: &RunId) -> Result<PathBuf> {
        let p = self.root.join("rollback").join(run.as_str());
        fs::create_dir_all(&p).map_err(|e| Error::io(&p, e))?;
        Ok(p)
    }
    /// Run ids that have a directory under `runs/`, sorted.
    pub fn run_ids(&self) -> Result<Vec<RunId>> {
        let dir = self.root.join("runs");
        let mut ids = Vec::new();
        for entry in fs::read_dir(&dir).map_err(|e| Error::io(&dir, e))? {
            let entry = entry.map_err(|e| Error::io(&dir, e))?;
            if let Some(id) = entry.file_name().to_str().and_then(|n| RunId::new(n).ok()) {
                ids.push(id);
            }
        }
        ids.sort();
        Ok(ids)
    }

    fn lock_path(&self) -> PathBuf {
        self.root.join("locks").join("state.lock")
    }

    /// Takes the exclusive state lock without waiting. If another process holds it, the
    /// error names it; if the lock file names a process that is gone, the lock is free
    /// (the kernel released it) and the stale record is reported in `stale`.
    pub fn lock(&self, purpose: &str, now: &str) -> Result<(StateLock, Option<LockHolder>)> {
        let path = self.lock_path();
        let file = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .mode(0o600)
            .open(&path)
            .map_err(|e| Error::io(&path, e))?;
        let previous: Option<LockHolder> = fs::read(&path)
            .ok()
            .and_then(|b| serde_json::from_slice(&b).ok());
        if let Err(e) = flock(&file, FlockOperation::NonBlockingLockExclusive) {
            if e == Errno::WOULDBLOCK {
                let who = previous
                    .map(|h| format!("pid {} ({}) since {}", h.pid, h.purpose, h.since))
                    .unwrap_or_else(|| "another process".into());
                return Err(Error::Busy(format!(
                    "the state directory {} is locked by {who}; wait for it to finish (or, if that process is gone, check `cutter status`)",
                    self.root.display()
                )));
            }
            return Err(Error::io(&path, e.into()));
        }
        let stale = previous.filter(|h| h.pid != std::process::id());
        let me = LockHolder {
            pid: std::process::id(),
            purpose: purpose.into(),
            since: now.into(),
        };
        let mut f = &file;
        let bytes = serde_json::to_vec(&me).unwrap_or_default();
        file.set_len(0).map_err(|e| Error::io(&path, e))?;
        f.write_all(&bytes)
            .and_then(|_| f.sync_all())
            .map_err(|e| Error::io(&path, e))?;
        Ok((StateLock { file }, stale))
    }

    /// The kill-switch (engaged if never written).
    pub fn kill_switch(&self) -> Result<KillSwitch> {
        Ok(read_json(&self.root.join("state").join("kill_switch.json"))?.unwrap_or_default())
    }
    /// Whether the kill-switch was never written.
    pub fn kill_switch_file_missing(&self) -> bool {
        !self.root.join("state").join("kill_switch.json").exists()
    }
    /// Writes the kill-switch atomically.
    pub fn set_kill_switch(&self, ks: &KillSwitch) -> Result<()> {
        write_json(&self.root.join("state").join("kill_switch.json"), ks)
    }

    fn hold_path(&self) -> PathBuf {
        self.root.join("locks").join("HOLD")
    }
    /// The HOLD, if present.
    pub fn hold(&self) -> Result<Option<HoldFile>> {
        read_json(&self.hold_path())
    }
    /// Writes the HOLD atomically.
    pub fn write_hold(&self, hold: &HoldFile) -> Result<()> {
        write_json(&self.hold_path(), hold)
    }
    /// Removes the HOLD (after an approved release).
    pub fn remove_hold(&self) -> Result<()> {
        let p = self.hold_path();
        match fs::remove_file(&p) {
            Ok(()) => File::open(p.parent().unwrap_or(Path::new(".")))
                .and_then(|d| d.sync_all())
                .map_err(|e| Error::io(&p, e)),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(()),
            Err(e) => Err(Error::io(&p, e)),
        }
    }

    /// The run's journal: one JSON event per line, each line fsynced before the event's
    /// effect is relied upon.
    pub fn journal(&self, run: &RunId) -> Result<Journal> {
        let path = self.run_dir(run)?.join("journal.jsonl");
        Ok(Journal { path })
    }
}

/// What `locks/HOLD` contains: the core record plus where the snapshots are.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct HoldFile {
    /// The core hold record.
    #[serde(flatten)]
    pub record: HoldRecord,
    /// The compensation the matrix prescribes.
    pub compensation: cutter_core::Compensation,
    /// `rollback/<run_id>/pre.json`, if captured.
    pub pre_snapshot: Option<PathBuf>,
    /// `rollback/<run_id>/post.json`, if captured.
    pub post_snapshot: Option<PathBuf>,
}

/// One line of a run's journal.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct JournalEntry {
    /// Unix milliseconds.
    pub at_ms: i64,
    /// The event.
    #[serde(flatten)]
    pub event: Event,
}

/// Append-only journal of a run.
#[derive(Debug)]
pub struct Journal {
    path: PathBuf,
}

impl Journal {
    /// Appends one entry and fsyncs it. The entry that creates the journal also fsyncs
    /// the run's directory and `runs/`, so that the new file's name survives a crash.
    pub fn append(&self, entry: &JournalEntry) -> Result<()> {
        let mut line = serde_json::to_vec(entry).map_err(|e| Error::internal(e.to_string()))?;
        line.push(b'\n');
        let created = !self.path.exists();
        let mut f = OpenOptions::new()
            .create(true)
            .append(true)
            .mode(0o600)
            .open(&self.path)
            .map_err(|e| Error::io(&self.path, e))?;
        f.write_all(&line)
            .and_then(|_| f.sync_data())
            .map_err(|e| Error::io(&self.path, e))?;
        if created {
            let run_dir = self.path.parent().unwrap_or(Path::new("."));
            for d in std::iter::once(run_dir).chain(run_dir.parent()) {
                File::open(d)
                    .and_then(|d| d.sync_all())
                    .map_err(|e| Error::io(d, e))?;
            }
        }
        Ok(())
    }

    /// Reads every entry. A torn last line (a crash mid-write) is ignored and reported;
    /// a corrupt line elsewhere is an error.
    pub fn read(&self) -> Result<(Vec<JournalEntry>, bool)> {
        let bytes = match fs::read(&self.path) {
            Ok(b) => b,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok((Vec::new(), false)),
            Err(e) => return Err(Error::io(&self.path, e)),
        };
        let mut out = Vec::new();
        let lines: Vec<&[u8]> = bytes.split(|b| *b == b'\n').collect();
        let mut torn = false;
        for (i, line) in lines.iter().enumerate() {
            if line.is_empty() {
                continue;
            }
            match serde_json::from_slice(line) {
                Ok(e) => out.push(e),
                Err(_) if i + 1 == lines.len() => torn = true,
                Err(e) => {
                    return Err(Error::Corrupt {
                        path: self.path.clone(),
                        detail: format!("line {}: {e}", i + 1),
                    })
                }
            }
        }
        Ok((out, torn))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The CLI's old writer opened its predictable temp name `.<name>.tmp-<pid>` with
    /// O_CREAT|O_TRUNC and so wrote through a symlink planted there.
    #[test]
    fn state_files_are_never_written_through_a_planted_symlink() {
        use std::os::unix::fs::symlink;
        let d = tempfile::tempdir().unwrap();
        let s = StateDir::create(d.path()).unwrap();
        let victim = d.path().join("victim");
        fs::write(&victim, b"precious").unwrap();
        let ks = d.path().join("state").join("kill_switch.json");
        for tmp in [
            cutter_fs::partial_path(&d.path().join("state"), "kill_switch.json"),
            d.path()
                .join("state")
                .join(format!(".kill_switch.json.tmp-{}", std::process::id())),
        ] {
            symlink(&victim, &tmp).unwrap();
        }
        let _ = fs::remove_file(&ks);
        symlink(&victim, &ks).unwrap();
        s.set_kill_switch(&KillSwitch::Engaged).unwrap();
        assert_eq!(fs::read(&victim).unwrap(), b"precious");
        assert!(fs::symlink_metadata(&ks).unwrap().file_type().is_file());
        assert_eq!(s.kill_switch().unwrap(), KillSwitch::Engaged);
        assert_eq!(
            fs::metadata(&ks).unwrap().permissions().mode() & 0o777,
            0o600
        );
    }

    #[test]
    fn lock_excludes_a_second_holder_and_names_the_first() {
        let d = tempfile::tempdir().unwrap();
        let s = StateDir::create(d.path()).unwrap();
        let (held, stale) = s.lock("run r-1", "2026-01-01T00:00:00Z").unwrap();
        assert!(stale.is_none());
        // flock is per open file description: a second open in this process conflicts.
        let err = s
            .lock("run r-2", "2026-01-01T00:00:01Z")
            .unwrap_err()
            .to_string();
        assert!(
            err.contains(&format!("pid {} (run r-1)", std::process::id())),
            "{err}"
        );
        drop(held);
        assert!(s.lock("run r-2", "now").is_ok());
    }

    #[test]
    fn journal_tolerates_only_a_torn_last_line() {
        let d = tempfile::tempdir().unwrap();
        let s = StateDir::create(d.path()).unwrap();
        let run = RunId::new("r-1").unwrap();
        let j = s.journal(&run).unwrap();
        j.append(&JournalEntry {
            at_ms: 1,
            event: Event::GatePassed,
        })
        .unwrap();
        let path = s.run_dir(&run).unwrap().join("journal.jsonl");
        let mut f = OpenOptions::new().append(true).open(&path).unwrap();
        f.write_all(b"{\"at_ms\":2,\"ev").unwrap();
        let (entries, torn) = j.read().unwrap();
        assert_eq!(entries.len(), 1);
        assert!(torn);
        fs::write(&path, b"garbage\n{\"at_ms\":1,\"event\":\"gate_passed\"}\n").unwrap();
        assert!(j.read().is_err());
    }

    #[test]
    fn kill_switch_defaults_to_engaged() {
        let d = tempfile::tempdir().unwrap();
        let s = StateDir::create(d.path()).unwrap();
        assert_eq!(s.kill_switch().unwrap(), KillSwitch::Engaged);
        let ks = KillSwitch::Disarmed {
            run_id: RunId::new("r-1").unwrap(),
        };
        s.set_kill_switch(&ks).unwrap();
        assert_eq!(s.kill_switch().unwrap(), ks);
    }
}
