//! The soundness report (`crashlab soundness`) as one self-contained HTML
//! page, styled like the other reports (the same inline CSS, no script, no
//! external asset): the verdict, where and how the power was cut, per
//! filesystem what the real cuts did (trials, violations, how often an
//! unsynced page survived anyway, acks), per workload, every violation with
//! its rerun line, a volatile disk's states (lost filesystems with what
//! crashlab found out about them), and the namespace workloads' cuts (per
//! filesystem, workloads × operations the model may lose with how often the
//! cuts kept or lost each, and every namespace violation with its rerun
//! line), and the coverage table: per filesystem and model rule, how many
//! post-cut files gave the rule a chance and how many showed it, the rules
//! no cut exercised marked.
//!
//! Every piece of text from the report goes through [`escape`].
//!
//! Architecture Invariant: pure.

use std::fmt::Write as _;

use crate::realcut::ns_report::{FsNamespace, NamespaceReport};
use crate::realcut::report::{FsSoundness, NamespaceSummary, SoundnessReport};
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
    let (class, text) = verdict(report);
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
    if !c.writeback.is_none() {
        row("writeback pressure", &c.writeback.to_string());
    }
    if let Some(ns) = &report.namespace {
        row("namespace model", &ns.model);
        row(
            "namespace cuts",
            &format!(
                "{} after each workload's last step, one at each earlier step boundary",
                ns.config.cuts_after_last_step
            ),
        );
    }
    let _ = writeln!(out, "</dl>");

    if !report.filesystems.is_empty() || report.namespace.is_none() {
        pages(&mut out, report);
    }
    if let Some(ns) = &report.namespace {
        namespace(&mut out, ns);
    }
    coverage(&mut out, report);
    let _ = writeln!(out, "</body>\n</html>");
    out
}

/// The coverage table; a rule no cut exercised is marked.
fn coverage(out: &mut String, report: &SoundnessReport) {
    let rows = report.coverage_rows();
    if rows.iter().all(|r| r.coverage.is_empty()) {
        return;
    }
    let _ = writeln!(out, "<h2 id=\"coverage\">Coverage of the model's rules</h2>");
    let _ = writeln!(
        out,
        "<p class=\"muted\">chances: real post-cut files (directories) in which the model allowed the rule's case; \
         exercised: those in which the real cut showed it. A rule no cut exercised was never checked against the \
         kernel.</p>"
    );
    let _ = writeln!(
        out,
        "<table class=\"cells\">\n<tr><th>filesystem</th><th>cut</th><th>rule</th><th>chances</th><th>exercised</th>\
         <th>units</th></tr>"
    );
    for f in &rows {
        for r in &f.coverage.rules {
            let mark = if r.exercised == 0 { " <strong>not exercised</strong>" } else { "" };
            let _ = writeln!(
                out,
                "<tr><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}{mark}</td><td>{}</td></tr>",
                escape(f.fs),
                escape(f.cut),
                escape(&r.rule),
                r.chances,
                r.exercised,
                r.units
            );
        }
    }
    let _ = writeln!(out, "</table>");
}

/// The namespace cuts the verdict counts: the summary's, or (a report
/// written without it) the section's own.
fn namespace_counts(report: &SoundnessReport) -> Option<NamespaceSummary> {
    report
        .summary
        .namespace
        .or_else(|| report.namespace.as_ref().map(|n| NamespaceSummary { cuts: n.cuts(), violations: n.violations() }))
}

/// The banner's class and text: sound only when neither model was violated
/// (page files and, with namespace workloads, directories).
fn verdict(report: &SoundnessReport) -> (&'static str, String) {
    let s = &report.summary;
    let ns = namespace_counts(report);
    let ns_violations = ns.map_or(0, |n| n.violations);
    let pages_bad = s.violations + s.judge_mismatches > 0 || (!s.sound && ns_violations == 0);
    if !pages_bad && ns_violations == 0 {
        let mut text = format!("SOUND: every one of {} real post-cut files was allowed by the model", s.trials);
        if let Some(n) = ns {
            let _ =
                write!(text, ", and every one of {} real post-cut directories by the posix namespace model", n.cuts);
        }
        return ("ok", text);
    }
    let mut text = format!(
        "MODEL SOUNDNESS VIOLATION: {} of {} real post-cut files forbidden by the model, {} judge mismatch(es)",
        s.violations, s.trials, s.judge_mismatches
    );
    if let Some(n) = ns {
        let _ = write!(
            text,
            ", {} of {} real post-cut directories forbidden by the posix namespace model",
            n.violations, n.cuts
        );
    }
    ("failed", text)
}

/// The page writers' part: the per-filesystem table and each filesystem's
/// workloads, violations and volatile disk.
fn pages(out: &mut String, report: &SoundnessReport) {
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
        filesystem(out, f);
    }
}

