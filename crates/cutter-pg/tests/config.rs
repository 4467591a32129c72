//! Tests of `cutter_pg::config` without a server: parsing, environment resolution,
//! service files, password files, redaction, child environments. Real connections are in
//! `libpq_live.rs`.

use std::collections::HashMap;
use std::net::IpAddr;
use std::os::unix::fs::{MetadataExt as _, PermissionsExt as _};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use cutter_pg::config::{
    lookup_passfile, ChannelBinding, ConfigError, ConnConfig, Host, PassfileWarning, Password,
    PasswordSource, SslMode, SslRootCert, TargetSessionAttrs, DEFAULT_SOCKET_DIR,
};

// ---------------------------------------------------------------------------
// helpers
// ---------------------------------------------------------------------------

fn env_of(pairs: &[(&str, &str)]) -> impl Fn(&str) -> Option<String> {
    let map: HashMap<String, String> = pairs
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
    move |k: &str| map.get(k).cloned()
}

fn parse(s: &str) -> ConnConfig {
    ConnConfig::parse(s).unwrap_or_else(|e| panic!("parse({s:?}) failed: {e}"))
}

fn parse_err(s: &str) -> String {
    match ConnConfig::parse(s) {
        Ok(c) => panic!("parse({s:?}) should fail, got {c:?}"),
        Err(e) => e.to_string(),
    }
}

fn tcp(h: &str) -> Option<Host> {
    Some(Host::Tcp(h.to_owned()))
}

fn unix(d: &str) -> Option<Host> {
    Some(Host::Unix(PathBuf::from(d)))
}

fn os_user_name() -> String {
    let out = Command::new("id").arg("-un").output().expect("run id -un");
    assert!(out.status.success());
    String::from_utf8(out.stdout).unwrap().trim().to_owned()
}

fn default_host() -> Option<Host> {
    if Path::new(DEFAULT_SOCKET_DIR).is_dir() {
        unix(DEFAULT_SOCKET_DIR)
    } else {
        tcp("localhost")
    }
}

fn write_file(path: &Path, content: &str, mode: u32) {
    let _ = std::fs::remove_file(path);
    std::fs::write(path, content).unwrap();
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode)).unwrap();
}

fn pw(c: &ConnConfig) -> Option<&str> {
    c.password().map(Password::expose_secret)
}

// ---------------------------------------------------------------------------
// URL parsing
// ---------------------------------------------------------------------------

#[test]
fn url_full_with_percent_encoding_and_query_params() {
    let c = parse(
        "postgres://al%69ce:s%40cr%3Aet@db.example.com:6543/app%20db?sslmode=verify-full\
         &application_name=cut%20ter&connect_timeout=10&options=-c%20search_path%3Dfoo",
    );
    assert_eq!(c.host(), tcp("db.example.com").as_ref());
    assert_eq!(c.port(), 6543);
    assert_eq!(c.user(), "alice");
    assert_eq!(pw(&c), Some("s@cr:et"));
    assert_eq!(c.dbname(), "app db");
    assert_eq!(c.sslmode(), SslMode::VerifyFull);
    assert_eq!(c.application_name(), Some("cut ter"));
    assert_eq!(c.connect_timeout(), Some(Duration::from_secs(10)));
    assert_eq!(c.options(), Some("-c search_path=foo"));
    assert_eq!(c.hostaddr(), None);
}

#[test]
fn url_table() {
    struct Case {
        url: &'static str,
        host: Option<Host>,
        port: u16,
        user: &'static str,
        db: &'static str,
        password: Option<&'static str>,
        sslmode: SslMode,
    }
    let cases = [
        Case {
            url: "postgresql://u@[::1]:5433/db",
            host: tcp("::1"),
            port: 5433,
            user: "u",
            db: "db",
            password: None,
            sslmode: SslMode::Prefer,
        },
        Case {
            url: "postgres://u@[2001:db8::7]/x",
            host: tcp("2001:db8::7"),
            port: 5432,
            user: "u",
            db: "x",
            password: None,
            sslmode: SslMode::Prefer,
        },
        Case {
            url: "postgres://u@%2Fvar%2Frun%2Fpostgresql/db",
            host: unix("/var/run/postgresql"),
            port: 5432,
            user: "u",
            db: "db",
            password: None,
            sslmode: SslMode::Prefer,
        },
        Case {
            url: "postgres://u@/db?host=/tmp",
            host: unix("/tmp"),
            port: 5432,
            user: "u",
            db: "db",
            password: None,
            sslmode: SslMode::Prefer,
        },
        Case {
            // Query parameters override the authority part, as in libpq.
            url: "postgresql://u@localhost:1111/db?host=%2Ftmp%2Fsock&port=5999",
            host: unix("/tmp/sock"),
            port: 5999,
            user: "u",
            db: "db",
            password: None,
            sslmode: SslMode::Prefer,
        },
        Case {
            // ssl=true means sslmode=require; dbname defaults to the user.
            url: "postgres://bob@localhost?ssl=true",
            host: tcp("localhost"),
            port: 5432,
            user: "bob",
            db: "bob",
            password: None,
            sslmode: SslMode::Require,
        },
        Case {
            // The password is split at the first ':' and may contain more.
            url: "postgres://u:a:b@h/d",
            host: tcp("h"),
            port: 5432,
            user: "u",
            db: "d",
            password: Some("a:b"),
            sslmode: SslMode::Prefer,
        },
        Case {
            // libpq: user info runs up to the first '@' before any '/', so an
            // unencoded '?' in the password is fine.
            url: "postgres://u:pa?ss@h/d?sslmode=disable",
            host: tcp("h"),
            port: 5432,
            user: "u",
            db: "d",
            password: Some("pa?ss"),
            sslmode: SslMode::Disable,
        },
        Case {
            // '+' is not a space in libpq URLs; an empty port means the default.
            url: "postgres://a+b@h:/d+e",
            host: tcp("h"),
            port: 5432,
            user: "a+b",
            db: "d+e",
            password: None,
            sslmode: SslMode::Prefer,
        },
        Case {
            url: "postgres://u@h/d?password=from%26query&sslmode=allow",
            host: tcp("h"),
            port: 5432,
            user: "u",
            db: "d",
            password: Some("from&query"),
            sslmode: SslMode::Allow,
        },
    ];
    for c in cases {
        let got = parse(c.url);
        assert_eq!(got.host(), c.host.as_ref(), "host of {}", c.url);
        assert_eq!(got.port(), c.port, "port of {}", c.url);
        assert_eq!(got.user(), c.user, "user of {}", c.url);
        assert_eq!(got.dbname(), c.db, "dbname of {}", c.url);
        assert_eq!(pw(&got), c.password, "password of {}", c.url);
        assert_eq!(got.sslmode(), c.sslmode, "sslmode of {}", c.url);
    }
}

