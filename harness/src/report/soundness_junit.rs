//! The soundness report as JUnit XML (`crashlab soundness --junit FILE`,
//! `report junit`-like output for CI), like the other kinds: one test suite
//! for the campaign, one test case per filesystem. A filesystem with a
//! model soundness violation or a judge mismatch is a failure whose text
//! holds every listed violation with its rerun line. A volatile disk's lost
//! file systems are findings, not failures: they go to the case's output.
//! With namespace workloads, one more case per (filesystem, workload),
//! failed when a cut left a directory the namespace model forbids (message:
//! the first listed violation's explanation and rerun line); its output is
//! the workload's operations and how often the cuts kept or lost each.
//!
//! Architecture Invariant: pure.

use std::fmt::Write as _;
use std::time::Duration;

use quick_junit::{NonSuccessKind, Property, Report, TestCase, TestCaseStatus, TestSuite};

use crate::realcut::ns_report::{FsNamespace, NsWorkloadReport};
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
    for f in report.namespace.iter().flat_map(|ns| &ns.filesystems) {
        for w in &f.workloads {
            suite.add_test_case(namespace_case(f, w));
        }
    }
    junit.add_test_suite(suite);
    Ok(junit.to_string()?)
}

/// The case of workload `w`'s namespace cuts on `f`.
fn namespace_case(f: &FsNamespace, w: &NsWorkloadReport) -> TestCase {
    let status = if w.violations == 0 {
        TestCaseStatus::success()
    } else {
        let listed: Vec<_> = f.violation_details.iter().filter(|v| v.workload == w.workload).collect();
        let mut s = TestCaseStatus::non_success(NonSuccessKind::Failure);
        s.set_type("model-soundness-violation");
        s.set_message(match listed.first() {
            Some(v) => format!("{} at {}: {}; rerun: {}", v.workload, v.point, v.detail, v.rerun),
            None => format!(
                "{} of {} real post-cut directories forbidden by the posix namespace model (not listed: only the \
                 first violations of a filesystem are)",
                w.violations, w.cuts
            ),
        });
        let mut text = format!(
            "{} of {} real post-cut directories of {} on {} forbidden by the posix namespace model\n",
            w.violations, w.cuts, w.workload, f.fs
        );
        for v in listed {
            let _ = writeln!(text, "{} at {}: {}", v.workload, v.point, v.detail);
            if let Some(k) = &v.kept {
                let _ = writeln!(text, "  evidence kept in {k}");
            }
            let _ = writeln!(text, "  rerun: {}", v.rerun);
        }
        s.set_description(text);
        s
    };
    let mut c = TestCase::new(format!("{} ({}) namespace {}", f.fs, f.cut, w.workload), status);
    c.set_classname("crashlab.soundness.namespace");
    c.set_assertions(w.cuts as usize);
    let mut out = format!("cuts {}, violations {}\n", w.cuts, w.violations);
    for u in &w.units {
        let _ = writeln!(
            out,
            "{} ({}): kept {}, lost {}, undetermined {} of {} cuts",
            u.operation, u.context, u.kept, u.lost, u.undetermined, u.cuts
        );
    }
    c.set_system_out(out);
    c
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

    #[test]
    fn one_case_per_filesystem_and_namespace_workload_and_a_namespace_violation_fails_its_case() {
        use crate::report::html::escape;
        use crate::report::soundness_html::tests::{with_namespace, NS_RERUN};
        let sound = with_namespace(sample(), false);
        let xml = soundness_junit_xml(&sound).unwrap();
        let pages = sound.filesystems.len();
        assert_eq!(xml.matches("<testcase ").count(), pages + 4, "2 filesystems × 2 workloads: {xml}");
        assert!(!xml.contains("<failure"), "{xml}");
        for case in ["ext4 (shutdown) namespace rename-over", "btrfs (shutdown) namespace sibling-fsync"] {
            assert!(xml.contains(&format!("name=\"{case}\"")), "{case}: {xml}");
        }
        let xml = soundness_junit_xml(&with_namespace(sample(), true)).unwrap();
        assert_eq!(xml.matches("<failure").count(), 1, "{xml}");
        // The failure is btrfs's rename-over case, its message the explanation and the rerun line.
        let case = xml.split("<testcase ").find(|c| c.contains("btrfs (shutdown) namespace rename-over")).unwrap();
        let message = escape(&format!(
            "rename-over at before:5: the post-cut directory holds state (2 pages), a size no state of the model \
             has; rerun: {NS_RERUN}"
        ));
        assert!(case.contains("<failure") && case.contains(&format!("message=\"{message}\"")), "{case}");
        assert!(case.contains("evidence kept in /tmp/evidence/ns-1"), "{case}");
    }
}
