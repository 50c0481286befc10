//! What a campaign asks of the machine, checked before anything starts:
//! fixed maxima of the numeric flags, and an estimate of the memory and disk
//! a config needs, held against what this machine has (half of its available
//! memory; the free space of the work directory).
//!
//! The estimate is an upper bound computed from the config alone, without
//! generating a writer or a crash point (a config of 10^8 transactions must
//! be refused in microseconds, not after building 12 GB of ops). The lab
//! holds, for a matrix:
//! - in crashlab itself: every writer spec, every cell's crash points and
//!   trial plans, and every trial's record until the report is built (a
//!   record lists every completed ack: it grows with `--txns`);
//! - in each worker (at most one per batch of trials, at most `--jobs`): up
//!   to [`WORKER_SPECS`] prepared writers, each with the file's initial image
//!   and the bytes of every store, plus one trial's power-loss analysis;
//! - in the work directory: one file of `--size` bytes per worker and
//!   prepared writer.
//!
//! `tests` compare the counts below with what [`crate::matrix::plan`] makes,
//! so the two cannot drift apart.

use std::mem::size_of;
use std::path::Path;

use crate::crash::{CrashPoint, PointSelection, INSIDE_POINTS_PER_LARGE_STORE, LARGE_STORE};
use crate::disk_space::{disk_space, human_bytes};
use crate::flag_limits::{check_size, check_trials, check_txns};
use crate::lab::protocol::TrialPlan;
use crate::power_loss::{AckDurability, PowerLossOutcome, MAX_EXPLANATIONS};
use crate::process_model::AckOutcome;
use crate::report::survival::MatrixConfig;
use crate::spec::{MappingKind, Op, SyncPolicy, WorkloadParams};
use crate::trial_record::TrialRecord;
use crate::vocab::CrashKind;

/// A campaign may plan at most this share of the available memory (1/N).
pub const MEMORY_SHARE: u64 = 2;
/// Prepared writers a lab worker keeps (see `lab::worker`).
pub const WORKER_SPECS: u64 = 2;
/// The soundness backends' filesystem images are this many times as large
/// as the files a cut group writes into them, at least.
pub const IMAGE_HEADROOM: u64 = 2;

/// What one process costs before it holds any trial data: the binary's
/// private pages, the allocator, thread stacks, pipe buffers.
const PROCESS_BYTES: u64 = 24 << 20;
/// Heap per op of a spec: the enum, and the allocation of an ack's list.
const OP_BYTES: u64 = size_of::<Op>() as u64 + 32;
/// An op as JSON in the Prepare request a worker reads (transient).
const OP_JSON_BYTES: u64 = 96;

/// Ops of the writer of `policy` with `txns` transactions (exactly what
/// [`crate::spec::WriterSpec::generate`] makes).
pub fn ops_of(policy: SyncPolicy, txns: u32) -> u64 {
    let t = txns as u64;
    let per_txn = match policy {
        SyncPolicy::None => 2 * t,
        SyncPolicy::MsAsyncEach | SyncPolicy::MsSyncEach | SyncPolicy::AckBeforeSync => 3 * t,
        SyncPolicy::MsSyncEvery(n) | SyncPolicy::FsyncEvery(n) => 2 * t + t.div_ceil(n.max(1) as u64),
    };
    per_txn + 1 // the final munmap
}

/// Large stores of a workload (every `large_every`-th transaction).
fn large_stores(w: &WorkloadParams) -> u64 {
    if w.large_every == 0 {
        return 0;
    }
    w.txns as u64 / w.large_every as u64
}

/// Bytes all stores of a writer write, at most.
pub fn store_bytes_bound(w: &WorkloadParams) -> u64 {
    let large = large_stores(w);
    large * w.large_store + (w.txns as u64 - large) * w.max_store
}

