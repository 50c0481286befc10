//! The adversarial states checked when a space is too large to enumerate:
//! those a real writeback order is most likely to leave (nothing written
//! back, everything written back, one unit alone either way, growing
//! prefixes and suffixes of an order of the units, the page cache minus
//! the op in flight), then random ones ([`super::random`]).
//!
//! A [`Sample`] describes a state instead of storing it, so a plan costs
//! O(samples) memory whatever the number of units. Each world keeps the
//! order its results (first failing state, counts in reports) have always
//! come in: [`write_order_families`] for the built-in explorer,
//! [`file_order_families`] for users' programs. Both draw from the one
//! family vocabulary and the one [`spread`].
//!
//! Architecture Invariant: pure.

use super::random::random_digits;

/// Each adversarial family keeps at most this many members, evenly spread,
/// so sampling stays O(samples) states on files with thousands of units.
pub const FAMILY_CAP: usize = 256;

/// At most [`FAMILY_CAP`] (+1) members of `range`, evenly spread, first and
/// last included.
pub fn spread(range: std::ops::Range<usize>) -> Vec<usize> {
    let n = range.len();
    if n <= FAMILY_CAP {
        return range.collect();
    }
    let mut picks: Vec<usize> = (0..FAMILY_CAP).map(|i| range.start + i * n / FAMILY_CAP).collect();
    picks.push(range.end - 1);
    picks.dedup();
    picks
}

/// What a sample needs to know of a space: its units' radices (version 0
/// is a unit's durable floor, `radix - 1` its newest version), the order
/// prefixes and suffixes follow, and which newest versions are the op in
/// flight's.
pub trait SampleSpace {
    /// The units (coordinates) a sample sets; digits beyond stay 0.
    fn units(&self) -> usize;
    fn radix(&self, unit: usize) -> u32;
    /// The unit at position `k` of the prefix/suffix order.
    fn in_order(&self, k: usize) -> usize {
        k
    }
    /// Is the unit's newest version made by the op in flight at the crash?
    fn newest_in_flight(&self, _unit: usize) -> bool {
        false
    }
}

/// One adversarial or random state, described.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Sample {
    /// Every unit at its durable floor: nothing unsynced written back.
    AllFloor,
    /// Every unit at its newest version: the page cache.
    AllNewest,
    /// Every unit at its newest completed version: the page cache when the
    /// writer died, minus the op in flight.
    NewestCompleted,
    /// This unit alone at its newest version, the rest at their floor.
    OnlyNewest(usize),
    /// This unit alone at its floor, the rest at their newest version.
    OnlyFloor(usize),
    /// Every unit at its newest version but `unit`, at intermediate
    /// version `digit` (neither its floor nor its newest).
    OnlyVersion { unit: usize, digit: u32 },
    /// The first `k` units of the order at their newest version, the rest
    /// at their floor.
    NewestPrefix(usize),
    /// The last `k` units of the order at their newest version, the rest at
    /// their floor.
    NewestSuffix(usize),
    /// Every unit at a version drawn from this seed
    /// ([`super::random::random_digits`]).
    Random(u64),
}

impl Sample {
    /// Write the state into `digits` (one per unit of the space, all 0).
    pub fn fill(self, space: &(impl SampleSpace + ?Sized), digits: &mut [u32]) {
        let n = space.units();
        let newest = |u: usize| space.radix(u) - 1;
        match self {
            Sample::AllFloor => {}
            Sample::AllNewest => (0..n).for_each(|u| digits[u] = newest(u)),
            Sample::NewestCompleted => {
                (0..n).for_each(|u| digits[u] = newest(u) - space.newest_in_flight(u) as u32);
            }
            Sample::OnlyNewest(u) => digits[u] = newest(u),
            Sample::OnlyFloor(u) => {
                (0..n).for_each(|v| digits[v] = newest(v));
                digits[u] = 0;
            }
            Sample::OnlyVersion { unit, digit } => {
                (0..n).for_each(|v| digits[v] = newest(v));
                digits[unit] = digit;
            }
            Sample::NewestPrefix(k) => (0..k).map(|i| space.in_order(i)).for_each(|u| digits[u] = newest(u)),
            Sample::NewestSuffix(k) => (n - k..n).map(|i| space.in_order(i)).for_each(|u| digits[u] = newest(u)),
            Sample::Random(seed) => random_digits(seed, n, |u| space.radix(u), digits),
        }
    }
}

/// The built-in explorer's families for one file size, in its walk order:
/// consecutive states differ in one or two units, so its copy-on-write walk
/// stays cheap. All old, one new at a time, growing prefixes in write
/// order; then all new (and the page cache minus the op in flight), one old
/// at a time, shrinking suffixes.
pub fn write_order_families(space: &(impl SampleSpace + ?Sized)) -> Vec<Sample> {
    let d = space.units();
    let mut samples = vec![Sample::AllFloor];
    samples.extend(spread(0..d).into_iter().map(Sample::OnlyNewest));
    samples.extend(spread(1..d.max(1)).into_iter().map(Sample::NewestPrefix));
    samples.push(Sample::AllNewest);
    if (0..d).any(|u| space.newest_in_flight(u)) {
        samples.push(Sample::NewestCompleted);
    }
    samples.extend(spread(0..d).into_iter().map(Sample::OnlyFloor));
    samples.extend(spread(1..d.max(1)).into_iter().rev().map(Sample::NewestSuffix));
    samples
}

