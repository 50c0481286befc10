//! The format of the `bench-log` example (the fixed target of `crashlab
//! bench checkers`): records of [`RECORD`] bytes at `seq * RECORD` in
//! [`FILE`], each byte a function of the record and its position, so the
//! checker needs no checksum. Shared, as source, by the example's programs
//! (`bench_log.rs`) and by the testkit version of the same target
//! (`scenarios/tests/testkit_bench_log.rs`).
//!
//! Architecture Invariant: pure.

/// The record file.
pub const FILE: &str = "bench.log";
/// One record: 12 sectors of 512 bytes (a page and a half), so a crash
/// just before its msync leaves 2^12 states under `--tear 512`.
pub const RECORD: usize = 6144;

/// Byte `i` of record `seq` (never zero: a zero byte is a byte never written).
pub fn byte(seq: usize, i: usize) -> u8 {
    ((seq * 131 + i * 7 + (i >> 9)) % 251 + 1) as u8
}

/// Record `seq` as the writer stores it.
pub fn record(seq: usize) -> Vec<u8> {
    (0..RECORD).map(|i| byte(seq, i)).collect()
}

/// The file's size for `records` records, in whole pages of `page` bytes.
pub fn capacity(records: usize, page: usize) -> usize {
    (records * RECORD).div_ceil(page) * page
}

/// `Ok` if every acked record (`rec N`) is whole in `file`; else the
/// violation's reason. An ack line of another shape is an error too.
pub fn judge(file: &[u8], acks: &[String]) -> Result<(), String> {
    for line in acks {
        let seq: usize = line
            .strip_prefix("rec ")
            .and_then(|n| n.parse().ok())
            .ok_or_else(|| format!("unreadable ack line `{line}`"))?;
        let at = seq * RECORD;
        let stored = file.get(at..at + RECORD).unwrap_or(&[]);
        if let Some(i) = (0..RECORD).find(|&i| stored.get(i) != Some(&byte(seq, i))) {
            return Err(format!("acked record {seq} is torn or missing: its byte {i} of {RECORD} is wrong"));
        }
    }
    Ok(())
}
