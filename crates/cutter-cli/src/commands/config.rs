//! `cutter config show`: every effective setting, its value and where it came from, the
//! connection libpq's rules resolve to, and which secrets are set. Invariant: no secret
//! value is ever printed — a connection string is shown only in its redacted form.

use serde_json::{json, Value};

use super::Ctx;
use crate::error::Result;
use crate::settings::Source;

/// Secrets cutter reads from the environment: shown as set or not, never their values.
const SECRET_VARS: [&str; 2] = ["PGPASSWORD", "CUTTER_BACKUP_PASSPHRASE"];

fn source_json(s: &Source) -> Value {
    match s {
        Source::Flag(flag) => json!({"kind": "flag", "name": flag}),
        Source::Env(var) => json!({"kind": "env", "name": var}),
        Source::File { path, key } => json!({"kind": "file", "path": path, "key": key}),
        Source::Default => json!({"kind": "default"}),
    }
}

/// A connection string for display: its redacted form if it carries a password.
fn shown_url(url: &str) -> String {
    match cutter_pg::ConnConfig::string_has_password(url) {
        Ok(false) => url.to_owned(),
        _ => cutter_pg::ConnConfig::parse(url)
            .map(|c| format!("{} (password redacted)", c.redacted()))
            .unwrap_or_else(|_| "(redacted: it cannot be parsed and may hold a password)".into()),
    }
}

/// `cutter config show`.
pub fn show(ctx: &Ctx) -> Result<u8> {
    let s = &ctx.settings;
    let values: Vec<(&str, Option<String>)> = s
        .entries()
        .into_iter()
        .map(|(k, v)| match k {
            "[database] url" | "[database] owner_url" => (k, v.as_deref().map(shown_url)),
            _ => (k, v),
        })
        .collect();
    let width = values.iter().map(|(k, _)| k.len()).max().unwrap_or(0);
    let mut human = String::new();
    let mut rows = Vec::new();
    for (key, value) in &values {
        let source = s.source(key);
        let shown = match (value, key) {
            (Some(v), _) => v.clone(),
            (None, &"[database] url") => "(not set: libpq's service and PG* variables)".into(),
            (None, &"[backup] pg_bindir") => "(not set: `pg_config --bindir`)".into(),
            (None, _) => "(not set)".into(),
        };
        let source_text = match (key, source) {
            (&"config", Source::Default) if value.is_some() => {
                "the state directory's cutter.toml".to_owned()
            }
            (_, src) => src.to_string(),
        };
        human.push_str(&format!("{key:width$}  {shown}  ({source_text})\n"));
        rows.push(json!({"key": key, "value": value, "source": source_json(source)}));
    }
    let env = |k: &str| std::env::var(k).ok().filter(|v| !v.is_empty());
    let connection = super::target_config(ctx).map(|c| c.redacted());
    match &connection {
        Ok(url) => human.push_str(&format!(
            "\nconnection (after libpq's service files, PG* variables and defaults):\n  {url}\n"
        )),
        Err(e) => human.push_str(&format!("\nconnection: cannot be resolved: {e}\n")),
    }
    let libpq: Vec<&str> = cutter_pg::config::LIBPQ_CONNECTION_VARS
        .iter()
        .copied()
        .filter(|k| !SECRET_VARS.contains(k) && env(k).is_some())
        .collect();
    if !libpq.is_empty() {
        human.push_str(&format!("libpq variables set: {}\n", libpq.join(", ")));
    }
    let secrets: Vec<Value> = SECRET_VARS
        .iter()
        .map(|k| json!({"name": k, "set": env(k).is_some()}))
        .collect();
    human.push_str("secrets (values never shown):");
    for k in SECRET_VARS {
        let state = if env(k).is_some() { "set" } else { "not set" };
        human.push_str(&format!(" {k} {state};"));
    }
    human.pop();
    ctx.out.emit(
        human.trim_end(),
        json!({
            "settings": rows,
            "connection": match &connection {
                Ok(url) => json!({"url": url}),
                Err(e) => json!({"error": e.to_string()}),
            },
            "libpq_variables": libpq,
            "secrets": secrets,
        }),
    );
    Ok(crate::exit::OK)
}
