//! Subcommands of the `crashlab` binary that need more than a few lines.

pub mod bench;
pub mod campaign;
pub mod campaign_outputs;
pub mod external_bench;
pub mod external_run;
pub mod fault_bench;
pub mod matrix;
pub mod progress;
pub mod real_cut_bench;
pub mod replay;
pub mod report;
pub mod soundness;
