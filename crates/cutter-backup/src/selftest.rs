//! `cutter backup selftest`: is everything in place to take (and prove) a backup? Every
//! check runs, and the report has one line per check; the set-up passes only if all do
//! (fail-closed). It touches the database only if a connection is given, and then only
//! to read the server version, the read-only role's privileges and the size of the
//! surface tables. Without a connection the `pg_dump compatibility` line fails as "not
//! checked": a PASS only ever vouches for what was checked.

use std::fmt;
use std::path::PathBuf;

use cutter_core::{mutation_surface, Fingerprint, TableName};
use cutter_openpgp::Recipient;
use cutter_pg::config::ConnConfig;
use serde::{Deserialize, Serialize};

use crate::keys::{
    load_recipient, load_secret_key, ManifestSigner, PassphraseSource, SIGNING_PASSPHRASE_ENV,
};
use crate::programs::PgProgram;
use cutter_fs as atomic;

/// Free space required beyond the estimated artifact size.
const MARGIN: u64 = 64 << 20;

/// What to check.
#[derive(Clone, Debug, Default)]
pub struct SelftestConfig {
    /// The backups directory.
    pub backups_dir: PathBuf,
    /// The pinned fingerprint (`None`: not configured, which fails).
    pub pin: Option<Fingerprint>,
    /// The recipient public key file (`None`: not configured, which fails).
    pub recipient_key: Option<PathBuf>,
    /// The secret key, for the decryption half of the round trip (optional).
    pub secret_key: Option<PathBuf>,
    /// Its passphrase.
    pub passphrase: Option<PassphraseSource>,
    /// The pinned manifest signing fingerprint (`None`: not configured, which fails).
    pub signing_pin: Option<Fingerprint>,
    /// The signing key's secret key file (`None`: not configured, which fails: no
    /// backup can be taken without it).
    pub signing_key: Option<PathBuf>,
    /// A pg_dump other than `pg_config --bindir`'s.
    pub pg_dump: Option<PathBuf>,
    /// The directory holding pg_dump (`[backup] pg_bindir`), instead of `pg_config --bindir`.
    pub pg_bindir: Option<PathBuf>,
    /// The database as the read-only role: pg_dump is checked against the server's
    /// version, the role's privileges and the free space against the tables' size.
    /// Without it the `pg_dump compatibility` check fails as not checked.
    pub pg: Option<ConnConfig>,
}

/// One check's result.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Check {
    /// What was checked (`recipient key`, `pg_dump`, `state directory`, …).
    pub name: String,
    /// Whether it passed.
    pub ok: bool,
    /// What was found, or what is wrong and what to do.
    pub detail: String,
}

/// All checks, in order.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct SelftestReport {
    /// The checks.
    pub checks: Vec<Check>,
}

impl SelftestReport {
    /// Whether every check passed.
    pub fn passed(&self) -> bool {
        self.checks.iter().all(|c| c.ok)
    }

    /// One line per failed check.
    pub fn failures(&self) -> Vec<String> {
        self.checks
            .iter()
            .filter(|c| !c.ok)
            .map(|c| format!("FAIL {}: {}", c.name, c.detail))
            .collect()
    }
}

impl fmt::Display for SelftestReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for c in &self.checks {
            writeln!(
                f,
                "{} {}: {}",
                if c.ok { "ok  " } else { "FAIL" },
                c.name,
                c.detail
            )?;
        }
        write!(
            f,
            "SELFTEST: {}",
            if self.passed() { "PASS" } else { "FAIL" }
        )
    }
}

fn check(name: &str, r: Result<String, String>) -> Check {
    match r {
        Ok(detail) => Check {
            name: name.into(),
            ok: true,
            detail,
        },
        Err(detail) => Check {
            name: name.into(),
            ok: false,
            detail,
        },
    }
}

/// A small sample that looks nothing like a dump (no `PGDMP` magic).
fn sample() -> Vec<u8> {
    let mut v = Vec::with_capacity(300_000);
    let mut x = 0x2545_F491_4F6C_DD1Du64;
    while v.len() < 300_000 {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        v.extend_from_slice(&x.to_le_bytes());
    }
    v
}

