//! The re-count before COMMIT: inside compensation A's transaction, the rows outside the
//! change set (exactly the rows that existed before the run) must equal the run's pre
//! snapshot — row counts, content digests, units by status — and the change set's own
//! rows must be what the revert leaves (soft: the units and versions counted before the
//! step ([`Before`]), all withdrawn, one lifecycle log row per unit and per version it
//! added to an enacted unit; hard: none). Any difference rolls the step back.
//!
//! A row belongs to the change set when it carries it (a unit; a version an amendment
//! added to a unit of another change set, V6; a lifecycle log row) or belongs to one of
//! its units.
//!
//! One pass per table. The digests use cutter-pg's canonical form (`cutter_pg::surface`)
//! over the rows outside the change set; a test checks they equal cutter-pg's own digests
//! when nothing is excluded.

use postgres::GenericClient;

use cutter_core::{Difference, RunId, Sha256Digest, TableName, TableStat};

use crate::approval::RevertKind;
use crate::error::{Doing, RecountDifference, Result};
use crate::plan::CompensationPlan;

/// The three public tables, in snapshot order.
pub(crate) const PUBLIC: [&str; 3] = ["information_unit", "unit_version", "iu_lifecycle_log"];

/// The digest aggregate over the rows of `r` (canonical text `row`) for which `outside`
/// holds.
fn digest_sql(outside: &str, row: &str) -> String {
    format!(
        "coalesce(sha256(string_agg(sha256(convert_to({row}, 'UTF8')), ''::bytea ORDER BY r.id) \
         FILTER (WHERE {outside})), sha256(''::bytea))"
    )
}

/// Whether a version or lifecycle log row `r` (its unit `c` when the unit is the change
/// set's) belongs to change set `$1`: its unit's, or it carries it (never NULL).
const IN: &str = "(c.id IS NOT NULL OR r.change_set_id IS NOT DISTINCT FROM $1::text)";

/// One pass over a table (canonical row text `row` of its rows `r`): the rows outside
/// change set `$1` (count and digest), all rows, and counts of the change set's own rows.
fn pass_sql(name: &str, row: &str) -> String {
    match name {
        "information_unit" => {
            let o = "r.change_set_id IS DISTINCT FROM $1::text";
            format!(
                "SELECT count(*) FILTER (WHERE {o}), {}, count(*), \
                        count(*) FILTER (WHERE {o} AND r.lifecycle_status = 'draft'), \
                        count(*) FILTER (WHERE {o} AND r.lifecycle_status = 'enacted'), \
                        count(*) FILTER (WHERE {o} AND r.lifecycle_status = 'withdrawn'), \
                        count(*) FILTER (WHERE NOT ({o})), \
                        count(*) FILTER (WHERE NOT ({o}) AND r.lifecycle_status = 'withdrawn') \
                   FROM public.information_unit r",
                digest_sql(o, row)
            )
        }
        "unit_version" => format!(
            "SELECT count(*) FILTER (WHERE NOT {IN}), {}, count(*), \
                    count(*) FILTER (WHERE {IN}), \
                    count(*) FILTER (WHERE {IN} AND r.lifecycle_status = 'withdrawn') \
               FROM public.unit_version r \
               LEFT JOIN (SELECT id FROM public.information_unit WHERE change_set_id = $1::text) c \
                 ON c.id = r.information_unit_id",
            digest_sql(&format!("NOT {IN}"), row)
        ),
        _ => format!(
            "SELECT count(*) FILTER (WHERE NOT {IN}), {}, count(*), \
                    count(*) FILTER (WHERE {IN}), \
                    count(*) FILTER (WHERE {IN} AND r.to_status = 'withdrawn' \
                                       AND r.run_id = $2::text), \
                    count(DISTINCT r.information_unit_id) FILTER (WHERE c.id IS NOT NULL) \
               FROM public.iu_lifecycle_log r \
               LEFT JOIN (SELECT id FROM public.information_unit WHERE change_set_id = $1::text) c \
                 ON c.id = r.information_unit_id",
            digest_sql(&format!("NOT {IN}"), row)
        ),
    }
}

/// What one pass found.
#[derive(Clone, Debug)]
pub(crate) struct Pass {
    /// Rows outside the change set.
    pub outside: TableStat,
    /// All rows.
    pub total: u64,
    /// The remaining columns of the pass (counts), in query order.
    pub counts: Vec<u64>,
}

fn table(name: &str) -> TableName {
    TableName::new("public", name).unwrap_or_else(|_| unreachable!("constant table name"))
}

