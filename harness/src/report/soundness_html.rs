//! The soundness report (`crashlab soundness`) as one self-contained HTML
//! page, styled like the other reports (the same inline CSS, no script, no
//! external asset): the verdict, where and how the power was cut, per
//! filesystem what the real cuts did (trials, violations, how often an
//! unsynced page survived anyway, acks), per workload, every violation with
//! its rerun line, and a volatile disk's states (lost filesystems with what
//! crashlab found out about them).
//!
//! Every piece of text from the report goes through [`escape`].
//!
//! Architecture Invariant: pure.

use std::fmt::Write as _;

use crate::realcut::report::{FsSoundness, SoundnessReport};
use crate::realcut::volatile_report::DiskStateFinding;
use crate::report::html::{escape, page_start, percent};

/// A share as the survival page rounds it (never 0% or 100% unless it is);
/// a dash when there is nothing to share.
fn share(part: u64, whole: u64) -> String {
    if whole == 0 {
        "–".into()
    } else {
        format!("{}%", percent(part, whole))
    }
}

/// The page for `report`.
pub fn render_soundness_html(report: &SoundnessReport) -> String {
    let mut out = String::new();
    let title = format!("crashlab soundness: {} power cuts", report.backend);
    page_start(&mut out, &title);
    let _ = writeln!(
        out,
        "<p class=\"muted\">crashlab {}, seed {}, {} ms</p>",
        escape(&report.crashlab_version),
        report.seed,
        report.duration_ms
    );
    let s = &report.summary;
    let (class, text) = if s.sound {
        ("ok", format!("SOUND: every one of {} real post-cut files was allowed by the model", s.trials))
    } else {
        (
            "failed",
            format!(
                "MODEL SOUNDNESS VIOLATION: {} of {} real post-cut files forbidden by the model, {} judge mismatch(es)",
                s.violations, s.trials, s.judge_mismatches
            ),
        )
    };
    let _ = writeln!(out, "<div class=\"banner {class}\">{}</div>", escape(&text));

    let e = &report.environment;
    let _ = writeln!(out, "<h2>Environment</h2>\n<dl class=\"env\">");
    let mut row = |k: &str, v: &str| {
        let _ = writeln!(out, "<dt>{}</dt><dd>{}</dd>", escape(k), escape(v));
    };
    row("backend", report.backend.name());
    row("kernel (of the cuts)", &e.kernel_release);
    row("page size", &e.page_size.to_string());
    row("work directory", &format!("{} ({})", e.work_dir, e.work_dir_fs));
    row("model", &e.model);
    row("disk", &e.disk);
    if let Some(a) = &e.accelerator {
        row("accelerator", a);
    }
    let c = &report.config;
    row("trials per filesystem", &c.trials.to_string());
    row("file size, transactions", &format!("{} bytes, {}", c.file_size, c.txns));
    let _ = writeln!(out, "</dl>");

    let _ = writeln!(out, "<h2>Per filesystem</h2>");
    let _ = writeln!(
        out,
        "<table>\n<tr><th>filesystem</th><th>cut</th><th>trials</th><th>violations</th><th>judge mismatches</th>\
         <th>unsynced data kept</th><th>acks completed</th><th>guaranteed</th><th>survived</th><th>mean trial</th></tr>"
    );
    for f in &report.filesystems {
        let k = &f.kept_more;
        let class =
            if f.violations + f.judge_mismatches > 0 { "verdict-model-violation" } else { "verdict-as-expected" };
        let _ = writeln!(
            out,
            "<tr><td>{}</td><td title=\"{}\">{}</td><td>{}</td><td class=\"{class}\">{}</td><td>{}</td><td>{} of {} trials ({})</td>\
             <td>{}</td><td>{}</td><td>{}</td><td>{:.1} ms</td></tr>",
            escape(&f.fs),
            escape(&f.cut_method),
            escape(&f.cut),
            f.trials,
            f.violations,
            f.judge_mismatches,
            k.trials_kept_more,
            k.trials_with_unsynced_pages,
            share(k.trials_kept_more, k.trials_with_unsynced_pages),
            f.acks.completed,
            f.acks.guaranteed,
            f.acks.survived,
            f.mean_trial_ms
        );
    }
    let _ = writeln!(out, "</table>");
    for f in &report.filesystems {
        filesystem(&mut out, f);
    }
    let _ = writeln!(out, "</body>\n</html>");
    out
}

