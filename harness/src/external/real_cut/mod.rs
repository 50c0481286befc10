//! `--crash power-loss-real`: real power cuts of a user's program, judged
//! by the user's checker and, against the simulated power-loss model of the
//! same trace, by crashlab.
//!
//! # What a trial does
//!
//! Once per run, a fresh filesystem (`--real-fs ext4|xfs|btrfs`, default
//! ext4) is made on a loop device and mounted ([`crate::realcut::fs`]); the
//! writer's traced clean run there gives the crash points. Then, one trial
//! after another (never two at once: a sync of one trial's files would
//! commit the other's pending operations on a journalling filesystem):
//!
//! 1. a fresh trial directory on the mounted filesystem; the `--setup`
//!    command runs there; then `syncfs`: the model treats the setup's
//!    directory as durable, so the real one is made so (the only sync
//!    crashlab makes);
//! 2. the writer runs under the durability oracle and is killed at the
//!    trial's crash point, exactly as for `--crash power-loss` (the same
//!    [`PowerLossPlan`]: trial N of both kinds crashes at the same point),
//!    and the oracle's images and the namespace trace give the simulated
//!    state space;
//! 3. the power is cut: ext4 and xfs by `FS_IOC_SHUTDOWN(NOLOGFLUSH)`, then
//!    unmount and mount (log replay); btrfs by an `O_DIRECT` copy of the
//!    device, mounted on its own;
//! 4. the post-cut directory is read (names, directories, symlinks,
//!    bytes), copied out of the filesystem, and the user's checker runs on
//!    the copy with the acks of step 2 (exit 1: a violation, a result);
//! 5. the directory is judged against the model
//!    ([`crate::external::power_loss::membership`]): allowed (and which
//!    open units and operations the cut kept: coverage), or a **model
//!    soundness violation**, whose directory is kept under the evidence
//!    directory with a rerun line.
//!
//! The writer is killed (step 2) before the cut (step 3), not held stopped
//! during it. That changes nothing the model can see: once the writer is
//! dead nothing writes to its files, and all the kernel can do before the
//! cut is write back some of their dirty pages and commit some of their
//! pending operations, i.e. move units toward their newest content and
//! operations toward persisted, every one of which the model already
//! allows; and crashlab syncs nothing in between.
//!
//! # Limits
//!
//! - One real-cut run per process at a time: the oracle's launcher is a
//!   fork that lives as long as its writer and holds every descriptor the
//!   process had open when it was forked; if another run in the same
//!   process has its oracle's descriptors into this run's filesystem then,
//!   the unmount of the cut fails (`EBUSY`, an error naming the mount). The
//!   CLI runs one run per process; tests that run several in one process
//!   take turns.
//! - Without writeback pressure most unsynced data is simply lost by the
//!   cut (the kernel writes dirty pages back after 30 s): the cuts mostly
//!   exercise the floor side of the model. The coverage says which open
//!   choices no cut exercised.
//! - The write history is a sample (see [`crate::external::power_loss`]):
//!   a page the kernel wrote back at a version the oracle never saw (one it
//!   held only between two trapped calls) would be reported as outside the
//!   model. Writeback within a trial comes from the writer's own syncs,
//!   which are trapped calls, so the versions they write are seen.
//!
//! # Cleanup
//!
//! The mounts, loop devices and the image are released on every path
//! (error, `--timeout`, Ctrl-C: the filesystem's guard is dropped), and
//! the work directory removed; the evidence directory is kept.

pub mod options;
mod post_cut;

use std::fmt::Write as _;
use std::path::Path;
use std::time::Duration;

use super::checker::{write_acks_file, Checker};
use super::config::{ExternalConfig, Supervision};
use super::power_loss::membership::judge;
use super::power_loss::{calibrate, trace_trial_with, PowerLossPlan};
use super::trial::TrialSlot;
use super::{canonical, ExternalError};
use crate::realcut::fs::LiveFs;
use crate::realcut::pressure::{start_pressure, PressureGuard};
use crate::realcut::RealcutError;
use crate::report::external::ExternalRunConfig;
use crate::report::external_power_loss::PowerLossCalibration;
use crate::report::external_real_cut::{RealCutSection, RealCutTrial};
use crate::vocab::real_cut::{CutMethod, FsKind};
use options::unavailable;

