//! The file-lifecycle family of the matrix as data: its four kinds, the
//! names of their files, the bytes of every version a writer produces, the
//! ack lines, and the checker's judgement of a directory. The roles that
//! make the syscalls are in `program.rs`; this file decides everything they
//! write and everything the checker concludes, so both are testable on
//! hand-built directories.
//!
//! - `replace-*` keep one file, `state`, always holding one complete
//!   version. Setup writes version 0 durably; update `K` writes version `K`
//!   to `state.tmp` through a `MAP_SHARED` mapping, syncs it, renames it over
//!   `state`, (`-dirsync`) fsyncs the directory, and acks `version K`.
//! - `create-*` make one new file per op: op `K` creates `seg-00000K`, writes
//!   it through a mapping, syncs it, (`-dirsync`) fsyncs the directory, and
//!   acks `segment K`.
//!
//! A checker's reason starts with `lost:` when an acknowledged op is
//! missing and with `corrupt:` when a file holds what no write produced (or
//! a name refers to nothing it should): the survival report counts the two
//! apart, since the expectations differ (`expectation::expected_lifecycle_acks`).
//!
//! Architecture Invariant: pure.

use crate::scenario::derive_seed;

pub use crate::vocab::lifecycle_kind::{LifecycleKind, CORRUPT_PREFIX, LOST_PREFIX};

/// Ops (acks) per writer run unless `--lifecycle-acks` says otherwise:
/// enough for a loss to be among several acks, few enough that a
/// power-loss trial's states stay cheap to check.
pub const DEFAULT_ACKS: u32 = 8;

/// The file `replace-*` keep.
pub const STATE: &str = "state";
/// The file each `replace-*` update writes before renaming it.
pub const STATE_TMP: &str = "state.tmp";
/// Pages of every version's image: two, so that a file mixing two versions
/// (or half written) can be told from a complete one.
pub const IMAGE_PAGES: usize = 2;
const MAGIC: u32 = 0x4C43_5946; // "FYCL"
/// magic (u32), version (u64), page index (u32) at the start of each page.
const PAGE_HEADER: usize = 16;

/// The name of segment `n` of `create-*` (1-based).
pub fn segment_name(n: u64) -> String {
    format!("seg-{n:06}")
}

/// The segment number a name stands for, if it is a segment's name.
pub fn segment_number(name: &str) -> Option<u64> {
    let digits = name.strip_prefix("seg-")?;
    if digits.len() != 6 || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    digits.parse().ok().filter(|&n| n > 0)
}

/// The bytes of `version` (`IMAGE_PAGES` pages of `page` bytes): each page
/// starts with magic, version and page index, the rest is a function of the
/// seed, the version and the position, so a checker recomputes every byte.
pub fn image(seed: u64, version: u64, page: usize) -> Vec<u8> {
    let mut bytes = vec![0u8; IMAGE_PAGES * page];
    for (p, chunk) in bytes.chunks_mut(page).enumerate() {
        chunk[0..4].copy_from_slice(&MAGIC.to_le_bytes());
        chunk[4..12].copy_from_slice(&version.to_le_bytes());
        chunk[12..16].copy_from_slice(&(p as u32).to_le_bytes());
        let mut word = derive_seed(seed, &["lifecycle", &version.to_string(), &p.to_string()]);
        for (i, b) in chunk[PAGE_HEADER..].iter_mut().enumerate() {
            if i % 8 == 0 {
                word = word.wrapping_mul(0x9E37_79B9_7F4A_7C15).wrapping_add(1);
            }
            *b = (word >> (8 * (i % 8))) as u8;
        }
    }
    bytes
}

/// The version a file holds if it holds exactly one complete version.
fn complete_version(bytes: &[u8], seed: u64, page: usize) -> Option<u64> {
    if bytes.len() != IMAGE_PAGES * page || bytes.len() < 12 {
        return None;
    }
    let version = u64::from_le_bytes(bytes[4..12].try_into().expect("8 bytes"));
    (bytes == image(seed, version, page).as_slice()).then_some(version)
}

/// Could `bytes` be a file of `version`'s image that was created, sized and
/// partly written when the crash came? Empty, or the image's length with
/// every byte either zero (the size change's zero fill) or the image's own.
fn in_flight_of(bytes: &[u8], seed: u64, version: u64, page: usize) -> bool {
    if bytes.is_empty() {
        return true;
    }
    let full = image(seed, version, page);
    bytes.len() == full.len() && bytes.iter().zip(&full).all(|(&b, &f)| b == 0 || b == f)
}

