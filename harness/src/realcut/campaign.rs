//! A soundness campaign: plan trials (filesystem × scenario × op boundary,
//! sampled from the seed), run them on realcut workers (fork+exec of
//! `crashlab __realcut-worker`, one thread each), gather the records into a
//! [`SoundnessReport`].

use std::collections::HashSet;
use std::io::{BufRead, BufReader, Write};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, ChildStdout, Command, Stdio};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Instant;

use rand::seq::SliceRandom;
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;
use serde::{Deserialize, Serialize};

use super::protocol::{RealRequest, RealResponse, RealTrialRecord};
use super::report::{aggregate, SoundnessEnvironment, SoundnessReport, SOUNDNESS_SCHEMA_VERSION};
use super::RealcutError;
use crate::crash::CrashPoint;
use crate::lab::pool::WorkerCommand;
use crate::scenario::{derive_seed, ScenarioId};
use crate::spec::{ByteRange, MappingKind, MsyncFlags, Op, SyncPolicy, WorkloadParams, WriterSpec};
use crate::vocab::real_cut::LOOPCUT_DISK;
use crate::vocab::{Backend, CutMethod, FsKind};

/// A writer of a soundness campaign: a matrix scenario, or a probe that
/// exists to measure how conservative the model is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(into = "String", try_from = "String")]
pub enum WorkloadId {
    Scenario(ScenarioId),
    /// `probe/partial-msync`: stores to random places, each acked at once;
    /// every third one is then `msync(MS_SYNC)`ed alone. The other dirty
    /// pages stay unsynced while a ranged msync runs: a kernel that writes
    /// back more than the range (large folios, btrfs) keeps them.
    PartialMsync,
}

impl WorkloadId {
    pub const PARTIAL_MSYNC: &'static str = "probe/partial-msync";
}

impl std::fmt::Display for WorkloadId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            WorkloadId::Scenario(s) => s.fmt(f),
            WorkloadId::PartialMsync => f.write_str(Self::PARTIAL_MSYNC),
        }
    }
}

impl std::str::FromStr for WorkloadId {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        if s == Self::PARTIAL_MSYNC {
            return Ok(WorkloadId::PartialMsync);
        }
        s.parse().map(WorkloadId::Scenario).map_err(|e| format!("{e}, or {}", Self::PARTIAL_MSYNC))
    }
}

impl From<WorkloadId> for String {
    fn from(w: WorkloadId) -> String {
        w.to_string()
    }
}

impl TryFrom<String> for WorkloadId {
    type Error = String;
    fn try_from(s: String) -> Result<Self, Self::Error> {
        s.parse()
    }
}

/// Where the page cache of a trial's file came from when its writer maps
/// it. It decides how much a ranged `msync` writes back: ext4 and xfs give a
/// file written with `write(2)` large folios, and writeback works in whole
/// folios, so a one-page msync there can write (and make durable) the
/// writer's other, unsynced pages too (measured: `probe/partial-msync` kept
/// unsynced pages in most trials this way, and in none with `read`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "kebab-case")]
pub enum PageCacheStart {
    /// Dropped, then read back with `read(2)`: what a file has after a
    /// remount, as a program opening an existing file sees it.
    #[default]
    Read,
    /// Dropped, then the whole file written again with `write(2)` and
    /// `fdatasync`ed: what a file has right after its creator wrote it.
    Written,
}

impl PageCacheStart {
    pub const NAMES: &'static str = "read, written";

    pub fn name(self) -> &'static str {
        match self {
            PageCacheStart::Read => "read",
            PageCacheStart::Written => "written",
        }
    }
}

impl std::fmt::Display for PageCacheStart {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

impl std::str::FromStr for PageCacheStart {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "read" => Ok(PageCacheStart::Read),
            "written" => Ok(PageCacheStart::Written),
            other => Err(format!("unknown page-cache start `{other}`; expected one of {}", Self::NAMES)),
        }
    }
}

