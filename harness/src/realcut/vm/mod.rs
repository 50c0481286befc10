//! The `vm` backend: a real guest kernel under qemu, killed. No root. qemu
//! runs under KVM when a probe guest boots with it, else TCG ([`vm_accel`](super::vm_accel)).
//!
//! The guest: a Debian cloud kernel (unpacked by `scripts/vm-setup.sh`
//! into `$CRASHLAB_VM_DIR`), an initramfs this module builds (static
//! busybox, the virtio modules, the static C writer [`WRITER_C`](initramfs::WRITER_C) compiled
//! here with `gcc -static`, the spec's ops serialized), and an ext4 image
//! holding the file as a virtio disk with `cache=none`. The writer reports
//! its progress on an `isa-debugcon` port (read from qemu's stdout; the
//! serial console lags by kilobytes) and stops before op `k`; qemu is then
//! killed with SIGKILL: the power cut. The journal is replayed on a copy of
//! the image (`e2fsck -fy`) and the file read out (`debugfs -R dump`).
//!
//! What this models, by default ([`VmDisk::NoCache`]): a disk with no
//! volatile write cache. Whatever the guest's block layer had acknowledged
//! is in the image file, whole and in order; nothing acknowledged is
//! reordered or torn. Unsynced data is lost unless the guest kernel wrote it
//! back on its own before the kill.
//!
//! [`VmDisk::Volatile`]: the disk is a [`VolatileDisk`](super::volatile_disk::VolatileDisk) over the pristine
//! image, served by an [`NbdServer`](super::nbd::NbdServer) thread to qemu's NBD client (the guest
//! sees virtio-blk with a write-back cache, so it sends FLUSH). After the
//! kill the disk is handed back with its pending (unflushed) writes; each of
//! the disk states sampled from them ([`sample_states`](super::volatile_disk::sample_states)) is written out as
//! an image and goes through the same e2fsck, debugfs and judge. A state
//! e2fsck cannot repair is a finding of its own, not a soundness violation.
//! With the kernel's default writeback (30 s) the guest writes nothing
//! unsynced within a trial; [`VmGuest::writeback_centisecs`](guest::VmGuest::writeback_centisecs) shortens it.
//!
//! Files, by role:
//! - `mod.rs` (this file): the guest's disk kinds ([`VmDisk`]) and the
//!   sizes and names every part shares.
//! - [`assets`]: what `scripts/vm-setup.sh` installed and the host tools.
//! - [`initramfs`] (pure): what goes into the guest: the ops serialized,
//!   the newc cpio archive, the init script, the kernel command line, the
//!   writer's C source (`writer.c`).
//! - [`guest`]: a guest in a work directory: compile the writer, prepare a
//!   spec, boot and kill qemu, read the writer's progress, one trial.
//! - [`fsck`]: after the cut: `e2fsck -fy` on a copy, `debugfs` dump, and
//!   why a filesystem could not be repaired (the superblock, pure).
//! - [`volatile`]: a cut on a disk with a volatile write cache (NBD), its
//!   sampled disk states checked, aggregated into the report's section.
//! - [`evidence`]: what is kept of a violation or a lost filesystem.
//! - [`runs`]: trials spread over guests (threads), a whole vm campaign.
//! - [`bench`](mod@bench): trials/min against a bare boot-and-kill.

pub mod assets;
pub mod bench;
pub mod evidence;
pub mod fsck;
pub mod guest;
pub mod initramfs;
pub mod runs;
pub mod volatile;

use std::fmt;
use std::path::Path;
use std::time::Duration;

use super::vm_accel::AccelChoice;
use super::volatile_disk::DiskCutMode;
use crate::power_loss::{PowerLossConfig, DEFAULT_TEAR};

/// The guest's ext4 image (the writer's file lives in it).
pub const IMAGE_BYTES: u64 = 32 << 20;
/// The guest's memory (`qemu -m`).
pub const GUEST_MEMORY_BYTES: u64 = 256 << 20;

/// The guest's disk.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash)]
pub enum VmDisk {
    /// The image file itself (virtio-blk, `cache=none`): every write qemu
    /// acknowledged is in the image, whole and in order.
    #[default]
    NoCache,
    /// A [`VolatileDisk`](super::volatile_disk::VolatileDisk) served by the harness over NBD: writes the guest
    /// did not flush (FLUSH or FUA) before the cut may be lost, reordered
    /// or (`torn`) torn per sector.
    Volatile(DiskCutMode),
}

impl VmDisk {
    pub const NAMES: &'static str = "no-cache, volatile-reorder, volatile-torn";

