//! The document cutter: a published legal document (HTML as published, or plain text)
//! becomes a cut plan with one unit per article and per clause, plus a report of what was
//! found, skipped, or left in no unit; the report's findings go into the plan. Pure:
//! bytes in, plan and report out; no I/O.
//!
//! ```
//! use cutter_core::{DocumentId, SourceVersionId};
//!
//! let opts = cutter_doc::CutOptions::new(DocumentId::new("luat-x")?, SourceVersionId::new("v1")?, "editor");
//! let out = cutter_doc::cut("Chương I\nĐiều 1. Phạm vi\n1. Khoản một.".as_bytes(), &opts)?;
//! assert_eq!(out.plan.rows.len(), 2);
//! println!("{}", out.plan.to_json()); // the plan file `cutter run --plan` takes
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

#![warn(missing_docs)]

mod assemble;
mod decode;
mod extract;
mod markup;
mod report;
mod text;
mod vn;

use std::collections::BTreeSet;
use std::ops::Range;

use cutter_core::plan::{code_point, describe_forbidden, forbidden_characters};
use cutter_core::{
    CutPlan, CutPlanRow, DocumentId, ForbiddenCharacter, OutOfOrderNumber, PlanFindings,
    Sha256Digest, SourceVersionId, TextInNoUnit,
};
use serde::{Deserialize, Serialize};

use crate::assemble::Assembly;
use crate::extract::{HtmlDoc, Para};
use crate::text::{chars, excerpt, is_bidi_control, title_safe};

pub use report::{
    ChromeSkipped, Counts, CutReport, InputSummary, LegalAccounting, OutOfOrder, Structure,
    StructureHeading, UnassignedSpan,
};

/// The `vocab.unit_kind` code of every unit.
pub const UNIT_KIND: &str = "law_unit";
/// The `vocab.section_type` codes units use.
pub const SECTION_TYPES: [&str; 3] = ["preamble", "article", "clause"];
/// The default `vocab.publication_type`.
pub const DEFAULT_PUBLICATION_TYPE: &str = "law";

/// What the input is.
#[derive(Clone, Copy, PartialEq, Eq, Debug, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum InputFormat {
    /// HTML when the first non-blank character is `<`, plain text otherwise.
    #[default]
    Auto,
    /// HTML.
    Html,
    /// Plain text, one paragraph per line.
    Text,
}

/// What to cut and whose name to put on the units.
#[derive(Clone, PartialEq, Eq, Debug)]
pub struct CutOptions {
    /// The document; also the first segment of every canonical address.
    pub document_id: DocumentId,
    /// The version of the document's source.
    pub source_version_id: SourceVersionId,
    /// Who is responsible for the units.
    pub actor: String,
    /// `vocab.publication_type` code of the units.
    pub publication_type: String,
    /// What the input is.
    pub format: InputFormat,
    /// Accept forbidden characters ([`cutter_core::plan::is_forbidden_in_body`]) in unit
    /// bodies instead of refusing the cut; the plan's findings then record them.
    pub accept_forbidden_characters: bool,
}

impl CutOptions {
    /// Options with publication type [`DEFAULT_PUBLICATION_TYPE`] and format detection.
    pub fn new(
        document_id: DocumentId,
        source_version_id: SourceVersionId,
        actor: impl Into<String>,
    ) -> Self {
        Self {
            document_id,
            source_version_id,
            actor: actor.into(),
            publication_type: DEFAULT_PUBLICATION_TYPE.into(),
            format: InputFormat::Auto,
            accept_forbidden_characters: false,
        }
    }
}

/// Where one paragraph of the legal text went.
#[derive(Clone, Copy, PartialEq, Eq, Debug, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Placement {
    /// Into the body of plan row `n` (0-based).
    Unit(usize),
    /// A Phần / Chương / Mục heading or its title.
    Heading,
    /// Nowhere; reported in [`CutReport::unassigned`].
    Unassigned,
}

/// One paragraph of the recognized legal text and where it went.
#[derive(Clone, PartialEq, Eq, Debug, Serialize, Deserialize)]
pub struct LegalParagraph {
    /// The normalized text.
    pub text: String,
    /// Where it went.
    pub placement: Placement,
}

/// The result of a cut.
#[derive(Clone, PartialEq, Eq, Debug)]
pub struct CutOutcome {
    /// The plan, rows in document order.
    pub plan: CutPlan,
    /// What was found and skipped.
    pub report: CutReport,
    /// The recognized legal text, paragraph by paragraph, with where each went.
    pub paragraphs: Vec<LegalParagraph>,
}

