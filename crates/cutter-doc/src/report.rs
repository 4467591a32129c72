//! The cut report: what was read, what was skipped as page chrome, the structure found,
//! article numbering (gaps, duplicates, order) and every span of legal text that landed
//! in no unit. Serializable, and readable through its `Display`.

use std::collections::BTreeSet;
use std::fmt;

use cutter_core::ForbiddenCharacter;
use serde::{Deserialize, Serialize};

use crate::assemble::FoundArticle;
use crate::InputFormat;

/// How the structure of the document was read.
#[derive(Clone, Copy, PartialEq, Eq, Debug, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Structure {
    /// Vietnamese legal text: Phần / Chương / Mục / `Điều N.` / clauses / points.
    VietnameseLaw,
    /// Articles marked up as `<article>` elements with headings (no language keywords).
    MarkedUpArticles,
}

/// What was read.
#[derive(Clone, PartialEq, Eq, Debug, Serialize, Deserialize)]
pub struct InputSummary {
    /// Size of the input in bytes.
    pub bytes: usize,
    /// `html` or `text` (after detection).
    pub format: InputFormat,
    /// How the structure was read.
    pub structure: Structure,
    /// The encoding the bytes were decoded as (`encoding_rs` name).
    pub encoding: String,
    /// Where that encoding came from: byte-order mark, declaration, or detection.
    pub encoding_from: String,
    /// Malformed byte sequences replaced by U+FFFD.
    pub invalid_sequences_replaced: usize,
    /// The charset the HTML declares (`<meta>` or XML declaration), as written.
    pub declared_charset: Option<String>,
    /// How the bytes contradict the declaration, when they do.
    pub declaration_contradicted: Option<String>,
}

/// Text outside the legal text: page chrome, skipped and only counted.
#[derive(Clone, PartialEq, Eq, Debug, Serialize, Deserialize)]
pub struct ChromeSkipped {
    /// How the legal text was delimited.
    pub rule: String,
    /// Paragraphs before the legal text.
    pub before_paragraphs: usize,
    /// Characters in them.
    pub before_chars: usize,
    /// The last of them, shortened.
    pub last_before: Option<String>,
    /// Paragraphs after the legal text.
    pub after_paragraphs: usize,
    /// Characters in them.
    pub after_chars: usize,
    /// The first of them, shortened.
    pub first_after: Option<String>,
}

/// Where the characters of the legal text went (paragraph separators not counted).
#[derive(Clone, PartialEq, Eq, Debug, Serialize, Deserialize)]
pub struct LegalAccounting {
    /// The first paragraphs of the legal text, shortened: which document this is.
    pub opening: String,
    /// Paragraphs of legal text.
    pub paragraphs: usize,
    /// Characters of legal text.
    pub chars: usize,
    /// Characters in unit bodies.
    pub in_units: usize,
    /// Characters in Phần / Chương / Mục headings (kept in the report, not in units).
    pub in_headings: usize,
    /// Characters in no unit (listed in [`CutReport::unassigned`]).
    pub in_no_unit: usize,
}

/// Counts per level.
#[derive(Clone, PartialEq, Eq, Debug, Default, Serialize, Deserialize)]
pub struct Counts {
    /// Phần headings.
    pub parts: usize,
    /// Chương headings.
    pub chapters: usize,
    /// Mục headings.
    pub sections: usize,
    /// Articles.
    pub articles: usize,
    /// Clauses (each one unit).
    pub clauses: usize,
    /// Points (inside clause or article bodies).
    pub points: usize,
    /// Units in the plan.
    pub units: usize,
    /// Units with section type `preamble`.
    pub preamble_units: usize,
    /// Units with section type `article`.
    pub article_units: usize,
    /// Units with section type `clause`.
    pub clause_units: usize,
}

