//! Vietnamese legal structure: Phần / Chương / Mục headings, `Điều N.` articles, numbered
//! clauses (khoản) and lettered points (điểm), recognized at the start of a paragraph;
//! then the paragraphs are assembled into units. Points never start a unit. A heading
//! written as published without punctuation (`Điều 5 Chính sách …`) counts only when the
//! paragraph stands as a heading (bold, a heading element, or an anchor such as
//! `dieu_5`); a link is never a heading, and a table of contents never gives articles.

use std::collections::BTreeMap;

use crate::assemble::{Assembly, FoundArticle};
use crate::extract::Para;
use crate::report::StructureHeading;
use crate::text::{excerpt, fold, is_upper_title, roman, slug};

/// The Vietnamese alphabet as used for points, in order (no f, j, w, z).
const POINT_LETTERS: [char; 23] = [
    'a', 'b', 'c', 'd', 'đ', 'e', 'g', 'h', 'i', 'k', 'l', 'm', 'n', 'o', 'p', 'q', 'r', 's', 't',
    'u', 'v', 'x', 'y',
];

/// The levels above articles.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Level {
    Part,
    Chapter,
    Section,
}

impl Level {
    fn word(self) -> &'static str {
        match self {
            Level::Part => "Phần",
            Level::Chapter => "Chương",
            Level::Section => "Mục",
        }
    }
    fn slug(self) -> &'static str {
        match self {
            Level::Part => "phan",
            Level::Chapter => "chuong",
            Level::Section => "muc",
        }
    }
    fn code(self) -> &'static str {
        match self {
            Level::Part => "part",
            Level::Chapter => "chapter",
            Level::Section => "section",
        }
    }
    /// The word of its anchors (`chuong_2`).
    fn anchor(self) -> &'static str {
        match self {
            Level::Part => "phan",
            Level::Chapter => "chuong",
            Level::Section => "muc",
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Heading {
    pub number: u32,
    /// The number as written: `II`, `3`, `THỨ NHẤT`.
    pub label: String,
    pub title: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct ArticleHead {
    pub number: u32,
    pub suffix: Option<char>,
    /// What follows `Điều N.` in the same paragraph.
    pub rest: String,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Kind {
    Structure(Level, Heading),
    Article(ArticleHead),
    Clause(u32),
    Point(char),
    /// Adoption formula, `Nơi nhận`, or a signature line (`TM.`, `KT.` …).
    Closing,
    Text,
}

/// How a paragraph is set, as far as headings go.
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct Setting<'a> {
    /// All its text is bold or in a heading element.
    pub emphasized: bool,
    /// All its text is a link.
    pub link: bool,
    /// Its structural anchors.
    pub anchors: &'a [(&'static str, u32)],
}

impl Setting<'_> {
    /// True if the paragraph stands as the heading `word` `number`: bold, a heading
    /// element, or anchored as `word_number`.
    fn stands_as(&self, word: &str, number: u32) -> bool {
        self.emphasized || self.anchors.iter().any(|(w, n)| *w == word && *n == number)
    }
}

impl<'a> From<&'a Para> for Setting<'a> {
    fn from(p: &'a Para) -> Self {
        Setting {
            emphasized: p.emphasized,
            link: p.link,
            anchors: &p.anchors,
        }
    }
}

/// Classifies one paragraph by how it starts and how it is set.
pub(crate) fn classify(p: &Para) -> Kind {
    classify_set(&p.text, Setting::from(p))
}

/// Classifies one normalized paragraph by how it starts, given how it is set.
pub(crate) fn classify_set(text: &str, setting: Setting<'_>) -> Kind {
    if setting.link {
        // A table of contents or a cross-reference: never structure.
        return Kind::Text;
    }
    if let Some((word, after)) = text.split_once(' ') {
        let level = match fold(word).as_str() {
            "phần" => Some(Level::Part),
            "chương" => Some(Level::Chapter),
            "mục" => Some(Level::Section),
            "điều" => {
                if let Some(a) = article(after, setting) {
                    return Kind::Article(a);
                }
                None
            }
            _ => None,
        };
        if let Some(level) = level {
            if let Some(h) = structure(level, after, setting) {
                return Kind::Structure(level, h);
            }
        }
    }
    if let Some(n) = clause(text) {
        return Kind::Clause(n);
    }
    if let Some(c) = point(text) {
        return Kind::Point(c);
    }
    if is_closing(text) {
        return Kind::Closing;
    }
    Kind::Text
}