/// Why a document could not be cut.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// An option is unusable.
    #[error("invalid cut option {field}: {problem}")]
    InvalidOption {
        /// The option.
        field: &'static str,
        /// What is wrong with it.
        problem: String,
    },
    /// There is no text to cut.
    #[error("nothing to cut: {0}")]
    Empty(String),
    /// The bytes cannot be read as text.
    #[error("cannot decode the input: {0}")]
    Encoding(String),
    /// There is text, but no structure the cutter knows.
    #[error(
        "no legal structure found in the {format} input ({paragraphs} paragraph(s) of text read); tried: {missing}"
    )]
    NoStructure {
        /// `HTML` or `plain text`.
        format: &'static str,
        /// Paragraphs of text read.
        paragraphs: usize,
        /// What was looked for, and what was found of it.
        missing: String,
    },
    /// Unit bodies hold characters no unit may hold (replacement characters, controls,
    /// bidirectional controls).
    #[error(
        "{count} forbidden character(s) in unit bodies: {listed}{hint}; fix the source or its encoding, or cut with --accept-forbidden-characters to record them in the plan's findings"
    )]
    ForbiddenCharacters {
        /// How many.
        count: usize,
        /// The first ones, with unit and offset.
        listed: String,
        /// What the decoding says about them.
        hint: String,
    },
}

fn check_option(field: &'static str, value: &str) -> Result<(), Error> {
    let problem = if value.trim().is_empty() {
        "must not be empty"
    } else if value.chars().any(|c| c.is_control() || is_bidi_control(c)) {
        "must not contain control or bidirectional formatting characters"
    } else if value.len() > 256 {
        "must be at most 256 bytes"
    } else {
        return Ok(());
    };
    Err(Error::InvalidOption {
        field,
        problem: problem.into(),
    })
}

/// What was tried, for [`Error::NoStructure`].
fn tried(doc: Option<&HtmlDoc>, all: &[Para]) -> String {
    let headings = all.iter().filter(|p| vn::is_article_heading(p)).count();
    let mut out = Vec::new();
    if let Some(d) = doc {
        let marked = d
            .leaf_articles
            .iter()
            .filter(|a| a.heading.is_some())
            .count();
        out.push(format!(
            "marked-up articles (<article> elements holding a heading element): {marked} found"
        ));
    }
    out.push(format!(
        "article headings opening a paragraph (the Vietnamese “Điều <number>” followed by a period, a colon or the end of the paragraph, or standing as a bold, heading-element or anchored heading): {headings} found"
    ));
    if doc.is_some() {
        let anchors = all.iter().filter(|p| !p.anchors.is_empty()).count();
        out.push(format!(
            "structural anchors (name or id such as dieu_<number>, chuong_<number>): {anchors} paragraph(s) carry one"
        ));
    }
    out.join("; ")
}