#[test]
fn url_hostaddr_timeouts_and_sslrootcert() {
    let c = parse("postgres://u@db.internal/d?hostaddr=10.1.2.3&connect_timeout=0");
    assert_eq!(c.host(), tcp("db.internal").as_ref());
    assert_eq!(c.hostaddr(), Some("10.1.2.3".parse::<IpAddr>().unwrap()));
    assert_eq!(c.connect_timeout(), None, "0 means wait forever");
    assert_eq!(c.host_display(), "db.internal:5432 (address 10.1.2.3)");
    assert_eq!(c.pgpass_host(), "db.internal");

    // libpq turns 1 second into 2.
    let c = parse("postgres://u@h/d?connect_timeout=1");
    assert_eq!(c.connect_timeout(), Some(Duration::from_secs(2)));

    // sslrootcert=system makes verify-full the default.
    let c = parse("postgres://u@h/d?sslrootcert=system");
    assert_eq!(c.sslrootcert(), Some(&SslRootCert::System));
    assert_eq!(c.sslmode(), SslMode::VerifyFull);

    let c = parse("postgres://u@h/d?sslrootcert=%2Fetc%2Fca.pem&sslmode=verify-ca");
    assert_eq!(
        c.sslrootcert(),
        Some(&SslRootCert::File(PathBuf::from("/etc/ca.pem")))
    );
    assert_eq!(c.sslmode(), SslMode::VerifyCa);
}

// ---------------------------------------------------------------------------
// keyword/value parsing
// ---------------------------------------------------------------------------

#[test]
fn keyword_string_table() {
    let c = parse(
        r"host=db.example.com port=6543 dbname='a b' user=alice password='it\'s a \\ secret'",
    );
    assert_eq!(c.host(), tcp("db.example.com").as_ref());
    assert_eq!(c.port(), 6543);
    assert_eq!(c.dbname(), "a b");
    assert_eq!(c.user(), "alice");
    assert_eq!(pw(&c), Some(r"it's a \ secret"));

    // Whitespace around '=' is allowed; a leading '/' means a socket directory.
    let c = parse("  host = /tmp   port= 5444 dbname =x user=u  ");
    assert_eq!(c.host(), unix("/tmp").as_ref());
    assert_eq!(c.port(), 5444);
    assert_eq!(c.dbname(), "x");
    assert_eq!(c.host_display(), "unix socket /tmp/.s.PGSQL.5444");

    // Backslash escapes in unquoted values.
    let c = parse(r"dbname=a\ b user=u\'x");
    assert_eq!(c.dbname(), "a b");
    assert_eq!(c.user(), "u'x");

    // IPv6 without brackets, sslmode, application_name, options with spaces.
    let c = parse(
        "host=::1 sslmode=disable user=u application_name='my app' options='-c work_mem=64MB'",
    );
    assert_eq!(c.host(), tcp("::1").as_ref());
    assert_eq!(c.host_display(), "[::1]:5432");
    assert_eq!(c.sslmode(), SslMode::Disable);
    assert_eq!(c.application_name(), Some("my app"));
    assert_eq!(c.options(), Some("-c work_mem=64MB"));

    // Empty quoted value: like unset (default applies).
    let c = parse("host='' port='' user=u");
    assert_eq!(c.host(), default_host().as_ref());
    assert_eq!(c.port(), 5432);

    // fallback_application_name is used when application_name is not set.
    let c = parse("user=u fallback_application_name=fb");
    assert_eq!(c.application_name(), Some("fb"));
    let c = parse("user=u fallback_application_name=fb application_name=real");
    assert_eq!(c.application_name(), Some("real"));

    // client_encoding=UTF8 is accepted (it is what we always use).
    parse("user=u client_encoding=UTF8");
}

#[test]
fn empty_string_gives_libpq_defaults() {
    let c = parse("");
    let me = os_user_name();
    assert_eq!(c.user(), me);
    assert_eq!(c.dbname(), me);
    assert_eq!(c.port(), 5432);
    assert_eq!(c.sslmode(), SslMode::Prefer);
    assert_eq!(c.host(), default_host().as_ref());
    assert_eq!(c.password(), None);
    assert_eq!(c.statement_timeout(), None);
    assert_eq!(c.effective_options(), None);
}

#[test]
fn bad_inputs_name_the_problem() {
    // (input, substrings the error must contain)
    let cases: &[(&str, &[&str])] = &[
        (
            "host=x frobnicate=1",
            &[
                "invalid connection string",
                "unknown connection parameter",
                "\"frobnicate\"",
                "supported:",
            ],
        ),
        (
            "host=x sslpassword=pw",
            &["\"sslpassword\"", "not supported by cutter", "remove it"],
        ),
        (
            "host=x require_auth=scram-sha-256",
            &[
                "\"require_auth\"",
                "does not report which authentication request",
                "channel_binding=require",
            ],
        ),
        ("port=abc", &["keyword \"port\"", "\"abc\"", "1 to 65535"]),
        ("port=0", &["\"0\"", "port"]),
        (
            "host=a,b,c port=5432,5433",
            &["could not match 2 port numbers to 3 hosts"],
        ),
        (
            "host=a,b hostaddr=10.0.0.1",
            &["could not match 2 host names to 1 hostaddr values"],
        ),
        ("host=a,b port=5432,x", &["keyword \"port\"", "\"x\""]),
        (
            "channel_binding=always",
            &["invalid channel_binding value: \"always\""],
        ),
        (
            "target_session_attrs=writable",
            &["invalid target_session_attrs value: \"writable\""],
        ),
        (
            "postgres://h:99999/db",
            &["invalid connection URL", "port", "\"99999\""],
        ),
        ("postgres://h:54x/db", &["port", "\"54x\""]),
        ("sslmode=maybe", &["sslmode", "\"maybe\"", "verify-full"]),
        (
            "postgres://h/db?sslmode=strict",
            &["query parameter \"sslmode\"", "\"strict\""],
        ),
        ("dbname='abc", &["unterminated quoted value", "\"dbname\""]),
        (
            "hostname",
            &["missing \"=\" after \"hostname\"", "postgres:// URL"],
        ),
        ("=x", &["missing keyword"]),
        (
            "postgres://h1:1,h2:x/db",
            &["port (after the host)", "\"x\""],
        ),
        (
            "postgres://h/db?foo=bar",
            &["unknown connection parameter", "\"foo\""],
        ),
        (
            "postgres://h/db?load_balance_hosts=random",
            &["load_balance_hosts", "not supported"],
        ),
        (
            "postgres://h/d%zz",
            &["percent-encoding", "%zz", "database name"],
        ),
        ("postgres://h/d%00", &["%00"]),
        ("postgres://h/d%C3", &["UTF-8"]),
        ("postgres://[::1/db", &["missing \"]\""]),
        ("postgres://[::1]x/db", &["after \"]\""]),
        ("postgres://[nothex]/db", &["not an IPv6 address"]),
        ("postgres://h/db?novalue", &["\"novalue\"", "has no value"]),
        ("hostaddr=db.example.com", &["hostaddr", "numeric"]),
        (
            "connect_timeout=soon",
            &["connect_timeout", "\"soon\"", "seconds"],
        ),
        ("postgres://h/db?ssl=false", &["\"ssl\"", "ssl=true"]),
        (
            "sslrootcert=system sslmode=require",
            &[
                "weak sslmode \"require\" may not be used with sslrootcert=system",
                "verify-full",
            ],
        ),
        ("host=@abstract", &["abstract"]),
        ("client_encoding=LATIN1", &["client_encoding", "UTF8"]),
    ];
    for (input, needles) in cases {
        let msg = parse_err(input);
        for n in *needles {
            assert!(
                msg.contains(n),
                "error for {input:?} should contain {n:?}, got: {msg}"
            );
        }
    }
}