const HEADING_PUNCT: [char; 5] = ['.', ':', '-', '–', '—'];

fn structure(level: Level, after: &str, setting: Setting<'_>) -> Option<Heading> {
    let end = after
        .find(|c: char| c == ' ' || HEADING_PUNCT.contains(&c))
        .unwrap_or(after.len());
    let tok = &after[..end];
    let (number, label, rest) = if let Some(n) = arabic(tok, 3) {
        (n, tok.to_string(), &after[end..])
    } else if let Some(n) = roman(tok) {
        (n, tok.to_string(), &after[end..])
    } else if level == Level::Part && fold(tok) == "thứ" {
        let (n, used) = ordinal_words(&after[end..])?;
        let label_end = end + used;
        (n, after[..label_end].to_string(), &after[label_end..])
    } else {
        return None;
    };
    let title = heading_rest(rest, setting.stands_as(level.anchor(), number))?;
    Some(Heading {
        number,
        label,
        title,
    })
}

/// What may follow a heading number: nothing, punctuation and any title, a title in
/// capitals, or — when the paragraph stands as a heading — a title starting with a
/// capital letter. `None` means "not a heading" (e.g. `Mục 2 của Chương này …`).
fn heading_rest(rest: &str, stands: bool) -> Option<Option<String>> {
    let r = rest.trim_start();
    if r.is_empty() {
        return Some(None);
    }
    if r.starts_with(HEADING_PUNCT) {
        let t = r.trim_start_matches(|c: char| c == ' ' || HEADING_PUNCT.contains(&c));
        return Some((!t.is_empty()).then(|| t.to_string()));
    }
    (is_upper_title(r) || (stands && starts_capital(r))).then(|| Some(r.to_string()))
}

fn starts_capital(s: &str) -> bool {
    s.chars().next().is_some_and(char::is_uppercase)
}

/// `thứ nhất`, `thứ hai` … `thứ mười chín`: the value and the bytes of `s` used.
fn ordinal_words(s: &str) -> Option<(u32, usize)> {
    fn unit(w: &str) -> Option<u32> {
        Some(match w {
            "nhất" | "một" | "mốt" => 1,
            "hai" => 2,
            "ba" => 3,
            "tư" | "bốn" => 4,
            "năm" | "lăm" => 5,
            "sáu" => 6,
            "bảy" => 7,
            "tám" => 8,
            "chín" => 9,
            _ => return None,
        })
    }
    let (w1, end1) = word_at(s, 0)?;
    let w1 = fold(w1);
    if w1 == "mười" {
        if let Some((w2, end2)) = word_at(s, end1) {
            if let Some(u) = unit(&fold(w2)).filter(|_| fold(w2) != "nhất") {
                return Some((10 + u, end2));
            }
        }
        return Some((10, end1));
    }
    Some((unit(&w1)?, end1))
}

/// The next word (letters and digits) at or after `from` (skipping spaces only) and the
/// byte offset where it ends.
fn word_at(s: &str, from: usize) -> Option<(&str, usize)> {
    let rest = s.get(from..)?;
    let skipped = rest.len() - rest.trim_start_matches(' ').len();
    let start = from + skipped;
    let tail = &s[start..];
    let len = tail
        .find(|c: char| !c.is_alphanumeric())
        .unwrap_or(tail.len());
    (len > 0).then(|| (&tail[..len], start + len))
}

fn arabic(tok: &str, max_digits: usize) -> Option<u32> {
    if tok.is_empty() || tok.len() > max_digits || !tok.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    tok.parse().ok().filter(|n| *n > 0)
}

