//! One trial of an external run: a fresh directory, setup, the writer
//! crashed as planned, the checker; and the clean (calibration) run.

use std::ffi::OsStr;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use super::checker::{write_acks_file, Checker};
use super::command::CommandLine;
use super::config::{ExternalConfig, Supervision};
use super::process::{AckLines, Finished, Stdout, Supervised, Wake};
use super::sigbus::{data_end, group_members, mapped_files, wait_stopped};
use super::{ExternalError, ENV_DIR, ENV_SEED};
use crate::program_plan::{choose_cut, choose_index, TrialPlan};
use crate::report::checker_verdict::CheckerVerdict;
use crate::report::external::{Delivery, TrialOutcome};
use crate::vocab::process_end::{signal_name, ProcessEnd};
use crate::vocab::CrashKind;

/// How often the `sigbus` crash looks again for a file with a zero tail.
const CUT_RETRY: Duration = Duration::from_millis(1);

/// Where trials run: a directory and its acks file (a sibling, outside the
/// directory the checker judges). One per job, emptied before each trial
/// rather than made anew: removing a directory is slow on some filesystems
/// (about a millisecond on ext4 mounted with `discard`). The run's temporary
/// directory removes both at the end.
pub(crate) struct TrialSlot {
    pub dir: PathBuf,
    pub acks: PathBuf,
}

impl TrialSlot {
    /// `run_dir` must be canonical: the kernel prints canonical paths in
    /// `/proc/PID/maps`, and the programs get this path as `CRASHLAB_DIR`.
    pub fn create(run_dir: &Path, name: &str) -> Result<TrialSlot, ExternalError> {
        let dir = run_dir.join(name);
        std::fs::create_dir(&dir)
            .map_err(|e| ExternalError::io(format!("cannot create the trial directory {}", dir.display()), e))?;
        Ok(TrialSlot { dir, acks: run_dir.join(format!("{name}.acks")) })
    }

    /// Make the directory empty again.
    pub(crate) fn clear(&self) -> Result<(), ExternalError> {
        let fail = |e| ExternalError::io(format!("cannot empty the trial directory {}", self.dir.display()), e);
        for entry in std::fs::read_dir(&self.dir).map_err(fail)? {
            let entry = entry.map_err(fail)?;
            let path = entry.path();
            let removed = if entry.file_type().map_err(fail)?.is_dir() {
                std::fs::remove_dir_all(&path)
            } else {
                std::fs::remove_file(&path)
            };
            removed.map_err(fail)?;
        }
        Ok(())
    }
}

/// What the clean run found.
#[derive(Debug, Clone)]
pub(crate) struct CleanOutcome {
    pub writer_seed: u64,
    pub duration: Duration,
    pub acks: Vec<String>,
    pub checker: CheckerVerdict,
}

pub(crate) fn program_env<'a>(dir: &'a Path, seed: &'a str) -> [(&'static str, &'a OsStr); 2] {
    [(ENV_DIR, dir.as_os_str()), (ENV_SEED, OsStr::new(seed))]
}

pub(crate) fn timeout_error(line: &CommandLine, supervision: &Supervision<'_>, while_doing: &str) -> ExternalError {
    ExternalError::Timeout {
        role: line.role,
        flag: line.role.flag(),
        command: line.text.clone(),
        secs: supervision.timeout_secs(),
        while_doing: while_doing.to_owned(),
    }
}

pub(crate) fn failed(line: &CommandLine, how: String, finished: &Finished) -> ExternalError {
    ExternalError::Failed {
        role: line.role,
        flag: line.role.flag(),
        command: line.text.clone(),
        how,
        stderr: finished.stderr_first_line().map(|l| format!(" (stderr: {l})")).unwrap_or_default(),
    }
}

fn ended_text(end: ProcessEnd) -> String {
    match end {
        ProcessEnd::Exited(c) => format!("exited with status {c}"),
        ProcessEnd::Signaled(_) => format!("died of {end}"),
    }
}

