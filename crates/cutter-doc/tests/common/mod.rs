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
