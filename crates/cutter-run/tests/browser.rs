//! The HTML run report in a real browser: headless Chromium (the Debian `chromium`
//! package, which `cargo xtask test` installs) loads it without a console message, lays
//! out one bar per recorded phase, in order, as wide as the recorded durations say, and
//! renders a screenshot that is not blank. One test: Chromium is heavy.

mod common;

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use cutter_run::html::{palette, to_html, AXIS_WIDTH, MIN_BAR_WIDTH};
use scraper::{Html, Selector};

/// The screenshot's size, px.
const WINDOW: (u32, u32) = (1280, 1600);
/// The same window at 200% zoom: half as many CSS pixels across.
const ZOOMED: (u32, u32) = (WINDOW.0 / 2, WINDOW.1 / 2);

/// Runs headless Chromium on `page` with `args`; returns its stdout and stderr. Killed
/// after a minute.
fn chromium(profile: &Path, page: &Path, window: (u32, u32), args: &[&str]) -> (String, String) {
    let mut child = Command::new("chromium")
        .args([
            "--headless",
            // Root in a container: Chromium's sandbox needs user namespaces.
            "--no-sandbox",
            "--disable-gpu",
            "--no-first-run",
            "--hide-scrollbars",
            "--enable-logging=stderr",
            "--v=0",
        ])
        .arg(format!("--user-data-dir={}", profile.display()))
        .arg(format!("--window-size={},{}", window.0, window.1))
        .args(args)
        .arg(format!("file://{}", page.display()))
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("chromium (the Debian package; `cargo xtask test` installs it)");
    let (mut out, mut err) = (child.stdout.take().unwrap(), child.stderr.take().unwrap());
    let reader = std::thread::spawn(move || {
        let mut s = String::new();
        std::io::Read::read_to_string(&mut out, &mut s).unwrap();
        s
    });
    let err_reader = std::thread::spawn(move || {
        let mut s = String::new();
        std::io::Read::read_to_string(&mut err, &mut s).unwrap();
        s
    });
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        if child.try_wait().unwrap().is_some() {
            break;
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            panic!(
                "chromium did not finish within a minute on {}",
                page.display()
            );
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    (reader.join().unwrap(), err_reader.join().unwrap())
}

/// The console messages in Chromium's log (`… :INFO:CONSOLE:<line>] "…"`).
fn console_messages(stderr: &str) -> Vec<&str> {
    stderr.lines().filter(|l| l.contains(":CONSOLE")).collect()
}

fn write(dir: &Path, name: &str, html: &str) -> PathBuf {
    let p = dir.join(name);
    std::fs::write(&p, html).unwrap();
    p
}

#[test]
fn the_html_report_renders_in_headless_chromium() {
    let tmp = tempfile::tempdir().unwrap();
    let profile = tmp.path().join("profile");
    // A failed run that was an amendment: the failed bar and the side-by-side texts.
    let (rec, mut extras) = common::failed_run();
    extras.changed_articles = common::amendment_run().1.changed_articles;
    let html = to_html(&rec, &extras);

    // The console check catches what it must: a fetch the policy blocks, a script error.
    let planted = html.replacen(
        "<main>",
        "<main><img src=\"https://example.invalid/x.png\" alt=\"\">",
        1,
    );
    let (_, log) = chromium(
        &profile,
        &write(tmp.path(), "planted.html", &planted),
        WINDOW,
        &["--dump-dom"],
    );
    assert!(
        console_messages(&log)
            .iter()
            .any(|l| l.contains("Content Security Policy")),
        "a blocked fetch must show in the console check:\n{log}"
    );

    // 1. The report loads without a single console message; the browser's DOM has one
    //    bar per recorded phase, in order.
    let page = write(tmp.path(), "report.html", &html);
    let (dom, log) = chromium(&profile, &page, WINDOW, &["--dump-dom"]);
    assert!(
        console_messages(&log).is_empty(),
        "console messages: {:?}",
        console_messages(&log)
    );
    let doc = Html::parse_document(&dom);
    let phases: Vec<String> = doc
        .select(&Selector::parse("svg rect.bar").unwrap())
        .map(|r| r.value().attr("data-phase").unwrap().to_string())
        .collect();
    let recorded: Vec<String> = rec
        .context
        .phases
        .iter()
        .map(|p| p.phase.to_string())
        .collect();
    assert_eq!(phases, recorded);

    // 2. The widths the browser lays out: the test's copy of the page (the report itself
    //    has no script, and its policy forbids one) writes each bar's rendered box into
    //    the DOM, and Chromium dumps it.
    let measure = html
        .replace("default-src 'none'; style-src 'unsafe-inline'", "default-src 'none'; style-src 'unsafe-inline'; script-src 'unsafe-inline'")
        .replace(
            "</body>",
            "<script>document.querySelectorAll('rect.bar').forEach(function (r) { \
             var b = r.getBoundingClientRect(); r.setAttribute('data-rendered', b.left + ' ' + b.top + ' ' + b.width); }); \
             document.querySelectorAll('table.side-by-side del, table.side-by-side ins').forEach(function (w) { \
             w.setAttribute('data-decoration', getComputedStyle(w).textDecorationLine); }); \
             var e = document.documentElement; document.body.setAttribute('data-overflow', e.scrollWidth - e.clientWidth);\
             </script></body>",
        );
    let (dom, log) = chromium(
        &profile,
        &write(tmp.path(), "measure.html", &measure),
        WINDOW,
        &["--dump-dom"],
    );
    assert!(
        console_messages(&log).is_empty(),
        "{:?}",
        console_messages(&log)
    );
    let doc = Html::parse_document(&dom);
    let boxes: Vec<(f64, f64, f64)> = doc
        .select(&Selector::parse("svg rect.bar").unwrap())
        .map(|r| {
            let v: Vec<f64> = r
                .value()
                .attr("data-rendered")
                .expect("the measuring script ran")
                .split(' ')
                .map(|x| x.parse().unwrap())
                .collect();
            (v[0], v[1], v[2])
        })
        .collect();
    assert_eq!(boxes.len(), rec.context.phases.len());
    let start = rec
        .context
        .phases
        .iter()
        .map(|p| p.started_ms)
        .min()
        .unwrap();
    let end = rec.context.phases.iter().map(|p| p.ended_ms).max().unwrap();
    let px_per_ms = AXIS_WIDTH / (end - start) as f64;
    let mut last_top = f64::MIN;
    for ((left, top, width), p) in boxes.iter().zip(&rec.context.phases) {
        let expected = ((p.ended_ms - p.started_ms) as f64 * px_per_ms).max(MIN_BAR_WIDTH);
        assert!(
            (width - expected).abs() <= 2.0,
            "{}: rendered {width:.2} px, the recorded {} ms are {expected:.2} px",
            p.phase,
            p.ended_ms - p.started_ms
        );
        assert!(*width >= MIN_BAR_WIDTH - 0.01, "{}: {width} px", p.phase);
        assert!(
            *top > last_top,
            "{} is not below the phase before it",
            p.phase
        );
        last_top = *top;
        let _ = left;
    }
    // Bars start where the recorded starts put them, relative to the first.
    let (first_left, ..) = boxes[0];
    for ((left, ..), p) in boxes.iter().zip(&rec.context.phases) {
        let expected = (p.started_ms - start) as f64 * px_per_ms;
        assert!(((left - first_left) - expected).abs() <= 2.0, "{}", p.phase);
    }

    // Readable at 200% zoom: half the CSS pixels across, and nothing runs off the side
    // (tables wrap, the timeline scales down).
    let (dom, _) = chromium(
        &profile,
        &tmp.path().join("measure.html"),
        ZOOMED,
        &["--dump-dom"],
    );
    let doc = Html::parse_document(&dom);
    let overflow = doc
        .select(&Selector::parse("body").unwrap())
        .next()
        .and_then(|b| b.value().attr("data-overflow"))
        .expect("the measuring script ran");
    assert_eq!(
        overflow, "0",
        "at 200% zoom the page is {overflow} px wider than the window"
    );
    // The amendment's words are marked by more than colour, as the browser applies it.
    let decorations = |tag: &str| -> Vec<String> {
        doc.select(&Selector::parse(&format!("table.side-by-side {tag}")).unwrap())
            .map(|e| e.value().attr("data-decoration").unwrap().to_string())
            .collect()
    };
    let (removed, added) = (decorations("del"), decorations("ins"));
    assert!(!removed.is_empty() && !added.is_empty());
    assert!(removed.iter().all(|d| d == "line-through"), "{removed:?}");
    assert!(added.iter().all(|d| d == "underline"), "{added:?}");

    // 3. A screenshot that is not blank: many colours, and the bars' colours in it.
    let shot = tmp.path().join("report.png");
    chromium(
        &profile,
        &page,
        WINDOW,
        &[&format!("--screenshot={}", shot.display())],
    );
    let decoder = png::Decoder::new(std::io::BufReader::new(std::fs::File::open(&shot).unwrap()));
    let mut reader = decoder.read_info().unwrap();
    let mut buf = vec![0; reader.output_buffer_size().unwrap()];
    let info = reader.next_frame(&mut buf).unwrap();
    assert_eq!((info.width, info.height), WINDOW);
    let channels = info.color_type.samples();
    let rgb = |hex: &str| -> [u8; 3] {
        let c = |i: usize| u8::from_str_radix(&hex[1 + 2 * i..3 + 2 * i], 16).unwrap();
        [c(0), c(1), c(2)]
    };
    let (committed, failed) = (rgb(palette::COMMITTED), rgb(palette::FAILED));
    let mut colours = std::collections::HashSet::new();
    let (mut committed_px, mut failed_px) = (0usize, 0usize);
    for px in buf[..info.buffer_size()].chunks(channels) {
        let c = [px[0], px[1], px[2]];
        colours.insert(c);
        committed_px += usize::from(c == committed);
        failed_px += usize::from(c == failed);
    }
    println!(
        "screenshot {}x{}: {} colours, {committed_px} px of committed bars, {failed_px} px of the failed one; {} bars",
        info.width,
        info.height,
        colours.len(),
        boxes.len()
    );
    assert!(colours.len() > 16, "{} colours: blank?", colours.len());
    assert!(committed_px > 200, "{committed_px} px of committed bars");
    assert!(failed_px > 20, "{failed_px} px of the failed bar");
}
