//! Runs and their crashes: the happy path, `kill -9` inside and right after cut_leg_a,
//! sessions terminated in every mutating phase, a server restart, two runs at once, and
//! locks left by dead processes.

use std::io::{Read, Write};
use std::net::{Shutdown, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};

use cutter_pg::testing::Coordinates;

use super::env::random_hex;
use super::world::{Cx, Done, Opts, World};

/// How long a `sleep=` failpoint pauses: long enough that the harness (which acts as soon
/// as the failpoint's line appears) surely acts inside it; a case that was too slow fails
/// loudly (the phase would have committed), it never passes by accident.
pub const PAUSE_SECS: u64 = 10;

pub fn json(d: &Done) -> serde_json::Value {
    serde_json::from_str(&d.stdout).unwrap_or(serde_json::Value::Null)
}

/// `cutter ledger verify`: (intact, rows).
pub fn ledger_intact(w: &World) -> Result<(bool, u64), String> {
    let d = w.cutter().args(["--json", "ledger", "verify"]).run();
    let v = json(&d);
    let intact = v["intact"]
        .as_bool()
        .ok_or(format!("ledger verify printed no verdict: {}", d.all()))?;
    let rows = v["ledger"]["tables"]
        .as_array()
        .map(|t| t.iter().filter_map(|x| x["rows"].as_u64()).sum())
        .unwrap_or(0);
    Ok((intact && d.code == Some(0), rows))
}

/// Units not withdrawn, by status.
pub fn live_statuses(s: &cutter_core::Snapshot) -> Vec<(String, u64)> {
    s.unit_statuses
        .iter()
        .filter(|(k, _)| k.as_str() != "withdrawn")
        .map(|(k, v)| (k.clone(), *v))
        .collect()
}

/// Case 1.
pub fn happy_path(cx: &mut Cx) -> Result<(), String> {
    let w = cx.world(Opts::new("faults-happy"))?;
    let pre = w.pre()?;
    let a = w.disarm("r1")?;
    let d = w.run_live("r1", &a).run();
    cx.check(
        d.code == Some(0)
            && d.stdout
                .contains("run r1 succeeded: 12 units created, verify 12/12 matched, 12 enacted"),
        format!("live run: exit {:?}: {}", d.code, d.all()),
    );
    cx.check(
        w.kill_switch_engaged(),
        "the kill-switch is not re-armed after the run",
    );
    cx.check(!w.hold_exists(), "a HOLD after a successful run");
    let proven = w.set_aside_run_proof("r1")?;
    cx.check(proven, "the run did not prove its backup before it wrote");
    let art = w.state.join("backups/r1.dump.pgp");
    let p = w
        .cutter()
        .args(["--json", "backup", "restore-proof"])
        .arg(&art)
        .run();
    let v = json(&p);
    let tables = v["proof"]["tables"].as_array().cloned().unwrap_or_default();
    let equal = tables.iter().filter(|t| t["ok"] == true).count();
    let surface = cutter_core::mutation_surface().len();
    let proof_ok = p.code == Some(0) && v["proof"]["passed"] == true && equal == surface;
    cx.check(
        proof_ok,
        format!(
            "restore proof: exit {:?}, {equal}/{surface} tables equal: {}",
            p.code,
            p.all()
        ),
    );
    let (intact, rows) = ledger_intact(&w)?;
    cx.check(intact, "ledger verify: a hash chain is broken");
    let r = w.cutter().args(["report", "--run-id", "r1"]).run();
    cx.check(
        r.stdout.contains("units enacted: 12"),
        format!("report: {}", r.all()),
    );
    let post = w.snapshot()?;
    let enacted = |s: &cutter_core::Snapshot| s.unit_statuses.get("enacted").copied().unwrap_or(0);
    let newly_enacted = enacted(&post).saturating_sub(enacted(&pre.full));
    cx.check(
        post.unit_statuses.get("enacted").copied()
            == pre.full.unit_statuses.get("enacted").map(|n| n + 12),
        "12 more enacted units expected",
    );
    cx.obs(format!(
        "run exit {:?}, {newly_enacted} more units enacted; restore proof exit {:?}, passed: {proof_ok}, {equal}/{surface} tables equal; ledger intact: {intact} ({rows} rows)",
        d.code,
        p.code
    ));
    cx.settle(&w, &pre)?;
    Ok(())
}