/// Crash points of one process-crash cell, at most (`crash_points`).
fn process_points(w: &WorkloadParams, ops: u64, crash: CrashKind, points: PointSelection) -> u64 {
    let inside = if w.large_store >= LARGE_STORE { large_stores(w) * INSIDE_POINTS_PER_LARGE_STORE as u64 } else { 0 };
    match (crash, points) {
        (CrashKind::Clean, _) => 1,
        (CrashKind::PowerLoss | CrashKind::PowerLossReal | CrashKind::EioSync, _) => 0,
        (_, PointSelection::Random(n)) => n as u64,
        // A capacity per allocating store (at most one per store), then the control.
        (CrashKind::Enospc, PointSelection::Boundaries) => w.txns as u64 + 1,
        // Every capacity up to the peak: at most the pages all stores touch.
        (CrashKind::Enospc, PointSelection::All) => touched_pages_bound(w) + 1,
        (CrashKind::Sigkill, PointSelection::All) => ops + 1 + inside,
        (CrashKind::Sigkill | CrashKind::Abort, _) => ops + 1,
        // Boundaries before the last store: the last store is followed by
        // its ack and the munmap at least.
        (CrashKind::Sigbus, _) => ops.saturating_sub(2),
    }
}

/// Pages of the file the stores of `w` touch, at most: each store touches
/// its length in pages plus one it may straddle, and no more than the file.
fn touched_pages_bound(w: &WorkloadParams) -> u64 {
    let page = crate::page_size::page_size();
    let large = large_stores(w);
    let per = |len: u64| len.div_ceil(page) + 1;
    let bound = large * per(w.large_store) + (w.txns as u64 - large) * per(w.max_store);
    bound.min(w.file_size / page)
}

/// Points of a shard's block of `n` points, at most.
fn sharded(config: &MatrixConfig, n: u64) -> u64 {
    config.shard.map_or(n, |s| n.div_ceil(s.count() as u64))
}

/// One cell as the estimate sees it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CellSize {
    pub ops: u64,
    /// Crash points (this shard's).
    pub points: u64,
    pub power_loss: bool,
    /// A real column's cell (run by realcut workers, not the lab's).
    pub real: bool,
}

/// The cells of `config`, in plan order, with their sizes.
pub fn cell_sizes(config: &MatrixConfig) -> Vec<CellSize> {
    let w = config.workload();
    let mut cells = Vec::new();
    for s in &config.scenarios {
        let ops = ops_of(s.policy, config.txns);
        for &model in &config.models {
            if model.is_power_loss() {
                let boundaries = ops + 1;
                if model.is_real() {
                    let points = config.real_sample.map_or(boundaries, |n| boundaries.min(n as u64));
                    for _ in &config.real {
                        cells.push(CellSize { ops, points: sharded(config, points), power_loss: true, real: true });
                    }
                } else {
                    cells.push(CellSize { ops, points: sharded(config, boundaries), power_loss: true, real: false });
                    // As the plan: the enospc column's boundary capacities.
                    if config.crashes.contains(&CrashKind::Enospc) && s.mapping == MappingKind::Shared {
                        let points = process_points(&w, ops, CrashKind::Enospc, PointSelection::Boundaries);
                        cells.push(CellSize { ops, points: sharded(config, points), power_loss: true, real: false });
                    }
                }
                continue;
            }
            for &crash in &config.crashes {
                // As the plan: no enospc cell for a MAP_PRIVATE row.
                if crash == CrashKind::Enospc && s.mapping != MappingKind::Shared {
                    continue;
                }
                let points = sharded(config, process_points(&w, ops, crash, config.points));
                cells.push(CellSize { ops, points, power_loss: false, real: false });
            }
        }
    }
    cells
}

/// What a trial's record holds in crashlab's memory, at most.
fn record_bytes(txns: u32, power_loss: bool) -> u64 {
    let acks = txns as u64;
    let mut b = size_of::<TrialRecord>() as u64 + 128 + acks * size_of::<AckOutcome>() as u64;
    if power_loss {
        b += size_of::<PowerLossOutcome>() as u64
            + acks * size_of::<AckDurability>() as u64
            + MAX_EXPLANATIONS as u64 * 512;
    }
    b
}

