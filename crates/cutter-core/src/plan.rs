//! The cut plan — the rows one run creates, and the cutter's findings about them — and
//! its row contract (seed 003, F2). Validation reports every violation of every row at
//! once, before anything touches a database; a [`ValidPlan`] can only be had from a plan
//! that passed.

mod findings;

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;

use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::digest::{CanonicalHasher, Sha256Digest};
use crate::ids::{DocumentId, SourceVersionId};
use crate::Error;

pub use findings::{
    code_point, describe_forbidden, forbidden_characters, is_bidi_control, is_forbidden_in_body,
    ForbiddenCharacter, OutOfOrderNumber, PlanFindings, TextInNoUnit,
};

/// The `format` field every plan file carries.
pub const PLAN_FORMAT: &str = "cutter-plan/1";

/// Limits that keep a hostile plan from exhausting memory or the server.
pub mod limits {
    /// Longest canonical address, in bytes.
    pub const ADDRESS_BYTES: usize = 512;
    /// Longest title, in bytes.
    pub const TITLE_BYTES: usize = 4096;
    /// Longest body, in bytes.
    pub const BODY_BYTES: usize = 1 << 20;
    /// Longest actor, vocabulary code or owner reference, in bytes.
    pub const SHORT_BYTES: usize = 256;
    /// Most rows in one plan. The ledger records every unit of a plan in one manifest,
    /// a `jsonb` value, which PostgreSQL caps at 256 MiB: with [`ADDRESSES_BYTES`] this
    /// keeps a manifest under about 200 MiB (addresses escaped at most twice over, plus
    /// 72 bytes a row), so a plan that passes the contract can always be recorded.
    pub const ROWS: usize = 1_000_000;
    /// Most bytes of canonical addresses, all rows together (see [`ROWS`]).
    pub const ADDRESSES_BYTES: usize = 64 << 20;
}

/// One row of a cut plan: one information unit to create.
#[derive(Clone, PartialEq, Eq, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CutPlanRow {
    /// Hierarchical, unique address, e.g. `vn-constitution-2013/chuong-2/dieu-14/khoan-1`.
    pub canonical_address: String,
    /// Human title of the unit, e.g. `Điều 14, khoản 1`.
    pub title: String,
    /// The unit's legal text.
    pub body: String,
    /// Who is responsible for the unit's creation (person or system).
    pub actor: String,
    /// Code in `vocab.unit_kind`, e.g. `law_unit`.
    pub unit_kind: String,
    /// Explicit code in `vocab.section_type` (never null), e.g. `article`, `clause`.
    pub section_type: Option<String>,
    /// Code in `vocab.publication_type`, e.g. `law`.
    pub publication_type: String,
    /// Optional owner reference stored on the unit.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub owner_ref: Option<String>,
}

impl CutPlanRow {
    /// The digest of every field of the row, with the body given by its SHA-256: what
    /// lets a run re-read one row of a validated plan and know it is the row that was
    /// validated and approved (see `StreamedPlan` in `cutter-pg`).
    pub fn digest_with_body(&self, body_sha256: &Sha256Digest) -> Sha256Digest {
        let mut h = CanonicalHasher::new("cutter-plan-row/1");
        h.field(self.canonical_address.as_bytes())
            .field(self.title.as_bytes())
            .field(body_sha256.as_bytes())
            .field(self.actor.as_bytes())
            .field(self.unit_kind.as_bytes())
            .opt_field(self.section_type.as_deref().map(str::as_bytes))
            .field(self.publication_type.as_bytes())
            .opt_field(self.owner_ref.as_deref().map(str::as_bytes));
        h.finish()
    }
}

/// A cut plan as read from a file: header and rows, not yet validated.
#[derive(Clone, PartialEq, Eq, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CutPlan {
    /// Always [`PLAN_FORMAT`].
    pub format: String,
    /// The document the plan was cut from.
    pub document_id: DocumentId,
    /// The version of the document's source.
    pub source_version_id: SourceVersionId,
    /// What the cutter found (absent in plans cut before findings were recorded). Not
    /// part of the plan digest, which stays the digest of the rows that a run writes and
    /// that streamed readers recompute; the findings carry their own digest, bound to
    /// the plan digest (see [`PlanFindings::compute_digest`]).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub findings: Option<PlanFindings>,
    /// The units, in document order.
    pub rows: Vec<CutPlanRow>,
}