#[test]
fn error_variants_are_structured() {
    match ConnConfig::parse("port=abc") {
        Err(ConfigError::Invalid { origin, problem }) => {
            assert_eq!(origin, "connection string");
            assert!(problem.contains("port"), "{problem}");
        }
        other => panic!("expected Invalid, got {other:?}"),
    }
}

// ---------------------------------------------------------------------------
// environment resolution
// ---------------------------------------------------------------------------

#[test]
fn precedence_explicit_over_database_url_over_pg_vars() {
    let env = env_of(&[
        (
            "DATABASE_URL",
            "postgres://urluser@url-host:7000/urldb?application_name=fromurl",
        ),
        ("PGHOST", "pg-host"),
        ("PGPORT", "6000"),
        ("PGUSER", "pguser"),
        ("PGDATABASE", "pgdb"),
        ("PGAPPNAME", "pgapp"),
        ("PGSSLMODE", "require"),
        ("HOME", "/nonexistent-home"),
    ]);

    // Explicit string wins; DATABASE_URL is ignored entirely; PG* fill the rest.
    let c = ConnConfig::resolve(Some("postgres://explicit-host/edb"), &env).unwrap();
    assert_eq!(c.host(), tcp("explicit-host").as_ref());
    assert_eq!(c.dbname(), "edb");
    assert_eq!(c.user(), "pguser");
    assert_eq!(c.port(), 6000);
    assert_eq!(c.application_name(), Some("pgapp"));
    assert_eq!(c.sslmode(), SslMode::Require);

    // A keyword string in the explicit slot works the same way.
    let c = ConnConfig::resolve(Some("dbname=kwdb sslmode=disable"), &env).unwrap();
    assert_eq!(c.dbname(), "kwdb");
    assert_eq!(c.host(), tcp("pg-host").as_ref());
    assert_eq!(c.sslmode(), SslMode::Disable);

    // Without an explicit string, DATABASE_URL; PG* fill what it leaves unset.
    for explicit in [None, Some(""), Some("   ")] {
        let c = ConnConfig::resolve(explicit, &env).unwrap();
        assert_eq!(c.host(), tcp("url-host").as_ref(), "{explicit:?}");
        assert_eq!(c.port(), 7000);
        assert_eq!(c.user(), "urluser");
        assert_eq!(c.dbname(), "urldb");
        assert_eq!(c.application_name(), Some("fromurl"));
        assert_eq!(c.sslmode(), SslMode::Require, "from PGSSLMODE");
    }

    // Without DATABASE_URL: PG* variables.
    let env = env_of(&[
        ("PGHOST", "pg-host"),
        ("PGPORT", "6000"),
        ("PGUSER", "pguser"),
        ("PGDATABASE", "pgdb"),
        ("PGPASSWORD", "envpw"),
        ("PGPASSFILE", "/some/pgpass"),
        ("PGSSLROOTCERT", "/some/ca.pem"),
        ("PGCONNECT_TIMEOUT", "7"),
        ("PGOPTIONS", "-c search_path=x"),
        ("HOME", "/nonexistent-home"),
    ]);
    let c = ConnConfig::resolve(None, &env).unwrap();
    assert_eq!(c.host(), tcp("pg-host").as_ref());
    assert_eq!(c.port(), 6000);
    assert_eq!(c.user(), "pguser");
    assert_eq!(c.dbname(), "pgdb");
    assert_eq!(pw(&c), Some("envpw"));
    assert_eq!(c.passfile(), Some(Path::new("/some/pgpass")));
    assert_eq!(
        c.sslrootcert(),
        Some(&SslRootCert::File(PathBuf::from("/some/ca.pem")))
    );
    assert_eq!(c.connect_timeout(), Some(Duration::from_secs(7)));
    assert_eq!(c.options(), Some("-c search_path=x"));
    let lookup = c.lookup_password();
    match &lookup.source {
        PasswordSource::Given { origin } => assert!(origin.contains("PGPASSWORD"), "{origin}"),
        other => panic!("expected Given, got {other:?}"),
    }

    // A password in the string beats PGPASSWORD.
    let c = ConnConfig::resolve(Some("postgres://u:urlpw@h/d"), &env).unwrap();
    assert_eq!(pw(&c), Some("urlpw"));
    match c.lookup_password().source {
        PasswordSource::Given { origin } => assert!(origin.contains("connection URL"), "{origin}"),
        other => panic!("expected Given, got {other:?}"),
    }
}

#[test]
fn host_and_hostaddr_are_one_unit() {
    let env = env_of(&[("PGHOSTADDR", "10.9.9.9"), ("HOME", "/nonexistent-home")]);
    // The string names a host: PGHOSTADDR must not redirect the connection.
    let c = ConnConfig::resolve(Some("host=prod.example.com user=u"), &env).unwrap();
    assert_eq!(c.host(), tcp("prod.example.com").as_ref());
    assert_eq!(c.hostaddr(), None);
    // The string names no host: PGHOSTADDR applies.
    let c = ConnConfig::resolve(Some("user=u"), &env).unwrap();
    assert_eq!(c.host(), None);
    assert_eq!(c.hostaddr(), Some("10.9.9.9".parse().unwrap()));
    assert_eq!(c.host_display(), "10.9.9.9:5432");
    assert_eq!(c.pgpass_host(), "10.9.9.9");
}