fn article(after: &str, setting: Setting<'_>) -> Option<ArticleHead> {
    let end = after
        .find(|c: char| !c.is_ascii_digit())
        .unwrap_or(after.len());
    let number = arabic(&after[..end], 4)?;
    let mut rest = &after[end..];
    let mut suffix = None;
    let mut it = rest.chars();
    if let Some(c) = it.next() {
        if POINT_LETTERS.contains(&c) && !it.next().is_some_and(char::is_alphanumeric) {
            suffix = Some(c);
            rest = &rest[c.len_utf8()..];
        }
    }
    let r = rest.trim_start();
    if r.is_empty() {
        return Some(ArticleHead {
            number,
            suffix,
            rest: String::new(),
        });
    }
    let Some(r) = r.strip_prefix(['.', ':']) else {
        // As published: `Điều 5 Chính sách …` (or `Điều 5 - Chính sách …`), when the
        // paragraph stands as a heading; otherwise a cross-reference such as
        // `Điều 5 Luật này …` opening a sentence.
        let title = r.trim_start_matches(|c: char| c == ' ' || HEADING_PUNCT.contains(&c));
        let spaced = rest.starts_with(' ');
        return (spaced && starts_capital(title) && setting.stands_as("dieu", number)).then(|| {
            ArticleHead {
                number,
                suffix,
                rest: title.trim().to_string(),
            }
        });
    };
    if r.starts_with(|c: char| c.is_ascii_digit()) {
        // `Điều 1.2 …` is a cross-reference, not a heading.
        return None;
    }
    Some(ArticleHead {
        number,
        suffix,
        rest: r.trim().to_string(),
    })
}

fn clause(text: &str) -> Option<u32> {
    let end = text
        .find(|c: char| !c.is_ascii_digit())
        .unwrap_or(text.len());
    let n = arabic(&text[..end], 3)?;
    let rest = text[end..].strip_prefix('.')?;
    (rest.is_empty() || rest.starts_with(' ')).then_some(n)
}

fn point(text: &str) -> Option<char> {
    let mut it = text.chars();
    let c = it.next()?;
    if !POINT_LETTERS.contains(&c) || it.next()? != ')' {
        return None;
    }
    matches!(it.next(), None | Some(' ')).then_some(c)
}

fn point_index(c: char) -> usize {
    POINT_LETTERS.iter().position(|p| *p == c).unwrap_or(0)
}

/// The closing block of a Vietnamese legal document: the adoption formula (`Luật này đã
/// được Quốc hội … thông qua …`), the recipients list (`Nơi nhận:`) or a signature
/// authority line (`TM. CHÍNH PHỦ`, `KT. CHỦ TỊCH`, …).
fn is_closing(text: &str) -> bool {
    let f = fold(text);
    if let Some(r) = f.strip_prefix("nơi nhận") {
        if r.is_empty() || r.starts_with([':', ' ']) {
            return true;
        }
    }
    const ENACTED: [&str; 5] = [
        "hiến pháp này",
        "bộ luật này",
        "luật này",
        "pháp lệnh này",
        "nghị quyết này",
    ];
    if ENACTED.iter().any(|p| f.starts_with(p)) && f.contains("đã được") && f.contains("thông qua")
    {
        return true;
    }
    ["TM. ", "KT. ", "TL. ", "TUQ. ", "Q. "]
        .iter()
        .any(|p| text.strip_prefix(p).is_some_and(is_upper_title))
}

/// The national motto that heads every Vietnamese legal document.
pub(crate) fn is_motto(text: &str) -> bool {
    let f = fold(text);
    f.starts_with("cộng hòa xã hội chủ nghĩa việt nam")
        || f.starts_with("cộng hoà xã hội chủ nghĩa việt nam")
}

pub(crate) fn is_article_heading(p: &Para) -> bool {
    matches!(classify(p), Kind::Article(_))
}

/// The number of a paragraph that opens like a published article heading without
/// punctuation (`Điều 5 Chính sách …`) whatever its setting.
fn bare_article_number(text: &str) -> Option<u32> {
    let (word, after) = text.split_once(' ')?;
    if fold(word) != "điều" {
        return None;
    }
    let set = Setting {
        emphasized: true,
        ..Setting::default()
    };
    article(after, set).map(|a| a.number)
}

