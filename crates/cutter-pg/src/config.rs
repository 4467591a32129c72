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

use std::ffi::{OsStr, OsString};
use std::fmt;
use std::io::Write as _;
use std::net::IpAddr;
use std::os::unix::fs::{OpenOptionsExt as _, PermissionsExt as _};
use std::path::{Path, PathBuf};
use std::str::FromStr;
use std::sync::Arc;
use std::time::Duration;

use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::crypto::CryptoProvider;
use rustls::pki_types::pem::PemObject as _;
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::{DigitallySignedStruct, RootCertStore, SignatureScheme};
use tokio_postgres_rustls::MakeRustlsConnect;
use zeroize::Zeroize as _;

/// The port libpq uses when none is given.
pub const DEFAULT_PORT: u16 = 5432;

/// The unix-socket directory of Debian's libpq (`DEFAULT_PGSOCKET_DIR`).
pub const DEFAULT_SOCKET_DIR: &str = "/var/run/postgresql";

/// The connection parameters cutter understands (libpq keywords).
const SUPPORTED_KEYWORDS: &[&str] = &[
    "host",
    "hostaddr",
    "port",
    "user",
    "dbname",
    "password",
    "passfile",
    "sslmode",
    "sslrootcert",
    "application_name",
    "fallback_application_name",
    "connect_timeout",
    "options",
    "client_encoding",
];

/// libpq keywords that cutter recognises but cannot honour; they are rejected
/// instead of being silently ignored.
const UNSUPPORTED_LIBPQ_KEYWORDS: &[&str] = &[
    "sslcert",
    "sslkey",
    "sslpassword",
    "sslcertmode",
    "sslcrl",
    "sslcrldir",
    "sslsni",
    "sslcompression",
    "sslnegotiation",
    "sslkeylogfile",
    "ssl_min_protocol_version",
    "ssl_max_protocol_version",
    "min_protocol_version",
    "max_protocol_version",
    "requirepeer",
    "require_auth",
    "channel_binding",
    "gssencmode",
    "gsslib",
    "gssdelegation",
    "krbsrvname",
    "service",
    "target_session_attrs",
    "load_balance_hosts",
    "keepalives",
    "keepalives_idle",
    "keepalives_interval",
    "keepalives_count",
    "tcp_user_timeout",
    "replication",
    "requiressl",
    "oauth_issuer",
    "oauth_client_id",
    "oauth_client_secret",
    "oauth_scope",
    "scram_client_key",
    "scram_server_key",
];

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

/// Variables a child libpq program must not inherit from cutter's own
/// environment, because they would make it connect somewhere else or with
/// other credentials than [`ConnConfig::child_env`] describes.
const CHILD_CLEARED_VARS: &[&str] = &[
    "PGHOST",
    "PGHOSTADDR",
    "PGPORT",
    "PGUSER",
    "PGDATABASE",
    "PGPASSWORD",
    "PGPASSFILE",
    "PGSERVICE",
    "PGSERVICEFILE",
    "PGOPTIONS",
    "PGAPPNAME",
    "PGSSLMODE",
    "PGREQUIRESSL",
    "PGSSLROOTCERT",
    "PGSSLCERT",
    "PGSSLKEY",
    "PGSSLCRL",
    "PGSSLCRLDIR",
    "PGSSLNEGOTIATION",
    "PGCONNECT_TIMEOUT",
    "PGTARGETSESSIONATTRS",
    "PGLOADBALANCEHOSTS",
    "PGCHANNELBINDING",
    "PGREQUIREAUTH",
];

/// PostgreSQL's largest accepted timeout in milliseconds (`INT_MAX`).
const PG_MAX_TIMEOUT_MS: u128 = i32::MAX as u128;

// ---------------------------------------------------------------------------
// Errors
// ---------------------------------------------------------------------------

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

// ---------------------------------------------------------------------------
// Password
// ---------------------------------------------------------------------------

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

// ---------------------------------------------------------------------------
// Small public types
// ---------------------------------------------------------------------------

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

/// Where the password used for a connection comes from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PasswordSource {
    /// Given directly: in the connection string/URL, `PGPASSWORD`, or by the caller.
    Given {
        /// Human description, e.g. `the PGPASSWORD environment variable`.
        origin: String,
    },
    /// Found in a password file.
    Passfile {
        /// The file.
        path: PathBuf,
        /// 1-based line number of the matching line.
        line: usize,
    },
    /// No password was given and no password file line matched.
    NotFound,
}

impl fmt::Display for PasswordSource {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            PasswordSource::Given { origin } => write!(f, "{origin}"),
            PasswordSource::Passfile { path, line } => {
                write!(f, "password file {} line {line}", path.display())
            }
            PasswordSource::NotFound => f.write_str("no password found"),
        }
    }
}

/// Why a password file was ignored (libpq ignores it in the same cases).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PassfileWarning {
    /// The path exists but is not a regular file.
    NotPlainFile {
        /// The path.
        path: PathBuf,
    },
    /// The file is readable or writable by group or others.
    GroupOrWorldAccess {
        /// The file.
        path: PathBuf,
        /// Its permission bits, e.g. `0o644`.
        mode: u32,
    },
    /// The file exists but could not be read.
    Unreadable {
        /// The file.
        path: PathBuf,
        /// The I/O error text.
        error: String,
    },
}

impl fmt::Display for PassfileWarning {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            PassfileWarning::NotPlainFile { path } => write!(
                f,
                "password file \"{}\" is not a plain file; ignoring it",
                path.display()
            ),
            PassfileWarning::GroupOrWorldAccess { path, mode } => write!(
                f,
                "password file \"{p}\" has group or world access; permissions should be u=rw \
                 (0600) or less (it has mode {mode:04o}); ignoring it (fix: chmod 0600 {p})",
                p = path.display()
            ),
            PassfileWarning::Unreadable { path, error } => write!(
                f,
                "password file \"{}\" cannot be read ({error}); ignoring it",
                path.display()
            ),
        }
    }
}

/// The result of a password lookup: the password, where it came from, and
/// which password files were ignored.
#[derive(Debug, Clone)]
pub struct PasswordLookup {
    /// The password, if one was found.
    pub password: Option<Password>,
    /// Where it came from.
    pub source: PasswordSource,
    /// Password files that were skipped and why (also logged with `tracing::warn!`).
    pub warnings: Vec<PassfileWarning>,
}

impl PasswordLookup {
    fn not_found(warnings: Vec<PassfileWarning>) -> Self {
        PasswordLookup {
            password: None,
            source: PasswordSource::NotFound,
            warnings,
        }
    }
}

// ---------------------------------------------------------------------------
// Password files
// ---------------------------------------------------------------------------

