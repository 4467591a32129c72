//! `cutter run --mode dry-run` (seed 004, layers L0–L3): back up the target (the next
//! link of the backup chain), restore the chain — full backup, then every increment —
//! into a throwaway clone whose system identifier is checked to differ from the
//! target's before any write, rehearse the whole live pipeline there, prove the target
//! unchanged (net-zero: snapshot and system identifier), tear the clone down by exact
//! path, and report. The target is never written.

use cutter_core::{
    LiveAuthorization, Mode, Phase, PhaseOutcome, PhaseRecord, RunContext, RunId, RunMachine,
    RunState,
};

use crate::ctx::{pg_err, target_config, Ctx};
use crate::error::{Error, Result};
use crate::planfile::{PlanCopy, PlanFile};
use crate::run::{
    backup_recipient, finish, preflight_and_plan, record_reading_phases, signing_pin, Finished,
    Pipeline, RunRequest,
};
use crate::runs::{now_ms, now_rfc3339, now_unix, RunRecord};
use crate::statedir::{write_json, StateDir};

/// The passphrase of the backup secret key: `[backup].passphrase_file`, else the
/// environment variable `CUTTER_BACKUP_PASSPHRASE`, else none.
pub fn passphrase_source(ctx: &Ctx) -> cutter_backup::PassphraseSource {
    match &ctx.settings.backup_passphrase_file {
        Some(p) => cutter_backup::PassphraseSource::File(p.clone()),
        None if std::env::var_os("CUTTER_BACKUP_PASSPHRASE").is_some() => {
            cutter_backup::PassphraseSource::Env("CUTTER_BACKUP_PASSPHRASE".into())
        }
        None => cutter_backup::PassphraseSource::None,
    }
}