/// Starts a live run of `run` that pauses at `failpoint` (`<phase>:<when>`), waits until it
/// is there with its transaction open (or, after a commit, idle), and returns it.
fn paused_run(
    w: &World,
    run: &str,
    approvals: &[String],
    failpoint: &str,
    pause: u64,
) -> Result<super::world::Running, String> {
    let mut r = w
        .run_live(run, approvals)
        .env("CUTTER_FAILPOINT", format!("{failpoint}:sleep={pause}"))
        .spawn();
    r.wait_stderr(&format!("failpoint {failpoint}:sleep"))?;
    Ok(r)
}

/// The backend of run `run` inside a transaction that has written (it has an xid).
fn open_writing_tx(
    w: &World,
    run: &str,
    r: &mut super::world::Running,
) -> Result<Vec<i32>, String> {
    w.wait_backends(
        &format!("cutter/{run}'s open transaction with writes"),
        &format!(
            "application_name = 'cutter/{run}' AND state = 'idle in transaction' AND backend_xid IS NOT NULL"
        ),
        || r.running(),
    )
}

/// Case 5.
pub fn kill_inside_leg_a(cx: &mut Cx) -> Result<(), String> {
    let w = cx.world(Opts::new("faults-kill-in"))?;
    let pre = w.pre()?;
    let a = w.disarm("r5")?;
    let mut r = paused_run(&w, "r5", &a, "cut_leg_a:before_commit", 600)?;
    let pids = open_writing_tx(&w, "r5", &mut r)?;
    r.kill9();
    let d = r.wait();
    cx.check(
        d.code.is_none() && d.status.contains("9"),
        format!("cutter was not killed by SIGKILL: {}", d.status),
    );
    w.wait_gone(&pids)?;
    let units = w.change_set_units("r5")?;
    let total_before = pre.full.rows("public.information_unit");
    let total_after = w.snapshot()?.rows("public.information_unit");
    cx.check(
        units.is_empty() && total_after == total_before,
        format!("new units after the kill: {units:?} ({total_before} → {total_after})"),
    );
    let rec = w.cutter().arg("recover").run();
    let said = rec
        .stdout
        .contains("the process died during cut_leg_a; nothing of cut_leg_a committed");
    cx.check(
        rec.code == Some(4) && said && rec.stdout.contains("discard the backup artifact"),
        format!("recover: exit {:?}: {}", rec.code, rec.all()),
    );
    let c = w.cutter().args(["compensate", "--run-id", "r5"]).run();
    cx.check(c.code == Some(0), format!("compensate: {}", c.all()));
    let left = w.backups();
    cx.check(left.is_empty(), format!("backups left: {left:?}"));
    cx.obs(format!(
        "killed with the transaction open: {} new units; recover exit {:?}, says nothing of cut_leg_a committed: {said}; compensate exit {:?}, {} backup file(s) left",
        total_after.saturating_sub(total_before),
        rec.code,
        c.code,
        left.len()
    ));
    cx.settle(&w, &pre)?;
    Ok(())
}

