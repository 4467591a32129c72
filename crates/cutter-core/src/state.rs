//! The run state machine: a pure transition function over typed events. Illegal
//! transitions are errors. Every failure re-arms the kill-switch and ends in HOLD with
//! the matrix's compensation prescribed; nothing ever retries by itself (a held run can
//! only be compensated, released or voided — never started again).

use std::fmt;

use serde::{Deserialize, Serialize};

use crate::compensation::{compensation_for, Compensation};
use crate::gate::KillSwitch;
use crate::ids::RunId;
use crate::phase::{Phase, PhaseSet};

/// Whether a run writes to the target or rehearses on a throwaway clone.
#[derive(Clone, Copy, PartialEq, Eq, Debug, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Mode {
    /// Rehearse the whole pipeline on a throwaway clone; the target is never written.
    DryRun,
    /// Write to the target.
    Live,
}

/// Where a run stands.
#[derive(Clone, PartialEq, Eq, Debug, Serialize, Deserialize)]
#[serde(tag = "state", rename_all = "snake_case")]
pub enum RunState {
    /// Allocated; no phase started.
    Created,
    /// A phase started and has not ended.
    Running {
        /// The phase.
        phase: Phase,
    },
    /// A phase ended well; the next may start.
    Passed {
        /// The phase.
        phase: Phase,
    },
    /// The run's final phase committed.
    Succeeded,
    /// Stopped on a failure or a crash: HOLD written, kill-switch re-armed.
    Held {
        /// The phase that failed, if one was running.
        failed_phase: Option<Phase>,
        /// Why.
        reason: String,
        /// The matrix's answer for what committed.
        compensation: Compensation,
    },
    /// The prescribed compensation was executed; the HOLD can be released.
    Compensated {
        /// What was done.
        compensation: Compensation,
    },
    /// The HOLD was released (with an approval). Terminal.
    Released,
    /// The run id was retired and its claim released. Terminal.
    Voided,
}

impl RunState {
    /// A short name: `created`, `running`, `held`, ….
    pub fn name(&self) -> &'static str {
        match self {
            RunState::Created => "created",
            RunState::Running { .. } => "running",
            RunState::Passed { .. } => "passed",
            RunState::Succeeded => "succeeded",
            RunState::Held { .. } => "held",
            RunState::Compensated { .. } => "compensated",
            RunState::Released => "released",
            RunState::Voided => "voided",
        }
    }
}

/// Something that happened to a run.
#[derive(Clone, PartialEq, Eq, Debug, Serialize, Deserialize)]
#[serde(tag = "event", rename_all = "snake_case")]
pub enum Event {
    /// A phase started.
    PhaseStarted {
        /// The phase.
        phase: Phase,
    },
    /// A phase ended well (a mutating phase: its transaction or artifact committed).
    PhaseCommitted {
        /// The phase.
        phase: Phase,
    },
    /// The gate granted the live authorization (ends the gate phase).
    GatePassed,
    /// A phase failed; its transaction rolled back.
    PhaseFailed {
        /// The phase.
        phase: Phase,
        /// Why.
        reason: String,
    },
    /// The run was stopped from outside a phase: a crash found by `recover`, an operator.
    Held {
        /// Why.
        reason: String,
    },
    /// The prescribed compensation was executed.
    Compensated {
        /// What was done; must equal the prescription.
        compensation: Compensation,
    },
    /// The HOLD was released.
    Released,
    /// The run id was retired.
    Voided,
}

/// What the orchestrator must do because of a transition.
#[derive(Clone, PartialEq, Eq, Debug, Serialize, Deserialize)]
#[serde(tag = "effect", rename_all = "snake_case")]
pub enum Effect {
    /// Engage the kill-switch now.
    RearmKillSwitch,
    /// Write the HOLD lock with the run id, reason and snapshots.
    WriteHold,
    /// Capture the post-failure snapshot.
    CapturePostSnapshot,
    /// Record the SG_3 failure escalation (ledger row and state file).
    RecordSg3,
    /// Tell the operator the next step: this compensation.
    PrescribeCompensation {
        /// The matrix's answer.
        compensation: Compensation,
    },
    /// Remove the HOLD lock.
    RemoveHold,
    /// Release the run's idempotency claim.
    ReleaseClaim,
}

