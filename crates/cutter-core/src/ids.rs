//! Validated names: run ids, document ids, fingerprints, system identifiers, table
//! names. Each newtype checks its input on construction, so a value in hand is valid.

use std::fmt;

use serde::{Deserialize, Serialize};

use crate::Error;

fn check_token(kind: &'static str, s: &str, max: usize) -> Result<(), Error> {
    let ok_len = !s.is_empty() && s.len() <= max;
    let ok_chars = s
        .bytes()
        .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.'));
    let ok_edges = !s.starts_with(['.', '-']) && !s.contains("..");
    if ok_len && ok_chars && ok_edges {
        Ok(())
    } else {
        Err(Error::InvalidId {
            kind,
            value: s.chars().take(80).collect(),
            rule: format!(
                "1–{max} characters of [A-Za-z0-9._-], not starting with '.' or '-', no '..'"
            ),
        })
    }
}

macro_rules! token_id {
    ($(#[$doc:meta])* $name:ident, $kind:literal, $max:expr) => {
        $(#[$doc])*
        #[derive(Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
        #[serde(try_from = "String", into = "String")]
        pub struct $name(String);

        impl $name {
            /// Validates and wraps `s`.
            pub fn new(s: impl Into<String>) -> Result<Self, Error> {
                let s = s.into();
                check_token($kind, &s, $max)?;
                Ok(Self(s))
            }
            /// The id as text.
            pub fn as_str(&self) -> &str {
                &self.0
            }
        }
        impl TryFrom<String> for $name {
            type Error = Error;
            fn try_from(s: String) -> Result<Self, Error> {
                Self::new(s)
            }
        }
        impl From<$name> for String {
            fn from(v: $name) -> String {
                v.0
            }
        }
        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(&self.0)
            }
        }
        impl fmt::Debug for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                write!(f, "{}({:?})", stringify!($name), self.0)
            }
        }
        impl std::str::FromStr for $name {
            type Err = Error;
            fn from_str(s: &str) -> Result<Self, Error> {
                Self::new(s)
            }
        }
    };
}

token_id!(
    /// One attempt to apply one plan to one target. Safe as a file name.
    RunId, "run id", 64
);
token_id!(
    /// The document a plan was cut from.
    DocumentId, "document id", 128
);
token_id!(
    /// The version of the document's source text.
    SourceVersionId, "source version id", 128
);

/// The change set a run's cut creates. Derived from the run id, so a crashed run's
/// change set can be found in the database without any state file.
#[derive(Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(transparent)]
pub struct ChangeSetId(String);

impl ChangeSetId {
    /// The change set id of `run`: `cs-<run id>`.
    pub fn for_run(run: &RunId) -> Self {
        Self(format!("cs-{}", run.as_str()))
    }
    /// Wraps a change set id read back from the ledger, validating its form.
    pub fn parse(s: &str) -> Result<Self, Error> {
        let run = s.strip_prefix("cs-").ok_or_else(|| Error::InvalidId {
            kind: "change set id",
            value: s.chars().take(80).collect(),
            rule: "cs-<run id>".into(),
        })?;
        Ok(Self::for_run(&RunId::new(run)?))
    }
    /// The id as text.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for ChangeSetId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}
impl fmt::Debug for ChangeSetId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "ChangeSetId({:?})", self.0)
    }
}

/// An OpenPGP key fingerprint: 40 (v4) or 64 (v6) hex digits, stored upper-case.
#[derive(Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct Fingerprint(String);

impl Fingerprint {
    /// Parses a fingerprint; spaces are ignored, case is normalized.
    pub fn new(s: &str) -> Result<Self, Error> {
        let norm: String = s
            .chars()
            .filter(|c| !c.is_whitespace())
            .collect::<String>()
            .to_ascii_uppercase();
        let norm = norm.strip_prefix("0X").unwrap_or(&norm).to_string();
        if (norm.len() == 40 || norm.len() == 64) && norm.bytes().all(|b| b.is_ascii_hexdigit()) {
            Ok(Self(norm))
        } else {
            Err(Error::InvalidId {
                kind: "OpenPGP fingerprint",
                value: s.chars().take(80).collect(),
                rule: "40 or 64 hexadecimal digits".into(),
            })
        }
    }
    /// Upper-case hex.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}
impl TryFrom<String> for Fingerprint {
    type Error = Error;
    fn try_from(s: String) -> Result<Self, Error> {
        Self::new(&s)
    }
}
impl From<Fingerprint> for String {
    fn from(v: Fingerprint) -> String {
        v.0
    }
}
impl fmt::Display for Fingerprint {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}
impl fmt::Debug for Fingerprint {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Fingerprint({})", self.0)
    }
}

/// A PostgreSQL cluster's `system_identifier` (`pg_control_system()`): which server
/// a fact was read from. Two clusters never share one.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct SystemIdentifier(u64);

