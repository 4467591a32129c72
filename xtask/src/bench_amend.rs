//! `cargo xtask bench amend --units N --changed K`: the release `cutter` binary loads an
//! N-unit document live, then runs an amendment of the same document that rewords K of
//! its units (a new source version). Prints `cutter plan diff`'s time and each run's
//! phases; the backup (`pre_write_backup`, O(database) for a full backup) is shown apart.
//! Target: the amendment's phases after pre_write_backup cost at most 10% of the first
//! load's when K is 1% of N.
//! `cargo run --release -p xtask -- bench amend --units 100000 --changed 1000`.

use std::time::Instant;

use cutter_core::{DocumentId, SourceVersionId};
use cutter_pg::fixtures;
use cutter_pg::StreamedPlan;

use crate::bench_run::{write_plan, LiveTarget, Measured};

const DOC: &str = "bench-amend-doc";
/// The amendment's phases after pre_write_backup, against the first load's.
const TARGET: f64 = 0.10;

/// The scale rows of `DOC` with `changed` of `units` bodies reworded, spread evenly.
fn amended(units: u64, changed: u64) -> impl Iterator<Item = cutter_core::CutPlanRow> {
    let step = (units / changed.max(1)).max(1);
    fixtures::scale_rows(DOC, units)
        .enumerate()
        .map(move |(i, mut r)| {
            let i = i as u64;
            if i.is_multiple_of(step) && i / step < changed {
                r.body.push_str(" (sửa đổi, bổ sung)");
            }
            r
        })
}

/// Milliseconds of the phases after pre_write_backup, and of pre_write_backup.
fn split(m: &Measured) -> (i64, i64) {
    let mut after = false;
    let (mut backup, mut rest) = (0, 0);
    for (phase, ms) in &m.phases {
        if phase == "pre_write_backup" {
            backup += ms;
            after = true;
        } else if after {
            rest += ms;
        }
    }
    (backup, rest)
}

/// `cargo xtask bench amend --units N --changed K` (1 <= K <= N).
pub fn main(units: u64, changed: u64) -> Result<(), String> {
    if changed == 0 || changed > units {
        return Err(format!(
            "--changed {changed} must be between 1 and --units ({units})"
        ));
    }
    let t = LiveTarget::start("bench_amend")?;

    eprintln!("bench: first load of {units} units");
    let load_plan = t.dir().join("load.json");
    write_plan(&load_plan, DOC, "v1", fixtures::scale_rows(DOC, units))?;
    let load_digest = fixtures::scale_streamed(DOC, units)
        .map_err(|r| r.to_string())?
        .digest();
    let load = t.run_live("amend-load", &load_plan, load_digest, None)?;

    eprintln!("bench: amendment rewording {changed} of {units} units");
    let amend_plan = t.dir().join("amend.json");
    write_plan(&amend_plan, DOC, "v2", amended(units, changed))?;
    let amend_digest = StreamedPlan::validate(
        DocumentId::new(DOC).map_err(|e| e.to_string())?,
        SourceVersionId::new("v2").map_err(|e| e.to_string())?,
        &fixtures::vocabularies(),
        None,
        move || amended(units, changed),
    )
    .map_err(|r| r.to_string())?
    .digest();

    let plan_arg = amend_plan.display().to_string();
    let started = Instant::now();
    let out = t.ok(
        t.cutter(&["--json", "plan", "diff", &plan_arg]),
        "cutter plan diff",
    )?;
    let diff_secs = started.elapsed().as_secs_f64();
    let d: serde_json::Value =
        serde_json::from_slice(&out).map_err(|e| format!("cutter plan diff --json: {e}"))?;
    if d["counts"]["changed_body"].as_u64() != Some(changed) {
        return Err(format!(
            "plan diff counts {} changed bodies, the amendment rewords {changed}: {}",
            d["counts"]["changed_body"], d["counts"]
        ));
    }
    let diff = d["approval_diff_digest"]
        .as_str()
        .ok_or_else(|| format!("plan diff names no approval diff digest: {d}"))
        .and_then(|h| cutter_core::Sha256Digest::from_hex(h).map_err(|e| e.to_string()))?;
    let amend = t.run_live("amend-1", &amend_plan, amend_digest, Some(diff))?;

    println!(
        "\nbench amend: a first load of {units} units, then an amendment rewording {changed} \
         of them (release binary, one throwaway cluster)"
    );
    println!(
        "cutter plan diff of the amendment: {diff_secs:.2} s (wall, process start to exit); \
         classes {}",
        d["counts"]
    );
    println!(
        "{:<18} {:>14} {:>14} {:>8}",
        "phase", "first load ms", "amendment ms", "ratio"
    );
    let ms_of = |m: &Measured, p: &str| {
        m.phases
            .iter()
            .filter(|(name, _)| name == p)
            .map(|(_, ms)| *ms)
            .sum::<i64>()
    };
    let mut names: Vec<&str> = load.phases.iter().map(|(p, _)| p.as_str()).collect();
    for (p, _) in &amend.phases {
        if !names.contains(&p.as_str()) {
            names.push(p);
        }
    }
    for p in names {
        let (a, b) = (ms_of(&load, p), ms_of(&amend, p));
        let ratio = if a > 0 {
            format!("{:.3}", b as f64 / a as f64)
        } else {
            "-".into()
        };
        println!("{p:<18} {a:>14} {b:>14} {ratio:>8}");
    }
    let (load_backup, load_rest) = split(&load);
    let (amend_backup, amend_rest) = split(&amend);
    println!(
        "pre_write_backup (apart: a full backup is O(database)): first load {load_backup} ms, \
         amendment {amend_backup} ms"
    );
    println!(
        "amendment: units created {}, verified {}/{}, enacted {}",
        amend.context["units_created"],
        amend.context["verify"]["matched"],
        amend.context["verify"]["checked"],
        amend.context["units_enacted"]
    );
    let ratio = amend_rest as f64 / load_rest.max(1) as f64;
    let pass = ratio <= TARGET;
    println!(
        "target: phases after pre_write_backup, amendment of {changed} / first load of {units}: \
         {amend_rest} ms / {load_rest} ms = {ratio:.3} (target <= {TARGET:.2})  {}",
        if pass { "PASS" } else { "FAIL" }
    );
    if pass {
        Ok(())
    } else {
        Err("the amendment's phases cost more than the target".into())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_amendment_rewords_exactly_the_asked_number_of_units() {
        for (units, changed) in [(100, 1), (100, 7), (100, 100), (1000, 10), (7, 3)] {
            let reworded = amended(units, changed)
                .zip(fixtures::scale_rows(DOC, units))
                .filter(|(a, b)| a.body != b.body)
                .count() as u64;
            assert_eq!(reworded, changed, "{units} units, {changed} changed");
        }
    }
}