/// The vocabularies the target database resolves codes against (read by preflight).
#[derive(Clone, PartialEq, Eq, Debug, Default, Serialize, Deserialize)]
pub struct Vocabularies {
    /// Codes of `vocab.unit_kind`.
    pub unit_kind: BTreeSet<String>,
    /// Codes of `vocab.section_type`.
    pub section_type: BTreeSet<String>,
    /// Codes of `vocab.publication_type`.
    pub publication_type: BTreeSet<String>,
}

/// The field a violation concerns.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Debug, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Field {
    /// The plan as a whole (format, header, JSON syntax).
    Plan,
    /// `canonical_address`
    CanonicalAddress,
    /// `title`
    Title,
    /// `body`
    Body,
    /// `actor`
    Actor,
    /// `unit_kind`
    UnitKind,
    /// `section_type`
    SectionType,
    /// `publication_type`
    PublicationType,
    /// `owner_ref`
    OwnerRef,
    /// A field the contract does not know.
    Unknown,
}

impl Field {
    fn name(self) -> &'static str {
        match self {
            Field::Plan => "plan",
            Field::CanonicalAddress => "canonical_address",
            Field::Title => "title",
            Field::Body => "body",
            Field::Actor => "actor",
            Field::UnitKind => "unit_kind",
            Field::SectionType => "section_type",
            Field::PublicationType => "publication_type",
            Field::OwnerRef => "owner_ref",
            Field::Unknown => "unknown field",
        }
    }
}

/// One broken rule of the row contract.
#[derive(Clone, PartialEq, Eq, Debug, Serialize, Deserialize)]
pub struct Violation {
    /// 1-based row number; `None` for the plan header.
    pub row: Option<usize>,
    /// The row's canonical address, when it has a readable one.
    pub canonical_address: Option<String>,
    /// The field concerned.
    pub field: Field,
    /// What is wrong and what is expected.
    pub message: String,
}

impl fmt::Display for Violation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.row {
            Some(r) => write!(f, "row {r}")?,
            None => f.write_str("plan")?,
        }
        if let Some(a) = &self.canonical_address {
            write!(f, " ({})", shorten(a, 80))?;
        }
        write!(f, ", {}: {}", self.field.name(), self.message)
    }
}

/// Every violation found in a plan.
#[derive(Clone, PartialEq, Eq, Debug, Default, Serialize, Deserialize)]
pub struct ContractReport {
    /// In row order, then field order.
    pub violations: Vec<Violation>,
}

impl fmt::Display for ContractReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(
            f,
            "the cut plan breaks the row contract {} time(s):",
            self.violations.len()
        )?;
        for v in &self.violations {
            writeln!(f, "  {v}")?;
        }
        Ok(())
    }
}

pub(crate) fn shorten(s: &str, max: usize) -> String {
    if s.chars().count() <= max {
        s.to_string()
    } else {
        let head: String = s.chars().take(max).collect();
        format!("{head}… ({} bytes)", s.len())
    }
}

/// Characters that have no place in an address, id or title: C0/C1 controls
/// (tab and newline included) and the Unicode bidirectional controls.
fn is_forbidden_in_name(c: char) -> bool {
    c.is_control() || is_bidi_control(c)
}

/// A plan that passed the row contract against a given set of vocabularies.
/// The adapter's `cut_leg_a` only accepts this type.
#[derive(Clone, PartialEq, Eq, Debug)]
pub struct ValidPlan {
    plan: CutPlan,
    digest: Sha256Digest,
}

impl ValidPlan {
    /// The plan.
    pub fn plan(&self) -> &CutPlan {
        &self.plan
    }
    /// The rows.
    pub fn rows(&self) -> &[CutPlanRow] {
        &self.plan.rows
    }
    /// The plan digest (see [`CutPlan::digest`]).
    pub fn digest(&self) -> Sha256Digest {
        self.digest
    }
    /// The explicit section type of row `i` (validated to be present).
    pub fn section_type(&self, i: usize) -> &str {
        self.plan.rows[i]
            .section_type
            .as_deref()
            .unwrap_or_default()
    }
}

/// [`CutPlan::digest`] computed one row at a time, for plans streamed from a file: the
/// row count comes first in the encoding, so it must be known before the first row.
#[derive(Clone, Debug)]
pub struct PlanDigester(CanonicalHasher);

impl PlanDigester {
    /// Starts the digest of a plan of `rows` rows in the current format.
    pub fn new(document_id: &DocumentId, source_version_id: &SourceVersionId, rows: u64) -> Self {
        Self::with_format(PLAN_FORMAT, document_id, source_version_id, rows)
    }

