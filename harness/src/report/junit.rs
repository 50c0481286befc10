//! The survival report as JUnit XML (`--junit FILE`), for CI systems that
//! show test results: one test suite per persistence model, one test case
//! per cell. A cell whose verdict is not `as-expected` is a failure whose
//! message is the verdict reason and whose text holds every recorded failing
//! trial (details and replay line) and the cell's replay line.
//!
//! Architecture Invariant: pure.

use std::fmt::Write as _;
use std::time::Duration;

use quick_junit::{NonSuccessKind, Property, Report, TestCase, TestCaseStatus, TestSuite};

use crate::expectation::PersistenceModel;
use crate::report::survival::{CellReport, SurvivalReport, Verdict};
use crate::report::survival_lifecycle::LifecycleCell;

#[derive(Debug, thiserror::Error)]
#[error("cannot produce JUnit XML: {0}")]
pub struct JunitError(#[from] quick_junit::SerializeError);

/// The JUnit XML document for `report`.
pub fn junit_xml(report: &SurvivalReport) -> Result<String, JunitError> {
    let mut junit = Report::new(format!("crashlab survival matrix, seed {}", report.seed));
    junit.set_time(Duration::from_millis(report.run.duration_ms));
    let mut models: Vec<PersistenceModel> = report.cells.iter().map(|c| c.model).collect();
    models.sort();
    models.dedup();
    for model in models {
        let mut suite = TestSuite::new(format!("crashlab {model}"));
        let e = &report.environment;
        suite.add_properties([
            Property::new("seed", report.seed.to_string()),
            Property::new("model", model.describe()),
            Property::new("kernel_release", e.kernel_release.as_str()),
            Property::new("fs_type", e.fs_type.as_str()),
            Property::new("page_size", e.page_size.to_string()),
            Property::new("crashlab_version", report.crashlab_version.as_str()),
        ]);
        if model.is_real() {
            for column in &report.config.real {
                let kernel = report.cells.iter().filter_map(|c| c.real.as_ref()).find(|r| r.column() == *column);
                let kernel = kernel.map_or("", |r| r.kernel_release.as_str());
                suite.add_property(Property::new(
                    format!("real {column}"),
                    format!(
                        "{}: kernel {kernel}, {}, cut {}; disk: {}",
                        column.label(),
                        column.fs,
                        column.cut(),
                        column.disk()
                    ),
                ));
            }
        }
        suite.add_test_cases(report.cells.iter().filter(|c| c.model == model).map(test_case));
        if let (PersistenceModel::ProcessCrash, Some(why)) = (model, &report.enospc_skipped) {
            let mut status = TestCaseStatus::skipped();
            status.set_message(format!("its capacity-limited tmpfs cannot be mounted here: {why}"));
            suite.add_test_case(TestCase::new("enospc column", status));
        }
        junit.add_test_suite(suite);
    }
    if let Some(l) = &report.lifecycle {
        let mut suite = TestSuite::new("crashlab lifecycle");
        suite.add_properties([
            Property::new("seed", report.seed.to_string()),
            Property::new("acks per writer run", l.config.acks.to_string()),
            Property::new("fs_model", l.config.fs_model.as_str()),
        ]);
        suite.add_test_cases(l.cells.iter().map(lifecycle_case));
        junit.add_test_suite(suite);
    }
    Ok(junit.to_string()?)
}

fn verdict_name(v: Verdict) -> &'static str {
    match v {
        Verdict::AsExpected => "as-expected",
        Verdict::Unexpected => "unexpected",
        Verdict::ModelViolation => "model-violation",
    }
}

/// One lifecycle cell; a failure lists its failing trials.
fn lifecycle_case(c: &LifecycleCell) -> TestCase {
    let failures =
        c.failures.iter().map(|f| (format!("trial {} ({})", f.trial, f.found), &f.details[..], &f.replay[..]));
    let status = cell_status(c.verdict, c.verdict_reason.as_deref(), failures, &c.replay);
    let mut case = TestCase::new(format!("lifecycle {}", c.key_text()), status);
    case.set_classname(format!("crashlab.lifecycle.{}.{}", c.model, c.kind));
    case.set_assertions(c.trials as usize);
    case.set_system_out(format!(
        "trials {}, acks {}, trials with acks {}, lost {}, corrupt {}; expectation {}\nreplay: {}\n",
        c.trials,
        c.acks_seen,
        c.trials_with_acks,
        c.trials_lost,
        c.trials_corrupt,
        serde_json::to_value(c.expectation).ok().and_then(|v| v.as_str().map(str::to_owned)).unwrap_or_default(),
        c.replay
    ));
    case
}

