//! Reading reports back, with the `schema_version` check every reader must
//! make (see `reports/SCHEMA.md`): a report of another **major** version
//! would be misread, so it is refused with a message that says which
//! crashlab can read it; a newer **minor** version only adds fields, which
//! serde ignores, so it is read. The kind of a report (survival or
//! external) is told from its JSON (`report_kind`), before its version is
//! held against that kind's own.

use std::fmt;
use std::path::{Path, PathBuf};

use crate::realcut::report::{SoundnessReport, SOUNDNESS_SCHEMA_VERSION};
use crate::report::external::{ExternalReport, EXTERNAL_REPORT_KIND, EXTERNAL_SCHEMA_VERSION};
use crate::report::file::{read_text, ReadFileError};
use crate::report::schema::ReportKind;
use crate::report::survival::{SurvivalReport, SCHEMA_VERSION};

/// Why a report could not be read. Each names the file. The underlying
/// error is part of the message and not also `source()`, so the CLI's error
/// chain prints it once.
#[derive(Debug, thiserror::Error)]
pub enum ReportReadError {
    #[error("cannot read the report {}: {error}", path.display())]
    Read { path: PathBuf, error: ReadFileError },
    #[error("{} is not JSON: {error}", path.display())]
    NotJson { path: PathBuf, error: serde_json::Error },
    #[error("{} has no string `schema_version`: it is not a crashlab survival or external report", path.display())]
    NoVersion { path: PathBuf },
    #[error("{} has schema_version `{found}`, expected MAJOR.MINOR (e.g. {SCHEMA_VERSION})", path.display())]
    BadVersion { path: PathBuf, found: String },
    #[error(
        "{} has schema_version {found}, a newer major version than this crashlab reads ({current}): \
         reading it would misread it; use the crashlab that wrote it ({written_by}) or a newer one",
        path.display()
    )]
    NewerMajor { path: PathBuf, found: SchemaVersion, current: SchemaVersion, written_by: String },
    #[error(
        "{} has schema_version {found}, an older major version than this crashlab reads ({current}): \
         use the crashlab that wrote it ({written_by}), or rerun the campaign",
        path.display()
    )]
    OlderMajor { path: PathBuf, found: SchemaVersion, current: SchemaVersion, written_by: String },
    #[error("{} does not match {kind} report schema {found}: {error}", path.display())]
    Malformed { path: PathBuf, kind: &'static str, found: SchemaVersion, error: serde_json::Error },
    #[error("{} is {found} report, not {expected}", path.display())]
    WrongKind { path: PathBuf, found: &'static str, expected: &'static str },
}

/// A report of any kind `crashlab report` reads, as its JSON says.
#[derive(Debug, Clone, PartialEq)]
pub enum AnyReport {
    Survival(Box<SurvivalReport>),
    External(Box<ExternalReport>),
    Soundness(Box<SoundnessReport>),
}

impl AnyReport {
    /// `a survival` or `an external`, for messages.
    pub fn kind_text(&self) -> &'static str {
        match self {
            AnyReport::Survival(_) => "a survival",
            AnyReport::External(_) => "an external",
            AnyReport::Soundness(_) => "a soundness",
        }
    }

    /// The human summary of either kind.
    pub fn human_summary(&self) -> String {
        match self {
            AnyReport::Survival(r) => r.human_summary(),
            AnyReport::External(r) => r.human_summary(),
            AnyReport::Soundness(r) => r.human_summary(),
        }
    }
}

/// A parsed `schema_version`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct SchemaVersion {
    pub major: u32,
    pub minor: u32,
}

impl SchemaVersion {
    /// The version this crashlab writes.
    pub fn current() -> SchemaVersion {
        SchemaVersion::parse(SCHEMA_VERSION).expect("SCHEMA_VERSION is MAJOR.MINOR")
    }

    pub fn parse(s: &str) -> Option<SchemaVersion> {
        let (major, minor) = s.split_once('.')?;
        let digits = |t: &str| !t.is_empty() && t.bytes().all(|b| b.is_ascii_digit());
        if !digits(major) || !digits(minor) {
            return None;
        }
        Some(SchemaVersion { major: major.parse().ok()?, minor: minor.parse().ok()? })
    }
}