    fn with_format(
        format: &str,
        document_id: &DocumentId,
        source_version_id: &SourceVersionId,
        rows: u64,
    ) -> Self {
        let mut h = CanonicalHasher::new("cutter-plan-v1");
        h.field(format.as_bytes())
            .field(document_id.as_str().as_bytes())
            .field(source_version_id.as_str().as_bytes())
            .u64_field(rows);
        Self(h)
    }

    /// Adds the next row.
    pub fn row(&mut self, r: &CutPlanRow) {
        self.0
            .field(r.canonical_address.as_bytes())
            .field(r.title.as_bytes())
            .field(r.body.as_bytes())
            .field(r.actor.as_bytes())
            .field(r.unit_kind.as_bytes())
            .opt_field(r.section_type.as_deref().map(str::as_bytes))
            .field(r.publication_type.as_bytes())
            .opt_field(r.owner_ref.as_deref().map(str::as_bytes));
    }

    /// The digest.
    pub fn finish(self) -> Sha256Digest {
        self.0.finish()
    }
}

/// The plan-wide limits ([`limits::ROWS`], [`limits::ADDRESSES_BYTES`]) for a plan of
/// `rows` rows whose canonical addresses total `address_bytes`: what would not fit in
/// the ledger, refused before anything is written.
pub fn size_violations(rows: u64, address_bytes: u64) -> Vec<Violation> {
    size_violations_within(
        rows,
        address_bytes,
        limits::ROWS as u64,
        limits::ADDRESSES_BYTES as u64,
    )
}

fn size_violations_within(
    rows: u64,
    address_bytes: u64,
    max_rows: u64,
    max_address_bytes: u64,
) -> Vec<Violation> {
    let plan = |message: String| Violation {
        row: None,
        canonical_address: None,
        field: Field::Plan,
        message,
    };
    let mut v = Vec::new();
    if rows > max_rows {
        v.push(plan(format!(
            "{rows} rows; at most {max_rows} are accepted in one plan (the ledger records a plan's units in one manifest): split the document into several plans"
        )));
    }
    if address_bytes > max_address_bytes {
        v.push(plan(format!(
            "the canonical addresses total {address_bytes} bytes; at most {max_address_bytes} fit in the ledger's manifest: shorten them or split the document into several plans"
        )));
    }
    v
}

/// One row as the ledger writers and verify see it: no body, only its digest.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub struct RowFacts<'a> {
    /// The unit's canonical address.
    pub canonical_address: &'a str,
    /// Its title.
    pub title: &'a str,
    /// SHA-256 of its body (UTF-8).
    pub body_sha256: Sha256Digest,
}

/// What everything after `cut_leg_a` needs of a validated plan: its identity, digest and
/// size, and per row the address, title and body digest — never the bodies, so that a
/// plan too large for memory ([`crate::read_plan`]) can be recorded and verified.
/// Implemented by [`ValidPlan`] and by plans streamed from a file.
pub trait PlanFacts {
    /// The document.
    fn document_id(&self) -> &DocumentId;
    /// Its source version.
    fn source_version_id(&self) -> &SourceVersionId;
    /// The plan digest (see [`CutPlan::digest`]).
    fn digest(&self) -> Sha256Digest;
    /// Number of rows.
    fn row_count(&self) -> u64;
    /// The rows' facts, in plan order.
    fn row_facts(&self) -> Box<dyn Iterator<Item = RowFacts<'_>> + '_>;
}

impl PlanFacts for ValidPlan {
    fn document_id(&self) -> &DocumentId {
        &self.plan.document_id
    }
    fn source_version_id(&self) -> &SourceVersionId {
        &self.plan.source_version_id
    }
    fn digest(&self) -> Sha256Digest {
        self.digest
    }
    fn row_count(&self) -> u64 {
        self.plan.rows.len() as u64
    }
    fn row_facts(&self) -> Box<dyn Iterator<Item = RowFacts<'_>> + '_> {
        Box::new(self.plan.rows.iter().map(|r| RowFacts {
            canonical_address: &r.canonical_address,
            title: &r.title,
            body_sha256: Sha256Digest::of(r.body.as_bytes()),
        }))
    }
}

impl CutPlan {
    /// A new plan in the current format.
    pub fn new(
        document_id: DocumentId,
        source_version_id: SourceVersionId,
        rows: Vec<CutPlanRow>,
    ) -> Self {
        Self {
            format: PLAN_FORMAT.into(),
            document_id,
            source_version_id,
            findings: None,
            rows,
        }
    }

    /// Records `findings`, sealed with this plan's digest (set the rows first).
    pub fn with_findings(mut self, mut findings: PlanFindings) -> Self {
        findings.seal(&self.digest());
        self.findings = Some(findings);
        self
    }

