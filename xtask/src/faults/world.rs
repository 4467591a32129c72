//! A world: one throwaway database (reference schema, baseline, a planted marker unit), a
//! state directory made by `cutter init`, a private .pgpass, a cutter.toml pointing at the
//! suite's keys — and the real `cutter` binary driven in it, every invocation's output and
//! `/proc` samples recorded in the case's audit.

use std::ffi::OsString;
use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use cutter_core::{ApprovalGate, ApprovalStatement, CutPlan, DocumentId, RunId, SourceVersionId};
use cutter_pg::testing::Coordinates;

use super::audit::{self, Audit, Pre};
use super::env::{random_hex, write_private, Db, Env};

/// How long any single wait may take before the case fails (a safety net against a hang,
/// never a guess at how long something needs).
pub const PATIENCE: Duration = Duration::from_secs(240);

/// A case in progress: its checks, observations and audit.
pub struct Cx {
    pub env: &'static Env,
    pub num: u32,
    pub audit: Arc<Audit>,
    pub dir: PathBuf,
    pub problems: Vec<String>,
    pub observed: Vec<String>,
    pub rows_lost: u64,
    worlds: u32,
}

impl Cx {
    pub fn new(env: &'static Env, num: u32) -> Result<Cx, String> {
        let dir = env.root.join(format!("case-{num:02}"));
        std::fs::create_dir_all(&dir).map_err(|e| format!("{}: {e}", dir.display()))?;
        Ok(Cx {
            env,
            num,
            audit: Arc::new(Audit::new(env.secrets.clone(), env.root.clone())),
            dir,
            problems: Vec::new(),
            observed: Vec::new(),
            rows_lost: 0,
            worlds: 0,
        })
    }

    /// Records a failed expectation unless `ok`; returns `ok`.
    pub fn check(&mut self, ok: bool, what: impl Into<String>) -> bool {
        if !ok {
            self.problems.push(what.into());
        }
        ok
    }

    /// One short observation for the table.
    pub fn obs(&mut self, s: impl Into<String>) {
        self.observed.push(s.into());
    }

    /// A world on the shared cluster (or on `opts.coords`).
    pub fn world(&mut self, opts: Opts) -> Result<World, String> {
        self.worlds += 1;
        World::new(self, opts, self.worlds)
    }

    /// Rows lost in `w` since `pre`: added to the case's count, with notes as problems.
    pub fn settle(&mut self, w: &World, pre: &Pre) -> Result<u64, String> {
        let mut admin = w.db.admin()?;
        let (lost, notes) = audit::rows_lost(&mut admin, pre)?;
        self.rows_lost += lost;
        self.problems.extend(notes);
        Ok(lost)
    }
}

/// Options of a world.
#[derive(Clone)]
pub struct Opts {
    /// Clone the big template (about 65 MB of units) instead of the baseline.
    pub big: bool,
    /// Units in the world's plan.
    pub units: u64,
    /// The plan's document id.
    pub doc: String,
    /// Another cluster than the shared one.
    pub coords: Option<Coordinates>,
    /// The port cutter connects to, if not the server's (a proxy in front of it).
    pub connect_port: Option<u16>,
}

impl Opts {
    pub fn new(doc: &str) -> Opts {
        Opts {
            big: false,
            units: 12,
            doc: doc.into(),
            coords: None,
            connect_port: None,
        }
    }
    pub fn big(mut self) -> Opts {
        self.big = true;
        self
    }
}

/// The settings a world's cutter.toml holds.
#[derive(Clone)]
pub struct Config {
    pub url: String,
    pub fingerprint: Option<String>,
    pub recipient_key: PathBuf,
    pub signing_fingerprint: String,
    pub signing_key: PathBuf,
    pub secret_key: PathBuf,
    pub passphrase_file: PathBuf,
    pub approver_keys: Vec<PathBuf>,
}

