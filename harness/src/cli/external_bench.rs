//! `crashlab bench external`: trials/s of external-program trials (workload
//! protocol v1, SIGKILL at a random time, then the checker) against a bare
//! spawn+kill+wait floor doing the same process work, measured in the same run.
//! Also `crashlab bench oracle` (the durability oracle's slowdown of an
//! msync-per-op writer and of a create/write/fsync/rename/dir-fsync writer), `crashlab bench power-loss` (the simulated
//! power-loss model's state exploration against a naive oracle) and
//! `crashlab bench checkers` (power-loss states checked per second by a v1
//! checker, a v1.1 checker server and the testkit, on one target); `crashlab
//! bench faults` is `fault_bench.rs`.

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
    /// Power-loss states checked per second of one target (the `bench-log`
    /// example, `--tear 512`) judged by its v1 checker (the baseline), by
    /// its v1.1 checker server, and by the testkit, in the same run.
    Checkers(CheckersBenchArgs),
    /// Trials/s of real power cuts of an example workload
    /// (`--crash power-loss-real`, root) next to its simulated power loss,
    /// in the same run.
    PowerLossReal(crate::cli::real_cut_bench::RealCutBenchArgs),
    /// Trials/s of one writer under several crash kinds (`--kinds`, default
    /// sigkill, power-loss, eio-sync and enospc) in the same run, and each kind's
    /// cost per trial against sigkill and a traced power-loss trial.
    Faults(crate::cli::fault_bench::FaultBenchArgs),
}

