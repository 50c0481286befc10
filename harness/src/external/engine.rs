//! The external-run engine: validate, calibrate with a clean run, run the
//! trials of every crash kind on `jobs` threads, and build the report; and
//! replay one trial.
//!
//! Threads are safe here because every child is started by fork+exec: no
//! Rust code ever runs in a forked child.

use std::path::Path;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Mutex;
use std::time::{Duration, Instant, SystemTime};

use super::capacity::{capacity_of_run, run_enospc_trial};
use super::checker::Checker;
use super::config::{in_trial, ExternalConfig, Supervision};
use super::power_loss::{calibrate as calibrate_power_loss, run_power_loss_trials};
use super::power_loss::{StateText, StatesReplay};
use super::traced_trial::{run_trial_at_calls, CallCalibration};
use super::trial::{run_clean, run_trial, CleanOutcome, TrialSlot};
use super::{canonical, run_dir, ExternalError};
use crate::program_plan::{PowerLossPlan, ProgramPoints, TrialPlan};
use crate::report::external::{
    aggregate_section, CleanRun, Delivery, ExternalReport, ExternalRunInfo, ExternalSummary, ReplayTarget,
    TrialOutcome, EXTERNAL_REPORT_KIND, EXTERNAL_SCHEMA_VERSION, PROTOCOL_VERSION,
};
use crate::report::external_enospc_power_loss::EnospcPowerLoss;
use crate::report::external_power_loss::{aggregate_power_loss, PowerLossCalibration, PowerLossSection};
use crate::vocab::CrashKind;

/// The trial slot of the clean run, in the run's directory: what it left
/// stays there for the run (the default `--capacity` is measured on it).
const CLEAN_SLOT: &str = "clean";

/// The clean run alone (setup, writer to completion, checker), in a
/// temporary directory of its own.
pub fn calibrate(config: &ExternalConfig, cancel: &AtomicBool) -> Result<CleanRun, ExternalError> {
    config.validate()?;
    let tmp = run_dir(&config.dir)?;
    let dir = canonical(tmp.path())?;
    let (clean, _) = clean_run(config, &dir, &config.supervision(cancel))?;
    Ok(clean)
}

fn clean_run(
    config: &ExternalConfig,
    dir: &Path,
    supervision: &Supervision<'_>,
) -> Result<(CleanRun, Duration), ExternalError> {
    let line = config.replay_line(ReplayTarget::Clean);
    let mut checker = Checker::for_job(config, dir.join("clean-server"));
    let outcome = TrialSlot::create(dir, CLEAN_SLOT)
        .and_then(|slot| run_clean(config, &slot, &mut checker, supervision))
        .map_err(|e| in_trial(e, "the clean run".into(), &line))?;
    let CleanOutcome { writer_seed, duration, acks, checker } = outcome;
    let report = CleanRun {
        writer_seed,
        duration_ns: duration.as_nanos() as u64,
        acks: acks.len() as u64,
        last_ack: acks.last().cloned(),
        checker,
        replay: line.to_string(),
    };
    Ok((report, duration))
}

