//! `pre_write_backup`: pg_dump of exactly the tables of the mutation surface, run as
//! the read-only role in a snapshot exported by a REPEATABLE READ transaction, streamed
//! through OpenPGP encryption and SHA-256 into `<backups>/<name>.dump.pgp` (temp file,
//! fsync, no-replace link, directory fsync), with a manifest beside it.
//!
//! Invariants: plaintext never touches disk (it lives in a pipe and in a few fixed-size
//! buffers); nothing is left under the final names unless pg_dump exited 0 and every
//! byte was encrypted, written and synced; memory is bounded whatever the table sizes.
//!
//! Threads: the caller's thread runs `cutter_openpgp::encrypt_hashed`, which pulls the
//! dump from [`DumpSource`]: pg_dump's stdout read into pooled 256 KiB buffers, each
//! handed to the row-digest thread (the manifest's per-table digests, see
//! [`crate::rowdigest`]) before the encryption reads it. The encryption interleaves
//! AES-256-CFB, the SHA-1 MDC and the SHA-256 of the message it writes (the artifact's
//! sha256); the ciphertext goes in pooled buffers to the writer thread, which writes it
//! and starts its writeback. A fourth thread drains pg_dump's stderr. Every channel is
//! bounded and every buffer recycled.

use std::collections::BTreeMap;
use std::fs::File;
use std::io::{self, Read, Write};
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::{mpsc, Arc};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use cutter_core::{mutation_surface, RunId, Sha256Digest, TableName, TableStat, UnixTime};
use cutter_openpgp::Recipient;
use cutter_pg::config::ConnConfig;
use postgres::{GenericClient, IsolationLevel};

use crate::error::{Error, Result};
use crate::keys::ManifestSigner;
use crate::manifest::{
    artifact_file_name, manifest_file_name, signature_path_for, DumpCompression, DumpInfo,
    EncryptionInfo, Manifest, ServerInfo, SignerInfo, MANIFEST_FORMAT,
};
use crate::programs::{command, describe_status, ChildGuard, PgProgram, StderrCollector};
use crate::rowdigest::RowDigest;
use crate::streamstats::{self, StreamStats};
use cutter_fs::{self as atomic, PartialFile, Replace};

// Every handoff between the stream's threads (pg_dump's pipe, the digest thread, the
// writer) can wake a thread on the other core and costs a context switch or two; on a
// 2-core machine the switches, and the idle gaps they leave, showed as wall time
// (`cargo xtask bench backup`). Large buffers keep the handoffs few.

/// Size of each pooled plaintext buffer (one read from pg_dump, shared with the digest
/// thread).
pub(crate) const BUFFER: usize = 512 * 1024;
/// A read returns once it has this much, even if the buffer has room.
const READ_ENOUGH: usize = 256 * 1024;
/// Plaintext buffers in flight between the threads of the stream (each side).
const POOL: usize = 6;
/// Size of each ciphertext buffer handed to the artifact writer (a multiple of
/// `DIRECT_ALIGN`).
const WRITE_BUFFER: usize = 1 << 20;
/// Ciphertext buffers in flight to the artifact writer.
const WRITE_POOL: usize = 3;
/// pg_dump's stdout pipe size.
const PIPE_SIZE: usize = 1 << 20;
/// Read from pg_dump's pipe once this much is waiting…
const BATCH_BYTES: u64 = 384 * 1024;
/// …checking every…
const BATCH_NAP: Duration = Duration::from_micros(250);
/// …for at most this long.
const BATCH_WAIT: Duration = Duration::from_millis(4);
/// Start writeback of the artifact every this many bytes (when not writing directly).
const WRITEBACK: u64 = 16 << 20;

/// The digest method recorded in manifests.
pub const DIGEST_METHOD: &str =
    "cutter-pg canonical v1: sha256(sha256(r::text) ... in id order), UTF-8, TimeZone=UTC";

/// The message format recorded in manifests.
pub(crate) const SCHEME: &str =
    "OpenPGP PKESKv3 + SEIPDv1 (MDC), AES-256, literal data, no OpenPGP compression";

/// What a backup needs. Safe defaults: the surface tables, uncompressed custom format,
/// pg_dump from `pg_config --bindir`, a 60 s lock wait.
#[derive(Clone)]
pub struct BackupConfig {
    backups_dir: PathBuf,
    name: RunId,
    recipient: Recipient,
    signer: ManifestSigner,
    pg: ConnConfig,
    pg_dump: Option<PathBuf>,
    pg_bindir: Option<PathBuf>,
    compression: DumpCompression,
    lock_wait_timeout: Duration,
    cross_check_digests: bool,
}

impl std::fmt::Debug for BackupConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("BackupConfig")
            .field("backups_dir", &self.backups_dir)
            .field("name", &self.name)
            .field("recipient", &self.recipient)
            .field("signer", &self.signer)
            .field("pg", &self.pg.redacted())
            .field("pg_dump", &self.pg_dump)
            .field("pg_bindir", &self.pg_bindir)
            .field("compression", &self.compression)
            .field("lock_wait_timeout", &self.lock_wait_timeout)
            .finish()
    }
}

