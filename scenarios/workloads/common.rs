//! What every example workload shares: the protocol's environment, a seeded
//! generator, CRC-32, a file mapping, acknowledgements and verdicts.

use std::io::Write;
use std::os::fd::AsRawFd;
use std::path::PathBuf;

/// The trial directory (`CRASHLAB_DIR`; the working directory otherwise).
pub fn dir() -> PathBuf {
    std::env::var_os("CRASHLAB_DIR").map(PathBuf::from).unwrap_or_else(|| PathBuf::from("."))
}

/// `CRASHLAB_SEED`, or 0 when run by hand.
pub fn seed() -> u64 {
    std::env::var("CRASHLAB_SEED").ok().and_then(|s| s.parse().ok()).unwrap_or(0)
}

/// splitmix64: small, seedable, good enough for payloads.
pub struct Rng(pub u64);

impl Rng {
    pub fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// Uniform in [lo, hi].
    pub fn range(&mut self, lo: u64, hi: u64) -> u64 {
        lo + self.next() % (hi - lo + 1)
    }

    /// Non-zero bytes, so a record never ends in zeros (see the sigbus crash).
    pub fn bytes(&mut self, n: usize) -> Vec<u8> {
        (0..n).map(|_| (self.next() % 255) as u8 + 1).collect()
    }
}

/// CRC-32 (IEEE), bitwise: the examples are about ordering, not speed.
pub fn crc32(bytes: &[u8]) -> u32 {
    let mut crc = !0u32;
    for &b in bytes {
        crc ^= b as u32;
        for _ in 0..8 {
            crc = if crc & 1 != 0 { (crc >> 1) ^ 0xEDB8_8320 } else { crc >> 1 };
        }
    }
    !crc
}

pub fn page_size() -> usize {
    // SAFETY: sysconf has no preconditions.
    unsafe { libc::sysconf(libc::_SC_PAGESIZE) as usize }
}

/// A file of a fixed size mapped whole, shared or private.
pub struct Mapping {
    pub file: std::fs::File,
    ptr: *mut u8,
    len: usize,
}

impl Mapping {
    /// Create `name` in the trial directory, or open it if it exists (a
    /// setup may have created it durably: its bytes are kept), size it to
    /// `len` bytes (zero-filled past its old end) and map it. Syscalls:
    /// `openat(O_RDWR|O_CREAT)`, `ftruncate`, `mmap`; never a sync.
    pub fn create(name: &str, len: usize, shared: bool) -> Mapping {
        let file = open_in_dir(name, false);
        file.set_len(len as u64).unwrap_or_else(|e| die(&format!("cannot size {}: {e}", dir().join(name).display())));
        Mapping::map(file, name, len, shared)
    }

    /// The textbook start of a replacement file: `openat(O_RDWR|O_CREAT|O_TRUNC)`
    /// (a new, empty file, or the old one emptied), `ftruncate` to `len`,
    /// `mmap(MAP_SHARED)`.
    pub fn create_truncated(name: &str, len: usize) -> Mapping {
        let file = open_in_dir(name, true);
        file.set_len(len as u64).unwrap_or_else(|e| die(&format!("cannot size {}: {e}", dir().join(name).display())));
        Mapping::map(file, name, len, true)
    }

    /// Map `len` bytes of `file` (which may be shorter: pages past its end
    /// fault with SIGBUS until it grows).
    pub fn map(file: std::fs::File, name: &str, len: usize, shared: bool) -> Mapping {
        let flags = if shared { libc::MAP_SHARED } else { libc::MAP_PRIVATE };
        // SAFETY: a fresh mapping of an open file; nothing else aliases it.
        let ptr = unsafe {
            libc::mmap(std::ptr::null_mut(), len, libc::PROT_READ | libc::PROT_WRITE, flags, file.as_raw_fd(), 0)
        };
        if ptr == libc::MAP_FAILED {
            die(&format!("mmap of {} failed: {}", dir().join(name).display(), std::io::Error::last_os_error()));
        }
        Mapping { file, ptr: ptr.cast(), len }
    }

