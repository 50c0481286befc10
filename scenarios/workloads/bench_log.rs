//! `bench-log`: the fixed target of `crashlab bench checkers` (and a
//! correct design): records of a page and a half ([`format::RECORD`]),
//! each stored through a shared mapping, `msync(MS_SYNC)`, then acked.
//! Under `--tear 512` a crash just before a record's msync leaves 2^12
//! states, all consistent: a checker-bound workload. Its checker comes as
//! a protocol v1 program (`checker`) and as a v1.1 server
//! (`checker-server`), with the same judgement ([`format::judge`]).

use std::io::{BufRead, Write};

use crate::bench_log_format as format;
use crate::common::{ack, acks, create_durably, die, page_size, read, violation, Mapping};

/// `crashlab-workload bench-log setup [--records N]`: the zeroed record
/// file at the writer's size, durably.
pub fn setup(records: usize) {
    create_durably(format::FILE, format::capacity(records, page_size()), &[]);
}

pub fn writer(records: usize) {
    let map = Mapping::create(format::FILE, format::capacity(records, page_size()), true);
    for seq in 0..records {
        let at = seq * format::RECORD;
        map.store(at, &format::record(seq));
        map.msync(at, format::RECORD, libc::MS_SYNC);
        ack(&format!("rec {seq}"));
    }
}

/// Protocol v1: judge `$CRASHLAB_DIR` with the lines of `$CRASHLAB_ACKS`.
pub fn checker() {
    if let Err(reason) = format::judge(&read(format::FILE), &acks()) {
        violation(&reason);
    }
}

/// Protocol v1.1: judge one `DIR<TAB>ACKS` request per line of stdin,
/// answer `ok` or `violation REASON` per line of stdout.
pub fn checker_server() {
    let stdin = std::io::stdin();
    let mut out = std::io::stdout().lock();
    for request in stdin.lock().lines() {
        let request = request.unwrap_or_else(|e| die(&format!("cannot read a request: {e}")));
        let Some((dir, acks)) = request.split_once('\t') else { die(&format!("`{request}` is not DIR<TAB>ACKS")) };
        let file = match std::fs::read(std::path::Path::new(dir).join(format::FILE)) {
            Ok(b) => b,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Vec::new(),
            Err(e) => die(&format!("cannot read {dir}/{}: {e}", format::FILE)),
        };
        let acks = std::fs::read_to_string(acks).unwrap_or_else(|e| die(&format!("cannot read {acks}: {e}")));
        let acks: Vec<String> = acks.lines().map(str::to_owned).collect();
        let answer = match format::judge(&file, &acks) {
            Ok(()) => "ok".to_owned(),
            Err(reason) => format!("violation {reason}"),
        };
        writeln!(out, "{answer}").and_then(|_| out.flush()).unwrap_or_else(|e| die(&format!("cannot answer: {e}")));
    }
}
