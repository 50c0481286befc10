//! A mistake: each record's header, commit flag included, is written
//! *before* its payload, which is then generated in place. A crash between
//! the two leaves a record marked committed whose payload is incomplete.
//! No checksum: the checker recomputes the payload from the header's salt.

use crate::common::{
    ack, ack_field, acks, create_durably, die, page_size, read, seed, slice_or_zeros, u32_at, violation, Mapping,
};

const FILE: &str = "records.db";
const COMMITTED: u32 = 0xC0DE_C0DE;
const HEADER: usize = 16;
const PAYLOAD: usize = 256 * 1024;

fn slot_size() -> usize {
    (HEADER + PAYLOAD).div_ceil(page_size()) * page_size()
}

/// Word `i` of record `seq`'s payload: a function of the salt, so the
/// checker needs no checksum to tell a complete payload.
fn word(salt: u32, seq: u32, i: usize) -> u64 {
    let mut z = ((salt as u64) << 32 | seq as u64) ^ (i as u64).wrapping_mul(0x9E37_79B9_7F4A_7C15);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    (z ^ (z >> 31)) | 1 // never zero
}

/// `crashlab-workload flag-before-payload setup [--records N]`: the empty
/// record file at the writer's size, durably (created, sized, fsynced,
/// directory fsynced).
pub fn setup(records: usize) {
    create_durably(FILE, records * slot_size(), &[]);
}

pub fn writer(records: usize) {
    let slot = slot_size();
    let map = Mapping::create(FILE, records * slot, true);
    let salt = seed() as u32;
    for seq in 0..records as u32 {
        let offset = seq as usize * slot;
        let mut header = Vec::with_capacity(HEADER);
        for w in [COMMITTED, seq, PAYLOAD as u32, salt] {
            header.extend_from_slice(&w.to_le_bytes());
        }
        // The mistake: the commit flag goes first.
        map.store(offset, &header);
        for i in 0..PAYLOAD / 8 {
            // SAFETY: inside this record's slot of the mapping; 8-aligned.
            unsafe { (map.at(offset + HEADER + 8 * i) as *mut u64).write_volatile(word(salt, seq, i)) };
        }
        map.msync(offset, slot, libc::MS_SYNC);
        ack(&format!("rec {seq}"));
    }
}

pub fn checker() {
    let bytes = read(FILE);
    let slot = slot_size();
    let mut committed = 0u64;
    while u32_at(&bytes, committed as usize * slot) == COMMITTED {
        let offset = committed as usize * slot;
        let (seq, len, salt) = (u32_at(&bytes, offset + 4), u32_at(&bytes, offset + 8), u32_at(&bytes, offset + 12));
        if seq as u64 != committed || len as usize != PAYLOAD {
            violation(&format!("record {committed} has a corrupt header (seq {seq}, len {len})"));
        }
        let payload = slice_or_zeros(&bytes, offset + HEADER, PAYLOAD);
        for (i, chunk) in payload.chunks_exact(8).enumerate() {
            if u64::from_le_bytes(chunk.try_into().unwrap()) != word(salt, seq, i) {
                violation(&format!(
                    "record {seq} is marked committed but its payload is incomplete: byte {} of {PAYLOAD} is wrong",
                    8 * i
                ));
            }
        }
        committed += 1;
    }
    for line in acks() {
        let Some(seq) = ack_field(&line, "rec") else { die(&format!("unreadable ack line `{line}`")) };
        if seq >= committed {
            violation(&format!("acked record {seq} is missing: {committed} records are committed"));
        }
    }
}
