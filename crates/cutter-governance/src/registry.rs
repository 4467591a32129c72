//! The approver registry (reference V5, `cutter_governance.approver`): who may approve
//! what. The gate takes approver keys from here only. The schema owner changes it, and
//! every change appends a ledger decision (`approver_added` / `approver_revoked`):
//! the first two approvers are registered by the owner alone (bootstrap); every later
//! change carries an `approver-change` approval (SG_1 + SG_2) by two registered
//! approvers. The database checks what it can of that approval (see V5); the
//! signatures are checked here, before anything is written, and re-verified by
//! `ledger verify`.

use std::collections::BTreeSet;
use std::fmt;

use cutter_core::{ApproverSet, Fingerprint, Purpose, RunId, Sha256Digest, VerifiedApproval};
use cutter_openpgp::PublicKey;
use postgres::GenericClient;
use serde::Serialize;
use serde_json::json;

use crate::approvals::OpenPgpVerifier;
use crate::chain::{append, lock_tables, LedgerTable};
use crate::common::{check_actor, now_text};
use crate::decisions::{decision_row, ReleaseApproval};
use crate::error::{Error, Result};

/// The decision recording an approver's registration.
pub const DECISION_APPROVER_ADDED: &str = "approver_added";
/// The decision recording an approver's revocation.
pub const DECISION_APPROVER_REVOKED: &str = "approver_revoked";

/// One registry entry.
#[derive(Clone, PartialEq, Eq, Debug, Serialize)]
pub struct Approver {
    /// The key's primary fingerprint.
    pub fingerprint: Fingerprint,
    /// Who the approver is.
    pub name: String,
    /// The public key, armored.
    #[serde(skip)]
    pub public_key: String,
    /// What the approver may approve.
    pub purposes: BTreeSet<Purpose>,
    /// The login role that registered the entry.
    pub added_by: String,
    /// When (RFC 3339).
    pub added_at: String,
    /// `added_at` in unix milliseconds.
    pub added_at_ms: i64,
    /// The `review_decision` recording the registration.
    pub added_decision_id: i64,
    /// Who revoked it, when (RFC 3339, unix) and the decision, if revoked.
    pub revoked: Option<Revocation>,
}

/// When and by whom an entry was revoked.
#[derive(Clone, PartialEq, Eq, Debug, Serialize)]
pub struct Revocation {
    /// The login role.
    pub by: String,
    /// RFC 3339.
    pub at: String,
    /// Unix milliseconds.
    pub at_ms: i64,
    /// The `review_decision` recording it.
    pub decision_id: i64,
}

impl Approver {
    /// Why the entry may not approve `purpose` at `at_ms` (unix milliseconds), or
    /// `None`: it must be registered by then, not revoked by then (a revocation recorded
    /// by `decision`, the record being judged, does not count against it), and allowed
    /// the purpose.
    pub fn refusal_at(
        &self,
        purpose: Purpose,
        at_ms: i64,
        decision: Option<i64>,
    ) -> Option<String> {
        if !self.purposes.contains(&purpose) {
            return Some(format!(
                "approver {} ({}) may not approve {purpose}",
                self.fingerprint, self.name
            ));
        }
        if self.added_at_ms > at_ms {
            return Some(format!(
                "approver {} ({}) was registered only at {}, after the approval was recorded",
                self.fingerprint, self.name, self.added_at
            ));
        }
        match &self.revoked {
            Some(r) if r.at_ms <= at_ms && Some(r.decision_id) != decision => Some(format!(
                "approver {} ({}) had been revoked at {} (review_decision {})",
                self.fingerprint, self.name, r.at, r.decision_id
            )),
            _ => None,
        }
    }
}

/// The registry as read from the database.
#[derive(Clone, Debug, Default)]
pub struct Registry {
    /// Every entry, revoked ones included, in registration order.
    pub approvers: Vec<Approver>,
}

