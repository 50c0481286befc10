//! Is a real file one the power-loss model allows? The byte-level
//! membership check the real cuts judge their files with
//! ([`PowerLossModel::allows`]), and the words that say why a file is not.
//!
//! Architecture Invariant: pure.

use serde::{Deserialize, Serialize};

use super::space::PowerLossModel;
use super::unit::{Piece, Unit, UnitId, UnitVersion, VersionOrigin};
use crate::live_image::Owner;
use crate::spec::{pattern_byte, ByteRange, Op};

/// Why a file cannot be a state of the model.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error, Serialize, Deserialize)]
#[serde(tag = "forbidden", rename_all = "snake_case")]
pub enum Forbidden {
    #[error("the file is {len} bytes; the model allows only {allowed:?}")]
    Size { len: u64, allowed: Vec<u64> },
    #[error("only {have} bytes given for a file of {len} bytes")]
    ShortBuffer { len: u64, have: u64 },
    #[error("{unit} (bytes {}..{}) {detail}", range.start, range.end)]
    Content { unit: UnitId, range: ByteRange, detail: String },
}

impl PowerLossModel<'_> {
    /// Is this file (`len` bytes, taken from the front of `state_bytes`) one
    /// the model allows? Checks the size, then every unit against its allowed
    /// versions; a unit may also hold a store **half applied** (any mix of
    /// the old and new bytes of a store that made one of its allowed
    /// versions from the previous one; see [`Self::half_applied_store`]).
    /// Names the first forbidden unit.
    pub fn allows(&self, state_bytes: &[u8], len: u64) -> Result<(), Forbidden> {
        if self.size_index(len).is_none() {
            return Err(Forbidden::Size { len, allowed: self.sizes().to_vec() });
        }
        if (state_bytes.len() as u64) < len {
            return Err(Forbidden::ShortBuffer { len, have: state_bytes.len() as u64 });
        }
        let file = &state_bytes[..len as usize];
        let mut pos = 0u64;
        for unit in self.units() {
            if unit.range.start >= len {
                break;
            }
            self.check_untouched(file, ByteRange::new(pos, unit.range.start))?;
            self.check_unit(unit, file, len)?;
            pos = unit.range.end;
        }
        self.check_untouched(file, ByteRange::new(pos.min(len), len))
    }

    /// Units the trial never changed must hold the initial content.
    fn check_untouched(&self, file: &[u8], r: ByteRange) -> Result<(), Forbidden> {
        let (s, e) = (r.start as usize, r.end as usize);
        if file[s..e] == self.payloads().base[s..e] {
            return Ok(());
        }
        let bad = s + (s..e).position(|i| file[i] != self.payloads().base[i]).expect("differs");
        let us = self.unit_size();
        let start = bad as u64 / us * us;
        let range = ByteRange::new(start, start + us);
        let unit = Unit {
            id: self.unit_id_at(start),
            range,
            history: vec![UnitVersion {
                origin: VersionOrigin::Initial,
                in_flight: false,
                event: 0,
                pieces: vec![Piece {
                    range,
                    owner: Owner::Base,
                    src: Some(&self.payloads().base[start as usize..(start + us) as usize]),
                }],
            }],
            floor: 0,
            floor_sync: None,
        };
        Err(self.forbidden(&unit, file, file.len() as u64))
    }

    fn check_unit(&self, unit: &Unit<'_>, file: &[u8], len: u64) -> Result<(), Forbidden> {
        let allowed = unit.allowed();
        if allowed.iter().any(|v| v.first_mismatch(file, len).is_none()) {
            return Ok(());
        }
        if Self::half_applied_in(unit, self.unit_size(), file, len).is_some() {
            return Ok(());
        }
        Err(self.forbidden(unit, file, len))
    }

    /// Does dimension `d` hold a store half applied in `file`? Its allowed
    /// version made by that store (the newer of the pair), if so.
    pub fn half_applied_store(&self, d: usize, file: &[u8]) -> Option<u32> {
        Self::half_applied_in(self.dim_unit(d), self.unit_size(), file, file.len() as u64).map(|v| v as u32)
    }

    /// A store is copied into the page cache a few bytes at a time (memcpy
    /// may even store its unaligned head last), and writeback does not wait
    /// for it: a page written back while a store was copying into it holds
    /// that store half applied, and if the power goes before a later
    /// writeback of the page reaches the disk, that is what survives. So
    /// for every pair of consecutive allowed versions where the newer one
    /// was made by a store (in flight at the crash, or completed but not
    /// yet made durable), each byte may hold the older or the newer value.
    /// Measured: a vm cut on a volatile-cache disk kept a completed 32 KiB
    /// store with its first 7 bytes old (reports/SOUNDNESS.md). Pairs below
    /// the floor are excluded: a completed sync wrote the whole newer page.
    /// Returns the index (in `allowed`) of the newer version of the first
    /// pair that explains `file`'s bytes of this unit.
    fn half_applied_in(unit: &Unit<'_>, unit_size: u64, file: &[u8], len: u64) -> Option<usize> {
        let allowed = unit.allowed();
        (1..allowed.len()).find(|&k| {
            matches!(allowed[k].origin, VersionOrigin::Store { .. })
                && Self::is_mix_of(&allowed[k - 1], &allowed[k], unit, unit_size, file, len)
        })
    }

    /// Each of the unit's bytes in `file` holds `old`'s value or `new`'s.
    fn is_mix_of(
        old: &UnitVersion<'_>,
        new: &UnitVersion<'_>,
        unit: &Unit<'_>,
        unit_size: u64,
        file: &[u8],
        len: u64,
    ) -> bool {
        let us = unit_size as usize;
        let (mut old_bytes, mut new_bytes) = (vec![0u8; us], vec![0u8; us]);
        let base = unit.range.start;
        old.write_unit(unit.range, &mut old_bytes);
        new.write_unit(unit.range, &mut new_bytes);
        let end = unit.range.end.min(len);
        (unit.range.start..end).all(|pos| {
            let (i, got) = ((pos - base) as usize, file[pos as usize]);
            got == old_bytes[i] || got == new_bytes[i]
        })
    }

    /// Say what a forbidden unit holds: an older version than its floor, a
    /// store from after the crash, zeros, or bytes no op wrote.
    fn forbidden(&self, unit: &Unit<'_>, file: &[u8], len: u64) -> Forbidden {
        let allowed: Vec<String> = unit.allowed().iter().map(|v| v.label().to_string()).collect();
        let floor = unit.floor();
        let floor_words = match unit.floor_sync {
            Some(op) => format!("{} (made durable by op {op}, {})", floor.label(), self.spec().ops[op].kind_name()),
            None => format!("{} (no completed sync covered it)", floor.label()),
        };
        let detail = if let Some(old) =
            unit.history()[..unit.floor].iter().rev().find(|v| v.first_mismatch(file, len).is_none())
        {
            format!(
                "holds {}, older than its durable floor {floor_words}; it may hold only {}",
                old.label(),
                allowed.join(", ")
            )
        } else {
            let newest = unit.allowed().last().expect("a unit has a version");
            let pos = newest.first_mismatch(file, len).unwrap_or(unit.range.start);
            format!(
                "holds none of its allowed versions {} (durable floor {floor_words}): at byte {pos} it differs \
                 from {} and holds {}",
                allowed.join(", "),
                newest.label(),
                self.identify(file, pos, unit.range.end.min(len))
            )
        };
        Forbidden::Content { unit: unit.id, range: unit.range, detail }
    }

    /// Name the bytes at `pos`: compare the 8-byte word holding it (a single
    /// byte matches another version by chance one time in 256).
    fn identify(&self, file: &[u8], pos: u64, end: u64) -> String {
        // With tiny tear sizes the word may reach into a neighbouring unit;
        // it only serves to name the bytes.
        let w0 = pos & !7;
        let w1 = (w0 + 8).min(end);
        let word = &file[w0 as usize..w1 as usize];
        let is = |version: u32| word.iter().zip(w0..).all(|(&b, p)| b == pattern_byte(p, version));
        if word.iter().all(|&b| b == 0) {
            return "zeros".into();
        }
        if is(0) {
            return "version 0 (the initial content)".into();
        }
        for (i, op) in self.spec().ops.iter().enumerate() {
            if let Op::Store { offset, len, version } = *op {
                if offset <= w0 && w1 <= offset + len && is(version) {
                    let when = if i >= self.completed() && Some(i) != self.in_flight_op() {
                        "which had not run when the writer died"
                    } else {
                        "not an allowed version here"
                    };
                    return format!("version {version} (op {i}, {when})");
                }
            }
        }
        "bytes no op wrote".into()
    }
}
