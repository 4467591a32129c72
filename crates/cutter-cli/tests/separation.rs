//! Separation of duties, tried the way an operator who wants to bypass it would: with
//! the real binary, the environment they control, and the superuser's credentials.

mod common;

use common::{text, World};

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
    let a = w.approvals_for("r-self", &w.plan, [2, 1], w.database(), 3600);
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
    w.connect_as(&c.superuser);
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

/// The writer appends, with `psql`, a pair-signature row naming a registered approver's
/// fingerprint over a statement that approver never signed (it names this database, a
/// live run and the row's gate, so the database's own checks pass: it cannot check an
/// OpenPGP signature), with a correct hash-chain link (the canonical form is
/// documented): the chains stay intact, and `ledger verify` still fails, naming the
/// table and the row.
#[test]
fn a_forged_approval_row_is_found_by_ledger_verify() {
    let w = World::new();
    let a = w.disarm("r-real");
    let o = w.run_live("r-real", &a).output().unwrap();
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    let o = w.cmd().args(["ledger", "verify"]).output().unwrap();
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    assert!(
        text(&o).contains("approval signatures: 2 re-verified over 1 run(s)"),
        "{}",
        text(&o)
    );

    let mut c = w.db.exec_config().connect().unwrap();
    let tail = c
        .query_one(
            "SELECT row_hash, signer_fpr, statement, signature, gate FROM cutter_governance.dot_pair_signature ORDER BY id DESC LIMIT 1",
            &[],
        )
        .unwrap();
    let (prev, fpr, statement, signature, gate): (String, String, String, String, String) = (
        tail.get(0),
        tail.get(1),
        tail.get(2),
        tail.get(3),
        tail.get(4),
    );
    let forged_statement = statement.replace("r-real", "r-forged");
    assert_ne!(forged_statement, statement);
    let id: i64 = c
        .query_one(
            "SELECT nextval(pg_get_serial_sequence('cutter_governance.dot_pair_signature', 'id'))",
            &[],
        )
        .unwrap()
        .get(0);
    let created = "2026-12-05T08:00:00.000000Z";
    let mut h = cutter_core::CanonicalHasher::new("cutter-ledger-v1/dot_pair_signature");
    h.u64_field(id as u64);
    for v in [
        "r-forged",
        gate.as_str(),
        fpr.as_str(),
        forged_statement.as_str(),
        signature.as_str(),
        created,
    ] {
        h.opt_field(Some(v.as_bytes()));
    }
    h.opt_field(Some(prev.as_bytes()));
    let row_hash = h.finish().to_hex();
    c.execute(
        "INSERT INTO cutter_governance.dot_pair_signature \
           (id, run_id, gate, signer_fpr, statement, signature, created_at, prev_hash, row_hash) \
         VALUES ($1, 'r-forged', $7, $2, $3, $4, '2026-12-05 08:00:00+00', $5, $6)",
        &[
            &id,
            &fpr,
            &forged_statement,
            &signature,
            &prev,
            &row_hash,
            &gate,
        ],
    )
    .unwrap();

    let o = w
        .cmd()
        .args(["--json", "ledger", "verify"])
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(1), "{}", text(&o));
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(v["chains_intact"], true, "the forger linked the chain: {v}");
    assert_eq!(v["intact"], false);
    let failures = v["signatures"]["failures"].as_array().unwrap();
    assert_eq!(failures.len(), 1, "{v}");
    assert_eq!(failures[0]["id"], id);
    assert_eq!(failures[0]["run_id"], "r-forged");
    let o = w.cmd().args(["ledger", "verify"]).output().unwrap();
    assert!(
        text(&o).contains(&format!(
            "FAILED dot_pair_signature row id {id} (run r-forged)"
        )),
        "{}",
        text(&o)
    );
}

