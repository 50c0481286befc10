//! What a forked writer child does: execute the spec op by op on the
//! inherited mapping, marking the journal, and crash itself where the plan
//! says. Runs only in a child forked from the single-threaded worker.
//!
//! The child never returns: it ends in `_exit`, a signal, or SIGALRM (the
//! watchdog against a hung child).

use std::os::unix::io::RawFd;

use crate::crash::CrashPoint;
use crate::journal::{DONE, FAILED_BASE, STARTED};
use crate::lab::journal_region::JournalRegion;
use crate::lab::test_file::TestFile;
use crate::payload::Payloads;
use crate::process_model::{ChildExit, EXIT_OP_FAILED};
use crate::spec::{MsyncFlags, Op, WriterSpec};
use crate::vocab::CrashKind;

/// The pipe pair of the SIGBUS handshake: the child says "I reached op k",
/// the parent truncates and answers "go on".
#[derive(Clone, Copy)]
pub struct Handshake {
    pub to_parent: RawFd,
    pub from_parent: RawFd,
}

/// The mapping and descriptor of the file under test, as the child inherits
/// them (from a [`TestFile`] in the lab, from a file on a real filesystem in
/// the real power-cut backend).
#[derive(Clone, Copy)]
pub struct ChildTarget {
    pub map: *mut u8,
    pub fd: RawFd,
    /// Length of the mapping.
    pub size: u64,
}

impl ChildTarget {
    pub fn of(file: &TestFile) -> ChildTarget {
        ChildTarget { map: file.map_ptr(), fd: file.fd(), size: file.size() }
    }
}

pub struct ChildPlan<'a> {
    pub spec: &'a WriterSpec,
    pub payloads: &'a Payloads,
    pub target: ChildTarget,
    pub journal: &'a JournalRegion,
    pub kind: CrashKind,
    pub point: CrashPoint,
    pub handshake: Option<Handshake>,
    pub watchdog_secs: u32,
}

/// Entered right after fork, in the child.
pub fn run_child(plan: &ChildPlan<'_>) -> ! {
    // SAFETY: plain syscalls in a freshly forked single-threaded child.
    unsafe {
        // Die with the worker, never linger as an orphan.
        libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL);
        // std installs a SIGBUS handler for stack-overflow detection; the
        // truncation crash wants the kernel's default: die of SIGBUS.
        libc::signal(libc::SIGBUS, libc::SIG_DFL);
        libc::signal(libc::SIGABRT, libc::SIG_DFL);
        libc::alarm(plan.watchdog_secs);
    }
    let crash_before = |k: usize| {
        if plan.point == CrashPoint::BeforeOp(k) {
            match plan.kind {
                // SAFETY: raising a signal on ourselves.
                CrashKind::Sigkill => unsafe {
                    libc::kill(libc::getpid(), libc::SIGKILL);
                },
                CrashKind::Abort => unsafe { libc::abort() },
                _ => {}
            }
        }
        if let (CrashPoint::TruncateBefore { op, .. }, Some(h)) = (plan.point, plan.handshake) {
            if op == k {
                let mut b = [1u8];
                // SAFETY: one-byte pipe I/O on descriptors we inherited.
                unsafe {
                    if libc::write(h.to_parent, b.as_ptr().cast(), 1) != 1
                        || libc::read(h.from_parent, b.as_mut_ptr().cast(), 1) != 1
                    {
                        libc::_exit(EXIT_OP_FAILED + 1);
                    }
                }
            }
        }
    };
    for i in 0..plan.spec.ops.len() {
        crash_before(i);
        plan.journal.mark(i, STARTED);
        // SAFETY: the spec was validated: stores and msyncs stay inside the
        // mapping, nothing touches it after munmap.
        let rc = unsafe { execute_op(plan.spec, plan.payloads, plan.target, i) };
        if rc != 0 {
            let errno = std::io::Error::last_os_error().raw_os_error().unwrap_or(0);
            plan.journal.mark(i, FAILED_BASE + errno as u32);
            // SAFETY: leaving without running the parent's atexit handlers
            // or flushing its stdio buffers.
            unsafe { libc::_exit(EXIT_OP_FAILED) };
        }
        plan.journal.mark(i, DONE);
    }
    crash_before(plan.spec.ops.len());
    // SAFETY: as above.
    unsafe { libc::_exit(0) }
}

/// The stack of writers started by [`clone_writer`], mapped once and reused
/// (one writer runs at a time: the parent is suspended while it lives).
pub struct WriterStack {
    ptr: *mut libc::c_void,
}

impl WriterStack {
    /// run_child's frames are a few closures and libc calls.
    const LEN: usize = 256 * 1024;

    pub fn new() -> std::io::Result<WriterStack> {
        // SAFETY: a fresh anonymous mapping.
        let p = unsafe {
            libc::mmap(
                std::ptr::null_mut(),
                Self::LEN,
                libc::PROT_READ | libc::PROT_WRITE,
                libc::MAP_PRIVATE | libc::MAP_ANONYMOUS | libc::MAP_STACK,
                -1,
                0,
            )
        };
        if p == libc::MAP_FAILED {
            return Err(std::io::Error::last_os_error());
        }
        Ok(WriterStack { ptr: p })
    }
}

impl Drop for WriterStack {
    fn drop(&mut self) {
        // SAFETY: our mapping; no writer runs on it (clone_writer returns
        // after the writer's death).
        unsafe { libc::munmap(self.ptr, Self::LEN) };
    }
}

