//! Throwaway PostgreSQL clusters: `initdb` into a fresh temporary directory, a server on a
//! free loopback port with a private socket directory, SCRAM password authentication, and
//! on drop a fast shutdown and the removal of exactly that directory.
//!
//! Invariant: a [`Cluster`] only ever signals the server process it spawned and only ever
//! removes the directory it created; it never looks at any other cluster. When running as
//! root, `initdb` and `postgres` run as the unprivileged `postgres` user (they refuse to
//! run as root); otherwise as the current user.

use std::fmt;
use std::fs::{self, File};
use std::io::{Read as _, Write as _};
use std::os::unix::fs::{chown, PermissionsExt};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::sync::{Mutex, OnceLock};
use std::time::{Duration, Instant};

use cutter_core::SystemIdentifier;

use crate::config::{ConnConfig, Password};
use crate::error::{Error, PgContext, Result};
use crate::ident::quote_ident;
use crate::sys;

/// The directory holding the PostgreSQL programs, from `pg_config --bindir`: the one
/// place this is looked up (the backup, the tests and xtask call it). A success is
/// remembered for the life of the process; a failure is not, so a caller that installs
/// PostgreSQL can ask again. The programs are never looked up on `PATH`.
pub fn pg_bindir() -> Result<PathBuf> {
    static BINDIR: OnceLock<PathBuf> = OnceLock::new();
    if let Some(dir) = BINDIR.get() {
        return Ok(dir.clone());
    }
    let fail = |problem: String, output: String| Error::Program {
        program: "pg_config".into(),
        problem: format!(
            "{problem}; install PostgreSQL with pg_config, e.g. `apt-get install postgresql \
             postgresql-server-dev-all`"
        ),
        output,
    };
    let out = Command::new("pg_config")
        .arg("--bindir")
        .stdin(Stdio::null())
        .output()
        .map_err(|e| fail(format!("cannot run pg_config: {e}"), String::new()))?;
    if !out.status.success() {
        return Err(fail(
            format!("pg_config --bindir failed with {}", out.status),
            String::from_utf8_lossy(&out.stderr).trim().to_string(),
        ));
    }
    let dir = PathBuf::from(String::from_utf8_lossy(&out.stdout).trim());
    if !dir.is_dir() {
        return Err(fail(
            format!(
                "pg_config --bindir says {}, which is not a directory",
                dir.display()
            ),
            String::new(),
        ));
    }
    Ok(BINDIR.get_or_init(|| dir).clone())
}

/// The path of PostgreSQL program `name` (`initdb`, `psql`, `pg_dump`, …) in
/// [`pg_bindir`], checked to exist.
pub fn pg_program(name: &str) -> Result<PathBuf> {
    let p = pg_bindir()?.join(name);
    if p.is_file() {
        Ok(p)
    } else {
        Err(Error::Program {
            program: p.display().to_string(),
            problem: "not found in the directory `pg_config --bindir` prints".into(),
            output: String::new(),
        })
    }
}

/// Server settings of every throwaway cluster. Durability is off: the data is discarded.
const SETTINGS: [(&str, &str); 11] = [
    ("fsync", "off"),
    ("synchronous_commit", "off"),
    ("full_page_writes", "off"),
    ("max_wal_size", "4GB"),
    ("checkpoint_timeout", "1h"),
    ("max_connections", "200"),
    ("log_min_messages", "warning"),
    ("log_statement", "none"),
    ("logging_collector", "off"),
    ("password_encryption", "scram-sha-256"),
    ("shared_buffers", "128MB"),
];

/// The variables of this process that `initdb`, the server and `pg_ctl` of a throwaway
/// cluster are started with (when set); nothing else of the caller's environment
/// reaches them: not a passphrase variable, not `DATABASE_URL`, not libpq's `PG*`.
pub const SERVER_ENV_ALLOWED: [&str; 2] = ["PATH", "TZ"];

