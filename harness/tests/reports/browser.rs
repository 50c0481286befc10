//! The HTML page as a person sees it: rendered by headless Chromium, whose
//! DOM must hold the survival matrix. CI installs Chromium; elsewhere the
//! test fails with the install line unless CRASHLAB_SKIP_BROWSER=1.

use std::path::{Path, PathBuf};
use std::process::Command;

use crate::campaign::{campaign, normalized, parse, regressed};
use crashlab::report::html::render_html;
use crashlab::report::survival::Verdict;

const INSTALL: &str = "apt-get update && apt-get install -y --no-install-recommends chromium";

/// The Chromium to use, or `None` when the test may be skipped.
fn chromium() -> Option<PathBuf> {
    let found = ["chromium", "chromium-browser", "google-chrome"].iter().find_map(|name| {
        std::env::var_os("PATH")?.to_str()?.split(':').map(|d| Path::new(d).join(name)).find(|p| p.is_file())
    });
    if found.is_none() && std::env::var("CRASHLAB_SKIP_BROWSER").as_deref() == Ok("1") {
        eprintln!("CRASHLAB_SKIP_BROWSER=1 and no Chromium: the HTML page was not rendered");
        return None;
    }
    Some(found.unwrap_or_else(|| {
        panic!("no chromium on PATH to render the HTML report; install it ({INSTALL}) or set CRASHLAB_SKIP_BROWSER=1")
    }))
}

/// Run headless Chromium on `page` with its own fresh profile, no network
/// chatter and no sandbox (tests run as root in CI).
fn headless(chromium: &Path, profile: &Path, args: &[&str], page: &Path) -> std::process::Output {
    let o = Command::new(chromium)
        .args([
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-quic",
            "--no-first-run",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
        ])
        .arg(format!("--user-data-dir={}", profile.display()))
        .args(args)
        .arg(format!("file://{}", page.display()))
        .output()
        .expect("chromium starts");
    assert!(o.status.success(), "chromium {args:?} failed: {}", String::from_utf8_lossy(&o.stderr));
    o
}

#[test]
fn chromium_renders_the_survival_matrix() {
    let Some(chromium) = chromium() else { return };
    let report = regressed(&normalized(&parse(&campaign().whole), "6.18.0-test", "tmpfs"));
    let dir = tempfile::tempdir().unwrap();
    let page = dir.path().join("report.html");
    std::fs::write(&page, render_html(&report)).unwrap();

    let o = headless(&chromium, &dir.path().join("profile-dom"), &["--dump-dom"], &page);
    let dom = String::from_utf8_lossy(&o.stdout);
    assert!(dom.contains("<table class=\"heatmap\" id=\"survival-matrix\">"), "no matrix in the rendered DOM:\n{dom}");
    let rows = report.cells.iter().map(|c| c.scenario).collect::<std::collections::BTreeSet<_>>().len();
    let matrix = &dom[dom.find("id=\"survival-matrix\"").unwrap()..];
    let matrix = &matrix[..matrix.find("</table>").unwrap()];
    assert_eq!(matrix.matches("<tr>").count(), 2 + rows, "two header rows and one per scenario");
    // One square per cell, plus the hatched one of the cell the report lacks.
    assert_eq!(matrix.matches("class=\"square").count(), report.cells.len() + 1);
    assert_eq!(matrix.matches("square absent").count(), 1);
    let broken = report.cells.iter().filter(|c| c.verdict == Verdict::ModelViolation).count();
    assert_eq!(matrix.matches("data-verdict=\"model-violation\"").count(), broken);
    assert!(matrix.contains("data-scenario=\"shared/no-sync\" data-crash=\"sigkill\" data-model=\"process-crash\" data-verdict=\"model-violation\""));
    // The markup in the failure details stayed text: no element came of it.
    assert!(!dom.contains("<script"), "report text became markup");
    assert!(dom.contains("&lt;script&gt;alert"), "the failure details are shown");
    assert!(dom.contains("id=\"environment\"") && dom.contains("6.18.0-test"));

    let png = dir.path().join("report.png");
    headless(
        &chromium,
        &dir.path().join("profile-shot"),
        &[&format!("--screenshot={}", png.display()), "--window-size=1400,1000"],
        &page,
    );
    let bytes = std::fs::read(&png).expect("chromium wrote the screenshot");
    assert_eq!(&bytes[..8], b"\x89PNG\r\n\x1a\n", "not a PNG");
    let (w, h) =
        (u32::from_be_bytes(bytes[16..20].try_into().unwrap()), u32::from_be_bytes(bytes[20..24].try_into().unwrap()));
    assert_eq!((w, h), (1400, 1000));
    if let Some(keep) = std::env::var_os("CRASHLAB_KEEP_SCREENSHOT") {
        std::fs::copy(&png, keep).unwrap();
    }
}
