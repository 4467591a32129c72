//! The restore proof: check that the manifest is signed by the pinned signing key, then
//! the artifact's sha256 against it (through the one descriptor that is then decrypted),
//! decrypt it while streaming into `pg_restore` against a throwaway cluster that first
//! received the reference schema (the `--table` dump carries tables, sequences, indexes,
//! constraints and triggers, but not the schemas, roles, vocabularies and functions they
//! rely on), then compare per-table rows and content digests with the manifest and check
//! that both immutability triggers exist and are enabled. The cluster is torn down by
//! exact path.
//!
//! pg_restore runs as an unprivileged role that owns the throwaway database (see
//! [`crate::sandbox`]): a dump that tries `COPY … TO PROGRAM` cannot run it. It restores
//! only the surface tables' entries, and its input stays open until the MDC and a second
//! sha256 of the bytes decrypted have been checked: on any failure it is killed inside
//! its single transaction and the cluster discarded.
//!
//! Invariants: nothing is decrypted before the signature and the sha256 matched;
//! plaintext only ever flows through a pipe into pg_restore; the proof never restores
//! into the server the backup came from (same `system_identifier`).

use std::collections::BTreeMap;
use std::io::{self, Write};
use std::path::{Path, PathBuf};
use std::process::{ChildStdin, Stdio};
use std::time::Instant;

use cutter_core::{
    mutation_surface, Fingerprint, RunId, Sha256Digest, SystemIdentifier, TableName, TableStat,
    UnixTime,
};
use cutter_openpgp::{Passphrase, SecretKey};
use cutter_pg::config::ConnConfig;
use cutter_pg::{Cluster, ClusterOptions};
use postgres::IsolationLevel;
use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};
use crate::keys::{load_secret_key, ManifestSigner, PassphraseSource};
use crate::manifest::{verify_artifact, VerifiedArtifact};
use crate::programs::{command, describe_status, major_of, ChildGuard, PgProgram, StderrCollector};
use crate::sandbox::{self, Gate, Selection};

/// The value of [`RestoreProof::format`].
pub const PROOF_FORMAT: &str = "cutter-restore-proof/2";

/// Server settings of the throwaway cluster a proof restores into, on top of the
/// throwaway defaults (no fsync): with `wal_level = minimal`, COPY into a table created
/// in the same transaction (`pg_restore --single-transaction`) skips the WAL.
pub const RESTORE_CLUSTER_SETTINGS: [(&str, &str); 3] = [
    ("wal_level", "minimal"),
    ("max_wal_senders", "0"),
    ("maintenance_work_mem", "256MB"),
];

/// The database the proof creates in the throwaway cluster.
const PROOF_DB: &str = "cutter_restore_proof";

/// Where to restore.
#[derive(Clone, Debug, Default)]
pub enum RestoreTarget {
    /// A new throwaway cluster (initdb into a temporary directory), removed afterwards.
    #[default]
    Throwaway,
    /// An existing scratch server, as a superuser; a new database is created there and
    /// dropped afterwards. Refused if it is the backup's source server.
    Server(Box<ConnConfig>),
}

/// What a restore proof needs.
#[derive(Clone, Debug)]
pub struct RestoreConfig {
    artifact: PathBuf,
    secret_key: PathBuf,
    signing_pin: Fingerprint,
    passphrase: PassphraseSource,
    target: RestoreTarget,
    pg_restore: Option<PathBuf>,
    pg_bindir: Option<PathBuf>,
    record: Option<(PathBuf, ManifestSigner)>,
    progress: Progress,
}

/// A callback told the artifact bytes decrypted so far.
#[derive(Clone, Default)]
struct Progress(Option<std::sync::Arc<dyn Fn(u64) + Send + Sync>>);

impl std::fmt::Debug for Progress {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(if self.0.is_some() {
            "Progress(set)"
        } else {
            "Progress(none)"
        })
    }
}

impl RestoreConfig {
    /// A proof of `artifact` (its manifest beside it, which must be signed by the key
    /// `signing_pin` names) with the OpenPGP secret key in `secret_key` (armored or
    /// binary, a private file), unprotected unless a passphrase source is set.
    pub fn new(
        artifact: impl Into<PathBuf>,
        secret_key: impl Into<PathBuf>,
        signing_pin: Fingerprint,
    ) -> Self {
        Self {
            artifact: artifact.into(),
            secret_key: secret_key.into(),
            signing_pin,
            passphrase: PassphraseSource::None,
            target: RestoreTarget::Throwaway,
            pg_restore: None,
            pg_bindir: None,
            record: None,
            progress: Progress::default(),
        }
    }

