//! Raw kernel interfaces the oracle needs: ptrace requests, wait, seccomp and
//! BPF constants, `PTRACE_GET_SYSCALL_INFO`, pidfds and `kcmp`, reads of a
//! tracee's memory (`process_vm_readv`), and the `*at` calls and
//! `FS_IOC_GETFLAGS` the namespace bookkeeping makes on its held
//! descriptors.
//!
//! The constants are spelled out here from the kernel's uapi headers
//! (`linux/ptrace.h`, `linux/seccomp.h`, `linux/audit.h`, `linux/filter.h`,
//! `linux/kcmp.h`) rather than taken from `libc`, whose coverage and types
//! for them differ between libc flavours and versions. The values are ABI and
//! never change.

use std::io;

use libc::{c_long, pid_t};

// linux/ptrace.h: requests.
pub const PTRACE_CONT: c_long = 7;
pub const PTRACE_GETREGS: c_long = 12;
pub const PTRACE_SETREGS: c_long = 13;
/// The kernel's "restart this call once the signal is handled, whatever
/// SA_RESTART says" (include/linux/errno.h); never seen by user space.
pub const ERESTARTNOINTR_RVAL: i64 = -513;
pub const PTRACE_SYSCALL: c_long = 24;
pub const PTRACE_GETEVENTMSG: c_long = 0x4201;
pub const PTRACE_GETSIGINFO: c_long = 0x4202;
pub const PTRACE_SEIZE: c_long = 0x4206;
pub const PTRACE_INTERRUPT: c_long = 0x4207;
pub const PTRACE_GET_SYSCALL_INFO: c_long = 0x420e;

// linux/ptrace.h: options.
pub const PTRACE_O_TRACESYSGOOD: u64 = 0x1;
pub const PTRACE_O_TRACEFORK: u64 = 0x2;
pub const PTRACE_O_TRACEVFORK: u64 = 0x4;
pub const PTRACE_O_TRACECLONE: u64 = 0x8;
pub const PTRACE_O_TRACEEXEC: u64 = 0x10;
pub const PTRACE_O_TRACEVFORKDONE: u64 = 0x20;
pub const PTRACE_O_TRACESECCOMP: u64 = 0x80;
pub const PTRACE_O_EXITKILL: u64 = 0x10_0000;

// linux/ptrace.h: events, reported in bits 16.. of a wait status.
pub const PTRACE_EVENT_FORK: i32 = 1;
pub const PTRACE_EVENT_VFORK: i32 = 2;
pub const PTRACE_EVENT_CLONE: i32 = 3;
pub const PTRACE_EVENT_EXEC: i32 = 4;
pub const PTRACE_EVENT_VFORK_DONE: i32 = 5;
pub const PTRACE_EVENT_SECCOMP: i32 = 7;
pub const PTRACE_EVENT_STOP: i32 = 128;

// linux/ptrace.h: `ptrace_syscall_info.op`.
pub const PTRACE_SYSCALL_INFO_ENTRY: u8 = 1;
pub const PTRACE_SYSCALL_INFO_EXIT: u8 = 2;
pub const PTRACE_SYSCALL_INFO_SECCOMP: u8 = 3;

// linux/seccomp.h.
pub const SECCOMP_SET_MODE_FILTER: libc::c_ulong = 1;
pub const SECCOMP_RET_KILL_PROCESS: u32 = 0x8000_0000;
pub const SECCOMP_RET_TRACE: u32 = 0x7ff0_0000;
pub const SECCOMP_RET_ALLOW: u32 = 0x7fff_0000;
pub const SECCOMP_RET_DATA: u32 = 0x0000_ffff;

// linux/audit.h (EM_X86_64 | __AUDIT_ARCH_64BIT | __AUDIT_ARCH_LE) and the
// x32 ABI marker bit of arch/x86/include/uapi/asm/unistd.h.
pub const AUDIT_ARCH_X86_64: u32 = 0xc000_003e;
pub const X32_SYSCALL_BIT: u32 = 0x4000_0000;

