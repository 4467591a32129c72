//! The canonical content digest of `cutter-pg` (`cutter_pg::surface`), computed from a
//! table's COPY text as pg_dump streams it, so the backup needs no second pass over the
//! table on the server:
//!
//! ```text
//! digest = SHA-256( SHA-256(row_1) ‖ … ‖ SHA-256(row_n) ),  rows in ascending id order
//! row_i  = UTF-8 of the row's record text (`r::text`): "(" v1 "," v2 … ")"
//! ```
//!
//! COPY text and record text print each value with the same type output function;
//! they differ only in framing: COPY separates with tabs, escapes `\b \f \n \r \t \v \\`
//! and writes NULL as `\N`; record text separates with commas, writes NULL as nothing,
//! and double-quotes a value that is empty or contains `"`, `\`, `(`, `)`, `,` or
//! white space, doubling `"` and `\` inside. This module translates one into the other.
//!
//! pg_dump reads a table in physical order, which is id order for append-only tables
//! and nearly so after updates. Row digests wait in a bounded reordering window
//! (`WINDOW` rows, 2.5 MiB); a row that would have to go before one already released
//! makes the table's stream digest unusable, and the caller computes that table's digest
//! on the server instead (same snapshot).
//!
//! A row's record text is built in a buffer and hashed when the row ends, two rows at a
//! time: their SHA-256 blocks are compressed alternately, so the two chains overlap in
//! the CPU instead of running one after the other. A value that lies whole in one piece
//! of the stream, unescaped (most of them), goes into that buffer straight from the
//! piece.
//!
//! Memory is bounded whatever the table size: the window; the current field up to
//! `SPILL` bytes (a longer value is hashed both ways as it streams, and the right
//! variant is kept at the end); and two rows' record text, each hashed as it streams
//! once it passes `SPILL` bytes.

use std::cmp::Reverse;
use std::collections::{BinaryHeap, VecDeque};

use cutter_core::{SetDigest, Sha256Digest};
use sha2::{Digest as _, Sha256};

/// Row digests held back for reordering.
pub(crate) const WINDOW: usize = 65_536;
/// Field bytes buffered before hashing them as they come.
const SPILL: usize = 1 << 20;

/// Bytes that force double quotes in record text (besides the empty string).
const QUOTE: [bool; 256] = {
    let mut t = [false; 256];
    let special = [
        b'"', b'\\', b'(', b')', b',', b' ', b'\t', b'\n', b'\r', 0x0B, 0x0C,
    ];
    let mut i = 0;
    while i < special.len() {
        t[special[i] as usize] = true;
        i += 1;
    }
    t
};

fn needs_quote(b: u8) -> bool {
    QUOTE[b as usize]
}

/// Writes `v` as a quoted record value body (without the quotes): `"` and `\` doubled.
fn put_doubled(mut put: impl FnMut(&[u8]), v: &[u8]) {
    let mut rest = v;
    while let Some(i) = memchr::memchr2(b'"', b'\\', rest) {
        put(&rest[..=i]);
        put(&rest[i..=i]);
        rest = &rest[i + 1..];
    }
    put(rest);
}

/// Appends `v` to `rec` as a record value: double-quoted when it is empty or `quote`
/// says it holds a byte that needs it.
fn put_value(rec: &mut Vec<u8>, v: &[u8], quote: bool) {
    if quote || v.is_empty() {
        rec.push(b'"');
        put_doubled(|b| rec.extend_from_slice(b), v);
        rec.push(b'"');
    } else {
        rec.extend_from_slice(v);
    }
}