/// Paragraphs that form a table of contents: a run of two or more article headings
/// (with structure headings and their titles between them; as links or not) and nothing
/// else, every one of whose articles is found again after the run.
fn table_of_contents(paras: &[Para], kinds: &[Kind]) -> Vec<bool> {
    // Entries as they would read without their links, set as headings.
    let entries: Vec<Kind> = paras
        .iter()
        .zip(kinds)
        .map(|(p, k)| match k {
            Kind::Article(_) | Kind::Structure(..) => k.clone(),
            _ => classify_set(
                &p.text,
                Setting {
                    emphasized: true,
                    ..Setting::default()
                },
            ),
        })
        .collect();
    let kinds = &entries[..];
    let label = |k: &Kind| match k {
        Kind::Article(h) => Some((h.number, h.suffix)),
        _ => None,
    };
    // Where each article label is found last.
    let mut last: BTreeMap<(u32, Option<char>), usize> = BTreeMap::new();
    for (i, k) in kinds.iter().enumerate() {
        if let Some(l) = label(k) {
            last.insert(l, i);
        }
    }
    let mut toc = vec![false; kinds.len()];
    let mut i = 0;
    while i < kinds.len() {
        if !matches!(kinds[i], Kind::Article(_) | Kind::Structure(..)) {
            i += 1;
            continue;
        }
        // The longest run of entries from i whose every article is found again after
        // the run (the condition, once false, stays false as the run grows), ending on
        // an article: the headings after it are the document's own.
        let mut j = i;
        let mut earliest_last = usize::MAX;
        let mut articles = 0;
        let mut end = i;
        while j < kinds.len() {
            let step = match &kinds[j] {
                Kind::Article(_) => 1,
                Kind::Structure(_, h)
                    if h.title.is_none()
                        && kinds.get(j + 1) == Some(&Kind::Text)
                        && looks_like_title(&paras[j + 1].text) =>
                {
                    2
                }
                Kind::Structure(..) => 1,
                _ => break,
            };
            if let Some(l) = label(&kinds[j]) {
                earliest_last = earliest_last.min(last.get(&l).copied().unwrap_or(0));
                if earliest_last < j + 1 {
                    break;
                }
                articles += 1;
                end = j + 1;
            }
            j += step;
        }
        if articles >= 2 {
            toc[i..end].iter_mut().for_each(|t| *t = true);
            i = end;
        } else {
            i = j.max(i + 1);
        }
    }
    toc
}

/// The text after `Điều N.` is a title when it is short and not a sentence.
fn article_title(rest: &str) -> Option<&str> {
    let last = rest.chars().last()?;
    (rest.chars().count() <= 250 && !matches!(last, '.' | ';' | ',' | ':' | '?' | '!' | '…'))
        .then_some(rest)
}

/// The paragraph after an untitled Phần/Chương/Mục heading is its title when it is in
/// capitals, or short and not a sentence.
fn looks_like_title(text: &str) -> bool {
    is_upper_title(text)
        || (text.chars().count() <= 200 && !text.ends_with(['.', ';', ',', ':', '?', '!', '…']))
}

#[derive(Debug, Default)]
struct Levels {
    part: Option<(u32, String)>,
    chapter: Option<(u32, String)>,
    section: Option<(u32, String)>,
}

impl Levels {
    fn set(&mut self, level: Level, h: &Heading) {
        let v = Some((h.number, h.label.clone()));
        match level {
            Level::Part => {
                self.part = v;
                self.chapter = None;
                self.section = None;
            }
            Level::Chapter => {
                self.chapter = v;
                self.section = None;
            }
            Level::Section => self.section = v,
        }
    }
    fn each(&self) -> impl Iterator<Item = (Level, &(u32, String))> {
        [
            (Level::Part, &self.part),
            (Level::Chapter, &self.chapter),
            (Level::Section, &self.section),
        ]
        .into_iter()
        .filter_map(|(l, v)| v.as_ref().map(|v| (l, v)))
    }
    /// `phan-1/chuong-2/muc-3/`
    fn prefix(&self) -> String {
        self.each()
            .map(|(l, (n, _))| format!("{}-{n}/", l.slug()))
            .collect()
    }
    /// `Chương II, Mục 3`
    fn label(&self) -> String {
        self.each()
            .map(|(l, (_, label))| format!("{} {label}", l.word()))
            .collect::<Vec<_>>()
            .join(", ")
    }
}

#[derive(Debug)]
struct OpenArticle {
    label: String,
    path: String,
    unit: usize,
    clause: Option<(u32, usize)>,
    last_point: Option<char>,
}

