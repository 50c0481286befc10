//! The worker's side of the pool: the start-up every worker makes and its
//! request loop (one JSON request per line on stdin, one JSON answer per
//! line on stdout, until stdin closes).
//!
//! Architecture Invariant: a worker forks writer children, so it must be
//! single-threaded: [`start_worker`] checks it (from /proc/self/status)
//! before anything else runs.

use std::ffi::OsString;
use std::io::{BufRead, BufWriter, Write};

use serde::de::DeserializeOwned;
use serde::Serialize;

use super::{WorkerArgv, WorkerError};

/// Threads of this process, from /proc/self/status.
pub fn thread_count() -> Option<usize> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    status.lines().find_map(|l| l.strip_prefix("Threads:")).and_then(|n| n.trim().parse().ok())
}

/// What every worker does first: refuse to run with more than one thread
/// (the error says which `role`), ignore SIGINT (Ctrl-C is the harness's to
/// handle: it closes our stdin and we clean up), and write no core files
/// (an `abort()`ed writer must not litter the user's directory).
pub fn start_worker(role: &str) -> Result<(), String> {
    let threads = thread_count();
    if threads != Some(1) {
        return Err(format!("the {role} must be single-threaded to fork safely, but has {threads:?} threads"));
    }
    // SAFETY: ignoring a signal; setrlimit with a valid struct.
    unsafe {
        libc::signal(libc::SIGINT, libc::SIG_IGN);
        let zero = libc::rlimit { rlim_cur: 0, rlim_max: 0 };
        libc::setrlimit(libc::RLIMIT_CORE, &zero);
    }
    Ok(())
}

/// The body of a worker's `main`: parse its [`WorkerArgv`] (`who` names it
/// in errors, `started_by` says what starts it), then `serve` stdin and
/// stdout. Returns the process exit code: 0, or 2 with the error on stderr.
pub fn worker_main<E: std::fmt::Display>(
    who: &str,
    started_by: &str,
    args: impl IntoIterator<Item = OsString>,
    serve: impl FnOnce(WorkerArgv, std::io::StdinLock<'static>, BufWriter<std::io::StdoutLock<'static>>) -> Result<(), E>,
) -> i32 {
    let argv = match WorkerArgv::parse(args) {
        Ok(argv) => argv,
        Err(e) => {
            eprintln!("crashlab {who}: {e} (started by {started_by}, not by hand)");
            return 2;
        }
    };
    let id = argv.id;
    match serve(argv, std::io::stdin().lock(), BufWriter::new(std::io::stdout().lock())) {
        Ok(()) => 0,
        Err(e) => {
            eprintln!("crashlab {who} {id}: {e}");
            2
        }
    }
}

/// Answer each request line with `handle`'s answer, or `refuse(message)`
/// for a line that is not a request, until `input` ends. Fails only when the
/// pipes fail.
pub fn serve_lines<Req: DeserializeOwned, Resp: Serialize>(
    input: impl BufRead,
    mut output: impl Write,
    mut handle: impl FnMut(Req) -> Resp,
    refuse: impl Fn(String) -> Resp,
) -> Result<(), WorkerError> {
    for line in input.lines() {
        let line = line.map_err(|source| WorkerError::Io { what: "cannot read requests".into(), source })?;
        if line.trim().is_empty() {
            continue;
        }
        let response = match serde_json::from_str::<Req>(&line) {
            Err(e) => refuse(format!("bad request: {e}")),
            Ok(req) => handle(req),
        };
        serde_json::to_writer(&mut output, &response).expect("responses serialize");
        output
            .write_all(b"\n")
            .and_then(|_| output.flush())
            .map_err(|source| WorkerError::Io { what: "cannot answer".into(), source })?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_request_line_gets_one_answer_line_and_a_bad_line_is_refused() {
        let input = "3\n\n\"x\"\n4\n";
        let mut out = Vec::new();
        serve_lines(input.as_bytes(), &mut out, |n: u32| format!("ok {n}"), |m| format!("refused: {m}")).unwrap();
        let lines: Vec<String> =
            String::from_utf8(out).unwrap().lines().map(|l| serde_json::from_str(l).unwrap()).collect();
        assert_eq!(lines.len(), 3, "the blank line is skipped: {lines:?}");
        assert_eq!(lines[0], "ok 3");
        assert!(lines[1].starts_with("refused: bad request"), "{lines:?}");
        assert_eq!(lines[2], "ok 4");
    }
}