/// Runs every check. See the module docs.
pub fn selftest(cfg: &SelftestConfig) -> SelftestReport {
    let mut checks = Vec::new();

    // Recipient: configured, readable, the pinned key, can encrypt.
    let recipient: Result<Recipient, String> = match (&cfg.pin, &cfg.recipient_key) {
        (None, _) => Err(crate::Error::PinMissing.to_string()),
        (Some(pin), None) => {
            Err(crate::Error::RecipientKeyMissing { pin: pin.clone() }.to_string())
        }
        (Some(pin), Some(path)) => load_recipient(path, pin).map_err(|e| e.to_string()),
    };
    checks.push(check(
        "recipient key",
        recipient.as_ref().map_err(Clone::clone).map(|r| {
            format!(
                "{} is the pinned key and can encrypt (subkey {})",
                r.fingerprint(),
                r.encryption_key_fingerprint()
            )
        }),
    ));

    // Manifest signing key: pinned, a private file, the pinned key, can sign now.
    let signing = match (&cfg.signing_pin, &cfg.signing_key) {
        (None, _) => Err(crate::Error::SigningPinMissing.to_string()),
        (Some(pin), None) => Err(format!(
            "[backup].signing_fingerprint pins {pin}, but no signing key is configured: set \
             [backup].signing_key (or CUTTER_BACKUP_SIGNING_KEY) to its secret key file; \
             without it no backup (and so no live run) can be taken here"
        )),
        (Some(pin), Some(path)) => {
            let pass = if std::env::var_os(SIGNING_PASSPHRASE_ENV).is_some() {
                PassphraseSource::Env(SIGNING_PASSPHRASE_ENV.into())
            } else {
                PassphraseSource::None
            };
            ManifestSigner::load(path, pin, &pass)
                .map(|s| format!("{} is the pinned key and can sign", s.fingerprint()))
                .map_err(|e| e.to_string())
        }
    };
    checks.push(check("manifest signing key", signing));

    // pg_dump: found and runs; then, as its own line, new enough for the server.
    let pg_dump = PgProgram::resolve(cfg.pg_dump.as_deref(), cfg.pg_bindir.as_deref(), "pg_dump");
    checks.push(check(
        "pg_dump",
        pg_dump
            .as_ref()
            .map(|p| format!("{} version {} runs", p.path.display(), p.version))
            .map_err(|e| e.to_string()),
    ));
    let facts = cfg.pg.as_ref().map(server_facts);
    let estimate = match &facts {
        Some(Ok((_, _, size))) => Some(*size),
        _ => None,
    };
    checks.push(check(
        "pg_dump compatibility",
        compatibility(pg_dump.as_ref().ok(), facts.as_ref()),
    ));
    if let Some(pg) = &cfg.pg {
        checks.push(check("read-only role", role_check(pg)));
    }

    // State directory: writable, with room.
    let dir = &cfg.backups_dir;
    let dir_check = atomic::check_writable_dir(dir)
        .map_err(|e| e.to_string())
        .and_then(|()| {
            let st = rustix::fs::statvfs(dir)
                .map_err(|e| format!("cannot read the free space of {}: {e}", dir.display()))?;
            let free = st.f_bavail.saturating_mul(st.f_frsize);
            let need = estimate.unwrap_or(0).saturating_add(MARGIN);
            if free >= need {
                Ok(format!(
                    "{} is writable, {} MiB free{}",
                    dir.display(),
                    free >> 20,
                    estimate.map_or(String::new(), |e| format!(
                        " (the surface tables take about {} MiB)",
                        e >> 20
                    ))
                ))
            } else {
                Err(format!(
                    "{} has {} MiB free, a backup needs about {} MiB; free space or move the state directory",
                    dir.display(),
                    free >> 20,
                    need >> 20
                ))
            }
        });
    checks.push(check("state directory", dir_check));

    // Round trip of a sample, in memory.
    let round_trip = match &recipient {
        Err(_) => Err("skipped: no usable recipient key".to_string()),
        Ok(r) => round_trip(r, cfg),
    };
    checks.push(check("encryption round trip", round_trip));

    SelftestReport { checks }
}

