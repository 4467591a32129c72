//! The hash chains of the six ledger tables: the canonical form of a row, appending rows
//! set-based, and verifying a whole table by streaming it.
//!
//! # Canonical form (`cutter-ledger-v1`)
//!
//! A row's `row_hash` is the lower-case hex SHA-256 of the encoding of
//! [`cutter_core::CanonicalHasher`] (every field is its length as 8 big-endian bytes,
//! then its bytes) over:
//!
//! 1. the tag `cutter-ledger-v1/<table>` (e.g. `cutter-ledger-v1/review_decision`);
//! 2. `id` as 8 big-endian bytes (`u64_field`);
//! 3. every payload column in the order below, each as an optional field (`0x00` for SQL
//!    NULL; `0x01` then the value), the value being:
//!    * `text`: its UTF-8 bytes;
//!    * `bigint`: its decimal digits (as PostgreSQL prints it);
//!    * `timestamptz`: UTC as `YYYY-MM-DDTHH:MM:SS.ffffffZ` (6 fraction digits);
//!    * `jsonb`: canonical JSON: no whitespace, object members sorted by the UTF-8
//!      bytes of their keys, strings and numbers as `serde_json` writes them;
//! 4. `prev_hash` as an optional field (ASCII hex).
//!
//! | table (lock number) | payload columns, in hash order |
//! |---|---|
//! | `cut_change_set` (1) | change_set_id, run_id, document_id, source_version_id, plan_digest, unit_count, created_at |
//! | `cut_change_set_affected_row` (2) | change_set_id, information_unit_id, canonical_address, body_sha256, created_at |
//! | `manifest_envelope` (3) | change_set_id, run_id, plan_digest, manifest, created_at |
//! | `review_decision` (4) | run_id, change_set_id, decision, payload, actor, created_at |
//! | `verify_result` (5) | run_id, change_set_id, checked, matched, mismatched, verdict, details, created_at |
//! | `dot_pair_signature` (6) | run_id, gate, signer_fpr, statement, signature, created_at |
//!
//! `row_hash` itself is lower-case hex. A test pins this order against
//! `LedgerTable::columns`; changing it breaks every existing ledger (make it `v2`).
//!
//! `prev_hash` of a table's first row is [`GENESIS`] (64 zeros); every other row's is the
//! `row_hash` of the row with the next-lower `id`. One chain per table, in `id` order.
//!
//! # Writers
//!
//! Rows are appended set-based: ids allocated in one statement, hashes computed in Rust,
//! rows sent with one `COPY … FROM STDIN`, whatever their number. Appenders of one table
//! are serialized by a transaction-scoped advisory lock
//! (`pg_advisory_xact_lock(1279607879, <table number>)`, `1279607879` = `"LEDG"`), and
//! `V2__ledger.sql` makes `prev_hash` unique per table, so a chain can never fork: a writer
//! that raced anyway fails with [`Error::ChainContention`] and writes nothing.

use std::borrow::Cow;
use std::fmt;
use std::io::{BufReader, BufWriter, Read, Write};

use cutter_core::CanonicalHasher;
use postgres::{GenericClient, Transaction};
use serde::Serialize;

use crate::error::{Error, Result};

/// `prev_hash` of the first row of every chain.
pub const GENESIS: &str = "0000000000000000000000000000000000000000000000000000000000000000";

/// The first key of the ledger's advisory locks: `"LEDG"` as a big-endian `i32`.
pub(crate) const LOCK_CLASS: i32 = 0x4C45_4447;

/// The six append-only ledger tables of `cutter_governance`.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Debug, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum LedgerTable {
    /// `cut_change_set`: one row per recorded change set.
    CutChangeSet,
    /// `cut_change_set_affected_row`: one row per unit of a change set.
    CutChangeSetAffectedRow,
    /// `manifest_envelope`: the plan digest and per-unit body digests of a change set.
    ManifestEnvelope,
    /// `review_decision`: claims, voids, reverts, SG_3 escalations.
    ReviewDecision,
    /// `verify_result`: what write_verify found.
    VerifyResult,
    /// `dot_pair_signature`: the SG_1/SG_2 signatures that authorized a run.
    DotPairSignature,
}

/// The SQL type of a payload column, which fixes its canonical text.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub(crate) enum Kind {
    Text,
    BigInt,
    Timestamp,
    Json,
}

/// A payload column: name and kind.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub(crate) struct Column {
    pub(crate) name: &'static str,
    pub(crate) kind: Kind,
}

const fn col(name: &'static str, kind: Kind) -> Column {
    Column { name, kind }
}

use Kind::{BigInt, Json, Text, Timestamp};

