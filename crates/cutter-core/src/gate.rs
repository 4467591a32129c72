//! The gate: kill-switch, HOLD and the two signed, run-scoped approvals SG_1 and SG_2.
//! A live write needs a [`LiveAuthorization`], which only [`authorize`] (and, for a
//! throwaway rehearsal clone, [`LiveAuthorization::rehearsal`]) can construct.
//! Signatures are checked by an I/O crate behind [`SignatureVerifier`]; the gate decides
//! on what that verifier says.

use std::collections::BTreeSet;
use std::fmt;

use serde::{Deserialize, Serialize};

use crate::digest::Sha256Digest;
use crate::ids::{ChangeSetId, Fingerprint, RunId, SystemIdentifier, UnixTime};
use crate::phase::Phase;

/// The global "execution disabled" switch (disable level 0). Engaged by default;
/// disarmed only for exactly one run; re-armed on any failure.
#[derive(Clone, PartialEq, Eq, Debug, Default, Serialize, Deserialize)]
#[serde(tag = "state", rename_all = "snake_case")]
pub enum KillSwitch {
    /// Live runs are refused.
    #[default]
    Engaged,
    /// Disarmed for this run id only.
    Disarmed {
        /// The one run that may write.
        run_id: RunId,
    },
}

/// The lock recorded on an unrecovered failure. While present, live runs are refused;
/// it is released only with an approval, never automatically.
#[derive(Clone, PartialEq, Eq, Debug, Serialize, Deserialize)]
pub struct HoldRecord {
    /// The run that failed.
    pub run_id: RunId,
    /// The phase that failed, if a phase was running.
    pub failed_phase: Option<Phase>,
    /// Why.
    pub reason: String,
    /// When the hold was written.
    pub at: UnixTime,
}

/// Which approval a signature gives.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Debug, Serialize, Deserialize)]
pub enum ApprovalGate {
    /// The first of the two approvals.
    #[serde(rename = "SG_1")]
    Sg1,
    /// The second of the two approvals.
    #[serde(rename = "SG_2")]
    Sg2,
}

impl ApprovalGate {
    /// `SG_1` or `SG_2`.
    pub fn name(self) -> &'static str {
        match self {
            ApprovalGate::Sg1 => "SG_1",
            ApprovalGate::Sg2 => "SG_2",
        }
    }
    /// Parses `SG_1` / `SG_2` (case-insensitive, `-` accepted for `_`).
    pub fn parse(s: &str) -> Option<Self> {
        match s.to_ascii_uppercase().replace('-', "_").as_str() {
            "SG_1" => Some(Self::Sg1),
            "SG_2" => Some(Self::Sg2),
            _ => None,
        }
    }
}

impl fmt::Display for ApprovalGate {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// What an approval approves. Every action checks that the purpose is its own, so an
/// approval for one action is never valid for another.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Debug, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Purpose {
    /// A live run writing its plan.
    LiveRun,
    /// Releasing the HOLD a failed run left.
    HoldRelease,
    /// Hard-deleting the draft units of a change set (compensation A, hard).
    HardDelete,
    /// Voiding a run.
    Void,
    /// Adding or revoking an approver in the registry.
    ApproverChange,
}

impl Purpose {
    /// Every purpose, in the order the statement format lists them.
    pub const ALL: [Purpose; 5] = [
        Purpose::LiveRun,
        Purpose::HoldRelease,
        Purpose::HardDelete,
        Purpose::Void,
        Purpose::ApproverChange,
    ];
    /// `live-run`, `hold-release`, `hard-delete`, `void` or `approver-change`.
    pub fn name(self) -> &'static str {
        match self {
            Purpose::LiveRun => "live-run",
            Purpose::HoldRelease => "hold-release",
            Purpose::HardDelete => "hard-delete",
            Purpose::Void => "void",
            Purpose::ApproverChange => "approver-change",
        }
    }
    /// Parses a name written by [`Purpose::name`] (exactly).
    pub fn parse(s: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|p| p.name() == s)
    }
}

impl fmt::Display for Purpose {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// The database an approval is for: the cluster's system identifier (which every
/// database of a cluster and every physical replica shares) *and* the database's name
/// and OID, so that an approval for `staging` never authorizes `production` in the same
/// cluster.
#[derive(Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Debug, Serialize, Deserialize)]
pub struct TargetDatabase {
    /// `pg_control_system().system_identifier`.
    pub system_identifier: SystemIdentifier,
    /// `current_database()`.
    pub name: String,
    /// The database's OID in `pg_database`.
    pub oid: u32,
}

impl TargetDatabase {
    /// Checks the name as a statement may carry it: 1 to 63 bytes, no control character
    /// (a line break would change the statement's structure).
    pub fn check_name(name: &str) -> Result<(), String> {
        if name.is_empty() || name.len() > 63 || name.chars().any(char::is_control) {
            return Err(format!(
                "database name {:?}: must be 1 to 63 bytes without control characters",
                shorten(name)
            ));
        }
        Ok(())
    }
}

impl fmt::Display for TargetDatabase {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "database {:?} (oid {}) on system {}",
            self.name, self.oid, self.system_identifier
        )
    }
}

/// What an approver signs (`cutter-approval/2`): one purpose, one run, one plan, one
/// database, one gate, for a window of time.
#[derive(Clone, PartialEq, Eq, Debug, Serialize, Deserialize)]
pub struct ApprovalStatement {
    /// What is approved.
    pub purpose: Purpose,
    /// The run approved (for a hard delete, the revert run; for an approver change, the
    /// change's id).
    pub run_id: RunId,
    /// The digest of the plan approved (for an approver change, of the change).
    pub plan_digest: Sha256Digest,
    /// The change set a hard delete removes; required for `hard-delete`, absent otherwise.
    pub change_set: Option<ChangeSetId>,
    /// The document cutter's findings the approvers signed off (optional).
    pub findings_digest: Option<Sha256Digest>,
    /// An amendment's per-unit diff (optional).
    pub diff_digest: Option<Sha256Digest>,
    /// The database the action may write to.
    pub target: TargetDatabase,
    /// SG_1 or SG_2.
    pub gate: ApprovalGate,
    /// The approval is void before this time.
    pub not_before: UnixTime,
    /// The approval is void from this time on.
    pub expires_at: UnixTime,
}

/// The first line of every statement cutter accepts.
pub const STATEMENT_HEADER: &str = "cutter-approval/2";
const STATEMENT_HEADER_V1: &str = "cutter-approval/1";

