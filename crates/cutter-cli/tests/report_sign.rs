//! The signed run report: `cutter report --sign` signs report.json with the pinned
//! report key (GnuPG verifies it), `cutter report verify` accepts it, and every field of
//! the report, altered in turn and signed again with the same key, is named.

mod common;

use std::path::{Path, PathBuf};

use common::{contract, text, World};
use serde_json::Value;

/// A report key (unprotected, mode 0600) pinned in the world's configuration.
fn pin_report_key(w: &World) -> (PathBuf, cutter_core::Fingerprint) {
    let keys = w.work.path().join("report-keys");
    std::fs::create_dir_all(&keys).unwrap();
    let g = cutter_backup::generate_keys(&keys, "report", "reports <reports@test.invalid>", None)
        .unwrap();
    let mut cfg = std::fs::read_to_string(&w.config).unwrap();
    cfg.push_str(&format!(
        "\n[report]\nsigning_fingerprint = \"{}\"\nsigning_key = \"{}\"\n",
        g.fingerprint,
        g.secret_key.display()
    ));
    std::fs::write(&w.config, cfg).unwrap();
    (g.secret_key, g.fingerprint)
}

/// Every scalar of `v` as a JSON pointer.
fn leaves(path: String, v: &Value, out: &mut Vec<String>) {
    match v {
        Value::Object(m) => {
            for (k, x) in m {
                leaves(
                    format!("{path}/{}", k.replace('~', "~0").replace('/', "~1")),
                    x,
                    out,
                );
            }
        }
        Value::Array(a) => {
            for (i, x) in a.iter().enumerate() {
                leaves(format!("{path}/{i}"), x, out);
            }
        }
        _ => out.push(path),
    }
}

/// `v` changed as a person editing the file would: a number up by one, a string with
/// a character more, a boolean flipped, a null filled.
fn altered(v: &Value) -> Value {
    match v {
        Value::Number(n) if n.is_i64() => Value::from(n.as_i64().unwrap() + 1),
        Value::Number(n) if n.is_u64() => Value::from(n.as_u64().unwrap() + 1),
        Value::Number(n) => Value::from(n.as_f64().unwrap() + 0.5),
        Value::String(s) => Value::from(format!("{s}0")),
        Value::Bool(b) => Value::from(!b),
        _ => Value::from("altered"),
    }
}

/// `/ledger/tables/<i>` if `field` is inside one table's entry of the ledger.
fn ledger_entry(field: &str) -> Option<&str> {
    let rest = field.strip_prefix("/ledger/tables/")?;
    let i = rest.find('/').unwrap_or(rest.len());
    Some(&field[..field.len() - rest.len() + i])
}

/// `[--json] report --run-id r-signed --sign -o OUT`.
fn sign_args(out: &Path, json: bool) -> Vec<String> {
    let mut a: Vec<String> = json.then(|| "--json".to_string()).into_iter().collect();
    a.extend(["report", "--run-id", "r-signed", "--sign", "-o"].map(String::from));
    a.push(out.display().to_string());
    a
}

/// `[--json] report verify REPORT --sig SIG`.
fn verify_args(report: &Path, sig: &Path, json: bool) -> Vec<String> {
    let mut a: Vec<String> = json.then(|| "--json".to_string()).into_iter().collect();
    a.extend(["report", "verify"].map(String::from));
    a.push(report.display().to_string());
    a.push("--sig".into());
    a.push(sig.display().to_string());
    a
}

fn run(w: &World, args: &[String]) -> std::process::Output {
    w.cmd().args(args).output().unwrap()
}