fn round_trip(r: &Recipient, cfg: &SelftestConfig) -> Result<String, String> {
    let plain = sample();
    let mut ct = Vec::with_capacity(plain.len() + 1024);
    cutter_openpgp::encrypt(r, &plain[..], &mut ct).map_err(|e| e.to_string())?;
    if ct.windows(4096).any(|win| win == &plain[..4096]) {
        return Err("the sample appears unencrypted in the output".into());
    }
    let Some(secret_path) = &cfg.secret_key else {
        return Ok(format!(
            "{} bytes encrypted to {} (no secret key configured: decryption not checked)",
            plain.len(),
            r.fingerprint()
        ));
    };
    let secret = load_secret_key(secret_path).map_err(|e| e.to_string())?;
    if secret.fingerprint() != r.fingerprint() {
        return Err(format!(
            "the secret key {} is not the recipient's ({}); a restore proof would fail",
            secret.fingerprint(),
            r.fingerprint()
        ));
    }
    let pass = cfg
        .passphrase
        .clone()
        .unwrap_or(PassphraseSource::None)
        .read(&|k| std::env::var(k).ok())
        .map_err(|e| e.to_string())?;
    let mut back = Vec::with_capacity(plain.len());
    cutter_openpgp::decrypt(&secret, &pass, &ct[..], &mut back).map_err(|e| e.to_string())?;
    if back != plain {
        return Err("decryption returned different bytes".into());
    }
    Ok(format!(
        "{} bytes encrypted to {} and decrypted with its secret key",
        plain.len(),
        r.fingerprint()
    ))
}

/// Whether `pg_dump` can dump the server. Fail-closed: without a database the server's
/// version is unknown, so the check fails as "not checked" (a backup needs the
/// database anyway, and pg_dump refuses a server newer than itself).
fn compatibility(
    pg_dump: Option<&PgProgram>,
    facts: Option<&Result<(String, u32, u64), String>>,
) -> Result<String, String> {
    let Some(facts) = facts else {
        return Err(
            "not checked: no database connection was given to the selftest, so the \
             server's version is unknown (nor were the read-only role and the space the \
             surface tables need checked); configure the target database and the read-only \
             role, then run the selftest again"
                .into(),
        );
    };
    let (version, num, _) = facts.as_ref().map_err(Clone::clone)?;
    let Some(p) = pg_dump else {
        return Err(format!(
            "not checked: no usable pg_dump (see the pg_dump line); the server is {version}"
        ));
    };
    let major = num / 10_000;
    if p.major >= major {
        Ok(format!(
            "{} version {} can dump server {version}",
            p.path.display(),
            p.version
        ))
    } else {
        Err(format!(
            "{} version {} is older than server {version}; install PostgreSQL {major} client \
             tools and make `pg_config --bindir` (or the configured pg_dump) point at them",
            p.path.display(),
            p.version
        ))
    }
}

fn role_check(pg: &ConnConfig) -> Result<String, String> {
    let mut c = pg
        .connect()
        .map_err(|e| format!("connecting to {}: {e}", pg.redacted()))?;
    let problems = crate::privileges::problems(&mut c).map_err(|e| e.to_string())?;
    if problems.is_empty() {
        Ok(format!(
            "{} reads the surface tables and their sequences and cannot change them",
            pg.user()
        ))
    } else {
        Err(problems.join("; "))
    }
}

/// Server version text, `server_version_num`, and the total size of the surface tables.
fn server_facts(pg: &ConnConfig) -> Result<(String, u32, u64), String> {
    let mut c = pg
        .connect()
        .map_err(|e| format!("connecting to {}: {e}", pg.redacted()))?;
    let row = c
        .query_one(
            "SELECT current_setting('server_version'), current_setting('server_version_num')::int4",
            &[],
        )
        .map_err(|e| format!("reading the server version: {e}"))?;
    let version: String = row.get(0);
    let num: i32 = row.get(1);
    let names: Vec<String> = mutation_surface().iter().map(TableName::quoted).collect();
    let size: i64 = c
        .query_one(
            "SELECT coalesce(sum(pg_catalog.pg_table_size(to_regclass(t))), 0)::int8 \
             FROM unnest($1::text[]) AS t",
            &[&names],
        )
        .map_err(|e| format!("reading the size of the surface tables: {e}"))?
        .get(0);
    Ok((
        version,
        u32::try_from(num).unwrap_or(0),
        u64::try_from(size).unwrap_or(0),
    ))
}