fn filesystem(out: &mut String, f: &FsSoundness) {
    let _ = writeln!(out, "<h2>{} ({})</h2>", escape(&f.fs), escape(&f.cut));
    let _ = writeln!(
        out,
        "<table>\n<tr><th>workload</th><th>trials</th><th>violations</th><th>with unsynced pages</th><th>kept more</th></tr>"
    );
    for sc in &f.scenarios {
        let _ = writeln!(
            out,
            "<tr><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>",
            escape(&sc.scenario.to_string()),
            sc.trials,
            sc.violations,
            sc.trials_with_unsynced_pages,
            sc.trials_kept_more
        );
    }
    let _ = writeln!(out, "</table>");
    if !f.violation_details.is_empty() {
        let _ = writeln!(out, "<h3>Violations (the first {})</h3>\n<ul>", f.violation_details.len());
        for v in &f.violation_details {
            let _ = writeln!(
                out,
                "<li><b>{} at {}</b>: {}{}<br><code>{}</code></li>",
                escape(&v.scenario.to_string()),
                escape(&v.point.to_string()),
                escape(&v.detail),
                v.kept.as_ref().map(|k| format!(" (evidence: <code>{}</code>)", escape(k))).unwrap_or_default(),
                escape(&v.rerun)
            );
        }
        let _ = writeln!(out, "</ul>");
    }
    if let Some(d) = &f.volatile_disk {
        let _ = writeln!(
            out,
            "<h3>Volatile disk ({})</h3>\n<p>{} cuts, {} disk states checked, {} judged, {} left no readable file system or file</p>",
            escape(&d.mode.to_string()),
            d.cuts,
            d.states_checked,
            d.states_judged,
            d.states_unreadable
        );
        findings(out, "Disk states the model forbids", &d.violations);
        findings(out, "Judge mismatches", &d.judge_mismatches);
        findings(out, "Lost file systems (a finding, not a soundness violation)", &d.unreadable);
    }
}

fn findings(out: &mut String, title: &str, list: &[DiskStateFinding]) {
    if list.is_empty() {
        return;
    }
    let _ = writeln!(out, "<h4>{} ({} listed)</h4>\n<ul>", escape(title), list.len());
    for d in list {
        let _ = writeln!(
            out,
            "<li><b>trial {}, {} at {}, state <code>{}</code></b>: {}{}<br><code>{}</code></li>",
            d.trial,
            escape(&d.scenario.to_string()),
            escape(&d.point.to_string()),
            escape(&d.state),
            escape(&d.detail),
            d.explanation.as_ref().map(|x| format!("<br>{}", escape(x))).unwrap_or_default(),
            escape(&d.rerun)
        );
    }
    let _ = writeln!(out, "</ul>");
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> SoundnessReport {
        let text = include_str!("../../../reports/samples/soundness-vm-volatile-torn.json");
        serde_json::from_str(text).unwrap()
    }

    #[test]
    fn the_page_shows_the_verdict_every_filesystem_and_every_listed_finding_with_its_rerun_line() {
        let mut r = sample();
        // The committed sample lost no filesystem: give it one to show.
        let scenario = r.filesystems[0].scenarios[0].scenario;
        let disk = r.filesystems[0].volatile_disk.as_mut().expect("a volatile-disk sample");
        disk.unreadable.push(DiskStateFinding {
            trial: 3,
            scenario,
            point: crate::crash::CrashPoint::BeforeOp(5),
            state: "torn kept=s2-s3:w1".into(),
            detail: "e2fsck could not repair it".into(),
            allowed_if_sectors_tear: None,
            explanation: Some("the disk state tears ext4's primary superblock".into()),
            kept: None,
            rerun: "crashlab soundness --backend vm --rerun-this-state".into(),
        });
        let page = render_soundness_html(&r);
        assert!(page.starts_with("<!DOCTYPE html>") && page.trim_end().ends_with("</html>"));
        let word = if r.summary.sound { "SOUND" } else { "MODEL SOUNDNESS VIOLATION" };
        assert!(page.contains(word), "the verdict");
        assert!(page.contains("--rerun-this-state"), "the finding added above is listed");
        for f in &r.filesystems {
            assert!(page.contains(&format!("<h2>{} (", escape(&f.fs))), "{}", f.fs);
            for d in f.volatile_disk.iter().flat_map(|d| d.unreadable.iter().chain(&d.violations)) {
                assert!(page.contains(&escape(&d.rerun)), "rerun line of {}", d.state);
                assert!(page.contains(&escape(d.explanation.as_deref().unwrap_or(&d.detail))), "{}", d.state);
            }
        }
    }

    #[test]
    fn text_from_the_report_is_escaped() {
        let mut r = sample();
        r.environment.model = "<script>alert(1)</script>".into();
        let page = render_soundness_html(&r);
        assert!(!page.contains("<script>") && page.contains("&lt;script&gt;"));
    }
}
