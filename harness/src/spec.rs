//! Built-in writers as data: [`WriterSpec`] and its [`Op`]s.
//!
//! A spec is generated deterministically from a [`WorkloadParams`] and a seed,
//! is serializable, and is executed op by op by a forked child on a real
//! mapping of a real file. Every byte a store writes is a pure function of its
//! file offset and the store's version ([`pattern_byte`]), so the verifier can
//! recompute any byte without keeping copies.
//!
//! Architecture Invariant: this module is pure. No syscalls, no clocks.

use std::fmt;
use std::str::FromStr;

use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use serde::{Deserialize, Serialize};

/// How the writer maps its file.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "kebab-case")]
pub enum MappingKind {
    /// `MAP_SHARED`: stores reach the page cache, hence the file.
    Shared,
    /// `MAP_PRIVATE`: stores go to private copy-on-write pages, never the file.
    Private,
}

impl MappingKind {
    pub const ALL: [MappingKind; 2] = [MappingKind::Shared, MappingKind::Private];

    pub fn name(self) -> &'static str {
        match self {
            MappingKind::Shared => "shared",
            MappingKind::Private => "private",
        }
    }
}

impl fmt::Display for MappingKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl FromStr for MappingKind {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "shared" => Ok(MappingKind::Shared),
            "private" => Ok(MappingKind::Private),
            other => Err(format!("unknown mapping kind `{other}` (expected `shared` or `private`)")),
        }
    }
}

/// The `flags` argument of `msync`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum MsyncFlags {
    MsSync,
    MsAsync,
}

/// A byte range of the file, `[start, end)`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct ByteRange {
    pub start: u64,
    pub end: u64,
}

impl ByteRange {
    pub fn new(start: u64, end: u64) -> Self {
        debug_assert!(start <= end);
        ByteRange { start, end }
    }
    pub fn len(&self) -> u64 {
        self.end - self.start
    }
    pub fn is_empty(&self) -> bool {
        self.start == self.end
    }
    pub fn overlaps(&self, other: &ByteRange) -> bool {
        self.start < other.end && other.start < self.end
    }
}

/// One step of a built-in writer.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "op", rename_all = "snake_case")]
pub enum Op {
    /// `memcpy` of `len` bytes of version `version` at `offset` into the mapping.
    Store {
        offset: u64,
        len: u64,
        version: u32,
    },
    /// `msync` of a page-aligned file range of the mapping.
    Msync {
        range: ByteRange,
        flags: MsyncFlags,
    },
    Fsync,
    Fdatasync,
    /// The writer tells its caller that the stores `covers` (op indices) are
    /// durable. Executing it only marks the journal.
    Ack {
        id: u32,
        covers: Vec<usize>,
    },
    /// `ftruncate` of the file under the mapping.
    Truncate {
        len: u64,
    },
    /// `munmap` of the whole mapping; no store may follow.
    Munmap,
}

impl Op {
    pub fn kind_name(&self) -> &'static str {
        match self {
            Op::Store { .. } => "store",
            Op::Msync { flags: MsyncFlags::MsSync, .. } => "msync(MS_SYNC)",
            Op::Msync { flags: MsyncFlags::MsAsync, .. } => "msync(MS_ASYNC)",
            Op::Fsync => "fsync",
            Op::Fdatasync => "fdatasync",
            Op::Ack { .. } => "ack",
            Op::Truncate { .. } => "ftruncate",
            Op::Munmap => "munmap",
        }
    }

    pub fn store_range(&self) -> Option<ByteRange> {
        match *self {
            Op::Store { offset, len, .. } => Some(ByteRange::new(offset, offset + len)),
            _ => None,
        }
    }
}

/// When the writer syncs relative to its stores and acks. Each policy is one
/// row of the survival matrix.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(into = "String", try_from = "String")]
pub enum SyncPolicy {
    /// Store, then ack; never sync.
    None,
    /// Store, `msync(MS_ASYNC)` of its pages, ack.
    MsAsyncEach,
    /// Store, `msync(MS_SYNC)` of its pages, ack.
    MsSyncEach,
    /// Every `n` stores, `msync(MS_SYNC)` of the whole mapping, then ack those `n`.
    MsSyncEvery(u32),
    /// Every `n` stores, `fsync`, then ack those `n`.
    FsyncEvery(u32),
    /// Store, ack, then `msync(MS_SYNC)`: the common bug.
    AckBeforeSync,
}

