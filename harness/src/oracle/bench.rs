//! The oracle's benchmark: writers run untraced, traced, and traced with
//! the write history recorded, in the same run, on the default temp dir;
//! the slowdown ratio is the figure of merit (target ≤ [`TARGET_RATIO`],
//! with and without the history). Three writers:
//!
//! - [`Workload::Msync`]: store one byte into a page of a mapped file,
//!   `msync(MS_SYNC)` that page (one trapped call per op).
//! - [`Workload::Rewrite`]: store one byte into a page, `write` a log line
//!   to `/dev/null`, store another byte into it, `msync(MS_SYNC)` it: every
//!   page is rewritten between its syncs, so the history records a version
//!   per op (two trapped calls per op).
//! - [`Workload::Namespace`]: create `tmp` (`O_CREAT | O_TRUNC`), `write` a
//!   64-byte record, `fsync` it, `rename("tmp", "state")`, `fsync` the
//!   directory (five trapped calls per op, each a namespace event: a new
//!   inode life, a size change, a file sync, a rename, a directory sync).
//!
//! A second line per writer runs the same on tmpfs (`/dev/shm`) when it
//! exists: there syncs write nothing back, so it shows the tracer's fixed
//! cost per trapped call with nothing to hide it (the worst case, not the
//! target).
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

use super::{
    run_traced, OracleConfig, OracleError, OracleOutcome, SyncEffect, TraceControl, TracedLaunch, TracedSyscall,
    WriterEnd, MAX_FILES,
};
use crate::namespace::NsOp;

/// The slowdown the oracle aims to stay under on the default temp dir.
pub const TARGET_RATIO: f64 = 1.5;

const SOURCE: &str = include_str!("bench_writer.c");
const PAGES: u64 = 16;

/// The namespace writer (`bench_ns_writer DIR OPS`): in DIR, OPS times,
/// create `tmp`, write a 64-byte record, fsync it, rename it over `state`,
/// fsync the directory (one descriptor of "." opened before the loop).
/// Prints the loop's duration in nanoseconds (CLOCK_MONOTONIC).
const NS_SOURCE: &str = r#"
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

static int fail(const char *what) {
    fprintf(stderr, "bench_ns_writer: %s: %s\n", what, strerror(errno));
    return 4;
}

int main(int argc, char **argv) {
    if (argc != 3) return 2;
    long ops = atol(argv[2]);
    if (chdir(argv[1]) != 0) return fail("chdir");
    int dir = open(".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (dir < 0) return fail("open .");
    char rec[64];
    struct timespec t0, t1;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    for (long i = 0; i < ops; i++) {
        memset(rec, ' ', sizeof rec);
        snprintf(rec, sizeof rec, "record %ld", i);
        rec[sizeof rec - 1] = '\n';
        int fd = open("tmp", O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
        if (fd < 0) return fail("open tmp");
        if (write(fd, rec, sizeof rec) != (ssize_t)sizeof rec) return fail("write tmp");
        if (fsync(fd) != 0) return fail("fsync tmp");
        if (close(fd) != 0) return fail("close tmp");
        if (rename("tmp", "state") != 0) return fail("rename tmp state");
        if (fsync(dir) != 0) return fail("fsync .");
    }
    clock_gettime(CLOCK_MONOTONIC, &t1);
    printf("%lld\n", (long long)(t1.tv_sec - t0.tv_sec) * 1000000000LL + (t1.tv_nsec - t0.tv_nsec));
    return 0;
}
"#;

/// Untraced/traced pairs. The cost of an msync on a VM disk drifts by several
/// times within minutes (other load on the host), so runs alternate and the
/// ratio is taken per adjacent pair, then the median.
const ROUNDS: u32 = 5;

/// Every op of the namespace writer makes a new inode life, which the oracle
/// holds a descriptor to: a traced run may make at most this many.
const NS_MAX_OPS: u64 = MAX_FILES as u64 - 64;

/// What the benchmark's writer does per op.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Workload {
    /// A one-byte store into a mapped page, then `msync(MS_SYNC)` of it.
    Msync,
    /// create / write / fsync / rename / directory fsync.
    Namespace,
    /// A store, a trapped `write`, a store, an `msync` per op.
    Rewrite,
}

impl Workload {
    /// The row's name.
    pub fn label(self) -> &'static str {
        match self {
            Workload::Msync => "msync (store + msync(MS_SYNC))",
            Workload::Namespace => "namespace (create/write/fsync/rename/dir fsync)",
            Workload::Rewrite => "rewrite (store + write to /dev/null + store + msync(MS_SYNC))",
        }
    }

    fn op(self) -> &'static str {
        match self {
            Workload::Msync => "msync(MS_SYNC)",
            Workload::Namespace => "create+write+fsync+rename+dir fsync",
            Workload::Rewrite => "store+write+store+msync",
        }
    }
}