// linux/filter.h classic BPF opcodes.
// BPF_LD|BPF_W|BPF_ABS, BPF_JMP|BPF_JEQ|BPF_K, BPF_JMP|BPF_JSET|BPF_K, BPF_RET|BPF_K.
pub const BPF_LD_W_ABS: u16 = 0x20;
pub const BPF_JMP_JEQ_K: u16 = 0x15;
pub const BPF_JMP_JSET_K: u16 = 0x45;
pub const BPF_RET_K: u16 = 0x06;

// Offsets in `struct seccomp_data { int nr; __u32 arch; __u64 ip; __u64 args[6]; }`.
pub const SECCOMP_DATA_NR: u32 = 0;
pub const SECCOMP_DATA_ARCH: u32 = 4;
pub const SECCOMP_DATA_ARGS: u32 = 16;

// prctl(2).
pub const PR_SET_PDEATHSIG: libc::c_int = 1;
pub const PR_SET_CHILD_SUBREAPER: libc::c_int = 36;
pub const PR_SET_NO_NEW_PRIVS: libc::c_int = 38;

// wait(2): linux-specific flags.
pub const WALL: libc::c_int = 0x4000_0000;
pub const WNOTHREAD: libc::c_int = 0x2000_0000;

// linux/kcmp.h.
const KCMP_VM: libc::c_long = 1;

// include/linux/errno.h: the restart codes a tracer sees in `rax` at a
// syscall-exit stop when a signal interrupted the call. User space never sees
// them; the kernel restarts the call or turns them into EINTR.
pub const ERESTARTSYS: i64 = 512;
pub const ERESTARTNOINTR: i64 = 513;
pub const ERESTARTNOHAND: i64 = 514;
pub const ERESTART_RESTARTBLOCK: i64 = 516;

/// `struct sock_filter` of linux/filter.h.
#[repr(C)]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SockFilter {
    pub code: u16,
    pub jt: u8,
    pub jf: u8,
    pub k: u32,
}

/// `struct sock_fprog` of linux/filter.h.
#[repr(C)]
pub struct SockFprog {
    pub len: u16,
    pub filter: *const SockFilter,
}

/// `struct ptrace_syscall_info` (linux/ptrace.h): a 24-byte header and a
/// union whose largest member (`seccomp`: nr, six args, ret_data) fits in
/// eight words. Decoded by [`SyscallInfo`].
#[repr(C)]
#[derive(Default)]
struct RawSyscallInfo {
    op: u8,
    reserved: u8,
    flags: u16,
    arch: u32,
    instruction_pointer: u64,
    stack_pointer: u64,
    data: [u64; 8],
}

/// What `PTRACE_GET_SYSCALL_INFO` says about a stopped tracee.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SyscallInfo {
    /// A syscall-entry stop.
    Entry { nr: u64 },
    /// A syscall-exit stop: the raw return value (`-errno` on error).
    Exit { rval: i64, is_error: bool },
    /// A `PTRACE_EVENT_SECCOMP` stop: the call about to run and the
    /// `SECCOMP_RET_DATA` our filter attached to it.
    Seccomp { nr: u64, args: [u64; 6], ret_data: u32 },
    /// Any other stop.
    None,
}

fn cvt(r: c_long) -> io::Result<c_long> {
    if r == -1 {
        Err(io::Error::last_os_error())
    } else {
        Ok(r)
    }
}

/// One ptrace request through the raw syscall (glibc's wrapper special-cases
/// the PEEK requests; none of ours need it).
pub fn ptrace(request: c_long, pid: pid_t, addr: usize, data: usize) -> io::Result<c_long> {
    // SAFETY: every request we issue takes either no pointer or a pointer to
    // memory we own and sized as the kernel expects (see the callers).
    cvt(unsafe { libc::syscall(libc::SYS_ptrace, request, pid as c_long, addr, data) })
}

