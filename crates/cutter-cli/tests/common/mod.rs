//! A throwaway world for driving the real `cutter` binary: a fresh database (reference
//! schema + baseline) on the shared test cluster, a state directory made by `cutter init`,
//! real OpenPGP keys for the backup recipient and two approvers, a private .pgpass, and a
//! cutter.toml pointing at all of it.

#![allow(dead_code)]

pub mod contract;

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

use assert_cmd::Command;
use cutter_core::{
    ApprovalGate, ApprovalStatement, CutPlan, DocumentId, RunId, Snapshot, SourceVersionId,
    UnixTime,
};
use cutter_pg::testing::TestDb;

pub struct Approver {
    pub secret: cutter_openpgp::SecretKey,
    pub public: PathBuf,
}

pub struct World {
    pub db: TestDb,
    pub work: tempfile::TempDir,
    pub state: PathBuf,
    pub config: PathBuf,
    pub pgpass: PathBuf,
    pub approvers: Vec<Approver>,
    pub plan: PathBuf,
    pub backup_passphrase: String,
}

fn private(path: &Path, bytes: &[u8]) {
    std::fs::write(path, bytes).unwrap();
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600)).unwrap();
}

/// The binary with nothing from the caller's libpq or cutter environment.
pub fn cutter() -> Command {
    let mut c = Command::cargo_bin("cutter").unwrap();
    for v in cutter_testkit::CALLER_ENV {
        c.env_remove(v);
    }
    c
}

/// A plan of `n` units for document `doc`.
pub fn plan_json(doc: &str, n: u64) -> String {
    let rows = cutter_pg::fixtures::scale_rows(doc, n).collect();
    CutPlan::new(
        DocumentId::new(doc).unwrap(),
        SourceVersionId::new("v1").unwrap(),
        rows,
    )
    .to_json()
}

impl World {
    pub fn new() -> World {
        Self::with_units(12)
    }

    pub fn with_units(n: u64) -> World {
        Self::on(TestDb::new(), n)
    }

    /// A world whose database has the earlier tool's shape (not yet adopted), with the
    /// schema owner's URL configured as `[database] owner_url`.
    pub fn legacy() -> World {
        let db = TestDb::empty();
        cutter_pg::fixtures::install_legacy(&mut db.admin()).unwrap();
        Self::on(db, 12)
    }

    /// The schema owner's URL (the cluster's superuser; password in this world's .pgpass).
    pub fn owner_url(&self) -> String {
        let c = self.db.coordinates();
        format!(
            "postgres://{}@{}:{}/{}?sslmode=disable",
            c.superuser,
            c.host,
            c.port,
            self.db.name()
        )
    }

    /// Points this world's `[database] url` at role `user` (the superuser's password is
    /// in the world's .pgpass too), as an operator with other credentials would.
    pub fn connect_as(&self, user: &str) {
        let cfg = std::fs::read_to_string(&self.config).unwrap();
        let (head, rest) = cfg
            .split_once("url = \"postgres://")
            .expect("a [database] url");
        let (_, tail) = rest.split_once('@').expect("a user in the url");
        std::fs::write(
            &self.config,
            format!("{head}url = \"postgres://{user}@{tail}"),
        )
        .unwrap();
    }

    /// The binary as a `std::process::Command` (to spawn and signal it), with this
    /// world's environment.
    pub fn std_cmd(&self) -> std::process::Command {
        let mut c = std::process::Command::new(assert_cmd::cargo::cargo_bin("cutter"));
        for v in cutter_testkit::CALLER_ENV {
            c.env_remove(v);
        }
        c.env("CUTTER_CONFIG", &self.config)
            .env("PGPASSFILE", &self.pgpass)
            .env("NO_COLOR", "1");
        c
    }

