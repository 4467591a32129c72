//! Environment and defaults: `DATABASE_URL`, then the connection service, then `PG*`
//! variables for what is still unset, then libpq's defaults (OS user, socket directory,
//! port, `~/.pgpass`, sslmode, client certificate), and the host list checked into
//! endpoints. Invariant: the host is one unit (a string or service naming `host` or
//! `hostaddr` takes neither from the environment).

use std::ffi::OsStr;
use std::net::IpAddr;
use std::path::{Path, PathBuf};

use super::parse::{apply_param, parse_conninfo, Ctx, Params};
use super::service::apply_service;
use super::{
    ChannelBinding, ConfigError, ConnConfig, Endpoint, Host, SslMode, SslRootCert,
    TargetSessionAttrs,
};

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
    ("PGSSLCERT", "sslcert"),
    ("PGSSLKEY", "sslkey"),
    ("PGCHANNELBINDING", "channel_binding"),
    ("PGTARGETSESSIONATTRS", "target_session_attrs"),
    // libpq 16's; refused with the reason rather than ignored.
    ("PGREQUIREAUTH", "require_auth"),
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
    /// `DATABASE_URL`; then the connection service it or `PGSERVICE` names; then
    /// `PG*` variables for what is still unset; then defaults. `env` is the
    /// environment lookup (inject it in tests).
    pub fn resolve(
        explicit: Option<&str>,
        env: &dyn Fn(&str) -> Option<String>,
    ) -> Result<Self, ConfigError> {
        let getenv = |k: &str| nonempty(env(k));
        let mut params = match explicit.filter(|s| !s.trim().is_empty()) {
            Some(s) => parse_conninfo(s, None)?,
            None => match getenv("DATABASE_URL") {
                Some(url) => parse_conninfo(&url, Some("DATABASE_URL"))?,
                None => Params::default(),
            },
        };
        if let Some(service) = params.service.clone().or_else(|| getenv("PGSERVICE")) {
            apply_service(&mut params, &service, env, home_dir(env).as_deref())?;
        }
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

    /// The configuration from `p` (the explicit string and its service, already
    /// applied) and libpq's defaults.
    pub(super) fn finish(
        p: Params,
        env: &dyn Fn(&str) -> Option<String>,
    ) -> Result<Self, ConfigError> {
        let user = match p.user {
            Some(u) => u,
            None => {
                os_user()
                    .map_err(|detail| ConfigError::NoOsUser { detail })?
                    .name
            }
        };
        let dbname = p.dbname.unwrap_or_else(|| user.clone());
        let endpoints = endpoints(p.host, p.hostaddr, p.port)?;
        let home = home_dir(env);
        let in_home = |rel: &str| home.as_ref().map(|h| h.join(rel));
        let passfile = p.passfile.or_else(|| in_home(".pgpass"));
        let default_root_cert = in_home(".postgresql/root.crt");
        let sslrootcert = p.sslrootcert.or_else(|| {
            default_root_cert
                .clone()
                .filter(|f| f.is_file())
                .map(SslRootCert::File)
        });
        let sslmode = match (p.sslmode, &sslrootcert) {
            (Some(m), Some(SslRootCert::System)) if m != SslMode::VerifyFull => {
                return Err(ConfigError::Invalid {
                    origin: "connection settings".to_owned(),
                    problem: format!(
                        "weak sslmode \"{m}\" may not be used with sslrootcert=system (use \
                         \"verify-full\")"
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
            endpoints,
            user,
            dbname,
            password,
            password_origin,
            passfile,
            sslmode,
            sslrootcert,
            default_root_cert,
            sslcert: p.sslcert.or_else(|| in_home(".postgresql/postgresql.crt")),
            sslkey: p.sslkey.or_else(|| in_home(".postgresql/postgresql.key")),
            channel_binding: p.channel_binding.unwrap_or(ChannelBinding::Prefer),
            target_session_attrs: p.target_session_attrs.unwrap_or(TargetSessionAttrs::Any),
            application_name: p.application_name.or(p.fallback_application_name),
            connect_timeout: p.connect_timeout.flatten(),
            statement_timeout: None,
            lock_timeout: None,
            options: p.options,
        })
    }
}

/// The home directory: `HOME`, else the user database's entry.
pub(super) fn home_dir(env: &dyn Fn(&str) -> Option<String>) -> Option<PathBuf> {
    nonempty(env("HOME"))
        .map(PathBuf::from)
        .or_else(|| os_user().ok().map(|u| u.home))
        .filter(|h| !h.as_os_str().is_empty())
}

/// The servers to try, from the host, hostaddr and port lists, by libpq 15's rules: the
/// hostaddr list (else the host list) sets how many; a host list beside it must be as
/// long; one port applies to every host, otherwise there must be one per host; an empty
/// entry is the default.
fn endpoints(
    hosts: Option<Vec<Option<Host>>>,
    addrs: Option<Vec<Option<IpAddr>>>,
    ports: Option<Vec<Option<u16>>>,
) -> Result<Vec<Endpoint>, ConfigError> {
    let (hosts, addrs, ports) = (
        hosts.unwrap_or_default(),
        addrs.unwrap_or_default(),
        ports.unwrap_or_default(),
    );
    let n = if !addrs.is_empty() {
        addrs.len()
    } else {
        hosts.len().max(1)
    };
    let bad = |problem: String| ConfigError::Invalid {
        origin: "connection settings".to_owned(),
        problem,
    };
    if !hosts.is_empty() && hosts.len() != n {
        return Err(bad(format!(
            "could not match {} host names to {n} hostaddr values; give one hostaddr per host",
            hosts.len()
        )));
    }
    if ports.len() > 1 && ports.len() != n {
        return Err(bad(format!(
            "could not match {} port numbers to {n} hosts; give one port for all or one per host",
            ports.len()
        )));
    }
    Ok((0..n)
        .map(|i| {
            let host = hosts.get(i).cloned().flatten();
            let hostaddr = addrs.get(i).copied().flatten();
            let port = match ports.as_slice() {
                [one] => *one,
                many => many.get(i).copied().flatten(),
            };
            Endpoint {
                host: match (host, hostaddr) {
                    (None, None) => Some(default_host()),
                    (h, _) => h,
                },
                hostaddr,
                port: port.unwrap_or(DEFAULT_PORT),
            }
        })
        .collect())
}

fn default_host() -> Host {
    if Path::new(DEFAULT_SOCKET_DIR).is_dir() {
        Host::Unix(PathBuf::from(DEFAULT_SOCKET_DIR))
    } else {
        Host::Tcp("localhost".to_owned())
    }
}
