//! Logs that meet a full disk (`--crash enospc`): one record per slot of
//! `log.db`, record `K` at byte `K × STRIDE`, a 16-byte header (magic, K,
//! payload length, CRC-32 of K and payload) and a seeded payload; no setup
//! (the writer creates the file).
//!
//! - `fill-mapped` (stride: a page): `ftruncate`s `log.db` to its final
//!   size once (a sparse file: no block is allocated), maps it
//!   `MAP_SHARED`, then per record stores it into its page, `msync(MS_SYNC)`,
//!   acks. It never handles SIGBUS. On a full filesystem its store into the
//!   first page the filesystem cannot allocate raises SIGBUS (mmap(2):
//!   "Attempted access to a portion of the buffer that does not correspond
//!   to the file"; on tmpfs and on disk filesystems alike, a page that
//!   cannot be allocated at the fault), and the writer **dies**: it loses
//!   no acked record, since every completed store is in the page cache,
//!   which a process's death does not touch. Correct under every kind; its
//!   `enospc` trials end in SIGBUS.
//! - `fill-fallocate` (stride: a page): maps the final size once, but
//!   allocates the file 8 pages at a time with `fallocate` before storing
//!   into them; when `fallocate` fails with `ENOSPC` it stops: no ack after
//!   it, exit status 1 with `disk full` on stderr. It never stores into an
//!   unallocated page, so never gets SIGBUS. Correct under every kind; its
//!   `enospc` trials end in exit status 1.
//! - `fill-fallocate-durable`: `fill-fallocate` that also `fsync`s the
//!   directory after creating `log.db`, so that the file's entry is durable
//!   before its first ack. Every ack then follows the `msync` of its record
//!   and the entry's sync: correct under every kind, `power-loss` and
//!   `enospc,power-loss` too (the power lost at the writer's end leaves
//!   every acked record, which a completed sync made durable).
//! - `fill-fallocate-unsynced`: `fill-fallocate-durable` without the
//!   per-record `msync`: it acks a record once it is stored. It stops on
//!   `ENOSPC` as `fill-fallocate` does, so a process crash (`enospc`, the
//!   page cache kept) loses nothing; a power loss may leave any acked
//!   record's page at its durable floor (zeros: nothing synced it), so
//!   `power-loss` and `enospc,power-loss` catch it.
//! - `append-unchecked` (stride: 256 bytes): appends each record with
//!   `write(2)` and acks without looking at the result. A full disk makes
//!   `write` fail with `ENOSPC` (or write short), the ack follows anyway:
//!   acked records are **missing**. Correct under every process crash (no
//!   write fails while the disk has room), caught by `enospc`.
//!
//! The checker: every acked record whole at its place; a missing file only
//! if nothing was acked.

use std::io::Write as _;
use std::os::fd::AsRawFd;

use crate::common::{
    ack, ack_field, acks, crc32, dir, fsync_dir, header_words, open_in_dir, page_size, read, seed, slice_or_zeros,
    violation, Mapping, Rng,
};

const FILE: &str = "log.db";
const MAGIC: u32 = 0x4C4C_5546; // "FULL"
const HEADER: usize = 16;
/// `append-unchecked`'s record slot.
const APPEND_STRIDE: usize = 256;
/// `fill-fallocate` allocates this many pages at a time.
const FALLOCATE_PAGES: usize = 8;

/// The writers.
#[derive(Clone, Copy, PartialEq, Eq)]
pub enum Fill {
    Mapped,
    Fallocate,
    FallocateDurable,
    FallocateUnsynced,
    AppendUnchecked,
}

impl Fill {
    pub fn parse(example: &str) -> Option<Fill> {
        match example {
            "fill-mapped" => Some(Fill::Mapped),
            "fill-fallocate" => Some(Fill::Fallocate),
            "fill-fallocate-durable" => Some(Fill::FallocateDurable),
            "fill-fallocate-unsynced" => Some(Fill::FallocateUnsynced),
            "append-unchecked" => Some(Fill::AppendUnchecked),
            _ => None,
        }
    }

    fn stride(self) -> usize {
        match self {
            Fill::Mapped | Fill::Fallocate | Fill::FallocateDurable | Fill::FallocateUnsynced => page_size(),
            Fill::AppendUnchecked => APPEND_STRIDE,
        }
    }

