//! What every campaign command (`matrix`, `run`, `replay`, `bench`,
//! `soundness`) shares: the common flags, the seed, the Ctrl-C flag, the
//! work directory and the worker pool's configuration. One home, so that a
//! flag means the same in every command and every command cleans up alike.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use anyhow::{bail, Context, Result};
use clap::Args;

use crashlab::crash::PointSelection;
use crashlab::expectation::PersistenceModel;
use crashlab::flag_limits;
use crashlab::lab::pool::PoolConfig;
use crashlab::program_plan::ProgramPoints;
use crashlab::scenario::derive_seed;
use crashlab::trial_space::Shard;
use crashlab::worker_pool::WorkerCommand;

#[derive(Args, Clone)]
pub struct CommonArgs {
    /// Directory for the files under test (a fresh subdirectory is made and
    /// removed inside it). Default: the system temp dir.
    #[arg(long)]
    pub dir: Option<PathBuf>,
    /// The seed every random choice derives from. Default: a fresh one,
    /// printed and recorded in the report.
    #[arg(long)]
    pub seed: Option<u64>,
    /// Crash points. Built-in scenarios, per cell: `all` (the default: every
    /// op boundary, plus points inside large stores), `boundaries` (op
    /// boundaries only: deterministic) or `random:N` (sampled from the seed,
    /// timed kills included; N at most 1,000,000). With --writer: `default`
    /// (process crashes at random times; power losses at sync calls and
    /// random times) or `syscalls` (sigkill, abort and power-loss just
    /// before or just after any call the durability oracle traces, every
    /// sync and every call on a file of the trial directory, mixed with
    /// random times; the writer runs traced in every such trial).
    #[arg(long, value_name = "POINTS")]
    pub points: Option<PointsFlag>,
    /// Repetitions of every crash point (1 to 1,000,000).
    #[arg(long, default_value_t = 1)]
    pub trials: u32,
    /// Size of the file under test, in bytes (a multiple of the page size,
    /// at most 1 GiB).
    #[arg(long, default_value_t = 256 * 1024)]
    pub size: u64,
    /// Acknowledged transactions per writer (at most 100,000).
    #[arg(long, default_value_t = 12)]
    pub txns: u32,
    /// Worker processes (1 to 1024). Default: the number of cores.
    #[arg(long)]
    pub jobs: Option<usize>,
    /// Where to write the JSON survival report.
    #[arg(long, default_value = "reports/out/latest.json")]
    pub out: PathBuf,
    /// A writer still running after this many seconds (at least 1) is
    /// killed and reported.
    #[arg(long, default_value_t = 60)]
    pub timeout: u32,
    /// Print only the final line.
    #[arg(long, short)]
    pub quiet: bool,
    /// Persistence models, comma-separated: process-crash (the crash kinds
    /// of --crash), power-loss and power-loss-torn (simulated at every op
    /// boundary of a SIGKILLed writer).
    #[arg(long, value_delimiter = ',', default_value = "process-crash,power-loss,power-loss-torn")]
    pub model: Vec<PersistenceModel>,
    /// Sector size of power-loss-torn, in bytes (must divide the page size;
    /// default 512). With --writer --crash power-loss: tear pages into
    /// sectors of this size (default: whole pages).
    #[arg(long)]
    pub tear: Option<u64>,
    /// Run only shard I of N (e.g. 2/4): a contiguous block of every cell's
    /// crash points (with --writer: of every crash kind's trials), the same
    /// whatever --jobs; `crashlab report merge` joins the N reports into the
    /// report of the whole campaign.
    #[arg(long, value_name = "I/N")]
    pub shard: Option<Shard>,
    #[command(flatten)]
    pub outputs: super::campaign_outputs::OutputArgs,
}

/// `--points`: the crash points of built-in scenarios, or of `--writer`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PointsFlag {
    Scenario(PointSelection),
    Program(ProgramPoints),
}