    fn on(db: TestDb, n: u64) -> World {
        let work = tempfile::Builder::new()
            .prefix("cutter-cli-test-")
            .tempdir()
            .unwrap();
        let w = work.path();
        let c = db.coordinates();
        let pgpass = w.join("pgpass");
        private(
            &pgpass,
            format!(
                "{}{h}:{p}:{d}:{su}:{sp}\n",
                c.pgpass_lines(db.name(), c.port),
                h = c.host,
                p = c.port,
                d = db.name(),
                su = c.superuser,
                sp = c.superuser_password
            )
            .as_bytes(),
        );
        let keys = w.join("keys");
        std::fs::create_dir_all(&keys).unwrap();
        let backup_passphrase = "correct horse battery staple".to_string();
        let backup = cutter_backup::generate_keys(
            &keys,
            "backup",
            "Backup <backup@test.invalid>",
            Some(&cutter_openpgp::Passphrase::new(backup_passphrase.clone())),
        )
        .unwrap();
        private(
            &keys.join("backup.passphrase"),
            backup_passphrase.as_bytes(),
        );
        let signing = cutter_backup::generate_keys(
            &keys,
            "backup-signing",
            "Backup signing <backup-signing@test.invalid>",
            None,
        )
        .unwrap();
        let mut approvers = Vec::new();
        for name in ["alice", "bob", "mallory"] {
            let g = cutter_openpgp::generate_key(&format!("{name} <{name}@test.invalid>"), None)
                .unwrap();
            let public = keys.join(format!("{name}.pub.asc"));
            std::fs::write(&public, &g.public_armored).unwrap();
            approvers.push(Approver {
                secret: cutter_openpgp::SecretKey::from_bytes(g.secret_armored.as_bytes()).unwrap(),
                public,
            });
        }
        let state = w.join("state");
        let world = World {
            db,
            state: state.clone(),
            config: state.join("cutter.toml"),
            pgpass,
            approvers,
            plan: w.join("plan.json"),
            work,
            backup_passphrase,
        };
        world.cmd().args(["init"]).arg(&state).assert().success();
        // alice and bob are approvers; mallory has a key but is not in the set.
        std::fs::write(
            &world.config,
            format!(
                "state_dir = \".\"\n[database]\nurl = \"postgres://cutter_exec@{h}:{p}/{d}?sslmode=disable\"\nverify_user = \"cutter_verify\"\n[backup]\nrecipient_fingerprint = \"{fpr}\"\nrecipient_key = \"{pk}\"\nsigning_fingerprint = \"{sfpr}\"\nsigning_key = \"{sgk}\"\nsecret_key = \"{sk}\"\npassphrase_file = \"{pf}\"\n[approvals]\napprover_keys = [\"{a}\", \"{b}\"]\n[run]\nactor = \"cli-test\"\n",
                h = c.host,
                p = c.port,
                d = world.db.name(),
                fpr = backup.fingerprint,
                pk = backup.public_key.display(),
                sfpr = signing.fingerprint,
                sgk = signing.secret_key.display(),
                sk = backup.secret_key.display(),
                pf = keys.join("backup.passphrase").display(),
                a = world.approvers[0].public.display(),
                b = world.approvers[1].public.display(),
            ),
        )
        .unwrap();
        std::fs::write(&world.plan, plan_json("cli-doc", n)).unwrap();
        let has_registry: bool = world
            .db
            .admin()
            .query_one(
                "SELECT to_regclass('cutter_governance.approver') IS NOT NULL",
                &[],
            )
            .unwrap()
            .get(0);
        if has_registry {
            world.register_approvers();
        }
        world
    }

    /// The secret key file of the backup signing key the configuration pins.
    pub fn backup_signing_key(&self) -> PathBuf {
        self.work.path().join("keys/backup-signing.sec.asc")
    }

    /// Registers alice and bob in the database's approver registry, as its owner (the
    /// bootstrap of the first two); mallory never is.
    pub fn register_approvers(&self) {
        let read = |who: usize| std::fs::read_to_string(&self.approvers[who].public).unwrap();
        let (alice, bob) = (read(0), read(1));
        cutter_governance::bootstrap_approvers(
            &mut self.db.admin(),
            &[(&alice, "alice"), (&bob, "bob")],
            "cli-test",
        )
        .unwrap();
    }

    /// The test database as approvals name it.
    pub fn database(&self) -> cutter_core::TargetDatabase {
        self.db.target().database().clone()
    }

    /// The binary, with this world's configuration and nothing from the caller's libpq
    /// environment.
    pub fn cmd(&self) -> Command {
        let mut c = cutter();
        c.env("CUTTER_CONFIG", &self.config)
            .env("PGPASSFILE", &self.pgpass)
            .env("NO_COLOR", "1");
        c.timeout(std::time::Duration::from_secs(120));
        c
    }

    /// Signs SG_1 (by `signers[0]`) and SG_2 (by `signers[1]`) live-run approvals for
    /// `run` over `plan`, naming `target`; returns the `--approval` values.
    pub fn approvals_for(
        &self,
        run: &str,
        plan: &Path,
        signers: [usize; 2],
        target: cutter_core::TargetDatabase,
        expires_in: i64,
    ) -> Vec<String> {
        self.approvals_with(
            run,
            plan,
            signers,
            cutter_core::Purpose::LiveRun,
            None,
            target,
            expires_in,
        )
    }

    /// [`World::approvals_for`] with any purpose (and the change set of a hard delete).
    #[allow(clippy::too_many_arguments)]
    pub fn approvals_with(
        &self,
        run: &str,
        plan: &Path,
        signers: [usize; 2],
        purpose: cutter_core::Purpose,
        change_set: Option<&str>,
        target: cutter_core::TargetDatabase,
        expires_in: i64,
    ) -> Vec<String> {
        let p = CutPlan::parse_json(&std::fs::read(plan).unwrap()).unwrap();
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_secs() as i64;
        let mut out = Vec::new();
        for (gate, who) in [ApprovalGate::Sg1, ApprovalGate::Sg2]
            .into_iter()
            .zip(signers)
        {
            let st = ApprovalStatement {
                purpose,
                run_id: RunId::new(run).unwrap(),
                plan_digest: p.digest(),
                change_set: change_set.map(|c| cutter_core::ChangeSetId::parse(c).unwrap()),
                findings_digest: None,
                diff_digest: None,
                target: target.clone(),
                gate,
                not_before: UnixTime((now - 60).min(now + expires_in - 60)),
                expires_at: UnixTime(now + expires_in),
            };
            let stem = self
                .work
                .path()
                .join(format!("{run}-{purpose}-{}-{who}", gate.name()));
            let s = cutter_governance::sign_approval(
                &st,
                &self.approvers[who].secret,
                &cutter_openpgp::Passphrase::new(String::new()),
                "test",
            )
            .unwrap();
            std::fs::write(stem.with_extension("txt"), &s.statement).unwrap();
            std::fs::write(stem.with_extension("asc"), &s.signature).unwrap();
            out.push(format!(
                "{}:{}",
                stem.with_extension("txt").display(),
                stem.with_extension("asc").display()
            ));
        }
        out
    }

