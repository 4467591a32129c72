//! Shared test support: a fresh database (reference schema, baseline, ledger migration
//! G1), a real run simulated phase by phase up to a failing phase, throwaway approvers.

#![allow(dead_code)]

use std::sync::OnceLock;

use cutter_compensation::testing::ThrowawayApprovers;
use cutter_compensation::RunFacts;
use cutter_core::{
    ChangeSetId, CutPlan, CutPlanRow, DocumentId, LiveAuthorization, Phase, PhaseSet, RunId,
    SourceVersionId, ValidPlan,
};
use cutter_pg::testing::TestDb;

pub const ACTOR: &str = "test-operator";

/// A fresh database with the reference schema, the baseline and migration G1.
pub fn db() -> TestDb {
    let db = TestDb::new();
    cutter_governance::install(&mut db.admin()).expect("install G1");
    db
}

/// Two throwaway approvers, generated once per test process.
pub fn approvers() -> &'static ThrowawayApprovers {
    static A: OnceLock<ThrowawayApprovers> = OnceLock::new();
    A.get_or_init(|| ThrowawayApprovers::generate().expect("throwaway approvers"))
}

pub fn run(id: &str) -> RunId {
    RunId::new(id).expect("run id")
}

/// A connection as cutter_exec.
pub fn exec(db: &TestDb) -> postgres::Client {
    db.exec_config().connect().expect("connect as cutter_exec")
}

/// The scale plan of `n` rows of document `doc`.
pub fn scale_plan(doc: &str, n: u64) -> ValidPlan {
    cutter_pg::fixtures::scale_plan(doc, n).expect("valid plan")
}

/// `plan` with row `i`'s body corrected: a plan with another digest, same addresses.
pub fn corrected(plan: &ValidPlan, i: usize) -> ValidPlan {
    let mut rows: Vec<CutPlanRow> = plan.rows().to_vec();
    rows[i].body.push_str(" (corrected)");
    CutPlan::new(
        plan.plan().document_id.clone(),
        SourceVersionId::new("v2").expect("id"),
        rows,
    )
    .validate(&cutter_pg::fixtures::vocabularies())
    .expect("valid corrected plan")
}

/// A plan from explicit rows.
pub fn plan_of(doc: &str, rows: Vec<CutPlanRow>) -> ValidPlan {
    CutPlan::new(
        DocumentId::new(doc).expect("id"),
        SourceVersionId::new("v1").expect("id"),
        rows,
    )
    .validate(&cutter_pg::fixtures::vocabularies())
    .expect("valid plan")
}

/// A simulated run: its authorization, and the facts its journal would hold.
pub struct Simulated {
    pub auth: LiveAuthorization,
    pub facts: RunFacts,
}

/// Runs `plan` as run `id` for real, phase by phase, through the adapter and the ledger
/// writers (claim first), stopping at `fail` as if that phase had failed and rolled back
/// (a failed phase leaves zero rows). `None`: every phase commits.
pub fn simulate(db: &TestDb, id: &str, plan: &ValidPlan, fail: Option<Phase>) -> Simulated {
    let mut target = db.target();
    let pre = target.snapshot().expect("pre snapshot");
    let auth = db.authorization(id, plan.digest());
    cutter_governance::claim(&mut exec(db), &auth, plan, ACTOR).expect("claim");
    let cs = ChangeSetId::for_run(auth.run_id());
    let mut committed = PhaseSet::EMPTY;
    for phase in Phase::MUTATING {
        if Some(phase) == fail {
            break;
        }
        match phase {
            // The backup is an artifact outside the database.
            Phase::PreWriteBackup => {}
            Phase::CutLegA => {
                target
                    .cut_leg_a(&auth, plan, &mut |_| {})
                    .expect("cut_leg_a");
            }
            Phase::LegBRecord => {
                let mut tx = target
                    .phase_transaction(&auth, Phase::LegBRecord)
                    .expect("leg_b_record transaction");
                cutter_governance::leg_b_record(tx.client(), &auth, plan, ACTOR)
                    .expect("leg_b_record");
                tx.commit().expect("commit leg_b_record");
            }
            Phase::WriteVerify => {
                let mut verify = db
                    .verify_config()
                    .connect()
                    .expect("connect as cutter_verify");
                let mut tx = target
                    .phase_transaction(&auth, Phase::WriteVerify)
                    .expect("write_verify transaction");
                cutter_governance::write_verify(tx.client(), &mut verify, &auth, plan, ACTOR)
                    .expect("write_verify");
                tx.commit().expect("commit write_verify");
            }
            Phase::LifecycleEnact => {
                target.lifecycle_enact(&auth, &cs).expect("lifecycle_enact");
            }
            _ => unreachable!("not a mutating phase"),
        }
        committed = committed.with(phase);
    }
    target.unlock_target().expect("unlock");
    Simulated {
        facts: RunFacts {
            run_id: auth.run_id().clone(),
            target: db.system_identifier(),
            plan_digest: plan.digest(),
            failed: fail,
            committed,
            pre_snapshot: pre,
            database: None,
        },
        auth,
    }
}

/// Units of a change set by status.
pub fn units_by_status(db: &TestDb, cs: &ChangeSetId) -> Vec<(String, i64)> {
    db.admin()
        .query(
            "SELECT lifecycle_status, count(*) FROM public.information_unit \
             WHERE change_set_id = $1 GROUP BY 1 ORDER BY 1",
            &[&cs.as_str()],
        )
        .expect("units by status")
        .iter()
        .map(|r| (r.get(0), r.get(1)))
        .collect()
}

/// Counts of the three public tables.
pub fn public_counts(db: &TestDb) -> [i64; 3] {
    [
        db.count("public.information_unit"),
        db.count("public.unit_version"),
        db.count("public.iu_lifecycle_log"),
    ]
}

/// Whether the ledger's six hash chains verify.
pub fn ledger_intact(db: &TestDb) -> bool {
    cutter_governance::verify_ledger(&mut db.admin())
        .expect("verify_ledger")
        .is_intact()
}
