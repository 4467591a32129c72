//! A throwaway server starts with an environment built from an explicit list: read from
//! procfs, the postmaster's environment holds nothing of the caller's but the listed
//! variables, and none of the secrets the caller's environment held.
//!
//! One test in its own file: it sets variables in this test process's environment,
//! which no other test shares.

use std::collections::BTreeSet;

use cutter_pg::{Cluster, SERVER_ENV_ALLOWED};

#[test]
fn the_throwaway_servers_environment_holds_no_secret() {
    let secrets = [
        ("CUTTER_BACKUP_PASSPHRASE", "passphrase-5b1f0c9e"),
        ("CUTTER_BACKUP_SIGNING_PASSPHRASE", "signing-pass-77aa01"),
        ("DATABASE_URL", "postgres://app:pw-3c9d@db.example.org/prod"),
        (
            "CUTTER_DATABASE_URL",
            "postgres://cutter_exec@db.example.org/prod",
        ),
        ("PGPASSWORD", "pgpassword-e4d2"),
        ("PGPASSFILE", "/home/operator/.pgpass-0f31"),
        ("AWS_SECRET_ACCESS_KEY", "aws-9a8b7c"),
    ];
    for (k, v) in secrets {
        // This test binary holds this one test: no other thread reads the environment.
        std::env::set_var(k, v);
    }
    let cluster = Cluster::start().expect("throwaway cluster");
    let pid = cluster.pid().expect("the server runs");
    // The postmaster keeps the environment it was started with in place (only its
    // children overwrite theirs with the process title).
    let environ = std::fs::read(format!("/proc/{pid}/environ")).expect("read environ");
    let text = String::from_utf8_lossy(&environ).into_owned();
    for (k, v) in secrets {
        assert!(
            !text.contains(v),
            "the server's environment holds the value of {k}: {text:?}"
        );
    }
    let names: BTreeSet<String> = text
        .split('\0')
        .filter(|kv| !kv.is_empty())
        .map(|kv| kv.split('=').next().unwrap_or("").to_string())
        .collect();
    let allowed: BTreeSet<String> = SERVER_ENV_ALLOWED
        .iter()
        .map(|s| s.to_string())
        .chain(["LC_ALL".to_string(), "LANG".to_string()])
        .collect();
    let extra: Vec<&String> = names.difference(&allowed).collect();
    assert!(
        extra.is_empty(),
        "variables outside the list reached the server: {extra:?}"
    );
    assert!(names.contains("LC_ALL"), "{names:?}");
    cluster.stop().expect("stop");
}
