//! Reading a plan file one row at a time, so that a plan is checked, digested and written
//! without its rows ever being held together. [`CutPlan::parse_json`] is built on it, so
//! there is one parser: it reports every problem of the header and of each row, and
//! refuses a top-level key given twice. Takes any reader the caller opened: no files are
//! opened here.

use std::cell::Cell;
use std::fmt;
use std::io::Read;
use std::rc::Rc;

use serde::de::{self, DeserializeSeed, IgnoredAny, MapAccess, SeqAccess, Visitor};
use serde_json::Value;

use crate::ids::{DocumentId, SourceVersionId};
use crate::plan::{describe, limits, parse_row, shorten};
use crate::{ContractReport, CutPlan, CutPlanRow, Field, PlanFindings, Violation, PLAN_FORMAT};

/// What a plan file says besides its rows.
#[derive(Clone, PartialEq, Eq, Debug)]
pub struct PlanHeader {
    /// The document.
    pub document_id: DocumentId,
    /// Its source version.
    pub source_version_id: SourceVersionId,
    /// How many rows the file holds.
    pub rows: u64,
    /// The cutter's findings, when the plan records them (see [`CutPlan::findings`]).
    pub findings: Option<PlanFindings>,
}

/// The message of the violation returned when `on_row` asked [`read_plan`] to stop.
pub const STOPPED: &str = "reading the plan was stopped before its end";

/// Reads a plan file from `reader`, handing each row that parses to `on_row` in file
/// order (`on_row` returns `false` to stop reading). Returns the header when the whole
/// file is a well-formed plan; otherwise every problem found, as
/// [`CutPlan::parse_json`] reports them (a JSON syntax error alone, since nothing after
/// it can be read). Rows handed out before an error must not be trusted.
pub fn read_plan<R: Read>(
    reader: R,
    on_row: &mut dyn FnMut(CutPlanRow) -> bool,
) -> Result<PlanHeader, ContractReport> {
    read_plan_spans(reader, &mut |row, _| on_row(row))
}

/// Where a row lies in the plan file: the bytes `start..end` hold it, after any
/// separator (`,`) and white space before it. [`parse_plan_row`] reads those bytes back.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub struct RowSpan {
    /// Offset of the first byte after the previous row (or after the `[` of `rows`).
    pub start: u64,
    /// Offset just after the row's closing `}`.
    pub end: u64,
}

/// [`read_plan`], also handing `on_row` each row's [`RowSpan`] in the bytes read.
pub fn read_plan_spans<R: Read>(
    reader: R,
    on_row: &mut dyn FnMut(CutPlanRow, RowSpan) -> bool,
) -> Result<PlanHeader, ContractReport> {
    let pos = Rc::new(Cell::new(0u64));
    let counting = Counting {
        inner: reader,
        pos: Rc::clone(&pos),
    };
    let mut st = State {
        on_row,
        pos,
        header: Vec::new(),
        rows_report: ContractReport::default(),
        format: None,
        document_id: None,
        source_version_id: None,
        findings: None,
        rows: None,
        stopped: false,
        not_an_object: false,
    };
    let mut de = serde_json::Deserializer::from_reader(counting);
    let parsed = de::Deserializer::deserialize_any(&mut de, Top(&mut st)).and_then(|()| de.end());
    if let Err(e) = parsed {
        if st.stopped {
            return Err(report(vec![header(STOPPED.into())]));
        }
        let message = if e.is_io() {
            format!("could not be read: {e}")
        } else {
            format!(
                "not valid JSON at line {}, column {}: {e}",
                e.line(),
                e.column()
            )
        };
        return Err(report(vec![header(message)]));
    }
    st.finish()
}

/// Parses row `number` (1-based) of a plan from the bytes its [`RowSpan`] named, with
/// the checks [`read_plan`] applies to each row. The error names every problem.
pub fn parse_plan_row(number: usize, bytes: &[u8]) -> Result<CutPlanRow, String> {
    let start = bytes
        .iter()
        .position(|b| !matches!(b, b' ' | b'\t' | b'\r' | b'\n' | b','))
        .unwrap_or(bytes.len());
    let value: Value = serde_json::from_slice(&bytes[start..])
        .map_err(|e| format!("row {number} is not one JSON object: {e}"))?;
    let mut rep = ContractReport::default();
    parse_row(number, &value, &mut rep).ok_or_else(|| {
        rep.violations
            .iter()
            .map(ToString::to_string)
            .collect::<Vec<_>>()
            .join("; ")
    })
}