/// Resume a stopped tracee, delivering `sig` (0 for none). `PTRACE_SYSCALL`
/// also stops it at the next syscall entry or exit.
pub fn resume(request: c_long, tid: pid_t, sig: i32) -> io::Result<()> {
    ptrace(request, tid, 0, sig as usize).map(drop)
}

/// The general registers of a stopped tracee (x86_64).
pub fn get_regs(tid: pid_t) -> io::Result<libc::user_regs_struct> {
    // SAFETY: user_regs_struct is plain integers; all-zero is valid.
    let mut regs: libc::user_regs_struct = unsafe { std::mem::zeroed() };
    ptrace(PTRACE_GETREGS, tid, 0, &mut regs as *mut libc::user_regs_struct as usize)?;
    Ok(regs)
}

/// The siginfo of the signal a tracee is stopped for (signal-delivery stop).
pub fn get_siginfo(tid: pid_t) -> io::Result<libc::siginfo_t> {
    // SAFETY: siginfo_t is plain data; all-zero is valid.
    let mut info: libc::siginfo_t = unsafe { std::mem::zeroed() };
    ptrace(PTRACE_GETSIGINFO, tid, 0, &mut info as *mut libc::siginfo_t as usize)?;
    Ok(info)
}

pub fn set_regs(tid: pid_t, regs: &libc::user_regs_struct) -> io::Result<()> {
    ptrace(PTRACE_SETREGS, tid, 0, regs as *const libc::user_regs_struct as usize).map(drop)
}

/// A signal to one thread of a thread group.
pub fn tgkill(tgid: pid_t, tid: pid_t, sig: i32) -> io::Result<()> {
    // SAFETY: no memory arguments.
    cvt(unsafe { libc::syscall(libc::SYS_tgkill, tgid as c_long, tid as c_long, sig as c_long) }).map(drop)
}

pub fn geteventmsg(tid: pid_t) -> io::Result<u64> {
    let mut msg: libc::c_ulong = 0;
    ptrace(PTRACE_GETEVENTMSG, tid, 0, &mut msg as *mut libc::c_ulong as usize)?;
    Ok(msg)
}

pub fn syscall_info(tid: pid_t) -> io::Result<SyscallInfo> {
    let mut raw = RawSyscallInfo::default();
    ptrace(PTRACE_GET_SYSCALL_INFO, tid, std::mem::size_of::<RawSyscallInfo>(), &mut raw as *mut _ as usize)?;
    let d = raw.data;
    Ok(match raw.op {
        PTRACE_SYSCALL_INFO_ENTRY => SyscallInfo::Entry { nr: d[0] },
        PTRACE_SYSCALL_INFO_EXIT => SyscallInfo::Exit { rval: d[0] as i64, is_error: d[1] & 0xff != 0 },
        PTRACE_SYSCALL_INFO_SECCOMP => SyscallInfo::Seccomp {
            nr: d[0],
            args: [d[1], d[2], d[3], d[4], d[5], d[6]],
            // `ret_data` is the u32 right after args[5]; x86_64 is little endian.
            ret_data: (d[7] & 0xffff_ffff) as u32,
        },
        _ => SyscallInfo::None,
    })
}

/// `waitpid(-1, __WALL | __WNOTHREAD)`: every tracee of *this thread* and its
/// own children, and nothing of the other threads of the process (cargo's
/// test runner spawns compilers from other threads; stealing their exit
/// statuses would break them). Retries on EINTR.
pub fn wait_any() -> io::Result<(pid_t, i32)> {
    loop {
        let mut status = 0;
        // SAFETY: `status` is a valid out-pointer.
        let pid = unsafe { libc::waitpid(-1, &mut status, WALL | WNOTHREAD) };
        if pid >= 0 {
            return Ok((pid, status));
        }
        let e = io::Error::last_os_error();
        if e.raw_os_error() != Some(libc::EINTR) {
            return Err(e);
        }
    }
}