impl SyncPolicy {
    /// The policies of the standard matrix, in matrix order.
    pub const STANDARD: [SyncPolicy; 6] = [
        SyncPolicy::None,
        SyncPolicy::MsAsyncEach,
        SyncPolicy::MsSyncEach,
        SyncPolicy::MsSyncEvery(4),
        SyncPolicy::FsyncEvery(4),
        SyncPolicy::AckBeforeSync,
    ];

    /// Does the writer wait for a completed durable sync (MS_SYNC, fsync)
    /// covering a store before it acks that store?
    pub fn syncs_before_ack(self) -> bool {
        matches!(self, SyncPolicy::MsSyncEach | SyncPolicy::MsSyncEvery(_) | SyncPolicy::FsyncEvery(_))
    }
}

impl fmt::Display for SyncPolicy {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            SyncPolicy::None => f.write_str("no-sync"),
            SyncPolicy::MsAsyncEach => f.write_str("ms-async-each"),
            SyncPolicy::MsSyncEach => f.write_str("ms-sync-each"),
            SyncPolicy::MsSyncEvery(n) => write!(f, "ms-sync-every-{n}"),
            SyncPolicy::FsyncEvery(n) => write!(f, "fsync-every-{n}"),
            SyncPolicy::AckBeforeSync => f.write_str("ack-before-sync"),
        }
    }
}

impl FromStr for SyncPolicy {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let every = |prefix: &str| -> Option<Result<u32, String>> {
            s.strip_prefix(prefix).map(|n| match n.parse::<u32>() {
                Ok(n) if n >= 1 => Ok(n),
                _ => Err(format!("bad sync policy `{s}`: `{n}` is not a whole number ≥ 1")),
            })
        };
        match s {
            "no-sync" => Ok(SyncPolicy::None),
            "ms-async-each" => Ok(SyncPolicy::MsAsyncEach),
            "ms-sync-each" => Ok(SyncPolicy::MsSyncEach),
            "ack-before-sync" => Ok(SyncPolicy::AckBeforeSync),
            _ => {
                if let Some(n) = every("ms-sync-every-") {
                    return n.map(SyncPolicy::MsSyncEvery);
                }
                if let Some(n) = every("fsync-every-") {
                    return n.map(SyncPolicy::FsyncEvery);
                }
                Err(format!(
                    "unknown sync policy `{s}` (expected no-sync, ms-async-each, ms-sync-each, \
                     ms-sync-every-N, fsync-every-N or ack-before-sync)"
                ))
            }
        }
    }
}

impl From<SyncPolicy> for String {
    fn from(p: SyncPolicy) -> String {
        p.to_string()
    }
}

impl TryFrom<String> for SyncPolicy {
    type Error = String;
    fn try_from(s: String) -> Result<Self, Self::Error> {
        s.parse()
    }
}

/// The knobs of the generated workload. Part of every report's config.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct WorkloadParams {
    /// File (and mapping) size in bytes; a multiple of the page size.
    pub file_size: u64,
    /// Number of acknowledged transactions (one store each).
    pub txns: u32,
    /// Longest ordinary store, in bytes.
    pub max_store: u64,
    /// Every this many transactions, the store is a large one
    /// (`large_store` bytes) so crashes can land inside it. 0 disables.
    pub large_every: u32,
    pub large_store: u64,
}

impl WorkloadParams {
    pub fn with_file_size(file_size: u64) -> Self {
        WorkloadParams {
            file_size,
            txns: 12,
            max_store: 512.min(file_size),
            large_every: 6,
            large_store: (64 * 1024).min(file_size / 2),
        }
    }

    pub fn validate(&self, page_size: u64) -> Result<(), String> {
        if self.file_size == 0 || self.file_size % page_size != 0 {
            return Err(format!(
                "file size {} is not a positive multiple of the page size {page_size}",
                self.file_size
            ));
        }
        if self.txns == 0 {
            return Err("a workload needs at least one transaction".into());
        }
        if self.max_store == 0 || self.max_store > self.file_size {
            return Err(format!("max store {} must be between 1 and the file size {}", self.max_store, self.file_size));
        }
        if self.large_every > 0 && (self.large_store == 0 || self.large_store > self.file_size) {
            return Err(format!(
                "large store {} must be between 1 and the file size {}",
                self.large_store, self.file_size
            ));
        }
        Ok(())
    }
}