/// Builds a throwaway server's environment from an explicit list: the variables of
/// [`SERVER_ENV_ALLOWED`] this process has, and the C locale (`LC_ALL`, `LANG`).
fn server_env(cmd: &mut Command) {
    cmd.env_clear();
    for k in SERVER_ENV_ALLOWED {
        if let Some(v) = std::env::var_os(k) {
            cmd.env(k, v);
        }
    }
    cmd.env("LC_ALL", "C").env("LANG", "C");
}

/// The `cluster_name` every throwaway cluster is started with. `cluster_name` can only be
/// set when the server starts (postmaster context) and every role can read it, so a
/// session can tell a cluster this crate started from any other server; the adapter
/// accepts a rehearsal authorization only on such a cluster ([`is_throwaway_server`]).
pub const THROWAWAY_CLUSTER_NAME: &str = "cutter-throwaway";

/// Whether `c` is connected to a throwaway cluster started by [`Cluster`] (its
/// `cluster_name` is [`THROWAWAY_CLUSTER_NAME`]); a production server never is.
pub fn is_throwaway_server(
    c: &mut impl postgres::GenericClient,
) -> std::result::Result<bool, postgres::Error> {
    Ok(cluster_name(c)? == THROWAWAY_CLUSTER_NAME)
}

/// Whether the writers must refuse `auth` on the server `c` is connected to because it
/// is a rehearsal (no approvals) and the server is not a throwaway cluster: the
/// server's `cluster_name` if so, `None` if `auth` may write there. Shared by the
/// adapter's phases and the ledger writers, which wrap it in their own errors.
pub fn rehearsal_refused_by(
    c: &mut impl postgres::GenericClient,
    auth: &cutter_core::LiveAuthorization,
) -> std::result::Result<Option<String>, postgres::Error> {
    if auth.scope() != cutter_core::AuthorizationScope::Rehearsal {
        return Ok(None);
    }
    let name = cluster_name(c)?;
    Ok((name != THROWAWAY_CLUSTER_NAME).then_some(name))
}

/// Marks the connected database as a rehearsal clone (reference V5): the database then
/// lets a run write without recorded approvals. Refused unless the server is a throwaway
/// cluster (see [`is_throwaway_server`]); needs the clone's superuser (the mark's table
/// is the owner's alone). The mark names the clone's own system identifier, so a mark
/// restored into any other server means nothing there.
pub fn mark_rehearsal_clone(c: &mut impl postgres::GenericClient) -> crate::Result<()> {
    use crate::error::PgContext;
    let name = cluster_name(c).doing("reading cluster_name")?;
    if name != THROWAWAY_CLUSTER_NAME {
        return Err(crate::Error::Install {
            what: "the rehearsal mark".into(),
            reason: format!(
                "refusing to mark a server whose cluster_name is {name:?} as a rehearsal clone: \
                 only a throwaway cluster started by cutter ({THROWAWAY_CLUSTER_NAME:?}) is one"
            ),
        });
    }
    c.execute(
        "INSERT INTO cutter_governance.rehearsal_clone (system_identifier) \
         SELECT s.system_identifier::text FROM pg_catalog.pg_control_system() s \
         ON CONFLICT DO NOTHING",
        &[],
    )
    .doing("marking the throwaway database as a rehearsal clone")?;
    Ok(())
}

fn cluster_name(
    c: &mut impl postgres::GenericClient,
) -> std::result::Result<String, postgres::Error> {
    Ok(
        c.query_one("SELECT pg_catalog.current_setting('cluster_name')", &[])?
            .get(0),
    )
}

/// Options for [`Cluster::start_with`].
#[derive(Clone, Debug, Default)]
pub struct ClusterOptions {
    /// Extra server settings (`-c name=value`), applied after the defaults.
    pub settings: Vec<(String, String)>,
}

/// The unprivileged user the server runs as when this process is root.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct RunAs {
    uid: u32,
    gid: u32,
}

