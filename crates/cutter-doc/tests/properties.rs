//! Property tests: the cutter never panics on arbitrary bytes or tag soup (every
//! successful cut keeping its bookkeeping), and a generated law, rendered as messy HTML
//! or plain text with its article headings in a mix of the published forms, is cut into
//! exactly its units without losing or moving a word of its legal text.

mod common;

use common::*;
use cutter_doc::{cut, InputFormat, Placement};
use proptest::prelude::*;
use unicode_normalization::UnicodeNormalization;

fn formats() -> impl Strategy<Value = InputFormat> {
    prop_oneof![
        Just(InputFormat::Auto),
        Just(InputFormat::Html),
        Just(InputFormat::Text)
    ]
}

/// Cuts and, when the cut succeeds, checks the plan and the bookkeeping.
fn cut_and_check(input: &[u8], format: InputFormat) {
    if let Ok(o) = cut(input, &options("prop-doc", format)) {
        assert_accounting(&o);
        if let Err(e) = o.plan.clone().validate(&vocab()) {
            panic!("plan does not validate: {e}");
        }
    }
}

const PIECES: &[&str] = &[
    "<p>",
    "</p>",
    "<div>",
    "</div>",
    "<br>",
    "<li>",
    "</li>",
    "<ol>",
    "</ol>",
    "<ul>",
    "</ul>",
    "<article>",
    "<article data-number='3'>",
    "</article>",
    "<h2>",
    "</h2>",
    "<header>",
    "</header>",
    "<table><tr><td>",
    "</td><td>",
    "</td></tr></table>",
    "<script>var s = 'Điều 9.';",
    "</script>",
    "<style>p{}</style>",
    "<!-- Điều 7. -->",
    "<pre>",
    "</pre>",
    "<span>",
    "</span>",
    "<b>",
    "</b>",
    "<a href='#x'>",
    "</a>",
    "<textarea>",
    "</textarea>",
    "&nbsp;",
    "&amp;",
    "&#x300;",
    "<",
    ">",
    "</",
    "<!doctype html>",
    "<html><body>",
    "</body></html>",
    "\n",
    " ",
    "\u{a0}",
    "\u{0}",
    "\u{202e}",
    "\u{feff}",
    "Điều 1.",
    "Điều 2. Phạm vi điều chỉnh",
    "Đie\u{302}\u{300}u 3.",
    "ĐIỀU 4:",
    "Điều 4a.",
    "Điều 9 Luật Ban hành",
    "Chương II",
    "CHƯƠNG IV.",
    "Chương XL: TÊN",
    "Mục 1",
    "MỤC 2. X",
    "Phần thứ hai",
    "PHẦN I",
    "1. ",
    "2. ",
    "3.",
    "12. ",
    "a) ",
    "b) ",
    "đ) ",
    "y) ",
    "Nơi nhận:",
    "CỘNG HÒA XÃ HỘI CHỦ NGHĨA VIỆT NAM",
    "KT. BỘ TRƯỞNG",
    "Luật này đã được Quốc hội thông qua ngày 1.",
    "LỜI NÓI ĐẦU",
    "QUY ĐỊNH CHUNG",
];

fn tag_soup() -> impl Strategy<Value = String> {
    let piece = prop_oneof![
        4 => proptest::sample::select(PIECES).prop_map(str::to_string),
        2 => "[a-zA-Zàáạảãđơư ]{0,12}",
        1 => "\\PC{0,6}",
    ];
    proptest::collection::vec(piece, 0..80).prop_map(|v| v.concat())
}

/// Soup shaped like a law page: paragraphs that often start with a heading.
fn law_soup() -> impl Strategy<Value = String> {
    let para = (
        proptest::sample::select(&["<p>", "<div>", "<li>", "<br>", "<td>", ""][..]),
        proptest::sample::select(PIECES),
        "[a-zA-Zàáạảãđ .;]{0,20}",
        proptest::sample::select(&["</p>", "</div>", "", "<br>", "</span>"][..]),
    )
        .prop_map(|(open, head, text, close)| format!("{open}{head}{text}{close}"));
    proptest::collection::vec(para, 0..60).prop_map(|v| v.concat())
}

