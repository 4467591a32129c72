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
    for args in [
        vec!["backup", "verify"],
        vec!["backup", "restore-proof"],
        vec!["--json", "backup", "restore-proof"],
    ] {
        let d = w.cutter().args(args).arg(&art).run();
        record(&d);
    }
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
    if let Some(log) = &cx.env.cluster_log {
        if let Ok(bytes) = std::fs::read(log) {
            cx.audit
                .text(format!("server log {}", log.display()), &bytes);
        }
    }
    let found: usize = others.iter().map(|o| o.secrets).sum();
    let streams: usize = others.iter().map(|o| o.audit.streams).sum();
    let processes: usize = others.iter().map(|o| o.audit.processes).sum();
    let files: usize = others.iter().map(|o| o.audit.files).sum();
    cx.obs(format!(
        "{} other cases ({streams} outputs, {processes} process samples, {files} files): {found} secrets; own run with pg_dump, pg_restore, servers, server log",
        others.len()
    ));
    cx.settle(&w, &pre)?;
    Ok(())
}
