//! Headings as published laws write them, written by hand or derived from the corpus:
//! `Điều 5 Chính sách …` (a space and a capital letter, no period) when it stands as a
//! heading; cross-references, links and tables of contents that never become articles;
//! single-article documents.

mod common;

use common::*;
use cutter_doc::{cut, CutOutcome, Error, InputFormat, Placement, Structure};

fn cut_page(id: &str, page: &str) -> CutOutcome {
    cut(page.as_bytes(), &options(id, InputFormat::Auto)).unwrap_or_else(|e| panic!("{e}"))
}

/// How a rewritten article heading is set.
#[derive(Debug, Clone, Copy)]
enum Form {
    /// Inside `<a name="dieu_N">` and bold, as the 2006 law writes them.
    AnchorBold,
    /// Inside `<a name="dieu_N">`, not bold.
    Anchor,
    /// Bold, no anchor.
    Bold,
    /// A heading element.
    HeadingElement,
    /// A plain paragraph: not a heading, only text.
    Plain,
}

const TITLES: [&str; 7] = [
    "Chính sách của Nhà nước",
    "Quyền bầu cử và ứng cử",
    "Bảo vệ Tổ quốc",
    "Nhiệm vụ của Quốc hội",
    "Quyền hạn của Chủ tịch nước",
    "Tổ chức chính quyền địa phương",
    "Hiệu lực của Hiến pháp",
];

/// The constitution page with the Vietnamese heading of article `n` (`Điều n.`, bold in
/// its anchor) rewritten as `Điều n <title>`, set as `form` says.
fn rewrite_heading(page: &str, n: u32, title: &str, form: Form) -> String {
    let head = format!(">Điều {n}.</span></strong></a>");
    let end = page.find(&head).expect("heading") + head.len();
    let start = page[..end]
        .rfind(&format!("<a name=\"dieu_{n}\">"))
        .expect("anchor");
    let text = format!("Điều {n} {title}");
    let markup = match form {
        Form::AnchorBold => {
            format!("<a name=\"dieu_{n}\"><strong><span>{text}</span></strong></a>")
        }
        Form::Anchor => format!("<a name=\"dieu_{n}\"><span style='color:black'>{text}</span></a>"),
        Form::Bold => format!("<b>{text}</b>"),
        Form::HeadingElement => format!("</p><h3>{text}</h3><p>"),
        Form::Plain => format!("<span style='color:black'>{text}</span>"),
    };
    format!("{}{markup}{}", &page[..start], &page[end..])
}

/// Seven article numbers whose headings have the constitution's usual markup.
fn rewritable(page: &str) -> Vec<u32> {
    (2..=120)
        .filter(|n| page.contains(&format!(">Điều {n}.</span></strong></a>")))
        .step_by(15)
        .take(7)
        .collect()
}

fn constitution() -> String {
    String::from_utf8(read_corpus("vn/constitution-2013.html")).expect("utf-8")
}

