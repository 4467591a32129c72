//! Backup chains on a real database: a full backup and increments taken while drafts are
//! changed, enacted, withdrawn and hard-deleted, restored by the chain proof into a real
//! throwaway cluster, to exactly the live database's digests; links missing, swapped or
//! altered are named; a trigger disabled and re-enabled forces a full backup.

mod common;

use std::fs;
use std::path::{Path, PathBuf};

use common::{Fixture, Gpg};
use cutter_backup::{
    chain_proof, chained_backup, increment_proof, restore_proof, verify_chain, BackupArtifact,
    ChainPolicy, ChainProofConfig, Error, LinkKind, PassphraseSource, INCREMENT_FORMAT,
};

fn link(f: &Fixture, name: &str) -> BackupArtifact {
    chained_backup(&f.config(name), &ChainPolicy::default(), &mut |_| {})
        .unwrap_or_else(|e| panic!("backup {name}: {e}"))
}

fn kind(a: &BackupArtifact) -> LinkKind {
    a.manifest.chain.as_ref().expect("a chain section").kind
}

fn proof_config(f: &Fixture, head: &Path) -> ChainProofConfig {
    ChainProofConfig::new(head, &f.keys.secret_key, f.pin())
        .passphrase(PassphraseSource::File(f.passphrase_file.clone()))
}

/// New draft units (one version each, and a lifecycle row each if `logged`), written
/// as the owner.
fn add_drafts_logged(f: &Fixture, tag: &str, n: i32, logged: bool) {
    let log = if logged { "" } else { "WHERE false" };
    let mut c = f.db.admin();
    c.batch_execute(&format!(
        "WITH u AS (
           INSERT INTO public.information_unit (canonical_address, title, unit_kind_ref, identity_profile,
                  publication_type, document_id, source_version_id, change_set_id, created_by)
           SELECT 'test/{tag}/' || g, 'Draft {tag} ' || g, (SELECT ref FROM vocab.unit_kind WHERE ref IS NOT NULL LIMIT 1),
                  '{{\"primary_section_type_ref\": \"x\"}}', (SELECT code FROM vocab.publication_type LIMIT 1),
                  'doc-{tag}', 'sv-{tag}', 'cs-{tag}', 'test'
             FROM generate_series(1, {n}) g RETURNING id),
         v AS (INSERT INTO public.unit_version (information_unit_id, version_no, body, body_sha256, created_by)
               SELECT id, 1, 'body of ' || id, encode(sha256(('body of ' || id)::bytea), 'hex'), 'test' FROM u RETURNING 1)
         INSERT INTO public.iu_lifecycle_log (information_unit_id, from_status, to_status, actor, change_set_id)
         SELECT id, NULL, 'draft', 'test', 'cs-{tag}' FROM u {log}"
    ))
    .unwrap_or_else(|e| panic!("adding drafts {tag}: {e}"));
}

fn add_drafts(f: &Fixture, tag: &str, n: i32) {
    add_drafts_logged(f, tag, n, true)
}

/// Sets the units (and versions) of change set `cs` to `status`, with a log row each.
fn set_status(f: &Fixture, cs: &str, status: &str) {
    let mut c = f.db.admin();
    c.batch_execute(&format!(
        "INSERT INTO public.iu_lifecycle_log (information_unit_id, from_status, to_status, actor, change_set_id)
           SELECT id, lifecycle_status, '{status}', 'test', change_set_id FROM public.information_unit
            WHERE change_set_id = '{cs}';
         UPDATE public.unit_version v SET lifecycle_status = '{status}'
           FROM public.information_unit u WHERE v.information_unit_id = u.id AND u.change_set_id = '{cs}';
         UPDATE public.information_unit SET lifecycle_status = '{status}', updated_at = now()
          WHERE change_set_id = '{cs}'"
    ))
    .unwrap_or_else(|e| panic!("{cs} → {status}: {e}"));
}

/// The live surface's rows and ordered content digests.
fn live(f: &Fixture) -> std::collections::BTreeMap<cutter_core::TableName, cutter_core::TableStat> {
    let mut c = f.db.admin();
    let mut tx = c.transaction().unwrap();
    cutter_pg::surface::surface_stats(&mut tx, None).unwrap()
}