/// Case 6.
pub fn kill_after_leg_a_commit(cx: &mut Cx) -> Result<(), String> {
    let w = cx.world(Opts::new("faults-kill-after"))?;
    let pre = w.pre()?;
    let a = w.disarm("r6")?;
    let mut r = paused_run(&w, "r6", &a, "cut_leg_a:after_commit", 600)?;
    r.kill9();
    let d = r.wait();
    cx.check(d.code.is_none(), format!("not killed: {}", d.status));
    let journal =
        std::fs::read_to_string(w.state.join("runs/r6/journal.jsonl")).unwrap_or_default();
    let last = journal.lines().last().unwrap_or("").to_string();
    cx.check(
        last.contains("\"phase_started\"") && last.contains("cut_leg_a"),
        format!("the journal's last line is not cut_leg_a's start: {last}"),
    );
    let units = w.change_set_units("r6")?;
    cx.check(
        units == vec![("draft".to_string(), 12)],
        format!("committed units of cs-r6: {units:?}"),
    );
    let rec = w.cutter().arg("recover").run();
    let found = rec
        .stdout
        .contains("cut_leg_a committed in the database after the journal's last line");
    let prescribed_a = rec.stdout.contains("prescribed: compensation A:");
    cx.check(
        rec.code == Some(4) && found && prescribed_a,
        format!("recover: exit {:?}: {}", rec.code, rec.all()),
    );
    let c = w.cutter().args(["compensate", "--run-id", "r6"]).run();
    cx.check(c.code == Some(0), format!("compensate: {}", c.all()));
    let after = w.snapshot()?;
    let restored = live_statuses(&after) == live_statuses(&pre.full);
    cx.check(
        restored,
        "live units differ from before the run after compensation A",
    );
    cx.obs(format!(
        "journal's last line is cut_leg_a's start: {}; committed units {units:?}; recover exit {:?}, found the change set: {found}, prescribed A: {prescribed_a}; compensate exit {:?}, live units as before: {restored}",
        last.contains("\"phase_started\"") && last.contains("cut_leg_a"),
        rec.code,
        c.code
    ));
    cx.settle(&w, &pre)?;
    Ok(())
}

/// What must be true in the database once `phase` of `run` rolled back.
fn rolled_back(w: &World, phase: &str, run: &str) -> Result<(bool, String), String> {
    let cs = format!("cs-{run}");
    Ok(match phase {
        "pre_write_backup" => (
            w.backups().is_empty(),
            format!("backups/: {:?}", w.backups()),
        ),
        "cut_leg_a" => {
            let u = w.change_set_units(run)?;
            (u.is_empty(), format!("units of {cs}: {u:?}"))
        }
        "leg_b_record" => {
            let n = w.count(
                "SELECT (SELECT count(*) FROM cutter_governance.cut_change_set WHERE change_set_id = $1) \
                      + (SELECT count(*) FROM cutter_governance.cut_change_set_affected_row WHERE change_set_id = $1) \
                      + (SELECT count(*) FROM cutter_governance.manifest_envelope WHERE change_set_id = $1)",
                &cs,
            )?;
            (n == 0, format!("{n} leg-B ledger rows of {cs}"))
        }
        "write_verify" => {
            let n = w.count(
                "SELECT count(*) FROM cutter_governance.verify_result WHERE change_set_id = $1",
                &cs,
            )?;
            (n == 0, format!("{n} verify_result rows of {cs}"))
        }
        _ => {
            let u = w.change_set_units(run)?;
            let logged = w.count(
                "SELECT count(*) FROM public.iu_lifecycle_log WHERE change_set_id = $1",
                &cs,
            )?;
            (
                u == vec![("draft".to_string(), 12)] && logged == 0,
                format!("units of {cs}: {u:?}, {logged} lifecycle log rows"),
            )
        }
    })
}

/// The prescribed compensation after a failure in `phase`, then the checks of case 7.
fn after_failure(
    w: &World,
    phase: &str,
    run: &str,
    d: &Done,
    pre: &super::audit::Pre,
) -> Result<Vec<String>, String> {
    let mut problems = Vec::new();
    let mut check = |ok: bool, what: String| {
        if !ok {
            problems.push(format!("{phase}: {what}"));
        }
    };
    check(
        d.code == Some(4)
            && d.stderr.contains(&format!("failed in {phase}"))
            && d.stderr
                .contains("the phase rolled back; kill-switch re-armed; HOLD written"),
        format!("run: exit {:?}: {}", d.code, d.all()),
    );
    check(w.hold_exists(), "no HOLD".into());
    check(w.kill_switch_engaged(), "kill-switch not re-armed".into());
    let (ok, detail) = rolled_back(w, phase, run)?;
    check(ok, format!("not rolled back: {detail}"));
    let c = w.cutter().args(["compensate", "--run-id", run]).run();
    check(c.code == Some(0), format!("compensate: {}", c.all()));
    let after = w.snapshot()?;
    check(
        live_statuses(&after) == live_statuses(&pre.full),
        "live units differ from before the run after compensation".into(),
    );
    Ok(problems)
}

