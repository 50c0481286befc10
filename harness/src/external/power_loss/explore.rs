//! Which states of a [`StateSpace`] are checked, in which order.
//!
//! Up to `exhaustive_bound` states (2^16 by default), all of them, in
//! reflected binary Gray-code order: consecutive states differ in one
//! dimension, so a state directory is turned into the next one by rewriting
//! one unit. Beyond that, a deterministic sample: the adversarial states a
//! real writeback is most likely to leave (nothing written back, everything
//! written back, each dimension alone either way, prefixes and suffixes in
//! file and page order), then random states from the trial's seed.
//!
//! Architecture Invariant: pure; the order is a function of the number of
//! dimensions, the configuration and the seed.

use std::collections::HashSet;

use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

use super::space::Bits;
use crate::scenario::derive_seed;

/// How many states are checked per trial.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ExploreConfig {
    /// Enumerate every state when there are at most this many.
    pub exhaustive_bound: u64,
    /// Random states added to the adversarial ones beyond the bound.
    pub random_states: u32,
}

impl Default for ExploreConfig {
    fn default() -> ExploreConfig {
        ExploreConfig { exhaustive_bound: 1 << 16, random_states: 64 }
    }
}

/// Each adversarial family keeps at most this many members, evenly spread,
/// so a file with thousands of dirty units costs O(samples) checker runs.
const FAMILY_CAP: usize = 256;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Sample {
    AllNewest,
    AllFloor,
    OnlyFloor(usize),
    OnlyNewest(usize),
    /// Dimensions `0..k` at their newest, the rest at their floor.
    Prefix(usize),
    /// Dimensions `k..` at their newest, the rest at their floor.
    Suffix(usize),
    Random(u64),
}

impl Sample {
    fn bits(self, n: usize) -> Bits {
        match self {
            Sample::AllNewest => Bits::all(n, true),
            Sample::AllFloor => Bits::all(n, false),
            Sample::OnlyFloor(d) => {
                let mut b = Bits::all(n, true);
                b.set(d, false);
                b
            }
            Sample::OnlyNewest(d) => {
                let mut b = Bits::all(n, false);
                b.set(d, true);
                b
            }
            Sample::Prefix(k) => {
                let mut b = Bits::all(n, false);
                (0..k).for_each(|d| b.set(d, true));
                b
            }
            Sample::Suffix(k) => {
                let mut b = Bits::all(n, false);
                (k..n).for_each(|d| b.set(d, true));
                b
            }
            Sample::Random(seed) => {
                let mut rng = ChaCha8Rng::seed_from_u64(seed);
                let mut b = Bits::all(n, false);
                (0..n).for_each(|d| b.set(d, rng.random::<bool>()));
                b
            }
        }
    }

    fn name(self) -> String {
        match self {
            Sample::AllNewest => "every unit at its newest content".into(),
            Sample::AllFloor => "every unit at its durable floor".into(),
            Sample::OnlyFloor(_) => "one unit alone at its durable floor".into(),
            Sample::OnlyNewest(_) => "one unit alone at its newest content".into(),
            Sample::Prefix(k) => {
                format!("the first {k} units in file order at their newest content, the rest at their floor")
            }
            Sample::Suffix(k) => {
                format!("the first {k} units in file order at their floor, the rest at their newest content")
            }
            Sample::Random(_) => "a random state".into(),
        }
    }
}

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

/// The states of one trial, in the order they are checked.
#[derive(Debug, Clone)]
pub struct StateOrder {
    dims: usize,
    exhaustive: bool,
    count: u64,
    samples: Vec<Sample>,
}

impl StateOrder {
    pub fn new(dims: usize, cfg: &ExploreConfig, seed: u64) -> StateOrder {
        let count = 1u64.checked_shl(dims as u32).filter(|&c| dims < 64 && c <= cfg.exhaustive_bound);
        if let Some(count) = count {
            return StateOrder { dims, exhaustive: true, count, samples: Vec::new() };
        }
        let mut candidates = vec![Sample::AllNewest, Sample::AllFloor];
        candidates.extend(spread(0..dims).into_iter().map(Sample::OnlyFloor));
        candidates.extend(spread(0..dims).into_iter().map(Sample::OnlyNewest));
        candidates.extend(spread(1..dims).into_iter().map(Sample::Prefix));
        candidates.extend(spread(1..dims).into_iter().map(Sample::Suffix));
        candidates
            .extend((0..cfg.random_states).map(|i| Sample::Random(derive_seed(seed, &["state", &i.to_string()]))));
        // Each distinct state once.
        let mut seen = HashSet::new();
        let samples: Vec<Sample> = candidates.into_iter().filter(|s| seen.insert(s.bits(dims))).collect();
        StateOrder { dims, exhaustive: false, count: samples.len() as u64, samples }
    }

    pub fn is_exhaustive(&self) -> bool {
        self.exhaustive
    }

    pub fn len(&self) -> u64 {
        self.count
    }

    pub fn is_empty(&self) -> bool {
        self.count == 0
    }

    /// The `i`-th state.
    pub fn state(&self, i: u64) -> Bits {
        assert!(i < self.count, "state {i} of {}", self.count);
        if self.exhaustive {
            let gray = i ^ (i >> 1);
            let mut b = Bits::all(self.dims, false);
            (0..self.dims).filter(|&d| gray >> d & 1 == 1).for_each(|d| b.set(d, true));
            b
        } else {
            self.samples[i as usize].bits(self.dims)
        }
    }

    /// What the `i`-th state is, for reports.
    pub fn name(&self, i: u64) -> String {
        if self.exhaustive {
            format!("state {i} of {} in Gray-code order", self.count)
        } else {
            self.samples[i as usize].name()
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn small_spaces_are_walked_whole_one_dimension_per_step() {
        let order = StateOrder::new(5, &ExploreConfig::default(), 1);
        assert!(order.is_exhaustive());
        assert_eq!(order.len(), 32);
        let states: Vec<Bits> = (0..32).map(|i| order.state(i)).collect();
        assert_eq!(states.iter().collect::<HashSet<_>>().len(), 32, "every state once");
        for w in states.windows(2) {
            assert_eq!(w[0].diff(&w[1]).count(), 1);
        }
        assert_eq!(StateOrder::new(0, &ExploreConfig::default(), 1).len(), 1, "no dimension: one state");
    }

    #[test]
    fn large_spaces_are_sampled_adversarially_then_at_random() {
        let cfg = ExploreConfig { exhaustive_bound: 1 << 16, random_states: 10 };
        let order = StateOrder::new(20, &cfg, 7);
        assert!(!order.is_exhaustive());
        assert_eq!(order.state(0), Bits::all(20, true));
        assert_eq!(order.state(1), Bits::all(20, false));
        assert_eq!(order.state(2).members(20, false), vec![0]);
        // 2 + 20 + 20 + 19 + 19 minus duplicates (prefix 19 = only floor 19,
        // suffix 1 = only floor 0, prefix 1 = only newest 0, suffix 19 = only
        // newest 19), plus 10 random (distinct with overwhelming odds).
        assert_eq!(order.len(), 2 + 20 + 20 + 19 + 19 - 4 + 10);
        let again = StateOrder::new(20, &cfg, 7);
        assert!((0..order.len()).all(|i| order.state(i) == again.state(i)), "a function of the seed");
        let other = StateOrder::new(20, &cfg, 8);
        assert_ne!(order.state(order.len() - 1), other.state(other.len() - 1));
        // Families are capped.
        let big = StateOrder::new(5000, &cfg, 7);
        assert!(big.len() < 4 * 258 + 12, "{}", big.len());
    }
}