impl BackupConfig {
    /// A backup named `name` (the run id) into `backups_dir` (the state directory's
    /// `backups/`), encrypted to `recipient` (already pinned: see
    /// [`load_recipient`](crate::load_recipient)), its manifest signed by `signer`
    /// (already pinned: see [`ManifestSigner::load`]), reading the database as `pg`,
    /// which must be the read-only role.
    pub fn new(
        backups_dir: impl Into<PathBuf>,
        name: RunId,
        recipient: Recipient,
        signer: ManifestSigner,
        pg: ConnConfig,
    ) -> Self {
        Self {
            backups_dir: backups_dir.into(),
            name,
            recipient,
            signer,
            pg,
            pg_dump: None,
            pg_bindir: None,
            compression: DumpCompression::None,
            lock_wait_timeout: Duration::from_secs(60),
            cross_check_digests: false,
        }
    }

    /// Uses this pg_dump binary instead of the one in `pg_config --bindir`.
    pub fn pg_dump(mut self, path: impl Into<PathBuf>) -> Self {
        self.pg_dump = Some(path.into());
        self
    }

    /// Looks for pg_dump in this directory (`[backup] pg_bindir`) instead of asking
    /// `pg_config --bindir`; `None` asks it.
    pub fn pg_bindir(mut self, dir: Option<PathBuf>) -> Self {
        self.pg_bindir = dir;
        self
    }

    /// pg_dump's compression. The default, none, is the fastest; see the crate docs.
    pub fn compression(mut self, c: DumpCompression) -> Self {
        self.compression = c;
        self
    }

    /// How long pg_dump waits for its ACCESS SHARE locks before giving up.
    pub fn lock_wait_timeout(mut self, d: Duration) -> Self {
        self.lock_wait_timeout = d;
        self
    }

    /// Also computes every digest on the server and requires it to equal the one taken
    /// from the stream (slower; for tests and audits).
    pub fn cross_check_digests(mut self, yes: bool) -> Self {
        self.cross_check_digests = yes;
        self
    }

    pub(crate) fn backups_dir(&self) -> &Path {
        &self.backups_dir
    }
    pub(crate) fn name(&self) -> &RunId {
        &self.name
    }
    pub(crate) fn signer(&self) -> &ManifestSigner {
        &self.signer
    }
    pub(crate) fn pg(&self) -> &ConnConfig {
        &self.pg
    }
    pub(crate) fn recipient(&self) -> &Recipient {
        &self.recipient
    }

    /// The artifact path this configuration writes.
    pub fn artifact_path(&self) -> PathBuf {
        self.backups_dir.join(artifact_file_name(&self.name))
    }

    /// The manifest path this configuration writes.
    pub fn manifest_path(&self) -> PathBuf {
        self.backups_dir.join(manifest_file_name(&self.name))
    }

    /// The manifest signature path this configuration writes.
    pub fn signature_path(&self) -> PathBuf {
        signature_path_for(&self.manifest_path())
    }
}

/// A finished, durable backup.
#[derive(Clone, Debug, PartialEq, Eq)]
#[must_use = "record the backup facts in the run context"]
pub struct BackupArtifact {
    /// `<backups>/<name>.dump.pgp`.
    pub path: PathBuf,
    /// `<backups>/<name>.manifest.json`.
    pub manifest_path: PathBuf,
    /// `<backups>/<name>.manifest.json.sig`.
    pub signature_path: PathBuf,
    /// The manifest.
    pub manifest: Manifest,
}

/// The ciphertext side of the stream: a thread that writes ciphertext buffers (the
/// encryptor hashes them) to the artifact's temp file. Where the file system allows it,
/// whole buffers are written with `O_DIRECT`: no copy into the page cache, no writeback
/// work left for later, and the backup does not push the database's pages out of the
/// cache. Elsewhere (and for the last, shorter buffer) writes go through the page cache,
/// with writeback started every `WRITEBACK` bytes so the final fsync is short.
pub(crate) struct FileWriter {
    handle: Option<std::thread::JoinHandle<io::Result<Written>>>,
}

/// What the artifact writer wrote.
struct Written {
    file: File,
    /// Octets written.
    len: u64,
    /// Of them, octets written with `O_DIRECT`.
    direct: u64,
}

/// Alignment of the artifact's direct writes: their buffers, lengths and file offsets
/// (the largest logical block size of Linux block devices).
const DIRECT_ALIGN: usize = 4096;

/// A pooled ciphertext buffer whose `WRITE_BUFFER` usable octets start at an address aligned
/// for direct writes.
struct Aligned {
    buf: Vec<u8>,
    at: usize,
    len: usize,
}

impl Aligned {
    fn new() -> Self {
        let buf = vec![0u8; WRITE_BUFFER + DIRECT_ALIGN];
        // The address only picks the offset; the Vec is never grown, so it stays put.
        let at = (DIRECT_ALIGN - buf.as_ptr() as usize % DIRECT_ALIGN) % DIRECT_ALIGN;
        Self { buf, at, len: 0 }
    }

    fn bytes(&self) -> &[u8] {
        &self.buf[self.at..self.at + self.len]
    }
}