impl Config {
    fn text(&self) -> String {
        let mut s = format!(
            "state_dir = \".\"\n[database]\nurl = \"{}\"\nverify_user = \"cutter_verify\"\n[backup]\n",
            self.url
        );
        if let Some(f) = &self.fingerprint {
            s.push_str(&format!("recipient_fingerprint = \"{f}\"\n"));
        }
        s.push_str(&format!(
            "recipient_key = \"{}\"\nsigning_fingerprint = \"{}\"\nsigning_key = \"{}\"\nsecret_key = \"{}\"\npassphrase_file = \"{}\"\n[approvals]\napprover_keys = [{}]\n[run]\nactor = \"faults\"\n",
            self.recipient_key.display(),
            self.signing_fingerprint,
            self.signing_key.display(),
            self.secret_key.display(),
            self.passphrase_file.display(),
            self.approver_keys
                .iter()
                .map(|p| format!("\"{}\"", p.display()))
                .collect::<Vec<_>>()
                .join(", ")
        ));
        s
    }
}

/// One world.
pub struct World {
    pub env: &'static Env,
    pub db: Db,
    pub dir: PathBuf,
    pub state: PathBuf,
    pub tmp: PathBuf,
    pub pgpass: PathBuf,
    pub plan: PathBuf,
    pub config: Config,
    config_path: PathBuf,
    audit: Arc<Audit>,
    signed: Mutex<u32>,
}

/// A plan of `n` scale rows for document `doc`, as JSON.
pub fn plan_json(doc: &str, n: u64) -> String {
    CutPlan::new(
        DocumentId::new(doc).expect("a valid document id"),
        SourceVersionId::new("v1").expect("a valid version id"),
        cutter_pg::fixtures::scale_rows(doc, n).collect(),
    )
    .to_json()
}

impl World {
    fn new(cx: &Cx, opts: Opts, k: u32) -> Result<World, String> {
        let env = cx.env;
        let coords = opts.coords.clone().unwrap_or_else(|| env.coords.clone());
        let template = if opts.big {
            env.big_template()?
        } else {
            coords.template.clone()
        };
        let db = Db::create(&coords, &template, &format!("faults{:02}", cx.num))?;
        let marker = format!("FAULTSMARKER{}", random_hex(10));
        {
            let mut c = db.admin()?;
            let id: i64 = c
                .query_one(
                    "INSERT INTO public.information_unit (canonical_address, title, unit_kind_ref, \
                         identity_profile, publication_type, document_id, source_version_id, \
                         lifecycle_status, change_set_id, created_by) \
                     VALUES ($1, $2, 'vocab.unit_kind.law_unit', \
                         '{\"primary_section_type_ref\": \"vocab.section_type.article\"}'::jsonb, \
                         'law', 'faults-marker', 'v1', 'draft', 'cs-faults-marker', 'faults') RETURNING id",
                    &[&format!("faults-marker/{marker}"), &marker],
                )
                .map_err(|e| format!("planting the marker: {e}"))?
                .get(0);
            c.execute(
                "INSERT INTO public.unit_version (information_unit_id, version_no, body, body_sha256, \
                     lifecycle_status, created_by) \
                 VALUES ($1, 1, $2, encode(sha256(convert_to($2, 'UTF8')), 'hex'), 'draft', 'faults')",
                &[&id, &format!("Điều bí mật. {marker} {marker}")],
            )
            .map_err(|e| format!("planting the marker: {e}"))?;
        }
        // alice and bob are the registry's first two approvers (the owner's bootstrap).
        {
            let read = |i: usize| {
                std::fs::read_to_string(&env.keys.approvers[i].1)
                    .map_err(|e| format!("approver key: {e}"))
            };
            let (alice, bob) = (read(0)?, read(1)?);
            cutter_governance::bootstrap_approvers(
                &mut db.admin()?,
                &[(&alice, "alice"), (&bob, "bob")],
                "faults",
            )
            .map_err(|e| format!("registering the approvers: {e}"))?;
        }
        let dir = cx.dir.join(format!("w{k}"));
        let state = dir.join("state");
        let tmp = dir.join("tmp");
        let secrets = dir.join("secrets");
        for d in [
            &dir,
            &tmp,
            &secrets,
            &dir.join("approvals"),
            &dir.join("plans"),
        ] {
            std::fs::create_dir_all(d).map_err(|e| format!("{}: {e}", d.display()))?;
        }
        let port = opts.connect_port.unwrap_or(coords.port);
        let pgpass = secrets.join("pgpass");
        write_private(&pgpass, coords.pgpass_lines(&db.name, port).as_bytes())?;
        let keys = &env.keys;
        let config = Config {
            url: format!(
                "postgres://cutter_exec@{}:{port}/{}?sslmode=disable",
                coords.host, db.name
            ),
            fingerprint: Some(keys.backup_fpr.clone()),
            recipient_key: keys.backup_pub.clone(),
            signing_fingerprint: keys.signing_fpr.clone(),
            signing_key: keys.signing_sec.clone(),
            secret_key: keys.backup_sec.clone(),
            passphrase_file: keys.passphrase_file.clone(),
            approver_keys: vec![keys.approvers[0].1.clone(), keys.approvers[1].1.clone()],
        };
        let plan = dir.join("plans").join("plan.json");
        std::fs::write(&plan, plan_json(&opts.doc, opts.units)).map_err(|e| e.to_string())?;
        let w = World {
            env,
            db,
            config_path: state.join("cutter.toml"),
            dir,
            state,
            tmp,
            pgpass,
            plan,
            config,
            audit: Arc::clone(&cx.audit),
            signed: Mutex::new(0),
        };
        cx.audit.dir(&w.dir);
        cx.audit.exclude(&w.pgpass);
        cx.audit.marker(&marker);
        let init = w.cutter().arg("init").arg(&w.state).run();
        if init.code != Some(0) {
            return Err(format!("cutter init failed: {}", init.all()));
        }
        w.write_config(&w.config)?;
        Ok(w)
    }

