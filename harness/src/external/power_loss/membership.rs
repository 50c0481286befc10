//! Is a real post-cut directory one of the states the simulated power-loss
//! model allows ([`StateSpace`])? And, for the units where the model leaves
//! a choice, which one did the real cut make?
//!
//! The state space is a product (namespace operations, then each file's
//! units), so it is never enumerated whole: only the namespace part is
//! walked (at most 2^[`MAX_NS_UNITS`] choices, resolved and deduplicated
//! by [`crate::namespace::NsModel::canonical`]), and for each namespace
//! state the directory's names, directories and symlinks are compared with
//! the state's layout, each file's size with the size the state gives it,
//! and each unit (page or `--tear` sector) of each file, on its own, with
//! the versions that unit may hold: its floor, any intermediate version the
//! write history saw, or its newest content (zeros past an image's end). A
//! unit's check does not depend on the other units, so the directory fits
//! the namespace state exactly when every name and every unit fits.
//!
//! A directory no namespace state fits is a **model soundness violation**:
//! the real kernel left something the model says a power loss cannot.
//!
//! Architecture Invariant: pure. The post-cut directory is given as data.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::fmt::Write as _;
use std::path::PathBuf;

use super::space::{Digits, Dim, Layout, StateSpace};
use crate::namespace::NsOp;
use crate::report::external_real_cut::{Membership, OpKept, OpOutcome, UnitKept};

/// More namespace units than this are not walked (2^n namespace choices):
/// the directory is then reported as not judged, never as allowed.
pub const MAX_NS_UNITS: usize = 16;

/// A directory a real cut left, as read back after the remount: every path
/// relative to the trial directory.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RealDir {
    pub files: BTreeMap<PathBuf, Vec<u8>>,
    /// Every directory but the root.
    pub dirs: BTreeSet<PathBuf>,
    pub symlinks: BTreeMap<PathBuf, Vec<u8>>,
    /// Entries that are none of the above (devices, fifos, sockets).
    pub others: BTreeSet<PathBuf>,
}

/// The word of an operation's kind (`create`, `rename`, ...).
pub fn op_kind(op: &NsOp) -> &'static str {
    match op {
        NsOp::Create { .. } | NsOp::CreateUnnamed { .. } => "create",
        NsOp::Link { .. } => "link",
        NsOp::Unlink { .. } => "unlink",
        NsOp::Rename { .. } => "rename",
        _ => "size",
    }
}

/// How file `f`'s name `path` fits: per open unit, what it held; or why not.
type FileFit = Result<Vec<UnitKept>, String>;

/// Judge `dir` against `space`.
pub fn judge(space: &StateSpace, dir: &RealDir) -> Membership {
    let n = space.op_count();
    let mut out = Membership {
        allowed: false,
        forbidden: None,
        not_judged: false,
        namespace_states: 0,
        units: BTreeMap::new(),
        sizes_beyond_floor: 0,
        operations: Vec::new(),
    };
    if n > MAX_NS_UNITS {
        out.not_judged = true;
        out.forbidden = Some(format!(
            "not judged: {n} namespace operations are open, more than the {MAX_NS_UNITS} whose combinations are walked"
        ));
        return out;
    }
    let vectors: BTreeSet<Vec<bool>> = (0u64..1 << n).map(|mask| space.ns.canonical(|u| mask >> u & 1 == 1)).collect();
    out.namespace_states = vectors.len() as u64;
    let mut fits: HashMap<(usize, u64, PathBuf), FileFit> = HashMap::new();
    let mut fitting: Vec<(&Vec<bool>, Layout)> = Vec::new();
    let mut misses: Vec<String> = Vec::new();
    for v in &vectors {
        let mut digits = space.extreme(true);
        for (u, &p) in v.iter().enumerate() {
            digits.set(u, p as u32);
        }
        let layout = space.layout(&digits);
        match fit(space, dir, &layout, &mut fits) {
            Ok(()) => fitting.push((v, layout)),
            Err(why) => misses.push(why),
        }
    }
    let Some((_, layout)) = fitting.first() else {
        out.forbidden = Some(forbidden_text(dir, &misses));
        return out;
    };
    out.allowed = true;
    let floor = space.ns.floor();
    for (path, f) in &layout.files {
        let size = layout.sizes[*f].unwrap_or(0);
        if let Some(Ok(kept)) = fits.get(&(*f, size, path.clone())) {
            for k in kept {
                *out.units.entry(*k).or_default() += 1;
            }
        }
    }
    for (f, size) in layout.sizes.iter().enumerate() {
        let durable = floor.sizes.get(&space.files[f].id).copied().unwrap_or(0);
        if size.is_some_and(|s| s > durable) {
            out.sizes_beyond_floor += 1;
        }
    }
    out.operations = (0..n)
        .map(|u| {
            let kept = fitting.iter().filter(|(v, _)| v[u]).count();
            let outcome = match kept {
                0 => OpKept::Lost,
                k if k == fitting.len() => OpKept::Kept,
                _ => OpKept::Undetermined,
            };
            let event = space.ns.units()[u].event;
            OpOutcome {
                kind: op_kind(&space.ns.trace().events[event].op).to_owned(),
                operation: space.ns.describe(u),
                outcome,
            }
        })
        .collect();
    out
}

fn shown(paths: impl Iterator<Item = PathBuf>) -> String {
    let v: Vec<String> = paths.map(|p| format!("{:?}", p.display().to_string())).collect();
    if v.is_empty() {
        "none".into()
    } else {
        v.join(", ")
    }
}

