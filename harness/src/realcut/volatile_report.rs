//! The part of a soundness report that describes a disk with a volatile
//! write cache ([`super::volatile_disk`]) and what its cuts did: how many
//! writes were still unflushed at each cut, how many disk states were
//! checked, and the findings that are not model soundness violations (a
//! filesystem `e2fsck` could not repair in a state the disk model allows).
//!
//! Architecture Invariant: pure data; lists in trial order, then state order.

use std::fmt::Write as _;

use serde::{Deserialize, Serialize};

use super::campaign::WorkloadId;
use super::volatile_disk::DiskCutMode;
use crate::crash::CrashPoint;
use crate::summary_text::write_failure;

/// At most this many cuts, violations and unreadable states are listed.
pub const MAX_LISTED: usize = 200;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct VolatileDiskReport {
    /// What a cut may do with unflushed writes: `reorder` or `torn`.
    pub mode: DiskCutMode,
    /// States sampled per cut at most (all kept, none kept, then seeded
    /// random ones; every state when there are no more).
    pub states_per_cut: u32,
    /// The guest's writeback interval (`--guest-writeback-cs`), when not the
    /// kernel's default: what lets unsynced pages reach the disk's cache
    /// without a flush within a trial.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub guest_writeback_centisecs: Option<u32>,
    /// Guest runs killed (power cuts).
    pub cuts: u64,
    /// Disk states materialized and checked: judged plus unreadable.
    pub states_checked: u64,
    /// States whose file was read and judged (each one trial of the table).
    pub states_judged: u64,
    /// States whose filesystem e2fsck could not repair, or without the file
    /// (all of them, while `unreadable` lists the first ones).
    pub states_unreadable: u64,
    /// Cuts with at least one write not flushed: the only cuts where the
    /// states differ.
    pub cuts_with_pending_writes: u64,
    /// Unflushed writes at the cuts: total and the most at one cut.
    pub pending_writes: u64,
    pub max_pending_writes: u64,
    /// What the guest sent the disk, over all cuts.
    pub writes: u64,
    pub fua_writes: u64,
    pub flushes: u64,
    /// Cuts in which the guest sent no FLUSH at all (a guest that does not
    /// see a write-back cache would never flush).
    pub cuts_without_flush: u64,
    /// States where `e2fsck -fy` answered a repair question (more than a
    /// journal replay) and still left a readable file.
    pub states_e2fsck_repaired: u64,
    /// `torn` only (judged by the torn-sector model): judged states the
    /// page-whole model would have forbidden, i.e. where a page visibly
    /// holds sectors of different versions.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub states_torn_observed: Option<u64>,
    /// States whose file the model forbids, with the disk state that made it.
    pub violations: Vec<DiskStateFinding>,
    /// States the disk model allows whose filesystem `e2fsck` could not
    /// repair (exit >= 4), or that left no file to read: a finding about
    /// the filesystem on a disk that loses unflushed writes, kept apart
    /// from model soundness violations.
    pub unreadable: Vec<DiskStateFinding>,
    /// States where the model's ack judge and the direct byte check
    /// disagreed (a harness bug), each with its state text; absent when
    /// none. Added in 1.3.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub judge_mismatches: Vec<DiskStateFinding>,
    /// Per cut (at most [`MAX_LISTED`]), in trial order.
    pub per_cut: Vec<CutSummary>,
}

impl VolatileDiskReport {
    /// What the cuts did, for a person (printed before the soundness table).
    pub fn human_summary(&self) -> String {
        let v = self;
        let mut s = String::new();
        let _ = writeln!(
            s,
            "volatile disk ({}): {} cuts, {} disk states checked ({} judged, {} unreadable); writes {} ({} FUA), flushes \
             {}, cuts without a flush {}; unflushed writes at the cut: {} in all, at most {} ({} cuts with some); \
             e2fsck repaired more than the journal in {} states",
            v.mode,
            v.cuts,
            v.states_checked,
            v.states_judged,
            v.states_unreadable,
            v.writes,
            v.fua_writes,
            v.flushes,
            v.cuts_without_flush,
            v.pending_writes,
            v.max_pending_writes,
            v.cuts_with_pending_writes,
            v.states_e2fsck_repaired
        );
        if let Some(n) = v.states_torn_observed {
            let _ = writeln!(
                s,
                "judged by the torn-sector model; {n} of {} judged states held a page of mixed versions (the page-whole \
                 model would forbid them)",
                v.states_judged
            );
        }
        if v.cuts > 0 && v.cuts_with_pending_writes == 0 {
            let _ = writeln!(
                s,
                "note: no cut had an unflushed write, so every disk state was the flushed image (no more than \
                 --disk no-cache shows){}",
                if v.guest_writeback_centisecs.is_none() {
                    "; --guest-writeback-cs 1 makes the guest write unsynced pages back, unflushed, within a trial"
                } else {
                    ""
                }
            );
        }
        for (what, list) in [("UNREADABLE", &v.unreadable), ("JUDGE MISMATCH (harness bug)", &v.judge_mismatches)] {
            for u in list {
                let headline = format!(
                    "{what} {} at {} (trial {}) in disk state {}: {}",
                    u.scenario, u.point, u.trial, u.state, u.detail
                );
                let details: Vec<String> = (u.explanation.iter().map(|e| format!("why: {e}")))
                    .chain(u.kept.iter().map(|k| format!("evidence kept in {k}")))
                    .collect();
                write_failure(&mut s, "", &headline, &details, "rerun", &u.rerun);
            }
        }
        s
    }

    /// Unreadable states with a known cause, by cause, most frequent first.
    pub fn unreadable_causes(&self) -> Vec<(String, u64)> {
        let mut by: Vec<(String, u64)> = Vec::new();
        for u in &self.unreadable {
            let cause = u.explanation.clone().unwrap_or_else(|| "no known cause".into());
            match by.iter_mut().find(|(c, _)| *c == cause) {
                Some((_, n)) => *n += 1,
                None => by.push((cause, 1)),
            }
        }
        by.sort_by_key(|c| std::cmp::Reverse(c.1));
        by
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct DiskStateFinding {
    /// The cut's index in the campaign (its evidence directory is
    /// `vm-ext4-TRIAL-POINT-stateJ`). Added in 1.3.
    #[serde(default)]
    pub trial: u64,
    pub scenario: WorkloadId,
    pub point: CrashPoint,
    /// The disk state (`reorder kept=w3-w5`, `torn kept=s16-s23:w3`).
    pub state: String,
    pub detail: String,
    /// `reorder`, for a file the page-whole model forbids: whether the
    /// model with torn 512-byte sectors (`PowerLossConfig::tear`) would
    /// allow it. A diagnosis; the verdict is the page-whole model's.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub allowed_if_sectors_tear: Option<bool>,
    /// What crashlab found out about the cause, when it knows (e.g. a torn
    /// ext4 superblock). Added in 1.3.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub explanation: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub kept: Option<String>,
    pub rerun: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct CutSummary {
    pub scenario: WorkloadId,
    pub point: CrashPoint,
    pub writes: u64,
    pub fua_writes: u64,
    pub flushes: u64,
    pub pending_writes: u64,
    /// How many states the mode allows for this cut (saturating).
    pub state_space: u64,
    pub states_checked: u64,
}
