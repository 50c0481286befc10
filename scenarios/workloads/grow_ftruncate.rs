//! A file grown by `ftruncate`, a step at a time, each new area holding one
//! record written through a mapping and `msync(MS_SYNC)`ed (correct).
//!
//! `setup` creates `grow.db` durably: one page (a header: magic and the step
//! in pages), fsynced, directory fsynced. The writer maps the file's final
//! size once (`mmap(MAP_SHARED)` past the end is allowed; a store there
//! would fault until the file grows), then for record `K = 0, 1, ...`:
//!
//! 1. `ftruncate` to `1 + 2 (K + 1)` pages: a new area of two pages;
//! 2. stores of the record (a 16-byte header: magic, K, payload length,
//!    CRC-32 of K and payload; 64 bytes to a page minus the header of
//!    payload from the seed) at the start of the new area: only its first
//!    page;
//! 3. `msync(MS_SYNC)` of the record's range (that first page);
//! 4. acks `rec K len L crc C size S`.
//!
//! Why it is correct: `msync(MS_SYNC)` runs `vfs_fsync_range(..., datasync
//! = 1)`, an fdatasync of the range, and fdatasync(2) flushes the metadata
//! "needed to allow a subsequent data retrieval to be correctly handled",
//! the file size included. So once the record is acked the size the
//! writer set before it is durable. (Real cuts on ext4 and xfs kept the
//! whole new size 10 of 10 times.)
//!
//! The checker: every acked record valid at its place; the file's length
//! one the writer set, `1 + 2 j` pages: never, say, the end of the last
//! msynced range (an even number of pages), which a model that raises the
//! durable size only to cover synced ranges would produce; at least the
//! size set before the last acked record, at most one step more. (Not for
//! `--crash sigbus`: that crash cuts the file to a length of crashlab's
//! choosing, which this checker rightly reports as one the writer never set.)

use crate::common::{
    ack, ack_field, acks, crc32, die, dir, header_words, open_in_dir, page_size, read, seed, slice_or_zeros, violation,
    Mapping, Rng,
};

const FILE: &str = "grow.db";
const MAGIC: u32 = 0x574F_5247; // "GROW"
const HEADER: usize = 16;
const STEP_PAGES: usize = 2;

fn step() -> usize {
    STEP_PAGES * page_size()
}

/// The file's length once record `k` has its area.
fn len_with(k: usize) -> usize {
    page_size() + (k + 1) * step()
}

fn record_crc(seq: u32, payload: &[u8]) -> u32 {
    let mut bytes = seq.to_le_bytes().to_vec();
    bytes.extend_from_slice(payload);
    crc32(&bytes)
}

fn header_page() -> Vec<u8> {
    [MAGIC, STEP_PAGES as u32].iter().flat_map(|w| w.to_le_bytes()).collect()
}

/// `crashlab-workload grow-ftruncate setup`: `grow.db`, one page with its
/// header, durably (written, fsynced, directory fsynced).
pub fn setup() {
    crate::common::create_durably(FILE, page_size(), &header_page());
}

pub fn writer(records: usize) {
    let page = page_size();
    let file = open_in_dir(FILE, false);
    let map = Mapping::map(file, FILE, len_with(records.saturating_sub(1)), true);
    let mut rng = Rng(seed());
    for k in 0..records {
        let size = len_with(k);
        map.file.set_len(size as u64).unwrap_or_else(|e| die(&format!("ftruncate of {FILE} to {size} failed: {e}")));
        let len = rng.range(64, (page - HEADER) as u64) as usize;
        let payload = rng.bytes(len);
        let crc = record_crc(k as u32, &payload);
        let offset = size - step();
        let header: Vec<u8> = [MAGIC, k as u32, len as u32, crc].iter().flat_map(|w| w.to_le_bytes()).collect();
        map.store(offset, &header);
        map.store(offset + HEADER, &payload);
        map.msync(offset, HEADER + len, libc::MS_SYNC);
        ack(&format!("rec {k} len {len} crc {crc:08x} size {size}"));
    }
}

pub fn checker() {
    let page = page_size();
    let acked: Vec<(u64, u64, u64)> = acks()
        .iter()
        .map(|l| match (ack_field(l, "rec"), ack_field(l, "len"), ack_field(l, "crc")) {
            (Some(k), Some(len), Some(crc)) => (k, len, crc),
            _ => die(&format!("unreadable ack line `{l}`")),
        })
        .collect();
    let path = dir().join(FILE);
    let size = match std::fs::symlink_metadata(&path) {
        Ok(m) => m.len() as usize,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            if let Some(&(k, ..)) = acked.last() {
                violation(&format!("{FILE} is missing, but record {k} was acked"));
            }
            return; // no setup ran, nothing acked: nothing promised
        }
        Err(e) => die(&format!("cannot stat {}: {e}", path.display())),
    };
    if size < page || (size - page) % step() != 0 {
        violation(&format!(
            "{FILE} is {size} bytes: not a length the writer ever set (1 page + a multiple of {STEP_PAGES} pages)"
        ));
    }
    if let Some(&(k, ..)) = acked.last() {
        let (least, most) = (len_with(k as usize), len_with(k as usize + 1));
        if size < least {
            violation(&format!("{FILE} is {size} bytes: the size set before acked record {k} was {least}"));
        }
        if size > most {
            violation(&format!("{FILE} is {size} bytes: grown past {most}, never set after acked record {k}"));
        }
    }
    let bytes = read(FILE);
    for &(k, len, crc) in &acked {
        let offset = len_with(k as usize) - step();
        let (magic, seq, found_len, found_crc) = header_words(&bytes, offset);
        if magic != MAGIC || seq as u64 != k || (found_len, found_crc) != (len, crc) {
            violation(&format!(
                "acked record {k} is missing: its area at byte {offset} holds magic {magic:#x}, record {seq}, len {found_len}"
            ));
        }
        let payload = slice_or_zeros(&bytes, offset + HEADER, len as usize);
        if record_crc(k as u32, &payload) as u64 != crc {
            violation(&format!("acked record {k} is torn: its payload does not match its CRC"));
        }
    }
}
