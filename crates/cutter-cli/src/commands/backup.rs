//! `cutter backup create|selftest|verify|restore-proof|list|prune` and `cutter doctor`.

use std::fmt::Write as _;
use std::path::Path;

use cutter_core::RunId;
use serde_json::json;

use super::run::backup_recipient;
use super::Ctx;
use crate::error::{exit, CliError, Result};
use crate::runs::now_rfc3339;
use crate::statedir::StateDir;
pub use cutter_run::dryrun::passphrase_source;
pub use cutter_run::run::{backup_signer, signing_pin};

fn open(ctx: &Ctx) -> Result<StateDir> {
    StateDir::open(ctx.settings.require_state_dir()?)
}

fn read_only_cfg(ctx: &Ctx) -> Result<cutter_pg::ConnConfig> {
    Ok(super::target_config(ctx)?.with_user(&ctx.settings.verify_user, None))
}

/// `cutter backup create [--name N] [--full]`.
pub fn create(ctx: &Ctx, name: Option<&str>, full: bool) -> Result<u8> {
    let dir = open(ctx)?;
    let name = match name {
        Some(n) => RunId::new(n)?,
        None => RunId::new(format!(
            "b-{}",
            now_rfc3339().replace([':', '-'], "").replace('Z', "z")
        ))?,
    };
    let (_lock, _) = dir.lock(&format!("backup {name}"), &now_rfc3339())?;
    let (recipient, signer) = backup_recipient(ctx)?;
    let cfg = cutter_backup::BackupConfig::new(
        dir.backups(),
        name,
        recipient,
        signer,
        read_only_cfg(ctx)?,
    )
    .pg_bindir(ctx.settings.pg_bindir.clone());
    let pb = ctx.out.progress(0, "backup");
    let policy = cutter_backup::ChainPolicy {
        full_every: ctx.settings.backup_full_every,
        full,
    };
    let a = cutter_backup::chained_backup(&cfg, &policy, &mut |b| pb.set_position(b))
        .map_err(|e| CliError::Failed(e.to_string()))?;
    pb.finish_and_clear();
    let m = &a.manifest;
    let link = m.chain.as_ref().map_or(String::new(), |c| {
        format!(
            "\n{:?} link {} of chain {}: {}",
            c.kind, c.seq, c.chain, c.reason
        )
    });
    let human = format!(
        "backup {} ({} bytes, sha256 {}) encrypted to {}\nmanifest: {} (signed by {}: {})\nper-table rows: {}{link}",
        a.path.display(),
        m.size_bytes,
        m.sha256,
        m.encryption.recipient,
        a.manifest_path.display(),
        m.signer.fingerprint,
        a.signature_path.display(),
        m.tables
            .iter()
            .map(|(t, s)| format!("{}={}", t.name(), s.rows))
            .collect::<Vec<_>>()
            .join(" ")
    );
    ctx.out
        .emit(&human, json!({"artifact": a.path, "manifest": m}));
    Ok(exit::OK)
}

fn selftest_report(ctx: &Ctx, dir: &StateDir) -> cutter_backup::SelftestReport {
    let pin =
        cutter_backup::recipient_pin(ctx.settings.backup_fingerprint.as_deref(), &|_| None).ok();
    cutter_backup::selftest(&cutter_backup::SelftestConfig {
        backups_dir: dir.backups(),
        pin,
        recipient_key: ctx.settings.backup_key.clone(),
        secret_key: ctx.settings.backup_secret_key.clone(),
        passphrase: ctx
            .settings
            .backup_secret_key
            .as_ref()
            .map(|_| passphrase_source(ctx)),
        signing_pin: cutter_backup::signing_pin(ctx.settings.backup_signing_fingerprint.as_deref())
            .ok(),
        signing_key: ctx.settings.backup_signing_key.clone(),
        pg_dump: None,
        pg_bindir: ctx.settings.pg_bindir.clone(),
        pg: read_only_cfg(ctx).ok(),
    })
}

