//! The one boundary between the algorithms and the platform: block on a 32-bit word.
//!
//! It has the shape of a futex (and of the `atomic-wait` crate): a thread waits while a
//! word holds an expected value; another changes the word and wakes it. Every primitive
//! in this crate is written once against this trait and is generic over it, in the
//! manner of `lock_api`. The crate ships [`Spin`](crate::Spin) for bare metal; the hosted
//! `shmsync` crate implements it with the Linux shared futex.

use core::time::Duration;

use crate::sync::{spin_loop, AtomicU32, Ordering};

/// Blocking and waking on a 32-bit atomic word.
///
/// Implementations must be usable on memory shared between processes when the
/// platform allows it: they may key waiters by the word's address, never by a pointer
/// stored inside the word.
///
/// # Example
///
/// A backend that yields the thread while it waits (enough for tests on a host):
///
/// ```
/// use shmsync_core::{AtomicU32, Lock, Ordering, Unowned, Wait};
///
/// struct Yield;
///
/// impl Wait for Yield {
///     const NAME: &'static str = "Yield";
///     fn now() -> u64 {
///         use std::sync::OnceLock;
///         use std::time::Instant;
///         static START: OnceLock<Instant> = OnceLock::new();
///         START.get_or_init(Instant::now).elapsed().as_nanos() as u64
///     }
///     fn wait(word: &AtomicU32, expected: u32, deadline: Option<u64>) {
///         if word.load(Ordering::Acquire) == expected && deadline.map_or(true, |d| Self::now() < d) {
///             std::thread::yield_now();
///         }
///     }
///     fn wake_one(_: &AtomicU32) {}
///     fn wake_all(_: &AtomicU32) {}
/// }
///
/// let lock: Lock<Yield, Unowned> = Lock::new();
/// drop(lock.lock().unwrap());
/// ```
pub trait Wait {
    /// How layouts name this way of waking ([`Layout`](crate::Layout) of a `Lock`, an
    /// `Event`, …): two backends may share a name only if a thread waiting through one
    /// is woken by the other on the same word (the bench's owner-less futex is
    /// `"Futex"`, like the futex itself). Another process that maps a lock must wake
    /// its waiters the same way, so a segment opened with another backend is refused.
    const NAME: &'static str;

    /// How long a waiter on an [`Event`](crate::Event), a
    /// [`Semaphore`](crate::Semaphore) or a [`Lock`](crate::Lock) spins, re-checking its
    /// condition, before it marks itself waiting and calls [`wait`](Wait::wait). A partner
    /// that answers within the spin saves both sides a system call (a wake-up across
    /// CPUs costs tens of microseconds on a VM; a spinning hand-off, tens of
    /// nanoseconds); the bound keeps a long wait from costing CPU, and
    /// [`yield_now`](Wait::yield_now) keeps the spin from taking the CPU its partner
    /// needs. 0, the default, does not spin.
    const SPIN_NS: u64 = 0;

    /// Nanoseconds on a monotonic clock; the unit of every deadline.
    fn now() -> u64;

    /// Blocks while `word` holds `expected`, until a wake, until `now() >= deadline`, or
    /// for no reason at all: callers re-check their condition after every return.
    /// Returns at once if `word` no longer holds `expected`.
    fn wait(word: &AtomicU32, expected: u32, deadline: Option<u64>);

    /// Wakes at least one thread blocked in [`wait`](Wait::wait) on `word`, if any.
    fn wake_one(word: &AtomicU32);

    /// [`wait`](Wait::wait) on two words at once: returns when a wake-up comes on either,
    /// at once if either no longer holds its expected value, or at `deadline`. By
    /// default it waits on `first` alone, and a wake-up on `second` only shows at its
    /// next look; a backend where a third party wakes words it does not change (the
    /// kernel, at a robust lock's holder's death) does better.
    fn wait_either(
        first: &AtomicU32,
        first_expected: u32,
        second: &AtomicU32,
        second_expected: u32,
        deadline: Option<u64>,
    ) {
        let _ = (second, second_expected);
        Self::wait(first, first_expected, deadline);
    }

    /// Wakes every thread blocked in [`wait`](Wait::wait) on `word`.
    fn wake_all(word: &AtomicU32);

