//! Separation of duties, attacked the way the operator who runs cutter would: from the
//! environment they control, with `psql` and the writer's password, with approvals for
//! another purpose or another database, from a second state directory, as the
//! superuser, and by changing the approver registry alone.

use std::path::Path;
use std::process::{Command, Stdio};

use super::runs::ledger_intact;
use super::world::{Cx, Opts, World};
use cutter_core::Purpose;

/// `psql` as `user` on the world's database (password from the world's private
/// .pgpass, never on the command line): exit code and stderr.
fn psql(w: &World, user: &str, sql: &str) -> Result<(Option<i32>, String), String> {
    let psql = cutter_pg::pg_program("psql").map_err(|e| e.to_string())?;
    let mut cmd = Command::new(&psql);
    cutter_testkit::clear_caller_env(&mut cmd);
    let o = cmd
        .args(["-X", "-q", "-v", "ON_ERROR_STOP=1", "-h"])
        .arg(&w.db.coords.host)
        .args([
            "-p",
            &w.db.coords.port.to_string(),
            "-U",
            user,
            "-d",
            &w.db.name,
            "-c",
            sql,
        ])
        .env("PGPASSFILE", &w.pgpass)
        .stdin(Stdio::null())
        .output()
        .map_err(|e| format!("running psql: {e}"))?;
    Ok((
        o.status.code(),
        String::from_utf8_lossy(&o.stderr).into_owned(),
    ))
}

/// Units and versions, by superuser.
fn unit_rows(w: &World) -> Result<(i64, i64), String> {
    let mut c = w.db.admin()?;
    let r = c
        .query_one(
            "SELECT (SELECT count(*) FROM public.information_unit), (SELECT count(*) FROM public.unit_version)",
            &[],
        )
        .map_err(|e| e.to_string())?;
    Ok((r.get(0), r.get(1)))
}

/// Writes a fresh approver key pair (not registered) and returns its public key file
/// and secret key.
fn stranger(
    dir: &Path,
    name: &str,
) -> Result<(std::path::PathBuf, cutter_openpgp::SecretKey), String> {
    let g = cutter_openpgp::generate_key(&format!("{name} <{name}@faults.invalid>"), None)
        .map_err(|e| e.to_string())?;
    let public = dir.join(format!("{name}.pub.asc"));
    std::fs::write(&public, &g.public_armored).map_err(|e| e.to_string())?;
    let secret = cutter_openpgp::SecretKey::from_bytes(g.secret_armored.as_bytes())
        .map_err(|e| e.to_string())?;
    Ok((public, secret))
}