/// A transition that is not allowed.
#[derive(Clone, PartialEq, Eq, Debug, thiserror::Error)]
#[error("run {run_id}: {event} is not allowed while {state}: {why}")]
pub struct IllegalTransition {
    /// The run.
    pub run_id: RunId,
    /// Its state, as text.
    pub state: String,
    /// The event, as text.
    pub event: String,
    /// Why not.
    pub why: String,
}

/// One run's state, the mutating phases it committed, and the kill-switch as this run
/// sees it.
#[derive(Clone, PartialEq, Eq, Debug, Serialize, Deserialize)]
pub struct RunMachine {
    /// The run.
    pub run_id: RunId,
    /// Dry-run or live.
    pub mode: Mode,
    /// The phase whose commit ends the run: `lifecycle_enact`, or `write_verify` for a
    /// run that stages verified drafts.
    pub final_phase: Phase,
    /// Where it stands.
    pub state: RunState,
    /// Mutating phases committed.
    pub committed: PhaseSet,
    /// Whether the gate granted an authorization.
    pub gate_passed: bool,
    /// The kill-switch.
    pub kill_switch: KillSwitch,
    /// Whether the run's writes were compensated (kept when a released HOLD moves the
    /// state on; absent in run records written before it was kept).
    #[serde(default)]
    pub compensated: bool,
}

impl fmt::Display for Event {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Event::PhaseStarted { phase } => write!(f, "start of {phase}"),
            Event::PhaseCommitted { phase } => write!(f, "commit of {phase}"),
            Event::GatePassed => write!(f, "gate passed"),
            Event::PhaseFailed { phase, .. } => write!(f, "failure of {phase}"),
            Event::Held { .. } => write!(f, "hold"),
            Event::Compensated { compensation } => write!(f, "compensation {compensation}"),
            Event::Released => write!(f, "release"),
            Event::Voided => write!(f, "void"),
        }
    }
}

impl fmt::Display for RunState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            RunState::Running { phase } => write!(f, "running {phase}"),
            RunState::Passed { phase } => write!(f, "after {phase}"),
            RunState::Held {
                failed_phase: Some(p),
                ..
            } => write!(f, "held after failure of {p}"),
            other => f.write_str(other.name()),
        }
    }
}

/// What a run's last transition left behind, as found after a crash: the input of
/// [`RunMachine::outstanding_effects`]. The journal line of a transition is written
/// before its effects are carried out, so a process that died in between leaves the
/// journal ahead of the state directory and the ledger.
#[derive(Clone, PartialEq, Eq, Debug, Default)]
pub struct Observed {
    /// The kill-switch as it stands.
    pub kill_switch: KillSwitch,
    /// The run the HOLD names, if a HOLD is present.
    pub hold: Option<RunId>,
    /// Whether the post-failure snapshot was captured.
    pub post_snapshot: bool,
    /// Whether the SG_3 state file was written.
    pub sg3_file: bool,
    /// Whether the SG_3 ledger row was written; `None` if the database could not be asked.
    pub sg3_ledger: Option<bool>,
}

impl RunMachine {
    /// A new run. `final_phase` must be `write_verify` or `lifecycle_enact`.
    pub fn new(run_id: RunId, mode: Mode, final_phase: Phase, kill_switch: KillSwitch) -> Self {
        let final_phase = if final_phase == Phase::WriteVerify {
            Phase::WriteVerify
        } else {
            Phase::LifecycleEnact
        };
        Self {
            run_id,
            mode,
            final_phase,
            state: RunState::Created,
            committed: PhaseSet::EMPTY,
            gate_passed: false,
            kill_switch,
            compensated: false,
        }
    }

    /// The compensation the matrix prescribes for this run as it stands.
    pub fn prescribed_compensation(&self) -> Compensation {
        let failed = match &self.state {
            RunState::Held { failed_phase, .. } => *failed_phase,
            RunState::Running { phase } => Some(*phase),
            _ => None,
        };
        if self.state == RunState::Succeeded && self.final_phase == Phase::LifecycleEnact {
            return Compensation::None;
        }
        compensation_for(failed, self.committed)
    }