/// One pass over `public.<name>`. Call after `cutter_pg::surface::set_canonical_output`.
pub(crate) fn pass(
    c: &mut impl GenericClient,
    name: &str,
    change_set: &str,
    revert_run: &str,
) -> Result<Pass> {
    let t = table(name);
    let columns = cutter_pg::surface::canonical_columns(c, &t)?;
    let sql = pass_sql(name, &cutter_pg::surface::canonical_row_text(&columns, "r"));
    let row = if name == "iu_lifecycle_log" {
        c.query_one(&sql, &[&change_set, &revert_run])
    } else {
        c.query_one(&sql, &[&change_set])
    }
    .doing(|| format!("re-count: {t} inside and outside change set {change_set}"))?;
    let n = |i: usize| u64::try_from(row.get::<_, i64>(i)).unwrap_or(0);
    let digest: Vec<u8> = row.get(1);
    let digest: [u8; 32] = digest.try_into().map_err(|_| {
        crate::Error::Invalid(format!("re-count: sha256() of {t} did not return 32 bytes"))
    })?;
    Ok(Pass {
        outside: TableStat {
            rows: n(0),
            digest: Sha256Digest::from_bytes(digest),
        },
        total: n(2),
        counts: (3..row.len()).map(n).collect(),
    })
}

/// What the change set held when the step started, counted inside the step's transaction
/// before it writes: the figures the re-count compares the step's result with.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Before {
    /// Units of the change set.
    pub units: u64,
    /// Versions of the change set: of its units, and those it added to other units.
    pub versions: u64,
    /// Versions it added to units of other change sets (an amendment), which a soft
    /// revert withdraws with one lifecycle log row each.
    pub amendments: u64,
}

impl Before {
    /// Counts the units of change set `cs`, its versions and the versions it added to
    /// other units, in one statement (each through an index on `change_set_id`).
    pub(crate) fn count(c: &mut impl GenericClient, cs: &str) -> Result<Self> {
        let row = c
            .query_one(
                "SELECT (SELECT count(*) FROM public.information_unit WHERE change_set_id = $1), \
                        (SELECT count(*) FROM (SELECT v.id FROM public.unit_version v \
                           JOIN public.information_unit u ON u.id = v.information_unit_id \
                          WHERE u.change_set_id = $1 \
                          UNION SELECT v.id FROM public.unit_version v WHERE v.change_set_id = $1) x), \
                        (SELECT count(*) FROM public.unit_version v \
                           JOIN public.information_unit u ON u.id = v.information_unit_id \
                          WHERE v.change_set_id = $1 AND u.change_set_id IS DISTINCT FROM $1)",
                &[&cs],
            )
            .doing(|| {
                format!("counting the units and versions of change set {cs} before the step")
            })?;
        let n = |i: usize| u64::try_from(row.get::<_, i64>(i)).unwrap_or(0);
        Ok(Before {
            units: n(0),
            versions: n(1),
            amendments: n(2),
        })
    }
}

/// What the change set held when the step started, and what the step did.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Expected {
    /// The change set's rows before the step.
    pub before: Before,
    /// Units the step withdrew (soft) or deleted (hard).
    pub changed: u64,
    /// Versions it added to other units that the step withdrew (soft) or deleted (hard).
    pub changed_versions: u64,
}

