//! The pool: spawns worker processes (fork+exec, safe from any process) and
//! feeds them batches of trials. Each worker is owned by one thread of the
//! pool, which lives exactly as long as the worker, so the worker's
//! parent-death signal fires if that thread's process dies.

use std::collections::HashSet;
use std::ffi::OsString;
use std::io::{BufRead, BufReader, Write};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, ChildStdout, Command, Stdio};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use crate::disk_space::explain_disk_full;
use crate::lab::protocol::{Request, Response, TrialPlan};
use crate::lab::trial::TrialRecord;
use crate::spec::WriterSpec;
use crate::LabError;

/// How to start a worker: a program and the arguments that make it serve.
#[derive(Debug, Clone)]
pub struct WorkerCommand {
    pub program: PathBuf,
    pub args: Vec<OsString>,
}

impl WorkerCommand {
    /// The running `crashlab` binary, in its hidden `__worker` mode.
    pub fn current_exe() -> Result<WorkerCommand, LabError> {
        let program = std::env::current_exe().map_err(|e| LabError::io("cannot find the crashlab executable", e))?;
        Ok(WorkerCommand { program, args: vec!["__worker".into()] })
    }

    /// A binary whose `main` calls [`crate::lab::worker::main`].
    pub fn binary(program: impl Into<PathBuf>) -> WorkerCommand {
        WorkerCommand { program: program.into(), args: Vec::new() }
    }
}

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
    pub plans: Vec<TrialPlan>,
}

struct Worker {
    id: u32,
    child: Child,
    stdin: Option<ChildStdin>,
    stdout: BufReader<ChildStdout>,
    prepared: HashSet<u64>,
    clean_ns: std::collections::HashMap<u64, u64>,
}

impl Worker {
    fn spawn(cfg: &PoolConfig, id: u32) -> Result<Worker, LabError> {
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
        // SAFETY: prctl is async-signal-safe. The worker dies with the thread
        // that owns it, never outliving an interrupted harness.
        unsafe {
            cmd.pre_exec(|| {
                libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL);
                Ok(())
            });
        }
        let mut child = cmd
            .spawn()
            .map_err(|e| LabError::io(format!("cannot start worker `{}`", cfg.command.program.display()), e))?;
        let stdin = child.stdin.take();
        let stdout = BufReader::new(child.stdout.take().expect("stdout is piped"));
        Ok(Worker { id, child, stdin, stdout, prepared: HashSet::new(), clean_ns: Default::default() })
    }

    fn request(&mut self, req: &Request, cancel: &AtomicBool) -> Result<Response, LabError> {
        self.send(req)?;
        self.recv(cancel)
    }

    fn died(&mut self, what: &str) -> LabError {
        let status = self.child.try_wait().ok().flatten();
        LabError::Worker {
            id: self.id,
            message: format!(
                "{what}; worker {}",
                status.map_or("is unresponsive".to_string(), |s| format!("ended with {s}"))
            ),
        }
    }

    fn send(&mut self, req: &Request) -> Result<(), LabError> {
        let mut line = serde_json::to_vec(req).expect("requests serialize");
        line.push(b'\n');
        let stdin = self.stdin.as_mut().expect("stdin open while the worker serves");
        if stdin.write_all(&line).and_then(|_| stdin.flush()).is_err() {
            return Err(self.died("cannot send a request"));
        }
        Ok(())
    }

    /// Wait until the worker has an answer, or `cancel` is set: then the
    /// worker is killed (its writer child dies with it, by its parent-death
    /// signal) and the wait ends with `Interrupted`. A worker preparing a
    /// large file, or running a batch of long trials, may not answer for
    /// seconds; Ctrl-C must not wait for it.
    fn wait_readable(&mut self, cancel: &AtomicBool) -> Result<(), LabError> {
        use std::os::unix::io::AsRawFd;
        let fd = self.stdout.get_ref().as_raw_fd();
        while self.stdout.buffer().is_empty() {
            if cancel.load(Ordering::SeqCst) {
                let _ = self.child.kill();
                return Err(LabError::Interrupted);
            }
            let mut pfd = libc::pollfd { fd, events: libc::POLLIN, revents: 0 };
            // SAFETY: one pollfd on a descriptor we own, for 50 ms.
            let rc = unsafe { libc::poll(&mut pfd, 1, 50) };
            if rc > 0 {
                break; // readable, or closed: read_line says which
            }
            if rc < 0 && std::io::Error::last_os_error().kind() != std::io::ErrorKind::Interrupted {
                break; // let read_line report it
            }
        }
        Ok(())
    }

    fn recv(&mut self, cancel: &AtomicBool) -> Result<Response, LabError> {
        self.wait_readable(cancel)?;
        let mut answer = String::new();
        match self.stdout.read_line(&mut answer) {
            Ok(0) | Err(_) => {
                let _ = self.child.wait();
                return Err(self.died("no answer"));
            }
            Ok(_) => {}
        }
        match serde_json::from_str::<Response>(&answer) {
            Ok(Response::Error { message }) => Err(LabError::Worker { id: self.id, message }),
            Ok(r) => Ok(r),
            Err(e) => Err(LabError::Worker { id: self.id, message: format!("unreadable answer ({e}): {answer}") }),
        }
    }

    fn ensure_prepared(&mut self, key: u64, spec: &WriterSpec, cancel: &AtomicBool) -> Result<u64, LabError> {
        if !self.prepared.contains(&key) {
            match self.request(&Request::Prepare { key, spec: spec.clone() }, cancel)? {
                Response::Prepared { clean_ns, .. } => {
                    self.prepared.insert(key);
                    self.clean_ns.insert(key, clean_ns);
                }
                other => return Err(unexpected(self.id, &other)),
            }
            // The worker keeps only a few specs; forget the ones it dropped.
            if self.prepared.len() > 2 {
                let keep = key;
                self.prepared.retain(|k| *k == keep);
            }
        }
        Ok(self.clean_ns[&key])
    }

    fn send_run(&mut self, batch: &Batch) -> Result<(), LabError> {
        self.send(&Request::Run { key: batch.key, trials: batch.plans.clone() })
    }

    fn recv_run(&mut self, batch: &Batch, cancel: &AtomicBool) -> Result<Vec<TrialRecord>, LabError> {
        match self.recv(cancel)? {
            Response::Ran { records } if records.len() == batch.plans.len() => Ok(records),
            other => Err(unexpected(self.id, &other)),
        }
    }
}

