//! What every case shares: the `cutter` binary, throwaway keys, the shared test cluster
//! (and its databases, one per world), the big template for the cases whose backup must
//! stream long enough to be interrupted, and the secrets no output may contain.

use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::sync::{Mutex, OnceLock};

use cutter_pg::testing::Coordinates;
use cutter_pg::{quote_ident, ConnConfig};

use super::audit::Watcher;

/// Keys made once for the whole suite.
pub struct Keys {
    /// The backup recipient's public key, secret key and fingerprint (the pin).
    pub backup_pub: PathBuf,
    pub backup_sec: PathBuf,
    pub backup_fpr: String,
    /// A second backup key pair with the same passphrase (wrong key, wrong pin).
    pub other_pub: PathBuf,
    pub other_sec: PathBuf,
    pub other_fpr: String,
    /// The manifest signing key (unprotected, mode 0600) and its fingerprint.
    pub signing_sec: PathBuf,
    pub signing_fpr: String,
    /// The backup secret key's passphrase and the file holding it.
    pub passphrase: String,
    pub passphrase_file: PathBuf,
    /// alice and bob are approvers; mallory has a key but is not in the set.
    pub approvers: Vec<(cutter_openpgp::SecretKey, PathBuf)>,
}

impl Keys {
    fn generate(dir: &Path) -> Result<Keys, String> {
        fs::create_dir_all(dir).map_err(|e| format!("{}: {e}", dir.display()))?;
        let passphrase = format!("faults-passphrase-{}", random_hex(12));
        let pass = cutter_openpgp::Passphrase::new(passphrase.clone());
        let backup = cutter_backup::generate_keys(
            dir,
            "backup",
            "Backup <backup@faults.invalid>",
            Some(&pass),
        )
        .map_err(|e| format!("backup key: {e}"))?;
        let other =
            cutter_backup::generate_keys(dir, "other", "Other <other@faults.invalid>", Some(&pass))
                .map_err(|e| format!("second backup key: {e}"))?;
        let signing = cutter_backup::generate_keys(
            dir,
            "backup-signing",
            "Backup signing <backup-signing@faults.invalid>",
            None,
        )
        .map_err(|e| format!("backup signing key: {e}"))?;
        let passphrase_file = dir.join("backup.passphrase");
        write_private(&passphrase_file, passphrase.as_bytes())?;
        let mut approvers = Vec::new();
        for name in ["alice", "bob", "mallory"] {
            let g = cutter_openpgp::generate_key(&format!("{name} <{name}@faults.invalid>"), None)
                .map_err(|e| format!("approver key {name}: {e}"))?;
            let public = dir.join(format!("{name}.pub.asc"));
            fs::write(&public, &g.public_armored).map_err(|e| e.to_string())?;
            let secret = cutter_openpgp::SecretKey::from_bytes(g.secret_armored.as_bytes())
                .map_err(|e| format!("approver key {name}: {e}"))?;
            approvers.push((secret, public));
        }
        Ok(Keys {
            backup_pub: backup.public_key,
            backup_sec: backup.secret_key,
            backup_fpr: backup.fingerprint.to_string(),
            other_pub: other.public_key,
            other_sec: other.secret_key,
            other_fpr: other.fingerprint.to_string(),
            signing_sec: signing.secret_key,
            signing_fpr: signing.fingerprint.to_string(),
            passphrase,
            passphrase_file,
            approvers,
        })
    }
}

/// The suite's shared state.
pub struct Env {
    /// The debug `cutter` binary (with the test-only failpoints).
    pub bin: PathBuf,
    /// Where every world's directory lives (removed at the end).
    pub root: PathBuf,
    pub keys: Keys,
    /// The shared cluster.
    pub coords: Coordinates,
    /// Its server log, if known (scanned for secrets).
    pub cluster_log: Option<PathBuf>,
    /// (label, value) of every secret no output may contain.
    pub secrets: Vec<(String, String)>,
    /// Samples the arguments and environment of running `cutter` processes and children.
    pub watcher: Watcher,
    big: OnceLock<Result<String, String>>,
    big_lock: Mutex<()>,
}