fn real(fs: FsKind) -> impl Fn(RealcutError) -> ExternalError {
    move |error| ExternalError::RealCut { fs, error }
}

/// `syncfs` of the filesystem holding `dir`.
fn sync_fs(dir: &Path) -> Result<(), ExternalError> {
    let f = std::fs::File::open(dir).map_err(|e| ExternalError::io(format!("cannot open {}", dir.display()), e))?;
    // SAFETY: syncfs on a descriptor we hold.
    if unsafe { libc::syncfs(std::os::unix::io::AsRawFd::as_raw_fd(&f)) } != 0 {
        return Err(ExternalError::io(format!("syncfs of {}", dir.display()), std::io::Error::last_os_error()));
    }
    Ok(())
}

/// Run the `power-loss-real` trials of `config` (`work` is the run's
/// temporary directory, outside any test filesystem).
pub(crate) fn run_real_cut_trials(
    config: &ExternalConfig,
    work: &Path,
    supervision: &Supervision<'_>,
) -> Result<RealCutSection, ExternalError> {
    let fs_kind = config.real_cut.fs;
    if let Some(why) = unavailable() {
        return Err(ExternalError::BadInput(format!("--crash power-loss-real: {why}")));
    }
    let fs_dir = work.join(format!("real-{fs_kind}"));
    let mut fs = LiveFs::create(fs_kind, &fs_dir).map_err(real(fs_kind))?;
    let result = run_on(config, work, &mut fs, supervision);
    // Released (unmounted, detached) on every path; a failure to release
    // is reported unless the run already failed.
    let released = fs.release().map_err(real(fs_kind));
    let section = result?;
    released?;
    Ok(section)
}

fn run_on(
    config: &ExternalConfig,
    work: &Path,
    fs: &mut LiveFs,
    supervision: &Supervision<'_>,
) -> Result<RealCutSection, ExternalError> {
    let kind = fs.kind();
    let mnt = canonical(fs.mount_point())?;
    let calibration = {
        let slot = TrialSlot::create(&mnt, "calibration")?;
        let c = calibrate(config, &slot, supervision).map_err(|e| ExternalError::InTrial {
            trial: format!("the clean run under the durability oracle on {kind}"),
            replay: rerun_line(&config.run_config(), config.seed, 0),
            error: Box::new(e),
        })?;
        std::fs::remove_dir_all(&slot.dir)
            .map_err(|e| ExternalError::io(format!("cannot remove {}", slot.dir.display()), e))?;
        c
    };
    let calls = calibration.crash_point_calls(config.points);
    let mut checker = Checker::for_job(config, work.join("real-server"));
    let mut outcomes = Vec::new();
    for trial in config.trial_indices() {
        if supervision.stopped() {
            return Err(ExternalError::Interrupted);
        }
        let plan = PowerLossPlan::new(config.seed, trial, calls, config.points);
        let rerun = rerun_line(&config.run_config(), config.seed, trial);
        let outcome = one_trial(config, work, fs, &mnt, &plan, &calibration, &mut checker, supervision, &rerun)
            .map_err(|e| match e {
                ExternalError::Interrupted => e,
                e => ExternalError::InTrial {
                    trial: format!("power-loss-real trial {trial} on {kind}"),
                    replay: rerun.clone(),
                    error: Box::new(e),
                },
            })?;
        config.progress.trial_done();
        outcomes.push(outcome);
    }
    Ok(RealCutSection::of(kind, config.power_loss.fs_model.name(), calibration, outcomes))
}