/// Turns `O_DIRECT` on or off for `file`.
fn set_direct(file: &File, on: bool) -> io::Result<()> {
    use rustix::fs::OFlags;
    let flags = rustix::fs::fcntl_getfl(file)?;
    let flags = if on {
        flags | OFlags::DIRECT
    } else {
        flags - OFlags::DIRECT
    };
    rustix::fs::fcntl_setfl(file, flags)?;
    Ok(())
}

/// Writes `bytes` whole, leaving direct I/O (for good) if the file refuses it.
fn write_all_direct(file: &mut File, direct: &mut bool, bytes: &[u8]) -> io::Result<()> {
    if *direct && !bytes.len().is_multiple_of(DIRECT_ALIGN) {
        *direct = false;
        set_direct(file, false)?;
    }
    let mut done = 0;
    while done < bytes.len() {
        match file.write(&bytes[done..]) {
            Ok(0) => return Err(io::ErrorKind::WriteZero.into()),
            Ok(n) => done += n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e)
                if *direct && e.raw_os_error() == Some(rustix::io::Errno::INVAL.raw_os_error()) =>
            {
                *direct = false;
                set_direct(file, false)?;
            }
            Err(e) => return Err(e),
        }
    }
    Ok(())
}

/// Ciphertext bytes are collected into pooled buffers and handed to the writer.
pub(crate) struct ToWriter {
    cur: Aligned,
    full: mpsc::SyncSender<Aligned>,
    empty: mpsc::Receiver<Aligned>,
}

fn writer_gone() -> io::Error {
    io::Error::new(io::ErrorKind::BrokenPipe, "the artifact writer stopped")
}

impl ToWriter {
    fn ship(&mut self) -> io::Result<()> {
        let next = self.empty.recv().map_err(|_| writer_gone())?;
        let full = std::mem::replace(&mut self.cur, next);
        self.full.send(full).map_err(|_| writer_gone())
    }
}

impl Write for ToWriter {
    fn write(&mut self, b: &[u8]) -> io::Result<usize> {
        let c = &mut self.cur;
        let n = (WRITE_BUFFER - c.len).min(b.len());
        c.buf[c.at + c.len..c.at + c.len + n].copy_from_slice(&b[..n]);
        c.len += n;
        if c.len == WRITE_BUFFER {
            self.ship()?;
        }
        Ok(n)
    }
    fn flush(&mut self) -> io::Result<()> {
        if self.cur.len > 0 {
            self.ship()?;
        }
        Ok(())
    }
}

impl FileWriter {
    pub(crate) fn spawn(mut file: File) -> (FileWriter, ToWriter) {
        let (full_tx, full_rx) = mpsc::sync_channel::<Aligned>(WRITE_POOL);
        let (empty_tx, empty_rx) = mpsc::sync_channel::<Aligned>(WRITE_POOL + 1);
        for _ in 0..WRITE_POOL {
            let _ = empty_tx.send(Aligned::new());
        }
        let handle = std::thread::Builder::new()
            .name("artifact-writer".into())
            .spawn(move || {
                let mut direct = set_direct(&file, true).is_ok();
                let mut len = 0u64;
                let mut direct_len = 0u64;
                let mut advised = 0u64;
                for mut buf in full_rx {
                    write_all_direct(&mut file, &mut direct, buf.bytes())?;
                    len += buf.len as u64;
                    if direct {
                        direct_len = len;
                        advised = len;
                    } else if len - advised >= WRITEBACK {
                        // Starts writeback of what was written (and lets the kernel
                        // drop those pages once clean). Advice only: errors ignored.
                        let _ = rustix::fs::fadvise(
                            &file,
                            advised,
                            std::num::NonZeroU64::new(len - advised),
                            rustix::fs::Advice::DontNeed,
                        );
                        advised = len;
                    }
                    buf.len = 0;
                    let _ = empty_tx.send(buf);
                }
                Ok(Written {
                    file,
                    len,
                    direct: direct_len,
                })
            })
            .expect("spawning the artifact writer thread");
        (
            FileWriter {
                handle: Some(handle),
            },
            ToWriter {
                cur: Aligned::new(),
                full: full_tx,
                empty: empty_rx,
            },
        )
    }

    /// [`finish`](Self::finish), then syncs the file (at `path`, for errors): the
    /// artifact's sha256 and size, as the encryptor hashed and counted the message,
    /// once the file holds exactly that many octets.
    pub(crate) fn finish_synced(
        self,
        path: &Path,
        message: &cutter_openpgp::Encrypted,
    ) -> Result<(Sha256Digest, u64)> {
        let Written {
            file,
            len: size,
            direct,
        } = self.join().map_err(|e| Error::io("writing", path, e))?;
        tracing::debug!(
            path = %path.display(),
            octets = size,
            direct_octets = direct,
            "artifact written (direct_octets: written with O_DIRECT, past the page cache)"
        );
        if size != message.message_bytes {
            return Err(Error::io(
                "writing",
                path,
                io::Error::other(format!(
                    "{size} octets written of a {}-octet message",
                    message.message_bytes
                )),
            ));
        }
        file.sync_all().map_err(|e| Error::io("syncing", path, e))?;
        Ok((message.message_sha256, size))
    }

    /// Waits for the writer (its sender must be gone) and returns the file and the
    /// size of what was written, or the write error.
    pub(crate) fn finish(self) -> io::Result<(File, u64)> {
        self.join().map(|w| (w.file, w.len))
    }

