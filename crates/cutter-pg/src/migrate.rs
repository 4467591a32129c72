//! The migration runner: takes a database from what it is (empty, the earlier tool's
//! shape, or an older reference version) to the reference schema, version by version,
//! as the schema owner.
//!
//! Invariants: every applied migration is recorded (version, file name, SHA-256 of its
//! text, who, when) in the transaction that applies it, and a recorded checksum that no
//! longer matches the embedded file stops every upgrade; the runner holds an advisory
//! lock, sets `lock_timeout` before any statement, and builds the indexes a migration
//! declares with `-- cutter:concurrent-index` CONCURRENTLY after its transaction,
//! rebuilding one left INVALID by an interrupted build, then validates the `NOT VALID`
//! constraints it declares with `-- cutter:validate-constraint`, each in a statement of
//! its own (SHARE UPDATE EXCLUSIVE: the table stays readable and writable).

use std::fmt;
use std::time::{Duration, Instant};

use postgres::GenericClient;
use serde::Serialize;

use crate::error::{ChangedMigration, Error, PgContext, Result, ServerError};
use crate::schema::{Migration, ADOPTION, EXEC_ROLE, MIGRATIONS, REFERENCE_VERSION, VERIFY_ROLE};

/// `pg_advisory_lock` key of the runner (`"cutterMG"`): one upgrade at a time per
/// database.
pub const MIGRATION_LOCK_KEY: i64 = 0x6375_7474_6572_4d47;

/// The `application_name` of the runner's session.
pub const APPLICATION_NAME: &str = "cutter db upgrade";

/// The marker that opens a section holding one `CREATE INDEX CONCURRENTLY`.
const INDEX_MARKER: &str = "-- cutter:concurrent-index ";

/// The marker of a line naming a constraint added `NOT VALID` and validated after the
/// transaction: `-- cutter:validate-constraint schema.table constraint`.
const VALIDATE_MARKER: &str = "-- cutter:validate-constraint ";

/// A constraint a migration adds `NOT VALID` and validates after its transaction.
#[derive(Clone, PartialEq, Eq, Debug, Serialize)]
pub struct DeferredValidation {
    /// `schema.table`.
    pub table: String,
    /// The constraint's name.
    pub constraint: String,
}

impl DeferredValidation {
    /// The one `ALTER TABLE … VALIDATE CONSTRAINT …` statement.
    pub fn sql(&self) -> String {
        format!(
            "ALTER TABLE {} VALIDATE CONSTRAINT {}",
            self.table, self.constraint
        )
    }
}

/// An index a migration builds CONCURRENTLY, after its transaction.
#[derive(Clone, PartialEq, Eq, Debug, Serialize)]
pub struct ConcurrentIndex {
    /// `schema.index`.
    pub name: String,
    /// The one `CREATE [UNIQUE] INDEX CONCURRENTLY …` statement.
    pub sql: String,
}

impl Migration {
    /// Lower-case hex SHA-256 of the whole file, as recorded in `schema_version`.
    pub fn sha256(&self) -> String {
        cutter_core::Sha256Digest::of(self.sql.as_bytes()).to_hex()
    }

    /// The part applied in one transaction: the text before the first
    /// `-- cutter:concurrent-index` section.
    pub fn transactional_sql(&self) -> &'static str {
        match self.sql.find(INDEX_MARKER) {
            Some(i) => &self.sql[..i],
            None => self.sql,
        }
    }

    /// The constraints validated after the transaction (and after its indexes), in file
    /// order.
    pub fn deferred_validations(&self) -> Vec<DeferredValidation> {
        self.sql
            .lines()
            .filter_map(|l| l.trim_start().strip_prefix(VALIDATE_MARKER))
            .filter_map(|rest| {
                let mut parts = rest.split_whitespace();
                Some(DeferredValidation {
                    table: parts.next()?.to_string(),
                    constraint: parts.next()?.to_string(),
                })
            })
            .collect()
    }

    /// The indexes built CONCURRENTLY after the transaction, in file order.
    pub fn concurrent_indexes(&self) -> Vec<ConcurrentIndex> {
        let mut out = Vec::new();
        let mut rest = match self.sql.find(INDEX_MARKER) {
            Some(i) => &self.sql[i..],
            None => return out,
        };
        while let Some(body) = rest.strip_prefix(INDEX_MARKER) {
            let (name, tail) = body.split_once('\n').unwrap_or((body, ""));
            let end = tail.find(INDEX_MARKER).unwrap_or(tail.len());
            let sql: String = tail[..end]
                .lines()
                .filter(|l| !l.trim_start().starts_with("--"))
                .collect::<Vec<_>>()
                .join("\n")
                .trim()
                .trim_end_matches(';')
                .to_string();
            out.push(ConcurrentIndex {
                name: name.trim().to_string(),
                sql,
            });
            rest = &tail[end..];
        }
        out
    }
}

