//! The process-crash persistence model and its verifier.
//!
//! After a process dies (SIGKILL, SIGABRT, SIGBUS) the kernel keeps its page
//! cache: every completed store to a `MAP_SHARED` mapping is in the file,
//! synced or not; bytes of the store in flight may be old or new in any mix;
//! nothing later is there. A `MAP_PRIVATE` mapping never reaches the file.
//! When someone truncates the file under the mapping, the file has the new
//! length and the writer's next store to a page wholly beyond it dies of
//! SIGBUS. When the file starts sparse on a filesystem that runs out of
//! pages (`enospc`), the store [`capacity_fault`] predicts dies of SIGBUS
//! and is judged as a store in flight: each of its bytes old (a hole's
//! zero) or new.
//!
//! [`verify`] compares what was read back with what the model allows and
//! classifies every acknowledged op. Anything outside the model is a
//! [`Violation`]: the kernel (or the harness) surprised us.
//!
//! Architecture Invariant: pure. It sees bytes, never descriptors.

use serde::{Deserialize, Serialize};

use crate::crash::CrashPoint;
use crate::journal::JournalSnapshot;
use crate::live_image::{FileEvent, LiveImage, Owner};
use crate::page_allocation::capacity_fault;
use crate::payload::Payloads;
use crate::spec::{pattern_byte, ByteRange, MappingKind, Op, WriterSpec};
use crate::vocab::CrashKind;

/// How the child ended, as `waitpid` said.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ChildExit {
    Exited(i32),
    Signaled(i32),
}

impl std::fmt::Display for ChildExit {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ChildExit::Exited(c) => write!(f, "exit {c}"),
            ChildExit::Signaled(s) => write!(f, "signal {}", signal_name(*s)),
        }
    }
}

pub fn signal_name(sig: i32) -> String {
    match sig {
        libc::SIGKILL => "SIGKILL".into(),
        libc::SIGABRT => "SIGABRT".into(),
        libc::SIGBUS => "SIGBUS".into(),
        libc::SIGSEGV => "SIGSEGV".into(),
        libc::SIGALRM => "SIGALRM".into(),
        libc::SIGINT => "SIGINT".into(),
        libc::SIGTERM => "SIGTERM".into(),
        s => format!("signal {s}"),
    }
}

/// The exit code a built-in child uses when one of its ops failed.
pub const EXIT_OP_FAILED: i32 = 3;

/// Everything about one trial except the file content.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct TrialFacts {
    pub kind: CrashKind,
    pub point: CrashPoint,
    pub exit: ChildExit,
    pub journal: JournalSnapshot,
    /// The parent truncated the file to `.1` when the child reached op `.0`.
    pub external_truncate: Option<(usize, u64)>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum AckStatus {
    /// Every byte of every store it covers holds its version or a newer one.
    Survived,
    /// Some bytes did, some did not.
    Torn,
    /// No byte did.
    Lost,
    /// Every byte still in the file survived, but some were cut off by a
    /// truncation.
    Truncated,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct AckOutcome {
    pub id: u32,
    pub op: usize,
    pub status: AckStatus,
}

/// What became of the store that was running when the writer died.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct InFlightStore {
    pub op: usize,
    /// Bytes of the store inside the file.
    pub bytes: u64,
    /// Of those, how many hold the new version.
    pub new_bytes: u64,
}

