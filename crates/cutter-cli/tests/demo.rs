//! `cutter demo`, the README's main command, through the real binary: the whole life of a
//! cut on a throwaway cluster, one JSON object on stdout, nothing left behind; and
//! `--keep`, which hands a running cluster over to the operator.

mod common;

use std::path::{Path, PathBuf};
use std::process::Command as Std;

use serde_json::Value;

fn demo(args: &[&str]) -> Value {
    let mut c = common::cutter();
    let o = c.arg("demo").args(args).arg("--json").output().unwrap();
    let stdout = String::from_utf8_lossy(&o.stdout);
    assert_eq!(
        o.status.code(),
        Some(0),
        "{stdout}\n{}",
        String::from_utf8_lossy(&o.stderr)
    );
    // Exactly one JSON document: serde_json refuses trailing data.
    let v: Value = serde_json::from_str(&stdout).unwrap_or_else(|e| panic!("{e}: {stdout}"));
    // It, and each step it ran, match the --json schema (docs/cli-json.schema.json).
    common::contract::success("demo", &v);
    for s in v["steps"].as_array().unwrap() {
        for (key, def) in [
            ("proof", "backup_restore_proof"),
            ("run", "run"),
            ("checks", "doctor"),
        ] {
            if s.get(key).is_some() {
                common::contract::success(def, s);
            }
        }
    }
    v
}

fn step<'a>(v: &'a Value, key: &str) -> Vec<&'a Value> {
    v["steps"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|s| s.get(key).is_some())
        .collect()
}

fn server_running_in(dir: &Path) -> bool {
    let out = Std::new("ps").args(["-eo", "args"]).output().unwrap();
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .any(|l| l.contains("postgres") && l.contains(&*dir.to_string_lossy()))
}

#[test]
fn demo_runs_the_life_of_a_cut_and_leaves_nothing_behind() {
    let v = demo(&[]);
    assert_eq!(v["ok"], true);
    assert_eq!(v["runs"], serde_json::json!(["demo-1", "demo-2"]));

    let runs = step(&v, "run");
    assert_eq!(runs.len(), 2, "{v:#}");
    let (staged, enacted) = (&runs[0]["run"], &runs[1]["run"]);
    assert_eq!(staged["final_phase"], "write_verify");
    assert_eq!(staged["context"]["units_created"], 365);
    assert_eq!(staged["context"]["verify"]["mismatched"], 0);
    assert_eq!(enacted["state"]["state"], "succeeded");
    assert_eq!(enacted["context"]["units_enacted"], 365);

    let proof = &step(&v, "proof")[0]["proof"];
    assert_eq!(proof["passed"], true);
    assert!(proof["tables"]
        .as_array()
        .unwrap()
        .iter()
        .all(|t| t["ok"] == true));

    let compensated = &step(&v, "compensation")[0];
    assert_eq!(compensated["run_id"], "demo-1");
    assert_eq!(step(&v, "intact")[0]["intact"], true);

    let removed: Vec<PathBuf> = serde_json::from_value(v["removed"].clone()).unwrap();
    assert_eq!(removed.len(), 2);
    for dir in &removed {
        assert!(!dir.exists(), "{} was left behind", dir.display());
        assert!(
            !server_running_in(dir),
            "a server still runs in {}",
            dir.display()
        );
    }
}

/// Tears a kept cluster down even when an assertion fails first.
struct Teardown(String);

impl Drop for Teardown {
    fn drop(&mut self) {
        let _ = Std::new("sh").arg("-c").arg(&self.0).status();
    }
}

#[test]
fn demo_keep_hands_a_running_cluster_to_the_operator() {
    let v = demo(&["--keep"]);
    let kept = &v["kept"];
    let teardown = Teardown(kept["teardown"].as_str().unwrap().to_string());
    let dir = PathBuf::from(kept["cluster_dir"].as_str().unwrap());
    let work = PathBuf::from(kept["work_dir"].as_str().unwrap());

    // The demo has exited; the server it started has not.
    assert!(server_running_in(&dir), "{kept:#}");
    let psql = cutter_pg::pg_program("psql").unwrap();
    let q = Std::new(psql)
        .env("PGPASSFILE", kept["pgpassfile"].as_str().unwrap())
        .env_remove("PGPASSWORD")
        .arg(format!(
            "host=127.0.0.1 port={} dbname={} user=cutter_exec",
            kept["port"], kept["database"].as_str().unwrap()
        ))
        .args([
            "-XAtc",
            "SELECT lifecycle_status || '=' || count(*) FROM public.information_unit GROUP BY lifecycle_status ORDER BY lifecycle_status",
        ])
        .output()
        .unwrap();
    assert!(q.status.success(), "{}", String::from_utf8_lossy(&q.stderr));
    assert_eq!(
        String::from_utf8_lossy(&q.stdout)
            .split_whitespace()
            .collect::<Vec<_>>(),
        ["draft=98", "enacted=425", "withdrawn=365"]
    );

    // The kept state directory works with the cutter command.
    let status = common::cutter()
        .env("CUTTER_CONFIG", kept["config"].as_str().unwrap())
        .env("PGPASSFILE", kept["pgpassfile"].as_str().unwrap())
        .args(["status", "--json"])
        .output()
        .unwrap();
    let s: Value = serde_json::from_slice(&status.stdout).unwrap();
    assert_eq!(s["kill_switch"]["state"], "engaged", "{s:#}");
    assert_eq!(s["runs"].as_array().unwrap().len(), 2, "{s:#}");

    // The printed teardown stops the server and removes everything.
    drop(teardown);
    assert!(!server_running_in(&dir));
    assert!(!dir.exists() && !work.exists());
}