/// The embedded migration recorded as `version` under `name`, if any. Version 1 has
/// two: the reference install and the adoption of the earlier tool's database.
pub fn embedded(version: i32, name: &str) -> Option<&'static Migration> {
    MIGRATIONS
        .iter()
        .chain(std::iter::once(&ADOPTION))
        .find(|m| m.version == version && m.name == name)
}

/// A row of `cutter_governance.schema_version`.
#[derive(Clone, PartialEq, Eq, Debug, Serialize)]
pub struct AppliedMigration {
    /// Version number.
    pub version: i32,
    /// File name.
    pub name: String,
    /// Recorded SHA-256 of the file.
    pub sha256: String,
    /// When (UTC, ISO 8601).
    pub installed_at: String,
    /// The role that applied it (recorded since V3).
    pub applied_by: Option<String>,
}

/// What the database is, as far as cutter's schema goes.
#[derive(Clone, PartialEq, Eq, Debug, Serialize)]
#[serde(tag = "shape", rename_all = "snake_case")]
pub enum Shape {
    /// No cutter object at all: `cutter db install`.
    Empty,
    /// The earlier tool's database (seeds): tables, functions and roles, no
    /// `schema_version`: adopted by A1.
    Legacy,
    /// Versions recorded in `schema_version`.
    Versioned {
        /// The recorded versions, in order.
        applied: Vec<AppliedMigration>,
    },
    /// Some cutter objects, but neither shape above; every difference is named.
    Unrecognized {
        /// What differs from the earlier tool's shape.
        problems: Vec<String>,
    },
}

impl Shape {
    /// The highest recorded version, if versioned.
    pub fn version(&self) -> Option<i32> {
        match self {
            Shape::Versioned { applied } => applied.iter().map(|a| a.version).max(),
            _ => None,
        }
    }
}

impl fmt::Display for Shape {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Shape::Empty => f.write_str("empty (no cutter schema)"),
            Shape::Legacy => f.write_str("the earlier tool's schema (no recorded version)"),
            Shape::Versioned { .. } => write!(
                f,
                "cutter schema version {} (reference {REFERENCE_VERSION})",
                self.version().unwrap_or(0)
            ),
            Shape::Unrecognized { problems } => write!(
                f,
                "unrecognized: cutter objects exist but {}",
                problems.join("; ")
            ),
        }
    }
}

/// Whether a recorded migration matches this build of cutter.
#[derive(Clone, Copy, PartialEq, Eq, Debug, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Checksum {
    /// Same name and SHA-256 as the embedded file.
    Matches,
    /// The recorded SHA-256 differs from the embedded file of that name.
    Changed,
    /// No embedded migration has this version and name.
    Unknown,
}

/// The recorded migrations that do not match (pure).
pub fn checksum(a: &AppliedMigration) -> Checksum {
    match embedded(a.version, &a.name) {
        Some(m) if m.sha256() == a.sha256 => Checksum::Matches,
        Some(_) => Checksum::Changed,
        None => Checksum::Unknown,
    }
}

/// The migrations still to apply to a database of `shape`, in order; refuses a shape
/// the runner must not touch (pure: no database).
pub fn pending(shape: &Shape) -> Result<Vec<&'static Migration>> {
    match shape {
        Shape::Empty => Ok(MIGRATIONS.iter().collect()),
        Shape::Legacy => Ok(std::iter::once(&ADOPTION)
            .chain(MIGRATIONS.iter().filter(|m| m.version > ADOPTION.version))
            .collect()),
        Shape::Unrecognized { problems } => Err(Error::migration("detecting the schema", Vec::new(), format!(
                "the database has cutter objects but is neither an empty database, the earlier tool's \
                 schema nor a recorded cutter version: {}",
                problems.join("; ")
            ), "compare it with `cutter db status`; cutter will not guess how to change it")),
        Shape::Versioned { applied } => {
            for a in applied {
                match checksum(a) {
                    Checksum::Matches => {}
                    Checksum::Changed => {
                        return Err(Error::MigrationChanged(Box::new(ChangedMigration {
                            version: a.version,
                            name: a.name.clone(),
                            recorded: a.sha256.clone(),
                            embedded: embedded(a.version, &a.name)
                                .map(Migration::sha256)
                                .unwrap_or_default(),
                        })))
                    }
                    Checksum::Unknown => {
                        return Err(Error::migration(format!("checking recorded version {} ({})", a.version, a.name), Vec::new(), format!(
                                "this cutter knows versions 1 to {REFERENCE_VERSION} and no migration {} of version {}",
                                a.name, a.version
                            ), "use the cutter release that applied it (a newer one), never an older one"))
                    }
                }
            }
            let top = shape.version().unwrap_or(0);
            if let Some(gap) = (1..top).find(|v| !applied.iter().any(|a| a.version == *v)) {
                return Err(Error::migration("checking the recorded versions", Vec::new(), format!("version {gap} is not recorded, but version {top} is"), "schema_version was edited by hand; restore it from a backup"));
            }
            Ok(MIGRATIONS.iter().filter(|m| m.version > top).collect())
        }
    }
}

