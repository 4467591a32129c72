//! The run report a reviewer reads months later: phases with timings, counts before
//! and after, the backup, the restore proof, approvals and signers, the ledger chain,
//! and the compensation — as Markdown, and as JSON with the same content.

use std::fmt::Write as _;

use cutter_core::{PhaseOutcome, RunState, Snapshot};
use serde::Serialize;
use serde_json::Value;

use crate::ctx::Ctx;
use crate::runs::{rfc3339, RunRecord};
use crate::statedir::StateDir;

/// Extra facts gathered when the report is made.
#[derive(Debug, Clone, Default, Serialize)]
pub struct ReportExtras {
    /// The restore proof's result (JSON), if one was run for this run's backup.
    pub restore_proof: Option<Value>,
    /// Why the restore proof recorded for the backup could not be used.
    pub restore_proof_error: Option<String>,
    /// What the state directory's restore proof record says beside the ledger's, when
    /// they are not the same (a record the ledger lacks, one that differs, or one not
    /// signed for its backup by the pinned key): shown to the operator, not part of the
    /// report's JSON (it is not recorded in the ledger).
    #[serde(skip)]
    pub restore_proof_file: Option<String>,
    /// The ledger verification (JSON), if the target was reachable.
    pub ledger: Option<Value>,
    /// Why the ledger could not be verified, if it could not.
    pub ledger_error: Option<String>,
    /// The gate, HOLD, compensation and release as the journal recorded them.
    pub events: Vec<TimelineEvent>,
    /// An amendment's changed articles, each text before and after.
    pub changed_articles: Vec<ChangedArticle>,
}

/// One article an amendment changed: its text before and after (`None`: repealed). The
/// Markdown report shows it with `cutter_core::side_by_side_markdown`, the HTML report
/// as a table with `<del>` and `<ins>`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, serde::Deserialize)]
pub struct ChangedArticle {
    /// The unit's canonical address.
    pub address: String,
    /// The text it replaced.
    pub old: String,
    /// The new text; `None` if the amendment repeals the article.
    pub new: Option<String>,
}

impl ChangedArticle {
    /// The text after: the new body, or `(repealed)`.
    pub fn new_text(&self) -> &str {
        self.new.as_deref().unwrap_or("(repealed)")
    }
}

/// An event of the run on its timeline: the gate, a failure and its HOLD, a
/// compensation, the release.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, serde::Deserialize)]
pub struct TimelineEvent {
    /// When the journal recorded it, unix milliseconds.
    pub at_ms: i64,
    /// What happened.
    pub what: String,
}

/// The events of `entries` (a run's journal) that a timeline shows.
pub fn timeline_events(
    mode: cutter_core::Mode,
    entries: &[crate::statedir::JournalEntry],
) -> Vec<TimelineEvent> {
    use cutter_core::Event;
    let hold = match mode {
        cutter_core::Mode::Live => "HOLD",
        cutter_core::Mode::DryRun => "rehearsal held",
    };
    entries
        .iter()
        .filter_map(|e| {
            let what = match &e.event {
                Event::GatePassed => "gate passed".to_string(),
                Event::PhaseFailed { phase, .. } => format!("{hold}: {phase} failed"),
                Event::Held { .. } => format!("{hold}: stopped outside a phase"),
                Event::Compensated { compensation } => {
                    format!("compensated: {}", compensation.describe())
                }
                Event::Released => "HOLD released".to_string(),
                Event::Voided => "run id voided".to_string(),
                Event::PhaseStarted { .. } | Event::PhaseCommitted { .. } => return None,
            };
            Some(TimelineEvent {
                at_ms: e.at_ms,
                what,
            })
        })
        .collect()
}

impl ReportExtras {
    /// Whether every hash chain of the ledger is intact; `None` if it was not verified.
    pub fn ledger_intact(&self) -> Option<bool> {
        let tables = self.ledger.as_ref()?["tables"].as_array()?;
        Some(tables.iter().all(|t| t["broken"].is_null()))
    }

