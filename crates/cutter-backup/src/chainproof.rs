//! The chain proof: every link of a backup chain checked (signature, artifact SHA-256,
//! the predecessor's manifest and artifact hashes, sequence), then the full artifact
//! restored as the full proof does it and every increment applied in order into a
//! throwaway cluster, then each table's rows and set digest recomputed from the
//! restored data and compared with the last manifest's `total`, then every foreign key
//! between surface tables added (the full artifact is restored without them, so each
//! row's references are checked once, over the whole chain).
//!
//! Increments are applied as the throwaway cluster's superuser with
//! `session_replication_role = replica` (no gate, immutability or foreign-key triggers:
//! an increment's rows refer to units outside it), only through `DELETE` and `COPY …
//! FROM STDIN` statements cutter writes itself; table names come from the mutation
//! surface, never from the artifact. Nothing is decrypted before the link's manifest
//! signature and artifact SHA-256 matched, and an increment's transaction commits only
//! after the MDC and a second SHA-256 of the bytes read passed.

use std::collections::BTreeMap;
use std::io::{self, Write};
use std::path::{Path, PathBuf};
use std::sync::mpsc;
use std::time::Instant;

use cutter_core::{
    class_of, mutation_surface, Fingerprint, RunId, SetDigest, Sha256Digest, SurfaceClass,
    TableName, TableStat,
};
use cutter_openpgp::{Passphrase, SecretKey};
use cutter_pg::config::ConnConfig;
use serde::{Deserialize, Serialize};

use crate::chain::{digest_rows, LinkKind, MAGIC};
use crate::error::{Error, Result};
use crate::keys::{load_secret_key, ManifestSigner, PassphraseSource};
use crate::manifest::{
    artifact_file_name, manifest_path_for, verify_artifact, verify_manifest, VerifiedArtifact,
};
use crate::programs::PgProgram;
use crate::proofrecord::{is_proven, write_signed_record};
use crate::restore::{self, ProofTimings, RestoreTarget};

/// The value of [`ChainProof::format`].
pub const CHAIN_PROOF_FORMAT: &str = "cutter-chain-proof/1";

/// Largest frame payload accepted.
const MAX_FRAME: usize = 1 << 20;

/// What a chain proof needs.
#[derive(Clone, Debug)]
pub struct ChainProofConfig {
    head: PathBuf,
    secret_key: PathBuf,
    signing_pin: Fingerprint,
    passphrase: PassphraseSource,
    record: Option<(PathBuf, ManifestSigner)>,
    pg_bindir: Option<PathBuf>,
}

impl ChainProofConfig {
    /// A proof of the chain ending at the artifact `head` (its manifest and every
    /// predecessor's beside it, signed by the key `signing_pin` names), decrypted with the
    /// secret key in `secret_key`.
    pub fn new(
        head: impl Into<PathBuf>,
        secret_key: impl Into<PathBuf>,
        signing_pin: Fingerprint,
    ) -> Self {
        Self {
            head: head.into(),
            secret_key: secret_key.into(),
            signing_pin,
            passphrase: PassphraseSource::None,
            record: None,
            pg_bindir: None,
        }
    }

    /// Where the secret key's passphrase comes from.
    pub fn passphrase(mut self, source: PassphraseSource) -> Self {
        self.passphrase = source;
        self
    }

    /// Also writes the proof as JSON to `path` (atomically, never overwriting), signed
    /// by `signer` (the backup signing key; the signature beside it, `<path>.sig`).
    pub fn record_to(mut self, path: impl Into<PathBuf>, signer: &ManifestSigner) -> Self {
        self.record = Some((path.into(), signer.clone()));
        self
    }

    /// Looks for pg_restore here (`None`: `pg_config --bindir`).
    pub fn pg_bindir(mut self, dir: Option<PathBuf>) -> Self {
        self.pg_bindir = dir;
        self
    }
}

/// One table's comparison with the last link.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ChainTableCheck {
    /// The table.
    pub table: TableName,
    /// The last manifest's `total`.
    pub expected: SetDigest,
    /// Recomputed from the restored data.
    pub actual: SetDigest,
    /// Rows and ordered content digest of the restored table (what a snapshot of the
    /// source shows).
    pub content: TableStat,
    /// Equal.
    pub ok: bool,
}

