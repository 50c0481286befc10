//! The oracle benchmark runs end to end and reports coherent figures (no
//! timing assertions). Print the numbers with
//! `CRASHLAB_ORACLE_BENCH_SECS=20 cargo test --release -p crashlab --test oracle_bench -- --nocapture`.

#![cfg(all(target_os = "linux", target_arch = "x86_64"))]

use crashlab::oracle::bench;

#[test]
fn the_benchmark_compares_untraced_and_traced_runs() {
    let secs: f64 = std::env::var("CRASHLAB_ORACLE_BENCH_SECS").ok().and_then(|s| s.parse().ok()).unwrap_or(0.3);
    let b =
        bench::run(secs).unwrap_or_else(|e| panic!("the oracle benchmark must run here (ptrace, seccomp, cc): {e}"));
    println!("{b}");
    for line in std::iter::once(&b.default_dir).chain(b.tmpfs.as_ref()) {
        assert!(line.ops >= 20, "{line:?}");
        assert_eq!(line.pair_ratios.len() as u32, line.rounds, "{line:?}");
        assert!(line.untraced_ns_per_op > 0.0 && line.traced_ns_per_op > 0.0, "{line:?}");
        assert!(line.ratio().is_finite(), "{line:?}");
        // One mmap, then only msyncs: the maps cache is read once per run.
        assert_eq!(line.maps_reads, 1, "{line:?}");
    }
    let text = b.to_string();
    assert!(text.contains("slowdown") && text.contains("target <= 1.5x"), "{text}");
    assert!(bench::run(0.0).is_err(), "a zero budget is refused");
}
