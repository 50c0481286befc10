//! Subcommands of the `crashlab` binary that need more than a few lines.

pub mod bench;
pub mod replay;
