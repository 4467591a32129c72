//! A push parser for the byte stream of `pg_dump -Fc` (custom format, archive versions
//! 1.14–1.16, i.e. pg_dump 12–18) written to a pipe: the header, the table of contents,
//! then the data blocks of each `TABLE DATA` entry as length-prefixed chunks.
//!
//! It only *observes* the stream on its way to the encryptor, so the backup can count
//! and digest rows without a second pass over the tables. Anything it does not
//! understand (another version, compressed data, large objects) makes it stop with a
//! reason; the caller then falls back to computing digests on the server. It never
//! changes or holds on to the data (memory: the TOC, bounded, plus a few bytes).

use std::collections::BTreeMap;

/// TOC bytes we are willing to buffer before giving up (the surface tables' TOC is a few
/// kilobytes; functions and comments are not dumped with `--table`).
const MAX_TOC_BYTES: usize = 16 << 20;

/// Data block types (pg_backup_archiver.h).
const BLK_DATA: u8 = 1;

/// A `TABLE DATA` entry of the table of contents.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct TableDataEntry {
    /// Schema.
    pub(crate) namespace: String,
    /// Table.
    pub(crate) tag: String,
    /// The COPY statement, e.g. `COPY public.t (id, body) FROM stdin;`.
    pub(crate) copy_stmt: String,
}

/// Any entry of the table of contents, as far as the restore's selection needs it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct TocEntry {
    /// The dump id (what a `pg_restore -L` list names).
    pub(crate) dump_id: i32,
    /// `TABLE`, `TABLE DATA`, `INDEX`, `TRIGGER`, `FUNCTION`, …
    pub(crate) desc: String,
    /// Schema.
    pub(crate) namespace: String,
    /// Name (for constraints and triggers: `table name`).
    pub(crate) tag: String,
    /// The COPY statement of a `TABLE DATA` entry, else empty.
    pub(crate) copy_stmt: String,
    /// Dump ids this entry depends on.
    pub(crate) deps: Vec<i32>,
}

/// What the header and table of contents say.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Toc {
    /// Archive version (major, minor, rev).
    pub(crate) version: (u8, u8, u8),
    /// Whether the data blocks are compressed.
    pub(crate) compressed: bool,
    /// `client_encoding` of the dump, from the ENCODING entry.
    pub(crate) encoding: Option<String>,
    /// Table data entries by dump id.
    pub(crate) tables: BTreeMap<i32, TableDataEntry>,
    /// Every entry, in archive order.
    pub(crate) entries: Vec<TocEntry>,
}

/// What the scanner reports.
#[derive(Debug)]
pub(crate) enum Event<'a> {
    /// The header and TOC were parsed.
    Toc(&'a Toc),
    /// Bytes of the data block of entry `dump_id` (COPY text, when uncompressed).
    Data(i32, &'a [u8]),
    /// The data block of `dump_id` ended.
    End(i32),
}

#[derive(Debug)]
enum State {
    /// Buffering the header and TOC.
    Head,
    /// Expecting a block type byte.
    BlockType,
    /// Reading the dump id of a data block.
    BlockId,
    /// Reading a chunk length.
    ChunkLen(i32),
    /// Inside a chunk.
    Chunk(i32, usize),
    /// Stopped; the reason says why.
    Stopped(String),
}

/// The push parser. Feed it everything pg_dump writes, in order.
#[derive(Debug)]
pub(crate) struct Scanner {
    state: State,
    head: Vec<u8>,
    int_size: usize,
    /// Partial integer (sign byte + magnitude) across feed boundaries.
    small: Vec<u8>,
}

/// Not enough bytes yet.
struct More;

/// Reads fields of the header/TOC from a byte slice.
struct Cursor<'a> {
    b: &'a [u8],
    pos: usize,
    int_size: usize,
}

enum ParseError {
    More,
    Bad(String),
}

impl From<More> for ParseError {
    fn from(_: More) -> Self {
        ParseError::More
    }
}

impl<'a> Cursor<'a> {
    fn byte(&mut self) -> Result<u8, More> {
        let v = *self.b.get(self.pos).ok_or(More)?;
        self.pos += 1;
        Ok(v)
    }
    fn take(&mut self, n: usize) -> Result<&'a [u8], More> {
        let end = self.pos.checked_add(n).ok_or(More)?;
        let s = self.b.get(self.pos..end).ok_or(More)?;
        self.pos = end;
        Ok(s)
    }
    fn int(&mut self) -> Result<i64, More> {
        let sign = self.byte()?;
        let mag = self.take(self.int_size)?;
        Ok(decode_int(sign, mag))
    }
    fn string(&mut self) -> Result<Option<String>, ParseError> {
        let len = self.int()?;
        if len < 0 {
            return Ok(None);
        }
        let len = usize::try_from(len).map_err(|_| ParseError::Bad("string length".into()))?;
        if len > MAX_TOC_BYTES {
            return Err(ParseError::Bad(format!("a TOC string of {len} bytes")));
        }
        let s = self.take(len)?;
        Ok(Some(String::from_utf8_lossy(s).into_owned()))
    }
}