    /// Whether a [`Lock`](crate::Lock) released while others sleep waiting for it
    /// should now be handed to one of them, instead of being freed for whoever comes
    /// first (which is mostly the releaser itself, back for more): eventual fairness,
    /// so that a thread that keeps taking a contended lock cannot starve the sleepers.
    /// `false`, the default: never. A backend that says `true` must report its wakes
    /// ([`wake_one_reporting`](Wait::wake_one_reporting)).
    fn hand_off_due() -> bool {
        false
    }

    /// [`wake_one`](Wait::wake_one), and whether it certainly woke a thread blocked in
    /// [`wait`](Wait::wait), which will return. By default it cannot tell, and says
    /// `false`: a lock's release then wakes a sleeper every time, where one that knows
    /// lets a woken locker look before it wakes another.
    fn wake_one_reporting(word: &AtomicU32) -> bool {
        Self::wake_one(word);
        false
    }

    /// Offers the CPU to another runnable thread, if the platform has one waiting for
    /// it; returns at once if not. A spinning waiter calls it between looks (every
    /// `SPIN_NS / 16` or so), so that when there are more runnable threads than CPUs
    /// the partner it waits for gets to run instead of waiting behind the spin.
    ///
    /// Returns whether another thread did run meanwhile: the CPUs are crowded, so a
    /// waiter for an answer stops its spin there (and sleeps), and the backend should
    /// say [`crowded`](Wait::crowded) for a while. Does nothing, and returns `false`,
    /// by default.
    fn yield_now() -> bool {
        false
    }

    /// Whether this thread lately found more runnable threads than CPUs (a
    /// [`yield_now`](Wait::yield_now) that gave its CPU away). A waiter for another
    /// thread's answer (an `Event`, a `Semaphore`, a `Queue`) then does not spin: the
    /// spin can only end when its partner runs, and with the CPUs crowded it takes the
    /// time that partner needs. It offers its CPU once, and sleeps. (A locker still
    /// spins: see `Lock`.) `false` by default.
    fn crowded() -> bool {
        false
    }
}

/// A [`Wait`] backend whose [`now`](Wait::now) reads a real monotonic clock. Only such a
/// backend offers the timed forms (`lock_timeout`, `acquire_timeout`, `wait_timeout`):
/// on a backend without a clock they do not exist, rather than quietly trying once.
///
/// # Example
///
/// [`Spin`](crate::Spin) has the timed forms once it is given a [`Clock`](crate::Clock):
///
/// ```
/// use core::time::Duration;
/// use shmsync_core::{Clock, Semaphore, Spin};
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
///
/// Without one, the timed forms are not there to call:
///
/// ```compile_fail,E0599
/// use core::time::Duration;
/// use shmsync_core::spin::Semaphore; // on `Spin`, which has no clock
///
/// let sem = Semaphore::new(0);
/// sem.acquire_timeout(Duration::from_millis(1));
/// ```
pub trait Timed: Wait {}

/// How long a call that may not block (a `try_` form) waits for an internal lock,
/// which other calls hold only for a few dozen instructions.
pub(crate) const MOMENT_NS: u64 = 100_000;

/// How often a blocking call looks again at an internal lock that a peer made unusable.
pub(crate) const UNUSABLE_LOOK_NS: u64 = 50_000_000;

/// The absolute deadline `timeout` from now on `W`'s clock. Saturates instead of
/// overflowing, so `Duration::MAX` means "practically never".
///
/// # Example
///
/// ```
/// use core::time::Duration;
/// use shmsync_core::{deadline_after, expired, AtomicU32, Timed, Wait};
///
/// /// A backend whose clock stands at 7 ns.
/// struct Stopped;
/// impl Wait for Stopped {
///     const NAME: &'static str = "Stopped";
///     fn now() -> u64 { 7 }
///     fn wait(_: &AtomicU32, _: u32, _: Option<u64>) {}
///     fn wake_one(_: &AtomicU32) {}
///     fn wake_all(_: &AtomicU32) {}
/// }
/// impl Timed for Stopped {}
///
/// let deadline = deadline_after::<Stopped>(Duration::from_nanos(3));
/// assert_eq!(deadline, 10);
/// assert!(!expired::<Stopped>(Some(deadline)));
/// assert!(expired::<Stopped>(Some(7)));
/// assert_eq!(deadline_after::<Stopped>(Duration::MAX), u64::MAX);
/// ```
pub fn deadline_after<W: Timed>(timeout: Duration) -> u64 {
    let nanos = u64::try_from(timeout.as_nanos()).unwrap_or(u64::MAX);
    W::now().saturating_add(nanos)
}