    fn join(mut self) -> io::Result<Written> {
        match self.handle.take().map(|h| h.join()) {
            Some(Ok(r)) => r,
            _ => Err(io::Error::other("the artifact writer thread failed")),
        }
    }
}

impl Drop for FileWriter {
    fn drop(&mut self) {
        if let Some(h) = self.handle.take() {
            let _ = h.join();
        }
    }
}

/// What the server says about itself.
pub(crate) struct Server {
    pub(crate) version: String,
    pub(crate) version_num: u32,
    pub(crate) role: String,
    pub(crate) database: String,
}

impl Server {
    /// What a manifest records of the server, with its system identifier.
    pub(crate) fn into_info(self, system_identifier: cutter_core::SystemIdentifier) -> ServerInfo {
        ServerInfo {
            version: self.version,
            version_num: self.version_num,
            system_identifier,
            database: self.database,
            role: self.role,
        }
    }
}

pub(crate) fn server_info(c: &mut impl GenericClient) -> Result<Server> {
    let row = c
        .query_one(
            "SELECT current_setting('server_version'), current_setting('server_version_num')::int4, \
                    current_user::text, current_database()::text",
            &[],
        )
        .map_err(|e| Error::sql("reading the server version", e))?;
    let num: i32 = row.get(1);
    Ok(Server {
        version: row.get(0),
        version_num: u32::try_from(num).unwrap_or(0),
        role: row.get(2),
        database: row.get(3),
    })
}

/// The manifest's encryption section for `cfg`'s recipient.
pub(crate) fn encryption_info(cfg: &BackupConfig) -> EncryptionInfo {
    EncryptionInfo {
        recipient: cfg.recipient.fingerprint(),
        encryption_key: cfg.recipient.encryption_key_fingerprint(),
        scheme: SCHEME.into(),
    }
}

/// The manifest's signer section for `cfg`'s signing key.
pub(crate) fn signer_info(cfg: &BackupConfig) -> SignerInfo {
    SignerInfo {
        fingerprint: cfg.signer.fingerprint(),
        public_key: cfg.signer.public_key_armored().to_string(),
    }
}

/// Refuses a source role with more than read access (see [`crate::privileges`]) and
/// returns the source's system identifier.
pub(crate) fn checked_source(
    client: &mut postgres::Client,
) -> Result<cutter_core::SystemIdentifier> {
    let problems = crate::privileges::problems(client)?;
    if !problems.is_empty() {
        return Err(Error::Role { problems });
    }
    cutter_pg::surface::system_identifier(client).map_err(|source| Error::Pg {
        what: "reading the source's system identifier",
        source,
    })
}

/// A REPEATABLE READ, read-only transaction: the snapshot a backup reads.
pub(crate) fn snapshot_transaction(
    client: &mut postgres::Client,
) -> Result<postgres::Transaction<'_>> {
    client
        .build_transaction()
        .isolation_level(IsolationLevel::RepeatableRead)
        .read_only(true)
        .start()
        .map_err(|e| Error::sql("starting the snapshot transaction", e))
}

pub(crate) fn now() -> UnixTime {
    UnixTime(
        SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.as_secs() as i64),
    )
}

/// The pg_dump arguments (no secrets: the connection comes from the environment).
pub(crate) fn pg_dump_args(
    tables: &[TableName],
    snapshot: &str,
    compression: DumpCompression,
    lock_wait: Duration,
) -> Vec<String> {
    let mut args = vec![
        "--format=custom".to_string(),
        format!("--compress={}", compression.arg()),
        "--no-password".into(),
        "--strict-names".into(),
        format!("--snapshot={snapshot}"),
        format!("--lock-wait-timeout={}", lock_wait.as_millis().max(1)),
    ];
    args.extend(tables.iter().map(|t| format!("--table={}", t.quoted())));
    args
}

/// Takes the pre-write backup: see the module docs. `progress` is called with the number
/// of dump bytes encrypted so far, after every buffer.
///
/// Refuses before pg_dump starts if the backups directory is missing or unwritable, if
/// the artifact or manifest already exists, or if pg_dump is older than the server. The
/// recipient was pinned when the [`Recipient`] was made. On any failure nothing is left
/// under the final names and the temp file is removed; a pg_dump failure's error
/// carries its stderr.
pub fn pre_write_backup(
    cfg: &BackupConfig,
    progress: &mut dyn FnMut(u64),
) -> Result<BackupArtifact> {
    full_backup(cfg, None, progress)
}