impl RunAs {
    fn apply(self, cmd: &mut Command) {
        cmd.uid(self.uid).gid(self.gid);
    }
}

/// `uid:gid` of `user`, from /etc/passwd, else from `id`.
fn lookup_user(user: &str) -> Option<RunAs> {
    if let Ok(passwd) = fs::read_to_string("/etc/passwd") {
        for line in passwd.lines() {
            let f: Vec<&str> = line.split(':').collect();
            if f.len() >= 4 && f[0] == user {
                if let (Ok(uid), Ok(gid)) = (f[2].parse(), f[3].parse()) {
                    return Some(RunAs { uid, gid });
                }
            }
        }
    }
    let id = |flag: &str| -> Option<u32> {
        let out = Command::new("id").args([flag, user]).output().ok()?;
        out.status
            .success()
            .then(|| String::from_utf8_lossy(&out.stdout).trim().parse().ok())?
    };
    Some(RunAs {
        uid: id("-u")?,
        gid: id("-g")?,
    })
}

/// A fresh random secret: 32 hex digits from the kernel's generator.
pub(crate) fn random_secret() -> Result<String> {
    let mut buf = [0u8; 16];
    File::open("/dev/urandom")
        .and_then(|mut f| f.read_exact(&mut buf))
        .map_err(|e| Error::io("reading random bytes from", "/dev/urandom", e))?;
    Ok(hex::encode(buf))
}

type SpawnRequest = (Command, mpsc::Sender<std::io::Result<Child>>);

/// Spawns `cmd` from a keeper thread that lives as long as the process, so that the
/// parent-death signal (see [`sys::quit_with_parent`]) fires when the process exits and
/// not when some short-lived (test) thread does.
fn spawn_kept(cmd: Command) -> std::io::Result<Child> {
    static KEEPER: OnceLock<std::result::Result<Mutex<mpsc::Sender<SpawnRequest>>, String>> =
        OnceLock::new();
    let keeper = KEEPER.get_or_init(|| {
        let (tx, rx) = mpsc::channel::<SpawnRequest>();
        std::thread::Builder::new()
            .name("cutter-pg-keeper".into())
            .spawn(move || {
                // The sender lives in a static and is never dropped, so this thread
                // lives until the process exits.
                for (mut cmd, reply) in rx {
                    let _ = reply.send(cmd.spawn());
                }
            })
            .map(|_| Mutex::new(tx))
            .map_err(|e| e.to_string())
    });
    let keeper = keeper
        .as_ref()
        .map_err(|e| std::io::Error::other(format!("cannot start the keeper thread: {e}")))?;
    let (reply_tx, reply_rx) = mpsc::channel();
    keeper
        .lock()
        .map_err(|_| std::io::Error::other("keeper thread lock poisoned"))?
        .send((cmd, reply_tx))
        .map_err(|_| std::io::Error::other("keeper thread is gone"))?;
    reply_rx
        .recv()
        .map_err(|_| std::io::Error::other("keeper thread is gone"))?
}

/// A free TCP port on the loopback interface (the kernel's choice; there is a small
/// window before the server binds it, covered by retrying).
fn free_port() -> Result<u16> {
    let l = std::net::TcpListener::bind(("127.0.0.1", 0))
        .map_err(|e| Error::io("binding a loopback port on", "127.0.0.1:0", e))?;
    l.local_addr()
        .map(|a| a.port())
        .map_err(|e| Error::io("reading the port of", "127.0.0.1:0", e))
}

fn tail(path: &Path, max: usize) -> String {
    let text = fs::read_to_string(path).unwrap_or_default();
    let start = text.len().saturating_sub(max);
    let start = (start..text.len())
        .find(|i| text.is_char_boundary(*i))
        .unwrap_or(text.len());
    text[start..].trim().to_string()
}

