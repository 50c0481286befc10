//! `--crash enospc` under the durability oracle: the writer runs inside the
//! capacity helper's filesystem, traced, so the trial names the first call
//! that met `ENOSPC` and the store whose page fault raised `SIGBUS`.
//!
//! The oracle must trace the writer from crashlab (a ptrace tracer is a
//! thread of crashlab's), and the writer must run in the helper's user +
//! mount namespace, where the small filesystem covers the trial directory.
//! So the helper is started in its hold mode (`crashlab __capacity ...
//! --hold`, `capacity_helper.rs`): it enters its namespaces, mounts, copies
//! the setup in and prints `ready`; crashlab opens `/proc/HELPER/ns/user`
//! (when it differs from crashlab's: as root on ext4 there is none of its
//! own) and `/proc/HELPER/ns/mnt`, and the oracle's writer `setns`es into
//! them before its `chdir` and `execve` (raw syscalls, `oracle/launch.rs`).
//! The oracle opens the watched directory through `/proc/HELPER/root` and
//! resolves the writer's absolute paths through `/proc/TID/root`, so it
//! sees the small filesystem, not the directory beneath. When the writer
//! has ended, a line on the helper's standard input makes it copy the
//! directory out and exit, as in an untraced trial.

use std::fs::File;
use std::os::fd::AsFd;
use std::os::unix::fs::MetadataExt;
use std::path::Path;
use std::time::{Duration, Instant};

use super::capacity_helper::READY;
use super::capacity_line::HelperLine;
use super::checker::Checker;
use super::config::{ExternalConfig, Supervision};
use super::power_loss::{judge_after_full_disk, StatesReplay};
use super::process::{LineWake, Serving, Stdout, Supervised};
use super::traced::{run_writer_traced_in, CrashAt, WriterNamespaces};
use super::trial::{judge_crashed, program_env, set_up_trial, timeout_error, Crashed, TrialSlot};
use super::ExternalError;
use crate::oracle::{Frame, OracleError, OracleOutcome, WriterEnd};
use crate::program_plan::TrialPlan;
use crate::report::checker_verdict::CheckerVerdict;
use crate::report::external::{Delivery, TrialOutcome};
use crate::report::external_enospc::{FaultingStore, FullDiskTrace, NoSpaceCallFacts};
use crate::report::source_location::SourceFrame;
use crate::vocab::ProcessEnd;

/// A traced `enospc` trial's result: its outcome, or why the oracle could
/// not run (nothing of the writer ran; the caller runs it untraced).
pub(crate) enum TracedEnospc {
    Judged(Box<TrialOutcome>),
    Untraceable(String),
}

/// The oracle errors that say it cannot run here at all (no ptrace; no
/// seccomp filter, no `setns` for the writer), before the writer's
/// `execve`: any other error is the writer's or the run's.
fn untraceable(error: &OracleError) -> bool {
    match error {
        OracleError::PtraceUnavailable { .. } => true,
        OracleError::Launch { step, .. } => {
            ["seccomp", "PR_SET_NO_NEW_PRIVS", "setns"].iter().any(|s| step.contains(s))
        }
        _ => false,
    }
}

/// The namespaces of `pid` the writer enters: its user namespace when not
/// crashlab's, then its mount namespace.
fn open_namespaces(pid: i32) -> Result<Vec<File>, ExternalError> {
    let open = |which: &str| {
        let path = format!("/proc/{pid}/ns/{which}");
        File::open(&path).map_err(|e| ExternalError::io(format!("cannot open {path} (the capacity helper's)"), e))
    };
    let ours =
        std::fs::metadata("/proc/self/ns/user").map_err(|e| ExternalError::io("cannot stat /proc/self/ns/user", e))?;
    let user = open("user")?;
    let theirs = user.metadata().map_err(|e| ExternalError::io(format!("cannot stat /proc/{pid}/ns/user"), e))?;
    let mut fds = Vec::new();
    if (theirs.dev(), theirs.ino()) != (ours.dev(), ours.ino()) {
        fds.push(user);
    }
    fds.push(open("mnt")?);
    Ok(fds)
}

/// The faulting store's stack: symbolized (which loads the writer's debug
/// information: about 0.1 s for a debug build, so only for a violation,
/// as the power-loss attribution does, while the writer's objects are on
/// disk), or as objects and offsets.
fn store_stack(frames: &[Frame], symbolize: bool) -> Vec<SourceFrame> {
    if symbolize {
        return crate::symbolize::Symbolizer::new().frames(frames);
    }
    frames
        .iter()
        .map(|f| SourceFrame {
            function: None,
            file: None,
            line: None,
            object: f.object.display().to_string(),
            offset: f.offset,
        })
        .collect()
}

/// What the oracle saw of the full disk, in the report's words; with
/// `symbolize`, the faulting store's stack symbolized.
pub(crate) fn full_disk_trace(outcome: &OracleOutcome, symbolize: bool) -> FullDiskTrace {
    let page = outcome.page_size.max(1);
    let errno_name = |e: i32| match e {
        libc::EDQUOT => "EDQUOT".to_owned(),
        libc::ENOSPC => "ENOSPC".to_owned(),
        e => format!("errno {e}"),
    };
    FullDiskTrace {
        first_no_space: outcome.no_space.as_ref().map(|c| NoSpaceCallFacts {
            call: c.event as u64,
            syscall: c.syscall.name().to_owned(),
            errno: errno_name(c.errno),
            file: c.path.as_ref().map(|p| p.display().to_string()),
            offset: c.offset,
            len: c.len,
            acks_before: c.acks_before,
        }),
        faulting_store: outcome.store_fault.as_ref().map(|f| FaultingStore {
            file: f.path.as_ref().map(|p| p.display().to_string()),
            page: f.file_offset.map(|o| o / page),
            offset: f.file_offset,
            address: f.address,
            pc: f.pc,
            stack: store_stack(&f.stack, symbolize),
            acks_before: f.acks_before,
        }),
    }
}

