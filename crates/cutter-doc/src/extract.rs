//! Paragraphs out of the input: one walk over the html5ever DOM breaks text at block
//! elements and `<br>`, skips what is not rendered text (head, scripts, styles, form
//! controls, comments) and records element spans, article context and how each paragraph
//! is set (bold or a heading element, a link, the anchors it carries); plain text: lines.

use ego_tree::iter::Edge;
use ego_tree::{NodeId, NodeRef};
use scraper::{Html, Node};

use crate::text::normalize_paragraph;

/// One paragraph of text, in document order.
#[derive(Debug, Clone)]
pub(crate) struct Para {
    /// NFC, whitespace collapsed, never empty.
    pub text: String,
    /// The innermost `<article>` around the paragraph.
    pub article: Option<NodeId>,
    /// The outermost `<li>` of an `<ol>` inside that article (or anywhere, without one).
    pub item: Option<NodeId>,
    /// The innermost heading element (`h1`–`h6`) around the paragraph.
    pub heading: Option<NodeId>,
    /// All its text is in a heading element or bold (`<b>`, `<strong>`, `font-weight`).
    pub emphasized: bool,
    /// All its text is inside a link (`<a href>`): a reference, never a heading.
    pub link: bool,
    /// Structural anchors it carries or that stand right before it (`name`/`id` such
    /// as `dieu_5`, `chuong_2`): the word (`dieu`, `chuong`, `muc`, `phan`) and number.
    pub anchors: Vec<(&'static str, u32)>,
}

impl Para {
    pub(crate) fn plain(text: String) -> Self {
        Self {
            text,
            article: None,
            item: None,
            heading: None,
            emphasized: false,
            link: false,
            anchors: Vec::new(),
        }
    }
}

/// Most anchors kept per paragraph.
const MAX_ANCHORS: usize = 8;

/// A structural anchor name: `dieu_5`, `dieu5`, `Dieu-5`, `chuong_2`, `muc_1`, `phan_3`.
pub(crate) fn structural_anchor(name: &str) -> Option<(&'static str, u32)> {
    let lower = name.trim().to_ascii_lowercase();
    for word in ["dieu", "chuong", "muc", "phan"] {
        if let Some(rest) = lower.strip_prefix(word) {
            let rest = rest.strip_prefix(['_', '-']).unwrap_or(rest);
            if !rest.is_empty() && rest.len() <= 4 && rest.bytes().all(|b| b.is_ascii_digit()) {
                return rest.parse().ok().map(|n| (word, n));
            }
        }
    }
    None
}

/// An element and the paragraphs it holds: `paras[first..end]`.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Span {
    pub id: NodeId,
    pub depth: usize,
    pub first: usize,
    pub end: usize,
}

/// A leaf `<article>` (one holding no other `<article>`) and its first heading element.
#[derive(Debug, Clone, Copy)]
pub(crate) struct LeafArticle {
    pub id: NodeId,
    pub heading: Option<NodeId>,
}

/// A parsed HTML document and its paragraphs.
#[derive(Debug)]
pub(crate) struct HtmlDoc {
    pub html: Html,
    pub paras: Vec<Para>,
    /// Every element that was not skipped, in document order.
    pub spans: Vec<Span>,
    /// Leaf `<article>` elements in document order.
    pub leaf_articles: Vec<LeafArticle>,
}

/// Elements whose content is not rendered text.
fn is_skipped(name: &str) -> bool {
    matches!(
        name,
        "head"
            | "script"
            | "style"
            | "template"
            | "noscript"
            | "iframe"
            | "object"
            | "embed"
            | "svg"
            | "math"
            | "canvas"
            | "select"
            | "option"
            | "datalist"
            | "textarea"
            | "button"
    )
}

/// Elements that start a new paragraph.
pub(crate) fn is_block(name: &str) -> bool {
    matches!(
        name,
        "html"
            | "body"
            | "p"
            | "div"
            | "li"
            | "ul"
            | "ol"
            | "dl"
            | "dt"
            | "dd"
            | "table"
            | "caption"
            | "thead"
            | "tbody"
            | "tfoot"
            | "tr"
            | "td"
            | "th"
            | "h1"
            | "h2"
            | "h3"
            | "h4"
            | "h5"
            | "h6"
            | "header"
            | "footer"
            | "article"
            | "section"
            | "nav"
            | "aside"
            | "main"
            | "blockquote"
            | "pre"
            | "address"
            | "figure"
            | "figcaption"
            | "form"
            | "fieldset"
            | "legend"
            | "hr"
            | "center"
            | "details"
            | "summary"
            | "hgroup"
            | "menu"
    )
}

