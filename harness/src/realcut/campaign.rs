//! A soundness campaign's plan, a pure function of its config: the writers
//! (matrix scenarios and probes), the trials (filesystem × scenario × op
//! boundary, sampled from the seed), and the sizes of cut groups and
//! batches. Running it is [`super::loopcut`]'s (realcut workers) or
//! [`super::vm`]'s (guests).
//!
//! Architecture Invariant: pure.

use rand::seq::SliceRandom;
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;
use serde::{Deserialize, Serialize};

use super::error::RealcutError;
use crate::crash::CrashPoint;
use crate::scenario::{derive_seed, ScenarioId};
use crate::spec::{ByteRange, MappingKind, MsyncFlags, Op, SyncPolicy, WorkloadParams, WriterSpec};
use crate::vocab::{Backend, CutMethod, FsKind, Writeback};

/// A writer of a soundness campaign: a matrix scenario, or a probe that
/// exists to measure how conservative the model is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(into = "String", try_from = "String")]
pub enum WorkloadId {
    Scenario(ScenarioId),
    /// `probe/partial-msync`: stores to random places, each acked at once;
    /// every third one is then `msync(MS_SYNC)`ed alone. The other dirty
    /// pages stay unsynced while a ranged msync runs: a kernel that writes
    /// back more than the range (large folios, btrfs) keeps them.
    PartialMsync,
}

impl WorkloadId {
    pub const PARTIAL_MSYNC: &'static str = "probe/partial-msync";
}

impl std::fmt::Display for WorkloadId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            WorkloadId::Scenario(s) => s.fmt(f),
            WorkloadId::PartialMsync => f.write_str(Self::PARTIAL_MSYNC),
        }
    }
}

impl std::str::FromStr for WorkloadId {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        if s == Self::PARTIAL_MSYNC {
            return Ok(WorkloadId::PartialMsync);
        }
        s.parse().map(WorkloadId::Scenario).map_err(|e| format!("{e}, or {}", Self::PARTIAL_MSYNC))
    }
}

impl From<WorkloadId> for String {
    fn from(w: WorkloadId) -> String {
        w.to_string()
    }
}

impl TryFrom<String> for WorkloadId {
    type Error = String;
    fn try_from(s: String) -> Result<Self, Self::Error> {
        s.parse()
    }
}

/// Where the page cache of a trial's file came from when its writer maps
/// it. It decides how much a ranged `msync` writes back: ext4 and xfs give a
/// file written with `write(2)` large folios, and writeback works in whole
/// folios, so a one-page msync there can write (and make durable) the
/// writer's other, unsynced pages too (measured: `probe/partial-msync` kept
/// unsynced pages in most trials this way, and in none with `read`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "kebab-case")]
pub enum PageCacheStart {
    /// Dropped, then read back with `read(2)`: what a file has after a
    /// remount, as a program opening an existing file sees it.
    #[default]
    Read,
    /// Dropped, then the whole file written again with `write(2)` and
    /// `fdatasync`ed: what a file has right after its creator wrote it.
    Written,
}

impl PageCacheStart {
    pub const NAMES: &'static str = "read, written";

    pub fn name(self) -> &'static str {
        match self {
            PageCacheStart::Read => "read",
            PageCacheStart::Written => "written",
        }
    }
}

impl std::fmt::Display for PageCacheStart {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

impl std::str::FromStr for PageCacheStart {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "read" => Ok(PageCacheStart::Read),
            "written" => Ok(PageCacheStart::Written),
            other => Err(format!("unknown page-cache start `{other}`; expected one of {}", Self::NAMES)),
        }
    }
}

/// Everything that decides which trials run.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct SoundnessConfig {
    pub backend: Backend,
    pub seed: u64,
    pub filesystems: Vec<FsKind>,
    /// `None`: each filesystem's default (shutdown for ext4/xfs, raw-copy for btrfs).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cut: Option<CutMethod>,
    /// Trials per filesystem.
    pub trials: u32,
    pub scenarios: Vec<WorkloadId>,
    /// Run only this crash point (a rerun); otherwise op boundaries sampled
    /// from the seed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub point: Option<CrashPoint>,
    pub file_size: u64,
    pub txns: u32,
    /// loopcut: trials sharing one power cut (a cut group: each writer on a
    /// file of its own, one after the other, then one cut). Reports before
    /// 1.1 of the soundness schema ran one writer per cut.
    #[serde(default = "one_writer")]
    pub writers_per_cut: u32,
    /// loopcut: how each file's page cache is made before its writer runs
    /// (`None` for vm, whose guest boots cold). Reports before 1.2 of the
    /// soundness schema did not control it: the first cut group of each
    /// writer ran on freshly written files, the others on read ones.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub page_cache: Option<PageCacheStart>,
    /// loopcut: what pushes dirty pages to the disk while the writers run
    /// (`--writeback`). Not written when `none` (reports before 1.5 of the
    /// soundness schema had no pressure).
    #[serde(default, skip_serializing_if = "Writeback::is_none")]
    pub writeback: Writeback,
}

