//! libpq-compatible connection configuration.
//!
//! [`ConnConfig`] is what an operator means by "the database": it is parsed from
//! a `postgres://` URL or a libpq `keyword=value` string, completed from the
//! environment the way libpq does it (`PGHOST`, `PGPORT`, `PGUSER`, ...), and
//! finally filled in with libpq's defaults. It can then open a connection
//! ([`ConnConfig::connect`]) or describe itself to a child libpq program such as
//! `pg_dump` ([`ConnConfig::child_env`]).
//!
//! # Precedence
//!
//! 1. The explicit connection string (or, if none is given, `DATABASE_URL`).
//! 2. `PG*` environment variables, for parameters the string left unset. The
//!    host is treated as a unit: if the string names a `host` or a `hostaddr`,
//!    neither `PGHOST` nor `PGHOSTADDR` is used (libpq would combine a string's
//!    `host` with an inherited `PGHOSTADDR` and silently connect elsewhere).
//! 3. libpq defaults: user = operating-system user, dbname = user,
//!    host = `/var/run/postgresql` if that directory exists else `localhost`,
//!    port = 5432, passfile = `~/.pgpass`, sslmode = `prefer`.
//!
//! Empty values (`host=`, `PGPORT=""`) count as unset.
//!
//! # sslmode
//!
//! TLS is never used on unix-domain sockets (as in libpq); sslmode only matters
//! for TCP connections.
//!
//! * `disable`: plain TCP.
//! * `allow`: connect without TLS first; if the *server* rejects that attempt
//!   (an error response, e.g. `pg_hba.conf` only has `hostssl` lines), retry once
//!   with TLS. Network errors are not retried.
//! * `prefer` (default): send an SSLRequest; if the server offers TLS, do the
//!   TLS handshake, otherwise continue in plain text. If the server offers TLS
//!   but the handshake fails, the connection fails: unlike libpq there is **no**
//!   silent fallback to plain text after a failed handshake.
//! * `require`: TLS or fail.
//! * `verify-ca`: TLS, certificate chain verified against `sslrootcert`; the
//!   host name is not checked.
//! * `verify-full`: TLS, chain and host name verified; trust anchors come from
//!   `sslrootcert`, or the Mozilla roots bundled in `webpki-roots` when
//!   `sslrootcert` is unset or `system`.
//!
//! For `allow`, `prefer` and `require` the certificate is not verified (the
//! handshake signature still is), except — exactly like libpq — when a root
//! certificate file is configured (`sslrootcert`, `PGSSLROOTCERT`, or an
//! existing `~/.postgresql/root.crt`): then the chain is verified as with
//! `verify-ca`. `sslrootcert=system` requires `verify-full` (and makes it the
//! default), as in libpq 16.
//!
//! # Where things are
//!
//! This module holds what a configuration *is* ([`ConnConfig`], [`Password`], the
//! small value types, [`ConfigError`]); each job on it lives in its own submodule:
//! parsing (`parse`), environment and defaults (`env`), password files (`passfile`),
//! TLS (`tls`), connecting (`connect`), connect-error diagnosis (`diagnose`) and the
//! environment of child libpq programs (`child_env`).

mod child_env;
mod connect;
mod diagnose;
mod env;
mod parse;
mod passfile;
mod tls;

use std::fmt;
use std::net::IpAddr;
use std::path::{Path, PathBuf};
use std::str::FromStr;
use std::time::Duration;

use zeroize::Zeroize as _;

pub use child_env::ChildEnv;
pub use env::{DEFAULT_PORT, DEFAULT_SOCKET_DIR};
pub use passfile::{lookup_passfile, PassfileWarning, PasswordLookup, PasswordSource};

/// PostgreSQL's largest accepted timeout in milliseconds (`INT_MAX`).
const PG_MAX_TIMEOUT_MS: u128 = i32::MAX as u128;

