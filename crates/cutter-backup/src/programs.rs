//! The PostgreSQL client programs this crate runs (`pg_dump`, `pg_restore`), located
//! once in the configured directory (`pg_bindir`) or else through `pg_config --bindir`
//! (never through `PATH`), and the plumbing to run them: explicit arguments, a scrubbed
//! environment, stderr captured on its own thread into a bounded buffer, exit status
//! checked.

use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStderr, Command, ExitStatus, Stdio};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;

use crate::error::{Error, Result};

/// How much of a child's stderr is kept: the first and the last half of this.
const STDERR_KEEP: usize = 64 * 1024;

/// Environment variables a child inherits; everything else (notably `PGPASSWORD`,
/// `PGSERVICE`, `PGPASSFILE` and the other `PG*` variables of the caller) is removed,
/// so the child connects exactly as the [`cutter_pg::config::ConnConfig`] says.
const INHERITED_ENV: [&str; 3] = ["PATH", "HOME", "TZ"];

/// A PostgreSQL client program and its version.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PgProgram {
    /// Absolute path of the binary.
    pub path: PathBuf,
    /// Version as printed (e.g. `15.14`).
    pub version: String,
    /// Major version (e.g. 15).
    pub major: u32,
}

impl PgProgram {
    /// Checks that `path` runs and reads its version (`<path> --version`).
    pub fn at(path: &Path) -> Result<Self> {
        let program = path.display().to_string();
        let out = Command::new(path)
            .arg("--version")
            .env_clear()
            .env("LC_ALL", "C")
            .stdin(Stdio::null())
            .output()
            .map_err(|e| Error::Program {
                program: program.clone(),
                problem: format!(
                    "cannot run it ({e}); install the PostgreSQL client tools, or set [backup] \
                     pg_bindir (CUTTER_PG_BINDIR) to the directory holding pg_dump and pg_restore"
                ),
            })?;
        if !out.status.success() {
            return Err(Error::Program {
                program,
                problem: format!(
                    "`--version` failed ({}): {}",
                    describe_status(out.status),
                    String::from_utf8_lossy(&out.stderr).trim()
                ),
            });
        }
        let text = String::from_utf8_lossy(&out.stdout);
        let version = parse_version_line(&text).ok_or_else(|| Error::Program {
            program: program.clone(),
            problem: format!("unexpected `--version` output {:?}", text.trim()),
        })?;
        let major = major_of(&version).ok_or_else(|| Error::Program {
            program,
            problem: format!("cannot read a major version from {version:?}"),
        })?;
        Ok(Self {
            path: path.to_path_buf(),
            version,
            major,
        })
    }

    /// The program `name` in the directory `pg_config --bindir` prints.
    pub fn locate(name: &str) -> Result<Self> {
        let dir = bindir()?;
        let path = dir.join(name);
        if !path.is_file() {
            return Err(Error::Program {
                program: name.into(),
                problem: format!(
                    "not found in {} (from `pg_config --bindir`); install the PostgreSQL \
                     client tools matching the server",
                    dir.display()
                ),
            });
        }
        Self::at(&path)
    }

    /// The program `name` in `dir`, the configured `pg_bindir`.
    pub fn in_dir(dir: &Path, name: &str) -> Result<Self> {
        let path = dir.join(name);
        if !path.is_file() {
            return Err(Error::Program {
                program: name.into(),
                problem: format!(
                    "not found in {}, the configured pg_bindir ([backup] pg_bindir or \
                     CUTTER_PG_BINDIR); point it at the directory holding pg_dump and pg_restore \
                     (e.g. /usr/lib/postgresql/15/bin), or unset it to ask `pg_config --bindir`",
                    dir.display()
                ),
            });
        }
        Self::at(&path)
    }

    /// The program file `configured` if given, else `name` in `bindir` if given, else
    /// [`locate`](Self::locate)`(name)`.
    pub fn resolve(configured: Option<&Path>, bindir: Option<&Path>, name: &str) -> Result<Self> {
        match (configured, bindir) {
            (Some(p), _) => Self::at(p),
            (None, Some(dir)) => Self::in_dir(dir, name),
            (None, None) => Self::locate(name),
        }
    }
}

/// The directory `pg_config --bindir` prints ([`cutter_pg::pg_bindir`], the one lookup).
pub fn bindir() -> Result<PathBuf> {
    cutter_pg::pg_bindir().map_err(|e| Error::Program {
        program: "pg_config".into(),
        problem: format!(
            "{e}; or set [backup] pg_bindir in cutter.toml (or CUTTER_PG_BINDIR) to the directory \
             holding pg_dump and pg_restore, so pg_config is not needed"
        ),
    })
}

/// `pg_dump (PostgreSQL) 15.14 (Debian 15.14-0+deb12u1)` → `15.14`.
pub(crate) fn parse_version_line(text: &str) -> Option<String> {
    let line = text.lines().next()?;
    let rest = line.split_once(')').map_or(line, |(_, r)| r);
    let v = rest.split_whitespace().next()?;
    v.starts_with(|c: char| c.is_ascii_digit())
        .then(|| v.to_string())
}

/// `15.14` → 15, `9.6.24` → 9, `17beta1` → 17.
pub(crate) fn major_of(version: &str) -> Option<u32> {
    let digits: String = version.chars().take_while(|c| c.is_ascii_digit()).collect();
    digits.parse().ok()
}

