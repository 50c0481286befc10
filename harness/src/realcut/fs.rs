//! One filesystem image on a loop device, mounted, that real power cuts are
//! done to: made once (mkfs), then cut, remounted and reused trial after
//! trial.

use std::fs::File;
use std::path::{Path, PathBuf};
use std::process::Command;

use super::sys::{copy_device, copy_sparse, LoopDevice};
use super::RealcutError;
use crate::private_mount::Mount;
use crate::vocab::real_cut::{CutMethod, FsKind};

/// Find a program on PATH or in the sbin directories (mkfs lives there).
pub fn find_program(name: &str) -> Option<PathBuf> {
    let path = std::env::var_os("PATH").unwrap_or_default();
    std::env::split_paths(&path)
        .chain(["/usr/local/sbin", "/usr/sbin", "/sbin"].map(PathBuf::from))
        .map(|d| d.join(name))
        .find(|p| p.is_file())
}

/// Run a helper program, turning failure into an error naming the command.
pub fn run_command(program: &Path, args: &[&std::ffi::OsStr]) -> Result<String, RealcutError> {
    let shown = || {
        let mut s = program.display().to_string();
        for a in args {
            s.push(' ');
            s.push_str(&a.to_string_lossy());
        }
        s
    };
    let out = Command::new(program)
        .args(args)
        .stdin(std::process::Stdio::null())
        .output()
        .map_err(|e| RealcutError::Command { command: shown(), detail: e.to_string() })?;
    if !out.status.success() {
        return Err(RealcutError::Command {
            command: shown(),
            detail: format!("{}: {}", out.status, String::from_utf8_lossy(&out.stderr).trim()),
        });
    }
    Ok(String::from_utf8_lossy(&out.stdout).into_owned())
}

/// One filesystem: image, loop device, mount, and the place its copies go.
/// Dropping it unmounts and detaches everything (field order matters: the
/// mount goes before the device).
pub struct LiveFs {
    kind: FsKind,
    image: PathBuf,
    mnt: PathBuf,
    copy_image: PathBuf,
    copy_mnt: PathBuf,
    mount: Option<Mount>,
    dev: LoopDevice,
}

/// A device copy attached and mounted; dropped: unmounted and detached.
pub struct CopyMount {
    mount: Option<Mount>,
    dev: Option<LoopDevice>,
}

impl CopyMount {
    pub fn path(&self) -> &Path {
        self.mount.as_ref().expect("mounted").target()
    }

    /// Unmount and detach, reporting failure.
    pub fn release(mut self) -> Result<(), RealcutError> {
        if let Some(m) = self.mount.take() {
            m.unmount()?;
        }
        if let Some(d) = self.dev.take() {
            d.detach()?;
        }
        Ok(())
    }
}

impl LiveFs {
    /// Make a fresh filesystem image in `dir` (created), attach and mount it.
    pub fn create(kind: FsKind, dir: &Path) -> Result<LiveFs, RealcutError> {
        let (prog, args) = kind.mkfs();
        let program = find_program(prog).ok_or_else(|| {
            RealcutError::Unavailable(format!(
                "{prog} not found (install it: apt-get install -y {}); cannot test {kind}",
                kind.package()
            ))
        })?;
        std::fs::create_dir_all(dir)
            .map_err(|e| RealcutError::Sys { what: format!("cannot create {}", dir.display()), source: e })?;
        let image = dir.join(format!("{kind}.img"));
        let mnt = dir.join("mnt");
        let copy_image = dir.join(format!("{kind}-copy.img"));
        let copy_mnt = dir.join("mnt-copy");
        for d in [&mnt, &copy_mnt] {
            std::fs::create_dir_all(d)
                .map_err(|e| RealcutError::Sys { what: format!("cannot create {}", d.display()), source: e })?;
        }
        let f = File::create(&image).map_err(|e| RealcutError::Sys {
            what: format!("cannot create the image {}", image.display()),
            source: e,
        })?;
        f.set_len(kind.image_size())
            .map_err(|e| RealcutError::Sys { what: format!("cannot size the image {}", image.display()), source: e })?;
        drop(f);
        let mut argv: Vec<&std::ffi::OsStr> = args.iter().map(std::ffi::OsStr::new).collect();
        argv.push(image.as_os_str());
        run_command(&program, &argv)?;
        let dev = LoopDevice::attach(&image, false)?;
        let mount = Mount::new(dev.path(), &mnt, kind.name(), "")?;
        Ok(LiveFs { kind, image, mnt, copy_image, copy_mnt, mount: Some(mount), dev })
    }