impl Registry {
    /// The approvers that may approve `purpose` now (registered, unrevoked).
    pub fn approver_set(&self, purpose: Purpose) -> ApproverSet {
        ApproverSet(
            self.approvers
                .iter()
                .filter(|a| a.revoked.is_none() && a.purposes.contains(&purpose))
                .map(|a| a.fingerprint.clone())
                .collect(),
        )
    }

    /// The entry with this fingerprint.
    pub fn get(&self, fingerprint: &Fingerprint) -> Option<&Approver> {
        self.approvers
            .iter()
            .find(|a| &a.fingerprint == fingerprint)
    }

    /// A verifier trusting every registered key, revoked ones included (which entry may
    /// approve what, and when, is decided by [`Registry::approver_set`] and the entries'
    /// `purposes` and `revoked`).
    pub fn verifier(&self) -> Result<OpenPgpVerifier> {
        let mut keys = Vec::with_capacity(self.approvers.len());
        for a in &self.approvers {
            let key = PublicKey::from_bytes(a.public_key.as_bytes()).map_err(|e| {
                Error::Invalid(format!(
                    "cutter_governance.approver {}: the registered public key does not parse: {e}",
                    a.fingerprint
                ))
            })?;
            if key.fingerprint() != a.fingerprint {
                return Err(Error::Invalid(format!(
                    "cutter_governance.approver {}: the registered public key is {}, not the key of the entry",
                    a.fingerprint,
                    key.fingerprint()
                )));
            }
            keys.push(key);
        }
        Ok(OpenPgpVerifier::new(keys))
    }

    /// Whether the first two approvers are still to be registered (bootstrap).
    pub fn needs_bootstrap(&self) -> bool {
        self.approvers.len() < 2
    }
}

/// Reads the registry (the writer and the reader may; nobody but the owner writes it).
pub fn load_registry<C: GenericClient>(client: &mut C) -> Result<Registry> {
    let rows = client
        .query(
            "SELECT fingerprint, name, public_key, purposes, added_by, \
                    to_char(added_at AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS\"Z\"'), \
                    (extract(epoch FROM added_at) * 1000)::bigint, added_decision_id, revoked_by, \
                    to_char(revoked_at AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS\"Z\"'), \
                    (extract(epoch FROM revoked_at) * 1000)::bigint, revoked_decision_id \
               FROM cutter_governance.approver ORDER BY id",
            &[],
        )
        .map_err(Error::db(
            "reading the approver registry (cutter_governance.approver, reference V5; \
             `cutter db upgrade` installs it)",
        ))?;
    let mut approvers = Vec::with_capacity(rows.len());
    for r in rows {
        let fpr: String = r.get(0);
        let fingerprint = Fingerprint::new(&fpr).map_err(|e| {
            Error::Invalid(format!(
                "cutter_governance.approver {fpr}: fingerprint: {e}"
            ))
        })?;
        let purposes: Vec<String> = r.get(3);
        let purposes = purposes
            .iter()
            .map(|p| {
                Purpose::parse(p).ok_or_else(|| {
                    Error::Invalid(format!(
                        "cutter_governance.approver {fpr}: unknown purpose {p:?}"
                    ))
                })
            })
            .collect::<Result<BTreeSet<_>>>()?;
        let revoked_by: Option<String> = r.get(8);
        approvers.push(Approver {
            fingerprint,
            name: r.get(1),
            public_key: r.get(2),
            purposes,
            added_by: r.get(4),
            added_at: r.get(5),
            added_at_ms: r.get(6),
            added_decision_id: r.get(7),
            revoked: revoked_by.map(|by| Revocation {
                by,
                at: r.get(9),
                at_ms: r.get(10),
                decision_id: r.get(11),
            }),
        });
    }
    Ok(Registry { approvers })
}

/// Add or revoke.
#[derive(Clone, Copy, PartialEq, Eq, Debug, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum ChangeAction {
    /// Register an approver.
    Add,
    /// Revoke one.
    Revoke,
}