/// Reads the shape of the connected database.
pub fn detect(c: &mut impl GenericClient) -> Result<Shape> {
    let r = c
        .query_one(
            "SELECT to_regclass('cutter_governance.schema_version') IS NOT NULL, \
                    to_regclass('public.information_unit') IS NOT NULL \
                    OR to_regnamespace('cutter_governance') IS NOT NULL \
                    OR to_regnamespace('vocab') IS NOT NULL",
            &[],
        )
        .doing("looking for cutter's schema")?;
    let (versioned, any): (bool, bool) = (r.get(0), r.get(1));
    if versioned {
        let applied = c
            .query(
                "SELECT s.version, s.name, s.sha256, \
                        to_char(s.installed_at AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS\"Z\"'), \
                        to_jsonb(s) ->> 'applied_by' \
                   FROM cutter_governance.schema_version s ORDER BY s.version",
                &[],
            )
            .doing("reading cutter_governance.schema_version")?
            .iter()
            .map(|r| AppliedMigration {
                version: r.get(0),
                name: r.get(1),
                sha256: r.get(2),
                installed_at: r.get(3),
                applied_by: r.get(4),
            })
            .collect();
        return Ok(Shape::Versioned { applied });
    }
    if !any {
        return Ok(Shape::Empty);
    }
    let problems = crate::preflight::legacy_shape_problems(c)?;
    Ok(if problems.is_empty() {
        Shape::Legacy
    } else {
        Shape::Unrecognized { problems }
    })
}

/// The state of an index a migration declares.
#[derive(Clone, Copy, PartialEq, Eq, Debug, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum IndexState {
    /// Present and valid.
    Valid,
    /// Present but INVALID (an interrupted or failed CONCURRENTLY build).
    Invalid,
    /// Absent.
    Missing,
}

/// Reads the state of index `name` (`schema.index`).
pub fn index_state(c: &mut impl GenericClient, name: &str) -> Result<IndexState> {
    let r = c
        .query_opt(
            "SELECT i.indisvalid AND i.indisready FROM pg_catalog.pg_index i \
              WHERE i.indexrelid = to_regclass($1)",
            &[&name],
        )
        .doing(&format!("looking for index {name}"))?;
    Ok(match r {
        None => IndexState::Missing,
        Some(r) if r.get::<_, bool>(0) => IndexState::Valid,
        Some(_) => IndexState::Invalid,
    })
}

/// Whether `v`'s constraint is validated (`None`: it does not exist).
pub fn constraint_validated(
    c: &mut impl GenericClient,
    v: &DeferredValidation,
) -> Result<Option<bool>> {
    let r = c
        .query_opt(
            "SELECT k.convalidated FROM pg_catalog.pg_constraint k \
              WHERE k.conrelid = to_regclass($1) AND k.conname = $2",
            &[&v.table, &v.constraint],
        )
        .doing(&format!(
            "looking for constraint {} on {}",
            v.constraint, v.table
        ))?;
    Ok(r.map(|r| r.get(0)))
}

/// One step of an upgrade.
#[derive(Clone, Debug, Serialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Step {
    /// Apply a migration's transactional part and record it, in one transaction.
    Migration {
        /// Version.
        version: i32,
        /// File name.
        name: &'static str,
        /// SHA-256 recorded.
        sha256: String,
        /// The SQL of the transaction.
        #[serde(skip)]
        sql: &'static str,
    },
    /// Build an index CONCURRENTLY (dropping it first when INVALID).
    Index {
        /// The migration that declares it.
        of: &'static str,
        /// The index.
        index: ConcurrentIndex,
        /// Its state before the step.
        state: IndexState,
    },
    /// Validate a constraint the migration added `NOT VALID`.
    Validate {
        /// The migration that declares it.
        of: &'static str,
        /// The constraint.
        validation: DeferredValidation,
    },
}

impl fmt::Display for Step {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Step::Migration { name, .. } => write!(f, "{name}"),
            Step::Index { of, index, state } => write!(
                f,
                "{} index {} CONCURRENTLY (declared by {of})",
                match state {
                    IndexState::Invalid => "rebuild INVALID",
                    _ => "build",
                },
                index.name
            ),
            Step::Validate { of, validation } => write!(
                f,
                "validate constraint {} on {} (declared by {of})",
                validation.constraint, validation.table
            ),
        }
    }
}

