//! A deliberately naive restatement of the power-loss semantics, for tests
//! only: the whole file as bytes plus a per-byte owner, replayed op by op,
//! whole-page snapshots as versions. It shares no code with the model (not
//! even `file_events`), so agreement between the two means something.

use std::collections::BTreeMap;

use super::crash_state::CrashState;
use super::unit::VersionLabel;
use crate::explore::state_text::Extreme;
use crate::payload::Payloads;
use crate::process_model::{AckStatus, TrialFacts};
use crate::spec::{pattern_byte, MappingKind, MsyncFlags, Op, WriterSpec};

/// Owner of a byte never written (the initial content).
pub(super) const BASE: u32 = u32::MAX - 1;
/// Owner of a byte a truncation zeroed.
pub(super) const ZERO: u32 = u32::MAX;

#[derive(Clone, Debug)]
pub(super) struct PageImage {
    pub label: VersionLabel,
    pub bytes: Vec<u8>,
    pub owners: Vec<u32>,
}

pub(super) struct NaiveModel {
    page_size: usize,
    /// Per page, every version it had, oldest first.
    history: Vec<Vec<PageImage>>,
    /// Per page, the index in `history` of its durable floor.
    floor: Vec<usize>,
    /// Allowed sizes, in order of first appearance.
    pub sizes: Vec<u64>,
    pub durable_size: u64,
    pub newest_size: u64,
    min_len: BTreeMap<usize, u64>,
    /// Completed acks: (id, covered stores).
    acks: Vec<(u32, Vec<usize>)>,
}

enum Step {
    Op(usize, bool),
    External(u64),
}

struct Replay {
    page_size: usize,
    bytes: Vec<u8>,
    owners: Vec<u32>,
    len: usize,
    pages: Vec<Vec<PageImage>>,
    floor: Vec<usize>,
    sizes: Vec<u64>,
    durable_size: u64,
    min_len: BTreeMap<usize, u64>,
    truncations: u32,
}

impl Replay {
    fn snapshot(&self, p: usize, label: VersionLabel) -> PageImage {
        let r = p * self.page_size..(p + 1) * self.page_size;
        PageImage { label, bytes: self.bytes[r.clone()].to_vec(), owners: self.owners[r].to_vec() }
    }

    fn sync(&mut self, p: usize) {
        self.floor[p] = self.pages[p].len() - 1;
    }

    fn truncate(&mut self, l: usize) {
        let label = VersionLabel::Truncation(self.truncations);
        self.truncations += 1;
        if l < self.len {
            for pos in l..self.len {
                self.bytes[pos] = 0;
                self.owners[pos] = ZERO;
            }
            for p in l / self.page_size..self.len.div_ceil(self.page_size) {
                let snap = self.snapshot(p, label);
                if self.pages[p].last().expect("a page has a version").owners != snap.owners {
                    self.pages[p].push(snap);
                }
            }
        }
        self.len = l;
        self.sizes.push(l as u64);
        for v in self.min_len.values_mut() {
            *v = (*v).min(l as u64);
        }
    }
}

impl NaiveModel {
    pub fn build(spec: &WriterSpec, payloads: &Payloads, facts: &TrialFacts) -> NaiveModel {
        let ps = spec.page_size as usize;
        let n = spec.file_size as usize;
        let mut r = Replay {
            page_size: ps,
            bytes: payloads.base.to_vec(),
            owners: vec![BASE; n],
            len: n,
            pages: Vec::new(),
            floor: vec![0; n / ps],
            sizes: vec![n as u64],
            durable_size: n as u64,
            min_len: BTreeMap::new(),
            truncations: 0,
        };
        r.pages = (0..n / ps).map(|p| vec![r.snapshot(p, VersionLabel::Version(0))]).collect();

        let j = facts.journal;
        let mut steps = Vec::new();
        for i in 0..j.completed {
            if let Some((at, l)) = facts.external_truncate {
                if at == i {
                    steps.push(Step::External(l));
                }
            }
            steps.push(Step::Op(i, false));
        }
        if let Some((at, l)) = facts.external_truncate {
            if at >= j.completed {
                steps.push(Step::External(l));
            }
        }
        if let Some(i) = j.in_flight {
            steps.push(Step::Op(i, true));
        }

        let shared = spec.mapping == MappingKind::Shared;
        for step in steps {
            let (i, in_flight) = match step {
                Step::External(l) => {
                    r.truncate(l as usize);
                    continue;
                }
                Step::Op(i, f) => (i, f),
            };
            match spec.ops[i] {
                Op::Store { offset, len, version } => {
                    if !in_flight {
                        r.min_len.insert(i, r.len as u64);
                    }
                    let (a, b) = (offset as usize, ((offset + len) as usize).min(r.len));
                    if shared && a < b {
                        for pos in a..b {
                            r.bytes[pos] = pattern_byte(pos as u64, version);
                            r.owners[pos] = i as u32;
                        }
                        for p in a / ps..=(b - 1) / ps {
                            let snap = r.snapshot(p, VersionLabel::Version(version));
                            r.pages[p].push(snap);
                        }
                    }
                }
                Op::Msync { range, flags: MsyncFlags::MsSync } if shared && !in_flight => {
                    for p in range.start as usize / ps..(range.end as usize).div_ceil(ps) {
                        r.sync(p);
                    }
                    r.sizes = vec![r.len as u64];
                    r.durable_size = r.len as u64;
                }
                Op::Fsync | Op::Fdatasync if !in_flight => {
                    for p in 0..r.pages.len() {
                        r.sync(p);
                    }
                    r.sizes = vec![r.len as u64];
                    r.durable_size = r.len as u64;
                }
                Op::Truncate { len } => r.truncate(len as usize),
                _ => {}
            }
        }
        let mut sizes = Vec::new();
        for s in r.sizes {
            if !sizes.contains(&s) {
                sizes.push(s);
            }
        }
        let acks = spec
            .ops
            .iter()
            .enumerate()
            .take(j.completed)
            .filter_map(|(_, op)| match op {
                Op::Ack { id, covers } => Some((*id, covers.clone())),
                _ => None,
            })
            .collect();
        NaiveModel {
            page_size: ps,
            history: r.pages,
            floor: r.floor,
            sizes,
            durable_size: r.durable_size,
            newest_size: r.len as u64,
            min_len: r.min_len,
            acks,
        }
    }

