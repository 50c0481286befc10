//! The process crashes of `--points syscalls`: a `sigkill` or `abort`
//! trial whose writer runs under the durability oracle, crashed just before
//! or just after one of the calls the oracle traces (or, for odd trials, at
//! a random time of the traced clean run), then judged by the checker as
//! the crash left the directory (the page cache outlives the process).
//!
//! Random times rarely land in the microseconds between two calls (a file
//! extended by `write`, then its header stored through the mapping); a call
//! point lands there every time, and the plan spreads the trials over every
//! call, before and after each.

use std::time::Duration;

use super::checker::Checker;
use super::config::{ExternalConfig, Supervision};
use super::traced::{run_writer_traced, CrashAt, TracedRun};
use super::trial::{judge_crashed, set_up_trial, Crashed, TrialSlot};
use super::ExternalError;
use crate::oracle::{CrashSignal, SyscallCrashPoint, WriterEnd};
use crate::program_plan::TrialPlan;
use crate::report::external::{Delivery, TrialOutcome};
use crate::vocab::process_end::{signal_name, ProcessEnd};
use crate::vocab::CrashKind;

/// What the traced clean run measured: the crash points of every trial.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct CallCalibration {
    /// The traced clean run's duration; timed crashes are fractions of it.
    pub clean: Duration,
    /// The calls it traced ([`crate::oracle::CountedCalls::Recorded`]).
    pub calls: u64,
}

fn crash_signal(crash: CrashKind) -> Result<(CrashSignal, i32), ExternalError> {
    match crash {
        CrashKind::Sigkill => Ok((CrashSignal::Kill, libc::SIGKILL)),
        CrashKind::Abort => Ok((CrashSignal::Abort, libc::SIGABRT)),
        other => Err(ExternalError::BadInput(format!(
            "--points syscalls crashes sigkill, abort and power-loss trials at traced calls, not {other}"
        ))),
    }
}

/// How the traced writer ended, as a process end.
fn process_end(run: &TracedRun, signal: i32) -> ProcessEnd {
    match run.outcome.as_ref().map(|o| &o.end) {
        Some(WriterEnd::Exited { code }) => ProcessEnd::Exited(*code),
        Some(WriterEnd::Signaled { signal }) => ProcessEnd::Signaled(*signal),
        // Killed by the tracer: at the crash point, or (a timed crash) by
        // `TraceControl::cancel`.
        Some(WriterEnd::CrashPoint(_)) | Some(WriterEnd::Cancelled) => ProcessEnd::Signaled(libc::SIGKILL),
        // Struck before its execve.
        None => ProcessEnd::Signaled(if run.abort_before_exec { libc::SIGKILL } else { signal }),
    }
}

/// One `sigkill`/`abort` trial at a traced call or time, following `plan`.
pub(crate) fn run_trial_at_calls(
    config: &ExternalConfig,
    files: &TrialSlot,
    plan: &TrialPlan,
    calibration: CallCalibration,
    checker: &mut Checker,
    supervision: &Supervision<'_>,
) -> Result<TrialOutcome, ExternalError> {
    let (signal, signo) = crash_signal(plan.crash)?;
    let seed = set_up_trial(config, files, plan.writer_seed, supervision)?;
    let (crash, crash_at) = match plan.call_point(config.seed, calibration.calls) {
        Some((nth, when)) => (CrashAt::Syscall(SyscallCrashPoint::at_recorded(nth, when, signal)), Duration::ZERO),
        None => {
            let at = plan.crash_after(calibration.clean);
            (CrashAt::Time(at, signal), at)
        }
    };
    let run = run_writer_traced(config, &files.dir, &seed, crash, false, supervision, false)?;
    let writer_end = process_end(&run, signo);
    let name = signal_name(signo);
    let delivery = match (run.outcome.as_ref().and_then(|o| o.crash.as_ref()), run.killed_at) {
        (Some(hit), _) => Delivery::Call {
            signal: name.clone(),
            nth: hit.nth,
            syscall: hit.syscall.name().to_owned(),
            when: hit.when,
        },
        (None, Some(_)) => Delivery::Signal { signal: name },
        (None, None) => Delivery::WriterFinishedFirst,
    };
    let traced = " (under the durability oracle)";
    let crashed = Crashed { crash_at, delivery, end: writer_end, traced, stderr: run.stderr_first_line() };
    judge_crashed(config, files, plan, crashed, &run.lines, checker, supervision)
}
