//! `--crash enospc`: one trial of a user's writer on a filesystem that
//! fills up, and the capacity it gets.
//!
//! The writer is started through the capacity helper (`crashlab
//! __capacity`, `capacity_helper.rs`): a size-limited tmpfs mounted over
//! the trial directory inside a user + mount namespace of its own, no
//! privilege needed (or, as root with `--capacity-fs ext4`, a small ext4 on
//! a loop device). Nothing is crashed: the full filesystem is the fault.
//! The writer sees what a full disk gives (the kernel's, not crashlab's):
//! `ENOSPC` from `write`, `fallocate`, `ftruncate`-then-`write` and from
//! `fsync` of what it could not allocate, and `SIGBUS` on a store through a
//! `MAP_SHARED` mapping into a page tmpfs cannot back (`../shared/README.md`:
//! a 1 MiB sparse file on a 64 KiB tmpfs, the writer died of SIGBUS). It
//! runs until it ends, however it ends: dying of that SIGBUS, stopping with
//! an error, or running on, are all outcomes, not harness errors; only
//! `--timeout` is. What it left is copied out (tmpfs is the page cache, so
//! the copy is what a process crash at that point leaves) and the checker
//! judges it with the acks printed.
//!
//! The writer runs under the durability oracle (`capacity_traced.rs`), so
//! the report names the first call that saw `ENOSPC` and the store that
//! faulted; where the oracle cannot run (no ptrace, seccomp or `setns`), the
//! trial runs untraced as here, and the report gives how the writer ended
//! and how full the filesystem was, and why it was not traced.

use std::path::{Path, PathBuf};
use std::time::Duration;

use super::capacity_line::HelperLine;
use super::capacity_traced::{run_traced_enospc_trial, TracedEnospc};
use super::checker::Checker;
use super::config::{ExternalConfig, Supervision};
use super::power_loss::StatesReplay;
use super::process::{Stdout, Supervised, Wake};
use super::trial::{judge_crashed, program_env, set_up_trial, timeout_error, Crashed, TrialSlot};
use super::ExternalError;
use crate::program_plan::TrialPlan;
use crate::report::external::{Delivery, TrialOutcome};
use crate::report::external_enospc_power_loss::EnospcPowerLoss;
use crate::vocab::capacity::default_capacity;

/// The capacity of this run's `enospc` trials: `--capacity`, or half of
/// what the clean run's directory `clean_dir` allocated (see
/// [`default_capacity`]).
pub(crate) fn capacity_of_run(config: &ExternalConfig, clean_dir: &Path) -> Result<u64, ExternalError> {
    if let Some(c) = config.capacity {
        return Ok(c);
    }
    let allocated = allocated_bytes(clean_dir).map_err(|e| {
        ExternalError::io(format!("cannot measure what the clean run left in {}", clean_dir.display()), e)
    })?;
    Ok(default_capacity(allocated, crate::page_size::page_size(), config.capacity_fs))
}

/// The bytes the files under `dir` have allocated (their blocks, holes not
/// counted): what they need of a filesystem.
fn allocated_bytes(dir: &Path) -> std::io::Result<u64> {
    use std::os::unix::fs::MetadataExt;
    let mut total = 0;
    for entry in std::fs::read_dir(dir)? {
        let entry = entry?;
        let meta = std::fs::symlink_metadata(entry.path())?;
        if meta.is_dir() {
            total += allocated_bytes(&entry.path())?;
        } else if meta.is_file() {
            total += meta.blocks() * 512;
        }
    }
    Ok(total)
}

/// The capacity helper's executable: `config.capacity_helper`, else this
/// executable (the `crashlab` binary dispatches the helper's subcommand).
fn helper_program(config: &ExternalConfig) -> Result<PathBuf, ExternalError> {
    match &config.capacity_helper {
        Some(p) => Ok(p.clone()),
        None => std::env::current_exe().map_err(|e| {
            ExternalError::io("--crash enospc: cannot find the crashlab executable that runs the capacity helper", e)
        }),
    }
}

