//! Amendments: what a plan changes in a document that is already enacted. The plan's
//! rows are compared, by canonical address, with the current text of the document's
//! units (read by the caller from the reference view `public.unit_current_text`), and
//! every unit falls in one class. The diff's digest is what approvers sign
//! (`diff_digest` of statement v2) and what `cut_leg_a` re-computes before it writes.
//!
//! Invariant: pure; the same plan over the same live units gives the same diff, entry
//! order and digest.

use std::collections::HashMap;
use std::fmt;

use serde::{Deserialize, Serialize};

use crate::digest::{CanonicalHasher, Sha256Digest};
use crate::ids::{DocumentId, SourceVersionId};
use crate::plan::{PlanFacts, RowFacts};

/// The current text of one enacted unit of the document, as the database holds it.
#[derive(Clone, PartialEq, Eq, Debug, Serialize, Deserialize)]
pub struct LiveUnit {
    /// `information_unit.id`.
    pub unit_id: i64,
    /// Its canonical address.
    pub canonical_address: String,
    /// Its current title.
    pub title: String,
    /// SHA-256 of its current body.
    pub body_sha256: Sha256Digest,
    /// The current version's number.
    pub version_no: i32,
    /// Whether the current version is a repeal (no longer in the text).
    pub repealed: bool,
}

/// What an amendment does to one unit.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Debug, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum DiffClass {
    /// Same address, title and body digest: not touched.
    Unchanged,
    /// Another body (and perhaps title): a new version.
    ChangedBody,
    /// Same body, another title: a new version.
    ChangedTitle,
    /// An address the document does not have: a new unit.
    New,
    /// A unit of the document no longer in the text: a repeal.
    Repealed,
}

impl DiffClass {
    /// Every class, in report order.
    pub const ALL: [DiffClass; 5] = [
        DiffClass::Unchanged,
        DiffClass::ChangedBody,
        DiffClass::ChangedTitle,
        DiffClass::New,
        DiffClass::Repealed,
    ];

    /// The name used in tables, JSON and the digest.
    pub fn name(self) -> &'static str {
        match self {
            DiffClass::Unchanged => "unchanged",
            DiffClass::ChangedBody => "changed_body",
            DiffClass::ChangedTitle => "changed_title",
            DiffClass::New => "new",
            DiffClass::Repealed => "repealed",
        }
    }

    /// Whether a run writes a row for this class.
    pub fn writes(self) -> bool {
        self != DiffClass::Unchanged
    }
}

impl fmt::Display for DiffClass {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// A title and body digest.
#[derive(Clone, PartialEq, Eq, Debug, Serialize, Deserialize)]
pub struct UnitText {
    /// The title.
    pub title: String,
    /// SHA-256 of the body.
    pub body_sha256: Sha256Digest,
}

/// One unit of the diff.
#[derive(Clone, PartialEq, Eq, Debug, Serialize, Deserialize)]
pub struct DiffEntry {
    /// Its class.
    pub class: DiffClass,
    /// The canonical address.
    pub canonical_address: String,
    /// The plan row (1-based); `None` for a repeal.
    pub plan_row: Option<u64>,
    /// The live unit; `None` for a new one.
    pub unit_id: Option<i64>,
    /// The live version's number; `None` for a new unit.
    pub old_version_no: Option<i32>,
    /// The current text; `None` for a new unit.
    pub old: Option<UnitText>,
    /// The plan's text; `None` for a repeal.
    pub new: Option<UnitText>,
}

impl DiffEntry {
    fn hash_into(&self, h: &mut CanonicalHasher) {
        let text = |t: &Option<UnitText>, h: &mut CanonicalHasher| match t {
            None => {
                h.opt_field(None);
            }
            Some(t) => {
                h.opt_field(Some(t.title.as_bytes()))
                    .field(t.body_sha256.as_bytes());
            }
        };
        h.field(self.class.name().as_bytes())
            .field(self.canonical_address.as_bytes())
            .opt_field(self.plan_row.map(u64::to_be_bytes).as_ref().map(|b| &b[..]))
            .opt_field(self.unit_id.map(i64::to_be_bytes).as_ref().map(|b| &b[..]))
            .opt_field(
                self.old_version_no
                    .map(i32::to_be_bytes)
                    .as_ref()
                    .map(|b| &b[..]),
            );
        text(&self.old, h);
        text(&self.new, h);
    }
}

/// Count and digest of one class.
#[derive(Clone, PartialEq, Eq, Debug, Serialize, Deserialize)]
pub struct ClassSummary {
    /// The class.
    pub class: DiffClass,
    /// How many units.
    pub count: u64,
    /// Digest over its entries, in diff order.
    pub digest: Sha256Digest,
}

/// A plan compared with the live document.
#[derive(Clone, PartialEq, Eq, Debug, Serialize, Deserialize)]
pub struct PlanDiff {
    /// The document.
    pub document_id: DocumentId,
    /// The plan's source version.
    pub source_version_id: SourceVersionId,
    /// The plan's digest.
    pub plan_digest: Sha256Digest,
    /// Plan rows in plan order, then repeals in the order the live units were given.
    pub entries: Vec<DiffEntry>,
    /// The document's live units (enacted, not repealed) compared with: what
    /// [`PlanDiff::scheme_warning`] weighs the repeals against. Not part of the digest.
    #[serde(default)]
    pub live_units: u64,
}

impl PlanDiff {
    /// Whether the document has live units at all: an amendment, not a first load.
    pub fn is_amendment(&self) -> bool {
        self.entries.iter().any(|e| e.class != DiffClass::New)
    }