/// The namespace events of one traced run, by kind.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct NsCounts {
    /// New files given a name (`open` with `O_CREAT` that created one).
    pub creates: u64,
    /// Size changes (`O_TRUNC`, writes past the end).
    pub set_sizes: u64,
    /// `fdatasync`/`msync(MS_SYNC)` of a file.
    pub data_syncs: u64,
    /// `fsync` of a regular file.
    pub file_syncs: u64,
    pub renames: u64,
    /// `fsync` of a directory.
    pub dir_syncs: u64,
}

impl NsCounts {
    fn of(out: &OracleOutcome) -> NsCounts {
        let mut c = NsCounts::default();
        for e in &out.namespace.events {
            match e.op {
                NsOp::Create { .. } => c.creates += 1,
                NsOp::SetSize { .. } => c.set_sizes += 1,
                NsOp::SyncData { .. } => c.data_syncs += 1,
                NsOp::SyncFile { .. } => c.file_syncs += 1,
                NsOp::Rename { .. } => c.renames += 1,
                NsOp::SyncDir { .. } => c.dir_syncs += 1,
                _ => {}
            }
        }
        c
    }
}

/// One directory's measurement of one writer: medians over the rounds.
#[derive(Debug, Clone, PartialEq)]
pub struct BenchLine {
    pub workload: Workload,
    pub dir: PathBuf,
    pub fs: String,
    /// Ops (msyncs, or create..dir fsync sequences) per run.
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
    /// Traced with the write history recorded (`OracleConfig::history`).
    pub history_ns_per_op: f64,
    pub history_run_ms: f64,
    /// traced with history / untraced, per round, in run order.
    pub history_pair_ratios: Vec<f64>,
    /// Intermediate versions the last history run recorded (the rewrite
    /// writer's are checked to be there).
    pub history_versions: u64,
    /// `/proc/PID/maps` reads in a traced run (the cache at work: expect 1
    /// for the msync writer).
    pub maps_reads: u64,
    /// Ptrace stops (seccomp entry + syscall exit) per op of a traced run,
    /// start-up included (the median over the traced runs).
    pub stops_per_op: f64,
    /// The namespace events the oracle recorded in the last traced run
    /// (every traced run is checked to have recorded one of each kind the
    /// writer makes per op).
    pub ns_events: NsCounts,
}

impl BenchLine {
    /// The slowdown: the median over pairs of traced / untraced time per op.
    pub fn ratio(&self) -> f64 {
        median(self.pair_ratios.clone())
    }

    /// The slowdown with the write history recorded.
    pub fn history_ratio(&self) -> f64 {
        median(self.history_pair_ratios.clone())
    }

    /// Added cost of tracing per op, in µs.
    pub fn overhead_us(&self) -> f64 {
        (self.traced_ns_per_op - self.untraced_ns_per_op) / 1e3
    }
}

#[derive(Debug, Clone, PartialEq)]
pub struct OracleBench {
    /// The msync writer on the default temp dir: the target applies here.
    pub default_dir: BenchLine,
    /// The rewrite writer on the default temp dir: the target applies.
    pub rewrite: BenchLine,
    /// The msync writer on tmpfs, if `/dev/shm` exists: the worst case.
    pub tmpfs: Option<BenchLine>,
    /// The namespace writer on the default temp dir: the target applies.
    pub namespace: BenchLine,
    /// The namespace writer on tmpfs, if `/dev/shm` exists.
    pub namespace_tmpfs: Option<BenchLine>,
}

impl OracleBench {
    /// Every line, in the order printed.
    pub fn lines(&self) -> impl Iterator<Item = &BenchLine> {
        std::iter::once(&self.default_dir)
            .chain(self.tmpfs.as_ref())
            .chain(std::iter::once(&self.rewrite))
            .chain(std::iter::once(&self.namespace))
            .chain(self.namespace_tmpfs.as_ref())
    }
}

