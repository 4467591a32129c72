//! Connecting: the hosts in order until one gives the session `target_session_attrs`
//! asks for, and for each the `tokio_postgres` configuration and the sslmode sequence
//! (`allow` retries with TLS only after the server rejects plain text; `prefer` never
//! falls back to plain text after a failed handshake). Invariant: TLS is never used on
//! unix sockets.

use tokio_postgres_rustls::MakeRustlsConnect;

use super::diagnose::describe_pg_error;
use super::{ChannelBinding, ConfigError, ConnConfig, Host, Password, SslMode, TargetSessionAttrs};

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
        let ep = self.first();
        c.user(&self.user).dbname(&self.dbname).port(ep.port);
        c.channel_binding(match self.channel_binding {
            ChannelBinding::Disable => tokio_postgres::config::ChannelBinding::Disable,
            ChannelBinding::Prefer => tokio_postgres::config::ChannelBinding::Prefer,
            ChannelBinding::Require => tokio_postgres::config::ChannelBinding::Require,
        });
        match (&ep.host, ep.hostaddr) {
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

    /// Opens a connection (blocking): each host in order, until one accepts a session of
    /// the kind `target_session_attrs` asks for (`prefer-standby`: a standby on a first
    /// pass, any server on a second). See the module documentation for the sslmode
    /// semantics. The password comes from [`ConnConfig::lookup_password`], per host.
    pub fn connect(&self) -> Result<postgres::Client, ConfigError> {
        let passes: &[TargetSessionAttrs] = match self.target_session_attrs {
            TargetSessionAttrs::PreferStandby => {
                &[TargetSessionAttrs::Standby, TargetSessionAttrs::Any]
            }
            ref one => std::slice::from_ref(one),
        };
        let mut failures = Vec::new();
        for &want in passes {
            for i in 0..self.endpoints.len() {
                let one = self.single(i);
                let failure = match one.connect_one() {
                    Ok(mut client) => match session_refusal(&mut client, want) {
                        Ok(None) => return Ok(client),
                        Ok(Some(why)) => ConfigError::Connect {
                            target: one.target(one.uses_tcp()),
                            detail: why.to_owned(),
                            hint: Some(format!(
                                "target_session_attrs={} does not accept this server; name \
                                 a server of that kind in host=, or change \
                                 target_session_attrs",
                                self.target_session_attrs.as_str()
                            )),
                            sqlstate: None,
                        },
                        Err(e) => one.connect_error(&e, &one.lookup_password(), one.uses_tcp()),
                    },
                    Err(e) => e,
                };
                tracing::debug!("{failure}");
                failures.push(failure);
            }
        }
        if failures.len() == 1 {
            return Err(failures.remove(0));
        }
        let sqlstate = failures.iter().rev().find_map(|f| match f {
            ConfigError::Connect { sqlstate, .. } => sqlstate.clone(),
            _ => None,
        });
        Err(ConfigError::Connect {
            target: format!(
                "any of {} hosts ({}) as user \"{}\" (database \"{}\", sslmode={}, \
                 target_session_attrs={})",
                self.endpoints.len(),
                self.host_display(),
                self.user,
                self.dbname,
                self.sslmode,
                self.target_session_attrs.as_str()
            ),
            detail: failures
                .iter()
                .map(ToString::to_string)
                .collect::<Vec<_>>()
                .join("; then "),
            hint: None,
            sqlstate,
        })
    }

    /// One attempt on the only (first) endpoint.
    fn connect_one(&self) -> Result<postgres::Client, ConfigError> {
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

/// Why a session does not suit `want` (libpq 15's words), or `None` if it does.
fn session_refusal(
    client: &mut postgres::Client,
    want: TargetSessionAttrs,
) -> Result<Option<&'static str>, postgres::Error> {
    if want == TargetSessionAttrs::Any {
        return Ok(None);
    }
    let row = client.query_one(
        "SELECT pg_catalog.current_setting('transaction_read_only') = 'on', \
         pg_catalog.pg_is_in_recovery()",
        &[],
    )?;
    let (read_only, standby): (bool, bool) = (row.get(0), row.get(1));
    Ok(match want {
        TargetSessionAttrs::ReadWrite if read_only => Some("session is read-only"),
        TargetSessionAttrs::ReadOnly if !read_only => Some("session is not read-only"),
        TargetSessionAttrs::Primary if standby => Some("server is in hot standby mode"),
        TargetSessionAttrs::Standby | TargetSessionAttrs::PreferStandby if !standby => {
            Some("server is not in hot standby mode")
        }
        _ => None,
    })
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