/// Cuts one document.
///
/// **Decoding.** By declaration, in the order the HTML standard gives: a byte-order mark,
/// then `<meta charset>` / `http-equiv`, then an XML declaration, then — nothing declared
/// and the bytes not UTF-8 — detection (`chardetng`); `encoding_rs` decodes. A declaration
/// the bytes contradict is reported (and not followed when the bytes are clearly UTF-8, or
/// decode cleanly only in the detected encoding); UTF-16 without a byte-order mark is
/// refused. [`InputFormat::Auto`] means HTML when the first non-blank character is `<`.
/// HTML goes through html5ever (via `scraper`); text is broken into paragraphs at block
/// elements and `<br>` (in plain text: at line ends). Every paragraph is NFC-normalized
/// (which composes windows-1258's combining tone marks), whitespace (non-breaking spaces
/// included) collapsed to one space.
///
/// **Forbidden characters.** A unit body holding U+FFFD (bytes that did not decode), a
/// C0 or C1 control other than line feed and tab, or a bidirectional control refuses the
/// cut, naming each unit and offset — unless [`CutOptions::accept_forbidden_characters`],
/// and then the plan's findings list every one.
///
/// **Structure.** A page with leaf `<article>` elements carrying heading elements (one
/// is enough) is read from its markup alone: the `<article>`s are the articles, items of
/// their top-level `<ol>` are clauses, and everything before the first article is the
/// preamble. Anything else is read as a Vietnamese legal document, from paragraph starts:
/// `Phần`/`Chương`/`Mục` + number (Roman, arabic or `thứ …`) are headings (the next
/// paragraph is their title when they have none), `Điều N.` starts an article (so do
/// `Điều N:` and `Điều N` alone; `Điều N Tên…`, a space and a capital letter, only when
/// the paragraph stands as a heading: bold, a heading element, or an anchor `dieu_N`;
/// a link is never a heading, and a run of headings whose articles all follow again is a
/// table of contents, in no unit),
/// `N.` inside an article starts clause N when N is higher than the clause before,
/// `a)` … `y)` (Vietnamese alphabet) are points and stay in their clause.
///
/// **Where the legal text is (HTML, Vietnamese).** The legal text is the deepest element
/// that holds at least 90% of the page's `Điều N.` headings and some other text; when the
/// national motto (`CỘNG HÒA XÃ HỘI CHỦ NGHĨA VIỆT NAM`) stands within 60 paragraphs
/// before the first heading but outside that element, the element is widened to the
/// deepest one that also holds the motto, so the masthead, title and preamble belong to
/// the document. Everything before and after is page chrome: counted in the report, not
/// cut. For marked-up pages the legal text is the deepest element holding every article;
/// plain text is taken whole. Inside the legal text, the Vietnamese closing block (the
/// adoption formula `… này đã được … thông qua …`, `Nơi nhận:`, or a signature line such
/// as `TM. …`/`KT. …`) ends the last article; it and everything after it (signatures,
/// annexes) is legal text in no unit and listed in the report.
///
/// **Units.** Text before the first heading is the preamble unit. An article with clauses
/// gives an article unit (heading line and lead-in) and one unit per clause (its text,
/// points and following paragraphs); an article without clauses is one unit. Phần /
/// Chương / Mục headings are part of the addresses and of the report, not of a body.
/// Bodies join their paragraphs with `\n`; nothing is added to them. Addresses are
/// `<document_id>/[phan-N/][chuong-N/][muc-N/]dieu-N[/khoan-N]` and `…/loi-noi-dau`, or
/// for marked-up pages `…/article-N[/clause-N]` and `…/preamble`; an address already
/// taken (a duplicated article number) gets `-dup-2`, `-dup-3`, … and a note.
///
/// **Findings.** Missing, duplicate and out-of-order article numbers, legal text in no
/// unit beyond the closing formula, and accepted forbidden characters go into the plan's
/// `findings`, sealed with the plan digest.
///
/// ```
/// use cutter_core::{DocumentId, SourceVersionId};
/// use cutter_doc::{cut, CutOptions};
///
/// let opts = CutOptions::new(DocumentId::new("luat-x")?, SourceVersionId::new("v1")?, "editor");
/// let text = "Chương I\nĐiều 1. Phạm vi điều chỉnh\n1. Khoản một:\na) điểm a.";
/// let out = cut(text.as_bytes(), &opts)?;
/// let addresses: Vec<_> = out.plan.rows.iter().map(|r| r.canonical_address.as_str()).collect();
/// assert_eq!(addresses, ["luat-x/chuong-1/dieu-1", "luat-x/chuong-1/dieu-1/khoan-1"]);
/// assert_eq!(out.plan.rows[1].body, "1. Khoản một:\na) điểm a.");
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub fn cut(input: &[u8], opts: &CutOptions) -> Result<CutOutcome, Error> {
    check_option("actor", &opts.actor)?;
    check_option("publication_type", &opts.publication_type)?;
    let decoded = decode::decode(input, opts.format).map_err(|e| match e {
        decode::DecodeError::Utf16WithoutBom { endianness } => Error::Encoding(format!(
            "the {} bytes look like {endianness} UTF-16 without a byte-order mark, which cannot be recognised (the HTML standard reads a UTF-16 declaration as UTF-8): save the document with a byte-order mark, or as UTF-8",
            input.len()
        )),
    })?;
    if decoded.text.trim().is_empty() {
        return Err(Error::Empty(format!(
            "the input ({} bytes) holds no text",
            input.len()
        )));
    }
    let format = decode::resolve_format(opts.format, &decoded.text);
    let (paras, doc) = match format {
        InputFormat::Html => (None, Some(extract::html(&decoded.text))),
        _ => (Some(extract::text(&decoded.text)), None),
    };
    let format_name = if doc.is_some() { "HTML" } else { "plain text" };
    let all: &[Para] = match (&paras, &doc) {
        (Some(p), _) => p,
        (None, Some(d)) => &d.paras,
        (None, None) => &[],
    };
    if all.is_empty() {
        return Err(Error::Empty(format!(
            "the {format_name} input ({} bytes) holds no text outside markup, scripts and styles",
            input.len()
        )));
    }
    let no_structure = || Error::NoStructure {
        format: format_name,
        paragraphs: all.len(),
        missing: tried(doc.as_ref(), all),
    };

    let (structure, range, rule, asm) = match &doc {
        Some(d) => match markup::detect(d) {
            Some(m) => {
                let range = span_range(d, m.container).unwrap_or(0..all.len());
                let rule = format!(
                    "the deepest element holding all {} marked-up articles",
                    m.articles()
                );
                let asm = markup::assemble(&m, &all[range.clone()]);
                (Structure::MarkedUpArticles, range, rule, asm)
            }
            None => {
                let (range, rule) = vn_legal_range(d).ok_or_else(no_structure)?;
                let asm = vn::assemble(&all[range.clone()]);
                (Structure::VietnameseLaw, range, rule, asm)
            }
        },
        None => {
            let asm = vn::assemble(all);
            let rule = "plain text is taken whole".to_string();
            (Structure::VietnameseLaw, 0..all.len(), rule, asm)
        }
    };
    if asm.articles.is_empty() {
        return Err(no_structure());
    }

    let mut notes = Vec::new();
    if let Some(c) = &decoded.contradiction {
        notes.push(format!("encoding: {c}"));
    }
    let input_summary = InputSummary {
        bytes: input.len(),
        format,
        structure,
        encoding: decoded.encoding.to_string(),
        encoding_from: decoded.source.describe().to_string(),
        invalid_sequences_replaced: decoded.replaced,
        declared_charset: decoded.declared.as_ref().map(|d| d.label.clone()),
        declaration_contradicted: decoded.contradiction.clone(),
    };
    let outcome = finish(opts, all, range, rule, asm, input_summary, notes);
    let forbidden = &outcome.report.forbidden_characters;
    if !forbidden.is_empty() && !opts.accept_forbidden_characters {
        return Err(forbidden_error(&outcome, &decoded));
    }
    Ok(outcome)
}

