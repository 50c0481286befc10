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
//! The map holds a 64-bit digest of it ([`Digest`], fast and weak) and the
//! choice that produced it. The digest only finds candidates: on a digest match the
//! candidate's rendering is rebuilt and compared byte for byte, so a
//! collision cannot pass a state off as one it is not (it only costs that
//! comparison). A wider digest would buy nothing but hashing time, which
//! is paid on every state.
//!
//! Architecture Invariant: pure.

use std::collections::HashMap;
use std::os::unix::ffi::OsStrExt;

use super::space::{Digits, StateSpace};
use crate::report::checker_verdict::CheckerVerdict;

/// The directory `bits` of `space` leaves, as bytes (see the module docs),
/// fed piece by piece to `out`.
fn render_into(space: &StateSpace, bits: &Digits, out: &mut dyn FnMut(&[u8])) {
    let layout = space.layout(bits);
    let put = |tag: u8, bytes: &[u8], out: &mut dyn FnMut(&[u8])| {
        out(&[tag]);
        out(&(bytes.len() as u64).to_le_bytes());
        out(bytes);
    };
    for d in &layout.dirs {
        put(b'd', d.as_os_str().as_bytes(), out);
    }
    // Links of one file: named by the position of the file's first name,
    // not by its index (two states with the same names and bytes are the
    // same directory whatever inode lives behind them).
    let mut first_name: HashMap<usize, usize> = HashMap::new();
    for (i, (path, f)) in layout.files.iter().enumerate() {
        put(b'f', path.as_os_str().as_bytes(), out);
        match first_name.get(f) {
            Some(&j) => put(b'=', &(j as u64).to_le_bytes(), out),
            None => {
                first_name.insert(*f, i);
                let size = layout.sizes[*f].unwrap_or(0);
                put(b'+', &space.content(*f, bits, size), out);
            }
        }
    }
    for (path, target) in &layout.symlinks {
        put(b'l', path.as_os_str().as_bytes(), out);
        put(b'>', target, out);
    }
}

/// The rendering as one byte string.
pub(crate) fn render(space: &StateSpace, bits: &Digits) -> Vec<u8> {
    let mut v = Vec::new();
    render_into(space, bits, &mut |b| v.extend_from_slice(b));
    v
}

/// A 64-bit digest of a byte stream: two lanes of multiply-rotate over
/// 8-byte words (the FxHash step, with two constants), several GB/s. Only
/// a filter: equal digests are confirmed by comparing the bytes, so a weak
/// hash costs comparisons, never a wrong verdict.
#[derive(Default)]
struct Digest {
    a: u64,
    b: u64,
    pending: [u8; 8],
    held: usize,
    len: u64,
}

impl Digest {
    fn word(&mut self, w: u64) {
        self.a = (self.a.rotate_left(5) ^ w).wrapping_mul(0x51_7c_c1_b7_27_22_0a_95);
        self.b = (self.b.rotate_left(23) ^ w).wrapping_mul(0x9e_37_79_b9_7f_4a_7c_15);
    }

    fn write(&mut self, mut bytes: &[u8]) {
        self.len += bytes.len() as u64;
        if self.held > 0 {
            let n = (8 - self.held).min(bytes.len());
            self.pending[self.held..self.held + n].copy_from_slice(&bytes[..n]);
            self.held += n;
            bytes = &bytes[n..];
            if self.held < 8 {
                return;
            }
            self.word(u64::from_le_bytes(self.pending));
            self.held = 0;
        }
        let mut words = bytes.chunks_exact(8);
        for w in &mut words {
            self.word(u64::from_le_bytes(w.try_into().expect("8 bytes")));
        }
        let rest = words.remainder();
        self.pending[..rest.len()].copy_from_slice(rest);
        self.held = rest.len();
    }

    fn finish(mut self) -> u64 {
        let mut last = [0u8; 8];
        last[..self.held].copy_from_slice(&self.pending[..self.held]);
        self.word(u64::from_le_bytes(last));
        self.word(self.len);
        self.a ^ self.b.rotate_left(32)
    }
}

/// A state's digest, made once per state (its rendering is rebuilt only
/// to confirm a digest match).
pub(crate) struct StateDigest {
    digest: u64,
}

impl StateDigest {
    pub fn of(space: &StateSpace, bits: &Digits) -> StateDigest {
        let mut d = Digest::default();
        render_into(space, bits, &mut |b| d.write(b));
        StateDigest { digest: d.finish() }
    }
}

/// The states of one trial checked so far, with their verdicts.
#[derive(Default)]
pub(crate) struct SeenStates {
    by_digest: HashMap<u64, Vec<(Digits, CheckerVerdict)>>,
}

impl SeenStates {
    /// The verdict of a state already checked whose directory is exactly
    /// that of `bits` (whose digest is `state`).
    pub fn verdict(&self, space: &StateSpace, bits: &Digits, state: &StateDigest) -> Option<CheckerVerdict> {
        let candidates = self.by_digest.get(&state.digest)?;
        let mine = render(space, bits);
        candidates.iter().find(|(seen, _)| render(space, seen) == mine).map(|(_, v)| v.clone())
    }

    /// Remember that the state `bits` (digest `state`) got `verdict`.
    pub fn record(&mut self, bits: &Digits, state: &StateDigest, verdict: &CheckerVerdict) {
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
        let mut x = Digits::floor(4);
        let mut y = Digits::floor(4);
        y.set(3, 1); // the unit past the size: invisible at the floor size
        assert_eq!(render(&s, &x), render(&s, &y), "the size hides the third unit");
        x.set(0, 1);
        y.set(0, 1);
        assert_ne!(render(&s, &x), render(&s, &y), "at the newest size it shows");
        let mut z = Digits::floor(4);
        z.set(1, 1);
        assert_ne!(render(&s, &Digits::floor(4)), render(&s, &z), "a unit inside the size shows");
    }

    #[test]
    fn a_verdict_is_reused_only_for_a_byte_identical_state() {
        let s = test_space(&[("a", &[1; 8], &[2; 12])], &[], 4, 4);
        let floor = Digits::floor(4);
        let mut hidden = floor.clone();
        hidden.set(3, 1);
        let mut shown = floor.clone();
        shown.set(1, 1);
        let mut seen = SeenStates::default();
        let bad = CheckerVerdict::Violation { reason: "rec 1 lost".into() };
        seen.record(&floor, &StateDigest::of(&s, &floor), &bad);
        assert_eq!(seen.verdict(&s, &hidden, &StateDigest::of(&s, &hidden)), Some(bad.clone()));
        assert_eq!(seen.verdict(&s, &shown, &StateDigest::of(&s, &shown)), None);
        // A forged digest match with other bytes is not taken.
        let forged = StateDigest { digest: StateDigest::of(&s, &floor).digest };
        assert_eq!(seen.verdict(&s, &shown, &forged), None, "the bytes are compared, not only the digest");
    }

    #[test]
    fn the_digest_does_not_depend_on_how_the_bytes_are_split() {
        let bytes: Vec<u8> = (0..100u8).collect();
        let whole = {
            let mut d = Digest::default();
            d.write(&bytes);
            d.finish()
        };
        for cuts in [[1, 2, 50], [7, 8, 9], [0, 99, 100]] {
            let mut d = Digest::default();
            let mut at = 0;
            for c in cuts {
                d.write(&bytes[at..c]);
                at = c;
            }
            d.write(&bytes[at..]);
            assert_eq!(d.finish(), whole, "{cuts:?}");
        }
        let mut other = Digest::default();
        other.write(&bytes[..99]);
        assert_ne!(other.finish(), whole, "a shorter stream differs");
    }
}
