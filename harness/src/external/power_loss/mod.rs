//! `--crash power-loss` for external programs: what a machine crash may
//! leave of what the writer did, judged by the user's checker.
//!
//! # What a trial does
//!
//! 1. A fresh trial directory; the `--setup` command runs there. **crashlab
//!    treats the directory the setup leaves as durable** (as if it had been
//!    synced): every state starts from it. crashlab never syncs anything
//!    itself; a setup whose files must survive a real power loss should sync
//!    them.
//! 2. The writer runs under the durability oracle ([`crate::oracle`]), which
//!    records, for every file under the trial directory, what completed syncs
//!    made durable (its *shadow*). Its standard output is read through a pipe
//!    as it comes: the lines it printed before the crash are the acks.
//! 3. The writer is crashed at the trial's point ([`PowerLossPlan`]): just
//!    before or just after the k-th call of `msync`, `fsync`, `fdatasync`,
//!    `ftruncate` or `munmap` (counted together; the clean run under the
//!    oracle counts them, and even trials are spread over all of them, before
//!    and after each), or at a random time inside the traced clean run (odd
//!    trials). With `--points syscalls` the even trials are spread over every
//!    call the oracle records instead (every call on a file of the trial
//!    directory too: creates, writes, renames, unlinks, ...). A writer that
//!    finishes first is judged as it ended: the power fails after its end.
//! 4. Once every process of the writer is dead, the oracle hands over what
//!    it recorded ([`crate::oracle`]): the **namespace trace** (every file
//!    as an inode life, a `FileId`: a name re-created after an unlink is a
//!    new file; every create, link, unlink, rename and size change, every
//!    completed sync) and, per file, two images:
//!    - the **newest** image: what the page cache holds (read through the
//!      oracle's descriptor, so also for a file the writer unlinked),
//!    - the **floor** image: the oracle's shadow, i.e. the content at the
//!      start (after the setup) overlaid with every range a completed sync
//!      of *that file* covered, at the instant it returned; a file the
//!      writer created and never synced has an empty floor.
//! 5. The **states** (`crate::namespace` for the rules and their
//!    evidence; `--fs-model posix`, the POSIX contract, is the default;
//!    `ext4`, `xfs` and `btrfs` add what real cuts of them showed):
//!    - the namespace: every entry operation no later fsync of its
//!      directory (or `sync`/`syncfs`) covered, and every size change no
//!      later `fsync`/`fdatasync`/`msync(MS_SYNC)` of its file covered,
//!      persisted or was lost, consistently with the history (a rename of
//!      a file whose creation was lost cannot persist; a file's size is one
//!      it really had). Files are inodes: a file's content and size follow
//!      it through renames and never pass to another file that takes its
//!      name;
//!    - the content: every unit (page, or `--tear` sector) of a file holds
//!      its floor, its newest content, or any version the oracle's write
//!      history ([`crate::page_history`], `--history on`) saw its page hold
//!      since the floor, independently of the others (bytes past an image's
//!      end read as zeros). A unit is a dimension of radix 2 + its distinct
//!      intermediate versions: digit 0 is the floor, the last digit the
//!      newest content.
//!
//!    The history is a sample (the content at each trapped call, and at
//!    `--history-every` ticks): every state checked is one a power loss
//!    can leave, but not every such state is checked. Up to 2^16 states (see
//!    [`ExploreConfig`]) are all checked, in Gray-code order (a choice of
//!    operations that cannot persist together is checked once, as the
//!    state it resolves to); beyond that, adversarial states (all floor and
//!    lost, all newest, each operation or unit alone either way, each unit
//!    alone at each intermediate version, prefixes and suffixes) and 64
//!    random ones.
//! 6. Each state is written into a state directory (only the units that
//!    changed since the previous state, after checking that the checker left
//!    the directory as it was shown), the acks file gets the acks of step 2,
//!    and the checker runs there. Exit 0: consistent; 1: violation; anything
//!    else: a checker malfunction (a harness error). (With a checker server,
//!    protocol v1.1, the job's server is asked instead.) A state whose
//!    directory is byte-identical to one already checked in the trial takes
//!    its verdict without a checker run (`states_skipped` in the report). States of one trial
//!    are checked in chunks on `--jobs` threads; the trial stops at its first
//!    failing state in exploration order (the same whatever `--jobs`).
//! 7. A failing state is **shrunk** (delta debugging, [`crate::explore::ddmin::ddmin`]):
//!    first to a 1-minimal set of units not at their newest content (each
//!    at the version the failing state gave it: its floor or an
//!    intermediate version) and operations lost with everything else newest (restoring any one of them makes the
//!    checker pass), then, with that set, to a 1-minimal set of units at
//!    their newest content and operations persisted with everything else at
//!    its floor or lost. The report gives both sets in one sentence (an
//!    operation with the rule it missed: `rename("state.tmp" -> "state") at
//!    call 57 was lost: the directory "." was not fsynced after it`), the
//!    minimal state's text ([`StateText`], e.g. `newest:data.db#p3=floor`
//!    or `newest:@57=floor`) and a replay line that rebuilds it and reruns
//!    the checker
//!    (`crashlab replay ... --crash power-loss ... --state TEXT`).
//!
//! The checker runs in a state directory, not in the directory the writer
//! used (`CRASHLAB_DIR` says where).
//!
//! # Limits
//!
//! - A version a page held only between two trapped calls (or two
//!   `--history-every` ticks) is never seen, so never checked; nor are the
//!   versions of a file that had no name (unlinked while open), of a page
//!   past 32 versions between syncs, or past 256 MiB of versions a trial.
//! - The namespace model covers what the oracle traces; a call it cannot
//!   model (`copy_file_range`, `FICLONE`, `RENAME_EXCHANGE`, io_uring, ...)
//!   stops the run with an error naming the call and the writer.
//! - Like the oracle, the model is a lower bound on durability: a real
//!   filesystem often keeps more (`--fs-model ext4|xfs|btrfs` adds what real
//!   cuts showed).