/// Case 23: the operator makes two keys and names them in the environment, then in the
/// configuration file they also hold. Both are refused: the environment never widens a
/// pin, and the registry in the database, not the configuration, says who approves.
pub fn env_self_approval(cx: &mut Cx) -> Result<(), String> {
    let w = cx.world(Opts::new("faults-self-approval"))?;
    let pre = w.pre()?;
    let mallory = cx.env.keys.approvers[2].1.clone();
    let (eve, eve_secret) = stranger(&w.dir, "eve")?;
    // Approvals signed by mallory and eve, both the operator's.
    let run = "r23";
    let plan = &w.plan;
    let signed = {
        let p = cutter_core::CutPlan::parse_json(&std::fs::read(plan).map_err(|e| e.to_string())?)
            .map_err(|e| e.to_string())?;
        let now = super::world::now_secs();
        let db = w.db.database();
        let mut out = Vec::new();
        for (gate, key) in [
            (cutter_core::ApprovalGate::Sg1, &cx.env.keys.approvers[2].0),
            (cutter_core::ApprovalGate::Sg2, &eve_secret),
        ] {
            let st = cutter_core::ApprovalStatement {
                purpose: Purpose::LiveRun,
                run_id: cutter_core::RunId::new(run).map_err(|e| e.to_string())?,
                plan_digest: p.digest(),
                change_set: None,
                findings_digest: None,
                diff_digest: None,
                target: db.clone(),
                gate,
                not_before: cutter_core::UnixTime(now - 60),
                expires_at: cutter_core::UnixTime(now + 3600),
            };
            out.push(w.write_signed(&st, key, &format!("self-{gate}"))?);
        }
        out
    };
    let env_keys = format!("{}:{}", mallory.display(), eve.display());
    let disarm = |extra_env: Option<&str>| {
        let mut c = w.disarm_cmd(run, plan, &signed);
        if let Some(v) = extra_env {
            c = c.env("CUTTER_APPROVER_KEYS", v);
        }
        c.run()
    };
    let d = disarm(Some(&env_keys));
    cx.check(
        d.code == Some(3)
            && d.has("the approvers are never replaced or widened from the environment"),
        format!(
            "CUTTER_APPROVER_KEYS with the operator's keys: exit {:?}: {}",
            d.code,
            d.all()
        ),
    );
    // The operator edits the configuration file too.
    let mut config = w.config.clone();
    config.approver_keys = vec![mallory.clone(), eve.clone()];
    w.write_config(&config)?;
    let d2 = disarm(None);
    cx.check(
        d2.code == Some(3) && d2.has("approver registry does not hold"),
        format!(
            "approver_keys edited to the operator's keys: exit {:?}: {}",
            d2.code,
            d2.all()
        ),
    );
    let r = w.run_live(run, &signed).run();
    cx.check(
        r.code == Some(3),
        format!("the live run: exit {:?}: {}", r.code, r.all()),
    );
    cx.obs(format!(
        "environment: exit {:?} ({}); edited config: exit {:?} ({}); live run: exit {:?}",
        d.code,
        d.error_line(),
        d2.code,
        d2.error_line(),
        r.code
    ));
    w.write_config(&w.config)?;
    cx.settle(&w, &pre)?;
    Ok(())
}

/// Case 24: with the writer's password, `psql` calls every unit writer and appends the
/// run path's ledger rows, with no recorded approval: the database refuses each, and
/// writes nothing.
pub fn writer_functions_without_authorization(cx: &mut Cx) -> Result<(), String> {
    let w = cx.world(Opts::new("faults-writer-psql"))?;
    let pre = w.pre()?;
    // A draft unit to aim fn_iu_enact at, written by the owner (who is not gated).
    let draft: i64 =
        w.db.admin()?
            .query_one(
                "SELECT min(id) FROM public.information_unit WHERE lifecycle_status = 'draft'",
                &[],
            )
            .map_err(|e| e.to_string())?
            .get(0);
    let before = (unit_rows(&w)?, w.snapshot()?);
    let exec = cutter_pg::schema::EXEC_ROLE;
    let attempts: Vec<(&str, String, &str)> = vec![
        (
            "fn_iu_create (per row)",
            "SELECT public.fn_iu_create('psql/1', 'Điều 1', 'x', 'mallory', 'law_unit', 'article', 'law', 'psql', 'v1', NULL, 'cs-r24')".into(),
            "permission denied for function fn_iu_create",
        ),
        (
            "fn_iu_create_batch",
            "SELECT * FROM public.fn_iu_create_batch('cs-r24', 'psql', 'v1', 1, ARRAY['psql/1'], ARRAY['Điều 1'], \
             ARRAY['x'], ARRAY['mallory'], ARRAY['law_unit'], ARRAY['article'], ARRAY['law'], ARRAY[NULL]::text[])".into(),
            "no live-run authorization recorded in the database for run r24",
        ),
        (
            "fn_iu_enact",
            format!("SELECT * FROM public.fn_iu_enact({draft}, 'mallory', 'r24')"),
            "enactment refused: no live-run authorization",
        ),
        (
            "a change set row",
            "INSERT INTO cutter_governance.cut_change_set (change_set_id, run_id, document_id, source_version_id, plan_digest, unit_count) \
             VALUES ('cs-r24', 'r24', 'psql', 'v1', repeat('0', 64), 1)".into(),
            "cut_change_set: INSERT refused",
        ),
        (
            "a verify result",
            "INSERT INTO cutter_governance.verify_result (run_id, change_set_id, checked, matched, mismatched, verdict) \
             VALUES ('r24', 'cs-r24', 1, 1, 0, 'pass')".into(),
            "verify_result: INSERT refused",
        ),
        (
            "a pair signature that is not an approval",
            "INSERT INTO cutter_governance.dot_pair_signature (run_id, gate, signer_fpr, statement, signature) \
             VALUES ('r24', 'SG_1', 'F', 'yes', 'sig')".into(),
            "the statement is not cutter-approval/2",
        ),
        (
            "a HOLD release without approvals",
            "INSERT INTO cutter_governance.review_decision (run_id, decision, payload, actor) \
             VALUES ('r24', 'hold_released', '{\"released\": [1]}', 'mallory')".into(),
            "HOLD release of run r24 refused",
        ),
    ];
    let mut refused = 0;
    for (what, sql, needle) in &attempts {
        let (code, err) = psql(&w, exec, sql)?;
        if cx.check(
            code != Some(0) && err.contains(needle),
            format!("psql as {exec}, {what}: exit {code:?}: {err}"),
        ) {
            refused += 1;
        }
    }
    let after = (unit_rows(&w)?, w.snapshot()?);
    cx.check(
        before.0 == after.0 && before.1 == after.1,
        format!(
            "rows written: units/versions {:?} → {:?}",
            before.0, after.0
        ),
    );
    cx.obs(format!(
        "{refused}/{} refused by the database; 0 rows written",
        attempts.len()
    ));
    cx.settle(&w, &pre)?;
    Ok(())
}