impl OpenArticle {
    fn current_unit(&self) -> usize {
        self.clause.map_or(self.unit, |(_, u)| u)
    }
    fn place(&self) -> String {
        match self.clause {
            Some((n, _)) => format!("Điều {}, khoản {n}", self.label),
            None => format!("Điều {}", self.label),
        }
    }
}

/// Cuts Vietnamese legal paragraphs into units (see the crate documentation for the rules).
pub(crate) fn assemble(paras: &[Para]) -> Assembly {
    let mut a = Assembly::new(paras.len());
    let mut levels = Levels::default();
    let mut open: Option<OpenArticle> = None;
    let mut pending_title: Option<usize> = None;
    let mut closed: Option<String> = None;
    let mut seen_heading = false;
    let mut preamble: Option<usize> = None;
    let kinds: Vec<Kind> = paras.iter().map(classify).collect();
    let toc = table_of_contents(paras, &kinds);
    if let Some(first) = toc.iter().position(|t| *t) {
        let n = toc.iter().filter(|t| **t).count();
        a.notes.push(format!(
            "a table of contents ({n} paragraph(s) from paragraph {}) lists articles found again after it: not cut, listed as text in no unit",
            first + 1
        ));
    }

    for (i, (p, kind)) in paras.iter().zip(kinds).enumerate() {
        let text = p.text.as_str();
        if toc[i] {
            a.place_unassigned(
                i,
                "table of contents (its articles follow)",
                text,
                matches!(kind, Kind::Article(_)),
            );
            continue;
        }
        if !matches!(kind, Kind::Article(_)) {
            let expected = a.articles.last().map_or(1, |x| x.number + 1);
            if let Some(n) = bare_article_number(text).filter(|n| *n == expected) {
                a.notes.push(format!(
                    "paragraph {} opens like the heading of Điều {n} (\"{}\") but does not stand as one (not bold, no heading element, no anchor dieu_{n}): kept as text",
                    i + 1,
                    excerpt(text, 60)
                ));
            } else if let Some((_, n)) = p.anchors.iter().find(|(w, _)| *w == "dieu") {
                a.notes.push(format!(
                    "paragraph {} carries the anchor dieu_{n} but is not an article heading: \"{}\"",
                    i + 1,
                    excerpt(text, 60)
                ));
            }
        }
        if let Some(location) = &closed {
            a.place_unassigned(i, location, text, matches!(kind, Kind::Article(_)));
            continue;
        }
        if let Some(h) = pending_title.take() {
            if kind == Kind::Text && looks_like_title(text) {
                a.headings[h].title = Some(text.to_string());
                a.place_heading(i);
                continue;
            }
        }
        match (kind, open.as_mut()) {
            (Kind::Structure(level, h), _) => {
                open = None;
                seen_heading = true;
                levels.set(level, &h);
                match level {
                    Level::Part => a.tally.parts += 1,
                    Level::Chapter => a.tally.chapters += 1,
                    Level::Section => a.tally.sections += 1,
                }
                if h.title.is_none() {
                    pending_title = Some(a.headings.len());
                }
                a.headings.push(StructureHeading {
                    level: level.code().to_string(),
                    label: format!("{} {}", level.word(), h.label),
                    number: h.number,
                    title: h.title,
                    path: levels.prefix().trim_end_matches('/').to_string(),
                });
                a.place_heading(i);
            }
            (Kind::Article(h), _) => {
                seen_heading = true;
                let label = match h.suffix {
                    Some(c) => format!("{}{c}", h.number),
                    None => h.number.to_string(),
                };
                let title = match article_title(&h.rest) {
                    Some(t) => format!("Điều {label}. {t}"),
                    None => format!("Điều {label}"),
                };
                let path = format!("{}dieu-{}", levels.prefix(), slug(&label));
                let unit = a.add_unit(path, title, "article");
                a.place_in_unit(i, unit);
                a.articles.push(FoundArticle {
                    number: h.number,
                    label: label.clone(),
                    plain: h.suffix.is_none(),
                });
                open = Some(OpenArticle {
                    label,
                    path: a.path(unit).to_string(),
                    unit,
                    clause: None,
                    last_point: None,
                });
            }
            (Kind::Closing, _) if !a.articles.is_empty() => {
                let last = a.articles.last().map(|x| x.label.as_str()).unwrap_or("");
                let location = format!(
                    "after Điều {last}: closing formula, signatures and everything attached after them"
                );
                open = None;
                a.place_unassigned(i, &location, text, false);
                a.closing = Some(location.clone());
                closed = Some(location);
            }
            (Kind::Clause(n), Some(art)) => {
                let last = art.clause.map_or(0, |(c, _)| c);
                if n > last {
                    if n != last + 1 {
                        a.notes.push(format!(
                            "Điều {}: clause {n} follows {}",
                            art.label,
                            if last == 0 {
                                "the article heading (no clause 1)".to_string()
                            } else {
                                format!("clause {last}")
                            }
                        ));
                    }
                    let unit = a.add_unit(
                        format!("{}/khoan-{n}", art.path),
                        format!("Điều {}, khoản {n}", art.label),
                        "clause",
                    );
                    a.tally.clauses += 1;
                    art.clause = Some((n, unit));
                    art.last_point = None;
                    a.place_in_unit(i, unit);
                } else {
                    a.notes.push(format!(
                        "Điều {}: a paragraph numbered \"{n}.\" after clause {last} is kept as text of {}",
                        art.label,
                        art.place()
                    ));
                    a.place_in_unit(i, art.current_unit());
                }
            }
            (Kind::Point(c), Some(art)) => {
                a.tally.points += 1;
                let expected = art.last_point.map_or(0, |l| point_index(l) + 1);
                if point_index(c) != expected {
                    a.notes.push(format!(
                        "{}: point {c}) follows {}",
                        art.place(),
                        art.last_point
                            .map_or("no earlier point".to_string(), |l| format!("point {l})"))
                    ));
                }
                art.last_point = Some(c);
                a.place_in_unit(i, art.current_unit());
            }
            (_, art) => {
                if let Some(art) = art {
                    a.place_in_unit(i, art.current_unit());
                } else if !seen_heading {
                    let unit = *preamble.get_or_insert_with(|| {
                        a.add_unit("loi-noi-dau".into(), "Lời nói đầu".into(), "preamble")
                    });
                    a.place_in_unit(i, unit);
                } else {
                    let location = format!(
                        "after the heading of {}, before its first article",
                        levels.label()
                    );
                    a.place_unassigned(i, &location, text, false);
                }
            }
        }
    }
    if closed.is_none() {
        if let Some(last) = a.articles.last() {
            a.notes.push(format!(
                "no closing block (adoption formula, \"Nơi nhận:\" or signature) after the last article, Điều {}: the text may be cut short",
                last.label
            ));
        }
    }
    a
}