/// Looks up the password for `host:port:dbname:user` in the pgpass file at
/// `path`, following libpq: `#` comments, `*` wildcard fields, `\:` and `\\`
/// escapes, first matching line wins. A missing file is not an error. A file
/// that is not a regular file or has any group/other permission bits is ignored
/// (reported in [`PasswordLookup::warnings`]).
///
/// `host` should be what libpq compares: the host name, or `localhost` for the
/// default socket directory (see [`ConnConfig::lookup_password`]).
pub fn lookup_passfile(
    path: &Path,
    host: &str,
    port: u16,
    dbname: &str,
    user: &str,
) -> PasswordLookup {
    let meta = match std::fs::metadata(path) {
        Ok(m) => m,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            return PasswordLookup::not_found(Vec::new())
        }
        Err(e) => {
            return PasswordLookup::not_found(vec![PassfileWarning::Unreadable {
                path: path.to_owned(),
                error: e.to_string(),
            }])
        }
    };
    if !meta.is_file() {
        return PasswordLookup::not_found(vec![PassfileWarning::NotPlainFile {
            path: path.to_owned(),
        }]);
    }
    let mode = meta.permissions().mode() & 0o7777;
    if mode & 0o077 != 0 {
        return PasswordLookup::not_found(vec![PassfileWarning::GroupOrWorldAccess {
            path: path.to_owned(),
            mode,
        }]);
    }
    let mut bytes = match std::fs::read(path) {
        Ok(b) => b,
        Err(e) => {
            return PasswordLookup::not_found(vec![PassfileWarning::Unreadable {
                path: path.to_owned(),
                error: e.to_string(),
            }])
        }
    };
    let port = port.to_string();
    let wanted = [host, port.as_str(), dbname, user];
    let mut found = None;
    {
        let text = String::from_utf8_lossy(&bytes);
        for (idx, raw) in text.split('\n').enumerate() {
            let line = raw.strip_suffix('\r').unwrap_or(raw);
            if line.is_empty() || line.starts_with('#') {
                continue;
            }
            if let Some(pw) = match_pgpass_line(line, &wanted) {
                found = Some((pw, idx + 1));
                break;
            }
        }
    }
    bytes.zeroize();
    match found {
        Some((pw, line)) => PasswordLookup {
            password: Some(pw),
            source: PasswordSource::Passfile {
                path: path.to_owned(),
                line,
            },
            warnings: Vec::new(),
        },
        None => PasswordLookup::not_found(Vec::new()),
    }
}

/// Matches one pgpass line against host, port, dbname, user; returns the
/// (unescaped) password field on a match.
fn match_pgpass_line(line: &str, wanted: &[&str; 4]) -> Option<Password> {
    let mut rest = line;
    for want in wanted {
        let (raw, after) = split_pgpass_field(rest)?;
        if raw != "*" && unescape_pgpass(raw) != *want {
            return None;
        }
        rest = after;
    }
    Some(Password(unescape_pgpass(rest)))
}

/// Splits at the first unescaped `:`; `None` if there is none.
fn split_pgpass_field(s: &str) -> Option<(&str, &str)> {
    let mut escaped = false;
    for (i, c) in s.char_indices() {
        match c {
            _ if escaped => escaped = false,
            '\\' => escaped = true,
            ':' => return Some((&s[..i], &s[i + 1..])),
            _ => {}
        }
    }
    None
}

fn unescape_pgpass(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    let mut chars = s.chars();
    while let Some(c) = chars.next() {
        if c == '\\' {
            if let Some(n) = chars.next() {
                out.push(n);
            }
        } else {
            out.push(c);
        }
    }
    out
}

fn escape_pgpass(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 4);
    for c in s.chars() {
        if c == '\\' || c == ':' {
            out.push('\\');
        }
        out.push(c);
    }
    out
}

// ---------------------------------------------------------------------------
// Parsing
// ---------------------------------------------------------------------------

/// Parameters as given by one source, before defaults.
#[derive(Default)]
struct Params {
    host: Option<Host>,
    hostaddr: Option<IpAddr>,
    port: Option<u16>,
    user: Option<String>,
    dbname: Option<String>,
    password: Option<(Password, String)>,
    passfile: Option<PathBuf>,
    sslmode: Option<SslMode>,
    sslrootcert: Option<SslRootCert>,
    application_name: Option<String>,
    fallback_application_name: Option<String>,
    /// `Some(None)`: explicitly no timeout.
    connect_timeout: Option<Option<Duration>>,
    options: Option<String>,
}

impl Params {
    fn is_set(&self, key: &str) -> bool {
        match key {
            "host" | "hostaddr" => self.host.is_some() || self.hostaddr.is_some(),
            "port" => self.port.is_some(),
            "user" => self.user.is_some(),
            "dbname" => self.dbname.is_some(),
            "password" => self.password.is_some(),
            "passfile" => self.passfile.is_some(),
            "sslmode" => self.sslmode.is_some(),
            "sslrootcert" => self.sslrootcert.is_some(),
            "application_name" => self.application_name.is_some(),
            "connect_timeout" => self.connect_timeout.is_some(),
            "options" => self.options.is_some(),
            _ => false,
        }
    }
}

/// Context for error messages while parsing one source.
struct Ctx {
    /// e.g. `connection URL in DATABASE_URL`.
    origin: String,
    /// Don't echo values (the URL may contain an unencoded password).
    quiet: bool,
}

impl Ctx {
    fn err(&self, problem: impl Into<String>) -> ConfigError {
        ConfigError::Invalid {
            origin: self.origin.clone(),
            problem: problem.into(),
        }
    }

    /// Quotes a value for an error message, unless quiet.
    fn show(&self, v: &str) -> String {
        if self.quiet {
            "(value not shown: the URL may contain an unencoded password)".to_owned()
        } else {
            format!("\"{v}\"")
        }
    }
}

fn supported_list() -> String {
    SUPPORTED_KEYWORDS.join(", ")
}

