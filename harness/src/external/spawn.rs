//! Starting a user's program with parent-death protection at the cost of
//! `posix_spawn`.
//!
//! `std::process::Command` with a `pre_exec` hook (needed for
//! `PR_SET_PDEATHSIG`) falls back from `posix_spawn` (a `clone(CLONE_VM |
//! CLONE_VFORK)`: no page tables copied) to a plain `fork`, which copies the
//! page tables of crashlab, threads and all: about a third of the trial rate
//! of a trivial writer. This module does what glibc's `posix_spawn` does,
//! plus the `prctl`: a `clone(CLONE_VM | CLONE_VFORK | CLONE_PIDFD)` onto a
//! stack of its own, whose child shares crashlab's memory until `execve`,
//! while the thread that cloned it is suspended.
//!
//! Sharing the memory is what makes the child's rules strict. Everything it
//! reads (paths, argv, envp, fds, signal sets) is prepared before the clone
//! and not touched by the suspended parent thread until the child has
//! exec'd or exited; other threads never see it. The child makes only
//! async-signal-safe system calls through libc (no allocation, no locks, no
//! unwinding, no Rust runtime), and reports a failure by storing the step
//! and errno in the parent's memory (no pipe needed: the parent resumes only
//! after the child's exec or exit). Signal handlers are code and data in the
//! shared memory: the parent thread blocks every signal around the clone,
//! and the child resets every caught signal to its default before it
//! unblocks, as glibc's `posix_spawn` does.

use std::ffi::{CString, OsStr};
use std::io;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::os::unix::ffi::OsStrExt;
use std::path::Path;
use std::sync::atomic::{AtomicI32, AtomicU32, Ordering};

use libc::{c_char, c_int, c_void, pid_t};

use super::command::CommandLine;

/// The child's stack. Its frames are a handful of libc calls; glibc's
/// posix_spawn uses about 32 KiB plus the size of argv and envp for its own
/// copy of them, which we do not need.
const STACK: usize = 64 * 1024;

/// What failed between the clone and the exec, for messages.
const STEPS: [&str; 7] = [
    "",
    "setpgid(0, 0) (a process group of its own)",
    "prctl(PR_SET_PDEATHSIG)",
    "crashlab's thread was gone before prctl took effect",
    "dup2 of stdin/stdout/stderr",
    "chdir to the trial directory",
    "execve",
];
const STEP_SETPGID: u32 = 1;
const STEP_PDEATHSIG: u32 = 2;
const STEP_ORPHANED: u32 = 3;
const STEP_DUP2: u32 = 4;
const STEP_CHDIR: u32 = 5;
const STEP_EXECVE: u32 = 6;

/// Everything the child reads, built before the clone.
struct ChildArgs {
    program: CString,
    argv: Vec<*const c_char>,
    envp: Vec<*const c_char>,
    cwd: CString,
    /// Sources of fds 0, 1, 2; each >= 3 (see [`above_stdio`]).
    stdio: [c_int; 3],
    /// Process id of crashlab, for the check after `PR_SET_PDEATHSIG`.
    parent: pid_t,
    pdeathsig: bool,
    default_action: libc::sigaction,
    /// Written by the child when a step fails (CLONE_VM: this memory is the
    /// parent's); 0 = no failure.
    failed_step: AtomicU32,
    failed_errno: AtomicI32,
}

/// A started child: its pid (also its process group) and a pidfd.
pub(crate) struct Spawned {
    pub pid: pid_t,
    pub pidfd: OwnedFd,
}

/// A descriptor usable as a dup2 source for 0, 1 or 2 whatever the order:
/// a crashlab started with a closed stdio could get one below 3.
pub(crate) fn above_stdio(fd: OwnedFd) -> io::Result<OwnedFd> {
    if fd.as_raw_fd() >= 3 {
        return Ok(fd);
    }
    // SAFETY: F_DUPFD_CLOEXEC on a descriptor we own returns a new one we own.
    let raw = unsafe { libc::fcntl(fd.as_raw_fd(), libc::F_DUPFD_CLOEXEC, 3) };
    if raw < 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: a fresh descriptor.
    Ok(unsafe { OwnedFd::from_raw_fd(raw) })
}

fn cstring(what: &str, bytes: &[u8]) -> io::Result<CString> {
    CString::new(bytes).map_err(|_| io::Error::new(io::ErrorKind::InvalidInput, format!("{what} contains a NUL byte")))
}

