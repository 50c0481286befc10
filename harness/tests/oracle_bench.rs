//! The oracle benchmark runs end to end and reports coherent figures (no
//! timing assertions). Print the numbers with
//! `CRASHLAB_ORACLE_BENCH_SECS=20 cargo test --release -p crashlab --test oracle_bench -- --nocapture`.

#![cfg(all(target_os = "linux", target_arch = "x86_64"))]

use crashlab::oracle::bench::{self, NsCounts, Workload};

#[test]
fn the_benchmark_compares_untraced_and_traced_runs() {
    let secs: f64 = std::env::var("CRASHLAB_ORACLE_BENCH_SECS").ok().and_then(|s| s.parse().ok()).unwrap_or(0.3);
    let b =
        bench::run(secs).unwrap_or_else(|e| panic!("the oracle benchmark must run here (ptrace, seccomp, cc): {e}"));
    println!("{b}");
    let lines: Vec<_> = b.lines().collect();
    assert_eq!(lines.len(), if b.tmpfs.is_some() { 5 } else { 3 }, "{b:?}");
    assert_eq!(b.tmpfs.is_some(), b.namespace_tmpfs.is_some(), "{b:?}");
    for line in lines {
        assert!(line.ops >= 20, "{line:?}");
        assert_eq!(line.pair_ratios.len() as u32, line.rounds, "{line:?}");
        assert_eq!(line.history_pair_ratios.len() as u32, line.rounds, "{line:?}");
        assert!(line.untraced_ns_per_op > 0.0 && line.traced_ns_per_op > 0.0, "{line:?}");
        assert!(line.history_ns_per_op > 0.0 && line.history_ratio().is_finite(), "{line:?}");
        assert!(line.ratio().is_finite(), "{line:?}");
        let n = line.ops;
        match line.workload {
            Workload::Msync => {
                // One mmap, then only msyncs: the maps cache is read once per run.
                assert_eq!(line.maps_reads, 1, "{line:?}");
                assert_eq!(line.ns_events, NsCounts { data_syncs: n, ..NsCounts::default() }, "{line:?}");
                // Each msync: a seccomp stop and an exit stop.
                assert!(line.stops_per_op >= 2.0, "{line:?}");
                // Each store is seen at its msync's entry (a version, which
                // that msync then makes obsolete).
                assert!(line.history_versions >= n / 2, "{line:?}");
            }
            Workload::Rewrite => {
                // An msync per op; the store before each write is a new
                // version of its page (the benchmark checks that at least
                // half are seen).
                assert_eq!(line.ns_events, NsCounts { data_syncs: n, ..NsCounts::default() }, "{line:?}");
                assert!(line.history_versions >= n / 2, "{line:?}");
            }
            Workload::Namespace => {
                // Per op: tmp created (a new inode life), its size set by the
                // write past the end, fsynced, renamed over state, and the
                // directory fsynced.
                let e = &line.ns_events;
                assert_eq!((e.creates, e.file_syncs, e.renames, e.dir_syncs), (n, n, n, n), "{line:?}");
                assert!(e.set_sizes >= n && e.data_syncs == 0, "{line:?}");
                // Five trapped calls per op, each stopped at entry and exit.
                assert!(line.stops_per_op >= 10.0, "{line:?}");
            }
        }
    }
    assert_eq!(b.default_dir.workload, Workload::Msync);
    assert_eq!(b.namespace.workload, Workload::Namespace);
    assert_eq!(b.rewrite.workload, Workload::Rewrite);
    let text = b.to_string();
    assert!(text.contains("slowdown") && text.contains("target <= 1.5x"), "{text}");
    assert!(text.contains("namespace (create/write/fsync/rename/dir fsync)"), "{text}");
    assert!(bench::run(0.0).is_err(), "a zero budget is refused");
}
