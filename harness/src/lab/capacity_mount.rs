//! The filesystem of the matrix's `enospc` column: a tmpfs whose free space
//! is set to an exact number of pages before each trial.
//!
//! The lab worker, single-threaded, enters namespaces of its own once
//! ([`crate::private_mount::enter_private_namespaces`]: a user namespace
//! unless it is root, then a mount namespace with every mount private), and mounts one tmpfs per
//! prepared `enospc` writer over a directory beside its other files. No one
//! outside the worker sees the mount, and it vanishes with the worker's
//! namespace however the worker ends (SIGKILL included); only the empty
//! mount-point directory is the worker's to remove.
//!
//! Why a remount rather than a ballast file sized per trial: tmpfs accounts
//! in pages (`Documentation/filesystems/tmpfs.rst`: `size` is "the limit of
//! allocated bytes", rounded up to pages) and `MS_REMOUNT` with a new
//! `size=` sets the limit in one call, refusing a size below what the
//! filesystem holds. A ballast of one page stays allocated so that a
//! capacity of zero free pages is `size=` one page (`size=0` would mean no
//! limit at all). Every trial's capacity is checked with `statvfs`: a trial
//! whose capacity is not exactly what its point says is refused.
//!
//! `huge=never`: a huge page would allocate 512 pages at once and break the
//! page-by-page prediction (`page_allocation`).

use std::fs::File;
use std::path::{Path, PathBuf};

use crate::page_size::page_size;
use crate::private_mount::Mount;
use crate::LabError;

/// A tmpfs over `dir` whose free space a trial sets, holding one ballast
/// page. Unmounted and its directory removed on drop.
pub struct CapacityMount {
    ballast: Option<File>,
    mount: Option<Mount>,
    dir: PathBuf,
    page: u64,
}

impl CapacityMount {
    /// Mount a fresh tmpfs over `dir` (created here, or left empty by a
    /// worker killed before it could remove it). The caller has entered
    /// [`crate::private_mount::enter_private_namespaces`].
    pub fn new(dir: &Path) -> Result<CapacityMount, LabError> {
        let page = page_size();
        match std::fs::create_dir(dir) {
            Err(e) if e.kind() != std::io::ErrorKind::AlreadyExists => {
                return Err(LabError::io(format!("cannot create the enospc mount point {}", dir.display()), e))
            }
            _ => {}
        }
        let mut cm = CapacityMount { ballast: None, mount: None, dir: dir.to_owned(), page };
        let options = format!("size={},huge=never,mode=0700", 2 * page);
        let mount = Mount::new(Path::new("crashlab-enospc"), dir, "tmpfs", &options)
            // Kernels without transparent huge pages refuse `huge=`; they
            // have none to allocate anyway.
            .or_else(|_| {
                Mount::new(Path::new("crashlab-enospc"), dir, "tmpfs", &format!("size={},mode=0700", 2 * page))
            })
            .map_err(|e| LabError::Spec(format!("cannot mount the enospc tmpfs over {}: {e}", dir.display())))?;
        cm.mount = Some(mount);
        let path = dir.join("ballast");
        let ballast = File::options()
            .read(true)
            .write(true)
            .create_new(true)
            .open(&path)
            .map_err(|e| LabError::io(format!("cannot create {}", path.display()), e))?;
        // SAFETY: fallocate on a descriptor we own.
        if unsafe { libc::fallocate(std::os::fd::AsRawFd::as_raw_fd(&ballast), 0, 0, page as libc::off_t) } != 0 {
            let e = std::io::Error::last_os_error();
            return Err(LabError::io(format!("cannot allocate the ballast page {}", path.display()), e));
        }
        cm.ballast = Some(ballast);
        Ok(cm)
    }

    /// The directory the tmpfs is mounted over.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// Leave exactly `pages` pages free (the filesystem must hold only the
    /// ballast: the file under test was punched empty), checked by
    /// `statvfs`.
    pub fn set_free_pages(&self, pages: u64) -> Result<(), LabError> {
        let mount = self.mount.as_ref().expect("mounted until drop");
        let size = (pages + 1) * self.page;
        let refused = |detail: String| {
            LabError::Spec(format!(
                "cannot give the enospc tmpfs {} exactly {pages} free page(s) (size={size}): {detail}",
                self.dir.display()
            ))
        };
        mount.remount(&format!("size={size}")).map_err(|e| refused(e.to_string()))?;
        let free = free_pages(&self.dir).map_err(|e| refused(format!("statvfs: {e}")))?;
        if free != Some(pages) {
            return Err(refused(match free {
                Some(n) => format!("statvfs says {n} page(s) free"),
                None => format!("statvfs counts in blocks other than the {}-byte page", self.page),
            }));
        }
        Ok(())
    }

    /// Does a store into one hole take exactly one page here? The column's
    /// prediction rests on it, so the probe checks it on the machine rather
    /// than assume it (`huge=never` asks for it; with `shmem_enabled` at
    /// `force` it still held on Linux 6.18, since a huge page does not fit
    /// the small capacity, but another kernel may differ). Leaves
    /// `pages_free` (at least 2) free again afterwards.
    pub fn check_one_page_per_store(&self, pages_free: u64) -> Result<(), LabError> {
        self.set_free_pages(pages_free)?;
        let path = self.dir.join("probe");
        let file = File::options()
            .read(true)
            .write(true)
            .create_new(true)
            .open(&path)
            .map_err(|e| LabError::io(format!("cannot create {}", path.display()), e))?;
        let wrote = std::os::unix::fs::FileExt::write_all_at(&file, &vec![1u8; self.page as usize], self.page);
        let free = free_pages(&self.dir);
        drop(file);
        let removed = std::fs::remove_file(&path);
        wrote.map_err(|e| LabError::io(format!("cannot store one page into {}", path.display()), e))?;
        removed.map_err(|e| LabError::io(format!("cannot remove {}", path.display()), e))?;
        match free {
            Ok(Some(n)) if n + 1 == pages_free => Ok(()),
            other => Err(LabError::Spec(format!(
                "a one-page store into a hole of the enospc tmpfs {} did not take exactly one page ({} free \
                 before, {other:?} after; is /sys/kernel/mm/transparent_hugepage/shmem_enabled `force`?)",
                self.dir.display(),
                pages_free
            ))),
        }
    }
}

/// Free pages of the filesystem holding `dir` (`None` when it does not
/// count in pages).
fn free_pages(dir: &Path) -> std::io::Result<Option<u64>> {
    let c = std::ffi::CString::new(std::os::unix::ffi::OsStrExt::as_bytes(dir.as_os_str()))
        .map_err(|_| std::io::Error::other("path contains a NUL byte"))?;
    // SAFETY: statvfs fills the struct we pass; the path is NUL-terminated.
    let mut st: libc::statvfs = unsafe { std::mem::zeroed() };
    if unsafe { libc::statvfs(c.as_ptr(), &mut st) } != 0 {
        return Err(std::io::Error::last_os_error());
    }
    Ok((st.f_frsize as u64 == page_size()).then_some(st.f_bavail as u64))
}

impl Drop for CapacityMount {
    fn drop(&mut self) {
        drop(self.ballast.take());
        drop(self.mount.take());
        let _ = std::fs::remove_dir(&self.dir);
    }
}
