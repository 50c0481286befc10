//! vm trials spread over guests (one thread and work slot each), and a
//! whole vm soundness campaign: plan, trials on guests, evidence,
//! aggregation into the soundness report.

use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use super::assets::VmAssets;
use super::evidence::keep_vm_evidence;
use super::guest::{VmGuest, VmSpec};
use super::volatile::{
    aggregate_volatile, volatile_seed, TrialFiles, VolatileCut, VolatileDiskConfig, VolatileVmTrial,
};
use super::{VmDisk, VmOptions};
use crate::crash::CrashPoint;
use crate::payload::Payloads;
use crate::realcut::campaign::{plan, PlannedTrial, SoundnessConfig};
use crate::realcut::protocol::RealTrialRecord;
use crate::realcut::report::{aggregate, SoundnessEnvironment, SoundnessReport, SOUNDNESS_SCHEMA_VERSION};
use crate::realcut::RealcutError;
use crate::spec::WriterSpec;
use crate::vocab::Backend;

/// Where and how a vm campaign runs.
#[derive(Debug, Clone)]
pub struct VmRunConfig {
    /// Images, initramfs and the writer go here.
    pub work: PathBuf,
    /// Evidence of violations.
    pub keep_dir: PathBuf,
    /// Guests at once (each takes a host core).
    pub jobs: usize,
    /// A guest that has not reached its kill point by then is killed and reported.
    pub timeout: Duration,
}

/// One vm trial to run: the index of its spec in the `specs` given to
/// [`run_vm_trials`], and the op boundary the guest writer stops before.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct VmTrial {
    pub spec: usize,
    pub k: usize,
}

/// Each spec's payloads, initramfs and pristine image, made once.
fn prepare_all(guest: &VmGuest, specs: &[&WriterSpec]) -> Result<Vec<(Payloads, VmSpec)>, RealcutError> {
    let mut prepared = Vec::new();
    for (key, spec) in specs.iter().enumerate() {
        let payloads = Payloads::build(spec);
        let v = guest.prepare(key as u64, spec, &payloads)?;
        prepared.push((payloads, v));
    }
    Ok(prepared)
}

