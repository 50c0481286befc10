//! The words every part of crashlab uses: where and how power is cut, and
//! (as the one-engine redesign moves them here) crash kinds, trial records
//! and environment facts. The bottom of the import graph.
//!
//! Architecture Invariant: pure, and imports nothing of crashlab's but other
//! `vocab` files: every other module may import it, it imports none of them.

pub mod capacity;
pub mod crash_kind;
pub mod environment;
pub mod lifecycle_kind;
pub mod process_end;
pub mod real_cut;
pub mod sync_call;
pub mod writeback;

pub use crash_kind::CrashKind;
pub use environment::Environment;
pub use lifecycle_kind::LifecycleKind;
pub use process_end::ProcessEnd;
pub use real_cut::{Backend, CutMethod, FsKind, RealColumn, REAL_COLUMN_PATTERN};
pub use sync_call::CrashWhen;
pub use writeback::Writeback;