/// How long each step took, in milliseconds.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ChainTimings {
    /// Every link's signature, SHA-256 and hash link.
    pub verify_ms: u64,
    /// Starting the throwaway cluster (initdb and start), excluded from comparisons.
    pub cluster_start_ms: u64,
    /// Reference schema and restore role, and the full artifact's pg_restore.
    pub full_restore_ms: u64,
    /// Applying every increment.
    pub increments_ms: u64,
    /// Digests and foreign keys.
    pub check_ms: u64,
    /// Everything.
    pub total_ms: u64,
}

/// The record of a chain proof.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ChainProof {
    /// [`CHAIN_PROOF_FORMAT`].
    pub format: String,
    /// The chain (its full backup's name).
    pub chain: RunId,
    /// The links restored, in order (the full backup first).
    pub links: Vec<RunId>,
    /// SHA-256 of the last link's artifact: the backup this proves.
    pub artifact_sha256: Sha256Digest,
    /// Per table.
    pub tables: Vec<ChainTableCheck>,
    /// Foreign keys re-added and so checked over every row (`table.constraint`).
    pub foreign_keys: Vec<String>,
    /// Immutability trigger → `tgenabled` after the restore.
    pub triggers: BTreeMap<String, String>,
    /// Whether everything matched.
    pub passed: bool,
    /// What did not.
    pub failures: Vec<String>,
    /// Step timings.
    pub timings: ChainTimings,
}

impl ChainProof {
    /// Pretty JSON with a trailing newline.
    pub fn to_json(&self) -> String {
        let mut s = serde_json::to_string_pretty(self).expect("a proof always serializes");
        s.push('\n');
        s
    }
}

fn ms(t: Instant) -> u64 {
    t.elapsed().as_millis() as u64
}

fn broken(link: &RunId, problem: impl Into<String>) -> Error {
    Error::Chain {
        link: link.to_string(),
        problem: problem.into(),
    }
}

/// Walks from `head` back to the chain's full backup, checking every link; returns the
/// links, full backup first. A missing, reordered or altered link is named.
pub fn verify_chain(head: &Path, signing_pin: &Fingerprint) -> Result<Vec<VerifiedArtifact>> {
    let dir = head.parent().unwrap_or(Path::new("."));
    let mut out: Vec<VerifiedArtifact> = Vec::new();
    let mut path = head.to_path_buf();
    let mut name = path
        .file_name()
        .and_then(|n| n.to_str())
        .and_then(|n| n.strip_suffix(".dump.pgp"))
        .and_then(|n| RunId::new(n).ok())
        .ok_or_else(|| Error::Manifest {
            path: head.to_path_buf(),
            problem: "is not a backup artifact (<name>.dump.pgp)".into(),
        })?;
    let mut expected: Option<(crate::chain::LinkRef, u32, RunId)> = None;
    loop {
        let manifest_path = manifest_path_for(&path)?;
        let (_, manifest_sha256) = verify_manifest(&manifest_path, signing_pin)
            .map_err(|e| broken(&name, format!("its manifest does not verify: {e}")))?;
        let verified = verify_artifact(&path, signing_pin)
            .map_err(|e| broken(&name, format!("it does not verify: {e}")))?;
        let chain = verified
            .manifest
            .chain
            .clone()
            .ok_or_else(|| broken(&name, "its manifest has no chain section"))?;
        if let Some((link, succ_seq, succ_chain)) = &expected {
            if link.manifest_sha256 != manifest_sha256 {
                return Err(broken(
                    &name,
                    format!(
                        "its manifest hashes to {manifest_sha256}, but its successor's link names {}: \
                         the link was replaced or altered",
                        link.manifest_sha256
                    ),
                ));
            }
            if link.artifact_sha256 != verified.manifest.sha256 {
                return Err(broken(
                    &name,
                    "its artifact is not the one its successor names",
                ));
            }
            if chain.seq + 1 != *succ_seq || &chain.chain != succ_chain {
                return Err(broken(
                    &name,
                    format!(
                        "it is link {} of chain {}, its successor link {succ_seq} of chain {succ_chain}: out of order",
                        chain.seq, chain.chain
                    ),
                ));
            }
        }
        let next = chain.predecessor.clone();
        let seq = chain.seq;
        let chain_name = chain.chain.clone();
        let kind = chain.kind;
        out.push(verified);
        match next {
            None => {
                if kind != LinkKind::Full || seq != 0 {
                    return Err(broken(
                        &name,
                        "it names no predecessor but is not a full backup",
                    ));
                }
                break;
            }
            Some(p) => {
                if kind != LinkKind::Incremental || seq == 0 {
                    return Err(broken(&name, "a full backup cannot have a predecessor"));
                }
                path = dir.join(artifact_file_name(&p.run_id));
                if !path.exists() {
                    return Err(broken(
                        &p.run_id,
                        format!(
                            "it is missing ({} does not exist), and {name} needs it",
                            path.display()
                        ),
                    ));
                }
                name = p.run_id.clone();
                expected = Some((p, seq, chain_name));
            }
        }
    }
    out.reverse();
    Ok(out)
}

