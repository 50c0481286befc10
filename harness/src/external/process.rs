//! One supervised child: started in a process group of its own (by
//! [`super::spawn`], or by `std::process::Command` without parent-death
//! protection), its output collected as it arrives, its exit seen through a
//! pidfd (without reaping, so the group id stays pinned until the rest of the
//! group is killed), and always killed and reaped, whatever path we leave by.

use std::ffi::OsStr;
use std::fs::File;
use std::io::{Read, Write};
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::os::unix::process::CommandExt;
use std::path::Path;
use std::process::Stdio;
use std::time::{Duration, Instant};

use super::command::CommandLine;
use super::escapes::{self, Tag, ENV_TAG};
use super::ExternalError;
use crate::vocab::process_end::ProcessEnd;

/// How much of a child's standard error is kept (the start of it: the
/// checker's reason is its first line).
const STDERR_KEPT: usize = 16 * 1024;

/// The longest a supervision loop sleeps before looking at the cancel flag.
const CANCEL_POLL: Duration = Duration::from_millis(50);

/// What to do with the child's standard output.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Stdout {
    /// Collect it as lines (the writer's acknowledgements).
    Lines,
    Discard,
}

/// The longest acknowledgement line (without its `\n`) protocol v1 accepts.
/// An ack names an operation (a key, a record number, a checksum); 64 KiB is
/// orders of magnitude above that, and is the capacity of a Linux pipe: a
/// writer past it has filled a whole pipe without a newline, which is a
/// runaway writer (`cat /dev/zero`) or binary data on stdout, not an ack.
pub const MAX_ACK_LINE_BYTES: usize = 64 * 1024;
/// The most acknowledgement bytes (newlines included) kept of one writer run.
/// Every trial in flight holds its acks in memory and the checker reads them
/// from a file: 16 MiB is a million acks of 15 bytes.
pub const MAX_ACK_BYTES: usize = 16 * 1024 * 1024;
/// The most acknowledgement lines kept of one writer run: each costs a
/// small allocation even when empty, so endless `\n`s are bounded by this
/// rather than by [`MAX_ACK_BYTES`].
pub const MAX_ACK_LINES: usize = 1024 * 1024;

/// Which cap of protocol v1 a writer's output went past.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AckOverflow {
    /// One line longer than [`MAX_ACK_LINE_BYTES`].
    LineTooLong,
    /// More than [`MAX_ACK_BYTES`] in all.
    TooManyBytes,
    /// More than [`MAX_ACK_LINES`] lines.
    TooManyLines,
}

impl std::fmt::Display for AckOverflow {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            AckOverflow::LineTooLong => write!(f, "printed a line of more than {} KiB", MAX_ACK_LINE_BYTES / 1024),
            AckOverflow::TooManyBytes => write!(f, "printed more than {} MiB of lines", MAX_ACK_BYTES / (1024 * 1024)),
            AckOverflow::TooManyLines => write!(f, "printed more than {MAX_ACK_LINES} lines"),
        }
    }
}

/// The caps of [`AckOverflow`], for messages.
pub(crate) fn ack_caps() -> String {
    format!(
        "protocol v1 caps one ack line at {} KiB and the acks of one writer run at {} MiB and {MAX_ACK_LINES} lines",
        MAX_ACK_LINE_BYTES / 1024,
        MAX_ACK_BYTES / (1024 * 1024)
    )
}

/// A writer's standard output split into lines as it arrived: the complete
/// lines are the acknowledged operations; `partial` is an unfinished last
/// line (not an acknowledgement). Bounded: past one of the caps above,
/// `overflow` says which and every further byte is dropped (the reader then
/// stops the writer: a protocol error, never an abort on memory).
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct AckLines {
    pub lines: Vec<Vec<u8>>,
    pub partial: Vec<u8>,
    pub overflow: Option<AckOverflow>,
    /// Bytes taken so far, newlines included.
    bytes: usize,
}

impl AckLines {
    /// Take the first complete line, and forget its bytes: a long-lived
    /// program that answers line by line (a checker server) is held to the
    /// caps of the lines not yet taken, not of its whole life.
    pub(crate) fn pop_front(&mut self) -> Option<Vec<u8>> {
        if self.lines.is_empty() {
            return None;
        }
        let line = self.lines.remove(0);
        self.bytes -= line.len() + 1;
        Some(line)
    }