    pub fn approvals(&self, run: &str) -> Vec<String> {
        self.approvals_for(run, &self.plan, [0, 1], self.database(), 3600)
    }

    /// Two hold-release approvals (SG_1, SG_2) for `run`, valid for an hour.
    pub fn hold_release_approvals(&self, run: &str) -> Vec<String> {
        self.approvals_with(
            run,
            &self.plan,
            [0, 1],
            cutter_core::Purpose::HoldRelease,
            None,
            self.database(),
            3600,
        )
    }

    /// Disarms the kill-switch for `run` with valid approvals; returns them for the run.
    pub fn disarm(&self, run: &str) -> Vec<String> {
        let a = self.approvals(run);
        let mut c = self.cmd();
        c.args(["kill-switch", "disarm", "--run-id", run, "--plan"])
            .arg(&self.plan);
        for x in &a {
            c.args(["--approval", x]);
        }
        c.assert().success();
        a
    }

    /// `cutter run --mode live` for `run` with `approvals`.
    pub fn run_live(&self, run: &str, approvals: &[String]) -> Command {
        let mut c = self.cmd();
        c.args(["run", "--mode", "live", "--run-id", run, "--plan"])
            .arg(&self.plan);
        for x in approvals {
            c.args(["--approval", x]);
        }
        c
    }

    /// `cutter run --mode dry-run` for `run` with the world's plan.
    pub fn dry_run(&self, run: &str) -> Command {
        let mut c = self.cmd();
        c.args(["run", "--mode", "dry-run", "--run-id", run, "--plan"])
            .arg(&self.plan);
        c
    }

    /// `cutter backup restore-proof` of `artifact`, which must succeed; its output.
    pub fn restore_proof(&self, artifact: &Path) -> std::process::Output {
        let o = self
            .cmd()
            .args(["backup", "restore-proof"])
            .arg(artifact)
            .output()
            .unwrap();
        assert_eq!(o.status.code(), Some(0), "{}", text(&o));
        o
    }

    pub fn snapshot(&self) -> Snapshot {
        self.db.target().snapshot().unwrap()
    }

    pub fn hold_exists(&self) -> bool {
        self.state.join("locks/HOLD").exists()
    }

    pub fn kill_switch(&self) -> String {
        std::fs::read_to_string(self.state.join("state/kill_switch.json")).unwrap_or_default()
    }

    /// Units that are not withdrawn, by status.
    pub fn live_statuses(s: &Snapshot) -> Vec<(String, u64)> {
        s.unit_statuses
            .iter()
            .filter(|(k, _)| k.as_str() != "withdrawn")
            .map(|(k, v)| (k.clone(), *v))
            .collect()
    }
}

/// Spawns `cmd` with piped output and reads its stderr up to its `cutter: failpoint` line:
/// the child, its stderr reader (positioned after that line) and what it printed so far.
pub fn spawn_to_failpoint(
    mut cmd: std::process::Command,
) -> (
    std::process::Child,
    std::io::BufReader<std::process::ChildStderr>,
    String,
) {
    use std::io::BufRead as _;
    cmd.stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped());
    let mut child = cmd.spawn().unwrap();
    let mut stderr = std::io::BufReader::new(child.stderr.take().unwrap());
    let mut seen = String::new();
    while !seen.contains("cutter: failpoint") {
        assert!(
            stderr.read_line(&mut seen).unwrap() > 0,
            "the command ended before its failpoint:\n{seen}"
        );
    }
    (child, stderr, seen)
}

/// A finished command's stdout and stderr, for assertion messages.
pub fn text(o: &std::process::Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    )
}

/// Writes the detached signature of `bytes` by the secret key at `key` (unprotected) as
/// `record`'s (`<record>.sig`), as a backup proof record is signed.
pub fn sign_record(key: &Path, record: &Path, bytes: &[u8]) {
    let secret = cutter_backup::load_secret_key(key).unwrap();
    let sig = cutter_openpgp::sign_detached(
        &secret,
        &cutter_backup::Passphrase::new(String::new()),
        bytes,
    )
    .unwrap();
    std::fs::write(cutter_backup::record_signature_path(record), sig).unwrap();
}
