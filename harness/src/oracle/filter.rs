//! The seccomp BPF filter installed in the writer just before `execve`.
//!
//! It sends only the sync-relevant syscalls to the tracer (`SECCOMP_RET_TRACE`
//! with the syscall's [`TracedSyscall`] code in `SECCOMP_RET_DATA`) and lets
//! everything else run at full speed: a `PTRACE_SYSCALL` tracer would stop the
//! writer twice for every `write`, `futex` and `clock_gettime`.
//!
//! Some syscalls are trapped only for some argument values ([`Trap`]):
//! `open`/`openat` only with a flag that creates, truncates or makes writes
//! synchronous, `ioctl` only for the requests the oracle looks at. A block
//! that loads an argument ends in a return on every path (the accumulator no
//! longer holds the syscall number). The kernel's seccomp action cache
//! still lets every untraced syscall skip the filter: it emulates the
//! program per syscall number and caches those that are allowed without
//! reading an argument.
//!
//! The architecture is checked first: a 32-bit (`int 0x80`) or x32 syscall
//! uses other numbers, so an unchecked filter could be bypassed by calling
//! `msync` under another ABI. Both kill the process instead.

use super::sys::{
    SockFilter, AUDIT_ARCH_X86_64, BPF_JMP_JEQ_K, BPF_JMP_JSET_K, BPF_LD_W_ABS, BPF_RET_K, SECCOMP_DATA_ARCH,
    SECCOMP_DATA_ARGS, SECCOMP_DATA_NR, SECCOMP_RET_ALLOW, SECCOMP_RET_KILL_PROCESS, SECCOMP_RET_TRACE,
    X32_SYSCALL_BIT,
};
use super::syscalls::Trap;
use super::TracedSyscall;

/// Offset of the low 32 bits of `args[arg]` in `struct seccomp_data`
/// (x86_64 is little endian).
fn seccomp_data_arg_low(arg: u8) -> u32 {
    SECCOMP_DATA_ARGS + 8 * u32::from(arg)
}

fn stmt(code: u16, k: u32) -> SockFilter {
    SockFilter { code, jt: 0, jf: 0, k }
}

fn jump(code: u16, k: u32, jt: u8, jf: u8) -> SockFilter {
    SockFilter { code, jt, jf, k }
}

