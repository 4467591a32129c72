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
//! 2. The connection service it names (`service=`, else `PGSERVICE`), for parameters the
//!    string left unset: its section in `PGSERVICEFILE` (default `~/.pg_service.conf`),
//!    else in `$PGSYSCONFDIR/pg_service.conf` (default `/etc/postgresql-common`, Debian's
//!    libpq), with libpq 15's rules and messages.
//! 3. `PG*` environment variables, for parameters still unset. The host is treated as a
//!    unit: if the string or the service names a `host` or a `hostaddr`, neither `PGHOST`
//!    nor `PGHOSTADDR` is used (libpq would combine a string's `host` with an inherited
//!    `PGHOSTADDR` and silently connect elsewhere).
//! 4. libpq defaults: user = operating-system user, dbname = user,
//!    host = `/var/run/postgresql` if that directory exists else `localhost`,
//!    port = 5432, passfile = `~/.pgpass`, sslmode = `prefer`,
//!    sslcert/sslkey = `~/.postgresql/postgresql.crt|.key`, channel_binding = `prefer`,
//!    target_session_attrs = `any`.
//!
//! Empty values (`host=`, `PGPORT=""`) count as unset.
//!
//! # Several hosts
//!
//! `host=a,b port=5432,5433` (a single port applies to every host; an empty entry is the
//! default), `hostaddr=` lists, and URLs `postgresql://h1:p1,h2:p2/db` give the hosts
//! tried in order, each with its own password-file line and TLS name, until one accepts
//! the session `target_session_attrs` asks for (`any`, `read-write`, `read-only`,
//! `primary`, `standby`, `prefer-standby`, as in libpq 15).
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
//! * `verify-full`: TLS, chain and host name verified against `sslrootcert`.
//!
//! `verify-ca` and `verify-full` need a root certificate: `sslrootcert`,
//! `PGSSLROOTCERT`, or an existing `~/.postgresql/root.crt`; without one the
//! connection is refused with libpq's message (`root certificate file "…" does not
//! exist`). `sslrootcert=system` (libpq 16) is the operating system's store
//! (`rustls-native-certs`; `SSL_CERT_FILE` honoured), requires `verify-full` (and makes
//! it the default); a child program gets the system CA bundle's path as
//! `PGSSLROOTCERT`, which libpq 15 reads as a file.
//!
//! For `allow`, `prefer` and `require` the certificate is not verified (the
//! handshake signature still is), except — exactly like libpq — when a root
//! certificate file is configured: then the chain is verified as with `verify-ca`.
//! One deliberate difference: a root file that was *named* (`sslrootcert`,
//! `PGSSLROOTCERT`) but cannot be read is an error in every mode, where libpq
//! silently stops verifying.
//!
//! # Client certificates, channel binding, require_auth
//!
//! When TLS is used, the client certificate `sslcert` (default
//! `~/.postgresql/postgresql.crt`) is sent if that file exists, with its key `sslkey`
//! (default `~/.postgresql/postgresql.key`), checked as libpq checks it: a regular file,
//! mode 0600 or less, or 0640 or less if owned by root.
//! Encrypted keys (`sslpassword`) are refused.
//!
//! `channel_binding=require` accepts only a server that authenticates with
//! SCRAM-SHA-256-PLUS bound to the TLS connection, so a man in the middle cannot
//! downgrade the authentication; `prefer` (default) binds when the server offers it.
//!
//! `require_auth` (libpq 16) is refused: tokio-postgres authenticates inside its
//! connection handshake and does not report which authentication request the server
//! sent, so cutter could not enforce it (and libpq 15, the child programs', does not
//! know the parameter). `channel_binding=require` is the enforceable way to demand
//! SCRAM.
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
mod service;
mod tls;

use std::fmt;
use std::net::IpAddr;
use std::path::{Path, PathBuf};
use std::str::FromStr;
use std::time::Duration;

use zeroize::Zeroize as _;

