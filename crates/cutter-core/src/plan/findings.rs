//! What the cutter found that an approver must know: the plan's `findings` (numbering
//! anomalies, legal text left out of every unit, forbidden characters accepted) and their
//! digest, which binds them to the plan's rows. Also the characters no unit body may hold
//! unless the plan records that they were accepted.

use std::collections::BTreeSet;
use std::fmt;

use serde::{Deserialize, Serialize};

use super::{shorten, CutPlanRow, Field, Violation};
use crate::digest::{CanonicalHasher, Sha256Digest};

/// Most forbidden characters named per row in a contract report.
const NAMED_PER_ROW: usize = 10;

/// True for the characters no unit body may hold unless the plan accepts them: U+FFFD
/// (what a decoder puts where bytes were not text), C0 and C1 controls other than line
/// feed and tab, and the Unicode bidirectional controls.
pub fn is_forbidden_in_body(c: char) -> bool {
    c == '\u{FFFD}' || (c.is_control() && c != '\n' && c != '\t') || is_bidi_control(c)
}

/// The Unicode bidirectional formatting characters.
pub fn is_bidi_control(c: char) -> bool {
    matches!(c, '\u{200E}' | '\u{200F}' | '\u{202A}'..='\u{202E}' | '\u{2066}'..='\u{2069}' | '\u{061C}')
}

/// Every forbidden character of `body` with its offset in characters (Unicode scalar
/// values, 0-based) from the start of the body.
pub fn forbidden_characters(body: &str) -> impl Iterator<Item = (u64, char)> + '_ {
    body.chars()
        .enumerate()
        .filter(|(_, c)| is_forbidden_in_body(*c))
        .map(|(i, c)| (i as u64, c))
}

/// What a forbidden character is, for messages.
pub fn describe_forbidden(c: char) -> &'static str {
    match c {
        '\u{FFFD}' => "replacement character: bytes the decoder could not read as text",
        '\0' => "NUL",
        c if is_bidi_control(c) => "bidirectional control",
        c if (c as u32) < 0x80 => "C0 control",
        _ => "C1 control",
    }
}

/// `U+FFFD`.
pub fn code_point(c: char) -> String {
    format!("U+{:04X}", c as u32)
}

/// One forbidden character in a unit body, accepted by the plan.
#[derive(Clone, PartialEq, Eq, PartialOrd, Ord, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ForbiddenCharacter {
    /// The unit.
    pub canonical_address: String,
    /// Offset in characters (Unicode scalar values, 0-based) from the start of its body.
    pub offset: u64,
    /// The character, as `U+XXXX`.
    pub code_point: String,
}

/// An article numbered lower than the one before it.
#[derive(Clone, PartialEq, Eq, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct OutOfOrderNumber {
    /// The article.
    pub number: String,
    /// The article before it.
    pub after: String,
}

/// Consecutive legal paragraphs that are in no unit (other than the closing formula and
/// what follows it, which no unit holds by design).
#[derive(Clone, PartialEq, Eq, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TextInNoUnit {
    /// Where, e.g. `after the heading of Chương II, before its first article`.
    pub location: String,
    /// Paragraphs.
    pub paragraphs: u64,
    /// Characters.
    pub chars: u64,
    /// Its start.
    pub excerpt: String,
}

/// The findings of the cut, recorded in the plan so that whoever approves the plan
/// approves them knowingly. `digest` is [`PlanFindings::compute_digest`] of the plan's
/// digest: it names these findings *and* the rows they were found in.
#[derive(Clone, PartialEq, Eq, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PlanFindings {
    /// Article numbers between 1 and the highest found that no article has.
    pub missing_article_numbers: Vec<u32>,
    /// Article numbers found more than once (one entry per extra occurrence).
    pub duplicate_article_numbers: Vec<String>,
    /// Articles numbered lower than the article before them.
    pub out_of_order_article_numbers: Vec<OutOfOrderNumber>,
    /// Legal text in no unit, beyond the closing formula.
    pub text_in_no_unit: Vec<TextInNoUnit>,
    /// The cut was told to accept forbidden characters in unit bodies.
    pub forbidden_characters_accepted: bool,
    /// Every forbidden character in a unit body (empty unless accepted).
    pub forbidden_characters: Vec<ForbiddenCharacter>,
    /// See [`PlanFindings::compute_digest`].
    pub digest: Sha256Digest,
}