/// The filter program. Built in the parent before fork: the child may not
/// allocate.
pub fn program() -> Vec<SockFilter> {
    let mut p = vec![
        stmt(BPF_LD_W_ABS, SECCOMP_DATA_ARCH),
        jump(BPF_JMP_JEQ_K, AUDIT_ARCH_X86_64, 1, 0),
        stmt(BPF_RET_K, SECCOMP_RET_KILL_PROCESS),
        stmt(BPF_LD_W_ABS, SECCOMP_DATA_NR),
        jump(BPF_JMP_JSET_K, X32_SYSCALL_BIT, 0, 1),
        stmt(BPF_RET_K, SECCOMP_RET_KILL_PROCESS),
    ];
    for sys in TracedSyscall::ALL {
        let trace = stmt(BPF_RET_K, SECCOMP_RET_TRACE | sys.ret_data());
        let allow = stmt(BPF_RET_K, SECCOMP_RET_ALLOW);
        match sys.trap() {
            Trap::Always => {
                p.push(jump(BPF_JMP_JEQ_K, sys.nr() as u32, 0, 1));
                p.push(trace);
            }
            Trap::AnyBit { arg, mask } => {
                // JEQ nr; LD arg; JSET mask → trace; allow.
                p.push(jump(BPF_JMP_JEQ_K, sys.nr() as u32, 0, 4));
                p.push(stmt(BPF_LD_W_ABS, seccomp_data_arg_low(arg)));
                p.push(jump(BPF_JMP_JSET_K, mask, 0, 1));
                p.push(trace);
                p.push(allow);
            }
            Trap::OneOf { arg, values } => {
                // JEQ nr; LD arg; JEQ v0 .. JEQ vn-1 → trace; allow; trace.
                let n = values.len();
                p.push(jump(BPF_JMP_JEQ_K, sys.nr() as u32, 0, (n + 3) as u8));
                p.push(stmt(BPF_LD_W_ABS, seccomp_data_arg_low(arg)));
                for (i, &v) in values.iter().enumerate() {
                    // From value i, the trace return is n - i instructions on.
                    p.push(jump(BPF_JMP_JEQ_K, v, (n - i) as u8, 0));
                }
                p.push(allow);
                p.push(trace);
            }
        }
    }
    p.push(stmt(BPF_RET_K, SECCOMP_RET_ALLOW));
    p
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::oracle::syscalls::{FICLONE, FICLONERANGE, FIDEDUPERANGE, FS_IOC_FSSETXATTR, FS_IOC_SETFLAGS};

    /// A classic-BPF interpreter for the four opcodes the filter uses, run
    /// over a `seccomp_data` with the given arch and nr (all args 0).
    fn run(prog: &[SockFilter], arch: u32, nr: u32) -> u32 {
        run_args(prog, arch, nr, [0; 6])
    }

    fn run_args(prog: &[SockFilter], arch: u32, nr: u32, args: [u32; 6]) -> u32 {
        let mut a = 0u32;
        let mut pc = 0usize;
        loop {
            let i = prog[pc];
            pc += 1;
            match i.code {
                BPF_LD_W_ABS => {
                    a = match i.k {
                        SECCOMP_DATA_NR => nr,
                        SECCOMP_DATA_ARCH => arch,
                        k if (SECCOMP_DATA_ARGS..SECCOMP_DATA_ARGS + 48).contains(&k) && k % 8 == 0 => {
                            args[((k - SECCOMP_DATA_ARGS) / 8) as usize]
                        }
                        k => panic!("load from unexpected offset {k}"),
                    }
                }
                BPF_JMP_JEQ_K => pc += if a == i.k { i.jt } else { i.jf } as usize,
                BPF_JMP_JSET_K => pc += if a & i.k != 0 { i.jt } else { i.jf } as usize,
                BPF_RET_K => return i.k,
                c => panic!("unexpected opcode {c:#x}"),
            }
        }
    }

    #[test]
    fn traces_exactly_the_listed_syscalls_with_their_codes() {
        let p = program();
        for sys in TracedSyscall::ALL {
            let args = match sys.trap() {
                Trap::Always => [0; 6],
                Trap::AnyBit { arg, mask } => {
                    let mut a = [0; 6];
                    a[arg as usize] = mask & mask.wrapping_neg();
                    a
                }
                Trap::OneOf { arg, values } => {
                    let mut a = [0; 6];
                    a[arg as usize] = values[values.len() - 1];
                    a
                }
            };
            let r = run_args(&p, AUDIT_ARCH_X86_64, sys.nr() as u32, args);
            assert_eq!(r, SECCOMP_RET_TRACE | sys.ret_data(), "{sys:?}");
            assert_eq!(TracedSyscall::from_ret_data(r & 0xffff), Some(sys));
        }
        for nr in
            [libc::SYS_read, libc::SYS_pread64, libc::SYS_getpid, libc::SYS_execve, libc::SYS_exit, libc::SYS_close]
        {
            assert_eq!(run(&p, AUDIT_ARCH_X86_64, nr as u32), SECCOMP_RET_ALLOW, "nr {nr}");
        }
    }

    #[test]
    fn opens_and_ioctls_are_trapped_only_for_the_flags_and_requests_that_matter() {
        let p = program();
        let open = |flags: i32| run_args(&p, AUDIT_ARCH_X86_64, libc::SYS_open as u32, [0, flags as u32, 0, 0, 0, 0]);
        let openat = |flags: i32| {
            run_args(&p, AUDIT_ARCH_X86_64, libc::SYS_openat as u32, [libc::AT_FDCWD as u32, 0, flags as u32, 0, 0, 0])
        };
        for f in [libc::O_RDONLY, libc::O_RDWR | libc::O_CLOEXEC, libc::O_DIRECTORY | libc::O_NONBLOCK, libc::O_APPEND]
        {
            assert_eq!(open(f), SECCOMP_RET_ALLOW, "open {f:#o}");
            assert_eq!(openat(f), SECCOMP_RET_ALLOW, "openat {f:#o}");
        }
        for f in
            [libc::O_CREAT, libc::O_TRUNC | libc::O_WRONLY, libc::O_TMPFILE | libc::O_RDWR, libc::O_SYNC, libc::O_DSYNC]
        {
            assert_eq!(open(f), SECCOMP_RET_TRACE | TracedSyscall::Open.ret_data(), "open {f:#o}");
            assert_eq!(openat(f), SECCOMP_RET_TRACE | TracedSyscall::Openat.ret_data(), "openat {f:#o}");
        }
        let ioctl = |req: u32| run_args(&p, AUDIT_ARCH_X86_64, libc::SYS_ioctl as u32, [3, req, 0, 0, 0, 0]);
        for req in [FICLONE, FICLONERANGE, FIDEDUPERANGE, FS_IOC_SETFLAGS, FS_IOC_FSSETXATTR] {
            assert_eq!(ioctl(req), SECCOMP_RET_TRACE | TracedSyscall::Ioctl.ret_data(), "{req:#x}");
        }
        for req in [libc::TCGETS as u32, libc::FIONREAD as u32, 0x8008_6601 /* FS_IOC_GETFLAGS */] {
            assert_eq!(ioctl(req), SECCOMP_RET_ALLOW, "{req:#x}");
        }
        // The calls after the conditional blocks are still reached.
        assert_eq!(
            run(&p, AUDIT_ARCH_X86_64, libc::SYS_rename as u32),
            SECCOMP_RET_TRACE | TracedSyscall::Rename.ret_data()
        );
        assert_eq!(
            run(&p, AUDIT_ARCH_X86_64, libc::SYS_splice as u32),
            SECCOMP_RET_TRACE | TracedSyscall::Splice.ret_data()
        );
    }

    #[test]
    fn kills_other_architectures_and_x32() {
        let p = program();
        const AUDIT_ARCH_I386: u32 = 0x4000_0003;
        assert_eq!(run(&p, AUDIT_ARCH_I386, libc::SYS_msync as u32), SECCOMP_RET_KILL_PROCESS);
        assert_eq!(run(&p, AUDIT_ARCH_X86_64, X32_SYSCALL_BIT | libc::SYS_msync as u32), SECCOMP_RET_KILL_PROCESS);
        assert_eq!(run(&p, AUDIT_ARCH_X86_64, X32_SYSCALL_BIT | libc::SYS_getpid as u32), SECCOMP_RET_KILL_PROCESS);
    }

    #[test]
    fn fits_the_kernel_limit_and_jumps_stay_in_bounds() {
        let p = program();
        assert!(p.len() <= 4096);
        for (pc, i) in p.iter().enumerate() {
            if i.code == BPF_JMP_JEQ_K || i.code == BPF_JMP_JSET_K {
                assert!(pc + 1 + (i.jt.max(i.jf) as usize) < p.len());
            }
        }
    }
}
