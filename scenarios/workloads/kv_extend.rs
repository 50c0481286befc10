//! A key-value log that grows its file with `write` and keeps its header
//! in a mapping, like many small stores: page 0 of `kv.db` is the header
//! (magic, record count), mapped `MAP_SHARED`; records of 64 bytes are
//! appended after it with `pwrite`, which extends the file.
//!
//! - `kv-append-first` (correct): `pwrite` the record, `fdatasync`, then
//!   store the new count in the mapped header, `msync(MS_SYNC)` it, ack. A
//!   crash between the two leaves a record past the count: ignored.
//! - `kv-header-first` (the mistake): the count is stored in the mapped
//!   header *before* the `pwrite` that appends the record. A process killed
//!   between the store and the `pwrite` leaves a header that counts a record
//!   the file does not hold: the store is corrupt. The window is the few
//!   microseconds between a store and the next system call, which crashes
//!   at random times almost never hit; a crash "just before the `pwrite`"
//!   (`--points syscalls`) hits it every time.

use std::os::unix::fs::FileExt;

use crate::common::{
    ack, ack_field, acks, create_durably, die, page_size, read, seed, slice_or_zeros, u32_at, violation, Mapping,
};

const FILE: &str = "kv.db";
const MAGIC: u32 = 0x4B56_4C47; // "KVLG"
const RECORD: usize = 64;

/// Record `seq`: its number, the salt, and 56 bytes derived from both.
fn record(salt: u32, seq: u32) -> [u8; RECORD] {
    let mut r = [0u8; RECORD];
    r[..4].copy_from_slice(&seq.to_le_bytes());
    r[4..8].copy_from_slice(&salt.to_le_bytes());
    let mut z = (salt as u64) << 32 | seq as u64;
    for chunk in r[8..].chunks_exact_mut(8) {
        z = z.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut x = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        x = (x ^ (x >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        chunk.copy_from_slice(&(x ^ (x >> 31)).to_le_bytes());
    }
    r
}

fn header(count: u32) -> [u8; 8] {
    let mut h = [0u8; 8];
    h[..4].copy_from_slice(&MAGIC.to_le_bytes());
    h[4..].copy_from_slice(&count.to_le_bytes());
    h
}

/// `crashlab-workload kv-* setup`: the header page with no record, durably.
pub fn setup() {
    create_durably(FILE, page_size(), &header(0));
}

/// `header_first`: the mistake's order.
pub fn writer(header_first: bool, records: usize) {
    let page = page_size();
    // The setup made the 1-page file; open it without truncating.
    let map = Mapping::create(FILE, page, true);
    let salt = seed() as u32;
    for seq in 0..records as u32 {
        let offset = (page + seq as usize * RECORD) as u64;
        let append = || {
            map.file.write_all_at(&record(salt, seq), offset).unwrap_or_else(|e| die(&format!("pwrite: {e}")));
            map.file.sync_data().unwrap_or_else(|e| die(&format!("fdatasync: {e}")));
        };
        if header_first {
            map.store(0, &header(seq + 1));
            append();
        } else {
            append();
            map.store(0, &header(seq + 1));
        }
        map.msync(0, page, libc::MS_SYNC);
        ack(&format!("rec {seq}"));
    }
}

pub fn checker() {
    let bytes = read(FILE);
    let page = page_size();
    if bytes.len() < page || u32_at(&bytes, 0) != MAGIC {
        violation(&format!("{FILE} has no header ({} bytes)", bytes.len()));
    }
    let count = u32_at(&bytes, 4);
    let held = (bytes.len() - page) / RECORD;
    if count as usize > held {
        violation(&format!("the header counts {count} records but {FILE} holds only {held}"));
    }
    let salt = u32_at(&bytes, page + 4);
    for seq in 0..count {
        let at = page + seq as usize * RECORD;
        if slice_or_zeros(&bytes, at, RECORD) != record(salt, seq) {
            violation(&format!("record {seq} of {count} is corrupt"));
        }
    }
    for line in acks() {
        let Some(seq) = ack_field(&line, "rec") else { die(&format!("unreadable ack line `{line}`")) };
        if seq >= count as u64 {
            violation(&format!("acked record {seq} is missing: the header counts {count}"));
        }
    }
}
