//! Starting the writer: everything the forked processes need is built here
//! before the fork, and after it they make only raw, async-signal-safe
//! syscalls (the caller is multithreaded: another thread may have held the
//! allocator's lock at the instant of the fork, so the child must not
//! allocate, lock, format or unwind).
//!
//! The calling thread forks the **launcher**; the launcher `clone`s the
//! **writer**, reports its pid on a pipe and spends its life reaping. The
//! writer waits on the "go" pipe until the tracer has seized it, then sets up
//! stdio, enters the namespaces it was given (`setns`: an `enospc` writer
//! runs in the capacity helper's), sets its cwd, signals,
//! `PR_SET_NO_NEW_PRIVS` and the seccomp filter, and execs. Failures before exec are reported as (step, errno) on a
//! close-on-exec pipe: EOF there means the exec happened.

use std::ffi::{CString, OsStr, OsString};
use std::io;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::os::unix::ffi::{OsStrExt, OsStringExt};
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

use libc::{c_char, c_int, c_long, c_ulong, pid_t};

use super::filter;
use super::sys::{
    SockFilter, SockFprog, PR_SET_CHILD_SUBREAPER, PR_SET_NO_NEW_PRIVS, PR_SET_PDEATHSIG, SECCOMP_SET_MODE_FILTER, WALL,
};
use super::{OracleError, TracedLaunch};

/// Steps that can fail between fork and exec, reported by number.
const STEPS: [&str; 11] = [
    "unknown step",
    "prctl(PR_SET_PDEATHSIG) in the launcher",
    "prctl(PR_SET_CHILD_SUBREAPER) in the launcher",
    "clone of the writer by the launcher",
    "setpgid(0, 0) (new process group)",
    "dup2 of stdin/stdout/stderr",
    "chdir to the working directory",
    "prctl(PR_SET_NO_NEW_PRIVS)",
    "seccomp(SECCOMP_SET_MODE_FILTER) (is seccomp available?)",
    "execve",
    "setns into the namespaces given (the capacity helper's user and mount namespaces)",
];
const STEP_PDEATHSIG: u32 = 1;
const STEP_SUBREAPER: u32 = 2;
const STEP_CLONE: u32 = 3;
const STEP_SETPGID: u32 = 4;
const STEP_DUP2: u32 = 5;
const STEP_CHDIR: u32 = 6;
const STEP_NO_NEW_PRIVS: u32 = 7;
const STEP_SECCOMP: u32 = 8;
const STEP_EXECVE: u32 = 9;
const STEP_SETNS: u32 = 10;

/// Exit codes of the forked processes when they give up before exec.
const EXIT_SETUP_FAILED: c_int = 127;
const EXIT_NO_GO: c_int = 126;

/// A launch with every string, pointer array, signal set and the filter
/// ready for the child.
pub struct Prepared {
    pub display: String,
    program: CString,
    _argv: Vec<CString>,
    argv: Vec<*const c_char>,
    _envp: Vec<CString>,
    envp: Vec<*const c_char>,
    cwd: Option<CString>,
    /// Source fds for 0, 1, 2 (-1: inherit).
    stdio: [c_int; 3],
    new_pgroup: bool,
    /// Namespace descriptors to `setns` into, in order.
    namespaces: Vec<c_int>,
    filter: Vec<SockFilter>,
    empty_mask: libc::sigset_t,
    full_mask: libc::sigset_t,
    default_action: libc::sigaction,
}

fn cstring(what: &str, s: &OsStr) -> Result<CString, OracleError> {
    CString::new(s.as_bytes()).map_err(|_| OracleError::Invalid(format!("{what} contains a NUL byte: {s:?}")))
}

fn find_in_path(program: &Path, path_var: Option<OsString>) -> Result<PathBuf, OracleError> {
    if program.as_os_str().as_bytes().contains(&b'/') {
        return Ok(program.to_path_buf());
    }
    let dirs = path_var.unwrap_or_else(|| OsString::from("/usr/local/bin:/usr/bin:/bin"));
    for dir in std::env::split_paths(&dirs) {
        let candidate = dir.join(program);
        if let Ok(meta) = std::fs::metadata(&candidate) {
            if meta.is_file() && meta.permissions().mode() & 0o111 != 0 {
                return Ok(candidate);
            }
        }
    }
    Err(OracleError::Invalid(format!("program {} not found in PATH ({})", program.display(), dirs.to_string_lossy())))
}

