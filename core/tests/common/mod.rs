//! A `Wait` backend for host tests of the core alone: it yields the thread instead of
//! sleeping in the kernel (the hosted crate's futex backend has its own tests).

use shmsync_core::{AtomicU32, Ordering, Wait};
use std::sync::OnceLock;
use std::time::Instant;

pub struct Yield;

impl Wait for Yield {
    fn now() -> u64 {
        static START: OnceLock<Instant> = OnceLock::new();
        START.get_or_init(Instant::now).elapsed().as_nanos() as u64
    }

    fn wait(word: &AtomicU32, expected: u32, deadline: Option<u64>) {
        if word.load(Ordering::Acquire) == expected && deadline.is_none_or(|d| Self::now() < d) {
            std::thread::yield_now();
        }
    }

    fn wake_one(_: &AtomicU32) {}

    fn wake_all(_: &AtomicU32) {}
}