impl std::str::FromStr for PointsFlag {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        if let Ok(p) = s.parse::<ProgramPoints>() {
            return Ok(PointsFlag::Program(p));
        }
        s.parse::<PointSelection>().map(PointsFlag::Scenario).map_err(|_| {
            format!(
                "bad --points `{s}` (expected `all`, `boundaries` or `random:N` with N ≥ 1 for built-in scenarios; \
                 `default` or `syscalls` with --writer)"
            )
        })
    }
}

impl CommonArgs {
    /// The crash points of built-in scenarios (`all` unless given).
    pub fn scenario_points(&self) -> Result<PointSelection> {
        match self.points {
            None => Ok(PointSelection::All),
            Some(PointsFlag::Scenario(p)) => Ok(p),
            Some(PointsFlag::Program(p)) => {
                bail!("--points {p} is for --writer; built-in scenarios take `all`, `boundaries` or `random:N`")
            }
        }
    }

    /// The crash points of `--writer` (`default` unless given).
    pub fn program_points(&self) -> Result<ProgramPoints> {
        match self.points {
            None => Ok(ProgramPoints::Default),
            Some(PointsFlag::Program(p)) => Ok(p),
            Some(PointsFlag::Scenario(p)) => {
                bail!("--points {p} is for built-in scenarios; with --writer, --points takes `default` or `syscalls`")
            }
        }
    }
}

/// Ctrl-C and SIGTERM set this; the engine stops between batches.
pub fn cancel_flag() -> Result<Arc<AtomicBool>> {
    let flag = Arc::new(AtomicBool::new(false));
    let f = flag.clone();
    ctrlc::set_handler(move || f.store(true, Ordering::SeqCst)).context("cannot install the Ctrl-C handler")?;
    Ok(flag)
}

/// A fresh directory for the files under test, only its owner may enter
/// (0700), removed on every exit path but SIGKILL.
pub fn work_dir(dir: &Option<PathBuf>) -> Result<tempfile::TempDir> {
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
pub fn dir_label(dir: Option<&std::path::Path>, work: &std::path::Path) -> String {
    match dir {
        Some(d) => format!("--dir {}", d.display()),
        None => format!("the temp dir {}", work.parent().unwrap_or(work).display()),
    }
}

/// The flags every campaign of `matrix` and `run` shares, against the fixed
/// maxima of [`crashlab::limits`] (README, "Limits").
pub fn check_common(common: &CommonArgs) -> Result<()> {
    flag_limits::check_trials(common.trials, flag_limits::MATRIX_TRIALS).map_err(anyhow::Error::msg)?;
    if let Some(jobs) = common.jobs {
        flag_limits::check_jobs(jobs).map_err(anyhow::Error::msg)?;
    }
    flag_limits::check_timeout(common.timeout).map_err(anyhow::Error::msg)
}

pub fn pool_config(common: &CommonArgs, dir: &std::path::Path) -> Result<PoolConfig> {
    let cores = || std::thread::available_parallelism().map_or(1, |n| n.get()).min(flag_limits::MAX_JOBS);
    let jobs = common.jobs.unwrap_or_else(cores);
    flag_limits::check_jobs(jobs).map_err(anyhow::Error::msg)?;
    Ok(PoolConfig { command: WorkerCommand::current_exe()?, jobs, dir: dir.to_owned(), watchdog_secs: common.timeout })
}

pub fn fresh_seed() -> u64 {
    let t = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_nanos() as u64);
    derive_seed(t, &["fresh", &std::process::id().to_string()]) % 1_000_000_000
}

/// `p` made absolute against the current directory: evidence directories are
/// handed to workers that run elsewhere.
pub fn absolute(p: &Path) -> Result<PathBuf> {
    if p.is_absolute() {
        return Ok(p.to_owned());
    }
    Ok(std::env::current_dir().context("cannot read the current directory")?.join(p))
}