    /// Calls `f` with the artifact bytes decrypted so far while the restore streams
    /// (for a progress bar: the manifest's `size_bytes` is the total).
    pub fn on_progress(mut self, f: impl Fn(u64) + Send + Sync + 'static) -> Self {
        self.progress = Progress(Some(std::sync::Arc::new(f)));
        self
    }

    /// Where the secret key's passphrase comes from (environment variable or file).
    pub fn passphrase(mut self, source: PassphraseSource) -> Self {
        self.passphrase = source;
        self
    }

    /// Restore into this target instead of a new throwaway cluster.
    pub fn target(mut self, target: RestoreTarget) -> Self {
        self.target = target;
        self
    }

    /// Uses this pg_restore binary instead of the one in `pg_config --bindir`.
    pub fn pg_restore(mut self, path: impl Into<PathBuf>) -> Self {
        self.pg_restore = Some(path.into());
        self
    }

    /// Looks for pg_restore in this directory (`[backup] pg_bindir`) instead of asking
    /// `pg_config --bindir`; `None` asks it.
    pub fn pg_bindir(mut self, dir: Option<PathBuf>) -> Self {
        self.pg_bindir = dir;
        self
    }

    /// Also writes the proof as JSON to `path` (atomically, never overwriting): whenever
    /// a restore target was set up, whether the proof passed, failed on the comparison
    /// or stopped early (see [`restore_proof`]). An existing `path` is refused before
    /// anything is restored. The record is signed by `signer` (the backup signing key;
    /// the detached signature beside it, `<path>.sig`).
    pub fn record_to(mut self, path: impl Into<PathBuf>, signer: &ManifestSigner) -> Self {
        self.record = Some((path.into(), signer.clone()));
        self
    }
}

/// One table's comparison.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct TableCheck {
    /// The table.
    pub table: TableName,
    /// From the manifest.
    pub expected: TableStat,
    /// From the restored database (`None`: not restored).
    pub actual: Option<TableStat>,
    /// Rows and digest equal.
    pub ok: bool,
}

/// How long each step took, in milliseconds.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ProofTimings {
    /// The manifest's signature, and the sha256 of the artifact against the manifest.
    pub verify_ms: u64,
    /// Starting the throwaway cluster and installing the reference schema.
    pub prepare_ms: u64,
    /// Decrypting into pg_restore until it exited.
    pub restore_ms: u64,
    /// Digests and trigger checks on the restored database.
    pub check_ms: u64,
    /// Tearing down.
    pub teardown_ms: u64,
    /// Everything.
    pub total_ms: u64,
}

/// The record of a restore proof.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct RestoreProof {
    /// [`PROOF_FORMAT`].
    pub format: String,
    /// The artifact's file name.
    pub artifact: String,
    /// Its sha256, as verified against the manifest.
    pub artifact_sha256: Sha256Digest,
    /// The run (or backup name).
    pub run_id: RunId,
    /// The server the backup was taken from.
    pub source_system_identifier: SystemIdentifier,
    /// The server it was restored into.
    pub restore_system_identifier: Option<SystemIdentifier>,
    /// Where it was restored (cluster directory or redacted server).
    pub restore_target: String,
    /// The pg_restore version used.
    pub pg_restore_version: String,
    /// The key that signed the manifest (the pinned signing key).
    pub manifest_signed_by: Fingerprint,
    /// The secret key that decrypted it.
    pub decrypted_with: Fingerprint,
    /// The role pg_restore ran as: not a superuser, a member of no role (none of
    /// `pg_execute_server_program`, `pg_read_server_files`, `pg_write_server_files`),
    /// owner of the restore database. Empty if the proof stopped before it existed.
    pub restored_as: String,
    /// Dump bytes decrypted.
    pub plaintext_bytes: u64,
    /// Per-table comparison, in mutation-surface order.
    pub tables: Vec<TableCheck>,
    /// Immutability trigger → `tgenabled` in the restored database (absent: missing).
    pub triggers: BTreeMap<String, String>,
    /// Whether everything matched.
    pub passed: bool,
    /// What did not match (empty when passed).
    pub failures: Vec<String>,
    /// When the proof started.
    pub started_at: UnixTime,
    /// Step timings.
    pub timings: ProofTimings,
}

