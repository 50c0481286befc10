//! How a campaign's trials split into shards that separate machines run
//! independently (`--shard I/N`).
//!
//! A shard takes one **contiguous block** of every cell's crash points (all
//! repetitions of each). Contiguous, not round-robin, because it keeps merging
//! exact: a cell's trials in shard order are its trials in unsharded order,
//! so the merged cell's first failures and representative replay are those an
//! unsharded run would have picked (see [`crate::report::merge`]). The split
//! depends only on the config, never on `--jobs` or timing.
//!
//! Architecture Invariant: pure.

use std::fmt;
use std::ops::Range;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

/// Shard `index` of `count` (1-based, as `--shard 2/4` and CI matrices count).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(into = "String", try_from = "String")]
pub struct Shard {
    index: u32,
    count: u32,
}

impl Shard {
    pub fn new(index: u32, count: u32) -> Result<Shard, String> {
        if count == 0 || index == 0 || index > count {
            return Err(format!("bad shard {index}/{count} (expected I/N with 1 ≤ I ≤ N)"));
        }
        Ok(Shard { index, count })
    }

    /// 1-based.
    pub fn index(self) -> u32 {
        self.index
    }

    pub fn count(self) -> u32 {
        self.count
    }

    /// The block of a list of `len` crash points this shard runs. The blocks
    /// of shards 1..=count tile `0..len` in order; sizes differ by at most one.
    pub fn block(self, len: usize) -> Range<usize> {
        let (i, n) = (self.index as u128 - 1, self.count as u128);
        let len = len as u128;
        ((len * i / n) as usize)..((len * (i + 1) / n) as usize)
    }
}

impl fmt::Display for Shard {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.index, self.count)
    }
}

impl FromStr for Shard {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let bad = || format!("bad shard `{s}` (expected I/N with 1 ≤ I ≤ N, e.g. 2/4)");
        let (i, n) = s.split_once('/').ok_or_else(bad)?;
        let (i, n) = (i.parse::<u32>().map_err(|_| bad())?, n.parse::<u32>().map_err(|_| bad())?);
        Shard::new(i, n).map_err(|_| bad())
    }
}

impl From<Shard> for String {
    fn from(s: Shard) -> String {
        s.to_string()
    }
}

impl TryFrom<String> for Shard {
    type Error = String;
    fn try_from(s: String) -> Result<Self, Self::Error> {
        s.parse()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn blocks_tile_the_points_in_order_whatever_the_count() {
        for len in [0usize, 1, 2, 7, 18, 100] {
            for count in 1..=9u32 {
                let mut next = 0;
                for index in 1..=count {
                    let b = Shard::new(index, count).unwrap().block(len);
                    assert_eq!(b.start, next, "len {len}, shard {index}/{count}");
                    assert!(b.len() <= len.div_ceil(count as usize), "len {len}, shard {index}/{count}: {b:?}");
                    next = b.end;
                }
                assert_eq!(next, len, "len {len}, {count} shards leave points out");
            }
        }
    }

    #[test]
    fn shard_text_round_trips_and_bad_shards_are_refused() {
        let s: Shard = "2/4".parse().unwrap();
        assert_eq!((s.index(), s.count()), (2, 4));
        assert_eq!(s.to_string(), "2/4");
        for bad in ["0/4", "5/4", "1/0", "2", "a/b", "1/2/3", "-1/2"] {
            let e = bad.parse::<Shard>().unwrap_err();
            assert!(e.contains(bad), "{bad}: {e}");
        }
    }
}
