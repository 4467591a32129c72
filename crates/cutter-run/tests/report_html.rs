//! The HTML run report's structure, parsed with html5ever (through `scraper`) without a
//! browser: well-formed, self-contained, accessible tables, the timeline's bars as
//! computed from the recorded phases, and every section a reviewer needs.

mod common;

use cutter_run::html::{timeline, to_html};
use scraper::{Html, Selector};

fn sel(s: &str) -> Selector {
    Selector::parse(s).unwrap()
}

fn parse(html: &str) -> Html {
    let doc = Html::parse_document(html);
    assert!(
        doc.errors.is_empty(),
        "html5ever reports parse errors: {:?}",
        doc.errors
    );
    doc
}

#[test]
fn the_report_is_well_formed_self_contained_and_accessible() {
    let (rec, extras) = common::demo_run();
    let doc = parse(&to_html(&rec, &extras));
    let html = doc.select(&sel("html")).next().unwrap();
    assert_eq!(html.value().attr("lang"), Some("en"));
    assert_eq!(doc.select(&sel("h1")).count(), 1);
    assert!(doc
        .select(&sel("title"))
        .next()
        .unwrap()
        .inner_html()
        .contains("demo-1"));
    // Self-contained: no script, nothing fetched, and a policy that forbids fetching.
    assert_eq!(
        doc.select(&sel("script, link, iframe, img, object"))
            .count(),
        0
    );
    let refs: Vec<_> = doc
        .select(&sel("[src], [href]"))
        .map(|e| e.html())
        .collect();
    assert!(refs.is_empty(), "the report references {refs:?}");
    let csp = doc
        .select(&sel("meta[http-equiv=\"Content-Security-Policy\"]"))
        .next()
        .expect("a Content-Security-Policy");
    assert!(csp
        .value()
        .attr("content")
        .unwrap()
        .contains("default-src 'none'"));
    // Every table has a caption, and every header cell says what it heads.
    let tables: Vec<_> = doc.select(&sel("table")).collect();
    assert!(tables.len() >= 6, "{} tables", tables.len());
    for t in &tables {
        assert!(
            t.select(&sel("caption")).next().is_some(),
            "table {:?} has no caption",
            t.value().attr("id")
        );
        assert!(t.select(&sel("th")).next().is_some());
        for th in t.select(&sel("th")) {
            let scope = th.value().attr("scope");
            assert!(
                matches!(scope, Some("col" | "row")),
                "a header without scope in table {:?}",
                t.value().attr("id")
            );
        }
    }
    for id in [
        "timeline",
        "counts",
        "approvals",
        "backup",
        "ledger",
        "compensation",
    ] {
        assert!(
            doc.select(&sel(&format!("h2#{id}"))).next().is_some(),
            "no section {id}"
        );
    }
}

#[test]
fn the_timeline_has_one_bar_per_recorded_phase_with_the_computed_geometry() {
    for (rec, extras) in [common::demo_run(), common::failed_run()] {
        let doc = parse(&to_html(&rec, &extras));
        let t = timeline(&rec.context.phases, &extras.events);
        let svg = doc.select(&sel("svg#timeline-svg")).next().unwrap();
        assert_eq!(svg.value().attr("role"), Some("img"));
        assert!(svg.select(&sel("title")).next().is_some());
        let bars: Vec<_> = svg.select(&sel("rect.bar")).collect();
        assert_eq!(bars.len(), rec.context.phases.len());
        for ((rect, bar), p) in bars.iter().zip(&t.bars).zip(&rec.context.phases) {
            let attr = |a: &str| rect.value().attr(a).unwrap().to_string();
            assert_eq!(attr("data-phase"), p.phase.to_string());
            assert_eq!(
                attr("data-duration-ms"),
                (p.ended_ms - p.started_ms).to_string()
            );
            let width: f64 = attr("width").parse().unwrap();
            assert!((width - bar.width).abs() < 0.01);
            let failed = matches!(p.outcome, cutter_core::PhaseOutcome::Failed { .. });
            assert_eq!(attr("class").contains("failed"), failed);
        }
        // The gate is an event on the axis.
        let events: Vec<String> = svg
            .select(&sel("g.event text"))
            .map(|e| e.text().collect())
            .collect();
        assert!(events.iter().any(|e| e == "gate passed"), "{events:?}");
    }
    // A failed phase is marked in words too, not by colour alone, and its reason escaped.
    let (rec, extras) = common::failed_run();
    let page = to_html(&rec, &extras);
    assert!(page.contains("✕ FAILED"));
    assert!(page.contains("injected &lt;failure&gt; &amp; more"));
    assert!(page.contains("HOLD: write_verify failed"));
}