    /// A second state directory (`cutter init`) with the same configuration, beside the
    /// first; returns its cutter.toml.
    pub fn extra_state(&self, name: &str) -> Result<PathBuf, String> {
        let dir = self.dir.join(name);
        let init = self.cutter().arg("init").arg(&dir).run();
        if init.code != Some(0) {
            return Err(format!("cutter init {name}: {}", init.all()));
        }
        let cfg = dir.join("cutter.toml");
        std::fs::write(&cfg, self.config.text()).map_err(|e| e.to_string())?;
        Ok(cfg)
    }

    /// Rewrites cutter.toml.
    pub fn write_config(&self, c: &Config) -> Result<(), String> {
        std::fs::write(&self.config_path, c.text()).map_err(|e| e.to_string())
    }

    /// The pre snapshot.
    pub fn pre(&self) -> Result<Pre, String> {
        audit::pre_snapshot(&mut self.db.admin()?)
    }

    /// The full snapshot now (superuser).
    pub fn snapshot(&self) -> Result<cutter_core::Snapshot, String> {
        Ok(audit::pre_snapshot(&mut self.db.admin()?)?.full)
    }

    /// The binary with this world's configuration and nothing of the caller's libpq
    /// environment.
    pub fn cutter(&self) -> Cmd<'_> {
        Cmd {
            world: self,
            args: Vec::new(),
            env: vec![
                ("CUTTER_CONFIG".into(), self.config_path.clone().into()),
                ("PGPASSFILE".into(), self.pgpass.clone().into()),
                ("NO_COLOR".into(), "1".into()),
                ("TMPDIR".into(), self.tmp.clone().into()),
            ],
        }
    }

    /// Writes a plan file under plans/ and returns its path.
    pub fn plan_file(&self, name: &str, bytes: &[u8]) -> PathBuf {
        let p = self.dir.join("plans").join(name);
        std::fs::write(&p, bytes).expect("writing a plan file");
        p
    }

    /// SG_1 by `signers[0]`, SG_2 by `signers[1]` for `run` over `plan` on this world's
    /// server, expiring in `expires_in` seconds: the `--approval` values.
    pub fn approvals_for(
        &self,
        run: &str,
        plan: &Path,
        signers: [usize; 2],
        expires_in: i64,
    ) -> Vec<String> {
        self.approvals_with(
            run,
            plan,
            signers,
            cutter_core::Purpose::LiveRun,
            None,
            &self.db.database(),
            expires_in,
        )
    }

    /// SG_1 and SG_2 as [`World::approvals_for`], for any purpose (and the change set
    /// of a hard delete) and any database.
    #[allow(clippy::too_many_arguments)]
    pub fn approvals_with(
        &self,
        run: &str,
        plan: &Path,
        signers: [usize; 2],
        purpose: cutter_core::Purpose,
        change_set: Option<&str>,
        database: &cutter_core::TargetDatabase,
        expires_in: i64,
    ) -> Vec<String> {
        let p = CutPlan::parse_json(&std::fs::read(plan).expect("plan file")).expect("plan");
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_secs() as i64);
        let n = {
            let mut g = self.signed.lock().expect("lock");
            *g += 1;
            *g
        };
        let mut out = Vec::new();
        for (gate, who) in [ApprovalGate::Sg1, ApprovalGate::Sg2]
            .into_iter()
            .zip(signers)
        {
            let st = ApprovalStatement {
                purpose,
                run_id: RunId::new(run).expect("run id"),
                plan_digest: p.digest(),
                change_set: change_set
                    .map(|c| cutter_core::ChangeSetId::parse(c).expect("change set")),
                findings_digest: None,
                diff_digest: None,
                target: database.clone(),
                gate,
                not_before: cutter_core::UnixTime((now - 60).min(now + expires_in - 60)),
                expires_at: cutter_core::UnixTime(now + expires_in),
            };
            let s = cutter_governance::sign_approval(
                &st,
                &self.env.keys.approvers[who].0,
                &cutter_openpgp::Passphrase::new(String::new()),
                "faults",
            )
            .expect("signing an approval");
            let stem = self
                .dir
                .join("approvals")
                .join(format!("{run}-{purpose}-{}-{who}-{n}", gate.name()));
            let (txt, asc) = (stem.with_extension("txt"), stem.with_extension("asc"));
            std::fs::write(&txt, &s.statement).expect("statement");
            std::fs::write(&asc, &s.signature).expect("signature");
            out.push(format!("{}:{}", txt.display(), asc.display()));
        }
        out
    }

    /// Valid approvals for `run` over the world's plan.
    pub fn approvals(&self, run: &str) -> Vec<String> {
        self.approvals_for(run, &self.plan, [0, 1], 3600)
    }

    /// Signs `st` with `key` and writes statement and signature under approvals/:
    /// the `--approval` value.
    pub fn write_signed(
        &self,
        st: &ApprovalStatement,
        key: &cutter_openpgp::SecretKey,
        label: &str,
    ) -> Result<String, String> {
        let s = cutter_governance::sign_approval(
            st,
            key,
            &cutter_openpgp::Passphrase::new(String::new()),
            label,
        )
        .map_err(|e| e.to_string())?;
        let stem = self.dir.join("approvals").join(label);
        let (txt, asc) = (stem.with_extension("txt"), stem.with_extension("asc"));
        std::fs::write(&txt, &s.statement).map_err(|e| e.to_string())?;
        std::fs::write(&asc, &s.signature).map_err(|e| e.to_string())?;
        Ok(format!("{}:{}", txt.display(), asc.display()))
    }

    /// The schema owner's URL (the cluster's superuser), its password added to the
    /// world's private .pgpass (never in the URL).
    pub fn owner_url(&self) -> Result<String, String> {
        self.add_pgpass_line(
            &self.db.coords.superuser,
            &self.db.coords.superuser_password,
        )?;
        Ok(format!(
            "postgres://{}@{}:{}/{}?sslmode=disable",
            self.db.coords.superuser, self.db.coords.host, self.db.coords.port, self.db.name
        ))
    }

    /// Adds a line for `user` to the world's private .pgpass.
    pub fn add_pgpass_line(&self, user: &str, password: &str) -> Result<(), String> {
        let mut text = std::fs::read_to_string(&self.pgpass).map_err(|e| e.to_string())?;
        text.push_str(&format!(
            "{}:{}:{}:{user}:{password}\n",
            self.db.coords.host, self.db.coords.port, self.db.name
        ));
        super::env::write_private(&self.pgpass, text.as_bytes())
    }

    /// SG_1 by alice and SG_2 by bob over the approver change that adds the key in
    /// `public` as `name` for every purpose: the `--approval` values.
    pub fn approver_change_approvals(
        &self,
        public: &Path,
        name: &str,
    ) -> Result<Vec<String>, String> {
        self.approver_change_approvals_by(public, name, [0, 1])
    }

    /// [`World::approver_change_approvals`] signed by `signers`.
    pub fn approver_change_approvals_by(
        &self,
        public: &Path,
        name: &str,
        signers: [usize; 2],
    ) -> Result<Vec<String>, String> {
        let key = std::fs::read_to_string(public).map_err(|e| e.to_string())?;
        let change = cutter_governance::ApproverChange::add(
            &key,
            name,
            cutter_core::Purpose::ALL.into_iter().collect(),
        )
        .map_err(|e| e.to_string())?;
        let now = now_secs();
        let database = self.db.database();
        let mut out = Vec::new();
        for (gate, who) in [ApprovalGate::Sg1, ApprovalGate::Sg2]
            .into_iter()
            .zip(signers)
        {
            let st = ApprovalStatement {
                purpose: cutter_core::Purpose::ApproverChange,
                run_id: change.change_id(),
                plan_digest: change.digest(),
                change_set: None,
                findings_digest: None,
                diff_digest: None,
                target: database.clone(),
                gate,
                not_before: cutter_core::UnixTime(now - 60),
                expires_at: cutter_core::UnixTime(now + 3600),
            };
            out.push(self.write_signed(
                &st,
                &self.env.keys.approvers[who].0,
                &format!("{}-{gate}-{who}", change.change_id()),
            )?);
        }
        Ok(out)
    }

    /// Valid hold-release approvals for the HOLD of `run` over the world's plan.
    pub fn release_approvals(&self, run: &str) -> Vec<String> {
        self.approvals_with(
            run,
            &self.plan,
            [0, 1],
            cutter_core::Purpose::HoldRelease,
            None,
            &self.db.database(),
            3600,
        )
    }

    /// `cutter kill-switch disarm` for `run` over `plan` with `approvals`.
    pub fn disarm_cmd(&self, run: &str, plan: &Path, approvals: &[String]) -> Cmd<'_> {
        let mut c = self
            .cutter()
            .args(["kill-switch", "disarm", "--run-id", run, "--plan"])
            .arg(plan);
        for x in approvals {
            c = c.args(["--approval", x]);
        }
        c
    }

    /// Disarms the kill-switch for `run` over `plan`; returns the approvals.
    pub fn disarm_plan(&self, run: &str, plan: &Path) -> Result<Vec<String>, String> {
        let a = self.approvals_for(run, plan, [0, 1], 3600);
        let d = self.disarm_cmd(run, plan, &a).run();
        if d.code != Some(0) {
            return Err(format!("kill-switch disarm {run} failed: {}", d.all()));
        }
        Ok(a)
    }

    /// Disarms the kill-switch for `run` over the world's plan.
    pub fn disarm(&self, run: &str) -> Result<Vec<String>, String> {
        self.disarm_plan(run, &self.plan)
    }

    /// `cutter run --mode live` of `plan`.
    pub fn run_plan(&self, run: &str, plan: &Path, approvals: &[String]) -> Cmd<'_> {
        let mut c = self
            .cutter()
            .args(["run", "--mode", "live", "--run-id", run, "--plan"])
            .arg(plan);
        for a in approvals {
            c = c.args(["--approval", a]);
        }
        c
    }

    /// `cutter run --mode live` of the world's plan.
    pub fn run_live(&self, run: &str, approvals: &[String]) -> Cmd<'_> {
        self.run_plan(run, &self.plan, approvals)
    }

    /// Moves the restore proof record the run `run` made of its own backup
    /// (`prove_backup = before-write`, the default here) aside, so that a case can prove
    /// the artifact again by hand; says whether that record passed.
    pub fn set_aside_run_proof(&self, run: &str) -> Result<bool, String> {
        let record = self.state.join(format!("backups/{run}.restore-proof.json"));
        let passed = std::fs::read(&record)
            .ok()
            .and_then(|b| serde_json::from_slice::<serde_json::Value>(&b).ok())
            .is_some_and(|v| v["passed"] == true);
        std::fs::rename(&record, record.with_extension("by-the-run.json"))
            .map_err(|e| format!("moving {} aside: {e}", record.display()))?;
        Ok(passed)
    }

    pub fn hold_exists(&self) -> bool {
        self.state.join("locks/HOLD").exists()
    }

    pub fn kill_switch_engaged(&self) -> bool {
        std::fs::read_to_string(self.state.join("state/kill_switch.json"))
            .map(|s| s.contains("engaged"))
            .unwrap_or(false)
    }

    /// File names in backups/.
    pub fn backups(&self) -> Vec<String> {
        let mut v: Vec<String> = std::fs::read_dir(self.state.join("backups"))
            .map(|rd| {
                rd.flatten()
                    .map(|e| e.file_name().to_string_lossy().into_owned())
                    .collect()
            })
            .unwrap_or_default();
        v.sort();
        v
    }

    /// Units of `cs-<run>` by status (superuser).
    pub fn change_set_units(&self, run: &str) -> Result<Vec<(String, i64)>, String> {
        let mut c = self.db.admin()?;
        let rows = c
            .query(
                "SELECT lifecycle_status, count(*) FROM public.information_unit \
                  WHERE change_set_id = $1 GROUP BY 1 ORDER BY 1",
                &[&format!("cs-{run}")],
            )
            .map_err(|e| e.to_string())?;
        Ok(rows.iter().map(|r| (r.get(0), r.get(1))).collect())
    }

    /// `SELECT count(*)` of a query with one text parameter (superuser).
    pub fn count(&self, sql: &str, param: &str) -> Result<i64, String> {
        let mut c = self.db.admin()?;
        c.query_one(sql, &[&param])
            .map(|r| r.get(0))
            .map_err(|e| format!("{sql}: {e}"))
    }

    /// Waits until `cond` holds for the backends of this database: polls
    /// `pg_stat_activity` (superuser) and returns the matching pids.
    pub fn wait_backends(
        &self,
        what: &str,
        filter_sql: &str,
        mut alive: impl FnMut() -> bool,
    ) -> Result<Vec<i32>, String> {
        let mut c = self.db.admin()?;
        let sql = format!(
            "SELECT pid FROM pg_catalog.pg_stat_activity WHERE datname = $1 AND pid <> pg_backend_pid() AND ({filter_sql})"
        );
        let start = Instant::now();
        loop {
            let pids: Vec<i32> = c
                .query(&sql, &[&self.db.name])
                .map_err(|e| e.to_string())?
                .iter()
                .map(|r| r.get(0))
                .collect();
            if !pids.is_empty() {
                return Ok(pids);
            }
            if !alive() {
                return Err(format!("the process ended before {what}"));
            }
            if start.elapsed() > PATIENCE {
                return Err(format!("timed out waiting for {what}"));
            }
            std::thread::sleep(Duration::from_millis(5));
        }
    }

    /// `pg_terminate_backend` of `pids`, then waits until they are gone.
    pub fn terminate(&self, pids: &[i32]) -> Result<(), String> {
        let mut c = self.db.admin()?;
        for p in pids {
            let ok: bool = c
                .query_one("SELECT pg_terminate_backend($1)", &[p])
                .map_err(|e| e.to_string())?
                .get(0);
            if !ok {
                return Err(format!("pg_terminate_backend({p}) returned false"));
            }
        }
        self.wait_gone(pids)
    }

    /// Waits until the backends `pids` are gone.
    pub fn wait_gone(&self, pids: &[i32]) -> Result<(), String> {
        let mut c = self.db.admin()?;
        let start = Instant::now();
        loop {
            let left: i64 = c
                .query_one(
                    "SELECT count(*) FROM pg_catalog.pg_stat_activity WHERE pid = ANY($1)",
                    &[&pids],
                )
                .map_err(|e| e.to_string())?
                .get(0);
            if left == 0 {
                return Ok(());
            }
            if start.elapsed() > PATIENCE {
                return Err(format!("backends {pids:?} did not end"));
            }
            std::thread::sleep(Duration::from_millis(5));
        }
    }
}

