//! Documents as they are published in legacy encodings, generated from the corpus: the
//! declaration is followed in the HTML standard's order, a contradicting declaration is
//! reported, text that does not decode is refused, and any corpus document re-encoded in
//! any encoding that can represent it cuts to the same rows as the UTF-8 original.

mod common;

use common::*;
use cutter_doc::{cut, CutOutcome, Error, InputFormat};
use encoding_rs::Encoding;
use proptest::prelude::*;

const DOCS: [&str; 11] = [
    "vn/constitution-2013",
    "vn/competition-law-2018",
    "vn/enterprise-law-2020",
    "udhr/arb",
    "udhr/cmn_hans",
    "udhr/eng",
    "udhr/fra",
    "udhr/jpn",
    "udhr/rus",
    "udhr/spa",
    "udhr/vie",
];

fn page(doc: &str) -> String {
    String::from_utf8(read_corpus(&format!("{doc}.html"))).expect("the corpus is UTF-8")
}

fn id(doc: &str) -> String {
    doc.replace(['/', '_'], "-")
}

fn cut_bytes(doc: &str, bytes: &[u8]) -> Result<CutOutcome, Error> {
    cut(bytes, &options(&id(doc), InputFormat::Auto))
}

fn original(doc: &str) -> CutOutcome {
    cut_bytes(doc, page(doc).as_bytes()).expect("the original cuts")
}

/// How the report says the bytes contradict the declaration.
fn contradiction(o: &CutOutcome) -> String {
    let c = o.report.input.declaration_contradicted.clone();
    c.expect("the contradiction is reported")
}

fn enc(label: &str) -> &'static Encoding {
    Encoding::for_label(label.as_bytes()).expect("label")
}

#[test]
fn the_constitution_in_windows_1258_cuts_like_the_original() {
    let doc = "vn/constitution-2013";
    let text = declare(&page(doc), "windows-1258", Declare::HttpEquiv);
    // Three symbols of the site around the text are not in windows-1258 (a pictogram
    // and two private-use bullets): the page writes them as numeric references.
    assert_eq!(unmappable(enc("windows-1258"), &text), 6);
    let bytes = reencoded(&page(doc), enc("windows-1258"), Declare::HttpEquiv)
        .expect("windows-1258 holds the page once letters are decomposed");
    // The generator really wrote combining tone marks (0xEC is U+0301 in windows-1258).
    assert!(bytes.windows(2).any(|w| w == [0xEA, 0xEC]), "no ê + U+0301");
    let o = cut_bytes(doc, &bytes).expect("cut");
    let r = &o.report;
    assert_eq!(r.input.encoding, "windows-1258");
    assert_eq!(r.input.encoding_from, "<meta> declaration");
    assert_eq!(r.input.declared_charset.as_deref(), Some("windows-1258"));
    assert_eq!(r.input.declaration_contradicted, None);
    assert_eq!(r.counts.articles, 120);
    assert_eq!(rows(&o), rows(&original(doc)));
    assert_eq!(o.plan.findings, original(doc).plan.findings);
    assert_accounting(&o);
    insta::assert_snapshot!("report_constitution_windows_1258", r.to_string());
}

#[test]
fn latin_pages_in_iso_8859_1_and_windows_1252_cut_like_the_originals() {
    for doc in ["udhr/fra", "udhr/spa", "udhr/eng"] {
        let want = rows(&original(doc));
        for label in ["iso-8859-1", "windows-1252"] {
            // U+2010 (hyphen) is in neither: the page writes it as &#8208;.
            let text = declare(&page(doc), label, Declare::MetaCharset);
            let bytes = encode_with_references(enc(label), &text);
            let o = cut_bytes(doc, &bytes).unwrap_or_else(|e| panic!("{doc} {label}: {e}"));
            assert_eq!(o.report.input.encoding, "windows-1252", "{doc} {label}");
            assert_eq!(rows(&o), want, "{doc} {label}");
        }
    }
    // The issue's page: French declared iso-8859-1 is no longer read as UTF-8.
    let text = declare(&page("udhr/fra"), "iso-8859-1", Declare::HttpEquiv);
    let o = cut_bytes(
        "udhr/fra",
        &encode_with_references(enc("iso-8859-1"), &text),
    )
    .unwrap();
    assert!(o.plan.rows.iter().any(|r| r
        .body
        .contains("Tout individu a droit à la vie, à la liberté et à la sûreté de sa personne.")));
    assert!(!o.plan.rows.iter().any(|r| r.body.contains('\u{FFFD}')));
}