/// The stack, unmapped on every path.
struct Stack(*mut c_void);

impl Stack {
    fn new() -> io::Result<Stack> {
        // SAFETY: a fresh private anonymous mapping; no existing memory is affected.
        let p = unsafe {
            libc::mmap(
                std::ptr::null_mut(),
                STACK,
                libc::PROT_READ | libc::PROT_WRITE,
                libc::MAP_PRIVATE | libc::MAP_ANONYMOUS | libc::MAP_STACK,
                -1,
                0,
            )
        };
        if p == libc::MAP_FAILED {
            return Err(io::Error::last_os_error());
        }
        Ok(Stack(p))
    }

    fn top(&self) -> *mut c_void {
        // SAFETY: one past the end of the mapping; stacks grow down. 64 KiB
        // from a page-aligned start keeps the 16-byte alignment.
        unsafe { self.0.cast::<u8>().add(STACK).cast() }
    }
}

impl Drop for Stack {
    fn drop(&mut self) {
        // SAFETY: our mapping; the child has exec'd or exited (CLONE_VFORK).
        unsafe { libc::munmap(self.0, STACK) };
    }
}

/// Start `line` in `cwd` with `env` added to crashlab's environment (other
/// `CRASHLAB_*` variables removed, as [`CommandLine::command`] does), stdio
/// from `stdio` (each >= 3), in a process group of its own, with
/// `PR_SET_PDEATHSIG` (SIGKILL) when `pdeathsig`.
pub(crate) fn spawn(
    line: &CommandLine,
    cwd: &Path,
    env: &[(&str, &OsStr)],
    stdio: [RawFd; 3],
    pdeathsig: bool,
) -> io::Result<Spawned> {
    assert!(stdio.iter().all(|&fd| fd >= 3), "stdio sources must be >= 3");
    let program = cstring("the program path", line.program_path().as_os_str().as_bytes())?;
    let argv_s: Vec<CString> =
        line.argv().iter().map(|a| cstring("an argument", a.as_bytes())).collect::<io::Result<_>>()?;
    let mut envp_s = Vec::new();
    for (k, v) in std::env::vars_os() {
        if k.as_bytes().starts_with(b"CRASHLAB_") || env.iter().any(|(name, _)| name.as_bytes() == k.as_bytes()) {
            continue;
        }
        envp_s.push(cstring("an environment variable", &[k.as_bytes(), b"=", v.as_bytes()].concat())?);
    }
    for (k, v) in env {
        envp_s.push(cstring("an environment variable", &[k.as_bytes(), b"=", v.as_bytes()].concat())?);
    }
    let nul_terminated =
        |v: &[CString]| v.iter().map(|c| c.as_ptr()).chain(std::iter::once(std::ptr::null())).collect();
    // SAFETY: a zeroed sigaction is a valid input; SIG_DFL with an empty
    // mask and no flags is the default disposition.
    let default_action = unsafe {
        let mut act: libc::sigaction = std::mem::zeroed();
        act.sa_sigaction = libc::SIG_DFL;
        libc::sigemptyset(&mut act.sa_mask);
        act
    };
    let args = ChildArgs {
        program,
        argv: nul_terminated(&argv_s),
        envp: nul_terminated(&envp_s),
        cwd: cstring("the working directory", cwd.as_os_str().as_bytes())?,
        stdio,
        // SAFETY: getpid has no preconditions.
        parent: unsafe { libc::getpid() },
        pdeathsig,
        default_action,
        failed_step: AtomicU32::new(0),
        failed_errno: AtomicI32::new(0),
    };
    let stack = Stack::new()?;
    let mut pidfd: c_int = -1;
    let mut old_mask: u64 = 0;
    // SAFETY: see the module docs. Every signal is blocked in this thread
    // around the clone, so no handler runs in the child on our memory before
    // it has reset them; `args`, `argv_s`, `envp_s` and the stack outlive
    // the child's use of them (the clone returns after its exec or exit).
    let pid = unsafe {
        set_mask(!0, Some(&mut old_mask));
        let pid = libc::clone(
            child_main,
            stack.top(),
            libc::CLONE_VM | libc::CLONE_VFORK | libc::CLONE_PIDFD | libc::SIGCHLD,
            (&args as *const ChildArgs).cast_mut().cast(),
            &mut pidfd as *mut c_int,
        );
        let clone_error = io::Error::last_os_error();
        set_mask(old_mask, None);
        if pid < 0 {
            return Err(clone_error);
        }
        pid
    };
    // SAFETY: CLONE_PIDFD stored a fresh descriptor of our child.
    let pidfd = unsafe { OwnedFd::from_raw_fd(pidfd) };
    drop((argv_s, envp_s, stack));
    let step = args.failed_step.load(Ordering::SeqCst);
    if step != 0 {
        // The child exited before its exec: reap it.
        let mut status = 0;
        // SAFETY: our own child, exited (the vfork resumed us).
        while unsafe { libc::waitpid(pid, &mut status, 0) } < 0
            && io::Error::last_os_error().kind() == io::ErrorKind::Interrupted
        {}
        let errno = io::Error::from_raw_os_error(args.failed_errno.load(Ordering::SeqCst));
        if step == STEP_EXECVE {
            return Err(errno);
        }
        return Err(io::Error::new(errno.kind(), format!("{} failed: {errno}", STEPS[step as usize])));
    }
    Ok(Spawned { pid, pidfd })
}

