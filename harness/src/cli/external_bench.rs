//! `crashlab bench external`: trials/s of external-program trials (workload
//! protocol v1, SIGKILL at a random time, then the checker) against a bare
//! spawn+kill+wait floor doing the same process work, measured in the same run.
//! Also `crashlab bench oracle` (the durability oracle's slowdown of an
//! msync-per-op writer and of a create/write/fsync/rename/dir-fsync writer) and `crashlab bench power-loss` (the simulated
//! power-loss model's state exploration against a naive oracle).

use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Command, ExitCode, Stdio};
use std::sync::atomic::AtomicBool;
use std::time::{Duration, Instant};

use anyhow::{Context, Result};
use clap::{Args, Subcommand};

use crashlab::external::{run_external, CommandLine, ExternalConfig};
use crashlab::program_plan::TrialPlan;
use crashlab::vocab::CrashKind;

/// What `crashlab bench` measures besides the built-in matrix.
#[derive(Subcommand)]
pub enum BenchTarget {
    /// Trials/s of external programs (`run --writer`) against a bare
    /// spawn+kill+wait floor.
    External(ExternalBenchArgs),
    /// The durability oracle: an msync-per-op writer and a namespace writer
    /// (create/write/fsync/rename/dir fsync per op) untraced (the floor) and
    /// traced, on the default temp dir (and tmpfs); the slowdown ratios.
    Oracle(SecondsArgs),
    /// The simulated power-loss model: states/s of its exploration against
    /// a naive per-state oracle.
    PowerLoss(SecondsArgs),
}

#[derive(Args)]
pub struct SecondsArgs {
    /// Rough seconds for the whole measurement.
    #[arg(long, default_value_t = 4.0)]
    seconds: f64,
}

#[derive(Args)]
pub struct ExternalBenchArgs {
    /// Rough seconds per measurement.
    #[arg(long, default_value_t = 2.0)]
    seconds: f64,
    /// The writer (a trivial one: the benchmark measures crashlab, not it).
    #[arg(long, default_value = "true")]
    writer: String,
    #[arg(long, default_value = "true")]
    checker: String,
    /// Directory for the trial directories. Default: the system temp dir.
    #[arg(long)]
    dir: Option<PathBuf>,
    #[arg(long, default_value_t = 1)]
    seed: u64,
}

/// Measurements alternate between the floor and the lab this many times.
const ROUNDS: usize = 5;

