//! Incremental backups as data: which surface tables can change how
//! ([`SURFACE_CLASSES`], the one place that says so), order-independent set digests that
//! a chain of manifests can add and subtract, and the decision between a full and an
//! incremental backup. See `docs/design/incremental-backup.md`.
//!
//! Invariant: pure; the facts about the database and the predecessor come in as values.

use std::fmt;

use serde::{Deserialize, Serialize};

use crate::ids::TableName;

/// How rows of a surface table can change, as far as the production database enforces it.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum SurfaceClass {
    /// Rows whose `lifecycle_status` is `enacted` never change (V1's triggers); others
    /// can. Watermarked (`cutter_xid`).
    ImmutableOnceEnacted,
    /// Rows are only added (append-only trigger). Watermarked.
    AppendOnly,
    /// Anything can change: carried whole by every increment.
    Mutable,
}

impl SurfaceClass {
    /// Whether the table has the backup watermark column (V7).
    pub fn watermarked(self) -> bool {
        !matches!(self, SurfaceClass::Mutable)
    }
}

/// The class of each surface table. A surface table not listed here is [`Mutable`]
/// (always correct, only slower): a new table is one line.
///
/// [`Mutable`]: SurfaceClass::Mutable
pub const SURFACE_CLASSES: [(&str, &str, SurfaceClass); 10] = [
    (
        "public",
        "information_unit",
        SurfaceClass::ImmutableOnceEnacted,
    ),
    ("public", "unit_version", SurfaceClass::ImmutableOnceEnacted),
    ("public", "iu_lifecycle_log", SurfaceClass::AppendOnly),
    (
        "cutter_governance",
        "cut_change_set",
        SurfaceClass::AppendOnly,
    ),
    (
        "cutter_governance",
        "cut_change_set_affected_row",
        SurfaceClass::AppendOnly,
    ),
    (
        "cutter_governance",
        "manifest_envelope",
        SurfaceClass::AppendOnly,
    ),
    (
        "cutter_governance",
        "review_decision",
        SurfaceClass::AppendOnly,
    ),
    (
        "cutter_governance",
        "verify_result",
        SurfaceClass::AppendOnly,
    ),
    (
        "cutter_governance",
        "dot_pair_signature",
        SurfaceClass::AppendOnly,
    ),
    ("cutter_governance", "approver", SurfaceClass::Mutable),
];

/// The class of `table` ([`SurfaceClass::Mutable`] if not listed).
pub fn class_of(table: &TableName) -> SurfaceClass {
    SURFACE_CLASSES
        .iter()
        .find(|(s, n, _)| table.schema() == *s && table.name() == *n)
        .map_or(SurfaceClass::Mutable, |(_, _, c)| *c)
}

/// An order-independent digest of a set of rows: their count and the lane-wise sum,
/// modulo 2^64, of the four big-endian 64-bit lanes of each row's SHA-256. Sets can be
/// added and (for a subset) subtracted, so a chain's state is derived from its
/// manifests. Not collision-resistant against chosen rows: integrity of the process,
/// not authenticity (the signed manifests and artifact hashes are that).
#[derive(Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(try_from = "SetDigestText", into = "SetDigestText")]
pub struct SetDigest {
    /// Rows in the set.
    pub rows: u64,
    lanes: [u64; 4],
}

impl SetDigest {
    /// The empty set.
    pub const EMPTY: SetDigest = SetDigest {
        rows: 0,
        lanes: [0; 4],
    };

    /// Adds one row, given the SHA-256 of its canonical text.
    pub fn add_row(&mut self, row_sha256: &[u8; 32]) {
        self.rows += 1;
        for (i, lane) in self.lanes.iter_mut().enumerate() {
            let mut b = [0u8; 8];
            b.copy_from_slice(&row_sha256[i * 8..i * 8 + 8]);
            *lane = lane.wrapping_add(u64::from_be_bytes(b));
        }
    }

    /// The union of two disjoint sets.
    #[must_use]
    pub fn plus(self, other: SetDigest) -> SetDigest {
        let mut lanes = self.lanes;
        for (l, o) in lanes.iter_mut().zip(other.lanes) {
            *l = l.wrapping_add(o);
        }
        SetDigest {
            rows: self.rows + other.rows,
            lanes,
        }
    }

    /// This set without `part` (which must be a subset); `None` if `part` has more rows.
    pub fn minus(self, part: SetDigest) -> Option<SetDigest> {
        let rows = self.rows.checked_sub(part.rows)?;
        let mut lanes = self.lanes;
        for (l, o) in lanes.iter_mut().zip(part.lanes) {
            *l = l.wrapping_sub(o);
        }
        Some(SetDigest { rows, lanes })
    }

    /// The lanes as 64 hex digits.
    pub fn lanes_hex(&self) -> String {
        self.lanes.iter().map(|l| format!("{l:016x}")).collect()
    }
}

impl fmt::Debug for SetDigest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "SetDigest({} rows, {})", self.rows, self.lanes_hex())
    }
}

impl fmt::Display for SetDigest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} rows, set digest {}", self.rows, self.lanes_hex())
    }
}

/// Serialized form: `{"rows": n, "sum": "<64 hex>"}`.
#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct SetDigestText {
    rows: u64,
    sum: String,
}

