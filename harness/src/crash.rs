//! Process crashes: their kinds, the points where they strike, and how the
//! points of a cell are enumerated or sampled.
//!
//! Architecture Invariant: this module is pure. Every random choice comes from
//! the seed passed in.

use std::fmt;
use std::str::FromStr;

use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use serde::{Deserialize, Serialize};

use crate::page_allocation::{allocating_stores, peak_pages};
use crate::spec::{MappingKind, Op, WriterSpec};
use crate::vocab::CrashKind;

/// Where, exactly, one trial's crash strikes. Together with the spec it
/// identifies a trial; its text form is what replay lines carry.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(into = "String", try_from = "String")]
pub enum CrashPoint {
    /// The child kills itself (`SIGKILL` or `abort()`) just before op `k`;
    /// `k == ops.len()` means after the last op.
    BeforeOp(usize),
    /// The parent sends `SIGKILL` `delay_ns` after the child started store `op`.
    InsideStore { op: usize, delay_ns: u64 },
    /// The parent sends `SIGKILL` after `permille`/1000 of the time a clean
    /// run of the same writer took (calibrated by each worker), counted from
    /// the fork. A fraction, not nanoseconds, so the point list stays a pure
    /// function of the seed while machines differ in speed.
    AtTime { permille: u32 },
    /// When the child reaches op `op`, the parent truncates the file to `len`.
    TruncateBefore { op: usize, len: u64 },
    /// The file starts sparse on a filesystem with room for exactly `pages`
    /// more pages (`enospc`): the first store needing more dies of SIGBUS
    /// ([`crate::page_allocation::capacity_fault`]). `pages` at or above
    /// the run's peak is the column's control: nothing faults.
    Capacity { pages: u64 },
    /// No crash.
    None,
}

impl CrashPoint {
    /// Is the point timing-dependent (so a replay reruns the same plan but
    /// may land elsewhere)? The journal always records where it landed.
    pub fn is_timed(&self) -> bool {
        matches!(self, CrashPoint::InsideStore { .. } | CrashPoint::AtTime { .. })
    }

    /// Can this point be used with `kind`?
    pub fn fits(&self, kind: CrashKind, spec: &WriterSpec) -> Result<(), String> {
        let n = spec.ops.len();
        let ok = match (kind, self) {
            (CrashKind::Clean, CrashPoint::None) => true,
            (CrashKind::Sigkill, CrashPoint::BeforeOp(k)) | (CrashKind::Abort, CrashPoint::BeforeOp(k)) => *k <= n,
            (CrashKind::Sigkill, CrashPoint::InsideStore { op, .. }) => {
                *op < n && matches!(spec.ops[*op], Op::Store { .. })
            }
            (CrashKind::Sigkill, CrashPoint::AtTime { .. }) => true,
            (CrashKind::Sigbus, CrashPoint::TruncateBefore { op, len }) => *op < n && *len < spec.file_size,
            // A private store into a hole copies to anonymous memory and
            // never allocates a page of the file: not applicable there.
            (CrashKind::Enospc, CrashPoint::Capacity { pages }) => {
                spec.mapping == MappingKind::Shared && *pages <= spec.page_count()
            }
            _ => false,
        };
        if ok {
            Ok(())
        } else {
            Err(format!("crash point `{self}` does not fit crash kind `{kind}` on a writer of {n} ops"))
        }
    }
}

impl fmt::Display for CrashPoint {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            CrashPoint::BeforeOp(k) => write!(f, "before:{k}"),
            CrashPoint::InsideStore { op, delay_ns } => write!(f, "inside:{op}+{delay_ns}ns"),
            CrashPoint::AtTime { permille } => write!(f, "time:{permille}permille"),
            CrashPoint::TruncateBefore { op, len } => write!(f, "truncate:{op}@{len}"),
            CrashPoint::Capacity { pages } => write!(f, "capacity:{pages}"),
            CrashPoint::None => f.write_str("none"),
        }
    }
}

