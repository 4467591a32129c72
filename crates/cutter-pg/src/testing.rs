//! Test support (cargo feature `testing`): throwaway databases with the reference schema
//! and the baseline, cheap enough for one per test.
//!
//! One cluster serves a whole test process: the first [`TestDb::new`] starts a
//! [`TestCluster`] (a [`Cluster`] plus a template database `cutter_template` holding the
//! reference schema and the baseline, and login passwords for `cutter_exec` and
//! `cutter_verify`); every `TestDb` is `CREATE DATABASE … TEMPLATE cutter_template` and is
//! dropped with the test. The cluster is stopped and its directory removed when the
//! process exits (an exit hook; and if the process dies without running it, the server
//! gets SIGQUIT through its parent-death signal).
//!
//! To share one cluster between many test processes (nextest runs one process per test),
//! start a [`TestCluster`] first and export [`TestCluster::env`]: the variable
//! [`CLUSTER_ENV`] (`CUTTER_TEST_CLUSTER`) then holds the path of a JSON file (mode 0600,
//! inside the cluster's private directory) with its coordinates, and every `TestDb`
//! uses that cluster instead of starting its own.

use std::fmt;
use std::fs;
use std::io::Write as _;
use std::os::unix::fs::OpenOptionsExt;
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Mutex, OnceLock};

use serde::{Deserialize, Serialize};

use cutter_core::{LiveAuthorization, RunId, Sha256Digest, SystemIdentifier, TableName};

use crate::cluster::{connection_config, create_database, drop_database, random_secret, Cluster};
use crate::config::{ConnConfig, Password};
use crate::error::{Error, PgContext, Result};
use crate::ident::{quote_ident, quote_table};
use crate::schema::{self, EXEC_ROLE, VERIFY_ROLE};
use crate::target::Target;

/// The environment variable naming the coordinates file of a shared test cluster.
pub const CLUSTER_ENV: &str = "CUTTER_TEST_CLUSTER";

/// The template database with the reference schema and the baseline.
pub const TEMPLATE_DB: &str = "cutter_template";

/// How to reach a test cluster. Written to the coordinates file; holds the throwaway
/// cluster's generated passwords, so it never appears in Debug output.
#[derive(Clone, Serialize, Deserialize)]
pub struct Coordinates {
    /// `127.0.0.1`.
    pub host: String,
    /// TCP port.
    pub port: u16,
    /// Superuser name.
    pub superuser: String,
    /// Superuser password.
    pub superuser_password: String,
    /// Password of `cutter_exec`.
    pub exec_password: String,
    /// Password of `cutter_verify`.
    pub verify_password: String,
    /// The template database.
    pub template: String,
    /// The cluster's system identifier.
    pub system_identifier: u64,
}

impl fmt::Debug for Coordinates {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Coordinates")
            .field("host", &self.host)
            .field("port", &self.port)
            .field("template", &self.template)
            .finish_non_exhaustive()
    }
}

impl Coordinates {
    /// `.pgpass` lines for the writer and the read-only role on `dbname`, reached at
    /// `port` (the cluster's own, or a proxy's in front of it).
    pub fn pgpass_lines(&self, dbname: &str, port: u16) -> String {
        format!(
            "{h}:{port}:{dbname}:{EXEC_ROLE}:{e}\n{h}:{port}:{dbname}:{VERIFY_ROLE}:{v}\n",
            h = self.host,
            e = self.exec_password,
            v = self.verify_password
        )
    }

    /// Connection configuration for `user` to `dbname` (password from the coordinates).
    pub fn config(&self, dbname: &str, user: &str) -> Result<ConnConfig> {
        let password = if user == self.superuser {
            Some(&self.superuser_password)
        } else if user == EXEC_ROLE {
            Some(&self.exec_password)
        } else if user == VERIFY_ROLE {
            Some(&self.verify_password)
        } else {
            None
        };
        connection_config(
            &self.host,
            self.port,
            dbname,
            user,
            password.map(|p| Password::new(p.clone())),
        )
    }

    fn admin(&self) -> Result<postgres::Client> {
        Ok(self.config("postgres", &self.superuser)?.connect()?)
    }
}

/// A throwaway cluster prepared for tests: roles with passwords, and the template
/// database with the reference schema and the baseline.
#[derive(Debug)]
pub struct TestCluster {
    cluster: Cluster,
    coordinates: Coordinates,
    file: PathBuf,
}

