//! `cutter backup selftest`: every check runs; fail-closed, one line per failed check.

mod common;

use common::{fake_program, Fixture};
use cutter_backup::{generate_keys, selftest, PassphraseSource, SelftestConfig};
use cutter_core::Fingerprint;

fn good(f: &Fixture) -> SelftestConfig {
    SelftestConfig {
        backups_dir: f.backups.clone(),
        pin: Some(f.keys.fingerprint.clone()),
        recipient_key: Some(f.keys.public_key.clone()),
        secret_key: Some(f.keys.secret_key.clone()),
        passphrase: Some(PassphraseSource::File(f.passphrase_file.clone())),
        signing_pin: Some(f.pin()),
        signing_key: Some(f.signing.secret_key.clone()),
        pg_dump: None,
        pg_bindir: None,
        pg: Some(f.ro()),
    }
}

#[test]
fn everything_in_place_passes() {
    let f = Fixture::new();
    let r = selftest(&good(&f));
    assert!(r.passed(), "{r}");
    let names: Vec<&str> = r.checks.iter().map(|c| c.name.as_str()).collect();
    assert_eq!(
        names,
        [
            "recipient key",
            "manifest signing key",
            "pg_dump",
            "pg_dump compatibility",
            "read-only role",
            "state directory",
            "encryption round trip"
        ]
    );
    let text = r.to_string();
    assert!(text.ends_with("SELFTEST: PASS"), "{text}");
    assert!(text.contains("decrypted with its secret key"), "{text}");
    assert!(r.failures().is_empty());
    assert!(
        f.listing().is_empty(),
        "the probe file was left: {:?}",
        f.listing()
    );

    let compat = &r.checks[3];
    assert!(
        compat.ok && compat.detail.contains("can dump server"),
        "{compat:?}"
    );

    // Without a database the server's version is unknown: pg_dump itself is fine, but
    // its compatibility is reported, on its own line, as not checked, and that fails.
    // Without a secret key only the decryption half is left out (the secret key is
    // usually kept off the host that takes backups), which does not fail.
    let mut cfg = good(&f);
    cfg.pg = None;
    cfg.secret_key = None;
    let r = selftest(&cfg);
    assert!(!r.passed(), "{r}");
    let names: Vec<&str> = r.checks.iter().map(|c| c.name.as_str()).collect();
    assert_eq!(
        names,
        [
            "recipient key",
            "manifest signing key",
            "pg_dump",
            "pg_dump compatibility",
            "state directory",
            "encryption round trip"
        ]
    );
    assert!(r.checks[1].ok, "{:?}", r.checks[1]);
    assert!(
        r.checks[1].detail.ends_with("can sign"),
        "{:?}",
        r.checks[1]
    );
    assert!(r.checks[2].ok, "{:?}", r.checks[2]);
    assert!(r.checks[2].detail.ends_with(" runs"), "{:?}", r.checks[2]);
    let failures = r.failures();
    assert_eq!(failures.len(), 1, "{failures:#?}");
    assert!(
        failures[0].starts_with("FAIL pg_dump compatibility: not checked: no database"),
        "{}",
        failures[0]
    );
    assert!(
        failures[0].contains("run the selftest again"),
        "{}",
        failures[0]
    );
    let text = r.to_string();
    assert!(text.contains("decryption not checked"), "{text}");
    assert!(text.ends_with("SELFTEST: FAIL"), "{text}");
}

#[test]
fn nothing_configured_fails_closed_with_one_line_per_failed_check() {
    let f = Fixture::new();
    let cfg = SelftestConfig {
        backups_dir: f.dir.path().join("missing"),
        pg_dump: Some(f.dir.path().join("no-pg_dump")),
        ..SelftestConfig::default()
    };
    let r = selftest(&cfg);
    assert!(!r.passed());
    let failures = r.failures();
    assert_eq!(failures.len(), 6, "{failures:#?}");
    assert!(
        failures[0].starts_with("FAIL recipient key:") && failures[0].contains("BACKUP_GPG_FPR")
    );
    assert!(
        failures[1].starts_with("FAIL manifest signing key:")
            && failures[1].contains("signing_fingerprint"),
        "{}",
        failures[1]
    );
    assert!(failures[2].starts_with("FAIL pg_dump:") && failures[2].contains("no-pg_dump"));
    assert!(
        failures[3].starts_with("FAIL pg_dump compatibility: not checked: no database"),
        "{}",
        failures[3]
    );
    assert!(
        failures[4].starts_with("FAIL state directory:") && failures[4].contains("does not exist")
    );
    assert!(failures[5].starts_with("FAIL encryption round trip:"));
    assert!(failures.iter().all(|l| !l.contains('\n')), "{failures:#?}");
    assert!(r.to_string().ends_with("SELFTEST: FAIL"));
}

#[test]
fn wrong_pin_old_pg_dump_write_role_and_mismatched_secret_key_each_fail() {
    let f = Fixture::new();
    let (old, _) = fake_program(
        f.bin.path(),
        "pg_dump",
        "pg_dump (PostgreSQL) 9.6.24",
        "exit 0",
    );
    let other = generate_keys(f.dir.path(), "other", "Other <o@example.org>", None).unwrap();
    let mut cfg = good(&f);
    cfg.pg_dump = Some(old);
    cfg.pg = Some(f.db.exec_config());
    cfg.secret_key = Some(other.secret_key.clone());
    let r = selftest(&cfg);
    let failures = r.failures();
    assert_eq!(failures.len(), 3, "{failures:#?}");
    assert!(
        failures[0].starts_with("FAIL pg_dump compatibility:")
            && failures[0].contains("9.6.24 is older than server")
            && failures[0].contains("install PostgreSQL"),
        "{}",
        failures[0]
    );
    assert!(
        failures[1].contains("cutter_exec can change"),
        "{}",
        failures[1]
    );
    assert!(
        failures[2].contains("is not the recipient's"),
        "{}",
        failures[2]
    );

    let mut cfg = good(&f);
    cfg.pin = Some(Fingerprint::new(&"A".repeat(40)).unwrap());
    let r = selftest(&cfg);
    let failures = r.failures();
    assert_eq!(failures.len(), 2, "{failures:#?}");
    assert!(
        failures[0].contains("does not match the pinned"),
        "{}",
        failures[0]
    );
    assert!(failures[1].contains("skipped"), "{}", failures[1]);
    common::assert_secret_free("the report", &r.to_string(), &f.secrets());

    // No usable pg_dump, a database given: compatibility is not checked, and fails.
    let mut cfg = good(&f);
    cfg.pg_dump = Some(f.dir.path().join("no-pg_dump"));
    let r = selftest(&cfg);
    let failures = r.failures();
    assert_eq!(failures.len(), 2, "{failures:#?}");
    assert!(failures[0].starts_with("FAIL pg_dump:"), "{}", failures[0]);
    assert!(
        failures[1].starts_with("FAIL pg_dump compatibility: not checked: no usable pg_dump")
            && failures[1].contains("the server is "),
        "{}",
        failures[1]
    );
}
