//! What the report tests share: running the `crashlab` binary, one small
//! deterministic campaign (run whole and in 3 shards, once per process),
//! and reports derived from it.

use std::path::Path;
use std::process::{Command, Output};
use std::sync::OnceLock;

use crashlab::crash::CrashPoint;
use crashlab::expectation::PersistenceModel;
use crashlab::report::survival::{CellReport, FailureReport, RunInfo, Summary, SurvivalReport, Verdict};
use crashlab::vocab::CrashKind;

pub fn crashlab(cwd: &Path, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_crashlab")).current_dir(cwd).args(args).output().expect("crashlab runs")
}

pub fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

/// Op boundaries only: every count is a function of the seed (SIGBUS
/// in-flight tears excepted, see [`deterministic_json`]). Power-loss-torn
/// cells are in, so merging covers their counts and explanations.
pub const CAMPAIGN: &[&str] = &[
    "--scenario",
    "shared/no-sync,shared/ms-sync-every-4,private/ack-before-sync",
    "--crash",
    "sigkill,abort,sigbus,clean",
    "--model",
    "process-crash,power-loss-torn",
    "--points",
    "boundaries",
    "--seed",
    "5",
    "--size",
    "65536",
    "--txns",
    "4",
];

pub const SHARDS: usize = 3;

/// The outputs of the campaign, read into memory (the temp dir is gone).
pub struct Campaign {
    pub whole: String,
    pub whole_html: String,
    pub whole_junit: String,
    pub whole_stderr: String,
    pub shards: Vec<String>,
}

pub fn campaign() -> &'static Campaign {
    static CAMPAIGN_OUTPUTS: OnceLock<Campaign> = OnceLock::new();
    CAMPAIGN_OUTPUTS.get_or_init(|| {
        let dir = tempfile::tempdir().unwrap();
        let run = |extra: &[&str]| {
            let mut args = vec!["matrix", "--dir", dir.path().to_str().unwrap()];
            args.extend_from_slice(CAMPAIGN);
            args.extend_from_slice(extra);
            let o = crashlab(dir.path(), &args);
            assert_eq!(o.status.code(), Some(0), "crashlab {args:?}: {}", text(&o.stderr));
            o
        };
        let o = run(&["--jobs", "2", "--out", "whole.json", "--html", "html/whole.html", "--junit", "whole.xml"]);
        let read = |name: &str| std::fs::read_to_string(dir.path().join(name)).unwrap();
        let mut shards = Vec::new();
        for i in 1..=SHARDS {
            let (shard, out) = (format!("{i}/{SHARDS}"), format!("shard-{i}.json"));
            // One worker where the whole run had two: the split must not depend on --jobs.
            run(&["--jobs", "1", "--shard", &shard, "--out", &out]);
            shards.push(read(&out));
        }
        Campaign {
            whole: read("whole.json"),
            whole_html: read("html/whole.html"),
            whole_junit: read("whole.xml"),
            whole_stderr: text(&o.stderr),
            shards,
        }
    })
}

pub fn parse(json: &str) -> SurvivalReport {
    serde_json::from_str(json).expect("crashlab writes reports it can read")
}

/// The report as JSON without what differs between two runs of the same
/// config: the fields of `NONDETERMINISTIC_FIELDS`, and the in-flight tear
/// count of SIGBUS cells (how much of the faulting store landed depends on
/// where memcpy was when the fault hit).
pub fn deterministic_json(report: &SurvivalReport) -> serde_json::Value {
    let mut v = serde_json::to_value(report).unwrap();
    for pointer in crashlab::report::survival::NONDETERMINISTIC_FIELDS {
        let path: Vec<&str> = pointer.split('/').skip(1).collect();
        remove_at(&mut v, &path);
    }
    for cell in v["cells"].as_array_mut().unwrap() {
        if cell["crash"] == "sigbus" {
            cell.as_object_mut().unwrap().remove("in_flight_torn");
        }
    }
    v
}

/// Remove the field at `path` (JSON pointer segments, `*` for every index
/// of an array) wherever it exists.
fn remove_at(v: &mut serde_json::Value, path: &[&str]) {
    match path {
        [] => {}
        [field] => {
            if let Some(o) = v.as_object_mut() {
                o.remove(*field);
            }
        }
        ["*", rest @ ..] => {
            for item in v.as_array_mut().into_iter().flatten() {
                remove_at(item, rest);
            }
        }
        [key, rest @ ..] => {
            if let Some(child) = v.get_mut(*key) {
                remove_at(child, rest);
            }
        }
    }
}

/// A copy with fixed stand-ins for the machine- and time-dependent fields,
/// for snapshots.
pub fn normalized(report: &SurvivalReport, kernel: &str, fs: &str) -> SurvivalReport {
    let mut r = report.clone();
    r.run = RunInfo { started_at_unix: 1_700_000_000, duration_ms: 1234, dir: "/tmp/crashlab-test".into() };
    r.environment.kernel_release = kernel.into();
    r.environment.fs_type = fs.into();
    r
}

pub fn cell_mut<'a>(
    r: &'a mut SurvivalReport,
    scenario: &str,
    crash: CrashKind,
    model: PersistenceModel,
) -> &'a mut CellReport {
    let scenario = scenario.parse().unwrap();
    r.cells
        .iter_mut()
        .find(|c| c.scenario == scenario && c.crash == crash && c.model == model)
        .expect("the campaign has this cell")
}

/// `before` as a later run might have found it on another kernel: one cell
/// lost acks it kept and broke the model (its failure details carry markup,
/// which every renderer must escape), one ran a trial more, one is gone.
pub fn regressed(before: &SurvivalReport) -> SurvivalReport {
    let mut r = normalized(before, "6.18.0-test", "tmpfs");
    let c = cell_mut(&mut r, "shared/no-sync", CrashKind::Sigkill, PersistenceModel::ProcessCrash);
    c.survived -= 2;
    c.lost += 2;
    c.model_violations = 1;
    c.verdict = Verdict::ModelViolation;
    c.verdict_reason = Some(format!("1 of {} trials left states the process-crash model forbids", c.trials));
    let replay = c.replay.replace("--point before:0", "--point before:3");
    c.failures.push(FailureReport {
        point: CrashPoint::BeforeOp(3),
        exit: "killed by signal 9".into(),
        replay: replay.clone(),
        details: vec![r#"Content [4096, 4160): holds version 7 <script>alert("x")</script> & more"#.into()],
    });
    c.replay = replay;
    let c = cell_mut(&mut r, "shared/ms-sync-every-4", CrashKind::Abort, PersistenceModel::ProcessCrash);
    c.trials += 1;
    c.crash_points += 1;
    c.acked += 4;
    c.survived += 4;
    let gone = "private/ack-before-sync".parse().unwrap();
    r.cells.retain(|c| !(c.scenario == gone && c.crash == CrashKind::Clean));
    r.summary = Summary::of(&r.cells);
    r
}