#[test]
fn defaults_when_nothing_is_set() {
    let home = tempfile::tempdir().unwrap();
    let env = env_of(&[("HOME", home.path().to_str().unwrap())]);
    let c = ConnConfig::resolve(None, &env).unwrap();
    let me = os_user_name();
    assert_eq!(c.user(), me);
    assert_eq!(c.dbname(), me);
    assert_eq!(c.port(), 5432);
    assert_eq!(c.host(), default_host().as_ref());
    assert_eq!(c.sslmode(), SslMode::Prefer);
    assert_eq!(c.passfile(), Some(home.path().join(".pgpass").as_path()));
    assert_eq!(c.sslrootcert(), None);
    assert_eq!(c.application_name(), None);

    // Empty variables count as unset; dbname defaults to the *resolved* user.
    let env = env_of(&[
        ("HOME", home.path().to_str().unwrap()),
        ("PGPORT", ""),
        ("PGUSER", "carol"),
        ("PGDATABASE", ""),
    ]);
    let c = ConnConfig::resolve(None, &env).unwrap();
    assert_eq!(c.port(), 5432);
    assert_eq!(c.user(), "carol");
    assert_eq!(c.dbname(), "carol");

    // ~/.postgresql/root.crt is used as sslrootcert when it exists (libpq).
    std::fs::create_dir(home.path().join(".postgresql")).unwrap();
    std::fs::write(home.path().join(".postgresql/root.crt"), "x").unwrap();
    let env = env_of(&[("HOME", home.path().to_str().unwrap())]);
    let c = ConnConfig::resolve(Some("user=u"), &env).unwrap();
    assert_eq!(
        c.sslrootcert(),
        Some(&SslRootCert::File(home.path().join(".postgresql/root.crt")))
    );
}

#[test]
fn environment_errors_name_the_variable() {
    type EnvCase<'a> = (&'a [(&'a str, &'a str)], &'a [&'a str]);
    let cases: &[EnvCase] = &[
        (
            &[("PGPORT", "fivefourthreetwo")],
            &["environment variable PGPORT", "\"fivefourthreetwo\""],
        ),
        (
            &[("PGSSLMODE", "on")],
            &["environment variable PGSSLMODE", "\"on\""],
        ),
        (
            &[("PGHOST", "a,b"), ("PGPORT", "1,2,3")],
            &["could not match 3 port numbers to 2 hosts"],
        ),
        (
            &[
                ("PGSERVICE", "prod"),
                ("PGSERVICEFILE", "/nonexistent/services"),
            ],
            &[
                "definition of service \"prod\" not found",
                "/nonexistent/services",
                "pg_service.conf",
            ],
        ),
        (
            &[("PGREQUIREAUTH", "scram-sha-256")],
            &["environment variable PGREQUIREAUTH", "require_auth"],
        ),
        (
            &[("PGCHANNELBINDING", "maybe")],
            &["environment variable PGCHANNELBINDING", "\"maybe\""],
        ),
        (
            &[("DATABASE_URL", "postgres://h:nope/db")],
            &["connection URL in DATABASE_URL", "\"nope\""],
        ),
        (
            &[("DATABASE_URL", "host=x bogus=1")],
            &["connection string in DATABASE_URL", "\"bogus\""],
        ),
    ];
    for (vars, needles) in cases {
        let mut all = vars.to_vec();
        all.push(("PGUSER", "u"));
        let err = ConnConfig::resolve(None, &env_of(&all))
            .unwrap_err()
            .to_string();
        for n in *needles {
            assert!(
                err.contains(n),
                "{vars:?}: error should contain {n:?}: {err}"
            );
        }
    }
}

// ---------------------------------------------------------------------------
// builders and display
// ---------------------------------------------------------------------------

#[test]
fn with_methods_copy_and_change() {
    let base = parse("postgres://alice:secret1@h:5433/app?application_name=a");
    let bob = base.with_user("bob", None);
    assert_eq!(bob.user(), "bob");
    assert_eq!(bob.password(), None, "the old user's password is not kept");
    assert_eq!(base.user(), "alice", "original unchanged");
    assert_eq!(pw(&base), Some("secret1"));

    let carol = base.with_user("carol", Some(Password::new("pw2")));
    assert_eq!(pw(&carol), Some("pw2"));
    assert!(matches!(
        carol.lookup_password().source,
        PasswordSource::Given { .. }
    ));

    let c = base
        .with_dbname("other")
        .with_port(6000)
        .with_sslmode(SslMode::VerifyFull)
        .with_application_name("cutter-test")
        .with_connect_timeout(Some(Duration::from_secs(3)))
        .with_statement_timeout(Some(Duration::from_millis(1500)))
        .with_lock_timeout(Some(Duration::from_micros(10)));
    assert_eq!(c.dbname(), "other");
    assert_eq!(c.port(), 6000);
    assert_eq!(c.sslmode(), SslMode::VerifyFull);
    assert_eq!(c.application_name(), Some("cutter-test"));
    assert_eq!(c.connect_timeout(), Some(Duration::from_secs(3)));
    assert_eq!(
        c.effective_options().as_deref(),
        Some("-c statement_timeout=1500ms -c lock_timeout=1ms"),
        "sub-millisecond timeouts round up instead of becoming 0 (= disabled)"
    );
    let c2 =
        parse("user=u options='-c search_path=s'").with_statement_timeout(Some(Duration::ZERO));
    assert_eq!(
        c2.effective_options().as_deref(),
        Some("-c search_path=s -c statement_timeout=0ms")
    );
    assert_eq!(
        c2.with_statement_timeout(None)
            .effective_options()
            .as_deref(),
        Some("-c search_path=s")
    );

    let moved = parse("postgres://u@h/d?hostaddr=10.0.0.1").with_host(Host::Unix("/tmp".into()));
    assert_eq!(moved.hostaddr(), None, "with_host drops hostaddr");
    assert!(!moved.uses_tcp());
}