#[allow(clippy::too_many_arguments)]
fn one_trial(
    config: &ExternalConfig,
    work: &Path,
    fs: &mut LiveFs,
    mnt: &Path,
    plan: &PowerLossPlan,
    calibration: &PowerLossCalibration,
    checker: &mut Checker,
    supervision: &Supervision<'_>,
    rerun: &str,
) -> Result<RealCutTrial, ExternalError> {
    let kind = fs.kind();
    let name = format!("trial-{}", plan.trial);
    let slot = TrialSlot::create(mnt, &name)?;
    let clean = Duration::from_nanos(calibration.traced_clean_ns);
    // `--writeback syncfs:US`: the helper runs from the setup's sync (the
    // model's durable start) until the writer is dead, and is stopped
    // before the cut: a syncfs after the writer's death could only move
    // pages toward their newest content, and a raw copy (btrfs) must not
    // race a syncfs rewriting the device.
    let mut pressure = PressureGuard::idle();
    let traced = trace_trial_with(config, &slot, plan, clean, supervision, &mut || {
        sync_fs(&slot.dir)?;
        pressure = start_pressure(config.real_cut.writeback, mnt).map_err(real(kind))?;
        Ok(())
    });
    pressure.stop().map_err(real(kind))?;
    let traced = traced?;
    // The cut. Nothing between the writer's death and here synced anything.
    let post_cut = match kind.default_cut() {
        CutMethod::RawCopy => {
            fs.raw_copy().map_err(real(kind))?;
            let copy = fs.mount_copy().map_err(real(kind))?;
            let read = post_cut::read_dir(&copy.path().join(&name));
            copy.release().map_err(real(kind))?;
            read?
        }
        _ => {
            fs.shutdown().map_err(real(kind))?;
            fs.remount().map_err(real(kind))?;
            post_cut::read_dir(&slot.dir)?
        }
    };
    std::fs::remove_dir_all(&slot.dir)
        .map_err(|e| ExternalError::io(format!("cannot remove {}", slot.dir.display()), e))?;
    if kind.default_cut() == CutMethod::RawCopy {
        // Keep the next raw copy small: the free space discarded.
        fs.trim().map_err(real(kind))?;
    }
    // The user's checker, on a copy outside the test filesystem.
    let copy = work.join("post-cut");
    if copy.exists() {
        std::fs::remove_dir_all(&copy)
            .map_err(|e| ExternalError::io(format!("cannot remove {}", copy.display()), e))?;
    }
    post_cut::write_dir(&copy, &post_cut)?;
    let acks = work.join("post-cut.acks");
    write_acks_file(&acks, &traced.lines.lines)?;
    let verdict = checker.check(&copy, &acks, plan.writer_seed, supervision)?;
    let membership = judge(&traced.space, &post_cut);
    let evidence = if !membership.allowed && !membership.not_judged {
        let dest = config.real_cut.evidence_dir(&config.dir, config.seed).join(&name);
        post_cut::keep_evidence(&dest, &post_cut, &membership, &traced.lines.lines, rerun)?;
        Some(dest.display().to_string())
    } else {
        None
    };
    Ok(RealCutTrial {
        plan: *plan,
        delivery: traced.delivery.clone(),
        acks: traced.lines.lines.len() as u64,
        checker: verdict,
        membership,
        evidence,
        rerun: rerun.to_owned(),
    })
}

/// The command that reruns the `power-loss-real` trials up to `trial`
/// (the same seed gives the same crash points; a real cut at a sync call
/// reruns exactly for a deterministic writer, what the kernel had written
/// back by then need not).
pub fn rerun_line(c: &ExternalRunConfig, seed: u64, trial: u32) -> String {
    let mut line = format!(
        "crashlab run{} --crash power-loss-real --real-fs {} --seed {seed} --trials {}{}",
        c.program_flags(),
        c.real_fs.unwrap_or(FsKind::Ext4),
        trial + 1,
        c.model_flags()
    );
    if let Some(w) = c.writeback {
        let _ = write!(line, " --writeback {w}");
    }
    if c.allow_no_acks {
        line.push_str(" --allow-no-acks");
    }
    let _ = write!(line, " --timeout {}", c.timeout_secs);
    line
}