#[test]
fn a_law_whose_headings_lack_the_period_cuts_to_all_its_articles() {
    let page = constitution();
    let numbers = rewritable(&page);
    assert_eq!(numbers.len(), 7, "{numbers:?}");
    let forms = [
        Form::AnchorBold,
        Form::Anchor,
        Form::Bold,
        Form::HeadingElement,
        Form::AnchorBold,
        Form::Anchor,
        Form::Bold,
    ];
    let mut law = page.clone();
    for ((n, title), form) in numbers.iter().zip(TITLES).zip(forms) {
        law = rewrite_heading(&law, *n, title, form);
    }
    let original = cut_page("vn-constitution-2013", &page);
    let o = cut_page("vn-constitution-2013", &law);
    let r = &o.report;
    assert_eq!(r.counts.articles, 120);
    assert!(r.missing_articles.is_empty(), "{:?}", r.missing_articles);
    assert!(r.notes.is_empty(), "{:?}", r.notes);
    assert_accounting(&o);
    // Exactly the original's units: only the rewritten heading lines differ.
    assert_eq!(o.plan.rows.len(), original.plan.rows.len());
    for (got, want) in o.plan.rows.iter().zip(&original.plan.rows) {
        assert_eq!(got.canonical_address, want.canonical_address);
        let k = numbers
            .iter()
            .position(|n| want.canonical_address.ends_with(&format!("/dieu-{n}")));
        match k {
            Some(k) => {
                let n = numbers[k];
                assert_eq!(got.title, format!("Điều {n}. {}", TITLES[k]));
                let (first, rest) = got.body.split_once('\n').unwrap_or((&got.body, ""));
                assert_eq!(first, format!("Điều {n} {}", TITLES[k]));
                let want_rest = want.body.split_once('\n').map_or("", |(_, r)| r);
                assert_eq!(rest, want_rest, "{}", want.canonical_address);
            }
            None => assert_eq!(
                (&got.title, &got.body),
                (&want.title, &want.body),
                "{}",
                want.canonical_address
            ),
        }
    }
    insta::assert_snapshot!("report_headings_without_period", r.to_string());
}

#[test]
fn a_heading_without_period_that_does_not_stand_as_one_is_text_and_noted() {
    let page = constitution();
    let n = rewritable(&page)[0];
    let law = rewrite_heading(&page, n, TITLES[0], Form::Plain);
    let o = cut_page("vn-constitution-2013", &law);
    let r = &o.report;
    assert_eq!(r.missing_articles, [n]);
    assert!(
        r.notes.iter().any(|note| note.contains(&format!(
            "opens like the heading of Điều {n} (\"Điều {n} {}\") but does not stand as one",
            TITLES[0]
        ))),
        "{:?}",
        r.notes
    );
    let f = o.plan.findings.as_ref().unwrap();
    assert_eq!(f.missing_article_numbers, [n]);
}