/// A built-in writer: everything the child needs to run and the verifier
/// needs to judge.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct WriterSpec {
    pub file_size: u64,
    pub page_size: u64,
    pub mapping: MappingKind,
    pub policy: SyncPolicy,
    pub ops: Vec<Op>,
}

impl WriterSpec {
    /// Generate the writer for `policy` from `seed`. Same inputs, same spec.
    pub fn generate(
        params: &WorkloadParams,
        mapping: MappingKind,
        policy: SyncPolicy,
        page_size: u64,
        seed: u64,
    ) -> Result<WriterSpec, String> {
        params.validate(page_size)?;
        let mut rng = ChaCha8Rng::seed_from_u64(seed);
        let mut ops = Vec::new();
        let mut pending: Vec<(u32, usize)> = Vec::new(); // (ack id, store op index)
        let whole = ByteRange::new(0, params.file_size);
        let page_range =
            |r: ByteRange| ByteRange::new(r.start / page_size * page_size, r.end.div_ceil(page_size) * page_size);
        for txn in 0..params.txns {
            let version = txn + 1;
            let large = params.large_every > 0 && (txn + 1) % params.large_every == 0;
            let len = if large { params.large_store } else { rng.random_range(1..=params.max_store) };
            let offset = rng.random_range(0..=params.file_size - len);
            let store_index = ops.len();
            ops.push(Op::Store { offset, len, version });
            let range = ByteRange::new(offset, offset + len);
            let ack = |covers: Vec<usize>| Op::Ack { id: txn, covers };
            match policy {
                SyncPolicy::None => ops.push(ack(vec![store_index])),
                SyncPolicy::MsAsyncEach | SyncPolicy::MsSyncEach => {
                    let flags = if policy == SyncPolicy::MsSyncEach { MsyncFlags::MsSync } else { MsyncFlags::MsAsync };
                    ops.push(Op::Msync { range: page_range(range), flags });
                    ops.push(ack(vec![store_index]));
                }
                SyncPolicy::AckBeforeSync => {
                    ops.push(ack(vec![store_index]));
                    ops.push(Op::Msync { range: page_range(range), flags: MsyncFlags::MsSync });
                }
                SyncPolicy::MsSyncEvery(n) | SyncPolicy::FsyncEvery(n) => {
                    pending.push((txn, store_index));
                    let last = txn + 1 == params.txns;
                    if pending.len() as u32 == n || last {
                        ops.push(match policy {
                            SyncPolicy::FsyncEvery(_) => Op::Fsync,
                            _ => Op::Msync { range: whole, flags: MsyncFlags::MsSync },
                        });
                        for (id, idx) in pending.drain(..) {
                            ops.push(Op::Ack { id, covers: vec![idx] });
                        }
                    }
                }
            }
        }
        ops.push(Op::Munmap);
        let spec = WriterSpec { file_size: params.file_size, page_size, mapping, policy, ops };
        spec.validate()?;
        Ok(spec)
    }

