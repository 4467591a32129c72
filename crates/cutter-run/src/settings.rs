//! Configuration: flags, then `CUTTER_*` variables, then `cutter.toml`, then defaults
//! (for the target: then `DATABASE_URL`, then libpq's `PG*`). Every setting that is not
//! a secret has a `CUTTER_*` variable ([`ENV_VARS`]); pinned values (approver keys, the
//! backup recipient) are the exception: the environment may only repeat them. Each
//! effective value remembers where it came from ([`Source`], `cutter config show`).
//! Unknown keys are errors (a typo must never silently change what a live run does).
//! Secrets are never accepted in the file or on the command line: passwords come from
//! `.pgpass` or libpq's environment, passphrases from an environment variable or a file.

use std::path::{Path, PathBuf};

use serde::Deserialize;

use crate::error::{Error, Result};

/// The commented template `cutter init` writes.
pub const TEMPLATE: &str = r#"# cutter configuration.
# Precedence: command-line flags, then CUTTER_* variables, then this file, then defaults
# (`cutter config show` prints each effective setting and where it came from).
# Unknown keys are errors. Never put a password or passphrase in this file:
# database passwords come from ~/.pgpass (or PGPASSFILE / PGPASSWORD), the backup
# key's passphrase from CUTTER_BACKUP_PASSPHRASE or [backup].passphrase_file.
# Relative paths are relative to this file's directory.

# Where runs, backups, rollback snapshots and locks live (env CUTTER_STATE_DIR).
state_dir = "."

[database]
# libpq URL or keyword string of the target (env CUTTER_DATABASE_URL). DATABASE_URL and
# libpq's PG* variables are used only when this is not set.
# url = "postgres://cutter_exec@db.example.org:5432/production?sslmode=verify-full"
# The schema owner, for `cutter db upgrade|install` only (env CUTTER_OWNER_URL); never the
# writer's role. Its password comes from ~/.pgpass like the writer's.
# owner_url = "postgres://cutter_owner@db.example.org:5432/production?sslmode=verify-full"
# The read-only role that re-reads units in write_verify and runs pg_dump.
verify_user = "cutter_verify"
# (env CUTTER_VERIFY_USER)
# Per-statement limits, in milliseconds (0 = no limit; env CUTTER_STATEMENT_TIMEOUT_MS,
# CUTTER_LOCK_TIMEOUT_MS).
statement_timeout_ms = 0
lock_timeout_ms = 10000

[backup]
# Fingerprint the backup recipient key must have. Required. BACKUP_GPG_FPR (the seed's
# name) may repeat it; if both are set and differ, every command refuses.
# recipient_fingerprint = "0123456789ABCDEF0123456789ABCDEF01234567"
# The recipient's public key (armored or binary), e.g. from `gpg --export --armor`.
# recipient_key = "keys/backup.pub.asc"
# Fingerprint of the key that signs every backup manifest. Required: `backup verify`,
# the restore proof and the dry-run's clone trust a manifest (artifact sha256 and size,
# tables, counts, digests, snapshot, versions, run id, database) only when this key
# signed it, since anyone with the recipient's public key can encrypt an artifact.
# signing_fingerprint = "89ABCDEF0123456789ABCDEF0123456789ABCDEF"
# Where backups are taken: the signing key's secret key file (mode 0600; a key that
# can sign, e.g. `gpg --quick-gen-key 'cutter backups' ed25519 sign never`, exported
# with `gpg --export-secret-keys --armor`). CUTTER_BACKUP_SIGNING_KEY may repeat it; if
# both are set and name different files, every command refuses. A protected key takes
# its passphrase from CUTTER_BACKUP_SIGNING_PASSPHRASE.
# signing_key = "keys/backup-signing.sec.asc"
# For restore proofs only: the secret key and a file holding its passphrase (both
# mode 0600: a secret file group or others can read is refused, as libpq refuses a
# loose ~/.pgpass).
# secret_key = "keys/backup.sec.asc"
# passphrase_file = "keys/backup.passphrase"
# The directory holding pg_dump and pg_restore (env CUTTER_PG_BINDIR), e.g.
# /usr/lib/postgresql/15/bin. Unset: asked from `pg_config --bindir`.
# pg_bindir = "/usr/lib/postgresql/15/bin"
# Backups form chains: a full backup, then increments holding only what changed since
# the previous one (docs/design/incremental-backup.md). A full backup is taken every
# this many runs (env CUTTER_BACKUP_FULL_EVERY; 1: always full), and whenever the
# database cannot show that an increment is complete.
full_every = 20

[approvals]
# Who may approve is the database's approver registry (`cutter approvers list`), kept
# by the schema owner. This list of public keys may only narrow it: a key here that the
# registry does not hold is refused. Empty: every registered approver. Two distinct
# approvers must sign every live run. CUTTER_APPROVER_KEYS may only repeat this list.
approver_keys = []
# The longest an approval stays valid (1 to 168 hours; env CUTTER_VALIDITY_HOURS):
# statements written by `cutter approve` expire after it, and the gate refuses any
# that expire later.
validity_hours = 24

[run]
# Recorded as the actor of every unit and ledger row (env CUTTER_ACTOR).
actor = "cutter"
# When a live run proves its own pre-write backup (env CUTTER_PROVE_BACKUP):
# "before-write" restores it into a throwaway cluster between pre_write_backup and
# cut_leg_a (the increment proof for an increment, the full proof for a full backup)
# and writes nothing if that fails; "after-run" proves it after the run; "off" never.
# Default: "before-write" when [backup] secret_key is set, else "off". Proving on the
# run's host needs the backup's SECRET key there: whoever reads this host can then
# decrypt every backup. Keep "off" (and the secret key elsewhere) to prove backups
# on another host with `cutter backup restore-proof`.
# prove_backup = "before-write"

[report]
# Fingerprint of the operator's report key: `cutter report --sign` signs report.json
# with it, `cutter report verify` accepts only its signature.
# signing_fingerprint = "FEDCBA9876543210FEDCBA9876543210FEDCBA98"
# The report key's secret key file (mode 0600), for `--sign`. CUTTER_REPORT_SIGNING_KEY
# may repeat it; if both are set and name different files, every command refuses. A
# protected key takes its passphrase from CUTTER_REPORT_SIGNING_PASSPHRASE.
# signing_key = "keys/report-signing.sec.asc"
"#;