impl fmt::Display for BenchLine {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(
            f,
            "  {} ({}), {} {} per run, median of {} runs each:",
            self.dir.display(),
            self.fs,
            self.ops,
            self.workload.op(),
            self.rounds
        )?;
        writeln!(
            f,
            "    untraced {:>10.1} µs/op   run {:>9.1} ms",
            self.untraced_ns_per_op / 1e3,
            self.untraced_run_ms
        )?;
        writeln!(f, "    traced   {:>10.1} µs/op   run {:>9.1} ms", self.traced_ns_per_op / 1e3, self.traced_run_ms)?;
        writeln!(
            f,
            "    history  {:>10.1} µs/op   run {:>9.1} ms   slowdown {:.3}x ({} versions recorded in a run)",
            self.history_ns_per_op / 1e3,
            self.history_run_ms,
            self.history_ratio(),
            self.history_versions
        )?;
        let lo = self.pair_ratios.iter().copied().fold(f64::INFINITY, f64::min);
        let hi = self.pair_ratios.iter().copied().fold(0.0, f64::max);
        write!(
            f,
            "    slowdown {:.3}x (pairs {lo:.3}..{hi:.3}x; {:+.1} µs per traced op by the medians; ptrace stops per op: \
             {:.1}",
            self.ratio(),
            self.overhead_us(),
            self.stops_per_op
        )?;
        let n = &self.ns_events;
        match self.workload {
            Workload::Msync | Workload::Rewrite => write!(f, "; maps reads per run: {})", self.maps_reads),
            Workload::Namespace => write!(
                f,
                ";\n    namespace events per traced run: {} creates, {} size changes, {} file fsyncs, {} renames, {} dir \
                 fsyncs)",
                n.creates, n.set_sizes, n.file_syncs, n.renames, n.dir_syncs
            ),
        }
    }
}

impl fmt::Display for OracleBench {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(f, "durability oracle: writers untraced vs traced")?;
        for (line, tmpfs) in
            [(&self.default_dir, &self.tmpfs), (&self.rewrite, &None), (&self.namespace, &self.namespace_tmpfs)]
        {
            writeln!(f, "{}:", line.workload.label())?;
            writeln!(f, "{line}")?;
            let met = |r: f64| if r <= TARGET_RATIO { "met" } else { "MISSED" };
            writeln!(
                f,
                "  target <= {TARGET_RATIO}x: {} traced, {} with the history",
                met(line.ratio()),
                met(line.history_ratio())
            )?;
            if let Some(t) = tmpfs {
                writeln!(f, "  worst case (tmpfs: syncs write nothing back, the tracer's fixed cost shows):")?;
                writeln!(f, "{t}")?;
            }
        }
        Ok(())
    }
}

fn io_err(what: impl Into<String>) -> impl FnOnce(std::io::Error) -> OracleError {
    let what = what.into();
    move |e| OracleError::Io { what, source: e }
}

fn compile(dir: &Path, name: &str, source: &str) -> Result<PathBuf, OracleError> {
    let src = dir.join(format!("{name}.c"));
    let bin = dir.join(name);
    std::fs::write(&src, source).map_err(io_err(format!("cannot write {}", src.display())))?;
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

/// A compiled writer and the path it works on.
struct Writer<'a> {
    workload: Workload,
    bin: &'a Path,
    /// The msync writer's file, or the namespace writer's directory.
    target: PathBuf,
}

impl Writer<'_> {
    fn args(&self, ops: u64) -> Vec<String> {
        let mut a = vec![self.target.display().to_string(), ops.to_string()];
        match self.workload {
            Workload::Msync => a.push(PAGES.to_string()),
            Workload::Rewrite => a.extend([PAGES.to_string(), "rewrite".into()]),
            Workload::Namespace => {}
        }
        a
    }
}

/// One untraced run: (loop ns, whole-run ms).
fn untraced(w: &Writer, ops: u64) -> Result<(f64, f64), OracleError> {
    let args = w.args(ops);
    let start = Instant::now();
    let out = Command::new(w.bin).args(&args).output().map_err(io_err(format!("cannot run {}", w.bin.display())))?;
    let ms = start.elapsed().as_secs_f64() * 1e3;
    if !out.status.success() {
        return Err(OracleError::Invalid(format!(
            "{} {} failed ({}): {}",
            w.bin.display(),
            args.join(" "),
            out.status,
            String::from_utf8_lossy(&out.stderr)
        )));
    }
    Ok((parse_ns(&out.stdout, "the untraced benchmark writer")?, ms))
}

/// One traced run's figures.
struct TracedRun {
    loop_ns: f64,
    run_ms: f64,
    maps_reads: u64,
    stops: u64,
    ns: NsCounts,
    versions: u64,
}