/// Case 25: the writer forges, with `psql`, a pair-signature row naming a registered
/// approver over a statement for another run, with a valid hash-chain link: the
/// database takes it (it cannot check OpenPGP), and `ledger verify` exits 1 naming the
/// table and the row.
pub fn forged_approval_row(cx: &mut Cx) -> Result<(), String> {
    let w = cx.world(Opts::new("faults-forged-row"))?;
    let pre = w.pre()?;
    let a = w.disarm("r25")?;
    let d = w.run_live("r25", &a).run();
    cx.check(d.code == Some(0), format!("the run: {}", d.all()));
    let mut c = w.db.exec()?;
    let tail = c
        .query_one(
            "SELECT row_hash, gate, signer_fpr, statement, signature FROM cutter_governance.dot_pair_signature ORDER BY id DESC LIMIT 1",
            &[],
        )
        .map_err(|e| e.to_string())?;
    let (prev, gate, fpr, statement, signature): (String, String, String, String, String) = (
        tail.get(0),
        tail.get(1),
        tail.get(2),
        tail.get(3),
        tail.get(4),
    );
    let forged = statement.replace("run_id: r25\n", "run_id: r25-forged\n");
    let id: i64 = c
        .query_one(
            "SELECT nextval(pg_get_serial_sequence('cutter_governance.dot_pair_signature', 'id'))",
            &[],
        )
        .map_err(|e| e.to_string())?
        .get(0);
    let created = "2026-12-05T08:00:00.000000Z";
    let mut h = cutter_core::CanonicalHasher::new("cutter-ledger-v1/dot_pair_signature");
    h.u64_field(id as u64);
    for v in ["r25-forged", &gate, &fpr, &forged, &signature, created] {
        h.opt_field(Some(v.as_bytes()));
    }
    h.opt_field(Some(prev.as_bytes()));
    let row_hash = h.finish().to_hex();
    let lit = |s: &str| format!("'{}'", s.replace('\'', "''"));
    let sql = format!(
        "INSERT INTO cutter_governance.dot_pair_signature (id, run_id, gate, signer_fpr, statement, signature, created_at, prev_hash, row_hash) \
         VALUES ({id}, 'r25-forged', {}, {}, {}, {}, '2026-12-05 08:00:00+00', {}, {})",
        lit(&gate),
        lit(&fpr),
        lit(&forged),
        lit(&signature),
        lit(&prev),
        lit(&row_hash)
    );
    let (code, err) = psql(&w, cutter_pg::schema::EXEC_ROLE, &sql)?;
    cx.check(
        code == Some(0),
        format!("psql INSERT of the forged row: {code:?} {err}"),
    );
    let v = w.cutter().args(["--json", "ledger", "verify"]).run();
    let json: serde_json::Value = serde_json::from_str(&v.stdout).unwrap_or_default();
    let named = w.cutter().args(["ledger", "verify"]).run();
    let line = format!("FAILED dot_pair_signature row id {id} (run r25-forged)");
    cx.check(
        v.code == Some(1)
            && json["chains_intact"] == true
            && json["intact"] == false
            && named.stdout.contains(&line),
        format!("ledger verify: exit {:?}: {}", v.code, named.all()),
    );
    cx.obs(format!(
        "forged row {id} accepted by the database (it cannot check OpenPGP); ledger verify exit {:?}, chains intact, `{line}`",
        v.code
    ));
    let _ = cx.settle(&w, &pre);
    Ok(())
}