impl Step {
    /// The SQL this step sends, as `--dry-run` prints it.
    pub fn sql(&self, lock_timeout: Duration) -> String {
        let lt = format!("SET lock_timeout = '{}ms';\n", lock_timeout.as_millis());
        match self {
            Step::Migration {
                version,
                name,
                sha256,
                sql,
            } => format!(
                "-- {name}: one transaction\n{lt}BEGIN;\n{}\nINSERT INTO cutter_governance.schema_version (version, name, sha256) VALUES ({version}, '{name}', '{sha256}');\nCOMMIT;\n",
                sql.trim_end()
            ),
            Step::Index { index, state, .. } => {
                let drop = if *state == IndexState::Invalid {
                    format!("DROP INDEX CONCURRENTLY IF EXISTS {};\n", index.name)
                } else {
                    String::new()
                };
                format!(
                    "-- index {}: outside a transaction\n{lt}{drop}{};\n",
                    index.name, index.sql
                )
            }
            Step::Validate { validation, .. } => format!(
                "-- constraint {}: outside a transaction\n{lt}{};\n",
                validation.constraint,
                validation.sql()
            ),
        }
    }
}

/// What an upgrade would do, read from the database.
#[derive(Clone, Debug, Serialize)]
pub struct Plan {
    /// The shape found.
    pub shape: Shape,
    /// The steps, in order: unfinished indexes of applied migrations first, then each
    /// pending migration followed by its indexes.
    pub steps: Vec<Step>,
}

fn migration_step(m: &'static Migration) -> Step {
    Step::Migration {
        version: m.version,
        name: m.name,
        sha256: m.sha256(),
        sql: m.transactional_sql(),
    }
}

/// Reads the database and plans the upgrade; refuses a changed checksum, an unknown
/// version or an unrecognized shape.
pub fn plan(c: &mut impl GenericClient) -> Result<Plan> {
    let shape = detect(c)?;
    plan_for(c, shape)
}

/// [`plan`] for a database whose shape was already [`detect`]ed.
pub fn plan_for(c: &mut impl GenericClient, shape: Shape) -> Result<Plan> {
    let pending = pending(&shape)?;
    let mut steps = Vec::new();
    if let Shape::Versioned { applied } = &shape {
        for a in applied {
            let Some(m) = embedded(a.version, &a.name) else {
                continue;
            };
            for index in m.concurrent_indexes() {
                let state = index_state(c, &index.name)?;
                if state != IndexState::Valid {
                    steps.push(Step::Index {
                        of: m.name,
                        index,
                        state,
                    });
                }
            }
            for validation in m.deferred_validations() {
                if constraint_validated(c, &validation)? != Some(true) {
                    steps.push(Step::Validate {
                        of: m.name,
                        validation,
                    });
                }
            }
        }
    }
    for m in pending {
        steps.push(migration_step(m));
        for index in m.concurrent_indexes() {
            steps.push(Step::Index {
                of: m.name,
                index,
                state: IndexState::Missing,
            });
        }
        for validation in m.deferred_validations() {
            steps.push(Step::Validate {
                of: m.name,
                validation,
            });
        }
    }
    Ok(Plan { shape, steps })
}

/// How to run an upgrade.
#[derive(Clone, Copy, Debug)]
pub struct UpgradeOptions {
    /// `lock_timeout` of every statement: a step that cannot get a lock in this time
    /// gives up (and rolls back) rather than queue production behind it.
    pub lock_timeout: Duration,
    /// Install into an empty database (`db install`); otherwise an empty one is refused.
    pub install: bool,
}

impl Default for UpgradeOptions {
    fn default() -> Self {
        UpgradeOptions {
            lock_timeout: Duration::from_secs(5),
            install: false,
        }
    }
}

/// A step done.
#[derive(Clone, Debug, Serialize)]
pub struct Done {
    /// The step, as [`Step`]'s Display says it.
    pub step: String,
    /// Wall time, milliseconds.
    pub millis: u64,
}

/// What an upgrade did.
#[derive(Clone, Debug, Serialize)]
pub struct UpgradeReport {
    /// The shape before.
    pub from: Shape,
    /// The version after.
    pub to: i32,
    /// The steps done, in order (empty: nothing to do).
    pub done: Vec<Done>,
}

/// Who is connected, and whether that role may change the schema.
fn check_owner(c: &mut impl GenericClient) -> Result<()> {
    let r = c
        .query_one(
            "SELECT current_user::text, \
                    coalesce((SELECT pg_catalog.pg_has_role(current_user, n.nspowner, 'MEMBER') \
                                FROM pg_catalog.pg_namespace n WHERE n.nspname = 'cutter_governance'), true), \
                    coalesce((SELECT pg_catalog.pg_has_role(current_user, k.relowner, 'MEMBER') \
                                FROM pg_catalog.pg_class k WHERE k.oid = to_regclass('public.information_unit')), true), \
                    coalesce((SELECT pg_catalog.pg_get_userbyid(n.nspowner)::text \
                                FROM pg_catalog.pg_namespace n WHERE n.nspname = 'cutter_governance'), '')",
            &[],
        )
        .doing("reading the connected role")?;
    let user: String = r.get(0);
    let (owns_gov, owns_units): (bool, bool) = (r.get(1), r.get(2));
    let owner: String = r.get(3);
    if user == EXEC_ROLE || user == VERIFY_ROLE {
        return Err(Error::NotOwner {
            user,
            why: "it is one of cutter's run roles; the schema is changed only by its owner, \
                  never with the writer's or the verifier's credentials"
                .into(),
        });
    }
    if !owns_gov || !owns_units {
        return Err(Error::NotOwner {
            user,
            why: format!(
                "it is not (a member of) the owner of cutter's tables ({})",
                if owner.is_empty() { "unknown" } else { &owner }
            ),
        });
    }
    Ok(())
}