/// `[database]`.
#[derive(Debug, Default, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DatabaseSection {
    /// Target URL or keyword string.
    pub url: Option<String>,
    /// The schema owner's URL or keyword string (`cutter db`).
    pub owner_url: Option<String>,
    /// The read-only role.
    pub verify_user: Option<String>,
    /// Milliseconds.
    pub statement_timeout_ms: Option<u64>,
    /// Milliseconds.
    pub lock_timeout_ms: Option<u64>,
}

/// `[backup]`.
#[derive(Debug, Default, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BackupSection {
    /// The pin.
    pub recipient_fingerprint: Option<String>,
    /// Public key file.
    pub recipient_key: Option<PathBuf>,
    /// The manifest signing key's pin.
    pub signing_fingerprint: Option<String>,
    /// The manifest signing key's secret key file.
    pub signing_key: Option<PathBuf>,
    /// Secret key file (restore proofs).
    pub secret_key: Option<PathBuf>,
    /// File holding the secret key's passphrase.
    pub passphrase_file: Option<PathBuf>,
    /// The directory holding pg_dump and pg_restore.
    pub pg_bindir: Option<PathBuf>,
    /// A full backup every this many links of a chain.
    pub full_every: Option<u64>,
}

/// `[approvals]`.
#[derive(Debug, Default, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ApprovalsSection {
    /// Approver public keys.
    #[serde(default)]
    pub approver_keys: Vec<PathBuf>,
    /// Validity of new statements.
    pub validity_hours: Option<u64>,
}

/// `[report]`.
#[derive(Debug, Default, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ReportSection {
    /// The report key's pin.
    pub signing_fingerprint: Option<String>,
    /// The report key's secret key file.
    pub signing_key: Option<PathBuf>,
}

/// `[run]`.
#[derive(Debug, Default, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RunSection {
    /// Actor recorded on rows.
    pub actor: Option<String>,
    /// When a live run proves its own backup.
    pub prove_backup: Option<String>,
}

/// The file, as parsed.
#[derive(Debug, Default, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FileConfig {
    /// State directory.
    pub state_dir: Option<PathBuf>,
    /// `[database]`.
    #[serde(default)]
    pub database: DatabaseSection,
    /// `[backup]`.
    #[serde(default)]
    pub backup: BackupSection,
    /// `[approvals]`.
    #[serde(default)]
    pub approvals: ApprovalsSection,
    /// `[run]`.
    #[serde(default)]
    pub run: RunSection,
    /// `[report]`.
    #[serde(default)]
    pub report: ReportSection,
}

/// Effective settings after file, environment and flags.
#[derive(Debug, Clone)]
pub struct Settings {
    /// Where the config came from, if a file was read.
    pub config_path: Option<PathBuf>,
    /// State directory, if known.
    pub state_dir: Option<PathBuf>,
    /// Explicit target URL / keyword string (else libpq env).
    pub database_url: Option<String>,
    /// The schema owner's URL / keyword string, for `cutter db`.
    pub owner_url: Option<String>,
    /// Read-only role.
    pub verify_user: String,
    /// Milliseconds, 0 = none.
    pub statement_timeout_ms: u64,
    /// Milliseconds, 0 = none.
    pub lock_timeout_ms: u64,
    /// Backup pin.
    pub backup_fingerprint: Option<String>,
    /// Backup public key.
    pub backup_key: Option<PathBuf>,
    /// The manifest signing key's pin (`[backup].signing_fingerprint`).
    pub backup_signing_fingerprint: Option<String>,
    /// The manifest signing key's secret key file.
    pub backup_signing_key: Option<PathBuf>,
    /// Backup secret key.
    pub backup_secret_key: Option<PathBuf>,
    /// Passphrase file.
    pub backup_passphrase_file: Option<PathBuf>,
    /// Approver keys.
    pub approver_keys: Vec<PathBuf>,
    /// Validity of new statements.
    pub validity_hours: u64,
    /// Actor.
    pub actor: String,
    /// The directory holding pg_dump and pg_restore (`None`: `pg_config --bindir`).
    pub pg_bindir: Option<PathBuf>,
    /// The report key's pin (`[report].signing_fingerprint`).
    pub report_signing_fingerprint: Option<String>,
    /// The report key's secret key file (`[report].signing_key`).
    pub report_signing_key: Option<PathBuf>,
    /// A full backup every this many links of a backup chain (≥ 1).
    pub backup_full_every: u32,
    /// When a live run proves its own backup (`[run] prove_backup`; default
    /// `before-write` with a backup secret key, else `off`).
    pub prove_backup: cutter_core::ProveBackup,
    /// Where each setting came from, by its config-file key, in the file's order.
    pub sources: Vec<(&'static str, Source)>,
}

/// Where an effective setting came from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Source {
    /// A command-line flag (`--state-dir`).
    Flag(&'static str),
    /// An environment variable (`CUTTER_ACTOR`, `DATABASE_URL`).
    Env(&'static str),
    /// A key of the config file.
    File {
        /// The file.
        path: PathBuf,
        /// `[section] key`, e.g. `[database] verify_user`.
        key: &'static str,
    },
    /// Not set anywhere: the default (or nothing).
    Default,
}

impl std::fmt::Display for Source {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Source::Flag(flag) => write!(f, "flag {flag}"),
            Source::Env(var) => write!(f, "env {var}"),
            Source::File { path, key } => write!(f, "{} {key}", path.display()),
            Source::Default => f.write_str("default"),
        }
    }
}