fn print_checks(ctx: &Ctx, title: &str, checks: &[(String, bool, String)]) -> u8 {
    let mut human = format!("{title}\n");
    for (name, ok, detail) in checks {
        let _ = writeln!(
            human,
            "  [{}] {name}: {detail}",
            if *ok { " ok " } else { "FAIL" }
        );
    }
    let failed = checks.iter().filter(|c| !c.1).count();
    let _ = writeln!(human, "{} check(s), {failed} failed", checks.len());
    let list: Vec<_> = checks
        .iter()
        .map(|(n, ok, d)| json!({"check": n, "ok": ok, "detail": d}))
        .collect();
    ctx.out
        .emit(&human, json!({"checks": list, "failed": failed}));
    if failed == 0 {
        exit::OK
    } else {
        exit::FAILURE
    }
}

/// `cutter backup selftest`.
pub fn selftest(ctx: &Ctx) -> Result<u8> {
    let dir = open(ctx)?;
    let r = selftest_report(ctx, &dir);
    let checks: Vec<_> = r
        .checks
        .into_iter()
        .map(|c| (c.name, c.ok, c.detail))
        .collect();
    Ok(print_checks(ctx, "backup selftest", &checks))
}

/// `cutter backup verify ARTIFACT`: the manifest's signature by the pinned signing key,
/// then the artifact's sha256 and size (nothing is decrypted).
pub fn verify(ctx: &Ctx, artifact: &Path) -> Result<u8> {
    let pin = signing_pin(ctx)?;
    let v = cutter_backup::verify_artifact(artifact, &pin)
        .map_err(|e| CliError::Failed(e.to_string()))?;
    let m = &v.manifest;
    ctx.out.emit(
        &format!(
            "{}: manifest signed by the pinned signing key {}; sha256 {} matches it ({} bytes, run {})",
            artifact.display(),
            m.signer.fingerprint,
            m.sha256,
            m.size_bytes,
            m.run_id
        ),
        json!({"artifact": artifact, "manifest": m, "signed_by": m.signer.fingerprint}),
    );
    Ok(exit::OK)
}

/// `cutter backup restore-proof [--chain] ARTIFACT`.
pub fn restore_proof(ctx: &Ctx, artifact: &Path, chain: bool) -> Result<u8> {
    let secret = ctx.settings.backup_secret_key.clone().ok_or_else(|| {
        CliError::Usage("the restore proof needs the backup secret key: set [backup].secret_key (or CUTTER_BACKUP_SECRET_KEY)".into())
    })?;
    let name = artifact
        .file_name()
        .and_then(|n| n.to_str())
        .unwrap_or("artifact")
        .trim_end_matches(".dump.pgp")
        .to_string();
    let increment = cutter_backup::manifest_path_for(artifact)
        .and_then(|p| cutter_backup::Manifest::read(&p))
        .ok()
        .and_then(|m| m.chain)
        .is_some_and(|c| c.kind == cutter_backup::LinkKind::Incremental);
    if chain || increment {
        return chain_or_increment_proof(ctx, artifact, &name, &secret, chain);
    }
    let record = artifact.with_file_name(cutter_backup::proof_record_name(
        &name,
        cutter_core::ProofKind::Full,
    ));
    let size = std::fs::metadata(artifact).map_or(0, |m| m.len());
    let pb = ctx.out.bytes_progress(size, "restore proof");
    let bar = pb.clone();
    let cfg = cutter_backup::RestoreConfig::new(artifact, secret, signing_pin(ctx)?)
        .passphrase(passphrase_source(ctx))
        .pg_bindir(ctx.settings.pg_bindir.clone())
        .record_to(&record, &backup_signer(ctx)?)
        .on_progress(move |n| bar.set_position(n));
    let result = cutter_backup::restore_proof(&cfg);
    pb.finish_and_clear();
    // The run's report takes its restore proof from the ledger, never from the file.
    let ledger = cutter_run::prove::ledger_proof(ctx, &result, &record);
    let proof = result.map_err(|e| CliError::Failed(format!("{e}\n{ledger}")))?;
    let mut human = format!(
        "restore proof of {}: {}\n  manifest signed by {}; restored as {} into a throwaway cluster (system {}) and discarded; source system {}\n",
        artifact.display(),
        if proof.passed { "PASSED" } else { "FAILED" },
        proof.manifest_signed_by,
        proof.restored_as,
        proof.restore_system_identifier.map_or("?".to_string(), |s| s.to_string()),
        proof.source_system_identifier
    );
    for t in &proof.tables {
        let _ = writeln!(human, "  {}", serde_json::to_string(t).unwrap_or_default());
    }
    let _ = writeln!(human, "{ledger}");
    let data = json!({"proof": proof, "ledger": ledger});
    Ok(emit_proof(ctx, human, data, &record, proof.passed))
}

