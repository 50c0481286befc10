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
//! sizes the files like the writer). Under crashlab's power-loss model (the
//! strict POSIX contract, `fs_model` `posix` in the report: a directory
//! entry is durable only once its directory was fsynced) every
//! example needs its setup: the older writers create their files without
//! ever fsyncing the directory (the file of `wal`, `shadow`,
//! `flag-before-payload`, LMDB's `data.mdb`), and a power loss may then take
//! the file's name away with every record acked in it; the newer ones
//! expect the file (or version 0, or the first segment) to be there. The
//! writers are the same with or without a setup (they open an existing file
//! without truncating it); a process crash needs no setup.
//!
//! | example | design | needs setup | caught by a process crash? | by `power-loss`? | by `enospc`? |
//! |---|---|---|---|---|---|
//! | `wal` | append record with CRC, `msync(MS_SYNC)`, ack | yes (`--records`) | correct | never |
//! | `shadow` | new version in the other area, msync, flip the root, msync, ack | yes | correct | never |
//! | `wal-ack-before-msync` | ack, then `msync(MS_SYNC)` | yes (`--records`) | no | yes |
//! | `wal-ms-async` | `msync(MS_ASYNC)` as if it were durable | yes (`--records`) | no | yes |
//! | `wal-map-private` | `MAP_PRIVATE` + msync, pwrite checkpoint at clean exit | yes (`--records`) | yes: every crash loses all acks | yes |
//! | `flag-before-payload` | commit flag stored before the payload | yes (`--records`) | yes, when a crash lands between them | yes |
//! | `lmdb` | LMDB, `MDB_WRITEMAP`, default durable commits (`msync(MS_SYNC)`), 8 keys per transaction | yes (`--records`) | correct | never |
//! | `lmdb-nosync` | the same with `MDB_NOSYNC` | yes (`--records`) | no | yes |
//! | `atomic-replace` | write `state.tmp` through a mapping (`O_CREAT\|O_TRUNC`, `ftruncate`, `mmap`, stores), `msync(MS_SYNC)`, `fsync`, `rename` to `state`, `fsync` of the directory, ack | yes (version 0) | correct | never |
//! | `atomic-replace-no-dir-fsync` | the same without the directory fsync | yes (version 0) | no | the rename is lost (real ext4 cuts: 30/30), `state` holds the previous version |
//! | `segmented-log` | log in 4-page segment files; a new segment is created, `ftruncate`d, `fsync`ed, the directory `fsync`ed before use; record, `msync(MS_SYNC)`, ack | yes (first segment) | correct | never |
//! | `segmented-log-no-dir-fsync` | the same, never fsyncing the directory | yes (first segment) | no | a new segment's name is lost with every record acked in it |
//! | `grow-ftruncate` | a file grown by `ftruncate` 2 pages at a time, a record in the first new page, `msync(MS_SYNC)` of it, ack | yes (the 1-page file) | correct (not for `sigbus`: its cut sets a length the checker rightly refuses) | never: msync is fdatasync, which makes the grown size durable |
//! | `kv-append-first` | records appended with `pwrite` (which extends the file), `fdatasync`, then the count stored in the mapped header page, `msync(MS_SYNC)`, ack | yes (the header page) | correct | never |
//! | `kv-header-first` | the count stored in the mapped header *before* the `pwrite` that appends the record | yes (the header page) | yes, when a kill lands between the store and the `pwrite`: microseconds that random times almost never hit, and `--points syscalls` (a crash just before the `pwrite`) always does | yes |
//! | `redo-from-page` | a counter's data page rewritten (mapped) on every operation and `msync`ed every 8; the header page (committed operation, checkpoint) `msync`ed on every operation, ack; recovery redoes after the operation the data page holds | yes (both pages) | correct | never |
//! | `redo-from-checkpoint` | the same writer; recovery assumes the data page is current or at the checkpoint, and redoes after the checkpoint | yes (both pages) | no | only with intermediate versions (`--history on`, the default): writeback between checkpoints can leave any version the page had; with `--history off` it passes |
//! | `bench-log` | records of 6 KiB stored through a mapping, `msync(MS_SYNC)`, ack; the fixed target of `crashlab bench checkers` (its checker also as a protocol v1.1 server: `bench-log checker-server`) | yes (`--records`) | correct | never |
//! | `eio-ignore` | one record per page, `msync(MS_SYNC)`, ack whatever the msync returned | yes (`--records`) | correct | never; `eio-sync`: yes (the failed record's page may be lost after its ack) |
//! | `eio-retry` | the same; a failed msync retried once, ack if the retry succeeds | yes (`--records`) | correct | never; `eio-sync`: yes (the retry finds the page clean and writes nothing) |
//! | `eio-stop` | the same; on a failed msync no ack, exit 3 | yes (`--records`) | correct | never; `eio-sync`: never |
//! | `sqlite-JOURNAL-SYNC` | SQLite (python3's `sqlite3`), `journal_mode` `delete` or `wal`, `synchronous` `off`, `normal`, `full` or `extra`, `mmap_size` 1 MiB; one row per transaction, ack after `commit()` | yes (the database) | correct: SQLite keeps every commit through a process crash | per SQLite's own promises (the checker requires only what the mode promises): `off` may corrupt (caught as `corrupt: ...`); `delete-full` may roll back its last commit (its journal's unlink, the commit point, is not followed by a directory fsync), which the checker allows; `delete-extra`, `wal-full`, `wal-extra` keep every acked commit |
//! | `fill-mapped` | a sparse file (`ftruncate` once), one record per page stored through a `MAP_SHARED` mapping, `msync(MS_SYNC)`, ack; SIGBUS not handled | no | correct | never | `enospc`: correct; the writer dies of SIGBUS at its first store into a page the full filesystem cannot back, and loses no ack (completed stores stay in the page cache) |
//! | `fill-fallocate` | the same, but `fallocate` 8 pages before storing into them; `ENOSPC` from it stops the writer (exit 1, no further ack) | no | correct | never | `enospc`: correct; exits 1 |
//! | `fill-fallocate-durable` | `fill-fallocate`, and the directory `fsync`ed after `log.db` is created | no | correct | never | `enospc` and `enospc,power-loss`: correct; exits 1 |
//! | `fill-fallocate-unsynced` | `fill-fallocate-durable` without the `msync`: ack once stored | no | correct | yes: no record is synced | `enospc`: correct (exits 1, the page cache kept); `enospc,power-loss`: caught (an acked record's page at its floor) |
//! | `append-unchecked` | records appended with `write(2)`, acked without checking its result | no | correct | yes: nothing is ever synced | `enospc`: caught: the writes after the disk filled failed, their acks are missing |
//!
//! Before crashlab modelled the namespace (directory entries as they were
//! at the crash, content durability keyed by path, a file's durable size
//! raised only to cover the ranges msync wrote) `atomic-replace` and
//! `grow-ftruncate` were reported as violations, wrongly; they are the
//! cases of the namespace model (`harness/src/namespace/`).
//!
//! Command lines (`W=target/release/crashlab-workload`; the same `--records`
//! for setup and writer):
//!
//! ```text
//! crashlab run --setup "$W atomic-replace setup" --writer "$W atomic-replace writer" \
//!     --checker "$W atomic-replace checker" --crash power-loss
//! crashlab run --setup "$W sqlite-delete-full setup" --writer "$W sqlite-delete-full writer" \
//!     --checker "$W sqlite-delete-full checker" --crash power-loss
//! ```
//!
//! The LMDB examples load the system's `liblmdb.so.0` (Debian: `liblmdb0`);
//! `crashlab-workload lmdb version` prints its version. The SQLite examples
//! exec `python3 scenarios/workloads/sqlite_workload.py` (see `sqlite.rs`);
//! `crashlab-workload sqlite-wal-full version` prints SQLite's version.