/// Soup shaped like a marked-up page: `<article>`s with headings and lists, with junk.
fn markup_soup() -> impl Strategy<Value = String> {
    let item = prop_oneof![
        3 => "[a-zA-Z ]{0,12}".prop_map(|t| format!("<li><p>{t}</p></li>")),
        1 => proptest::sample::select(PIECES).prop_map(str::to_string),
    ];
    let article = (
        proptest::option::of(0u32..40),
        "[A-Za-z0-9 ]{0,10}",
        proptest::collection::vec("[a-z ]{0,15}", 0..3),
        proptest::option::of(proptest::collection::vec(item, 0..4)),
        proptest::sample::select(&["</article>", "", "</ol></article>"][..]),
    )
        .prop_map(|(n, h, ps, list, close)| {
            let attr = n.map(|n| format!(" data-number='{n}'")).unwrap_or_default();
            let ps: String = ps.iter().map(|p| format!("<p>{p}</p>")).collect();
            let list = list
                .map(|l| format!("<ol>{}</ol>", l.concat()))
                .unwrap_or_default();
            format!("<article{attr}><h2>{h}</h2>{ps}{list}{close}")
        });
    (
        "[a-z ]{0,20}",
        proptest::collection::vec(article, 0..8),
        proptest::sample::select(PIECES),
    )
        .prop_map(|(pre, arts, junk)| {
            format!(
                "<html><body><h1>T</h1><header><h2>P</h2><p>{pre}</p></header>{}{junk}</body></html>",
                arts.concat()
            )
        })
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 256, ..ProptestConfig::default() })]

    #[test]
    fn never_panics_on_arbitrary_bytes(bytes in proptest::collection::vec(any::<u8>(), 0..2048), format in formats()) {
        cut_and_check(&bytes, format);
    }

    #[test]
    fn never_panics_on_tag_soup(soup in tag_soup(), format in formats()) {
        cut_and_check(soup.as_bytes(), format);
    }

    #[test]
    fn never_panics_on_law_shaped_soup(soup in law_soup(), format in formats()) {
        cut_and_check(soup.as_bytes(), format);
    }

    #[test]
    fn never_panics_on_markup_shaped_soup(soup in markup_soup()) {
        cut_and_check(soup.as_bytes(), InputFormat::Html);
    }
}

// ---------------------------------------------------------------------------------------
// Generated laws.

const WORDS: &[&str] = &[
    "nhà", "nước", "bảo", "đảm", "quyền", "con", "người", "công", "dân", "tổ", "chức", "hoạt",
    "động", "theo", "pháp", "luật", "việc", "thực", "hiện", "được", "quy", "định", "trách",
    "nhiệm", "cơ", "quan", "xã", "hội", "kinh", "tế",
];
const UPPER: &[&str] = &[
    "QUY", "ĐỊNH", "CHUNG", "QUYỀN", "NGHĨA", "VỤ", "CÔNG", "DÂN", "NHÀ", "NƯỚC",
];
const NBSP: char = '\u{a0}';
const LETTERS: [&str; 23] = [
    "a", "b", "c", "d", "đ", "e", "g", "h", "i", "k", "l", "m", "n", "o", "p", "q", "r", "s", "t",
    "u", "v", "x", "y",
];

fn phrase(
    pool: &'static [&'static str],
    len: std::ops::Range<usize>,
) -> impl Strategy<Value = String> {
    proptest::collection::vec(proptest::sample::select(pool), len).prop_map(|w| w.join(" "))
}

/// A sentence that is not a heading, clause or point: capitalized, ends with a period.
fn sentence() -> impl Strategy<Value = String> {
    phrase(WORDS, 2..9).prop_map(|s| {
        let mut c = s.chars();
        let first: String = c
            .next()
            .map(|f| f.to_uppercase().collect())
            .unwrap_or_default();
        format!("{first}{}.", c.as_str())
    })
}

