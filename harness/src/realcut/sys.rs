//! The OS effects of a real power cut: loop devices, mounts, the shutdown
//! ioctl and trim of a [`Mount`], raw device copies. Root only.
//!
//! Every resource is an RAII guard ([`LoopDevice`], [`Mount`]) whose `Drop`
//! releases it, so panics and early returns clean up too. Loop devices are
//! attached with `LO_FLAGS_AUTOCLEAR`: should the process die by SIGKILL
//! (no destructor runs), the kernel detaches them once their filesystem is
//! gone, and the private mount namespace
//! ([`crate::private_mount::private_mount_namespace`]) makes that happen by
//! itself when the last process in it exits.
//!
//! Loop devices and mounts are made with the syscalls, not `losetup`/`mount`
//! (fork+exec of a helper costs more than the mount itself).

use std::fs::{File, OpenOptions};
use std::io;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::{FileExt, OpenOptionsExt};
use std::os::unix::io::AsRawFd;
use std::path::{Path, PathBuf};

use super::RealcutError;
use crate::private_mount::{Mount, MountError};

/// `_IOR('X', 125, __u32)`: shut a filesystem down (ext4, xfs, f2fs).
pub const FS_IOC_SHUTDOWN: libc::c_ulong = 0x8004_587d;
/// Shut down without flushing the log: what is not on disk is lost.
pub const FS_SHUTDOWN_FLAGS_NOLOGFLUSH: u32 = 2;

const LOOP_CTL_GET_FREE: libc::c_ulong = 0x4C82;
const LOOP_CONFIGURE: libc::c_ulong = 0x4C0A;
const LOOP_CLR_FD: libc::c_ulong = 0x4C01;
const LO_FLAGS_READ_ONLY: u32 = 1;
const LO_FLAGS_AUTOCLEAR: u32 = 4;

#[repr(C)]
struct LoopInfo64 {
    lo_device: u64,
    lo_inode: u64,
    lo_rdevice: u64,
    lo_offset: u64,
    lo_sizelimit: u64,
    lo_number: u32,
    lo_encrypt_type: u32,
    lo_encrypt_key_size: u32,
    lo_flags: u32,
    lo_file_name: [u8; 64],
    lo_crypt_name: [u8; 64],
    lo_encrypt_key: [u8; 32],
    lo_init: [u64; 2],
}

#[repr(C)]
struct LoopConfig {
    fd: u32,
    block_size: u32,
    info: LoopInfo64,
    reserved: [u64; 8],
}

/// A failed mount or namespace call, as every realcut error says one.
impl From<MountError> for RealcutError {
    fn from(e: MountError) -> RealcutError {
        RealcutError::Sys { what: e.what, source: e.source }
    }
}

fn sys(what: impl Into<String>, source: io::Error) -> RealcutError {
    RealcutError::Sys { what: what.into(), source }
}

/// Is this process root? The loopcut backend needs it (loop devices, mount).
pub fn is_root() -> bool {
    // SAFETY: geteuid has no preconditions.
    unsafe { libc::geteuid() == 0 }
}

/// A loop device attached to a backing file; detached on drop.
pub struct LoopDevice {
    path: PathBuf,
    /// Held open for the life of the guard: with `LO_FLAGS_AUTOCLEAR`, the
    /// device would otherwise detach itself at every unmount.
    file: File,
    backing: PathBuf,
    attached: bool,
}

