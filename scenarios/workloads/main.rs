//! `crashlab-workload`: example writers and checkers for crashlab's workload
//! protocol v1 (see the README): correct designs and classic mistakes.
//!
//! ```text
//! crashlab-workload EXAMPLE writer [--records N] [--pace-us MICROS]
//! crashlab-workload EXAMPLE checker
//! ```
//!
//! | example | design | caught by a process crash? |
//! |---|---|---|
//! | `wal` | append record with CRC, `msync(MS_SYNC)`, ack | correct |
//! | `shadow` | new version in the other area, msync, flip the root, msync, ack | correct |
//! | `wal-ack-before-msync` | ack, then `msync(MS_SYNC)` | no: only power loss |
//! | `wal-ms-async` | `msync(MS_ASYNC)` as if it were durable | no: only power loss |
//! | `wal-map-private` | `MAP_PRIVATE` + msync, pwrite checkpoint at clean exit | yes: every crash loses all acks |
//! | `flag-before-payload` | commit flag stored before the payload | yes, when a crash lands between them |
//! | `lmdb` | LMDB, `MDB_WRITEMAP`, default durable commits (`msync(MS_SYNC)`), 8 keys per transaction | correct |
//! | `lmdb-nosync` | the same with `MDB_NOSYNC` | no: only power loss |
//!
//! The LMDB examples load the system's `liblmdb.so.0` (Debian: `liblmdb0`);
//! `crashlab-workload lmdb version` prints its version.

mod common;
mod flag_first;
mod lmdb;
mod lmdb_ffi;
mod shadow;
mod wal;

use wal::Durability;

const USAGE: &str =
    "usage: crashlab-workload EXAMPLE writer [--records N] [--pace-us MICROS] | crashlab-workload EXAMPLE checker
examples: wal, shadow, wal-ack-before-msync, wal-ms-async, wal-map-private, flag-before-payload, lmdb, lmdb-nosync
(for lmdb and lmdb-nosync, --records counts transactions; `crashlab-workload lmdb version` prints LMDB's version)";

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let (example, role) = match args.as_slice() {
        [e, r, ..] => (e.as_str(), r.as_str()),
        _ => common::die(USAGE),
    };
    let mut records = None;
    let mut options = args[2..].iter();
    while let Some(flag) = options.next() {
        let value = options.next().unwrap_or_else(|| common::die(USAGE));
        let number = value.parse::<u64>().unwrap_or_else(|_| common::die(&format!("{flag} {value}: not a number")));
        match flag.as_str() {
            "--records" => records = Some(number as usize),
            "--pace-us" => {
                let _ = common::PACE.set(std::time::Duration::from_micros(number));
            }
            _ => common::die(USAGE),
        }
    }
    match (example, role) {
        ("wal", "writer") => wal::writer(Durability::MsSyncThenAck, records.unwrap_or(64)),
        ("wal-ack-before-msync", "writer") => wal::writer(Durability::AckThenMsSync, records.unwrap_or(64)),
        ("wal-ms-async", "writer") => wal::writer(Durability::MsAsync, records.unwrap_or(64)),
        ("wal-map-private", "writer") => wal::writer(Durability::MapPrivateCheckpointAtExit, records.unwrap_or(64)),
        ("wal" | "wal-ack-before-msync" | "wal-ms-async" | "wal-map-private", "checker") => wal::checker(),
        ("shadow", "writer") => shadow::writer(records.unwrap_or(32)),
        ("shadow", "checker") => shadow::checker(),
        ("flag-before-payload", "writer") => flag_first::writer(records.unwrap_or(16)),
        ("flag-before-payload", "checker") => flag_first::checker(),
        ("lmdb", "writer") => lmdb::writer(lmdb::Sync::Durable, records.unwrap_or(64)),
        ("lmdb-nosync", "writer") => lmdb::writer(lmdb::Sync::NoSync, records.unwrap_or(64)),
        ("lmdb" | "lmdb-nosync", "checker") => lmdb::checker(),
        ("lmdb" | "lmdb-nosync", "version") => lmdb::print_version(),
        _ => common::die(&format!("unknown example or role `{example} {role}`\n{USAGE}")),
    }
}
