//! The forking worker for this crate's tests: cargo builds it before the
//! integration tests run and hands its path over in `CARGO_BIN_EXE_crashlab-worker`.
//! A test (multithreaded) thus never forks itself; it spawns this.
//!
//! It also serves the lifecycle rows' programs (`crashlab-worker
//! __lifecycle ROLE KIND`, as `crashlab __lifecycle` does), so that the
//! tests run those rows without the `crashlab` binary of another package;
//! and the capacity helper of `enospc` trials (`crashlab-worker
//! __capacity ...`).

fn main() {
    let mut args = std::env::args_os().skip(1).peekable();
    if args.peek().is_some_and(|a| a == crashlab::lifecycle::program::SUBCOMMAND) {
        std::process::exit(crashlab::lifecycle::program::lifecycle_main(args.skip(1)));
    }
    if args.peek().is_some_and(|a| a == crashlab::external::capacity_helper::SUBCOMMAND) {
        std::process::exit(crashlab::external::capacity_helper::capacity_main(args.skip(1)));
    }
    std::process::exit(crashlab::lab::worker::worker_main(args));
}
