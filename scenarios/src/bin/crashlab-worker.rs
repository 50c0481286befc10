//! The forking worker for this crate's tests: cargo builds it before the
//! integration tests run and hands its path over in `CARGO_BIN_EXE_crashlab-worker`.
//! A test (multithreaded) thus never forks itself; it spawns this.

fn main() {
    std::process::exit(crashlab::lab::worker::worker_main(std::env::args_os().skip(1)));
}