impl fmt::Display for SchemaVersion {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}.{}", self.major, self.minor)
    }
}

/// Read and check the survival report at `path`: at most
/// [`MAX_REPORT_BYTES`](crate::report::file::MAX_REPORT_BYTES) of it, so a
/// device or an endless pipe is refused instead of exhausting memory.
pub fn read_report(path: &Path) -> Result<SurvivalReport, ReportReadError> {
    let text = read_text(path).map_err(|error| ReportReadError::Read { path: path.to_owned(), error })?;
    parse_report(&text, path)
}

/// Read and check the report of any kind at `path` (bounded as
/// [`read_report`]).
pub fn read_any_report(path: &Path) -> Result<AnyReport, ReportReadError> {
    let text = read_text(path).map_err(|error| ReportReadError::Read { path: path.to_owned(), error })?;
    parse_any_report(&text, path)
}

/// [`parse_any_report`], for a survival report only.
pub fn parse_report(text: &str, path: &Path) -> Result<SurvivalReport, ReportReadError> {
    match parse_any_report(text, path)? {
        AnyReport::Survival(r) => Ok(*r),
        other => Err(ReportReadError::WrongKind {
            path: path.to_owned(),
            found: other.kind_text(),
            expected: "a survival report",
        }),
    }
}

/// Check the version of the report in `text` (read from `path`, named in
/// errors), then decode it. The version is checked first, so a report of
/// another major version gets the version message, not a confusing
/// complaint about some field whose meaning changed. The first pass keeps
/// only the two version strings (no tree of the whole document in memory).
pub fn parse_any_report(text: &str, path: &Path) -> Result<AnyReport, ReportReadError> {
    let path = path.to_owned();
    let versions: Versions =
        serde_json::from_str(text).map_err(|error| ReportReadError::NotJson { path: path.clone(), error })?;
    let Some(found) = versions.schema else {
        return Err(ReportReadError::NoVersion { path });
    };
    let Some(found) = SchemaVersion::parse(&found) else {
        return Err(ReportReadError::BadVersion { path, found });
    };
    // Only external reports carry `report_kind` (survival reports predate
    // it); a soundness report is the one with per-filesystem sections.
    let kind = if versions.kind.as_deref() == Some(EXTERNAL_REPORT_KIND) {
        ReportKind::External
    } else if versions.filesystems {
        ReportKind::Soundness
    } else {
        ReportKind::Survival
    };
    let (kind_name, current) = match kind {
        ReportKind::External => ("external", EXTERNAL_SCHEMA_VERSION),
        ReportKind::Soundness => ("soundness", SOUNDNESS_SCHEMA_VERSION),
        ReportKind::Survival => ("survival", SCHEMA_VERSION),
    };
    let current = SchemaVersion::parse(current).expect("MAJOR.MINOR");
    let written_by = versions.crashlab.unwrap_or_else(|| "unknown version".to_owned());
    if found.major > current.major {
        return Err(ReportReadError::NewerMajor { path, found, current, written_by });
    }
    if found.major < current.major {
        return Err(ReportReadError::OlderMajor { path, found, current, written_by });
    }
    let malformed = |error| ReportReadError::Malformed { path: path.clone(), kind: kind_name, found, error };
    match kind {
        ReportKind::External => serde_json::from_str(text).map(|r| AnyReport::External(Box::new(r))).map_err(malformed),
        ReportKind::Soundness => {
            serde_json::from_str(text).map(|r| AnyReport::Soundness(Box::new(r))).map_err(malformed)
        }
        ReportKind::Survival => serde_json::from_str(text).map(|r| AnyReport::Survival(Box::new(r))).map_err(malformed),
    }
}

/// The top-level `schema_version`, `crashlab_version` and `report_kind` of
/// a JSON document, when they are strings; any other JSON value decodes to
/// none (everything else is skipped without being kept).
#[derive(Default)]
struct Versions {
    schema: Option<String>,
    crashlab: Option<String>,
    kind: Option<String>,
    /// A top-level `filesystems`: the soundness report's sections.
    filesystems: bool,
}

