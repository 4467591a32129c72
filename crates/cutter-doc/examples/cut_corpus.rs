//! Cuts every document of the repository corpus and prints how long it took.
//! `cargo run --release -p cutter-doc --example cut_corpus [-- --reports]`

use std::time::Instant;

use cutter_core::{DocumentId, SourceVersionId};
use cutter_doc::{cut, CutOptions};

fn main() {
    let print = std::env::args().any(|a| a == "--reports");
    let root = concat!(env!("CARGO_MANIFEST_DIR"), "/../../corpus");
    let mut files = Vec::new();
    for dir in ["vn", "udhr"] {
        let mut names: Vec<_> = std::fs::read_dir(format!("{root}/{dir}"))
            .expect("corpus directory")
            .filter_map(|e| e.ok().map(|e| e.path()))
            .filter(|p| p.extension().is_some_and(|x| x == "html"))
            .collect();
        names.sort();
        for path in names {
            let stem = path
                .file_stem()
                .unwrap_or_default()
                .to_string_lossy()
                .replace('_', "-");
            files.push((
                format!("{dir}-{stem}"),
                std::fs::read(&path).expect("read corpus file"),
            ));
        }
    }
    let bytes: usize = files.iter().map(|(_, b)| b.len()).sum();
    let rounds = 10;
    let mut best = f64::MAX;
    let mut first = 0.0;
    for round in 0..rounds {
        let start = Instant::now();
        for (id, input) in &files {
            let opts = CutOptions::new(
                DocumentId::new(id.clone()).expect("document id"),
                SourceVersionId::new("v1").expect("version id"),
                "corpus-example",
            );
            let outcome = cut(input, &opts).expect("cut");
            if print && round == 0 {
                println!("{}", outcome.report);
            }
        }
        let took = start.elapsed().as_secs_f64();
        if round == 0 {
            first = took;
        }
        best = best.min(took);
    }
    println!(
        "cut {} files ({} bytes): first round {:.1} ms, best of {rounds} rounds {:.1} ms",
        files.len(),
        bytes,
        first * 1000.0,
        best * 1000.0
    );
}