    /// The ledger's status in one line: rows and tables checked, or the first broken
    /// link, or why it was not verified.
    pub fn ledger_status(&self) -> String {
        let tables = self
            .ledger
            .as_ref()
            .and_then(|v| v["tables"].as_array())
            .map(Vec::as_slice);
        match (tables, &self.ledger_error) {
            (Some(tables), _) => {
                let rows: u64 = tables.iter().filter_map(|t| t["rows"].as_u64()).sum();
                match tables.iter().find(|t| !t["broken"].is_null()) {
                    None => format!(
                        "{rows} row(s) in {} table(s), every hash chain intact",
                        tables.len()
                    ),
                    Some(t) => format!(
                        "BROKEN: {} row id {}: {} — investigate with `cutter ledger verify`",
                        t["table"].as_str().unwrap_or("?"),
                        t["broken"]["id"],
                        t["broken"]["what"].as_str().unwrap_or("?")
                    ),
                }
            }
            (None, Some(e)) => format!("not verified: {e}"),
            (None, None) => "not verified".into(),
        }
    }

    /// The restore proof's status in one line, if a proof record was found.
    pub fn restore_proof_status(&self) -> Option<String> {
        if let Some(e) = &self.restore_proof_error {
            return Some(format!("not usable: {e}"));
        }
        let v = self.restore_proof.as_ref()?;
        Some(match v["passed"].as_bool() {
            Some(true) => {
                "PASSED: the backup restored into a throwaway cluster and matched its manifest"
                    .into()
            }
            Some(false) => "FAILED: the restored backup did not match its manifest".into(),
            None => "recorded, without a verdict".into(),
        })
    }
}

/// The report as JSON.
pub fn to_json(r: &RunRecord, extras: &ReportExtras) -> Value {
    serde_json::json!({
        "format": "cutter-run-report/1",
        "run_id": r.machine.run_id,
        "mode": r.machine.mode,
        "state": r.machine.state,
        "final_phase": r.machine.final_phase,
        "committed": r.machine.committed,
        "prescribed_compensation": r.machine.prescribed_compensation(),
        "last_error": r.last_error,
        "context": r.context,
        "restore_proof": extras.restore_proof,
        "restore_proof_error": extras.restore_proof_error,
        "ledger": extras.ledger,
        "ledger_intact": extras.ledger_intact(),
        "ledger_error": extras.ledger_error,
        "events": extras.events,
    })
}

/// Units per status before and after (`None`: no snapshot after), over the statuses
/// either snapshot has, in order.
pub(crate) fn unit_counts<'s>(
    pre: &'s Snapshot,
    post: Option<&'s Snapshot>,
) -> Vec<(&'s String, u64, Option<u64>)> {
    let mut statuses: Vec<&String> = pre.unit_statuses.keys().collect();
    if let Some(p) = post {
        statuses.extend(p.unit_statuses.keys());
    }
    statuses.sort();
    statuses.dedup();
    let count = |snap: &Snapshot, s: &String| snap.unit_statuses.get(s).copied().unwrap_or(0);
    statuses
        .into_iter()
        .map(|s| (s, count(pre, s), post.map(|p| count(p, s))))
        .collect()
}

fn counts_table(out: &mut String, pre: Option<&Snapshot>, post: Option<&Snapshot>) {
    let (Some(pre), post) = (pre, post) else {
        out.push_str("No snapshot was taken.\n");
        return;
    };
    out.push_str("| table | before | after |\n|---|---:|---:|\n");
    for (t, s) in &pre.tables {
        let after = post
            .and_then(|p| p.tables.get(t))
            .map_or("—".to_string(), |a| a.rows.to_string());
        let _ = writeln!(out, "| {t} | {} | {after} |", s.rows);
    }
    for (s, b, a) in unit_counts(pre, post) {
        let a = a.map_or("—".to_string(), |a| a.to_string());
        let _ = writeln!(out, "| units {s} | {b} | {a} |");
    }
    if let Some(p) = post {
        let diff = pre.diff(p);
        if diff.is_empty() {
            out.push_str("\nNet-zero: nothing differs between before and after.\n");
        } else {
            out.push_str("\nDifferences:\n");
            for d in diff {
                let _ = writeln!(out, "- {d}");
            }
        }
    }
}