    /// Check the structural rules the executor and the models rely on.
    pub fn validate(&self) -> Result<(), String> {
        if self.page_size == 0 || self.file_size % self.page_size != 0 || self.file_size == 0 {
            return Err(format!(
                "file size {} is not a positive multiple of page size {}",
                self.file_size, self.page_size
            ));
        }
        let mut len = self.file_size;
        let mut unmapped = false;
        let mut versions = std::collections::BTreeSet::new();
        for (i, op) in self.ops.iter().enumerate() {
            match op {
                Op::Store { offset, len: n, version } => {
                    if unmapped {
                        return Err(format!("op {i}: store after munmap"));
                    }
                    if *n == 0 || offset + n > self.file_size {
                        return Err(format!("op {i}: store [{offset}, +{n}) outside the mapping"));
                    }
                    if offset + n > len.div_ceil(self.page_size) * self.page_size {
                        return Err(format!("op {i}: store beyond EOF {len} would fault"));
                    }
                    if *version == 0 || !versions.insert(*version) {
                        return Err(format!("op {i}: version {version} is 0 or not unique"));
                    }
                }
                Op::Msync { range, .. } => {
                    if unmapped {
                        return Err(format!("op {i}: msync after munmap"));
                    }
                    if range.start % self.page_size != 0 || range.end > self.file_size || range.is_empty() {
                        return Err(format!("op {i}: msync range {range:?} not page aligned inside the mapping"));
                    }
                }
                Op::Ack { covers, .. } => {
                    for &c in covers {
                        if c >= i || !matches!(self.ops[c], Op::Store { .. }) {
                            return Err(format!("op {i}: ack covers op {c}, which is not an earlier store"));
                        }
                    }
                }
                Op::Truncate { len: l } => {
                    if *l > self.file_size {
                        return Err(format!("op {i}: truncate to {l} beyond the mapping size"));
                    }
                    len = *l;
                }
                Op::Munmap => unmapped = true,
                Op::Fsync | Op::Fdatasync => {}
            }
        }
        Ok(())
    }

    pub fn page_count(&self) -> u64 {
        self.file_size / self.page_size
    }

    /// Indices of the `Ack` ops, with their ids.
    pub fn acks(&self) -> impl Iterator<Item = (usize, u32, &[usize])> {
        self.ops.iter().enumerate().filter_map(|(i, op)| match op {
            Op::Ack { id, covers } => Some((i, *id, covers.as_slice())),
            _ => None,
        })
    }

    /// Total bytes all stores write.
    pub fn store_bytes(&self) -> u64 {
        self.ops.iter().filter_map(Op::store_range).map(|r| r.len()).sum()
    }
}

/// The byte a store of `version` writes at file offset `pos`. Version 0 is the
/// initial content of the file. Never zero, so a hole or a zeroed page never
/// passes for data.
#[inline]
pub fn pattern_byte(pos: u64, version: u32) -> u8 {
    let word = pattern_word(pos >> 3, version);
    word.to_le_bytes()[(pos & 7) as usize]
}

#[inline]
fn pattern_word(word_index: u64, version: u32) -> u64 {
    // splitmix64 of (word index, version): cheap, and distinct versions
    // disagree on almost every byte.
    let mut z = word_index
        .wrapping_mul(0x9E37_79B9_7F4A_7C15)
        .wrapping_add((version as u64).wrapping_mul(0xD1B5_4A32_D192_ED03))
        .wrapping_add(0x2545_F491_4F6C_DD1D);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^= z >> 31;
    // Force every byte non-zero.
    z | 0x0101_0101_0101_0101
}

