//! What the tests and xtask share, written once: the caller's variables a child process
//! must not inherit, the peak memory of a process, and scans of a directory tree for
//! bytes that must not be there (plaintext dump, table data, secrets). A dev-dependency
//! only (and xtask's): production code never depends on it. What production also needs
//! (`cutter_pg::pg_bindir`, `cutter_fs::pid_alive`) stays there, and tests call that.
//!
//! ```
//! // A `cutter` child spawned by a test inherits none of the caller's libpq or cutter
//! // variables.
//! let mut child = std::process::Command::new("true");
//! for v in cutter_testkit::CALLER_ENV {
//!     child.env_remove(v);
//! }
//! assert!(cutter_testkit::CALLER_ENV.contains(&"PGPASSWORD"));
//! ```

#![warn(missing_docs)]

use std::fs;
use std::path::{Path, PathBuf};
use std::time::SystemTime;

/// The caller's libpq, cutter and logging variables: a `cutter` child under test gets
/// only what its test gives it. Remove them all, then set what the test needs.
pub const CALLER_ENV: [&str; 43] = [
    "DATABASE_URL",
    "CUTTER_DATABASE_URL",
    "PGHOST",
    "PGHOSTADDR",
    "PGPORT",
    "PGUSER",
    "PGDATABASE",
    "PGPASSWORD",
    "PGPASSFILE",
    "PGSSLMODE",
    "PGSSLROOTCERT",
    "PGSSLCERT",
    "PGSSLKEY",
    "PGCHANNELBINDING",
    "PGTARGETSESSIONATTRS",
    "PGREQUIREAUTH",
    "PGCONNECT_TIMEOUT",
    "PGAPPNAME",
    "PGOPTIONS",
    "PGSERVICE",
    "PGSERVICEFILE",
    "PGSYSCONFDIR",
    "CUTTER_CONFIG",
    "CUTTER_STATE_DIR",
    "CUTTER_FAILPOINT",
    "CUTTER_OWNER_URL",
    "CUTTER_VERIFY_USER",
    "CUTTER_STATEMENT_TIMEOUT_MS",
    "CUTTER_LOCK_TIMEOUT_MS",
    "CUTTER_BACKUP_KEY",
    "CUTTER_BACKUP_SECRET_KEY",
    "CUTTER_BACKUP_PASSPHRASE",
    "CUTTER_BACKUP_PASSPHRASE_FILE",
    "CUTTER_PG_BINDIR",
    "CUTTER_BACKUP_SIGNING_KEY",
    "CUTTER_BACKUP_SIGNING_PASSPHRASE",
    "CUTTER_APPROVER_KEYS",
    "CUTTER_VALIDITY_HOURS",
    "CUTTER_ACTOR",
    "CUTTER_TEST_CLUSTER",
    "CUTTER_PG_TMPDIR",
    "BACKUP_GPG_FPR",
    "RUST_LOG",
];

/// Removes [`CALLER_ENV`] from `cmd`'s environment.
pub fn clear_caller_env(cmd: &mut std::process::Command) -> &mut std::process::Command {
    for v in CALLER_ENV {
        cmd.env_remove(v);
    }
    cmd
}

/// A `kB` field (`VmHWM:`, `VmRSS:`) of a `/proc/<pid>/status` text, in KiB.
pub fn status_kib(status: &str, field: &str) -> Option<u64> {
    status
        .lines()
        .find(|l| l.starts_with(field))?
        .split_whitespace()
        .nth(1)?
        .parse()
        .ok()
}

/// Peak resident set size of this process so far (`VmHWM`), in bytes; `None` when
/// `/proc/self/status` cannot be read, which a memory check must count as a failure.
pub fn peak_rss_bytes() -> Option<u64> {
    let status = fs::read_to_string("/proc/self/status").ok()?;
    status_kib(&status, "VmHWM:").map(|kib| kib * 1024)
}

/// Peak resident set size of this process so far, in MiB.
pub fn peak_rss_mib() -> Option<f64> {
    peak_rss_bytes().map(|b| b as f64 / (1024.0 * 1024.0))
}

/// `len` pseudo-random bytes, the same for the same `seed` (xorshift64): test data that
/// looks like ciphertext or compressed data, not like text.
pub fn noise(len: usize, seed: u64) -> Vec<u8> {
    let mut x = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
    let mut out = Vec::with_capacity(len + 8);
    while out.len() < len {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        out.extend_from_slice(&x.to_le_bytes());
    }
    out.truncate(len);
    out
}

/// The offset of the first `needle` in `hay`.
pub fn memfind(hay: &[u8], needle: &[u8]) -> Option<usize> {
    if needle.is_empty() || hay.len() < needle.len() {
        return None;
    }
    hay.windows(needle.len()).position(|w| w == needle)
}

