//! The backup and its artifact: `kill -9` mid-stream, pg_dump failing, a full disk, a
//! damaged artifact, the wrong key or passphrase, a recipient key that is missing or not
//! the pinned one.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Instant;

use super::audit::{alive, descendants};
use super::env::{random_hex, write_private};
use super::runs::partial_size;
use super::world::{Cx, Done, Opts, World, PATIENCE};

const SURFACE_DATA: [&str; 3] = [
    "public.information_unit",
    "public.unit_version",
    "public.iu_lifecycle_log",
];

/// Rows of the ledger added since `pre` that belong to another run than `run`.
fn foreign_ledger_rows(w: &World, pre: &super::audit::Pre, run: &str) -> Result<i64, String> {
    let mut c = w.db.admin()?;
    let mark = |t: &str| -> i64 {
        pre.mark
            .max_ids
            .iter()
            .find(|(k, _)| k.to_string() == t)
            .map_or(0, |(_, v)| *v)
    };
    let mut n = 0;
    for (table, has_run) in [
        ("cutter_governance.review_decision", true),
        ("cutter_governance.cut_change_set", true),
        ("cutter_governance.verify_result", true),
        ("cutter_governance.dot_pair_signature", true),
        ("cutter_governance.manifest_envelope", true),
        ("cutter_governance.cut_change_set_affected_row", false),
    ] {
        let sql = if has_run {
            format!("SELECT count(*) FROM {table} WHERE id > $1 AND run_id <> $2")
        } else {
            format!("SELECT count(*) FROM {table} WHERE id > $1 AND $2::text IS NOT NULL")
        };
        let k: i64 = c
            .query_one(&sql, &[&mark(table), &run])
            .map_err(|e| e.to_string())?
            .get(0);
        n += k;
    }
    Ok(n)
}

/// Case 2.
pub fn kill_during_dump(cx: &mut Cx) -> Result<(), String> {
    let w = cx.world(Opts::new("faults-kill-dump").big())?;
    let pre = w.pre()?;
    let a = w.disarm("r2")?;
    let mut r = w.run_live("r2", &a).spawn();
    let backups = w.state.join("backups");
    let pid = r.pid;
    let mut dump_pid = None;
    r.wait_until(
        "pg_dump streaming (over 2 MB of ciphertext written)",
        || {
            dump_pid = descendants(pid)
                .into_iter()
                .find(|(_, c)| c == "pg_dump")
                .map(|(p, _)| p);
            dump_pid.is_some() && partial_size(&backups, ".r2.dump.pgp.partial-") > (2 << 20)
        },
    )?;
    let streamed = partial_size(&backups, ".r2.dump.pgp.partial-");
    r.kill9();
    let d = r.wait();
    cx.check(
        d.code.is_none(),
        format!("cutter was not killed: {}", d.status),
    );
    // pg_dump dies with its reader.
    if let Some(p) = dump_pid {
        let start = Instant::now();
        while alive(p) {
            if start.elapsed() > PATIENCE {
                cx.check(false, format!("pg_dump {p} outlived cutter"));
                break;
            }
            std::thread::sleep(std::time::Duration::from_millis(5));
        }
    }
    let left = w.backups();
    let final_names = left
        .iter()
        .filter(|f| *f == "r2.dump.pgp" || *f == "r2.manifest.json")
        .count();
    cx.check(
        final_names == 0,
        format!("an artifact under its final name: {left:?}"),
    );
    // The partial file holds ciphertext only (counted in the plaintext column if not).
    let hits = cx.audit.scan_now(&backups);
    let now = w.snapshot()?;
    let unchanged = SURFACE_DATA.iter().all(|t| {
        now.tables
            .iter()
            .find(|(k, _)| k.to_string() == *t)
            .map(|x| x.1)
            == pre
                .full
                .tables
                .iter()
                .find(|(k, _)| k.to_string() == *t)
                .map(|x| x.1)
    });
    let foreign = foreign_ledger_rows(&w, &pre, "r2")?;
    cx.check(
        unchanged && foreign == 0,
        format!("the database changed: units/versions/log unchanged {unchanged}, {foreign} other ledger rows"),
    );
    let rec = w.cutter().arg("recover").run();
    let removed = rec
        .stdout
        .contains("partial files of dead processes removed")
        && rec.stdout.contains(".r2.dump.pgp.partial-");
    let nothing = rec.stdout.contains(
        "the process died during pre_write_backup; nothing of pre_write_backup committed",
    );
    cx.check(
        rec.code == Some(4) && removed && nothing,
        format!("recover: exit {:?}: {}", rec.code, rec.all()),
    );
    cx.check(
        w.backups().is_empty(),
        format!("left after recover: {:?}", w.backups()),
    );
    let c = w.cutter().args(["compensate", "--run-id", "r2"]).run();
    cx.check(c.code == Some(0), format!("compensate: {}", c.all()));
    cx.obs(format!(
        "killed after {} MB streamed: {final_names} file(s) under the artifact's final names, partial holds {} plaintext hits; units unchanged: {unchanged}, {foreign} other ledger rows; recover exit {:?}, removed the partial: {removed}, nothing committed: {nothing}; compensate exit {:?}",
        streamed >> 20,
        hits.len(),
        rec.code,
        c.code
    ));
    cx.settle(&w, &pre)?;
    Ok(())
}