/// One `enospc` trial: setup, the writer on a filesystem of `capacity`
/// bytes until it ends, traced if the oracle can run here, the checker on
/// what it left.
pub(crate) fn run_enospc_trial(
    config: &ExternalConfig,
    files: &TrialSlot,
    plan: &TrialPlan,
    capacity: u64,
    checker: &mut Checker,
    supervision: &Supervision<'_>,
    replay: StatesReplay<'_>,
) -> Result<TrialOutcome, ExternalError> {
    let helper = helper_program(config)?;
    if let Some(why) = &config.oracle_unavailable {
        let why = Some(why.clone());
        return run_untraced_enospc_trial(config, files, plan, capacity, &helper, why, checker, supervision);
    }
    match run_traced_enospc_trial(config, files, plan, capacity, &helper, checker, supervision, replay)? {
        TracedEnospc::Judged(outcome) => Ok(*outcome),
        TracedEnospc::Untraceable(why) => {
            run_untraced_enospc_trial(config, files, plan, capacity, &helper, Some(why), checker, supervision)
        }
    }
}

/// One `enospc` trial with the writer run by the capacity helper,
/// untraced; `why` the oracle could not trace it.
#[allow(clippy::too_many_arguments)]
fn run_untraced_enospc_trial(
    config: &ExternalConfig,
    files: &TrialSlot,
    plan: &TrialPlan,
    capacity: u64,
    helper: &Path,
    why: Option<String>,
    checker: &mut Checker,
    supervision: &Supervision<'_>,
) -> Result<TrialOutcome, ExternalError> {
    let seed = set_up_trial(config, files, plan.writer_seed, supervision)?;
    let fs = config.capacity_fs;
    let helper = HelperLine::new(config, helper, files, capacity, false)?;
    let line = &helper.line;
    let mut writer = Supervised::spawn(
        line,
        &files.dir,
        &program_env(&files.dir, &seed),
        Stdout::Lines,
        supervision.die_with_crashlab,
    )?;
    let stop = || supervision.stopped();
    let timeout_at = writer.started() + supervision.timeout;
    if writer.wait_until(timeout_at, &stop)? == Wake::Deadline {
        return Err(timeout_error(&config.writer, supervision, &format!(" on a {capacity}-byte {fs}")));
    }
    let finished = writer.finish(timeout_at, &stop)?.ok_or_else(|| timeout_error(&config.writer, supervision, ""))?;
    let status = helper.status(config, &finished)?;
    let Some(end) = status.end else {
        return Err(helper.failed(config, "it ran no writer", &finished));
    };
    let delivery = Delivery::Capacity {
        capacity,
        filesystem: fs.name().into(),
        used: status.used,
        free: status.free,
        // Without the oracle's record of what the syncs made durable there
        // are no power-loss states to judge: say so, never pass silently.
        power_loss: config.judges_states_after_full_disk().then(|| EnospcPowerLoss::NotJudged {
            reason: format!("not traced ({})", why.as_deref().unwrap_or("the durability oracle could not run")),
        }),
        traced: None,
        not_traced: why,
    };
    let stderr = finished.stderr_first_line();
    let crashed = Crashed { crash_at: Duration::ZERO, delivery, end, traced: "", stderr };
    judge_crashed(config, files, plan, crashed, &finished.lines, checker, supervision)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn allocated_bytes_count_data_blocks_in_subdirectories_and_not_holes() {
        let dir = tempfile::tempdir().unwrap();
        let page = crate::page_size::page_size();
        std::fs::create_dir(dir.path().join("sub")).unwrap();
        std::fs::write(dir.path().join("sub/data"), vec![7u8; 4 * page as usize]).unwrap();
        let hole = std::fs::File::create(dir.path().join("hole")).unwrap();
        hole.set_len(1 << 20).unwrap();
        let bytes = allocated_bytes(dir.path()).unwrap();
        // At least the 4 data pages; far less than the 1 MiB hole.
        assert!(bytes >= 4 * page && bytes < 1 << 19, "{bytes}");
    }
}