/// `cutter run --mode dry-run`.
pub fn dry_run(
    ctx: &Ctx,
    dir: &StateDir,
    run_id: RunId,
    copy: &PlanCopy,
    plan: PlanFile,
    args: &RunRequest,
) -> Result<Finished> {
    let secret_key = ctx.settings.backup_secret_key.clone().ok_or_else(|| {
        Error::Usage("a dry-run restores the fresh backup into a throwaway clone and needs the backup secret key: set [backup].secret_key (or CUTTER_BACKUP_SECRET_KEY)".into())
    })?;
    let exec_cfg = target_config(ctx)?;
    let verify_cfg = exec_cfg.with_user(&ctx.settings.verify_user, None);
    let mut target = cutter_pg::Target::connect(&exec_cfg).map_err(pg_err)?;
    let (valid, pre, mut timings) = preflight_and_plan(ctx.out, &mut target, &plan)?;
    let (recipient, signer) = backup_recipient(ctx)?;
    let signing_pin = signing_pin(ctx)?;
    let target_sysid = target.system_identifier();

    // L0: the fresh backup of the target, into the state directory like a live run's.
    let backup_cfg = cutter_backup::BackupConfig::new(
        dir.backups(),
        run_id.clone(),
        recipient.clone(),
        signer.clone(),
        verify_cfg.clone(),
    )
    .pg_bindir(ctx.settings.pg_bindir.clone());
    // The next link of the state directory's backup chain (an increment when it can be
    // one), like a live run's; the clone is restored from the whole chain.
    let pb = ctx.out.progress(0, "backup of target");
    let policy = cutter_backup::ChainPolicy {
        full_every: ctx.settings.backup_full_every,
        full: false,
    };
    let artifact = cutter_backup::chained_backup(&backup_cfg, &policy, &mut |b| pb.set_position(b))
        .map_err(|e| Error::Failed(e.to_string()))?;
    pb.finish_and_clear();

    // L1: the throwaway clone; its identity is checked before anything is written to it.
    let clone = cutter_pg::Cluster::start().map_err(pg_err)?;
    let clone_sysid = clone.system_identifier().map_err(pg_err)?;
    let gate_started = now_ms();
    let rehearsal_db = "cutter_rehearsal";
    clone
        .create_database(rehearsal_db, Some("template0"))
        .map_err(pg_err)?;
    let admin_cfg = clone.superuser_config(rehearsal_db).map_err(pg_err)?;
    let clone_db = {
        let mut c = admin_cfg
            .connect()
            .map_err(|e| Error::Failed(e.to_string()))?;
        cutter_pg::schema::install_reference(&mut c).map_err(pg_err)?;
        cutter_governance::install(&mut c).map_err(|e| Error::Failed(e.to_string()))?;
        // The clone lets the rehearsal write without recorded approvals (reference V5):
        // only a throwaway cluster can carry this mark, and only its superuser set it.
        cutter_pg::mark_rehearsal_clone(&mut c).map_err(pg_err)?;
        cutter_pg::surface::target_database(&mut c).map_err(pg_err)?
    };
    if clone_db.system_identifier != clone_sysid {
        return Err(Error::Failed(
            "the rehearsal clone's database reports another system identifier than its cluster"
                .into(),
        ));
    }
    let auth = LiveAuthorization::rehearsal(run_id.clone(), valid.digest(), target_sysid, clone_db)
        .map_err(|r| Error::Core(cutter_core::Error::Gate(r)))?;
    timings.push(PhaseRecord {
        phase: Phase::Gate,
        started_ms: gate_started,
        ended_ms: now_ms(),
        outcome: PhaseOutcome::Committed,
    });
    let pb = ctx
        .out
        .bytes_progress(artifact.manifest.size_bytes, "restore into clone");
    let links = cutter_backup::restore_chain_into(
        &artifact.path,
        &signing_pin,
        &secret_key,
        &passphrase_source(ctx),
        &admin_cfg,
        ctx.settings.pg_bindir.as_deref(),
        &mut |n| pb.set_position(n),
    )
    .map_err(|e| {
        Error::Failed(format!(
            "restoring the backup into the throwaway clone: {e}"
        ))
    })?;
    pb.finish_and_clear();
    let restored_from = format!(
        "the clone was restored from {} link(s) of backup chain {}: {}",
        links.len(),
        links[0],
        links
            .iter()
            .map(ToString::to_string)
            .collect::<Vec<_>>()
            .join(" → ")
    );
    // Logged only (on stderr, and in `--log-file`): printed as well, an operator saw it
    // twice; a library prints nothing.
    tracing::info!("{restored_from}");
    let exec_pw = cutter_pg::Password::new(random_password());
    let verify_pw = cutter_pg::Password::new(random_password());
    {
        let mut c = admin_cfg
            .connect()
            .map_err(|e| Error::Failed(e.to_string()))?;
        cutter_pg::schema::set_login_password(&mut c, cutter_pg::schema::EXEC_ROLE, &exec_pw)
            .map_err(pg_err)?;
        cutter_pg::schema::set_login_password(&mut c, cutter_pg::schema::VERIFY_ROLE, &verify_pw)
            .map_err(pg_err)?;
        // A HOLD the target records (V4) came along with the ledger; the rehearsal
        // writes to the clone as if it were released, which only the clone records
        // (no approvals: `ledger verify` of the clone would name it, the target never
        // sees it). The live run still waits for the real release.
        let holds = cutter_governance::unresolved_holds(&mut c)
            .map_err(|e| Error::Failed(e.to_string()))?;
        let runs: std::collections::BTreeSet<&str> =
            holds.iter().map(|h| h.run_id.as_str()).collect();
        for held in runs {
            let held = RunId::new(held)?;
            cutter_governance::record_hold_release(&mut c, &held, &[], "cutter-rehearsal")
                .map_err(|e| Error::Failed(e.to_string()))?;
        }
    }
    let clone_exec = clone
        .config(rehearsal_db, cutter_pg::schema::EXEC_ROLE, Some(exec_pw))
        .map_err(pg_err)?;
    let clone_verify = clone
        .config(
            rehearsal_db,
            cutter_pg::schema::VERIFY_ROLE,
            Some(verify_pw),
        )
        .map_err(pg_err)?;
    let mut clone_target = cutter_pg::Target::connect(&clone_exec).map_err(pg_err)?;
    if clone_target.system_identifier() == target_sysid {
        return Err(Error::Refused(
            "the rehearsal clone has the target's system identifier; refusing to write".into(),
        ));
    }
    clone_target
        .lock_target(&run_id)
        .map_err(|e| Error::Refused(e.to_string()))?;

    crate::run::refuse_if_interrupted(&run_id)?;
    // L2: the whole live pipeline, on the clone.
    let mut context = RunContext::new(
        run_id.clone(),
        Mode::DryRun,
        &valid,
        clone_sysid,
        now_unix(),
    );
    context.pre_snapshot = Some(pre.clone());
    let final_phase = if args.stage_only {
        Phase::WriteVerify
    } else {
        Phase::LifecycleEnact
    };
    let mut rec = RunRecord {
        machine: RunMachine::new(
            run_id.clone(),
            Mode::DryRun,
            final_phase,
            cutter_core::KillSwitch::Disarmed {
                run_id: run_id.clone(),
            },
        ),
        context,
        last_error: None,
        restore_proof: None,
        pid: std::process::id(),
        updated_at: now_rfc3339(),
        // A rehearsal's ledger is its throwaway clone's.
        ledger: None,
    };
    rec.save(dir)?;
    copy.keep_as(&dir.run_dir(&run_id)?.join("plan.json"))?;
    write_json(&dir.rollback_dir(&run_id)?.join("pre.json"), &pre)?;
    record_reading_phases(dir, &mut rec, timings)?;
    let rehearsal_backups = tempfile::tempdir()
        .map_err(|e| Error::io(std::path::Path::new("temporary directory"), e))?;
    let mut p = Pipeline {
        dir,
        rec,
        target: clone_target,
        exec_cfg: clone_exec,
        verify_cfg: clone_verify,
        recipient,
        signer,
        auth,
        plan: valid,
        actor: ctx.settings.actor.clone(),
        out: ctx.out,
        backups_dir: rehearsal_backups.path().to_path_buf(),
        pg_bindir: ctx.settings.pg_bindir.clone(),
        backup_policy: cutter_backup::ChainPolicy::default(),
        rehearsal: true,
        prove: None,
        cut: None,
    };
    let outcome = p.execute();
    let mut rec = p.rec;

    // L3: the target must be exactly as before; the clone goes, by exact path.
    let post = target.snapshot().map_err(pg_err)?;
    drop(target);
    let clone_dir = clone.dir().to_path_buf();
    clone.stop().map_err(pg_err)?;
    let net_zero = pre.net_zero(&post);
    rec.context.post_snapshot = Some(post);
    rec.save(dir)?;
    if let Err(v) = &net_zero {
        return Err(Error::Failed(format!("dry-run: the TARGET changed during the rehearsal ({v}); investigate before any live run")));
    }
    tracing::info!(
        "dry-run: clone {} removed; target net-zero",
        clone_dir.display()
    );
    match outcome {
        Ok(()) => finish(ctx, dir, &rec),
        Err(Error::Interrupted { signal, message }) => Err(Error::Interrupted {
            signal,
            message: format!(
                "{message} (net-zero verified); the clone is removed\nnext: `cutter status`"
            ),
        }),
        Err(e) => {
            let state = match &rec.machine.state {
                RunState::Held { .. } => "the rehearsal failed",
                _ => "the rehearsal stopped",
            };
            Err(Error::Failed(format!(
                "{state} on the throwaway clone (the target is unchanged, net-zero verified; no HOLD is written for a rehearsal): {e}"
            )))
        }
    }
}

fn random_password() -> String {
    use rand::RngCore;
    let mut b = [0u8; 24];
    rand::thread_rng().fill_bytes(&mut b);
    b.iter().map(|x| format!("{x:02x}")).collect()
}
