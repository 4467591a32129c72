//! Backup chains (`docs/design/incremental-backup.md`): a full backup, then increments
//! holding only the rows added or changed since their predecessor's snapshot and the
//! rows that can still change, each manifest signed and naming its predecessor's
//! manifest and artifact by SHA-256.
//!
//! [`chained_backup`] decides between full and incremental ([`cutter_core::decide`]) from
//! the predecessor and the guarantees the database shows now, and writes either.
//! An increment's plaintext is cutter's framing ([`Frame`]) around PostgreSQL `COPY`
//! text, encrypted like a full artifact; it is read on production in one REPEATABLE
//! READ snapshot through the watermark and changeable-row indexes of V7, never scanning
//! the immutable part.
//!
//! Invariants: plaintext only in bounded channel buffers; nothing under a final name
//! unless complete (the same finish as a full backup); the predecessor is trusted only
//! when its manifest is signed by the pinned key.

use std::collections::{BTreeMap, BTreeSet};
use std::io::{self, Read};
use std::path::{Path, PathBuf};
use std::sync::mpsc;
use std::time::{Instant, SystemTime, UNIX_EPOCH};

use cutter_core::{
    class_of, decide, mutation_surface, ChainDecision, ChainFacts, RunId, SetDigest, Sha256Digest,
    SurfaceClass, TableName, TableStat,
};
use cutter_pg::surface::{canonical_columns, canonical_rows_sql, set_canonical_output};
use postgres::GenericClient;
use serde::{Deserialize, Serialize};
use sha2::{Digest as _, Sha256};

use crate::backup::{self, encryption_info, signer_info, BackupArtifact, BackupConfig, FileWriter};
use crate::error::{Error, Result};
use crate::manifest::{
    artifact_file_name, manifest_file_name, verify_manifest, DumpCompression, DumpInfo, Manifest,
    MANIFEST_FORMAT,
};
use cutter_fs::{self as atomic, PartialFile};

/// [`DumpInfo::format`] of an incremental artifact.
pub const INCREMENT_FORMAT: &str = "cutter-increment/1";
/// The first bytes of an increment's plaintext.
pub(crate) const MAGIC: &[u8] = b"CUTTER-INCREMENT/1\n";
/// The append-only trigger (V2, and V7 on `iu_lifecycle_log`).
const APPEND_ONLY_TRIGGER: &str = "trg_ledger_append_only";
pub use cutter_pg::schema::{EVENT_TRIGGERS, WATERMARK_TRIGGER};
/// Default of `[backup] full_every`.
pub const DEFAULT_FULL_EVERY: u32 = 20;
/// Largest data frame.
const FRAME_DATA: usize = 256 * 1024;

/// Full or incremental.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum LinkKind {
    /// `pg_dump` of the whole surface: the first link of a chain.
    Full,
    /// Rows since the predecessor, and the rows that can still change.
    Incremental,
}

/// The signed link to the predecessor.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LinkRef {
    /// The predecessor's name (its run).
    pub run_id: RunId,
    /// SHA-256 of its manifest file (which the pinned key signed).
    pub manifest_sha256: Sha256Digest,
    /// SHA-256 of its artifact.
    pub artifact_sha256: Sha256Digest,
}

/// Rows of `cutter_governance.surface_ddl_audit` at the snapshot.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AuditMark {
    /// Rows.
    pub rows: u64,
    /// Highest id (0 when empty).
    pub last_id: i64,
}

/// One table in a link.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ChainTable {
    /// How its rows can change.
    pub class: SurfaceClass,
    /// The chain's state carried forward unchanged from the predecessor.
    pub carried: SetDigest,
    /// The rows in this artifact.
    pub increment: SetDigest,
    /// The rows of this state that the next link replaces.
    pub replaceable: SetDigest,
    /// `carried + increment`: the whole table as of this link.
    pub total: SetDigest,
}

