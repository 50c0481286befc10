//! An order of a space's states that can be entered at any index, so
//! chunks of it can be checked on several threads and the first failing
//! state is the same whatever the number of threads: every state in Gray
//! order when there are few enough, else the adversarial families (in the
//! order the caller's world gives them), then one random state per seed,
//! each distinct state once.
//!
//! Architecture Invariant: pure; the order is a function of the radices,
//! the bound, the families and the seeds.

use super::families::{Sample, SampleSpace};
use super::gray::{gray_digits, tuple_count};
use super::random::SeenStates;

/// A plain list of radices is a space whose prefixes and suffixes follow
/// unit order and which has no op in flight.
impl SampleSpace for [u32] {
    fn units(&self) -> usize {
        self.len()
    }
    fn radix(&self, unit: usize) -> u32 {
        self[unit]
    }
}

/// The states of one space, in the order they are checked.
#[derive(Debug, Clone)]
pub struct IndexedOrder {
    radices: Vec<u32>,
    exhaustive: bool,
    count: u64,
    /// The sampled states, in order (empty when exhaustive).
    samples: Vec<Sample>,
}

impl IndexedOrder {
    /// Every state when there are at most `exhaustive_bound`; otherwise the
    /// states `families` lists, then a random state per seed of
    /// `random_seeds`, without repeats.
    pub fn new(
        radices: Vec<u32>,
        exhaustive_bound: u64,
        families: impl FnOnce(&[u32]) -> Vec<Sample>,
        random_seeds: impl IntoIterator<Item = u64>,
    ) -> IndexedOrder {
        let total = tuple_count(radices.iter().copied()).filter(|&c| c <= exhaustive_bound);
        if let Some(count) = total {
            return IndexedOrder { radices, exhaustive: true, count, samples: Vec::new() };
        }
        let mut candidates = families(&radices);
        candidates.extend(random_seeds.into_iter().map(Sample::Random));
        let mut seen = SeenStates::default();
        let mut digits = vec![0; radices.len()];
        let samples: Vec<Sample> = candidates
            .into_iter()
            .filter(|s| {
                digits.fill(0);
                s.fill(&radices[..], &mut digits);
                seen.first_time(0, &digits)
            })
            .collect();
        IndexedOrder { radices, exhaustive: false, count: samples.len() as u64, samples }
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

    /// The number of units (digits of a state).
    pub fn units(&self) -> usize {
        self.radices.len()
    }

    /// The `i`-th state, written into `digits` (one per unit).
    pub fn state(&self, i: u64, digits: &mut [u32]) {
        assert!(i < self.count, "state {i} of {}", self.count);
        if self.exhaustive {
            gray_digits(&self.radices, i, digits);
        } else {
            digits.fill(0);
            self.samples[i as usize].fill(&self.radices[..], digits);
        }
    }

    /// The sample the `i`-th state is (`None` when every state is walked).
    pub fn sample(&self, i: u64) -> Option<Sample> {
        (!self.exhaustive).then(|| self.samples[i as usize])
    }
}

#[cfg(test)]
mod tests {
    use std::collections::HashSet;

    use super::super::families::file_order_families;
    use super::*;

    fn states(order: &IndexedOrder) -> Vec<Vec<u32>> {
        let mut d = vec![0; order.units()];
        (0..order.len())
            .map(|i| {
                order.state(i, &mut d);
                d.clone()
            })
            .collect()
    }

    #[test]
    fn small_spaces_are_walked_whole_in_gray_order() {
        let order = IndexedOrder::new(vec![3, 2, 2], 12, file_order_families, [1, 2]);
        assert!(order.is_exhaustive());
        assert_eq!(order.sample(0), None);
        let all = states(&order);
        assert_eq!(all.len(), 12);
        assert_eq!(all.iter().collect::<HashSet<_>>().len(), 12, "every state once");
        for w in all.windows(2) {
            assert_eq!((0..3).filter(|&k| w[0][k] != w[1][k]).count(), 1, "{:?} -> {:?}", w[0], w[1]);
        }
    }

    #[test]
    fn large_spaces_list_families_then_random_states_each_once() {
        // 3 * 3 * 2 = 18 states, above the bound of 10: sampled.
        let order = IndexedOrder::new(vec![3, 3, 2], 10, file_order_families, [5, 6, 7]);
        assert!(!order.is_exhaustive());
        let all = states(&order);
        assert_eq!(all[0], [2, 2, 1], "all newest first");
        assert_eq!(all[1], [0, 0, 0], "then all floor");
        assert_eq!(all[2], [0, 2, 1], "then unit 0 alone at its floor");
        assert_eq!(order.sample(2), Some(Sample::OnlyFloor(0)));
        assert_eq!(all.iter().collect::<HashSet<_>>().len(), all.len(), "no repeats");
        assert!(all.iter().all(|s| s[0] < 3 && s[1] < 3 && s[2] < 2));
        // 2 + 3 + 3 + 2 + 2 families minus the repeats (prefix 1 = only
        // newest 0, prefix 2 = only floor 2, suffix 2 = only floor 0,
        // suffix 1 = only newest 2), then at most 3 random states (a random
        // state may repeat a family's in so small a space).
        assert!((8..=11).contains(&all.len()), "{}", all.len());
    }
}