/// Everything that decides which trials run.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct SoundnessConfig {
    pub backend: Backend,
    pub seed: u64,
    pub filesystems: Vec<FsKind>,
    /// `None`: each filesystem's default (shutdown for ext4/xfs, raw-copy for btrfs).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cut: Option<CutMethod>,
    /// Trials per filesystem.
    pub trials: u32,
    pub scenarios: Vec<WorkloadId>,
    /// Run only this crash point (a rerun); otherwise op boundaries sampled
    /// from the seed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub point: Option<CrashPoint>,
    pub file_size: u64,
    pub txns: u32,
    /// loopcut: trials sharing one power cut (a cut group: each writer on a
    /// file of its own, one after the other, then one cut). Reports before
    /// 1.1 of the soundness schema ran one writer per cut.
    #[serde(default = "super::protocol::one_writer")]
    pub writers_per_cut: u32,
    /// loopcut: how each file's page cache is made before its writer runs
    /// (`None` for vm, whose guest boots cold). Reports before 1.2 of the
    /// soundness schema did not control it: the first cut group of each
    /// writer ran on freshly written files, the others on read ones.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub page_cache: Option<PageCacheStart>,
}

impl SoundnessConfig {
    /// The shared-mapping scenarios (a MAP_PRIVATE writer never changes its
    /// file, so its real cuts say nothing about the model), and the probe.
    pub fn default_scenarios() -> Vec<WorkloadId> {
        SyncPolicy::STANDARD
            .iter()
            .map(|&policy| WorkloadId::Scenario(ScenarioId { mapping: MappingKind::Shared, policy }))
            .chain([WorkloadId::PartialMsync])
            .collect()
    }

    /// The writer of a workload. For a scenario: the same spec `crashlab
    /// matrix --seed S --size N --txns T` runs.
    pub fn spec(&self, w: WorkloadId) -> Result<WriterSpec, RealcutError> {
        let seed = derive_seed(self.seed, &["spec", &w.to_string()]);
        let params = WorkloadParams { txns: self.txns, ..WorkloadParams::with_file_size(self.file_size) };
        let bad = |e: String| RealcutError::Spec(format!("--size {} / --txns {}: {e}", self.file_size, self.txns));
        let page = crate::lab::trial::page_size();
        match w {
            WorkloadId::Scenario(s) => WriterSpec::generate(&params, s.mapping, s.policy, page, seed).map_err(bad),
            WorkloadId::PartialMsync => {
                let plain =
                    WriterSpec::generate(&params, MappingKind::Shared, SyncPolicy::None, page, seed).map_err(bad)?;
                let mut ops = Vec::with_capacity(plain.ops.len() + plain.ops.len() / 6);
                let mut last_store = None;
                let mut acks = 0;
                // Old op index -> new one (inserted msyncs shift the rest).
                let mut moved = Vec::with_capacity(plain.ops.len());
                for mut op in plain.ops {
                    let is_ack = matches!(op, Op::Ack { .. });
                    if let Some(r) = op.store_range() {
                        last_store = Some(r);
                    }
                    if let Op::Ack { covers, .. } = &mut op {
                        covers.iter_mut().for_each(|c| *c = moved[*c]);
                    }
                    moved.push(ops.len());
                    ops.push(op);
                    if is_ack {
                        acks += 1;
                        if let (0, Some(r)) = (acks % 3, last_store) {
                            let pages = ByteRange::new(r.start / page * page, r.end.div_ceil(page) * page);
                            ops.push(Op::Msync { range: pages, flags: MsyncFlags::MsSync });
                        }
                    }
                }
                let spec = WriterSpec { ops, ..plain };
                spec.validate().map_err(bad)?;
                Ok(spec)
            }
        }
    }

    pub fn cut_for(&self, fs: FsKind) -> CutMethod {
        self.cut.unwrap_or(fs.default_cut())
    }
}

/// One planned trial.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct PlannedTrial {
    pub fs: FsKind,
    pub scenario: WorkloadId,
    pub point: CrashPoint,
}

/// The writers of a campaign (the index is the spec key) and its trials.
pub type CampaignPlan = (Vec<(WorkloadId, WriterSpec)>, Vec<PlannedTrial>);

