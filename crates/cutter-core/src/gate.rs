//! The gate: kill-switch, HOLD and the two signed, run-scoped approvals SG_1 and SG_2.
//! A live write needs a [`LiveAuthorization`], which only [`authorize`] (and, for a
//! throwaway rehearsal clone, [`LiveAuthorization::rehearsal`]) can construct.
//! Signatures are checked by an I/O crate behind [`SignatureVerifier`]; the gate decides
//! on what that verifier says.

use std::collections::BTreeSet;
use std::fmt;

use serde::{Deserialize, Serialize};

use crate::digest::Sha256Digest;
use crate::ids::{Fingerprint, RunId, SystemIdentifier, UnixTime};
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

/// What an approver signs: exactly one run, one plan, one target, one gate, until a time.
#[derive(Clone, PartialEq, Eq, Debug, Serialize, Deserialize)]
pub struct ApprovalStatement {
    /// The run approved.
    pub run_id: RunId,
    /// The digest of the plan approved.
    pub plan_digest: Sha256Digest,
    /// The server the run may write to.
    pub target: SystemIdentifier,
    /// SG_1 or SG_2.
    pub gate: ApprovalGate,
    /// The approval is void from this time on.
    pub expires_at: UnixTime,
}

const STATEMENT_HEADER: &str = "cutter-approval/1";

impl ApprovalStatement {
    /// The canonical text that is signed, byte for byte:
    ///
    /// ```text
    /// cutter-approval/1
    /// run_id: <run id>
    /// plan_digest: sha256:<64 hex>
    /// target_system_identifier: <decimal>
    /// gate: SG_1|SG_2
    /// expires_at: <unix seconds>
    /// ```
    ///
    /// Every line ends with `\n`; nothing else is allowed.
    pub fn canonical_text(&self) -> String {
        format!(
            "{STATEMENT_HEADER}\nrun_id: {}\nplan_digest: sha256:{}\ntarget_system_identifier: {}\ngate: {}\nexpires_at: {}\n",
            self.run_id,
            self.plan_digest.to_hex(),
            self.target,
            self.gate,
            self.expires_at.0
        )
    }

