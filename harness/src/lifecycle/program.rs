//! The lifecycle family's programs (`crashlab __lifecycle ROLE KIND
//! [--acks N]`), workload protocol v1: the setup, the writer and the
//! checker of each [`LifecycleKind`], run by the external engine like any
//! user's program. What they write and conclude is decided in
//! `family.rs`; this file makes the syscalls.
//!
//! They are single-threaded and use plain std and libc: the writer runs
//! under the durability oracle for power-loss trials, which sees every
//! `openat`, `ftruncate`, `mmap`, `msync`, `fsync` and `rename` they make.
//! `main.rs` dispatches them before anything could start a thread.

use std::ffi::OsString;
use std::fs::{File, OpenOptions};
use std::io::Write as _;
use std::os::fd::AsRawFd;
use std::path::{Path, PathBuf};

use super::family::{ack_line, image, judge, parse_acks, segment_name, Entry, LifecycleKind, STATE, STATE_TMP};
use crate::external::{ENV_ACKS, ENV_DIR, ENV_SEED};

/// The hidden subcommand.
pub const SUBCOMMAND: &str = "__lifecycle";

/// After each ack the writer sleeps this long, so that process crashes,
/// timed uniformly over the clean run, land between acks instead of mostly
/// in the program's start-up (on tmpfs an op takes microseconds).
const PAUSE_AFTER_ACK: std::time::Duration = std::time::Duration::from_millis(1);

/// The program's `main`: `ROLE KIND [--acks N]`. Exit 0 (done, or the
/// checker found the directory consistent), 1 (the checker found a
/// violation, its reason on stderr's first line), 2 (misuse or an I/O
/// error: a malfunction for the engine).
pub fn lifecycle_main(args: impl IntoIterator<Item = OsString>) -> i32 {
    let args: Vec<String> = args.into_iter().map(|a| a.to_string_lossy().into_owned()).collect();
    match run(&args) {
        Ok(code) => code,
        Err(e) => {
            eprintln!("crashlab {SUBCOMMAND}: {e}");
            2
        }
    }
}

fn run(args: &[String]) -> Result<i32, String> {
    let usage = || format!("usage: crashlab {SUBCOMMAND} setup|writer|checker KIND [--acks N] (started by crashlab)");
    let [role, kind, rest @ ..] = args else { return Err(usage()) };
    let kind: LifecycleKind = kind.parse()?;
    let acks = match rest {
        [] => super::family::DEFAULT_ACKS as u64,
        [flag, n] if flag == "--acks" => n.parse().map_err(|_| format!("--acks {n}: not a number"))?,
        _ => return Err(usage()),
    };
    let dir = PathBuf::from(std::env::var_os(ENV_DIR).ok_or_else(|| format!("{ENV_DIR} is not set"))?);
    let seed: u64 = std::env::var(ENV_SEED)
        .map_err(|_| format!("{ENV_SEED} is not set"))?
        .parse()
        .map_err(|_| format!("{ENV_SEED} is not a number"))?;
    match role.as_str() {
        "setup" => setup(kind, &dir, seed).map(|()| 0),
        "writer" => writer(kind, &dir, seed, acks).map(|()| 0),
        "checker" => checker(kind, &dir, seed),
        _ => Err(usage()),
    }
}

fn page() -> usize {
    crate::page_size::page_size() as usize
}

fn io<'a>(what: &str, path: &'a Path) -> impl FnOnce(std::io::Error) -> String + 'a {
    let what = what.to_owned();
    move |e| format!("{what} {}: {e}", path.display())
}

/// `fsync` of the directory: its entries (creations, renames) are durable
/// only now (fsync(2)).
fn fsync_dir(dir: &Path) -> Result<(), String> {
    File::open(dir).and_then(|d| d.sync_all()).map_err(io("cannot fsync the directory", dir))
}