/// The campaign's specs and trials, a pure function of the config: per
/// filesystem, `trials` (scenario, boundary) pairs drawn in a seeded order
/// without repeats until all are used, grouped by scenario.
pub fn plan(cfg: &SoundnessConfig) -> Result<CampaignPlan, RealcutError> {
    if cfg.trials == 0 {
        return Err(RealcutError::Spec("--trials must be at least 1".into()));
    }
    if cfg.filesystems.is_empty() || cfg.scenarios.is_empty() {
        return Err(RealcutError::Spec("a campaign needs at least one filesystem and one scenario".into()));
    }
    let mut specs = Vec::new();
    let mut pairs = Vec::new();
    for &s in &cfg.scenarios {
        let spec = cfg.spec(s)?;
        let n = spec.ops.len();
        match cfg.point {
            Some(CrashPoint::BeforeOp(k)) if k <= n => pairs.push((s, CrashPoint::BeforeOp(k))),
            Some(p) => {
                return Err(RealcutError::Spec(format!(
                    "--point {p}: real cuts come at op boundaries before:0..=before:{n} of {s}"
                )))
            }
            None => pairs.extend((0..=n).map(|k| (s, CrashPoint::BeforeOp(k)))),
        }
        specs.push((s, spec));
    }
    let mut trials = Vec::new();
    for &fs in &cfg.filesystems {
        let mut rng = ChaCha8Rng::seed_from_u64(derive_seed(cfg.seed, &["soundness", fs.name()]));
        let mut chosen = Vec::new();
        while chosen.len() < cfg.trials as usize {
            let mut round = pairs.clone();
            round.shuffle(&mut rng);
            let need = cfg.trials as usize - chosen.len();
            chosen.extend(round.into_iter().take(need));
        }
        let order = |s: &WorkloadId| cfg.scenarios.iter().position(|x| x == s);
        chosen.sort_by_key(|(s, p)| (order(s), *p));
        trials.extend(chosen.into_iter().map(|(scenario, point)| PlannedTrial { fs, scenario, point }));
    }
    Ok((specs, trials))
}

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
        let program = std::env::current_exe()
            .map_err(|e| RealcutError::Sys { what: "cannot find the crashlab executable".into(), source: e })?;
        Ok(WorkerCommand { program, args: vec!["__realcut-worker".into()] })
    }
}

/// A realcut worker process, owned by one thread; closing its stdin makes
/// it unmount, detach and exit.
pub struct RealWorker {
    id: u32,
    child: Child,
    stdin: Option<ChildStdin>,
    stdout: BufReader<ChildStdout>,
    prepared: HashSet<u64>,
}

impl RealWorker {
    pub fn spawn(cfg: &RealPoolConfig, id: u32) -> Result<RealWorker, RealcutError> {
        let mut cmd = Command::new(&cfg.command.program);
        cmd.args(&cfg.command.args)
            .arg("--dir")
            .arg(&cfg.dir)
            .arg("--id")
            .arg(id.to_string())
            .arg("--watchdog")
            .arg(cfg.watchdog_secs.to_string())
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit());
        if cfg.host_mounts {
            cmd.arg("--host-mounts");
        }
        // SAFETY: prctl is async-signal-safe. The worker dies with the thread
        // that owns it.
        unsafe {
            cmd.pre_exec(|| {
                libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL);
                Ok(())
            });
        }
        let mut child = cmd.spawn().map_err(|e| RealcutError::Sys {
            what: format!("cannot start the realcut worker `{}`", cfg.command.program.display()),
            source: e,
        })?;
        let stdin = child.stdin.take();
        let stdout = BufReader::new(child.stdout.take().expect("stdout is piped"));
        Ok(RealWorker { id, child, stdin, stdout, prepared: HashSet::new() })
    }

    pub fn request(&mut self, req: &RealRequest) -> Result<RealResponse, RealcutError> {
        let mut line = serde_json::to_vec(req).expect("requests serialize");
        line.push(b'\n');
        let stdin = self.stdin.as_mut().expect("stdin open while the worker serves");
        if stdin.write_all(&line).and_then(|_| stdin.flush()).is_err() {
            return Err(self.died("cannot send a request"));
        }
        let mut answer = String::new();
        match self.stdout.read_line(&mut answer) {
            Ok(0) | Err(_) => return Err(self.died("no answer")),
            Ok(_) => {}
        }
        match serde_json::from_str::<RealResponse>(&answer) {
            Ok(RealResponse::Error { message }) => Err(RealcutError::Worker { id: self.id, message }),
            Ok(r) => Ok(r),
            Err(e) => Err(RealcutError::Worker { id: self.id, message: format!("unreadable answer ({e}): {answer}") }),
        }
    }

    fn died(&mut self, what: &str) -> RealcutError {
        drop(self.stdin.take());
        let status = self.child.wait().ok();
        RealcutError::Worker {
            id: self.id,
            message: format!(
                "{what}; worker {}",
                status.map_or("is unresponsive".into(), |s| format!("ended with {s}"))
            ),
        }
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
            other => Err(RealcutError::Worker { id: self.id, message: format!("unexpected answer {other:?}") }),
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
            other => Err(RealcutError::Worker { id: self.id, message: format!("unexpected answer {other:?}") }),
        }
    }

    pub fn floor(&mut self, fs: FsKind, cut: CutMethod, size: u64, trials: u32) -> Result<u64, RealcutError> {
        match self.request(&RealRequest::Floor { fs, cut, size, trials })? {
            RealResponse::Floor { nanos, .. } => Ok(nanos),
            other => Err(RealcutError::Worker { id: self.id, message: format!("unexpected answer {other:?}") }),
        }
    }
}

