//! What the database itself enforces: the exec role's limits, a hostile search_path,
//! immutable enacted rows, and compensation that can be repeated and interrupted.

use super::runs::{ledger_intact, live_statuses};
use super::world::{Cx, Done, Opts, World};

/// The ledger's advisory lock class (`"LEDG"`) and review_decision's table number, as
/// cutter-governance documents them (chain.rs: `pg_advisory_xact_lock(1279607879, n)`).
const LEDGER_LOCK_CLASS: i32 = 0x4C45_4447;
const REVIEW_DECISION_TABLE: i32 = 4;

/// The SQLSTATEs of a refusal by the database's own rules, as `xtask proof` accepts
/// them: the privilege layer (42501 insufficient_privilege) and the triggers (55000
/// object_not_in_prerequisite_state). Any other error (a typo, a missing table, a lost
/// connection) proves nothing about the rules.
const REFUSAL_SQLSTATES: [&str; 2] = ["42501", "55000"];

fn is_refusal(sqlstate: Option<&str>) -> bool {
    sqlstate.is_some_and(|s| REFUSAL_SQLSTATES.contains(&s))
}

/// Runs `sql`, which must be refused, the way `is_right(sqlstate, message)` says.
/// Records a problem (`{sql}: {label}{error}`, or that it was accepted) unless it was;
/// returns whether it was.
fn expect_refusal(
    cx: &mut Cx,
    c: &mut postgres::Client,
    sql: &str,
    label: &str,
    is_right: impl Fn(Option<&str>, &str) -> bool,
) -> bool {
    match c.batch_execute(sql) {
        Ok(()) => cx.check(false, format!("accepted: {sql}")),
        Err(e) => {
            let msg = e
                .as_db_error()
                .map(|d| d.message().to_string())
                .unwrap_or_default();
            cx.check(
                is_right(e.code().map(|c| c.code()), &msg),
                format!("{sql}: {label}{e}"),
            )
        }
    }
}

