//! The JSON Schema of the survival report, generated from the report types
//! (their `#[derive(JsonSchema)]`, doc comments included), and committed as
//! `reports/survival-report.schema.json`. A test regenerates it and fails
//! when the committed copy drifts from the types.
//!
//! The types that serialize as their text form (`#[serde(into = "String")]`)
//! get hand-written string schemas here, with a pattern that accepts exactly
//! what their `FromStr` accepts, so a validator catches a malformed scenario
//! or crash point, not only a non-string.
//!
//! Architecture Invariant: pure.

use std::borrow::Cow;

use schemars::{json_schema, JsonSchema, Schema, SchemaGenerator};

use crate::crash::{CrashPoint, PointSelection};
use crate::realcut::columns::{RealColumn, REAL_COLUMN_PATTERN};
use crate::report::{SurvivalReport, SCHEMA_VERSION};
use crate::scenario::ScenarioId;
use crate::spec::SyncPolicy;
use crate::trial_space::Shard;

/// The command that regenerates the committed schema (named in test failures).
pub const REGENERATE: &str = "cargo run -p crashlab -- report schema > reports/survival-report.schema.json";

/// Where the schema is committed, relative to the repository root.
pub const COMMITTED_PATH: &str = "reports/survival-report.schema.json";

// Alternatives of `SyncPolicy::from_str`; `MsSyncEvery`/`FsyncEvery` take N ≥ 1.
const POLICY: &str =
    "(no-sync|ms-async-each|ms-sync-each|ms-sync-every-[1-9][0-9]*|fsync-every-[1-9][0-9]*|ack-before-sync)";

/// The schema, as the JSON `crashlab report schema` prints.
pub fn survival_report_schema() -> serde_json::Value {
    // Serialize contract: the schema describes the reports crashlab writes
    // (fields skipped when empty are optional, not nullable).
    let generator = schemars::generate::SchemaSettings::draft2020_12().for_serialize().into_generator();
    let mut schema = generator.into_root_schema_for::<SurvivalReport>();
    schema.insert("title".into(), "crashlab survival report".into());
    schema.insert(
        "description".into(),
        format!(
            "A crashlab survival report, schema_version {SCHEMA_VERSION} (see reports/SCHEMA.md). Readers must \
             refuse another major schema_version; a newer minor version only adds fields. Generated from the \
             Rust types; regenerate with `{REGENERATE}`."
        )
        .into(),
    );
    schema.to_value()
}

/// The committed text: pretty JSON and a final newline.
pub fn survival_report_schema_text() -> String {
    let mut text = serde_json::to_string_pretty(&survival_report_schema()).expect("schemas serialize");
    text.push('\n');
    text
}

fn text_schema(description: &str, pattern: String) -> Schema {
    json_schema!({ "type": "string", "description": description, "pattern": pattern })
}

impl JsonSchema for SyncPolicy {
    fn schema_name() -> Cow<'static, str> {
        "SyncPolicy".into()
    }
    fn json_schema(_: &mut SchemaGenerator) -> Schema {
        text_schema(
            "When the writer syncs relative to its stores and acks (one row of the matrix).",
            format!("^{POLICY}$"),
        )
    }
}

impl JsonSchema for ScenarioId {
    fn schema_name() -> Cow<'static, str> {
        "ScenarioId".into()
    }
    fn json_schema(_: &mut SchemaGenerator) -> Schema {
        text_schema("A matrix row: MAPPING/POLICY, e.g. shared/ms-sync-each.", format!("^(shared|private)/{POLICY}$"))
    }
}

impl JsonSchema for CrashPoint {
    fn schema_name() -> Cow<'static, str> {
        "CrashPoint".into()
    }
    fn json_schema(_: &mut SchemaGenerator) -> Schema {
        text_schema(
            "Where a crash strikes: before:K, inside:K+Nns, time:Ppermille (P ≤ 1000), truncate:K@LEN or none.",
            "^(before:[0-9]+|inside:[0-9]+\\+[0-9]+ns|time:([0-9]{1,3}|1000)permille|truncate:[0-9]+@[0-9]+|none)$"
                .into(),
        )
    }
}

impl JsonSchema for PointSelection {
    fn schema_name() -> Cow<'static, str> {
        "PointSelection".into()
    }
    fn json_schema(_: &mut SchemaGenerator) -> Schema {
        text_schema(
            "Crash points per cell: all, boundaries or random:N.",
            "^(all|boundaries|random:[1-9][0-9]*)$".into(),
        )
    }
}

