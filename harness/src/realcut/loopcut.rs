//! Running loopcut trials: batches on realcut workers (`crashlab
//! __realcut-worker`, see [`super::worker`]) through the generic
//! [`crate::worker_pool`], for a soundness campaign ([`run_loopcut`]), the
//! matrix's real columns ([`super::columns`]) and the bench.
//!
//! Unlike the lab's pool, Ctrl-C does not kill a realcut worker the pool
//! waits for: with `--host-mounts` its mounts live in the caller's
//! namespace and only the worker unmounts them, so the pool stops between
//! batches and closes the workers' stdin.

use std::collections::HashSet;
use std::path::PathBuf;
use std::sync::atomic::AtomicBool;
use std::time::Instant;

use serde::{Deserialize, Serialize};

use super::campaign::{batch_len, plan, whole_groups, PageCacheStart, PlannedTrial, SoundnessConfig, WorkloadId};
use super::ns_report::{aggregate_namespace, NamespaceReport};
use super::ns_workload::{ns_plan, NsCampaignConfig, NsPlannedCut, NsWorkloadId};
use super::protocol::{NsCutRecord, RealRequest, RealResponse, RealTrialRecord};
use super::report::{aggregate, SoundnessEnvironment, SoundnessReport, SOUNDNESS_SCHEMA_VERSION};
use super::RealcutError;
use crate::crash::CrashPoint;
use crate::spec::WriterSpec;
use crate::vocab::Backend;
use crate::vocab::{CutMethod, FsKind, Writeback};
use crate::worker_pool::process::{WorkerAnswer, WorkerProcess};
use crate::worker_pool::schedule::{self, BatchWorker, Schedule};
use crate::worker_pool::{WorkerArgv, WorkerCommand, WorkerError, REALCUT_WORKER};

/// How to run realcut workers.
#[derive(Debug, Clone)]
pub struct RealPoolConfig {
    pub command: WorkerCommand,
    pub jobs: usize,
    /// Images and mount points go here (a fresh directory, tmpfs is fastest).
    pub dir: PathBuf,
    pub keep_dir: PathBuf,
    pub watchdog_secs: u32,
    /// Mount in the caller's namespace instead of a private one.
    pub host_mounts: bool,
    pub inject_fault: bool,
}

impl RealPoolConfig {
    /// The running `crashlab` binary in its hidden `__realcut-worker` mode.
    pub fn current_exe_command() -> Result<WorkerCommand, RealcutError> {
        Ok(WorkerCommand::current_exe_as(REALCUT_WORKER)?)
    }
}

impl From<WorkerError> for RealcutError {
    fn from(e: WorkerError) -> RealcutError {
        match e {
            WorkerError::Io { what, source } => RealcutError::Sys { what, source },
            WorkerError::Failed { id, message, .. } => RealcutError::Worker { id, message },
            WorkerError::Interrupted => RealcutError::Interrupted,
        }
    }
}

impl WorkerAnswer for RealResponse {
    fn refusal(&self) -> Option<&str> {
        match self {
            RealResponse::Error { message } => Some(message),
            _ => None,
        }
    }
}

/// A realcut worker process and the specs it was given; closing its stdin
/// (on drop) makes it unmount, detach and exit.
pub struct RealWorker {
    process: WorkerProcess<RealRequest, RealResponse>,
    prepared: HashSet<u64>,
}

impl RealWorker {
    pub fn spawn(cfg: &RealPoolConfig, id: u32) -> Result<RealWorker, RealcutError> {
        let switches = if cfg.host_mounts { vec!["host-mounts".to_string()] } else { Vec::new() };
        let argv = WorkerArgv { dir: cfg.dir.clone(), id, watchdog_secs: cfg.watchdog_secs, switches };
        let process = WorkerProcess::spawn("realcut worker", &cfg.command, &argv)?;
        Ok(RealWorker { process, prepared: HashSet::new() })
    }

    /// One request, waited for to the end (see the module doc: no kill).
    pub fn request(&mut self, req: &RealRequest) -> Result<RealResponse, RealcutError> {
        Ok(self.process.request(req, None)?)
    }