impl SoundnessConfig {
    /// The shared-mapping scenarios (a MAP_PRIVATE writer never changes its
    /// file, so its real cuts say nothing about the model), and the probe.
    pub fn default_scenarios() -> Vec<WorkloadId> {
        SyncPolicy::STANDARD
            .iter()
            .map(|&policy| WorkloadId::Scenario(ScenarioId { mapping: MappingKind::Shared, policy }))
            .chain([WorkloadId::PartialMsync])
            .collect()
    }

    /// The writer of a workload. For a scenario: the same spec `crashlab
    /// matrix --seed S --size N --txns T` runs.
    pub fn spec(&self, w: WorkloadId) -> Result<WriterSpec, RealcutError> {
        let seed = derive_seed(self.seed, &["spec", &w.to_string()]);
        let params = WorkloadParams { txns: self.txns, ..WorkloadParams::with_file_size(self.file_size) };
        let bad = |e: String| RealcutError::Spec(format!("--size {} / --txns {}: {e}", self.file_size, self.txns));
        let page = crate::page_size::page_size();
        match w {
            WorkloadId::Scenario(s) => WriterSpec::generate(&params, s.mapping, s.policy, page, seed).map_err(bad),
            WorkloadId::PartialMsync => {
                let plain =
                    WriterSpec::generate(&params, MappingKind::Shared, SyncPolicy::None, page, seed).map_err(bad)?;
                let mut ops = Vec::with_capacity(plain.ops.len() + plain.ops.len() / 6);
                let mut last_store = None;
                let mut acks = 0;
                // Old op index -> new one (inserted msyncs shift the rest).
                let mut moved = Vec::with_capacity(plain.ops.len());
                for mut op in plain.ops {
                    let is_ack = matches!(op, Op::Ack { .. });
                    if let Some(r) = op.store_range() {
                        last_store = Some(r);
                    }
                    if let Op::Ack { covers, .. } = &mut op {
                        covers.iter_mut().for_each(|c| *c = moved[*c]);
                    }
                    moved.push(ops.len());
                    ops.push(op);
                    if is_ack {
                        acks += 1;
                        if let (0, Some(r)) = (acks % 3, last_store) {
                            let pages = ByteRange::new(r.start / page * page, r.end.div_ceil(page) * page);
                            ops.push(Op::Msync { range: pages, flags: MsyncFlags::MsSync });
                        }
                    }
                }
                let spec = WriterSpec { ops, ..plain };
                spec.validate().map_err(bad)?;
                Ok(spec)
            }
        }
    }

    pub fn cut_for(&self, fs: FsKind) -> CutMethod {
        self.cut.unwrap_or(fs.default_cut())
    }
}

/// One planned trial.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct PlannedTrial {
    pub fs: FsKind,
    pub scenario: WorkloadId,
    pub point: CrashPoint,
}

/// The writers of a campaign (the index is the spec key) and its trials.
pub type CampaignPlan = (Vec<(WorkloadId, WriterSpec)>, Vec<PlannedTrial>);

/// The campaign's specs and trials, a pure function of the config: per
/// filesystem, `trials` (scenario, boundary) pairs drawn in a seeded order
/// without repeats until all are used, grouped by scenario.
pub fn plan(cfg: &SoundnessConfig) -> Result<CampaignPlan, RealcutError> {
    if cfg.trials == 0 {
        return Err(RealcutError::Spec("--trials must be at least 1".into()));
    }
    if cfg.filesystems.is_empty() || cfg.scenarios.is_empty() {
        return Err(RealcutError::Spec("a campaign needs at least one filesystem and one scenario".into()));
    }
    let mut specs = Vec::new();
    let mut pairs = Vec::new();
    for &s in &cfg.scenarios {
        let spec = cfg.spec(s)?;
        let n = spec.ops.len();
        match cfg.point {
            Some(CrashPoint::BeforeOp(k)) if k <= n => pairs.push((s, CrashPoint::BeforeOp(k))),
            Some(p) => {
                return Err(RealcutError::Spec(format!(
                    "--point {p}: real cuts come at op boundaries before:0..=before:{n} of {s}"
                )))
            }
            None => pairs.extend((0..=n).map(|k| (s, CrashPoint::BeforeOp(k)))),
        }
        specs.push((s, spec));
    }
    let mut trials = Vec::new();
    for &fs in &cfg.filesystems {
        let mut rng = ChaCha8Rng::seed_from_u64(derive_seed(cfg.seed, &["soundness", fs.name()]));
        let mut chosen = Vec::new();
        while chosen.len() < cfg.trials as usize {
            let mut round = pairs.clone();
            round.shuffle(&mut rng);
            let need = cfg.trials as usize - chosen.len();
            chosen.extend(round.into_iter().take(need));
        }
        let order = |s: &WorkloadId| cfg.scenarios.iter().position(|x| x == s);
        chosen.sort_by_key(|(s, p)| (order(s), *p));
        trials.extend(chosen.into_iter().map(|(scenario, point)| PlannedTrial { fs, scenario, point }));
    }
    Ok((specs, trials))
}