/// A Phần / Chương / Mục heading.
#[derive(Clone, PartialEq, Eq, Debug, Serialize, Deserialize)]
pub struct StructureHeading {
    /// `part`, `chapter` or `section`.
    pub level: String,
    /// As written, e.g. `Chương II`.
    pub label: String,
    /// The number in arabic digits.
    pub number: u32,
    /// The heading's title, e.g. `QUYỀN CON NGƯỜI, …`.
    pub title: Option<String>,
    /// The address segments this heading contributes, e.g. `chuong-2`.
    pub path: String,
}

/// An article whose number is lower than the one before it.
#[derive(Clone, PartialEq, Eq, Debug, Serialize, Deserialize)]
pub struct OutOfOrder {
    /// The article.
    pub number: String,
    /// The article before it.
    pub after: String,
}

/// Consecutive legal paragraphs that landed in no unit.
#[derive(Clone, PartialEq, Eq, Debug, Serialize, Deserialize)]
pub struct UnassignedSpan {
    /// Where, e.g. `after Điều 120: closing formula, …`.
    pub location: String,
    /// Index of its first paragraph in the legal text (0-based; the `Display` counts from 1).
    pub first_paragraph: usize,
    /// Paragraphs in the span.
    pub paragraphs: usize,
    /// Characters in the span.
    pub chars: usize,
    /// The start of the span.
    pub excerpt: String,
    /// Paragraphs in the span that look like article headings (e.g. in an annex).
    pub article_headings: usize,
    /// The span starts at the closing formula (adoption formula, recipients, signature):
    /// in no unit by design, and not a finding.
    pub closing_block: bool,
}

/// The report of one cut.
#[derive(Clone, PartialEq, Eq, Debug, Serialize, Deserialize)]
pub struct CutReport {
    /// The document cut.
    pub document_id: String,
    /// What was read.
    pub input: InputSummary,
    /// Page chrome skipped around the legal text.
    pub chrome: ChromeSkipped,
    /// Where the legal text went.
    pub legal: LegalAccounting,
    /// Counts per level.
    pub counts: Counts,
    /// Phần / Chương / Mục headings in order.
    pub headings: Vec<StructureHeading>,
    /// Article numbers as found, in document order.
    pub article_numbers: Vec<String>,
    /// Numbers between 1 and the highest found that no article has.
    pub missing_articles: Vec<u32>,
    /// Article numbers found more than once (one entry per extra occurrence).
    pub duplicate_articles: Vec<String>,
    /// Articles numbered lower than the article before them.
    pub out_of_order_articles: Vec<OutOfOrder>,
    /// Every span of legal text in no unit.
    pub unassigned: Vec<UnassignedSpan>,
    /// Every forbidden character in a unit body (a cut refuses them unless accepted).
    pub forbidden_characters: Vec<ForbiddenCharacter>,
    /// The cut was told to accept forbidden characters.
    pub forbidden_characters_accepted: bool,
    /// Anything else worth a look: clause or point numbering, renamed addresses, charset.
    pub notes: Vec<String>,
}

/// Numbering analysis of the articles found.
pub(crate) fn numbering(
    articles: &[FoundArticle],
) -> (Vec<String>, Vec<u32>, Vec<String>, Vec<OutOfOrder>) {
    let labels = articles.iter().map(|a| a.label.clone()).collect();
    let mut seen: BTreeSet<(u32, &str)> = BTreeSet::new();
    let mut plain: BTreeSet<u32> = BTreeSet::new();
    let mut duplicates = Vec::new();
    let mut out_of_order = Vec::new();
    let mut prev: Option<(u32, &str)> = None;
    for a in articles {
        let key = (a.number, a.label.as_str());
        if a.plain {
            plain.insert(a.number);
        }
        if !seen.insert(key) {
            duplicates.push(a.label.clone());
        } else if let Some(p) = prev.filter(|p| key < *p) {
            out_of_order.push(OutOfOrder {
                number: a.label.clone(),
                after: p.1.to_string(),
            });
        }
        prev = Some(key);
    }
    let max = articles.iter().map(|a| a.number).max().unwrap_or(0);
    let missing = (1..=max).filter(|n| !plain.contains(n)).collect();
    (labels, missing, duplicates, out_of_order)
}