/// Every difference between the target as the step leaves it (inside its transaction)
/// and what the run's pre snapshot and the revert require (empty: COMMIT is safe), and the
/// number of the change set's versions now withdrawn.
pub(crate) fn recount(
    c: &mut impl GenericClient,
    plan: &CompensationPlan,
    kind: RevertKind,
    revert_run: &RunId,
    expected: Expected,
) -> Result<(Vec<RecountDifference>, u64)> {
    let cs = plan.change_set().as_str();
    let pre = plan.pre_snapshot();
    let soft = kind == RevertKind::Soft;
    let mut out = Vec::new();
    cutter_pg::surface::set_canonical_output(c)?;
    let mut passes = Vec::new();
    for name in PUBLIC {
        passes.push(pass(c, name, cs, revert_run.as_str())?);
    }

    // Rows outside the change set: exactly the pre snapshot's; whole tables: the pre
    // snapshot plus (soft) the change set's own rows.
    for (name, p) in PUBLIC.iter().zip(&passes) {
        let t = table(name);
        let before = pre.tables.get(&t);
        if before.map(|s| s.rows) != Some(p.outside.rows) {
            out.push(RecountDifference::PreExisting {
                difference: Difference::Rows {
                    table: t.clone(),
                    before: before.map(|s| s.rows),
                    after: Some(p.outside.rows),
                },
            });
        } else if before.map(|s| s.digest) != Some(p.outside.digest) {
            out.push(RecountDifference::PreExisting {
                difference: Difference::Content { table: t.clone() },
            });
        }
        // The change set's own rows, as counted before the step (never this pass's own
        // count: that would only repeat the comparison above). Soft: each unit gets one
        // lifecycle log row, and so does each version it added to another unit.
        let own = match *name {
            "unit_version" => expected.before.versions,
            "information_unit" => expected.before.units,
            _ => expected.before.units + expected.before.amendments,
        };
        let pre_rows = before.map_or(0, |s| s.rows);
        let want = if soft { pre_rows + own } else { pre_rows };
        if p.total != want {
            out.push(RecountDifference::Total {
                table: t.to_string(),
                expected: want,
                found: p.total,
            });
        }
    }

    // Units outside the change set by status: the pre snapshot's.
    let iu = &passes[0].counts;
    let outside_statuses = [("draft", iu[0]), ("enacted", iu[1]), ("withdrawn", iu[2])];
    let known: u64 = outside_statuses.iter().map(|(_, n)| n).sum();
    for (status, after) in outside_statuses
        .into_iter()
        .chain(std::iter::once(("other", passes[0].outside.rows - known)))
    {
        let before = if status == "other" {
            pre.unit_statuses
                .iter()
                .filter(|(k, _)| !matches!(k.as_str(), "draft" | "enacted" | "withdrawn"))
                .map(|(_, v)| v)
                .sum()
        } else {
            pre.unit_statuses.get(status).copied().unwrap_or(0)
        };
        if before != after {
            out.push(RecountDifference::PreExisting {
                difference: Difference::Status {
                    status: status.into(),
                    before,
                    after,
                },
            });
        }
    }

    // The change set's own rows.
    let (cs_units, cs_withdrawn) = (iu[3], iu[4]);
    let uv = &passes[1].counts;
    let (cs_versions, cs_versions_withdrawn) = (uv[0], uv[1]);
    let log = &passes[2].counts;
    let mut check = |what: String, expected: u64, found: u64| {
        if expected != found {
            out.push(RecountDifference::ChangeSet {
                what,
                expected,
                found,
            });
        }
    };
    if soft {
        let units = expected.before.units;
        check(format!("units of {cs}"), units, cs_units);
        check(format!("units of {cs} withdrawn"), units, cs_withdrawn);
        check(
            format!("versions of {cs}"),
            expected.before.versions,
            cs_versions,
        );
        check(
            format!("versions of {cs} withdrawn"),
            cs_versions,
            cs_versions_withdrawn,
        );
        check(
            format!("lifecycle log rows of {cs} (its units and the versions it added)"),
            units + expected.before.amendments,
            log[0],
        );
        check(
            format!("units of {cs} with a lifecycle log row"),
            units,
            log[2],
        );
        check(
            format!("withdrawals of {cs} logged by revert run {revert_run}"),
            expected.changed + expected.changed_versions,
            log[1],
        );
    } else {
        check(format!("units of {cs} remaining"), 0, cs_units);
        check(format!("versions of {cs} remaining"), 0, cs_versions);
    }
    Ok((out, cs_versions_withdrawn))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The restricted digests are cutter-pg's canonical form: excluding nothing gives
    /// exactly cutter-pg's digest of the table.
    #[test]
    fn outside_digests_are_the_canonical_form() {
        let db = cutter_pg::testing::TestDb::new();
        let mut c = db.admin();
        let mut tx = c.transaction().unwrap();
        cutter_pg::surface::set_canonical_output(&mut tx).unwrap();
        for name in PUBLIC {
            let p = pass(&mut tx, name, "cs-nothing", "r").unwrap();
            let theirs = cutter_pg::surface::table_stat(&mut tx, &table(name), None).unwrap();
            assert_eq!(p.outside, theirs, "{name}");
            assert_eq!(p.total, theirs.rows, "{name}");
        }
        // The baseline's constitution is change set cs-baseline-2013: 60 enacted units,
        // logged 60 times.
        let p = pass(&mut tx, "information_unit", "cs-baseline-2013", "r").unwrap();
        assert_eq!((p.outside.rows, p.total, p.counts[3]), (98, 158, 60));
        assert_eq!(p.counts[..3], [98, 0, 0]);
        let p = pass(&mut tx, "iu_lifecycle_log", "cs-baseline-2013", "r").unwrap();
        assert_eq!((p.outside.rows, p.counts[0], p.counts[2]), (0, 60, 60));
    }
}
