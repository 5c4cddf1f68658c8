//! A [`Wait`] backend that spins: for bare metal, where there is no scheduler to sleep in.

use core::marker::PhantomData;

use crate::sync::{spin_loop, AtomicU32, Ordering};
use crate::wait::{Timed, Wait};

/// Waits by spinning on the word; waking costs nothing.
///
/// Correct wherever the thread that will change the word runs concurrently: another
/// core, an interrupt handler, a preemptive RTOS task, another process. On a
/// cooperative executor (embassy) a task that spins starves the others: use the
/// `try_` forms or the async forms there.
///
/// Timeouts need a clock, given as `C` (see [`Clock`]): `Spin<MyClock>` is [`Timed`] and
/// has the timed forms (`lock_timeout`, ...). Plain `Spin` ([`NoClock`]) has none.
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

/// The clock of a system that has none: [`Spin<NoClock>`](Spin) (plain `Spin`) waits
/// without deadlines, so it has no timed forms. It is deliberately not a [`Clock`].
///
/// # Example
///
/// ```
/// use shmsync_core::{Event, NoClock, Spin};
///
/// static DONE: Event<Spin<NoClock>> = Event::new();
/// DONE.set();
/// assert!(DONE.is_set());
/// ```
pub struct NoClock;

pub(crate) mod sealed {
    /// What [`Spin`](super::Spin) (and [`Cores`](crate::Cores)) read the time from: a
    /// [`Clock`](super::Clock), or
    /// [`NoClock`](super::NoClock), whose every moment is past every deadline (only the
    /// crate's own short waits use it, and they then give up at the first look).
    pub trait TimeSource {
        fn now_ns() -> u64;
    }
}
use sealed::TimeSource;

impl<C: Clock> TimeSource for C {
    fn now_ns() -> u64 {
        C::now_ns()
    }
}

impl TimeSource for NoClock {
    fn now_ns() -> u64 {
        u64::MAX
    }
}

impl<C: Clock> Timed for Spin<C> {}

impl<C: TimeSource> Wait for Spin<C> {
    /// Whatever its clock: waiters poll the word, and nobody needs to wake them.
    const NAME: &'static str = "Spin";

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
