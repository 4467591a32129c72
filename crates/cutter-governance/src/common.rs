//! Small checks shared by the writers: the target's identity, the transaction's time in
//! canonical form, whether a run was voided.

use cutter_core::{LiveAuthorization, PlanFacts, RunId, SystemIdentifier};
use postgres::GenericClient;

use crate::chain::now_sql;
use crate::error::{Error, Result};

/// The server's `system_identifier`.
pub(crate) fn system_identifier<C: GenericClient>(c: &mut C) -> Result<SystemIdentifier> {
    let row = c
        .query_one(
            "SELECT system_identifier::text FROM pg_catalog.pg_control_system()",
            &[],
        )
        .map_err(Error::db("reading the server's system identifier"))?;
    let text: String = row.get(0);
    text.parse::<u64>()
        .map(SystemIdentifier::new)
        .map_err(|_| Error::Invalid(format!("the server reports system identifier {text:?}")))
}

/// Refuses unless `c` is connected to the server `auth` names.
/// A rehearsal authorization (no approvals) is good only on a throwaway cluster.
pub(crate) fn check_target<C: GenericClient>(c: &mut C, auth: &LiveAuthorization) -> Result<()> {
    let actual = system_identifier(c)?;
    if actual != auth.target() {
        return Err(Error::WrongTarget {
            expected: auth.target(),
            actual,
        });
    }
    let connected = cutter_pg::surface::target_database(c)
        .map_err(|e| Error::Invalid(format!("reading the connected database: {e}")))?;
    if &connected != auth.database() {
        return Err(Error::Invalid(format!(
            "refusing to write: the authorization is for {}, but this connection is to {connected}; \
             connect to the authorized database",
            auth.database()
        )));
    }
    match cutter_pg::rehearsal_refused_by(c, auth)
        .map_err(Error::db("reading the server's cluster_name"))?
    {
        None => Ok(()),
        Some(cluster_name) => Err(Error::RehearsalOnRealServer {
            run_id: auth.run_id().clone(),
            cluster_name,
        }),
    }
}

/// Refuses unless `plan` is the plan `auth` authorizes.
pub(crate) fn check_plan(auth: &LiveAuthorization, plan: &dyn PlanFacts) -> Result<()> {
    if auth.plan_digest() == plan.digest() {
        Ok(())
    } else {
        Err(Error::Invalid(format!(
            "the authorization of run {} is for plan sha256:{}, but the plan given is sha256:{}; pass the plan that was approved",
            auth.run_id(),
            auth.plan_digest(),
            plan.digest()
        )))
    }
}

/// Refuses an empty actor.
pub(crate) fn check_actor(actor: &str) -> Result<()> {
    if actor.trim().is_empty() || actor.chars().any(char::is_control) {
        Err(Error::Invalid(format!(
            "actor {actor:?} is not usable: give a non-empty name without control characters"
        )))
    } else {
        Ok(())
    }
}

/// `now()` of the current transaction in canonical ledger form.
pub(crate) fn now_text<C: GenericClient>(c: &mut C) -> Result<String> {
    let row = c
        .query_one(&now_sql(), &[])
        .map_err(Error::db("reading the transaction time"))?;
    Ok(row.get(0))
}

/// The id of the `void` decision of `run`, if it was voided.
pub fn voided_by<C: GenericClient>(c: &mut C, run: &RunId) -> Result<Option<i64>> {
    cutter_pg::void_decision(c, run).map_err(Error::db(format!(
        "looking up a void decision of run {run}"
    )))
}

/// Refuses a voided run.
pub(crate) fn ensure_not_voided<C: GenericClient>(c: &mut C, run: &RunId) -> Result<()> {
    match voided_by(c, run)? {
        None => Ok(()),
        Some(decision_id) => Err(Error::RunVoided {
            run_id: run.clone(),
            decision_id,
        }),
    }
}