    /// Parses the canonical text strictly: the same lines, in the same order, and
    /// re-encoding must give back the same bytes.
    pub fn parse(bytes: &[u8]) -> Result<Self, String> {
        let text =
            std::str::from_utf8(bytes).map_err(|_| "the statement is not UTF-8".to_string())?;
        let mut lines = text.split('\n');
        if lines.next() != Some(STATEMENT_HEADER) {
            return Err(format!(
                "the statement must start with the line {STATEMENT_HEADER:?}"
            ));
        }
        let mut field = |key: &str| -> Result<String, String> {
            let line = lines.next().unwrap_or_default();
            line.strip_prefix(key)
                .and_then(|r| r.strip_prefix(": "))
                .map(str::to_string)
                .ok_or_else(|| format!("expected a line \"{key}: …\", found {:?}", shorten(line)))
        };
        let run_id = RunId::new(field("run_id")?).map_err(|e| e.to_string())?;
        let digest = field("plan_digest")?;
        let plan_digest = Sha256Digest::from_hex(
            digest
                .strip_prefix("sha256:")
                .ok_or("plan_digest must start with sha256:")?,
        )
        .map_err(|e| e.to_string())?;
        let target = field("target_system_identifier")?
            .parse::<u64>()
            .map(SystemIdentifier::new)
            .map_err(|_| "target_system_identifier must be a decimal integer".to_string())?;
        let gate_text = field("gate")?;
        let gate = ApprovalGate::parse(&gate_text)
            .filter(|g| g.name() == gate_text)
            .ok_or_else(|| format!("gate must be SG_1 or SG_2, found {:?}", shorten(&gate_text)))?;
        let expires_at = field("expires_at")?
            .parse::<i64>()
            .map(UnixTime)
            .map_err(|_| "expires_at must be unix seconds".to_string())?;
        let statement = Self {
            run_id,
            plan_digest,
            target,
            gate,
            expires_at,
        };
        if statement.canonical_text().as_bytes() != bytes {
            return Err("the statement is not in canonical form (extra lines, spaces or a missing final newline)".into());
        }
        Ok(statement)
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
    /// The signer is not in the configured approvers.
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
    /// The statement names another target.
    WrongTarget {
        /// The approval's source.
        source: String,
        /// The target it names.
        named: SystemIdentifier,
    },
    /// The approval has expired.
    Expired {
        /// The approval's source.
        source: String,
        /// When it expired.
        expires_at: UnixTime,
    },
    /// The approval expires too far in the future ([`MAX_APPROVAL_LIFETIME_SECS`]).
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
            Refusal::UnknownSigner { source, signer } => write!(f, "{source}: signer {signer} is not a configured approver"),
            Refusal::SameSigner { signer } => write!(f, "SG_1 and SG_2 are both signed by {signer}; two distinct approvers are required"),
            Refusal::DuplicateApproval { gate } => write!(f, "more than one {gate} approval was given"),
            Refusal::WrongRun { source, named } => write!(f, "{source}: approves run {named}, not this run"),
            Refusal::WrongPlan { source, named } => write!(f, "{source}: approves plan sha256:{named}, not this plan"),
            Refusal::WrongTarget { source, named } => write!(f, "{source}: approves target system identifier {named}, not this target"),
            Refusal::Expired { source, expires_at } => write!(f, "{source}: expired at unix time {}", expires_at.0),
            Refusal::ExpiresTooLate { source, expires_at, latest } => write!(f, "{source}: expires at unix time {}, more than 7 days from now (latest accepted: {}); sign a statement with an earlier expires_at", expires_at.0, latest.0),
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

/// Permission for one run to write one plan to one server. The adapter's mutating
/// methods take it and check that they are connected to `target()`.
///
/// Only the gate constructs it:
///
/// ```compile_fail,E0451
/// use cutter_core::gate::LiveAuthorization;
/// let forged = LiveAuthorization { run_id: todo!(), plan_digest: todo!(), target: todo!(), scope: todo!(), signers: vec![] };
/// ```
#[derive(Clone, PartialEq, Eq, Debug, Serialize)]
#[must_use = "an authorization that is not passed to the adapter authorizes nothing"]
pub struct LiveAuthorization {
    run_id: RunId,
    plan_digest: Sha256Digest,
    target: SystemIdentifier,
    scope: AuthorizationScope,
    signers: Vec<VerifiedApproval>,
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
        self.target
    }
    /// Live or rehearsal.
    pub fn scope(&self) -> AuthorizationScope {
        self.scope
    }
    /// The verified approvals (empty for a rehearsal).
    pub fn approvals(&self) -> &[VerifiedApproval] {
        &self.signers
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
        clone: SystemIdentifier,
    ) -> Result<Self, GateRefusal> {
        if source == clone {
            return Err(GateRefusal {
                reasons: vec![Refusal::RehearsalIsNotAClone {
                    system_identifier: source,
                }],
            });
        }
        Ok(Self {
            run_id,
            plan_digest,
            target: clone,
            scope: AuthorizationScope::Rehearsal,
            signers: Vec::new(),
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
    /// The server it would write to.
    pub target: SystemIdentifier,
    /// The kill-switch's state.
    pub kill_switch: &'a KillSwitch,
    /// The HOLD, if one is present.
    pub hold: Option<&'a HoldRecord>,
    /// The approvals presented.
    pub approvals: &'a [SignedApproval],
    /// Whose signatures count.
    pub approvers: &'a ApproverSet,
    /// The current time.
    pub now: UnixTime,
}

/// Checks approvals for `run_id`/`plan_digest`/`target`: each must parse, verify at
/// `now`, be by a configured approver, name exactly this run, plan and target, not be
/// expired and not expire more than [`MAX_APPROVAL_LIFETIME_SECS`] after `now`;
/// SG_1 and SG_2 must both be present, once each, from two distinct keys. Used by the
/// gate and by the operations that need both approvals (disarm, hold release).
pub fn check_approvals(
    run_id: &RunId,
    plan_digest: Sha256Digest,
    target: SystemIdentifier,
    approvals: &[SignedApproval],
    approvers: &ApproverSet,
    now: UnixTime,
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
        if &statement.run_id != run_id {
            reasons.push(Refusal::WrongRun {
                source: source.clone(),
                named: statement.run_id.clone(),
            });
        }
        if statement.plan_digest != plan_digest {
            reasons.push(Refusal::WrongPlan {
                source: source.clone(),
                named: statement.plan_digest,
            });
        }
        if statement.target != target {
            reasons.push(Refusal::WrongTarget {
                source: source.clone(),
                named: statement.target,
            });
        }
        let latest = UnixTime(now.0.saturating_add(MAX_APPROVAL_LIFETIME_SECS));
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
/// exactly this run, no HOLD is present, and SG_1 and SG_2 pass [`check_approvals`].
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
    let approvals = check_approvals(
        req.run_id,
        req.plan_digest,
        req.target,
        req.approvals,
        req.approvers,
        req.now,
        verifier,
    );
    match approvals {
        Ok(signers) if reasons.is_empty() => Ok(LiveAuthorization {
            run_id: req.run_id.clone(),
            plan_digest: req.plan_digest,
            target: req.target,
            scope: AuthorizationScope::Live,
            signers,
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
        pub target: SystemIdentifier,
        pub approvers: ApproverSet,
        pub now: UnixTime,
    }

    pub(crate) fn world() -> World {
        World {
            run: RunId::new("r-1").unwrap(),
            plan: Sha256Digest::of(b"plan"),
            target: SystemIdentifier::new(42),
            approvers: ApproverSet([fpr(1), fpr(2)].into()),
            now: UnixTime(1_000),
        }
    }

    /// A statement for `w`'s run, plan and target.
    fn statement(w: &World, gate: ApprovalGate, expires_at: UnixTime) -> ApprovalStatement {
        ApprovalStatement {
            run_id: w.run.clone(),
            plan_digest: w.plan,
            target: w.target,
            gate,
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
                target: w.target,
                kill_switch: ks,
                hold,
                approvals: a,
                approvers: &w.approvers,
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
        assert_eq!(auth.target(), w.target);
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
            target: SystemIdentifier::new(7),
            gate: ApprovalGate::Sg1,
            expires_at: UnixTime(999),
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
        st.target = w.target;
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
    fn rehearsal_needs_a_different_server() {
        let w = world();
        assert!(LiveAuthorization::rehearsal(w.run.clone(), w.plan, w.target, w.target).is_err());
        let a = LiveAuthorization::rehearsal(
            w.run.clone(),
            w.plan,
            w.target,
            SystemIdentifier::new(43),
        )
        .unwrap();
        assert_eq!(a.target(), SystemIdentifier::new(43));
        assert_eq!(a.scope(), AuthorizationScope::Rehearsal);
    }
}