impl<'de> serde::Deserialize<'de> for Versions {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        d.deserialize_any(VersionsVisitor)
    }
}

struct VersionsVisitor;

impl<'de> serde::de::Visitor<'de> for VersionsVisitor {
    type Value = Versions;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a JSON value")
    }

    fn visit_map<A: serde::de::MapAccess<'de>>(self, mut map: A) -> Result<Versions, A::Error> {
        let mut v = Versions::default();
        while let Some(key) = map.next_key::<std::borrow::Cow<'de, str>>()? {
            match &*key {
                "schema_version" => v.schema = map.next_value::<MaybeString>()?.0,
                "crashlab_version" => v.crashlab = map.next_value::<MaybeString>()?.0,
                "report_kind" => v.kind = map.next_value::<MaybeString>()?.0,
                "filesystems" => {
                    v.filesystems = true;
                    map.next_value::<serde::de::IgnoredAny>()?;
                }
                _ => {
                    map.next_value::<serde::de::IgnoredAny>()?;
                }
            }
        }
        Ok(v)
    }

    fn visit_seq<A: serde::de::SeqAccess<'de>>(self, mut seq: A) -> Result<Versions, A::Error> {
        while seq.next_element::<serde::de::IgnoredAny>()?.is_some() {}
        Ok(Versions::default())
    }

    fn visit_bool<E>(self, _: bool) -> Result<Versions, E> {
        Ok(Versions::default())
    }
    fn visit_i64<E>(self, _: i64) -> Result<Versions, E> {
        Ok(Versions::default())
    }
    fn visit_u64<E>(self, _: u64) -> Result<Versions, E> {
        Ok(Versions::default())
    }
    fn visit_f64<E>(self, _: f64) -> Result<Versions, E> {
        Ok(Versions::default())
    }
    fn visit_str<E>(self, _: &str) -> Result<Versions, E> {
        Ok(Versions::default())
    }
    fn visit_unit<E>(self) -> Result<Versions, E> {
        Ok(Versions::default())
    }
}

/// A JSON string, or `None` for any other value (skipped).
struct MaybeString(Option<String>);

impl<'de> serde::Deserialize<'de> for MaybeString {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> serde::de::Visitor<'de> for V {
            type Value = MaybeString;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a JSON value")
            }
            fn visit_str<E>(self, s: &str) -> Result<MaybeString, E> {
                Ok(MaybeString(Some(s.to_owned())))
            }
            fn visit_map<A: serde::de::MapAccess<'de>>(self, mut map: A) -> Result<MaybeString, A::Error> {
                while map.next_entry::<serde::de::IgnoredAny, serde::de::IgnoredAny>()?.is_some() {}
                Ok(MaybeString(None))
            }
            fn visit_seq<A: serde::de::SeqAccess<'de>>(self, mut seq: A) -> Result<MaybeString, A::Error> {
                while seq.next_element::<serde::de::IgnoredAny>()?.is_some() {}
                Ok(MaybeString(None))
            }
            fn visit_bool<E>(self, _: bool) -> Result<MaybeString, E> {
                Ok(MaybeString(None))
            }
            fn visit_i64<E>(self, _: i64) -> Result<MaybeString, E> {
                Ok(MaybeString(None))
            }
            fn visit_u64<E>(self, _: u64) -> Result<MaybeString, E> {
                Ok(MaybeString(None))
            }
            fn visit_f64<E>(self, _: f64) -> Result<MaybeString, E> {
                Ok(MaybeString(None))
            }
            fn visit_unit<E>(self) -> Result<MaybeString, E> {
                Ok(MaybeString(None))
            }
        }
        d.deserialize_any(V)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn with_version(version: &str) -> String {
        format!(r#"{{"schema_version": "{version}", "crashlab_version": "9.9.9", "whatever": {{"changed": true}}}}"#)
    }

    #[test]
    fn another_major_version_is_refused_with_the_version_in_the_message() {
        let major = SchemaVersion::current().major;
        let newer = format!("{}.0", major + 1);
        let e = parse_report(&with_version(&newer), Path::new("r.json")).unwrap_err();
        assert!(matches!(e, ReportReadError::NewerMajor { .. }), "{e}");
        let msg = e.to_string();
        assert!(msg.contains("r.json") && msg.contains(&newer) && msg.contains("9.9.9"), "{msg}");

        let older = format!("{}.7", major - 1);
        let e = parse_report(&with_version(&older), Path::new("r.json")).unwrap_err();
        assert!(matches!(e, ReportReadError::OlderMajor { .. }), "{e}");
    }

    #[test]
    fn a_newer_minor_version_is_read_and_bad_versions_are_named() {
        let e = parse_report(&with_version("1.999"), Path::new("r.json")).unwrap_err();
        // Same major: the version passes and decoding is attempted.
        assert!(matches!(e, ReportReadError::Malformed { .. }), "{e}");
        for bad in ["1", "one.two", "1.2.3", "", "1."] {
            let e = parse_report(&with_version(bad), Path::new("r.json")).unwrap_err();
            assert!(matches!(e, ReportReadError::BadVersion { .. }), "{bad}: {e}");
        }
        let e = parse_report("{}", Path::new("r.json")).unwrap_err();
        assert!(matches!(e, ReportReadError::NoVersion { .. }), "{e}");
        let e = parse_report("not json", Path::new("r.json")).unwrap_err();
        assert!(matches!(e, ReportReadError::NotJson { .. }), "{e}");
    }
}

