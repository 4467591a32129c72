//! Connection services (`pg_service.conf`): the section a `service=` / `PGSERVICE` names,
//! found and read with libpq 15's rules and messages. Invariant: a service only fills in
//! parameters the connection string left unset, and every keyword in it goes through the
//! same checks as the string's (an unsupported one is an error, never ignored).

use std::path::{Path, PathBuf};

use super::parse::{apply_param, Ctx, Params};
use super::ConfigError;

/// Debian's libpq `SYSCONFDIR`, where the system-wide `pg_service.conf` lives when
/// `PGSYSCONFDIR` is not set.
pub const DEFAULT_SYSCONFDIR: &str = "/etc/postgresql-common";

/// The longest line libpq reads from a service file.
const MAX_LINE: usize = 255;

/// Fills the parameters `p` leaves unset from the section `[name]` of the first service
/// file that has it: `PGSERVICEFILE` (else `~/.pg_service.conf`), then
/// `$PGSYSCONFDIR/pg_service.conf`. `home` is the home directory, if known.
pub(super) fn apply_service(
    p: &mut Params,
    name: &str,
    env: &dyn Fn(&str) -> Option<String>,
    home: Option<&Path>,
) -> Result<(), ConfigError> {
    let user_file = env("PGSERVICEFILE")
        .filter(|f| !f.is_empty())
        .map(PathBuf::from)
        .or_else(|| home.map(|h| h.join(".pg_service.conf")));
    let sysconfdir = env("PGSYSCONFDIR")
        .filter(|d| !d.is_empty())
        .unwrap_or_else(|| DEFAULT_SYSCONFDIR.to_owned());
    let system_file = Path::new(&sysconfdir).join("pg_service.conf");
    for file in user_file.iter().chain([&system_file]) {
        // libpq skips a file it cannot stat.
        if std::fs::metadata(file).is_err() {
            continue;
        }
        if read_section(file, name, p)? {
            return Ok(());
        }
    }
    Err(ConfigError::Invalid {
        origin: format!("connection service \"{name}\""),
        problem: format!(
            "definition of service \"{name}\" not found (looked in {}{}); define [{name}] in one \
             of them, or set PGSERVICEFILE",
            user_file
                .as_ref()
                .map(|f| format!("{} and ", f.display()))
                .unwrap_or_default(),
            system_file.display()
        ),
    })
}

/// Reads `[name]` of `file` into `p` (unset parameters only); whether it was there.
fn read_section(file: &Path, name: &str, p: &mut Params) -> Result<bool, ConfigError> {
    let shown = file.display().to_string();
    let text = std::fs::read(file).map_err(|e| ConfigError::Invalid {
        origin: format!("connection service \"{name}\""),
        problem: format!("service file \"{shown}\" not found ({e})"),
    })?;
    let text = String::from_utf8_lossy(&text);
    let mut in_section = false;
    for (i, raw) in text.lines().enumerate() {
        let n = i + 1;
        let at = |problem: String| ConfigError::Invalid {
            origin: format!("service file \"{shown}\", line {n}"),
            problem,
        };
        if raw.len() > MAX_LINE {
            return Err(at(format!(
                "line {n} too long in service file \"{shown}\" (at most {MAX_LINE} bytes)"
            )));
        }
        let line = raw.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        if let Some(section) = line.strip_prefix('[') {
            if in_section {
                // The next section ends ours.
                break;
            }
            in_section = section.strip_suffix(']') == Some(name);
            continue;
        }
        if !in_section {
            continue;
        }
        let Some((key, value)) = line.split_once('=') else {
            return Err(at(format!(
                "syntax error in service file \"{shown}\", line {n}: expected keyword=value"
            )));
        };
        if key == "service" {
            return Err(at(format!(
                "nested service specifications not supported in service file \"{shown}\", \
                 line {n}"
            )));
        }
        if p.is_set(key) {
            continue;
        }
        let ctx = Ctx {
            origin: format!("service file \"{shown}\", line {n}"),
            quiet: false,
        };
        apply_param(
            p,
            key,
            value.to_owned(),
            &ctx,
            &format!("keyword \"{key}\""),
        )?;
    }
    Ok(in_section)
}