#[test]
fn redacted_url_has_no_password_and_round_trips() {
    let c = parse(
        "postgres://al%20ice:Sup3rS3cret@db.example.com:6543/my%2Fdb?sslmode=verify-ca\
         &sslrootcert=%2Fetc%2Fca.pem&application_name=x%26y&options=-c%20a%3Db&hostaddr=10.0.0.2",
    );
    let r = c.redacted();
    assert!(!r.contains("Sup3rS3cret"), "{r}");
    assert!(
        r.starts_with("postgres://al%20ice@db.example.com:6543/my%2Fdb?sslmode=verify-ca"),
        "{r}"
    );
    let back = parse(&r);
    assert_eq!(back.password(), None);
    assert_eq!(back.user(), c.user());
    assert_eq!(back.dbname(), c.dbname());
    assert_eq!(back.host(), c.host());
    assert_eq!(back.hostaddr(), c.hostaddr());
    assert_eq!(back.port(), c.port());
    assert_eq!(back.sslmode(), c.sslmode());
    assert_eq!(back.sslrootcert(), c.sslrootcert());
    assert_eq!(back.application_name(), c.application_name());
    assert_eq!(back.options(), c.options());

    for s in [
        "postgres://u:pw@[::1]:5/d",
        "host=/tmp/s port=5 user=u password=pw dbname=d",
    ] {
        let c = parse(s);
        let back = parse(&c.redacted());
        assert_eq!(back.host(), c.host(), "{}", c.redacted());
        assert_eq!(back.port(), 5);
        assert!(!c.redacted().contains("pw@"), "{}", c.redacted());
    }
    assert_eq!(
        parse("postgres://u:pw@%2Ftmp%2Fs:5/d").redacted(),
        "postgres://u@%2Ftmp%2Fs:5/d?sslmode=prefer"
    );
}

#[test]
fn debug_and_display_never_show_the_password() {
    let secret = "Sup3rS3cret-xyz";
    let p = Password::new(secret);
    assert_eq!(format!("{p:?}"), "<redacted>");
    assert_eq!(format!("{p}"), "<redacted>");
    assert_eq!(p.expose_secret(), secret);

    let c = parse(&format!("postgres://alice:{secret}@h/d"));
    let dbg = format!("{c:?}");
    assert!(!dbg.contains(secret), "{dbg}");
    assert!(dbg.contains("<redacted>"), "{dbg}");
    assert!(dbg.contains("alice"), "{dbg}");
    let dbg = format!("{:?}", c.lookup_password());
    assert!(!dbg.contains(secret), "{dbg}");
    let alt = format!("{c:#?}");
    assert!(!alt.contains(secret), "{alt}");
}

#[test]
fn errors_never_contain_the_password() {
    let secret = "Sup3rS3cret";
    let inputs = [
        format!("postgres://alice:{secret}@h:99999/db"),
        format!("postgres://alice:{secret}@h/db?sslmode=nope"),
        format!("postgres://alice:{secret}@h/db?bogus=1"),
        // Unencoded '/' or '@' inside the password.
        "postgres://alice:Sup3r/S3cret@h/db".to_owned(),
        "postgres://alice:Sup3r@S3cret@h/db".to_owned(),
        "postgres://alice:Sup3r/S3c?ret@h:1/db".to_owned(),
        "postgres://alice:Sup3r/S3c?x=ret@h".to_owned(),
        // Bad percent-encoding inside the password.
        "postgres://alice:Sup3r%zzS3cret@h/db".to_owned(),
        // Unencoded '&' in a query password.
        "postgres://h/db?password=Sup3r&S3cret&x=1".to_owned(),
        "postgres://h/db?password=Sup3r&S3cret=1".to_owned(),
        // Unquoted password with a space.
        "host=h password=Sup3r S3cret user=u".to_owned(),
        "host=h password=Sup3r S3cret=1".to_owned(),
        "host=h password=Sup3r S3cret".to_owned(),
        // Unterminated quote around the password.
        "host=h password='Sup3r S3cret port=1".to_owned(),
        format!("password={secret} port=99999"),
    ];
    for input in &inputs {
        let err = ConnConfig::parse(input).expect_err(input).to_string();
        for part in ["Sup3r", "S3cret", "S3c"] {
            assert!(
                !err.contains(part),
                "error for {input:?} leaks {part:?}: {err}"
            );
        }
        let dbg = format!("{:?}", ConnConfig::parse(input).unwrap_err());
        assert!(
            !dbg.contains("S3c"),
            "Debug of error for {input:?} leaks: {dbg}"
        );
    }
    // Environment: a bad PGPORT next to PGPASSWORD.
    let env = env_of(&[("PGPASSWORD", secret), ("PGPORT", "x"), ("PGUSER", "u")]);
    let err = ConnConfig::resolve(None, &env).unwrap_err().to_string();
    assert!(!err.contains(secret), "{err}");
}

// ---------------------------------------------------------------------------
// password files
// ---------------------------------------------------------------------------

const PGPASS: &str = "# db.example.com:5432:app:alice:commented-out\n\
db.example.com:5432:app:alice:first\n\
*:5432:app:alice:second\n\
weird\\:host:5432:*:bob:with\\:colon\\\\backslash\n\
\n\
*:*:*:carol:wild:card\n\
db*:5432:*:frank:star-is-literal\n\
too:few:fields:dave\n\
localhost:5432:*:dave:socketpw\n\
/tmp/sock:5433:*:erin:sockdir\n\
crlf:5432:*:gina:crlfpw\r\n\
db.example.com:5432:app:alice:never-reached\n";

#[test]
fn pgpass_matching() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("pgpass");
    write_file(&file, PGPASS, 0o600);

    // (host, port, db, user) -> (password, line)
    type Key<'a> = (&'a str, u16, &'a str, &'a str);
    let cases: &[(Key, Option<(&str, usize)>)] = &[
        (("db.example.com", 5432, "app", "alice"), Some(("first", 2))),
        (
            ("other.example.com", 5432, "app", "alice"),
            Some(("second", 3)),
        ),
        (("db.example.com", 5433, "app", "alice"), None),
        (
            ("weird:host", 5432, "anydb", "bob"),
            Some(("with:colon\\backslash", 4)),
        ),
        (("weird\\:host", 5432, "anydb", "bob"), None),
        (("h", 1, "d", "carol"), Some(("wild:card", 6))),
        (("dbx", 5432, "d", "frank"), None),
        (("db*", 5432, "d", "frank"), Some(("star-is-literal", 7))),
        (("localhost", 5432, "x", "dave"), Some(("socketpw", 9))),
        (("/tmp/sock", 5433, "x", "erin"), Some(("sockdir", 10))),
        (("crlf", 5432, "x", "gina"), Some(("crlfpw", 11))),
        (("h", 5432, "d", "zed"), None),
    ];
    for ((host, port, db, user), want) in cases {
        let got = lookup_passfile(&file, host, *port, db, user);
        assert!(got.warnings.is_empty(), "{:?}", got.warnings);
        match want {
            Some((pw, line)) => {
                assert_eq!(
                    got.password.as_ref().map(Password::expose_secret),
                    Some(*pw),
                    "{host}:{port}:{db}:{user}"
                );
                assert_eq!(
                    got.source,
                    PasswordSource::Passfile {
                        path: file.clone(),
                        line: *line
                    }
                );
            }
            None => {
                assert!(
                    got.password.is_none(),
                    "{host}:{port}:{db}:{user} should not match"
                );
                assert_eq!(got.source, PasswordSource::NotFound);
            }
        }
    }
}