impl Prepared {
    pub fn new(launch: &TracedLaunch<'_>) -> Result<Prepared, OracleError> {
        let env: Vec<(OsString, OsString)> = match &launch.env {
            Some(env) => env.clone(),
            None => std::env::vars_os().collect(),
        };
        let path_var = env.iter().find(|(k, _)| k == "PATH").map(|(_, v)| v.clone());
        let program_path = find_in_path(&launch.program, path_var)?;
        let display = program_path.display().to_string();
        let program = cstring("the program path", program_path.as_os_str())?;
        let mut argv_s = vec![cstring("argv[0]", launch.program.as_os_str())?];
        for a in &launch.args {
            argv_s.push(cstring("an argument", a)?);
        }
        let mut envp_s = Vec::with_capacity(env.len());
        for (k, v) in &env {
            if k.as_bytes().contains(&b'=') {
                return Err(OracleError::Invalid(format!("environment variable name {k:?} contains '='")));
            }
            let mut kv = k.clone().into_vec();
            kv.push(b'=');
            kv.extend_from_slice(v.as_bytes());
            envp_s.push(cstring("an environment variable", OsStr::from_bytes(&kv))?);
        }
        let argv = argv_s.iter().map(|c| c.as_ptr()).chain(std::iter::once(std::ptr::null())).collect();
        let envp = envp_s.iter().map(|c| c.as_ptr()).chain(std::iter::once(std::ptr::null())).collect();
        let cwd = launch.cwd.as_ref().map(|d| cstring("the working directory", d.as_os_str())).transpose()?;
        let mut stdio = [-1; 3];
        for (i, fd) in [launch.stdin, launch.stdout, launch.stderr].into_iter().enumerate() {
            if let Some(fd) = fd {
                let raw = fd.as_raw_fd();
                // dup2 runs in order 0, 1, 2: a source among 0..=2 could be
                // overwritten before it is used.
                if raw < 3 && raw != i as c_int {
                    return Err(OracleError::Invalid(format!(
                        "stdio fd {raw} for target {i}: sources must be >= 3 or equal to their target"
                    )));
                }
                stdio[i] = raw;
            }
        }
        // SAFETY: zeroed sigset_t/sigaction are valid inputs to these
        // initializers; SIG_DFL with an empty mask and no flags is the
        // default disposition.
        let (empty_mask, full_mask, default_action) = unsafe {
            let mut empty: libc::sigset_t = std::mem::zeroed();
            let mut full: libc::sigset_t = std::mem::zeroed();
            libc::sigemptyset(&mut empty);
            libc::sigfillset(&mut full);
            let mut act: libc::sigaction = std::mem::zeroed();
            act.sa_sigaction = libc::SIG_DFL;
            libc::sigemptyset(&mut act.sa_mask);
            (empty, full, act)
        };
        Ok(Prepared {
            display,
            program,
            _argv: argv_s,
            argv,
            _envp: envp_s,
            envp,
            cwd,
            stdio,
            new_pgroup: launch.new_process_group,
            namespaces: launch.namespaces.iter().map(|fd| fd.as_raw_fd()).collect(),
            filter: filter::program(),
            empty_mask,
            full_mask,
            default_action,
        })
    }
}

/// The parent's ends of the launch pipes and the launcher's pid.
pub struct Launched {
    pub launcher: pid_t,
    /// Writing one byte releases the writer; closing it makes it exit.
    pub go_w: OwnedFd,
    pub pid_r: OwnedFd,
    pub err_r: OwnedFd,
}

fn pipe() -> io::Result<(OwnedFd, OwnedFd)> {
    let mut fds = [0 as c_int; 2];
    // SAFETY: `fds` is a valid two-int array; on success both fds are ours.
    if unsafe { libc::pipe2(fds.as_mut_ptr(), libc::O_CLOEXEC) } == -1 {
        return Err(io::Error::last_os_error());
    }
    Ok(unsafe { (OwnedFd::from_raw_fd(fds[0]), OwnedFd::from_raw_fd(fds[1])) })
}

struct ChildArgs<'a> {
    p: &'a Prepared,
    fprog: &'a SockFprog,
    parent: pid_t,
    go_r: c_int,
    pid_w: c_int,
    err_w: c_int,
    /// The parent's ends, inherited by the fork: the writer must not hold
    /// `go_w`, or closing it would not release it with EOF.
    parent_ends: [c_int; 3],
}