/// Create `path` (truncating it), size it to `bytes`, store `bytes` through
/// a `MAP_SHARED` mapping, `msync(MS_SYNC)`, unmap, `fsync`.
fn write_through_mapping(path: &Path, bytes: &[u8]) -> Result<(), String> {
    let file = OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(true)
        .open(path)
        .map_err(io("cannot create", path))?;
    file.set_len(bytes.len() as u64).map_err(io("cannot size", path))?;
    // SAFETY: a fresh shared mapping of the whole file, which is exactly
    // `bytes.len()` long; unmapped below before the file is closed.
    unsafe {
        let addr = libc::mmap(
            std::ptr::null_mut(),
            bytes.len(),
            libc::PROT_READ | libc::PROT_WRITE,
            libc::MAP_SHARED,
            file.as_raw_fd(),
            0,
        );
        if addr == libc::MAP_FAILED {
            return Err(io("cannot map", path)(std::io::Error::last_os_error()));
        }
        std::ptr::copy_nonoverlapping(bytes.as_ptr(), addr.cast::<u8>(), bytes.len());
        let synced = libc::msync(addr, bytes.len(), libc::MS_SYNC);
        let error = std::io::Error::last_os_error();
        libc::munmap(addr, bytes.len());
        if synced != 0 {
            return Err(io("cannot msync", path)(error));
        }
    }
    file.sync_all().map_err(io("cannot fsync", path))
}

/// The initial state, durable: `replace-*` version 0 in `state`; both
/// families fsync the directory, so every power-loss state starts there.
fn setup(kind: LifecycleKind, dir: &Path, seed: u64) -> Result<(), String> {
    if kind.replaces() {
        write_through_mapping(&dir.join(STATE), &image(seed, 0, page()))?;
    }
    fsync_dir(dir)
}

fn writer(kind: LifecycleKind, dir: &Path, seed: u64, acks: u64) -> Result<(), String> {
    let mut out = std::io::stdout().lock();
    for version in 1..=acks {
        let bytes = image(seed, version, page());
        if kind.replaces() {
            let (tmp, state) = (dir.join(STATE_TMP), dir.join(STATE));
            write_through_mapping(&tmp, &bytes)?;
            std::fs::rename(&tmp, &state).map_err(io("cannot rename over", &state))?;
        } else {
            write_through_mapping(&dir.join(segment_name(version)), &bytes)?;
        }
        if kind.dir_fsync() {
            fsync_dir(dir)?;
        }
        writeln!(out, "{}", ack_line(kind, version)).and_then(|()| out.flush()).map_err(|e| format!("ack: {e}"))?;
        std::thread::sleep(PAUSE_AFTER_ACK);
    }
    Ok(())
}

/// Exit 0 or 1 with the reason (`lost: ...` / `corrupt: ...`) on stderr.
fn checker(kind: LifecycleKind, dir: &Path, seed: u64) -> Result<i32, String> {
    let acks_file = PathBuf::from(std::env::var_os(ENV_ACKS).ok_or_else(|| format!("{ENV_ACKS} is not set"))?);
    let text = std::fs::read_to_string(&acks_file).map_err(io("cannot read", &acks_file))?;
    let lines: Vec<String> = text.lines().map(str::to_owned).collect();
    let acked = parse_acks(kind, &lines)?;
    let mut entries = Vec::new();
    for e in std::fs::read_dir(dir).map_err(io("cannot list", dir))? {
        let e = e.map_err(io("cannot list", dir))?;
        let name = e.file_name().to_string_lossy().into_owned();
        let path = e.path();
        let is_file = std::fs::symlink_metadata(&path).map_err(io("cannot stat", &path))?.file_type().is_file();
        let bytes = if is_file { Some(std::fs::read(&path).map_err(io("cannot read", &path))?) } else { None };
        entries.push(Entry { name, bytes });
    }
    entries.sort_by(|a, b| a.name.cmp(&b.name));
    match judge(kind, &entries, &acked, seed, page()) {
        Ok(()) => Ok(0),
        Err(j) => {
            eprintln!("{}", j.reason());
            Ok(1)
        }
    }
}