    /// `munmap` now. (There is no `Drop`: the older examples never unmap, and
    /// an unmap at their end would add a crash point to their runs.)
    pub fn unmap(self) -> std::fs::File {
        // SAFETY: the whole mapping, which nothing uses after this.
        if unsafe { libc::munmap(self.ptr.cast(), self.len) } != 0 {
            die(&format!("munmap failed: {}", std::io::Error::last_os_error()));
        }
        self.file
    }

    /// Store `bytes` at `offset` through the mapping.
    pub fn store(&self, offset: usize, bytes: &[u8]) {
        assert!(offset + bytes.len() <= self.len, "store past the mapping");
        // SAFETY: in bounds (checked above); the mapping lives as long as self.
        unsafe { std::ptr::copy_nonoverlapping(bytes.as_ptr(), self.ptr.add(offset), bytes.len()) };
    }

    /// Store one aligned u64 with a single instruction: it cannot tear.
    pub fn store_u64_atomic(&self, offset: usize, value: u64) {
        assert!(offset % 8 == 0 && offset + 8 <= self.len);
        // SAFETY: aligned and in bounds; AtomicU64 has u64's layout.
        let cell = unsafe { &*(self.ptr.add(offset) as *const std::sync::atomic::AtomicU64) };
        cell.store(value, std::sync::atomic::Ordering::Release);
    }

    /// A raw pointer for filling a region in place.
    pub fn at(&self, offset: usize) -> *mut u8 {
        assert!(offset <= self.len);
        // SAFETY: in bounds.
        unsafe { self.ptr.add(offset) }
    }

    pub fn bytes(&self) -> &[u8] {
        // SAFETY: the mapping is valid for len bytes while self lives.
        unsafe { std::slice::from_raw_parts(self.ptr, self.len) }
    }

    /// msync the pages covering [offset, offset+len) with `flags`.
    pub fn msync(&self, offset: usize, len: usize, flags: libc::c_int) {
        if let Err(e) = self.try_msync(offset, len, flags) {
            die(&format!("msync failed: {e}"));
        }
    }

    /// `msync` of the pages holding `[offset, offset + len)`, its error
    /// returned (the `eio-sync` examples act on it).
    pub fn try_msync(&self, offset: usize, len: usize, flags: libc::c_int) -> std::io::Result<()> {
        let page = page_size();
        let start = offset / page * page;
        let end = (offset + len).min(self.len);
        // SAFETY: a page-aligned range inside the mapping.
        if unsafe { libc::msync(self.ptr.add(start).cast(), end - start, flags) } != 0 {
            return Err(std::io::Error::last_os_error());
        }
        Ok(())
    }
}

/// Open `name` in the trial directory for reading and writing, creating it
/// if missing (`O_RDWR|O_CREAT`, plus `O_TRUNC` with `truncate`).
pub fn open_in_dir(name: &str, truncate: bool) -> std::fs::File {
    let path = dir().join(name);
    std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(truncate)
        .open(&path)
        .unwrap_or_else(|e| die(&format!("cannot open {}: {e}", path.display())))
}

/// `fsync` of a file, dying on failure.
pub fn fsync(file: &std::fs::File, name: &str) {
    file.sync_all().unwrap_or_else(|e| die(&format!("fsync of {} failed: {e}", dir().join(name).display())));
}

/// `fsync` of the trial directory (`open(".", O_RDONLY|O_DIRECTORY)`,
/// `fsync`, `close`): what makes its entries (creations, renames, unlinks)
/// durable. fsync(2): "Calling fsync() does not necessarily ensure that the
/// entry in the directory containing the file has also reached disk. For
/// that an explicit fsync() on a file descriptor for the directory is also
/// needed."
pub fn fsync_dir() {
    use std::os::unix::fs::OpenOptionsExt;
    let path = dir();
    let d = std::fs::OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_DIRECTORY)
        .open(&path)
        .unwrap_or_else(|e| die(&format!("cannot open the directory {}: {e}", path.display())));
    d.sync_all().unwrap_or_else(|e| die(&format!("fsync of the directory {} failed: {e}", path.display())));
}