/// Fork the launcher (which forks the writer). The writer is blocked until
/// `go_w` gets a byte.
pub fn fork_launcher(p: &Prepared) -> Result<Launched, OracleError> {
    let pipes = || -> io::Result<_> { Ok((pipe()?, pipe()?, pipe()?)) };
    let ((go_r, go_w), (pid_r, pid_w), (err_r, err_w)) =
        pipes().map_err(|e| OracleError::io("cannot create the launch pipes (pipe2)", e))?;
    let fprog = SockFprog { len: p.filter.len() as u16, filter: p.filter.as_ptr() };
    let args = ChildArgs {
        p,
        fprog: &fprog,
        // SAFETY: getpid has no preconditions.
        parent: unsafe { libc::getpid() },
        go_r: go_r.as_raw_fd(),
        pid_w: pid_w.as_raw_fd(),
        err_w: err_w.as_raw_fd(),
        parent_ends: [go_w.as_raw_fd(), pid_r.as_raw_fd(), err_r.as_raw_fd()],
    };
    // SAFETY: the child runs only `launcher_main`, which makes raw syscalls
    // on data prepared above and never returns.
    let pid = unsafe { libc::fork() };
    if pid < 0 {
        return Err(OracleError::io("cannot fork the launcher", io::Error::last_os_error()));
    }
    if pid == 0 {
        // SAFETY: see above; we are the freshly forked child.
        unsafe { launcher_main(&args) }
    }
    // The children's ends: closing ours makes EOF mean "the child is gone".
    drop((go_r, pid_w, err_w));
    Ok(Launched { launcher: pid, go_w, pid_r, err_r })
}

/// The writer's pid from the launcher, or `None` if the launcher died first.
pub fn read_writer_pid(pid_r: &OwnedFd) -> io::Result<Option<pid_t>> {
    let mut buf = [0u8; 4];
    let mut got = 0;
    while got < 4 {
        // SAFETY: reading into the unfilled tail of `buf`.
        let n = unsafe { libc::read(pid_r.as_raw_fd(), buf[got..].as_mut_ptr().cast(), 4 - got) };
        match n {
            0 => return Ok(None),
            n if n > 0 => got += n as usize,
            _ => {
                let e = io::Error::last_os_error();
                if e.kind() != io::ErrorKind::Interrupted {
                    return Err(e);
                }
            }
        }
    }
    Ok(Some(pid_t::from_ne_bytes(buf)))
}

/// What failed before exec, if anything was reported. Called once no
/// process can still write to the pipe; non-blocking anyway, in case a
/// concurrent fork elsewhere in the process still holds a copy of its end.
pub fn read_launch_error(err_r: &OwnedFd) -> Option<(&'static str, io::Error)> {
    let mut buf = [0u8; 8];
    // SAFETY: F_SETFL on our own fd; read into a local buffer.
    let n = unsafe {
        libc::fcntl(err_r.as_raw_fd(), libc::F_SETFL, libc::O_NONBLOCK);
        libc::read(err_r.as_raw_fd(), buf.as_mut_ptr().cast(), 8)
    };
    if n != 8 {
        return None;
    }
    let step = u32::from_ne_bytes([buf[0], buf[1], buf[2], buf[3]]) as usize;
    let errno = i32::from_ne_bytes([buf[4], buf[5], buf[6], buf[7]]);
    Some((STEPS.get(step).copied().unwrap_or(STEPS[0]), io::Error::from_raw_os_error(errno)))
}

// ---- Everything below runs in forked children: raw syscalls only. ----

unsafe fn errno() -> c_int {
    *libc::__errno_location()
}

unsafe fn write_all(fd: c_int, mut ptr: *const u8, mut len: usize) {
    while len > 0 {
        let n = libc::write(fd, ptr.cast(), len);
        if n > 0 {
            ptr = ptr.add(n as usize);
            len -= n as usize;
        } else if n < 0 && errno() == libc::EINTR {
            continue;
        } else {
            return;
        }
    }
}

/// Report (step, errno) to the tracer and exit.
unsafe fn fail(a: &ChildArgs<'_>, step: u32) -> ! {
    let e = errno();
    let mut msg = [0u8; 8];
    let s = step.to_ne_bytes();
    let n = e.to_ne_bytes();
    let mut i = 0;
    while i < 4 {
        msg[i] = s[i];
        msg[i + 4] = n[i];
        i += 1;
    }
    write_all(a.err_w, msg.as_ptr(), 8);
    libc::_exit(EXIT_SETUP_FAILED)
}

