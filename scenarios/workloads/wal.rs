//! A write-ahead log on an mmaped file, and three classic ways to get it
//! wrong. Records are appended: a 16-byte header (magic, sequence number,
//! payload length, CRC-32 of sequence number and payload), then the payload.
//! The checker accepts any valid prefix of records (a torn last record is
//! fine: its CRC fails) and requires every acknowledged record in it.

use std::os::unix::fs::FileExt;

use crate::common::{
    ack, ack_field, acks, crc32, create_durably, die, page_size, read, seed, slice_or_zeros, u32_at, violation,
    Mapping, Rng,
};

const FILE: &str = "wal.log";
const MAGIC: u32 = 0x3157_414C;
const HEADER: usize = 16;
const MAX_PAYLOAD: usize = 2048;

/// How the writer makes a record durable before acknowledging it.
#[derive(Clone, Copy, PartialEq, Eq)]
pub enum Durability {
    /// Correct: store, `msync(MS_SYNC)`, ack.
    MsSyncThenAck,
    /// Mistake: store, ack, then `msync(MS_SYNC)`: the ack precedes durability.
    AckThenMsSync,
    /// Mistake: `msync(MS_ASYNC)` taken for durability (it is a no-op on Linux).
    MsAsync,
    /// Mistake: the log is mapped `MAP_PRIVATE`; `msync` then writes nothing
    /// to the file. A "checkpoint" (pwrite of the whole mapping + fsync) at
    /// clean exit hides it from any test that never crashes the writer.
    MapPrivateCheckpointAtExit,
}

/// The CRC-32 of a record's sequence number and payload (also the
/// `eio-*` examples' records).
pub fn record_crc(seq: u32, payload: &[u8]) -> u32 {
    let mut bytes = seq.to_le_bytes().to_vec();
    bytes.extend_from_slice(payload);
    crc32(&bytes)
}

/// The log file's size for `records` records (of at most `MAX_PAYLOAD`
/// bytes each), plus a page.
fn capacity(records: usize) -> usize {
    let page = page_size();
    (records * (HEADER + MAX_PAYLOAD)).div_ceil(page) * page + page
}

/// `crashlab-workload wal* setup [--records N]`: the empty log, durably
/// (created at the writer's size, fsynced, directory fsynced), so that its
/// name survives any power loss under the strict POSIX model. The writer
/// then opens it without truncating it.
pub fn setup(records: usize) {
    create_durably(FILE, capacity(records), &[]);
}

pub fn writer(durability: Durability, records: usize) {
    let map = Mapping::create(FILE, capacity(records), durability != Durability::MapPrivateCheckpointAtExit);
    let mut rng = Rng(seed());
    let mut offset = 0;
    for seq in 0..records as u32 {
        let len = rng.range(64, MAX_PAYLOAD as u64) as usize;
        let payload = rng.bytes(len);
        let crc = record_crc(seq, &payload);
        let mut header = Vec::with_capacity(HEADER);
        for word in [MAGIC, seq, len as u32, crc] {
            header.extend_from_slice(&word.to_le_bytes());
        }
        map.store(offset, &header);
        map.store(offset + HEADER, &payload);
        let line = format!("rec {seq} len {len} crc {crc:08x}");
        match durability {
            Durability::MsSyncThenAck | Durability::MapPrivateCheckpointAtExit => {
                map.msync(offset, HEADER + len, libc::MS_SYNC);
                ack(&line);
            }
            Durability::AckThenMsSync => {
                ack(&line);
                map.msync(offset, HEADER + len, libc::MS_SYNC);
            }
            Durability::MsAsync => {
                map.msync(offset, HEADER + len, libc::MS_ASYNC);
                ack(&line);
            }
        }
        offset += HEADER + len;
    }
    if durability == Durability::MapPrivateCheckpointAtExit {
        let file = &map.file;
        if let Err(e) = file.write_all_at(map.bytes(), 0).and_then(|_| file.sync_all()) {
            die(&format!("checkpoint failed: {e}"));
        }
    }
}

pub fn checker() {
    let bytes = read(FILE);
    // The valid prefix: (len, crc) of records 0, 1, ...
    let mut valid: Vec<(u64, u64)> = Vec::new();
    let mut offset = 0;
    while u32_at(&bytes, offset) == MAGIC {
        let seq = u32_at(&bytes, offset + 4);
        let len = u32_at(&bytes, offset + 8) as usize;
        let crc = u32_at(&bytes, offset + 12);
        if seq as usize != valid.len() || len > MAX_PAYLOAD {
            break;
        }
        if record_crc(seq, &slice_or_zeros(&bytes, offset + HEADER, len)) != crc {
            break; // a torn last record: never acknowledged by a correct writer
        }
        valid.push((len as u64, crc as u64));
        offset += HEADER + len;
    }
    for line in acks() {
        let (Some(seq), Some(len), Some(crc)) =
            (ack_field(&line, "rec"), ack_field(&line, "len"), ack_field(&line, "crc"))
        else {
            die(&format!("unreadable ack line `{line}`"));
        };
        match valid.get(seq as usize) {
            None => violation(&format!(
                "acked record {seq} is missing: {FILE} holds {} valid records ({} bytes)",
                valid.len(),
                bytes.len()
            )),
            Some(&found) if found != (len, crc) => {
                violation(&format!("acked record {seq} differs: len/crc {found:?} in the log, ({len}, {crc}) acked"))
            }
            Some(_) => {}
        }
    }
}