impl Drop for Worker {
    fn drop(&mut self) {
        // Closing stdin ends the worker's loop; it removes its files.
        drop(self.stdin.take());
        let _ = self.child.wait();
    }
}

fn unexpected(id: u32, r: &Response) -> LabError {
    LabError::Worker { id, message: format!("unexpected answer {r:?}") }
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
    let next = AtomicUsize::new(0);
    let results: Mutex<Vec<Option<Vec<TrialRecord>>>> = Mutex::new((0..batches.len()).map(|_| None).collect());
    let first_error: Mutex<Option<LabError>> = Mutex::new(None);
    let failed = AtomicBool::new(false);
    let jobs = cfg.jobs.clamp(1, batches.len().max(1));
    std::thread::scope(|scope| {
        for id in 0..jobs {
            let (next, results, first_error, failed) = (&next, &results, &first_error, &failed);
            scope.spawn(move || {
                let fail = |e: LabError| {
                    failed.store(true, Ordering::SeqCst);
                    first_error.lock().unwrap().get_or_insert(e);
                };
                let mut worker = match Worker::spawn(cfg, id as u32) {
                    Ok(w) => w,
                    Err(e) => return fail(e),
                };
                let collect = |worker: &mut Worker, j: usize| -> Result<(), LabError> {
                    let records = worker.recv_run(&batches[j], cancel)?;
                    on_batch(records.len());
                    results.lock().unwrap()[j] = Some(records);
                    Ok(())
                };
                // Two batches in flight per worker: it starts the next while
                // we decode the last, so it never idles on the pipe.
                let mut in_flight: std::collections::VecDeque<usize> = Default::default();
                loop {
                    let stop = failed.load(Ordering::SeqCst) || cancel.load(Ordering::SeqCst);
                    if !stop && in_flight.len() < 2 {
                        let i = next.fetch_add(1, Ordering::SeqCst);
                        if let Some(batch) = batches.get(i) {
                            // A Prepare must not interleave with pending Run answers.
                            if !worker.prepared.contains(&batch.key) {
                                while let Some(j) = in_flight.pop_front() {
                                    if let Err(e) = collect(&mut worker, j) {
                                        return fail(e);
                                    }
                                }
                            }
                            let sent = worker
                                .ensure_prepared(batch.key, &batch.spec, cancel)
                                .and_then(|_| worker.send_run(batch));
                            if let Err(e) = sent {
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
        return Err(LabError::Interrupted);
    }
    if let Some(e) = first_error.into_inner().unwrap() {
        return Err(e);
    }
    Ok(results.into_inner().unwrap().into_iter().map(|r| r.expect("every batch ran")).collect())
}

/// Run the benchmark floor on one fresh worker.
pub fn run_floor(cfg: &PoolConfig, spec: &WriterSpec, trials: u32) -> Result<u64, LabError> {
    let mut w = Worker::spawn(cfg, 999)?;
    match w.request(&Request::Floor { spec: spec.clone(), trials }, &AtomicBool::new(false))? {
        Response::Floor { nanos, .. } => Ok(nanos),
        other => Err(unexpected(w.id, &other)),
    }
}

/// Entry point of a worker binary: parse `--dir D --id N --watchdog S`
/// and serve stdin/stdout. Returns the process exit code.
pub fn worker_main(args: impl IntoIterator<Item = OsString>) -> i32 {
    let mut dir = None;
    let mut id = 0u32;
    let mut watchdog = 60u32;
    let mut it = args.into_iter();
    while let Some(a) = it.next() {
        let mut value = || it.next().and_then(|v| v.into_string().ok());
        match a.to_str() {
            Some("--dir") => dir = value().map(PathBuf::from),
            Some("--id") => id = value().and_then(|v| v.parse().ok()).unwrap_or(0),
            Some("--watchdog") => watchdog = value().and_then(|v| v.parse().ok()).unwrap_or(60),
            _ => {}
        }
    }
    let Some(dir) = dir else {
        eprintln!("crashlab worker: --dir is required (workers are started by crashlab, not by hand)");
        return 2;
    };
    let args = crate::lab::worker::WorkerArgs { dir, id, watchdog_secs: watchdog };
    let stdin = std::io::stdin().lock();
    let stdout = std::io::BufWriter::new(std::io::stdout().lock());
    match crate::lab::worker::serve(&args, stdin, stdout) {
        Ok(()) => 0,
        Err(e) => {
            eprintln!("crashlab worker {id}: {e}");
            2
        }
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
