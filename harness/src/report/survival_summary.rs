//! The human summary of a survival report: a table per persistence model,
//! then the failures.
//!
//! Architecture Invariant: pure.

use std::fmt::Write as _;

use crate::expectation::{AckExpectation, PersistenceModel};
use crate::report::survival::{CellReport, SurvivalReport, Verdict};
use crate::spec::MappingKind;
use crate::summary_text::write_unexpected_cell;
use crate::vocab::{CrashKind, RealColumn};

impl SurvivalReport {
    /// Did every cell come out as expected?
    pub fn all_as_expected(&self) -> bool {
        self.cells.iter().all(|c| c.verdict == Verdict::AsExpected)
            && self.lifecycle.iter().flat_map(|l| &l.cells).all(|c| c.verdict == Verdict::AsExpected)
    }

    /// Real power cuts whose file the simulated power-loss model forbids,
    /// over every `power-loss-real` cell.
    pub fn soundness_violations(&self) -> u64 {
        self.cells.iter().filter_map(|c| c.real.as_ref()).map(|r| r.soundness_violations).sum()
    }

    /// The human summary: a table per persistence model, then the failures.
    pub fn human_summary(&self) -> String {
        let mut out = String::new();
        let e = &self.environment;
        let _ = writeln!(
            out,
            "crashlab {} survival matrix: seed {}, {} on {} (kernel {}), {}-byte file, {}-byte pages, {} txns, points {}",
            self.crashlab_version,
            self.seed,
            self.run.dir,
            e.fs_type,
            e.kernel_release,
            self.config.file_size,
            e.page_size,
            self.config.txns,
            self.config.points,
        );
        if let Some(shard) = self.config.shard {
            let _ = writeln!(out, "shard {shard} only: `crashlab report merge` joins the shards into the whole run");
        }
        // One table per model; one per real column under power-loss-real.
        let mut groups: Vec<(PersistenceModel, Option<RealColumn>)> = Vec::new();
        for c in &self.cells {
            if !groups.contains(&(c.model, c.real_column())) {
                groups.push((c.model, c.real_column()));
            }
        }
        groups.sort_by_key(|&(model, _)| model);
        for (model, column) in groups {
            let cells: Vec<&CellReport> =
                self.cells.iter().filter(|c| c.model == model && c.real_column() == column).collect();
            let real = cells.first().and_then(|c| c.real.as_ref());
            match real {
                Some(r) => {
                    let _ = writeln!(
                        out,
                        "\nmodel {}: {}\n  backend {}, kernel {}, {}, cut {} ({}); disk: {}",
                        r.column().label(),
                        model.describe(),
                        r.backend,
                        r.kernel_release,
                        r.fs,
                        r.cut,
                        r.cut.describe(),
                        r.disk
                    );
                }
                None => {
                    let _ = writeln!(out, "\nmodel {}: {}", model, model.describe());
                }
            }
            let (survived, lost, torn, extra) = if real.is_some() {
                ("survived", "lost", "torn", "kept more")
            } else if model.is_power_loss() {
                ("guaranteed", "may lose", "may tear", "states")
            } else {
                ("survived", "lost", "torn", "in-fl torn")
            };
            let _ = writeln!(
                out,
                "{:<26} {:<8} {:>6} {:>6} {:>10} {:>8} {:>8} {:>6} {:>10} {:>6} {:>5}  verdict",
                "scenario", "crash", "trials", "acked", survived, lost, torn, "trunc", extra, "sigbus", "viol"
            );
            for c in &cells {
                let extra = match (&c.real, c.states_checked) {
                    (Some(r), _) => format!("{}/{}", r.trials_kept_more, r.trials_with_unsynced_pages),
                    (None, Some(n)) => n.to_string(),
                    (None, None) => format!("{}/{}", c.in_flight_torn, c.in_flight_stores),
                };
                let _ = writeln!(
                    out,
                    "{:<26} {:<8} {:>6} {:>6} {:>10} {:>8} {:>8} {:>6} {:>10} {:>6} {:>5}  {}",
                    c.scenario.to_string(),
                    c.crash.name(),
                    c.trials,
                    c.acked,
                    c.survived,
                    c.lost,
                    c.torn,
                    c.truncated,
                    extra,
                    c.sigbus_faults,
                    c.model_violations,
                    verdict_text(c),
                );
            }
            if let Some(r) = real {
                let _ = writeln!(
                    out,
                    "survived/lost/torn = what the real post-cut files held; kept more = K/U: of U trials with \
                     pages the simulated model lets vary, K kept an unsynced page (kernel {})",
                    r.kernel_release
                );
                let violations: u64 =
                    cells.iter().filter_map(|c| c.real.as_ref()).map(|r| r.soundness_violations).sum();
                if violations > 0 {
                    let _ = writeln!(
                        out,
                        "!!! MODEL SOUNDNESS VIOLATION under {}: {violations} real power cut(s) left a file the \
                         simulated power-loss model forbids: the simulated model is unsound on this kernel and \
                         filesystem (details and evidence below)",
                        r.column().label()
                    );
                }
            }
            // MAP_PRIVATE cells lose everything by design; explaining each is noise.
            let explained: Vec<&CellReport> = cells
                .iter()
                .copied()
                .filter(|c| !c.explanations.is_empty() && c.expectation != AckExpectation::AllLost)
                .collect();
            if !explained.is_empty() {
                let _ = writeln!(out, "why acks may be lost under {model} (one minimal explanation per cell):");
                for c in explained {
                    let e = &c.explanations[0];
                    let _ = writeln!(out, "  {} at {}: {}", c.scenario, e.point, e.text);
                    let _ = writeln!(out, "    replay: {}", e.replay);
                }
            }
        }
        if let Some(why) = &self.enospc_skipped {
            let _ = writeln!(out, "enospc column skipped: its capacity-limited tmpfs cannot be mounted here ({why})");
        }
        if self.config.crashes.contains(&CrashKind::Enospc)
            && self.config.scenarios.iter().any(|s| s.mapping == MappingKind::Private)
        {
            let _ = writeln!(
                out,
                "enospc: not applicable to the MAP_PRIVATE rows (a private store into a hole copies to anonymous \
                 memory and never allocates a page of the file): no cells, not a pass"
            );
        }
        if let Some(l) = &self.lifecycle {
            out.push_str(&l.human_summary());
        }
        let s = &self.summary;
        let _ = writeln!(
            out,
            "\n{} cells, {} trials: {} as expected, {} unexpected, {} with model violations",
            s.cells, s.trials, s.as_expected, s.unexpected, s.model_violations
        );
        let unsound = self.soundness_violations();
        if unsound > 0 {
            let _ = writeln!(
                out,
                "!!! {unsound} MODEL SOUNDNESS VIOLATION(S): real power cuts left files the simulated power-loss \
                 model forbids; its power-loss verdicts cannot be trusted on that kernel and filesystem"
            );
        }
        for c in self.cells.iter().filter(|c| c.verdict != Verdict::AsExpected) {
            let failures =
                c.failures.iter().map(|f| (format!("at {} ({}):", f.point, f.exit), &f.details[..], &f.replay[..]));
            write_unexpected_cell(
                &mut out,
                &c.key_text(),
                c.verdict_reason.as_deref().unwrap_or(""),
                failures,
                &c.replay,
            );
        }
        out
    }
}

