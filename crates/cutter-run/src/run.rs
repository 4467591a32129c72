//! The orchestrator of a run. Preflight, cut plan and gate only read; the five mutating
//! phases each commit one transaction (the backup: one artifact). Every event is
//! journaled before it is acted on; any failure re-arms the kill-switch, writes the HOLD
//! and the SG_3 record, and prints the matrix's compensation. Nothing retries.

use std::path::PathBuf;

use cutter_core::{
    BackupFacts, ChangeSetId, Effect, Event, Fingerprint, GateRequest, HoldRecord, KillSwitch,
    LiveAuthorization, Mode, Phase, PhaseOutcome, PhaseRecord, RunContext, RunId, RunMachine,
    RunState, SignedApproval, Snapshot,
};

use crate::ctx::{pg_err, target_config, Ctx};
use crate::error::{Error, Result};
use crate::failpoint::{self, When};
use crate::output::Output;
use crate::planfile::{FilePlan, PlanCopy, PlanFile};
use crate::runs::{now_ms, now_rfc3339, now_unix, RunRecord};
use crate::statedir::{write_json, HoldFile, StateDir};

/// Parses `--approval STATEMENT:SIGNATURE` arguments into signed approvals.
pub fn read_approvals(args: &[String]) -> Result<Vec<SignedApproval>> {
    args.iter()
        .map(|a| {
            let (st, sig) = a.split_once(':').ok_or_else(|| {
                Error::Usage(format!(
                    "--approval {a:?}: expected STATEMENT:SIGNATURE (two files)"
                ))
            })?;
            cutter_governance::read_signed_approval(st.as_ref(), sig.as_ref())
                .map_err(|e| Error::Usage(e.to_string()))
        })
        .collect()
}

/// The approvers whose signatures count for `purpose`, and a verifier over the
/// registry's keys: the database's approver registry (reference V5) only. The
/// configuration's `[approvals].approver_keys`, when set, narrows it; a configured key
/// the registry does not hold (or has revoked) is a refusal that names it.
pub fn approvers(
    ctx: &Ctx,
    purpose: cutter_core::Purpose,
) -> Result<(cutter_core::ApproverSet, cutter_governance::OpenPgpVerifier)> {
    let mut c = target_config(ctx)?
        .connect()
        .map_err(|e| Error::Failed(e.to_string()))?;
    approvers_in(ctx, &mut c, purpose)
}

/// [`approvers`] over an open connection.
pub fn approvers_in(
    ctx: &Ctx,
    c: &mut postgres::Client,
    purpose: cutter_core::Purpose,
) -> Result<(cutter_core::ApproverSet, cutter_governance::OpenPgpVerifier)> {
    let registry = cutter_governance::load_registry(c).map_err(|e| Error::Failed(e.to_string()))?;
    let verifier = registry
        .verifier()
        .map_err(|e| Error::Failed(e.to_string()))?;
    let mut set = registry.approver_set(purpose);
    if !ctx.settings.approver_keys.is_empty() {
        let (configured, _) = cutter_governance::load_approvers(&ctx.settings.approver_keys)
            .map_err(|e| Error::Usage(e.to_string()))?;
        let unregistered: Vec<String> = configured
            .0
            .iter()
            .filter(|f| registry.get(f).is_none_or(|a| a.revoked.is_some()))
            .map(|f| f.to_string())
            .collect();
        if !unregistered.is_empty() {
            return Err(Error::Refused(format!(
                "[approvals].approver_keys names key(s) the database's approver registry does not hold \
                 (or has revoked): {}; the configuration may only narrow the registry — register them with \
                 `cutter approvers add` (as the schema owner) or remove them from the configuration",
                unregistered.join(", ")
            )));
        }
        set.0.retain(|f| configured.0.contains(f));
    }
    if set.0.is_empty() {
        return Err(Error::Refused(format!(
            "no registered approver may approve {purpose}: register two with `cutter approvers add` \
             (as the schema owner){}",
            if ctx.settings.approver_keys.is_empty() {
                ""
            } else {
                ", or widen [approvals].approver_keys"
            }
        )));
    }
    Ok((set, verifier))
}

/// Checks `signed` for `scope` with cutter-core's rules at now, within the configured
/// lifetime, against `approvers` and their `verifier`; a refusal lists every reason.
pub fn check_signed(
    ctx: &Ctx,
    scope: &cutter_core::ApprovalScope<'_>,
    signed: &[cutter_core::SignedApproval],
    (approvers, verifier): &(cutter_core::ApproverSet, cutter_governance::OpenPgpVerifier),
) -> Result<Vec<cutter_core::VerifiedApproval>> {
    cutter_core::check_approvals(
        scope,
        signed,
        approvers,
        now_unix(),
        approval_policy(ctx)?,
        verifier,
    )
    .map_err(|reasons| {
        Error::Core(cutter_core::Error::Gate(cutter_core::GateRefusal {
            reasons,
        }))
    })
}

/// The configured approval lifetime: statements expire at most this long after the
/// gate's time (`[approvals].validity_hours`, default 24, never more than 168).
pub fn approval_policy(ctx: &Ctx) -> Result<cutter_core::ApprovalPolicy> {
    cutter_core::ApprovalPolicy::with_max_hours(ctx.settings.validity_hours)
        .map_err(|e| Error::Usage(format!("[approvals].validity_hours: {e}")))
}

