//! Deterministic cut plans for tests, the rollback-only proof and the benchmark: the
//! scale generator (N units, bodies of about 1.5 KB of Vietnamese legal text), a
//! one-row plan, and rows with hostile text. Same input, same rows, on every machine.

use cutter_core::{
    ContractReport, CutPlan, CutPlanRow, DocumentId, SourceVersionId, ValidPlan, Vocabularies,
};

use crate::stream::StreamedPlan;

/// Sentences of the 2013 Constitution of Viet Nam (articles 14–20), the material bodies
/// are built from.
const SENTENCES: [&str; 16] = [
    "Ở nước Cộng hòa xã hội chủ nghĩa Việt Nam, các quyền con người, quyền công dân về chính trị, dân sự, kinh tế, văn hóa, xã hội được công nhận, tôn trọng, bảo vệ, bảo đảm theo Hiến pháp và pháp luật.",
    "Quyền con người, quyền công dân chỉ có thể bị hạn chế theo quy định của luật trong trường hợp cần thiết vì lý do quốc phòng, an ninh quốc gia, trật tự, an toàn xã hội, đạo đức xã hội, sức khỏe của cộng đồng.",
    "Quyền công dân không tách rời nghĩa vụ công dân.",
    "Mọi người có nghĩa vụ tôn trọng quyền của người khác.",
    "Công dân có trách nhiệm thực hiện nghĩa vụ đối với Nhà nước và xã hội.",
    "Việc thực hiện quyền con người, quyền công dân không được xâm phạm lợi ích quốc gia, dân tộc, quyền và lợi ích hợp pháp của người khác.",
    "Mọi người đều bình đẳng trước pháp luật.",
    "Không ai bị phân biệt đối xử trong đời sống chính trị, dân sự, kinh tế, văn hóa, xã hội.",
    "Công dân nước Cộng hòa xã hội chủ nghĩa Việt Nam là người có quốc tịch Việt Nam.",
    "Công dân Việt Nam không thể bị trục xuất, giao nộp cho nhà nước khác.",
    "Công dân Việt Nam ở nước ngoài được Nhà nước Cộng hòa xã hội chủ nghĩa Việt Nam bảo hộ.",
    "Người Việt Nam định cư ở nước ngoài là bộ phận không tách rời của cộng đồng dân tộc Việt Nam.",
    "Nhà nước Cộng hòa xã hội chủ nghĩa Việt Nam khuyến khích và tạo điều kiện để người Việt Nam định cư ở nước ngoài giữ gìn và phát huy bản sắc văn hóa dân tộc Việt Nam, giữ quan hệ gắn bó với gia đình và quê hương, góp phần xây dựng quê hương, đất nước.",
    "Mọi người có quyền sống. Tính mạng con người được pháp luật bảo hộ. Không ai bị tước đoạt tính mạng trái luật.",
    "Mọi người có quyền bất khả xâm phạm về thân thể, được pháp luật bảo hộ về sức khoẻ, danh dự và nhân phẩm; không bị tra tấn, bạo lực, truy bức, nhục hình hay bất kỳ hình thức đối xử nào khác xâm phạm thân thể, sức khỏe, xúc phạm danh dự, nhân phẩm.",
    "Không ai bị bắt nếu không có quyết định hoặc phê chuẩn của Viện kiểm sát nhân dân, trừ trường hợp phạm tội quả tang.",
];

/// Target body size in bytes.
pub const BODY_BYTES: usize = 1500;

/// The codes of the reference vocabularies ([`crate::schema::reference_vocabularies`]).
pub fn vocabularies() -> Vocabularies {
    crate::schema::reference_vocabularies()
}

/// Row `i` (1-based) of the scale plan of document `doc`: address `<doc>/dieu-<i>`,
/// title `Điều <i>`, a body of at least [`BODY_BYTES`] bytes.
pub fn row(doc: &str, i: u64) -> CutPlanRow {
    let mut body = format!("Điều {i}.");
    let mut x = i.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
    while body.len() < BODY_BYTES {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        body.push(' ');
        body.push_str(SENTENCES[(x % SENTENCES.len() as u64) as usize]);
    }
    CutPlanRow {
        canonical_address: format!("{doc}/dieu-{i}"),
        title: format!("Điều {i}"),
        body,
        actor: "cutter-fixture".into(),
        unit_kind: "law_unit".into(),
        section_type: Some(
            if i.is_multiple_of(5) {
                "clause"
            } else {
                "article"
            }
            .into(),
        ),
        publication_type: "law".into(),
        owner_ref: i.is_multiple_of(3).then(|| "quoc-hoi".to_string()),
    }
}

/// The rows `1..=n` of the scale plan of `doc`, generated on the fly.
#[derive(Clone, Debug)]
pub struct ScaleRows {
    doc: String,
    next: u64,
    last: u64,
}

impl Iterator for ScaleRows {
    type Item = CutPlanRow;
    fn next(&mut self) -> Option<CutPlanRow> {
        (self.next <= self.last).then(|| {
            self.next += 1;
            row(&self.doc, self.next - 1)
        })
    }
    fn size_hint(&self) -> (usize, Option<usize>) {
        let n = usize::try_from(self.last + 1 - self.next).unwrap_or(usize::MAX);
        (n, Some(n))
    }
}