/// The sessions holding a lock on anything `step` touches, for the lock-timeout message.
fn lock_holders(c: &mut postgres::Client) -> String {
    let rows = c.query(
        "SELECT DISTINCT a.pid, coalesce(a.application_name, ''), coalesce(a.usename::text, ''), \
                l.relation::regclass::text, l.mode \
           FROM pg_catalog.pg_locks l JOIN pg_catalog.pg_stat_activity a ON a.pid = l.pid \
          WHERE l.granted AND l.relation IS NOT NULL AND a.pid <> pg_backend_pid() \
            AND l.relation IN (SELECT k.oid FROM pg_catalog.pg_class k \
                                WHERE k.relnamespace IN ('public'::regnamespace, \
                                      coalesce(to_regnamespace('cutter_governance'), 0)) \
                                  AND k.relkind = 'r') \
          ORDER BY 1 LIMIT 10",
        &[],
    );
    match rows {
        Ok(rows) if !rows.is_empty() => rows
            .iter()
            .map(|r| {
                format!(
                    "pid {} ({:?}, user {}) holds {} on {}",
                    r.get::<_, i32>(0),
                    r.get::<_, String>(1),
                    r.get::<_, String>(2),
                    r.get::<_, String>(4),
                    r.get::<_, String>(3)
                )
            })
            .collect::<Vec<_>>()
            .join("; "),
        _ => "no session holds a table lock now".into(),
    }
}

/// Brings the connected database to the reference schema (see the module doc). `c`
/// must be connected as the schema owner; `progress` hears each step as it starts.
/// On failure the error names the step, what was applied before it (committed), and
/// what to do; running it again continues from there.
pub fn upgrade(
    c: &mut postgres::Client,
    options: &UpgradeOptions,
    progress: &mut dyn FnMut(&Step),
) -> Result<UpgradeReport> {
    check_owner(c)?;
    c.batch_execute(&format!(
        "SET lock_timeout = '{}ms'; SET statement_timeout = 0; \
         SET idle_in_transaction_session_timeout = 0; \
         SET client_connection_check_interval = '1s'; SET application_name = '{APPLICATION_NAME}'",
        options.lock_timeout.as_millis()
    ))
    .doing("setting up the upgrade session")?;
    let locked: bool = c
        .query_one("SELECT pg_try_advisory_lock($1)", &[&MIGRATION_LOCK_KEY])
        .doing("taking the upgrade lock")?
        .get(0);
    if !locked {
        let holder: Option<String> = c
            .query_opt(
                "SELECT format('pid %s (%s, user %s, since %s)', a.pid, a.application_name, a.usename, a.backend_start) \
                   FROM pg_catalog.pg_locks l JOIN pg_catalog.pg_stat_activity a ON a.pid = l.pid \
                  WHERE l.locktype = 'advisory' AND l.granted \
                    AND ((l.classid::bigint << 32) | l.objid::bigint) = $1 LIMIT 1",
                &[&MIGRATION_LOCK_KEY],
            )
            .doing("looking for the upgrade lock's holder")?
            .map(|r| r.get(0));
        return Err(Error::migration(
            "taking the upgrade lock",
            Vec::new(),
            format!(
                "another upgrade holds it: {}",
                holder.unwrap_or_else(|| "a session that just ended".to_string())
            ),
            "wait for it to finish, then run `cutter db status`",
        ));
    }
    let result = run_plan(c, options, progress);
    let _ = c.query_one("SELECT pg_advisory_unlock($1)", &[&MIGRATION_LOCK_KEY]);
    result
}

fn run_plan(
    c: &mut postgres::Client,
    options: &UpgradeOptions,
    progress: &mut dyn FnMut(&Step),
) -> Result<UpgradeReport> {
    let plan = plan(c)?;
    if plan.shape == Shape::Empty && !options.install {
        return Err(Error::migration("detecting the schema", Vec::new(), "the database is empty", "install the schema with `cutter db install` (or point the owner URL at the right database)"));
    }
    if options.install && plan.shape != Shape::Empty {
        return Err(Error::migration("detecting the schema", Vec::new(), format!("the database is not empty: {}", plan.shape), "use `cutter db status` and `cutter db upgrade` for a database that has cutter's schema"));
    }
    let mut done: Vec<Done> = Vec::new();
    for step in &plan.steps {
        progress(step);
        let started = Instant::now();
        let outcome = match step {
            Step::Migration {
                version,
                name,
                sha256,
                sql,
            } => apply_migration(c, *version, name, sha256, sql),
            Step::Index { index, state, .. } => build_index(c, index, *state),
            Step::Validate { validation, .. } => c
                .batch_execute(&validation.sql())
                .doing(&format!("validating {}", validation.constraint)),
        };
        if let Err(e) = outcome {
            let holders = (e.sqlstate() == Some("55P03")).then(|| lock_holders(c));
            return Err(step_error(step, &done, e, holders, options.lock_timeout));
        }
        done.push(Done {
            step: step.to_string(),
            millis: started.elapsed().as_millis() as u64,
        });
    }
    record_applied_by(c, &plan.steps)?;
    let to = crate::schema::installed_version(c)?.unwrap_or(0);
    Ok(UpgradeReport {
        from: plan.shape,
        to,
        done,
    })
}