/// What every `setup` role does for a file: create it (or open it), give
/// it `len` bytes, fill `content` at offset 0 with `pwrite`, `fsync` it,
/// then `fsync` the directory. crashlab takes what a setup leaves as
/// durable; these calls make it so on a real machine too.
pub fn create_durably(name: &str, len: usize, content: &[u8]) {
    use std::os::unix::fs::FileExt;
    let file = open_in_dir(name, false);
    let path = dir().join(name);
    file.set_len(len as u64).unwrap_or_else(|e| die(&format!("cannot size {}: {e}", path.display())));
    file.write_all_at(content, 0).unwrap_or_else(|e| die(&format!("cannot write {}: {e}", path.display())));
    fsync(&file, name);
    fsync_dir();
}

/// A pause after every acknowledgement (`--pace-us`): gives a writer a
/// steady timeline, dominated by sleeps, so that a crash time replays to
/// about the same place even on a loaded machine.
pub static PACE: std::sync::OnceLock<std::time::Duration> = std::sync::OnceLock::new();

/// Acknowledge one operation: one line, flushed, so crashlab sees it now.
pub fn ack(line: &str) {
    let mut out = std::io::stdout().lock();
    if writeln!(out, "{line}").and_then(|_| out.flush()).is_err() {
        std::process::exit(2);
    }
    if let Some(pace) = PACE.get() {
        std::thread::sleep(*pace);
    }
}

/// The acknowledged lines the checker must find (`CRASHLAB_ACKS`).
pub fn acks() -> Vec<String> {
    let Some(path) = std::env::var_os("CRASHLAB_ACKS") else { die("CRASHLAB_ACKS is not set") };
    let text = std::fs::read_to_string(&path)
        .unwrap_or_else(|e| die(&format!("cannot read CRASHLAB_ACKS {}: {e}", PathBuf::from(&path).display())));
    text.lines().map(str::to_owned).collect()
}

/// Read a file of the trial directory; a missing file reads as empty.
pub fn read(name: &str) -> Vec<u8> {
    let path = dir().join(name);
    match std::fs::read(&path) {
        Ok(b) => b,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Vec::new(),
        Err(e) => die(&format!("cannot read {}: {e}", path.display())),
    }
}

/// `len` bytes at `offset` of `bytes`, zeros past its end: a file may end
/// early after crashlab's sigbus crash cut its all-zero tail.
pub fn slice_or_zeros(bytes: &[u8], offset: usize, len: usize) -> Vec<u8> {
    let mut out = vec![0u8; len];
    if offset < bytes.len() {
        let n = len.min(bytes.len() - offset);
        out[..n].copy_from_slice(&bytes[offset..offset + n]);
    }
    out
}

pub fn u32_at(bytes: &[u8], offset: usize) -> u32 {
    u32::from_le_bytes(slice_or_zeros(bytes, offset, 4).try_into().unwrap())
}

/// The four little-endian words of a 16-byte record header at `offset`
/// (magic, record number, payload length, CRC), zeros past the end.
pub fn header_words(bytes: &[u8], offset: usize) -> (u32, u32, u64, u64) {
    (
        u32_at(bytes, offset),
        u32_at(bytes, offset + 4),
        u32_at(bytes, offset + 8) as u64,
        u32_at(bytes, offset + 12) as u64,
    )
}

/// The checker's "violation": exit 1, the reason on the first stderr line.
pub fn violation(reason: &str) -> ! {
    eprintln!("{reason}");
    std::process::exit(1)
}

/// Anything else going wrong: neither a pass nor a violation.
pub fn die(message: &str) -> ! {
    eprintln!("crashlab-workload: {message}");
    std::process::exit(2)
}

/// Parse `key value` pairs from an ack line such as `rec 3 len 100 crc 0a0b0c0d`.
pub fn ack_field(line: &str, key: &str) -> Option<u64> {
    let mut words = line.split_whitespace();
    while let Some(w) = words.next() {
        if w == key {
            let v = words.next()?;
            return if key == "crc" { u64::from_str_radix(v, 16).ok() } else { v.parse().ok() };
        }
    }
    None
}
