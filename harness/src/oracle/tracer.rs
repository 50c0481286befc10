//! The tracer loop: one thread, every tracee's stops, the durable shadows.
//!
//! Task states: `Running` (resumed; its next stop or death will come through
//! `waitpid`) or `Held` (in a ptrace stop we have not resumed yet). A task
//! stopped while we were stopping the world has its stop queued in
//! `deferred` and is handled, then resumed, after the copy.
//!
//! A call under way is `Task::call`: set at the seccomp stop, cleared at the
//! syscall-exit stop. Its presence is what makes `resume` use
//! `PTRACE_SYSCALL` (to get that exit stop) instead of `PTRACE_CONT`. A
//! namespace call that turns out not to concern the watched tree (a `write`
//! to a pipe) sets none: it costs one stop, not two.
//!
//! The namespace calls (`tracer/namespace.rs`) are recorded at their exit
//! stop, also while the run is being killed: a call that completed changed
//! the tree, whatever happens next. A call the kill caught inside the
//! kernel is settled at the end by looking at the tree.

use std::collections::{HashMap, VecDeque};
use std::io;
use std::os::fd::{AsRawFd, OwnedFd};
use std::os::unix::fs::MetadataExt;

use libc::pid_t;

use super::address_space::{Clobber, Space};
use super::launch::{self, Prepared};
use super::namespace_log::NamespaceLog;
use super::shadow::ShadowStore;
use super::sys::{self, SyscallInfo, WaitStatus};
use super::ticker::Ticker;
use super::{
    CrashHit, CrashSignal, CrashSyscall, NoGuarantee, OracleConfig, OracleError, OracleOutcome, SyncEffect, SyncEvent,
    SyscallResult, TraceControl, TraceStats, TracedSyscall, WriterEnd, MAX_EVENTS,
};
use crate::page_history::{HistoryMethod, HistoryStats};
use crate::vocab::CrashWhen;

mod attribution;
mod crash_point;
mod fault_injection;
mod full_disk;
mod history_sampling;
mod namespace;
mod sync_copy;
mod tasks;
mod write_protect;

const OPTIONS: u64 = sys::PTRACE_O_TRACESYSGOOD
    | sys::PTRACE_O_TRACEFORK
    | sys::PTRACE_O_TRACEVFORK
    | sys::PTRACE_O_TRACECLONE
    | sys::PTRACE_O_TRACEEXEC
    | sys::PTRACE_O_TRACEVFORKDONE
    | sys::PTRACE_O_TRACESECCOMP
    | sys::PTRACE_O_EXITKILL;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum TaskState {
    Running,
    Held,
}

struct Call {
    sys: TracedSyscall,
    args: [u64; 6],
    event: Option<usize>,
    ordinal: Option<u64>,
    /// Interrupted with -ERESTART*: the kernel will re-enter it.
    restarting: bool,
    /// msync: the address space's generation at entry, and what the
    /// address-space calls under way at that moment may clobber.
    space_gen: u64,
    busy: Vec<Clobber>,
    /// fd syncs: (dev, inode) the fd named at entry.
    fd_ident: Option<(u64, u64)>,
    /// A namespace call that concerns the watched tree: what its entry
    /// stop saw.
    ns: Option<Box<namespace::NsCall>>,
    /// The failed sync of `eio-sync`: skipped, `-EIO` at its exit stop.
    eio: bool,
}

struct Task {
    tgid: pid_t,
    state: TaskState,
    call: Option<Call>,
    /// Between PTRACE_EVENT_VFORK and VFORK_DONE: blocked in the kernel
    /// (killable only), so PTRACE_INTERRUPT would not stop it; it cannot
    /// run user code before the VFORK_DONE stop anyway.
    in_vfork: bool,
    interrupted: bool,
    /// A [`CrashSignal::Abort`] crash point held back this call (the
    /// syscall number it had): at its exit stop it is set up to restart
    /// once the SIGABRT is handled.
    held_for_abort: Option<u64>,
}

