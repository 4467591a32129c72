//! Shared test support: a fresh database with the reference schema (V2 is migration G1)
//! and the baseline; plans; real OpenPGP approver keys; a live authorization made by the
//! core gate from real signatures.

#![allow(dead_code)]

use cutter_core::{
    authorize, ApprovalGate, ApprovalStatement, ApproverSet, GateRequest, KillSwitch,
    LiveAuthorization, Phase, RunId, SignedApproval, UnixTime, ValidPlan,
};
use cutter_governance::{approvers_from_keys, sign_approval, OpenPgpVerifier};
use cutter_openpgp::{generate_key, Passphrase, SecretKey};
use cutter_pg::testing::TestDb;

pub const ACTOR: &str = "test-operator";

/// The six ledger tables.
pub const LEDGER: [&str; 6] = [
    "cutter_governance.cut_change_set",
    "cutter_governance.cut_change_set_affected_row",
    "cutter_governance.manifest_envelope",
    "cutter_governance.review_decision",
    "cutter_governance.verify_result",
    "cutter_governance.dot_pair_signature",
];

/// A fresh database with the reference schema (whose V2 is migration G1) and the
/// baseline.
pub fn db() -> TestDb {
    let db = TestDb::new();
    cutter_governance::check_installed(&mut db.admin())
        .expect("the reference schema's V2 is migration G1");
    db
}

/// Row counts of the six ledger tables.
/// review_decision rows but the approver registrations ([`register`]'s).
pub fn decisions(db: &TestDb) -> i64 {
    db.admin()
        .query_one(
            "SELECT count(*) FROM cutter_governance.review_decision \
              WHERE decision NOT IN ('approver_added', 'approver_revoked')",
            &[],
        )
        .expect("counting decisions")
        .get(0)
}

pub fn ledger_counts(db: &TestDb) -> Vec<i64> {
    LEDGER.iter().map(|t| db.count(t)).collect()
}

/// The scale plan of `n` rows of document `doc`.
pub fn plan(doc: &str, n: u64) -> ValidPlan {
    cutter_pg::fixtures::scale_plan(doc, n).expect("valid plan")
}

pub fn run(id: &str) -> RunId {
    RunId::new(id).expect("run id")
}

/// Seconds since the epoch.
pub fn now() -> UnixTime {
    UnixTime(
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .expect("clock")
            .as_secs() as i64,
    )
}

/// An approver: a freshly generated key.
pub struct Approver {
    pub secret: SecretKey,
    pub public_armored: String,
    pub passphrase: Passphrase,
}

pub fn approver(name: &str) -> Approver {
    let passphrase = Passphrase::new(format!("pass-{name}"));
    let k = generate_key(
        &format!("{name} <{name}@example.invalid>"),
        Some(&passphrase),
    )
    .expect("generate key");
    Approver {
        secret: SecretKey::from_bytes(k.secret_armored.as_bytes()).expect("secret key"),
        public_armored: k.public_armored,
        passphrase,
    }
}

pub fn approvers(keys: &[&Approver]) -> (ApproverSet, OpenPgpVerifier) {
    let keys: Vec<_> = keys
        .iter()
        .enumerate()
        .map(|(i, a)| {
            (
                format!("approver-{i}.asc").into(),
                a.public_armored.clone().into_bytes(),
            )
        })
        .collect();
    approvers_from_keys(&keys).expect("approvers")
}

pub fn statement(
    run: &RunId,
    plan: &ValidPlan,
    db: &TestDb,
    gate: ApprovalGate,
    expires_at: UnixTime,
) -> ApprovalStatement {
    ApprovalStatement {
        purpose: cutter_core::Purpose::LiveRun,
        run_id: run.clone(),
        plan_digest: plan.digest(),
        change_set: None,
        findings_digest: None,
        diff_digest: None,
        target: db.target().database().clone(),
        gate,
        not_before: UnixTime(now().0 - 60),
        expires_at,
    }
}

pub fn sign(a: &Approver, s: &ApprovalStatement) -> SignedApproval {
    sign_approval(
        s,
        &a.secret,
        &a.passphrase,
        &format!("{}.statement", s.gate),
    )
    .expect("sign")
}

/// The ledger rows [`live_auth`] leaves (per table, in [`ledger_counts`] order): the two
/// approvers' registrations (review_decision) and the run's two recorded signatures.
pub const AUTHORIZED: [i64; 6] = [0, 0, 0, 2, 0, 2];

/// The two approvers every live authorization of these tests is signed by (generated
/// once per test process).
pub fn registered() -> &'static (Approver, Approver) {
    static PAIR: std::sync::OnceLock<(Approver, Approver)> = std::sync::OnceLock::new();
    PAIR.get_or_init(|| (approver("alice"), approver("bob")))
}

