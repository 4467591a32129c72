//! Snapshots of the mutation surface: per-table row counts and content digests computed
//! server-side, unit counts by lifecycle status, trigger states, functions present and the
//! system identifier.
//!
//! # Content digest (canonical form)
//!
//! For one table, with its rows in ascending primary key (`id`) order:
//!
//! ```text
//! digest = SHA-256( SHA-256(row_1) ‖ SHA-256(row_2) ‖ … ‖ SHA-256(row_n) )
//! row_i  = UTF-8 bytes of PostgreSQL's text output of the row (`r::text`, record
//!          syntax, columns in table order) without the backup watermark column
//!          (`cutter_xid`, V7: bookkeeping of incremental backups, not content)
//! ```
//!
//! computed under fixed output settings (`TimeZone=UTC`, `DateStyle=ISO, YMD`,
//! `IntervalStyle=postgres`, `extra_float_digits=1`, `bytea_output=hex`), so the same
//! rows give the same digest on any server and in any session — a restored backup can
//! be compared with its source. An empty table's digest is SHA-256 of nothing. Only the
//! 32-byte row digests are aggregated, never the rows themselves, so memory stays at
//! 32 bytes per row on the server (up to ~30 million rows per table).

use std::collections::BTreeMap;

use postgres::GenericClient;
use serde::{Deserialize, Serialize};

use cutter_core::{
    mutation_surface, Sha256Digest, Snapshot, SystemIdentifier, TableName, TableStat,
};

use crate::error::{Error, PgContext, Result};
use crate::ident::quote_table;
use crate::schema::{FUNCTIONS, IMMUTABILITY_TRIGGERS, IMMUTABILITY_TRIGGER_FUNCTION};

/// Sets the output settings of the canonical form for the current transaction.
pub fn set_canonical_output(c: &mut impl GenericClient) -> Result<()> {
    c.batch_execute(
        "SELECT set_config('TimeZone', 'UTC', true), set_config('DateStyle', 'ISO, YMD', true), \
         set_config('IntervalStyle', 'postgres', true), set_config('extra_float_digits', '1', true), \
         set_config('bytea_output', 'hex', true)",
    )
    .doing("setting the canonical output settings")
}

/// The column incremental backups stamp rows with (V7); not part of the canonical form.
pub const WATERMARK_COLUMN: &str = "cutter_xid";

/// The columns of the canonical form of `table`, quoted, in table order: every column
/// but [`WATERMARK_COLUMN`].
pub fn canonical_columns(c: &mut impl GenericClient, table: &TableName) -> Result<Vec<String>> {
    let rows = c
        .query(
            "SELECT quote_ident(a.attname) FROM pg_catalog.pg_attribute a \
              WHERE a.attrelid = $1::text::regclass AND a.attnum > 0 AND NOT a.attisdropped \
                AND a.attname <> $2 ORDER BY a.attnum",
            &[&table.quoted(), &WATERMARK_COLUMN],
        )
        .doing(&format!("reading the columns of {table}"))?;
    Ok(rows.iter().map(|r| r.get(0)).collect())
}

/// `ROW(<alias>.<column>, …)::text`: the canonical row text of rows named `alias`, given
/// their [`canonical_columns`] (for queries that must read the table itself).
pub fn canonical_row_text(columns: &[String], alias: &str) -> String {
    let cols: Vec<String> = columns.iter().map(|c| format!("{alias}.{c}")).collect();
    format!("ROW({})::text", cols.join(", "))
}

/// `(SELECT <columns> FROM <table>)`: the rows of `table` in canonical form, as a
/// subquery whose `r::text` is the canonical row text.
pub fn canonical_rows_sql(table: &TableName, columns: &[String]) -> String {
    format!(
        "(SELECT {} FROM {})",
        columns.join(", "),
        quote_table(table)
    )
}

/// The SQL computing `(count, digest)` of `table` (its canonical `columns`), rows with
/// `id <= $1` when `$1` is not NULL. Call inside a transaction after
/// [`set_canonical_output`].
pub fn table_stat_sql(table: &TableName, columns: &[String]) -> String {
    format!(
        "SELECT count(*), coalesce(sha256(string_agg(sha256(convert_to(r::text, 'UTF8')), ''::bytea ORDER BY r.id)), \
         sha256(''::bytea)) FROM {} AS r WHERE $1::bigint IS NULL OR r.id <= $1::bigint",
        canonical_rows_sql(table, columns)
    )
}