#[test]
fn a_signed_report_verifies_and_every_altered_field_is_named() {
    let w = World::new();
    let a = w.disarm("r-signed");
    let o = w.run_live("r-signed", &a).output().unwrap();
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));

    // Without a pinned key, --sign refuses and writes nothing.
    let out = w.work.path().join("signed.json");
    let o = run(&w, &sign_args(&out, false));
    assert_eq!(o.status.code(), Some(3), "{}", text(&o));
    assert!(
        text(&o).contains("[report].signing_fingerprint"),
        "{}",
        text(&o)
    );
    assert!(!out.exists());

    let (secret, fingerprint) = pin_report_key(&w);
    let sig = PathBuf::from(format!("{}.asc", out.display()));
    let o = run(&w, &sign_args(&out, true));
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    let v: Value = serde_json::from_slice(&o.stdout).unwrap();
    contract::success("report", &v);
    let bytes = std::fs::read(&out).unwrap();
    let report: Value = serde_json::from_slice(&bytes).unwrap();
    // The report holds the ledger's chain heads and the backup's sha256.
    assert!(
        report["ledger"]["tables"][0]["head"][1].is_string(),
        "{report}"
    );
    assert!(report["context"]["backup"]["sha256"].is_string());
    assert_eq!(report["signed_by"]["fingerprint"], fingerprint.to_string());

    // GnuPG reads the signature.
    let gnupg = tempfile::tempdir().unwrap();
    let public = report["signed_by"]["public_key"].as_str().unwrap();
    std::fs::write(gnupg.path().join("report.pub.asc"), public).unwrap();
    let gpg = |args: &[&str]| {
        std::process::Command::new("gpg")
            .arg("--homedir")
            .arg(gnupg.path())
            .args(["--batch", "--quiet"])
            .args(args)
            .output()
            .unwrap()
    };
    let imported = gpg(&[
        "--import",
        gnupg.path().join("report.pub.asc").to_str().unwrap(),
    ]);
    assert!(imported.status.success(), "{}", text(&imported));
    let checked = gpg(&["--verify", sig.to_str().unwrap(), out.to_str().unwrap()]);
    assert!(checked.status.success(), "gpg --verify: {}", text(&checked));

    // The report key follows the pin rule of the other keys: a variable naming another
    // file is refused, and so is a secret key file that group or others may read.
    let other = w.work.path().join("other.sec.asc");
    std::fs::copy(&secret, &other).unwrap();
    let o = w
        .cmd()
        .env("CUTTER_REPORT_SIGNING_KEY", &other)
        .args(sign_args(&out, false))
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(3), "{}", text(&o));
    assert!(
        text(&o).contains("CUTTER_REPORT_SIGNING_KEY"),
        "{}",
        text(&o)
    );
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(&secret, std::fs::Permissions::from_mode(0o640)).unwrap();
    let o = run(&w, &sign_args(&out, false));
    assert_eq!(o.status.code(), Some(3), "{}", text(&o));
    assert!(text(&o).contains("report signing key"), "{}", text(&o));
    std::fs::set_permissions(&secret, std::fs::Permissions::from_mode(0o600)).unwrap();
    assert_eq!(
        std::fs::read(&out).unwrap(),
        bytes,
        "a refused --sign wrote nothing"
    );

    let o = run(&w, &verify_args(&out, &sig, true));
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    let v: Value = serde_json::from_slice(&o.stdout).unwrap();
    contract::success("report_verify", &v);
    assert_eq!(v["signer"], fingerprint.to_string());

    // The chains grow after a report; the recorded heads still verify.
    let later = w.work.path().join("plan-later.json");
    std::fs::write(&later, common::plan_json("cli-doc-later", 3)).unwrap();
    let b = w.approvals_for("r-later", &later, [0, 1], w.database(), 3600);
    let with_approvals = |args: &[&str]| {
        let mut c = w.cmd();
        c.args(args).arg(&later);
        for x in &b {
            c.args(["--approval", x]);
        }
        c.output().unwrap()
    };
    let o = with_approvals(&["kill-switch", "disarm", "--run-id", "r-later", "--plan"]);
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    let o = with_approvals(&["run", "--mode", "live", "--run-id", "r-later", "--plan"]);
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    let o = run(&w, &verify_args(&out, &sig, false));
    assert_eq!(o.status.code(), Some(0), "after another run: {}", text(&o));

    // An altered file under the old signature is refused.
    let tampered = w.work.path().join("tampered.json");
    std::fs::write(
        &tampered,
        String::from_utf8(bytes.clone())
            .unwrap()
            .replacen("r-signed", "r-signex", 1),
    )
    .unwrap();
    let o = run(&w, &verify_args(&tampered, &sig, false));
    assert_eq!(o.status.code(), Some(3), "{}", text(&o));
    assert!(text(&o).contains("does not verify"), "{}", text(&o));

    // Every field, altered and signed again with the pinned key, is named: through the
    // library (one process, one connection set-up per field).
    std::env::set_var("PGPASSFILE", &w.pgpass);
    let settings = cutter_run::settings::Settings::load(
        &cutter_run::settings::Overrides {
            config: Some(w.config.clone()),
            ..Default::default()
        },
        &|_| None,
    )
    .unwrap();
    let ctx = cutter_run::Ctx {
        settings,
        out: cutter_run::output::Output::new(true),
    };
    let dir = cutter_run::statedir::StateDir::open(&w.state).unwrap();
    let key = cutter_openpgp::SecretKey::from_bytes(&std::fs::read(&secret).unwrap()).unwrap();
    let sign = |v: &Value| {
        let text = serde_json::to_string_pretty(v).unwrap() + "\n";
        let sig = cutter_openpgp::sign_detached(
            &key,
            &cutter_openpgp::Passphrase::new(String::new()),
            text.as_bytes(),
        )
        .unwrap();
        (text, sig)
    };
    let (t, s) = sign(&report);
    let clean = cutter_run::signed::verify(&ctx, &dir, t.as_bytes(), s.as_bytes()).unwrap();
    assert!(clean.differences.is_empty(), "{:?}", clean.differences);
    let mut fields = Vec::new();
    leaves(String::new(), &report, &mut fields);
    assert!(fields.len() > 100, "{} fields", fields.len());
    // The restore proof's fields too: the ledger holds the proof the run made.
    assert!(
        fields
            .iter()
            .any(|f| f.starts_with("/restore_proof/tables/")),
        "{fields:?}"
    );
    let mut unnamed = Vec::new();
    for field in &fields {
        let mut v = report.clone();
        let slot = v.pointer_mut(field).unwrap();
        *slot = altered(slot);
        let (t, s) = sign(&v);
        let named = match cutter_run::signed::verify(&ctx, &dir, t.as_bytes(), s.as_bytes()) {
            // At the field, or at a value that holds it; a recorded chain head is
            // checked as one entry (its id, hash and row count stand or fall together).
            Ok(r) => r.differences.iter().any(|d| {
                let within =
                    |outer: &str| field == outer || field.starts_with(&format!("{outer}/"));
                within(&d.field)
                    || ledger_entry(field).is_some_and(|e| ledger_entry(&d.field) == Some(e))
            }),
            // The few fields verification stands on are refused by name.
            Err(e) => {
                let last = field.rsplit('/').next().unwrap();
                e.to_string().contains(last)
            }
        };
        if !named {
            unnamed.push(field.clone());
        }
    }
    assert!(unnamed.is_empty(), "altered but not named: {unnamed:?}");
    println!("{} fields altered, each named", fields.len());
}