    /// Serializes the plan as pretty JSON (the plan file format).
    pub fn to_json(&self) -> String {
        serde_json::to_string_pretty(self).unwrap_or_default()
    }

    /// The plan digest: SHA-256 over the canonical encoding of
    /// [`crate::digest::CanonicalHasher`] with tag `cutter-plan-v1`, then the fields
    /// `format`, `document_id`, `source_version_id`, the row count (u64), and for each
    /// row in order `canonical_address`, `title`, `body`, `actor`, `unit_kind`,
    /// `section_type` (optional), `publication_type`, `owner_ref` (optional), all UTF-8.
    /// Independent of JSON formatting, key order and platform. The findings are not part
    /// of it (their own digest names it).
    pub fn digest(&self) -> Sha256Digest {
        let mut h = PlanDigester::with_format(
            &self.format,
            &self.document_id,
            &self.source_version_id,
            self.rows.len() as u64,
        );
        for r in &self.rows {
            h.row(r);
        }
        h.finish()
    }

    /// Checks the row contract of seed 003 (F2) against `vocab`, reporting every
    /// violation of every row at once. Forbidden characters ([`is_forbidden_in_body`])
    /// in a body are violations, each named with its offset, unless the findings record
    /// that they were accepted and list them; findings must match their digest.
    pub fn validate(self, vocab: &Vocabularies) -> Result<ValidPlan, ContractReport> {
        let mut report = ContractReport {
            violations: self.row_contract(vocab),
        };
        PlanFindings::check(
            self.findings.as_ref(),
            || self.digest(),
            self.rows.iter(),
            &mut report.violations,
        );
        report
            .violations
            .sort_by_key(|v| (v.row.unwrap_or(0), v.field));
        if report.violations.is_empty() {
            let digest = self.digest();
            Ok(ValidPlan { plan: self, digest })
        } else {
            Err(report)
        }
    }

    /// The row contract of a part of a plan read in chunks (a streamed plan's rows
    /// `first_row`…): every violation but the whole plan's (its digest, duplicates across
    /// chunks), with forbidden characters judged by the whole plan's `findings`. Returns
    /// the violations, numbered as plan rows, and how many listed characters these rows
    /// hold, for [`PlanFindings::check_plan`] once every chunk was read.
    pub fn validate_part(
        &self,
        vocab: &Vocabularies,
        findings: Option<&PlanFindings>,
        first_row: usize,
    ) -> (Vec<Violation>, usize) {
        let mut violations = self.row_contract(vocab);
        for v in &mut violations {
            if let Some(n) = v.row.as_mut() {
                *n += first_row - 1;
            }
        }
        let found =
            PlanFindings::check_rows(findings, self.rows.iter(), first_row, &mut violations);
        (violations, found)
    }

    /// Every row's contract violations, and the plan's own (format, emptiness, size),
    /// without the findings' checks.
    fn row_contract(&self, vocab: &Vocabularies) -> Vec<Violation> {
        let mut report = ContractReport::default();
        if self.format != PLAN_FORMAT {
            report.violations.push(Violation {
                row: None,
                canonical_address: None,
                field: Field::Plan,
                message: format!("format must be {PLAN_FORMAT:?}, found {:?}", self.format),
            });
        }
        if self.rows.is_empty() {
            report.violations.push(Violation {
                row: None,
                canonical_address: None,
                field: Field::Plan,
                message: "the plan has no rows; nothing to write".into(),
            });
        }
        report.violations.extend(size_violations(
            self.rows.len() as u64,
            self.rows
                .iter()
                .map(|r| r.canonical_address.len() as u64)
                .sum(),
        ));
        let mut first_seen: BTreeMap<&str, usize> = BTreeMap::new();
        for (i, r) in self.rows.iter().enumerate() {
            let n = i + 1;
            let mut push = |field, message: String| {
                report.violations.push(Violation {
                    row: Some(n),
                    canonical_address: (!r.canonical_address.is_empty())
                        .then(|| shorten(&r.canonical_address, 200)),
                    field,
                    message,
                })
            };
            check_name(
                &r.canonical_address,
                limits::ADDRESS_BYTES,
                Field::CanonicalAddress,
                &mut push,
            );
            if !r.canonical_address.is_empty() {
                if let Some(first) = first_seen.get(r.canonical_address.as_str()) {
                    push(
                        Field::CanonicalAddress,
                        format!("duplicate canonical address; first used by row {first}"),
                    );
                } else {
                    first_seen.insert(&r.canonical_address, n);
                }
            }
            check_name(&r.title, limits::TITLE_BYTES, Field::Title, &mut push);
            if r.body.len() > limits::BODY_BYTES {
                push(
                    Field::Body,
                    format!(
                        "{} bytes; at most {} are accepted",
                        r.body.len(),
                        limits::BODY_BYTES
                    ),
                );
            }
            if r.body.contains('\0') {
                push(
                    Field::Body,
                    "contains a NUL character, which PostgreSQL text cannot store".into(),
                );
            }
            check_name(&r.actor, limits::SHORT_BYTES, Field::Actor, &mut push);
            check_code(
                &r.unit_kind,
                &vocab.unit_kind,
                "vocab.unit_kind",
                Field::UnitKind,
                &mut push,
            );
            match &r.section_type {
                None => push(
                    Field::SectionType,
                    format!(
                        "must be an explicit vocab.section_type value, never null; choose one of: {}",
                        list(&vocab.section_type)
                    ),
                ),
                Some(s) => check_code(s, &vocab.section_type, "vocab.section_type", Field::SectionType, &mut push),
            }
            check_code(
                &r.publication_type,
                &vocab.publication_type,
                "vocab.publication_type",
                Field::PublicationType,
                &mut push,
            );
            if let Some(o) = &r.owner_ref {
                check_name(o, limits::SHORT_BYTES, Field::OwnerRef, &mut push);
            }
        }
        report.violations
    }
}