#[test]
fn pgpass_via_config_uses_localhost_for_the_default_socket_dir() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("pgpass");
    write_file(&file, PGPASS, 0o600);
    let env = env_of(&[("PGPASSFILE", file.to_str().unwrap())]);

    let c = ConnConfig::resolve(Some("host=/var/run/postgresql user=dave dbname=x"), &env).unwrap();
    assert_eq!(c.pgpass_host(), "localhost");
    let l = c.lookup_password();
    assert_eq!(
        l.password.as_ref().map(Password::expose_secret),
        Some("socketpw")
    );

    let c = ConnConfig::resolve(Some("host=/tmp/sock port=5433 user=erin dbname=x"), &env).unwrap();
    assert_eq!(
        c.lookup_password().password.unwrap().expose_secret(),
        "sockdir"
    );

    // The passfile keyword in the string beats PGPASSFILE.
    let other = dir.path().join("other");
    write_file(&other, "*:*:*:*:from-keyword\n", 0o600);
    let c = ConnConfig::resolve(
        Some(&format!("host=h user=u passfile={}", other.display())),
        &env,
    )
    .unwrap();
    assert_eq!(
        c.lookup_password().password.unwrap().expose_secret(),
        "from-keyword"
    );

    // An explicit password wins over the file, which is then not consulted.
    let c = ConnConfig::resolve(
        Some("host=/tmp/sock port=5433 user=erin password=given"),
        &env,
    )
    .unwrap();
    let l = c.lookup_password();
    assert_eq!(l.password.unwrap().expose_secret(), "given");
    assert!(matches!(l.source, PasswordSource::Given { .. }));

    // ~/.pgpass via HOME when PGPASSFILE is unset.
    write_file(&dir.path().join(".pgpass"), "*:*:*:*:from-home\n", 0o600);
    let env = env_of(&[("HOME", dir.path().to_str().unwrap())]);
    let c = ConnConfig::resolve(Some("host=h user=u"), &env).unwrap();
    assert_eq!(
        c.lookup_password().password.unwrap().expose_secret(),
        "from-home"
    );
}

#[test]
fn pgpass_with_group_or_world_access_is_ignored_and_reported() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("pgpass");
    for mode in [0o644, 0o640, 0o604, 0o660, 0o610] {
        write_file(&file, "*:*:*:*:should-not-be-used\n", mode);
        let got = lookup_passfile(&file, "h", 5432, "d", "u");
        assert!(got.password.is_none(), "mode {mode:o}");
        assert_eq!(got.source, PasswordSource::NotFound);
        assert_eq!(
            got.warnings,
            vec![PassfileWarning::GroupOrWorldAccess {
                path: file.clone(),
                mode
            }]
        );
        let text = got.warnings[0].to_string();
        assert!(
            text.contains("has group or world access; permissions should be u=rw (0600) or less"),
            "{text}"
        );
        assert!(text.contains(&file.display().to_string()), "{text}");
        assert!(text.contains(&format!("{mode:04o}")), "{text}");
    }
    // 0600 and 0400 are fine.
    for mode in [0o600, 0o400] {
        write_file(&file, "*:*:*:*:ok\n", mode);
        let got = lookup_passfile(&file, "h", 5432, "d", "u");
        assert_eq!(got.password.unwrap().expose_secret(), "ok", "mode {mode:o}");
        assert!(got.warnings.is_empty());
    }
    // Through ConnConfig, the warning is reported too.
    write_file(&file, "*:*:*:*:should-not-be-used\n", 0o644);
    let c = ConnConfig::resolve(
        Some("host=h user=u"),
        &env_of(&[("PGPASSFILE", file.to_str().unwrap())]),
    )
    .unwrap();
    let l = c.lookup_password();
    assert!(l.password.is_none());
    assert!(matches!(
        l.warnings.as_slice(),
        [PassfileWarning::GroupOrWorldAccess { mode: 0o644, .. }]
    ));
}

#[test]
fn pgpass_missing_or_not_a_file() {
    let dir = tempfile::tempdir().unwrap();
    let missing = lookup_passfile(&dir.path().join("nope"), "h", 5432, "d", "u");
    assert!(missing.password.is_none());
    assert!(missing.warnings.is_empty(), "a missing file is fine");
    assert_eq!(missing.source, PasswordSource::NotFound);

    let is_dir = lookup_passfile(dir.path(), "h", 5432, "d", "u");
    assert!(is_dir.password.is_none());
    assert_eq!(
        is_dir.warnings,
        vec![PassfileWarning::NotPlainFile {
            path: dir.path().to_owned()
        }]
    );
}

// ---------------------------------------------------------------------------
// child environment
// ---------------------------------------------------------------------------

