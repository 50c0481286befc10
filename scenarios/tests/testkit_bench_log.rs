//! The `bench-log` target (`workloads/bench_log.rs`) as a crash test of
//! the Rust testkit: the same records, msync and acks from a writer
//! closure, the same judgement from a checker closure (the format's source
//! is shared). It passes every power-loss state with torn sectors.
//! `crashlab bench checkers --testkit THIS_BINARY` runs it with
//! `CRASHLAB_BENCH_TRIALS` set to time the testkit's checker server against
//! the v1 checker and the v1.1 server of the same target: it then prints
//! one line `crashlab-bench-testkit STATES CHECKER_RUNS SECONDS`.

use std::time::Instant;

use crashlab::testkit::{Crash, CrashTest};

#[path = "../workloads/bench_log_format.rs"]
mod format;

const RECORDS: usize = 8;

fn page() -> usize {
    // SAFETY: sysconf has no preconditions.
    unsafe { libc::sysconf(libc::_SC_PAGESIZE) as usize }
}

#[test]
fn bench_log_passes_every_power_loss_state_with_torn_sectors() {
    let bench = std::env::var("CRASHLAB_BENCH_TRIALS").ok().and_then(|t| t.parse::<u32>().ok());
    let dir = (!crashlab::testkit::is_reexecution()).then(|| tempfile::tempdir().unwrap());
    let mut test = CrashTest::new("bench_log_passes_every_power_loss_state_with_torn_sectors")
        .file(format::FILE, format::capacity(RECORDS, page()))
        .writer(|ctx| {
            for seq in 0..RECORDS {
                let at = seq * format::RECORD;
                ctx.map()[at..at + format::RECORD].copy_from_slice(&format::record(seq));
                ctx.msync(at..at + format::RECORD)?;
                ctx.ack(format!("rec {seq}"));
            }
            Ok(())
        })
        .checker(|dir, acks| {
            let file = std::fs::read(dir.join(format::FILE)).map_err(|e| e.to_string())?;
            format::judge(&file, acks)
        })
        .crashes([Crash::PowerLoss])
        .tear(512)
        .trials(bench.unwrap_or(4))
        .seed(std::env::var("CRASHLAB_BENCH_SEED").ok().and_then(|s| s.parse().ok()).unwrap_or(1))
        .jobs(2);
    if let Some(d) = &dir {
        test = test.dir(d.path());
    }
    let started = Instant::now();
    let report = test.run();
    let pl = report.external.as_ref().and_then(|e| e.power_loss.as_ref()).expect("a power-loss section");
    assert_eq!(pl.violations, 0, "{report}");
    assert!(pl.states_checked > 4, "torn sectors give states to check: {report}");
    if bench.is_some() {
        println!(
            "crashlab-bench-testkit {} {} {:.6}",
            pl.states_checked,
            pl.checker_runs,
            started.elapsed().as_secs_f64()
        );
    }
}