/// Versions applied before V3 added `applied_by` in this same upgrade get the role that
/// applied them (V3's default records it for every later version).
fn record_applied_by(c: &mut postgres::Client, steps: &[Step]) -> Result<()> {
    let versions: Vec<i32> = steps
        .iter()
        .filter_map(|s| match s {
            Step::Migration { version, .. } => Some(*version),
            Step::Index { .. } | Step::Validate { .. } => None,
        })
        .collect();
    if versions.is_empty() {
        return Ok(());
    }
    let has_column: bool = c
        .query_one(
            "SELECT EXISTS (SELECT 1 FROM pg_catalog.pg_attribute \
                             WHERE attrelid = to_regclass('cutter_governance.schema_version') \
                               AND attname = 'applied_by' AND NOT attisdropped)",
            &[],
        )
        .doing("looking for schema_version.applied_by")?
        .get(0);
    if has_column {
        c.execute(
            "UPDATE cutter_governance.schema_version SET applied_by = current_user \
              WHERE version = ANY($1) AND applied_by IS NULL",
            &[&versions],
        )
        .doing("recording who applied the migrations")?;
    }
    Ok(())
}

fn apply_migration(
    c: &mut postgres::Client,
    version: i32,
    name: &str,
    sha256: &str,
    sql: &str,
) -> Result<()> {
    let mut tx = c.transaction().doing("BEGIN")?;
    tx.batch_execute(sql).doing(&format!("applying {name}"))?;
    tx.execute(
        "INSERT INTO cutter_governance.schema_version (version, name, sha256) VALUES ($1, $2, $3)",
        &[&version, &name, &sha256],
    )
    .doing(&format!("recording {name}"))?;
    tx.commit().doing(&format!("COMMIT of {name}"))
}

fn build_index(c: &mut postgres::Client, index: &ConcurrentIndex, state: IndexState) -> Result<()> {
    if state == IndexState::Invalid {
        c.batch_execute(&format!("DROP INDEX CONCURRENTLY IF EXISTS {}", index.name))
            .doing(&format!("dropping the INVALID index {}", index.name))?;
    }
    c.batch_execute(&index.sql)
        .doing(&format!("building index {} CONCURRENTLY", index.name))?;
    match index_state(c, &index.name)? {
        IndexState::Valid => Ok(()),
        other => Err(Error::migration(
            format!("index {}", index.name),
            Vec::new(),
            format!("after its build the index is {other:?}"),
            "run `cutter db upgrade` again",
        )),
    }
}

fn step_error(
    step: &Step,
    done: &[Done],
    e: Error,
    holders: Option<String>,
    lock_timeout: Duration,
) -> Error {
    let applied: Vec<String> = done.iter().map(|d| d.step.clone()).collect();
    let rolled_back = match step {
        Step::Migration { .. } => "its transaction rolled back: nothing of it was applied",
        Step::Index { .. } => {
            "the index may be left INVALID; the next `cutter db upgrade` drops and rebuilds it"
        }
        Step::Validate { .. } => {
            "the constraint stays NOT VALID (still enforced on new rows); the next `cutter db upgrade` validates it"
        }
    };
    match holders {
        Some(holders) => Error::migration(
            step.to_string(),
            applied,
            format!(
                "a lock was not granted within lock_timeout ({} ms), so the step gave up instead of \
                 making production wait behind it; {rolled_back}; {holders}",
                lock_timeout.as_millis()
            ),
            "run `cutter db upgrade` again when that session has finished (or with a larger --lock-timeout-ms)",
        ),
        None => Error::migration(
            step.to_string(),
            applied,
            format!("{rolled_back}; {}", server_text(&e)),
            "fix the cause, then run `cutter db upgrade` again: it continues from this step",
        ),
    }
}

fn server_text(e: &Error) -> String {
    match e.server() {
        Some(s) => ServerError::to_string(s),
        None => e.to_string(),
    }
}

/// A role's privileges on one object of cutter's schemas.
#[derive(Clone, PartialEq, Eq, Debug, Serialize)]
pub struct Grant {
    /// `cutter_exec`, `cutter_verify` or `PUBLIC`.
    pub role: String,
    /// `table public.information_unit`, `function public.fn_iu_enact(bigint,text,text)`, …
    pub object: String,
    /// The privileges held, e.g. `SELECT, INSERT`.
    pub privileges: String,
}

