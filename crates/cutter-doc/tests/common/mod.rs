//! Helpers shared by the integration tests.
#![allow(dead_code)]

use std::collections::BTreeSet;

use cutter_core::{DocumentId, SourceVersionId, Vocabularies};
use cutter_doc::{CutOptions, CutOutcome, InputFormat, Placement};
use unicode_normalization::UnicodeNormalization;

/// The vocabularies of the reference schema.
pub fn vocab() -> Vocabularies {
    let set = |v: &[&str]| v.iter().map(|s| s.to_string()).collect::<BTreeSet<_>>();
    Vocabularies {
        unit_kind: set(&["law_unit"]),
        section_type: set(&["preamble", "article", "clause"]),
        publication_type: set(&["law"]),
    }
}

pub fn options(id: &str, format: InputFormat) -> CutOptions {
    let mut o = CutOptions::new(
        DocumentId::new(id).expect("document id"),
        SourceVersionId::new("2025-01-01").expect("version id"),
        "cutter-doc-tests",
    );
    o.format = format;
    o
}

pub fn corpus_path(rel: &str) -> String {
    format!("{}/../../corpus/{rel}", env!("CARGO_MANIFEST_DIR"))
}

pub fn read_corpus(rel: &str) -> Vec<u8> {
    std::fs::read(corpus_path(rel)).unwrap_or_else(|e| panic!("read {rel}: {e}"))
}

/// NFC, whitespace-separated words.
pub fn words(text: &str) -> Vec<String> {
    text.nfc()
        .collect::<String>()
        .split_whitespace()
        .map(str::to_string)
        .collect()
}

/// NFC text without any whitespace.
pub fn squeeze(text: &str) -> String {
    text.nfc().filter(|c| !c.is_whitespace()).collect()
}

/// The bookkeeping every outcome must satisfy:
/// - every row body is exactly its paragraphs joined by `\n`, rows in document order;
/// - the words of all bodies, in order, are the words of the legal paragraphs placed in
///   units, so the concatenation of bodies loses no recognized legal text;
/// - the legal text that is not in a unit is a heading listed in the report or lies in a
///   span the report lists, and the report's character accounting adds up.
pub fn assert_accounting(o: &CutOutcome) {
    let rows = &o.plan.rows;
    let mut bodies: Vec<Vec<&str>> = vec![Vec::new(); rows.len()];
    let mut last_row = 0usize;
    let mut unit_words = Vec::new();
    let mut unassigned = BTreeSet::new();
    let (mut in_units, mut in_headings, mut in_no_unit) = (0, 0, 0);
    for (i, p) in o.paragraphs.iter().enumerate() {
        let n = p.text.chars().count();
        match p.placement {
            Placement::Unit(r) => {
                assert!(r < rows.len(), "paragraph {i} placed in missing row {r}");
                assert!(
                    r >= last_row,
                    "paragraph {i} goes back from row {last_row} to {r}"
                );
                last_row = r;
                bodies[r].push(&p.text);
                unit_words.extend(words(&p.text));
                in_units += n;
            }
            Placement::Heading => in_headings += n,
            Placement::Unassigned => {
                unassigned.insert(i);
                in_no_unit += n;
            }
        }
    }
    for (r, row) in rows.iter().enumerate() {
        if bodies[r].is_empty() {
            // Only a marked-up article whose heading has no text but whose list items do.
            let next = rows
                .get(r + 1)
                .map(|n| n.canonical_address.as_str())
                .unwrap_or("");
            assert!(
                row.section_type.as_deref() == Some("article")
                    && next.starts_with(&format!("{}/", row.canonical_address)),
                "row {r} has no paragraph"
            );
        }
        assert_eq!(row.body, bodies[r].join("\n"), "body of row {r}");
        assert_eq!(row.unit_kind, "law_unit");
        assert!(row.section_type.is_some());
    }
    let joined: Vec<&str> = rows.iter().map(|r| r.body.as_str()).collect();
    assert_eq!(
        words(&joined.join("\n")),
        unit_words,
        "bodies lose or add words"
    );

    let r = &o.report;
    assert_eq!(r.legal.paragraphs, o.paragraphs.len());
    assert_eq!(r.legal.in_units, in_units);
    assert_eq!(r.legal.in_headings, in_headings);
    assert_eq!(r.legal.in_no_unit, in_no_unit);
    assert_eq!(r.legal.chars, in_units + in_headings + in_no_unit);
    let mut listed = BTreeSet::new();
    for s in &r.unassigned {
        let mut chars = 0;
        for i in s.first_paragraph..s.first_paragraph + s.paragraphs {
            assert!(listed.insert(i), "paragraph {i} listed twice");
            chars += o.paragraphs[i].text.chars().count();
        }
        assert_eq!(chars, s.chars, "span at {}", s.location);
    }
    assert_eq!(
        listed, unassigned,
        "unassigned paragraphs and reported spans differ"
    );
    let heading_paragraphs = o
        .paragraphs
        .iter()
        .filter(|p| p.placement == Placement::Heading)
        .count();
    let with_titles = r.headings.iter().filter(|h| h.title.is_some()).count();
    assert!(
        heading_paragraphs >= r.headings.len()
            && heading_paragraphs <= r.headings.len() + with_titles
    );
    assert_eq!(r.counts.units, rows.len());
    assert_eq!(
        r.counts.units,
        r.counts.preamble_units + r.counts.article_units + r.counts.clause_units
    );
    assert_eq!(r.counts.article_units, r.counts.articles);
    assert_eq!(r.counts.clause_units, r.counts.clauses);
}