impl JsonSchema for Shard {
    fn schema_name() -> Cow<'static, str> {
        "Shard".into()
    }
    fn json_schema(_: &mut SchemaGenerator) -> Schema {
        text_schema(
            "Shard I of N (1-based): this report holds one contiguous block of every cell's crash points.",
            "^[1-9][0-9]*/[1-9][0-9]*$".into(),
        )
    }
}

impl JsonSchema for RealColumn {
    fn schema_name() -> Cow<'static, str> {
        "RealColumn".into()
    }
    fn json_schema(_: &mut SchemaGenerator) -> Schema {
        text_schema(
            "A real column of power-loss-real: BACKEND:FS (loopcut:ext4, loopcut:xfs, loopcut:btrfs) or vm (ext4 \
             in a qemu guest).",
            REAL_COLUMN_PATTERN.into(),
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The string schemas must accept every text form `Display` produces and
    /// refuse what `FromStr` refuses: a pattern that drifts from the parser
    /// would pass bad reports or fail good ones.
    #[test]
    fn string_patterns_agree_with_the_parsers() {
        fn check<T: JsonSchema>(good: &[String], bad: &[&str]) {
            let schema = T::json_schema(&mut SchemaGenerator::default()).to_value();
            let v = jsonschema::validator_for(&schema).expect("a valid schema");
            for g in good {
                assert!(v.is_valid(&serde_json::json!(g)), "{} refuses `{g}`", T::schema_name());
            }
            for b in bad {
                assert!(!v.is_valid(&serde_json::json!(b)), "{} accepts `{b}`", T::schema_name());
            }
        }
        let text = |xs: &[&dyn std::fmt::Display]| xs.iter().map(|x| x.to_string()).collect::<Vec<_>>();
        let mut policies: Vec<SyncPolicy> = SyncPolicy::STANDARD.to_vec();
        policies.extend([SyncPolicy::MsSyncEvery(17), SyncPolicy::FsyncEvery(1)]);
        for p in &policies {
            assert_eq!(p.to_string().parse::<SyncPolicy>().unwrap(), *p);
        }
        check::<SyncPolicy>(
            &policies.iter().map(|p| p.to_string()).collect::<Vec<_>>(),
            &["fsync-every-0", "ms-sync-every-", "sometimes", "no-sync "],
        );
        check::<ScenarioId>(
            &ScenarioId::standard().iter().map(|s| s.to_string()).collect::<Vec<_>>(),
            &["shared", "mapped/no-sync", "shared/fsync-every-0"],
        );
        let points = [
            CrashPoint::BeforeOp(3),
            CrashPoint::InsideStore { op: 7, delay_ns: 1500 },
            CrashPoint::AtTime { permille: 1000 },
            CrashPoint::AtTime { permille: 0 },
            CrashPoint::TruncateBefore { op: 2, len: 8192 },
            CrashPoint::None,
        ];
        let bad_points = ["before:x", "inside:3+5", "time:1001permille", "truncate:2", "never"];
        for b in bad_points {
            assert!(b.parse::<CrashPoint>().is_err(), "{b}");
        }
        check::<CrashPoint>(
            &text(&[&points[0], &points[1], &points[2], &points[3], &points[4], &points[5]]),
            &bad_points,
        );
        let selections = [PointSelection::All, PointSelection::Boundaries, PointSelection::Random(40)];
        check::<PointSelection>(&text(&[&selections[0], &selections[1], &selections[2]]), &["random:0", "some"]);
        check::<Shard>(&[Shard::new(2, 4).unwrap().to_string()], &["0/4", "2", "a/b"]);
        let columns = ["loopcut:ext4", "loopcut:xfs", "loopcut:btrfs", "vm", "vm:ext4"];
        for c in columns {
            assert!(c.parse::<RealColumn>().is_ok(), "{c}");
        }
        let bad_columns = ["loopcut", "vm:xfs", "loopcut:zfs", "qemu:ext4", "vm "];
        for b in bad_columns {
            assert!(b.parse::<RealColumn>().is_err(), "{b}");
        }
        check::<RealColumn>(&columns.map(String::from), &bad_columns);
    }
}
