//! Parsing: `postgres://` URLs and libpq `keyword=value` strings into `Params` by libpq's
//! rules, and a configuration back into a URL ([`ConnConfig::redacted`]).
//! Invariant: unknown or unsupported keywords are errors, never ignored; a value that may
//! be a password is never echoed in an error, and `redacted` never contains one.

use std::net::IpAddr;
use std::path::PathBuf;
use std::time::Duration;

use super::env::home_dir;
use super::service::apply_service;
use super::{
    ChannelBinding, ConfigError, ConnConfig, Host, Password, SslMode, SslRootCert,
    TargetSessionAttrs,
};

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
    "sslcert",
    "sslkey",
    "channel_binding",
    "target_session_attrs",
    "service",
    "application_name",
    "fallback_application_name",
    "connect_timeout",
    "options",
    "client_encoding",
];

/// libpq keywords that cutter recognises but cannot honour; they are rejected
/// instead of being silently ignored.
const UNSUPPORTED_LIBPQ_KEYWORDS: &[&str] = &[
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
    "gssencmode",
    "gsslib",
    "gssdelegation",
    "krbsrvname",
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

/// Parameters as given by one source, before defaults.
#[derive(Default)]
pub(super) struct Params {
    /// One entry per host of a list; `None`: an empty entry (the default host).
    pub(super) host: Option<Vec<Option<Host>>>,
    pub(super) hostaddr: Option<Vec<Option<IpAddr>>>,
    pub(super) port: Option<Vec<Option<u16>>>,
    pub(super) user: Option<String>,
    pub(super) dbname: Option<String>,
    pub(super) password: Option<(Password, String)>,
    pub(super) passfile: Option<PathBuf>,
    pub(super) sslmode: Option<SslMode>,
    pub(super) sslrootcert: Option<SslRootCert>,
    pub(super) sslcert: Option<PathBuf>,
    pub(super) sslkey: Option<PathBuf>,
    pub(super) channel_binding: Option<ChannelBinding>,
    pub(super) target_session_attrs: Option<TargetSessionAttrs>,
    pub(super) service: Option<String>,
    pub(super) application_name: Option<String>,
    pub(super) fallback_application_name: Option<String>,
    /// `Some(None)`: explicitly no timeout.
    pub(super) connect_timeout: Option<Option<Duration>>,
    pub(super) options: Option<String>,
}

impl Params {
    pub(super) fn is_set(&self, key: &str) -> bool {
        match key {
            "host" | "hostaddr" => self.host.is_some() || self.hostaddr.is_some(),
            "port" => self.port.is_some(),
            "user" => self.user.is_some(),
            "dbname" => self.dbname.is_some(),
            "password" => self.password.is_some(),
            "passfile" => self.passfile.is_some(),
            "sslmode" => self.sslmode.is_some(),
            "sslrootcert" => self.sslrootcert.is_some(),
            "sslcert" => self.sslcert.is_some(),
            "sslkey" => self.sslkey.is_some(),
            "channel_binding" => self.channel_binding.is_some(),
            "target_session_attrs" => self.target_session_attrs.is_some(),
            "service" => self.service.is_some(),
            "fallback_application_name" => self.fallback_application_name.is_some(),
            "application_name" => self.application_name.is_some(),
            "connect_timeout" => self.connect_timeout.is_some(),
            "options" => self.options.is_some(),
            _ => false,
        }
    }
}

/// Context for error messages while parsing one source.
pub(super) struct Ctx {
    /// e.g. `connection URL in DATABASE_URL`.
    pub(super) origin: String,
    /// Don't echo values (the URL may contain an unencoded password).
    pub(super) quiet: bool,
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
pub(super) fn apply_param(
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
    if key == "require_auth" {
        return Err(ctx.err(
            "libpq parameter \"require_auth\" is not supported by cutter: tokio-postgres, its \
             PostgreSQL driver, authenticates inside the connection handshake and does not report \
             which authentication request the server sent, so cutter could not enforce it (and \
             libpq 15, which pg_dump uses, does not know the parameter); remove it, and use \
             channel_binding=require to demand SCRAM-SHA-256-PLUS over TLS",
        ));
    }
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
            let mut hosts = Vec::new();
            for h in value.split(',') {
                if h.starts_with('@') {
                    return Err(at(
                        "abstract unix sockets (host=@...) are not supported; give a socket \
                         directory starting with / or a TCP host name"
                            .to_owned(),
                    ));
                }
                hosts.push(match h {
                    "" => None,
                    d if d.starts_with('/') => Some(Host::Unix(PathBuf::from(d))),
                    h => Some(Host::Tcp(h.to_owned())),
                });
            }
            p.host = Some(hosts);
        }
        "hostaddr" => {
            let mut addrs = Vec::new();
            for a in value.split(',') {
                addrs.push(if a.is_empty() {
                    None
                } else {
                    Some(a.parse::<IpAddr>().map_err(|_| {
                        at(format!(
                            "{} is not a numeric IPv4 or IPv6 address (use host= for host names)",
                            ctx.show(a)
                        ))
                    })?)
                });
            }
            p.hostaddr = Some(addrs);
        }
        "port" => {
            let mut ports = Vec::new();
            for port in value.split(',') {
                ports.push(if port.is_empty() {
                    None
                } else {
                    Some(parse_port(port).map_err(|m| at(m.replace("{}", &ctx.show(port))))?)
                });
            }
            p.port = Some(ports);
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
        "sslcert" => p.sslcert = Some(PathBuf::from(value)),
        "sslkey" => p.sslkey = Some(PathBuf::from(value)),
        "channel_binding" => p.channel_binding = Some(value.parse().map_err(at)?),
        "target_session_attrs" => p.target_session_attrs = Some(value.parse().map_err(at)?),
        "service" => p.service = Some(value),
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
pub(super) fn parse_conninfo(s: &str, label: Option<&str>) -> Result<Params, ConfigError> {
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

    // libpq: several `host[:port]` separated by commas, each becoming one entry of the
    // host and port lists.
    let mut hosts = Vec::new();
    let mut ports = Vec::new();
    for one in netloc.split(',') {
        let (host, port) = url_host_port(one, &ctx)?;
        hosts.push(host);
        ports.push(port.unwrap_or_default());
    }
    // From here on, echoing is safe unless the URL looked suspicious.
    if hosts.iter().any(|h| !h.is_empty()) || hosts.len() > 1 {
        apply_param(&mut p, "host", hosts.join(","), &ctx, "host part")?;
    }
    if ports.iter().any(|p| !p.is_empty()) {
        apply_param(
            &mut p,
            "port",
            ports.join(","),
            &ctx,
            "port (after the host)",
        )?;
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

/// One `host[:port]` of a URL's host part (`[v6]` in brackets): the decoded host (empty
/// if none) and the port text, if any.
fn url_host_port<'a>(netloc: &'a str, ctx: &Ctx) -> Result<(String, Option<&'a str>), ConfigError> {
    if let Some(inner) = netloc.strip_prefix('[') {
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
        Ok((host.to_owned(), port))
    } else {
        let (h, port) = match netloc.find(':') {
            Some(i) => (&netloc[..i], Some(&netloc[i + 1..])),
            None => (netloc, None),
        };
        Ok((decode_component(h, "host", ctx, false)?, port))
    }
}

impl ConnConfig {
    /// Parses a `postgres://`/`postgresql://` URL or a libpq `keyword=value`
    /// string and fills in libpq defaults, ignoring the environment (the home directory
    /// for `~/.pgpass`, `~/.postgresql` and `~/.pg_service.conf` is the user database's;
    /// a `service=` is looked up there, then in the default system `pg_service.conf`).
    pub fn parse(s: &str) -> Result<Self, ConfigError> {
        let mut params = parse_conninfo(s, None)?;
        let no_env = |_: &str| None;
        if let Some(service) = params.service.clone() {
            apply_service(&mut params, &service, &no_env, home_dir(&no_env).as_deref())?;
        }
        Self::finish(params, &no_env)
    }

    /// Whether the connection string `s` itself carries a password (in a URL's user
    /// info, a `password` query parameter, or a `password = …` keyword), by libpq's own
    /// parsing rules. Places that refuse secrets (command lines, config files) use it.
    pub fn string_has_password(s: &str) -> Result<bool, ConfigError> {
        Ok(parse_conninfo(s, None)?.password.is_some())
    }

    /// A URL for humans and logs, never containing the password:
    /// `postgres://user@host:port/db?sslmode=...`. It parses back
    /// ([`ConnConfig::parse`]) to the same settings, minus password and
    /// statement/lock timeouts.
    pub fn redacted(&self) -> String {
        let netloc = self
            .endpoints
            .iter()
            .map(|e| {
                let host = match &e.host {
                    Some(Host::Tcp(h)) if h.contains(':') => format!("[{h}]"),
                    Some(Host::Tcp(h)) => url_encode(h),
                    Some(Host::Unix(d)) => url_encode(&d.to_string_lossy()),
                    None => String::new(),
                };
                format!("{host}:{}", e.port)
            })
            .collect::<Vec<_>>()
            .join(",");
        let mut url = format!(
            "postgres://{}@{netloc}/{}?sslmode={}",
            url_encode(&self.user),
            url_encode(&self.dbname),
            self.sslmode
        );
        let mut param = |k: &str, v: &str| {
            url.push('&');
            url.push_str(k);
            url.push('=');
            url.push_str(&url_encode(v));
        };
        if self.endpoints.iter().any(|e| e.hostaddr.is_some()) {
            let addrs: Vec<String> = self
                .endpoints
                .iter()
                .map(|e| e.hostaddr.map(|a| a.to_string()).unwrap_or_default())
                .collect();
            param("hostaddr", &addrs.join(","));
        }
        if self.target_session_attrs != TargetSessionAttrs::Any {
            param("target_session_attrs", self.target_session_attrs.as_str());
        }
        if self.channel_binding != ChannelBinding::Prefer {
            param("channel_binding", self.channel_binding.as_str());
        }
        // The client certificate only when it would be sent (the defaults are everywhere).
        if let Some(cert) = self.sslcert.as_deref().filter(|c| c.is_file()) {
            param("sslcert", &cert.to_string_lossy());
            if let Some(key) = &self.sslkey {
                param("sslkey", &key.to_string_lossy());
            }
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