/// `1–120, 121a, 122–130`: runs of consecutive plain numbers, in the given order.
fn runs<'a>(items: impl IntoIterator<Item = &'a str>) -> String {
    let mut parts: Vec<String> = Vec::new();
    let mut run: Option<(u32, u32)> = None;
    let close = |run: &mut Option<(u32, u32)>, parts: &mut Vec<String>| {
        if let Some((a, b)) = run.take() {
            parts.push(if a == b {
                a.to_string()
            } else {
                format!("{a}–{b}")
            });
        }
    };
    for item in items {
        match (item.parse::<u32>().ok(), run) {
            (Some(n), Some((a, b))) if n == b + 1 => run = Some((a, n)),
            (Some(n), _) => {
                close(&mut run, &mut parts);
                run = Some((n, n));
            }
            (None, _) => {
                close(&mut run, &mut parts);
                parts.push(item.to_string());
            }
        }
    }
    close(&mut run, &mut parts);
    if parts.is_empty() {
        "none".into()
    } else {
        parts.join(", ")
    }
}

fn list_or_none(items: &[String]) -> String {
    if items.is_empty() {
        "none".into()
    } else {
        items.join(", ")
    }
}

const MAX_LISTED: usize = 40;

impl fmt::Display for CutReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let i = &self.input;
        let c = &self.chrome;
        let l = &self.legal;
        let n = &self.counts;
        writeln!(f, "cut report for {}", self.document_id)?;
        writeln!(
            f,
            "input: {} bytes of {}, decoded as {} ({}; {} malformed sequence(s) replaced{})",
            i.bytes,
            match i.format {
                InputFormat::Html => "HTML",
                InputFormat::Text => "plain text",
                InputFormat::Auto => "input",
            },
            i.encoding,
            i.encoding_from,
            i.invalid_sequences_replaced,
            i.declared_charset
                .as_ref()
                .map(|cs| format!("; the page declares {cs}"))
                .unwrap_or_default(),
        )?;
        if let Some(c) = &i.declaration_contradicted {
            writeln!(f, "DECLARATION CONTRADICTED: {c}")?;
        }
        writeln!(
            f,
            "structure: {}",
            match i.structure {
                Structure::VietnameseLaw =>
                    "Vietnamese legal document (Phần/Chương/Mục/Điều/khoản/điểm)",
                Structure::MarkedUpArticles =>
                    "marked-up articles (<article> elements with headings)",
            }
        )?;
        writeln!(f, "legal text delimited by: {}", c.rule)?;
        let quoted = |s: &Option<String>| {
            s.as_ref()
                .map(|s| format!(" (\"{s}\")"))
                .unwrap_or_default()
        };
        writeln!(
            f,
            "page chrome skipped: {} paragraph(s), {} chars before the legal text{}; {} paragraph(s), {} chars after it{}",
            c.before_paragraphs,
            c.before_chars,
            quoted(&c.last_before),
            c.after_paragraphs,
            c.after_chars,
            quoted(&c.first_after)
        )?;
        writeln!(f, "legal text opens with: \"{}\"", l.opening)?;
        writeln!(
            f,
            "legal text: {} paragraph(s), {} chars = {} in units + {} in structure headings + {} in no unit",
            l.paragraphs, l.chars, l.in_units, l.in_headings, l.in_no_unit
        )?;
        writeln!(
            f,
            "counts: {} part(s), {} chapter(s), {} section(s), {} article(s), {} clause(s), {} point(s)",
            n.parts, n.chapters, n.sections, n.articles, n.clauses, n.points
        )?;
        writeln!(
            f,
            "units: {} = {} preamble + {} article + {} clause",
            n.units, n.preamble_units, n.article_units, n.clause_units
        )?;
        writeln!(
            f,
            "article numbers found ({}): {}",
            self.article_numbers.len(),
            runs(self.article_numbers.iter().map(String::as_str))
        )?;
        let missing: Vec<String> = self.missing_articles.iter().map(u32::to_string).collect();
        writeln!(
            f,
            "missing article numbers ({}): {}",
            missing.len(),
            runs(missing.iter().map(String::as_str))
        )?;
        writeln!(
            f,
            "duplicate article numbers: {}",
            list_or_none(&self.duplicate_articles)
        )?;
        let ooo: Vec<String> = self
            .out_of_order_articles
            .iter()
            .map(|o| format!("{} after {}", o.number, o.after))
            .collect();
        writeln!(f, "out-of-order article numbers: {}", list_or_none(&ooo))?;
        writeln!(f, "structure headings ({}):", self.headings.len())?;
        for h in self.headings.iter().take(MAX_LISTED) {
            writeln!(
                f,
                "  {} [{}]: {}",
                h.label,
                h.path,
                h.title.as_deref().unwrap_or("(no title)")
            )?;
        }
        if self.headings.len() > MAX_LISTED {
            writeln!(f, "  … and {} more", self.headings.len() - MAX_LISTED)?;
        }
        writeln!(
            f,
            "legal text in no unit ({} span(s)):",
            self.unassigned.len()
        )?;
        for s in self.unassigned.iter().take(MAX_LISTED) {
            writeln!(
                f,
                "  {}: paragraphs {}–{}, {} chars{}: \"{}\"",
                s.location,
                s.first_paragraph + 1,
                s.first_paragraph + s.paragraphs,
                s.chars,
                if s.article_headings > 0 {
                    format!(
                        ", including {} article heading(s) not cut",
                        s.article_headings
                    )
                } else {
                    String::new()
                },
                s.excerpt
            )?;
        }
        if self.unassigned.len() > MAX_LISTED {
            writeln!(f, "  … and {} more", self.unassigned.len() - MAX_LISTED)?;
        }
        writeln!(
            f,
            "forbidden characters in unit bodies ({}){}",
            self.forbidden_characters.len(),
            if self.forbidden_characters.is_empty() {
                ""
            } else if self.forbidden_characters_accepted {
                ": ACCEPTED (--accept-forbidden-characters), recorded in the plan's findings"
            } else {
                ": the cut is refused"
            }
        )?;
        for c in self.forbidden_characters.iter().take(MAX_LISTED) {
            writeln!(
                f,
                "  {} at character {} of {}",
                c.code_point, c.offset, c.canonical_address
            )?;
        }
        if self.forbidden_characters.len() > MAX_LISTED {
            writeln!(
                f,
                "  … and {} more",
                self.forbidden_characters.len() - MAX_LISTED
            )?;
        }
        writeln!(f, "notes ({}):", self.notes.len())?;
        for note in self.notes.iter().take(MAX_LISTED) {
            writeln!(f, "  {note}")?;
        }
        if self.notes.len() > MAX_LISTED {
            writeln!(f, "  … and {} more", self.notes.len() - MAX_LISTED)?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn art(n: u32, label: &str) -> FoundArticle {
        FoundArticle {
            number: n,
            label: label.into(),
            plain: label == n.to_string(),
        }
    }

    #[test]
    fn numbering_finds_gaps_duplicates_and_disorder() {
        let a = [
            art(1, "1"),
            art(2, "2"),
            art(5, "5"),
            art(5, "5a"),
            art(4, "4"),
            art(5, "5"),
            art(9, "9"),
        ];
        let (labels, missing, dup, ooo) = numbering(&a);
        assert_eq!(labels.len(), 7);
        assert_eq!(missing, [3, 6, 7, 8]);
        assert_eq!(dup, ["5"]);
        assert_eq!(
            ooo,
            [OutOfOrder {
                number: "4".into(),
                after: "5a".into()
            }]
        );
        assert_eq!(
            runs(labels.iter().map(String::as_str)),
            "1–2, 5, 5a, 4–5, 9"
        );
        assert_eq!(runs([]), "none");
    }
}
