//! `cutter demo`: the whole life of a cut on an embedded default, with nothing to
//! configure. A throwaway cluster with the reference schema and the 158/165/60
//! baseline; throwaway backup and approver keys; the 2013 Constitution (shipped in
//! `corpus/` with its licence) cut into a plan; SG_1 and SG_2 signed; a live run
//! staged as verified drafts; the restore proof; the report; compensation A+B back to
//! the pre-run snapshot; the run voided; then the same plan run live through
//! lifecycle_enact. Everything is torn down at the end, unless `--keep` hands the
//! running cluster and the state directory over to the operator.

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

use cutter_core::{ApprovalGate, ApprovalStatement, RunId, Snapshot, UnixTime};
use serde_json::json;

use super::Ctx;
use crate::cli::{CompensateArgs, RunArgs, RunMode};
use crate::error::{exit, CliError, Result};
use crate::output::Output;
use crate::runs::now_unix;
use crate::settings::{Overrides, Settings};
use crate::statedir::StateDir;

const CONSTITUTION: &[u8] = include_bytes!("../../../../corpus/vn/constitution-2013.html");
const DB: &str = "cutter_demo";

fn step(out: Output, n: u32, what: &str) {
    if !out.json {
        println!("\n=== {n}. {what}");
    }
}

fn fail<E: std::fmt::Display>(what: &str) -> impl FnOnce(E) -> CliError + '_ {
    move |e| CliError::Failed(format!("demo: {what}: {e}"))
}

fn write_private(path: &Path, bytes: &[u8]) -> Result<()> {
    std::fs::write(path, bytes).map_err(|e| CliError::io(path, e))?;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600))
        .map_err(|e| CliError::io(path, e))
}

fn units_line(s: &Snapshot) -> String {
    let live: u64 = s
        .unit_statuses
        .iter()
        .filter(|(k, _)| k.as_str() != "withdrawn")
        .map(|(_, v)| v)
        .sum();
    format!(
        "units {} (live {live}: {}), versions {}, lifecycle log {}",
        s.rows("public.information_unit"),
        s.unit_statuses
            .iter()
            .map(|(k, v)| format!("{k} {v}"))
            .collect::<Vec<_>>()
            .join(", "),
        s.rows("public.unit_version"),
        s.rows("public.iu_lifecycle_log"),
    )
}

struct Approver {
    secret: cutter_openpgp::SecretKey,
    name: &'static str,
}

fn sign_pair(
    out: Output,
    dir: &Path,
    approvers: &[Approver; 2],
    run: &RunId,
    plan_digest: cutter_core::Sha256Digest,
    findings_digest: Option<cutter_core::Sha256Digest>,
    target: &cutter_core::TargetDatabase,
) -> Result<Vec<String>> {
    let mut args = Vec::new();
    for (gate, a) in [ApprovalGate::Sg1, ApprovalGate::Sg2]
        .into_iter()
        .zip(approvers)
    {
        let st = ApprovalStatement {
            purpose: cutter_core::Purpose::LiveRun,
            run_id: run.clone(),
            plan_digest,
            change_set: None,
            findings_digest,
            diff_digest: None,
            target: target.clone(),
            gate,
            not_before: UnixTime(now_unix().0 - 60),
            expires_at: UnixTime(now_unix().0 + 3600),
        };
        let stem = dir.join(format!("{run}-{}", gate.name().to_lowercase()));
        let statement = stem.with_extension("txt");
        let signature = stem.with_extension("txt.asc");
        let signed = cutter_governance::sign_approval(
            &st,
            &a.secret,
            &cutter_openpgp::Passphrase::new(String::new()),
            &statement.display().to_string(),
        )
        .map_err(fail("signing an approval"))?;
        write_private(&statement, &signed.statement)?;
        write_private(&signature, &signed.signature)?;
        if !out.json {
            println!(
                "  {} signed by {} ({})",
                gate,
                a.name,
                a.secret.fingerprint()
            );
        }
        args.push(format!("{}:{}", statement.display(), signature.display()));
    }
    Ok(args)
}