/// Run the whole experiment: the clean run, then `trials` trials of every
/// crash kind, `jobs` at a time (power loss last, after a second clean run
/// under the oracle). `on_trial` sees each process-crash outcome as it comes
/// (for progress). Stops with `Interrupted` once `cancel` is set, with the
/// first trial's error if one fails; either way every child is killed and
/// reaped and every temporary file removed.
pub fn run_external(
    config: &ExternalConfig,
    cancel: &AtomicBool,
    on_trial: &(dyn Fn(&TrialOutcome) + Sync),
) -> Result<ExternalReport, ExternalError> {
    config.validate()?;
    let started = Instant::now();
    let started_at_unix = SystemTime::now().duration_since(SystemTime::UNIX_EPOCH).map_or(0, |d| d.as_secs());
    let tmp = run_dir(&config.dir)?;
    let dir = canonical(tmp.path())?;
    let supervision = config.supervision(cancel);
    let (clean, clean_duration) = clean_run(config, &dir, &supervision)?;
    // `enospc` trials run on the capacity given, or derived from what the
    // clean run left; the report and the replay lines carry it either way.
    let with_capacity;
    let config = if config.crashes.contains(&CrashKind::Enospc) && !clean.checker.is_violation() {
        let capacity = capacity_of_run(config, &dir.join(CLEAN_SLOT))?;
        with_capacity = ExternalConfig { capacity: Some(capacity), ..config.clone() };
        &with_capacity
    } else {
        config
    };
    let run_config = config.run_config();
    let mut sections = Vec::new();
    let mut power_loss = None;
    let mut power_loss_real = None;
    let mut eio_sync = None;
    let mut traced_clean_run = None;
    if !clean.checker.is_violation() {
        // The kinds whose trials are one untraced writer run each: the
        // process crashes, and `enospc` (a run to its end on a full disk).
        let process_crashes: Vec<CrashKind> =
            run_config.crashes.iter().copied().filter(|&c| c.is_process_crash() || c == CrashKind::Enospc).collect();
        let plans: Vec<TrialPlan> = process_crashes
            .iter()
            .flat_map(|&c| config.trial_indices().map(move |t| TrialPlan::new(config.seed, c, t)))
            .collect();
        // Under `--points syscalls`, one traced clean run gives the call
        // points of the process crashes and of the power losses.
        let traced = match config.points {
            ProgramPoints::Syscalls if plans.iter().any(|p| at_calls(config, p.crash)) => {
                Some(traced_calibration(config, &dir, &supervision)?)
            }
            _ => None,
        };
        let calls = traced
            .as_ref()
            .map(|c| CallCalibration { clean: Duration::from_nanos(c.traced_clean_ns), calls: c.traced_calls });
        let timing = Timing { clean: clean_duration, calls };
        let mut outcomes = run_trials(config, &dir, &plans, timing, cancel, on_trial)?;
        outcomes.iter_mut().for_each(|o| name_states_replay(config, timing, o));
        for &crash in &process_crashes {
            let of_kind: Vec<TrialOutcome> = outcomes.iter().filter(|o| o.plan.crash == crash).cloned().collect();
            let replay = |trial| config.replay_line(timing.target(config, crash, trial)).to_string();
            sections.push(aggregate_section(crash, &of_kind, &replay));
        }
        // The traced clean run of the power losses also counts the data
        // syncs of the eio-sync trials.
        let mut traced_for_eio = traced.clone();
        if run_config.crashes.contains(&CrashKind::PowerLoss) {
            let section = traced_section(config, &dir, &supervision, traced.clone(), CrashKind::PowerLoss)?;
            traced_for_eio.get_or_insert_with(|| section.calibration.clone());
            power_loss = Some(section);
        }
        if run_config.crashes.contains(&CrashKind::EioSync) {
            eio_sync = Some(traced_section(config, &dir, &supervision, traced_for_eio, CrashKind::EioSync)?);
        }
        traced_clean_run = traced;
        if run_config.crashes.contains(&CrashKind::PowerLossReal) {
            power_loss_real = Some(super::real_cut::run_real_cut_trials(config, &dir, &supervision)?);
        }
    }
    let mut summary =
        ExternalSummary::of(&clean, &sections, power_loss.as_ref(), eio_sync.as_ref(), config.allow_no_acks);
    if let Some(r) = &power_loss_real {
        summary.add_real_cuts(r, config.allow_no_acks);
    }
    let environment = crate::environment::probe(&dir);
    drop(tmp);
    Ok(ExternalReport {
        schema_version: EXTERNAL_SCHEMA_VERSION.into(),
        report_kind: EXTERNAL_REPORT_KIND.into(),
        protocol_version: PROTOCOL_VERSION,
        crashlab_version: env!("CARGO_PKG_VERSION").into(),
        run: ExternalRunInfo {
            started_at_unix,
            duration_ms: started.elapsed().as_millis() as u64,
            dir: config.dir.display().to_string(),
            jobs: config.jobs,
        },
        environment,
        seed: config.seed,
        config: run_config,
        clean_run: clean,
        traced_clean_run,
        crashes: sections,
        power_loss,
        power_loss_real,
        eio_sync,
        summary,
    })
}