    /// Append bytes as they come from the pipe.
    pub fn push(&mut self, mut bytes: &[u8]) {
        if self.overflow.is_some() {
            return;
        }
        if self.bytes + bytes.len() > MAX_ACK_BYTES {
            self.overflow = Some(AckOverflow::TooManyBytes);
            return;
        }
        self.bytes += bytes.len();
        while let Some(i) = bytes.iter().position(|&b| b == b'\n') {
            if self.partial.len() + i > MAX_ACK_LINE_BYTES {
                self.overflow = Some(AckOverflow::LineTooLong);
                return;
            }
            if self.lines.len() == MAX_ACK_LINES {
                self.overflow = Some(AckOverflow::TooManyLines);
                return;
            }
            self.partial.extend_from_slice(&bytes[..i]);
            self.lines.push(std::mem::take(&mut self.partial));
            bytes = &bytes[i + 1..];
        }
        if self.partial.len() + bytes.len() > MAX_ACK_LINE_BYTES {
            self.overflow = Some(AckOverflow::LineTooLong);
            return;
        }
        self.partial.extend_from_slice(bytes);
    }
}

/// What a wait for one line of output ended with ([`Supervised::next_line`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum LineWake {
    /// One complete line, without its `\n`.
    Line(Vec<u8>),
    /// The child (the group leader) has exited; it is not reaped yet.
    Exited,
    /// The child closed its standard output but runs on.
    StdoutClosed,
    /// The deadline passed with no line.
    Deadline,
}

/// What woke a supervision loop.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Wake {
    /// The child (the group leader) has exited; it is not reaped yet.
    Exited,
    /// The deadline passed with the child still running.
    Deadline,
}

/// Everything a finished child left.
#[derive(Debug)]
pub(crate) struct Finished {
    pub end: ProcessEnd,
    pub lines: AckLines,
    pub stderr: Vec<u8>,
}

impl Finished {
    /// The first line of standard error, for messages and verdicts.
    pub fn stderr_first_line(&self) -> Option<String> {
        let text = String::from_utf8_lossy(&self.stderr);
        text.lines().map(str::trim).find(|l| !l.is_empty()).map(str::to_owned)
    }
}

/// The last non-empty line of `stderr`.
pub(crate) fn last_line(stderr: &[u8]) -> Option<String> {
    let text = String::from_utf8_lossy(stderr);
    text.lines().map(str::trim).rfind(|l| !l.is_empty()).map(str::to_owned)
}

/// How a child's standard input and standard error are set up.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Serving {
    /// Standard input is empty (`/dev/null`); the start of standard error
    /// is kept (a program's first line of stderr is its reason).
    No,
    /// Standard input is a pipe crashlab writes requests into
    /// ([`Supervised::write_stdin`]); the *end* of standard error is kept
    /// (a long-lived server's last line tells what went wrong).
    Requests,
}

pub(crate) struct Supervised {
    pid: i32,
    pidfd: OwnedFd,
    stdout: Option<File>,
    stderr: Option<File>,
    /// The write end of the child's standard input ([`Serving::Requests`]).
    stdin: Option<File>,
    serving: Serving,
    exited: bool,
    exited_at: Option<Instant>,
    reaped: bool,
    started: Instant,
    /// The command, for the error when its output goes past a cap.
    line: CommandLine,
    lines: AckLines,
    stderr_kept: Vec<u8>,
    /// In the program's environment ([`ENV_TAG`]): finds what it started
    /// that left its process group (see [`escapes`]).
    tag: Tag,
}

impl Supervised {
    /// Start `line` in `cwd` with `env` (see [`CommandLine::command`]), in a
    /// process group of its own (a signal to the group reaches the program's
    /// children too, and a terminal's Ctrl-C does not reach it). With
    /// `die_with_crashlab` it also gets `PR_SET_PDEATHSIG` and is started by
    /// [`super::spawn`]; without, by `std::process::Command` (`posix_spawn`).
    pub fn spawn(
        line: &CommandLine,
        cwd: &Path,
        env: &[(&str, &OsStr)],
        stdout: Stdout,
        die_with_crashlab: bool,
    ) -> Result<Supervised, ExternalError> {
        Supervised::spawn_serving(line, cwd, env, stdout, die_with_crashlab, Serving::No)
    }