/// The negative test: a table of contents (as links, and as plain paragraphs) and
/// cross-references opening paragraphs or inside running text never become articles,
/// chapters, sections, clauses or points.
#[test]
fn cross_references_and_tables_of_contents_do_not_become_articles() {
    let page = "<html><body><div id=law>\
        <p>QUỐC HỘI</p><p>CỘNG HÒA XÃ HỘI CHỦ NGHĨA VIỆT NAM</p><p>LUẬT THỬ NGHIỆM</p>\
        <p><b>MỤC LỤC</b></p>\
        <p><a href='#chuong_1'>Chương I. NHỮNG QUY ĐỊNH CHUNG</a></p>\
        <p><a href='#dieu_1'>Điều 1. Phạm vi điều chỉnh</a></p>\
        <p><a href='#dieu_2'>Điều 2 Đối tượng áp dụng</a></p>\
        <p><a href='#chuong_2'>Chương II. QUYỀN</a></p>\
        <p><a href='#dieu_3'>Điều 3. Quyền</a></p>\
        <p>Chương I</p><p>NHỮNG QUY ĐỊNH CHUNG</p>\
        <p>Điều 1. Phạm vi điều chỉnh</p><p>Điều 2. Đối tượng áp dụng</p>\
        <p>Chương II</p><p>QUYỀN</p><p>Điều 3. Quyền</p>\
        <p><a name='chuong_1'></a><b>Chương I</b></p><p><b>NHỮNG QUY ĐỊNH CHUNG</b></p>\
        <p><a name='dieu_1'></a><b>Điều 1. Phạm vi điều chỉnh</b></p>\
        <p>Luật này quy định việc thử nghiệm theo Điều 5 Luật Ban hành văn bản quy phạm pháp luật.</p>\
        <p><a name='dieu_2'><b>Điều 2 Đối tượng áp dụng</b></a></p>\
        <p>1. Cơ quan nhà nước, theo khoản 2 Điều 7 Luật này.</p>\
        <p>Điều 3 Luật Doanh nghiệp được sửa đổi như sau:</p>\
        <p>Điều 9 Luật này không áp dụng cho tổ chức nước ngoài.</p>\
        <p><a href='#dieu_2'>2. Xem khoản 2</a></p>\
        <p><a href='#dieu_3'>a) điểm dẫn chiếu</a></p>\
        <p>Chương 2 của Luật này quy định quyền.</p>\
        <p>Mục 2 Luật Đất đai được áp dụng.</p>\
        <p><b>Chương II</b></p><p><b>QUYỀN</b></p>\
        <p><b>Điều 3. Quyền</b></p><p>Nội dung của quyền.</p>\
        <p>Luật này đã được Quốc hội thông qua ngày 1 tháng 1 năm 2020.</p><p>CHỦ TỊCH QUỐC HỘI</p>\
        </div></body></html>";
    let o = cut_page("luat-thu", page);
    let r = &o.report;
    assert_eq!(r.article_numbers, ["1", "2", "3"]);
    assert_eq!(r.counts.chapters, 2, "{:?}", r.headings);
    assert_eq!(
        (r.counts.sections, r.counts.clauses, r.counts.points),
        (0, 1, 0)
    );
    let addrs = addresses(&o);
    assert_eq!(
        addrs,
        [
            "luat-thu/loi-noi-dau",
            "luat-thu/chuong-1/dieu-1",
            "luat-thu/chuong-1/dieu-2",
            "luat-thu/chuong-1/dieu-2/khoan-1",
            "luat-thu/chuong-2/dieu-3",
        ]
    );
    // The cross-references stay in the clause they belong to.
    assert_eq!(
        o.plan.rows[3].body,
        "1. Cơ quan nhà nước, theo khoản 2 Điều 7 Luật này.\n\
         Điều 3 Luật Doanh nghiệp được sửa đổi như sau:\n\
         Điều 9 Luật này không áp dụng cho tổ chức nước ngoài.\n\
         2. Xem khoản 2\na) điểm dẫn chiếu\n\
         Chương 2 của Luật này quy định quyền.\nMục 2 Luật Đất đai được áp dụng."
    );
    // Both tables of contents (paragraphs 5–9 as links, 10–16 not) are listed as legal
    // text in no unit, and are a finding.
    let tocs: Vec<(usize, usize, usize)> = r
        .unassigned
        .iter()
        .filter(|s| s.location.starts_with("table of contents"))
        .map(|s| (s.first_paragraph, s.paragraphs, s.article_headings))
        .collect();
    assert_eq!(tocs, [(4, 12, 3)]);
    let f = o.plan.findings.as_ref().unwrap();
    assert_eq!(f.text_in_no_unit.len(), 1);
    assert!(f.missing_article_numbers.is_empty());
    // "Điều 3 Luật …" opens like the next article's heading: noted, not cut.
    assert!(
        r.notes
            .iter()
            .any(|n| n.contains("opens like the heading of Điều 3")),
        "{:?}",
        r.notes
    );
    assert_accounting(&o);
    o.plan.validate(&vocab()).expect("valid");
}

#[test]
fn chapters_and_sections_as_published() {
    let page = "<html><body><div>\
        <p>CỘNG HÒA XÃ HỘI CHỦ NGHĨA VIỆT NAM</p><p>LUẬT X</p>\
        <p><b>Chương 1 Những quy định chung</b></p>\
        <h4>Mục 1 Phạm vi</h4>\
        <p><b>Điều 1. Phạm vi</b></p><p>Một.</p>\
        <p><a name='muc_2'></a>Mục 2 Đối tượng</p>\
        <p><b>Điều 2. Đối tượng</b></p><p>Hai.</p>\
        <p><a name='chuong_2'>Chương 2 Quyền và nghĩa vụ</a></p>\
        <p><b>Điều 3. Quyền</b></p><p>Ba.</p>\
        <p>Chương 3 Quyền được quy định tại Luật khác.</p>\
        </div></body></html>";
    let o = cut_page("luat-x", page);
    let heads: Vec<(&str, Option<&str>)> = o
        .report
        .headings
        .iter()
        .map(|h| (h.path.as_str(), h.title.as_deref()))
        .collect();
    assert_eq!(
        heads,
        [
            ("chuong-1", Some("Những quy định chung")),
            ("chuong-1/muc-1", Some("Phạm vi")),
            ("chuong-1/muc-2", Some("Đối tượng")),
            ("chuong-2", Some("Quyền và nghĩa vụ")),
        ]
    );
    let last = o.plan.rows.last().unwrap();
    assert_eq!(last.canonical_address, "luat-x/chuong-2/dieu-3");
    assert_eq!(
        last.body,
        "Điều 3. Quyền\nBa.\nChương 3 Quyền được quy định tại Luật khác."
    );
}