/// Writers per power cut unless told otherwise (see
/// [`SoundnessConfig::writers_per_cut`]).
pub const DEFAULT_WRITERS_PER_CUT: u32 = 4;

/// The serde default of `writers_per_cut` (requests and reports from before
/// cut groups ran one writer per cut).
pub(crate) fn one_writer() -> u32 {
    1
}

/// Trials per request: small, so Ctrl-C stops soon and two workers balance.
pub const BATCH: usize = 4;

/// Trials per request for cut groups of `writers_per_cut`: [`BATCH`] rounded
/// up to whole groups.
pub fn batch_len(writers_per_cut: u32) -> usize {
    whole_groups(BATCH, writers_per_cut)
}

/// `n` trials rounded up to whole cut groups of `writers_per_cut`.
pub fn whole_groups(n: usize, writers_per_cut: u32) -> usize {
    let g = writers_per_cut.max(1) as usize;
    n.div_ceil(g) * g
}

#[cfg(test)]
mod tests {
    use std::collections::HashSet;

    use super::*;

    fn cfg(trials: u32) -> SoundnessConfig {
        SoundnessConfig {
            backend: Backend::Loopcut,
            seed: 11,
            filesystems: vec![FsKind::Ext4, FsKind::Xfs],
            cut: None,
            trials,
            scenarios: SoundnessConfig::default_scenarios(),
            point: None,
            file_size: 64 * 1024,
            txns: 6,
            writers_per_cut: 1,
            page_cache: Some(PageCacheStart::Read),
            writeback: Writeback::None,
        }
    }

    #[test]
    fn the_page_cache_start_parses_back_and_names_the_choices() {
        for p in [PageCacheStart::Read, PageCacheStart::Written] {
            assert_eq!(p.to_string().parse::<PageCacheStart>().unwrap(), p);
        }
        assert!("cold".parse::<PageCacheStart>().unwrap_err().contains("read, written"));
    }

    #[test]
    fn plans_are_a_function_of_the_config_and_cover_boundaries_before_repeating() {
        let (specs, trials) = plan(&cfg(40)).unwrap();
        assert_eq!(specs.len(), 7);
        assert_eq!(trials.len(), 80);
        assert_eq!(plan(&cfg(40)).unwrap().1, trials, "same config, same trials");
        let ext4: Vec<_> = trials.iter().filter(|t| t.fs == FsKind::Ext4).collect();
        let distinct: HashSet<_> = ext4.iter().map(|t| (t.scenario, t.point)).collect();
        assert_eq!(distinct.len(), 40, "no pair repeats before all are used");
        let other = plan(&SoundnessConfig { seed: 12, ..cfg(40) }).unwrap().1;
        assert_ne!(other, trials, "another seed, other trials");
        // Every op boundary of every writer, then repeats.
        let all: usize = specs.iter().map(|(_, s)| s.ops.len() + 1).sum();
        let (_, many) = plan(&cfg(all as u32 + 5)).unwrap();
        let distinct: HashSet<_> = many.iter().filter(|t| t.fs == FsKind::Xfs).map(|t| (t.scenario, t.point)).collect();
        assert_eq!(distinct.len(), all);
    }

    #[test]
    fn a_rerun_plans_exactly_its_point_and_refuses_other_kinds() {
        let c = SoundnessConfig {
            point: Some(CrashPoint::BeforeOp(3)),
            scenarios: vec!["shared/no-sync".parse().unwrap()],
            trials: 1,
            ..cfg(1)
        };
        let (_, t) = plan(&c).unwrap();
        assert_eq!(t.len(), 2);
        assert!(t.iter().all(|t| t.point == CrashPoint::BeforeOp(3)));
        let bad = SoundnessConfig { point: Some(CrashPoint::AtTime { permille: 5 }), ..c };
        assert!(plan(&bad).unwrap_err().to_string().contains("op boundaries"));
    }

    #[test]
    fn the_partial_msync_probe_syncs_single_stores_and_keeps_acks_pointing_at_stores() {
        let c = cfg(1);
        let spec = c.spec(WorkloadId::PartialMsync).unwrap();
        spec.validate().unwrap();
        let msyncs: Vec<_> = spec.ops.iter().filter(|o| matches!(o, Op::Msync { .. })).collect();
        assert_eq!(msyncs.len(), 2, "every third of 6 acks");
        for (i, op) in spec.ops.iter().enumerate() {
            if let Op::Msync { range, flags } = op {
                assert_eq!(*flags, MsyncFlags::MsSync);
                let prev_store = spec.ops[..i].iter().rev().find_map(Op::store_range).unwrap();
                assert!(range.start <= prev_store.start && prev_store.end <= range.end);
                assert!(range.len() < spec.file_size, "a ranged msync, not the whole file");
            }
        }
        assert_eq!("probe/partial-msync".parse::<WorkloadId>().unwrap(), WorkloadId::PartialMsync);
        assert!("probe/x".parse::<WorkloadId>().is_err());
    }
}
