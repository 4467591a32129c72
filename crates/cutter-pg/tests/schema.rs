//! The reference schema: baseline counts, the F2 contract of fn_iu_create and its batch
//! twin, the immutability triggers, roles and privileges, compensation A functions, and
//! preflight on the reference.

use cutter_pg::fixtures;
use cutter_pg::schema::{
    self, BASELINE_ENACTED, BASELINE_LIFECYCLE_LOG, BASELINE_UNITS, BASELINE_VERSIONS,
};
use cutter_pg::testing::TestDb;
use postgres::Client;

fn code(e: &postgres::Error) -> String {
    e.code().map(|c| c.code().to_string()).unwrap_or_default()
}

fn message(e: &postgres::Error) -> String {
    e.as_db_error()
        .map(|d| d.message().to_string())
        .unwrap_or_else(|| e.to_string())
}

fn scalar_i64(c: &mut Client, sql: &str) -> i64 {
    c.query_one(sql, &[]).unwrap().get(0)
}

#[test]
fn baseline_has_the_seed_counts() {
    let db = TestDb::new();
    assert_eq!(db.count("public.information_unit"), BASELINE_UNITS as i64);
    assert_eq!(db.count("public.unit_version"), BASELINE_VERSIONS as i64);
    assert_eq!(
        db.count("public.iu_lifecycle_log"),
        BASELINE_LIFECYCLE_LOG as i64
    );
    let mut c = db.admin();
    assert_eq!(
        scalar_i64(
            &mut c,
            "SELECT count(*) FROM public.information_unit WHERE lifecycle_status = 'enacted'"
        ),
        BASELINE_ENACTED as i64
    );
    assert_eq!(
        scalar_i64(
            &mut c,
            "SELECT count(*) FROM public.information_unit WHERE lifecycle_status = 'draft'"
        ),
        98
    );
    assert_eq!(
        scalar_i64(
            &mut c,
            "SELECT count(*) FROM public.unit_version WHERE version_no = 2"
        ),
        7
    );
    assert_eq!(
        scalar_i64(
            &mut c,
            "SELECT count(*) FROM public.unit_version WHERE body_sha256 <> encode(sha256(convert_to(body, 'UTF8')), 'hex')"
        ),
        0
    );
    for t in [
        "cut_change_set",
        "cut_change_set_affected_row",
        "manifest_envelope",
        "review_decision",
        "verify_result",
        "dot_pair_signature",
    ] {
        assert_eq!(db.count(&format!("cutter_governance.{t}")), 0, "{t}");
    }
    // Every migration of the reference is installed and recorded, with its text's digest.
    assert_eq!(
        schema::installed_version(&mut c).unwrap(),
        Some(schema::REFERENCE_VERSION)
    );
    let recorded: Vec<(i32, String, String)> = c
        .query(
            "SELECT version, name, sha256 FROM cutter_governance.schema_version ORDER BY version",
            &[],
        )
        .unwrap()
        .iter()
        .map(|r| (r.get(0), r.get(1), r.get(2)))
        .collect();
    let expected: Vec<(i32, String, String)> = schema::MIGRATIONS
        .iter()
        .map(|m| {
            (
                m.version,
                m.name.to_string(),
                cutter_core::Sha256Digest::of(m.sql.as_bytes()).to_hex(),
            )
        })
        .collect();
    assert_eq!(recorded, expected);
}

/// The baseline's digests are pinned: any change to the fixture, the schema's column
/// order or the canonical digest form shows up here.
#[test]
fn baseline_digests_are_deterministic_and_pinned() {
    let a = TestDb::new();
    let b = TestDb::new();
    let sa = a.target().snapshot().unwrap();
    let sb = b.target().snapshot().unwrap();
    assert_eq!(sa.tables, sb.tables);
    let digest = |s: &cutter_core::Snapshot, t: &str| {
        s.tables
            .iter()
            .find(|(n, _)| n.to_string() == t)
            .map(|(_, st)| st.digest.to_hex())
            .unwrap()
    };
    assert_eq!(
        digest(&sa, "public.information_unit"),
        "8d3307fc1d34bb1582f726c9ebb0ce37a167576fe57fb6aa24065a8a70f67db8"
    );
    assert_eq!(
        digest(&sa, "public.unit_version"),
        // Since V6 each row's text ends in the four amendment columns (NULL here).
        "b2d5dfc6ee63c43f97fc9b10936b4847b861059675e83e76833cd4e6afd8d83b"
    );
    assert_eq!(
        digest(&sa, "public.iu_lifecycle_log"),
        "9799f145cbff4d0973e5a8e8f6e77995e3567886fc1da945eccfa5143bee8e2b"
    );
    // Empty tables: SHA-256 of nothing.
    assert_eq!(
        digest(&sa, "cutter_governance.verify_result"),
        "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
    );
}