#[derive(Debug, Clone)]
struct Clause {
    text: String,
    points: Vec<String>,
    more: Vec<String>,
}

/// How an article heading is written, as published laws write them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum HeadingForm {
    /// `Điều 5. Tên` (or `Điều 5.`)
    Period,
    /// `Điều 5: Tên` (or `Điều 5:`)
    Colon,
    /// `Điều 5 Tên`, a space and a capital letter, standing as a heading (bold, a heading
    /// element or an anchor); in plain text, which has no such setting, `Điều 5. Tên`.
    Published,
}

#[derive(Debug, Clone)]
struct Article {
    title: Option<String>,
    form: HeadingForm,
    lead: Vec<String>,
    clauses: Vec<Clause>,
}

#[derive(Debug, Clone)]
struct Chapter {
    title: String,
    articles: Vec<Article>,
}

#[derive(Debug, Clone)]
struct Law {
    preamble: Vec<String>,
    chapters: Vec<Chapter>,
    closing: bool,
}

fn clause() -> impl Strategy<Value = Clause> {
    (
        sentence(),
        proptest::collection::vec(sentence(), 0..4),
        proptest::collection::vec(sentence(), 0..2),
    )
        .prop_map(|(text, points, more)| Clause { text, points, more })
}

fn article() -> impl Strategy<Value = Article> {
    (
        proptest::option::of(phrase(WORDS, 1..5)),
        proptest::sample::select(vec![
            HeadingForm::Period,
            HeadingForm::Colon,
            HeadingForm::Published,
        ]),
        proptest::collection::vec(sentence(), 0..3),
        proptest::collection::vec(clause(), 0..4),
    )
        .prop_map(|(title, form, mut lead, clauses)| {
            if clauses.is_empty() && lead.is_empty() {
                lead.push("Nội dung của điều.".into());
            }
            // The published form always has a title, starting with a capital letter.
            let title = match (form, title) {
                (HeadingForm::Published, t) => {
                    Some(capitalized(&t.unwrap_or_else(|| "quy định chung".into())))
                }
                (_, t) => t,
            };
            Article {
                title,
                form,
                lead,
                clauses,
            }
        })
}

fn law() -> impl Strategy<Value = Law> {
    (
        proptest::collection::vec(sentence(), 0..3),
        proptest::collection::vec(
            (
                phrase(UPPER, 1..4),
                proptest::collection::vec(article(), 1..4),
            )
                .prop_map(|(title, articles)| Chapter { title, articles }),
            1..4,
        ),
        any::<bool>(),
    )
        .prop_map(|(preamble, chapters, closing)| Law {
            preamble,
            chapters,
            closing,
        })
}

fn capitalized(s: &str) -> String {
    let mut c = s.chars();
    c.next()
        .map(|f| f.to_uppercase().chain(c).collect())
        .unwrap_or_default()
}

/// One line of the law and whether it belongs in a unit body.
fn lines(law: &Law, html: bool) -> Vec<(String, bool)> {
    lines_and_units(law, html).0
}

