//! `cargo xtask bench cut`: how long the document cutter takes over the whole corpus
//! (11 published pages, 1.6 MB), best of several rounds, in this build's profile — run it
//! with `cargo run --release -p xtask -- bench cut`.

use std::path::PathBuf;
use std::time::Instant;

/// Runs the benchmark, best of `rounds` (at least 1).
pub fn main(rounds: u32) -> Result<(), String> {
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../corpus");
    let mut files = Vec::new();
    for sub in ["vn", "udhr"] {
        let dir = root.join(sub);
        let mut names: Vec<PathBuf> = std::fs::read_dir(&dir)
            .map_err(|e| format!("{}: {e}", dir.display()))?
            .flatten()
            .map(|e| e.path())
            .filter(|p| p.extension().is_some_and(|x| x == "html"))
            .collect();
        names.sort();
        for p in names {
            let bytes = std::fs::read(&p).map_err(|e| format!("{}: {e}", p.display()))?;
            files.push((p, bytes));
        }
    }
    let total: usize = files.iter().map(|(_, b)| b.len()).sum();
    let mut best = f64::INFINITY;
    let mut units = 0;
    for _ in 0..rounds.max(1) {
        let t = Instant::now();
        units = 0;
        for (p, bytes) in &files {
            let stem = p.file_stem().and_then(|s| s.to_str()).unwrap_or("doc");
            let opts = cutter_doc::CutOptions::new(
                cutter_core::DocumentId::new(format!("bench-{stem}")).map_err(|e| e.to_string())?,
                cutter_core::SourceVersionId::new("v1").map_err(|e| e.to_string())?,
                "bench",
            );
            let out = cutter_doc::cut(bytes, &opts).map_err(|e| format!("{}: {e}", p.display()))?;
            units += out.plan.rows.len();
        }
        best = best.min(t.elapsed().as_secs_f64());
    }
    let profile = if cfg!(debug_assertions) {
        "debug"
    } else {
        "release"
    };
    println!(
        "bench cut: {} files, {:.2} MB, {units} units; best of {rounds}: {:.1} ms ({:.1} MB/s, {profile} build)",
        files.len(),
        total as f64 / 1e6,
        best * 1e3,
        total as f64 / 1e6 / best
    );
    Ok(())
}