    fn unexpected(&self, answer: &RealResponse) -> RealcutError {
        self.process.unexpected(answer).into()
    }

    pub fn prepare(&mut self, key: u64, spec: &WriterSpec) -> Result<(), RealcutError> {
        if self.prepared.contains(&key) {
            return Ok(());
        }
        match self.request(&RealRequest::Prepare { key, spec: spec.clone() })? {
            RealResponse::Prepared { .. } => {
                self.prepared.insert(key);
                Ok(())
            }
            other => Err(self.unexpected(&other)),
        }
    }

    /// Nanoseconds of the bare loop of prepared spec `key` at `points`
    /// ([`RealRequest::WorkloadFloor`]).
    pub fn workload_floor(
        &mut self,
        key: u64,
        fs: FsKind,
        cut: CutMethod,
        points: Vec<CrashPoint>,
    ) -> Result<u64, RealcutError> {
        match self.request(&RealRequest::WorkloadFloor { key, fs, cut, points })? {
            RealResponse::Floor { nanos, .. } => Ok(nanos),
            other => Err(self.unexpected(&other)),
        }
    }

    pub fn floor(&mut self, fs: FsKind, cut: CutMethod, size: u64, trials: u32) -> Result<u64, RealcutError> {
        match self.request(&RealRequest::Floor { fs, cut, size, trials })? {
            RealResponse::Floor { nanos, .. } => Ok(nanos),
            other => Err(self.unexpected(&other)),
        }
    }
}

/// A [`RealWorker`] running the batches of one pool: its specs by key.
struct PoolWorker<'a> {
    worker: RealWorker,
    pool: &'a RealPoolConfig,
    specs: &'a [&'a WriterSpec],
}

impl BatchWorker<LoopcutBatch> for PoolWorker<'_> {
    type Record = RealTrialRecord;
    type Error = RealcutError;

    fn must_drain_before(&self, _: &LoopcutBatch) -> bool {
        // send_batch may prepare first, a request answered at once: no
        // other answer may be pending then.
        true
    }

    fn send_batch(&mut self, b: &LoopcutBatch, _: &AtomicBool) -> Result<(), RealcutError> {
        let spec = self.specs[b.key as usize];
        self.worker.prepare(b.key, spec)?;
        Ok(self.worker.process.send(&RealRequest::Run {
            key: b.key,
            fs: b.fs,
            cut: b.cut,
            points: b.points.clone(),
            keep_dir: self.pool.keep_dir.clone(),
            inject_fault: self.pool.inject_fault,
            writers_per_cut: b.writers_per_cut,
            page_cache: b.page_cache,
            writeback: b.writeback,
        })?)
    }

    fn recv_batch(&mut self, b: &LoopcutBatch, _: &AtomicBool) -> Result<Vec<RealTrialRecord>, RealcutError> {
        match self.worker.process.recv(None)? {
            RealResponse::Ran { records } if records.len() == b.points.len() => Ok(records),
            other => Err(self.worker.unexpected(&other)),
        }
    }
}

/// Run `batches` on `pool.jobs` realcut workers (each owned by a thread);
/// returns each batch's records, in batch order. The first error stops
/// every worker; `cancel` stops them between batches ([`RealcutError::Interrupted`]).
/// `on_trials` is told each finished batch's size.
pub fn run_loopcut_batches(
    pool: &RealPoolConfig,
    specs: &[&WriterSpec],
    batches: &[LoopcutBatch],
    cancel: &AtomicBool,
    on_trials: &(dyn Fn(usize) + Sync),
) -> Result<Vec<Vec<RealTrialRecord>>, RealcutError> {
    if batches.is_empty() {
        return Ok(Vec::new());
    }
    if let Some((i, b)) = batches.iter().enumerate().find(|(_, b)| b.key as usize >= specs.len()) {
        return Err(RealcutError::Spec(format!("batch {i} names spec {} of {}", b.key, specs.len())));
    }
    let start = |id| Ok(PoolWorker { worker: RealWorker::spawn(pool, id)?, pool, specs });
    let schedule = Schedule { jobs: pool.jobs, in_flight: 1, start: &start };
    schedule::run_batches(&schedule, batches, cancel, on_trials)
}

