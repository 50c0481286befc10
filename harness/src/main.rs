//! The `crashlab` command: a thin layer over the library. Raw arguments are
//! parsed by clap, resolved into a config (defaults, validation, the seed),
//! then handed to the engine.
//!
//! Exit codes: 0 every verdict as expected; 1 a model violation or an
//! unexpected verdict was found (a result, reported); 2 the harness failed
//! or the input was bad.

use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use anyhow::{bail, Context, Result};
use clap::{Args, Parser, Subcommand};

use crashlab::crash::{CrashKind, PointSelection};
use crashlab::expectation::PersistenceModel;
use crashlab::lab::pool::PoolConfig;
use crashlab::matrix::{run_matrix_with_real, write_report};
use crashlab::report::{MatrixConfig, SurvivalReport};
use crashlab::scenario::{derive_seed, ScenarioId};
use crashlab::trial_space::{planned_trials_cancellable, Shard};
use crashlab::worker_pool::WorkerCommand;
use crashlab::LabError;
use crashlab::{flag_limits, limits};

mod cli;
use cli::{bench, replay};

#[derive(Parser)]
#[command(name = "crashlab", version, about = "What survives a crash of a program writing through mmap?")]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run the standard survival matrix (mapping × sync policy × crash kind)
    /// and write a JSON survival report.
    Matrix(MatrixArgs),
    /// Run one cell of the matrix: one scenario under one crash kind; or
    /// crash your own program (--writer, workload protocol v1).
    Run(RunArgs),
    /// Rerun one trial exactly, from the line a report prints.
    Replay(replay::ReplayArgs),
    /// Measure trials/s against a bare fork+store+kill+wait+read floor.
    Bench(bench::BenchArgs),
    /// Read, compare (diff), merge shards of, and render (html) survival
    /// reports; print their JSON Schema.
    Report(cli::report::ReportArgs),
    /// Check the simulated power-loss model against real power cuts
    /// (loopcut: loop devices, root; vm: a qemu guest killed).
    Soundness(cli::soundness::SoundnessArgs),
    /// Serve as a realcut worker (started by `crashlab soundness`).
    #[command(name = "__realcut-worker", hide = true, disable_help_flag = true)]
    RealcutWorker {
        #[arg(trailing_var_arg = true, allow_hyphen_values = true)]
        args: Vec<std::ffi::OsString>,
    },
    /// Serve as a forking worker (started by crashlab itself).
    #[command(name = "__worker", hide = true, disable_help_flag = true)]
    Worker {
        #[arg(trailing_var_arg = true, allow_hyphen_values = true)]
        args: Vec<std::ffi::OsString>,
    },
}

#[derive(Args, Clone)]
struct CommonArgs {
    /// Directory for the files under test (a fresh subdirectory is made and
    /// removed inside it). Default: the system temp dir.
    #[arg(long)]
    dir: Option<PathBuf>,
    /// The seed every random choice derives from. Default: a fresh one,
    /// printed and recorded in the report.
    #[arg(long)]
    seed: Option<u64>,
    /// Crash points per cell: `all` (every op boundary, plus points inside
    /// large stores), `boundaries` (op boundaries only: deterministic) or
    /// `random:N` (sampled from the seed, timed kills included; N at most
    /// 1,000,000).
    #[arg(long, default_value = "all")]
    points: PointSelection,
    /// Repetitions of every crash point (1 to 1,000,000).
    #[arg(long, default_value_t = 1)]
    trials: u32,
    /// Size of the file under test, in bytes (a multiple of the page size,
    /// at most 1 GiB).
    #[arg(long, default_value_t = 256 * 1024)]
    size: u64,
    /// Acknowledged transactions per writer (at most 100,000).
    #[arg(long, default_value_t = 12)]
    txns: u32,
    /// Worker processes (1 to 1024). Default: the number of cores.
    #[arg(long)]
    jobs: Option<usize>,
    /// Where to write the JSON survival report.
    #[arg(long, default_value = "reports/out/latest.json")]
    out: PathBuf,
    /// A writer still running after this many seconds (at least 1) is
    /// killed and reported.
    #[arg(long, default_value_t = 60)]
    timeout: u32,
    /// Print only the final line.
    #[arg(long, short)]
    quiet: bool,
    /// Persistence models, comma-separated: process-crash (the crash kinds
    /// of --crash), power-loss and power-loss-torn (simulated at every op
    /// boundary of a SIGKILLed writer).
    #[arg(long, value_delimiter = ',', default_value = "process-crash,power-loss,power-loss-torn")]
    model: Vec<PersistenceModel>,
    /// Sector size of power-loss-torn, in bytes (must divide the page size;
    /// default 512). With --writer --crash power-loss: tear pages into
    /// sectors of this size (default: whole pages).
    #[arg(long)]
    tear: Option<u64>,
    /// Run only shard I of N (e.g. 2/4): a contiguous block of every cell's
    /// crash points, the same whatever --jobs; `crashlab report merge` joins
    /// the N reports into the report of the whole campaign.
    #[arg(long, value_name = "I/N")]
    shard: Option<Shard>,
    #[command(flatten)]
    outputs: cli::campaign_outputs::OutputArgs,
}