    /// Whether the run has writes in the database that were not compensated.
    pub fn has_uncompensated_writes(&self) -> bool {
        let wrote = self.committed.contains(Phase::CutLegA);
        wrote
            && !matches!(self.state, RunState::Compensated { .. } | RunState::Voided)
            && !self.released_after_compensation()
    }

    fn released_after_compensation(&self) -> bool {
        // A released run was compensated first whenever the matrix asked for it (see
        // `apply`); a run whose prescription touched nothing was released as is.
        self.state == RunState::Released
            && (self.compensated || !compensation_for(None, self.committed).touches_database())
    }

    fn illegal(&self, event: &Event, why: impl Into<String>) -> IllegalTransition {
        IllegalTransition {
            run_id: self.run_id.clone(),
            state: self.state.to_string(),
            event: event.to_string(),
            why: why.into(),
        }
    }

    fn hold(&self, failed_phase: Option<Phase>, reason: String) -> (RunMachine, Vec<Effect>) {
        let compensation = compensation_for(failed_phase, self.committed);
        let mut next = self.clone();
        next.state = RunState::Held {
            failed_phase,
            reason,
            compensation,
        };
        next.kill_switch = KillSwitch::Engaged;
        let effects = vec![
            Effect::RearmKillSwitch,
            Effect::CapturePostSnapshot,
            Effect::WriteHold,
            Effect::RecordSg3,
            Effect::PrescribeCompensation { compensation },
        ];
        (next, effects)
    }

    /// The transition function: the next machine and the effects to carry out, or why
    /// the event is not allowed now.
    pub fn apply(&self, event: &Event) -> Result<(RunMachine, Vec<Effect>), IllegalTransition> {
        let mut next = self.clone();
        match (&self.state, event) {
            (
                RunState::Created,
                Event::PhaseStarted {
                    phase: Phase::Preflight,
                },
            ) => {
                next.state = RunState::Running {
                    phase: Phase::Preflight,
                };
                Ok((next, vec![]))
            }
            (RunState::Passed { phase: done }, Event::PhaseStarted { phase }) => {
                if done.next() != Some(*phase) || *done >= self.final_phase {
                    return Err(self.illegal(
                        event,
                        format!(
                            "the next phase is {}",
                            done.next().map_or("none", Phase::name)
                        ),
                    ));
                }
                if phase.is_mutating() && !self.gate_passed {
                    return Err(self.illegal(event, "the gate has not granted an authorization"));
                }
                if phase.is_mutating()
                    && *phase > Phase::PreWriteBackup
                    && !self.committed.contains(Phase::PreWriteBackup)
                {
                    return Err(self.illegal(event, "no committed backup"));
                }
                next.state = RunState::Running { phase: *phase };
                Ok((next, vec![]))
            }
            (RunState::Running { phase: running }, Event::PhaseCommitted { phase })
                if running == phase =>
            {
                if *phase == Phase::Gate {
                    return Err(self.illegal(event, "the gate ends only with gate passed"));
                }
                if phase.is_mutating() {
                    next.committed = next.committed.with(*phase);
                }
                if *phase == self.final_phase {
                    next.state = RunState::Succeeded;
                    // The authorization was for this run only: the switch re-engages.
                    next.kill_switch = KillSwitch::Engaged;
                    return Ok((next, vec![Effect::RearmKillSwitch]));
                }
                next.state = RunState::Passed { phase: *phase };
                Ok((next, vec![]))
            }
            (RunState::Running { phase: Phase::Gate }, Event::GatePassed) => {
                next.gate_passed = true;
                next.state = RunState::Passed { phase: Phase::Gate };
                Ok((next, vec![]))
            }
            (RunState::Running { phase: running }, Event::PhaseFailed { phase, reason })
                if running == phase =>
            {
                Ok(self.hold(Some(*phase), reason.clone()))
            }
            (RunState::Created | RunState::Passed { .. }, Event::Held { reason }) => {
                Ok(self.hold(None, reason.clone()))
            }
            (RunState::Running { phase }, Event::Held { reason }) => {
                Ok(self.hold(Some(*phase), reason.clone()))
            }
            (
                RunState::Held {
                    compensation: prescribed,
                    ..
                },
                Event::Compensated { compensation },
            ) => {
                if prescribed != compensation {
                    return Err(self.illegal(event, format!("the matrix prescribes {prescribed}")));
                }
                if *prescribed == Compensation::None {
                    return Err(self.illegal(event, "nothing to compensate"));
                }
                next.state = RunState::Compensated {
                    compensation: *compensation,
                };
                next.compensated = true;
                Ok((next, vec![]))
            }
            // A run that stopped by choice after write_verify left verified drafts: the
            // matrix prescribes A+B for them, and compensating is how they are undone.
            (RunState::Succeeded, Event::Compensated { compensation })
                if self.final_phase == Phase::WriteVerify =>
            {
                let prescribed = compensation_for(None, self.committed);
                if prescribed != *compensation {
                    return Err(self.illegal(event, format!("the matrix prescribes {prescribed}")));
                }
                next.state = RunState::Compensated {
                    compensation: *compensation,
                };
                next.compensated = true;
                Ok((next, vec![]))
            }
            (RunState::Held { compensation, .. }, Event::Released) => {
                if *compensation != Compensation::None {
                    return Err(self.illegal(
                        event,
                        format!("compensate first: {}", compensation.describe()),
                    ));
                }
                next.state = RunState::Released;
                Ok((next, vec![Effect::RemoveHold]))
            }
            (RunState::Compensated { .. }, Event::Released) => {
                next.state = RunState::Released;
                Ok((next, vec![Effect::RemoveHold]))
            }
            (
                RunState::Created
                | RunState::Held { .. }
                | RunState::Compensated { .. }
                | RunState::Released,
                Event::Voided,
            ) => {
                if self.has_uncompensated_writes() {
                    return Err(self.illegal(
                        event,
                        "the run has committed writes that were not compensated",
                    ));
                }
                let held = matches!(
                    self.state,
                    RunState::Held { .. } | RunState::Compensated { .. }
                );
                next.state = RunState::Voided;
                let mut effects = vec![Effect::ReleaseClaim];
                if held {
                    effects.push(Effect::RemoveHold);
                }
                Ok((next, effects))
            }
            _ => Err(self.illegal(event, "no such transition")),
        }
    }

