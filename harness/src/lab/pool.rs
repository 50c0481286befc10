//! The lab's pool: batches of trials on lab workers (`crashlab __worker`),
//! through the generic [`crate::worker_pool`]. A worker is told each spec
//! once (`Prepare`), then runs batches of its trials; two batches are in
//! flight per worker so it never idles on the pipe. On Ctrl-C a worker the
//! pool waits for is killed (its writer child dies with it): its files are
//! only files, nothing outlives it.

use std::collections::HashSet;
use std::path::{Path, PathBuf};
use std::sync::atomic::AtomicBool;
use std::sync::Arc;

use crate::disk_space::explain_disk_full;
use crate::lab::protocol::{Request, Response, TrialPlan};
use crate::payload::BaseImage;
use crate::spec::WriterSpec;
use crate::trial_record::TrialRecord;
use crate::worker_pool::process::{WorkerAnswer, WorkerProcess};
use crate::worker_pool::schedule::{self, BatchWorker, Schedule};
use crate::worker_pool::{WorkerArgv, WorkerCommand, WorkerError};
use crate::LabError;

#[derive(Debug, Clone)]
pub struct PoolConfig {
    pub command: WorkerCommand,
    pub jobs: usize,
    /// Where workers keep their files under test.
    pub dir: PathBuf,
    pub watchdog_secs: u32,
}

/// A batch of trials of one spec. Results come back in batch order.
pub struct Batch {
    pub key: u64,
    pub spec: Arc<WriterSpec>,
    /// The file the writer starts from (one key, one base).
    pub base: BaseImage,
    pub plans: Vec<TrialPlan>,
}

impl From<WorkerError> for LabError {
    fn from(e: WorkerError) -> LabError {
        match e {
            WorkerError::Io { what, source } => LabError::Io { what, error: source },
            WorkerError::Failed { id, message, .. } => LabError::Worker { id, message },
            WorkerError::Interrupted => LabError::Interrupted,
        }
    }
}

impl WorkerAnswer for Response {
    fn refusal(&self) -> Option<&str> {
        match self {
            Response::Error { message } => Some(message),
            _ => None,
        }
    }
}

/// A lab worker and the specs it holds.
struct LabWorker {
    process: WorkerProcess<Request, Response>,
    /// The keys of the specs the worker holds.
    prepared: HashSet<u64>,
}

impl LabWorker {
    fn spawn(cfg: &PoolConfig, id: u32) -> Result<LabWorker, LabError> {
        let argv = WorkerArgv { dir: cfg.dir.clone(), id, watchdog_secs: cfg.watchdog_secs, switches: Vec::new() };
        let process = WorkerProcess::spawn("worker", &cfg.command, &argv)?;
        Ok(LabWorker { process, prepared: HashSet::new() })
    }

    fn ensure_prepared(&mut self, batch: &Batch, cancel: &AtomicBool) -> Result<(), LabError> {
        let key = batch.key;
        if self.prepared.contains(&key) {
            return Ok(());
        }
        let request = Request::Prepare { key, spec: (*batch.spec).clone(), base: batch.base };
        match self.process.request(&request, Some(cancel))? {
            Response::Prepared { .. } => {}
            other => return Err(self.process.unexpected(&other).into()),
        }
        // The worker keeps only a few specs; forget the ones it may have
        // dropped (asking again for one it still has costs one round trip).
        if self.prepared.len() >= 2 {
            self.prepared.clear();
        }
        self.prepared.insert(key);
        Ok(())
    }
}

impl BatchWorker<Batch> for LabWorker {
    type Record = TrialRecord;
    type Error = LabError;

    fn must_drain_before(&self, batch: &Batch) -> bool {
        // A Prepare must not interleave with pending Run answers.
        !self.prepared.contains(&batch.key)
    }

    fn send_batch(&mut self, batch: &Batch, cancel: &AtomicBool) -> Result<(), LabError> {
        self.ensure_prepared(batch, cancel)?;
        Ok(self.process.send(&Request::Run { key: batch.key, trials: batch.plans.clone() })?)
    }

    fn recv_batch(&mut self, batch: &Batch, cancel: &AtomicBool) -> Result<Vec<TrialRecord>, LabError> {
        match self.process.recv(Some(cancel))? {
            Response::Ran { records } if records.len() == batch.plans.len() => Ok(records),
            other => Err(self.process.unexpected(&other).into()),
        }
    }
}

/// Run every batch on `cfg.jobs` workers. Results are in batch order whatever
/// worker ran them. `on_batch` is called after each batch with its trial
/// count (for progress). Stops early, with `Interrupted`, once `cancel` is set.
pub fn run_batches(
    cfg: &PoolConfig,
    batches: &[Batch],
    cancel: &AtomicBool,
    on_batch: &(dyn Fn(usize) + Sync),
) -> Result<Vec<Vec<TrialRecord>>, LabError> {
    let start = |id| LabWorker::spawn(cfg, id);
    let schedule = Schedule { jobs: cfg.jobs, in_flight: 2, start: &start };
    schedule::run_batches(&schedule, batches, cancel, on_batch)
}

/// Run the benchmark floor on one fresh worker.
pub fn run_floor(cfg: &PoolConfig, spec: &WriterSpec, trials: u32) -> Result<u64, LabError> {
    let mut w = LabWorker::spawn(cfg, 999)?;
    match w.process.request(&Request::Floor { spec: spec.clone(), trials }, None)? {
        Response::Floor { nanos, .. } => Ok(nanos),
        other => Err(w.process.unexpected(&other).into()),
    }
}

/// Can the `enospc` column run here? A fresh worker enters namespaces of
/// its own, mounts a tmpfs in `cfg.dir` and sets its capacity; `Err` says
/// why it could not (no user namespaces, no tmpfs). The worker, its
/// namespaces and its mount end with the answer.
pub fn probe_capacity(cfg: &PoolConfig) -> Result<Result<(), String>, LabError> {
    let mut w = LabWorker::spawn(cfg, 998)?;
    match w.process.request(&Request::ProbeCapacity, None)? {
        Response::CapacityProbe { unavailable: None } => Ok(Ok(())),
        Response::CapacityProbe { unavailable: Some(why) } => Ok(Err(why)),
        other => Err(w.process.unexpected(&other).into()),
    }
}

/// Does `dir` exist and accept files? Checked before workers start so the
/// error names the directory, not a worker.
pub fn check_dir(dir: &Path) -> Result<(), LabError> {
    let probe = tempfile::Builder::new()
        .prefix(".crashlab-probe")
        .tempfile_in(dir)
        .map_err(|e| LabError::io(format!("cannot create files in {}", dir.display()), explain_disk_full(dir, e)))?;
    drop(probe);
    Ok(())
}