const CUT_CHANGE_SET: &[Column] = &[
    col("change_set_id", Text),
    col("run_id", Text),
    col("document_id", Text),
    col("source_version_id", Text),
    col("plan_digest", Text),
    col("unit_count", BigInt),
    col("created_at", Timestamp),
];
const AFFECTED_ROW: &[Column] = &[
    col("change_set_id", Text),
    col("information_unit_id", BigInt),
    col("canonical_address", Text),
    col("body_sha256", Text),
    col("created_at", Timestamp),
];
const MANIFEST_ENVELOPE: &[Column] = &[
    col("change_set_id", Text),
    col("run_id", Text),
    col("plan_digest", Text),
    col("manifest", Json),
    col("created_at", Timestamp),
];
const REVIEW_DECISION: &[Column] = &[
    col("run_id", Text),
    col("change_set_id", Text),
    col("decision", Text),
    col("payload", Json),
    col("actor", Text),
    col("created_at", Timestamp),
];
const VERIFY_RESULT: &[Column] = &[
    col("run_id", Text),
    col("change_set_id", Text),
    col("checked", BigInt),
    col("matched", BigInt),
    col("mismatched", BigInt),
    col("verdict", Text),
    col("details", Json),
    col("created_at", Timestamp),
];
const DOT_PAIR_SIGNATURE: &[Column] = &[
    col("run_id", Text),
    col("gate", Text),
    col("signer_fpr", Text),
    col("statement", Text),
    col("signature", Text),
    col("created_at", Timestamp),
];

impl LedgerTable {
    /// All six, in lock order (writers lock tables in this order).
    pub const ALL: [LedgerTable; 6] = [
        LedgerTable::CutChangeSet,
        LedgerTable::CutChangeSetAffectedRow,
        LedgerTable::ManifestEnvelope,
        LedgerTable::ReviewDecision,
        LedgerTable::VerifyResult,
        LedgerTable::DotPairSignature,
    ];

    /// The table name in schema `cutter_governance`.
    pub fn name(self) -> &'static str {
        match self {
            LedgerTable::CutChangeSet => "cut_change_set",
            LedgerTable::CutChangeSetAffectedRow => "cut_change_set_affected_row",
            LedgerTable::ManifestEnvelope => "manifest_envelope",
            LedgerTable::ReviewDecision => "review_decision",
            LedgerTable::VerifyResult => "verify_result",
            LedgerTable::DotPairSignature => "dot_pair_signature",
        }
    }

    /// `cutter_governance.<name>`, quoted.
    pub(crate) fn qualified(self) -> String {
        format!("\"cutter_governance\".\"{}\"", self.name())
    }

    /// The payload columns covered by the row hash, in canonical order.
    pub(crate) fn columns(self) -> &'static [Column] {
        self.spec()
    }

    /// The names of the payload columns, in hash order (see the module docs).
    pub fn column_names(self) -> Vec<&'static str> {
        self.spec().iter().map(|c| c.name).collect()
    }

    fn spec(self) -> &'static [Column] {
        match self {
            LedgerTable::CutChangeSet => CUT_CHANGE_SET,
            LedgerTable::CutChangeSetAffectedRow => AFFECTED_ROW,
            LedgerTable::ManifestEnvelope => MANIFEST_ENVELOPE,
            LedgerTable::ReviewDecision => REVIEW_DECISION,
            LedgerTable::VerifyResult => VERIFY_RESULT,
            LedgerTable::DotPairSignature => DOT_PAIR_SIGNATURE,
        }
    }

    fn number(self) -> i32 {
        self as i32 + 1
    }

    fn tag(self) -> String {
        format!("cutter-ledger-v1/{}", self.name())
    }
}

impl fmt::Display for LedgerTable {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "cutter_governance.{}", self.name())
    }
}

// -------------------------------------------------------------------------------------
// Canonical values.
// -------------------------------------------------------------------------------------

/// The SQL expression giving a column's canonical text when read back.
fn read_expr(c: &Column) -> String {
    match c.kind {
        Text => format!("\"{}\"", c.name),
        BigInt | Json => format!("\"{}\"::text", c.name),
        Timestamp => format!("{TS_SQL_PREFIX}\"{}\"{TS_SQL_SUFFIX}", c.name),
    }
}

const TS_SQL_PREFIX: &str = "to_char(";
const TS_SQL_SUFFIX: &str = " AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS.US\"Z\"')";

/// The SQL that yields the transaction's `now()` in canonical timestamp form.
pub(crate) fn now_sql() -> String {
    format!("SELECT {TS_SQL_PREFIX}now(){TS_SQL_SUFFIX}")
}

