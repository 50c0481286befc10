//! Which pages of a traced process's shared file mappings were written since
//! the last look, without reading them: a userfaultfd in **asynchronous
//! write-protect** mode (`UFFD_FEATURE_WP_ASYNC`: the kernel resolves a
//! write fault itself, by un-protecting the page, no handler thread) and
//! the `PAGEMAP_SCAN` ioctl on `/proc/PID/pagemap`, which reports the pages
//! written (no longer protected) and protects them again in one call
//! (`PM_SCAN_WP_MATCHING`). Measured here (`../shared/README.md`) to report
//! exactly the pages a process wrote, across processes, on `MAP_SHARED`
//! file mappings of ext4, xfs, btrfs and tmpfs (synchronous WP mode is
//! refused on those filesystems; the asynchronous one is not).
//!
//! The userfaultfd must be *created* by the traced process (its context is
//! the address space of its creator): the tracer injects the
//! `userfaultfd(2)` call (`tracer/write_protect.rs`), takes a duplicate with
//! `pidfd_getfd(2)` and closes the writer's own. Everything else (the
//! `UFFDIO_API` handshake, `UFFDIO_REGISTER`, the scans) the tracer does on
//! its duplicate: a userfaultfd acts on its creator's address space
//! whoever calls it (fs/userfaultfd.c works on `ctx->mm`), and the
//! duplicate keeps the registration alive after the writer's copy is
//! closed.
//!
//! Constants and layouts from include/uapi/linux/userfaultfd.h and
//! include/uapi/linux/fs.h (`struct pm_scan_arg`, `struct page_region`).

use std::fs::File;
use std::io;
use std::os::fd::{AsRawFd, OwnedFd};

const UFFD_API: u64 = 0xAA;
const UFFD_FEATURE_WP_HUGETLBFS_SHMEM: u64 = 1 << 12;
const UFFD_FEATURE_WP_UNPOPULATED: u64 = 1 << 13;
const UFFD_FEATURE_WP_ASYNC: u64 = 1 << 15;
/// `_IOWR(0xAA, 0x3F, struct uffdio_api)` (24 bytes).
const UFFDIO_API: libc::c_ulong = 0xC018_AA3F;
/// `_IOWR(0xAA, 0x00, struct uffdio_register)` (32 bytes).
const UFFDIO_REGISTER: libc::c_ulong = 0xC020_AA00;
const UFFDIO_REGISTER_MODE_WP: u64 = 1 << 1;
/// `userfaultfd(2)` flags: only user-mode faults (what an unprivileged
/// process may ask for when `vm.unprivileged_userfaultfd` is 0; asynchronous
/// write protection never calls a handler anyway).
pub const UFFD_USER_MODE_ONLY: u64 = 1;

/// `_IOWR('f', 16, struct pm_scan_arg)` (96 bytes).
const PAGEMAP_SCAN: libc::c_ulong = 0xC060_6610;
const PM_SCAN_WP_MATCHING: u64 = 1 << 0;
const PM_SCAN_CHECK_WPASYNC: u64 = 1 << 1;
const PAGE_IS_WRITTEN: u64 = 1 << 1;

#[repr(C)]
struct UffdioApi {
    api: u64,
    features: u64,
    ioctls: u64,
}

#[repr(C)]
struct UffdioRegister {
    start: u64,
    len: u64,
    mode: u64,
    ioctls: u64,
}

#[repr(C)]
struct PmScanArg {
    size: u64,
    flags: u64,
    start: u64,
    end: u64,
    walk_end: u64,
    vec: u64,
    vec_len: u64,
    max_pages: u64,
    category_inverted: u64,
    category_mask: u64,
    category_anyof_mask: u64,
    return_mask: u64,
}

#[repr(C)]
#[derive(Clone, Copy, Default)]
struct PageRegion {
    start: u64,
    end: u64,
    categories: u64,
}

/// Write tracking of one address space: the tracer's duplicate of a
/// userfaultfd its creator made, and that process's pagemap.
pub(super) struct WriteTracking {
    uffd: OwnedFd,
    pagemap: File,
}

