//! A run as the state directory records it: `runs/<id>/run.json` (the state machine and
//! the RunContext, rewritten atomically after every transition) and `journal.jsonl`
//! (every event, appended and fsynced before it is acted upon). A live run's record
//! also goes to the ledger as it changes ([`RunLedger`]): what `cutter report verify`
//! recomputes a report from.

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
    /// The restore proof's record (JSON) when the run proved its own backup with the full
    /// restore proof (`[run] prove_backup`); recorded in the ledger with the rest.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub restore_proof: Option<serde_json::Value>,
    /// The process that drives (or drove) the run.
    pub pid: u32,
    /// RFC 3339.
    pub updated_at: String,
    /// Where a live run's record is also recorded as it changes (not part of `run.json`).
    #[serde(skip)]
    pub ledger: Option<RunLedger>,
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

    /// Saves `run.json` atomically, then records the change in the ledger (if attached).
    pub fn save(&mut self, dir: &StateDir) -> Result<()> {
        self.save_at(dir, None)
    }

    fn save_at(&mut self, dir: &StateDir, event: Option<&JournalEntry>) -> Result<()> {
        self.updated_at = now_rfc3339();
        write_json(&dir.run_dir(&self.machine.run_id)?.join("run.json"), self)?;
        if let Some(l) = &self.ledger {
            l.record(self, event);
        }
        Ok(())
    }

    /// Attaches the ledger of `ctx`'s target to a live run's record, so that its next
    /// changes are recorded there too (a command that moves a run on calls this).
    pub fn with_ledger(mut self, ctx: &crate::Ctx) -> Self {
        if self.machine.mode == cutter_core::Mode::Live {
            match crate::ctx::target_config(ctx) {
                Ok(cfg) => self.ledger = Some(RunLedger::new(cfg, &ctx.settings.actor)),
                Err(e) => tracing::warn!(
                    "run {}: its state is not recorded in the ledger: {e}",
                    self.machine.run_id
                ),
            }
        }
        self
    }

    /// What the ledger records of the run: `machine`, `context`, `last_error`,
    /// `restore_proof`.
    pub fn ledger_state(&self) -> serde_json::Value {
        serde_json::json!({
            "machine": self.machine,
            "context": self.context,
            "last_error": self.last_error,
            "restore_proof": self.restore_proof,
        })
    }

    /// The record a ledger state (see [`RunRecord::ledger_state`]) describes.
    pub fn from_ledger_state(state: &serde_json::Value) -> std::result::Result<Self, String> {
        let field = |k: &str| state.get(k).cloned().unwrap_or(serde_json::Value::Null);
        Ok(RunRecord {
            machine: serde_json::from_value(field("machine"))
                .map_err(|e| format!("machine: {e}"))?,
            context: serde_json::from_value(field("context"))
                .map_err(|e| format!("context: {e}"))?,
            last_error: serde_json::from_value(field("last_error"))
                .map_err(|e| format!("last_error: {e}"))?,
            restore_proof: state.get("restore_proof").filter(|v| !v.is_null()).cloned(),
            pid: 0,
            updated_at: String::new(),
            ledger: None,
        })
    }

    /// Applies `event`: journal first (fsynced), then the state machine, then `run.json`.
    /// Returns the effects the caller must carry out.
    pub fn record(&mut self, dir: &StateDir, event: Event) -> Result<Vec<cutter_core::Effect>> {
        let (next, effects) = self
            .machine
            .apply(&event)
            .map_err(cutter_core::Error::from)?;
        let entry = JournalEntry {
            at_ms: now_ms(),
            event,
        };
        dir.journal(&self.machine.run_id)?.append(&entry)?;
        self.machine = next;
        self.save_at(dir, Some(&entry))?;
        Ok(effects)
    }
}

/// The ledger a live run's record is recorded in as it changes: one `run_state` row
/// (`cutter_governance::record_run_row`) per journaled event and per change between
/// events, carrying the merge patch from the state recorded before. A row that cannot be
/// written is logged and its change carried by the next row; `cutter report verify` then
/// names what the ledger lacks. Clones share one connection.
#[derive(Clone)]
pub struct RunLedger {
    inner: std::sync::Arc<std::sync::Mutex<LedgerInner>>,
}

struct LedgerInner {
    cfg: cutter_pg::ConnConfig,
    actor: String,
    client: Option<postgres::Client>,
    /// The state the ledger holds, once read back.
    recorded: serde_json::Value,
    loaded: bool,
}

impl std::fmt::Debug for RunLedger {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RunLedger").finish_non_exhaustive()
    }
}

impl RunLedger {
    /// Records through `cfg` (the writer's connection) as `actor`.
    pub fn new(cfg: cutter_pg::ConnConfig, actor: &str) -> Self {
        Self {
            inner: std::sync::Arc::new(std::sync::Mutex::new(LedgerInner {
                cfg,
                actor: actor.to_string(),
                client: None,
                recorded: serde_json::Value::Null,
                loaded: false,
            })),
        }
    }

    fn record(&self, rec: &RunRecord, event: Option<&JournalEntry>) {
        let mut inner = match self.inner.lock() {
            Ok(g) => g,
            Err(poisoned) => poisoned.into_inner(),
        };
        let run = &rec.machine.run_id;
        let state = rec.ledger_state();
        if let Err(e) = inner.append(run, &state, event) {
            inner.client = None;
            tracing::warn!(
                "run {run}: this change of its state is not in the ledger yet ({e}); the next one carries it"
            );
        }
    }
}

impl LedgerInner {
    /// Appends the patch from what the ledger holds to `state` (nothing if equal and no
    /// event). The first time, what the ledger holds is read back: a command that moves
    /// a run on later records only what it changes, and a repeated one nothing.
    fn append(
        &mut self,
        run: &RunId,
        state: &serde_json::Value,
        event: Option<&JournalEntry>,
    ) -> std::result::Result<(), String> {
        let mut c = match self.client.take() {
            Some(c) => c,
            None => self.cfg.connect().map_err(|e| e.to_string())?,
        };
        if !self.loaded {
            let rows =
                cutter_governance::run_states(&mut c, run, None).map_err(|e| e.to_string())?;
            self.recorded = cutter_governance::replay_run_states(&rows);
            self.loaded = true;
        }
        let patch = cutter_governance::merge_patch_diff(&self.recorded, state);
        if patch.is_some() || event.is_some() {
            let payload = serde_json::json!({
                "at_ms": event.map_or_else(now_ms, |e| e.at_ms),
                "event": event.map(|e| &e.event),
                "patch": patch,
            });
            cutter_governance::record_run_row(
                &mut c,
                run,
                cutter_governance::DECISION_RUN_STATE,
                &payload,
                &self.actor,
            )
            .map_err(|e| e.to_string())?;
            self.recorded = state.clone();
        }
        self.client = Some(c);
        Ok(())
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