/// [`pre_write_backup`]; with `chain_reason`, the backup starts a chain (its manifest
/// gets a `chain` section: watermark snapshot, DDL audit mark, set digests) and the
/// reason is why it is full.
pub(crate) fn full_backup(
    cfg: &BackupConfig,
    chain_reason: Option<String>,
    progress: &mut dyn FnMut(u64),
) -> Result<BackupArtifact> {
    let started = Instant::now();
    let tables = mutation_surface();
    let dir = &cfg.backups_dir;
    atomic::check_writable_dir(dir)?;
    let artifact_name = artifact_file_name(&cfg.name);
    let manifest_name = manifest_file_name(&cfg.name);
    let signature_name = format!("{manifest_name}.sig");
    atomic::refuse_existing(&dir.join(&artifact_name))?;
    atomic::refuse_existing(&dir.join(&manifest_name))?;
    atomic::refuse_existing(&dir.join(&signature_name))?;
    let pg_dump = PgProgram::resolve(cfg.pg_dump.as_deref(), cfg.pg_bindir.as_deref(), "pg_dump")?;

    let mut client = cfg.pg.connect().map_err(|e| Error::Connect {
        target: cfg.pg.redacted(),
        detail: e.to_string(),
    })?;
    let server = server_info(&mut client)?;
    let server_major = server.version_num / 10_000;
    if pg_dump.major < server_major {
        return Err(Error::PgDumpTooOld {
            path: pg_dump.path.clone(),
            client: pg_dump.version.clone(),
            server: server.version.clone(),
            server_major,
        });
    }
    let system_identifier = checked_source(&mut client)?;

    // The snapshot: REPEATABLE READ, read only; exporting it is the first statement, so
    // the transaction's snapshot is the exported one.
    let mut tx = snapshot_transaction(&mut client)?;
    let snapshot: String = tx
        .query_one("SELECT pg_catalog.pg_export_snapshot()", &[])
        .map_err(|e| Error::sql("exporting the snapshot (pg_export_snapshot())", e))?
        .get(0);
    let plan = if cfg.compression == DumpCompression::None {
        streamstats::plan(&mut tx, &tables, server.version_num)?
    } else {
        tables
            .iter()
            .map(|t| (t.clone(), Err("pg_dump compresses the data".to_string())))
            .collect()
    };

    let (partial, file) = PartialFile::create(dir, &artifact_name)?;
    // Ciphertext goes to a writer thread (direct writes, or early writeback).
    let (writer, mut sink) = FileWriter::spawn(file);

    // pg_dump, connected exactly as cfg.pg says, secrets only in a private passfile.
    let env = cfg.pg.child_env().map_err(|e| Error::Connect {
        target: cfg.pg.redacted(),
        detail: format!("preparing pg_dump's environment: {e}"),
    })?;
    let mut cmd = command(&pg_dump.path);
    env.apply(&mut cmd);
    // Dropped (removing the private password file) as soon as pg_dump has produced
    // output, i.e. is connected: a crash later leaves no password file behind.
    let env = Some(env);
    // The canonical digest prints timestamptz in UTC; so must pg_dump's session.
    cmd.env("PGTZ", "UTC");
    cmd.args(pg_dump_args(
        &tables,
        &snapshot,
        cfg.compression,
        cfg.lock_wait_timeout,
    ))
    .stdin(Stdio::null())
    .stdout(Stdio::piped())
    .stderr(Stdio::piped());
    let program = pg_dump.path.display().to_string();
    let child = cmd.spawn().map_err(|e| Error::Program {
        program: program.clone(),
        problem: format!("cannot start it: {e}"),
    })?;
    let mut child = ChildGuard::new(child, program.clone());
    let stderr = StderrCollector::spawn(child.child_mut().stderr.take().expect("piped stderr"));
    let stdout = child.child_mut().stdout.take().expect("piped stdout");
    // A larger pipe lets pg_dump run ahead while a buffer is being encrypted.
    let _ = rustix::pipe::fcntl_setpipe_size(&stdout, PIPE_SIZE);

    // Stream: the encryptor pulls from the source and encrypts (and hashes the message)
    // here; the source hands every buffer to the digest thread first; the writer thread
    // writes.
    let (pool_tx, pool_rx) = mpsc::sync_channel::<Vec<u8>>(POOL + 1);
    for _ in 0..POOL {
        let _ = pool_tx.send(vec![0u8; BUFFER]);
    }
    let (full_tx, full_rx) = mpsc::sync_channel::<Shared>(POOL);
    let (encrypted, failure, plaintext_bytes, env, digests) = std::thread::scope(|s| {
        let digester = std::thread::Builder::new()
            .name("row-digests".into())
            .spawn_scoped(s, move || {
                let mut stats = StreamStats::new(plan);
                for buf in full_rx {
                    stats.feed(buf.bytes());
                }
                stats.finish()
            })
            .expect("spawning the row digest thread");
        let mut source = DumpSource {
            stdout,
            pool_tx: pool_tx.clone(),
            pool_rx: &pool_rx,
            digest: Some(full_tx),
            cur: None,
            pos: 0,
            total: 0,
            eof: false,
            failure: None,
            env,
            progress,
        };
        let encrypted = cutter_openpgp::encrypt_hashed(&cfg.recipient, &mut source, &mut sink);
        let DumpSource {
            failure,
            total,
            env,
            digest,
            cur,
            ..
        } = source;
        drop(cur);
        drop(digest);
        let (digests, sets) = digester.join().expect("digest thread does not panic");
        (encrypted, failure, total, env, (digests, sets))
    });
    let (digests, stream_sets) = digests;
    // Wipe the pooled plaintext buffers (all have come back: both threads are done).
    drop(pool_tx);
    while let Ok(mut b) = pool_rx.try_recv() {
        b.fill(0);
    }
    // pg_dump's verdict first: its stderr explains any failure best.
    let (status, err_text) = if encrypted.is_ok() {
        let st = child.wait()?;
        (Some(st), stderr.finish())
    } else {
        let _ = child.kill();
        (None, stderr.finish())
    };
    let message = match encrypted {
        Ok(m) => m,
        Err(e) => {
            drop(sink);
            return Err(match (failure, e) {
                (Some(StreamFailure::Read(e)), _) => Error::ChildFailed {
                    program,
                    status: format!("reading its output failed: {e}"),
                    stderr: err_text,
                    hint: None,
                },
                (Some(StreamFailure::NotArchive(head)), _) => Error::NotAnArchive {
                    program,
                    detail: head,
                    stderr: err_text,
                },
                (None, cutter_openpgp::Error::EncryptOutput { source }) => {
                    // The writer thread's own error says why (disk full, I/O error).
                    let real = writer.finish().err().unwrap_or(source);
                    Error::io("writing", partial.path(), real)
                }
                (None, source) => encrypt_error(&cfg.recipient, partial.path(), source),
            });
        }
    };
    let status = status.expect("status of a completed stream");
    if !status.success() {
        return Err(Error::ChildFailed {
            program,
            status: describe_status(status),
            stderr: err_text,
            hint: Some(
                "check that the read-only role can SELECT the surface tables and their \
                 sequences, and that no other session holds exclusive locks on them",
            ),
        });
    }
    if plaintext_bytes == 0 {
        return Err(Error::NotAnArchive {
            program,
            detail: "nothing on stdout although it exited 0".into(),
            stderr: err_text,
        });
    }

    // Per-table stats: from the stream where possible, else on the server in the same
    // snapshot (the transaction is still open).
    let mut stats: BTreeMap<TableName, TableStat> = BTreeMap::new();
    let mut digest_sources: BTreeMap<TableName, String> = BTreeMap::new();
    for t in &tables {
        let server_stat = |tx: &mut postgres::Transaction<'_>| {
            cutter_pg::surface::table_stat(tx, t, None).map_err(|source| Error::Pg {
                what: "computing a table digest on the server",
                source,
            })
        };
        match digests.get(t) {
            Some(RowDigest::Done { rows, digest }) => {
                let stat = TableStat {
                    rows: *rows,
                    digest: *digest,
                };
                if cfg.cross_check_digests {
                    let on_server = server_stat(&mut tx)?;
                    if on_server != stat {
                        return Err(Error::DigestMismatch {
                            detail: format!(
                                "{t}: stream says {} rows {}, server says {} rows {}",
                                stat.rows, stat.digest, on_server.rows, on_server.digest
                            ),
                        });
                    }
                }
                stats.insert(t.clone(), stat);
                digest_sources.insert(t.clone(), "dump stream".into());
            }
            other => {
                let why = match other {
                    Some(RowDigest::Unusable(w)) => w.clone(),
                    _ => "not digested from the stream".into(),
                };
                stats.insert(t.clone(), server_stat(&mut tx)?);
                digest_sources.insert(t.clone(), format!("server ({why})"));
            }
        }
    }
    let chain = match chain_reason {
        Some(reason) => Some(crate::chain::full_link_info(
            &mut tx,
            &tables,
            &stats,
            &digest_sources,
            &stream_sets,
            reason,
            &cfg.name,
        )?),
        None => None,
    };
    // The snapshot is no longer needed.
    drop(tx);
    drop(client);
    drop(env);

    drop(sink);
    let (sha256, size_bytes) = writer.finish_synced(partial.path(), &message)?;

    let manifest = Manifest {
        format: MANIFEST_FORMAT.into(),
        run_id: cfg.name.clone(),
        artifact: artifact_name.clone(),
        created_at: now(),
        sha256,
        size_bytes,
        encryption: encryption_info(cfg),
        dump: DumpInfo {
            format: "custom".into(),
            compression: cfg.compression,
            pg_dump_version: pg_dump.version.clone(),
            snapshot,
            plaintext_bytes,
        },
        server: server.into_info(system_identifier),
        digest_method: DIGEST_METHOD.into(),
        tables: stats,
        digest_sources,
        duration_ms: started.elapsed().as_millis() as u64,
        signer: signer_info(cfg),
        chain,
    };
    finish_artifact(dir, partial, manifest, &cfg.signer)
}