/// Registers [`registered`]'s approvers in `db`'s registry (the owner's bootstrap), once.
pub fn register(db: &TestDb) {
    let mut admin = db.admin();
    if cutter_governance::load_registry(&mut admin)
        .expect("registry")
        .approvers
        .is_empty()
    {
        let (a, b) = registered();
        cutter_governance::bootstrap_approvers(
            &mut admin,
            &[(&a.public_armored, "alice"), (&b.public_armored, "bob")],
            "governance-test",
        )
        .expect("bootstrap");
    }
}

/// A live authorization for `run` and `plan` on `db`, from the core gate and two real
/// signatures by registered approvers, recorded in the ledger as a live run records
/// them before it writes.
pub fn live_auth(db: &TestDb, run: &RunId, plan: &ValidPlan) -> LiveAuthorization {
    live_auth_diff(db, run, plan, None)
}

/// [`live_auth`] of approvals naming `diff` as the plan's diff (an amendment).
pub fn live_auth_diff(
    db: &TestDb,
    run: &RunId,
    plan: &ValidPlan,
    diff: Option<cutter_core::Sha256Digest>,
) -> LiveAuthorization {
    let auth = live_auth_unrecorded_diff(db, run, plan, diff);
    match cutter_governance::record_run_approvals(
        &mut db.exec_config().connect().expect("exec"),
        &auth,
    ) {
        // A run authorized again (new signatures): its first approvals stay recorded.
        Ok(_) | Err(cutter_governance::Error::AlreadyRecorded { .. }) => {}
        Err(e) => panic!("recording approvals: {e}"),
    }
    auth
}

/// [`live_auth`] without recording the approvals.
pub fn live_auth_unrecorded(db: &TestDb, run: &RunId, plan: &ValidPlan) -> LiveAuthorization {
    live_auth_unrecorded_diff(db, run, plan, None)
}

fn live_auth_unrecorded_diff(
    db: &TestDb,
    run: &RunId,
    plan: &ValidPlan,
    diff_digest: Option<cutter_core::Sha256Digest>,
) -> LiveAuthorization {
    register(db);
    let (a, b) = registered();
    let (set, verifier) = approvers(&[a, b]);
    let exp = UnixTime(now().0 + 3600);
    let signed = |k: &Approver, gate| {
        let mut st = statement(run, plan, db, gate, exp);
        st.diff_digest = diff_digest;
        sign(k, &st)
    };
    let approvals = vec![signed(a, ApprovalGate::Sg1), signed(b, ApprovalGate::Sg2)];
    let ks = KillSwitch::Disarmed {
        run_id: run.clone(),
    };
    authorize(
        &GateRequest {
            run_id: run,
            plan_digest: plan.digest(),
            findings_digest: None,
            diff_digest,
            target: &db.target().database().clone(),
            kill_switch: &ks,
            hold: None,
            approvals: &approvals,
            approvers: &set,
            policy: cutter_core::ApprovalPolicy::default(),
            now: now(),
        },
        &verifier,
    )
    .expect("the gate authorizes")
}

/// cut_leg_a through the adapter, committed.
pub fn cut(db: &TestDb, auth: &LiveAuthorization, plan: &ValidPlan) {
    db.target()
        .cut_leg_a(auth, plan, &mut |_| {})
        .expect("cut_leg_a");
}

/// leg_b_record in its phase transaction, committed if it succeeds.
pub fn leg_b(
    db: &TestDb,
    auth: &LiveAuthorization,
    plan: &ValidPlan,
) -> cutter_governance::Result<cutter_governance::LegBReport> {
    let mut target = db.target();
    let mut pt = target
        .phase_transaction(auth, Phase::LegBRecord)
        .expect("phase transaction");
    let r = cutter_governance::leg_b_record(pt.client(), auth, plan, ACTOR)?;
    pt.commit().expect("commit leg_b_record");
    Ok(r)
}

/// write_verify in its phase transaction (reading as cutter_verify), committed if it
/// succeeds.
pub fn write_verify(
    db: &TestDb,
    auth: &LiveAuthorization,
    plan: &ValidPlan,
) -> cutter_governance::Result<cutter_governance::VerifyReport> {
    let mut target = db.target();
    let mut verify = db
        .verify_config()
        .connect()
        .expect("connect as cutter_verify");
    let mut pt = target
        .phase_transaction(auth, Phase::WriteVerify)
        .expect("phase transaction");
    let r = cutter_governance::write_verify(pt.client(), &mut verify, auth, plan, ACTOR)?;
    pt.commit().expect("commit write_verify");
    Ok(r)
}

/// A connection as cutter_exec.
pub fn exec(db: &TestDb) -> postgres::Client {
    db.exec_config().connect().expect("connect as cutter_exec")
}