/// A role that may only read the ledger (and the registry it names signers from), with
/// its password in the world's .pgpass: what a reviewer is given.
fn ledger_reader(w: &World) -> String {
    let role = format!("reader_{}", w.db.name());
    let mut admin = w.db.admin();
    admin
        .batch_execute(&format!(
            "CREATE ROLE {role} LOGIN PASSWORD 'read-only';
             GRANT CONNECT ON DATABASE {db} TO {role};
             GRANT USAGE ON SCHEMA cutter_governance TO {role};
             GRANT SELECT ON ALL TABLES IN SCHEMA cutter_governance TO {role};
             GRANT EXECUTE ON FUNCTION cutter_governance.fn_ledger_legacy_digest(text, bigint) TO {role};",
            db = w.db.name()
        ))
        .unwrap();
    let c = w.db.coordinates();
    let mut pgpass = std::fs::read_to_string(&w.pgpass).unwrap();
    pgpass.push_str(&format!(
        "{}:{}:{}:{role}:read-only\n",
        c.host,
        c.port,
        w.db.name()
    ));
    std::fs::write(&w.pgpass, pgpass).unwrap();
    role
}

#[test]
fn a_run_record_edited_consistently_is_named_by_a_reader_of_the_ledger() {
    let w = World::new();
    let a = w.disarm("r-signed");
    let o = w.run_live("r-signed", &a).output().unwrap();
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    pin_report_key(&w);
    let reader = ledger_reader(&w);

    // The reader cannot write: not the ledger, not a unit.
    let cfg =
        w.db.admin_config()
            .with_user(&reader, Some("read-only".into()));
    let mut c = cfg.connect().unwrap();
    for sql in [
        "INSERT INTO cutter_governance.review_decision (run_id, decision, actor) VALUES ('x', 'void', 'x')",
        "DELETE FROM cutter_governance.review_decision",
        "DELETE FROM public.information_unit",
    ] {
        let e = c.batch_execute(sql).unwrap_err();
        let why = e.as_db_error().map(|d| d.message().to_string());
        assert!(
            why.as_deref().is_some_and(|m| m.contains("permission denied")),
            "{sql}: {e:?}"
        );
    }

    // A clean report verifies as the reader.
    let out = w.work.path().join("clean.json");
    let sig = PathBuf::from(format!("{}.asc", out.display()));
    let o = run(&w, &sign_args(&out, false));
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    let verify_as_reader = |report: &Path, sig: &Path| {
        w.cmd()
            .env("CUTTER_VERIFY_USER", &reader)
            .args(verify_args(report, sig, true))
            .output()
            .unwrap()
    };
    let o = verify_as_reader(&out, &sig);
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    let v: Value = serde_json::from_slice(&o.stdout).unwrap();
    contract::success("report_verify", &v);
    // Every field is recomputed from the ledger, the restore proof too (the run proved
    // its backup before it wrote, and its recorded state carries the proof).
    assert_eq!(v["not_checked"], serde_json::json!([]), "{v}");
    let signed: Value = serde_json::from_slice(&std::fs::read(&out).unwrap()).unwrap();
    assert_eq!(signed["restore_proof"]["passed"], true, "{signed}");

    // run.json edited as an operator covering their tracks would, consistently: a
    // phase's timing, an approval's signer (and the name shown for it), the pre
    // snapshot's unit count, and the run's state. The report made from it is signed
    // with the pinned key, and still every edit is named.
    let run_json = w.state.join("runs/r-signed/run.json");
    let mut rec: Value = serde_json::from_slice(&std::fs::read(&run_json).unwrap()).unwrap();
    let phase = rec["context"]["phases"]
        .as_array()
        .unwrap()
        .iter()
        .position(|p| p["phase"] == "cut_leg_a")
        .unwrap();
    let p = &mut rec["context"]["phases"][phase];
    p["started_ms"] = Value::from(p["started_ms"].as_i64().unwrap() - 60_000);
    let other = w.approvers[1].secret.fingerprint().to_string();
    let first = rec["context"]["approvals"][0]["signer"]
        .as_str()
        .unwrap()
        .to_string();
    rec["context"]["approvals"][0]["signer"] = Value::from(other.clone());
    let name = rec["context"]["signers"][&first].take();
    rec["context"]["signers"][&other] = name;
    rec["context"]["signers"]
        .as_object_mut()
        .unwrap()
        .remove(&first);
    let units = &mut rec["context"]["pre_snapshot"]["unit_statuses"]["draft"];
    *units = Value::from(units.as_u64().unwrap_or(0) + 5);
    std::fs::write(&run_json, serde_json::to_vec_pretty(&rec).unwrap()).unwrap();

    let edited = w.work.path().join("edited.json");
    let edited_sig = PathBuf::from(format!("{}.asc", edited.display()));
    let o = run(&w, &sign_args(&edited, false));
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    let o = verify_as_reader(&edited, &edited_sig);
    assert_ne!(o.status.code(), Some(0), "{}", text(&o));
    let said = text(&o);
    for field in [
        format!("/context/phases/{phase}/started_ms"),
        "/context/approvals/0/signer".to_string(),
        format!("/context/signers/{other}"),
        "/context/pre_snapshot/unit_statuses/draft".to_string(),
    ] {
        assert!(said.contains(&field), "{field} not named: {said}");
    }
}

