//! The one minimizer: shrinking a failing set of unit choices to a minimal
//! explanation (delta debugging). The external world shrinks a failing
//! state with the user's checker as the test; the built-in judge finds an
//! ack's minimal explanation with its tables as the test.
//!
//! [`ddmin`] is Zeller's ddmin: given a set for which a test fails, it finds
//! a subset for which it still fails and that is *1-minimal*: removing any
//! single element makes the test pass. Results are memoized, so no subset is
//! tested twice, and a budget bounds the number of tests; when it runs out,
//! the result still fails but is not known to be 1-minimal.
//!
//! Architecture Invariant: pure; the test is the caller's.

use std::collections::HashMap;
use std::hash::Hash;

/// The result of [`ddmin`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Shrunk<T> {
    /// A failing subset, in the order of the input.
    pub set: Vec<T>,
    /// Is it 1-minimal (false only when the budget ran out)?
    pub one_minimal: bool,
    /// Tests run (memoized repeats not counted).
    pub tests: u32,
}

/// Shrink `items` (for which `fails` is true) to a 1-minimal failing subset.
/// `fails(&[])` is asked first: if the empty set fails, that is the answer.
/// `budget` caps the calls of `fails`.
pub fn ddmin<T: Clone + Eq + Hash, E>(
    items: &[T],
    budget: u32,
    mut fails: impl FnMut(&[T]) -> Result<bool, E>,
) -> Result<Shrunk<T>, E> {
    let mut memo: HashMap<Vec<T>, bool> = HashMap::new();
    let mut tests = 0u32;
    let mut test = |set: &[T]| -> Result<Option<bool>, E> {
        if let Some(&r) = memo.get(set) {
            return Ok(Some(r));
        }
        if tests >= budget {
            return Ok(None);
        }
        tests += 1;
        let r = fails(set)?;
        memo.insert(set.to_vec(), r);
        Ok(Some(r))
    };
    let mut current = items.to_vec();
    match test(&[])? {
        Some(true) => return Ok(Shrunk { set: Vec::new(), one_minimal: true, tests }),
        Some(false) => {}
        None => return Ok(Shrunk { set: current, one_minimal: false, tests }),
    }
    let mut n = 2usize;
    while current.len() >= 2 {
        let len = current.len();
        let n_eff = n.min(len);
        let chunks: Vec<Vec<T>> =
            (0..n_eff).map(|i| current[i * len / n_eff..(i + 1) * len / n_eff].to_vec()).collect();
        let mut next = None;
        // Reduce to a subset...
        for c in &chunks {
            match test(c)? {
                Some(true) => {
                    next = Some((c.clone(), 2));
                    break;
                }
                Some(false) => {}
                None => return Ok(Shrunk { set: current, one_minimal: false, tests }),
            }
        }
        // ...or to a complement.
        if next.is_none() && n_eff > 2 {
            for i in 0..n_eff {
                let complement: Vec<T> =
                    chunks.iter().enumerate().filter(|&(j, _)| j != i).flat_map(|(_, c)| c.iter().cloned()).collect();
                match test(&complement)? {
                    Some(true) => {
                        next = Some((complement, (n_eff - 1).max(2)));
                        break;
                    }
                    Some(false) => {}
                    None => return Ok(Shrunk { set: current, one_minimal: false, tests }),
                }
            }
        }
        match next {
            Some((set, granularity)) => {
                current = set;
                n = granularity;
            }
            // Every single element's removal was tried (n_eff == len): done.
            None if n_eff == len => break,
            None => n = (2 * n_eff).min(len),
        }
    }
    Ok(Shrunk { set: current, one_minimal: true, tests })
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    fn shrink(items: &[usize], budget: u32, fails: impl Fn(&[usize]) -> bool) -> Shrunk<usize> {
        ddmin::<usize, ()>(items, budget, |s| Ok(fails(s))).unwrap()
    }

    #[test]
    fn finds_the_elements_that_together_cause_the_failure() {
        let items: Vec<usize> = (0..40).collect();
        let r = shrink(&items, 1000, |s| s.contains(&7) && s.contains(&31));
        assert_eq!(r.set, vec![7, 31]);
        assert!(r.one_minimal);
        let r = shrink(&items, 1000, |s| s.contains(&12));
        assert_eq!(r.set, vec![12]);
        let r = shrink(&items, 1000, |_| true);
        assert_eq!((r.set, r.tests), (vec![], 1), "the empty set is asked first");
    }

    #[test]
    fn results_are_one_minimal_for_any_monotone_failure() {
        // Fails when at least 3 of the elements 0..10 are present.
        let items: Vec<usize> = (0..30).collect();
        let r = shrink(&items, 10_000, |s| s.iter().filter(|&&x| x < 10).count() >= 3);
        assert_eq!(r.set.len(), 3);
        assert!(r.set.iter().all(|&x| x < 10));
        for i in 0..r.set.len() {
            let mut fewer = r.set.clone();
            fewer.remove(i);
            assert!(fewer.iter().filter(|&&x| x < 10).count() < 3);
        }
    }

    #[test]
    fn a_spent_budget_returns_a_failing_set_not_claimed_minimal() {
        let items: Vec<usize> = (0..64).collect();
        let r = shrink(&items, 3, |s| s.contains(&5) && s.contains(&60));
        assert!(!r.one_minimal);
        assert!(r.set.contains(&5) && r.set.contains(&60));
        assert!(r.tests <= 3);
    }

    proptest! {
        /// Any monotone failure (the set fails when it holds every element
        /// of one of a few clauses): the result fails, and removing any one
        /// of its elements makes the test pass.
        #[test]
        fn the_result_is_a_one_minimal_failing_set(
            n in 1usize..40,
            clauses in prop::collection::vec(prop::collection::vec(0usize..40, 1..4), 1..4),
        ) {
            let clauses: Vec<Vec<usize>> =
                clauses.into_iter().map(|c| c.into_iter().map(|x| x % n).collect()).collect();
            let fails = |s: &[usize]| clauses.iter().any(|c| c.iter().all(|x| s.contains(x)));
            let items: Vec<usize> = (0..n).collect();
            let r = shrink(&items, u32::MAX, fails);
            prop_assert!(r.one_minimal);
            prop_assert!(fails(&r.set), "{:?} does not fail", r.set);
            prop_assert!(r.set.windows(2).all(|w| w[0] < w[1]), "in input order: {:?}", r.set);
            for i in 0..r.set.len() {
                let mut fewer = r.set.clone();
                fewer.remove(i);
                prop_assert!(!fails(&fewer), "{:?} still fails without {}", fewer, r.set[i]);
            }
        }
    }
}