/// Rows and content digest of `table` (rows with `id <= upto` if given). Must run inside
/// a transaction; sets the canonical output settings for it.
pub fn table_stat(
    c: &mut impl GenericClient,
    table: &TableName,
    upto: Option<i64>,
) -> Result<TableStat> {
    set_canonical_output(c)?;
    let columns = canonical_columns(c, table)?;
    let row = c
        .query_one(&table_stat_sql(table, &columns), &[&upto])
        .doing(&format!("computing the content digest of {table}"))?;
    let rows: i64 = row.get(0);
    let digest: Vec<u8> = row.get(1);
    let digest: [u8; 32] = digest.try_into().map_err(|_| Error::Install {
        what: format!("digest of {table}"),
        reason: "sha256() did not return 32 bytes".into(),
    })?;
    Ok(TableStat {
        rows: u64::try_from(rows).unwrap_or(0),
        digest: Sha256Digest::from_bytes(digest),
    })
}

/// The highest `id` of each mutation-surface table (0 when empty): rows that exist before
/// a run are exactly those with `id <=` this mark.
#[derive(Clone, PartialEq, Eq, Debug, Serialize, Deserialize)]
pub struct SurfaceMark {
    /// Max id by table.
    pub max_ids: BTreeMap<TableName, i64>,
}

/// Reads the [`SurfaceMark`].
pub fn surface_mark(c: &mut impl GenericClient) -> Result<SurfaceMark> {
    let mut max_ids = BTreeMap::new();
    for t in mutation_surface() {
        let row = c
            .query_one(
                &format!(
                    "SELECT coalesce(max(id), 0)::bigint FROM {}",
                    quote_table(&t)
                ),
                &[],
            )
            .doing(&format!("reading the highest id of {t}"))?;
        max_ids.insert(t, row.get(0));
    }
    Ok(SurfaceMark { max_ids })
}

/// Rows and digests of the surface tables; with `mark`, only rows with `id <=` the mark.
pub fn surface_stats(
    c: &mut impl GenericClient,
    mark: Option<&SurfaceMark>,
) -> Result<BTreeMap<TableName, TableStat>> {
    let mut out = BTreeMap::new();
    for t in mutation_surface() {
        let upto = mark.map(|m| m.max_ids.get(&t).copied().unwrap_or(0));
        let stat = table_stat(c, &t, upto)?;
        out.insert(t, stat);
    }
    Ok(out)
}

/// The connected server's `system_identifier`.
pub fn system_identifier(c: &mut impl GenericClient) -> Result<SystemIdentifier> {
    let row = c
        .query_one(
            "SELECT system_identifier FROM pg_catalog.pg_control_system()",
            &[],
        )
        .doing("reading the system identifier (pg_control_system())")?;
    let v: i64 = row.get(0);
    // pg_control_system() returns the unsigned identifier as int8; reinterpret the bits
    // so the value equals what pg_controldata prints.
    Ok(SystemIdentifier::new(v as u64))
}

/// The connected database: the server's system identifier, `current_database()` and its
/// OID. What a `cutter-approval/2` statement names.
pub fn target_database(c: &mut impl GenericClient) -> Result<cutter_core::TargetDatabase> {
    let system_identifier = system_identifier(c)?;
    let row = c
        .query_one(
            "SELECT d.datname::text, d.oid::int8 FROM pg_catalog.pg_database d \
              WHERE d.datname = pg_catalog.current_database()",
            &[],
        )
        .doing("reading the database's name and OID")?;
    let oid: i64 = row.get(1);
    Ok(cutter_core::TargetDatabase {
        system_identifier,
        name: row.get(0),
        oid: u32::try_from(oid).unwrap_or(u32::MAX),
    })
}

/// Trigger name → `tgenabled` of the immutability triggers present on their tables.
pub fn trigger_states(c: &mut impl GenericClient) -> Result<BTreeMap<String, String>> {
    let mut out = BTreeMap::new();
    for (name, table) in IMMUTABILITY_TRIGGERS {
        let row = c
            .query_opt(
                "SELECT t.tgenabled::text FROM pg_catalog.pg_trigger t \
                 WHERE t.tgrelid = to_regclass($1) AND t.tgname = $2 AND NOT t.tgisinternal",
                &[&table, &name],
            )
            .doing(&format!("reading the state of trigger {name}"))?;
        if let Some(r) = row {
            out.insert(name.to_string(), r.get(0));
        }
    }
    Ok(out)
}