/// Canonical JSON text of `v` (see the module docs).
pub(crate) fn canonical_json(v: &serde_json::Value) -> String {
    let mut out = String::new();
    write_json(v, &mut out);
    out
}

fn write_json(v: &serde_json::Value, out: &mut String) {
    use serde_json::Value;
    match v {
        Value::Null | Value::Bool(_) | Value::Number(_) | Value::String(_) => {
            out.push_str(&v.to_string())
        }
        Value::Array(items) => {
            out.push('[');
            for (i, item) in items.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                write_json(item, out);
            }
            out.push(']');
        }
        Value::Object(map) => {
            let mut members: Vec<(&String, &Value)> = map.iter().collect();
            members.sort_by(|a, b| a.0.as_bytes().cmp(b.0.as_bytes()));
            out.push('{');
            for (i, (k, item)) in members.into_iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                out.push_str(&Value::String(k.clone()).to_string());
                out.push(':');
                write_json(item, out);
            }
            out.push('}');
        }
    }
}

/// A ledger row before it is chained: its payload values as canonical text, in the
/// order of [`LedgerTable::columns`]; `None` is SQL NULL.
#[derive(Clone, PartialEq, Eq, Debug)]
pub(crate) struct NewRow(pub(crate) Vec<Option<String>>);

/// The row hash of `(id, values, prev_hash)` in `table` (see the module docs).
pub(crate) fn row_hash<'a>(
    table: LedgerTable,
    id: i64,
    values: impl IntoIterator<Item = Option<&'a [u8]>>,
    prev_hash: Option<&[u8]>,
) -> String {
    let mut h = CanonicalHasher::new(&table.tag());
    h.u64_field(id as u64);
    for v in values {
        h.opt_field(v);
    }
    h.opt_field(prev_hash);
    h.finish().to_hex()
}

// -------------------------------------------------------------------------------------
// Appending.
// -------------------------------------------------------------------------------------

/// Takes the advisory locks of `tables` in [`LedgerTable::ALL`] order; held until the
/// transaction ends.
pub(crate) fn lock_tables(tx: &mut Transaction<'_>, tables: &[LedgerTable]) -> Result<()> {
    let mut sorted = tables.to_vec();
    sorted.sort();
    sorted.dedup();
    for t in sorted {
        tx.execute(
            "SELECT pg_advisory_xact_lock($1, $2)",
            &[&LOCK_CLASS, &t.number()],
        )
        .map_err(Error::db(format!("locking the ledger chain of {t}")))?;
    }
    Ok(())
}

/// What an append wrote.
#[derive(Clone, PartialEq, Eq, Debug)]
pub(crate) struct Appended {
    /// The new rows' ids, ascending.
    pub(crate) ids: Vec<i64>,
    /// The new head of the chain.
    pub(crate) last_hash: String,
}

impl Appended {
    pub(crate) fn first_id(&self) -> i64 {
        self.ids[0]
    }
    pub(crate) fn last_id(&self) -> i64 {
        self.ids[self.ids.len() - 1]
    }
}

