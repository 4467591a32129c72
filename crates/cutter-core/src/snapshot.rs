//! Snapshots of the mutation surface and their diff: per-table row counts and content
//! digests, unit counts by lifecycle status, trigger states, functions present, and the
//! server's system identifier. The net-zero check of seed 004 is "the diff is empty".

use std::collections::BTreeMap;
use std::fmt;

use serde::{Deserialize, Serialize};

use crate::digest::Sha256Digest;
use crate::ids::{SystemIdentifier, TableName};

/// Rows and content digest of one table.
#[derive(Clone, Copy, PartialEq, Eq, Debug, Serialize, Deserialize)]
pub struct TableStat {
    /// `count(*)`.
    pub rows: u64,
    /// SHA-256 over the table's rows in primary-key order (see `cutter-pg`).
    pub digest: Sha256Digest,
}

/// What a snapshot records of the target. All maps are ordered, so equal targets give
/// equal snapshots and equal JSON.
#[derive(Clone, PartialEq, Eq, Debug, Serialize, Deserialize)]
pub struct Snapshot {
    /// The server the snapshot was read from.
    pub system_identifier: SystemIdentifier,
    /// The surface tables of the mutation surface.
    pub tables: BTreeMap<TableName, TableStat>,
    /// `public.information_unit` rows by `lifecycle_status`.
    pub unit_statuses: BTreeMap<String, u64>,
    /// Immutability triggers by name → `pg_trigger.tgenabled` (`O` = enabled); absent
    /// triggers are not in the map.
    pub triggers: BTreeMap<String, String>,
    /// Functions the phases call → whether present.
    pub functions: BTreeMap<String, bool>,
}

/// One difference between two snapshots.
#[derive(Clone, PartialEq, Eq, Debug, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Difference {
    /// The snapshots come from different servers.
    SystemIdentifier {
        /// Before.
        before: SystemIdentifier,
        /// After.
        after: SystemIdentifier,
    },
    /// A table's row count changed.
    Rows {
        /// The table.
        table: TableName,
        /// Before.
        before: Option<u64>,
        /// After.
        after: Option<u64>,
    },
    /// A table's content changed while its row count did not.
    Content {
        /// The table.
        table: TableName,
    },
    /// The number of units in a lifecycle status changed.
    Status {
        /// `draft`, `enacted`, `withdrawn`.
        status: String,
        /// Before.
        before: u64,
        /// After.
        after: u64,
    },
    /// A trigger appeared, disappeared or changed its enabled state.
    Trigger {
        /// Trigger name.
        name: String,
        /// Before (`None`: absent).
        before: Option<String>,
        /// After (`None`: absent).
        after: Option<String>,
    },
    /// A function appeared or disappeared.
    Function {
        /// Function name.
        name: String,
        /// Before.
        before: bool,
        /// After.
        after: bool,
    },
}

impl fmt::Display for Difference {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let opt = |v: &Option<u64>| v.map_or("absent".to_string(), |n| n.to_string());
        let opts = |v: &Option<String>| v.clone().unwrap_or_else(|| "absent".into());
        match self {
            Difference::SystemIdentifier { before, after } => {
                write!(
                    f,
                    "system identifier {before} → {after} (a different server)"
                )
            }
            Difference::Rows {
                table,
                before,
                after,
            } => {
                write!(f, "{table}: rows {} → {}", opt(before), opt(after))
            }
            Difference::Content { table } => {
                write!(f, "{table}: same row count, content changed")
            }
            Difference::Status {
                status,
                before,
                after,
            } => {
                write!(f, "units {status}: {before} → {after}")
            }
            Difference::Trigger {
                name,
                before,
                after,
            } => {
                write!(f, "trigger {name}: {} → {}", opts(before), opts(after))
            }
            Difference::Function {
                name,
                before,
                after,
            } => {
                let p = |b: &bool| if *b { "present" } else { "absent" };
                write!(f, "function {name}: {} → {}", p(before), p(after))
            }
        }
    }
}

fn union_keys<'a, K: Ord + Clone + 'a, A, B>(
    a: &'a BTreeMap<K, A>,
    b: &'a BTreeMap<K, B>,
) -> impl Iterator<Item = K> + 'a {
    let mut keys: Vec<K> = a.keys().chain(b.keys()).cloned().collect();
    keys.sort();
    keys.dedup();
    keys.into_iter()
}