/// Stores one `key=value`. `loc` says where it was (`keyword "port"`,
/// `query parameter "port"`, `port (after the host)`, or empty for env vars).
fn apply_param(
    p: &mut Params,
    key: &str,
    value: String,
    ctx: &Ctx,
    loc: &str,
) -> Result<(), ConfigError> {
    let at = |msg: String| {
        if loc.is_empty() {
            ctx.err(msg)
        } else {
            ctx.err(format!("{loc}: {msg}"))
        }
    };
    if !SUPPORTED_KEYWORDS.contains(&key) {
        return Err(if UNSUPPORTED_LIBPQ_KEYWORDS.contains(&key) {
            ctx.err(format!(
                "libpq parameter \"{key}\" is not supported by cutter; remove it (supported: {})",
                supported_list()
            ))
        } else {
            ctx.err(format!(
                "unknown connection parameter {} (supported: {})",
                ctx.show(key),
                supported_list()
            ))
        });
    }
    if value.is_empty() {
        // Like an unset parameter: later sources and defaults fill it in.
        return Ok(());
    }
    match key {
        "host" => {
            if value.contains(',') {
                return Err(at(format!(
                    "multiple hosts ({}) are not supported; give exactly one host",
                    ctx.show(&value)
                )));
            }
            if value.starts_with('@') {
                return Err(at(
                    "abstract unix sockets (host=@...) are not supported; give a socket directory \
                     starting with / or a TCP host name"
                        .to_owned(),
                ));
            }
            p.host = Some(if value.starts_with('/') {
                Host::Unix(PathBuf::from(value))
            } else {
                Host::Tcp(value)
            });
        }
        "hostaddr" => {
            if value.contains(',') {
                return Err(at(format!(
                    "multiple host addresses ({}) are not supported; give exactly one",
                    ctx.show(&value)
                )));
            }
            let addr = value.parse::<IpAddr>().map_err(|_| {
                at(format!(
                    "{} is not a numeric IPv4 or IPv6 address (use host= for host names)",
                    ctx.show(&value)
                ))
            })?;
            p.hostaddr = Some(addr);
        }
        "port" => {
            p.port = Some(parse_port(&value).map_err(|m| at(m.replace("{}", &ctx.show(&value))))?)
        }
        "user" => p.user = Some(value),
        "dbname" => p.dbname = Some(value),
        "password" => p.password = Some((Password(value), format!("the {}", ctx.origin))),
        "passfile" => p.passfile = Some(PathBuf::from(value)),
        "sslmode" => p.sslmode = Some(value.parse::<SslMode>().map_err(at)?),
        "sslrootcert" => {
            p.sslrootcert = Some(if value == "system" {
                SslRootCert::System
            } else {
                SslRootCert::File(PathBuf::from(value))
            })
        }
        "application_name" => p.application_name = Some(value),
        "fallback_application_name" => p.fallback_application_name = Some(value),
        "connect_timeout" => {
            let secs = value.trim().parse::<i64>().map_err(|_| {
                at(format!(
                    "{} is not a whole number of seconds (use 0 for no timeout)",
                    ctx.show(&value)
                ))
            })?;
            // libpq: zero or negative means wait forever, and 1 means 2.
            p.connect_timeout = Some(match secs {
                i64::MIN..=0 => None,
                1 => Some(Duration::from_secs(2)),
                n => Some(Duration::from_secs(n.unsigned_abs())),
            });
        }
        "options" => p.options = Some(value),
        "client_encoding" => {
            let v = value.to_ascii_lowercase();
            if !matches!(v.as_str(), "utf8" | "utf-8" | "unicode" | "auto") {
                return Err(at(format!(
                    "client_encoding {} is not supported; cutter always talks UTF8 to the server \
                     (remove the parameter)",
                    ctx.show(&value)
                )));
            }
        }
        _ => unreachable!("keyword {key} is in SUPPORTED_KEYWORDS"),
    }
    Ok(())
}

/// Parses a port; the error message has `{}` where the quoted value goes.
fn parse_port(value: &str) -> Result<u16, String> {
    if value.contains(',') {
        return Err("multiple ports ({}) are not supported; give exactly one port".to_owned());
    }
    match value.parse::<u16>() {
        Ok(p) if p != 0 && value.bytes().all(|b| b.is_ascii_digit()) => Ok(p),
        _ => Err("{} is not a valid port number (expected an integer from 1 to 65535)".to_owned()),
    }
}

fn is_url(s: &str) -> bool {
    s.starts_with("postgresql://") || s.starts_with("postgres://")
}

/// Parses a URL or keyword/value string. `label` names where it came from
/// (e.g. `DATABASE_URL`) for error messages.
fn parse_conninfo(s: &str, label: Option<&str>) -> Result<Params, ConfigError> {
    let s = s.trim();
    let kind = if is_url(s) {
        "connection URL"
    } else {
        "connection string"
    };
    let origin = match label {
        Some(l) => format!("{kind} in {l}"),
        None => kind.to_owned(),
    };
    if is_url(s) {
        parse_url(s, origin)
    } else {
        parse_keyword_string(s, origin)
    }
}

/// libpq `keyword=value` strings: whitespace-separated pairs, optional spaces
/// around `=`, single-quoted values with backslash escapes, backslash escapes in
/// unquoted values too.
fn parse_keyword_string(s: &str, origin: String) -> Result<Params, ConfigError> {
    let ctx = Ctx {
        origin,
        quiet: false,
    };
    let chars: Vec<char> = s.chars().collect();
    let n = chars.len();
    let mut i = 0;
    let mut p = Params::default();
    // The previous value was an unquoted password: if it contained a space,
    // the next "keyword" is really part of the password, so don't echo it.
    let mut after_unquoted_password = false;
    let example = "expected keyword=value pairs such as host=db.example.com dbname=app, or a \
                   postgres:// URL; quote values containing spaces: dbname='my db'";
    loop {
        while i < n && chars[i].is_whitespace() {
            i += 1;
        }
        if i >= n {
            break;
        }
        let kstart = i;
        while i < n && !chars[i].is_whitespace() && chars[i] != '=' {
            i += 1;
        }
        let key: String = chars[kstart..i].iter().collect();
        while i < n && chars[i].is_whitespace() {
            i += 1;
        }
        if i >= n || chars[i] != '=' {
            return Err(if after_unquoted_password {
                ctx.err(format!(
                    "missing \"=\" after the password value; if the password contains spaces, \
                     quote it: password='...' ({example})"
                ))
            } else if key.is_empty() {
                ctx.err(format!("missing keyword before \"=\" ({example})"))
            } else {
                ctx.err(format!("missing \"=\" after \"{key}\" ({example})"))
            });
        }
        if key.is_empty() {
            return Err(ctx.err(format!("missing keyword before \"=\" ({example})")));
        }
        if after_unquoted_password && !SUPPORTED_KEYWORDS.contains(&key.as_str()) {
            return Err(ctx.err(format!(
                "unexpected text after the password value; if the password contains spaces, quote \
                 it: password='...' ({example})"
            )));
        }
        i += 1; // '='
        while i < n && chars[i].is_whitespace() {
            i += 1;
        }
        let mut value = String::new();
        let quoted = i < n && chars[i] == '\'';
        if quoted {
            i += 1;
            loop {
                if i >= n {
                    return Err(ctx.err(format!(
                        "unterminated quoted value for keyword \"{key}\": a value starting with ' \
                         must end with ' (write \\' for a quote inside it)"
                    )));
                }
                match chars[i] {
                    '\\' => {
                        i += 1;
                        if i < n {
                            value.push(chars[i]);
                            i += 1;
                        }
                    }
                    '\'' => {
                        i += 1;
                        break;
                    }
                    c => {
                        value.push(c);
                        i += 1;
                    }
                }
            }
        } else {
            while i < n && !chars[i].is_whitespace() {
                if chars[i] == '\\' {
                    i += 1;
                    if i < n {
                        value.push(chars[i]);
                        i += 1;
                    }
                } else {
                    value.push(chars[i]);
                    i += 1;
                }
            }
        }
        after_unquoted_password = key == "password" && !quoted;
        apply_param(&mut p, &key, value, &ctx, &format!("keyword \"{key}\""))?;
    }
    Ok(p)
}