mod atomic_replace;
mod bench_log;
mod bench_log_format;
mod common;
mod disk_full;
mod eio_log;
mod flag_first;
mod grow_ftruncate;
mod kv_extend;
mod lmdb;
mod lmdb_ffi;
mod redo_checkpoint;
mod segmented_log;
mod shadow;
mod sqlite;
mod wal;

use wal::Durability;

const USAGE: &str = "usage: crashlab-workload EXAMPLE setup [--records N]
       crashlab-workload EXAMPLE writer [--records N] [--pace-us MICROS]
       crashlab-workload EXAMPLE checker
       crashlab-workload bench-log checker-server   (protocol v1.1)
examples: wal, shadow, wal-ack-before-msync, wal-ms-async, wal-map-private, flag-before-payload, lmdb, lmdb-nosync,
  atomic-replace, atomic-replace-no-dir-fsync, segmented-log, segmented-log-no-dir-fsync, grow-ftruncate,
  kv-append-first, kv-header-first, redo-from-page, redo-from-checkpoint, sqlite-{delete,wal}-{off,normal,full,extra}, bench-log,
  eio-ignore, eio-retry, eio-stop
  fill-mapped, fill-fallocate, fill-fallocate-durable, fill-fallocate-unsynced, append-unchecked (no setup)
