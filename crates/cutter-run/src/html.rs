//! The run report as one self-contained HTML file a reviewer opens, prints or archives:
//! no script, no network (a Content-Security-Policy forbids every fetch), inline CSS and
//! an inline SVG timeline whose geometry [`timeline`] computes here, so that a test can
//! compare what a browser lays out with the recorded durations. Pure: it renders what
//! the run record and the report's extras hold.

use std::fmt::Write as _;

use cutter_core::{Phase, PhaseOutcome, PhaseRecord, RunState, WordChange};
use serde_json::Value;

use crate::report::{broken_link, rows, text, ChangedArticle, ReportExtras, TimelineEvent};
use crate::runs::{rfc3339, RunRecord};

/// The colours of the report, as `#rrggbb`. Every pair in [`CONTRAST_PAIRS`] has a WCAG
/// contrast ratio of at least 4.5:1 (a unit test computes it).
pub mod palette {
    /// Body text.
    pub const TEXT: &str = "#1a1a1a";
    /// Page background.
    pub const BACKGROUND: &str = "#ffffff";
    /// Secondary text (durations, axis).
    pub const MUTED: &str = "#4d4d4d";
    /// Table header background.
    pub const HEADER: &str = "#e8eef3";
    /// A committed phase's bar.
    pub const COMMITTED: &str = "#1f5f8b";
    /// A failed phase's bar and the word FAILED.
    pub const FAILED: &str = "#a50e1f";
    /// Event markers (gate, HOLD, release).
    pub const EVENT: &str = "#5b3a8c";
    /// Behind a word an amendment added (which is also underlined and bold).
    pub const INSERTED: &str = "#dcf1e1";
    /// Behind a word an amendment removed (which is also struck through).
    pub const DELETED: &str = "#fbe1e3";
}

/// Every foreground/background pair the report uses, with what it is.
pub const CONTRAST_PAIRS: [(&str, &str, &str); 9] = [
    (palette::TEXT, palette::BACKGROUND, "text"),
    (palette::MUTED, palette::BACKGROUND, "secondary text"),
    (palette::TEXT, palette::HEADER, "table headers"),
    (palette::COMMITTED, palette::BACKGROUND, "committed bars"),
    (
        palette::FAILED,
        palette::BACKGROUND,
        "failed bars and FAILED",
    ),
    (palette::EVENT, palette::BACKGROUND, "event markers"),
    (palette::FAILED, palette::HEADER, "FAILED in a table"),
    (palette::TEXT, palette::INSERTED, "added words"),
    (palette::TEXT, palette::DELETED, "removed words"),
];

/// The WCAG 2 contrast ratio of two `#rrggbb` colours (1 to 21).
pub fn contrast_ratio(a: &str, b: &str) -> f64 {
    let (la, lb) = (luminance(a), luminance(b));
    let (hi, lo) = if la > lb { (la, lb) } else { (lb, la) };
    (hi + 0.05) / (lo + 0.05)
}

/// WCAG relative luminance of `#rrggbb` (an unparsable colour counts as black).
fn luminance(hex: &str) -> f64 {
    let channel = |i: usize| {
        let v = hex
            .get(1 + 2 * i..3 + 2 * i)
            .and_then(|h| u8::from_str_radix(h, 16).ok())
            .map_or(0.0, |v| f64::from(v) / 255.0);
        if v <= 0.03928 {
            v / 12.92
        } else {
            ((v + 0.055) / 1.055).powf(2.4)
        }
    };
    0.2126 * channel(0) + 0.7152 * channel(1) + 0.0722 * channel(2)
}

/// Width of the phase labels left of the bars, in px.
pub const LABEL_WIDTH: f64 = 150.0;
/// Width of the time axis, in px: the span from the first phase's start to the last
/// phase's end.
pub const AXIS_WIDTH: f64 = 600.0;
/// Room right of the axis for the durations, in px.
pub const RIGHT_MARGIN: f64 = 90.0;
/// Height of one phase's row, in px.
pub const ROW_HEIGHT: f64 = 28.0;
/// The narrowest bar, in px: a phase of a few milliseconds stays visible.
pub const MIN_BAR_WIDTH: f64 = 2.0;