/// A backup as a link of a chain (the manifest's `chain` section).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ChainInfo {
    /// Full or incremental.
    pub kind: LinkKind,
    /// Why this kind.
    pub reason: String,
    /// The chain: the name of its full backup.
    pub chain: RunId,
    /// Position in the chain (0: the full backup).
    pub seq: u32,
    /// The predecessor (absent for a full backup).
    pub predecessor: Option<LinkRef>,
    /// `pg_current_snapshot()` of the snapshot the backup read: the next link's
    /// watermark.
    pub snapshot: String,
    /// The DDL audit at that snapshot (absent: the table does not exist).
    pub ddl_audit: Option<AuditMark>,
    /// When the backup was taken, Unix milliseconds (orders heads within a second).
    pub taken_at_ms: u64,
    /// Per table.
    pub tables: BTreeMap<TableName, ChainTable>,
}

/// When to take a full backup.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ChainPolicy {
    /// A full backup every this many links (`[backup] full_every`).
    pub full_every: u32,
    /// Take a full backup now (`--full`).
    pub full: bool,
}

impl Default for ChainPolicy {
    fn default() -> Self {
        Self {
            full_every: DEFAULT_FULL_EVERY,
            full: false,
        }
    }
}

fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64)
}

fn sql(what: impl Into<String>) -> impl FnOnce(postgres::Error) -> Error {
    let what = what.into();
    move |e| Error::sql(what, e)
}

/// A chain link found in the backups directory.
#[derive(Clone, Debug)]
pub struct Link {
    /// The manifest (its signature by the pinned key checked).
    pub manifest: Manifest,
    /// SHA-256 of the manifest file.
    pub manifest_sha256: Sha256Digest,
    /// The manifest's path.
    pub manifest_path: PathBuf,
}

impl Link {
    /// The chain section (every [`Link`] has one).
    pub fn chain(&self) -> &ChainInfo {
        self.manifest
            .chain
            .as_ref()
            .expect("links have a chain section")
    }
}

/// Every manifest in `dir` that is signed by the pinned key and has a chain section;
/// others are skipped (logged).
pub fn chain_links(dir: &Path, signing_pin: &cutter_core::Fingerprint) -> Result<Vec<Link>> {
    let mut out = Vec::new();
    let entries = std::fs::read_dir(dir).map_err(|e| Error::io("listing", dir, e))?;
    for entry in entries {
        let entry = entry.map_err(|e| Error::io("listing", dir, e))?;
        let name = entry.file_name();
        let Some(name) = name.to_str() else { continue };
        if !name.ends_with(".manifest.json") || name.starts_with('.') {
            continue;
        }
        let path = entry.path();
        match verify_manifest(&path, signing_pin) {
            Ok((manifest, manifest_sha256)) if manifest.chain.is_some() => out.push(Link {
                manifest,
                manifest_sha256,
                manifest_path: path,
            }),
            Ok(_) => {}
            Err(e) => {
                tracing::warn!(manifest = %path.display(), error = %e, "not a usable chain link")
            }
        }
    }
    out.sort_by_key(|l| {
        (
            l.chain().taken_at_ms,
            l.chain().seq,
            l.manifest.run_id.to_string(),
        )
    });
    Ok(out)
}

/// The newest link of `links` that is no other link's predecessor, for this server and
/// database.
fn head<'a>(links: &'a [Link], sysid: cutter_core::SystemIdentifier, db: &str) -> Option<&'a Link> {
    let referenced: BTreeSet<String> = links
        .iter()
        .filter_map(|l| l.chain().predecessor.as_ref().map(|p| p.run_id.to_string()))
        .collect();
    links.iter().rfind(|l| {
        l.manifest.server.system_identifier == sysid
            && l.manifest.server.database == db
            && !referenced.contains(l.manifest.run_id.as_str())
    })
}

