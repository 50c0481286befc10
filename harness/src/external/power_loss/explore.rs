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
//! The Gray order, the families (in this world's order), the sampler and
//! the dedup are the exploration kernel's ([`crate::explore`]).
//!
//! Architecture Invariant: pure; the order is a function of the number of
//! dimensions, the configuration and the seed.

use super::space::Bits;
use crate::explore::families::{file_order_families, Sample, SampleSpace};
use crate::explore::gray::{gray_digits, tuple_count};
use crate::explore::random::{derived_seeds, SeenStates};

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

/// Today every unit of a user's file is binary: its floor or its newest
/// image (intermediate versions would raise its radix).
struct BinaryUnits(usize);

impl SampleSpace for BinaryUnits {
    fn units(&self) -> usize {
        self.0
    }
    fn radix(&self, _unit: usize) -> u32 {
        2
    }
}

/// What a sampled state is, for reports.
fn sample_name(sample: Sample, dims: usize) -> String {
    match sample {
        Sample::AllNewest => "every unit at its newest content".into(),
        Sample::AllFloor => "every unit at its durable floor".into(),
        Sample::NewestCompleted => "every unit at its newest completed content".into(),
        Sample::OnlyFloor(_) => "one unit alone at its durable floor".into(),
        Sample::OnlyNewest(_) => "one unit alone at its newest content".into(),
        Sample::NewestPrefix(k) => {
            format!("the first {k} units in file order at their newest content, the rest at their floor")
        }
        Sample::NewestSuffix(k) => {
            format!("the first {} units in file order at their floor, the rest at their newest content", dims - k)
        }
        Sample::Random(_) => "a random state".into(),
    }
}

fn bits_of(digits: &[u32]) -> Bits {
    let mut b = Bits::all(digits.len(), false);
    digits.iter().enumerate().filter(|&(_, &v)| v == 1).for_each(|(d, _)| b.set(d, true));
    b
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
        let count = tuple_count(std::iter::repeat_n(2, dims)).filter(|&c| c <= cfg.exhaustive_bound);
        if let Some(count) = count {
            return StateOrder { dims, exhaustive: true, count, samples: Vec::new() };
        }
        let units = BinaryUnits(dims);
        let mut candidates = file_order_families(&units);
        candidates.extend(derived_seeds(seed, cfg.random_states).map(Sample::Random));
        // Each distinct state once.
        let mut seen = SeenStates::default();
        let mut digits = vec![0; dims];
        let samples: Vec<Sample> = candidates
            .into_iter()
            .filter(|s| {
                digits.fill(0);
                s.fill(&units, &mut digits);
                seen.first_time(0, &digits)
            })
            .collect();
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
        let mut digits = vec![0; self.dims];
        if self.exhaustive {
            gray_digits(&vec![2; self.dims], i, &mut digits);
        } else {
            self.samples[i as usize].fill(&BinaryUnits(self.dims), &mut digits);
        }
        bits_of(&digits)
    }

    /// What the `i`-th state is, for reports.
    pub fn name(&self, i: u64) -> String {
        if self.exhaustive {
            format!("state {i} of {} in Gray-code order", self.count)
        } else {
            sample_name(self.samples[i as usize], self.dims)
        }
    }
}

#[cfg(test)]
mod tests {
    use std::collections::HashSet;

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
