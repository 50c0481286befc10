//! The `power-loss-real` columns of the survival matrix (`crashlab matrix
//! --model ...,power-loss-real --real loopcut:ext4,vm`): each real column is
//! one backend (and filesystem) whose real power cuts are made at the same
//! op boundaries as the simulated power-loss cells, on the same writers,
//! through the soundness campaign's machinery (realcut workers for loopcut,
//! guests for vm).
//!
//! What a column is ([`RealColumn`], pure) is `real_column.rs`'s; this is
//! the runner ([`run_real_cells`]): it starts workers or guests.

use std::path::PathBuf;
use std::sync::atomic::AtomicBool;
use std::time::Duration;

use super::campaign::batch_len;
use super::loopcut::{check_loopcut, run_loopcut_batches, LoopcutBatch, RealPoolConfig};
use super::protocol::RealTrialRecord;
use super::vm::assets::VmAssets;
use super::vm::guest::VmGuest;
use super::vm::runs::{run_vm_trials, VmRunConfig, VmTrial};
use super::RealcutError;
use crate::crash::CrashPoint;
use crate::spec::WriterSpec;
use crate::vocab::{Backend, CutMethod, FsKind, RealColumn, Writeback};

/// How real columns run here.
#[derive(Debug, Clone)]
pub struct RealSetup {
    /// loopcut: the realcut workers (`jobs`, images and mount points in
    /// `dir`, evidence of violations in `keep_dir`, the writer's watchdog).
    pub pool: RealPoolConfig,
    /// vm: the guest (`scripts/vm-setup.sh`); `None` when no vm column runs.
    pub vm: Option<VmAssets>,
    /// vm: a guest that has not reached its kill point by then is reported.
    pub vm_timeout: Duration,
    /// loopcut: writers of one cell sharing a power cut
    /// ([`super::campaign::SoundnessConfig::writers_per_cut`]).
    pub writers_per_cut: u32,
    /// loopcut: the per-cut writeback pressure while the writers run
    /// ([`super::pressure::start_pressure`]); the campaign-wide part
    /// (`expire:CS`) is the caller's to hold ([`super::pressure::campaign_pressure`]).
    pub writeback: Writeback,
}

/// Refuse early, before any trial runs, a real column that cannot run here:
/// loopcut without root or without its mkfs, vm without the guest.
pub fn check_available(columns: &[RealColumn], vm: Option<&VmAssets>) -> Result<(), RealcutError> {
    let loopcut: Vec<(FsKind, CutMethod)> =
        columns.iter().filter(|c| c.backend == Backend::Loopcut).map(|c| (c.fs, c.cut())).collect();
    if !loopcut.is_empty() {
        check_loopcut(&loopcut)?;
    }
    if columns.iter().any(|c| c.backend == Backend::Vm) && vm.is_none() {
        return Err(RealcutError::Unavailable(
            "the vm backend needs --vm-dir or CRASHLAB_VM_DIR, filled by scripts/vm-setup.sh".into(),
        ));
    }
    Ok(())
}

/// One real cell to run: its column, its writer, and the crash points of
/// its trials (op boundaries, repetitions included), in order.
pub struct RealCell<'a> {
    pub column: RealColumn,
    /// Cells with the same writer share a key (workers prepare it once).
    pub key: u64,
    pub spec: &'a WriterSpec,
    pub points: Vec<CrashPoint>,
}

