//! A whole rehearsal, embedded: cut a document, validate the plan, start a throwaway
//! cluster, rehearse the run on a clone of it, print the report. Run it with
//! `cargo run -p cutter-run --example rehearsal`; `cargo xtask test` runs it too
//! (`tests/embedding.rs`).

use cutter_core::{DocumentId, Mode, SourceVersionId};
use cutter_pg::schema;
use cutter_run::settings::{Overrides, Settings};
use cutter_run::{output::Output, statedir::StateDir, Ctx, RunRequest};

type Error = Box<dyn std::error::Error>;

/// Rehearses a cut of the 2013 Constitution of Viet Nam; returns the report's summary.
pub fn rehearse() -> Result<String, Error> {
    let work = tempfile::tempdir()?;
    let w = work.path();
    // 1. The document cut into a plan, checked against the reference schema's row contract.
    let html = include_bytes!("../../../corpus/vn/constitution-2013.html");
    let id = DocumentId::new("vn-constitution-2013")?;
    let opts = cutter_doc::CutOptions::new(id, SourceVersionId::new("2013-11-28")?, "embedder");
    let plan = cutter_doc::cut(html, &opts)?.plan;
    std::fs::write(w.join("plan.json"), plan.to_json())?;
    let valid = plan.validate(&schema::reference_vocabularies());
    let rows = valid.map_err(cutter_core::Error::Contract)?.rows().len();
    // 2. A throwaway cluster: the reference schema, the ledger, the baseline, two roles.
    let cluster = cutter_pg::Cluster::start()?;
    cluster.create_database("target", Some("template0"))?;
    let mut c = cluster.connect("target")?;
    schema::install_reference(&mut c)?;
    cutter_governance::install(&mut c)?;
    schema::install_baseline(&mut c)?;
    let password = format!("{:032x}", rand::random::<u128>());
    for role in [schema::EXEC_ROLE, schema::VERIFY_ROLE] {
        schema::set_login_password(&mut c, role, &cutter_pg::Password::new(password.clone()))?;
    }
    let pgpass = w.join("pgpass");
    cutter_fs::write(
        &pgpass,
        format!("*:*:*:*:{password}\n").as_bytes(),
        cutter_fs::Replace::No,
    )?;
    std::env::set_var("PGPASSFILE", &pgpass);
    // 3. The backup's keys (recipient and manifest signer, both pinned), a state directory.
    let keys = |stem| {
        cutter_backup::generate_keys(w, stem, &format!("{stem} <{stem}@embed.invalid>"), None)
    };
    let (backup, signing) = (keys("backup")?, keys("signing")?);
    StateDir::create(&w.join("state"))?;
    let config = w.join("cutter.toml");
    std::fs::write(&config, format!(
        "state_dir = \"state\"\n[database]\nurl = \"postgres://cutter_exec@127.0.0.1:{}/target?sslmode=disable\"\n\
         [backup]\nrecipient_fingerprint = \"{}\"\nrecipient_key = \"{}\"\nsecret_key = \"{}\"\n\
         signing_fingerprint = \"{}\"\nsigning_key = \"{}\"\n",
        cluster.port(), backup.fingerprint, backup.public_key.display(), backup.secret_key.display(),
        signing.fingerprint, signing.secret_key.display()))?;
    // 4. The rehearsal: backup, restore into a clone, the five phases there, net-zero.
    let overrides = Overrides {
        config: Some(config),
        ..Overrides::default()
    };
    let ctx = Ctx {
        settings: Settings::load(&overrides, &|_| None)?,
        out: Output::new(true),
    };
    let request = RunRequest {
        plan: w.join("plan.json"),
        run_id: "embedded-1".into(),
        mode: Mode::DryRun,
        approvals: Vec::new(),
        stage_only: false,
    };
    let done = cutter_run::run(&ctx, &request)?;
    cluster.stop()?;
    Ok(format!(
        "{rows} rows validated\n{}\nreport.html: {} bytes",
        done.summary,
        std::fs::metadata(done.report_md.with_extension("html"))?.len()
    ))
}

#[allow(dead_code)] // the test includes this file and calls `rehearse`
fn main() -> Result<(), Error> {
    println!("{}", rehearse()?);
    Ok(())
}