/// Appends `rows` to `table`'s chain inside `tx`: allocates ids in one statement, hashes
/// in Rust, inserts with one `COPY … FROM STDIN` (text format: each canonical text is
/// parsed by its column's input function). The caller must hold the table's lock
/// ([`lock_tables`]). Returns `None` for no rows.
pub(crate) fn append(
    tx: &mut Transaction<'_>,
    table: LedgerTable,
    rows: &[NewRow],
) -> Result<Option<Appended>> {
    if rows.is_empty() {
        return Ok(None);
    }
    let cols = table.columns();
    if let Some(bad) = rows.iter().find(|r| r.0.len() != cols.len()) {
        return Err(Error::Invalid(format!(
            "internal: a {table} row has {} values for {} columns",
            bad.0.len(),
            cols.len()
        )));
    }
    // The tail of the chain.
    let tail = tx
        .query_opt(
            &format!(
                "SELECT id, row_hash FROM {} ORDER BY id DESC LIMIT 1",
                table.qualified()
            ),
            &[],
        )
        .map_err(Error::db(format!(
            "reading the tail of the chain of {table}"
        )))?;
    let (tail_id, mut prev) = match tail {
        None => (0i64, GENESIS.to_string()),
        Some(r) => {
            let id: i64 = r.get(0);
            let hash: Option<String> = r.get(1);
            match hash {
                Some(h) if is_hex64(&h) => (id, h),
                // Rows written before cutter: the chain continues from their genesis
                // anchor (V3), if one covers them.
                None => match read_anchor(tx, table)? {
                    Some(a) if id <= a.through_id => (id, a.anchor_hash),
                    _ => {
                        return Err(Error::ChainUnusable {
                            table,
                            detail: format!(
                                "its last row (id {id}) carries no row_hash and no genesis anchor \
                                 covers it; run `cutter db upgrade` as the owner to anchor rows \
                                 written before cutter"
                            ),
                        })
                    }
                },
                _ => {
                    return Err(Error::ChainUnusable {
                        table,
                        detail: format!("its last row (id {id}) carries no valid row_hash"),
                    })
                }
            }
        }
    };
    // Ids, in one statement.
    let n = rows.len() as i64;
    let mut ids: Vec<i64> = tx
        .query(
            "SELECT nextval(pg_get_serial_sequence($1, 'id')) FROM generate_series(1, $2::bigint)",
            &[&format!("cutter_governance.{}", table.name()), &n],
        )
        .map_err(Error::db(format!("allocating {n} ids for {table}")))?
        .iter()
        .map(|r| r.get::<_, i64>(0))
        .collect();
    ids.sort_unstable();
    if ids.first().is_some_and(|&first| first <= tail_id) {
        return Err(Error::ChainUnusable {
            table,
            detail: format!(
                "its id sequence yields {} but the table already holds id {tail_id}",
                ids[0]
            ),
        });
    }
    // Hashes.
    let mut prevs = Vec::with_capacity(rows.len());
    let mut hashes = Vec::with_capacity(rows.len());
    for (row, &id) in rows.iter().zip(&ids) {
        let h = row_hash(
            table,
            id,
            row.0.iter().map(|v| v.as_deref().map(str::as_bytes)),
            Some(prev.as_bytes()),
        );
        prevs.push(std::mem::replace(&mut prev, h.clone()));
        hashes.push(h);
    }
    // Insert: one COPY (text format; each value parsed by its column's input function).
    let names: Vec<String> = cols.iter().map(|c| format!("\"{}\"", c.name)).collect();
    let sql = format!(
        "COPY {} (id, {}, prev_hash, row_hash) FROM STDIN",
        table.qualified(),
        names.join(", ")
    );
    let what = format!("inserting {} row(s) into {table}", rows.len());
    let sink = tx.copy_in(&sql).map_err(Error::db(what.clone()))?;
    let mut w = BufWriter::with_capacity(1 << 20, sink);
    let written = (|| -> std::io::Result<()> {
        let mut line = String::with_capacity(512);
        for ((row, id), (prev, hash)) in rows.iter().zip(&ids).zip(prevs.iter().zip(&hashes)) {
            line.clear();
            line.push_str(&id.to_string());
            for v in &row.0 {
                line.push('\t');
                match v {
                    None => line.push_str("\\N"),
                    Some(v) => copy_escape(v, &mut line),
                }
            }
            line.push('\t');
            line.push_str(prev);
            line.push('\t');
            line.push_str(hash);
            line.push('\n');
            w.write_all(line.as_bytes())?;
        }
        w.flush()
    })();
    let finished = match (written, w.into_inner()) {
        (Ok(()), Ok(sink)) => sink
            .finish()
            .map_err(|source| insert_error(table, &what, source)),
        (Err(e), _) => Err(copy_error(table, &what, e)),
        (Ok(()), Err(e)) => Err(copy_error(table, &what, e.into_error())),
    };
    finished?;
    Ok(Some(Appended {
        last_hash: hashes.pop().unwrap_or_default(),
        ids,
    }))
}

pub(crate) fn is_hex64(s: &str) -> bool {
    s.len() == 64 && s.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'))
}

// -------------------------------------------------------------------------------------
// Verifying.
// -------------------------------------------------------------------------------------

/// The first broken link of a chain.
#[derive(Clone, PartialEq, Eq, Debug, Serialize)]
pub struct BrokenLink {
    /// The table.
    pub table: LedgerTable,
    /// The row at which the chain breaks.
    pub id: i64,
    /// What is wrong.
    pub what: String,
}

impl fmt::Display for BrokenLink {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} row id {}: {}", self.table, self.id, self.what)
    }
}

/// A genesis anchor (`cutter_governance.ledger_anchor`, V3): commits to the rows a
/// table held before cutter wrote to it (ids up to `through_id`) by their count and
/// digest; the chain's first cutter row has `anchor_hash` as its `prev_hash`.
#[derive(Clone, PartialEq, Eq, Debug, Serialize)]
pub struct Anchor {
    /// The last id it covers.
    pub through_id: i64,
    /// Rows it covers.
    pub row_count: i64,
    /// `fn_ledger_legacy_digest` of those rows when anchored.
    pub rows_sha256: String,
    /// The recorded hash of the anchor.
    pub anchor_hash: String,
}