/// A batch of real-cut trials for one worker request: consecutive trials of
/// one filesystem, cut and prepared spec.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LoopcutBatch {
    pub fs: FsKind,
    pub cut: CutMethod,
    /// Index of the spec in the `specs` given to [`run_loopcut_batches`]
    /// (workers prepare each spec once).
    pub key: u64,
    pub points: Vec<CrashPoint>,
    /// Trials sharing one cut (see [`SoundnessConfig::writers_per_cut`]).
    pub writers_per_cut: u32,
    /// See [`SoundnessConfig::page_cache`].
    pub page_cache: PageCacheStart,
    /// The per-cut pressure ([`SoundnessConfig::writeback`]).
    pub writeback: Writeback,
}

/// Refuse early what a loopcut run cannot do here: not root, a cut the
/// filesystem lacks, a missing mkfs.
pub fn check_loopcut(filesystems: &[(FsKind, CutMethod)]) -> Result<(), RealcutError> {
    if !super::sys::is_root() {
        return Err(RealcutError::NeedsRoot);
    }
    for &(fs, cut) in filesystems {
        if !fs.supports(cut) {
            return Err(RealcutError::Spec(format!("--cut {cut}: {fs} has no FS_IOC_SHUTDOWN; use raw-copy")));
        }
        let (prog, _) = fs.mkfs();
        if super::fs::find_program(prog).is_none() {
            return Err(RealcutError::Unavailable(format!(
                "{prog} not found; install it (apt-get install -y {}) or leave {fs} out",
                fs.package()
            )));
        }
    }
    Ok(())
}

/// Run a loopcut campaign. `on_trials` is told each finished batch's size.
///
/// `ns`: the namespace workloads' cuts too (after the page writers'). A
/// config with no scenarios runs the namespace cuts only.
pub fn run_loopcut(
    cfg: &SoundnessConfig,
    ns: Option<&NsCampaignConfig>,
    pool: &RealPoolConfig,
    cancel: &AtomicBool,
    on_trials: &(dyn Fn(usize) + Sync),
) -> Result<SoundnessReport, RealcutError> {
    let filesystems: Vec<(FsKind, CutMethod)> = cfg.filesystems.iter().map(|&fs| (fs, cfg.cut_for(fs))).collect();
    check_loopcut(&filesystems)?;
    let started = Instant::now();
    // Both plans before any cut: a bad --point fails at once.
    let ns_cuts = ns.map(|n| ns_plan(&cfg.filesystems, n)).transpose().map_err(RealcutError::Spec)?;
    let (specs, trials) = if cfg.scenarios.is_empty() && ns.is_some() { (Vec::new(), Vec::new()) } else { plan(cfg)? };
    let key_of = |s: WorkloadId| specs.iter().position(|(x, _)| *x == s).expect("planned scenario") as u64;
    let mut batches = Vec::new();
    let mut i = 0;
    let len = batch_len(cfg.writers_per_cut);
    while i < trials.len() {
        let t = trials[i];
        let mut j = i + 1;
        while j < trials.len() && j - i < len && trials[j].fs == t.fs && trials[j].scenario == t.scenario {
            j += 1;
        }
        let points = trials[i..j].iter().map(|t| t.point).collect();
        let (cut, key) = (cfg.cut_for(t.fs), key_of(t.scenario));
        let (writers_per_cut, page_cache) = (cfg.writers_per_cut, cfg.page_cache.unwrap_or_default());
        batches.push(LoopcutBatch {
            fs: t.fs,
            cut,
            key,
            points,
            writers_per_cut,
            page_cache,
            writeback: cfg.writeback,
        });
        i = j;
    }
    let spec_refs: Vec<&WriterSpec> = specs.iter().map(|(_, s)| s).collect();
    let results = run_loopcut_batches(pool, &spec_refs, &batches, cancel, on_trials)?;
    let records: Vec<(PlannedTrial, RealTrialRecord)> =
        trials.iter().copied().zip(results.into_iter().flatten()).collect();
    let kernel = crate::environment::kernel_release();
    let (filesystems, mut summary) = aggregate(cfg, &kernel, &records);
    let namespace = match (ns, ns_cuts) {
        (Some(n), Some(cuts)) => Some(run_namespace(cfg, n, &cuts, pool, cancel, on_trials)?),
        _ => None,
    };
    if let Some(n) = &namespace {
        summary.add_namespace(n);
    }
    Ok(SoundnessReport {
        schema_version: SOUNDNESS_SCHEMA_VERSION.into(),
        crashlab_version: env!("CARGO_PKG_VERSION").into(),
        backend: Backend::Loopcut,
        environment: SoundnessEnvironment {
            kernel_release: kernel,
            page_size: crate::page_size::page_size(),
            work_dir: pool.dir.display().to_string(),
            work_dir_fs: crate::environment::fs_type(&pool.dir),
            model: "power-loss (pages whole), judged byte for byte by PowerLossModel::allows".into(),
            disk: crate::vocab::real_cut::LOOPCUT_DISK.into(),
            accelerator: None,
        },
        seed: cfg.seed,
        config: cfg.clone(),
        duration_ms: started.elapsed().as_millis() as u64,
        filesystems,
        namespace,
        summary,
    })
}