/// Why the chain ending at `head` cannot take another link (`None`: it is whole as far
/// as its signed manifests and its artifacts' sizes show). O(links): no artifact is
/// read, so an artifact altered in place at its size is left to the chain proof.
fn broken_chain(dir: &Path, links: &[Link], head: &Link) -> Option<String> {
    let chain = &head.chain().chain;
    let broken = |link: &str, problem: String| {
        Some(format!(
            "the chain {chain} is broken at link \"{link}\": {problem}; a full backup starts a \
             new chain (`cutter backup restore-proof --chain` of {} names the same link)",
            head.manifest.artifact
        ))
    };
    let mut cur = head;
    loop {
        let name = cur.manifest.run_id.as_str();
        let art = dir.join(&cur.manifest.artifact);
        match std::fs::symlink_metadata(&art) {
            Ok(m) if m.is_file() && m.len() == cur.manifest.size_bytes => {}
            Ok(m) => {
                return broken(
                    name,
                    format!(
                        "its artifact {} has {} bytes, its manifest says {}",
                        cur.manifest.artifact,
                        m.len(),
                        cur.manifest.size_bytes
                    ),
                )
            }
            Err(_) => {
                return broken(
                    name,
                    format!("its artifact {} is missing", cur.manifest.artifact),
                )
            }
        }
        let c = cur.chain();
        let Some(p) = &c.predecessor else {
            return (c.kind != LinkKind::Full || c.seq != 0)
                .then(|| {
                    broken(
                        name,
                        "it names no predecessor but is not a full backup".into(),
                    )
                })
                .flatten();
        };
        let Some(prev) = links.iter().find(|l| l.manifest.run_id == p.run_id) else {
            let manifest = dir.join(manifest_file_name(&p.run_id));
            let why = if manifest.exists() {
                "its manifest does not verify with the pinned signing key (altered, or signed \
                 by another key)"
            } else {
                "its manifest is missing"
            };
            return broken(p.run_id.as_str(), format!("{why}, and {name} needs it"));
        };
        if prev.manifest_sha256 != p.manifest_sha256 || prev.manifest.sha256 != p.artifact_sha256 {
            return broken(
                p.run_id.as_str(),
                format!("it is not the predecessor {name} names: the link was replaced"),
            );
        }
        if prev.chain().seq + 1 != c.seq || prev.chain().chain != c.chain {
            return broken(
                p.run_id.as_str(),
                format!("it is out of order before {name}"),
            );
        }
        cur = prev;
    }
}

/// Checks a snapshot's text form before it is put into SQL.
fn checked_snapshot(s: &str) -> Result<&str> {
    let mut parts = s.split(':');
    let ok = matches!(
        (parts.next(), parts.next(), parts.next(), parts.next()),
        (Some(a), Some(b), Some(c), None)
            if !a.is_empty() && a.bytes().all(|x| x.is_ascii_digit())
            && !b.is_empty() && b.bytes().all(|x| x.is_ascii_digit())
            && c.split(',').all(|x| x.is_empty() || x.bytes().all(|y| y.is_ascii_digit()))
    );
    if ok {
        Ok(s)
    } else {
        Err(Error::Chain {
            link: String::new(),
            problem: format!("{s:?} is not a pg_snapshot"),
        })
    }
}

/// The snapshot and DDL audit mark of the caller's transaction.
fn watermark(c: &mut impl GenericClient) -> Result<(String, Option<AuditMark>)> {
    let snapshot: String = c
        .query_one("SELECT pg_catalog.pg_current_snapshot()::text", &[])
        .map_err(sql("reading the snapshot (pg_current_snapshot())"))?
        .get(0);
    let exists: bool = c
        .query_one(
            "SELECT to_regclass('cutter_governance.surface_ddl_audit') IS NOT NULL",
            &[],
        )
        .map_err(sql("looking for cutter_governance.surface_ddl_audit"))?
        .get(0);
    let audit = if exists {
        let r = c
            .query_one(
                "SELECT count(*), coalesce(max(id), 0)::bigint FROM cutter_governance.surface_ddl_audit",
                &[],
            )
            .map_err(sql("reading cutter_governance.surface_ddl_audit"))?;
        Some(AuditMark {
            rows: u64::try_from(r.get::<_, i64>(0)).unwrap_or(0),
            last_id: r.get(1),
        })
    } else {
        None
    };
    Ok((snapshot, audit))
}

