//! A shadow-paging store (correct): the current value lives in one of two
//! areas; an update writes the new version into the other area, msyncs it,
//! then flips the root (one aligned 8-byte store: generation and CRC of the
//! value, which cannot tear) and msyncs the root page, then acknowledges.

use crate::common::{
    ack, ack_field, acks, crc32, create_durably, page_size, read, seed, slice_or_zeros, u32_at, violation, Mapping, Rng,
};

const FILE: &str = "shadow.db";
const MAGIC: u32 = 0x5744_4853;
const HEADER: usize = 12;
const AREA_PAGES: usize = 4;

fn area_offset(generation: u32) -> usize {
    page_size() * (1 + (generation as usize % 2) * AREA_PAGES)
}

fn file_len() -> usize {
    page_size() * (1 + 2 * AREA_PAGES)
}

/// `crashlab-workload shadow setup`: the empty store (root = generation 0),
/// durably: created, sized, fsynced, directory fsynced.
pub fn setup() {
    create_durably(FILE, file_len(), &[]);
}

pub fn writer(updates: usize) {
    let page = page_size();
    let map = Mapping::create(FILE, file_len(), true);
    let mut rng = Rng(seed());
    for generation in 1..=updates as u32 {
        let len = rng.range(64, (AREA_PAGES * page - HEADER) as u64) as usize;
        let value = rng.bytes(len);
        let crc = crc32(&value);
        let offset = area_offset(generation);
        let mut header = Vec::with_capacity(HEADER);
        for word in [MAGIC, generation, len as u32] {
            header.extend_from_slice(&word.to_le_bytes());
        }
        map.store(offset, &header);
        map.store(offset + HEADER, &value);
        map.msync(offset, HEADER + len, libc::MS_SYNC);
        map.store_u64_atomic(0, (generation as u64) << 32 | crc as u64);
        map.msync(0, 8, libc::MS_SYNC);
        ack(&format!("gen {generation} crc {crc:08x}"));
    }
}

pub fn checker() {
    let bytes = read(FILE);
    let root = u64::from_le_bytes(slice_or_zeros(&bytes, 0, 8).try_into().unwrap());
    let (generation, crc) = ((root >> 32) as u32, root as u32);
    let acked: Vec<(u64, u64)> = acks()
        .iter()
        .map(|l| match (ack_field(l, "gen"), ack_field(l, "crc")) {
            (Some(g), Some(c)) => (g, c),
            _ => crate::common::die(&format!("unreadable ack line `{l}`")),
        })
        .collect();
    let last_acked = acked.iter().map(|a| a.0).max().unwrap_or(0);
    if (generation as u64) < last_acked {
        violation(&format!("acked generation {last_acked} is lost: the root points to generation {generation}"));
    }
    if generation as u64 > last_acked + 1 {
        violation(&format!("the root points to generation {generation}, never written after acked {last_acked}"));
    }
    if generation == 0 {
        return; // an empty store, and nothing was acked
    }
    let offset = area_offset(generation);
    let (magic, area_generation, len) =
        (u32_at(&bytes, offset), u32_at(&bytes, offset + 4), u32_at(&bytes, offset + 8) as usize);
    if magic != MAGIC || area_generation != generation || len > AREA_PAGES * page_size() - HEADER {
        violation(&format!(
            "the root points to generation {generation}, but its area holds generation {area_generation} (magic {magic:#x})"
        ));
    }
    if crc32(&slice_or_zeros(&bytes, offset + HEADER, len)) != crc {
        violation(&format!("the value of generation {generation} does not match the root's CRC: torn"));
    }
    if let Some(&(g, c)) = acked.iter().find(|a| a.0 == generation as u64) {
        if c != crc as u64 {
            violation(&format!("generation {g} holds CRC {crc:08x}, {c:08x} was acked"));
        }
    }
}
