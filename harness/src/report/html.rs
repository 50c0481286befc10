//! The survival report as one self-contained HTML page (inline CSS, no
//! script, no external asset), for people: the survival matrix as a
//! heatmap, every cell's counts, every failure with its replay line, and the
//! environment the campaign ran in.
//!
//! Heatmap rows are scenarios (mapping × sync policy), columns are crash
//! kinds grouped by persistence model, and one column per real power-cut
//! backend and filesystem (`power-loss (real: loopcut/ext4)`, with its
//! kernel and cut); a square's colour is the fraction of acked ops that
//! survived (under a simulated power-loss model: that were guaranteed in
//! every allowed state; under a real cut: that the real file kept). Colour shows *what survives*, which is often
//! nothing and rightly so (MAP_PRIVATE); whether that is what the semantics
//! promise is the verdict mark and the red outline, kept apart on purpose.
//!
//! Every piece of text from the report goes through [`escape`].
//!
//! Architecture Invariant: pure.

use std::fmt::Write as _;

use crate::expectation::{AckExpectation, PersistenceModel};
use crate::report::survival::{CellReport, SurvivalReport, Verdict};
use crate::report::survival_lifecycle::{models_of, LifecycleSection};
use crate::scenario::ScenarioId;
use crate::spec::MappingKind;
use crate::utc_time::utc_timestamp;
use crate::vocab::CrashKind;
use crate::vocab::RealColumn;

/// HTML-escape text for element content and quoted attribute values.
pub fn escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for ch in s.chars() {
        match ch {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

/// Colour stops of the heatmap (ColorBrewer YlGnBu, sequential, readable
/// by the colour-blind), from 0 % to 100 % survived.
const STOPS: [(u8, u8, u8); 5] = [(255, 255, 217), (199, 233, 180), (127, 205, 187), (29, 145, 192), (12, 44, 132)];

fn heat_colour(fraction: f64) -> (String, &'static str) {
    let f = fraction.clamp(0.0, 1.0) * (STOPS.len() - 1) as f64;
    let i = (f.floor() as usize).min(STOPS.len() - 2);
    let t = f - i as f64;
    let mix = |a: u8, b: u8| (a as f64 + (b as f64 - a as f64) * t).round() as u8;
    let (a, b) = (STOPS[i], STOPS[i + 1]);
    let text = if fraction > 0.6 { "#ffffff" } else { "#111111" };
    (format!("#{:02x}{:02x}{:02x}", mix(a.0, b.0), mix(a.1, b.1), mix(a.2, b.2)), text)
}

fn verdict_name(v: Verdict) -> &'static str {
    match v {
        Verdict::AsExpected => "as-expected",
        Verdict::Unexpected => "unexpected",
        Verdict::ModelViolation => "model-violation",
    }
}

fn expectation_name(e: AckExpectation) -> &'static str {
    match e {
        AckExpectation::AllSurvive => "all-survive",
        AckExpectation::AllLost => "all-lost",
        AckExpectation::MayBeLost => "may-be-lost",
    }
}

fn mark(v: Verdict) -> &'static str {
    match v {
        Verdict::AsExpected => "✓",
        Verdict::Unexpected => "!",
        Verdict::ModelViolation => "✗",
    }
}

/// What "survived" means under `model`.
fn survived_word(model: PersistenceModel) -> &'static str {
    if model.is_real() {
        "kept by the real power cut"
    } else if model.is_power_loss() {
        "guaranteed"
    } else {
        "survived"
    }
}

fn cell_name(c: &CellReport) -> String {
    c.key_text()
}