/// A cell's status: a success, or a failure of its verdict listing each
/// failure (headline, details, replay line) and the cell's replay line.
fn cell_status<'a>(
    verdict: Verdict,
    reason: Option<&str>,
    failures: impl Iterator<Item = (String, &'a [String], &'a str)>,
    cell_replay: &str,
) -> TestCaseStatus {
    if verdict == Verdict::AsExpected {
        return TestCaseStatus::success();
    }
    let mut s = TestCaseStatus::non_success(NonSuccessKind::Failure);
    s.set_type(verdict_name(verdict));
    s.set_message(reason.map_or_else(|| verdict_name(verdict).to_string(), str::to_owned));
    let mut text = String::new();
    for (headline, details, replay) in failures {
        let _ = writeln!(text, "{headline}:");
        for d in details {
            let _ = writeln!(text, "  {d}");
        }
        let _ = writeln!(text, "  replay: {replay}");
    }
    let _ = writeln!(text, "cell replay: {cell_replay}");
    s.set_description(text);
    s
}

fn test_case(c: &CellReport) -> TestCase {
    let failures = c.failures.iter().map(|f| (format!("at {} ({})", f.point, f.exit), &f.details[..], &f.replay[..]));
    let status = cell_status(c.verdict, c.verdict_reason.as_deref(), failures, &c.replay);
    let mut case = TestCase::new(c.key_text(), status);
    match c.real_column() {
        Some(column) => {
            case.set_classname(format!("crashlab.{}.{}-{}.{}", c.model, column.backend, column.fs, c.scenario.mapping))
        }
        None => case.set_classname(format!("crashlab.{}.{}", c.model, c.scenario.mapping)),
    };
    case.set_assertions(c.trials as usize);
    case.set_system_out(format!(
        "trials {}, acked {}, survived {}, lost {}, torn {}, truncated {}, model violations {}; expectation {}\nreplay: {}\n",
        c.trials,
        c.acked,
        c.survived,
        c.lost,
        c.torn,
        c.truncated,
        c.model_violations,
        serde_json::to_value(c.expectation).ok().and_then(|v| v.as_str().map(str::to_owned)).unwrap_or_default(),
        c.replay
    ));
    case
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_skipped_enospc_column_is_a_skipped_test_case_saying_why() {
        use crate::report::survival_cells::real_test_support::report_of;
        let mut r = report_of(vec![]);
        r.cells = Vec::new();
        let xml = junit_xml(&r).unwrap();
        assert!(!xml.contains("enospc column"));
        r.config.models = vec![PersistenceModel::ProcessCrash];
        r.enospc_skipped = Some("no user namespaces".into());
        // The skip lands in the process-crash suite, which needs a cell.
        let mut cell =
            crate::report::survival_cells::real_test_support::real_cell("shared/no-sync", "loopcut:ext4", &[]);
        cell.model = PersistenceModel::ProcessCrash;
        cell.real = None;
        r.cells = vec![cell];
        let xml = junit_xml(&r).unwrap();
        assert!(xml.contains("<testcase name=\"enospc column\">"), "{xml}");
        assert!(
            xml.contains("<skipped message=\"its capacity-limited tmpfs cannot be mounted here: no user namespaces\""),
            "{xml}"
        );
    }

    #[test]
    fn every_lifecycle_cell_is_a_test_case_and_an_unexpected_one_fails() {
        use crate::report::survival_cells::real_test_support::report_of;
        use crate::report::survival_lifecycle::test_support::{cell, section};
        use crate::vocab::CrashKind::{PowerLoss, Sigkill};
        use crate::vocab::LifecycleKind::CreateDirsync;
        let mut r = report_of(vec![]);
        r.lifecycle = Some(section(vec![cell(CreateDirsync, Sigkill, 4, 0), cell(CreateDirsync, PowerLoss, 4, 1)]));
        let xml = junit_xml(&r).unwrap();
        assert!(xml.contains("<testsuite name=\"crashlab lifecycle\" tests=\"2\""), "{xml}");
        assert!(xml.contains("name=\"lifecycle create-dirsync sigkill [process-crash]\""), "{xml}");
        assert_eq!(xml.matches("<failure").count(), 1, "{xml}");
        assert!(xml.contains("type=\"unexpected\""), "{xml}");
    }
}