/// Percent-decoding failure.
enum DecodeError {
    BadEscape(String),
    Nul,
    NotUtf8,
}

fn percent_decode(s: &str) -> Result<String, DecodeError> {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'%' {
            let hex = b.get(i + 1..i + 3).and_then(|h| {
                std::str::from_utf8(h)
                    .ok()
                    .filter(|h| h.bytes().all(|c| c.is_ascii_hexdigit()))
                    .and_then(|h| u8::from_str_radix(h, 16).ok())
            });
            match hex {
                Some(0) => return Err(DecodeError::Nul),
                Some(v) => {
                    out.push(v);
                    i += 3;
                }
                None => {
                    let end = (i + 3).min(b.len());
                    let shown = String::from_utf8_lossy(&b[i..end]).into_owned();
                    return Err(DecodeError::BadEscape(shown));
                }
            }
        } else {
            out.push(b[i]);
            i += 1;
        }
    }
    String::from_utf8(out).map_err(|_| DecodeError::NotUtf8)
}

/// Decodes one URL component; `what` names it, `secret` suppresses echoing.
fn decode_component(s: &str, what: &str, ctx: &Ctx, secret: bool) -> Result<String, ConfigError> {
    percent_decode(s).map_err(|e| {
        let problem = match e {
            DecodeError::BadEscape(_) if secret || ctx.quiet => {
                format!("invalid percent-encoding in the {what}; write a literal % as %25")
            }
            DecodeError::BadEscape(bad) => format!(
                "invalid percent-encoding \"{bad}\" in the {what}; write a literal % as %25"
            ),
            DecodeError::Nul => format!("%00 is not allowed in the {what}"),
            DecodeError::NotUtf8 => {
                format!("the {what} does not decode to valid UTF-8 text")
            }
        };
        ctx.err(problem)
    })
}

/// `postgres[ql]://[user[:password]@][host][:port][/dbname][?key=value&...]`,
/// parsed like libpq (single host only).
fn parse_url(s: &str, origin: String) -> Result<Params, ConfigError> {
    let rest = s
        .strip_prefix("postgresql://")
        .or_else(|| s.strip_prefix("postgres://"))
        .unwrap_or(s);
    // libpq: user info is everything up to the first '@' that comes before any '/'.
    let (userinfo, after) = match rest.find(['@', '/']) {
        Some(i) if rest.as_bytes()[i] == b'@' => (Some(&rest[..i]), &rest[i + 1..]),
        _ => (None, rest),
    };
    let ctx = Ctx {
        origin,
        // An '@' we did not treat as the user-info separator means a password
        // probably contains an unencoded '/' or '@': never echo components then.
        quiet: after.contains('@'),
    };
    let (before_query, query) = match after.find('?') {
        Some(i) => (&after[..i], Some(&after[i + 1..])),
        None => (after, None),
    };
    if before_query.contains('@') {
        return Err(ctx.err(
            "unexpected \"@\" after the user-info part; percent-encode \"@\" as %40 and \"/\" as \
             %2F in user names, passwords and database names",
        ));
    }
    let (netloc, path) = match before_query.find('/') {
        Some(i) => (&before_query[..i], Some(&before_query[i + 1..])),
        None => (before_query, None),
    };
    let mut p = Params::default();

    if let Some(ui) = userinfo {
        let (user, password) = match ui.find(':') {
            Some(i) => (&ui[..i], Some(&ui[i + 1..])),
            None => (ui, None),
        };
        let user = decode_component(user, "user name", &ctx, false)?;
        if !user.is_empty() {
            p.user = Some(user);
        }
        if let Some(pw) = password {
            let pw = decode_component(pw, "password", &ctx, true)?;
            if !pw.is_empty() {
                p.password = Some((Password(pw), format!("the {}", ctx.origin)));
            }
        }
    }

    if netloc.contains(',') {
        return Err(ctx.err(format!(
            "multiple hosts ({}) are not supported; give exactly one host",
            ctx.show(netloc)
        )));
    }
    let (host, port) = if let Some(inner) = netloc.strip_prefix('[') {
        let close = inner.find(']').ok_or_else(|| {
            ctx.err("missing \"]\" after the IPv6 address in the host part (write [::1]:5432)")
        })?;
        let host = &inner[..close];
        let tail = &inner[close + 1..];
        let port = if tail.is_empty() {
            None
        } else if let Some(port) = tail.strip_prefix(':') {
            Some(port)
        } else {
            return Err(ctx.err(format!(
                "unexpected {} after \"]\" in the host part (expected \":port\")",
                ctx.show(tail)
            )));
        };
        if host.parse::<std::net::Ipv6Addr>().is_err() {
            return Err(ctx.err(format!(
                "{} in brackets is not an IPv6 address",
                ctx.show(host)
            )));
        }
        (host.to_owned(), port)
    } else {
        let (h, port) = match netloc.find(':') {
            Some(i) => (&netloc[..i], Some(&netloc[i + 1..])),
            None => (netloc, None),
        };
        (decode_component(h, "host", &ctx, false)?, port)
    };
    // From here on, echoing is safe unless the URL looked suspicious.
    apply_param(&mut p, "host", host, &ctx, "host part")?;
    if let Some(port) = port {
        if !port.is_empty() {
            let port_val = parse_port(port).map_err(|m| {
                ctx.err(format!(
                    "port (after the host): {}",
                    m.replace("{}", &ctx.show(port))
                ))
            })?;
            p.port = Some(port_val);
        }
    }
    if let Some(path) = path {
        let db = decode_component(path, "database name (path)", &ctx, false)?;
        if !db.is_empty() {
            p.dbname = Some(db);
        }
    }

    if let Some(query) = query {
        let mut after_password = false;
        for pair in query.split('&') {
            if pair.is_empty() {
                continue;
            }
            let Some((k, v)) = pair.split_once('=') else {
                return Err(if after_password {
                    ctx.err(
                        "query parameter without \"=\" after the password parameter; \
                         percent-encode \"&\" in passwords as %26",
                    )
                } else {
                    ctx.err(format!(
                        "query parameter {} has no value (expected key=value)",
                        ctx.show(pair)
                    ))
                });
            };
            let key = decode_component(k, "query parameter name", &ctx, after_password)?;
            if after_password && !SUPPORTED_KEYWORDS.contains(&key.as_str()) && key != "ssl" {
                return Err(ctx.err(
                    "unknown query parameter after the password parameter; percent-encode \"&\" \
                     in passwords as %26",
                ));
            }
            let secret = key == "password";
            let value = decode_component(
                v,
                &format!("value of query parameter \"{key}\""),
                &ctx,
                secret,
            )?;
            after_password = secret;
            if key == "ssl" {
                // libpq compatibility: ssl=true means sslmode=require.
                if value == "true" {
                    p.sslmode = Some(SslMode::Require);
                    continue;
                }
                return Err(ctx.err(format!(
                    "query parameter \"ssl\": only ssl=true is understood (it means \
                     sslmode=require); got {}",
                    ctx.show(&value)
                )));
            }
            apply_param(
                &mut p,
                &key,
                value,
                &ctx,
                &format!("query parameter \"{key}\""),
            )?;
        }
    }
    Ok(p)
}

