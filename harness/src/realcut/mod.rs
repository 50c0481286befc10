//! Real power cuts on a real kernel, and the simulated power-loss model
//! ([`crate::power_loss`]) checked against them.
//!
//! The simulated model is worth trusting only if no real power cut ever
//! leaves a file it forbids. A **soundness campaign** runs the built-in
//! writers on real filesystems, cuts the power right after the writer dies,
//! reads the file back after the log replay, and asks
//! [`PowerLossModel::allows`](crate::power_loss::PowerLossModel::allows)
//! whether that exact file is one of the states the model allows for the
//! same journal. A file outside the set is a **model soundness violation**:
//! the campaign fails and keeps the evidence. The campaign also measures how
//! conservative the model is: how often the cut kept unsynced data.
//!
//! Backends:
//! - `loopcut` (root): the host kernel; a filesystem image on a loop device;
//!   the cut is `FS_IOC_SHUTDOWN(NOLOGFLUSH)` (ext4, xfs) or an `O_DIRECT`
//!   copy of the device while the dirty pages are still cached (btrfs, which
//!   has no shutdown ioctl). The forking part lives in the single-threaded
//!   realcut worker ([`worker`], its trials in [`cut_trial`]).
//! - `vm` (no root): a guest kernel under qemu (KVM if it works, else TCG), killed with SIGKILL at
//!   a progress point; the ext4 image's journal is replayed on a copy with
//!   `e2fsck` and the file read out with `debugfs` ([`vm`]). Its default
//!   disk (`--disk no-cache`) has no volatile cache: acknowledged writes are
//!   neither reordered nor torn. `--disk volatile-reorder|volatile-torn`
//!   serves the image from a [`volatile_disk::VolatileDisk`] over NBD
//!   ([`nbd`]) instead: writes the guest did not flush before the cut may be
//!   lost, reordered, or torn per sector, and several of the disk states
//!   this allows are checked per cut.
//!
//! Layout: [`sys`] (loop devices, mounts, shutdown, raw copies: RAII
//! guards), [`fs`] (one filesystem image, made once and reused), [`judge`]
//! (pure: a real file against the model), [`protocol`] (worker messages),
//! [`campaign`] (pure: the plan), [`loopcut`] (batches on realcut workers
//! through [`crate::worker_pool`], a campaign aggregated), [`worker`] and
//! [`cut_trial`] (the realcut worker, single-threaded), [`report`] (the
//! soundness report), [`vm`] (the qemu backend), [`volatile_disk`] (pure:
//! a disk with a volatile write cache, the states a cut may leave, their
//! sampling), [`nbd`] (a minimal NBD server for it, on a thread),
//! [`volatile_report`] (the report's section on such a disk) and
//! [`columns`] (running the `power-loss-real` columns of the survival
//! matrix, `matrix --real`; what a column is lives in
//! [`crate::vocab::real_cut`]).
//!
//! Namespace workloads (`soundness --workloads namespace`): the same cuts
//! of small programs that create, rename, unlink and grow files, each
//! post-cut directory judged by the posix namespace model
//! ([`crate::namespace`]): [`ns_workload`] (pure: the workloads' steps, the
//! content of their files, the trace the steps perform, the plan),
//! [`ns_judge`] (pure: a directory against the model's states, each unit
//! kept or lost), [`ns_cut`] (one cut, in the realcut worker) and
//! [`ns_report`] (pure: the report's namespace section).

pub mod campaign;
pub mod columns;
pub mod coverage;
pub mod cut_trial;
pub mod error;
pub mod fs;
pub mod judge;
pub mod loopcut;
pub mod nbd;
pub mod ns_cut;
pub mod ns_judge;
#[cfg(test)]
mod ns_judge_tests;
pub mod ns_report;
pub mod ns_workload;
pub mod pressure;
pub mod protocol;
pub mod report;
pub mod sys;
pub mod vm;
pub mod vm_accel;
pub mod volatile_disk;
pub mod volatile_report;
pub mod worker;

pub use error::{GuestFailure, RealcutError};