fn list(set: &BTreeSet<String>) -> String {
    if set.is_empty() {
        "(the vocabulary is empty)".into()
    } else {
        set.iter().cloned().collect::<Vec<_>>().join(", ")
    }
}

fn check_name(v: &str, max: usize, field: Field, push: &mut impl FnMut(Field, String)) {
    if v.trim().is_empty() {
        push(field, "must not be empty".into());
        return;
    }
    if v.len() > max {
        push(
            field,
            format!("{} bytes; at most {max} are accepted", v.len()),
        );
    }
    if let Some(c) = v.chars().find(|c| is_forbidden_in_name(*c)) {
        push(
            field,
            format!(
                "contains the control or bidirectional character U+{:04X}",
                c as u32
            ),
        );
    }
}

fn check_code(
    v: &str,
    set: &BTreeSet<String>,
    vocab: &str,
    field: Field,
    push: &mut impl FnMut(Field, String),
) {
    if v.is_empty() {
        push(
            field,
            format!("must not be empty; choose one of {vocab}: {}", list(set)),
        );
    } else if !set.contains(v) {
        push(
            field,
            format!(
                "{:?} does not resolve in {vocab}; choose one of: {}",
                shorten(v, 60),
                list(set)
            ),
        );
    }
}

pub(crate) fn describe(v: Option<&Value>) -> &'static str {
    match v {
        None => "nothing (missing)",
        Some(Value::Null) => "null",
        Some(Value::Bool(_)) => "a boolean",
        Some(Value::Number(_)) => "a number",
        Some(Value::String(_)) => "a string",
        Some(Value::Array(_)) => "an array",
        Some(Value::Object(_)) => "an object",
    }
}

pub(crate) fn parse_row(n: usize, item: &Value, report: &mut ContractReport) -> Option<CutPlanRow> {
    let Value::Object(obj) = item else {
        report.violations.push(Violation {
            row: Some(n),
            canonical_address: None,
            field: Field::Plan,
            message: format!("each row must be an object, found {}", describe(Some(item))),
        });
        return None;
    };
    let addr = match obj.get("canonical_address") {
        Some(Value::String(s)) if !s.is_empty() => Some(shorten(s, 200)),
        _ => None,
    };
    let before = report.violations.len();
    let mut push = |field, message: String| {
        report.violations.push(Violation {
            row: Some(n),
            canonical_address: addr.clone(),
            field,
            message,
        })
    };
    for k in obj.keys() {
        if !matches!(
            k.as_str(),
            "canonical_address"
                | "title"
                | "body"
                | "actor"
                | "unit_kind"
                | "section_type"
                | "publication_type"
                | "owner_ref"
        ) {
            push(Field::Unknown, format!("unknown key {:?}", shorten(k, 40)));
        }
    }
    let mut string = |key: &str, field: Field| -> Option<String> {
        match obj.get(key) {
            Some(Value::String(s)) => Some(s.clone()),
            other => {
                push(
                    field,
                    format!("must be a string, found {}", describe(other)),
                );
                None
            }
        }
    };
    let canonical_address = string("canonical_address", Field::CanonicalAddress);
    let title = string("title", Field::Title);
    let body = string("body", Field::Body);
    let actor = string("actor", Field::Actor);
    let unit_kind = string("unit_kind", Field::UnitKind);
    let publication_type = string("publication_type", Field::PublicationType);
    let mut push = |field, message: String| {
        report.violations.push(Violation {
            row: Some(n),
            canonical_address: addr.clone(),
            field,
            message,
        })
    };
    let section_type = match obj.get("section_type") {
        Some(Value::String(s)) => Some(Some(s.clone())),
        // Null parses, and validation rejects it naming the choices.
        Some(Value::Null) | None => Some(None),
        other => {
            push(
                Field::SectionType,
                format!("must be a string, found {}", describe(other)),
            );
            None
        }
    };
    let owner_ref = match obj.get("owner_ref") {
        Some(Value::String(s)) => Some(Some(s.clone())),
        Some(Value::Null) | None => Some(None),
        other => {
            push(
                Field::OwnerRef,
                format!("must be a string, found {}", describe(other)),
            );
            None
        }
    };
    if report.violations.len() != before {
        return None;
    }
    Some(CutPlanRow {
        canonical_address: canonical_address?,
        title: title?,
        body: body?,
        actor: actor?,
        unit_kind: unit_kind?,
        section_type: section_type?,
        publication_type: publication_type?,
        owner_ref: owner_ref?,
    })
}

