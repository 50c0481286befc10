//! A log of one record per page, `msync(MS_SYNC)` before each ack, and
//! three ways to react when that msync fails with `EIO` (what `crashlab run
//! --crash eio-sync` injects). Linux marks the pages of a failed writeback
//! clean and reports the error once (`Documentation/filesystems/vfs.rst`,
//! errseq; LWN "PostgreSQL's fsync() surprise"): a retried msync finds
//! nothing dirty and succeeds without writing them.
//!
//! Record `i` fills page `i`: magic, sequence number, payload length,
//! CRC-32 of sequence number and payload, payload. One record per page
//! keeps each record's page apart from the next record's stores, so a page
//! the failed msync left clean is never dirtied again by later records (in
//! a packed log the next record's store into a shared page would write the
//! failed record's tail too).
//!
//! - `eio-ignore`: ignores the msync's result and acks (loses the acked
//!   record at a later power loss: caught by `eio-sync`).
//! - `eio-retry`: retries the msync once and acks if the retry succeeds
//!   (the retry wrote nothing: caught by `eio-sync`).
//! - `eio-stop`: stops acking and exits with status 3 on a failed msync (a
//!   crash-recovery restart would then rebuild from what is durable): passes
//!   every kind.

use crate::common::{
    ack, ack_field, acks, create_durably, die, page_size, read, seed, slice_or_zeros, u32_at, violation, Mapping, Rng,
};
use crate::wal::record_crc;

const FILE: &str = "eio.log";
const MAGIC: u32 = 0x4F49_4531;
const HEADER: usize = 16;

/// What the writer does when an msync fails.
#[derive(Clone, Copy, PartialEq, Eq)]
pub enum OnEio {
    Ignore,
    RetryOnce,
    Stop,
}

/// The status `eio-stop` exits with on a failed msync.
pub const STOP_STATUS: i32 = 3;

/// `crashlab-workload eio-* setup [--records N]`: the zeroed log, one page
/// per record, durably.
pub fn setup(records: usize) {
    create_durably(FILE, records * page_size(), &[]);
}

pub fn writer(on_eio: OnEio, records: usize) {
    let page = page_size();
    let map = Mapping::create(FILE, records * page, true);
    let mut rng = Rng(seed());
    for seq in 0..records as u32 {
        let len = rng.range(64, (page - HEADER) as u64) as usize;
        let payload = rng.bytes(len);
        let crc = record_crc(seq, &payload);
        let offset = seq as usize * page;
        let mut header = Vec::with_capacity(HEADER);
        for word in [MAGIC, seq, len as u32, crc] {
            header.extend_from_slice(&word.to_le_bytes());
        }
        map.store(offset, &header);
        map.store(offset + HEADER, &payload);
        let synced = map.try_msync(offset, page, libc::MS_SYNC);
        match (on_eio, synced) {
            (_, Ok(())) | (OnEio::Ignore, Err(_)) => {}
            (OnEio::RetryOnce, Err(_)) => {
                if let Err(e) = map.try_msync(offset, page, libc::MS_SYNC) {
                    die(&format!("msync of record {seq} failed twice: {e}"));
                }
            }
            (OnEio::Stop, Err(e)) => {
                eprintln!("crashlab-workload: msync of record {seq} failed ({e}): stopping");
                std::process::exit(STOP_STATUS);
            }
        }
        ack(&format!("rec {seq} len {len} crc {crc:08x}"));
    }
}

pub fn checker() {
    let page = page_size();
    let bytes = read(FILE);
    for line in acks() {
        let (Some(seq), Some(len), Some(crc)) =
            (ack_field(&line, "rec"), ack_field(&line, "len"), ack_field(&line, "crc"))
        else {
            die(&format!("unreadable ack line `{line}`"));
        };
        let at = seq as usize * page;
        let found = (u32_at(&bytes, at), u32_at(&bytes, at + 4), u32_at(&bytes, at + 8), u32_at(&bytes, at + 12));
        if found != (MAGIC, seq as u32, len as u32, crc as u32) {
            violation(&format!("acked record {seq} is missing from page {seq} of {FILE}"));
        }
        if record_crc(seq as u32, &slice_or_zeros(&bytes, at + HEADER, len as usize)) != crc as u32 {
            violation(&format!("acked record {seq} is torn (bad checksum)"));
        }
    }
}