/// One run whose session is terminated in `phase`.
fn terminate_in(
    w: &World,
    phase: &str,
    run: &str,
    pre: &super::audit::Pre,
) -> Result<Vec<String>, String> {
    let a = w.disarm(run)?;
    let d = if phase == "pre_write_backup" {
        // The backup streams (big database): terminate the backup's sessions (the
        // snapshot holder and pg_dump's) while pg_dump is mid-stream.
        let mut r = w.run_live(run, &a).spawn();
        let backups = w.state.join("backups");
        let prefix = format!(".{run}.dump.pgp.partial-");
        let pid = r.pid;
        r.wait_until(
            "pg_dump streaming (over 1 MB of ciphertext written)",
            || {
                partial_size(&backups, &prefix) > (1 << 20)
                    && super::audit::descendants(pid)
                        .iter()
                        .any(|(_, c)| c == "pg_dump")
            },
        )?;
        let pids = w.wait_backends("the backup's sessions", "usename = 'cutter_verify'", || {
            r.running()
        })?;
        w.terminate(&pids)?;
        r.wait()
    } else {
        let mut r = paused_run(w, run, &a, &format!("{phase}:before_commit"), PAUSE_SECS)?;
        let pids = open_writing_tx(w, run, &mut r)?;
        w.terminate(&pids)?;
        r.wait()
    };
    after_failure(w, phase, run, &d, pre)
}

/// Bytes of the temp file whose name starts with `prefix` in `dir`.
pub fn partial_size(dir: &std::path::Path, prefix: &str) -> u64 {
    std::fs::read_dir(dir)
        .map(|rd| {
            rd.flatten()
                .filter(|e| e.file_name().to_string_lossy().starts_with(prefix))
                .filter_map(|e| e.metadata().ok())
                .map(|m| m.len())
                .sum()
        })
        .unwrap_or(0)
}

const MUTATING: [&str; 5] = [
    "pre_write_backup",
    "cut_leg_a",
    "leg_b_record",
    "write_verify",
    "lifecycle_enact",
];

/// Case 7.
pub fn terminate_each_phase(cx: &mut Cx) -> Result<(), String> {
    let mut worlds = Vec::new();
    for (i, phase) in MUTATING.iter().enumerate() {
        let opts = Opts::new(&format!("faults-term-{i}"));
        let opts = if *phase == "pre_write_backup" {
            opts.big()
        } else {
            opts
        };
        let w = cx.world(opts)?;
        let pre = w.pre()?;
        worlds.push((*phase, format!("r7-{i}"), w, pre));
    }
    let results: Vec<(String, Result<Vec<String>, String>)> = std::thread::scope(|s| {
        let hs: Vec<_> = worlds
            .iter()
            .map(|(phase, run, w, pre)| {
                (
                    phase.to_string(),
                    s.spawn(move || terminate_in(w, phase, run, pre)),
                )
            })
            .collect();
        hs.into_iter()
            .map(|(p, h)| {
                (
                    p,
                    h.join()
                        .unwrap_or_else(|_| Err("the sub-case panicked".into())),
                )
            })
            .collect()
    });
    let (mut good, mut bad) = (Vec::new(), Vec::new());
    for (phase, r) in results {
        match r {
            Ok(p) if p.is_empty() => good.push(phase),
            Ok(p) => {
                bad.push(phase);
                cx.problems.extend(p);
            }
            Err(e) => {
                cx.problems.push(format!("{phase}: {e}"));
                bad.push(phase);
            }
        }
    }
    cx.obs(format!(
        "session terminated in each of {} phases: rolled back with exit 4, HOLD, kill-switch engaged, then compensated in {good:?}; not so in {bad:?}",
        MUTATING.len()
    ));
    for (_, _, w, pre) in &worlds {
        cx.settle(w, pre)?;
    }
    Ok(())
}