impl RestoreProof {
    /// Pretty JSON with a trailing newline.
    pub fn to_json(&self) -> String {
        let mut s = serde_json::to_string_pretty(self).expect("a proof always serializes");
        s.push('\n');
        s
    }
}

/// The pg_restore arguments for a restore into database `dbname` (connection details
/// come from the environment; no secrets here). One transaction, stop at the first
/// error, objects owned by the restoring user, no GRANTs (the throwaway cluster does
/// not have production's roles). The restore adds `--use-list` with the surface tables'
/// entries.
pub fn pg_restore_args(dbname: &str) -> Vec<String> {
    vec![
        format!("--dbname={dbname}"),
        "--no-password".into(),
        "--exit-on-error".into(),
        "--single-transaction".into(),
        "--no-owner".into(),
        "--no-privileges".into(),
    ]
}

/// Prepares a fresh database for a restore of the mutation surface: installs the
/// reference schema (schemas, roles, vocabularies, functions), then drops its nine
/// tables so the dump recreates them exactly as they were dumped. Public so benchmarks
/// can put a plain `pg_restore` on the same footing.
pub fn prepare_restore_database(c: &mut postgres::Client) -> Result<()> {
    install_reference_schema(c)?;
    drop_surface_tables(c)
}

pub(crate) fn install_reference_schema(c: &mut postgres::Client) -> Result<()> {
    cutter_pg::schema::install_reference(c)
        .map(|_| ())
        .map_err(|source| Error::Pg {
            what: "installing the reference schema into the restore database",
            source,
        })
}

fn drop_surface_tables(c: &mut postgres::Client) -> Result<()> {
    let tables: Vec<String> = mutation_surface().iter().map(TableName::quoted).collect();
    c.batch_execute(&format!("DROP TABLE {} CASCADE", tables.join(", ")))
        .map_err(|e| Error::sql("dropping the reference tables before the restore", e))
}

/// Starts a throwaway cluster configured like the restore proof's.
pub fn start_restore_cluster() -> Result<Cluster> {
    Cluster::start_with(&ClusterOptions {
        settings: RESTORE_CLUSTER_SETTINGS
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect(),
    })
    .map_err(|source| Error::Pg {
        what: "starting a throwaway cluster",
        source,
    })
}

/// Marks the early stop of the key probe.
#[derive(Debug)]
struct ProbeDone;
impl std::fmt::Display for ProbeDone {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("probe done")
    }
}
impl std::error::Error for ProbeDone {}

