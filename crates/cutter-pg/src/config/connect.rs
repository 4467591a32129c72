//! Connecting: the `tokio_postgres` configuration and the sslmode sequence (`allow` retries
//! with TLS only after the server rejects plain text; `prefer` never falls back to plain
//! text after a failed handshake). Invariant: TLS is never used on unix sockets.

use tokio_postgres_rustls::MakeRustlsConnect;

use super::diagnose::describe_pg_error;
use super::{ConfigError, ConnConfig, Host, Password, SslMode};

impl ConnConfig {
    /// `host:port as user "u" (database "d", sslmode=m)` for messages.
    pub(super) fn target(&self, tls: bool) -> String {
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
}

impl ConnConfig {
    /// Asks the server to cancel the statement that the connection `token` came from is
    /// running (libpq's `PQcancel`), over a new connection made as this configuration
    /// makes one: TLS under the same sslmode, never on unix sockets. Harmless when the
    /// connection is idle.
    pub fn cancel(&self, token: &postgres::CancelToken) -> Result<(), ConfigError> {
        let result = if self.uses_tcp() && self.sslmode != SslMode::Disable {
            token.cancel_query(MakeRustlsConnect::new(self.rustls_config()?))
        } else {
            token.cancel_query(postgres::NoTls)
        };
        result.map_err(|e| ConfigError::Connect {
            target: self.target(self.uses_tcp()),
            detail: format!("sending the cancel request: {}", describe_pg_error(&e)),
            hint: None,
            sqlstate: None,
        })
    }
}