/// pg_dump's `WriteInt`: a sign byte, then the magnitude little-endian.
fn decode_int(sign: u8, mag: &[u8]) -> i64 {
    let mut v: i64 = 0;
    for (i, b) in mag.iter().enumerate().take(8) {
        v |= i64::from(*b) << (8 * i);
    }
    if sign != 0 {
        -v
    } else {
        v
    }
}

/// Parses the header and table of contents at the start of `b`: `Ok(None)` if more
/// bytes are needed, else the TOC and how many bytes it took; `Err` with the reason if
/// this is not an archive this parser reads.
pub(crate) fn read_toc(b: &[u8]) -> Result<Option<(Toc, usize)>, String> {
    match parse_head(b) {
        Ok((toc, used, _)) => Ok(Some((toc, used))),
        Err(ParseError::More) => Ok(None),
        Err(ParseError::Bad(r)) => Err(r),
    }
}

/// TOC bytes the restore buffers before refusing the archive.
pub(crate) const MAX_TOC: usize = MAX_TOC_BYTES;

fn parse_head(b: &[u8]) -> Result<(Toc, usize, usize), ParseError> {
    if b.len() >= 5 && &b[..5] != b"PGDMP" {
        return Err(ParseError::Bad("no PGDMP magic".into()));
    }
    let mut c = Cursor {
        b,
        pos: 0,
        int_size: 4,
    };
    c.take(5)?;
    let version = (c.byte()?, c.byte()?, c.byte()?);
    let v = |maj: u32, min: u32| (maj << 16) | (min << 8);
    let ver = v(u32::from(version.0), u32::from(version.1));
    if ver < v(1, 14) || ver > v(1, 16) {
        return Err(ParseError::Bad(format!(
            "archive version {}.{}.{} is not one this scanner reads (1.14–1.16)",
            version.0, version.1, version.2
        )));
    }
    let int_size = usize::from(c.byte()?);
    if !(1..=8).contains(&int_size) {
        return Err(ParseError::Bad(format!("integer size {int_size}")));
    }
    c.int_size = int_size;
    let off_size = usize::from(c.byte()?);
    let format = c.byte()?;
    if format != 1 {
        return Err(ParseError::Bad(format!(
            "archive format {format}, not custom (1)"
        )));
    }
    let compressed = if ver >= v(1, 15) {
        // Compression algorithm: 0 = none.
        c.byte()? != 0
    } else {
        // Compression level: 0 = none (-1 = default zlib).
        c.int()? != 0
    };
    for _ in 0..7 {
        c.int()?; // creation time
    }
    c.string()?; // database name
    c.string()?; // server version
    c.string()?; // pg_dump version

    let count = c.int()?;
    let mut toc = Toc {
        version,
        compressed,
        encoding: None,
        tables: BTreeMap::new(),
        entries: Vec::new(),
    };
    for _ in 0..count {
        let dump_id = i32::try_from(c.int()?).map_err(|_| ParseError::Bad("dump id".into()))?;
        let _had_dumper = c.int()?;
        c.string()?; // tableoid
        c.string()?; // oid
        let tag = c.string()?.unwrap_or_default();
        let desc = c.string()?.unwrap_or_default();
        let _section = c.int()?;
        let defn = c.string()?.unwrap_or_default();
        c.string()?; // dropStmt
        let copy_stmt = c.string()?.unwrap_or_default();
        let namespace = c.string()?.unwrap_or_default();
        c.string()?; // tablespace
        c.string()?; // tableam (≥ 1.14)
        if ver >= v(1, 16) {
            c.int()?; // relkind
        }
        c.string()?; // owner
        c.string()?; // "false" (with oids)
        let mut deps = Vec::new();
        while let Some(d) = c.string()? {
            // dependencies, NULL-terminated, as decimal text
            deps.push(
                d.trim()
                    .parse::<i32>()
                    .map_err(|_| ParseError::Bad(format!("dependency {d:?} of entry {dump_id}")))?,
            );
        }
        c.byte()?; // offset flag
        c.take(off_size)?; // offset
        toc.entries.push(TocEntry {
            dump_id,
            desc: desc.clone(),
            namespace: namespace.clone(),
            tag: tag.clone(),
            copy_stmt: if desc == "TABLE DATA" {
                copy_stmt.clone()
            } else {
                String::new()
            },
            deps,
        });
        match desc.as_str() {
            "TABLE DATA" => {
                toc.tables.insert(
                    dump_id,
                    TableDataEntry {
                        namespace,
                        tag,
                        copy_stmt,
                    },
                );
            }
            "ENCODING" => {
                toc.encoding = defn
                    .split('\'')
                    .nth(1)
                    .map(|s| s.trim().to_ascii_uppercase());
            }
            _ => {}
        }
    }
    Ok((toc, c.pos, int_size))
}