/// Refuses to start while another run of this state directory is unfinished, or is
/// held without a HOLD (its process died before writing it: `recover` finishes that).
fn refuse_unfinished(dir: &StateDir, this: &RunId) -> Result<()> {
    let hold_present = dir.hold().map_or(true, |h| h.is_some());
    for id in dir.run_ids()? {
        if &id == this {
            return Err(Error::Refused(format!(
                "run id {id} was already used in this state directory; a run id never runs twice — choose a new one"
            )));
        }
        if let Some(r) = RunRecord::load(dir, &id)? {
            if matches!(
                r.machine.state,
                RunState::Created | RunState::Running { .. } | RunState::Passed { .. }
            ) {
                return Err(Error::Refused(format!(
                    "run {id} did not finish ({}); run `cutter recover` before starting another run",
                    r.machine.state
                )));
            }
            if !hold_present
                && r.machine.mode == Mode::Live
                && matches!(r.machine.state, RunState::Held { .. })
            {
                return Err(Error::Refused(format!(
                    "run {id} is {} but no HOLD is present (its process died before writing it); run `cutter recover` before starting another run",
                    r.machine.state
                )));
            }
        }
    }
    Ok(())
}

/// The backup set-up a run needs: the pinned recipient, and the pinned key that signs
/// the manifest.
pub fn backup_recipient(
    ctx: &Ctx,
) -> Result<(cutter_backup::Recipient, cutter_backup::ManifestSigner)> {
    let pin = cutter_backup::recipient_pin(ctx.settings.backup_fingerprint.as_deref(), &|_| None)
        .map_err(|e| Error::Refused(e.to_string()))?;
    let key = ctx.settings.backup_key.clone().ok_or_else(|| {
        Error::Refused("no backup recipient key: set [backup].recipient_key (or CUTTER_BACKUP_KEY); a live run never writes without a backup".into())
    })?;
    let recipient =
        cutter_backup::load_recipient(&key, &pin).map_err(|e| Error::Refused(e.to_string()))?;
    let signer = backup_signer(ctx)?;
    Ok((recipient, signer))
}

/// The pinned manifest signing fingerprint (`[backup].signing_fingerprint`).
pub fn signing_pin(ctx: &Ctx) -> Result<Fingerprint> {
    cutter_backup::signing_pin(ctx.settings.backup_signing_fingerprint.as_deref())
        .map_err(|e| Error::Refused(e.to_string()))
}

/// The signing key's passphrase: `CUTTER_BACKUP_SIGNING_PASSPHRASE` if set, else none.
fn signing_passphrase() -> cutter_backup::PassphraseSource {
    if std::env::var_os(cutter_backup::SIGNING_PASSPHRASE_ENV).is_some() {
        cutter_backup::PassphraseSource::Env(cutter_backup::SIGNING_PASSPHRASE_ENV.into())
    } else {
        cutter_backup::PassphraseSource::None
    }
}

/// The manifest signer: the pinned signing key, from its private secret key file.
pub fn backup_signer(ctx: &Ctx) -> Result<cutter_backup::ManifestSigner> {
    let pin = signing_pin(ctx)?;
    let key = ctx.settings.backup_signing_key.clone().ok_or_else(|| {
        Error::Refused(format!(
            "no backup signing key: set [backup].signing_key (or {}) to the secret key file of \
             the key [backup].signing_fingerprint pins ({pin}); a backup is never written \
             without a signed manifest",
            cutter_backup::SIGNING_KEY_ENV
        ))
    })?;
    cutter_backup::ManifestSigner::load(&key, &pin, &signing_passphrase())
        .map_err(|e| Error::Refused(e.to_string()))
}

/// Refuses while the database records an unresolved HOLD (reference V4): whichever
/// state directory wrote it, a live run waits until it is released there.
pub fn refuse_database_hold(cfg: &cutter_pg::ConnConfig) -> Result<()> {
    let mut c = cfg.connect().map_err(|e| Error::Failed(e.to_string()))?;
    let holds =
        cutter_governance::unresolved_holds(&mut c).map_err(|e| Error::Failed(e.to_string()))?;
    match holds.first() {
        None => Ok(()),
        Some(h) => Err(Error::Held(format!(
            "the database records an unresolved HOLD: the SG_3 escalation of run {} (review_decision id {}){}; \
             no live run goes ahead until it is compensated and released (`cutter hold release`, from the \
             state directory that holds it)",
            h.run_id,
            h.decision_id,
            if holds.len() > 1 {
                format!(", and {} more", holds.len() - 1)
            } else {
                String::new()
            }
        ))),
    }
}

/// Stops a run that a signal interrupted before it claimed its run id: nothing was
/// written, nothing is held.
pub fn refuse_if_interrupted(run_id: &RunId) -> Result<()> {
    match crate::interrupt::received() {
        None => Ok(()),
        Some(signal) => Err(Error::Interrupted {
            signal,
            message: format!("run {run_id} interrupted by {signal} before it started: nothing was written\nnext: `cutter status`"),
        }),
    }
}