/// Signs `manifest` and puts the artifact (synced, at `partial`), the manifest and its
/// signature under their final names, in an order that never leaves a manifest without
/// its artifact and signature.
pub(crate) fn finish_artifact(
    dir: &Path,
    partial: PartialFile,
    manifest: Manifest,
    signer: &ManifestSigner,
) -> Result<BackupArtifact> {
    let artifact_name = manifest.artifact.clone();
    let manifest_name = manifest_file_name(&manifest.run_id);
    let signature_name = format!("{manifest_name}.sig");
    let manifest_json = manifest.to_json();
    let signature = signer.sign(manifest_json.as_bytes())?;

    // Manifest and signature temps first, then the artifact's final name, then the
    // signature's, then the manifest's: a manifest under its final name always has its
    // artifact and its signature.
    let write_temp = |name: &str, bytes: &[u8]| -> Result<PartialFile> {
        let (p, mut f) = PartialFile::create(dir, name)?;
        f.write_all(bytes)
            .and_then(|()| f.sync_all())
            .map_err(|e| Error::io("writing", p.path(), e))?;
        Ok(p)
    };
    let mpartial = write_temp(&manifest_name, manifest_json.as_bytes())?;
    let spartial = write_temp(&signature_name, signature.as_bytes())?;
    let path = dir.join(&artifact_name);
    let manifest_path = dir.join(&manifest_name);
    let signature_path = dir.join(&signature_name);
    partial.commit(&path, Replace::No)?;
    failpoint_after_artifact();
    let undo = |paths: &[&Path]| {
        for p in paths {
            let _ = std::fs::remove_file(p);
        }
        let _ = atomic::sync_dir(dir);
    };
    if let Err(e) = spartial.commit(&signature_path, Replace::No) {
        undo(&[&path]);
        return Err(e.into());
    }
    if let Err(e) = mpartial.commit(&manifest_path, Replace::No) {
        undo(&[&signature_path, &path]);
        return Err(e.into());
    }
    if let Err(e) = atomic::sync_dir(dir) {
        undo(&[&manifest_path, &signature_path, &path]);
        return Err(e.into());
    }
    tracing::info!(
        artifact = %path.display(),
        sha256 = %manifest.sha256,
        size = manifest.size_bytes,
        recipient = %manifest.encryption.recipient,
        "backup written"
    );
    Ok(BackupArtifact {
        path,
        manifest_path,
        signature_path,
        manifest,
    })
}