/// Namespace cuts per request: one cut each, so a batch is cheap; small, so
/// Ctrl-C stops soon and two workers balance.
pub const NS_BATCH: usize = 8;

/// A batch of namespace cuts for one worker request: consecutive cuts of
/// one filesystem, cut and workload.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NsBatch {
    pub fs: FsKind,
    pub cut: CutMethod,
    pub workload: NsWorkloadId,
    pub points: Vec<CrashPoint>,
}

/// A [`RealWorker`] running namespace batches.
struct NsPoolWorker<'a> {
    worker: RealWorker,
    pool: &'a RealPoolConfig,
}

impl BatchWorker<NsBatch> for NsPoolWorker<'_> {
    type Record = NsCutRecord;
    type Error = RealcutError;

    fn must_drain_before(&self, _: &NsBatch) -> bool {
        false
    }

    fn send_batch(&mut self, b: &NsBatch, _: &AtomicBool) -> Result<(), RealcutError> {
        Ok(self.worker.process.send(&RealRequest::RunNamespace {
            workload: b.workload,
            fs: b.fs,
            cut: b.cut,
            points: b.points.clone(),
            keep_dir: self.pool.keep_dir.clone(),
            inject_fault: self.pool.inject_fault,
        })?)
    }

    fn recv_batch(&mut self, b: &NsBatch, _: &AtomicBool) -> Result<Vec<NsCutRecord>, RealcutError> {
        match self.worker.process.recv(None)? {
            RealResponse::RanNamespace { records } if records.len() == b.points.len() => Ok(records),
            other => Err(self.worker.unexpected(&other)),
        }
    }
}

/// The planned namespace cuts in batches ([`NS_BATCH`] consecutive cuts of
/// one filesystem and workload).
pub fn ns_batches(cfg: &SoundnessConfig, cuts: &[NsPlannedCut]) -> Vec<NsBatch> {
    let mut batches: Vec<NsBatch> = Vec::new();
    for c in cuts {
        match batches.last_mut() {
            Some(b) if b.fs == c.fs && b.workload == c.workload && b.points.len() < NS_BATCH => b.points.push(c.point),
            _ => {
                batches.push(NsBatch { fs: c.fs, cut: cfg.cut_for(c.fs), workload: c.workload, points: vec![c.point] })
            }
        }
    }
    batches
}

/// Run the namespace cuts on `pool.jobs` realcut workers and aggregate them.
fn run_namespace(
    cfg: &SoundnessConfig,
    ns: &NsCampaignConfig,
    cuts: &[NsPlannedCut],
    pool: &RealPoolConfig,
    cancel: &AtomicBool,
    on_trials: &(dyn Fn(usize) + Sync),
) -> Result<NamespaceReport, RealcutError> {
    let batches = ns_batches(cfg, cuts);
    let start = |id| Ok(NsPoolWorker { worker: RealWorker::spawn(pool, id)?, pool });
    let schedule = Schedule { jobs: pool.jobs, in_flight: 1, start: &start };
    let results = schedule::run_batches(&schedule, &batches, cancel, on_trials)?;
    let records: Vec<(NsPlannedCut, NsCutRecord)> = cuts.iter().copied().zip(results.into_iter().flatten()).collect();
    Ok(aggregate_namespace(cfg, ns, &records))
}

