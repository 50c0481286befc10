//! Walking the states of a power-loss model.
//!
//! Small spaces are enumerated completely in reflected mixed-radix Gray-code
//! order, so consecutive states differ in one unit by one version: the
//! explorer keeps a single working copy of the file and rewrites one unit per
//! state, and the ack tracker updates only the acks that unit touches. Large
//! spaces are sampled: the adversarial states a real writeback order is most
//! likely to produce (nothing written back, everything written back, one unit
//! alone either way, prefixes and suffixes in write order), every state an
//! explanation points at, and random states from the seed. No state ever
//! gets a file of its own.

use std::collections::HashSet;
use std::hash::{DefaultHasher, Hash, Hasher};

use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

use super::judge::AckTracker;
use super::space::{ChoiceVector, PowerLossModel};
use super::PowerLossConfig;

/// Reflected mixed-radix Gray code (Knuth, TAOCP 7.2.1.1, Algorithm H):
/// visits every tuple `0 <= digit[j] < radix[j]` once, each step moving one
/// digit up or down by one, in O(1) per step.
#[derive(Debug, Clone)]
pub struct MixedRadixGray {
    radices: Vec<u32>,
    digits: Vec<u32>,
    focus: Vec<usize>,
    up: Vec<bool>,
    done: bool,
}

impl MixedRadixGray {
    /// Starts at all zeros. Every radix must be at least 2.
    pub fn new(radices: Vec<u32>) -> MixedRadixGray {
        assert!(radices.iter().all(|&r| r >= 2), "every coordinate needs two values or more: {radices:?}");
        let n = radices.len();
        MixedRadixGray { digits: vec![0; n], focus: (0..=n).collect(), up: vec![true; n], radices, done: false }
    }

    pub fn digits(&self) -> &[u32] {
        &self.digits
    }

    /// Move to the next tuple: the coordinate that changed and its new value,
    /// or `None` once every tuple has been visited.
    #[inline]
    pub fn advance(&mut self) -> Option<(usize, u32)> {
        if self.done {
            return None;
        }
        let n = self.radices.len();
        let j = self.focus[0];
        self.focus[0] = 0;
        if j == n {
            self.done = true;
            return None;
        }
        if self.up[j] {
            self.digits[j] += 1;
        } else {
            self.digits[j] -= 1;
        }
        let d = self.digits[j];
        if d == 0 || d == self.radices[j] - 1 {
            self.up[j] = !self.up[j];
            self.focus[j] = self.focus[j + 1];
            self.focus[j + 1] = j + 1;
        }
        Some((j, d))
    }
}

/// One sampled state, described rather than stored, so a plan costs
/// O(samples) memory whatever the number of units.
#[derive(Debug, Clone)]
enum Sample {
    AllFloor,
    AllNewest,
    /// Every unit at its newest completed version: the page cache when the
    /// writer died, minus the op in flight.
    LatestCompleted,
    OnlyNewest(usize),
    OnlyFloor(usize),
    /// The first `k` units in write order written back, the rest not.
    WritePrefix(usize),
    /// The last `k` units in write order written back, the rest not.
    WriteSuffix(usize),
    Given(ChoiceVector),
    Random(u64),
}

/// Each adversarial family keeps at most this many members, evenly spread,
/// so sampling stays O(samples) states on files with thousands of units.
const FAMILY_CAP: usize = 256;

fn spread(range: std::ops::Range<usize>) -> Vec<usize> {
    let n = range.len();
    if n <= FAMILY_CAP {
        return range.collect();
    }
    let mut picks: Vec<usize> = (0..FAMILY_CAP).map(|i| range.start + i * n / FAMILY_CAP).collect();
    picks.push(range.end - 1);
    picks.dedup();
    picks
}

/// Which states a walk visits: all of them, or a deterministic sample.
#[derive(Debug, Clone)]
pub struct ExplorationPlan {
    exhaustive: bool,
    samples: Vec<(usize, Sample)>,
    /// Per size: dimensions ordered by when their newest version was written.
    write_orders: Vec<Vec<usize>>,
}

