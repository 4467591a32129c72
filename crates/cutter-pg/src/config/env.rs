//! Environment and defaults: `DATABASE_URL`, then `PG*` variables for what the string left
//! unset, then libpq's defaults (OS user, socket directory, port, `~/.pgpass`, sslmode).
//! Invariant: the host is one unit (a string naming `host` or `hostaddr` takes neither
//! from the environment), and `PGSERVICE` is refused rather than ignored.

use std::ffi::OsStr;
use std::path::{Path, PathBuf};

use super::parse::{apply_param, parse_conninfo, Ctx, Params};
use super::{ConfigError, ConnConfig, Host, SslMode, SslRootCert};

/// The port libpq uses when none is given.
pub const DEFAULT_PORT: u16 = 5432;

/// The unix-socket directory of Debian's libpq (`DEFAULT_PGSOCKET_DIR`).
pub const DEFAULT_SOCKET_DIR: &str = "/var/run/postgresql";

/// `PG*` variables and the keyword each one sets.
const ENV_VARS: &[(&str, &str)] = &[
    ("PGHOST", "host"),
    ("PGHOSTADDR", "hostaddr"),
    ("PGPORT", "port"),
    ("PGUSER", "user"),
    ("PGDATABASE", "dbname"),
    ("PGPASSWORD", "password"),
    ("PGPASSFILE", "passfile"),
    ("PGSSLMODE", "sslmode"),
    ("PGSSLROOTCERT", "sslrootcert"),
    ("PGAPPNAME", "application_name"),
    ("PGCONNECT_TIMEOUT", "connect_timeout"),
    ("PGOPTIONS", "options"),
];

struct OsUser {
    name: String,
    home: PathBuf,
}

/// The effective user's passwd entry (`getpwuid_r(geteuid())`, like libpq).
#[allow(unsafe_code)]
fn os_user() -> Result<OsUser, String> {
    use std::ffi::CStr;
    use std::os::unix::ffi::OsStrExt as _;

    // SAFETY: geteuid has no preconditions and cannot fail.
    let euid = unsafe { libc::geteuid() };
    let mut buf: Vec<libc::c_char> = vec![0; 1024];
    loop {
        // SAFETY: `passwd` is a C struct of integers and raw pointers, for
        // which the all-zero bit pattern is a valid value.
        let mut pwd: libc::passwd = unsafe { std::mem::zeroed() };
        let mut result: *mut libc::passwd = std::ptr::null_mut();
        // SAFETY: all pointers are valid for the duration of the call; `buf`'s
        // true length is passed, so getpwuid_r writes only inside `pwd` and `buf`.
        let rc =
            unsafe { libc::getpwuid_r(euid, &mut pwd, buf.as_mut_ptr(), buf.len(), &mut result) };
        if rc == libc::ERANGE && buf.len() < (1 << 20) {
            buf.resize(buf.len() * 4, 0);
            continue;
        }
        if rc != 0 {
            return Err(format!(
                "looking up user ID {euid} failed: {}",
                std::io::Error::from_raw_os_error(rc)
            ));
        }
        if result.is_null() || pwd.pw_name.is_null() {
            return Err(format!("user ID {euid} has no entry in the user database"));
        }
        // SAFETY: on success pw_name (checked non-null above) points to a
        // NUL-terminated string inside `buf`, which is still alive.
        let name = unsafe { CStr::from_ptr(pwd.pw_name) }
            .to_str()
            .map_err(|_| format!("the name of user ID {euid} is not valid UTF-8"))?
            .to_owned();
        let home = if pwd.pw_dir.is_null() {
            PathBuf::new()
        } else {
            // SAFETY: as above, pw_dir points into `buf`.
            PathBuf::from(OsStr::from_bytes(
                unsafe { CStr::from_ptr(pwd.pw_dir) }.to_bytes(),
            ))
        };
        return Ok(OsUser { name, home });
    }
}

fn nonempty(v: Option<String>) -> Option<String> {
    v.filter(|v| !v.is_empty())
}