/// A chain of a full backup and five increments, with drafts added, changed, enacted,
/// withdrawn and hard-deleted between them, and a ledger row committed late (its id
/// lower than rows already backed up), restores to exactly the live digests; the
/// increments hold only what changed.
#[test]
fn a_full_backup_and_five_increments_restore_to_the_live_database() {
    let f = Fixture::new();
    let full = link(&f, "r0");
    assert_eq!(kind(&full), LinkKind::Full);
    let units_before = full
        .manifest
        .tables
        .iter()
        .find(|(t, _)| t.name() == "information_unit")
        .unwrap()
        .1
        .rows;

    // 1: new drafts.
    add_drafts(&f, "a", 30);
    add_drafts(&f, "b", 20);
    let r1 = link(&f, "r1");
    assert_eq!(kind(&r1), LinkKind::Incremental);
    assert_eq!(r1.manifest.dump.format, INCREMENT_FORMAT);
    // Only what can change or is new is carried: not the enacted baseline.
    let c1 = r1.manifest.chain.as_ref().unwrap();
    let iu = c1
        .tables
        .iter()
        .find(|(t, _)| t.name() == "information_unit")
        .unwrap()
        .1;
    assert!(iu.increment.rows < units_before + 50, "{iu:?}");
    assert_eq!(iu.total.rows, units_before + 50);

    // 2: a draft changed, change set a enacted; a ledger row begun before r2 commits after it.
    f.db.admin()
        .batch_execute("UPDATE public.information_unit SET title = 'Changed title' WHERE canonical_address = 'test/b/1'")
        .unwrap();
    set_status(&f, "cs-a", "enacted");
    let mut late = f.db.admin();
    let mut late_tx = late.transaction().unwrap();
    late_tx
        .batch_execute(
            "INSERT INTO cutter_governance.review_decision (run_id, decision, payload, actor) \
             VALUES ('late-run', 'note', '{\"late\": true}', 'test')",
        )
        .unwrap();
    f.db.admin()
        .batch_execute(
            "INSERT INTO cutter_governance.review_decision (run_id, decision, payload, actor) \
             VALUES ('early-run', 'note', '{}', 'test')",
        )
        .unwrap();
    let r2 = link(&f, "r2");
    assert_eq!(kind(&r2), LinkKind::Incremental);
    late_tx.commit().unwrap();
    drop(late);

    // 3: change set b withdrawn.
    set_status(&f, "cs-b", "withdrawn");
    let r3 = link(&f, "r3");
    assert_eq!(kind(&r3), LinkKind::Incremental);

    // 4: a new change set hard-deleted while draft (as fn_iu_hard_delete_draft does: no
    //    lifecycle row refers to its units).
    add_drafts_logged(&f, "c", 5, false);
    let r4 = link(&f, "r4");
    f.db.admin()
        .batch_execute(
            "DELETE FROM public.unit_version v USING public.information_unit u
              WHERE v.information_unit_id = u.id AND u.change_set_id = 'cs-c';
             DELETE FROM public.information_unit WHERE change_set_id = 'cs-c'",
        )
        .unwrap();
    // 5: more drafts.
    add_drafts(&f, "d", 3);
    let r5 = link(&f, "r5");
    for r in [&r4, &r5] {
        assert_eq!(kind(r), LinkKind::Incremental);
    }
    let c5 = r5.manifest.chain.as_ref().unwrap();
    assert_eq!(c5.seq, 5);
    assert_eq!(c5.chain.as_str(), "r0");

    let want = live(&f);
    let proof = chain_proof(&proof_config(&f, &r5.path)).expect("the chain proof passes");
    assert!(proof.passed, "{:?}", proof.failures);
    assert_eq!(proof.links.len(), 6);
    assert!(!proof.foreign_keys.is_empty());
    for check in &proof.tables {
        assert_eq!(
            Some(&check.content),
            want.get(&check.table),
            "{} differs from the live database",
            check.table
        );
    }
    // The late row is in the restored chain (the review_decision digest above covers it).
    let rd = proof
        .tables
        .iter()
        .find(|t| t.table.name() == "review_decision")
        .unwrap();
    assert_eq!(Some(&rd.content), want.get(&rd.table));
}