#[test]
fn child_env_passes_the_password_in_a_private_pgpass_file() {
    let secret = r"Sup3r:S3cret\pw";
    let c = ConnConfig::resolve(
        Some(&format!(
            "host=db.example.com port=6543 user=alice dbname=app sslmode=require \
             application_name=x connect_timeout=5 password='{}'",
            secret.replace('\\', "\\\\")
        )),
        &env_of(&[]),
    )
    .unwrap()
    .with_statement_timeout(Some(Duration::from_secs(5)));
    assert_eq!(pw(&c), Some(secret));

    let ce = c.child_env().unwrap();
    let passfile = ce.passfile().to_owned();
    let dir = passfile.parent().unwrap().to_owned();

    // File and directory exist with private modes while the guard lives.
    let fmode = std::fs::metadata(&passfile).unwrap().mode() & 0o7777;
    let dmode = std::fs::metadata(&dir).unwrap().mode() & 0o7777;
    assert_eq!(fmode, 0o600);
    assert_eq!(dmode, 0o700);
    // libpq reads the password back exactly, for any host/port/db/user.
    let back = lookup_passfile(&passfile, "db.example.com", 6543, "app", "alice");
    assert_eq!(back.password.unwrap().expose_secret(), secret);
    assert!(std::fs::read_to_string(&passfile)
        .unwrap()
        .starts_with("*:*:*:*:"));

    let get = |k: &str| ce.var(k).map(|v| v.to_str().unwrap().to_owned());
    assert_eq!(get("PGHOST").as_deref(), Some("db.example.com"));
    assert_eq!(get("PGPORT").as_deref(), Some("6543"));
    assert_eq!(get("PGUSER").as_deref(), Some("alice"));
    assert_eq!(get("PGDATABASE").as_deref(), Some("app"));
    assert_eq!(get("PGSSLMODE").as_deref(), Some("require"));
    assert_eq!(get("PGAPPNAME").as_deref(), Some("x"));
    assert_eq!(get("PGCONNECT_TIMEOUT").as_deref(), Some("5"));
    assert_eq!(
        get("PGOPTIONS").as_deref(),
        Some("-c statement_timeout=5000ms")
    );
    assert_eq!(get("PGPASSFILE").as_deref(), passfile.to_str());
    assert_eq!(get("PGPASSWORD"), None);
    assert_eq!(get("PGHOSTADDR"), None);
    assert!(ce.unset().contains(&"PGPASSWORD"));
    assert!(ce.unset().contains(&"PGHOSTADDR"));
    assert!(ce.unset().contains(&"PGSERVICE"));
    for (k, v) in ce.vars() {
        assert!(
            !v.to_string_lossy().contains("S3cret"),
            "{k} leaks the password"
        );
    }
    let dbg = format!("{ce:?}");
    assert!(!dbg.contains("S3cret"), "{dbg}");

    // apply(): inherited PGPASSWORD/PGHOSTADDR are removed, ours are set.
    let mut cmd = Command::new("env");
    cmd.env("PGPASSWORD", "inherited-leak")
        .env("PGHOSTADDR", "10.6.6.6")
        .env("PGSERVICE", "svc");
    ce.apply(&mut cmd);
    let out = cmd.output().unwrap();
    assert!(out.status.success());
    let envtext = String::from_utf8(out.stdout).unwrap();
    assert!(!envtext.contains("PGPASSWORD"), "{envtext}");
    assert!(!envtext.contains("PGHOSTADDR"), "{envtext}");
    assert!(!envtext.contains("PGSERVICE"), "{envtext}");
    assert!(!envtext.contains("S3cret"), "{envtext}");
    assert!(
        envtext.contains(&format!("PGPASSFILE={}", passfile.display())),
        "{envtext}"
    );
    assert!(envtext.contains("PGUSER=alice"), "{envtext}");

    drop(ce);
    assert!(!passfile.exists(), "pgpass removed after drop");
    assert!(!dir.exists(), "directory removed after drop");
}

#[test]
fn child_env_without_password_and_with_passfile_password() {
    let home = tempfile::tempdir().unwrap();
    let env = env_of(&[("HOME", home.path().to_str().unwrap())]);

    // No password anywhere: the private pgpass exists but is empty, so the
    // child cannot pick up some other file's password either.
    let c = ConnConfig::resolve(Some("host=/tmp/sock port=5999 user=u dbname=d"), &env).unwrap();
    let ce = c.child_env().unwrap();
    assert_eq!(std::fs::read_to_string(ce.passfile()).unwrap(), "");
    assert_eq!(ce.var("PGHOST").unwrap(), "/tmp/sock");

    // A password found in ~/.pgpass is handed on.
    write_file(
        &home.path().join(".pgpass"),
        "*:5999:d:u:from-file\n",
        0o600,
    );
    let ce = c.child_env().unwrap();
    let got = lookup_passfile(ce.passfile(), "x", 1, "y", "z");
    assert_eq!(got.password.unwrap().expose_secret(), "from-file");

    // Relative socket directories and root files become absolute.
    let c = ConnConfig::resolve(
        Some("host=/tmp/s user=u sslrootcert=rel/ca.pem sslmode=verify-ca"),
        &env,
    )
    .unwrap();
    let ce = c.child_env().unwrap();
    let root = PathBuf::from(ce.var("PGSSLROOTCERT").unwrap());
    assert!(root.is_absolute(), "{root:?}");
    assert!(root.ends_with("rel/ca.pem"));

    // A password with a line break cannot be represented.
    let c = c.with_user("u", Some(Password::new("a\nb")));
    assert!(matches!(
        c.child_env(),
        Err(ConfigError::UnrepresentablePassword)
    ));
}

// ---------------------------------------------------------------------------
// several hosts, services, client certificates (resolution only; live in libpq_live.rs)
// ---------------------------------------------------------------------------

#[test]
fn several_hosts_by_libpq_rules() {
    let eps =
        |c: &ConnConfig| -> Vec<String> { c.endpoints().iter().map(|e| e.display()).collect() };
    // One port for all hosts; an empty host entry is the default host.
    let c = parse("host=a,b port=6000 user=u");
    assert_eq!(eps(&c), ["a:6000", "b:6000"]);
    let c = parse("host=a,,/sock port=1,2,3 user=u");
    assert_eq!(c.endpoints()[1].host, default_host());
    assert_eq!(c.endpoints()[2].display(), "unix socket /sock/.s.PGSQL.3");
    // hostaddr lists pair with host lists; an empty port entry is 5432.
    let c = parse("host=a,b hostaddr=10.0.0.1,10.0.0.2 port=,7 user=u");
    assert_eq!(
        eps(&c),
        ["a:5432 (address 10.0.0.1)", "b:7 (address 10.0.0.2)"]
    );
    // URLs: host[:port] separated by commas, IPv6 in brackets.
    let c = parse("postgresql://u@h1:5433,[::1]:5434,h3/db?target_session_attrs=read-write");
    assert_eq!(eps(&c), ["h1:5433", "[::1]:5434", "h3:5432"]);
    assert_eq!(c.target_session_attrs(), TargetSessionAttrs::ReadWrite);
    // The redacted URL keeps every host and parses back to the same list.
    let back = parse(&c.redacted());
    assert_eq!(back.endpoints(), c.endpoints());
    assert_eq!(back.target_session_attrs(), TargetSessionAttrs::ReadWrite);
    // PGHOST/PGPORT lists too, and the host stays one unit with the string's.
    let c = ConnConfig::resolve(
        None,
        &env_of(&[("PGHOST", "x,y"), ("PGPORT", "1,2"), ("PGUSER", "u")]),
    )
    .unwrap();
    assert_eq!(eps(&c), ["x:1", "y:2"]);
    // The child gets the same lists.
    let ce = c.child_env().unwrap();
    assert_eq!(ce.var("PGHOST").unwrap(), "x,y");
    assert_eq!(ce.var("PGPORT").unwrap(), "1,2");
    assert_eq!(ce.var("PGTARGETSESSIONATTRS").unwrap(), "any");
    assert_eq!(ce.var("PGCHANNELBINDING").unwrap(), "prefer");
}