/// Takes the first bytes of the plaintext, then stops the decryption.
struct Probe(Vec<u8>);
impl Write for Probe {
    fn write(&mut self, b: &[u8]) -> io::Result<usize> {
        let take = b.len().min(5 - self.0.len().min(5));
        self.0.extend_from_slice(&b[..take]);
        if self.0.len() >= 5 {
            return Err(io::Error::other(ProbeDone));
        }
        Ok(b.len())
    }
    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

/// Checks that `secret`/`passphrase` open the artifact, reading only its first chunk
/// through the verified descriptor; no plaintext is kept beyond the 5-byte magic.
pub(crate) fn probe_key(
    verified: &VerifiedArtifact,
    secret: &SecretKey,
    passphrase: &Passphrase,
) -> Result<()> {
    let artifact = &verified.path;
    let reader = verified.reader()?;
    let mut probe = Probe(Vec::new());
    let res = cutter_openpgp::decrypt(secret, passphrase, reader, &mut probe);
    let stopped_by_probe = |e: &cutter_openpgp::Error| match e {
        cutter_openpgp::Error::DecryptOutput { source } => source
            .get_ref()
            .is_some_and(|inner| inner.downcast_ref::<ProbeDone>().is_some()),
        _ => false,
    };
    match res {
        Err(e) if stopped_by_probe(&e) => {}
        Ok(_) => {}
        Err(source) => {
            return Err(Error::Decrypt {
                path: artifact.to_path_buf(),
                source,
            })
        }
    }
    if probe.0 != b"PGDMP" {
        return Err(Error::Manifest {
            path: artifact.to_path_buf(),
            problem: "decrypts to something that is not a pg_dump custom-format archive".into(),
        });
    }
    Ok(())
}

/// Hints for the errors of a streamed restore.
pub(crate) struct Hints {
    /// pg_restore stopped reading its input.
    pub(crate) stopped: &'static str,
    /// pg_restore exited non-zero.
    pub(crate) failed: &'static str,
}

/// Decrypts the verified artifact, through the [`Gate`] (`mode` selects the entries),
/// into `pg_restore <args> --use-list=…` connected as `conn` (the unprivileged role).
/// pg_restore's input is closed only once the MDC has been checked and the bytes read
/// hash to the verified sha256; on any failure before that pg_restore is killed inside
/// its transaction. `progress` is told the artifact bytes read. Returns the plaintext
/// bytes restored.
#[allow(clippy::too_many_arguments)]
pub(crate) fn stream_restore(
    verified: &VerifiedArtifact,
    secret: &SecretKey,
    passphrase: &Passphrase,
    pg_restore: &PgProgram,
    conn: &ConnConfig,
    args: Vec<String>,
    mode: Selection,
    hints: Hints,
    progress: &mut (dyn FnMut(u64) + Send),
) -> Result<u64> {
    let env = conn.child_env().map_err(|e| Error::Connect {
        target: conn.redacted(),
        detail: format!("preparing pg_restore's environment: {e}"),
    })?;
    let list_dir = tempfile::Builder::new()
        .prefix("cutter-restore-list-")
        .tempdir()
        .map_err(|e| Error::io("creating", std::env::temp_dir(), e))?;
    let program = pg_restore.path.display().to_string();
    let mut running: Option<(ChildGuard, StderrCollector)> = None;
    let mut start = |ids: &[i32]| -> Result<ChildStdin> {
        let list = sandbox::list_file(list_dir.path(), ids)?;
        let mut cmd = command(&pg_restore.path);
        env.apply(&mut cmd);
        cmd.args(&args)
            .arg(format!("--use-list={}", list.display()))
            .stdin(Stdio::piped())
            .stdout(Stdio::null())
            .stderr(Stdio::piped());
        let child = cmd.spawn().map_err(|e| Error::Program {
            program: program.clone(),
            problem: format!("cannot start it: {e}"),
        })?;
        let mut child = ChildGuard::new(child, program.clone());
        let stderr = StderrCollector::spawn(child.child_mut().stderr.take().expect("piped stderr"));
        let stdin = child.child_mut().stdin.take().expect("piped stdin");
        running = Some((child, stderr));
        Ok(stdin)
    };
    let mut reader = verified.reader()?;
    let (decrypted, stdin, refused) = {
        let counting = crate::clone::CountingReader::new(&mut reader, progress);
        let mut gate = Gate::new(mode, &verified.path, &mut start);
        let decrypted = cutter_openpgp::decrypt(secret, passphrase, counting, &mut gate);
        let refused = gate.failure.take();
        let stdin = gate.take_stdin();
        (decrypted, stdin, refused)
    };
    // Both verdicts before pg_restore may see the end of its input (and commit).
    let verdict = match decrypted {
        Ok(n) => reader.check().map(|()| n),
        Err(e) => Err(match refused {
            Some(r) if sandbox::is_gate_refusal(&e) => r,
            _ => match e {
                cutter_openpgp::Error::DecryptOutput { source }
                    if source.kind() == io::ErrorKind::BrokenPipe =>
                {
                    Error::ChildFailed {
                        program: program.clone(),
                        status: "it stopped reading its input".into(),
                        stderr: String::new(),
                        hint: Some(hints.stopped),
                    }
                }
                source => Error::Decrypt {
                    path: verified.path.clone(),
                    source,
                },
            },
        }),
    };
    let plaintext_bytes = match verdict {
        Ok(n) => n,
        Err(e) => {
            let text = match running.take() {
                Some((child, stderr)) => {
                    let _ = child.kill();
                    drop(stdin);
                    stderr.finish()
                }
                None => String::new(),
            };
            return Err(match e {
                Error::ChildFailed {
                    program,
                    status,
                    hint,
                    ..
                } => Error::ChildFailed {
                    program,
                    status,
                    stderr: text,
                    hint,
                },
                other => other,
            });
        }
    };
    let Some((child, stderr)) = running.take() else {
        return Err(Error::ArchiveRefused {
            path: verified.path.clone(),
            problem: "it ends inside its table of contents; it is not a complete pg_dump \
                      custom-format archive"
                .into(),
        });
    };
    drop(stdin);
    let status = child.wait()?;
    let err_text = stderr.finish();
    drop(env);
    if !status.success() {
        return Err(Error::ChildFailed {
            program,
            status: describe_status(status),
            stderr: err_text,
            hint: Some(hints.failed),
        });
    }
    Ok(plaintext_bytes)
}

fn now() -> UnixTime {
    UnixTime(
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_secs() as i64),
    )
}