/// The namespace section: per filesystem its cuts, then its workloads ×
/// operations the model may lose (kept, lost, undetermined), the same per
/// kind of operation, and every listed namespace violation.
fn namespace(out: &mut String, ns: &NamespaceReport) {
    let _ = writeln!(out, "<h2 id=\"namespace\">Namespace operations</h2>");
    let _ = writeln!(
        out,
        "<p>Each operation below is one the model says a power cut may lose (its step ran and nothing made it \
         durable); <b>kept</b>: cuts whose directory fits only states that kept it, <b>lost</b>: only states that \
         lost it, <b>undetermined</b>: either.</p>"
    );
    let _ = writeln!(
        out,
        "<table class=\"cells\">\n<tr><th>filesystem</th><th>cut</th><th>cuts</th><th>violations</th><th>mean cut</th></tr>"
    );
    for f in &ns.filesystems {
        let class = if f.violations > 0 { "verdict-model-violation" } else { "verdict-as-expected" };
        let _ = writeln!(
            out,
            "<tr><td>{}</td><td title=\"{}\">{}</td><td class=\"num\">{}</td><td class=\"num {class}\">{}</td>\
             <td class=\"num\">{:.1} ms</td></tr>",
            escape(&f.fs),
            escape(&f.cut_method),
            escape(&f.cut),
            f.cuts,
            f.violations,
            f.mean_cut_ms
        );
    }
    let _ = writeln!(out, "</table>");
    for f in &ns.filesystems {
        namespace_filesystem(out, f);
    }
}