/// A parsed piece of an increment's plaintext.
enum Piece {
    Table(TableName, Vec<String>),
    Data(Vec<u8>),
    EndTable,
    Commit,
}

/// Parses the framing of an increment's plaintext while it is decrypted and hands the
/// pieces to the thread that applies them. Refuses anything out of place.
struct FrameSink {
    tx: Option<mpsc::SyncSender<Piece>>,
    buf: Vec<u8>,
    magic_seen: bool,
    ended: bool,
    next_table: usize,
    in_table: bool,
    surface: Vec<TableName>,
    problem: Option<String>,
}

impl FrameSink {
    fn new(tx: mpsc::SyncSender<Piece>) -> Self {
        Self {
            tx: Some(tx),
            buf: Vec::new(),
            magic_seen: false,
            ended: false,
            next_table: 0,
            in_table: false,
            surface: mutation_surface(),
            problem: None,
        }
    }

    fn refuse(&mut self, why: String) -> io::Error {
        self.problem.get_or_insert(why.clone());
        self.tx = None;
        io::Error::new(io::ErrorKind::InvalidData, why)
    }

    fn send(&mut self, p: Piece) -> io::Result<()> {
        match &self.tx {
            Some(tx) if tx.send(p).is_ok() => Ok(()),
            _ => Err(io::Error::new(
                io::ErrorKind::BrokenPipe,
                "the restore stopped",
            )),
        }
    }

    fn frame(&mut self, tag: u8, payload: Vec<u8>) -> io::Result<()> {
        if self.ended {
            return Err(self.refuse("bytes after the end frame".into()));
        }
        match (tag, self.in_table) {
            (b'T', false) => {
                let text = String::from_utf8(payload)
                    .map_err(|_| self.refuse("a table frame is not UTF-8".into()))?;
                let mut parts = text.split('\t');
                let name = parts.next().unwrap_or("");
                let expected = self.surface.get(self.next_table).cloned();
                match expected {
                    Some(t) if t.to_string() == name => {
                        let cols: Vec<String> = parts.map(str::to_string).collect();
                        if cols.is_empty() {
                            return Err(self.refuse(format!("table {name} has no columns")));
                        }
                        self.next_table += 1;
                        self.in_table = true;
                        self.send(Piece::Table(t, cols))
                    }
                    _ => Err(self.refuse(format!(
                        "table frame {name:?} where {} was expected",
                        expected.map_or("the end".into(), |t| t.to_string())
                    ))),
                }
            }
            (b'D', true) => self.send(Piece::Data(payload)),
            (b'E', true) => {
                self.in_table = false;
                self.send(Piece::EndTable)
            }
            (b'Z', false) if self.next_table == self.surface.len() => {
                self.ended = true;
                Ok(())
            }
            (t, _) => Err(self.refuse(format!("frame {:?} out of place", t as char))),
        }
    }

    /// The whole plaintext was read: it must have ended properly.
    fn finished(&self) -> std::result::Result<(), String> {
        if let Some(p) = &self.problem {
            return Err(p.clone());
        }
        if !self.ended || !self.buf.is_empty() {
            return Err("the increment ends before its end frame".into());
        }
        Ok(())
    }
}