/// A running throwaway PostgreSQL cluster. Dropping it stops the server (fast shutdown,
/// then immediate) and removes its directory. Public and documented because tests, the
/// restore proof, the CLI's dry-run and the demo all use it.
pub struct Cluster {
    dir: Option<tempfile::TempDir>,
    path: PathBuf,
    data_dir: PathBuf,
    socket_dir: PathBuf,
    log_path: PathBuf,
    port: u16,
    run_as: Option<RunAs>,
    superuser: String,
    password: Password,
    child: Option<Child>,
    options: ClusterOptions,
}

impl fmt::Debug for Cluster {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Cluster")
            .field("dir", &self.path)
            .field("port", &self.port)
            .field("superuser", &self.superuser)
            .field("pid", &self.child.as_ref().map(Child::id))
            .finish_non_exhaustive()
    }
}

impl Cluster {
    /// Starts a new cluster with default options.
    pub fn start() -> Result<Cluster> {
        Self::start_with(&ClusterOptions::default())
    }

    /// Runs `initdb` into a new temporary directory and starts the server on a free
    /// loopback port. The superuser is `postgres` with a generated password; TCP and the
    /// (private) unix socket both require SCRAM password authentication.
    pub fn start_with(options: &ClusterOptions) -> Result<Cluster> {
        let bindir = pg_bindir()?;
        pg_program("postgres")?;
        let run_as = if sys::effective_uid() == 0 {
            Some(lookup_user("postgres").ok_or_else(|| {
                Error::Program {
                    program: "initdb".into(),
                    problem: "running as root, and initdb refuses to run as root, but there is no \
                          `postgres` user to run it as; create one (the postgresql package does)"
                        .into(),
                    output: String::new(),
                }
            })?)
        } else {
            None
        };
        // As root the directory must be reachable by the postgres user: not below a
        // private home directory.
        let base = match std::env::var_os("CUTTER_PG_TMPDIR") {
            Some(d) => PathBuf::from(d),
            None if run_as.is_some() => PathBuf::from("/tmp"),
            None => std::env::temp_dir(),
        };
        let dir = tempfile::Builder::new()
            .prefix("cutter-pg-")
            .tempdir_in(&base)
            .map_err(|e| Error::io("creating a temporary directory in", &base, e))?;
        let path = dir.path().to_path_buf();
        let mut cluster = Cluster {
            dir: Some(dir),
            data_dir: path.join("data"),
            socket_dir: path.join("sock"),
            log_path: path.join("postgres.log"),
            path,
            port: 0,
            run_as,
            superuser: "postgres".into(),
            password: Password::new(random_secret()?),
            child: None,
            options: options.clone(),
        };
        cluster.prepare_dirs()?;
        cluster.initdb(&bindir)?;
        cluster.launch(&bindir, None)?;
        Ok(cluster)
    }

    fn own(&self, p: &Path, mode: u32) -> Result<()> {
        fs::set_permissions(p, fs::Permissions::from_mode(mode))
            .map_err(|e| Error::io("setting permissions of", p, e))?;
        if let Some(r) = self.run_as {
            chown(p, Some(r.uid), Some(r.gid)).map_err(|e| Error::io("chown", p, e))?;
        }
        Ok(())
    }

    fn prepare_dirs(&self) -> Result<()> {
        self.own(&self.path, 0o700)?;
        fs::create_dir(&self.socket_dir)
            .map_err(|e| Error::io("creating the socket directory", &self.socket_dir, e))?;
        self.own(&self.socket_dir, 0o700)
    }

    fn command(&self, program: &Path) -> Command {
        let mut cmd = Command::new(program);
        cmd.current_dir(&self.path).stdin(Stdio::null());
        server_env(&mut cmd);
        if let Some(r) = self.run_as {
            r.apply(&mut cmd);
        }
        cmd
    }

