//! Approvals SG_1 and SG_2: OpenPGP detached signatures over cutter-core's canonical
//! [`ApprovalStatement`]. This module supplies the [`SignatureVerifier`] the core gate
//! decides with (approver public keys, cutter-openpgp), loads approvals from files, and
//! re-verifies the signatures recorded in `dot_pair_signature`.
//!
//! Invariant: a signature counts only if it verifies against one of the configured
//! approver keys; which key signed is the key's primary fingerprint.

use std::collections::BTreeMap;
use std::fmt;
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use cutter_core::{
    check_approvals, ApprovalGate, ApprovalPolicy, ApprovalScope, ApprovalStatement, ApproverSet,
    Fingerprint, Purpose, RecordedStatement, RunId, SignatureVerifier, SignedApproval, UnixTime,
    VerifiedApproval,
};
use cutter_openpgp::{PublicKey, SecretKey};
use postgres::GenericClient;

use crate::error::{Error, Result};
use crate::registry::Registry;

/// Verifies detached signatures against the approvers' public keys.
#[derive(Clone)]
pub struct OpenPgpVerifier {
    keys: Vec<PublicKey>,
}

impl fmt::Debug for OpenPgpVerifier {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("OpenPgpVerifier")
            .field("keys", &self.fingerprints())
            .finish()
    }
}

impl OpenPgpVerifier {
    /// A verifier trusting exactly `keys`.
    pub fn new(keys: Vec<PublicKey>) -> Self {
        Self { keys }
    }
    /// The primary fingerprints of the keys trusted.
    pub fn fingerprints(&self) -> Vec<Fingerprint> {
        self.keys.iter().map(PublicKey::fingerprint).collect()
    }
    /// The first valid user id of the trusted key with primary fingerprint `fp`.
    pub fn user_id(&self, fp: &Fingerprint) -> Option<String> {
        self.keys
            .iter()
            .find(|k| &k.fingerprint() == fp)?
            .user_ids()
            .into_iter()
            .next()
    }
}

impl SignatureVerifier for OpenPgpVerifier {
    fn verify(
        &self,
        data: &[u8],
        signature: &[u8],
        now: UnixTime,
    ) -> std::result::Result<Fingerprint, String> {
        cutter_openpgp::verify_detached(&self.keys, data, signature, system_time(now))
            .map_err(|e| e.to_string())
    }
}

/// `t` as a [`SystemTime`]; a time before the epoch is the epoch (no key is valid then).
fn system_time(t: UnixTime) -> SystemTime {
    UNIX_EPOCH + Duration::from_secs(u64::try_from(t.0).unwrap_or(0))
}

/// The approver set and its verifier, built from public keys given as bytes (armored or
/// binary), each with a label for messages (a file name). The same key twice is an error.
pub fn approvers_from_keys(keys: &[(PathBuf, Vec<u8>)]) -> Result<(ApproverSet, OpenPgpVerifier)> {
    if keys.is_empty() {
        return Err(Error::NoApprovers);
    }
    let mut seen: BTreeMap<Fingerprint, PathBuf> = BTreeMap::new();
    let mut parsed = Vec::with_capacity(keys.len());
    for (path, bytes) in keys {
        let key = PublicKey::from_bytes(bytes).map_err(|source| Error::ApproverKey {
            path: path.clone(),
            source,
        })?;
        let fp = key.fingerprint();
        if let Some(first) = seen.get(&fp) {
            return Err(Error::DuplicateApprover {
                fingerprint: fp,
                first: first.clone(),
                second: path.clone(),
            });
        }
        seen.insert(fp, path.clone());
        parsed.push(key);
    }
    Ok((
        ApproverSet(seen.into_keys().collect()),
        OpenPgpVerifier::new(parsed),
    ))
}

/// Reads the approvers' public key files (one key per file) into the approver set and
/// its verifier.
pub fn load_approvers<P: AsRef<Path>>(paths: &[P]) -> Result<(ApproverSet, OpenPgpVerifier)> {
    let mut keys = Vec::with_capacity(paths.len());
    for p in paths {
        let path = p.as_ref().to_path_buf();
        let bytes = std::fs::read(&path).map_err(|source| Error::Io {
            what: "approver public key",
            path: path.clone(),
            source,
        })?;
        keys.push((path, bytes));
    }
    approvers_from_keys(&keys)
}

