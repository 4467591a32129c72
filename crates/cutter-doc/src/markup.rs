//! Documents whose articles are marked up (the UDHR pages): each leaf `<article>` with a
//! heading element is one article, items of its top-level `<ol>` are its clauses, and
//! what precedes the first article is the preamble. No words of any language are used.

use std::collections::BTreeMap;

use ego_tree::NodeId;
use scraper::ElementRef;

use crate::assemble::{Assembly, FoundArticle};
use crate::extract::{path_from_root, HtmlDoc, Para};
use crate::text::{first_number, normalize_paragraph};
use crate::vn;

#[derive(Debug)]
pub(crate) struct MarkedArticle {
    node: NodeId,
    heading: NodeId,
    heading_text: String,
    number: u32,
}

/// The marked-up articles of a page and the element holding them all.
#[derive(Debug)]
pub(crate) struct Markup {
    pub container: NodeId,
    articles: Vec<MarkedArticle>,
    by_node: BTreeMap<NodeId, usize>,
    notes: Vec<String>,
}

impl Markup {
    /// Number of marked-up articles.
    pub fn articles(&self) -> usize {
        self.articles.len()
    }
}

/// Finds marked-up articles: leaf `<article>` elements that each contain a heading
/// element (one is enough: a page may hold a single article). A page is *not* read this
/// way when one `<article>` holds several Vietnamese article headings, when as many such
/// headings lie outside `<article>`s (a law page that merely uses `<article>` for teasers
/// or as a wrapper), or when its only `<article>` holds one (a one-article law).
pub(crate) fn detect(doc: &HtmlDoc) -> Option<Markup> {
    let tree = &doc.html.tree;
    let mut articles = Vec::new();
    for leaf in &doc.leaf_articles {
        let Some(heading) = leaf.heading else {
            continue;
        };
        let heading_text = tree
            .get(heading)
            .and_then(ElementRef::wrap)
            .map(|e| normalize_paragraph(&e.text().collect::<String>()))
            .unwrap_or_default();
        articles.push(MarkedArticle {
            node: leaf.id,
            heading,
            heading_text,
            number: 0,
        });
    }
    if articles.is_empty() {
        return None;
    }
    let by_node: BTreeMap<NodeId, usize> = articles
        .iter()
        .enumerate()
        .map(|(i, a)| (a.node, i))
        .collect();

    // Guard for Vietnamese law pages that use <article> for something else.
    let mut inside = vec![0usize; articles.len()];
    let mut outside = 0usize;
    for p in doc.paras.iter().filter(|p| vn::is_article_heading(p)) {
        match p.article.and_then(|id| by_node.get(&id)) {
            Some(&k) => inside[k] += 1,
            None => outside += 1,
        }
    }
    if inside.iter().any(|n| *n >= 2)
        || outside >= articles.len()
        || (articles.len() == 1 && inside[0] > 0)
    {
        return None;
    }

    // Numbers: data-number, else digits in the heading, else position.
    let mut from_heading = 0;
    let mut from_position = 0;
    for (i, a) in articles.iter_mut().enumerate() {
        let attr = tree
            .get(a.node)
            .and_then(|n| n.value().as_element())
            .and_then(|e| e.attr("data-number"))
            .map(str::trim)
            .filter(|v| !v.is_empty() && v.len() <= 4 && v.bytes().all(|b| b.is_ascii_digit()))
            .and_then(|v| v.parse::<u32>().ok());
        a.number = match attr {
            Some(n) => n,
            None => match first_number(&a.heading_text) {
                Some(n) => {
                    from_heading += 1;
                    n
                }
                None => {
                    from_position += 1;
                    u32::try_from(i + 1).unwrap_or(u32::MAX)
                }
            },
        };
    }
    let mut notes = Vec::new();
    if from_heading > 0 {
        notes.push(format!(
            "{from_heading} article number(s) read from the digits of the heading (no data-number)"
        ));
    }
    if from_position > 0 {
        notes.push(format!(
            "{from_position} article number(s) taken from the article's position (no data-number, no digits in the heading)"
        ));
    }

    // The container: the deepest element holding every article (and more than one
    // article: the parent of a single one, which holds what precedes it).
    let mut common = path_from_root(&doc.html, articles[0].node);
    for a in &articles[1..] {
        let path = path_from_root(&doc.html, a.node);
        let same = common.iter().zip(&path).take_while(|(x, y)| x == y).count();
        common.truncate(same);
    }
    if articles.len() == 1 {
        common.pop();
    }
    let container = *common.last()?;
    Some(Markup {
        container,
        articles,
        by_node,
        notes,
    })
}