#[derive(Args)]
pub struct CheckersBenchArgs {
    /// The example workloads' binary (default: `crashlab-workload` next to
    /// this crashlab, as `cargo build -p crashlab-scenarios` puts it).
    #[arg(long, value_name = "PATH")]
    workload: Option<PathBuf>,
    /// The test binary of `scenarios/tests/testkit_bench_log.rs` (`cargo
    /// test -p crashlab-scenarios --test testkit_bench_log --no-run` prints
    /// it); without it the testkit is not measured.
    #[arg(long, value_name = "PATH")]
    testkit: Option<PathBuf>,
    /// Power-loss trials of each run (each crash just before a record's
    /// msync leaves 4096 states).
    #[arg(long, default_value_t = 6)]
    trials: u32,
    #[arg(long, default_value_t = 1)]
    seed: u64,
    /// Directory for the runs' directories. Default: the system temp dir.
    #[arg(long)]
    dir: Option<PathBuf>,
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
        BenchTarget::Checkers(c) => return checkers(c),
        BenchTarget::PowerLossReal(r) => return crate::cli::real_cut_bench::run(r),
        BenchTarget::Faults(f) => return crate::cli::fault_bench::run(f),
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

/// The jobs of every run of `bench checkers` (the testkit's test uses 2).
const CHECKER_BENCH_JOBS: usize = 2;

/// One measured way of checking: states checked, checker runs, seconds.
struct Checked {
    states: u64,
    runs: u64,
    secs: f64,
}

impl Checked {
    fn rate(&self) -> f64 {
        self.states as f64 / self.secs
    }
}

/// `crashlab bench checkers`.
fn checkers(a: CheckersBenchArgs) -> Result<ExitCode> {
    let workload = match a.workload {
        Some(w) => w,
        None => std::env::current_exe()?.with_file_name("crashlab-workload"),
    };
    anyhow::ensure!(
        workload.is_file(),
        "--workload {}: no such file (build it with `cargo build -p crashlab-scenarios`, or give its path)",
        workload.display()
    );
    let w = shell_words::quote(&workload.to_string_lossy()).into_owned();
    let (writer, setup) = (format!("{w} bench-log writer"), format!("{w} bench-log setup"));
    let configure = |mut c: ExternalConfig| {
        c.crashes = vec![CrashKind::PowerLoss];
        c.trials = a.trials;
        c.seed = a.seed;
        c.jobs = CHECKER_BENCH_JOBS;
        c.tear = Some(512);
        if let Some(d) = &a.dir {
            c.dir = d.clone();
        }
        c
    };
    let v1 = configure(ExternalConfig::new(&writer, &format!("{w} bench-log checker"), Some(&setup), false)?);
    let server = configure(ExternalConfig::with_checker_server(
        &writer,
        &format!("{w} bench-log checker-server"),
        Some(&setup),
        false,
    )?);
    let measure = |c: &ExternalConfig| -> Result<Checked> {
        let start = Instant::now();
        let report = run_external(c, &AtomicBool::new(false), &|_| {})?;
        let secs = start.elapsed().as_secs_f64();
        anyhow::ensure!(!report.violation_found(), "bench-log is correct, but `{}` found a violation", c.checker.text);
        let pl = report.power_loss.context("a power-loss run has a power-loss section")?;
        Ok(Checked { states: pl.states_checked, runs: pl.checker_runs, secs })
    };
    let fs = crashlab::environment::fs_type(&v1.dir);
    println!(
        "crashlab bench checkers on {fs} ({}): target `bench-log` (records of 6 KiB, msync, ack), --crash power-loss --tear 512, {} trials, seed {}, {CHECKER_BENCH_JOBS} jobs; whole runs timed (clean run, traced writers, states)",
        v1.dir.display(),
        a.trials,
        a.seed
    );
    let base = measure(&v1)?;
    let served = measure(&server)?;
    let testkit = a.testkit.as_deref().map(|t| testkit_run(t, a.trials, a.seed)).transpose()?;
    println!(
        "{:>28} {:>8} {:>13} {:>9} {:>10} {:>7}",
        "checker", "states", "checker runs", "seconds", "states/s", "ratio"
    );
    let row = |name: &str, c: &Checked| {
        println!(
            "{name:>28} {:>8} {:>13} {:>9.2} {:>10.0} {:>6.1}x",
            c.states,
            c.runs,
            c.secs,
            c.rate(),
            c.rate() / base.rate()
        )
    };
    row("v1 --checker (baseline)", &base);
    row("v1.1 --checker-server", &served);
    match &testkit {
        Some(t) => row("testkit (checker server)", t),
        None => println!("{:>28} (not measured: give --testkit)", "testkit"),
    }
    println!(
        "figure: checker server {:.0} states/s; baseline: v1 checker {:.0} states/s, same run; ratio {:.1} (target >= 10)",
        served.rate(),
        base.rate(),
        served.rate() / base.rate()
    );
    Ok(ExitCode::SUCCESS)
}

/// The testkit's run of the same target: its test binary's one test, with
/// the trials and seed in its environment; it prints what it checked.
fn testkit_run(binary: &Path, trials: u32, seed: u64) -> Result<Checked> {
    const TEST: &str = "bench_log_passes_every_power_loss_state_with_torn_sectors";
    let out = Command::new(binary)
        .args([TEST, "--exact", "--nocapture", "--test-threads", "1"])
        .env("CRASHLAB_BENCH_TRIALS", trials.to_string())
        .env("CRASHLAB_BENCH_SEED", seed.to_string())
        .stdin(Stdio::null())
        .output()
        .with_context(|| format!("--testkit {}: cannot run it", binary.display()))?;
    let stdout = String::from_utf8_lossy(&out.stdout);
    let line = stdout.lines().find_map(|l| l.split_once("crashlab-bench-testkit ").map(|(_, rest)| rest)).with_context(|| {
        format!(
            "--testkit {}: no `crashlab-bench-testkit` line (is it the test binary of testkit_bench_log.rs?); it printed:\n{stdout}{}",
            binary.display(),
            String::from_utf8_lossy(&out.stderr)
        )
    })?;
    let f: Vec<&str> = line.split_whitespace().collect();
    anyhow::ensure!(f.len() == 3, "--testkit: cannot read `{line}`");
    Ok(Checked { states: f[0].parse()?, runs: f[1].parse()?, secs: f[2].parse()? })
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