/// The SHA-256 digests of `a` and `b`, fed a 64-octet block of each in turn, so that
/// the two compression chains (SHA-NI where the CPU has it) overlap.
fn sha256_pair(a: &[u8], b: &[u8]) -> ([u8; 32], [u8; 32]) {
    let (mut ha, mut hb) = (Sha256::new(), Sha256::new());
    let (mut ia, mut ib) = (a.chunks(64), b.chunks(64));
    loop {
        match (ia.next(), ib.next()) {
            (Some(x), Some(y)) => {
                ha.update(x);
                hb.update(y);
            }
            (Some(x), None) => ha.update(x),
            (None, Some(y)) => hb.update(y),
            (None, None) => break,
        }
    }
    (ha.finalize().into(), hb.finalize().into())
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Escape {
    None,
    /// After a backslash.
    Backslash,
    /// `\d`, `\dd`: octal digits so far and value.
    Octal(u8, u8),
    /// `\x`, `\xh`: hex digits so far and value.
    Hex(u8, u8),
}

/// Row digests waiting to be released in id order: rows that arrive with an id above
/// every id seen so far (the common case) queue in `tail`, already sorted; the others
/// wait in a heap. Releasing takes the smaller of the two fronts, so the cost per row
/// is O(1) for ordered tables and O(log n) only for rows that came out of order.
struct Window {
    heap: BinaryHeap<Reverse<(i64, [u8; 32])>>,
    tail: VecDeque<(i64, [u8; 32])>,
}

impl Window {
    fn new() -> Self {
        Self {
            heap: BinaryHeap::new(),
            tail: VecDeque::new(),
        }
    }

    fn len(&self) -> usize {
        self.heap.len() + self.tail.len()
    }

    fn push(&mut self, id: i64, d: [u8; 32], max_seen: Option<i64>) {
        if max_seen.is_none_or(|m| id > m) {
            self.tail.push_back((id, d));
        } else {
            self.heap.push(Reverse((id, d)));
        }
    }

    fn pop(&mut self) -> Option<(i64, [u8; 32])> {
        let from_heap = match (self.heap.peek(), self.tail.front()) {
            (Some(Reverse(h)), Some(t)) => h.0 < t.0,
            (Some(_), None) => true,
            (None, _) => false,
        };
        if from_heap {
            self.heap.pop().map(|Reverse(x)| x)
        } else {
            self.tail.pop_front()
        }
    }
}

/// A value longer than `SPILL`, hashed both ways as it streams.
#[derive(Clone)]
struct Spilled {
    /// Row hash continued with `"` and the doubled value so far.
    quoted: Sha256,
    /// Row hash continued with the raw value so far (valid while `!needs_quote`).
    plain: Sha256,
    needs_quote: bool,
}

/// Computes the row count and canonical digest of one table from its COPY text.
pub(crate) struct RowDigester {
    ncols: usize,
    /// The first `hashed` columns are the canonical row; the rest (the backup
    /// watermark) are parsed and skipped.
    hashed: usize,
    id_col: usize,
    col: usize,
    /// The current value, when it is escaped or split between pieces of the stream.
    field: Vec<u8>,
    field_null: bool,
    field_quote: bool,
    spilled: Option<Box<Spilled>>,
    esc: Escape,
    /// The current row's record text not hashed yet.
    rec: Vec<u8>,
    /// The row's hash so far, when the row outgrew `rec` (a spilled value, or `SPILL`
    /// bytes of record text); the row's text is this, then `rec`.
    stream: Option<Sha256>,
    /// The previous row's whole record text, waiting to be hashed beside the next one
    /// (empty when `held_id` is `None`).
    held: Vec<u8>,
    held_id: Option<i64>,
    id: Option<i64>,
    rows: u64,
    outer: Sha256,
    window: Window,
    max_seen: Option<i64>,
    last_released: Option<i64>,
    ended: bool,
    failed: Option<String>,
    /// The order-independent digest of the rows (what a backup chain adds up).
    set: SetDigest,
}

impl std::fmt::Debug for RowDigester {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RowDigester")
            .field("rows", &self.rows)
            .field("failed", &self.failed)
            .finish_non_exhaustive()
    }
}

/// The outcome for one table.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum RowDigest {
    /// Rows and canonical digest.
    Done { rows: u64, digest: Sha256Digest },
    /// The stream could not be digested; why.
    Unusable(String),
}