impl InFlightStore {
    pub fn torn(&self) -> bool {
        self.new_bytes > 0 && self.new_bytes < self.bytes
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum ViolationKind {
    /// The child did not end the way the crash plan and the journal say it must.
    Exit,
    /// The file has a length the model does not allow.
    Length,
    /// Bytes the model does not allow.
    Content,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Violation {
    pub kind: ViolationKind,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub range: Option<ByteRange>,
    pub detail: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ProcessVerdict {
    pub file_len: u64,
    pub expected_len: u64,
    pub in_flight: Option<InFlightStore>,
    /// The store that died of SIGBUS, if one did.
    pub faulting_store: Option<usize>,
    pub acks: Vec<AckOutcome>,
    pub violations: Vec<Violation>,
}

/// At most this many content violations are described per trial.
const MAX_CONTENT_VIOLATIONS: usize = 8;

/// The file events of a trial, in order: completed ops, with the parent's
/// truncation where the child stopped for it.
pub fn file_events(facts: &TrialFacts) -> Vec<FileEvent> {
    let mut events = Vec::with_capacity(facts.journal.completed + 1);
    for i in 0..facts.journal.completed {
        if let Some((at, len)) = facts.external_truncate {
            if at == i {
                events.push(FileEvent::ExternalTruncate(len));
            }
        }
        events.push(FileEvent::Op(i));
    }
    if let Some((at, len)) = facts.external_truncate {
        if at >= facts.journal.completed {
            events.push(FileEvent::ExternalTruncate(len));
        }
    }
    events
}

/// The first store at or after `from` that touches a page wholly beyond `len`:
/// the one that must die of SIGBUS.
pub fn first_faulting_store(spec: &WriterSpec, from: usize, len: u64) -> Option<usize> {
    let mapped_end = len.div_ceil(spec.page_size) * spec.page_size;
    spec.ops
        .iter()
        .enumerate()
        .skip(from)
        .find_map(|(i, op)| match *op {
            Op::Store { offset, len: n, .. } if offset + n > mapped_end => Some(i),
            Op::Munmap => Some(usize::MAX),
            _ => None,
        })
        .filter(|&i| i != usize::MAX)
}

/// How the child must have ended, given the plan and the journal.
fn check_exit(spec: &WriterSpec, facts: &TrialFacts, out: &mut Vec<Violation>) -> Option<usize> {
    let n = spec.ops.len();
    let j = &facts.journal;
    let mut faulting = None;
    let mut bad = |detail: String| out.push(Violation { kind: ViolationKind::Exit, range: None, detail });
    if let Some(f) = j.failed {
        bad(format!(
            "op {} ({}) failed with errno {} ({})",
            f.op,
            spec.ops[f.op].kind_name(),
            f.errno,
            std::io::Error::from_raw_os_error(f.errno)
        ));
        return None;
    }
    let finished = j.completed == n && j.in_flight.is_none();
    match (facts.kind, facts.point) {
        (CrashKind::Clean, _) => {
            if facts.exit != ChildExit::Exited(0) || !finished {
                bad(format!("clean run ended with {} after {} of {n} ops", facts.exit, j.completed));
            }
        }
        (CrashKind::Sigkill | CrashKind::Abort, CrashPoint::BeforeOp(k)) => {
            let sig = if facts.kind == CrashKind::Sigkill { libc::SIGKILL } else { libc::SIGABRT };
            if facts.exit != ChildExit::Signaled(sig) || j.completed != k || j.in_flight.is_some() {
                bad(format!(
                    "expected {} before op {k}, got {} with {} ops completed (in flight: {:?})",
                    signal_name(sig),
                    facts.exit,
                    j.completed,
                    j.in_flight
                ));
            }
        }
        (CrashKind::Sigkill, CrashPoint::InsideStore { .. } | CrashPoint::AtTime { .. }) => {
            let ok = match facts.exit {
                ChildExit::Signaled(libc::SIGKILL) => true,
                // The kill came after the writer had finished.
                ChildExit::Exited(0) => finished,
                _ => false,
            };
            if !ok {
                bad(format!("expected SIGKILL, got {} after {} ops", facts.exit, j.completed));
            }
        }
        (CrashKind::Sigbus, CrashPoint::TruncateBefore { op, len }) => {
            let must = |s| format!("after truncation to {len} before op {op}, store {s} must die of SIGBUS");
            let never = || format!("after truncation to {len} no store goes beyond EOF");
            faulting = sigbus_end(facts, n, first_faulting_store(spec, op, len), must, never, &mut bad);
        }
        // The filesystem runs out of pages: the store the allocation walk
        // predicts dies of SIGBUS in its write fault, every op before it
        // completed, nothing after it ran (page_allocation's rule).
        (CrashKind::Enospc, CrashPoint::Capacity { pages }) => {
            let must = |s| {
                format!("with room for {pages} page(s), store {s} must die of SIGBUS on a page the filesystem cannot allocate")
            };
            let never = || format!("with room for {pages} page(s) the run never fills the filesystem");
            faulting = sigbus_end(facts, n, capacity_fault(spec, pages), must, never, &mut bad);
        }
        (kind, point) => bad(format!("crash point {point} cannot be used with {kind}")),
    }
    faulting
}

/// The end of a trial whose plan predicts a SIGBUS: the child dies of it
/// inside store `predicted` (every op before it completed, none after it
/// started), or, when no store faults, exits 0 after all `n` ops. The
/// faulting store, or a violation saying what was predicted (`must`,
/// `never`) and what happened.
fn sigbus_end(
    facts: &TrialFacts,
    n: usize,
    predicted: Option<usize>,
    must: impl FnOnce(usize) -> String,
    never: impl FnOnce() -> String,
    bad: &mut impl FnMut(String),
) -> Option<usize> {
    let j = &facts.journal;
    match predicted {
        Some(s) if facts.exit == ChildExit::Signaled(libc::SIGBUS) && j.in_flight == Some(s) && j.completed == s => {
            Some(s)
        }
        Some(s) => {
            bad(format!(
                "{}; got {} with {} ops completed (in flight: {:?})",
                must(s),
                facts.exit,
                j.completed,
                j.in_flight
            ));
            None
        }
        None => {
            if facts.exit != ChildExit::Exited(0) || j.completed != n || j.in_flight.is_some() {
                bad(format!("{}, yet the child ended with {} after {} of {n} ops", never(), facts.exit, j.completed));
            }
            None
        }
    }
}

/// The store in flight when the child died, if its bytes can be in the file.
fn in_flight_store(spec: &WriterSpec, facts: &TrialFacts) -> Option<(usize, ByteRange)> {
    let i = facts.journal.in_flight?;
    match (spec.mapping, spec.ops[i].store_range()) {
        (MappingKind::Shared, Some(r)) => Some((i, r)),
        _ => None,
    }
}

fn owner_bytes<'a>(
    spec: &WriterSpec,
    payloads: &'a Payloads,
    owner: Owner,
    r: ByteRange,
    zeros: &'a [u8],
) -> OwnerBytes<'a> {
    match owner {
        Owner::Base => OwnerBytes::Slice(&payloads.base[r.start as usize..r.end as usize]),
        Owner::Store(i) => {
            let off = spec.ops[i].store_range().expect("owner is a store").start;
            OwnerBytes::Slice(&payloads.store(spec, i)[(r.start - off) as usize..(r.end - off) as usize])
        }
        Owner::Zero => {
            if (r.len() as usize) <= zeros.len() {
                OwnerBytes::Slice(&zeros[..r.len() as usize])
            } else {
                OwnerBytes::Zeros
            }
        }
    }
}

enum OwnerBytes<'a> {
    Slice(&'a [u8]),
    Zeros,
}

impl OwnerBytes<'_> {
    fn at(&self, i: usize) -> u8 {
        match self {
            OwnerBytes::Slice(s) => s[i],
            OwnerBytes::Zeros => 0,
        }
    }
    fn equals(&self, observed: &[u8]) -> bool {
        match self {
            OwnerBytes::Slice(s) => *s == observed,
            OwnerBytes::Zeros => observed.iter().all(|&b| b == 0),
        }
    }
}

static ZEROS: [u8; 4096] = [0; 4096];

/// `r` cut at 8-byte-aligned file offsets: the unit in which bytes are told
/// apart (a lone byte matches another version by chance one time in 256).
fn words(r: ByteRange) -> impl Iterator<Item = (u64, u64)> {
    let mut pos = r.start;
    std::iter::from_fn(move || {
        if pos >= r.end {
            return None;
        }
        let end = ((pos & !7) + 8).min(r.end);
        let w = (pos, end);
        pos = end;
        Some(w)
    })
}

/// Judge one trial: the child's exit, the file's length and every byte.
pub fn verify(spec: &WriterSpec, payloads: &Payloads, facts: &TrialFacts, observed: &[u8]) -> ProcessVerdict {
    let events = file_events(facts);
    let verdict = verify_against(spec, payloads, facts, observed, LiveImage::after(spec, events.iter().copied()));
    // An ftruncate killed in flight may or may not have taken effect: the
    // journal cannot tell, so either image is allowed.
    match facts.journal.in_flight {
        Some(i) if matches!(spec.ops[i], Op::Truncate { .. }) && !verdict.violations.is_empty() => {
            let applied = LiveImage::after(spec, events.into_iter().chain([FileEvent::Op(i)]));
            let other = verify_against(spec, payloads, facts, observed, applied);
            if other.violations.is_empty() {
                other
            } else {
                verdict
            }
        }
        _ => verdict,
    }
}

fn verify_against(
    spec: &WriterSpec,
    payloads: &Payloads,
    facts: &TrialFacts,
    observed: &[u8],
    image: LiveImage,
) -> ProcessVerdict {
    let mut violations = Vec::new();
    let faulting_store = check_exit(spec, facts, &mut violations);
    let file_len = observed.len() as u64;
    if file_len != image.len {
        violations.push(Violation {
            kind: ViolationKind::Length,
            range: None,
            detail: format!("file is {file_len} bytes, the model allows only {}", image.len),
        });
    }
    let flight = in_flight_store(spec, facts);
    let cmp_len = file_len.min(image.len);
    let mut content_violations = 0usize;
    let mut in_flight = None;

    // Bytes outside the in-flight store must match the image exactly.
    for seg in image.within(ByteRange::new(0, cmp_len)) {
        let pieces: Vec<ByteRange> = match flight {
            Some((_, fr)) if fr.overlaps(&seg.range) => {
                let mut v = Vec::new();
                if seg.range.start < fr.start {
                    v.push(ByteRange::new(seg.range.start, fr.start));
                }
                if seg.range.end > fr.end {
                    v.push(ByteRange::new(fr.end, seg.range.end));
                }
                v
            }
            _ => vec![seg.range],
        };
        for r in pieces {
            let want = owner_bytes(spec, payloads, seg.owner, r, &ZEROS);
            let got = &observed[r.start as usize..r.end as usize];
            if !want.equals(got) {
                describe_mismatch(spec, r, &want, got, &mut violations, &mut content_violations);
            }
        }
    }

    // The in-flight store: each byte old or new.
    if let Some((op, fr)) = flight {
        let fr = ByteRange::new(fr.start.min(cmp_len), fr.end.min(cmp_len));
        let new = payloads.store(spec, op);
        let store_start = spec.ops[op].store_range().unwrap().start;
        let mut new_bytes = 0u64;
        for seg in image.within(fr) {
            let old = owner_bytes(spec, payloads, seg.owner, seg.range, &ZEROS);
            let got = &observed[seg.range.start as usize..seg.range.end as usize];
            let new = &new[(seg.range.start - store_start) as usize..(seg.range.end - store_start) as usize];
            if got == new {
                new_bytes += seg.range.len();
                continue;
            }
            if old.equals(got) {
                continue;
            }
            // Compare word by word: two versions agree on a single byte one
            // time in 256, on a whole 8-byte word practically never.
            let mut bad_from: Option<u64> = None;
            for (w0, w1) in words(seg.range) {
                let (a, b) = ((w0 - seg.range.start) as usize, (w1 - seg.range.start) as usize);
                let g = &got[a..b];
                let ok = if g == &new[a..b] {
                    new_bytes += (b - a) as u64;
                    true
                } else {
                    // A word the tear splits: every byte old or new.
                    new_bytes += (a..b).filter(|&i| got[i] == new[i] && got[i] != old.at(i)).count() as u64;
                    (a..b).all(|i| got[i] == new[i] || got[i] == old.at(i))
                };
                match (ok, bad_from) {
                    (false, None) => bad_from = Some(w0),
                    (true, Some(s)) => {
                        push_content(
                            &mut violations,
                            &mut content_violations,
                            ByteRange::new(s, w0),
                            format!("bytes of in-flight store {op} are neither its old nor its new version"),
                        );
                        bad_from = None;
                    }
                    _ => {}
                }
            }
            if let Some(s) = bad_from {
                push_content(
                    &mut violations,
                    &mut content_violations,
                    ByteRange::new(s, seg.range.end),
                    format!("bytes of in-flight store {op} are neither its old nor its new version"),
                );
            }
        }
        in_flight = Some(InFlightStore { op, bytes: fr.len(), new_bytes });
    }
    if content_violations > MAX_CONTENT_VIOLATIONS {
        violations.push(Violation {
            kind: ViolationKind::Content,
            range: None,
            detail: format!("{} more content violations not listed", content_violations - MAX_CONTENT_VIOLATIONS),
        });
    }

    let exact = violations.iter().all(|v| v.kind == ViolationKind::Exit);
    let acks = classify_acks(spec, facts, &image, flight, observed, exact);
    ProcessVerdict { file_len, expected_len: image.len, in_flight, faulting_store, acks, violations }
}

fn push_content(violations: &mut Vec<Violation>, count: &mut usize, range: ByteRange, detail: String) {
    *count += 1;
    if *count <= MAX_CONTENT_VIOLATIONS {
        violations.push(Violation { kind: ViolationKind::Content, range: Some(range), detail });
    }
}

/// Name what sits in a mismatching range: a version we know, zeros, or noise.
fn describe_mismatch(
    spec: &WriterSpec,
    r: ByteRange,
    want: &OwnerBytes<'_>,
    got: &[u8],
    violations: &mut Vec<Violation>,
    count: &mut usize,
) {
    // Mismatching words, merged when fewer than 64 matching bytes separate
    // them (chance agreement must not split one bad range into many).
    let mut runs: Vec<ByteRange> = Vec::new();
    for (w0, w1) in words(r) {
        let (a, b) = ((w0 - r.start) as usize, (w1 - r.start) as usize);
        if (a..b).all(|i| got[i] == want.at(i)) {
            continue;
        }
        match runs.last_mut() {
            Some(last) if w0 < last.end + 64 => last.end = w1,
            _ => runs.push(ByteRange::new(w0, w1)),
        }
    }
    for bad in runs {
        let start = (bad.start - r.start) as usize;
        let sample = &got[start..(start + 16).min((bad.end - r.start) as usize)];
        let matches =
            |version: u32| sample.iter().enumerate().all(|(k, &b)| b == pattern_byte(bad.start + k as u64, version));
        let found = if sample.iter().all(|&b| b == 0) {
            "zeros".to_string()
        } else if matches(0) {
            "the initial content".to_string()
        } else if let Some(v) = spec.ops.iter().find_map(|op| match *op {
            Op::Store { offset, len, version }
                if offset <= bad.start && bad.start < offset + len && matches(version) =>
            {
                Some(version)
            }
            _ => None,
        }) {
            format!("version {v}")
        } else {
            "bytes no op wrote".to_string()
        };
        push_content(violations, count, bad, format!("found {found} where the model allows only its expected bytes"));
    }
}

/// Classify every completed ack. When the file matched the model exactly the
/// answer follows from the image alone; otherwise look at the bytes.
fn classify_acks(
    spec: &WriterSpec,
    facts: &TrialFacts,
    image: &LiveImage,
    flight: Option<(usize, ByteRange)>,
    observed: &[u8],
    exact: bool,
) -> Vec<AckOutcome> {
    let mut out = Vec::new();
    for (at, id, covers) in spec.acks() {
        if !facts.journal.is_done(at) {
            continue;
        }
        let (mut good, mut bad, mut cut) = (0u64, 0u64, 0u64);
        for &s in covers {
            let Op::Store { offset, len, version } = spec.ops[s] else { continue };
            let r = ByteRange::new(offset, offset + len);
            let in_file = ByteRange::new(r.start.min(image.len), r.end.min(image.len));
            cut += r.len() - in_file.len();
            if exact {
                for seg in image.within(in_file) {
                    match seg.owner {
                        Owner::Store(t) if t >= s => good += seg.range.len(),
                        _ => bad += seg.range.len(),
                    }
                }
            } else {
                let obs_end = in_file.end.min(observed.len() as u64).max(in_file.start);
                let in_obs = ByteRange::new(in_file.start, obs_end);
                cut += in_file.len() - in_obs.len();
                let newer: Vec<(ByteRange, u32)> = spec
                    .ops
                    .iter()
                    .enumerate()
                    .skip(s + 1)
                    .take_while(|(i, _)| facts.journal.is_done(*i) || flight.map(|f| f.0) == Some(*i))
                    .filter_map(|(_, op)| match *op {
                        Op::Store { offset, len, version } => Some((ByteRange::new(offset, offset + len), version)),
                        _ => None,
                    })
                    .filter(|(nr, _)| nr.overlaps(&r))
                    .collect();
                for (w0, w1) in words(in_obs) {
                    let got = &observed[w0 as usize..w1 as usize];
                    // Every byte of the word holds this version or a newer one.
                    let ok = got.iter().zip(w0..w1).all(|(&b, pos)| {
                        b == pattern_byte(pos, version)
                            || newer.iter().any(|(nr, v)| nr.start <= pos && pos < nr.end && b == pattern_byte(pos, *v))
                    });
                    if ok {
                        good += w1 - w0
                    } else {
                        bad += w1 - w0
                    }
                }
            }
        }
        let status = match (good, bad, cut) {
            (_, 0, 0) => AckStatus::Survived,
            (_, 0, _) => AckStatus::Truncated,
            (0, _, _) => AckStatus::Lost,
            _ => AckStatus::Torn,
        };
        out.push(AckOutcome { id, op: at, status });
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::journal::OpFailure;
    use crate::spec::{MsyncFlags, SyncPolicy};

    fn spec(mapping: MappingKind) -> WriterSpec {
        WriterSpec {
            file_size: 16384,
            page_size: 4096,
            mapping,
            policy: SyncPolicy::MsSyncEach,
            ops: vec![
                Op::Store { offset: 100, len: 200, version: 1 },
                Op::Msync { range: ByteRange::new(0, 4096), flags: MsyncFlags::MsSync },
                Op::Ack { id: 0, covers: vec![0] },
                Op::Store { offset: 8000, len: 4000, version: 2 },
                Op::Ack { id: 1, covers: vec![3] },
                Op::Munmap,
            ],
        }
    }

    /// The file as the kernel would leave it: base, then the stores given.
    fn file_with(spec: &WriterSpec, p: &Payloads, stores: &[usize]) -> Vec<u8> {
        let mut f = p.base.to_vec();
        for &s in stores {
            let r = spec.ops[s].store_range().unwrap();
            f[r.start as usize..r.end as usize].copy_from_slice(p.store(spec, s));
        }
        f
    }

    fn facts(
        kind: CrashKind,
        point: CrashPoint,
        exit: ChildExit,
        completed: usize,
        in_flight: Option<usize>,
    ) -> TrialFacts {
        TrialFacts {
            kind,
            point,
            exit,
            journal: JournalSnapshot { completed, in_flight, failed: None },
            external_truncate: None,
        }
    }

    const KILL: ChildExit = ChildExit::Signaled(libc::SIGKILL);

    #[test]
    fn shared_completed_stores_must_be_visible_unsynced_or_not() {
        let s = spec(MappingKind::Shared);
        let p = Payloads::build(&s);
        let f = facts(CrashKind::Sigkill, CrashPoint::BeforeOp(5), KILL, 5, None);
        let v = verify(&s, &p, &f, &file_with(&s, &p, &[0, 3]));
        assert!(v.violations.is_empty(), "{:?}", v.violations);
        assert!(v.acks.iter().all(|a| a.status == AckStatus::Survived));
        assert_eq!(v.acks.len(), 2);

        // The unsynced store 3 missing after a process crash is a violation.
        let v = verify(&s, &p, &f, &file_with(&s, &p, &[0]));
        assert!(v.violations.iter().any(|x| x.kind == ViolationKind::Content && x.detail.contains("initial content")));
        assert_eq!(v.acks[1].status, AckStatus::Lost);
        assert_eq!(v.acks[0].status, AckStatus::Survived);
    }

    #[test]
    fn nothing_after_the_crash_point_may_appear() {
        let s = spec(MappingKind::Shared);
        let p = Payloads::build(&s);
        let f = facts(CrashKind::Sigkill, CrashPoint::BeforeOp(3), KILL, 3, None);
        let v = verify(&s, &p, &f, &file_with(&s, &p, &[0, 3]));
        let c: Vec<_> = v.violations.iter().filter(|x| x.kind == ViolationKind::Content).collect();
        assert_eq!(c.len(), 1);
        assert!(c[0].detail.contains("version 2"), "{:?}", c[0]);
        assert_eq!(c[0].range, Some(ByteRange::new(8000, 12000)));
    }

    #[test]
    fn in_flight_store_may_be_torn_but_not_garbage() {
        let s = spec(MappingKind::Shared);
        let p = Payloads::build(&s);
        let f = facts(CrashKind::Sigkill, CrashPoint::InsideStore { op: 3, delay_ns: 10 }, KILL, 3, Some(3));
        let mut file = file_with(&s, &p, &[0]);
        let half = &p.store(&s, 3)[..1000];
        file[8000..9000].copy_from_slice(half);
        let v = verify(&s, &p, &f, &file);
        assert!(v.violations.is_empty(), "{:?}", v.violations);
        let fl = v.in_flight.unwrap();
        assert_eq!((fl.bytes, fl.new_bytes), (4000, 1000));
        assert!(fl.torn());
        file[9500] = 0;
        let v = verify(&s, &p, &f, &file);
        assert_eq!(v.violations.len(), 1);
        // Reported at the 8-byte word that holds the bad byte.
        assert_eq!(v.violations[0].range, Some(ByteRange::new(9496, 9504)));
    }

    #[test]
    fn private_mapping_leaves_the_file_unchanged() {
        let s = spec(MappingKind::Private);
        let p = Payloads::build(&s);
        let f = facts(CrashKind::Abort, CrashPoint::BeforeOp(5), ChildExit::Signaled(libc::SIGABRT), 5, None);
        let v = verify(&s, &p, &f, &p.base);
        assert!(v.violations.is_empty());
        assert!(v.acks.iter().all(|a| a.status == AckStatus::Lost));
        let v = verify(&s, &p, &f, &file_with(&s, &p, &[0]));
        assert!(!v.violations.is_empty(), "private stores reaching the file must be flagged");
    }

    #[test]
    fn sigbus_truncation_sets_length_and_names_the_faulting_store() {
        let s = spec(MappingKind::Shared);
        let p = Payloads::build(&s);
        let mut f = facts(
            CrashKind::Sigbus,
            CrashPoint::TruncateBefore { op: 3, len: 4096 },
            ChildExit::Signaled(libc::SIGBUS),
            3,
            Some(3),
        );
        f.external_truncate = Some((3, 4096));
        let file = file_with(&s, &p, &[0])[..4096].to_vec();
        let v = verify(&s, &p, &f, &file);
        assert!(v.violations.is_empty(), "{:?}", v.violations);
        assert_eq!(v.faulting_store, Some(3));
        assert_eq!(v.acks.len(), 1);
        // A file that kept its length is outside the model.
        let v = verify(&s, &p, &f, &file_with(&s, &p, &[0]));
        assert!(v.violations.iter().any(|x| x.kind == ViolationKind::Length));
        // A writer that survived the truncation is outside the model.
        f.exit = ChildExit::Exited(0);
        f.journal = JournalSnapshot { completed: 6, in_flight: None, failed: None };
        let v = verify(&s, &p, &f, &file);
        assert!(v.violations.iter().any(|x| x.kind == ViolationKind::Exit));
    }

    #[test]
    fn acked_bytes_cut_by_truncation_are_reported_as_truncated() {
        let s = spec(MappingKind::Shared);
        let p = Payloads::build(&s);
        let mut f =
            facts(CrashKind::Sigbus, CrashPoint::TruncateBefore { op: 5, len: 8192 }, ChildExit::Exited(0), 6, None);
        f.external_truncate = Some((5, 8192));
        let file = file_with(&s, &p, &[0, 3])[..8192].to_vec();
        let v = verify(&s, &p, &f, &file);
        assert!(v.violations.is_empty(), "{:?}", v.violations);
        assert_eq!(v.acks[1].status, AckStatus::Truncated);
    }

    #[test]
    fn an_ftruncate_killed_in_flight_may_or_may_not_have_happened() {
        let mut s = spec(MappingKind::Shared);
        s.ops.insert(5, Op::Truncate { len: 4096 });
        let p = Payloads::build(&s);
        let f = facts(CrashKind::Sigkill, CrashPoint::InsideStore { op: 3, delay_ns: 0 }, KILL, 5, Some(5));
        let whole = file_with(&s, &p, &[0, 3]);
        assert!(verify(&s, &p, &f, &whole).violations.is_empty(), "not yet truncated");
        assert!(verify(&s, &p, &f, &whole[..4096]).violations.is_empty(), "truncated");
        let v = verify(&s, &p, &f, &whole[..8192]);
        assert!(v.violations.iter().any(|x| x.kind == ViolationKind::Length), "no length in between");
    }

    #[test]
    fn a_full_filesystem_kills_the_predicted_store_and_keeps_every_op_before_it() {
        // From a sparse file: store 0 allocates page 0, store 3 pages 1 and
        // 2. With room for one or two pages, store 3 needs more and faults.
        let s = spec(MappingKind::Shared);
        let p = Payloads::try_build_on(&s, crate::payload::BaseImage::Sparse).unwrap();
        let bus = ChildExit::Signaled(libc::SIGBUS);
        let f = facts(CrashKind::Enospc, CrashPoint::Capacity { pages: 2 }, bus, 3, Some(3));
        // Store 3 got its first allocated page written before the fault.
        let mut file = file_with(&s, &p, &[0]);
        file[8000..8192].copy_from_slice(&p.store(&s, 3)[..192]);
        let v = verify(&s, &p, &f, &file);
        assert!(v.violations.is_empty(), "{:?}", v.violations);
        assert_eq!(v.faulting_store, Some(3));
        assert_eq!(v.acks, vec![AckOutcome { id: 0, op: 2, status: AckStatus::Survived }]);
        assert_eq!(v.in_flight.map(|x| (x.op, x.new_bytes)), Some((3, 192)));
        // The acked store missing (a hole where its bytes must be) is caught.
        let v = verify(&s, &p, &f, &p.base);
        assert!(v.violations.iter().any(|x| x.kind == ViolationKind::Content && x.detail.contains("zeros")));
        assert_eq!(v.acks[0].status, AckStatus::Lost);
        // A prediction one page off either way names another end: store 0
        // (no room at all), or none (room for all three pages).
        assert_eq!(
            verify(&s, &p, &TrialFacts { point: CrashPoint::Capacity { pages: 1 }, ..f }, &file).faulting_store,
            Some(3)
        );
        for pages in [0, 3] {
            let wrong = TrialFacts { point: CrashPoint::Capacity { pages }, ..f };
            let v = verify(&s, &p, &wrong, &file);
            assert!(v.violations.iter().any(|x| x.kind == ViolationKind::Exit), "capacity:{pages}: {:?}", v.violations);
            assert_eq!(v.faulting_store, None);
        }
        // With room for everything the writer must finish, not die.
        let control = facts(CrashKind::Enospc, CrashPoint::Capacity { pages: 3 }, ChildExit::Exited(0), 6, None);
        assert!(verify(&s, &p, &control, &file_with(&s, &p, &[0, 3])).violations.is_empty());
        let v = verify(&s, &p, &TrialFacts { exit: bus, ..control }, &file_with(&s, &p, &[0, 3]));
        assert!(v.violations.iter().any(|x| x.kind == ViolationKind::Exit));
    }

    #[test]
    fn wrong_exit_and_failed_ops_are_violations() {
        let s = spec(MappingKind::Shared);
        let p = Payloads::build(&s);
        let f = facts(CrashKind::Sigkill, CrashPoint::BeforeOp(2), ChildExit::Exited(0), 6, None);
        let v = verify(&s, &p, &f, &file_with(&s, &p, &[0, 3]));
        assert!(v.violations.iter().any(|x| x.kind == ViolationKind::Exit));
        let mut f = facts(CrashKind::Clean, CrashPoint::None, ChildExit::Exited(EXIT_OP_FAILED), 1, None);
        f.journal.failed = Some(OpFailure { op: 1, errno: libc::EIO });
        let v = verify(&s, &p, &f, &file_with(&s, &p, &[0]));
        assert!(v.violations[0].detail.contains("(msync(MS_SYNC)) failed with errno 5"), "{:?}", v.violations);
    }
}
