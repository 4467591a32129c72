//! Paragraphs out of the input: one walk over the html5ever DOM breaks text at block
//! elements and `<br>`, skips what is not rendered text (head, scripts, styles, form
//! controls, comments) and records element spans and article context; plain text: lines.

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
}

impl Para {
    pub(crate) fn plain(text: String) -> Self {
        Self {
            text,
            article: None,
            item: None,
            heading: None,
        }
    }
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
    /// The charset the page declares in `<meta>`, if any.
    pub declared_charset: Option<String>,
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
    removed: usize,
    headings: Vec<NodeId>,
    /// The bottom entry stands for "outside any article".
    articles: Vec<OpenArticle>,
}

impl Walk {
    fn flush(&mut self) {
        if let Some(mut para) = self.current.take() {
            para.text = normalize_paragraph(&self.buf, &mut self.removed);
            if !para.text.is_empty() {
                self.paras.push(para);
            }
            self.buf.clear();
            self.has_text = false;
        }
    }
    fn push(&mut self, text: &str) {
        if self.current.is_none() {
            let top = self.articles.last();
            self.current = Some(Para {
                text: String::new(),
                article: top.filter(|_| self.articles.len() > 1).map(|a| a.id),
                item: top.and_then(|a| a.item),
                heading: self.headings.last().copied(),
            });
        }
        self.has_text = self.has_text || text.chars().any(|c| !c.is_whitespace());
        self.buf.push_str(text);
    }
    /// Index the current paragraph will have if it is kept.
    fn end(&self) -> usize {
        self.paras.len() + usize::from(self.has_text)
    }
}

/// Parses `source` as an HTML document and extracts its paragraphs, element spans and
/// leaf articles in one walk. Returns the document and the number of control characters
/// removed.
pub(crate) fn html(source: &str) -> (HtmlDoc, usize) {
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
    let mut declared_charset = None;
    for edge in html.tree.root().traverse() {
        match edge {
            Edge::Open(node) => {
                if declared_charset.is_none() {
                    declared_charset = meta_charset(&node);
                }
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
    let removed = w.removed;
    (
        HtmlDoc {
            html,
            paras: w.paras,
            spans,
            leaf_articles,
            declared_charset,
        },
        removed,
    )
}

/// The charset a `<meta charset>` or `<meta http-equiv content="…; charset=…">` declares.
fn meta_charset(node: &NodeRef<'_, Node>) -> Option<String> {
    let el = node.value().as_element()?;
    if el.name() != "meta" {
        return None;
    }
    if let Some(c) = el.attr("charset") {
        return Some(c.trim().to_ascii_lowercase());
    }
    let content = el.attr("content")?.to_ascii_lowercase();
    let at = content.find("charset=")?;
    let value = content[at + "charset=".len()..]
        .trim_matches(|c: char| c.is_whitespace() || c == '"' || c == '\'')
        .split(|c: char| c == ';' || c.is_whitespace())
        .next()?
        .to_string();
    (!value.is_empty()).then_some(value)
}

/// Plain text: one paragraph per line (`\n`, `\r\n`, `\r`, U+2028, U+2029).
/// Returns the paragraphs and the number of control characters removed.
pub(crate) fn text(source: &str) -> (Vec<Para>, usize) {
    let mut removed = 0;
    let paras = source
        .split(['\n', '\r', '\u{2028}', '\u{2029}'])
        .map(|line| normalize_paragraph(line, &mut removed))
        .filter(|t| !t.is_empty())
        .map(Para::plain)
        .collect();
    (paras, removed)
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
        html(src).0.paras.into_iter().map(|p| p.text).collect()
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
    fn declared_charset_is_read() {
        let (doc, _) = html(
            "<html><head><meta http-equiv=\"Content-Type\" content=\"text/html; charset=windows-1258\"></head><body>x</body></html>",
        );
        assert_eq!(doc.declared_charset.as_deref(), Some("windows-1258"));
        let (doc, _) = html("<meta charset=UTF-8><p>x");
        assert_eq!(doc.declared_charset.as_deref(), Some("utf-8"));
    }

    #[test]
    fn text_lines() {
        let (p, _) = text("a\r\n\r\n  b  c\rd\u{2028}e");
        let t: Vec<_> = p.into_iter().map(|p| p.text).collect();
        assert_eq!(t, ["a", "b c", "d", "e"]);
    }
}