/// Benchmark numbers of one filesystem and writer, on one worker: real-cut
/// trials/s next to two floors measured in the same run.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct LoopcutBench {
    pub fs: FsKind,
    pub cut: CutMethod,
    pub scenario: WorkloadId,
    pub file_size: u64,
    pub writers_per_cut: u32,
    /// The bare cut loop: mount, one page written + msync(MS_SYNC), the cut,
    /// umount, mount, read.
    pub floor_per_sec: f64,
    /// The same writer's ops executed bare in the worker at the same points,
    /// each followed by a cut of its own: the I/O the workload itself costs.
    pub workload_floor_per_sec: f64,
    pub trials_per_sec: f64,
    /// With a writeback pressure other than `none`: the same trials under
    /// it, measured in the same run (alternating halves with the others).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pressured: Option<PressuredBench>,
    /// `trials_per_sec / floor_per_sec`.
    pub ratio: f64,
    /// `trials_per_sec / workload_floor_per_sec`.
    pub ratio_to_workload_floor: f64,
}

/// The trials of a bench under writeback pressure.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct PressuredBench {
    pub writeback: Writeback,
    pub trials_per_sec: f64,
    /// `trials_per_sec` under pressure over without: below 1, the cost.
    pub ratio_to_none: f64,
    /// Trials whose file kept unsynced data, with and without the pressure.
    pub kept_more: u64,
    pub kept_more_without: u64,
}

