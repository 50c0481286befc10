//! The external-run engine: validate, calibrate with a clean run, run the
//! trials of every crash kind on `jobs` threads, and build the report; and
//! replay one trial.
//!
//! Threads are safe here because every child is started by fork+exec: no
//! Rust code ever runs in a forked child.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime};

use super::command::{CommandLine, Role};
use super::plan::{PowerLossPlan, TrialPlan};
use super::power_loss::{
    aggregate_power_loss, calibrate as calibrate_power_loss, run_power_loss_trials, PowerLossOptions, PowerLossSection,
};
use super::report::{
    aggregate_section, CleanRun, ExternalReplayLine, ExternalReport, ExternalRunConfig, ExternalRunInfo,
    ExternalSummary, ReplayTarget, TrialOutcome, EXTERNAL_SCHEMA_VERSION, PROTOCOL_VERSION,
};
use super::trial::{run_clean, run_trial, CleanOutcome, TrialSlot};
use super::{canonical, run_dir, ExternalCrash, ExternalError};

/// How the user's programs are supervised: how long any one may run, when
/// to give up (`cancel` is the caller's, Ctrl-C; `abandon` the engine's own,
/// set when another trial failed), and whether they die with crashlab.
#[derive(Clone, Copy)]
pub struct Supervision<'a> {
    pub timeout: Duration,
    pub cancel: &'a AtomicBool,
    abandon: Option<&'a AtomicBool>,
    /// Give every program `PR_SET_PDEATHSIG` (SIGKILL), so that it dies if
    /// crashlab is killed outright (its process group would escape a kill
    /// of crashlab's group). This costs a plain fork instead of the
    /// vfork-like `posix_spawn` (about a fifth of the trial rate of a
    /// trivial writer); without it, a SIGKILLed crashlab leaves the programs
    /// of the trials in flight running to their end. Every other exit path
    /// kills them either way.
    pub die_with_crashlab: bool,
}

impl<'a> Supervision<'a> {
    pub fn new(timeout: Duration, cancel: &'a AtomicBool) -> Supervision<'a> {
        Supervision { timeout, cancel, abandon: None, die_with_crashlab: true }
    }

    /// Should the program being supervised be killed now?
    pub fn stopped(&self) -> bool {
        self.cancel.load(Ordering::SeqCst) || self.abandon.is_some_and(|a| a.load(Ordering::SeqCst))
    }

    pub fn timeout_secs(&self) -> u64 {
        self.timeout.as_secs()
    }

    /// The same, also stopped when `abandon` is set (by the engine, when
    /// another trial failed).
    pub(crate) fn with_abandon(self, abandon: &'a AtomicBool) -> Supervision<'a> {
        Supervision { abandon: Some(abandon), ..self }
    }
}

/// What a run has done so far, for progress lines read from another thread.
#[derive(Debug, Default)]
pub struct RunProgress {
    /// Trials finished, every crash kind (power loss included).
    pub trials_done: AtomicU64,
    /// Checker runs on power-loss states (shrinking included).
    pub states_checked: AtomicU64,
}

impl RunProgress {
    pub(crate) fn trial_done(&self) {
        self.trials_done.fetch_add(1, Ordering::Relaxed);
    }

    pub(crate) fn state_checked(&self) {
        self.states_checked.fetch_add(1, Ordering::Relaxed);
    }
}

/// Everything an external run needs.
#[derive(Debug, Clone)]
pub struct ExternalConfig {
    pub writer: CommandLine,
    pub checker: CommandLine,
    pub setup: Option<CommandLine>,
    pub crashes: Vec<ExternalCrash>,
    /// Trials per crash kind.
    pub trials: u32,
    pub seed: u64,
    pub jobs: usize,
    /// The longest any one setup, writer or checker may run.
    pub timeout: Duration,
    /// Where the run's temporary directory is made.
    pub dir: PathBuf,
    /// See [`Supervision::die_with_crashlab`].
    pub die_with_crashlab: bool,
    /// `--tear`: power-loss states choose per sector of this many bytes
    /// (it must divide the page size) instead of per page.
    pub tear: Option<u64>,
    pub power_loss: PowerLossOptions,
    /// `--allow-no-acks`: a run whose clean run, or every trial of a crash
    /// kind, saw no ack is a pass rather than `nothing-acked`.
    pub allow_no_acks: bool,
    /// Counted as the run goes; shared with whoever prints progress.
    pub progress: Arc<RunProgress>,
}

impl ExternalConfig {
    /// Parse the three command strings (see [`CommandLine::parse`]); other
    /// fields get defaults: sigkill, 100 trials, seed 0, 1 job, 60 s, the
    /// system temp dir, programs die with crashlab.
    pub fn new(writer: &str, checker: &str, setup: Option<&str>, shell: bool) -> Result<ExternalConfig, ExternalError> {
        Ok(ExternalConfig {
            writer: CommandLine::parse(Role::Writer, writer, shell)?,
            checker: CommandLine::parse(Role::Checker, checker, shell)?,
            setup: setup.map(|s| CommandLine::parse(Role::Setup, s, shell)).transpose()?,
            crashes: vec![ExternalCrash::Sigkill],
            trials: 100,
            seed: 0,
            jobs: 1,
            timeout: Duration::from_secs(60),
            dir: std::env::temp_dir(),
            die_with_crashlab: true,
            tear: None,
            power_loss: PowerLossOptions::default(),
            allow_no_acks: false,
            progress: Arc::default(),
        })
    }

    /// Reject what cannot run, naming the flag, before anything starts.
    pub fn validate(&self) -> Result<(), ExternalError> {
        if self.crashes.is_empty() {
            return Err(ExternalError::BadInput("--crash needs at least one crash kind".into()));
        }
        if let Some(tear) = self.tear {
            if !self.crashes.contains(&ExternalCrash::PowerLoss) {
                return Err(ExternalError::BadInput(format!("--tear {tear}: only --crash power-loss tears pages")));
            }
            let page = crate::page_size::page_size();
            if tear == 0 || page % tear != 0 {
                return Err(ExternalError::BadInput(format!(
                    "--tear {tear}: the sector size must divide the page size ({page} bytes)"
                )));
            }
        }
        if self.trials == 0 {
            return Err(ExternalError::BadInput("--trials must be at least 1".into()));
        }
        if self.jobs == 0 {
            return Err(ExternalError::BadInput("--jobs must be at least 1".into()));
        }
        if self.timeout.is_zero() {
            return Err(ExternalError::BadInput("--timeout must be at least 1 second".into()));
        }
        if !self.dir.is_dir() {
            return Err(ExternalError::BadInput(format!("--dir {}: not a directory", self.dir.display())));
        }
        Ok(())
    }

    pub fn supervision<'a>(&self, cancel: &'a AtomicBool) -> Supervision<'a> {
        Supervision { die_with_crashlab: self.die_with_crashlab, ..Supervision::new(self.timeout, cancel) }
    }