#[test]
fn the_report_shows_counts_approvals_restore_proof_and_chain_heads() {
    let (rec, extras) = common::demo_run();
    let doc = parse(&to_html(&rec, &extras));
    let text = |s: &str| -> Vec<String> {
        doc.select(&sel(s))
            .map(|e| e.text().collect::<String>())
            .collect()
    };
    // Counts: one row per table of the snapshot, and a difference that adds up.
    let pre = rec.context.pre_snapshot.as_ref().unwrap();
    let post = rec.context.post_snapshot.as_ref().unwrap();
    let rows: Vec<_> = doc.select(&sel("#counts-table tbody tr")).collect();
    assert!(rows.len() >= pre.tables.len());
    for (t, s) in &pre.tables {
        let row = rows
            .iter()
            .find(|r| {
                r.select(&sel("th"))
                    .next()
                    .unwrap()
                    .text()
                    .collect::<String>()
                    == t.to_string()
            })
            .unwrap_or_else(|| panic!("no row for {t}"));
        let cells: Vec<String> = row.select(&sel("td")).map(|c| c.text().collect()).collect();
        let after = post.tables.get(t).unwrap().rows;
        assert_eq!(cells[0], s.rows.to_string());
        assert_eq!(cells[1], after.to_string());
        assert_eq!(cells[2], format!("{:+}", after as i128 - s.rows as i128));
    }
    // Approvals: each signer's name and fingerprint, the purpose, when signed, expiry.
    let approvals = text("#approvals-table tbody tr");
    assert_eq!(approvals.len(), rec.context.approvals.len());
    for (a, row) in rec.context.approvals.iter().zip(&approvals) {
        assert!(row.contains(&a.signer.to_string()), "{row}");
        assert!(
            row.contains(rec.context.signers.get(&a.signer).unwrap()),
            "{row}"
        );
        assert!(row.contains("live-run"), "{row}");
        assert!(row.contains(&cutter_run::runs::rfc3339(a.statement.expires_at)));
        assert!(!row.contains("unreadable"), "{row}");
    }
    // The restore proof: expected and restored rows per table, the digest compared.
    let proof = extras.restore_proof.as_ref().unwrap();
    let proof_rows = text("#restore-proof tbody tr");
    assert_eq!(proof_rows.len(), proof["tables"].as_array().unwrap().len());
    assert!(proof_rows.iter().all(|r| r.contains("equal")));
    // The chain heads, whole, and the backup's sha256.
    let heads = text("#ledger-heads tbody tr").join("\n");
    for t in extras.ledger.as_ref().unwrap()["tables"]
        .as_array()
        .unwrap()
    {
        assert!(heads.contains(t["head"][1].as_str().unwrap()), "{heads}");
    }
    let summary = text("#summary").join("");
    assert!(summary.contains(&rec.context.backup.as_ref().unwrap().sha256.to_string()));
}

#[test]
fn an_amendments_changed_articles_are_side_by_side_word_by_word() {
    let (_, plain) = common::demo_run();
    let doc = parse(&to_html(&common::demo_run().0, &plain));
    assert!(doc.select(&sel("#changed-articles")).next().is_none());

    let (rec, extras) = common::amendment_run();
    let doc = parse(&to_html(&rec, &extras));
    assert!(doc.select(&sel("h2#changed-articles")).next().is_some());
    let tables: Vec<_> = doc.select(&sel("table.side-by-side")).collect();
    assert_eq!(tables.len(), extras.changed_articles.len());
    let words = |cell: &scraper::ElementRef<'_>, tag: &str| -> Vec<String> {
        cell.select(&sel(tag))
            .map(|e| e.text().collect::<String>())
            .collect()
    };
    for (t, a) in tables.iter().zip(&extras.changed_articles) {
        // A captioned table, a header per column, one row: before | after.
        let caption: String = t.select(&sel("caption")).next().unwrap().text().collect();
        assert_eq!(caption, a.address);
        let heads: Vec<String> = t
            .select(&sel("thead th[scope=col]"))
            .map(|e| e.text().collect())
            .collect();
        assert_eq!(heads, ["before", "after"]);
        let cells: Vec<_> = t.select(&sel("tbody td")).collect();
        assert_eq!(cells.len(), 2);
        // The texts themselves, whole and in order (markup characters as text).
        let text = |c: &scraper::ElementRef<'_>| {
            c.text()
                .collect::<String>()
                .split_whitespace()
                .collect::<Vec<_>>()
                .join(" ")
        };
        assert_eq!(text(&cells[0]), a.old);
        assert_eq!(text(&cells[1]), a.new_text());
        // Removed words only before, added words only after, and every word of the
        // word diff marked where it belongs.
        assert!(words(&cells[0], "ins").is_empty() && words(&cells[1], "del").is_empty());
        let (before, after) = cutter_core::word_diff(&a.old, a.new_text());
        let marked = |side: &[cutter_core::WordChange<'_>], removed: bool| -> Vec<String> {
            side.iter()
                .filter_map(|w| match (w, removed) {
                    (cutter_core::WordChange::Removed(w), true)
                    | (cutter_core::WordChange::Added(w), false) => Some(w.to_string()),
                    _ => None,
                })
                .collect()
        };
        let split = |v: Vec<String>| -> Vec<String> {
            v.iter()
                .flat_map(|s| s.split_whitespace().map(str::to_string))
                .collect()
        };
        assert_eq!(split(words(&cells[0], "del")), marked(&before, true));
        assert_eq!(split(words(&cells[1], "ins")), marked(&after, false));
    }
    // The examples of each kind: appended words, one word replaced, a repeal.
    let cell = |i: usize, side: usize| tables[i].select(&sel("tbody td")).nth(side).unwrap();
    assert_eq!(words(&cell(0, 1), "ins"), ["Sửa đổi, bổ sung năm 2025."]);
    assert_eq!(words(&cell(1, 0), "del"), ["hạn chế"]);
    assert_eq!(words(&cell(1, 1), "ins"), ["tạm ngừng"]);
    assert_eq!(words(&cell(2, 1), "ins"), ["(repealed)"]);
    // Not by colour alone: the stylesheet strikes removed words, underlines added ones,
    // and says which is which in words to a screen reader.
    let page = to_html(&rec, &extras);
    for rule in [
        "text-decoration: line-through",
        "text-decoration: underline",
        "content: \"[removed: \"",
        "content: \"[added: \"",
    ] {
        assert!(page.contains(rule), "no {rule}");
    }
}
