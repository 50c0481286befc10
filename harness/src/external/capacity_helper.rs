//! `crashlab __capacity`: the process that gives an `enospc` trial's writer
//! a filesystem of a hard capacity, unprivileged, and hands back what the
//! writer left.
//!
//! ```text
//! crashlab __capacity FS BYTES DIR STATUS PROGRAM ARGV0 [ARGS...]
//! ```
//!
//! It is started (fork+exec, by the engine's ordinary spawn: own process
//! group, parent-death signal, `CRASHLAB_*` environment) in place of the
//! writer, and:
//!
//! 1. keeps a descriptor of `DIR` as it is (the trial directory, holding
//!    what `--setup` left);
//! 2. `FS` `tmpfs`: enters a new user namespace (`unshare(CLONE_NEWUSER)`;
//!    its user and group map to themselves, so files keep their owner) and
//!    a mount namespace it owns, and mounts a tmpfs of `size=BYTES` over
//!    `DIR`: inside the namespace `DIR` is a filesystem that fills up,
//!    outside nothing changed, and no privilege was needed. `FS` `ext4`
//!    (root): a mount namespace, and a fresh ext4 made on an image of
//!    `BYTES` bytes beside `STATUS`, on an autoclear loop device, mounted
//!    over `DIR` (its `lost+found` removed: the writer's directory starts
//!    empty); the image is removed at the end;
//! 3. copies the setup's files into it (they count against the capacity,
//!    as they would on a small disk), and empties the directory beneath;
//! 4. runs the writer there (`PROGRAM` with `ARGV0 ARGS`, working directory
//!    `DIR`, standard streams inherited: its acks go straight to crashlab),
//!    waits for it, whatever its end; or, with `PROGRAM` `--hold`, prints
//!    `ready` and waits for a line on standard input while crashlab runs
//!    the writer under the durability oracle in this helper's namespaces
//!    (`capacity.rs`: the oracle must trace the writer from crashlab);
//! 5. copies the tmpfs back into the directory beneath, sparse-aware (a
//!    hole stays a hole: the writer's sparse files would not fit the
//!    disk otherwise), and writes `STATUS` (JSON: [`CapacityStatus`]),
//!    then exits 0; the namespace, its mount and its files go with it.
//!
//! Why copy out rather than run the checker in the namespace: the checker
//! is an ordinary protocol program, started by the engine's one checker
//! path (v1 or a v1.1 server, one per job, outside any namespace); a
//! process crash leaves exactly the page cache, and tmpfs *is* the page
//! cache, so a copy made after the writer ended is what any process crash
//! at that point leaves. The copy goes to a filesystem with room (the
//! run's `--dir`).
//!
//! Architecture Invariant: the helper is single-threaded (checked first,
//! like the workers): it is dispatched in `main` before anything could
//! start a thread, and it forks the writer with `std::process::Command`.
//! It never syncs anything: the copy out reads the page cache.

use std::ffi::{OsStr, OsString};
use std::os::fd::{AsRawFd, OwnedFd};
use std::os::unix::fs::{FileTypeExt, MetadataExt, PermissionsExt};
use std::os::unix::process::{CommandExt, ExitStatusExt};
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::private_mount::{private_mount_namespace, private_user_namespace, Mount};
use crate::realcut::fs::{find_program, run_command};
use crate::realcut::sys::{copy_sparse, LoopDevice};
use crate::vocab::capacity::CapacityFs;
use crate::vocab::ProcessEnd;

/// The hidden subcommand of `crashlab` (and of the tests' `crashlab-worker`).
pub const SUBCOMMAND: &str = "__capacity";

/// In place of `PROGRAM`: hold the filesystem for a writer started by
/// crashlab under the durability oracle (the words after it, the writer's
/// command line, are not run: they name the trial in `ps`).
pub const HOLD: &str = "--hold";

/// The line the helper prints on its standard output when, with [`HOLD`],
/// its filesystem is ready for the writer.
pub const READY: &str = "ready";

/// What the helper hands back about the writer's run on the small
/// filesystem.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct CapacityStatus {
    /// How the writer ended (`None` with [`HOLD`]: crashlab ran it).
    pub end: Option<ProcessEnd>,
    /// Bytes the filesystem held when the writer ended (`statvfs`).
    pub used: u64,
    /// Bytes still free then.
    pub free: u64,
}

/// Why the helper could not do its part.
#[derive(Debug, thiserror::Error)]
#[error("{what}: {error}")]
pub struct HelperError {
    what: String,
    error: std::io::Error,
}

