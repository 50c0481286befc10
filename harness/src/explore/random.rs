//! The one seeded sampler: random states drawn from a recorded seed, and
//! the one way a sampled walk keeps each distinct state once.
//!
//! Each random state has a seed of its own, so a plan stores seeds, not
//! states. Two seed schedules exist because two worlds recorded results
//! with them and a state's seed is part of what a replay reproduces:
//! [`chained_seeds`] (built-in: one ChaCha8 stream gives each sample its
//! file size and seed) and [`derived_seeds`] (users' programs:
//! [`derive_seed`]`(seed, ["state", i])`). Both feed [`random_digits`].
//!
//! Architecture Invariant: pure; every draw comes from the seed passed in.

use std::collections::HashSet;
use std::hash::{DefaultHasher, Hash, Hasher};

use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

use crate::scenario::derive_seed;

/// Every unit `u < units` at a version drawn uniformly from its radix by
/// ChaCha8 seeded with `seed`, one draw per unit in unit order. At radix 2
/// a draw is the top bit of one 32-bit word, as `Rng::random::<bool>` is:
/// the binary states users' programs have always drawn.
pub fn random_digits(seed: u64, units: usize, radix: impl Fn(usize) -> u32, digits: &mut [u32]) {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    (0..units).for_each(|u| digits[u] = rng.random_range(0..radix(u)));
}

/// `count` (phase, seed) pairs from one stream seeded with `seed`: each
/// random state's phase (the built-in world's file size index, below
/// `phases`) and its own seed.
pub fn chained_seeds(seed: u64, count: u32, phases: usize) -> Vec<(usize, u64)> {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    (0..count)
        .map(|_| {
            let phase = rng.random_range(0..phases);
            (phase, rng.random())
        })
        .collect()
}

/// `count` seeds, the `i`-th derived from `seed` and `i` alone.
pub fn derived_seeds(seed: u64, count: u32) -> impl Iterator<Item = u64> {
    (0..count).map(move |i| derive_seed(seed, &["state", &i.to_string()]))
}

/// The states a sampled walk has already produced, by fingerprint: 128 bits
/// of two independent hashes, so a collision (and so a skipped state) is
/// not a practical concern, and no state needs to be kept.
#[derive(Debug, Default)]
pub struct SeenStates(HashSet<u128>);

impl SeenStates {
    /// True the first time this (phase, digits) state is offered.
    pub fn first_time(&mut self, phase: usize, digits: &[u32]) -> bool {
        let hash = |salt: Option<u64>| {
            let mut h = DefaultHasher::new();
            if let Some(s) = salt {
                s.hash(&mut h);
            }
            phase.hash(&mut h);
            digits.hash(&mut h);
            h.finish()
        };
        self.0.insert(((hash(None) as u128) << 64) | hash(Some(0x9E37_79B9_7F4A_7C15)) as u128)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The one sampler draws, at radix 2, the bits users' programs always
    /// drew (`random::<bool>()` per unit): same seed, same states.
    #[test]
    fn radix_two_random_states_are_the_external_worlds_bits() {
        for seed in 0..200u64 {
            let mut digits = vec![0; 70];
            random_digits(seed, 70, |_| 2, &mut digits);
            let mut rng = ChaCha8Rng::seed_from_u64(seed);
            let bits: Vec<u32> = (0..70).map(|_| rng.random::<bool>() as u32).collect();
            assert_eq!(digits, bits, "seed {seed}");
        }
    }

    #[test]
    fn random_states_stay_within_each_radix_and_follow_the_seed() {
        let radices = [2, 3, 7, 2, 5];
        let draw = |seed| {
            let mut d = [0; 5];
            random_digits(seed, 5, |u| radices[u], &mut d);
            d
        };
        for seed in 0..100 {
            let d = draw(seed);
            assert!(d.iter().zip(&radices).all(|(d, r)| d < r), "{d:?}");
            assert_eq!(d, draw(seed));
        }
        assert!((0..100).map(draw).collect::<HashSet<_>>().len() > 50, "different seeds, different states");
    }

    #[test]
    fn seed_schedules_are_functions_of_the_seed() {
        assert_eq!(chained_seeds(5, 10, 3), chained_seeds(5, 10, 3));
        assert!(chained_seeds(5, 100, 3).iter().all(|&(p, _)| p < 3));
        assert_ne!(chained_seeds(5, 10, 3), chained_seeds(6, 10, 3));
        let d: Vec<u64> = derived_seeds(5, 4).collect();
        assert_eq!(d[2], derive_seed(5, &["state", "2"]));
        assert_eq!(d.iter().collect::<HashSet<_>>().len(), 4);
    }

    #[test]
    fn seen_states_tell_phase_and_digits_apart() {
        let mut seen = SeenStates::default();
        assert!(seen.first_time(0, &[1, 0]));
        assert!(!seen.first_time(0, &[1, 0]));
        assert!(seen.first_time(1, &[1, 0]), "another phase is another state");
        assert!(seen.first_time(0, &[0, 1]));
    }
}
