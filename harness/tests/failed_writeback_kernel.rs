//! The kernel rules the `eio-sync` model (`harness/src/oracle/failed_writeback.rs`)
//! rests on, measured on this kernel with a writeback that really fails.
//!
//! How a write is made to fail without device-mapper: the filesystem lives on
//! a loop device whose backing image sits on a small tmpfs. The image is fully
//! allocated, except the one block that holds page 0 of the file under test,
//! which is punched out; a ballast file then takes the tmpfs's last free page.
//! Every write the filesystem makes (journal, metadata, other data) lands on
//! allocated pages of the image and succeeds; the writeback of that one block
//! needs a new tmpfs page, gets `ENOSPC`, and the loop driver completes the
//! bio with an error (`BLK_STS_NOSPC`). The filesystem sees a failed data
//! writeback, as from a failing disk (the errno it passes on is `ENOSPC`
//! rather than `EIO`; the error is recorded the same way, by
//! `mapping_set_error`, whatever its number).
//!
//! What the test asserts, rule by rule (each is a row of the table in
//! `reports/SOUNDNESS.md`, "A failed sync"):
//! 1. the sync that covers the failed writeback reports the error;
//! 2. the error is reported once to each open file description that was
//!    open before it (a second descriptor sees it once too), and not to one
//!    opened after it;
//! 3. a retried sync succeeds **without writing the page**: the image's
//!    block still does not hold the stored bytes after the retry, and after
//!    yet another sync made once the space is back (the page was marked
//!    clean);
//! 4. a page stored into again is written by the next sync.
//!
//! ext4 and xfs. Not btrfs: it writes new data elsewhere (copy on write), so
//! no block of the image can be made to fail in advance.
//!
//! Root only (loop devices, mounts); without it the test fails, unless
//! `CRASHLAB_ALLOW_NO_ROOT=1` (then it says so and passes vacuously).

#[path = "support/root.rs"]
mod root;
use root::have_root;

use std::ffi::OsStr;
use std::fs::{File, OpenOptions};
use std::os::fd::AsRawFd;
use std::os::unix::fs::FileExt;
use std::path::Path;

use crashlab::private_mount::Mount;
use crashlab::realcut::fs::{find_program, run_command};
use crashlab::realcut::sys::LoopDevice;

const FILE_LEN: usize = 1 << 20;

/// `FS_IOC_FIEMAP`: `_IOWR('f', 11, struct fiemap)` (32-byte header).
const FS_IOC_FIEMAP: libc::c_ulong = 0xC020_660B;
const FIEMAP_FLAG_SYNC: u32 = 1;

#[repr(C)]
#[derive(Default, Clone, Copy)]
struct FiemapExtent {
    logical: u64,
    physical: u64,
    length: u64,
    reserved64: [u64; 2],
    flags: u32,
    reserved: [u32; 3],
}

#[repr(C)]
#[derive(Default)]
struct Fiemap {
    start: u64,
    length: u64,
    flags: u32,
    mapped_extents: u32,
    extent_count: u32,
    reserved: u32,
    extents: [FiemapExtent; 1],
}

/// The byte offset on the device of the file's first byte.
fn physical_offset_of_start(file: &File) -> u64 {
    let mut map = Fiemap { length: 1, flags: FIEMAP_FLAG_SYNC, extent_count: 1, ..Fiemap::default() };
    // SAFETY: FIEMAP fills the header and at most `extent_count` extents of
    // a struct laid out as the kernel's.
    let rc = unsafe { libc::ioctl(file.as_raw_fd(), FS_IOC_FIEMAP as _, &mut map) };
    assert_eq!(rc, 0, "FIEMAP: {}", std::io::Error::last_os_error());
    assert_eq!(map.mapped_extents, 1, "the synced file has an extent at offset 0");
    let e = map.extents[0];
    assert_eq!(e.logical, 0);
    e.physical
}

fn fallocate(file: &File, mode: i32, offset: u64, len: u64) {
    // SAFETY: fallocate on a descriptor we own.
    let rc = unsafe { libc::fallocate(file.as_raw_fd(), mode, offset as i64, len as i64) };
    assert_eq!(rc, 0, "fallocate(mode {mode}, {offset}, {len}): {}", std::io::Error::last_os_error());
}

