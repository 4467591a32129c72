//! Backup chains (issue #18): a chain broken mid-way, and a crash between an increment
//! and its manifest.

use std::path::{Path, PathBuf};

use super::runs::json;
use super::world::{plan_json, Cx, Done, Opts, World};

/// The unit tables of a snapshot (rows and content digest), which a refused run must
/// leave as they were.
fn unit_tables(s: &cutter_core::Snapshot) -> Vec<String> {
    s.tables
        .iter()
        .filter(|(t, _)| {
            ["information_unit", "unit_version", "iu_lifecycle_log"].contains(&t.name())
        })
        .map(|(t, st)| format!("{t}={st:?}"))
        .collect()
}

/// `cutter backup create --name name`; returns its manifest as JSON.
fn create(w: &World, name: &str) -> Result<serde_json::Value, String> {
    let b = w.cutter().args(["backup", "create", "--name", name]).run();
    if b.code != Some(0) {
        return Err(format!("backup create {name}: {}", b.all()));
    }
    manifest(w, name)
}

/// The manifest of backup `name` as JSON.
fn manifest(w: &World, name: &str) -> Result<serde_json::Value, String> {
    let p = backups(w).join(format!("{name}.manifest.json"));
    let b = std::fs::read(&p).map_err(|e| format!("{}: {e}", p.display()))?;
    serde_json::from_slice(&b).map_err(|e| format!("{}: {e}", p.display()))
}

fn backups(w: &World) -> PathBuf {
    w.state.join("backups")
}

/// `(kind, predecessor)` of a manifest's chain section.
fn link_of(m: &serde_json::Value) -> (String, String) {
    (
        m["chain"]["kind"].as_str().unwrap_or("?").to_string(),
        m["chain"]["predecessor"]["run_id"]
            .as_str()
            .unwrap_or("-")
            .to_string(),
    )
}

/// Whether the proof record `file` in backups/ says it passed.
fn record_passed(w: &World, file: &str) -> bool {
    std::fs::read(backups(w).join(file))
        .ok()
        .and_then(|b| serde_json::from_slice::<serde_json::Value>(&b).ok())
        .is_some_and(|v| v["passed"] == true)
}

/// Flips one bit in the middle of `path`, keeping its size.
fn flip_bit(path: &Path) -> Result<(), String> {
    let mut bytes = std::fs::read(path).map_err(|e| e.to_string())?;
    let mid = bytes.len() / 2;
    bytes[mid] ^= 0x01;
    std::fs::write(path, &bytes).map_err(|e| e.to_string())
}

/// A live run of `plan_doc`'s plan under run id `run`.
fn live(w: &World, run: &str, plan_doc: &str) -> Result<Done, String> {
    let plan = w.plan_file(&format!("{run}.json"), plan_json(plan_doc, 6).as_bytes());
    let a = w.disarm_plan(run, &plan)?;
    Ok(w.run_plan(run, &plan, &a).run())
}