impl ApprovalStatement {
    /// The canonical text that is signed, byte for byte (lines in brackets appear only
    /// when the statement has them):
    ///
    /// ```text
    /// cutter-approval/2
    /// purpose: live-run|hold-release|hard-delete|void|approver-change
    /// run_id: <run id>
    /// plan_digest: sha256:<64 hex>
    /// [change_set: cs-<run id>]
    /// [findings_digest: sha256:<64 hex>]
    /// [diff_digest: sha256:<64 hex>]
    /// target_system_identifier: <decimal>
    /// target_database: <name>
    /// target_database_oid: <decimal>
    /// gate: SG_1|SG_2
    /// not_before: <unix seconds>
    /// expires_at: <unix seconds>
    /// ```
    ///
    /// Every line ends with `\n`; nothing else is allowed.
    pub fn canonical_text(&self) -> String {
        let mut s = format!(
            "{STATEMENT_HEADER}\npurpose: {}\nrun_id: {}\nplan_digest: sha256:{}\n",
            self.purpose,
            self.run_id,
            self.plan_digest.to_hex()
        );
        if let Some(cs) = &self.change_set {
            s.push_str(&format!("change_set: {cs}\n"));
        }
        if let Some(d) = self.findings_digest {
            s.push_str(&format!("findings_digest: sha256:{}\n", d.to_hex()));
        }
        if let Some(d) = self.diff_digest {
            s.push_str(&format!("diff_digest: sha256:{}\n", d.to_hex()));
        }
        s.push_str(&format!(
            "target_system_identifier: {}\ntarget_database: {}\ntarget_database_oid: {}\ngate: {}\nnot_before: {}\nexpires_at: {}\n",
            self.target.system_identifier,
            self.target.name,
            self.target.oid,
            self.gate,
            self.not_before.0,
            self.expires_at.0
        ));
        s
    }

    /// Parses the canonical text strictly: the same lines, in the same order, and
    /// re-encoding must give back the same bytes. A `cutter-approval/1` statement (which
    /// names no purpose and no database) is refused.
    pub fn parse(bytes: &[u8]) -> Result<Self, String> {
        let text =
            std::str::from_utf8(bytes).map_err(|_| "the statement is not UTF-8".to_string())?;
        let mut lines = text.split('\n').peekable();
        match lines.next() {
            Some(STATEMENT_HEADER) => {}
            Some(STATEMENT_HEADER_V1) => {
                return Err(format!(
                    "a {STATEMENT_HEADER_V1} statement names no purpose and no database and is no longer accepted; \
                     write a {STATEMENT_HEADER} statement with `cutter approve` and sign it again"
                ))
            }
            _ => {
                return Err(format!(
                    "the statement must start with the line {STATEMENT_HEADER:?}"
                ))
            }
        }
        fn value<'t>(line: Option<&'t str>, key: &str) -> Result<&'t str, String> {
            let line = line.unwrap_or_default();
            line.strip_prefix(key)
                .and_then(|r| r.strip_prefix(": "))
                .ok_or_else(|| format!("expected a line \"{key}: …\", found {:?}", shorten(line)))
        }
        fn digest(v: &str, key: &str) -> Result<Sha256Digest, String> {
            Sha256Digest::from_hex(
                v.strip_prefix("sha256:")
                    .ok_or_else(|| format!("{key} must start with sha256:"))?,
            )
            .map_err(|e| format!("{key}: {e}"))
        }
        fn number<T: std::str::FromStr>(v: &str, key: &str) -> Result<T, String> {
            v.parse::<T>()
                .map_err(|_| format!("{key} must be a decimal integer, found {:?}", shorten(v)))
        }
        let purpose_text = value(lines.next(), "purpose")?;
        let purpose = Purpose::parse(purpose_text).ok_or_else(|| {
            format!(
                "purpose must be one of live-run, hold-release, hard-delete, void, approver-change; found {:?}",
                shorten(purpose_text)
            )
        })?;
        let run_id = RunId::new(value(lines.next(), "run_id")?).map_err(|e| e.to_string())?;
        let plan_digest = digest(value(lines.next(), "plan_digest")?, "plan_digest")?;
        let mut optional = |key: &str| -> Option<String> {
            let next = lines.peek()?;
            let v = next.strip_prefix(key)?.strip_prefix(": ")?.to_string();
            lines.next();
            Some(v)
        };
        let change_set = optional("change_set")
            .map(|v| ChangeSetId::parse(&v).map_err(|e| e.to_string()))
            .transpose()?;
        let findings_digest = optional("findings_digest")
            .map(|v| digest(&v, "findings_digest"))
            .transpose()?;
        let diff_digest = optional("diff_digest")
            .map(|v| digest(&v, "diff_digest"))
            .transpose()?;
        let system_identifier = SystemIdentifier::new(number(
            value(lines.next(), "target_system_identifier")?,
            "target_system_identifier",
        )?);
        let name = value(lines.next(), "target_database")?.to_string();
        TargetDatabase::check_name(&name)?;
        let oid = number(
            value(lines.next(), "target_database_oid")?,
            "target_database_oid",
        )?;
        let gate_text = value(lines.next(), "gate")?;
        let gate = ApprovalGate::parse(gate_text)
            .filter(|g| g.name() == gate_text)
            .ok_or_else(|| format!("gate must be SG_1 or SG_2, found {:?}", shorten(gate_text)))?;
        let not_before = UnixTime(number(value(lines.next(), "not_before")?, "not_before")?);
        let expires_at = UnixTime(number(value(lines.next(), "expires_at")?, "expires_at")?);
        if (purpose == Purpose::HardDelete) != change_set.is_some() {
            return Err(if change_set.is_some() {
                format!("change_set is only for a hard-delete statement, not {purpose}")
            } else {
                "a hard-delete statement must name its change_set".to_string()
            });
        }
        if not_before >= expires_at {
            return Err("not_before must be earlier than expires_at".into());
        }
        let statement = Self {
            purpose,
            run_id,
            plan_digest,
            change_set,
            findings_digest,
            diff_digest,
            target: TargetDatabase {
                system_identifier,
                name,
                oid,
            },
            gate,
            not_before,
            expires_at,
        };
        if statement.canonical_text().as_bytes() != bytes {
            return Err("the statement is not in canonical form (extra lines, spaces or a missing final newline)".into());
        }
        Ok(statement)
    }
}

/// What a statement recorded in the ledger says, whichever version recorded it: a
/// `cutter-approval/1` row written before version 2 stays readable, so that its
/// signature can still be re-verified.
#[derive(Clone, PartialEq, Eq, Debug, Serialize)]
pub struct RecordedStatement {
    /// 1 or 2.
    pub version: u8,
    /// The purpose (version 2 only; a version 1 statement approved a run).
    pub purpose: Option<Purpose>,
    /// The run named.
    pub run_id: RunId,
    /// The gate named.
    pub gate: ApprovalGate,
    /// The whole statement (version 2 only).
    pub statement: Option<ApprovalStatement>,
}

impl RecordedStatement {
    /// Parses a recorded statement: version 2 strictly ([`ApprovalStatement::parse`]),
    /// version 1 as it was written (six lines: header, run_id, plan_digest,
    /// target_system_identifier, gate, expires_at).
    pub fn parse(bytes: &[u8]) -> Result<Self, String> {
        if !bytes.starts_with(format!("{STATEMENT_HEADER_V1}\n").as_bytes()) {
            let st = ApprovalStatement::parse(bytes)?;
            return Ok(Self {
                version: 2,
                purpose: Some(st.purpose),
                run_id: st.run_id.clone(),
                gate: st.gate,
                statement: Some(st),
            });
        }
        let text =
            std::str::from_utf8(bytes).map_err(|_| "the statement is not UTF-8".to_string())?;
        let lines: Vec<&str> = text.split('\n').collect();
        let keys = [
            "run_id",
            "plan_digest",
            "target_system_identifier",
            "gate",
            "expires_at",
        ];
        if lines.len() != keys.len() + 2 || lines.last() != Some(&"") {
            return Err("a cutter-approval/1 statement has exactly six lines".into());
        }
        let mut values = Vec::new();
        for (line, key) in lines[1..].iter().zip(keys) {
            values.push(
                line.strip_prefix(key)
                    .and_then(|r| r.strip_prefix(": "))
                    .ok_or_else(|| {
                        format!("expected a line \"{key}: …\", found {:?}", shorten(line))
                    })?,
            );
        }
        let run_id = RunId::new(values[0]).map_err(|e| e.to_string())?;
        let gate = ApprovalGate::parse(values[3])
            .filter(|g| g.name() == values[3])
            .ok_or_else(|| format!("gate must be SG_1 or SG_2, found {:?}", shorten(values[3])))?;
        Ok(Self {
            version: 1,
            purpose: None,
            run_id,
            gate,
            statement: None,
        })
    }
}

