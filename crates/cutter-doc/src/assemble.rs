//! The shared result of both structure readers: unit drafts, where each legal paragraph
//! went, the structure headings, the spans that landed in no unit and the article
//! numbers in document order. Addresses are made unique here.

use std::collections::BTreeSet;

use crate::report::{StructureHeading, UnassignedSpan};
use crate::text::{chars, excerpt};
use crate::Placement;

/// One unit to become a plan row.
#[derive(Debug)]
pub(crate) struct UnitDraft {
    /// Address after `<document_id>/`.
    pub path: String,
    pub title: String,
    pub section_type: &'static str,
    /// Indices into the legal paragraphs, in order.
    pub paras: Vec<usize>,
}

/// An article as found: its number (for gap analysis) and its label as written.
#[derive(Debug, Clone)]
pub(crate) struct FoundArticle {
    pub number: u32,
    /// `14`, `5a`, …; for suffixed articles the number alone is not the whole story.
    pub label: String,
    pub plain: bool,
}

#[derive(Debug, Default)]
pub(crate) struct Tally {
    pub parts: usize,
    pub chapters: usize,
    pub sections: usize,
    pub clauses: usize,
    pub points: usize,
}

#[derive(Debug)]
pub(crate) struct Assembly {
    pub units: Vec<UnitDraft>,
    pub places: Vec<Placement>,
    pub headings: Vec<StructureHeading>,
    pub spans: Vec<UnassignedSpan>,
    pub articles: Vec<FoundArticle>,
    pub tally: Tally,
    pub notes: Vec<String>,
    /// The location of the span that starts at the closing formula, if any.
    pub closing: Option<String>,
    paths: BTreeSet<String>,
}

impl Assembly {
    pub fn new(paragraphs: usize) -> Self {
        Self {
            units: Vec::new(),
            places: vec![Placement::Unassigned; paragraphs],
            headings: Vec::new(),
            spans: Vec::new(),
            articles: Vec::new(),
            tally: Tally::default(),
            notes: Vec::new(),
            closing: None,
            paths: BTreeSet::new(),
        }
    }

    /// Adds a unit; a path already taken gets `-dup-2`, `-dup-3`, … (and a note).
    pub fn add_unit(&mut self, path: String, title: String, section_type: &'static str) -> usize {
        let mut unique = path.clone();
        let mut n = 1;
        while self.paths.contains(&unique) {
            n += 1;
            unique = format!("{path}-dup-{n}");
        }
        if n > 1 {
            self.notes.push(format!(
                "address {path} is taken by an earlier unit; this one is {unique}"
            ));
        }
        self.paths.insert(unique.clone());
        self.units.push(UnitDraft {
            path: unique,
            title,
            section_type,
            paras: Vec::new(),
        });
        self.units.len() - 1
    }

    pub fn path(&self, unit: usize) -> &str {
        &self.units[unit].path
    }

    pub fn place_in_unit(&mut self, para: usize, unit: usize) {
        self.places[para] = Placement::Unit(unit);
        self.units[unit].paras.push(para);
    }

    pub fn place_heading(&mut self, para: usize) {
        self.places[para] = Placement::Heading;
    }

    /// Records paragraph `para` as legal text in no unit; consecutive paragraphs with the
    /// same location form one span.
    pub fn place_unassigned(
        &mut self,
        para: usize,
        location: &str,
        text: &str,
        article_like: bool,
    ) {
        self.places[para] = Placement::Unassigned;
        if let Some(last) = self.spans.last_mut() {
            if last.location == location && last.first_paragraph + last.paragraphs == para {
                last.paragraphs += 1;
                last.chars += chars(text);
                last.article_headings += usize::from(article_like);
                return;
            }
        }
        self.spans.push(UnassignedSpan {
            location: location.to_string(),
            first_paragraph: para,
            paragraphs: 1,
            chars: chars(text),
            excerpt: excerpt(text, 80),
            article_headings: usize::from(article_like),
            closing_block: false,
        });
    }
}