/// The replay line of an `enospc` trial's failing power-loss state
/// (`--crash enospc,power-loss`): the trial's, with the minimal state.
fn name_states_replay(config: &ExternalConfig, timing: Timing, o: &mut TrialOutcome) {
    if let Delivery::Capacity { power_loss: Some(EnospcPowerLoss::States(s)), .. } = &mut o.delivery {
        if let Some(f) = &s.finding {
            let line = config.replay_line(timing.target(config, o.plan.crash, o.plan.trial)).with_state(&f.state);
            s.replay = Some(line.to_string());
        }
    }
}

/// Does a trial of `crash` run at traced calls (`--points syscalls`)?
fn at_calls(config: &ExternalConfig, crash: CrashKind) -> bool {
    config.points == ProgramPoints::Syscalls && matches!(crash, CrashKind::Sigkill | CrashKind::Abort)
}

/// The clean run under the oracle: its duration and the calls it traced.
fn traced_calibration(
    config: &ExternalConfig,
    dir: &Path,
    supervision: &Supervision<'_>,
) -> Result<PowerLossCalibration, ExternalError> {
    TrialSlot::create(dir, "traced-clean").and_then(|slot| calibrate_power_loss(config, &slot, supervision)).map_err(
        |e| {
            let target = ReplayTarget::Clean;
            in_trial(e, "the clean run under the durability oracle".into(), &config.replay_line(target))
        },
    )
}

/// What the process-crash trials' crash points are measured against.
#[derive(Debug, Clone, Copy)]
struct Timing {
    /// The untraced clean run (random times of the default points).
    clean: Duration,
    /// The traced clean run, under `--points syscalls`.
    calls: Option<CallCalibration>,
}

impl Timing {
    /// The replay target of `trial` of `crash`.
    fn target(&self, config: &ExternalConfig, crash: CrashKind, trial: u32) -> ReplayTarget {
        match self.calls {
            Some(c) if at_calls(config, crash) => {
                ReplayTarget::TrialAtCalls { crash, trial, clean_ns: c.clean.as_nanos() as u64, calls: c.calls }
            }
            _ => ReplayTarget::Trial { crash, trial, clean_ns: self.clean.as_nanos() as u64 },
        }
    }
}

/// The trials of a traced power-loss kind (`power-loss`, or `eio-sync`:
/// power-loss trials after one failed data sync): calibrate under the
/// oracle (unless `traced` already did), plan, run, aggregate into a
/// section of one shape.
fn traced_section(
    config: &ExternalConfig,
    dir: &Path,
    supervision: &Supervision<'_>,
    traced: Option<PowerLossCalibration>,
    kind: CrashKind,
) -> Result<PowerLossSection, ExternalError> {
    let abandon = AtomicBool::new(false);
    let supervision = supervision.with_abandon(&abandon);
    let calibration = match traced {
        Some(c) => c,
        None => traced_calibration(config, dir, &supervision)?,
    };
    let (plans, target): (Vec<PowerLossPlan>, Box<dyn Fn(u32) -> ReplayTarget>) = if kind == CrashKind::EioSync {
        let syncs = calibration.data_syncs;
        if let Some(k) = config.eio_at.filter(|&k| k > syncs) {
            return Err(ExternalError::BadInput(format!(
                "--crash eio-sync:{k}: the writer's traced clean run made only {syncs} data syncs (fsync, \
                 fdatasync, msync with MS_SYNC)"
            )));
        }
        let plans =
            config.trial_indices().filter_map(|t| PowerLossPlan::eio_sync(config.seed, t, syncs, config.eio_at));
        let clean_ns = calibration.traced_clean_ns;
        (plans.collect(), Box::new(move |trial| ReplayTarget::EioSync { trial, clean_ns, syncs }))
    } else {
        let calls = calibration.crash_point_calls(config.points);
        let plans = config.trial_indices().map(|t| PowerLossPlan::new(config.seed, t, calls, config.points));
        let clean_ns = calibration.traced_clean_ns;
        (plans.collect(), Box::new(move |trial| ReplayTarget::PowerLoss { trial, clean_ns, calls }))
    };
    let outcomes = run_power_loss_trials(config, dir, &plans, &calibration, &supervision, &abandon)?;
    let page = crate::page_size::page_size();
    let replay = |trial, state: &str| config.replay_line(target(trial)).with_state(state).to_string();
    let mut section = aggregate_power_loss(
        config.tear,
        config.tear.unwrap_or(page),
        config.power_loss.explore.exhaustive_bound,
        config.power_loss.explore.random_states,
        calibration,
        &outcomes,
        &replay,
    );
    section.fs_model = Some(config.power_loss.fs_model.name().to_owned());
    section.history_method =
        Some(crate::page_history::HistoryMethod::of(config.power_loss.history.record, &section.history));
    Ok(section)
}

