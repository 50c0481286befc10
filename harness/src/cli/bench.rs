//! `crashlab bench`: trials/s of the lab against a bare floor measured in the
//! same run, at several file sizes, with 1 and 2 workers.

use std::process::ExitCode;
use std::sync::atomic::AtomicBool;
use std::sync::Arc;
use std::time::Instant;

use anyhow::Result;
use clap::Args;

use crashlab::crash::{CrashPoint, PointSelection};
use crashlab::expectation::PersistenceModel;
use crashlab::lab::pool::{run_batches, run_floor, Batch, PoolConfig};
use crashlab::lab::protocol::TrialPlan;
use crashlab::page_size::page_size;
use crashlab::payload::BaseImage;
use crashlab::report::survival::MatrixConfig;
use crashlab::spec::{MappingKind, SyncPolicy, WorkloadParams, WriterSpec};
use crashlab::vocab::CrashKind;
use crashlab::worker_pool::WorkerCommand;
use crashlab::{flag_limits, limits};

#[derive(Args)]
pub struct BenchArgs {
    /// File sizes in bytes, comma-separated.
    #[arg(long, value_delimiter = ',', default_value = "4096,65536,1048576,16777216")]
    sizes: Vec<u64>,
    /// Rough seconds per measurement.
    #[arg(long, default_value_t = 0.4)]
    seconds: f64,
    /// Rounds per size: floor, 1 job and 2 jobs are measured alternately in
    /// each round and the medians reported, so a burst of load elsewhere
    /// hits both sides of a ratio alike.
    #[arg(long, default_value_t = 5)]
    rounds: usize,
    /// Directory for the files under test. Default: the system temp dir.
    #[arg(long)]
    dir: Option<std::path::PathBuf>,
    #[command(subcommand)]
    target: Option<crate::cli::external_bench::BenchTarget>,
}

pub fn run(a: BenchArgs) -> Result<ExitCode> {
    if let Some(target) = a.target {
        return crate::cli::external_bench::run(target);
    }
    if !(a.seconds.is_finite() && a.seconds > 0.0) {
        anyhow::bail!("--seconds must be a positive number of seconds, not {}", a.seconds);
    }
    if a.sizes.is_empty() {
        anyhow::bail!("--sizes needs at least one size");
    }
    for &size in &a.sizes {
        flag_limits::check_size("--sizes", size).map_err(anyhow::Error::msg)?;
    }
    let dir = crate::cli::campaign::work_dir(&a.dir)?;
    // The largest size on 2 workers, each trial's record kept until the
    // measurement ends (at most 2 × 200,000 trials).
    let largest = *a.sizes.iter().max().expect("checked above");
    let config = MatrixConfig {
        seed: 1,
        file_size: largest,
        txns: WorkloadParams::with_file_size(largest).txns,
        points: PointSelection::Random(1),
        trials: 400_000,
        scenarios: vec!["shared/no-sync".parse().expect("a valid scenario")],
        crashes: vec![CrashKind::Sigkill],
        models: vec![PersistenceModel::ProcessCrash],
        tear: crashlab::power_loss::DEFAULT_TEAR,
        shard: None,
        real: Vec::new(),
        real_sample: None,
    };
    limits::check_footprint(
        &limits::matrix_footprint(&config, 2),
        &limits::Resources::probe(Some(dir.path())),
        &crate::cli::campaign::dir_label(a.dir.as_deref(), dir.path()),
    )
    .map_err(|e| anyhow::anyhow!("--sizes {largest}: {e}"))?;
    let fs = crashlab::environment::fs_type(dir.path());
    println!("crashlab bench on {fs} ({}): shared/no-sync writer, SIGKILL after its last store", dir.path().display());
    println!("floor = bare fork + the same stores + SIGKILL + waitpid + read-back, no harness logic, 1 process");
    println!(
        "{:>10} {:>12} {:>12} {:>7} {:>12} {:>8}",
        "file", "floor t/s", "1 job t/s", "ratio", "2 jobs t/s", "speedup"
    );
    for &size in &a.sizes {
        let spec = writer(size)?;
        let pool = |jobs| pool_of(dir.path(), jobs);
        // Calibrate the trial count on the floor, then measure.
        let probe = run_floor(&pool(1), &spec, 20)?;
        let per_sec = 20.0 / (probe as f64 / 1e9);
        let n = ((per_sec * a.seconds) as u32).clamp(20, 200_000);
        let (mut floors, mut lab1s, mut lab2s, mut ratios, mut speedups) = (vec![], vec![], vec![], vec![], vec![]);
        for _ in 0..a.rounds.max(1) {
            let floor = n as f64 / (run_floor(&pool(1), &spec, n)? as f64 / 1e9);
            let lab1 = lab_rate(&pool(1), &spec, n as usize)?;
            let lab2 = lab_rate(&pool(2), &spec, 2 * n as usize)?;
            ratios.push(lab1 / floor);
            speedups.push(lab2 / lab1);
            floors.push(floor);
            lab1s.push(lab1);
            lab2s.push(lab2);
        }
        println!(
            "{:>10} {:>12.0} {:>12.0} {:>7.2} {:>12.0} {:>7.2}x",
            human(size),
            median(&mut floors),
            median(&mut lab1s),
            median(&mut ratios),
            median(&mut lab2s),
            median(&mut speedups)
        );
    }
    println!(
        "medians of {} rounds (ratio and speedup: median of the per-round ratios); \
         targets: ratio >= 0.70 at 4 KiB..1 MiB; speedup >= 1.8x with 2 jobs on 2 cores",
        a.rounds.max(1)
    );
    enospc_against_sigkill(&a, dir.path())?;
    Ok(ExitCode::SUCCESS)
}

