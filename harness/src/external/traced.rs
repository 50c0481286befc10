//! Running the writer under the durability oracle, crashed at a syscall
//! boundary (the oracle's crash point) or at a time (from this thread,
//! through [`TraceControl::cancel`], or [`TraceControl::signal`] for
//! SIGABRT), while its output is read as it comes. Power-loss trials and
//! the process crashes of `--points syscalls` run this way.
//!
//! The oracle traces from the thread that calls it and collects with
//! `waitpid(-1, __WNOTHREAD)`, so it gets a thread of its own that starts no
//! other child; this thread reads the writer's stdout (the acks) and stderr
//! through pipes and enforces the crash time, `--timeout` and Ctrl-C.

use std::ffi::OsString;
use std::fs::File;
use std::io::Read;
use std::os::fd::{AsFd, AsRawFd, FromRawFd, OwnedFd};
use std::path::Path;
use std::time::{Duration, Instant};

use crate::external::config::{ExternalConfig, Supervision};
use crate::external::process::{AckLines, DRAIN_BYTES};
use crate::external::{ExternalError, ENV_DIR, ENV_SEED};
use crate::oracle::{
    run_traced, CrashSignal, OracleConfig, OracleError, OracleOutcome, SyncFailure, SyscallCrashPoint, TraceControl,
    TracedLaunch,
};

/// The longest the reading loop sleeps before looking at the clock and the
/// cancel flag again.
const POLL: Duration = Duration::from_millis(50);

/// Where to crash a traced writer.
#[derive(Debug, Clone)]
pub(crate) enum CrashAt {
    /// Run to the end (calibration).
    Never,
    /// This long after the tracer thread started: SIGKILL to every traced
    /// process (the run ends), or SIGABRT to each (the run goes on until
    /// the writer ends).
    Time(Duration, CrashSignal),
    Syscall(SyscallCrashPoint),
    /// `eio-sync`: fail one data sync, cut the power at a later one or
    /// run to the end.
    FailSync(SyncFailure),
}

/// What a traced run left.
#[derive(Debug)]
pub(crate) struct TracedRun {
    /// `None` when a timed crash struck before the writer's `execve`: it did
    /// nothing, the directory is as the setup left it.
    pub outcome: Option<OracleOutcome>,
    pub lines: AckLines,
    pub stderr: Vec<u8>,
    /// From the start of the tracer thread to the end of the run.
    pub elapsed: Duration,
    /// The timed crash was sent (the writer may have finished before it).
    pub killed_at: Option<Duration>,
    /// A timed SIGABRT found no traced process yet (the writer had not
    /// started): it was killed instead, before its `execve`.
    pub abort_before_exec: bool,
}

impl TracedRun {
    pub fn stderr_first_line(&self) -> Option<String> {
        let text = String::from_utf8_lossy(&self.stderr);
        text.lines().map(str::trim).find(|l| !l.is_empty()).map(str::to_owned)
    }
}

fn pipe() -> std::io::Result<(OwnedFd, OwnedFd)> {
    let mut fds = [0; 2];
    // SAFETY: a valid two-int array; on success both fds are ours.
    if unsafe { libc::pipe2(fds.as_mut_ptr(), libc::O_CLOEXEC) } != 0 {
        return Err(std::io::Error::last_os_error());
    }
    // SAFETY: fresh descriptors from pipe2.
    let (r, w) = unsafe { (OwnedFd::from_raw_fd(fds[0]), OwnedFd::from_raw_fd(fds[1])) };
    Ok((above_stdio(r)?, above_stdio(w)?))
}

/// The oracle wants stdio sources >= 3 (it dup2s 0, 1, 2 in order): a
/// crashlab started with a closed stdin would get a pipe at fd 0.
pub(crate) fn above_stdio(fd: OwnedFd) -> std::io::Result<OwnedFd> {
    if fd.as_raw_fd() >= 3 {
        return Ok(fd);
    }
    // SAFETY: F_DUPFD_CLOEXEC on a descriptor we own returns a new one we own.
    let raw = unsafe { libc::fcntl(fd.as_raw_fd(), libc::F_DUPFD_CLOEXEC, 3) };
    if raw < 0 {
        return Err(std::io::Error::last_os_error());
    }
    // SAFETY: fresh descriptor from fcntl.
    Ok(unsafe { OwnedFd::from_raw_fd(raw) })
}

fn set_nonblocking(fd: &OwnedFd) {
    // SAFETY: fcntl on a pipe end we own.
    unsafe {
        let flags = libc::fcntl(fd.as_raw_fd(), libc::F_GETFL);
        libc::fcntl(fd.as_raw_fd(), libc::F_SETFL, flags | libc::O_NONBLOCK);
    }
}

