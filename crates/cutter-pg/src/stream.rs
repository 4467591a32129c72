//! Plans too large to hold in memory: a re-iterable row source, validated against the
//! same row contract as [`cutter_core::CutPlan::validate`] (in chunks, duplicates tracked
//! across chunks) and digested with the same canonical encoding as
//! [`cutter_core::CutPlan::digest`], so the gate's authorization applies unchanged.
//! `cut_leg_a_streamed` re-reads the source while writing, re-computes the digest and
//! rolls back if the rows changed.

use std::collections::HashMap;
use std::fmt;

use cutter_core::plan::limits;
use cutter_core::{
    CanonicalHasher, ContractReport, CutPlan, CutPlanRow, DocumentId, Field, Sha256Digest,
    SourceVersionId, Violation, Vocabularies, PLAN_FORMAT,
};

/// Rows validated per chunk.
const CHUNK: usize = 4096;

/// The running plan digest of [`CutPlan::digest`]'s encoding.
#[derive(Clone, Debug)]
pub(crate) struct PlanHasher(CanonicalHasher);

impl PlanHasher {
    pub(crate) fn new(
        document_id: &DocumentId,
        source_version_id: &SourceVersionId,
        rows: u64,
    ) -> Self {
        let mut h = CanonicalHasher::new("cutter-plan-v1");
        h.field(PLAN_FORMAT.as_bytes())
            .field(document_id.as_str().as_bytes())
            .field(source_version_id.as_str().as_bytes())
            .u64_field(rows);
        Self(h)
    }
    pub(crate) fn row(&mut self, r: &CutPlanRow) {
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
    pub(crate) fn finish(self) -> Sha256Digest {
        self.0.finish()
    }
}

/// A validated plan whose rows come from `source`, a function that yields the same rows
/// in the same order every time it is called (a generator, a re-opened file). Only
/// [`StreamedPlan::validate`] makes one.
pub struct StreamedPlan<F> {
    document_id: DocumentId,
    source_version_id: SourceVersionId,
    rows: u64,
    digest: Sha256Digest,
    source: F,
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
    /// violation, with plan row numbers), then digests the plan. Reads the source twice.
    pub fn validate(
        document_id: DocumentId,
        source_version_id: SourceVersionId,
        vocab: &Vocabularies,
        source: F,
    ) -> Result<Self, ContractReport> {
        let mut report = ContractReport::default();
        // First row of each address, keyed by a 128-bit digest of it (memory: ~40
        // bytes per row instead of the address itself).
        let mut seen: HashMap<[u8; 16], u64> = HashMap::new();
        let mut rows: u64 = 0;
        let mut chunk = Vec::with_capacity(CHUNK);
        let flush = |chunk: &mut Vec<CutPlanRow>, first: u64, report: &mut ContractReport| {
            let plan = CutPlan::new(
                document_id.clone(),
                source_version_id.clone(),
                std::mem::take(chunk),
            );
            if let Err(r) = plan.validate(vocab) {
                for mut v in r.violations {
                    // Duplicates are found across the whole plan below, with plan row
                    // numbers; the chunk's own report would number them per chunk.
                    if v.field == Field::CanonicalAddress
                        && v.message.starts_with("duplicate canonical address")
                    {
                        continue;
                    }
                    if let Some(n) = v.row.as_mut() {
                        *n += usize::try_from(first).unwrap_or(usize::MAX) - 1;
                    }
                    report.violations.push(v);
                }
            }
        };
        for row in source() {
            rows += 1;
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
            report.violations.push(Violation {
                row: None,
                canonical_address: None,
                field: Field::Plan,
                message: format!(
                    "more than {} rows; at most that many are accepted in one plan",
                    limits::ROWS
                ),
            });
        }
        if !report.violations.is_empty() {
            report
                .violations
                .sort_by_key(|v| (v.row.unwrap_or(0), v.field));
            return Err(report);
        }
        let mut h = PlanHasher::new(&document_id, &source_version_id, rows);
        for row in source() {
            h.row(&row);
        }
        Ok(Self {
            document_id,
            source_version_id,
            rows,
            digest: h.finish(),
            source,
        })
    }

    /// The rows, from the source.
    pub(crate) fn iter(&self) -> I {
        (self.source)()
    }
}

impl<F> StreamedPlan<F> {
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