#[test]
fn child_password_file_has_one_line_per_host_when_passwords_differ() {
    let home = tempfile::tempdir().unwrap();
    write_file(
        &home.path().join(".pgpass"),
        "a:1:*:u:pw-a\nb:2:*:u:pw\\:b\n",
        0o600,
    );
    let env = env_of(&[("HOME", home.path().to_str().unwrap())]);
    let c = ConnConfig::resolve(Some("host=a,b,c port=1,2,3 user=u dbname=d"), &env).unwrap();
    let ce = c.child_env().unwrap();
    assert_eq!(
        std::fs::read_to_string(ce.passfile()).unwrap(),
        "a:1:*:*:pw-a\nb:2:*:*:pw\\:b\n"
    );
    // libpq, reading that file for each host, finds each host's password.
    let b = lookup_passfile(ce.passfile(), "b", 2, "d", "u");
    assert_eq!(b.password.unwrap().expose_secret(), "pw:b");
    assert!(lookup_passfile(ce.passfile(), "c", 3, "d", "u")
        .password
        .is_none());
    // One password for every host: the wildcard line.
    let c =
        ConnConfig::resolve(Some("host=a,b port=1 user=u dbname=d password=same"), &env).unwrap();
    let ce = c.child_env().unwrap();
    assert_eq!(
        std::fs::read_to_string(ce.passfile()).unwrap(),
        "*:*:*:*:same\n"
    );
}

#[test]
fn services_fill_in_what_the_string_leaves_unset() {
    let dir = tempfile::tempdir().unwrap();
    let home = dir.path().join("home");
    let sysconf = dir.path().join("etc");
    std::fs::create_dir_all(&home).unwrap();
    std::fs::create_dir_all(&sysconf).unwrap();
    std::fs::write(
        home.join(".pg_service.conf"),
        "# mine\n[app]\nhost=user-file-host\nport=6001\ndbname=appdb\nsslmode=require\n",
    )
    .unwrap();
    std::fs::write(
        sysconf.join("pg_service.conf"),
        "[app]\nhost=system-host\n[sys]\n  host=sys-host  \nuser=sys-user\nchannel_binding=require\n\
         [broken]\nfrobnicate=1\n[nested]\nservice=app\n[unsupported]\nsslpassword=x\n",
    )
    .unwrap();
    let env = |extra: &[(&str, &str)]| {
        let mut all = vec![
            ("HOME", home.to_str().unwrap()),
            ("PGSYSCONFDIR", sysconf.to_str().unwrap()),
            ("PGUSER", "env-user"),
            ("PGPORT", "7000"),
        ];
        all.extend_from_slice(extra);
        env_of(&all)
    };
    // ~/.pg_service.conf first; the string wins over the service, the service over PG*.
    let c = ConnConfig::resolve(Some("service=app dbname=mine"), &env(&[])).unwrap();
    assert_eq!(c.host(), tcp("user-file-host").as_ref());
    assert_eq!(c.port(), 6001);
    assert_eq!(c.dbname(), "mine");
    assert_eq!(c.user(), "env-user");
    assert_eq!(c.sslmode(), SslMode::Require);
    // PGSERVICE names it when the string does not; the system file serves what the
    // user's does not define (surrounding whitespace of a line is ignored).
    let c = ConnConfig::resolve(None, &env(&[("PGSERVICE", "sys")])).unwrap();
    assert_eq!(c.host(), tcp("sys-host").as_ref());
    assert_eq!(c.user(), "sys-user");
    assert_eq!(c.channel_binding(), ChannelBinding::Require);
    // PGSERVICEFILE replaces ~/.pg_service.conf.
    let only = dir.path().join("only.conf");
    std::fs::write(&only, "[app]\nhost=only-host\n").unwrap();
    let c = ConnConfig::resolve(
        Some("service=app"),
        &env(&[("PGSERVICEFILE", only.to_str().unwrap())]),
    )
    .unwrap();
    assert_eq!(c.host(), tcp("only-host").as_ref());
    // The child gets the resolved settings and never the service.
    let ce = c.child_env().unwrap();
    assert_eq!(ce.var("PGHOST").unwrap(), "only-host");
    assert!(ce.unset().contains(&"PGSERVICE"));
    assert!(ce.unset().contains(&"PGSERVICEFILE"));
    // Errors name the file and line.
    let sys_file = sysconf.join("pg_service.conf").display().to_string();
    for (service, needles) in [
        (
            "broken",
            vec![
                format!("service file \"{sys_file}\", line 8"),
                "\"frobnicate\"".to_owned(),
            ],
        ),
        (
            "nested",
            vec![format!(
                "nested service specifications not supported in service file \"{sys_file}\", \
                 line 10"
            )],
        ),
        (
            "unsupported",
            vec!["\"sslpassword\" is not supported".to_owned()],
        ),
    ] {
        let e = ConnConfig::resolve(Some(&format!("service={service}")), &env(&[]))
            .unwrap_err()
            .to_string();
        for n in needles {
            assert!(e.contains(&n), "{service}: {e} should contain {n}");
        }
    }
}

#[test]
fn client_certificate_defaults_and_environment() {
    let home = tempfile::tempdir().unwrap();
    let h = home.path();
    let env = env_of(&[("HOME", h.to_str().unwrap())]);
    let c = ConnConfig::resolve(Some("host=h user=u"), &env).unwrap();
    assert_eq!(
        c.sslcert(),
        Some(h.join(".postgresql/postgresql.crt").as_path())
    );
    assert_eq!(
        c.sslkey(),
        Some(h.join(".postgresql/postgresql.key").as_path())
    );
    let c = ConnConfig::resolve(
        Some("host=h user=u sslkey=/k.pem"),
        &env_of(&[
            ("HOME", h.to_str().unwrap()),
            ("PGSSLCERT", "/env.crt"),
            ("PGSSLKEY", "/env.key"),
            ("PGTARGETSESSIONATTRS", "read-write"),
        ]),
    )
    .unwrap();
    assert_eq!(c.sslcert(), Some(Path::new("/env.crt")));
    assert_eq!(c.sslkey(), Some(Path::new("/k.pem")), "the string wins");
    assert_eq!(c.target_session_attrs(), TargetSessionAttrs::ReadWrite);
    let ce = c.child_env().unwrap();
    assert_eq!(ce.var("PGSSLCERT").unwrap(), "/env.crt");
    assert_eq!(ce.var("PGSSLKEY").unwrap(), "/k.pem");
    assert_eq!(ce.var("PGTARGETSESSIONATTRS").unwrap(), "read-write");
}
