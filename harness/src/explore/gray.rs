//! The one enumerator of every power-loss state space: the reflected
//! mixed-radix Gray code over the units' radices.
//!
//! Consecutive states differ in one unit by one step of its version, so a
//! walker keeps one working state and rewrites one unit per state (the
//! built-in explorer's copy-on-write file, the external world's state
//! directory). A binary space (users' programs today: each unit at its
//! floor or its newest image) is the radix-2 case, the classic reflected
//! binary Gray code `i ^ (i >> 1)`. Coordinate 0 changes fastest.
//!
//! Two ways in, one order: [`MixedRadixGray`] steps in O(1) (the built-in
//! walk), [`gray_digits`] jumps to the `i`-th state (the external world
//! checks chunks of states on several threads).
//!
//! Architecture Invariant: pure.

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

/// The number of tuples of `radices`, if it fits in a `u64`.
pub fn tuple_count(radices: impl IntoIterator<Item = u32>) -> Option<u64> {
    radices.into_iter().try_fold(1u64, |n, r| n.checked_mul(r as u64))
}

/// The `index`-th tuple (0-based) of [`MixedRadixGray`]'s order, written
/// into `digits` (one per radix). Digit `j` is the ordinary mixed-radix
/// digit, reflected when the number formed by the digits above it is odd:
/// that is what makes each sweep of digit `j` run the other way. `index`
/// must be below [`tuple_count`].
pub fn gray_digits(radices: &[u32], index: u64, digits: &mut [u32]) {
    assert_eq!(radices.len(), digits.len(), "one digit per radix");
    let mut rest = index;
    for (j, &r) in radices.iter().enumerate() {
        let r = r as u64;
        let (plain, above) = (rest % r, rest / r);
        digits[j] = if above % 2 == 1 { (r - 1 - plain) as u32 } else { plain as u32 };
        rest = above;
    }
    assert_eq!(rest, 0, "index {index} is beyond the {radices:?} tuples");
}

#[cfg(test)]
mod tests {
    use std::collections::HashSet;

    use proptest::prelude::*;

    use super::*;

    /// Walk `radices` with the stepping enumerator, checking each step.
    fn walk(radices: &[u32]) -> Vec<Vec<u32>> {
        let mut g = MixedRadixGray::new(radices.to_vec());
        let mut states = vec![g.digits().to_vec()];
        while let Some((j, v)) = g.advance() {
            let now = g.digits().to_vec();
            assert_eq!(now[j], v, "the reported change is the one made");
            states.push(now);
        }
        assert_eq!(g.advance(), None, "stays done");
        states
    }

    /// Every tuple once, one digit by ±1 per step: what copy-on-write
    /// materialization and the incremental judge rely on.
    #[test]
    fn gray_code_visits_every_tuple_once_changing_one_digit_by_one() {
        for radices in [vec![], vec![2], vec![3, 2, 4], vec![2, 2, 2, 2, 2], vec![5, 3]] {
            let states = walk(&radices);
            let seen: HashSet<&Vec<u32>> = states.iter().collect();
            assert_eq!(seen.len(), states.len(), "{radices:?}: a tuple visited twice");
            assert_eq!(states.len() as u64, tuple_count(radices.iter().copied()).unwrap(), "{radices:?}");
            for w in states.windows(2) {
                let changed: Vec<usize> = (0..radices.len()).filter(|&k| w[0][k] != w[1][k]).collect();
                assert_eq!(changed.len(), 1, "{radices:?}: {:?} -> {:?}", w[0], w[1]);
                assert_eq!(w[0][changed[0]].abs_diff(w[1][changed[0]]), 1);
            }
        }
    }

    /// The binary case is the reflected binary Gray code the external world
    /// has always used (bit `d` of `i ^ (i >> 1)` is unit `d`).
    #[test]
    fn the_binary_case_is_the_classic_reflected_gray_code() {
        let radices = [2u32; 6];
        let mut digits = [0u32; 6];
        for i in 0..64u64 {
            gray_digits(&radices, i, &mut digits);
            let gray = i ^ (i >> 1);
            let want: Vec<u32> = (0..6).map(|d| (gray >> d & 1) as u32).collect();
            assert_eq!(digits.to_vec(), want, "state {i}");
        }
    }

    #[test]
    fn tuple_counts_overflow_to_none() {
        assert_eq!(tuple_count([]), Some(1));
        assert_eq!(tuple_count([3, 5]), Some(15));
        assert_eq!(tuple_count([2; 64]), None);
        assert_eq!(tuple_count([2; 63]), Some(1 << 63));
    }

    proptest! {
        /// Any mixed-radix space: the enumerator visits every state exactly
        /// once, consecutive states differ in exactly one unit, and the
        /// random-access form names the same state at every index.
        #[test]
        fn every_state_once_one_unit_per_step_at_any_radix(radices in prop::collection::vec(2u32..5, 0..7)) {
            let states = walk(&radices);
            let total = tuple_count(radices.iter().copied()).unwrap();
            prop_assert_eq!(states.len() as u64, total);
            let distinct: HashSet<&Vec<u32>> = states.iter().collect();
            prop_assert_eq!(distinct.len() as u64, total);
            for s in &states {
                prop_assert!(s.iter().zip(&radices).all(|(d, r)| d < r));
            }
            for w in states.windows(2) {
                let changed = (0..radices.len()).filter(|&k| w[0][k] != w[1][k]).count();
                prop_assert_eq!(changed, 1);
            }
            let mut digits = vec![0; radices.len()];
            for (i, s) in states.iter().enumerate() {
                gray_digits(&radices, i as u64, &mut digits);
                prop_assert_eq!(&digits, s);
            }
        }
    }
}
