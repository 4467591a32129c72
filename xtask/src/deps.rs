//! `cargo xtask deps`: the dependency checks of CI. Installs `cargo-machete` and
//! `cargo-deny` (pinned, `cargo install --locked`, into the cargo home) unless they are
//! already there, then runs `cargo machete` (unused dependencies) and `cargo deny check
//! licenses bans` (the policy in `deny.toml`), printing how long each step took. The
//! advisory check is not run: its database cannot be fetched here (see `deny.toml`).

use std::path::{Path, PathBuf};
use std::process::Command as Process;
use std::time::Instant;

/// A cargo subcommand CI needs: its binary and the crate version installed.
#[derive(Debug, PartialEq)]
pub(crate) struct Tool {
    pub(crate) binary: &'static str,
    pub(crate) krate: &'static str,
    pub(crate) version: &'static str,
}

/// The tools, pinned so that every machine checks with the same rules.
pub(crate) const TOOLS: [Tool; 2] = [
    Tool {
        binary: "cargo-machete",
        krate: "cargo-machete",
        version: "0.9.2",
    },
    Tool {
        binary: "cargo-deny",
        krate: "cargo-deny",
        version: "0.20.2",
    },
];

/// The cargo home's `bin` directory: `$CARGO_HOME/bin`, else `~/.cargo/bin`.
fn cargo_bin(cargo_home: Option<PathBuf>, home: Option<PathBuf>) -> Option<PathBuf> {
    cargo_home
        .or_else(|| home.map(|h| h.join(".cargo")))
        .map(|c| c.join("bin"))
}

/// The tools whose binary is not in `bin`.
pub(crate) fn to_install<'a>(bin: &Path, exists: impl Fn(&Path) -> bool) -> Vec<&'a Tool> {
    TOOLS
        .iter()
        .filter(|t| !exists(&bin.join(t.binary)))
        .collect()
}

/// Installs what is missing, then runs both checks.
pub fn main() -> Result<(), String> {
    let bin = cargo_bin(
        std::env::var_os("CARGO_HOME").map(PathBuf::from),
        std::env::var_os("HOME").map(PathBuf::from),
    )
    .ok_or("neither CARGO_HOME nor HOME is set: cannot find the cargo home")?;
    let missing = to_install(&bin, |p| p.is_file());
    if missing.is_empty() {
        eprintln!("xtask: cargo-machete and cargo-deny are installed; not installing");
    }
    for tool in missing {
        let t = Instant::now();
        crate::run(crate::cargo().args([
            "install",
            "--locked",
            "--version",
            tool.version,
            tool.krate,
        ]))?;
        eprintln!(
            "xtask: installed {} {} in {:.0} s",
            tool.krate,
            tool.version,
            t.elapsed().as_secs_f64()
        );
    }
    // The workspace root, whatever directory this was started from.
    let root = Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .ok_or("xtask has no parent directory")?;
    // The installed binaries themselves (the pinned versions), not `cargo <tool>`: run
    // through `cargo run`, cargo-machete takes its own subcommand name for a path.
    let checks: [(&str, &[&str]); 2] = [
        ("cargo-machete", &[]),
        (
            "cargo-deny",
            &["check", "--hide-inclusion-graph", "licenses", "bans"],
        ),
    ];
    for (binary, args) in checks {
        let t = Instant::now();
        let mut cmd = Process::new(bin.join(binary));
        cmd.args(args).current_dir(root);
        crate::run(&mut cmd).map_err(|e| format!("{e}: fix what {binary} reports"))?;
        eprintln!(
            "xtask: {binary} {} passed in {:.1} s",
            args.join(" "),
            t.elapsed().as_secs_f64()
        );
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn installs_only_what_is_missing() {
        let bin = Path::new("/h/.cargo/bin");
        let all = to_install(bin, |_| false);
        assert_eq!(all.len(), 2);
        let none = to_install(bin, |_| true);
        assert!(none.is_empty());
        let deny_only = to_install(bin, |p| p.ends_with("cargo-machete"));
        assert_eq!(
            deny_only.iter().map(|t| t.binary).collect::<Vec<_>>(),
            ["cargo-deny"]
        );
    }

    #[test]
    fn the_cargo_home_comes_from_cargo_home_then_home() {
        assert_eq!(
            cargo_bin(Some("/c".into()), Some("/h".into())),
            Some(PathBuf::from("/c/bin"))
        );
        assert_eq!(
            cargo_bin(None, Some("/h".into())),
            Some(PathBuf::from("/h/.cargo/bin"))
        );
        assert_eq!(cargo_bin(None, None), None);
    }
}