impl RowDigester {
    /// A digester for rows of `ncols` columns whose `id` is column `id_col`.
    pub(crate) fn new(ncols: usize, id_col: usize) -> Self {
        let mut rec = Vec::with_capacity(4096);
        rec.push(b'(');
        Self {
            ncols,
            hashed: ncols,
            id_col,
            col: 0,
            field: Vec::with_capacity(4096),
            field_null: false,
            field_quote: false,
            spilled: None,
            esc: Escape::None,
            rec,
            stream: None,
            held: Vec::with_capacity(4096),
            held_id: None,
            id: None,
            rows: 0,
            outer: Sha256::new(),
            window: Window::new(),
            max_seen: None,
            last_released: None,
            ended: false,
            failed: None,
            set: SetDigest::EMPTY,
        }
    }

    /// Hashes only the first `n` columns of each row (`n <= ncols`).
    pub(crate) fn hashing(mut self, n: usize) -> Self {
        self.hashed = n.min(self.ncols);
        self
    }

    fn fail(&mut self, why: String) {
        if self.failed.is_none() {
            self.failed = Some(why);
        }
        self.window = Window::new();
        self.field = Vec::new();
        self.rec = Vec::new();
        self.held = Vec::new();
        self.held_id = None;
        self.stream = None;
        self.spilled = None;
    }

    /// Feeds COPY text.
    pub(crate) fn feed(&mut self, mut data: &[u8]) {
        while !data.is_empty() && self.failed.is_none() && !self.ended {
            if self.esc != Escape::None {
                let b = data[0];
                data = &data[1..];
                self.escape_byte(b);
                continue;
            }
            match memchr::memchr3(b'\t', b'\n', b'\\', data) {
                None => {
                    self.push(data);
                    data = &[];
                }
                Some(i) => {
                    let b = data[i];
                    if b == b'\\' {
                        self.push(&data[..i]);
                        self.esc = Escape::Backslash;
                    } else {
                        if self.field.is_empty() && self.spilled.is_none() && !self.field_null {
                            // The whole value is in this piece, unescaped.
                            let v = &data[..i];
                            self.value(v, v.iter().any(|&b| needs_quote(b)));
                        } else {
                            self.push(&data[..i]);
                            self.end_field();
                        }
                        if b == b'\n' {
                            self.end_row();
                        }
                    }
                    data = &data[i + 1..];
                }
            }
        }
    }

    fn escape_byte(&mut self, b: u8) {
        match self.esc {
            Escape::Backslash => {
                self.esc = Escape::None;
                let out = match b {
                    b'b' => 0x08,
                    b'f' => 0x0C,
                    b'n' => b'\n',
                    b'r' => b'\r',
                    b't' => b'\t',
                    b'v' => 0x0B,
                    b'N' => {
                        self.field_null = true;
                        return;
                    }
                    b'.' if self.col == 0 && self.field.is_empty() && self.spilled.is_none() => {
                        // End-of-data marker line; what follows is padding.
                        self.ended = true;
                        return;
                    }
                    b'0'..=b'7' => {
                        self.esc = Escape::Octal(1, b - b'0');
                        return;
                    }
                    b'x' => {
                        self.esc = Escape::Hex(0, 0);
                        return;
                    }
                    other => other,
                };
                self.push(&[out]);
            }
            Escape::Octal(n, v) => {
                if (b'0'..=b'7').contains(&b) && n < 3 {
                    let v = v.wrapping_mul(8).wrapping_add(b - b'0');
                    if n + 1 == 3 {
                        self.esc = Escape::None;
                        self.push(&[v]);
                    } else {
                        self.esc = Escape::Octal(n + 1, v);
                    }
                } else {
                    self.esc = Escape::None;
                    self.push(&[v]);
                    self.feed(&[b]);
                }
            }
            Escape::Hex(n, v) => {
                let d = (b as char).to_digit(16);
                match d {
                    Some(d) if n < 2 => {
                        let v = v.wrapping_mul(16).wrapping_add(d as u8);
                        if n + 1 == 2 {
                            self.esc = Escape::None;
                            self.push(&[v]);
                        } else {
                            self.esc = Escape::Hex(n + 1, v);
                        }
                    }
                    _ => {
                        self.esc = Escape::None;
                        if n == 0 {
                            self.push(b"x");
                        } else {
                            self.push(&[v]);
                        }
                        self.feed(&[b]);
                    }
                }
            }
            Escape::None => unreachable!("escape_byte outside an escape"),
        }
    }