pub(crate) const CSS: &str = r#"
:root { color-scheme: light; }
body { font: 14px/1.45 system-ui, -apple-system, "Segoe UI", Roboto, sans-serif; margin: 24px; color: #1b1f24; background: #fafafa; }
h1 { font-size: 22px; margin: 0 0 4px; }
h2 { font-size: 18px; margin: 28px 0 8px; border-bottom: 1px solid #d0d7de; padding-bottom: 4px; }
h3 { font-size: 15px; margin: 18px 0 6px; }
code { font: 12px/1.4 ui-monospace, SFMono-Regular, Menlo, Consolas, monospace; }
code.replay { display: block; background: #f0f2f4; border: 1px solid #d0d7de; border-radius: 4px; padding: 4px 8px; white-space: pre-wrap; word-break: break-all; user-select: all; }
.banner { padding: 10px 14px; border-radius: 6px; font-weight: 600; margin: 12px 0; }
.banner.ok { background: #dafbe1; border: 1px solid #4ac26b; }
.banner.failed { background: #ffebe9; border: 1px solid #d1242f; }
table { border-collapse: collapse; background: #fff; }
th, td { border: 1px solid #d0d7de; padding: 4px 8px; }
th { background: #f0f2f4; font-weight: 600; }
table.heatmap td.square { width: 92px; height: 52px; text-align: center; vertical-align: middle; padding: 0; position: relative; }
table.heatmap td.square a { display: block; color: inherit; text-decoration: none; padding: 4px; }
table.heatmap td.square .pct { display: block; font-size: 16px; font-weight: 700; }
table.heatmap td.square .frac { display: block; font-size: 11px; }
table.heatmap td.square .mark { position: absolute; top: 2px; right: 4px; font-size: 12px; font-weight: 700; }
table.heatmap td.failing { outline: 3px solid #d1242f; outline-offset: -3px; }
table.heatmap td.failing .mark { background: #d1242f; color: #fff; border-radius: 3px; padding: 0 4px; }
table.heatmap td.noacks { background: #eaeef2; color: #57606a; }
table.heatmap td.absent { background: repeating-linear-gradient(45deg, #fff, #fff 4px, #f0f2f4 4px, #f0f2f4 8px); }
table.heatmap th.row { text-align: left; white-space: nowrap; }
.legend { display: flex; gap: 24px; align-items: center; margin: 10px 0; flex-wrap: wrap; }
.gradient { width: 220px; height: 14px; border: 1px solid #d0d7de; background: linear-gradient(to right, #ffffd9, #c7e9b4, #7fcdbb, #1d91c0, #0c2c84); }
.scale { display: flex; justify-content: space-between; width: 220px; font-size: 11px; }
table.cells td.num { text-align: right; font-variant-numeric: tabular-nums; }
table.cells tr.failing td { background: #fff5f5; }
.verdict-as-expected { color: #1a7f37; font-weight: 600; }
.verdict-unexpected { color: #9a6700; font-weight: 700; }
.verdict-model-violation { color: #d1242f; font-weight: 700; }
dl.env { display: grid; grid-template-columns: max-content 1fr; gap: 2px 16px; }
dl.env dt { font-weight: 600; }
dl.env dd { margin: 0; }
.failure { background: #fff; border: 1px solid #d0d7de; border-left: 4px solid #d1242f; border-radius: 4px; padding: 8px 12px; margin: 8px 0; }
.explanation { background: #fff; border: 1px solid #d0d7de; border-left: 4px solid #1d91c0; border-radius: 4px; padding: 8px 12px; margin: 8px 0; }
.muted { color: #57606a; }
details { margin: 6px 0; }
summary { cursor: pointer; }
"#;

/// The page for `report`.
/// The start of every report page, whatever its kind: the document head
/// with the one inline style sheet, and `title` as its heading.
pub(crate) fn page_start(out: &mut String, title: &str) {
    let _ = write!(
        out,
        "<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n\
         <meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n<title>{}</title>\n\
         <style>{CSS}</style>\n</head>\n<body>\n",
        escape(title)
    );
    let _ = writeln!(out, "<h1>{}</h1>", escape(title));
}

pub fn render_html(report: &SurvivalReport) -> String {
    let mut out = String::new();
    page_start(&mut out, &format!("crashlab survival report, seed {}", report.seed));
    let s = &report.summary;
    let unsound = match report.soundness_violations() {
        0 => String::new(),
        n => format!(
            "; {n} MODEL SOUNDNESS VIOLATION(S): real power cuts left files the simulated power-loss model forbids"
        ),
    };
    let lifecycle_counts = report.lifecycle.as_ref().map_or(String::new(), |l| {
        let s = &l.summary;
        format!("; lifecycle rows: {} cells, {} trials, {} unexpected", s.cells, s.trials, s.unexpected)
    });
    let (class, headline) = if report.all_as_expected() {
        ("ok", format!("OK: {} cells, {} trials, every verdict as expected{lifecycle_counts}", s.cells, s.trials))
    } else {
        (
            "failed",
            format!(
                "FAILED: {} cells, {} trials: {} unexpected, {} with model violations{unsound}{lifecycle_counts}",
                s.cells, s.trials, s.unexpected, s.model_violations
            ),
        )
    };
    let _ = writeln!(out, "<p class=\"banner {class}\" id=\"outcome\">{}</p>", escape(&headline));
    let e = &report.environment;
    let _ = writeln!(
        out,
        "<p class=\"muted\">kernel {} · {} · {}-byte pages · {}-byte file · points {} · <a href=\"#environment\">more</a></p>",
        escape(&e.kernel_release),
        escape(&e.fs_type),
        e.page_size,
        report.config.file_size,
        escape(&report.config.points.to_string())
    );
    if let Some(why) = &report.enospc_skipped {
        let _ = writeln!(
            out,
            "<p class=\"muted\" id=\"enospc-skipped\">enospc column skipped: its capacity-limited tmpfs cannot be \
             mounted here ({})</p>",
            escape(why)
        );
    }
    // Most read first: the matrix, what failed, then the details.
    heatmap(&mut out, report);
    failures(&mut out, report);
    if let Some(l) = &report.lifecycle {
        lifecycle(&mut out, l);
    }
    explanations(&mut out, report);
    cells_table(&mut out, report);
    environment(&mut out, report);
    out.push_str("</body>\n</html>\n");
    out
}

fn environment(out: &mut String, r: &SurvivalReport) {
    let c = &r.config;
    let list = |xs: Vec<String>| xs.join(", ");
    let mut rows: Vec<(&str, String)> = vec![
        ("kernel", r.environment.kernel_release.clone()),
        ("filesystem", r.environment.fs_type.clone()),
        ("page size", format!("{} bytes", r.environment.page_size)),
        ("seed", r.seed.to_string()),
        ("file size", format!("{} bytes", c.file_size)),
        ("transactions per writer", c.txns.to_string()),
        ("crash points", c.points.to_string()),
        ("repetitions per point", c.trials.to_string()),
        ("scenarios", list(c.scenarios.iter().map(|s| s.to_string()).collect())),
        ("crash kinds", list(c.crashes.iter().map(|k| k.to_string()).collect())),
        ("persistence models", list(c.models.iter().map(|m| m.to_string()).collect())),
        ("torn-sector size", format!("{} bytes", c.tear)),
    ];
    if let Some(shard) = c.shard {
        rows.push(("shard", shard.to_string()));
    }
    for column in &c.real {
        let kernels = distinct(
            r.cells
                .iter()
                .filter_map(|x| x.real.as_ref())
                .filter(|x| x.column() == *column)
                .map(|x| x.kernel_release.as_str()),
        );
        rows.push((
            "real power cuts",
            format!(
                "{}: backend {}, kernel {}, {}, cut {} ({}); disk: {}",
                column.label(),
                column.backend,
                kernels.join(", "),
                column.fs,
                column.cut(),
                column.cut().describe(),
                column.disk()
            ),
        ));
    }
    rows.extend([
        ("work directory", r.run.dir.clone()),
        ("started", utc_timestamp(r.run.started_at_unix)),
        ("duration", format!("{:.1} s", r.run.duration_ms as f64 / 1000.0)),
        ("crashlab", format!("{} (report schema {})", r.crashlab_version, r.schema_version)),
    ]);
    out.push_str("<h2 id=\"environment\">Environment</h2>\n<dl class=\"env\">\n");
    for (k, v) in rows {
        let _ = writeln!(out, "<dt>{}</dt><dd>{}</dd>", escape(k), escape(&v));
    }
    out.push_str("</dl>\n");
}

/// Items in order of first appearance.
fn distinct<T: PartialEq + Copy>(items: impl Iterator<Item = T>) -> Vec<T> {
    let mut seen = Vec::new();
    for i in items {
        if !seen.contains(&i) {
            seen.push(i);
        }
    }
    seen
}

/// A heatmap column: a crash kind under a model, or a real column.
type Column = (PersistenceModel, Option<RealColumn>, CrashKind);

fn column_of(c: &CellReport) -> Column {
    (c.model, c.real_column(), c.crash)
}

fn heatmap(out: &mut String, r: &SurvivalReport) {
    let rows: Vec<ScenarioId> = distinct(r.cells.iter().map(|c| c.scenario));
    let columns: Vec<Column> = distinct(r.cells.iter().map(column_of));
    out.push_str("<h2 id=\"matrix\">Survival matrix</h2>\n");
    out.push_str(
        "<p>Each square: the share of acknowledged ops that survived the crash (under a power-loss model: \
         that every allowed state keeps), with the count. The mark is the verdict against what the \
         kernel's semantics promise: ✓ as expected, ! unexpected, ✗ model violation (outlined in red). \
         Click a square for its details.</p>\n",
    );
    out.push_str(
        "<div class=\"legend\"><div><div class=\"gradient\"></div><div class=\"scale\"><span>0%</span>\
         <span>50%</span><span>100% survived</span></div></div>\
         <div class=\"muted\">grey: no acked op to judge · hatched: cell not run</div></div>\n",
    );
    out.push_str("<table class=\"heatmap\" id=\"survival-matrix\">\n<thead>\n<tr><th rowspan=\"2\">mapping</th><th rowspan=\"2\">sync policy</th>");
    // One header group per run of consecutive columns of the same model;
    // each real column is its own group, labelled with backend and fs.
    let mut i = 0;
    while i < columns.len() {
        let (model, real, _) = columns[i];
        let span = columns[i..].iter().take_while(|(m, x, _)| *m == model && *x == real).count();
        let (label, title) = match real {
            Some(column) => (column.label(), format!("{}. Disk: {}", model.describe(), column.disk())),
            None => (model.name().to_owned(), model.describe().to_owned()),
        };
        let _ = write!(out, "<th colspan=\"{span}\" title=\"{}\">{}</th>", escape(&title), escape(&label));
        i += span;
    }
    out.push_str("</tr>\n<tr>");
    for &(_, real, crash) in &columns {
        let Some(column) = real else {
            let _ = write!(out, "<th>{}</th>", escape(crash.name()));
            continue;
        };
        // The kernel (and cut) that made the column's cuts.
        let kernels = distinct(
            r.cells
                .iter()
                .filter_map(|c| c.real.as_ref())
                .filter(|x| x.column() == column)
                .map(|x| x.kernel_release.as_str()),
        );
        let _ = write!(
            out,
            "<th class=\"real\" title=\"{}\">kernel {}<br>{} · {}</th>",
            escape(column.cut().describe()),
            escape(&kernels.join(", ")),
            escape(column.fs.name()),
            escape(column.cut().name())
        );
    }
    out.push_str("</tr>\n</thead>\n<tbody>\n");
    for scenario in &rows {
        let _ = write!(
            out,
            "<tr><th class=\"row\">{}</th><th class=\"row\">{}</th>",
            escape(scenario.mapping.name()),
            escape(&scenario.policy.to_string())
        );
        for &column in &columns {
            let found = r.cells.iter().position(|c| c.scenario == *scenario && column_of(c) == column);
            let Some(k) = found else {
                // A private store into a hole never allocates a page of the file.
                let title = match (column.2, scenario.mapping) {
                    (CrashKind::Enospc, MappingKind::Private) => {
                        "not applicable: a MAP_PRIVATE store never allocates a page of the file"
                    }
                    _ => "not run",
                };
                let _ = write!(out, "<td class=\"square absent\" title=\"{title}\"></td>");
                continue;
            };
            let c = &r.cells[k];
            let failing = if c.verdict == Verdict::AsExpected { "" } else { " failing" };
            let mut attrs = format!(
                "data-scenario=\"{}\" data-crash=\"{}\" data-model=\"{}\" data-verdict=\"{}\"",
                escape(&c.scenario.to_string()),
                escape(c.crash.name()),
                escape(c.model.name()),
                verdict_name(c.verdict)
            );
            if let Some(column) = c.real_column() {
                let _ = write!(attrs, " data-real=\"{}\"", escape(&column.to_string()));
            }
            let tooltip = format!(
                "{}: {} of {} acked ops {}; verdict {}",
                cell_name(c),
                c.survived,
                c.acked,
                survived_word(c.model),
                verdict_name(c.verdict)
            );
            if c.acked == 0 {
                let _ = write!(
                    out,
                    "<td class=\"square noacks{failing}\" {attrs} title=\"{}\"><a href=\"#cell-{k}\">\
                     <span class=\"pct\">–</span><span class=\"frac\">no acks</span>\
                     <span class=\"mark\">{}</span></a></td>",
                    escape(&tooltip),
                    mark(c.verdict)
                );
                continue;
            }
            let fraction = c.survived as f64 / c.acked as f64;
            let (bg, fg) = heat_colour(fraction);
            let _ = write!(
                out,
                "<td class=\"square{failing}\" {attrs} data-survived-fraction=\"{fraction:.4}\" \
                 style=\"background:{bg};color:{fg}\" title=\"{}\"><a href=\"#cell-{k}\">\
                 <span class=\"pct\">{}%</span><span class=\"frac\">{}/{}</span>\
                 <span class=\"mark\">{}</span></a></td>",
                escape(&tooltip),
                percent(c.survived, c.acked),
                c.survived,
                c.acked,
                mark(c.verdict)
            );
        }
        out.push_str("</tr>\n");
    }
    out.push_str("</tbody>\n</table>\n");
}

/// The whole percentage shown for `part` of `whole` (> 0): never 100 % while
/// anything was lost, never 0 % once anything survived.
pub(crate) fn percent(part: u64, whole: u64) -> u64 {
    match part {
        0 => 0,
        p if p == whole => 100,
        p => ((p as f64 * 100.0 / whole as f64).round() as u64).clamp(1, 99),
    }
}

fn cells_table(out: &mut String, r: &SurvivalReport) {
    out.push_str("<h2 id=\"cells\">Cells</h2>\n<table class=\"cells\">\n<thead><tr>");
    for h in [
        "cell",
        "expectation",
        "verdict",
        "trials",
        "points",
        "acked",
        "survived / guaranteed",
        "lost",
        "torn",
        "truncated",
        "in-flight torn",
        "sigbus",
        "missed",
        "violations",
        "states",
        "replay",
    ] {
        let _ = write!(out, "<th>{}</th>", escape(h));
    }
    out.push_str("</tr></thead>\n<tbody>\n");
    for (k, c) in r.cells.iter().enumerate() {
        let failing = if c.verdict == Verdict::AsExpected { "" } else { " class=\"failing\"" };
        let real = c.real.as_ref().map_or(String::new(), |x| {
            format!(
                "<br><span class=\"muted\">{} · kernel {} · {} · cut {} · soundness violations {} · kept more {}/{}</span>",
                escape(x.backend.name()),
                escape(&x.kernel_release),
                escape(x.fs.name()),
                escape(x.cut.name()),
                x.soundness_violations,
                x.trials_kept_more,
                x.trials_with_unsynced_pages
            )
        });
        let _ = write!(
            out,
            "<tr id=\"cell-{k}\"{failing}><td>{}{real}</td><td>{}</td><td class=\"verdict-{v}\">{v}{}</td>",
            escape(&cell_name(c)),
            expectation_name(c.expectation),
            c.verdict_reason
                .as_deref()
                .map(|x| format!("<br><span class=\"muted\">{}</span>", escape(x)))
                .unwrap_or_default(),
            v = verdict_name(c.verdict),
        );
        for n in [c.trials, c.crash_points, c.acked, c.survived, c.lost, c.torn, c.truncated] {
            let _ = write!(out, "<td class=\"num\">{n}</td>");
        }
        let _ = write!(out, "<td class=\"num\">{}/{}</td>", c.in_flight_torn, c.in_flight_stores);
        for n in [c.sigbus_faults, c.missed_crashes, c.model_violations] {
            let _ = write!(out, "<td class=\"num\">{n}</td>");
        }
        row_end(out, c.states_checked, &c.replay);
    }
    out.push_str("</tbody>\n</table>\n");
}

/// The last cells of a row: the states checked (`–` when none) and the
/// replay line.
fn row_end(out: &mut String, states_checked: Option<u64>, replay: &str) {
    let states = states_checked.map_or("–".to_string(), |n| n.to_string());
    let _ = writeln!(
        out,
        "<td class=\"num\">{}</td><td><code class=\"replay\">{}</code></td></tr>",
        escape(&states),
        escape(replay)
    );
}

fn failures(out: &mut String, r: &SurvivalReport) {
    out.push_str("<h2 id=\"failures\">Failures</h2>\n");
    let failing: Vec<(usize, &CellReport)> =
        r.cells.iter().enumerate().filter(|(_, c)| c.verdict != Verdict::AsExpected).collect();
    if failing.is_empty() {
        out.push_str("<p>None: every cell came out as the kernel's semantics promise.</p>\n");
        return;
    }
    for (k, c) in failing {
        let _ = writeln!(
            out,
            "<h3><a href=\"#cell-{k}\">{}</a>: <span class=\"verdict-{v}\">{v}</span></h3>\n<p>{}</p>",
            escape(&cell_name(c)),
            escape(c.verdict_reason.as_deref().unwrap_or("")),
            v = verdict_name(c.verdict),
        );
        for f in &c.failures {
            let _ = write!(
                out,
                "<div class=\"failure\"><div>at <code>{}</code>, writer {}</div><ul>",
                escape(&f.point.to_string()),
                escape(&f.exit)
            );
            for d in &f.details {
                let _ = write!(out, "<li><code>{}</code></li>", escape(d));
            }
            let _ = writeln!(out, "</ul><code class=\"replay\">{}</code></div>", escape(&f.replay));
        }
        if c.failures.is_empty() {
            let _ = writeln!(
                out,
                "<div class=\"failure\"><div>representative trial:</div><code class=\"replay\">{}</code></div>",
                escape(&c.replay)
            );
        }
    }
}

/// The lifecycle rows: a table per model (never mixing process-crash and
/// power-loss numbers), each unexpected cell's failures, and the first lost
/// ack of each cell that lost some (folded: those losses are allowed).
fn lifecycle(out: &mut String, l: &LifecycleSection) {
    let _ = writeln!(
        out,
        "<h2 id=\"lifecycle\">File lifecycle rows</h2>\n<p class=\"muted\">Built-in programs run by the external \
         engine ({} acks per writer run, {} trials per cell; power loss under the {} namespace model). Counts are \
         trials: the checker judges the whole directory.</p>",
        l.config.acks,
        l.config.trials,
        escape(&l.config.fs_model)
    );
    for model in models_of(&l.cells) {
        let _ = writeln!(out, "<h3>{}</h3>\n<table class=\"cells\">\n<thead><tr>", escape(model.name()));
        for h in [
            "kind",
            "crash",
            "expectation",
            "verdict",
            "trials",
            "acks",
            "with acks",
            "lost",
            "corrupt",
            "states",
            "replay",
        ] {
            let _ = write!(out, "<th>{}</th>", escape(h));
        }
        out.push_str("</tr></thead>\n<tbody>\n");
        for (k, c) in l.cells.iter().enumerate().filter(|(_, c)| c.model == model) {
            let failing = if c.verdict == Verdict::AsExpected { "" } else { " class=\"failing\"" };
            let reason = c
                .verdict_reason
                .as_deref()
                .map_or(String::new(), |x| format!("<br><span class=\"muted\">{}</span>", escape(x)));
            let _ = write!(
                out,
                "<tr id=\"lifecycle-{k}\"{failing}><td>{}</td><td>{}</td><td>{}</td><td class=\"verdict-{v}\">{v}{reason}</td>",
                escape(c.kind.name()),
                escape(c.crash.name()),
                expectation_name(c.expectation),
                v = verdict_name(c.verdict),
            );
            for n in [c.trials, c.acks_seen, c.trials_with_acks, c.trials_lost, c.trials_corrupt] {
                let _ = write!(out, "<td class=\"num\">{n}</td>");
            }
            row_end(out, c.states_checked, &c.replay);
        }
        out.push_str("</tbody>\n</table>\n");
    }
    for (k, c) in l.cells.iter().enumerate().filter(|(_, c)| !c.failures.is_empty()) {
        let (open, class) = if c.verdict == Verdict::AsExpected { ("", "explanation") } else { (" open", "failure") };
        let _ = writeln!(
            out,
            "<details{open}><summary><a href=\"#lifecycle-{k}\">{}</a>: {}</summary>",
            escape(&c.key_text()),
            escape(c.verdict_reason.as_deref().unwrap_or("acks lost, as the model allows"))
        );
        for f in &c.failures {
            let _ = write!(out, "<div class=\"{class}\"><div>trial {} ({})</div><ul>", f.trial, escape(&f.found));
            for d in &f.details {
                let _ = write!(out, "<li><code>{}</code></li>", escape(d));
            }
            let _ = writeln!(out, "</ul><code class=\"replay\">{}</code></div>", escape(&f.replay));
        }
        out.push_str("</details>\n");
    }
}

fn explanations(out: &mut String, r: &SurvivalReport) {
    let explained: Vec<(usize, &CellReport)> =
        r.cells.iter().enumerate().filter(|(_, c)| !c.explanations.is_empty()).collect();
    if explained.is_empty() {
        return;
    }
    out.push_str("<h2 id=\"explanations\">Why acks may be lost under power loss</h2>\n");
    for (k, c) in explained {
        // Folded: these are expected losses, often many; the matrix and the
        // failures come first.
        let _ = writeln!(
            out,
            "<details><summary><a href=\"#cell-{k}\">{}</a>: {} explanation(s)</summary>",
            escape(&cell_name(c)),
            c.explanations.len()
        );
        for e in &c.explanations {
            let _ = writeln!(
                out,
                "<div class=\"explanation\"><div>at <code>{}</code>, ack {}: {}</div>\
                 <div class=\"muted\">state <code>{}</code></div><code class=\"replay\">{}</code></div>",
                escape(&e.point.to_string()),
                e.ack,
                escape(&e.text),
                escape(&e.state),
                escape(&e.replay)
            );
        }
        out.push_str("</details>\n");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escaping_leaves_no_markup_and_round_trips_plain_text() {
        assert_eq!(
            escape(r#"<script>alert("x")</script> & 'y'"#),
            "&lt;script&gt;alert(&quot;x&quot;)&lt;/script&gt; &amp; &#39;y&#39;"
        );
        assert_eq!(escape("shared/no-sync before:3"), "shared/no-sync before:3");
    }

    #[test]
    fn the_lifecycle_rows_get_a_table_per_model_and_an_unexpected_cell_fails_the_page() {
        use crate::report::survival_cells::real_test_support::report_of;
        use crate::report::survival_lifecycle::test_support::{cell, section};
        use crate::vocab::CrashKind::{PowerLoss, Sigkill};
        use crate::vocab::LifecycleKind::{CreateDirsync, ReplaceNoDirsync};
        let mut r = report_of(vec![]);
        r.lifecycle =
            Some(section(vec![cell(ReplaceNoDirsync, Sigkill, 4, 0), cell(ReplaceNoDirsync, PowerLoss, 4, 2)]));
        let page = render_html(&r);
        assert!(page.contains("<p class=\"banner ok\" id=\"outcome\">OK: 0 cells"), "{page}");
        let (process, power) =
            (page.find("<h3>process-crash</h3>").unwrap(), page.find("<h3>power-loss</h3>").unwrap());
        assert!(page.find("File lifecycle rows").unwrap() < process && process < power);
        assert!(page.contains("acks lost, as the model allows"), "allowed losses are shown, folded");
        r.lifecycle.as_mut().unwrap().cells.push(cell(CreateDirsync, PowerLoss, 4, 1));
        let page = render_html(&r);
        assert!(page.contains("<p class=\"banner failed\""), "an unexpected lifecycle cell fails the page");
        assert!(page.contains("<details open><summary><a href=\"#lifecycle-2\">"), "{page}");
    }

    #[test]
    fn a_private_row_without_an_enospc_cell_is_not_applicable_and_a_skipped_column_says_why() {
        use crate::crash::CrashPoint;
        use crate::expectation::expected_acks;
        use crate::report::survival::ReplayLine;
        use crate::report::survival_cells::{aggregate_cell, real_test_support::report_of, CellInput};
        let cell = |scenario: &str, crash: CrashKind| {
            let scenario: ScenarioId = scenario.parse().unwrap();
            let model = PersistenceModel::ProcessCrash;
            aggregate_cell(&CellInput {
                scenario,
                crash,
                model,
                expectation: expected_acks(scenario.mapping, scenario.policy, crash, model),
                points: &[CrashPoint::None],
                records: &[],
                replay: &|point| ReplayLine {
                    scenario,
                    crash,
                    point,
                    seed: 1,
                    file_size: 65536,
                    txns: 4,
                    model,
                    tear: 512,
                    state: None,
                },
            })
        };
        let mut r = report_of(vec![
            cell("shared/no-sync", CrashKind::Sigkill),
            cell("shared/no-sync", CrashKind::Enospc),
            cell("private/no-sync", CrashKind::Sigkill),
        ]);
        let page = render_html(&r);
        assert_eq!(page.matches("title=\"not applicable: a MAP_PRIVATE store").count(), 1, "{page}");
        assert!(!page.contains("enospc-skipped"));
        r.enospc_skipped = Some("unshare(CLONE_NEWUSER): <denied>".into());
        let page = render_html(&r);
        assert!(page.contains(
            "enospc column skipped: its capacity-limited tmpfs cannot be mounted here \
                               (unshare(CLONE_NEWUSER): &lt;denied&gt;)"
        ));
    }

    #[test]
    fn percentages_never_hide_a_loss_or_a_survivor() {
        assert_eq!(percent(0, 7), 0);
        assert_eq!(percent(7, 7), 100);
        assert_eq!(percent(999, 1000), 99);
        assert_eq!(percent(1, 1000), 1);
        assert_eq!(percent(1, 2), 50);
    }

    #[test]
    fn heat_colours_run_from_the_first_stop_to_the_last() {
        assert_eq!(heat_colour(0.0).0, "#ffffd9");
        assert_eq!(heat_colour(1.0).0, "#0c2c84");
        assert_eq!(heat_colour(0.5).0, "#7fcdbb");
        // Dark squares get light text.
        assert_eq!(heat_colour(1.0).1, "#ffffff");
        assert_eq!(heat_colour(0.0).1, "#111111");
    }
}