/// A HOLD lives in the database too: a second state directory cannot run while the
/// first one's failure is unresolved, `psql` as the writer cannot create a unit with
/// the function either, compensation still works, and the release (with both
/// approvals) lifts it for everyone; its approvals are re-verified by ledger verify.
#[test]
fn a_hold_in_the_database_stops_a_second_state_directory_until_released() {
    let w = World::new();
    let a = w.disarm("r-held");
    let o = w
        .run_live("r-held", &a)
        .env("CUTTER_FAILPOINT", "leg_b_record:before_commit:error")
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(4), "{}", text(&o));

    // Another state directory, same database and approvers.
    let other = w.work.path().join("other-state");
    w.cmd().arg("init").arg(&other).assert().success();
    let cfg = std::fs::read_to_string(&w.config).unwrap();
    std::fs::write(other.join("cutter.toml"), &cfg).unwrap();
    let in_other = |args: &[&str]| {
        let mut c = w.cmd();
        c.env("CUTTER_CONFIG", other.join("cutter.toml")).args(args);
        c.output().unwrap()
    };
    let b = w.approvals("r-elsewhere");
    let disarm_elsewhere = || {
        in_other(&[
            "kill-switch",
            "disarm",
            "--run-id",
            "r-elsewhere",
            "--plan",
            w.plan.to_str().unwrap(),
            "--approval",
            &b[0],
            "--approval",
            &b[1],
        ])
    };
    let o = disarm_elsewhere();
    assert_eq!(o.status.code(), Some(4), "{}", text(&o));
    assert!(
        text(&o)
            .contains("the database records an unresolved HOLD: the SG_3 escalation of run r-held"),
        "{}",
        text(&o)
    );

    // The writer's password and psql: the function refuses, nothing is written.
    let before = w.snapshot();
    let mut exec = w.db.exec_config().connect().unwrap();
    let e = exec
        .query(
            "SELECT * FROM public.fn_iu_create_batch('cs-r-elsewhere', 'held-doc', 'v1', 1, ARRAY['held/psql-1'], \
             ARRAY['Điều 1'], ARRAY['text'], ARRAY['mallory'], ARRAY['law_unit'], ARRAY['article'], ARRAY['law'], \
             ARRAY[NULL]::text[])",
            &[],
        )
        .unwrap_err();
    let db = e.as_db_error().expect("a server error");
    assert_eq!(db.code().code(), "55000", "{e}");
    assert!(db.message().contains("unresolved HOLD"), "{}", db.message());
    assert_eq!(w.snapshot(), before);

    // Compensation works while held; the release needs both approvals and lifts the
    // HOLD in the database as well.
    w.cmd()
        .args(["compensate", "--run-id", "r-held"])
        .assert()
        .success();
    // The failed run's own (live-run) approvals do not release its HOLD.
    let o = w
        .cmd()
        .args(["hold", "release", "--approval", &a[0], "--approval", &a[1]])
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(3), "{}", text(&o));
    assert!(
        text(&o)
            .contains("approves purpose live-run, but this action needs a hold-release approval"),
        "{}",
        text(&o)
    );
    let release = w.approvals_with(
        "r-held",
        &w.plan,
        [0, 1],
        cutter_core::Purpose::HoldRelease,
        None,
        w.database(),
        3600,
    );
    w.cmd()
        .args([
            "hold",
            "release",
            "--approval",
            &release[0],
            "--approval",
            &release[1],
        ])
        .assert()
        .success();
    let o = disarm_elsewhere();
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    let o = w
        .cmd()
        .args(["--json", "ledger", "verify"])
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    // SG_1 and SG_2 of r-held's run (dot_pair_signature rows are written by leg_b_record,
    // which failed) and the release's two approvals.
    assert!(v["signatures"]["verified"].as_u64().unwrap() >= 2, "{v}");

    // A release appended by hand, re-using those approvals for another escalation: the
    // database refuses it from the writer (its statements name r-held); appended by the
    // owner, whom no trigger binds, `ledger verify` finds it.
    let mut c = w.db.exec_config().connect().unwrap();
    cutter_governance::record_sg3(
        &mut c,
        &cutter_governance::Sg3Record::new(
            cutter_core::RunId::new("r-other").unwrap(),
            None,
            "forged failure",
            None,
            None,
        ),
        "mallory",
    )
    .unwrap();
    let approvals: String = c
        .query_one(
            "SELECT (payload -> 'approvals')::text FROM cutter_governance.review_decision WHERE decision = 'hold_released'",
            &[],
        )
        .unwrap()
        .get(0);
    let approvals: Vec<cutter_governance::ReleaseApproval> =
        serde_json::from_str(&approvals).unwrap();
    let refused = cutter_governance::record_hold_release(
        &mut c,
        &cutter_core::RunId::new("r-other").unwrap(),
        &approvals,
        "mallory",
    )
    .unwrap_err();
    assert!(
        refused
            .to_string()
            .contains("the HOLD release of run r-other refused"),
        "{refused}"
    );
    let forged = cutter_governance::record_hold_release(
        &mut w.db.admin(),
        &cutter_core::RunId::new("r-other").unwrap(),
        &approvals,
        "mallory",
    )
    .unwrap()
    .expect("a release row");
    let o = w.cmd().args(["ledger", "verify"]).output().unwrap();
    assert_eq!(o.status.code(), Some(1), "{}", text(&o));
    assert!(
        text(&o).contains(&format!(
            "FAILED review_decision row id {forged} (run r-other)"
        )),
        "{}",
        text(&o)
    );
}