    /// [`Supervised::spawn`], with standard input and error as `serving` says.
    pub fn spawn_serving(
        line: &CommandLine,
        cwd: &Path,
        env: &[(&str, &OsStr)],
        stdout: Stdout,
        die_with_crashlab: bool,
        serving: Serving,
    ) -> Result<Supervised, ExternalError> {
        disable_core_dumps();
        let tag = Tag::new();
        let env = &[env, &[(ENV_TAG, tag.env_value())]].concat();
        // Before the spawn: the clean run's duration and the trials' crash
        // times count from here, so both include the same start-up (clone,
        // exec, dynamic linking). Taken after the spawn, the clean run of a
        // short writer measured less than its own work on a loaded machine
        // and every timed crash struck before its first ack.
        let started = Instant::now();
        let spawn_error = |error| ExternalError::Spawn {
            role: line.role,
            flag: line.role.flag(),
            program: line.program().to_owned(),
            error,
        };
        // Until the leader is recorded as ours (`reap` alone reaps it), no
        // zombie is reaped as an orphan (see `escapes`).
        let gate = escapes::SpawnGate::enter();
        let (pid, pidfd, stdout, stderr, stdin) = if die_with_crashlab {
            let fds = || -> std::io::Result<_> {
                let null = || File::options().read(true).write(true).open("/dev/null").map(OwnedFd::from);
                let (stdin, stdin_w) = match serving {
                    Serving::No => (super::spawn::above_stdio(null()?)?, None),
                    Serving::Requests => {
                        let (r, w) = pipe()?;
                        (r, Some(w))
                    }
                };
                let (out_r, out_w) = match stdout {
                    Stdout::Lines => {
                        let (r, w) = pipe()?;
                        (Some(r), w)
                    }
                    Stdout::Discard => (None, super::spawn::above_stdio(null()?)?),
                };
                let (err_r, err_w) = pipe()?;
                Ok((stdin, stdin_w, out_r, out_w, err_r, err_w))
            };
            let (stdin, stdin_w, out_r, out_w, err_r, err_w) =
                fds().map_err(|e| ExternalError::io("cannot create the pipes of a program", e))?;
            let stdio = [stdin.as_raw_fd(), out_w.as_raw_fd(), err_w.as_raw_fd()];
            let spawned = super::spawn::spawn(line, cwd, env, stdio, true).map_err(spawn_error)?;
            // Our copies of the child's ends: EOF comes once its side is gone.
            drop((stdin, out_w, err_w));
            (spawned.pid, spawned.pidfd, out_r.map(File::from), Some(File::from(err_r)), stdin_w.map(File::from))
        } else {
            let mut cmd = line.command(cwd, env);
            cmd.stdout(match stdout {
                Stdout::Lines => Stdio::piped(),
                Stdout::Discard => Stdio::null(),
            })
            .stderr(Stdio::piped())
            .process_group(0);
            if serving == Serving::Requests {
                cmd.stdin(Stdio::piped());
            }
            let mut child = cmd.spawn().map_err(spawn_error)?;
            let pid = child.id() as i32;
            // SAFETY: pidfd_open on our own unreaped child; the fd is ours.
            let raw = unsafe { libc::syscall(libc::SYS_pidfd_open, pid, 0) } as RawFd;
            if raw < 0 {
                let err = std::io::Error::last_os_error();
                // SAFETY: our own unreaped child: the pid cannot have been reused.
                unsafe { libc::killpg(pid, libc::SIGKILL) };
                let _ = child.wait();
                return Err(ExternalError::io("pidfd_open failed (crashlab needs Linux 5.3 or later)", err));
            }
            // SAFETY: pidfd_open returned a fresh descriptor we now own.
            let pidfd = unsafe { OwnedFd::from_raw_fd(raw) };
            // From here on we reap it ourselves (dropping a Child neither
            // waits nor kills).
            let out = child.stdout.take().map(|s| File::from(OwnedFd::from(s)));
            let err = child.stderr.take().map(|s| File::from(OwnedFd::from(s)));
            let input = child.stdin.take().map(|s| File::from(OwnedFd::from(s)));
            (pid, pidfd, out, err, input)
        };
        gate.own(pid);
        let fds = [&stdout, &stderr, &stdin];
        for fd in fds.iter().filter_map(|f| f.as_ref().map(|f| f.as_raw_fd())) {
            set_nonblocking(fd);
        }
        Ok(Supervised {
            pid,
            pidfd,
            stdout,
            stderr,
            stdin,
            serving,
            exited: false,
            exited_at: None,
            reaped: false,
            started,
            line: line.clone(),
            lines: AckLines::default(),
            stderr_kept: Vec::new(),
            tag,
        })
    }