/// Everything a pipeline run needs, connected and authorized.
pub struct Pipeline<'a> {
    /// The state directory.
    pub dir: &'a StateDir,
    /// The run.
    pub rec: RunRecord,
    /// The target (exec role), holding the per-target run lock.
    pub target: cutter_pg::Target,
    /// Exec-role configuration, to reconnect after a lost connection.
    pub exec_cfg: cutter_pg::ConnConfig,
    /// Read-only role configuration (write_verify's re-read and pg_dump).
    pub verify_cfg: cutter_pg::ConnConfig,
    /// Pinned backup recipient.
    pub recipient: cutter_backup::Recipient,
    /// Pinned manifest signing key.
    pub signer: cutter_backup::ManifestSigner,
    /// The gate's authorization.
    pub auth: LiveAuthorization,
    /// The validated plan, streamed from the run's own copy of the plan file.
    pub plan: FilePlan,
    /// Recorded on rows.
    pub actor: String,
    /// Output.
    pub out: Output,
    /// Where the backup phase writes its artifact.
    pub backups_dir: PathBuf,
    /// Where pg_dump is (`[backup] pg_bindir`; `None`: `pg_config --bindir`).
    pub pg_bindir: Option<PathBuf>,
    /// When the backup is full rather than an increment of the chain (`[backup] full_every`).
    pub backup_policy: cutter_backup::ChainPolicy,
    /// A dry-run on a throwaway clone: failures hold the rehearsal only (no HOLD file,
    /// no kill-switch change, no SG_3 on the target).
    pub rehearsal: bool,
    /// `[run] prove_backup` (`None`: a rehearsal, whose backup is of its clone).
    pub prove: Option<crate::prove::ProveSetup>,
    /// What cut_leg_a returned in this process: `Some(None)` for a first load,
    /// `Some(Some(diff))` for an amendment; leg_b_record and write_verify then use it
    /// instead of reading the whole document again. `None` until cut_leg_a ran here.
    pub cut: Option<Option<Box<cutter_core::PlanDiff>>>,
}

impl std::fmt::Debug for Pipeline<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Pipeline")
            .field("run", &self.rec.machine.run_id)
            .finish_non_exhaustive()
    }
}