impl From<ContractReport> for Error {
    fn from(r: ContractReport) -> Self {
        Error::Contract(r)
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    #[test]
    fn plan_wide_limits_name_what_would_not_fit_in_the_ledger() {
        assert!(size_violations_within(10, 100, 10, 100).is_empty());
        let v = size_violations_within(11, 101, 10, 100);
        assert_eq!(v.len(), 2, "{v:?}");
        assert!(v[0].message.starts_with("11 rows; at most 10 are accepted"));
        assert!(v[1]
            .message
            .starts_with("the canonical addresses total 101 bytes; at most 100"));
        assert!(v.iter().all(|x| x.field == Field::Plan && x.row.is_none()));
        // The real limits keep the worst manifest under PostgreSQL's jsonb cap.
        let worst = 2 * limits::ADDRESSES_BYTES as u64 + 72 * limits::ROWS as u64;
        assert!(worst < 256 << 20, "{worst}");
        assert!(size_violations(limits::ROWS as u64, limits::ADDRESSES_BYTES as u64).is_empty());
    }

    pub(crate) fn vocab() -> Vocabularies {
        Vocabularies {
            unit_kind: ["law_unit".to_string()].into(),
            section_type: ["article", "clause", "preamble"].map(String::from).into(),
            publication_type: ["law".to_string()].into(),
        }
    }

    fn row(addr: &str) -> CutPlanRow {
        CutPlanRow {
            canonical_address: addr.into(),
            title: format!("Title of {addr}"),
            body: "Body".into(),
            actor: "cutter".into(),
            unit_kind: "law_unit".into(),
            section_type: Some("article".into()),
            publication_type: "law".into(),
            owner_ref: None,
        }
    }

    fn plan(rows: Vec<CutPlanRow>) -> CutPlan {
        CutPlan::new(
            DocumentId::new("doc").unwrap(),
            SourceVersionId::new("v1").unwrap(),
            rows,
        )
    }

    #[test]
    fn a_good_plan_validates() {
        let p = plan(vec![row("doc/dieu-1"), row("doc/dieu-2")]);
        let v = p.clone().validate(&vocab()).unwrap();
        assert_eq!(v.rows().len(), 2);
        assert_eq!(v.digest(), p.digest());
    }

    #[test]
    fn every_violation_of_every_row_is_reported() {
        let mut bad1 = row("doc/a");
        bad1.title = " ".into();
        bad1.section_type = None;
        bad1.unit_kind = "nope".into();
        let mut bad2 = row("doc/a");
        bad2.actor = String::new();
        bad2.publication_type = "decree".into();
        let mut bad3 = row("");
        bad3.body = "x\0y".into();
        let err = plan(vec![bad1, bad2, bad3]).validate(&vocab()).unwrap_err();
        let got: Vec<(Option<usize>, Field)> =
            err.violations.iter().map(|v| (v.row, v.field)).collect();
        assert_eq!(
            got,
            vec![
                (Some(1), Field::Title),
                (Some(1), Field::UnitKind),
                (Some(1), Field::SectionType),
                (Some(2), Field::CanonicalAddress),
                (Some(2), Field::Actor),
                (Some(2), Field::PublicationType),
                (Some(3), Field::CanonicalAddress),
                (Some(3), Field::Body),
            ]
        );
        let text = err.to_string();
        assert!(text.contains("row 2 (doc/a), canonical_address: duplicate canonical address; first used by row 1"), "{text}");
        assert!(
            text.contains("never null; choose one of: article, clause, preamble"),
            "{text}"
        );
    }

    #[test]
    fn hostile_names_are_refused() {
        let mut r = row("doc/\u{202E}evil");
        r.title = "tab\there".into();
        let err = plan(vec![r]).validate(&vocab()).unwrap_err();
        assert_eq!(err.violations.len(), 2);
        assert!(err.violations[0].message.contains("U+202E"));
    }

    #[test]
    fn oversized_fields_are_refused_without_echoing_them() {
        let mut r = row("doc/x");
        r.title = "t".repeat(10 << 20);
        let err = plan(vec![r]).validate(&vocab()).unwrap_err();
        let text = err.to_string();
        assert!(text.contains("10485760 bytes; at most 4096"), "{text}");
        assert!(text.len() < 1000);
    }

    #[test]
    fn parse_reports_every_type_error() {
        let json =
            br#"{"format":"cutter-plan/1","document_id":"d","source_version_id":"v","extra":1,
          "rows":[{"canonical_address":"a","title":5,"body":null,"actor":"x","unit_kind":"law_unit",
                   "section_type":7,"publication_type":"law","colour":"red"}, 3]}"#;
        let err = CutPlan::parse_json(json).unwrap_err();
        let msgs: Vec<String> = err.violations.iter().map(|v| v.to_string()).collect();
        assert_eq!(msgs.len(), 6, "{msgs:#?}");
        assert!(msgs[0].contains("unknown key \"extra\""));
        assert!(msgs
            .iter()
            .any(|m| m == "row 1 (a), title: must be a string, found a number"));
        assert!(msgs
            .iter()
            .any(|m| m == "row 1 (a), body: must be a string, found null"));
        assert!(msgs
            .iter()
            .any(|m| m.contains("row 2, plan: each row must be an object")));
    }