pub(crate) fn ms(since: Instant) -> u64 {
    since.elapsed().as_millis() as u64
}

/// The restore target, set up: a connection config for the restore database, and what
/// to tear down.
pub(crate) enum Prepared {
    Cluster(Cluster),
    Server { admin: ConnConfig, dbname: String },
}

impl Prepared {
    /// The superuser's connection to the restore database.
    pub(crate) fn restore_config(&self) -> Result<ConnConfig> {
        match self {
            Prepared::Cluster(c) => c.superuser_config(PROOF_DB).map_err(|source| Error::Pg {
                what: "configuring the connection to the throwaway cluster",
                source,
            }),
            Prepared::Server { admin, dbname } => Ok(admin.with_dbname(dbname)),
        }
    }

    pub(crate) fn describe(&self) -> String {
        match self {
            Prepared::Cluster(c) => format!("throwaway cluster {}", c.dir().display()),
            Prepared::Server { admin, dbname } => {
                format!("database {dbname} on {}", admin.redacted())
            }
        }
    }

    /// Tears the target down; on a server, the restore role (if made) goes too.
    pub(crate) fn teardown(self, role: Option<&str>) -> Result<()> {
        match self {
            Prepared::Cluster(c) => c.stop().map_err(|source| Error::Pg {
                what: "tearing down the throwaway cluster",
                source,
            }),
            Prepared::Server { admin, dbname } => {
                let mut c = admin.connect().map_err(|e| Error::Connect {
                    target: admin.redacted(),
                    detail: e.to_string(),
                })?;
                c.batch_execute(&format!(
                    "DROP DATABASE IF EXISTS {} WITH (FORCE)",
                    cutter_pg::quote_ident(&dbname)
                ))
                .map_err(|e| Error::sql(format!("dropping the restore database {dbname}"), e))?;
                if let Some(r) = role {
                    c.batch_execute(&format!(
                        "DROP ROLE IF EXISTS {}",
                        cutter_pg::quote_ident(r)
                    ))
                    .map_err(|e| Error::sql(format!("dropping the restore role {r}"), e))?;
                }
                Ok(())
            }
        }
    }
}

fn read_sysid(c: &mut postgres::Client) -> Result<SystemIdentifier> {
    cutter_pg::surface::system_identifier(c).map_err(|source| Error::Pg {
        what: "reading the restore target's system identifier",
        source,
    })
}

pub(crate) fn prepare(
    target: &RestoreTarget,
    source: SystemIdentifier,
) -> Result<(Prepared, SystemIdentifier)> {
    match target {
        RestoreTarget::Throwaway => {
            let cluster = start_restore_cluster()?;
            let prepared = Prepared::Cluster(cluster);
            let Prepared::Cluster(c) = &prepared else {
                unreachable!()
            };
            let mut admin = c.connect("postgres").map_err(|source| Error::Pg {
                what: "connecting to the throwaway cluster",
                source,
            })?;
            let sysid = read_sysid(&mut admin)?;
            if sysid == source {
                return Err(Error::SameServer {
                    system_identifier: sysid,
                });
            }
            c.create_database(PROOF_DB, Some("template0"))
                .map_err(|source| Error::Pg {
                    what: "creating the restore database",
                    source,
                })?;
            Ok((prepared, sysid))
        }
        RestoreTarget::Server(admin) => {
            let mut c = admin.connect().map_err(|e| Error::Connect {
                target: admin.redacted(),
                detail: e.to_string(),
            })?;
            let sysid = read_sysid(&mut c)?;
            if sysid == source {
                return Err(Error::SameServer {
                    system_identifier: sysid,
                });
            }
            let dbname = format!(
                "cutter_restore_proof_{}_{}",
                std::process::id(),
                std::time::SystemTime::now()
                    .duration_since(std::time::UNIX_EPOCH)
                    .map_or(0, |d| d.subsec_nanos())
            );
            c.batch_execute(&format!(
                "CREATE DATABASE {} TEMPLATE template0",
                cutter_pg::quote_ident(&dbname)
            ))
            .map_err(|e| Error::sql(format!("creating the restore database {dbname}"), e))?;
            Ok((
                Prepared::Server {
                    admin: (**admin).clone(),
                    dbname,
                },
                sysid,
            ))
        }
    }
}

