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

/// Every command a user can run (each leaf of the command tree), as its words.
fn leaf_commands() -> Vec<Vec<String>> {
    fn walk(cmd: &clap::Command, path: Vec<String>, out: &mut Vec<Vec<String>>) {
        let subs: Vec<&clap::Command> = cmd
            .get_subcommands()
            .filter(|s| s.get_name() != "help")
            .collect();
        if subs.is_empty() {
            out.push(path);
            return;
        }
        for s in subs {
            let mut p = path.clone();
            p.push(s.get_name().to_string());
            walk(s, p, out);
        }
    }
    let mut out = Vec::new();
    walk(
        &<cutter_cli::cli::Cli as clap::CommandFactory>::command(),
        Vec::new(),
        &mut out,
    );
    out
}

#[test]
fn every_command_has_an_example() {
    let commands = leaf_commands();
    assert!(commands.len() >= 30, "{commands:?}");
    for cmd in commands {
        let words: Vec<&str> = cmd.iter().map(String::as_str).collect();
        let h = help(&words);
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

#[test]
fn backup_prune_help() {
    insta::assert_snapshot!(help(&["backup", "prune"]));
}
