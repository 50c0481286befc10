//! The external report (`run --writer`) as one self-contained HTML page,
//! styled like the survival report's (the same inline CSS, no script, no
//! external asset): the run (commands, seed, environment), the clean run,
//! per crash kind what survived (trials, crashed, acks, consistent,
//! violations), every violation with its reason, how the crash was
//! delivered and its replay line, and for power loss the minimal state and
//! its explanation.
//!
//! Every piece of text from the report goes through [`escape`].
//!
//! Architecture Invariant: pure.

use std::fmt::Write as _;

use crate::report::checker_verdict::CheckerVerdict;
use crate::report::external::ExternalReport;
use crate::report::external_power_loss::PowerLossSection;
use crate::report::external_real_cut::RealCutSection;
use crate::report::html::{escape, page_start};
use crate::report::source_location::{best_frame, PowerLossAttribution, SourceFrame};
use crate::utc_time::utc_timestamp;

fn verdict_cell(v: &CheckerVerdict) -> String {
    match v {
        CheckerVerdict::Consistent => "<span class=\"verdict-as-expected\">consistent</span>".into(),
        CheckerVerdict::Violation { reason } => {
            format!("<span class=\"verdict-model-violation\">VIOLATION</span>: {}", escape(reason))
        }
    }
}

/// The page for `report`.
pub fn render_external_html(report: &ExternalReport) -> String {
    let mut out = String::new();
    let c = &report.config;
    let e = &report.environment;
    let title = format!("crashlab external run: {}", c.writer);
    page_start(&mut out, &title);
    let _ = writeln!(
        out,
        "<p class=\"muted\">crashlab {}, protocol v{}, seed {}, started {}{}</p>",
        escape(&report.crashlab_version),
        report.protocol_version,
        report.seed,
        escape(&utc_timestamp(report.run.started_at_unix)),
        c.shard.map(|s| format!(", shard {s} only")).unwrap_or_default()
    );
    let s = &report.summary;
    let (class, text) = if report.violation_found() {
        ("failed", format!("VIOLATION FOUND: {} of {} trials violated the checker", s.violations, s.trials))
    } else if report.nothing_acked() {
        ("failed", "NOTHING ACKNOWLEDGED: nothing the writer vouched for was tested".to_owned())
    } else {
        ("ok", format!("no violation in {} trials", s.trials))
    };
    let _ = writeln!(out, "<div class=\"banner {class}\">{}</div>", escape(&text));
    if let Some(t) = report.no_acks_text() {
        let _ = writeln!(out, "<p>{}</p>", escape(&t));
    }

    let _ = writeln!(out, "<h2>Run</h2>\n<dl class=\"env\">");
    let mut row = |k: &str, v: String| {
        let _ = writeln!(out, "<dt>{}</dt><dd>{}</dd>", escape(k), v);
    };
    row("writer", format!("<code>{}</code>{}", escape(&c.writer), if c.shell { " (sh -c)" } else { "" }));
    row("checker", format!("<code>{}</code>", escape(&c.checker)));
    if let Some(setup) = &c.setup {
        row("setup", format!("<code>{}</code>", escape(setup)));
    }
    row("crash kinds", escape(&c.crashes.iter().map(|k| k.name()).collect::<Vec<_>>().join(", ")));
    row("trials per kind", c.trials.to_string());
    row("kernel", escape(&e.kernel_release));
    row("filesystem", escape(&e.fs_type));
    row("page size", e.page_size.to_string());
    row("directory", escape(&report.run.dir));
    let _ = writeln!(out, "</dl>");

    let clean = &report.clean_run;
    let _ = writeln!(out, "<h2>Clean run (no crash)</h2>");
    let _ = writeln!(
        out,
        "<p>{:.1} ms, {} acks{}; checker: {}</p>",
        clean.duration_ns as f64 / 1e6,
        clean.acks,
        clean.last_ack.as_ref().map(|a| format!(", the last <code>{}</code>", escape(a))).unwrap_or_default(),
        verdict_cell(&clean.checker)
    );
    let _ = writeln!(out, "<code class=\"replay\">{}</code>", escape(&clean.replay));

    let traced = [("power-loss", &report.power_loss), ("eio-sync", &report.eio_sync)];
    let traced: Vec<(&str, &PowerLossSection)> =
        traced.iter().filter_map(|(k, s)| s.as_ref().map(|s| (*k, s))).collect();
    if !report.crashes.is_empty() || !traced.is_empty() {
        let _ = writeln!(out, "<h2>What survived, per crash kind</h2>");
        let _ = writeln!(
            out,
            "<table class=\"cells\">\n<tr><th>crash</th><th>trials</th><th>crashed</th><th>finished first</th>\
             <th>acks seen</th><th>max acks</th><th>consistent</th><th>violations</th></tr>"
        );
        for k in &report.crashes {
            let _ = writeln!(
                out,
                "<tr{}><td>{}</td><td class=\"num\">{}</td><td class=\"num\">{}</td><td class=\"num\">{}</td>\
                 <td class=\"num\">{}</td><td class=\"num\">{}</td><td class=\"num\">{}</td><td class=\"num\">{}</td></tr>",
                if k.violations > 0 { " class=\"failing\"" } else { "" },
                escape(k.crash.name()),
                k.trials,
                k.crashed,
                k.finished_first,
                k.acks_seen,
                k.max_acks,
                k.consistent,
                k.violations
            );
        }
        for &(kind, p) in &traced {
            let _ = writeln!(
                out,
                "<tr{}><td>{kind}</td><td class=\"num\">{}</td><td class=\"num\">{}</td><td class=\"num\">{}</td>\
                 <td class=\"num\">{}</td><td class=\"num\">{}</td><td class=\"num\">{}</td><td class=\"num\">{}</td></tr>",
                if p.violations > 0 { " class=\"failing\"" } else { "" },
                p.trials,
                p.trials - p.finished_first,
                p.finished_first,
                p.acks_seen,
                p.max_acks,
                p.consistent,
                p.violations
            );
        }
        let _ = writeln!(out, "</table>");
        for e in report.crashes.iter().filter_map(|k| k.enospc.as_ref()) {
            let _ = writeln!(out, "<p class=\"muted\">enospc: {}.</p>", escape(&e.line()));
        }
        if let Some(p) = &report.power_loss {
            let _ = writeln!(
                out,
                "<p class=\"muted\">power-loss: {} states checked ({} trials exhaustively), {} checker runs; \
                 traced clean run {:.1} ms with {} sync calls.</p>",
                p.states_checked,
                p.exhaustive_trials,
                p.checker_runs,
                p.calibration.traced_clean_ns as f64 / 1e6,
                p.calibration.sync_calls
            );
        }
        if let Some(p) = &report.eio_sync {
            let _ = writeln!(
                out,
                "<p class=\"muted\">eio-sync: one data sync failed with EIO in each trial (of {} data syncs), then \
                 the power was lost at a later one or after the end; {} states checked, {} checker runs.</p>",
                p.calibration.data_syncs, p.states_checked, p.checker_runs
            );
            let _ = writeln!(
                out,
                "<table class=\"cells\">\n<tr><th>trial</th><th>failed sync</th><th>then</th><th>verdict</th></tr>"
            );
            for t in &p.trials_detail {
                let what = match &t.eio {
                    Some(e) => (e.to_string(), e.next()),
                    None => (t.point.to_string(), "the writer never reached it".to_owned()),
                };
                let _ = writeln!(
                    out,
                    "<tr{}><td class=\"num\">{}</td><td>{}</td><td>{}</td><td>{}</td></tr>",
                    if t.verdict.is_violation() { " class=\"failing\"" } else { "" },
                    t.trial,
                    escape(&what.0),
                    escape(&what.1),
                    verdict_cell(&t.verdict)
                );
            }
            let _ = writeln!(out, "</table>");
        }
    }

    let real = report.power_loss_real.as_ref().map(real_cut_html);
    if let Some((section, _)) = &real {
        out.push_str(section);
    }

    let _ = writeln!(out, "<h2>Violations</h2>");
    let mut any = real.is_some_and(|(_, failed)| failed);
    if let CheckerVerdict::Violation { reason } = &clean.checker {
        any = true;
        let _ = writeln!(
            out,
            "<div class=\"failure\"><h3>clean run (no crash at all)</h3><p>{}</p><code class=\"replay\">{}</code></div>",
            escape(reason),
            escape(&clean.replay)
        );
    }
    for k in &report.crashes {
        for v in &k.failures {
            any = true;
            let _ = writeln!(
                out,
                "<div class=\"failure\"><h3>{} trial {}</h3><p>{}</p><p class=\"muted\">{}; the writer ended with {}; \
                 {} acks{}</p><code class=\"replay\">{}</code></div>",
                escape(k.crash.name()),
                v.trial,
                escape(&v.reason),
                escape(&v.delivery.to_string()),
                escape(&v.writer_end.to_string()),
                v.acks,
                v.last_ack.as_ref().map(|a| format!(", the last <code>{}</code>", escape(a))).unwrap_or_default(),
                escape(&v.replay)
            );
        }
    }
    for &(kind, p) in &traced {
        for v in &p.failures {
            any = true;
            let f = &v.finding;
            let _ = writeln!(
                out,
                "<div class=\"failure\"><h3>{kind} trial {} ({})</h3><p>{}</p>{}\
                 <div class=\"explanation\">minimal state <code>{}</code>: {}<br>first failing state <code>{}</code> \
                 ({}): {}</div>{}<code class=\"replay\">{}</code></div>",
                v.trial,
                escape(&v.delivery.to_string()),
                escape(&f.explanation),
                v.eio
                    .as_ref()
                    .map(|e| format!("<p class=\"muted\">{}</p>", escape(&e.to_string())))
                    .unwrap_or_default(),
                escape(&f.state),
                escape(&f.reason),
                escape(&f.first_state),
                escape(&f.first_state_kind),
                escape(&f.first_reason),
                f.attribution.as_deref().map(attribution_html).unwrap_or_default(),
                escape(&v.replay)
            );
        }
    }
    if !any {
        let _ = writeln!(out, "<p>None.</p>");
    }
    let _ = writeln!(out, "</body>\n</html>");
    out
}

