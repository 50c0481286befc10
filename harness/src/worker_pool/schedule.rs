//! Batches spread over worker processes: `jobs` threads, each owning one
//! worker for its whole life, taking the next batch as they go. Results
//! come back in batch order whatever worker ran them; the first error stops
//! every worker; a cancel stops them too (how soon is each worker kind's
//! choice: see [`BatchWorker`]).

use std::collections::VecDeque;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Mutex;

use super::WorkerError;

/// A worker as the scheduler drives it: a batch is sent, later its records
/// are received. `in_flight` batches may be sent before the first answer is
/// read.
pub trait BatchWorker<B> {
    type Record: Send;
    type Error: From<WorkerError> + Send;

    /// Must every answer in flight be read before `batch` is sent (a
    /// preparation request must not interleave with pending answers)?
    fn must_drain_before(&self, batch: &B) -> bool;

    /// Send `batch` (preparing what it needs first).
    fn send_batch(&mut self, batch: &B, cancel: &AtomicBool) -> Result<(), Self::Error>;

    /// Read the records of `batch`, the oldest batch in flight.
    fn recv_batch(&mut self, batch: &B, cancel: &AtomicBool) -> Result<Vec<Self::Record>, Self::Error>;
}

/// How to run a list of batches on workers of type `W`.
pub struct Schedule<'a, W, E> {
    /// Workers (threads); at most one per batch.
    pub jobs: usize,
    /// Batches sent to a worker before its first answer is read: 2 keeps a
    /// fast worker busy while the last answer is decoded.
    pub in_flight: usize,
    /// Starts worker `id` (0, 1, ...).
    pub start: &'a (dyn Fn(u32) -> Result<W, E> + Sync),
}

