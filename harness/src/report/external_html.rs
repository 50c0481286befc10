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

    if !report.crashes.is_empty() || report.power_loss.is_some() {
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
        if let Some(p) = &report.power_loss {
            let _ = writeln!(
                out,
                "<tr{}><td>power-loss</td><td class=\"num\">{}</td><td class=\"num\">{}</td><td class=\"num\">{}</td>\
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
    }

    let _ = writeln!(out, "<h2>Violations</h2>");
    let mut any = false;
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
    if let Some(p) = &report.power_loss {
        for v in &p.failures {
            any = true;
            let f = &v.finding;
            let _ = writeln!(
                out,
                "<div class=\"failure\"><h3>power-loss trial {} ({})</h3><p>{}</p>\
                 <div class=\"explanation\">minimal state <code>{}</code>: {}<br>first failing state <code>{}</code> \
                 ({}): {}</div>{}<code class=\"replay\">{}</code></div>",
                v.trial,
                escape(&v.delivery.to_string()),
                escape(&f.explanation),
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::report::external::test_support::{report_with, trial};

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