/// Why an increment cannot be shown complete since `prev` (empty: it can).
fn broken_guarantees(
    c: &mut impl GenericClient,
    prev: &ChainInfo,
    now: Option<AuditMark>,
) -> Result<Vec<String>> {
    let mut out = Vec::new();
    let trigger = |c: &mut dyn FnMut(&str, &str) -> Result<Option<String>>,
                   table: &str,
                   name: &str,
                   out: &mut Vec<String>|
     -> Result<()> {
        match c(table, name)?.as_deref() {
            Some("O" | "A") => {}
            Some(state) => out.push(format!(
                "trigger {name} on {table} is disabled (tgenabled = {state})"
            )),
            None => out.push(format!("trigger {name} on {table} is missing")),
        }
        Ok(())
    };
    let mut state = |table: &str, name: &str| -> Result<Option<String>> {
        Ok(c.query_opt(
            "SELECT t.tgenabled::text FROM pg_catalog.pg_trigger t \
              WHERE t.tgrelid = to_regclass($1) AND t.tgname = $2 AND NOT t.tgisinternal",
            &[&table, &name],
        )
        .map_err(sql(format!("reading trigger {name} on {table}")))?
        .map(|r| r.get(0)))
    };
    for t in mutation_surface() {
        let q = t.to_string();
        match class_of(&t) {
            SurfaceClass::ImmutableOnceEnacted => {
                trigger(&mut state, &q, WATERMARK_TRIGGER, &mut out)?;
            }
            SurfaceClass::AppendOnly => {
                trigger(&mut state, &q, WATERMARK_TRIGGER, &mut out)?;
                trigger(&mut state, &q, APPEND_ONLY_TRIGGER, &mut out)?;
            }
            SurfaceClass::Mutable => {}
        }
    }
    for (name, table) in cutter_pg::schema::IMMUTABILITY_TRIGGERS {
        trigger(&mut state, table, name, &mut out)?;
    }
    for name in EVENT_TRIGGERS {
        let r = c
            .query_opt(
                "SELECT evtenabled::text FROM pg_catalog.pg_event_trigger WHERE evtname = $1",
                &[&name],
            )
            .map_err(sql(format!("reading event trigger {name}")))?;
        match r.map(|r| r.get::<_, String>(0)).as_deref() {
            Some("O" | "A") => {}
            Some(s) => out.push(format!(
                "event trigger {name} is disabled (evtenabled = {s})"
            )),
            None => out.push(format!(
                "event trigger {name} is missing (V7 needs a superuser to create it)"
            )),
        }
    }
    match (prev.ddl_audit, now) {
        (Some(p), Some(n)) if p == n => {}
        (Some(p), Some(n)) => {
            let rows = c
                .query(
                    "SELECT command_tag || ' ' || object_identity FROM cutter_governance.surface_ddl_audit \
                      WHERE id > $1 ORDER BY id LIMIT 5",
                    &[&p.last_id],
                )
                .map_err(sql("reading cutter_governance.surface_ddl_audit"))?;
            let what: Vec<String> = rows.iter().map(|r| r.get(0)).collect();
            out.push(format!(
                "{} DDL command(s) on the surface were recorded since the previous backup \
                 (surface_ddl_audit rows {} → {}: {})",
                n.rows.saturating_sub(p.rows),
                p.rows,
                n.rows,
                what.join(", ")
            ));
        }
        _ => out.push("the surface DDL audit (V7) is missing".into()),
    }
    Ok(out)
}

/// The predicate selecting the rows of an increment of `table` on a predecessor whose
/// snapshot is `prev` (checked), over the table's own columns.
fn increment_predicate(class: SurfaceClass, prev: &str) -> String {
    let stamped = format!(
        "(cutter_xid >= pg_catalog.pg_snapshot_xmin('{prev}'::pg_snapshot) \
          AND NOT pg_catalog.pg_visible_in_snapshot(cutter_xid, '{prev}'::pg_snapshot))"
    );
    match class {
        SurfaceClass::ImmutableOnceEnacted => {
            format!("{stamped} OR lifecycle_status <> 'enacted'")
        }
        SurfaceClass::AppendOnly => stamped,
        SurfaceClass::Mutable => "true".into(),
    }
}

