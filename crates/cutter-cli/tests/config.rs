//! `cutter config show` and the settings it reports, through the real binary: each
//! setting's source (flag, `CUTTER_*` variable, config file and key, default), secrets
//! never printed, and `CUTTER_PG_BINDIR` reaching `pg_dump`.

mod common;

use common::cutter;
use serde_json::Value;

fn stdout(o: &std::process::Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

#[test]
fn config_show_names_where_each_setting_came_from_and_never_a_secret() {
    let work = tempfile::tempdir().unwrap();
    let state = work.path().join("state");
    cutter().arg("init").arg(&state).assert().success();
    let toml = state.join("cutter.toml");
    std::fs::write(
        &toml,
        "state_dir = \".\"\n[database]\nurl = \"postgres://cutter_exec@db.invalid/prod\"\n\
         [run]\nactor = \"file-actor\"\n",
    )
    .unwrap();
    let secrets = ["hunter2-pgpassword", "pp-backup-secret", "dburl-secret"];
    let run = |extra: &[(&str, &str)], args: &[&str]| {
        let mut c = cutter();
        c.env("CUTTER_STATE_DIR", &state)
            .env("CUTTER_PG_BINDIR", "/opt/pg/bin")
            .env("CUTTER_VALIDITY_HOURS", "48")
            .env("PGPASSWORD", secrets[0])
            .env("CUTTER_BACKUP_PASSPHRASE", secrets[1])
            .env(
                "DATABASE_URL",
                format!("postgres://someone:{}@elsewhere.invalid/x", secrets[2]),
            )
            .env("PGSSLMODE", "require")
            .args(["config", "show"])
            .args(args);
        for (k, v) in extra {
            c.env(k, v);
        }
        c.output().unwrap()
    };
    let out = run(&[], &[]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let text = stdout(&out);
    let line = |key: &str| -> String {
        text.lines()
            .find(|l| l.starts_with(key))
            .unwrap_or_else(|| panic!("no line for {key} in:\n{text}"))
            .to_owned()
    };
    let file = toml.display().to_string();
    assert!(
        line("config").contains("the state directory's cutter.toml"),
        "{text}"
    );
    assert!(
        line("[backup] pg_bindir").contains("/opt/pg/bin  (env CUTTER_PG_BINDIR)"),
        "{text}"
    );
    assert!(
        line("[approvals] validity_hours").contains("48  (env CUTTER_VALIDITY_HOURS)"),
        "{text}"
    );
    assert!(
        line("[run] actor").contains(&format!("file-actor  ({file} [run] actor)")),
        "{text}"
    );
    // The configured target wins over DATABASE_URL left in the shell.
    assert!(
        line("[database] url").contains(&format!(
            "postgres://cutter_exec@db.invalid/prod  ({file} [database] url)"
        )),
        "{text}"
    );
    assert!(
        line("[database] verify_user").contains("cutter_verify  (default)"),
        "{text}"
    );
    // The connection after libpq's rules (PGSSLMODE applies), and the secrets' presence.
    assert!(text.contains("sslmode=require"), "{text}");
    assert!(text.contains("PGPASSWORD set"), "{text}");
    assert!(text.contains("CUTTER_BACKUP_PASSPHRASE set"), "{text}");
    for s in secrets {
        assert!(!text.contains(s), "{s} leaked:\n{text}");
    }

    // --json: the same, machine-readable.
    let out = run(&[("CUTTER_ACTOR", "env-actor")], &["--json"]);
    assert!(out.status.success());
    let v: Value = serde_json::from_slice(&out.stdout).unwrap();
    let setting = |key: &str| setting_of(&v, key);
    assert_eq!(setting("[run] actor")["value"], "env-actor");
    assert_eq!(
        setting("[run] actor")["source"],
        serde_json::json!({"kind": "env", "name": "CUTTER_ACTOR"})
    );
    assert_eq!(setting("[database] url")["source"]["kind"], "file");
    assert_eq!(setting("[database] url")["source"]["key"], "[database] url");
    assert_eq!(setting("[backup] pg_bindir")["value"], "/opt/pg/bin");
    assert!(v["connection"]["url"]
        .as_str()
        .unwrap()
        .contains("db.invalid"));
    for s in secrets {
        assert!(!v.to_string().contains(s), "{s} leaked: {v}");
    }

    // Without a configured target, DATABASE_URL is used, named, and shown redacted.
    let empty = work.path().join("empty");
    std::fs::create_dir(&empty).unwrap();
    let out = run(
        &[("CUTTER_STATE_DIR", empty.to_str().unwrap())],
        &["--json"],
    );
    let v: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(
        setting_of(&v, "[database] url")["source"],
        serde_json::json!({"kind": "env", "name": "DATABASE_URL"})
    );
    let shown = setting_of(&v, "[database] url")["value"].to_string();
    assert!(
        shown.contains("elsewhere.invalid") && shown.contains("redacted"),
        "{shown}"
    );
    assert!(!v.to_string().contains(secrets[2]), "{v}");
}

fn setting_of(v: &Value, key: &str) -> Value {
    v["settings"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["key"] == key)
        .unwrap_or_else(|| panic!("{key} missing: {v}"))
        .clone()
}

#[test]
fn cutter_pg_bindir_chooses_the_pg_dump_the_selftest_checks() {
    let work = tempfile::tempdir().unwrap();
    let state = work.path().join("state");
    cutter().arg("init").arg(&state).assert().success();
    let real = cutter_pg::pg_bindir().unwrap_or_else(|e| panic!("{e}"));
    let links = work.path().join("links");
    std::fs::create_dir(&links).unwrap();
    for p in ["pg_dump", "pg_restore"] {
        std::os::unix::fs::symlink(real.join(p), links.join(p)).unwrap();
    }
    let selftest = |bindir: &std::path::Path| {
        let out = cutter()
            .env("CUTTER_STATE_DIR", &state)
            .env("CUTTER_PG_BINDIR", bindir)
            // No server is needed for this check; never reach one by accident.
            .args(["--database-url", "host=/nonexistent-socket-dir"])
            .args(["backup", "selftest", "--json"])
            .output()
            .unwrap();
        let v: Value = serde_json::from_slice(&out.stdout)
            .unwrap_or_else(|e| panic!("{e}: {}", String::from_utf8_lossy(&out.stdout)));
        v["checks"]
            .as_array()
            .unwrap()
            .iter()
            .find(|c| c["check"] == "pg_dump")
            .unwrap_or_else(|| panic!("no pg_dump check: {v}"))
            .clone()
    };
    // The symlinked real programs: found there (not through pg_config) and run.
    let ok = selftest(&links);
    assert_eq!(ok["ok"], true, "{ok}");
    assert!(
        ok["detail"]
            .as_str()
            .unwrap()
            .contains(&links.join("pg_dump").display().to_string()),
        "{ok}"
    );
    // A wrong directory: the check fails naming it and the setting.
    let wrong = work.path().join("no-such-bin");
    let bad = selftest(&wrong);
    assert_eq!(bad["ok"], false, "{bad}");
    let detail = bad["detail"].as_str().unwrap();
    assert!(detail.contains(&wrong.display().to_string()), "{detail}");
    assert!(detail.contains("CUTTER_PG_BINDIR"), "{detail}");
}