/// Runs the restore proof: see the module docs. Returns the proof when every table
/// matched and both triggers are enabled; otherwise [`Error::ProofFailed`] carrying the
/// full record.
///
/// With [`RestoreConfig::record_to`], the record is written whenever a restore target
/// was set up, whatever happens next: passed, failed on the comparison, or stopped
/// early (decryption or pg_restore failed, the restored database could not be read).
/// In the last case the record has `passed: false`, the reason in `failures`, no
/// `actual` for any table, and the original error is returned. Failures before a
/// target is set up (the artifact does not match its manifest, the key or passphrase
/// is wrong, pg_restore is too old, the record already exists, the target is the
/// source server or could not be set up) write no record: nothing was restored, and
/// the error says why.
pub fn restore_proof(cfg: &RestoreConfig) -> Result<RestoreProof> {
    let started = Instant::now();
    let started_at = now();
    let mut timings = ProofTimings::default();

    // 1. Trust nothing before the signature and the sha256 match.
    let verified = verify_artifact(&cfg.artifact, &cfg.signing_pin)?;
    let manifest = verified.manifest.clone();
    timings.verify_ms = ms(started);

    // 2. Key and passphrase, checked on the first chunk before any cluster exists.
    let secret = load_secret_key(&cfg.secret_key)?;
    let passphrase = cfg.passphrase.read(&|k| std::env::var(k).ok())?;
    probe_key(&verified, &secret, &passphrase)?;
    let pg_restore = PgProgram::resolve(
        cfg.pg_restore.as_deref(),
        cfg.pg_bindir.as_deref(),
        "pg_restore",
    )?;
    let dump_major = major_of(&manifest.dump.pg_dump_version).unwrap_or(0);
    if pg_restore.major < dump_major {
        return Err(Error::Program {
            program: pg_restore.path.display().to_string(),
            problem: format!(
                "version {} cannot read an archive written by pg_dump {}; use pg_restore {dump_major} or newer",
                pg_restore.version, manifest.dump.pg_dump_version
            ),
        });
    }
    // The record is never overwritten: refuse now rather than after the restore.
    let record = cfg
        .record
        .as_ref()
        .map(|(p, signer)| record_location(p).map(|(d, n)| (d, n, signer)))
        .transpose()?;
    if let Some((dir, name, _)) = &record {
        let path = dir.join(name);
        if std::fs::symlink_metadata(&path).is_ok() {
            return Err(Error::RecordExists { path });
        }
    }

    // 3. The target, refusing the source server.
    let t = Instant::now();
    let (prepared, restore_sysid) = prepare(&cfg.target, manifest.server.system_identifier)?;
    let target_text = prepared.describe();
    let mut role = None;
    let outcome = run_in(
        &prepared,
        cfg,
        &verified,
        &secret,
        &passphrase,
        &pg_restore,
        &mut timings,
        t,
        &mut role,
    );
    let t = Instant::now();
    let teardown = prepared.teardown(role.as_deref());
    timings.teardown_ms = ms(t);
    timings.total_ms = ms(started);

    // From here on, every outcome is recorded.
    let (tables, triggers, plaintext_bytes, mut failures, stopped) = match outcome {
        Ok((tables, triggers, bytes, failures)) => (tables, triggers, bytes, failures, None),
        Err(e) => {
            let tables = mutation_surface()
                .into_iter()
                .filter_map(|t| {
                    let expected = manifest.tables.get(&t).copied()?;
                    Some(TableCheck {
                        table: t,
                        expected,
                        actual: None,
                        ok: false,
                    })
                })
                .collect();
            let failures = vec![format!(
                "the restore into {target_text} stopped before the comparison: {e}"
            )];
            (tables, BTreeMap::new(), 0, failures, Some(e))
        }
    };
    if let Err(e) = teardown {
        failures.push(format!("teardown of {target_text} failed: {e}"));
    }
    let proof = RestoreProof {
        format: PROOF_FORMAT.into(),
        artifact: manifest.artifact.clone(),
        artifact_sha256: manifest.sha256,
        run_id: manifest.run_id.clone(),
        source_system_identifier: manifest.server.system_identifier,
        restore_system_identifier: Some(restore_sysid),
        restore_target: target_text,
        pg_restore_version: pg_restore.version.clone(),
        manifest_signed_by: manifest.signer.fingerprint.clone(),
        decrypted_with: secret.fingerprint(),
        restored_as: role.map_or(String::new(), |r| {
            format!("{r} (not a superuser, member of no role, owner of the restore database)")
        }),
        plaintext_bytes,
        passed: failures.is_empty(),
        tables,
        triggers,
        failures,
        started_at,
        timings,
    };
    let written = match &record {
        Some((dir, name, signer)) => {
            crate::proofrecord::write_signed_record(&dir.join(name), &proof.to_json(), signer)
        }
        None => Ok(()),
    };
    if let Some(e) = stopped {
        // The reason the proof stopped matters most; a record that could not be
        // written on top of it is logged (the error below says the proof failed).
        if let Err(w) = written {
            tracing::error!(error = %w, "the record of the failed restore proof was not written");
        }
        return Err(e);
    }
    written?;
    if proof.passed {
        tracing::info!(artifact = %proof.artifact, "restore proof passed");
        Ok(proof)
    } else {
        Err(Error::ProofFailed {
            proof: Box::new(proof),
        })
    }
}