/// The lines of the law; the unit each line goes to (`None` for headings and the
/// closing block); and the article number of each published-form heading line.
#[allow(clippy::type_complexity)]
fn lines_and_units(
    law: &Law,
    html: bool,
) -> (Vec<(String, bool)>, Vec<Option<usize>>, Vec<(usize, u32)>) {
    let mut out = Vec::new();
    let mut unit_of = Vec::new();
    let mut published = Vec::new();
    let mut units = 0usize;
    if !law.preamble.is_empty() {
        units += 1;
    }
    for p in &law.preamble {
        out.push((p.clone(), true));
        unit_of.push(Some(0));
    }
    let mut n = 0;
    for (c, chapter) in law.chapters.iter().enumerate() {
        out.push((format!("Chương {}", ["I", "II", "III", "IV"][c]), false));
        out.push((chapter.title.clone(), false));
        unit_of.extend([None, None]);
        for a in &chapter.articles {
            n += 1;
            let heading = match (&a.title, a.form) {
                (Some(t), HeadingForm::Published) if html => {
                    published.push((out.len(), n));
                    format!("Điều {n} {t}")
                }
                (Some(t), HeadingForm::Colon) => format!("Điều {n}: {t}"),
                (Some(t), _) => format!("Điều {n}. {t}"),
                (None, HeadingForm::Colon) => format!("Điều {n}:"),
                (None, _) => format!("Điều {n}."),
            };
            let article_unit = units;
            units += 1;
            out.push((heading, true));
            unit_of.push(Some(article_unit));
            for l in &a.lead {
                out.push((l.clone(), true));
                unit_of.push(Some(article_unit));
            }
            for (k, cl) in a.clauses.iter().enumerate() {
                let clause_unit = units;
                units += 1;
                out.push((format!("{}. {}", k + 1, cl.text), true));
                unit_of.push(Some(clause_unit));
                for (p, point) in cl.points.iter().enumerate() {
                    out.push((format!("{}) {}", LETTERS[p], point), true));
                    unit_of.push(Some(clause_unit));
                }
                for m in &cl.more {
                    out.push((m.clone(), true));
                    unit_of.push(Some(clause_unit));
                }
            }
        }
    }
    if law.closing {
        out.push((CLOSING[0].to_string(), false));
        out.push((CLOSING[1].to_string(), false));
        unit_of.extend([None, None]);
    }
    (out, unit_of, published)
}

const CLOSING: [&str; 2] = [
    "Luật này đã được Quốc hội thông qua ngày 1 tháng 1 năm 2020.",
    "CHỦ TỊCH QUỐC HỘI",
];

/// Messes a line up the way published pages do: decomposed letters, non-breaking and
/// doubled spaces, inline markup splitting words.
fn render_line(line: &str, seed: u64, html: bool) -> String {
    let mut s = if seed.is_multiple_of(2) {
        line.nfd().collect::<String>()
    } else {
        line.to_string()
    };
    if seed.is_multiple_of(3) {
        s = s.replacen(' ', "\u{a0}", 2);
    }
    if seed.is_multiple_of(5) {
        s = s.replace(' ', "  ");
    }
    if !html {
        return s;
    }
    let s = s.replace('&', "&amp;").replace('<', "&lt;");
    match seed % 4 {
        0 => format!("<p>{s}</p>"),
        1 => format!("<p><span style='color:black'>{s}</span></p>"),
        2 => match s.split_once(' ') {
            Some((a, b)) => format!("<p><a name='x'><b>{a}</b></a> <span>{b}</span></p>"),
            None => format!("<div><p>{s}</p></div>"),
        },
        _ => format!("<p>\n  {}\n</p>", s.replacen(' ', "\n", 1)),
    }
}

/// A published-form heading standing as one: bold, in a heading element, or anchored.
fn render_heading(line: &str, n: u32, seed: u64) -> String {
    let s = line.replace('&', "&amp;").replace('<', "&lt;");
    match seed % 5 {
        0 => format!("<p><b>{s}</b></p>"),
        1 => format!("<p><a name='dieu_{n}'>{s}</a></p>"),
        2 => format!("<h3>{s}</h3>"),
        3 => format!("<p style='margin-top:6pt'><a name='dieu_{n}'><strong><span style='color:black'>{s}</span></strong></a></p>"),
        _ => format!("<a name='dieu_{n}'></a><p><span>{s}</span></p>"),
    }
}