impl Env {
    pub fn new(
        bin: PathBuf,
        root: PathBuf,
        coords: Coordinates,
        cluster_log: Option<PathBuf>,
    ) -> Result<Env, String> {
        let keys = Keys::generate(&root.join("keys"))?;
        let mut secrets = vec![
            (
                "cutter_exec password".to_string(),
                coords.exec_password.clone(),
            ),
            (
                "cutter_verify password".to_string(),
                coords.verify_password.clone(),
            ),
            (
                "superuser password".to_string(),
                coords.superuser_password.clone(),
            ),
            ("backup passphrase".to_string(), keys.passphrase.clone()),
        ];
        // A distinctive line of the armored (passphrase-protected) backup secret key.
        let sec = fs::read_to_string(&keys.backup_sec).map_err(|e| e.to_string())?;
        if let Some(line) = sec
            .lines()
            .filter(|l| l.len() > 40 && !l.starts_with("-----"))
            .nth(2)
        {
            secrets.push(("backup secret key material".into(), line.to_string()));
        }
        Ok(Env {
            bin,
            root,
            keys,
            coords,
            cluster_log,
            secrets,
            watcher: Watcher::start(),
            big: OnceLock::new(),
            big_lock: Mutex::new(()),
        })
    }

    /// The name of the big template (reference schema, baseline, and about 65 MB of
    /// units), made on first use.
    pub fn big_template(&self) -> Result<String, String> {
        let _serial = self
            .big_lock
            .lock()
            .map_err(|_| "big template lock poisoned")?;
        self.big
            .get_or_init(|| {
                let t = std::time::Instant::now();
                let r = make_big_template(&self.coords);
                eprintln!(
                    "xtask faults: big template ({BIG_UNITS} units) made in {:.1} s",
                    t.elapsed().as_secs_f64()
                );
                r
            })
            .clone()
    }

    /// Drops the big template, if it was made.
    pub fn drop_big_template(&self) {
        if let Some(Ok(name)) = self.big.get() {
            if let Ok(cfg) = self.coords.config("postgres", &self.coords.superuser) {
                if let Ok(mut c) = cfg.connect() {
                    let _ = c.batch_execute(&format!(
                        "ALTER DATABASE {n} IS_TEMPLATE false; DROP DATABASE IF EXISTS {n} WITH (FORCE)",
                        n = quote_ident(name)
                    ));
                }
            }
        }
    }
}

/// A PostgreSQL error with its SQLSTATE and the server's message.
pub fn pgerr(e: &postgres::Error) -> String {
    match e.as_db_error() {
        Some(d) => format!("{} [{}]", d.message(), d.code().code()),
        None => e.to_string(),
    }
}

/// Units in the big template: with ~1.5 KB bodies, about 65 MB of dump.
pub const BIG_UNITS: i64 = 40_000;

fn make_big_template(coords: &Coordinates) -> Result<String, String> {
    let name = format!("faults_big_{}", std::process::id());
    let admin = |db: &str| -> Result<postgres::Client, String> {
        coords
            .config(db, &coords.superuser)
            .map_err(|e| e.to_string())?
            .connect()
            .map_err(|e| e.to_string())
    };
    let mut c = admin("postgres")?;
    c.batch_execute(&format!(
        "CREATE DATABASE {} TEMPLATE {}",
        quote_ident(&name),
        quote_ident(&coords.template)
    ))
    .map_err(|e| format!("creating the big template: {}", pgerr(&e)))?;
    {
        let mut b = admin(&name)?;
        b.execute(
            "INSERT INTO public.information_unit (canonical_address, title, unit_kind_ref, \
                 identity_profile, publication_type, document_id, source_version_id, \
                 lifecycle_status, change_set_id, created_by, created_at, updated_at) \
             SELECT format('faults-bulk/dieu-%s', g), format('Điều %s', g), 'vocab.unit_kind.law_unit', \
                    '{\"primary_section_type_ref\": \"vocab.section_type.article\"}'::jsonb, 'law', \
                    'faults-bulk', 'v1', 'draft', 'cs-faults-bulk', 'faults', \
                    timestamptz '2026-01-01 00:00:00+00', timestamptz '2026-01-01 00:00:00+00' \
               FROM generate_series(1, $1::int8) AS g",
            &[&BIG_UNITS],
        )
        .map_err(|e| format!("filling the big template (units): {}", pgerr(&e)))?;
        b.batch_execute(
            "INSERT INTO public.unit_version (information_unit_id, version_no, body, body_sha256, \
                 lifecycle_status, created_by, created_at) \
             SELECT iu.id, 1, x.body, encode(sha256(convert_to(x.body, 'UTF8')), 'hex'), 'draft', \
                    'faults', timestamptz '2026-01-01 00:00:00+00' \
               FROM public.information_unit iu \
               CROSS JOIN LATERAL (SELECT string_agg(md5(iu.id::text || '.' || i), ' ') AS body \
                                     FROM generate_series(1, 45) AS i) x \
              WHERE iu.document_id = 'faults-bulk'",
        )
        .map_err(|e| format!("filling the big template (versions): {}", pgerr(&e)))?;
        for t in ["public.information_unit", "public.unit_version"] {
            b.batch_execute(&format!("VACUUM (FREEZE, ANALYZE) {t}"))
                .map_err(|e| format!("VACUUM {t}: {}", pgerr(&e)))?;
        }
    }
    c.batch_execute(&format!(
        "ALTER DATABASE {} IS_TEMPLATE true",
        quote_ident(&name)
    ))
    .map_err(|e| e.to_string())?;
    Ok(name)
}