/// The report as Markdown.
pub fn to_markdown(r: &RunRecord, extras: &ReportExtras) -> String {
    let c = &r.context;
    let m = &r.machine;
    let mut out = String::new();
    let _ = writeln!(out, "# cutter run report — {}\n", m.run_id);
    let _ = writeln!(out, "| | |\n|---|---|");
    let _ = writeln!(
        out,
        "| mode | {} |",
        match m.mode {
            cutter_core::Mode::Live => "live",
            cutter_core::Mode::DryRun => "dry-run",
        }
    );
    let _ = writeln!(out, "| state | {} |", m.state);
    let _ = writeln!(
        out,
        "| document | {} (source version {}) |",
        c.document_id, c.source_version_id
    );
    let _ = writeln!(
        out,
        "| plan | {} rows, sha256 {} |",
        c.plan_rows, c.plan_digest
    );
    let _ = writeln!(out, "| target | system identifier {} |", c.target);
    let _ = writeln!(out, "| created | {} |", rfc3339(c.created_at));
    if let Some(e) = &r.last_error {
        let _ = writeln!(
            out,
            "| error | {} |",
            e.replace('|', "\\|").replace('\n', " ")
        );
    }
    out.push_str("\n## Phases\n\n| phase | outcome | duration |\n|---|---|---:|\n");
    for p in &c.phases {
        let outcome = match &p.outcome {
            PhaseOutcome::Committed => "committed".to_string(),
            PhaseOutcome::Failed { reason } => {
                format!("FAILED: {}", reason.replace('|', "\\|").replace('\n', " "))
            }
        };
        let _ = writeln!(
            out,
            "| {} | {outcome} | {} ms |",
            p.phase,
            p.ended_ms - p.started_ms
        );
    }
    out.push_str("\n## Counts before and after\n\n");
    counts_table(&mut out, c.pre_snapshot.as_ref(), c.post_snapshot.as_ref());
    out.push_str("\n## What the phases produced\n\n");
    match &c.backup {
        Some(b) => {
            let _ = writeln!(
                out,
                "- backup: `{}`, {} bytes, sha256 `{}`, encrypted to {}",
                b.artifact, b.size_bytes, b.sha256, b.recipient
            );
        }
        None => out.push_str("- backup: none\n"),
    }
    if let Some(p) = &c.backup_proof {
        let _ = writeln!(out, "- backup proof: {}", p.summary());
    }
    if let Some(cs) = &c.change_set_id {
        let _ = writeln!(out, "- change set: `{cs}`");
    }
    if let Some(n) = c.units_created {
        let _ = writeln!(out, "- units created (draft): {n}");
    }
    if let Some(n) = c.ledger_rows {
        let _ = writeln!(out, "- ledger rows written by leg_b_record: {n}");
    }
    if let Some(v) = &c.verify {
        let _ = writeln!(
            out,
            "- verify: {} checked, {} matched, {} mismatched",
            v.checked, v.matched, v.mismatched
        );
    }
    if let Some(n) = c.units_enacted {
        let _ = writeln!(out, "- units enacted: {n}");
    }
    if !extras.changed_articles.is_empty() {
        out.push_str(
            "\n## Changed articles (before | after; removed ~~struck~~, added **bold**)\n\n",
        );
        for a in &extras.changed_articles {
            out.push_str(&cutter_core::side_by_side_markdown(
                &a.address,
                &a.old,
                a.new_text(),
            ));
            out.push('\n');
        }
    }
    out.push_str("\n## Approvals\n\n");
    if c.approvals.is_empty() {
        out.push_str(match m.mode {
            cutter_core::Mode::DryRun => {
                "None needed: a dry-run writes only to a throwaway clone.\n"
            }
            cutter_core::Mode::Live => "None recorded.\n",
        });
    }
    for a in &c.approvals {
        let who = c
            .signers
            .get(&a.signer)
            .map_or_else(String::new, |name| format!(" ({})", cell(name)));
        let _ = writeln!(
            out,
            "- {} signed by `{}`{who}, valid until {}",
            a.gate,
            a.signer,
            rfc3339(a.statement.expires_at)
        );
    }
    out.push_str("\n## Restore proof\n\n");
    match extras.restore_proof_status() {
        Some(status) => {
            let _ = writeln!(out, "Status: {status}.");
        }
        None => {
            out.push_str("Not run for this backup (`cutter backup restore-proof <artifact>`).\n")
        }
    }
    if let Some(v) = &extras.restore_proof {
        restore_proof_table(&mut out, v);
    }
    if let Some(note) = &extras.restore_proof_file {
        let _ = writeln!(out, "\nNote: {}.", cell(note));
    }
    out.push_str("\n## Ledger\n\n");
    let _ = writeln!(out, "Status: {}.", extras.ledger_status());
    if let Some(v) = &extras.ledger {
        ledger_table(&mut out, v);
    }
    out.push_str("\n## Compensation\n\n");
    match (&m.state, c.compensation) {
        (_, Some(done)) => {
            let _ = writeln!(out, "Executed: {}.", done.describe());
        }
        (RunState::Held { compensation, .. }, None) => {
            let _ = writeln!(
                out,
                "Prescribed, not yet executed: {}. Next: `cutter compensate --run-id {}`.",
                compensation.describe(),
                m.run_id
            );
        }
        _ => {
            let _ = writeln!(out, "{}.", m.prescribed_compensation().describe());
        }
    }
    out
}