/// Counts the bytes read. serde_json reads its input one byte at a time, so after a
/// value is parsed the count is exactly the offset after it.
struct Counting<R> {
    inner: R,
    pos: Rc<Cell<u64>>,
}

impl<R: Read> Read for Counting<R> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.pos.set(self.pos.get() + n as u64);
        Ok(n)
    }
}

impl CutPlan {
    /// Parses a plan file held in memory, reporting every problem at once: JSON syntax, a
    /// wrong or missing header, and per row each missing, mistyped or unknown field. A
    /// plan that parses still has to pass [`CutPlan::validate`]. For files of any size,
    /// [`read_plan`] does the same one row at a time.
    pub fn parse_json(bytes: &[u8]) -> Result<CutPlan, ContractReport> {
        let mut rows = Vec::new();
        let h = read_plan(bytes, &mut |r| {
            rows.push(r);
            true
        })?;
        let mut plan = CutPlan::new(h.document_id, h.source_version_id, rows);
        plan.findings = h.findings;
        Ok(plan)
    }
}

fn header(message: String) -> Violation {
    Violation {
        row: None,
        canonical_address: None,
        field: Field::Plan,
        message,
    }
}

fn report(violations: Vec<Violation>) -> ContractReport {
    ContractReport { violations }
}

struct State<'a> {
    on_row: &'a mut dyn FnMut(CutPlanRow, RowSpan) -> bool,
    /// Bytes read so far.
    pos: Rc<Cell<u64>>,
    /// Unknown and repeated top-level keys, in file order.
    header: Vec<Violation>,
    rows_report: ContractReport,
    format: Option<Value>,
    document_id: Option<Value>,
    source_version_id: Option<Value>,
    findings: Option<Value>,
    /// Rows read (`Some` once a `rows` array was seen), or what `rows` was instead.
    rows: Option<Result<u64, &'static str>>,
    stopped: bool,
    /// The file is JSON but not an object: that is the one thing to say.
    not_an_object: bool,
}

impl State<'_> {
    fn finish(self) -> Result<PlanHeader, ContractReport> {
        if self.not_an_object {
            return Err(report(vec![header(
                "the plan must be a JSON object".into(),
            )]));
        }
        let mut v = self.header;
        match &self.format {
            Some(Value::String(s)) if s == PLAN_FORMAT => {}
            other => v.push(header(format!(
                "format must be {PLAN_FORMAT:?}, found {}",
                describe(other.as_ref())
            ))),
        }
        let doc = match &self.document_id {
            Some(Value::String(s)) => DocumentId::new(s.clone())
                .map_err(|e| v.push(header(format!("document_id: {e}"))))
                .ok(),
            other => {
                v.push(header(format!(
                    "document_id must be a string, found {}",
                    describe(other.as_ref())
                )));
                None
            }
        };
        let ver = match &self.source_version_id {
            Some(Value::String(s)) => SourceVersionId::new(s.clone())
                .map_err(|e| v.push(header(format!("source_version_id: {e}"))))
                .ok(),
            other => {
                v.push(header(format!(
                    "source_version_id must be a string, found {}",
                    describe(other.as_ref())
                )));
                None
            }
        };
        let findings = match self.findings {
            None | Some(Value::Null) => None,
            Some(f) => serde_json::from_value::<PlanFindings>(f)
                .map_err(|e| v.push(header(format!("findings: {e}"))))
                .ok(),
        };
        let rows = match self.rows {
            Some(Ok(n)) => {
                v.extend(crate::plan::size_violations(n, 0));
                n
            }
            Some(Err(found)) => {
                v.push(header(format!("rows must be an array, found {found}")));
                0
            }
            None => {
                v.push(header(format!(
                    "rows must be an array, found {}",
                    describe(None)
                )));
                0
            }
        };
        v.extend(self.rows_report.violations);
        match (doc, ver, v.is_empty()) {
            (Some(document_id), Some(source_version_id), true) => Ok(PlanHeader {
                document_id,
                source_version_id,
                rows,
                findings,
            }),
            _ => Err(report(v)),
        }
    }
}

/// The top-level value: must be an object.
struct Top<'a, 'b>(&'a mut State<'b>);

impl Top<'_, '_> {
    fn not_an_object<E>(self) -> Result<(), E> {
        self.0.not_an_object = true;
        Ok(())
    }
}