#[derive(Args)]
struct MatrixArgs {
    #[command(flatten)]
    common: CommonArgs,
    /// Crash kinds (columns), comma-separated.
    #[arg(long, value_delimiter = ',', default_value = "sigkill,abort,sigbus,clean")]
    crash: Vec<CrashKind>,
    /// Scenarios (rows) as MAPPING/POLICY, comma-separated. Default: all 12.
    #[arg(long, value_delimiter = ',')]
    scenario: Vec<ScenarioId>,
    #[command(flatten)]
    real: cli::soundness::RealColumnArgs,
}

#[derive(Args)]
#[command(group(clap::ArgGroup::new("workload").required(true).args(["scenario", "writer"])))]
struct RunArgs {
    #[command(flatten)]
    common: CommonArgs,
    /// The scenario, as MAPPING/POLICY (e.g. shared/ms-sync-each).
    #[arg(long)]
    scenario: Option<ScenarioId>,
    /// With --scenario: sigkill, abort, sigbus or clean. With --writer:
    /// sigkill, sigabrt, sigbus or power-loss, comma-separated.
    #[arg(long)]
    crash: String,
    /// Your own program instead of a scenario (workload protocol v1).
    #[command(flatten)]
    external: cli::external_run::ExternalArgs,
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    if let Command::Worker { args } = cli.command {
        // Before anything could start a thread: the worker forks.
        return ExitCode::from(crashlab::lab::worker::worker_main(args) as u8);
    }
    if let Command::RealcutWorker { args } = cli.command {
        // Also forks: before anything could start a thread.
        return ExitCode::from(crashlab::realcut::worker::realcut_worker_main(args) as u8);
    }
    // Dropped on every way out of here, returns and panics alike.
    let _leftovers = KillLeftovers;
    match dispatch(cli.command) {
        Ok(code) => code,
        Err(e) => {
            if matches!(e.downcast_ref::<LabError>(), Some(LabError::Interrupted)) {
                eprintln!("crashlab: interrupted; workers stopped, temporary files removed");
                return ExitCode::from(130);
            }
            eprintln!("crashlab: error: {}", error_text(&e));
            ExitCode::from(2)
        }
    }
}

/// `e` and its causes as one line, like anyhow's `{:#}` ("context: cause:
/// cause"), but a cause whose text the line already holds is not added
/// again: many error types put their cause in their own message *and*
/// return it from `source()`, which `{:#}` would print twice ("Is a
/// directory (os error 21): Is a directory (os error 21)").
fn error_text(e: &anyhow::Error) -> String {
    let mut text = e.to_string();
    for cause in e.chain().skip(1) {
        let cause = cause.to_string();
        if !text.contains(&cause) {
            text.push_str(": ");
            text.push_str(&cause);
        }
    }
    text
}

fn dispatch(command: Command) -> Result<ExitCode> {
    match command {
        Command::Matrix(a) => {
            let scenarios = if a.scenario.is_empty() { ScenarioId::standard() } else { a.scenario };
            matrix(&a.common, scenarios, a.crash, Some(&a.real))
        }
        Command::Run(a) => match a.scenario {
            Some(s) => {
                let crash = a.crash.parse().map_err(|e| anyhow::anyhow!("--crash: {e}"))?;
                matrix(&a.common, vec![s], vec![crash], None)
            }
            None => {
                check_common(&a.common)?;
                cli::external_run::run(&a.common, &a.crash, &a.external)
            }
        },
        Command::Replay(a) => replay::run(a),
        Command::Bench(a) => bench::run(a),
        Command::Report(a) => cli::report::run(a),
        Command::Soundness(a) => cli::soundness::run(a),
        Command::Worker { .. } | Command::RealcutWorker { .. } => unreachable!("handled before dispatch"),
    }
}