fn shorten(s: &str) -> String {
    s.chars().take(80).collect()
}

/// An approval as presented: the statement bytes and a detached signature over them.
#[derive(Clone, PartialEq, Eq, Debug)]
pub struct SignedApproval {
    /// The canonical statement text that was signed.
    pub statement: Vec<u8>,
    /// The detached OpenPGP signature (armored or binary).
    pub signature: Vec<u8>,
    /// Where the approval came from (a file name), for error messages.
    pub source: String,
}

/// Checks a detached signature; implemented by the OpenPGP crate.
pub trait SignatureVerifier {
    /// The primary-key fingerprint of the signer if `signature` is a valid signature over
    /// `data` by one of the verifier's known keys, judged at `now` (the gate's time, not
    /// the signature's own creation time: the key and signing subkey must be unexpired,
    /// unrevoked and able to sign at `now`, and the signature not dated in the future);
    /// otherwise why not.
    fn verify(&self, data: &[u8], signature: &[u8], now: UnixTime) -> Result<Fingerprint, String>;
}

/// The longest an approval may stay valid: a statement whose `expires_at` is more than
/// this after the gate's `now` is refused, whatever a configuration allows.
pub const MAX_APPROVAL_LIFETIME_SECS: i64 = 7 * 24 * 3600;

/// The configured maximum when none is set: 24 hours.
pub const DEFAULT_APPROVAL_LIFETIME_SECS: i64 = 24 * 3600;

/// How long approvals may live, as configured: at most [`MAX_APPROVAL_LIFETIME_SECS`].
#[derive(Clone, Copy, PartialEq, Eq, Debug, Serialize, Deserialize)]
pub struct ApprovalPolicy {
    max_lifetime_secs: i64,
}

impl Default for ApprovalPolicy {
    fn default() -> Self {
        Self {
            max_lifetime_secs: DEFAULT_APPROVAL_LIFETIME_SECS,
        }
    }
}

impl ApprovalPolicy {
    /// A policy whose statements expire at most `hours` after the gate's time; refused
    /// above 168 hours (7 days) or at 0.
    pub fn with_max_hours(hours: u64) -> Result<Self, String> {
        let secs = i64::try_from(hours)
            .ok()
            .and_then(|h| h.checked_mul(3600))
            .filter(|s| (1..=MAX_APPROVAL_LIFETIME_SECS).contains(s))
            .ok_or_else(|| {
                format!("the approval validity must be 1 to 168 hours (7 days), not {hours}")
            })?;
        Ok(Self {
            max_lifetime_secs: secs,
        })
    }
    /// The configured maximum, in seconds.
    pub fn max_lifetime_secs(self) -> i64 {
        self.max_lifetime_secs
    }
}

/// What the approvals must name: one purpose, run, plan, database (and, for a hard
/// delete, change set).
#[derive(Clone, Copy, Debug)]
pub struct ApprovalScope<'a> {
    /// The action's purpose.
    pub purpose: Purpose,
    /// The run.
    pub run_id: &'a RunId,
    /// The plan's digest.
    pub plan_digest: Sha256Digest,
    /// The database.
    pub target: &'a TargetDatabase,
    /// The change set (hard delete only).
    pub change_set: Option<&'a ChangeSetId>,
    /// The digest of the plan's findings the approvers must have signed off (a live run
    /// of a plan that records findings); `None`: the statement must name none.
    pub findings_digest: Option<Sha256Digest>,
    /// The digest of the plan's diff against the live document the approvers must have
    /// signed off (an amendment: [`crate::PlanDiff::approval_digest`]); `None`: the
    /// statement must name none.
    pub diff_digest: Option<Sha256Digest>,
}

/// The approvers whose signatures count.
#[derive(Clone, PartialEq, Eq, Debug, Default, Serialize, Deserialize)]
#[serde(transparent)]
pub struct ApproverSet(pub BTreeSet<Fingerprint>);

/// An approval whose signature, signer and scope were checked.
#[derive(Clone, PartialEq, Eq, Debug, Serialize, Deserialize)]
pub struct VerifiedApproval {
    /// SG_1 or SG_2.
    pub gate: ApprovalGate,
    /// The signer's primary fingerprint.
    pub signer: Fingerprint,
    /// The statement signed.
    pub statement: ApprovalStatement,
    /// The detached signature as presented: armored text as is, a binary signature as
    /// `hex:<hex>`. Stored in the ledger (`dot_pair_signature`) so the approval can be
    /// re-verified later.
    pub signature: String,
}

fn signature_text(sig: &[u8]) -> String {
    match std::str::from_utf8(sig) {
        Ok(s) if s.is_ascii() => s.to_string(),
        _ => format!("hex:{}", hex::encode(sig)),
    }
}

/// The signature bytes of a [`VerifiedApproval::signature`] as recorded (the inverse of
/// how the gate writes it: armored text as is, a binary signature as `hex:<hex>`).
pub fn recorded_signature_bytes(text: &str) -> Result<Vec<u8>, String> {
    match text.strip_prefix("hex:") {
        Some(h) => hex::decode(h).map_err(|e| format!("signature: {e}")),
        None => Ok(text.as_bytes().to_vec()),
    }
}

