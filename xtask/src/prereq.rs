//! Prerequisites of the test suite and the demo: the machine's PostgreSQL server
//! binaries (found through `pg_config --bindir`), GnuPG, sqop (Sequoia's stateless
//! OpenPGP CLI, for interoperability), OpenSSL (cutter-pg's TLS tests make their
//! certificates with it), man (cutter-cli's tests render the generated man pages) and
//! Chromium (cutter-run's browser test renders the HTML run report headless).
//! Installed with apt-get when missing and running as root; otherwise a clear error says
//! what to install.

use std::path::{Path, PathBuf};
use std::process::Command;

const NEEDED: [&str; 6] = [
    "initdb",
    "pg_ctl",
    "postgres",
    "pg_dump",
    "pg_restore",
    "psql",
];

/// The Debian packages of the PostgreSQL server binaries and of `pg_config`.
const POSTGRESQL_PACKAGES: [&str; 2] = ["postgresql", "postgresql-server-dev-all"];

/// Programs found on `PATH`: (program, the argument that makes it print its version,
/// the Debian package that installs it).
const TOOLS: [(&str, &str, &str); 5] = [
    ("gpg", "--version", "gnupg"),
    ("openssl", "version", "openssl"),
    // Sequoia's stateless OpenPGP CLI: approvals signed with it must verify.
    ("sqop", "version", "sqop"),
    // `man -l` renders the generated man pages in cutter-cli's tests.
    ("man", "--version", "man-db"),
    // Headless, for the HTML run report's browser test (never a crate that downloads one).
    ("chromium", "--version", "chromium"),
];

/// One missing prerequisite and the packages that install it.
#[derive(Debug, PartialEq)]
struct Missing {
    what: String,
    packages: &'static [&'static str],
}

/// PostgreSQL's bindir, if `pg_config` answers (asked again after an install: a failure
/// is not cached).
fn bindir() -> Option<PathBuf> {
    cutter_pg::pg_bindir().ok()
}

/// What is missing, given PostgreSQL's bindir (if `pg_config` answered), whether a file
/// exists, and whether a program runs successfully with an argument.
fn missing_from(
    bindir: Option<&Path>,
    exists: impl Fn(&Path) -> bool,
    runs: impl Fn(&str, &str) -> bool,
) -> Vec<Missing> {
    let mut m = Vec::new();
    match bindir {
        Some(dir) => m.extend(
            NEEDED
                .iter()
                .filter(|b| !exists(&dir.join(b)))
                .map(|b| Missing {
                    what: format!("{b} (in {})", dir.display()),
                    packages: &POSTGRESQL_PACKAGES,
                }),
        ),
        None => m.push(Missing {
            what: "pg_config (PostgreSQL server development tools)".into(),
            packages: &POSTGRESQL_PACKAGES,
        }),
    }
    for (program, version, package) in &TOOLS {
        if !runs(program, version) {
            m.push(Missing {
                what: (*program).into(),
                packages: std::slice::from_ref(package),
            });
        }
    }
    m
}

fn missing() -> Vec<Missing> {
    missing_from(
        bindir().as_deref(),
        |p| p.exists(),
        |program, arg| {
            Command::new(program)
                .arg(arg)
                .output()
                .is_ok_and(|o| o.status.success())
        },
    )
}

/// The packages that install everything in `m`, each once, in order.
fn packages(m: &[Missing]) -> Vec<&'static str> {
    let mut p: Vec<&'static str> = Vec::new();
    for package in m.iter().flat_map(|x| x.packages) {
        if !p.contains(package) {
            p.push(package);
        }
    }
    p
}

fn names(m: &[Missing]) -> String {
    m.iter()
        .map(|x| x.what.as_str())
        .collect::<Vec<_>>()
        .join(", ")
}

fn is_root() -> bool {
    Command::new("id")
        .arg("-u")
        .output()
        .is_ok_and(|o| String::from_utf8_lossy(&o.stdout).trim() == "0")
}

/// Installs what is missing, or says what to install.
pub fn ensure() -> Result<(), String> {
    let m = missing();
    if m.is_empty() {
        return Ok(());
    }
    let packages = packages(&m);
    if !is_root() {
        return Err(format!(
            "missing prerequisites: {}. Install them, e.g. `sudo apt-get install {}`",
            names(&m),
            packages.join(" ")
        ));
    }
    eprintln!("xtask: installing missing prerequisites: {}", names(&m));
    let ok = |c: &mut Command| c.status().is_ok_and(|s| s.success());
    if !ok(Command::new("apt-get")
        .arg("update")
        .env("DEBIAN_FRONTEND", "noninteractive"))
        || !ok(Command::new("apt-get")
            .args(["install", "-y", "--no-install-recommends"])
            .args(&packages)
            .env("DEBIAN_FRONTEND", "noninteractive"))
    {
        return Err(format!("apt-get could not install {}", packages.join(", ")));
    }
    let still = missing();
    if still.is_empty() {
        Ok(())
    } else {
        Err(format!("still missing after apt-get: {}", names(&still)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_missing_openssl_is_found_and_installed_from_its_package() {
        let dir = Path::new("/usr/lib/postgresql/16/bin");
        let m = missing_from(Some(dir), |_| true, |program, _| program != "openssl");
        assert_eq!(names(&m), "openssl");
        assert_eq!(packages(&m), ["openssl"]);
    }

    #[test]
    fn everything_missing_installs_each_package_once() {
        let m = missing_from(None, |_| false, |_, _| false);
        assert_eq!(
            names(&m),
            "pg_config (PostgreSQL server development tools), gpg, openssl, sqop, man, chromium"
        );
        assert_eq!(
            packages(&m),
            [
                "postgresql",
                "postgresql-server-dev-all",
                "gnupg",
                "openssl",
                "sqop",
                "man-db",
                "chromium"
            ]
        );
        let dir = Path::new("/pg/bin");
        let m = missing_from(Some(dir), |p| !p.ends_with("psql"), |_, _| true);
        assert_eq!(names(&m), "psql (in /pg/bin)");
        assert_eq!(packages(&m), POSTGRESQL_PACKAGES);
    }

    #[test]
    fn nothing_missing_when_every_probe_succeeds() {
        assert!(missing_from(Some(Path::new("/pg/bin")), |_| true, |_, _| true).is_empty());
    }
}