// ---------------------------------------------------------------------------
// OS user
// ---------------------------------------------------------------------------

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

// ---------------------------------------------------------------------------
// ConnConfig
// ---------------------------------------------------------------------------

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

fn nonempty(v: Option<String>) -> Option<String> {
    v.filter(|v| !v.is_empty())
}

impl ConnConfig {
    /// Parses a `postgres://`/`postgresql://` URL or a libpq `keyword=value`
    /// string and fills in libpq defaults, ignoring the environment (`HOME` is
    /// taken from the user database for `~/.pgpass`).
    pub fn parse(s: &str) -> Result<Self, ConfigError> {
        let params = parse_conninfo(s, None)?;
        Self::finish(params, &|_| None)
    }

    /// Whether the connection string `s` itself carries a password (in a URL's user
    /// info, a `password` query parameter, or a `password = …` keyword), by libpq's own
    /// parsing rules. Places that refuse secrets (command lines, config files) use it.
    pub fn string_has_password(s: &str) -> Result<bool, ConfigError> {
        Ok(parse_conninfo(s, None)?.password.is_some())
    }

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

    fn finish(p: Params, env: &dyn Fn(&str) -> Option<String>) -> Result<Self, ConfigError> {
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

    /// The host name libpq compares against a pgpass file's first field: the
    /// host, `localhost` for the default socket directory, or the hostaddr.
    pub fn pgpass_host(&self) -> String {
        match (&self.host, self.hostaddr) {
            (Some(Host::Tcp(h)), _) => h.clone(),
            (Some(Host::Unix(d)), _) if d == Path::new(DEFAULT_SOCKET_DIR) => "localhost".into(),
            (Some(Host::Unix(d)), _) => d.display().to_string(),
            (None, Some(a)) => a.to_string(),
            (None, None) => "localhost".into(),
        }
    }

    /// The password to use, in libpq's order: the given password (connection
    /// string, `PGPASSWORD`, or [`ConnConfig::with_user`]), then the password
    /// file (`passfile`, `PGPASSFILE` or `~/.pgpass`). Password files that are
    /// ignored (group/world access, not a plain file, unreadable) are reported
    /// in the result and logged with `tracing::warn!`.
    pub fn lookup_password(&self) -> PasswordLookup {
        if let Some(pw) = &self.password {
            return PasswordLookup {
                password: Some(pw.clone()),
                source: PasswordSource::Given {
                    origin: self
                        .password_origin
                        .clone()
                        .unwrap_or_else(|| "the connection settings".to_owned()),
                },
                warnings: Vec::new(),
            };
        }
        let Some(passfile) = &self.passfile else {
            return PasswordLookup::not_found(Vec::new());
        };
        let lookup = lookup_passfile(
            passfile,
            &self.pgpass_host(),
            self.port,
            &self.dbname,
            &self.user,
        );
        for w in &lookup.warnings {
            tracing::warn!("{w}");
        }
        if let PasswordSource::Passfile { path, line } = &lookup.source {
            tracing::debug!("using the password from {} line {line}", path.display());
        }
        lookup
    }

    /// `host:port as user "u" (database "d", sslmode=m)` for messages.
    fn target(&self, tls: bool) -> String {
        let ssl = if tls {
            format!("sslmode={}", self.sslmode)
        } else {
            "no TLS on unix sockets".to_owned()
        };
        format!(
            "{} as user \"{}\" (database \"{}\", {ssl})",
            self.host_display(),
            self.user,
            self.dbname
        )
    }

    fn tokio_config(&self, password: Option<&Password>) -> tokio_postgres::Config {
        let mut c = tokio_postgres::Config::new();
        c.user(&self.user).dbname(&self.dbname).port(self.port);
        match (&self.host, self.hostaddr) {
            (Some(Host::Tcp(h)), addr) => {
                c.host(h);
                if let Some(a) = addr {
                    c.hostaddr(a);
                }
            }
            (Some(Host::Unix(d)), None) => {
                c.host_path(d);
            }
            // A numeric address without a TCP host name: the address is also
            // the name TLS verifies.
            (_, Some(a)) => {
                c.host(a.to_string());
                c.hostaddr(a);
            }
            (None, None) => {
                c.host("localhost");
            }
        }
        if let Some(pw) = password {
            c.password(pw.expose_secret());
        }
        if let Some(app) = &self.application_name {
            c.application_name(app);
        }
        if let Some(t) = self.connect_timeout {
            c.connect_timeout(t);
        }
        if let Some(o) = self.effective_options() {
            c.options(o);
        }
        c
    }

    /// The rustls configuration for this sslmode / sslrootcert.
    fn rustls_config(&self) -> Result<rustls::ClientConfig, ConfigError> {
        let tls_err = |problem: String| ConfigError::Tls {
            sslmode: self.sslmode,
            problem,
        };
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let builder = rustls::ClientConfig::builder_with_provider(provider.clone())
            .with_safe_default_protocol_versions()
            .map_err(|e| tls_err(format!("the TLS provider is unusable: {e}")))?;
        let roots = match &self.sslrootcert {
            Some(SslRootCert::File(p)) => Some(load_root_file(p).map_err(tls_err)?),
            Some(SslRootCert::System) => Some(bundled_roots()),
            None => None,
        };
        let mut config =
            match (self.sslmode, roots) {
                (SslMode::VerifyFull, roots) => builder
                    .with_root_certificates(roots.unwrap_or_else(bundled_roots))
                    .with_no_client_auth(),
                (SslMode::VerifyCa, None) => return Err(tls_err(
                    "sslmode=verify-ca needs the CA certificate(s) to verify the server against: \
                     set sslrootcert=/path/to/ca.pem (or PGSSLROOTCERT), or use verify-full to \
                     verify against the bundled public roots"
                        .to_owned(),
                )),
                (_, Some(roots)) => builder
                    .dangerous()
                    .with_custom_certificate_verifier(Arc::new(ChainOnlyVerifier {
                        roots: Arc::new(roots),
                        provider,
                    }))
                    .with_no_client_auth(),
                (_, None) => builder
                    .dangerous()
                    .with_custom_certificate_verifier(Arc::new(AnyCertVerifier { provider }))
                    .with_no_client_auth(),
            };
        config.alpn_protocols = vec![b"postgresql".to_vec()];
        Ok(config)
    }

    /// Opens a connection (blocking). See the module documentation for the
    /// sslmode semantics. The password comes from [`ConnConfig::lookup_password`].
    pub fn connect(&self) -> Result<postgres::Client, ConfigError> {
        let lookup = self.lookup_password();
        let base = self.tokio_config(lookup.password.as_ref());
        let tcp = self.uses_tcp();
        let mode = if tcp { self.sslmode } else { SslMode::Disable };

        let plain = || {
            let mut c = base.clone();
            c.ssl_mode(tokio_postgres::config::SslMode::Disable);
            postgres::Config::from(c).connect(postgres::NoTls)
        };
        let tls = |m: tokio_postgres::config::SslMode| -> Result<Result<postgres::Client, postgres::Error>, ConfigError> {
            let connector = MakeRustlsConnect::new(self.rustls_config()?);
            let mut c = base.clone();
            c.ssl_mode(m);
            Ok(postgres::Config::from(c).connect(connector))
        };

        let result = match mode {
            SslMode::Disable => plain(),
            SslMode::Allow => match plain() {
                Ok(client) => Ok(client),
                Err(first) if first.as_db_error().is_some() => {
                    tracing::debug!(
                        "connection without TLS rejected; retrying with TLS (sslmode=allow)"
                    );
                    match tls(tokio_postgres::config::SslMode::Require)? {
                        Ok(client) => Ok(client),
                        Err(second) => {
                            let mut err = self.connect_error(&second, &lookup, tcp);
                            if let ConfigError::Connect { detail, .. } = &mut err {
                                *detail = format!(
                                    "without TLS: {}; then with TLS: {detail}",
                                    describe_pg_error(&first)
                                );
                            }
                            return Err(err);
                        }
                    }
                }
                Err(e) => Err(e),
            },
            SslMode::Prefer => tls(tokio_postgres::config::SslMode::Prefer)?,
            SslMode::Require | SslMode::VerifyCa | SslMode::VerifyFull => {
                tls(tokio_postgres::config::SslMode::Require)?
            }
        };
        result.map_err(|e| self.connect_error(&e, &lookup, tcp))
    }

    fn connect_error(
        &self,
        e: &postgres::Error,
        lookup: &PasswordLookup,
        tcp: bool,
    ) -> ConfigError {
        let detail = describe_pg_error(e);
        let sqlstate = e.code().map(|c| c.code().to_owned());
        let chain = error_chain_text(e);
        let io_kind = io_error_kind(e);
        let cert = cert_problem(e);
        let passfile_desc = self
            .passfile
            .as_ref()
            .map(|p| p.display().to_string())
            .unwrap_or_else(|| "~/.pgpass".to_owned());
        let pgpass_line = format!(
            "{}:{}:{}:{}:PASSWORD",
            escape_pgpass(&self.pgpass_host()),
            self.port,
            escape_pgpass(&self.dbname),
            escape_pgpass(&self.user)
        );
        let pw_note = || -> String {
            let mut notes: Vec<String> = match &lookup.source {
                PasswordSource::NotFound if lookup.warnings.is_empty() => {
                    vec![format!(
                        "nothing in PGPASSWORD or the connection string, and no line of \
                                  {passfile_desc} matched"
                    )]
                }
                PasswordSource::NotFound => Vec::new(),
                src => vec![format!("the password came from {src}")],
            };
            notes.extend(lookup.warnings.iter().map(ToString::to_string));
            notes.join("; ")
        };
        let hint = match sqlstate.as_deref() {
            Some("28P01") => Some(format!(
                "check the password of user \"{}\" ({})",
                self.user,
                pw_note()
            )),
            Some("28000") => Some(
                "the server's pg_hba.conf does not allow this user/database from this client \
                 with this TLS setting; ask the DBA, or try another sslmode"
                    .to_owned(),
            ),
            Some("3D000") => Some(format!(
                "database \"{}\" does not exist on this server; check dbname",
                self.dbname
            )),
            Some("53300") => {
                Some("the server has no free connection slots; retry later".to_owned())
            }
            Some("57P03") => {
                Some("the server is starting up or shutting down; retry later".to_owned())
            }
            _ if chain.contains("password missing") => Some(format!(
                "the server asks for a password but none was found ({}); set PGPASSWORD, put it \
                 in the URL, or add the line {pgpass_line} to {passfile_desc} (mode 0600)",
                pw_note()
            )),
            _ if cert == Some(CertProblem::Untrusted) => Some(format!(
                "the server's certificate is not signed by a trusted CA ({}); set sslrootcert to \
                 the CA certificate that signed it, {}",
                self.roots_desc(),
                match self.sslmode {
                    SslMode::VerifyCa | SslMode::VerifyFull => {
                        "or use sslmode=require to encrypt without verifying (not recommended)"
                            .to_owned()
                    }
                    m => format!(
                        "or remove sslrootcert (and PGSSLROOTCERT, ~/.postgresql/root.crt): as in \
                         libpq, sslmode={m} verifies the chain whenever a root certificate file \
                         is configured"
                    ),
                }
            )),
            _ if cert == Some(CertProblem::WrongName) => Some(format!(
                "the server's certificate is not valid for the host name \"{}\"; connect using a \
                 name listed in the certificate, or use sslmode=verify-ca to skip the host-name \
                 check",
                self.tls_name()
            )),
            _ if cert == Some(CertProblem::Expired) => Some(
                "the server's certificate has expired or is not yet valid (or this machine's \
                 clock is wrong)"
                    .to_owned(),
            ),
            _ if chain.contains("server does not support TLS") => Some(format!(
                "the server does not accept TLS (ssl=off); sslmode={} requires it — use \
                 sslmode=prefer or ask the DBA to enable ssl",
                self.sslmode
            )),
            _ if io_kind == Some(std::io::ErrorKind::ConnectionRefused) => Some(if tcp {
                format!(
                    "nothing accepts connections there: is the server running on that host and \
                     listening on TCP port {} (listen_addresses, firewall)?",
                    self.port
                )
            } else {
                "is the server running locally and using this socket directory?".to_owned()
            }),
            _ if io_kind == Some(std::io::ErrorKind::NotFound) && !tcp => Some(
                "no socket file there: is the server running locally, with this port and \
                 unix_socket_directories?"
                    .to_owned(),
            ),
            _ if io_kind == Some(std::io::ErrorKind::TimedOut) || chain.contains("timeout") => {
                Some("the connection timed out: is the host reachable (firewall, VPN)?".to_owned())
            }
            _ if chain.contains("lookup address") || chain.contains("resolve") => Some(format!(
                "the host name cannot be resolved; check host= (\"{}\")",
                self.pgpass_host()
            )),
            _ => None,
        };
        ConfigError::Connect {
            target: self.target(tcp),
            detail,
            hint,
            sqlstate,
        }
    }

    /// The name TLS verifies: the TCP host name, else the numeric address.
    fn tls_name(&self) -> String {
        match (&self.host, self.hostaddr) {
            (Some(Host::Tcp(h)), _) => h.clone(),
            (_, Some(a)) => a.to_string(),
            _ => "localhost".to_owned(),
        }
    }

    fn roots_desc(&self) -> String {
        match &self.sslrootcert {
            Some(SslRootCert::File(p)) => format!("sslrootcert={}", p.display()),
            Some(SslRootCert::System) | None => {
                "the bundled public CA roots; sslrootcert is not set".to_owned()
            }
        }
    }

    /// A URL for humans and logs, never containing the password:
    /// `postgres://user@host:port/db?sslmode=...`. It parses back
    /// ([`ConnConfig::parse`]) to the same settings, minus password and
    /// statement/lock timeouts.
    pub fn redacted(&self) -> String {
        let host = match &self.host {
            Some(Host::Tcp(h)) if h.contains(':') => format!("[{h}]"),
            Some(Host::Tcp(h)) => url_encode(h),
            Some(Host::Unix(d)) => url_encode(&d.to_string_lossy()),
            None => String::new(),
        };
        let mut url = format!(
            "postgres://{}@{host}:{}/{}?sslmode={}",
            url_encode(&self.user),
            self.port,
            url_encode(&self.dbname),
            self.sslmode
        );
        let mut param = |k: &str, v: &str| {
            url.push('&');
            url.push_str(k);
            url.push('=');
            url.push_str(&url_encode(v));
        };
        if let Some(a) = self.hostaddr {
            param("hostaddr", &a.to_string());
        }
        match &self.sslrootcert {
            Some(SslRootCert::File(p)) => param("sslrootcert", &p.to_string_lossy()),
            Some(SslRootCert::System) => param("sslrootcert", "system"),
            None => {}
        }
        if let Some(a) = &self.application_name {
            param("application_name", a);
        }
        if let Some(t) = self.connect_timeout {
            param("connect_timeout", &t.as_secs().max(1).to_string());
        }
        if let Some(o) = &self.options {
            param("options", o);
        }
        url
    }

    /// The environment for a child libpq program (`pg_dump`, `pg_restore`,
    /// `psql`) that must connect exactly like this configuration: `PGHOST`,
    /// `PGHOSTADDR`, `PGPORT`, `PGUSER`, `PGDATABASE`, `PGSSLMODE`,
    /// `PGSSLROOTCERT`, `PGAPPNAME`, `PGCONNECT_TIMEOUT`, `PGOPTIONS` (including
    /// statement/lock timeouts), and `PGPASSFILE` pointing at a private
    /// temporary password file (directory 0700, file 0600, removed when the
    /// returned [`ChildEnv`] drops) holding the password found by
    /// [`ConnConfig::lookup_password`] (empty if none). The password is never
    /// put in `PGPASSWORD` or on a command line; inherited `PG*` connection
    /// variables (including `PGPASSWORD`) are removed by [`ChildEnv::apply`].
    pub fn child_env(&self) -> Result<ChildEnv, ConfigError> {
        let lookup = self.lookup_password();
        let io_err =
            |detail: String| move |io: std::io::Error| ConfigError::ChildEnv { detail, io };
        let line = match &lookup.password {
            Some(pw) if pw.expose_secret().contains(['\n', '\r']) => {
                return Err(ConfigError::UnrepresentablePassword)
            }
            Some(pw) => Some(Password(format!(
                "*:*:*:*:{}\n",
                escape_pgpass(pw.expose_secret())
            ))),
            None => None,
        };
        let dir = tempfile::Builder::new()
            .prefix("cutter-pgpass-")
            .tempdir()
            .map_err(io_err("creating a private temporary directory".to_owned()))?;
        std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o700)).map_err(
            io_err(format!("setting mode 0700 on {}", dir.path().display())),
        )?;
        let passfile = dir.path().join("pgpass");
        let what = format!("writing the temporary password file {}", passfile.display());
        let mut f = std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .open(&passfile)
            .map_err(io_err(what.clone()))?;
        f.set_permissions(std::fs::Permissions::from_mode(0o600))
            .map_err(io_err(what.clone()))?;
        if let Some(line) = &line {
            f.write_all(line.expose_secret().as_bytes())
                .map_err(io_err(what.clone()))?;
        }
        f.sync_all().map_err(io_err(what))?;
        drop(f);