/// One phase's bar.
#[derive(Debug, Clone, PartialEq)]
pub struct Bar {
    /// The phase.
    pub phase: Phase,
    /// Left edge, px from the SVG's left.
    pub x: f64,
    /// Width, px: the duration on the axis' scale, at least [`MIN_BAR_WIDTH`].
    pub width: f64,
    /// The recorded duration.
    pub duration_ms: i64,
    /// Whether the phase failed.
    pub failed: bool,
}

/// An event on the time axis.
#[derive(Debug, Clone, PartialEq)]
pub struct Marker {
    /// Position, px from the SVG's left.
    pub x: f64,
    /// What happened.
    pub label: String,
}

/// The timeline's geometry.
#[derive(Debug, Clone, PartialEq)]
pub struct Timeline {
    /// One bar per recorded phase, in the recorded order.
    pub bars: Vec<Bar>,
    /// The events within the phases' span (later ones, such as a release days after,
    /// are listed in the events table only).
    pub markers: Vec<Marker>,
    /// Pixels per millisecond on the axis.
    pub px_per_ms: f64,
}

impl Timeline {
    /// The SVG's width, px.
    pub const WIDTH: f64 = LABEL_WIDTH + AXIS_WIDTH + RIGHT_MARGIN;

    /// The SVG's height, px: one row per bar, one for the markers' labels.
    pub fn height(&self) -> f64 {
        ROW_HEIGHT * (self.bars.len() as f64 + 1.5)
    }
}

/// The timeline of `phases` (as recorded) with `events`: bars placed by their recorded
/// start, widths proportional to the recorded durations on one scale.
pub fn timeline(phases: &[PhaseRecord], events: &[TimelineEvent]) -> Timeline {
    let start = phases.iter().map(|p| p.started_ms).min().unwrap_or(0);
    let end = phases.iter().map(|p| p.ended_ms).max().unwrap_or(start);
    let span = (end - start).max(1);
    let px_per_ms = AXIS_WIDTH / span as f64;
    let at = |ms: i64| LABEL_WIDTH + (ms - start) as f64 * px_per_ms;
    let bars = phases
        .iter()
        .map(|p| {
            let duration_ms = (p.ended_ms - p.started_ms).max(0);
            Bar {
                phase: p.phase,
                x: at(p.started_ms),
                width: (duration_ms as f64 * px_per_ms).max(MIN_BAR_WIDTH),
                duration_ms,
                failed: matches!(p.outcome, PhaseOutcome::Failed { .. }),
            }
        })
        .collect();
    let markers = events
        .iter()
        .filter(|e| (start..=end).contains(&e.at_ms))
        .map(|e| Marker {
            x: at(e.at_ms),
            label: e.what.clone(),
        })
        .collect();
    Timeline {
        bars,
        markers,
        px_per_ms,
    }
}

