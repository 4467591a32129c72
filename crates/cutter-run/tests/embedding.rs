//! The embedding example (`examples/rehearsal.rs`) runs as a test: a whole rehearsal
//! through the library, from a document to the report.

#[path = "../examples/rehearsal.rs"]
mod rehearsal;

#[test]
fn the_embedding_example_rehearses_a_whole_run() {
    let out = rehearsal::rehearse().unwrap();
    println!("{out}");
    assert!(out.contains("365 rows validated"), "{out}");
    assert!(out.contains("run embedded-1.dry-run-1 succeeded"), "{out}");
    assert!(out.contains("verify 365/365 matched, 365 enacted"), "{out}");
}