/// Case 3.
pub fn pg_dump_fails(cx: &mut Cx) -> Result<(), String> {
    let w = cx.world(Opts::new("faults-dump-fails"))?;
    let pre = w.pre()?;
    // A table pg_dump cannot read: row-level security on it (pg_dump refuses to dump a
    // table whose rows a policy would hide), which no privilege check sees.
    w.db.admin()?
        .batch_execute("ALTER TABLE public.iu_lifecycle_log ENABLE ROW LEVEL SECURITY")
        .map_err(|e| e.to_string())?;
    let a = w.disarm("r3")?;
    let d = w.run_live("r3", &a).run();
    let dump_ran = d.ran("pg_dump");
    let stderr_in = d.stderr.contains("pg_dump: error:")
        && d.stderr.contains("row-level security")
        && d.stderr.contains("iu_lifecycle_log");
    cx.check(
        d.code == Some(4) && d.stderr.contains("failed in pre_write_backup") && stderr_in,
        format!("run: exit {:?}: {}", d.code, d.all()),
    );
    cx.check(dump_ran, "pg_dump was not seen running");
    let left = w.backups();
    cx.check(left.is_empty(), format!("left in backups/: {left:?}"));
    let (held, engaged) = (w.hold_exists(), w.kill_switch_engaged());
    cx.check(held && engaged, "no HOLD or kill-switch not engaged");
    w.db.admin()?
        .batch_execute("ALTER TABLE public.iu_lifecycle_log DISABLE ROW LEVEL SECURITY")
        .map_err(|e| e.to_string())?;
    let c = w.cutter().args(["compensate", "--run-id", "r3"]).run();
    cx.check(c.code == Some(0), format!("compensate: {}", c.all()));

    // A table the read-only role cannot SELECT: refused before pg_dump, naming it.
    w.db.admin()?
        .batch_execute("REVOKE SELECT ON public.unit_version FROM cutter_verify")
        .map_err(|e| e.to_string())?;
    let b = w.cutter().args(["backup", "create", "--name", "b3"]).run();
    w.db.admin()?
        .batch_execute("GRANT SELECT ON public.unit_version TO cutter_verify")
        .map_err(|e| e.to_string())?;
    let named = b
        .stderr
        .contains("cannot SELECT \"public\".\"unit_version\"");
    cx.check(
        b.code == Some(1) && named && !b.ran("pg_dump") && w.backups().is_empty(),
        format!("unreadable table: exit {:?}: {}", b.code, b.all()),
    );
    cx.obs(format!(
        "RLS-hidden table: pg_dump ran: {dump_ran}, run exit {:?}, HOLD {held}, kill-switch engaged {engaged}, {} file(s) left, pg_dump's stderr in the error: {stderr_in}; unSELECTable table: exit {:?}, pg_dump ran: {}, named: {named}",
        d.code,
        left.len(),
        b.code,
        b.ran("pg_dump")
    ));
    cx.settle(&w, &pre)?;
    Ok(())
}

/// A tmpfs mounted for the duration of a case.
struct Mount(PathBuf);

impl Mount {
    fn tmpfs(at: &Path, options: &str) -> Result<Mount, String> {
        let out = Command::new("mount")
            .args(["-t", "tmpfs", "-o", options, "tmpfs"])
            .arg(at)
            .output()
            .map_err(|e| format!("cannot run mount: {e}"))?;
        if !out.status.success() {
            return Err(format!(
                "this case mounts a small tmpfs to fill and must run as root (as CI does): mount failed: {}",
                String::from_utf8_lossy(&out.stderr).trim()
            ));
        }
        Ok(Mount(at.to_path_buf()))
    }
}

impl Drop for Mount {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg(&self.0).status();
    }
}