/// Case 8.
pub fn server_restart(cx: &mut Cx) -> Result<(), String> {
    let mut cluster = cutter_pg::Cluster::start().map_err(|e| format!("own cluster: {e}"))?;
    let exec_password = random_hex(16);
    let verify_password = random_hex(16);
    let template = "faults_restart_template";
    {
        let mut c = cluster.connect("postgres").map_err(|e| e.to_string())?;
        c.batch_execute(&format!("CREATE DATABASE {template} TEMPLATE template0"))
            .map_err(|e| e.to_string())?;
        let mut t = cluster.connect(template).map_err(|e| e.to_string())?;
        cutter_pg::schema::install_reference(&mut t).map_err(|e| e.to_string())?;
        cutter_pg::schema::install_baseline(&mut t).map_err(|e| e.to_string())?;
        drop(t);
        for (role, pw) in [
            ("cutter_exec", &exec_password),
            ("cutter_verify", &verify_password),
        ] {
            cutter_pg::schema::set_login_password(
                &mut c,
                role,
                &cutter_pg::Password::new(pw.clone()),
            )
            .map_err(|e| e.to_string())?;
        }
    }
    let coords = Coordinates {
        host: cluster.host().into(),
        port: cluster.port(),
        superuser: cluster.superuser().into(),
        superuser_password: cluster.superuser_password().expose_secret().into(),
        exec_password: exec_password.clone(),
        verify_password: verify_password.clone(),
        template: template.into(),
        system_identifier: cluster
            .system_identifier()
            .map_err(|e| e.to_string())?
            .get(),
    };
    cx.audit
        .secret("case 8 cutter_exec password", &exec_password);
    cx.audit
        .secret("case 8 cutter_verify password", &verify_password);
    cx.audit.secret(
        "case 8 superuser password",
        cluster.superuser_password().expose_secret(),
    );
    let result = (|| {
        let mut opts = Opts::new("faults-restart");
        opts.coords = Some(coords);
        let w = cx.world(opts)?;
        let pre = w.pre()?;
        let a = w.disarm("r8")?;
        let mut r = paused_run(&w, "r8", &a, "cut_leg_a:before_commit", PAUSE_SECS)?;
        open_writing_tx(&w, "r8", &mut r)?;
        let old_pid = cluster.pid();
        cluster.restart().map_err(|e| format!("restart: {e}"))?;
        cx.check(cluster.pid() != old_pid, "the server did not restart");
        let d = r.wait();
        let problems = after_failure(&w, "cut_leg_a", "r8", &d, &pre)?;
        let ok = problems.is_empty();
        cx.problems.extend(problems);
        let sg3 = d.stderr.contains("SG_3 escalation recorded in the ledger");
        cx.obs(format!(
            "server restarted inside cut_leg_a: run exit {:?}; rolled back, HOLD, kill-switch engaged, compensated: {ok}; SG_3 {} after the restart",
            d.code,
            if sg3 {
                "recorded in the ledger"
            } else {
                "in the state file only"
            }
        ));
        cx.settle(&w, &pre)?;
        Ok::<(), String>(())
    })();
    cx.audit.text(
        "postgres.log of case 8's cluster".into(),
        cluster.log_tail(64 << 20).as_bytes(),
    );
    cluster.stop().map_err(|e| e.to_string())?;
    result
}