    /// Appends decoded value bytes to the current field.
    fn push(&mut self, bytes: &[u8]) {
        if bytes.is_empty() {
            return;
        }
        if !self.field_quote {
            self.field_quote = bytes.iter().any(|&b| needs_quote(b));
        }
        self.field.extend_from_slice(bytes);
        if self.field.len() >= SPILL {
            self.spill();
        }
    }

    /// The row's hash so far, with `rec` hashed into it.
    fn row_stream(&mut self) -> &mut Sha256 {
        let s = self.stream.get_or_insert_with(Sha256::new);
        s.update(&self.rec);
        self.rec.clear();
        s
    }

    /// Hashes the buffered part of a long field both ways.
    fn spill(&mut self) {
        if self.spilled.is_none() {
            let plain = self.row_stream().clone();
            let mut quoted = plain.clone();
            quoted.update(b"\"");
            self.spilled = Some(Box::new(Spilled {
                quoted,
                plain,
                needs_quote: false,
            }));
        }
        let s = self.spilled.as_mut().expect("spilled");
        put_doubled(|b| s.quoted.update(b), &self.field);
        s.needs_quote |= self.field_quote;
        if !s.needs_quote {
            s.plain.update(&self.field);
        }
        self.field.clear();
    }

    /// The current field (buffered in `field`, or spilled) ended.
    fn end_field(&mut self) {
        if self.spilled.is_none() {
            let field = std::mem::take(&mut self.field);
            self.value(&field, self.field_quote);
            self.field = field;
            self.field.clear();
            return;
        }
        if self.col == self.id_col {
            self.id = None;
        }
        if self.col < self.hashed {
            self.spill();
            let s = self.spilled.take().expect("spilled");
            self.stream = Some(if s.needs_quote {
                let mut q = s.quoted;
                q.update(b"\"");
                q
            } else {
                s.plain
            });
        }
        // A spilled value past the canonical columns is dropped unhashed.
        self.spilled = None;
        self.field.clear();
        self.next_col();
    }

    /// A field whose value is `v` ended (`quote`: it holds a byte that needs quoting).
    fn value(&mut self, v: &[u8], quote: bool) {
        if self.col == self.id_col {
            self.id = if self.field_null {
                None
            } else {
                std::str::from_utf8(v).ok().and_then(|s| s.parse().ok())
            };
        }
        // NULL is nothing between the commas; columns past `hashed` are not part of the
        // canonical row.
        if self.col < self.hashed && !self.field_null {
            put_value(&mut self.rec, v, quote);
        }
        self.next_col();
    }

    fn next_col(&mut self) {
        self.field_null = false;
        self.field_quote = false;
        self.col += 1;
        if self.col < self.hashed {
            self.rec.push(b',');
        }
        if self.rec.len() >= SPILL {
            // Memory stays bounded however many columns a row has.
            self.row_stream();
        }
    }

    fn end_row(&mut self) {
        if self.col != self.ncols {
            let why = format!(
                "row {} has {} columns, the COPY statement {}",
                self.rows + 1,
                self.col,
                self.ncols
            );
            self.fail(why);
            return;
        }
        self.rec.push(b')');
        self.col = 0;
        self.rows += 1;
        let Some(id) = self.id.take() else {
            self.fail(format!("row {} has no integer id", self.rows));
            return;
        };
        if let Some(mut h) = self.stream.take() {
            h.update(&self.rec);
            self.flush_held();
            self.row_done(id, h.finalize().into());
        } else if let Some(held_id) = self.held_id.take() {
            let (a, b) = sha256_pair(&self.held, &self.rec);
            self.held.clear();
            self.row_done(held_id, a);
            self.row_done(id, b);
        } else {
            std::mem::swap(&mut self.held, &mut self.rec);
            self.held_id = Some(id);
        }
        self.rec.clear();
        self.rec.push(b'(');
    }