impl Drop for RealWorker {
    fn drop(&mut self) {
        // Closing stdin ends the worker's loop: it unmounts and detaches.
        drop(self.stdin.take());
        let _ = self.child.wait();
    }
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
}

/// Writers per power cut unless told otherwise (see
/// [`SoundnessConfig::writers_per_cut`]).
pub const DEFAULT_WRITERS_PER_CUT: u32 = 4;

/// Trials per request: small, so Ctrl-C stops soon and two workers balance.
pub const BATCH: usize = 4;

/// Trials per request for cut groups of `writers_per_cut`: [`BATCH`] rounded
/// up to whole groups.
pub fn batch_len(writers_per_cut: u32) -> usize {
    whole_groups(BATCH, writers_per_cut)
}

/// `n` trials rounded up to whole cut groups of `writers_per_cut`.
fn whole_groups(n: usize, writers_per_cut: u32) -> usize {
    let g = writers_per_cut.max(1) as usize;
    n.div_ceil(g) * g
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
    let next = AtomicUsize::new(0);
    let results: Mutex<Vec<Option<Vec<RealTrialRecord>>>> = Mutex::new(vec![None; batches.len()]);
    let first_error: Mutex<Option<RealcutError>> = Mutex::new(None);
    let failed = AtomicBool::new(false);
    let jobs = pool.jobs.clamp(1, batches.len());
    std::thread::scope(|scope| {
        for id in 0..jobs {
            let (next, results, first_error, failed) = (&next, &results, &first_error, &failed);
            scope.spawn(move || {
                let fail = |e: RealcutError| {
                    failed.store(true, Ordering::SeqCst);
                    first_error.lock().unwrap().get_or_insert(e);
                };
                let mut worker = match RealWorker::spawn(pool, id as u32) {
                    Ok(w) => w,
                    Err(e) => return fail(e),
                };
                loop {
                    if failed.load(Ordering::SeqCst) || cancel.load(Ordering::SeqCst) {
                        return;
                    }
                    let i = next.fetch_add(1, Ordering::SeqCst);
                    let Some(b) = batches.get(i) else { return };
                    let Some(spec) = specs.get(b.key as usize) else {
                        return fail(RealcutError::Spec(format!("batch {i} names spec {} of {}", b.key, specs.len())));
                    };
                    let run = worker.prepare(b.key, spec).and_then(|_| {
                        worker.request(&RealRequest::Run {
                            key: b.key,
                            fs: b.fs,
                            cut: b.cut,
                            points: b.points.clone(),
                            keep_dir: pool.keep_dir.clone(),
                            inject_fault: pool.inject_fault,
                            writers_per_cut: b.writers_per_cut,
                            page_cache: b.page_cache,
                        })
                    });
                    match run {
                        Ok(RealResponse::Ran { records }) if records.len() == b.points.len() => {
                            on_trials(records.len());
                            results.lock().unwrap()[i] = Some(records);
                        }
                        Ok(other) => {
                            return fail(RealcutError::Worker {
                                id: id as u32,
                                message: format!("unexpected answer {other:?}"),
                            })
                        }
                        Err(e) => return fail(e),
                    }
                }
            });
        }
    });
    if cancel.load(Ordering::SeqCst) {
        return Err(RealcutError::Interrupted);
    }
    if let Some(e) = first_error.into_inner().unwrap() {
        return Err(e);
    }
    Ok(results.into_inner().unwrap().into_iter().map(|r| r.expect("every batch ran")).collect())
}

