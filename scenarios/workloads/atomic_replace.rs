//! Replacing a small state file atomically, the textbook way, and the same
//! without the directory fsync.
//!
//! The state is two pages: a header page (magic, version, payload length,
//! payload CRC, then a CRC of those header bytes) and a payload page (bytes
//! that are a function of the seed and the version, so the checker can
//! recompute them). `setup` writes version 0 to `state` durably. Each update
//! `K = 1, 2, ...` of the writer:
//!
//! 1. `openat("state.tmp", O_RDWR|O_CREAT|O_TRUNC)`, `ftruncate` to two
//!    pages, `mmap(MAP_SHARED)`, stores of both pages;
//! 2. `msync(MS_SYNC)` of the mapping, `munmap`, `fsync(state.tmp)`;
//! 3. `rename("state.tmp", "state")`;
//! 4. `fsync` of the directory (`open(".", O_RDONLY|O_DIRECTORY)`): the
//!    rename is durable only now;
//! 5. acks `version K crc C`.
//!
//! `atomic-replace-no-dir-fsync` skips step 4: the mistake. After a power
//! loss the rename may be undone and `state` names the previous file again
//! (real cuts on a loop device lost such a rename in 30 of 30 trials on
//! ext4, 10 of 10 on xfs: shared/README.md), so an acked version is lost. A
//! process crash never shows it (the page cache and the dentry cache outlive
//! the process); a power-loss model with directory entries (the strict POSIX
//! model, crashlab's `posix`) does.
//!
//! The checker: `state` must exist once a version was acked, hold one
//! complete version (both CRCs right, the payload the one of its version),
//! no older than the last acked version and no newer than the one after it
//! (the update in flight). A leftover `state.tmp` is ignored.

use crate::common::{
    ack, ack_field, acks, crc32, die, dir, fsync, fsync_dir, page_size, read, seed, slice_or_zeros, u32_at, violation,
    Mapping, Rng,
};

const STATE: &str = "state";
const TMP: &str = "state.tmp";
const MAGIC: u32 = 0x5441_5453; // "STAT"
/// magic, version (u64), payload length, payload CRC.
const HEADER: usize = 20;

/// The payload of `version`: a function of the seed and the version.
fn payload(seed: u64, version: u64) -> Vec<u8> {
    let mut rng = Rng(seed ^ version.wrapping_mul(0x9E37_79B9_7F4A_7C15));
    let len = rng.range(64, page_size() as u64) as usize;
    rng.bytes(len)
}

/// Both pages of `version`.
fn image(seed: u64, version: u64) -> (Vec<u8>, u32) {
    let page = page_size();
    let value = payload(seed, version);
    let crc = crc32(&value);
    let mut bytes = vec![0u8; 2 * page];
    bytes[0..4].copy_from_slice(&MAGIC.to_le_bytes());
    bytes[4..12].copy_from_slice(&version.to_le_bytes());
    bytes[12..16].copy_from_slice(&(value.len() as u32).to_le_bytes());
    bytes[16..20].copy_from_slice(&crc.to_le_bytes());
    let header_crc = crc32(&bytes[..HEADER]);
    bytes[HEADER..HEADER + 4].copy_from_slice(&header_crc.to_le_bytes());
    bytes[page..page + value.len()].copy_from_slice(&value);
    (bytes, crc)
}

/// `crashlab-workload atomic-replace[-no-dir-fsync] setup`: version 0 in
/// `state`, durably (written, fsynced, directory fsynced).
pub fn setup() {
    let (bytes, _) = image(seed(), 0);
    crate::common::create_durably(STATE, bytes.len(), &bytes);
}

pub fn writer(dir_fsync: bool, updates: usize) {
    let seed = seed();
    let (from, to) = (dir().join(TMP), dir().join(STATE));
    for version in 1..=updates as u64 {
        let (bytes, crc) = image(seed, version);
        let map = Mapping::create_truncated(TMP, bytes.len());
        map.store(0, &bytes);
        map.msync(0, bytes.len(), libc::MS_SYNC);
        let file = map.unmap();
        fsync(&file, TMP);
        drop(file);
        std::fs::rename(&from, &to).unwrap_or_else(|e| die(&format!("rename {TMP} -> {STATE} failed: {e}")));
        if dir_fsync {
            fsync_dir();
        }
        ack(&format!("version {version} crc {crc:08x}"));
    }
}

pub fn checker() {
    let acked: Vec<u64> = acks()
        .iter()
        .map(|l| ack_field(l, "version").unwrap_or_else(|| die(&format!("unreadable ack line `{l}`"))))
        .collect();
    let last_acked = acked.iter().copied().max();
    let path = dir().join(STATE);
    let bytes = match std::fs::symlink_metadata(&path) {
        Ok(_) => read(STATE),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => match last_acked {
            Some(v) => violation(&format!("{STATE} is missing, but version {v} was acked")),
            // Nothing acked and no setup ran: nothing was promised.
            None => return,
        },
        Err(e) => die(&format!("cannot stat {}: {e}", path.display())),
    };
    let page = page_size();
    let magic = u32_at(&bytes, 0);
    let version = u64::from_le_bytes(slice_or_zeros(&bytes, 4, 8).try_into().unwrap());
    let (len, crc) = (u32_at(&bytes, 12) as usize, u32_at(&bytes, 16));
    if magic != MAGIC || crc32(&slice_or_zeros(&bytes, 0, HEADER)) != u32_at(&bytes, HEADER) {
        violation(&format!(
            "{STATE} is not a complete version: its header's CRC is wrong ({} bytes, magic {magic:#x})",
            bytes.len()
        ));
    }
    if len > page || crc32(&slice_or_zeros(&bytes, page, len)) != crc {
        violation(&format!("{STATE} holds version {version} whose payload does not match its CRC: torn"));
    }
    if slice_or_zeros(&bytes, page, len) != payload(seed(), version) {
        violation(&format!("{STATE} holds version {version} with a payload the writer never wrote for it"));
    }
    let last = last_acked.unwrap_or(0);
    if version < last {
        violation(&format!("acked version {last} is lost: {STATE} holds version {version}"));
    }
    if version > last + 1 {
        violation(&format!("{STATE} holds version {version}, never written after acked version {last}"));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_image_carries_its_version_and_both_crcs() {
        let (bytes, crc) = image(7, 3);
        assert_eq!(bytes.len(), 2 * page_size());
        assert_eq!(u32_at(&bytes, 0), MAGIC);
        assert_eq!(u64::from_le_bytes(bytes[4..12].try_into().unwrap()), 3);
        assert_eq!(crc32(&bytes[..HEADER]), u32_at(&bytes, HEADER));
        assert_eq!(crc, crc32(&payload(7, 3)));
        assert_ne!(payload(7, 3), payload(7, 4));
    }
}