    #[test]
    fn parse_reports_bad_json_with_position() {
        let err = CutPlan::parse_json(b"{\n  \"rows\": [,]\n}").unwrap_err();
        assert!(err.violations[0].message.contains("line 2"), "{err}");
    }

    #[test]
    fn json_round_trip() {
        let p = plan(vec![row("doc/dieu-1")]);
        let back = CutPlan::parse_json(p.to_json().as_bytes()).unwrap();
        assert_eq!(back, p);
    }

    fn findings() -> PlanFindings {
        PlanFindings {
            missing_article_numbers: vec![3],
            duplicate_article_numbers: vec!["2".into()],
            out_of_order_article_numbers: vec![OutOfOrderNumber {
                number: "1".into(),
                after: "2".into(),
            }],
            text_in_no_unit: vec![TextInNoUnit {
                location: "after Chương I".into(),
                paragraphs: 1,
                chars: 4,
                excerpt: "Lời.".into(),
            }],
            forbidden_characters_accepted: false,
            forbidden_characters: Vec::new(),
            digest: Sha256Digest::from_bytes([0; 32]),
        }
    }

    #[test]
    fn forbidden_characters_in_bodies_are_refused_with_unit_and_offset() {
        let mut a = row("doc/dieu-1");
        a.body = "Tout individu a droit \u{FFFD} la vie".into();
        let mut b = row("doc/dieu-2");
        b.body = "a\u{202E}b\u{85}c\u{1}\td\ne".into();
        let ok = row("doc/dieu-3");
        let err = plan(vec![a, b, ok]).validate(&vocab()).unwrap_err();
        let msgs: Vec<String> = err.violations.iter().map(ToString::to_string).collect();
        assert_eq!(msgs.len(), 2, "{msgs:#?}");
        assert!(msgs[0].starts_with("row 1 (doc/dieu-1), body: 1 forbidden character(s): U+FFFD (replacement character: bytes the decoder could not read as text) at character 22;"), "{}", msgs[0]);
        assert!(msgs[0].contains("--accept-forbidden-characters"));
        // Tab and line feed are text; U+0085 is whitespace but a C1 control.
        assert!(msgs[1].contains("3 forbidden character(s): U+202E (bidirectional control) at character 1, U+0085 (C1 control) at character 3, U+0001 (C0 control) at character 5"), "{}", msgs[1]);
    }