/// Case 16.
pub fn exec_role_refused(cx: &mut Cx) -> Result<(), String> {
    let w = cx.world(Opts::new("faults-exec-role"))?;
    let pre = w.pre()?;
    // Ledger rows and units to aim at, made by a real run.
    let a = w.disarm("r16")?;
    let d = w.run_live("r16", &a).run();
    cx.check(d.code == Some(0), format!("the run: {}", d.all()));
    let after_run = w.pre()?;
    let mut c = w.db.exec()?;
    let attempts: [(&str, &str); 16] = [
        ("UPDATE review_decision", "UPDATE cutter_governance.review_decision SET actor = 'mallory'"),
        ("UPDATE dot_pair_signature", "UPDATE cutter_governance.dot_pair_signature SET signature = ''"),
        ("DELETE cut_change_set", "DELETE FROM cutter_governance.cut_change_set"),
        ("DELETE affected rows", "DELETE FROM cutter_governance.cut_change_set_affected_row"),
        ("TRUNCATE verify_result", "TRUNCATE cutter_governance.verify_result"),
        ("TRUNCATE manifest_envelope", "TRUNCATE cutter_governance.manifest_envelope CASCADE"),
        (
            "INSERT a unit directly",
            "INSERT INTO public.information_unit (canonical_address, title, unit_kind_ref, identity_profile, \
             publication_type, document_id, source_version_id, created_by) VALUES ('x/1', 'x', \
             'vocab.unit_kind.law_unit', '{\"primary_section_type_ref\": \"vocab.section_type.article\"}', \
             'law', 'x', 'v1', 'mallory')",
        ),
        ("UPDATE a draft unit directly", "UPDATE public.information_unit SET title = 'x' WHERE lifecycle_status = 'draft'"),
        ("DELETE versions directly", "DELETE FROM public.unit_version"),
        ("INSERT a lifecycle log row", "INSERT INTO public.iu_lifecycle_log (information_unit_id, to_status, actor) VALUES (1, 'withdrawn', 'mallory')"),
        ("DISABLE TRIGGER trg_iu_enacted_immut", "ALTER TABLE public.information_unit DISABLE TRIGGER trg_iu_enacted_immut"),
        ("DISABLE TRIGGER ALL on the ledger", "ALTER TABLE cutter_governance.review_decision DISABLE TRIGGER ALL"),
        ("DROP TRIGGER trg_uv_enacted_immut", "DROP TRIGGER trg_uv_enacted_immut ON public.unit_version"),
        ("session_replication_role = replica", "SET session_replication_role = replica"),
        (
            "replace the trigger function",
            "CREATE OR REPLACE FUNCTION public.fn_trg_enacted_immut() RETURNS trigger LANGUAGE plpgsql AS $f$BEGIN RETURN NEW; END$f$",
        ),
        ("GRANT itself UPDATE", "GRANT UPDATE ON cutter_governance.review_decision TO cutter_exec"),
    ];
    let mut states = std::collections::BTreeMap::<String, u32>::new();
    for (what, sql) in attempts {
        match c.batch_execute(sql) {
            Err(e) => {
                let code = e.code().map(|s| s.code());
                if cx.check(
                    is_refusal(code),
                    format!("{what}: failed, but not refused by a privilege or a trigger: {e}"),
                ) {
                    *states.entry(code.unwrap_or_default().into()).or_default() += 1;
                }
            }
            // A GRANT without the grant option "succeeds" with the warning "no
            // privileges were granted": refused if the privilege is still not there.
            Ok(()) if sql.starts_with("GRANT") => {
                let has: bool = c
                    .query_one(
                        "SELECT has_table_privilege('cutter_governance.review_decision', 'UPDATE')",
                        &[],
                    )
                    .map_err(|e| e.to_string())?
                    .get(0);
                if cx.check(!has, format!("cutter_exec could: {what}")) {
                    *states
                        .entry("no privileges were granted".into())
                        .or_default() += 1;
                }
            }
            Ok(()) => {
                cx.check(false, format!("cutter_exec could: {what}"));
            }
        }
    }
    // Privileges granted by mistake: the append-only trigger still refuses.
    w.db.admin()?
        .batch_execute(
            "GRANT UPDATE, DELETE, TRUNCATE ON cutter_governance.review_decision, \
             cutter_governance.cut_change_set TO cutter_exec",
        )
        .map_err(|e| e.to_string())?;
    let mut by_trigger = 0;
    for sql in [
        "UPDATE cutter_governance.review_decision SET actor = 'mallory'",
        "DELETE FROM cutter_governance.cut_change_set",
        "TRUNCATE cutter_governance.review_decision",
    ] {
        if expect_refusal(
            cx,
            &mut c,
            sql,
            "refused, but not by the append-only trigger: ",
            |_, msg| msg.contains("is an append-only ledger"),
        ) {
            by_trigger += 1;
        }
    }
    w.db.admin()?
        .batch_execute(
            "REVOKE UPDATE, DELETE, TRUNCATE ON cutter_governance.review_decision, \
             cutter_governance.cut_change_set FROM cutter_exec",
        )
        .map_err(|e| e.to_string())?;
    let (intact, _) = ledger_intact(&w)?;
    cx.check(intact, "ledger verify: a chain is broken");
    let total: u32 = states.values().sum();
    cx.obs(format!(
        "{total}/{} refused (SQLSTATE {}); with UPDATE/DELETE/TRUNCATE granted by mistake: {by_trigger}/3 refused by the append-only trigger; ledger intact: {intact}",
        attempts.len(),
        states
            .iter()
            .map(|(k, v)| format!("{k}×{v}"))
            .collect::<Vec<_>>()
            .join(", ")
    ));
    cx.settle(&w, &after_run)?;
    cx.settle(&w, &pre)?;
    Ok(())
}