impl PlanFindings {
    /// True when there is nothing to look at.
    pub fn is_empty(&self) -> bool {
        self.missing_article_numbers.is_empty()
            && self.duplicate_article_numbers.is_empty()
            && self.out_of_order_article_numbers.is_empty()
            && self.text_in_no_unit.is_empty()
            && !self.forbidden_characters_accepted
            && self.forbidden_characters.is_empty()
    }

    /// The findings digest: SHA-256 over [`CanonicalHasher`]'s encoding with tag
    /// `cutter-findings-v1`, then the plan digest (32 raw bytes), then each list as its
    /// length (u64) followed by its items — missing numbers (u64 each), duplicate numbers,
    /// out-of-order pairs (`number`, `after`), text in no unit (`location`, `paragraphs`,
    /// `chars`, `excerpt`) — then the acceptance flag (one byte, 0 or 1) and the forbidden
    /// characters (`canonical_address`, `offset`, `code_point`). Strings are UTF-8.
    pub fn compute_digest(&self, plan_digest: &Sha256Digest) -> Sha256Digest {
        let mut h = CanonicalHasher::new("cutter-findings-v1");
        h.field(plan_digest.as_bytes());
        h.u64_field(self.missing_article_numbers.len() as u64);
        for n in &self.missing_article_numbers {
            h.u64_field(u64::from(*n));
        }
        h.u64_field(self.duplicate_article_numbers.len() as u64);
        for d in &self.duplicate_article_numbers {
            h.field(d.as_bytes());
        }
        h.u64_field(self.out_of_order_article_numbers.len() as u64);
        for o in &self.out_of_order_article_numbers {
            h.field(o.number.as_bytes()).field(o.after.as_bytes());
        }
        h.u64_field(self.text_in_no_unit.len() as u64);
        for t in &self.text_in_no_unit {
            h.field(t.location.as_bytes())
                .u64_field(t.paragraphs)
                .u64_field(t.chars)
                .field(t.excerpt.as_bytes());
        }
        h.field(&[u8::from(self.forbidden_characters_accepted)]);
        h.u64_field(self.forbidden_characters.len() as u64);
        for f in &self.forbidden_characters {
            h.field(f.canonical_address.as_bytes())
                .u64_field(f.offset)
                .field(f.code_point.as_bytes());
        }
        h.finish()
    }

    /// Sets `digest` for a plan whose digest is `plan_digest`.
    pub fn seal(&mut self, plan_digest: &Sha256Digest) {
        self.digest = self.compute_digest(plan_digest);
    }