/// Memory and disk a config needs, with the main parts of the memory named
/// (for the message when it does not fit).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Footprint {
    /// Bytes of memory, crashlab and its workers together.
    pub memory: u64,
    /// Bytes of files in the work directory.
    pub disk: u64,
    /// The parts of `memory`: what, and how many bytes.
    pub parts: Vec<(String, u64)>,
    /// What `disk` is made of.
    pub disk_parts: String,
}

/// The footprint of a matrix run on `jobs` workers. Call after
/// [`crate::matrix::check_matrix_config`] (the arithmetic saturates either way).
pub fn matrix_footprint(config: &MatrixConfig, jobs: usize) -> Footprint {
    let w = config.workload();
    let cells = cell_sizes(config);
    let trials = config.trials as u64;
    let size = config.file_size;
    let lab_cells = || cells.iter().filter(|c| !c.real);
    let batches: u64 = lab_cells()
        .map(|c| {
            let per = if c.power_loss { 4 } else { 32 };
            c.points.saturating_mul(trials).div_ceil(per)
        })
        .sum();
    let workers = (jobs as u64).min(batches).max(1);
    let specs_per_worker = WORKER_SPECS.min(config.scenarios.len().max(1) as u64);
    let max_ops = cells.iter().map(|c| c.ops).max().unwrap_or(1);
    let spec_bytes = |ops: u64| ops.saturating_mul(OP_BYTES);

    let all_trials: u64 = cells.iter().map(|c| c.points.saturating_mul(trials)).sum();
    let cell_records: Vec<u64> = cells
        .iter()
        .map(|c| c.points.saturating_mul(trials).saturating_mul(record_bytes(config.txns, c.power_loss)))
        .collect();
    let records = cell_records.iter().fold(0u64, |a, &b| a.saturating_add(b));
    // One cell's records are copied while it is aggregated.
    let largest_cell = cell_records.iter().copied().max().unwrap_or(0);
    let plans = all_trials.saturating_mul(size_of::<TrialPlan>() as u64)
        + cells.iter().map(|c| c.points).sum::<u64>() * size_of::<CrashPoint>() as u64;
    let specs: u64 = config.scenarios.iter().map(|s| spec_bytes(ops_of(s.policy, config.txns))).sum();
    let harness = PROCESS_BYTES + specs + plans.saturating_add(records).saturating_add(largest_cell);

    // A worker: its prepared writers (initial image, store bytes, spec,
    // journal), the JSON of one spec in flight, and one trial's analysis
    // (a copy of the file and per-op tables) while a writer's private copy
    // of the pages it stored into lives.
    let prepared = size + store_bytes_bound(&w) + spec_bytes(max_ops) + max_ops * 4;
    let per_worker = PROCESS_BYTES
        + specs_per_worker.saturating_mul(prepared)
        + max_ops * (OP_JSON_BYTES + OP_BYTES)
        + 3 * size
        + max_ops * 256;
    let worker_total = workers.saturating_mul(per_worker);

    let parts = vec![
        (
            format!("the trial records ({all_trials} trials, each listing up to --txns {} acks)", config.txns),
            records.saturating_add(largest_cell),
        ),
        (format!("the workers' images of the file ({workers} worker(s) × --size {})", human_bytes(size)), worker_total),
        ("the writers' specs and crash plans".to_string(), PROCESS_BYTES + specs + plans),
    ];
    let files = workers.saturating_mul(specs_per_worker).saturating_mul(size);
    Footprint {
        memory: harness.saturating_add(worker_total),
        disk: files,
        parts,
        disk_parts: format!("{workers} worker(s) × {specs_per_worker} file(s) of --size {}", human_bytes(size)),
    }
}

/// The fixed maxima of a soundness campaign: the file sizes must also fit
/// in the smallest filesystem image the campaign makes.
pub fn check_soundness_flags(
    size: u64,
    txns: u32,
    trials: u32,
    writers_per_cut: u32,
    smallest_image: u64,
) -> Result<(), String> {
    check_size("--size", size)?;
    check_txns(txns)?;
    check_trials(trials, "real power cuts per filesystem")?;
    check_fits_image(size, writers_per_cut, "--writers-per-cut", smallest_image)
}