/// The refusal of a cut whose unit bodies hold forbidden characters.
fn forbidden_error(outcome: &CutOutcome, decoded: &decode::Decoded) -> Error {
    let forbidden = &outcome.report.forbidden_characters;
    let listed: Vec<String> = forbidden
        .iter()
        .take(10)
        .map(|f| {
            format!(
                "{} at character {} of {}",
                f.code_point, f.offset, f.canonical_address
            )
        })
        .collect();
    let more = forbidden.len().saturating_sub(listed.len());
    let kinds: BTreeSet<&str> = outcome
        .plan
        .rows
        .iter()
        .flat_map(|r| forbidden_characters(&r.body).map(|(_, c)| describe_forbidden(c)))
        .collect();
    let mut hint = format!(" ({})", kinds.into_iter().collect::<Vec<_>>().join("; "));
    if decoded.replaced > 0 {
        hint.push_str(&format!(
            "; {} byte sequence(s) were not {} ({})",
            decoded.replaced,
            decoded.encoding,
            decoded.source.describe()
        ));
    }
    if let Some(c) = &decoded.contradiction {
        hint.push_str(&format!("; {c}"));
    }
    Error::ForbiddenCharacters {
        count: forbidden.len(),
        listed: format!(
            "{}{}",
            listed.join(", "),
            if more > 0 {
                format!(", and {more} more")
            } else {
                String::new()
            }
        ),
        hint,
    }
}

/// The paragraph range of an element.
fn span_range(doc: &HtmlDoc, id: ego_tree::NodeId) -> Option<Range<usize>> {
    doc.spans
        .iter()
        .find(|s| s.id == id)
        .map(|s| s.first..s.end.max(s.first))
}

/// The legal text of a Vietnamese page (see the crate documentation).
fn vn_legal_range(doc: &HtmlDoc) -> Option<(Range<usize>, String)> {
    let paras = &doc.paras;
    let mut prefix = Vec::with_capacity(paras.len() + 1);
    prefix.push(0usize);
    for p in paras {
        let last = *prefix.last().unwrap_or(&0);
        prefix.push(last + usize::from(vn::is_article_heading(p)));
    }
    let total = *prefix.last().unwrap_or(&0);
    if total == 0 {
        return None;
    }
    let heads = |r: &Range<usize>| prefix[r.end] - prefix[r.start];
    let need = (total * 9).div_ceil(10);
    let deepest = |pred: &dyn Fn(&Range<usize>) -> bool| {
        let mut best: Option<(usize, Range<usize>)> = None;
        for s in &doc.spans {
            let r = s.first..s.end.max(s.first);
            if r.end <= paras.len() && pred(&r) && best.as_ref().is_none_or(|(d, _)| s.depth > *d) {
                best = Some((s.depth, r));
            }
        }
        best.map(|(_, r)| r)
    };
    let Some(mut range) = deepest(&|r| heads(r) >= need && r.len() > heads(r)) else {
        return Some((
            0..paras.len(),
            "the whole page (no element holds the article headings and other text)".into(),
        ));
    };
    let mut rule = format!(
        "the deepest element holding at least 90% of the {total} article heading(s) and other text"
    );
    let first_head = (range.start..range.end)
        .find(|&i| prefix[i + 1] > prefix[i])
        .unwrap_or(range.start);
    let motto = (first_head.saturating_sub(60)..first_head)
        .rev()
        .find(|&i| vn::is_motto(&paras[i].text));
    if let Some(m) = motto.filter(|m| *m < range.start) {
        let end = range.end;
        if let Some(wider) = deepest(&|r| r.start <= m && r.end >= end) {
            range = wider;
            rule.push_str(", widened to take in the national motto before it");
        }
    }
    Some((range, rule))
}

