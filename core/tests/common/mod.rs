//! A `Wait` backend for host tests of the core alone: it yields the thread instead of
//! sleeping in the kernel (the hosted crate's futex backend has its own tests).

use shmsync_core::{AtomicU32, Ordering, Timed, Wait};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

/// How long a test may run before it is called hung: far longer than any test takes,
/// so that only a hang reaches it, and a hang fails the test instead of stalling the
/// run.
pub const HANG: Duration = Duration::from_secs(180);

/// Runs `test` on a thread of its own and returns what it returned, failing the test
/// if it has not ended within [`HANG`]. Threads that hang (on a lost wake-up, a lock
/// never released) cannot be ended: they are left behind, and the test fails instead
/// of hanging. A panic in `test` fails the test as it would have.
#[allow(dead_code)] // only the test binaries whose tests may block use it
#[track_caller]
pub fn within_hang<T: Send + 'static>(test: impl FnOnce() -> T + Send + 'static) -> T {
    let test = std::thread::spawn(test);
    let deadline = Instant::now() + HANG;
    while !test.is_finished() {
        assert!(
            Instant::now() < deadline,
            "gave up after {HANG:?}: the test hangs"
        );
        std::thread::sleep(Duration::from_millis(1));
    }
    test.join()
        .unwrap_or_else(|panic| std::panic::resume_unwind(panic))
}

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