/// Errors from parsing, resolving, connecting and preparing child environments.
///
/// No variant ever contains a password.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ConfigError {
    /// A connection string, URL or environment variable is malformed or asks
    /// for something cutter does not support.
    #[error("invalid {origin}: {problem}")]
    Invalid {
        /// Where the bad value came from, e.g. `connection URL`,
        /// `connection string in DATABASE_URL` or `environment variable PGPORT`.
        origin: String,
        /// What is wrong (naming the component or keyword) and what to do.
        problem: String,
    },
    /// The default user name could not be determined.
    #[error(
        "cannot determine the operating-system user name, which is the default PostgreSQL user: \
         {detail}; set PGUSER or give user=... in the connection string"
    )]
    NoOsUser {
        /// Why the lookup failed.
        detail: String,
    },
    /// TLS could not be set up (before any network traffic).
    #[error("cannot set up TLS (sslmode={sslmode}): {problem}")]
    Tls {
        /// The configured sslmode.
        sslmode: SslMode,
        /// What is wrong and what to do.
        problem: String,
    },
    /// The connection attempt failed.
    #[error("could not connect to {target}: {detail}{}", hint_suffix(.hint))]
    Connect {
        /// `host:port as user "u" (database "d", sslmode=m)`.
        target: String,
        /// What happened (server message or network/TLS error).
        detail: String,
        /// What to do about it, if we can tell.
        hint: Option<String>,
        /// The SQLSTATE the server sent, if it sent an error.
        sqlstate: Option<String>,
    },
    /// The environment for a child program could not be prepared.
    #[error("cannot prepare the environment for a libpq child program: {detail}: {io}")]
    ChildEnv {
        /// What was being done.
        detail: String,
        /// The I/O error.
        io: std::io::Error,
    },
    /// The password cannot be passed to a child program through a pgpass file.
    #[error(
        "the password contains a line break, which a pgpass file cannot represent; \
         child programs (pg_dump, pg_restore, psql) cannot be given this password"
    )]
    UnrepresentablePassword,
}

fn hint_suffix(hint: &Option<String>) -> String {
    match hint {
        Some(h) => format!("; {h}"),
        None => String::new(),
    }
}

/// A password. `Debug` and `Display` print `<redacted>`; the memory is zeroed
/// on drop. Use [`Password::expose_secret`] to read it.
#[derive(Clone, PartialEq, Eq)]
pub struct Password(String);

impl Password {
    /// Wraps a password.
    pub fn new(secret: impl Into<String>) -> Self {
        Password(secret.into())
    }

    /// The secret itself. Never log or format it.
    pub fn expose_secret(&self) -> &str {
        &self.0
    }
}

impl From<String> for Password {
    fn from(s: String) -> Self {
        Password(s)
    }
}

impl From<&str> for Password {
    fn from(s: &str) -> Self {
        Password(s.to_owned())
    }
}

impl Drop for Password {
    fn drop(&mut self) {
        self.0.zeroize();
    }
}

impl fmt::Debug for Password {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("<redacted>")
    }
}

impl fmt::Display for Password {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("<redacted>")
    }
}

/// libpq's `sslmode`; see the module documentation for exact semantics.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum SslMode {
    /// Plain TCP only.
    Disable,
    /// Plain first; TLS if the server rejects the plain attempt.
    Allow,
    /// TLS if the server offers it, plain otherwise.
    Prefer,
    /// TLS or fail; certificate not verified (unless a root file is configured).
    Require,
    /// TLS; chain verified against `sslrootcert`, host name not checked.
    VerifyCa,
    /// TLS; chain and host name verified.
    VerifyFull,
}

impl SslMode {
    /// The libpq spelling (`verify-full`, ...).
    pub fn as_str(self) -> &'static str {
        match self {
            SslMode::Disable => "disable",
            SslMode::Allow => "allow",
            SslMode::Prefer => "prefer",
            SslMode::Require => "require",
            SslMode::VerifyCa => "verify-ca",
            SslMode::VerifyFull => "verify-full",
        }
    }
}

impl fmt::Display for SslMode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for SslMode {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, String> {
        Ok(match s {
            "disable" => SslMode::Disable,
            "allow" => SslMode::Allow,
            "prefer" => SslMode::Prefer,
            "require" => SslMode::Require,
            "verify-ca" => SslMode::VerifyCa,
            "verify-full" => SslMode::VerifyFull,
            other => {
                return Err(format!(
                    "\"{other}\" is not an sslmode; use one of disable, allow, prefer, require, \
                     verify-ca, verify-full"
                ))
            }
        })
    }
}