    fn initdb(&self, bindir: &Path) -> Result<()> {
        let pwfile = self.path.join("pwfile");
        {
            let mut f = File::create(&pwfile)
                .map_err(|e| Error::io("creating the password file", &pwfile, e))?;
            self.own(&pwfile, 0o600)?;
            writeln!(f, "{}", self.password.expose_secret())
                .map_err(|e| Error::io("writing the password file", &pwfile, e))?;
        }
        let program = bindir.join("initdb");
        let out = self
            .command(&program)
            .arg("-D")
            .arg(&self.data_dir)
            .args(["-U", &self.superuser])
            .args([
                "--auth=scram-sha-256",
                "-E",
                "UTF8",
                "--locale=C",
                "--no-sync",
            ])
            .arg(format!("--pwfile={}", pwfile.display()))
            .output();
        let _ = fs::remove_file(&pwfile);
        let out = out.map_err(|e| Error::Program {
            program: program.display().to_string(),
            problem: format!("cannot start: {e}"),
            output: String::new(),
        })?;
        if out.status.success() {
            Ok(())
        } else {
            Err(Error::Program {
                program: program.display().to_string(),
                problem: format!("failed with {}", out.status),
                output: String::from_utf8_lossy(&out.stderr).trim().to_string(),
            })
        }
    }

    /// Starts the server, on `port` if given (a restart), else on a free port.
    fn launch(&mut self, bindir: &Path, port: Option<u16>) -> Result<()> {
        let program = bindir.join("postgres");
        let mut last_log = String::new();
        for _attempt in 0..5 {
            let port = match port {
                Some(p) => p,
                None => free_port()?,
            };
            // Appended to, so that a restart keeps the log of the previous server.
            let log = fs::OpenOptions::new()
                .create(true)
                .append(true)
                .open(&self.log_path)
                .map_err(|e| Error::io("creating the server log", &self.log_path, e))?;
            let log2 = log
                .try_clone()
                .map_err(|e| Error::io("duplicating the server log", &self.log_path, e))?;
            let mut cmd = self.command(&program);
            cmd.arg("-D").arg(&self.data_dir);
            for (k, v) in self.server_settings(port) {
                cmd.arg("-c").arg(format!("{k}={v}"));
            }
            cmd.stdout(log).stderr(log2);
            sys::quit_with_parent(&mut cmd);
            let child = spawn_kept(cmd).map_err(|e| Error::Program {
                program: program.display().to_string(),
                problem: format!("cannot start: {e}"),
                output: String::new(),
            })?;
            self.child = Some(child);
            self.port = port;
            match self.wait_ready(Duration::from_secs(60)) {
                Ok(()) => return Ok(()),
                Err(log) => {
                    self.stop_server();
                    let retry = log.contains("could not bind") || log.contains("already in use");
                    last_log = log;
                    if !retry {
                        break;
                    }
                }
            }
        }
        Err(Error::Program {
            program: program.display().to_string(),
            problem: format!("the server in {} did not start", self.path.display()),
            output: last_log,
        })
    }

    /// Every `-c` setting the server starts with on `port`, in order (later wins).
    fn server_settings(&self, port: u16) -> Vec<(String, String)> {
        let mut settings: Vec<(String, String)> = vec![
            ("listen_addresses".into(), "127.0.0.1".into()),
            ("port".into(), port.to_string()),
            (
                "unix_socket_directories".into(),
                self.socket_dir.display().to_string(),
            ),
        ];
        settings.extend(SETTINGS.iter().map(|(k, v)| (k.to_string(), v.to_string())));
        settings.push(("cluster_name".into(), THROWAWAY_CLUSTER_NAME.into()));
        settings.extend(self.options.settings.iter().cloned());
        settings
    }