/// Reads an approval: the statement file and its detached signature file
/// (`gpg --detach-sign [--armor] statement`).
pub fn read_signed_approval(statement: &Path, signature: &Path) -> Result<SignedApproval> {
    let read = |what, p: &Path| {
        std::fs::read(p).map_err(|source| Error::Io {
            what,
            path: p.to_path_buf(),
            source,
        })
    };
    Ok(SignedApproval {
        statement: read("approval statement", statement)?,
        signature: read("approval signature", signature)?,
        source: statement.display().to_string(),
    })
}

/// Signs `statement` with `secret` (an approver's key): the canonical text and an armored
/// detached signature over it, as `gpg --detach-sign --armor` would make.
pub fn sign_approval(
    statement: &ApprovalStatement,
    secret: &SecretKey,
    passphrase: &cutter_openpgp::Passphrase,
    source: &str,
) -> Result<SignedApproval> {
    let text = statement.canonical_text();
    let signature = cutter_openpgp::sign_detached(secret, passphrase, text.as_bytes())
        .map_err(|e| Error::Invalid(format!("signing the {} statement: {e}", statement.gate)))?;
    Ok(SignedApproval {
        statement: text.into_bytes(),
        signature: signature.into_bytes(),
        source: source.to_string(),
    })
}

/// Checks SG_1 and SG_2 for `scope` with cutter-core's rules (each signature verifies
/// against an approver key at `now`, the statement names exactly the scope's purpose,
/// run, plan and database and is valid now and within the policy; SG_1 and SG_2 once
/// each, from two distinct keys). The verified approvals are what the gate and the
/// ledger take; a refusal lists every reason ([`Error::ApprovalsRefused`]).
pub fn verify_approvals(
    scope: &ApprovalScope<'_>,
    approvals: &[SignedApproval],
    approvers: &ApproverSet,
    verifier: &OpenPgpVerifier,
    now: UnixTime,
    policy: ApprovalPolicy,
) -> Result<Vec<VerifiedApproval>> {
    check_approvals(scope, approvals, approvers, now, policy, verifier).map_err(|reasons| {
        Error::ApprovalsRefused {
            run_id: scope.run_id.clone(),
            reasons,
        }
    })
}

/// A pair signature as recorded, re-verified.
#[derive(Clone, PartialEq, Eq, Debug, serde::Serialize)]
pub struct RecordedApproval {
    /// `dot_pair_signature.id`.
    pub id: i64,
    /// SG_1 or SG_2.
    pub gate: ApprovalGate,
    /// The signer recorded, confirmed by the signature.
    pub signer: Fingerprint,
    /// The statement signed.
    pub statement: RecordedStatement,
}

/// Whose signatures `ledger verify` re-verifies against: the registry (reference V5),
/// and, for statements recorded before it (`cutter-approval/1`), optionally the approver
/// keys the configuration named then.
#[derive(Clone, Debug)]
pub struct Reverifier<'a> {
    /// The registry, with every key ever registered.
    pub registry: &'a Registry,
    /// Its keys.
    pub verifier: OpenPgpVerifier,
    /// Keys that signed `cutter-approval/1` statements before the registry existed.
    pub legacy: Option<(&'a ApproverSet, &'a OpenPgpVerifier)>,
}

impl<'a> Reverifier<'a> {
    /// A reverifier over `registry` (and `legacy` keys for version 1 statements).
    pub fn new(
        registry: &'a Registry,
        legacy: Option<(&'a ApproverSet, &'a OpenPgpVerifier)>,
    ) -> Result<Self> {
        Ok(Self {
            registry,
            verifier: registry.verifier()?,
            legacy,
        })
    }

