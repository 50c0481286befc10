//! The oracle's benchmark: an msync-per-op writer (store one byte into a
//! page of a mapped file, `msync(MS_SYNC)` that page) run untraced and traced
//! in the same run, on the default temp dir; the slowdown ratio is the
//! figure of merit (target ≤ [`TARGET_RATIO`]).
//!
//! A second line runs the same on tmpfs (`/dev/shm`) when it exists: there
//! msync writes nothing back, so it shows the tracer's fixed cost per trapped
//! call with nothing to hide it (the worst case, not the target).
//!
//! The per-op figures come from the writer's own clock around its loop, so
//! process start-up (exec, the tracer's set-up and the dynamic loader's
//! trapped mmaps) is excluded; whole-run wall times are reported too.

use std::fmt;
use std::io::Read;
use std::os::fd::{AsFd, FromRawFd, OwnedFd};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Instant;

use super::{run_traced, OracleConfig, OracleError, SyncEffect, TraceControl, TracedLaunch, TracedSyscall, WriterEnd};

/// The slowdown the oracle aims to stay under on the default temp dir.
pub const TARGET_RATIO: f64 = 1.5;

const SOURCE: &str = include_str!("bench_writer.c");
const PAGES: u64 = 16;
/// Untraced/traced pairs. The cost of an msync on a VM disk drifts by several
/// times within minutes (other load on the host), so runs alternate and the
/// ratio is taken per adjacent pair, then the median.
const ROUNDS: u32 = 5;

/// One directory's measurement: medians over the rounds.
#[derive(Debug, Clone, PartialEq)]
pub struct BenchLine {
    pub dir: PathBuf,
    pub fs: String,
    /// msyncs per run.
    pub ops: u64,
    /// Runs of each kind (alternating untraced, traced).
    pub rounds: u32,
    pub untraced_ns_per_op: f64,
    pub traced_ns_per_op: f64,
    /// Whole runs, fork to reap.
    pub untraced_run_ms: f64,
    pub traced_run_ms: f64,
    /// traced / untraced time per op of each adjacent pair, in run order.
    pub pair_ratios: Vec<f64>,
    /// `/proc/PID/maps` reads in a traced run (the cache at work: expect 1).
    pub maps_reads: u64,
}

impl BenchLine {
    /// The slowdown: the median over pairs of traced / untraced time per op.
    pub fn ratio(&self) -> f64 {
        median(self.pair_ratios.clone())
    }

    /// Added cost of tracing per msync, in µs.
    pub fn overhead_us(&self) -> f64 {
        (self.traced_ns_per_op - self.untraced_ns_per_op) / 1e3
    }
}

#[derive(Debug, Clone, PartialEq)]
pub struct OracleBench {
    /// The default temp dir: the target applies here.
    pub default_dir: BenchLine,
    /// tmpfs, if `/dev/shm` exists: the worst case.
    pub tmpfs: Option<BenchLine>,
}

impl fmt::Display for BenchLine {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(
            f,
            "  {} ({}), {} msync(MS_SYNC) per run, median of {} runs each:",
            self.dir.display(),
            self.fs,
            self.ops,
            self.rounds
        )?;
        writeln!(
            f,
            "    untraced {:>10.1} µs/op   run {:>9.1} ms",
            self.untraced_ns_per_op / 1e3,
            self.untraced_run_ms
        )?;
        writeln!(f, "    traced   {:>10.1} µs/op   run {:>9.1} ms", self.traced_ns_per_op / 1e3, self.traced_run_ms)?;
        let lo = self.pair_ratios.iter().copied().fold(f64::INFINITY, f64::min);
        let hi = self.pair_ratios.iter().copied().fold(0.0, f64::max);
        write!(
            f,
            "    slowdown {:.3}x (pairs {lo:.3}..{hi:.3}x; {:+.1} µs per traced msync by the medians; maps reads per run: {})",
            self.ratio(),
            self.overhead_us(),
            self.maps_reads
        )
    }
}

