//! `cutter backup create|selftest|verify|restore-proof` and `cutter doctor`.

use std::fmt::Write as _;
use std::path::Path;

use cutter_core::{Fingerprint, RunId};
use serde_json::json;

use super::dryrun::passphrase_source;
use super::run::backup_recipient;
use super::Ctx;
use crate::error::{exit, CliError, Result};
use crate::runs::now_rfc3339;
use crate::statedir::StateDir;

fn open(ctx: &Ctx) -> Result<StateDir> {
    StateDir::open(ctx.settings.require_state_dir()?)
}

/// The pinned manifest signing fingerprint (`[backup].signing_fingerprint`).
pub fn signing_pin(ctx: &Ctx) -> Result<Fingerprint> {
    cutter_backup::signing_pin(ctx.settings.backup_signing_fingerprint.as_deref())
        .map_err(|e| CliError::Refused(e.to_string()))
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
        CliError::Refused(format!(
            "no backup signing key: set [backup].signing_key (or {}) to the secret key file of \
             the key [backup].signing_fingerprint pins ({pin}); a backup is never written \
             without a signed manifest",
            cutter_backup::SIGNING_KEY_ENV
        ))
    })?;
    cutter_backup::ManifestSigner::load(&key, &pin, &signing_passphrase())
        .map_err(|e| CliError::Refused(e.to_string()))
}

fn read_only_cfg(ctx: &Ctx) -> Result<cutter_pg::ConnConfig> {
    Ok(super::target_config(ctx)?.with_user(&ctx.settings.verify_user, None))
}

/// `cutter backup create [--name N]`.
pub fn create(ctx: &Ctx, name: Option<&str>) -> Result<u8> {
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
    );
    let pb = ctx.out.progress(0, "backup");
    let a = cutter_backup::pre_write_backup(&cfg, &mut |b| pb.set_position(b))
        .map_err(|e| CliError::Failed(e.to_string()))?;
    pb.finish_and_clear();
    let m = &a.manifest;
    let human = format!(
        "backup {} ({} bytes, sha256 {}) encrypted to {}\nmanifest: {} (signed by {}: {})\nper-table rows: {}",
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

/// `cutter backup restore-proof ARTIFACT`.
pub fn restore_proof(ctx: &Ctx, artifact: &Path) -> Result<u8> {
    let secret = ctx.settings.backup_secret_key.clone().ok_or_else(|| {
        CliError::Usage("the restore proof needs the backup secret key: set [backup].secret_key (or CUTTER_BACKUP_SECRET_KEY)".into())
    })?;
    let name = artifact
        .file_name()
        .and_then(|n| n.to_str())
        .unwrap_or("artifact")
        .trim_end_matches(".dump.pgp")
        .to_string();
    let record = artifact.with_file_name(format!("{name}.restore-proof.json"));
    let size = std::fs::metadata(artifact).map_or(0, |m| m.len());
    let pb = ctx.out.bytes_progress(size, "restore proof");
    let bar = pb.clone();
    let cfg = cutter_backup::RestoreConfig::new(artifact, secret, signing_pin(ctx)?)
        .passphrase(passphrase_source(ctx))
        .record_to(&record)
        .on_progress(move |n| bar.set_position(n));
    let result = cutter_backup::restore_proof(&cfg);
    pb.finish_and_clear();
    let proof = result.map_err(|e| CliError::Failed(e.to_string()))?;
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
    let _ = writeln!(human, "record: {}", record.display());
    ctx.out
        .emit(&human, json!({"proof": proof, "record": record}));
    Ok(if proof.passed {
        exit::OK
    } else {
        exit::FAILURE
    })
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
                Ok(r) if r.is_ok() => checks.push((
                    "preflight".into(),
                    true,
                    format!(
                        "schema v{} as {}, PostgreSQL {}",
                        r.schema_version.unwrap_or(0),
                        r.connected_as,
                        r.server_version
                    ),
                )),
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
    match super::run::approvers(ctx) {
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