    /// Waits for `postmaster.pid` to say `ready`; on failure returns the log tail.
    fn wait_ready(&mut self, timeout: Duration) -> std::result::Result<(), String> {
        let pidfile = self.data_dir.join("postmaster.pid");
        let start = Instant::now();
        loop {
            if let Some(child) = self.child.as_mut() {
                if let Ok(Some(status)) = child.try_wait() {
                    return Err(format!(
                        "server exited with {status}\n{}",
                        tail(&self.log_path, 4000)
                    ));
                }
            }
            if let Ok(text) = fs::read_to_string(&pidfile) {
                // Line 8 of postmaster.pid is the server status (PostgreSQL ≥ 10).
                if text.lines().nth(7).map(str::trim) == Some("ready") {
                    return Ok(());
                }
            }
            if start.elapsed() > timeout {
                return Err(format!(
                    "server not ready after {timeout:?}\n{}",
                    tail(&self.log_path, 4000)
                ));
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// Fast shutdown, then immediate, then kill; waits for the process.
    fn stop_server(&mut self) {
        let Some(mut child) = self.child.take() else {
            return;
        };
        let pid = child.id();
        let wait = |child: &mut Child, d: Duration| -> bool {
            let start = Instant::now();
            while start.elapsed() < d {
                match child.try_wait() {
                    Ok(Some(_)) | Err(_) => return true,
                    Ok(None) => std::thread::sleep(Duration::from_millis(10)),
                }
            }
            false
        };
        if matches!(child.try_wait(), Ok(Some(_))) {
            return;
        }
        if sys::send_signal(pid, sys::SIGINT) && wait(&mut child, Duration::from_secs(30)) {
            return;
        }
        if sys::send_signal(pid, sys::SIGQUIT) && wait(&mut child, Duration::from_secs(10)) {
            return;
        }
        let _ = sys::send_signal(pid, sys::SIGKILL);
        let _ = child.wait();
    }

    /// Restarts the server the way an operator's `pg_ctl restart -m fast` does: a fast
    /// shutdown (every session is terminated, open transactions roll back), then a new
    /// server on the same data directory, port and settings. Returns once it accepts
    /// connections. For tests of what a client sees when the server restarts under it.
    pub fn restart(&mut self) -> Result<()> {
        let bindir = pg_bindir()?;
        self.stop_server();
        let port = self.port;
        self.launch(&bindir, Some(port))
    }

    /// Stops the server and removes the directory, reporting a failure to remove it.
    pub fn stop(mut self) -> Result<()> {
        self.stop_server();
        match self.dir.take() {
            Some(d) => d
                .close()
                .map_err(|e| Error::io("removing the cluster directory", &self.path, e)),
            None => Ok(()),
        }
    }

    /// Hands the cluster over to the operator instead of removing it: the server is
    /// restarted through `pg_ctl` (so it outlives this process, which it otherwise never
    /// does), on the same port, with its settings appended to the data directory's
    /// `postgresql.conf` so that a later `pg_ctl restart` keeps them, and the directory
    /// is no longer removed. Returns what the operator needs to connect and to stop it.
    pub fn keep(mut self) -> Result<KeptCluster> {
        let bindir = pg_bindir()?;
        let port = self.port;
        self.stop_server();
        let conf = self.data_dir.join("postgresql.conf");
        let mut text = String::from(
            "\n# cutter: the settings of this throwaway cluster, kept for the operator\n",
        );
        for (k, v) in self.server_settings(port) {
            text.push_str(&format!("{k} = '{}'\n", v.replace('\'', "''")));
        }
        fs::OpenOptions::new()
            .append(true)
            .open(&conf)
            .and_then(|mut f| f.write_all(text.as_bytes()))
            .map_err(|e| Error::io("appending the settings to", &conf, e))?;
        let pg_ctl = bindir.join("pg_ctl");
        // A log of its own: the old one was opened by this process, which may be root.
        self.log_path = self.path.join("postgres-kept.log");
        let out = self
            .command(&pg_ctl)
            .arg("start")
            .arg("-D")
            .arg(&self.data_dir)
            .arg("-l")
            .arg(&self.log_path)
            .args(["-w", "-t", "60"])
            .stdout(Stdio::null())
            .output()
            .map_err(|e| Error::Program {
                program: pg_ctl.display().to_string(),
                problem: format!("cannot start: {e}"),
                output: String::new(),
            })?;
        if !out.status.success() {
            return Err(Error::Program {
                program: pg_ctl.display().to_string(),
                problem: format!(
                    "could not restart the kept server in {} ({})",
                    self.path.display(),
                    out.status
                ),
                output: format!(
                    "{}\n{}",
                    String::from_utf8_lossy(&out.stderr).trim(),
                    self.log_tail(2000)
                ),
            });
        }
        let pid = fs::read_to_string(self.data_dir.join("postmaster.pid"))
            .ok()
            .and_then(|t| t.lines().next().and_then(|l| l.trim().parse().ok()));
        // From here on nothing is removed on drop: the directory belongs to the operator.
        if let Some(d) = self.dir.take() {
            let _ = d.keep();
        }
        let run_as = self.run_as.map(|_| "postgres".to_string());
        Ok(KeptCluster {
            dir: self.path.clone(),
            data_dir: self.data_dir.clone(),
            port,
            pid,
            pg_ctl,
            run_as,
        })
    }

    /// The TCP port the server listens on (loopback only).
    pub fn port(&self) -> u16 {
        self.port
    }
    /// `127.0.0.1`.
    pub fn host(&self) -> &'static str {
        "127.0.0.1"
    }
    /// The cluster's temporary directory (data, socket, log).
    pub fn dir(&self) -> &Path {
        &self.path
    }
    /// The data directory.
    pub fn data_dir(&self) -> &Path {
        &self.data_dir
    }
    /// The private unix socket directory.
    pub fn socket_dir(&self) -> &Path {
        &self.socket_dir
    }
    /// The superuser's name (`postgres`).
    pub fn superuser(&self) -> &str {
        &self.superuser
    }
    /// The superuser's generated password.
    pub fn superuser_password(&self) -> &Password {
        &self.password
    }
    /// The server process id.
    pub fn pid(&self) -> Option<u32> {
        self.child.as_ref().map(Child::id)
    }
    /// The last `max` bytes of the server log.
    pub fn log_tail(&self, max: usize) -> String {
        tail(&self.log_path, max)
    }

    /// A connection configuration for `user` (with `password`) to database `dbname`
    /// over TCP on the loopback interface.
    pub fn config(
        &self,
        dbname: &str,
        user: &str,
        password: Option<Password>,
    ) -> Result<ConnConfig> {
        connection_config(self.host(), self.port, dbname, user, password)
    }

    /// The superuser's connection configuration for `dbname`.
    pub fn superuser_config(&self, dbname: &str) -> Result<ConnConfig> {
        self.config(dbname, &self.superuser, Some(self.password.clone()))
    }

    /// Connects as the superuser to `dbname`.
    pub fn connect(&self, dbname: &str) -> Result<postgres::Client> {
        Ok(self.superuser_config(dbname)?.connect()?)
    }

    /// The cluster's `system_identifier`.
    pub fn system_identifier(&self) -> Result<SystemIdentifier> {
        let mut c = self.connect("postgres")?;
        crate::target::read_system_identifier(&mut c)
    }

    /// `CREATE DATABASE name [TEMPLATE template]`, names quoted as identifiers.
    pub fn create_database(&self, name: &str, template: Option<&str>) -> Result<()> {
        let mut c = self.connect("postgres")?;
        create_database(&mut c, name, template)
    }

    /// `DROP DATABASE IF EXISTS name WITH (FORCE)`.
    pub fn drop_database(&self, name: &str) -> Result<()> {
        let mut c = self.connect("postgres")?;
        drop_database(&mut c, name)
    }
}

impl Drop for Cluster {
    fn drop(&mut self) {
        self.stop_server();
        if let Some(d) = self.dir.take() {
            let _ = d.close();
        }
    }
}

/// A throwaway cluster handed over to the operator by [`Cluster::keep`]: still running,
/// detached from this process, and no longer removed by cutter.
#[derive(Clone, Debug)]
pub struct KeptCluster {
    /// The cluster's directory (data, socket, log): remove it when done.
    pub dir: PathBuf,
    /// The data directory.
    pub data_dir: PathBuf,
    /// The loopback TCP port.
    pub port: u16,
    /// The postmaster's process id, from `postmaster.pid`.
    pub pid: Option<u32>,
    /// The `pg_ctl` that stops it.
    pub pg_ctl: PathBuf,
    /// The user the server runs as, when it is not the current one (running as root).
    pub run_as: Option<String>,
}

impl KeptCluster {
    /// The shell command that stops the server and removes its directory (paths
    /// quoted for a POSIX shell).
    pub fn teardown_command(&self) -> String {
        let stop = format!(
            "{} -D {} stop -m fast",
            shell_quote(&self.pg_ctl),
            shell_quote(&self.data_dir)
        );
        let stop = match &self.run_as {
            Some(user) => format!("runuser -u {user} -- {stop}"),
            None => stop,
        };
        format!("{stop} && rm -rf {}", shell_quote(&self.dir))
    }

    /// Stops the server (`pg_ctl stop -m fast`) and removes the directory.
    pub fn teardown(self) -> Result<()> {
        let mut cmd = Command::new(&self.pg_ctl);
        server_env(&mut cmd);
        cmd.arg("-D")
            .arg(&self.data_dir)
            .args(["stop", "-m", "fast", "-w"])
            .current_dir(&self.dir)
            .stdin(Stdio::null())
            .stdout(Stdio::null());
        if self.run_as.is_some() {
            if let Some(r) = lookup_user("postgres") {
                r.apply(&mut cmd);
            }
        }
        let out = cmd.output().map_err(|e| Error::Program {
            program: self.pg_ctl.display().to_string(),
            problem: format!("cannot start: {e}"),
            output: String::new(),
        })?;
        if !out.status.success() {
            return Err(Error::Program {
                program: self.pg_ctl.display().to_string(),
                problem: format!("could not stop the kept server ({})", out.status),
                output: String::from_utf8_lossy(&out.stderr).trim().to_string(),
            });
        }
        fs::remove_dir_all(&self.dir).map_err(|e| Error::io("removing", &self.dir, e))
    }
}

/// `path` as one word for a POSIX shell: single-quoted, a `'` written as `'\''`.
pub fn shell_quote(path: &Path) -> String {
    format!("'{}'", path.display().to_string().replace('\'', "'\\''"))
}

/// A loopback TCP connection configuration.
pub(crate) fn connection_config(
    host: &str,
    port: u16,
    dbname: &str,
    user: &str,
    password: Option<Password>,
) -> Result<ConnConfig> {
    let base = ConnConfig::parse(&format!(
        "host={host} port={port} dbname=postgres user=postgres sslmode=disable connect_timeout=10"
    ))?;
    Ok(base.with_user(user, password).with_dbname(dbname))
}

/// `CREATE DATABASE`, names quoted as identifiers.
pub(crate) fn create_database(
    c: &mut postgres::Client,
    name: &str,
    template: Option<&str>,
) -> Result<()> {
    let mut sql = format!("CREATE DATABASE {}", quote_ident(name));
    if let Some(t) = template {
        sql.push_str(&format!(" TEMPLATE {}", quote_ident(t)));
    }
    c.batch_execute(&sql)
        .doing(&format!("creating database {}", quote_ident(name)))
}

/// `DROP DATABASE IF EXISTS … WITH (FORCE)`.
pub(crate) fn drop_database(c: &mut postgres::Client, name: &str) -> Result<()> {
    c.batch_execute(&format!(
        "DROP DATABASE IF EXISTS {} WITH (FORCE)",
        quote_ident(name)
    ))
    .doing(&format!("dropping database {}", quote_ident(name)))
}