/// Every link is checked before anything is restored: a missing link, two links
/// swapped, an altered artifact and a foreign manifest each fail and name the link.
#[test]
fn a_missing_swapped_or_altered_link_is_named() {
    let f = Fixture::new();
    let _r0 = link(&f, "r0");
    add_drafts(&f, "a", 3);
    let _r1 = link(&f, "r1");
    add_drafts(&f, "b", 3);
    let r2 = link(&f, "r2");
    verify_chain(&r2.path, &f.pin()).expect("the intact chain verifies");
    let b = &f.backups;
    let files = |n: &str| -> Vec<PathBuf> {
        ["dump.pgp", "manifest.json", "manifest.json.sig"]
            .iter()
            .map(|s| b.join(format!("{n}.{s}")))
            .collect()
    };
    let names_link = |e: Error, link: &str| {
        let text = e.to_string();
        match e {
            Error::Chain { link: l, .. } => assert_eq!(l, link, "{text}"),
            other => panic!("expected a broken chain at {link}, got {other}"),
        }
    };

    // Missing.
    let aside = f.dir.path().join("aside");
    fs::create_dir(&aside).unwrap();
    for p in files("r1") {
        fs::rename(&p, aside.join(p.file_name().unwrap())).unwrap();
    }
    names_link(verify_chain(&r2.path, &f.pin()).unwrap_err(), "r1");
    for p in files("r1") {
        fs::rename(aside.join(p.file_name().unwrap()), &p).unwrap();
    }

    // Altered: one byte of r1's artifact.
    let art = b.join("r1.dump.pgp");
    let orig = fs::read(&art).unwrap();
    let mut bad = orig.clone();
    let mid = bad.len() / 2;
    bad[mid] ^= 1;
    fs::write(&art, &bad).unwrap();
    names_link(verify_chain(&r2.path, &f.pin()).unwrap_err(), "r1");
    fs::write(&art, &orig).unwrap();

    // Swapped: r0's files under r1's names (a valid, signed backup, but not the link).
    for (from, to) in files("r0").iter().zip(files("r1")) {
        fs::rename(&to, aside.join(to.file_name().unwrap())).unwrap();
        fs::copy(from, &to).unwrap();
    }
    names_link(verify_chain(&r2.path, &f.pin()).unwrap_err(), "r1");
    for p in files("r1") {
        fs::rename(aside.join(p.file_name().unwrap()), &p).unwrap();
    }

    // Another signed increment of the same chain in r1's place: its manifest hash is not
    // the one r2 names.
    let _x = link(&f, "x1");
    verify_chain(&r2.path, &f.pin()).expect("still intact");
    let mut m: serde_json::Value =
        serde_json::from_slice(&fs::read(b.join("x1.manifest.json")).unwrap()).unwrap();
    m["run_id"] = "r1".into();
    m["artifact"] = "r1.dump.pgp".into();
    for p in files("r1") {
        fs::rename(&p, aside.join(p.file_name().unwrap())).unwrap();
    }
    fs::copy(b.join("x1.dump.pgp"), b.join("r1.dump.pgp")).unwrap();
    fs::write(
        b.join("r1.manifest.json"),
        serde_json::to_string_pretty(&m).unwrap(),
    )
    .unwrap();
    f.resign(&b.join("r1.manifest.json"));
    names_link(verify_chain(&r2.path, &f.pin()).unwrap_err(), "r1");
}

/// A trigger disabled and re-enabled between two backups leaves no trace in
/// pg_trigger, but the DDL audit has it: the next backup is full, the one after is an
/// increment of the new chain.
#[test]
fn a_trigger_disabled_and_re_enabled_forces_a_full_backup() {
    let f = Fixture::new();
    let _r0 = link(&f, "r0");
    add_drafts(&f, "a", 2);
    let r1 = link(&f, "r1");
    assert_eq!(kind(&r1), LinkKind::Incremental);
    f.db.admin()
        .batch_execute(
            "ALTER TABLE public.information_unit DISABLE TRIGGER trg_iu_enacted_immut;
             ALTER TABLE public.information_unit ENABLE TRIGGER trg_iu_enacted_immut;",
        )
        .unwrap();
    let r2 = link(&f, "r2");
    let c2 = r2.manifest.chain.as_ref().unwrap();
    assert_eq!(c2.kind, LinkKind::Full, "{}", c2.reason);
    assert!(c2.reason.contains("DDL"), "{}", c2.reason);
    assert!(c2.reason.contains("information_unit"), "{}", c2.reason);
    let r3 = link(&f, "r3");
    let c3 = r3.manifest.chain.as_ref().unwrap();
    assert_eq!(c3.kind, LinkKind::Incremental);
    assert_eq!(c3.chain.as_str(), "r2");

    // A disabled watermark trigger, still disabled at the next backup: full as well.
    f.db.admin()
        .batch_execute("ALTER TABLE public.unit_version DISABLE TRIGGER z_backup_watermark")
        .unwrap();
    let r4 = link(&f, "r4");
    let c4 = r4.manifest.chain.as_ref().unwrap();
    assert_eq!(c4.kind, LinkKind::Full);
    assert!(c4.reason.contains("z_backup_watermark"), "{}", c4.reason);
}