#[cfg(test)]
mod tests {
    use super::*;

    fn classify(text: &str) -> Kind {
        classify_set(text, Setting::default())
    }

    fn heading(n: u32, label: &str, title: Option<&str>) -> Heading {
        Heading {
            number: n,
            label: label.into(),
            title: title.map(Into::into),
        }
    }

    #[test]
    fn structure_headings() {
        assert_eq!(
            classify("Chương II."),
            Kind::Structure(Level::Chapter, heading(2, "II", None))
        );
        assert_eq!(
            classify("CHƯƠNG XI: HIỆU LỰC"),
            Kind::Structure(Level::Chapter, heading(11, "XI", Some("HIỆU LỰC")))
        );
        assert_eq!(
            classify("Chương 3 NHỮNG QUY ĐỊNH CHUNG"),
            Kind::Structure(
                Level::Chapter,
                heading(3, "3", Some("NHỮNG QUY ĐỊNH CHUNG"))
            )
        );
        assert_eq!(
            classify("Mục 1. Quy định chung"),
            Kind::Structure(Level::Section, heading(1, "1", Some("Quy định chung")))
        );
        assert_eq!(
            classify("PHẦN THỨ HAI"),
            Kind::Structure(Level::Part, heading(2, "THỨ HAI", None))
        );
        assert_eq!(
            classify("Phần thứ mười một. X"),
            Kind::Structure(Level::Part, heading(11, "thứ mười một", Some("X")))
        );
        for text in [
            "Mục 2 của Chương này quy định",
            "MỤC LỤC VĂN BẢN",
            "Phần mềm THƯ VIỆN",
            "Chương trình",
            "Chương IIII",
        ] {
            assert_eq!(classify(text), Kind::Text, "{text}");
        }
    }