/// Measure trials/s of `scenario` (its op boundaries in turn, cut groups of
/// `writers_per_cut`) against the bare floor and the workload floor,
/// `trials` of each, alternating them in halves so a drift of the
/// machine's load hits all alike; with `writeback` other than `none`, the
/// same trials under that pressure too.
#[allow(clippy::too_many_arguments)]
pub fn bench_loopcut(
    pool: &RealPoolConfig,
    fs: FsKind,
    cut: CutMethod,
    spec: &WriterSpec,
    scenario: WorkloadId,
    trials: u32,
    writers_per_cut: u32,
    writeback: Writeback,
) -> Result<LoopcutBench, RealcutError> {
    if !super::sys::is_root() {
        return Err(RealcutError::NeedsRoot);
    }
    let mut w = RealWorker::spawn(pool, 900)?;
    w.prepare(0, spec)?;
    let n = spec.ops.len();
    let g = writers_per_cut.max(1) as usize;
    let points = |count: u32| -> Vec<CrashPoint> {
        (0..count as usize).map(|i| CrashPoint::BeforeOp((i * 7 + 3) % (n + 1))).collect()
    };
    // Warm up: makes the filesystem and the spec's files.
    w.floor(fs, cut, spec.file_size, 2)?;
    w.workload_floor(0, fs, cut, points(2))?;
    // (nanoseconds, trials that kept unsynced data)
    let run = |w: &mut RealWorker, count: u32, writeback: Writeback| -> Result<(u64, u64), RealcutError> {
        let t = Instant::now();
        let mut kept = 0;
        for chunk in points(count).chunks(whole_groups(16, writers_per_cut)) {
            match w.request(&RealRequest::Run {
                key: 0,
                fs,
                cut,
                points: chunk.to_vec(),
                keep_dir: pool.keep_dir.clone(),
                inject_fault: false,
                writers_per_cut,
                page_cache: PageCacheStart::default(),
                writeback,
            })? {
                RealResponse::Ran { records } => {
                    kept += records.iter().filter(|r| r.judgement.kept_more()).count() as u64;
                    if let Some(r) = records.iter().find(|r| r.judgement.is_violation()) {
                        return Err(RealcutError::Spec(format!(
                            "bench trial at {} on {fs}: model soundness violation: {:?}",
                            r.facts.point, r.judgement.forbidden
                        )));
                    }
                }
                other => return Err(RealcutError::Worker { id: 900, message: format!("unexpected answer {other:?}") }),
            }
        }
        Ok((t.elapsed().as_nanos() as u64, kept))
    };
    run(&mut w, g as u32, Writeback::None)?;
    let half = (trials / 2).max(1);
    let (mut floor_ns, mut workload_ns, mut trial_ns, mut pressured_ns) = (0, 0, 0, 0);
    let (mut kept_without, mut kept_with) = (0, 0);
    for _ in 0..2 {
        floor_ns += w.floor(fs, cut, spec.file_size, half)?;
        workload_ns += w.workload_floor(0, fs, cut, points(half))?;
        let (ns, kept) = run(&mut w, half, Writeback::None)?;
        (trial_ns, kept_without) = (trial_ns + ns, kept_without + kept);
        if !writeback.is_none() {
            // The sysctls (expire:CS) only while the pressured half runs.
            let sysctls = super::pressure::campaign_pressure(writeback)?;
            let (ns, kept) = run(&mut w, half, writeback)?;
            (pressured_ns, kept_with) = (pressured_ns + ns, kept_with + kept);
            if let Some(g) = sysctls {
                g.restore()?;
            }
        }
    }
    let per_sec = |ns: u64| (2 * half) as f64 / (ns as f64 / 1e9);
    let (floor_per_sec, workload_floor_per_sec, trials_per_sec) =
        (per_sec(floor_ns), per_sec(workload_ns), per_sec(trial_ns));
    let pressured = (!writeback.is_none()).then(|| PressuredBench {
        writeback,
        trials_per_sec: per_sec(pressured_ns),
        ratio_to_none: per_sec(pressured_ns) / trials_per_sec,
        kept_more: kept_with,
        kept_more_without: kept_without,
    });
    Ok(LoopcutBench {
        fs,
        cut,
        scenario,
        file_size: spec.file_size,
        writers_per_cut,
        floor_per_sec,
        workload_floor_per_sec,
        trials_per_sec,
        pressured,
        ratio: trials_per_sec / floor_per_sec,
        ratio_to_workload_floor: trials_per_sec / workload_floor_per_sec,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::realcut::report::rerun_line;

    fn cfg(page_cache: PageCacheStart) -> SoundnessConfig {
        SoundnessConfig {
            backend: Backend::Loopcut,
            seed: 11,
            filesystems: vec![FsKind::Ext4],
            cut: None,
            trials: 1,
            scenarios: SoundnessConfig::default_scenarios(),
            point: None,
            file_size: 64 * 1024,
            txns: 6,
            writers_per_cut: 1,
            page_cache: Some(page_cache),
            writeback: crate::vocab::Writeback::None,
        }
    }

    #[test]
    fn a_rerun_line_spells_out_the_page_cache_start_only_when_it_is_not_the_default() {
        let c = cfg(PageCacheStart::Read);
        let (_, trials) = plan(&c).unwrap();
        let line = rerun_line(&c, &trials[0]);
        assert!(!line.contains("--page-cache"), "the default is not spelled out: {line}");
        let line = rerun_line(&cfg(PageCacheStart::Written), &trials[0]);
        assert!(line.ends_with(" --page-cache written"), "{line}");
    }

    #[test]
    fn batches_naming_a_spec_that_is_not_there_are_refused_before_any_worker_starts() {
        let pool = RealPoolConfig {
            command: WorkerCommand::binary("/nonexistent/crashlab"),
            jobs: 1,
            dir: "/nonexistent".into(),
            keep_dir: "/nonexistent".into(),
            watchdog_secs: 60,
            host_mounts: false,
            inject_fault: false,
        };
        let batch = LoopcutBatch {
            fs: FsKind::Ext4,
            cut: CutMethod::Shutdown,
            key: 3,
            points: vec![CrashPoint::BeforeOp(0)],
            writers_per_cut: 1,
            page_cache: PageCacheStart::Read,
            writeback: Writeback::None,
        };
        let err = run_loopcut_batches(&pool, &[], &[batch], &AtomicBool::new(false), &|_| {}).unwrap_err();
        assert_eq!(err.to_string(), "batch 0 names spec 3 of 0");
    }
}
