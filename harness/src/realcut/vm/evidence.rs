//! What is kept of a vm trial whose file the model forbids, or of a disk
//! state whose filesystem was lost: a `trial.json` saying what happened and
//! the post-cut image (and the file read back).

use std::path::{Path, PathBuf};

use super::fsck::FsckRun;
use super::initramfs::FILE;
use super::{VmDisk, VOLATILE_CUT_METHOD};
use crate::process_model::TrialFacts;
use crate::realcut::judge::RealJudgement;
use crate::realcut::nbd::NbdStats;
use crate::realcut::protocol::RealTrialRecord;
use crate::realcut::sys::copy_sparse;
use crate::realcut::volatile_disk::{DiskCutMode, VolatileDisk};
use crate::realcut::RealcutError;
use crate::spec::WriterSpec;
use crate::vocab::{CutMethod, FsKind};

/// What a kept disk state needs besides its judgement.
pub(super) struct StateEvidence<'a> {
    pub(super) dir: PathBuf,
    /// The materialized state, before e2fsck.
    pub(super) image: &'a Path,
    pub(super) kernel: &'a str,
    pub(super) spec: &'a WriterSpec,
    pub(super) facts: &'a TrialFacts,
    pub(super) mode: DiskCutMode,
    pub(super) state: String,
    pub(super) disk: &'a VolatileDisk,
    pub(super) nbd: &'a NbdStats,
}

pub(super) fn keep_volatile_evidence(
    ev: &StateEvidence<'_>,
    judgement: Option<&RealJudgement>,
    observed: Option<&[u8]>,
    fsck: &FsckRun,
) -> Result<PathBuf, RealcutError> {
    let dir = &ev.dir;
    std::fs::create_dir_all(dir).map_err(RealcutError::sys(format!("cannot create {}", dir.display())))?;
    let what = match judgement {
        Some(_) => {
            "a real power cut (qemu killed) on a disk with a volatile write cache left, in a disk state the \
                    disk model allows, a file the simulated power-loss model forbids"
        }
        None => {
            "a real power cut (qemu killed) on a disk with a volatile write cache left, in a disk state the disk \
                 model allows, an ext4 that e2fsck -fy could not repair or without the file"
        }
    };
    let evidence = serde_json::json!({
        "what": what,
        "kernel_release": ev.kernel,
        "fs": FsKind::Ext4,
        "cut": CutMethod::VmSigkill,
        "cut_method": VOLATILE_CUT_METHOD,
        "disk": VmDisk::Volatile(ev.mode).name(),
        "disk_model": ev.mode.describe(),
        "disk_state": ev.state,
        "pending_writes": ev.disk.pending_extents(),
        "writes_received": ev.disk.writes_received(),
        "nbd": ev.nbd,
        "e2fsck": { "command": fsck.command, "exit": fsck.exit, "output": fsck.output },
        "file": FILE,
        "facts": ev.facts,
        "judgement": judgement,
        "spec": ev.spec,
    });
    std::fs::write(dir.join("trial.json"), serde_json::to_string_pretty(&evidence).expect("serializes"))
        .map_err(RealcutError::sys(format!("cannot write {}", dir.display())))?;
    copy_sparse(ev.image, &dir.join("post-cut-ext4.img"))?;
    if let Some(bytes) = observed {
        let p = dir.join("observed.bin");
        std::fs::write(&p, bytes).map_err(RealcutError::sys(format!("cannot write {}", p.display())))?;
    }
    Ok(dir.to_owned())
}

pub(super) fn keep_vm_evidence(
    dir: &Path,
    disk: &Path,
    rec: &RealTrialRecord,
    spec: &WriterSpec,
    kernel: &str,
) -> Result<PathBuf, RealcutError> {
    std::fs::create_dir_all(dir).map_err(RealcutError::sys(format!("cannot create {}", dir.display())))?;
    let evidence = serde_json::json!({
        "what": "a real power cut (qemu killed) left a file the simulated power-loss model forbids",
        "kernel_release": kernel,
        "fs": rec.fs,
        "cut": rec.cut,
        "cut_method": rec.cut.describe(),
        "file": FILE,
        "facts": rec.facts,
        "judgement": rec.judgement,
        "spec": spec,
    });
    std::fs::write(dir.join("trial.json"), serde_json::to_string_pretty(&evidence).expect("serializes"))
        .map_err(RealcutError::sys(format!("cannot write {}", dir.display())))?;
    copy_sparse(disk, &dir.join("post-cut-ext4.img"))?;
    Ok(dir.to_owned())
}
