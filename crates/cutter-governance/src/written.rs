//! What a run writes, as the ledger records and write_verify checks it. A first load
//! writes every plan row (one unit each); an amendment writes only what its diff against
//! the live document changes: new units, new versions of changed units, and repeals.
//! The diff is re-computed from `public.unit_current_text` inside the phase's own
//! transaction ([`Written::read`]: until lifecycle_enact the current text is what
//! cut_leg_a compared with, so it is the same diff), or taken from cut_leg_a in the same
//! process ([`Written::cut`], checked against the plan and the approvals).

use std::borrow::Cow;

use cutter_core::{
    diff_plan, AuthorizationScope, DiffClass, DocumentId, LiveAuthorization, PlanDiff, PlanFacts,
    RowFacts, Sha256Digest, SourceVersionId,
};
use postgres::GenericClient;

use crate::error::{Error, Result};

/// A plan's rows narrowed to what the run writes. Implements [`PlanFacts`] with the
/// plan's identity and digest; a repeal's row has an empty title and the digest of an
/// empty body, as its version stores them.
pub struct Written<'a> {
    plan: &'a dyn PlanFacts,
    diff: Option<Cow<'a, PlanDiff>>,
    rows: Vec<(String, String, Sha256Digest)>,
}

impl std::fmt::Debug for Written<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Written")
            .field("amendment", &self.diff.is_some())
            .field("rows", &self.row_count())
            .finish()
    }
}

impl<'a> Written<'a> {
    /// Reads the live document through `c` and narrows `plan` to what it writes.
    pub fn read(c: &mut impl GenericClient, plan: &'a dyn PlanFacts) -> Result<Written<'a>> {
        let live = cutter_pg::amend::live_units(c, plan.document_id().as_str()).map_err(|e| {
            Error::Invalid(format!(
                "reading the current text of document {}: {e}",
                plan.document_id()
            ))
        })?;
        if live.is_empty() {
            return Ok(Written {
                plan,
                diff: None,
                rows: Vec::new(),
            });
        }
        Ok(Self::narrowed(plan, Cow::Owned(diff_plan(plan, live))))
    }

    /// The same, from the diff cut_leg_a computed in its own transaction and returned
    /// in this process (`None`: a first load, the document had no live unit). The diff
    /// must be of `plan`, and for a live run the one its approvals name; until
    /// lifecycle_enact it is the diff [`Written::read`] would compute, without reading
    /// the whole document again.
    pub fn cut(
        auth: &LiveAuthorization,
        plan: &'a dyn PlanFacts,
        diff: Option<&'a PlanDiff>,
    ) -> Result<Written<'a>> {
        let Some(diff) = diff else {
            return Ok(Written {
                plan,
                diff: None,
                rows: Vec::new(),
            });
        };
        if diff.plan_digest != plan.digest() || &diff.document_id != plan.document_id() {
            return Err(Error::Invalid(format!(
                "the diff given is of plan sha256:{} of document {}, not of plan sha256:{} of {}",
                diff.plan_digest,
                diff.document_id,
                plan.digest(),
                plan.document_id()
            )));
        }
        if auth.scope() == AuthorizationScope::Live && diff.approval_digest() != auth.diff_digest()
        {
            return Err(Error::Invalid(format!(
                "the diff given ({}) is not the one run {}'s approvals name ({})",
                diff.approval_digest()
                    .map_or_else(|| "none".to_string(), |d| format!("sha256:{d}")),
                auth.run_id(),
                auth.diff_digest()
                    .map_or_else(|| "none".to_string(), |d| format!("sha256:{d}"))
            )));
        }
        Ok(Self::narrowed(plan, Cow::Borrowed(diff)))
    }

    fn narrowed(plan: &'a dyn PlanFacts, diff: Cow<'a, PlanDiff>) -> Written<'a> {
        let empty = Sha256Digest::of(b"");
        let rows = diff
            .written()
            .map(|e| match &e.new {
                Some(t) => (e.canonical_address.clone(), t.title.clone(), t.body_sha256),
                None => (e.canonical_address.clone(), String::new(), empty),
            })
            .collect();
        Written {
            plan,
            diff: Some(diff),
            rows,
        }
    }

    /// The diff, for an amendment.
    pub fn diff(&self) -> Option<&PlanDiff> {
        self.diff.as_deref()
    }

    /// The manifest's record of the diff: its digest and each class's count and digest.
    pub fn manifest_diff(&self) -> Option<serde_json::Value> {
        let d = self.diff.as_deref()?;
        let classes: Vec<serde_json::Value> = d
            .summary()
            .iter()
            .map(|s| {
                serde_json::json!({
                    "class": s.class.name(),
                    "count": s.count,
                    "digest": s.digest.to_hex(),
                })
            })
            .collect();
        Some(serde_json::json!({
            "diff_digest": d.digest().to_hex(),
            "classes": classes,
            "repealed": d.count(DiffClass::Repealed),
        }))
    }
}

impl PlanFacts for Written<'_> {
    fn document_id(&self) -> &DocumentId {
        self.plan.document_id()
    }
    fn source_version_id(&self) -> &SourceVersionId {
        self.plan.source_version_id()
    }
    fn digest(&self) -> Sha256Digest {
        self.plan.digest()
    }
    fn row_count(&self) -> u64 {
        match self.diff {
            None => self.plan.row_count(),
            Some(_) => self.rows.len() as u64,
        }
    }
    fn row_facts(&self) -> Box<dyn Iterator<Item = RowFacts<'_>> + '_> {
        match self.diff {
            None => self.plan.row_facts(),
            Some(_) => Box::new(self.rows.iter().map(|(a, t, b)| RowFacts {
                canonical_address: a,
                title: t,
                body_sha256: *b,
            })),
        }
    }
}
