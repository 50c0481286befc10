//! The lab: every OS effect of a built-in trial lives here (fork, mmap,
//! signals, truncation, waitpid, reading the file back).
//!
//! Two sides:
//! - the **worker** ([`worker`]), a single-threaded process started by
//!   fork+exec (`crashlab __worker`, or the `crashlab-worker` binary of the
//!   scenarios crate). It alone forks writer children; it runs trials and
//!   verifies them with the pure models, and speaks JSON lines on stdin/stdout
//!   ([`protocol`]).
//! - the **pool** ([`pool`]), used from any process (cargo's multithreaded
//!   test runner included): it spawns workers through the generic
//!   [`crate::worker_pool`] and feeds them batches of trials.
//!
//! Architecture Invariant: no code path forks a process that may have more
//! than one thread. Only the worker calls `fork`, and it checks at start-up
//! that it is single-threaded.

pub mod capacity_mount;
pub mod child;
pub mod journal_region;
pub mod pool;
pub mod protocol;
pub mod test_file;
pub mod trial;
pub mod worker;