    pub fn pid(&self) -> i32 {
        self.pid
    }

    /// When `spawn` was called, just before the program was started: its
    /// start-up (clone, exec, dynamic linking) counts as part of its run.
    pub fn started(&self) -> Instant {
        self.started
    }

    /// When a supervision loop first saw the child's exit.
    pub fn exited_at(&self) -> Option<Instant> {
        self.exited_at
    }

    /// Collect output until the child exits or `until` passes; checks
    /// `stop` at least every 50 ms and fails with `Interrupted` when it says so.
    pub fn wait_until(&mut self, until: Instant, stop: &dyn Fn() -> bool) -> Result<Wake, ExternalError> {
        self.pump_until(until, stop, Wake::Deadline, |s| s.exited.then_some(Wake::Exited))
    }

    /// Collect output until one complete line is there (taken, see
    /// [`AckLines::pop_front`]), the child exits or closes its standard
    /// output, or `until` passes; checks `stop` at least every 50 ms.
    pub fn next_line(&mut self, until: Instant, stop: &dyn Fn() -> bool) -> Result<LineWake, ExternalError> {
        self.pump_until(until, stop, LineWake::Deadline, |s| match s.lines.pop_front() {
            Some(line) => Some(LineWake::Line(line)),
            None if s.exited => Some(LineWake::Exited),
            None if s.stdout.is_none() => Some(LineWake::StdoutClosed),
            None => None,
        })
    }

    /// The supervision loop: collect output until `ready` says what woke it,
    /// or `until` passes (`deadline`); an output past a cap is an error, and
    /// so is `stop` (looked at at least every 50 ms).
    fn pump_until<T>(
        &mut self,
        until: Instant,
        stop: &dyn Fn() -> bool,
        deadline: T,
        mut ready: impl FnMut(&mut Supervised) -> Option<T>,
    ) -> Result<T, ExternalError> {
        loop {
            if let Some(overflow) = self.lines.overflow {
                return Err(ExternalError::ack_overflow(&self.line, overflow));
            }
            if let Some(woke) = ready(self) {
                return Ok(woke);
            }
            if stop() {
                return Err(ExternalError::Interrupted);
            }
            let now = Instant::now();
            if now >= until {
                return Ok(deadline);
            }
            self.pump((until - now).min(CANCEL_POLL));
        }
    }

    /// Write all of `bytes` to the child's standard input ([`Serving::Requests`]),
    /// without blocking past `until` (a child that does not read cannot hang
    /// crashlab) and checking `stop` at least every 50 ms. `Ok(false)` when
    /// the child has closed its standard input, has exited, or `until`
    /// passed first.
    pub fn write_stdin(
        &mut self,
        mut bytes: &[u8],
        until: Instant,
        stop: &dyn Fn() -> bool,
    ) -> Result<bool, ExternalError> {
        let Some(stdin) = self.stdin.as_mut() else { return Ok(false) };
        while !bytes.is_empty() {
            match stdin.write(bytes) {
                Ok(n) => bytes = &bytes[n..],
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
                Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {
                    if stop() {
                        return Err(ExternalError::Interrupted);
                    }
                    let now = Instant::now();
                    if now >= until {
                        return Ok(false);
                    }
                    let wait = (until - now).min(CANCEL_POLL);
                    let mut fds = [
                        libc::pollfd { fd: stdin.as_raw_fd(), events: libc::POLLOUT, revents: 0 },
                        libc::pollfd { fd: self.pidfd.as_raw_fd(), events: libc::POLLIN, revents: 0 },
                    ];
                    let ts =
                        libc::timespec { tv_sec: wait.as_secs() as libc::time_t, tv_nsec: wait.subsec_nanos() as _ };
                    // SAFETY: fds is a valid array of 2 pollfds; a null sigmask keeps ours.
                    unsafe { libc::ppoll(fds.as_mut_ptr(), fds.len() as libc::nfds_t, &ts, std::ptr::null()) };
                    if fds[1].revents != 0 {
                        return Ok(false);
                    }
                }
                // EPIPE: the child closed its end (SIGPIPE is ignored by
                // Rust programs).
                Err(_) => return Ok(false),
            }
        }
        Ok(true)
    }

