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

use super::space::Digits;
use crate::explore::families::{file_order_families, Sample};
use crate::explore::order::IndexedOrder;
use crate::explore::random::derived_seeds;

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

/// What a sampled state is, for reports.
fn sample_name(sample: Sample, dims: usize) -> String {
    match sample {
        Sample::AllNewest => "every unit at its newest content".into(),
        Sample::AllFloor => "every unit at its durable floor".into(),
        Sample::NewestCompleted => "every unit at its newest completed content".into(),
        Sample::OnlyFloor(_) => "one unit alone at its durable floor".into(),
        Sample::OnlyNewest(_) => "one unit alone at its newest content".into(),
        Sample::OnlyVersion { .. } => "one unit alone at an intermediate version".into(),
        Sample::NewestPrefix(k) => {
            format!("the first {k} units in file order at their newest content, the rest at their floor")
        }
        Sample::NewestSuffix(k) => {
            format!("the first {} units in file order at their floor, the rest at their newest content", dims - k)
        }
        Sample::Random(_) => "a random state".into(),
    }
}

/// The states of one trial, in the order they are checked.
#[derive(Debug, Clone)]
pub struct StateOrder(IndexedOrder);

impl StateOrder {
    /// `radices`: per dimension, the versions it may hold (2 for an
    /// operation and for a unit with no intermediate version recorded).
    pub fn new(radices: Vec<u32>, cfg: &ExploreConfig, seed: u64) -> StateOrder {
        let seeds = derived_seeds(seed, cfg.random_states);
        StateOrder(IndexedOrder::new(radices, cfg.exhaustive_bound, file_order_families, seeds))
    }

    pub fn is_exhaustive(&self) -> bool {
        self.0.is_exhaustive()
    }

    pub fn len(&self) -> u64 {
        self.0.len()
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// The `i`-th state.
    pub fn state(&self, i: u64) -> Digits {
        let mut digits = vec![0; self.0.units()];
        self.0.state(i, &mut digits);
        Digits::from_digits(&digits)
    }

    /// What the `i`-th state is, for reports.
    pub fn name(&self, i: u64) -> String {
        match self.0.sample(i) {
            None => format!("state {i} of {} in Gray-code order", self.0.len()),
            Some(sample) => sample_name(sample, self.0.units()),
        }
    }
}

#[cfg(test)]
mod tests {
    use std::collections::HashSet;

    use super::*;

    #[test]
    fn small_spaces_are_walked_whole_one_dimension_per_step() {
        let order = StateOrder::new(vec![2; 5], &ExploreConfig::default(), 1);
        assert!(order.is_exhaustive());
        assert_eq!(order.len(), 32);
        let states: Vec<Digits> = (0..32).map(|i| order.state(i)).collect();
        assert_eq!(states.iter().collect::<HashSet<_>>().len(), 32, "every state once");
        for w in states.windows(2) {
            assert_eq!(w[0].diff(&w[1]).count(), 1);
        }
        assert_eq!(StateOrder::new(vec![], &ExploreConfig::default(), 1).len(), 1, "no dimension: one state");
        // Intermediate versions raise a unit's radix: 3 × 2 states.
        let order = StateOrder::new(vec![3, 2], &ExploreConfig::default(), 1);
        assert_eq!(order.len(), 6);
        let states: HashSet<Digits> = (0..6).map(|i| order.state(i)).collect();
        assert!(states.contains(&Digits::from_digits(&[1, 0])) && states.contains(&Digits::from_digits(&[2, 1])));
    }

    #[test]
    fn large_spaces_are_sampled_adversarially_then_at_random() {
        let cfg = ExploreConfig { exhaustive_bound: 1 << 16, random_states: 10 };
        let order = StateOrder::new(vec![2; 20], &cfg, 7);
        assert!(!order.is_exhaustive());
        assert_eq!(order.state(0), Digits::from_digits(&[1; 20]));
        assert_eq!(order.state(1), Digits::floor(20));
        let mut only_first_floor = [1; 20];
        only_first_floor[0] = 0;
        assert_eq!(order.state(2), Digits::from_digits(&only_first_floor));
        // 2 + 20 + 20 + 19 + 19 minus duplicates (prefix 19 = only floor 19,
        // suffix 1 = only floor 0, prefix 1 = only newest 0, suffix 19 = only
        // newest 19), plus 10 random (distinct with overwhelming odds).
        assert_eq!(order.len(), 2 + 20 + 20 + 19 + 19 - 4 + 10);
        let again = StateOrder::new(vec![2; 20], &cfg, 7);
        assert!((0..order.len()).all(|i| order.state(i) == again.state(i)), "a function of the seed");
        let other = StateOrder::new(vec![2; 20], &cfg, 8);
        assert_ne!(order.state(order.len() - 1), other.state(other.len() - 1));
        // Families are capped.
        let big = StateOrder::new(vec![2; 5000], &cfg, 7);
        assert!(big.len() < 4 * 258 + 12, "{}", big.len());
    }

    #[test]
    fn beyond_the_bound_each_intermediate_version_is_tried_alone_with_everything_else_newest() {
        let cfg = ExploreConfig { exhaustive_bound: 4, random_states: 0 };
        // Unit 1 has two intermediate versions (digits 1 and 2).
        let order = StateOrder::new(vec![2, 4, 2], &cfg, 7);
        assert!(!order.is_exhaustive());
        let states: Vec<Digits> = (0..order.len()).map(|i| order.state(i)).collect();
        for digit in [1, 2] {
            let want = Digits::from_digits(&[1, digit, 1]);
            let i = states.iter().position(|s| *s == want).expect("each intermediate version alone");
            assert_eq!(order.name(i as u64), "one unit alone at an intermediate version");
        }
    }
}