(for lmdb*, --records counts transactions, for sqlite-* too; for atomic-replace*, updates;
`crashlab-workload lmdb version` prints LMDB's version, `crashlab-workload sqlite-wal-full version` SQLite's)";

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let (example, role) = match args.as_slice() {
        [e, r, ..] => (e.as_str(), r.as_str()),
        _ => common::die(USAGE),
    };
    let mut records = None;
    let mut pace_us = None;
    let mut options = args[2..].iter();
    while let Some(flag) = options.next() {
        let value = options.next().unwrap_or_else(|| common::die(USAGE));
        let number = value.parse::<u64>().unwrap_or_else(|_| common::die(&format!("{flag} {value}: not a number")));
        match flag.as_str() {
            "--records" => records = Some(number as usize),
            "--pace-us" => {
                pace_us = Some(number);
                let _ = common::PACE.set(std::time::Duration::from_micros(number));
            }
            _ => common::die(USAGE),
        }
    }
    if let Some((journal, sync)) = sqlite::parse_example(example) {
        match role {
            "setup" | "writer" | "checker" | "version" => sqlite::exec(journal, sync, role, records, pace_us),
            _ => common::die(&format!("unknown example or role `{example} {role}`\n{USAGE}")),
        }
    }
    if let Some(fill) = disk_full::Fill::parse(example) {
        match role {
            "writer" => disk_full::writer(fill, records.unwrap_or(64)),
            "checker" => disk_full::checker(fill),
            _ => common::die(&format!(
                "unknown example or role `{example} {role}` (no setup: the writer creates its file)\n{USAGE}"
            )),
        }
        return;
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
        ("atomic-replace" | "atomic-replace-no-dir-fsync", "setup") => atomic_replace::setup(),
        ("atomic-replace", "writer") => atomic_replace::writer(true, records.unwrap_or(32)),
        ("atomic-replace-no-dir-fsync", "writer") => atomic_replace::writer(false, records.unwrap_or(32)),
        ("atomic-replace" | "atomic-replace-no-dir-fsync", "checker") => atomic_replace::checker(),
        ("segmented-log" | "segmented-log-no-dir-fsync", "setup") => segmented_log::setup(),
        ("segmented-log", "writer") => segmented_log::writer(true, records.unwrap_or(160)),
        ("segmented-log-no-dir-fsync", "writer") => segmented_log::writer(false, records.unwrap_or(160)),
        ("segmented-log" | "segmented-log-no-dir-fsync", "checker") => segmented_log::checker(),
        ("grow-ftruncate", "setup") => grow_ftruncate::setup(),
        ("grow-ftruncate", "writer") => grow_ftruncate::writer(records.unwrap_or(32)),
        ("grow-ftruncate", "checker") => grow_ftruncate::checker(),
        ("kv-append-first" | "kv-header-first", "setup") => kv_extend::setup(),
        ("kv-append-first", "writer") => kv_extend::writer(false, records.unwrap_or(32)),
        ("kv-header-first", "writer") => kv_extend::writer(true, records.unwrap_or(32)),
        ("kv-append-first" | "kv-header-first", "checker") => kv_extend::checker(),
        ("redo-from-page" | "redo-from-checkpoint", "setup") => redo_checkpoint::setup(),
        ("redo-from-page" | "redo-from-checkpoint", "writer") => redo_checkpoint::writer(records.unwrap_or(24)),
        ("redo-from-page", "checker") => redo_checkpoint::checker(true),
        ("redo-from-checkpoint", "checker") => redo_checkpoint::checker(false),
        ("eio-ignore" | "eio-retry" | "eio-stop", "setup") => eio_log::setup(records.unwrap_or(8)),
        ("eio-ignore", "writer") => eio_log::writer(eio_log::OnEio::Ignore, records.unwrap_or(8)),
        ("eio-retry", "writer") => eio_log::writer(eio_log::OnEio::RetryOnce, records.unwrap_or(8)),
        ("eio-stop", "writer") => eio_log::writer(eio_log::OnEio::Stop, records.unwrap_or(8)),
        ("eio-ignore" | "eio-retry" | "eio-stop", "checker") => eio_log::checker(),
        ("bench-log", "setup") => bench_log::setup(records.unwrap_or(8)),
        ("bench-log", "writer") => bench_log::writer(records.unwrap_or(8)),
        ("bench-log", "checker") => bench_log::checker(),
        ("bench-log", "checker-server") => bench_log::checker_server(),
        _ => common::die(&format!("unknown example or role `{example} {role}`\n{USAGE}")),
    }
}