    /// The last non-empty line of standard error so far ([`Serving::Requests`]
    /// keeps the end of it; otherwise its start is kept).
    pub fn stderr_last_line(&mut self) -> Option<String> {
        // Whatever is already in the pipe, without waiting.
        self.pump(Duration::ZERO);
        last_line(&self.stderr_kept)
    }

    /// Send `sig` to the child's whole process group.
    pub fn signal_group(&self, sig: i32) {
        if !self.reaped {
            // SAFETY: the leader is unreaped, so its pid (= the group id) is
            // still ours.
            unsafe { libc::killpg(self.pid, sig) };
        }
    }

    /// Wait (at most until `until`) for the leader to exit, then kill what is
    /// left of its group, read the rest of its output and reap it. Returns
    /// `Ok(None)` if the leader was still running at `until` (it is then
    /// killed and reaped by dropping `self`).
    pub fn finish(&mut self, until: Instant, stop: &dyn Fn() -> bool) -> Result<Option<Finished>, ExternalError> {
        if self.wait_until(until, stop)? == Wake::Deadline {
            return Ok(None);
        }
        // The leader is a zombie and pins the group id: no pid reuse.
        self.kill_everything();
        // Everyone it started is dying; the pipes reach EOF once the last
        // of them is gone, unless a process that left the group and could
        // not be attributed to it (see `escapes`) holds them.
        let drain_until = Instant::now() + Duration::from_secs(5);
        while self.stdout.is_some() || self.stderr.is_some() {
            if stop() {
                return Err(ExternalError::Interrupted);
            }
            let now = Instant::now();
            if now >= drain_until {
                return Err(ExternalError::io(
                    format!("the output of process {} stayed open after its process group was killed", self.pid),
                    std::io::Error::other("a process that left the group (setsid, a daemon) still holds it"),
                ));
            }
            self.pump((drain_until - now).min(CANCEL_POLL));
        }
        let status = self.reap().map_err(|e| ExternalError::io("waitpid failed", e))?;
        if let Some(overflow) = self.lines.overflow {
            return Err(ExternalError::ack_overflow(&self.line, overflow));
        }
        Ok(Some(Finished {
            end: ProcessEnd::from_wait_status(status),
            lines: std::mem::take(&mut self.lines),
            stderr: std::mem::take(&mut self.stderr_kept),
        }))
    }

    /// SIGKILL to the program's process group, then to everything it
    /// started that left the group ([`escapes::kill_escapes`]): when this
    /// returns, nothing the program started is running (bar what the tag
    /// cannot attribute, see [`escapes`]).
    fn kill_everything(&self) {
        if !self.reaped {
            self.signal_group(libc::SIGKILL);
            escapes::kill_escapes(&self.tag, self.pid);
        }
    }

    /// Reap the leader (blocking): its wait status.
    fn reap(&mut self) -> std::io::Result<libc::c_int> {
        let mut status = 0;
        loop {
            // SAFETY: our own child, not reaped yet (`reaped` says so).
            if unsafe { libc::waitpid(self.pid, &mut status, 0) } == self.pid {
                self.reaped = true;
                escapes::disown(self.pid);
                return Ok(status);
            }
            let e = std::io::Error::last_os_error();
            if e.kind() != std::io::ErrorKind::Interrupted {
                // ECHILD: nothing left to reap; never reap twice.
                self.reaped = true;
                escapes::disown(self.pid);
                return Err(e);
            }
        }
    }

