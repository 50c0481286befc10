//! `crashlab run --writer ... --checker-server ...` (protocol v1.1) end to
//! end: the same verdicts as the v1 checker it stands for, on process
//! crashes and power-loss states; its replay line; the flag errors; a
//! server answering garbage; no server left behind.
//!
//! The power-loss runs need ptrace and seccomp (the durability oracle).

use std::path::Path;
use std::process::{Command, Output};

#[path = "support/report_schema_validation.rs"]
mod report_schema_validation;

fn crashlab(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_crashlab")).args(args).output().expect("crashlab runs")
}

fn text(o: &Output) -> String {
    format!("{}{}", String::from_utf8_lossy(&o.stdout), String::from_utf8_lossy(&o.stderr))
}

/// Appends a record, acks it, then makes it durable: the ack comes too early.
const ACK_BEFORE_SYNC: &str =
    r#": >> log; sync log .; for i in 1 2 3 4 5 6; do echo "rec $i" >> log; echo "rec $i"; sync log; done"#;
/// Appends a record, makes it durable, then acks it.
const SYNC_BEFORE_ACK: &str =
    r#": >> log; sync log .; for i in 1 2 3 4 5 6; do echo "rec $i" >> log; sync log; echo "rec $i"; done"#;
/// v1: every acked line must be a line of `log`.
const LOG_CHECKER: &str = r#"while read -r l; do grep -qx "$l" log 2>/dev/null || { echo "acked $l is missing" >&2; exit 1; }; done < "$CRASHLAB_ACKS""#;
/// The same judgement as a v1.1 server: one request per line, the state
/// directory and the acks file separated by a tab; the run's seed in
/// `CRASHLAB_SEED` and no `CRASHLAB_DIR` (or it exits, a malfunction).
const LOG_SERVER: &str = r#"test -n "$CRASHLAB_SEED" && test -z "${CRASHLAB_DIR+x}" || exit 7
tab="$(printf '\t')"
while IFS="$tab" read -r d a; do
  v=ok
  while read -r l; do grep -qx "$l" "$d/log" 2>/dev/null || { v="violation acked $l is missing"; break; }; done < "$a"
  echo "$v"
done"#;

fn run(dir: &Path, writer: &str, check_flag: &str, check: &str, crash: &str) -> (Output, serde_json::Value) {
    let out = dir.join(format!("report-{}.json", check_flag.trim_start_matches("--")));
    #[rustfmt::skip]
    let o = crashlab(&[
        "run", "--shell", "--writer", writer, check_flag, check, "--crash", crash, "--trials", "6", "--seed", "5",
        "--jobs", "2", "--dir", dir.to_str().unwrap(), "--out", out.to_str().unwrap(),
    ]);
    let report =
        std::fs::read_to_string(&out).map(|t| serde_json::from_str(&t).unwrap()).unwrap_or(serde_json::Value::Null);
    if !report.is_null() {
        report_schema_validation::assert_valid_external_report(&report, "a report of `run --checker-server`");
    }
    (o, report)
}

/// Per trial crashed at a sync call (its crash replays exactly; a random
/// time does not): its index, verdict, states checked and minimal state.
fn at_sync_calls(section: &serde_json::Value) -> Vec<(u64, String, u64, String)> {
    let failures = section["failures"].as_array().unwrap();
    let minimal = |trial: &serde_json::Value| {
        failures.iter().find(|f| f["trial"] == *trial).map_or(String::new(), |f| f["finding"]["state"].to_string())
    };
    section["trials_detail"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|t| t["point"]["kind"] == "syscall")
        .map(|t| {
            let verdict = t["verdict"]["verdict"].to_string();
            (t["trial"].as_u64().unwrap(), verdict, t["states_checked"].as_u64().unwrap(), minimal(&t["trial"]))
        })
        .collect()
}

#[test]
fn a_checker_server_gives_the_v1_checkers_verdicts_on_power_loss_states_and_replays_as_a_server() {
    let dir = tempfile::tempdir().unwrap();
    for (writer, code) in [(ACK_BEFORE_SYNC, 1), (SYNC_BEFORE_ACK, 0)] {
        let (v1, r1) = run(dir.path(), writer, "--checker", LOG_CHECKER, "power-loss");
        let (v11, r11) = run(dir.path(), writer, "--checker-server", LOG_SERVER, "power-loss");
        assert_eq!(v1.status.code(), Some(code), "{}", text(&v1));
        assert_eq!(v11.status.code(), Some(code), "{}", text(&v11));
        assert_eq!(r11["config"]["checker_server"], true);
        assert!(r1["config"].get("checker_server").is_none(), "absent for a v1 checker");
        let (p1, p11) = (&r1["power_loss"], &r11["power_loss"]);
        let (s1, s11) = (at_sync_calls(p1), at_sync_calls(p11));
        assert_eq!(s1.len(), 3, "trials 0, 2 and 4 crash at sync calls: {p1:#}");
        assert_eq!(s1, s11, "the same verdicts, states and minimal states\nv1: {p1:#}\nv1.1: {p11:#}");
        if code == 1 {
            assert!(s11.iter().any(|t| t.1 == "\"violation\""), "{s11:?}");
            let f = p11["failures"].as_array().unwrap().iter().find(|f| f["point"]["kind"] == "syscall").unwrap();
            let line = f["replay"].as_str().unwrap();
            let words = shell_words::split(line).unwrap();
            assert!(words.iter().any(|w| w == "--checker-server"), "{line}");
            assert!(!words.iter().any(|w| w == "--checker"), "{line}");
            let mut args: Vec<&str> = words[1..].iter().map(String::as_str).collect();
            args.extend(["--dir", dir.path().to_str().unwrap()]);
            let replayed = crashlab(&args);
            assert_eq!(replayed.status.code(), Some(1), "{line}\n{}", text(&replayed));
            assert!(text(&replayed).contains("checker: VIOLATION: acked rec "), "{}", text(&replayed));
        }
    }
}