    /// Page `p`'s allowed contents of the `unit`-byte unit at `offset`
    /// within the page, each named by the page version that last changed the
    /// unit: the runs of the page's history (consecutive versions equal on
    /// the unit collapse) that reach its floor or later.
    pub fn unit_versions(&self, p: usize, offset: usize, unit: usize) -> Vec<(VersionLabel, Vec<u8>)> {
        let mut runs: Vec<(VersionLabel, Vec<u8>, Vec<u32>, usize)> = Vec::new();
        for (i, img) in self.history[p].iter().enumerate() {
            let owners = img.owners[offset..offset + unit].to_vec();
            match runs.last_mut() {
                Some(run) if run.2 == owners => run.3 = i,
                _ => runs.push((img.label, img.bytes[offset..offset + unit].to_vec(), owners, i)),
            }
        }
        runs.into_iter().filter(|run| run.3 >= self.floor[p]).map(|(l, b, _, _)| (l, b)).collect()
    }

    /// The bytes and owners of a state, read from its text form: each unit
    /// takes the page version its label names (its floor or newest if not
    /// listed), sliced to the unit; a label must name an allowed content.
    pub fn state(&self, s: &CrashState, unit: usize) -> (Vec<u8>, Vec<u32>) {
        let ps = self.page_size;
        let mut bytes = Vec::with_capacity(self.history.len() * ps);
        let mut owners = Vec::with_capacity(self.history.len() * ps);
        for (p, versions) in self.history.iter().enumerate() {
            for off in (0..ps).step_by(unit) {
                let listed = s
                    .units
                    .iter()
                    .find(|(id, _)| id.page == p as u64 && id.sector.map_or(0, |x| x as usize * unit) == off);
                let img = match (listed, s.default) {
                    (Some((id, label)), _) => {
                        let img = versions
                            .iter()
                            .find(|v| v.label == *label)
                            .unwrap_or_else(|| panic!("{id} names {label}, which page {p} never had"));
                        let allowed = self.unit_versions(p, off, unit);
                        assert!(allowed.iter().any(|(l, _)| l == label), "{id} names {label}, not allowed");
                        img
                    }
                    (None, Extreme::Floor) => &versions[self.floor[p]],
                    (None, Extreme::Newest) => versions.last().expect("a page has a version"),
                };
                bytes.extend_from_slice(&img.bytes[off..off + unit]);
                owners.extend_from_slice(&img.owners[off..off + unit]);
            }
        }
        let len = s.len.unwrap_or(match s.default {
            Extreme::Floor => self.durable_size,
            Extreme::Newest => self.newest_size,
        }) as usize;
        bytes.truncate(len);
        owners.truncate(len);
        (bytes, owners)
    }

    /// Per completed ack, the process model's rule applied byte by byte to
    /// the owners of a state.
    pub fn judge(&self, spec: &WriterSpec, owners: &[u32]) -> Vec<AckStatus> {
        let len = owners.len() as u64;
        self.acks
            .iter()
            .map(|(_, covers)| {
                let (mut good, mut bad, mut cut) = (0u64, 0u64, 0u64);
                for &s in covers {
                    let Op::Store { offset, len: n, .. } = spec.ops[s] else { panic!("acks cover stores") };
                    for pos in offset..offset + n {
                        if pos >= len {
                            if pos >= self.min_len[&s] {
                                cut += 1;
                            } else {
                                bad += 1;
                            }
                        } else {
                            let o = owners[pos as usize];
                            if o < BASE && o as usize >= s {
                                good += 1;
                            } else {
                                bad += 1;
                            }
                        }
                    }
                }
                match (good, bad, cut) {
                    (_, 0, 0) => AckStatus::Survived,
                    (_, 0, _) => AckStatus::Truncated,
                    (0, _, _) => AckStatus::Lost,
                    _ => AckStatus::Torn,
                }
            })
            .collect()
    }

    /// The all-floor and all-newest files.
    pub fn extremes(&self) -> [Vec<u8>; 2] {
        let pick = |floor: bool, len: u64| {
            let mut f: Vec<u8> = Vec::new();
            for (p, v) in self.history.iter().enumerate() {
                f.extend_from_slice(&if floor { &v[self.floor[p]] } else { v.last().unwrap() }.bytes);
            }
            f.truncate(len as usize);
            f
        };
        [pick(true, self.durable_size), pick(false, self.newest_size)]
    }
}