impl Anchor {
    /// The hash the anchor's fields give: sha256 of
    /// `cutter-ledger-anchor-v1/<table>/<through_id>/<row_count>/<rows_sha256>`.
    pub fn computed_hash(&self, table: LedgerTable) -> String {
        cutter_core::Sha256Digest::of(
            format!(
                "cutter-ledger-anchor-v1/{}/{}/{}/{}",
                table.name(),
                self.through_id,
                self.row_count,
                self.rows_sha256
            )
            .as_bytes(),
        )
        .to_hex()
    }
}

/// The genesis anchor of `table`, if the schema has anchors (V3) and the table has one.
pub(crate) fn read_anchor<C: GenericClient>(
    c: &mut C,
    table: LedgerTable,
) -> Result<Option<Anchor>> {
    let has: bool = c
        .query_one(
            "SELECT to_regclass('cutter_governance.ledger_anchor') IS NOT NULL",
            &[],
        )
        .map_err(Error::db("looking for cutter_governance.ledger_anchor"))?
        .get(0);
    if !has {
        return Ok(None);
    }
    Ok(c.query_opt(
        "SELECT through_id, row_count, rows_sha256, anchor_hash \
               FROM cutter_governance.ledger_anchor WHERE ledger_table = $1",
        &[&table.name()],
    )
    .map_err(Error::db(format!("reading the genesis anchor of {table}")))?
    .map(|r| Anchor {
        through_id: r.get(0),
        row_count: r.get(1),
        rows_sha256: r.get(2),
        anchor_hash: r.get(3),
    }))
}

/// One table's verification.
#[derive(Clone, PartialEq, Eq, Debug, Serialize)]
pub struct TableReport {
    /// The table.
    pub table: LedgerTable,
    /// Rows read and checked.
    pub rows: u64,
    /// The genesis anchor of rows written before cutter, if the table has one; its rows
    /// are counted in `rows` and checked against the anchor's count and digest.
    pub anchor: Option<Anchor>,
    /// The last row's id and `row_hash` (the chain head), if the table has rows. Record
    /// it outside the database to detect a rewrite of the whole chain later.
    pub head: Option<(i64, String)>,
    /// The first broken link, if any.
    pub broken: Option<BrokenLink>,
}

/// What [`verify_ledger`] found.
#[derive(Clone, PartialEq, Eq, Debug, Serialize)]
pub struct LedgerReport {
    /// One entry per ledger table, in [`LedgerTable::ALL`] order.
    pub tables: Vec<TableReport>,
}

impl LedgerReport {
    /// Rows checked over all tables.
    pub fn rows(&self) -> u64 {
        self.tables.iter().map(|t| t.rows).sum()
    }
    /// The first broken link, in table order.
    pub fn first_broken(&self) -> Option<&BrokenLink> {
        self.tables.iter().find_map(|t| t.broken.as_ref())
    }
    /// Whether every chain is intact.
    pub fn is_intact(&self) -> bool {
        self.first_broken().is_none()
    }
    /// `Ok` if every chain is intact, else [`Error::LedgerTampered`] naming the first
    /// broken link.
    pub fn ensure_intact(&self) -> Result<()> {
        match self.first_broken() {
            None => Ok(()),
            Some(b) => Err(Error::LedgerTampered {
                table: b.table,
                id: b.id,
                what: b.what.clone(),
            }),
        }
    }
}

impl fmt::Display for LedgerReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for t in &self.tables {
            match &t.broken {
                None => write!(f, "{}: {} row(s), chain intact", t.table, t.rows)?,
                Some(b) => write!(f, "{}: BROKEN at row id {}: {}", t.table, b.id, b.what)?,
            }
            if let Some(a) = &t.anchor {
                write!(
                    f,
                    " ({} row(s) written before cutter, ids up to {}, anchored by genesis entry {})",
                    a.row_count, a.through_id, a.anchor_hash
                )?;
            }
            if let Some((id, h)) = &t.head {
                write!(f, " (head id {id} {h})")?;
            }
            writeln!(f)?;
        }
        Ok(())
    }
}

/// Recomputes the hash chain of every ledger table and reports, per table, the rows
/// checked and the first broken link. Streams each table with `COPY … TO STDOUT` in
/// binary form: memory stays bounded whatever the ledger's size. Needs only SELECT
/// (run it as `cutter_verify`).
pub fn verify_ledger<C: GenericClient>(client: &mut C) -> Result<LedgerReport> {
    let mut tables = Vec::with_capacity(6);
    for t in LedgerTable::ALL {
        tables.push(verify_table(client, t)?);
    }
    Ok(LedgerReport { tables })
}