fn namespace_filesystem(out: &mut String, f: &FsNamespace) {
    let _ = writeln!(out, "<h3>{} ({}): namespace workloads</h3>", escape(&f.fs), escape(&f.cut));
    let _ = writeln!(
        out,
        "<table class=\"cells\">\n<tr><th>workload</th><th>cuts</th><th>violations</th>\
         <th>operation the model may lose</th><th>synced after it</th><th>cuts with it</th><th>kept</th><th>lost</th>\
         <th>undetermined</th></tr>"
    );
    for w in &f.workloads {
        let span = w.units.len().max(1);
        let failing = if w.violations > 0 { " class=\"failing\"" } else { "" };
        let reused = if w.cuts_reusing_an_inode > 0 {
            format!(
                "<br><span class=\"muted\">a file got the inode number of an earlier one in {} of {} cuts</span>",
                w.cuts_reusing_an_inode, w.cuts
            )
        } else {
            String::new()
        };
        let class = if w.violations > 0 { "verdict-model-violation" } else { "verdict-as-expected" };
        let head = format!(
            "<td rowspan=\"{span}\">{}{reused}</td><td rowspan=\"{span}\" class=\"num\">{}</td>\
             <td rowspan=\"{span}\" class=\"num {class}\">{}</td>",
            escape(&w.workload.to_string()),
            w.cuts,
            w.violations
        );
        if w.units.is_empty() {
            let _ = writeln!(
                out,
                "<tr{failing}>{head}<td colspan=\"6\" class=\"muted\">no operation the model may lose: every one was \
                 synced</td></tr>"
            );
        }
        for (i, u) in w.units.iter().enumerate() {
            let _ = writeln!(
                out,
                "<tr{failing}>{}<td title=\"{}\"><code>{}</code></td><td>{}</td><td class=\"num\">{}</td>\
                 <td class=\"num\">{}</td><td class=\"num\">{}</td><td class=\"num\">{}</td></tr>",
                if i == 0 { head.as_str() } else { "" },
                escape(&u.rule),
                escape(&u.operation),
                escape(&u.context),
                u.cuts,
                u.kept,
                u.lost,
                u.undetermined
            );
        }
    }
    let _ = writeln!(out, "</table>");
    if !f.operations.is_empty() {
        let _ = writeln!(
            out,
            "<h4>Per kind of operation</h4>\n<table class=\"cells\">\n<tr><th>kind</th><th>synced after it</th>\
             <th>cuts with it</th><th>kept</th><th>lost</th><th>undetermined</th></tr>"
        );
        for o in &f.operations {
            let _ = writeln!(
                out,
                "<tr><td>{}</td><td>{}</td><td class=\"num\">{}</td><td class=\"num\">{}</td><td class=\"num\">{}</td>\
                 <td class=\"num\">{}</td></tr>",
                o.kind.name(),
                escape(&o.context),
                o.cuts,
                o.kept,
                o.lost,
                o.undetermined
            );
        }
        let _ = writeln!(out, "</table>");
    }
    if !f.violation_details.is_empty() {
        let _ = writeln!(
            out,
            "<h4>Namespace violations (the first {} of {})</h4>",
            f.violation_details.len(),
            f.violations
        );
        for v in &f.violation_details {
            let _ = writeln!(
                out,
                "<div class=\"failure\"><div><b>{} at <code>{}</code></b>: {}{}</div>\
                 <code class=\"replay\">{}</code></div>",
                escape(&v.workload.to_string()),
                escape(&v.point.to_string()),
                escape(&v.detail),
                v.kept.as_ref().map(|k| format!(" (evidence: <code>{}</code>)", escape(k))).unwrap_or_default(),
                escape(&v.rerun)
            );
        }
    } else if f.violations > 0 {
        let _ = writeln!(
            out,
            "<p class=\"verdict-model-violation\">{} namespace violation(s), none listed</p>",
            f.violations
        );
    }
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
pub(crate) mod tests {
    use super::*;
    use crate::crash::CrashPoint;
    use crate::realcut::ns_judge::NsOpKind;
    use crate::realcut::ns_report::{NsOperationCount, NsUnitCount, NsViolationReport, NsWorkloadReport};
    use crate::realcut::ns_workload::NsCampaignConfig;

    fn sample() -> SoundnessReport {
        let text = include_str!("../../../reports/samples/soundness-vm-volatile-torn.json");
        serde_json::from_str(text).unwrap()
    }

    /// The rerun line of the namespace violation [`with_namespace`] lists.
    pub(crate) const NS_RERUN: &str = "crashlab soundness --backend loopcut --fs btrfs --workloads namespace \
                                       --ns-workload rename-over --point before:5 --ns-cuts 1";

    fn unit(operation: &str, kind: NsOpKind, context: &str, (kept, lost): (u64, u64)) -> NsUnitCount {
        NsUnitCount {
            operation: operation.into(),
            kind,
            rule: "the directory \".\" was not fsynced after it".into(),
            context: context.into(),
            cuts: kept + lost,
            kept,
            lost,
            undetermined: 0,
        }
    }

    /// `fs`'s namespace cuts of `rename-over` and `sibling-fsync` as a
    /// campaign would report them (btrfs: `sibling-fsync`'s `a` lost).
    pub(crate) fn ns_filesystem(fs: &str, sibling_kept: bool) -> FsNamespace {
        let (k, l) = if sibling_kept { (100, 0) } else { (0, 100) };
        let rename =
            unit(r#"rename("state.tmp" -> "state") at step 5"#, NsOpKind::Rename, "nothing synced after it", (0, 100));
        let sibling =
            unit(r#"openat(creating "a") at step 1"#, NsOpKind::Create, "fsync of another file (`b`)", (k, l));
        FsNamespace {
            fs: fs.into(),
            cut: "shutdown".into(),
            cut_method: "FS_IOC_SHUTDOWN(NOLOGFLUSH), umount, mount".into(),
            cuts: 206,
            violations: 0,
            workloads: vec![
                NsWorkloadReport {
                    workload: "rename-over".parse().unwrap(),
                    cuts: 105,
                    cuts_after_last_step: 100,
                    violations: 0,
                    cuts_reusing_an_inode: 0,
                    units: vec![rename],
                },
                NsWorkloadReport {
                    workload: "sibling-fsync".parse().unwrap(),
                    cuts: 101,
                    cuts_after_last_step: 100,
                    violations: 0,
                    cuts_reusing_an_inode: 0,
                    units: vec![sibling],
                },
            ],
            operations: vec![
                NsOperationCount {
                    kind: NsOpKind::Create,
                    context: "fsync of another file (`b`)".into(),
                    cuts: 100,
                    kept: k,
                    lost: l,
                    undetermined: 0,
                },
                NsOperationCount {
                    kind: NsOpKind::Rename,
                    context: "nothing synced after it".into(),
                    cuts: 100,
                    kept: 0,
                    lost: 100,
                    undetermined: 0,
                },
            ],
            violation_details: vec![],
            mean_cut_ms: 10.5,
            coverage: Default::default(),
        }
    }

    /// `r` with a namespace section (ext4 and btrfs), and with
    /// `violation`, one namespace violation on btrfs (`rename-over` at
    /// before:5, rerun line [`NS_RERUN`]).
    pub(crate) fn with_namespace(mut r: SoundnessReport, violation: bool) -> SoundnessReport {
        let mut btrfs = ns_filesystem("btrfs", false);
        if violation {
            btrfs.violations = 1;
            btrfs.workloads[0].violations = 1;
            btrfs.violation_details.push(NsViolationReport {
                workload: "rename-over".parse().unwrap(),
                point: CrashPoint::BeforeOp(5),
                detail: "the post-cut directory holds state (2 pages), a size no state of the model has".into(),
                kept: Some("/tmp/evidence/ns-1".into()),
                rerun: NS_RERUN.into(),
            });
        }
        let ns = NamespaceReport {
            config: NsCampaignConfig {
                workloads: vec!["rename-over".parse().unwrap(), "sibling-fsync".parse().unwrap()],
                cuts_after_last_step: 100,
                point: None,
            },
            model: "posix".into(),
            filesystems: vec![ns_filesystem("ext4", true), btrfs],
        };
        r.summary.add_namespace(&ns);
        r.namespace = Some(ns);
        r
    }

    #[test]
    fn the_namespace_section_shows_workloads_by_operations_and_every_violation_with_its_rerun_line() {
        let page = render_soundness_html(&with_namespace(sample(), true));
        assert!(page.contains("<h2 id=\"namespace\">Namespace operations</h2>"), "{page}");
        for fs in ["ext4", "btrfs"] {
            assert!(page.contains(&format!("<h3>{fs} (shutdown): namespace workloads</h3>")), "{fs}: {page}");
        }
        // A workloads × operations row: the workload (spanning its rows), its
        // cuts and violations, the operation, what was synced, the counts.
        let row = "<td rowspan=\"1\">sibling-fsync</td><td rowspan=\"1\" class=\"num\">101</td>\
                   <td rowspan=\"1\" class=\"num verdict-as-expected\">0</td>\
                   <td title=\"the directory &quot;.&quot; was not fsynced after it\">\
                   <code>openat(creating &quot;a&quot;) at step 1</code></td><td>fsync of another file (`b`)</td>\
                   <td class=\"num\">100</td><td class=\"num\">0</td><td class=\"num\">100</td><td class=\"num\">0</td></tr>";
        assert!(page.contains(row), "btrfs lost sibling-fsync's create: {page}");
        assert!(
            page.contains("<td class=\"num\">100</td><td class=\"num\">100</td><td class=\"num\">0</td>"),
            "ext4 kept it"
        );
        assert!(page.contains("<h4>Namespace violations (the first 1 of 1)</h4>"), "{page}");
        assert!(page.contains(&format!("<code class=\"replay\">{}</code>", escape(NS_RERUN))), "{page}");
        assert!(page.contains("a size no state of the model has") && page.contains("/tmp/evidence/ns-1"));
        // The verdict counts it, though every page file was allowed.
        assert!(page.contains("MODEL SOUNDNESS VIOLATION") && !page.contains("SOUND: every"), "{page}");
        assert!(page.contains("1 of 412 real post-cut directories forbidden by the posix namespace model"), "{page}");
        // Without a violation: sound, both counted.
        let page = render_soundness_html(&with_namespace(sample(), false));
        assert!(
            page.contains("SOUND: every one of 24 real post-cut files")
                && page.contains("every one of 412 real post-cut directories"),
            "{page}"
        );
        assert!(!page.contains("Namespace violations"), "{page}");
    }

    #[test]
    fn a_namespace_only_report_has_no_page_table_and_its_verdict_counts_the_section() {
        let mut r = with_namespace(sample(), true);
        r.filesystems.clear();
        r.summary = crate::realcut::report::SoundnessSummary {
            trials: 0,
            violations: 0,
            judge_mismatches: 0,
            namespace: None,
            sound: true,
        };
        let page = render_soundness_html(&r);
        assert!(!page.contains("Per filesystem"), "{page}");
        assert!(
            page.contains("MODEL SOUNDNESS VIOLATION") && page.contains("1 of 412 real post-cut directories"),
            "{page}"
        );
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
    fn the_coverage_table_lists_every_rule_and_marks_the_ones_no_cut_exercised() {
        use crate::realcut::coverage::{Coverage, RuleCoverage};
        let mut r = sample();
        r.config.writeback = crate::vocab::Writeback::Syncfs { every_us: 300 };
        let row = |rule: &str, exercised| RuleCoverage { rule: rule.into(), chances: 9, exercised, units: exercised };
        r.filesystems[0].coverage =
            Coverage { rules: vec![row("pages-newer-than-floor", 3), row("intermediate-versions", 0)] };
        let page = render_soundness_html(&r);
        assert!(page.contains("<h2 id=\"coverage\">Coverage of the model's rules</h2>"), "{page}");
        assert!(page.contains("<td>pages-newer-than-floor</td><td>9</td><td>3</td><td>3</td>"), "{page}");
        assert!(page.contains("<td>intermediate-versions</td><td>9</td><td>0 <strong>not exercised</strong></td>"));
        assert!(page.contains("<dt>writeback pressure</dt><dd>syncfs:300</dd>"), "{page}");
        assert!(!render_soundness_html(&sample()).contains("id=\"coverage\""), "no coverage before 1.5: no table");
    }

    #[test]
    fn text_from_the_report_is_escaped() {
        let mut r = sample();
        r.environment.model = "<script>alert(1)</script>".into();
        let page = render_soundness_html(&r);
        assert!(!page.contains("<script>") && page.contains("&lt;script&gt;"));
    }
}