    /// The effects of the transition that brought the run where it stands which `seen`
    /// shows were never carried out. A held live run owes the kill-switch engaged, its
    /// post snapshot, a HOLD (unless another run's HOLD is present: there is one HOLD)
    /// and the SG_3 record in both places; a live run that succeeded owes the
    /// kill-switch it was disarmed with. A rehearsal owes nothing: its failures never
    /// touch the HOLD, the kill-switch or the target's ledger.
    pub fn outstanding_effects(&self, seen: &Observed) -> Vec<Effect> {
        if self.mode == Mode::DryRun {
            return Vec::new();
        }
        let mut effects = Vec::new();
        match &self.state {
            RunState::Held { .. } => {
                if seen.kill_switch != KillSwitch::Engaged {
                    effects.push(Effect::RearmKillSwitch);
                }
                if !seen.post_snapshot {
                    effects.push(Effect::CapturePostSnapshot);
                }
                if seen.hold.is_none() {
                    effects.push(Effect::WriteHold);
                }
                if !seen.sg3_file || seen.sg3_ledger == Some(false) {
                    effects.push(Effect::RecordSg3);
                }
            }
            RunState::Succeeded => {
                if matches!(&seen.kill_switch, KillSwitch::Disarmed { run_id } if *run_id == self.run_id)
                {
                    effects.push(Effect::RearmKillSwitch);
                }
            }
            _ => {}
        }
        effects
    }