impl Write for FrameSink {
    fn write(&mut self, b: &[u8]) -> io::Result<usize> {
        self.buf.extend_from_slice(b);
        if !self.magic_seen {
            if self.buf.len() < MAGIC.len() {
                return Ok(b.len());
            }
            if &self.buf[..MAGIC.len()] != MAGIC {
                return Err(self.refuse("it is not a cutter increment".into()));
            }
            self.buf.drain(..MAGIC.len());
            self.magic_seen = true;
        }
        while self.buf.len() >= 5 {
            let len =
                u32::from_be_bytes([self.buf[1], self.buf[2], self.buf[3], self.buf[4]]) as usize;
            if len > MAX_FRAME {
                return Err(self.refuse(format!("a frame of {len} bytes")));
            }
            if self.buf.len() < 5 + len {
                break;
            }
            let tag = self.buf[0];
            let payload = self.buf[5..5 + len].to_vec();
            self.buf.drain(..5 + len);
            self.frame(tag, payload)?;
        }
        Ok(b.len())
    }
    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

impl Drop for FrameSink {
    fn drop(&mut self) {
        self.buf.fill(0);
    }
}

/// Applies the pieces in one transaction; commits only on [`Piece::Commit`].
fn apply_pieces(
    admin: &ConnConfig,
    rx: mpsc::Receiver<Piece>,
    link: &RunId,
) -> Result<BTreeMap<TableName, u64>> {
    let mut c = admin.connect().map_err(|e| Error::Connect {
        target: admin.redacted(),
        detail: e.to_string(),
    })?;
    let mut tx = c
        .transaction()
        .map_err(|e| Error::sql("starting the increment's transaction", e))?;
    tx.batch_execute(
        "SET LOCAL session_replication_role = replica; SET LOCAL TimeZone = 'UTC'; \
         SET LOCAL DateStyle = 'ISO, YMD'",
    )
    .map_err(|e| Error::sql("preparing the increment's transaction", e))?;
    let stopped = || {
        broken(
            link,
            "the increment was not applied: its decryption or check failed",
        )
    };
    let mut counts = BTreeMap::new();
    loop {
        match rx.recv() {
            Ok(Piece::Table(table, columns)) => {
                let q = table.quoted();
                let delete = match class_of(&table) {
                    SurfaceClass::ImmutableOnceEnacted => Some(format!(
                        "DELETE FROM {q} WHERE lifecycle_status <> 'enacted'"
                    )),
                    SurfaceClass::Mutable => Some(format!("DELETE FROM {q}")),
                    SurfaceClass::AppendOnly => None,
                };
                if let Some(d) = delete {
                    tx.batch_execute(&d).map_err(|e| {
                        Error::sql(format!("removing the replaceable rows of {table}"), e)
                    })?;
                }
                let cols: Vec<String> = columns.iter().map(|c| cutter_pg::quote_ident(c)).collect();
                let mut w = tx
                    .copy_in(format!("COPY {q} ({}) FROM STDIN", cols.join(", ")).as_str())
                    .map_err(|e| Error::sql(format!("loading the increment of {table}"), e))?;
                loop {
                    match rx.recv() {
                        Ok(Piece::Data(d)) => w.write_all(&d).map_err(|e| {
                            Error::io("loading the increment of", Path::new(&table.to_string()), e)
                        })?,
                        Ok(Piece::EndTable) => break,
                        _ => return Err(stopped()),
                    }
                }
                let n = w
                    .finish()
                    .map_err(|e| Error::sql(format!("loading the increment of {table}"), e))?;
                counts.insert(table, n);
            }
            Ok(Piece::Commit) => {
                tx.commit()
                    .map_err(|e| Error::sql("committing the increment", e))?;
                return Ok(counts);
            }
            Ok(_) | Err(_) => return Err(stopped()),
        }
    }
}

/// Decrypts the verified increment and applies it through `admin` (a superuser of a
/// throwaway server): see the module docs. Returns the rows loaded per table.
pub(crate) fn apply_increment(
    admin: &ConnConfig,
    verified: &VerifiedArtifact,
    secret: &SecretKey,
    passphrase: &Passphrase,
) -> Result<BTreeMap<TableName, u64>> {
    let link = verified.manifest.run_id.clone();
    let (piece_tx, piece_rx) = mpsc::sync_channel::<Piece>(8);
    std::thread::scope(|s| {
        let link2 = link.clone();
        let db = s.spawn(move || apply_pieces(admin, piece_rx, &link2));
        let mut reader = verified.reader()?;
        let mut sink = FrameSink::new(piece_tx);
        let decrypted = cutter_openpgp::decrypt(secret, passphrase, &mut reader, &mut sink);
        let verdict = match decrypted {
            Ok(_) => sink
                .finished()
                .map_err(|p| broken(&link, p))
                .and_then(|()| reader.check()),
            Err(e) => Err(match sink.problem.clone() {
                Some(p) => broken(&link, p),
                None => Error::Decrypt {
                    path: verified.path.clone(),
                    source: e,
                },
            }),
        };
        if verdict.is_ok() {
            let _ = sink.send(Piece::Commit);
        }
        drop(sink);
        let applied = db.join().expect("the increment's loader does not panic");
        verdict?;
        applied
    })
}

/// Tables, foreign keys, triggers and failures of a chain proof's checks.
type Checked = (
    Vec<ChainTableCheck>,
    Vec<String>,
    BTreeMap<String, String>,
    Vec<String>,
);

/// Runs the chain proof ending at `cfg`'s head: see the module docs. Returns the proof
/// when it passed; when the restored data does not match, the record (if asked for) is
/// written and [`Error::Chain`] names the head and every difference.
pub fn chain_proof(cfg: &ChainProofConfig) -> Result<ChainProof> {
    let started = Instant::now();
    let mut timings = ChainTimings::default();
    let links = verify_chain(&cfg.head, &cfg.signing_pin)?;
    timings.verify_ms = ms(started);
    let full = &links[0];
    let last = &links[links.len() - 1];
    let head_chain = last
        .manifest
        .chain
        .clone()
        .expect("verified links have a chain section");
    if let Some((path, _)) = &cfg.record {
        if std::fs::symlink_metadata(path).is_ok() {
            return Err(Error::RecordExists { path: path.clone() });
        }
    }
    let secret = load_secret_key(&cfg.secret_key)?;
    let passphrase = cfg.passphrase.read(&|k| std::env::var(k).ok())?;
    restore::probe_key(full, &secret, &passphrase)?;
    let pg_restore = PgProgram::resolve(None, cfg.pg_bindir.as_deref(), "pg_restore")?;

    let t = Instant::now();
    let (prepared, _) = restore::prepare(
        &RestoreTarget::Throwaway,
        full.manifest.server.system_identifier,
    )?;
    timings.cluster_start_ms = ms(t);
    let mut role = None;
    let outcome = (|| -> Result<Checked> {
        let admin = prepared.restore_config()?;
        let t = Instant::now();
        let mut pt = ProofTimings::default();
        // The foreign keys are added once, after the last increment (below).
        let (as_role, _, foreign_keys) = restore::load_full(
            &admin,
            full,
            &secret,
            &passphrase,
            &pg_restore,
            &mut pt,
            t,
            &mut role,
            crate::sandbox::Selection::FullWithoutForeignKeys,
            &mut |_| {},
        )?;
        timings.full_restore_ms = ms(t);
        let t = Instant::now();
        let mut failures = Vec::new();
        for link in &links[1..] {
            let counts = apply_increment(&admin, link, &secret, &passphrase)?;
            let chain = link.manifest.chain.as_ref().expect("verified");
            for (table, ct) in &chain.tables {
                let loaded = counts.get(table).copied().unwrap_or(0);
                if loaded != ct.increment.rows {
                    failures.push(format!(
                        "link {}: {table}: {loaded} rows loaded, its manifest says {}",
                        link.manifest.run_id, ct.increment.rows
                    ));
                }
            }
        }
        timings.increments_ms = ms(t);
        let t = Instant::now();
        let mut tables = Vec::new();
        {
            let mut c = as_role.connect().map_err(|e| Error::Connect {
                target: as_role.redacted(),
                detail: e.to_string(),
            })?;
            let mut tx = c
                .build_transaction()
                .isolation_level(postgres::IsolationLevel::RepeatableRead)
                .read_only(true)
                .start()
                .map_err(|e| Error::sql("starting the check transaction", e))?;
            for table in mutation_surface() {
                let Some(expected) = head_chain.tables.get(&table).map(|t| t.total) else {
                    failures.push(format!("{table}: not in the last manifest"));
                    continue;
                };
                let (content, actual, _) = digest_rows(&mut tx, &table, "true")?;
                let ok = actual == expected;
                if !ok {
                    failures.push(format!(
                        "{table}: restored {actual}, the last manifest says {expected}"
                    ));
                }
                tables.push(ChainTableCheck {
                    table,
                    expected,
                    actual,
                    content,
                    ok,
                });
            }
        }
        let mut c = admin.connect().map_err(|e| Error::Connect {
            target: admin.redacted(),
            detail: e.to_string(),
        })?;
        let triggers = cutter_pg::surface::trigger_states(&mut c).map_err(|source| Error::Pg {
            what: "reading the immutability triggers of the restored database",
            source,
        })?;
        for (name, _) in cutter_pg::schema::IMMUTABILITY_TRIGGERS {
            if triggers.get(name).map(String::as_str) != Some("O") {
                failures.push(format!(
                    "trigger {name} is missing or disabled after the restore"
                ));
            }
        }
        let fks = add_foreign_keys(&mut c, &foreign_keys, &mut failures);
        timings.check_ms = ms(t);
        Ok((tables, fks, triggers, failures))
    })();
    let teardown = prepared.teardown(role.as_deref());
    timings.total_ms = ms(started);
    let (tables, foreign_keys, triggers, mut failures) = outcome?;
    if let Err(e) = teardown {
        failures.push(format!("teardown failed: {e}"));
    }
    let proof = ChainProof {
        format: CHAIN_PROOF_FORMAT.into(),
        chain: head_chain.chain.clone(),
        links: links.iter().map(|l| l.manifest.run_id.clone()).collect(),
        artifact_sha256: last.manifest.sha256,
        tables,
        foreign_keys,
        triggers,
        passed: failures.is_empty(),
        failures,
        timings,
    };
    conclude(proof, cfg.record.as_ref(), &last.manifest.run_id)
}

/// Records the proof (if asked for) and returns it if it passed, else [`Error::Chain`]
/// naming `link` and every failure.
fn conclude(
    proof: ChainProof,
    record: Option<&(PathBuf, ManifestSigner)>,
    link: &RunId,
) -> Result<ChainProof> {
    if let Some((path, signer)) = record {
        write_signed_record(path, &proof.to_json(), signer)?;
    }
    if proof.passed {
        tracing::info!(format = %proof.format, chain = %proof.chain, link = %link, "proof passed");
        Ok(proof)
    } else {
        Err(broken(link, proof.failures.join("; ")))
    }
}

/// Adds every foreign key of the reference schema between surface tables (left out of
/// the full artifact's restore), which checks every row once; returns the keys checked,
/// and adds a failure for each that does not hold.
fn add_foreign_keys(
    c: &mut postgres::Client,
    keys: &[restore::ForeignKey],
    failures: &mut Vec<String>,
) -> Vec<String> {
    let mut out = Vec::new();
    for k in keys {
        let (table, name) = (&k.table, &k.name);
        let q = format!("ALTER TABLE {table} ADD CONSTRAINT {name} {}", k.definition);
        if let Err(e) = c.batch_execute(&q) {
            failures.push(format!(
                "foreign key {name} of {table} does not hold: {}",
                e.as_db_error()
                    .map_or(e.to_string(), |d| d.message().to_string())
            ));
        }
        out.push(format!("{table}.{name}"));
    }
    out
}

/// The value of [`ChainProof::format`] for an increment proof.
pub const INCREMENT_PROOF_FORMAT: &str = "cutter-increment-proof/1";

/// The increment proof, O(run): the increment's own signature and SHA-256; its signed
/// link (the predecessor's manifest is signed by the pinned key and hashes to the value
/// the link names, and the predecessor has a passed proof record beside it); the
/// increment loaded into a throwaway cluster holding the reference schema (see the
/// module docs); each table's rows, ordered content digest and set digests equal the
/// manifest's. Referential integrity across links is the chain proof's.
pub fn increment_proof(cfg: &ChainProofConfig) -> Result<ChainProof> {
    let started = Instant::now();
    let mut timings = ChainTimings::default();
    let verified = verify_artifact(&cfg.head, &cfg.signing_pin)?;
    let name = verified.manifest.run_id.clone();
    let chain = verified
        .manifest
        .chain
        .clone()
        .ok_or_else(|| broken(&name, "its manifest has no chain section"))?;
    let Some(link) = chain.predecessor.clone() else {
        return Err(broken(
            &name,
            "it is a full backup: prove it with the restore proof",
        ));
    };
    let dir = cfg.head.parent().unwrap_or(Path::new("."));
    let pred_manifest = dir.join(crate::manifest::manifest_file_name(&link.run_id));
    let (pred, pred_sha) = verify_manifest(&pred_manifest, &cfg.signing_pin)
        .map_err(|e| broken(&link.run_id, format!("its manifest does not verify: {e}")))?;
    if pred_sha != link.manifest_sha256 || pred.sha256 != link.artifact_sha256 {
        return Err(broken(
            &link.run_id,
            format!("it is not the predecessor {name} names: the link was replaced or altered"),
        ));
    }
    if !is_proven(dir, &link.run_id, &cfg.signing_pin)? {
        return Err(broken(
            &link.run_id,
            "it has no passed proof record signed by the backup signing key: prove the chain \
             (`cutter backup restore-proof --chain`)",
        ));
    }
    if let Some((path, _)) = &cfg.record {
        if std::fs::symlink_metadata(path).is_ok() {
            return Err(Error::RecordExists { path: path.clone() });
        }
    }
    timings.verify_ms = ms(started);
    let secret = load_secret_key(&cfg.secret_key)?;
    let passphrase = cfg.passphrase.read(&|k| std::env::var(k).ok())?;

    let t = Instant::now();
    let (prepared, _) = restore::prepare(
        &RestoreTarget::Throwaway,
        verified.manifest.server.system_identifier,
    )?;
    timings.cluster_start_ms = ms(t);
    let outcome = (|| -> Result<(Vec<ChainTableCheck>, Vec<String>)> {
        let admin = prepared.restore_config()?;
        let t = Instant::now();
        let mut c = admin.connect().map_err(|e| Error::Connect {
            target: admin.redacted(),
            detail: e.to_string(),
        })?;
        restore::install_reference_schema(&mut c)?;
        timings.full_restore_ms = ms(t);
        let t = Instant::now();
        apply_increment(&admin, &verified, &secret, &passphrase)?;
        timings.increments_ms = ms(t);
        let t = Instant::now();
        let mut failures = Vec::new();
        let mut tables = Vec::new();
        let mut tx = c
            .transaction()
            .map_err(|e| Error::sql("starting the check transaction", e))?;
        for table in mutation_surface() {
            let (Some(want), Some(stat)) = (
                chain.tables.get(&table),
                verified.manifest.tables.get(&table),
            ) else {
                failures.push(format!("{table}: not in the manifest"));
                continue;
            };
            let (content, actual, replaceable) = digest_rows(&mut tx, &table, "true")?;
            let ok =
                actual == want.increment && replaceable == want.replaceable && &content == stat;
            if !ok {
                failures.push(format!(
                    "{table}: loaded {actual} ({} replaceable), content {}; the manifest says {} ({} replaceable), content {}",
                    replaceable.rows, content.digest, want.increment, want.replaceable.rows, stat.digest
                ));
            }
            tables.push(ChainTableCheck {
                table,
                expected: want.increment,
                actual,
                content,
                ok,
            });
        }
        timings.check_ms = ms(t);
        Ok((tables, failures))
    })();
    let teardown = prepared.teardown(None);
    timings.total_ms = ms(started);
    let (tables, mut failures) = outcome?;
    if let Err(e) = teardown {
        failures.push(format!("teardown failed: {e}"));
    }
    let proof = ChainProof {
        format: INCREMENT_PROOF_FORMAT.into(),
        chain: chain.chain.clone(),
        links: vec![link.run_id.clone(), name.clone()],
        artifact_sha256: verified.manifest.sha256,
        tables,
        foreign_keys: Vec::new(),
        triggers: BTreeMap::new(),
        passed: failures.is_empty(),
        failures,
        timings,
    };
    conclude(proof, cfg.record.as_ref(), &name)
}