    pub fn kind(&self) -> FsKind {
        self.kind
    }

    pub fn mount_point(&self) -> &Path {
        &self.mnt
    }

    pub fn device(&self) -> &Path {
        self.dev.path()
    }

    pub fn image(&self) -> &Path {
        &self.image
    }

    fn mounted(&self) -> Result<&Mount, RealcutError> {
        self.mount.as_ref().ok_or_else(|| {
            RealcutError::Spec(format!(
                "{} ({}) is not mounted after an earlier failure",
                self.mnt.display(),
                self.kind
            ))
        })
    }

    /// The power cut of [`CutMethod::Shutdown`]: nothing more of this
    /// filesystem reaches the device. Then unmount (callers close their
    /// descriptors first).
    pub fn shutdown(&self) -> Result<(), RealcutError> {
        self.mounted()?.shutdown()
    }

    /// Unmount and mount again: the log is replayed, the file shows what the
    /// device held.
    pub fn remount(&mut self) -> Result<(), RealcutError> {
        if let Some(m) = self.mount.take() {
            m.unmount()?;
        }
        self.mount = Some(Mount::new(self.dev.path(), &self.mnt, self.kind.name(), "")?);
        Ok(())
    }

    /// The power cut of [`CutMethod::RawCopy`]: the device's bytes now, into
    /// the copy image. The live filesystem (and its dirty pages) go on.
    pub fn raw_copy(&self) -> Result<u64, RealcutError> {
        copy_device(self.dev.path(), &self.image, self.kind.image_size(), &self.copy_image)
    }

    /// Discard the free space (see [`Mount::trim`]).
    pub fn trim(&self) -> Result<(), RealcutError> {
        self.mounted()?.trim()
    }

    /// Attach and mount the copy made by [`LiveFs::raw_copy`] (its log is
    /// replayed by the mount).
    pub fn mount_copy(&self) -> Result<CopyMount, RealcutError> {
        let dev = LoopDevice::attach(&self.copy_image, false)?;
        let mount = Mount::new(dev.path(), &self.copy_mnt, self.kind.name(), self.kind.copy_mount_options())?;
        Ok(CopyMount { mount: Some(mount), dev: Some(dev) })
    }

    /// Keep the post-cut image at `dest`: the device copy for raw-copy cuts;
    /// for shutdown cuts the image itself, unmounted for the copy.
    pub fn save_image(&mut self, cut: CutMethod, dest: &Path) -> Result<(), RealcutError> {
        match cut {
            CutMethod::RawCopy => copy_sparse(&self.copy_image, dest).map(|_| ()),
            CutMethod::Shutdown => {
                if let Some(m) = self.mount.take() {
                    m.unmount()?;
                }
                let copied = copy_sparse(&self.image, dest);
                self.mount = Some(Mount::new(self.dev.path(), &self.mnt, self.kind.name(), "")?);
                copied.map(|_| ())
            }
            CutMethod::VmSigkill => Err(RealcutError::Spec("a vm-sigkill cut has no loop image".into())),
        }
    }

    /// Unmount and detach, reporting failure (drop does it silently).
    pub fn release(mut self) -> Result<(), RealcutError> {
        if let Some(m) = self.mount.take() {
            m.unmount()?;
        }
        // Move the device out: LiveFs has no Drop, so this is allowed.
        let LiveFs { dev, .. } = self;
        dev.detach()
    }
}
