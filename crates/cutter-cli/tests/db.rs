//! `cutter db` with the real binary: adopting the earlier tool's production database
//! (status → upgrade --dry-run → upgrade → doctor → a live run → ledger verify), the
//! owner rule, and `kill -9` in the middle of an upgrade.

mod common;

use std::time::{Duration, Instant};

use common::{text, World};
use cutter_pg::migrate::{self, IndexState, Shape};
use cutter_pg::schema::REFERENCE_VERSION;

#[test]
fn the_earlier_tools_database_is_adopted_then_runs_live_and_verifies() {
    let w = World::legacy();
    let owner = w.owner_url();

    // status: the shape, what an upgrade would apply, the drift and the extra grant.
    let o = w
        .cmd()
        .args(["db", "status", "--owner-url", &owner])
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    let t = text(&o);
    for needle in [
        "schema: the earlier tool's schema (no recorded version)",
        "upgrade would apply",
        "  - A1__adopt_legacy.sql",
        "  - V3__history_and_anchors.sql",
        "build index public.information_unit_change_set CONCURRENTLY (declared by A1__adopt_legacy.sql)",
        "table cutter_governance.review_decision",
        "EXTRA: UPDATE",
    ] {
        assert!(t.contains(needle), "{needle} not in\n{t}");
    }
    // The fixture's one grant the reference does not make, and the earlier tool's
    // EXECUTE on the per-row fn_iu_create (not the writer's since V5), and no other.
    assert_eq!(t.matches("EXTRA: ").count(), 2, "{t}");
    assert!(
        t.contains("function public.fn_iu_create(text,text,text,text,text,text,text,text,text,text,text) EXECUTE  EXTRA: EXECUTE"),
        "{t}"
    );
    // The writer's doctor fails before adoption.
    assert_eq!(
        w.cmd().arg("doctor").output().unwrap().status.code(),
        Some(1)
    );

    // --dry-run prints the SQL and applies nothing.
    let o = w
        .cmd()
        .args(["db", "upgrade", "--dry-run", "--owner-url", &owner])
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    let t = text(&o);
    assert!(t.contains("nothing applied (--dry-run)"), "{t}");
    assert!(
        t.contains("CREATE TABLE cutter_governance.ledger_anchor"),
        "{t}"
    );
    assert!(
        t.contains("CREATE INDEX CONCURRENTLY iu_lifecycle_log_unit"),
        "{t}"
    );
    assert!(t.contains("SET lock_timeout = '10000ms';"), "{t}");
    assert_eq!(migrate::detect(&mut w.db.admin()).unwrap(), Shape::Legacy);

    // upgrade, as the owner.
    let o = w
        .cmd()
        .args(["db", "upgrade", "--owner-url", &owner])
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    assert!(
        text(&o).contains(&format!("→ version {REFERENCE_VERSION} in ")),
        "{}",
        text(&o)
    );
    // Twice is a no-op.
    let o = w
        .cmd()
        .args(["--json", "db", "upgrade", "--owner-url", &owner])
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(v["done"].as_array().map(Vec::len), Some(0), "{v}");
    assert_eq!(v["to"], REFERENCE_VERSION);

    // The owner registers the first two approvers alone (the bootstrap, recorded as
    // such); a third needs an approver-change approval by two of them.
    let o = w
        .cmd()
        .args(["approvers", "add"])
        .arg(&w.approvers[0].public)
        .args(["--name", "alice", "--owner-url", &owner])
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    assert!(
        text(&o).contains("bootstrap by the schema owner"),
        "{}",
        text(&o)
    );
    let o = w
        .cmd()
        .args(["--json", "approvers", "add"])
        .arg(&w.approvers[1].public)
        .args(["--name", "bob", "--owner-url", &owner])
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    common::contract::success("approvers_change", &v);
    assert_eq!(v["bootstrap"], true, "{v}");
    let o = w
        .cmd()
        .args(["approvers", "add"])
        .arg(&w.approvers[2].public)
        .args(["--name", "mallory", "--owner-url", &owner])
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(3), "{}", text(&o));
    assert!(
        text(&o).contains("needs SG_1 and SG_2 approver-change approvals"),
        "{}",
        text(&o)
    );
    let o = w
        .cmd()
        .args(["--json", "approvers", "list"])
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    let names: Vec<&str> = v["approvers"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["alice", "bob"], "{v}");

    // doctor passes, validate is clean, a live run succeeds.
    let o = w.cmd().arg("doctor").output().unwrap();
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    let o = w.cmd().args(["db", "validate"]).output().unwrap();
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    let a = w.disarm("r-adopted");
    let o = w.run_live("r-adopted", &a).output().unwrap();
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    assert!(
        text(&o).contains("run r-adopted succeeded: 12 units created"),
        "{}",
        text(&o)
    );

    // ledger verify covers the genesis entries and the new rows.
    let o = w
        .cmd()
        .args(["--json", "ledger", "verify"])
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(v["intact"], true);
    let tables = v["ledger"]["tables"].as_array().unwrap();
    for (t, (name, legacy)) in tables.iter().zip(cutter_pg::fixtures::LEGACY_LEDGER_ROWS) {
        assert_eq!(t["table"], name);
        assert_eq!(t["anchor"]["row_count"], legacy, "{t}");
        assert!(
            t["rows"].as_i64().unwrap() > legacy,
            "no new rows in {name}: {t}"
        );
    }
}

