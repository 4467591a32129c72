//! `cutter_pg::config` against real servers started with `cutter_pg::Cluster`: one TLS
//! server (a CA, a server certificate and client certificates made here with `openssl`;
//! `pg_hba.conf` with `hostssl … cert`, `scram-sha-256` and a `hostnossl … reject`) for
//! every sslmode, client certificates, channel binding, service files and
//! `sslrootcert=system`; and a read-only cluster beside the shared test cluster for
//! several hosts with `target_session_attrs`. Where libpq 15 refuses something, the same
//! settings are given to the real `psql` and both messages are compared.

use std::os::unix::fs::PermissionsExt as _;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::time::Duration;

use cutter_pg::config::{
    ChannelBinding, ConfigError, ConnConfig, Password, SslMode, SslRootCert, TargetSessionAttrs,
};
use cutter_pg::{Cluster, ClusterOptions};

fn env_of(pairs: &[(&str, &str)]) -> impl Fn(&str) -> Option<String> {
    let map: std::collections::HashMap<String, String> = pairs
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
    move |k: &str| map.get(k).cloned()
}

fn write_file(path: &Path, content: &str, mode: u32) {
    let _ = std::fs::remove_file(path);
    std::fs::write(path, content).unwrap();
    chmod(path, mode);
}

fn chmod(path: &Path, mode: u32) {
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode)).unwrap();
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

fn ssl_in_use(client: &mut postgres::Client) -> bool {
    client
        .query_one(
            "SELECT ssl FROM pg_stat_ssl WHERE pid = pg_backend_pid()",
            &[],
        )
        .unwrap()
        .get(0)
}

fn connect_err(c: &ConnConfig) -> ConfigError {
    match c.connect() {
        Ok(_) => panic!("connecting with {} should fail", c.redacted()),
        Err(e) => {
            // Shown with --nocapture, to review what operators will read.
            eprintln!("{e}\n");
            e
        }
    }
}

fn psql_bin() -> PathBuf {
    cutter_pg::pg_program("psql").unwrap_or_else(|e| panic!("{e} (cargo xtask test installs it)"))
}

/// The real `psql` (libpq 15) with only `env` (and `PATH`), running `sql`.
fn psql(env: &[(&str, &str)], conninfo: &str, sql: &str) -> Output {
    let mut cmd = Command::new(psql_bin());
    cmd.env_clear()
        .env("PATH", std::env::var_os("PATH").unwrap_or_default())
        .env("LC_ALL", "C")
        .args(["-X", "-tA", "-d", conninfo, "-c", sql]);
    for (k, v) in env {
        cmd.env(k, v);
    }
    cmd.output().unwrap()
}

/// `psql` connecting through a child environment only.
fn psql_child(c: &ConnConfig, home: &Path, sql: &str) -> Output {
    let ce = c.child_env().unwrap_or_else(|e| panic!("{e}"));
    let mut cmd = Command::new(psql_bin());
    cmd.env_clear()
        .env("PATH", std::env::var_os("PATH").unwrap_or_default())
        .env("HOME", home)
        .env("LC_ALL", "C")
        .env("PGPASSWORD", "inherited-wrong-password")
        .args(["-X", "-tA", "-c", sql]);
    ce.apply(&mut cmd);
    cmd.output().unwrap()
}