    /// One `ppoll` over the output pipes and the pidfd, then read whatever
    /// is ready. ppoll (not poll) for sub-millisecond kill times.
    fn pump(&mut self, timeout: Duration) {
        let fd_of = |o: Option<RawFd>| o.unwrap_or(-1);
        let mut fds = [
            libc::pollfd { fd: fd_of(self.stdout.as_ref().map(|s| s.as_raw_fd())), events: libc::POLLIN, revents: 0 },
            libc::pollfd { fd: fd_of(self.stderr.as_ref().map(|s| s.as_raw_fd())), events: libc::POLLIN, revents: 0 },
            libc::pollfd {
                fd: if self.exited { -1 } else { self.pidfd.as_raw_fd() },
                events: libc::POLLIN,
                revents: 0,
            },
        ];
        let ts = libc::timespec { tv_sec: timeout.as_secs() as libc::time_t, tv_nsec: timeout.subsec_nanos() as _ };
        // SAFETY: fds is a valid array of 3 pollfds; a null sigmask keeps ours.
        let n = unsafe { libc::ppoll(fds.as_mut_ptr(), fds.len() as libc::nfds_t, &ts, std::ptr::null()) };
        if n <= 0 {
            return; // timeout or EINTR: the caller loops.
        }
        let ready = |p: &libc::pollfd| p.fd >= 0 && p.revents != 0;
        if ready(&fds[0]) {
            let mut lines = std::mem::take(&mut self.lines);
            if drain(&mut self.stdout, |b| lines.push(b)) {
                self.stdout = None;
            }
            if lines.overflow.is_some() {
                // Past a cap: stop reading (the writer gets EPIPE or
                // SIGPIPE) and kill it; the supervision loop reports it.
                self.stdout = None;
                self.signal_group(libc::SIGKILL);
            }
            self.lines = lines;
        }
        if ready(&fds[1]) {
            let kept = &mut self.stderr_kept;
            let serving = self.serving;
            if drain(&mut self.stderr, |b| match serving {
                Serving::No => {
                    let room = STDERR_KEPT.saturating_sub(kept.len());
                    kept.extend_from_slice(&b[..b.len().min(room)]);
                }
                Serving::Requests => {
                    kept.extend_from_slice(b);
                    if kept.len() > 2 * STDERR_KEPT {
                        kept.drain(..kept.len() - STDERR_KEPT);
                    }
                }
            }) {
                self.stderr = None;
            }
        }
        if ready(&fds[2]) {
            self.exited = true;
            self.exited_at = Some(Instant::now());
        }
    }
}

/// No core dumps from the programs crashlab crashes: with a relative
/// core_pattern they would land in the trial directory the checker reads,
/// and they are slow. Lowering crashlab's own soft limit (inherited by every
/// child) keeps the spawn path free of hooks. A limit of 1 rather than 0:
/// the kernel ignores 0 for piped core_patterns but honours exactly 1.
fn disable_core_dumps() {
    static ONCE: std::sync::Once = std::sync::Once::new();
    ONCE.call_once(|| {
        let mut lim = libc::rlimit { rlim_cur: 0, rlim_max: 0 };
        // SAFETY: get/setrlimit with a valid struct.
        unsafe {
            if libc::getrlimit(libc::RLIMIT_CORE, &mut lim) == 0 {
                lim.rlim_cur = lim.rlim_max.min(1);
                libc::setrlimit(libc::RLIMIT_CORE, &lim);
            }
        }
    });
}

/// The most one [`drain`] reads before the supervision loop looks at its
/// clocks again: a program that writes as fast as we read would otherwise
/// keep us reading past every deadline.
pub(crate) const DRAIN_BYTES: usize = 1024 * 1024;

/// Read a non-blocking pipe until it would block or [`DRAIN_BYTES`] were
/// read; true at EOF.
fn drain<R: Read>(pipe: &mut Option<R>, mut sink: impl FnMut(&[u8])) -> bool {
    let Some(r) = pipe.as_mut() else { return true };
    let mut buf = [0u8; 16 * 1024];
    let mut read = 0;
    while read < DRAIN_BYTES {
        match r.read(&mut buf) {
            Ok(0) => return true,
            Ok(n) => {
                read += n;
                sink(&buf[..n]);
            }
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => return false,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
            Err(_) => return true,
        }
    }
    false
}

/// A pipe, both ends close-on-exec and >= 3 (see [`super::spawn::above_stdio`]).
fn pipe() -> std::io::Result<(OwnedFd, OwnedFd)> {
    let mut fds = [0; 2];
    // SAFETY: a valid two-int array; on success both fds are ours.
    if unsafe { libc::pipe2(fds.as_mut_ptr(), libc::O_CLOEXEC) } != 0 {
        return Err(std::io::Error::last_os_error());
    }
    // SAFETY: fresh descriptors from pipe2.
    let (r, w) = unsafe { (OwnedFd::from_raw_fd(fds[0]), OwnedFd::from_raw_fd(fds[1])) };
    Ok((super::spawn::above_stdio(r)?, super::spawn::above_stdio(w)?))
}

