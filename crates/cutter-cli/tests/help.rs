//! `--help` is the operator's manual: snapshot it so any change to it is reviewed.

use assert_cmd::Command;

fn help(args: &[&str]) -> String {
    let out = Command::cargo_bin("cutter")
        .unwrap()
        .args(args)
        .arg("--help")
        .output()
        .unwrap();
    assert!(out.status.success());
    String::from_utf8(out.stdout).unwrap()
}

#[test]
fn top_level_help() {
    insta::assert_snapshot!(help(&[]));
}

#[test]
fn run_help() {
    insta::assert_snapshot!(help(&["run"]));
}

#[test]
fn every_command_has_an_example() {
    for cmd in [
        &["init"][..],
        &["doctor"],
        &["cut"],
        &["plan", "check"],
        &["plan", "show"],
        &["approve"],
        &["run"],
        &["status"],
        &["runs", "list"],
        &["void"],
        &["hold", "show"],
        &["hold", "release"],
        &["kill-switch", "show"],
        &["kill-switch", "arm"],
        &["kill-switch", "disarm"],
        &["recover"],
        &["compensate"],
        &["backup", "create"],
        &["backup", "selftest"],
        &["backup", "verify"],
        &["backup", "restore-proof"],
        &["ledger", "verify"],
        &["report"],
        &["demo"],
    ] {
        let h = help(cmd);
        assert!(
            h.contains("Example:"),
            "`cutter {} --help` has no example:\n{h}",
            cmd.join(" ")
        );
    }
}

#[test]
fn version_and_unknown_command() {
    let out = Command::cargo_bin("cutter")
        .unwrap()
        .arg("frobnicate")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("unrecognized subcommand 'frobnicate'"));
}
