//! Plan files read one row at a time: rows are parsed on a reader thread and handed over
//! through a small bounded channel, so the bodies are never held together; only each
//! row's address, title and body digest are kept (for the ledger). A run reads its own
//! copy in the state directory, never the operator's file, so the rows written are the
//! rows validated and approved. Input that can be read only once (a pipe, `<(…)`) is
//! copied to a temporary file first.

use std::fs::File;
use std::io::BufReader;
use std::path::{Path, PathBuf};
use std::sync::{mpsc, Arc};

use cutter_core::{
    read_plan, ContractReport, CutPlanRow, PlanDigester, PlanHeader, Sha256Digest, Vocabularies,
};
use cutter_pg::StreamedPlan;

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
    let (tx, rx) = mpsc::sync_channel(IN_FLIGHT);
    let path = path.to_path_buf();
    let spawned = std::thread::Builder::new()
        .name("plan-reader".into())
        .spawn(move || {
            if let Ok(f) = File::open(&path) {
                let _ = read_plan(BufReader::with_capacity(READ_BUFFER, f), &mut |row| {
                    tx.send(row).is_ok()
                });
            }
        });
    if let Err(e) = spawned {
        tracing::error!("cannot start the plan reader thread: {e}");
    }
    Rows { rx }
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
        let source: Box<dyn Fn() -> Rows + Send + Sync> = Box::new(move || {
            let _ = &keep;
            rows(&path)
        });
        let plan = StreamedPlan::validate(
            self.header.document_id.clone(),
            self.header.source_version_id.clone(),
            vocab,
            self.header.findings.as_ref(),
            source,
        )?;
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