impl Pipeline<'_> {
    fn change_set(&self) -> ChangeSetId {
        ChangeSetId::for_run(self.auth.run_id())
    }

    /// Runs the mutating phases up to the run's final phase, then the post snapshot.
    /// A SIGINT or SIGTERM ([`crate::interrupt`]) cancels the statement in flight and
    /// fails the phase it interrupts, before its COMMIT, as any failure does.
    pub fn execute(&mut self) -> Result<()> {
        // Inside the adapter's own transactions: test-only failpoints (debug builds
        // only), then the interrupt check.
        self.target
            .set_before_commit(Some(Box::new(Self::before_commit)));
        let cancel = self.target.canceller();
        crate::interrupt::set_canceller(Some(Box::new(move || {
            if let Err(e) = cancel.cancel() {
                tracing::warn!("cancelling the statement in flight: {e}");
            }
        })));
        let final_phase = self.rec.machine.final_phase;
        let outcome = Phase::MUTATING
            .into_iter()
            .filter(|p| *p <= final_phase)
            .try_for_each(|phase| self.step(phase));
        crate::interrupt::set_canceller(None);
        outcome?;
        let post = self.target.snapshot().map_err(pg_err)?;
        let rollback = self.dir.rollback_dir(&self.rec.machine.run_id)?;
        write_json(&rollback.join("post.json"), &post)?;
        self.rec.context.post_snapshot = Some(post);
        self.rec.save(self.dir)
    }

    fn step(&mut self, phase: Phase) -> Result<()> {
        self.rec.record(self.dir, Event::PhaseStarted { phase })?;
        let started = now_ms();
        // A signal between two phases fails the next one before it writes anything.
        let result = crate::interrupt::check().and_then(|()| self.do_phase(phase));
        let ended = now_ms();
        match result {
            Ok(()) => {
                if let Err(e) = failpoint::hit(phase, When::AfterCommit) {
                    return self.fail(phase, started, e);
                }
                self.rec.context.phases.push(PhaseRecord {
                    phase,
                    started_ms: started,
                    ended_ms: ended,
                    outcome: PhaseOutcome::Committed,
                });
                let effects = self.rec.record(self.dir, Event::PhaseCommitted { phase })?;
                tracing::info!(run = %self.rec.machine.run_id, ms = ended - started, "phase {phase} committed");
                if !self.rehearsal {
                    apply_effects(
                        self.dir,
                        &mut self.rec,
                        &effects,
                        None,
                        &self.actor,
                        self.out,
                    )?;
                }
                Ok(())
            }
            Err(reason) => self.fail(phase, started, reason),
        }
    }

    /// Inside a phase's transaction, just before its COMMIT: a test-only failpoint, then
    /// the interrupt check. An `Err` rolls the phase back.
    fn before_commit(phase: Phase) -> std::result::Result<(), String> {
        failpoint::hit(phase, When::BeforeCommit)?;
        crate::interrupt::check()
    }

    fn fail(&mut self, phase: Phase, started: i64, reason: String) -> Result<()> {
        let reason = crate::interrupt::annotate(reason);
        self.rec.context.phases.push(PhaseRecord {
            phase,
            started_ms: started,
            ended_ms: now_ms(),
            outcome: PhaseOutcome::Failed {
                reason: reason.clone(),
            },
        });
        self.rec.last_error = Some(format!("{phase}: {reason}"));
        let effects = self.rec.record(
            self.dir,
            Event::PhaseFailed {
                phase,
                reason: reason.clone(),
            },
        )?;
        if self.rehearsal {
            if let Some(signal) = crate::interrupt::received() {
                return Err(Error::Interrupted {
                    signal,
                    message: format!("rehearsal {} interrupted by {signal} in {phase}; the target was not written", self.rec.machine.run_id),
                });
            }
            return Err(Error::Failed(format!("{phase}: {reason}")));
        }
        let exec = self.exec_cfg.clone();
        apply_effects(
            self.dir,
            &mut self.rec,
            &effects,
            Some(&exec),
            &self.actor,
            self.out,
        )?;
        if let Some(signal) = crate::interrupt::received() {
            return Err(Error::Interrupted {
                signal,
                message: format!(
                    "run {run} interrupted by {signal} in {phase}\nthe phase rolled back; kill-switch re-armed; HOLD written\nnext: `cutter status`, then {} — `cutter compensate --run-id {run}`",
                    self.rec.machine.prescribed_compensation().describe(),
                    run = self.rec.machine.run_id,
                ),
            });
        }
        Err(Error::Held(format!(
            "run {} failed in {phase}: {reason}\nthe phase rolled back; kill-switch re-armed; HOLD written\nnext: {} — `cutter compensate --run-id {}`",
            self.rec.machine.run_id,
            self.rec.machine.prescribed_compensation().describe(),
            self.rec.machine.run_id
        )))
    }

    fn do_phase(&mut self, phase: Phase) -> std::result::Result<(), String> {
        // The backup and cut_leg_a show their own bars; the others run on the server.
        let spinner = match phase {
            Phase::PreWriteBackup | Phase::CutLegA => None,
            _ => Some(self.out.spinner(phase.name())),
        };
        let outcome = self.phase_work(phase);
        drop(spinner);
        outcome
    }

    /// `prove_backup = before-write`: proves the backup just taken; a failed proof fails
    /// pre_write_backup, so cut_leg_a never starts.
    fn prove_before_write(&mut self, artifact: &str) -> std::result::Result<(), String> {
        let Some(setup) = self
            .prove
            .as_ref()
            .filter(|p| p.mode == cutter_core::ProveBackup::BeforeWrite)
        else {
            return Ok(());
        };
        failpoint::hit(Phase::PreWriteBackup, When::BeforeProof)?;
        let spinner = self.out.spinner("proving the backup");
        let (facts, proof) = setup.prove(&self.backups_dir, artifact);
        drop(spinner);
        self.rec.restore_proof = proof;
        let verdict = match facts.passed {
            Some(true) => Ok(()),
            _ => Err(format!(
                "the backup could not be proven, so nothing was written (prove_backup = \
                 before-write): {}",
                facts.summary()
            )),
        };
        self.rec.context.backup_proof = Some(facts);
        verdict
    }

    /// `prove_backup = after-run`: proves the run's backup once its phases are done (or
    /// stopped); the verdict goes to the report, the run's outcome stays what it was.
    pub fn prove_after_run(&mut self) -> Result<()> {
        let (Some(setup), Some(backup)) = (
            self.prove
                .as_ref()
                .filter(|p| p.mode == cutter_core::ProveBackup::AfterRun),
            self.rec.context.backup.as_ref(),
        ) else {
            return Ok(());
        };
        if crate::interrupt::received().is_some() {
            return Ok(());
        }
        let spinner = self.out.spinner("proving the backup");
        let (facts, proof) = setup.prove(&self.backups_dir, &backup.artifact);
        drop(spinner);
        self.rec.context.backup_proof = Some(facts);
        self.rec.restore_proof = proof;
        self.rec.save(self.dir)
    }

    fn phase_work(&mut self, phase: Phase) -> std::result::Result<(), String> {
        match phase {
            Phase::PreWriteBackup => {
                let cfg = cutter_backup::BackupConfig::new(
                    self.backups_dir.clone(),
                    self.rec.machine.run_id.clone(),
                    self.recipient.clone(),
                    self.signer.clone(),
                    self.verify_cfg.clone(),
                )
                .pg_bindir(self.pg_bindir.clone());
                let pb = self.out.progress(0, "pre_write_backup");
                let artifact = cutter_backup::chained_backup(&cfg, &self.backup_policy, &mut |b| {
                    pb.set_position(b)
                })
                .map_err(|e| e.to_string())?;
                pb.finish_and_clear();
                Self::before_commit(phase)?;
                let m = &artifact.manifest;
                self.rec.context.backup = Some(BackupFacts {
                    artifact: m.artifact.clone(),
                    sha256: m.sha256,
                    size_bytes: m.size_bytes,
                    recipient: m.encryption.recipient.clone(),
                });
                let name = m.artifact.clone();
                self.prove_before_write(&name)
            }
            Phase::CutLegA => {
                let pb = self.out.progress(self.plan.rows(), "cut_leg_a");
                let report = self
                    .target
                    .cut_leg_a_streamed(&self.auth, &self.plan, &mut |n| pb.set_position(n))
                    .map_err(|e| e.to_string())?;
                pb.finish_and_clear();
                self.rec.context.change_set_id = Some(report.change_set_id.clone());
                self.rec.context.units_created = Some(report.units_created);
                self.cut = Some(report.diff);
                Ok(())
            }
            Phase::LegBRecord => {
                let mut tx = self
                    .target
                    .phase_transaction(&self.auth, phase)
                    .map_err(|e| e.to_string())?;
                let report = match &self.cut {
                    Some(cut) => cutter_governance::leg_b_record_cut(
                        tx.client(),
                        &self.auth,
                        &self.plan,
                        cut.as_deref(),
                        &self.actor,
                    ),
                    None => cutter_governance::leg_b_record(
                        tx.client(),
                        &self.auth,
                        &self.plan,
                        &self.actor,
                    ),
                }
                .map_err(|e| e.to_string())?;
                Self::before_commit(phase)?;
                tx.commit().map_err(|e| e.to_string())?;
                let rows = 1 + report.units + 1 + report.signature_rows.len() as u64;
                self.rec.context.ledger_rows = Some(rows);
                Ok(())
            }
            Phase::WriteVerify => {
                let mut verify = self
                    .verify_cfg
                    .connect()
                    .map_err(|e| format!("connecting as the read-only role: {e}"))?;
                let mut tx = self
                    .target
                    .phase_transaction(&self.auth, phase)
                    .map_err(|e| e.to_string())?;
                let report = match &self.cut {
                    Some(cut) => cutter_governance::write_verify_cut(
                        tx.client(),
                        &mut verify,
                        &self.auth,
                        &self.plan,
                        cut.as_deref(),
                        &self.actor,
                    ),
                    None => cutter_governance::write_verify(
                        tx.client(),
                        &mut verify,
                        &self.auth,
                        &self.plan,
                        &self.actor,
                    ),
                }
                .map_err(|e| e.to_string())?;
                Self::before_commit(phase)?;
                tx.commit().map_err(|e| e.to_string())?;
                self.rec.context.verify = Some(report.facts);
                Ok(())
            }
            Phase::LifecycleEnact => {
                let cs = self.change_set();
                let n = self
                    .target
                    .lifecycle_enact(&self.auth, &cs)
                    .map_err(|e| e.to_string())?;
                self.rec.context.units_enacted = Some(n);
                Ok(())
            }
            other => Err(format!("{other} is not a mutating phase")),
        }
    }
}