fn set_nonblocking(fd: RawFd) {
    // SAFETY: fcntl on a pipe end we own.
    unsafe {
        let flags = libc::fcntl(fd, libc::F_GETFL);
        libc::fcntl(fd, libc::F_SETFL, flags | libc::O_NONBLOCK);
    }
}

impl Drop for Supervised {
    fn drop(&mut self) {
        if !self.reaped {
            // Every early exit (error, timeout, cancel) lands here: kill the
            // whole group while the unreaped leader pins its id, and what
            // left the group, then reap.
            self.kill_everything();
            let _ = self.reap();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lines_are_split_only_at_newlines() {
        let mut c = AckLines::default();
        c.push(b"a 1\nb ");
        c.push(b"2\n\nc");
        assert_eq!(c.lines, vec![b"a 1".to_vec(), b"b 2".to_vec(), b"".to_vec()]);
        assert_eq!(c.partial, b"c");
    }

    /// The start is taken before the spawn, not after it returns: under
    /// load the thread could be preempted between the writer's exec and a
    /// later timestamp, and a short writer's clean run was measured shorter
    /// than its own work (every timed crash then struck before its first
    /// ack). An argv of about 1 MiB makes the spawn itself take long (C
    /// strings built, then copied by the kernel in execve, which the
    /// vfork'd parent waits for), so the start must lie near its beginning.
    #[test]
    fn the_start_is_taken_before_the_spawn() {
        let args = vec!["x".repeat(1000); 1000].join(" ");
        let line = CommandLine::parse(super::super::Role::Writer, &format!("true {args}"), false).unwrap();
        let dir = tempfile::tempdir().unwrap();
        for die_with_crashlab in [true, false] {
            let before = Instant::now();
            let mut child = Supervised::spawn(&line, dir.path(), &[], Stdout::Lines, die_with_crashlab).unwrap();
            let after = Instant::now();
            let started = child.started();
            assert!(
                started - before < after - started,
                "the start ({:?} into the spawn call of {:?}) is not at its beginning",
                started - before,
                after - before
            );
            assert!(child.finish(Instant::now() + Duration::from_secs(60), &|| false).unwrap().is_some());
        }
    }

    #[test]
    fn a_line_past_the_cap_overflows_and_nothing_more_is_kept() {
        let mut c = AckLines::default();
        c.push(b"ack 0\n");
        let chunk = vec![0u8; 16 * 1024];
        for _ in 0..MAX_ACK_LINE_BYTES / chunk.len() {
            c.push(&chunk);
        }
        assert_eq!(c.overflow, None, "exactly the cap is still a line");
        c.push(b"\0");
        assert_eq!(c.overflow, Some(AckOverflow::LineTooLong));
        c.push(b"\nlate\n");
        assert_eq!(c.lines, vec![b"ack 0".to_vec()], "nothing is taken past an overflow");
        // The cap applies to a line ended within one push too.
        let mut c = AckLines::default();
        c.push(&[vec![b'x'; MAX_ACK_LINE_BYTES + 1], b"\n".to_vec()].concat());
        assert_eq!((c.overflow, c.lines.len()), (Some(AckOverflow::LineTooLong), 0));
    }

    #[test]
    fn endless_short_lines_are_bounded_by_the_line_and_byte_caps() {
        let mut c = AckLines::default();
        let newlines = vec![b'\n'; 64 * 1024];
        while c.overflow.is_none() {
            c.push(&newlines);
        }
        assert_eq!(c.overflow, Some(AckOverflow::TooManyLines));
        assert_eq!(c.lines.len(), MAX_ACK_LINES);
        let mut c = AckLines::default();
        let line = [vec![b'y'; 1000], b"\n".to_vec()].concat().repeat(64);
        while c.overflow.is_none() {
            c.push(&line);
        }
        assert_eq!(c.overflow, Some(AckOverflow::TooManyBytes));
        assert!(c.lines.len() * 1001 <= MAX_ACK_BYTES, "{}", c.lines.len());
    }
}