impl SystemIdentifier {
    /// Wraps the identifier.
    pub fn new(v: u64) -> Self {
        Self(v)
    }
    /// The raw value.
    pub fn get(self) -> u64 {
        self.0
    }
}
impl TryFrom<String> for SystemIdentifier {
    type Error = Error;
    fn try_from(s: String) -> Result<Self, Error> {
        s.parse().map(Self).map_err(|_| Error::InvalidId {
            kind: "system identifier",
            value: s.chars().take(80).collect(),
            rule: "a decimal 64-bit unsigned integer".into(),
        })
    }
}
impl From<SystemIdentifier> for String {
    fn from(v: SystemIdentifier) -> String {
        v.0.to_string()
    }
}
impl fmt::Display for SystemIdentifier {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.0)
    }
}
impl fmt::Debug for SystemIdentifier {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "SystemIdentifier({})", self.0)
    }
}

/// A schema-qualified table name whose parts are plain lower-case identifiers.
#[derive(Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct TableName {
    schema: String,
    name: String,
}

fn check_ident(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= 63
        && s.bytes()
            .next()
            .is_some_and(|b| b.is_ascii_lowercase() || b == b'_')
        && s.bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_')
}

impl TableName {
    /// `schema.name`, both parts `[a-z_][a-z0-9_]*`.
    pub fn new(schema: &str, name: &str) -> Result<Self, Error> {
        if check_ident(schema) && check_ident(name) {
            Ok(Self {
                schema: schema.into(),
                name: name.into(),
            })
        } else {
            Err(Error::InvalidId {
                kind: "table name",
                value: format!("{schema}.{name}"),
                rule: "schema.name with parts [a-z_][a-z0-9_]*".into(),
            })
        }
    }
    /// The schema part.
    pub fn schema(&self) -> &str {
        &self.schema
    }
    /// The table part.
    pub fn name(&self) -> &str {
        &self.name
    }
    /// `"schema"."name"`, quoted as identifiers for SQL.
    pub fn quoted(&self) -> String {
        format!("\"{}\".\"{}\"", self.schema, self.name)
    }
}
impl TryFrom<String> for TableName {
    type Error = Error;
    fn try_from(s: String) -> Result<Self, Error> {
        match s.split_once('.') {
            Some((a, b)) => Self::new(a, b),
            None => Self::new("", &s),
        }
    }
}
impl From<TableName> for String {
    fn from(v: TableName) -> String {
        v.to_string()
    }
}
impl fmt::Display for TableName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}.{}", self.schema, self.name)
    }
}
impl fmt::Debug for TableName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "TableName({self})")
    }
}

/// The ten tables a run may change (the approver registry is written by the owner, never
/// by a run, and is on the surface so that backups, snapshots and restore proofs cover
/// it), in dump and report order.
pub const MUTATION_SURFACE: [(&str, &str); 10] = [
    ("public", "information_unit"),
    ("public", "unit_version"),
    ("public", "iu_lifecycle_log"),
    ("cutter_governance", "cut_change_set"),
    ("cutter_governance", "cut_change_set_affected_row"),
    ("cutter_governance", "manifest_envelope"),
    ("cutter_governance", "review_decision"),
    ("cutter_governance", "verify_result"),
    ("cutter_governance", "dot_pair_signature"),
    ("cutter_governance", "approver"),
];

/// The mutation surface as validated names.
pub fn mutation_surface() -> Vec<TableName> {
    MUTATION_SURFACE
        .iter()
        .map(|(s, n)| TableName {
            schema: (*s).into(),
            name: (*n).into(),
        })
        .collect()
}

/// Seconds since the Unix epoch, UTC. Core never reads the clock: callers pass `now`.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Debug, Serialize, Deserialize)]
#[serde(transparent)]
pub struct UnixTime(pub i64);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn run_ids_are_safe_file_names() {
        assert!(RunId::new("r-20261123-ab12").is_ok());
        for bad in [
            "",
            "../x",
            "a/b",
            ".hidden",
            "-x",
            "a b",
            "a..b",
            "ü",
            &"x".repeat(65),
        ] {
            assert!(RunId::new(bad).is_err(), "{bad:?} accepted");
        }
    }

    #[test]
    fn fingerprints_normalize() {
        let f = Fingerprint::new("abcd ef01 2345 6789 abcd ef01 2345 6789 abcd ef01").unwrap();
        assert_eq!(f.as_str(), "ABCDEF0123456789ABCDEF0123456789ABCDEF01");
        assert!(Fingerprint::new("abc").is_err());
        assert!(Fingerprint::new(&"g".repeat(40)).is_err());
    }

    #[test]
    fn table_names_quote_and_validate() {
        let t = TableName::new("public", "information_unit").unwrap();
        assert_eq!(t.quoted(), "\"public\".\"information_unit\"");
        assert!(TableName::new("public", "x\"; drop").is_err());
        assert_eq!(mutation_surface().len(), 10);
        let back: TableName = serde_json::from_str("\"cutter_governance.verify_result\"").unwrap();
        assert_eq!(back.name(), "verify_result");
    }

    #[test]
    fn change_set_ids_round_trip_through_run_ids() {
        let r = RunId::new("r1").unwrap();
        let cs = ChangeSetId::for_run(&r);
        assert_eq!(cs.as_str(), "cs-r1");
        assert_eq!(ChangeSetId::parse("cs-r1").unwrap(), cs);
        assert!(ChangeSetId::parse("r1").is_err());
    }
}
