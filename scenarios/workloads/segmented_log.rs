//! An append log split into segment files `seg-000001`, `seg-000002`, ...
//! of four pages each, and the same log without directory fsyncs.
//!
//! Records are appended as in `wal.rs` (a 16-byte header: magic, sequence
//! number, payload length, CRC-32 of sequence number and payload; then 100
//! to 500 payload bytes from the seed) and never span two segments: a
//! record that does not fit in the current segment starts the next one.
//! Making a segment (`setup` makes `seg-000001`; the writer makes each one,
//! the first again):
//!
//! 1. `openat("seg-00000N", O_RDWR|O_CREAT)`, `ftruncate` to four pages;
//! 2. `fsync` of the segment, then `fsync` of the directory (its name is
//!    durable only now);
//! 3. `mmap(MAP_SHARED)`, and only then records are written into it.
//!
//! Each record: stores, `msync(MS_SYNC)` of its range, ack
//! `rec SEQ seg N len L crc C`.
//!
//! `segmented-log-no-dir-fsync` never fsyncs the directory: the mistake.
//! Every record in a segment the writer created is msynced (its content
//! and the segment's size are durable: fdatasync), but the segment's *name*
//! is not, so a power loss may take the newest segment away with every
//! record acked in it. A process crash never shows it; a power-loss model
//! with directory entries (crashlab's `posix`) does. (On ext4 and xfs a real
//! cut kept such a new name 70 of 70 times, the fdatasync's journal commit
//! carrying the creation: luck, not a promise.)
//!
//! The checker reads `seg-000001`, `seg-000002`, ... up to the first missing
//! number; in each, the valid records (magic, the next sequence number, CRC)
//! up to the first invalid one; the next segment continues the sequence.
//! Every acked record must be there, in its segment, with its length and CRC.

use crate::common::{
    ack, ack_field, acks, crc32, die, dir, fsync, fsync_dir, open_in_dir, page_size, read, seed, slice_or_zeros,
    u32_at, violation, Mapping, Rng,
};

const MAGIC: u32 = 0x4C47_4553; // "SEGL"
const HEADER: usize = 16;
const MIN_PAYLOAD: u64 = 100;
const MAX_PAYLOAD: usize = 500;
const SEGMENT_PAGES: usize = 4;

fn segment_name(n: u32) -> String {
    format!("seg-{n:06}")
}

fn segment_len() -> usize {
    SEGMENT_PAGES * page_size()
}

fn record_crc(seq: u32, payload: &[u8]) -> u32 {
    let mut bytes = seq.to_le_bytes().to_vec();
    bytes.extend_from_slice(payload);
    crc32(&bytes)
}

/// Steps 1 and 2 of a segment; the directory fsync unless `dir_fsync` is off.
fn make_segment(n: u32, dir_fsync: bool) -> std::fs::File {
    let name = segment_name(n);
    let file = open_in_dir(&name, false);
    file.set_len(segment_len() as u64)
        .unwrap_or_else(|e| die(&format!("cannot size {}: {e}", dir().join(&name).display())));
    fsync(&file, &name);
    if dir_fsync {
        fsync_dir();
    }
    file
}

/// `crashlab-workload segmented-log[-no-dir-fsync] setup`: the first
/// segment, durably (created, sized, fsynced, directory fsynced).
pub fn setup() {
    make_segment(1, true);
}

pub fn writer(dir_fsync: bool, records: usize) {
    let seg_len = segment_len();
    let mut rng = Rng(seed());
    let mut segment = 0u32;
    let mut map: Option<Mapping> = None;
    let mut offset = seg_len;
    for seq in 0..records as u32 {
        let len = rng.range(MIN_PAYLOAD, MAX_PAYLOAD as u64) as usize;
        let payload = rng.bytes(len);
        if offset + HEADER + len > seg_len {
            if let Some(full) = map.take() {
                drop(full.unmap());
            }
            segment += 1;
            let file = make_segment(segment, dir_fsync);
            map = Some(Mapping::map(file, &segment_name(segment), seg_len, true));
            offset = 0;
        }
        let m = map.as_ref().expect("a segment is mapped");
        let crc = record_crc(seq, &payload);
        let mut header = Vec::with_capacity(HEADER);
        for word in [MAGIC, seq, len as u32, crc] {
            header.extend_from_slice(&word.to_le_bytes());
        }
        m.store(offset, &header);
        m.store(offset + HEADER, &payload);
        m.msync(offset, HEADER + len, libc::MS_SYNC);
        ack(&format!("rec {seq} seg {segment} len {len} crc {crc:08x}"));
        offset += HEADER + len;
    }
}

/// One valid record found: its segment, length and CRC.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Found {
    segment: u64,
    len: u64,
    crc: u64,
}

/// The records of the segment chain, by sequence number, and the number of
/// segments in the chain.
fn scan() -> (Vec<Found>, u32) {
    let mut found: Vec<Found> = Vec::new();
    let mut n = 1;
    loop {
        let name = segment_name(n);
        match std::fs::symlink_metadata(dir().join(&name)) {
            Ok(_) => {}
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return (found, n - 1),
            Err(e) => die(&format!("cannot stat {}: {e}", dir().join(&name).display())),
        }
        let bytes = read(&name);
        let mut offset = 0;
        while offset + HEADER <= segment_len() && u32_at(&bytes, offset) == MAGIC {
            let seq = u32_at(&bytes, offset + 4);
            let len = u32_at(&bytes, offset + 8) as usize;
            let crc = u32_at(&bytes, offset + 12);
            if seq as usize != found.len() || len > MAX_PAYLOAD || offset + HEADER + len > segment_len() {
                break;
            }
            if record_crc(seq, &slice_or_zeros(&bytes, offset + HEADER, len)) != crc {
                break; // a torn last record: never acknowledged by a correct writer
            }
            found.push(Found { segment: n as u64, len: len as u64, crc: crc as u64 });
            offset += HEADER + len;
        }
        n += 1;
    }
}

pub fn checker() {
    let (found, segments) = scan();
    for line in acks() {
        let fields = ["rec", "seg", "len", "crc"].map(|k| ack_field(&line, k));
        let [Some(seq), Some(segment), Some(len), Some(crc)] = fields else {
            die(&format!("unreadable ack line `{line}`"));
        };
        let acked = Found { segment, len, crc };
        match found.get(seq as usize) {
            None if segment > segments as u64 => violation(&format!(
                "acked record {seq} is missing: its segment {} does not exist (the log holds {} records in {segments} segments)",
                segment_name(segment as u32),
                found.len()
            )),
            None => violation(&format!(
                "acked record {seq} is missing from {}: the log holds {} valid records in {segments} segments",
                segment_name(segment as u32),
                found.len()
            )),
            Some(&f) if f != acked => {
                violation(&format!("acked record {seq} differs: {f:?} in the log, {acked:?} acked"))
            }
            Some(_) => {}
        }
    }
}