/// GnuPG decrypts an increment: the framing inside is cutter's, the message OpenPGP's.
#[test]
fn an_increment_decrypts_with_gpg() {
    let f = Fixture::new();
    let _r0 = link(&f, "r0");
    add_drafts(&f, "a", 2);
    let r1 = link(&f, "r1");
    assert_eq!(kind(&r1), LinkKind::Incremental);
    let gpg = Gpg::new();
    gpg.import_secret(&f.keys.secret_key);
    let plain = gpg.decrypt(&r1.path);
    assert!(plain.starts_with(b"CUTTER-INCREMENT/1\n"));
    assert_eq!(plain.len() as u64, r1.manifest.dump.plaintext_bytes);
    assert!(
        plain.windows(8).any(|w| w == b"test/a/1"),
        "the new draft is in the increment"
    );
}

/// The owner can delete lifecycle rows (append-only for everyone else); increments
/// cannot see a deletion from an append-only table, so the chain keeps the rows while
/// the units they refer to are gone: the chain proof's foreign-key check names it.
#[test]
fn the_chain_proof_checks_references_across_links() {
    let f = Fixture::new();
    let _r0 = link(&f, "r0");
    add_drafts(&f, "c", 2);
    let _r1 = link(&f, "r1");
    f.db.admin()
        .batch_execute(
            "DELETE FROM public.iu_lifecycle_log WHERE change_set_id = 'cs-c';
             DELETE FROM public.unit_version v USING public.information_unit u
              WHERE v.information_unit_id = u.id AND u.change_set_id = 'cs-c';
             DELETE FROM public.information_unit WHERE change_set_id = 'cs-c'",
        )
        .unwrap();
    let r2 = link(&f, "r2");
    assert_eq!(kind(&r2), LinkKind::Incremental);
    let err = chain_proof(&proof_config(&f, &r2.path)).unwrap_err();
    let text = err.to_string();
    assert!(
        matches!(err, Error::Chain { ref link, .. } if link == "r2"),
        "{text}"
    );
    assert!(
        text.contains("foreign key iu_lifecycle_log_information_unit_id_fkey"),
        "{text}"
    );
}

/// The increment proof: only after the predecessor was proven, and it checks the
/// increment's own digests (a manifest re-signed with other counts fails, naming it).
#[test]
fn an_increment_is_proven_on_its_own_after_its_predecessor() {
    let f = Fixture::new();
    let r0 = link(&f, "r0");
    add_drafts(&f, "a", 4);
    let r1 = link(&f, "r1");
    let unproven = increment_proof(&proof_config(&f, &r1.path)).unwrap_err();
    assert!(
        matches!(unproven, Error::Chain { ref link, .. } if link == "r0"),
        "{unproven}"
    );
    restore_proof(
        &f.restore(&r0.path)
            .record_to(f.backups.join("r0.restore-proof.json"), &f.signer),
    )
    .expect("the full backup's proof");
    let proof = increment_proof(
        &proof_config(&f, &r1.path).record_to(f.backups.join("r1.increment-proof.json"), &f.signer),
    )
    .expect("the increment proof passes");
    assert!(proof.passed);
    let iu = proof
        .tables
        .iter()
        .find(|t| t.table.name() == "information_unit")
        .unwrap();
    assert_eq!(
        iu.actual.rows,
        r1.manifest.chain.as_ref().unwrap().tables[&iu.table]
            .increment
            .rows
    );
    assert!(iu.actual.rows >= 4);

    // r2 follows a proven r1; its manifest edited (and re-signed) to claim other rows.
    add_drafts(&f, "b", 1);
    let r2 = link(&f, "r2");
    let m = f.backups.join("r2.manifest.json");
    let mut v: serde_json::Value = serde_json::from_slice(&fs::read(&m).unwrap()).unwrap();
    let rows = &mut v["tables"]["public.unit_version"]["rows"];
    *rows = (rows.as_u64().unwrap() + 1).into();
    fs::write(&m, serde_json::to_string_pretty(&v).unwrap()).unwrap();
    f.resign(&m);
    let err = increment_proof(&proof_config(&f, &r2.path)).unwrap_err();
    let text = err.to_string();
    assert!(
        matches!(err, Error::Chain { ref link, .. } if link == "r2"),
        "{text}"
    );
    assert!(text.contains("public.unit_version"), "{text}");
}