#[test]
fn single_article_documents_are_cut_into_one_article() {
    // A UDHR page holding only Article 1 (marked up).
    let page = String::from_utf8(read_corpus("udhr/eng.html")).unwrap();
    let first_end = page.find("</article>").unwrap() + "</article>".len();
    let last_end = page.rfind("</article>").unwrap() + "</article>".len();
    let single = format!("{}{}", &page[..first_end], &page[last_end..]);
    let o = cut_page("udhr-eng-1", &single);
    assert_eq!(o.report.input.structure, Structure::MarkedUpArticles);
    let addrs = addresses(&o);
    assert_eq!(addrs, ["udhr-eng-1/preamble", "udhr-eng-1/article-1"]);
    assert!(o.plan.rows[1]
        .body
        .starts_with("Article 1\nAll human beings are born free"));
    assert_accounting(&o);

    // Without any language keyword: an article in a script the cutter has no words for.
    let o = cut_page(
        "mn",
        "<html><body><h1>Хүний эрхийн түгээмэл тунхаглал</h1>\
         <article><h2>1 дүгээр зүйл</h2><p>Хүн бүр төрөхөөсөө эрх чөлөөтэй.</p></article></body></html>",
    );
    assert_eq!(o.report.counts.articles, 1);
    assert_eq!(o.plan.rows[1].canonical_address, "mn/article-1");

    // A Vietnamese decision with one article, in plain text and wrapped in <article>.
    let text = "ỦY BAN NHÂN DÂN\nQUYẾT ĐỊNH\nĐiều 1. Phê duyệt kế hoạch.\nNơi nhận:\n- Như Điều 1;";
    let o = cut_page("qd", text);
    assert_eq!(o.report.article_numbers, ["1"]);
    let wrapped = format!(
        "<html><body><article><h1>QUYẾT ĐỊNH</h1>{}</article></body></html>",
        text.lines()
            .map(|l| format!("<p>{l}</p>"))
            .collect::<String>()
    );
    let o = cut_page("qd", &wrapped);
    assert_eq!(o.report.input.structure, Structure::VietnameseLaw);
    assert_eq!(o.report.article_numbers, ["1"]);
    assert!(o
        .paragraphs
        .iter()
        .any(|p| p.placement == Placement::Unassigned));
}

#[test]
fn a_page_without_structure_says_what_was_tried_in_no_one_language() {
    let e = cut(
        "<html><body><h1>Хүний эрх</h1><p>Зүйл нэг.</p><p><a name='x1'></a>Зүйл хоёр.</p></body></html>".as_bytes(),
        &options("mn", InputFormat::Auto),
    )
    .unwrap_err();
    assert!(matches!(e, Error::NoStructure { paragraphs: 3, .. }), "{e}");
    let text = e.to_string();
    assert!(text.starts_with("no legal structure found in the HTML input (3 paragraph(s) of text read); tried: marked-up articles"), "{text}");
    assert!(
        text.contains("article headings opening a paragraph"),
        "{text}"
    );
    assert!(text.contains(": 0 found"), "{text}");
}