    /// Checks one recorded approval: the signature over `statement` verifies at `at`
    /// (unix ms) by `recorded_signer`; a version 2 statement's signer is a registry entry
    /// that may approve its purpose at `at` (`decision`: the record judged, whose own
    /// revocation does not count), a version 1 statement's a registered or legacy key.
    /// Returns the statement, or why not.
    fn check(
        &self,
        statement: &str,
        signature: &str,
        recorded_signer: &str,
        at_ms: i64,
        decision: Option<i64>,
    ) -> std::result::Result<(Fingerprint, RecordedStatement), String> {
        let parsed = RecordedStatement::parse(statement.as_bytes())
            .map_err(|e| format!("statement: {e}"))?;
        let sig = cutter_core::recorded_signature_bytes(signature)?;
        let at = UnixTime(at_ms.div_euclid(1000));
        let by_registry = self.verifier.verify(statement.as_bytes(), &sig, at);
        let signer = match (&by_registry, parsed.version, self.legacy) {
            (Ok(f), _, _) => f.clone(),
            (Err(_), 1, Some((set, legacy))) => {
                let f = legacy
                    .verify(statement.as_bytes(), &sig, at)
                    .map_err(|e| format!("signature does not verify at unix time {}: {e}", at.0))?;
                if !set.0.contains(&f) {
                    return Err(format!("signer {f} is not a configured approver"));
                }
                f
            }
            (Err(e), _, _) => {
                return Err(format!(
                "signature does not verify with any registered approver's key at unix time {}: {e}",
                at.0
            ))
            }
        };
        if signer.to_string() != recorded_signer {
            return Err(format!(
                "signed by {signer}, but the row records {recorded_signer}"
            ));
        }
        if let Some(purpose) = parsed.purpose {
            match self.registry.get(&signer) {
                None => return Err(format!("signer {signer} is not a registered approver")),
                Some(entry) => {
                    if let Some(why) = entry.refusal_at(purpose, at_ms, decision) {
                        return Err(why);
                    }
                }
            }
        }
        Ok((signer, parsed))
    }

    /// Whether a signer valid at acceptance has been revoked since: the finding, if so.
    fn revoked_since(&self, signer: &Fingerprint, at_ms: i64) -> Option<String> {
        let entry = self.registry.get(signer)?;
        let r = entry.revoked.as_ref()?;
        (r.at_ms > at_ms).then(|| {
            format!(
                "approver {signer} ({}) was revoked since, at {} (review_decision {}); the approval stays valid history",
                entry.name, r.at, r.decision_id
            )
        })
    }
}

/// Re-verifies the SG_1/SG_2 signatures recorded for `run` in `dot_pair_signature`, as
/// the gate accepted them: each at the time it was recorded, by the recorded signer,
/// over a statement naming `run` and the row's gate, with purpose `live-run` for a
/// version 2 statement. Returns the records, or the first that fails
/// ([`Error::Corrupt`]).
pub fn reverify_recorded_approvals<C: GenericClient>(
    client: &mut C,
    run: &RunId,
    reverifier: &Reverifier<'_>,
) -> Result<Vec<RecordedApproval>> {
    let rows = client
        .query(
            "SELECT id, gate, signer_fpr, statement, signature, \
                    (extract(epoch FROM created_at) * 1000)::bigint \
             FROM cutter_governance.dot_pair_signature WHERE run_id = $1 ORDER BY id",
            &[&run.as_str()],
        )
        .map_err(Error::db(format!(
            "reading the pair signatures of run {run}"
        )))?;
    let mut out = Vec::with_capacity(rows.len());
    for r in rows {
        let id: i64 = r.get(0);
        let bad = |detail: String| Error::Corrupt {
            table: crate::chain::LedgerTable::DotPairSignature,
            id,
            detail,
        };
        let gate_text: &str = r.get(1);
        let gate = ApprovalGate::parse(gate_text)
            .ok_or_else(|| bad(format!("gate {gate_text:?} is not SG_1 or SG_2")))?;
        let (signer, statement) = reverifier
            .check(r.get(3), r.get(4), r.get(2), r.get(5), None)
            .map_err(bad)?;
        if &statement.run_id != run || statement.gate != gate {
            return Err(bad(format!(
                "the statement approves run {} {}, but the row is for run {run} {gate}",
                statement.run_id, statement.gate
            )));
        }
        if statement.purpose.is_some_and(|p| p != Purpose::LiveRun) {
            return Err(bad(format!(
                "the statement approves {}, not a live run",
                statement.purpose.map_or("", Purpose::name)
            )));
        }
        out.push(RecordedApproval {
            id,
            gate,
            signer,
            statement,
        });
    }
    Ok(out)
}