/// Case 9.
pub fn two_runs_at_once(cx: &mut Cx) -> Result<(), String> {
    let w = cx.world(Opts::new("faults-two"))?;
    let pre = w.pre()?;
    let second = w.extra_state("state2")?;
    let plan_c = w.plan_file(
        "plan-c.json",
        super::world::plan_json("faults-two-c", 12).as_bytes(),
    );
    let a = w.disarm("r9a")?;
    let c_approvals = {
        let ap = w.approvals_for("r9c", &plan_c, [0, 1], 3600);
        let mut d = w
            .cutter()
            .env("CUTTER_CONFIG", &second)
            .args(["kill-switch", "disarm", "--run-id", "r9c", "--plan"])
            .arg(&plan_c);
        for x in &ap {
            d = d.args(["--approval", x]);
        }
        let d = d.run();
        if d.code != Some(0) {
            return Err(format!("disarm in the second state directory: {}", d.all()));
        }
        ap
    };
    let b_approvals = w.approvals("r9b");
    let mut first = paused_run(&w, "r9a", &a, "cut_leg_a:before_commit", PAUSE_SECS)?;
    let holder_pid = first.pid;
    // Both contenders at once while the first run holds the state lock and the target.
    let same = w.run_live("r9b", &b_approvals).spawn();
    let mut other = w
        .cutter()
        .env("CUTTER_CONFIG", &second)
        .args(["run", "--mode", "live", "--run-id", "r9c", "--plan"])
        .arg(&plan_c);
    for x in &c_approvals {
        other = other.args(["--approval", x]);
    }
    let other = other.spawn();
    let same = same.wait();
    let other = other.wait();
    let still_running = first.running();
    let d = first.wait();
    cx.check(
        still_running,
        "the first run ended before both contenders were refused",
    );
    cx.check(d.code == Some(0), format!("the first run: {}", d.all()));
    let first_code = d.code;
    let named_same = same
        .stderr
        .contains(&format!("is locked by pid {holder_pid} (run r9a)"));
    cx.check(
        same.code == Some(3) && named_same,
        format!("same state directory: exit {:?}: {}", same.code, same.all()),
    );
    let named_other = other.stderr.contains("target is locked by run r9a (pid ")
        && other.stderr.contains("application_name \"cutter/r9a\"");
    cx.check(
        other.code == Some(3) && named_other,
        format!(
            "other state directory: exit {:?}: {}",
            other.code,
            other.all()
        ),
    );
    let left_behind = w.state.join("runs/r9b").exists()
        || second.parent().is_some_and(|p| p.join("runs/r9c").exists());
    cx.check(!left_behind, "a refused run left a run behind");
    cx.obs(format!(
        "same dir: exit {:?}, {}; other dir: exit {:?}, {}; refused run left behind: {left_behind}; the first run: still running then {still_running}, exit {first_code:?}",
        same.code,
        if named_same {
            format!("names pid {holder_pid} (run r9a)")
        } else {
            "holder NOT named".into()
        },
        other.code,
        if named_other {
            "names run r9a's session"
        } else {
            "holder NOT named"
        }
    ));
    cx.settle(&w, &pre)?;
    Ok(())
}

/// A TCP proxy that, like a network that lost the client, never tells the server when a
/// client goes away: the server's session (and its advisory lock) outlives the client
/// until [`Proxy::cut`].
pub struct Proxy {
    pub port: u16,
    server: Arc<Mutex<Vec<TcpStream>>>,
    stop: Arc<AtomicBool>,
}

fn pump(mut from: TcpStream, mut to: TcpStream) {
    let mut buf = [0u8; 16384];
    loop {
        match from.read(&mut buf) {
            Ok(0) | Err(_) => return,
            Ok(n) => {
                if to.write_all(&buf[..n]).is_err() {
                    return;
                }
            }
        }
    }
}

impl Proxy {
    pub fn start(target_port: u16) -> Result<Proxy, String> {
        let listener = TcpListener::bind(("127.0.0.1", 0)).map_err(|e| e.to_string())?;
        let port = listener.local_addr().map_err(|e| e.to_string())?.port();
        let server = Arc::new(Mutex::new(Vec::new()));
        let stop = Arc::new(AtomicBool::new(false));
        let (s2, stop2) = (Arc::clone(&server), Arc::clone(&stop));
        std::thread::spawn(move || {
            for client in listener.incoming() {
                if stop2.load(Ordering::SeqCst) {
                    return;
                }
                let Ok(client) = client else { continue };
                let Ok(upstream) = TcpStream::connect(("127.0.0.1", target_port)) else {
                    continue;
                };
                let (Ok(c2), Ok(u2), Ok(u3)) = (
                    client.try_clone(),
                    upstream.try_clone(),
                    upstream.try_clone(),
                ) else {
                    continue;
                };
                if let Ok(mut g) = s2.lock() {
                    g.push(u3);
                }
                std::thread::spawn(move || pump(client, upstream));
                std::thread::spawn(move || pump(u2, c2));
            }
        });
        Ok(Proxy { port, server, stop })
    }