struct Proc {
    space: u64,
}

struct Tracer<'a> {
    cfg: &'a OracleConfig,
    control: &'a TraceControl,
    store: Option<ShadowStore>,
    ns: NamespaceLog,
    /// Namespace calls the kill caught inside the kernel: (seq, tgid, call),
    /// settled at the end.
    ns_unfinished: Vec<(u64, pid_t, TracedSyscall, namespace::NsCall)>,
    /// Some `open` asked for `O_SYNC`/`O_DSYNC`: writes to watched files
    /// read their descriptor's flags from then on.
    saw_sync_open: bool,
    /// A refused call or an exceeded limit: the run was killed for it.
    abort: Option<OracleError>,
    program: String,
    page: u64,
    launcher: pid_t,
    launcher_done: bool,
    go_w: Option<OwnedFd>,
    err_r: OwnedFd,
    root: pid_t,
    tasks: HashMap<pid_t, Task>,
    procs: HashMap<pid_t, Proc>,
    spaces: HashMap<u64, Space>,
    next_space: u64,
    deferred: VecDeque<(pid_t, i32)>,
    killing: bool,
    counted: u64,
    events: Vec<SyncEvent>,
    crash: Option<CrashHit>,
    cancelled: bool,
    io_uring: Option<pid_t>,
    root_end: Option<WaitStatus>,
    root_exec_seen: bool,
    processes: Vec<pid_t>,
    threads: usize,
    leftovers_killed: usize,
    stats: TraceStats,
    /// What recording the write history found (filled at the end).
    history: HistoryStats,
    /// `--history-every`: wakes the loop to sample the history.
    ticker: Option<Ticker>,
    /// Write tracking by address space, and the spaces where it failed.
    tracking: HashMap<u64, write_protect::SpaceTracking>,
    tracking_refused: std::collections::HashSet<u64>,
    attribution: attribution::Attribution,
    /// The stacks where pages were first seen changed since their floor.
    change_stacks: Vec<Vec<crate::oracle::Frame>>,
    /// `eio-sync`: data syncs seen, and the one made to fail.
    data_syncs: u64,
    injected: Option<super::InjectedFailure>,
    full_disk: full_disk::FullDisk,
    finished: bool,
}

fn tracer_err(what: &str, tid: pid_t, e: io::Error) -> OracleError {
    OracleError::Tracer(format!("{what} (tid {tid}): {e}"))
}

fn is_esrch(e: &io::Error) -> bool {
    e.raw_os_error() == Some(libc::ESRCH)
}

/// The thread group of a task, from /proc (works for thread ids too).
fn read_tgid(tid: pid_t) -> Option<pid_t> {
    let status = std::fs::read_to_string(format!("/proc/{tid}/status")).ok()?;
    status.lines().find_map(|l| l.strip_prefix("Tgid:")).and_then(|v| v.trim().parse().ok())
}

/// (dev, inode) of the file an fd of a task names.
fn fd_ident(tid: pid_t, fd: u64) -> Option<(u64, u64)> {
    let fd = i32::try_from(fd).ok().filter(|&f| f >= 0)?;
    let m = std::fs::metadata(format!("/proc/{tid}/fd/{fd}")).ok()?;
    Some((m.dev(), m.ino()))
}

