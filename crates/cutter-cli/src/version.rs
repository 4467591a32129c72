//! `cutter --version`: the binary's version, the schema version it needs, and the
//! `pg_dump` it would use. Never fails: a missing `pg_dump` is reported, not an error.

/// The text of `cutter --version`, one fact per line:
///
/// ```text
/// cutter 0.1.0
/// schema: cutter reference schema version 5 (cutter db upgrade brings a database to it)
/// pg_dump: /usr/lib/postgresql/15/bin/pg_dump (15.14)
/// ```
///
/// The `pg_dump` is the one in `CUTTER_PG_BINDIR` when that is set (the configuration
/// file is not read for `--version`), else the one `pg_config --bindir` names.
pub fn long() -> String {
    let bindir = std::env::var_os("CUTTER_PG_BINDIR").map(std::path::PathBuf::from);
    let pg_dump = match cutter_backup::PgProgram::resolve(None, bindir.as_deref(), "pg_dump") {
        Ok(p) => format!("{} ({})", p.path.display(), p.version),
        Err(e) => format!("not found ({e})"),
    };
    format!(
        "cutter {}\nschema: cutter reference schema version {} (cutter db upgrade brings a database to it)\npg_dump: {pg_dump}\n",
        env!("CARGO_PKG_VERSION"),
        cutter_pg::schema::REFERENCE_VERSION,
    )
}