fn io(what: impl Into<String>) -> impl FnOnce(std::io::Error) -> HelperError {
    let what = what.into();
    move |error| HelperError { what, error }
}

/// The helper's `main`; returns its exit code (0, or 2 with the error on
/// stderr, which the engine shows as the writer's first line of stderr).
pub fn capacity_main(args: impl IntoIterator<Item = OsString>) -> i32 {
    let args: Vec<OsString> = args.into_iter().collect();
    match run(&args) {
        Ok(()) => 0,
        Err(e) => {
            eprintln!("crashlab {SUBCOMMAND}: {e}");
            2
        }
    }
}

fn run(args: &[OsString]) -> Result<(), HelperError> {
    let bad = |what: &str| HelperError {
        what: format!("{what} (usage: {SUBCOMMAND} FS BYTES DIR STATUS PROGRAM ARGV0 [ARGS...]; started by crashlab)"),
        error: std::io::Error::from(std::io::ErrorKind::InvalidInput),
    };
    let [fs, bytes, dir, status, program, argv0, rest @ ..] = args else { return Err(bad("too few arguments")) };
    let fs: CapacityFs = fs.to_str().and_then(|f| f.parse().ok()).ok_or_else(|| bad("FS is not tmpfs or ext4"))?;
    let bytes: u64 = bytes.to_str().and_then(|b| b.parse().ok()).ok_or_else(|| bad("BYTES is not a number"))?;
    let dir = PathBuf::from(dir);
    if crate::worker_pool::serve::thread_count() != Some(1) {
        return Err(bad("the helper must be single-threaded to fork the writer"));
    }
    let beneath =
        std::fs::File::open(&dir).map_err(io(format!("cannot open the trial directory {}", dir.display())))?;
    let beneath: OwnedFd = beneath.into();
    // The directory beneath the mount, reachable by this name after the
    // mount covers `dir` (a /proc fd link resolves to the open directory).
    let below = PathBuf::from(format!("/proc/self/fd/{}", beneath.as_raw_fd()));
    let mode = std::fs::metadata(&below).map_err(io(format!("cannot stat {}", dir.display())))?.mode() & 0o7777;
    let image = Path::new(status).with_extension("img");
    let mounted = mount_capacity(fs, &dir, bytes, mode, &image)?;
    copy_tree(&below, &dir).map_err(|e| HelperError {
        what: format!(
            "cannot copy what --setup left into the {bytes}-byte filesystem of --capacity (is the capacity smaller than the setup's files?): {}",
            e.what
        ),
        error: e.error,
    })?;
    empty_dir(&below)?;
    std::env::set_current_dir(&dir).map_err(io(format!("cannot enter {}", dir.display())))?;
    let end = if program == HOLD {
        hold()?;
        None
    } else {
        Some(run_writer(program, argv0, rest, &dir)?)
    };
    let (used, free) = usage(&dir)?;
    copy_tree(&dir, &below).map_err(|e| HelperError {
        what: format!("cannot copy the writer's directory out of the capacity filesystem: {}", e.what),
        error: e.error,
    })?;
    // Out of the mount before it goes, so it unmounts now (not lazily).
    std::env::set_current_dir("/").map_err(io("cannot leave the capacity filesystem"))?;
    drop(mounted);
    let text = serde_json::to_string(&CapacityStatus { end, used, free }).expect("a status serializes");
    std::fs::write(status, text).map_err(io(format!("cannot write {}", Path::new(status).display())))
}

/// What holds the capacity filesystem over the trial directory: its mount,
/// and for ext4 its loop device and image. Dropped after the copy out
/// (unmounting then changes nothing the checker sees); the namespace would
/// release them anyway when the helper exits, even by SIGKILL.
struct Mounted {
    mount: Option<Mount>,
    device: Option<LoopDevice>,
    image: Option<PathBuf>,
}

impl Drop for Mounted {
    fn drop(&mut self) {
        drop(self.mount.take());
        drop(self.device.take());
        if let Some(image) = self.image.take() {
            let _ = std::fs::remove_file(image);
        }
    }
}

