//! A counter kept in a mapped data page that is rewritten on every
//! operation and synced only at checkpoints, with a header page that is
//! synced on every operation and names the checkpoint: the shape of many
//! redo-log designs. Page 0 of `counter.db` is the header (magic, the
//! committed operation `n`, the checkpoint operation `c`); page 1 is the
//! data page (operation `seq`, the counter's value after it, a CRC). The
//! counter adds `k` at operation `k`, so replaying an operation twice
//! shows.
//!
//! The writer (both examples): for each operation `i`, store the data page
//! `(i, value(i))`, store `n = i` in the header, `msync(MS_SYNC)` the header
//! page alone, ack `op i`; every 8 operations, `msync(MS_SYNC)` the data
//! page first and record it as the checkpoint (`c = i`) in the header.
//!
//! What recovery assumes is the difference:
//! - `redo-from-page` (correct): recovery redoes the operations after the
//!   `seq` the data page itself holds. Any version of the data page since
//!   the checkpoint is a correct starting point.
//! - `redo-from-checkpoint` (the mistake): recovery believes the data page
//!   is either current (`seq >= n`) or still at the checkpoint (`seq == c`),
//!   and redoes the operations after `c`. But between two checkpoints the
//!   kernel may write the data page back at any moment (background
//!   writeback, memory pressure, another process's `sync`), so after a
//!   power loss it may hold any version it had since the checkpoint: then
//!   operations already in the page are applied twice.
//!
//! A process crash never shows it (the page cache holds the newest page),
//! nor does a power-loss model in which a page is either at its floor or at
//! its newest content: only one with the versions in between
//! (`--history on`, the default) does.

use crate::common::{ack, ack_field, acks, crc32, create_durably, die, page_size, read, u32_at, violation, Mapping};

const FILE: &str = "counter.db";
const MAGIC: u32 = 0x5245_444F; // "REDO"
const CHECKPOINT_EVERY: u32 = 8;

fn value(op: u32) -> u64 {
    (op as u64) * (op as u64 + 1) / 2
}

/// The data page's record: operation, value, CRC of both.
fn record(op: u32) -> [u8; 16] {
    let mut r = [0u8; 16];
    r[..4].copy_from_slice(&op.to_le_bytes());
    r[4..12].copy_from_slice(&value(op).to_le_bytes());
    let crc = crc32(&r[..12]);
    r[12..].copy_from_slice(&crc.to_le_bytes());
    r
}

fn header(committed: u32, checkpoint: u32) -> [u8; 12] {
    let mut h = [0u8; 12];
    h[..4].copy_from_slice(&MAGIC.to_le_bytes());
    h[4..8].copy_from_slice(&committed.to_le_bytes());
    h[8..].copy_from_slice(&checkpoint.to_le_bytes());
    h
}

/// `setup`: the header (nothing committed, checkpoint 0) and the data page
/// at operation 0, durably.
pub fn setup() {
    let page = page_size();
    let mut content = vec![0u8; 2 * page];
    content[..12].copy_from_slice(&header(0, 0));
    content[page..page + 16].copy_from_slice(&record(0));
    create_durably(FILE, 2 * page, &content);
}

pub fn writer(ops: usize) {
    let page = page_size();
    let map = Mapping::create(FILE, 2 * page, true);
    let mut checkpoint = 0;
    for i in 1..=ops as u32 {
        map.store(page, &record(i));
        if i % CHECKPOINT_EVERY == 0 {
            map.msync(page, page, libc::MS_SYNC);
            checkpoint = i;
        }
        map.store(0, &header(i, checkpoint));
        map.msync(0, page, libc::MS_SYNC);
        ack(&format!("op {i}"));
    }
}

/// `from_page`: the correct recovery (redo after the page's own `seq`).
pub fn checker(from_page: bool) {
    let page = page_size();
    let bytes = read(FILE);
    if bytes.len() < 2 * page || u32_at(&bytes, 0) != MAGIC {
        violation(&format!("{FILE} has no header ({} bytes)", bytes.len()));
    }
    let (committed, checkpoint) = (u32_at(&bytes, 4), u32_at(&bytes, 8));
    let data = &bytes[page..page + 16];
    let seq = u32_at(data, 0);
    if crc32(&data[..12]) != u32_at(data, 12) || data[..16] != record(seq) {
        violation(&format!("the data page is corrupt (operation {seq})"));
    }
    if seq < checkpoint {
        violation(&format!("the data page holds operation {seq}, older than the checkpoint {checkpoint}"));
    }
    if !from_page && seq < committed && seq != checkpoint {
        violation(&format!(
            "the data page holds operation {seq}, neither the committed {committed} nor the checkpoint {checkpoint}: \
             redoing from the checkpoint applies operations {} to {seq} twice",
            checkpoint + 1
        ));
    }
    for line in acks() {
        let Some(op) = ack_field(&line, "op") else { die(&format!("unreadable ack line `{line}`")) };
        if op > committed as u64 {
            violation(&format!("acked operation {op} is lost: the header commits {committed}"));
        }
    }
}