/// Case 33.
pub fn broken_mid_way(cx: &mut Cx) -> Result<(), String> {
    let w = cx.world(Opts::new("faults-chain-broken"))?;
    let pre = w.pre()?;
    // A full backup and three increments.
    let mut shape = Vec::new();
    for name in ["c0", "c1", "c2", "c3"] {
        shape.push(link_of(&create(&w, name)?));
    }
    let whole = shape
        == [
            ("full".into(), "-".into()),
            ("incremental".into(), "c0".into()),
            ("incremental".into(), "c1".into()),
            ("incremental".into(), "c2".into()),
        ];
    cx.check(
        whole,
        format!("the chain c0..c3 is not full + 3 increments: {shape:?}"),
    );

    // 1. A middle link's manifest altered (its signature no longer matches).
    let m1 = backups(&w).join("c1.manifest.json");
    let text = std::fs::read_to_string(&m1).map_err(|e| e.to_string())?;
    let edited = text.replacen(
        "\"reason\": \"incremental\"",
        "\"reason\": \"incremental \"",
        1,
    );
    if edited == text {
        return Err(format!("c1's manifest has no reason to edit: {text}"));
    }
    std::fs::write(&m1, edited).map_err(|e| e.to_string())?;
    let d1 = live(&w, "r1", "faults-chain-broken-1")?;
    let r1 = manifest(&w, "r1")?;
    let reason = r1["chain"]["reason"].as_str().unwrap_or("").to_string();
    let full_named = link_of(&r1).0 == "full"
        && reason.contains("broken at link \"c1\"")
        && reason.contains("does not verify");
    cx.check(
        d1.code == Some(0) && full_named && d1.stderr.contains("broken at link \"c1\""),
        format!(
            "run after c1's manifest was altered: exit {:?}, r1 {:?} ({reason}): {}",
            d1.code,
            link_of(&r1),
            d1.all()
        ),
    );
    let r1_proven = record_passed(&w, "r1.restore-proof.json");
    cx.check(r1_proven, "r1's full backup was not proven before it wrote");
    let p1 = w
        .cutter()
        .args(["backup", "restore-proof", "--chain"])
        .arg(backups(&w).join("c3.dump.pgp"))
        .run();
    let p1_named = p1.stderr.contains("link \"c1\"") && p1.stderr.contains("does not verify");
    cx.check(
        p1.code == Some(1) && p1_named && !p1.ran("pg_restore") && !p1.ran("initdb"),
        format!("restore-proof --chain c3: exit {:?}: {}", p1.code, p1.all()),
    );

    // 2. A middle link's artifact altered in place, at its size: the next backup cannot
    // see it (it reads no artifact), so the increment is taken and its before-write
    // proof (the chain proof: its predecessor is unproven) refuses, naming the link.
    let c4 = create(&w, "c4")?;
    let c5 = create(&w, "c5")?;
    cx.check(
        link_of(&c4) == ("incremental".into(), "r1".into())
            && link_of(&c5) == ("incremental".into(), "c4".into()),
        format!(
            "c4, c5 do not continue r1's chain: {:?} {:?}",
            link_of(&c4),
            link_of(&c5)
        ),
    );
    flip_bit(&backups(&w).join("c4.dump.pgp"))?;
    let before = unit_tables(&w.snapshot()?);
    let d2 = live(&w, "r2", "faults-chain-broken-2")?;
    let after = unit_tables(&w.snapshot()?);
    let refused = d2.code == Some(4)
        && d2.stderr.contains("failed in pre_write_backup")
        && d2.stderr.contains("could not be proven")
        && d2.stderr.contains("link \"c4\"");
    cx.check(
        refused,
        format!(
            "run after c4's artifact was altered: exit {:?}: {}",
            d2.code,
            d2.all()
        ),
    );
    let units = w.change_set_units("r2")?;
    let unchanged = before == after && units.is_empty();
    cx.check(
        unchanged,
        format!(
            "the refused run wrote: units of cs-r2 {units:?}; unit tables equal {}",
            before == after
        ),
    );
    let held = w.hold_exists() && w.kill_switch_engaged();
    cx.check(held, "no HOLD or kill-switch not engaged after the refusal");
    let p2 = w
        .cutter()
        .args(["--json", "backup", "restore-proof", "--chain"])
        .arg(backups(&w).join("c5.dump.pgp"))
        .run();
    let p2_named = p2.stderr.contains("link \"c4\"") && p2.stderr.contains("sha256");
    cx.check(
        p2.code == Some(1) && p2_named,
        format!("restore-proof --chain c5: exit {:?}: {}", p2.code, p2.all()),
    );
    // A backup taken on top of the held run's: compensation must not discard r2's.
    let c6 = create(&w, "c6")?;
    cx.check(
        link_of(&c6) == ("incremental".into(), "r2".into()),
        format!("c6 is not an increment of r2: {:?}", link_of(&c6)),
    );
    let kept = w.cutter().args(["compensate", "--run-id", "r2"]).run();
    let kept_named = kept.code == Some(3)
        && kept
            .stderr
            .contains("refusing to discard backup r2: c6 needs it")
        && w.backups().iter().any(|f| f == "r2.dump.pgp");
    cx.check(
        kept_named,
        format!(
            "compensate r2 under c6: exit {:?}: {}",
            kept.code,
            kept.all()
        ),
    );
    for f in w.backups().iter().filter(|f| f.starts_with("c6.")) {
        std::fs::remove_file(backups(&w).join(f)).map_err(|e| e.to_string())?;
    }
    let c = w.cutter().args(["compensate", "--run-id", "r2"]).run();
    cx.check(
        c.code == Some(0) && !w.backups().iter().any(|f| f.starts_with("r2.")),
        format!("compensate r2: {}", c.all()),
    );
    cx.obs(format!(
        "c1's manifest altered: run exit {:?}, backup {} naming c1: {full_named}, proven {r1_proven}; restore-proof --chain c3 exit {:?} naming c1: {p1_named}. c4's artifact bit-flipped: run exit {:?}, refused naming c4: {refused}, units/log unchanged: {unchanged}, HOLD {held}; restore-proof --chain c5 exit {:?} naming c4: {p2_named}; compensate with c6 on top of r2 exit {:?}, refused naming c6: {kept_named}; without it exit {:?}",
        d1.code,
        link_of(&r1).0,
        p1.code,
        d2.code,
        p2.code,
        kept.code,
        c.code
    ));
    cx.settle(&w, &pre)?;
    Ok(())
}