pub(super) fn run(
    prepared: Prepared,
    cfg: &OracleConfig,
    control: &TraceControl,
    ns: NamespaceLog,
    store: ShadowStore,
) -> Result<OracleOutcome, OracleError> {
    let launched = launch::fork_launcher(&prepared)?;
    let mut t = Tracer {
        cfg,
        control,
        store: Some(store),
        ns,
        ns_unfinished: Vec::new(),
        saw_sync_open: false,
        abort: None,
        program: prepared.display.clone(),
        page: crate::page_size::page_size(),
        launcher: launched.launcher,
        launcher_done: false,
        go_w: Some(launched.go_w),
        err_r: launched.err_r,
        root: 0,
        tasks: HashMap::new(),
        procs: HashMap::new(),
        spaces: HashMap::new(),
        next_space: 0,
        deferred: VecDeque::new(),
        killing: false,
        counted: 0,
        events: Vec::new(),
        crash: None,
        cancelled: false,
        io_uring: None,
        root_end: None,
        root_exec_seen: false,
        processes: Vec::new(),
        threads: 0,
        leftovers_killed: 0,
        stats: TraceStats::default(),
        history: HistoryStats::default(),
        ticker: None,
        tracking: HashMap::new(),
        tracking_refused: Default::default(),
        attribution: attribution::Attribution::new(cfg.stacks, crate::page_size::page_size()),
        change_stacks: Vec::new(),
        data_syncs: 0,
        injected: None,
        full_disk: Default::default(),
        finished: false,
    };
    // From here on, any early return drops `t`, which kills and reaps
    // everything it started.
    let writer = match launch::read_writer_pid(&launched.pid_r) {
        Ok(Some(pid)) => pid,
        Ok(None) => {
            t.cleanup();
            return Err(match launch::read_launch_error(&t.err_r) {
                Some((step, source)) => OracleError::Launch { program: t.program.clone(), step, source },
                None => OracleError::Tracer(format!("the launcher of {} died before starting it", t.program)),
            });
        }
        Err(e) => return Err(OracleError::io("cannot read the writer's pid from the launcher (read)", e)),
    };
    drop(launched.pid_r);
    t.seize(writer)?;
    if let Some(period) = cfg.history_every.filter(|_| cfg.history) {
        t.ticker =
            Some(Ticker::start(period).map_err(|e| OracleError::io("cannot start the history ticker thread", e))?);
    }
    t.release();
    t.run_loop()?;
    t.outcome()
}