/// Prints a proof (`data`: `proof`, and `ledger` for a full restore proof) with its
/// record's path, and the exit code its verdict gives.
fn emit_proof(
    ctx: &Ctx,
    mut human: String,
    mut data: serde_json::Value,
    record: &Path,
    passed: bool,
) -> u8 {
    let _ = writeln!(human, "record: {}", record.display());
    data["record"] = json!(record);
    ctx.out.emit(&human, data);
    if passed {
        exit::OK
    } else {
        exit::FAILURE
    }
}

/// The chain proof (`--chain`) or the increment proof of `artifact`, recorded beside it.
fn chain_or_increment_proof(
    ctx: &Ctx,
    artifact: &Path,
    name: &str,
    secret: &Path,
    chain: bool,
) -> Result<u8> {
    let kind = if chain {
        cutter_core::ProofKind::Chain
    } else {
        cutter_core::ProofKind::Increment
    };
    let record = artifact.with_file_name(cutter_backup::proof_record_name(name, kind));
    let cfg = cutter_backup::ChainProofConfig::new(artifact, secret, signing_pin(ctx)?)
        .passphrase(passphrase_source(ctx))
        .pg_bindir(ctx.settings.pg_bindir.clone())
        .record_to(&record, &backup_signer(ctx)?);
    let spinner = ctx.out.spinner(&format!("{kind} proof"));
    let result = if chain {
        cutter_backup::chain_proof(&cfg)
    } else {
        cutter_backup::increment_proof(&cfg)
    };
    drop(spinner);
    let proof = result.map_err(|e| CliError::Failed(e.to_string()))?;
    let mut human = format!(
        "{kind} proof of {} (chain {}, links {}): {}\n",
        artifact.display(),
        proof.chain,
        proof
            .links
            .iter()
            .map(ToString::to_string)
            .collect::<Vec<_>>()
            .join(" → "),
        if proof.passed { "PASSED" } else { "FAILED" },
    );
    for t in &proof.tables {
        let _ = writeln!(human, "  {}: {}", t.table, t.actual);
    }
    Ok(emit_proof(
        ctx,
        human,
        json!({"proof": proof}),
        &record,
        proof.passed,
    ))
}