/// The first paragraphs with letters or digits, joined by ` / `, at most 200 characters.
fn opening(legal: &[Para]) -> String {
    let mut out = String::new();
    for p in legal
        .iter()
        .filter(|p| p.text.chars().any(char::is_alphanumeric))
    {
        if !out.is_empty() {
            out.push_str(" / ");
        }
        out.push_str(&p.text);
        if chars(&out) >= 200 {
            break;
        }
    }
    excerpt(&out, 200)
}

fn finish(
    opts: &CutOptions,
    all: &[Para],
    range: Range<usize>,
    rule: String,
    asm: Assembly,
    input: InputSummary,
    mut notes: Vec<String>,
) -> CutOutcome {
    let legal = &all[range.clone()];
    let doc_id = opts.document_id.as_str();
    let rows: Vec<CutPlanRow> = asm
        .units
        .iter()
        .map(|u| {
            let mut body =
                String::with_capacity(u.paras.iter().map(|&i| legal[i].text.len() + 1).sum());
            for (k, &i) in u.paras.iter().enumerate() {
                if k > 0 {
                    body.push('\n');
                }
                body.push_str(&legal[i].text);
            }
            let title = title_safe(&u.title);
            CutPlanRow {
                canonical_address: format!("{doc_id}/{}", u.path),
                title: if title.is_empty() {
                    u.path.clone()
                } else {
                    title
                },
                body,
                actor: opts.actor.clone(),
                unit_kind: UNIT_KIND.into(),
                section_type: Some(u.section_type.into()),
                publication_type: opts.publication_type.clone(),
                owner_ref: None,
            }
        })
        .collect();

    let mut accounting = LegalAccounting {
        opening: opening(legal),
        paragraphs: legal.len(),
        chars: 0,
        in_units: 0,
        in_headings: 0,
        in_no_unit: 0,
    };
    let paragraphs: Vec<LegalParagraph> = legal
        .iter()
        .zip(&asm.places)
        .map(|(p, place)| {
            let n = chars(&p.text);
            accounting.chars += n;
            match place {
                Placement::Unit(_) => accounting.in_units += n,
                Placement::Heading => accounting.in_headings += n,
                Placement::Unassigned => accounting.in_no_unit += n,
            }
            LegalParagraph {
                text: p.text.clone(),
                placement: *place,
            }
        })
        .collect();

    let before = &all[..range.start];
    let after = &all[range.end..];
    let chrome = ChromeSkipped {
        rule,
        before_paragraphs: before.len(),
        before_chars: before.iter().map(|p| chars(&p.text)).sum(),
        last_before: before.last().map(|p| excerpt(&p.text, 60)),
        after_paragraphs: after.len(),
        after_chars: after.iter().map(|p| chars(&p.text)).sum(),
        first_after: after.first().map(|p| excerpt(&p.text, 60)),
    };

    let count = |st: &str| asm.units.iter().filter(|u| u.section_type == st).count();
    let counts = Counts {
        parts: asm.tally.parts,
        chapters: asm.tally.chapters,
        sections: asm.tally.sections,
        articles: asm.articles.len(),
        clauses: asm.tally.clauses,
        points: asm.tally.points,
        units: rows.len(),
        preamble_units: count("preamble"),
        article_units: count("article"),
        clause_units: count("clause"),
    };
    let (article_numbers, missing_articles, duplicate_articles, out_of_order_articles) =
        report::numbering(&asm.articles);
    notes.extend(asm.notes);
    let mut unassigned = asm.spans;
    for s in &mut unassigned {
        s.closing_block = asm.closing.as_deref() == Some(s.location.as_str());
    }
    let forbidden: Vec<ForbiddenCharacter> = rows
        .iter()
        .flat_map(|r| {
            forbidden_characters(&r.body).map(|(offset, c)| ForbiddenCharacter {
                canonical_address: r.canonical_address.clone(),
                offset,
                code_point: code_point(c),
            })
        })
        .collect();
    let findings = PlanFindings {
        missing_article_numbers: missing_articles.clone(),
        duplicate_article_numbers: duplicate_articles.clone(),
        out_of_order_article_numbers: out_of_order_articles
            .iter()
            .map(|o| OutOfOrderNumber {
                number: o.number.clone(),
                after: o.after.clone(),
            })
            .collect(),
        text_in_no_unit: unassigned
            .iter()
            .filter(|s| !s.closing_block)
            .map(|s| TextInNoUnit {
                location: s.location.clone(),
                paragraphs: s.paragraphs as u64,
                chars: s.chars as u64,
                excerpt: s.excerpt.clone(),
            })
            .collect(),
        forbidden_characters_accepted: opts.accept_forbidden_characters,
        forbidden_characters: if opts.accept_forbidden_characters {
            forbidden.clone()
        } else {
            Vec::new()
        },
        digest: Sha256Digest::from_bytes([0; 32]),
    };
    let report = CutReport {
        document_id: doc_id.to_string(),
        input,
        chrome,
        legal: accounting,
        counts,
        headings: asm.headings,
        article_numbers,
        missing_articles,
        duplicate_articles,
        out_of_order_articles,
        unassigned,
        forbidden_characters: forbidden,
        forbidden_characters_accepted: opts.accept_forbidden_characters,
        notes,
    };
    let plan = CutPlan::new(
        opts.document_id.clone(),
        opts.source_version_id.clone(),
        rows,
    )
    .with_findings(findings);
    CutOutcome {
        plan,
        report,
        paragraphs,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn opts(format: InputFormat) -> CutOptions {
        let mut o = CutOptions::new(
            DocumentId::new("doc").unwrap(),
            SourceVersionId::new("v1").unwrap(),
            "tester",
        );
        o.format = format;
        o
    }

    fn cut_str(s: &str) -> Result<CutOutcome, Error> {
        cut(s.as_bytes(), &opts(InputFormat::Auto))
    }

    #[test]
    fn empty_and_structureless_inputs_are_errors_naming_what_is_missing() {
        for input in ["", "  \n\t ", "\u{feff}"] {
            assert!(matches!(cut_str(input), Err(Error::Empty(_))), "{input:?}");
        }
        let e = cut_str("<html><head><script>Điều 1.</script></head><body> </body></html>");
        assert!(matches!(e, Err(Error::Empty(_))), "{e:?}");
        let e = cut_str("Một văn bản không có điều nào.\n1. Một dòng.").unwrap_err();
        assert!(matches!(e, Error::NoStructure { paragraphs: 2, .. }));
        assert!(
            e.to_string()
                .contains("tried: article headings opening a paragraph"),
            "{e}"
        );
        // Language-neutral, and listing what was tried.
        let e = cut_str("<html><body><h1>Хүний эрхийн түгээмэл тунхаглал</h1><p>Бүх хүн эрх чөлөөтэй.</p></body></html>").unwrap_err();
        let text = e.to_string();
        assert!(
            text.contains(
                "marked-up articles (<article> elements holding a heading element): 0 found"
            ),
            "{text}"
        );
        assert!(text.contains("structural anchors"), "{text}");
        assert!(!text.contains("two or more"), "{text}");
        let e = cut_str("<p>Chương I</p><p>Không có điều.</p>").unwrap_err();
        assert!(
            e.to_string().contains("plain text") || e.to_string().contains("HTML"),
            "{e}"
        );
    }

    #[test]
    fn bad_options_are_refused() {
        let mut o = opts(InputFormat::Auto);
        o.actor = " ".into();
        assert!(matches!(
            cut(b"Dieu", &o),
            Err(Error::InvalidOption { field: "actor", .. })
        ));
        o.actor = "a".into();
        o.publication_type = "law\u{202e}".into();
        assert!(matches!(
            cut(b"Dieu", &o),
            Err(Error::InvalidOption {
                field: "publication_type",
                ..
            })
        ));
    }

    #[test]
    fn forbidden_characters_refuse_the_cut_naming_unit_and_offset() {
        let mut input = "Điều 1.\n1. Khoản\u{1} một \u{c0}".as_bytes().to_vec();
        input.extend_from_slice(b"\xC0\xFF\n");
        input.extend_from_slice("Điều 2.\nHai \u{202E}.".as_bytes());
        let e = cut(&input, &opts(InputFormat::Auto)).unwrap_err();
        let Error::ForbiddenCharacters { count, .. } = &e else {
            panic!("{e}")
        };
        assert_eq!(*count, 4);
        let text = e.to_string();
        assert!(
            text.starts_with("4 forbidden character(s) in unit bodies: U+0001 at character 8 of doc/dieu-1/khoan-1, U+FFFD at character 15 of doc/dieu-1/khoan-1, U+FFFD at character 16 of doc/dieu-1/khoan-1, U+202E at character 12 of doc/dieu-2"),
            "{text}"
        );
        assert!(text.contains("2 byte sequence(s) were not UTF-8"), "{text}");
        assert!(text.contains("--accept-forbidden-characters"), "{text}");

        // Accepted: kept as they are, and recorded in the plan's findings.
        let mut o = opts(InputFormat::Auto);
        o.accept_forbidden_characters = true;
        let out = cut(&input, &o).unwrap();
        assert_eq!(
            out.plan.rows[1].body,
            "1. Khoản\u{1} một \u{c0}\u{fffd}\u{fffd}"
        );
        assert_eq!(out.report.input.invalid_sequences_replaced, 2);
        let f = out.plan.findings.as_ref().unwrap();
        assert!(f.forbidden_characters_accepted);
        assert_eq!(f.forbidden_characters.len(), 4);
        assert_eq!(f.forbidden_characters[0].code_point, "U+0001");
        assert!(out
            .report
            .to_string()
            .contains("forbidden characters in unit bodies (4): ACCEPTED"));
        let valid = out
            .plan
            .clone()
            .validate(&vocab())
            .expect("the contract accepts what the findings list");
        assert_eq!(valid.digest(), out.plan.digest());
        // Without the findings, the row contract refuses the same rows.
        let mut bare = out.plan.clone();
        bare.findings = None;
        let err = bare.validate(&vocab()).unwrap_err().to_string();
        assert!(err.contains("row 2 (doc/dieu-1/khoan-1), body: 3 forbidden character(s): U+0001 (C0 control) at character 8"), "{err}");
    }

    fn vocab() -> cutter_core::Vocabularies {
        let set = |v: &[&str]| v.iter().map(|s| s.to_string()).collect();
        cutter_core::Vocabularies {
            unit_kind: set(&["law_unit"]),
            section_type: set(&["preamble", "article", "clause"]),
            publication_type: set(&["law"]),
        }
    }

    #[test]
    fn findings_summarize_the_report_and_leave_the_closing_block_out() {
        let o = cut_str(
            "Điều 1.\nA.\nĐiều 3.\nB.\nĐiều 3.\nC.\nĐiều 2.\nD.\nChương II\nTÊN\nLời dẫn.\nĐiều 4.\nE.\n\
             Luật này đã được Quốc hội thông qua ngày 1 tháng 1 năm 2020.\nCHỦ TỊCH",
        )
        .unwrap();
        let f = o.plan.findings.clone().unwrap();
        assert_eq!(f.missing_article_numbers, Vec::<u32>::new());
        assert_eq!(f.duplicate_article_numbers, ["3"]);
        assert_eq!(f.out_of_order_article_numbers.len(), 1);
        assert_eq!(f.out_of_order_article_numbers[0].number, "2");
        assert_eq!(f.text_in_no_unit.len(), 1, "{:?}", f.text_in_no_unit);
        assert_eq!(f.text_in_no_unit[0].excerpt, "Lời dẫn.");
        assert_eq!(o.report.unassigned.len(), 2);
        assert!(o.report.unassigned[1].closing_block);
        assert!(!f.forbidden_characters_accepted);
        assert_eq!(f.digest, f.compute_digest(&o.plan.digest()));
        o.plan.validate(&vocab()).expect("valid");
    }

    #[test]
    fn the_legal_text_is_the_element_holding_the_headings_widened_to_the_motto() {
        let page = "<html><body>\
            <div id=nav><p>Trang chủ</p><p>Điều 9. Tin mới</p><p>1. Mục tin</p></div>\
            <div id=doc>\
              <div id=head><p>QUỐC HỘI</p><p>CỘNG HÒA XÃ HỘI CHỦ NGHĨA VIỆT NAM</p><p>LUẬT X</p></div>\
              <div id=body>\
                <p>Chương I</p><p>QUY ĐỊNH CHUNG</p>\
                <p>Điều 1. Phạm vi</p><p>Nội dung.</p>\
                <p>Điều 2.</p><p>1. Một.</p><p>2. Hai:</p><p>a) điểm;</p>\
                <p>Điều 3.</p><p>Ba.</p><p>Điều 4.</p><p>Bốn.</p><p>Điều 5.</p><p>Năm.</p>\
                <p>Điều 6.</p><p>Sáu.</p><p>Điều 7.</p><p>Bảy.</p><p>Điều 8.</p><p>Tám.</p>\
                <p>Điều 10.</p><p>Mười.</p>\
              </div></div>\
            <div id=footer><p>Liên hệ</p></div></body></html>";
        let o = cut_str(page).unwrap();
        let r = &o.report;
        assert_eq!(r.chrome.before_paragraphs, 3);
        assert_eq!(r.chrome.after_paragraphs, 1);
        assert!(r.chrome.rule.contains("widened"), "{}", r.chrome.rule);
        assert_eq!(
            r.article_numbers,
            ["1", "2", "3", "4", "5", "6", "7", "8", "10"]
        );
        assert_eq!(r.missing_articles, [9]);
        assert_eq!(r.counts.points, 1);
        let addrs: Vec<&str> = o
            .plan
            .rows
            .iter()
            .map(|r| r.canonical_address.as_str())
            .collect();
        assert_eq!(
            &addrs[..5],
            [
                "doc/loi-noi-dau",
                "doc/chuong-1/dieu-1",
                "doc/chuong-1/dieu-2",
                "doc/chuong-1/dieu-2/khoan-1",
                "doc/chuong-1/dieu-2/khoan-2"
            ]
        );
        assert_eq!(
            o.plan.rows[0].body,
            "QUỐC HỘI\nCỘNG HÒA XÃ HỘI CHỦ NGHĨA VIỆT NAM\nLUẬT X"
        );
        assert_eq!(o.plan.rows[1].title, "Điều 1. Phạm vi");
        assert_eq!(o.plan.rows[4].body, "2. Hai:\na) điểm;");
    }

    #[test]
    fn duplicated_articles_get_unique_addresses_and_are_reported() {
        let o = cut_str("Điều 1.\nA.\nĐiều 2.\nB.\nĐiều 2.\nC.\nĐiều 1.\nD.").unwrap();
        let addrs: Vec<&str> = o
            .plan
            .rows
            .iter()
            .map(|r| r.canonical_address.as_str())
            .collect();
        assert_eq!(
            addrs,
            [
                "doc/dieu-1",
                "doc/dieu-2",
                "doc/dieu-2-dup-2",
                "doc/dieu-1-dup-2"
            ]
        );
        assert_eq!(o.report.duplicate_articles, ["2", "1"]);
        assert!(o.report.out_of_order_articles.is_empty());
        assert_eq!(o.report.notes.len(), 3, "{:?}", o.report.notes);
        assert!(o.report.notes[2].contains("may be cut short"));
    }

    #[test]
    fn clause_and_point_anomalies_are_noted_and_text_kept() {
        let o = cut_str("Điều 1.\n2. Hai.\n2. Lại hai.\n4. Bốn:\nb) bê;\na) a.").unwrap();
        let bodies: Vec<&str> = o.plan.rows.iter().map(|r| r.body.as_str()).collect();
        assert_eq!(
            bodies,
            ["Điều 1.", "2. Hai.\n2. Lại hai.", "4. Bốn:\nb) bê;\na) a."]
        );
        assert_eq!(o.report.notes.len(), 6, "{:?}", o.report.notes);
    }

    #[test]
    fn law_pages_using_article_elements_are_still_read_as_laws() {
        let law = "<p>Điều 1.</p><p>Một.</p><p>Điều 2.</p><p>Hai.</p><p>Điều 3.</p><p>Ba.</p>";
        let teasers = "<aside><article><h3>Tin 1</h3><p>x</p></article>\
                       <article><h3>Tin 2</h3><p>y</p></article></aside>";
        for page in [
            format!("<html><body><div>{law}</div>{teasers}</body></html>"),
            format!("<html><body><article><h1>LUẬT</h1>{law}</article></body></html>"),
        ] {
            let o = cut_str(&page).unwrap();
            assert_eq!(o.report.input.structure, Structure::VietnameseLaw, "{page}");
            assert_eq!(o.report.counts.articles, 3, "{page}");
        }
    }

    #[test]
    fn marked_up_articles_without_numbers_or_keywords() {
        let page = "<body><h1>宣言</h1><header><h2>序言</h2><p>鉴于。</p></header>\
            <article><h2>第一条</h2><p>人人。</p></article><p>游离文本</p>\
            <article><h2>第二条</h2><p>导言</p><ol><li>甲</li><li><p>乙</p><ol><li>丙</li></ol></li></ol><p>尾</p></article>\
            </body>";
        let o = cut_str(page).unwrap();
        let rows: Vec<(&str, &str, &str)> = o
            .plan
            .rows
            .iter()
            .map(|r| {
                (
                    r.canonical_address.as_str(),
                    r.title.as_str(),
                    r.body.as_str(),
                )
            })
            .collect();
        assert_eq!(
            rows,
            [
                ("doc/preamble", "序言", "宣言\n序言\n鉴于。"),
                ("doc/article-1", "第一条", "第一条\n人人。"),
                ("doc/article-2", "第二条", "第二条\n导言"),
                ("doc/article-2/clause-1", "第二条 (1)", "甲"),
                ("doc/article-2/clause-2", "第二条 (2)", "乙\n丙"),
            ]
        );
        let spans: Vec<&str> = o
            .report
            .unassigned
            .iter()
            .map(|s| s.location.as_str())
            .collect();
        assert_eq!(
            spans,
            [
                "between articles, after \"第一条\"",
                "inside \"第二条\", after its clause 2"
            ]
        );
        assert!(
            o.report.notes[0].contains("position"),
            "{:?}",
            o.report.notes
        );
    }

    #[test]
    fn text_after_a_heading_before_its_first_article_is_reported() {
        let o = cut_str("Chương I\nTÊN\nLời dẫn của chương.\nĐiều 1.\nX.").unwrap();
        assert_eq!(o.report.unassigned.len(), 1);
        assert_eq!(
            o.report.unassigned[0].location,
            "after the heading of Chương I, before its first article"
        );
        assert_eq!(o.plan.rows.len(), 1);
    }
}
