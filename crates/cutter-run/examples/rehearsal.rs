//! A whole rehearsal, embedded: cut a document, validate the plan, start a throwaway
//! cluster, rehearse the run on a clone of it, print the report. Run it with
//! `cargo run -p cutter-run --example rehearsal`; `cargo xtask test` runs it too
//! (`tests/embedding.rs`).

use cutter_core::{DocumentId, SourceVersionId};
use cutter_run::{output::Output, statedir::StateDir, throwaway::ThrowawayTarget};
use cutter_run::{Ctx, RunRequest};

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
    let valid = plan.validate(&cutter_pg::schema::reference_vocabularies());
    let rows = valid.map_err(cutter_core::Error::Contract)?.rows().len();
    // 2. A throwaway cluster: the reference schema, the ledger, the baseline, two roles
    //    whose passwords are in a private .pgpass.
    let target = ThrowawayTarget::start(w, "target")?;
    std::env::set_var("PGPASSFILE", &target.pgpass);
    // 3. The backup's keys (recipient and manifest signer, both pinned), a state directory.
    let keys = |stem| {
        cutter_backup::generate_keys(w, stem, &format!("{stem} <{stem}@embed.invalid>"), None)
    };
    let (backup, signing) = (keys("backup")?, keys("signing")?);
    StateDir::create(&w.join("state"))?;
    let config = w.join("cutter.toml");
    std::fs::write(
        &config,
        format!(
            "state_dir = \"state\"\n[database]\nurl = \"{}\"\n\
         [backup]\nrecipient_fingerprint = \"{}\"\nrecipient_key = \"{}\"\nsecret_key = \"{}\"\n\
         signing_fingerprint = \"{}\"\nsigning_key = \"{}\"\n",
            target.url(),
            backup.fingerprint,
            backup.public_key.display(),
            backup.secret_key.display(),
            signing.fingerprint,
            signing.secret_key.display()
        ),
    )?;
    // 4. The rehearsal: backup, restore into a clone, the five phases there, net-zero.
    let ctx = Ctx::from_config(config, Output::new(true))?;
    let done = cutter_run::run(
        &ctx,
        &RunRequest::rehearsal(w.join("plan.json"), "embedded-1"),
    )?;
    target.cluster.stop()?;
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