fn render(law: &Law, seed: u64, html: bool) -> String {
    let (all, _, published) = lines_and_units(law, html);
    let body: Vec<String> = all
        .iter()
        .enumerate()
        .map(|(i, (l, _))| {
            let line_seed = seed.wrapping_mul(31).wrapping_add(i as u64 * 7);
            match published.iter().find(|(k, _)| *k == i) {
                Some((_, n)) => render_heading(l, *n, line_seed),
                None => render_line(l, line_seed, html),
            }
        })
        .collect();
    if !html {
        return body.join("\n");
    }
    format!(
        "<!doctype html><html><head><title>Luật</title><script>var x = 'Điều 5.';</script></head>\
         <body><nav><ul><li>Trang chủ</li><li>Văn bản mới</li><li>Điều 9 Luật Ban hành</li></ul></nav>\
         <div class='law'>{}</div>\
         <div class='footer'><p>Bài liên quan</p><p>1. Tra cứu văn bản</p><!-- Điều 99. --></div></body></html>",
        body.concat()
    )
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 128, ..ProptestConfig::default() })]

    #[test]
    fn generated_laws_are_cut_as_built(law in law(), seed in any::<u64>(), html in any::<bool>()) {
        let source = render(&law, seed, html);
        let format = if html { InputFormat::Html } else { InputFormat::Text };
        let o = cut(source.as_bytes(), &options("gen-law", format)).expect("cut");
        assert_accounting(&o);
        o.plan.clone().validate(&vocab()).expect("valid plan");

        let expected = lines(&law, html);
        let r = &o.report;
        let articles: usize = law.chapters.iter().map(|c| c.articles.len()).sum();
        let clauses: usize = law.chapters.iter().flat_map(|c| &c.articles).map(|a| a.clauses.len()).sum();
        let points: usize = law.chapters.iter().flat_map(|c| &c.articles).flat_map(|a| &a.clauses).map(|c| c.points.len()).sum();
        prop_assert_eq!(r.counts.chapters, law.chapters.len());
        prop_assert_eq!(r.counts.articles, articles);
        prop_assert_eq!(r.counts.clauses, clauses);
        prop_assert_eq!(r.counts.points, points);
        prop_assert_eq!(r.counts.units, usize::from(!law.preamble.is_empty()) + articles + clauses);
        prop_assert!(r.missing_articles.is_empty());
        if law.closing {
            prop_assert_eq!(r.unassigned.len(), 1);
            prop_assert_eq!(r.unassigned[0].paragraphs, 2);
            prop_assert!(r.notes.is_empty(), "{:?}", r.notes);
        } else {
            prop_assert!(r.unassigned.is_empty(), "{:?}", r.unassigned);
            prop_assert_eq!(r.notes.len(), 1, "{:?}", r.notes);
            prop_assert!(r.notes[0].contains("may be cut short"), "{:?}", r.notes);
        }

        // The recognized legal text is the law, word for word, and nothing else.
        let all: Vec<String> = expected.iter().flat_map(|(l, _)| words(l)).collect();
        let recognized: Vec<String> = o.paragraphs.iter().flat_map(|p| words(&p.text)).collect();
        prop_assert_eq!(recognized, all);
        // The bodies, joined, are the law minus its chapter headings and closing block.
        let in_units: Vec<String> = expected.iter().filter(|(_, u)| *u).flat_map(|(l, _)| words(l)).collect();
        let bodies: Vec<&str> = o.plan.rows.iter().map(|r| r.body.as_str()).collect();
        prop_assert_eq!(words(&bodies.join("\n")), in_units);
        let headings = o.paragraphs.iter().filter(|p| p.placement == Placement::Heading).count();
        prop_assert_eq!(headings, 2 * law.chapters.len());
        // Every body is NFC with single spaces.
        for row in &o.plan.rows {
            prop_assert_eq!(row.body.nfc().collect::<String>(), row.body.clone());
            let clean = !row.body.contains("  ") && !row.body.contains(NBSP);
            prop_assert!(clean, "unnormalized whitespace in {}", row.canonical_address);
        }
        // No text moved between units: each body holds exactly its unit's lines.
        let (all, unit_of, _) = lines_and_units(&law, html);
        for (r, row) in o.plan.rows.iter().enumerate() {
            let want: Vec<String> = all
                .iter()
                .zip(&unit_of)
                .filter(|(_, u)| **u == Some(r))
                .flat_map(|((l, _), _)| words(l))
                .collect();
            prop_assert_eq!(words(&row.body), want, "{}", row.canonical_address);
        }
        // Same input, same plan.
        let again = cut(source.as_bytes(), &options("gen-law", format)).expect("cut");
        prop_assert_eq!(again.plan.digest(), o.plan.digest());
    }
}