fn free_bytes(dir: &Path) -> u64 {
    let c = std::ffi::CString::new(dir.as_os_str().as_encoded_bytes()).unwrap();
    // SAFETY: statvfs fills the struct.
    let mut s: libc::statvfs = unsafe { std::mem::zeroed() };
    assert_eq!(unsafe { libc::statvfs(c.as_ptr(), &mut s) }, 0);
    s.f_bavail * s.f_frsize
}

/// The result of a sync call: `Ok(())` or the errno's name.
fn outcome(rc: i32) -> Result<(), String> {
    if rc == 0 {
        Ok(())
    } else {
        Err(std::io::Error::last_os_error().to_string())
    }
}

struct Mapping {
    ptr: *mut u8,
    len: usize,
}

impl Mapping {
    fn shared(file: &File, len: usize) -> Mapping {
        // SAFETY: mapping a file we hold open; unmapped in Drop.
        let p = unsafe {
            libc::mmap(
                std::ptr::null_mut(),
                len,
                libc::PROT_READ | libc::PROT_WRITE,
                libc::MAP_SHARED,
                file.as_raw_fd(),
                0,
            )
        };
        assert_ne!(p, libc::MAP_FAILED, "mmap: {}", std::io::Error::last_os_error());
        Mapping { ptr: p.cast(), len }
    }

    fn fill_page(&self, page: usize, byte: u8) {
        let size = crashlab::page_size::page_size() as usize;
        // SAFETY: the page lies inside the mapping; the file is that long.
        unsafe { std::ptr::write_bytes(self.ptr.add(page * size), byte, size) };
    }

    fn msync(&self) -> Result<(), String> {
        // SAFETY: syncing our own mapping.
        outcome(unsafe { libc::msync(self.ptr.cast(), self.len, libc::MS_SYNC) })
    }
}

impl Drop for Mapping {
    fn drop(&mut self) {
        // SAFETY: unmapping what `shared` mapped.
        unsafe { libc::munmap(self.ptr.cast(), self.len) };
    }
}

fn fsync(file: &File) -> Result<(), String> {
    // SAFETY: fsync on a descriptor we own.
    outcome(unsafe { libc::fsync(file.as_raw_fd()) })
}

/// What the device's block holding page 0 holds: one byte repeated, or
/// `None` for anything else.
fn block_byte(image: &File, at: u64) -> Option<u8> {
    let mut block = vec![0u8; crashlab::page_size::page_size() as usize];
    image.read_exact_at(&mut block, at).unwrap();
    block.iter().all(|&b| b == block[0]).then_some(block[0])
}