/// Case 34.
pub fn crash_before_manifest(cx: &mut Cx) -> Result<(), String> {
    let w = cx.world(Opts::new("faults-chain-crash"))?;
    let pre = w.pre()?;
    create(&w, "c0")?;
    let plan = w.plan_file("r1.json", plan_json("faults-chain-crash-1", 6).as_bytes());
    let a = w.disarm_plan("r1", &plan)?;
    let d = w
        .run_plan("r1", &plan, &a)
        .env("CUTTER_FAILPOINT", "pre_write_backup:after_artifact:abort")
        .run();
    let files = w.backups();
    let orphan = files.iter().any(|f| f == "r1.dump.pgp")
        && !files.iter().any(|f| f.starts_with("r1.manifest.json"));
    cx.check(
        d.code.is_none()
            && d.stderr
                .contains("failpoint pre_write_backup:after_artifact")
            && orphan,
        format!("crash: exit {:?}, files {files:?}: {}", d.code, d.all()),
    );
    // backup list shows the file, without a manifest and in no chain.
    let list = json(&w.cutter().args(["--json", "backup", "list"]).run());
    let entry = list["backups"]
        .as_array()
        .and_then(|v| v.iter().find(|e| e["artifact"] == "r1.dump.pgp").cloned())
        .unwrap_or_default();
    let listed = entry["chain"].is_null() && entry["manifest_error"].is_string();
    cx.check(
        listed,
        format!(
            "backup list does not show the orphan r1 as without a manifest and in no chain: {list}"
        ),
    );
    let verify = w
        .cutter()
        .args(["backup", "verify"])
        .arg(backups(&w).join("r1.dump.pgp"))
        .run();
    cx.check(
        verify.code == Some(1) && verify.stderr.contains("r1.manifest.json"),
        format!(
            "backup verify of the orphan: exit {:?}: {}",
            verify.code,
            verify.all()
        ),
    );
    // The next backup, the orphan still there: an increment of c0, never of r1.
    let c1 = link_of(&create(&w, "c1")?);
    cx.check(
        c1 == ("incremental".into(), "c0".into()),
        format!("the backup after the crash is {c1:?}, not an increment of c0"),
    );
    let rec = w.cutter().arg("recover").run();
    cx.check(
        rec.code == Some(4)
            && rec.all().contains("the process died")
            && rec
                .all()
                .contains("prescribed: discard the backup artifact"),
        format!("recover: exit {:?}: {}", rec.code, rec.all()),
    );
    let c = w.cutter().args(["compensate", "--run-id", "r1"]).run();
    let discarded = !w.backups().iter().any(|f| f.starts_with("r1."));
    cx.check(
        c.code == Some(0) && discarded,
        format!("compensate r1: files {:?}: {}", w.backups(), c.all()),
    );
    let mut rel = w.cutter().args(["hold", "release"]);
    for x in w.approvals_with(
        "r1",
        &plan,
        [0, 1],
        cutter_core::Purpose::HoldRelease,
        None,
        &w.db.database(),
        3600,
    ) {
        rel = rel.args(["--approval", &x]);
    }
    let rel = rel.run();
    cx.check(rel.code == Some(0), format!("hold release: {}", rel.all()));
    // The next live run: an increment of c1, proven (the chain proof: c1 is unproven).
    let d2 = live(&w, "r2", "faults-chain-crash-2")?;
    let r2 = link_of(&manifest(&w, "r2")?);
    let proven = record_passed(&w, "r2.chain-proof.json");
    cx.check(
        d2.code == Some(0) && r2 == ("incremental".into(), "c1".into()) && proven,
        format!(
            "the run after the crash: exit {:?}, backup {r2:?}, chain proof passed {proven}: {}",
            d2.code,
            d2.all()
        ),
    );
    cx.obs(format!(
        "killed after r1's increment, before its manifest: exit {:?}, orphan artifact left: {orphan}, listed without a manifest, in no chain: {listed}, verify exit {:?}; next backup {c1:?}; recover exit {:?}; compensate exit {:?} discarded it: {discarded}; next run exit {:?}, backup {r2:?}, chain proof passed: {proven}",
        d.code,
        verify.code,
        rec.code,
        c.code,
        d2.code
    ));
    cx.settle(&w, &pre)?;
    Ok(())
}