/// "exit status 1", "killed by signal 9 (SIGKILL)".
pub(crate) fn describe_status(status: ExitStatus) -> String {
    use std::os::unix::process::ExitStatusExt;
    if let Some(code) = status.code() {
        return format!("exit status {code}");
    }
    match status.signal() {
        Some(sig) => {
            let name = match sig {
                6 => " (SIGABRT)",
                9 => " (SIGKILL)",
                11 => " (SIGSEGV)",
                13 => " (SIGPIPE)",
                15 => " (SIGTERM)",
                _ => "",
            };
            format!("killed by signal {sig}{name}")
        }
        None => status.to_string(),
    }
}

/// A command with a scrubbed environment: only `PATH`, `HOME`, `TZ` are inherited,
/// messages are in English (`LC_MESSAGES=C`) so they can be quoted in errors.
pub(crate) fn command(program: &Path) -> Command {
    let mut cmd = Command::new(program);
    cmd.env_clear();
    for k in INHERITED_ENV {
        if let Some(v) = std::env::var_os(k) {
            cmd.env(k, v);
        }
    }
    cmd.env("LC_MESSAGES", "C").env("LC_ALL", "C");
    cmd
}

/// Collects a child's stderr on its own thread into a bounded buffer (the first and
/// the last `STDERR_KEEP / 2` bytes), so a chatty child can never fill the pipe and
/// deadlock, and memory stays bounded.
#[derive(Debug)]
pub(crate) struct StderrCollector {
    shared: Arc<Mutex<Captured>>,
    thread: Option<JoinHandle<()>>,
}

#[derive(Debug, Default)]
struct Captured {
    head: Vec<u8>,
    tail: Vec<u8>,
    dropped: u64,
}

impl Captured {
    fn push(&mut self, mut data: &[u8]) {
        let half = STDERR_KEEP / 2;
        if self.head.len() < half {
            let n = data.len().min(half - self.head.len());
            self.head.extend_from_slice(&data[..n]);
            data = &data[n..];
        }
        self.tail.extend_from_slice(data);
        if self.tail.len() > half {
            let excess = self.tail.len() - half;
            self.tail.drain(..excess);
            self.dropped += excess as u64;
        }
    }

    fn text(&self) -> String {
        let mut s = String::from_utf8_lossy(&self.head).into_owned();
        if self.dropped > 0 {
            s.push_str(&format!(
                "\n[… {} bytes of stderr left out …]\n",
                self.dropped
            ));
        }
        s.push_str(&String::from_utf8_lossy(&self.tail));
        s
    }
}

impl StderrCollector {
    pub(crate) fn spawn(mut stderr: ChildStderr) -> Self {
        let shared = Arc::new(Mutex::new(Captured::default()));
        let sink = Arc::clone(&shared);
        let thread = std::thread::Builder::new()
            .name("child-stderr".into())
            .spawn(move || {
                let mut buf = [0u8; 8192];
                loop {
                    match stderr.read(&mut buf) {
                        Ok(0) => break,
                        Ok(n) => {
                            if let Ok(mut c) = sink.lock() {
                                c.push(&buf[..n]);
                            }
                        }
                        Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
                        Err(_) => break,
                    }
                }
            })
            .ok();
        Self { shared, thread }
    }

    /// Waits for the child to close stderr and returns what it wrote (bounded).
    pub(crate) fn finish(mut self) -> String {
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
        self.shared.lock().map(|c| c.text()).unwrap_or_default()
    }
}

/// A running child that is killed and reaped if dropped before [`wait`](Self::wait):
/// no child outlives an error path.
#[derive(Debug)]
pub(crate) struct ChildGuard {
    child: Option<Child>,
    program: String,
}

impl ChildGuard {
    pub(crate) fn new(child: Child, program: impl Into<String>) -> Self {
        Self {
            child: Some(child),
            program: program.into(),
        }
    }

    pub(crate) fn child_mut(&mut self) -> &mut Child {
        self.child.as_mut().expect("child present until wait")
    }

    /// Waits for the child to exit.
    pub(crate) fn wait(mut self) -> Result<ExitStatus> {
        let mut child = self.child.take().expect("child present until wait");
        child.wait().map_err(|e| Error::Program {
            program: self.program.clone(),
            problem: format!("waiting for it failed: {e}"),
        })
    }

    /// Kills the child (if still running) and reaps it.
    pub(crate) fn kill(mut self) -> Option<ExitStatus> {
        let mut child = self.child.take()?;
        let _ = child.kill();
        child.wait().ok()
    }
}

impl Drop for ChildGuard {
    fn drop(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn versions_parse() {
        let v = parse_version_line("pg_dump (PostgreSQL) 15.14 (Debian 15.14-0+deb12u1)\n");
        assert_eq!(v.as_deref(), Some("15.14"));
        assert_eq!(major_of("15.14"), Some(15));
        assert_eq!(major_of("9.6.24"), Some(9));
        assert_eq!(major_of("17beta1"), Some(17));
        assert_eq!(
            parse_version_line("pg_restore (PostgreSQL) 17.2").as_deref(),
            Some("17.2")
        );
        assert_eq!(parse_version_line("garbage"), None);
    }

    #[test]
    fn stderr_is_bounded_and_keeps_both_ends() {
        let mut c = Captured::default();
        c.push(b"first line\n");
        for _ in 0..10_000 {
            c.push(b"noise noise noise noise noise noise\n");
        }
        c.push(b"pg_dump: error: the real reason\n");
        let t = c.text();
        assert!(t.starts_with("first line"));
        assert!(t.ends_with("the real reason\n"));
        assert!(t.contains("bytes of stderr left out"));
        assert!(t.len() < STDERR_KEEP + 100);
    }
}