    /// Per class (all five, in [`DiffClass::ALL`] order): count and digest.
    pub fn summary(&self) -> Vec<ClassSummary> {
        DiffClass::ALL
            .iter()
            .map(|&class| {
                let mut h = CanonicalHasher::new("cutter-plan-diff-class/1");
                h.field(class.name().as_bytes());
                let mut count = 0u64;
                for e in self.entries.iter().filter(|e| e.class == class) {
                    e.hash_into(&mut h);
                    count += 1;
                }
                h.u64_field(count);
                ClassSummary {
                    class,
                    count,
                    digest: h.finish(),
                }
            })
            .collect()
    }

    /// How many units of `class`.
    pub fn count(&self, class: DiffClass) -> u64 {
        self.entries.iter().filter(|e| e.class == class).count() as u64
    }

    /// The digest of the whole diff: document, source version, plan and every class's
    /// count and digest.
    pub fn digest(&self) -> Sha256Digest {
        let mut h = CanonicalHasher::new("cutter-plan-diff/1");
        h.field(self.document_id.as_str().as_bytes())
            .field(self.source_version_id.as_str().as_bytes())
            .field(self.plan_digest.as_bytes());
        for s in self.summary() {
            h.field(s.class.name().as_bytes())
                .u64_field(s.count)
                .field(s.digest.as_bytes());
        }
        h.finish()
    }

    /// What the approval statement must name as `diff_digest`: the diff's digest when
    /// it changes or repeals a live unit; nothing when no live unit changes (a first
    /// load, or rows that are only new or unchanged — the plan's digest names them).
    pub fn approval_digest(&self) -> Option<Sha256Digest> {
        self.entries
            .iter()
            .any(|e| {
                matches!(
                    e.class,
                    DiffClass::ChangedBody | DiffClass::ChangedTitle | DiffClass::Repealed
                )
            })
            .then(|| self.digest())
    }

    /// The entries a run writes a row for (every class but unchanged).
    pub fn written(&self) -> impl Iterator<Item = &DiffEntry> {
        self.entries.iter().filter(|e| e.class.writes())
    }