    /// The contract's checks of the findings against the plan's digest and rows: the
    /// digest matches, and forbidden characters are in a body only when accepted and
    /// listed, and listed only when they are there.
    pub(crate) fn check<'a>(
        findings: Option<&PlanFindings>,
        plan_digest: impl FnOnce() -> Sha256Digest,
        rows: impl Iterator<Item = &'a CutPlanRow>,
        out: &mut Vec<Violation>,
    ) {
        let found = Self::check_rows(findings, rows, 1, out);
        if let Some(f) = findings {
            f.check_plan(found, plan_digest(), out);
        }
    }

    /// The per-row part of the check, for rows numbered from `first_row`: forbidden
    /// characters are refused unless accepted and listed. Returns how many listed
    /// characters were found, for [`PlanFindings::check_plan`].
    pub(crate) fn check_rows<'a>(
        findings: Option<&PlanFindings>,
        rows: impl Iterator<Item = &'a CutPlanRow>,
        first_row: usize,
        out: &mut Vec<Violation>,
    ) -> usize {
        let accepted: BTreeSet<(&str, u64, &str)> = findings
            .filter(|f| f.forbidden_characters_accepted)
            .map(|f| {
                f.forbidden_characters
                    .iter()
                    .map(|c| {
                        (
                            c.canonical_address.as_str(),
                            c.offset,
                            c.code_point.as_str(),
                        )
                    })
                    .collect()
            })
            .unwrap_or_default();
        let mut found = BTreeSet::new();
        for (i, r) in rows.enumerate() {
            let mut refused = Vec::new();
            // NUL has its own rule, which no acceptance lifts (PostgreSQL cannot store it).
            for (offset, c) in forbidden_characters(&r.body).filter(|(_, c)| *c != '\0') {
                let cp = code_point(c);
                if accepted.contains(&(r.canonical_address.as_str(), offset, cp.as_str())) {
                    found.insert((r.canonical_address.clone(), offset, cp));
                } else {
                    refused.push((offset, c));
                }
            }
            if refused.is_empty() {
                continue;
            }
            let named: Vec<String> = refused
                .iter()
                .take(NAMED_PER_ROW)
                .map(|(o, c)| {
                    format!(
                        "{} ({}) at character {o}",
                        code_point(*c),
                        describe_forbidden(*c)
                    )
                })
                .collect();
            let more = refused.len().saturating_sub(NAMED_PER_ROW);
            out.push(Violation {
                row: Some(i + first_row),
                canonical_address: (!r.canonical_address.is_empty())
                    .then(|| shorten(&r.canonical_address, 200)),
                field: Field::Body,
                message: format!(
                    "{} forbidden character(s): {}{}; fix the source (or its declared encoding) and cut again — only a cut with --accept-forbidden-characters, recorded in the plan's findings, accepts them",
                    refused.len(),
                    named.join(", "),
                    if more > 0 { format!(", and {more} more") } else { String::new() }
                ),
            });
        }
        found.len()
    }

    /// The whole-plan part of the check, once every row was read: the acceptance is
    /// recorded if characters are listed, every listed character was `found` in the rows,
    /// and the digest matches `plan_digest`.
    pub fn check_plan(&self, found: usize, plan_digest: Sha256Digest, out: &mut Vec<Violation>) {
        let f = self;
        let accepted = if f.forbidden_characters_accepted {
            f.forbidden_characters
                .iter()
                .map(|c| (&c.canonical_address, c.offset, &c.code_point))
                .collect::<BTreeSet<_>>()
                .len()
        } else {
            0
        };
        let plan = |message: String| Violation {
            row: None,
            canonical_address: None,
            field: Field::Plan,
            message,
        };
        if !f.forbidden_characters_accepted && !f.forbidden_characters.is_empty() {
            out.push(plan(
                "findings: forbidden characters are listed but their acceptance is not recorded"
                    .into(),
            ));
        }
        let listed_absent = accepted - found.min(accepted);
        if listed_absent > 0 {
            out.push(plan(format!(
                "findings: {listed_absent} listed forbidden character(s) are not in the bodies at the offsets given; the findings do not describe these rows"
            )));
        }
        let expected = f.compute_digest(&plan_digest);
        if f.digest != expected {
            out.push(plan(format!(
                "findings digest {} does not match the findings and rows (expected {expected}): the plan was changed after the cut; cut again",
                f.digest
            )));
        }
    }
}

impl fmt::Display for PlanFindings {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.is_empty() {
            writeln!(f, "findings: none")?;
        } else {
            writeln!(f, "findings:")?;
        }
        let list = |v: Vec<String>| {
            if v.len() > 20 {
                format!("{}, … ({} in all)", v[..20].join(", "), v.len())
            } else {
                v.join(", ")
            }
        };
        if !self.missing_article_numbers.is_empty() {
            writeln!(
                f,
                "  missing article numbers ({}): {}",
                self.missing_article_numbers.len(),
                list(
                    self.missing_article_numbers
                        .iter()
                        .map(u32::to_string)
                        .collect()
                )
            )?;
        }
        if !self.duplicate_article_numbers.is_empty() {
            writeln!(
                f,
                "  duplicate article numbers ({}): {}",
                self.duplicate_article_numbers.len(),
                list(self.duplicate_article_numbers.clone())
            )?;
        }
        if !self.out_of_order_article_numbers.is_empty() {
            writeln!(
                f,
                "  out-of-order article numbers ({}): {}",
                self.out_of_order_article_numbers.len(),
                list(
                    self.out_of_order_article_numbers
                        .iter()
                        .map(|o| format!("{} after {}", o.number, o.after))
                        .collect()
                )
            )?;
        }
        if !self.text_in_no_unit.is_empty() {
            writeln!(
                f,
                "  legal text in no unit beyond the closing formula ({} span(s)):",
                self.text_in_no_unit.len()
            )?;
            for t in self.text_in_no_unit.iter().take(20) {
                writeln!(
                    f,
                    "    {}: {} paragraph(s), {} chars: \"{}\"",
                    t.location, t.paragraphs, t.chars, t.excerpt
                )?;
            }
        }
        if self.forbidden_characters_accepted {
            writeln!(
                f,
                "  forbidden characters ACCEPTED (--accept-forbidden-characters): {} in unit bodies",
                self.forbidden_characters.len()
            )?;
            for c in self.forbidden_characters.iter().take(20) {
                writeln!(
                    f,
                    "    {} at character {} of {}",
                    c.code_point, c.offset, c.canonical_address
                )?;
            }
        }
        write!(f, "findings digest: sha256 {}", self.digest)
    }
}