pub(crate) fn is_heading(name: &str) -> bool {
    matches!(name, "h1" | "h2" | "h3" | "h4" | "h5" | "h6")
}

/// The element name of a node, if it is an element.
pub(crate) fn name_of<'a>(node: &NodeRef<'a, Node>) -> Option<&'a str> {
    node.value().as_element().map(|e| e.name())
}

/// Per-article state of the walk.
struct OpenArticle {
    id: NodeId,
    has_inner: bool,
    heading: Option<NodeId>,
    item: Option<NodeId>,
}

#[derive(Default)]
struct Walk {
    paras: Vec<Para>,
    buf: String,
    /// `buf` holds something other than whitespace.
    has_text: bool,
    current: Option<Para>,
    /// The text of `current` seen so far is all emphasized / all in links.
    all_emphasized: bool,
    all_link: bool,
    /// Open elements that make text bold (including headings) or a link.
    emphasis: Vec<NodeId>,
    links: Vec<NodeId>,
    /// Anchors met since the last paragraph started, for the next one.
    pending_anchors: Vec<(&'static str, u32)>,
    headings: Vec<NodeId>,
    /// The bottom entry stands for "outside any article".
    articles: Vec<OpenArticle>,
}

impl Walk {
    fn flush(&mut self) {
        if let Some(mut para) = self.current.take() {
            para.text = normalize_paragraph(&self.buf);
            para.emphasized = self.all_emphasized;
            para.link = self.all_link;
            if !para.text.is_empty() {
                self.paras.push(para);
            } else {
                // An empty paragraph hands its anchors on to the next one.
                self.pending_anchors.extend(para.anchors);
            }
            self.buf.clear();
            self.has_text = false;
        }
    }
    fn push(&mut self, text: &str) {
        if self.current.is_none() {
            let top = self.articles.last();
            let mut anchors = std::mem::take(&mut self.pending_anchors);
            anchors.truncate(MAX_ANCHORS);
            self.current = Some(Para {
                text: String::new(),
                article: top.filter(|_| self.articles.len() > 1).map(|a| a.id),
                item: top.and_then(|a| a.item),
                heading: self.headings.last().copied(),
                emphasized: false,
                link: false,
                anchors,
            });
            self.all_emphasized = true;
            self.all_link = true;
        }
        if text.chars().any(|c| !c.is_whitespace()) {
            self.has_text = true;
            self.all_emphasized &= !self.emphasis.is_empty();
            self.all_link &= !self.links.is_empty();
        }
        self.buf.push_str(text);
    }
    fn anchor(&mut self, a: (&'static str, u32)) {
        match self.current.as_mut() {
            Some(p) => {
                if p.anchors.len() < MAX_ANCHORS {
                    p.anchors.push(a);
                }
            }
            None => {
                if self.pending_anchors.len() < MAX_ANCHORS {
                    self.pending_anchors.push(a);
                }
            }
        }
    }
    /// Index the current paragraph will have if it is kept.
    fn end(&self) -> usize {
        self.paras.len() + usize::from(self.has_text)
    }
}

/// True for an element that makes its text bold.
fn is_bold(el: &scraper::node::Element) -> bool {
    matches!(el.name(), "b" | "strong")
        || is_heading(el.name())
        || el.attr("style").is_some_and(|s| {
            let s = s.to_ascii_lowercase().replace(' ', "");
            s.contains("font-weight:bold")
                || s.contains("font-weight:700")
                || s.contains("font-weight:800")
                || s.contains("font-weight:900")
        })
}

/// True for an element that makes its text not bold (inside a bold one).
fn is_unbold(el: &scraper::node::Element) -> bool {
    el.attr("style").is_some_and(|s| {
        let s = s.to_ascii_lowercase().replace(' ', "");
        s.contains("font-weight:normal") || s.contains("font-weight:400")
    })
}

/// Parses `source` as an HTML document and extracts its paragraphs, element spans and
/// leaf articles in one walk.
pub(crate) fn html(source: &str) -> HtmlDoc {
    let html = Html::parse_document(source);
    let mut w = Walk::default();
    let root_id = html.tree.root().id();
    w.articles.push(OpenArticle {
        id: root_id,
        has_inner: false,
        heading: None,
        item: None,
    });
    let mut spans: Vec<Span> = Vec::new();
    let mut open_spans: Vec<usize> = Vec::new();
    let mut leaf_articles = Vec::new();
    let mut skip_until: Option<NodeId> = None;
    let mut pre_depth = 0usize;
    // Elements that switch bold off inside bold ones, with the emphasis stack they hid.
    let mut unbold: Vec<(NodeId, Vec<NodeId>)> = Vec::new();
    for edge in html.tree.root().traverse() {
        match edge {
            Edge::Open(node) => {
                if skip_until.is_some() {
                    continue;
                }
                match node.value() {
                    Node::Element(el) => {
                        let name = el.name();
                        if is_skipped(name) {
                            skip_until = Some(node.id());
                            continue;
                        }
                        if name == "br" {
                            w.flush();
                            continue;
                        }
                        if is_block(name) {
                            w.flush();
                            if name == "pre" {
                                pre_depth += 1;
                            }
                        }
                        for attr in ["name", "id"] {
                            if let Some(a) = el.attr(attr).and_then(structural_anchor) {
                                w.anchor(a);
                            }
                        }
                        if is_bold(el) {
                            w.emphasis.push(node.id());
                        } else if is_unbold(el) && !w.emphasis.is_empty() {
                            unbold.push((node.id(), std::mem::take(&mut w.emphasis)));
                        }
                        if name == "a" && el.attr("href").is_some() {
                            w.links.push(node.id());
                        }
                        if is_heading(name) {
                            w.headings.push(node.id());
                            if let Some(a) = w.articles.last_mut() {
                                a.heading.get_or_insert(node.id());
                            }
                        }
                        if name == "li" && node.parent().and_then(|p| name_of(&p)) == Some("ol") {
                            if let Some(a) = w.articles.last_mut() {
                                a.item.get_or_insert(node.id());
                            }
                        }
                        if name == "article" {
                            if let Some(a) = w.articles.last_mut() {
                                a.has_inner = true;
                            }
                            w.articles.push(OpenArticle {
                                id: node.id(),
                                has_inner: false,
                                heading: None,
                                item: None,
                            });
                        }
                        open_spans.push(spans.len());
                        spans.push(Span {
                            id: node.id(),
                            depth: open_spans.len(),
                            first: w.paras.len(),
                            end: 0,
                        });
                    }
                    Node::Text(t) => {
                        if pre_depth > 0 {
                            // Inside <pre>, line breaks are paragraph breaks.
                            let mut lines = t.split('\n');
                            if let Some(first) = lines.next() {
                                w.push(first);
                            }
                            for line in lines {
                                w.flush();
                                w.push(line);
                            }
                        } else {
                            w.push(t);
                        }
                    }
                    _ => {}
                }
            }
            Edge::Close(node) => {
                if let Some(id) = skip_until {
                    if id == node.id() {
                        skip_until = None;
                    }
                    continue;
                }
                let Some(name) = name_of(&node) else { continue };
                if name == "br" {
                    continue;
                }
                if is_block(name) {
                    w.flush();
                    if name == "pre" {
                        pre_depth = pre_depth.saturating_sub(1);
                    }
                }
                if is_heading(name) && w.headings.last() == Some(&node.id()) {
                    w.headings.pop();
                }
                if w.emphasis.last() == Some(&node.id()) {
                    w.emphasis.pop();
                }
                if unbold.last().map(|(id, _)| *id) == Some(node.id()) {
                    if let Some((_, hidden)) = unbold.pop() {
                        w.emphasis = hidden;
                    }
                }
                if w.links.last() == Some(&node.id()) {
                    w.links.pop();
                }
                if name == "li" {
                    if let Some(a) = w.articles.last_mut() {
                        if a.item == Some(node.id()) {
                            a.item = None;
                        }
                    }
                }
                if name == "article" && w.articles.len() > 1 {
                    if let Some(a) = w.articles.pop() {
                        if !a.has_inner {
                            leaf_articles.push(LeafArticle {
                                id: a.id,
                                heading: a.heading,
                            });
                        }
                    }
                }
                if let Some(k) = open_spans.pop() {
                    spans[k].end = w.end();
                }
            }
        }
    }
    w.flush();
    HtmlDoc {
        html,
        paras: w.paras,
        spans,
        leaf_articles,
    }
}

/// Plain text: one paragraph per line (`\n`, `\r\n`, `\r`, U+2028, U+2029).
pub(crate) fn text(source: &str) -> Vec<Para> {
    source
        .split(['\n', '\r', '\u{2028}', '\u{2029}'])
        .map(normalize_paragraph)
        .filter(|t| !t.is_empty())
        .map(Para::plain)
        .collect()
}

/// The chain from the root down to `node`, both included.
pub(crate) fn path_from_root(html: &Html, node: NodeId) -> Vec<NodeId> {
    let mut path: Vec<NodeId> = match html.tree.get(node) {
        Some(n) => n.ancestors().map(|a| a.id()).collect(),
        None => Vec::new(),
    };
    path.reverse();
    path.push(node);
    path
}

#[cfg(test)]
mod tests {
    use super::*;