/// Shadows for what cutter's SQL calls unqualified, each refusing loudly if ever called.
const HOSTILE: &[(&str, &str)] = &[
    ("sha256(bytea)", "bytea"),
    ("convert_to(text, name)", "bytea"),
    ("encode(bytea, text)", "text"),
    ("set_config(text, text, boolean)", "text"),
    ("current_setting(text)", "text"),
    ("pg_try_advisory_lock(integer, integer)", "boolean"),
    ("pg_try_advisory_xact_lock(integer, integer)", "boolean"),
    ("pg_advisory_xact_lock(integer, integer)", "void"),
    ("pg_advisory_unlock(integer, integer)", "boolean"),
    ("to_regclass(text)", "regclass"),
    ("to_regprocedure(text)", "regprocedure"),
    ("pg_export_snapshot()", "text"),
    ("txid_current()", "bigint"),
    ("now()", "timestamptz"),
    ("btrim(text)", "text"),
    ("pg_has_role(name, oid, text)", "boolean"),
];

/// Case 17.
pub fn hostile_search_path(cx: &mut Cx) -> Result<(), String> {
    let w = cx.world(Opts::new("faults-search-path"))?;
    let pre = w.pre()?;
    let mut sql = String::from(
        "CREATE SCHEMA faults_evil; GRANT USAGE, CREATE ON SCHEMA faults_evil TO PUBLIC;\n",
    );
    for (sig, ret) in HOSTILE {
        sql.push_str(&format!(
            "CREATE FUNCTION faults_evil.{sig} RETURNS {ret} LANGUAGE plpgsql AS $f$BEGIN \
             RAISE EXCEPTION 'HOSTILE faults_evil.{} was called'; END$f$;\n\
             GRANT EXECUTE ON FUNCTION faults_evil.{sig} TO PUBLIC;\n",
            sig.split('(').next().unwrap_or(sig)
        ));
    }
    for t in [
        "information_unit",
        "unit_version",
        "iu_lifecycle_log",
        "review_decision",
    ] {
        let src = if t == "review_decision" {
            "cutter_governance.review_decision"
        } else {
            &format!("public.{t}")
        };
        sql.push_str(&format!(
            "CREATE TABLE faults_evil.{t} (LIKE {src}); GRANT ALL ON faults_evil.{t} TO PUBLIC;\n"
        ));
    }
    // Per database: roles are shared by the whole cluster.
    for role in ["cutter_exec", "cutter_verify"] {
        sql.push_str(&format!(
            "ALTER ROLE {role} IN DATABASE {} SET search_path = faults_evil, pg_catalog, public;\n",
            cutter_pg::quote_ident(&w.db.name)
        ));
    }
    w.db.admin()?
        .batch_execute(&sql)
        .map_err(|e| format!("installing the hostile schema: {e}"))?;
    let resolved: String =
        w.db.exec()?
            .query_one("SELECT pg_catalog.current_setting('search_path')", &[])
            .map_err(|e| e.to_string())?
            .get(0);
    cx.check(
        resolved.starts_with("faults_evil"),
        format!("the hostile search_path is not in effect: {resolved}"),
    );
    // A whole run, its restore proof, the ledger; then a failed run and its compensation.
    let a = w.disarm("r17")?;
    let run = w.run_live("r17", &a).run();
    cx.check(run.code == Some(0), format!("the run: {}", run.all()));
    let proven = w.set_aside_run_proof("r17")?;
    cx.check(proven, "the run did not prove its backup before it wrote");
    let proof = w
        .cutter()
        .args(["backup", "restore-proof"])
        .arg(w.state.join("backups/r17.dump.pgp"))
        .run();
    cx.check(
        proof.code == Some(0),
        format!("restore proof: {}", proof.all()),
    );
    let (intact, _) = ledger_intact(&w)?;
    cx.check(intact, "ledger verify failed");
    let plan_b = w.plan_file(
        "plan-b.json",
        super::world::plan_json("faults-search-path-b", 12).as_bytes(),
    );
    let b = w.disarm_plan("r17b", &plan_b)?;
    let failed = w
        .run_plan("r17b", &plan_b, &b)
        .env("CUTTER_FAILPOINT", "write_verify:before_commit:error")
        .run();
    cx.check(
        failed.code == Some(4) && failed.stderr.contains("injected failure"),
        format!("the failing run: {}", failed.all()),
    );
    let comp = w.cutter().args(["compensate", "--run-id", "r17b"]).run();
    cx.check(comp.code == Some(0), format!("compensate: {}", comp.all()));
    let status = w.cutter().arg("status").run();
    let all: Vec<&Done> = vec![&run, &proof, &failed, &comp, &status];
    let hostile_calls: Vec<String> = all
        .iter()
        .filter(|d| d.has("HOSTILE"))
        .map(|d| d.error_line())
        .collect();
    cx.check(
        hostile_calls.is_empty(),
        format!("a shadowing function was called: {hostile_calls:?}"),
    );
    // Stored values computed by the real functions.
    let bad_sha = w.count(
        "SELECT count(*) FROM public.unit_version uv JOIN public.information_unit iu ON iu.id = uv.information_unit_id \
          WHERE iu.change_set_id = $1 AND uv.body_sha256 <> encode(pg_catalog.sha256(convert_to(uv.body, 'UTF8')), 'hex')",
        "cs-r17",
    )?;
    let shadow_rows: i64 = w
        .db
        .admin()?
        .query_one(
            "SELECT (SELECT count(*) FROM faults_evil.information_unit) + (SELECT count(*) FROM faults_evil.unit_version) \
                  + (SELECT count(*) FROM faults_evil.iu_lifecycle_log) + (SELECT count(*) FROM faults_evil.review_decision)",
            &[],
        )
        .map_err(|e| e.to_string())?
        .get(0);
    let enacted = w.change_set_units("r17")?;
    cx.check(
        bad_sha == 0 && shadow_rows == 0 && enacted == vec![("enacted".to_string(), 12)],
        format!("stored: {bad_sha} wrong body digests, {shadow_rows} rows in shadow tables, units {enacted:?}"),
    );
    cx.obs(format!(
        "{} shadowing functions + 4 tables first in search_path ({resolved}): live run exit {:?}, restore proof exit {:?}, ledger intact {intact}, failing run exit {:?}, compensate exit {:?}; shadows called {}; {bad_sha} wrong body digests, {shadow_rows} rows in shadow tables, units {enacted:?}",
        HOSTILE.len(),
        run.code,
        proof.code,
        failed.code,
        comp.code,
        hostile_calls.len()
    ));
    // Leave the roles as they were for other databases (the setting is per database,
    // dropped with it, but be explicit).
    let mut reset = String::new();
    for role in ["cutter_exec", "cutter_verify"] {
        reset.push_str(&format!(
            "ALTER ROLE {role} IN DATABASE {} RESET search_path;",
            cutter_pg::quote_ident(&w.db.name)
        ));
    }
    w.db.admin()?
        .batch_execute(&reset)
        .map_err(|e| e.to_string())?;
    cx.settle(&w, &pre)?;
    Ok(())
}