impl ExplorationPlan {
    /// Exhaustive when the model has at most `cfg.exhaustive_bound` states;
    /// otherwise the adversarial states of every size, `must_include`, and
    /// `cfg.samples` random states drawn from `seed`.
    pub fn new(
        model: &PowerLossModel<'_>,
        cfg: &PowerLossConfig,
        seed: u64,
        must_include: &[ChoiceVector],
    ) -> ExplorationPlan {
        let exhaustive = model.state_count().is_some_and(|n| n <= cfg.exhaustive_bound);
        if exhaustive {
            return ExplorationPlan { exhaustive, samples: Vec::new(), write_orders: Vec::new() };
        }
        let sizes = model.sizes().len();
        let mut samples = Vec::new();
        let mut write_orders = Vec::with_capacity(sizes);
        for z in 0..sizes {
            let d = model.dims_within(z);
            // Family by family, in an order where consecutive states differ
            // in one or two units, so the copy-on-write walk stays cheap:
            // all old, one new at a time, growing prefixes; then all new, one
            // old at a time, shrinking suffixes.
            samples.push((z, Sample::AllFloor));
            samples.extend(spread(0..d).into_iter().map(|i| (z, Sample::OnlyNewest(i))));
            samples.extend(spread(1..d.max(1)).into_iter().map(|k| (z, Sample::WritePrefix(k))));
            samples.push((z, Sample::AllNewest));
            if (0..d).any(|i| model.dim_unit(i).allowed().last().is_some_and(|v| v.in_flight)) {
                samples.push((z, Sample::LatestCompleted));
            }
            samples.extend(spread(0..d).into_iter().map(|i| (z, Sample::OnlyFloor(i))));
            samples.extend(spread(1..d.max(1)).into_iter().rev().map(|k| (z, Sample::WriteSuffix(k))));
            let mut order: Vec<usize> = (0..d).collect();
            order.sort_by_key(|&i| (model.dim_unit(i).allowed().last().map_or(0, |v| v.event), i));
            write_orders.push(order);
        }
        samples.extend(must_include.iter().map(|c| (c.size, Sample::Given(c.clone()))));
        let mut rng = ChaCha8Rng::seed_from_u64(seed);
        for _ in 0..cfg.samples {
            let z = rng.random_range(0..sizes);
            samples.push((z, Sample::Random(rng.random())));
        }
        // One size after the other: changing size re-enters the judge's tables.
        samples.sort_by_key(|(z, _)| *z);
        ExplorationPlan { exhaustive, samples, write_orders }
    }

    pub fn is_exhaustive(&self) -> bool {
        self.exhaustive
    }

    /// Every sampled state in walk order, each distinct state once
    /// (canonical: dimensions beyond the size at 0). Nothing for an
    /// exhaustive plan.
    pub fn for_each_sample(&self, model: &PowerLossModel<'_>, mut f: impl FnMut(&ChoiceVector)) {
        let mut seen: HashSet<u128> = HashSet::new();
        let mut c = ChoiceVector::default();
        for (z, sample) in &self.samples {
            self.fill(model, *z, sample, &mut c);
            model.canonicalize(&mut c);
            if seen.insert(fingerprint(&c)) {
                f(&c);
            }
        }
    }

    fn fill(&self, model: &PowerLossModel<'_>, z: usize, sample: &Sample, c: &mut ChoiceVector) {
        let d = model.dims_within(z);
        c.size = z;
        c.versions.clear();
        c.versions.resize(model.dims(), 0);
        let newest = |i: usize| model.radix(i) - 1;
        match sample {
            Sample::AllFloor => {}
            Sample::AllNewest => (0..d).for_each(|i| c.versions[i] = newest(i)),
            Sample::LatestCompleted => {
                for i in 0..d {
                    let in_flight = model.dim_unit(i).allowed().last().is_some_and(|v| v.in_flight);
                    c.versions[i] = newest(i) - in_flight as u32;
                }
            }
            Sample::OnlyNewest(i) => c.versions[*i] = newest(*i),
            Sample::OnlyFloor(i) => {
                (0..d).for_each(|j| c.versions[j] = newest(j));
                c.versions[*i] = 0;
            }
            Sample::WritePrefix(k) => self.write_orders[z][..*k].iter().for_each(|&i| c.versions[i] = newest(i)),
            Sample::WriteSuffix(k) => self.write_orders[z][d - k..].iter().for_each(|&i| c.versions[i] = newest(i)),
            Sample::Given(g) => c.clone_from(g),
            Sample::Random(seed) => {
                let mut rng = ChaCha8Rng::seed_from_u64(*seed);
                (0..d).for_each(|i| c.versions[i] = rng.random_range(0..model.radix(i)));
            }
        }
    }
}

/// 128 bits of two independent hashes: a collision (and so a skipped state)
/// is not a practical concern, and the plan need not keep every vector.
fn fingerprint(c: &ChoiceVector) -> u128 {
    let mut a = DefaultHasher::new();
    c.hash(&mut a);
    let mut b = DefaultHasher::new();
    0x9E37_79B9_7F4A_7C15u64.hash(&mut b);
    c.hash(&mut b);
    ((a.finish() as u128) << 64) | b.finish() as u128
}

/// One state during a walk.
pub struct VisitedState<'v> {
    /// 0-based position in the walk.
    pub number: u64,
    pub choice: &'v ChoiceVector,
    /// The file size in this state.
    pub len: u64,
    /// The file's bytes (`len` of them), when the walk materializes.
    pub bytes: Option<&'v [u8]>,
}