/// The predicate of the rows the next link replaces, over canonical rows `r`.
pub(crate) fn replaceable_predicate(class: SurfaceClass) -> &'static str {
    match class {
        SurfaceClass::ImmutableOnceEnacted => "r.lifecycle_status <> 'enacted'",
        SurfaceClass::AppendOnly => "false",
        SurfaceClass::Mutable => "true",
    }
}

/// Rows, ordered content digest, set digest, and set digest of the replaceable rows of
/// `table`'s rows matching `predicate` (SQL over the table's columns). Streams the row
/// hashes; memory does not grow with the table.
pub(crate) fn digest_rows(
    c: &mut impl GenericClient,
    table: &TableName,
    predicate: &str,
) -> Result<(TableStat, SetDigest, SetDigest)> {
    set_canonical_output(c).map_err(|source| Error::Pg {
        what: "setting the canonical output",
        source,
    })?;
    let columns = canonical_columns(c, table).map_err(|source| Error::Pg {
        what: "reading a table's columns",
        source,
    })?;
    let class = class_of(table);
    // The canonical subquery, filtered on the table's own columns first.
    let rows_sql = canonical_rows_sql(table, &columns);
    let rows_sql = format!(
        "{} WHERE {predicate})",
        rows_sql.strip_suffix(')').unwrap_or(&rows_sql)
    );
    let q = format!(
        "SELECT sha256(convert_to(r::text, 'UTF8')), {} FROM {rows_sql} AS r ORDER BY r.id",
        replaceable_predicate(class)
    );
    let it = c
        .query_raw(q.as_str(), std::iter::empty::<i32>())
        .map_err(sql(format!("digesting rows of {table}")))?;
    let mut outer = Sha256::new();
    let mut set = SetDigest::EMPTY;
    let mut replaceable = SetDigest::EMPTY;
    let mut it = it;
    use postgres::fallible_iterator::FallibleIterator as _;
    while let Some(row) = it
        .next()
        .map_err(sql(format!("digesting rows of {table}")))?
    {
        let h: &[u8] = row.get(0);
        let h: [u8; 32] = h.try_into().map_err(|_| Error::DigestMismatch {
            detail: format!("{table}: sha256() did not return 32 bytes"),
        })?;
        outer.update(h);
        set.add_row(&h);
        if row.get::<_, bool>(1) {
            replaceable.add_row(&h);
        }
    }
    let stat = TableStat {
        rows: set.rows,
        digest: Sha256Digest::from_bytes(outer.finalize().into()),
    };
    Ok((stat, set, replaceable))
}