    pub fn name(self) -> &'static str {
        match self {
            VmDisk::NoCache => "no-cache",
            VmDisk::Volatile(DiskCutMode::Reorder) => "volatile-reorder",
            VmDisk::Volatile(DiskCutMode::Torn) => "volatile-torn",
        }
    }

    /// What the disk does with acknowledged writes (the report's
    /// `environment.disk`); `states_per_cut` for a volatile one.
    pub fn describe(self, states_per_cut: usize) -> String {
        match self {
            VmDisk::NoCache => crate::vocab::real_cut::VM_DISK.into(),
            VmDisk::Volatile(mode) => format!(
                "NBD-backed disk with a volatile write cache (qemu's NBD client to a server in the harness, \
                 virtio-blk with a write-back cache in the guest, qemu killed with SIGKILL): {}; per cut, up \
                 to {states_per_cut} of the disk states this allows are checked (all kept, none kept, then seeded \
                 random ones)",
                mode.describe()
            ),
        }
    }

    /// The model a disk's cuts are judged by. A disk that tears sectors
    /// breaks the page-whole model's assumption by construction, so its cuts
    /// are judged by the model that makes the same assumption as the disk:
    /// the torn-sector variant (`power-loss-torn`, 512-byte sectors).
    pub fn verdict_model(self) -> PowerLossConfig {
        match self {
            VmDisk::Volatile(DiskCutMode::Torn) => {
                PowerLossConfig { tear: Some(DEFAULT_TEAR), ..PowerLossConfig::default() }
            }
            VmDisk::NoCache | VmDisk::Volatile(DiskCutMode::Reorder) => PowerLossConfig::default(),
        }
    }

    /// [`Self::verdict_model`] in words (the report's `environment.model`).
    pub fn verdict_model_name(self) -> &'static str {
        match self {
            VmDisk::Volatile(DiskCutMode::Torn) => {
                "power-loss-torn (every 512-byte sector independently at any allowed version), judged byte for byte \
                 by PowerLossModel::allows"
            }
            VmDisk::NoCache | VmDisk::Volatile(DiskCutMode::Reorder) => {
                "power-loss (pages whole), judged byte for byte by PowerLossModel::allows"
            }
        }
    }
}

impl fmt::Display for VmDisk {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl std::str::FromStr for VmDisk {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "no-cache" => Ok(VmDisk::NoCache),
            "volatile-reorder" => Ok(VmDisk::Volatile(DiskCutMode::Reorder)),
            "volatile-torn" => Ok(VmDisk::Volatile(DiskCutMode::Torn)),
            _ => Err(format!("unknown disk `{s}` (expected {})", Self::NAMES)),
        }
    }
}

/// The guest's disk and writeback, for [`runs::run_vm`].
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct VmOptions {
    pub disk: VmDisk,
    /// Volatile disk: disk states checked per cut, at most.
    pub states_per_cut: usize,
    /// [`guest::VmGuest::writeback_centisecs`].
    pub writeback_centisecs: Option<u32>,
    /// KVM or TCG ([`guest::VmGuest::choose_accel`]).
    pub accel: AccelChoice,
}

impl VmOptions {
    /// The flags that select these options on `crashlab soundness` (for
    /// rerun lines): empty for the defaults.
    pub fn args(&self) -> String {
        let mut s = String::new();
        if let VmDisk::Volatile(_) = self.disk {
            s.push_str(&format!(" --disk {} --disk-states {}", self.disk, self.states_per_cut));
        }
        if let Some(cs) = self.writeback_centisecs {
            s.push_str(&format!(" --guest-writeback-cs {cs}"));
        }
        s
    }

    /// The report's `environment.disk`: the disk, and the guest's writeback
    /// when it is not the kernel's default (it decides what reaches the disk
    /// unsynced).
    pub fn describe(&self) -> String {
        let mut s = self.disk.describe(self.states_per_cut);
        if let Some(cs) = self.writeback_centisecs {
            s.push_str(&format!(
                "; guest writeback: vm.dirty_expire_centisecs = vm.dirty_writeback_centisecs = {cs} (dirty pages \
                 written back within about {} ms, with no flush after them), and qemu killed {} ms after the writer \
                 stopped",
                cs * 10 * 2,
                settle_for(cs).as_millis()
            ));
        }
        s
    }
}

/// [`guest::VmGuest::settle_before_cut`] for a writeback interval of `cs` centiseconds.
pub(super) fn settle_for(cs: u32) -> Duration {
    Duration::from_millis((cs as u64 * 10 * 5).max(100))
}

/// A qemu option value with its commas doubled (qemu's escape).
pub(super) fn qemu_escape(p: &Path) -> String {
    p.display().to_string().replace(',', ",,")
}

/// How the vm backend cuts on a volatile disk, in words (the report's `cut_method`).
pub const VOLATILE_CUT_METHOD: &str = "qemu (virtio-blk with a write-back cache on an NBD disk served by the \
                                       harness) SIGKILLed at the writer's stop; per sampled disk state: the image \
                                       materialized, e2fsck -fy on a copy, debugfs dump";

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn vm_disks_parse_and_say_what_they_lose() {
        for d in [VmDisk::NoCache, VmDisk::Volatile(DiskCutMode::Reorder), VmDisk::Volatile(DiskCutMode::Torn)] {
            assert_eq!(d.name().parse::<VmDisk>().unwrap(), d);
        }
        let err = "volatile".parse::<VmDisk>().unwrap_err();
        assert!(err.contains("no-cache, volatile-reorder, volatile-torn"), "{err}");
        assert!(VmDisk::NoCache.describe(4).contains("no volatile write cache"));
        let torn = VmDisk::Volatile(DiskCutMode::Torn).describe(4);
        for words in ["NBD", "volatile write cache", "lost, reordered or torn", "512-byte sector", "up to 4"] {
            assert!(torn.contains(words), "{words}: {torn}");
        }
        assert!(!VmDisk::Volatile(DiskCutMode::Reorder).describe(4).contains("torn"));
        assert_eq!(VmOptions::default().args(), "");
        let o = VmOptions {
            disk: VmDisk::Volatile(DiskCutMode::Torn),
            states_per_cut: 6,
            writeback_centisecs: Some(1),
            ..VmOptions::default()
        };
        assert_eq!(o.args(), " --disk volatile-torn --disk-states 6 --guest-writeback-cs 1");
        assert!(o.describe().contains("dirty_writeback_centisecs = 1"), "{}", o.describe());
    }
}