/// The lost ack's and the syncs' stacks of a power-loss violation: the
/// frame that says where (as in the explanation), then every frame.
fn attribution_html(a: &PowerLossAttribution) -> String {
    let stack = |title: String, frames: &[SourceFrame]| {
        let best = best_frame(frames).map(|f| escape(&f.location())).unwrap_or_default();
        let rows: String = frames.iter().map(|f| format!("<li><code>{}</code></li>", escape(&f.location()))).collect();
        format!(
            "<details class=\"stack\"><summary>{} at <code>{best}</code></summary><ol>{rows}</ol></details>",
            escape(&title)
        )
    };
    let mut out = String::from("<div class=\"attribution\">");
    if let Some(ack) = &a.ack {
        out += &stack(format!("the ack (line {}) was printed", ack.line), &ack.frames);
    }
    for c in &a.changed {
        out += &stack(format!("{} changed after its last sync before the call", c.units.join(", ")), &c.frames);
    }
    for s in &a.syncs {
        out += &stack(format!("{} was last synced by {} (call {})", s.units.join(", "), s.syscall, s.call), &s.frames);
    }
    if !a.never_synced.is_empty() {
        out += &format!("<p>{} never synced by the writer</p>", escape(&a.never_synced.join(", ")));
    }
    out + "</div>"
}

