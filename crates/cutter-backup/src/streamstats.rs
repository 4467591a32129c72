//! Per-table row counts and canonical content digests taken from the dump stream itself
//! (see [`crate::rowdigest`]): the archive scanner finds each table's COPY data, and a
//! row digester per table turns it into `cutter-pg`'s canonical digest. Which tables can
//! be digested this way is decided up front from the catalog, read in the dump's own
//! snapshot: the COPY column list must be the table's column list, and every column's
//! text output must not depend on session settings pg_dump does not pin. Any table that
//! does not qualify, or whose stream turns out unusable, is digested on the server.

use std::collections::{BTreeMap, HashMap};

use cutter_core::{SetDigest, TableName};
use postgres::GenericClient;

use crate::archive::{copy_columns, Event, Scanner};
use crate::error::{Error, Result};
use crate::rowdigest::{RowDigest, RowDigester};
use cutter_pg::surface::WATERMARK_COLUMN;

/// Type names (`regtype` text, array suffix removed) whose text output is the same in
/// pg_dump's session (DateStyle ISO, IntervalStyle postgres, extra_float_digits 3,
/// TimeZone UTC through PGTZ) and in the canonical one (see `cutter_pg::surface`).
const SAFE_TYPES: [&str; 18] = [
    "bigint",
    "integer",
    "smallint",
    "boolean",
    "text",
    "character varying",
    "character",
    "name",
    "numeric",
    "json",
    "jsonb",
    "uuid",
    "date",
    "timestamp without time zone",
    "timestamp with time zone",
    "time without time zone",
    "interval",
    "oid",
];
/// Safe from PostgreSQL 12 on (shortest exact output for any extra_float_digits > 0).
const FLOAT_TYPES: [&str; 2] = ["real", "double precision"];

/// Whether a table can be digested from the stream: its column names, or why not.
pub(crate) type Plan = BTreeMap<TableName, std::result::Result<Vec<String>, String>>;

/// Reads the catalog (in the caller's transaction, i.e. the dump's snapshot) and decides
/// which tables can be digested from the stream.
pub(crate) fn plan(
    c: &mut impl GenericClient,
    tables: &[TableName],
    server_version_num: u32,
) -> Result<Plan> {
    let mut out = Plan::new();
    for t in tables {
        let rows = c
            .query(
                "SELECT a.attname::text, \
                        (CASE WHEN ty.typtype = 'd' THEN ty.typbasetype ELSE a.atttypid END)::regtype::text, \
                        a.attgenerated::text \
                 FROM pg_catalog.pg_attribute a \
                 JOIN pg_catalog.pg_type ty ON ty.oid = a.atttypid \
                 WHERE a.attrelid = $1::text::regclass AND a.attnum > 0 AND NOT a.attisdropped \
                 ORDER BY a.attnum",
                &[&t.quoted()],
            )
            .map_err(|e| Error::sql(format!("reading the columns of {t}"), e))?;
        let mut names = Vec::with_capacity(rows.len());
        let mut why_not = None;
        for (i, r) in rows.iter().enumerate() {
            let name: String = r.get(0);
            let ty: String = r.get(1);
            let generated: String = r.get(2);
            let base = ty.strip_suffix("[]").unwrap_or(&ty);
            // The backup watermark is not part of the canonical form: skipped, if last.
            let watermark = name == WATERMARK_COLUMN && i + 1 == rows.len();
            let safe = watermark
                || SAFE_TYPES.contains(&base)
                || (FLOAT_TYPES.contains(&base) && server_version_num >= 120_000);
            if !generated.is_empty() {
                why_not.get_or_insert(format!("column {name} is generated (not in COPY)"));
            } else if !safe {
                why_not.get_or_insert(format!(
                    "column {name} has type {ty}, whose text output may depend on session settings"
                ));
            }
            names.push(name);
        }
        if !names.iter().any(|n| n == "id") {
            why_not.get_or_insert("the table has no id column".into());
        }
        out.insert(
            t.clone(),
            match why_not {
                None => Ok(names),
                Some(w) => Err(w),
            },
        );
    }
    Ok(out)
}

/// Watches the dump stream and digests the tables of a [`Plan`].
#[derive(Debug)]
pub(crate) struct StreamStats {
    scanner: Scanner,
    plan: Plan,
    active: HashMap<i32, (TableName, RowDigester)>,
    results: BTreeMap<TableName, RowDigest>,
    sets: BTreeMap<TableName, SetDigest>,
}

impl StreamStats {
    pub(crate) fn new(plan: Plan) -> Self {
        Self {
            scanner: Scanner::new(),
            plan,
            active: HashMap::new(),
            results: BTreeMap::new(),
            sets: BTreeMap::new(),
        }
    }

    /// Feeds the next bytes pg_dump wrote.
    pub(crate) fn feed(&mut self, data: &[u8]) {
        let Self {
            scanner,
            plan,
            active,
            results,
            sets,
        } = self;
        scanner.feed(data, &mut |e| match e {
            Event::Toc(toc) => {
                let utf8 = toc.encoding.as_deref() == Some("UTF8");
                for (id, entry) in &toc.tables {
                    let Ok(table) = TableName::new(&entry.namespace, &entry.tag) else {
                        continue;
                    };
                    let Some(expected) = plan.get(&table) else {
                        continue;
                    };
                    let decision = match expected {
                        Err(why) => Err(why.clone()),
                        Ok(_) if !utf8 => Err(format!(
                            "the dump's encoding is {}, not UTF8",
                            toc.encoding.as_deref().unwrap_or("unknown")
                        )),
                        Ok(names) => match copy_columns(&entry.copy_stmt) {
                            Some(cols) if &cols == names => {
                                let id_col = cols.iter().position(|c| c == "id").unwrap_or(0);
                                let hashed = cols.len()
                                    - usize::from(
                                        cols.last().map(String::as_str) == Some(WATERMARK_COLUMN),
                                    );
                                Ok(RowDigester::new(cols.len(), id_col).hashing(hashed))
                            }
                            _ => Err(format!(
                                "pg_dump's COPY columns differ from the table's ({:?})",
                                entry.copy_stmt.trim_end()
                            )),
                        },
                    };
                    match decision {
                        Ok(d) => {
                            active.insert(*id, (table, d));
                        }
                        Err(why) => {
                            results.insert(table, RowDigest::Unusable(why));
                        }
                    }
                }
            }
            Event::Data(id, bytes) => {
                if let Some((_, d)) = active.get_mut(&id) {
                    d.feed(bytes);
                }
            }
            Event::End(id) => {
                if let Some((table, d)) = active.remove(&id) {
                    let (result, set) = d.finish();
                    sets.insert(table.clone(), set);
                    results.insert(table, result);
                }
            }
        });
    }

    /// The result for every table of the plan; tables whose data was not (completely)
    /// seen are `Unusable`. With it, the set digest of each table digested from the
    /// stream (meaningful where the result is `Done`).
    pub(crate) fn finish(
        self,
    ) -> (
        BTreeMap<TableName, RowDigest>,
        BTreeMap<TableName, SetDigest>,
    ) {
        let mut results = self.results;
        let stopped = self.scanner.stopped().map(str::to_string);
        for (table, _) in self.active.into_values() {
            results.insert(
                table,
                RowDigest::Unusable("the table's data block did not end".into()),
            );
        }
        for table in self.plan.keys() {
            results.entry(table.clone()).or_insert_with(|| {
                RowDigest::Unusable(match &stopped {
                    Some(why) => format!("the dump stream could not be read: {why}"),
                    None => "pg_dump wrote no data block for the table".into(),
                })
            });
        }
        (results, self.sets)
    }
}