/// Does a traced run show the writer's work? Else the run measured
/// something else, and the benchmark fails.
fn check_seen(w: &Writer, out: &OracleOutcome, ns: &NsCounts, ops: u64, history: bool) -> Result<(), OracleError> {
    match w.workload {
        Workload::Msync | Workload::Rewrite => {
            let copied = out
                .events
                .iter()
                .filter(|e| e.syscall == TracedSyscall::Msync && e.effect == SyncEffect::Copied)
                .count() as u64;
            if copied != ops {
                return Err(OracleError::Tracer(format!(
                    "the benchmark expected {ops} copied msyncs, the oracle saw {copied}"
                )));
            }
            if history && w.workload == Workload::Rewrite && out.history.versions < ops / 2 {
                return Err(OracleError::Tracer(format!(
                    "the rewrite writer stores into a page before each of its {ops} writes; the history recorded only {} \
                     versions",
                    out.history.versions
                )));
            }
        }
        Workload::Namespace => {
            let per_op = [ns.creates, ns.file_syncs, ns.renames, ns.dir_syncs];
            if per_op.iter().any(|&n| n != ops) || ns.set_sizes < ops {
                return Err(OracleError::Tracer(format!(
                    "the benchmark expected {ops} creates, size changes, file fsyncs, renames and dir fsyncs; the \
                     oracle saw {ns:?}"
                )));
            }
        }
    }
    Ok(())
}

