//! `cargo xtask proof --rollback-only`: the real SQL of every mutating phase (and of
//! compensation A and B) executed against a real database inside transactions that
//! always roll back; each phase's contract asserted inside them; then net-zero asserted:
//! counts, content digests of the surface tables, trigger states and system identifier
//! identical before and after.
//!
//! Without arguments it starts a throwaway cluster with the reference schema and the
//! baseline. With `--database-url` it targets that database and requires
//! `--expect-system-identifier`, checked before anything else runs.
//!
//! The phases run in one rollback-only transaction: cut_leg_a through cutter-pg's
//! adapter, leg_b_record and write_verify through cutter-governance's writers (chained
//! ledger rows; `verify_ledger` recomputes the chains inside the transaction),
//! lifecycle_enact through the adapter. Compensation A (soft and hard) and B run through
//! cutter-compensation's executors in a rollback-only transaction of their own
//! ([`crate::proof_compensation`]).

use std::fmt::Write as _;
use std::time::{SystemTime, UNIX_EPOCH};

use cutter_core::{ChangeSetId, Phase, RunId, Snapshot, SystemIdentifier};
use cutter_pg::fixtures;
use cutter_pg::schema::EXEC_ROLE;
use cutter_pg::testing::{TestCluster, TEMPLATE_DB};
use cutter_pg::{ConnConfig, RollbackOnly, Target};
use postgres::GenericClient;

/// The actor the proof's ledger rows name.
const ACTOR: &str = "cutter-proof";

#[derive(Default)]
struct Proofs {
    rows: Vec<(String, bool, String)>,
}

impl Proofs {
    fn record(&mut self, name: &str, ok: bool, detail: impl Into<String>) -> bool {
        self.rows.push((name.to_string(), ok, detail.into()));
        ok
    }
    fn result(&mut self, name: &str, r: Result<String, String>) -> bool {
        match r {
            Ok(d) => self.record(name, true, d),
            Err(d) => self.record(name, false, d),
        }
    }
    fn print(&self) {
        let w = self
            .rows
            .iter()
            .map(|r| r.0.chars().count())
            .max()
            .unwrap_or(5);
        println!();
        println!("{:>2}  {:<w$}  {:<6}  detail", "#", "proof", "result");
        for (i, (name, ok, detail)) in self.rows.iter().enumerate() {
            let mut lines = detail.lines();
            println!(
                "{:>2}  {:<w$}  {:<6}  {}",
                i + 1,
                name,
                if *ok { "PASS" } else { "FAIL" },
                lines.next().unwrap_or("")
            );
            for l in lines {
                println!("{:>2}  {:<w$}  {:<6}  {}", "", "", "", l);
            }
        }
        let failed = self.rows.iter().filter(|r| !r.1).count();
        println!();
        println!(
            "{} proofs, {} passed, {} failed",
            self.rows.len(),
            self.rows.len() - failed,
            failed
        );
    }
    fn all_ok(&self) -> bool {
        self.rows.iter().all(|r| r.1)
    }
}

/// `cargo xtask proof --rollback-only [--database-url URL --expect-system-identifier ID]`.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// Required: every statement runs in a transaction that rolls back.
    #[arg(long)]
    rollback_only: bool,
    /// Target this database (libpq URL or keyword string; the password from PGPASSWORD
    /// or the password file, never on the command line).
    #[arg(long, value_name = "URL")]
    database_url: Option<String>,
    /// The target's system_identifier; required with --database-url.
    #[arg(long, value_name = "ID")]
    expect_system_identifier: Option<u64>,
}

/// Refuses what the flags alone cannot say: a proof that is not rollback-only, a
/// password on the command line, a URL without the server it must be.
fn check(a: &Args) -> Result<(), String> {
    if !a.rollback_only {
        return Err("only rollback-only proofs exist; pass --rollback-only explicitly".into());
    }
    if let Some(url) = &a.database_url {
        // Command lines are visible to every user of the machine (/proc/<pid>/cmdline).
        if ConnConfig::string_has_password(url).map_err(|e| format!("--database-url: {e}"))? {
            return Err(
                "--database-url contains a password; secrets are never accepted on the command line: \
                 put it in ~/.pgpass (mode 0600), PGPASSFILE or PGPASSWORD"
                    .into(),
            );
        }
    }
    match (&a.database_url, &a.expect_system_identifier) {
        (Some(_), None) => Err(
            "--database-url requires --expect-system-identifier (read it with \
             `SELECT system_identifier FROM pg_control_system()` and check it is the server you mean)"
                .into(),
        ),
        (None, Some(_)) => {
            Err("--expect-system-identifier only makes sense with --database-url".into())
        }
        _ => Ok(()),
    }
}

