//! Plans too large to hold in memory: a re-iterable row source, validated against the
//! same row contract as [`cutter_core::CutPlan::validate`] (in chunks, duplicates tracked
//! across chunks) and digested with the same canonical encoding as
//! [`cutter_core::CutPlan::digest`], so the gate's authorization applies unchanged.
//! `cut_leg_a_streamed` re-reads the source while writing, re-computes the digest and
//! rolls back if the rows changed. A streamed plan keeps, per row, only what the ledger
//! writers need ([`PlanFacts`]: address, title, body digest) and the row's digest. With a
//! [`RowPicker`] (a plan file that can read one row back), an amendment's cut_leg_a reads
//! back only the rows it writes, each checked against the digest taken when the plan was
//! validated, instead of the whole plan.

use std::collections::HashMap;
use std::fmt;

use cutter_core::plan::limits;
use cutter_core::{
    ContractReport, CutPlan, CutPlanRow, DocumentId, Field, PlanFacts, RowFacts, Sha256Digest,
    SourceVersionId, Violation, Vocabularies,
};

/// Rows validated per chunk.
const CHUNK: usize = 4096;

/// The running plan digest of [`CutPlan::digest`]'s encoding.
pub(crate) use cutter_core::PlanDigester as PlanHasher;

/// A validated plan whose rows come from `source`, a function that yields the same rows
/// in the same order every time it is called (a generator, a re-opened file). Only
/// [`StreamedPlan::validate`] makes one.
pub struct StreamedPlan<F> {
    document_id: DocumentId,
    source_version_id: SourceVersionId,
    rows: u64,
    digest: Sha256Digest,
    /// Per row: address, title, body digest (what the ledger writers need; no bodies).
    facts: Vec<(String, String, Sha256Digest)>,
    /// Per row: [`CutPlanRow::digest_with_body`], taken in the pass that took the plan's
    /// digest.
    row_digests: Vec<Sha256Digest>,
    source: F,
    picker: Option<Box<dyn RowPicker>>,
}

/// Reads chosen rows of a plan back from where it was streamed from (e.g. a file whose
/// rows' offsets were noted while it was read).
pub trait RowPicker: Send + Sync {
    /// Rows `rows` (1-based plan row numbers, ascending), in that order. An error says
    /// what could not be read; the caller rolls back.
    fn pick(&self, rows: &[u64]) -> std::result::Result<Vec<CutPlanRow>, String>;
}

impl<F> fmt::Debug for StreamedPlan<F> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("StreamedPlan")
            .field("document_id", &self.document_id)
            .field("source_version_id", &self.source_version_id)
            .field("rows", &self.rows)
            .field("digest", &self.digest)
            .finish_non_exhaustive()
    }
}

impl<F, I> StreamedPlan<F>
where
    F: Fn() -> I,
    I: Iterator<Item = CutPlanRow>,
{
    /// Validates every row against the row contract and `vocab` (reporting every
    /// violation, with plan row numbers), with forbidden characters judged by the plan's
    /// `findings` (accepted only when listed there), then digests the plan and checks the
    /// findings' digest. Reads the source twice.
    pub fn validate(
        document_id: DocumentId,
        source_version_id: SourceVersionId,
        vocab: &Vocabularies,
        findings: Option<&cutter_core::PlanFindings>,
        source: F,
    ) -> Result<Self, ContractReport> {
        let mut report = ContractReport::default();
        // First row of each address, keyed by a 128-bit digest of it (memory: ~40
        // bytes per row instead of the address itself).
        let mut seen: HashMap<[u8; 16], u64> = HashMap::new();
        let mut rows: u64 = 0;
        let mut chunk = Vec::with_capacity(CHUNK);
        // Listed forbidden characters found in the rows, over every chunk.
        let mut found = 0usize;
        let mut flush = |chunk: &mut Vec<CutPlanRow>, first: u64, report: &mut ContractReport| {
            let plan = CutPlan::new(
                document_id.clone(),
                source_version_id.clone(),
                std::mem::take(chunk),
            );
            let (violations, listed) = plan.validate_part(
                vocab,
                findings,
                usize::try_from(first).unwrap_or(usize::MAX),
            );
            found += listed;
            // Duplicates are found across the whole plan below, with plan row numbers.
            report.violations.extend(violations.into_iter().filter(|v| {
                !(v.field == Field::CanonicalAddress
                    && v.message.starts_with("duplicate canonical address"))
            }));
        };
        let mut address_bytes: u64 = 0;
        for row in source() {
            rows += 1;
            address_bytes += row.canonical_address.len() as u64;
            if !row.canonical_address.is_empty() {
                let d = Sha256Digest::of(row.canonical_address.as_bytes());
                let mut key = [0u8; 16];
                key.copy_from_slice(&d.as_bytes()[..16]);
                match seen.get(&key) {
                    Some(first) => {
                        report.violations.push(Violation {
                            row: Some(usize::try_from(rows).unwrap_or(usize::MAX)),
                            canonical_address: Some(
                                row.canonical_address.chars().take(200).collect(),
                            ),
                            field: Field::CanonicalAddress,
                            message: format!(
                                "duplicate canonical address; first used by row {first}"
                            ),
                        });
                    }
                    None => {
                        seen.insert(key, rows);
                    }
                }
            }
            chunk.push(row);
            if chunk.len() == CHUNK {
                flush(&mut chunk, rows - CHUNK as u64 + 1, &mut report);
            }
            if rows > limits::ROWS as u64 {
                break;
            }
        }
        if !chunk.is_empty() {
            let first = rows - chunk.len() as u64 + 1;
            flush(&mut chunk, first, &mut report);
        }
        if rows == 0 {
            report.violations.push(Violation {
                row: None,
                canonical_address: None,
                field: Field::Plan,
                message: "the plan has no rows; nothing to write".into(),
            });
        }
        if rows > limits::ROWS as u64 {
            // Reading stopped there.
            report.violations.push(Violation {
                row: None,
                canonical_address: None,
                field: Field::Plan,
                message: format!(
                    "more than {} rows; at most that many are accepted in one plan: split the document into several plans",
                    limits::ROWS
                ),
            });
        } else {
            report
                .violations
                .extend(cutter_core::plan::size_violations(rows, address_bytes));
        }
        if !report.violations.is_empty() {
            report
                .violations
                .sort_by_key(|v| (v.row.unwrap_or(0), v.field));
            return Err(report);
        }
        let mut h = PlanHasher::new(&document_id, &source_version_id, rows);
        let mut facts = Vec::with_capacity(usize::try_from(rows).unwrap_or(0));
        let mut row_digests = Vec::with_capacity(facts.capacity());
        for row in source() {
            h.row(&row);
            let body = Sha256Digest::of(row.body.as_bytes());
            row_digests.push(row.digest_with_body(&body));
            facts.push((row.canonical_address, row.title, body));
        }
        if facts.len() as u64 != rows {
            // The source changed between the two readings.
            return Err(ContractReport {
                violations: vec![Violation {
                    row: None,
                    canonical_address: None,
                    field: Field::Plan,
                    message: format!(
                        "the plan's source gave {rows} rows, then {}: it changed while being read",
                        facts.len()
                    ),
                }],
            });
        }
        let digest = h.finish();
        if let Some(f) = findings {
            let mut violations = Vec::new();
            f.check_plan(found, digest, &mut violations);
            if !violations.is_empty() {
                return Err(ContractReport { violations });
            }
        }
        Ok(Self {
            document_id,
            source_version_id,
            rows,
            digest,
            facts,
            row_digests,
            source,
            picker: None,
        })
    }

    /// The rows, from the source.
    pub(crate) fn iter(&self) -> I {
        (self.source)()
    }
}

