//! The external report as JUnit XML (`run --writer --junit FILE`), like the
//! survival report's (one test case per cell): one test suite for the run,
//! one test case for the clean run and one per crash kind. A kind with
//! violations is a failure whose message counts them and whose text holds
//! every violating trial with its reason and replay line (power loss: the
//! minimal state and its explanation too).
//!
//! Architecture Invariant: pure.

use std::fmt::Write as _;
use std::time::Duration;

use quick_junit::{NonSuccessKind, Property, Report, TestCase, TestCaseStatus, TestSuite};

use crate::report::checker_verdict::CheckerVerdict;
use crate::report::external::ExternalReport;
use crate::report::junit::JunitError;

fn case(name: &str, trials: u64, failure: Option<(String, String)>, out: String) -> TestCase {
    let status = match failure {
        None => TestCaseStatus::success(),
        Some((message, text)) => {
            let mut s = TestCaseStatus::non_success(NonSuccessKind::Failure);
            s.set_type("violation");
            s.set_message(message);
            s.set_description(text);
            s
        }
    };
    let mut c = TestCase::new(name, status);
    c.set_classname("crashlab.external");
    c.set_assertions(trials as usize);
    c.set_system_out(out);
    c
}

/// The JUnit XML document for `report`.
pub fn external_junit_xml(report: &ExternalReport) -> Result<String, JunitError> {
    let c = &report.config;
    let mut junit = Report::new(format!("crashlab external run, seed {}", report.seed));
    junit.set_time(Duration::from_millis(report.run.duration_ms));
    let mut suite = TestSuite::new(format!("crashlab external: {}", c.writer));
    let e = &report.environment;
    suite.add_properties([
        Property::new("seed", report.seed.to_string()),
        Property::new("writer", c.writer.as_str()),
        Property::new("checker", c.checker.as_str()),
        Property::new("kernel_release", e.kernel_release.as_str()),
        Property::new("fs_type", e.fs_type.as_str()),
        Property::new("crashlab_version", report.crashlab_version.as_str()),
    ]);
    if let Some(shard) = c.shard {
        suite.add_property(Property::new("shard", shard.to_string()));
    }
    let clean = &report.clean_run;
    let failure = match &clean.checker {
        CheckerVerdict::Consistent => None,
        CheckerVerdict::Violation { reason } => Some((
            format!("the clean run (no crash) fails the checker: {reason}"),
            format!("replay: {}\n", clean.replay),
        )),
    };
    suite.add_test_case(case("clean run", 1, failure, format!("{} acks; replay: {}\n", clean.acks, clean.replay)));
    for k in &report.crashes {
        let failure = (k.violations > 0).then(|| {
            let mut text = String::new();
            for v in &k.failures {
                let _ = writeln!(text, "trial {}: {}", v.trial, v.reason);
                let _ = writeln!(text, "  {}; the writer ended with {}; {} acks", v.delivery, v.writer_end, v.acks);
                let _ = writeln!(text, "  replay: {}", v.replay);
            }
            (format!("{} of {} {} trials violated the checker", k.violations, k.trials, k.crash), text)
        });
        let mut out = format!(
            "trials {}, crashed {}, finished first {}, acks {}, consistent {}, violations {}\n",
            k.trials, k.crashed, k.finished_first, k.acks_seen, k.consistent, k.violations
        );
        if let Some(e) = &k.enospc {
            let _ = writeln!(out, "enospc: {e}");
        }
        suite.add_test_case(case(k.crash.name(), k.trials, failure, out));
    }
    for (kind, p) in [("power-loss", &report.power_loss), ("eio-sync", &report.eio_sync)] {
        let Some(p) = p else { continue };
        let failure = (p.violations > 0).then(|| {
            let mut text = String::new();
            for v in &p.failures {
                let _ = writeln!(text, "trial {} ({}): {}", v.trial, v.delivery, v.finding.explanation);
                if let Some(e) = &v.eio {
                    let _ = writeln!(text, "  {e}");
                }
                let _ = writeln!(text, "  minimal state: {}: {}", v.finding.state, v.finding.reason);
                let _ = writeln!(text, "  replay: {}", v.replay);
            }
            (format!("{} of {} {kind} trials violated the checker", p.violations, p.trials), text)
        });
        let out = format!(
            "trials {}, states checked {}, acks {}, consistent {}, violations {}\n",
            p.trials, p.states_checked, p.acks_seen, p.consistent, p.violations
        );
        suite.add_test_case(case(kind, p.trials, failure, out));
    }
    if let Some(r) = &report.power_loss_real {
        let failing: Vec<_> =
            r.outcomes.iter().filter(|o| o.is_model_violation() || o.checker.is_violation()).collect();
        let failure = (!failing.is_empty()).then(|| {
            let mut text = String::new();
            for o in &failing {
                let what = match (&o.membership.forbidden, &o.checker) {
                    (Some(f), _) if o.is_model_violation() => format!("MODEL SOUNDNESS VIOLATION: {f}"),
                    (_, c) => c.reason().unwrap_or_default().to_owned(),
                };
                let _ = writeln!(text, "trial {} ({}): {what}", o.plan.trial, o.delivery);
                let _ = writeln!(text, "  rerun: {}", o.rerun);
            }
            let message = format!(
                "power-loss-real on {}: {} checker violation(s), {} model soundness violation(s) in {} trials",
                r.fs, r.violations, r.model_violations, r.trials
            );
            (message, text)
        });
        let out = format!(
            "fs {}, trials {}, acks {}, consistent {}, violations {}, model violations {}\n",
            r.fs, r.trials, r.acks_seen, r.consistent, r.violations, r.model_violations
        );
        suite.add_test_case(case("power-loss-real", r.trials, failure, out));
    }
    junit.add_test_suite(suite);
    Ok(junit.to_string()?)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::report::external_fixtures::{report_with, trial};

    #[test]
    fn one_case_per_crash_kind_and_the_clean_run_with_failures_and_replay_lines() {
        let r = report_with(&[trial(0, false), trial(1, true), trial(2, true)], None);
        let xml = external_junit_xml(&r).unwrap();
        assert_eq!(xml.matches("<testcase ").count(), 2, "clean run + sigkill: {xml}");
        assert_eq!(xml.matches("<failure ").count(), 1, "{xml}");
        assert!(xml.contains("2 of 3 sigkill trials violated the checker"), "{xml}");
        assert!(xml.contains("trial 2: rec 2 &lt;missing&gt;"), "{xml}");
        assert!(xml.contains("replay: crashlab replay --writer ./w --checker ./c --crash sigkill --seed 5 --trial 1"));
        let ok = external_junit_xml(&report_with(&[trial(0, false)], None)).unwrap();
        assert!(!ok.contains("<failure"), "{ok}");
    }

    #[test]
    fn real_cuts_are_one_case_failing_on_a_model_violation_alone() {
        use crate::report::external_real_cut::{test_support as real, RealCutSection};
        let mut r = report_with(&[trial(0, false)], None);
        r.power_loss_real = Some(RealCutSection::of(
            crate::vocab::FsKind::Ext4,
            "posix",
            real::calibration(),
            vec![real::trial(0, true, true, &[]), real::trial(1, false, true, &[])],
        ));
        let xml = external_junit_xml(&r).unwrap();
        assert!(xml.contains("<testcase name=\"power-loss-real\""), "{xml}");
        assert!(
            xml.contains("power-loss-real on ext4: 0 checker violation(s), 1 model soundness violation(s) in 2 trials"),
            "{xml}"
        );
        assert!(xml.contains("trial 1 (") && xml.contains("MODEL SOUNDNESS VIOLATION"), "{xml}");
    }

    #[test]
    fn eio_sync_is_a_case_of_its_own_with_the_failed_sync_in_its_failure() {
        let mut r = report_with(&[trial(0, false)], None);
        r.eio_sync = Some(crate::report::external_fixtures::eio_section());
        let xml = external_junit_xml(&r).unwrap();
        assert_eq!(xml.matches("<testcase ").count(), 3, "clean run + sigkill + eio-sync: {xml}");
        assert!(xml.contains("1 of 2 eio-sync trials violated the checker"), "{xml}");
        assert!(xml.contains("msync (data sync 3) failed with EIO; eio.log bytes 8192..12288"), "{xml}");
        assert!(xml.contains("replay eio 0"), "{xml}");
    }
}