    /// A warning for the approvers when the plan's addresses look like another scheme
    /// than the live document's (e.g. `…/dieu-N` live, `…/chuong-X/dieu-N` cut): the
    /// plan repeals every live unit of the document or most of them, or names none of
    /// their addresses at all (then it adds its units beside them and repeals none).
    /// `None` when the document has no live unit or at least half of them stay.
    pub fn scheme_warning(&self) -> Option<String> {
        let live = self.live_units;
        let repealed = self.count(DiffClass::Repealed);
        let new = self.count(DiffClass::New);
        let doc = &self.document_id;
        let hint = "the addresses may follow another scheme than the live units' (compare \
                    `cutter plan diff` with the live addresses before approving)";
        if live == 0 {
            None
        } else if !self.is_amendment() {
            Some(format!(
                "document {doc}: none of its {live} live unit(s) has an address of this plan, so \
                 its {new} unit(s) are new and would stand beside them, none repealed: {hint}"
            ))
        } else if repealed == live {
            Some(format!(
                "document {doc}: every live unit ({live}) is repealed and {new} are new: {hint}"
            ))
        } else if repealed * 2 > live {
            Some(format!(
                "document {doc}: {repealed} of its {live} live units are repealed and {new} are \
                 new: {hint}"
            ))
        } else {
            None
        }
    }
}

/// One line of counts: `unchanged 357, changed_body 8, … (amendment, diff sha256 …)`.
pub fn counts_line(d: &PlanDiff) -> String {
    let counts: Vec<String> = d
        .summary()
        .iter()
        .map(|s| format!("{} {}", s.class, s.count))
        .collect();
    format!(
        "{} ({}, diff sha256 {})",
        counts.join(", "),
        if d.is_amendment() {
            "an amendment: its approvals name the diff"
        } else {
            "a first load: no live unit of the document"
        },
        d.digest()
    )
}

/// The human table of a diff: per class its count and digest, then one line per unit
/// the run would write (class, address, unit id and version it follows).
pub fn summary_table(d: &PlanDiff) -> String {
    let mut out = String::from("class          units  digest\n");
    for s in d.summary() {
        out.push_str(&format!(
            "{:<14} {:>5}  sha256 {}\n",
            s.class.name(),
            s.count,
            s.digest
        ));
    }
    out.push_str(&format!(
        "diff digest: sha256 {}{}\n",
        d.digest(),
        if d.is_amendment() {
            " (an amendment: SG_1 and SG_2 name it as diff_digest)"
        } else {
            " (a first load: every unit is new)"
        }
    ));
    for e in d.written() {
        let unit = match (e.unit_id, e.old_version_no) {
            (Some(id), Some(v)) => format!("unit {id}, after version {v}"),
            _ => "new unit".to_string(),
        };
        let row = e
            .plan_row
            .map_or("not in the text".to_string(), |r| format!("plan row {r}"));
        out.push_str(&format!(
            "{:<14} {}  ({unit}; {row})\n",
            e.class.name(),
            e.canonical_address
        ));
    }
    out.trim_end().to_string()
}

/// Classifies plan rows one at a time against the live units (so a plan streamed from
/// its file is compared without holding its bodies), then adds the repeals.
#[derive(Debug)]
pub struct DiffBuilder {
    live: Vec<LiveUnit>,
    by_address: HashMap<String, usize>,
    seen: Vec<bool>,
    entries: Vec<DiffEntry>,
}

impl DiffBuilder {
    /// Starts a comparison with the document's live units.
    pub fn new(live: Vec<LiveUnit>) -> Self {
        let by_address = live
            .iter()
            .enumerate()
            .map(|(i, u)| (u.canonical_address.clone(), i))
            .collect();
        let seen = vec![false; live.len()];
        DiffBuilder {
            live,
            by_address,
            seen,
            entries: Vec::new(),
        }
    }

    /// Classifies plan row `row` (1-based); returns its entry and, unless it is new,
    /// the live unit it amends.
    pub fn row(&mut self, row: u64, facts: &RowFacts<'_>) -> (&DiffEntry, Option<&LiveUnit>) {
        let new = UnitText {
            title: facts.title.to_string(),
            body_sha256: facts.body_sha256,
        };
        let live = self.by_address.get(facts.canonical_address).copied();
        let entry = match live {
            None => DiffEntry {
                class: DiffClass::New,
                canonical_address: facts.canonical_address.to_string(),
                plan_row: Some(row),
                unit_id: None,
                old_version_no: None,
                old: None,
                new: Some(new),
            },
            Some(i) => {
                self.seen[i] = true;
                let u = &self.live[i];
                let class = if u.repealed || u.body_sha256 != facts.body_sha256 {
                    DiffClass::ChangedBody
                } else if u.title != facts.title {
                    DiffClass::ChangedTitle
                } else {
                    DiffClass::Unchanged
                };
                DiffEntry {
                    class,
                    canonical_address: facts.canonical_address.to_string(),
                    plan_row: Some(row),
                    unit_id: Some(u.unit_id),
                    old_version_no: Some(u.version_no),
                    old: Some(UnitText {
                        title: u.title.clone(),
                        body_sha256: u.body_sha256,
                    }),
                    new: Some(new),
                }
            }
        };
        self.entries.push(entry);
        let last = self.entries.last().expect("just pushed");
        (last, live.map(|i| &self.live[i]))
    }

