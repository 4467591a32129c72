//! Password files (`.pgpass`): the lookup by libpq's matching and escaping rules, and the
//! password a connection uses ([`ConnConfig::lookup_password`]) and where it came from.
//! Invariant: a file that is not a plain file or has group/other access is ignored and
//! reported, as libpq does; the file's bytes are zeroed once read.

use std::fmt;
use std::os::unix::fs::PermissionsExt as _;
use std::path::{Path, PathBuf};

use zeroize::Zeroize as _;

use super::{ConnConfig, Host, Password, DEFAULT_SOCKET_DIR};

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

pub(super) fn escape_pgpass(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 4);
    for c in s.chars() {
        if c == '\\' || c == ':' {
            out.push('\\');
        }
        out.push(c);
    }
    out
}

impl ConnConfig {
    /// The host name libpq compares against a pgpass file's first field: the
    /// host, `localhost` for the default socket directory, or the hostaddr (of the
    /// first host; a connection looks up each host's line in turn).
    pub fn pgpass_host(&self) -> String {
        let ep = self.first();
        match (&ep.host, ep.hostaddr) {
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
    /// in the result and logged with `tracing::warn!`. For the first host.
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
            self.port(),
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
}