/// Every body paragraph occurs, in order, in `source_text` (whitespace ignored): the
/// cutter invents no text.
pub fn assert_nothing_invented(o: &CutOutcome, source_text: &str) {
    let hay = squeeze(source_text);
    let mut at = 0;
    for row in &o.plan.rows {
        for line in row.body.split('\n') {
            let needle = squeeze(line);
            match hay[at..].find(&needle) {
                Some(k) => at += k + needle.len(),
                None => panic!(
                    "{}: body text not found in order in the source: {line:?}",
                    row.canonical_address
                ),
            }
        }
    }
}

// ---------------------------------------------------------------------------------------
// Encoded fixtures, generated from the shipped corpus (never downloaded).

use encoding_rs::Encoding;
use unicode_normalization::char::compose;

/// How a re-encoded page declares its encoding.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Declare {
    /// `<meta charset="…">`
    MetaCharset,
    /// `<meta http-equiv="Content-Type" content="text/html; charset=…">`
    HttpEquiv,
    /// `<?xml version="1.0" encoding="…"?>` before the page.
    Xml,
    /// No declaration at all (left to detection).
    Nothing,
}

/// `page` (UTF-8 HTML from the corpus) with every charset declaration removed and the
/// given one put in: `label` is what the page says, whatever the bytes are.
pub fn declare(page: &str, label: &str, how: Declare) -> String {
    let mut out = strip_declarations(page);
    match how {
        Declare::MetaCharset | Declare::HttpEquiv => {
            let meta = if how == Declare::MetaCharset {
                format!("<meta charset=\"{label}\">")
            } else {
                format!("<meta http-equiv=\"Content-Type\" content=\"text/html; charset={label}\">")
            };
            let at = out
                .find("<head")
                .and_then(|k| out[k..].find('>').map(|e| k + e + 1))
                .expect("the corpus pages have a <head>");
            out.insert_str(at, &meta);
        }
        Declare::Xml => {
            out = format!(
                "<?xml version=\"1.0\" encoding=\"{label}\"?>{}",
                out.trim_start()
            );
        }
        Declare::Nothing => {}
    }
    out
}

/// Removes `<meta … charset …>` elements.
fn strip_declarations(page: &str) -> String {
    let mut out = String::with_capacity(page.len());
    let mut rest = page;
    while let Some(k) = rest.to_ascii_lowercase().find("<meta") {
        let end = rest[k..].find('>').map_or(rest.len(), |e| k + e + 1);
        let tag = &rest[k..end];
        out.push_str(&rest[..k]);
        if !tag.to_ascii_lowercase().contains("charset") {
            out.push_str(tag);
        }
        rest = &rest[end..];
    }
    out.push_str(rest);
    out
}