/// `[--json] report --run-id RUN --sign -o OUT`.
fn sign_run(w: &World, run: &str, out: &Path) -> std::process::Output {
    w.cmd()
        .args(["report", "--run-id", run, "--sign", "-o"])
        .arg(out)
        .output()
        .unwrap()
}

#[test]
fn the_restore_proof_is_the_ledgers_and_a_record_it_lacks_is_not_checked() {
    let w = World::new();
    let (secret, _) = pin_report_key(&w);
    let key = cutter_openpgp::SecretKey::from_bytes(&std::fs::read(&secret).unwrap()).unwrap();
    let reader = ledger_reader(&w);
    let a = w.disarm("r-proof");
    let o = w
        .run_live("r-proof", &a)
        .env("CUTTER_PROVE_BACKUP", "off")
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    let artifact = w.state.join("backups/r-proof.dump.pgp");
    let record = w.state.join("backups/r-proof.restore-proof.json");
    let verify_as_reader = |report: &Path| {
        let sig = PathBuf::from(format!("{}.asc", report.display()));
        w.cmd()
            .env("CUTTER_VERIFY_USER", &reader)
            .args(verify_args(report, &sig, true))
            .output()
            .unwrap()
    };

    // Proved where cutter cannot write the ledger: said, and the record is not trusted.
    let o = w
        .cmd()
        .args([
            "--database-url",
            "postgres://cutter_exec@127.0.0.1:1/nowhere",
        ])
        .args(["backup", "restore-proof"])
        .arg(&artifact)
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    assert!(text(&o).contains("ledger: NOT recorded"), "{}", text(&o));
    assert!(record.exists());
    let unrecorded = w.work.path().join("unrecorded.json");
    let o = sign_run(&w, "r-proof", &unrecorded);
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    let report: Value = serde_json::from_slice(&std::fs::read(&unrecorded).unwrap()).unwrap();
    assert!(report["restore_proof"].is_null(), "{report}");
    let o = verify_as_reader(&unrecorded);
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    let v: Value = serde_json::from_slice(&o.stdout).unwrap();
    contract::success("report_verify", &v);
    assert_eq!(v["not_checked"][0]["field"], "/restore_proof", "{v}");
    assert!(
        v["not_checked"][0]["why"]
            .as_str()
            .unwrap()
            .contains("that the ledger does not"),
        "{v}"
    );
    // The file's proof copied into the report and signed again: named.
    let mut forged = report.clone();
    forged["restore_proof"] = serde_json::from_slice(&std::fs::read(&record).unwrap()).unwrap();
    let forged_path = w.work.path().join("forged.json");
    write_signed(&forged_path, &forged, &key);
    let o = verify_as_reader(&forged_path);
    assert_ne!(o.status.code(), Some(0), "{}", text(&o));
    assert!(
        text(&o).contains("/restore_proof: signed {"),
        "{}",
        text(&o)
    );

    // Proved again where cutter can write the ledger: recorded for the run.
    std::fs::remove_file(&record).unwrap();
    let o = w.restore_proof(&artifact);
    assert!(
        text(&o).contains("ledger: recorded for run r-proof (review_decision"),
        "{}",
        text(&o)
    );
    let recorded = w.work.path().join("recorded.json");
    let o = sign_run(&w, "r-proof", &recorded);
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    let report: Value = serde_json::from_slice(&std::fs::read(&recorded).unwrap()).unwrap();
    let file: Value = serde_json::from_slice(&std::fs::read(&record).unwrap()).unwrap();
    assert_eq!(report["restore_proof"], file, "{report}");
    assert_eq!(report["restore_proof"]["passed"], true, "{report}");
    let o = verify_as_reader(&recorded);
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    let v: Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(v["not_checked"], serde_json::json!([]), "{v}");

    // The state directory's record edited consistently (a table's rows in the manifest
    // and restored, both up by five): its signature no longer verifies, so the report
    // names it as untrusted and compares nothing; signed again by the pinned key, the
    // report still shows the ledger's and names how the file differs; and a report.json
    // edited to match the file and signed again is named.
    let mut edited = file.clone();
    let t = &mut edited["tables"][0];
    for side in ["expected", "actual"] {
        let rows = t[side]["rows"].as_u64().unwrap();
        t[side]["rows"] = Value::from(rows + 5);
    }
    let edited_bytes = serde_json::to_vec_pretty(&edited).unwrap();
    std::fs::write(&record, &edited_bytes).unwrap();
    let report_md = || {
        let o = w
            .cmd()
            .args(["report", "--run-id", "r-proof"])
            .output()
            .unwrap();
        text(&o)
    };
    let after_edit = w.work.path().join("after-edit.json");
    let o = sign_run(&w, "r-proof", &after_edit);
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    let md = report_md();
    for out in [text(&o), md.clone()] {
        for needle in [
            "r-proof.restore-proof.json cannot be trusted",
            "does not verify with the pinned signing key",
            "the ledger's restore proof (review_decision",
        ] {
            assert!(out.contains(needle), "{needle}: {out}");
        }
        assert!(!out.contains("differs from the ledger's"), "{out}");
    }
    let shown: Value = serde_json::from_slice(&std::fs::read(&after_edit).unwrap()).unwrap();
    assert_eq!(shown["restore_proof"], file, "the ledger's proof is shown");
    common::sign_record(&w.backup_signing_key(), &record, &edited_bytes);
    let o = sign_run(&w, "r-proof", &after_edit);
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    assert!(
        text(&o).contains("differs from the ledger's restore proof"),
        "{}",
        text(&o)
    );
    let shown: Value = serde_json::from_slice(&std::fs::read(&after_edit).unwrap()).unwrap();
    assert_eq!(shown["restore_proof"], file, "the ledger's proof is shown");
    let md = report_md();
    assert!(
        md.contains("tables/0/expected/rows"),
        "the difference is named: {md}"
    );
    let mut forged = shown.clone();
    forged["restore_proof"] = edited;
    write_signed(&forged_path, &forged, &key);
    let o = verify_as_reader(&forged_path);
    assert_ne!(o.status.code(), Some(0), "{}", text(&o));
    for field in [
        "/restore_proof/tables/0/expected/rows",
        "/restore_proof/tables/0/actual/rows",
    ] {
        assert!(text(&o).contains(field), "{field}: {}", text(&o));
    }
}