/// A cut group's files (`writers` of `size` bytes; `writers_flag` sets
/// their number) fit in a filesystem image of `image` bytes with room to
/// spare.
pub fn check_fits_image(size: u64, writers: u32, writers_flag: &str, image: u64) -> Result<(), String> {
    let writers = writers.max(1) as u64;
    let files = size.saturating_mul(writers);
    if files.saturating_mul(IMAGE_HEADROOM) <= image {
        return Ok(());
    }
    let (what, lower) = match writers {
        1 => (format!("--size {size}"), "lower --size".to_string()),
        n => (
            format!("--size {size} × {n} writers per cut = {}", human_bytes(files)),
            format!("lower --size or {writers_flag}"),
        ),
    };
    Err(format!(
        "{what} does not fit in the {} filesystem image with room to spare (at most 1/{IMAGE_HEADROOM} of it, {}): \
         {lower}",
        human_bytes(image),
        human_bytes(image / IMAGE_HEADROOM),
    ))
}

/// The memory of a soundness campaign: every writer's images in each of
/// `jobs` workers, `trials` records per filesystem in crashlab.
/// `per_worker_extra`: what each worker needs besides (a vm guest's memory).
pub fn soundness_footprint(
    size: u64,
    txns: u32,
    trials: u32,
    filesystems: usize,
    scenarios: usize,
    jobs: usize,
    per_worker_extra: u64,
) -> Footprint {
    let w = WorkloadParams { txns, ..WorkloadParams::with_file_size(size) };
    // The probe writer adds an msync every third ack.
    let ops = ops_of(SyncPolicy::MsAsyncEach, txns) + txns as u64 / 3;
    let all_trials = (trials as u64).saturating_mul(filesystems as u64);
    // A real record holds counts and the state's text (a few bytes a page).
    let record = 1024 + (size / 4096) * 16;
    let records = all_trials.saturating_mul(record + 64);
    let per_worker = PROCESS_BYTES
        + per_worker_extra
        + (scenarios as u64).saturating_mul(size + store_bytes_bound(&w) + ops * (OP_BYTES + 4))
        + 3 * size
        + ops * (OP_JSON_BYTES + 256);
    let workers = (jobs as u64).min(all_trials).max(1);
    let worker_total = workers.saturating_mul(per_worker);
    let specs = (scenarios as u64).saturating_mul(ops * OP_BYTES);
    Footprint {
        memory: (PROCESS_BYTES + specs).saturating_add(records).saturating_add(worker_total),
        disk: 0,
        parts: vec![
            (format!("the trial records ({all_trials} trials)"), records),
            (
                format!("the workers' images of the file ({workers} worker(s) × --size {})", human_bytes(size)),
                worker_total,
            ),
            ("the writers' specs".to_string(), PROCESS_BYTES + specs),
        ],
        disk_parts: String::new(),
    }
}

/// What this machine offers a campaign.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Resources {
    /// Bytes of memory available (MemAvailable, or less under a cgroup
    /// limit); `None` if unknown (then memory is not checked).
    pub memory: Option<u64>,
    /// Free and total bytes of the work directory's filesystem (for an
    /// unprivileged user); `None` if unknown or not asked.
    pub disk: Option<(u64, u64)>,
}

impl Resources {
    /// Probe memory, and the filesystem of `dir` if given.
    pub fn probe(dir: Option<&Path>) -> Resources {
        Resources { memory: available_memory(), disk: dir.and_then(disk_space) }
    }
}

/// MemAvailable, lowered to what the process's cgroup (v2) still allows.
pub fn available_memory() -> Option<u64> {
    let meminfo = std::fs::read_to_string("/proc/meminfo").ok()?;
    let kib: u64 = meminfo
        .lines()
        .find_map(|l| l.strip_prefix("MemAvailable:"))?
        .trim()
        .strip_suffix("kB")?
        .trim()
        .parse()
        .ok()?;
    let mut avail = kib * 1024;
    if let Some(room) = cgroup_room() {
        avail = avail.min(room);
    }
    Some(avail)
}

