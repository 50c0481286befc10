//! The soundness report as JUnit XML (`crashlab soundness --junit FILE`,
//! `report junit`-like output for CI), like the other kinds: one test suite
//! for the campaign, one test case per filesystem. A filesystem with a
//! model soundness violation or a judge mismatch is a failure whose text
//! holds every listed violation with its rerun line. A volatile disk's lost
//! file systems are findings, not failures: they go to the case's output.
//!
//! Architecture Invariant: pure.

use std::fmt::Write as _;
use std::time::Duration;

use quick_junit::{NonSuccessKind, Property, Report, TestCase, TestCaseStatus, TestSuite};

use crate::realcut::report::SoundnessReport;
use crate::report::junit::JunitError;

/// The JUnit XML document for `report`.
pub fn soundness_junit_xml(report: &SoundnessReport) -> Result<String, JunitError> {
    let mut junit = Report::new(format!("crashlab soundness, seed {}", report.seed));
    junit.set_time(Duration::from_millis(report.duration_ms));
    let mut suite = TestSuite::new(format!("crashlab soundness: {}", report.backend));
    let e = &report.environment;
    suite.add_properties([
        Property::new("seed", report.seed.to_string()),
        Property::new("backend", report.backend.name()),
        Property::new("kernel_release", e.kernel_release.as_str()),
        Property::new("model", e.model.as_str()),
        Property::new("crashlab_version", report.crashlab_version.as_str()),
    ]);
    for f in &report.filesystems {
        let status = if f.violations + f.judge_mismatches == 0 {
            TestCaseStatus::success()
        } else {
            let mut text = String::new();
            for v in &f.violation_details {
                let _ = writeln!(text, "{} at {}: {}", v.scenario, v.point, v.detail);
                let _ = writeln!(text, "  rerun: {}", v.rerun);
            }
            let mut s = TestCaseStatus::non_success(NonSuccessKind::Failure);
            s.set_type("model-soundness-violation");
            s.set_message(format!(
                "{} of {} real post-cut files on {} forbidden by the model, {} judge mismatch(es)",
                f.violations, f.trials, f.fs, f.judge_mismatches
            ));
            s.set_description(text);
            s
        };
        let mut c = TestCase::new(format!("{} ({})", f.fs, f.cut), status);
        c.set_classname("crashlab.soundness");
        c.set_assertions(f.trials as usize);
        let mut out = format!(
            "trials {}, violations {}, unsynced data kept in {} of {} trials\n",
            f.trials, f.violations, f.kept_more.trials_kept_more, f.kept_more.trials_with_unsynced_pages
        );
        if let Some(d) = &f.volatile_disk {
            let _ = writeln!(
                out,
                "volatile disk: {} states checked, {} left no readable file",
                d.states_checked, d.states_unreadable
            );
            for u in &d.unreadable {
                let _ = writeln!(
                    out,
                    "  lost: trial {} state {}: {}",
                    u.trial,
                    u.state,
                    u.explanation.as_deref().unwrap_or(&u.detail)
                );
            }
        }
        c.set_system_out(out);
        suite.add_test_case(c);
    }
    junit.add_test_suite(suite);
    Ok(junit.to_string()?)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> SoundnessReport {
        serde_json::from_str(include_str!("../../../reports/samples/soundness-loopcut.json")).unwrap()
    }

    #[test]
    fn one_case_per_filesystem_and_a_violation_is_a_failure_with_its_rerun_line() {
        let mut r = sample();
        let xml = soundness_junit_xml(&r).unwrap();
        assert_eq!(xml.matches("<testcase ").count(), r.filesystems.len(), "{xml}");
        assert!(!xml.contains("<failure"), "a sound campaign has no failure: {xml}");
        let f = &mut r.filesystems[0];
        f.violations = 1;
        f.violation_details.push(crate::realcut::report::ViolationReport {
            scenario: f.scenarios[0].scenario,
            point: crate::crash::CrashPoint::BeforeOp(3),
            detail: "page 2 holds bytes no version had".into(),
            kept: None,
            rerun: "crashlab soundness --rerun-this".into(),
        });
        let xml = soundness_junit_xml(&r).unwrap();
        assert_eq!(xml.matches("<failure").count(), 1, "{xml}");
        assert!(xml.contains("page 2 holds bytes no version had") && xml.contains("crashlab soundness --rerun-this"));
    }
}