    /// The events that catch the journal up with what the database shows committed
    /// (`in_db`), as far as the machine allows: the commit of the phase that was running,
    /// then the start and commit of each next mutating phase the database shows. Stops
    /// at the first phase the database does not show or the machine refuses; the caller
    /// journals each event and carries out its effects.
    pub fn catch_up(&self, in_db: PhaseSet) -> Vec<Event> {
        let mut m = self.clone();
        let mut events = Vec::new();
        loop {
            let event = match m.state {
                RunState::Running { phase }
                    if phase.is_mutating()
                        && in_db.contains(phase)
                        && !m.committed.contains(phase) =>
                {
                    Event::PhaseCommitted { phase }
                }
                RunState::Passed { phase } => match phase.next() {
                    Some(next) if next.is_mutating() && in_db.contains(next) => {
                        Event::PhaseStarted { phase: next }
                    }
                    _ => break,
                },
                _ => break,
            };
            match m.apply(&event) {
                Ok((next, _)) => {
                    m = next;
                    events.push(event);
                }
                Err(_) => break,
            }
        }
        events
    }

    /// Applies events in order (a journal replay), stopping at the first illegal one.
    pub fn replay<'a>(
        mut self,
        events: impl IntoIterator<Item = &'a Event>,
    ) -> Result<Self, IllegalTransition> {
        for e in events {
            self = self.apply(e)?.0;
        }
        Ok(self)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    pub(crate) fn machine() -> RunMachine {
        let run = RunId::new("r-1").unwrap();
        RunMachine::new(
            run.clone(),
            Mode::Live,
            Phase::LifecycleEnact,
            KillSwitch::Disarmed { run_id: run },
        )
    }

    fn happy_events() -> Vec<Event> {
        let mut ev = Vec::new();
        for p in Phase::ORDER {
            ev.push(Event::PhaseStarted { phase: p });
            ev.push(if p == Phase::Gate {
                Event::GatePassed
            } else {
                Event::PhaseCommitted { phase: p }
            });
        }
        ev
    }

    #[test]
    fn happy_path_succeeds_and_rearms() {
        let m = machine().replay(&happy_events()).unwrap();
        assert_eq!(m.state, RunState::Succeeded);
        assert_eq!(m.kill_switch, KillSwitch::Engaged);
        assert_eq!(m.prescribed_compensation(), Compensation::None);
        assert!(
            m.apply(&Event::Voided).is_err(),
            "a succeeded run has live writes"
        );
    }

    #[test]
    fn failure_holds_rearms_and_never_retries() {
        let ev = happy_events();
        // Fail in leg B: backup and leg A committed.
        let upto = ev
            .iter()
            .position(|e| {
                *e == Event::PhaseStarted {
                    phase: Phase::LegBRecord,
                }
            })
            .unwrap();
        let m = machine().replay(&ev[..=upto]).unwrap();
        let (held, effects) = m
            .apply(&Event::PhaseFailed {
                phase: Phase::LegBRecord,
                reason: "boom".into(),
            })
            .unwrap();
        assert_eq!(held.kill_switch, KillSwitch::Engaged);
        assert!(matches!(
            held.state,
            RunState::Held {
                compensation: Compensation::A,
                ..
            }
        ));
        for e in [
            Effect::RearmKillSwitch,
            Effect::WriteHold,
            Effect::RecordSg3,
            Effect::CapturePostSnapshot,
        ] {
            assert!(effects.contains(&e));
        }
        for p in Phase::ORDER {
            assert!(held.apply(&Event::PhaseStarted { phase: p }).is_err());
        }
        assert!(
            held.apply(&Event::Released).is_err(),
            "release before compensation"
        );
        assert!(held.apply(&Event::Voided).is_err(), "void with live writes");
        assert!(
            held.apply(&Event::Compensated {
                compensation: Compensation::AB
            })
            .is_err(),
            "not the matrix's answer"
        );
        let (comp, _) = held
            .apply(&Event::Compensated {
                compensation: Compensation::A,
            })
            .unwrap();
        // Compensated, then released: still voidable (the release keeps that the
        // writes were compensated).
        let (released, _) = comp.apply(&Event::Released).unwrap();
        assert_eq!(released.state, RunState::Released);
        assert!(!released.has_uncompensated_writes());
        assert!(released.apply(&Event::Voided).is_ok());
        // A run record written before `compensated` was kept reads as not compensated.
        let mut json = serde_json::to_value(&released).unwrap();
        json.as_object_mut().unwrap().remove("compensated");
        let old: RunMachine = serde_json::from_value(json).unwrap();
        assert!(!old.compensated);
        let (voided, eff) = comp.apply(&Event::Voided).unwrap();
        assert_eq!(voided.state, RunState::Voided);
        assert!(eff.contains(&Effect::ReleaseClaim));
        assert!(voided
            .apply(&Event::PhaseStarted {
                phase: Phase::Preflight
            })
            .is_err());
    }

    #[test]
    fn phases_cannot_be_skipped_or_reordered() {
        let m = machine();
        assert!(m
            .apply(&Event::PhaseStarted {
                phase: Phase::CutLegA
            })
            .is_err());
        let (m, _) = m
            .apply(&Event::PhaseStarted {
                phase: Phase::Preflight,
            })
            .unwrap();
        assert!(m
            .apply(&Event::PhaseCommitted {
                phase: Phase::Cutplan
            })
            .is_err());
        let err = m.apply(&Event::GatePassed).unwrap_err();
        assert!(
            err.to_string()
                .contains("gate passed is not allowed while running preflight"),
            "{err}"
        );
    }

    #[test]
    fn a_staged_run_ends_after_write_verify_and_prescribes_a_and_b() {
        let run = RunId::new("r-2").unwrap();
        let m = RunMachine::new(
            run.clone(),
            Mode::Live,
            Phase::WriteVerify,
            KillSwitch::Disarmed { run_id: run },
        );
        let ev: Vec<Event> = happy_events().into_iter().take(14).collect();
        let m = m.replay(&ev).unwrap();
        assert_eq!(m.state, RunState::Succeeded);
        assert!(m
            .apply(&Event::PhaseStarted {
                phase: Phase::LifecycleEnact
            })
            .is_err());
        assert_eq!(compensation_for(None, m.committed), Compensation::AB);
    }

    fn replay_until(m: RunMachine, upto: &Event) -> RunMachine {
        let ev = happy_events();
        let i = ev.iter().position(|e| e == upto).unwrap();
        m.replay(&ev[..=i]).unwrap()
    }

    fn mutating(ps: &[Phase]) -> PhaseSet {
        ps.iter().fold(PhaseSet::EMPTY, |s, p| s.with(*p))
    }

    #[test]
    fn catch_up_commits_the_running_phase_and_what_follows_it_in_the_database() {
        let m = replay_until(
            machine(),
            &Event::PhaseStarted {
                phase: Phase::LifecycleEnact,
            },
        );
        // The enact committed after the journal's last line: one commit, and the
        // machine's own effect for it (the kill-switch re-arms).
        let in_db = mutating(&Phase::MUTATING);
        let events = m.catch_up(in_db);
        assert_eq!(
            events,
            vec![Event::PhaseCommitted {
                phase: Phase::LifecycleEnact
            }]
        );
        let (done, effects) = m.apply(&events[0]).unwrap();
        assert_eq!(done.state, RunState::Succeeded);
        assert_eq!(effects, vec![Effect::RearmKillSwitch]);
        // Nothing in the database beyond the journal: nothing to catch up.
        let none = m.catch_up(mutating(&[
            Phase::PreWriteBackup,
            Phase::CutLegA,
            Phase::LegBRecord,
            Phase::WriteVerify,
        ]));
        assert!(none.is_empty(), "{none:?}");
        // Passed cut_leg_a, the database shows leg B and verify: start + commit of each,
        // stopping at the enact the database does not show.
        let m = replay_until(
            machine(),
            &Event::PhaseCommitted {
                phase: Phase::CutLegA,
            },
        );
        let events = m.catch_up(mutating(&[
            Phase::PreWriteBackup,
            Phase::CutLegA,
            Phase::LegBRecord,
            Phase::WriteVerify,
        ]));
        assert_eq!(
            events,
            vec![
                Event::PhaseStarted {
                    phase: Phase::LegBRecord
                },
                Event::PhaseCommitted {
                    phase: Phase::LegBRecord
                },
                Event::PhaseStarted {
                    phase: Phase::WriteVerify
                },
                Event::PhaseCommitted {
                    phase: Phase::WriteVerify
                },
            ]
        );
        assert!(m.replay(&events).is_ok());
        // A gap the machine cannot explain (verify without leg B) is not bridged.
        let m = replay_until(
            machine(),
            &Event::PhaseCommitted {
                phase: Phase::CutLegA,
            },
        );
        assert!(m
            .catch_up(mutating(&[
                Phase::PreWriteBackup,
                Phase::CutLegA,
                Phase::WriteVerify
            ]))
            .is_empty());
        // A staged run never catches up past its final phase.
        let run = RunId::new("r-2").unwrap();
        let staged = RunMachine::new(
            run.clone(),
            Mode::Live,
            Phase::WriteVerify,
            KillSwitch::Disarmed { run_id: run },
        );
        let staged = replay_until(
            staged,
            &Event::PhaseStarted {
                phase: Phase::WriteVerify,
            },
        );
        let events = staged.catch_up(mutating(&Phase::MUTATING));
        assert_eq!(
            events,
            vec![Event::PhaseCommitted {
                phase: Phase::WriteVerify
            }]
        );
    }

    #[test]
    fn outstanding_effects_are_those_the_state_does_not_show() {
        let run = RunId::new("r-1").unwrap();
        let m = replay_until(
            machine(),
            &Event::PhaseStarted {
                phase: Phase::LegBRecord,
            },
        );
        let (held, all) = m
            .apply(&Event::PhaseFailed {
                phase: Phase::LegBRecord,
                reason: "boom".into(),
            })
            .unwrap();
        // Died right after the journal line: everything is owed, as the failure's own
        // effects say.
        let nothing_done = Observed {
            kill_switch: KillSwitch::Disarmed {
                run_id: run.clone(),
            },
            hold: None,
            post_snapshot: false,
            sg3_file: false,
            sg3_ledger: Some(false),
        };
        let owed = held.outstanding_effects(&nothing_done);
        assert_eq!(owed.len(), 4);
        for e in &owed {
            assert!(all.contains(e), "{e:?} is not an effect of the failure");
        }
        // Everything done: nothing owed.
        let all_done = Observed {
            kill_switch: KillSwitch::Engaged,
            hold: Some(run.clone()),
            post_snapshot: true,
            sg3_file: true,
            sg3_ledger: Some(true),
        };
        assert!(held.outstanding_effects(&all_done).is_empty());
        // Only the ledger row is missing; or the database cannot be asked.
        let no_row = Observed {
            sg3_ledger: Some(false),
            ..all_done.clone()
        };
        assert_eq!(held.outstanding_effects(&no_row), vec![Effect::RecordSg3]);
        let unknown = Observed {
            sg3_ledger: None,
            ..all_done.clone()
        };
        assert!(held.outstanding_effects(&unknown).is_empty());
        // Another run's HOLD is never overwritten; a kill-switch disarmed for another
        // run still re-arms while this run is held.
        let other = Observed {
            hold: Some(RunId::new("r-other").unwrap()),
            kill_switch: KillSwitch::Disarmed {
                run_id: RunId::new("r-other").unwrap(),
            },
            ..all_done.clone()
        };
        assert_eq!(
            held.outstanding_effects(&other),
            vec![Effect::RearmKillSwitch]
        );
        // A succeeded run owes only the kill-switch it was disarmed with.
        let ok = machine().replay(&happy_events()).unwrap();
        let disarmed_for_it = Observed {
            kill_switch: KillSwitch::Disarmed { run_id: run },
            ..Observed::default()
        };
        assert_eq!(
            ok.outstanding_effects(&disarmed_for_it),
            vec![Effect::RearmKillSwitch]
        );
        assert!(ok.outstanding_effects(&other).is_empty());
        assert!(ok.outstanding_effects(&Observed::default()).is_empty());
        // A rehearsal owes nothing; nor does a run still in progress.
        let mut rehearsal = held.clone();
        rehearsal.mode = Mode::DryRun;
        assert!(rehearsal.outstanding_effects(&nothing_done).is_empty());
        assert!(m.outstanding_effects(&nothing_done).is_empty());
    }

    #[test]
    fn journal_round_trips_through_json() {
        let ev = happy_events();
        let json = serde_json::to_string(&ev).unwrap();
        let back: Vec<Event> = serde_json::from_str(&json).unwrap();
        assert_eq!(back, ev);
        assert!(json.contains(r#"{"event":"phase_started","phase":"pre_write_backup"}"#));
    }
}