/// Case 4.
pub fn disk_full(cx: &mut Cx) -> Result<(), String> {
    let w = cx.world(Opts::new("faults-disk-full").big())?;
    let pre = w.pre()?;
    let backups = w.state.join("backups");
    let mount = Mount::tmpfs(&backups, "size=4m,mode=0700")?;
    let a = w.disarm("r4")?;
    let d = w.run_live("r4", &a).run();
    let clear = d.stderr.contains("the file system is full");
    cx.check(
        d.code == Some(4) && d.stderr.contains("failed in pre_write_backup") && clear,
        format!("run: exit {:?}: {}", d.code, d.all()),
    );
    let left = w.backups();
    cx.check(left.is_empty(), format!("left on the full disk: {left:?}"));
    let plaintext = cx.audit.scan_now(&backups);
    let (held, engaged) = (w.hold_exists(), w.kill_switch_engaged());
    cx.check(held && engaged, "no HOLD or kill-switch not engaged");
    let c = w.cutter().args(["compensate", "--run-id", "r4"]).run();
    cx.check(c.code == Some(0), format!("compensate: {}", c.all()));
    drop(mount);
    cx.obs(format!(
        "4 MB tmpfs filled: run exit {:?}, HOLD {held}, kill-switch engaged {engaged}, error says the file system is full: {clear}; {} file(s) left, {} with plaintext",
        d.code,
        left.len(),
        plaintext.len()
    ));
    cx.settle(&w, &pre)?;
    Ok(())
}

/// Takes a backup `name` with `cutter backup create`.
fn backup(w: &World, name: &str) -> Result<PathBuf, String> {
    let b = w.cutter().args(["backup", "create", "--name", name]).run();
    if b.code != Some(0) {
        return Err(format!("backup create: {}", b.all()));
    }
    Ok(w.state.join("backups").join(format!("{name}.dump.pgp")))
}

/// Copies an artifact, its manifest and the manifest's signature into `dir`; returns the
/// copy.
fn copy_artifact(art: &Path, dir: &Path) -> Result<PathBuf, String> {
    std::fs::create_dir_all(dir).map_err(|e| e.to_string())?;
    let name = art.file_name().ok_or("artifact name")?;
    let stem = name
        .to_string_lossy()
        .trim_end_matches(".dump.pgp")
        .to_string();
    let manifest = art.with_file_name(format!("{stem}.manifest.json"));
    std::fs::copy(art, dir.join(name)).map_err(|e| e.to_string())?;
    std::fs::copy(&manifest, dir.join(format!("{stem}.manifest.json")))
        .map_err(|e| e.to_string())?;
    std::fs::copy(
        art.with_file_name(format!("{stem}.manifest.json.sig")),
        dir.join(format!("{stem}.manifest.json.sig")),
    )
    .map_err(|e| e.to_string())?;
    Ok(dir.join(name))
}

/// The throwaway-cluster and restore programs `d` started.
fn restore_children(d: &Done) -> Vec<&String> {
    d.children
        .iter()
        .filter(|c| ["pg_restore", "postgres", "initdb"].contains(&c.as_str()))
        .collect()
}

/// Case 11.
pub fn damaged_artifact(cx: &mut Cx) -> Result<(), String> {
    let w = cx.world(Opts::new("faults-damaged"))?;
    let pre = w.pre()?;
    let art = backup(&w, "b11")?;
    let mut notes = Vec::new();
    for damage in ["truncated", "flipped bit"] {
        let copy = copy_artifact(&art, &w.dir.join(damage.replace(' ', "-")))?;
        let mut bytes = std::fs::read(&copy).map_err(|e| e.to_string())?;
        if damage == "truncated" {
            bytes.truncate(bytes.len() - 100);
        } else {
            let mid = bytes.len() / 2;
            bytes[mid] ^= 0x10;
        }
        std::fs::write(&copy, &bytes).map_err(|e| e.to_string())?;
        let v = w.cutter().args(["backup", "verify"]).arg(&copy).run();
        let p = w
            .cutter()
            .args(["backup", "restore-proof"])
            .arg(&copy)
            .run();
        for (what, d) in [("verify", &v), ("restore-proof", &p)] {
            let refused = d.code == Some(1)
                && d.stderr.contains("does not match its manifest: sha256")
                && d.stderr.contains("Nothing was decrypted");
            let started = restore_children(d);
            cx.check(
                refused && started.is_empty(),
                format!(
                    "{damage} artifact, {what}: exit {:?}, children {started:?}: {}",
                    d.code,
                    d.all()
                ),
            );
        }
        let said = |d: &Done| {
            d.stderr.contains("does not match its manifest: sha256")
                && d.stderr.contains("Nothing was decrypted")
        };
        notes.push(format!(
            "{damage}: verify exit {:?}, restore-proof exit {:?}, both say sha256 mismatch and nothing decrypted: {}, cluster or restore started: {:?}",
            v.code,
            p.code,
            said(&v) && said(&p),
            [restore_children(&v), restore_children(&p)].concat()
        ));
    }
    cx.obs(notes.join("; "));
    cx.settle(&w, &pre)?;
    Ok(())
}