    /// The live units no plan row named and not already repealed: the repeals, in the
    /// order the live units were given. None when no row named any live unit: a plan
    /// that shares no address with its document's live units is a first load under
    /// other addresses, never the repeal of the whole document.
    pub fn unseen(&self) -> impl Iterator<Item = &LiveUnit> {
        let amends = self.seen.iter().any(|s| *s);
        self.live
            .iter()
            .zip(&self.seen)
            .filter(move |(u, seen)| amends && !**seen && !u.repealed)
            .map(|(u, _)| u)
    }

    /// The diff: the rows classified so far, then the repeals.
    pub fn finish(
        mut self,
        document_id: DocumentId,
        source_version_id: SourceVersionId,
        plan_digest: Sha256Digest,
    ) -> PlanDiff {
        let repeals: Vec<DiffEntry> = self
            .unseen()
            .map(|u| DiffEntry {
                class: DiffClass::Repealed,
                canonical_address: u.canonical_address.clone(),
                plan_row: None,
                unit_id: Some(u.unit_id),
                old_version_no: Some(u.version_no),
                old: Some(UnitText {
                    title: u.title.clone(),
                    body_sha256: u.body_sha256,
                }),
                new: None,
            })
            .collect();
        self.entries.extend(repeals);
        PlanDiff {
            document_id,
            source_version_id,
            plan_digest,
            entries: self.entries,
            live_units: self.live.iter().filter(|u| !u.repealed).count() as u64,
        }
    }
}

/// Compares a whole plan with the document's live units. `live` must be the units of
/// the plan's document only, in a stable order (the reader gives them by unit id).
pub fn diff_plan(plan: &dyn PlanFacts, live: Vec<LiveUnit>) -> PlanDiff {
    let mut b = DiffBuilder::new(live);
    for (i, facts) in plan.row_facts().enumerate() {
        b.row(i as u64 + 1, &facts);
    }
    b.finish(
        plan.document_id().clone(),
        plan.source_version_id().clone(),
        plan.digest(),
    )
}

/// Why a plan cannot be written over what is live.
#[derive(Clone, PartialEq, Eq, Debug, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Conflict {
    /// The plan's address is held by a live unit of another document.
    OtherDocument {
        /// The address.
        canonical_address: String,
        /// The unit holding it.
        unit_id: i64,
        /// Its document.
        document_id: String,
    },
    /// A unit of the document has a draft (unit or version) from a run that was neither
    /// enacted nor compensated.
    Pending {
        /// The address.
        canonical_address: String,
        /// The unit.
        unit_id: i64,
        /// The change set of the draft, if recorded.
        change_set: Option<String>,
    },
}

impl fmt::Display for Conflict {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Conflict::OtherDocument {
                canonical_address,
                unit_id,
                document_id,
            } => write!(
                f,
                "{canonical_address}: held by unit id {unit_id} of document {document_id}"
            ),
            Conflict::Pending {
                canonical_address,
                unit_id,
                change_set,
            } => write!(
                f,
                "{canonical_address}: unit id {unit_id} has a draft of change set {}; enact or compensate that run first",
                change_set.as_deref().unwrap_or("(none)")
            ),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::plan::{CutPlan, CutPlanRow};

    fn row(addr: &str, title: &str, body: &str) -> CutPlanRow {
        CutPlanRow {
            canonical_address: addr.into(),
            title: title.into(),
            body: body.into(),
            actor: "t".into(),
            unit_kind: "law_unit".into(),
            section_type: Some("article".into()),
            publication_type: "law".into(),
            owner_ref: None,
        }
    }