pub fn main(a: &Args) -> Result<(), String> {
    check(a)?;
    let mut proofs = Proofs::default();
    let outcome = match &a.database_url {
        Some(url) => {
            let config = ConnConfig::from_process_env(Some(url)).map_err(|e| e.to_string())?;
            let expect = SystemIdentifier::new(
                a.expect_system_identifier
                    .ok_or("missing --expect-system-identifier")?,
            );
            println!("proof --rollback-only against {}", config.redacted());
            run(&mut proofs, &config, None, expect)
        }
        None => {
            eprintln!(
                "proof: starting a throwaway cluster with the reference schema and the baseline"
            );
            let tc = TestCluster::start().map_err(|e| e.to_string())?;
            let db = "proof";
            tc.cluster()
                .create_database(db, Some(TEMPLATE_DB))
                .map_err(|e| e.to_string())?;
            let c = tc.coordinates();
            let exec = c.config(db, EXEC_ROLE).map_err(|e| e.to_string())?;
            let owner = c.config(db, &c.superuser).map_err(|e| e.to_string())?;
            // Two throwaway approvers, registered by the owner (the bootstrap): the
            // database's gate records approvals only by registered approvers.
            cutter_compensation::testing::ThrowawayApprovers::generate()
                .and_then(|a| {
                    a.register(
                        &mut owner
                            .connect()
                            .map_err(|x| cutter_compensation::Error::Invalid(x.to_string()))?,
                    )
                })
                .map_err(|e| e.to_string())?;
            println!(
                "proof --rollback-only against a throwaway cluster (database {db}, phases as {EXEC_ROLE}, \
                 trigger layer also as the owner)"
            );
            let r = run(
                &mut proofs,
                &exec,
                Some(&owner),
                SystemIdentifier::new(c.system_identifier),
            );
            drop(tc);
            r
        }
    };
    proofs.print();
    outcome?;
    if proofs.all_ok() {
        Ok(())
    } else {
        Err("rollback-only proof failed".into())
    }
}

/// Row counts of the surface tables and the enacted units.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Counts {
    units: i64,
    versions: i64,
    log: i64,
    change_sets: i64,
    affected: i64,
    manifests: i64,
    decisions: i64,
    verify: i64,
    signatures: i64,
    enacted: i64,
}

fn counts(c: &mut impl GenericClient) -> Result<Counts, String> {
    let r = c
        .query_one(
            "SELECT (SELECT count(*) FROM public.information_unit), \
                    (SELECT count(*) FROM public.unit_version), \
                    (SELECT count(*) FROM public.iu_lifecycle_log), \
                    (SELECT count(*) FROM cutter_governance.cut_change_set), \
                    (SELECT count(*) FROM cutter_governance.cut_change_set_affected_row), \
                    (SELECT count(*) FROM cutter_governance.manifest_envelope), \
                    (SELECT count(*) FROM cutter_governance.review_decision), \
                    (SELECT count(*) FROM cutter_governance.verify_result), \
                    (SELECT count(*) FROM cutter_governance.dot_pair_signature), \
                    (SELECT count(*) FROM public.information_unit WHERE lifecycle_status = 'enacted')",
            &[],
        )
        .map_err(|e| format!("counting the mutation surface: {e}"))?;
    Ok(Counts {
        units: r.get(0),
        versions: r.get(1),
        log: r.get(2),
        change_sets: r.get(3),
        affected: r.get(4),
        manifests: r.get(5),
        decisions: r.get(6),
        verify: r.get(7),
        signatures: r.get(8),
        enacted: r.get(9),
    })
}

fn sqlstate(e: &postgres::Error) -> String {
    e.code()
        .map_or_else(|| "-----".to_string(), |c| c.code().to_string())
}

fn db_message(e: &postgres::Error) -> String {
    e.as_db_error()
        .map_or_else(|| e.to_string(), |d| d.message().to_string())
}