/// A generic DATABASE_URL left set in the shell (another host, another database) does
/// not redirect a command whose config file names the target; a cutter.toml lying in
/// the current directory is not read unless asked for.
#[test]
fn a_stray_database_url_or_cutter_toml_never_redirects_the_target() {
    let w = World::new();
    let o = w
        .cmd()
        .env(
            "DATABASE_URL",
            "postgres://cutter_exec@127.0.0.1:1/elsewhere",
        )
        .arg("doctor")
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    assert!(
        text(&o).contains(&format!("/{}", w.db.name())),
        "{}",
        text(&o)
    );
    assert!(!text(&o).contains("elsewhere"), "{}", text(&o));
    // A planted cutter.toml in the working directory, naming another database: ignored
    // (the command has no config of its own, so it says there is no state directory).
    let cwd = w.work.path().join("cwd");
    std::fs::create_dir_all(&cwd).unwrap();
    std::fs::write(
        cwd.join("cutter.toml"),
        "state_dir = \".\"\n[database]\nurl = \"postgres://cutter_exec@127.0.0.1:1/elsewhere\"\n",
    )
    .unwrap();
    let o = common::cutter()
        .current_dir(&cwd)
        .args(["status"])
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(2), "{}", text(&o));
    assert!(text(&o).contains("no state directory"), "{}", text(&o));
}

/// Compensation and void, like a live run, refuse the superuser's credentials; as the
/// writer they go on.
#[test]
fn compensation_and_void_as_a_superuser_are_refused() {
    let w = World::new();
    let a = w.disarm("r-comp-super");
    let o = w
        .run_live("r-comp-super", &a)
        .env("CUTTER_FAILPOINT", "leg_b_record:before_commit:error")
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(4), "{}", text(&o));
    let su = w.db.coordinates().superuser.clone();
    w.connect_as(&su);
    let before = w.snapshot();
    let o = w
        .cmd()
        .args(["compensate", "--run-id", "r-comp-super"])
        .output()
        .unwrap();
    assert_ne!(o.status.code(), Some(0), "{}", text(&o));
    assert!(
        text(&o).contains(&format!("connected as {su}, a superuser")),
        "{}",
        text(&o)
    );
    let o = w
        .cmd()
        .args(["void", "--run-id", "r-other", "--reason", "superseded"])
        .output()
        .unwrap();
    assert_ne!(o.status.code(), Some(0), "{}", text(&o));
    assert!(
        text(&o).contains(&format!("connected as {su}, a superuser")),
        "{}",
        text(&o)
    );
    assert_eq!(w.snapshot(), before);
    w.connect_as("cutter_exec");
    w.cmd()
        .args(["compensate", "--run-id", "r-comp-super"])
        .assert()
        .success();
}

/// Signs the statement file `statement` with approver `who`'s key, writing
/// `<statement>.asc`: the `--approval` value.
fn sign_file(w: &World, statement: &std::path::Path, who: usize) -> String {
    let text = std::fs::read(statement).unwrap();
    let st = cutter_core::ApprovalStatement::parse(&text).unwrap();
    let s = cutter_governance::sign_approval(
        &st,
        &w.approvers[who].secret,
        &cutter_openpgp::Passphrase::new(String::new()),
        "test",
    )
    .unwrap();
    let sig = statement.with_extension("txt.asc");
    std::fs::write(&sig, &s.signature).unwrap();
    format!("{}:{}", statement.display(), sig.display())
}