/// Journals `event` for the run (fsynced) and then carries out every effect the state
/// machine returns for it; returns those effects.
pub fn record_and_apply(
    dir: &StateDir,
    rec: &mut RunRecord,
    event: Event,
    exec_cfg: Option<&cutter_pg::ConnConfig>,
    actor: &str,
    out: Output,
) -> Result<Vec<Effect>> {
    let effects = rec.record(dir, event)?;
    apply_effects(dir, rec, &effects, exec_cfg, actor, out)?;
    Ok(effects)
}

/// Carries out the effects of a transition. On a failure: re-arm the kill-switch first,
/// then the post snapshot (on a fresh connection: the old one may be dead), the HOLD,
/// and SG_3 (ledger row if the database answers, state file always).
pub fn apply_effects(
    dir: &StateDir,
    rec: &mut RunRecord,
    effects: &[Effect],
    exec_cfg: Option<&cutter_pg::ConnConfig>,
    actor: &str,
    out: Output,
) -> Result<()> {
    let run = rec.machine.run_id.clone();
    let mut notes: Vec<String> = Vec::new();
    if effects.contains(&Effect::RearmKillSwitch) {
        dir.set_kill_switch(&KillSwitch::Engaged)?;
    }
    let rollback = dir.rollback_dir(&run)?;
    if effects.contains(&Effect::CapturePostSnapshot) {
        match exec_cfg.map(|c| cutter_pg::Target::connect(c).and_then(|mut t| t.snapshot())) {
            Some(Ok(post)) => {
                write_json(&rollback.join("post.json"), &post)?;
                rec.context.post_snapshot = Some(post);
            }
            Some(Err(e)) => notes.push(format!("post snapshot not captured: {e}")),
            None => notes.push("post snapshot not captured: no connection configuration".into()),
        }
        rec.save(dir)?;
    }
    let (failed_phase, reason, compensation) = match &rec.machine.state {
        RunState::Held {
            failed_phase,
            reason,
            compensation,
        } => (*failed_phase, reason.clone(), *compensation),
        _ => (None, String::new(), rec.machine.prescribed_compensation()),
    };
    if effects.contains(&Effect::WriteHold) {
        // There is one HOLD: this run's is kept as written, another run's never replaced.
        match dir.hold() {
            Ok(Some(h)) if h.record.run_id != run => notes.push(format!(
                "HOLD not written: the HOLD of run {} is present and stays; run `cutter recover` again once it is released",
                h.record.run_id
            )),
            Ok(Some(_)) => {}
            // Absent, or unreadable: a HOLD for this run takes its place.
            Ok(None) | Err(_) => {
                let pre = rollback.join("pre.json");
                let post = rollback.join("post.json");
                dir.write_hold(&HoldFile {
                    record: HoldRecord {
                        run_id: run.clone(),
                        failed_phase,
                        reason: reason.clone(),
                        at: now_unix(),
                    },
                    compensation,
                    pre_snapshot: pre.exists().then_some(pre),
                    post_snapshot: post.exists().then_some(post),
                })?;
            }
        }
    }
    if effects.contains(&Effect::RecordSg3) {
        record_sg3(
            &rollback,
            rec,
            failed_phase,
            reason,
            exec_cfg,
            actor,
            &mut notes,
        )?;
    }
    if effects.contains(&Effect::RemoveHold) {
        dir.remove_hold()?;
    }
    for n in notes {
        out.note(&n);
    }
    Ok(())
}