    #[test]
    fn article_headings() {
        let art = |n, s, r: &str| {
            Kind::Article(ArticleHead {
                number: n,
                suffix: s,
                rest: r.into(),
            })
        };
        assert_eq!(classify("Điều 1."), art(1, None, ""));
        assert_eq!(classify("ĐIỀU 64: Tên"), art(64, None, "Tên"));
        assert_eq!(classify("Ðiều 5a. X"), art(5, Some('a'), "X"));
        assert_eq!(classify("Điều 7"), art(7, None, ""));
        for text in [
            "Điều 9 Luật Ban hành văn bản",
            "Điều 1.2 của Luật",
            "Điều kiện",
            "Điều 12345.",
        ] {
            assert_ne!(classify(text), art(9, None, ""), "{text}");
            assert!(!matches!(classify(text), Kind::Article(_)), "{text}");
        }
    }

    #[test]
    fn clauses_points_closing() {
        assert_eq!(classify("1. Nhà nước"), Kind::Clause(1));
        assert_eq!(classify("12."), Kind::Clause(12));
        assert_eq!(classify("2.127.110"), Kind::Text);
        assert_eq!(classify("đ) Trường hợp"), Kind::Point('đ'));
        assert_eq!(classify("f) x"), Kind::Text);
        assert_eq!(classify("Nơi nhận:"), Kind::Closing);
        assert_eq!(
            classify("Luật này đã được Quốc hội khóa XIV, kỳ họp thứ 5 thông qua ngày 12 tháng 6 năm 2018."),
            Kind::Closing
        );
        assert_eq!(classify("Luật này có hiệu lực từ ngày 1."), Kind::Text);
        assert_eq!(classify("KT. CHỦ TỊCH"), Kind::Closing);
        assert_eq!(classify("TM. Chính phủ"), Kind::Text);
        assert!(is_motto("CỘNG HOÀ XÃ HỘI CHỦ NGHĨA VIỆT NAM"));
    }

    fn paras(lines: &[&str]) -> Vec<Para> {
        lines.iter().map(|t| Para::plain(t.to_string())).collect()
    }

    #[test]
    fn assembly_of_a_small_law() {
        let p = paras(&[
            "LUẬT X",
            "Căn cứ Hiến pháp;",
            "Chương I",
            "NHỮNG QUY ĐỊNH CHUNG",
            "Điều 1. Phạm vi điều chỉnh",
            "Luật này quy định:",
            "1. Khoản một:",
            "a) điểm a;",
            "b) điểm b.",
            "Tiếp theo khoản một.",
            "2. Khoản hai.",
            "Điều 2.",
            "Nội dung.",
            "Luật này đã được Quốc hội thông qua ngày 1 tháng 1 năm 2020.",
            "CHỦ TỊCH QUỐC HỘI",
        ]);
        let a = assemble(&p);
        let got: Vec<_> = a
            .units
            .iter()
            .map(|u| {
                (
                    u.path.as_str(),
                    u.title.as_str(),
                    u.section_type,
                    u.paras.clone(),
                )
            })
            .collect();
        assert_eq!(
            got,
            [
                ("loi-noi-dau", "Lời nói đầu", "preamble", vec![0, 1]),
                (
                    "chuong-1/dieu-1",
                    "Điều 1. Phạm vi điều chỉnh",
                    "article",
                    vec![4, 5]
                ),
                (
                    "chuong-1/dieu-1/khoan-1",
                    "Điều 1, khoản 1",
                    "clause",
                    vec![6, 7, 8, 9]
                ),
                (
                    "chuong-1/dieu-1/khoan-2",
                    "Điều 1, khoản 2",
                    "clause",
                    vec![10]
                ),
                ("chuong-1/dieu-2", "Điều 2", "article", vec![11, 12]),
            ]
        );
        assert_eq!(a.headings[0].title.as_deref(), Some("NHỮNG QUY ĐỊNH CHUNG"));
        assert_eq!(a.tally.points, 2);
        assert_eq!(a.spans.len(), 1);
        assert_eq!(a.spans[0].paragraphs, 2);
        assert!(a.notes.is_empty(), "{:?}", a.notes);
    }
}