/// Signs `bytes` with the secret key at `key` (no passphrase) into `<record>.sig`.
fn sign_record(key: &Path, record: &Path, bytes: &[u8]) {
    let secret = cutter_backup::load_secret_key(key).unwrap();
    let sig = cutter_openpgp::sign_detached(
        &secret,
        &cutter_backup::Passphrase::new(String::new()),
        bytes,
    )
    .unwrap();
    fs::write(cutter_backup::record_signature_path(record), sig).unwrap();
}

/// A proof record counts only when the pinned signing key signed it and it names its
/// own backup's artifact: one written by hand, one edited from `"passed": false` to
/// `true`, one signed by another key, and one copied from another backup are each
/// refused, naming the file; the increment proof refuses a predecessor "proven" so.
#[test]
fn a_proof_record_counts_only_signed_by_the_pinned_key_for_its_own_backup() {
    let f = Fixture::new();
    let pin = f.pin();
    let r0 = link(&f, "r0");
    let rec0 = f.backups.join("r0.restore-proof.json");
    restore_proof(&f.restore(&r0.path).record_to(&rec0, &f.signer)).expect("r0's proof");
    assert!(cutter_backup::is_proven(&f.backups, &r0.manifest.run_id, &pin).unwrap());
    // gpg reads the record's signature as it reads a manifest's.
    let gpg = Gpg::new();
    gpg.run(&["--import"], &fs::read(&f.signing.public_key).unwrap());
    let sig0 = cutter_backup::record_signature_path(&rec0);
    gpg.run(
        &["--verify", sig0.to_str().unwrap(), rec0.to_str().unwrap()],
        b"",
    );

    add_drafts(&f, "a", 2);
    let r1 = link(&f, "r1");
    let name1 = r1.manifest.run_id.clone();
    add_drafts(&f, "b", 1);
    let r2 = link(&f, "r2");
    assert!(!cutter_backup::is_proven(&f.backups, &name1, &pin).unwrap());
    let rec1 = f.backups.join("r1.increment-proof.json");
    let claim = |passed: bool| {
        serde_json::to_string_pretty(&serde_json::json!({
            "format": cutter_backup::INCREMENT_PROOF_FORMAT,
            "artifact_sha256": r1.manifest.sha256.to_string(),
            "passed": passed,
        }))
        .unwrap()
    };
    let refused = |what: &str, needle: &str| {
        let err = cutter_backup::is_proven(&f.backups, &name1, &pin).unwrap_err();
        let text = err.to_string();
        assert!(
            matches!(err, Error::ProofRecord { ref path, .. } if path == &rec1),
            "{what}: {text}"
        );
        assert!(text.contains(needle), "{what}: {text}");
        // The increment proof of r2 will not take r1 as proven.
        let err = increment_proof(&proof_config(&f, &r2.path)).unwrap_err();
        assert!(
            err.to_string().contains("r1.increment-proof.json"),
            "{what}: {err}"
        );
        let _ = fs::remove_file(&rec1);
        let _ = fs::remove_file(cutter_backup::record_signature_path(&rec1));
    };

    // 1. Written by hand, unsigned.
    fs::write(&rec1, claim(true)).unwrap();
    refused("unsigned", "unsigned");

    // 2. A failed record, signed by the pinned key, edited to "passed": true.
    fs::write(&rec1, claim(false)).unwrap();
    sign_record(&f.signing.secret_key, &rec1, claim(false).as_bytes());
    assert!(!cutter_backup::is_proven(&f.backups, &name1, &pin).unwrap());
    fs::write(&rec1, claim(true)).unwrap();
    refused("edited to passed", "does not verify");

    // 3. Signed by another key.
    let other =
        cutter_backup::generate_keys(f.dir.path(), "other", "Other <other@example.org>", None)
            .unwrap();
    fs::write(&rec1, claim(true)).unwrap();
    sign_record(&other.secret_key, &rec1, claim(true).as_bytes());
    refused("another key", "does not verify");

    // 4. r0's genuine record and signature copied to r1.
    fs::copy(&rec0, &rec1).unwrap();
    fs::copy(&sig0, cutter_backup::record_signature_path(&rec1)).unwrap();
    refused("copied from r0", "a record of another backup");
}