/// One recorded signature that did not re-verify.
#[derive(Clone, PartialEq, Eq, Debug, serde::Serialize)]
pub struct SignatureFinding {
    /// `dot_pair_signature`, or `review_decision` for the approvals a decision records.
    pub table: String,
    /// The row id.
    pub id: i64,
    /// The run the row names.
    pub run_id: String,
    /// Why.
    pub detail: String,
}

/// What [`reverify_ledger_signatures`] found.
#[derive(Clone, PartialEq, Eq, Debug, Default, serde::Serialize)]
pub struct SignatureReport {
    /// Signatures that re-verified as the gate accepted them.
    pub verified: u64,
    /// Runs whose pair signatures were re-verified.
    pub runs: u64,
    /// Rows written before cutter (covered by the chain's genesis anchor, not signed by
    /// OpenPGP keys cutter knows): not re-verified.
    pub before_cutter: u64,
    /// Records that do not verify as the gate accepted them: forged or altered. Each is
    /// a failure of `ledger verify`.
    pub failures: Vec<SignatureFinding>,
    /// Records whose signer was revoked after the gate accepted them. Reported, not a
    /// failure: history stays valid.
    pub revoked_since: Vec<SignatureFinding>,
}

impl SignatureReport {
    /// Whether every recorded signature re-verified as accepted.
    pub fn is_ok(&self) -> bool {
        self.failures.is_empty()
    }
}

impl fmt::Display for SignatureReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "approval signatures: {} re-verified over {} run(s)",
            self.verified, self.runs
        )?;
        if self.before_cutter > 0 {
            write!(
                f,
                ", {} written before cutter (anchored, not re-verified)",
                self.before_cutter
            )?;
        }
        writeln!(f)?;
        for x in &self.failures {
            writeln!(
                f,
                "  FAILED {} row id {} (run {}): {}",
                x.table, x.id, x.run_id, x.detail
            )?;
        }
        for x in &self.revoked_since {
            writeln!(
                f,
                "  finding: {} row id {} (run {}): {}",
                x.table, x.id, x.run_id, x.detail
            )?;
        }
        Ok(())
    }
}

/// Re-verifies **every** signature the ledger records (but the rows a genesis anchor
/// covers): the pair signatures of every run (`dot_pair_signature`), and the approvals
/// of every HOLD release and approver change (`review_decision`), each at the time it
/// was recorded, against the registry's keys. The database cannot check OpenPGP
/// signatures, so this is what makes a row forged with `psql` — a registered
/// fingerprint with a signature it did not make — visible to any reviewer with read
/// access. A signer revoked since is a finding, not a failure.
pub fn reverify_ledger_signatures<C: GenericClient>(
    client: &mut C,
    reverifier: &Reverifier<'_>,
) -> Result<SignatureReport> {
    let through = crate::chain::read_anchor(client, crate::chain::LedgerTable::DotPairSignature)?
        .map_or(0, |a| a.through_id);
    let mut report = SignatureReport::default();
    let before: i64 = client
        .query_one(
            "SELECT count(*) FROM cutter_governance.dot_pair_signature WHERE id <= $1",
            &[&through],
        )
        .map_err(Error::db(
            "counting the pair signatures written before cutter",
        ))?
        .get(0);
    report.before_cutter = u64::try_from(before).unwrap_or(0);
    let rows = client
        .query(
            "SELECT id, run_id, gate, signer_fpr, statement, signature, \
                    (extract(epoch FROM created_at) * 1000)::bigint \
               FROM cutter_governance.dot_pair_signature WHERE id > $1 ORDER BY id",
            &[&through],
        )
        .map_err(Error::db("reading the recorded pair signatures"))?;
    let mut runs = std::collections::BTreeSet::new();
    for r in rows {
        let (id, run, gate): (i64, String, String) = (r.get(0), r.get(1), r.get(2));
        let at: i64 = r.get(6);
        let finding = |detail: String| SignatureFinding {
            table: "dot_pair_signature".into(),
            id,
            run_id: run.clone(),
            detail,
        };
        runs.insert(run.clone());
        match reverifier.check(r.get(4), r.get(5), r.get(3), at, None) {
            Err(detail) => report.failures.push(finding(detail)),
            Ok((_, st)) if st.run_id.as_str() != run || st.gate.name() != gate => {
                report.failures.push(finding(format!(
                    "the statement approves run {} {}, but the row is for run {run} {gate}",
                    st.run_id, st.gate
                )))
            }
            Ok((_, st)) if st.purpose.is_some_and(|p| p != Purpose::LiveRun) => {
                report.failures.push(finding(format!(
                    "the statement approves {}, not a live run",
                    st.purpose.map_or("", Purpose::name)
                )))
            }
            Ok((signer, _)) => {
                report.verified += 1;
                if let Some(d) = reverifier.revoked_since(&signer, at) {
                    report.revoked_since.push(finding(d));
                }
            }
        }
    }
    report.runs = runs.len() as u64;
    reverify_decisions(client, reverifier, &mut report)?;
    Ok(report)
}