/// The ack line of op `version` (1-based).
pub fn ack_line(kind: LifecycleKind, version: u64) -> String {
    if kind.replaces() {
        format!("version {version}")
    } else {
        format!("segment {version}")
    }
}

/// The op numbers of the ack lines, in order; an unreadable line is the
/// checker's malfunction, not a verdict.
pub fn parse_acks(kind: LifecycleKind, lines: &[String]) -> Result<Vec<u64>, String> {
    let word = if kind.replaces() { "version" } else { "segment" };
    lines
        .iter()
        .map(|l| {
            l.strip_prefix(word)
                .and_then(|rest| rest.strip_prefix(' '))
                .and_then(|n| n.parse::<u64>().ok())
                .ok_or_else(|| format!("unreadable ack line `{l}` (expected `{word} N`)"))
        })
        .collect()
}

/// One entry of the directory a checker judges.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Entry {
    pub name: String,
    /// The file's bytes; `None` for anything but a regular file.
    pub bytes: Option<Vec<u8>>,
}

/// What is wrong with a directory. Corruption is reported before loss: it
/// is the outcome no kind's expectation allows.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Judgement {
    /// An acknowledged op is missing.
    Lost(String),
    /// A file holds what no write produced, or a name refers to nothing it should.
    Corrupt(String),
}

impl Judgement {
    /// The checker's reason line: `lost: ...` or `corrupt: ...`.
    pub fn reason(&self) -> String {
        match self {
            Judgement::Lost(r) => format!("{LOST_PREFIX}{r}"),
            Judgement::Corrupt(r) => format!("{CORRUPT_PREFIX}{r}"),
        }
    }
}

/// Judge a directory left by `kind`'s setup and writer (`seed` is the
/// writer's `CRASHLAB_SEED`, `acked` the acked op numbers in order).
pub fn judge(kind: LifecycleKind, entries: &[Entry], acked: &[u64], seed: u64, page: usize) -> Result<(), Judgement> {
    let last = acked.iter().copied().max().unwrap_or(0);
    if kind.replaces() {
        judge_replace(entries, last, seed, page)
    } else {
        judge_create(entries, acked, last, seed, page)
    }
}

/// `state` must name one complete version, no older than the last acked
/// one (else `lost`) and no newer than the update in flight. `state.tmp` is
/// the update in flight (or, after a power loss, an earlier one whose
/// rename was lost): it is not judged, as in the example workload.
fn judge_replace(entries: &[Entry], last: u64, seed: u64, page: usize) -> Result<(), Judgement> {
    for e in entries {
        if e.name != STATE && e.name != STATE_TMP {
            return Err(Judgement::Corrupt(format!("unexpected entry `{}`: no write of replace made it", e.name)));
        }
    }
    let Some(state) = entries.iter().find(|e| e.name == STATE) else {
        // The setup made `state` durable and rename(2) replaces it
        // atomically: there is no instant at which it is missing.
        return Err(Judgement::Corrupt(format!("{STATE} is missing (the setup made it durable; rename is atomic)")));
    };
    let Some(bytes) = &state.bytes else {
        return Err(Judgement::Corrupt(format!("{STATE} is not a regular file")));
    };
    let Some(version) = complete_version(bytes, seed, page) else {
        return Err(Judgement::Corrupt(format!(
            "{STATE} holds no complete version ({} bytes): a mixed or torn file",
            bytes.len()
        )));
    };
    if version > last + 1 {
        return Err(Judgement::Corrupt(format!(
            "{STATE} holds version {version}, never written after acked version {last}"
        )));
    }
    if version < last {
        return Err(Judgement::Lost(format!("acked version {last} is lost: {STATE} holds version {version}")));
    }
    Ok(())
}