impl FromStr for CrashPoint {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let bad = || {
            format!("bad crash point `{s}` (expected before:K, inside:K+Nns, time:Ppermille, truncate:K@LEN, capacity:PAGES or none)")
        };
        let num = |t: &str| t.parse::<u64>().map_err(|_| bad());
        let ns = |t: &str| t.strip_suffix("ns").ok_or_else(bad).and_then(num);
        if s == "none" {
            return Ok(CrashPoint::None);
        }
        let (tag, rest) = s.split_once(':').ok_or_else(bad)?;
        match tag {
            "before" => Ok(CrashPoint::BeforeOp(num(rest)? as usize)),
            "inside" => {
                let (op, d) = rest.split_once('+').ok_or_else(bad)?;
                Ok(CrashPoint::InsideStore { op: num(op)? as usize, delay_ns: ns(d)? })
            }
            "time" => {
                let p = num(rest.strip_suffix("permille").ok_or_else(bad)?)?;
                if p > 1000 {
                    return Err(bad());
                }
                Ok(CrashPoint::AtTime { permille: p as u32 })
            }
            "truncate" => {
                let (op, len) = rest.split_once('@').ok_or_else(bad)?;
                Ok(CrashPoint::TruncateBefore { op: num(op)? as usize, len: num(len)? })
            }
            "capacity" => Ok(CrashPoint::Capacity { pages: num(rest)? }),
            _ => Err(bad()),
        }
    }
}

impl From<CrashPoint> for String {
    fn from(p: CrashPoint) -> String {
        p.to_string()
    }
}

impl TryFrom<String> for CrashPoint {
    type Error = String;
    fn try_from(s: String) -> Result<Self, Self::Error> {
        s.parse()
    }
}

/// Which crash points a cell runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(into = "String", try_from = "String")]
pub enum PointSelection {
    /// Every op boundary, plus a few points inside each large store.
    All,
    /// Every op boundary only: no timed points, so every count in the
    /// report is deterministic (what snapshot tests use).
    Boundaries,
    /// `n` points sampled from the seed (boundaries, inside stores, random times).
    Random(u32),
}

impl fmt::Display for PointSelection {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            PointSelection::All => f.write_str("all"),
            PointSelection::Boundaries => f.write_str("boundaries"),
            PointSelection::Random(n) => write!(f, "random:{n}"),
        }
    }
}

impl FromStr for PointSelection {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "all" => return Ok(PointSelection::All),
            "boundaries" => return Ok(PointSelection::Boundaries),
            _ => {}
        }
        match s.strip_prefix("random:").map(str::parse::<u32>) {
            Some(Ok(n)) if n > 0 => Ok(PointSelection::Random(n)),
            _ => Err(format!("bad --points `{s}` (expected `all`, `boundaries` or `random:N` with N ≥ 1)")),
        }
    }
}

impl From<PointSelection> for String {
    fn from(p: PointSelection) -> String {
        p.to_string()
    }
}

impl TryFrom<String> for PointSelection {
    type Error = String;
    fn try_from(s: String) -> Result<Self, Self::Error> {
        s.parse()
    }
}

/// Stores at least this long get crash points inside them.
pub const LARGE_STORE: u64 = 16 * 1024;
/// Points inside each large store under `--points all`.
pub const INSIDE_POINTS_PER_LARGE_STORE: usize = 3;