    fn live(id: i64, addr: &str, title: &str, body: &str) -> LiveUnit {
        LiveUnit {
            unit_id: id,
            canonical_address: addr.into(),
            title: title.into(),
            body_sha256: Sha256Digest::of(body.as_bytes()),
            version_no: 1,
            repealed: false,
        }
    }

    fn plan(rows: Vec<CutPlanRow>) -> crate::ValidPlan {
        CutPlan::new(
            DocumentId::new("doc").unwrap(),
            SourceVersionId::new("v2").unwrap(),
            rows,
        )
        .validate(&crate::plan::tests::vocab())
        .unwrap()
    }

    fn classes(d: &PlanDiff) -> Vec<(&str, DiffClass)> {
        d.entries
            .iter()
            .map(|e| (e.canonical_address.as_str(), e.class))
            .collect()
    }

    #[test]
    fn every_class_is_found() {
        let p = plan(vec![
            row("doc/a1", "A1", "same"),
            row("doc/a2", "A2", "reworded"),
            row("doc/a3", "A3 renamed", "same"),
            row("doc/a9", "A9", "new"),
        ]);
        let d = diff_plan(
            &p,
            vec![
                live(1, "doc/a1", "A1", "same"),
                live(2, "doc/a2", "A2", "old"),
                live(3, "doc/a3", "A3", "same"),
                live(4, "doc/a4", "A4", "gone"),
            ],
        );
        assert_eq!(
            classes(&d),
            [
                ("doc/a1", DiffClass::Unchanged),
                ("doc/a2", DiffClass::ChangedBody),
                ("doc/a3", DiffClass::ChangedTitle),
                ("doc/a9", DiffClass::New),
                ("doc/a4", DiffClass::Repealed),
            ]
        );
        assert!(d.is_amendment());
        assert_eq!(d.written().count(), 4);
        let counts: Vec<u64> = d.summary().iter().map(|s| s.count).collect();
        assert_eq!(counts, [1, 1, 1, 1, 1]);
        assert_eq!(d.entries[4].unit_id, Some(4));
        assert_eq!(d.entries[4].plan_row, None);
        assert_eq!(d.approval_digest(), Some(d.digest()));
    }

    #[test]
    fn a_first_load_is_all_new_and_names_no_digest() {
        let p = plan(vec![row("doc/a1", "A1", "x"), row("doc/a2", "A2", "y")]);
        let d = diff_plan(&p, vec![]);
        assert!(!d.is_amendment());
        assert_eq!(d.count(DiffClass::New), 2);
        assert_eq!(d.approval_digest(), None);
        // Live units under other addresses only: still a first load, nothing repealed.
        let d = diff_plan(&p, vec![live(9, "doc/old-1", "Old", "z")]);
        assert_eq!(d.count(DiffClass::Repealed), 0);
        assert_eq!(d.approval_digest(), None);
        // The same plan again over its enacted self: nothing changes, nothing to name.
        let d = diff_plan(
            &p,
            vec![live(1, "doc/a1", "A1", "x"), live(2, "doc/a2", "A2", "y")],
        );
        assert!(d.is_amendment());
        assert_eq!(d.count(DiffClass::Unchanged), 2);
        assert_eq!(d.approval_digest(), None);
    }

