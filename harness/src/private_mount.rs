//! Mounts only this process sees: a user namespace of its own (no root
//! needed), a private mount namespace, and [`Mount`], the guard of one
//! mount (unmounted on drop; the namespace drops it anyway when the last
//! process in it exits, even by SIGKILL).
//!
//! Shared by the real power cuts (`realcut`: loop filesystems, as root),
//! the capacity helper of `run --writer --crash enospc` and the lab's
//! `enospc` column (tmpfs filesystems of a hard capacity, unprivileged):
//! a leaf, so that the lab below `realcut` may use it too.

use std::ffi::CString;
use std::io;
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};

/// A mount or namespace call that failed: what, and the OS error.
#[derive(Debug, thiserror::Error)]
#[error("{what}: {source}")]
pub struct MountError {
    pub what: String,
    pub source: io::Error,
}

fn sys(what: impl Into<String>, source: io::Error) -> MountError {
    MountError { what: what.into(), source }
}

fn cstring(text: &str, what: &str) -> Result<CString, MountError> {
    CString::new(text)
        .map_err(|_| sys(format!("{what} {text:?} contain a NUL byte"), io::ErrorKind::InvalidInput.into()))
}

fn cpath(p: &Path) -> Result<CString, MountError> {
    CString::new(p.as_os_str().as_bytes())
        .map_err(|_| sys(format!("path {} contains a NUL byte", p.display()), io::ErrorKind::InvalidInput.into()))
}

/// Enter namespaces in which this process may mount filesystems no one
/// else sees: a user namespace unless it is root (root needs none, and
/// keeps its rights over the host's files), then a private mount namespace.
/// Call it once, while single-threaded.
pub fn enter_private_namespaces() -> Result<(), MountError> {
    // SAFETY: geteuid has no preconditions.
    if unsafe { libc::geteuid() } != 0 {
        private_user_namespace()?;
    }
    private_mount_namespace()
}

/// A mounted filesystem; unmounted on drop.
pub struct Mount {
    target: PathBuf,
    source: PathBuf,
    mounted: bool,
}

impl Mount {
    pub fn new(source: &Path, target: &Path, fstype: &str, options: &str) -> Result<Mount, MountError> {
        let (s, t) = (cpath(source)?, cpath(target)?);
        let ty = CString::new(fstype).expect("fs names have no NUL");
        let data = cstring(options, "mount options")?;
        // SAFETY: NUL-terminated strings that outlive the call.
        let rc = unsafe {
            libc::mount(
                s.as_ptr(),
                t.as_ptr(),
                ty.as_ptr(),
                0,
                if options.is_empty() { std::ptr::null() } else { data.as_ptr().cast() },
            )
        };
        if rc != 0 {
            return Err(sys(
                format!(
                    "cannot mount {} ({fstype}{}) on {}",
                    source.display(),
                    if options.is_empty() { String::new() } else { format!(", -o {options}") },
                    target.display()
                ),
                io::Error::last_os_error(),
            ));
        }
        Ok(Mount { target: target.to_owned(), source: source.to_owned(), mounted: true })
    }

    /// Change the mounted filesystem's options (`MS_REMOUNT`), e.g. a
    /// tmpfs's `size=`: the kernel refuses a size below what it holds.
    pub fn remount(&self, options: &str) -> Result<(), MountError> {
        let t = cpath(&self.target)?;
        let o = cstring(options, "mount options")?;
        // SAFETY: NUL-terminated strings that outlive the call.
        if unsafe { libc::mount(std::ptr::null(), t.as_ptr(), std::ptr::null(), libc::MS_REMOUNT, o.as_ptr().cast()) }
            != 0
        {
            return Err(sys(
                format!("remount of {} with {options}", self.target.display()),
                io::Error::last_os_error(),
            ));
        }
        Ok(())
    }

    pub fn target(&self) -> &Path {
        &self.target
    }

    /// What was mounted (a device, or a name for a tmpfs).
    pub fn source(&self) -> &Path {
        &self.source
    }

    /// Unmount now, reporting failure.
    pub fn unmount(mut self) -> Result<(), MountError> {
        self.mounted = false;
        let t = cpath(&self.target)?;
        // SAFETY: a NUL-terminated path.
        if unsafe { libc::umount2(t.as_ptr(), 0) } != 0 {
            let e = io::Error::last_os_error();
            // Never leave it mounted: detach lazily, then report.
            unsafe { libc::umount2(t.as_ptr(), libc::MNT_DETACH) };
            return Err(sys(format!("cannot unmount {} from {}", self.source.display(), self.target.display()), e));
        }
        Ok(())
    }
}

impl Drop for Mount {
    fn drop(&mut self) {
        if self.mounted {
            if let Ok(t) = cpath(&self.target) {
                // SAFETY: NUL-terminated path. Lazy if busy: never leave it behind.
                unsafe {
                    if libc::umount2(t.as_ptr(), 0) != 0 {
                        libc::umount2(t.as_ptr(), libc::MNT_DETACH);
                    }
                }
            }
        }
    }
}

/// Move this process into a user namespace of its own whose user and group
/// map to ours (files keep their owner): in it, an unprivileged process may
/// make a mount namespace of its own ([`private_mount_namespace`]) and
/// mount a tmpfs no one else sees. Call it while single-threaded
/// (`CLONE_NEWUSER` requires it).
pub fn private_user_namespace() -> Result<(), MountError> {
    // SAFETY: plain syscalls on no memory of ours.
    let (uid, gid) = unsafe { (libc::getuid(), libc::getgid()) };
    // SAFETY: unshare takes flags only; the caller is single-threaded.
    if unsafe { libc::unshare(libc::CLONE_NEWUSER) } != 0 {
        return Err(sys(
            "cannot enter a user namespace (unshare(CLONE_NEWUSER); are user namespaces disabled, e.g. \
             kernel.unprivileged_userns_clone=0 or a seccomp policy?)",
            io::Error::last_os_error(),
        ));
    }
    // setgroups must be denied before an unprivileged gid_map is written.
    let write =
        |path: &str, text: String| std::fs::write(path, text).map_err(|e| sys(format!("cannot write {path}"), e));
    write("/proc/self/setgroups", "deny".into())?;
    write("/proc/self/uid_map", format!("{uid} {uid} 1"))?;
    write("/proc/self/gid_map", format!("{gid} {gid} 1"))?;
    Ok(())
}

/// Move this process into a mount namespace of its own, with every mount
/// private: its mounts are invisible outside and vanish when it exits, even
/// by SIGKILL (and their autoclear loop devices with them). Call it while
/// single-threaded.
pub fn private_mount_namespace() -> Result<(), MountError> {
    // SAFETY: plain syscalls with valid arguments.
    unsafe {
        if libc::unshare(libc::CLONE_NEWNS) != 0 {
            return Err(sys("unshare(CLONE_NEWNS)", io::Error::last_os_error()));
        }
        let root = CString::new("/").unwrap();
        if libc::mount(
            std::ptr::null(),
            root.as_ptr(),
            std::ptr::null(),
            libc::MS_REC | libc::MS_PRIVATE,
            std::ptr::null(),
        ) != 0
        {
            return Err(sys("making / private in the new mount namespace", io::Error::last_os_error()));
        }
    }
    Ok(())
}