impl<F> StreamedPlan<F> {
    /// Lets cut_leg_a read back only the rows an amendment writes, through `picker`.
    pub fn with_picker(mut self, picker: impl RowPicker + 'static) -> Self {
        self.picker = Some(Box::new(picker));
        self
    }

    /// Whether rows can be read back ([`StreamedPlan::with_picker`]).
    pub(crate) fn can_pick(&self) -> bool {
        self.picker.is_some()
    }

    /// Rows `rows` (1-based, ascending) read back through the picker, each checked
    /// against the row digest taken when the plan was validated
    /// ([`crate::Error::PlanRowChanged`] otherwise). `None` without a picker.
    pub fn picked(&self, rows: &[u64]) -> Option<crate::Result<Vec<CutPlanRow>>> {
        let picker = self.picker.as_ref()?;
        Some(self.check_picked(rows, picker.pick(rows)))
    }

    fn check_picked(
        &self,
        rows: &[u64],
        picked: std::result::Result<Vec<CutPlanRow>, String>,
    ) -> crate::Result<Vec<CutPlanRow>> {
        let changed = |row: u64, why: String| crate::Error::PlanRowChanged {
            row,
            canonical_address: usize::try_from(row)
                .ok()
                .and_then(|r| self.facts.get(r.wrapping_sub(1)))
                .map(|f| f.0.clone())
                .unwrap_or_default(),
            why,
        };
        let picked = picked.map_err(|why| changed(rows.first().copied().unwrap_or(0), why))?;
        if picked.len() != rows.len() {
            return Err(changed(
                rows.first().copied().unwrap_or(0),
                format!("{} rows asked for, {} read back", rows.len(), picked.len()),
            ));
        }
        for (&n, row) in rows.iter().zip(&picked) {
            let want = usize::try_from(n)
                .ok()
                .and_then(|r| self.row_digests.get(r.wrapping_sub(1)));
            let got = row.digest_with_body(&Sha256Digest::of(row.body.as_bytes()));
            if want != Some(&got) {
                return Err(changed(
                    n,
                    "it differs from the row validated and approved".into(),
                ));
            }
        }
        Ok(picked)
    }

    /// The plan digest (equal to [`CutPlan::digest`] of the same rows).
    pub fn digest(&self) -> Sha256Digest {
        self.digest
    }
    /// Number of rows.
    pub fn rows(&self) -> u64 {
        self.rows
    }
    /// The document.
    pub fn document_id(&self) -> &DocumentId {
        &self.document_id
    }
    /// Its source version.
    pub fn source_version_id(&self) -> &SourceVersionId {
        &self.source_version_id
    }
}

impl<F> PlanFacts for StreamedPlan<F> {
    fn document_id(&self) -> &DocumentId {
        &self.document_id
    }
    fn source_version_id(&self) -> &SourceVersionId {
        &self.source_version_id
    }
    fn digest(&self) -> Sha256Digest {
        self.digest
    }
    fn row_count(&self) -> u64 {
        self.rows
    }
    fn row_facts(&self) -> Box<dyn Iterator<Item = RowFacts<'_>> + '_> {
        Box::new(self.facts.iter().map(|(a, t, b)| RowFacts {
            canonical_address: a,
            title: t,
            body_sha256: *b,
        }))
    }
}