/// Read what is there, at most [`DRAIN_BYTES`] (so the loop looks at its
/// clocks even while the writer writes as fast as we read); true at EOF.
fn drain(fd: &mut Option<File>, mut sink: impl FnMut(&[u8])) -> bool {
    let Some(f) = fd.as_mut() else { return true };
    let mut buf = [0u8; 16 * 1024];
    let mut read = 0;
    while read < DRAIN_BYTES {
        match f.read(&mut buf) {
            Ok(0) => return true,
            Ok(n) => {
                read += n;
                sink(&buf[..n]);
            }
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => return false,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(_) => return true,
        }
    }
    false
}

/// The writer's environment: crashlab's, without other `CRASHLAB_*`
/// variables (as for the process crashes), plus the protocol's.
fn environment(dir: &Path, seed: &str) -> Vec<(OsString, OsString)> {
    let mut env: Vec<(OsString, OsString)> =
        std::env::vars_os().filter(|(k, _)| !k.to_string_lossy().starts_with("CRASHLAB_")).collect();
    env.push((ENV_DIR.into(), dir.as_os_str().to_owned()));
    env.push((ENV_SEED.into(), seed.into()));
    env
}

fn oracle_error(config: &ExternalConfig, error: OracleError) -> ExternalError {
    ExternalError::Oracle { command: config.writer.text.clone(), error }
}

/// Run the writer of `config` in `dir` under the oracle, crashed at `crash`.
/// The files in `dir` at the start (what the setup left) count as durable.
/// `stacks`: capture the call stacks of its syncs and acks
/// ([`OracleConfig::stacks`]), for a power-loss violation's attribution.
pub(crate) fn run_writer_traced(
    config: &ExternalConfig,
    dir: &Path,
    seed: &str,
    crash: CrashAt,
    history: bool,
    supervision: &Supervision<'_>,
    stacks: bool,
) -> Result<TracedRun, ExternalError> {
    run_writer_traced_in(config, dir, seed, crash, history, supervision, stacks, None)
}

/// The namespaces a traced writer runs in: those of a process holding
/// them (the capacity helper's, `enospc`), by pid and descriptors of its
/// `/proc/PID/ns/user` (when it has a user namespace of its own) and
/// `/proc/PID/ns/mnt`, in the order to enter them.
pub(crate) struct WriterNamespaces<'a> {
    pub holder: i32,
    pub fds: Vec<std::os::fd::BorrowedFd<'a>>,
}