struct CloneArgs<'a, 'p> {
    plan: &'a ChildPlan<'p>,
    mask: u64,
}

/// Start the writer of `plan` with `clone(CLONE_VM | CLONE_VFORK)` on
/// `stack` instead of `fork`, and return its pid once it has died (the
/// caller suspends until then): no page tables are copied at the start, none
/// torn down at the end, and the caller's memory takes no copy-on-write
/// faults afterwards. That is most of a writer's fixed cost, and the real
/// power-cut backend runs thousands of them.
///
/// Sharing the memory is safe here because the writer only runs
/// [`run_child`], which stores through the plan's raw pointers (the file's
/// mapping and the journal, shared with the parent either way), makes libc
/// calls and never allocates, locks or unwinds; and it never returns: it
/// ends by a signal or `_exit`. Every signal is blocked around the clone,
/// and the child puts the handlers std installed (SIGSEGV, SIGBUS) back to
/// the default before unblocking, so no parent handler runs on the shared
/// memory. What differs from a forked writer: an `Op::Munmap` unmaps the
/// parent's mapping too (the caller must then not unmap it again), and
/// stores into a `MAP_PRIVATE` mapping land in the parent's private copy
/// (never in the file, as with fork).
///
/// # Safety
/// The caller is single-threaded, `plan` and its pointers stay valid until
/// this returns, and nothing else runs on `stack` meanwhile.
pub unsafe fn clone_writer(plan: &ChildPlan<'_>, stack: &mut WriterStack) -> std::io::Result<i32> {
    let mut mask: u64 = 0;
    set_sigmask(!0, &mut mask);
    let args = CloneArgs { plan, mask };
    let top = stack.ptr.cast::<u8>().add(WriterStack::LEN).cast();
    let pid = libc::clone(
        writer_main,
        top,
        libc::CLONE_VM | libc::CLONE_VFORK | libc::SIGCHLD,
        (&args as *const CloneArgs).cast_mut().cast(),
    );
    let err = std::io::Error::last_os_error();
    set_sigmask(mask, std::ptr::null_mut());
    if pid < 0 {
        return Err(err);
    }
    Ok(pid)
}

extern "C" fn writer_main(arg: *mut libc::c_void) -> libc::c_int {
    // SAFETY: `arg` is the suspended parent's CloneArgs; see clone_writer.
    unsafe {
        let a = &*(arg as *const CloneArgs);
        libc::signal(libc::SIGSEGV, libc::SIG_DFL);
        libc::signal(libc::SIGBUS, libc::SIG_DFL);
        set_sigmask(a.mask, std::ptr::null_mut());
        run_child(a.plan)
    }
}

/// Set the thread's signal mask to `set` (the kernel's 64-bit sigset),
/// storing the old one in `old` unless null. The raw syscall, not
/// `pthread_sigmask`: the cloned writer shares no TLS it may rely on.
///
/// # Safety
/// `old` is null or valid for a write.
unsafe fn set_sigmask(set: u64, old: *mut u64) {
    libc::syscall(libc::SYS_rt_sigprocmask, libc::SIG_SETMASK, &set as *const u64, old, 8usize);
}

/// Execute op `i` of `spec` on `target`; the syscall's return code (0 for
/// stores and acks). Shared by the writer child and the benchmark's bare
/// in-process loop, so both do exactly the same work.
///
/// # Safety
/// `spec` must be validated against `target` (stores and msyncs inside the
/// mapping) and nothing may touch the mapping after an `Op::Munmap`.
pub unsafe fn execute_op(spec: &WriterSpec, payloads: &Payloads, target: ChildTarget, i: usize) -> libc::c_int {
    let map = target.map;
    match spec.ops[i] {
        Op::Store { offset, len, .. } => {
            let src = payloads.store(spec, i);
            std::ptr::copy_nonoverlapping(src.as_ptr(), map.add(offset as usize), len as usize);
            0
        }
        Op::Msync { range, flags } => {
            let f = match flags {
                MsyncFlags::MsSync => libc::MS_SYNC,
                MsyncFlags::MsAsync => libc::MS_ASYNC,
            };
            libc::msync(map.add(range.start as usize).cast(), range.len() as usize, f)
        }
        Op::Fsync => libc::fsync(target.fd),
        Op::Fdatasync => libc::fdatasync(target.fd),
        Op::Ack { .. } => 0,
        Op::Truncate { len } => libc::ftruncate(target.fd, len as libc::off_t),
        Op::Munmap => libc::munmap(map.cast(), target.size as usize),
    }
}

/// Wait for child `pid` (retrying on EINTR) and say how it ended.
pub fn wait_child(pid: i32) -> std::io::Result<ChildExit> {
    let mut status = 0;
    loop {
        // SAFETY: waiting for our own child.
        let rc = unsafe { libc::waitpid(pid, &mut status, 0) };
        if rc == pid {
            break;
        }
        let e = std::io::Error::last_os_error();
        if e.kind() != std::io::ErrorKind::Interrupted {
            return Err(e);
        }
    }
    Ok(if libc::WIFSIGNALED(status) {
        ChildExit::Signaled(libc::WTERMSIG(status))
    } else {
        ChildExit::Exited(libc::WEXITSTATUS(status))
    })
}