/// The directory and file name of the proof record.
fn record_location(path: &Path) -> Result<(PathBuf, String)> {
    let dir = path
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    let name = path
        .file_name()
        .and_then(|n| n.to_str())
        .ok_or_else(|| Error::Manifest {
            path: path.to_path_buf(),
            problem: "is not a file path for the proof record".into(),
        })?;
    Ok((dir.to_path_buf(), name.to_string()))
}

type Outcome = (Vec<TableCheck>, BTreeMap<String, String>, u64, Vec<String>);

/// Restores the verified full artifact into the database `admin` (a superuser's
/// connection) names: the reference schema, a fresh unprivileged role (its name goes to
/// `role_out`), then pg_restore of the surface tables as that role. Returns the role's
/// connection and the plaintext bytes restored.
#[allow(clippy::too_many_arguments)]
pub(crate) fn load_full(
    admin: &ConnConfig,
    verified: &VerifiedArtifact,
    secret: &SecretKey,
    passphrase: &Passphrase,
    pg_restore: &PgProgram,
    timings: &mut ProofTimings,
    prepare_started: Instant,
    role_out: &mut Option<String>,
    selection: Selection,
    progress: &mut (dyn FnMut(u64) + Send),
) -> Result<(ConnConfig, u64, Vec<ForeignKey>)> {
    let mut foreign_keys = Vec::new();
    let role = {
        let mut c = admin.connect().map_err(|e| Error::Connect {
            target: admin.redacted(),
            detail: e.to_string(),
        })?;
        install_reference_schema(&mut c)?;
        if selection == Selection::FullWithoutForeignKeys {
            foreign_keys = surface_foreign_keys(&mut c)?;
        }
        let role = sandbox::create_role(&mut c, admin.dbname())?;
        *role_out = Some(role.name.clone());
        sandbox::grant_for_full_restore(&mut c, &role.name)?;
        drop_surface_tables(&mut c)?;
        role
    };
    let conn = admin.with_user(&role.name, Some(role.password.clone()));
    timings.prepare_ms = ms(prepare_started);

    // Decrypt while streaming into pg_restore, as the restore role.
    let t = Instant::now();
    let plaintext_bytes = stream_restore(
        verified,
        secret,
        passphrase,
        pg_restore,
        &conn,
        pg_restore_args(conn.dbname()),
        selection,
        Hints {
            stopped: "the throwaway database was discarded",
            failed: "the reference schema may not match the source's (functions, vocabularies), \
                     or the archive is damaged",
        },
        progress,
    )?;
    timings.restore_ms = ms(t);
    Ok((conn, plaintext_bytes, foreign_keys))
}

/// A foreign key between two surface tables, as the reference schema defines it.
#[derive(Clone, Debug)]
pub(crate) struct ForeignKey {
    /// The referencing table, quoted.
    pub(crate) table: String,
    /// The constraint's name, quoted.
    pub(crate) name: String,
    /// `pg_get_constraintdef`.
    pub(crate) definition: String,
}