/// Run every batch. `on_batch` is told each finished batch's record count
/// (for progress). Stops early, with [`WorkerError::Interrupted`], once
/// `cancel` is set.
pub fn run_batches<B, W, E>(
    schedule: &Schedule<'_, W, E>,
    batches: &[B],
    cancel: &AtomicBool,
    on_batch: &(dyn Fn(usize) + Sync),
) -> Result<Vec<Vec<W::Record>>, E>
where
    B: Sync,
    W: BatchWorker<B, Error = E>,
    E: From<WorkerError> + Send,
{
    let next = AtomicUsize::new(0);
    let results: Mutex<Vec<Option<Vec<W::Record>>>> = Mutex::new((0..batches.len()).map(|_| None).collect());
    let first_error: Mutex<Option<E>> = Mutex::new(None);
    let failed = AtomicBool::new(false);
    let jobs = schedule.jobs.clamp(1, batches.len().max(1));
    let in_flight_max = schedule.in_flight.max(1);
    std::thread::scope(|scope| {
        for id in 0..jobs {
            let (next, results, first_error, failed) = (&next, &results, &first_error, &failed);
            scope.spawn(move || {
                let fail = |e: E| {
                    failed.store(true, Ordering::SeqCst);
                    first_error.lock().unwrap().get_or_insert(e);
                };
                let mut worker = match (schedule.start)(id as u32) {
                    Ok(w) => w,
                    Err(e) => return fail(e),
                };
                let collect = |worker: &mut W, j: usize| -> Result<(), E> {
                    let records = worker.recv_batch(&batches[j], cancel)?;
                    on_batch(records.len());
                    results.lock().unwrap()[j] = Some(records);
                    Ok(())
                };
                let mut in_flight: VecDeque<usize> = VecDeque::new();
                loop {
                    let stop = failed.load(Ordering::SeqCst) || cancel.load(Ordering::SeqCst);
                    if !stop && in_flight.len() < in_flight_max {
                        let i = next.fetch_add(1, Ordering::SeqCst);
                        if let Some(batch) = batches.get(i) {
                            if worker.must_drain_before(batch) {
                                while let Some(j) = in_flight.pop_front() {
                                    if let Err(e) = collect(&mut worker, j) {
                                        return fail(e);
                                    }
                                }
                            }
                            if let Err(e) = worker.send_batch(batch, cancel) {
                                return fail(e);
                            }
                            in_flight.push_back(i);
                            continue;
                        }
                    }
                    let Some(j) = in_flight.pop_front() else { return };
                    if let Err(e) = collect(&mut worker, j) {
                        return fail(e);
                    }
                }
            });
        }
    });
    if cancel.load(Ordering::SeqCst) {
        return Err(WorkerError::Interrupted.into());
    }
    if let Some(e) = first_error.into_inner().unwrap() {
        return Err(e);
    }
    Ok(results.into_inner().unwrap().into_iter().map(|r| r.expect("every batch ran")).collect())
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::AtomicBool;

    use serde::{Deserialize, Serialize};

    use super::*;
    use crate::worker_pool::process::{WorkerAnswer, WorkerProcess};
    use crate::worker_pool::{WorkerArgv, WorkerCommand};

    /// `cat` as a worker: it answers each request with the request itself.
    #[derive(Debug, Serialize, Deserialize)]
    struct Echo {
        n: u32,
    }

    impl WorkerAnswer for Echo {
        fn refusal(&self) -> Option<&str> {
            None
        }
    }

    struct EchoWorker(WorkerProcess<Echo, Echo>);

    impl BatchWorker<Vec<u32>> for EchoWorker {
        type Record = (u32, u32);
        type Error = WorkerError;
        fn must_drain_before(&self, _: &Vec<u32>) -> bool {
            false
        }
        fn send_batch(&mut self, batch: &Vec<u32>, _: &AtomicBool) -> Result<(), WorkerError> {
            batch.iter().try_for_each(|&n| self.0.send(&Echo { n }))
        }
        fn recv_batch(&mut self, batch: &Vec<u32>, cancel: &AtomicBool) -> Result<Vec<(u32, u32)>, WorkerError> {
            let id = self.0.id();
            batch.iter().map(|_| self.0.recv(Some(cancel)).map(|e| (e.n, id))).collect()
        }
    }

    fn start(script: &'static str) -> impl Fn(u32) -> Result<EchoWorker, WorkerError> + Sync {
        move |id| {
            let cmd = WorkerCommand { program: "/bin/sh".into(), args: vec!["-c".into(), script.into(), "sh".into()] };
            let argv = WorkerArgv { dir: "/nonexistent".into(), id, watchdog_secs: 60, switches: vec![] };
            WorkerProcess::spawn("echo worker", &cmd, &argv).map(EchoWorker)
        }
    }

    #[test]
    fn records_come_back_in_batch_order_whatever_worker_ran_them() {
        let batches: Vec<Vec<u32>> = (0..12).map(|b| (0..=b % 3).map(|i| b * 10 + i).collect()).collect();
        let start = start("exec cat");
        let schedule = Schedule { jobs: 3, in_flight: 2, start: &start };
        let counted = AtomicUsize::new(0);
        let on_batch = |n: usize| {
            counted.fetch_add(n, Ordering::SeqCst);
        };
        let results = run_batches(&schedule, &batches, &AtomicBool::new(false), &on_batch).unwrap();
        let numbers: Vec<Vec<u32>> = results.iter().map(|r| r.iter().map(|(n, _)| *n).collect()).collect();
        assert_eq!(numbers, batches);
        assert_eq!(counted.load(Ordering::SeqCst), batches.iter().map(Vec::len).sum::<usize>());
        assert!(results.iter().flatten().all(|(_, id)| *id < 3), "three workers, ids 0..3");
    }

    #[test]
    fn a_worker_that_dies_mid_batch_stops_the_run_with_an_error_naming_it() {
        // Each worker answers one request, then exits 5 with the rest unanswered.
        let start = start("read l; echo \"$l\"; exit 5");
        let schedule = Schedule { jobs: 1, in_flight: 1, start: &start };
        let batches = vec![vec![1, 2, 3]];
        let err = run_batches(&schedule, &batches, &AtomicBool::new(false), &|_| {}).unwrap_err().to_string();
        assert!(err.starts_with("echo worker 0: no answer; worker ended with"), "{err}");
    }

    #[test]
    fn a_cancel_while_workers_run_kills_them_and_ends_interrupted() {
        // Each worker takes its request and never answers nor exits: only
        // the kill ends the run. The bound tells a kill (milliseconds) apart
        // from the workers' own end (600 s).
        let start = start("read l; exec sleep 600");
        let schedule = Schedule { jobs: 2, in_flight: 1, start: &start };
        let cancel = AtomicBool::new(false);
        let began = std::time::Instant::now();
        let err = std::thread::scope(|s| {
            s.spawn(|| {
                std::thread::sleep(std::time::Duration::from_millis(200));
                cancel.store(true, Ordering::SeqCst);
            });
            run_batches(&schedule, &[vec![1], vec![2], vec![3]], &cancel, &|_| {}).unwrap_err()
        });
        assert!(matches!(err, WorkerError::Interrupted), "{err}");
        assert!(began.elapsed() < std::time::Duration::from_secs(300), "the run waited for its workers");
    }
}