/// Regular files under `root` (`root` itself if it is one), never following symlinks,
/// skipping PostgreSQL data directories (a database's own files hold its data by design).
pub fn files_under(root: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    let mut stack = vec![root.to_path_buf()];
    while let Some(dir) = stack.pop() {
        if dir.join("PG_VERSION").exists() {
            continue;
        }
        let Ok(meta) = fs::symlink_metadata(&dir) else {
            continue;
        };
        if meta.is_file() {
            out.push(dir);
            continue;
        }
        let Ok(rd) = fs::read_dir(&dir) else { continue };
        for e in rd.flatten() {
            let p = e.path();
            let Ok(m) = fs::symlink_metadata(&p) else {
                continue;
            };
            if m.is_dir() {
                stack.push(p);
            } else if m.is_file() {
                out.push(p);
            }
        }
    }
    out
}

/// Files under `root` (see [`files_under`]; modified after `since`, if given; at most
/// 512 MiB) that contain any needle, with the offset of the first hit. Unreadable files
/// are passed over.
pub fn scan(root: &Path, needles: &[&[u8]], since: Option<SystemTime>) -> Vec<(PathBuf, usize)> {
    let mut out = Vec::new();
    for p in files_under(root) {
        let Ok(m) = fs::symlink_metadata(&p) else {
            continue;
        };
        if m.len() > (512 << 20) {
            continue;
        }
        if let (Some(s), Ok(mt)) = (since, m.modified()) {
            if mt < s {
                continue;
            }
        }
        let Ok(bytes) = fs::read(&p) else { continue };
        if let Some(at) = needles.iter().find_map(|n| memfind(&bytes, n)) {
            out.push((p, at));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn noise_is_as_long_as_asked_and_the_same_only_for_the_same_seed() {
        for len in [0, 1, 7, 8, 9, 1000] {
            assert_eq!(noise(len, 3).len(), len);
        }
        assert_eq!(noise(100, 3), noise(100, 3));
        assert_ne!(noise(100, 3), noise(100, 4));
        assert_eq!(noise(100, 3)[..50], noise(50, 3)[..]);
        let n = noise(4096, 5);
        let distinct = n.iter().collect::<std::collections::HashSet<_>>().len();
        assert!(distinct > 200, "{distinct} distinct byte values");
    }

    #[test]
    fn status_fields_are_read_in_kib() {
        let status = "Name:\tcutter\nVmPeak:\t  9000 kB\nVmHWM:\t  5120 kB\nVmRSS:\t 100 kB\n";
        assert_eq!(status_kib(status, "VmHWM:"), Some(5120));
        assert_eq!(status_kib(status, "VmRSS:"), Some(100));
        assert_eq!(status_kib(status, "VmSwap:"), None);
        assert!(peak_rss_bytes().unwrap() > 0);
    }

    #[test]
    fn memfind_finds_the_first_hit_only() {
        assert_eq!(memfind(b"xxPGDMPyyPGDMP", b"PGDMP"), Some(2));
        assert_eq!(memfind(b"PGDM", b"PGDMP"), None);
        assert_eq!(memfind(b"abc", b""), None);
    }

    #[test]
    fn scan_finds_needles_skips_data_directories_and_symlinks() {
        let d = tempfile::tempdir().unwrap();
        let sub = d.path().join("a/b");
        fs::create_dir_all(&sub).unwrap();
        fs::write(sub.join("hit"), b"....PGDMP").unwrap();
        fs::write(d.path().join("clean"), b"nothing").unwrap();
        let data = d.path().join("pgdata");
        fs::create_dir(&data).unwrap();
        fs::write(data.join("PG_VERSION"), b"17").unwrap();
        fs::write(data.join("table"), b"PGDMP").unwrap();
        std::os::unix::fs::symlink(sub.join("hit"), d.path().join("link")).unwrap();
        let hits = scan(d.path(), &[b"PGDMP"], None);
        assert_eq!(hits, vec![(sub.join("hit"), 4)]);
        let later = SystemTime::now() + std::time::Duration::from_secs(3600);
        assert!(scan(d.path(), &[b"PGDMP"], Some(later)).is_empty());
    }

    #[test]
    fn caller_env_is_removed() {
        let mut c = std::process::Command::new("env");
        c.env("PGPASSWORD", "x");
        clear_caller_env(&mut c);
        let removed: Vec<_> = c.get_envs().filter(|(_, v)| v.is_none()).collect();
        assert_eq!(removed.len(), CALLER_ENV.len());
    }
}