/// The matrix's `enospc` column (a sparse file on a tmpfs whose capacity is
/// set per trial, every capacity) against its `sigkill` column (every op
/// boundary) of the same writer, alternately in the same rounds, 1 job.
fn enospc_against_sigkill(a: &BenchArgs, dir: &std::path::Path) -> Result<()> {
    let pool = pool_of(dir, 1);
    if let Err(why) = crashlab::lab::pool::probe_capacity(&pool)? {
        println!("enospc column: not measured, its tmpfs cannot be mounted here ({why})");
        return Ok(());
    }
    println!("matrix columns of the shared/no-sync writer, 1 job: sigkill (every op boundary) against enospc");
    println!("(every capacity: a sparse file on a tmpfs whose free pages are set per trial)");
    println!("{:>10} {:>12} {:>12} {:>7}", "file", "sigkill t/s", "enospc t/s", "ratio");
    for &size in &a.sizes {
        let spec = writer(size)?;
        // Calibrate on the sigkill column, then measure both alike.
        let probe = column_rate(&pool, &spec, CrashKind::Sigkill, 20)?;
        let n = ((probe * a.seconds) as usize).clamp(20, 100_000);
        let (mut kills, mut fulls, mut ratios) = (vec![], vec![], vec![]);
        for _ in 0..a.rounds.max(1) {
            let kill = column_rate(&pool, &spec, CrashKind::Sigkill, n)?;
            let full = column_rate(&pool, &spec, CrashKind::Enospc, n)?;
            ratios.push(full / kill);
            kills.push(kill);
            fulls.push(full);
        }
        println!(
            "{:>10} {:>12.0} {:>12.0} {:>7.2}",
            human(size),
            median(&mut kills),
            median(&mut fulls),
            median(&mut ratios)
        );
    }
    Ok(())
}

/// Trials/s of `trials` trials of the matrix column `kind` of `spec`, its
/// points (`all` for enospc, `boundaries` for sigkill) taken in turn.
fn column_rate(pool: &PoolConfig, spec: &WriterSpec, kind: CrashKind, trials: usize) -> Result<f64> {
    let selection = if kind == CrashKind::Enospc { PointSelection::All } else { PointSelection::Boundaries };
    let points = crashlab::crash::crash_points(spec, kind, selection, 0);
    let plans: Vec<TrialPlan> =
        points.iter().cycle().take(trials).map(|&point| TrialPlan { kind, point, power_loss: None }).collect();
    let spec = Arc::new(spec.clone());
    let base = BaseImage::for_crash(kind);
    let batches: Vec<Batch> =
        plans.chunks(32).map(|c| Batch { key: 0, spec: spec.clone(), base, plans: c.to_vec() }).collect();
    let start = Instant::now();
    let records = run_batches(pool, &batches, &AtomicBool::new(false), &|_| {})?;
    let secs = start.elapsed().as_secs_f64();
    let bad = records.iter().flatten().filter(|r| !r.verdict.violations.is_empty()).count();
    anyhow::ensure!(bad == 0, "{bad} {kind} benchmark trials broke the model; run `crashlab matrix` to see why");
    Ok(trials as f64 / secs)
}

fn lab_rate(pool: &PoolConfig, spec: &WriterSpec, trials: usize) -> Result<f64> {
    // Kill just before the final munmap: the same work as the floor's child.
    let point = CrashPoint::BeforeOp(spec.ops.len() - 1);
    let spec = Arc::new(spec.clone());
    let plans = vec![TrialPlan { kind: CrashKind::Sigkill, point, power_loss: None }; trials];
    let batches: Vec<Batch> = plans
        .chunks(32)
        .map(|c| Batch { key: 0, spec: spec.clone(), base: BaseImage::Pattern, plans: c.to_vec() })
        .collect();
    let start = Instant::now();
    let records = run_batches(pool, &batches, &AtomicBool::new(false), &|_| {})?;
    let secs = start.elapsed().as_secs_f64();
    let bad = records.iter().flatten().filter(|r| !r.verdict.violations.is_empty()).count();
    anyhow::ensure!(bad == 0, "{bad} benchmark trials broke the model; run `crashlab matrix` to see why");
    Ok(trials as f64 / secs)
}

/// The benchmark's writer: `shared/no-sync` on a file of `size` bytes.
fn writer(size: u64) -> Result<WriterSpec> {
    WriterSpec::generate(&WorkloadParams::with_file_size(size), MappingKind::Shared, SyncPolicy::None, page_size(), 1)
        .map_err(|e| anyhow::anyhow!("--sizes {size}: {e}"))
}

/// `jobs` workers of this executable keeping their files in `dir`.
fn pool_of(dir: &std::path::Path, jobs: usize) -> PoolConfig {
    PoolConfig {
        command: WorkerCommand::current_exe().expect("current exe"),
        jobs,
        dir: dir.to_owned(),
        watchdog_secs: 60,
    }
}

fn median(v: &mut [f64]) -> f64 {
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

fn human(bytes: u64) -> String {
    match bytes {
        b if b >= 1 << 20 && b % (1 << 20) == 0 => format!("{} MiB", b >> 20),
        b if b >= 1 << 10 && b % (1 << 10) == 0 => format!("{} KiB", b >> 10),
        b => format!("{b} B"),
    }
}