impl TestCluster {
    /// Starts a cluster and prepares it.
    pub fn start() -> Result<TestCluster> {
        let cluster = Cluster::start()?;
        let exec_password = random_secret()?;
        let verify_password = random_secret()?;
        {
            let mut c = cluster.connect("postgres")?;
            create_database(&mut c, TEMPLATE_DB, Some("template0"))?;
            let mut t = cluster.connect(TEMPLATE_DB)?;
            schema::install_reference(&mut t)?;
            schema::install_baseline(&mut t)?;
            drop(t);
            schema::set_login_password(&mut c, EXEC_ROLE, &Password::new(exec_password.clone()))?;
            schema::set_login_password(
                &mut c,
                VERIFY_ROLE,
                &Password::new(verify_password.clone()),
            )?;
            c.batch_execute(&format!(
                "ALTER DATABASE {} WITH IS_TEMPLATE true ALLOW_CONNECTIONS false",
                quote_ident(TEMPLATE_DB)
            ))
            .doing("marking the template database")?;
        }
        let coordinates = Coordinates {
            host: cluster.host().into(),
            port: cluster.port(),
            superuser: cluster.superuser().into(),
            superuser_password: cluster.superuser_password().expose_secret().into(),
            exec_password,
            verify_password,
            template: TEMPLATE_DB.into(),
            system_identifier: cluster.system_identifier()?.get(),
        };
        let file = cluster.dir().join("coordinates.json");
        let json = serde_json::to_vec_pretty(&coordinates).map_err(|e| Error::Install {
            what: "test cluster coordinates".into(),
            reason: e.to_string(),
        })?;
        fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .open(&file)
            .and_then(|mut f| f.write_all(&json))
            .map_err(|e| Error::io("writing", &file, e))?;
        Ok(TestCluster {
            cluster,
            coordinates,
            file,
        })
    }

    /// The variables that make test processes use this cluster:
    /// `[(CUTTER_TEST_CLUSTER, <coordinates file>)]`.
    pub fn env(&self) -> Vec<(String, String)> {
        vec![(CLUSTER_ENV.to_string(), self.file.display().to_string())]
    }

    /// How to reach it.
    pub fn coordinates(&self) -> &Coordinates {
        &self.coordinates
    }

    /// The cluster.
    pub fn cluster(&self) -> &Cluster {
        &self.cluster
    }

    /// Stops the cluster and removes its directory.
    pub fn stop(self) -> Result<()> {
        self.cluster.stop()
    }
}

static OWNED: Mutex<Option<TestCluster>> = Mutex::new(None);

extern "C" fn stop_owned_cluster() {
    let _ = std::panic::catch_unwind(|| {
        let owned = match OWNED.lock() {
            Ok(mut g) => g.take(),
            Err(poisoned) => poisoned.into_inner().take(),
        };
        drop(owned);
    });
}

/// The coordinates of this process's test cluster: the one `CUTTER_TEST_CLUSTER` names,
/// or one started now (once) and stopped at exit.
pub fn shared_cluster() -> Result<&'static Coordinates> {
    static SHARED: OnceLock<std::result::Result<Coordinates, String>> = OnceLock::new();
    SHARED
        .get_or_init(|| {
            if let Some(path) = std::env::var_os(CLUSTER_ENV) {
                let text = fs::read(&path).map_err(|e| {
                    format!(
                        "{CLUSTER_ENV}={}: cannot read: {e}",
                        PathBuf::from(&path).display()
                    )
                })?;
                return serde_json::from_slice(&text).map_err(|e| {
                    format!(
                        "{CLUSTER_ENV}={}: not a coordinates file: {e}",
                        PathBuf::from(&path).display()
                    )
                });
            }
            let tc = TestCluster::start().map_err(|e| e.to_string())?;
            let coordinates = tc.coordinates.clone();
            match OWNED.lock() {
                Ok(mut g) => *g = Some(tc),
                Err(poisoned) => *poisoned.into_inner() = Some(tc),
            }
            if !crate::sys::at_exit(stop_owned_cluster) {
                return Err("cannot register the exit hook that stops the test cluster".into());
            }
            Ok(coordinates)
        })
        .as_ref()
        .map_err(|e| Error::Program {
            program: "test cluster".into(),
            problem: e.clone(),
            output: String::new(),
        })
}