/// Why the gate refused. Every reason found is listed.
#[derive(Clone, PartialEq, Eq, Debug, Serialize, Deserialize)]
#[serde(tag = "refusal", rename_all = "snake_case")]
pub enum Refusal {
    /// The kill-switch is engaged.
    KillSwitchEngaged,
    /// The kill-switch is disarmed, but for another run.
    KillSwitchDisarmedForOtherRun {
        /// The run it is disarmed for.
        run_id: RunId,
    },
    /// A HOLD is present.
    Held {
        /// The run that left the HOLD.
        run_id: RunId,
        /// Its reason.
        reason: String,
    },
    /// No valid approval for a gate.
    MissingApproval {
        /// SG_1 or SG_2.
        gate: ApprovalGate,
    },
    /// The statement could not be parsed.
    MalformedStatement {
        /// The approval's source.
        source: String,
        /// Why.
        detail: String,
    },
    /// The signature does not verify.
    BadSignature {
        /// The approval's source.
        source: String,
        /// Why.
        detail: String,
    },
    /// The signer is not a registered, unrevoked approver allowed the purpose.
    UnknownSigner {
        /// The approval's source.
        source: String,
        /// The signer.
        signer: Fingerprint,
    },
    /// SG_1 and SG_2 were signed by the same key.
    SameSigner {
        /// The key.
        signer: Fingerprint,
    },
    /// Two approvals for the same gate.
    DuplicateApproval {
        /// The gate.
        gate: ApprovalGate,
    },
    /// The statement names another run.
    WrongRun {
        /// The approval's source.
        source: String,
        /// The run it names.
        named: RunId,
    },
    /// The statement names another plan.
    WrongPlan {
        /// The approval's source.
        source: String,
        /// The plan digest it names.
        named: Sha256Digest,
    },
    /// The statement names another database (or cluster).
    WrongTarget {
        /// The approval's source.
        source: String,
        /// The database it names.
        named: TargetDatabase,
    },
    /// The statement approves another action.
    WrongPurpose {
        /// The approval's source.
        source: String,
        /// The purpose it names.
        named: Purpose,
        /// The purpose this action needs.
        expected: Purpose,
    },
    /// The statement names another change set (or none).
    WrongChangeSet {
        /// The approval's source.
        source: String,
        /// The change set it names.
        named: Option<ChangeSetId>,
    },
    /// The statement does not name the plan's diff against the live document (or names
    /// another: the plan or the live units changed since it was signed).
    WrongDiff {
        /// The approval's source.
        source: String,
        /// The diff digest it names.
        named: Option<Sha256Digest>,
        /// The diff's, now.
        expected: Option<Sha256Digest>,
    },
    /// The statement does not name the plan's findings (or names others).
    WrongFindings {
        /// The approval's source.
        source: String,
        /// The findings digest it names.
        named: Option<Sha256Digest>,
        /// The plan's.
        expected: Option<Sha256Digest>,
    },
    /// The approval is not valid yet.
    NotYetValid {
        /// The approval's source.
        source: String,
        /// When it becomes valid.
        not_before: UnixTime,
    },
    /// The approval has expired.
    Expired {
        /// The approval's source.
        source: String,
        /// When it expired.
        expires_at: UnixTime,
    },
    /// The approval expires too far in the future (the configured [`ApprovalPolicy`]).
    ExpiresTooLate {
        /// The approval's source.
        source: String,
        /// When it would expire.
        expires_at: UnixTime,
        /// The latest expiry accepted at the gate's time.
        latest: UnixTime,
    },
    /// A rehearsal clone has the same system identifier as the source.
    RehearsalIsNotAClone {
        /// The shared identifier.
        system_identifier: SystemIdentifier,
    },
}

impl fmt::Display for Refusal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Refusal::KillSwitchEngaged => write!(f, "the kill-switch is engaged; disarm it for this run with `cutter kill-switch disarm` and both approvals"),
            Refusal::KillSwitchDisarmedForOtherRun { run_id } => write!(f, "the kill-switch is disarmed for run {run_id}, not this one"),
            Refusal::Held { run_id, reason } => write!(f, "a HOLD from run {run_id} is present ({reason}); release it with `cutter hold release` and an approval"),
            Refusal::MissingApproval { gate } => write!(f, "no valid {gate} approval for this run"),
            Refusal::MalformedStatement { source, detail } => write!(f, "{source}: malformed approval statement: {detail}"),
            Refusal::BadSignature { source, detail } => write!(f, "{source}: signature does not verify: {detail}"),
            Refusal::UnknownSigner { source, signer } => write!(f, "{source}: signer {signer} is not a registered, unrevoked approver for this purpose (`cutter approvers list`)"),
            Refusal::SameSigner { signer } => write!(f, "SG_1 and SG_2 are both signed by {signer}; two distinct approvers are required"),
            Refusal::DuplicateApproval { gate } => write!(f, "more than one {gate} approval was given"),
            Refusal::WrongRun { source, named } => write!(f, "{source}: approves run {named}, not this run"),
            Refusal::WrongPlan { source, named } => write!(f, "{source}: approves plan sha256:{named}, not this plan"),
            Refusal::WrongTarget { source, named } => write!(f, "{source}: approves {named}, not this database"),
            Refusal::WrongPurpose { source, named, expected } => write!(f, "{source}: approves purpose {named}, but this action needs a {expected} approval"),
            Refusal::WrongChangeSet { source, named } => match named {
                Some(cs) => write!(f, "{source}: approves change set {cs}, not this one"),
                None => write!(f, "{source}: names no change set"),
            },
            Refusal::WrongDiff { source, named, expected } => match (named, expected) {
                (_, Some(e)) => write!(f, "{source}: does not sign off this amendment's diff (diff_digest sha256:{e}{}); read `cutter plan diff`, then write the statement again with `cutter approve`", named.map_or(", the statement names none".to_string(), |n| format!(", the statement names sha256:{n}: the plan or the live document changed since it was signed"))),
                (Some(n), None) => write!(f, "{source}: names diff sha256:{n}, but this plan amends nothing live (a first load)"),
                (None, None) => Ok(()),
            },
            Refusal::WrongFindings { source, named, expected } => match (named, expected) {
                (_, Some(e)) => write!(f, "{source}: does not sign off the plan's findings (findings_digest sha256:{e}{}); write the statement again with `cutter approve`, after reading `cutter plan check`", named.map_or(", the statement names none".to_string(), |n| format!(", the statement names sha256:{n}"))),
                (Some(n), None) => write!(f, "{source}: names findings sha256:{n}, but the plan records none"),
                (None, None) => Ok(()),
            },
            Refusal::NotYetValid { source, not_before } => write!(f, "{source}: not valid before unix time {}", not_before.0),
            Refusal::Expired { source, expires_at } => write!(f, "{source}: expired at unix time {}", expires_at.0),
            Refusal::ExpiresTooLate { source, expires_at, latest } => write!(f, "{source}: expires at unix time {}, later than the configured maximum allows (latest accepted: {}; never more than 7 days); sign a statement with an earlier expires_at", expires_at.0, latest.0),
            Refusal::RehearsalIsNotAClone { system_identifier } => write!(f, "the rehearsal target has the source's system identifier {system_identifier}: it is not a clone; refusing to write"),
        }
    }
}

/// The gate's answer when it refuses: every reason.
#[derive(Clone, PartialEq, Eq, Debug, Serialize, Deserialize)]
pub struct GateRefusal {
    /// In check order.
    pub reasons: Vec<Refusal>,
}

impl fmt::Display for GateRefusal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "refused by the gate:")?;
        for r in &self.reasons {
            write!(f, "\n  - {r}")?;
        }
        Ok(())
    }
}

/// Whether an authorization writes to the real target or to a throwaway rehearsal clone.
#[derive(Clone, Copy, PartialEq, Eq, Debug, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum AuthorizationScope {
    /// The production target, with SG_1 and SG_2.
    Live,
    /// A throwaway clone of the target (dry-run).
    Rehearsal,
}

/// Permission for one run to write one plan to one database. The adapter's mutating
/// methods take it and check that they are connected to `database()`.
///
/// Only the gate constructs it:
///
/// ```compile_fail,E0451
/// use cutter_core::gate::LiveAuthorization;
/// let forged = LiveAuthorization { run_id: todo!(), plan_digest: todo!(), database: todo!(), scope: todo!(), signers: vec![], diff_digest: None };
/// ```
#[derive(Clone, PartialEq, Eq, Debug, Serialize)]
#[must_use = "an authorization that is not passed to the adapter authorizes nothing"]
pub struct LiveAuthorization {
    run_id: RunId,
    plan_digest: Sha256Digest,
    database: TargetDatabase,
    scope: AuthorizationScope,
    signers: Vec<VerifiedApproval>,
    diff_digest: Option<Sha256Digest>,
}

