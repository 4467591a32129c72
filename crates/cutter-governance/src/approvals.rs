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

use cutter_core::Sha256Digest;
use cutter_core::{
    check_approvals, ApprovalGate, ApprovalStatement, ApproverSet, Fingerprint, RunId,
    SignatureVerifier, SignedApproval, SystemIdentifier, UnixTime, VerifiedApproval,
};
use cutter_openpgp::{PublicKey, SecretKey};
use postgres::GenericClient;

use crate::error::{Error, Result};

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

/// Checks SG_1 and SG_2 for one run, plan and target with cutter-core's rules (each
/// signature verifies against an approver key, the statement names exactly this run,
/// plan and target and has not expired; SG_1 and SG_2 once each, from two distinct
/// keys). The verified approvals are what the gate and `dot_pair_signature` take; a
/// refusal lists every reason ([`Error::ApprovalsRefused`]).
pub fn verify_approvals(
    run_id: &RunId,
    plan_digest: Sha256Digest,
    target: SystemIdentifier,
    approvals: &[SignedApproval],
    approvers: &ApproverSet,
    verifier: &OpenPgpVerifier,
    now: UnixTime,
) -> Result<Vec<VerifiedApproval>> {
    check_approvals(
        run_id,
        plan_digest,
        target,
        approvals,
        approvers,
        now,
        verifier,
    )
    .map_err(|reasons| Error::ApprovalsRefused {
        run_id: run_id.clone(),
        reasons,
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
    pub statement: ApprovalStatement,
}

/// Re-verifies the SG_1/SG_2 signatures recorded for `run` in `dot_pair_signature`:
/// each signature must verify over its recorded statement with a key of `verifier`,
/// judged at `at` (key and subkey expiry, revocation and key flags, as the gate judges
/// at its `now`), by the recorded signer, who must be in `approvers`, and the statement
/// must name `run` and the recorded gate. The statement's `expires_at` is not re-checked:
/// it was checked when the run was authorized. Returns the records, or the first that
/// fails.
///
/// With `at` the time the gate accepted the approvals, a failure means the record is not
/// what the gate accepted; with a later `at` (now), a failure of a record that passed at
/// acceptance is a key revoked or expired since, not a broken history.
pub fn reverify_recorded_approvals<C: GenericClient>(
    client: &mut C,
    run: &RunId,
    approvers: &ApproverSet,
    verifier: &OpenPgpVerifier,
    at: UnixTime,
) -> Result<Vec<RecordedApproval>> {
    let rows = client
        .query(
            "SELECT id, gate, signer_fpr, statement, signature \
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
        let recorded_signer =
            Fingerprint::new(r.get::<_, &str>(2)).map_err(|e| bad(format!("signer_fpr: {e}")))?;
        let statement_text: &str = r.get(3);
        let statement = ApprovalStatement::parse(statement_text.as_bytes())
            .map_err(|e| bad(format!("statement: {e}")))?;
        let sig_text: &str = r.get(4);
        let sig = cutter_core::recorded_signature_bytes(sig_text).map_err(bad)?;
        let signer = verifier
            .verify(statement_text.as_bytes(), &sig, at)
            .map_err(|e| {
                bad(format!(
                    "signature does not verify at unix time {}: {e}",
                    at.0
                ))
            })?;
        if signer != recorded_signer {
            return Err(bad(format!(
                "signed by {signer}, but the row records {recorded_signer}"
            )));
        }
        if !approvers.0.contains(&signer) {
            return Err(bad(format!("signer {signer} is not a configured approver")));
        }
        if &statement.run_id != run || statement.gate != gate {
            return Err(bad(format!(
                "the statement approves run {} {}, but the row is for run {run} {gate}",
                statement.run_id, statement.gate
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
    /// `dot_pair_signature`, or `review_decision` for a HOLD release's approvals.
    pub table: String,
    /// The row id (the first row of the run where the failure is not tied to one row).
    pub id: i64,
    /// The run the row names.
    pub run_id: String,
    /// Why.
    pub detail: String,
}

/// What [`reverify_ledger_signatures`] found.
#[derive(Clone, PartialEq, Eq, Debug, Default, serde::Serialize)]
pub struct SignatureReport {
    /// Signature rows that re-verified at the time they were recorded.
    pub verified: u64,
    /// Runs those rows belong to.
    pub runs: u64,
    /// Rows written before cutter (covered by the chain's genesis anchor, not signed by
    /// OpenPGP keys cutter knows): not re-verified.
    pub before_cutter: u64,
    /// Rows that do not verify as the gate accepted them: forged or altered. Each is a
    /// failure of `ledger verify`.
    pub failures: Vec<SignatureFinding>,
    /// Rows that verified when recorded but not now: the key was revoked or expired
    /// since. Reported, not a failure: history stays valid.
    pub invalid_now: Vec<SignatureFinding>,
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
        for x in &self.invalid_now {
            writeln!(
                f,
                "  note: {} row id {} (run {}) verified when recorded but not now: {}",
                x.table, x.id, x.run_id, x.detail
            )?;
        }
        Ok(())
    }
}

/// Re-verifies **every** signature recorded in `dot_pair_signature` (but the rows a
/// genesis anchor covers) against `approvers`: each run's rows at the time they were
/// recorded (what the gate accepted), then at `now`. The database cannot check OpenPGP
/// signatures, so this is what makes a row forged with `psql` — a registered
/// fingerprint with a signature it did not make — visible to any reviewer with read
/// access.
pub fn reverify_ledger_signatures<C: GenericClient>(
    client: &mut C,
    approvers: &ApproverSet,
    verifier: &OpenPgpVerifier,
    now: UnixTime,
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
    let runs = client
        .query(
            "SELECT run_id, min(id), extract(epoch FROM min(created_at))::bigint, count(*) \
               FROM cutter_governance.dot_pair_signature WHERE id > $1 \
              GROUP BY run_id ORDER BY min(id)",
            &[&through],
        )
        .map_err(Error::db(
            "listing the runs of the recorded pair signatures",
        ))?;
    for r in runs {
        let (run_text, first, at, n): (String, i64, i64, i64) =
            (r.get(0), r.get(1), r.get(2), r.get(3));
        let finding = |id: i64, detail: String| SignatureFinding {
            table: "dot_pair_signature".into(),
            id,
            run_id: run_text.clone(),
            detail,
        };
        let run = match RunId::new(&run_text) {
            Ok(run) => run,
            Err(e) => {
                report.failures.push(finding(first, format!("run id: {e}")));
                continue;
            }
        };
        report.runs += 1;
        match reverify_recorded_approvals(client, &run, approvers, verifier, UnixTime(at)) {
            Ok(_) => report.verified += u64::try_from(n).unwrap_or(0),
            Err(Error::Corrupt { id, detail, .. }) => {
                report.failures.push(finding(id, detail));
                continue;
            }
            Err(other) => return Err(other),
        }
        match reverify_recorded_approvals(client, &run, approvers, verifier, now) {
            Ok(_) => {}
            Err(Error::Corrupt { id, detail, .. }) => report.invalid_now.push(finding(id, detail)),
            Err(other) => return Err(other),
        }
    }
    reverify_hold_releases(client, approvers, verifier, &mut report)?;
    Ok(report)
}

/// The approvals recorded in each `hold_released` decision (reference V4), re-verified
/// at the time the release was recorded: each must be a valid signature by the
/// recorded signer, a registered approver, over a statement naming the released run;
/// two distinct approvers per release.
fn reverify_hold_releases<C: GenericClient>(
    client: &mut C,
    approvers: &ApproverSet,
    verifier: &OpenPgpVerifier,
    report: &mut SignatureReport,
) -> Result<()> {
    let rows = client
        .query(
            "SELECT id, run_id, coalesce(payload -> 'approvals', '[]')::text, \
                    extract(epoch FROM created_at)::bigint \
               FROM cutter_governance.review_decision WHERE decision = $1 ORDER BY id",
            &[&crate::decisions::DECISION_HOLD_RELEASED],
        )
        .map_err(Error::db("reading the recorded HOLD releases"))?;
    for r in rows {
        let (id, run, approvals, at): (i64, String, String, i64) =
            (r.get(0), r.get(1), r.get(2), r.get(3));
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
        for a in &list {
            let sig = match cutter_core::recorded_signature_bytes(&a.signature) {
                Ok(b) => b,
                Err(e) => {
                    problem = Some(e);
                    break;
                }
            };
            let names_run = ApprovalStatement::parse(a.statement.as_bytes())
                .map(|st| st.run_id.as_str() == run)
                .unwrap_or(false);
            if !names_run {
                problem = Some(format!(
                    "{} approval: its statement does not name run {run}",
                    a.gate
                ));
                break;
            }
            match verifier.verify(a.statement.as_bytes(), &sig, UnixTime(at)) {
                Ok(signer)
                    if signer.to_string() == a.signer_fpr && approvers.0.contains(&signer) =>
                {
                    signers.insert(signer);
                }
                Ok(signer) => {
                    problem = Some(format!(
                        "{} approval: signed by {signer}, recorded as {}",
                        a.gate, a.signer_fpr
                    ));
                    break;
                }
                Err(e) => {
                    problem = Some(format!(
                        "{} approval signed as {}: {e}",
                        a.gate, a.signer_fpr
                    ));
                    break;
                }
            }
        }
        match problem {
            Some(p) => report.failures.push(fail(p)),
            None if signers.len() < 2 => report.failures.push(fail(format!(
                "a HOLD release needs two distinct approvers; {} verified",
                signers.len()
            ))),
            None => report.verified += list.len() as u64,
        }
    }
    Ok(())
}