/// Expects `sql` to be refused (in a savepoint that is rolled back either way); the
/// acceptable refusals are the trigger (55000) and the privilege layer (42501).
fn refused(
    ro: &mut RollbackOnly<'_>,
    sql: &str,
    params: &[&(dyn postgres::types::ToSql + Sync)],
) -> Result<String, String> {
    let r = ro
        .probe(|s| Ok(s.client().execute(sql, params)))
        .map_err(|e| e.to_string())?;
    match r {
        Ok(n) => Err(format!("NOT refused: {n} row(s) changed")),
        Err(e) if sqlstate(&e) == "55000" => Ok(format!(
            "refused by the trigger [55000]: {}",
            db_message(&e)
        )),
        Err(e) if sqlstate(&e) == "42501" => {
            Ok(format!("refused by privileges [42501]: {}", db_message(&e)))
        }
        Err(e) => Err(format!(
            "failed, but not as refused: [{}] {}",
            sqlstate(&e),
            db_message(&e)
        )),
    }
}

/// Runs one of cutter-governance's writers in a savepoint of the proof (kept if it
/// succeeds, undone if it fails), with the writer's own error text.
fn governed<R>(
    ro: &mut RollbackOnly<'_>,
    f: impl FnOnce(&mut RollbackOnly<'_>) -> cutter_governance::Result<R>,
) -> Result<R, String> {
    let mut why = None;
    ro.step(|s| {
        f(s).map_err(|x| {
            let reason = x.to_string();
            why = Some(reason.clone());
            cutter_pg::Error::Install {
                what: "a ledger writer".into(),
                reason,
            }
        })
    })
    .map_err(|x| why.take().unwrap_or_else(|| x.to_string()))
}

fn summary(s: &Snapshot) -> String {
    let mut out = String::new();
    for (t, st) in &s.tables {
        let _ = write!(out, "{}={} ", t.name(), st.rows);
    }
    let _ = write!(
        out,
        "| statuses {:?} | triggers {:?}",
        s.unit_statuses, s.triggers
    );
    out
}

fn run(
    p: &mut Proofs,
    config: &ConnConfig,
    owner: Option<&ConnConfig>,
    expect: SystemIdentifier,
) -> Result<(), String> {
    let e = |e: cutter_pg::Error| e.to_string();
    let mut target = Target::connect(config).map_err(e)?;
    let sysid = target.system_identifier();
    if !p.record(
        "identity: system identifier",
        sysid == expect,
        format!("connected to {sysid}, expected {expect}"),
    ) {
        return Err("wrong server: nothing was executed".into());
    }

    let pf = target.preflight().map_err(e)?;
    p.record(
        "preflight: target conforms to the reference",
        pf.is_ok(),
        if pf.is_ok() {
            format!(
                "schema version {}, as {}, PostgreSQL {}",
                pf.schema_version.unwrap_or(0),
                pf.connected_as,
                pf.server_version
            )
        } else {
            pf.findings
                .iter()
                .map(|f| f.to_string())
                .collect::<Vec<_>>()
                .join("\n")
        },
    );

    let pre = target.snapshot().map_err(e)?;
    p.record(
        "pre snapshot",
        pre.immutability_triggers_enabled(),
        summary(&pre),
    );

    // pre_write_backup: the backup only reads; one read-only snapshot of the surface tables.
    let backup = target.read_only(|tx| {
        let stats = cutter_pg::surface::surface_stats(tx, None)?;
        let mut sp = tx.transaction().map_err(|x| cutter_pg::Error::db("SAVEPOINT", &x, ""))?;
        let write = sp.execute(
            "INSERT INTO cutter_governance.review_decision (run_id, decision, actor) VALUES ('x', 'x', 'x')",
            &[],
        );
        drop(sp);
        Ok((stats, write))
    });
    p.result(
        "pre_write_backup: one read-only snapshot of the surface tables",
        match backup {
            Ok((stats, Err(w))) if sqlstate(&w) == "25006" && stats == pre.tables => Ok(format!(
                "counts and digests equal the pre snapshot; a write inside is refused [25006]: {}",
                db_message(&w)
            )),
            Ok((_, Ok(_))) => {
                Err("a write inside the read-only transaction was NOT refused".into())
            }
            Ok((stats, Err(w))) => Err(format!(
                "digests equal: {}; write refused with [{}] {}",
                stats == pre.tables,
                sqlstate(&w),
                db_message(&w)
            )),
            Err(x) => Err(x.to_string()),
        },
    );

    let stamp = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    let run_id =
        RunId::new(format!("proof-{stamp}-{}", std::process::id())).map_err(|x| x.to_string())?;
    let change_set = ChangeSetId::for_run(&run_id);
    let doc = format!("cutter-proof-{stamp}-{}", std::process::id());
    let plan = fixtures::one_row_plan(&doc).map_err(|r| r.to_string())?;
    let second = fixtures::row(&doc, 2);

    {
        let mut ro = target.rollback_only(&run_id).map_err(e)?;
        p.record(
            "rollback-only transaction opened",
            true,
            if ro.commit_refused_by_server() {
                "a COMMIT would be refused by the server (deferred trap armed)"
            } else {
                "no TEMP privilege for the COMMIT trap: rollback is checked by transaction id at the end"
            },
        );

        // The run lock excludes a second session, naming the holder.
        let mut other = Target::connect(config).map_err(e)?;
        let other_run = RunId::new("proof-intruder").map_err(|x| x.to_string())?;
        p.result(
            "run lock: a second run on this target is refused",
            match other.lock_target(&other_run) {
                Err(cutter_pg::Error::Locked { holder, .. })
                    if holder.run_id.as_deref() == Some(run_id.as_str()) =>
                {
                    Ok(format!("refused: locked by {holder}"))
                }
                Err(x) => Err(format!("unexpected error: {x}")),
                Ok(()) => Err("the second session got the lock".into()),
            },
        );
        drop(other);

        p.result(
            "guard inside the transaction",
            ro.guard(expect, Phase::CutLegA)
                .map(|()| {
                    "system identifier, both triggers enabled (O), functions and tables present"
                        .to_string()
                })
                .map_err(e),
        );

        // The database's gate (reference V5): without recorded live-run approvals it
        // refuses the write; the proof then records two for its run (naming registered
        // approvers, never committed) and writes through the same gate a run does.
        let unauthorized = ro.step(|s| s.cut_leg_a(&plan, &mut |_| {}));
        p.result(
            "database gate: cut_leg_a without recorded approvals is refused",
            match unauthorized {
                Err(x) if x.to_string().contains("no live-run authorization") => Ok(format!(
                    "refused: {}",
                    x.to_string().lines().next().unwrap_or("")
                )),
                Err(x) => Err(format!("refused, but not by the gate: {x}")),
                Ok(_) => Err("the database wrote units for a run with no recorded approval".into()),
            },
        );
        p.result(
            "database gate: two live-run approvals recorded for the proof's run",
            cutter_governance::prove_authorize(&mut ro, plan.digest())
                .map(|ids| format!("dot_pair_signature rows {ids:?} (rolled back with the proof)"))
                .map_err(|x| x.to_string()),
        );

        // cut_leg_a: the adapter's batch SQL with a one-row plan.
        let b = counts(ro.client())?;
        let cut = ro.step(|s| s.cut_leg_a(&plan, &mut |_| {}));
        p.result(
            "cut_leg_a: one-row plan through fn_iu_create_batch",
            match cut {
                Ok(rep) => {
                    let a = counts(ro.client())?;
                    let status: String = ro
                        .client()
                        .query_one(
                            "SELECT string_agg(lifecycle_status, ',') FROM public.information_unit WHERE change_set_id = $1",
                            &[&change_set.as_str()],
                        )
                        .map_err(|x| x.to_string())?
                        .get(0);
                    let ok = a.units == b.units + 1 && a.versions == b.versions + 1 && status == "draft" && rep.units_created == 1;
                    let d = format!(
                        "information_unit {}→{}, unit_version {}→{}, status {status}, change set {}",
                        b.units, a.units, b.versions, a.versions, rep.change_set_id
                    );
                    if ok {
                        Ok(d)
                    } else {
                        Err(d)
                    }
                }
                Err(x) => Err(x.to_string()),
            },
        );

        // The F2 contract of seed 003, through the writer's batch function (since V5 the
        // per-row fn_iu_create is not the writer's: refused by privilege). In savepoints
        // that are rolled back: the change set keeps exactly the plan's units, as
        // leg_b_record requires.
        let per_row = ro.probe(|s| {
            Ok(s.client().query_one(
                "SELECT status FROM public.fn_iu_create($1, 'Điều 2', 'body', 'proof', 'law_unit', 'article', 'law', $2, 'v1', NULL, $3)",
                &[&second.canonical_address, &doc, &change_set.as_str()],
            ))
        });
        p.result(
            "fn_iu_create: not the writer's (V5)",
            match per_row {
                Ok(Err(x)) if sqlstate(&x) == "42501" => Ok(format!("[42501] {}", db_message(&x))),
                Ok(Err(x)) => Err(format!("[{}] {}", sqlstate(&x), db_message(&x))),
                Ok(Ok(_)) => Err("the writer called fn_iu_create".into()),
                Err(x) => Err(x.to_string()),
            },
        );
        let batch_of_one = |s: &mut RollbackOnly<'_>, section: Option<&str>, address: &str| {
            s.client().query_one(
                "SELECT created FROM public.fn_iu_create_batch($1, $2, 'v1', 1, ARRAY[$3::text], ARRAY[$4::text], \
                 ARRAY[$5::text], ARRAY[$6::text], ARRAY[$7::text], ARRAY[$8::text], ARRAY[$9::text], ARRAY[NULL]::text[])",
                &[
                    &change_set.as_str(),
                    &doc,
                    &address,
                    &second.title,
                    &second.body,
                    &second.actor,
                    &second.unit_kind,
                    &section,
                    &second.publication_type,
                ],
            )
        };
        let b = counts(ro.client())?;
        let created = ro.probe(|s| {
            let row = batch_of_one(s, second.section_type.as_deref(), &second.canonical_address);
            let a = counts(s.client()).map_err(|x| cutter_pg::Error::Install {
                what: "counts".into(),
                reason: x,
            })?;
            Ok((row, a))
        });
        let after = counts(ro.client())?;
        p.result(
            "fn_iu_create_batch (F2): a row of the authorized run is created",
            match created {
                Ok((Ok(row), a)) => {
                    let n: i64 = row.get(0);
                    let d = format!(
                        "{n} created, information_unit {}→{} (undone by its savepoint: {})",
                        b.units, a.units, after.units
                    );
                    if n == 1 && a.units == b.units + 1 && after == b {
                        Ok(d)
                    } else {
                        Err(d)
                    }
                }
                Ok((Err(x), _)) => Err(format!("[{}] {}", sqlstate(&x), db_message(&x))),
                Err(x) => Err(x.to_string()),
            },
        );

        let b = counts(ro.client())?;
        let null_section = ro.probe(|s| Ok(batch_of_one(s, None, &format!("{doc}/null-section"))));
        let a = counts(ro.client())?;
        p.result(
            "fn_iu_create_batch (F2): NULL section_type rejected, choices listed",
            match null_section {
                Ok(Err(x))
                    if sqlstate(&x) == "22004"
                        && db_message(&x).contains("section_type: Multiple, choose: ")
                        && a == b =>
                {
                    Ok(format!("[22004] {}", db_message(&x)))
                }
                Ok(Err(x)) => Err(format!("[{}] {}", sqlstate(&x), db_message(&x))),
                Ok(Ok(_)) => Err("NOT rejected".into()),
                Err(x) => Err(x.to_string()),
            },
        );

        // leg_b_record: cutter-governance's writer, chained rows: the change set, its
        // affected rows, the manifest (a rollback-only proof has no approvals, so no
        // pair signatures).
        let b = counts(ro.client())?;
        let legb = governed(&mut ro, |s| {
            cutter_governance::prove_leg_b_record(s, &plan, ACTOR)
        });
        let a = counts(ro.client())?;
        p.result(
            "leg_b_record: chained ledger rows appear (cutter-governance, as the connected role)",
            match legb {
                Ok(r) => {
                    let d = format!(
                        "{} unit(s) of {}: cut_change_set {}→{}, affected_row {}→{}, manifest_envelope {}→{}, \
                         dot_pair_signature {}→{} (no approvals in a rollback-only proof)",
                        r.units, r.change_set, b.change_sets, a.change_sets, b.affected, a.affected,
                        b.manifests, a.manifests, b.signatures, a.signatures
                    );
                    if r.units == 1
                        && a.change_sets == b.change_sets + 1
                        && a.affected == b.affected + 1
                        && a.manifests == b.manifests + 1
                        && a.signatures == b.signatures
                    {
                        Ok(d)
                    } else {
                        Err(d)
                    }
                }
                Err(x) => Err(x),
            },
        );

        // write_verify: cutter-governance's re-read of the units against the plan, and
        // its chained verdict.
        let b = counts(ro.client())?;
        let verify = governed(&mut ro, |s| {
            cutter_governance::prove_write_verify(s, &plan, ACTOR)
        });
        let a = counts(ro.client())?;
        p.result(
            "write_verify: re-read matches the plan, verdict recorded (cutter-governance)",
            match verify {
                Ok(v) => {
                    let d = format!(
                        "checked {}, matched {}, mismatched {} (read as {}); verify_result {}→{}",
                        v.facts.checked,
                        v.facts.matched,
                        v.facts.mismatched,
                        v.read_as,
                        b.verify,
                        a.verify
                    );
                    if v.facts.checked == 1
                        && v.facts.matched == 1
                        && v.facts.mismatched == 0
                        && a.verify == b.verify + 1
                    {
                        Ok(d)
                    } else {
                        Err(d)
                    }
                }
                Err(x) => Err(x),
            },
        );

        // The six hash chains, recomputed inside the transaction.
        p.result(
            "ledger: hash chains intact after leg_b_record and write_verify",
            match cutter_governance::verify_ledger(ro.client()) {
                Ok(r) if r.is_intact() => Ok(format!(
                    "{} ledger row(s) verified, every chain intact",
                    r.rows()
                )),
                Ok(r) => Err(r.to_string()),
                Err(x) => Err(x.to_string()),
            },
        );

        // lifecycle_enact: fn_iu_enact over the change set.
        let b = counts(ro.client())?;
        let enact = ro.step(|s| s.lifecycle_enact());
        let a = counts(ro.client())?;
        p.result(
            "lifecycle_enact: fn_iu_enact over the change set",
            match enact {
                Ok(n) => {
                    let d = format!(
                        "{n} unit(s) enacted: enacted {}→{}, iu_lifecycle_log {}→{}",
                        b.enacted, a.enacted, b.log, a.log
                    );
                    if n == 1 && a.enacted == b.enacted + 1 && a.log == b.log + 1 {
                        Ok(d)
                    } else {
                        Err(d)
                    }
                }
                Err(x) => Err(x.to_string()),
            },
        );

        // Immutability of the now enacted rows.
        let cs = change_set.as_str().to_string();
        p.result(
            "immutability: UPDATE of an enacted unit refused",
            refused(
                &mut ro,
                "UPDATE public.information_unit SET title = title || '!' WHERE change_set_id = $1",
                &[&cs],
            ),
        );
        p.result(
            "immutability: DELETE of an enacted unit_version refused",
            refused(
                &mut ro,
                "DELETE FROM public.unit_version WHERE information_unit_id IN \
                 (SELECT id FROM public.information_unit WHERE change_set_id = $1)",
                &[&cs],
            ),
        );
        let again = ro
            .probe(|s| {
                Ok(s.client().query_one(
                    "SELECT count(e.status) FROM public.information_unit iu \
                     CROSS JOIN LATERAL public.fn_iu_enact(iu.id, 'proof', NULL) e WHERE iu.change_set_id = $1",
                    &[&cs],
                ))
            })
            .map_err(e)?;
        p.result(
            "immutability: fn_iu_enact of an enacted unit refused",
            match again {
                Err(x) if sqlstate(&x) == "55000" => Ok(format!("[55000] {}", db_message(&x))),
                Err(x) => Err(format!("[{}] {}", sqlstate(&x), db_message(&x))),
                Ok(_) => Err("NOT refused".into()),
            },
        );

        // The ledger is append-only for the connected role.
        for (what, sql) in [
            ("UPDATE", "UPDATE cutter_governance.cut_change_set SET unit_count = 0 WHERE change_set_id = $1"),
            ("DELETE", "DELETE FROM cutter_governance.cut_change_set WHERE change_set_id = $1"),
        ] {
            let r = ro
                .probe(|s| Ok(s.client().execute(sql, &[&cs])))
                .map_err(e)?;
            p.result(
                &format!("ledger append-only: {what} refused"),
                match r {
                    Err(x) if sqlstate(&x) == "42501" => Ok(format!("[42501] {}", db_message(&x))),
                    Err(x) => Err(format!("[{}] {}", sqlstate(&x), db_message(&x))),
                    Ok(n) => Err(format!("NOT refused ({n} rows): connect as cutter_exec, not as the owner")),
                },
            );
        }
        let r = ro
            .probe(|s| {
                Ok(s.client()
                    .batch_execute("TRUNCATE cutter_governance.review_decision"))
            })
            .map_err(e)?;
        p.result(
            "ledger append-only: TRUNCATE refused",
            match r {
                Err(x) if sqlstate(&x) == "42501" => Ok(format!("[42501] {}", db_message(&x))),
                Err(x) => Err(format!("[{}] {}", sqlstate(&x), db_message(&x))),
                Ok(()) => Err("NOT refused: connect as cutter_exec, not as the owner".into()),
            },
        );

        // Inside the transaction the phases wrote exactly their seven tables and the
        // proof's recorded approvals (dot_pair_signature); compensation B's
        // review_decision is proven below in a transaction of its own.
        let inside = ro.snapshot().map_err(e)?;
        let diff = pre.diff(&inside);
        let changed: Vec<String> = inside
            .tables
            .iter()
            .filter(|(t, s)| pre.tables.get(*t).map(|x| x.rows) != Some(s.rows))
            .map(|(t, _)| t.to_string())
            .collect();
        let expected = [
            "public.information_unit",
            "public.unit_version",
            "public.iu_lifecycle_log",
            "cutter_governance.cut_change_set",
            "cutter_governance.cut_change_set_affected_row",
            "cutter_governance.manifest_envelope",
            "cutter_governance.verify_result",
            "cutter_governance.dot_pair_signature",
        ];
        let mut want: Vec<String> = expected.iter().map(|t| t.to_string()).collect();
        want.sort();
        let mut got = changed.clone();
        got.sort();
        p.record(
            "inside the transaction: the 7 tables the phases write, and the approvals, written",
            got == want,
            format!(
                "{} of {} tables changed ({}); {} difference(s) from the pre snapshot",
                changed.len(),
                inside.tables.len(),
                changed.join(", "),
                diff.len()
            ),
        );

        p.result(
            "ROLLBACK of the proof transaction",
            ro.rollback()
                .map(|()| "rolled back; the same transaction from BEGIN to ROLLBACK".to_string())
                .map_err(e),
        );
    }
    target.unlock_target().map_err(e)?;

    // Compensation A (soft and hard) and B: cutter-compensation's executors, in a
    // rollback-only transaction of their own (their own run), net-zero checked.
    for (name, outcome) in crate::proof_compensation::proofs(&mut target) {
        p.result(&name, outcome);
    }

    // The trigger layer itself, as the owner (privileges do not stop the owner).
    if let Some(owner) = owner {
        let r = (|| -> Result<String, String> {
            let mut c = owner.connect().map_err(|x| x.to_string())?;
            let mut tx = c.transaction().map_err(|x| x.to_string())?;
            let id: i64 = tx
                .query_one(
                    "SELECT min(id) FROM public.information_unit WHERE lifecycle_status = 'enacted'",
                    &[],
                )
                .map_err(|x| x.to_string())?
                .get(0);
            let mut out = Vec::new();
            for (name, sql) in [
                (
                    "trg_iu_enacted_immut",
                    "UPDATE public.information_unit SET title = 'changed' WHERE id = $1",
                ),
                (
                    "trg_uv_enacted_immut",
                    "DELETE FROM public.unit_version WHERE information_unit_id = $1",
                ),
            ] {
                let mut sp = tx.transaction().map_err(|x| x.to_string())?;
                match sp.execute(sql, &[&id]) {
                    Err(x) if sqlstate(&x) == "55000" && db_message(&x).contains(name) => {
                        out.push(format!("{name} refused [55000]: {}", db_message(&x)))
                    }
                    Err(x) => return Err(format!("{name}: [{}] {}", sqlstate(&x), db_message(&x))),
                    Ok(n) => return Err(format!("{name}: NOT refused, {n} row(s) changed")),
                }
                drop(sp);
            }
            tx.rollback().map_err(|x| x.to_string())?;
            Ok(out.join("\n"))
        })();
        p.result(
            "immutability triggers (as the owner, enacted baseline rows)",
            r,
        );

        // The ledger's append-only trigger (V2) holds even if UPDATE, DELETE or TRUNCATE
        // were granted by mistake: the owner grants them inside a transaction that rolls
        // back, then acts as cutter_exec.
        let r = (|| -> Result<String, String> {
            let mut c = owner.connect().map_err(|x| x.to_string())?;
            let mut tx = c.transaction().map_err(|x| x.to_string())?;
            tx.batch_execute(&format!(
                "GRANT UPDATE, DELETE, TRUNCATE ON ALL TABLES IN SCHEMA cutter_governance TO {EXEC_ROLE}; \
                 INSERT INTO cutter_governance.review_decision (run_id, decision, actor) \
                 VALUES ('proof-append-only', 'proof', 'proof'); \
                 SET LOCAL ROLE {EXEC_ROLE}"
            ))
            .map_err(|x| x.to_string())?;
            let mut out = Vec::new();
            for (what, sql) in [
                (
                    "UPDATE",
                    "UPDATE cutter_governance.review_decision SET actor = 'changed'",
                ),
                ("DELETE", "DELETE FROM cutter_governance.review_decision"),
                ("TRUNCATE", "TRUNCATE cutter_governance.review_decision"),
            ] {
                let mut sp = tx.transaction().map_err(|x| x.to_string())?;
                match sp.batch_execute(sql) {
                    Err(x)
                        if sqlstate(&x) == "42501"
                            && db_message(&x).contains("append-only ledger") =>
                    {
                        out.push(format!("{what} refused [42501]: {}", db_message(&x)))
                    }
                    Err(x) => return Err(format!("{what}: [{}] {}", sqlstate(&x), db_message(&x))),
                    Ok(()) => return Err(format!("{what}: NOT refused")),
                }
                drop(sp);
            }
            tx.rollback().map_err(|x| x.to_string())?;
            Ok(out.join("\n"))
        })();
        p.result(
            "ledger append-only trigger (as cutter_exec with UPDATE/DELETE/TRUNCATE granted)",
            r,
        );
    }

    let post = target.snapshot().map_err(e)?;
    p.result(
        "net-zero: counts, digests of the surface tables, triggers, system identifier",
        match pre.net_zero(&post) {
            Ok(()) => Ok(format!("identical before and after: {}", summary(&post))),
            Err(v) => Err(v.to_string()),
        },
    );
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(a: &[&str]) -> Args {
        match crate::tests::parse(&[&["proof"], a].concat()) {
            Ok(crate::Command::Proof(a)) => a,
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn the_flags_alone_never_make_a_proof_that_is_not_rollback_only_or_unpinned() {
        let refused = |a: &[&str], why: &str| {
            let e = check(&args(a)).unwrap_err();
            assert!(e.contains(why), "{a:?}: {e}");
        };
        refused(&[], "pass --rollback-only explicitly");
        let url = "postgresql://cutter_exec@127.0.0.1:5/target";
        refused(
            &["--rollback-only", "--database-url", url],
            "requires --expect-system-identifier",
        );
        refused(
            &["--rollback-only", "--expect-system-identifier", "1"],
            "only makes sense with --database-url",
        );
        let with_password = "postgresql://cutter_exec:hunter2@127.0.0.1:5/target";
        refused(
            &[
                "--rollback-only",
                "--database-url",
                with_password,
                "--expect-system-identifier",
                "1",
            ],
            "contains a password",
        );
        check(&args(&["--rollback-only"])).unwrap();
        check(&args(&[
            "--rollback-only",
            "--database-url",
            url,
            "--expect-system-identifier",
            "1",
        ]))
        .unwrap();
        assert!(crate::tests::parse(&["proof", "--expect-system-identifier", "x1"]).is_err());
    }

    #[test]
    fn proof_against_a_database_url_checks_the_server_first_and_passes() {
        let tc = TestCluster::start().unwrap();
        tc.cluster()
            .create_database("target", Some(TEMPLATE_DB))
            .unwrap();
        cutter_compensation::testing::ThrowawayApprovers::generate()
            .unwrap()
            .register(&mut tc.cluster().connect("target").unwrap())
            .unwrap();
        let c = tc.coordinates();
        let with_password = format!(
            "postgresql://{EXEC_ROLE}:{}@127.0.0.1:{}/target?sslmode=disable",
            c.exec_password, c.port
        );
        let e = main(&args(&[
            "--rollback-only",
            "--database-url",
            &with_password,
            "--expect-system-identifier",
            "1",
        ]))
        .unwrap_err();
        assert!(e.contains("contains a password"), "{e}");
        assert!(!e.contains(&c.exec_password), "the password leaked: {e}");
        // The password comes from the environment, as the usage says.
        std::env::set_var("PGPASSWORD", &c.exec_password);
        let url = format!(
            "postgresql://{EXEC_ROLE}@127.0.0.1:{}/target?sslmode=disable",
            c.port
        );
        let e = main(&args(&[
            "--database-url",
            &url,
            "--expect-system-identifier",
            "1",
        ]))
        .unwrap_err();
        assert!(e.contains("pass --rollback-only explicitly"), "{e}");
        let e = main(&args(&["--rollback-only", "--database-url", &url])).unwrap_err();
        assert!(e.contains("requires --expect-system-identifier"), "{e}");
        let e = main(&args(&[
            "--rollback-only",
            "--expect-system-identifier",
            "1",
        ]))
        .unwrap_err();
        assert!(e.contains("only makes sense with --database-url"), "{e}");
        let wrong = (c.system_identifier ^ 1).to_string();
        let e = main(&args(&[
            "--rollback-only",
            "--database-url",
            &url,
            "--expect-system-identifier",
            &wrong,
        ]))
        .unwrap_err();
        assert!(e.contains("wrong server: nothing was executed"), "{e}");
        let right = c.system_identifier.to_string();
        main(&args(&[
            "--rollback-only",
            "--database-url",
            &url,
            "--expect-system-identifier",
            &right,
        ]))
        .unwrap();
    }
}
