//! Plan files read one row at a time: rows are parsed on a reader thread and handed over
//! through a small bounded channel, so the bodies are never held together; only each
//! row's address, title and body digest are kept (for the ledger). A run reads its own
//! copy in the state directory, never the operator's file, so the rows written are the
//! rows validated and approved. Input that can be read only once (a pipe, `<(…)`) is
//! copied to a temporary file first. Each full reading notes where every row lies, so an
//! amendment can read back just the rows it writes (each checked against its validated
//! digest).

use std::fs::File;
use std::io::BufReader;
use std::path::{Path, PathBuf};
use std::sync::{mpsc, Arc, Mutex};

use cutter_core::{
    parse_plan_row, read_plan, read_plan_spans, ContractReport, CutPlanRow, PlanDigester,
    PlanHeader, RowSpan, Sha256Digest, Vocabularies,
};
use cutter_pg::{RowPicker, StreamedPlan};

use crate::error::{Error, Result};

/// Rows in flight between the reader thread and the consumer.
const IN_FLIGHT: usize = 256;
/// Read buffer of the reader thread.
const READ_BUFFER: usize = 1 << 16;

/// The rows of a plan file, parsed on a thread of their own. Ends early if the file can
/// no longer be read or parsed; the digest and row-count checks downstream catch that.
#[derive(Debug)]
pub struct Rows {
    rx: mpsc::Receiver<CutPlanRow>,
}

impl Iterator for Rows {
    type Item = CutPlanRow;
    fn next(&mut self) -> Option<CutPlanRow> {
        self.rx.recv().ok()
    }
}

/// Reads the rows of `path` again, on a new thread. Dropping the iterator stops it.
pub fn rows(path: &Path) -> Rows {
    rows_noting(path, None)
}

/// [`rows`], and when the whole file was read, replaces `spans` with where each row lies
/// in it (for [`FilePicker`]).
fn rows_noting(path: &Path, spans: Option<Arc<Mutex<Vec<RowSpan>>>>) -> Rows {
    let (tx, rx) = mpsc::sync_channel(IN_FLIGHT);
    let path = path.to_path_buf();
    let spawned = std::thread::Builder::new()
        .name("plan-reader".into())
        .spawn(move || {
            if let Ok(f) = File::open(&path) {
                let mut noted = Vec::new();
                let read = read_plan_spans(
                    BufReader::with_capacity(READ_BUFFER, f),
                    &mut |row, span| {
                        if spans.is_some() {
                            noted.push(span);
                        }
                        tx.send(row).is_ok()
                    },
                );
                if let (Ok(_), Some(spans)) = (read, spans) {
                    if let Ok(mut s) = spans.lock() {
                        *s = noted;
                    }
                }
            }
        });
    if let Err(e) = spawned {
        tracing::error!("cannot start the plan reader thread: {e}");
    }
    Rows { rx }
}

/// Reads single rows of a plan file back, at the offsets noted the last time the whole
/// file was read. What it returns is checked against the validated rows' digests by
/// the caller ([`StreamedPlan`]), so a file changed since cannot slip a row in.
struct FilePicker {
    path: PathBuf,
    spans: Arc<Mutex<Vec<RowSpan>>>,
    _keep: Option<Arc<PlanCopy>>,
}

impl RowPicker for FilePicker {
    fn pick(&self, rows: &[u64]) -> std::result::Result<Vec<CutPlanRow>, String> {
        use std::os::unix::fs::FileExt;
        let spans = self
            .spans
            .lock()
            .map_err(|_| "the plan's row offsets are unavailable".to_string())?;
        let f = File::open(&self.path).map_err(|e| format!("{}: {e}", self.path.display()))?;
        let mut buf = Vec::new();
        rows.iter()
            .map(|&n| {
                let span = usize::try_from(n)
                    .ok()
                    .and_then(|i| spans.get(i.wrapping_sub(1)))
                    .ok_or_else(|| format!("row {n} was not noted when the plan was read"))?;
                let len = usize::try_from(span.end.saturating_sub(span.start))
                    .map_err(|e| e.to_string())?;
                buf.resize(len, 0);
                f.read_exact_at(&mut buf, span.start)
                    .map_err(|e| format!("{}: reading row {n}: {e}", self.path.display()))?;
                parse_plan_row(usize::try_from(n).unwrap_or(usize::MAX), &buf)
            })
            .collect()
    }
}