/// The crash points of one cell, in a deterministic order: a pure function
/// of the arguments.
pub fn crash_points(spec: &WriterSpec, kind: CrashKind, selection: PointSelection, seed: u64) -> Vec<CrashPoint> {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let n = spec.ops.len();
    let large: Vec<(usize, u64)> = spec
        .ops
        .iter()
        .enumerate()
        .filter_map(|(i, op)| match op {
            Op::Store { len, .. } if *len >= LARGE_STORE => Some((i, *len)),
            _ => None,
        })
        .collect();
    // A child copies ~8 bytes/ns plus ~1 µs per page it faults in, so a
    // delay below len/8 ns after the store started mostly lands inside it.
    let inside = |rng: &mut ChaCha8Rng, op: usize, len: u64| CrashPoint::InsideStore {
        op,
        delay_ns: rng.random_range(0..(len / 8).max(1)),
    };
    let truncate_len = |rng: &mut ChaCha8Rng| {
        let pages = spec.page_count();
        rng.random_range(0..pages) * spec.page_size
    };
    let stores_after = |k: usize| spec.ops[k..].iter().any(|op| matches!(op, Op::Store { .. }));
    match (kind, selection) {
        (CrashKind::Clean, _) => vec![CrashPoint::None],
        // Not columns of the matrix (`matrix::check_matrix_config` refuses
        // them): built-in writers meet power loss as a model of their
        // SIGKILLs.
        (CrashKind::PowerLoss | CrashKind::PowerLossReal | CrashKind::EioSync, _) => Vec::new(),
        (CrashKind::Enospc, _) if spec.mapping != MappingKind::Shared => Vec::new(),
        // Every capacity from none to the run's peak (the control).
        (CrashKind::Enospc, PointSelection::All) => {
            (0..=peak_pages(spec)).map(|pages| CrashPoint::Capacity { pages }).collect()
        }
        // One capacity per store that allocates: exactly the pages held
        // before it (it faults on its first new page), then the control.
        (CrashKind::Enospc, PointSelection::Boundaries) => {
            let mut pages: Vec<u64> = allocating_stores(spec).iter().map(|s| s.before).collect();
            pages.push(peak_pages(spec));
            pages.sort_unstable();
            pages.dedup();
            pages.into_iter().map(|pages| CrashPoint::Capacity { pages }).collect()
        }
        (CrashKind::Enospc, PointSelection::Random(m)) => {
            let peak = peak_pages(spec);
            (0..m).map(|_| CrashPoint::Capacity { pages: rng.random_range(0..=peak) }).collect()
        }
        (CrashKind::Sigkill | CrashKind::Abort, PointSelection::All | PointSelection::Boundaries) => {
            let mut points: Vec<CrashPoint> = (0..=n).map(CrashPoint::BeforeOp).collect();
            if kind == CrashKind::Sigkill && selection == PointSelection::All {
                for &(op, len) in &large {
                    for _ in 0..INSIDE_POINTS_PER_LARGE_STORE {
                        points.push(inside(&mut rng, op, len));
                    }
                }
            }
            points
        }
        (CrashKind::Sigbus, PointSelection::All | PointSelection::Boundaries) => (0..n)
            .filter(|&k| stores_after(k))
            .map(|k| CrashPoint::TruncateBefore { op: k, len: truncate_len(&mut rng) })
            .collect(),
        (CrashKind::Abort, PointSelection::Random(m)) => {
            (0..m).map(|_| CrashPoint::BeforeOp(rng.random_range(0..=n))).collect()
        }
        (CrashKind::Sigkill, PointSelection::Random(m)) => (0..m)
            .map(|_| match rng.random_range(0..3u8) {
                0 => CrashPoint::BeforeOp(rng.random_range(0..=n)),
                1 if !large.is_empty() => {
                    let (op, len) = large[rng.random_range(0..large.len())];
                    inside(&mut rng, op, len)
                }
                _ => CrashPoint::AtTime { permille: rng.random_range(0..=1000) },
            })
            .collect(),
        (CrashKind::Sigbus, PointSelection::Random(m)) => {
            let candidates: Vec<usize> = (0..n).filter(|&k| stores_after(k)).collect();
            (0..m)
                .map(|_| CrashPoint::TruncateBefore {
                    op: candidates[rng.random_range(0..candidates.len())],
                    len: truncate_len(&mut rng),
                })
                .collect()
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::page_allocation::capacity_fault;
    use crate::spec::{SyncPolicy, WorkloadParams};

    fn spec() -> WriterSpec {
        WriterSpec::generate(
            &WorkloadParams::with_file_size(128 * 1024),
            MappingKind::Shared,
            SyncPolicy::MsSyncEach,
            4096,
            5,
        )
        .unwrap()
    }

    #[test]
    fn all_points_cover_every_boundary_and_large_stores() {
        let s = spec();
        let points = crash_points(&s, CrashKind::Sigkill, PointSelection::All, 1);
        for k in 0..=s.ops.len() {
            assert!(points.contains(&CrashPoint::BeforeOp(k)));
        }
        let large = s.ops.iter().filter(|op| matches!(op, Op::Store { len, .. } if *len >= LARGE_STORE)).count();
        assert!(large > 0);
        let inside = points.iter().filter(|p| matches!(p, CrashPoint::InsideStore { .. })).count();
        assert_eq!(inside, large * INSIDE_POINTS_PER_LARGE_STORE);
        for p in &points {
            p.fits(CrashKind::Sigkill, &s).unwrap();
        }
        let abort = crash_points(&s, CrashKind::Abort, PointSelection::All, 1);
        assert_eq!(abort.len(), s.ops.len() + 1);
        let bounds = crash_points(&s, CrashKind::Sigkill, PointSelection::Boundaries, 1);
        assert_eq!(bounds, (0..=s.ops.len()).map(CrashPoint::BeforeOp).collect::<Vec<_>>());
    }

    #[test]
    fn sigbus_points_precede_a_store_and_truncate_inside_the_file() {
        let s = spec();
        for p in crash_points(&s, CrashKind::Sigbus, PointSelection::All, 2) {
            let CrashPoint::TruncateBefore { op, len } = p else { panic!("{p}") };
            assert!(s.ops[op..].iter().any(|o| matches!(o, Op::Store { .. })));
            assert!(len < s.file_size && len % 4096 == 0);
        }
    }

    #[test]
    fn random_points_are_seeded() {
        let s = spec();
        let a = crash_points(&s, CrashKind::Sigkill, PointSelection::Random(50), 9);
        let b = crash_points(&s, CrashKind::Sigkill, PointSelection::Random(50), 9);
        let c = crash_points(&s, CrashKind::Sigkill, PointSelection::Random(50), 10);
        assert_eq!(a, b);
        assert_ne!(a, c);
        assert_eq!(a.len(), 50);
        assert!(a.iter().any(|p| matches!(p, CrashPoint::AtTime { .. })));
    }

    #[test]
    fn point_text_round_trips() {
        for p in [
            CrashPoint::BeforeOp(3),
            CrashPoint::InsideStore { op: 7, delay_ns: 1500 },
            CrashPoint::AtTime { permille: 420 },
            CrashPoint::TruncateBefore { op: 2, len: 8192 },
            CrashPoint::Capacity { pages: 17 },
            CrashPoint::None,
        ] {
            assert_eq!(p.to_string().parse::<CrashPoint>().unwrap(), p);
        }
        assert!("before:x".parse::<CrashPoint>().is_err());
        assert!("inside:3+5".parse::<CrashPoint>().is_err());
        assert!("random:0".parse::<PointSelection>().is_err());
        assert_eq!("capacity:0".parse::<CrashPoint>(), Ok(CrashPoint::Capacity { pages: 0 }));
        assert!("capacity:".parse::<CrashPoint>().is_err());
        assert!("capacity:-1".parse::<CrashPoint>().unwrap_err().contains("capacity:PAGES"));
    }

    #[test]
    fn enospc_points_spread_capacities_over_the_run_and_keep_one_control() {
        let shared = WriterSpec::generate(
            &WorkloadParams::with_file_size(128 * 1024),
            MappingKind::Shared,
            SyncPolicy::None,
            4096,
            5,
        )
        .unwrap();
        let peak = peak_pages(&shared);
        assert!(peak > 1 && peak <= shared.page_count());
        let all = crash_points(&shared, CrashKind::Enospc, PointSelection::All, 1);
        assert_eq!(all, (0..=peak).map(|pages| CrashPoint::Capacity { pages }).collect::<Vec<_>>());
        let controls = |ps: &[CrashPoint]| {
            ps.iter()
                .filter(|p| matches!(p, CrashPoint::Capacity { pages } if capacity_fault(&shared, *pages).is_none()))
                .count()
        };
        assert_eq!(controls(&all), 1, "exactly one capacity where nothing faults");
        let bounds = crash_points(&shared, CrashKind::Enospc, PointSelection::Boundaries, 1);
        assert_eq!(controls(&bounds), 1);
        // Each allocating store is where one boundary capacity faults.
        let faulting: Vec<usize> = bounds
            .iter()
            .filter_map(|p| match p {
                CrashPoint::Capacity { pages } => capacity_fault(&shared, *pages),
                _ => None,
            })
            .collect();
        assert_eq!(faulting, allocating_stores(&shared).iter().map(|s| s.op).collect::<Vec<_>>());
        let random = crash_points(&shared, CrashKind::Enospc, PointSelection::Random(40), 3);
        assert_eq!(random.len(), 40);
        assert_eq!(random, crash_points(&shared, CrashKind::Enospc, PointSelection::Random(40), 3));
        for p in all.iter().chain(&bounds).chain(&random) {
            p.fits(CrashKind::Enospc, &shared).unwrap();
        }
        let private = WriterSpec { mapping: MappingKind::Private, ..shared.clone() };
        assert!(crash_points(&private, CrashKind::Enospc, PointSelection::All, 1).is_empty());
        assert!(CrashPoint::Capacity { pages: 1 }.fits(CrashKind::Enospc, &private).is_err());
        assert!(CrashPoint::Capacity { pages: 1 }.fits(CrashKind::Sigkill, &shared).is_err());
        assert!(CrashPoint::BeforeOp(1).fits(CrashKind::Enospc, &shared).is_err());
    }

    #[test]
    fn points_that_do_not_fit_are_refused() {
        let s = spec();
        assert!(CrashPoint::BeforeOp(0).fits(CrashKind::Sigbus, &s).is_err());
        assert!(CrashPoint::BeforeOp(s.ops.len() + 1).fits(CrashKind::Sigkill, &s).is_err());
        let ack = s.ops.iter().position(|o| matches!(o, Op::Ack { .. })).unwrap();
        assert!(CrashPoint::InsideStore { op: ack, delay_ns: 1 }.fits(CrashKind::Sigkill, &s).is_err());
    }
}
