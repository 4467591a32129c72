//! `cargo xtask bench compensation --units N`: how fast compensation A reverts an N-unit
//! change set (default 100 000), on a throwaway cluster with the reference schema, the
//! baseline and the ledger migration G1, as `cutter_exec`:
//!
//! * soft: `cutter_compensation::compensate_a` with the default soft revert (units and
//!   versions withdrawn, one lifecycle log row per unit), re-count and COMMIT included;
//! * hard: the same with a hard-delete approval (SG_1 + SG_2 by two throwaway keys,
//!   verified), units and versions deleted, re-count and COMMIT included;
//! * the idempotent second run of each (reads only).
//!
//! Each round of each mode gets a fresh database copied from the template (dropped after
//! it), and its change set is cut by cut_leg_a first (not timed); with `--rounds R` the
//! best round is kept (the machine's other load only ever slows a round down). Target:
//! ≥ 20 000 units/s for both reverts. Run it in release mode:
//! `cargo run --release -p xtask -- bench compensation --units 100000 --rounds 3`.

use std::time::{Duration, Instant};

use cutter_compensation::testing::ThrowawayApprovers;
use cutter_compensation::{compensate_a, plan, revert_run_for, RevertMode, RunFacts, StepOutcome};
use cutter_core::{Phase, PhaseSet, RunId};
use cutter_pg::fixtures;
use cutter_pg::schema::EXEC_ROLE;
use cutter_pg::testing::{TestCluster, TEMPLATE_DB};
use cutter_pg::Target;

const DOC: &str = "bench-compensation";
const TARGET_RATE: f64 = 20_000.0;

struct Measured {
    what: &'static str,
    units: u64,
    elapsed: Duration,
    rated: bool,
}

impl Measured {
    fn rate(&self) -> f64 {
        self.units as f64 / self.elapsed.as_secs_f64()
    }
}

/// Runs the compensation benchmark: change sets of `units` units (at least 1), `rounds`
/// rounds per revert mode (1 to 100), best kept.
pub fn run(units: u64, rounds: u32) -> Result<(), String> {
    let e = |e: cutter_pg::Error| e.to_string();
    let c = |e: cutter_compensation::Error| e.to_string();
    eprintln!("bench: starting a throwaway cluster (reference schema + baseline template)");
    let tc = TestCluster::start().map_err(e)?;
    let cluster = tc.cluster();
    let coords = tc.coordinates();
    let approvers = ThrowawayApprovers::generate().map_err(c)?;
    let streamed = fixtures::scale_streamed(DOC, units).map_err(|r| r.to_string())?;
    let mut results = Vec::new();

    for hard in [false, true] {
        let mode_name = if hard { "hard" } else { "soft" };
        let mut best: Option<(Duration, Duration)> = None;
        for round in 1..=rounds {
            let db = format!("bench_compensation_{mode_name}_{round}");
            cluster.create_database(&db, Some(TEMPLATE_DB)).map_err(e)?;
            let r = revert_once(cluster, coords, &db, &streamed, &approvers, hard, round);
            cluster.drop_database(&db).map_err(e)?;
            let (first, again) = r?;
            best = Some(match best {
                Some((f, a)) => (f.min(first), a.min(again)),
                None => (first, again),
            });
        }
        let (first, again) = best.ok_or("no round ran")?;
        results.push(Measured {
            what: if hard {
                "A hard: delete units + versions, re-count, COMMIT"
            } else {
                "A soft: withdraw units + versions, log, re-count, COMMIT"
            },
            units,
            elapsed: first,
            rated: true,
        });
        results.push(Measured {
            what: if hard {
                "A hard again: already done, nothing written"
            } else {
                "A soft again: already done, nothing written"
            },
            units,
            elapsed: again,
            rated: false,
        });
    }
    drop(tc);

    println!();
    println!(
        "bench compensation: change sets of {units} units (bodies ~{} bytes), as {EXEC_ROLE}, best of {} round(s)",
        fixtures::BODY_BYTES, rounds
    );
    println!("{:<58} {:>10} {:>12}  target", "step", "seconds", "units/s");
    let mut ok = true;
    for m in &results {
        let verdict = if m.rated {
            let pass = m.rate() >= TARGET_RATE;
            ok &= pass;
            format!(
                "≥ {TARGET_RATE:.0}/s  {}",
                if pass { "PASS" } else { "FAIL" }
            )
        } else {
            String::new()
        };
        println!(
            "{:<58} {:>10.3} {:>12.0}  {verdict}",
            m.what,
            m.elapsed.as_secs_f64(),
            m.rate()
        );
    }
    if ok {
        Ok(())
    } else {
        Err("benchmark target missed".into())
    }
}

