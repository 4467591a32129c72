//! `[backup] pg_bindir`: pg_dump and pg_restore from a configured directory instead of
//! `pg_config --bindir` — a directory of symlinks to the real programs works end to end,
//! a wrong one is refused naming the directory and the setting, and the version check
//! still applies to whatever the directory holds.

mod common;

use common::{fake_program, Fixture};
use cutter_backup::{
    pre_write_backup, restore_proof, selftest, Error, PassphraseSource, RestoreConfig,
    SelftestConfig,
};

#[test]
fn pg_bindir_replaces_pg_config_and_keeps_the_version_check() {
    let f = Fixture::new();
    let real = cutter_pg::pg_bindir().unwrap_or_else(|e| panic!("{e}"));
    // A directory holding the real programs as symlinks, as an operator would make one.
    let links = f.bin.path().join("links");
    std::fs::create_dir(&links).unwrap();
    for p in ["pg_dump", "pg_restore"] {
        std::os::unix::fs::symlink(real.join(p), links.join(p)).unwrap();
    }
    let a = pre_write_backup(
        &f.config("via-links").pg_bindir(Some(links.clone())),
        &mut |_| {},
    )
    .unwrap_or_else(|e| panic!("{e}"));
    let real_version = cutter_backup::PgProgram::at(&real.join("pg_dump"))
        .unwrap()
        .version;
    assert_eq!(a.manifest.dump.pg_dump_version, real_version);
    let r = selftest(&SelftestConfig {
        backups_dir: f.backups.clone(),
        pg_bindir: Some(links.clone()),
        pg: Some(f.ro()),
        ..SelftestConfig::default()
    });
    let pg_dump_check = r.checks.iter().find(|c| c.name == "pg_dump").unwrap();
    assert!(pg_dump_check.ok, "{r}");
    assert!(
        pg_dump_check.detail.contains(&links.display().to_string()),
        "{r}"
    );

    // A wrong directory: refused before anything runs, naming it and the setting.
    let empty = f.bin.path().join("empty");
    std::fs::create_dir(&empty).unwrap();
    let err = pre_write_backup(
        &f.config("wrong").pg_bindir(Some(empty.clone())),
        &mut |_| panic!("nothing may be streamed"),
    )
    .unwrap_err();
    let text = err.to_string();
    assert!(matches!(err, Error::Program { .. }), "{err:?}");
    assert!(text.contains(&empty.display().to_string()), "{text}");
    assert!(text.contains("CUTTER_PG_BINDIR"), "{text}");
    assert!(!f.backups.join("wrong.dump.pgp").exists());
    // …and so is the restore proof's pg_restore, before any cluster is started.
    let err = restore_proof(
        &RestoreConfig::new(&a.path, &f.keys.secret_key, f.pin())
            .passphrase(PassphraseSource::File(f.passphrase_file.clone()))
            .pg_bindir(Some(empty.clone())),
    )
    .unwrap_err();
    assert!(err.to_string().contains("pg_restore"), "{err}");
    assert!(err.to_string().contains("[backup] pg_bindir"), "{err}");

    // The version check applies to what the directory holds: an old pg_dump is refused
    // and never asked for a dump.
    let old = f.bin.path().join("old");
    std::fs::create_dir(&old).unwrap();
    let (_, marker) = fake_program(&old, "pg_dump", "pg_dump (PostgreSQL) 9.6", "exit 0");
    let err = pre_write_backup(&f.config("old").pg_bindir(Some(old)), &mut |_| {}).unwrap_err();
    assert!(matches!(err, Error::PgDumpTooOld { .. }), "{err:?}");
    assert!(!marker.exists(), "an old pg_dump was started for a dump");
}
