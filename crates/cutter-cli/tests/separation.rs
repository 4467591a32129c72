//! Separation of duties, tried the way an operator who wants to bypass it would: with
//! the real binary, the environment they control, and the superuser's credentials.

mod common;

use common::World;

fn text(o: &std::process::Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    )
}

/// The operator makes an approver set of their own through CUTTER_APPROVER_KEYS and
/// signs SG_1 and SG_2 with those keys: refused before anything happens.
#[test]
fn self_approval_through_the_environment_is_refused() {
    let w = World::new();
    let before = w.snapshot();
    // mallory is not an approver; she adds her own key to the set through the
    // environment and signs SG_1 herself, SG_2 with bob's key being irrelevant.
    let own = std::env::join_paths([&w.approvers[2].public, &w.approvers[1].public])
        .unwrap()
        .into_string()
        .unwrap();
    let a = w.approvals_for("r-self", &w.plan, [2, 1], w.db.system_identifier(), 3600);
    let mut c = w.cmd();
    c.env("CUTTER_APPROVER_KEYS", &own)
        .args(["kill-switch", "disarm", "--run-id", "r-self", "--plan"])
        .arg(&w.plan);
    for x in &a {
        c.args(["--approval", x]);
    }
    let o = c.output().unwrap();
    assert_eq!(o.status.code(), Some(3), "{}", text(&o));
    assert!(text(&o).contains("CUTTER_APPROVER_KEYS"), "{}", text(&o));
    assert!(text(&o).contains("mallory.pub.asc"), "{}", text(&o));
    assert!(w.kill_switch().contains("engaged"), "{}", w.kill_switch());
    let o = w
        .run_live("r-self", &a)
        .env("CUTTER_APPROVER_KEYS", &own)
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(3), "{}", text(&o));
    assert_eq!(w.snapshot(), before);
    assert!(!w.state.join("runs/r-self").exists());
}

/// BACKUP_GPG_FPR naming another key than the config file's pin: refused, naming both.
#[test]
fn an_environment_pin_that_disagrees_with_the_file_is_refused() {
    let w = World::new();
    let before = w.snapshot();
    let a = w.disarm("r-pin");
    let other = "0123456789ABCDEF0123456789ABCDEF01234567";
    for args in [vec!["backup", "create", "--name", "b-pin"], vec!["doctor"]] {
        let o = w
            .cmd()
            .env("BACKUP_GPG_FPR", other)
            .args(&args)
            .output()
            .unwrap();
        assert_eq!(o.status.code(), Some(3), "{args:?}: {}", text(&o));
        assert!(
            text(&o).contains(&format!("BACKUP_GPG_FPR says {other}")),
            "{}",
            text(&o)
        );
    }
    let o = w
        .run_live("r-pin", &a)
        .env("BACKUP_GPG_FPR", other)
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(3), "{}", text(&o));
    assert_eq!(w.snapshot(), before);
    assert!(!w
        .state
        .join("backups")
        .read_dir()
        .map(|mut d| d.next().is_some())
        .unwrap_or(false));
}

/// `cutter run` with the superuser's credentials (`sudo -u postgres cutter run …`):
/// every mutating phase refuses a superuser inside its transaction, so nothing is
/// written and the run ends held.
#[test]
fn a_live_run_as_a_superuser_is_refused() {
    let w = World::new();
    let before = w.snapshot();
    let c = w.db.coordinates();
    let cfg = std::fs::read_to_string(&w.config).unwrap();
    std::fs::write(
        &w.config,
        cfg.replace(
            "postgres://cutter_exec@",
            &format!("postgres://{}@", c.superuser),
        ),
    )
    .unwrap();
    let a = w.disarm("r-super");
    let o = w.run_live("r-super", &a).output().unwrap();
    assert_ne!(o.status.code(), Some(0), "{}", text(&o));
    let t = text(&o);
    assert!(
        t.contains(&format!("connected as {}, a superuser", c.superuser)),
        "{t}"
    );
    assert_eq!(
        World::live_statuses(&w.snapshot()),
        World::live_statuses(&before)
    );
    assert_eq!(
        w.snapshot().rows("public.information_unit"),
        before.rows("public.information_unit")
    );
}