fn traced(w: &Writer, dir: &Path, ops: u64, history: bool) -> Result<TracedRun, OracleError> {
    let mut fds = [0; 2];
    // SAFETY: a valid two-int array; both fds are ours on success.
    if unsafe { libc::pipe2(fds.as_mut_ptr(), libc::O_CLOEXEC) } != 0 {
        return Err(io_err("pipe2 for the benchmark writer's stdout")(std::io::Error::last_os_error()));
    }
    let (r, wr) = unsafe { (OwnedFd::from_raw_fd(fds[0]), OwnedFd::from_raw_fd(fds[1])) };
    let launch = TracedLaunch::new(w.bin).args(w.args(ops)).stdout(wr.as_fd());
    let start = Instant::now();
    let mut cfg = OracleConfig::new(dir);
    cfg.history = history;
    let out = run_traced(&launch, &cfg, &TraceControl::new())?;
    let run_ms = start.elapsed().as_secs_f64() * 1e3;
    drop(launch);
    drop(wr);
    let mut stdout = Vec::new();
    std::fs::File::from(r).read_to_end(&mut stdout).map_err(io_err("cannot read the traced writer's stdout"))?;
    if out.end != (WriterEnd::Exited { code: 0 }) {
        return Err(OracleError::Invalid(format!("the traced benchmark writer ended with {:?}", out.end)));
    }
    let ns = NsCounts::of(&out);
    check_seen(w, &out, &ns, ops, history)?;
    Ok(TracedRun {
        loop_ns: parse_ns(&stdout, "the traced benchmark writer")?,
        run_ms,
        maps_reads: out.stats.maps_reads,
        stops: out.stats.seccomp_stops + out.stats.exit_stops,
        ns,
        versions: out.history.versions,
    })
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

/// Ops per run so that all the rounds fit about `seconds`.
fn size_runs(w: &Writer, dir: &Path, seconds: f64) -> Result<u64, OracleError> {
    let (cal_ns, _) = untraced(w, 20)?;
    let untraced_per_op = (cal_ns / 20.0).max(100.0);
    match w.workload {
        // Two traced runs per round, each up to ~2.5x slower.
        Workload::Msync | Workload::Rewrite => {
            Ok(((seconds * 1e9) / (f64::from(ROUNDS) * 6.0 * untraced_per_op)).clamp(24.0, 200_000.0) as u64)
        }
        // Several trapped calls per op: measure the traced cost too. Every op
        // is a file the oracle holds, hence the cap.
        Workload::Namespace => {
            let pair_per_op = untraced_per_op + 2.0 * traced(w, dir, 20, false)?.loop_ns / 20.0;
            Ok(((seconds * 1e9) / (f64::from(ROUNDS) * pair_per_op)).clamp(20.0, NS_MAX_OPS as f64) as u64)
        }
    }
}

fn measure(workload: Workload, bin: &Path, parent: &Path, seconds: f64) -> Result<BenchLine, OracleError> {
    let work = crate::private_tempdir_in("crashlab-oracle-bench", parent)
        .map_err(io_err(format!("cannot create a directory in {}", parent.display())))?;
    let target = match workload {
        Workload::Msync | Workload::Rewrite => {
            let file = work.path().join("data");
            let page = crate::page_size::page_size();
            // Non-zero content, so no filesystem treats the file as sparse.
            let seed: Vec<u8> = (0..PAGES * page).map(|i| (i % 251) as u8 + 1).collect();
            std::fs::write(&file, seed).map_err(io_err(format!("cannot write {}", file.display())))?;
            file
        }
        Workload::Namespace => work.path().to_path_buf(),
    };
    let w = Writer { workload, bin, target };
    // Calibrate on short runs, then size the runs to the time budget.
    let ops = size_runs(&w, work.path(), seconds)?;
    let (mut u_ns, mut t_ns, mut u_ms, mut t_ms, mut pair_ratios, mut stops) =
        (vec![], vec![], vec![], vec![], vec![], vec![]);
    let (mut h_ns, mut h_ms, mut history_pair_ratios) = (vec![], vec![], vec![]);
    let (mut maps_reads, mut ns_events, mut history_versions) = (0, NsCounts::default(), 0);
    for round in 0..ROUNDS {
        // Rotate which goes first, so a drift favours none: untraced (0),
        // traced (1), traced with the history (2).
        let (mut u, mut t, mut h) = (None, None, None);
        for k in 0..3 {
            match (round + k) % 3 {
                0 => u = Some(untraced(&w, ops)?),
                1 => t = Some(traced(&w, work.path(), ops, false)?),
                _ => h = Some(traced(&w, work.path(), ops, true)?),
            }
        }
        let (u, t, h) = (u.expect("ran"), t.expect("ran"), h.expect("ran"));
        u_ns.push(u.0 / ops as f64);
        u_ms.push(u.1);
        t_ns.push(t.loop_ns / ops as f64);
        t_ms.push(t.run_ms);
        pair_ratios.push(t.loop_ns / u.0);
        h_ns.push(h.loop_ns / ops as f64);
        h_ms.push(h.run_ms);
        history_pair_ratios.push(h.loop_ns / u.0);
        history_versions = h.versions;
        stops.push(t.stops as f64 / ops as f64);
        maps_reads = maps_reads.max(t.maps_reads);
        ns_events = t.ns;
    }
    Ok(BenchLine {
        workload,
        dir: parent.to_path_buf(),
        fs: crate::environment::fs_type(parent),
        ops,
        rounds: ROUNDS,
        untraced_ns_per_op: median(u_ns),
        traced_ns_per_op: median(t_ns),
        untraced_run_ms: median(u_ms),
        traced_run_ms: median(t_ms),
        pair_ratios,
        history_ns_per_op: median(h_ns),
        history_run_ms: median(h_ms),
        history_pair_ratios,
        history_versions,
        maps_reads,
        stops_per_op: median(stops),
        ns_events,
    })
}

/// Run the benchmark for about `seconds`: a third per writer, 70% of the
/// msync and namespace writers' on the default temp dir, the rest on tmpfs. Call it from a thread with no
/// other unreaped children (it traces from the calling thread).
pub fn run(seconds: f64) -> Result<OracleBench, OracleError> {
    if !(seconds.is_finite() && seconds > 0.0) {
        return Err(OracleError::Invalid(format!("the benchmark needs a positive duration, got {seconds}")));
    }
    let build = crate::private_tempdir_in("crashlab-oracle-bench-bin", &std::env::temp_dir())
        .map_err(io_err("cannot create a temporary directory for the benchmark writer"))?;
    let bin = compile(build.path(), "bench_writer", SOURCE)?;
    let ns_bin = compile(build.path(), "bench_ns_writer", NS_SOURCE)?;
    let shm = Path::new("/dev/shm");
    let has_tmpfs = shm.is_dir() && crate::environment::fs_type(shm) == "tmpfs";
    let main_share = if has_tmpfs { 0.7 } else { 1.0 };
    let each = seconds / 3.0;
    let tmp = std::env::temp_dir();
    let line = |workload, bin: &Path, tmpfs: bool| {
        if tmpfs {
            measure(workload, bin, shm, each * (1.0 - main_share))
        } else {
            measure(workload, bin, &tmp, each * main_share)
        }
    };
    let default_dir = line(Workload::Msync, &bin, false)?;
    let tmpfs = if has_tmpfs { Some(line(Workload::Msync, &bin, true)?) } else { None };
    let rewrite = measure(Workload::Rewrite, &bin, &tmp, each)?;
    let namespace = line(Workload::Namespace, &ns_bin, false)?;
    let namespace_tmpfs = if has_tmpfs { Some(line(Workload::Namespace, &ns_bin, true)?) } else { None };
    Ok(OracleBench { default_dir, rewrite, tmpfs, namespace, namespace_tmpfs })
}