impl ChangeAction {
    /// `add` or `revoke`.
    pub fn name(self) -> &'static str {
        match self {
            ChangeAction::Add => "add",
            ChangeAction::Revoke => "revoke",
        }
    }
}

/// A change of the registry: what an `approver-change` approval approves.
#[derive(Clone, PartialEq, Eq, Debug)]
pub struct ApproverChange {
    /// Add or revoke.
    pub action: ChangeAction,
    /// The approver's fingerprint.
    pub fingerprint: Fingerprint,
    /// The approver's name.
    pub name: String,
    /// The purposes (in [`Purpose::ALL`] order).
    pub purposes: BTreeSet<Purpose>,
    /// The public key, armored.
    pub public_key: String,
}

impl ApproverChange {
    /// A change to register `public_key` (armored) as `name`, allowed `purposes`.
    pub fn add(public_key: &str, name: &str, purposes: BTreeSet<Purpose>) -> Result<Self> {
        let key = PublicKey::from_bytes(public_key.as_bytes())
            .map_err(|e| Error::Invalid(format!("the approver's public key: {e}")))?;
        let armored = key
            .to_armored()
            .map_err(|e| Error::Invalid(format!("armoring the approver's public key: {e}")))?;
        check_name(name)?;
        if purposes.is_empty() {
            return Err(Error::Invalid(
                "an approver needs at least one purpose".into(),
            ));
        }
        Ok(Self {
            action: ChangeAction::Add,
            fingerprint: key.fingerprint(),
            name: name.to_string(),
            purposes,
            public_key: armored,
        })
    }

    /// A change to revoke `entry`.
    pub fn revoke(entry: &Approver) -> Self {
        Self {
            action: ChangeAction::Revoke,
            fingerprint: entry.fingerprint.clone(),
            name: entry.name.clone(),
            purposes: entry.purposes.clone(),
            public_key: entry.public_key.clone(),
        }
    }

    fn purposes_text(&self) -> String {
        Purpose::ALL
            .iter()
            .filter(|p| self.purposes.contains(p))
            .map(|p| p.name())
            .collect::<Vec<_>>()
            .join(",")
    }

    /// The canonical text whose SHA-256 an approver-change statement names as its
    /// `plan_digest` (the database recomputes it: `fn_approver_change_digest`).
    pub fn canonical_text(&self) -> String {
        format!(
            "cutter-approver-change/1\naction: {}\nfingerprint: {}\nname: {}\npurposes: {}\npublic_key_sha256: {}\n",
            self.action.name(),
            self.fingerprint,
            self.name,
            self.purposes_text(),
            Sha256Digest::of(self.public_key.as_bytes()).to_hex()
        )
    }

    /// The digest an approver-change approval names.
    pub fn digest(&self) -> Sha256Digest {
        Sha256Digest::of(self.canonical_text().as_bytes())
    }

    /// The id an approver-change approval names as its `run_id`:
    /// `approver-<action>-<first 16 hex digits of the fingerprint>`.
    pub fn change_id(&self) -> RunId {
        let fpr = self.fingerprint.to_string();
        RunId::new(format!(
            "approver-{}-{}",
            self.action.name(),
            &fpr[..16.min(fpr.len())]
        ))
        .expect("a fingerprint's hex digits make a valid run id")
    }
}

impl fmt::Display for ApproverChange {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{} approver {} ({}) for {}",
            self.action.name(),
            self.fingerprint,
            self.name,
            self.purposes_text()
        )
    }
}

fn check_name(name: &str) -> Result<()> {
    if name.trim().is_empty() || name.chars().any(char::is_control) || name.len() > 200 {
        return Err(Error::Invalid(format!(
            "approver name {name:?}: 1 to 200 bytes, no control characters"
        )));
    }
    Ok(())
}