/// A `cutter` invocation being built.
pub struct Cmd<'w> {
    world: &'w World,
    args: Vec<OsString>,
    env: Vec<(String, OsString)>,
}

/// A finished invocation.
#[derive(Debug, Clone)]
pub struct Done {
    pub code: Option<i32>,
    pub status: String,
    pub stdout: String,
    pub stderr: String,
    /// Names of the child processes seen doing work while it ran (a `--version` probe,
    /// which cutter runs to check a program before using it, does not count).
    pub children: Vec<String>,
}

impl Done {
    /// stdout and stderr.
    pub fn all(&self) -> String {
        format!("{}\n{}", self.stdout, self.stderr)
    }
    pub fn has(&self, needle: &str) -> bool {
        self.stdout.contains(needle) || self.stderr.contains(needle)
    }
    /// The first line of stderr that mentions `cutter:` (the error), for the table.
    pub fn error_line(&self) -> String {
        self.stderr
            .lines()
            .find(|l| l.starts_with("cutter: ") && !l.starts_with("cutter: failpoint"))
            .unwrap_or("")
            .trim_start_matches("cutter: ")
            .to_string()
    }
    pub fn ran(&self, program: &str) -> bool {
        self.children.iter().any(|c| c == program)
    }
}

impl<'w> Cmd<'w> {
    pub fn arg(mut self, a: impl Into<OsString>) -> Self {
        self.args.push(a.into());
        self
    }
    pub fn args<I, S>(mut self, a: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<OsString>,
    {
        self.args.extend(a.into_iter().map(Into::into));
        self
    }
    pub fn env(mut self, k: &str, v: impl Into<OsString>) -> Self {
        self.env.push((k.into(), v.into()));
        self
    }

    fn label(&self) -> String {
        let a: Vec<String> = self
            .args
            .iter()
            .take(3)
            .map(|s| s.to_string_lossy().into_owned())
            .collect();
        format!("cutter {}", a.join(" "))
    }

    /// Starts it.
    pub fn spawn(self) -> Running {
        let label = self.label();
        let mut cmd = Command::new(&self.world.env.bin);
        cutter_testkit::clear_caller_env(&mut cmd);
        for (k, v) in &self.env {
            cmd.env(k, v);
        }
        cmd.args(&self.args)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        let mut child = cmd.spawn().expect("starting the cutter binary");
        let pid = child.id();
        let watch = self.world.env.watcher.watch(pid);
        let out = Arc::new(Mutex::new(Vec::new()));
        let err = Arc::new(Mutex::new(Vec::new()));
        let mut readers = Vec::new();
        for (pipe, buf) in [
            (
                child
                    .stdout
                    .take()
                    .map(|p| Box::new(p) as Box<dyn Read + Send>),
                Arc::clone(&out),
            ),
            (
                child
                    .stderr
                    .take()
                    .map(|p| Box::new(p) as Box<dyn Read + Send>),
                Arc::clone(&err),
            ),
        ] {
            if let Some(mut p) = pipe {
                readers.push(std::thread::spawn(move || {
                    let mut chunk = [0u8; 8192];
                    while let Ok(n) = p.read(&mut chunk) {
                        if n == 0 {
                            break;
                        }
                        buf.lock()
                            .expect("output lock")
                            .extend_from_slice(&chunk[..n]);
                    }
                }));
            }
        }
        Running {
            child,
            pid,
            out,
            err,
            readers,
            watch,
            world_env: self.world.env,
            audit: Arc::clone(&self.world.audit),
            label,
            status: None,
        }
    }

    /// Runs it to the end.
    pub fn run(self) -> Done {
        self.spawn().wait()
    }
}

/// A running `cutter`.
pub struct Running {
    child: Child,
    pub pid: u32,
    out: Arc<Mutex<Vec<u8>>>,
    err: Arc<Mutex<Vec<u8>>>,
    readers: Vec<JoinHandle<()>>,
    watch: u64,
    world_env: &'static Env,
    audit: Arc<Audit>,
    label: String,
    status: Option<ExitStatus>,
}

impl Running {
    pub fn stderr_now(&self) -> String {
        String::from_utf8_lossy(&self.err.lock().expect("output lock")).into_owned()
    }