/// Kills and reaps whatever crashlab's descendants left running, once it
/// has started a program of yours (`run --writer`): what left its process
/// group and could not be attributed to a trial (see
/// `external/escapes.rs`). Nothing of crashlab's own is running by then.
/// Ctrl-C, SIGTERM and SIGHUP cancel the run and come here too.
struct KillLeftovers;

impl Drop for KillLeftovers {
    fn drop(&mut self) {
        crashlab::external::kill_all_descendants();
    }
}

/// Ctrl-C and SIGTERM set this; the engine stops between batches.
fn cancel_flag() -> Result<Arc<AtomicBool>> {
    let flag = Arc::new(AtomicBool::new(false));
    let f = flag.clone();
    ctrlc::set_handler(move || f.store(true, Ordering::SeqCst)).context("cannot install the Ctrl-C handler")?;
    Ok(flag)
}

/// A fresh directory for the files under test, only its owner may enter
/// (0700), removed on every exit path but SIGKILL.
pub(crate) fn work_dir(dir: &Option<PathBuf>) -> Result<tempfile::TempDir> {
    let parent = dir.clone().unwrap_or_else(std::env::temp_dir);
    if let Some(d) = dir {
        match std::fs::metadata(d) {
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => bail!("--dir {}: no such directory", d.display()),
            Ok(m) if !m.is_dir() => bail!("--dir {}: not a directory", d.display()),
            _ => {}
        }
    }
    let b = crashlab::private_tempdir_in("crashlab-", &parent);
    match dir {
        Some(d) => b.with_context(|| format!("cannot create a work directory in --dir {}", d.display())),
        None => b.with_context(|| format!("cannot create a work directory in the temp dir {}", parent.display())),
    }
}

/// How messages name the directory of the files under test.
pub(crate) fn dir_label(dir: Option<&std::path::Path>, work: &std::path::Path) -> String {
    match dir {
        Some(d) => format!("--dir {}", d.display()),
        None => format!("the temp dir {}", work.parent().unwrap_or(work).display()),
    }
}

/// The flags every campaign of `matrix` and `run` shares, against the fixed
/// maxima of [`crashlab::limits`] (README, "Limits").
fn check_common(common: &CommonArgs) -> Result<()> {
    flag_limits::check_trials(common.trials, flag_limits::MATRIX_TRIALS).map_err(anyhow::Error::msg)?;
    if let Some(jobs) = common.jobs {
        flag_limits::check_jobs(jobs).map_err(anyhow::Error::msg)?;
    }
    flag_limits::check_timeout(common.timeout).map_err(anyhow::Error::msg)
}

pub(crate) fn pool_config(common: &CommonArgs, dir: &std::path::Path) -> Result<PoolConfig> {
    let cores = || std::thread::available_parallelism().map_or(1, |n| n.get()).min(flag_limits::MAX_JOBS);
    let jobs = common.jobs.unwrap_or_else(cores);
    flag_limits::check_jobs(jobs).map_err(anyhow::Error::msg)?;
    Ok(PoolConfig { command: WorkerCommand::current_exe()?, jobs, dir: dir.to_owned(), watchdog_secs: common.timeout })
}

pub(crate) fn fresh_seed() -> u64 {
    let t = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_nanos() as u64);
    derive_seed(t, &["fresh", &std::process::id().to_string()]) % 1_000_000_000
}