pub use child_env::{system_ca_bundle, ChildEnv, LIBPQ_CONNECTION_VARS};
pub use env::{DEFAULT_PORT, DEFAULT_SOCKET_DIR};
pub use passfile::{lookup_passfile, PassfileWarning, PasswordLookup, PasswordSource};
pub use service::DEFAULT_SYSCONFDIR;

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
    /// `sslrootcert=system`: the operating system's store (`rustls-native-certs`; for a
    /// child program, the system CA bundle's path).
    System,
}

/// libpq's `channel_binding`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ChannelBinding {
    /// Never bind (plain SCRAM-SHA-256 even over TLS).
    Disable,
    /// Bind when the server offers SCRAM-SHA-256-PLUS over TLS (the default).
    Prefer,
    /// Accept only SCRAM-SHA-256-PLUS bound to this TLS connection.
    Require,
}

impl ChannelBinding {
    /// The libpq spelling.
    pub fn as_str(self) -> &'static str {
        match self {
            ChannelBinding::Disable => "disable",
            ChannelBinding::Prefer => "prefer",
            ChannelBinding::Require => "require",
        }
    }
}

impl FromStr for ChannelBinding {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, String> {
        Ok(match s {
            "disable" => ChannelBinding::Disable,
            "prefer" => ChannelBinding::Prefer,
            "require" => ChannelBinding::Require,
            other => {
                return Err(format!(
                    "invalid channel_binding value: \"{other}\" (use disable, prefer or require)"
                ))
            }
        })
    }
}

/// libpq 15's `target_session_attrs`: which of several hosts is acceptable.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TargetSessionAttrs {
    /// The first server that accepts the connection (the default).
    Any,
    /// A session that can write (`transaction_read_only` off).
    ReadWrite,
    /// A read-only session.
    ReadOnly,
    /// A server not in hot standby.
    Primary,
    /// A server in hot standby.
    Standby,
    /// A standby if there is one, else any server.
    PreferStandby,
}

impl TargetSessionAttrs {
    /// The libpq spelling.
    pub fn as_str(self) -> &'static str {
        match self {
            TargetSessionAttrs::Any => "any",
            TargetSessionAttrs::ReadWrite => "read-write",
            TargetSessionAttrs::ReadOnly => "read-only",
            TargetSessionAttrs::Primary => "primary",
            TargetSessionAttrs::Standby => "standby",
            TargetSessionAttrs::PreferStandby => "prefer-standby",
        }
    }
}

impl FromStr for TargetSessionAttrs {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, String> {
        Ok(match s {
            "any" => TargetSessionAttrs::Any,
            "read-write" => TargetSessionAttrs::ReadWrite,
            "read-only" => TargetSessionAttrs::ReadOnly,
            "primary" => TargetSessionAttrs::Primary,
            "standby" => TargetSessionAttrs::Standby,
            "prefer-standby" => TargetSessionAttrs::PreferStandby,
            other => {
                return Err(format!(
                    "invalid target_session_attrs value: \"{other}\" (use any, read-write, \
                     read-only, primary, standby or prefer-standby)"
                ))
            }
        })
    }
}

/// One server to try: a host (or only a numeric address) and a port.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Endpoint {
    /// The host; `None` only if just a `hostaddr` was given.
    pub host: Option<Host>,
    /// The numeric address to connect to instead of resolving the host.
    pub hostaddr: Option<IpAddr>,
    /// The port (also selects the unix socket file `.s.PGSQL.<port>`).
    pub port: u16,
}

/// A resolved connection configuration. `Debug` never shows the password.
#[derive(Clone, Debug)]
pub struct ConnConfig {
    /// The servers to try, in order; never empty.
    endpoints: Vec<Endpoint>,
    user: String,
    dbname: String,
    password: Option<Password>,
    /// Where `password` came from, for error messages.
    password_origin: Option<String>,
    passfile: Option<PathBuf>,
    sslmode: SslMode,
    sslrootcert: Option<SslRootCert>,
    /// `~/.postgresql/root.crt`, named when verification needs a root and there is none.
    default_root_cert: Option<PathBuf>,
    sslcert: Option<PathBuf>,
    sslkey: Option<PathBuf>,
    channel_binding: ChannelBinding,
    target_session_attrs: TargetSessionAttrs,
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