/// `s` as HTML text (also safe inside a double-quoted attribute).
pub fn esc(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

const CSS: &str = "
:root { color: TEXT; background: BACKGROUND; }
body { font-family: system-ui, sans-serif; font-size: 1rem; line-height: 1.5; max-width: 60rem;
       margin: 0 auto; padding: 1rem; }
h1 { font-size: 1.6rem; } h2 { font-size: 1.25rem; margin-top: 2rem; }
table { border-collapse: collapse; margin: 0.5rem 0 1rem; max-width: 100%; }
caption { text-align: left; font-weight: bold; padding: 0.25rem 0; }
th, td { overflow-wrap: anywhere; border: 1px solid MUTED; padding: 0.25rem 0.5rem; text-align: left; vertical-align: top; }
th { background: HEADER; }
td.num { text-align: right; font-variant-numeric: tabular-nums; }
code, .hash { font-family: ui-monospace, monospace; overflow-wrap: anywhere; }
.muted { color: MUTED; }
.failed { color: FAILED; font-weight: bold; }
.scroll { overflow-x: auto; }
svg { max-width: 100%; height: auto; }
table.side-by-side { table-layout: fixed; width: 100%; }
table.side-by-side th, table.side-by-side td { width: 50%; }
del { background: DELBG; text-decoration: line-through; text-decoration-thickness: 2px; }
ins { background: INSBG; text-decoration: underline; text-decoration-thickness: 2px; font-weight: bold; }
del::before, del::after, ins::before, ins::after { position: absolute; width: 1px; height: 1px;
       overflow: hidden; clip-path: inset(100%); white-space: nowrap; }
del::before { content: \"[removed: \"; } ins::before { content: \"[added: \"; }
del::after, ins::after { content: \"]\"; }
@media print { body { max-width: none; } h2 { break-after: avoid; } table, svg { break-inside: avoid; } }
";

fn css() -> String {
    CSS.replace("BACKGROUND", palette::BACKGROUND)
        .replace("TEXT", palette::TEXT)
        .replace("MUTED", palette::MUTED)
        .replace("HEADER", palette::HEADER)
        .replace("FAILED", palette::FAILED)
        .replace("DELBG", palette::DELETED)
        .replace("INSBG", palette::INSERTED)
}

/// The report as one self-contained HTML document.
pub fn to_html(r: &RunRecord, extras: &ReportExtras) -> String {
    let c = &r.context;
    let m = &r.machine;
    let mut o = String::new();
    let _ = write!(
        o,
        "<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n\
         <meta http-equiv=\"Content-Security-Policy\" content=\"default-src 'none'; style-src 'unsafe-inline'\">\n\
         <meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n\
         <title>cutter run report — {run}</title>\n<style>{css}</style>\n</head>\n<body>\n<main>\n\
         <h1>cutter run report — {run}</h1>\n",
        run = esc(m.run_id.as_str()),
        css = css()
    );
    let mode = match m.mode {
        cutter_core::Mode::Live => "live",
        cutter_core::Mode::DryRun => "dry-run (rehearsal on a throwaway clone)",
    };
    o.push_str("<table id=\"summary\">\n<caption>The run</caption>\n<tbody>\n");
    let mut row = |k: &str, v: String| {
        let _ = writeln!(o, "<tr><th scope=\"row\">{k}</th><td>{v}</td></tr>");
    };
    row("mode", esc(mode));
    row("state", esc(&m.state.to_string()));
    row(
        "document",
        format!(
            "{} (source version {})",
            esc(c.document_id.as_str()),
            esc(c.source_version_id.as_str())
        ),
    );
    row(
        "plan",
        format!(
            "{} rows, sha256 <span class=\"hash\">{}</span>",
            c.plan_rows, c.plan_digest
        ),
    );
    row("target", format!("system identifier {}", c.target));
    row("created", esc(&rfc3339(c.created_at)));
    if let Some(b) = &c.backup {
        row(
            "backup sha256",
            format!("<span class=\"hash\">{}</span>", b.sha256),
        );
    }
    if let Some(e) = &r.last_error {
        row("error", format!("<span class=\"failed\">{}</span>", esc(e)));
    }
    o.push_str("</tbody>\n</table>\n");

    timeline_section(&mut o, &c.phases, &extras.events);
    counts_section(&mut o, c.pre_snapshot.as_ref(), c.post_snapshot.as_ref());
    changed_section(&mut o, &extras.changed_articles);
    approvals_section(&mut o, r);
    backup_section(&mut o, r, extras);
    ledger_section(&mut o, extras);

    o.push_str("<h2 id=\"compensation\">Compensation</h2>\n<p>");
    match (&m.state, c.compensation) {
        (_, Some(done)) => {
            let _ = write!(o, "Executed: {}.", esc(done.describe()));
        }
        (RunState::Held { compensation, .. }, None) => {
            let _ = write!(
                o,
                "Prescribed, not yet executed: {}. Next: <code>cutter compensate --run-id {}</code>.",
                esc(compensation.describe()),
                esc(m.run_id.as_str())
            );
        }
        _ => {
            let _ = write!(o, "{}.", esc(m.prescribed_compensation().describe()));
        }
    }
    o.push_str("</p>\n</main>\n</body>\n</html>\n");
    o
}

/// An amendment's changed articles, each a two-column table, before and after, word by
/// word: removed words in `<del>` (struck through), added words in `<ins>` (underlined,
/// bold), each also announced in words to a screen reader — never by colour alone.
fn changed_section(o: &mut String, changed: &[ChangedArticle]) {
    if changed.is_empty() {
        return;
    }
    o.push_str(
        "<h2 id=\"changed-articles\">Changed articles</h2>\n<p>Each article's text before and \
         after the amendment, word by word: removed words are <del>struck through</del>, added \
         words <ins>underlined and bold</ins>.</p>\n",
    );
    for (i, a) in changed.iter().enumerate() {
        let (before, after) = cutter_core::word_diff(&a.old, a.new_text());
        let _ = write!(
            o,
            "<table class=\"side-by-side\" id=\"changed-{i}\">\n<caption>{}</caption>\n\
             <thead><tr><th scope=\"col\">before</th><th scope=\"col\">after</th></tr></thead>\n\
             <tbody><tr><td>{}</td><td>{}</td></tr></tbody>\n</table>\n",
            esc(&a.address),
            marked_words(&before),
            marked_words(&after)
        );
    }
}

/// One side of a word diff as HTML: runs of removed or added words in one `<del>` or
/// `<ins>` each.
fn marked_words(side: &[WordChange<'_>]) -> String {
    let mut out = String::new();
    let mut open: Option<&str> = None;
    for w in side {
        let (tag, word) = match w {
            WordChange::Same(w) => (None, w),
            WordChange::Removed(w) => (Some("del"), w),
            WordChange::Added(w) => (Some("ins"), w),
        };
        if open != tag {
            if let Some(t) = open {
                let _ = write!(out, "</{t}>");
            }
            if !out.is_empty() {
                out.push(' ');
            }
            if let Some(t) = tag {
                let _ = write!(out, "<{t}>");
            }
            open = tag;
        } else if !out.is_empty() {
            out.push(' ');
        }
        out.push_str(&esc(word));
    }
    if let Some(t) = open {
        let _ = write!(out, "</{t}>");
    }
    out
}

fn timeline_section(o: &mut String, phases: &[PhaseRecord], events: &[TimelineEvent]) {
    o.push_str("<h2 id=\"timeline\">Timeline of the phases</h2>\n");
    if phases.is_empty() {
        o.push_str("<p>No phase was recorded.</p>\n");
        return;
    }
    let t = timeline(phases, events);
    let (w, h) = (Timeline::WIDTH, t.height());
    let _ = writeln!(
        o,
        "<div class=\"scroll\"><svg id=\"timeline-svg\" xmlns=\"http://www.w3.org/2000/svg\" role=\"img\" \
         aria-labelledby=\"timeline-title\" width=\"{w}\" height=\"{h}\" viewBox=\"0 0 {w} {h}\" \
         data-px-per-ms=\"{:.6}\">\n<title id=\"timeline-title\">Phases on one time axis: \
         each bar from the phase's recorded start to its end</title>",
        t.px_per_ms
    );
    let bar_h = ROW_HEIGHT - 10.0;
    for (i, b) in t.bars.iter().enumerate() {
        let y = ROW_HEIGHT * i as f64;
        let (fill, outcome) = if b.failed {
            (palette::FAILED, "FAILED")
        } else {
            (palette::COMMITTED, "committed")
        };
        let _ = writeln!(
            o,
            "<g class=\"phase\"><text x=\"4\" y=\"{ty:.2}\" font-size=\"13\" fill=\"{text}\">{phase}</text>\
             <rect class=\"bar{failed}\" data-phase=\"{phase}\" data-duration-ms=\"{d}\" x=\"{x:.2}\" y=\"{y:.2}\" \
             width=\"{bw:.2}\" height=\"{bar_h}\" fill=\"{fill}\"><title>{phase}: {d} ms, {outcome}</title></rect>\
             <text x=\"{tx:.2}\" y=\"{ty:.2}\" font-size=\"12\" fill=\"{lab}\">{d} ms{mark}</text></g>",
            ty = y + 18.0,
            text = palette::TEXT,
            phase = b.phase,
            failed = if b.failed { " failed" } else { "" },
            d = b.duration_ms,
            x = b.x,
            y = y + 5.0,
            bw = b.width,
            tx = (b.x + b.width + 4.0).min(LABEL_WIDTH + AXIS_WIDTH + 4.0),
            lab = if b.failed { palette::FAILED } else { palette::MUTED },
            mark = if b.failed { " ✕ FAILED" } else { "" },
        );
    }
    let axis_y = ROW_HEIGHT * t.bars.len() as f64;
    for (i, mk) in t.markers.iter().enumerate() {
        let _ = writeln!(
            o,
            "<g class=\"event\"><line x1=\"{x:.2}\" y1=\"0\" x2=\"{x:.2}\" y2=\"{y2:.2}\" stroke=\"{c}\" \
             stroke-width=\"1.5\" stroke-dasharray=\"4 3\"/><text x=\"{x:.2}\" y=\"{ty:.2}\" font-size=\"12\" \
             fill=\"{c}\" text-anchor=\"middle\">{label}</text></g>",
            x = mk.x,
            y2 = axis_y + 4.0,
            ty = axis_y + 16.0 + 12.0 * (i % 2) as f64 / 2.0,
            c = palette::EVENT,
            label = esc(&mk.label),
        );
    }
    o.push_str("</svg></div>\n");
    o.push_str(
        "<table id=\"phases\">\n<caption>Phases as recorded</caption>\n<thead><tr><th scope=\"col\">phase</th>\
         <th scope=\"col\">started</th><th scope=\"col\">duration</th><th scope=\"col\">outcome</th></tr></thead>\n<tbody>\n",
    );
    for p in phases {
        let outcome = match &p.outcome {
            PhaseOutcome::Committed => "committed".to_string(),
            PhaseOutcome::Failed { reason } => {
                format!("<span class=\"failed\">FAILED</span>: {}", esc(reason))
            }
        };
        let _ = writeln!(
            o,
            "<tr><th scope=\"row\">{}</th><td>{}</td><td class=\"num\">{} ms</td><td>{outcome}</td></tr>",
            p.phase,
            esc(&rfc3339_ms(p.started_ms)),
            p.ended_ms - p.started_ms
        );
    }
    o.push_str("</tbody>\n</table>\n");
    if !events.is_empty() {
        o.push_str(
            "<table id=\"events\">\n<caption>Events</caption>\n<thead><tr><th scope=\"col\">when</th>\
             <th scope=\"col\">event</th></tr></thead>\n<tbody>\n",
        );
        for e in events {
            let _ = writeln!(
                o,
                "<tr><td>{}</td><td>{}</td></tr>",
                esc(&rfc3339_ms(e.at_ms)),
                esc(&e.what)
            );
        }
        o.push_str("</tbody>\n</table>\n");
    }
}

/// RFC 3339 of unix milliseconds, to the millisecond.
fn rfc3339_ms(ms: i64) -> String {
    let secs = rfc3339(cutter_core::UnixTime(ms.div_euclid(1000)));
    match secs.strip_suffix('Z') {
        Some(s) => format!("{s}.{:03}Z", ms.rem_euclid(1000)),
        None => secs,
    }
}

fn counts_section(
    o: &mut String,
    pre: Option<&cutter_core::Snapshot>,
    post: Option<&cutter_core::Snapshot>,
) {
    o.push_str("<h2 id=\"counts\">Counts before and after</h2>\n");
    let Some(pre) = pre else {
        o.push_str("<p>No snapshot was taken.</p>\n");
        return;
    };
    o.push_str(
        "<table id=\"counts-table\">\n<caption>Rows per table and units per status</caption>\n<thead><tr>\
         <th scope=\"col\">table</th><th scope=\"col\">before</th><th scope=\"col\">after</th>\
         <th scope=\"col\">difference</th></tr></thead>\n<tbody>\n",
    );
    let mut line = |name: String, before: u64, after: Option<u64>| {
        let (a, d) = match after {
            Some(a) => (a.to_string(), format!("{:+}", a as i128 - before as i128)),
            None => ("—".into(), "—".into()),
        };
        let _ = writeln!(
            o,
            "<tr><th scope=\"row\">{}</th><td class=\"num\">{before}</td><td class=\"num\">{a}</td><td class=\"num\">{d}</td></tr>",
            esc(&name)
        );
    };
    for (t, s) in &pre.tables {
        line(
            t.to_string(),
            s.rows,
            post.map(|p| p.tables.get(t).map_or(0, |a| a.rows)),
        );
    }
    for (s, before, after) in crate::report::unit_counts(pre, post) {
        line(format!("units {s}"), before, after);
    }
    o.push_str("</tbody>\n</table>\n");
}

fn approvals_section(o: &mut String, r: &RunRecord) {
    let c = &r.context;
    o.push_str("<h2 id=\"approvals\">Approvals</h2>\n");
    if c.approvals.is_empty() {
        o.push_str(match r.machine.mode {
            cutter_core::Mode::DryRun => {
                "<p>None needed: a dry-run writes only to a throwaway clone.</p>\n"
            }
            cutter_core::Mode::Live => "<p>None recorded.</p>\n",
        });
        return;
    }
    o.push_str(
        "<table id=\"approvals-table\">\n<caption>The approvals the gate accepted</caption>\n<thead><tr>\
         <th scope=\"col\">gate</th><th scope=\"col\">signer</th><th scope=\"col\">fingerprint</th>\
         <th scope=\"col\">purpose</th><th scope=\"col\">signed</th><th scope=\"col\">valid from</th>\
         <th scope=\"col\">expires</th></tr></thead>\n<tbody>\n",
    );
    for a in &c.approvals {
        let signed = cutter_openpgp::signature_created(a.signature.as_bytes()).map_or_else(
            |e| format!("unreadable: {e}"),
            |t| rfc3339(cutter_core::UnixTime(t)),
        );
        let _ = writeln!(
            o,
            "<tr><th scope=\"row\">{}</th><td>{}</td><td class=\"hash\">{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>",
            a.gate,
            esc(c.signers.get(&a.signer).map_or("(name not recorded)", String::as_str)),
            a.signer,
            a.statement.purpose,
            esc(&signed),
            esc(&rfc3339(a.statement.not_before)),
            esc(&rfc3339(a.statement.expires_at)),
        );
    }
    o.push_str("</tbody>\n</table>\n");
}

fn backup_section(o: &mut String, r: &RunRecord, extras: &ReportExtras) {
    o.push_str("<h2 id=\"backup\">Backup and restore proof</h2>\n");
    match &r.context.backup {
        Some(b) => {
            let _ = writeln!(
                o,
                "<p>Artifact <code>{}</code>, {} bytes, sha256 <span class=\"hash\">{}</span>, encrypted to {}.</p>",
                esc(&b.artifact),
                b.size_bytes,
                b.sha256,
                esc(&b.recipient.to_string())
            );
        }
        None => o.push_str("<p>No backup.</p>\n"),
    }
    if let Some(p) = &r.context.backup_proof {
        let _ = writeln!(o, "<p>Backup proof: {}.</p>", esc(&p.summary()));
    }
    match extras.restore_proof_status() {
        Some(s) => {
            let _ = writeln!(o, "<p>Restore proof: {}.</p>", esc(&s));
        }
        None => o.push_str(
            "<p>Restore proof: not run for this backup (<code>cutter backup restore-proof &lt;artifact&gt;</code>).</p>\n",
        ),
    }
    let Some(v) = &extras.restore_proof else {
        return;
    };
    o.push_str(
        "<table id=\"restore-proof\">\n<caption>Restore proof per table</caption>\n<thead><tr>\
         <th scope=\"col\">table</th><th scope=\"col\">rows expected</th><th scope=\"col\">rows restored</th>\
         <th scope=\"col\">digest</th><th scope=\"col\">ok</th></tr></thead>\n<tbody>\n",
    );
    for t in rows(v, "tables") {
        let (expected, actual) = (&t["expected"], &t["actual"]);
        let digest = if actual.is_null() {
            "not restored".to_string()
        } else if actual["digest"] == expected["digest"] {
            "equal".to_string()
        } else {
            "<span class=\"failed\">DIFFERENT</span>".to_string()
        };
        let _ = writeln!(
            o,
            "<tr><th scope=\"row\">{}</th><td class=\"num\">{}</td><td class=\"num\">{}</td><td>{digest}</td><td>{}</td></tr>",
            esc(&text(&t["table"])),
            expected["rows"],
            if actual.is_null() { "—".to_string() } else { actual["rows"].to_string() },
            if t["ok"] == true { "yes" } else { "<span class=\"failed\">NO</span>" },
        );
    }
    o.push_str("</tbody>\n</table>\n");
}

fn ledger_section(o: &mut String, extras: &ReportExtras) {
    o.push_str("<h2 id=\"ledger\">Ledger</h2>\n");
    let _ = writeln!(o, "<p>{}.</p>", esc(&extras.ledger_status()));
    let Some(v) = &extras.ledger else {
        return;
    };
    o.push_str(
        "<table id=\"ledger-heads\">\n<caption>Chain heads (record them outside the database)</caption>\n<thead><tr>\
         <th scope=\"col\">table</th><th scope=\"col\">rows</th><th scope=\"col\">head id</th>\
         <th scope=\"col\">head hash</th><th scope=\"col\">chain</th></tr></thead>\n<tbody>\n",
    );
    for t in rows(v, "tables") {
        let chain = broken_link(t).map_or_else(
            || "intact".to_string(),
            |(id, what)| {
                format!(
                    "<span class=\"failed\">BROKEN</span> at id {id}: {}",
                    esc(&what)
                )
            },
        );
        let (id, hash) = match &t["head"] {
            Value::Null => ("—".to_string(), "—".to_string()),
            h => (h[0].to_string(), esc(&text(&h[1]))),
        };
        let _ = writeln!(
            o,
            "<tr><th scope=\"row\">{}</th><td class=\"num\">{}</td><td class=\"num\">{id}</td><td class=\"hash\">{hash}</td><td>{chain}</td></tr>",
            esc(&text(&t["table"])),
            t["rows"],
        );
    }
    o.push_str("</tbody>\n</table>\n");
}

#[cfg(test)]
mod tests {
    use super::*;

    fn phase(phase: Phase, started_ms: i64, ended_ms: i64, failed: bool) -> PhaseRecord {
        PhaseRecord {
            phase,
            started_ms,
            ended_ms,
            outcome: if failed {
                PhaseOutcome::Failed { reason: "x".into() }
            } else {
                PhaseOutcome::Committed
            },
        }
    }

    #[test]
    fn every_colour_pair_of_the_palette_meets_wcag_aa() {
        // The formula against WCAG's own reference points first.
        assert!((contrast_ratio("#000000", "#ffffff") - 21.0).abs() < 1e-9);
        assert!((contrast_ratio("#ffffff", "#ffffff") - 1.0).abs() < 1e-9);
        assert!((contrast_ratio("#777777", "#ffffff") - 4.48).abs() < 0.01);
        for (fg, bg, what) in CONTRAST_PAIRS {
            let r = contrast_ratio(fg, bg);
            assert!(
                r >= 4.5,
                "{what}: {fg} on {bg} has contrast {r:.2}, below 4.5"
            );
        }
        // Every colour of the palette is in some pair, and the stylesheet uses no other.
        let css = css();
        for c in [
            palette::TEXT,
            palette::BACKGROUND,
            palette::MUTED,
            palette::HEADER,
            palette::COMMITTED,
            palette::FAILED,
            palette::EVENT,
            palette::INSERTED,
            palette::DELETED,
        ] {
            assert!(
                CONTRAST_PAIRS.iter().any(|(f, b, _)| *f == c || *b == c),
                "{c} is used but not checked"
            );
        }
        for c in css.match_indices('#').map(|(i, _)| &css[i..i + 7]) {
            assert!(
                CONTRAST_PAIRS.iter().any(|(f, b, _)| *f == c || *b == c),
                "the stylesheet uses {c}, which no contrast check covers"
            );
        }
    }

    #[test]
    fn bars_are_proportional_to_the_recorded_durations_and_at_least_two_pixels() {
        let phases = [
            phase(Phase::Preflight, 1_000, 1_003, false),
            phase(Phase::Cutplan, 1_003, 1_010, false),
            phase(Phase::Gate, 1_010, 1_200, false),
            phase(Phase::PreWriteBackup, 1_210, 4_210, false),
            phase(Phase::CutLegA, 4_215, 7_000, true),
        ];
        let events = [
            TimelineEvent {
                at_ms: 1_200,
                what: "gate passed".into(),
            },
            TimelineEvent {
                at_ms: 90_000,
                what: "HOLD released".into(),
            },
        ];
        let t = timeline(&phases, &events);
        assert_eq!(t.bars.len(), phases.len());
        let scale = AXIS_WIDTH / 6_000.0;
        assert!((t.px_per_ms - scale).abs() < 1e-12);
        for (b, p) in t.bars.iter().zip(&phases) {
            assert_eq!(b.phase, p.phase);
            let exact = (p.ended_ms - p.started_ms) as f64 * scale;
            assert!(b.width >= MIN_BAR_WIDTH, "{b:?}");
            assert!((b.width - exact).abs() <= 2.0, "{b:?} vs {exact}");
            assert!((b.x - (LABEL_WIDTH + (p.started_ms - 1_000) as f64 * scale)).abs() < 1e-9);
        }
        // The 3 ms preflight would be 0.3 px: it is drawn 2 px wide.
        assert_eq!(t.bars[0].width, MIN_BAR_WIDTH);
        assert!(t.bars[4].failed && !t.bars[3].failed);
        // The gate is on the axis; a release long after the phases is not.
        assert_eq!(t.markers.len(), 1);
        assert!((t.markers[0].x - (LABEL_WIDTH + 200.0 * scale)).abs() < 1e-9);
        // The last bar ends at the axis' end.
        let last = &t.bars[4];
        assert!((last.x + last.width - (LABEL_WIDTH + AXIS_WIDTH)).abs() < 1e-9);
    }

    #[test]
    fn text_is_escaped() {
        assert_eq!(
            esc("<script>\"a\" & 'b'</script>"),
            "&lt;script&gt;&quot;a&quot; &amp; &#39;b&#39;&lt;/script&gt;"
        );
    }
}