/// The SG_3 escalation, idempotently: the state file unless one was written before (its
/// record is then the one the ledger gets), and the ledger row unless the ledger already
/// has the run's escalation. A run fails at most once, so it has at most one.
fn record_sg3(
    rollback: &std::path::Path,
    rec: &RunRecord,
    failed_phase: Option<Phase>,
    reason: String,
    exec_cfg: Option<&cutter_pg::ConnConfig>,
    actor: &str,
    notes: &mut Vec<String>,
) -> Result<()> {
    let run = &rec.machine.run_id;
    let file = rollback.join("sg3.json");
    let sg3 = match crate::statedir::read_json::<cutter_governance::Sg3Record>(&file) {
        Ok(Some(earlier)) if &earlier.run_id == run => earlier,
        _ => {
            let sg3 = cutter_governance::Sg3Record::new(
                run.clone(),
                failed_phase,
                reason,
                rec.context.pre_snapshot.clone(),
                rec.context.post_snapshot.clone(),
            );
            // Replaces only a record that is unreadable or names another run.
            crate::statedir::write_file(
                &file,
                sg3.to_json_pretty().as_bytes(),
                crate::statedir::Replace::Yes,
            )?;
            sg3
        }
    };
    let written = exec_cfg.map(|c| {
        c.connect()
            .map_err(|e| e.to_string())
            .and_then(|mut client| {
                let facts = cutter_governance::run_status_in_db(&mut client, run)
                    .map_err(|e| e.to_string())?;
                match facts.sg3_escalations.first() {
                    Some(id) => Ok((*id, false)),
                    None => cutter_governance::record_sg3(&mut client, &sg3, actor)
                        .map(|id| (id, true))
                        .map_err(|e| e.to_string()),
                }
            })
    });
    let file = file.display();
    notes.push(match written {
        Some(Ok((id, true))) => {
            format!("SG_3 escalation recorded in the ledger (review_decision {id}) and in {file}")
        }
        Some(Ok((id, false))) => format!(
            "SG_3 escalation already in the ledger (review_decision {id}); state file {file}"
        ),
        Some(Err(e)) => format!(
            "SG_3 escalation written to {file} only; the ledger row failed: {e} — `cutter recover` writes it once the database answers"
        ),
        None => format!("SG_3 escalation written to {file}"),
    });
    Ok(())
}

/// What to run: the library's form of `cutter run --plan P --run-id R --mode M
/// [--approval S:SIG]… [--stage-only]`.
#[derive(Debug, Clone)]
pub struct RunRequest {
    /// The plan file (the run reads its private copy in the state directory).
    pub plan: PathBuf,
    /// The run id (letters, digits, `.`, `_`, `-`).
    pub run_id: String,
    /// `Mode::DryRun`: a rehearsal on a throwaway clone; `Mode::Live`: the gated run.
    pub mode: Mode,
    /// Approvals as `STATEMENT:SIGNATURE` (two file paths); a live run needs SG_1 and SG_2.
    pub approvals: Vec<String>,
    /// Stop after write_verify: leave the units as verified drafts (not enacted).
    pub stage_only: bool,
}

impl RunRequest {
    /// A rehearsal of run `run_id` with the plan file `plan`: on a throwaway clone,
    /// through `lifecycle_enact`; it needs no approval.
    pub fn rehearsal(plan: impl Into<PathBuf>, run_id: impl Into<String>) -> Self {
        Self {
            plan: plan.into(),
            run_id: run_id.into(),
            mode: Mode::DryRun,
            approvals: Vec::new(),
            stage_only: false,
        }
    }
}

/// A finished run: its record, its report (as written to `report.json`) and the
/// one-paragraph summary `cutter run` prints.
#[derive(Debug, Clone)]
pub struct Finished {
    /// The run as `run.json` records it.
    pub record: RunRecord,
    /// The report, as `report.json` holds it.
    pub report: serde_json::Value,
    /// Where `report.md` was written.
    pub report_md: PathBuf,
    /// The human summary.
    pub summary: String,
}

/// Runs `req` (live, or a rehearsal on a throwaway clone) in the state directory
/// `ctx.settings.state_dir`, and writes its report. A caller that wants SIGINT and
/// SIGTERM to stop a run cleanly calls [`crate::interrupt::install`] first.
pub fn run(ctx: &Ctx, req: &RunRequest) -> Result<Finished> {
    let args = req;
    let dir = StateDir::open(ctx.settings.require_state_dir()?)?;
    let run_id = RunId::new(args.run_id.clone())?;
    let (_lock, stale) = dir.lock(&format!("run {run_id}"), &now_rfc3339())?;
    if let Some(s) = stale {
        tracing::warn!("the state lock was last held by pid {} ({}) since {}, which is gone; its lock was released by the kernel", s.pid, s.purpose, s.since);
    }
    // The id the run is recorded under: a rehearsal has its own.
    let record_id = match args.mode {
        Mode::Live => run_id.clone(),
        Mode::DryRun => rehearsal_id(&dir, &run_id)?,
    };
    refuse_unfinished(&dir, &record_id)?;
    let copy = PlanCopy::take(&args.plan, &dir.root().join("runs"))?;
    let plan = PlanFile::open_named(copy.path(), &args.plan)?;
    match args.mode {
        Mode::Live => live(ctx, &dir, record_id, &copy, plan, args),
        Mode::DryRun => {
            let said = format!(
                "rehearsal of run {run_id}, recorded as {record_id} (the live run keeps the id {run_id})"
            );
            crate::dryrun::dry_run(ctx, &dir, record_id, &copy, plan, args).map(|mut f| {
                // A library prints nothing: the caller shows the summary.
                f.summary = format!("{said}\n{}", f.summary);
                f
            })
        }
    }
}