/// Where to connect.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Host {
    /// A TCP host name or IP literal (IPv6 without brackets).
    Tcp(String),
    /// A directory containing the server's unix socket `.s.PGSQL.<port>`.
    Unix(PathBuf),
}

/// Trust anchors for certificate verification (`sslrootcert`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SslRootCert {
    /// A PEM file with one or more CA certificates.
    File(PathBuf),
    /// `sslrootcert=system`: the Mozilla roots bundled with cutter
    /// (`webpki-roots`), not the operating system's store.
    System,
}

/// A resolved connection configuration. `Debug` never shows the password.
#[derive(Clone, Debug)]
pub struct ConnConfig {
    host: Option<Host>,
    hostaddr: Option<IpAddr>,
    port: u16,
    user: String,
    dbname: String,
    password: Option<Password>,
    /// Where `password` came from, for error messages.
    password_origin: Option<String>,
    passfile: Option<PathBuf>,
    sslmode: SslMode,
    sslrootcert: Option<SslRootCert>,
    application_name: Option<String>,
    connect_timeout: Option<Duration>,
    statement_timeout: Option<Duration>,
    lock_timeout: Option<Duration>,
    options: Option<String>,
}

impl ConnConfig {
    /// A copy connecting as `user` with `password` (`None`: look it up in the
    /// password file). The previous password is dropped either way.
    pub fn with_user(&self, user: &str, password: Option<Password>) -> Self {
        let mut c = self.clone();
        c.user = user.to_owned();
        c.password_origin = password.as_ref().map(|_| "the caller".to_owned());
        c.password = password;
        c
    }

    /// A copy connecting to database `dbname`.
    pub fn with_dbname(&self, dbname: &str) -> Self {
        let mut c = self.clone();
        c.dbname = dbname.to_owned();
        c
    }

    /// A copy connecting to `host` (any `hostaddr` is dropped).
    pub fn with_host(&self, host: Host) -> Self {
        let mut c = self.clone();
        c.host = Some(host);
        c.hostaddr = None;
        c
    }

    /// A copy connecting to `port`.
    pub fn with_port(&self, port: u16) -> Self {
        let mut c = self.clone();
        c.port = port;
        c
    }

    /// A copy with another sslmode.
    pub fn with_sslmode(&self, sslmode: SslMode) -> Self {
        let mut c = self.clone();
        c.sslmode = sslmode;
        c
    }

    /// A copy with another `sslrootcert` (`None`: no root file).
    pub fn with_sslrootcert(&self, root: Option<SslRootCert>) -> Self {
        let mut c = self.clone();
        c.sslrootcert = root;
        c
    }

    /// A copy whose sessions get this `statement_timeout` (`None`: the server's
    /// setting; `Some(ZERO)`: disabled). Sent at connect time as
    /// `options=-c statement_timeout=<ms>ms`, so it also reaches child programs
    /// through `PGOPTIONS`. Sub-millisecond values round up to 1 ms.
    pub fn with_statement_timeout(&self, d: Option<Duration>) -> Self {
        let mut c = self.clone();
        c.statement_timeout = d;
        c
    }

    /// Like [`ConnConfig::with_statement_timeout`], for `lock_timeout`.
    pub fn with_lock_timeout(&self, d: Option<Duration>) -> Self {
        let mut c = self.clone();
        c.lock_timeout = d;
        c
    }

    /// A copy with `application_name` set (shown in `pg_stat_activity`).
    pub fn with_application_name(&self, name: &str) -> Self {
        let mut c = self.clone();
        c.application_name = Some(name.to_owned());
        c
    }

    /// A copy with another connect timeout (`None`: wait forever).
    pub fn with_connect_timeout(&self, d: Option<Duration>) -> Self {
        let mut c = self.clone();
        c.connect_timeout = d;
        c
    }

    /// The user name.
    pub fn user(&self) -> &str {
        &self.user
    }

    /// The database name.
    pub fn dbname(&self) -> &str {
        &self.dbname
    }

