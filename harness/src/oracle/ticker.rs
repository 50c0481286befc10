//! `--history-every`: wake the tracer on a period so that it stops every
//! traced task and records the write history there too.
//!
//! The tracer sleeps in `waitpid`, which nothing but a tracee's stop or a
//! signal ends; only the tracer thread may `PTRACE_INTERRUPT` its tracees.
//! So a ticker thread sets a flag and sends the tracer thread (and only it:
//! `tgkill`) a real-time signal whose handler does nothing and is installed
//! without `SA_RESTART`: the `waitpid` returns `EINTR`, the tracer sees the
//! flag, stops the world, samples, and resumes everyone. The signal is
//! `SIGRTMIN + 5`, which nothing else in crashlab uses (glibc keeps the
//! first real-time signals for itself; `SIGRTMIN()` is past them). The
//! handler is installed once per process and left: a stray tick is harmless
//! (a wait that retries). Children never run it: the tick goes to the
//! tracer thread alone, and `execve` resets caught handlers to default.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Once};
use std::thread::JoinHandle;
use std::time::Duration;

use libc::pid_t;

use super::sys;

fn tick_signal() -> i32 {
    libc::SIGRTMIN() + 5
}

extern "C" fn on_tick(_: libc::c_int) {}

fn install_handler() {
    static ONCE: Once = Once::new();
    ONCE.call_once(|| {
        // SAFETY: a zeroed sigaction is valid; the handler is
        // async-signal-safe (it does nothing); no SA_RESTART, so a blocked
        // waitpid returns EINTR.
        unsafe {
            let mut act: libc::sigaction = std::mem::zeroed();
            act.sa_sigaction = on_tick as *const () as usize;
            libc::sigemptyset(&mut act.sa_mask);
            act.sa_flags = 0;
            libc::sigaction(tick_signal(), &act, std::ptr::null_mut());
        }
    });
}

/// The ticker of one traced run; stopped and joined when dropped.
pub(super) struct Ticker {
    due: Arc<AtomicBool>,
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

impl Ticker {
    /// Tick the calling thread (the tracer) every `period`.
    pub(super) fn start(period: Duration) -> std::io::Result<Ticker> {
        install_handler();
        // SAFETY: no arguments.
        let (pid, tid) = unsafe { (libc::getpid(), libc::gettid()) };
        let due = Arc::new(AtomicBool::new(false));
        let stop = Arc::new(AtomicBool::new(false));
        let (d, s) = (due.clone(), stop.clone());
        let thread = std::thread::Builder::new().name("crashlab-history-tick".into()).spawn(move || {
            while !s.load(Ordering::SeqCst) {
                std::thread::park_timeout(period);
                if s.load(Ordering::SeqCst) {
                    break;
                }
                d.store(true, Ordering::SeqCst);
                let _ = sys::tgkill(pid as pid_t, tid as pid_t, tick_signal());
            }
        })?;
        Ok(Ticker { due, stop, thread: Some(thread) })
    }

    /// Was a tick due (and is it now taken)?
    pub(super) fn take(&self) -> bool {
        self.due.swap(false, Ordering::SeqCst)
    }
}

impl Drop for Ticker {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        if let Some(t) = self.thread.take() {
            t.thread().unpark();
            let _ = t.join();
        }
    }
}