/// Case 26: a HOLD is released with the failed run's own SG_1/SG_2: refused by cutter,
/// and by the database when appended by hand.
pub fn hold_release_with_own_approvals(cx: &mut Cx) -> Result<(), String> {
    let w = cx.world(Opts::new("faults-release-own"))?;
    let pre = w.pre()?;
    let a = w.disarm("r26")?;
    let d = w
        .run_live("r26", &a)
        .env("CUTTER_FAILPOINT", "leg_b_record:before_commit:error")
        .run();
    cx.check(d.code == Some(4), format!("the failed run: {}", d.all()));
    let c = w.cutter().args(["compensate", "--run-id", "r26"]).run();
    cx.check(c.code == Some(0), format!("compensate: {}", c.all()));
    let mut rel = w.cutter().args(["hold", "release"]);
    for x in &a {
        rel = rel.args(["--approval", x]);
    }
    let own = rel.run();
    cx.check(
        own.code == Some(3)
            && own.has("this action needs a hold-release approval")
            && w.hold_exists(),
        format!(
            "release with the run's own approvals: exit {:?}: {}",
            own.code,
            own.all()
        ),
    );
    // By hand, as the writer: the database refuses.
    let statements: Vec<String> = a
        .iter()
        .map(|x| {
            std::fs::read_to_string(x.split(':').next().unwrap_or_default()).unwrap_or_default()
        })
        .collect();
    let payload = serde_json::json!({"released": [1], "approvals": [
        {"gate": "SG_1", "signer_fpr": cx.env.keys.approvers[0].0.fingerprint().to_string(), "statement": statements[0], "signature": "x"},
        {"gate": "SG_2", "signer_fpr": cx.env.keys.approvers[1].0.fingerprint().to_string(), "statement": statements[1], "signature": "x"},
    ]});
    let sql = format!(
        "INSERT INTO cutter_governance.review_decision (run_id, decision, payload, actor) VALUES ('r26', 'hold_released', '{}', 'mallory')",
        payload.to_string().replace('\'', "''")
    );
    let (code, err) = psql(&w, cutter_pg::schema::EXEC_ROLE, &sql)?;
    cx.check(
        code != Some(0)
            && err.contains("the statement approves purpose live-run, not hold-release"),
        format!("psql release with the run's approvals: {code:?} {err}"),
    );
    let mut rel = w.cutter().args(["hold", "release"]);
    for x in w.release_approvals("r26") {
        rel = rel.args(["--approval", &x]);
    }
    let ok = rel.run();
    cx.check(
        ok.code == Some(0) && !w.hold_exists(),
        format!("release with hold-release approvals: {}", ok.all()),
    );
    let (intact, _) = ledger_intact(&w)?;
    cx.check(intact, "ledger verify after the release");
    cx.obs(format!(
        "own approvals: exit {:?}; psql: refused by the database; hold-release approvals: exit {:?}; ledger intact: {intact}",
        own.code, ok.code
    ));
    cx.settle(&w, &pre)?;
    Ok(())
}