    /// Whether the process is still running.
    pub fn running(&mut self) -> bool {
        if self.status.is_some() {
            return false;
        }
        match self.child.try_wait() {
            Ok(Some(s)) => {
                self.status = Some(s);
                false
            }
            Ok(None) => true,
            Err(_) => false,
        }
    }

    /// Waits until stderr contains `needle` (fails if the process ends first).
    pub fn wait_stderr(&mut self, needle: &str) -> Result<(), String> {
        let start = Instant::now();
        loop {
            if self.stderr_now().contains(needle) {
                return Ok(());
            }
            if !self.running() {
                // The last bytes may still be in the pipe.
                if self.stderr_now().contains(needle) {
                    return Ok(());
                }
                return Err(format!(
                    "{} ended before printing {needle:?}: {}",
                    self.label,
                    self.stderr_now()
                ));
            }
            if start.elapsed() > PATIENCE {
                return Err(format!(
                    "timed out waiting for {needle:?} from {}",
                    self.label
                ));
            }
            std::thread::sleep(Duration::from_millis(2));
        }
    }

    /// Waits until `cond` holds (fails if the process ends first).
    pub fn wait_until(&mut self, what: &str, mut cond: impl FnMut() -> bool) -> Result<(), String> {
        let start = Instant::now();
        loop {
            if cond() {
                return Ok(());
            }
            if !self.running() {
                return Err(format!(
                    "{} ended before {what}: {}",
                    self.label,
                    self.stderr_now()
                ));
            }
            if start.elapsed() > PATIENCE {
                return Err(format!("timed out waiting for {what}"));
            }
            std::thread::sleep(Duration::from_millis(1));
        }
    }