/// `s` safe inside a Markdown table cell or list item: one line, `|` escaped.
fn cell(s: &str) -> String {
    s.replace('|', "\\|").replace(['\n', '\r'], " ")
}

/// The array under `key` of a report's JSON part (`tables` of the ledger or the restore
/// proof), empty if it has none.
pub(crate) fn rows<'v>(v: &'v Value, key: &str) -> &'v [Value] {
    v[key].as_array().map(Vec::as_slice).unwrap_or_default()
}

/// A ledger table's first broken link as (row id, what is wrong), if its chain is broken.
pub(crate) fn broken_link(t: &Value) -> Option<(String, String)> {
    (!t["broken"].is_null()).then(|| (t["broken"]["id"].to_string(), text(&t["broken"]["what"])))
}

/// `text` of a JSON value: strings without quotes, anything else as JSON.
pub(crate) fn text(v: &Value) -> String {
    v.as_str().map_or_else(|| v.to_string(), str::to_string)
}

/// The first 16 hex digits of a digest, for a table cell (the JSON report has it whole).
fn short(v: &Value) -> String {
    let s = text(v);
    match s.get(..16) {
        Some(head) if s.len() > 16 => format!("{head}…"),
        _ => s,
    }
}

/// The restore proof as a reviewer reads it: where it restored, then one row per table.
fn restore_proof_table(out: &mut String, v: &Value) {
    let _ = writeln!(
        out,
        "\nArtifact `{}` (sha256 `{}`, manifest signed by `{}`), decrypted with `{}` into {} \
         (system {}, source {}) by pg_restore {} as {}: {} plaintext bytes, {} ms in all.\n",
        text(&v["artifact"]),
        text(&v["artifact_sha256"]),
        text(&v["manifest_signed_by"]),
        text(&v["decrypted_with"]),
        text(&v["restore_target"]),
        text(&v["restore_system_identifier"]),
        text(&v["source_system_identifier"]),
        text(&v["pg_restore_version"]),
        text(&v["restored_as"]),
        v["plaintext_bytes"],
        v["timings"]["total_ms"],
    );
    out.push_str("| table | rows in manifest | rows restored | content digest | ok |\n");
    out.push_str("|---|---:|---:|---|---|\n");
    for t in rows(v, "tables") {
        let (expected, actual) = (&t["expected"], &t["actual"]);
        let digest = if actual.is_null() {
            format!("`{}`, not restored", short(&expected["digest"]))
        } else if actual["digest"] == expected["digest"] {
            format!("`{}` equal", short(&expected["digest"]))
        } else {
            format!(
                "`{}` expected, `{}` restored",
                short(&expected["digest"]),
                short(&actual["digest"])
            )
        };
        let _ = writeln!(
            out,
            "| {} | {} | {} | {digest} | {} |",
            text(&t["table"]),
            expected["rows"],
            if actual.is_null() {
                "-".to_string()
            } else {
                actual["rows"].to_string()
            },
            if t["ok"] == true { "yes" } else { "**NO**" },
        );
    }
    if let Some(triggers) = v["triggers"].as_object() {
        let list: Vec<String> = triggers
            .iter()
            .map(|(k, s)| format!("{k} `{}`", text(s)))
            .collect();
        let _ = writeln!(
            out,
            "\nImmutability triggers after the restore: {} (`O` = enabled).",
            list.join(", ")
        );
    }
    for f in v["failures"]
        .as_array()
        .map(Vec::as_slice)
        .unwrap_or_default()
    {
        let _ = writeln!(out, "- failure: {}", text(f));
    }
}

