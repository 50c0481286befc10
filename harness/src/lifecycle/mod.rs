//! The file-lifecycle family of the survival matrix: four built-in
//! programs (atomic replace via rename, a new file per op; each with and
//! without an fsync of the directory) run by the external engine under the
//! matrix's process crashes and the namespace-aware power-loss model, so
//! the survival report says what survives them next to the mmap writers.
//!
//! - `family.rs` (pure): the kinds, the files and their bytes, the ack
//!   lines, the checker's judgement of a directory.
//! - `program.rs`: the setup, writer and checker as `crashlab __lifecycle
//!   ROLE KIND` (workload protocol v1).
//! - `rows.rs`: the matrix's lifecycle rows: one external run per kind,
//!   its report turned into the section's cells.

pub mod family;
pub mod program;
pub mod rows;