    /// The port (also selects the unix socket file `.s.PGSQL.<port>`).
    pub fn port(&self) -> u16 {
        self.port
    }

    /// The host; `None` only if just a `hostaddr` was given.
    pub fn host(&self) -> Option<&Host> {
        self.host.as_ref()
    }

    /// The numeric address to connect to instead of resolving the host.
    pub fn hostaddr(&self) -> Option<IpAddr> {
        self.hostaddr
    }

    /// The explicitly given password, if any (not the password file's).
    pub fn password(&self) -> Option<&Password> {
        self.password.as_ref()
    }

    /// The password file consulted when no password is given.
    pub fn passfile(&self) -> Option<&Path> {
        self.passfile.as_deref()
    }

    /// The sslmode.
    pub fn sslmode(&self) -> SslMode {
        self.sslmode
    }

    /// The trust anchors, if configured.
    pub fn sslrootcert(&self) -> Option<&SslRootCert> {
        self.sslrootcert.as_ref()
    }

    /// `application_name`, if set.
    pub fn application_name(&self) -> Option<&str> {
        self.application_name.as_deref()
    }

    /// The connect timeout, if any.
    pub fn connect_timeout(&self) -> Option<Duration> {
        self.connect_timeout
    }

    /// The statement timeout set with [`ConnConfig::with_statement_timeout`].
    pub fn statement_timeout(&self) -> Option<Duration> {
        self.statement_timeout
    }

    /// The lock timeout set with [`ConnConfig::with_lock_timeout`].
    pub fn lock_timeout(&self) -> Option<Duration> {
        self.lock_timeout
    }

    /// The `options` given in the connection string or `PGOPTIONS`.
    pub fn options(&self) -> Option<&str> {
        self.options.as_deref()
    }

    /// The `options` actually sent: the given ones followed by
    /// `-c statement_timeout=...` / `-c lock_timeout=...` (later wins).
    pub fn effective_options(&self) -> Option<String> {
        let mut parts: Vec<String> = Vec::new();
        if let Some(o) = self.options.as_deref().filter(|o| !o.trim().is_empty()) {
            parts.push(o.to_owned());
        }
        if let Some(d) = self.statement_timeout {
            parts.push(format!("-c statement_timeout={}", pg_millis(d)));
        }
        if let Some(d) = self.lock_timeout {
            parts.push(format!("-c lock_timeout={}", pg_millis(d)));
        }
        (!parts.is_empty()).then(|| parts.join(" "))
    }

    /// Whether the connection goes over TCP (and so sslmode applies).
    pub fn uses_tcp(&self) -> bool {
        self.hostaddr.is_some() || matches!(self.host, Some(Host::Tcp(_)) | None)
    }

    /// `db.example.com:5432`, `[::1]:5432`, `db.example.com:5432 (address
    /// 10.0.0.5)` or `unix socket /var/run/postgresql/.s.PGSQL.5432`.
    pub fn host_display(&self) -> String {
        match (&self.host, self.hostaddr) {
            (Some(Host::Tcp(h)), None) => host_port(h, self.port),
            (Some(Host::Tcp(h)), Some(a)) => {
                format!("{} (address {a})", host_port(h, self.port))
            }
            (Some(Host::Unix(d)), None) => format!(
                "unix socket {}",
                d.join(format!(".s.PGSQL.{}", self.port)).display()
            ),
            (_, Some(a)) => host_port(&a.to_string(), self.port),
            (None, None) => host_port("localhost", self.port),
        }
    }
}

fn host_port(h: &str, port: u16) -> String {
    if h.contains(':') {
        format!("[{h}]:{port}")
    } else {
        format!("{h}:{port}")
    }
}

/// PostgreSQL duration text in milliseconds; nonzero sub-millisecond values
/// round up (0 would disable the timeout), large values clamp to INT_MAX ms.
fn pg_millis(d: Duration) -> String {
    let mut ms = d.as_millis();
    if ms == 0 && !d.is_zero() {
        ms = 1;
    }
    format!("{}ms", ms.min(PG_MAX_TIMEOUT_MS))
}
