//! The `--json` contract (`docs/cli-json.md`, `docs/cli-json.schema.json`): every
//! command's output, successes and errors, validated against the schema on one world;
//! the documented codes and examples agree with the code; and what `backup list` and
//! `ledger log` report after a live run and a failed one.

mod common;

use std::path::Path;

use common::{contract, text, World};
use serde_json::Value;

/// `cutter --json ARGS`: the exit code and the one JSON document on stdout.
fn j(w: &World, args: &[&str]) -> (i32, Value) {
    let o = w.cmd().arg("--json").args(args).output().unwrap();
    let v = serde_json::from_slice(&o.stdout).unwrap_or_else(|e| {
        panic!(
            "cutter {args:?}: stdout is not one JSON document: {e}\n{}",
            text(&o)
        )
    });
    (o.status.code().unwrap_or(-1), v)
}

/// Runs a command that must succeed (exit `code`) and validates it as `cmd_<def>`.
fn ok(w: &World, def: &str, args: &[&str], code: i32) -> Value {
    let (c, v) = j(w, args);
    assert_eq!(c, code, "cutter {args:?}: {v}");
    contract::success(def, &v);
    v
}

/// Runs a command that must fail with `exit` and error code `code`.
fn err(w: &World, args: &[&str], exit: i32, code: &str) -> Value {
    let (c, v) = j(w, args);
    assert_eq!(c, exit, "cutter {args:?}: {v}");
    contract::failure(&format!("{args:?}"), &v);
    assert_eq!(v["error"]["code"], code, "cutter {args:?}: {v}");
    assert_eq!(v["error"]["exit_code"], exit, "{v}");
    v
}

/// `args` followed by `--approval X` for each of `approvals`.
fn approved<'a>(args: &[&'a str], approvals: &'a [String]) -> Vec<&'a str> {
    let mut v = args.to_vec();
    for a in approvals {
        v.extend(["--approval", a.as_str()]);
    }
    v
}

/// `kill-switch disarm` of `run` and `plan` with `approvals`.
fn disarm_args<'a>(run: &'a str, plan: &'a str, approvals: &'a [String]) -> Vec<&'a str> {
    approved(
        &["kill-switch", "disarm", "--run-id", run, "--plan", plan],
        approvals,
    )
}

/// `run --mode live` of `run` and `plan` with `approvals`.
fn live_args<'a>(run: &'a str, plan: &'a str, approvals: &'a [String]) -> Vec<&'a str> {
    approved(
        &["run", "--mode", "live", "--run-id", run, "--plan", plan],
        approvals,
    )
}

fn p(path: &Path) -> &str {
    path.to_str().unwrap()
}