/// A plan streamed from a file, validated: what a run writes and records.
pub type FilePlan = StreamedPlan<Box<dyn Fn() -> Rows + Send + Sync>>;

/// A plan file whose form (JSON, header, every row's fields) was checked in one reading.
#[derive(Debug, Clone)]
pub struct PlanFile {
    path: PathBuf,
    /// How messages name it: the operator's file, even when a copy is read.
    name: PathBuf,
    header: PlanHeader,
    /// The copy of input that is not a regular file, alive as long as anything reads it.
    copy: Option<Arc<PlanCopy>>,
}

impl PlanFile {
    /// Reads `path` once, checking its form; every problem is reported at once, naming
    /// the file.
    pub fn open(path: &Path) -> Result<PlanFile> {
        let regular = std::fs::metadata(path)
            .map_err(|e| Error::io(path, e))?
            .is_file();
        if regular {
            return Self::open_named(path, path);
        }
        let copy = Arc::new(PlanCopy::take(path, &std::env::temp_dir())?);
        let mut file = Self::open_named(copy.path(), path)?;
        file.copy = Some(copy);
        Ok(file)
    }

    /// Like [`PlanFile::open`] for a copy at `path` of the operator's file `name`, which
    /// messages name.
    pub fn open_named(path: &Path, name: &Path) -> Result<PlanFile> {
        let f = File::open(path).map_err(|e| Error::io(name, e))?;
        let header = read_plan(BufReader::with_capacity(READ_BUFFER, f), &mut |_| true)
            .map_err(|report| Error::Usage(format!("{}: {report}", name.display())))?;
        Ok(PlanFile {
            path: path.to_path_buf(),
            name: name.to_path_buf(),
            header,
            copy: None,
        })
    }

    /// The file messages name.
    pub fn name(&self) -> &Path {
        &self.name
    }

    /// Document, source version and row count.
    pub fn header(&self) -> &PlanHeader {
        &self.header
    }

    /// The rows, read again from the file.
    pub fn rows(&self) -> Rows {
        rows(&self.path)
    }

    /// The plan digest (what approvals sign), from one more reading.
    pub fn digest(&self) -> Result<Sha256Digest> {
        let h = &self.header;
        let mut d = PlanDigester::new(&h.document_id, &h.source_version_id, h.rows);
        let mut n = 0u64;
        for r in self.rows() {
            d.row(&r);
            n += 1;
        }
        if n != h.rows {
            return Err(Error::Failed(format!(
                "{}: {}",
                self.name.display(),
                self.changed(n)
            )));
        }
        Ok(d.finish())
    }

    /// Why a later reading that found `then` rows cannot be trusted.
    fn changed(&self, then: u64) -> String {
        format!(
            "read {} rows, then {then}: the file changed while cutter read it",
            self.header.rows
        )
    }

