//! The operator's surface around the commands: `--version`, shell completions, man
//! pages, and logs (levels, JSON lines, the log file, and no secret in any of them).

mod common;

use common::{cutter, text, World};

#[test]
fn version_names_the_schema_version_and_the_pg_dump_found() {
    let o = cutter().arg("--version").output().unwrap();
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    let v = String::from_utf8(o.stdout).unwrap();
    assert!(
        v.starts_with(&format!("cutter {}\n", env!("CARGO_PKG_VERSION"))),
        "{v}"
    );
    assert!(
        v.contains(&format!(
            "schema: cutter reference schema version {} ",
            cutter_pg::schema::REFERENCE_VERSION
        )),
        "{v}"
    );
    let pg_dump = cutter_pg::pg_bindir().unwrap().join("pg_dump");
    assert!(
        v.contains(&format!("pg_dump: {} (", pg_dump.display())),
        "{v}"
    );
    // Without pg_config on PATH there is no pg_dump to find: said, never a failure.
    let o = cutter()
        .arg("-V")
        .env("PATH", "/nonexistent")
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    let v = String::from_utf8(o.stdout).unwrap();
    assert!(v.contains("\npg_dump: not found ("), "{v}");
    assert!(v.contains("schema: cutter reference schema version"), "{v}");
}

/// The commands every completion script must offer.
const COMMANDS: [&str; 8] = [
    "run",
    "backup",
    "ledger",
    "kill-switch",
    "completions",
    "restore-proof",
    "log",
    "list",
];

#[test]
fn completion_scripts_are_valid_and_offer_every_command() {
    for shell in ["bash", "zsh", "fish"] {
        let o = cutter().args(["completions", shell]).output().unwrap();
        assert_eq!(o.status.code(), Some(0), "{shell}: {}", text(&o));
        let script = String::from_utf8(o.stdout).unwrap();
        for c in COMMANDS {
            assert!(script.contains(c), "{shell}: no {c} in\n{script}");
        }
        if shell == "bash" {
            let dir = tempfile::tempdir().unwrap();
            let f = dir.path().join("cutter.bash");
            std::fs::write(&f, &script).unwrap();
            let check = std::process::Command::new("bash")
                .arg("-n")
                .arg(&f)
                .output()
                .unwrap();
            assert!(check.status.success(), "bash -n: {}", text(&check));
            // Sourced, it registers the completion function for `cutter`.
            let registered = std::process::Command::new("bash")
                .arg("-c")
                .arg(format!("source {} && complete -p cutter", f.display()))
                .output()
                .unwrap();
            assert!(
                String::from_utf8_lossy(&registered.stdout).contains("_cutter"),
                "{}",
                text(&registered)
            );
        }
    }
    cutter()
        .args(["completions", "powershell"])
        .assert()
        .code(2);
}

#[test]
fn man_pages_render_for_every_command() {
    let dir = tempfile::tempdir().unwrap();
    let pages = cutter_cli::manual::man_pages(dir.path()).unwrap();
    let names: Vec<String> = pages
        .iter()
        .map(|p| p.file_name().unwrap().to_string_lossy().into_owned())
        .collect();
    for want in [
        "cutter.1",
        "cutter-run.1",
        "cutter-backup-list.1",
        "cutter-ledger-log.1",
        "cutter-db-upgrade.1",
        "cutter-completions.1",
    ] {
        assert!(names.iter().any(|n| n == want), "no {want} in {names:?}");
    }
    let roff = std::fs::read_to_string(dir.path().join("cutter-ledger-log.1")).unwrap();
    for needle in [
        ".TH cutter-ledger-log 1",
        ".SH SYNOPSIS",
        "\\-\\-run\\-id",
        "sqitch log",
    ] {
        assert!(roff.contains(needle), "{needle} missing from\n{roff}");
    }
    // Rendered by man, as an operator reads it.
    let o = std::process::Command::new("man")
        .arg("-l")
        .arg(dir.path().join("cutter-run.1"))
        .env("MANPAGER", "cat")
        .env("MANWIDTH", "100")
        .env("LANG", "C.UTF-8")
        .output()
        .unwrap();
    assert!(o.status.success(), "man -l: {}", text(&o));
    let page = String::from_utf8_lossy(&o.stdout);
    for needle in [
        "cutter-run",
        "SYNOPSIS",
        "--run-id",
        "--approval",
        "dry-run",
    ] {
        assert!(
            page.contains(needle),
            "{needle} missing from the rendered page:\n{page}"
        );
    }
}