impl fmt::Display for OracleBench {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(f, "durability oracle: msync-per-op writer, untraced vs traced")?;
        writeln!(f, "{}", self.default_dir)?;
        let r = self.default_dir.ratio();
        writeln!(f, "  target <= {TARGET_RATIO}x: {}", if r <= TARGET_RATIO { "met" } else { "MISSED" })?;
        if let Some(t) = &self.tmpfs {
            writeln!(f, "worst case (tmpfs: msync writes nothing back, the tracer's fixed cost shows):")?;
            writeln!(f, "{t}")?;
        }
        Ok(())
    }
}

fn io_err(what: impl Into<String>) -> impl FnOnce(std::io::Error) -> OracleError {
    let what = what.into();
    move |e| OracleError::Io { what, source: e }
}

fn compile(dir: &Path) -> Result<PathBuf, OracleError> {
    let src = dir.join("bench_writer.c");
    let bin = dir.join("bench_writer");
    std::fs::write(&src, SOURCE).map_err(io_err(format!("cannot write {}", src.display())))?;
    let out = Command::new("cc")
        .args(["-O2", "-o"])
        .arg(&bin)
        .arg(&src)
        .output()
        .map_err(io_err("cannot run cc (gcc is needed to build the benchmark writer)"))?;
    if !out.status.success() {
        return Err(OracleError::Invalid(format!(
            "cc -O2 -o {} {} failed: {}",
            bin.display(),
            src.display(),
            String::from_utf8_lossy(&out.stderr)
        )));
    }
    Ok(bin)
}

fn parse_ns(stdout: &[u8], what: &str) -> Result<f64, OracleError> {
    String::from_utf8_lossy(stdout)
        .trim()
        .parse::<f64>()
        .map_err(|_| OracleError::Invalid(format!("{what}: unexpected output {:?}", String::from_utf8_lossy(stdout))))
}

/// One untraced run: (loop ns, whole-run ms).
fn untraced(bin: &Path, file: &Path, ops: u64) -> Result<(f64, f64), OracleError> {
    let start = Instant::now();
    let out = Command::new(bin)
        .arg(file)
        .arg(ops.to_string())
        .arg(PAGES.to_string())
        .output()
        .map_err(io_err(format!("cannot run {}", bin.display())))?;
    let ms = start.elapsed().as_secs_f64() * 1e3;
    if !out.status.success() {
        return Err(OracleError::Invalid(format!(
            "{} {} {ops} {PAGES} failed ({}): {}",
            bin.display(),
            file.display(),
            out.status,
            String::from_utf8_lossy(&out.stderr)
        )));
    }
    Ok((parse_ns(&out.stdout, "the untraced benchmark writer")?, ms))
}