/// The section's part of the HTML page: its table, its coverage, and its
/// failing trials (model soundness violations and checker violations).
/// The bool: it had failing trials.
fn real_cut_html(r: &RealCutSection) -> (String, bool) {
    let mut out = String::new();
    let _ = writeln!(out, "<h2>Real power cuts ({}, {})</h2>", r.fs, escape(r.cut.describe()));
    let _ = writeln!(
        out,
        "<table class=\"cells\">\n<tr><th>trials</th><th>acks seen</th><th>consistent</th><th>violations</th>\
         <th>model violations</th><th>not judged</th></tr>\n<tr{}><td class=\"num\">{}</td><td class=\"num\">{}</td>\
         <td class=\"num\">{}</td><td class=\"num\">{}</td><td class=\"num\">{}</td><td class=\"num\">{}</td></tr>\n</table>",
        if r.violations + r.model_violations > 0 { " class=\"failing\"" } else { "" },
        r.trials,
        r.acks_seen,
        r.consistent,
        r.violations,
        r.model_violations,
        r.not_judged
    );
    let units: Vec<String> = r.coverage.units.iter().map(|(k, n)| format!("{k:?} {n}").to_lowercase()).collect();
    let _ = writeln!(
        out,
        "<p class=\"muted\">judged against the {} model; open units kept: {}; sizes beyond the durable size: {}; \
         no cut exercised: {}</p>",
        escape(&r.fs_model),
        escape(&units.join(", ")),
        r.coverage.sizes_beyond_floor,
        escape(&r.coverage.unexercised().join("; "))
    );
    let mut failed = false;
    for o in &r.outcomes {
        let (title, why) = if o.is_model_violation() {
            ("MODEL SOUNDNESS VIOLATION", o.membership.forbidden.clone().unwrap_or_default())
        } else if let CheckerVerdict::Violation { reason } = &o.checker {
            ("checker violation", reason.clone())
        } else {
            continue;
        };
        failed = true;
        let _ = writeln!(
            out,
            "<div class=\"failure\"><h3>power-loss-real trial {}: {title}</h3><p>{}</p><p class=\"muted\">{}; {} acks{}</p>\
             <code class=\"replay\">{}</code></div>",
            o.plan.trial,
            escape(&why),
            escape(&o.delivery.to_string()),
            o.acks,
            o.evidence.as_ref().map(|e| format!("; kept in <code>{}</code>", escape(e))).unwrap_or_default(),
            escape(&o.rerun)
        );
    }
    (out, failed)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::report::external_fixtures::{report_with, trial};
    use crate::report::external_real_cut::test_support as real;
    use crate::report::external_real_cut::UnitKept;

    #[test]
    fn real_cuts_get_their_section_and_a_model_violation_is_a_failure_with_its_evidence() {
        let mut r = report_with(&[trial(0, false)], None);
        assert!(render_external_html(&r).contains("<h2>Violations</h2>\n<p>None.</p>"));
        r.power_loss_real = Some(RealCutSection::of(
            crate::vocab::FsKind::Xfs,
            "posix",
            real::calibration(),
            vec![real::trial(0, true, true, &[(UnitKept::Floor, 2)]), real::trial(1, false, true, &[])],
        ));
        let html = render_external_html(&r);
        assert!(html.contains("<h2>Real power cuts (xfs, FS_IOC_SHUTDOWN(NOLOGFLUSH)"), "{html}");
        assert!(html.contains("<h3>power-loss-real trial 1: MODEL SOUNDNESS VIOLATION</h3>"), "{html}");
        assert!(html.contains("kept in <code>/e/trial-1</code>"), "{html}");
        assert!(!html.contains("<p>None.</p>"), "a model violation is a failure: {html}");
        assert!(!html.contains("trial 0: "), "an allowed, consistent cut is no failure");
    }

    #[test]
    fn the_page_shows_every_kind_every_violation_with_its_replay_and_escapes_text() {
        let r = report_with(&[trial(0, false), trial(1, true)], None);
        let html = render_external_html(&r);
        assert!(html.starts_with("<!DOCTYPE html>") && html.trim_end().ends_with("</html>"));
        assert!(!html.contains("<script") && !html.contains("http://") && !html.contains("https://"), "self-contained");
        assert!(html.contains("./w &amp; &lt;b&gt;"), "the writer's text is escaped");
        assert!(!html.contains("./w & <b>"));
        assert!(html.contains("<td>sigkill</td><td class=\"num\">2</td>"), "the sigkill row counts 2 trials");
        assert!(html.contains("<h3>sigkill trial 1</h3><p>rec 1 &lt;missing&gt;</p>"), "{html}");
        assert!(html.contains("--crash sigkill --seed 5 --trial 1</code>"), "the replay line");
        assert!(html.contains("banner failed"));
        assert!(html.contains("--crash clean --seed 5"), "the clean run's replay line");
        let ok = render_external_html(&report_with(&[trial(0, false)], None));
        assert!(ok.contains("banner ok") && ok.contains("<p>None.</p>"), "{ok}");
    }

    #[test]
    fn eio_sync_has_a_row_a_table_of_failed_syncs_and_its_violations() {
        let mut r = report_with(&[trial(0, false)], None);
        r.eio_sync = Some(crate::report::external_fixtures::eio_section());
        let html = render_external_html(&r);
        assert!(html.contains("<tr class=\"failing\"><td>eio-sync</td>"), "a row in the kinds' table: {html}");
        assert!(html.contains("one data sync failed with EIO in each trial (of 6 data syncs)"), "{html}");
        assert!(
            html.contains("retried the sync, made 1 more ack, exited with status 0"),
            "what the writer did: {html}"
        );
        assert!(html.contains("made no more acks, exited with status 3"), "{html}");
        assert!(html.contains("<h3>eio-sync trial 0 ("), "{html}");
        assert!(html.contains("acked record 2 &lt;missing&gt;") && !html.contains("record 2 <missing>"), "escaped");
    }

    #[test]
    fn a_violation_s_stacks_show_the_best_frame_then_every_frame_escaped() {
        use crate::report::source_location::{AckAttribution, ChangeAttribution, SyncAttribution};
        let frame = |function: &str, file: Option<&str>, line: Option<u32>, object: &str| SourceFrame {
            function: Some(function.into()),
            file: file.map(str::to_owned),
            line,
            object: object.into(),
            offset: 0x10,
        };
        let libc = frame("msync", None, None, "/lib/libc.so.6");
        let a = PowerLossAttribution {
            ack: Some(AckAttribution { line: 3, frames: vec![frame("print<T>", Some("w.c"), Some(9), "/w")] }),
            syncs: vec![SyncAttribution {
                call: 7,
                syscall: "msync".into(),
                units: vec!["log page 1".into()],
                frames: vec![libc, frame("flush", Some("w.c"), Some(5), "/w")],
            }],
            never_synced: vec!["log page 2".into()],
            changed: vec![ChangeAttribution {
                units: vec!["log page 1".into()],
                frames: vec![frame("append", Some("w.c"), Some(4), "/w")],
            }],
        };
        let html = attribution_html(&a);
        assert!(html.contains("log page 1 changed after its last sync before the call at <code>w.c:4 (append)</code>"));
        assert!(html.contains("the ack (line 3) was printed at <code>w.c:9 (print&lt;T&gt;)</code>"), "{html}");
        assert!(html.contains("log page 1 was last synced by msync (call 7) at <code>w.c:5 (flush)</code>"), "{html}");
        assert!(
            html.contains("<li><code>msync (in /lib/libc.so.6+0x10)</code></li><li><code>w.c:5 (flush)</code></li>")
        );
        assert!(html.contains("<p>log page 2 never synced by the writer</p>"), "{html}");
        assert!(!html.contains("print<T>"), "escaped");
    }
}
