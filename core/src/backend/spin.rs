//! A [`Wait`] backend that spins: for bare metal, where there is no scheduler to sleep in.

use core::marker::PhantomData;

use crate::sync::{spin_loop, AtomicU32, Ordering};
use crate::wait::Wait;

/// Waits by spinning on the word; waking costs nothing.
///
/// Correct wherever the thread that will change the word runs concurrently: another
/// core, an interrupt handler, a preemptive RTOS task, another process. On a
/// cooperative executor (embassy) a task that spins starves the others: use the
/// `try_` forms or the async forms there.
///
/// Timeouts need a clock, given as `C` (see [`Clock`]). With the default [`NoClock`]
/// a timed wait checks once and times out at once, so `lock_timeout` behaves as
/// `try_lock`.
///
/// # Example
///
/// ```
/// use shmsync_core::{Event, Spin};
///
/// static READY: Event<Spin> = Event::new();
/// READY.set();
/// READY.wait(); // returns at once: the event is set
/// ```
pub struct Spin<C = NoClock>(PhantomData<fn() -> C>);

/// A monotonic time source for [`Spin`], in nanoseconds.
///
/// # Example
///
/// ```
/// use shmsync_core::{Clock, Semaphore, Spin};
/// use core::time::Duration;
///
/// struct Uptime;
/// impl Clock for Uptime {
///     fn now_ns() -> u64 {
///         # static T: std::sync::OnceLock<std::time::Instant> = std::sync::OnceLock::new();
///         # return T.get_or_init(std::time::Instant::now).elapsed().as_nanos() as u64;
///         // read a hardware timer here
///     }
/// }
///
/// let sem: Semaphore<Spin<Uptime>> = Semaphore::new(0);
/// assert!(!sem.acquire_timeout(Duration::from_millis(1)));
/// ```
pub trait Clock {
    /// Nanoseconds since an arbitrary fixed point; never decreases.
    fn now_ns() -> u64;
}

/// The clock of a system that has none: every moment is already past every deadline.
///
/// # Example
///
/// ```
/// use shmsync_core::{Clock, NoClock};
/// assert_eq!(NoClock::now_ns(), u64::MAX);
/// ```
pub struct NoClock;

impl Clock for NoClock {
    fn now_ns() -> u64 {
        u64::MAX
    }
}

impl<C: Clock> Wait for Spin<C> {
    fn now() -> u64 {
        C::now_ns()
    }

    fn wait(word: &AtomicU32, expected: u32, deadline: Option<u64>) {
        // Return after a bounded number of rounds even without a deadline: the caller
        // loops anyway, and re-checking its condition keeps the wait honest.
        for _ in 0..1024 {
            if word.load(Ordering::Acquire) != expected
                || deadline.is_some_and(|d| C::now_ns() >= d)
            {
                return;
            }
            spin_loop();
        }
    }

    fn wake_one(_: &AtomicU32) {}

    fn wake_all(_: &AtomicU32) {}
}