/// Case 18.
pub fn enacted_is_immutable(cx: &mut Cx) -> Result<(), String> {
    let w = cx.world(Opts::new("faults-enacted"))?;
    let pre = w.pre()?;
    // Even the owner (superuser) is refused by the triggers.
    let mut admin = w.db.admin()?;
    let mut rejected = 0;
    for sql in [
        "UPDATE public.information_unit SET title = 'changed' WHERE id = 1",
        "DELETE FROM public.information_unit WHERE id = 2",
        "UPDATE public.unit_version SET body = 'changed' WHERE id = 3",
        "DELETE FROM public.unit_version WHERE id = 4",
        "UPDATE public.information_unit SET lifecycle_status = 'withdrawn' WHERE id = 5",
    ] {
        if expect_refusal(cx, &mut admin, sql, "", |code, msg| {
            msg.contains("enacted rows are immutable") && code == Some("55000")
        }) {
            rejected += 1;
        }
    }
    // Compensation A over a change set one of whose units got enacted.
    let a = w.disarm("r18")?;
    let d = w
        .run_live("r18", &a)
        .env("CUTTER_FAILPOINT", "write_verify:before_commit:error")
        .run();
    cx.check(d.code == Some(4), format!("the failing run: {}", d.all()));
    let enact_one = "SELECT e.information_unit_id, iu.canonical_address FROM \
               (SELECT id FROM public.information_unit WHERE change_set_id = 'cs-r18' ORDER BY id LIMIT 1) s \
               CROSS JOIN LATERAL public.fn_iu_enact(s.id, 'faults-out-of-band', 'oob') e \
               JOIN public.information_unit iu ON iu.id = e.information_unit_id";
    // The failed run left a HOLD in the database: enacting is refused to everyone, the
    // owner included (reference V4)…
    let held = expect_refusal(cx, &mut admin, enact_one, "", |code, msg| {
        msg.contains("unresolved HOLD") && code == Some("55000")
    });
    // …so the out-of-band enactment this case needs takes the owner switching the HOLD
    // guard off around it.
    let mut tx = admin.transaction().map_err(|e| e.to_string())?;
    tx.batch_execute(
        "ALTER TABLE public.information_unit DISABLE TRIGGER trg_iu_hold_guard_enact; \
         ALTER TABLE public.unit_version DISABLE TRIGGER trg_uv_hold_guard_enact",
    )
    .map_err(|e| e.to_string())?;
    let row = tx.query_one(enact_one, &[]).map_err(|e| e.to_string())?;
    tx.batch_execute(
        "ALTER TABLE public.information_unit ENABLE TRIGGER trg_iu_hold_guard_enact; \
         ALTER TABLE public.unit_version ENABLE TRIGGER trg_uv_hold_guard_enact",
    )
    .map_err(|e| e.to_string())?;
    tx.commit().map_err(|e| e.to_string())?;
    let (id, addr): (i64, String) = (row.get(0), row.get(1));
    let c = w.cutter().args(["compensate", "--run-id", "r18"]).run();
    let names = c.stderr.contains(&format!("id {id}")) && c.stderr.contains(&addr);
    cx.check(
        matches!(c.code, Some(1) | Some(3)) && names,
        format!(
            "compensate over an enacted unit: exit {:?}: {}",
            c.code,
            c.all()
        ),
    );
    let units = w.change_set_units("r18")?;
    cx.check(
        units == vec![("draft".to_string(), 11), ("enacted".to_string(), 1)],
        format!("compensation changed the change set: {units:?}"),
    );
    cx.obs(format!(
        "{rejected}/5 UPDATE/DELETE of enacted rows by the owner rejected by the triggers with 55000; enactment during the HOLD refused: {held}; compensation A over enacted unit id {id}: exit {:?}, names it: {names}; change set after: {units:?}",
        c.code
    ));
    cx.settle(&w, &pre)?;
    Ok(())
}