/// For a writer that died of SIGBUS that crashlab did not cause: how much
/// room the filesystem of `dir` has left. A store through a shared mapping
/// into a page the filesystem cannot allocate (a full disk or tmpfs) raises
/// SIGBUS, which otherwise reads like a bug of the writer's.
pub(crate) fn sigbus_hint(end: ProcessEnd, dir: &Path) -> String {
    if end != ProcessEnd::Signaled(libc::SIGBUS) {
        return String::new();
    }
    let Some((free, _)) = crate::disk_space::disk_space(dir) else { return String::new() };
    if free < crate::page_size::page_size() {
        format!(
            " (the filesystem of {} has {free} bytes free: a store into a page the filesystem could not allocate raises SIGBUS)",
            dir.display()
        )
    } else {
        format!(
            " (the filesystem of {} has {free} bytes free, so not a full disk; a store past the end of a mapped file raises SIGBUS too)",
            dir.display()
        )
    }
}

pub(crate) fn run_setup(
    config: &ExternalConfig,
    dir: &Path,
    seed: &str,
    supervision: &Supervision<'_>,
) -> Result<(), ExternalError> {
    let Some(setup) = &config.setup else { return Ok(()) };
    let mut child =
        Supervised::spawn(setup, dir, &program_env(dir, seed), Stdout::Discard, supervision.die_with_crashlab)?;
    let until = child.started() + supervision.timeout;
    let finished =
        child.finish(until, &|| supervision.stopped())?.ok_or_else(|| timeout_error(setup, supervision, ""))?;
    if finished.end != ProcessEnd::Exited(0) {
        return Err(failed(setup, ended_text(finished.end), &finished));
    }
    Ok(())
}

/// The start of every trial: the slot emptied and the setup run in it with
/// the trial's writer seed; returns that seed as the programs get it.
pub(crate) fn set_up_trial(
    config: &ExternalConfig,
    files: &TrialSlot,
    writer_seed: u64,
    supervision: &Supervision<'_>,
) -> Result<String, ExternalError> {
    files.clear()?;
    let seed = writer_seed.to_string();
    run_setup(config, &files.dir, &seed, supervision)?;
    Ok(seed)
}

pub(crate) fn lossy(lines: &[Vec<u8>]) -> Vec<String> {
    lines.iter().map(|l| String::from_utf8_lossy(l).into_owned()).collect()
}

/// Setup, writer to completion, checker: proves the pair works uncrashed
/// and measures how long the writer takes.
pub(crate) fn run_clean(
    config: &ExternalConfig,
    files: &TrialSlot,
    checker: &mut Checker,
    supervision: &Supervision<'_>,
) -> Result<CleanOutcome, ExternalError> {
    let writer_seed = TrialPlan::clean_writer_seed(config.seed);
    let seed = set_up_trial(config, files, writer_seed, supervision)?;
    let mut writer = Supervised::spawn(
        &config.writer,
        &files.dir,
        &program_env(&files.dir, &seed),
        Stdout::Lines,
        supervision.die_with_crashlab,
    )?;
    let stop = || supervision.stopped();
    if writer.wait_until(writer.started() + supervision.timeout, &stop)? == Wake::Deadline {
        return Err(timeout_error(&config.writer, supervision, ""));
    }
    let duration = writer.exited_at().unwrap_or_else(Instant::now) - writer.started();
    let finished = writer.finish(Instant::now() + supervision.timeout, &stop)?.expect("the writer has exited");
    if finished.end != ProcessEnd::Exited(0) {
        return Err(failed(
            &config.writer,
            format!(
                "{}{} on the clean run (no crash); a writer must exit 0 when left alone",
                ended_text(finished.end),
                sigbus_hint(finished.end, &files.dir)
            ),
            &finished,
        ));
    }
    write_acks_file(&files.acks, &finished.lines.lines)?;
    let checker = checker.check(&files.dir, &files.acks, writer_seed, supervision)?;
    Ok(CleanOutcome { writer_seed, duration, acks: lossy(&finished.lines.lines), checker })
}