#[test]
fn a_checker_server_judges_process_crashes_and_the_clean_run() {
    let dir = tempfile::tempdir().unwrap();
    // A pause after the last ack: random crash times land mostly after
    // acks (six trials crashed before the first ack would be nothing-acked).
    let writer = format!("{SYNC_BEFORE_ACK}; sleep 0.3");
    let (o, r) = run(dir.path(), &writer, "--checker-server", LOG_SERVER, "sigkill,abort");
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    assert_eq!(r["clean_run"]["checker"]["verdict"], "consistent");
    assert_eq!(r["summary"]["trials"], 12);
    // A server that finds every directory wrong: the clean run's violation
    // is reported as one, with the server's reason.
    let (o, r) = run(
        dir.path(),
        SYNC_BEFORE_ACK,
        "--checker-server",
        "while read -r x; do echo 'violation no'; done",
        "sigkill",
    );
    assert_eq!(o.status.code(), Some(1), "{}", text(&o));
    assert_eq!(r["clean_run"]["checker"]["reason"], "no");
}

#[test]
fn checker_and_checker_server_are_one_or_the_other() {
    let both =
        crashlab(&["run", "--crash", "sigkill", "--writer", "true", "--checker", "true", "--checker-server", "cat"]);
    assert_eq!(both.status.code(), Some(2), "{}", text(&both));
    assert!(text(&both).contains("--checker") && text(&both).contains("--checker-server"), "{}", text(&both));
    let neither = crashlab(&["run", "--crash", "sigkill", "--writer", "true"]);
    assert_eq!(neither.status.code(), Some(2), "{}", text(&neither));
    assert!(
        text(&neither).contains("--writer needs --checker CMD (protocol v1) or --checker-server CMD"),
        "{}",
        text(&neither)
    );
    let replay = crashlab(&["replay", "--writer", "true", "--crash", "clean", "--seed", "1"]);
    assert_eq!(replay.status.code(), Some(2), "{}", text(&replay));
    assert!(text(&replay).contains("--checker-server"), "{}", text(&replay));
}

#[test]
fn a_garbage_answer_is_a_checker_malfunction_and_no_server_outlives_the_run() {
    let dir = tempfile::tempdir().unwrap();
    // The marker names this test's servers in /proc/PID/cmdline.
    let marker = format!("server-marker-{}", std::process::id());
    let server = format!("echo {marker} >/dev/null; read -r r; echo 'loading' >&2; echo 'yes'; sleep 600");
    let (o, _) = run(dir.path(), SYNC_BEFORE_ACK, "--checker-server", &server, "sigkill");
    assert_eq!(o.status.code(), Some(2), "{}", text(&o));
    let t = text(&o);
    assert!(t.contains("checker malfunction") && t.contains("(--checker-server)"), "{t}");
    assert!(t.contains(r#"answered "yes""#) && t.contains("last line of its stderr: loading"), "{t}");
    assert!(t.contains("replay: crashlab replay") && t.contains("--checker-server"), "{t}");
    let left: Vec<String> = std::fs::read_dir("/proc")
        .unwrap()
        .flatten()
        .filter(|e| {
            std::fs::read(e.path().join("cmdline")).is_ok_and(|c| String::from_utf8_lossy(&c).contains(&marker))
        })
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .collect();
    assert!(left.is_empty(), "checker servers left running: {left:?}");
}

/// A file whose creation no directory fsync made durable: in the states
/// that lose it, its content cannot show, so the states that differ only
/// in its content leave the same directory and are checked once.
#[test]
fn states_that_leave_byte_identical_directories_are_checked_once() {
    let dir = tempfile::tempdir().unwrap();
    let writer = "printf aaaa > f; printf bbbb > g; echo ack; sleep 0.3";
    let (o, r) = run(dir.path(), writer, "--checker-server", "while read -r x; do echo ok; done", "power-loss");
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    let pl = &r["power_loss"];
    let skipped = pl["states_skipped"].as_u64().unwrap_or(0);
    assert!(skipped > 0, "no state was skipped: {pl:#}");
    // States of the order that resolve to another one (a namespace choice
    // that cannot happen) are neither run nor skipped: at most as many.
    assert!(
        pl["checker_runs"].as_u64().unwrap() + skipped <= pl["states_checked"].as_u64().unwrap(),
        "a state was both run and skipped: {pl:#}"
    );
    assert!(text(&o).contains("byte-identical to one already checked took its verdict"), "{}", text(&o));
}