/// The chain section of a full backup, read in its snapshot (the caller's open
/// transaction): set digests from the dump stream where it gave them, else on the
/// server.
pub(crate) fn full_link_info(
    tx: &mut postgres::Transaction<'_>,
    tables: &[TableName],
    stats: &BTreeMap<TableName, TableStat>,
    sources: &BTreeMap<TableName, String>,
    stream_sets: &BTreeMap<TableName, SetDigest>,
    reason: String,
    name: &RunId,
) -> Result<ChainInfo> {
    let (snapshot, ddl_audit) = watermark(tx)?;
    let mut out = BTreeMap::new();
    for t in tables {
        let class = class_of(t);
        let from_stream = sources.get(t).is_some_and(|s| s == "dump stream");
        let (total, replaceable) = match (from_stream, stream_sets.get(t), class) {
            (true, Some(set), SurfaceClass::AppendOnly) => (*set, SetDigest::EMPTY),
            (true, Some(set), SurfaceClass::Mutable) => (*set, *set),
            // Only the rows that can still change are read again (partial index).
            (true, Some(set), SurfaceClass::ImmutableOnceEnacted) => {
                let (_, changeable, _) = digest_rows(tx, t, "lifecycle_status <> 'enacted'")?;
                (*set, changeable)
            }
            _ => {
                let (_, set, replaceable) = digest_rows(tx, t, "true")?;
                (set, replaceable)
            }
        };
        if let Some(st) = stats.get(t) {
            if st.rows != total.rows {
                return Err(Error::DigestMismatch {
                    detail: format!(
                        "{t}: {} rows dumped, {} in its set digest",
                        st.rows, total.rows
                    ),
                });
            }
        }
        out.insert(
            t.clone(),
            ChainTable {
                class,
                carried: SetDigest::EMPTY,
                increment: total,
                replaceable,
                total,
            },
        );
    }
    Ok(ChainInfo {
        kind: LinkKind::Full,
        reason,
        chain: name.clone(),
        seq: 0,
        predecessor: None,
        snapshot,
        ddl_audit,
        taken_at_ms: now_ms(),
        tables: out,
    })
}

/// One frame of an increment's plaintext: a tag byte, a big-endian u32 length, the
/// payload. `T`: a table (`schema.table`, then a tab and its column names, tab-separated);
/// `D`: COPY text of that table; `E`: the table's end; `Z`: the increment's end.
pub(crate) struct Frame;

impl Frame {
    pub(crate) fn write(out: &mut Vec<u8>, tag: u8, payload: &[u8]) {
        out.push(tag);
        out.extend_from_slice(&(payload.len() as u32).to_be_bytes());
        out.extend_from_slice(payload);
    }
}

/// Reads the bounded channel of plaintext chunks as a stream.
struct ChannelReader {
    rx: mpsc::Receiver<Vec<u8>>,
    cur: Vec<u8>,
    pos: usize,
    total: u64,
}

impl Read for ChannelReader {
    fn read(&mut self, out: &mut [u8]) -> io::Result<usize> {
        while self.pos >= self.cur.len() {
            match self.rx.recv() {
                Ok(mut next) => {
                    self.cur.fill(0);
                    std::mem::swap(&mut self.cur, &mut next);
                    self.pos = 0;
                }
                Err(_) => return Ok(0),
            }
        }
        let n = (self.cur.len() - self.pos).min(out.len());
        out[..n].copy_from_slice(&self.cur[self.pos..self.pos + n]);
        self.pos += n;
        self.total += n as u64;
        Ok(n)
    }
}

impl Drop for ChannelReader {
    fn drop(&mut self) {
        self.cur.fill(0);
    }
}

/// The column names of `table`, in order (the watermark included).
fn all_columns(c: &mut impl GenericClient, table: &TableName) -> Result<Vec<String>> {
    Ok(c.query(
        "SELECT a.attname::text FROM pg_catalog.pg_attribute a \
              WHERE a.attrelid = $1::text::regclass AND a.attnum > 0 AND NOT a.attisdropped \
              ORDER BY a.attnum",
        &[&table.quoted()],
    )
    .map_err(sql(format!("reading the columns of {table}")))?
    .iter()
    .map(|r| r.get(0))
    .collect())
}