/// One crash trial, following `plan`; `clean` is the calibrated duration.
pub(crate) fn run_trial(
    config: &ExternalConfig,
    files: &TrialSlot,
    plan: &TrialPlan,
    clean: Duration,
    checker: &mut Checker,
    supervision: &Supervision<'_>,
) -> Result<TrialOutcome, ExternalError> {
    let seed = set_up_trial(config, files, plan.writer_seed, supervision)?;
    let mut writer = Supervised::spawn(
        &config.writer,
        &files.dir,
        &program_env(&files.dir, &seed),
        Stdout::Lines,
        supervision.die_with_crashlab,
    )?;
    let stop = || supervision.stopped();
    let start = writer.started();
    let timeout_at = start + supervision.timeout;
    let crash_after = plan.crash_after(clean);
    let delivery = match writer.wait_until(start + crash_after, &stop)? {
        Wake::Exited => Delivery::WriterFinishedFirst,
        Wake::Deadline => match plan.crash {
            CrashKind::Sigkill | CrashKind::Abort => {
                let sig = if plan.crash == CrashKind::Sigkill { libc::SIGKILL } else { libc::SIGABRT };
                writer.signal_group(sig);
                Delivery::Signal { signal: signal_name(sig) }
            }
            CrashKind::Sigbus => cut_a_mapped_file(&mut writer, &files.dir, plan, timeout_at, supervision)?,
            // Power-loss trials run in `power_loss`, `enospc` trials in
            // `capacity`, never here; `clean` is refused by
            // `ExternalConfig::validate` (the clean run is `run_clean`).
            CrashKind::PowerLoss
            | CrashKind::PowerLossReal
            | CrashKind::EioSync
            | CrashKind::Enospc
            | CrashKind::Clean => {
                unreachable!("only process-crash trials run here, not {}", plan.crash)
            }
        },
    };
    let finished = writer
        .finish(timeout_at, &stop)?
        .ok_or_else(|| timeout_error(&config.writer, supervision, &format!(" after {delivery}")))?;
    let stderr = finished.stderr_first_line();
    let crashed = Crashed { crash_at: crash_after, delivery, end: finished.end, traced: "", stderr };
    judge_crashed(config, files, plan, crashed, &finished.lines, checker, supervision)
}

/// How a trial's writer was crashed and ended.
pub(crate) struct Crashed {
    /// The planned crash time (zero for a crash at a traced call).
    pub crash_at: Duration,
    pub delivery: Delivery,
    pub end: ProcessEnd,
    /// Said after "before it was crashed" when it ended on its own.
    pub traced: &'static str,
    /// The first line of its standard error.
    pub stderr: Option<String>,
}

/// The end of every process-crash trial, traced or not: a writer that
/// [`ended_on_its_own`] is an error; else the acks file, the checker, and
/// the outcome.
pub(crate) fn judge_crashed(
    config: &ExternalConfig,
    files: &TrialSlot,
    plan: &TrialPlan,
    crashed: Crashed,
    lines: &AckLines,
    checker: &mut Checker,
    supervision: &Supervision<'_>,
) -> Result<TrialOutcome, ExternalError> {
    let Crashed { crash_at, delivery, end, traced, stderr } = crashed;
    if ended_on_its_own(plan.crash, &delivery, end) {
        return Err(failed_on_its_own(&config.writer, end, &files.dir, traced, stderr));
    }
    write_acks_file(&files.acks, &lines.lines)?;
    let checker = checker.check(&files.dir, &files.acks, plan.writer_seed, supervision)?;
    Ok(TrialOutcome {
        plan: *plan,
        crash_at_ns: crash_at.as_nanos() as u64,
        delivery,
        writer_end: end,
        acks: lossy(&lines.lines),
        partial_line: (!lines.partial.is_empty()).then(|| String::from_utf8_lossy(&lines.partial).into_owned()),
        checker,
    })
}

