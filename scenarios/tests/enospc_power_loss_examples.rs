//! `--crash enospc,power-loss` on the disk-full examples
//! (`scenarios/workloads/disk_full.rs`): each traced `enospc` trial is also
//! judged at a power loss at the writer's end, in every state that power
//! loss may leave: floors are what completed syncs made durable on the
//! small filesystem, newest is what it held at the end (README, "enospc").
//! From those documented semantics:
//! - `fill-fallocate-unsynced` stops on `ENOSPC` and keeps every acked
//!   record in the page cache, so plain `enospc` (a process crash) passes;
//!   nothing syncs its records or the `fallocate` that sized its file, so
//!   the state with them at their floor loses an acked record: caught.
//! - `fill-fallocate-durable` `fsync`s its directory after creating the
//!   file and `msync`s each record before acking it: every acked record is
//!   at its floor, which is its newest content, in every state: passes.
//! - `fill-fallocate`, which never `fsync`s the directory, may lose its
//!   file's entry at a power loss: caught, with the creation named.
//! - the replay line of a failing state re-creates the trial and checks
//!   that state, which fails again;
//! - where the oracle cannot run, no state can be judged: each trial says
//!   so ("power-loss states not judged: not traced (...)").

mod programs;

use std::path::Path;
use std::sync::atomic::AtomicBool;
use std::time::Duration;

use crashlab::external::power_loss::StateText;
use crashlab::external::{replay_trial_in_state, ExternalConfig, Replayed};
use crashlab::report::external::{CrashSection, Delivery, ExternalReport, ReplayTarget};
use crashlab::report::external_enospc_power_loss::{EnospcPowerLoss, EnospcPowerLossCounts, EnospcStates};
use crashlab::vocab::CrashKind;

use programs::{fast_dir, workload};

const TRIALS: u32 = 2;
const BOTH: [CrashKind; 2] = [CrashKind::Enospc, CrashKind::PowerLoss];

fn config(example: &str, crashes: &[CrashKind], dir: &Path) -> ExternalConfig {
    let mut c = ExternalConfig::new(
        &workload(example, "writer", "--records 64"),
        &workload(example, "checker", ""),
        None,
        false,
    )
    .expect("the example commands parse");
    c.crashes = crashes.to_vec();
    c.trials = TRIALS;
    c.seed = 15;
    c.jobs = 2;
    c.dir = dir.to_owned();
    c.timeout = Duration::from_secs(60);
    // The test binary cannot serve the helper; the crate's worker does.
    c.capacity_helper = Some(env!("CARGO_BIN_EXE_crashlab-worker").into());
    c
}

fn enospc_section(report: &ExternalReport) -> &CrashSection {
    report.crashes.iter().find(|s| s.crash == CrashKind::Enospc).expect("an enospc section")
}

/// Each enospc trial's power-loss judgment.
fn judgments(report: &ExternalReport) -> Vec<EnospcPowerLoss> {
    enospc_section(report)
        .trials_detail
        .iter()
        .map(|t| match &t.delivery {
            Delivery::Capacity { power_loss: Some(pl), .. } => pl.clone(),
            other => panic!("trial {} has no power-loss judgment: {other}", t.trial),
        })
        .collect()
}

fn states(pl: &EnospcPowerLoss) -> &EnospcStates {
    match pl {
        EnospcPowerLoss::States(s) => s,
        other => panic!("the states were not judged: {other}"),
    }
}

#[test]
fn a_writer_acking_unsynced_records_passes_enospc_and_is_caught_under_enospc_power_loss() {
    let dir = fast_dir();
    let plain = programs::run(&config("fill-fallocate-unsynced", &[CrashKind::Enospc], dir.path()));
    assert_eq!(plain.summary.violations, 0, "a process crash keeps the page cache: {}", plain.human_summary());
    assert!(judgments_absent(&plain), "plain enospc judges no power-loss state");

    let report = programs::run(&config("fill-fallocate-unsynced", &BOTH, dir.path()));
    let summary = report.human_summary();
    let s = enospc_section(&report);
    assert_eq!(s.violations, TRIALS as u64, "{summary}");
    for (pl, t) in judgments(&report).iter().zip(&s.trials_detail) {
        let st = states(pl);
        let finding = st.finding.as_ref().unwrap_or_else(|| panic!("no finding: {pl}"));
        // Some acked record is missing in the minimal state: nothing synced it.
        assert!(finding.reason.contains("acked record") && finding.reason.contains("is missing"), "{pl}");
        assert!(st.states_checked >= 1 && st.states_checked <= st.states_total, "{pl}");
        let reason = t.checker.reason().expect("the trial is a violation");
        assert!(reason.starts_with("at a power loss after the full disk: acked record"), "{reason}");
        let replay = st.replay.as_deref().expect("a failing state has a replay line");
        assert!(replay.contains(&format!("--crash enospc,power-loss --seed 15 --trial {}", t.trial)), "{replay}");
        assert!(replay.contains(&format!("--state '{}'", finding.state)), "{replay}");
    }
    let counts = enospc_section(&report).enospc.as_ref().and_then(|e| e.power_loss.clone());
    let checked = judgments(&report).iter().map(|pl| states(pl).states_checked).sum();
    assert_eq!(
        counts,
        Some(EnospcPowerLossCounts { judged: TRIALS as u64, not_judged: 0, states_checked: checked, violations: 2 })
    );
    assert!(summary.contains("at a power loss after the full disk: 2 trial(s) judged"), "{summary}");
    // The plain power-loss trials still run, as their own section.
    assert_eq!(report.power_loss.as_ref().map(|p| p.trials), Some(TRIALS as u64), "{summary}");
}

