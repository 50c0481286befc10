//! The benchmark kernel of the power-loss explorer, measured against a
//! floor: the obvious way to do the same work.
//!
//! Both sides build every state's bytes in a buffer and decide, for every
//! unsynced ack, whether it survived. The floor copies every dirty page's
//! image into the buffer for each state and compares each acked page with
//! its expected image; the explorer rewrites only the unit the Gray code
//! changed and judges acks from the choice vector. The ratio says what the
//! copy-on-write walk and the table-driven judge buy; both sides must reach
//! the same verdicts, or the figures mean nothing.

use std::fmt;
use std::hint::black_box;
use std::time::{Duration, Instant};

use super::explore::{explore, ExplorationPlan};
use super::judge::{AckJudge, AckTracker};
use super::space::{ChoiceVector, PowerLossModel};
use super::PowerLossConfig;
use crate::crash::CrashPoint;
use crate::journal::JournalSnapshot;
use crate::payload::Payloads;
use crate::process_model::{ChildExit, TrialFacts};
use crate::spec::{MappingKind, Op, SyncPolicy, WriterSpec};
use crate::vocab::CrashKind;

const PAGE: u64 = 4096;
const PAGES: u64 = 64;
const SEED: u64 = 0x5EED;

/// The explorer and the floor on one workload.
#[derive(Debug, Clone, PartialEq)]
pub struct RateComparison {
    pub pages: u64,
    pub dirty_pages: u64,
    pub exhaustive: bool,
    /// States one run visits (all of them, or the sample).
    pub states_per_run: u64,
    pub model_states_per_sec: f64,
    /// Wall time of one whole run of the explorer, model building included.
    pub model_seconds_per_run: f64,
    pub floor_states_per_sec: f64,
    /// Both sides counted the same (ack, state) failures over the same states.
    pub agree: bool,
}

impl RateComparison {
    /// How many times the floor's rate the explorer reaches.
    pub fn ratio(&self) -> f64 {
        self.model_states_per_sec / self.floor_states_per_sec
    }
}

#[derive(Debug, Clone, PartialEq)]
pub struct PowerLossBench {
    /// 64 pages, 16 of them dirty: all 65,536 states.
    pub exhaustive: RateComparison,
    /// 64 pages, all dirty: the sampled states.
    pub sampled: RateComparison,
}

fn rate(n: f64) -> String {
    if n >= 1e6 {
        format!("{:.2}M", n / 1e6)
    } else if n >= 1e3 {
        format!("{:.1}k", n / 1e3)
    } else {
        format!("{n:.0}")
    }
}

impl fmt::Display for RateComparison {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{} {} pages, {} dirty, {} states/run: explorer {} states/s ({:.1} ms/run), floor {} states/s, \
             ratio {:.1}x{}",
            if self.exhaustive { "exhaustive" } else { "sampled   " },
            self.pages,
            self.dirty_pages,
            self.states_per_run,
            rate(self.model_states_per_sec),
            self.model_seconds_per_run * 1e3,
            rate(self.floor_states_per_sec),
            self.ratio(),
            if self.agree { "" } else { "  VERDICTS DISAGREE" }
        )
    }
}

impl fmt::Display for PowerLossBench {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(f, "power-loss explorer vs floor (copy every dirty page, compare acked pages), {PAGE}-byte pages")?;
        writeln!(f, "  {}", self.exhaustive)?;
        write!(f, "  {}", self.sampled)
    }
}

/// Every page written and fsynced (those acks are guaranteed and cost the
/// judge nothing per state), then `dirty` pages, spread over the file,
/// rewritten whole and acked without a sync.
fn workload(dirty: u64) -> (WriterSpec, Vec<u64>) {
    let mut ops = Vec::new();
    for p in 0..PAGES {
        ops.push(Op::Store { offset: p * PAGE, len: PAGE, version: p as u32 + 1 });
    }
    ops.push(Op::Fsync);
    for p in 0..PAGES as usize {
        ops.push(Op::Ack { id: p as u32, covers: vec![p] });
    }
    let dirty_pages: Vec<u64> = (0..dirty).map(|k| k * (PAGES / dirty)).collect();
    for (k, &p) in dirty_pages.iter().enumerate() {
        let store = ops.len();
        ops.push(Op::Store { offset: p * PAGE, len: PAGE, version: (PAGES + 1) as u32 + k as u32 });
        ops.push(Op::Ack { id: (PAGES as usize + k) as u32, covers: vec![store] });
    }
    ops.push(Op::Munmap);
    let spec = WriterSpec {
        file_size: PAGES * PAGE,
        page_size: PAGE,
        mapping: MappingKind::Shared,
        policy: SyncPolicy::None,
        ops,
    };
    spec.validate().expect("the bench workload is a valid spec");
    (spec, dirty_pages)
}

fn killed_at_end(spec: &WriterSpec) -> TrialFacts {
    let n = spec.ops.len();
    TrialFacts {
        kind: CrashKind::Sigkill,
        point: CrashPoint::BeforeOp(n),
        exit: ChildExit::Signaled(libc::SIGKILL),
        journal: JournalSnapshot { completed: n, in_flight: None, failed: None },
        external_truncate: None,
    }
}