/// `cutter demo [--keep]`.
pub fn demo(keep: bool, out: Output) -> Result<u8> {
    let started = std::time::Instant::now();
    // Under --json the steps' results are collected into the demo's one object.
    let steps = out.capturing();
    Output::take_captured();
    let work = tempfile::Builder::new()
        .prefix("cutter-demo-")
        .tempdir()
        .map_err(fail("creating a temporary directory"))?;
    let w = work.path().to_path_buf();

    step(
        out,
        1,
        "a throwaway PostgreSQL cluster with the reference schema and the baseline (158/165/60)",
    );
    let cluster = cutter_pg::Cluster::start().map_err(fail("starting a throwaway cluster"))?;
    cluster
        .create_database(DB, Some("template0"))
        .map_err(fail("creating the demo database"))?;
    let exec_pw = random_secret();
    let verify_pw = random_secret();
    {
        let mut c = cluster
            .connect(DB)
            .map_err(fail("connecting as the superuser"))?;
        cutter_pg::schema::install_reference(&mut c)
            .map_err(fail("installing the reference schema"))?;
        cutter_governance::install(&mut c).map_err(fail("installing the ledger migration"))?;
        cutter_pg::schema::install_baseline(&mut c).map_err(fail("installing the baseline"))?;
        cutter_pg::schema::set_login_password(
            &mut c,
            cutter_pg::schema::EXEC_ROLE,
            &cutter_pg::Password::new(exec_pw.clone()),
        )
        .map_err(fail("setting a password"))?;
        cutter_pg::schema::set_login_password(
            &mut c,
            cutter_pg::schema::VERIFY_ROLE,
            &cutter_pg::Password::new(verify_pw.clone()),
        )
        .map_err(fail("setting a password"))?;
    }
    let port = cluster.port();
    // Passwords live in a private .pgpass, as an operator's would: never on a command
    // line, never in the config file.
    let pgpass = w.join("pgpass");
    write_private(&pgpass, format!("127.0.0.1:{port}:{DB}:cutter_exec:{exec_pw}\n127.0.0.1:{port}:{DB}:cutter_verify:{verify_pw}\n").as_bytes())?;
    std::env::set_var("PGPASSFILE", &pgpass);
    if !out.json {
        println!(
            "  cluster in {} on 127.0.0.1:{port} (system {})",
            cluster.dir().display(),
            cluster
                .system_identifier()
                .map_err(fail("reading the system identifier"))?
        );
    }

    step(
        out,
        2,
        "throwaway keys: the backup recipient, the backup signing key and two approvers",
    );
    let keys = w.join("keys");
    std::fs::create_dir_all(&keys).map_err(|e| CliError::io(&keys, e))?;
    let passphrase = random_secret();
    let backup = cutter_backup::generate_keys(
        &keys,
        "backup",
        "cutter demo backup <backup@demo.invalid>",
        Some(&cutter_openpgp::Passphrase::new(passphrase.clone())),
    )
    .map_err(fail("generating the backup key"))?;
    write_private(&keys.join("backup.passphrase"), passphrase.as_bytes())?;
    // The key that signs every backup manifest: unprotected, mode 0600.
    let signing = cutter_backup::generate_keys(
        &keys,
        "backup-signing",
        "cutter demo backup signing <backup-signing@demo.invalid>",
        None,
    )
    .map_err(fail("generating the backup signing key"))?;
    let mut approver_paths = Vec::new();
    let mut approvers = Vec::new();
    let mut approver_changes = Vec::new();
    for name in ["alice", "bob"] {
        let g = cutter_openpgp::generate_key(&format!("{name} <{name}@demo.invalid>"), None)
            .map_err(fail("generating an approver key"))?;
        let p = keys.join(format!("{name}.pub.asc"));
        std::fs::write(&p, &g.public_armored).map_err(|e| CliError::io(&p, e))?;
        approver_paths.push(p);
        approver_changes.push(
            cutter_governance::ApproverChange::add(
                &g.public_armored,
                name,
                cutter_core::Purpose::ALL.into_iter().collect(),
            )
            .map_err(fail("reading an approver key"))?,
        );
        approvers.push(Approver {
            secret: cutter_openpgp::SecretKey::from_bytes(g.secret_armored.as_bytes())
                .map_err(fail("reading an approver key"))?,
            name,
        });
    }
    let approvers: [Approver; 2] = approvers
        .try_into()
        .map_err(|_| CliError::internal("two approvers"))?;
    if !out.json {
        println!(
            "  backup recipient {} (pinned); manifests signed by {} (pinned); approvers alice {} and bob {}",
            backup.fingerprint,
            signing.fingerprint,
            approvers[0].secret.fingerprint(),
            approvers[1].secret.fingerprint()
        );
    }

    step(
        out,
        3,
        "cutter init, and a cutter.toml pointing at the throwaway cluster",
    );
    let state = w.join("state");
    super::state::init(&state, steps)?;
    let cfg_path = state.join("cutter.toml");
    let toml = format!(
        "state_dir = \".\"\n[database]\nurl = \"postgres://cutter_exec@127.0.0.1:{port}/{DB}?sslmode=disable\"\nverify_user = \"cutter_verify\"\n[backup]\nrecipient_fingerprint = \"{}\"\nrecipient_key = \"{}\"\nsigning_fingerprint = \"{}\"\nsigning_key = \"{}\"\nsecret_key = \"{}\"\npassphrase_file = \"{}\"\n[approvals]\napprover_keys = [\"{}\", \"{}\"]\n[run]\nactor = \"cutter-demo\"\n# The demo proves the backup as its own step (`backup restore-proof`).\nprove_backup = \"off\"\n",
        backup.fingerprint,
        backup.public_key.display(),
        signing.fingerprint,
        signing.secret_key.display(),
        backup.secret_key.display(),
        keys.join("backup.passphrase").display(),
        approver_paths[0].display(),
        approver_paths[1].display()
    );
    std::fs::write(&cfg_path, toml).map_err(|e| CliError::io(&cfg_path, e))?;
    let settings = Settings::load(
        &Overrides {
            config: Some(cfg_path.clone()),
            ..Default::default()
        },
        &|_| None,
    )?;
    let ctx = Ctx {
        settings,
        out: steps,
    };
    // The approvers are registered in the database's registry through the owner's path
    // (the demo's cluster superuser owns the schema): the bootstrap of the first two.
    {
        let mut owner = cluster
            .connect(DB)
            .map_err(fail("connecting as the superuser"))?;
        for change in &approver_changes {
            super::approvers::apply_as_owner(&ctx, &mut owner, change, &[])?;
        }
    }
    super::backup::doctor(&ctx)?;

    step(out, 4, "cut the 2013 Constitution of Viet Nam into a plan");
    let doc = w.join("constitution-2013.html");
    std::fs::write(&doc, CONSTITUTION).map_err(|e| CliError::io(&doc, e))?;
    let plan_path = w.join("plan.json");
    super::plan::cut(
        &ctx,
        &crate::cli::CutArgs {
            file: doc,
            document_id: "vn-constitution-2013".into(),
            source_version: "2013-11-28".into(),
            output: plan_path.clone(),
            format: crate::cli::InputFormat::Auto,
            publication_type: "constitution".into(),
            report: None,
            accept_forbidden_characters: false,
        },
    )?;
    let plan = crate::planfile::PlanFile::open(&plan_path)?;
    let digest = plan.digest()?;
    // The approvers sign off the cutter's findings with the plan.
    let findings = plan.header().findings.as_ref().map(|f| f.digest);
    let units = plan.header().rows;
    let dir = StateDir::open(&state)?;
    let mut target = super::connect_target(&ctx)?;
    let database = target.database().clone();
    let pre = target.snapshot().map_err(super::pg_err)?;
    // The demo's own superuser view, to check afterwards that compensation touched
    // nothing but the cut's units.
    let mut admin = cluster
        .connect(DB)
        .map_err(fail("connecting as the superuser"))?;
    let r1 = RunId::new("demo-1")?;
    let change_set = cutter_core::ChangeSetId::for_run(&r1);
    let footprint = |admin: &mut _| {
        cutter_pg::surface::change_set_footprint(admin, change_set.as_str())
            .map_err(fail("reading the change set's footprint"))
    };
    let before = footprint(&mut admin)?;

    step(
        out,
        5,
        "SG_1 and SG_2 for run demo-1, kill-switch disarmed for it alone",
    );
    let a1 = sign_pair(out, &w, &approvers, &r1, digest, findings, &database)?;
    super::govern::disarm(&ctx, r1.as_str(), &plan_path, &a1)?;

    step(out, 6, "live run demo-1, staged: backup, cut_leg_a, leg_b_record, write_verify (the units stay verified drafts)");
    super::run::run(
        &ctx,
        &RunArgs {
            plan: plan_path.clone(),
            run_id: r1.to_string(),
            mode: RunMode::Live,
            approvals: a1,
            stage_only: true,
        },
    )?;

    step(
        out,
        7,
        "restore proof of demo-1's backup in another throwaway cluster",
    );
    let artifact = dir.backups().join("demo-1.dump.pgp");
    super::backup::restore_proof(&ctx, &artifact, false)?;

    step(out, 8, "the run report (a reviewer's view)");
    super::govern::report(
        &ctx,
        &crate::cli::ReportArgs {
            command: None,
            run_id: Some(r1.to_string()),
            format: crate::cli::ReportFormat::Markdown,
            output: None,
            sign: false,
        },
    )?;

    step(out, 9, "compensate demo-1: soft revert (withdrawn, lineage kept) and the compensating ledger decision");
    super::compensate::compensate(
        &ctx,
        &CompensateArgs {
            run_id: r1.to_string(),
            show: false,
            hard_delete: false,
            approvals: vec![],
        },
    )?;
    let after = target.snapshot().map_err(super::pg_err)?;
    let reverted = footprint(&mut admin)?;
    let cut = &reverted.statuses;
    if !out.json {
        println!(
            "  before demo-1: {}\n  after revert:  {}",
            units_line(&pre),
            units_line(&after)
        );
        println!(
            "  the {} units that were there before: unchanged, with their versions and lifecycle log (md5 {})",
            reverted.other_units, reverted.other_digest
        );
        println!(
            "  change set {change_set}: {} (lineage kept, addresses free again)",
            cut.iter()
                .map(|(k, v)| format!("{v} {k}"))
                .collect::<Vec<_>>()
                .join(", ")
        );
    }
    let live = |s: &Snapshot| {
        s.unit_statuses
            .iter()
            .filter(|(k, _)| k.as_str() != "withdrawn")
            .map(|(k, v)| (k.clone(), *v))
            .collect::<Vec<_>>()
    };
    let all_withdrawn = cut.len() == 1 && cut.get("withdrawn") == Some(&units);
    if before.other_digest != reverted.other_digest || live(&pre) != live(&after) || !all_withdrawn
    {
        return Err(CliError::Failed(format!(
            "demo: after compensation the database is not the pre-run snapshot plus {} withdrawn units: \
             digest of the units outside the cut {} → {}, the cut's units {cut:?}",
            units,
            before.other_digest,
            reverted.other_digest
        )));
    }
    super::govern::void(&ctx, r1.as_str(), "demo: compensated, superseded by demo-2")?;

    step(
        out,
        10,
        "the same plan again as run demo-2, live through lifecycle_enact",
    );
    let r2 = RunId::new("demo-2")?;
    let a2 = sign_pair(out, &w, &approvers, &r2, digest, findings, &database)?;
    super::govern::disarm(&ctx, r2.as_str(), &plan_path, &a2)?;
    super::run::run(
        &ctx,
        &RunArgs {
            plan: plan_path.clone(),
            run_id: r2.to_string(),
            mode: RunMode::Live,
            approvals: a2,
            stage_only: false,
        },
    )?;
    super::govern::ledger_verify(&ctx)?;
    let end = target.snapshot().map_err(super::pg_err)?;
    if !out.json {
        println!("  now: {}", units_line(&end));
        println!(
            "\ndemo finished in {:.1} s",
            started.elapsed().as_secs_f64()
        );
    }
    drop(target);
    drop(admin);
    if keep {
        let kept = cluster.keep().map_err(fail("keeping the cluster"))?;
        let work = work.keep();
        let psql = cutter_pg::pg_program("psql")
            .map_or_else(|_| "psql".to_string(), |p| p.display().to_string());
        let connect = format!(
            "PGPASSFILE={} {} \"host=127.0.0.1 port={port} dbname={DB} user=cutter_exec\"",
            cutter_pg::shell_quote(&pgpass),
            cutter_pg::shell_quote(std::path::Path::new(&psql))
        );
        let teardown = format!(
            "{} && rm -rf {}",
            kept.teardown_command(),
            cutter_pg::shell_quote(&work)
        );
        out.emit(
            &format!(
                "\nkept: the cluster is still running (pid {}, directory {}).\n\
                 connect as the writer (cutter_verify reads only):\n  {connect}\n\
                 use the cutter command on it:\n  export CUTTER_CONFIG={} PGPASSFILE={}\n  cutter status\n\
                 when done, stop it and remove everything:\n  {teardown}",
                kept.pid.map_or("?".to_string(), |p| p.to_string()),
                kept.dir.display(),
                cutter_pg::shell_quote(&cfg_path),
                cutter_pg::shell_quote(&pgpass),
            ),
            json!({"demo": "ok", "runs": ["demo-1", "demo-2"], "seconds": started.elapsed().as_secs_f64(),
                   "steps": Output::take_captured(),
                   "kept": {"cluster_dir": kept.dir, "port": port, "database": DB, "pid": kept.pid,
                            "pgpassfile": pgpass, "config": cfg_path, "work_dir": work,
                            "connect": connect, "teardown": teardown}}),
        );
        return Ok(exit::OK);
    }
    let cluster_dir: PathBuf = cluster.dir().to_path_buf();
    cluster.stop().map_err(fail("stopping the cluster"))?;
    work.close().map_err(|e| CliError::io(&w, e))?;
    out.emit(
        &format!(
            "torn down: {} and {} removed",
            cluster_dir.display(),
            w.display()
        ),
        json!({"demo": "ok", "runs": ["demo-1", "demo-2"], "seconds": started.elapsed().as_secs_f64(),
               "steps": Output::take_captured(),
               "removed": [cluster_dir, w]}),
    );
    Ok(exit::OK)
}

fn random_secret() -> String {
    use rand::RngCore;
    let mut b = [0u8; 18];
    rand::thread_rng().fill_bytes(&mut b);
    b.iter().map(|x| format!("{x:02x}")).collect()
}