/// Case 12.
pub fn wrong_key_or_passphrase(cx: &mut Cx) -> Result<(), String> {
    let w = cx.world(Opts::new("faults-wrong-key"))?;
    let pre = w.pre()?;
    let art = backup(&w, "b12")?;
    let record = w.state.join("backups/b12.restore-proof.json");
    let keys = &cx.env.keys;
    let wrong_key = w
        .cutter()
        .env("CUTTER_BACKUP_SECRET_KEY", &keys.other_sec)
        .args(["backup", "restore-proof"])
        .arg(&art)
        .run();
    let wrong_pass_text = format!("not-the-passphrase-{}", random_hex(8));
    cx.audit
        .secret("the wrong passphrase typed in", &wrong_pass_text);
    let wrong_file = w.dir.join("secrets").join("wrong.passphrase");
    write_private(&wrong_file, wrong_pass_text.as_bytes())?;
    cx.audit.exclude(&wrong_file);
    let wrong_pass = w
        .cutter()
        .env("CUTTER_BACKUP_PASSPHRASE_FILE", &wrong_file)
        .args(["backup", "restore-proof"])
        .arg(&art)
        .run();
    let key_clear = wrong_key.stderr.contains("but the secret key given is")
        && wrong_key.stderr.contains(&keys.other_fpr);
    let pass_clear = wrong_pass
        .stderr
        .contains("wrong passphrase for secret key");
    for (what, d, clear) in [
        ("wrong key", &wrong_key, key_clear),
        ("wrong passphrase", &wrong_pass, pass_clear),
    ] {
        let started = restore_children(d);
        cx.check(
            d.code == Some(1) && clear && started.is_empty(),
            format!(
                "{what}: exit {:?}, children {started:?}: {}",
                d.code,
                d.all()
            ),
        );
    }
    let recorded_pass = std::fs::read_to_string(&record)
        .map(|s| s.contains("\"passed\": true"))
        .unwrap_or(false);
    cx.check(!recorded_pass, "a passing restore-proof record was written");
    cx.obs(format!(
        "wrong key: exit {:?}, names the key: {key_clear}; wrong passphrase: exit {:?}, says so: {pass_clear}; cluster or restore started: {:?}; passing record written: {recorded_pass}",
        wrong_key.code,
        wrong_pass.code,
        [restore_children(&wrong_key), restore_children(&wrong_pass)].concat()
    ));
    cx.settle(&w, &pre)?;
    Ok(())
}

/// Case 13.
pub fn recipient_refused(cx: &mut Cx) -> Result<(), String> {
    let w = cx.world(Opts::new("faults-recipient"))?;
    let pre = w.pre()?;
    let a = w.disarm("r13")?;
    let keys = &cx.env.keys;
    let missing = w.dir.join("no-such-backup-key.asc");
    let mut seen = Vec::new();
    // 1. The key file is missing; 2. it is another key than the pinned one.
    for (what, key, needle) in [
        (
            "missing key",
            missing.clone(),
            "no-such-backup-key.asc".to_string(),
        ),
        (
            "other key",
            keys.other_pub.clone(),
            format!(
                "recipient key {} does not match the pinned fingerprint {}",
                keys.other_fpr, keys.backup_fpr
            ),
        ),
    ] {
        for (cmd, d) in [
            (
                "run",
                w.run_live("r13", &a).env("CUTTER_BACKUP_KEY", &key).run(),
            ),
            (
                "backup create",
                w.cutter()
                    .env("CUTTER_BACKUP_KEY", &key)
                    .args(["backup", "create", "--name", "b13"])
                    .run(),
            ),
        ] {
            cx.check(
                d.code == Some(3) && d.stderr.contains(&needle) && !d.ran("pg_dump"),
                format!(
                    "{what}, {cmd}: exit {:?}, children {:?}: {}",
                    d.code,
                    d.children,
                    d.all()
                ),
            );
            seen.push((d.code, d.ran("pg_dump")));
        }
    }
    // 3. No pin at all.
    let mut cfg = w.config.clone();
    cfg.fingerprint = None;
    w.write_config(&cfg)?;
    let d = w.run_live("r13", &a).run();
    cx.check(
        d.code == Some(3) && d.stderr.contains("BACKUP_GPG_FPR") && !d.ran("pg_dump"),
        format!("no pin: exit {:?}: {}", d.code, d.all()),
    );
    w.write_config(&w.config)?;
    let left = (w.state.join("runs/r13").exists(), w.backups());
    cx.check(
        !left.0 && left.1.is_empty(),
        "a refused run left a run or a backup behind",
    );
    let now = w.snapshot()?;
    let unchanged = now == pre.full;
    cx.check(unchanged, "the database changed");
    cx.obs(format!(
        "missing key, other key (run, backup create): (exit, pg_dump ran) {seen:?}; no pin: exit {:?}, pg_dump ran: {}; run directory left: {}, backups left: {:?}; database unchanged: {unchanged}",
        d.code,
        d.ran("pg_dump"),
        left.0,
        left.1
    ));
    cx.settle(&w, &pre)?;
    Ok(())
}