/// Run `n` trials on `jobs` threads, one guest each: `run_one(i, j)` runs
/// trial `i` on guest slot `j`. Results in trial order; the first error
/// stops the others after their current trial; `cancel` stops them all.
fn run_on_guests<T: Send>(
    jobs: usize,
    n: usize,
    cancel: &AtomicBool,
    on_trials: &(dyn Fn(usize) + Sync),
    run_one: &(dyn Fn(usize, usize) -> Result<T, RealcutError> + Sync),
) -> Result<Vec<T>, RealcutError> {
    let next = std::sync::atomic::AtomicUsize::new(0);
    let results: std::sync::Mutex<Vec<Option<T>>> = std::sync::Mutex::new((0..n).map(|_| None).collect());
    let first_error: std::sync::Mutex<Option<RealcutError>> = std::sync::Mutex::new(None);
    std::thread::scope(|scope| {
        for j in 0..jobs.clamp(1, n.max(1)) {
            let (next, results, first_error) = (&next, &results, &first_error);
            scope.spawn(move || loop {
                if cancel.load(Ordering::SeqCst) || first_error.lock().unwrap().is_some() {
                    return;
                }
                let i = next.fetch_add(1, Ordering::SeqCst);
                if i >= n {
                    return;
                }
                match run_one(i, j) {
                    Ok(r) => {
                        results.lock().unwrap()[i] = Some(r);
                        on_trials(1);
                    }
                    Err(e) => {
                        first_error.lock().unwrap().get_or_insert(e);
                        return;
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
    Ok(results.into_inner().unwrap().into_iter().map(|r| r.expect("every trial ran")).collect())
}

/// Run `trials` on `jobs` guests at once (ext4 in the guest), each spec
/// prepared once (initramfs, pristine image). Returns the records in trial
/// order; the evidence of a violation or a judge mismatch is kept under
/// `keep_dir`. `on_trials` is told of each finished trial.
pub fn run_vm_trials(
    guest: &VmGuest,
    specs: &[&WriterSpec],
    trials: &[VmTrial],
    run: &VmRunConfig,
    cancel: &AtomicBool,
    on_trials: &(dyn Fn(usize) + Sync),
) -> Result<Vec<RealTrialRecord>, RealcutError> {
    let (work, keep_dir) = (run.work.as_path(), run.keep_dir.as_path());
    let prepared = prepare_all(guest, specs)?;
    run_on_guests(run.jobs, trials.len(), cancel, on_trials, &|i, j| {
        let VmTrial { spec: key, k } = trials[i];
        let (Some((payloads, v)), Some(spec)) = (prepared.get(key), specs.get(key)) else {
            return Err(RealcutError::Spec(format!("vm trial {i} names spec {key} of {}", specs.len())));
        };
        let disk = work.join(format!("trial-{j}.img"));
        let mut rec = guest.trial(v, spec, payloads, k, &disk)?;
        if rec.judgement.is_violation() || rec.judgement.judge_mismatch.is_some() {
            let dir = keep_dir.join(format!("vm-ext4-{i}-{}", rec.facts.point));
            rec.kept = keep_vm_evidence(&dir, &disk, &rec, spec, &guest.assets.kernel_version)
                .map_err(|e| eprintln!("crashlab: cannot keep the evidence of trial {i}: {e}"))
                .ok();
        }
        Ok(rec)
    })
}

/// [`run_vm_trials`] on a disk with a volatile write cache: each trial is
/// one cut whose sampled disk states are all checked. Returns the cuts in
/// trial order; evidence of a state whose file the model forbids, or whose
/// filesystem cannot be read, is kept under `keep_dir`.
pub fn run_vm_volatile_trials(
    guest: &VmGuest,
    specs: &[&WriterSpec],
    trials: &[VolatileVmTrial],
    disk: &VolatileDiskConfig,
    run: &VmRunConfig,
    cancel: &AtomicBool,
    on_trials: &(dyn Fn(usize) + Sync),
) -> Result<Vec<VolatileCut>, RealcutError> {
    let (work, keep_dir) = (run.work.as_path(), run.keep_dir.as_path());
    let prepared = prepare_all(guest, specs)?;
    run_on_guests(run.jobs, trials.len(), cancel, on_trials, &|i, j| {
        let t = &trials[i];
        let (Some((payloads, v)), Some(spec)) = (prepared.get(t.spec), specs.get(t.spec)) else {
            return Err(RealcutError::Spec(format!("vm trial {i} names spec {} of {}", t.spec, specs.len())));
        };
        let slot = work.join(format!("trial-{j}"));
        let evidence = keep_dir.join(format!("vm-ext4-{i}-{}", CrashPoint::BeforeOp(t.k)));
        guest.volatile_trial(v, spec, payloads, t, disk, TrialFiles { slot: &slot, evidence: &evidence })
    })
}

/// Run a vm campaign (ext4 in the guest) on `opts.disk`. Trials run one at
/// a time, or `jobs` guests at once. On a volatile disk each trial is a cut
/// of which up to `opts.states_per_cut` disk states are checked, each
/// counted as a trial of the report; its `volatile_disk` section says what
/// the cuts did.
pub fn run_vm(
    cfg: &SoundnessConfig,
    assets: VmAssets,
    run: &VmRunConfig,
    opts: &VmOptions,
    cancel: &AtomicBool,
    on_trials: &(dyn Fn(usize) + Sync),
) -> Result<SoundnessReport, RealcutError> {
    let started = Instant::now();
    let (specs, trials) = plan(cfg)?;
    let mut guest = VmGuest::new(assets, &run.work, run.timeout)?;
    guest.writeback_centisecs = opts.writeback_centisecs;
    let accel = guest.choose_accel(opts.accel)?;
    let key_of = |t: &PlannedTrial| specs.iter().position(|(w, _)| *w == t.scenario).expect("planned");
    let vm_trials: Vec<VmTrial> = trials
        .iter()
        .map(|t| {
            let CrashPoint::BeforeOp(k) = t.point else { unreachable!("plans are op boundaries") };
            VmTrial { spec: key_of(t), k }
        })
        .collect();
    let spec_refs: Vec<&WriterSpec> = specs.iter().map(|(_, s)| s).collect();
    let kernel = guest.assets.kernel_version.clone();
    let states_per_cut = opts.states_per_cut.max(1);
    let opts = VmOptions { states_per_cut, ..*opts };
    let (mut filesystems, summary) = match opts.disk {
        VmDisk::NoCache => {
            let results = run_vm_trials(&guest, &spec_refs, &vm_trials, run, cancel, on_trials)?;
            let records: Vec<(PlannedTrial, RealTrialRecord)> = trials.iter().copied().zip(results).collect();
            aggregate(cfg, &kernel, &records)
        }
        VmDisk::Volatile(mode) => {
            let dcfg = VolatileDiskConfig { mode, states_per_cut };
            let vtrials: Vec<VolatileVmTrial> = trials
                .iter()
                .zip(&vm_trials)
                .map(|(t, v)| VolatileVmTrial { spec: v.spec, k: v.k, seed: volatile_seed(cfg.seed, mode, t) })
                .collect();
            let cuts = run_vm_volatile_trials(&guest, &spec_refs, &vtrials, &dcfg, run, cancel, on_trials)?;
            aggregate_volatile(cfg, &kernel, &trials, &cuts, &opts)
        }
    };
    for f in &mut filesystems {
        for v in &mut f.violation_details {
            v.rerun.push_str(&opts.args());
        }
    }
    Ok(SoundnessReport {
        schema_version: SOUNDNESS_SCHEMA_VERSION.into(),
        crashlab_version: env!("CARGO_PKG_VERSION").into(),
        backend: Backend::Vm,
        environment: SoundnessEnvironment {
            kernel_release: kernel,
            page_size: crate::page_size::page_size(),
            work_dir: run.work.display().to_string(),
            work_dir_fs: crate::environment::fs_type(&run.work),
            model: opts.disk.verdict_model_name().into(),
            disk: opts.describe(),
            accelerator: Some(accel.describe()),
        },
        seed: cfg.seed,
        config: cfg.clone(),
        duration_ms: started.elapsed().as_millis() as u64,
        filesystems,
        namespace: None,
        summary,
    })
}