/// The approvals recorded in `hold_released` decisions (purpose hold-release, naming the
/// released run), `hard_delete_approved` ones (purpose hard-delete, naming the revert
/// run) and approver changes after bootstrap (purpose approver-change, naming the
/// change), re-verified at the time each decision was recorded: two distinct
/// approvers per decision.
fn reverify_decisions<C: GenericClient>(
    client: &mut C,
    reverifier: &Reverifier<'_>,
    report: &mut SignatureReport,
) -> Result<()> {
    let rows = client
        .query(
            "SELECT id, run_id, decision, coalesce(payload -> 'approvals', '[]')::text, \
                    coalesce((payload ->> 'bootstrap')::boolean, false), \
                    (extract(epoch FROM created_at) * 1000)::bigint \
               FROM cutter_governance.review_decision WHERE decision = ANY($1) ORDER BY id",
            &[&vec![
                crate::decisions::DECISION_HOLD_RELEASED,
                crate::decisions::DECISION_HARD_DELETE_APPROVED,
                crate::registry::DECISION_APPROVER_ADDED,
                crate::registry::DECISION_APPROVER_REVOKED,
            ]],
        )
        .map_err(Error::db(
            "reading the recorded HOLD releases and approver changes",
        ))?;
    for r in rows {
        let (id, run, decision, approvals, bootstrap, at): (
            i64,
            String,
            String,
            String,
            bool,
            i64,
        ) = (r.get(0), r.get(1), r.get(2), r.get(3), r.get(4), r.get(5));
        if bootstrap {
            continue;
        }
        let purpose = match decision.as_str() {
            crate::decisions::DECISION_HOLD_RELEASED => Purpose::HoldRelease,
            crate::decisions::DECISION_HARD_DELETE_APPROVED => Purpose::HardDelete,
            _ => Purpose::ApproverChange,
        };
        let fail = |detail: String| SignatureFinding {
            table: "review_decision".into(),
            id,
            run_id: run.clone(),
            detail,
        };
        let list: Vec<crate::decisions::ReleaseApproval> = match serde_json::from_str(&approvals) {
            Ok(l) => l,
            Err(e) => {
                report.failures.push(fail(format!("approvals: {e}")));
                continue;
            }
        };
        let mut signers = std::collections::BTreeSet::new();
        let mut problem = None;
        let mut revoked = Vec::new();
        for a in &list {
            match reverifier.check(&a.statement, &a.signature, &a.signer_fpr, at, Some(id)) {
                Err(e) => {
                    problem = Some(format!(
                        "{} approval signed as {}: {e}",
                        a.gate, a.signer_fpr
                    ));
                    break;
                }
                Ok((_, st)) if st.run_id.as_str() != run => {
                    problem = Some(format!(
                        "{} approval: its statement names {}, not {run}",
                        a.gate, st.run_id
                    ));
                    break;
                }
                Ok((_, st)) if st.purpose.is_some_and(|p| p != purpose) => {
                    problem = Some(format!(
                        "{} approval: its statement approves {}, not {purpose}",
                        a.gate,
                        st.purpose.map_or("", Purpose::name)
                    ));
                    break;
                }
                Ok((signer, _)) => {
                    if let Some(d) = reverifier.revoked_since(&signer, at) {
                        revoked.push(d);
                    }
                    signers.insert(signer);
                }
            }
        }
        match problem {
            Some(p) => report.failures.push(fail(p)),
            None if signers.len() < 2 => report.failures.push(fail(format!(
                "{decision} needs two distinct approvers; {} verified",
                signers.len()
            ))),
            None => {
                report.verified += list.len() as u64;
                report.revoked_since.extend(revoked.into_iter().map(fail));
            }
        }
    }
    Ok(())
}