/// What a spinning waiter waits for, which decides how it spins when the CPUs are
/// crowded ([`Wait::crowded`]).
#[derive(Clone, Copy, PartialEq, Eq)]
pub(crate) enum Awaiting {
    /// Another thread's answer: an `Event` set, a permit released, a queue's slot or
    /// item. On crowded CPUs the partner may be among the threads waiting for one, and
    /// a spin takes the time it needs: the waiter offers its CPU once, then sleeps.
    Answer,
    /// A lock's release. Lockers that run pass a contended lock among themselves, and
    /// a spinning locker takes it the moment one lets go, with no system call on
    /// either side: a locker spins (offering its CPU as it goes) even on crowded CPUs.
    /// Sleeping instead cost every contended release a wake-up call, and 4 to 16
    /// processes on 2 vCPUs a third to two thirds of their increments.
    Release,
}

/// Spins while `busy()` holds, for at most `W::SPIN_NS`, offering the CPU to others
/// ([`Wait::yield_now`]) every sixteenth of it. Returns whether it still holds.
///
/// Waiting for an [answer](Awaiting::Answer), the spin adapts to crowded CPUs: while
/// the backend says [`Wait::crowded`] it is one offer of the CPU, and it stops at the
/// first offer that another thread took. The caller then sleeps, and leaves the CPUs
/// to the threads that can make progress, its partner among them.
pub(crate) fn spin_while<W: Wait>(awaiting: Awaiting, mut busy: impl FnMut() -> bool) -> bool {
    if !busy() {
        return false;
    }
    if W::SPIN_NS == 0 {
        return true;
    }
    let answer = awaiting == Awaiting::Answer;
    if answer && W::crowded() {
        W::yield_now();
        return busy();
    }
    let began = W::now();
    let until = began.saturating_add(W::SPIN_NS);
    let mut next_yield = began.saturating_add(W::SPIN_NS / 16);
    let mut rounds = 0u32;
    while busy() {
        rounds = rounds.wrapping_add(1);
        // Reading the clock costs more than a round: look every 32.
        if rounds.is_multiple_of(32) {
            let now = W::now();
            if now >= until {
                return true;
            }
            if now >= next_yield {
                if W::yield_now() && answer {
                    return busy();
                }
                next_yield = W::now().saturating_add(W::SPIN_NS / 16);
            }
        }
        spin_loop();
    }
    false
}

/// Whether `deadline` has passed on `W`'s clock (`None`: never). See
/// [`deadline_after`].
pub fn expired<W: Wait>(deadline: Option<u64>) -> bool {
    deadline.is_some_and(|d| W::now() >= d)
}

/// How long to sleep before looking again: until `deadline`, or, where the owner backend
/// asks for uninvited looks (`recheck_ns`, for a wake-up that died with its sender),
/// until that much sooner.
pub(crate) fn next_look<W: Wait>(deadline: Option<u64>, recheck_ns: Option<u64>) -> Option<u64> {
    match recheck_ns {
        None => deadline,
        Some(ns) => {
            let recheck = W::now().saturating_add(ns);
            Some(deadline.map_or(recheck, |d| d.min(recheck)))
        }
    }
}

/// Sleeps on `word`, which the caller saw hold `current`, until `until`, after making
/// sure `flag` is set in it: the sign that tells whoever changes the word next that
/// someone sleeps and must be woken. Returns at once if the word changed meanwhile.
pub(crate) fn sleep_flagged<W: Wait>(
    word: &AtomicU32,
    current: u32,
    flag: u32,
    until: Option<u64>,
) {
    if current & flag == 0
        && word
            .compare_exchange(
                current,
                current | flag,
                Ordering::Acquire,
                Ordering::Acquire,
            )
            .is_err()
    {
        return;
    }
    W::wait(word, current | flag, until);
}