/// A chain head recorded earlier, as the table holds it now: the rows up to and including
/// row `id`, and that row's `row_hash` (`None`: there is no row `id`). A report's recorded
/// head stays checkable after the chain has grown. Reads only.
pub fn head_at<C: GenericClient>(
    client: &mut C,
    table: LedgerTable,
    id: i64,
) -> Result<Option<(u64, String)>> {
    let q = table.qualified();
    let row = client
        .query_one(
            &format!(
                "SELECT (SELECT count(*) FROM {q} WHERE id <= $1), \
                        (SELECT row_hash FROM {q} WHERE id = $1)"
            ),
            &[&id],
        )
        .map_err(Error::db(format!("reading row {id} of {table}")))?;
    let rows: i64 = row.get(0);
    let hash: Option<String> = row.get(1);
    Ok(hash.map(|h| (rows as u64, h)))
}

/// Verifies one table's chain (see [`verify_ledger`]).
pub fn verify_table<C: GenericClient>(client: &mut C, table: LedgerTable) -> Result<TableReport> {
    let cols = table.columns();
    let exprs: Vec<String> = cols.iter().map(read_expr).collect();
    let what = format!("reading {table} for verification");
    let io_err = |e: std::io::Error| copy_error(table, &what, e);
    let n_fields = cols.len() + 3;
    let mut fields: Vec<Option<Vec<u8>>> = vec![None; n_fields];
    let anchor = read_anchor(client, table)?;
    let mut broken: Option<BrokenLink> = None;
    let mut expected_prev: Vec<u8> = match &anchor {
        None => GENESIS.as_bytes().to_vec(),
        Some(a) => {
            let computed = a.computed_hash(table);
            if computed != a.anchor_hash {
                broken = Some(BrokenLink {
                    table,
                    id: a.through_id,
                    what: format!(
                        "the genesis anchor's anchor_hash {} is not the hash of its fields ({computed}): \
                         the anchor was modified after it was written",
                        a.anchor_hash
                    ),
                });
            }
            computed.into_bytes()
        }
    };
    let through = anchor.as_ref().map_or(0, |a| a.through_id);
    let mut rows = 0u64;
    let sql = format!(
        "COPY (SELECT id, {}, prev_hash, row_hash FROM {} ORDER BY id) TO STDOUT (FORMAT binary)",
        exprs.join(", "),
        table.qualified()
    );
    let reader = client.copy_out(&sql).map_err(Error::db(what.clone()))?;
    let mut copy = BinaryCopy::new(BufReader::with_capacity(1 << 16, reader));
    copy.header().map_err(io_err)?;
    while copy.next_row(&mut fields).map_err(io_err)? {
        rows += 1;
        let id = match fields[0].as_deref() {
            Some(b) if b.len() == 8 => i64::from_be_bytes(b.try_into().unwrap_or_default()),
            _ => {
                return Err(Error::Invalid(format!(
                    "{what}: a row of {table} without a readable id"
                )))
            }
        };
        if id <= through {
            // Written before cutter: covered by the anchor's count and digest below.
            continue;
        }
        if broken.is_none() {
            broken = check_row(table, id, cols, &fields, &expected_prev);
        }
        let stored = fields[n_fields - 1].as_deref().unwrap_or_default();
        expected_prev.clear();
        expected_prev.extend_from_slice(stored);
    }
    let head = (rows > 0).then(|| {
        let id = fields[0]
            .as_deref()
            .and_then(|b| b.try_into().ok())
            .map(i64::from_be_bytes)
            .unwrap_or_default();
        (id, String::from_utf8_lossy(&expected_prev).into_owned())
    });
    drop(copy);
    if let (Some(a), None) = (&anchor, &broken) {
        broken = check_anchored_rows(client, table, a)?;
    }
    Ok(TableReport {
        table,
        rows,
        anchor,
        head,
        broken,
    })
}

/// Recomputes, on the server, the count and digest of the rows an anchor covers
/// (`fn_ledger_legacy_digest`, V3) and compares them with the anchor.
fn check_anchored_rows<C: GenericClient>(
    client: &mut C,
    table: LedgerTable,
    a: &Anchor,
) -> Result<Option<BrokenLink>> {
    let r = client
        .query_one(
            "SELECT row_count, rows_sha256 FROM cutter_governance.fn_ledger_legacy_digest($1, $2)",
            &[&table.name(), &a.through_id],
        )
        .map_err(Error::db(format!(
            "digesting the rows of {table} written before cutter"
        )))?;
    let (count, digest): (i64, String) = (r.get(0), r.get(1));
    if count == a.row_count && digest == a.rows_sha256 {
        return Ok(None);
    }
    Ok(Some(BrokenLink {
        table,
        id: a.through_id,
        what: format!(
            "the rows written before cutter (ids up to {}) no longer match their genesis anchor: \
             {count} row(s) with digest {digest}, anchored {} row(s) with digest {}; a row was \
             changed, added or removed after adoption",
            a.through_id, a.row_count, a.rows_sha256
        ),
    }))
}