/// A change set's footprint counts its units and digests everything else: a change to a
/// unit outside it, or to one of their versions or log rows, changes the digest; a change
/// inside it does not.
#[test]
fn change_set_footprint_sees_every_change_outside_the_change_set() {
    use cutter_pg::surface::change_set_footprint;
    let db = TestDb::new();
    let mut c = db.admin();
    let before = change_set_footprint(&mut c, "cs-x").unwrap();
    assert_eq!(before.other_units, 158);
    assert!(before.statuses.is_empty());
    // Two draft units join change set cs-x, then one of them is withdrawn.
    c.batch_execute(
        "UPDATE public.information_unit SET change_set_id = 'cs-x'
          WHERE id IN (SELECT id FROM public.information_unit
                        WHERE lifecycle_status = 'draft' ORDER BY id LIMIT 2)",
    )
    .unwrap();
    let joined = change_set_footprint(&mut c, "cs-x").unwrap();
    assert_eq!(joined.other_units, 156);
    assert_eq!(joined.statuses["draft"], 2);
    c.batch_execute(
        "UPDATE public.information_unit SET lifecycle_status = 'withdrawn'
          WHERE id = (SELECT min(id) FROM public.information_unit WHERE change_set_id = 'cs-x')",
    )
    .unwrap();
    let inside = change_set_footprint(&mut c, "cs-x").unwrap();
    assert_eq!(inside.other_digest, joined.other_digest);
    assert_eq!(inside.statuses["withdrawn"], 1);
    // One byte of one version of a unit outside it.
    let changed = c.execute(
        "UPDATE public.unit_version SET body = body || ' '
          WHERE id = (SELECT min(v.id) FROM public.unit_version v
                        JOIN public.information_unit u ON u.id = v.information_unit_id
                       WHERE v.lifecycle_status = 'draft' AND u.change_set_id IS DISTINCT FROM 'cs-x')",
        &[],
    )
    .unwrap();
    assert_eq!(changed, 1);
    let outside = change_set_footprint(&mut c, "cs-x").unwrap();
    assert_ne!(outside.other_digest, inside.other_digest);
    assert_eq!(outside.other_units, 156);
}

/// The canonical form, recomputed on the client from the documented definition.
#[test]
fn digest_canonical_form_matches_its_documentation() {
    use sha2::{Digest, Sha256};
    let db = TestDb::new();
    let mut c = db.admin();
    // A different session time zone must not change anything.
    c.batch_execute("SET TimeZone = 'Asia/Ho_Chi_Minh'; SET DateStyle = 'SQL, DMY'")
        .unwrap();
    let mut tx = c.transaction().unwrap();
    let t = cutter_core::TableName::new("public", "iu_lifecycle_log").unwrap();
    let stat = cutter_pg::surface::table_stat(&mut tx, &t, None).unwrap();
    // Every column but the backup watermark (V7), in table order.
    let rows = tx
        .query(
            "SELECT r::text FROM (SELECT id, information_unit_id, from_status, to_status, actor, \
                    run_id, change_set_id, reason, created_at FROM public.iu_lifecycle_log) r ORDER BY id",
            &[],
        )
        .unwrap();
    let mut outer = Sha256::new();
    for r in &rows {
        let text: String = r.get(0);
        assert!(text.contains("+00"), "timestamps in UTC, ISO: {text}");
        outer.update(Sha256::digest(text.as_bytes()));
    }
    let expected: [u8; 32] = outer.finalize().into();
    assert_eq!(stat.rows, 60);
    assert_eq!(stat.digest.as_bytes(), &expected);
}

#[test]
fn preflight_of_the_reference_is_clean_for_every_role() {
    let db = TestDb::new();
    for config in [db.exec_config(), db.verify_config(), db.admin_config()] {
        let mut t = cutter_pg::Target::connect(&config).unwrap();
        let report = t.preflight().unwrap();
        assert!(report.is_ok(), "{report}");
        assert!(report.warnings.is_empty(), "{report}");
        assert_eq!(
            report.schema_version,
            Some(cutter_pg::schema::REFERENCE_VERSION)
        );
    }
}

/// V7's backup stamp trigger and an event trigger, disabled: warnings that say what it
/// means for backups, for every role; the target still conforms (a run is not blocked).
#[test]
fn preflight_warns_of_a_disabled_backup_stamp_or_event_trigger() {
    let db = TestDb::new();
    db.admin()
        .batch_execute(
            "ALTER TABLE public.unit_version DISABLE TRIGGER z_backup_watermark; \
             ALTER EVENT TRIGGER cutter_surface_ddl_audit DISABLE",
        )
        .unwrap();
    for config in [db.exec_config(), db.verify_config(), db.admin_config()] {
        let report = cutter_pg::Target::connect(&config)
            .unwrap()
            .preflight()
            .unwrap();
        let text = report.to_string();
        assert!(report.is_ok(), "{text}");
        for needle in [
            "warning: trigger z_backup_watermark on public.unit_version: the backup stamp trigger is disabled (enabled state D)",
            "warning: event trigger cutter_surface_ddl_audit: the surface DDL audit event trigger is disabled (enabled state D)",
            "every backup is full",
        ] {
            assert!(text.contains(needle), "{needle} not in\n{text}");
        }
        assert_eq!(report.warnings.len(), 2, "{text}");
    }
    // Dropped rather than disabled: missing.
    db.admin()
        .batch_execute("DROP TRIGGER z_backup_watermark ON public.iu_lifecycle_log")
        .unwrap();
    let text = db.target().preflight().unwrap().to_string();
    assert!(
        text.contains("trigger z_backup_watermark on public.iu_lifecycle_log: the backup stamp trigger is missing"),
        "{text}"
    );
}

fn create(
    c: &mut Client,
    addr: &str,
    section: Option<&str>,
    kind: &str,
) -> Result<postgres::Row, postgres::Error> {
    c.query_one(
        "SELECT * FROM public.fn_iu_create($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)",
        &[
            &addr,
            &"Điều 1",
            &"Nội dung",
            &"tester",
            &kind,
            &section,
            &"law",
            &"doc",
            &"v1",
            &None::<&str>,
            &"cs-test",
        ],
    )
}

/// A test database marked as a rehearsal clone (reference V5): the functions' own
/// contracts are tested there, without the gate's recorded approvals.
fn rehearsal_db() -> TestDb {
    let db = TestDb::new();
    cutter_pg::mark_rehearsal_clone(&mut db.admin()).unwrap();
    db
}