mod after_full_disk;
mod attribution;
mod eio;
mod engine;
mod explore;
mod images;
pub mod membership;
mod seen_states;
mod space;
mod state_dir;
mod state_text;

pub(crate) use after_full_disk::{judge_after_full_disk, StatesReplay};
pub(crate) use engine::{calibrate, run_power_loss_trials, trace_trial_with};
pub use engine::{replay_power_loss, PowerLossReplayed};
pub use explore::{ExploreConfig, StateOrder};
pub use space::{Digits, Dim, FileImages, Layout, Source, StateSpace};
pub use state_text::{ItemChoice, ItemRef, StateText, StateTextError, UnitRef};

pub use crate::program_plan::{PowerLossPlan, PowerLossPoint};

use crate::namespace::FsModel;

/// Tuning of the power-loss exploration.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PowerLossOptions {
    pub explore: ExploreConfig,
    /// Checker runs allowed to each of the two shrinking steps.
    pub shrink_budget: u32,
    /// What a completed sync makes durable in the namespace (`--fs-model`).
    pub fs_model: FsModel,
    /// Recording intermediate versions (`--history`, `--history-every`).
    pub history: HistoryOptions,
}

impl Default for PowerLossOptions {
    fn default() -> PowerLossOptions {
        PowerLossOptions {
            explore: ExploreConfig::default(),
            shrink_budget: 1000,
            fs_model: FsModel::Posix,
            history: HistoryOptions::default(),
        }
    }
}

/// Whether power-loss trials record the write history
/// ([`crate::page_history`]), so that a unit may also hold a version its
/// page had between its floor and the crash.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct HistoryOptions {
    /// `--history on` (the default) or `off`.
    pub record: bool,
    /// `--history-every US`: also stop the writer on this period.
    pub every: Option<std::time::Duration>,
}

impl Default for HistoryOptions {
    fn default() -> HistoryOptions {
        HistoryOptions { record: true, every: None }
    }
}