/// The ledger's hash chains, one row per table.
fn ledger_table(out: &mut String, v: &Value) {
    out.push_str("\n| table | rows | head id | head hash | chain |\n|---|---:|---:|---|---|\n");
    for t in rows(v, "tables") {
        let chain = broken_link(t).map_or_else(
            || "intact".to_string(),
            |(id, what)| format!("**BROKEN** at id {id}: {}", cell(&what)),
        );
        let head = match &t["head"] {
            Value::Null => "- | -".to_string(),
            h => format!("{} | `{}`", h[0], short(&h[1])),
        };
        let _ = writeln!(
            out,
            "| {} | {} | {head} | {chain} |",
            text(&t["table"]),
            t["rows"],
        );
    }
}

/// What a report adds to the run record, gathered now: the ledger's chain verification
/// (`cutter ledger verify`) and the restore proof the ledger holds for a live run's
/// backup (`cutter_governance::ledger_restore_proof`; the state directory's record
/// `backups/<name>.restore-proof.json` is only compared with it), or for a rehearsal the
/// state directory's record. A state directory's record is used (shown or compared) only
/// when the key `[backup].signing_fingerprint` pins signed it for its own backup
/// ([`cutter_backup::read_verified_record`]); any other is named with why. Never fails:
/// what cannot be read is reported as such. The database is read as the read-only role.
pub fn report_extras(ctx: &Ctx, dir: &StateDir, rec: &RunRecord) -> ReportExtras {
    let read_only = crate::ctx::target_config(ctx)
        .map(|c| c.with_user(&ctx.settings.verify_user, None))
        .map_err(|e| e.to_string());
    let pin = ctx.settings.backup_signing_fingerprint.as_deref();
    report_extras_in(read_only, dir, rec, pin, None)
}

/// [`report_extras`] reading the database through `read_only`, the ledger's
/// `review_decision` rows only as far as id `through` (if given), and trusting a state
/// directory's proof record only if signed by the key `signing_pin` (the configured
/// `[backup].signing_fingerprint`) pins.
pub fn report_extras_as(
    read_only: &cutter_pg::ConnConfig,
    dir: &StateDir,
    rec: &RunRecord,
    signing_pin: Option<&str>,
    through: Option<i64>,
) -> ReportExtras {
    report_extras_in(Ok(read_only.clone()), dir, rec, signing_pin, through)
}