/// Trigger name → the function it executes, for each immutability trigger that runs
/// anything but [`IMMUTABILITY_TRIGGER_FUNCTION`] (a trigger with the right name and
/// state that runs another function may not protect enacted rows). Empty when both
/// are right; a missing trigger is [`trigger_states`]' business.
pub fn hollow_immutability_triggers(
    c: &mut impl GenericClient,
) -> Result<BTreeMap<String, String>> {
    let mut out = BTreeMap::new();
    for (name, table) in IMMUTABILITY_TRIGGERS {
        let row = c
            .query_opt(
                "SELECT t.tgfoid::regprocedure::text FROM pg_catalog.pg_trigger t \
                 WHERE t.tgrelid = to_regclass($1) AND t.tgname = $2 AND NOT t.tgisinternal \
                   AND t.tgfoid <> coalesce(to_regprocedure($3)::oid, 0)",
                &[&table, &name, &IMMUTABILITY_TRIGGER_FUNCTION],
            )
            .doing(&format!("checking what trigger {name} executes"))?;
        if let Some(r) = row {
            out.insert(name.to_string(), r.get(0));
        }
    }
    Ok(out)
}

/// Function name → present, for the functions of [`FUNCTIONS`].
pub fn functions_present(c: &mut impl GenericClient) -> Result<BTreeMap<String, bool>> {
    let mut out = BTreeMap::new();
    for (name, signature) in FUNCTIONS {
        let present: bool = c
            .query_one("SELECT to_regprocedure($1) IS NOT NULL", &[&signature])
            .doing(&format!("looking for function {signature}"))?
            .get(0);
        out.insert(name.to_string(), present);
    }
    Ok(out)
}

/// `public.information_unit` rows by lifecycle status.
pub fn unit_statuses(c: &mut impl GenericClient) -> Result<BTreeMap<String, u64>> {
    let rows = c
        .query(
            "SELECT lifecycle_status, count(*) FROM public.information_unit GROUP BY 1 ORDER BY 1",
            &[],
        )
        .doing("counting public.information_unit by lifecycle_status")?;
    Ok(rows
        .iter()
        .map(|r| {
            let n: i64 = r.get(1);
            (r.get::<_, String>(0), u64::try_from(n).unwrap_or(0))
        })
        .collect())
}

/// What one change set (one cut) occupies in `public.information_unit`, against
/// everything else.
#[derive(Clone, PartialEq, Eq, Debug, Serialize, Deserialize)]
pub struct ChangeSetFootprint {
    /// The change set's units by lifecycle status.
    pub statuses: BTreeMap<String, u64>,
    /// Units outside the change set.
    pub other_units: u64,
    /// MD5 over every other unit's row, its versions and its lifecycle log (all columns,
    /// timestamps included, in id order): any change to them changes it.
    pub other_digest: String,
}

/// The [`ChangeSetFootprint`] of `change_set`: how compensating a cut can be shown to
/// have touched nothing outside it.
pub fn change_set_footprint(
    c: &mut impl GenericClient,
    change_set: &str,
) -> Result<ChangeSetFootprint> {
    let statuses = c
        .query(
            "SELECT lifecycle_status, count(*) FROM public.information_unit
              WHERE change_set_id = $1 GROUP BY 1 ORDER BY 1",
            &[&change_set],
        )
        .doing("counting a change set's units by lifecycle_status")?
        .iter()
        .map(|r| {
            (
                r.get::<_, String>(0),
                u64::try_from(r.get::<_, i64>(1)).unwrap_or(0),
            )
        })
        .collect();
    let row = c
        .query_one(
            "SELECT count(*), md5(coalesce(string_agg(concat_ws('|', u::text,
                    (SELECT string_agg(v::text, '|' ORDER BY v.id) FROM public.unit_version v
                      WHERE v.information_unit_id = u.id),
                    (SELECT string_agg(l::text, '|' ORDER BY l.id) FROM public.iu_lifecycle_log l
                      WHERE l.information_unit_id = u.id)),
                    '#' ORDER BY u.id), ''))
               FROM public.information_unit u WHERE u.change_set_id IS DISTINCT FROM $1",
            &[&change_set],
        )
        .doing("digesting the units outside a change set")?;
    Ok(ChangeSetFootprint {
        statuses,
        other_units: u64::try_from(row.get::<_, i64>(0)).unwrap_or(0),
        other_digest: row.get(1),
    })
}

/// A full snapshot, read inside the caller's transaction (use a REPEATABLE READ one so
/// the surface tables are read at one instant; [`crate::Target::snapshot`] does).
pub fn snapshot_in(c: &mut impl GenericClient) -> Result<Snapshot> {
    Ok(Snapshot {
        system_identifier: system_identifier(c)?,
        tables: surface_stats(c, None)?,
        unit_statuses: unit_statuses(c)?,
        triggers: trigger_states(c)?,
        functions: functions_present(c)?,
    })
}