/// Run the trials of `cells`: loopcut columns on realcut workers, vm
/// columns on guests (after the loopcut ones). Returns each cell's records,
/// in its points' order. `on_trials` is told of finished trials.
pub fn run_real_cells(
    setup: &RealSetup,
    cells: &[RealCell<'_>],
    cancel: &AtomicBool,
    on_trials: &(dyn Fn(usize) + Sync),
) -> Result<Vec<Vec<RealTrialRecord>>, RealcutError> {
    let columns: Vec<RealColumn> = cells.iter().map(|c| c.column).collect();
    check_available(&columns, setup.vm.as_ref())?;
    for c in cells {
        if let Some(p) = c.points.iter().find(|p| !matches!(p, CrashPoint::BeforeOp(k) if *k <= c.spec.ops.len())) {
            return Err(RealcutError::Spec(format!(
                "real power cuts come at op boundaries before:0..=before:{}, not {p}",
                c.spec.ops.len()
            )));
        }
    }
    // Specs by key, in first-seen order: the workers' and guests' spec index.
    let mut keys: Vec<u64> = Vec::new();
    let mut specs: Vec<&WriterSpec> = Vec::new();
    for c in cells {
        if !keys.contains(&c.key) {
            keys.push(c.key);
            specs.push(c.spec);
        }
    }
    let index = |key: u64| keys.iter().position(|&k| k == key).expect("every key was collected");
    let mut out: Vec<Vec<RealTrialRecord>> = vec![Vec::new(); cells.len()];

    let mut batches = Vec::new();
    let mut owners = Vec::new();
    for (i, c) in cells.iter().enumerate().filter(|(_, c)| c.column.backend == Backend::Loopcut) {
        for chunk in c.points.chunks(batch_len(setup.writers_per_cut)) {
            let (fs, cut, key) = (c.column.fs, c.column.cut(), index(c.key) as u64);
            let writers_per_cut = setup.writers_per_cut;
            let page_cache = super::campaign::PageCacheStart::default();
            let (points, writeback) = (chunk.to_vec(), setup.writeback);
            batches.push(LoopcutBatch { fs, cut, key, points, writers_per_cut, page_cache, writeback });
            owners.push(i);
        }
    }
    if !batches.is_empty() {
        let results = run_loopcut_batches(&setup.pool, &specs, &batches, cancel, on_trials)?;
        for (i, records) in owners.into_iter().zip(results) {
            out[i].extend(records);
        }
    }

    let vm_cells: Vec<usize> = (0..cells.len()).filter(|&i| cells[i].column.backend == Backend::Vm).collect();
    if let (Some(assets), false) = (&setup.vm, vm_cells.is_empty()) {
        let work = setup.pool.dir.join("vm");
        let run = VmRunConfig {
            work: work.clone(),
            keep_dir: setup.pool.keep_dir.clone(),
            jobs: setup.pool.jobs,
            timeout: setup.vm_timeout,
        };
        let mut guest = VmGuest::new(assets.clone(), &work, setup.vm_timeout)?;
        // KVM when a probe guest boots under it; the accelerator changes
        // only how fast the cells run, so the report does not carry it.
        guest.choose_accel(super::vm_accel::AccelChoice::Auto)?;
        let mut trials = Vec::new();
        let mut owners = Vec::new();
        for &i in &vm_cells {
            for p in &cells[i].points {
                let CrashPoint::BeforeOp(k) = *p else { unreachable!("checked above: op boundaries") };
                trials.push(VmTrial { spec: index(cells[i].key), k });
                owners.push(i);
            }
        }
        let records = run_vm_trials(&guest, &specs, &trials, &run, cancel, on_trials)?;
        for (i, r) in owners.into_iter().zip(records) {
            out[i].push(r);
        }
    }
    Ok(out)
}

/// The default place for images: tmpfs when there is one (fastest), else
/// the temp dir.
pub fn default_image_dir() -> PathBuf {
    let shm = std::path::Path::new("/dev/shm");
    if crate::environment::fs_type(shm) == "tmpfs" {
        shm.to_owned()
    } else {
        std::env::temp_dir()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_vm_column_without_a_guest_is_unavailable_and_names_the_setup() {
        let e = check_available(&["vm".parse().unwrap()], None).unwrap_err();
        assert!(e.is_unavailable(), "{e}");
        assert!(e.to_string().contains("scripts/vm-setup.sh"), "{e}");
        assert!(check_available(&[], None).is_ok());
    }
}
