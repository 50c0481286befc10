//! The seccomp BPF filter installed in the writer just before `execve`.
//!
//! It sends only the sync-relevant syscalls to the tracer (`SECCOMP_RET_TRACE`
//! with the syscall's [`TracedSyscall`] code in `SECCOMP_RET_DATA`) and lets
//! everything else run at full speed: a `PTRACE_SYSCALL` tracer would stop the
//! writer twice for every `write`, `futex` and `clock_gettime`.
//!
//! The architecture is checked first: a 32-bit (`int 0x80`) or x32 syscall
//! uses other numbers, so an unchecked filter could be bypassed by calling
//! `msync` under another ABI. Both kill the process instead.

use super::sys::{
    SockFilter, AUDIT_ARCH_X86_64, BPF_JMP_JEQ_K, BPF_JMP_JSET_K, BPF_LD_W_ABS, BPF_RET_K, SECCOMP_DATA_ARCH,
    SECCOMP_DATA_NR, SECCOMP_RET_ALLOW, SECCOMP_RET_KILL_PROCESS, SECCOMP_RET_TRACE, X32_SYSCALL_BIT,
};
use super::TracedSyscall;

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
        p.push(jump(BPF_JMP_JEQ_K, sys.nr() as u32, 0, 1));
        p.push(stmt(BPF_RET_K, SECCOMP_RET_TRACE | sys.ret_data()));
    }
    p.push(stmt(BPF_RET_K, SECCOMP_RET_ALLOW));
    p
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A classic-BPF interpreter for the four opcodes the filter uses, run
    /// over a `seccomp_data` with the given arch and nr.
    fn run(prog: &[SockFilter], arch: u32, nr: u32) -> u32 {
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
            let r = run(&p, AUDIT_ARCH_X86_64, sys.nr() as u32);
            assert_eq!(r, SECCOMP_RET_TRACE | sys.ret_data(), "{sys:?}");
            assert_eq!(TracedSyscall::from_ret_data(r & 0xffff), Some(sys));
        }
        for nr in [libc::SYS_read, libc::SYS_write, libc::SYS_getpid, libc::SYS_execve, libc::SYS_exit] {
            assert_eq!(run(&p, AUDIT_ARCH_X86_64, nr as u32), SECCOMP_RET_ALLOW, "nr {nr}");
        }
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