/// The external world's families, in its check order (a trial stops at its
/// first failing state, so the order decides which state is reported): all
/// newest, all floor, each unit alone at its floor, each unit alone at each
/// of its intermediate versions, each alone at its newest, growing prefixes in file order, then suffixes starting ever
/// later (units `k..` at their newest for growing `k`).
pub fn file_order_families(space: &(impl SampleSpace + ?Sized)) -> Vec<Sample> {
    let n = space.units();
    let mut samples = vec![Sample::AllNewest, Sample::AllFloor];
    samples.extend(spread(0..n).into_iter().map(Sample::OnlyFloor));
    // Each intermediate version of each unit alone: a page written back
    // once between two syncs, while everything else is newest.
    let versions: Vec<Sample> = (0..n)
        .flat_map(|unit| (1..space.radix(unit).saturating_sub(1)).map(move |digit| Sample::OnlyVersion { unit, digit }))
        .collect();
    samples.extend(spread(0..versions.len()).into_iter().map(|i| versions[i]));
    samples.extend(spread(0..n).into_iter().map(Sample::OnlyNewest));
    samples.extend(spread(1..n).into_iter().map(Sample::NewestPrefix));
    samples.extend(spread(1..n).into_iter().map(|k| Sample::NewestSuffix(n - k)));
    samples
}

#[cfg(test)]
mod tests {
    use super::*;

    struct Radices(Vec<u32>, Vec<usize>, Vec<bool>);

    impl SampleSpace for Radices {
        fn units(&self) -> usize {
            self.0.len()
        }
        fn radix(&self, unit: usize) -> u32 {
            self.0[unit]
        }
        fn in_order(&self, k: usize) -> usize {
            self.1[k]
        }
        fn newest_in_flight(&self, unit: usize) -> bool {
            self.2[unit]
        }
    }

    fn state(space: &Radices, s: Sample) -> Vec<u32> {
        let mut d = vec![0; space.units()];
        s.fill(space, &mut d);
        d
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

    #[test]
    fn families_set_the_units_they_name() {
        // Write order: unit 2, then 0, then 1. Unit 1's newest is in flight.
        let s = Radices(vec![3, 4, 2], vec![2, 0, 1], vec![false, true, false]);
        assert_eq!(state(&s, Sample::AllFloor), [0, 0, 0]);
        assert_eq!(state(&s, Sample::AllNewest), [2, 3, 1]);
        assert_eq!(state(&s, Sample::NewestCompleted), [2, 2, 1]);
        assert_eq!(state(&s, Sample::OnlyNewest(1)), [0, 3, 0]);
        assert_eq!(state(&s, Sample::OnlyFloor(1)), [2, 0, 1]);
        assert_eq!(state(&s, Sample::NewestPrefix(2)), [2, 0, 1], "units 2 and 0");
        assert_eq!(state(&s, Sample::NewestSuffix(1)), [0, 3, 0], "unit 1, the last written");
        let r = state(&s, Sample::Random(9));
        assert!(r.iter().zip(&s.0).all(|(d, r)| d < r));
        assert_eq!(r, state(&s, Sample::Random(9)), "a function of the seed");
    }

    #[test]
    fn the_two_family_lists_keep_their_worlds_orders() {
        let s = Radices(vec![2; 4], vec![3, 2, 1, 0], vec![false; 4]);
        use Sample::*;
        assert_eq!(
            write_order_families(&s),
            [
                AllFloor,
                OnlyNewest(0),
                OnlyNewest(1),
                OnlyNewest(2),
                OnlyNewest(3),
                NewestPrefix(1),
                NewestPrefix(2),
                NewestPrefix(3),
                AllNewest,
                OnlyFloor(0),
                OnlyFloor(1),
                OnlyFloor(2),
                OnlyFloor(3),
                NewestSuffix(3),
                NewestSuffix(2),
                NewestSuffix(1),
            ]
        );
        assert_eq!(
            file_order_families(&s),
            [
                AllNewest,
                AllFloor,
                OnlyFloor(0),
                OnlyFloor(1),
                OnlyFloor(2),
                OnlyFloor(3),
                OnlyNewest(0),
                OnlyNewest(1),
                OnlyNewest(2),
                OnlyNewest(3),
                NewestPrefix(1),
                NewestPrefix(2),
                NewestPrefix(3),
                NewestSuffix(3),
                NewestSuffix(2),
                NewestSuffix(1),
            ]
        );
    }
}