/// Text as `enc` can hold it: for windows-1258, letters it lacks are decomposed into a
/// letter it has plus combining marks (`ế` → `ê` + U+0301, `ộ` → `ô` + U+0323), as
/// Vietnamese pages in that code page are written. Other encodings get the text as is.
pub fn fit_for(enc: &'static Encoding, text: &str) -> String {
    if enc != encoding_rs::WINDOWS_1258 {
        return text.to_string();
    }
    let mut out = String::with_capacity(text.len() * 2);
    for c in text.chars() {
        if encodable(enc, c) {
            out.push(c);
            continue;
        }
        let mut d = String::new();
        unicode_normalization::char::decompose_canonical(c, |x| d.push(x));
        let mut parts = d.chars();
        let Some(mut base) = parts.next() else {
            out.push(c);
            continue;
        };
        let mut marks: Vec<char> = parts.collect();
        // Fold into the base the marks that give a letter windows-1258 has.
        let mut k = 0;
        while k < marks.len() {
            match compose(base, marks[k]).filter(|x| encodable(enc, *x)) {
                Some(x) => {
                    base = x;
                    marks.remove(k);
                }
                None => k += 1,
            }
        }
        out.push(base);
        out.extend(marks);
    }
    out
}

fn encodable(enc: &'static Encoding, c: char) -> bool {
    let mut buf = [0u8; 4];
    let (_, _, unmappable) = enc.encode(c.encode_utf8(&mut buf));
    !unmappable
}

/// `text` in `enc`, or `None` if `enc` cannot represent it. UTF-16 gets a byte-order mark.
pub fn encode(enc: &'static Encoding, text: &str) -> Option<Vec<u8>> {
    if enc == encoding_rs::UTF_16LE || enc == encoding_rs::UTF_16BE {
        let le = enc == encoding_rs::UTF_16LE;
        let mut out = if le {
            vec![0xFF, 0xFE]
        } else {
            vec![0xFE, 0xFF]
        };
        for u in text.encode_utf16() {
            out.extend_from_slice(&if le { u.to_le_bytes() } else { u.to_be_bytes() });
        }
        return Some(out);
    }
    let fitted = fit_for(enc, text);
    let mut encoder = enc.new_encoder();
    let mut out = Vec::with_capacity(
        encoder
            .max_buffer_length_from_utf8_without_replacement(fitted.len())
            .unwrap_or(fitted.len() * 4),
    );
    let (result, _) = encoder.encode_from_utf8_to_vec_without_replacement(&fitted, &mut out, true);
    match result {
        encoding_rs::EncoderResult::InputEmpty => Some(out),
        _ => None,
    }
}

/// `text` in `enc`, characters it cannot represent written as HTML numeric character
/// references (`&#8208;`), as pages published in a legacy code page write them.
pub fn encode_with_references(enc: &'static Encoding, text: &str) -> Vec<u8> {
    let fitted = fit_for(enc, text);
    let (bytes, _, _) = enc.encode(&fitted);
    bytes.into_owned()
}

/// How many characters of `text` `enc` cannot represent (after [`fit_for`]).
pub fn unmappable(enc: &'static Encoding, text: &str) -> usize {
    if enc == encoding_rs::UTF_16LE || enc == encoding_rs::UTF_16BE {
        return 0;
    }
    fit_for(enc, text)
        .chars()
        .filter(|c| !encodable(enc, *c))
        .count()
}

/// Most characters a page may write as numeric references and still count as
/// represented by an encoding: symbols of the site around the text (a pictogram, a
/// private-use bullet), never the text itself.
pub const MAX_REFERENCES: usize = 16;

/// A corpus page re-encoded in `enc` and declared as `how` says with `enc`'s name, or
/// `None` if `enc` cannot represent it (more than [`MAX_REFERENCES`] characters it lacks,
/// which are written as numeric references).
pub fn reencoded(page: &str, enc: &'static Encoding, how: Declare) -> Option<Vec<u8>> {
    let text = declare(page, enc.name(), how);
    if unmappable(enc, &text) > MAX_REFERENCES {
        return None;
    }
    match encode(enc, &text) {
        Some(bytes) => Some(bytes),
        None => Some(encode_with_references(enc, &text)),
    }
}

/// Rows as (address, title, body).
pub fn rows(o: &CutOutcome) -> Vec<(String, String, String)> {
    o.plan
        .rows
        .iter()
        .map(|r| (r.canonical_address.clone(), r.title.clone(), r.body.clone()))
        .collect()
}

/// The rows' canonical addresses.
pub fn addresses(o: &CutOutcome) -> Vec<&str> {
    o.plan
        .rows
        .iter()
        .map(|r| r.canonical_address.as_str())
        .collect()
}
