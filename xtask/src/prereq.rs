//! Prerequisites of the test suite and the demo: the machine's PostgreSQL server
//! binaries (found through `pg_config --bindir`), GnuPG and sqop. Installed with apt-get when
//! missing and running as root; otherwise a clear error says what to install.

use std::path::PathBuf;
use std::process::Command;

const NEEDED: [&str; 6] = [
    "initdb",
    "pg_ctl",
    "postgres",
    "pg_dump",
    "pg_restore",
    "psql",
];

fn bindir() -> Option<PathBuf> {
    let out = Command::new("pg_config").arg("--bindir").output().ok()?;
    out.status
        .success()
        .then(|| PathBuf::from(String::from_utf8_lossy(&out.stdout).trim()))
}

fn missing() -> Vec<String> {
    let mut m = Vec::new();
    match bindir() {
        Some(dir) => m.extend(
            NEEDED
                .iter()
                .filter(|b| !dir.join(b).exists())
                .map(|b| format!("{b} (in {})", dir.display())),
        ),
        None => m.push("pg_config (PostgreSQL server development tools)".into()),
    }
    if !Command::new("gpg")
        .arg("--version")
        .output()
        .is_ok_and(|o| o.status.success())
    {
        m.push("gpg".into());
    }
    // Sequoia's stateless OpenPGP CLI: approvals signed with it must verify.
    if !Command::new("sqop")
        .arg("version")
        .output()
        .is_ok_and(|o| o.status.success())
    {
        m.push("sqop".into());
    }
    m
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
    if !is_root() {
        return Err(format!(
            "missing prerequisites: {}. Install PostgreSQL (server, with pg_config), GnuPG, sqop and OpenSSL, e.g. `sudo apt-get install postgresql postgresql-server-dev-all gnupg sqop openssl`",
            m.join(", ")
        ));
    }
    eprintln!("xtask: installing missing prerequisites: {}", m.join(", "));
    let ok = |c: &mut Command| c.status().is_ok_and(|s| s.success());
    if !ok(Command::new("apt-get")
        .arg("update")
        .env("DEBIAN_FRONTEND", "noninteractive"))
        || !ok(Command::new("apt-get")
            .args([
                "install",
                "-y",
                "--no-install-recommends",
                "postgresql",
                "postgresql-server-dev-all",
                "gnupg",
                "sqop",
            ])
            .env("DEBIAN_FRONTEND", "noninteractive"))
    {
        return Err("apt-get could not install postgresql, gnupg, sqop and openssl".into());
    }
    let still = missing();
    if still.is_empty() {
        Ok(())
    } else {
        Err(format!("still missing after apt-get: {}", still.join(", ")))
    }
}