/// An approver revoked (with an approver-change approval by two approvers) after a run:
/// the run's recorded approvals stay valid history — `ledger verify` passes and names
/// the revocation as a finding — and the revoked key approves nothing new.
#[test]
fn an_approver_revoked_after_a_run_is_a_finding_and_approves_nothing_new() {
    let w = World::new();
    let a = w.disarm("r-before");
    let o = w.run_live("r-before", &a).output().unwrap();
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    let bob = w.approvers[1].secret.fingerprint().to_string();
    let owner = w.owner_url();
    // The revocation's statements, written by cutter, signed by alice and bob.
    let mut approvals = Vec::new();
    for (gate, who) in [("SG_1", 0), ("SG_2", 1)] {
        let f = w.work.path().join(format!("revoke-bob-{gate}.txt"));
        let o = w
            .cmd()
            .args(["approvers", "revoke", &bob, "--gate", gate, "-o"])
            .arg(&f)
            .args(["--owner-url", &owner])
            .output()
            .unwrap();
        assert_eq!(o.status.code(), Some(0), "{}", text(&o));
        approvals.push(sign_file(&w, &f, who));
    }
    // Without the approvals: refused.
    let o = w
        .cmd()
        .args(["approvers", "revoke", &bob, "--owner-url", &owner])
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(3), "{}", text(&o));
    let mut c = w.cmd();
    c.args(["approvers", "revoke", &bob, "--owner-url", &owner]);
    for x in &approvals {
        c.args(["--approval", x]);
    }
    let o = c.output().unwrap();
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    let o = w.cmd().args(["approvers", "list"]).output().unwrap();
    assert!(text(&o).contains("REVOKED"), "{}", text(&o));

    // History stays valid; the revocation is a finding.
    let o = w
        .cmd()
        .args(["--json", "ledger", "verify"])
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(v["intact"], true, "{v}");
    let revoked = v["signatures"]["revoked_since"].as_array().unwrap();
    assert!(
        revoked.iter().any(|f| f["run_id"] == "r-before"
            && f["detail"].as_str().unwrap().contains(&bob)
            && f["detail"].as_str().unwrap().contains("was revoked since")),
        "{v}"
    );
    // The approver change itself re-verified (two approvers, approver-change).
    assert!(
        v["signatures"]["failures"].as_array().unwrap().is_empty(),
        "{v}"
    );
    let o = w.cmd().args(["ledger", "verify"]).output().unwrap();
    assert!(
        text(&o).contains("finding: dot_pair_signature row id"),
        "{}",
        text(&o)
    );

    // bob approves nothing new: while the configuration still names his key, every
    // gate refuses, naming it; narrowed to alice's, his signature is refused.
    let b = w.approvals("r-after");
    let disarm = |w: &World| {
        let mut c = w.cmd();
        c.args(["kill-switch", "disarm", "--run-id", "r-after", "--plan"])
            .arg(&w.plan);
        for x in &b {
            c.args(["--approval", x]);
        }
        c.output().unwrap()
    };
    let o = disarm(&w);
    assert_eq!(o.status.code(), Some(3), "{}", text(&o));
    assert!(
        text(&o).contains("approver registry does not hold (or has revoked)")
            && text(&o).contains(&bob),
        "{}",
        text(&o)
    );
    let cfg = std::fs::read_to_string(&w.config).unwrap();
    let bob_key = format!(", \"{}\"", w.approvers[1].public.display());
    assert!(cfg.contains(&bob_key), "{cfg}");
    std::fs::write(&w.config, cfg.replace(&bob_key, "")).unwrap();
    let o = disarm(&w);
    assert_eq!(o.status.code(), Some(3), "{}", text(&o));
    assert!(
        text(&o).contains(&format!(
            "signer {bob} is not a registered, unrevoked approver for this purpose"
        )),
        "{}",
        text(&o)
    );
}

/// A plan whose cut recorded findings (here, a missing article number) is approved
/// only knowingly: approvals that do not name its findings digest are refused at disarm
/// and at the gate; the statement `cutter approve` writes names it, and is accepted.
#[test]
fn a_plan_with_findings_runs_only_with_approvals_that_name_them() {
    let w = World::new();
    let rows: Vec<_> = cutter_pg::fixtures::scale_rows("cli-findings", 12).collect();
    let plan = cutter_core::CutPlan::new(
        cutter_core::DocumentId::new("cli-findings").unwrap(),
        cutter_core::SourceVersionId::new("v1").unwrap(),
        rows,
    )
    .with_findings(cutter_core::PlanFindings {
        missing_article_numbers: vec![13],
        duplicate_article_numbers: vec![],
        out_of_order_article_numbers: vec![],
        text_in_no_unit: vec![],
        forbidden_characters_accepted: false,
        forbidden_characters: vec![],
        digest: cutter_core::Sha256Digest::from_bytes([0; 32]),
    });
    let findings = plan.findings.as_ref().unwrap().digest;
    let path = w.work.path().join("findings-plan.json");
    std::fs::write(&path, plan.to_json()).unwrap();
    let o = w.cmd().args(["plan", "check"]).arg(&path).output().unwrap();
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));

    // Approvals that name no findings.
    let blind = w.approvals_for("r-findings", &path, [0, 1], w.database(), 3600);
    let mut c = w.cmd();
    c.args(["kill-switch", "disarm", "--run-id", "r-findings", "--plan"])
        .arg(&path);
    for x in &blind {
        c.args(["--approval", x]);
    }
    let o = c.output().unwrap();
    assert_eq!(o.status.code(), Some(3), "{}", text(&o));
    assert!(
        text(&o).contains(&format!(
            "does not sign off the plan's findings (findings_digest sha256:{findings}, the statement names none)"
        )),
        "{}",
        text(&o)
    );

    // The statements cutter writes name them; signed, they disarm and run.
    let mut approvals = Vec::new();
    for (gate, who) in [("SG_1", 0), ("SG_2", 1)] {
        let f = w.work.path().join(format!("findings-{gate}.txt"));
        let o = w
            .cmd()
            .args(["approve", "--run-id", "r-findings", "--plan"])
            .arg(&path)
            .args(["--gate", gate, "-o"])
            .arg(&f)
            .output()
            .unwrap();
        assert_eq!(o.status.code(), Some(0), "{}", text(&o));
        let st = std::fs::read_to_string(&f).unwrap();
        assert!(
            st.contains(&format!("findings_digest: sha256:{findings}\n")),
            "{st}"
        );
        approvals.push(sign_file(&w, &f, who));
    }
    let mut c = w.cmd();
    c.args(["kill-switch", "disarm", "--run-id", "r-findings", "--plan"])
        .arg(&path);
    for x in &approvals {
        c.args(["--approval", x]);
    }
    let o = c.output().unwrap();
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    let mut c = w.cmd();
    c.args(["run", "--mode", "live", "--run-id", "r-findings", "--plan"])
        .arg(&path);
    for x in &approvals {
        c.args(["--approval", x]);
    }
    let o = c.output().unwrap();
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
}