impl WriteTracking {
    /// Enable asynchronous write protection on `uffd` (the tracer's
    /// duplicate of one `pid` created) and open `pid`'s pagemap.
    pub(super) fn new(uffd: OwnedFd, pid: libc::pid_t) -> io::Result<WriteTracking> {
        let mut api = UffdioApi {
            api: UFFD_API,
            features: UFFD_FEATURE_WP_ASYNC | UFFD_FEATURE_WP_UNPOPULATED | UFFD_FEATURE_WP_HUGETLBFS_SHMEM,
            ioctls: 0,
        };
        // SAFETY: UFFDIO_API takes a pointer to a uffdio_api, which `api` is.
        if unsafe { libc::ioctl(uffd.as_raw_fd(), UFFDIO_API, &mut api as *mut UffdioApi) } != 0 {
            return Err(io::Error::last_os_error());
        }
        let pagemap = File::open(format!("/proc/{pid}/pagemap"))?;
        Ok(WriteTracking { uffd, pagemap })
    }

    /// Write-protect `[start, end)` from now on (pages become protected at
    /// the next [`WriteTracking::written`] scan of the range).
    pub(super) fn register(&self, start: u64, end: u64) -> io::Result<()> {
        let mut reg = UffdioRegister { start, len: end - start, mode: UFFDIO_REGISTER_MODE_WP, ioctls: 0 };
        // SAFETY: UFFDIO_REGISTER takes a pointer to a uffdio_register.
        if unsafe { libc::ioctl(self.uffd.as_raw_fd(), UFFDIO_REGISTER, &mut reg as *mut UffdioRegister) } != 0 {
            return Err(io::Error::last_os_error());
        }
        Ok(())
    }

    /// The page ranges of `[start, end)` written since the last scan (or,
    /// the first time, every page not yet protected), protected again.
    pub(super) fn written(&self, start: u64, end: u64) -> io::Result<Vec<(u64, u64)>> {
        let mut out = Vec::new();
        let mut regions = [PageRegion::default(); 64];
        let mut from = start;
        while from < end {
            let mut arg = PmScanArg {
                size: std::mem::size_of::<PmScanArg>() as u64,
                flags: PM_SCAN_WP_MATCHING | PM_SCAN_CHECK_WPASYNC,
                start: from,
                end,
                walk_end: 0,
                vec: regions.as_mut_ptr() as u64,
                vec_len: regions.len() as u64,
                max_pages: 0,
                category_inverted: 0,
                category_mask: PAGE_IS_WRITTEN,
                category_anyof_mask: 0,
                return_mask: PAGE_IS_WRITTEN,
            };
            // SAFETY: PAGEMAP_SCAN takes a pointer to a pm_scan_arg whose
            // `vec` points to `vec_len` page_regions, which `regions` is.
            let n = unsafe { libc::ioctl(self.pagemap.as_raw_fd(), PAGEMAP_SCAN, &mut arg as *mut PmScanArg) };
            if n < 0 {
                return Err(io::Error::last_os_error());
            }
            out.extend(regions[..n as usize].iter().map(|r| (r.start, r.end)));
            if arg.walk_end <= from {
                break;
            }
            from = arg.walk_end;
        }
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn layouts_match_the_kernel() {
        assert_eq!(std::mem::size_of::<UffdioApi>(), 24);
        assert_eq!(std::mem::size_of::<UffdioRegister>(), 32);
        assert_eq!(std::mem::size_of::<PmScanArg>(), 96);
        assert_eq!(std::mem::size_of::<PageRegion>(), 24);
        // _IOWR(type, nr, size) = 3 << 30 | size << 16 | type << 8 | nr.
        let iowr = |ty: u64, nr: u64, size: u64| (3 << 30 | size << 16 | ty << 8 | nr) as libc::c_ulong;
        assert_eq!(UFFDIO_API, iowr(0xAA, 0x3F, 24));
        assert_eq!(UFFDIO_REGISTER, iowr(0xAA, 0x00, 32));
        assert_eq!(PAGEMAP_SCAN, iowr(b'f' as u64, 16, 96));
    }
}