/// Checks one row against the expected `prev_hash`; the first problem, if any.
fn check_row(
    table: LedgerTable,
    id: i64,
    cols: &[Column],
    fields: &[Option<Vec<u8>>],
    expected_prev: &[u8],
) -> Option<BrokenLink> {
    let n = fields.len();
    let prev = fields[n - 2].as_deref();
    let stored = fields[n - 1].as_deref();
    let broken = |what: String| Some(BrokenLink { table, id, what });
    if prev != Some(expected_prev) {
        return broken(match prev {
            None => "prev_hash is missing: the row was not written by cutter".into(),
            Some(p) => format!(
                "prev_hash {} is not the row_hash of the previous row ({}): a row was deleted, inserted or re-numbered before it",
                String::from_utf8_lossy(p),
                String::from_utf8_lossy(expected_prev)
            ),
        });
    }
    let mut canon: Vec<Option<Cow<'_, [u8]>>> = Vec::with_capacity(cols.len());
    for (i, c) in cols.iter().enumerate() {
        let raw = fields[i + 1].as_deref();
        let v = match (c.kind, raw) {
            (Json, Some(raw)) => match serde_json::from_slice::<serde_json::Value>(raw) {
                Ok(v) => Some(Cow::Owned(canonical_json(&v).into_bytes())),
                Err(e) => return broken(format!("{} is not JSON: {e}", c.name)),
            },
            (_, raw) => raw.map(Cow::Borrowed),
        };
        canon.push(v);
    }
    let computed = row_hash(table, id, canon.iter().map(|v| v.as_deref()), prev);
    match stored {
        None => broken("row_hash is missing: the row was not written by cutter".into()),
        Some(s) if s != computed.as_bytes() => broken(
            "row_hash does not match the row's content: the row was modified after it was written"
                .into(),
        ),
        Some(_) => None,
    }
}

/// Escapes a value for COPY's text format.
fn copy_escape(v: &str, out: &mut String) {
    for c in v.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            c => out.push(c),
        }
    }
}

/// An insert's server error; a unique violation of a `<table>_chain` index is a
/// concurrent writer.
fn insert_error(table: LedgerTable, what: &str, source: postgres::Error) -> Error {
    if source.code() == Some(&postgres::error::SqlState::UNIQUE_VIOLATION)
        && source
            .as_db_error()
            .and_then(|d| d.constraint())
            .is_some_and(|c| c.ends_with("_chain"))
    {
        Error::ChainContention { table, source }
    } else {
        Error::Db {
            what: what.to_string(),
            source,
        }
    }
}

/// A COPY stream error: the server's error if it carried one.
fn copy_error(table: LedgerTable, what: &str, e: std::io::Error) -> Error {
    let kind = e.kind();
    match e.into_inner().map(|b| b.downcast::<postgres::Error>()) {
        Some(Ok(source)) => Error::Db {
            what: what.to_string(),
            source: *source,
        },
        Some(Err(other)) => Error::Invalid(format!("{what}: {table}: COPY stream: {other}")),
        None => Error::Invalid(format!("{what}: {table}: COPY stream: {kind}")),
    }
}

/// A reader of PostgreSQL's binary COPY format.
struct BinaryCopy<R> {
    r: R,
}

const COPY_SIGNATURE: &[u8; 11] = b"PGCOPY\n\xff\r\n\0";

impl<R: Read> BinaryCopy<R> {
    fn new(r: R) -> Self {
        Self { r }
    }

    fn header(&mut self) -> std::io::Result<()> {
        let mut sig = [0u8; 11];
        self.r.read_exact(&mut sig)?;
        if &sig != COPY_SIGNATURE {
            return Err(std::io::Error::new(
                std::io::ErrorKind::InvalidData,
                "not a binary COPY stream",
            ));
        }
        let _flags = self.i32()?;
        let ext = self.i32()?;
        if ext > 0 {
            let mut skip = vec![0u8; ext as usize];
            self.r.read_exact(&mut skip)?;
        }
        Ok(())
    }

    fn i32(&mut self) -> std::io::Result<i32> {
        let mut b = [0u8; 4];
        self.r.read_exact(&mut b)?;
        Ok(i32::from_be_bytes(b))
    }