/// `v` written to `path` and signed with `key` beside it (`path.asc`), as `--sign` does.
fn write_signed(path: &Path, v: &Value, key: &cutter_openpgp::SecretKey) {
    let text = serde_json::to_string_pretty(v).unwrap() + "\n";
    let sig = cutter_openpgp::sign_detached(
        key,
        &cutter_openpgp::Passphrase::new(String::new()),
        text.as_bytes(),
    )
    .unwrap();
    std::fs::write(path, &text).unwrap();
    std::fs::write(format!("{}.asc", path.display()), sig).unwrap();
}

/// The writer role appends, with `psql`, a `run_state` row to a run that has ended,
/// linked into the hash chain as cutter links its rows (the canonical form is
/// documented): `ledger verify` cannot tell, and `report verify` names the row — after
/// the run's recorded end — and leaves it out, so a report.json edited to match it and
/// signed again is named too.
#[test]
fn a_run_state_row_forged_after_the_run_ended_is_named_by_report_verify() {
    let w = World::new();
    let (secret, _) = pin_report_key(&w);
    let key = cutter_openpgp::SecretKey::from_bytes(&std::fs::read(&secret).unwrap()).unwrap();
    let a = w.disarm("r-signed");
    let o = w.run_live("r-signed", &a).output().unwrap();
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    let clean = w.work.path().join("clean.json");
    let o = run(&w, &sign_args(&clean, false));
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));

    // The forger's row: the run enacted 999 units, says the patch.
    let mut c = w.db.exec_config().connect().unwrap();
    let prev: String = c
        .query_one(
            "SELECT row_hash FROM cutter_governance.review_decision ORDER BY id DESC LIMIT 1",
            &[],
        )
        .unwrap()
        .get(0);
    let id: i64 = c
        .query_one(
            "SELECT nextval(pg_get_serial_sequence('cutter_governance.review_decision', 'id'))",
            &[],
        )
        .unwrap()
        .get(0);
    let payload = serde_json::json!({"at_ms": 1, "event": null,
        "patch": {"context": {"units_enacted": 999}}});
    // Canonical JSON: keys in byte order, no spaces (serde_json's map is ordered).
    let canonical = serde_json::to_string(&payload).unwrap();
    let created = "2026-12-05T08:00:00.000000Z";
    let mut h = cutter_core::CanonicalHasher::new("cutter-ledger-v1/review_decision");
    h.u64_field(id as u64);
    for v in [
        "r-signed",
        "cs-r-signed",
        "run_state",
        canonical.as_str(),
        "forger",
        created,
    ] {
        h.opt_field(Some(v.as_bytes()));
    }
    h.opt_field(Some(prev.as_bytes()));
    let row_hash = h.finish().to_hex();
    let coords = w.db.coordinates();
    let psql = cutter_pg::pg_program("psql").unwrap();
    let q = std::process::Command::new(psql)
        .env("PGPASSFILE", &w.pgpass)
        .env_remove("PGPASSWORD")
        .arg(format!(
            "host={} port={} dbname={} user=cutter_exec",
            coords.host,
            coords.port,
            w.db.name()
        ))
        .args(["-X", "-v", "ON_ERROR_STOP=1", "-c"])
        .arg(format!(
            "INSERT INTO cutter_governance.review_decision \
               (id, run_id, change_set_id, decision, payload, actor, created_at, prev_hash, row_hash) \
             VALUES ({id}, 'r-signed', 'cs-r-signed', 'run_state', '{canonical}', 'forger', \
                     '2026-12-05 08:00:00+00', '{prev}', '{row_hash}')"
        ))
        .output()
        .unwrap();
    assert!(q.status.success(), "psql: {}", text(&q));
    let o = w.cmd().args(["ledger", "verify"]).output().unwrap();
    assert_eq!(
        o.status.code(),
        Some(0),
        "the chain is intact: {}",
        text(&o)
    );

    // A report signed after the forgery (the ledger's head now includes the row): the
    // row is named, by id, as appended after the run's recorded end.
    let after = w.work.path().join("after.json");
    let o = run(&w, &sign_args(&after, false));
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    let after_sig = PathBuf::from(format!("{}.asc", after.display()));
    let o = run(&w, &verify_args(&after, &after_sig, false));
    assert_eq!(o.status.code(), Some(1), "{}", text(&o));
    let said = text(&o);
    assert!(
        said.contains(&format!("review_decision {id} (run_state of run r-signed)"))
            && said.contains("appended after the run's recorded end")
            && said.contains("context.units_enacted"),
        "{said}"
    );
    // run.json and report.json made to agree with the forged row, signed again: the
    // count is named as well, since the refused row is left out of the recomputation.
    let mut forged: Value = serde_json::from_slice(&std::fs::read(&after).unwrap()).unwrap();
    forged["context"]["units_enacted"] = Value::from(999);
    let forged_path = w.work.path().join("forged.json");
    write_signed(&forged_path, &forged, &key);
    let forged_sig = PathBuf::from(format!("{}.asc", forged_path.display()));
    let o = run(&w, &verify_args(&forged_path, &forged_sig, false));
    assert_eq!(o.status.code(), Some(1), "{}", text(&o));
    assert!(
        text(&o).contains("/context/units_enacted: signed 999"),
        "{}",
        text(&o)
    );
    // The report signed before the forgery stops at its recorded head: it still verifies.
    let clean_sig = PathBuf::from(format!("{}.asc", clean.display()));
    let o = run(&w, &verify_args(&clean, &clean_sig, false));
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
}