/// Everything secret the world holds: passwords and the backup passphrase.
fn secrets(w: &World) -> Vec<String> {
    let c = w.db.coordinates();
    vec![
        c.exec_password.to_string(),
        c.verify_password.to_string(),
        c.superuser_password.to_string(),
        w.backup_passphrase.clone(),
    ]
}

#[test]
fn log_levels_json_lines_log_file_and_no_secret() {
    let w = World::new();
    let secrets = secrets(&w);
    let mut everything = String::new();
    // Default: information (the backup's "backup written") on stderr.
    let o = w
        .cmd()
        .args(["backup", "create", "--name", "b-default"])
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    let err = String::from_utf8_lossy(&o.stderr).into_owned();
    assert!(
        err.contains(" INFO ") && err.contains("backup written"),
        "{err}"
    );
    assert!(!err.contains("DEBUG"), "{err}");
    everything.push_str(&text(&o));
    // -q: errors only.
    let o = w
        .cmd()
        .args(["-q", "backup", "create", "--name", "b-quiet"])
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    let err = String::from_utf8_lossy(&o.stderr).into_owned();
    assert!(
        !err.contains("INFO") && !err.contains("backup written"),
        "{err}"
    );
    everything.push_str(&text(&o));
    // -v: debug (the .pgpass line used, never the password on it).
    let o = w.cmd().args(["-v", "db", "status"]).output().unwrap();
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    let err = String::from_utf8_lossy(&o.stderr).into_owned();
    assert!(
        err.contains("DEBUG") && err.contains("using the password from"),
        "{err}"
    );
    everything.push_str(&text(&o));
    // -vv --log-format json --log-file: JSON lines in the file (appended, 0600) and on
    // stderr, each with its level and message.
    let log = w.work.path().join("cutter.log");
    for name in ["b-json-1", "b-json-2"] {
        let o = w
            .cmd()
            .args(["-vv", "--log-format", "json", "--log-file"])
            .arg(&log)
            .args(["backup", "create", "--name", name])
            .output()
            .unwrap();
        assert_eq!(o.status.code(), Some(0), "{}", text(&o));
        for line in String::from_utf8_lossy(&o.stderr).lines() {
            let v: serde_json::Value = serde_json::from_str(line)
                .unwrap_or_else(|e| panic!("stderr line is not JSON ({e}): {line}"));
            assert!(v["level"].is_string(), "{line}");
        }
        everything.push_str(&text(&o));
    }
    use std::os::unix::fs::PermissionsExt;
    assert_eq!(
        std::fs::metadata(&log).unwrap().permissions().mode() & 0o777,
        0o600
    );
    let file = std::fs::read_to_string(&log).unwrap();
    let lines: Vec<serde_json::Value> = file
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("not JSON ({e}): {l}")))
        .collect();
    let written: Vec<&serde_json::Value> = lines
        .iter()
        .filter(|l| l["fields"]["message"] == "backup written")
        .collect();
    assert_eq!(written.len(), 2, "appended, one per run: {file}");
    assert!(written[0]["fields"]["artifact"]
        .as_str()
        .unwrap()
        .ends_with("b-json-1.dump.pgp"));
    assert!(lines.iter().any(|l| l["level"] == "DEBUG"), "{file}");
    assert!(lines.iter().all(|l| l["timestamp"].is_string()), "{file}");
    everything.push_str(&file);
    // A log file that cannot be opened stops the command before it runs.
    let o = w
        .cmd()
        .args(["--log-file"])
        .arg(w.work.path().join("no/such/dir/cutter.log"))
        .args(["backup", "create", "--name", "b-never"])
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(2), "{}", text(&o));
    assert!(text(&o).contains("--log-file"), "{}", text(&o));
    assert!(!w.state.join("backups/b-never.dump.pgp").exists());
    // No secret anywhere, at any level.
    for s in &secrets {
        assert!(
            !everything.contains(s.as_str()),
            "a secret appears in the logs"
        );
    }
}