fn run_trials(
    config: &ExternalConfig,
    dir: &Path,
    plans: &[TrialPlan],
    timing: Timing,
    cancel: &AtomicBool,
    on_trial: &(dyn Fn(&TrialOutcome) + Sync),
) -> Result<Vec<TrialOutcome>, ExternalError> {
    let next = AtomicUsize::new(0);
    let abandon = AtomicBool::new(false);
    let results: Mutex<Vec<Option<TrialOutcome>>> = Mutex::new(vec![None; plans.len()]);
    let first_error: Mutex<Option<ExternalError>> = Mutex::new(None);
    let supervision = config.supervision(cancel).with_abandon(&abandon);
    std::thread::scope(|scope| {
        for job in 0..config.jobs.min(plans.len()) {
            let (next, abandon, results, first_error, supervision) =
                (&next, &abandon, &results, &first_error, &supervision);
            scope.spawn(move || {
                let fail = |e: ExternalError| {
                    first_error.lock().unwrap().get_or_insert(e);
                    abandon.store(true, Ordering::SeqCst);
                };
                let slot = match TrialSlot::create(dir, &format!("job-{job}")) {
                    Ok(slot) => slot,
                    Err(e) => return fail(e),
                };
                // One checker (server) per job, killed when the job ends.
                let mut checker = Checker::for_job(config, dir.join(format!("job-{job}-server")));
                while !supervision.stopped() {
                    let i = next.fetch_add(1, Ordering::SeqCst);
                    let Some(plan) = plans.get(i) else { return };
                    let outcome = match timing.calls {
                        _ if plan.crash == CrashKind::Enospc => {
                            let capacity = config.capacity.expect("the engine sets the capacity of enospc trials");
                            let target = timing.target(config, plan.crash, plan.trial);
                            let replay = StatesReplay { target, state: None };
                            run_enospc_trial(config, &slot, plan, capacity, &mut checker, supervision, replay)
                        }
                        Some(calls) if at_calls(config, plan.crash) => {
                            run_trial_at_calls(config, &slot, plan, calls, &mut checker, supervision)
                        }
                        _ => run_trial(config, &slot, plan, timing.clean, &mut checker, supervision),
                    };
                    match outcome {
                        Ok(outcome) => {
                            config.progress.trial_done();
                            on_trial(&outcome);
                            results.lock().unwrap()[i] = Some(outcome);
                        }
                        // A trial stopped because another failed: not its error.
                        Err(e) if e.is_interrupted() => return,
                        Err(e) => {
                            let target = timing.target(config, plan.crash, plan.trial);
                            let name = format!("{} trial {}", plan.crash, plan.trial);
                            return fail(in_trial(e, name, &config.replay_line(target)));
                        }
                    }
                }
            });
        }
    });
    if cancel.load(Ordering::SeqCst) {
        return Err(ExternalError::Interrupted);
    }
    if let Some(e) = first_error.into_inner().unwrap() {
        return Err(e);
    }
    Ok(results.into_inner().unwrap().into_iter().map(|r| r.expect("every trial ran")).collect())
}