/// The `CUTTER_*` variable of every setting that is not a secret, by config-file key.
/// Pinned values have none that could replace them: `BACKUP_GPG_FPR` and
/// `CUTTER_APPROVER_KEYS` may only repeat the file's pins.
pub const ENV_VARS: &[(&str, &str)] = &[
    ("state_dir", "CUTTER_STATE_DIR"),
    ("[database] url", "CUTTER_DATABASE_URL"),
    ("[database] owner_url", "CUTTER_OWNER_URL"),
    ("[database] verify_user", "CUTTER_VERIFY_USER"),
    (
        "[database] statement_timeout_ms",
        "CUTTER_STATEMENT_TIMEOUT_MS",
    ),
    ("[database] lock_timeout_ms", "CUTTER_LOCK_TIMEOUT_MS"),
    ("[backup] recipient_key", "CUTTER_BACKUP_KEY"),
    ("[backup] secret_key", "CUTTER_BACKUP_SECRET_KEY"),
    ("[backup] passphrase_file", "CUTTER_BACKUP_PASSPHRASE_FILE"),
    ("[backup] pg_bindir", "CUTTER_PG_BINDIR"),
    ("[backup] full_every", "CUTTER_BACKUP_FULL_EVERY"),
    ("[approvals] validity_hours", "CUTTER_VALIDITY_HOURS"),
    ("[run] actor", "CUTTER_ACTOR"),
    ("[run] prove_backup", "CUTTER_PROVE_BACKUP"),
];

/// The environment variable of config key `key` (one of [`ENV_VARS`]).
fn env_var(key: &str) -> &'static str {
    ENV_VARS
        .iter()
        .find(|(k, _)| *k == key)
        .map(|(_, v)| *v)
        .unwrap_or_else(|| unreachable!("{key} has no CUTTER_* variable in ENV_VARS"))
}

/// Picks each setting from its layers (flag, `CUTTER_*` variable, file, default) and
/// records where it came from.
struct Layers<'a> {
    env: &'a dyn Fn(&str) -> Option<String>,
    file: Option<PathBuf>,
    base: PathBuf,
    sources: Vec<(&'static str, Source)>,
}