/// Case 27: a hard-delete approval for run r27's compensation, named r27-revert, used
/// as the live-run approval of a run called r27-revert with the same plan.
pub fn hard_delete_as_live_run(cx: &mut Cx) -> Result<(), String> {
    let w = cx.world(Opts::new("faults-hard-as-live"))?;
    let pre = w.pre()?;
    let hard = w.approvals_with(
        "r27-revert",
        &w.plan,
        [0, 1],
        Purpose::HardDelete,
        Some("cs-r27"),
        &w.db.database(),
        3600,
    );
    let d = w.disarm_cmd("r27-revert", &w.plan, &hard).run();
    let r = w.run_live("r27-revert", &hard).run();
    let needle = "approves purpose hard-delete, but this action needs a live-run approval";
    cx.check(
        d.code == Some(3) && d.has(needle) && r.code == Some(3) && r.has(needle),
        format!(
            "disarm: exit {:?}: {}\nrun: exit {:?}: {}",
            d.code,
            d.all(),
            r.code,
            r.all()
        ),
    );
    cx.obs(format!("disarm and live run refused: `{needle}`"));
    cx.settle(&w, &pre)?;
    Ok(())
}

/// Case 28: a signature dated an hour in the future, and one made with
/// `gpg --digest-algo SHA1`, by a GnuPG key registered as an approver (through an
/// approver-change approval by alice and bob).
pub fn weak_and_future_signatures(cx: &mut Cx) -> Result<(), String> {
    let w = cx.world(Opts::new("faults-weak-sigs"))?;
    let pre = w.pre()?;
    let home = w.dir.join("gnupg");
    std::fs::create_dir_all(&home).map_err(|e| e.to_string())?;
    std::fs::set_permissions(&home, std::os::unix::fs::PermissionsExt::from_mode(0o700))
        .map_err(|e| e.to_string())?;
    let gpg = |args: &[&str]| -> Result<std::process::Output, String> {
        Command::new("gpg")
            .arg("--homedir")
            .arg(&home)
            .args([
                "--batch",
                "--yes",
                "--pinentry-mode",
                "loopback",
                "--passphrase",
                "",
            ])
            .args(args)
            .stdin(Stdio::null())
            .output()
            .map_err(|e| format!("gpg: {e}"))
    };
    let o = gpg(&[
        "--quick-gen-key",
        "carol <carol@faults.invalid>",
        "ed25519",
        "sign",
        "never",
    ])?;
    cx.check(
        o.status.success(),
        format!("gpg key: {}", String::from_utf8_lossy(&o.stderr)),
    );
    let public = gpg(&["--armor", "--export", "carol@faults.invalid"])?.stdout;
    let carol_pub = w.dir.join("carol.pub.asc");
    std::fs::write(&carol_pub, &public).map_err(|e| e.to_string())?;
    // carol joins the registry: an approver change approved by alice and bob.
    let owner = w.owner_url()?;
    let mut add = w.cutter().args(["approvers", "add"]).arg(&carol_pub).args([
        "--name",
        "carol",
        "--owner-url",
        &owner,
    ]);
    for x in w.approver_change_approvals(&carol_pub, "carol")? {
        add = add.args(["--approval", &x]);
    }
    let added = add.run();
    cx.check(
        added.code == Some(0),
        format!("approvers add carol (approved): {}", added.all()),
    );
    // SG_1 by alice (valid); SG_2 by carol, SHA-1, then dated in the future.
    let valid = w.approvals("r28");
    let sg2 = w.approvals_for("r28", &w.plan, [0, 1], 3600)[1]
        .split(':')
        .next()
        .unwrap_or_default()
        .to_string();
    let mut outcomes = Vec::new();
    for (what, extra, needle) in [
        ("SHA-1", vec!["--digest-algo", "SHA1"], "the SHA-1 digest"),
        (
            "an hour in the future",
            vec!["--faked-system-time", "+3600"],
            "minutes after the time of verification",
        ),
    ] {
        let sig = format!("{sg2}.{}.asc", what.replace(' ', "-"));
        let mut args = vec![
            "--local-user",
            "carol@faults.invalid",
            "--armor",
            "--detach-sign",
            "--output",
            &sig,
        ];
        let fake_time;
        if extra[0] == "--faked-system-time" {
            fake_time = format!("{}!", super::world::now_secs() + 3600);
            args.extend(["--faked-system-time", fake_time.as_str()]);
        } else {
            args.extend(extra.iter().copied());
        }
        args.push(&sg2);
        let o = gpg(&args)?;
        cx.check(
            o.status.success(),
            format!("gpg sign ({what}): {}", String::from_utf8_lossy(&o.stderr)),
        );
        let approvals = [valid[0].clone(), format!("{sg2}:{sig}")];
        let d = w.disarm_cmd("r28", &w.plan, &approvals).run();
        cx.check(
            d.code == Some(3) && d.has(needle),
            format!("{what}: exit {:?}: {}", d.code, d.all()),
        );
        outcomes.push(format!("{what}: exit {:?}", d.code));
    }
    cx.obs(outcomes.join("; "));
    let _ = cx.settle(&w, &pre);
    Ok(())
}