/// What the run itself appends on the long paths — a failure, its HOLD, compensation,
/// the release and the void; a kill after a commit and `recover` — is never refused:
/// each report verifies.
#[test]
fn a_held_compensated_released_voided_run_and_a_recovered_one_verify() {
    let w = World::new();
    pin_report_key(&w);
    let verified = |id: &str| {
        let out = w.work.path().join(format!("{id}.json"));
        let o = w
            .cmd()
            .args(["report", "--run-id", id, "--sign", "-o"])
            .arg(&out)
            .output()
            .unwrap();
        assert_eq!(o.status.code(), Some(0), "{id}: {}", text(&o));
        let sig = PathBuf::from(format!("{}.asc", out.display()));
        let o = run(&w, &verify_args(&out, &sig, false));
        assert_eq!(o.status.code(), Some(0), "{id}: {}", text(&o));
    };
    let ok = |args: &[&str]| {
        let o = w.cmd().args(args).output().unwrap();
        assert_eq!(o.status.code(), Some(0), "{args:?}: {}", text(&o));
    };
    let a = w.disarm("r-hold");
    let o = w
        .run_live("r-hold", &a)
        .env("CUTTER_FAILPOINT", "leg_b_record:before_commit:error")
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(4), "{}", text(&o));
    verified("r-hold");
    ok(&["compensate", "--run-id", "r-hold"]);
    verified("r-hold");
    let h = w.hold_release_approvals("r-hold");
    ok(&["hold", "release", "--approval", &h[0], "--approval", &h[1]]);
    ok(&["void", "--run-id", "r-hold", "--reason", "test"]);
    verified("r-hold");

    let later = w.work.path().join("plan-kill.json");
    std::fs::write(&later, common::plan_json("cli-doc-kill", 3)).unwrap();
    let b = w.approvals_for("r-kill", &later, [0, 1], w.database(), 3600);
    let with_approvals = |args: &[&str]| {
        let mut c = w.cmd();
        c.args(args).arg(&later);
        for x in &b {
            c.args(["--approval", x]);
        }
        c
    };
    let o = with_approvals(&["kill-switch", "disarm", "--run-id", "r-kill", "--plan"])
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    let o = with_approvals(&["run", "--mode", "live", "--run-id", "r-kill", "--plan"])
        .env("CUTTER_FAILPOINT", "cut_leg_a:after_commit:abort")
        .output()
        .unwrap();
    assert!(!o.status.success(), "{}", text(&o));
    // recover holds the run it finds (exit 4, the HOLD).
    let o = w.cmd().arg("recover").output().unwrap();
    assert_eq!(o.status.code(), Some(4), "{}", text(&o));
    ok(&["compensate", "--run-id", "r-kill"]);
    verified("r-kill");
}