/// Compensation's "discard the artifact" refuses a backup a later link names as its
/// predecessor, naming that link; the head of a chain goes, then its predecessor can.
#[test]
fn a_backup_a_later_link_needs_is_not_discarded() {
    let f = Fixture::new();
    let pin = f.pin();
    let r0 = link(&f, "r0");
    add_drafts(&f, "a", 1);
    let r1 = link(&f, "r1");
    let before = f.listing();
    let err = cutter_backup::discard_backup(&f.backups, &r0.manifest.run_id, &pin).unwrap_err();
    let text = err.to_string();
    assert!(
        matches!(err, Error::StillNeeded { ref later, .. } if later == "r1"),
        "{text}"
    );
    assert!(text.contains("cutter backup create --full"), "{text}");
    assert_eq!(f.listing(), before, "nothing was removed");
    // The head goes first; then its predecessor can.
    let removed = cutter_backup::discard_backup(&f.backups, &r1.manifest.run_id, &pin).unwrap();
    assert!(removed.contains(&"r1.dump.pgp".to_string()), "{removed:?}");
    assert!(removed[0].ends_with(".manifest.json"), "{removed:?}");
    assert!(!r1.path.exists() && !r1.manifest_path.exists());
    cutter_backup::discard_backup(&f.backups, &r0.manifest.run_id, &pin).unwrap();
    assert!(!r0.path.exists());
}

/// A chain broken behind its head makes the next backup full, naming the link: a middle
/// link's manifest edited (its signature no longer matches), then, on the new chain, a
/// middle link's artifact removed. An increment on such a chain could never be restored.
#[test]
fn a_chain_broken_behind_its_head_makes_the_next_backup_full_naming_the_link() {
    let f = Fixture::new();
    let _r0 = link(&f, "r0");
    add_drafts(&f, "a", 1);
    let _r1 = link(&f, "r1");
    let r2 = link(&f, "r2");
    assert_eq!(kind(&r2), LinkKind::Incremental);
    let m1 = f.backups.join("r1.manifest.json");
    let text = fs::read_to_string(&m1).unwrap();
    fs::write(&m1, text.replacen("\"seq\": 1", "\"seq\": 1 ", 1)).unwrap();
    let r3 = link(&f, "r3");
    let reason = &r3.manifest.chain.as_ref().unwrap().reason;
    assert_eq!(kind(&r3), LinkKind::Full, "{reason}");
    assert!(
        reason.contains("broken at link \"r1\"") && reason.contains("does not verify"),
        "{reason}"
    );

    // The new chain r3 → r4 → r5; r4's artifact removed.
    let _r4 = link(&f, "r4");
    let r5 = link(&f, "r5");
    assert_eq!(kind(&r5), LinkKind::Incremental);
    fs::remove_file(f.backups.join("r4.dump.pgp")).unwrap();
    let r6 = link(&f, "r6");
    let reason = &r6.manifest.chain.as_ref().unwrap().reason;
    assert_eq!(kind(&r6), LinkKind::Full, "{reason}");
    assert!(
        reason.contains("broken at link \"r4\"") && reason.contains("r4.dump.pgp is missing"),
        "{reason}"
    );
    // A whole chain still takes an increment.
    let r7 = link(&f, "r7");
    assert_eq!(kind(&r7), LinkKind::Incremental);
}