    /// Checks the row contract against `vocab` and digests the plan (two more readings,
    /// which must find as many rows as the first).
    pub fn validate(&self, vocab: &Vocabularies) -> std::result::Result<FilePlan, ContractReport> {
        let path = self.path.clone();
        let keep = self.copy.clone();
        let spans = Arc::new(Mutex::new(Vec::new()));
        let picker = FilePicker {
            path: path.clone(),
            spans: Arc::clone(&spans),
            _keep: keep.clone(),
        };
        let source: Box<dyn Fn() -> Rows + Send + Sync> = Box::new(move || {
            let _ = &keep;
            rows_noting(&path, Some(Arc::clone(&spans)))
        });
        let plan = StreamedPlan::validate(
            self.header.document_id.clone(),
            self.header.source_version_id.clone(),
            vocab,
            self.header.findings.as_ref(),
            source,
        )?
        .with_picker(picker);
        if plan.rows() != self.header.rows {
            return Err(ContractReport {
                violations: vec![cutter_core::Violation {
                    row: None,
                    canonical_address: None,
                    field: cutter_core::Field::Plan,
                    message: self.changed(plan.rows()),
                }],
            });
        }
        Ok(plan)
    }
}

/// A private copy of the operator's plan file in the state directory, read by every
/// phase of a run: a `cutter_fs` temp file (`.plan-<random>.partial-<pid>`, so `cutter
/// recover` removes it after a crash like the backup's) that is removed unless
/// [`PlanCopy::keep_as`] links it into the run's directory.
#[derive(Debug)]
pub struct PlanCopy {
    file: cutter_fs::PartialFile,
}

impl PlanCopy {
    /// Copies `from` into `dir` (streaming, then fsync). The random part of the name keeps
    /// a copy left by a dead process with the same pid (a container) from meeting this one.
    pub fn take(from: &Path, dir: &Path) -> Result<PlanCopy> {
        let mut src = File::open(from).map_err(|e| Error::io(from, e))?;
        let name = format!("plan-{:016x}", rand::random::<u64>());
        let (file, mut to) = cutter_fs::PartialFile::create(dir, &name)?;
        std::io::copy(&mut src, &mut to).map_err(|e| Error::io(from, e))?;
        to.sync_all().map_err(|e| Error::io(file.path(), e))?;
        Ok(PlanCopy { file })
    }

    /// The copy.
    pub fn path(&self) -> &Path {
        self.file.path()
    }

    /// Gives the copy its lasting name too (a hard link, never replacing a file there),
    /// and makes the name durable. The copy stays readable under both names until this
    /// value is dropped.
    pub fn keep_as(&self, path: &Path) -> Result<()> {
        Ok(self.file.link_as(path)?)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn plan_json(rows: &[CutPlanRow]) -> String {
        let plan = cutter_core::CutPlan::new(
            cutter_core::DocumentId::new("pick-doc").unwrap(),
            cutter_core::SourceVersionId::new("v1").unwrap(),
            rows.to_vec(),
        );
        serde_json::to_string_pretty(&plan).unwrap()
    }

    #[test]
    fn rows_read_back_are_the_validated_ones_and_a_swapped_file_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("plan.json");
        let rows: Vec<CutPlanRow> = cutter_pg::fixtures::scale_rows("pick-doc", 40).collect();
        std::fs::write(&path, plan_json(&rows)).unwrap();
        let plan = PlanFile::open(&path)
            .unwrap()
            .validate(&cutter_pg::fixtures::vocabularies())
            .unwrap();
        let back = plan
            .picked(&[1, 7, 40])
            .expect("a plan file reads rows back");
        assert_eq!(
            back.unwrap(),
            vec![rows[0].clone(), rows[6].clone(), rows[39].clone()]
        );

        // Another file put in its place, row 7 reworded: refused, naming row 7.
        let mut other = rows.clone();
        other[6].body.push_str(" (sửa đổi)");
        let swapped = dir.path().join("swapped.json");
        std::fs::write(&swapped, plan_json(&other)).unwrap();
        std::fs::rename(&swapped, &path).unwrap();
        let e = plan.picked(&[7]).unwrap().unwrap_err();
        assert!(
            matches!(&e, cutter_pg::Error::PlanRowChanged { row: 7, canonical_address, .. }
                if canonical_address == "pick-doc/dieu-7"),
            "{e}"
        );
        // Rows the swap moved are refused too, whatever they now read as.
        assert!(plan.picked(&[40]).unwrap().is_err());
    }
}