/// Every foreign key from a surface table to a surface table of the database `c` is
/// connected to (the reference schema, before its tables are dropped for the restore).
fn surface_foreign_keys(c: &mut postgres::Client) -> Result<Vec<ForeignKey>> {
    let surface: Vec<String> = mutation_surface().iter().map(TableName::quoted).collect();
    let rows = c
        .query(
            "SELECT k.conrelid::regclass::text, quote_ident(k.conname), pg_get_constraintdef(k.oid) \
               FROM pg_catalog.pg_constraint k \
              WHERE k.contype = 'f' \
                AND k.conrelid = ANY (SELECT to_regclass(x) FROM unnest($1::text[]) x) \
                AND k.confrelid = ANY (SELECT to_regclass(x) FROM unnest($1::text[]) x) \
              ORDER BY 1, 2",
            &[&surface],
        )
        .map_err(|e| Error::sql("listing the reference schema's foreign keys", e))?;
    Ok(rows
        .iter()
        .map(|r| ForeignKey {
            table: r.get(0),
            name: r.get(1),
            definition: r.get(2),
        })
        .collect())
}

#[allow(clippy::too_many_arguments)]
fn run_in(
    prepared: &Prepared,
    cfg: &RestoreConfig,
    verified: &VerifiedArtifact,
    secret: &SecretKey,
    passphrase: &Passphrase,
    pg_restore: &PgProgram,
    timings: &mut ProofTimings,
    prepare_started: Instant,
    role_out: &mut Option<String>,
) -> Result<Outcome> {
    let manifest = &verified.manifest;
    let admin = prepared.restore_config()?;
    let mut report = |n: u64| {
        if let Some(f) = &cfg.progress.0 {
            f(n);
        }
    };
    let (conn, plaintext_bytes, _) = load_full(
        &admin,
        verified,
        secret,
        passphrase,
        pg_restore,
        timings,
        prepare_started,
        role_out,
        Selection::Full,
        &mut report,
    )?;

    // Compare.
    let t = Instant::now();
    let mut failures = Vec::new();
    if plaintext_bytes != manifest.dump.plaintext_bytes {
        failures.push(format!(
            "decrypted {plaintext_bytes} bytes, the manifest says pg_dump wrote {}",
            manifest.dump.plaintext_bytes
        ));
    }
    // As the restore role, which owns what was restored (a superuser reading it could
    // run functions the dump defined).
    let mut c = conn.connect().map_err(|e| Error::Connect {
        target: conn.redacted(),
        detail: e.to_string(),
    })?;
    let mut tx = c
        .build_transaction()
        .isolation_level(IsolationLevel::RepeatableRead)
        .read_only(true)
        .start()
        .map_err(|e| Error::sql("starting the check transaction", e))?;
    let mut tables = Vec::new();
    for t in mutation_surface() {
        let expected = manifest.tables.get(&t).copied();
        let actual = cutter_pg::surface::table_stat(&mut tx, &t, None).ok();
        match expected {
            None => failures.push(format!("{t}: not in the manifest")),
            Some(exp) => {
                let ok = actual == Some(exp);
                if !ok {
                    failures.push(match actual {
                        None => format!("{t}: not restored"),
                        Some(a) if a.rows != exp.rows => {
                            format!(
                                "{t}: {} rows restored, the manifest says {}",
                                a.rows, exp.rows
                            )
                        }
                        Some(a) => format!(
                            "{t}: content digest {} differs from the manifest's {}",
                            a.digest, exp.digest
                        ),
                    });
                }
                tables.push(TableCheck {
                    table: t,
                    expected: exp,
                    actual,
                    ok,
                });
            }
        }
    }
    let triggers = cutter_pg::surface::trigger_states(&mut tx).map_err(|source| Error::Pg {
        what: "reading the immutability triggers of the restored database",
        source,
    })?;
    for (name, _) in cutter_pg::schema::IMMUTABILITY_TRIGGERS {
        match triggers.get(name).map(String::as_str) {
            Some("O") => {}
            Some(state) => failures.push(format!(
                "trigger {name} is restored but not enabled (tgenabled = {state})"
            )),
            None => failures.push(format!("trigger {name} is missing after the restore")),
        }
    }
    drop(tx);
    drop(c);
    timings.check_ms = ms(t);
    Ok((tables, triggers, plaintext_bytes, failures))
}
