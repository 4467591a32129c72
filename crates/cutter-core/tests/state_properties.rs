//! Properties of the run state machine over random event sequences: no mutating phase
//! without the gate and a committed backup; every failure ends in HOLD with the
//! kill-switch engaged and never retries; the compensation is always the matrix's.

use cutter_core::{
    compensation_for, Compensation, Effect, Event, KillSwitch, Mode, Phase, PhaseSet, RunId,
    RunMachine, RunState,
};
use proptest::prelude::*;

/// `CUTTER_PROPTEST_CASES` (default 1000). Zero or a value that is not a number is
/// refused: zero cases would pass without checking anything.
fn cases() -> u32 {
    cases_from(std::env::var("CUTTER_PROPTEST_CASES").ok().as_deref())
}

fn cases_from(value: Option<&str>) -> u32 {
    match value.map(|v| v.trim().parse::<u32>()) {
        None => 1000,
        Some(Ok(n)) if n > 0 => n,
        _ => panic!("CUTTER_PROPTEST_CASES={value:?}: must be a number of cases of at least 1"),
    }
}

#[test]
fn zero_or_unreadable_case_counts_are_refused() {
    assert_eq!(cases_from(None), 1000);
    assert_eq!(cases_from(Some("7")), 7);
    for bad in ["0", "", "many", "-1"] {
        let r = std::panic::catch_unwind(|| cases_from(Some(bad)));
        let msg = r.expect_err(bad).downcast::<String>().expect("a message");
        assert!(msg.contains("CUTTER_PROPTEST_CASES"), "{msg}");
    }
}

fn phase() -> impl Strategy<Value = Phase> {
    prop::sample::select(Phase::ORDER.to_vec())
}

fn compensation() -> impl Strategy<Value = Compensation> {
    prop::sample::select(vec![
        Compensation::None,
        Compensation::DiscardArtifact,
        Compensation::A,
        Compensation::AB,
    ])
}

fn any_event() -> impl Strategy<Value = Event> {
    prop_oneof![
        phase().prop_map(|phase| Event::PhaseStarted { phase }),
        phase().prop_map(|phase| Event::PhaseCommitted { phase }),
        Just(Event::GatePassed),
        phase().prop_map(|phase| Event::PhaseFailed {
            phase,
            reason: "injected".into()
        }),
        Just(Event::Held {
            reason: "crash".into()
        }),
        compensation().prop_map(|compensation| Event::Compensated { compensation }),
        Just(Event::Released),
        Just(Event::Voided),
    ]
}

/// The event that moves a run forward from its state, so sequences get deep.
fn natural_next(m: &RunMachine) -> Option<Event> {
    match &m.state {
        RunState::Created => Some(Event::PhaseStarted {
            phase: Phase::Preflight,
        }),
        RunState::Running { phase: Phase::Gate } => Some(Event::GatePassed),
        RunState::Running { phase } => Some(Event::PhaseCommitted { phase: *phase }),
        RunState::Passed { phase } => phase.next().map(|phase| Event::PhaseStarted { phase }),
        RunState::Held { compensation, .. } => Some(Event::Compensated {
            compensation: *compensation,
        }),
        _ => None,
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(cases()))]

    #[test]
    fn random_event_sequences_keep_the_invariants(
        steps in prop::collection::vec((any::<bool>(), any_event()), 0..60),
        staged in any::<bool>(),
        disarmed in any::<bool>(),
    ) {
        let run = RunId::new("r-prop").unwrap();
        let ks = if disarmed { KillSwitch::Disarmed { run_id: run.clone() } } else { KillSwitch::Engaged };
        let final_phase = if staged { Phase::WriteVerify } else { Phase::LifecycleEnact };
        let mut m = RunMachine::new(run, Mode::Live, final_phase, ks);
        // An independent model of what committed and whether the run ever failed.
        let mut model = PhaseSet::EMPTY;
        let mut gate_seen = false;
        let mut ever_held = false;

        for (follow, random) in steps {
            let event = if follow { natural_next(&m).unwrap_or(random) } else { random };
            let Ok((next, effects)) = m.apply(&event) else { continue };

            match &event {
                Event::GatePassed => gate_seen = true,
                Event::PhaseCommitted { phase } if phase.is_mutating() => {
                    prop_assert!(gate_seen, "{phase} committed without the gate");
                    model = model.with(*phase);
                }
                Event::PhaseStarted { .. } => {
                    prop_assert!(!ever_held, "a run was restarted after a failure: {event:?}");
                }
                _ => {}
            }
            prop_assert_eq!(next.committed, model);

            if let RunState::Running { phase } = next.state {
                if phase.is_mutating() {
                    prop_assert!(next.gate_passed && gate_seen, "{phase} without the gate");
                    if phase != Phase::PreWriteBackup {
                        prop_assert!(model.contains(Phase::PreWriteBackup), "{phase} without a committed backup");
                    }
                }
            }

            if matches!(event, Event::PhaseFailed { .. } | Event::Held { .. }) {
                ever_held = true;
                prop_assert!(matches!(next.state, RunState::Held { .. }), "not held");
                prop_assert_eq!(&next.kill_switch, &KillSwitch::Engaged);
                prop_assert!(effects.contains(&Effect::RearmKillSwitch));
                prop_assert!(effects.contains(&Effect::WriteHold));
                prop_assert!(effects.contains(&Effect::RecordSg3));
                let failed = match &event { Event::PhaseFailed { phase, .. } => Some(*phase), _ => match m.state { RunState::Running { phase } => Some(phase), _ => None } };
                let want = compensation_for(failed, model);
                prop_assert!(effects.contains(&Effect::PrescribeCompensation { compensation: want }), "wrong prescription");
                prop_assert_eq!(next.prescribed_compensation(), want);
            }

            if let Event::Compensated { compensation } = event {
                let failed = match &m.state { RunState::Held { failed_phase, .. } => *failed_phase, _ => None };
                prop_assert_eq!(compensation, compensation_for(failed, model));
                prop_assert!(compensation != Compensation::None);
            }

            if event == Event::Voided {
                // Void never leaves committed, uncompensated writes behind.
                let compensated = matches!(m.state, RunState::Compensated { .. });
                prop_assert!(!model.contains(Phase::CutLegA) || compensated || m.state == RunState::Released,
                    "voided a run with live writes from {:?}", m.state);
            }

            if next.state == RunState::Succeeded {
                prop_assert!(model.contains(final_phase));
                prop_assert_eq!(&next.kill_switch, &KillSwitch::Engaged);
            }
            m = next;
        }
    }

    /// A journal replays to the same machine, whatever the sequence.
    #[test]
    fn journal_replay_is_deterministic(steps in prop::collection::vec(any_event(), 0..40)) {
        let run = RunId::new("r-replay").unwrap();
        let start = RunMachine::new(run.clone(), Mode::DryRun, Phase::LifecycleEnact, KillSwitch::Disarmed { run_id: run });
        let mut m = start.clone();
        let mut accepted = Vec::new();
        for e in &steps {
            if let Ok((next, _)) = m.apply(e) {
                accepted.push(e.clone());
                m = next;
            }
        }
        let json = serde_json::to_string(&accepted).unwrap();
        let events: Vec<Event> = serde_json::from_str(&json).unwrap();
        prop_assert_eq!(start.replay(&events).unwrap(), m);
    }
}