/// The amendment fixture over the scale rows `base` of document `doc` (at least 15):
/// articles 2–9 reworded, article 15 removed, a new article `dieu-21a` added — the
/// shape of the 2025 amendment of the Constitution.
pub fn amended_rows(doc: &str, base: &[CutPlanRow]) -> Vec<CutPlanRow> {
    let mut v: Vec<CutPlanRow> = base.to_vec();
    for r in &mut v[1..9] {
        r.body = format!("{} (sửa đổi, bổ sung năm 2025)", r.body);
    }
    v.remove(14);
    let mut new = v[0].clone();
    new.canonical_address = format!("{doc}/dieu-21a");
    new.title = "Điều 21a".into();
    new.body = "Điều mới được bổ sung.".into();
    v.push(new);
    v
}

/// The scale rows of `doc`.
pub fn scale_rows(doc: &str, n: u64) -> ScaleRows {
    ScaleRows {
        doc: doc.into(),
        next: 1,
        last: n,
    }
}

fn ids(doc: &str) -> (DocumentId, SourceVersionId) {
    let d = DocumentId::new(doc).unwrap_or_else(|_| DocumentId::new("fixture").expect("valid id"));
    let v = SourceVersionId::new("v1").expect("valid id");
    (d, v)
}

/// The scale plan of `n` rows in memory, validated against the reference vocabularies.
/// `doc` must be a valid document id.
pub fn scale_plan(doc: &str, n: u64) -> Result<ValidPlan, ContractReport> {
    let (d, v) = ids(doc);
    CutPlan::new(d, v, scale_rows(doc, n).collect()).validate(&vocabularies())
}

/// The scale plan of `n` rows, streamed: constant memory whatever `n`.
pub fn scale_streamed(
    doc: &str,
    n: u64,
) -> Result<StreamedPlan<impl Fn() -> ScaleRows>, ContractReport> {
    let (d, v) = ids(doc);
    let doc = doc.to_string();
    StreamedPlan::validate(d, v, &vocabularies(), None, move || scale_rows(&doc, n))
}

/// A one-row plan (the seeds' 158 → 159 proof).
pub fn one_row_plan(doc: &str) -> Result<ValidPlan, ContractReport> {
    scale_plan(doc, 1)
}

/// A canonical address and a title with quotes, semicolons, `$$` and backslashes.
pub const HOSTILE_ADDRESS: &str = "doc/it's \"quoted\"; DROP TABLE x; --$$ $fn$ \\n";
/// A hostile title.
pub const HOSTILE_TITLE: &str = "Điều 1'); DELETE FROM public.information_unit; -- $$;$q$\\";

/// A row whose address, title and body are hostile text: quoting, SQL, dollar quotes,
/// backslashes, escape syntax, tab and newline (bidirectional and other controls are
/// refused by the row contract, so a plan never carries them).
pub fn hostile_row() -> CutPlanRow {
    CutPlanRow {
        canonical_address: HOSTILE_ADDRESS.into(),
        title: HOSTILE_TITLE.into(),
        body: "Body with 'quotes', \"double\", ; semicolons; $$dollar$$ $body$ \\backslash\\ \
               E'\\x41' \\u202E \\N \\. and tab\tand newline\n"
            .into(),
        actor: "cutter's \"actor\"; $$".into(),
        unit_kind: "law_unit".into(),
        section_type: Some("article".into()),
        publication_type: "law".into(),
        owner_ref: Some("owner'; --".into()),
    }
}

/// The earlier tool's production database (`sql/fixtures/legacy_production.sql`): the
/// seeds' tables, functions, triggers and roles with the 158/165/60 baseline, governance
/// tables without hash chains holding 1,048 rows, no `schema_version`.
pub const LEGACY_PRODUCTION_SQL: &str = include_str!("../sql/fixtures/legacy_production.sql");

/// Rows the legacy fixture writes to the ledger tables, per table.
pub const LEGACY_LEDGER_ROWS: [(&str, i64); 6] = [
    ("cut_change_set", 12),
    ("cut_change_set_affected_row", 940),
    ("manifest_envelope", 12),
    ("review_decision", 48),
    ("verify_result", 12),
    ("dot_pair_signature", 24),
];

/// Installs the earlier tool's production shape into an empty database, as the owner:
/// V1's text and the baseline, turned into that shape and filled, in one transaction.
/// This is a fixture for adoption tests and benchmarks, never a way to install cutter.
pub fn install_legacy(c: &mut postgres::Client) -> crate::Result<()> {
    use crate::error::PgContext;
    let mut tx = c.transaction().doing("BEGIN")?;
    let empty: bool = tx
        .query_one(
            "SELECT to_regclass('public.information_unit') IS NULL \
                AND to_regnamespace('cutter_governance') IS NULL",
            &[],
        )
        .doing("looking for an existing schema")?
        .get(0);
    if !empty {
        return Err(crate::Error::Install {
            what: "legacy production fixture".into(),
            reason: "the database is not empty".into(),
        });
    }
    for (what, sql) in [
        ("V1__reference.sql", crate::schema::MIGRATIONS[0].sql),
        ("V1__baseline.sql", crate::schema::BASELINE_SQL),
        ("legacy_production.sql", LEGACY_PRODUCTION_SQL),
    ] {
        tx.batch_execute(sql).map_err(|e| crate::Error::Install {
            what: format!("legacy production fixture ({what})"),
            reason: crate::ServerError::from_pg(&e).to_string(),
        })?;
    }
    tx.commit().doing("COMMIT of the legacy production fixture")
}
