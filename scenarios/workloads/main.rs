//! `crashlab-workload`: example writers and checkers for crashlab's workload
//! protocol v1 (see the README): correct designs and classic mistakes.
//!
//! ```text
//! crashlab-workload EXAMPLE setup [--records N]
//! crashlab-workload EXAMPLE writer [--records N] [--pace-us MICROS]
//! crashlab-workload EXAMPLE checker
//! ```
//!
//! Every example has a `setup` role that creates its files *durably*
//! (written, `fsync`ed, then the directory `fsync`ed): crashlab runs
//! `--setup` in each fresh trial directory before the writer and takes what
//! it leaves as durable, and the setup makes that true on a real machine.
//! Give the setup the writer's `--records` where the table says so (it
//! sizes the files like the writer). Under the strict POSIX power-loss model
//! (`--fs-model posix`, the namespace-aware model being added to crashlab: a
//! directory entry is durable only once its directory was fsynced) the
//! examples are only correct with it: their writers create files without
//! ever fsyncing the directory, and a power loss may then take the file's
//! name away with every record acked in it. The writers are the same with
//! or without a setup (they open an existing file without truncating it);
//! a process crash, and the power-loss model that takes names as they are
//! at the crash, need no setup.
//!
//! | example | design | setup (`--setup`) | caught by a process crash? |
//! |---|---|---|---|
//! | `wal` | append record with CRC, `msync(MS_SYNC)`, ack | `wal setup [--records N]` | correct |
//! | `shadow` | new version in the other area, msync, flip the root, msync, ack | `shadow setup` | correct |
//! | `wal-ack-before-msync` | ack, then `msync(MS_SYNC)` | as `wal` | no: only power loss |
//! | `wal-ms-async` | `msync(MS_ASYNC)` as if it were durable | as `wal` | no: only power loss |
//! | `wal-map-private` | `MAP_PRIVATE` + msync, pwrite checkpoint at clean exit | as `wal` | yes: every crash loses all acks |
//! | `flag-before-payload` | commit flag stored before the payload | `flag-before-payload setup [--records N]` | yes, when a crash lands between them |
//! | `lmdb` | LMDB, `MDB_WRITEMAP`, default durable commits (`msync(MS_SYNC)`), 8 keys per transaction | `lmdb setup [--records N]` | correct |
//! | `lmdb-nosync` | the same with `MDB_NOSYNC` | `lmdb-nosync setup [--records N]` | no: only power loss |
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
    "usage: crashlab-workload EXAMPLE setup|writer [--records N] [--pace-us MICROS] | crashlab-workload EXAMPLE checker
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
    const WALS: [&str; 4] = ["wal", "wal-ack-before-msync", "wal-ms-async", "wal-map-private"];
    match (example, role) {
        (e, "setup") if WALS.contains(&e) => wal::setup(records.unwrap_or(64)),
        ("wal", "writer") => wal::writer(Durability::MsSyncThenAck, records.unwrap_or(64)),
        ("wal-ack-before-msync", "writer") => wal::writer(Durability::AckThenMsSync, records.unwrap_or(64)),
        ("wal-ms-async", "writer") => wal::writer(Durability::MsAsync, records.unwrap_or(64)),
        ("wal-map-private", "writer") => wal::writer(Durability::MapPrivateCheckpointAtExit, records.unwrap_or(64)),
        (e, "checker") if WALS.contains(&e) => wal::checker(),
        ("shadow", "setup") => shadow::setup(),
        ("shadow", "writer") => shadow::writer(records.unwrap_or(32)),
        ("shadow", "checker") => shadow::checker(),
        ("flag-before-payload", "setup") => flag_first::setup(records.unwrap_or(16)),
        ("flag-before-payload", "writer") => flag_first::writer(records.unwrap_or(16)),
        ("flag-before-payload", "checker") => flag_first::checker(),
        ("lmdb", "setup") => lmdb::setup(lmdb::Sync::Durable, records.unwrap_or(64)),
        ("lmdb-nosync", "setup") => lmdb::setup(lmdb::Sync::NoSync, records.unwrap_or(64)),
        ("lmdb", "writer") => lmdb::writer(lmdb::Sync::Durable, records.unwrap_or(64)),
        ("lmdb-nosync", "writer") => lmdb::writer(lmdb::Sync::NoSync, records.unwrap_or(64)),
        ("lmdb" | "lmdb-nosync", "checker") => lmdb::checker(),
        ("lmdb" | "lmdb-nosync", "version") => lmdb::print_version(),
        _ => common::die(&format!("unknown example or role `{example} {role}`\n{USAGE}")),
    }
}