    /// Hashes the row waiting for a partner on its own.
    fn flush_held(&mut self) {
        if let Some(id) = self.held_id.take() {
            let d = Sha256::digest(&self.held).into();
            self.held.clear();
            self.row_done(id, d);
        }
    }

    /// Row `id`, whose record text has digest `d`, joins the set and the window.
    fn row_done(&mut self, id: i64, d: [u8; 32]) {
        if self.failed.is_some() {
            return;
        }
        self.set.add_row(&d);
        // Release first, so the window never holds more than WINDOW rows (and its
        // memory never grows past them).
        if self.window.len() >= WINDOW {
            self.release_one();
        }
        self.window.push(id, d, self.max_seen);
        self.max_seen = Some(self.max_seen.map_or(id, |m| m.max(id)));
    }

    fn release_one(&mut self) {
        let Some((id, d)) = self.window.pop() else {
            return;
        };
        if self.last_released.is_some_and(|last| id <= last) {
            self.fail(format!(
                "row id {id} arrived more than {WINDOW} rows after higher ids (the table's \
                 physical order is far from id order)"
            ));
            return;
        }
        self.last_released = Some(id);
        self.outer.update(d);
    }

    /// The block ended: flush the window and return the result, with the set digest of
    /// the rows (meaningful when the result is `Done`).
    pub(crate) fn finish(mut self) -> (RowDigest, SetDigest) {
        if self.failed.is_none() && (self.col != 0 || !self.field.is_empty()) {
            self.fail("the data ends inside a row".into());
        }
        if self.failed.is_none() && self.esc != Escape::None {
            self.fail("the data ends inside an escape".into());
        }
        self.flush_held();
        while self.failed.is_none() && self.window.len() > 0 {
            self.release_one();
        }
        let set = self.set;
        let result = match self.failed {
            Some(why) => RowDigest::Unusable(why),
            None => RowDigest::Done {
                rows: self.rows,
                digest: Sha256Digest::from_bytes(self.outer.finalize().into()),
            },
        };
        (result, set)
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    /// The canonical digest from record texts in id order (the server's definition).
    pub(crate) fn canonical(rows: &[(i64, &str)]) -> Sha256Digest {
        let mut sorted = rows.to_vec();
        sorted.sort_by_key(|r| r.0);
        let mut outer = Sha256::new();
        for (_, text) in sorted {
            outer.update(Sha256::digest(text.as_bytes()));
        }
        Sha256Digest::from_bytes(outer.finalize().into())
    }

    fn run(copy: &[u8], ncols: usize, pieces: usize) -> RowDigest {
        let mut d = RowDigester::new(ncols, 0);
        for p in copy.chunks(pieces) {
            d.feed(p);
        }
        d.finish().0
    }

    #[test]
    fn copy_text_becomes_record_text() {
        // (COPY line, record text) pairs covering quoting, escapes and NULL.
        let cases: &[(&str, i64, &str)] = &[
            ("1\tplain\t\\N\n", 1, "(1,plain,)"),
            ("2\ttwo words\t\n", 2, "(2,\"two words\",\"\")"),
            ("3\ta\\\\b\t\"q\"\n", 3, "(3,\"a\\\\b\",\"\"\"q\"\"\")"),
            (
                "4\tline\\nbreak\ttab\\there\n",
                4,
                "(4,\"line\nbreak\",\"tab\there\")",
            ),
            ("5\t(x)\ta,b\n", 5, "(5,\"(x)\",\"a,b\")"),
            (
                "6\tĐiều 1\t{\"k\": [1, 2]}\n",
                6,
                "(6,\"Điều 1\",\"{\"\"k\"\": [1, 2]}\")",
            ),
            ("7\t\\r\\v\\f\\b\tx\n", 7, "(7,\"\r\u{b}\u{c}\u{8}\",x)"),
            (
                "8\t2026-05-10 00:01:00+00\t-1\n",
                8,
                "(8,\"2026-05-10 00:01:00+00\",-1)",
            ),
        ];
        let copy: String = cases.iter().map(|c| c.0).collect();
        let expect = canonical(&cases.iter().map(|c| (c.1, c.2)).collect::<Vec<_>>());
        for pieces in [1, 2, 5, 1000] {
            assert_eq!(
                run(copy.as_bytes(), 3, pieces),
                RowDigest::Done {
                    rows: cases.len() as u64,
                    digest: expect
                },
                "split into pieces of {pieces}"
            );
        }
    }

    /// The backup watermark (a trailing column) is parsed and left out of the row text,
    /// whatever it holds, including a long value that would spill (and the row after it
    /// starts clean).
    #[test]
    fn a_trailing_watermark_column_is_not_part_of_the_row() {
        let long = "9".repeat(3 * SPILL);
        let copy = format!("1\ta\t\\N\n2\tb c\t778\n3\tz\t{long}\n4\td\t5\n");
        let expect = canonical(&[(1, "(1,a)"), (2, "(2,\"b c\")"), (3, "(3,z)"), (4, "(4,d)")]);
        for pieces in [1, 3, 1000] {
            let mut d = RowDigester::new(3, 0).hashing(2);
            for chunk in copy.as_bytes().chunks(pieces) {
                d.feed(chunk);
            }
            assert_eq!(
                d.finish().0,
                RowDigest::Done {
                    rows: 4,
                    digest: expect
                },
                "split into pieces of {pieces}"
            );
        }
    }

    #[test]
    fn reorders_within_the_window_and_ignores_the_end_marker() {
        let copy = "3\tc\n1\ta\n2\tb\n\\.\n\n\n";
        let expect = canonical(&[(1, "(1,a)"), (2, "(2,b)"), (3, "(3,c)")]);
        assert_eq!(
            run(copy.as_bytes(), 2, 3),
            RowDigest::Done {
                rows: 3,
                digest: expect
            }
        );
        // Interleaved: ordered runs with stragglers, beyond and within the window.
        let ids: Vec<i64> = (1..=40)
            .chain([0, 45, 41, 42, 50, 43, 44, 46, 47, 48, 49])
            .collect();
        let copy: String = ids.iter().map(|i| format!("{i}\tv{i}\n")).collect();
        let recs: Vec<(i64, String)> = ids.iter().map(|i| (*i, format!("({i},v{i})"))).collect();
        let recs: Vec<(i64, &str)> = recs.iter().map(|(i, r)| (*i, r.as_str())).collect();
        assert_eq!(
            run(copy.as_bytes(), 2, 7),
            RowDigest::Done {
                rows: ids.len() as u64,
                digest: canonical(&recs)
            }
        );
        assert_eq!(
            run(b"", 2, 3),
            RowDigest::Done {
                rows: 0,
                digest: Sha256Digest::from_bytes(Sha256::new().finalize().into())
            }
        );
    }

    #[test]
    fn long_values_spill_and_still_match() {
        for (body, quoted) in [
            ("x".repeat(3 * SPILL + 17), false),
            (format!("{} {}", "y".repeat(2 * SPILL), "\"z\\"), true),
            (format!("{}{}", "w".repeat(SPILL + 5), " tail"), true),
        ] {
            let copy = format!("1\t{}\n", body.replace('\\', "\\\\"));
            let rec = if quoted {
                format!(
                    "(1,\"{}\")",
                    body.replace('\\', "\\\\").replace('"', "\"\"")
                )
            } else {
                format!("(1,{body})")
            };
            for pieces in [4096, 1 << 20] {
                assert_eq!(
                    run(copy.as_bytes(), 2, pieces),
                    RowDigest::Done {
                        rows: 1,
                        digest: canonical(&[(1, &rec)])
                    }
                );
            }
        }
    }

    /// Two rows are hashed side by side: every pair of lengths around the block and
    /// padding boundaries gives each row its own SHA-256.
    #[test]
    fn rows_hashed_in_pairs_get_their_own_sha256() {
        let lens: Vec<usize> = (0..=130).chain([183, 184, 1000, 4097]).collect();
        for &la in &lens {
            for &lb in &[0, 1, 55, 56, 63, 64, 119, 120, 1000] {
                let a: Vec<u8> = (0..la).map(|i| (i * 31 + 7) as u8).collect();
                let b: Vec<u8> = (0..lb).map(|i| (i * 17 + 3) as u8).collect();
                let (da, db) = sha256_pair(&a, &b);
                assert_eq!(da, <[u8; 32]>::from(Sha256::digest(&a)), "{la} beside {lb}");
                assert_eq!(db, <[u8; 32]>::from(Sha256::digest(&b)), "{lb} beside {la}");
            }
        }
    }

    /// Rows hashed in pairs, rows hashed as they stream (a spilled value, a row whose
    /// record text outgrows the buffer) and an odd last row keep their order and digests.
    #[test]
    fn paired_and_streamed_rows_mix_in_order() {
        let big = "b".repeat(SPILL + 3);
        let wide = "w".repeat(SPILL / 2 + 1);
        let rows: Vec<(i64, String, String)> = vec![
            (2, "x".into(), "two".into()),
            (1, big.clone(), "one".into()),
            (3, "y z".into(), wide.clone()),
            (4, wide.clone(), wide.clone()),
            (6, String::new(), "six".into()),
            (5, "five".into(), "\\N".into()),
            (7, "seven".into(), big.clone()),
        ];
        let copy: String = rows
            .iter()
            .map(|(i, a, b)| format!("{i}\t{a}\t{b}\n"))
            .collect();
        // `\N` is COPY's NULL: nothing between the commas.
        let quote = |v: &str| {
            if v == "\\N" {
                String::new()
            } else if v.is_empty() || v.contains(' ') {
                format!("\"{v}\"")
            } else {
                v.to_string()
            }
        };
        let recs: Vec<(i64, String)> = rows
            .iter()
            .map(|(i, a, b)| (*i, format!("({i},{},{})", quote(a), quote(b))))
            .collect();
        let recs: Vec<(i64, &str)> = recs.iter().map(|(i, r)| (*i, r.as_str())).collect();
        for take in [rows.len(), 1, 2, 5, 6] {
            let n: usize = copy.lines().take(take).map(|l| l.len() + 1).sum();
            for pieces in [7, 4096, 1 << 22] {
                assert_eq!(
                    run(&copy.as_bytes()[..n], 3, pieces),
                    RowDigest::Done {
                        rows: take as u64,
                        digest: canonical(&recs[..take])
                    },
                    "{take} rows in pieces of {pieces}"
                );
            }
        }
    }

    #[test]
    fn unusable_streams_say_why() {
        let r = run(b"1\ta\tb\n", 2, 100);
        assert!(matches!(r, RowDigest::Unusable(w) if w.contains("columns")));
        let r = run(b"x\ta\n", 2, 100);
        assert!(matches!(r, RowDigest::Unusable(w) if w.contains("integer id")));
        let r = run(b"1\ta", 2, 100);
        assert!(matches!(r, RowDigest::Unusable(w) if w.contains("inside a row")));
        // An id far behind the window.
        let mut copy = String::new();
        for i in 2..(WINDOW as i64 + 3) {
            copy.push_str(&format!("{i}\tv\n"));
        }
        copy.push_str("1\tlate\n");
        let r = run(copy.as_bytes(), 2, 1 << 16);
        assert!(matches!(r, RowDigest::Unusable(w) if w.contains("physical order")));
    }
}