/// Mount a filesystem of `bytes` of kind `fs` over `dir`, in namespaces of
/// this process's own.
fn mount_capacity(fs: CapacityFs, dir: &Path, bytes: u64, mode: u32, image: &Path) -> Result<Mounted, HelperError> {
    let realcut = |e: crate::realcut::RealcutError| HelperError {
        what: format!("cannot make the {bytes}-byte {fs} of --capacity"),
        error: std::io::Error::other(e.to_string()),
    };
    match fs {
        CapacityFs::Tmpfs => {
            private_user_namespace().map_err(|e| realcut(e.into()))?;
            private_mount_namespace().map_err(|e| realcut(e.into()))?;
            let mount =
                Mount::new(Path::new("crashlab-capacity"), dir, "tmpfs", &format!("size={bytes},mode={mode:o}"))
                    .map_err(|e| realcut(e.into()))?;
            Ok(Mounted { mount: Some(mount), device: None, image: None })
        }
        CapacityFs::Ext4 => {
            private_mount_namespace().map_err(|e| realcut(e.into()))?;
            let mut mounted = Mounted { mount: None, device: None, image: Some(image.to_owned()) };
            let file = std::fs::File::create(image).map_err(io(format!("cannot create {}", image.display())))?;
            file.set_len(bytes).map_err(io(format!("cannot size {}", image.display())))?;
            drop(file);
            let mkfs = find_program("mkfs.ext4").ok_or_else(|| HelperError {
                what: "--capacity-fs ext4: mkfs.ext4 not found (apt-get install -y e2fsprogs)".into(),
                error: std::io::Error::from(std::io::ErrorKind::NotFound),
            })?;
            // No journal and no reserved blocks: the capacity is what files
            // can have, the same for root and for users.
            let args = ["-q", "-F", "-b", "4096", "-O", "^has_journal", "-m", "0"];
            let mut argv: Vec<&OsStr> = args.iter().map(OsStr::new).collect();
            argv.push(image.as_os_str());
            run_command(&mkfs, &argv).map_err(realcut)?;
            let device = mounted.device.insert(LoopDevice::attach(image, false).map_err(realcut)?);
            mounted.mount = Some(Mount::new(device.path(), dir, "ext4", "").map_err(|e| realcut(e.into()))?);
            std::fs::set_permissions(dir, std::fs::Permissions::from_mode(mode))
                .map_err(io(format!("cannot set the mode of {}", dir.display())))?;
            std::fs::remove_dir(dir.join("lost+found")).map_err(io("cannot remove ext4's lost+found"))?;
            Ok(mounted)
        }
    }
}

/// [`HOLD`]: say the filesystem is ready, then wait until crashlab says
/// the writer has ended (a line on standard input, or its end: a crashlab
/// gone copies out what there is and exits too). Meanwhile crashlab's
/// traced writer `setns`es into this process's namespaces
/// (`/proc/PID/ns/user`, `/proc/PID/ns/mnt`), which this process keeps
/// alive, and its mount with them.
fn hold() -> Result<(), HelperError> {
    use std::io::{BufRead, Write};
    let mut out = std::io::stdout().lock();
    writeln!(out, "{READY}").and_then(|()| out.flush()).map_err(io("cannot say the filesystem is ready (stdout)"))?;
    let mut line = String::new();
    std::io::stdin().lock().read_line(&mut line).map_err(io("cannot wait for the writer's end (stdin)"))?;
    Ok(())
}

/// Run the writer to its end; it dies with this helper.
fn run_writer(program: &OsStr, argv0: &OsStr, args: &[OsString], dir: &Path) -> Result<ProcessEnd, HelperError> {
    let mut command = std::process::Command::new(program);
    command.arg0(argv0).args(args).current_dir(dir);
    // SAFETY: the hook runs in the forked child of this single-threaded
    // process and makes one async-signal-safe syscall.
    unsafe {
        command.pre_exec(|| {
            if libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL) != 0 {
                return Err(std::io::Error::last_os_error());
            }
            Ok(())
        });
    }
    let status = command
        .status()
        .map_err(io(format!("cannot start the writer `{}` (--writer)", Path::new(program).display())))?;
    Ok(match (status.code(), status.signal()) {
        (Some(code), _) => ProcessEnd::Exited(code),
        (None, Some(sig)) => ProcessEnd::Signaled(sig),
        (None, None) => unreachable!("a process that ended either exited or was signalled"),
    })
}

fn usage(dir: &Path) -> Result<(u64, u64), HelperError> {
    let s = nix::sys::statvfs::statvfs(dir).map_err(|e| HelperError {
        what: format!("cannot statvfs {}", dir.display()),
        error: std::io::Error::from_raw_os_error(e as i32),
    })?;
    let unit = s.fragment_size() as u64;
    let total = s.blocks() as u64 * unit;
    let free = s.blocks_available() as u64 * unit;
    Ok((total - free, free))
}