/// One whole explorer run: build, plan, walk with materialization and
/// judging. Returns (states, failing (ack, state) pairs).
fn explorer_run(spec: &WriterSpec, payloads: &Payloads, facts: &TrialFacts, cfg: &PowerLossConfig) -> (u64, u64) {
    let model = PowerLossModel::build(spec, payloads, facts, cfg).expect("valid bench trial");
    let judge = AckJudge::build(&model);
    let plan = ExplorationPlan::new(&model, cfg, SEED, &[]);
    let mut tracker = AckTracker::new(&judge);
    let states = explore(&model, &plan, true, Some(&mut tracker), |s| {
        black_box(s.bytes);
    });
    let failures = (0..judge.acks().len()).map(|a| tracker.counts(a)).map(|c| c.lost + c.torn).sum();
    (states, failures)
}

/// The floor: per state, copy every dirty page's chosen image, then compare
/// every dirty page with its expected (newest) image. `choose(n, choice)`
/// fills the choice of state `n`.
fn floor_run(
    images: &[[&[u8]; 2]],
    dirty_pages: &[u64],
    file: &mut [u8],
    states: u64,
    mut choose: impl FnMut(u64, &mut [u32]),
) -> (u64, u64) {
    let mut failures = 0u64;
    let mut choice = vec![0u32; dirty_pages.len()];
    for n in 0..states {
        choose(n, &mut choice);
        for (k, &p) in dirty_pages.iter().enumerate() {
            let at = (p * PAGE) as usize;
            file[at..at + PAGE as usize].copy_from_slice(images[k][choice[k] as usize]);
        }
        for (k, &p) in dirty_pages.iter().enumerate() {
            let at = (p * PAGE) as usize;
            failures += (file[at..at + PAGE as usize] != *images[k][1]) as u64;
        }
        black_box(&file);
    }
    (states, failures)
}

/// Repeat `run` until `budget` has passed (at least once): (runs, elapsed, last result).
fn measure(budget: Duration, mut run: impl FnMut() -> (u64, u64)) -> (u64, Duration, (u64, u64)) {
    let start = Instant::now();
    let mut runs = 0;
    loop {
        let out = run();
        runs += 1;
        let elapsed = start.elapsed();
        if elapsed >= budget {
            return (runs, elapsed, out);
        }
    }
}

fn compare(dirty: u64, budget: Duration) -> RateComparison {
    let (spec, dirty_pages) = workload(dirty);
    let payloads = Payloads::build(&spec);
    let facts = killed_at_end(&spec);
    let cfg = PowerLossConfig::default();
    // Page images for the floor, straight from the payloads: the page's
    // synced store (floor) and its unsynced rewrite (newest).
    let first_rewrite = PAGES as usize * 2 + 1;
    let images: Vec<[&[u8]; 2]> = dirty_pages
        .iter()
        .enumerate()
        .map(|(k, &p)| [payloads.store(&spec, p as usize), payloads.store(&spec, first_rewrite + 2 * k)])
        .collect();
    let model = PowerLossModel::build(&spec, &payloads, &facts, &cfg).expect("valid bench trial");
    let plan = ExplorationPlan::new(&model, &cfg, SEED, &[]);
    let mut sampled: Vec<ChoiceVector> = Vec::new();
    plan.for_each_sample(&model, |c| sampled.push(c.clone()));
    assert!(model.dims() as u64 == dirty, "every rewritten page is a dimension");

    let (model_runs, model_time, (states, model_failures)) =
        measure(budget, || explorer_run(&spec, &payloads, &facts, &cfg));
    let mut file = model.floor_image();
    let (floor_runs, floor_time, (floor_states, floor_failures)) = measure(budget, || {
        if plan.is_exhaustive() {
            floor_run(&images, &dirty_pages, &mut file, 1 << dirty, |n, choice| {
                for (k, c) in choice.iter_mut().enumerate() {
                    *c = ((n >> k) & 1) as u32;
                }
            })
        } else {
            floor_run(&images, &dirty_pages, &mut file, sampled.len() as u64, |n, choice| {
                choice.copy_from_slice(&sampled[n as usize].versions)
            })
        }
    });
    RateComparison {
        pages: PAGES,
        dirty_pages: dirty,
        exhaustive: plan.is_exhaustive(),
        states_per_run: states,
        model_states_per_sec: (states * model_runs) as f64 / model_time.as_secs_f64(),
        model_seconds_per_run: model_time.as_secs_f64() / model_runs as f64,
        floor_states_per_sec: (floor_states * floor_runs) as f64 / floor_time.as_secs_f64(),
        agree: states == floor_states && model_failures == floor_failures,
    }
}

/// Measure both workloads, spending about `seconds_hint` in total (each of
/// the four loops runs at least once). Run it in a release build.
pub fn run_bench(seconds_hint: f64) -> PowerLossBench {
    let budget = Duration::from_secs_f64((seconds_hint / 4.0).max(0.0));
    PowerLossBench { exhaustive: compare(16, budget), sampled: compare(64, budget) }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The kernel's own sanity, not its speed: the workloads have the
    /// shapes the figures claim, and both sides agree on the verdicts.
    #[test]
    fn bench_workloads_have_the_claimed_shape_and_both_sides_agree() {
        let b = run_bench(0.0);
        assert!(b.exhaustive.exhaustive);
        assert_eq!(b.exhaustive.states_per_run, 1 << 16);
        assert!(b.exhaustive.agree, "{b}");
        assert!(!b.sampled.exhaustive);
        assert_eq!(b.sampled.dirty_pages, 64);
        assert!(b.sampled.states_per_run > 256, "adversarial + random: {}", b.sampled.states_per_run);
        assert!(b.sampled.agree, "{b}");
        let text = b.to_string();
        assert!(text.contains("ratio") && text.contains("floor"), "{text}");
    }
}