/// Produces the increment's plaintext into `tx` chunks (runs on its own thread).
fn produce(
    tx: &mut postgres::Transaction<'_>,
    plan: &[(TableName, Vec<String>, String)],
    out: &mpsc::SyncSender<Vec<u8>>,
) -> Result<()> {
    let gone = || {
        Error::io(
            "encrypting",
            Path::new("increment"),
            io::Error::other("the encryption stopped"),
        )
    };
    out.send(MAGIC.to_vec()).map_err(|_| gone())?;
    for (table, columns, predicate) in plan {
        let mut head = Vec::new();
        let mut payload = table.to_string();
        for c in columns {
            payload.push('\t');
            payload.push_str(c);
        }
        Frame::write(&mut head, b'T', payload.as_bytes());
        out.send(head).map_err(|_| gone())?;
        let cols: Vec<String> = columns.iter().map(|c| cutter_pg::quote_ident(c)).collect();
        let q = format!(
            "COPY (SELECT {} FROM {} WHERE {predicate} ORDER BY id) TO STDOUT",
            cols.join(", "),
            table.quoted()
        );
        let mut reader = tx
            .copy_out(q.as_str())
            .map_err(sql(format!("reading the increment of {table}")))?;
        let mut buf = vec![0u8; FRAME_DATA];
        loop {
            let n = reader.read(&mut buf).map_err(|e| {
                Error::io("reading the increment of", Path::new(&table.to_string()), e)
            })?;
            if n == 0 {
                break;
            }
            let mut frame = Vec::with_capacity(n + 5);
            Frame::write(&mut frame, b'D', &buf[..n]);
            out.send(frame).map_err(|_| gone())?;
        }
        buf.fill(0);
        let mut end = Vec::new();
        Frame::write(&mut end, b'E', b"");
        out.send(end).map_err(|_| gone())?;
    }
    let mut end = Vec::new();
    Frame::write(&mut end, b'Z', b"");
    out.send(end).map_err(|_| gone())?;
    Ok(())
}