impl<'de> Visitor<'de> for Top<'_, '_> {
    type Value = ();

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a cut plan (a JSON object)")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<(), A::Error> {
        let st = self.0;
        while let Some(key) = map.next_key::<String>()? {
            let slot = match key.as_str() {
                "format" => Some(&mut st.format),
                "document_id" => Some(&mut st.document_id),
                "source_version_id" => Some(&mut st.source_version_id),
                "findings" => Some(&mut st.findings),
                _ => None,
            };
            match (key.as_str(), slot) {
                (_, Some(slot)) => {
                    if slot.is_some() {
                        st.header
                            .push(header(format!("key {key:?} appears more than once")));
                    }
                    *slot = Some(map.next_value()?);
                }
                ("rows", None) => {
                    if st.rows.is_some() {
                        st.header
                            .push(header("key \"rows\" appears more than once".into()));
                    }
                    let found = map.next_value_seed(Rows(&mut *st))?;
                    st.rows = Some(found);
                }
                (_, None) => {
                    map.next_value::<IgnoredAny>()?;
                    st.header.push(header(format!(
                        "unknown key {:?}; expected format, document_id, source_version_id, findings, rows",
                        shorten(&key, 40)
                    )));
                }
            }
        }
        Ok(())
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<(), A::Error> {
        while seq.next_element::<IgnoredAny>()?.is_some() {}
        self.not_an_object()
    }
    fn visit_bool<E>(self, _: bool) -> Result<(), E> {
        self.not_an_object()
    }
    fn visit_i64<E>(self, _: i64) -> Result<(), E> {
        self.not_an_object()
    }
    fn visit_u64<E>(self, _: u64) -> Result<(), E> {
        self.not_an_object()
    }
    fn visit_f64<E>(self, _: f64) -> Result<(), E> {
        self.not_an_object()
    }
    fn visit_str<E>(self, _: &str) -> Result<(), E> {
        self.not_an_object()
    }
    fn visit_unit<E>(self) -> Result<(), E> {
        self.not_an_object()
    }
}

/// The `rows` value: an array whose rows are parsed and handed out one at a time; for
/// anything else, what it was instead.
struct Rows<'a, 'b>(&'a mut State<'b>);

type RowsFound = Result<u64, &'static str>;