    /// `kill -9`.
    pub fn kill9(&mut self) {
        let _ = self.child.kill();
    }

    /// Waits for the end (killing it after [`PATIENCE`]) and records everything.
    pub fn wait(mut self) -> Done {
        let start = Instant::now();
        let mut timed_out = false;
        while self.running() {
            if start.elapsed() > PATIENCE {
                let _ = self.child.kill();
                timed_out = true;
            }
            std::thread::sleep(Duration::from_millis(3));
        }
        let status = self.status.or_else(|| self.child.wait().ok());
        for r in self.readers.drain(..) {
            let _ = r.join();
        }
        let samples = self.world_env.watcher.finish(self.watch);
        let children: Vec<String> = samples
            .iter()
            .filter(|s| s.pid != self.pid)
            .filter(|s| !s.cmdline.split(|b| *b == 0).any(|a| a == b"--version"))
            .map(|s| s.comm.clone())
            .collect();
        let stdout = String::from_utf8_lossy(&self.out.lock().expect("output lock")).into_owned();
        let mut stderr =
            String::from_utf8_lossy(&self.err.lock().expect("output lock")).into_owned();
        if timed_out {
            stderr.push_str("\n[faults: killed after the patience timeout]");
        }
        self.audit
            .text(format!("stdout of {}", self.label), stdout.as_bytes());
        self.audit
            .text(format!("stderr of {}", self.label), stderr.as_bytes());
        self.audit.samples(&self.label, samples);
        let status_text = status.map_or("unknown".to_string(), |s| s.to_string());
        Done {
            code: status.and_then(|s| s.code()),
            status: status_text,
            stdout,
            stderr,
            children,
        }
    }
}

/// Seconds since the epoch.
pub fn now_secs() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs() as i64)
}