unsafe fn launcher_main(a: &ChildArgs<'_>) -> ! {
    // Signals meant for the caller's process group (a terminal's Ctrl-C)
    // must not kill the reaper while its tree lives; SIGKILL still does
    // (that is how the parent-death signal below works).
    libc::sigprocmask(libc::SIG_SETMASK, &a.p.full_mask, std::ptr::null_mut());
    // Die with the tracer thread. The getppid check closes the race with a
    // parent that died before the prctl.
    if libc::prctl(PR_SET_PDEATHSIG, libc::SIGKILL as c_ulong, 0 as c_ulong, 0 as c_ulong, 0 as c_ulong) == -1 {
        fail(a, STEP_PDEATHSIG);
    }
    if libc::getppid() != a.parent {
        libc::_exit(EXIT_NO_GO);
    }
    // Orphans of the writer's tree come to us instead of PID 1, which reaps
    // only every few seconds here.
    if libc::prctl(PR_SET_CHILD_SUBREAPER, 1 as c_ulong, 0 as c_ulong, 0 as c_ulong, 0 as c_ulong) == -1 {
        fail(a, STEP_SUBREAPER);
    }
    let me = libc::getpid();
    // A raw clone, not glibc's fork: this process is a fork of a
    // multithreaded one, and glibc's fork would run atfork handlers.
    let w = libc::syscall(libc::SYS_clone, libc::SIGCHLD as c_long, 0 as c_long, 0 as c_long, 0 as c_long, 0 as c_long);
    if w == 0 {
        writer_main(a, me);
    }
    if w < 0 {
        fail(a, STEP_CLONE);
    }
    let w = w as pid_t;
    if a.p.new_pgroup {
        // Also done by the writer itself: whichever runs first wins the race
        // against a signal sent to the group.
        libc::setpgid(w, w);
    }
    let bytes = w.to_ne_bytes();
    write_all(a.pid_w, bytes.as_ptr(), 4);
    // Hold no fd of the caller (its pipes would not see EOF while we live).
    libc::syscall(libc::SYS_close_range, 0 as c_long, !0u32 as c_long, 0 as c_long);
    // Reap every descendant until none is left. A traced zombie becomes
    // reapable only after the tracer collected it, so when we exit every
    // traced task's end has been seen.
    loop {
        if libc::wait4(-1, std::ptr::null_mut(), WALL, std::ptr::null_mut()) == -1 && errno() != libc::EINTR {
            break;
        }
    }
    libc::_exit(0)
}

unsafe fn writer_main(a: &ChildArgs<'_>, launcher: pid_t) -> ! {
    if libc::prctl(PR_SET_PDEATHSIG, libc::SIGKILL as c_ulong, 0 as c_ulong, 0 as c_ulong, 0 as c_ulong) == -1 {
        fail(a, STEP_PDEATHSIG);
    }
    if libc::getppid() != launcher {
        libc::_exit(EXIT_NO_GO);
    }
    let mut i = 0;
    while i < 3 {
        libc::close(a.parent_ends[i]);
        i += 1;
    }
    libc::close(a.pid_w);
    if a.p.new_pgroup && libc::setpgid(0, 0) == -1 {
        fail(a, STEP_SETPGID);
    }
    // Wait until the tracer has seized us: the filter must not exist before
    // a tracer does (SECCOMP_RET_TRACE without a tracer fails with ENOSYS).
    let mut b = 0u8;
    loop {
        let n = libc::read(a.go_r, (&mut b as *mut u8).cast(), 1);
        if n == 1 {
            break;
        }
        if n < 0 && errno() == libc::EINTR {
            continue;
        }
        libc::_exit(EXIT_NO_GO);
    }
    let mut target = 0;
    while target < 3 {
        let src = a.p.stdio[target as usize];
        if src == target {
            // dup2 onto itself keeps FD_CLOEXEC: clear it explicitly.
            if libc::fcntl(src, libc::F_SETFD, 0) == -1 {
                fail(a, STEP_DUP2);
            }
        } else if src >= 0 && libc::dup2(src, target) == -1 {
            fail(a, STEP_DUP2);
        }
        target += 1;
    }
    // Before the chdir: entering a mount namespace moves the cwd to its
    // root, and the working directory is to be found in the namespace's
    // mounts. The tracer seized us before: it traces what runs in them.
    let mut i = 0;
    while i < a.p.namespaces.len() {
        if libc::setns(a.p.namespaces[i], 0) == -1 {
            fail(a, STEP_SETNS);
        }
        i += 1;
    }
    if let Some(cwd) = &a.p.cwd {
        if libc::chdir(cwd.as_ptr()) == -1 {
            fail(a, STEP_CHDIR);
        }
    }
    // Like std's Command: Rust ignores SIGPIPE, and ignored dispositions
    // survive exec; the launcher blocked every signal, and masks survive too.
    libc::sigaction(libc::SIGPIPE, &a.p.default_action, std::ptr::null_mut());
    libc::sigprocmask(libc::SIG_SETMASK, &a.p.empty_mask, std::ptr::null_mut());
    // Required for an unprivileged seccomp filter. It also stops set-uid
    // programs from gaining privileges, which a traced writer cannot anyway.
    if libc::prctl(PR_SET_NO_NEW_PRIVS, 1 as c_ulong, 0 as c_ulong, 0 as c_ulong, 0 as c_ulong) == -1 {
        fail(a, STEP_NO_NEW_PRIVS);
    }
    if libc::syscall(libc::SYS_seccomp, SECCOMP_SET_MODE_FILTER as c_long, 0 as c_long, a.fprog as *const SockFprog)
        == -1
    {
        fail(a, STEP_SECCOMP);
    }
    libc::execve(a.p.program.as_ptr(), a.p.argv.as_ptr(), a.p.envp.as_ptr());
    fail(a, STEP_EXECVE)
}