    /// Does it allocate with `fallocate` before storing (and stop on its
    /// `ENOSPC`)?
    fn preallocates(self) -> bool {
        matches!(self, Fill::Fallocate | Fill::FallocateDurable | Fill::FallocateUnsynced)
    }
}

fn record_crc(k: u32, payload: &[u8]) -> u32 {
    let mut bytes = k.to_le_bytes().to_vec();
    bytes.extend_from_slice(payload);
    crc32(&bytes)
}

/// Record `k` as stored: header and payload, `stride` bytes at most.
fn record(rng: &mut Rng, k: usize, stride: usize) -> (Vec<u8>, usize, u32) {
    let len = rng.range(32, (stride - HEADER) as u64) as usize;
    let payload = rng.bytes(len);
    let crc = record_crc(k as u32, &payload);
    let mut bytes: Vec<u8> = [MAGIC, k as u32, len as u32, crc].iter().flat_map(|w| w.to_le_bytes()).collect();
    bytes.extend_from_slice(&payload);
    (bytes, len, crc)
}

pub fn writer(fill: Fill, records: usize) {
    let stride = fill.stride();
    let mut rng = Rng(seed());
    let file = open_in_dir(FILE, true);
    match fill {
        Fill::AppendUnchecked => {
            let mut file = file;
            for k in 0..records {
                let (bytes, len, crc) = record(&mut rng, k, stride);
                let mut slot = bytes;
                slot.resize(stride, 0);
                // The mistake: the result (ENOSPC, or a short write) is ignored.
                let _ = file.write(&slot);
                ack(&format!("rec {k} len {len} crc {crc:08x}"));
            }
        }
        Fill::Mapped | Fill::Fallocate | Fill::FallocateDurable | Fill::FallocateUnsynced => {
            if matches!(fill, Fill::FallocateDurable | Fill::FallocateUnsynced) {
                // The file's entry durable before any ack.
                fsync_dir();
            }
            let total = records * stride;
            if fill == Fill::Mapped {
                file.set_len(total as u64).unwrap_or_else(|e| crate::common::die(&format!("ftruncate failed: {e}")));
            }
            let map = Mapping::map(file, FILE, total, true);
            let chunk = FALLOCATE_PAGES * stride;
            for k in 0..records {
                let offset = k * stride;
                if fill.preallocates() && offset % chunk == 0 {
                    let len = chunk.min(total - offset);
                    // SAFETY: fallocate on a descriptor the mapping owns.
                    let rc =
                        unsafe { libc::fallocate(map.file.as_raw_fd(), 0, offset as libc::off_t, len as libc::off_t) };
                    if rc != 0 {
                        let e = std::io::Error::last_os_error();
                        eprintln!(
                            "disk full: fallocate of {len} bytes at {offset} failed ({e}); stopped after {k} records"
                        );
                        std::process::exit(1);
                    }
                }
                let (bytes, len, crc) = record(&mut rng, k, stride);
                map.store(offset, &bytes);
                if fill != Fill::FallocateUnsynced {
                    map.msync(offset, bytes.len(), libc::MS_SYNC);
                }
                ack(&format!("rec {k} len {len} crc {crc:08x}"));
            }
        }
    }
}

pub fn checker(fill: Fill) {
    let stride = fill.stride();
    let acked: Vec<(u64, u64, u64)> = acks()
        .iter()
        .map(|l| match (ack_field(l, "rec"), ack_field(l, "len"), ack_field(l, "crc")) {
            (Some(k), Some(len), Some(crc)) => (k, len, crc),
            _ => crate::common::die(&format!("unreadable ack line `{l}`")),
        })
        .collect();
    if !dir().join(FILE).exists() {
        if let Some(&(k, ..)) = acked.last() {
            violation(&format!("{FILE} is missing, but record {k} was acked"));
        }
        return;
    }
    let bytes = read(FILE);
    for &(k, len, crc) in &acked {
        let offset = k as usize * stride;
        let (magic, seq, found_len, found_crc) = header_words(&bytes, offset);
        if magic != MAGIC || seq as u64 != k || (found_len, found_crc) != (len, crc) {
            violation(&format!(
                "acked record {k} is missing: byte {offset} holds magic {magic:#x}, record {seq}, len {found_len} ({FILE} is {} bytes)",
                bytes.len()
            ));
        }
        let payload = slice_or_zeros(&bytes, offset + HEADER, len as usize);
        if record_crc(k as u32, &payload) as u64 != crc {
            violation(&format!("acked record {k} is torn: its payload does not match its CRC"));
        }
    }
}
