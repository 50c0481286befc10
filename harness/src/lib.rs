//! crashlab: a crash-consistency laboratory for memory-mapped files.
//!
//! See `ARCHITECTURE.md` at the repository root for the bird's-eye view.
//! Pure modules (no OS effects): [`spec`], [`payload`], [`crash`],
//! [`journal`], [`live_image`], [`process_model`].

pub mod crash;
pub mod journal;
pub mod live_image;
pub mod payload;
pub mod process_model;
pub mod spec;