#[test]
fn undeclared_legacy_bytes_are_detected() {
    for (doc, label) in [
        ("udhr/fra", "windows-1252"),
        ("udhr/rus", "windows-1251"),
        ("vn/constitution-2013", "windows-1258"),
    ] {
        let bytes =
            encode_with_references(enc(label), &declare(&page(doc), label, Declare::Nothing));
        let o = cut_bytes(doc, &bytes).unwrap_or_else(|e| panic!("{doc}: {e}"));
        assert_eq!(o.report.input.encoding, label, "{doc}");
        assert_eq!(
            o.report.input.encoding_from,
            "detected from the bytes (chardetng)"
        );
        assert_eq!(rows(&o), rows(&original(doc)), "{doc}");
    }
}

#[test]
fn utf16_with_a_bom_cuts_like_the_original_and_without_one_is_refused() {
    for doc in ["vn/enterprise-law-2020", "udhr/jpn"] {
        for e in [encoding_rs::UTF_16LE, encoding_rs::UTF_16BE] {
            let bytes = reencoded(&page(doc), e, Declare::MetaCharset).unwrap();
            let o = cut_bytes(doc, &bytes).unwrap();
            assert_eq!(o.report.input.encoding_from, "byte-order mark");
            assert_eq!(rows(&o), rows(&original(doc)), "{doc} {}", e.name());
        }
    }
    let bytes = reencoded(
        &page("udhr/eng"),
        encoding_rs::UTF_16LE,
        Declare::MetaCharset,
    )
    .unwrap();
    let e = cut_bytes("udhr/eng", &bytes[2..]).unwrap_err();
    assert!(matches!(e, Error::Encoding(_)), "{e}");
    let text = e.to_string();
    assert!(
        text.contains("little-endian UTF-16 without a byte-order mark, which cannot be recognised"),
        "{text}"
    );
}

#[test]
fn a_declaration_the_bytes_contradict_is_reported() {
    // UTF-8 bytes declared as ISO-8859-1: read as the UTF-8 they are, and reported.
    let doc = "udhr/fra";
    let text = declare(&page(doc), "iso-8859-1", Declare::MetaCharset);
    let o = cut_bytes(doc, text.as_bytes()).unwrap();
    assert_eq!(o.report.input.encoding, "UTF-8");
    let c = contradiction(&o);
    assert!(c.contains("says iso-8859-1 but the bytes are UTF-8"), "{c}");
    assert!(o.report.to_string().contains("DECLARATION CONTRADICTED"));
    assert_eq!(rows(&o), rows(&original(doc)));

    // windows-1258 bytes declared as UTF-8: they are not UTF-8; detection reads them.
    let doc = "vn/constitution-2013";
    let text = declare(&page(doc), "utf-8", Declare::HttpEquiv);
    let bytes = encode_with_references(enc("windows-1258"), &text);
    let o = cut_bytes(doc, &bytes).unwrap();
    assert_eq!(o.report.input.encoding, "windows-1258");
    let c = contradiction(&o);
    assert!(c.contains("says utf-8 but the bytes are not UTF-8"), "{c}");
    assert_eq!(rows(&o), rows(&original(doc)));
}

