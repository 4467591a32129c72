//! `cutter cut` and `cutter plan check` on findings and forbidden characters, without a
//! database (`plan check --offline`): the cut refuses text that did not decode unless told
//! to accept it, the plan records the acceptance and the findings, and `plan check` shows
//! the findings and refuses findings that no longer match their digest.

use std::path::{Path, PathBuf};

use assert_cmd::Command;
use predicates::prelude::*;

fn corpus(rel: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../corpus")
        .join(rel)
}

fn cutter() -> Command {
    Command::cargo_bin("cutter").unwrap()
}

fn cut(doc: &Path, id: &str, out: &Path, extra: &[&str]) -> std::process::Output {
    cutter()
        .arg("cut")
        .arg(doc)
        .args(["--document-id", id, "--source-version", "v1", "-o"])
        .arg(out)
        .args(extra)
        .output()
        .unwrap()
}

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

#[test]
fn forbidden_characters_are_refused_unless_accepted_and_then_recorded() {
    let dir = tempfile::tempdir().unwrap();
    // The French declaration with one Latin-1 byte in its UTF-8: "à" became 0xE0.
    let mut page = std::fs::read(corpus("udhr/fra.html")).unwrap();
    let at = page
        .windows(6)
        .position(|w| w == "à la ".as_bytes())
        .unwrap();
    page.splice(at..at + 2, [0xE0]);
    let doc = dir.path().join("fra.html");
    std::fs::write(&doc, &page).unwrap();

    let plan = dir.path().join("plan.json");
    let o = cut(&doc, "udhr-fra", &plan, &[]);
    assert!(!o.status.success());
    let err = text(&o.stderr);
    assert!(
        err.contains("1 forbidden character(s) in unit bodies: U+FFFD at character"),
        "{err}"
    );
    assert!(err.contains("of udhr-fra/preamble"), "{err}");
    assert!(err.contains("--accept-forbidden-characters"), "{err}");
    assert!(!plan.exists());

    let o = cut(&doc, "udhr-fra", &plan, &["--accept-forbidden-characters"]);
    assert!(o.status.success(), "{}", text(&o.stderr));
    let out = text(&o.stdout);
    assert!(
        out.contains(
            "forbidden characters ACCEPTED (--accept-forbidden-characters): 1 in unit bodies"
        ),
        "{out}"
    );
    let json: serde_json::Value = serde_json::from_slice(&std::fs::read(&plan).unwrap()).unwrap();
    assert_eq!(json["findings"]["forbidden_characters_accepted"], true);
    assert_eq!(
        json["findings"]["forbidden_characters"][0]["code_point"],
        "U+FFFD"
    );

    // The plan, with its acceptance recorded and sealed, passes the streamed row
    // contract; the findings are shown.
    let o = cutter()
        .args(["plan", "check", "--offline"])
        .arg(&plan)
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", text(&o.stderr));
    assert!(text(&o.stdout).contains("U+FFFD"), "{}", text(&o.stdout));

    // A listed character moved to another offset: the character at its real offset is no
    // longer accepted.
    let mut edited: serde_json::Value = json.clone();
    let offset = edited["findings"]["forbidden_characters"][0]["offset"]
        .as_u64()
        .unwrap();
    edited["findings"]["forbidden_characters"][0]["offset"] = (offset + 1).into();
    let edited_path = dir.path().join("edited.json");
    std::fs::write(&edited_path, edited.to_string()).unwrap();
    let o = cutter()
        .args(["plan", "check", "--offline"])
        .arg(&edited_path)
        .output()
        .unwrap();
    assert!(!o.status.success());
    let err = text(&o.stderr);
    assert!(
        err.contains(&format!(
            "1 forbidden character(s): U+FFFD (replacement character: bytes the decoder could not read as text) at character {offset}"
        )),
        "{err}"
    );
}

#[test]
fn plan_check_shows_the_findings_and_refuses_edited_ones() {
    let dir = tempfile::tempdir().unwrap();
    // The constitution without articles 50–59.
    let page = std::fs::read_to_string(corpus("vn/constitution-2013.html")).unwrap();
    let para_before = |anchor: &str| {
        let at = page.find(anchor).unwrap();
        page[..at].rfind("<p").unwrap()
    };
    let (a, b) = (
        para_before("name=\"dieu_50\""),
        para_before("name=\"dieu_60\""),
    );
    let doc = dir.path().join("truncated.html");
    std::fs::write(&doc, format!("{}{}", &page[..a], &page[b..])).unwrap();
    let plan = dir.path().join("plan.json");
    let o = cut(&doc, "vn-constitution-2013", &plan, &[]);
    assert!(o.status.success(), "{}", text(&o.stderr));

    let o = cutter()
        .args(["plan", "check", "--offline"])
        .arg(&plan)
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", text(&o.stderr));
    let out = text(&o.stdout);
    assert!(
        out.contains(
            "findings:\n  missing article numbers (10): 50, 51, 52, 53, 54, 55, 56, 57, 58, 59\n"
        ),
        "{out}"
    );
    assert!(out.contains("findings digest: sha256 "), "{out}");

    // Findings edited after the cut no longer match their digest.
    let mut json: serde_json::Value =
        serde_json::from_slice(&std::fs::read(&plan).unwrap()).unwrap();
    json["findings"]["missing_article_numbers"] = serde_json::json!([]);
    let edited = dir.path().join("edited.json");
    std::fs::write(&edited, serde_json::to_vec(&json).unwrap()).unwrap();
    cutter()
        .args(["plan", "check", "--offline"])
        .arg(&edited)
        .assert()
        .failure()
        .stderr(predicate::str::contains(
            "does not match the findings and rows",
        ));

    // A plan cut before findings were recorded still checks.
    json.as_object_mut().unwrap().remove("findings");
    let old = dir.path().join("old.json");
    std::fs::write(&old, serde_json::to_vec(&json).unwrap()).unwrap();
    cutter()
        .args(["plan", "check", "--offline"])
        .arg(&old)
        .assert()
        .success()
        .stdout(predicate::str::contains("findings: none recorded"));
}
