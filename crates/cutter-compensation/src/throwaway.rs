//! Two throwaway approvers (freshly generated OpenPGP keys, never stored) for the
//! rollback-only proof, tests and benchmarks on throwaway databases. Their signatures go
//! through the same path as real ones: cutter-governance's OpenPGP verifier and
//! cutter-core's approval rules. They are approvers only of the approver set they come
//! with; a production configuration never contains them.

use std::fmt;
use std::path::PathBuf;
use std::time::{SystemTime, UNIX_EPOCH};

use cutter_core::{ApprovalGate, ApprovalStatement, ApproverSet, RunId, SignedApproval, UnixTime};
use cutter_governance::OpenPgpVerifier;
use cutter_openpgp::{Passphrase, SecretKey};

use crate::approval::HardDeleteApproval;
use crate::error::{Error, Result};
use crate::plan::CompensationPlan;

/// Two generated approver keys, the approver set made of them and its verifier.
pub struct ThrowawayApprovers {
    keys: Vec<SecretKey>,
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
        for name in ["throwaway-sg1", "throwaway-sg2"] {
            let k = cutter_openpgp::generate_key(&format!("{name} <{name}@example.invalid>"), None)
                .map_err(|e| Error::Invalid(format!("generating a throwaway approver key: {e}")))?;
            keys.push(
                SecretKey::from_bytes(k.secret_armored.as_bytes()).map_err(|e| {
                    Error::Invalid(format!("reading a throwaway approver key: {e}"))
                })?,
            );
            public.push((
                PathBuf::from(format!("{name}.asc")),
                k.public_armored.into_bytes(),
            ));
        }
        let (approvers, verifier) = cutter_governance::approvers_from_keys(&public)?;
        Ok(ThrowawayApprovers {
            keys,
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

    /// The approver set.
    pub fn approvers(&self) -> &ApproverSet {
        &self.approvers
    }

    /// The verifier of their signatures.
    pub fn verifier(&self) -> &OpenPgpVerifier {
        &self.verifier
    }

    /// SG_1 (approver 0) and SG_2 (approver 1) over the hard-delete statement of `plan`
    /// by `revert_run`, valid for an hour.
    pub fn sign_hard_delete(
        &self,
        plan: &CompensationPlan,
        revert_run: &RunId,
    ) -> Result<Vec<SignedApproval>> {
        let expires = UnixTime(now().0 + 3600);
        Ok(vec![
            self.sign(
                0,
                &HardDeleteApproval::statement(plan, revert_run, ApprovalGate::Sg1, expires),
            )?,
            self.sign(
                1,
                &HardDeleteApproval::statement(plan, revert_run, ApprovalGate::Sg2, expires),
            )?,
        ])
    }

    /// A verified hard-delete approval of `plan` by `revert_run`, signed and verified now.
    pub fn hard_delete_approval(
        &self,
        plan: &CompensationPlan,
        revert_run: &RunId,
    ) -> Result<HardDeleteApproval> {
        let signed = self.sign_hard_delete(plan, revert_run)?;
        HardDeleteApproval::verify(
            plan,
            revert_run,
            &signed,
            &self.approvers,
            now(),
            &self.verifier,
        )
    }
}