fn empty_dir(dir: &Path) -> Result<(), HelperError> {
    for entry in std::fs::read_dir(dir).map_err(io("cannot list the trial directory"))? {
        let entry = entry.map_err(io("cannot list the trial directory"))?;
        let path = entry.path();
        let removed = if entry.file_type().map_err(io("cannot stat an entry"))?.is_dir() {
            std::fs::remove_dir_all(&path)
        } else {
            std::fs::remove_file(&path)
        };
        removed.map_err(io(format!("cannot remove {}", entry.file_name().to_string_lossy())))?;
    }
    Ok(())
}

/// Copy every entry of `from` into the existing directory `to`: regular
/// files sparse-aware (holes stay holes: `realcut`'s one sparse copy),
/// directories, symbolic links; modes kept. Hard links
/// become separate files, and other kinds of file (fifos, sockets,
/// devices) are not copied: a checker sees files and directories.
pub(crate) fn copy_tree(from: &Path, to: &Path) -> Result<(), HelperError> {
    for entry in std::fs::read_dir(from).map_err(io(format!("cannot list {}", from.display())))? {
        let entry = entry.map_err(io(format!("cannot list {}", from.display())))?;
        let (src, dst) = (entry.path(), to.join(entry.file_name()));
        let name = || entry.file_name().to_string_lossy().into_owned();
        let meta = std::fs::symlink_metadata(&src).map_err(io(format!("cannot stat {}", name())))?;
        let kind = meta.file_type();
        if kind.is_dir() {
            std::fs::create_dir(&dst).map_err(io(format!("cannot create the directory {}", name())))?;
            copy_tree(&src, &dst)?;
        } else if kind.is_symlink() {
            let target = std::fs::read_link(&src).map_err(io(format!("cannot read the link {}", name())))?;
            std::os::unix::fs::symlink(target, &dst).map_err(io(format!("cannot create the link {}", name())))?;
            continue;
        } else if kind.is_file() {
            copy_sparse(&src, &dst).map_err(|e| HelperError {
                what: format!("cannot copy {}", name()),
                error: std::io::Error::other(e.to_string()),
            })?;
        } else if kind.is_fifo() || kind.is_socket() || kind.is_block_device() || kind.is_char_device() {
            continue;
        }
        std::fs::set_permissions(&dst, std::fs::Permissions::from_mode(meta.mode() & 0o7777))
            .map_err(io(format!("cannot set the mode of {}", name())))?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_copied_tree_keeps_its_holes_links_and_modes() {
        let from = tempfile::tempdir().unwrap();
        let to = tempfile::tempdir().unwrap();
        let page = crate::page_size::page_size();
        let sparse = from.path().join("sparse");
        let f = std::fs::File::create(&sparse).unwrap();
        f.set_len(64 * page).unwrap();
        std::os::unix::fs::FileExt::write_all_at(&f, b"tail", 63 * page).unwrap();
        std::os::unix::fs::FileExt::write_all_at(&f, b"head", 0).unwrap();
        std::fs::create_dir(from.path().join("sub")).unwrap();
        std::fs::write(from.path().join("sub/small"), b"x").unwrap();
        std::fs::set_permissions(from.path().join("sub/small"), std::fs::Permissions::from_mode(0o640)).unwrap();
        std::os::unix::fs::symlink("sub/small", from.path().join("link")).unwrap();
        copy_tree(from.path(), to.path()).unwrap();
        let copied = std::fs::read(to.path().join("sparse")).unwrap();
        assert_eq!(copied.len() as u64, 64 * page);
        assert_eq!(&copied[..4], b"head");
        assert_eq!(&copied[63 * page as usize..63 * page as usize + 4], b"tail");
        assert!(copied[4..63 * page as usize].iter().all(|&b| b == 0));
        // Two data pages of 64: the holes were not written (a filesystem
        // may round its allocation up, never to the whole file).
        let blocks = std::fs::metadata(to.path().join("sparse")).unwrap().blocks() * 512;
        assert!(blocks < 32 * page, "{blocks} bytes allocated for 2 data pages");
        assert_eq!(std::fs::read(to.path().join("sub/small")).unwrap(), b"x");
        let mode = std::fs::metadata(to.path().join("sub/small")).unwrap().mode() & 0o777;
        assert_eq!(mode, 0o640);
        assert_eq!(std::fs::read_link(to.path().join("link")).unwrap(), Path::new("sub/small"));
    }
}