/// The id a dry-run of `run` is recorded under: `<run>.dry-run-<n>`, the first one not
/// yet used, so that rehearsals repeat and leave `run` itself to the live run. Refused
/// once `run` has run live: there is nothing left to rehearse.
fn rehearsal_id(dir: &StateDir, run: &RunId) -> Result<RunId> {
    let used = dir.run_ids()?;
    if used.contains(run) {
        return Err(Error::Refused(format!(
            "run id {run} has already run in this state directory; rehearse a new run id"
        )));
    }
    (1u32..)
        .map(|n| RunId::new(format!("{run}.dry-run-{n}")))
        .find(|id| id.as_ref().map_or(true, |id| !used.contains(id)))
        .expect("an unbounded range yields a free id")
        .map_err(|e| {
            Error::Usage(format!(
                "run id {run} is too long to name its rehearsal: {e}"
            ))
        })
}

/// Preflight and cut plan against a connected target: the valid plan, the pre snapshot
/// and the two phases' timings. Only reads.
pub fn preflight_and_plan(
    out: Output,
    target: &mut cutter_pg::Target,
    plan: &PlanFile,
) -> Result<(FilePlan, Snapshot, Vec<PhaseRecord>)> {
    let t0 = now_ms();
    let report = target.preflight().map_err(pg_err)?;
    for w in &report.warnings {
        tracing::warn!("preflight: {w}");
    }
    if !report.is_ok() {
        let lines: Vec<String> = report
            .findings
            .iter()
            .map(|f| format!("  {}: {}", f.object, f.problem))
            .collect();
        return Err(Error::Failed(format!(
            "preflight: {} differs from the reference schema in {} place(s):\n{}",
            target.label(),
            lines.len(),
            lines.join("\n")
        )));
    }
    let vocab = target.vocabularies().map_err(pg_err)?;
    let pre = target.snapshot().map_err(pg_err)?;
    let t1 = now_ms();
    let spinner = out.spinner("checking the plan");
    let valid = plan
        .validate(&vocab)
        .map_err(|r| Error::Usage(format!("{}: {r}", plan.name().display())))?;
    drop(spinner);
    let t2 = now_ms();
    let rec = |phase, started_ms, ended_ms| PhaseRecord {
        phase,
        started_ms,
        ended_ms,
        outcome: PhaseOutcome::Committed,
    };
    Ok((
        valid,
        pre,
        vec![rec(Phase::Preflight, t0, t1), rec(Phase::Cutplan, t1, t2)],
    ))
}

/// Journals the three reading phases of a run that passed them, with their timings.
pub fn record_reading_phases(
    dir: &StateDir,
    rec: &mut RunRecord,
    timings: Vec<PhaseRecord>,
) -> Result<()> {
    for t in timings {
        let phase = t.phase;
        rec.record(dir, Event::PhaseStarted { phase })?;
        rec.record(
            dir,
            if phase == Phase::Gate {
                Event::GatePassed
            } else {
                Event::PhaseCommitted { phase }
            },
        )?;
        rec.context.phases.push(t);
    }
    Ok(())
}

