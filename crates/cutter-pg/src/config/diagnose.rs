//! Connect-error diagnosis: a failed attempt becomes a [`ConfigError::Connect`] with the
//! server's message, its SQLSTATE and, where the cause is recognisable, what to do next.
//! Invariant: the error names where the password came from, never the password.

use super::passfile::{escape_pgpass, PasswordLookup, PasswordSource};
use super::{ConfigError, ConnConfig, SslMode};

impl ConnConfig {
    pub(super) fn connect_error(
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
            self.port(),
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
            Some("28000") if detail.contains("certificate") => Some(format!(
                "the server's pg_hba.conf asks for a client certificate: set sslcert and sslkey \
                 (or PGSSLCERT/PGSSLKEY; default ~/.postgresql/postgresql.crt and .key, {}) to a \
                 certificate signed by the CA the server trusts, whose CN is the user name",
                match self.sslcert.as_deref() {
                    Some(c) if c.is_file() => format!("{} was sent", c.display()),
                    Some(c) => format!("{} does not exist", c.display()),
                    None => "none is configured".to_owned(),
                }
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
            _ if chain.contains("did not use channel binding") => Some(format!(
                "{}; channel_binding=require accepts only SCRAM-SHA-256-PLUS over TLS — check \
                 that the connection uses TLS (sslmode; never on unix sockets) and that \
                 pg_hba.conf authenticates it with scram-sha-256",
                if tcp && self.sslmode != SslMode::Disable {
                    "channel binding is required, but server did not offer an authentication \
                     method that supports channel binding"
                } else {
                    "channel binding required, but SSL not in use"
                }
            )),
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
                    self.port()
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
}

/// `error connecting to server: Connection refused (os error 111)`, or for
/// server errors `FATAL: password authentication failed for user "x" (SQLSTATE 28P01)`.
pub(super) fn describe_pg_error(e: &postgres::Error) -> String {
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
