//! Throwaway clusters: started in a private temporary directory, password-protected,
//! run as the unprivileged `postgres` user when we are root, stopped and removed on drop.

use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::Path;

use cutter_pg::{Cluster, Password};

fn process_alive(pid: u32) -> bool {
    Path::new(&format!("/proc/{pid}")).exists()
        && std::fs::read_to_string(format!("/proc/{pid}/stat"))
            .map(|s| !s.contains(") Z "))
            .unwrap_or(false)
}

#[test]
fn a_cluster_runs_privately_and_is_removed_on_drop() {
    let cluster = Cluster::start().unwrap();
    let dir = cluster.dir().to_path_buf();
    let pid = cluster.pid().unwrap();
    assert!(process_alive(pid));
    assert!(dir.join("data/PG_VERSION").exists());
    let meta = std::fs::metadata(cluster.socket_dir()).unwrap();
    assert_eq!(meta.permissions().mode() & 0o777, 0o700);
    let meta = std::fs::metadata(&dir).unwrap();
    assert_eq!(meta.permissions().mode() & 0o777, 0o700);
    // Running as root: the server runs as postgres, never as root.
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    let uid: u32 = status
        .lines()
        .find(|l| l.starts_with("Uid:"))
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|u| u.parse().ok())
        .unwrap();
    assert_ne!(uid, 0, "the server must not run as root");
    assert_eq!(
        meta.uid(),
        uid,
        "the directory belongs to the server's user"
    );
    // The superuser password works; another does not.
    let mut c = cluster.connect("postgres").unwrap();
    let listen: String = c.query_one("SHOW listen_addresses", &[]).unwrap().get(0);
    assert_eq!(listen, "127.0.0.1");
    drop(c);
    let wrong = cluster
        .config("postgres", "postgres", Some(Password::new("nope")))
        .unwrap();
    assert!(wrong.connect().is_err());
    // The password file given to initdb is gone.
    assert!(!dir.join("pwfile").exists());
    let sysid = cluster.system_identifier().unwrap();
    assert!(sysid.get() > 0);

    drop(cluster);
    assert!(!dir.exists(), "{} left behind", dir.display());
    assert!(!process_alive(pid), "server {pid} still running");
}

#[test]
fn two_clusters_are_independent_and_stop_explicitly() {
    let a = Cluster::start().unwrap();
    let b = Cluster::start().unwrap();
    assert_ne!(a.port(), b.port());
    assert_ne!(a.dir(), b.dir());
    assert_ne!(
        a.system_identifier().unwrap(),
        b.system_identifier().unwrap()
    );
    a.create_database("only in a \"quoted\"; $$", None).unwrap();
    let mut ca = a.connect("only in a \"quoted\"; $$").unwrap();
    ca.query_one("SELECT 1", &[]).unwrap();
    drop(ca);
    assert!(b.connect("only in a \"quoted\"; $$").is_err());
    a.drop_database("only in a \"quoted\"; $$").unwrap();
    let (da, db) = (a.dir().to_path_buf(), b.dir().to_path_buf());
    a.stop().unwrap();
    assert!(!da.exists());
    assert!(db.exists());
    b.stop().unwrap();
    assert!(!db.exists());
}

#[test]
fn a_restart_ends_every_session_and_keeps_port_data_and_identity() {
    let mut cluster = Cluster::start().unwrap();
    let (port, sysid, pid) = (
        cluster.port(),
        cluster.system_identifier().unwrap(),
        cluster.pid().unwrap(),
    );
    let mut c = cluster.connect("postgres").unwrap();
    c.batch_execute("CREATE TABLE kept (x int); INSERT INTO kept VALUES (1)")
        .unwrap();
    let mut open = cluster.connect("postgres").unwrap();
    open.batch_execute("BEGIN; INSERT INTO kept VALUES (2)")
        .unwrap();

    cluster.restart().unwrap();

    assert!(!process_alive(pid), "the old server {pid} still runs");
    assert_ne!(cluster.pid(), Some(pid));
    assert_eq!(cluster.port(), port);
    assert!(c.query_one("SELECT 1", &[]).is_err(), "old sessions end");
    assert!(open.batch_execute("COMMIT").is_err());
    let mut c = cluster.connect("postgres").unwrap();
    let rows: i64 = c
        .query_one("SELECT count(*) FROM kept", &[])
        .unwrap()
        .get(0);
    assert_eq!(
        rows, 1,
        "committed data survives, the open transaction rolled back"
    );
    assert_eq!(cluster.system_identifier().unwrap(), sysid);
    drop(c);
    let dir = cluster.dir().to_path_buf();
    let pid = cluster.pid().unwrap();
    drop(cluster);
    assert!(!dir.exists());
    assert!(!process_alive(pid));
}

#[test]
fn a_kept_cluster_keeps_running_with_its_settings_until_torn_down() {
    let cluster = Cluster::start().unwrap();
    let (port, sysid, old_pid) = (
        cluster.port(),
        cluster.system_identifier().unwrap(),
        cluster.pid().unwrap(),
    );
    let config = cluster.superuser_config("postgres").unwrap();
    let kept = cluster.keep().unwrap();
    // A new server (detached through pg_ctl) on the same port, data and settings.
    let pid = kept.pid.unwrap();
    assert_ne!(pid, old_pid);
    assert!(process_alive(pid) && !process_alive(old_pid));
    assert_eq!(kept.port, port);
    let mut c = config.connect().unwrap();
    let row = c
        .query_one(
            "SELECT current_setting('cluster_name'), current_setting('listen_addresses')",
            &[],
        )
        .unwrap();
    assert_eq!(row.get::<_, String>(0), cutter_pg::THROWAWAY_CLUSTER_NAME);
    assert_eq!(row.get::<_, String>(1), "127.0.0.1");
    assert_eq!(
        cutter_pg::surface::system_identifier(&mut c).unwrap(),
        sysid
    );
    drop(c);
    let command = kept.teardown_command();
    assert!(command.contains("stop -m fast") && command.contains(&*kept.dir.to_string_lossy()));
    let dir = kept.dir.clone();
    kept.teardown().unwrap();
    assert!(!process_alive(pid));
    assert!(!dir.exists());
}

#[test]
fn shell_quote_survives_spaces_quotes_and_metacharacters() {
    for p in [
        "/tmp/plain",
        "/tmp/a b",
        "/tmp/it's; rm -rf x $HOME `id`",
        "/tmp/'",
    ] {
        let quoted = cutter_pg::shell_quote(Path::new(p));
        let out = std::process::Command::new("sh")
            .arg("-c")
            .arg(format!("printf %s {quoted}"))
            .output()
            .unwrap();
        assert_eq!(String::from_utf8_lossy(&out.stdout), p, "{quoted}");
    }
}