/// The manifest signing key is pinned too: CUTTER_BACKUP_SIGNING_KEY naming another key
/// file than the config file's `signing_key` is refused, naming both, before any backup
/// or write; a signing key file that group or others may read is refused with the fix.
#[test]
fn a_signing_key_from_the_environment_that_disagrees_with_the_file_is_refused() {
    let w = World::new();
    let before = w.snapshot();
    let keys = w.work.path().join("keys");
    let other =
        cutter_backup::generate_keys(&keys, "mine", "Mine <mine@test.invalid>", None).unwrap();
    let a = w.disarm("r-sign");
    let o = w
        .cmd()
        .env("CUTTER_BACKUP_SIGNING_KEY", &other.secret_key)
        .args(["backup", "create", "--name", "b-sign"])
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(3), "{}", text(&o));
    assert!(
        text(&o).contains("CUTTER_BACKUP_SIGNING_KEY says")
            && text(&o).contains("mine.sec.asc")
            && text(&o).contains("backup-signing.sec.asc"),
        "{}",
        text(&o)
    );
    let o = w
        .run_live("r-sign", &a)
        .env("CUTTER_BACKUP_SIGNING_KEY", &other.secret_key)
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(3), "{}", text(&o));
    assert_eq!(w.snapshot(), before);

    let signing = keys.join("backup-signing.sec.asc");
    std::fs::set_permissions(
        &signing,
        std::os::unix::fs::PermissionsExt::from_mode(0o644),
    )
    .unwrap();
    let o = w
        .cmd()
        .args(["backup", "create", "--name", "b-loose"])
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(3), "{}", text(&o));
    assert!(
        text(&o).contains(&format!("chmod 600 {}", signing.display())),
        "{}",
        text(&o)
    );
    assert!(!w
        .state
        .join("backups")
        .read_dir()
        .map(|mut d| d.next().is_some())
        .unwrap_or(false));
}

/// `cutter backup verify` trusts a manifest only when the pinned key signed it: the
/// real backup verifies; with an edited count, or without its signature, it is refused.
#[test]
fn backup_verify_checks_the_manifest_signature_first() {
    let w = World::new();
    let o = w
        .cmd()
        .args(["backup", "create", "--name", "b-v"])
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    let art = w.state.join("backups/b-v.dump.pgp");
    let o = w
        .cmd()
        .args(["backup", "verify"])
        .arg(&art)
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    assert!(
        text(&o).contains("manifest signed by the pinned signing key"),
        "{}",
        text(&o)
    );
    let manifest = w.state.join("backups/b-v.manifest.json");
    let original = std::fs::read_to_string(&manifest).unwrap();
    std::fs::write(
        &manifest,
        original.replacen("\"rows\": 158", "\"rows\": 159", 1),
    )
    .unwrap();
    let o = w
        .cmd()
        .args(["backup", "verify"])
        .arg(&art)
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(1), "{}", text(&o));
    assert!(text(&o).contains("BAD signature"), "{}", text(&o));
    std::fs::write(&manifest, original).unwrap();
    std::fs::remove_file(w.state.join("backups/b-v.manifest.json.sig")).unwrap();
    let o = w
        .cmd()
        .args(["backup", "verify"])
        .arg(&art)
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(1), "{}", text(&o));
    assert!(text(&o).contains("is not signed"), "{}", text(&o));
}