impl Scanner {
    pub(crate) fn new() -> Self {
        Self {
            state: State::Head,
            head: Vec::new(),
            int_size: 4,
            small: Vec::with_capacity(9),
        }
    }

    /// Why the scanner stopped, if it did.
    pub(crate) fn stopped(&self) -> Option<&str> {
        match &self.state {
            State::Stopped(r) => Some(r),
            _ => None,
        }
    }

    fn stop(&mut self, reason: impl Into<String>) {
        self.state = State::Stopped(reason.into());
        self.head = Vec::new();
    }

    /// Feeds the next bytes of the stream.
    pub(crate) fn feed(&mut self, mut data: &[u8], on: &mut dyn FnMut(Event<'_>)) {
        loop {
            if data.is_empty() {
                return;
            }
            match self.state {
                State::Stopped(_) => return,
                State::Head => {
                    self.head.extend_from_slice(data);
                    data = &[];
                    match parse_head(&self.head) {
                        Err(ParseError::More) => {
                            if self.head.len() > MAX_TOC_BYTES {
                                self.stop("the table of contents is larger than expected");
                            }
                        }
                        Err(ParseError::Bad(r)) => self.stop(r),
                        Ok((toc, used, int_size)) => {
                            self.int_size = int_size;
                            let rest = self.head.split_off(used);
                            self.head = Vec::new();
                            if toc.compressed {
                                self.stop("the data blocks are compressed");
                                return;
                            }
                            on(Event::Toc(&toc));
                            self.state = State::BlockType;
                            // Continue with the bytes after the TOC.
                            self.feed(&rest, on);
                        }
                    }
                }
                State::BlockType => {
                    let t = data[0];
                    data = &data[1..];
                    if t == BLK_DATA {
                        self.state = State::BlockId;
                    } else {
                        self.stop(format!("data block of type {t} (large objects?)"));
                    }
                }
                State::BlockId => {
                    let Some(v) = self.read_int(&mut data) else {
                        return;
                    };
                    match i32::try_from(v) {
                        Ok(id) => self.state = State::ChunkLen(id),
                        Err(_) => self.stop("bad dump id of a data block"),
                    }
                }
                State::ChunkLen(id) => {
                    let Some(v) = self.read_int(&mut data) else {
                        return;
                    };
                    if v == 0 {
                        on(Event::End(id));
                        self.state = State::BlockType;
                    } else if v < 0 {
                        self.stop("negative chunk length");
                    } else {
                        self.state = State::Chunk(id, v as usize);
                    }
                }
                State::Chunk(id, left) => {
                    let n = left.min(data.len());
                    on(Event::Data(id, &data[..n]));
                    data = &data[n..];
                    self.state = if n == left {
                        State::ChunkLen(id)
                    } else {
                        State::Chunk(id, left - n)
                    };
                }
            }
        }
    }

    /// Reads one archive integer, possibly across feeds.
    fn read_int(&mut self, data: &mut &[u8]) -> Option<i64> {
        let need = 1 + self.int_size;
        let take = (need - self.small.len()).min(data.len());
        self.small.extend_from_slice(&data[..take]);
        *data = &data[take..];
        if self.small.len() < need {
            return None;
        }
        let v = decode_int(self.small[0], &self.small[1..]);
        self.small.clear();
        Some(v)
    }
}

/// The column names of a `COPY schema.table (a, "B c", d) FROM stdin;` statement.
pub(crate) fn copy_columns(stmt: &str) -> Option<Vec<String>> {
    let open = stmt.find('(')?;
    let close = stmt.rfind(") FROM stdin")?;
    let list = &stmt[open + 1..close];
    let mut cols = Vec::new();
    let mut cur = String::new();
    let mut chars = list.chars().peekable();
    let mut quoted = false;
    while let Some(ch) = chars.next() {
        match ch {
            '"' if quoted && chars.peek() == Some(&'"') => {
                chars.next();
                cur.push('"');
            }
            '"' => quoted = !quoted,
            ',' if !quoted => {
                cols.push(std::mem::take(&mut cur));
                if chars.peek() == Some(&' ') {
                    chars.next();
                }
            }
            c => cur.push(c),
        }
    }
    if quoted {
        return None;
    }
    cols.push(cur);
    Some(cols)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn int(v: i64, size: usize) -> Vec<u8> {
        let mut out = vec![u8::from(v < 0)];
        let m = v.unsigned_abs();
        for i in 0..size {
            out.push((m >> (8 * i)) as u8);
        }
        out
    }

    fn string(s: Option<&str>) -> Vec<u8> {
        match s {
            None => int(-1, 4),
            Some(s) => {
                let mut v = int(s.len() as i64, 4);
                v.extend_from_slice(s.as_bytes());
                v
            }
        }
    }

    /// A synthetic archive of version 1.`minor` with one table's data.
    fn archive(minor: u8, rows: &[&str]) -> Vec<u8> {
        let mut b = b"PGDMP".to_vec();
        b.extend([1, minor, 0, 4, 8, 1]);
        if minor >= 15 {
            b.push(0);
        } else {
            b.extend(int(0, 4));
        }
        for _ in 0..7 {
            b.extend(int(1, 4));
        }
        for s in ["db", "15.1", "15.1"] {
            b.extend(string(Some(s)));
        }
        b.extend(int(2, 4));
        let entries = [
            (
                1,
                "ENCODING",
                "ENCODING",
                "SET client_encoding = 'UTF8';\n",
                "",
            ),
            (
                7,
                "t",
                "TABLE DATA",
                "",
                "COPY public.t (id, \"Body, x\") FROM stdin;\n",
            ),
        ];
        for (id, tag, desc, defn, copy) in entries {
            b.extend(int(id, 4));
            b.extend(int(1, 4));
            b.extend(string(Some("0")));
            b.extend(string(Some("0")));
            b.extend(string(Some(tag)));
            b.extend(string(Some(desc)));
            b.extend(int(3, 4));
            b.extend(string(Some(defn)));
            b.extend(string(Some("")));
            b.extend(string(Some(copy)));
            b.extend(string(Some("public")));
            b.extend(string(Some("")));
            b.extend(string(Some("heap")));
            if minor >= 16 {
                b.extend(int(114, 4));
            }
            b.extend(string(Some("owner")));
            b.extend(string(Some("false")));
            b.extend(string(Some("5")));
            b.extend(string(None));
            b.push(3);
            b.extend([0u8; 8]);
        }
        b.push(1);
        b.extend(int(7, 4));
        for r in rows {
            b.extend(int(r.len() as i64, 4));
            b.extend(r.as_bytes());
        }
        b.extend(int(0, 4));
        b
    }

    fn scan(bytes: &[u8], piece: usize) -> (Option<Toc>, Vec<u8>, bool, Option<String>) {
        let mut s = Scanner::new();
        let mut data = Vec::new();
        let mut ended = false;
        let mut toc = None;
        for p in bytes.chunks(piece) {
            s.feed(p, &mut |e| match e {
                Event::Toc(t) => toc = Some(t.clone()),
                Event::Data(7, d) => data.extend_from_slice(d),
                Event::End(7) => ended = true,
                e => panic!("unexpected {e:?}"),
            });
        }
        (toc, data, ended, s.stopped().map(str::to_string))
    }

    #[test]
    fn scans_every_version_in_any_split() {
        for minor in [14u8, 15, 16] {
            let a = archive(minor, &["1\tx\n", "2\ty\n", "\\.\n\n\n"]);
            for piece in [1, 2, 3, 7, 64, 100_000] {
                let (toc, data, ended, stopped) = scan(&a, piece);
                assert_eq!(stopped, None, "minor {minor} piece {piece}");
                let toc = toc.expect("toc");
                assert_eq!(toc.encoding.as_deref(), Some("UTF8"));
                let e = &toc.tables[&7];
                assert_eq!((e.namespace.as_str(), e.tag.as_str()), ("public", "t"));
                assert_eq!(
                    copy_columns(&e.copy_stmt).unwrap(),
                    vec!["id".to_string(), "Body, x".to_string()]
                );
                assert_eq!(data, b"1\tx\n2\ty\n\\.\n\n\n");
                assert!(ended);
            }
        }
    }

    #[test]
    fn refuses_what_it_does_not_know() {
        let mut a = archive(14, &[]);
        a[6] = 9; // version 1.9
        let (_, _, _, stopped) = scan(&a, 1000);
        assert!(stopped.unwrap().contains("version"));
        let (_, _, _, stopped) = scan(b"not a dump at all", 3);
        assert!(stopped.unwrap().contains("PGDMP"));
        let mut a = archive(15, &[]);
        a[11] = 1; // gzip
        let (_, _, _, stopped) = scan(&a, 1000);
        assert!(stopped.unwrap().contains("compressed"));
    }

    #[test]
    fn copy_column_lists() {
        assert_eq!(
            copy_columns("COPY a.b (id, \"x\"\"y\", z) FROM stdin;\n").unwrap(),
            vec!["id", "x\"y", "z"]
        );
        assert_eq!(copy_columns("COPY a.b FROM stdin;"), None);
    }
}