impl LiveAuthorization {
    /// The run authorized.
    pub fn run_id(&self) -> &RunId {
        &self.run_id
    }
    /// The plan authorized.
    pub fn plan_digest(&self) -> Sha256Digest {
        self.plan_digest
    }
    /// The only server this authorization may write to.
    pub fn target(&self) -> SystemIdentifier {
        self.database.system_identifier
    }
    /// The only database this authorization may write to.
    pub fn database(&self) -> &TargetDatabase {
        &self.database
    }
    /// Live or rehearsal.
    pub fn scope(&self) -> AuthorizationScope {
        self.scope
    }
    /// The verified approvals (empty for a rehearsal).
    pub fn approvals(&self) -> &[VerifiedApproval] {
        &self.signers
    }
    /// The diff against the live document the approvals name (an amendment), which
    /// cut_leg_a re-computes inside its transaction and must find again; `None` for a
    /// first load and for a rehearsal (whose clone nobody approves).
    pub fn diff_digest(&self) -> Option<Sha256Digest> {
        self.diff_digest
    }

    /// Authorization to rehearse a run on a throwaway clone of the target: no approvals
    /// are needed because the clone is discarded, but the clone must be a different
    /// server from the source (`clone != source`), and the authorization names the clone.
    ///
    /// Core cannot tell a clone from production, so the identifiers given here are not
    /// what makes this safe: every writer (cutter-pg's phases, cutter-governance's ledger
    /// writers) refuses a rehearsal unless the server it is connected to is a throwaway
    /// cluster that cutter-pg started (its `cluster_name`, which only a server's start can
    /// set). A rehearsal naming a production server's identifier is refused there.
    pub fn rehearsal(
        run_id: RunId,
        plan_digest: Sha256Digest,
        source: SystemIdentifier,
        clone: TargetDatabase,
    ) -> Result<Self, GateRefusal> {
        if source == clone.system_identifier {
            return Err(GateRefusal {
                reasons: vec![Refusal::RehearsalIsNotAClone {
                    system_identifier: source,
                }],
            });
        }
        Ok(Self {
            run_id,
            plan_digest,
            database: clone,
            scope: AuthorizationScope::Rehearsal,
            signers: Vec::new(),
            diff_digest: None,
        })
    }
}

/// What the gate decides on.
#[derive(Debug)]
pub struct GateRequest<'a> {
    /// The run asking.
    pub run_id: &'a RunId,
    /// Its plan.
    pub plan_digest: Sha256Digest,
    /// The digest of the plan's findings, when it records them.
    pub findings_digest: Option<Sha256Digest>,
    /// The digest of the plan's diff against the live document, for an amendment.
    pub diff_digest: Option<Sha256Digest>,
    /// The database it would write to.
    pub target: &'a TargetDatabase,
    /// The kill-switch's state.
    pub kill_switch: &'a KillSwitch,
    /// The HOLD, if one is present.
    pub hold: Option<&'a HoldRecord>,
    /// The approvals presented.
    pub approvals: &'a [SignedApproval],
    /// Whose signatures count (the registry's approvers for `live-run`).
    pub approvers: &'a ApproverSet,
    /// How long approvals may live.
    pub policy: ApprovalPolicy,
    /// The current time.
    pub now: UnixTime,
}

/// Checks approvals for `scope`: each must parse, verify at `now`, be by one of
/// `approvers`, name exactly the scope's purpose, run, plan, database (and change set),
/// be valid at `now` (`not_before <= now < expires_at`) and not expire later than the
/// policy allows after `now`; SG_1 and SG_2 must both be present, once each, from two
/// distinct keys. Used by the gate and by every action that needs both approvals.
pub fn check_approvals(
    scope: &ApprovalScope<'_>,
    approvals: &[SignedApproval],
    approvers: &ApproverSet,
    now: UnixTime,
    policy: ApprovalPolicy,
    verifier: &dyn SignatureVerifier,
) -> Result<Vec<VerifiedApproval>, Vec<Refusal>> {
    let mut reasons = Vec::new();
    let mut valid: Vec<VerifiedApproval> = Vec::new();
    for a in approvals {
        let source = a.source.clone();
        let statement = match ApprovalStatement::parse(&a.statement) {
            Ok(s) => s,
            Err(detail) => {
                reasons.push(Refusal::MalformedStatement { source, detail });
                continue;
            }
        };
        let signer = match verifier.verify(&a.statement, &a.signature, now) {
            Ok(f) => f,
            Err(detail) => {
                reasons.push(Refusal::BadSignature { source, detail });
                continue;
            }
        };
        let before = reasons.len();
        if !approvers.0.contains(&signer) {
            reasons.push(Refusal::UnknownSigner {
                source: source.clone(),
                signer: signer.clone(),
            });
        }
        if statement.purpose != scope.purpose {
            reasons.push(Refusal::WrongPurpose {
                source: source.clone(),
                named: statement.purpose,
                expected: scope.purpose,
            });
        }
        if &statement.run_id != scope.run_id {
            reasons.push(Refusal::WrongRun {
                source: source.clone(),
                named: statement.run_id.clone(),
            });
        }
        if statement.plan_digest != scope.plan_digest {
            reasons.push(Refusal::WrongPlan {
                source: source.clone(),
                named: statement.plan_digest,
            });
        }
        if statement.change_set.as_ref() != scope.change_set {
            reasons.push(Refusal::WrongChangeSet {
                source: source.clone(),
                named: statement.change_set.clone(),
            });
        }
        if statement.diff_digest != scope.diff_digest {
            reasons.push(Refusal::WrongDiff {
                source: source.clone(),
                named: statement.diff_digest,
                expected: scope.diff_digest,
            });
        }
        if statement.findings_digest != scope.findings_digest {
            reasons.push(Refusal::WrongFindings {
                source: source.clone(),
                named: statement.findings_digest,
                expected: scope.findings_digest,
            });
        }
        if &statement.target != scope.target {
            reasons.push(Refusal::WrongTarget {
                source: source.clone(),
                named: statement.target.clone(),
            });
        }
        let latest = UnixTime(now.0.saturating_add(policy.max_lifetime_secs()));
        if now < statement.not_before {
            reasons.push(Refusal::NotYetValid {
                source: source.clone(),
                not_before: statement.not_before,
            });
        }
        if statement.expires_at <= now {
            reasons.push(Refusal::Expired {
                source,
                expires_at: statement.expires_at,
            });
        } else if statement.expires_at > latest {
            reasons.push(Refusal::ExpiresTooLate {
                source,
                expires_at: statement.expires_at,
                latest,
            });
        }
        if reasons.len() == before {
            valid.push(VerifiedApproval {
                gate: statement.gate,
                signer,
                statement,
                signature: signature_text(&a.signature),
            });
        }
    }
    let mut chosen = Vec::new();
    for gate in [ApprovalGate::Sg1, ApprovalGate::Sg2] {
        let of_gate: Vec<&VerifiedApproval> = valid.iter().filter(|v| v.gate == gate).collect();
        match of_gate.as_slice() {
            [] => reasons.push(Refusal::MissingApproval { gate }),
            [one] => chosen.push((*one).clone()),
            _ => reasons.push(Refusal::DuplicateApproval { gate }),
        }
    }
    if let [a, b] = chosen.as_slice() {
        if a.signer == b.signer {
            reasons.push(Refusal::SameSigner {
                signer: a.signer.clone(),
            });
        }
    }
    if reasons.is_empty() {
        Ok(chosen)
    } else {
        Err(reasons)
    }
}