/// The per-row fn_iu_create's contract, as its owner (since V5 the writer may not
/// call it).
#[test]
fn fn_iu_create_honours_the_f2_contract() {
    let db = TestDb::new();
    let mut c = db.admin();

    let row = create(&mut c, "doc/dieu-1", Some("article"), "law_unit").unwrap();
    let status: String = row.get("status");
    assert_eq!(status, "created");
    let id: i64 = row.get("information_unit_id");
    let sha: String = row.get("body_sha256");
    assert_eq!(
        sha,
        cutter_core::Sha256Digest::of("Nội dung".as_bytes()).to_hex()
    );

    // References resolve as well as codes, and land in identity_profile.
    create(
        &mut c,
        "doc/dieu-2",
        Some("vocab.section_type.clause"),
        "vocab.unit_kind.law_unit",
    )
    .unwrap();
    let r = c
        .query_one(
            "SELECT unit_kind_ref, identity_profile->>'primary_section_type_ref', lifecycle_status, change_set_id \
             FROM public.information_unit WHERE canonical_address = 'doc/dieu-2'",
            &[],
        )
        .unwrap();
    assert_eq!(r.get::<_, String>(0), "vocab.unit_kind.law_unit");
    assert_eq!(r.get::<_, String>(1), "vocab.section_type.clause");
    assert_eq!(r.get::<_, String>(2), "draft");
    assert_eq!(r.get::<_, String>(3), "cs-test");
    assert!(id > 158);

    let before = db.count("public.information_unit");
    // NULL section_type: rejected, naming the choices.
    let e = create(&mut c, "doc/dieu-3", None, "law_unit").unwrap_err();
    assert_eq!(code(&e), "22004");
    assert!(
        message(&e).ends_with("section_type: Multiple, choose: article, chapter, clause, part, point, preamble, section"),
        "{}",
        message(&e)
    );
    // Unresolvable vocabulary values.
    let e = create(&mut c, "doc/dieu-3", Some("article"), "statute_unit").unwrap_err();
    assert_eq!(code(&e), "23503");
    assert!(message(&e).contains("unit_kind: 'statute_unit' does not resolve in vocab.unit_kind; choose: document_root, law_unit"));
    let e = create(&mut c, "doc/dieu-3", Some("paragraph"), "law_unit").unwrap_err();
    assert_eq!(code(&e), "23503");
    // Duplicate address, naming the existing unit.
    let e = create(&mut c, "doc/dieu-1", Some("article"), "law_unit").unwrap_err();
    assert_eq!(code(&e), "23505");
    assert!(
        message(&e).contains(&format!("already exists as information_unit id {id}")),
        "{}",
        message(&e)
    );
    // Empty address and title.
    let e = create(&mut c, "  ", Some("article"), "law_unit").unwrap_err();
    assert_eq!(code(&e), "23514");
    let e = c
        .query_one(
            "SELECT * FROM public.fn_iu_create('doc/x', '', 'b', 'a', 'law_unit', 'article', 'law', 'doc', 'v1')",
            &[],
        )
        .unwrap_err();
    assert_eq!(code(&e), "23514");
    assert!(message(&e).contains("title: must not be empty"));
    assert_eq!(db.count("public.information_unit"), before);
}

/// (canonical_address, section_type, unit_kind)
type BatchRow<'a> = (&'a str, Option<&'a str>, &'a str);