/// The calling thread's signal mask, by the raw syscall: glibc's wrappers
/// leave its two internal signals (thread cancellation, set*id broadcast)
/// unblocked, and their handlers must not run in the child either. The
/// kernel's mask is one 64-bit word on x86_64; SIGKILL and SIGSTOP stay
/// deliverable whatever it says.
unsafe fn set_mask(mask: u64, old: Option<&mut u64>) {
    let old = old.map_or(std::ptr::null_mut(), |o| o as *mut u64);
    libc::syscall(libc::SYS_rt_sigprocmask, libc::SIG_SETMASK, &mask as *const u64, old, 8usize);
}

// ---- Everything below runs in the cloned child, on crashlab's memory. ----

/// Record the failed step and exit (never returns to the parent's frames).
unsafe fn fail(a: &ChildArgs, step: u32) -> ! {
    a.failed_errno.store(*libc::__errno_location(), Ordering::SeqCst);
    a.failed_step.store(step, Ordering::SeqCst);
    libc::_exit(127)
}

extern "C" fn child_main(arg: *mut c_void) -> c_int {
    // SAFETY: `arg` is the parent's `ChildArgs`, alive and unchanged until
    // we exec or exit; only raw libc calls follow.
    unsafe {
        let a = &*(arg as *const ChildArgs);
        // Handlers are the parent's code and data: back to the default for
        // every caught signal (ignored ones stay ignored, as across exec),
        // and SIGPIPE to the default, as std does (Rust ignores it).
        let mut sig = 1;
        while sig <= 64 {
            let mut old: libc::sigaction = std::mem::zeroed();
            if sig != libc::SIGKILL
                && sig != libc::SIGSTOP
                && libc::sigaction(sig, std::ptr::null(), &mut old) == 0
                && (old.sa_sigaction != libc::SIG_IGN || sig == libc::SIGPIPE)
                && old.sa_sigaction != libc::SIG_DFL
            {
                libc::sigaction(sig, &a.default_action, std::ptr::null_mut());
            }
            sig += 1;
        }
        // Its own process group: a signal to the group reaches the
        // program's children too, and a terminal's Ctrl-C does not reach it.
        if libc::setpgid(0, 0) != 0 {
            fail(a, STEP_SETPGID);
        }
        if a.pdeathsig {
            // Die with the thread that started us, never outlive it.
            if libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL as libc::c_ulong, 0, 0, 0) != 0 {
                fail(a, STEP_PDEATHSIG);
            }
            // The parent may have died before prctl took effect.
            if libc::getppid() != a.parent {
                *libc::__errno_location() = libc::ESRCH;
                fail(a, STEP_ORPHANED);
            }
        }
        let mut target = 0;
        while target < 3 {
            if libc::dup2(a.stdio[target as usize], target) != target {
                fail(a, STEP_DUP2);
            }
            target += 1;
        }
        if libc::chdir(a.cwd.as_ptr()) != 0 {
            fail(a, STEP_CHDIR);
        }
        set_mask(0, None);
        libc::execve(a.program.as_ptr(), a.argv.as_ptr(), a.envp.as_ptr());
        fail(a, STEP_EXECVE)
    }
}