fn stdout_ok(what: &str, out: &Output) -> String {
    assert!(
        out.status.success(),
        "{what}: psql failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).trim().to_owned()
}

fn stderr_failed(what: &str, out: &Output) -> String {
    assert!(!out.status.success(), "{what}: psql should fail");
    String::from_utf8_lossy(&out.stderr).into_owned()
}

/// Asserts that cutter's error and libpq's (psql's stderr) both contain `sentence`.
fn same_as_libpq(ours: &ConfigError, psql: &Output, sentence: &str) {
    let theirs = stderr_failed(sentence, psql);
    assert!(
        theirs.contains(sentence),
        "libpq says something else than {sentence:?}: {theirs}"
    );
    assert!(
        ours.to_string().contains(sentence),
        "cutter should say {sentence:?} like libpq: {ours}"
    );
}

fn postgres_user_ids() -> Option<(u32, u32)> {
    let passwd = std::fs::read_to_string("/etc/passwd").ok()?;
    passwd.lines().find_map(|line| {
        let f: Vec<&str> = line.split(':').collect();
        (f.len() >= 4 && f[0] == "postgres")
            .then(|| Some((f[2].parse().ok()?, f[3].parse().ok()?)))?
    })
}

const ALICE: &str = "alice";
const ALICE_PW: &str = "Al1ce-S3cret-pw";

/// A TLS cluster: certificates and `pg_hba.conf` in `srv` (readable by the server),
/// the client's home directories in `client`.
struct TlsServer {
    cluster: Cluster,
    srv: tempfile::TempDir,
    client: tempfile::TempDir,
}

impl TlsServer {
    fn start() -> TlsServer {
        assert!(
            Command::new("openssl").arg("version").output().is_ok(),
            "openssl not found: install it (cargo xtask test does)"
        );
        let run_as = rustix::process::geteuid()
            .is_root()
            .then(|| postgres_user_ids().expect("no postgres user in /etc/passwd"));
        // As root the server runs as `postgres`: its files must not be below a private
        // directory of root's.
        let base = if run_as.is_some() {
            PathBuf::from("/tmp")
        } else {
            std::env::temp_dir()
        };
        let srv = tempfile::Builder::new()
            .prefix("cutter-pg-tls-")
            .tempdir_in(&base)
            .unwrap();
        let client = tempfile::Builder::new()
            .prefix("cutter-pg-client-")
            .tempdir()
            .unwrap();
        let openssl = |dir: &Path, args: &[&str]| {
            let out = Command::new("openssl")
                .args(args)
                .current_dir(dir)
                .output()
                .unwrap();
            assert!(
                out.status.success(),
                "openssl {args:?}: {}",
                String::from_utf8_lossy(&out.stderr)
            );
        };
        let d = srv.path();
        for (name, cn) in [("ca", "cutter test CA"), ("other_ca", "unrelated CA")] {
            openssl(
                d,
                &[
                    "req",
                    "-x509",
                    "-newkey",
                    "rsa:2048",
                    "-nodes",
                    "-days",
                    "2",
                    "-keyout",
                    &format!("{name}.key"),
                    "-out",
                    &format!("{name}.crt"),
                    "-subj",
                    &format!("/CN={cn}"),
                    "-addext",
                    "basicConstraints=critical,CA:TRUE",
                    "-addext",
                    "keyUsage=critical,keyCertSign,cRLSign",
                ],
            );
        }
        // The server's certificate (localhost, 127.0.0.1) and two client certificates
        // for alice: one from the CA the server trusts, one from an unrelated CA.
        std::fs::write(
            d.join("server.ext"),
            "subjectAltName=DNS:localhost,IP:127.0.0.1\nbasicConstraints=CA:FALSE\n\
             keyUsage=critical,digitalSignature,keyEncipherment\nextendedKeyUsage=serverAuth\n",
        )
        .unwrap();
        std::fs::write(
            d.join("client.ext"),
            "basicConstraints=CA:FALSE\nkeyUsage=critical,digitalSignature\n\
             extendedKeyUsage=clientAuth\n",
        )
        .unwrap();
        for (name, cn, ca, ext) in [
            ("server", "localhost", "ca", "server.ext"),
            ("alice", ALICE, "ca", "client.ext"),
            ("alice_other", ALICE, "other_ca", "client.ext"),
        ] {
            openssl(
                d,
                &[
                    "req",
                    "-newkey",
                    "rsa:2048",
                    "-nodes",
                    "-keyout",
                    &format!("{name}.key"),
                    "-out",
                    &format!("{name}.csr"),
                    "-subj",
                    &format!("/CN={cn}"),
                ],
            );
            openssl(
                d,
                &[
                    "x509",
                    "-req",
                    "-in",
                    &format!("{name}.csr"),
                    "-CA",
                    &format!("{ca}.crt"),
                    "-CAkey",
                    &format!("{ca}.key"),
                    "-CAcreateserial",
                    "-out",
                    &format!("{name}.crt"),
                    "-days",
                    "2",
                    "-extfile",
                    ext,
                ],
            );
        }
        chmod(&d.join("server.key"), 0o600);
        std::fs::write(
            d.join("pg_hba.conf"),
            "local all all trust\n\
             hostnossl sslonly all 127.0.0.1/32 reject\n\
             hostssl certdb all 127.0.0.1/32 cert\n\
             host all all 127.0.0.1/32 scram-sha-256\n",
        )
        .unwrap();
        if let Some((uid, gid)) = run_as {
            for e in std::iter::once(d.to_path_buf())
                .chain(std::fs::read_dir(d).unwrap().map(|e| e.unwrap().path()))
            {
                std::os::unix::fs::chown(&e, Some(uid), Some(gid)).unwrap();
            }
        }
        let file = |n: &str| d.join(n).display().to_string();
        let settings = [
            ("ssl", "on".to_owned()),
            ("ssl_cert_file", file("server.crt")),
            ("ssl_key_file", file("server.key")),
            ("ssl_ca_file", file("ca.crt")),
            ("hba_file", file("pg_hba.conf")),
        ];
        let cluster = Cluster::start_with(&ClusterOptions {
            settings: settings
                .into_iter()
                .map(|(k, v)| (k.to_owned(), v))
                .collect(),
        })
        .unwrap_or_else(|e| panic!("{e}"));
        for home in ["home", "home_cert"] {
            std::fs::create_dir_all(client.path().join(home).join(".postgresql")).unwrap();
        }
        TlsServer {
            cluster,
            srv,
            client,
        }
    }

    fn srv(&self, name: &str) -> PathBuf {
        self.srv.path().join(name)
    }

    /// A home directory of the client (no stray ~/.pgpass or ~/.postgresql of the machine).
    fn home(&self, name: &str) -> PathBuf {
        self.client.path().join(name)
    }

    fn resolve_in(&self, home: &str, s: &str, extra_env: &[(&str, &str)]) -> ConnConfig {
        let home = self.home(home);
        let mut env = vec![("HOME", home.to_str().unwrap())];
        env.extend_from_slice(extra_env);
        ConnConfig::resolve(Some(s), &env_of(&env)).unwrap_or_else(|e| panic!("{s}: {e}"))
    }

    fn resolve(&self, s: &str) -> ConnConfig {
        self.resolve_in("home", s, &[])
    }

    /// alice over TCP with her password and `extra`.
    fn tcp(&self, extra: &str) -> ConnConfig {
        self.resolve(&format!(
            "host=127.0.0.1 port={} user={ALICE} password={ALICE_PW} dbname=postgres {extra}",
            self.cluster.port()
        ))
    }
}

#[test]
fn tls_client_certificates_channel_binding_and_service_files() {
    let server = TlsServer::start();
    let port = server.cluster.port();
    let ca = server.srv("ca.crt");
    let other_ca = server.srv("other_ca.crt");
    let home = server.home("home");

    // Unix socket, trust: no TLS even though sslmode=require is asked for.
    let mut admin = server
        .resolve(&format!(
            "host={} port={port} user=postgres dbname=postgres sslmode=require",
            server.cluster.socket_dir().display()
        ))
        .connect()
        .unwrap_or_else(|e| panic!("{e}\n{}", server.cluster.log_tail(2000)));
    assert!(!ssl_in_use(&mut admin), "no TLS over unix sockets");
    for sql in [
        format!("CREATE ROLE {ALICE} LOGIN PASSWORD '{ALICE_PW}'"),
        "CREATE DATABASE sslonly".to_owned(),
        "CREATE DATABASE certdb".to_owned(),
    ] {
        admin.batch_execute(&sql).unwrap();
    }

    // --- sslmode ---------------------------------------------------------------------
    let mut c = server.tcp("sslmode=require").connect().unwrap();
    assert!(ssl_in_use(&mut c), "sslmode=require uses TLS");
    let mut c = server.tcp("").connect().unwrap();
    assert_eq!(server.tcp("").sslmode(), SslMode::Prefer);
    assert!(ssl_in_use(&mut c), "prefer uses TLS when offered");
    let mut c = server.tcp("sslmode=disable").connect().unwrap();
    assert!(!ssl_in_use(&mut c));
    // allow: plain first; a pg_hba rejection of plain text retries with TLS.
    let mut c = server.tcp("sslmode=allow").connect().unwrap();
    assert!(!ssl_in_use(&mut c), "allow starts without TLS");
    let mut c = server
        .tcp("sslmode=allow dbname=sslonly")
        .connect()
        .unwrap();
    assert!(ssl_in_use(&mut c), "allow retried with TLS");
    let e = connect_err(&server.tcp("sslmode=disable dbname=sslonly"));
    assert!(
        matches!(&e, ConfigError::Connect { sqlstate: Some(s), hint: Some(h), .. }
            if s == "28000" && h.contains("pg_hba.conf")),
        "{e}"
    );

    // verify-full against our CA, by name and by IP address (the certificate has both).
    let vf = server.resolve(&format!(
        "host=localhost port={port} user={ALICE} password={ALICE_PW} dbname=postgres \
         sslmode=verify-full sslrootcert={}",
        ca.display()
    ));
    let mut c = vf.connect().unwrap_or_else(|e| panic!("{e}"));
    assert!(ssl_in_use(&mut c));
    let mut c = server
        .tcp(&format!("sslmode=verify-full sslrootcert={}", ca.display()))
        .connect()
        .unwrap_or_else(|e| panic!("{e}"));
    assert!(ssl_in_use(&mut c));
    // The wrong root fails clearly; so does require with a root file (libpq verifies the
    // chain whenever a root file is configured).
    let e = connect_err(&vf.with_sslrootcert(Some(SslRootCert::File(other_ca.clone()))));
    let msg = e.to_string();
    assert!(msg.contains("not signed by a trusted CA"), "{msg}");
    assert!(msg.contains(&other_ca.display().to_string()), "{msg}");
    assert!(msg.contains(&format!("localhost:{port}")), "{msg}");
    let e = connect_err(
        &vf.with_sslmode(SslMode::Require)
            .with_sslrootcert(Some(SslRootCert::File(other_ca.clone()))),
    );
    assert!(e.to_string().contains("remove sslrootcert"), "{e}");
    // Host-name mismatch: verify-ca accepts it, verify-full does not.
    let mismatch = |mode: &str| {
        server.resolve(&format!(
            "host=wrong.example hostaddr=127.0.0.1 port={port} user={ALICE} password={ALICE_PW} \
             dbname=postgres sslmode={mode} sslrootcert={}",
            ca.display()
        ))
    };
    let mut c = mismatch("verify-ca")
        .connect()
        .unwrap_or_else(|e| panic!("{e}"));
    assert!(ssl_in_use(&mut c));
    let e = connect_err(&mismatch("verify-full"));
    assert!(
        e.to_string()
            .contains("not valid for the host name \"wrong.example\""),
        "{e}"
    );

    // --- verify-full / verify-ca without a root certificate: refused, as libpq does -----
    let no_root = format!(
        "host=localhost port={port} user={ALICE} password={ALICE_PW} dbname=postgres \
         sslmode=verify-full"
    );
    let expected = format!(
        "root certificate file \"{}\" does not exist",
        home.join(".postgresql/root.crt").display()
    );
    let e = connect_err(&server.resolve(&no_root));
    assert!(matches!(e, ConfigError::Tls { .. }), "{e:?}");
    same_as_libpq(
        &e,
        &psql(&[("HOME", home.to_str().unwrap())], &no_root, "SELECT 1"),
        &expected,
    );
    let e = connect_err(&server.resolve(&no_root.replace("verify-full", "verify-ca")));
    assert!(e.to_string().contains(&expected), "{e}");
    // ~/.postgresql/root.crt is the default root, for us and for the child.
    let root_crt = home.join(".postgresql/root.crt");
    std::fs::copy(&ca, &root_crt).unwrap();
    let with_default_root = server.resolve(&no_root);
    let mut c = with_default_root
        .connect()
        .unwrap_or_else(|e| panic!("{e}"));
    assert!(ssl_in_use(&mut c));
    let who = stdout_ok(
        "psql, default root.crt",
        &psql_child(&with_default_root, &home, "SELECT current_user"),
    );
    assert_eq!(who, ALICE);
    std::fs::remove_file(&root_crt).unwrap();

    // --- client certificates: pg_hba `hostssl certdb all … cert` -------------------------
    let cert_home = server.home("home_cert");
    let pgdir = cert_home.join(".postgresql");
    std::fs::copy(server.srv("alice.crt"), pgdir.join("postgresql.crt")).unwrap();
    std::fs::copy(server.srv("alice.key"), pgdir.join("postgresql.key")).unwrap();
    chmod(&pgdir.join("postgresql.key"), 0o600);
    let certdb = format!(
        "host=localhost port={port} user={ALICE} dbname=certdb sslmode=verify-full \
         sslrootcert={}",
        ca.display()
    );
    // The default ~/.postgresql/postgresql.crt and .key, no password anywhere.
    let by_cert = server.resolve_in("home_cert", &certdb, &[]);
    assert_eq!(
        by_cert.sslcert(),
        Some(pgdir.join("postgresql.crt").as_path())
    );
    let mut c = by_cert.connect().unwrap_or_else(|e| panic!("{e}"));
    let dn: String = c
        .query_one(
            "SELECT client_dn FROM pg_stat_ssl WHERE pid = pg_backend_pid()",
            &[],
        )
        .unwrap()
        .get(0);
    assert_eq!(dn, format!("/CN={ALICE}"));
    // The child gets the same certificate (PGSSLCERT/PGSSLKEY), even with another HOME.
    let who = stdout_ok(
        "psql with a client certificate",
        &psql_child(&by_cert, &home, "SELECT current_user"),
    );
    assert_eq!(who, ALICE);
    // Given explicitly (sslcert/sslkey, PGSSLCERT/PGSSLKEY) instead of the default.
    let explicit = server.resolve(&format!(
        "{certdb} sslcert={} sslkey={}",
        pgdir.join("postgresql.crt").display(),
        pgdir.join("postgresql.key").display()
    ));
    explicit.connect().unwrap_or_else(|e| panic!("{e}"));
    let from_env = server.resolve_in(
        "home",
        &certdb,
        &[
            ("PGSSLCERT", pgdir.join("postgresql.crt").to_str().unwrap()),
            ("PGSSLKEY", pgdir.join("postgresql.key").to_str().unwrap()),
        ],
    );
    from_env.connect().unwrap_or_else(|e| panic!("{e}"));
    // No certificate: the server refuses, and the hint says which setting to use.
    let e = connect_err(&server.resolve(&certdb));
    let msg = e.to_string();
    assert!(msg.contains("certificate"), "{msg}");
    assert!(msg.contains("sslcert"), "{msg}");
    // A certificate from a CA the server does not trust: refused in the handshake.
    let other = by_cert.with_client_cert(
        Some(server.srv("alice_other.crt")),
        Some(pgdir.join("other.key")),
    );
    std::fs::copy(server.srv("alice_other.key"), pgdir.join("other.key")).unwrap();
    chmod(&pgdir.join("other.key"), 0o600);
    connect_err(&other);
    // libpq itself (psql) with the same home directory.
    let libpq_certdb = || {
        psql(
            &[("HOME", cert_home.to_str().unwrap())],
            &certdb,
            "SELECT 1",
        )
    };
    // The key's permissions are checked as libpq checks them, before connecting.
    let key = pgdir.join("postgresql.key");
    chmod(&key, 0o644);
    let e = connect_err(&by_cert);
    assert!(matches!(e, ConfigError::Tls { .. }), "{e:?}");
    same_as_libpq(
        &e,
        &libpq_certdb(),
        &format!(
            "private key file \"{}\" has group or world access; file must have permissions \
             u=rw (0600) or less if owned by the current user, or permissions u=rw,g=r (0640) \
             or less if owned by root",
            key.display()
        ),
    );
    // libpq accepts 0640 for a key owned by root (system-wide keys), and so do we.
    chmod(&key, 0o640);
    if rustix::process::geteuid().is_root() {
        by_cert.connect().unwrap_or_else(|e| panic!("{e}"));
        stdout_ok("psql, root-owned 0640 key", &libpq_certdb());
    } else {
        connect_err(&by_cert);
    }
    chmod(&key, 0o600);
    // A certificate without its key.
    std::fs::rename(&key, pgdir.join("moved.key")).unwrap();
    let e = connect_err(&by_cert);
    same_as_libpq(
        &e,
        &libpq_certdb(),
        &format!(
            "certificate present, but not private key file \"{}\"",
            key.display()
        ),
    );
    std::fs::rename(pgdir.join("moved.key"), &key).unwrap();
    // An encrypted key: refused with what to do (sslpassword is not supported).
    let enc = pgdir.join("enc.key");
    let out = Command::new("openssl")
        .args(["pkey", "-aes256", "-passout", "pass:pw", "-in"])
        .arg(&key)
        .arg("-out")
        .arg(&enc)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    chmod(&enc, 0o600);
    let e =
        connect_err(&by_cert.with_client_cert(by_cert.sslcert().map(Path::to_path_buf), Some(enc)));
    assert!(e.to_string().contains("is encrypted"), "{e}");
    assert!(e.to_string().contains("sslpassword"), "{e}");

    // --- channel_binding -----------------------------------------------------------------
    // require over TLS with scram-sha-256: SCRAM-SHA-256-PLUS, bound to the connection.
    let bound = server.tcp("sslmode=require channel_binding=require");
    assert_eq!(bound.channel_binding(), ChannelBinding::Require);
    let mut c = bound.connect().unwrap_or_else(|e| panic!("{e}"));
    assert!(ssl_in_use(&mut c));
    let who = stdout_ok(
        "psql with channel_binding=require",
        &psql_child(&bound, &home, "SELECT current_user"),
    );
    assert_eq!(who, ALICE);
    // Without TLS the server can only offer SCRAM-SHA-256: refused, before the password
    // is used, with libpq's words.
    let plain = server.tcp("sslmode=disable channel_binding=require");
    let e = connect_err(&plain);
    same_as_libpq(
        &e,
        &psql(
            &[("HOME", home.to_str().unwrap()), ("PGPASSWORD", ALICE_PW)],
            &format!(
                "host=127.0.0.1 port={port} user={ALICE} dbname=postgres sslmode=disable \
                 channel_binding=require"
            ),
            "SELECT 1",
        ),
        "channel binding required, but SSL not in use",
    );
    // A server that authenticates without SASL (here: by certificate) is refused too.
    let e = connect_err(&by_cert.with_channel_binding(ChannelBinding::Require));
    assert!(e.to_string().contains("channel binding"), "{e}");
    // disable still connects over TLS (plain SCRAM-SHA-256).
    server
        .tcp("sslmode=require channel_binding=disable")
        .connect()
        .unwrap_or_else(|e| panic!("{e}"));

    // --- service files ----------------------------------------------------------------------
    let services = server.home("services.conf");
    std::fs::write(
        &services,
        format!(
            "# test services\n[other]\nhost=nowhere.invalid\n\n[tls]\nhost=localhost\n\
             port={port}\nuser={ALICE}\ndbname=postgres\nsslmode=verify-full\nsslrootcert={}\n\
             application_name=from-service\n[after]\nport=1\n",
            ca.display()
        ),
    )
    .unwrap();
    write_file(
        &home.join(".pgpass"),
        &format!("localhost:{port}:*:{ALICE}:{ALICE_PW}\n"),
        0o600,
    );
    let svc_env = [("PGSERVICEFILE", services.to_str().unwrap())];
    // service= in the string, and PGSERVICE; the string's own settings win.
    let svc = server.resolve_in("home", "service=tls", &svc_env);
    assert_eq!(svc.sslmode(), SslMode::VerifyFull);
    assert_eq!(svc.application_name(), Some("from-service"));
    let mut c = svc.connect().unwrap_or_else(|e| panic!("{e}"));
    let app: String = c
        .query_one("SELECT current_setting('application_name')", &[])
        .unwrap()
        .get(0);
    assert_eq!(app, "from-service");
    let mut with_env = svc_env.to_vec();
    with_env.push(("PGSERVICE", "tls"));
    let svc2 = server.resolve_in("home", "application_name=mine", &with_env);
    assert_eq!(svc2.application_name(), Some("mine"));
    assert_eq!(svc2.port(), port);
    // The child connects exactly so, without the service file.
    let out = psql_child(&svc, &home, "SELECT current_setting('application_name')");
    assert_eq!(stdout_ok("psql from a service", &out), "from-service");
    // libpq 15 reads the same file the same way.
    let out = psql(
        &[
            ("HOME", home.to_str().unwrap()),
            ("PGSERVICEFILE", services.to_str().unwrap()),
        ],
        "service=tls",
        "SELECT current_setting('application_name')",
    );
    assert_eq!(stdout_ok("psql service=tls", &out), "from-service");
    // An unknown service, and a syntax error: libpq's messages.
    let e = ConnConfig::resolve(
        Some("service=nope"),
        &env_of(&[
            ("HOME", home.to_str().unwrap()),
            ("PGSERVICEFILE", services.to_str().unwrap()),
            ("PGSYSCONFDIR", server.client.path().to_str().unwrap()),
        ]),
    )
    .unwrap_err();
    same_as_libpq(
        &e,
        &psql(
            &[
                ("HOME", home.to_str().unwrap()),
                ("PGSERVICEFILE", services.to_str().unwrap()),
                ("PGSYSCONFDIR", server.client.path().to_str().unwrap()),
            ],
            "service=nope",
            "SELECT 1",
        ),
        "definition of service \"nope\" not found",
    );
    let bad = server.home("bad_services.conf");
    std::fs::write(
        &bad,
        "[tls]\nhost=localhost\nthis line has no equals sign\n",
    )
    .unwrap();
    let bad_env = [
        ("HOME", home.to_str().unwrap()),
        ("PGSERVICEFILE", bad.to_str().unwrap()),
    ];
    let e = ConnConfig::resolve(Some("service=tls"), &env_of(&bad_env)).unwrap_err();
    same_as_libpq(
        &e,
        &psql(&bad_env, "service=tls", "SELECT 1"),
        &format!("syntax error in service file \"{}\", line 3", bad.display()),
    );
    std::fs::remove_file(home.join(".pgpass")).unwrap();

    // --- sslrootcert=system: the operating system's store -----------------------------------
    let system = format!(
        "host=localhost port={port} user={ALICE} password={ALICE_PW} dbname=postgres \
         sslrootcert=system"
    );
    let sys = server.resolve(&system);
    assert_eq!(
        sys.sslmode(),
        SslMode::VerifyFull,
        "system implies verify-full"
    );
    // Our test CA is not in the system store.
    let e = connect_err(&sys);
    assert!(
        e.to_string().contains("not signed by a trusted CA")
            || e.to_string().contains("no usable certificate"),
        "{e}"
    );
    assert!(e.to_string().contains("sslrootcert=system"), "{e}");
    // The store is what OpenSSL reads: SSL_CERT_FILE replaces it. This test runs alone in
    // its process (nextest), so changing the process environment is safe here.
    std::env::set_var("SSL_CERT_FILE", &ca);
    let mut c = sys.connect().unwrap_or_else(|e| panic!("{e}"));
    assert!(ssl_in_use(&mut c));
    let ce = sys.child_env().unwrap();
    assert_eq!(ce.var("PGSSLROOTCERT"), Some(ca.as_os_str()));
    assert_eq!(ce.var("PGSSLMODE").unwrap(), "verify-full");
    drop(ce);
    let who = stdout_ok(
        "psql with the system bundle",
        &psql_child(&sys, &home, "SELECT current_user"),
    );
    assert_eq!(who, ALICE);
    std::env::remove_var("SSL_CERT_FILE");

    // Wrong password: names user and host, never the password.
    let wrong = "Wr0ng-Passw0rd-123";
    let e = connect_err(
        &server
            .tcp("sslmode=require")
            .with_user(ALICE, Some(Password::new(wrong))),
    );
    assert!(
        e.to_string().contains("password authentication failed"),
        "{e}"
    );
    assert!(!e.to_string().contains(wrong), "{e}");
    assert!(!format!("{e:?}").contains(wrong));

    // Nothing listening: names host:port.
    let dead = free_port();
    let e = connect_err(&server.tcp("sslmode=disable").with_port(dead));
    assert!(e.to_string().contains(&format!("127.0.0.1:{dead}")), "{e}");
    assert!(e.to_string().contains("nothing accepts connections"), "{e}");

    // Password from a pgpass file, and a 0644 one being ignored (and said so).
    let pgpass = home.join("pgpass");
    write_file(
        &pgpass,
        &format!("127.0.0.1:{port}:*:{ALICE}:{ALICE_PW}\n"),
        0o600,
    );
    let nopw = server.resolve(&format!(
        "host=127.0.0.1 port={port} user={ALICE} dbname=postgres passfile={}",
        pgpass.display()
    ));
    nopw.connect().unwrap_or_else(|e| panic!("{e}"));
    chmod(&pgpass, 0o644);
    let e = connect_err(&nopw);
    let msg = e.to_string();
    assert!(
        msg.contains("asks for a password but none was found"),
        "{msg}"
    );
    assert!(msg.contains("has group or world access"), "{msg}");
    assert!(
        msg.contains(&format!(
            "add the line 127.0.0.1:{port}:postgres:alice:PASSWORD"
        )),
        "{msg}"
    );

    // statement_timeout, lock_timeout and application_name reach the session.
    let timed = server
        .tcp("options='-c work_mem=5MB'")
        .with_statement_timeout(Some(Duration::from_millis(1500)))
        .with_lock_timeout(Some(Duration::from_secs(2)))
        .with_application_name("cutter-config-test");
    let mut c = timed.connect().unwrap();
    let show = |c: &mut postgres::Client, what: &str| -> String {
        c.query_one(&format!("SHOW {what}"), &[]).unwrap().get(0)
    };
    assert_eq!(show(&mut c, "statement_timeout"), "1500ms");
    assert_eq!(show(&mut c, "lock_timeout"), "2s");
    assert_eq!(show(&mut c, "work_mem"), "5MB");
    assert_eq!(show(&mut c, "application_name"), "cutter-config-test");
    let mut c = timed
        .with_statement_timeout(Some(Duration::from_millis(100)))
        .connect()
        .unwrap();
    let err = c.batch_execute("SELECT pg_sleep(2)").unwrap_err();
    assert_eq!(err.code(), Some(&postgres::error::SqlState::QUERY_CANCELED));
    // …and the child's session, through PGOPTIONS.
    let out = psql_child(
        &server
            .tcp("sslmode=require")
            .with_statement_timeout(Some(Duration::from_secs(7))),
        &home,
        "SELECT current_user || ' ' || ssl::text || ' ' || current_setting('statement_timeout') \
         FROM pg_stat_ssl WHERE pid = pg_backend_pid()",
    );
    assert_eq!(stdout_ok("psql child", &out), "alice true 7s");
}

#[test]
fn several_hosts_with_target_session_attrs() {
    // The shared test cluster accepts writes; a second throwaway cluster is read-only
    // (default_transaction_read_only=on: a stand-in for a hot standby, which would need a
    // base backup and streaming replication).
    let rw = cutter_pg::testing::shared_cluster().unwrap_or_else(|e| panic!("{e}"));
    let ro = Cluster::start_with(&ClusterOptions {
        settings: vec![("default_transaction_read_only".into(), "on".into())],
    })
    .unwrap_or_else(|e| panic!("{e}"));
    let dead = free_port();
    let home = tempfile::tempdir().unwrap();
    // Each server has its own superuser password: one pgpass line per host.
    let pgpass = home.path().join(".pgpass");
    write_file(
        &pgpass,
        &format!(
            "127.0.0.1:{}:*:{}:{}\n127.0.0.1:{}:*:postgres:{}\n",
            rw.port,
            rw.superuser,
            rw.superuser_password,
            ro.port(),
            ro.superuser_password().expose_secret()
        ),
        0o600,
    );
    assert_eq!(rw.superuser, "postgres");
    let env = [("HOME", home.path().to_str().unwrap())];
    let resolve = |s: &str| {
        ConnConfig::resolve(Some(s), &env_of(&env)).unwrap_or_else(|e| panic!("{s}: {e}"))
    };
    let port_of = |c: &ConnConfig| -> String {
        let mut client = c
            .connect()
            .unwrap_or_else(|e| panic!("{}: {e}", c.redacted()));
        client
            .query_one("SELECT current_setting('port')", &[])
            .unwrap()
            .get(0)
    };
    let (ro_port, rw_port) = (ro.port().to_string(), rw.port.to_string());
    let hosts = |tsa: &str| {
        resolve(&format!(
            "host=127.0.0.1,127.0.0.1,127.0.0.1 port={dead},{ro_port},{rw_port} user=postgres \
             dbname=postgres sslmode=disable connect_timeout=5 target_session_attrs={tsa}"
        ))
    };
    // any: the first server that answers (the dead port is skipped).
    assert_eq!(hosts("any").endpoints().len(), 3);
    assert_eq!(port_of(&hosts("any")), ro_port);
    // read-write skips the read-only server; read-only picks it.
    assert_eq!(port_of(&hosts("read-write")), rw_port);
    assert_eq!(port_of(&hosts("read-only")), ro_port);
    // Neither is in recovery: primary takes the first, standby finds none.
    assert_eq!(port_of(&hosts("primary")), ro_port);
    let e = connect_err(&hosts("standby"));
    assert!(
        e.to_string().contains("server is not in hot standby mode"),
        "{e}"
    );
    assert!(e.to_string().contains("any of 3 hosts"), "{e}");
    // prefer-standby falls back to any server.
    assert_eq!(port_of(&hosts("prefer-standby")), ro_port);
    // The URL form, with a port per host.
    let url = resolve(&format!(
        "postgresql://postgres@127.0.0.1:{ro_port},127.0.0.1:{rw_port}/postgres?sslmode=disable\
         &target_session_attrs=read-write"
    ));
    assert_eq!(url.target_session_attrs(), TargetSessionAttrs::ReadWrite);
    assert_eq!(port_of(&url), rw_port);
    // Only the read-only server: refused with libpq's words.
    let only_ro = format!(
        "host=127.0.0.1 port={ro_port} user=postgres dbname=postgres sslmode=disable \
         target_session_attrs=read-write"
    );
    let e = connect_err(&resolve(&only_ro));
    same_as_libpq(
        &e,
        &psql(
            &[("HOME", home.path().to_str().unwrap())],
            &only_ro,
            "SELECT 1",
        ),
        "session is read-only",
    );
    // The child (pg_dump, pg_restore, psql) gets the host list, the attribute and one
    // password line per host, and lands on the same server; so does libpq on its own.
    let rw_cfg = hosts("read-write");
    let ce = rw_cfg.child_env().unwrap();
    assert_eq!(
        ce.var("PGPORT").unwrap(),
        format!("{dead},{ro_port},{rw_port}").as_str()
    );
    assert_eq!(ce.var("PGTARGETSESSIONATTRS").unwrap(), "read-write");
    let lines = std::fs::read_to_string(ce.passfile()).unwrap();
    assert_eq!(
        lines.lines().count(),
        2,
        "one line per host with a password"
    );
    drop(ce);
    let sql = "SELECT current_setting('port')";
    let out = psql_child(&rw_cfg, home.path(), sql);
    assert_eq!(stdout_ok("psql child read-write", &out), rw_port);
    let out = psql_child(&hosts("any"), home.path(), sql);
    assert_eq!(stdout_ok("psql child any", &out), ro_port);
    let out = psql(
        &[("HOME", home.path().to_str().unwrap())],
        &format!(
            "host=127.0.0.1,127.0.0.1 port={ro_port},{rw_port} user=postgres dbname=postgres \
             sslmode=disable target_session_attrs=read-write"
        ),
        sql,
    );
    assert_eq!(stdout_ok("libpq read-write", &out), rw_port);
}