    #[test]
    fn another_address_scheme_is_named_for_the_approvers() {
        // The seeds' baseline: articles at doc/dieu-N; the cut: doc/chuong-I/dieu-N, and a
        // preamble both schemes share.
        let live_units: Vec<LiveUnit> =
            std::iter::once(live(1, "doc/loi-noi-dau", "Lời nói đầu", "p"))
                .chain((1..=4).map(|n| live(n + 1, &format!("doc/dieu-{n}"), "Điều", "x")))
                .collect();
        let cut: Vec<CutPlanRow> = std::iter::once(row("doc/loi-noi-dau", "Lời nói đầu", "p"))
            .chain((1..=6).map(|n| row(&format!("doc/chuong-i/dieu-{n}"), "Điều", "x")))
            .collect();
        let d = diff_plan(&plan(cut.clone()), live_units.clone());
        assert_eq!((d.live_units, d.count(DiffClass::Repealed)), (5, 4));
        let w = d.scheme_warning().expect("a warning");
        assert!(
            w.contains("document doc: 4 of its 5 live units are repealed and 6 are new"),
            "{w}"
        );
        assert!(w.contains("another scheme"), "{w}");
        // Without the shared preamble: nothing is repealed, and the warning says the
        // plan's units would stand beside the live ones.
        let d = diff_plan(&plan(cut[1..].to_vec()), live_units[1..].to_vec());
        let w = d.scheme_warning().expect("a warning");
        assert!(
            w.contains("none of its 4 live unit(s) has an address of this plan"),
            "{w}"
        );
        // An ordinary amendment (one article of five repealed) and a first load: none.
        let mut kept: Vec<CutPlanRow> = (1..=4)
            .map(|n| row(&format!("doc/dieu-{n}"), "Điều", "x"))
            .collect();
        kept.insert(0, row("doc/loi-noi-dau", "Lời nói đầu", "p"));
        kept.pop();
        assert_eq!(diff_plan(&plan(kept), live_units).scheme_warning(), None);
        assert_eq!(diff_plan(&plan(cut), vec![]).scheme_warning(), None);
        // Every live unit repealed (a repealed unit still counts as not live).
        let mut gone = live(9, "doc/x", "X", "");
        gone.repealed = true;
        let d = PlanDiff {
            live_units: 2,
            ..diff_plan(&plan(vec![row("doc/x", "X", "back")]), vec![gone])
        };
        let d = PlanDiff {
            entries: d
                .entries
                .iter()
                .cloned()
                .chain((0..2).map(|i| DiffEntry {
                    class: DiffClass::Repealed,
                    canonical_address: format!("doc/y{i}"),
                    plan_row: None,
                    unit_id: Some(i),
                    old_version_no: Some(1),
                    old: None,
                    new: None,
                }))
                .collect(),
            ..d
        };
        let w = d.scheme_warning().expect("a warning");
        assert!(
            w.contains("every live unit (2) is repealed and 0 are new"),
            "{w}"
        );
    }

    #[test]
    fn a_repealed_unit_is_not_repealed_twice_and_comes_back_as_a_new_version() {
        let mut gone = live(4, "doc/a4", "A4", "");
        gone.repealed = true;
        gone.version_no = 2;
        let p = plan(vec![row("doc/a1", "A1", "x")]);
        let d = diff_plan(&p, vec![live(1, "doc/a1", "A1", "x"), gone.clone()]);
        assert_eq!(classes(&d), [("doc/a1", DiffClass::Unchanged)]);
        let p = plan(vec![row("doc/a1", "A1", "x"), row("doc/a4", "A4", "")]);
        let d = diff_plan(&p, vec![live(1, "doc/a1", "A1", "x"), gone]);
        assert_eq!(d.entries[1].class, DiffClass::ChangedBody);
    }

    #[test]
    fn the_digest_changes_with_any_class_member_and_with_the_live_state() {
        let p = plan(vec![row("doc/a1", "A1", "new text")]);
        let base = diff_plan(&p, vec![live(1, "doc/a1", "A1", "old")]);
        // Same plan, same live rows: same digest.
        assert_eq!(
            base.digest(),
            diff_plan(&p, vec![live(1, "doc/a1", "A1", "old")]).digest()
        );
        // Another live body, another unit id, another version: another digest.
        for other in [
            live(1, "doc/a1", "A1", "older"),
            live(7, "doc/a1", "A1", "old"),
            LiveUnit {
                version_no: 2,
                ..live(1, "doc/a1", "A1", "old")
            },
        ] {
            assert_ne!(base.digest(), diff_plan(&p, vec![other]).digest());
        }
        // A repeal added: another digest, and the changed class's own digest is kept.
        let more = diff_plan(
            &p,
            vec![live(1, "doc/a1", "A1", "old"), live(2, "doc/a2", "A2", "z")],
        );
        assert_ne!(base.digest(), more.digest());
        assert_eq!(base.summary()[1], more.summary()[1]);
        assert_ne!(base.summary()[4], more.summary()[4]);
    }
}