/// Case 29: approvals signed for database A, presented on database B of the same
/// cluster (same system identifier, same registered approvers).
pub fn approval_for_another_database(cx: &mut Cx) -> Result<(), String> {
    let a = cx.world(Opts::new("faults-db-a"))?;
    let b = cx.world(Opts::new("faults-db-b"))?;
    let pre = b.pre()?;
    let for_a = b.approvals_with(
        "r29",
        &b.plan,
        [0, 1],
        Purpose::LiveRun,
        None,
        &a.db.database(),
        3600,
    );
    let d = b.disarm_cmd("r29", &b.plan, &for_a).run();
    let r = b.run_live("r29", &for_a).run();
    let needle = format!("approves database {:?}", a.db.name);
    cx.check(
        d.code == Some(3) && d.has(&needle) && d.has("not this database") && r.code == Some(3),
        format!(
            "disarm: exit {:?}: {}\nrun: exit {:?}: {}",
            d.code,
            d.all(),
            r.code,
            r.all()
        ),
    );
    cx.obs(format!(
        "same cluster {}, databases {} and {}: refused (`{}`)",
        a.db.database().system_identifier,
        a.db.name,
        b.db.name,
        d.error_line()
    ));
    cx.settle(&b, &pre)?;
    Ok(())
}

/// Case 30: while the database records an unresolved HOLD (SG_3 of a failed run), a
/// second state directory is initialized and tries a new run.
pub fn second_state_dir_while_held(cx: &mut Cx) -> Result<(), String> {
    let w = cx.world(Opts::new("faults-second-state"))?;
    let pre = w.pre()?;
    let a = w.disarm("r30")?;
    let d = w
        .run_live("r30", &a)
        .env("CUTTER_FAILPOINT", "cut_leg_a:before_commit:error")
        .run();
    cx.check(d.code == Some(4), format!("the failed run: {}", d.all()));
    let other_config = w.extra_state("second")?;
    let b = w.approvals("r30b");
    let d1 = w
        .disarm_cmd("r30b", &w.plan, &b)
        .env("CUTTER_CONFIG", &other_config)
        .run();
    let before = unit_rows(&w)?;
    let r1 = w
        .run_live("r30b", &b)
        .env("CUTTER_CONFIG", &other_config)
        .run();
    cx.check(
        d1.code == Some(4)
            && d1.has("the database records an unresolved HOLD: the SG_3 escalation of run r30"),
        format!(
            "disarm from the second state directory: exit {:?}: {}",
            d1.code,
            d1.all()
        ),
    );
    cx.check(
        r1.code != Some(0) && unit_rows(&w)? == before,
        format!(
            "live run from the second state directory: exit {:?}: {}",
            r1.code,
            r1.all()
        ),
    );
    cx.obs(format!(
        "second state directory: disarm exit {:?}, live run exit {:?}, 0 units written",
        d1.code, r1.code
    ));
    cx.settle(&w, &pre)?;
    Ok(())
}