/// Run a loopcut campaign. `on_trials` is told each finished batch's size.
pub fn run_loopcut(
    cfg: &SoundnessConfig,
    pool: &RealPoolConfig,
    cancel: &AtomicBool,
    on_trials: &(dyn Fn(usize) + Sync),
) -> Result<SoundnessReport, RealcutError> {
    let filesystems: Vec<(FsKind, CutMethod)> = cfg.filesystems.iter().map(|&fs| (fs, cfg.cut_for(fs))).collect();
    check_loopcut(&filesystems)?;
    let started = Instant::now();
    let (specs, trials) = plan(cfg)?;
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
        batches.push(LoopcutBatch { fs: t.fs, cut, key, points, writers_per_cut, page_cache });
        i = j;
    }
    let spec_refs: Vec<&WriterSpec> = specs.iter().map(|(_, s)| s).collect();
    let results = run_loopcut_batches(pool, &spec_refs, &batches, cancel, on_trials)?;
    let records: Vec<(PlannedTrial, RealTrialRecord)> =
        trials.iter().copied().zip(results.into_iter().flatten()).collect();
    let kernel = crate::environment::kernel_release();
    let (filesystems, summary) = aggregate(cfg, &kernel, &records);
    Ok(SoundnessReport {
        schema_version: SOUNDNESS_SCHEMA_VERSION.into(),
        crashlab_version: env!("CARGO_PKG_VERSION").into(),
        backend: Backend::Loopcut,
        environment: SoundnessEnvironment {
            kernel_release: kernel,
            page_size: crate::lab::trial::page_size(),
            work_dir: pool.dir.display().to_string(),
            work_dir_fs: crate::environment::fs_type(&pool.dir),
            model: "power-loss (pages whole), judged byte for byte by PowerLossModel::allows".into(),
            disk: LOOPCUT_DISK.into(),
            accelerator: None,
        },
        seed: cfg.seed,
        config: cfg.clone(),
        duration_ms: started.elapsed().as_millis() as u64,
        filesystems,
        summary,
    })
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
    /// `trials_per_sec / floor_per_sec`.
    pub ratio: f64,
    /// `trials_per_sec / workload_floor_per_sec`.
    pub ratio_to_workload_floor: f64,
}

/// Measure trials/s of `scenario` (its op boundaries in turn, cut groups of
/// `writers_per_cut`) against the bare floor and the workload floor,
/// `trials` of each, alternating the three in halves so a drift of the
/// machine's load hits all alike.
pub fn bench_loopcut(
    pool: &RealPoolConfig,
    fs: FsKind,
    cut: CutMethod,
    spec: &WriterSpec,
    scenario: WorkloadId,
    trials: u32,
    writers_per_cut: u32,
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
    let run = |w: &mut RealWorker, count: u32| -> Result<u64, RealcutError> {
        let t = Instant::now();
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
            })? {
                RealResponse::Ran { records } => {
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
        Ok(t.elapsed().as_nanos() as u64)
    };
    run(&mut w, g as u32)?;
    let half = (trials / 2).max(1);
    let (mut floor_ns, mut workload_ns, mut trial_ns) = (0, 0, 0);
    for _ in 0..2 {
        floor_ns += w.floor(fs, cut, spec.file_size, half)?;
        workload_ns += w.workload_floor(0, fs, cut, points(half))?;
        trial_ns += run(&mut w, half)?;
    }
    let per_sec = |ns: u64| (2 * half) as f64 / (ns as f64 / 1e9);
    let (floor_per_sec, workload_floor_per_sec, trials_per_sec) =
        (per_sec(floor_ns), per_sec(workload_ns), per_sec(trial_ns));
    Ok(LoopcutBench {
        fs,
        cut,
        scenario,
        file_size: spec.file_size,
        writers_per_cut,
        floor_per_sec,
        workload_floor_per_sec,
        trials_per_sec,
        ratio: trials_per_sec / floor_per_sec,
        ratio_to_workload_floor: trials_per_sec / workload_floor_per_sec,
    })
}

/// Check a directory for leftovers of a campaign: loop devices backed by
/// files under it and mounts under it (in this namespace).
pub fn leftovers(dir: &Path) -> Vec<String> {
    let mut v: Vec<String> =
        super::sys::loop_devices_under(dir).into_iter().map(|(d, b)| format!("loop device {d} -> {b}")).collect();
    v.extend(super::sys::mounts_under(dir).into_iter().map(|m| format!("mount {m}")));
    v
}

/// Shared handle for the CLI's Ctrl-C flag.
pub type CancelFlag = Arc<AtomicBool>;

#[cfg(test)]
mod tests {
    use super::*;

    fn cfg(trials: u32) -> SoundnessConfig {
        SoundnessConfig {
            backend: Backend::Loopcut,
            seed: 11,
            filesystems: vec![FsKind::Ext4, FsKind::Xfs],
            cut: None,
            trials,
            scenarios: SoundnessConfig::default_scenarios(),
            point: None,
            file_size: 64 * 1024,
            txns: 6,
            writers_per_cut: 1,
            page_cache: Some(PageCacheStart::Read),
        }
    }