pub fn run(target: BenchTarget) -> Result<ExitCode> {
    let a = match target {
        BenchTarget::External(a) => a,
        BenchTarget::Oracle(s) => return oracle(s.seconds),
        BenchTarget::PowerLoss(s) => {
            anyhow::ensure!(s.seconds.is_finite() && s.seconds >= 0.0, "--seconds {}: not a duration", s.seconds);
            println!("{}", crashlab::power_loss::run_bench(s.seconds));
            return Ok(ExitCode::SUCCESS);
        }
    };
    let mut config = ExternalConfig::new(&a.writer, &a.checker, None, false)?;
    config.crashes = vec![CrashKind::Sigkill];
    config.seed = a.seed;
    if let Some(d) = &a.dir {
        config.dir = d.clone();
    }
    let lab = |jobs: usize, trials: u32, die_with_crashlab: bool| -> Result<(f64, Duration)> {
        let mut c = config.clone();
        c.jobs = jobs;
        c.trials = trials;
        c.die_with_crashlab = die_with_crashlab;
        let start = Instant::now();
        let report = run_external(&c, &AtomicBool::new(false), &|_| {})?;
        let secs = start.elapsed().as_secs_f64();
        anyhow::ensure!(
            !report.violation_found(),
            "the benchmark's checker `{}` reported a violation; use a checker that always passes",
            a.checker
        );
        Ok((trials as f64 / secs, Duration::from_nanos(report.clean_run.duration_ns)))
    };
    // A short probe sizes the runs and gives the clean duration the floor's
    // kill times are fractions of (the same fractions as the lab's trials).
    let (probe_rate, clean) = lab(1, 20, true)?;
    let per_round = ((probe_rate * a.seconds / ROUNDS as f64) as u32).clamp(20, 20_000);
    let fs = crashlab::environment::fs_type(&config.dir);
    println!(
        "crashlab bench external on {fs} ({}): writer `{}`, SIGKILL at a random time in its clean run ({:.2} ms), checker `{}`",
        config.dir.display(),
        a.writer,
        clean.as_secs_f64() * 1e3,
        a.checker
    );
    println!(
        "floor = bare std::process::Command, 1 thread: spawn the writer, sleep to the same kill time, kill, wait; spawn the checker, wait (no pipes, no trial directory, no harness logic)"
    );
    println!("{ROUNDS} interleaved rounds of {per_round} trials each; medians of the rounds' rates");
    let delays: Vec<Duration> =
        (0..per_round).map(|t| TrialPlan::new(a.seed, CrashKind::Sigkill, t).crash_after(clean)).collect();
    let mut rates: [Vec<f64>; 4] = Default::default();
    // Interleaved, so a machine whose load drifts weighs on all alike.
    for _ in 0..ROUNDS {
        rates[0].push(floor_rate(&config.writer, &config.checker, &config.dir, &delays)?);
        rates[1].push(lab(1, per_round, true)?.0);
        rates[2].push(lab(1, per_round, false)?.0);
        rates[3].push(lab(2, 2 * per_round, true)?.0);
    }
    let [floor, lab1, fast1, lab2] = rates.map(|mut r| {
        r.sort_by(f64::total_cmp);
        r[r.len() / 2]
    });
    println!(
        "{:>12} {:>12} {:>7} {:>16} {:>7} {:>12} {:>8}",
        "floor t/s", "1 job t/s", "ratio", "no-pdeathsig t/s", "ratio", "2 jobs t/s", "speedup"
    );
    println!(
        "{:>12.0} {:>12.0} {:>7.2} {:>16.0} {:>7.2} {:>12.0} {:>7.2}x",
        floor,
        lab1,
        lab1 / floor,
        fast1,
        fast1 / floor,
        lab2,
        lab2 / lab1
    );
    println!(
        "1 job / 2 jobs: programs get PR_SET_PDEATHSIG (the default: a clone(CLONE_VM|CLONE_VFORK) per program); no-pdeathsig: std's posix_spawn"
    );
    println!("target: ratio >= 0.80");
    Ok(ExitCode::SUCCESS)
}

/// `crashlab bench oracle`. The oracle traces from the calling thread and
/// collects any child of it, so it gets a thread that starts nothing else.
fn oracle(seconds: f64) -> Result<ExitCode> {
    let bench = std::thread::spawn(move || crashlab::oracle::bench::run(seconds))
        .join()
        .map_err(|_| anyhow::anyhow!("the oracle benchmark panicked"))??;
    print!("{bench}");
    for d in [&bench.default_dir, &bench.rewrite, &bench.namespace] {
        println!(
            "figure, {} on {}: traced {:.1} µs/op, with the write history {:.1} µs/op; floor: untraced {:.1} µs/op; \
             ratios {:.3} and {:.3} (target <= {})",
            d.workload.label(),
            d.fs,
            d.traced_ns_per_op / 1e3,
            d.history_ns_per_op / 1e3,
            d.untraced_ns_per_op / 1e3,
            d.ratio(),
            d.history_ratio(),
            crashlab::oracle::bench::TARGET_RATIO
        );
    }
    Ok(ExitCode::SUCCESS)
}

/// The bare loop: the same programs (by absolute path, no PATH search), the
/// same kill times, nothing else.
fn floor_rate(writer: &CommandLine, checker: &CommandLine, dir: &Path, delays: &[Duration]) -> Result<f64> {
    let spawn = |line: &CommandLine| {
        Command::new(line.program_path())
            .arg0(line.program())
            .args(&line.argv()[1..])
            .current_dir(dir)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .with_context(|| format!("cannot start `{}`", line.program()))
    };
    let start = Instant::now();
    for &delay in delays {
        // The lab counts kill times from just before the spawn: so does the floor.
        let spawned_at = Instant::now();
        let mut w = spawn(writer)?;
        std::thread::sleep(delay.saturating_sub(spawned_at.elapsed()));
        let _ = w.kill();
        w.wait()?;
        spawn(checker)?.wait()?;
    }
    Ok(delays.len() as f64 / start.elapsed().as_secs_f64())
}