/// Every acked segment must be there, complete (else `lost` if missing,
/// `corrupt` if not complete); the one after the last acked may be there in
/// any state a write could leave it in; nothing else may be there.
fn judge_create(entries: &[Entry], acked: &[u64], last: u64, seed: u64, page: usize) -> Result<(), Judgement> {
    for e in entries {
        let Some(n) = segment_number(&e.name) else {
            return Err(Judgement::Corrupt(format!("unexpected entry `{}`: no write of create made it", e.name)));
        };
        let Some(bytes) = &e.bytes else {
            return Err(Judgement::Corrupt(format!("{} is not a regular file", e.name)));
        };
        if acked.contains(&n) {
            if complete_version(bytes, seed, page) != Some(n) {
                return Err(Judgement::Corrupt(format!(
                    "acked {} does not hold its complete contents ({} bytes)",
                    e.name,
                    bytes.len()
                )));
            }
        } else if n <= last + 1 {
            // The op in flight (or, after a power loss, an unacked one
            // whose creation survived): empty, or sized with its bytes
            // written or still zero.
            if !in_flight_of(bytes, seed, n, page) {
                return Err(Judgement::Corrupt(format!(
                    "{} holds bytes its write never produced ({} bytes)",
                    e.name,
                    bytes.len()
                )));
            }
        } else {
            return Err(Judgement::Corrupt(format!(
                "{} exists, but the writer never got past segment {}",
                e.name,
                last + 1
            )));
        }
    }
    let present = |n: u64| entries.iter().any(|e| segment_number(&e.name) == Some(n));
    let missing: Vec<u64> = acked.iter().copied().filter(|&n| !present(n)).collect();
    match missing.as_slice() {
        [] => Ok(()),
        [one] => Err(Judgement::Lost(format!("acked {} is missing", segment_name(*one)))),
        [first, ..] => Err(Judgement::Lost(format!(
            "{} acked segments are missing, {} first",
            missing.len(),
            segment_name(*first)
        ))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const PAGE: usize = 4096;
    const SEED: u64 = 11;

    fn file(name: &str, bytes: Vec<u8>) -> Entry {
        Entry { name: name.into(), bytes: Some(bytes) }
    }

    fn lost(r: Result<(), Judgement>) -> String {
        match r {
            Err(Judgement::Lost(why)) => why,
            other => panic!("expected a lost ack, got {other:?}"),
        }
    }

    fn corrupt(r: Result<(), Judgement>) -> String {
        match r {
            Err(Judgement::Corrupt(why)) => why,
            other => panic!("expected corruption, got {other:?}"),
        }
    }

    #[test]
    fn names_and_ack_lines_read_back() {
        for k in LifecycleKind::ALL {
            assert_eq!(k.name().parse::<LifecycleKind>(), Ok(k));
            assert_eq!(parse_acks(k, &[ack_line(k, 3), ack_line(k, 4)]), Ok(vec![3, 4]));
        }
        assert!("replace".parse::<LifecycleKind>().unwrap_err().contains("create-no-dirsync"));
        assert!(parse_acks(LifecycleKind::ReplaceDirsync, &["segment 1".into()]).is_err());
        assert_eq!(segment_number(&segment_name(12)), Some(12));
        assert_eq!(segment_number("seg-1"), None);
        assert_eq!(segment_number("seg-000000"), None);
    }

    #[test]
    fn every_page_of_an_image_names_its_version_and_differs_between_versions() {
        let (a, b) = (image(SEED, 3, PAGE), image(SEED, 4, PAGE));
        assert_eq!(a.len(), IMAGE_PAGES * PAGE);
        assert_eq!(complete_version(&a, SEED, PAGE), Some(3));
        assert_ne!(a[PAGE..], b[PAGE..], "the second page differs too");
        assert_ne!(image(SEED + 1, 3, PAGE), a, "a function of the seed");
        let mut mixed = a.clone();
        mixed[PAGE..].copy_from_slice(&b[PAGE..]);
        assert_eq!(complete_version(&mixed, SEED, PAGE), None);
    }

    #[test]
    fn replace_accepts_the_last_acked_version_and_the_one_in_flight() {
        let k = LifecycleKind::ReplaceDirsync;
        for v in [2, 3] {
            let dir = [file(STATE, image(SEED, v, PAGE)), file(STATE_TMP, vec![0; 7])];
            assert_eq!(judge(k, &dir, &[1, 2], SEED, PAGE), Ok(()), "version {v}");
        }
        // Nothing acked: the setup's version 0 or the first update.
        assert_eq!(judge(k, &[file(STATE, image(SEED, 0, PAGE))], &[], SEED, PAGE), Ok(()));
    }

    #[test]
    fn replace_rejects_a_stale_state_as_a_lost_ack() {
        let dir = [file(STATE, image(SEED, 1, PAGE)), file(STATE_TMP, image(SEED, 3, PAGE))];
        let why = lost(judge(LifecycleKind::ReplaceNoDirsync, &dir, &[1, 2, 3], SEED, PAGE));
        assert_eq!(why, "acked version 3 is lost: state holds version 1");
    }

    #[test]
    fn replace_rejects_a_mixed_missing_or_future_state_as_corrupt() {
        let k = LifecycleKind::ReplaceNoDirsync;
        let mut mixed = image(SEED, 2, PAGE);
        mixed[PAGE..].copy_from_slice(&image(SEED, 1, PAGE)[PAGE..]);
        assert!(corrupt(judge(k, &[file(STATE, mixed)], &[1], SEED, PAGE)).contains("no complete version"));
        assert!(corrupt(judge(k, &[file(STATE, vec![])], &[1], SEED, PAGE)).contains("0 bytes"));
        assert!(corrupt(judge(k, &[], &[], SEED, PAGE)).contains("state is missing"));
        assert!(corrupt(judge(k, &[file(STATE, image(SEED, 4, PAGE))], &[1, 2], SEED, PAGE)).contains("version 4"));
        let extra = [file(STATE, image(SEED, 1, PAGE)), file("other", vec![])];
        assert!(corrupt(judge(k, &extra, &[1], SEED, PAGE)).contains("`other`"));
    }

    #[test]
    fn create_rejects_a_missing_acked_segment_as_a_lost_ack() {
        let k = LifecycleKind::CreateNoDirsync;
        let dir = [file(&segment_name(1), image(SEED, 1, PAGE)), file(&segment_name(3), image(SEED, 3, PAGE))];
        assert_eq!(lost(judge(k, &dir, &[1, 2, 3], SEED, PAGE)), "acked seg-000002 is missing");
        assert_eq!(lost(judge(k, &[], &[1, 2], SEED, PAGE)), "2 acked segments are missing, seg-000001 first");
    }

    #[test]
    fn create_accepts_the_segment_in_flight_empty_or_partly_written() {
        let k = LifecycleKind::CreateDirsync;
        let mut partial = image(SEED, 2, PAGE);
        partial[PAGE + 100..].fill(0);
        for in_flight in [vec![], vec![0; IMAGE_PAGES * PAGE], partial, image(SEED, 2, PAGE)] {
            let dir = [file(&segment_name(1), image(SEED, 1, PAGE)), file(&segment_name(2), in_flight)];
            assert_eq!(judge(k, &dir, &[1], SEED, PAGE), Ok(()));
        }
    }

    #[test]
    fn create_rejects_foreign_bytes_an_incomplete_acked_segment_and_a_future_one() {
        let k = LifecycleKind::CreateDirsync;
        let seg1 = || file(&segment_name(1), image(SEED, 1, PAGE));
        let mut foreign = image(SEED, 2, PAGE);
        foreign[PAGE + 5] ^= 0xff;
        let why = corrupt(judge(k, &[seg1(), file(&segment_name(2), foreign)], &[1], SEED, PAGE));
        assert!(why.contains("never produced"), "{why}");
        let short = file(&segment_name(1), image(SEED, 1, PAGE)[..PAGE].to_vec());
        assert!(corrupt(judge(k, &[short], &[1], SEED, PAGE)).contains("complete contents"));
        let why = corrupt(judge(k, &[seg1(), file(&segment_name(3), vec![])], &[1], SEED, PAGE));
        assert!(why.contains("never got past segment 2"), "{why}");
        let dir = Entry { name: segment_name(1), bytes: None };
        assert!(corrupt(judge(k, &[dir], &[1], SEED, PAGE)).contains("not a regular file"));
    }

    #[test]
    fn corruption_is_reported_before_loss_and_reasons_carry_their_prefix() {
        let k = LifecycleKind::CreateNoDirsync;
        let dir = [file(&segment_name(2), vec![1, 2, 3])];
        let j = judge(k, &dir, &[1], SEED, PAGE).unwrap_err();
        assert!(j.reason().starts_with(CORRUPT_PREFIX), "{j:?}");
        assert!(Judgement::Lost("x".into()).reason().starts_with(LOST_PREFIX));
    }
}
