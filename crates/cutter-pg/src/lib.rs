//! PostgreSQL adapter of cutter: the reference schema as embedded, versioned SQL; a
//! [`Target`] whose mutating phase methods each own exactly one transaction and need a
//! [`cutter_core::LiveAuthorization`]; snapshots with server-side content digests;
//! preflight; and throwaway clusters for tests, proofs, dry-runs and the demo.
//!
//! ```no_run
//! // Needs PostgreSQL's server binaries; cutter-pg's tests start clusters the same way.
//! let cluster = cutter_pg::Cluster::start()?;
//! cluster.create_database("target", Some("template0"))?;
//! let mut c = cluster.connect("target")?;
//! cutter_pg::schema::install_reference(&mut c)?;
//! cutter_pg::schema::install_baseline(&mut c)?;
//! let mut target = cutter_pg::Target::connect(&cluster.superuser_config("target")?)?;
//! let snapshot = target.snapshot()?;
//! println!("{} information units", snapshot.rows("public.information_unit"));
//! cluster.stop()?;
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
//!
//! Invariants: values always travel as bind parameters (identifiers are quoted with
//! [`quote_ident`]); no write happens without an authorization for the connected server
//! and the per-target run lock; passwords never appear in `Debug`, logs or errors.
//!
//! Where to start: [`Target`] (the adapter), [`schema`] (the SQL and its names),
//! [`surface`] (snapshots and the digest's canonical form), [`Cluster`].

#![warn(missing_docs)]

pub mod amend;
pub mod cluster;
pub mod config;
mod error;
pub mod fixtures;
mod ident;
pub mod migrate;
pub mod preflight;
pub mod schema;
mod stream;
pub mod surface;
mod sys;
mod target;
#[cfg(feature = "testing")]
pub mod testing;

pub use cluster::{
    is_throwaway_server, mark_rehearsal_clone, pg_bindir, pg_program, rehearsal_refused_by,
    shell_quote, Cluster, ClusterOptions, KeptCluster, SERVER_ENV_ALLOWED, THROWAWAY_CLUSTER_NAME,
};
pub use config::{ConfigError, ConnConfig, Password};
pub use error::{ChangedMigration, Error, LockHolder, MigrationFailure, Result, ServerError};
pub use ident::{quote_ident, quote_table};
pub use preflight::{Finding, PreflightReport};
pub use stream::{RowPicker, StreamedPlan};
pub use surface::SurfaceMark;
pub use target::{
    run_lock_holder, void_decision, writer_role_problems, BatchLimits, BeforeCommit, Canceller,
    LegAReport, PhaseTransaction, RollbackOnly, Target, APPLICATION_NAME_PREFIX, RUN_LOCK_KEY,
};
