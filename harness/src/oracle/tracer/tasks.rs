//! The tracer's tasks: which tasks, processes and address spaces it
//! knows, every wait for their stops, killing them all, and stopping
//! every one but the task at hand (for a sync's copy). A part of the
//! tracer (its child module: it works on the tracer's state).

use std::io;

use libc::pid_t;

use super::{is_esrch, read_tgid, sys, tracer_err, Proc, Task, TaskState, Tracer};
use crate::oracle::address_space::Space;
use crate::oracle::sys::WaitStatus;
use crate::oracle::OracleError;

impl Tracer<'_> {
    // ---- bookkeeping of tasks, processes, address spaces ----

    pub(super) fn new_space(&mut self) -> u64 {
        self.next_space += 1;
        self.spaces.insert(self.next_space, Space::default());
        self.next_space
    }

    pub(super) fn new_process(&mut self, tgid: pid_t) {
        // Share the cache with a process that has the same address space
        // (vfork, clone(CLONE_VM)); kcmp unavailable: assume separate.
        let shared = self
            .procs
            .iter()
            .find(|(&p, _)| sys::same_address_space(p, tgid) == Some(true))
            .map(|(_, proc_)| proc_.space);
        let space = match shared {
            Some(s) => s,
            None => self.new_space(),
        };
        self.procs.insert(tgid, Proc { space });
        self.processes.push(tgid);
        if let Ok(fd) = sys::pidfd_open(tgid) {
            self.control.register(tgid, fd);
        }
        // A cancel that raced with the registration missed this process.
        self.notice_cancel();
    }

    /// Start tracking a task we see for the first time (an auto-attached
    /// child or thread). `false` if it is already gone.
    pub(super) fn adopt(&mut self, tid: pid_t) -> bool {
        if self.tasks.contains_key(&tid) {
            return true;
        }
        let Some(tgid) = read_tgid(tid) else { return false };
        if !self.procs.contains_key(&tgid) {
            self.new_process(tgid);
        }
        self.tasks.insert(
            tid,
            Task {
                tgid,
                state: TaskState::Held,
                call: None,
                in_vfork: false,
                interrupted: false,
                held_for_abort: None,
            },
        );
        self.threads += 1;
        if self.killing {
            let _ = sys::kill(tid, libc::SIGKILL);
        }
        true
    }

    pub(super) fn space_of(&mut self, tgid: pid_t) -> &mut Space {
        let id = self.procs.get(&tgid).map(|p| p.space);
        let id = match id {
            Some(id) => id,
            None => {
                let id = self.new_space();
                self.procs.insert(tgid, Proc { space: id });
                id
            }
        };
        self.spaces.entry(id).or_default()
    }

    // ---- killing ----

    /// The next event of any tracee, with a cancel noticed before it is
    /// handled.
    ///
    /// Architecture Invariant: every wait of the run (the main loop and
    /// `stop_world`) goes through here. A death our own cancel caused must
    /// be seen as the cancel, never as the writer dying on its own; a wait
    /// that skipped this check once turned a timed crash into "the writer
    /// died of SIGKILL" (`acking_before_the_sync_is_caught...`, ~1 run in 8).
    /// The next stop or death; `None` when the history ticker's tick is
    /// due (it interrupted the wait).
    pub(super) fn wait_any(&mut self) -> io::Result<Option<(pid_t, i32)>> {
        let ev = match &self.ticker {
            None => Some(sys::wait_any()?),
            Some(t) => loop {
                match sys::wait_any_or_interrupt()? {
                    Some(ev) => break Some(ev),
                    None if t.take() => break None,
                    None => {}
                }
            },
        };
        self.notice_cancel();
        Ok(ev)
    }

    pub(super) fn notice_cancel(&mut self) {
        if !self.killing && self.control.is_cancelled() {
            self.cancelled = true;
            self.start_killing();
        }
    }

    /// SIGKILL every traced task; from now on every stop is answered with
    /// SIGKILL instead of a resume, until all are dead.
    pub(super) fn start_killing(&mut self) {
        self.killing = true;
        for &tid in self.tasks.keys() {
            // SIGKILL to any thread kills its whole group; a task in a
            // ptrace stop is woken by it. ESRCH: already dying.
            let _ = sys::kill(tid, libc::SIGKILL);
        }
    }

    /// Error path and drop: kill everything and collect until the launcher
    /// (which reaps the tree) is gone. Never fails, never panics.
    pub(super) fn cleanup(&mut self) {
        self.go_w.take();
        self.start_killing();
        while !self.launcher_done {
            match sys::wait_any() {
                Ok((pid, status)) => match sys::decode_status(status) {
                    WaitStatus::Exited(_) | WaitStatus::Signaled(_) => {
                        self.tasks.remove(&pid);
                        if pid == self.launcher {
                            self.launcher_done = true;
                        }
                    }
                    WaitStatus::Stopped { .. } => {
                        let _ = sys::kill(pid, libc::SIGKILL);
                    }
                    WaitStatus::Other => {}
                },
                Err(_) => break,
            }
        }
        self.finished = true;
    }

    // ---- stopping the world ----

    /// Bring every traced task other than `except` into a ptrace stop.
    /// Their stops are queued in `deferred` (handled after the copy, which
    /// is when they are resumed); deaths are handled at once.
    pub(super) fn stop_world(&mut self, except: pid_t) -> Result<(), OracleError> {
        for (&tid, task) in self.tasks.iter_mut() {
            if tid == except || task.state != TaskState::Running || task.in_vfork {
                continue;
            }
            match sys::ptrace(sys::PTRACE_INTERRUPT, tid, 0, 0) {
                // ESRCH: dying; its death will be reported and ends the wait.
                Ok(_) => {
                    task.interrupted = true;
                    self.stats.tasks_interrupted += 1;
                }
                Err(e) if is_esrch(&e) => task.interrupted = true,
                Err(e) => return Err(tracer_err("PTRACE_INTERRUPT", tid, e)),
            }
        }
        while self.tasks.values().any(|t| t.interrupted && t.state == TaskState::Running) {
            let (pid, status) = match self.wait_any() {
                Ok(Some(ev)) => ev,
                // A tick while the world is being stopped: it is stopped
                // for a reason already.
                Ok(None) => continue,
                Err(e) if e.raw_os_error() == Some(libc::ECHILD) => break,
                Err(e) => return Err(OracleError::io("waitpid while stopping the writer's tasks", e)),
            };
            match sys::decode_status(status) {
                st @ (WaitStatus::Exited(_) | WaitStatus::Signaled(_)) => self.on_gone(pid, st),
                WaitStatus::Stopped { .. } => {
                    if self.adopt(pid) {
                        let t = self.tasks.get_mut(&pid).expect("adopted");
                        t.state = TaskState::Held;
                        t.interrupted = false;
                        self.deferred.push_back((pid, status));
                    }
                }
                WaitStatus::Other => {}
            }
        }
        Ok(())
    }
}