    fn texts(src: &str) -> Vec<String> {
        html(src).paras.into_iter().map(|p| p.text).collect()
    }

    #[test]
    fn blocks_and_breaks_split_inline_elements_do_not() {
        let t = texts(
            "<html><head><title>T</title><script>var x='Điều 9.';</script></head><body>\
             <p>QUỐC HỘI<br>-------</p><p>t<span>ỉ</span>nh <b>Bạc</b>&nbsp;Liêu</p>\
             <!-- Điều 7. --><div>a<p>b</p>c</div><select><option>Điều 8.</option></select>\
             <pre>x\ny</pre></body></html>",
        );
        assert_eq!(
            t,
            [
                "QUỐC HỘI",
                "-------",
                "tỉnh Bạc Liêu",
                "a",
                "b",
                "c",
                "x",
                "y"
            ]
        );
    }

    #[test]
    fn emphasis_links_and_anchors_are_recorded() {
        let doc = html(
            "<p><a name=dieu_5><strong><span>Điều 5 Chính sách</span></strong></a></p>\
             <p><b>Điều</b> 6 Một</p>\
             <p style='font-weight: bold'>Điều 7 <span style='font-weight:normal'>thường</span></p>\
             <h3>Chương 2 Tên</h3>\
             <a id='Dieu-8'></a><p>Điều 8 Tám</p>\
             <p><a href='#dieu_9'>Điều 9 Chín</a></p>\
             <p>Xem <a href='#dieu_9'>Điều 9</a></p>",
        );
        type Seen<'a> = (&'a str, bool, bool, Vec<(&'static str, u32)>);
        let got: Vec<Seen<'_>> = doc
            .paras
            .iter()
            .map(|p| (p.text.as_str(), p.emphasized, p.link, p.anchors.clone()))
            .collect();
        assert_eq!(
            got,
            [
                ("Điều 5 Chính sách", true, false, vec![("dieu", 5)]),
                ("Điều 6 Một", false, false, vec![]),
                ("Điều 7 thường", false, false, vec![]),
                ("Chương 2 Tên", true, false, vec![]),
                ("Điều 8 Tám", false, false, vec![("dieu", 8)]),
                ("Điều 9 Chín", false, true, vec![]),
                ("Xem Điều 9", false, false, vec![]),
            ]
        );
        assert_eq!(structural_anchor("chuong_12"), Some(("chuong", 12)));
        assert_eq!(structural_anchor("dieu_1_name"), None);
        assert_eq!(structural_anchor("khoan_2_9"), None);
    }

    #[test]
    fn text_lines() {
        let p = text("a\r\n\r\n  b  c\rd\u{2028}e");
        let t: Vec<_> = p.into_iter().map(|p| p.text).collect();
        assert_eq!(t, ["a", "b c", "d", "e"]);
    }
}