impl Snapshot {
    /// Every difference from `self` (before) to `after`, in a stable order.
    pub fn diff(&self, after: &Snapshot) -> Vec<Difference> {
        let mut out = Vec::new();
        if self.system_identifier != after.system_identifier {
            out.push(Difference::SystemIdentifier {
                before: self.system_identifier,
                after: after.system_identifier,
            });
        }
        for t in union_keys(&self.tables, &after.tables) {
            let (b, a) = (self.tables.get(&t), after.tables.get(&t));
            if b.map(|s| s.rows) != a.map(|s| s.rows) {
                out.push(Difference::Rows {
                    table: t,
                    before: b.map(|s| s.rows),
                    after: a.map(|s| s.rows),
                });
            } else if b.map(|s| s.digest) != a.map(|s| s.digest) {
                out.push(Difference::Content { table: t });
            }
        }
        for s in union_keys(&self.unit_statuses, &after.unit_statuses) {
            let b = self.unit_statuses.get(&s).copied().unwrap_or(0);
            let a = after.unit_statuses.get(&s).copied().unwrap_or(0);
            if a != b {
                out.push(Difference::Status {
                    status: s,
                    before: b,
                    after: a,
                });
            }
        }
        for n in union_keys(&self.triggers, &after.triggers) {
            let (b, a) = (self.triggers.get(&n), after.triggers.get(&n));
            if b != a {
                out.push(Difference::Trigger {
                    name: n,
                    before: b.cloned(),
                    after: a.cloned(),
                });
            }
        }
        for n in union_keys(&self.functions, &after.functions) {
            let b = self.functions.get(&n).copied().unwrap_or(false);
            let a = after.functions.get(&n).copied().unwrap_or(false);
            if a != b {
                out.push(Difference::Function {
                    name: n,
                    before: b,
                    after: a,
                });
            }
        }
        out
    }

    /// The net-zero check of seed 004: nothing about the target changed.
    pub fn net_zero(&self, after: &Snapshot) -> Result<(), NetZeroViolation> {
        let differences = self.diff(after);
        if differences.is_empty() {
            Ok(())
        } else {
            Err(NetZeroViolation { differences })
        }
    }

    /// Rows of `table`, 0 if the snapshot does not have it.
    pub fn rows(&self, table: &str) -> u64 {
        self.tables
            .iter()
            .find(|(t, _)| t.to_string() == table)
            .map_or(0, |(_, s)| s.rows)
    }

    /// Whether both immutability triggers are present and enabled (`O`).
    pub fn immutability_triggers_enabled(&self) -> bool {
        ["trg_iu_enacted_immut", "trg_uv_enacted_immut"]
            .iter()
            .all(|t| self.triggers.get(*t).map(String::as_str) == Some("O"))
    }
}

/// The target changed where it must not have.
#[derive(Clone, PartialEq, Eq, Debug, Serialize, Deserialize)]
pub struct NetZeroViolation {
    /// What changed.
    pub differences: Vec<Difference>,
}

impl fmt::Display for NetZeroViolation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "not net-zero: ")?;
        for (i, d) in self.differences.iter().enumerate() {
            if i > 0 {
                f.write_str("; ")?;
            }
            write!(f, "{d}")?;
        }
        Ok(())
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::ids::mutation_surface;

    pub(crate) fn baseline() -> Snapshot {
        let counts = [158u64, 165, 60, 0, 0, 0, 0, 0, 0];
        Snapshot {
            system_identifier: SystemIdentifier::new(7_000_000_000_000_000_001),
            tables: mutation_surface()
                .into_iter()
                .zip(counts)
                .map(|(t, rows)| {
                    let digest = Sha256Digest::of(format!("{t}{rows}").as_bytes());
                    (t, TableStat { rows, digest })
                })
                .collect(),
            unit_statuses: [("draft".to_string(), 98), ("enacted".to_string(), 60)].into(),
            triggers: [
                ("trg_iu_enacted_immut".to_string(), "O".to_string()),
                ("trg_uv_enacted_immut".to_string(), "O".to_string()),
            ]
            .into(),
            functions: [
                ("fn_iu_create".to_string(), true),
                ("fn_iu_enact".to_string(), true),
            ]
            .into(),
        }
    }

    #[test]
    fn identical_snapshots_are_net_zero() {
        assert!(baseline().net_zero(&baseline()).is_ok());
    }

    #[test]
    fn every_kind_of_change_is_reported() {
        let before = baseline();
        let mut after = baseline();
        after.system_identifier = SystemIdentifier::new(1);
        let iu = TableName::new("public", "information_unit").unwrap();
        after.tables.get_mut(&iu).unwrap().rows = 159;
        let uv = TableName::new("public", "unit_version").unwrap();
        after.tables.get_mut(&uv).unwrap().digest = Sha256Digest::of(b"changed");
        after.unit_statuses.insert("withdrawn".into(), 1);
        after
            .triggers
            .insert("trg_iu_enacted_immut".into(), "D".into());
        after.triggers.remove("trg_uv_enacted_immut");
        after.functions.insert("fn_iu_enact".into(), false);
        let err = before.net_zero(&after).unwrap_err();
        let text = err.to_string();
        assert_eq!(err.differences.len(), 7, "{text}");
        for needle in [
            "system identifier",
            "public.information_unit: rows 158 → 159",
            "public.unit_version: same row count, content changed",
            "units withdrawn: 0 → 1",
            "trigger trg_iu_enacted_immut: O → D",
            "trigger trg_uv_enacted_immut: O → absent",
            "function fn_iu_enact: present → absent",
        ] {
            assert!(text.contains(needle), "{needle} missing from {text}");
        }
        assert!(!after.immutability_triggers_enabled());
        assert!(before.immutability_triggers_enabled());
        assert_eq!(before.rows("public.information_unit"), 158);
    }
}