/// `waitpid(tid, __WALL)`: the next stop or end of one tracee. Retries on
/// EINTR.
pub fn wait_task(tid: pid_t) -> io::Result<i32> {
    loop {
        let mut status = 0;
        // SAFETY: `status` is a valid out-pointer.
        if unsafe { libc::waitpid(tid, &mut status, WALL) } >= 0 {
            return Ok(status);
        }
        let e = io::Error::last_os_error();
        if e.raw_os_error() != Some(libc::EINTR) {
            return Err(e);
        }
    }
}

/// A duplicate of descriptor `fd` of the process `pidfd` names
/// (`pidfd_getfd(2)`; the tracer may take them).
pub fn pidfd_getfd(pidfd: &std::os::fd::OwnedFd, fd: i32) -> io::Result<std::os::fd::OwnedFd> {
    use std::os::fd::{AsRawFd, FromRawFd};
    // SAFETY: no memory arguments; a non-negative result is a new fd we own.
    let dup =
        cvt(unsafe { libc::syscall(libc::SYS_pidfd_getfd, pidfd.as_raw_fd() as c_long, fd as c_long, 0 as c_long) })?;
    // SAFETY: the kernel just gave us this descriptor.
    Ok(unsafe { std::os::fd::OwnedFd::from_raw_fd(dup as i32) })
}

/// [`wait_any`], but `None` when a signal interrupted the wait (the
/// history ticker's), so that the caller can look at its flag.
pub fn wait_any_or_interrupt() -> io::Result<Option<(pid_t, i32)>> {
    let mut status = 0;
    // SAFETY: `status` is a valid out-pointer.
    let pid = unsafe { libc::waitpid(-1, &mut status, WALL | WNOTHREAD) };
    if pid >= 0 {
        return Ok(Some((pid, status)));
    }
    let e = io::Error::last_os_error();
    if e.raw_os_error() == Some(libc::EINTR) {
        return Ok(None);
    }
    Err(e)
}

pub fn kill(pid: pid_t, sig: i32) -> io::Result<()> {
    // SAFETY: kill has no memory arguments.
    if unsafe { libc::kill(pid, sig) } == -1 {
        Err(io::Error::last_os_error())
    } else {
        Ok(())
    }
}

pub fn pidfd_open(pid: pid_t) -> io::Result<std::os::fd::OwnedFd> {
    use std::os::fd::FromRawFd;
    // SAFETY: no memory arguments; a non-negative result is a new fd we own.
    let fd = cvt(unsafe { libc::syscall(libc::SYS_pidfd_open, pid as c_long, 0 as c_long) })?;
    Ok(unsafe { std::os::fd::OwnedFd::from_raw_fd(fd as i32) })
}

pub fn pidfd_kill(fd: std::os::fd::BorrowedFd<'_>) -> io::Result<()> {
    pidfd_signal(fd, libc::SIGKILL)
}

pub fn pidfd_signal(fd: std::os::fd::BorrowedFd<'_>, sig: i32) -> io::Result<()> {
    use std::os::fd::AsRawFd;
    // SAFETY: a null siginfo is allowed (the kernel fills in SI_USER).
    cvt(unsafe {
        libc::syscall(libc::SYS_pidfd_send_signal, fd.as_raw_fd() as c_long, sig as c_long, 0usize, 0 as c_long)
    })
    .map(drop)
}

/// Do two processes share one address space (`clone(CLONE_VM)` without
/// `CLONE_THREAD`, or `vfork`)? `None` when kcmp is unavailable.
pub fn same_address_space(a: pid_t, b: pid_t) -> Option<bool> {
    // SAFETY: no memory arguments.
    let r = unsafe { libc::syscall(libc::SYS_kcmp, a as c_long, b as c_long, KCMP_VM, 0 as c_long, 0 as c_long) };
    if r < 0 {
        None
    } else {
        Some(r == 0)
    }
}

