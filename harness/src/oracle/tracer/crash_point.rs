//! A [`CrashSignal::Abort`](crate::oracle::CrashSignal::Abort) crash point
//! just before a call: the call is held back at its seccomp stop and made
//! restartable at its exit stop, so that the writer sees what a SIGABRT
//! arriving just before the `syscall` instruction would have done. A part
//! of the tracer (its child module: it works on the tracer's state).

use libc::pid_t;

use super::{is_esrch, sys, tracer_err, Tracer};
use crate::oracle::{NoGuarantee, OracleError, SyncEffect, SyscallResult, TracedSyscall};

impl Tracer<'_> {
    /// A [`CrashSignal::Abort`] point just before a call, at its seccomp
    /// stop: hold the call back (syscall number -1: the kernel skips it),
    /// make SIGABRT pending for the thread, and at the skipped call's exit
    /// stop ([`Tracer::restart_after_abort`]) make it restartable. The
    /// thread then takes the signal before the call ever ran: the default
    /// action kills it there; a handler that returns re-enters the call
    /// (a new seccomp stop, a new event), as if the signal had come just
    /// before the `syscall` instruction. The held-back entry's event is
    /// marked as failed with `EINTR`: it changed nothing.
    pub(super) fn abort_before_call(
        &mut self,
        tid: pid_t,
        sys: TracedSyscall,
        event: usize,
    ) -> Result<(), OracleError> {
        let mut regs = match sys::get_regs(tid) {
            Ok(r) => r,
            Err(e) if is_esrch(&e) => return Ok(()),
            Err(e) => return Err(tracer_err("PTRACE_GETREGS at the crash point", tid, e)),
        };
        let nr = regs.orig_rax;
        debug_assert_eq!(nr as i64, sys.nr());
        regs.orig_rax = u64::MAX;
        match sys::set_regs(tid, &regs) {
            Ok(()) => {}
            Err(e) if is_esrch(&e) => return Ok(()),
            Err(e) => return Err(tracer_err("PTRACE_SETREGS at the crash point", tid, e)),
        }
        if let Some(ev) = self.events.get_mut(event).filter(|e| e.tid == tid && e.syscall == sys) {
            ev.result = SyscallResult::Failed { errno: libc::EINTR };
            ev.effect = SyncEffect::NoGuarantee(NoGuarantee::Failed);
        }
        let task = self.tasks.get_mut(&tid).expect("adopted");
        let tgid = task.tgid;
        task.held_for_abort = Some(nr);
        if let Err(e) = sys::tgkill(tgid, tid, libc::SIGABRT) {
            if !is_esrch(&e) {
                return Err(tracer_err("cannot send SIGABRT at the crash point (tgkill)", tid, e));
            }
        }
        self.resume(tid, 0)
    }

    /// The exit stop of a call [`Tracer::abort_before_call`] held back:
    /// give back its number and return `-ERESTARTNOINTR`, which the kernel
    /// turns, as it delivers the pending SIGABRT, into a restart of the
    /// call after the handler (arch/x86/kernel/signal.c).
    pub(super) fn restart_after_abort(&mut self, tid: pid_t, nr: u64) -> Result<(), OracleError> {
        let mut regs = match sys::get_regs(tid) {
            Ok(r) => r,
            Err(e) if is_esrch(&e) => return Ok(()),
            Err(e) => return Err(tracer_err("PTRACE_GETREGS after the crash point", tid, e)),
        };
        regs.orig_rax = nr;
        regs.rax = sys::ERESTARTNOINTR_RVAL as u64;
        match sys::set_regs(tid, &regs) {
            Ok(()) => self.resume(tid, 0),
            Err(e) if is_esrch(&e) => Ok(()),
            Err(e) => Err(tracer_err("PTRACE_SETREGS after the crash point", tid, e)),
        }
    }
}
