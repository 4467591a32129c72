//! Case 21: the secrets audit. Every case already audits its own invocations (stdout,
//! stderr, `/proc/<pid>/cmdline` and `environ` of cutter and its children sampled while
//! they ran, every file of its state and work directories); this case adds one run that
//! goes through every command that could show a secret — with pg_dump, pg_restore and
//! throwaway servers as children — and the shared server's log, then sums all audits.

use super::world::{Cx, Opts};
use super::Outcome;

pub fn audit_all(cx: &mut Cx, others: &[Outcome]) -> Result<(), String> {
    let w = cx.world(Opts::new("faults-secrets"))?;
    let pre = w.pre()?;
    let mut seen_children = std::collections::BTreeSet::new();
    let mut record = |d: &super::world::Done| {
        seen_children.extend(d.children.iter().cloned());
    };
    for args in [
        vec!["doctor"],
        vec!["backup", "selftest"],
        vec!["--json", "doctor"],
    ] {
        let d = w.cutter().args(args).run();
        record(&d);
    }
    let a = w.disarm("r21")?;
    let d = w.run_live("r21", &a).run();
    cx.check(d.code == Some(0), format!("the run: {}", d.all()));
    record(&d);
    let art = w.state.join("backups/r21.dump.pgp");
    let verify = w.cutter().args(["backup", "verify"]).arg(&art).run();
    cx.check(
        verify.code == Some(0),
        format!("backup verify: {}", verify.all()),
    );
    record(&verify);
    let proven = w.set_aside_run_proof("r21")?;
    cx.check(proven, "the run did not prove its backup before it wrote");
    let human = w.cutter().args(["backup", "restore-proof"]).arg(&art).run();
    cx.check(
        human.code == Some(0) && human.stdout.contains("PASSED"),
        format!(
            "backup restore-proof: exit {:?}: {}",
            human.code,
            human.all()
        ),
    );
    record(&human);
    // A restore proof never overwrites its record: move the first one aside (it stays in
    // the state directory, so the audit still reads it) for the JSON run to do the
    // whole proof again, pg_restore and throwaway server included.
    let proof_record = w.state.join("backups/r21.restore-proof.json");
    std::fs::rename(&proof_record, proof_record.with_extension("first.json"))
        .map_err(|e| format!("moving {} aside: {e}", proof_record.display()))?;
    let json = w
        .cutter()
        .args(["--json", "backup", "restore-proof"])
        .arg(&art)
        .run();
    let json_passed = serde_json::from_str::<serde_json::Value>(&json.stdout)
        .is_ok_and(|v| v["ok"] == true && v["proof"]["passed"] == true);
    cx.check(
        json.code == Some(0) && json_passed && json.ran("pg_restore"),
        format!(
            "--json backup restore-proof: exit {:?}, children {:?}: {}",
            json.code,
            json.children,
            json.all()
        ),
    );
    record(&json);
    for args in [
        vec!["report", "--run-id", "r21"],
        vec!["--json", "report", "--run-id", "r21"],
        vec!["--json", "status"],
        vec!["runs", "list"],
        vec!["ledger", "verify"],
        vec!["hold", "show"],
    ] {
        let d = w.cutter().args(args).run();
        record(&d);
    }
    // A failure, its HOLD, SG_3 and compensation; a dry-run on a throwaway clone.
    let plan_b = w.plan_file(
        "plan-b.json",
        super::world::plan_json("faults-secrets-b", 12).as_bytes(),
    );
    let b = w.disarm_plan("r21b", &plan_b)?;
    let d = w
        .run_plan("r21b", &plan_b, &b)
        .env("CUTTER_FAILPOINT", "leg_b_record:before_commit:error")
        .run();
    record(&d);
    let d = w.cutter().args(["compensate", "--run-id", "r21b"]).run();
    record(&d);
    let plan_c = w.plan_file(
        "plan-c.json",
        super::world::plan_json("faults-secrets-c", 12).as_bytes(),
    );
    let d = w
        .cutter()
        .args(["run", "--mode", "dry-run", "--run-id", "r21c", "--plan"])
        .arg(&plan_c)
        .run();
    cx.check(d.code == Some(0), format!("the dry-run: {}", d.all()));
    record(&d);
    for program in ["pg_dump", "pg_restore", "postgres"] {
        cx.check(
            seen_children.contains(program),
            format!("the audit never saw {program} running (children seen: {seen_children:?})"),
        );
    }
    let server_log = match &cx.env.cluster_log {
        Some(log) => match std::fs::read(log) {
            Ok(bytes) => {
                cx.audit
                    .text(format!("server log {}", log.display()), &bytes);
                format!("server log of {} bytes", bytes.len())
            }
            Err(e) => {
                cx.check(false, format!("the server log {}: {e}", log.display()));
                "server log unreadable".into()
            }
        },
        None => "no server log known".into(),
    };
    let found: usize = others.iter().map(|o| o.secrets).sum();
    let streams: usize = others.iter().map(|o| o.audit.streams).sum();
    let processes: usize = others.iter().map(|o| o.audit.processes).sum();
    let files: usize = others.iter().map(|o| o.audit.files).sum();
    cx.obs(format!(
        "{} other cases ({streams} outputs, {processes} process samples, {files} files): {found} secrets; own run's children {seen_children:?}, restore proofs exit {:?}/{:?} (JSON passed: {json_passed}); {server_log}",
        others.len(),
        human.code,
        json.code
    ));
    cx.settle(&w, &pre)?;
    Ok(())
}