/// What `cutter_exec`, `cutter_verify` and PUBLIC may do on the tables, sequences and
/// functions of `public`, `vocab` and `cutter_governance` (reads only the catalog).
pub fn grants(c: &mut impl GenericClient) -> Result<Vec<Grant>> {
    Ok(c
        .query(
            "WITH r(role, oid) AS ( \
                 SELECT rolname::text, oid FROM pg_catalog.pg_roles WHERE rolname IN ('cutter_exec', 'cutter_verify') \
                 UNION ALL SELECT 'PUBLIC', 0), \
             o(kind, name, oid) AS ( \
                 SELECT CASE k.relkind WHEN 'S' THEN 'sequence' ELSE 'table' END, n.nspname || '.' || k.relname, k.oid \
                   FROM pg_catalog.pg_class k JOIN pg_catalog.pg_namespace n ON n.oid = k.relnamespace \
                  WHERE n.nspname IN ('public', 'vocab', 'cutter_governance') AND k.relkind IN ('r', 'S') \
                 UNION ALL \
                 SELECT 'function', p.oid::regprocedure::text, p.oid FROM pg_catalog.pg_proc p \
                  WHERE p.pronamespace IN (SELECT oid FROM pg_catalog.pg_namespace \
                                            WHERE nspname IN ('public', 'vocab', 'cutter_governance'))), \
             p(kind, priv) AS (VALUES ('table', 'SELECT'), ('table', 'INSERT'), ('table', 'UPDATE'), \
                                      ('table', 'DELETE'), ('table', 'TRUNCATE'), ('sequence', 'SELECT'), \
                                      ('sequence', 'USAGE'), ('sequence', 'UPDATE'), ('function', 'EXECUTE')) \
             SELECT r.role, o.kind || ' ' || o.name, string_agg(p.priv, ', ' ORDER BY p.priv) \
               FROM r CROSS JOIN o JOIN p ON p.kind = o.kind \
              WHERE CASE o.kind \
                      WHEN 'table' THEN CASE WHEN r.oid = 0 \
                           THEN EXISTS (SELECT 1 FROM pg_catalog.pg_class k, aclexplode(k.relacl) a \
                                         WHERE k.oid = o.oid AND a.grantee = 0 AND a.privilege_type = p.priv) \
                           ELSE pg_catalog.has_table_privilege(r.oid, o.oid, p.priv) END \
                      WHEN 'sequence' THEN CASE WHEN r.oid = 0 \
                           THEN EXISTS (SELECT 1 FROM pg_catalog.pg_class k, aclexplode(k.relacl) a \
                                         WHERE k.oid = o.oid AND a.grantee = 0 AND a.privilege_type = p.priv) \
                           ELSE pg_catalog.has_sequence_privilege(r.oid, o.oid, p.priv) END \
                      ELSE CASE WHEN r.oid = 0 \
                           THEN EXISTS (SELECT 1 FROM pg_catalog.pg_proc f, aclexplode(coalesce(f.proacl, acldefault('f', f.proowner))) a \
                                         WHERE f.oid = o.oid AND a.grantee = 0 AND a.privilege_type = p.priv) \
                           ELSE pg_catalog.has_function_privilege(r.oid, o.oid, p.priv) END \
                    END \
              GROUP BY 1, 2 ORDER BY 1, 2",
            &[],
        )
        .doing("reading the roles' grants")?
        .iter()
        .map(|r| Grant {
            role: r.get(0),
            object: r.get(1),
            privileges: r.get(2),
        })
        .collect())
}