#[test]
fn text_that_does_not_decode_is_refused_unless_accepted() {
    // Latin-1 bytes in a page declared (and therefore read) as UTF-8 whose other text
    // is UTF-8: the damage becomes U+FFFD, and the cut is refused naming the units.
    let doc = "udhr/fra";
    let mut bytes = page(doc).into_bytes();
    let at = bytes
        .windows(6)
        .position(|w| w == "à la ".as_bytes())
        .expect("à la");
    bytes.splice(at..at + 2, [0xE0]);
    let e = cut_bytes(doc, &bytes).unwrap_err();
    let text = e.to_string();
    assert!(
        matches!(e, Error::ForbiddenCharacters { count: 1, .. }),
        "{text}"
    );
    assert!(text.contains("U+FFFD at character"), "{text}");
    assert!(text.contains("of udhr-fra/"), "{text}");
    let mut o = options(&id(doc), InputFormat::Auto);
    o.accept_forbidden_characters = true;
    let out = cut(&bytes, &o).unwrap();
    let f = out.plan.findings.as_ref().unwrap();
    assert!(f.forbidden_characters_accepted);
    assert_eq!(f.forbidden_characters.len(), 1);
    assert_eq!(f.forbidden_characters[0].code_point, "U+FFFD");
    out.plan
        .clone()
        .validate(&vocab())
        .expect("accepted and recorded");
}

/// Every (document, encoding) pair where the encoding can represent the document.
fn representable() -> Vec<(&'static str, &'static Encoding)> {
    const LABELS: [&str; 22] = [
        "utf-8",
        "utf-16le",
        "utf-16be",
        "windows-1258",
        "windows-1252",
        "iso-8859-15",
        "windows-1250",
        "iso-8859-2",
        "windows-1251",
        "koi8-r",
        "iso-8859-5",
        "windows-1256",
        "iso-8859-6",
        "shift_jis",
        "euc-jp",
        "iso-2022-jp",
        "gbk",
        "gb18030",
        "big5",
        "euc-kr",
        "windows-1253",
        "windows-874",
    ];
    let mut out = Vec::new();
    for doc in DOCS {
        let p = page(doc);
        for l in LABELS {
            let e = enc(l);
            if reencoded(&p, e, Declare::MetaCharset).is_some() {
                out.push((doc, e));
            }
        }
    }
    out
}

#[test]
fn every_document_has_legacy_encodings_to_test() {
    let pairs = representable();
    let has = |doc: &str, l: &str| pairs.iter().any(|(d, e)| *d == doc && *e == enc(l));
    for (doc, l) in [
        ("vn/constitution-2013", "windows-1258"),
        ("vn/competition-law-2018", "windows-1258"),
        ("udhr/vie", "windows-1258"),
        ("udhr/spa", "windows-1252"),
        ("udhr/spa", "iso-8859-15"),
        ("udhr/rus", "koi8-r"),
        ("udhr/arb", "windows-1256"),
        ("udhr/jpn", "shift_jis"),
        ("udhr/cmn_hans", "gbk"),
    ] {
        assert!(has(doc, l), "{doc} in {l}: {pairs:?}");
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 32, ..ProptestConfig::default() })]

    /// Any corpus document, re-encoded in any encoding that can represent it and declared
    /// correctly (in any of the ways a page can), cuts to the same rows as the original.
    #[test]
    fn reencoded_documents_cut_to_the_same_rows(
        pick in proptest::sample::select(representable()),
        how in proptest::sample::select(vec![Declare::MetaCharset, Declare::HttpEquiv, Declare::Xml]),
    ) {
        let (doc, e) = pick;
        let bytes = reencoded(&page(doc), e, how).expect("representable");
        let o = cut_bytes(doc, &bytes).map_err(|err| TestCaseError::fail(format!("{doc} in {}: {err}", e.name())))?;
        prop_assert_eq!(o.report.input.encoding.as_str(), e.name());
        prop_assert_eq!(o.report.input.declaration_contradicted.as_deref(), None);
        prop_assert_eq!(rows(&o), rows(&original(doc)), "{} in {} ({:?})", doc, e.name(), how);
    }
}
