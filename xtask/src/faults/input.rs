//! What comes in from outside: malformed plans, hostile text, bad approvals, a .pgpass
//! anyone can read.

use std::os::unix::fs::PermissionsExt;
use std::path::Path;

use cutter_core::{CutPlan, DocumentId, SourceVersionId};
use serde_json::{json, Value};

use super::runs::json;
use super::world::{plan_json, Cx, Done, Opts, World};

/// Nothing of `run` exists: no run directory, no backup, the database as before.
fn nothing_written(
    cx: &mut Cx,
    w: &World,
    pre: &super::audit::Pre,
    runs: &[&str],
) -> Result<bool, String> {
    let mut ok = true;
    for r in runs {
        if w.state.join("runs").join(r).exists() {
            ok = cx.check(false, format!("run {r} left a run directory"));
        }
    }
    if !w.backups().is_empty() {
        ok = cx.check(false, format!("backups written: {:?}", w.backups()));
    }
    if w.snapshot()? != pre.full {
        ok = cx.check(false, "the database changed");
    }
    Ok(ok)
}

fn base_plan(doc: &str, n: u64) -> Value {
    serde_json::from_str(&plan_json(doc, n)).expect("plan JSON")
}

/// Case 14.
pub fn malformed_plans(cx: &mut Cx) -> Result<(), String> {
    let w = cx.world(Opts::new("faults-malformed"))?;
    let pre = w.pre()?;
    let mut notes = Vec::new();
    let mut run_exits = Vec::new();

    // 1. Not JSON at all.
    let bad = w.plan_file("bad.json", br#"{"document_id": "x", "rows": [ {"title": "#);
    let d = w.cutter().args(["plan", "check"]).arg(&bad).run();
    let r = w.run_plan("r14a", &bad, &[]).run();
    run_exits.push(r.code);
    cx.check(
        d.code == Some(2) && d.stderr.contains("bad.json") && r.code == Some(2),
        format!(
            "bad JSON: plan check exit {:?}, run exit {:?}: {}",
            d.code,
            r.code,
            d.all()
        ),
    );
    notes.push(format!("bad JSON: exit {:?} ({})", d.code, short_err(&d)));

    // 2. Wrong types, several at once.
    let mut v = base_plan("faults-types", 6);
    v["rows"][0]["title"] = json!(7);
    v["rows"][1]["body"] = json!(["not", "a", "string"]);
    v["rows"][2]["section_type"] = json!(5);
    v["rows"][3]["owner_ref"] = json!({"x": 1});
    let types = w.plan_file("types.json", &serde_json::to_vec(&v).expect("json"));
    let d = w.cutter().args(["plan", "check"]).arg(&types).run();
    let wanted = [
        "title: must be a string, found a number",
        "body: must be a string, found an array",
        "section_type: must be a string",
        "owner_ref: must be a string",
    ];
    let missing: Vec<&&str> = wanted.iter().filter(|n| !d.stderr.contains(**n)).collect();
    let r = w.run_plan("r14b", &types, &[]).run();
    run_exits.push(r.code);
    cx.check(
        d.code == Some(2) && missing.is_empty() && r.code == Some(2),
        format!(
            "wrong types: exit {:?}, not listed {missing:?}: {}",
            d.code,
            d.all()
        ),
    );
    notes.push(format!(
        "4 wrong types: {} listed",
        wanted.len() - missing.len()
    ));

    // 3. A 10 MB title and six contract violations in one plan.
    let mut v = base_plan("faults-contract", 10);
    let addr5 = v["rows"][4]["canonical_address"].clone();
    v["rows"][0]["title"] = json!("T".repeat(10_000_000));
    v["rows"][1]["section_type"] = Value::Null;
    v["rows"][2]["unit_kind"] = json!("nope");
    v["rows"][3]["canonical_address"] = addr5;
    v["rows"][5]["publication_type"] = json!("pamphlet");
    v["rows"][6]["canonical_address"] = json!("");
    v["rows"][7]["actor"] = json!("   ");
    let contract = w.plan_file("contract.json", &serde_json::to_vec(&v).expect("json"));
    let d = w
        .cutter()
        .args(["--json", "plan", "check"])
        .arg(&contract)
        .run();
    let j = json(&d);
    let violations = j["violations"].as_array().cloned().unwrap_or_default();
    let text = serde_json::to_string(&violations).unwrap_or_default();
    let expected = [
        (1, "10000000 bytes; at most"),
        (2, "never null"),
        (3, "\\\"nope\\\" does not resolve in vocab.unit_kind"),
        (5, "duplicate canonical address; first used by row 4"),
        (
            6,
            "\\\"pamphlet\\\" does not resolve in vocab.publication_type",
        ),
        (7, "must not be empty"),
        (8, "must not be empty"),
    ];
    let mut unlisted = Vec::new();
    for (row, needle) in expected {
        let hit = violations.iter().any(|x| {
            x["row"].as_u64() == Some(row)
                && serde_json::to_string(x)
                    .unwrap_or_default()
                    .contains(needle)
        });
        if !hit {
            unlisted.push(format!("row {row}: {needle}"));
        }
    }
    let human = w.cutter().args(["plan", "check"]).arg(&contract).run();
    let r = w.run_plan("r14c", &contract, &[]).run();
    run_exits.push(r.code);
    cx.check(
        d.code == Some(2)
            && violations.len() == expected.len()
            && unlisted.is_empty()
            && human.code == Some(2)
            && r.code == Some(2),
        format!(
            "contract: exit {:?}, {} violations, not listed {unlisted:?}: {}",
            d.code,
            violations.len(),
            short(&text, 2000)
        ),
    );
    notes.push(format!(
        "10 MB title + 6 contract violations: {}/{} listed",
        violations.len(),
        expected.len()
    ));
    // The refused runs never got as far as a lock or a backup.
    let nothing = nothing_written(cx, &w, &pre, &["r14a", "r14b", "r14c"])?;
    cx.obs(format!(
        "{}; the 3 runs exit {run_exits:?}; nothing written: {nothing}",
        notes.join("; ")
    ));
    cx.settle(&w, &pre)?;
    Ok(())
}

fn short(s: &str, n: usize) -> String {
    s.chars().take(n).collect()
}

/// The error without the file name it starts with.
fn short_err(d: &Done) -> String {
    let e = d.error_line();
    let e = e.rsplit(".json: ").next().unwrap_or(&e).to_string();
    short(&e, 50)
}

/// Case 15.
pub fn hostile_text(cx: &mut Cx) -> Result<(), String> {
    let w = cx.world(Opts::new("faults-hostile"))?;
    let pre = w.pre()?;
    let doc = "faults-hostile";
    let mut rows = vec![cutter_pg::fixtures::hostile_row()];
    let mut r2 = cutter_pg::fixtures::row(doc, 2);
    r2.canonical_address = format!("{doc}/a'b\"c;d$$e$x$\\f--g/*h*/");
    r2.title = "'); TRUNCATE public.information_unit; SELECT ('".into();
    r2.body = "$$; DROP TABLE public.unit_version; $$ \\\\ \\x00 E'\\'' \\u202E ;--\n\t".into();
    r2.owner_ref = Some("\\\\'\"".into());
    rows.push(r2);
    let plan = CutPlan::new(
        DocumentId::new(doc).map_err(|e| e.to_string())?,
        SourceVersionId::new("v1").map_err(|e| e.to_string())?,
        rows.clone(),
    );
    let plan_path = w.plan_file("hostile.json", plan.to_json().as_bytes());
    let a = w.disarm_plan("r15", &plan_path)?;
    let d = w.run_plan("r15", &plan_path, &a).run();
    let d_legal = d.code;
    cx.check(
        d.code == Some(0),
        format!("the hostile but legal plan: exit {:?}: {}", d.code, d.all()),
    );
    // Stored verbatim.
    let mut c = w.db.admin()?;
    let stored = c
        .query(
            "SELECT iu.canonical_address, iu.title, uv.body, iu.created_by, iu.owner_ref \
               FROM public.information_unit iu JOIN public.unit_version uv ON uv.information_unit_id = iu.id \
              WHERE iu.change_set_id = 'cs-r15' ORDER BY iu.id",
            &[],
        )
        .map_err(|e| e.to_string())?;
    let verbatim = stored.len() == rows.len()
        && stored.iter().zip(&rows).all(|(s, r)| {
            s.get::<_, String>(0) == r.canonical_address
                && s.get::<_, String>(1) == r.title
                && s.get::<_, String>(2) == r.body
                && s.get::<_, String>(3) == r.actor
                && s.get::<_, Option<String>>(4) == r.owner_ref
        });
    cx.check(verbatim, "hostile text was not stored verbatim");

    // Refused, with a clear error, nothing written.
    let mut refused = Vec::new();
    let mut try_plan = |cx: &mut Cx, what: &str, bytes: Vec<u8>, needle: &str| {
        let p = w.plan_file(&format!("{}.json", what.replace(' ', "-")), &bytes);
        let d = w.cutter().args(["plan", "check"]).arg(&p).run();
        let r = w.run_plan("r15x", &p, &[]).run();
        let ok = d.code == Some(2) && d.stderr.contains(needle) && r.code == Some(2);
        cx.check(
            ok,
            format!("{what}: exit {:?} / run {:?}: {}", d.code, r.code, d.all()),
        );
        refused.push(format!(
            "{what} {:?}/{:?}{}",
            d.code,
            r.code,
            if ok { "" } else { " (NOT as expected)" }
        ));
    };
    let mut v = base_plan("faults-nul", 3);
    v["rows"][0]["body"] = json!("before\u{0}after");
    try_plan(
        cx,
        "NUL in a body",
        serde_json::to_vec(&v).expect("json"),
        "contains a NUL character, which PostgreSQL text cannot store",
    );
    let mut v = base_plan("faults-nul2", 3);
    v["rows"][0]["title"] = json!("Điều\u{0}1");
    try_plan(
        cx,
        "NUL in a title",
        serde_json::to_vec(&v).expect("json"),
        "contains the control or bidirectional character U+0000",
    );
    let mut v = base_plan("faults-bidi", 3);
    v["rows"][0]["canonical_address"] = json!("faults-bidi/\u{202E}1-uei\u{111}");
    v["rows"][1]["title"] = json!("Điều \u{2066}2\u{2069}");
    try_plan(
        cx,
        "bidi controls in an address and a title",
        serde_json::to_vec(&v).expect("json"),
        "contains the control or bidirectional character U+202E",
    );
    let mut v = base_plan("faults-bidi-body", 3);
    v["rows"][2]["body"] = json!("Mọi người \u{202E}đều\u{202C} bình đẳng\r\n");
    try_plan(
        cx,
        "bidi and CR controls in a body",
        serde_json::to_vec(&v).expect("json"),
        "3 forbidden character(s): U+202E (bidirectional control) at character 10",
    );
    let mut bytes = plan_json("faults-utf8", 3).into_bytes();
    let at = bytes
        .windows(2)
        .position(|x| x == "Đ".as_bytes())
        .ok_or("no Đ in the plan")?;
    bytes[at] = 0xFF;
    try_plan(cx, "invalid UTF-8", bytes, "UTF-8");
    let mut v = base_plan("faults-id", 3);
    v["document_id"] = json!("vn'; DROP TABLE public.information_unit; --");
    try_plan(
        cx,
        "a hostile document id",
        serde_json::to_vec(&v).expect("json"),
        "document_id",
    );
    let d = w
        .cutter()
        .args([
            "run",
            "--mode",
            "live",
            "--run-id",
            "r'; DELETE FROM x; --",
            "--plan",
        ])
        .arg(&w.plan)
        .run();
    let named = d.stderr.contains("run id");
    cx.check(
        d.code == Some(2) && named,
        format!("a hostile run id: exit {:?}: {}", d.code, d.all()),
    );
    refused.push(format!("a hostile run id {:?}, named: {named}", d.code));
    let run_left = w.state.join("runs/r15x").exists();
    cx.check(!run_left, "a refused plan left a run behind");
    let after = w.snapshot()?;
    let units_after = after.rows("public.information_unit");
    cx.check(
        units_after == pre.full.rows("public.information_unit") + 2,
        format!(
            "units: {} before, {units_after} after (expected exactly the 2 hostile units)",
            pre.full.rows("public.information_unit")
        ),
    );
    cx.obs(format!(
        "quotes, $$, ;, backslashes, bidi in bodies: run exit {:?}, stored verbatim: {verbatim}; units {} → {units_after}; refused (plan check/run exits): {}; run directory left: {run_left}",
        d_legal,
        pre.full.rows("public.information_unit"),
        refused.join(", ")
    ));
    cx.settle(&w, &pre)?;
    Ok(())
}

/// Case 20.
pub fn bad_approvals(cx: &mut Cx) -> Result<(), String> {
    let w = cx.world(Opts::new("faults-approvals"))?;
    let pre = w.pre()?;
    let run = "r20";
    let good = w.approvals(run);
    // Disarmed for r20 with valid approvals: only the approvals given to `run` differ.
    let mut disarm = w
        .cutter()
        .args(["kill-switch", "disarm", "--run-id", run, "--plan"])
        .arg(&w.plan);
    for x in &good {
        disarm = disarm.args(["--approval", x]);
    }
    let dd = disarm.run();
    cx.check(dd.code == Some(0), format!("disarm: {}", dd.all()));
    let other_plan = w.plan_file("other.json", plan_json("faults-other-plan", 12).as_bytes());
    let mallory = cx.env.keys.approvers[2].0.fingerprint().to_string();
    let cases: Vec<(&str, Vec<String>, String)> = vec![
        (
            "unknown signer",
            w.approvals_for(run, &w.plan, [0, 2], 3600),
            format!("signature was made by unknown key fingerprint {mallory}, which is none of the 2 trusted key(s)"),
        ),
        (
            "same signer twice",
            w.approvals_for(run, &w.plan, [1, 1], 3600),
            "two distinct approvers are required".into(),
        ),
        (
            "other run",
            w.approvals_for("r20-other", &w.plan, [0, 1], 3600),
            "approves run r20-other, not this run".into(),
        ),
        (
            "other plan",
            w.approvals_for(run, &other_plan, [0, 1], 3600),
            "not this plan".into(),
        ),
        (
            "expired",
            w.approvals_for(run, &w.plan, [0, 1], -60),
            "expired at unix time".into(),
        ),
    ];
    let mut refused = 0;
    for (what, approvals, needle) in &cases {
        let d = w.run_live(run, approvals).run();
        let mut dis = w
            .cutter()
            .args(["kill-switch", "disarm", "--run-id", run, "--plan"])
            .arg(&w.plan);
        for x in approvals {
            dis = dis.args(["--approval", x]);
        }
        let dis = dis.run();
        let ok = d.code == Some(3)
            && d.stderr.contains("refused by the gate")
            && d.stderr.contains(needle.as_str())
            && dis.code == Some(3)
            && dis.stderr.contains(needle.as_str());
        if cx.check(
            ok,
            format!(
                "{what}: run exit {:?}, disarm exit {:?}: {}\n{}",
                d.code,
                dis.code,
                d.all(),
                dis.all()
            ),
        ) {
            refused += 1;
        }
    }
    let nothing = nothing_written(cx, &w, &pre, &[run])?;
    cx.obs(format!(
        "{refused}/{} refused by the gate (run and disarm exit 3, reason named); nothing written: {nothing}",
        cases.len()
    ));
    cx.settle(&w, &pre)?;
    Ok(())
}

/// Whether `stderr` warns that the password file `pgpass` was ignored for its group or
/// world access, and whether the connection then failed because the server asked for a
/// password and none was found (tokio-postgres's "password missing").
fn ignored_for_loose_permissions(stderr: &str, pgpass: &Path) -> (bool, bool) {
    let warning = format!(
        "password file \"{}\" has group or world access",
        pgpass.display()
    );
    let warned = stderr.contains(&warning) && stderr.contains("ignoring it");
    (warned, stderr.contains("password missing"))
}

/// Case 22.
pub fn loose_pgpass(cx: &mut Cx) -> Result<(), String> {
    let w = cx.world(Opts::new("faults-pgpass"))?;
    let pre = w.pre()?;
    let a = w.disarm("r22")?;
    std::fs::set_permissions(&w.pgpass, std::fs::Permissions::from_mode(0o644))
        .map_err(|e| e.to_string())?;
    let check = w.cutter().args(["plan", "check"]).arg(&w.plan).run();
    let run = w.run_live("r22", &a).run();
    let mut seen = Vec::new();
    for (what, d) in [("plan check", &check), ("run", &run)] {
        let (warned, no_password) = ignored_for_loose_permissions(&d.stderr, &w.pgpass);
        cx.check(
            d.code == Some(1) && warned && no_password,
            format!("{what} with a 0644 .pgpass: exit {:?}: {}", d.code, d.all()),
        );
        seen.push(format!(
            "{what}: exit {:?}, warned {warned}, refused for want of a password {no_password}",
            d.code
        ));
    }
    nothing_written(cx, &w, &pre, &["r22"])?;
    std::fs::set_permissions(&w.pgpass, std::fs::Permissions::from_mode(0o600))
        .map_err(|e| e.to_string())?;
    let fixed = w.cutter().args(["plan", "check"]).arg(&w.plan).run();
    let (fixed_warned, _) = ignored_for_loose_permissions(&fixed.stderr, &w.pgpass);
    cx.check(
        fixed.code == Some(0) && !fixed_warned,
        format!("with 0600 again: {}", fixed.all()),
    );
    cx.obs(format!(
        "0644 .pgpass: {}; 0600: plan check exit {:?}, warned {fixed_warned}",
        seen.join("; "),
        fixed.code
    ));
    cx.settle(&w, &pre)?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_warning_alone_is_not_a_refusal_for_want_of_a_password() {
        let pgpass = Path::new("/w/secrets/pgpass");
        let warning = "cutter: warning: password file \"/w/secrets/pgpass\" has group or world \
                       access; permissions should be u=rw (0600) or less (it has mode 0644); \
                       ignoring it (fix: chmod 0600 /w/secrets/pgpass)\n";
        assert_eq!(
            ignored_for_loose_permissions(warning, pgpass),
            (true, false)
        );
        let refused =
            format!("{warning}cutter: cannot connect: invalid configuration: password missing\n");
        assert_eq!(
            ignored_for_loose_permissions(&refused, pgpass),
            (true, true)
        );
        let other_file = refused.replace("/w/secrets/pgpass", "/elsewhere/pgpass");
        assert_eq!(
            ignored_for_loose_permissions(&other_file, pgpass),
            (false, true)
        );
    }
}
