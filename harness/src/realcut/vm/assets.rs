//! What `scripts/vm-setup.sh` put in the vm directory (the guest kernel,
//! its virtio modules, a static busybox) and the host tools the vm backend
//! runs (qemu, mkfs.ext4, e2fsck, debugfs, gcc); a missing one is named
//! with how to get it.

use std::path::{Path, PathBuf};

use super::initramfs::MODULES;
use crate::realcut::fs::find_program;
use crate::realcut::RealcutError;

/// What `scripts/vm-setup.sh` put in the vm directory, and the host tools.
#[derive(Debug, Clone)]
pub struct VmAssets {
    pub dir: PathBuf,
    pub kernel: PathBuf,
    /// The guest kernel's release (the package's ABI name).
    pub kernel_version: String,
    pub modules: Vec<PathBuf>,
    pub busybox: PathBuf,
    pub qemu: PathBuf,
    pub mkfs: PathBuf,
    pub e2fsck: PathBuf,
    pub debugfs: PathBuf,
    pub gcc: PathBuf,
}

impl VmAssets {
    /// Find everything, or say exactly what is missing and how to get it.
    pub fn locate(dir: Option<&Path>) -> Result<VmAssets, RealcutError> {
        let dir = match dir {
            Some(d) => d.to_owned(),
            None => std::env::var_os("CRASHLAB_VM_DIR").map(PathBuf::from).ok_or_else(|| {
                RealcutError::Unavailable(
                    "the vm backend needs --vm-dir or CRASHLAB_VM_DIR, filled by scripts/vm-setup.sh".into(),
                )
            })?,
        };
        let setup = |what: &str| {
            RealcutError::Unavailable(format!(
                "{what} missing in {}; run CRASHLAB_VM_DIR={} scripts/vm-setup.sh",
                dir.display(),
                dir.display()
            ))
        };
        let file = |name: &str| -> Result<PathBuf, RealcutError> {
            let p = dir.join(name);
            if p.is_file() {
                Ok(p)
            } else {
                Err(setup(&p.display().to_string()))
            }
        };
        let kernel = file("vmlinuz")?;
        let kernel_version = std::fs::read_to_string(file("kernel-version")?)
            .map_err(RealcutError::sys(format!("cannot read {}/kernel-version", dir.display())))?
            .trim()
            .to_string();
        let modules = MODULES.iter().map(|m| file(&format!("modules/{m}.ko"))).collect::<Result<Vec<_>, _>>()?;
        let busybox = file("busybox")?;
        let tool = |name: &str, package: &str| {
            find_program(name).ok_or_else(|| {
                RealcutError::Unavailable(format!(
                    "{name} not found (apt-get install -y --no-install-recommends {package})"
                ))
            })
        };
        Ok(VmAssets {
            kernel,
            kernel_version,
            modules,
            busybox,
            qemu: tool("qemu-system-x86_64", "qemu-system-x86")?,
            mkfs: tool("mkfs.ext4", "e2fsprogs")?,
            e2fsck: tool("e2fsck", "e2fsprogs")?,
            debugfs: tool("debugfs", "e2fsprogs")?,
            gcc: tool("gcc", "gcc libc6-dev")?,
            dir,
        })
    }
}