/// The state directory's restore proof record of `rec`'s backup: its path, and its
/// content if the key `signing_pin` pins signed it for that backup, else why it is not
/// used; `None` if there is none. A rehearsal's record is of the target's backup its
/// clone was restored from, which the state directory keeps under the rehearsal's id.
fn state_dir_proof(
    dir: &StateDir,
    rec: &RunRecord,
    signing_pin: Option<&str>,
) -> Option<(std::path::PathBuf, std::result::Result<Value, String>)> {
    let stem = rec.context.backup.as_ref().map_or_else(
        || rec.machine.run_id.to_string(),
        |b| b.artifact.trim_end_matches(".dump.pgp").to_string(),
    );
    let backups = dir.backups();
    let proof = backups.join(cutter_backup::proof_record_name(
        &stem,
        cutter_core::ProofKind::Full,
    ));
    match std::fs::symlink_metadata(&proof) {
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return None,
        Err(e) => return Some((proof.clone(), Err(format!("{}: {e}", proof.display())))),
        Ok(_) => {}
    }
    let shown = proof.display().to_string();
    let again = "prove the backup again with `cutter backup restore-proof`";
    let content = cutter_backup::signing_pin(signing_pin)
        .map_err(|e| {
            format!(
                "restore proof record {shown} cannot be trusted: only a record the pinned backup signing key signed counts, and {e}"
            )
        })
        .and_then(|pin| {
            let name = cutter_core::RunId::new(&stem).map_err(|e| {
                format!("restore proof record {shown} names no backup ({e}); {again}")
            })?;
            cutter_backup::read_verified_record(&proof, &backups, &name, &pin).map_err(|e| match e {
                cutter_backup::Error::ProofRecord { .. } => e.to_string(),
                e => format!(
                    "restore proof record {shown} cannot be checked against its backup's signed manifest: {e}; it does not count as a proof: {again}"
                ),
            })
        });
    Some((proof, content))
}

/// `proof` (recorded at `source`) as the report shows it: the proof, or why it is not of
/// `rec`'s backup.
fn judge_proof(rec: &RunRecord, proof: Value, source: &str) -> (Option<Value>, Option<String>) {
    let proved = proof["artifact_sha256"]
        .as_str()
        .unwrap_or("none")
        .to_string();
    match rec.context.backup.as_ref().map(|b| b.sha256.to_string()) {
        Some(sha) if proved != sha => (
            None,
            Some(format!(
                "{source} proves an artifact with sha256 {proved}, not this run's backup (sha256 {sha}); prove this backup with `cutter backup restore-proof`"
            )),
        ),
        _ => (Some(proof), None),
    }
}