/// Did the writer end in a way the crash does not explain? The crash
/// explains any end (a writer may handle SIGABRT, or run on after a cut),
/// except that after SIGKILL it can only have died of it or exited 0 just
/// before; without a crash, the writer must have succeeded.
fn ended_on_its_own(crash: CrashKind, delivery: &Delivery, end: ProcessEnd) -> bool {
    match delivery {
        Delivery::WriterFinishedFirst | Delivery::NothingToCut => end != ProcessEnd::Exited(0),
        Delivery::Signal { .. } | Delivery::Call { .. } if crash == CrashKind::Sigkill => {
            !matches!(end, ProcessEnd::Exited(0) | ProcessEnd::Signaled(libc::SIGKILL))
        }
        // A full filesystem explains any end: dying of its SIGBUS, stopping
        // on ENOSPC, or running on.
        Delivery::Signal { .. } | Delivery::Call { .. } | Delivery::Truncation { .. } | Delivery::Capacity { .. } => {
            false
        }
    }
}

/// The error of a writer that [`ended_on_its_own`]; `stderr` its first line.
fn failed_on_its_own(
    line: &CommandLine,
    end: ProcessEnd,
    dir: &Path,
    traced: &str,
    stderr: Option<String>,
) -> ExternalError {
    ExternalError::Failed {
        role: line.role,
        flag: line.role.flag(),
        command: line.text.clone(),
        how: format!("{}{} on its own, before it was crashed{traced}", ended_text(end), sigbus_hint(end, dir)),
        stderr: stderr.map(|l| format!(" (stderr: {l})")).unwrap_or_default(),
    }
}

/// The `sigbus` crash: as soon as the writer has mapped a file in `dir` with
/// an all-zero tail past a page boundary, stop its group, cut that tail
/// (file and length from the plan), and let it continue.
fn cut_a_mapped_file(
    writer: &mut Supervised,
    dir: &Path,
    plan: &TrialPlan,
    timeout_at: Instant,
    supervision: &Supervision<'_>,
) -> Result<Delivery, ExternalError> {
    let page = crate::page_size::page_size();
    let pgid = writer.pid();
    loop {
        if !mapped_files(pgid, dir).is_empty() {
            writer.signal_group(libc::SIGSTOP);
            let resumed = |w: &Supervised| w.signal_group(libc::SIGCONT);
            if let Err(e) = wait_stopped(&group_members(pgid), Duration::from_secs(1)) {
                resumed(writer);
                return Err(e);
            }
            // Look again now that nothing moves: the ends of data are exact.
            let mut candidates = Vec::new();
            for path in mapped_files(pgid, dir) {
                let cut = std::fs::OpenOptions::new().read(true).write(true).open(&path).and_then(|f| {
                    let len = f.metadata()?.len();
                    let end = data_end(&f, len)?;
                    Ok((f, len, end))
                });
                match cut {
                    Ok((f, len, end)) if choose_cut(len, end, page, plan.cut_seed).is_some() => {
                        candidates.push((path, f, len, end))
                    }
                    Ok(_) => {}
                    Err(e) => {
                        resumed(writer);
                        return Err(ExternalError::io(format!("cannot inspect {}", path.display()), e));
                    }
                }
            }
            if !candidates.is_empty() {
                let (path, file, len, end) = &candidates[choose_index(candidates.len(), plan.cut_seed)];
                let to = choose_cut(*len, *end, page, plan.cut_seed).expect("candidates have a cut");
                let result = file.set_len(to);
                resumed(writer);
                result.map_err(|e| ExternalError::io(format!("cannot truncate {}", path.display()), e))?;
                return Ok(Delivery::Truncation {
                    file: path.strip_prefix(dir).unwrap_or(path).display().to_string(),
                    from_len: *len,
                    to_len: to,
                    data_end: *end,
                });
            }
            resumed(writer);
        }
        let now = Instant::now();
        if now >= timeout_at || writer.wait_until(now + CUT_RETRY, &|| supervision.stopped())? == Wake::Exited {
            return Ok(Delivery::NothingToCut);
        }
    }
}
