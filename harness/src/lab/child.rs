//! What a forked writer child does: execute the spec op by op on the
//! inherited mapping, marking the journal, and crash itself where the plan
//! says. Runs only in a child forked from the single-threaded worker.
//!
//! The child never returns: it ends in `_exit`, a signal, or SIGALRM (the
//! watchdog against a hung child).

use std::os::unix::io::RawFd;

use crate::crash::{CrashKind, CrashPoint};
use crate::journal::{DONE, FAILED_BASE, STARTED};
use crate::lab::journal_region::JournalRegion;
use crate::lab::test_file::TestFile;
use crate::payload::Payloads;
use crate::process_model::{ChildExit, EXIT_OP_FAILED};
use crate::spec::{MsyncFlags, Op, WriterSpec};

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
    let map = plan.target.map;
    let fd = plan.target.fd;
    for (i, op) in plan.spec.ops.iter().enumerate() {
        crash_before(i);
        plan.journal.mark(i, STARTED);
        // SAFETY: the spec was validated: stores and msyncs stay inside the
        // mapping, nothing touches it after munmap.
        let rc = unsafe {
            match *op {
                Op::Store { offset, len, .. } => {
                    let src = plan.payloads.store(plan.spec, i);
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
                Op::Fsync => libc::fsync(fd),
                Op::Fdatasync => libc::fdatasync(fd),
                Op::Ack { .. } => 0,
                Op::Truncate { len } => libc::ftruncate(fd, len as libc::off_t),
                Op::Munmap => libc::munmap(map.cast(), plan.target.size as usize),
            }
        };
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