/// memory.max − memory.current of this process's cgroup, if limited.
fn cgroup_room() -> Option<u64> {
    let cg = std::fs::read_to_string("/proc/self/cgroup").ok()?;
    let rel = cg.lines().find_map(|l| l.strip_prefix("0::"))?.trim();
    let dir = Path::new("/sys/fs/cgroup").join(rel.trim_start_matches('/'));
    let max = std::fs::read_to_string(dir.join("memory.max")).ok()?.trim().parse::<u64>().ok()?;
    let current = std::fs::read_to_string(dir.join("memory.current")).ok()?.trim().parse::<u64>().ok()?;
    Some(max.saturating_sub(current))
}

/// Does `footprint` fit `res`? `dir` (the flag and its value, e.g.
/// `--dir /dev/shm`) names where the files go. The error names the parts
/// and the flags that make them, and the limit.
pub fn check_footprint(footprint: &Footprint, res: &Resources, dir: &str) -> Result<(), String> {
    if let Some(avail) = res.memory {
        let limit = avail / MEMORY_SHARE;
        if footprint.memory > limit {
            let mut parts: Vec<&(String, u64)> = footprint.parts.iter().filter(|(_, b)| *b > 0).collect();
            parts.sort_by_key(|p| std::cmp::Reverse(p.1));
            let parts: Vec<String> = parts.iter().map(|(what, b)| format!("{what}: {}", human_bytes(*b))).collect();
            return Err(format!(
                "this campaign needs about {} of memory, more than the limit of {} (half of the {} this machine has \
                 available); {}. Lower --size, --txns, --trials, --points or --jobs, or split it with --shard",
                human_bytes(footprint.memory),
                human_bytes(limit),
                human_bytes(avail),
                parts.join("; ")
            ));
        }
    }
    if let Some((free, total)) = res.disk {
        if footprint.disk > free {
            let full = if free == 0 { ": the filesystem is full" } else { "" };
            return Err(format!(
                "the files under test need {} in {dir} ({}), but its filesystem has only {} free of {}{full}; \
                 lower --size or --jobs, or choose another --dir",
                human_bytes(footprint.disk),
                footprint.disk_parts,
                human_bytes(free),
                human_bytes(total)
            ));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::expectation::PersistenceModel;
    use crate::flag_limits::{check_jobs, check_timeout, MAX_JOBS};
    use crate::matrix::{check_matrix_config, plan};
    use crate::scenario::ScenarioId;
    use crate::trial_space::Shard;
    use crate::vocab::CrashKind;

    fn config(txns: u32, size: u64, points: PointSelection) -> MatrixConfig {
        MatrixConfig {
            seed: 5,
            file_size: size,
            txns,
            points,
            trials: 2,
            scenarios: ScenarioId::standard(),
            crashes: CrashKind::MATRIX.to_vec(),
            models: vec![PersistenceModel::ProcessCrash, PersistenceModel::PowerLoss, PersistenceModel::PowerLossTorn],
            tear: 512,
            shard: None,
            real: Vec::new(),
            real_sample: None,
        }
    }

    /// The estimate counts what `plan` makes: ops exactly, points at most
    /// (sigbus cells exactly but for the ops after the last store).
    #[test]
    fn counts_bound_what_the_plan_makes() {
        for (txns, size, points, shard) in [
            (12, 256 * 1024, PointSelection::All, None),
            (1, 4096, PointSelection::All, None),
            (7, 65536, PointSelection::Boundaries, None),
            (30, 1 << 20, PointSelection::Random(17), None),
            (13, 256 * 1024, PointSelection::All, Some(Shard::new(2, 3).unwrap())),
            (25, 8192, PointSelection::All, Some(Shard::new(1, 4).unwrap())),
        ] {
            let mut c = config(txns, size, points);
            c.shard = shard;
            for s in &c.scenarios {
                assert_eq!(ops_of(s.policy, txns), c.spec(*s).unwrap().ops.len() as u64, "{s} txns {txns}");
                let spec = c.spec(*s).unwrap();
                assert!(store_bytes_bound(&c.workload()) >= spec.store_bytes(), "{s}");
            }
            let planned = plan(&c).unwrap();
            let sizes = cell_sizes(&c);
            assert_eq!(planned.len(), sizes.len());
            for (p, s) in planned.iter().zip(&sizes) {
                let n = p.points.len() as u64;
                assert!(s.points >= n, "{} {}: {} < {n}", p.scenario, p.crash, s.points);
                // An enospc cell's capacities run to the pages the stores
                // touch, which the seed's offsets decide: a bound only.
                if p.crash != CrashKind::Enospc {
                    assert!(s.points <= n + 5, "{} {}: {} ≫ {n}", p.scenario, p.crash, s.points);
                }
                assert_eq!(s.power_loss, p.model.is_power_loss());
            }
        }
    }

    #[test]
    fn fixed_maxima_name_the_flag_and_the_limit() {
        let e = check_matrix_config(&config(12, 1 << 40, PointSelection::All)).unwrap_err();
        assert!(e.contains("--size 1099511627776") && e.contains("1073741824"), "{e}");
        let e = check_matrix_config(&config(100_000_000, 4096, PointSelection::All)).unwrap_err();
        assert!(e.contains("--txns 100000000") && e.contains("100000"), "{e}");
        let e = check_matrix_config(&config(12, 4096, PointSelection::Random(u32::MAX))).unwrap_err();
        assert!(e.contains("random:N") && e.contains("1000000"), "{e}");
        let e = check_matrix_config(&MatrixConfig { trials: 0, ..config(12, 4096, PointSelection::All) }).unwrap_err();
        assert!(e.contains("--trials must be at least 1"), "{e}");
        assert!(check_jobs(0).unwrap_err().contains("--jobs must be at least 1"));
        assert!(check_jobs(MAX_JOBS + 1).unwrap_err().contains("--jobs 1025"));
        assert!(check_timeout(0).unwrap_err().contains("--timeout"));
        check_matrix_config(&config(12, 256 * 1024, PointSelection::All)).unwrap();
        let e = check_soundness_flags(64 << 20, 12, 10, 4, 64 << 20).unwrap_err();
        assert!(e.contains("--size 67108864") && e.contains("--writers-per-cut"), "{e}");
        check_soundness_flags(64 << 10, 12, 60, 4, 64 << 20).unwrap();
    }

    #[test]
    fn the_default_matrix_fits_and_a_huge_one_is_refused_naming_its_parts() {
        let plenty = Resources { memory: Some(2 << 30), disk: Some((1 << 30, 4 << 30)) };
        let small = matrix_footprint(&config(12, 256 * 1024, PointSelection::All), 2);
        assert!(small.memory < 256 << 20, "{small:?}");
        assert_eq!(small.disk, 2 * 2 * 256 * 1024);
        check_footprint(&small, &plenty, "--dir /tmp").unwrap();

        let records =
            matrix_footprint(&MatrixConfig { trials: 5000, ..config(2000, 256 * 1024, PointSelection::All) }, 2);
        let e = check_footprint(&records, &plenty, "--dir /tmp").unwrap_err();
        assert!(e.contains("trial records") && e.contains("--txns 2000") && e.contains("half of the 2 GiB"), "{e}");

        let files = matrix_footprint(&config(12, 1 << 30, PointSelection::All), 64);
        let e = check_footprint(&files, &Resources { memory: None, disk: Some((0, 64 << 10)) }, "--dir /mnt/x")
            .unwrap_err();
        assert!(e.contains("--dir /mnt/x") && e.contains("the filesystem is full") && e.contains("0 B free"), "{e}");
        // More workers than batches cost nothing more.
        assert_eq!(
            matrix_footprint(&config(12, 256 * 1024, PointSelection::All), 100_000),
            matrix_footprint(&config(12, 256 * 1024, PointSelection::All), MAX_JOBS * 1000)
        );
    }
}