/// Read up to `buf.len()` bytes of a tracee's memory at `addr`. The remote
/// range is split at page boundaries, so a read that runs into an unmapped
/// page returns what lies before it (the kernel never splits one iovec):
/// a string near the end of a mapping is still read. Returns the bytes read.
pub fn read_remote(tid: pid_t, addr: u64, buf: &mut [u8], page: u64) -> io::Result<usize> {
    let mut remote = Vec::new();
    let (mut at, mut done) = (addr, 0usize);
    while done < buf.len() {
        let to_page_end = (page - at % page) as usize;
        let len = to_page_end.min(buf.len() - done);
        remote.push(libc::iovec { iov_base: at as *mut libc::c_void, iov_len: len });
        done += len;
        at = at.wrapping_add(len as u64);
    }
    let local = libc::iovec { iov_base: buf.as_mut_ptr().cast(), iov_len: buf.len() };
    // SAFETY: `local` covers exactly `buf`, which we own mutably; the remote
    // iovecs are only addresses in the tracee, never dereferenced here (a bad
    // one makes the call fail with EFAULT or stop early).
    let n = unsafe { libc::process_vm_readv(tid, &local, 1, remote.as_ptr(), remote.len() as libc::c_ulong, 0) };
    if n < 0 {
        Err(io::Error::last_os_error())
    } else {
        Ok(n as usize)
    }
}

fn cpath(name: &[u8]) -> io::Result<std::ffi::CString> {
    std::ffi::CString::new(name).map_err(|_| io::Error::from_raw_os_error(libc::EINVAL))
}

/// `fstatat(dirfd, name, AT_SYMLINK_NOFOLLOW)` (`name` empty: the fd
/// itself, `AT_EMPTY_PATH`). `Ok(None)`: no such entry.
pub fn lstat_at(dir: std::os::fd::BorrowedFd<'_>, name: &[u8]) -> io::Result<Option<libc::stat>> {
    use std::os::fd::AsRawFd;
    let c = cpath(name)?;
    let flags = libc::AT_SYMLINK_NOFOLLOW | if name.is_empty() { libc::AT_EMPTY_PATH } else { 0 };
    // SAFETY: an all-zero `stat` is a valid value of the plain C struct.
    let mut st: libc::stat = unsafe { std::mem::zeroed() };
    // SAFETY: `c` is NUL-terminated and `st` a valid out-pointer.
    if unsafe { libc::fstatat(dir.as_raw_fd(), c.as_ptr(), &mut st, flags) } == 0 {
        return Ok(Some(st));
    }
    let e = io::Error::last_os_error();
    match e.raw_os_error() {
        Some(libc::ENOENT) | Some(libc::ENOTDIR) => Ok(None),
        _ => Err(e),
    }
}

/// `stat` or `lstat` of a path. `Ok(None)`: it does not resolve.
pub fn stat_path(path: &[u8], follow: bool) -> io::Result<Option<libc::stat>> {
    let c = cpath(path)?;
    // SAFETY: an all-zero `stat` is a valid value of the plain C struct.
    let mut st: libc::stat = unsafe { std::mem::zeroed() };
    let flags = if follow { 0 } else { libc::AT_SYMLINK_NOFOLLOW };
    // SAFETY: `c` is NUL-terminated and `st` a valid out-pointer.
    if unsafe { libc::fstatat(libc::AT_FDCWD, c.as_ptr(), &mut st, flags) } == 0 {
        return Ok(Some(st));
    }
    let e = io::Error::last_os_error();
    match e.raw_os_error() {
        Some(libc::ENOENT) | Some(libc::ENOTDIR) | Some(libc::ELOOP) | Some(libc::ENAMETOOLONG) => Ok(None),
        _ => Err(e),
    }
}