    /// A copy connecting to `host` only, on the first host's port (other hosts and any
    /// `hostaddr` are dropped).
    pub fn with_host(&self, host: Host) -> Self {
        let mut c = self.clone();
        c.endpoints = vec![Endpoint {
            host: Some(host),
            hostaddr: None,
            port: self.port(),
        }];
        c
    }

    /// A copy connecting to `port` (on every host).
    pub fn with_port(&self, port: u16) -> Self {
        let mut c = self.clone();
        for e in &mut c.endpoints {
            e.port = port;
        }
        c
    }

    /// A copy with another `channel_binding`.
    pub fn with_channel_binding(&self, cb: ChannelBinding) -> Self {
        let mut c = self.clone();
        c.channel_binding = cb;
        c
    }

    /// A copy with another `target_session_attrs`.
    pub fn with_target_session_attrs(&self, t: TargetSessionAttrs) -> Self {
        let mut c = self.clone();
        c.target_session_attrs = t;
        c
    }

    /// A copy with another client certificate and key (`None`: no client certificate).
    pub fn with_client_cert(&self, cert: Option<PathBuf>, key: Option<PathBuf>) -> Self {
        let mut c = self.clone();
        c.sslcert = cert;
        c.sslkey = key;
        c
    }

    /// A copy with only endpoint `i` (the per-host configuration a connection attempt
    /// and its password lookup use).
    pub(super) fn single(&self, i: usize) -> Self {
        let mut c = self.clone();
        c.endpoints = vec![self.endpoints[i].clone()];
        c
    }

    /// The first (for a single-host configuration, the only) endpoint.
    pub(super) fn first(&self) -> &Endpoint {
        &self.endpoints[0]
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

    /// The first host's port (also selects the unix socket file `.s.PGSQL.<port>`).
    pub fn port(&self) -> u16 {
        self.first().port
    }

    /// The first host; `None` only if just a `hostaddr` was given.
    pub fn host(&self) -> Option<&Host> {
        self.first().host.as_ref()
    }

    /// The first host's numeric address to connect to instead of resolving the host.
    pub fn hostaddr(&self) -> Option<IpAddr> {
        self.first().hostaddr
    }

    /// Every server to try, in order (one for a single host).
    pub fn endpoints(&self) -> &[Endpoint] {
        &self.endpoints
    }

    /// The client certificate file sent when the file exists.
    pub fn sslcert(&self) -> Option<&Path> {
        self.sslcert.as_deref()
    }

    /// The client certificate's key file.
    pub fn sslkey(&self) -> Option<&Path> {
        self.sslkey.as_deref()
    }

    /// The `channel_binding` setting.
    pub fn channel_binding(&self) -> ChannelBinding {
        self.channel_binding
    }

    /// The `target_session_attrs` setting.
    pub fn target_session_attrs(&self) -> TargetSessionAttrs {
        self.target_session_attrs
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

    /// Whether the (first host's) connection goes over TCP (and so sslmode applies).
    pub fn uses_tcp(&self) -> bool {
        self.first().uses_tcp()
    }

    /// `db.example.com:5432`, `[::1]:5432`, `db.example.com:5432 (address
    /// 10.0.0.5)` or `unix socket /var/run/postgresql/.s.PGSQL.5432`; several hosts
    /// joined by `, `.
    pub fn host_display(&self) -> String {
        self.endpoints
            .iter()
            .map(Endpoint::display)
            .collect::<Vec<_>>()
            .join(", ")
    }
}

impl Endpoint {
    /// Whether this endpoint is reached over TCP (and so sslmode applies).
    pub fn uses_tcp(&self) -> bool {
        self.hostaddr.is_some() || matches!(self.host, Some(Host::Tcp(_)) | None)
    }

    /// See [`ConnConfig::host_display`].
    pub fn display(&self) -> String {
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