impl Tracer<'_> {
    fn seize(&mut self, writer: pid_t) -> Result<(), OracleError> {
        sys::ptrace(sys::PTRACE_SEIZE, writer, 0, OPTIONS as usize)
            .map_err(|source| OracleError::PtraceUnavailable { pid: writer, program: self.program.clone(), source })?;
        self.root = writer;
        self.control.writer.store(writer, std::sync::atomic::Ordering::SeqCst);
        // The task first: `new_process` notices a cancel that raced with the
        // registration of its pidfd and kills every task. Were the writer
        // not a task yet, nothing would kill it, `release` would not let it
        // exec, and it would wait for the go byte forever (the go pipe sees
        // no EOF while a process forked at the same moment by another
        // thread holds a copy of its write end).
        self.tasks.insert(
            writer,
            Task {
                tgid: writer,
                state: TaskState::Running,
                call: None,
                in_vfork: false,
                interrupted: false,
                held_for_abort: None,
            },
        );
        self.new_process(writer);
        self.threads += 1;
        Ok(())
    }

    /// Let the seized writer go on to install its filter and exec.
    fn release(&mut self) {
        if let Some(go) = self.go_w.take() {
            self.notice_cancel();
            if !self.cancelled {
                let b = 1u8;
                // SAFETY: one byte from a local to our pipe. The writer holds
                // the read end until exec, so no SIGPIPE (which Rust programs
                // ignore anyway); a failure means it died, which the loop sees.
                unsafe { libc::write(go.as_raw_fd(), (&b as *const u8).cast(), 1) };
            }
        }
    }

    fn run_loop(&mut self) -> Result<(), OracleError> {
        loop {
            if self.launcher_done && self.tasks.is_empty() {
                break;
            }
            let (pid, status) = match self.deferred.pop_front() {
                Some(ev) => {
                    self.notice_cancel();
                    ev
                }
                None => match self.wait_any() {
                    Ok(Some(ev)) => ev,
                    Ok(None) => {
                        self.history_tick()?;
                        continue;
                    }
                    Err(e) if e.raw_os_error() == Some(libc::ECHILD) => break,
                    Err(e) => return Err(OracleError::io("waitpid(-1, __WALL | __WNOTHREAD) failed", e)),
                },
            };
            self.dispatch(pid, status)?;
        }
        // Anything still listed died without a report we could collect.
        for (tid, task) in std::mem::take(&mut self.tasks) {
            if let Some(call) = task.call {
                self.call_in_flight(tid, task.tgid, call);
            }
        }
        self.finished = true;
        Ok(())
    }

    fn outcome(&mut self) -> Result<OracleOutcome, OracleError> {
        if let Some(pid) = self.io_uring {
            return Err(OracleError::IoUring { pid });
        }
        if let Some(e) = self.abort.take() {
            return Err(e);
        }
        if !self.root_exec_seen {
            if self.cancelled {
                return Err(OracleError::Cancelled);
            }
            if let Some((step, source)) = launch::read_launch_error(&self.err_r) {
                return Err(OracleError::Launch { program: self.program.clone(), step, source });
            }
            return Err(OracleError::DiedBeforeExec {
                program: self.program.clone(),
                status: format!("{:?}", self.root_end),
            });
        }
        let end = if let Some(hit) = self.crash.clone().filter(|h| h.signal == CrashSignal::Kill) {
            WriterEnd::CrashPoint(hit)
        } else if self.cancelled {
            WriterEnd::Cancelled
        } else {
            match self.root_end {
                Some(WaitStatus::Exited(code)) => WriterEnd::Exited { code },
                Some(WaitStatus::Signaled(signal)) => WriterEnd::Signaled { signal },
                other => {
                    return Err(OracleError::Tracer(format!(
                        "the end of the writer {} (pid {}) was never reported ({other:?})",
                        self.program, self.root
                    )))
                }
            }
        };
        self.settle_unfinished()?;
        if let Some(e) = self.abort.take() {
            return Err(e);
        }
        let (files, namespace, inodes) = self.end_images()?;
        Ok(OracleOutcome {
            writer_pid: self.root,
            launcher_pid: self.launcher,
            end,
            crash: self.crash.clone(),
            events: std::mem::take(&mut self.events),
            files,
            namespace,
            inodes,
            page_size: self.page,
            processes: self.processes.clone(),
            threads: self.threads,
            leftovers_killed: self.leftovers_killed,
            stats: TraceStats { stacks_captured: self.attribution.captured(), ..self.stats },
            history_method: HistoryMethod::of(self.cfg.history, &self.history),
            history: self.history,
            ack_stacks: std::mem::take(&mut self.attribution.acks),
            ack_stacks_dropped: self.attribution.dropped,
            change_stacks: std::mem::take(&mut self.change_stacks),
            injected: self.injected.take(),
            no_space: self.full_disk.no_space.take(),
            store_fault: self.full_disk.fault.take(),
        })
    }

    // ---- events ----

    fn dispatch(&mut self, pid: pid_t, status: i32) -> Result<(), OracleError> {
        match sys::decode_status(status) {
            st @ (WaitStatus::Exited(_) | WaitStatus::Signaled(_)) => {
                self.on_gone(pid, st);
                Ok(())
            }
            WaitStatus::Stopped { sig, event } => self.on_stop(pid, sig, event),
            WaitStatus::Other => Ok(()),
        }
    }

    fn on_gone(&mut self, pid: pid_t, st: WaitStatus) {
        if pid == self.launcher {
            self.launcher_done = true;
            return;
        }
        // A stop queued before the death must not resurrect the task.
        self.deferred.retain(|&(p, _)| p != pid);
        let Some(task) = self.tasks.remove(&pid) else { return };
        if let Some(call) = task.call {
            self.call_in_flight(pid, task.tgid, call);
        }
        // A group leader is reported after all its threads: the process is gone.
        if pid == task.tgid {
            self.procs.remove(&pid);
            self.control.unregister(pid);
            if pid == self.root {
                self.root_end = Some(st);
                if self.cfg.end_with_root && !self.killing && !self.tasks.is_empty() {
                    self.leftovers_killed = self.procs.len();
                    self.start_killing();
                }
            }
        }
    }

    fn call_in_flight(&mut self, tid: pid_t, tgid: pid_t, call: Call) {
        if call.sys.changes_maps() {
            self.space_of(tgid).call_ended(tid);
        }
        if call.sys == TracedSyscall::Msync {
            self.space_of(tgid).msync_ended();
        }
        if let Some(i) = call.event {
            self.events[i].result = SyscallResult::InFlight;
            self.events[i].effect = match call.sys {
                s if !s.is_sync() => SyncEffect::NotASync,
                _ => SyncEffect::NoGuarantee(NoGuarantee::InFlight),
            };
        }
        if let Some(ns) = call.ns {
            self.ns_unfinished.push((Self::seq_of(call.event), tgid, call.sys, *ns));
        }
    }

    /// The number of a traced call in the namespace trace: its
    /// [`SyncEvent`]'s `seq`, which is its index (every call that emits
    /// namespace events is listed).
    fn seq_of(event: Option<usize>) -> u64 {
        event.map_or(u64::MAX, |i| i as u64)
    }

    fn resume(&mut self, tid: pid_t, sig: i32) -> Result<(), OracleError> {
        let Some(task) = self.tasks.get_mut(&tid) else { return Ok(()) };
        let request =
            if task.call.is_some() || task.held_for_abort.is_some() { sys::PTRACE_SYSCALL } else { sys::PTRACE_CONT };
        task.state = TaskState::Running;
        match sys::resume(request, tid, sig) {
            // ESRCH: killed meanwhile (another thread's exit_group, our
            // SIGKILL); its death will be reported.
            Err(e) if !is_esrch(&e) => Err(tracer_err("cannot resume a tracee (PTRACE_CONT/PTRACE_SYSCALL)", tid, e)),
            _ => Ok(()),
        }
    }

    fn on_stop(&mut self, tid: pid_t, sig: i32, event: i32) -> Result<(), OracleError> {
        if !self.adopt(tid) {
            return Ok(());
        }
        let task = self.tasks.get_mut(&tid).expect("adopted");
        task.state = TaskState::Held;
        task.interrupted = false;
        if self.killing {
            if event == 0 && sig == libc::SIGTRAP | 0x80 {
                self.ns_exit_while_killing(tid)?;
            }
            let _ = sys::kill(tid, libc::SIGKILL);
            return Ok(());
        }
        match event {
            sys::PTRACE_EVENT_SECCOMP => self.on_seccomp(tid),
            sys::PTRACE_EVENT_FORK | sys::PTRACE_EVENT_VFORK | sys::PTRACE_EVENT_CLONE => {
                let child = match sys::geteventmsg(tid) {
                    Ok(c) => c,
                    // Killed meanwhile (a cancel from another thread kills
                    // through pidfds): its death, and the child's, will be
                    // reported.
                    Err(e) if is_esrch(&e) => return Ok(()),
                    Err(e) => return Err(tracer_err("PTRACE_GETEVENTMSG after a fork", tid, e)),
                };
                // The child starts in a stop of its own (reported separately,
                // maybe already was); until then it cannot run, so Held.
                self.adopt(child as pid_t);
                if event == sys::PTRACE_EVENT_VFORK {
                    if let Some(t) = self.tasks.get_mut(&tid) {
                        t.in_vfork = true;
                    }
                }
                self.resume(tid, 0)
            }
            sys::PTRACE_EVENT_VFORK_DONE => {
                if let Some(t) = self.tasks.get_mut(&tid) {
                    t.in_vfork = false;
                }
                self.resume(tid, 0)
            }
            sys::PTRACE_EVENT_EXEC => self.on_exec(tid),
            // Group-stop, our PTRACE_INTERRUPT, or a new task's first stop.
            // Job control is not honoured: the writer keeps running.
            sys::PTRACE_EVENT_STOP => self.resume(tid, 0),
            0 if sig == libc::SIGTRAP | 0x80 => self.on_syscall_stop(tid),
            // A signal on its way to the tracee: deliver it.
            0 => self.on_signal(tid, sig),
            _ => self.resume(tid, 0),
        }
    }

    fn on_exec(&mut self, tid: pid_t) -> Result<(), OracleError> {
        let former = match sys::geteventmsg(tid) {
            Ok(f) => f as pid_t,
            // Killed meanwhile (see the fork event): its death will be reported.
            Err(e) if is_esrch(&e) => return Ok(()),
            Err(e) => return Err(tracer_err("PTRACE_GETEVENTMSG after execve", tid, e)),
        };
        // A non-leader thread that execs takes over the leader's tid; the
        // old leader's death is not reported, and the other threads report
        // theirs.
        if former != tid {
            if let Some(old) = self.tasks.remove(&former) {
                if let Some(call) = old.call {
                    self.call_in_flight(former, old.tgid, call);
                }
            }
        }
        let tgid = self.tasks.get(&tid).map_or(tid, |t| t.tgid);
        if let Some(call) = self.tasks.get_mut(&tid).and_then(|t| t.call.take()) {
            self.call_in_flight(tid, tgid, call);
        }
        let space = self.new_space();
        self.procs.entry(tgid).or_insert(Proc { space }).space = space;
        if tgid == self.root {
            self.root_exec_seen = true;
        }
        self.resume(tid, 0)
    }

    fn on_seccomp(&mut self, tid: pid_t) -> Result<(), OracleError> {
        self.stats.seccomp_stops += 1;
        let info = match sys::syscall_info(tid) {
            Ok(i) => i,
            Err(e) if is_esrch(&e) => return Ok(()),
            Err(e) => return Err(tracer_err("PTRACE_GET_SYSCALL_INFO at a seccomp stop", tid, e)),
        };
        let SyscallInfo::Seccomp { args, ret_data, .. } = info else { return self.resume(tid, 0) };
        self.sample_history(Some(tid), false);
        let Some(sys) = TracedSyscall::from_ret_data(ret_data & sys::SECCOMP_RET_DATA) else {
            return self.resume(tid, 0);
        };
        let task = self.tasks.get_mut(&tid).expect("adopted");
        let tgid = task.tgid;
        if let Some(call) = task.call.as_mut() {
            if call.restarting && call.sys == sys {
                // The kernel re-entering an interrupted call: same call.
                call.restarting = false;
                return self.resume(tid, 0);
            }
            // We missed its exit: it guarantees nothing.
            let call = task.call.take().expect("checked");
            self.call_in_flight(tid, tgid, call);
        }
        match sys {
            TracedSyscall::ExitGroup => return self.resume(tid, 0),
            TracedSyscall::IoUringSetup => {
                self.io_uring = Some(tgid);
                self.start_killing();
                return Ok(());
            }
            _ => {}
        }
        let ns = if sys.is_namespace() {
            match self.ns_enter(tid, tgid, sys, &args)? {
                namespace::NsEnter::Refused => return Ok(()),
                namespace::NsEnter::Track(c) => Some(c),
                // Not about the watched tree: no exit stop unless the call
                // is listed anyway (ftruncate, a crash-point kind).
                namespace::NsEnter::Ignore if !sys.recorded() => {
                    self.note_ack(tid, sys, &args);
                    return self.resume(tid, 0);
                }
                namespace::NsEnter::Ignore => None,
            }
        } else {
            None
        };
        if (sys.recorded() || ns.is_some()) && self.events.len() >= MAX_EVENTS {
            self.abort = Some(OracleError::Limit {
                what: "traced calls",
                limit: MAX_EVENTS as u64,
                detail: format!("the writer {} made more syncs and calls on watched files", self.program),
            });
            self.start_killing();
            return Ok(());
        }
        let recorded = sys.recorded() || ns.is_some();
        let counts = match &self.cfg.crash {
            Some(c) => c.counts(sys, recorded),
            None => CrashSyscall::of(sys).is_some(),
        };
        let ordinal = counts.then(|| {
            self.counted += 1;
            self.counted
        });
        let event = recorded.then(|| {
            self.events.push(SyncEvent {
                seq: self.events.len() as u64,
                pid: tgid,
                tid,
                syscall: sys,
                args,
                ordinal,
                result: SyscallResult::InFlight,
                file: None,
                effect: SyncEffect::NoGuarantee(NoGuarantee::InFlight),
                copied: Vec::new(),
                stack: Vec::new(),
            });
            self.events.len() - 1
        });
        self.attach_sync_stack(tid, sys, event);
        let fault = self.fault_at_entry(tid, tgid, sys, &args, event)?;
        if fault == fault_injection::Fault::Cut {
            return Ok(());
        }
        if let (Some(c), Some(n)) = (&self.cfg.crash, ordinal) {
            if c.when == CrashWhen::Before && n == c.nth && self.crash.is_none() {
                let signal = c.signal;
                let event = event.unwrap_or(0);
                self.crash = Some(CrashHit { nth: n, syscall: sys, when: CrashWhen::Before, signal, tid, event });
                if signal == CrashSignal::Kill {
                    self.start_killing();
                    return Ok(());
                }
                return self.abort_before_call(tid, sys, event);
            }
        }
        let eio = fault == fault_injection::Fault::Fail;
        let mut call = Call {
            sys,
            args,
            event,
            ordinal,
            restarting: false,
            space_gen: 0,
            busy: Vec::new(),
            fd_ident: None,
            ns,
            eio,
        };
        match sys {
            s if s.changes_maps() => {
                let clobber = Clobber::of(sys, &args, self.page);
                self.space_of(tgid).call_entered(tid, clobber);
            }
            TracedSyscall::Msync => (call.space_gen, call.busy) = self.space_of(tgid).msync_entered(),
            TracedSyscall::Fsync | TracedSyscall::Fdatasync | TracedSyscall::Syncfs => {
                call.fd_ident = fd_ident(tid, args[0]);
            }
            _ => {}
        }
        self.tasks.get_mut(&tid).expect("adopted").call = Some(call);
        self.resume(tid, 0)
    }

    fn on_syscall_stop(&mut self, tid: pid_t) -> Result<(), OracleError> {
        let info = match sys::syscall_info(tid) {
            Ok(i) => i,
            Err(e) if is_esrch(&e) => return Ok(()),
            Err(e) => return Err(tracer_err("PTRACE_GET_SYSCALL_INFO at a syscall stop", tid, e)),
        };
        match info {
            SyscallInfo::Exit { rval, is_error } => self.on_exit(tid, rval, is_error),
            SyscallInfo::Entry { nr } => {
                // PTRACE_SYSCALL is in effect only while a call is pending; an
                // entry means it is being restarted, or it returned EINTR to a
                // signal handler that now makes another call.
                let task = self.tasks.get_mut(&tid).expect("adopted");
                let tgid = task.tgid;
                let same = task
                    .call
                    .as_ref()
                    .is_some_and(|c| nr as i64 == c.sys.nr() || nr as i64 == libc::SYS_restart_syscall);
                if !same {
                    if let Some(mut call) = task.call.take() {
                        // It returned EINTR: it changed nothing.
                        call.ns = None;
                        let ev = call.event;
                        self.call_in_flight(tid, tgid, call);
                        if let Some(i) = ev {
                            self.events[i].result = SyscallResult::Failed { errno: libc::EINTR };
                            self.events[i].effect = SyncEffect::NoGuarantee(NoGuarantee::Failed);
                        }
                    }
                }
                self.resume(tid, 0)
            }
            _ => self.resume(tid, 0),
        }
    }

    fn on_exit(&mut self, tid: pid_t, rval: i64, is_error: bool) -> Result<(), OracleError> {
        self.stats.exit_stops += 1;
        let task = self.tasks.get_mut(&tid).expect("adopted");
        let tgid = task.tgid;
        if let Some(nr) = task.held_for_abort.take() {
            return self.restart_after_abort(tid, nr);
        }
        let Some(mut call) = task.call.take() else { return self.resume(tid, 0) };
        if call.eio {
            return self.fail_at_exit(tid, tgid, call);
        }
        if is_error
            && matches!(
                -rval,
                sys::ERESTARTSYS | sys::ERESTARTNOINTR | sys::ERESTARTNOHAND | sys::ERESTART_RESTARTBLOCK
            )
        {
            call.restarting = true;
            task.call = Some(call);
            return self.resume(tid, 0);
        }
        let ok = !is_error;
        let result = if is_error {
            SyscallResult::Failed { errno: (-rval) as i32 }
        } else {
            SyscallResult::Returned { value: rval }
        };
        if let Some(i) = call.event {
            self.events[i].result = result;
        }
        self.hold_failed_writeback(tid, tgid, &call, result);
        self.note_no_space(tid, tgid, &call, result);
        let effect = match call.sys {
            s if s.changes_maps() => {
                self.space_of(tgid).call_ended(tid);
                SyncEffect::NotASync
            }
            s if !s.is_sync() => SyncEffect::NotASync,
            _ if !ok => SyncEffect::NoGuarantee(NoGuarantee::Failed),
            TracedSyscall::SyncFileRange => SyncEffect::NoGuarantee(NoGuarantee::SyncFileRange),
            TracedSyscall::Msync => self.after_msync(tid, tgid, &call)?,
            TracedSyscall::Fsync | TracedSyscall::Fdatasync => self.after_fsync(tid, &call)?,
            TracedSyscall::Syncfs => self.after_syncfs(tid, &call)?,
            TracedSyscall::Sync => self.copy_watched(tid, &call, None)?,
            _ => SyncEffect::NotASync,
        };
        if call.sys == TracedSyscall::Msync {
            self.space_of(tgid).msync_ended();
        }
        let effect = match call.ns.take() {
            Some(ns) if ok => self.ns_exit(tid, tgid, &call, *ns, rval, true)?.unwrap_or(effect),
            // A failed call changed nothing, except maybe a size (a fallocate
            // that ran out of space after allocating some).
            Some(ns) => {
                self.ns_failed(tgid, &call, *ns)?;
                effect
            }
            None => effect,
        };
        if let Some(i) = call.event {
            self.events[i].effect = effect;
        }
        if call.sys == TracedSyscall::Mmap && ok && !self.track_writes_after_mmap(tid, tgid, &call.args)? {
            // Another stop came during an injected call: the loop has it.
            return Ok(());
        }
        if let (Some(c), Some(n)) = (&self.cfg.crash, call.ordinal) {
            if c.when == CrashWhen::After && n == c.nth && self.crash.is_none() {
                let signal = c.signal;
                self.crash = Some(CrashHit {
                    nth: n,
                    syscall: call.sys,
                    when: CrashWhen::After,
                    signal,
                    tid,
                    event: call.event.unwrap_or(0),
                });
                if signal == CrashSignal::Kill {
                    self.start_killing();
                    return Ok(());
                }
                // Pending before the thread returns to user space: it is
                // delivered (through a signal-delivery stop, passed on by
                // `on_stop`) before the writer's next instruction.
                let tgid = self.tasks.get(&tid).map_or(tid, |t| t.tgid);
                if let Err(e) = sys::tgkill(tgid, tid, libc::SIGABRT) {
                    if !is_esrch(&e) {
                        return Err(tracer_err("cannot send SIGABRT at the crash point (tgkill)", tid, e));
                    }
                }
            }
        }
        self.resume(tid, 0)
    }
}

impl Drop for Tracer<'_> {
    fn drop(&mut self) {
        if !self.finished {
            self.cleanup();
        }
    }
}