/// [`run_writer_traced`], the writer in `namespaces` when given.
#[allow(clippy::too_many_arguments)]
pub(crate) fn run_writer_traced_in(
    config: &ExternalConfig,
    dir: &Path,
    seed: &str,
    crash: CrashAt,
    history: bool,
    supervision: &Supervision<'_>,
    stacks: bool,
    namespaces: Option<&WriterNamespaces<'_>>,
) -> Result<TracedRun, ExternalError> {
    let pipes = || -> std::io::Result<_> {
        let stdin = above_stdio(OwnedFd::from(File::open("/dev/null")?))?;
        Ok((stdin, pipe()?, pipe()?, pipe()?))
    };
    let (stdin, (out_r, out_w), (err_r, err_w), (done_r, done_w)) =
        pipes().map_err(|e| ExternalError::io("cannot create the traced writer's pipes", e))?;
    for fd in [&out_r, &err_r, &done_r] {
        set_nonblocking(fd);
    }
    let mut oracle = OracleConfig::new(dir);
    oracle.assume_initial_durable = true;
    oracle.history = history;
    oracle.history_every = config.power_loss.history.every.filter(|_| history);
    oracle.stacks = stacks;
    oracle.crash = match &crash {
        CrashAt::Syscall(point) => Some(point.clone()),
        CrashAt::Never | CrashAt::Time(..) | CrashAt::FailSync(_) => None,
    };
    if let CrashAt::FailSync(f) = &crash {
        oracle.fail_sync = Some(*f);
    }
    oracle.mount_namespace_of = namespaces.map(|n| n.holder);
    let line = &config.writer;
    let launch = TracedLaunch {
        program: line.program_path().to_owned(),
        args: line.argv()[1..].iter().map(OsString::from).collect(),
        env: Some(environment(dir, seed)),
        cwd: Some(dir.to_owned()),
        stdin: None,
        stdout: None,
        stderr: None,
        new_process_group: true,
        namespaces: namespaces.map(|n| n.fds.clone()).unwrap_or_default(),
    };
    let control = TraceControl::new();
    let started = Instant::now();
    let (crash_at, crash_signal) = match crash {
        CrashAt::Time(t, signal) => (Some(started + t), signal),
        _ => (None, CrashSignal::Kill),
    };
    let (result, ended, lines, stderr, killed_at, stopped, timed_out, mut abort_before_exec) =
        std::thread::scope(|scope| {
            let tracer = scope.spawn(|| {
                let launch = TracedLaunch {
                    stdin: Some(stdin.as_fd()),
                    stdout: Some(out_w.as_fd()),
                    stderr: Some(err_w.as_fd()),
                    ..launch.clone()
                };
                let result = run_traced(&launch, &oracle, &control);
                let ended = Instant::now();
                // EOF on `done` tells the reading loop the run is over.
                drop(launch);
                drop((stdin, out_w, err_w, done_w));
                (result, ended)
            });
            let mut out = Some(File::from(out_r));
            let mut err = Some(File::from(err_r));
            let mut done = Some(File::from(done_r));
            let mut lines = AckLines::default();
            let mut stderr = Vec::new();
            let mut abort_before_exec = false;
            let timeout_at = started + supervision.timeout;
            let (mut killed_at, mut stopped, mut timed_out) = (None, false, false);
            while out.is_some() || err.is_some() || done.is_some() {
                let now = Instant::now();
                // The timeout holds after a timed SIGABRT too: the writer may
                // handle it and run on.
                if !stopped && !timed_out && (killed_at.is_none() || crash_signal == CrashSignal::Abort) {
                    if supervision.stopped() {
                        stopped = true;
                        control.cancel();
                    } else if now >= timeout_at {
                        timed_out = true;
                        control.cancel();
                    } else if killed_at.is_none() && crash_at.is_some_and(|t| now >= t) {
                        killed_at = Some(now - started);
                        if crash_signal == CrashSignal::Kill || !control.signal(libc::SIGABRT) {
                            abort_before_exec = crash_signal == CrashSignal::Abort;
                            control.cancel();
                        }
                    }
                }
                let next = [crash_at.filter(|_| killed_at.is_none()), Some(timeout_at)]
                    .into_iter()
                    .flatten()
                    .filter(|&t| t > now)
                    .min()
                    .map_or(POLL, |t| (t - now).min(POLL));
                let raw = |f: &Option<File>| f.as_ref().map_or(-1, |f| f.as_raw_fd());
                let mut fds =
                    [raw(&out), raw(&err), raw(&done)].map(|fd| libc::pollfd { fd, events: libc::POLLIN, revents: 0 });
                let ts = libc::timespec { tv_sec: next.as_secs() as libc::time_t, tv_nsec: next.subsec_nanos() as _ };
                // SAFETY: three valid pollfds; a null sigmask keeps ours. ppoll,
                // not poll: sub-millisecond crash times.
                let n = unsafe { libc::ppoll(fds.as_mut_ptr(), 3, &ts, std::ptr::null()) };
                if n <= 0 {
                    continue;
                }
                if fds[0].revents != 0 && drain(&mut out, |b| lines.push(b)) {
                    out = None;
                }
                if lines.overflow.is_some() && out.is_some() {
                    // Past a cap of protocol v1: stop reading and kill the writer.
                    out = None;
                    control.cancel();
                }
                if fds[1].revents != 0
                    && drain(&mut err, |b| {
                        let room = (16 * 1024usize).saturating_sub(stderr.len());
                        stderr.extend_from_slice(&b[..b.len().min(room)]);
                    })
                {
                    err = None;
                }
                if fds[2].revents != 0 && drain(&mut done, |_| {}) {
                    done = None;
                }
            }
            let (result, ended) = tracer.join().expect("the tracer thread does not panic");
            (result, ended, lines, stderr, killed_at, stopped, timed_out, abort_before_exec)
        });
    if stopped {
        return Err(ExternalError::Interrupted);
    }
    if let Some(overflow) = lines.overflow {
        return Err(ExternalError::ack_overflow(line, overflow));
    }
    if timed_out {
        return Err(ExternalError::Timeout {
            role: line.role,
            flag: line.role.flag(),
            command: line.text.clone(),
            secs: supervision.timeout_secs(),
            while_doing: " under the durability oracle".into(),
        });
    }
    let outcome = match result {
        Ok(o) => Some(o),
        // Our timed crash struck before the writer's execve.
        Err(OracleError::Cancelled) if killed_at.is_some() => None,
        Err(OracleError::DiedBeforeExec { .. }) if killed_at.is_some() && crash_signal == CrashSignal::Abort => {
            abort_before_exec = true;
            None
        }
        Err(e) => return Err(oracle_error(config, e)),
    };
    Ok(TracedRun { outcome, lines, stderr, elapsed: ended - started, killed_at, abort_before_exec })
}