/// One side of a word-level comparison, for the run report's side-by-side view.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum WordChange<'a> {
    /// In both texts.
    Same(&'a str),
    /// Only in the old text.
    Removed(&'a str),
    /// Only in the new text.
    Added(&'a str),
}

/// The words of `old` and `new` (split on whitespace) aligned by a longest common
/// subsequence: the old text's words with removals marked, then the new text's with
/// additions marked. Quadratic in words: for one article at a time.
pub fn word_diff<'a>(old: &'a str, new: &'a str) -> (Vec<WordChange<'a>>, Vec<WordChange<'a>>) {
    let a: Vec<&str> = old.split_whitespace().collect();
    let b: Vec<&str> = new.split_whitespace().collect();
    // lcs[i][j]: the LCS length of a[i..] and b[j..].
    let mut lcs = vec![vec![0u32; b.len() + 1]; a.len() + 1];
    for i in (0..a.len()).rev() {
        for j in (0..b.len()).rev() {
            lcs[i][j] = if a[i] == b[j] {
                lcs[i + 1][j + 1] + 1
            } else {
                lcs[i + 1][j].max(lcs[i][j + 1])
            };
        }
    }
    let (mut left, mut right) = (Vec::new(), Vec::new());
    let (mut i, mut j) = (0, 0);
    while i < a.len() || j < b.len() {
        if i < a.len() && j < b.len() && a[i] == b[j] {
            left.push(WordChange::Same(a[i]));
            right.push(WordChange::Same(b[j]));
            i += 1;
            j += 1;
        } else if j < b.len() && (i == a.len() || lcs[i][j + 1] >= lcs[i + 1][j]) {
            right.push(WordChange::Added(b[j]));
            j += 1;
        } else {
            left.push(WordChange::Removed(a[i]));
            i += 1;
        }
    }
    (left, right)
}

/// The side-by-side Markdown of one changed unit: a two-column table, old | new, with
/// removed words struck through and added words in bold (`|` and markup characters in
/// the text escaped).
pub fn side_by_side_markdown(address: &str, old: &str, new: &str) -> String {
    fn esc(w: &str) -> String {
        let mut s = String::with_capacity(w.len());
        for c in w.chars() {
            if matches!(
                c,
                '|' | '*' | '~' | '_' | '`' | '\\' | '<' | '>' | '[' | ']'
            ) {
                s.push('\\');
            }
            s.push(c);
        }
        s
    }
    let render = |side: &[WordChange<'_>]| -> String {
        side.iter()
            .map(|w| match w {
                WordChange::Same(w) => esc(w),
                WordChange::Removed(w) => format!("~~{}~~", esc(w)),
                WordChange::Added(w) => format!("**{}**", esc(w)),
            })
            .collect::<Vec<_>>()
            .join(" ")
    };
    let (l, r) = word_diff(old, new);
    format!(
        "#### {}\n\n| before | after |\n|---|---|\n| {} | {} |\n",
        esc(address),
        render(&l),
        render(&r)
    )
}

#[cfg(test)]
mod word_tests {
    use super::*;

    #[test]
    fn words_are_aligned_and_marked() {
        let (l, r) = word_diff(
            "Mọi người có quyền sống",
            "Mọi công dân có quyền sống và làm việc",
        );
        assert_eq!(
            l,
            [
                WordChange::Same("Mọi"),
                WordChange::Removed("người"),
                WordChange::Same("có"),
                WordChange::Same("quyền"),
                WordChange::Same("sống"),
            ]
        );
        assert_eq!(
            r.iter()
                .filter(|w| matches!(w, WordChange::Added(_)))
                .count(),
            5
        );
        let md = side_by_side_markdown("doc/dieu-1", "a | b", "a | c");
        assert!(md.contains("| a \\| ~~b~~ | a \\| **c** |"), "{md}");
    }

    #[test]
    fn identical_and_empty_texts() {
        let (l, r) = word_diff("x y", "x y");
        assert!(l.iter().chain(&r).all(|w| matches!(w, WordChange::Same(_))));
        let (l, r) = word_diff("", "new words");
        assert!(l.is_empty());
        assert_eq!(r, [WordChange::Added("new"), WordChange::Added("words")]);
    }
}