fn batch(
    c: &mut Client,
    first_row: i64,
    rows: &[BatchRow<'_>],
) -> Result<postgres::Row, postgres::Error> {
    let addr: Vec<&str> = rows.iter().map(|r| r.0).collect();
    let section: Vec<Option<&str>> = rows.iter().map(|r| r.1).collect();
    let kind: Vec<&str> = rows.iter().map(|r| r.2).collect();
    let n = rows.len();
    let title = vec!["Điều"; n];
    let body = vec!["Nội dung"; n];
    let actor = vec!["tester"; n];
    let publication = vec!["law"; n];
    let owner: Vec<Option<&str>> = vec![None; n];
    c.query_one(
        "SELECT * FROM public.fn_iu_create_batch('cs-b', 'doc', 'v1', $1, $2, $3, $4, $5, $6, $7, $8, $9)",
        &[&first_row, &addr, &title, &body, &actor, &kind, &section, &publication, &owner],
    )
}

#[test]
fn fn_iu_create_batch_has_the_same_contract_and_names_the_row() {
    let db = rehearsal_db();
    let mut c = db.exec_config().connect().unwrap();
    let r = batch(
        &mut c,
        1,
        &[
            ("b/1", Some("article"), "law_unit"),
            ("b/2", Some("clause"), "law_unit"),
        ],
    )
    .unwrap();
    assert_eq!(r.get::<_, i64>("created"), 2);
    assert_eq!(r.get::<_, i64>("last_id") - r.get::<_, i64>("first_id"), 1);

    let cases: [(&[BatchRow<'_>], &str, &str); 4] = [
        (
            &[("b/3", Some("article"), "law_unit"), ("b/4", None, "law_unit")],
            "22004",
            "plan row 11 (canonical_address 'b/4'): section_type: Multiple, choose: article, chapter",
        ),
        (
            &[("b/3", Some("article"), "ghost"), ("b/4", Some("article"), "law_unit")],
            "23503",
            "plan row 10 (canonical_address 'b/3'): unit_kind: 'ghost' does not resolve",
        ),
        (
            &[("b/3", Some("article"), "law_unit"), ("b/1", Some("article"), "law_unit")],
            "23505",
            "plan row 11 (canonical_address 'b/1'): canonical_address: already exists as information_unit id",
        ),
        (
            &[("b/3", Some("article"), "law_unit"), ("b/3", Some("article"), "law_unit")],
            "23505",
            "plan row 11 (canonical_address 'b/3'): canonical_address: duplicate inside the plan",
        ),
    ];
    for (rows, state, text) in cases {
        let e = batch(&mut c, 10, rows).unwrap_err();
        assert_eq!(code(&e), state, "{}", message(&e));
        assert!(message(&e).starts_with(text), "{}", message(&e));
        let detail = e
            .as_db_error()
            .and_then(|d| d.detail())
            .unwrap_or_default()
            .to_string();
        assert!(detail.starts_with("plan row 1"), "{detail}");
    }
    assert_eq!(db.count("public.information_unit"), 160);
}

#[test]
fn enacted_rows_are_immutable_draft_rows_are_not() {
    let db = TestDb::new();
    let mut c = db.admin();
    // Owner has every privilege: only the triggers stand in the way.
    let e = c
        .execute(
            "UPDATE public.information_unit SET title = 'x' WHERE id = 1",
            &[],
        )
        .unwrap_err();
    assert_eq!(code(&e), "55000");
    assert!(
        message(&e).contains("trg_iu_enacted_immut"),
        "{}",
        message(&e)
    );
    let e = c
        .execute("DELETE FROM public.information_unit WHERE id = 2", &[])
        .unwrap_err();
    assert_eq!(code(&e), "55000");
    let e = c
        .execute(
            "UPDATE public.unit_version SET body = 'x' WHERE information_unit_id = 3",
            &[],
        )
        .unwrap_err();
    assert_eq!(code(&e), "55000");
    assert!(
        message(&e).contains("trg_uv_enacted_immut"),
        "{}",
        message(&e)
    );
    let e = c
        .execute(
            "DELETE FROM public.unit_version WHERE information_unit_id = 3",
            &[],
        )
        .unwrap_err();
    assert_eq!(code(&e), "55000");
    // Draft rows (ids 61–158) may change.
    assert_eq!(
        c.execute(
            "UPDATE public.information_unit SET title = 'y' WHERE id = 100",
            &[]
        )
        .unwrap(),
        1
    );
    assert_eq!(db.count("public.information_unit"), 158);
}

#[test]
fn fn_iu_enact_enacts_a_draft_once_and_logs_it() {
    let db = rehearsal_db();
    let mut c = db.exec_config().connect().unwrap();
    let r = c
        .query_one("SELECT * FROM public.fn_iu_enact(61, 'tester', 'r1')", &[])
        .unwrap();
    assert_eq!(r.get::<_, String>("status"), "enacted");
    assert_eq!(r.get::<_, i32>("versions_enacted"), 2);
    assert_eq!(db.count("public.iu_lifecycle_log"), 61);
    let e = c
        .query_one("SELECT * FROM public.fn_iu_enact(61, 'tester', 'r1')", &[])
        .unwrap_err();
    assert_eq!(code(&e), "55000");
    assert!(message(&e).contains("is enacted, only draft units can be enacted"));
    let e = c
        .query_one(
            "SELECT * FROM public.fn_iu_enact(99999, 'tester', 'r1')",
            &[],
        )
        .unwrap_err();
    assert_eq!(code(&e), "P0002");
}

#[test]
fn fn_iu_enact_change_set_enacts_a_change_sets_drafts_and_their_versions_once_and_logs_each_unit() {
    // In a rehearsal clone (no approvals needed): the baseline's draft change set holds
    // 98 draft units with 105 draft versions; the enacted ones are untouched.
    let db = rehearsal_db();
    let mut c = db.exec_config().connect().unwrap();
    let mut a = db.admin();
    let enacted_before = scalar_i64(
        &mut a,
        "SELECT count(*) FROM public.information_unit WHERE lifecycle_status = 'enacted'",
    );
    let r = c
        .query_one(
            "SELECT * FROM public.fn_iu_enact_change_set('cs-baseline-2018', 'tester', 'r1')",
            &[],
        )
        .unwrap();
    assert_eq!(r.get::<_, i64>("units_enacted"), 98);
    assert_eq!(r.get::<_, i64>("versions_enacted"), 105);
    assert_eq!(
        scalar_i64(
            &mut a,
            "SELECT count(*) FROM public.information_unit WHERE lifecycle_status = 'enacted'"
        ),
        enacted_before + 98
    );
    assert_eq!(
        scalar_i64(
            &mut a,
            "SELECT count(*) FROM public.iu_lifecycle_log WHERE change_set_id = 'cs-baseline-2018' \
             AND from_status = 'draft' AND to_status = 'enacted' AND reason = 'lifecycle_enact' \
             AND run_id = 'r1' AND actor = 'tester'"
        ),
        98
    );
    assert_eq!(
        scalar_i64(
            &mut a,
            "SELECT count(*) FROM public.unit_version uv JOIN public.information_unit iu \
             ON iu.id = uv.information_unit_id WHERE iu.change_set_id = 'cs-baseline-2018' \
             AND uv.lifecycle_status <> 'enacted'"
        ),
        0
    );
    // Nothing left: a second call enacts nothing and logs nothing.
    let r = c
        .query_one(
            "SELECT * FROM public.fn_iu_enact_change_set('cs-baseline-2018', 'tester', 'r1')",
            &[],
        )
        .unwrap();
    assert_eq!(r.get::<_, i64>("units_enacted"), 0);
    assert_eq!(db.count("public.iu_lifecycle_log"), 60 + 98);
    let e = c
        .query_one(
            "SELECT * FROM public.fn_iu_enact_change_set('cs-baseline-2018', ' ', 'r1')",
            &[],
        )
        .unwrap_err();
    assert_eq!(code(&e), "23514");
}

#[test]
fn the_writer_cannot_enact_a_change_set_without_its_runs_approvals() {
    // Not a rehearsal clone: the run gate judges the set-wise enactment as it judged
    // each unit's, and nothing changes.
    let db = TestDb::new();
    let mut c = db.exec_config().connect().unwrap();
    let e = c
        .query_one(
            "SELECT * FROM public.fn_iu_enact_change_set('cs-baseline-2018', 'mallory', 'baseline-2018')",
            &[],
        )
        .unwrap_err();
    assert_eq!(code(&e), "42501", "{}", message(&e));
    assert!(
        message(&e).contains("no live-run authorization recorded"),
        "{}",
        message(&e)
    );
    let mut a = db.admin();
    assert_eq!(
        scalar_i64(
            &mut a,
            "SELECT count(*) FROM public.information_unit WHERE change_set_id = 'cs-baseline-2018' \
             AND lifecycle_status = 'draft'"
        ),
        98
    );
}

#[test]
fn cutter_exec_writes_only_through_functions_and_ledger_inserts() {
    let db = TestDb::new();
    let mut c = db.exec_config().connect().unwrap();
    for sql in [
        "INSERT INTO public.information_unit (canonical_address, title, unit_kind_ref, identity_profile, publication_type, document_id, source_version_id, created_by) \
         VALUES ('x', 'x', 'vocab.unit_kind.law_unit', '{\"primary_section_type_ref\": \"x\"}', 'law', 'd', 'v', 'a')",
        "UPDATE public.information_unit SET title = 'x' WHERE id = 100",
        "DELETE FROM public.information_unit WHERE id = 100",
        "TRUNCATE public.iu_lifecycle_log",
        "INSERT INTO public.iu_lifecycle_log (information_unit_id, to_status, actor) VALUES (100, 'enacted', 'x')",
        "UPDATE public.unit_version SET body = 'x' WHERE id = 100",
        "INSERT INTO vocab.unit_kind (code, label) VALUES ('x', 'x')",
        "UPDATE cutter_governance.review_decision SET actor = 'x'",
        "DELETE FROM cutter_governance.review_decision",
        "TRUNCATE cutter_governance.review_decision",
        "UPDATE cutter_governance.schema_version SET name = 'x'",
        "CREATE TABLE public.sneaky (id int)",
    ] {
        let e = c.batch_execute(sql).unwrap_err();
        assert_eq!(code(&e), "42501", "{sql}: {}", message(&e));
    }
    // Ledger rows: INSERT (identity ids need no sequence grant) and SELECT; since V5 a
    // pair signature only for a registered approver's live-run statement on this
    // database, and the per-row fn_iu_create not at all.
    c.batch_execute(
        "INSERT INTO cutter_governance.review_decision (run_id, decision, actor) VALUES ('r', 'claim', 'a')",
    )
    .unwrap();
    assert_eq!(db.count("cutter_governance.review_decision"), 1);
    for (sql, why) in [
        (
            "INSERT INTO cutter_governance.dot_pair_signature (run_id, gate, signer_fpr, statement, signature) VALUES ('r', 'SG_1', 'F', 's', 'sig')",
            "the statement is not cutter-approval/2",
        ),
        (
            "SELECT public.fn_iu_create('a', 'b', 'c', 'd', 'law_unit', 'article', 'law', 'doc', 'v1')",
            "permission denied for function fn_iu_create",
        ),
    ] {
        let e = c.batch_execute(sql).unwrap_err();
        assert_eq!(code(&e), "42501", "{sql}: {}", message(&e));
        assert!(message(&e).contains(why), "{sql}: {}", message(&e));
    }
    assert_eq!(db.count("cutter_governance.dot_pair_signature"), 0);
}

#[test]
fn cutter_verify_only_reads() {
    let db = TestDb::new();
    let mut c = db.verify_config().connect().unwrap();
    for t in cutter_core::mutation_surface() {
        c.query(
            &format!("SELECT count(*) FROM {}", cutter_pg::quote_table(&t)),
            &[],
        )
        .unwrap();
    }
    c.query("SELECT code FROM vocab.section_type", &[]).unwrap();
    for sql in [
        "INSERT INTO cutter_governance.review_decision (run_id, decision, actor) VALUES ('r', 'claim', 'a')",
        "SELECT public.fn_iu_create('a', 'b', 'c', 'd', 'law_unit', 'article', 'law', 'doc', 'v1')",
        "SELECT public.fn_iu_enact(61, 'a', 'r')",
        "SELECT public.fn_iu_withdraw('cs-x', 'r', 'a')",
        "UPDATE public.information_unit SET title = 'x' WHERE id = 100",
    ] {
        let e = c.batch_execute(sql).unwrap_err();
        assert_eq!(code(&e), "42501", "{sql}: {}", message(&e));
    }
}

#[test]
fn compensation_a_functions_guard_their_change_set() {
    let db = rehearsal_db();
    let mut c = db.exec_config().connect().unwrap();
    // The baseline's draft change set: 98 draft units, 7 with two versions.
    let n: i64 = c
        .query_one(
            "SELECT public.fn_iu_withdraw('cs-baseline-2018', 'r-revert', 'tester')",
            &[],
        )
        .unwrap()
        .get(0);
    assert_eq!(n, 98);
    assert_eq!(db.count("public.information_unit"), 158);
    assert_eq!(db.count("public.iu_lifecycle_log"), 60 + 98);
    let mut a = db.admin();
    assert_eq!(
        scalar_i64(
            &mut a,
            "SELECT count(*) FROM public.unit_version WHERE lifecycle_status = 'withdrawn'"
        ),
        105
    );
    // Idempotent: nothing left to withdraw.
    let n: i64 = c
        .query_one(
            "SELECT public.fn_iu_withdraw('cs-baseline-2018', 'r-revert', 'tester')",
            &[],
        )
        .unwrap()
        .get(0);
    assert_eq!(n, 0);
    // A withdrawn cut does not hold its addresses.
    create(
        &mut db.admin(),
        "vn-competition-law-2018/dieu-1",
        Some("article"),
        "law_unit",
    )
    .unwrap();
    // The enacted change set is refused, naming its units.
    let e = c
        .query_one(
            "SELECT public.fn_iu_withdraw('cs-baseline-2013', 'r-revert', 'tester')",
            &[],
        )
        .unwrap_err();
    assert_eq!(code(&e), "55000");
    assert!(
        message(&e).contains("60 unit(s) are enacted and immutable"),
        "{}",
        message(&e)
    );
    assert!(
        message(&e).contains("id 1 ('vn-constitution-2013/dieu-1')"),
        "{}",
        message(&e)
    );
    let e = c
        .query_one(
            "SELECT public.fn_iu_hard_delete_draft('cs-baseline-2013', 'r-revert', 'tester')",
            &[],
        )
        .unwrap_err();
    assert_eq!(code(&e), "55000");
    // Hard delete only while every unit is draft.
    let e = c
        .query_one(
            "SELECT public.fn_iu_hard_delete_draft('cs-baseline-2018', 'r-revert', 'tester')",
            &[],
        )
        .unwrap_err();
    assert_eq!(code(&e), "55000");
    assert!(
        message(&e).contains("hard delete needs every unit to be draft"),
        "{}",
        message(&e)
    );
    let n: i64 = c
        .query_one(
            "SELECT public.fn_iu_hard_delete_draft('cs-test', 'r-revert', 'tester')",
            &[],
        )
        .unwrap()
        .get(0);
    assert_eq!(n, 1);
    assert_eq!(db.count("public.information_unit"), 158);
}

#[test]
fn security_definer_functions_pin_search_path_and_execute_is_not_public() {
    let db = TestDb::new();
    let mut c = db.admin();
    let rows = c
        .query(
            "SELECT p.oid::regprocedure::text, p.prosecdef, coalesce(array_to_string(p.proconfig, ','), ''), \
                    has_function_privilege('public', p.oid, 'EXECUTE') \
               FROM pg_proc p JOIN pg_namespace n ON n.oid = p.pronamespace \
              WHERE n.nspname = 'public' AND p.proname LIKE 'fn\\_%'",
            &[],
        )
        .unwrap();
    assert_eq!(
        rows.len(),
        15,
        "V1's eight, V4's hold guard, V5's run gate and hard-delete gate, V6's two amendment functions, V8's hard delete of versions, V9's set-wise enactment"
    );
    for r in rows {
        let name: String = r.get(0);
        let secdef: bool = r.get(1);
        let config: String = r.get(2);
        let public: bool = r.get(3);
        assert!(!public, "{name} executable by PUBLIC");
        if secdef {
            assert_eq!(config, "search_path=pg_catalog, pg_temp", "{name}");
        }
    }
    let secdef: Vec<String> = c
        .query(
            "SELECT p.proname::text FROM pg_proc p WHERE p.prosecdef AND p.pronamespace = 'public'::regnamespace ORDER BY 1",
            &[],
        )
        .unwrap()
        .iter()
        .map(|r| r.get(0))
        .collect();
    assert_eq!(
        secdef,
        [
            "fn_iu_create",
            "fn_iu_create_batch",
            "fn_iu_enact",
            "fn_iu_enact_change_set",
            "fn_iu_hard_delete_draft",
            "fn_iu_withdraw",
            "fn_uv_amend_batch",
            "fn_uv_change_set_status",
            "fn_uv_hard_delete_draft"
        ]
    );
}

#[test]
fn reinstalling_is_refused_and_a_second_install_is_a_no_op() {
    let db = TestDb::new();
    let mut c = db.admin();
    let recorded =
        |c: &mut Client| scalar_i64(c, "SELECT count(*) FROM cutter_governance.schema_version");
    assert_eq!(recorded(&mut c), schema::MIGRATIONS.len() as i64);
    // Installing over an up-to-date reference changes nothing and records nothing.
    assert_eq!(
        schema::install_reference(&mut c).unwrap(),
        schema::REFERENCE_VERSION
    );
    assert_eq!(recorded(&mut c), schema::MIGRATIONS.len() as i64);
    let e = schema::install_baseline(&mut c).unwrap_err();
    assert!(e.to_string().contains("already has 158 rows"), "{e}");
    // A database with the tables but no recorded version is not overwritten.
    c.batch_execute("DROP TABLE cutter_governance.schema_version")
        .unwrap();
    let e = schema::install_reference(&mut c).unwrap_err();
    assert!(
        e.to_string().contains("refusing to install over them"),
        "{e}"
    );
}

#[test]
fn the_reference_installs_into_an_empty_database() {
    let db = TestDb::empty();
    let mut c = db.admin();
    assert_eq!(schema::installed_version(&mut c).unwrap(), None);
    assert_eq!(
        schema::install_reference(&mut c).unwrap(),
        schema::REFERENCE_VERSION
    );
    assert_eq!(
        schema::installed_version(&mut c).unwrap(),
        Some(schema::REFERENCE_VERSION)
    );
    schema::install_baseline(&mut c).unwrap();
    assert_eq!(db.count("public.information_unit"), 158);
    let mut t = db.target();
    let report = t.preflight().unwrap();
    assert!(report.is_ok(), "{report}");
    assert_eq!(t.vocabularies().unwrap(), schema::reference_vocabularies());
    assert_eq!(fixtures::vocabularies(), schema::reference_vocabularies());
}

/// The V2 objects preflight names when they are missing.
const V2_CHAIN_INDEXES: [&str; 6] = [
    "cut_change_set_chain",
    "cut_change_set_affected_row_chain",
    "manifest_envelope_chain",
    "review_decision_chain",
    "verify_result_chain",
    "dot_pair_signature_chain",
];
const LEDGER_TABLES: [&str; 6] = [
    "cut_change_set",
    "cut_change_set_affected_row",
    "manifest_envelope",
    "review_decision",
    "verify_result",
    "dot_pair_signature",
];

/// A target still at V1 (only `MIGRATIONS[0]` installed, by hand, as an older cutter
/// left it): preflight names every missing V2 object and the version, and
/// `install_reference` upgrades it to the reference (V2, V3), after which preflight is clean.
#[test]
fn a_target_at_v1_is_named_by_preflight_and_upgraded_to_the_reference() {
    assert!(schema::MIGRATIONS.len() >= 2, "the reference has a V2");
    let v1 = &schema::MIGRATIONS[0];
    assert_eq!(v1.version, 1);
    let db = TestDb::empty();
    {
        let mut c = db.admin();
        let mut tx = c.transaction().unwrap();
        tx.batch_execute(v1.sql).unwrap();
        tx.execute(
            "INSERT INTO cutter_governance.schema_version (version, name, sha256) VALUES ($1, $2, $3)",
            &[
                &v1.version,
                &v1.name,
                &cutter_core::Sha256Digest::of(v1.sql.as_bytes()).to_hex(),
            ],
        )
        .unwrap();
        tx.commit().unwrap();
        schema::install_baseline(&mut c).unwrap();
        assert_eq!(schema::installed_version(&mut c).unwrap(), Some(1));
    }

    // Preflight as every role names the same differences.
    for config in [db.exec_config(), db.verify_config(), db.admin_config()] {
        let mut t = cutter_pg::Target::connect(&config).unwrap();
        let report = t.preflight().unwrap();
        assert_eq!(report.schema_version, Some(1));
        let text = report.to_string();
        let mut needles = vec![format!(
            "cutter_governance.schema_version: version 1, reference {}",
            schema::REFERENCE_VERSION
        )];
        for (index, table) in V2_CHAIN_INDEXES.iter().zip(LEDGER_TABLES) {
            needles.push(format!(
                "index cutter_governance.{index} on cutter_governance.{table}: missing (unique index of the ledger, reference V2)"
            ));
            needles.push(format!(
                "trigger trg_ledger_append_only on cutter_governance.{table}: missing"
            ));
            needles.push(format!(
                "privilege USAGE on sequence cutter_governance.{table}_id_seq for cutter_exec: missing"
            ));
        }
        for index in [
            "manifest_envelope_change_set",
            "verify_result_change_set",
            "dot_pair_signature_run_gate",
            "review_decision_run",
            "review_decision_change_set",
            "review_decision_claim_key",
        ] {
            needles.push(format!("index cutter_governance.{index} on "));
        }
        needles.push("function cutter_governance.fn_ledger_append_only(): missing".into());
        // And V3's.
        needles.push("column cutter_governance.schema_version.applied_by: missing".into());
        needles.push("table cutter_governance.ledger_anchor: missing".into());
        needles.push(
            "function cutter_governance.fn_ledger_legacy_digest(text,bigint): missing (reference V3)"
                .into(),
        );
        // And V4's.
        needles.push(
            "function cutter_governance.fn_unresolved_holds() / public.fn_trg_hold_guard(): missing (reference V4)"
                .into(),
        );
        for (trigger, table) in schema::HOLD_GUARD_TRIGGERS {
            needles.push(format!(
                "trigger {trigger} on {table}: missing (reference V4)"
            ));
        }
        needles.push(
            "index cutter_governance.review_decision_hold on cutter_governance.review_decision: missing"
                .into(),
        );
        // And V6's: the amendment columns, functions and the current-text view.
        for col in ["change_set_id", "title", "source_version_id", "repeal"] {
            needles.push(format!("column public.unit_version.{col}: missing"));
        }
        for (name, signature) in schema::FUNCTIONS {
            if name.starts_with("fn_uv_") {
                needles.push(format!("function {signature}: missing"));
            }
        }
        needles.push("view public.unit_current_text: missing (reference V6)".into());
        // And V9's set-wise enactment.
        needles.push("function public.fn_iu_enact_change_set(text,text,text): missing".into());
        // And V5's: the registry, the rehearsal mark, the gate's triggers on the tables
        // V1 has, and fn_iu_create no longer the writer's.
        needles.push("table cutter_governance.approver: missing".into());
        needles.push("table cutter_governance.rehearsal_clone: missing".into());
        for (trigger, table, _) in schema::GATE_TRIGGERS {
            if table != "cutter_governance.approver" {
                needles.push(format!(
                    "trigger {trigger} on {table}: missing (reference V5)"
                ));
            }
        }
        needles.push(
            "privilege EXECUTE on fn_iu_create for cutter_exec: granted, the reference does not grant it"
                .into(),
        );
        // And V7's: the backup watermark on every table that grows, the DDL audit.
        for (schema, table, class) in cutter_core::SURFACE_CLASSES {
            if class.watermarked() {
                needles.push(format!(
                    "column {schema}.{table}.cutter_xid: missing (reference: xid8)"
                ));
            }
        }
        needles.push("table cutter_governance.surface_ddl_audit: missing".into());
        for needle in &needles {
            assert!(text.contains(needle.as_str()), "{needle} not in\n{text}");
        }
        // Nothing else differs: V1 itself conforms.
        assert_eq!(report.findings.len(), needles.len(), "{text}");
    }

    // Upgrading installs V2 only, and records it.
    let mut c = db.admin();
    assert_eq!(
        schema::install_reference(&mut c).unwrap(),
        schema::REFERENCE_VERSION
    );
    let versions: Vec<i32> = c
        .query(
            "SELECT version FROM cutter_governance.schema_version ORDER BY version",
            &[],
        )
        .unwrap()
        .iter()
        .map(|r| r.get(0))
        .collect();
    assert_eq!(
        versions,
        schema::MIGRATIONS
            .iter()
            .map(|m| m.version)
            .collect::<Vec<_>>()
    );
    assert_eq!(db.count("public.information_unit"), BASELINE_UNITS as i64);
    for config in [db.exec_config(), db.verify_config(), db.admin_config()] {
        let report = cutter_pg::Target::connect(&config)
            .unwrap()
            .preflight()
            .unwrap();
        assert!(report.is_ok(), "{report}");
        assert_eq!(report.schema_version, Some(schema::REFERENCE_VERSION));
    }
}

/// A V2 object broken after install is named: a dropped chain index, a disabled append
/// trigger, a revoked sequence grant.
#[test]
fn preflight_names_a_broken_v2_object() {
    let db = TestDb::new();
    db.admin()
        .batch_execute(
            "DROP INDEX cutter_governance.review_decision_chain; \
             ALTER TABLE cutter_governance.verify_result DISABLE TRIGGER trg_ledger_append_only; \
             REVOKE USAGE ON SEQUENCE cutter_governance.manifest_envelope_id_seq FROM cutter_exec",
        )
        .unwrap();
    let report = db.target().preflight().unwrap();
    let text = report.to_string();
    for needle in [
        "index cutter_governance.review_decision_chain on cutter_governance.review_decision: missing (unique index of the ledger, reference V2)",
        "trigger trg_ledger_append_only on cutter_governance.verify_result: tgenabled = 'D', reference 'O' (enabled)",
        "privilege USAGE on sequence cutter_governance.manifest_envelope_id_seq for cutter_exec: missing",
    ] {
        assert!(text.contains(needle), "{needle} not in\n{text}");
    }
    assert_eq!(report.findings.len(), 3, "{text}");
}

/// The backup's principal: cutter_verify can pg_dump the whole mutation surface
/// (tables and the state of their identity sequences), and can advance nothing.
#[test]
fn cutter_verify_can_pg_dump_the_mutation_surface() {
    let db = TestDb::new();
    let config = db.verify_config();
    let env = config.child_env().unwrap();
    let mut cmd = std::process::Command::new(cutter_pg::pg_program("pg_dump").unwrap());
    for t in cutter_core::mutation_surface() {
        cmd.arg(format!("--table={}", cutter_pg::quote_table(&t)));
    }
    cmd.args(["--no-owner", "--no-privileges"]);
    env.apply(&mut cmd);
    let out = cmd.output().unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let dump = String::from_utf8_lossy(&out.stdout);
    assert!(
        dump.contains("COPY public.information_unit"),
        "no data in dump"
    );
    assert!(dump.contains("setval('public.information_unit_id_seq', 158, true)"));
    let mut c = config.connect().unwrap();
    let e = c
        .query_one("SELECT nextval('public.information_unit_id_seq')", &[])
        .unwrap_err();
    assert_eq!(code(&e), "42501");
}

/// A trigger with the right name and state that runs some other function (here one
/// that lets every change through), and a vocabulary missing a reference code, are each
/// named by preflight; the phase guard refuses the hollow trigger too.
#[test]
fn preflight_names_a_hollow_trigger_and_a_missing_vocabulary_code() {
    let db = TestDb::new();
    db.admin()
        .batch_execute(
            "CREATE FUNCTION public.fn_let_through() RETURNS trigger LANGUAGE plpgsql AS \
               $$BEGIN RETURN CASE WHEN TG_OP = 'DELETE' THEN OLD ELSE NEW END; END$$; \
             DROP TRIGGER trg_iu_enacted_immut ON public.information_unit; \
             CREATE TRIGGER trg_iu_enacted_immut BEFORE UPDATE OR DELETE ON public.information_unit \
               FOR EACH ROW EXECUTE FUNCTION public.fn_let_through(); \
             DELETE FROM vocab.section_type WHERE code = 'point'",
        )
        .unwrap();
    let report = db.target().preflight().unwrap();
    let text = report.to_string();
    for needle in [
        "trigger trg_iu_enacted_immut on public.information_unit: executes fn_let_through(), reference public.fn_trg_enacted_immut()",
        "vocabulary vocab.section_type: lacks the reference code(s) point",
    ] {
        assert!(text.contains(needle), "{needle} not in\n{text}");
    }
    let plan = cutter_pg::fixtures::scale_plan("hollow-doc", 1).unwrap();
    let auth = db.authorization("r-hollow", plan.digest());
    let e = db
        .target()
        .cut_leg_a(&auth, &plan, &mut |_| {})
        .unwrap_err();
    assert!(
        e.to_string().contains("trg_iu_enacted_immut") && e.to_string().contains("fn_let_through"),
        "{e}"
    );
    assert_eq!(db.count("public.information_unit"), 158);
}
