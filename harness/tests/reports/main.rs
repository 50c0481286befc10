//! The report tooling end to end: the committed JSON Schemas, `crashlab
//! report show|diff|merge|html|schema` on survival, external and soundness reports,
//! `--shard`, `--html`, `--junit`, the regressions file, and the HTML page rendered in headless Chromium.
//!
//! One test binary (not one per file) to keep link time down.

#[path = "../support/report_schema_validation.rs"]
mod report_schema_validation;

mod campaign;

mod browser;
mod commands;
mod external;
mod hostile_files;
mod schema;
mod shards;
mod soundness;