fn matrix(
    common: &CommonArgs,
    scenarios: Vec<ScenarioId>,
    crashes: Vec<CrashKind>,
    real: Option<&cli::soundness::RealColumnArgs>,
) -> Result<ExitCode> {
    if crashes.is_empty() {
        bail!("--crash needs at least one crash kind");
    }
    if common.model.is_empty() {
        bail!("--model needs at least one persistence model");
    }
    let seed = common.seed.unwrap_or_else(fresh_seed);
    let config = MatrixConfig {
        seed,
        file_size: common.size,
        txns: common.txns,
        points: common.points,
        trials: common.trials,
        scenarios,
        crashes,
        models: common.model.clone(),
        tear: common.tear.unwrap_or(crashlab::power_loss::DEFAULT_TEAR),
        shard: common.shard,
        real: real.map(|r| r.real.clone()).unwrap_or_default(),
        real_sample: real.and_then(|r| r.real_sample),
    };
    // Bad sizes and counts fail here, naming the flag, before any worker
    // starts: first the fixed maxima (before any writer is generated), then
    // what the writers make of them, then what the machine can hold.
    check_common(common)?;
    crashlab::matrix::check_matrix_config(&config).map_err(anyhow::Error::msg)?;
    let cancel = cancel_flag()?;
    for s in &config.scenarios {
        if cancel.load(Ordering::SeqCst) {
            return Err(LabError::Interrupted.into());
        }
        config.spec(*s).map_err(|e| anyhow::anyhow!("--size {} / --txns {}: {e}", common.size, common.txns))?;
    }
    let dir = work_dir(&common.dir)?;
    let pool = pool_config(common, dir.path())?;
    let footprint = limits::matrix_footprint(&config, pool.jobs);
    let here = limits::Resources::probe(Some(dir.path()));
    limits::check_footprint(&footprint, &here, &dir_label(common.dir.as_deref(), dir.path()))
        .map_err(anyhow::Error::msg)?;
    // Real columns that cannot run here (no root, no guest) fail now, exit 2.
    let real_run = cli::soundness::real_columns(
        real,
        &config.models,
        common.size,
        pool.jobs,
        common.timeout,
        common.dir.as_deref(),
    )?;
    if !common.quiet {
        eprintln!(
            "crashlab: seed {seed}; {} scenarios × {} crash kinds × {} models on {} worker(s) in {}",
            config.scenarios.len(),
            config.crashes.len(),
            config.models.len(),
            pool.jobs,
            dir.path().display()
        );
        if let Some(r) = &real_run {
            eprintln!("crashlab: {}", cli::soundness::describe_real_columns(&config.real, r));
        }
    }
    let planned = planned_trials_cancellable(&config, &cancel)?;
    let progress = cli::progress::CampaignProgress::new(planned, common.quiet);
    let real_setup = real_run.as_ref().map(|r| &r.setup);
    let report = run_matrix_with_real(&config, &pool, real_setup, &cancel, &|n| progress.advance(n))?;
    drop(progress);
    write_report(&report, &common.out)?;
    common.outputs.write(&report, common.quiet)?;
    print_outcome(&report, common);
    Ok(if report.all_as_expected() { ExitCode::SUCCESS } else { ExitCode::from(1) })
}

fn print_outcome(report: &SurvivalReport, common: &CommonArgs) {
    if !common.quiet {
        print!("{}", report.human_summary());
    }
    let s = &report.summary;
    let unsound = match report.soundness_violations() {
        0 => String::new(),
        n => format!(", {n} MODEL SOUNDNESS VIOLATION(S) in real power cuts"),
    };
    println!(
        "{}: {} cells, {} trials, {} unexpected, {} with model violations{unsound}; report: {}",
        if report.all_as_expected() { "ok" } else { "FAILED" },
        s.cells,
        s.trials,
        s.unexpected,
        s.model_violations,
        common.out.display()
    );
}

#[cfg(test)]
mod tests {
    use super::error_text;

    #[derive(Debug, thiserror::Error)]
    #[error("cannot read {what}: {source}")]
    struct Both {
        what: &'static str,
        source: std::io::Error,
    }

    #[test]
    fn a_cause_already_in_the_message_is_printed_once() {
        let io = || std::io::Error::from_raw_os_error(libc::EISDIR);
        let e = anyhow::Error::new(Both { what: "r.json", source: io() }).context("--out");
        let text = error_text(&e);
        assert_eq!(text, format!("--out: cannot read r.json: {}", io()));
        // A cause the message does not hold is still added.
        let e = anyhow::Error::new(io()).context("cannot read r.json");
        assert_eq!(error_text(&e), format!("cannot read r.json: {}", io()));
    }
}