fn report_extras_in(
    read_only: std::result::Result<cutter_pg::ConnConfig, String>,
    dir: &StateDir,
    rec: &RunRecord,
    signing_pin: Option<&str>,
    through: Option<i64>,
) -> ReportExtras {
    let mut extras = ReportExtras::default();
    match dir.journal(&rec.machine.run_id).and_then(|j| j.read()) {
        Ok((entries, _torn)) => extras.events = timeline_events(rec.machine.mode, &entries),
        Err(e) => tracing::warn!("the report's events: {e}"),
    }
    let file = state_dir_proof(dir, rec, signing_pin);
    match rec.machine.mode {
        cutter_core::Mode::Live => {
            match read_only.and_then(|c| c.connect().map_err(|e| e.to_string())) {
                Ok(mut client) => {
                    match cutter_governance::verify_ledger(&mut client) {
                        Ok(r) => {
                            extras.ledger = serde_json::to_value(&r).ok();
                            extras.changed_articles =
                                changed_articles(&mut client, &rec.machine.run_id);
                        }
                        Err(e) => extras.ledger_error = Some(e.to_string()),
                    }
                    let run = &rec.machine.run_id;
                    match cutter_governance::ledger_restore_proof(&mut client, run, through) {
                        Ok(found) => {
                            extras.restore_proof_file = compare_with_file(file, found.as_ref());
                            if let Some((id, proof)) = found {
                                let source =
                                    format!("the ledger's restore proof (review_decision {id})");
                                (extras.restore_proof, extras.restore_proof_error) =
                                    judge_proof(rec, proof, &source);
                            }
                        }
                        Err(e) => {
                            extras.restore_proof_error = Some(format!(
                                "the ledger's restore proof of run {run} could not be read: {e}"
                            ))
                        }
                    }
                }
                Err(e) => {
                    extras.ledger_error =
                        Some(format!("{e}; verify it later with `cutter ledger verify`"));
                    extras.restore_proof_error =
                        Some("not read: the ledger, which holds it, could not be reached".into());
                }
            }
        }
        cutter_core::Mode::DryRun => {
            extras.ledger_error = Some(
                "a dry-run writes its ledger rows only to its throwaway clone, which is gone"
                    .into(),
            );
            // A rehearsal's ledger is gone with its clone: its record is the state
            // directory's, of the target's backup the clone was restored from (the
            // rehearsal's own backup was of the clone and went with it), which the
            // signature check has tied to that backup's signed manifest.
            match file {
                Some((_, Ok(v))) => extras.restore_proof = Some(v),
                Some((_, Err(e))) => extras.restore_proof_error = Some(e),
                None => {}
            }
        }
    }
    if let Some(note) = &extras.restore_proof_file {
        tracing::warn!("run {}: {note}", rec.machine.run_id);
    }
    extras
}

/// What the state directory's restore proof record (`file`) says beside the ledger's
/// (`ledger`: its row id and proof), if they are not the same: the ledger's is the one
/// shown; a record that is not signed for its backup by the pinned key is named as
/// untrusted and never compared, and a signed one the ledger lacks is not checked.
fn compare_with_file(
    file: Option<(std::path::PathBuf, std::result::Result<Value, String>)>,
    ledger: Option<&(i64, Value)>,
) -> Option<String> {
    let (path, content) = file?;
    let path = path.display();
    match (content, ledger) {
        // An untrusted record is named, never compared: its content says nothing.
        (Err(e), Some((id, _))) => Some(format!(
            "{e}; the ledger's restore proof (review_decision {id}) is shown"
        )),
        (Err(e), None) => Some(format!(
            "{e}; the ledger holds no restore proof of this run either"
        )),
        (Ok(v), Some((_, l))) if &v == l => None,
        (Ok(v), Some((id, l))) => {
            let mut fields = Vec::new();
            crate::signed::diff("", &v, l, &mut fields);
            let fields: Vec<String> = fields.into_iter().map(|d| d.field).take(8).collect();
            Some(format!(
                "the state directory's {path} differs from the ledger's restore proof (review_decision \
                 {id}) in {}: the ledger's is shown",
                fields.join(", ")
            ))
        }
        (Ok(_), None) => Some(format!(
            "the state directory holds a signed restore proof record, {path}, that the ledger does \
             not: it is not shown and not checked against the ledger (it was made where cutter \
             could not write the ledger); prove the backup again with `cutter backup \
             restore-proof` where it can"
        )),
    }
}

/// An amendment run's changed articles, side by side (at most 200; none if they cannot
/// be read: the report says what it can).
fn changed_articles(
    client: &mut postgres::Client,
    run: &cutter_core::RunId,
) -> Vec<ChangedArticle> {
    let cs = cutter_core::ChangeSetId::for_run(run);
    cutter_pg::amend::changed_texts(client, cs.as_str(), 200)
        .map(|v| {
            v.into_iter()
                .map(|t| ChangedArticle {
                    address: t.canonical_address,
                    old: t.old_body,
                    new: (!t.repeal).then_some(t.new_body),
                })
                .collect()
        })
        .unwrap_or_default()
}