#[test]
fn every_command_output_matches_the_schema_and_backup_list_and_ledger_log_report_runs() {
    let w = World::new();
    let other = w.work.path().join("other-state");
    ok(&w, "init", &["init", p(&other)], 0);
    ok(&w, "kill_switch", &["kill-switch", "show"], 0);
    ok(&w, "status", &["status"], 0);
    ok(&w, "runs_list", &["runs", "list"], 0);
    ok(&w, "hold_show", &["hold", "show"], 0);
    ok(&w, "doctor", &["doctor"], 0);
    let approvers = ok(&w, "approvers_list", &["approvers", "list"], 0);
    assert_eq!(
        approvers["approvers"].as_array().map(Vec::len),
        Some(2),
        "{approvers}"
    );
    ok(&w, "config_show", &["config", "show"], 0);
    ok(&w, "backup_selftest", &["backup", "selftest"], 0);
    ok(&w, "backup_list", &["backup", "list"], 0);
    // Plans.
    let doc = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../corpus/udhr/eng.html");
    let cut = w.work.path().join("udhr.json");
    ok(
        &w,
        "cut",
        &[
            "cut",
            p(&doc),
            "--document-id",
            "udhr-eng",
            "--source-version",
            "1948",
            "-o",
            p(&cut),
        ],
        0,
    );
    ok(&w, "plan_check", &["plan", "check", p(&w.plan)], 0);
    ok(
        &w,
        "plan_check",
        &["plan", "check", "--offline", p(&cut)],
        0,
    );
    ok(&w, "plan_show", &["plan", "show", p(&w.plan)], 0);
    let diff = ok(&w, "plan_diff", &["plan", "diff", p(&w.plan)], 0);
    assert_eq!(diff["counts"]["new"], 12, "{diff}");
    assert_eq!(diff["amendment"], false, "{diff}");
    // Approvals and the live run.
    let st = w.work.path().join("sg1-statement.txt");
    ok(
        &w,
        "approve",
        &[
            "approve",
            "--run-id",
            "r-1",
            "--plan",
            p(&w.plan),
            "--gate",
            "SG_1",
            "-o",
            p(&st),
        ],
        0,
    );
    let a = w.approvals("r-1");
    let (st1, sig1) = a[0].split_once(':').unwrap();
    ok(
        &w,
        "approve_verify",
        &[
            "approve",
            "--run-id",
            "r-1",
            "--plan",
            p(&w.plan),
            "--verify",
            st1,
            sig1,
        ],
        0,
    );
    // The kill-switch is engaged: the gate refuses with its own code.
    err(&w, &live_args("r-0", p(&w.plan), &a), 3, "gate_refused");
    ok(&w, "kill_switch", &disarm_args("r-1", p(&w.plan), &a), 0);
    let run = ok(&w, "run", &live_args("r-1", p(&w.plan), &a), 0);
    assert_eq!(run["run"]["state"]["state"], "succeeded", "{run}");
    ok(&w, "report", &["report", "--run-id", "r-1"], 0);
    ok(&w, "kill_switch", &["kill-switch", "arm"], 0);

    // backup list: the run's artifact, with its manifest's facts and its run.
    let manual = ok(
        &w,
        "backup_create",
        &["backup", "create", "--name", "b-manual"],
        0,
    );
    let artifact = w.state.join("backups/r-1.dump.pgp");
    let verified = ok(&w, "backup_verify", &["backup", "verify", p(&artifact)], 0);
    let list = ok(&w, "backup_list", &["backup", "list"], 0);
    let backups = list["backups"].as_array().unwrap();
    assert_eq!(backups.len(), 2, "{list}");
    // Oldest first: the run's backup, then the manual one.
    assert_eq!(backups[0]["artifact"], "r-1.dump.pgp", "{list}");
    assert_eq!(backups[0]["runs"], serde_json::json!(["r-1"]), "{list}");
    assert_eq!(
        backups[0]["sha256"], verified["manifest"]["sha256"],
        "{list}"
    );
    assert_eq!(
        backups[0]["size_bytes"], verified["manifest"]["size_bytes"],
        "{list}"
    );
    assert_eq!(backups[0]["manifest_size_matches"], true, "{list}");
    // The run proved its backup before it wrote (`prove_backup` defaults to before-write
    // with a secret key configured); the manual backup was not proven.
    assert_eq!(backups[0]["restore_proof"]["passed"], true, "{list}");
    assert!(backups[1]["restore_proof"].is_null(), "{list}");
    assert_eq!(backups[1]["artifact"], "b-manual.dump.pgp", "{list}");
    assert_eq!(backups[1]["runs"], serde_json::json!([]), "{list}");
    assert_eq!(backups[1]["sha256"], manual["manifest"]["sha256"], "{list}");
    assert!(
        backups[0]["restore_proof"]["signature_error"].is_null(),
        "{list}"
    );
    assert_eq!(backups[0]["chain"]["proven"], true, "{list}");
    // A truncated artifact no longer matches its manifest's size; a proof record written
    // over the run's (its signature no longer matches) shows, untrusted.
    let proof = serde_json::json!({"artifact_sha256": backups[0]["sha256"], "passed": true});
    std::fs::write(
        w.state.join("backups/r-1.restore-proof.json"),
        proof.to_string(),
    )
    .unwrap();
    let f = std::fs::OpenOptions::new()
        .write(true)
        .open(w.state.join("backups/b-manual.dump.pgp"))
        .unwrap();
    f.set_len(10).unwrap();
    let list = ok(&w, "backup_list", &["backup", "list"], 0);
    assert_eq!(
        list["backups"][0]["restore_proof"]["passed"], true,
        "{list}"
    );
    assert_eq!(
        list["backups"][0]["restore_proof"]["proves_this_artifact"], true,
        "{list}"
    );
    assert!(
        list["backups"][0]["restore_proof"]["signature_error"]
            .as_str()
            .is_some_and(|e| e.contains("r-1.restore-proof.json") && e.contains("does not verify")),
        "{list}"
    );
    assert_eq!(list["backups"][0]["chain"]["proven"], false, "{list}");
    assert_eq!(list["backups"][1]["manifest_size_matches"], false, "{list}");
    let human = w.cmd().args(["backup", "list"]).output().unwrap();
    let human = String::from_utf8(human.stdout).unwrap();
    assert!(
        human.contains("r-1.dump.pgp")
            && human.contains("runs: r-1")
            && human.contains("a proof record UNTRUSTED")
            && human.contains("restore proof: UNTRUSTED"),
        "{human}"
    );

    // The ledger.
    ok(&w, "ledger_verify", &["ledger", "verify"], 0);
    let log = ok(&w, "ledger_log", &["ledger", "log"], 0);
    let entries = log["entries"].as_array().unwrap();
    let of_r1: Vec<&Value> = entries.iter().filter(|e| e["run_id"] == "r-1").collect();
    let kinds = |es: &[&Value]| -> Vec<String> {
        es.iter()
            .map(|e| e["kind"].as_str().unwrap().to_string())
            .collect()
    };
    let k = kinds(&of_r1);
    for want in ["change_set", "approval", "verify", "decision"] {
        assert!(
            k.iter().any(|x| x == want),
            "no {want} entry for r-1: {log}"
        );
    }
    assert_eq!(
        k.iter().filter(|x| *x == "approval").count(),
        2,
        "SG_1 and SG_2: {log}"
    );
    assert!(
        of_r1
            .iter()
            .any(|e| e["kind"] == "decision" && e["summary"] == "claim"),
        "the run's claim: {log}"
    );
    let times: Vec<&str> = entries.iter().map(|e| e["at"].as_str().unwrap()).collect();
    assert!(
        times.windows(2).all(|t| t[0] >= t[1]),
        "newest first: {times:?}"
    );
    let limited = ok(
        &w,
        "ledger_log",
        &["ledger", "log", "--run-id", "r-1", "--limit", "2"],
        0,
    );
    assert_eq!(limited["entries"].as_array().unwrap().len(), 2, "{limited}");
    let oldest = ok(
        &w,
        "ledger_log",
        &["ledger", "log", "--run-id", "r-1", "--reverse"],
        0,
    );
    let rev: Vec<&str> = oldest["entries"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["at"].as_str().unwrap())
        .collect();
    assert!(
        rev.windows(2).all(|t| t[0] <= t[1]),
        "oldest first: {rev:?}"
    );
    assert_eq!(oldest["entries"][0]["summary"], "claim", "{oldest}");
    let none = ok(
        &w,
        "ledger_log",
        &["ledger", "log", "--run-id", "r-none"],
        0,
    );
    assert_eq!(none["entries"], serde_json::json!([]));
    err(
        &w,
        &["ledger", "log", "--run-id", "no spaces allowed"],
        2,
        "invalid_id",
    );

    // The schema.
    ok(&w, "db_status", &["db", "status"], 0);
    ok(&w, "db_validate", &["db", "validate"], 0);
    let owner = w.owner_url();
    ok(
        &w,
        "db_upgrade",
        &["db", "upgrade", "--dry-run", "--owner-url", &owner],
        0,
    );
    ok(&w, "recover", &["recover"], 0);

    // A failed run (of another plan: r-1's is claimed): held, then compensated (A + B)
    // and voided.
    let plan2 = w.work.path().join("plan-2.json");
    std::fs::write(&plan2, common::plan_json("cli-doc-2", 5)).unwrap();
    let b = w.approvals_for("r-2", &plan2, [0, 1], w.database(), 3600);
    ok(&w, "kill_switch", &disarm_args("r-2", p(&plan2), &b), 0);
    let (c, v) = {
        let o = w
            .cmd()
            .arg("--json")
            .args(live_args("r-2", p(&plan2), &b))
            .env("CUTTER_FAILPOINT", "write_verify:before_commit:error")
            .output()
            .unwrap();
        (
            o.status.code().unwrap(),
            serde_json::from_slice::<Value>(&o.stdout).unwrap(),
        )
    };
    assert_eq!(c, 4, "{v}");
    contract::failure("the failed run", &v);
    assert_eq!(v["error"]["code"], "held", "{v}");
    let hold = ok(&w, "hold_show", &["hold", "show"], 4);
    assert_eq!(hold["hold"]["run_id"], "r-2", "{hold}");
    ok(&w, "status", &["status"], 4);
    // The run's own (live-run) approvals do not release its HOLD.
    err(&w, &approved(&["hold", "release"], &b), 3, "gate_refused");
    let release = w.approvals_with(
        "r-2",
        &plan2,
        [0, 1],
        cutter_core::Purpose::HoldRelease,
        None,
        w.database(),
        3600,
    );
    // Nor do hold-release approvals before the matrix's compensation.
    err(&w, &approved(&["hold", "release"], &release), 3, "refused");
    ok(
        &w,
        "compensate_show",
        &["compensate", "--run-id", "r-2", "--show"],
        0,
    );
    ok(&w, "compensate", &["compensate", "--run-id", "r-2"], 0);
    // Voiding the compensated run removes its HOLD: nothing is left to release.
    ok(
        &w,
        "void",
        &["void", "--run-id", "r-2", "--reason", "superseded"],
        0,
    );
    let released = ok(&w, "hold_release", &approved(&["hold", "release"], &b), 0);
    assert_eq!(released["released"], false, "{released}");
    let log = ok(&w, "ledger_log", &["ledger", "log", "--run-id", "r-2"], 0);
    let summaries: Vec<&str> = log["entries"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["summary"].as_str().unwrap())
        .collect();
    assert!(
        summaries.iter().any(|s| s.starts_with("sg3_escalation")),
        "{log}"
    );
    assert!(summaries.contains(&"void: superseded"), "{log}");
    let human = String::from_utf8(
        w.cmd()
            .args(["ledger", "log", "--run-id", "r-2"])
            .output()
            .unwrap()
            .stdout,
    )
    .unwrap();
    assert!(
        human.contains("decision") && human.contains("void: superseded  (by cli-test)"),
        "{human}"
    );

    // Errors the parser and the state directory report.
    err(&w, &["run", "--bogus"], 2, "usage");
    err(&w, &["report", "--run-id", "r-missing"], 2, "usage");
}