    #[test]
    fn the_page_cache_start_parses_and_a_rerun_keeps_it() {
        for p in [PageCacheStart::Read, PageCacheStart::Written] {
            assert_eq!(p.to_string().parse::<PageCacheStart>().unwrap(), p);
        }
        assert!("cold".parse::<PageCacheStart>().unwrap_err().contains("read, written"));
        let c = cfg(1);
        let (_, trials) = plan(&c).unwrap();
        let line = super::super::report::rerun_line(&c, &trials[0]);
        assert!(!line.contains("--page-cache"), "the default is not spelled out: {line}");
        let written = SoundnessConfig { page_cache: Some(PageCacheStart::Written), ..c };
        let line = super::super::report::rerun_line(&written, &trials[0]);
        assert!(line.ends_with(" --page-cache written"), "{line}");
        // A request without the field (an older harness) means `read`.
        let req: super::super::protocol::RealRequest = serde_json::from_str(
            r#"{"request":"run","key":0,"fs":"ext4","cut":"shutdown","points":[],"keep_dir":"/k"}"#,
        )
        .unwrap();
        assert!(matches!(req, super::super::protocol::RealRequest::Run { page_cache: PageCacheStart::Read, .. }));
    }

    #[test]
    fn plans_are_a_function_of_the_config_and_cover_boundaries_before_repeating() {
        let (specs, trials) = plan(&cfg(40)).unwrap();
        assert_eq!(specs.len(), 7);
        assert_eq!(trials.len(), 80);
        assert_eq!(plan(&cfg(40)).unwrap().1, trials, "same config, same trials");
        let ext4: Vec<_> = trials.iter().filter(|t| t.fs == FsKind::Ext4).collect();
        let distinct: HashSet<_> = ext4.iter().map(|t| (t.scenario, t.point)).collect();
        assert_eq!(distinct.len(), 40, "no pair repeats before all are used");
        let other = plan(&SoundnessConfig { seed: 12, ..cfg(40) }).unwrap().1;
        assert_ne!(other, trials, "another seed, other trials");
        // Every op boundary of every writer, then repeats.
        let all: usize = specs.iter().map(|(_, s)| s.ops.len() + 1).sum();
        let (_, many) = plan(&cfg(all as u32 + 5)).unwrap();
        let distinct: HashSet<_> = many.iter().filter(|t| t.fs == FsKind::Xfs).map(|t| (t.scenario, t.point)).collect();
        assert_eq!(distinct.len(), all);
    }

    #[test]
    fn a_rerun_plans_exactly_its_point_and_refuses_other_kinds() {
        let c = SoundnessConfig {
            point: Some(CrashPoint::BeforeOp(3)),
            scenarios: vec!["shared/no-sync".parse().unwrap()],
            trials: 1,
            ..cfg(1)
        };
        let (_, t) = plan(&c).unwrap();
        assert_eq!(t.len(), 2);
        assert!(t.iter().all(|t| t.point == CrashPoint::BeforeOp(3)));
        let bad = SoundnessConfig { point: Some(CrashPoint::AtTime { permille: 5 }), ..c };
        assert!(plan(&bad).unwrap_err().to_string().contains("op boundaries"));
    }

    #[test]
    fn the_partial_msync_probe_syncs_single_stores_and_keeps_acks_pointing_at_stores() {
        let c = cfg(1);
        let spec = c.spec(WorkloadId::PartialMsync).unwrap();
        spec.validate().unwrap();
        let msyncs: Vec<_> = spec.ops.iter().filter(|o| matches!(o, Op::Msync { .. })).collect();
        assert_eq!(msyncs.len(), 2, "every third of 6 acks");
        for (i, op) in spec.ops.iter().enumerate() {
            if let Op::Msync { range, flags } = op {
                assert_eq!(*flags, MsyncFlags::MsSync);
                let prev_store = spec.ops[..i].iter().rev().find_map(Op::store_range).unwrap();
                assert!(range.start <= prev_store.start && prev_store.end <= range.end);
                assert!(range.len() < spec.file_size, "a ranged msync, not the whole file");
            }
        }
        assert_eq!("probe/partial-msync".parse::<WorkloadId>().unwrap(), WorkloadId::PartialMsync);
        assert!("probe/x".parse::<WorkloadId>().is_err());
    }
}
