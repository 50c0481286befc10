//! The report family: every report crashlab writes and reads back.
//!
//! - The survival report of the built-in scenarios (`matrix`, `run
//!   --scenario`): its types (`survival`), the aggregation of trial records
//!   into cells (`survival_cells`) and its human summary (`survival_summary`).
//! - The external report of users' programs (`run --writer`): its types,
//!   aggregation and summary (`external`), its power-loss section
//!   (`external_power_loss`), and its diff, merge of shards, HTML and JUnit
//!   (`external_*`), each beside the survival report's counterpart.
//! - What every kind shares: the bounded reader and the one atomic writer
//!   (`file`), reading back with the `schema_version` check and the kind
//!   told from the JSON (`read`), the committed JSON Schemas (`schema`),
//!   diff, merge of shards, HTML, JUnit and the regressions file.
//!
//! - The soundness report (`crashlab soundness`): its types and summary
//!   stay in `realcut/report.rs` (pure, built from the campaign's plan);
//!   its diff, HTML and JUnit are here (`soundness_*`). It has no shards
//!   (`soundness` has no `--shard`), so `report merge` refuses it.
//!
//! Architecture Invariant: pure, except `file` and `regressions` (they read
//! and write files); nothing here forks, maps or traces.

pub mod checker_verdict;
pub mod diff;
pub mod external;
pub mod external_diff;
pub mod external_eio;
pub mod external_enospc;
pub mod external_enospc_power_loss;
#[cfg(test)]
pub(crate) mod external_fixtures;
pub mod external_flags;
pub mod external_html;
pub mod external_junit;
pub mod external_merge;
pub mod external_power_loss;
pub mod external_real_cut;
pub mod external_replay_line;
pub mod file;
pub mod html;
pub mod junit;
pub mod merge;
pub mod read;
pub mod regressions;
pub mod schema;
pub mod soundness_diff;
pub mod soundness_html;
pub mod soundness_junit;
pub mod source_location;
pub mod survival;
pub mod survival_cells;
pub mod survival_lifecycle;
pub mod survival_summary;
pub mod verdict;