    #[test]
    fn accepted_forbidden_characters_must_be_listed_in_sealed_findings() {
        let mut a = row("doc/dieu-1");
        a.body = "x\u{FFFD}".into();
        let mut f = findings();
        f.forbidden_characters_accepted = true;
        f.forbidden_characters = vec![ForbiddenCharacter {
            canonical_address: "doc/dieu-1".into(),
            offset: 1,
            code_point: "U+FFFD".into(),
        }];
        let p = plan(vec![a.clone()]).with_findings(f.clone());
        let valid = p.clone().validate(&vocab()).expect("accepted and listed");
        // The plan digest is the digest of the rows alone.
        assert_eq!(valid.digest(), plan(vec![a.clone()]).digest());
        // Listed elsewhere than where it is: refused, and the listing is called out.
        let mut wrong = f.clone();
        wrong.forbidden_characters[0].offset = 0;
        let err = plan(vec![a.clone()])
            .with_findings(wrong)
            .validate(&vocab())
            .unwrap_err();
        let text = err.to_string();
        assert!(
            text.contains("not in the bodies at the offsets given"),
            "{text}"
        );
        assert!(
            text.contains("row 1 (doc/dieu-1), body: 1 forbidden character(s)"),
            "{text}"
        );
        // Listed but not accepted.
        let mut unaccepted = f.clone();
        unaccepted.forbidden_characters_accepted = false;
        let err = plan(vec![a.clone()])
            .with_findings(unaccepted)
            .validate(&vocab())
            .unwrap_err();
        assert!(
            err.to_string().contains("acceptance is not recorded"),
            "{err}"
        );
        // NUL is never accepted.
        let mut nul = a.clone();
        nul.body = "x\0".into();
        let mut fnul = f.clone();
        fnul.forbidden_characters[0].code_point = "U+0000".into();
        let err = plan(vec![nul])
            .with_findings(fnul)
            .validate(&vocab())
            .unwrap_err();
        assert!(err.to_string().contains("NUL character"), "{err}");
    }

    #[test]
    fn findings_are_bound_to_their_rows_by_their_digest() {
        let p = plan(vec![row("doc/dieu-1")]).with_findings(findings());
        p.clone()
            .validate(&vocab())
            .expect("sealed findings validate");
        let sealed = p.findings.clone().unwrap();
        assert_eq!(sealed.digest, sealed.compute_digest(&p.digest()));
        // Edited findings, or rows changed under them, no longer match.
        let mut edited = p.clone();
        edited
            .findings
            .as_mut()
            .unwrap()
            .missing_article_numbers
            .clear();
        let err = edited.validate(&vocab()).unwrap_err();
        assert!(
            err.to_string()
                .contains("does not match the findings and rows"),
            "{err}"
        );
        let mut moved = p.clone();
        moved.rows[0].body = "Other".into();
        assert!(moved.validate(&vocab()).is_err());
    }

    #[test]
    fn findings_round_trip_and_plans_without_them_still_parse() {
        let p = plan(vec![row("doc/dieu-1")]).with_findings(findings());
        let json = p.to_json();
        assert!(json.find("\"findings\"").unwrap() < json.find("\"rows\"").unwrap());
        let back = CutPlan::parse_json(json.as_bytes()).unwrap();
        assert_eq!(back, p);
        let old = plan(vec![row("doc/dieu-1")]);
        assert!(!old.to_json().contains("findings"));
        let back = CutPlan::parse_json(old.to_json().as_bytes()).unwrap();
        assert_eq!(back.findings, None);
        back.validate(&vocab())
            .expect("a plan without findings validates");
        let bad = json.replace("\"missing_article_numbers\"", "\"missing\"");
        let err = CutPlan::parse_json(bad.as_bytes()).unwrap_err();
        assert!(
            err.to_string()
                .contains("findings: unknown field `missing`"),
            "{err}"
        );
    }

    /// Fixed vectors, cross-checked with an independent Python implementation of the
    /// documented encoding.
    #[test]
    fn findings_digest_is_stable() {
        let plan_digest = plan(vec![row("doc/dieu-1")]).digest();
        assert_eq!(
            findings().compute_digest(&plan_digest).to_hex(),
            "36f414527ba3ae7876c1633fb637feed8f71980b85330aba32f6397fc0105a55"
        );
    }

    /// A fixed vector, cross-checked with an independent Python implementation of the
    /// documented encoding. If this changes, every recorded plan digest changes with it.
    #[test]
    fn plan_digest_is_stable() {
        let mut r = row("doc/dieu-1");
        r.body = "Điều 1. Nước Cộng hòa xã hội chủ nghĩa Việt Nam".into();
        let p = plan(vec![r, row("doc/dieu-2")]);
        assert_eq!(
            p.digest().to_hex(),
            "f917e98cbc589aa2d97e079883857e5ef534a687845cb9d4ca3149c494a10474"
        );
    }
}