fn failed_writeback_on(fs: &str) {
    let page = crashlab::page_size::page_size();
    let (image_len, mkfs_args): (u64, &[&str]) = match fs {
        // ext4 would pick 1 KiB blocks on so small a filesystem: ask for pages.
        "ext4" => (64 << 20, &["-q", "-F", "-b", "4096"]),
        // xfs refuses filesystems under 300 MiB.
        "xfs" => (320 << 20, &["-q", "-f"]),
        other => unreachable!("{other}"),
    };
    let Some(mkfs) = find_program(&format!("mkfs.{fs}")) else {
        panic!("mkfs.{fs} is not installed (scripts/test installs it)");
    };
    let scratch = tempfile::Builder::new().prefix("crashlab-failed-writeback-").tempdir().unwrap();
    let (backing, mnt) = (scratch.path().join("backing"), scratch.path().join("mnt"));
    std::fs::create_dir(&backing).unwrap();
    std::fs::create_dir(&mnt).unwrap();
    let tmpfs = Mount::new(Path::new("tmpfs"), &backing, "tmpfs", &format!("size={}", image_len + (8 << 20))).unwrap();
    let image_path = backing.join("image");
    let image = OpenOptions::new().read(true).write(true).create(true).truncate(true).open(&image_path).unwrap();
    image.set_len(image_len).unwrap();
    run_command(
        &mkfs,
        &[OsStr::new(mkfs_args[0]), OsStr::new(mkfs_args[1])]
            .into_iter()
            .chain(mkfs_args[2..].iter().map(OsStr::new))
            .chain([image_path.as_os_str()])
            .collect::<Vec<_>>(),
    )
    .unwrap();
    // Every block of the image allocated: the filesystem's own writes never fail.
    fallocate(&image, 0, 0, image_len);
    let device = LoopDevice::attach(&image_path, false).unwrap();
    let mount = Mount::new(device.path(), &mnt, fs, "").unwrap();

    let path = mnt.join("data");
    let file = OpenOptions::new().read(true).write(true).create(true).truncate(true).open(&path).unwrap();
    file.write_all_at(&vec![b'A'; FILE_LEN], 0).unwrap();
    fsync(&file).unwrap();
    let at = physical_offset_of_start(&file);
    assert_eq!(at % page, 0, "{fs}: the file's first block is page-aligned on the device");
    assert_eq!(block_byte(&image, at), Some(b'A'), "{fs}: FIEMAP names the block that holds page 0");

    // Page 0's block needs a new tmpfs page from now on, and there is none.
    fallocate(&image, libc::FALLOC_FL_PUNCH_HOLE | libc::FALLOC_FL_KEEP_SIZE, at, page);
    let ballast = File::create(backing.join("ballast")).unwrap();
    fallocate(&ballast, 0, 0, free_bytes(&backing));
    assert_eq!(free_bytes(&backing), 0, "{fs}: the backing tmpfs is full");

    let other = OpenOptions::new().read(true).write(true).open(&path).unwrap();
    let map = Mapping::shared(&file, FILE_LEN);
    map.fill_page(0, b'B');

    // Rule 1: the sync that covers the failed writeback reports it.
    let first = map.msync();
    assert!(first.is_err(), "{fs}: msync(MS_SYNC) of a page whose writeback failed returned success");
    // Rule 2: once per open file description open before the error...
    assert!(fsync(&other).is_err(), "{fs}: a second descriptor opened before the error did not see it");
    assert_eq!(fsync(&other), Ok(()), "{fs}: the second descriptor saw the error twice");
    // ...and not to one opened after it.
    let later = OpenOptions::new().read(true).write(true).open(&path).unwrap();
    assert_eq!(fsync(&later), Ok(()), "{fs}: a descriptor opened after the error saw it");

    // Rule 3: the retry succeeds without writing the page.
    assert_eq!(map.msync(), Ok(()), "{fs}: the retried msync failed again");
    assert_ne!(block_byte(&image, at), Some(b'B'), "{fs}: the retried msync wrote the page");
    // Even once the space is back: nothing is dirty any more.
    drop(ballast);
    std::fs::remove_file(backing.join("ballast")).unwrap();
    assert_eq!(map.msync(), Ok(()), "{fs}: msync after the space came back failed");
    assert_eq!(fsync(&file), Ok(()), "{fs}: fsync after the space came back failed");
    assert_ne!(
        block_byte(&image, at),
        Some(b'B'),
        "{fs}: a sync after the space came back wrote the page the failed writeback had marked clean"
    );

    // Rule 4: a store dirties the page again, and the next sync writes it.
    map.fill_page(0, b'D');
    assert_eq!(map.msync(), Ok(()), "{fs}: msync of the page stored into again failed");
    assert_eq!(block_byte(&image, at), Some(b'D'), "{fs}: the page stored into again was not written");
    eprintln!("{fs}: the failed msync reported: {}", first.unwrap_err());

    drop(map);
    drop((file, other, later));
    mount.unmount().unwrap();
    device.detach().unwrap();
    drop(image);
    tmpfs.unmount().unwrap();
}

#[test]
fn a_failed_writeback_marks_its_pages_clean_so_a_retried_sync_succeeds_without_writing_them() {
    if !have_root("failed_writeback_kernel") {
        return;
    }
    for fs in ["ext4", "xfs"] {
        failed_writeback_on(fs);
    }
}