/// One database of a case, dropped with the value.
pub struct Db {
    pub coords: Coordinates,
    pub name: String,
}

impl Db {
    /// `CREATE DATABASE <unique> TEMPLATE template` on the cluster of `coords`.
    pub fn create(coords: &Coordinates, template: &str, prefix: &str) -> Result<Db, String> {
        let name = format!("{prefix}_{}_{}", std::process::id(), random_hex(4));
        let mut c = coords
            .config("postgres", &coords.superuser)
            .map_err(|e| e.to_string())?
            .connect()
            .map_err(|e| format!("connecting to the test cluster: {e}"))?;
        // The template may be in use by a concurrent CREATE DATABASE: retry that.
        let sql = format!(
            "CREATE DATABASE {} TEMPLATE {}",
            quote_ident(&name),
            quote_ident(template)
        );
        let mut last = String::new();
        for _ in 0..200 {
            match c.batch_execute(&sql) {
                Ok(()) => {
                    return Ok(Db {
                        coords: coords.clone(),
                        name,
                    })
                }
                Err(e) => {
                    last = pgerr(&e);
                    let busy = e
                        .as_db_error()
                        .is_some_and(|d| d.message().contains("is being accessed by other users"));
                    if !busy {
                        break;
                    }
                    std::thread::sleep(std::time::Duration::from_millis(50));
                }
            }
        }
        Err(format!("creating database {name}: {last}"))
    }

    pub fn cfg(&self, user: &str) -> ConnConfig {
        self.coords
            .config(&self.name, user)
            .expect("connection configuration of a test database")
    }
    pub fn admin_cfg(&self) -> ConnConfig {
        self.cfg(&self.coords.superuser)
    }
    pub fn admin(&self) -> Result<postgres::Client, String> {
        self.admin_cfg()
            .connect()
            .map_err(|e| format!("connecting to {} as superuser: {e}", self.name))
    }
    pub fn exec(&self) -> Result<postgres::Client, String> {
        self.cfg(cutter_pg::schema::EXEC_ROLE)
            .connect()
            .map_err(|e| format!("connecting to {} as cutter_exec: {e}", self.name))
    }
    /// The database as approvals name it.
    pub fn database(&self) -> cutter_core::TargetDatabase {
        let mut c = self.admin().expect("connecting as superuser");
        cutter_pg::surface::target_database(&mut c).expect("reading the database identity")
    }
}

impl Drop for Db {
    fn drop(&mut self) {
        if let Ok(cfg) = self.coords.config("postgres", &self.coords.superuser) {
            if let Ok(mut c) = cfg.connect() {
                let _ = c.batch_execute(&format!(
                    "DROP DATABASE IF EXISTS {} WITH (FORCE)",
                    quote_ident(&self.name)
                ));
            }
        }
    }
}

/// `n` random bytes as hex, from the kernel.
pub fn random_hex(n: usize) -> String {
    use std::io::Read;
    let mut b = vec![0u8; n];
    let _ = fs::File::open("/dev/urandom").and_then(|mut f| f.read_exact(&mut b));
    b.iter().map(|x| format!("{x:02x}")).collect()
}

/// Writes a file only its owner can read.
pub fn write_private(path: &Path, bytes: &[u8]) -> Result<(), String> {
    fs::write(path, bytes).map_err(|e| format!("{}: {e}", path.display()))?;
    fs::set_permissions(path, fs::Permissions::from_mode(0o600))
        .map_err(|e| format!("{}: {e}", path.display()))
}