/// `cutter doctor`: preflight, backup selftest, approvers, state — one line per check.
pub fn doctor(ctx: &Ctx) -> Result<u8> {
    let mut checks: Vec<(String, bool, String)> = Vec::new();
    let dir = match ctx.settings.require_state_dir().and_then(StateDir::open) {
        Ok(d) => {
            checks.push((
                "state directory".into(),
                true,
                d.root().display().to_string(),
            ));
            Some(d)
        }
        Err(e) => {
            checks.push(("state directory".into(), false, e.to_string()));
            None
        }
    };
    if let Some(d) = &dir {
        match d.hold() {
            Ok(None) => checks.push(("HOLD".into(), true, "none".into())),
            Ok(Some(h)) => checks.push((
                "HOLD".into(),
                false,
                format!("run {} — {}", h.record.run_id, h.record.reason),
            )),
            Err(e) => checks.push(("HOLD".into(), false, e.to_string())),
        }
        match d.kill_switch() {
            Ok(ks) => checks.push(("kill-switch".into(), true, super::state::describe_ks(&ks))),
            Err(e) => checks.push(("kill-switch".into(), false, e.to_string())),
        }
    }
    match super::connect_target(ctx) {
        Ok(mut t) => {
            checks.push((
                "target reachable".into(),
                true,
                format!("{} (system {})", t.label(), t.system_identifier()),
            ));
            match t.read_only(|tx| cutter_pg::writer_role_problems(tx)) {
                Ok(p) if p.is_empty() => checks.push((
                    "writer role".into(),
                    true,
                    "connected as the writer (not a superuser, not the ledger's owner)".into(),
                )),
                Ok(p) => checks.push(("writer role".into(), false, p.join("; "))),
                Err(e) => checks.push(("writer role".into(), false, e.to_string())),
            }
            match t.preflight() {
                Ok(r) if r.is_ok() => {
                    // A warning passes the check, saying what it means for backups.
                    for w in &r.warnings {
                        checks.push((
                            format!("preflight: {}", w.object),
                            true,
                            format!("warning: {}", w.problem),
                        ));
                    }
                    checks.push((
                        "preflight".into(),
                        true,
                        format!(
                            "schema v{} as {}, PostgreSQL {}",
                            r.schema_version.unwrap_or(0),
                            r.connected_as,
                            r.server_version
                        ),
                    ));
                }
                Ok(r) => {
                    for f in r.findings {
                        checks.push((format!("preflight: {}", f.object), false, f.problem));
                    }
                }
                Err(e) => checks.push(("preflight".into(), false, e.to_string())),
            }
        }
        Err(e) => checks.push(("target reachable".into(), false, e.to_string())),
    }
    match read_only_cfg(ctx).and_then(|c| c.connect().map_err(|e| CliError::Failed(e.to_string())))
    {
        Ok(_) => checks.push((
            "read-only role".into(),
            true,
            format!("{} can log in", ctx.settings.verify_user),
        )),
        Err(e) => checks.push(("read-only role".into(), false, e.to_string())),
    }
    if let Some(d) = &dir {
        for c in selftest_report(ctx, d).checks {
            checks.push((format!("backup: {}", c.name), c.ok, c.detail));
        }
    }
    match super::run::approvers(ctx, cutter_core::Purpose::LiveRun) {
        Ok((set, _)) if set.0.len() >= 2 => checks.push((
            "approvers".into(),
            true,
            format!(
                "{} keys: {}",
                set.0.len(),
                set.0
                    .iter()
                    .map(|f| f.to_string())
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
        )),
        Ok((set, _)) => checks.push((
            "approvers".into(),
            false,
            format!("{} key(s); two distinct approvers are needed", set.0.len()),
        )),
        Err(e) => checks.push(("approvers".into(), false, e.to_string())),
    }
    Ok(print_checks(ctx, "cutter doctor", &checks))
}

/// `cutter backup list`: every artifact in `backups/`, oldest first, with its size on
/// disk, its manifest (or why it cannot be read), its restore proof (and whether it
/// proves this very artifact), and the runs whose backup it is. Reads only state files:
/// `backup verify` recomputes a checksum, `backup restore-proof` proves a restore.
pub fn list(ctx: &Ctx) -> Result<u8> {
    let dir = open(ctx)?;
    let backups = dir.backups();
    let mut runs_of: std::collections::BTreeMap<String, Vec<String>> = Default::default();
    for id in dir.run_ids()? {
        if let Some(b) = crate::runs::RunRecord::load(&dir, &id)
            .ok()
            .flatten()
            .and_then(|r| r.context.backup)
        {
            runs_of.entry(b.artifact).or_default().push(id.to_string());
        }
    }
    let mut names: Vec<String> = std::fs::read_dir(&backups)
        .map_err(|e| CliError::io(&backups, e))?
        .filter_map(|e| e.ok()?.file_name().into_string().ok())
        .filter(|n| n.ends_with(".dump.pgp") && !n.starts_with('.'))
        .collect();
    // Oldest first: by the manifest's time, then (same second) the file's.
    let modified = |n: &String| {
        std::fs::metadata(backups.join(n))
            .and_then(|m| m.modified())
            .ok()
    };
    names.sort_by_cached_key(|n| (modified(n), n.clone()));
    let pin = signing_pin(ctx).ok();
    let mut entries: Vec<serde_json::Value> = names
        .iter()
        .map(|name| {
            let runs = runs_of.remove(name).unwrap_or_default();
            backup_entry(&backups, name, runs, pin.as_ref())
        })
        .collect();
    // Stable: a backup without a readable manifest stays where its file time puts it.
    entries.sort_by_key(|e| e["created_at"].as_i64().unwrap_or(i64::MIN));
    let mut human = String::new();
    for e in &entries {
        let _ = writeln!(
            human,
            "{}  {} bytes  {}  {}runs: {}  restore proof: {}",
            e["artifact"].as_str().unwrap_or(""),
            e["size_bytes"],
            e["created"].as_str().unwrap_or("no manifest"),
            match &e["chain"] {
                serde_json::Value::Null => String::new(),
                c => format!(
                    "chain {} link {} ({}{})  ",
                    c["chain"].as_str().unwrap_or("?"),
                    c["seq"],
                    c["kind"].as_str().unwrap_or("?"),
                    if c["proven"] == true {
                        ", proven"
                    } else if c["proof_error"].is_string() {
                        ", a proof record UNTRUSTED (see --json)"
                    } else {
                        ", not proven"
                    }
                ),
            },
            match e["runs"].as_array() {
                Some(r) if !r.is_empty() => r
                    .iter()
                    .filter_map(|x| x.as_str())
                    .collect::<Vec<_>>()
                    .join(","),
                _ => "none (a manual backup)".into(),
            },
            match &e["restore_proof"] {
                serde_json::Value::Null => "none".to_string(),
                p if p["proves_this_artifact"] == false => "of another artifact".to_string(),
                p if !p["signature_error"].is_null() => "UNTRUSTED (see --json)".to_string(),
                p if p["passed"] == true => "passed".to_string(),
                _ => "FAILED".to_string(),
            }
        );
    }
    if entries.is_empty() {
        let _ = writeln!(human, "no backups in {}", backups.display());
    }
    ctx.out
        .emit(&human, json!({"backups_dir": backups, "backups": entries}));
    Ok(exit::OK)
}

/// One artifact of `backup list`; proof records are trusted only when signed by the key
/// `pin` names (none configured: never).
fn backup_entry(
    backups: &Path,
    name: &str,
    runs: Vec<String>,
    pin: Option<&cutter_core::Fingerprint>,
) -> serde_json::Value {
    let trust = |f: &dyn Fn(&cutter_core::Fingerprint) -> cutter_backup::Result<bool>| match pin {
        None => Err("no [backup].signing_fingerprint: proof records cannot be checked".to_string()),
        Some(pin) => f(pin).map_err(|e| e.to_string()),
    };
    let path = backups.join(name);
    let size = std::fs::metadata(&path).map(|m| m.len()).ok();
    let (manifest, manifest_error) = match cutter_backup::manifest_path_for(&path)
        .and_then(|p| cutter_backup::Manifest::read(&p))
    {
        Ok(m) => (Some(m), None),
        Err(e) => (None, Some(e.to_string())),
    };
    let proven = trust(&|pin| cutter_backup::is_proven(backups, &backup_name(name), pin));
    let stem = name.trim_end_matches(".dump.pgp");
    let proof_path = backups.join(cutter_backup::proof_record_name(
        stem,
        cutter_core::ProofKind::Full,
    ));
    let proof = std::fs::read(&proof_path)
        .ok()
        .and_then(|b| serde_json::from_slice::<serde_json::Value>(&b).ok())
        .map(|p| {
            let proved = p["artifact_sha256"].as_str().unwrap_or("").to_string();
            let this = manifest
                .as_ref()
                .is_some_and(|m| m.sha256.to_string() == proved);
            json!({
                "record": proof_path,
                "passed": p["passed"],
                "proves_this_artifact": this,
                "artifact_sha256": proved,
                "started_at": p["started_at"],
                "signature_error": trust(&|pin| cutter_backup::verify_record(
                    &proof_path,
                    backups,
                    &backup_name(name),
                    pin
                ))
                .err(),
            })
        });
    json!({
        "artifact": name,
        "path": path,
        "size_bytes": size,
        "created_at": manifest.as_ref().map(|m| m.created_at.0),
        "created": manifest.as_ref().map(|m| crate::runs::rfc3339(m.created_at)),
        "sha256": manifest.as_ref().map(|m| m.sha256.to_string()),
        "manifest_size_matches": manifest.as_ref().map(|m| Some(m.size_bytes) == size),
        "recipient": manifest.as_ref().map(|m| m.encryption.recipient.to_string()),
        "manifest_error": manifest_error,
        "restore_proof": proof,
        "chain": manifest.as_ref().and_then(|m| m.chain.as_ref()).map(|c| json!({
            "kind": c.kind,
            "chain": c.chain,
            "seq": c.seq,
            "predecessor": c.predecessor.as_ref().map(|p| &p.run_id),
            "reason": c.reason,
            "proven": proven.as_ref().is_ok_and(|p| *p),
            "proof_error": proven.as_ref().err(),
        })),
        "runs": runs,
    })
}

/// The backup name of an artifact file name.
fn backup_name(artifact: &str) -> RunId {
    RunId::new(artifact.trim_end_matches(".dump.pgp"))
        .unwrap_or_else(|_| RunId::new("unnamed").expect("a valid run id"))
}

/// The artifacts of runs that are held or not yet resolved (every state but succeeded,
/// released and voided): compensation may still need them.
fn protected_artifacts(dir: &StateDir) -> Result<std::collections::BTreeSet<String>> {
    let mut out = std::collections::BTreeSet::new();
    for id in dir.run_ids()? {
        let rec = crate::runs::RunRecord::load(dir, &id)?.ok_or_else(|| {
            CliError::Refused(format!(
                "run {id} has no readable run.json: refusing to prune while it cannot be \
                 known whether its backup is needed (`cutter recover`)"
            ))
        })?;
        let resolved = matches!(
            rec.machine.state,
            cutter_core::RunState::Succeeded
                | cutter_core::RunState::Released
                | cutter_core::RunState::Voided
        );
        if let (false, Some(b)) = (resolved, rec.context.backup) {
            out.insert(b.artifact);
        }
    }
    Ok(out)
}

/// `cutter backup prune --keep-chains N [--dry-run]`.
pub fn prune(ctx: &Ctx, keep_chains: usize, dry_run: bool) -> Result<u8> {
    let dir = open(ctx)?;
    let (_lock, _) = dir.lock("backup prune", &now_rfc3339())?;
    let protected = protected_artifacts(&dir)?;
    let backups = dir.backups();
    let plan = cutter_backup::plan_prune(&backups, &signing_pin(ctx)?, keep_chains, &protected)
        .map_err(|e| CliError::Failed(e.to_string()))?;
    if !dry_run {
        cutter_backup::execute_prune(&backups, &plan)
            .map_err(|e| CliError::Failed(e.to_string()))?;
    }
    let removed: Vec<&cutter_backup::PruneLink> = plan.removed().collect();
    let removed_bytes: u64 = removed.iter().map(|l| l.bytes).sum();
    let mut human = String::new();
    for l in &plan.links {
        let what = match &l.keep {
            None if dry_run => "would remove".to_string(),
            None => "removed".to_string(),
            Some(cutter_backup::KeepReason::KeptChain) => "keep (kept chain)".to_string(),
            Some(cutter_backup::KeepReason::Protected) => {
                "keep (the backup of a held or unresolved run)".to_string()
            }
            Some(cutter_backup::KeepReason::NeededBy(n)) => format!("keep (link {n} needs it)"),
        };
        let _ = writeln!(
            human,
            "{what}: {} (chain {} link {}, {} bytes)",
            l.name, l.chain, l.seq, l.bytes
        );
    }
    let _ = writeln!(
        human,
        "{} {} link(s), {removed_bytes} bytes; kept {} link(s); chains kept whole: {}",
        if dry_run { "would remove" } else { "removed" },
        removed.len(),
        plan.links.len() - removed.len(),
        if plan.kept_chains.is_empty() {
            "none".to_string()
        } else {
            plan.kept_chains
                .iter()
                .map(ToString::to_string)
                .collect::<Vec<_>>()
                .join(", ")
        }
    );
    if dry_run {
        human.push_str("(dry run: nothing was removed)\n");
    }
    ctx.out.emit(
        &human,
        json!({
            "backups_dir": backups,
            "dry_run": dry_run,
            "keep_chains": keep_chains,
            "kept_chains": plan.kept_chains,
            "links": plan.links,
            "removed": removed.len(),
            "removed_bytes": removed_bytes,
        }),
    );
    Ok(exit::OK)
}