fn judgments_absent(report: &ExternalReport) -> bool {
    enospc_section(report)
        .trials_detail
        .iter()
        .all(|t| matches!(t.delivery, Delivery::Capacity { power_loss: None, .. }))
}

#[test]
fn a_writer_that_syncs_its_entry_and_each_record_before_acking_passes_enospc_power_loss() {
    let dir = fast_dir();
    let report = programs::run(&config("fill-fallocate-durable", &BOTH, dir.path()));
    let summary = report.human_summary();
    assert_eq!(report.summary.violations, 0, "{summary}");
    for pl in judgments(&report) {
        let st = states(&pl);
        assert!(!st.verdict.is_violation() && st.finding.is_none(), "{pl}");
        // Its file is there, sized and synced: floor and newest agree on
        // every acked page.
        assert!(st.states_checked >= 1, "{pl}");
        assert!(st.files.iter().any(|f| f.path == "log.db" && f.floor_size > 0), "{pl}");
    }
    let e = enospc_section(&report).enospc.clone().unwrap();
    assert_eq!(e.exited_with_error, TRIALS as u64, "it stops on fallocate's ENOSPC: {summary}");
    assert_eq!(e.power_loss.map(|c| (c.judged, c.violations)), Some((TRIALS as u64, 0)), "{summary}");
}

#[test]
fn a_writer_that_never_syncs_its_directory_may_lose_its_file_at_a_power_loss_after_the_full_disk() {
    let dir = fast_dir();
    let mut c = config("fill-fallocate", &BOTH, dir.path());
    c.trials = 1;
    let report = programs::run(&c);
    let pl = &judgments(&report)[0];
    let finding = states(pl).finding.as_ref().unwrap_or_else(|| panic!("no finding: {pl}"));
    assert!(finding.reason.contains("log.db is missing"), "{pl}");
    assert!(finding.explanation.contains("creating \"log.db\"") && finding.explanation.contains("not fsynced"), "{pl}");
}

#[test]
fn the_replay_of_a_failing_state_re_creates_the_trial_and_fails_in_that_state() {
    let dir = fast_dir();
    let mut c = config("fill-fallocate-unsynced", &BOTH, dir.path());
    c.trials = 1;
    let report = programs::run(&c);
    let pl = &judgments(&report)[0];
    let finding = states(pl).finding.clone().unwrap_or_else(|| panic!("no finding: {pl}"));
    let mut replay = c.clone();
    replay.capacity = report.config.capacity;
    let target = ReplayTarget::Trial { crash: CrashKind::Enospc, trial: 0, clean_ns: 0 };
    let state: StateText = finding.state.parse().expect("the finding's state parses");
    let o = match replay_trial_in_state(&replay, target, Some(&state), &AtomicBool::new(false)).expect("it replays") {
        Replayed::Trial(o) => o,
        other => panic!("a trial was replayed, not {other:?}"),
    };
    let Delivery::Capacity { power_loss: Some(pl), .. } = &o.delivery else { panic!("no judgment: {}", o.delivery) };
    let st = states(pl);
    assert_eq!(st.state.as_deref(), Some(finding.state.as_str()), "the state resolves as given: {pl}");
    assert_eq!(st.verdict.reason(), Some(finding.reason.as_str()), "{pl}");
    assert!(o.checker.is_violation(), "{o:?}");
    // Without --state the whole trial is judged again, and fails again.
    let Replayed::Trial(o) = replay_trial_in_state(&replay, target, None, &AtomicBool::new(false)).unwrap() else {
        panic!("a trial")
    };
    assert!(o.checker.reason().is_some_and(|r| r.starts_with("at a power loss after the full disk")), "{o:?}");
}

#[test]
fn where_the_oracle_cannot_run_each_trial_says_its_power_loss_states_were_not_judged() {
    let dir = fast_dir();
    let mut c = config("fill-fallocate-unsynced", &BOTH, dir.path());
    // What the engine is told where ptrace, seccomp or setns is missing (it
    // holds for the enospc trials; the plain power-loss trials here still
    // find the oracle, and are not what this test is about).
    c.oracle_unavailable = Some("ptrace is unavailable (a probe)".into());
    let report = programs::run(&c);
    let summary = report.human_summary();
    for pl in judgments(&report) {
        assert_eq!(pl.to_string(), "power-loss states not judged: not traced (ptrace is unavailable (a probe))");
    }
    assert!(summary.contains("power-loss states not judged in 2 trial(s) (not traced)"), "{summary}");
}