impl From<SetDigest> for SetDigestText {
    fn from(d: SetDigest) -> Self {
        SetDigestText {
            rows: d.rows,
            sum: d.lanes_hex(),
        }
    }
}

impl TryFrom<SetDigestText> for SetDigest {
    type Error = String;
    fn try_from(t: SetDigestText) -> Result<Self, String> {
        if t.sum.len() != 64 || !t.sum.bytes().all(|b| b.is_ascii_hexdigit()) {
            return Err(format!("set digest sum {:?} is not 64 hex digits", t.sum));
        }
        let mut lanes = [0u64; 4];
        for (i, lane) in lanes.iter_mut().enumerate() {
            *lane = u64::from_str_radix(&t.sum[i * 16..i * 16 + 16], 16)
                .map_err(|e| format!("set digest sum: {e}"))?;
        }
        Ok(SetDigest {
            rows: t.rows,
            lanes,
        })
    }
}

/// What the backup knows when it decides between full and incremental.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ChainFacts {
    /// `--full` was asked for.
    pub full_requested: bool,
    /// Links in the predecessor's chain (its `seq` + 1), or why there is no usable
    /// predecessor.
    pub predecessor: Result<u32, String>,
    /// A full backup every this many links (`[backup] full_every`, ≥ 1).
    pub full_every: u32,
    /// Guarantees that cannot be shown for the interval since the predecessor (missing or
    /// disabled triggers, recorded DDL on the surface); empty when all hold.
    pub broken_guarantees: Vec<String>,
}

/// Full or incremental, and why.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case", tag = "kind", content = "reason")]
pub enum ChainDecision {
    /// A full backup; the reason.
    Full(String),
    /// An increment on the predecessor.
    Incremental,
}

/// Decides between a full and an incremental backup (see the design's fall-back list).
pub fn decide(f: &ChainFacts) -> ChainDecision {
    if f.full_requested {
        return ChainDecision::Full("a full backup was asked for (--full)".into());
    }
    let links = match &f.predecessor {
        Err(why) => return ChainDecision::Full(why.clone()),
        Ok(n) => *n,
    };
    if links >= f.full_every.max(1) {
        return ChainDecision::Full(format!(
            "the chain has {links} link(s); a full backup is taken every {} ([backup] full_every)",
            f.full_every.max(1)
        ));
    }
    if !f.broken_guarantees.is_empty() {
        return ChainDecision::Full(format!(
            "a guarantee cannot be shown since the previous backup: {}",
            f.broken_guarantees.join("; ")
        ));
    }
    ChainDecision::Incremental
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ids::mutation_surface;

    #[test]
    fn every_surface_table_is_classified_and_the_fallback_is_mutable() {
        for t in mutation_surface() {
            assert!(
                SURFACE_CLASSES
                    .iter()
                    .any(|(s, n, _)| t.schema() == *s && t.name() == *n),
                "{t} is not in SURFACE_CLASSES"
            );
        }
        let other = TableName::new("public", "something_new").unwrap();
        assert_eq!(class_of(&other), SurfaceClass::Mutable);
        assert_eq!(
            class_of(&TableName::new("public", "unit_version").unwrap()),
            SurfaceClass::ImmutableOnceEnacted
        );
    }

    #[test]
    fn set_digests_add_subtract_and_ignore_order() {
        let rows: Vec<[u8; 32]> = (0u8..5)
            .map(|i| *crate::Sha256Digest::of(&[i]).as_bytes())
            .collect();
        let mut all = SetDigest::EMPTY;
        for r in &rows {
            all.add_row(r);
        }
        let mut rev = SetDigest::EMPTY;
        for r in rows.iter().rev() {
            rev.add_row(r);
        }
        assert_eq!(all, rev);
        let mut part = SetDigest::EMPTY;
        part.add_row(&rows[1]);
        part.add_row(&rows[3]);
        let rest = all.minus(part).unwrap();
        assert_eq!(rest.rows, 3);
        assert_eq!(rest.plus(part), all);
        // A different row instead of one of the set changes the digest.
        let mut other = rest;
        other.add_row(crate::Sha256Digest::of(b"x").as_bytes());
        assert_ne!(other.plus(SetDigest::EMPTY), rest.plus(part));
        assert!(part.minus(all).is_none());
        let json = serde_json::to_string(&all).unwrap();
        assert_eq!(serde_json::from_str::<SetDigest>(&json).unwrap(), all);
        assert!(serde_json::from_str::<SetDigest>(r#"{"rows":1,"sum":"zz"}"#).is_err());
    }

    #[test]
    fn the_decision_falls_back_to_full_for_each_reason() {
        let ok = ChainFacts {
            full_requested: false,
            predecessor: Ok(3),
            full_every: 20,
            broken_guarantees: vec![],
        };
        assert_eq!(decide(&ok), ChainDecision::Incremental);
        let full = |f: ChainFacts| matches!(decide(&f), ChainDecision::Full(_));
        assert!(full(ChainFacts {
            full_requested: true,
            ..ok.clone()
        }));
        assert!(full(ChainFacts {
            predecessor: Err("no previous backup".into()),
            ..ok.clone()
        }));
        assert!(full(ChainFacts {
            predecessor: Ok(20),
            ..ok.clone()
        }));
        assert!(full(ChainFacts {
            broken_guarantees: vec!["trigger disabled".into()],
            ..ok.clone()
        }));
    }
}
