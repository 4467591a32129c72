//! Two throwaway approvers (freshly generated OpenPGP keys, never stored) for the
//! rollback-only proof, tests and benchmarks on throwaway databases. Their signatures go
//! through the same path as real ones: cutter-governance's OpenPGP verifier and
//! cutter-core's approval rules. They are approvers only of the approver set they come
//! with; a production configuration never contains them.

use std::fmt;
use std::path::PathBuf;
use std::time::{SystemTime, UNIX_EPOCH};

use cutter_core::{
    ApprovalGate, ApprovalPolicy, ApprovalStatement, ApproverSet, RunId, SignedApproval,
    TargetDatabase, UnixTime,
};
use cutter_governance::OpenPgpVerifier;
use cutter_openpgp::{Passphrase, SecretKey};

use crate::approval::HardDeleteApproval;
use crate::error::{Error, Result};
use crate::plan::CompensationPlan;

/// Two generated approver keys, the approver set made of them and its verifier.
pub struct ThrowawayApprovers {
    keys: Vec<SecretKey>,
    #[cfg_attr(not(feature = "testing"), allow(dead_code))]
    public: Vec<String>,
    approvers: ApproverSet,
    verifier: OpenPgpVerifier,
}

impl fmt::Debug for ThrowawayApprovers {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ThrowawayApprovers")
            .field("approvers", &self.approvers)
            .finish_non_exhaustive()
    }
}

/// Seconds since the epoch.
pub(crate) fn now() -> UnixTime {
    UnixTime(
        SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.as_secs() as i64),
    )
}

impl ThrowawayApprovers {
    /// Generates two Ed25519 approver keys (no passphrase; they live in memory only).
    pub fn generate() -> Result<ThrowawayApprovers> {
        let mut keys = Vec::new();
        let mut public = Vec::new();
        let mut armored = Vec::new();
        for name in ["throwaway-sg1", "throwaway-sg2"] {
            let k = cutter_openpgp::generate_key(&format!("{name} <{name}@example.invalid>"), None)
                .map_err(|e| Error::Invalid(format!("generating a throwaway approver key: {e}")))?;
            keys.push(
                SecretKey::from_bytes(k.secret_armored.as_bytes()).map_err(|e| {
                    Error::Invalid(format!("reading a throwaway approver key: {e}"))
                })?,
            );
            armored.push(k.public_armored.clone());
            public.push((
                PathBuf::from(format!("{name}.asc")),
                k.public_armored.into_bytes(),
            ));
        }
        let (approvers, verifier) = cutter_governance::approvers_from_keys(&public)?;
        Ok(ThrowawayApprovers {
            keys,
            public: armored,
            approvers,
            verifier,
        })
    }

    /// Signs `statement` with approver `signer` (0 or 1).
    pub fn sign(&self, signer: usize, statement: &ApprovalStatement) -> Result<SignedApproval> {
        let key = self.keys.get(signer).ok_or_else(|| {
            Error::Invalid(format!(
                "there are 2 throwaway approvers, not {}",
                signer + 1
            ))
        })?;
        Ok(cutter_governance::sign_approval(
            statement,
            key,
            &Passphrase::new(String::new()),
            &format!("throwaway-{}.statement", statement.gate),
        )?)
    }

    /// Registers both keys in the database's approver registry (reference V5) as its
    /// first two approvers, for every purpose: the bootstrap, through `owner`, a
    /// connection as the schema owner. Only for a throwaway database.
    #[cfg_attr(not(feature = "testing"), allow(dead_code))]
    pub fn register(&self, owner: &mut impl postgres::GenericClient) -> Result<()> {
        let keys: Vec<(&str, &str)> = self
            .public
            .iter()
            .zip(["throwaway approver 1", "throwaway approver 2"])
            .map(|(k, n)| (k.as_str(), n))
            .collect();
        Ok(cutter_governance::bootstrap_approvers(
            owner,
            &keys,
            "cutter-throwaway",
        )?)
    }

    /// The approver set.
    pub fn approvers(&self) -> &ApproverSet {
        &self.approvers
    }

    /// The verifier of their signatures.
    pub fn verifier(&self) -> &OpenPgpVerifier {
        &self.verifier
    }

    /// SG_1 (approver 0) and SG_2 (approver 1) over the hard-delete statement of `plan`
    /// by `revert_run` on `database`, valid for an hour.
    pub fn sign_hard_delete(
        &self,
        plan: &CompensationPlan,
        revert_run: &RunId,
        database: &TargetDatabase,
    ) -> Result<Vec<SignedApproval>> {
        let (from, until) = (UnixTime(now().0 - 60), UnixTime(now().0 + 3600));
        let st =
            |gate| HardDeleteApproval::statement(plan, revert_run, database, gate, from, until);
        Ok(vec![
            self.sign(0, &st(ApprovalGate::Sg1))?,
            self.sign(1, &st(ApprovalGate::Sg2))?,
        ])
    }

    /// A verified hard-delete approval of `plan` by `revert_run` on `database`, signed
    /// and verified now.
    pub fn hard_delete_approval(
        &self,
        plan: &CompensationPlan,
        revert_run: &RunId,
        database: &TargetDatabase,
    ) -> Result<HardDeleteApproval> {
        let signed = self.sign_hard_delete(plan, revert_run, database)?;
        HardDeleteApproval::verify(
            plan,
            revert_run,
            database,
            &signed,
            &self.approvers,
            now(),
            ApprovalPolicy::default(),
            &self.verifier,
        )
    }
}