/// Every ```json block in docs/cli-json.md is valid JSON, and what it shows of an
/// envelope validates against the schema.
#[test]
fn the_documented_examples_are_valid_json_and_match_the_schema() {
    let md = std::fs::read_to_string(
        Path::new(env!("CARGO_MANIFEST_DIR")).join("../../docs/cli-json.md"),
    )
    .unwrap();
    let mut blocks = 0;
    let mut rest = md.as_str();
    while let Some(start) = rest.find("```json\n") {
        let body = &rest[start + 8..];
        let end = body.find("```").expect("a closed code block");
        let v: Value = serde_json::from_str(&body[..end]).unwrap_or_else(|e| {
            panic!(
                "docs/cli-json.md: a ```json block is not JSON ({e}):\n{}",
                &body[..end]
            )
        });
        if v.get("schema").is_some() {
            let s = contract::schema();
            assert!(
                jsonschema::is_valid(&s, &v),
                "docs/cli-json.md example does not match the schema: {v}"
            );
        }
        blocks += 1;
        rest = &body[end + 3..];
    }
    assert!(blocks >= 3, "only {blocks} json blocks");
}

/// The error codes of the code, the schema and the documentation are the same list.
#[test]
fn error_codes_agree_between_code_schema_and_docs() {
    let codes: Vec<&str> = cutter_cli::error::ERROR_CODES
        .iter()
        .map(|(c, _)| *c)
        .collect();
    let s = contract::schema();
    let in_schema: Vec<&str> = s["$defs"]["error"]["properties"]["code"]["enum"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c.as_str().unwrap())
        .collect();
    assert_eq!(in_schema, codes, "docs/cli-json.schema.json");
    let md = std::fs::read_to_string(
        Path::new(env!("CARGO_MANIFEST_DIR")).join("../../docs/cli-json.md"),
    )
    .unwrap();
    let section = md
        .split("\n## Error codes\n")
        .nth(1)
        .expect("docs/cli-json.md has a section \"## Error codes\"");
    let section = section.split("\n## ").next().unwrap();
    let documented: Vec<&str> = section
        .lines()
        .filter_map(|l| l.strip_prefix("| `")?.split_once("` |").map(|(c, _)| c))
        .collect();
    assert_eq!(documented, codes, "docs/cli-json.md's table of error codes");
}