impl LoopDevice {
    /// Attach `backing` to a free loop device.
    pub fn attach(backing: &Path, read_only: bool) -> Result<LoopDevice, RealcutError> {
        let backing_file = OpenOptions::new()
            .read(true)
            .write(!read_only)
            .open(backing)
            .map_err(|e| sys(format!("cannot open the image {}", backing.display()), e))?;
        let control = OpenOptions::new()
            .read(true)
            .write(true)
            .open("/dev/loop-control")
            .map_err(|e| sys("cannot open /dev/loop-control", e))?;
        // Another process may take the device between GET_FREE and CONFIGURE.
        let mut last_err = None;
        for _ in 0..16 {
            // SAFETY: an ioctl without argument on a descriptor we own.
            let n = unsafe { libc::ioctl(control.as_raw_fd(), LOOP_CTL_GET_FREE as _) };
            if n < 0 {
                return Err(sys("LOOP_CTL_GET_FREE on /dev/loop-control failed", io::Error::last_os_error()));
            }
            let path = PathBuf::from(format!("/dev/loop{n}"));
            let file = match OpenOptions::new().read(true).write(!read_only).custom_flags(libc::O_CLOEXEC).open(&path) {
                Ok(f) => f,
                Err(e) => {
                    last_err = Some(sys(format!("cannot open {}", path.display()), e));
                    continue;
                }
            };
            let mut name = [0u8; 64];
            let b = backing.as_os_str().as_bytes();
            let k = b.len().min(63);
            name[..k].copy_from_slice(&b[..k]);
            let cfg = LoopConfig {
                fd: backing_file.as_raw_fd() as u32,
                block_size: 0,
                info: LoopInfo64 {
                    lo_device: 0,
                    lo_inode: 0,
                    lo_rdevice: 0,
                    lo_offset: 0,
                    lo_sizelimit: 0,
                    lo_number: 0,
                    lo_encrypt_type: 0,
                    lo_encrypt_key_size: 0,
                    lo_flags: LO_FLAGS_AUTOCLEAR | if read_only { LO_FLAGS_READ_ONLY } else { 0 },
                    lo_file_name: name,
                    lo_crypt_name: [0; 64],
                    lo_encrypt_key: [0; 32],
                    lo_init: [0; 2],
                },
                reserved: [0; 8],
            };
            // SAFETY: LOOP_CONFIGURE reads one `struct loop_config`.
            let rc = unsafe { libc::ioctl(file.as_raw_fd(), LOOP_CONFIGURE as _, &cfg as *const LoopConfig) };
            if rc == 0 {
                return Ok(LoopDevice { path, file, backing: backing.to_owned(), attached: true });
            }
            let e = io::Error::last_os_error();
            if e.raw_os_error() != Some(libc::EBUSY) {
                return Err(sys(format!("cannot attach {} to {}", backing.display(), path.display()), e));
            }
            last_err = Some(sys(format!("{} was taken while attaching {}", path.display(), backing.display()), e));
        }
        Err(last_err.unwrap_or_else(|| RealcutError::Spec("no free loop device".into())))
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    pub fn backing(&self) -> &Path {
        &self.backing
    }

    /// The open device (read it with `O_DIRECT` through [`copy_device`]).
    pub fn file(&self) -> &File {
        &self.file
    }

    /// Detach now, reporting failure (drop detaches silently).
    pub fn detach(mut self) -> Result<(), RealcutError> {
        self.attached = false;
        // SAFETY: an ioctl without argument on our descriptor.
        if unsafe { libc::ioctl(self.file.as_raw_fd(), LOOP_CLR_FD as _, 0) } != 0 {
            return Err(sys(format!("cannot detach {}", self.path.display()), io::Error::last_os_error()));
        }
        Ok(())
    }
}

impl Drop for LoopDevice {
    fn drop(&mut self) {
        if self.attached {
            // SAFETY: as in `detach`. If the device is still in use (a lazy
            // unmount in progress), the kernel detaches it when released
            // (autoclear).
            unsafe { libc::ioctl(self.file.as_raw_fd(), LOOP_CLR_FD as _, 0) };
        }
    }
}

impl Mount {
    /// `FS_IOC_SHUTDOWN` with `NOLOGFLUSH`: from now on nothing of this
    /// filesystem reaches its device. The power cut of ext4 and xfs.
    pub fn shutdown(&self) -> Result<(), RealcutError> {
        let dir = File::open(self.target())
            .map_err(|e| sys(format!("cannot open the mount point {}", self.target().display()), e))?;
        let flags: u32 = FS_SHUTDOWN_FLAGS_NOLOGFLUSH;
        // SAFETY: FS_IOC_SHUTDOWN reads one u32.
        if unsafe { libc::ioctl(dir.as_raw_fd(), FS_IOC_SHUTDOWN as _, &flags as *const u32) } != 0 {
            return Err(sys(
                format!("FS_IOC_SHUTDOWN (NOLOGFLUSH) on {} ({})", self.target().display(), self.source().display()),
                io::Error::last_os_error(),
            ));
        }
        Ok(())
    }
}

impl Mount {
    /// `FITRIM` the whole filesystem: its free space is discarded, so the
    /// loop device punches holes in its backing file and raw copies (which
    /// read only the backing file's data) stay small. Between trials only.
    pub fn trim(&self) -> Result<(), RealcutError> {
        #[repr(C)]
        struct FstrimRange {
            start: u64,
            len: u64,
            minlen: u64,
        }
        const FITRIM: libc::c_ulong = 0xC018_5879;
        let dir = File::open(self.target())
            .map_err(|e| sys(format!("cannot open the mount point {}", self.target().display()), e))?;
        let mut r = FstrimRange { start: 0, len: u64::MAX, minlen: 0 };
        // SAFETY: FITRIM reads and updates one struct fstrim_range.
        if unsafe { libc::ioctl(dir.as_raw_fd(), FITRIM as _, &mut r as *mut FstrimRange) } != 0 {
            return Err(sys(format!("FITRIM on {}", self.target().display()), io::Error::last_os_error()));
        }
        Ok(())
    }
}

/// The data extents of a (sparse) file: `SEEK_DATA`/`SEEK_HOLE` pairs.
pub fn data_extents(file: &File, len: u64) -> io::Result<Vec<(u64, u64)>> {
    let fd = file.as_raw_fd();
    let mut out = Vec::new();
    let mut pos: i64 = 0;
    while (pos as u64) < len {
        // SAFETY: lseek on our descriptor.
        let start = unsafe { libc::lseek(fd, pos, libc::SEEK_DATA) };
        if start < 0 {
            let e = io::Error::last_os_error();
            if e.raw_os_error() == Some(libc::ENXIO) {
                break;
            }
            return Err(e);
        }
        let end = unsafe { libc::lseek(fd, start, libc::SEEK_HOLE) };
        if end < 0 {
            return Err(io::Error::last_os_error());
        }
        out.push((start as u64, (end as u64).min(len)));
        pos = end;
    }
    Ok(out)
}

/// Copy what the device `dev` holds into the file `dest` (made sparse and
/// `len` bytes long), reading the device with `O_DIRECT` so neither its page
/// cache nor the filesystem's is involved: the bytes on the "disk". Only the
/// data extents of `backing` (the device's backing file) are read: the rest
/// was never written.
///
/// The filesystem stays live during the copy (a background commit may
/// write), so the copy is taken twice and kept only when both passes (and
/// the extent lists around them) agree: then every block held the same bytes
/// from its first read to its second, so all of them held those bytes at
/// the instant between the passes, and the copy is the device at that
/// instant. Retried while the device changes under it.
pub fn copy_device(dev: &Path, backing: &Path, len: u64, dest: &Path) -> Result<u64, RealcutError> {
    let src = OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_DIRECT)
        .open(dev)
        .map_err(|e| sys(format!("cannot open {} with O_DIRECT", dev.display()), e))?;
    let back = File::open(backing).map_err(|e| sys(format!("cannot open {}", backing.display()), e))?;
    let extents = || {
        data_extents(&back, len).map_err(|e| sys(format!("SEEK_DATA on {}", backing.display()), e)).map(|v| {
            // O_DIRECT wants 4 KiB-aligned offsets and lengths.
            v.into_iter()
                .map(|(s, e)| (s / 4096 * 4096, e.div_ceil(4096).saturating_mul(4096).min(len)))
                .collect::<Vec<_>>()
        })
    };
    const ATTEMPTS: usize = 20;
    for _ in 0..ATTEMPTS {
        let before = extents()?;
        let total: u64 = before.iter().map(|(s, e)| e - s).sum();
        let mut first = crate::page_buffer::PageBuffer::zeroed(total as usize, total as usize);
        let mut at = 0usize;
        for &(s, e) in &before {
            let n = (e - s) as usize;
            read_full(&src, &mut first[at..at + n], s, dev)?;
            at += n;
        }
        let after = extents()?;
        if after != before {
            continue;
        }
        let mut second = crate::page_buffer::PageBuffer::zeroed(1 << 20, 1 << 20);
        let mut at = 0usize;
        let mut stable = true;
        'pass: for &(s, e) in &before {
            let mut pos = s;
            while pos < e {
                let n = ((e - pos) as usize).min(1 << 20);
                read_full(&src, &mut second[..n], pos, dev)?;
                if second[..n] != first[at..at + n] {
                    stable = false;
                    break 'pass;
                }
                at += n;
                pos += n as u64;
            }
        }
        if !stable {
            continue;
        }
        let out = OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(true)
            .open(dest)
            .map_err(|e| sys(format!("cannot create the device copy {}", dest.display()), e))?;
        out.set_len(len).map_err(|e| sys(format!("cannot size {}", dest.display()), e))?;
        let mut at = 0usize;
        for &(s, e) in &before {
            let n = (e - s) as usize;
            out.write_all_at(&first[at..at + n], s).map_err(|e| sys(format!("cannot write {}", dest.display()), e))?;
            at += n;
        }
        return Ok(total);
    }
    Err(RealcutError::Spec(format!(
        "{} kept changing while it was copied ({ATTEMPTS} attempts): no consistent copy",
        dev.display()
    )))
}