/// Every recorded migration whose checksum no longer matches, every unfinished index,
/// and every difference of the schema from the reference: one line each (empty when
/// the database is at the reference and intact).
pub fn validate(c: &mut postgres::Client) -> Result<Vec<String>> {
    let mut findings = Vec::new();
    let shape = detect(c)?;
    match &shape {
        Shape::Versioned { applied } => {
            for a in applied {
                match checksum(a) {
                    Checksum::Matches => {}
                    Checksum::Changed => findings.push(format!(
                        "migration {} (version {}): recorded sha256 {} differs from the file this cutter embeds ({})",
                        a.name,
                        a.version,
                        a.sha256,
                        embedded(a.version, &a.name).map(Migration::sha256).unwrap_or_default()
                    )),
                    Checksum::Unknown => findings.push(format!(
                        "migration {} (version {}): not known to this cutter",
                        a.name, a.version
                    )),
                }
            }
        }
        other => findings.push(format!("schema: {other}")),
    }
    if let Ok(plan) = plan_for(c, shape) {
        for s in plan.steps {
            findings.push(format!("pending: {s}"));
        }
    }
    let report = crate::preflight::preflight(c)?;
    findings.extend(report.findings.iter().map(|f| f.to_string()));
    findings.dedup();
    Ok(findings)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn applied(m: &Migration) -> AppliedMigration {
        AppliedMigration {
            version: m.version,
            name: m.name.to_string(),
            sha256: m.sha256(),
            installed_at: String::new(),
            applied_by: None,
        }
    }

    #[test]
    fn one_name_per_migration_and_versions_in_order() {
        let versions: Vec<i32> = MIGRATIONS.iter().map(|m| m.version).collect();
        assert_eq!(versions, (1..=REFERENCE_VERSION).collect::<Vec<_>>());
        for m in MIGRATIONS.iter().chain([&ADOPTION]) {
            let prefix = if m.version == ADOPTION.version && m.name == ADOPTION.name {
                format!("A{}__", m.version)
            } else {
                format!("V{}__", m.version)
            };
            assert!(m.name.starts_with(&prefix), "{}", m.name);
            assert!(m.name.ends_with(".sql"), "{}", m.name);
        }
    }

    #[test]
    fn concurrent_sections_parse_into_single_index_statements() {
        let idx = ADOPTION.concurrent_indexes();
        let names: Vec<&str> = idx.iter().map(|i| i.name.as_str()).collect();
        assert_eq!(
            names,
            [
                "public.information_unit_change_set",
                "public.iu_lifecycle_log_unit",
                "cutter_governance.cut_change_set_affected_row_cs"
            ]
        );
        for i in MIGRATIONS
            .iter()
            .chain([&ADOPTION])
            .flat_map(|m| m.concurrent_indexes())
        {
            assert!(
                i.sql.starts_with("CREATE INDEX CONCURRENTLY ")
                    || i.sql.starts_with("CREATE UNIQUE INDEX CONCURRENTLY "),
                "{}",
                i.sql
            );
            assert!(!i.sql.contains(';'), "one statement: {}", i.sql);
            let short = i.name.rsplit('.').next().unwrap_or_default();
            assert!(i.sql.contains(&format!(" {short} ON ")), "{}", i.sql);
        }
        let v6 = MIGRATIONS.iter().find(|m| m.version == 6).unwrap();
        assert_eq!(
            v6.deferred_validations(),
            [DeferredValidation {
                table: "public.unit_version".into(),
                constraint: "unit_version_amendment_shape".into(),
            }]
        );
        assert!(v6
            .transactional_sql()
            .contains("ADD CONSTRAINT unit_version_amendment_shape CHECK"));
        assert!(!ADOPTION
            .transactional_sql()
            .lines()
            .any(|l| !l.trim_start().starts_with("--") && l.contains("CONCURRENTLY")));
    }

    #[test]
    fn pending_follows_the_shape() {
        let names = |v: Vec<&Migration>| v.iter().map(|m| m.name).collect::<Vec<_>>();
        assert_eq!(
            names(pending(&Shape::Empty).unwrap()),
            MIGRATIONS.iter().map(|m| m.name).collect::<Vec<_>>()
        );
        let legacy = names(pending(&Shape::Legacy).unwrap());
        assert_eq!(legacy[0], ADOPTION.name);
        assert_eq!(legacy.len(), MIGRATIONS.len());
        let at_v1 = Shape::Versioned {
            applied: vec![applied(&MIGRATIONS[0])],
        };
        assert_eq!(
            names(pending(&at_v1).unwrap()),
            MIGRATIONS[1..].iter().map(|m| m.name).collect::<Vec<_>>()
        );
        let adopted = Shape::Versioned {
            applied: vec![applied(&ADOPTION)],
        };
        assert_eq!(pending(&adopted).unwrap().len(), MIGRATIONS.len() - 1);
        let all = Shape::Versioned {
            applied: MIGRATIONS.iter().map(applied).collect(),
        };
        assert!(pending(&all).unwrap().is_empty());
    }

    #[test]
    fn a_changed_unknown_or_missing_version_is_refused() {
        let mut changed = applied(&MIGRATIONS[0]);
        changed.sha256 = "0".repeat(64);
        let e = pending(&Shape::Versioned {
            applied: vec![changed],
        })
        .unwrap_err();
        assert!(
            matches!(&e, Error::MigrationChanged(c) if c.version == 1),
            "{e}"
        );
        assert!(e.to_string().contains("V1__reference.sql"), "{e}");

        let mut unknown = applied(&MIGRATIONS[0]);
        unknown.version = 99;
        let e = pending(&Shape::Versioned {
            applied: vec![applied(&MIGRATIONS[0]), unknown],
        })
        .unwrap_err()
        .to_string();
        assert!(
            e.contains("no migration V1__reference.sql of version 99"),
            "{e}"
        );

        let e = pending(&Shape::Versioned {
            applied: vec![applied(&MIGRATIONS[1])],
        })
        .unwrap_err()
        .to_string();
        assert!(
            e.contains("version 1 is not recorded, but version 2 is"),
            "{e}"
        );

        let e = pending(&Shape::Unrecognized {
            problems: vec!["table public.unit_version: missing".into()],
        })
        .unwrap_err()
        .to_string();
        assert!(e.contains("table public.unit_version: missing"), "{e}");
    }
}