#[test]
fn the_writer_cannot_upgrade_and_an_owner_is_required() {
    let w = World::legacy();
    let c = w.db.coordinates();
    let o = w.cmd().args(["db", "upgrade"]).output().unwrap();
    assert_eq!(o.status.code(), Some(2), "{}", text(&o));
    assert!(text(&o).contains("--owner-url"), "{}", text(&o));
    for role in ["cutter_exec", "cutter_verify"] {
        let url = format!(
            "postgres://{role}@{}:{}/{}?sslmode=disable",
            c.host,
            c.port,
            w.db.name()
        );
        let o = w
            .cmd()
            .args(["db", "upgrade", "--owner-url", &url])
            .output()
            .unwrap();
        assert_eq!(o.status.code(), Some(3), "{role}: {}", text(&o));
        assert!(text(&o).contains("never"), "{}", text(&o));
    }
    assert_eq!(migrate::detect(&mut w.db.admin()).unwrap(), Shape::Legacy);
}

/// `cutter db upgrade` as the owner, which must succeed.
fn upgrade_ok(w: &World) {
    let o = w
        .cmd()
        .args(["db", "upgrade", "--owner-url", &w.owner_url()])
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
}

/// The upgrade's backend, once it waits for a lock: its pid.
fn wait_for_blocked_upgrade(w: &World) -> i32 {
    let started = Instant::now();
    let mut c = w.db.admin();
    loop {
        let r = c
            .query_opt(
                "SELECT pid FROM pg_stat_activity WHERE application_name = $1 \
                   AND datname = current_database() AND wait_event_type = 'Lock'",
                &[&migrate::APPLICATION_NAME],
            )
            .unwrap();
        if let Some(r) = r {
            return r.get(0);
        }
        assert!(
            started.elapsed() < Duration::from_secs(60),
            "the upgrade never blocked"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// After the client is killed, the server ends its backend (client_connection_check_interval).
fn wait_for_backend_gone(w: &World, pid: i32) {
    let started = Instant::now();
    let mut c = w.db.admin();
    while c
        .query_opt("SELECT 1 FROM pg_stat_activity WHERE pid = $1", &[&pid])
        .unwrap()
        .is_some()
    {
        assert!(
            started.elapsed() < Duration::from_secs(30),
            "backend {pid} outlived its killed client"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

fn spawn_upgrade(w: &World) -> std::process::Child {
    w.std_cmd()
        .args([
            "db",
            "upgrade",
            "--lock-timeout-ms",
            "600000",
            "--owner-url",
        ])
        .arg(w.owner_url())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap()
}

/// kill -9 while A1's transaction waits for a lock: nothing of it stays, and the next
/// upgrade applies everything.
#[test]
fn kill_9_inside_a_transactional_step_leaves_the_previous_version() {
    let w = World::legacy();
    let mut holder = w.db.admin();
    holder
        .batch_execute("BEGIN; SELECT count(*) FROM cutter_governance.review_decision")
        .unwrap();
    let mut child = spawn_upgrade(&w);
    let pid = wait_for_blocked_upgrade(&w);
    child.kill().unwrap(); // SIGKILL
    child.wait().unwrap();
    wait_for_backend_gone(&w, pid);
    holder.batch_execute("ROLLBACK").unwrap();
    let mut c = w.db.admin();
    assert_eq!(migrate::detect(&mut c).unwrap(), Shape::Legacy);
    upgrade_ok(&w);
    assert_eq!(
        migrate::detect(&mut c).unwrap().version(),
        Some(REFERENCE_VERSION)
    );
    assert!(w.db.target().preflight().unwrap().is_ok());
}

/// kill -9 during a CONCURRENTLY build: the version whose transaction committed stays
/// recorded, the index is left INVALID, and the next upgrade rebuilds it and goes on.
#[test]
fn kill_9_during_a_concurrent_index_build_is_finished_by_the_next_upgrade() {
    let w = World::legacy();
    let mut holder = w.db.admin();
    holder
        .batch_execute(
            "BEGIN ISOLATION LEVEL REPEATABLE READ; SELECT count(*) FROM public.information_unit",
        )
        .unwrap();
    let mut child = spawn_upgrade(&w);
    let pid = wait_for_blocked_upgrade(&w);
    let mut c = w.db.admin();
    assert_eq!(
        migrate::index_state(&mut c, "public.information_unit_change_set").unwrap(),
        IndexState::Invalid,
        "the build is under way"
    );
    child.kill().unwrap();
    child.wait().unwrap();
    wait_for_backend_gone(&w, pid);
    holder.batch_execute("ROLLBACK").unwrap();
    assert_eq!(migrate::detect(&mut c).unwrap().version(), Some(1));
    assert_eq!(
        migrate::index_state(&mut c, "public.information_unit_change_set").unwrap(),
        IndexState::Invalid
    );
    let o = w
        .cmd()
        .args(["db", "status", "--owner-url", &w.owner_url()])
        .output()
        .unwrap();
    assert!(
        text(&o).contains("rebuild INVALID index public.information_unit_change_set"),
        "{}",
        text(&o)
    );
    let o = w.cmd().args(["db", "validate"]).output().unwrap();
    assert_eq!(o.status.code(), Some(1), "{}", text(&o));
    upgrade_ok(&w);
    assert_eq!(
        migrate::index_state(&mut c, "public.information_unit_change_set").unwrap(),
        IndexState::Valid
    );
    assert_eq!(
        migrate::detect(&mut c).unwrap().version(),
        Some(REFERENCE_VERSION)
    );
    let o = w.cmd().args(["db", "validate"]).output().unwrap();
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
}

#[test]
fn install_into_an_empty_database_only() {
    let w = World::legacy();
    let o = w
        .cmd()
        .args(["db", "install", "--owner-url", &w.owner_url()])
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(1), "{}", text(&o));
    assert!(
        text(&o).contains("the database is not empty"),
        "{}",
        text(&o)
    );
    let empty = cutter_pg::testing::TestDb::empty();
    let c = empty.coordinates();
    let url = format!(
        "postgres://{}@{}:{}/{}?sslmode=disable",
        c.superuser,
        c.host,
        c.port,
        empty.name()
    );
    let pgpass = w.work.path().join("pgpass-empty");
    std::fs::write(
        &pgpass,
        format!(
            "{}:{}:{}:{}:{}\n",
            c.host,
            c.port,
            empty.name(),
            c.superuser,
            c.superuser_password
        ),
    )
    .unwrap();
    std::fs::set_permissions(
        &pgpass,
        <std::fs::Permissions as std::os::unix::fs::PermissionsExt>::from_mode(0o600),
    )
    .unwrap();
    let o = w
        .cmd()
        .env("PGPASSFILE", &pgpass)
        .args(["db", "install", "--baseline", "--owner-url", &url])
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    assert!(
        text(&o).contains("baseline fixture: 158 units"),
        "{}",
        text(&o)
    );
    assert_eq!(empty.count("public.information_unit"), 158);
    assert!(empty.admin_target().preflight().unwrap().is_ok());
}