impl ConnConfig {
    /// Resolves the connection the way libpq would for an operator: the
    /// explicit string if given (blank counts as not given), else
    /// `DATABASE_URL`; then `PG*` variables for what is still unset; then
    /// defaults. `env` is the environment lookup (inject it in tests).
    ///
    /// `PGSERVICE` is rejected: cutter does not read `pg_service.conf`, and
    /// ignoring it would connect somewhere else than `psql` does.
    pub fn resolve(
        explicit: Option<&str>,
        env: &dyn Fn(&str) -> Option<String>,
    ) -> Result<Self, ConfigError> {
        let getenv = |k: &str| nonempty(env(k));
        if getenv("PGSERVICE").is_some() {
            return Err(ConfigError::Invalid {
                origin: "environment variable PGSERVICE".to_owned(),
                problem: "connection services (pg_service.conf) are not supported by cutter; \
                          unset PGSERVICE and give the connection as a URL or PG* variables"
                    .to_owned(),
            });
        }
        let mut params = match explicit.filter(|s| !s.trim().is_empty()) {
            Some(s) => parse_conninfo(s, None)?,
            None => match getenv("DATABASE_URL") {
                Some(url) => parse_conninfo(&url, Some("DATABASE_URL"))?,
                None => Params::default(),
            },
        };
        for (var, key) in ENV_VARS {
            if params.is_set(key) {
                if getenv(var).is_some() && matches!(*key, "host" | "hostaddr") {
                    tracing::debug!("{var} ignored: the connection string names the host");
                }
                continue;
            }
            if let Some(v) = getenv(var) {
                let ctx = Ctx {
                    origin: format!("environment variable {var}"),
                    quiet: false,
                };
                apply_param(&mut params, key, v, &ctx, "")?;
            }
        }
        Self::finish(params, env)
    }

    /// [`ConnConfig::resolve`] with the process environment.
    pub fn from_process_env(explicit: Option<&str>) -> Result<Self, ConfigError> {
        Self::resolve(explicit, &|k| std::env::var(k).ok())
    }

    pub(super) fn finish(
        p: Params,
        env: &dyn Fn(&str) -> Option<String>,
    ) -> Result<Self, ConfigError> {
        let mut os: Option<Result<OsUser, String>> = None;
        let mut os_user_cached = || {
            os.get_or_insert_with(os_user)
                .as_ref()
                .map_err(Clone::clone)
                .map(|u| (u.name.clone(), u.home.clone()))
        };

        let user = match p.user {
            Some(u) => u,
            None => {
                os_user_cached()
                    .map_err(|detail| ConfigError::NoOsUser { detail })?
                    .0
            }
        };
        let dbname = p.dbname.unwrap_or_else(|| user.clone());
        let host = if p.host.is_none() && p.hostaddr.is_none() {
            Some(default_host())
        } else {
            p.host
        };
        let home = nonempty(env("HOME"))
            .map(PathBuf::from)
            .or_else(|| os_user_cached().ok().map(|(_, h)| h))
            .filter(|h| !h.as_os_str().is_empty());
        let passfile = p
            .passfile
            .or_else(|| home.as_ref().map(|h| h.join(".pgpass")));
        let sslrootcert = p.sslrootcert.or_else(|| {
            home.as_ref()
                .map(|h| h.join(".postgresql").join("root.crt"))
                .filter(|f| f.is_file())
                .map(SslRootCert::File)
        });
        let sslmode = match (p.sslmode, &sslrootcert) {
            (Some(m), Some(SslRootCert::System)) if m != SslMode::VerifyFull => {
                return Err(ConfigError::Invalid {
                    origin: "connection settings".to_owned(),
                    problem: format!(
                        "sslrootcert=system requires sslmode=verify-full, but sslmode={m}; use \
                         sslmode=verify-full or point sslrootcert at a CA file"
                    ),
                })
            }
            (Some(m), _) => m,
            (None, Some(SslRootCert::System)) => SslMode::VerifyFull,
            (None, _) => SslMode::Prefer,
        };
        let (password, password_origin) = match p.password {
            Some((pw, origin)) => (Some(pw), Some(origin)),
            None => (None, None),
        };
        Ok(ConnConfig {
            host,
            hostaddr: p.hostaddr,
            port: p.port.unwrap_or(DEFAULT_PORT),
            user,
            dbname,
            password,
            password_origin,
            passfile,
            sslmode,
            sslrootcert,
            application_name: p.application_name.or(p.fallback_application_name),
            connect_timeout: p.connect_timeout.flatten(),
            statement_timeout: None,
            lock_timeout: None,
            options: p.options,
        })
    }
}

fn default_host() -> Host {
    if Path::new(DEFAULT_SOCKET_DIR).is_dir() {
        Host::Unix(PathBuf::from(DEFAULT_SOCKET_DIR))
    } else {
        Host::Tcp("localhost".to_owned())
    }
}