fn verdict_text(c: &CellReport) -> &'static str {
    if c.real.as_ref().is_some_and(|r| r.soundness_violations > 0) {
        return "MODEL SOUNDNESS VIOLATION";
    }
    match (c.verdict, c.expectation) {
        (Verdict::AsExpected, AckExpectation::AllSurvive) => "ok: acks survive",
        (Verdict::AsExpected, AckExpectation::AllLost) => "ok: acks never reach the file",
        (Verdict::AsExpected, AckExpectation::MayBeLost) => "ok: acks not guaranteed",
        (Verdict::Unexpected, _) => "UNEXPECTED",
        (Verdict::ModelViolation, _) => "MODEL VIOLATION",
    }
}

#[cfg(test)]
mod tests {
    use crate::report::survival_cells::real_test_support::report_of;
    use crate::vocab::CrashKind;

    #[test]
    fn the_summary_says_when_the_enospc_column_was_skipped_and_where_it_does_not_apply() {
        let mut r = report_of(vec![]);
        r.config.scenarios = vec!["shared/no-sync".parse().unwrap(), "private/no-sync".parse().unwrap()];
        let text = r.human_summary();
        assert!(!text.contains("enospc"), "{text}");
        r.config.crashes = vec![CrashKind::Sigkill, CrashKind::Enospc];
        let text = r.human_summary();
        assert!(text.contains("enospc: not applicable to the MAP_PRIVATE rows"), "{text}");
        r.config.scenarios.pop();
        assert!(!r.human_summary().contains("not applicable"), "no private row, nothing to say");
        r.enospc_skipped = Some("unshare(CLONE_NEWUSER): Operation not permitted".into());
        assert!(r.human_summary().contains(
            "enospc column skipped: its capacity-limited tmpfs cannot be mounted here (unshare(CLONE_NEWUSER): \
             Operation not permitted)"
        ));
    }
}