/// One round: cut the change set into the fresh database `db` (not timed), then time
/// compensation A and its idempotent second run.
fn revert_once<F, I>(
    cluster: &cutter_pg::Cluster,
    coords: &cutter_pg::testing::Coordinates,
    db: &str,
    streamed: &cutter_pg::StreamedPlan<F>,
    approvers: &ThrowawayApprovers,
    hard: bool,
    round: u32,
) -> Result<(Duration, Duration), String>
where
    F: Fn() -> I,
    I: Iterator<Item = cutter_core::CutPlanRow>,
{
    let e = |e: cutter_pg::Error| e.to_string();
    let c = |e: cutter_compensation::Error| e.to_string();
    let mode_name = if hard { "hard" } else { "soft" };
    let units = streamed.rows();
    {
        let mut owner = cluster.connect(db).map_err(e)?;
        cutter_governance::install(&mut owner).map_err(|x| x.to_string())?;
    }
    let exec = coords.config(db, EXEC_ROLE).map_err(e)?;

    // The run: pre snapshot, then cut_leg_a of the whole plan (not timed).
    let run = RunId::new(format!("bench-{mode_name}-{round}")).map_err(|x| x.to_string())?;
    let facts = {
        let mut target = Target::connect(&exec).map_err(e)?;
        let sysid = target.system_identifier();
        let pre = target.snapshot().map_err(e)?;
        let auth = cutter_pg::testing::rehearsal_authorization(
            &mut cluster.connect(db).map_err(|x| x.to_string())?,
            run.clone(),
            streamed.digest(),
        )
        .map_err(|x| x.to_string())?;
        eprintln!("bench: {mode_name} round {round}: cut_leg_a of {units} units (not timed)");
        let cut = target
            .cut_leg_a_streamed(&auth, streamed, &mut |_| {})
            .map_err(e)?;
        if cut.units_created != units {
            return Err(format!(
                "cut_leg_a created {} units, expected {units}",
                cut.units_created
            ));
        }
        RunFacts {
            run_id: run.clone(),
            target: sysid,
            plan_digest: streamed.digest(),
            failed: Some(Phase::LegBRecord),
            committed: PhaseSet::mutating_before(Phase::LegBRecord),
            pre_snapshot: pre,
            database: None,
        }
        // The target (and its run lock) is dropped here.
    };
    cluster
        .connect(db)
        .map_err(e)?
        .batch_execute("CHECKPOINT; ANALYZE")
        .map_err(|x| x.to_string())?;

    let mut client = exec.connect().map_err(|x| x.to_string())?;
    let facts = facts.cross_check(&mut client).map_err(c)?;
    let p = plan(&facts);
    let revert = revert_run_for(&run);
    let mode = if hard {
        let database = cutter_pg::surface::target_database(&mut client).map_err(e)?;
        RevertMode::Hard(
            approvers
                .hard_delete_approval(&p, &revert, &database)
                .map_err(c)?,
        )
    } else {
        RevertMode::Soft
    };
    eprintln!(
        "bench: {mode_name} round {round}: compensation {}",
        p.compensation()
    );
    let t = Instant::now();
    let report = compensate_a(&mut client, &p, &mode, &revert, "bench").map_err(c)?;
    let first = t.elapsed();
    if report.outcome != StepOutcome::Done || report.units != units {
        return Err(format!(
            "compensation A ({mode_name}) did {report}, expected {units} units"
        ));
    }
    let t = Instant::now();
    let again = compensate_a(&mut client, &p, &mode, &revert, "bench").map_err(c)?;
    let second = t.elapsed();
    if again.outcome != StepOutcome::AlreadyDone {
        return Err(format!(
            "second compensation A ({mode_name}) wrote: {again}"
        ));
    }
    Ok((first, second))
}