/// Case 31: `sudo -u postgres cutter run …`: the superuser's credentials.
pub fn run_as_superuser(cx: &mut Cx) -> Result<(), String> {
    let w = cx.world(Opts::new("faults-superuser"))?;
    let pre = w.pre()?;
    let a = w.disarm("r31")?;
    let su = w.db.coords.superuser.clone();
    let mut config = w.config.clone();
    config.url = config.url.replacen("cutter_exec@", &format!("{su}@"), 1);
    w.write_config(&config)?;
    w.owner_url()?;
    let before = unit_rows(&w)?;
    let r = w.run_live("r31", &a).run();
    cx.check(
        r.code == Some(4)
            && r.has(&format!("connected as {su}, a superuser"))
            && unit_rows(&w)? == before,
        format!("live run as {su}: exit {:?}: {}", r.code, r.all()),
    );
    cx.obs(format!(
        "refused inside the phase: `{}`; 0 units written",
        r.error_line()
    ));
    w.write_config(&w.config)?;
    cx.settle(&w, &pre)?;
    Ok(())
}

/// Case 32: after the bootstrap, an approver is added without an approver-change
/// approval: through `cutter approvers add`, and by the owner with SQL.
pub fn approver_added_without_approval(cx: &mut Cx) -> Result<(), String> {
    let w = cx.world(Opts::new("faults-approver-add"))?;
    let pre = w.pre()?;
    let mallory = cx.env.keys.approvers[2].1.clone();
    let owner = w.owner_url()?;
    let d = w
        .cutter()
        .args(["approvers", "add"])
        .arg(&mallory)
        .args(["--name", "mallory", "--owner-url", &owner])
        .run();
    cx.check(
        d.code == Some(3) && d.has("needs SG_1 and SG_2 approver-change approvals"),
        format!(
            "approvers add without approvals: exit {:?}: {}",
            d.code,
            d.all()
        ),
    );
    // With alice's approval twice (one approver, both gates): refused.
    let same = w.approver_change_approvals_by(&mallory, "mallory", [0, 0])?;
    let mut add = w.cutter().args(["approvers", "add"]).arg(&mallory).args([
        "--name",
        "mallory",
        "--owner-url",
        &owner,
    ]);
    for x in &same {
        add = add.args(["--approval", x]);
    }
    let d2 = add.run();
    cx.check(
        d2.code == Some(3) && d2.has("two distinct approvers are required"),
        format!(
            "approvers add with one approver twice: exit {:?}: {}",
            d2.code,
            d2.all()
        ),
    );
    // The owner with SQL: a bootstrap claimed, and a change its decision does not record.
    let mut admin = w.db.admin()?;
    let key = std::fs::read_to_string(&mallory).map_err(|e| e.to_string())?;
    let change =
        cutter_governance::ApproverChange::add(&key, "mallory", Purpose::ALL.into_iter().collect())
            .map_err(|e| e.to_string())?;
    let sql_refused = cutter_governance::apply_change(&mut admin, &change, &[], true, "mallory")
        .err()
        .map(|e| e.to_string())
        .unwrap_or_default();
    cx.check(
        sql_refused.contains("bootstrap refused: the registry already holds 2 approvers"),
        format!("owner's bootstrap after bootstrap: {sql_refused}"),
    );
    let direct = admin
        .batch_execute(&format!(
            "INSERT INTO cutter_governance.approver (fingerprint, name, public_key, purposes, added_by, added_decision_id) \
             VALUES ('{}', 'mallory', '{}', ARRAY['live-run'], 'mallory', 1)",
            change.fingerprint,
            key.replace('\'', "''")
        ))
        .err()
        .map(|e| e.as_db_error().map(|d| d.message().to_string()).unwrap_or_default())
        .unwrap_or_default();
    cx.check(
        direct.contains("does not record this change"),
        format!("owner's INSERT into the registry: {direct}"),
    );
    let list = w.cutter().args(["--json", "approvers", "list"]).run();
    let v: serde_json::Value = serde_json::from_str(&list.stdout).unwrap_or_default();
    let n = v["approvers"].as_array().map_or(0, Vec::len);
    cx.check(
        n == 2,
        format!("registry after the attempts: {}", list.all()),
    );
    cx.obs(format!(
        "cutter approvers add: exit {:?} and {:?}; owner's SQL refused by the registry's trigger; registry still holds {n}",
        d.code, d2.code
    ));
    cx.settle(&w, &pre)?;
    Ok(())
}
