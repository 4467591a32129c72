//! A run as the state directory records it: `runs/<id>/run.json` (the state machine and
//! the RunContext, rewritten atomically after every transition) and `journal.jsonl`
//! (every event, appended and fsynced before it is acted upon).

use serde::{Deserialize, Serialize};

use cutter_core::{Event, RunContext, RunId, RunMachine};

use crate::error::{Error, Result};
use crate::statedir::{read_json, write_json, JournalEntry, StateDir};

/// What `run.json` holds.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct RunRecord {
    /// The state machine.
    pub machine: RunMachine,
    /// What the phases produced.
    pub context: RunContext,
    /// The last error, if the run stopped on one.
    pub last_error: Option<String>,
    /// The process that drives (or drove) the run.
    pub pid: u32,
    /// RFC 3339.
    pub updated_at: String,
}

impl RunRecord {
    /// Loads `runs/<id>/run.json`.
    pub fn load(dir: &StateDir, run: &RunId) -> Result<Option<RunRecord>> {
        read_json(&dir.root().join("runs").join(run.as_str()).join("run.json"))
    }

    /// Like `load`, but a missing run is a usage error naming it.
    pub fn require(dir: &StateDir, run: &RunId) -> Result<RunRecord> {
        Self::load(dir, run)?.ok_or_else(|| {
            Error::Usage(format!(
                "no run {run} in {}; `cutter runs list` shows the runs",
                dir.root().display()
            ))
        })
    }

    /// Saves `run.json` atomically.
    pub fn save(&mut self, dir: &StateDir) -> Result<()> {
        self.updated_at = now_rfc3339();
        write_json(&dir.run_dir(&self.machine.run_id)?.join("run.json"), self)
    }

    /// Applies `event`: journal first (fsynced), then the state machine, then `run.json`.
    /// Returns the effects the caller must carry out.
    pub fn record(&mut self, dir: &StateDir, event: Event) -> Result<Vec<cutter_core::Effect>> {
        let (next, effects) = self
            .machine
            .apply(&event)
            .map_err(cutter_core::Error::from)?;
        dir.journal(&self.machine.run_id)?.append(&JournalEntry {
            at_ms: now_ms(),
            event,
        })?;
        self.machine = next;
        self.save(dir)?;
        Ok(effects)
    }
}

/// Unix milliseconds now.
pub fn now_ms() -> i64 {
    let d = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap_or_default();
    d.as_millis() as i64
}

/// Unix seconds now.
pub fn now_unix() -> cutter_core::UnixTime {
    cutter_core::UnixTime(now_ms() / 1000)
}

/// RFC 3339 UTC now.
pub fn now_rfc3339() -> String {
    time::OffsetDateTime::now_utc()
        .format(&time::format_description::well_known::Rfc3339)
        .unwrap_or_default()
}

/// RFC 3339 UTC of unix seconds.
pub fn rfc3339(t: cutter_core::UnixTime) -> String {
    time::OffsetDateTime::from_unix_timestamp(t.0)
        .ok()
        .and_then(|d| {
            d.format(&time::format_description::well_known::Rfc3339)
                .ok()
        })
        .unwrap_or_else(|| t.0.to_string())
}