    /// Closes every server-side connection: the server now sees its clients gone.
    pub fn cut(&self) {
        if let Ok(mut g) = self.server.lock() {
            for s in g.drain(..) {
                let _ = s.shutdown(Shutdown::Both);
            }
        }
    }
}

impl Drop for Proxy {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        let _ = TcpStream::connect(("127.0.0.1", self.port));
        self.cut();
    }
}

/// Case 10.
pub fn stale_locks(cx: &mut Cx) -> Result<(), String> {
    let proxy = Proxy::start(cx.env.coords.port)?;
    let mut opts = Opts::new("faults-stale");
    opts.connect_port = Some(proxy.port);
    let w = cx.world(opts)?;
    let pre = w.pre()?;
    let a = w.disarm("r10")?;
    let mut r = paused_run(&w, "r10", &a, "cut_leg_a:before_commit", 600)?;
    let orphan = open_writing_tx(&w, "r10", &mut r)?;
    let dead_pid = r.pid;
    r.kill9();
    r.wait();
    // The client is dead; its session (holding the run lock) is still there.
    let still: i64 = w.count(
        "SELECT count(*) FROM pg_catalog.pg_stat_activity WHERE application_name = $1",
        "cutter/r10",
    )?;
    cx.check(
        still == 1,
        "the dead run's session is gone already (proxy failed)",
    );

    let st = w.cutter().arg("status").run();
    let status_says = st
        .stdout
        .contains("its process is gone: run `cutter recover`");
    cx.check(status_says, format!("status: {}", st.all()));
    let rec = w.cutter().arg("recover").run();
    let stale_reported = rec
        .stdout
        .contains(&format!("stale state lock: pid {dead_pid} (run r10)"))
        && rec.stdout.contains("is gone");
    cx.check(
        rec.code == Some(4) && stale_reported,
        format!("recover: exit {:?}: {}", rec.code, rec.all()),
    );
    let c = w.cutter().args(["compensate", "--run-id", "r10"]).run();
    cx.check(c.code == Some(0), format!("compensate: {}", c.all()));
    let mut rel = w.cutter().args(["hold", "release"]);
    for x in w.release_approvals("r10") {
        rel = rel.args(["--approval", &x]);
    }
    let rel = rel.run();
    cx.check(rel.code == Some(0), format!("hold release: {}", rel.all()));

    // A new run: the dead run's session still holds the target lock.
    let plan2 = w.plan_file(
        "plan-2.json",
        super::world::plan_json("faults-stale-2", 12).as_bytes(),
    );
    let b = w.disarm_plan("r10b", &plan2)?;
    let refused = w.run_plan("r10b", &plan2, &b).run();
    let named = refused.stderr.contains("target is locked by run r10 (pid ")
        && refused.stderr.contains("application_name \"cutter/r10\"");
    cx.check(
        refused.code == Some(3) && named,
        format!("second run: exit {:?}: {}", refused.code, refused.all()),
    );
    let kept: i64 = w.count(
        "SELECT count(*) FROM pg_catalog.pg_stat_activity WHERE application_name = $1",
        "cutter/r10",
    )?;
    cx.check(
        kept == 1,
        "cutter terminated the dead run's session (stole its lock)",
    );
    // Once the session really ends, the lock is free.
    proxy.cut();
    w.wait_gone(&orphan)?;
    let again = w.run_plan("r10b", &plan2, &b).run();
    cx.check(
        again.code == Some(0),
        format!("after the session ended: {}", again.all()),
    );
    cx.obs(format!(
        "stale state lock of dead pid {dead_pid}: reported by status {status_says}, by recover {stale_reported} (exit {:?}); dead session's run lock: new run exit {:?}, names run r10: {named}, sessions of r10 kept: {kept}; after the session ended: run exit {:?}",
        rec.code,
        refused.code,
        again.code
    ));
    cx.settle(&w, &pre)?;
    Ok(())
}