/// A fresh database on the shared test cluster, dropped with the value.
pub struct TestDb {
    name: String,
    coordinates: &'static Coordinates,
}

impl fmt::Debug for TestDb {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TestDb")
            .field("name", &self.name)
            .finish_non_exhaustive()
    }
}

fn unique_name(kind: &str) -> String {
    static N: AtomicU64 = AtomicU64::new(0);
    let n = N.fetch_add(1, Ordering::Relaxed);
    let salt = random_secret().unwrap_or_default();
    format!(
        "{kind}_{}_{n}_{}",
        std::process::id(),
        &salt[..6.min(salt.len())]
    )
}

impl TestDb {
    /// A copy of the template: reference schema and baseline (158/165/60). Panics if
    /// the cluster cannot be reached: a test that needs PostgreSQL never silently skips.
    #[allow(clippy::new_without_default)] // creating a database is not a default value
    pub fn new() -> TestDb {
        Self::try_new().unwrap_or_else(|e| panic!("cannot create a test database: {e}"))
    }

    /// Like [`TestDb::new`], returning the error.
    pub fn try_new() -> Result<TestDb> {
        let coordinates = shared_cluster()?;
        Self::create(coordinates, &unique_name("t"), &coordinates.template)
    }

    /// A database without the cutter schema (a copy of `template0`).
    pub fn empty() -> TestDb {
        shared_cluster()
            .and_then(|c| Self::create(c, &unique_name("e"), "template0"))
            .unwrap_or_else(|e| panic!("cannot create a test database: {e}"))
    }

    /// A copy of the template under a caller-chosen name (quoted as an identifier, so
    /// any text is accepted).
    pub fn named(name: &str) -> TestDb {
        shared_cluster()
            .and_then(|c| Self::create(c, name, &c.template))
            .unwrap_or_else(|e| panic!("cannot create test database {name:?}: {e}"))
    }

    fn create(coordinates: &'static Coordinates, name: &str, template: &str) -> Result<TestDb> {
        let mut c = coordinates.admin()?;
        create_database(&mut c, name, Some(template))?;
        Ok(TestDb {
            name: name.to_string(),
            coordinates,
        })
    }

