//! A lock owner that the test cannot see from where it stands: run in its own PID
//! namespace, it records a thread id that means nothing (or another thread) outside.
//! The lock must still exclude it while it lives and report it dead once it is gone.
//!
//! Usage:
//! - `shmsync-owner contend SEGMENT CYCLES LONG_EVERY LONG_MS`: one contender of the
//!   shared counter, started with the test's own by the segment's `go` event;
//! - `shmsync-owner die-holding SEGMENT`: takes the lock and exits without releasing it.

use shmsync::Shared;
use shmsync_tests::ownership::{Contended, WAIT};
use std::process::ExitCode;
use std::time::Duration;

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let usage = || {
        eprintln!(
            "usage: shmsync-owner contend SEGMENT CYCLES LONG_EVERY LONG_MS\n       \
             shmsync-owner die-holding SEGMENT"
        );
        ExitCode::from(2)
    };
    let Some((command, rest)) = args.split_first() else {
        return usage();
    };
    let Some(segment) = rest.first() else {
        return usage();
    };
    let shared = match Shared::<Contended>::open(segment, Duration::from_secs(10)) {
        Ok(shared) => shared,
        Err(error) => {
            eprintln!("shmsync-owner: {error}");
            return ExitCode::FAILURE;
        }
    };
    match (command.as_str(), &rest[1..]) {
        ("contend", [cycles, long_every, long_ms]) => {
            let (Ok(cycles), Ok(long_every), Ok(long_ms)) =
                (cycles.parse(), long_every.parse(), long_ms.parse())
            else {
                return usage();
            };
            shared.ready.fetch_add(1);
            if !shared.go.wait_timeout(WAIT) {
                eprintln!("shmsync-owner: never started");
                return ExitCode::from(3);
            }
            shared.contend(cycles, long_every, Duration::from_millis(long_ms));
            shared.finished.fetch_add(1);
            ExitCode::SUCCESS
        }
        ("die-holding", []) => match shared.lock.lock_timeout(WAIT) {
            Ok(guard) => {
                // Dies holding it: exit runs no destructor of a forgotten guard.
                std::mem::forget(guard);
                shared.held.set();
                ExitCode::SUCCESS
            }
            Err(error) => {
                eprintln!("shmsync-owner: could not take the lock: {error}");
                ExitCode::from(4)
            }
        },
        _ => usage(),
    }
}