#[derive(Debug)]
struct Open {
    article: usize,
    unit: usize,
    path: String,
    base: String,
    clause: Option<(NodeId, u32, usize)>,
}

/// Cuts the legal paragraphs (those inside `m.container`) into units.
pub(crate) fn assemble(m: &Markup, legal: &[Para]) -> Assembly {
    let mut a = Assembly::new(legal.len());
    a.notes.extend(m.notes.iter().cloned());
    let mut open: Option<Open> = None;
    let mut preamble: Option<usize> = None;
    let mut preamble_title: Option<String> = None;
    let mut preamble_title_fixed = false;
    let mut last_heading: Option<String> = None;

    for (i, p) in legal.iter().enumerate() {
        let article = p.article.and_then(|id| m.by_node.get(&id).copied());
        let item = article.and(p.item);
        let Some(k) = article else {
            match &last_heading {
                None => {
                    let unit = *preamble.get_or_insert_with(|| {
                        a.add_unit("preamble".into(), String::new(), "preamble")
                    });
                    if !preamble_title_fixed {
                        if p.heading.is_some() {
                            preamble_title = Some(p.text.clone());
                        } else {
                            preamble_title_fixed = true;
                        }
                    }
                    a.place_in_unit(i, unit);
                }
                Some(h) => {
                    let location = format!("between articles, after \"{h}\"");
                    a.place_unassigned(i, &location, &p.text, false);
                }
            }
            continue;
        };
        if open.as_ref().map(|o| o.article) != Some(k) {
            let art = &m.articles[k];
            let unit = a.add_unit(
                format!("article-{}", art.number),
                art.heading_text.clone(),
                "article",
            );
            a.articles.push(FoundArticle {
                number: art.number,
                label: art.number.to_string(),
                plain: true,
            });
            last_heading = Some(art.heading_text.clone());
            open = Some(Open {
                article: k,
                unit,
                path: a.path(unit).to_string(),
                base: art
                    .heading_text
                    .trim_end_matches([':', '.', '：', '。', ' '])
                    .to_string(),
                clause: None,
            });
        }
        let Some(o) = open.as_mut() else { continue };
        let in_heading = p.heading == Some(m.articles[k].heading);
        match (item, o.clause) {
            (Some(item), current) if !in_heading => {
                let unit = match current {
                    Some((li, _, unit)) if li == item => unit,
                    _ => {
                        let n = current.map_or(1, |(_, n, _)| n + 1);
                        let unit = a.add_unit(
                            format!("{}/clause-{n}", o.path),
                            format!("{} ({n})", o.base),
                            "clause",
                        );
                        a.tally.clauses += 1;
                        o.clause = Some((item, n, unit));
                        unit
                    }
                };
                a.place_in_unit(i, unit);
            }
            (_, None) => a.place_in_unit(i, o.unit),
            (_, Some((_, n, _))) => {
                let location = format!("inside \"{}\", after its clause {n}", o.base);
                a.place_unassigned(i, &location, &p.text, false);
            }
        }
    }
    if let Some(u) = preamble {
        a.units[u].title = preamble_title.unwrap_or_else(|| "Preamble".to_string());
    }
    let empty = m.articles.len() - a.articles.len();
    if empty > 0 {
        a.notes.push(format!(
            "{empty} marked-up article(s) hold no text and give no unit"
        ));
    }
    a
}