    /// Reads the next tuple into `fields` (reusing their buffers); `false` at the end.
    fn next_row(&mut self, fields: &mut [Option<Vec<u8>>]) -> std::io::Result<bool> {
        let mut b = [0u8; 2];
        self.r.read_exact(&mut b)?;
        let count = i16::from_be_bytes(b);
        if count == -1 {
            return Ok(false);
        }
        if count as usize != fields.len() {
            return Err(std::io::Error::new(
                std::io::ErrorKind::InvalidData,
                format!("{count} fields in a row, expected {}", fields.len()),
            ));
        }
        for f in fields.iter_mut() {
            let len = self.i32()?;
            if len < 0 {
                *f = None;
            } else {
                let buf = f.get_or_insert_with(Vec::new);
                buf.clear();
                buf.resize(len as usize, 0);
                self.r.read_exact(buf)?;
            }
        }
        Ok(true)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn canonical_json_sorts_keys_and_drops_whitespace() {
        let v: serde_json::Value =
            serde_json::from_str(r#"{ "b": [1, {"z": null, "a": "x\"y"}], "a": true, "ä": 1 }"#)
                .unwrap();
        assert_eq!(
            canonical_json(&v),
            r#"{"a":true,"b":[1,{"a":"x\"y","z":null}],"ä":1}"#
        );
        // PostgreSQL's jsonb output re-parses to the same canonical text.
        let pg = r#"{"a": true, "b": [1, {"a": "x\"y", "z": null}], "ä": 1}"#;
        assert_eq!(
            canonical_json(&serde_json::from_str(pg).unwrap()),
            canonical_json(&v)
        );
    }

    #[test]
    fn row_hash_covers_every_part() {
        let base = row_hash(
            LedgerTable::ReviewDecision,
            7,
            [Some(&b"r1"[..]), None],
            Some(GENESIS.as_bytes()),
        );
        assert!(is_hex64(&base));
        let variants = [
            row_hash(
                LedgerTable::VerifyResult,
                7,
                [Some(&b"r1"[..]), None],
                Some(GENESIS.as_bytes()),
            ),
            row_hash(
                LedgerTable::ReviewDecision,
                8,
                [Some(&b"r1"[..]), None],
                Some(GENESIS.as_bytes()),
            ),
            row_hash(
                LedgerTable::ReviewDecision,
                7,
                [Some(&b"r2"[..]), None],
                Some(GENESIS.as_bytes()),
            ),
            row_hash(
                LedgerTable::ReviewDecision,
                7,
                [Some(&b"r1"[..]), Some(&b""[..])],
                Some(GENESIS.as_bytes()),
            ),
            row_hash(
                LedgerTable::ReviewDecision,
                7,
                [Some(&b"r1"[..]), None],
                None,
            ),
        ];
        for v in variants {
            assert_ne!(v, base);
        }
    }

    #[test]
    fn known_row_hash_vector() {
        // Computed independently (Python, from the module docs): pins the canonical form;
        // changing it breaks every existing ledger.
        let h = row_hash(
            LedgerTable::DotPairSignature,
            1,
            [Some(&b"run-1"[..]), Some(&b"SG_1"[..])],
            Some(GENESIS.as_bytes()),
        );
        assert_eq!(
            h,
            "e2eb610b79a2224a926477a1d8a2dda480f0fa50a9d87b3a1c2abb2176767074"
        );
    }

    #[test]
    fn the_documented_column_order_is_the_hashed_one() {
        let docs = include_str!("chain.rs");
        for t in LedgerTable::ALL {
            let line = format!(
                "//! | `{}` ({}) | {} |",
                t.name(),
                t.number(),
                t.column_names().join(", ")
            );
            assert!(docs.contains(&line), "module docs lack {line}");
        }
    }

    #[test]
    fn copy_text_escaping() {
        let mut s = String::new();
        copy_escape("a\\b\tc\nd\re\\.", &mut s);
        assert_eq!(s, "a\\\\b\\tc\\nd\\re\\\\.");
    }

    #[test]
    fn binary_copy_reader_parses_rows_and_nulls() {
        let mut data = COPY_SIGNATURE.to_vec();
        data.extend(0i32.to_be_bytes());
        data.extend(0i32.to_be_bytes());
        data.extend(2i16.to_be_bytes());
        data.extend(3i32.to_be_bytes());
        data.extend(b"abc");
        data.extend((-1i32).to_be_bytes());
        data.extend((-1i16).to_be_bytes());
        let mut r = BinaryCopy::new(&data[..]);
        r.header().unwrap();
        let mut f = vec![None, None];
        assert!(r.next_row(&mut f).unwrap());
        assert_eq!(f, vec![Some(b"abc".to_vec()), None]);
        assert!(!r.next_row(&mut f).unwrap());
    }
}