impl Layers<'_> {
    /// The variable's value, blank counting as unset.
    fn var(&self, var: &str) -> Option<String> {
        (self.env)(var).filter(|v| !v.trim().is_empty())
    }

    /// The first of `flag`, the key's `CUTTER_*` variable (through `parse`) and `file`.
    fn pick<T>(
        &mut self,
        key: &'static str,
        flag: Option<(&'static str, T)>,
        parse: impl Fn(&str) -> std::result::Result<T, String>,
        file: Option<T>,
    ) -> Result<Option<T>> {
        let var = env_var(key);
        let (value, source) = if let Some((name, v)) = flag {
            (Some(v), Source::Flag(name))
        } else if let Some(text) = self.var(var) {
            let v = parse(&text)
                .map_err(|problem| Error::Usage(format!("{var}={text:?}: {problem}")))?;
            (Some(v), Source::Env(var))
        } else if let Some(v) = file {
            (Some(v), self.file_source(key))
        } else {
            (None, Source::Default)
        };
        self.sources.push((key, source));
        Ok(value)
    }

    /// A text setting.
    fn text(
        &mut self,
        key: &'static str,
        flag: Option<(&'static str, String)>,
        file: Option<String>,
    ) -> Result<Option<String>> {
        self.pick(key, flag, |t| Ok(t.to_owned()), file)
    }

    /// A path setting; the file's relative paths are relative to its directory.
    fn path(
        &mut self,
        key: &'static str,
        flag: Option<(&'static str, PathBuf)>,
        file: Option<PathBuf>,
    ) -> Result<Option<PathBuf>> {
        let file = file.map(|p| resolve(&self.base, p));
        self.pick(key, flag, |t| Ok(PathBuf::from(t)), file)
    }

    /// A whole number.
    fn number(&mut self, key: &'static str, file: Option<u64>) -> Result<Option<u64>> {
        self.pick(
            key,
            None,
            |t| {
                t.trim()
                    .parse::<u64>()
                    .map_err(|_| "expected a whole number".to_owned())
            },
            file,
        )
    }

    fn file_source(&self, key: &'static str) -> Source {
        Source::File {
            path: self
                .file
                .clone()
                .unwrap_or_else(|| PathBuf::from("cutter.toml")),
            key,
        }
    }

    /// Records (or replaces) a source decided outside [`Layers::pick`].
    /// A signing key's pin (file only: no variable replaces a pin) and its secret key
    /// file (the file's, else `env_key`'s; both set and different: refused), each
    /// recorded with its source.
    fn signing_key(
        &mut self,
        (fpr_key, key_key): (&'static str, &'static str),
        (fpr, key): (Option<String>, Option<PathBuf>),
        env_key: &'static str,
    ) -> Result<(Option<String>, Option<PathBuf>)> {
        let fpr = fpr.filter(|v| !v.trim().is_empty());
        let from_file = key.is_some();
        let key = pinned_file(
            &key_key.replacen(' ', ".", 1),
            key.map(|p| resolve(&self.base, p)),
            env_key,
            (self.env)(env_key)
                .filter(|v| !v.trim().is_empty())
                .map(PathBuf::from),
        )?;
        let fpr_source = if fpr.is_some() {
            self.file_source(fpr_key)
        } else {
            Source::Default
        };
        self.record(fpr_key, fpr_source);
        let key_source = if from_file {
            self.file_source(key_key)
        } else if key.is_some() {
            Source::Env(env_key)
        } else {
            Source::Default
        };
        self.record(key_key, key_source);
        Ok((fpr, key))
    }

    fn record(&mut self, key: &'static str, source: Source) {
        match self.sources.iter_mut().find(|(k, _)| *k == key) {
            Some(entry) => entry.1 = source,
            None => self.sources.push((key, source)),
        }
    }
}

/// Flags that override the file and environment.
#[derive(Debug, Default, Clone)]
pub struct Overrides {
    /// `--config`.
    pub config: Option<PathBuf>,
    /// `--state-dir`.
    pub state_dir: Option<PathBuf>,
    /// `--database-url`.
    pub database_url: Option<String>,
}

/// Refuses a connection string that carries a password where secrets are not allowed.
pub fn refuse_password(where_: &str, url: &str) -> Result<()> {
    // libpq's own parsing decides; a string it cannot parse is reported when it is used.
    if cutter_pg::ConnConfig::string_has_password(url).unwrap_or(false) {
        return Err(Error::Usage(format!(
            "{where_} contains a password; secrets are never accepted there: put it in ~/.pgpass (mode 0600) or PGPASSFILE"
        )));
    }
    Ok(())
}

/// A pinned value (a fingerprint) that the config file and the environment may both
/// give: the environment never replaces the file's value; where both are set they must
/// name the same thing (compared without case and spaces), or the command refuses.
fn pinned_value(
    file_key: &str,
    from_file: Option<String>,
    env_key: &str,
    from_env: Option<String>,
) -> Result<Option<String>> {
    let norm = |v: &str| -> String {
        v.chars()
            .filter(|c| !c.is_whitespace())
            .collect::<String>()
            .to_ascii_uppercase()
    };
    let from_file = from_file.filter(|v| !v.trim().is_empty());
    let from_env = from_env.filter(|v| !v.trim().is_empty());
    match (from_file, from_env) {
        (Some(f), Some(e)) if norm(&f) != norm(&e) => Err(Error::Refused(format!(
            "{file_key} pins {f} but {env_key} says {e}: a pinned value is never replaced from the \
             environment; unset {env_key} or make both name the same key"
        ))),
        (Some(f), _) => Ok(Some(f)),
        (None, e) => Ok(e),
    }
}

/// `CUTTER_APPROVER_KEYS` may repeat the approvers the config file pins, never replace
/// or widen them: otherwise whoever runs cutter could approve their own run with two
/// keys of their own.
fn pinned_approvers(from_file: &[PathBuf], from_env: &[PathBuf]) -> Result<()> {
    let canon = |ps: &[PathBuf]| -> std::collections::BTreeSet<PathBuf> {
        ps.iter()
            .map(|p| std::fs::canonicalize(p).unwrap_or_else(|_| p.clone()))
            .collect()
    };
    let (file, env) = (canon(from_file), canon(from_env));
    if file == env {
        return Ok(());
    }
    let extra: Vec<String> = env
        .difference(&file)
        .map(|p| p.display().to_string())
        .collect();
    Err(Error::Refused(format!(
        "CUTTER_APPROVER_KEYS names approver keys that [approvals].approver_keys does not pin{}: \
         the approvers are never replaced or widened from the environment; unset \
         CUTTER_APPROVER_KEYS",
        if extra.is_empty() {
            String::new()
        } else {
            format!(" ({})", extra.join(", "))
        }
    )))
}

/// A pinned key file that the config file and the environment may both give: where
/// both are set they must name the same file (compared after resolving links), or the
/// command refuses; the environment alone may give it.
fn pinned_file(
    file_key: &str,
    from_file: Option<PathBuf>,
    env_key: &str,
    from_env: Option<PathBuf>,
) -> Result<Option<PathBuf>> {
    let canon = |p: &Path| std::fs::canonicalize(p).unwrap_or_else(|_| p.to_path_buf());
    match (from_file, from_env) {
        (Some(f), Some(e)) if canon(&f) != canon(&e) => Err(Error::Refused(format!(
            "{file_key} names {} but {env_key} says {}: a pinned key is never replaced from \
             the environment; unset {env_key} or make both name the same file",
            f.display(),
            e.display()
        ))),
        (Some(f), _) => Ok(Some(f)),
        (None, e) => Ok(e),
    }
}

fn resolve(base: &Path, p: PathBuf) -> PathBuf {
    if p.is_absolute() {
        p
    } else if p == Path::new(".") {
        base.to_path_buf()
    } else {
        base.join(p)
    }
}

impl Settings {
    /// Loads settings: each from its flag, else its `CUTTER_*` variable (`env`), else
    /// the config file (`--config`, else `CUTTER_CONFIG`, else the `cutter.toml` of the
    /// state directory given by `--state-dir` or `CUTTER_STATE_DIR`; never a file that
    /// merely lies in the current directory), else its default. The target:
    /// `--database-url`, else `CUTTER_DATABASE_URL`, else the file's `[database] url`;
    /// only then the generic `DATABASE_URL` (and, when connecting, libpq's `PG*`), so a
    /// variable left in the shell never redirects a configured target.
    pub fn load(flags: &Overrides, env: &dyn Fn(&str) -> Option<String>) -> Result<Settings> {
        let path = flags
            .config
            .clone()
            .or_else(|| env("CUTTER_CONFIG").map(PathBuf::from))
            .or_else(|| {
                flags
                    .state_dir
                    .clone()
                    .or_else(|| env("CUTTER_STATE_DIR").map(PathBuf::from))
                    .map(|d| d.join("cutter.toml"))
                    .filter(|p| p.is_file())
            });
        let (file, base) = match &path {
            Some(p) => {
                let text = std::fs::read_to_string(p).map_err(|e| Error::io(p, e))?;
                let file: FileConfig = toml::from_str(&text)
                    .map_err(|e| Error::Usage(format!("{}: {e}", p.display())))?;
                let base = p.parent().map(Path::to_path_buf).unwrap_or_default();
                let base = if base.as_os_str().is_empty() {
                    PathBuf::from(".")
                } else {
                    base
                };
                (file, base)
            }
            None => (FileConfig::default(), PathBuf::from(".")),
        };
        if let Some(u) = &file.database.url {
            refuse_password(
                &format!(
                    "[database].url in {}",
                    path.as_deref()
                        .unwrap_or(Path::new("cutter.toml"))
                        .display()
                ),
                u,
            )?;
        }
        if let Some(u) = &file.database.owner_url {
            refuse_password("[database].owner_url", u)?;
        }
        if let Some(u) = &flags.database_url {
            refuse_password("--database-url", u)?;
        }
        let mut l = Layers {
            env,
            file: path.clone(),
            base,
            sources: Vec::new(),
        };
        let config_source = if flags.config.is_some() {
            Source::Flag("--config")
        } else if env("CUTTER_CONFIG").is_some() {
            Source::Env("CUTTER_CONFIG")
        } else {
            // The state directory's cutter.toml, or none.
            Source::Default
        };
        l.record("config", config_source);
        let state_dir = l.path(
            "state_dir",
            flags.state_dir.clone().map(|d| ("--state-dir", d)),
            file.state_dir.clone(),
        )?;
        let cutter_url = l.var("CUTTER_DATABASE_URL");
        if let Some(u) = &cutter_url {
            refuse_password("CUTTER_DATABASE_URL", u)?;
        }
        let database_url = match l.text(
            "[database] url",
            flags.database_url.clone().map(|u| ("--database-url", u)),
            file.database.url.clone(),
        )? {
            Some(u) => Some(u),
            // Only then the generic DATABASE_URL (and, when connecting, libpq's PG*).
            None => {
                let u = l.var("DATABASE_URL");
                if u.is_some() {
                    l.record("[database] url", Source::Env("DATABASE_URL"));
                }
                u
            }
        };
        let owner_url = l.text(
            "[database] owner_url",
            None,
            file.database.owner_url.clone(),
        )?;
        if let Some(u) = &owner_url {
            refuse_password("the owner URL", u)?;
        }
        let verify_user = l
            .text(
                "[database] verify_user",
                None,
                file.database.verify_user.clone(),
            )?
            .unwrap_or_else(|| "cutter_verify".into());
        let statement_timeout_ms = l
            .number(
                "[database] statement_timeout_ms",
                file.database.statement_timeout_ms,
            )?
            .unwrap_or(0);
        let lock_timeout_ms = l
            .number("[database] lock_timeout_ms", file.database.lock_timeout_ms)?
            .unwrap_or(10_000);
        let backup_fingerprint = pinned_value(
            "[backup].recipient_fingerprint",
            file.backup.recipient_fingerprint.clone(),
            "BACKUP_GPG_FPR",
            env("BACKUP_GPG_FPR"),
        )?;
        let fingerprint_source = if file.backup.recipient_fingerprint.is_some() {
            l.file_source("[backup] recipient_fingerprint")
        } else if backup_fingerprint.is_some() {
            Source::Env("BACKUP_GPG_FPR")
        } else {
            Source::Default
        };
        l.record("[backup] recipient_fingerprint", fingerprint_source);
        let backup_key = l.path(
            "[backup] recipient_key",
            None,
            file.backup.recipient_key.clone(),
        )?;
        let backup_secret_key =
            l.path("[backup] secret_key", None, file.backup.secret_key.clone())?;
        let backup_passphrase_file = l.path(
            "[backup] passphrase_file",
            None,
            file.backup.passphrase_file.clone(),
        )?;
        let pg_bindir = l.path("[backup] pg_bindir", None, file.backup.pg_bindir.clone())?;
        let (backup_signing_fingerprint, backup_signing_key) = l.signing_key(
            ("[backup] signing_fingerprint", "[backup] signing_key"),
            (
                file.backup.signing_fingerprint.clone(),
                file.backup.signing_key.clone(),
            ),
            "CUTTER_BACKUP_SIGNING_KEY",
        )?;
        let (report_signing_fingerprint, report_signing_key) = l.signing_key(
            ("[report] signing_fingerprint", "[report] signing_key"),
            (
                file.report.signing_fingerprint.clone(),
                file.report.signing_key.clone(),
            ),
            "CUTTER_REPORT_SIGNING_KEY",
        )?;
        let approver_keys: Vec<PathBuf> = file
            .approvals
            .approver_keys
            .iter()
            .cloned()
            .map(|p| resolve(&l.base, p))
            .collect();
        if let Some(list) = l.var("CUTTER_APPROVER_KEYS") {
            pinned_approvers(
                &approver_keys,
                &std::env::split_paths(&list).collect::<Vec<_>>(),
            )?;
        }
        let approvers_source = if approver_keys.is_empty() {
            Source::Default
        } else {
            l.file_source("[approvals] approver_keys")
        };
        l.record("[approvals] approver_keys", approvers_source);
        let validity_hours = l
            .number("[approvals] validity_hours", file.approvals.validity_hours)?
            .unwrap_or(24);
        let full_every = l
            .number("[backup] full_every", file.backup.full_every)?
            .unwrap_or(20);
        let backup_full_every = u32::try_from(full_every)
            .ok()
            .filter(|n| *n >= 1)
            .ok_or_else(|| {
                Error::Usage(format!(
                    "[backup] full_every is {full_every}: expected a whole number from 1 (every backup full) up"
                ))
            })?;
        let actor = l
            .text("[run] actor", None, file.run.actor.clone())?
            .unwrap_or_else(|| "cutter".into());
        let prove_backup = match &file.run.prove_backup {
            Some(t) => Some(
                cutter_core::ProveBackup::parse(t)
                    .map_err(|e| Error::Usage(format!("[run] prove_backup: {e}")))?,
            ),
            None => None,
        };
        let prove_backup = l
            .pick(
                "[run] prove_backup",
                None,
                cutter_core::ProveBackup::parse,
                prove_backup,
            )?
            .unwrap_or(if backup_secret_key.is_some() {
                cutter_core::ProveBackup::BeforeWrite
            } else {
                cutter_core::ProveBackup::Off
            });
        Ok(Settings {
            config_path: path,
            state_dir,
            database_url,
            owner_url,
            verify_user,
            statement_timeout_ms,
            lock_timeout_ms,
            backup_fingerprint,
            backup_key,
            backup_signing_fingerprint,
            backup_signing_key,
            backup_secret_key,
            backup_passphrase_file,
            approver_keys,
            validity_hours,
            actor,
            pg_bindir,
            report_signing_fingerprint,
            report_signing_key,
            backup_full_every,
            prove_backup,
            sources: l.sources,
        })
    }

    /// Every setting by its config-file key, with its effective value as text (`None`:
    /// not set), in the file's order. Connection strings are as given: they never hold
    /// a password except `DATABASE_URL`'s, which the caller must redact.
    pub fn entries(&self) -> Vec<(&'static str, Option<String>)> {
        let path = |p: &Option<PathBuf>| p.as_ref().map(|p| p.display().to_string());
        vec![
            ("config", path(&self.config_path)),
            ("state_dir", path(&self.state_dir)),
            ("[database] url", self.database_url.clone()),
            ("[database] owner_url", self.owner_url.clone()),
            ("[database] verify_user", Some(self.verify_user.clone())),
            (
                "[database] statement_timeout_ms",
                Some(self.statement_timeout_ms.to_string()),
            ),
            (
                "[database] lock_timeout_ms",
                Some(self.lock_timeout_ms.to_string()),
            ),
            (
                "[backup] recipient_fingerprint",
                self.backup_fingerprint.clone(),
            ),
            ("[backup] recipient_key", path(&self.backup_key)),
            ("[backup] secret_key", path(&self.backup_secret_key)),
            (
                "[backup] passphrase_file",
                path(&self.backup_passphrase_file),
            ),
            ("[backup] pg_bindir", path(&self.pg_bindir)),
            (
                "[backup] full_every",
                Some(self.backup_full_every.to_string()),
            ),
            ("[backup] signing_key", path(&self.backup_signing_key)),
            (
                "[backup] signing_fingerprint",
                self.backup_signing_fingerprint.clone(),
            ),
            ("[report] signing_key", path(&self.report_signing_key)),
            (
                "[report] signing_fingerprint",
                self.report_signing_fingerprint.clone(),
            ),
            (
                "[approvals] approver_keys",
                (!self.approver_keys.is_empty()).then(|| {
                    self.approver_keys
                        .iter()
                        .map(|p| p.display().to_string())
                        .collect::<Vec<_>>()
                        .join(", ")
                }),
            ),
            (
                "[approvals] validity_hours",
                Some(self.validity_hours.to_string()),
            ),
            ("[run] actor", Some(self.actor.clone())),
            ("[run] prove_backup", Some(self.prove_backup.to_string())),
        ]
    }

    /// Where the setting `key` (e.g. `[run] actor`) came from.
    pub fn source(&self, key: &str) -> &Source {
        self.sources
            .iter()
            .find(|(k, _)| *k == key)
            .map_or(&Source::Default, |(_, s)| s)
    }

    /// The state directory, or a usage error saying how to get one.
    pub fn require_state_dir(&self) -> Result<&Path> {
        self.state_dir.as_deref().ok_or_else(|| {
            Error::Usage("no state directory: pass --state-dir, set CUTTER_STATE_DIR, or run `cutter init DIR` and use its cutter.toml".into())
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn no_env(_: &str) -> Option<String> {
        None
    }

    #[test]
    fn template_parses_and_unknown_keys_fail() {
        let f: FileConfig = toml::from_str(TEMPLATE).unwrap();
        assert_eq!(f.database.verify_user.as_deref(), Some("cutter_verify"));
        let err = toml::from_str::<FileConfig>("[database]\nurll = \"x\"\n")
            .unwrap_err()
            .to_string();
        assert!(err.contains("unknown field `urll`"), "{err}");
        assert!(toml::from_str::<FileConfig>("stat_dir = \"x\"\n").is_err());
    }

    #[test]
    fn precedence_file_then_env_then_flags() {
        let d = tempfile::tempdir().unwrap();
        let cfg = d.path().join("cutter.toml");
        std::fs::write(&cfg, "state_dir = \"st\"\n[database]\nurl = \"postgres://file@h/db\"\n[run]\nactor = \"file\"\n").unwrap();
        let flags = Overrides {
            config: Some(cfg.clone()),
            ..Default::default()
        };
        let s = Settings::load(&flags, &no_env).unwrap();
        assert_eq!(s.state_dir.unwrap(), d.path().join("st"));
        assert_eq!(s.database_url.as_deref(), Some("postgres://file@h/db"));
        let env = |k: &str| match k {
            "DATABASE_URL" => Some("postgres://env@h/db".to_string()),
            "CUTTER_ACTOR" => Some("env".to_string()),
            _ => None,
        };
        // A generic DATABASE_URL left in the shell never redirects the configured target…
        let s = Settings::load(&flags, &env).unwrap();
        assert_eq!(s.database_url.as_deref(), Some("postgres://file@h/db"));
        assert_eq!(s.actor, "env");
        // …but cutter's own variable does, and DATABASE_URL serves when nothing is set.
        let cutter_env = |k: &str| match k {
            "CUTTER_DATABASE_URL" => Some("postgres://cutter-env@h/db".to_string()),
            other => env(other),
        };
        let s = Settings::load(&flags, &cutter_env).unwrap();
        assert_eq!(
            s.database_url.as_deref(),
            Some("postgres://cutter-env@h/db")
        );
        let s = Settings::load(&Overrides::default(), &env).unwrap();
        assert_eq!(s.database_url.as_deref(), Some("postgres://env@h/db"));
        let flags = Overrides {
            database_url: Some("postgres://flag@h/db".into()),
            state_dir: Some("/x".into()),
            ..flags
        };
        let s = Settings::load(&flags, &env).unwrap();
        assert_eq!(s.database_url.as_deref(), Some("postgres://flag@h/db"));
        assert_eq!(s.state_dir.unwrap(), PathBuf::from("/x"));
    }

    #[test]
    fn the_environment_never_replaces_or_widens_a_pin() {
        let d = tempfile::tempdir().unwrap();
        let cfg = d.path().join("cutter.toml");
        let (a, b, m) = (
            d.path().join("a.asc"),
            d.path().join("b.asc"),
            d.path().join("m.asc"),
        );
        for k in [&a, &b, &m] {
            std::fs::write(k, "key").unwrap();
        }
        std::fs::write(
            &cfg,
            format!(
                "[backup]\nrecipient_fingerprint = \"0123456789ABCDEF0123456789ABCDEF01234567\"\n[approvals]\napprover_keys = [{:?}, {:?}]\n",
                a.display().to_string(),
                b.display().to_string()
            ),
        )
        .unwrap();
        let flags = Overrides {
            config: Some(cfg.clone()),
            ..Default::default()
        };
        let with = |k: &'static str, v: String| move |x: &str| (x == k).then(|| v.clone());
        // Self-approval: the operator's own two keys through the environment.
        let own = std::env::join_paths([&m, &b])
            .unwrap()
            .into_string()
            .unwrap();
        let e = Settings::load(&flags, &with("CUTTER_APPROVER_KEYS", own)).unwrap_err();
        assert!(matches!(e, Error::Refused(_)), "{e}");
        assert!(e.to_string().contains("m.asc"), "{e}");
        // Repeating the pinned set is allowed.
        let same = std::env::join_paths([&b, &a])
            .unwrap()
            .into_string()
            .unwrap();
        let s = Settings::load(&flags, &with("CUTTER_APPROVER_KEYS", same)).unwrap();
        assert_eq!(s.approver_keys, vec![a.clone(), b.clone()]);
        // The backup recipient: another fingerprint is refused, the same one (any case,
        // spaced) is fine, and the file's value is kept.
        let e = Settings::load(
            &flags,
            &with(
                "BACKUP_GPG_FPR",
                "FFFF456789ABCDEF0123456789ABCDEF01234567".into(),
            ),
        )
        .unwrap_err();
        assert!(matches!(e, Error::Refused(_)), "{e}");
        assert!(e.to_string().contains("BACKUP_GPG_FPR says FFFF"), "{e}");
        let s = Settings::load(
            &flags,
            &with(
                "BACKUP_GPG_FPR",
                "01234567 89abcdef0123456789ABCDEF01234567".into(),
            ),
        )
        .unwrap();
        assert_eq!(
            s.backup_fingerprint.as_deref(),
            Some("0123456789ABCDEF0123456789ABCDEF01234567")
        );
        // Without a file value the seed's variable still works alone.
        let s = Settings::load(
            &Overrides::default(),
            &with(
                "BACKUP_GPG_FPR",
                "0123456789ABCDEF0123456789ABCDEF01234567".into(),
            ),
        )
        .unwrap();
        assert!(s.backup_fingerprint.is_some());
        // The signing key: another file through the environment is refused, naming both;
        // the same file (by another path) is fine; the environment alone gives it.
        let signing = d.path().join("sign.sec.asc");
        let other_signing = d.path().join("other.sec.asc");
        std::fs::write(&signing, "key").unwrap();
        std::fs::write(&other_signing, "key").unwrap();
        std::fs::write(
            &cfg,
            format!(
                "[backup]\nsigning_fingerprint = \"89ABCDEF0123456789ABCDEF0123456789ABCDEF\"\nsigning_key = {:?}\n",
                signing.display().to_string()
            ),
        )
        .unwrap();
        let e = Settings::load(
            &flags,
            &with(
                "CUTTER_BACKUP_SIGNING_KEY",
                other_signing.display().to_string(),
            ),
        )
        .unwrap_err();
        assert!(matches!(e, Error::Refused(_)), "{e}");
        assert!(
            e.to_string().contains("other.sec.asc") && e.to_string().contains("sign.sec.asc"),
            "{e}"
        );
        let same = d.path().join(".").join("sign.sec.asc");
        let s = Settings::load(
            &flags,
            &with("CUTTER_BACKUP_SIGNING_KEY", same.display().to_string()),
        )
        .unwrap();
        assert_eq!(s.backup_signing_key, Some(signing.clone()));
        assert_eq!(
            s.backup_signing_fingerprint.as_deref(),
            Some("89ABCDEF0123456789ABCDEF0123456789ABCDEF")
        );
        let s = Settings::load(
            &Overrides::default(),
            &with("CUTTER_BACKUP_SIGNING_KEY", signing.display().to_string()),
        )
        .unwrap();
        assert_eq!(s.backup_signing_key, Some(signing));
        // And approver keys from the environment alone are refused.
        let e = Settings::load(
            &Overrides::default(),
            &with("CUTTER_APPROVER_KEYS", m.display().to_string()),
        )
        .unwrap_err();
        assert!(matches!(e, Error::Refused(_)), "{e}");
    }

    #[test]
    fn a_config_file_is_read_only_when_named_or_in_the_state_directory() {
        let d = tempfile::tempdir().unwrap();
        std::fs::write(
            d.path().join("cutter.toml"),
            "[database]\nurl = \"postgres://state@h/db\"\n",
        )
        .unwrap();
        // The current directory's cutter.toml is never picked up on its own.
        let cwd = std::env::current_dir().unwrap();
        assert!(!cwd.join("cutter.toml").exists() || cwd != d.path());
        let s = Settings::load(&Overrides::default(), &no_env).unwrap();
        assert_eq!(s.config_path, None);
        // The state directory's is.
        let flags = Overrides {
            state_dir: Some(d.path().to_path_buf()),
            ..Default::default()
        };
        let s = Settings::load(&flags, &no_env).unwrap();
        assert_eq!(s.config_path, Some(d.path().join("cutter.toml")));
        assert_eq!(s.database_url.as_deref(), Some("postgres://state@h/db"));
        let dir = d.path().display().to_string();
        let env = |k: &str| (k == "CUTTER_STATE_DIR").then(|| dir.clone());
        let s = Settings::load(&Overrides::default(), &env).unwrap();
        assert_eq!(s.config_path, Some(d.path().join("cutter.toml")));
    }

    /// The template's keys, set or commented out, as `[section] key`.
    fn template_keys() -> Vec<String> {
        let mut keys = Vec::new();
        let mut section = String::new();
        for line in TEMPLATE.lines() {
            let l = line.trim_start_matches('#').trim();
            if l.starts_with('[') && l.ends_with(']') {
                section = format!("{l} ");
            } else if let Some((k, _)) = l.split_once(" = ") {
                if k.chars().all(|c| c.is_ascii_lowercase() || c == '_') {
                    keys.push(format!("{section}{k}"));
                }
            }
        }
        keys
    }

    #[test]
    fn every_setting_that_is_not_a_pin_has_a_cutter_variable_that_beats_the_file() {
        const PINNED: [&str; 6] = [
            "[backup] recipient_fingerprint",
            "[backup] signing_key",
            "[backup] signing_fingerprint",
            "[approvals] approver_keys",
            "[report] signing_key",
            "[report] signing_fingerprint",
        ];
        let keys = template_keys();
        assert!(keys.len() >= 14, "{keys:?}");
        for k in &keys {
            assert!(
                PINNED.contains(&k.as_str()) || ENV_VARS.iter().any(|(key, _)| key == k),
                "{k} has no CUTTER_* variable in ENV_VARS"
            );
        }
        // A file that sets every one of them.
        let d = tempfile::tempdir().unwrap();
        let cfg = d.path().join("cutter.toml");
        std::fs::write(
            &cfg,
            "state_dir = \"st\"\n[database]\nurl = \"host=file\"\nowner_url = \"host=file-owner\"\n\
             verify_user = \"file_verify\"\nstatement_timeout_ms = 1\nlock_timeout_ms = 2\n\
             [backup]\nrecipient_key = \"r.asc\"\nsecret_key = \"s.asc\"\npassphrase_file = \"p\"\n\
             pg_bindir = \"bin\"\nfull_every = 5\n[approvals]\nvalidity_hours = 3\n[run]\nactor = \"file\"\n\
             prove_backup = \"off\"\n",
        )
        .unwrap();
        let flags = Overrides {
            config: Some(cfg.clone()),
            ..Default::default()
        };
        let from_file = Settings::load(&flags, &no_env).unwrap();
        assert_eq!(from_file.source("config"), &Source::Flag("--config"));
        for (key, var) in ENV_VARS {
            assert_eq!(
                from_file.source(key),
                &Source::File {
                    path: cfg.clone(),
                    key
                },
                "{key}"
            );
            // Its variable replaces the file's value, and says so.
            let value =
                if key.ends_with("_ms") || key.ends_with("_hours") || key.ends_with("_every") {
                    "77"
                } else if key.ends_with("url") {
                    "host=from-env"
                } else if key.ends_with("prove_backup") {
                    "after-run"
                } else {
                    "/from/env"
                };
            let env = |k: &str| (k == *var).then(|| value.to_owned());
            let s = Settings::load(&flags, &env).unwrap();
            assert_eq!(s.source(key), &Source::Env(var), "{key}");
            let shown = s.entries().into_iter().find(|(k, _)| k == key).unwrap().1;
            assert_eq!(shown.as_deref(), Some(value), "{key} from {var}");
        }
        // Nothing set anywhere: defaults.
        let s = Settings::load(&Overrides::default(), &no_env).unwrap();
        assert_eq!(s.source("[run] actor"), &Source::Default);
        assert_eq!(s.source("[database] url"), &Source::Default);
        assert_eq!(s.lock_timeout_ms, 10_000);
        assert_eq!(s.pg_bindir, None);
        // A flag beats the variable.
        let env = |k: &str| (k == "CUTTER_STATE_DIR").then(|| "/env".to_owned());
        let s = Settings::load(
            &Overrides {
                state_dir: Some("/flag".into()),
                ..flags.clone()
            },
            &env,
        )
        .unwrap();
        assert_eq!(s.source("state_dir"), &Source::Flag("--state-dir"));
        // DATABASE_URL is named as the source when it is the one used.
        let env = |k: &str| (k == "DATABASE_URL").then(|| "host=generic".to_owned());
        let s = Settings::load(&Overrides::default(), &env).unwrap();
        assert_eq!(s.source("[database] url"), &Source::Env("DATABASE_URL"));
        // A variable that cannot be read names itself.
        let env = |k: &str| (k == "CUTTER_LOCK_TIMEOUT_MS").then(|| "soon".to_owned());
        let e = Settings::load(&flags, &env).unwrap_err().to_string();
        assert!(e.contains("CUTTER_LOCK_TIMEOUT_MS=\"soon\""), "{e}");
        assert!(e.contains("whole number"), "{e}");
    }

    #[test]
    fn prove_backup_defaults_to_before_write_only_with_a_secret_key() {
        let d = tempfile::tempdir().unwrap();
        let cfg = d.path().join("cutter.toml");
        let load = |text: &str, env: &dyn Fn(&str) -> Option<String>| {
            std::fs::write(&cfg, text).unwrap();
            Settings::load(
                &Overrides {
                    config: Some(cfg.clone()),
                    ..Default::default()
                },
                env,
            )
        };
        let s = load("", &no_env).unwrap();
        assert_eq!(s.prove_backup, cutter_core::ProveBackup::Off);
        assert_eq!(s.source("[run] prove_backup"), &Source::Default);
        let s = load("[backup]\nsecret_key = \"s.asc\"\n", &no_env).unwrap();
        assert_eq!(s.prove_backup, cutter_core::ProveBackup::BeforeWrite);
        let s = load(
            "[backup]\nsecret_key = \"s.asc\"\n[run]\nprove_backup = \"after-run\"\n",
            &no_env,
        )
        .unwrap();
        assert_eq!(s.prove_backup, cutter_core::ProveBackup::AfterRun);
        let e = load("[run]\nprove_backup = \"sometimes\"\n", &no_env)
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("[run] prove_backup") && e.contains("before-write"),
            "{e}"
        );
        let env = |k: &str| (k == "CUTTER_PROVE_BACKUP").then(|| "never".to_owned());
        let e = load("", &env).unwrap_err().to_string();
        assert!(e.contains("CUTTER_PROVE_BACKUP=\"never\""), "{e}");
    }

    #[test]
    fn passwords_are_refused_in_flags_and_file() {
        for bad in [
            "postgres://u:hunter2@h/db",
            "host=h password=hunter2",
            "postgres://u@h/db?password=hunter2",
            // libpq allows spaces around `=` and quoted values.
            "host=h password = hunter2",
            "host=h password='hunter2 x'",
        ] {
            let err = refuse_password("--database-url", bad)
                .unwrap_err()
                .to_string();
            assert!(err.contains("contains a password"), "{err}");
            assert!(!err.contains("hunter2"), "the password leaked: {err}");
        }
        assert!(refuse_password("x", "postgres://u@h:5432/db").is_ok());
        assert!(refuse_password("x", "host=h user=u").is_ok());
    }
}