/// The end state of a compensated run, comparable between worlds.
fn end_state(w: &World, run: &str, pre: &super::audit::Pre) -> Result<String, String> {
    let snap = w.snapshot()?;
    let reverted = w.count(
        "SELECT count(*) FROM cutter_governance.review_decision WHERE change_set_id = $1 AND decision = 'reverted'",
        &format!("cs-{run}"),
    )?;
    let (intact, _) = ledger_intact(w)?;
    Ok(format!(
        "live units as before: {}; units {:?}; reverted decisions {reverted}; ledger intact {intact}",
        live_statuses(&snap) == live_statuses(&pre.full),
        w.change_set_units(run)?
    ))
}

fn compensate(w: &World, run: &str) -> Done {
    w.cutter().args(["compensate", "--run-id", run]).run()
}

/// Case 19.
pub fn compensation_idempotent(cx: &mut Cx) -> Result<(), String> {
    let w1 = cx.world(Opts::new("faults-comp-twice"))?;
    let w2 = cx.world(Opts::new("faults-comp-killed"))?;
    let (pre1, pre2) = (w1.pre()?, w2.pre()?);
    for (w, run) in [(&w1, "r19"), (&w2, "r19")] {
        let a = w.disarm(run)?;
        let d = w
            .run_live(run, &a)
            .env("CUTTER_FAILPOINT", "write_verify:before_commit:error")
            .run();
        cx.check(d.code == Some(4), format!("the failing run: {}", d.all()));
    }
    // Twice in a row.
    let first = compensate(&w1, "r19");
    let s1 = w1.snapshot()?;
    let second = compensate(&w1, "r19");
    let s2 = w1.snapshot()?;
    cx.check(
        first.code == Some(0) && second.code == Some(0) && second.stdout.contains("already"),
        format!("compensate twice: {}\n{}", first.all(), second.all()),
    );
    cx.check(s1 == s2, "the second compensation changed the database");

    // Killed inside A (its transaction waits on a row lock we hold), then between A and B
    // (B waits on the ledger lock we hold), then run to the end, then once more.
    let mut holder = w2.db.admin()?;
    let mut tx = holder.transaction().map_err(|e| e.to_string())?;
    tx.batch_execute(
        "SELECT 1 FROM public.information_unit WHERE change_set_id = 'cs-r19' ORDER BY id LIMIT 1 FOR UPDATE",
    )
    .map_err(|e| e.to_string())?;
    let mut r = w2.cutter().args(["compensate", "--run-id", "r19"]).spawn();
    let pids = w2.wait_backends(
        "compensation A waiting inside its transaction",
        "application_name = 'cutter/r19-revert' AND wait_event_type = 'Lock'",
        || r.running(),
    )?;
    r.kill9();
    r.wait();
    tx.rollback().map_err(|e| e.to_string())?;
    w2.wait_gone(&pids)?;
    let after_a_killed = w2.change_set_units("r19")?;
    cx.check(
        after_a_killed == vec![("draft".to_string(), 12)],
        format!("killed inside A, yet: {after_a_killed:?}"),
    );
    holder
        .execute(
            "SELECT pg_advisory_lock($1, $2)",
            &[&LEDGER_LOCK_CLASS, &REVIEW_DECISION_TABLE],
        )
        .map_err(|e| e.to_string())?;
    let mut r = w2.cutter().args(["compensate", "--run-id", "r19"]).spawn();
    let pids = w2.wait_backends(
        "compensation B waiting for the ledger lock",
        "application_name = 'cutter/r19-revert' AND wait_event_type = 'Lock'",
        || r.running(),
    )?;
    let between = w2.change_set_units("r19")?;
    r.kill9();
    r.wait();
    holder
        .execute(
            "SELECT pg_advisory_unlock($1, $2)",
            &[&LEDGER_LOCK_CLASS, &REVIEW_DECISION_TABLE],
        )
        .map_err(|e| e.to_string())?;
    w2.wait_gone(&pids)?;
    cx.check(
        between == vec![("withdrawn".to_string(), 12)],
        format!("between A and B: {between:?}"),
    );
    let rerun = compensate(&w2, "r19");
    let again = compensate(&w2, "r19");
    cx.check(
        rerun.code == Some(0) && again.code == Some(0) && again.stdout.contains("already"),
        format!("rerun after the kills: {}\n{}", rerun.all(), again.all()),
    );
    let (e1, e2) = (end_state(&w1, "r19", &pre1)?, end_state(&w2, "r19", &pre2)?);
    cx.check(
        e1 == e2,
        format!("final states differ:\n  twice: {e1}\n  killed: {e2}"),
    );
    cx.check(
        e1.contains("live units as before: true") && e1.contains("reverted decisions 1"),
        format!("not compensated: {e1}"),
    );
    cx.obs(format!(
        "twice: exits {:?}/{:?}, database equal after the second: {}; killed inside A: {after_a_killed:?}; killed between A and B: {between:?}; rerun exits {:?}/{:?}; final states equal: {} ({e1})",
        first.code,
        second.code,
        s1 == s2,
        rerun.code,
        again.code,
        e1 == e2
    ));
    cx.settle(&w1, &pre1)?;
    cx.settle(&w2, &pre2)?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_privilege_and_trigger_errors_count_as_refusals() {
        assert!(is_refusal(Some("42501")));
        assert!(is_refusal(Some("55000")));
        // undefined_table, syntax_error, admin_shutdown, no SQLSTATE at all.
        for other in [Some("42P01"), Some("42601"), Some("57P01"), None] {
            assert!(!is_refusal(other), "{other:?}");
        }
    }
}