    pub fn run_config(&self) -> ExternalRunConfig {
        let mut crashes = self.crashes.clone();
        dedup_in_order(&mut crashes);
        ExternalRunConfig {
            writer: self.writer.text.clone(),
            checker: self.checker.text.clone(),
            setup: self.setup.as_ref().map(|s| s.text.clone()),
            shell: self.writer.shell,
            crashes,
            trials: self.trials,
            timeout_secs: self.timeout.as_secs(),
            tear: self.tear,
            allow_no_acks: self.allow_no_acks,
        }
    }

    pub fn replay_line(&self, target: ReplayTarget) -> ExternalReplayLine {
        ExternalReplayLine { config: self.run_config(), seed: self.seed, target, state: None }
    }
}

fn dedup_in_order<T: PartialEq + Copy>(v: &mut Vec<T>) {
    let mut seen = Vec::new();
    v.retain(|x| {
        let new = !seen.contains(x);
        seen.push(*x);
        new
    });
}

/// Errors that belong to one trial get its name and replay line; bad input
/// and interruptions do not.
pub(crate) fn in_trial(e: ExternalError, trial: String, replay: &ExternalReplayLine) -> ExternalError {
    match e {
        ExternalError::Timeout { .. }
        | ExternalError::Failed { .. }
        | ExternalError::CheckerMalfunction { .. }
        | ExternalError::AckOverflow { .. }
        | ExternalError::Io { .. } => ExternalError::InTrial { trial, replay: replay.to_string(), error: Box::new(e) },
        other => other,
    }
}

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
    let outcome = TrialSlot::create(dir, "clean")
        .and_then(|slot| run_clean(config, &slot, supervision))
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
    let run_config = config.run_config();
    let mut sections = Vec::new();
    let mut power_loss = None;
    if !clean.checker.is_violation() {
        let process_crashes: Vec<ExternalCrash> =
            run_config.crashes.iter().copied().filter(|&c| c != ExternalCrash::PowerLoss).collect();
        let plans: Vec<TrialPlan> = process_crashes
            .iter()
            .flat_map(|&c| (0..config.trials).map(move |t| TrialPlan::new(config.seed, c, t)))
            .collect();
        let outcomes = run_trials(config, &dir, &plans, clean_duration, cancel, on_trial)?;
        let clean_ns = clean_duration.as_nanos() as u64;
        for &crash in &process_crashes {
            let of_kind: Vec<TrialOutcome> = outcomes.iter().filter(|o| o.plan.crash == crash).cloned().collect();
            let replay = |trial| config.replay_line(ReplayTarget::Trial { crash, trial, clean_ns }).to_string();
            sections.push(aggregate_section(crash, &of_kind, &replay));
        }
        if run_config.crashes.contains(&ExternalCrash::PowerLoss) {
            power_loss = Some(power_loss_section(config, &dir, &supervision)?);
        }
    }
    let summary = ExternalSummary::of(&clean, &sections, power_loss.as_ref(), config.allow_no_acks);
    let environment = crate::environment::probe(&dir);
    drop(tmp);
    Ok(ExternalReport {
        schema_version: EXTERNAL_SCHEMA_VERSION.into(),
        report_kind: "external".into(),
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
        crashes: sections,
        power_loss,
        summary,
    })
}