#[cfg(test)]
mod kind_tests {
    use super::*;
    use crate::report::external_fixtures::{report_with, trial};

    #[test]
    fn an_external_report_is_told_by_its_kind_and_held_against_its_own_version() {
        let r = report_with(&[trial(0, true)], None);
        let text = serde_json::to_string(&r).unwrap();
        let back = parse_any_report(&text, Path::new("e.json")).unwrap();
        assert_eq!(back, AnyReport::External(Box::new(r)));
        let e = parse_report(&text, Path::new("e.json")).unwrap_err();
        assert!(matches!(e, ReportReadError::WrongKind { .. }), "{e}");
        assert_eq!(e.to_string(), "e.json is an external report, not a survival report");

        let newer = text.replacen(EXTERNAL_SCHEMA_VERSION, "2.0", 1);
        let e = parse_any_report(&newer, Path::new("e.json")).unwrap_err();
        let msg = e.to_string();
        assert!(matches!(e, ReportReadError::NewerMajor { .. }), "{msg}");
        assert!(msg.contains(&format!("than this crashlab reads ({EXTERNAL_SCHEMA_VERSION})")), "{msg}");
        let garbled = text.replacen("\"trials_detail\"", "\"trials_detail_\"", 1);
        let e = parse_any_report(&garbled, Path::new("e.json")).unwrap_err();
        assert!(e.to_string().starts_with("e.json does not match external report schema"), "{e}");
    }
}

#[cfg(test)]
mod old_format_tests {
    use super::*;
    use crate::expectation::PersistenceModel;

    /// 1.0 reports predate `models` and `tear`: they had process-crash cells only.
    #[test]
    fn a_1_0_report_without_models_still_reads() {
        let json = r#"{
          "schema_version": "1.0", "crashlab_version": "0.1.0",
          "run": {"started_at_unix": 1, "duration_ms": 2, "dir": "/tmp/x"},
          "environment": {"kernel_release": "6.18", "fs_type": "ext4", "page_size": 4096},
          "seed": 3,
          "config": {"seed": 3, "file_size": 65536, "txns": 8, "points": "all", "trials": 1,
                     "scenarios": ["shared/no-sync"], "crashes": ["sigkill"]},
          "cells": [],
          "summary": {"cells": 0, "as_expected": 0, "unexpected": 0, "model_violations": 0, "trials": 0}
        }"#;
        let r = parse_report(json, Path::new("old.json")).expect("1.0 reports stay readable");
        assert_eq!(r.config.models, vec![PersistenceModel::ProcessCrash]);
        assert_eq!(r.config.tear, crate::power_loss::DEFAULT_TEAR);
    }
}