/// Test-only failpoint (debug builds; see `cutter-run`'s `failpoint`):
/// `CUTTER_FAILPOINT=pre_write_backup:after_artifact:abort` kills the process once the
/// artifact is complete under its final name and before its signed manifest exists (a
/// crash between an increment and its manifest).
fn failpoint_after_artifact() {
    #[cfg(debug_assertions)]
    if std::env::var("CUTTER_FAILPOINT").as_deref() == Ok("pre_write_backup:after_artifact:abort") {
        eprintln!("cutter: failpoint pre_write_backup:after_artifact:abort");
        std::process::abort();
    }
}

pub(crate) fn encrypt_error(
    recipient: &Recipient,
    path: &Path,
    source: cutter_openpgp::Error,
) -> Error {
    match source {
        cutter_openpgp::Error::EncryptOutput { source } => Error::io("writing", path, source),
        source => Error::Encrypt {
            recipient: recipient.fingerprint(),
            source,
        },
    }
}

/// Why the source stopped early.
enum StreamFailure {
    Read(io::Error),
    NotArchive(String),
}

/// A pooled buffer of dump bytes, shared by the encrypting thread and the digest
/// thread; the last of them to drop it returns it to the pool.
struct Shared {
    buf: Option<Arc<Vec<u8>>>,
    len: usize,
    pool: mpsc::SyncSender<Vec<u8>>,
}

impl Shared {
    fn bytes(&self) -> &[u8] {
        match &self.buf {
            Some(b) => &b[..self.len],
            None => &[],
        }
    }

    fn share(&self) -> Shared {
        Shared {
            buf: self.buf.clone(),
            len: self.len,
            pool: self.pool.clone(),
        }
    }
}

impl Drop for Shared {
    fn drop(&mut self) {
        if let Some(v) = self.buf.take().and_then(Arc::into_inner) {
            // Full only if more buffers exist than the pool holds: then it is dropped.
            let _ = self.pool.try_send(v);
        }
    }
}

/// pg_dump's stdout as the `Read` rpgp's builder pulls from: read into pooled buffers,
/// each handed to the digest thread before the encryption sees it. Checks the archive
/// magic, drops pg_dump's password file once output arrives, reports progress.
struct DumpSource<'a> {
    stdout: std::process::ChildStdout,
    pool_tx: mpsc::SyncSender<Vec<u8>>,
    pool_rx: &'a mpsc::Receiver<Vec<u8>>,
    /// `None` once the digest thread is gone (its results then say so).
    digest: Option<mpsc::SyncSender<Shared>>,
    cur: Option<Shared>,
    pos: usize,
    total: u64,
    eof: bool,
    failure: Option<StreamFailure>,
    env: Option<cutter_pg::config::ChildEnv>,
    progress: &'a mut dyn FnMut(u64),
}

