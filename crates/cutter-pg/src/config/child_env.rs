//! The environment of a child libpq program (`pg_dump`, `pg_restore`, `psql`): the `PG*`
//! variables that make it connect exactly like a [`ConnConfig`], and a private password file.
//! Invariant: the password never goes into `PGPASSWORD` or a command line, and inherited
//! `PG*` connection variables are removed.

use std::ffi::{OsStr, OsString};
use std::fmt;
use std::io::Write as _;
use std::os::unix::fs::{OpenOptionsExt as _, PermissionsExt as _};
use std::path::{Path, PathBuf};

use super::passfile::escape_pgpass;
use super::{ConfigError, ConnConfig, Endpoint, Host, Password, SslRootCert};

/// libpq's connection variables: a child libpq program must not inherit them from
/// cutter's own environment, because they would make it connect somewhere else or with
/// other credentials than [`ConnConfig::child_env`] describes.
pub const LIBPQ_CONNECTION_VARS: &[&str] = &[
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

impl ConnConfig {
    /// The environment for a child libpq program (`pg_dump`, `pg_restore`,
    /// `psql`) that must connect exactly like this configuration: `PGHOST`,
    /// `PGHOSTADDR`, `PGPORT` (lists for several hosts), `PGUSER`, `PGDATABASE`,
    /// `PGSSLMODE`, `PGSSLROOTCERT` (the system CA bundle for `sslrootcert=system`),
    /// `PGSSLCERT`, `PGSSLKEY`, `PGCHANNELBINDING`, `PGTARGETSESSIONATTRS`,
    /// `PGAPPNAME`, `PGCONNECT_TIMEOUT`, `PGOPTIONS` (including
    /// statement/lock timeouts), and `PGPASSFILE` pointing at a private
    /// temporary password file (directory 0700, file 0600, removed when the
    /// returned [`ChildEnv`] drops) holding the password found by
    /// [`ConnConfig::lookup_password`] (empty if none). The password is never
    /// put in `PGPASSWORD` or on a command line; inherited `PG*` connection
    /// variables (including `PGPASSWORD`) are removed by [`ChildEnv::apply`].
    pub fn child_env(&self) -> Result<ChildEnv, ConfigError> {
        let io_err =
            |detail: String| move |io: std::io::Error| ConfigError::ChildEnv { detail, io };
        let line = self.child_pgpass()?;
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
        // Lists, one entry per host (libpq joins them with commas); an empty entry is
        // the default.
        let list = |f: &dyn Fn(&Endpoint) -> OsString| -> OsString {
            let mut out = OsString::new();
            for (i, e) in self.endpoints.iter().enumerate() {
                if i > 0 {
                    out.push(",");
                }
                out.push(f(e));
            }
            out
        };
        if self.endpoints.iter().any(|e| e.host.is_some()) {
            vars.push((
                "PGHOST",
                list(&|e| match &e.host {
                    Some(Host::Tcp(h)) => h.into(),
                    Some(Host::Unix(d)) => abs(d),
                    None => OsString::new(),
                }),
            ));
        }
        if self.endpoints.iter().any(|e| e.hostaddr.is_some()) {
            vars.push((
                "PGHOSTADDR",
                list(&|e| e.hostaddr.map(|a| a.to_string().into()).unwrap_or_default()),
            ));
        }
        vars.push(("PGPORT", list(&|e| e.port.to_string().into())));
        vars.push(("PGUSER", self.user.clone().into()));
        vars.push(("PGDATABASE", self.dbname.clone().into()));
        vars.push(("PGSSLMODE", self.sslmode.as_str().into()));
        match &self.sslrootcert {
            Some(SslRootCert::File(p)) => vars.push(("PGSSLROOTCERT", abs(p))),
            // libpq 15 reads PGSSLROOTCERT as a file name: give it the system bundle.
            Some(SslRootCert::System) => vars.push((
                "PGSSLROOTCERT",
                abs(&system_ca_bundle().map_err(|problem| ConfigError::Tls {
                    sslmode: self.sslmode,
                    problem,
                })?),
            )),
            None => {}
        }
        if let Some(c) = &self.sslcert {
            vars.push(("PGSSLCERT", abs(c)));
        }
        if let Some(k) = &self.sslkey {
            vars.push(("PGSSLKEY", abs(k)));
        }
        vars.push(("PGCHANNELBINDING", self.channel_binding.as_str().into()));
        vars.push((
            "PGTARGETSESSIONATTRS",
            self.target_session_attrs.as_str().into(),
        ));
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
        let unset = LIBPQ_CONNECTION_VARS
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

impl ConnConfig {
    /// The private password file's text: `*:*:*:*:pw` when every host has the same
    /// password (or there is one host), else one `host:port:*:*:pw` line per host, as the
    /// child's libpq will look them up. `None` if there is no password at all.
    fn child_pgpass(&self) -> Result<Option<Password>, ConfigError> {
        let mut lines: Vec<(String, Password)> = Vec::new();
        for i in 0..self.endpoints.len() {
            let one = self.single(i);
            if let Some(pw) = one.lookup_password().password {
                if pw.expose_secret().contains(['\n', '\r']) {
                    return Err(ConfigError::UnrepresentablePassword);
                }
                let field = format!("{}:{}", escape_pgpass(&one.pgpass_host()), one.port());
                lines.push((field, pw));
            }
        }
        let Some((_, first)) = lines.first() else {
            return Ok(None);
        };
        if lines.len() == self.endpoints.len() && lines.iter().all(|(_, pw)| pw == first) {
            return Ok(Some(Password(format!(
                "*:*:*:*:{}\n",
                escape_pgpass(first.expose_secret())
            ))));
        }
        let mut text = String::new();
        for (field, pw) in &lines {
            text.push_str(&format!(
                "{field}:*:*:{}\n",
                escape_pgpass(pw.expose_secret())
            ));
        }
        Ok(Some(Password(text)))
    }
}

/// The system CA bundle a child libpq program (15, which has no `sslrootcert=system`)
/// should read for `sslrootcert=system`: `SSL_CERT_FILE` if set, else the file OpenSSL
/// uses on this system (`openssl-probe`, the lookup `rustls-native-certs` also makes).
pub fn system_ca_bundle() -> Result<PathBuf, String> {
    openssl_probe::probe().cert_file.ok_or_else(|| {
        "sslrootcert=system: no system CA bundle file was found for the child programs \
         (pg_dump, pg_restore), which read PGSSLROOTCERT as a file; install the ca-certificates \
         package or set SSL_CERT_FILE"
            .to_owned()
    })
}

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