    /// The database name.
    pub fn name(&self) -> &str {
        &self.name
    }
    /// The cluster's coordinates.
    pub fn coordinates(&self) -> &'static Coordinates {
        self.coordinates
    }
    /// Configuration for the superuser (the schema owner).
    pub fn admin_config(&self) -> ConnConfig {
        self.config_for(&self.coordinates.superuser)
    }
    /// Configuration for `cutter_exec`.
    pub fn exec_config(&self) -> ConnConfig {
        self.config_for(EXEC_ROLE)
    }
    /// Configuration for `cutter_verify`.
    pub fn verify_config(&self) -> ConnConfig {
        self.config_for(VERIFY_ROLE)
    }
    /// Configuration for any `user` (password known for the three roles above).
    pub fn config_for(&self, user: &str) -> ConnConfig {
        self.coordinates
            .config(&self.name, user)
            .unwrap_or_else(|e| panic!("connection configuration for {user}: {e}"))
    }
    /// A superuser connection.
    pub fn admin(&self) -> postgres::Client {
        self.admin_config()
            .connect()
            .unwrap_or_else(|e| panic!("connecting to {} as superuser: {e}", self.name))
    }
    /// The target as `cutter_exec`, as a run connects in production.
    pub fn target(&self) -> Target {
        Target::connect(&self.exec_config())
            .unwrap_or_else(|e| panic!("connecting to {} as cutter_exec: {e}", self.name))
    }
    /// The target as the superuser.
    pub fn admin_target(&self) -> Target {
        Target::connect(&self.admin_config())
            .unwrap_or_else(|e| panic!("connecting to {} as superuser: {e}", self.name))
    }
    /// The cluster's system identifier.
    pub fn system_identifier(&self) -> SystemIdentifier {
        SystemIdentifier::new(self.coordinates.system_identifier)
    }
    /// `count(*)` of `schema.table`.
    pub fn count(&self, table: &str) -> i64 {
        let t: TableName = table
            .to_string()
            .try_into()
            .unwrap_or_else(|e| panic!("bad table name {table}: {e}"));
        self.admin()
            .query_one(&format!("SELECT count(*) FROM {}", quote_table(&t)), &[])
            .unwrap_or_else(|e| panic!("counting {table}: {e}"))
            .get(0)
    }
    /// Every row of the two unit tables (`information_unit`, `unit_version`) as its
    /// text, by table and id: two readings are equal only if no row changed by a byte.
    pub fn unit_rows(&self) -> std::collections::BTreeMap<(String, i64), String> {
        let mut out = std::collections::BTreeMap::new();
        for t in ["information_unit", "unit_version"] {
            for r in self
                .admin()
                .query(&format!("SELECT id, x::text FROM public.{t} x"), &[])
                .unwrap_or_else(|e| panic!("reading public.{t}: {e}"))
            {
                out.insert((t.to_string(), r.get(0)), r.get(1));
            }
        }
        out
    }
    /// The current text of document `doc` (`public.unit_current_text`): (address,
    /// title, body) of every unit not repealed, by address.
    pub fn current_text(&self, doc: &str) -> Vec<(String, String, String)> {
        self.admin()
            .query(
                "SELECT canonical_address, title, body FROM public.unit_current_text \
                  WHERE document_id = $1 AND NOT repealed ORDER BY canonical_address",
                &[&doc],
            )
            .unwrap_or_else(|e| panic!("reading the current text of {doc}: {e}"))
            .iter()
            .map(|r| (r.get(0), r.get(1), r.get(2)))
            .collect()
    }
    /// A rehearsal authorization for run `run_id` and a plan with digest `plan_digest`
    /// on this cluster: the legitimate path for throwaway databases (no approvals; the
    /// "source" is a different, fictitious server).
    ///
    /// Marks the database as a rehearsal clone (reference V5), as a dry-run marks its
    /// clone, so that the database lets the rehearsal write without recorded approvals.
    /// A test of the database's own gate uses a database it never calls this on.
    pub fn authorization(&self, run_id: &str, plan_digest: Sha256Digest) -> LiveAuthorization {
        let run = RunId::new(run_id).unwrap_or_else(|e| panic!("run id {run_id:?}: {e}"));
        rehearsal_authorization(&mut self.admin(), run, plan_digest)
            .unwrap_or_else(|e| panic!("rehearsal authorization on {}: {e}", self.name))
    }
}

/// The text of a plan's rows as [`TestDb::current_text`] reads it once enacted:
/// (address, title, body), by address.
pub fn plan_text(rows: &[cutter_core::CutPlanRow]) -> Vec<(String, String, String)> {
    let mut v: Vec<_> = rows
        .iter()
        .map(|r| (r.canonical_address.clone(), r.title.clone(), r.body.clone()))
        .collect();
    v.sort();
    v
}

/// Marks the database `admin` (a superuser connection to a throwaway cluster) is
/// connected to as a rehearsal clone (reference V5) and returns a rehearsal
/// authorization for `run` and `plan_digest` there, naming a fictitious source server.
/// For tests and benchmarks of the writers on throwaway databases.
pub fn rehearsal_authorization(
    admin: &mut postgres::Client,
    run: RunId,
    plan_digest: Sha256Digest,
) -> Result<LiveAuthorization> {
    // A database without the reference schema's V5 has no gate to exempt from.
    let has_mark: bool = admin
        .query_one(
            "SELECT to_regclass('cutter_governance.rehearsal_clone') IS NOT NULL",
            &[],
        )
        .map_err(|e| Error::Install {
            what: "a rehearsal authorization".into(),
            reason: e.to_string(),
        })?
        .get(0);
    if has_mark {
        crate::cluster::mark_rehearsal_clone(admin)?;
    }
    let target = crate::surface::target_database(admin)?;
    let source = SystemIdentifier::new(target.system_identifier.get() ^ 1);
    LiveAuthorization::rehearsal(run, plan_digest, source, target).map_err(|e| Error::Install {
        what: "a rehearsal authorization".into(),
        reason: e.to_string(),
    })
}

impl Drop for TestDb {
    fn drop(&mut self) {
        if let Ok(mut c) = self.coordinates.admin() {
            let _ = drop_database(&mut c, &self.name);
        }
    }
}