/// Fill `out` with the bytes version `version` has at file offsets
/// `start..start + out.len()`.
pub fn fill_pattern(out: &mut [u8], start: u64, version: u32) {
    let mut pos = start;
    let mut i = 0;
    // Unaligned head.
    while i < out.len() && pos & 7 != 0 {
        out[i] = pattern_byte(pos, version);
        i += 1;
        pos += 1;
    }
    // Whole words.
    while out.len() - i >= 8 {
        out[i..i + 8].copy_from_slice(&pattern_word(pos >> 3, version).to_le_bytes());
        i += 8;
        pos += 8;
    }
    while i < out.len() {
        out[i] = pattern_byte(pos, version);
        i += 1;
        pos += 1;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn params() -> WorkloadParams {
        WorkloadParams::with_file_size(256 * 1024)
    }

    #[test]
    fn generation_is_deterministic_and_seed_sensitive() {
        let a = WriterSpec::generate(&params(), MappingKind::Shared, SyncPolicy::MsSyncEach, 4096, 7).unwrap();
        let b = WriterSpec::generate(&params(), MappingKind::Shared, SyncPolicy::MsSyncEach, 4096, 7).unwrap();
        let c = WriterSpec::generate(&params(), MappingKind::Shared, SyncPolicy::MsSyncEach, 4096, 8).unwrap();
        assert_eq!(a, b);
        assert_ne!(a, c);
    }

    #[test]
    fn spec_round_trips_through_json() {
        let a = WriterSpec::generate(&params(), MappingKind::Private, SyncPolicy::FsyncEvery(3), 4096, 1).unwrap();
        let json = serde_json::to_string(&a).unwrap();
        let b: WriterSpec = serde_json::from_str(&json).unwrap();
        assert_eq!(a, b);
    }

    /// Where each ack sits relative to the syncs is what each policy means.
    #[test]
    fn policies_order_syncs_and_acks_as_named() {
        for policy in SyncPolicy::STANDARD {
            let spec = WriterSpec::generate(&params(), MappingKind::Shared, policy, 4096, 3).unwrap();
            for (ack_at, _, covers) in spec.acks() {
                let store = covers[0];
                let between = &spec.ops[store + 1..ack_at];
                let durable_sync_between =
                    between.iter().any(|op| matches!(op, Op::Fsync | Op::Msync { flags: MsyncFlags::MsSync, .. }));
                let async_between = between.iter().any(|op| matches!(op, Op::Msync { flags: MsyncFlags::MsAsync, .. }));
                assert_eq!(durable_sync_between, policy.syncs_before_ack(), "{policy}: {between:?}");
                assert_eq!(async_between, policy == SyncPolicy::MsAsyncEach, "{policy}");
            }
            let acks = spec.acks().count();
            assert_eq!(acks, params().txns as usize, "{policy}: one ack per transaction");
            if policy == SyncPolicy::AckBeforeSync {
                // The sync exists, it just comes too late.
                for (ack_at, _, _) in spec.acks() {
                    assert!(matches!(spec.ops[ack_at + 1], Op::Msync { flags: MsyncFlags::MsSync, .. }));
                }
            }
        }
    }

    #[test]
    fn every_n_policies_sync_after_n_stores() {
        let spec = WriterSpec::generate(&params(), MappingKind::Shared, SyncPolicy::FsyncEvery(4), 4096, 3).unwrap();
        let syncs: Vec<usize> =
            spec.ops.iter().enumerate().filter(|(_, op)| matches!(op, Op::Fsync)).map(|(i, _)| i).collect();
        assert_eq!(syncs.len(), 3); // 12 txns / 4
        let stores_before_first = spec.ops[..syncs[0]].iter().filter(|op| matches!(op, Op::Store { .. })).count();
        assert_eq!(stores_before_first, 4);
    }

    #[test]
    fn large_stores_appear_and_msync_ranges_are_page_aligned() {
        let spec = WriterSpec::generate(&params(), MappingKind::Shared, SyncPolicy::MsSyncEach, 4096, 9).unwrap();
        assert!(spec.ops.iter().any(|op| matches!(op, Op::Store { len, .. } if *len == 64 * 1024)));
        for op in &spec.ops {
            if let Op::Msync { range, .. } = op {
                assert_eq!(range.start % 4096, 0);
                assert_eq!(range.end % 4096, 0);
            }
        }
    }

    #[test]
    fn validate_rejects_broken_specs() {
        let mut spec = WriterSpec::generate(&params(), MappingKind::Shared, SyncPolicy::None, 4096, 1).unwrap();
        spec.ops.push(Op::Store { offset: 0, len: 1, version: 999 });
        assert!(spec.validate().unwrap_err().contains("after munmap"));
        let bad = WorkloadParams { file_size: 1000, ..params() };
        assert!(WriterSpec::generate(&bad, MappingKind::Shared, SyncPolicy::None, 4096, 1).is_err());
    }

    #[test]
    fn policy_names_round_trip() {
        for p in SyncPolicy::STANDARD {
            assert_eq!(p.to_string().parse::<SyncPolicy>().unwrap(), p);
        }
        assert!("ms-sync-every-0".parse::<SyncPolicy>().is_err());
        assert!("sometimes".parse::<SyncPolicy>().is_err());
    }

    #[test]
    fn pattern_is_nonzero_and_fill_matches_bytewise() {
        let mut buf = vec![0u8; 100];
        fill_pattern(&mut buf, 13, 5);
        for (i, b) in buf.iter().enumerate() {
            assert_ne!(*b, 0);
            assert_eq!(*b, pattern_byte(13 + i as u64, 5));
        }
        let differing = (0..4096).filter(|&p| pattern_byte(p, 1) != pattern_byte(p, 2)).count();
        assert!(differing > 4000, "versions must disagree almost everywhere: {differing}");
    }
}