impl DumpSource<'_> {
    /// Fills the next buffer from pg_dump's pipe; `None` at its end.
    fn next_buffer(&mut self) -> std::result::Result<Option<Shared>, StreamFailure> {
        let mut buf = match self.pool_rx.recv_timeout(Duration::ZERO) {
            Ok(b) => b,
            // Every pooled buffer is in flight: wait for the digest thread to return
            // one (bounded memory), unless it is gone.
            Err(_) if self.digest.is_some() => {
                self.pool_rx.recv().unwrap_or_else(|_| vec![0u8; BUFFER])
            }
            Err(_) => vec![0u8; BUFFER],
        };
        buf.resize(BUFFER, 0);
        // Let the pipe fill before reading: a reader blocked on an emptyish pipe is
        // woken by each of pg_dump's small writes, and those wakeups cost more CPU than
        // the data. Up to BATCH_WAIT, then a normal blocking read.
        let mut waited = Duration::ZERO;
        while waited < BATCH_WAIT {
            match rustix::io::ioctl_fionread(&self.stdout) {
                Ok(avail) if avail < BATCH_BYTES => {
                    std::thread::sleep(BATCH_NAP);
                    waited += BATCH_NAP;
                }
                _ => break,
            }
        }
        let mut n = 0;
        while n < buf.len() {
            match self.stdout.read(&mut buf[n..]) {
                Ok(0) => break,
                Ok(k) => {
                    n += k;
                    if n >= READ_ENOUGH {
                        break;
                    }
                }
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(StreamFailure::Read(e)),
            }
        }
        if self.total == 0 && n > 0 && !buf[..n].starts_with(&b"PGDMP"[..n.min(5)]) {
            let head = String::from_utf8_lossy(&buf[..n.min(60)]).into_owned();
            buf.fill(0);
            return Err(StreamFailure::NotArchive(format!(
                "output that is not a custom-format archive (it starts with {head:?})"
            )));
        }
        if n == 0 {
            let _ = self.pool_tx.try_send(buf);
            return Ok(None);
        }
        self.env.take();
        self.total += n as u64;
        (self.progress)(self.total);
        let shared = Shared {
            buf: Some(Arc::new(buf)),
            len: n,
            pool: self.pool_tx.clone(),
        };
        if let Some(d) = &self.digest {
            if d.send(shared.share()).is_err() {
                self.digest = None;
            }
        }
        Ok(Some(shared))
    }
}

impl Read for DumpSource<'_> {
    fn read(&mut self, out: &mut [u8]) -> io::Result<usize> {
        loop {
            if let Some(cur) = &self.cur {
                let rest = &cur.bytes()[self.pos..];
                if !rest.is_empty() {
                    let n = rest.len().min(out.len());
                    out[..n].copy_from_slice(&rest[..n]);
                    self.pos += n;
                    return Ok(n);
                }
            }
            if self.eof || self.failure.is_some() {
                return Ok(0);
            }
            self.cur = None;
            self.pos = 0;
            match self.next_buffer() {
                Ok(Some(b)) => self.cur = Some(b),
                Ok(None) => {
                    self.eof = true;
                    return Ok(0);
                }
                Err(f) => {
                    let text = match &f {
                        StreamFailure::Read(e) => format!("reading pg_dump's output: {e}"),
                        StreamFailure::NotArchive(h) => h.clone(),
                    };
                    self.failure = Some(f);
                    return Err(io::Error::other(text));
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Whole buffers go to disk with `O_DIRECT` where the file system takes it (probed
    /// here on the same directory), the short last one through the page cache; either
    /// way the file holds exactly the octets written, in order.
    #[test]
    fn the_artifact_writer_writes_whole_buffers_directly_and_loses_nothing() {
        let dir = tempfile::tempdir().unwrap();
        let probe = {
            use std::os::unix::fs::OpenOptionsExt as _;
            let mut f = std::fs::OpenOptions::new()
                .create(true)
                .write(true)
                .custom_flags(rustix::fs::OFlags::DIRECT.bits() as i32)
                .open(dir.path().join("probe"));
            let mut block = Aligned::new();
            block.len = DIRECT_ALIGN;
            f.as_mut().is_ok_and(|f| f.write_all(block.bytes()).is_ok())
        };
        let total = 3 * WRITE_BUFFER + 1234;
        let data = cutter_testkit::noise(total, 1);
        let path = dir.path().join("artifact");
        let (writer, mut sink) = FileWriter::spawn(File::create(&path).unwrap());
        let mut rest = &data[..];
        let mut piece = 1;
        while !rest.is_empty() {
            let n = piece.min(rest.len());
            sink.write_all(&rest[..n]).unwrap();
            rest = &rest[n..];
            piece = piece * 7 % 100_003 + 1;
        }
        sink.flush().unwrap();
        drop(sink);
        let w = writer.join().unwrap();
        assert_eq!(w.len, total as u64);
        let expect_direct = if probe { 3 * WRITE_BUFFER as u64 } else { 0 };
        assert_eq!(w.direct, expect_direct, "O_DIRECT usable here: {probe}");
        drop(w.file);
        assert!(std::fs::read(&path).unwrap() == data, "the file differs");
    }

    #[test]
    fn pg_dump_arguments_name_exactly_the_surface_tables_and_no_secret() {
        let args = pg_dump_args(
            &mutation_surface(),
            "00000003-0000001B-1",
            DumpCompression::None,
            Duration::from_secs(60),
        );
        let tables: Vec<_> = args.iter().filter(|a| a.starts_with("--table=")).collect();
        assert_eq!(tables.len(), 10);
        assert!(tables.contains(&&"--table=\"public\".\"information_unit\"".to_string()));
        assert!(
            tables.contains(&&"--table=\"cutter_governance\".\"dot_pair_signature\"".to_string())
        );
        for a in [
            "--format=custom",
            "--compress=0",
            "--no-password",
            "--strict-names",
        ] {
            assert!(args.contains(&a.to_string()), "{a} missing from {args:?}");
        }
        assert!(args.contains(&"--snapshot=00000003-0000001B-1".to_string()));
        assert!(!args
            .iter()
            .any(|a| a.contains("password=") || a.contains("postgres://")));
    }
}