/// Does the directory fit the namespace state whose layout is `layout`?
fn fit(
    space: &StateSpace,
    dir: &RealDir,
    layout: &Layout,
    fits: &mut HashMap<(usize, u64, PathBuf), FileFit>,
) -> Result<(), String> {
    if let Some(p) = dir.others.iter().next() {
        return Err(format!("{:?} is neither a regular file, a directory nor a symlink", p.display().to_string()));
    }
    let dirs: BTreeSet<PathBuf> = layout.dirs.iter().cloned().collect();
    if dirs != dir.dirs {
        return Err(format!(
            "directories {} where the state has {}",
            shown(dir.dirs.iter().cloned()),
            shown(dirs.into_iter())
        ));
    }
    let links: BTreeMap<PathBuf, Vec<u8>> = layout.symlinks.iter().cloned().collect();
    if links != dir.symlinks {
        return Err(format!(
            "symlinks {} where the state has {}",
            shown(dir.symlinks.keys().cloned()),
            shown(links.into_keys())
        ));
    }
    let names: Vec<&PathBuf> = layout.files.iter().map(|(p, _)| p).collect();
    if names.len() != dir.files.len() || !names.iter().all(|p| dir.files.contains_key(*p)) {
        return Err(format!(
            "files {} where the state has {}",
            shown(dir.files.keys().cloned()),
            shown(names.into_iter().cloned())
        ));
    }
    for (path, f) in &layout.files {
        let size = layout.sizes[*f].unwrap_or(0);
        let fit = fits
            .entry((*f, size, path.clone()))
            .or_insert_with(|| fit_file(space, *f, size, &dir.files[path], &path.display().to_string()));
        fit.clone()?;
    }
    Ok(())
}

/// Does `bytes` (a real file) fit file `f` at `size`: each open unit at one
/// of its versions, every other unit as both images have it?
fn fit_file(space: &StateSpace, f: usize, size: u64, bytes: &[u8], name: &str) -> FileFit {
    if bytes.len() as u64 != size {
        return Err(format!("{name:?} is {} bytes where the state has {size}", bytes.len()));
    }
    let file = &space.files[f];
    let mut scratch: Digits = space.extreme(true);
    let mut kept = Vec::new();
    for u in 0..size.div_ceil(space.unit) {
        let start = (u * space.unit) as usize;
        let end = (((u + 1) * space.unit).min(size)) as usize;
        let real = &bytes[start..end];
        let holds = |expected: &[u8], zeros: usize| {
            real.len() == expected.len() + zeros
                && real[..expected.len()] == *expected
                && real[expected.len()..].iter().all(|&b| b == 0)
        };
        match space.find(f, u) {
            None => {
                // Floor and newest agree here: the newest image, zeros past its end.
                let n = file.newest.len().clamp(start, end);
                if !holds(&file.newest[start..n], end - n) {
                    return Err(format!(
                        "{name:?} {} holds bytes that are not its durable (and only) content",
                        space.unit_name(u)
                    ));
                }
            }
            Some(d) => {
                let newest = space.newest_digit(d);
                let matching: Vec<u32> = (0..=newest)
                    .filter(|&digit| {
                        scratch.set(d, digit);
                        let (_, expected, zeros) = space.unit_bytes(d, &scratch, size);
                        holds(expected, zeros)
                    })
                    .collect();
                let floor = matching.contains(&0);
                let top = matching.contains(&newest);
                let middle = matching.iter().any(|&m| m != 0 && m != newest);
                kept.push(match (floor, middle, top) {
                    (false, false, false) => {
                        debug_assert!(matches!(space.dims()[d], Dim::Unit { .. }));
                        return Err(format!(
                            "{name:?} {} holds none of the {} version(s) the model allows it (its floor, {} \
                             intermediate version(s) the write history saw, its newest content)",
                            space.unit_name(u),
                            newest + 1,
                            newest - 1
                        ));
                    }
                    (true, false, false) => UnitKept::Floor,
                    (false, true, false) => UnitKept::Intermediate,
                    (false, false, true) => UnitKept::Newest,
                    _ => UnitKept::Ambiguous,
                });
            }
        }
    }
    Ok(kept)
}

/// A violation in words: what the directory holds, and the nearest misses.
fn forbidden_text(dir: &RealDir, misses: &[String]) -> String {
    let mut s = format!("the post-cut directory holds files {}", shown(dir.files.keys().cloned()));
    if !dir.dirs.is_empty() {
        let _ = write!(s, " and directories {}", shown(dir.dirs.iter().cloned()));
    }
    // A content or size miss says more than a name miss: show those first.
    let mut distinct: Vec<&String> = Vec::new();
    for m in misses.iter().filter(|m| !m.starts_with("files ")).chain(misses.iter().filter(|m| m.starts_with("files ")))
    {
        if !distinct.contains(&m) {
            distinct.push(m);
        }
    }
    let _ = write!(s, "; no state of the model fits it: ");
    let shown: Vec<&str> = distinct.iter().take(4).map(|m| m.as_str()).collect();
    s.push_str(&shown.join("; "));
    if distinct.len() > 4 {
        let _ = write!(s, "; and {} more", distinct.len() - 4);
    }
    s
}

#[cfg(test)]
#[path = "membership_tests.rs"]
mod tests;
