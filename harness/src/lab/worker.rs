//! The worker process: reads [`Request`]s on stdin, forks writer children,
//! answers [`Response`]s on stdout. Single-threaded by construction and by
//! check ([`start_worker`]).

use std::collections::VecDeque;
use std::ffi::OsString;
use std::io::{BufRead, Write};
use std::path::PathBuf;
use std::time::Instant;

use crate::lab::capacity_mount::CapacityMount;
use crate::lab::protocol::{Request, Response};
use crate::lab::test_file::TestFile;
use crate::lab::trial::PreparedSpec;
use crate::payload::{BaseImage, Payloads};
use crate::private_mount::enter_private_namespaces;
use crate::worker_pool::serve::{serve_lines, start_worker, worker_main as serve_worker_main};
use crate::LabError;

pub struct WorkerArgs {
    /// Where the worker keeps its files under test.
    pub dir: PathBuf,
    /// Distinguishes the files of workers sharing `dir`.
    pub id: u32,
    /// A child still running after this many seconds dies of SIGALRM.
    pub watchdog_secs: u32,
}

/// How many prepared specs a worker keeps (each holds a file and images).
const CACHE: usize = 2;

/// Entry point of a worker binary (`crashlab __worker`, `crashlab-worker`):
/// parse `--dir D --id N --watchdog S` and serve stdin/stdout. Returns the
/// process exit code. Called before anything could start a thread.
pub fn worker_main(args: impl IntoIterator<Item = OsString>) -> i32 {
    serve_worker_main("worker", "crashlab", args, |argv, stdin, stdout| {
        let args = WorkerArgs { dir: argv.dir, id: argv.id, watchdog_secs: argv.watchdog_secs };
        serve(&args, stdin, stdout)
    })
}

/// Serve requests until stdin closes. Returns an error only when the worker
/// cannot go on at all; request failures are answered as `Response::Error`.
pub fn serve(args: &WorkerArgs, input: impl BufRead, output: impl Write) -> Result<(), LabError> {
    start_worker("worker").map_err(LabError::Spec)?;
    let mut state = WorkerState { cache: VecDeque::new(), namespaces: None };
    let handle = |req| handle(args, &mut state, req).unwrap_or_else(|e| Response::Error { message: e.to_string() });
    serve_lines(input, output, handle, |message| Response::Error { message })?;
    Ok(())
}

/// What a worker holds between requests.
struct WorkerState {
    cache: VecDeque<(u64, PreparedSpec)>,
    /// Whether the worker entered its own namespaces (the first `enospc`
    /// writer or probe tries, once; the answer holds for the worker's life).
    namespaces: Option<Result<(), String>>,
}

impl WorkerState {
    fn enter_namespaces(&mut self) -> Result<(), String> {
        self.namespaces.get_or_insert_with(|| enter_private_namespaces().map_err(|e| e.to_string())).clone()
    }
}

fn handle(args: &WorkerArgs, state: &mut WorkerState, req: Request) -> Result<Response, LabError> {
    match req {
        Request::Prepare { key, spec, base } => {
            if let Some((_, p)) = state.cache.iter().find(|(k, _)| *k == key) {
                return Ok(Response::Prepared { key, clean_ns: p.clean_ns });
            }
            if state.cache.len() == CACHE {
                state.cache.pop_front();
            }
            let path = match base {
                BaseImage::Pattern => args.dir.join(format!("crashlab-w{}-{key:016x}.dat", args.id)),
                BaseImage::Sparse => {
                    state.enter_namespaces().map_err(|e| LabError::Spec(format!("the enospc column: {e}")))?;
                    args.dir.join(format!("crashlab-w{}-{key:016x}.enospc", args.id))
                }
            };
            let p = PreparedSpec::new(spec, &path, base, args.watchdog_secs)?;
            let clean_ns = p.clean_ns;
            state.cache.push_back((key, p));
            Ok(Response::Prepared { key, clean_ns })
        }
        Request::ProbeCapacity => {
            let probe = state.enter_namespaces().and_then(|()| {
                let dir = args.dir.join(format!("crashlab-w{}-probe.enospc", args.id));
                let mount = CapacityMount::new(&dir).map_err(|e| e.to_string())?;
                mount.set_free_pages(0).and_then(|()| mount.check_one_page_per_store(3)).map_err(|e| e.to_string())
            });
            Ok(Response::CapacityProbe { unavailable: probe.err() })
        }
        Request::Run { key, trials } => {
            let (_, p) = state
                .cache
                .iter_mut()
                .find(|(k, _)| *k == key)
                .ok_or_else(|| LabError::Spec(format!("spec {key:016x} was not prepared")))?;
            let mut records = Vec::with_capacity(trials.len());
            for t in trials {
                records.push(p.run_plan(&t)?);
            }
            Ok(Response::Ran { records })
        }
        Request::Floor { spec, trials } => {
            let path = args.dir.join(format!("crashlab-w{}-floor.dat", args.id));
            let nanos = floor(&spec, &path, trials)?;
            Ok(Response::Floor { trials, nanos })
        }
    }
}

/// The benchmark floor: what a trial costs with no harness logic at all.
fn floor(spec: &crate::spec::WriterSpec, path: &std::path::Path, trials: u32) -> Result<u64, LabError> {
    let payloads = Payloads::try_build(spec).map_err(LabError::Spec)?;
    let file = TestFile::create(path, &payloads.base, crate::spec::MappingKind::Shared)
        .map_err(|e| LabError::io("cannot prepare the floor's file", e))?;
    let stores: Vec<(usize, &[u8])> = spec
        .ops
        .iter()
        .enumerate()
        .filter_map(|(i, op)| op.store_range().map(|r| (r.start as usize, payloads.store(spec, i))))
        .collect();
    let mut buf = crate::page_buffer::PageBuffer::try_zeroed(0, spec.file_size as usize)
        .map_err(|e| LabError::io("cannot allocate the floor's read-back buffer", e))?;
    let start = Instant::now();
    for _ in 0..trials {
        // SAFETY: single-threaded worker; the child only copies into the
        // mapping and kills itself.
        let pid = unsafe { libc::fork() };
        if pid == 0 {
            unsafe {
                for (off, bytes) in &stores {
                    std::ptr::copy_nonoverlapping(bytes.as_ptr(), file.map_ptr().add(*off), bytes.len());
                }
                libc::kill(libc::getpid(), libc::SIGKILL);
                libc::_exit(0);
            }
        }
        let mut status = 0;
        // SAFETY: reaping our own child.
        unsafe { libc::waitpid(pid, &mut status, 0) };
        file.read_back(&mut buf).map_err(|e| LabError::io("floor read-back failed", e))?;
    }
    Ok(start.elapsed().as_nanos() as u64)
}