fn live(
    ctx: &Ctx,
    dir: &StateDir,
    run_id: RunId,
    copy: &PlanCopy,
    plan: PlanFile,
    args: &RunRequest,
) -> Result<Finished> {
    let exec_cfg = target_config(ctx)?;
    let verify_cfg = exec_cfg.with_user(&ctx.settings.verify_user, None);
    let mut target = cutter_pg::Target::connect(&exec_cfg).map_err(pg_err)?;
    target
        .lock_target(&run_id)
        .map_err(|e| Error::Refused(e.to_string()))?;
    let (valid, pre, mut timings) = preflight_and_plan(ctx.out, &mut target, &plan)?;
    let (diff_digest, conflicts) = crate::amend::approval_diff_digest(&mut target, &valid)?;
    let gate_started = now_ms();
    // The gate: everything it needs is read now; a refusal leaves no run behind.
    let (recipient, signer) = backup_recipient(ctx)?;
    let approvals = read_approvals(&args.approvals)?;
    let (approver_set, verifier) = approvers(ctx, cutter_core::Purpose::LiveRun)?;
    let kill_switch = dir.kill_switch()?;
    let hold = dir.hold()?;
    if hold.is_none() {
        refuse_database_hold(&exec_cfg)?;
    }
    let auth = cutter_core::authorize(
        &GateRequest {
            run_id: &run_id,
            plan_digest: valid.digest(),
            findings_digest: plan.header().findings.as_ref().map(|f| f.digest),
            diff_digest,
            target: target.database(),
            kill_switch: &kill_switch,
            hold: hold.as_ref().map(|h| &h.record),
            approvals: &approvals,
            approvers: &approver_set,
            policy: approval_policy(ctx)?,
            now: now_unix(),
        },
        &verifier,
    )
    .map_err(|r| Error::Core(cutter_core::Error::Gate(r)))?;
    crate::amend::refuse_conflicts(&args.plan, &conflicts)?;
    let final_phase = if args.stage_only {
        Phase::WriteVerify
    } else {
        Phase::LifecycleEnact
    };
    let prove = crate::prove::ProveSetup::from_ctx(ctx)?;
    refuse_if_interrupted(&run_id)?;
    let claim = {
        let mut c = exec_cfg
            .connect()
            .map_err(|e| Error::Failed(e.to_string()))?;
        let claim = cutter_governance::claim(&mut c, &auth, &valid, &ctx.settings.actor)
            .map_err(|e| Error::Refused(e.to_string()))?;
        // The database creates and enacts units, and takes the run's ledger rows, only
        // for a run whose approvals it records (reference V5): recorded now, before the
        // backup, in a transaction of their own.
        cutter_governance::record_run_approvals(&mut c, &auth)
            .map_err(|e| Error::Refused(e.to_string()))?;
        claim
    };
    let mut context = RunContext::new(
        run_id.clone(),
        Mode::Live,
        &valid,
        target.system_identifier(),
        now_unix(),
    );
    context.pre_snapshot = Some(pre.clone());
    context.backup_proof = Some(cutter_core::BackupProofFacts::pending(prove.mode));
    context.approvals = auth.approvals().to_vec();
    context.signers = auth
        .approvals()
        .iter()
        .filter_map(|a| Some((a.signer.clone(), verifier.user_id(&a.signer)?)))
        .collect();
    let mut rec = RunRecord {
        machine: RunMachine::new(run_id.clone(), Mode::Live, final_phase, kill_switch),
        context,
        last_error: None,
        restore_proof: None,
        pid: std::process::id(),
        updated_at: now_rfc3339(),
        // What the report shows is recorded in the ledger as it happens.
        ledger: Some(crate::runs::RunLedger::new(
            exec_cfg.clone(),
            &ctx.settings.actor,
        )),
    };
    rec.save(dir)?;
    write_json(&dir.rollback_dir(&run_id)?.join("pre.json"), &pre)?;
    copy.keep_as(&dir.run_dir(&run_id)?.join("plan.json"))?;
    timings.push(PhaseRecord {
        phase: Phase::Gate,
        started_ms: gate_started,
        ended_ms: now_ms(),
        outcome: PhaseOutcome::Committed,
    });
    record_reading_phases(dir, &mut rec, timings)?;
    tracing::info!("run {run_id}: claim {} held", claim.claim().claim_key);
    let mut p = Pipeline {
        dir,
        rec,
        target,
        exec_cfg,
        verify_cfg,
        recipient,
        signer,
        auth,
        plan: valid,
        actor: ctx.settings.actor.clone(),
        out: ctx.out,
        backups_dir: dir.backups(),
        pg_bindir: ctx.settings.pg_bindir.clone(),
        backup_policy: cutter_backup::ChainPolicy {
            full_every: ctx.settings.backup_full_every,
            full: false,
        },
        rehearsal: false,
        prove: Some(prove),
        cut: None,
    };
    let outcome = p.execute();
    p.prove_after_run()?;
    outcome?;
    finish(ctx, dir, &p.rec)
}

/// Writes the report files — with the ledger's chain verified now and the backup's
/// restore proof, if one is recorded — and returns the finished run with its summary.
pub fn finish(ctx: &Ctx, dir: &StateDir, rec: &RunRecord) -> Result<Finished> {
    let spinner = ctx.out.spinner("report (verifying the ledger)");
    let extras = crate::report::report_extras(ctx, dir, rec);
    drop(spinner);
    let md = crate::report::to_markdown(rec, &extras);
    let js = crate::report::to_json(rec, &extras);
    let rd = dir.run_dir(&rec.machine.run_id)?;
    crate::statedir::write_file(
        &rd.join("report.md"),
        md.as_bytes(),
        crate::statedir::Replace::Yes,
    )?;
    write_json(&rd.join("report.json"), &js)?;
    crate::statedir::write_file(
        &rd.join("report.html"),
        crate::html::to_html(rec, &extras).as_bytes(),
        crate::statedir::Replace::Yes,
    )?;
    let c = &rec.context;
    let human = format!(
        "run {} {}: {} units created, verify {}/{} matched, {} enacted\nbackup: {}{}{}\nledger: {}\nreport: {}",
        rec.machine.run_id,
        rec.machine.state,
        c.units_created.unwrap_or(0),
        c.verify.map_or(0, |v| v.matched),
        c.verify.map_or(0, |v| v.checked),
        c.units_enacted.unwrap_or(0),
        c.backup.as_ref().map_or("none".to_string(), |b| format!(
            "{} (sha256 {})",
            b.artifact, b.sha256
        )),
        extras
            .restore_proof_status()
            .map_or(String::new(), |p| format!("; restore proof {p}"))
            + &extras
                .restore_proof_file
                .as_ref()
                .map_or(String::new(), |n| format!("\nnote: {n}")),
        c.backup_proof
            .as_ref()
            .map_or(String::new(), |p| format!("\nbackup proof: {}", p.summary())),
        extras.ledger_status(),
        rd.join("report.md").display()
    );
    Ok(Finished {
        record: rec.clone(),
        report: js,
        report_md: rd.join("report.md"),
        summary: human,
    })
}