        let abs = |p: &Path| -> OsString {
            std::path::absolute(p)
                .unwrap_or_else(|_| p.to_owned())
                .into_os_string()
        };
        let mut vars: Vec<(&'static str, OsString)> = Vec::new();
        match &self.host {
            Some(Host::Tcp(h)) => vars.push(("PGHOST", h.into())),
            Some(Host::Unix(d)) => vars.push(("PGHOST", abs(d))),
            None => {}
        }
        if let Some(a) = self.hostaddr {
            vars.push(("PGHOSTADDR", a.to_string().into()));
        }
        vars.push(("PGPORT", self.port.to_string().into()));
        vars.push(("PGUSER", self.user.clone().into()));
        vars.push(("PGDATABASE", self.dbname.clone().into()));
        vars.push(("PGSSLMODE", self.sslmode.as_str().into()));
        match &self.sslrootcert {
            Some(SslRootCert::File(p)) => vars.push(("PGSSLROOTCERT", abs(p))),
            Some(SslRootCert::System) => vars.push(("PGSSLROOTCERT", "system".into())),
            None => {}
        }
        if let Some(a) = &self.application_name {
            vars.push(("PGAPPNAME", a.into()));
        }
        if let Some(t) = self.connect_timeout {
            let secs = t.as_secs() + u64::from(t.subsec_nanos() > 0);
            vars.push(("PGCONNECT_TIMEOUT", secs.max(2).to_string().into()));
        }
        if let Some(o) = self.effective_options() {
            vars.push(("PGOPTIONS", o.into()));
        }
        vars.push(("PGPASSFILE", passfile.clone().into_os_string()));
        let unset = CHILD_CLEARED_VARS
            .iter()
            .copied()
            .filter(|k| !vars.iter().any(|(v, _)| v == k))
            .collect();
        Ok(ChildEnv {
            vars,
            unset,
            passfile,
            _dir: dir,
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

fn url_encode(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~') {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// `error connecting to server: Connection refused (os error 111)`, or for
/// server errors `FATAL: password authentication failed for user "x" (SQLSTATE 28P01)`.
fn describe_pg_error(e: &postgres::Error) -> String {
    if let Some(db) = e.as_db_error() {
        let mut s = format!(
            "server said {}: {} (SQLSTATE {})",
            db.severity(),
            db.message(),
            db.code().code()
        );
        if let Some(d) = db.detail() {
            s.push_str(&format!("; detail: {d}"));
        }
        if let Some(h) = db.hint() {
            s.push_str(&format!("; server hint: {h}"));
        }
        return s;
    }
    error_chain_text(e)
}

fn error_chain_text(e: &postgres::Error) -> String {
    let mut s = e.to_string();
    let mut src = std::error::Error::source(e);
    while let Some(cause) = src {
        let text = cause.to_string();
        if !s.contains(&text) {
            s.push_str(": ");
            s.push_str(&text);
        }
        src = cause.source();
    }
    s
}

fn io_error_kind(e: &postgres::Error) -> Option<std::io::ErrorKind> {
    let mut src = std::error::Error::source(e);
    while let Some(cause) = src {
        if let Some(io) = cause.downcast_ref::<std::io::Error>() {
            return Some(io.kind());
        }
        src = cause.source();
    }
    None
}

/// Classes of certificate verification failure, for hints.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum CertProblem {
    Untrusted,
    WrongName,
    Expired,
}

/// Finds the rustls certificate error in the chain (rustls errors travel
/// wrapped in an `io::Error`, whose `source()` skips them, so look inside).
fn cert_problem(e: &postgres::Error) -> Option<CertProblem> {
    use rustls::CertificateError as C;
    let mut src = std::error::Error::source(e);
    while let Some(cause) = src {
        let tls = cause.downcast_ref::<rustls::Error>().or_else(|| {
            cause
                .downcast_ref::<std::io::Error>()
                .and_then(|io| io.get_ref())
                .and_then(|inner| inner.downcast_ref::<rustls::Error>())
        });
        if let Some(rustls::Error::InvalidCertificate(c)) = tls {
            return match c {
                C::UnknownIssuer | C::BadSignature => Some(CertProblem::Untrusted),
                C::NotValidForName | C::NotValidForNameContext { .. } => {
                    Some(CertProblem::WrongName)
                }
                C::Expired
                | C::ExpiredContext { .. }
                | C::NotValidYet
                | C::NotValidYetContext { .. } => Some(CertProblem::Expired),
                _ => None,
            };
        }
        src = cause.source();
    }
    None
}

// ---------------------------------------------------------------------------
// TLS
// ---------------------------------------------------------------------------

fn bundled_roots() -> RootCertStore {
    let mut roots = RootCertStore::empty();
    roots.extend(webpki_roots::TLS_SERVER_ROOTS.iter().cloned());
    roots
}

fn load_root_file(path: &Path) -> Result<RootCertStore, String> {
    let bytes = std::fs::read(path).map_err(|e| {
        format!(
            "cannot read sslrootcert file {}: {e}; set sslrootcert (or PGSSLROOTCERT) to a PEM \
             file with the CA certificate(s)",
            path.display()
        )
    })?;
    let certs: Vec<CertificateDer<'static>> = CertificateDer::pem_slice_iter(&bytes)
        .collect::<Result<_, _>>()
        .map_err(|e| format!("sslrootcert file {} is not valid PEM: {e}", path.display()))?;
    if certs.is_empty() {
        return Err(format!(
            "sslrootcert file {} contains no certificates (expected PEM blocks \"-----BEGIN \
             CERTIFICATE-----\")",
            path.display()
        ));
    }
    let mut roots = RootCertStore::empty();
    for (i, cert) in certs.into_iter().enumerate() {
        roots.add(cert).map_err(|e| {
            format!(
                "certificate #{} in sslrootcert file {} cannot be used as a CA: {e}",
                i + 1,
                path.display()
            )
        })?;
    }
    Ok(roots)
}

/// `sslmode=require` without a root file: accept any certificate, but still
/// check that the server owns it (handshake signatures are verified).
#[derive(Debug)]
struct AnyCertVerifier {
    provider: Arc<CryptoProvider>,
}

impl ServerCertVerifier for AnyCertVerifier {
    fn verify_server_cert(
        &self,
        _end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp_response: &[u8],
        _now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        Ok(ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(
            message,
            cert,
            dss,
            &self.provider.signature_verification_algorithms,
        )
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(
            message,
            cert,
            dss,
            &self.provider.signature_verification_algorithms,
        )
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.provider
            .signature_verification_algorithms
            .supported_schemes()
    }
}

/// `sslmode=verify-ca` (and weaker modes with a root file): verify the chain
/// to the configured roots, not the host name.
#[derive(Debug)]
struct ChainOnlyVerifier {
    roots: Arc<RootCertStore>,
    provider: Arc<CryptoProvider>,
}

impl ServerCertVerifier for ChainOnlyVerifier {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp_response: &[u8],
        now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        let cert = rustls::server::ParsedCertificate::try_from(end_entity)?;
        rustls::client::verify_server_cert_signed_by_trust_anchor(
            &cert,
            &self.roots,
            intermediates,
            now,
            self.provider.signature_verification_algorithms.all,
        )?;
        Ok(ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(
            message,
            cert,
            dss,
            &self.provider.signature_verification_algorithms,
        )
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(
            message,
            cert,
            dss,
            &self.provider.signature_verification_algorithms,
        )
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.provider
            .signature_verification_algorithms
            .supported_schemes()
    }
}

// ---------------------------------------------------------------------------
// ChildEnv
// ---------------------------------------------------------------------------

/// Environment for a child libpq program; see [`ConnConfig::child_env`].
/// Keep it alive until the child has exited: dropping it deletes the
/// temporary password file.
pub struct ChildEnv {
    vars: Vec<(&'static str, OsString)>,
    unset: Vec<&'static str>,
    passfile: PathBuf,
    _dir: tempfile::TempDir,
}

impl fmt::Debug for ChildEnv {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // The variables never contain the password; the file is not read.
        f.debug_struct("ChildEnv")
            .field("vars", &self.vars)
            .field("unset", &self.unset)
            .field("passfile", &self.passfile)
            .finish()
    }
}

impl ChildEnv {
    /// Removes inherited `PG*` connection variables (including `PGPASSWORD`)
    /// from `cmd` and sets this configuration's.
    pub fn apply(&self, cmd: &mut std::process::Command) {
        for k in &self.unset {
            cmd.env_remove(k);
        }
        for (k, v) in &self.vars {
            cmd.env(k, v);
        }
    }

    /// The variables [`ChildEnv::apply`] sets.
    pub fn vars(&self) -> &[(&'static str, OsString)] {
        &self.vars
    }

    /// One variable's value, if set.
    pub fn var(&self, name: &str) -> Option<&OsStr> {
        self.vars
            .iter()
            .find(|(k, _)| *k == name)
            .map(|(_, v)| v.as_os_str())
    }

    /// The variables [`ChildEnv::apply`] removes.
    pub fn unset(&self) -> &[&'static str] {
        &self.unset
    }

    /// The temporary password file (exists while `self` lives).
    pub fn passfile(&self) -> &Path {
        &self.passfile
    }
}
