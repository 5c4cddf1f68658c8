//! A `Wait` backend for host tests of the core alone: it yields the thread instead of
//! sleeping in the kernel (the hosted crate's futex backend has its own tests).

use shmsync_core::{AtomicU32, Ordering, Timed, Wait};
use std::sync::OnceLock;
use std::time::Instant;

pub struct Yield;

impl Wait for Yield {
    const NAME: &'static str = "Yield";

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

impl Timed for Yield {}

/// The primitives on [`Yield`], as the crate's `spin` module names them on `Spin`.
pub mod yielding {
    use super::Yield;
    use shmsync_core::Unowned;

    pub type Lock = shmsync_core::Lock<Yield, Unowned>;
    pub type Event = shmsync_core::Event<Yield>;
    pub type Semaphore = shmsync_core::Semaphore<Yield>;
    pub type BoundedSemaphore = shmsync_core::BoundedSemaphore<Yield>;
    pub type Value<T> = shmsync_core::Value<T, Yield, Unowned>;
    pub type Array<T, const N: usize> = shmsync_core::Array<T, N, Yield, Unowned>;
    pub type Condition = shmsync_core::Condition<Yield, Unowned, 8>;
    pub type Barrier = shmsync_core::Barrier<Yield, Unowned>;
    pub type RwLock = shmsync_core::RwLock<Yield, Unowned, 8>;
}