/// The power-loss trials: calibrate under the oracle, run, aggregate.
fn power_loss_section(
    config: &ExternalConfig,
    dir: &Path,
    supervision: &Supervision<'_>,
) -> Result<PowerLossSection, ExternalError> {
    let abandon = AtomicBool::new(false);
    let supervision = supervision.with_abandon(&abandon);
    let calibration = TrialSlot::create(dir, "pl-clean")
        .and_then(|slot| calibrate_power_loss(config, &slot, &supervision))
        .map_err(|e| {
            let target = ReplayTarget::Clean;
            in_trial(e, "the clean run under the durability oracle".into(), &config.replay_line(target))
        })?;
    let plans: Vec<PowerLossPlan> =
        (0..config.trials).map(|t| PowerLossPlan::new(config.seed, t, calibration.sync_calls)).collect();
    let outcomes = run_power_loss_trials(config, dir, &plans, &calibration, &supervision, &abandon)?;
    let page = crate::page_size::page_size();
    let (clean_ns, calls) = (calibration.traced_clean_ns, calibration.sync_calls);
    let replay = |trial, state: &str| {
        config.replay_line(ReplayTarget::PowerLoss { trial, clean_ns, calls }).with_state(state).to_string()
    };
    Ok(aggregate_power_loss(
        config.tear,
        config.tear.unwrap_or(page),
        config.power_loss.explore.exhaustive_bound,
        config.power_loss.explore.random_states,
        calibration,
        &outcomes,
        &replay,
    ))
}

fn run_trials(
    config: &ExternalConfig,
    dir: &Path,
    plans: &[TrialPlan],
    clean: Duration,
    cancel: &AtomicBool,
    on_trial: &(dyn Fn(&TrialOutcome) + Sync),
) -> Result<Vec<TrialOutcome>, ExternalError> {
    let next = AtomicUsize::new(0);
    let abandon = AtomicBool::new(false);
    let results: Mutex<Vec<Option<TrialOutcome>>> = Mutex::new(vec![None; plans.len()]);
    let first_error: Mutex<Option<ExternalError>> = Mutex::new(None);
    let supervision = config.supervision(cancel).with_abandon(&abandon);
    let clean_ns = clean.as_nanos() as u64;
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
                while !supervision.stopped() {
                    let i = next.fetch_add(1, Ordering::SeqCst);
                    let Some(plan) = plans.get(i) else { return };
                    match run_trial(config, &slot, plan, clean, supervision) {
                        Ok(outcome) => {
                            config.progress.trial_done();
                            on_trial(&outcome);
                            results.lock().unwrap()[i] = Some(outcome);
                        }
                        // A trial stopped because another failed: not its error.
                        Err(e) if e.is_interrupted() => return,
                        Err(e) => {
                            let target = ReplayTarget::Trial { crash: plan.crash, trial: plan.trial, clean_ns };
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
    config.validate()?;
    let tmp = run_dir(&config.dir)?;
    let dir = canonical(tmp.path())?;
    let supervision = config.supervision(cancel);
    match target {
        ReplayTarget::Clean => {
            let line = config.replay_line(target);
            let outcome = TrialSlot::create(&dir, "clean")
                .and_then(|slot| run_clean(config, &slot, &supervision))
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
        ReplayTarget::PowerLoss { .. } | ReplayTarget::Trial { crash: ExternalCrash::PowerLoss, .. } => {
            Err(ExternalError::BadInput("power-loss trials are replayed by replay_power_loss".into()))
        }
        ReplayTarget::Trial { crash, trial, clean_ns } => {
            let plan = TrialPlan::new(config.seed, crash, trial);
            let line = config.replay_line(target);
            TrialSlot::create(&dir, "replay")
                .and_then(|slot| run_trial(config, &slot, &plan, Duration::from_nanos(clean_ns), &supervision))
                .map(Replayed::Trial)
                .map_err(|e| in_trial(e, format!("{crash} trial {trial}"), &line))
        }
    }
}

/// Write `report` as pretty JSON to `path` (`--out`), creating its
/// directory, atomically (see [`crate::report_file`]).
pub fn write_report(report: &ExternalReport, path: &Path) -> Result<(), ExternalError> {
    let mut json = serde_json::to_string_pretty(report).expect("reports serialize");
    json.push('\n');
    Ok(crate::report_file::write_atomically("--out", path, json.as_bytes())?)
}