/// Takes the pre-write backup as the next link of the chain in the backups directory:
/// an increment when the predecessor is usable and every guarantee holds, else a full
/// backup (the manifest's `chain.reason` says why).
pub fn chained_backup(
    cfg: &BackupConfig,
    policy: &ChainPolicy,
    progress: &mut dyn FnMut(u64),
) -> Result<BackupArtifact> {
    let started = Instant::now();
    let dir = cfg.backups_dir();
    atomic::check_writable_dir(dir)?;
    let name = cfg.name().clone();
    atomic::refuse_existing(&dir.join(artifact_file_name(&name)))?;
    atomic::refuse_existing(&dir.join(manifest_file_name(&name)))?;
    let links = chain_links(dir, &cfg.signer().fingerprint())?;

    let mut client = cfg.pg().connect().map_err(|e| Error::Connect {
        target: cfg.pg().redacted(),
        detail: e.to_string(),
    })?;
    let server = backup::server_info(&mut client)?;
    let system_identifier = backup::checked_source(&mut client)?;
    let mut tx = backup::snapshot_transaction(&mut client)?;
    let (snapshot, audit) = watermark(&mut tx)?;
    let prev = head(&links, system_identifier, &server.database);
    let (predecessor, broken) = match prev {
        None => (
            Err("no previous backup of this database in a chain".to_string()),
            vec![],
        ),
        Some(p) => match broken_chain(dir, &links, p) {
            Some(why) => (Err(why), vec![]),
            None => {
                let pc = p.chain();
                let broken = broken_guarantees(&mut tx, pc, audit)?;
                (Ok(pc.seq + 1), broken)
            }
        },
    };
    let decision = decide(&ChainFacts {
        full_requested: policy.full,
        predecessor,
        full_every: policy.full_every,
        broken_guarantees: broken,
    });
    let prev = match (decision, prev) {
        (ChainDecision::Incremental, Some(p)) => p,
        (decision, _) => {
            let reason = match decision {
                ChainDecision::Full(reason) => reason,
                ChainDecision::Incremental => "no previous backup in a chain".into(),
            };
            drop(tx);
            drop(client);
            tracing::info!(reason = %reason, "taking a full backup");
            return backup::full_backup(cfg, Some(reason), progress);
        }
    };
    let pc = prev.chain().clone();
    let prev_snapshot = checked_snapshot(&pc.snapshot)
        .map_err(|_| Error::Chain {
            link: prev.manifest.run_id.to_string(),
            problem: format!(
                "its watermark snapshot {:?} is not a pg_snapshot",
                pc.snapshot
            ),
        })?
        .to_string();

    // Digests of what the increment holds, in this snapshot.
    let mut tables = BTreeMap::new();
    let mut stats = BTreeMap::new();
    let mut sources = BTreeMap::new();
    let mut plan = Vec::new();
    for t in mutation_surface() {
        let class = class_of(&t);
        let predicate = increment_predicate(class, &prev_snapshot);
        let (stat, increment, replaceable) = digest_rows(&mut tx, &t, &predicate)?;
        let before = pc.tables.get(&t).ok_or_else(|| Error::Chain {
            link: prev.manifest.run_id.to_string(),
            problem: format!("it does not describe table {t}"),
        })?;
        let carried = before
            .total
            .minus(before.replaceable)
            .ok_or_else(|| Error::Chain {
                link: prev.manifest.run_id.to_string(),
                problem: format!("{t}: its replaceable part is larger than its total"),
            })?;
        tables.insert(
            t.clone(),
            ChainTable {
                class,
                carried,
                increment,
                replaceable,
                total: carried.plus(increment),
            },
        );
        stats.insert(t.clone(), stat);
        sources.insert(
            t.clone(),
            "server (the increment's rows, in its snapshot)".to_string(),
        );
        let columns = all_columns(&mut tx, &t)?;
        plan.push((t, columns, predicate));
    }

    // Stream: the producer thread reads COPY data in the snapshot; this thread encrypts.
    let artifact_name = artifact_file_name(&name);
    let (partial, file) = PartialFile::create(dir, &artifact_name)?;
    let (writer, mut sink) = FileWriter::spawn(file);
    let (chunk_tx, chunk_rx) = mpsc::sync_channel::<Vec<u8>>(8);
    let (produced, encrypted, plaintext_bytes) = std::thread::scope(|s| {
        let producer = s.spawn(|| {
            let r = produce(&mut tx, &plan, &chunk_tx);
            drop(chunk_tx);
            r
        });
        let mut reader = ChannelReader {
            rx: chunk_rx,
            cur: Vec::new(),
            pos: 0,
            total: 0,
        };
        let encrypted = cutter_openpgp::encrypt_hashed(cfg.recipient(), &mut reader, &mut sink);
        let total = reader.total;
        progress(total);
        drop(reader);
        let produced = producer
            .join()
            .expect("the increment producer does not panic");
        (produced, encrypted, total)
    });
    produced?;
    let message = match encrypted {
        Ok(m) => m,
        Err(e) => {
            drop(sink);
            let _ = writer.finish();
            return Err(backup::encrypt_error(cfg.recipient(), partial.path(), e));
        }
    };
    drop(tx);
    drop(client);
    drop(sink);
    let (sha256, size_bytes) = writer.finish_synced(partial.path(), &message)?;

    let manifest = Manifest {
        format: MANIFEST_FORMAT.into(),
        run_id: name.clone(),
        artifact: artifact_name,
        created_at: backup::now(),
        sha256,
        size_bytes,
        encryption: encryption_info(cfg),
        dump: DumpInfo {
            format: INCREMENT_FORMAT.into(),
            compression: DumpCompression::None,
            pg_dump_version: String::new(),
            snapshot: snapshot.clone(),
            plaintext_bytes,
        },
        server: server.into_info(system_identifier),
        digest_method: backup::DIGEST_METHOD.into(),
        tables: stats,
        digest_sources: sources,
        duration_ms: started.elapsed().as_millis() as u64,
        signer: signer_info(cfg),
        chain: Some(ChainInfo {
            kind: LinkKind::Incremental,
            reason: "incremental".into(),
            chain: pc.chain.clone(),
            seq: pc.seq + 1,
            predecessor: Some(LinkRef {
                run_id: prev.manifest.run_id.clone(),
                manifest_sha256: prev.manifest_sha256,
                artifact_sha256: prev.manifest.sha256,
            }),
            snapshot,
            ddl_audit: audit,
            taken_at_ms: now_ms(),
            tables,
        }),
    };
    let artifact = backup::finish_artifact(dir, partial, manifest, cfg.signer())?;
    tracing::info!(artifact = %artifact.path.display(), "incremental backup written");
    Ok(artifact)
}