fn read_full(src: &File, buf: &mut [u8], mut pos: u64, dev: &Path) -> Result<(), RealcutError> {
    let mut done = 0;
    while done < buf.len() {
        let n = (buf.len() - done).min(1 << 20);
        let got = src
            .read_at(&mut buf[done..done + n], pos)
            .map_err(|e| sys(format!("O_DIRECT read of {} at {pos}", dev.display()), e))?;
        if got == 0 {
            return Err(RealcutError::Spec(format!("{} ended at {pos}, inside its backing file", dev.display())));
        }
        done += got;
        pos += got as u64;
    }
    Ok(())
}

/// Copy a sparse file, keeping its holes (to keep a post-cut image).
pub fn copy_sparse(src: &Path, dest: &Path) -> Result<u64, RealcutError> {
    let f = File::open(src).map_err(|e| sys(format!("cannot open {}", src.display()), e))?;
    let len = f.metadata().map_err(|e| sys(format!("cannot stat {}", src.display()), e))?.len();
    let out = OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .open(dest)
        .map_err(|e| sys(format!("cannot create {}", dest.display()), e))?;
    out.set_len(len).map_err(|e| sys(format!("cannot size {}", dest.display()), e))?;
    let extents = data_extents(&f, len).map_err(|e| sys(format!("SEEK_DATA on {}", src.display()), e))?;
    let mut buf = vec![0u8; 1 << 20];
    let mut copied = 0;
    for (start, end) in extents {
        let mut pos = start;
        while pos < end {
            let n = ((end - pos) as usize).min(buf.len());
            f.read_exact_at(&mut buf[..n], pos).map_err(|e| sys(format!("cannot read {}", src.display()), e))?;
            out.write_all_at(&buf[..n], pos).map_err(|e| sys(format!("cannot write {}", dest.display()), e))?;
            pos += n as u64;
            copied += n as u64;
        }
    }
    Ok(copied)
}

