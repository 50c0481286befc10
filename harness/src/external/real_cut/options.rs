//! What `--crash power-loss-real` adds to a run's configuration, and
//! whether this process can make real cuts at all.

use std::path::{Path, PathBuf};

use crate::realcut::RealcutError;
use crate::vocab::real_cut::FsKind;
use crate::vocab::writeback::Writeback;

/// What `--crash power-loss-real` needs besides the rest of the config.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RealCutOptions {
    /// `--real-fs`.
    pub fs: FsKind,
    /// Where the post-cut directories the model forbids are kept (each in
    /// `trial-N`); `None`: `crashlab-real-evidence-SEED` in `--dir`.
    pub evidence_dir: Option<PathBuf>,
    /// `--writeback`: pressure started after each trial's setup, stopped
    /// before its cut (`syncfs:US`); `expire:CS` is set by the CLI for the
    /// whole run.
    pub writeback: Writeback,
}

impl Default for RealCutOptions {
    fn default() -> RealCutOptions {
        RealCutOptions { fs: FsKind::Ext4, evidence_dir: None, writeback: Writeback::None }
    }
}

impl RealCutOptions {
    /// The evidence directory of a run of seed `seed` in `--dir` `dir`.
    pub fn evidence_dir(&self, dir: &Path, seed: u64) -> PathBuf {
        self.evidence_dir.clone().unwrap_or_else(|| dir.join(format!("crashlab-real-evidence-{seed}")))
    }
}

/// Why this process cannot make real cuts, if it cannot.
pub fn unavailable() -> Option<String> {
    if !crate::realcut::sys::is_root() {
        return Some(RealcutError::NeedsRoot.to_string());
    }
    None
}