/// The gate. Grants a [`LiveAuthorization`] only when the kill-switch is disarmed for
/// exactly this run, no HOLD is present, and SG_1 and SG_2 pass [`check_approvals`] for
/// purpose `live-run`.
pub fn authorize(
    req: &GateRequest<'_>,
    verifier: &dyn SignatureVerifier,
) -> Result<LiveAuthorization, GateRefusal> {
    let mut reasons = Vec::new();
    match req.kill_switch {
        KillSwitch::Engaged => reasons.push(Refusal::KillSwitchEngaged),
        KillSwitch::Disarmed { run_id } if run_id != req.run_id => {
            reasons.push(Refusal::KillSwitchDisarmedForOtherRun {
                run_id: run_id.clone(),
            })
        }
        KillSwitch::Disarmed { .. } => {}
    }
    if let Some(h) = req.hold {
        reasons.push(Refusal::Held {
            run_id: h.run_id.clone(),
            reason: h.reason.clone(),
        });
    }
    let scope = ApprovalScope {
        purpose: Purpose::LiveRun,
        run_id: req.run_id,
        plan_digest: req.plan_digest,
        target: req.target,
        change_set: None,
        findings_digest: req.findings_digest,
        diff_digest: req.diff_digest,
    };
    let approvals = check_approvals(
        &scope,
        req.approvals,
        req.approvers,
        req.now,
        req.policy,
        verifier,
    );
    match approvals {
        Ok(signers) if reasons.is_empty() => Ok(LiveAuthorization {
            run_id: req.run_id.clone(),
            plan_digest: req.plan_digest,
            database: req.target.clone(),
            scope: AuthorizationScope::Live,
            signers,
            diff_digest: req.diff_digest,
        }),
        Ok(_) => Err(GateRefusal { reasons }),
        Err(more) => {
            reasons.extend(more);
            Err(GateRefusal { reasons })
        }
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    /// A fake verifier: a "signature" is `SIG:<fingerprint>:<sha256 of data>`, optionally
    /// followed by `:<unix time>` from which on the signing key is revoked.
    pub(crate) struct FakeVerifier;

    pub(crate) fn fake_sign(fpr: &Fingerprint, data: &[u8]) -> Vec<u8> {
        format!("SIG:{fpr}:{}", Sha256Digest::of(data)).into_bytes()
    }

    impl SignatureVerifier for FakeVerifier {
        fn verify(
            &self,
            data: &[u8],
            signature: &[u8],
            now: UnixTime,
        ) -> Result<Fingerprint, String> {
            let s = std::str::from_utf8(signature).map_err(|_| "malformed armor".to_string())?;
            let mut parts = s.split(':');
            match (parts.next(), parts.next(), parts.next(), parts.next()) {
                (Some("SIG"), Some(f), Some(d), revoked)
                    if d == Sha256Digest::of(data).to_hex() =>
                {
                    let revoked = revoked.map(|r| r.parse::<i64>().map_err(|e| e.to_string()));
                    match revoked.transpose()? {
                        Some(r) if r <= now.0 => Err(format!("key revoked at {r}")),
                        _ => Fingerprint::new(f).map_err(|e| e.to_string()),
                    }
                }
                (Some("SIG"), Some(_), Some(_), _) => Err("bad signature".into()),
                _ => Err("malformed armor".into()),
            }
        }
    }

    pub(crate) fn fpr(n: u8) -> Fingerprint {
        Fingerprint::new(&format!("{:040X}", n)).unwrap()
    }

    pub(crate) struct World {
        pub run: RunId,
        pub plan: Sha256Digest,
        pub target: TargetDatabase,
        pub approvers: ApproverSet,
        pub now: UnixTime,
    }

    pub(crate) fn world() -> World {
        World {
            run: RunId::new("r-1").unwrap(),
            plan: Sha256Digest::of(b"plan"),
            target: db(42, "production", 16_384),
            approvers: ApproverSet([fpr(1), fpr(2)].into()),
            now: UnixTime(1_000),
        }
    }

    pub(crate) fn db(sysid: u64, name: &str, oid: u32) -> TargetDatabase {
        TargetDatabase {
            system_identifier: SystemIdentifier::new(sysid),
            name: name.into(),
            oid,
        }
    }

    /// A live-run statement for `w`'s run, plan and target.
    fn statement(w: &World, gate: ApprovalGate, expires_at: UnixTime) -> ApprovalStatement {
        ApprovalStatement {
            purpose: Purpose::LiveRun,
            run_id: w.run.clone(),
            plan_digest: w.plan,
            change_set: None,
            findings_digest: None,
            diff_digest: None,
            target: w.target.clone(),
            gate,
            not_before: UnixTime(w.now.0 - 60),
            expires_at,
        }
    }

    pub(crate) fn approval(w: &World, gate: ApprovalGate, signer: u8) -> SignedApproval {
        approval_of(&statement(w, gate, UnixTime(2_000)), signer)
    }

    fn approval_of(st: &ApprovalStatement, signer: u8) -> SignedApproval {
        let text = st.canonical_text().into_bytes();
        SignedApproval {
            signature: fake_sign(&fpr(signer), &text),
            statement: text,
            source: format!("{}-by-{signer}.asc", st.gate),
        }
    }

    fn gate(
        w: &World,
        ks: &KillSwitch,
        hold: Option<&HoldRecord>,
        a: &[SignedApproval],
    ) -> Result<LiveAuthorization, GateRefusal> {
        authorize(
            &GateRequest {
                run_id: &w.run,
                plan_digest: w.plan,
                findings_digest: None,
                diff_digest: None,
                target: &w.target,
                kill_switch: ks,
                hold,
                approvals: a,
                approvers: &w.approvers,
                policy: ApprovalPolicy::with_max_hours(168).unwrap(),
                now: w.now,
            },
            &FakeVerifier,
        )
    }

    fn disarmed(w: &World) -> KillSwitch {
        KillSwitch::Disarmed {
            run_id: w.run.clone(),
        }
    }

    #[test]
    fn grants_with_everything_in_order() {
        let w = world();
        let a = [
            approval(&w, ApprovalGate::Sg1, 1),
            approval(&w, ApprovalGate::Sg2, 2),
        ];
        let auth = gate(&w, &disarmed(&w), None, &a).unwrap();
        assert_eq!(auth.run_id(), &w.run);
        assert_eq!(auth.database(), &w.target);
        assert_eq!(auth.scope(), AuthorizationScope::Live);
        assert_eq!(auth.approvals().len(), 2);
    }

    fn reasons(r: Result<LiveAuthorization, GateRefusal>) -> Vec<Refusal> {
        r.unwrap_err().reasons
    }

    #[test]
    fn refuses_engaged_kill_switch_and_hold_and_lists_both() {
        let w = world();
        let a = [
            approval(&w, ApprovalGate::Sg1, 1),
            approval(&w, ApprovalGate::Sg2, 2),
        ];
        let hold = HoldRecord {
            run_id: RunId::new("r-0").unwrap(),
            failed_phase: Some(Phase::CutLegA),
            reason: "boom".into(),
            at: UnixTime(5),
        };
        let r = reasons(gate(&w, &KillSwitch::Engaged, Some(&hold), &a));
        assert!(matches!(r[0], Refusal::KillSwitchEngaged));
        assert!(matches!(r[1], Refusal::Held { .. }));
        assert_eq!(r.len(), 2);
        let other = KillSwitch::Disarmed {
            run_id: RunId::new("r-9").unwrap(),
        };
        assert!(matches!(
            reasons(gate(&w, &other, None, &a))[0],
            Refusal::KillSwitchDisarmedForOtherRun { .. }
        ));
    }

    #[test]
    fn refuses_one_approval_same_signer_and_unknown_signer() {
        let w = world();
        let ks = disarmed(&w);
        let r = reasons(gate(&w, &ks, None, &[approval(&w, ApprovalGate::Sg1, 1)]));
        assert_eq!(
            r,
            vec![Refusal::MissingApproval {
                gate: ApprovalGate::Sg2
            }]
        );
        let r = reasons(gate(
            &w,
            &ks,
            None,
            &[
                approval(&w, ApprovalGate::Sg1, 1),
                approval(&w, ApprovalGate::Sg2, 1),
            ],
        ));
        assert_eq!(r, vec![Refusal::SameSigner { signer: fpr(1) }]);
        let r = reasons(gate(
            &w,
            &ks,
            None,
            &[
                approval(&w, ApprovalGate::Sg1, 1),
                approval(&w, ApprovalGate::Sg2, 3),
            ],
        ));
        assert!(matches!(&r[0], Refusal::UnknownSigner { signer, .. } if *signer == fpr(3)));
        assert!(matches!(
            &r[1],
            Refusal::MissingApproval {
                gate: ApprovalGate::Sg2
            }
        ));
    }

    #[test]
    fn refuses_other_run_plan_target_and_expired() {
        let w = world();
        let ks = disarmed(&w);
        let mut st = ApprovalStatement {
            run_id: RunId::new("r-other").unwrap(),
            plan_digest: Sha256Digest::of(b"other plan"),
            target: db(7, "production", 16_384),
            expires_at: UnixTime(999),
            ..statement(&w, ApprovalGate::Sg1, UnixTime(999))
        };
        let bad = approval_of(&st, 1);
        let r = reasons(gate(
            &w,
            &ks,
            None,
            &[bad, approval(&w, ApprovalGate::Sg2, 2)],
        ));
        let kinds: Vec<&str> = r
            .iter()
            .map(|x| match x {
                Refusal::WrongRun { .. } => "run",
                Refusal::WrongPlan { .. } => "plan",
                Refusal::WrongTarget { .. } => "target",
                Refusal::Expired { .. } => "expired",
                Refusal::MissingApproval { .. } => "missing",
                _ => "other",
            })
            .collect();
        assert_eq!(kinds, ["run", "plan", "target", "expired", "missing"]);
        st.run_id = w.run.clone();
        st.plan_digest = w.plan;
        st.target = w.target.clone();
        st.expires_at = w.now; // expiry is exclusive
        let r = reasons(gate(
            &w,
            &ks,
            None,
            &[approval_of(&st, 1), approval(&w, ApprovalGate::Sg2, 2)],
        ));
        assert!(matches!(r[0], Refusal::Expired { .. }));
    }

    #[test]
    fn refuses_an_expiry_more_than_seven_days_after_now() {
        let w = world();
        let ks = disarmed(&w);
        let latest = UnixTime(w.now.0 + MAX_APPROVAL_LIFETIME_SECS);
        let st = |expires_at| statement(&w, ApprovalGate::Sg1, expires_at);
        // Exactly seven days is the limit, and is accepted.
        let a = [
            approval_of(&st(latest), 1),
            approval(&w, ApprovalGate::Sg2, 2),
        ];
        assert!(gate(&w, &ks, None, &a).is_ok());
        // One second more is refused, naming the source and the latest expiry accepted.
        let too_late = UnixTime(latest.0 + 1);
        let a = [
            approval_of(&st(too_late), 1),
            approval(&w, ApprovalGate::Sg2, 2),
        ];
        let r = reasons(gate(&w, &ks, None, &a));
        assert_eq!(
            r[0],
            Refusal::ExpiresTooLate {
                source: "SG_1-by-1.asc".into(),
                expires_at: too_late,
                latest,
            }
        );
        assert!(r[0].to_string().contains("more than 7 days"), "{}", r[0]);
        assert_eq!(
            r[1],
            Refusal::MissingApproval {
                gate: ApprovalGate::Sg1
            }
        );
        // A statement that in practice never expires is refused too.
        let a = [
            approval_of(&st(UnixTime(i64::MAX)), 1),
            approval(&w, ApprovalGate::Sg2, 2),
        ];
        assert!(matches!(
            reasons(gate(&w, &ks, None, &a))[0],
            Refusal::ExpiresTooLate { .. }
        ));
    }

    #[test]
    fn the_verifier_judges_signatures_at_the_gates_now() {
        let w = world();
        let ks = disarmed(&w);
        let mut a2 = approval(&w, ApprovalGate::Sg2, 2);
        // Signer 2's key is revoked from w.now on: valid a second earlier, refused at now.
        a2.signature = [a2.signature, format!(":{}", w.now.0).into_bytes()].concat();
        let a = [approval(&w, ApprovalGate::Sg1, 1), a2];
        let r = reasons(gate(&w, &ks, None, &a));
        assert!(
            matches!(&r[0], Refusal::BadSignature { detail, .. } if detail.contains("revoked")),
            "{r:?}"
        );
        let earlier = World {
            now: UnixTime(w.now.0 - 1),
            ..world()
        };
        assert!(gate(&earlier, &ks, None, &a).is_ok());
    }

    #[test]
    fn refuses_tampered_statement_and_malformed_signature() {
        let w = world();
        let ks = disarmed(&w);
        let mut a1 = approval(&w, ApprovalGate::Sg1, 1);
        a1.statement = String::from_utf8(a1.statement)
            .unwrap()
            .replace("r-1", "r-2")
            .into_bytes();
        let mut a2 = approval(&w, ApprovalGate::Sg2, 2);
        a2.signature = b"-----BEGIN PGP garbage".to_vec();
        let r = reasons(gate(&w, &ks, None, &[a1, a2]));
        assert!(matches!(&r[0], Refusal::BadSignature { detail, .. } if detail == "bad signature"));
        assert!(
            matches!(&r[1], Refusal::BadSignature { detail, .. } if detail == "malformed armor")
        );
        let dup = [
            approval(&w, ApprovalGate::Sg1, 1),
            approval(&w, ApprovalGate::Sg1, 2),
        ];
        assert!(
            reasons(gate(&w, &ks, None, &dup)).contains(&Refusal::DuplicateApproval {
                gate: ApprovalGate::Sg1
            })
        );
    }

    #[test]
    fn statements_parse_strictly() {
        let w = world();
        let st = statement(&w, ApprovalGate::Sg2, UnixTime(2_000));
        let text = st.canonical_text();
        assert_eq!(ApprovalStatement::parse(text.as_bytes()).unwrap(), st);
        assert!(ApprovalStatement::parse(text.trim_end().as_bytes()).is_err());
        assert!(ApprovalStatement::parse(format!("{text}extra: 1\n").as_bytes()).is_err());
        assert!(ApprovalStatement::parse(text.replace("SG_2", "sg_2").as_bytes()).is_err());
        assert!(ApprovalStatement::parse(b"\xff").is_err());
    }

    #[test]
    fn an_approval_for_another_purpose_database_or_time_window_is_refused() {
        let w = world();
        let ks = disarmed(&w);
        let sg2 = approval(&w, ApprovalGate::Sg2, 2);
        let with = |f: &dyn Fn(&mut ApprovalStatement)| {
            let mut st = statement(&w, ApprovalGate::Sg1, UnixTime(2_000));
            f(&mut st);
            reasons(gate(&w, &ks, None, &[approval_of(&st, 1), sg2.clone()]))
        };
        // A hard-delete approval (for a revert run of the same name and plan) is not a
        // live-run approval.
        let r = with(&|st| {
            st.purpose = Purpose::HardDelete;
            st.change_set = Some(ChangeSetId::for_run(&RunId::new("r-0").unwrap()));
        });
        assert!(
            matches!(
                &r[0],
                Refusal::WrongPurpose {
                    named: Purpose::HardDelete,
                    expected: Purpose::LiveRun,
                    ..
                }
            ),
            "{r:?}"
        );
        assert!(
            r[0].to_string().contains("needs a live-run approval"),
            "{}",
            r[0]
        );
        // Another database of the same cluster, or the same name with another OID.
        let r = with(&|st| st.target.name = "staging".into());
        assert!(matches!(&r[0], Refusal::WrongTarget { named, .. } if named.name == "staging"));
        let r = with(&|st| st.target.oid += 1);
        assert!(matches!(&r[0], Refusal::WrongTarget { .. }), "{r:?}");
        // Not valid yet.
        let r = with(&|st| st.not_before = UnixTime(w.now.0 + 1));
        assert!(matches!(&r[0], Refusal::NotYetValid { .. }), "{r:?}");
        // The configured maximum, below the 7-day cap.
        let mut st = statement(&w, ApprovalGate::Sg1, UnixTime(w.now.0 + 2 * 3600));
        let a = [approval_of(&st, 1), sg2.clone()];
        let one_hour = ApprovalPolicy::with_max_hours(1).unwrap();
        let r = check_approvals(
            &ApprovalScope {
                purpose: Purpose::LiveRun,
                run_id: &w.run,
                plan_digest: w.plan,
                target: &w.target,
                change_set: None,
                findings_digest: None,
                diff_digest: None,
            },
            &a,
            &w.approvers,
            w.now,
            one_hour,
            &FakeVerifier,
        )
        .unwrap_err();
        assert!(matches!(&r[0], Refusal::ExpiresTooLate { .. }), "{r:?}");
        assert!(ApprovalPolicy::with_max_hours(169).is_err());
        assert!(ApprovalPolicy::with_max_hours(0).is_err());
        assert_eq!(ApprovalPolicy::default().max_lifetime_secs(), 24 * 3600);
        st.expires_at = UnixTime(w.now.0 + 3600);
        assert!(check_approvals(
            &ApprovalScope {
                purpose: Purpose::LiveRun,
                run_id: &w.run,
                plan_digest: w.plan,
                target: &w.target,
                change_set: None,
                findings_digest: None,
                diff_digest: None,
            },
            &[approval_of(&st, 1), sg2],
            &w.approvers,
            w.now,
            one_hour,
            &FakeVerifier,
        )
        .is_ok());
    }

    #[test]
    fn version_1_statements_and_inconsistent_v2_statements_are_refused() {
        let w = world();
        let v1 = format!(
            "cutter-approval/1\nrun_id: r-1\nplan_digest: sha256:{}\ntarget_system_identifier: 42\ngate: SG_1\nexpires_at: 2000\n",
            w.plan.to_hex()
        );
        let e = ApprovalStatement::parse(v1.as_bytes()).unwrap_err();
        assert!(e.contains("no longer accepted"), "{e}");
        let mut st = statement(&w, ApprovalGate::Sg1, UnixTime(2_000));
        st.purpose = Purpose::HardDelete;
        let e = ApprovalStatement::parse(st.canonical_text().as_bytes()).unwrap_err();
        assert!(e.contains("must name its change_set"), "{e}");
        st.purpose = Purpose::LiveRun;
        st.change_set = Some(ChangeSetId::for_run(&w.run));
        assert!(ApprovalStatement::parse(st.canonical_text().as_bytes()).is_err());
        st.change_set = None;
        st.findings_digest = Some(Sha256Digest::of(b"findings"));
        st.diff_digest = Some(Sha256Digest::of(b"diff"));
        assert_eq!(
            ApprovalStatement::parse(st.canonical_text().as_bytes()).unwrap(),
            st
        );
        st.target.name = "a\nb".into();
        assert!(ApprovalStatement::parse(st.canonical_text().as_bytes()).is_err());
    }

    #[test]
    fn a_plan_with_findings_needs_approvals_that_name_them() {
        let w = world();
        let findings = Sha256Digest::of(b"findings");
        let scope = ApprovalScope {
            purpose: Purpose::LiveRun,
            run_id: &w.run,
            plan_digest: w.plan,
            target: &w.target,
            change_set: None,
            findings_digest: Some(findings),
            diff_digest: None,
        };
        let check = |a: &[SignedApproval], scope: &ApprovalScope<'_>| {
            check_approvals(
                scope,
                a,
                &w.approvers,
                w.now,
                ApprovalPolicy::default(),
                &FakeVerifier,
            )
        };
        // Approvals that name no findings do not approve a plan that records some.
        let plain = [
            approval(&w, ApprovalGate::Sg1, 1),
            approval(&w, ApprovalGate::Sg2, 2),
        ];
        let r = check(&plain, &scope).unwrap_err();
        assert!(
            matches!(&r[0], Refusal::WrongFindings { named: None, expected: Some(e), .. } if *e == findings),
            "{r:?}"
        );
        assert!(
            r[0].to_string()
                .contains("does not sign off the plan's findings"),
            "{}",
            r[0]
        );
        // Naming them, they do; naming them for a plan without findings, they do not.
        let named: Vec<SignedApproval> = [(ApprovalGate::Sg1, 1), (ApprovalGate::Sg2, 2)]
            .into_iter()
            .map(|(g, who)| {
                let mut st = statement(&w, g, UnixTime(2_000));
                st.findings_digest = Some(findings);
                approval_of(&st, who)
            })
            .collect();
        assert!(check(&named, &scope).is_ok());
        let without = ApprovalScope {
            findings_digest: None,
            diff_digest: None,
            ..scope
        };
        assert!(matches!(
            &check(&named, &without).unwrap_err()[0],
            Refusal::WrongFindings {
                named: Some(_),
                expected: None,
                ..
            }
        ));
    }

    #[test]
    fn rehearsal_needs_a_different_server() {
        let w = world();
        let src = w.target.system_identifier;
        assert!(
            LiveAuthorization::rehearsal(w.run.clone(), w.plan, src, w.target.clone()).is_err()
        );
        let a = LiveAuthorization::rehearsal(w.run.clone(), w.plan, src, db(43, "production", 1))
            .unwrap();
        assert_eq!(a.target(), SystemIdentifier::new(43));
        assert_eq!(a.scope(), AuthorizationScope::Rehearsal);
    }
}
