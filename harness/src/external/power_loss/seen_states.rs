//! The power-loss states of one trial already judged, by what their
//! directory holds: a state whose directory is byte-identical to one
//! already checked takes that state's verdict without running the checker.
//!
//! Different choices can leave the same directory: a unit of a file whose
//! creation was lost, or past the size the file has in that state, shows
//! nothing, so every choice for it gives the same bytes (and the acks of a
//! trial are the same in all its states). A checker is a function of the
//! directory and the acks (protocol v1 says it judges them; a checker that
//! also looks at the clock or at randomness is not repeatable anyway), so
//! the skip never changes a verdict.
//!
//! A state is keyed by its *rendering*: every directory, every name of a
//! regular file with which names are links of one file, every symlink and
//! its target, every file's size and bytes, in the layout's (sorted) order.
//! The map holds a 64-bit digest of it (SipHash-1-3) and the choice that
//! produced it. The digest only finds candidates: on a digest match the
//! candidate's rendering is rebuilt and compared byte for byte, so a
//! collision cannot pass a state off as one it is not (it only costs that
//! comparison). A wider digest would buy nothing but hashing time, which
//! is paid on every state.
//!
//! Architecture Invariant: pure.

use std::collections::HashMap;
use std::hash::{Hash, Hasher};
use std::os::unix::ffi::OsStrExt;

use super::space::{Bits, StateSpace};
use crate::report::checker_verdict::CheckerVerdict;

/// The directory `bits` of `space` leaves, as bytes (see the module docs).
pub(crate) fn render(space: &StateSpace, bits: &Bits) -> Vec<u8> {
    let layout = space.layout(bits);
    let mut out = Vec::new();
    let put = |bytes: &[u8], out: &mut Vec<u8>| {
        out.extend_from_slice(&(bytes.len() as u64).to_le_bytes());
        out.extend_from_slice(bytes);
    };
    for d in &layout.dirs {
        out.push(b'd');
        put(d.as_os_str().as_bytes(), &mut out);
    }
    // Links of one file: named by the position of the file's first name,
    // not by its index (two states with the same names and bytes are the
    // same directory whatever inode lives behind them).
    let mut first_name: HashMap<usize, usize> = HashMap::new();
    for (i, (path, f)) in layout.files.iter().enumerate() {
        out.push(b'f');
        put(path.as_os_str().as_bytes(), &mut out);
        match first_name.get(f) {
            Some(&j) => {
                out.push(b'=');
                out.extend_from_slice(&(j as u64).to_le_bytes());
            }
            None => {
                first_name.insert(*f, i);
                let size = layout.sizes[*f].unwrap_or(0);
                out.push(b'+');
                put(&space.content(*f, bits, size), &mut out);
            }
        }
    }
    for (path, target) in &layout.symlinks {
        out.push(b'l');
        put(path.as_os_str().as_bytes(), &mut out);
        put(target, &mut out);
    }
    out
}

fn digest(rendering: &[u8]) -> u64 {
    let mut h = std::collections::hash_map::DefaultHasher::new();
    rendering.hash(&mut h);
    h.finish()
}

/// A state's rendering and digest, made once per state.
pub(crate) struct Rendered {
    bytes: Vec<u8>,
    digest: u64,
}

impl Rendered {
    pub fn of(space: &StateSpace, bits: &Bits) -> Rendered {
        let bytes = render(space, bits);
        Rendered { digest: digest(&bytes), bytes }
    }
}

/// The states of one trial checked so far, with their verdicts.
#[derive(Default)]
pub(crate) struct SeenStates {
    by_digest: HashMap<u64, Vec<(Bits, CheckerVerdict)>>,
}

impl SeenStates {
    /// The verdict of a state already checked whose directory is exactly
    /// `state`'s.
    pub fn verdict(&self, space: &StateSpace, state: &Rendered) -> Option<CheckerVerdict> {
        let candidates = self.by_digest.get(&state.digest)?;
        candidates.iter().find(|(bits, _)| render(space, bits) == state.bytes).map(|(_, v)| v.clone())
    }

    /// Remember that the state `bits` (rendered as `state`) got `verdict`.
    pub fn record(&mut self, bits: &Bits, state: &Rendered, verdict: &CheckerVerdict) {
        self.by_digest.entry(state.digest).or_default().push((bits.clone(), verdict.clone()));
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::external::power_loss::space::test_space;

    #[test]
    fn states_that_differ_only_where_nothing_shows_render_the_same_and_others_do_not() {
        // File a: floor 8 bytes, newest 12 (a size change, dim 0), 3 units
        // of 4 bytes (dims 1..=3); the third unit lies past the floor size.
        let s = test_space(&[("a", &[1; 8], &[2; 12])], &[], 4, 4);
        assert_eq!(s.dim_count(), 4);
        let mut x = Bits::all(4, false);
        let mut y = Bits::all(4, false);
        y.set(3, true); // the unit past the size: invisible at the floor size
        assert_eq!(render(&s, &x), render(&s, &y), "the size hides the third unit");
        x.set(0, true);
        y.set(0, true);
        assert_ne!(render(&s, &x), render(&s, &y), "at the newest size it shows");
        let mut z = Bits::all(4, false);
        z.set(1, true);
        assert_ne!(render(&s, &Bits::all(4, false)), render(&s, &z), "a unit inside the size shows");
    }

    #[test]
    fn a_verdict_is_reused_only_for_a_byte_identical_state() {
        let s = test_space(&[("a", &[1; 8], &[2; 12])], &[], 4, 4);
        let floor = Bits::all(4, false);
        let mut hidden = floor.clone();
        hidden.set(3, true);
        let mut shown = floor.clone();
        shown.set(1, true);
        let mut seen = SeenStates::default();
        let bad = CheckerVerdict::Violation { reason: "rec 1 lost".into() };
        seen.record(&floor, &Rendered::of(&s, &floor), &bad);
        assert_eq!(seen.verdict(&s, &Rendered::of(&s, &hidden)), Some(bad.clone()));
        assert_eq!(seen.verdict(&s, &Rendered::of(&s, &shown)), None);
        // A forged digest match with other bytes is not taken.
        let forged = Rendered { bytes: render(&s, &shown), digest: Rendered::of(&s, &floor).digest };
        assert_eq!(seen.verdict(&s, &forged), None, "the bytes are compared, not only the digest");
    }
}