/// Loop devices whose backing file lies under `dir`, from sysfs (what
/// `losetup -a` shows). Tests use it to prove nothing leaked.
pub fn loop_devices_under(dir: &Path) -> Vec<(String, String)> {
    let mut out = Vec::new();
    let Ok(entries) = std::fs::read_dir("/sys/block") else { return out };
    for e in entries.flatten() {
        let name = e.file_name().to_string_lossy().into_owned();
        if !name.starts_with("loop") {
            continue;
        }
        if let Ok(b) = std::fs::read_to_string(e.path().join("loop/backing_file")) {
            let b = b.trim().to_string();
            if Path::new(&b).starts_with(dir) || b.starts_with(&*dir.to_string_lossy()) {
                out.push((name, b));
            }
        }
    }
    out.sort();
    out
}

/// Mount points under `dir` in this process's mount namespace.
pub fn mounts_under(dir: &Path) -> Vec<String> {
    let Ok(m) = std::fs::read_to_string("/proc/self/mounts") else { return Vec::new() };
    let d = dir.to_string_lossy();
    m.lines().filter_map(|l| l.split_whitespace().nth(1)).filter(|t| t.starts_with(&*d)).map(str::to_string).collect()
}

/// Check a directory for leftovers of a campaign: loop devices backed by
/// files under it and mounts under it (in this namespace).
pub fn leftovers(dir: &Path) -> Vec<String> {
    let mut v: Vec<String> =
        loop_devices_under(dir).into_iter().map(|(d, b)| format!("loop device {d} -> {b}")).collect();
    v.extend(mounts_under(dir).into_iter().map(|m| format!("mount {m}")));
    v
}