/// What a replay re-created.
#[derive(Debug, Clone)]
pub enum Replayed {
    Clean(CleanRun, Vec<String>),
    Trial(TrialOutcome),
}

/// Re-create one trial (or the clean run) from the seed and its index and
/// run it again: same `CRASHLAB_SEED`, same crash time (the same fraction of
/// `clean_ns`), same sigbus choices. The crash time is replayed, not the
/// instruction it hit: a random-time crash may land elsewhere in the writer.
/// Power-loss trials are replayed by [`crate::external::power_loss::replay_power_loss`].
pub fn replay_trial(
    config: &ExternalConfig,
    target: ReplayTarget,
    cancel: &AtomicBool,
) -> Result<Replayed, ExternalError> {
    replay_trial_in_state(config, target, None, cancel)
}

/// [`replay_trial`]; for an `enospc` trial under `--crash
/// enospc,power-loss`, with `state`, only that state of the power loss at
/// the writer's end is checked (without, every state is).
pub fn replay_trial_in_state(
    config: &ExternalConfig,
    target: ReplayTarget,
    state: Option<&StateText>,
    cancel: &AtomicBool,
) -> Result<Replayed, ExternalError> {
    config.validate()?;
    let tmp = run_dir(&config.dir)?;
    let dir = canonical(tmp.path())?;
    let supervision = config.supervision(cancel);
    let mut checker = Checker::for_job(config, dir.join("replay-server"));
    match target {
        ReplayTarget::Clean => {
            let line = config.replay_line(target);
            let outcome = TrialSlot::create(&dir, CLEAN_SLOT)
                .and_then(|slot| run_clean(config, &slot, &mut checker, &supervision))
                .map_err(|e| in_trial(e, "the clean run".into(), &line))?;
            let report = CleanRun {
                writer_seed: outcome.writer_seed,
                duration_ns: outcome.duration.as_nanos() as u64,
                acks: outcome.acks.len() as u64,
                last_ack: outcome.acks.last().cloned(),
                checker: outcome.checker,
                replay: line.to_string(),
            };
            Ok(Replayed::Clean(report, outcome.acks))
        }
        ReplayTarget::PowerLoss { .. }
        | ReplayTarget::EioSync { .. }
        | ReplayTarget::Trial { crash: CrashKind::PowerLoss | CrashKind::EioSync, .. } => {
            Err(ExternalError::BadInput("power-loss and eio-sync trials are replayed by replay_power_loss".into()))
        }
        ReplayTarget::Trial { crash, trial, clean_ns } => {
            let plan = TrialPlan::new(config.seed, crash, trial);
            let line = config.replay_line(target);
            TrialSlot::create(&dir, "replay")
                .and_then(|slot| match (crash, config.capacity) {
                    (CrashKind::Enospc, Some(capacity)) => {
                        let replay = StatesReplay { target, state };
                        run_enospc_trial(config, &slot, &plan, capacity, &mut checker, &supervision, replay)
                    }
                    (CrashKind::Enospc, None) => Err(ExternalError::BadInput(
                        "--crash enospc: a replay needs the trial's --capacity (its replay line has it)".into(),
                    )),
                    _ => run_trial(config, &slot, &plan, Duration::from_nanos(clean_ns), &mut checker, &supervision),
                })
                .map(Replayed::Trial)
                .map_err(|e| in_trial(e, format!("{crash} trial {trial}"), &line))
        }
        ReplayTarget::TrialAtCalls { crash, trial, clean_ns, calls } => {
            let plan = TrialPlan::new(config.seed, crash, trial);
            let line = config.replay_line(target);
            let calibration = CallCalibration { clean: Duration::from_nanos(clean_ns), calls };
            TrialSlot::create(&dir, "replay")
                .and_then(|slot| run_trial_at_calls(config, &slot, &plan, calibration, &mut checker, &supervision))
                .map(Replayed::Trial)
                .map_err(|e| in_trial(e, format!("{crash} trial {trial}"), &line))
        }
    }
}
