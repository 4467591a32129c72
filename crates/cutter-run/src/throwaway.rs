//! A throwaway target to run against: a new cluster with one database at the reference
//! schema, the ledger and the seeds' baseline (158/165/60), the writer's and the
//! reader's login passwords random and kept in a private `.pgpass`. What an embedding
//! program or a demo rehearses on; never production.

use std::path::{Path, PathBuf};

use cutter_pg::schema;

use crate::error::{Error, Result};

/// A throwaway cluster with one reference database. Dropping it stops the cluster.
#[derive(Debug)]
pub struct ThrowawayTarget {
    /// The cluster (stop it with [`cutter_pg::Cluster::stop`], or `keep()` it).
    pub cluster: cutter_pg::Cluster,
    /// The database's name.
    pub database: String,
    /// The private password file holding both roles' passwords (point `PGPASSFILE` at it).
    pub pgpass: PathBuf,
}

impl ThrowawayTarget {
    /// Starts the cluster, creates and installs `database`, and writes `dir/pgpass`.
    pub fn start(dir: &Path, database: &str) -> Result<Self> {
        let failed = |what: &str| {
            let what = what.to_string();
            move |e: cutter_pg::Error| Error::Failed(format!("throwaway target: {what}: {e}"))
        };
        let cluster = cutter_pg::Cluster::start().map_err(failed("starting a cluster"))?;
        cluster
            .create_database(database, Some("template0"))
            .map_err(failed("creating the database"))?;
        let mut c = cluster
            .connect(database)
            .map_err(failed("connecting as the superuser"))?;
        schema::install_reference(&mut c).map_err(failed("installing the reference schema"))?;
        cutter_governance::install(&mut c)
            .map_err(|e| Error::Failed(format!("throwaway target: installing the ledger: {e}")))?;
        schema::install_baseline(&mut c).map_err(failed("installing the baseline"))?;
        let mut lines = String::new();
        for role in [schema::EXEC_ROLE, schema::VERIFY_ROLE] {
            let password = format!("{:032x}", rand::random::<u128>());
            schema::set_login_password(&mut c, role, &cutter_pg::Password::new(password.clone()))
                .map_err(failed("setting a password"))?;
            lines.push_str(&format!(
                "127.0.0.1:{}:{database}:{role}:{password}\n",
                cluster.port()
            ));
        }
        let pgpass = dir.join("pgpass");
        crate::statedir::write_file(&pgpass, lines.as_bytes(), crate::statedir::Replace::No)?;
        Ok(Self {
            cluster,
            database: database.to_string(),
            pgpass,
        })
    }

    /// The writer's connection URL (its password comes from [`ThrowawayTarget::pgpass`]).
    pub fn url(&self) -> String {
        format!(
            "postgres://{}@127.0.0.1:{}/{}?sslmode=disable",
            schema::EXEC_ROLE,
            self.cluster.port(),
            self.database
        )
    }
}