/// One traced run: (loop ns, whole-run ms, maps reads).
fn traced(bin: &Path, dir: &Path, file: &Path, ops: u64) -> Result<(f64, f64, u64), OracleError> {
    let mut fds = [0; 2];
    // SAFETY: a valid two-int array; both fds are ours on success.
    if unsafe { libc::pipe2(fds.as_mut_ptr(), libc::O_CLOEXEC) } != 0 {
        return Err(io_err("pipe2 for the benchmark writer's stdout")(std::io::Error::last_os_error()));
    }
    let (r, w) = unsafe { (OwnedFd::from_raw_fd(fds[0]), OwnedFd::from_raw_fd(fds[1])) };
    let launch = TracedLaunch::new(bin).arg(file).arg(ops.to_string()).arg(PAGES.to_string()).stdout(w.as_fd());
    let start = Instant::now();
    let out = run_traced(&launch, &OracleConfig::new(dir), &TraceControl::new())?;
    let ms = start.elapsed().as_secs_f64() * 1e3;
    drop(launch);
    drop(w);
    let mut stdout = Vec::new();
    std::fs::File::from(r).read_to_end(&mut stdout).map_err(io_err("cannot read the traced writer's stdout"))?;
    if out.end != (WriterEnd::Exited { code: 0 }) {
        return Err(OracleError::Invalid(format!("the traced benchmark writer ended with {:?}", out.end)));
    }
    let copied =
        out.events.iter().filter(|e| e.syscall == TracedSyscall::Msync && e.effect == SyncEffect::Copied).count()
            as u64;
    if copied != ops {
        return Err(OracleError::Tracer(format!(
            "the benchmark expected {ops} copied msyncs, the oracle saw {copied}"
        )));
    }
    Ok((parse_ns(&stdout, "the traced benchmark writer")?, ms, out.stats.maps_reads))
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

fn measure(bin: &Path, parent: &Path, seconds: f64) -> Result<BenchLine, OracleError> {
    let work = crate::private_tempdir_in("crashlab-oracle-bench", parent)
        .map_err(io_err(format!("cannot create a directory in {}", parent.display())))?;
    let file = work.path().join("data");
    let page = crate::page_size::page_size();
    // Non-zero content, so no filesystem treats the file as sparse.
    let seed: Vec<u8> = (0..PAGES * page).map(|i| (i % 251) as u8 + 1).collect();
    std::fs::write(&file, seed).map_err(io_err(format!("cannot write {}", file.display())))?;
    // Calibrate on a short untraced run, then size the runs so that all of
    // them (traced ones up to ~2.5x slower) fit the time budget.
    let (cal_ns, _) = untraced(bin, &file, 20)?;
    let per_op = (cal_ns / 20.0).max(100.0);
    let ops = ((seconds * 1e9) / (f64::from(ROUNDS) * 3.5 * per_op)).clamp(20.0, 200_000.0) as u64;
    let (mut u_ns, mut t_ns, mut u_ms, mut t_ms, mut pair_ratios, mut maps_reads) =
        (vec![], vec![], vec![], vec![], vec![], 0);
    for round in 0..ROUNDS {
        // Alternate which goes first, so a drift favours neither.
        let (u, t) = if round % 2 == 0 {
            let u = untraced(bin, &file, ops)?;
            (u, traced(bin, work.path(), &file, ops)?)
        } else {
            let t = traced(bin, work.path(), &file, ops)?;
            (untraced(bin, &file, ops)?, t)
        };
        u_ns.push(u.0 / ops as f64);
        u_ms.push(u.1);
        t_ns.push(t.0 / ops as f64);
        t_ms.push(t.1);
        pair_ratios.push(t.0 / u.0);
        maps_reads = maps_reads.max(t.2);
    }
    Ok(BenchLine {
        dir: parent.to_path_buf(),
        fs: crate::environment::fs_type(parent),
        ops,
        rounds: ROUNDS,
        untraced_ns_per_op: median(u_ns),
        traced_ns_per_op: median(t_ns),
        untraced_run_ms: median(u_ms),
        traced_run_ms: median(t_ms),
        pair_ratios,
        maps_reads,
    })
}

/// Run the benchmark for about `seconds` (70% on the default temp dir, the
/// rest on tmpfs). Call it from a thread with no other unreaped children
/// (it traces from the calling thread).
pub fn run(seconds: f64) -> Result<OracleBench, OracleError> {
    if !(seconds.is_finite() && seconds > 0.0) {
        return Err(OracleError::Invalid(format!("the benchmark needs a positive duration, got {seconds}")));
    }
    let build = crate::private_tempdir_in("crashlab-oracle-bench-bin", &std::env::temp_dir())
        .map_err(io_err("cannot create a temporary directory for the benchmark writer"))?;
    let bin = compile(build.path())?;
    let shm = Path::new("/dev/shm");
    let has_tmpfs = shm.is_dir() && crate::environment::fs_type(shm) == "tmpfs";
    let main_share = if has_tmpfs { 0.7 } else { 1.0 };
    let default_dir = measure(&bin, &std::env::temp_dir(), seconds * main_share)?;
    let tmpfs = if has_tmpfs { Some(measure(&bin, shm, seconds * (1.0 - main_share))?) } else { None };
    Ok(OracleBench { default_dir, tmpfs })
}