/// `openat(dirfd, name, flags | O_CLOEXEC)`; `dir` `None`: a path relative
/// to the cwd or absolute.
pub fn open_at(
    dir: Option<std::os::fd::BorrowedFd<'_>>,
    name: &[u8],
    flags: libc::c_int,
) -> io::Result<std::os::fd::OwnedFd> {
    use std::os::fd::{AsRawFd, FromRawFd};
    let c = cpath(name)?;
    let dirfd = dir.map_or(libc::AT_FDCWD, |d| d.as_raw_fd());
    // SAFETY: `c` is NUL-terminated; a non-negative result is a new fd we own.
    let fd = unsafe { libc::openat(dirfd, c.as_ptr(), flags | libc::O_CLOEXEC) };
    if fd < 0 {
        Err(io::Error::last_os_error())
    } else {
        // SAFETY: fresh descriptor from openat.
        Ok(unsafe { std::os::fd::OwnedFd::from_raw_fd(fd) })
    }
}

// uapi linux/fs.h: inode flags of FS_IOC_GETFLAGS.
pub const FS_IOC_GETFLAGS: libc::c_ulong = 0x8008_6601;
pub const FS_SYNC_FL: libc::c_long = 0x0000_0008;
pub const FS_DIRSYNC_FL: libc::c_long = 0x0001_0000;

/// The inode flags (`FS_IOC_GETFLAGS`), 0 where the filesystem has none.
pub fn inode_flags(fd: std::os::fd::BorrowedFd<'_>) -> libc::c_long {
    use std::os::fd::AsRawFd;
    let mut flags: libc::c_long = 0;
    // SAFETY: FS_IOC_GETFLAGS writes one long (the kernel writes an int into
    // it; the rest stays 0) to a pointer we own.
    let r = unsafe { libc::ioctl(fd.as_raw_fd(), FS_IOC_GETFLAGS, &mut flags as *mut libc::c_long) };
    if r == 0 {
        flags & 0xffff_ffff
    } else {
        0
    }
}

/// Decoded `wait` status.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WaitStatus {
    Exited(i32),
    Signaled(i32),
    /// A ptrace stop: the stop signal (with 0x80 for syscall stops under
    /// `PTRACE_O_TRACESYSGOOD`) and the ptrace event (0 if none).
    Stopped {
        sig: i32,
        event: i32,
    },
    Other,
}

pub fn decode_status(status: i32) -> WaitStatus {
    if libc::WIFEXITED(status) {
        WaitStatus::Exited(libc::WEXITSTATUS(status))
    } else if libc::WIFSIGNALED(status) {
        WaitStatus::Signaled(libc::WTERMSIG(status))
    } else if libc::WIFSTOPPED(status) {
        WaitStatus::Stopped { sig: (status >> 8) & 0xff, event: (status >> 16) & 0xffff }
    } else {
        WaitStatus::Other
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn syscall_info_layout_matches_the_kernel() {
        // 24-byte header + the seccomp member (8 + 48 + 4, padded to 8).
        assert_eq!(std::mem::size_of::<RawSyscallInfo>(), 88);
        assert_eq!(std::mem::size_of::<SockFilter>(), 8);
    }

    #[test]
    fn decodes_ptrace_event_stops() {
        let status = 0x7f | ((libc::SIGTRAP) << 8) | (PTRACE_EVENT_SECCOMP << 16);
        assert_eq!(decode_status(status), WaitStatus::Stopped { sig: libc::SIGTRAP, event: PTRACE_EVENT_SECCOMP });
        let syscall_stop = 0x7f | ((libc::SIGTRAP | 0x80) << 8);
        assert_eq!(decode_status(syscall_stop), WaitStatus::Stopped { sig: libc::SIGTRAP | 0x80, event: 0 });
        assert_eq!(decode_status(3 << 8), WaitStatus::Exited(3));
        assert_eq!(decode_status(libc::SIGKILL), WaitStatus::Signaled(libc::SIGKILL));
    }
}