/// One `enospc` trial with the writer traced inside the capacity
/// filesystem; `helper` is the executable that runs the helper.
#[allow(clippy::too_many_arguments)]
pub(crate) fn run_traced_enospc_trial(
    config: &ExternalConfig,
    files: &TrialSlot,
    plan: &TrialPlan,
    capacity: u64,
    helper: &Path,
    checker: &mut Checker,
    supervision: &Supervision<'_>,
    replay: StatesReplay<'_>,
) -> Result<TracedEnospc, ExternalError> {
    let seed = set_up_trial(config, files, plan.writer_seed, supervision)?;
    let fs = config.capacity_fs;
    let helper = HelperLine::new(config, helper, files, capacity, true)?;
    let line = &helper.line;
    let mut holder = Supervised::spawn_serving(
        line,
        &files.dir,
        &program_env(&files.dir, &seed),
        Stdout::Lines,
        supervision.die_with_crashlab,
        Serving::Requests,
    )?;
    let stop = || supervision.stopped();
    let helper_failed = |holder: &mut Supervised, what: &str| -> ExternalError {
        match holder.finish(Instant::now() + supervision.timeout, &stop) {
            Ok(Some(finished)) => helper.failed(config, what, &finished),
            Ok(None) => timeout_error(&config.writer, supervision, " while the capacity helper ended"),
            Err(e) => e,
        }
    };
    match holder.next_line(holder.started() + supervision.timeout, &stop)? {
        LineWake::Line(l) if l == READY.as_bytes() => {}
        LineWake::Deadline => {
            return Err(timeout_error(&config.writer, supervision, &format!(" while a {capacity}-byte {fs} was made")))
        }
        _ => return Err(helper_failed(&mut holder, "it ended before its filesystem was ready")),
    }
    let ns_files = open_namespaces(holder.pid())?;
    let namespaces = WriterNamespaces { holder: holder.pid(), fds: ns_files.iter().map(|f| f.as_fd()).collect() };
    // `enospc,power-loss`: the states after the writer's end are judged,
    // with the write history's versions when it is recorded.
    let after = config.judges_states_after_full_disk();
    let history = after && config.power_loss.history.record;
    let run =
        run_writer_traced_in(config, &files.dir, &seed, CrashAt::Never, history, supervision, true, Some(&namespaces));
    drop(namespaces);
    drop(ns_files);
    // The writer has ended (or never started): the helper copies out.
    let released = holder.write_stdin(b"ended\n", Instant::now() + supervision.timeout, &stop)?;
    let run = match run {
        Err(ExternalError::Oracle { error, .. }) if untraceable(&error) => {
            return Ok(TracedEnospc::Untraceable(error.to_string()));
        }
        r => r?,
    };
    if !released {
        return Err(helper_failed(&mut holder, "it ended before the writer did"));
    }
    let finished = holder
        .finish(Instant::now() + supervision.timeout, &stop)?
        .ok_or_else(|| timeout_error(&config.writer, supervision, " while the capacity helper copied out"))?;
    let status = helper.status(config, &finished)?;
    let outcome = run.outcome.as_ref().expect("a run to its end has an outcome");
    let end = match outcome.end {
        WriterEnd::Exited { code } => ProcessEnd::Exited(code),
        WriterEnd::Signaled { signal } => ProcessEnd::Signaled(signal),
        // Nothing crashes an enospc writer; a cancel is a timeout or Ctrl-C,
        // which the traced run returned as errors.
        WriterEnd::CrashPoint(_) | WriterEnd::Cancelled => ProcessEnd::Signaled(libc::SIGKILL),
    };
    let delivery = Delivery::Capacity {
        capacity,
        filesystem: fs.name().into(),
        used: status.used,
        free: status.free,
        traced: Some(Box::new(full_disk_trace(outcome, false))),
        not_traced: None,
        power_loss: None,
    };
    let traced = " (under the durability oracle)";
    let crashed = Crashed { crash_at: Duration::ZERO, delivery, end, traced, stderr: run.stderr_first_line() };
    let mut judged = judge_crashed(config, files, plan, crashed, &run.lines, checker, supervision)?;
    if judged.checker.is_violation() && outcome.store_fault.is_some() {
        if let Delivery::Capacity { traced, .. } = &mut judged.delivery {
            *traced = Some(Box::new(full_disk_trace(outcome, true)));
        }
    }
    if after {
        let judged_states = judge_after_full_disk(config, supervision, files, plan, run, replay)?;
        // A state the checker rejects is a violation of the trial, as one
        // in the directory the process left would be.
        if let (CheckerVerdict::Consistent, Some(reason)) = (&judged.checker, judged_states.violation()) {
            judged.checker =
                CheckerVerdict::Violation { reason: format!("at a power loss after the full disk: {reason}") };
        }
        if let Delivery::Capacity { power_loss, .. } = &mut judged.delivery {
            *power_loss = Some(judged_states);
        }
    }
    Ok(TracedEnospc::Judged(Box::new(judged)))
}