/// The walker's one working state: a choice vector and, when materializing,
/// the one buffer holding its bytes.
struct Cursor<'m, 'a> {
    model: &'m PowerLossModel<'a>,
    choice: ChoiceVector,
    file: Option<Vec<u8>>,
    visited: u64,
    entered: bool,
}

impl<'m, 'a> Cursor<'m, 'a> {
    fn new(model: &'m PowerLossModel<'a>, materialize: bool) -> Self {
        Cursor {
            model,
            choice: model.floor_choice(0),
            file: materialize.then(|| model.floor_image()),
            visited: 0,
            entered: false,
        }
    }

    /// Rewrite only the unit that changes.
    #[inline]
    fn step(&mut self, d: usize, v: u32, tracker: Option<&mut AckTracker<'_>>) {
        let from = self.choice.versions[d];
        if from == v {
            return;
        }
        if let Some(f) = &mut self.file {
            self.model.write_dim(d, v, f);
        }
        if let Some(t) = tracker {
            t.change(d, from, v, self.visited);
        }
        self.choice.versions[d] = v;
    }

    fn jump(&mut self, target: &ChoiceVector, mut tracker: Option<&mut AckTracker<'_>>) {
        if self.entered && target.size == self.choice.size {
            for d in 0..target.versions.len() {
                self.step(d, target.versions[d], tracker.as_deref_mut());
            }
            return;
        }
        for d in 0..target.versions.len() {
            self.step(d, target.versions[d], None);
        }
        self.choice.size = target.size;
        if let Some(t) = tracker {
            t.enter_phase(target.size, &self.choice.versions, self.visited);
        }
        self.entered = true;
    }

    #[inline]
    fn visit(&mut self, f: &mut impl FnMut(&VisitedState<'_>)) {
        let len = self.model.sizes()[self.choice.size];
        f(&VisitedState {
            number: self.visited,
            choice: &self.choice,
            len,
            bytes: self.file.as_deref().map(|b| &b[..len as usize]),
        });
        self.visited += 1;
    }
}

/// Walk the states `plan` names, feeding `tracker` (if any) and calling
/// `visit` on each; with `materialize`, each state's bytes are built
/// copy-on-write in one buffer. Returns the number of states visited.
pub fn explore(
    model: &PowerLossModel<'_>,
    plan: &ExplorationPlan,
    materialize: bool,
    mut tracker: Option<&mut AckTracker<'_>>,
    mut visit: impl FnMut(&VisitedState<'_>),
) -> u64 {
    let mut cur = Cursor::new(model, materialize);
    if plan.exhaustive {
        for z in 0..model.sizes().len() {
            cur.jump(&model.floor_choice(z), tracker.as_deref_mut());
            cur.visit(&mut visit);
            let mut gray = MixedRadixGray::new((0..model.dims_within(z)).map(|d| model.radix(d)).collect());
            while let Some((d, v)) = gray.advance() {
                cur.step(d, v, tracker.as_deref_mut());
                cur.visit(&mut visit);
            }
        }
    } else {
        plan.for_each_sample(model, |c| {
            cur.jump(c, tracker.as_deref_mut());
            cur.visit(&mut visit);
        });
    }
    if let Some(t) = tracker {
        t.finish(cur.visited);
    }
    cur.visited
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every tuple once, one digit by ±1 per step: what copy-on-write
    /// materialization and the incremental judge rely on.
    #[test]
    fn gray_code_visits_every_tuple_once_changing_one_digit_by_one() {
        for radices in [vec![], vec![2], vec![3, 2, 4], vec![2, 2, 2, 2, 2], vec![5, 3]] {
            let mut g = MixedRadixGray::new(radices.clone());
            let mut seen = HashSet::new();
            assert!(seen.insert(g.digits().to_vec()));
            let mut prev = g.digits().to_vec();
            while let Some((j, v)) = g.advance() {
                let now = g.digits().to_vec();
                assert_eq!(now[j], v);
                for k in 0..now.len() {
                    if k == j {
                        assert_eq!(now[k].abs_diff(prev[k]), 1, "{radices:?}: {prev:?} -> {now:?}");
                    } else {
                        assert_eq!(now[k], prev[k]);
                    }
                    assert!(now[k] < radices[k]);
                }
                assert!(seen.insert(now.clone()), "{radices:?}: {now:?} visited twice");
                prev = now;
            }
            assert_eq!(seen.len(), radices.iter().product::<u32>() as usize, "{radices:?}");
            assert_eq!(g.advance(), None, "stays done");
        }
    }

    #[test]
    fn spread_caps_families_and_keeps_the_ends() {
        assert_eq!(spread(1..4), vec![1, 2, 3]);
        let big = spread(0..10_000);
        assert!(big.len() <= FAMILY_CAP + 1);
        assert_eq!(big[0], 0);
        assert_eq!(*big.last().unwrap(), 9_999);
        assert!(spread(1..1).is_empty());
    }
}