/// Applies `change` to the registry, as the schema owner, in one transaction: appends
/// the ledger decision (with the verified approvals, or `bootstrap` for the first two
/// approvers), then inserts or revokes the entry. The database refuses a change its
/// decision does not record, a bootstrap once two approvers exist, and (after
/// bootstrap) approvals that are not two registered approvers' approver-change approvals
/// for exactly this change. Returns the decision's id.
pub fn apply_change<C: GenericClient>(
    client: &mut C,
    change: &ApproverChange,
    approvals: &[VerifiedApproval],
    bootstrap: bool,
    actor: &str,
) -> Result<i64> {
    check_actor(actor)?;
    let what = change.to_string();
    let mut tx = client
        .transaction()
        .map_err(Error::db(format!("starting: {what}")))?;
    lock_tables(&mut tx, &[LedgerTable::ReviewDecision])?;
    let recorded: Vec<ReleaseApproval> = approvals.iter().map(ReleaseApproval::from).collect();
    let mut payload = json!({
        "fingerprint": change.fingerprint.to_string(),
        "name": change.name,
        "purposes": change.purposes.iter().map(|p| p.name()).collect::<Vec<_>>(),
        "public_key_sha256": Sha256Digest::of(change.public_key.as_bytes()).to_hex(),
        "change_digest": format!("sha256:{}", change.digest().to_hex()),
        "approvals": recorded,
    });
    if bootstrap {
        payload["bootstrap"] = json!(true);
    }
    let now = now_text(&mut tx)?;
    let decision = match change.action {
        ChangeAction::Add => DECISION_APPROVER_ADDED,
        ChangeAction::Revoke => DECISION_APPROVER_REVOKED,
    };
    let app = append(
        &mut tx,
        LedgerTable::ReviewDecision,
        &[decision_row(
            &change.change_id(),
            None,
            decision,
            &payload,
            actor,
            now,
        )],
    )?
    .ok_or_else(|| Error::Invalid(format!("{what}: the ledger decision was not appended")))?;
    let id = app.first_id();
    let purposes: Vec<&str> = Purpose::ALL
        .iter()
        .filter(|p| change.purposes.contains(p))
        .map(|p| p.name())
        .collect();
    let n = match change.action {
        ChangeAction::Add => tx.execute(
            "INSERT INTO cutter_governance.approver \
                 (fingerprint, name, public_key, purposes, added_by, added_decision_id) \
             VALUES ($1, $2, $3, $4, session_user, $5)",
            &[
                &change.fingerprint.to_string(),
                &change.name,
                &change.public_key,
                &purposes,
                &id,
            ],
        ),
        ChangeAction::Revoke => tx.execute(
            "UPDATE cutter_governance.approver \
                SET revoked_by = session_user, revoked_at = now(), revoked_decision_id = $2 \
              WHERE fingerprint = $1 AND revoked_at IS NULL",
            &[&change.fingerprint.to_string(), &id],
        ),
    }
    .map_err(Error::db(what.clone()))?;
    if n != 1 {
        return Err(Error::Invalid(format!(
            "{what}: no unrevoked entry for {} to revoke",
            change.fingerprint
        )));
    }
    tx.commit()
        .map_err(Error::db(format!("committing: {what}")))?;
    Ok(id)
}

/// Registers `keys` (armored public key, name) as the registry's first approvers, for
/// every purpose: the owner's bootstrap, through `owner`, a connection as the schema
/// owner. For throwaway databases (demos, tests, benchmarks); an operator runs
/// `cutter approvers add`.
pub fn bootstrap_approvers<C: GenericClient>(
    owner: &mut C,
    keys: &[(&str, &str)],
    actor: &str,
) -> Result<()> {
    for (key, name) in keys {
        let change = ApproverChange::add(key, name, Purpose::ALL.into_iter().collect())?;
        apply_change(owner, &change, &[], true, actor)?;
    }
    Ok(())
}
