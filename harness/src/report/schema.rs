//! The JSON Schemas of crashlab's reports, generated from the report types
//! (their `#[derive(JsonSchema)]`, doc comments included), and committed in
//! `reports/`: the survival report (`crashlab matrix|run`), the external
//! report (`crashlab run --writer`) and the soundness report (`crashlab
//! soundness`). A test regenerates each and fails when
//! the committed copy drifts from the types.
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
use crate::realcut::campaign::WorkloadId;
use crate::realcut::report::{SoundnessReport, SOUNDNESS_SCHEMA_VERSION};
use crate::report::external::{ExternalReport, EXTERNAL_SCHEMA_VERSION};
use crate::report::survival::{SurvivalReport, SCHEMA_VERSION};
use crate::scenario::ScenarioId;
use crate::spec::SyncPolicy;
use crate::trial_space::Shard;
use crate::vocab::CrashWhen;
use crate::vocab::{RealColumn, REAL_COLUMN_PATTERN};

/// A report format with a committed schema.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ReportKind {
    /// `crashlab matrix` and `crashlab run` reports.
    Survival,
    /// `crashlab soundness` reports.
    Soundness,
    /// `crashlab run --writer` reports (users' programs).
    External,
}

impl ReportKind {
    pub const ALL: [ReportKind; 3] = [ReportKind::Survival, ReportKind::Soundness, ReportKind::External];

    /// The argument of `crashlab report schema KIND`.
    pub fn name(self) -> &'static str {
        match self {
            ReportKind::Survival => "survival",
            ReportKind::Soundness => "soundness",
            ReportKind::External => "external",
        }
    }

    /// Where the schema is committed, relative to the repository root.
    pub fn committed_path(self) -> &'static str {
        match self {
            ReportKind::Survival => "reports/survival-report.schema.json",
            ReportKind::Soundness => "reports/soundness-report.schema.json",
            ReportKind::External => "reports/external-report.schema.json",
        }
    }

    /// The command that regenerates the committed schema (named in test
    /// failures).
    pub fn regenerate_command(self) -> String {
        format!("cargo run -p crashlab -- report schema {} > {}", self.name(), self.committed_path())
    }

    /// The schema, as the JSON `crashlab report schema [KIND]` prints.
    pub fn schema(self) -> serde_json::Value {
        // Serialize contract: the schema describes the reports crashlab
        // writes (fields skipped when empty are optional, not nullable).
        let generator = schemars::generate::SchemaSettings::draft2020_12().for_serialize().into_generator();
        let (mut schema, title, version, doc) = match self {
            ReportKind::Survival => (
                generator.into_root_schema_for::<SurvivalReport>(),
                "crashlab survival report",
                SCHEMA_VERSION,
                "reports/SCHEMA.md",
            ),
            ReportKind::Soundness => (
                generator.into_root_schema_for::<SoundnessReport>(),
                "crashlab soundness report",
                SOUNDNESS_SCHEMA_VERSION,
                "reports/SOUNDNESS.md",
            ),
            ReportKind::External => (
                generator.into_root_schema_for::<ExternalReport>(),
                "crashlab external report",
                EXTERNAL_SCHEMA_VERSION,
                "reports/SCHEMA.md",
            ),
        };
        schema.insert("title".into(), title.into());
        schema.insert(
            "description".into(),
            format!(
                "A {title}, schema_version {version} (see {doc}). Readers must refuse another major \
                 schema_version; a newer minor version only adds fields. Generated from the Rust types; regenerate \
                 with `{}`.",
                self.regenerate_command()
            )
            .into(),
        );
        schema.to_value()
    }

    /// The committed text: pretty JSON and a final newline.
    pub fn schema_text(self) -> String {
        let mut text = serde_json::to_string_pretty(&self.schema()).expect("schemas serialize");
        text.push('\n');
        text
    }
}

impl std::fmt::Display for ReportKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

impl std::str::FromStr for ReportKind {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        ReportKind::ALL
            .into_iter()
            .find(|k| k.name() == s)
            .ok_or_else(|| format!("unknown report kind `{s}`; expected survival, soundness or external"))
    }
}

// Alternatives of `SyncPolicy::from_str`; `MsSyncEvery`/`FsyncEvery` take N ≥ 1.
const POLICY: &str =
    "(no-sync|ms-async-each|ms-sync-each|ms-sync-every-[1-9][0-9]*|fsync-every-[1-9][0-9]*|ack-before-sync)";

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

impl JsonSchema for WorkloadId {
    fn schema_name() -> Cow<'static, str> {
        "WorkloadId".into()
    }
    fn json_schema(_: &mut SchemaGenerator) -> Schema {
        text_schema(
            "A soundness workload: a matrix scenario (MAPPING/POLICY) or the probe probe/partial-msync.",
            format!("^((shared|private)/{POLICY}|{})$", WorkloadId::PARTIAL_MSYNC),
        )
    }
}

impl JsonSchema for CrashPoint {
    fn schema_name() -> Cow<'static, str> {
        "CrashPoint".into()
    }
    fn json_schema(_: &mut SchemaGenerator) -> Schema {
        text_schema(
            "Where a crash strikes: before:K, inside:K+Nns, time:Ppermille (P ≤ 1000), truncate:K@LEN, \
             capacity:PAGES or none.",
            "^(before:[0-9]+|inside:[0-9]+\\+[0-9]+ns|time:([0-9]{1,3}|1000)permille|truncate:[0-9]+@[0-9]+|capacity:[0-9]+|none)$"
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

impl JsonSchema for CrashWhen {
    fn schema_name() -> Cow<'static, str> {
        "CrashWhen".into()
    }
    fn json_schema(_: &mut SchemaGenerator) -> Schema {
        json_schema!({
            "type": "string",
            "description": "At which stop of the chosen sync call the writer was killed: before (the call never \
                            ran) or after (it completed, the writer never saw its return).",
            "enum": ["before", "after"]
        })
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
        let mut workloads: Vec<String> = ScenarioId::standard().iter().map(|s| s.to_string()).collect();
        workloads.push(WorkloadId::PartialMsync.to_string());
        for w in &workloads {
            assert!(w.parse::<WorkloadId>().is_ok(), "{w}");
        }
        let bad_workloads = ["probe/partial", "probe/partial-msync ", "shared/sometimes"];
        for b in bad_workloads {
            assert!(b.parse::<WorkloadId>().is_err(), "{b}");
        }
        check::<WorkloadId>(&workloads, &bad_workloads);
    }
}