impl<'de> DeserializeSeed<'de> for Rows<'_, '_> {
    type Value = RowsFound;
    fn deserialize<D: de::Deserializer<'de>>(self, d: D) -> Result<RowsFound, D::Error> {
        d.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for Rows<'_, '_> {
    type Value = RowsFound;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("an array of rows")
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<RowsFound, A::Error> {
        let st = self.0;
        let mut n: u64 = 0;
        let mut start = st.pos.get();
        while let Some(item) = seq.next_element::<Value>()? {
            let span = RowSpan {
                start,
                end: st.pos.get(),
            };
            start = span.end;
            n += 1;
            if n > limits::ROWS as u64 {
                continue;
            }
            let number = usize::try_from(n).unwrap_or(usize::MAX);
            if let Some(row) = parse_row(number, &item, &mut st.rows_report) {
                if !(st.on_row)(row, span) {
                    st.stopped = true;
                    return Err(de::Error::custom(STOPPED));
                }
            }
        }
        Ok(Ok(n))
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<RowsFound, A::Error> {
        while map.next_entry::<IgnoredAny, IgnoredAny>()?.is_some() {}
        Ok(Err("an object"))
    }
    fn visit_bool<E>(self, _: bool) -> Result<RowsFound, E> {
        Ok(Err("a boolean"))
    }
    fn visit_i64<E>(self, _: i64) -> Result<RowsFound, E> {
        Ok(Err("a number"))
    }
    fn visit_u64<E>(self, _: u64) -> Result<RowsFound, E> {
        Ok(Err("a number"))
    }
    fn visit_f64<E>(self, _: f64) -> Result<RowsFound, E> {
        Ok(Err("a number"))
    }
    fn visit_str<E>(self, _: &str) -> Result<RowsFound, E> {
        Ok(Err("a string"))
    }
    fn visit_unit<E>(self) -> Result<RowsFound, E> {
        Ok(Err("null"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const PLAN: &str = r#"{"format":"cutter-plan/1","document_id":"d","source_version_id":"v",
        "rows":[{"canonical_address":"d/1","title":"T1","body":"b1","actor":"a","unit_kind":"law_unit",
                 "section_type":"article","publication_type":"law"},
                {"canonical_address":"d/2","title":"T2","body":"b2","actor":"a","unit_kind":"law_unit",
                 "section_type":"article","publication_type":"law"}]}"#;

    #[test]
    fn each_rows_span_parses_back_to_the_same_row() {
        // Pretty-printed, with escapes, non-ASCII text and a row split over lines.
        let plan = CutPlan::parse_json(PLAN.as_bytes()).unwrap();
        let mut rows = plan.rows.clone();
        rows[1].body = "Điều \"2\",\n\t{not a brace} \u{1F600} \\".into();
        let pretty = serde_json::to_string_pretty(&CutPlan::new(
            plan.document_id.clone(),
            plan.source_version_id.clone(),
            rows.clone(),
        ))
        .unwrap();
        for text in [pretty.as_str(), PLAN] {
            let mut spans = Vec::new();
            read_plan_spans(text.as_bytes(), &mut |r, span| {
                spans.push((r, span));
                true
            })
            .unwrap();
            assert_eq!(spans.len(), 2);
            for (i, (row, span)) in spans.iter().enumerate() {
                let bytes = &text.as_bytes()[span.start as usize..span.end as usize];
                assert_eq!(&parse_plan_row(i + 1, bytes).unwrap(), row);
                assert!(
                    bytes.ends_with(b"}"),
                    "{:?}",
                    String::from_utf8_lossy(bytes)
                );
            }
            assert_eq!(spans[0].1.end, spans[1].1.start);
        }
        // A span that is not one row says so, with the row number.
        let e = parse_plan_row(7, br#", {"canonical_address": 1}"#).unwrap_err();
        assert!(e.contains("row 7"), "{e}");
        let e = parse_plan_row(7, b"{").unwrap_err();
        assert!(e.contains("row 7 is not one JSON object"), "{e}");
    }

    #[test]
    fn rows_come_one_at_a_time_and_the_header_at_the_end() {
        let mut seen = Vec::new();
        let h = read_plan(PLAN.as_bytes(), &mut |r| {
            seen.push(r.canonical_address);
            true
        })
        .unwrap();
        assert_eq!(seen, ["d/1", "d/2"]);
        assert_eq!(h.rows, 2);
        assert_eq!(h.document_id.as_str(), "d");
        // Key order does not matter: the header may come after the rows.
        let rows_first = PLAN.replace(
            r#"{"format":"cutter-plan/1","document_id":"d","source_version_id":"v","#,
            "{",
        );
        let rows_first = format!(
            "{}, \"source_version_id\":\"v\", \"document_id\":\"d\", \"format\":\"cutter-plan/1\"}}",
            rows_first.trim_end().trim_end_matches('}')
        );
        let a = CutPlan::parse_json(PLAN.as_bytes()).unwrap();
        let b = CutPlan::parse_json(rows_first.as_bytes()).unwrap();
        assert_eq!(a.digest(), b.digest());
    }

    #[test]
    fn stopping_early_is_an_error() {
        let mut n = 0;
        let e = read_plan(PLAN.as_bytes(), &mut |_| {
            n += 1;
            false
        })
        .unwrap_err();
        assert_eq!(n, 1);
        assert_eq!(e.violations[0].message, STOPPED);
    }

    #[test]
    fn every_header_problem_is_named() {
        let cases: [(&str, &[&str]); 7] = [
            ("[1,2]", &["the plan must be a JSON object"]),
            ("\"plan\"", &["the plan must be a JSON object"]),
            (
                r#"{"format":"x","document_id":7,"rows":"many","extra":1}"#,
                &[
                    "unknown key \"extra\"",
                    "format must be \"cutter-plan/1\", found a string",
                    "document_id must be a string, found a number",
                    "source_version_id must be a string, found nothing (missing)",
                    "rows must be an array, found a string",
                ],
            ),
            (
                r#"{"rows":{}}"#,
                &["rows must be an array, found an object"],
            ),
            (
                r#"{"rows":[], "rows":[]}"#,
                &["key \"rows\" appears more than once"],
            ),
            (r#"{"format": "#, &["not valid JSON at line 1, column 11"]),
            (r#"{} trailing"#, &["not valid JSON at line 1, column 4"]),
        ];
        for (text, expected) in cases {
            let r = read_plan(text.as_bytes(), &mut |_| true).unwrap_err();
            if expected == ["the plan must be a JSON object"] {
                // Said once, and alone: nothing else about a file that is not a plan.
                assert_eq!(r.violations.len(), 1, "{text}: {:?}", r.violations);
            }
            for e in expected {
                assert!(
                    r.violations.iter().any(|v| v.message.starts_with(e)),
                    "{text}: {e:?} not in {:?}",
                    r.violations
                );
            }
        }
    }
}
