//! The machine's page size: the one place that asks the kernel for it (the
//! lab, the oracle, the real cuts and the engine all use it).
//!
//! A leaf: it imports nothing of the crate, so the lab's files can share it
//! without importing each other.
//!
//! Architecture Invariant: pure as far as callers can tell: one constant of
//! the machine (`sysconf`), no file, descriptor or process touched, so pure
//! modules may size their units with it.

/// Bytes per page of this machine (`sysconf(_SC_PAGESIZE)`).
pub fn page_size() -> u64 {
    // SAFETY: sysconf has no preconditions.
    unsafe { libc::sysconf(libc::_SC_PAGESIZE) as u64 }
}
