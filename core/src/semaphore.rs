//! Counting semaphores: [`Semaphore`] and [`BoundedSemaphore`].
//!
//! ```
//! use shmsync_core::spin::Semaphore;
//!
//! // At most two workers at a time, as with Python's `Semaphore(2)`.
//! static SLOTS: Semaphore = Semaphore::new(2);
//! SLOTS.acquire();
//! assert_eq!(SLOTS.value(), 1);
//! SLOTS.release();
//! ```

use core::fmt;
use core::marker::PhantomData;
use core::time::Duration;

use crate::error::OverRelease;
use crate::sync::{const_fn, fence, AtomicU32, Ordering};
use crate::wait::{deadline_after, expired, spin_while, Awaiting, Timed, Wait};

/// A counting semaphore, as Python's `multiprocessing.Semaphore`.
///
/// [`acquire`](Self::acquire) takes a permit, blocking while there are none;
/// [`release`](Self::release) returns one. 8 bytes, `#[repr(C)]`, atomics only.
///
/// A semaphore has no owner: a process that dies holding a permit cannot be detected,
/// and the permit is gone. Use [`acquire_timeout`](Self::acquire_timeout) where that
/// matters.
///
/// # Example
///
/// ```
/// use shmsync_core::spin::Semaphore;
///
/// let sem = Semaphore::new(1);
/// assert!(sem.try_acquire());
/// assert!(!sem.try_acquire());
/// sem.release_n(3);
/// assert_eq!(sem.get_value(), 3);
/// ```
#[repr(C)]
pub struct Semaphore<W> {
    /// Free permits; also the word that waiters block on.
    permits: AtomicU32,
    /// How many acquirers are in (or about to enter) the slow path, so that a release
    /// with nobody waiting skips the wake-up system call.
    waiters: AtomicU32,
    _wait: PhantomData<fn() -> W>,
}

impl<W> Semaphore<W> {
    /// The most permits a semaphore can hold.
    pub const MAX_PERMITS: u32 = u32::MAX;

    const_fn! {
        /// A semaphore holding `permits` free permits.
        pub fn new(permits: u32) -> Self {
            Semaphore { permits: AtomicU32::new(permits), waiters: AtomicU32::new(0), _wait: PhantomData }
        }
    }

    /// The number of free permits right now (Python's `get_value()`).
    pub fn value(&self) -> u32 {
        self.permits.load(Ordering::Relaxed)
    }

    /// How many acquirers have said they are waiting for a permit (in or about to
    /// enter their sleep), so that a release makes a wake-up call. One that died
    /// waiting is never taken off the count. For diagnostics.
    pub fn waiters_announced(&self) -> u32 {
        self.waiters.load(Ordering::Relaxed)
    }

    /// Python's name for [`value`](Self::value).
    pub fn get_value(&self) -> u32 {
        self.value()
    }
}

impl<W: Wait> Semaphore<W> {
    /// Takes a permit, blocking while there is none.
    pub fn acquire(&self) {
        if !self.try_acquire() {
            self.acquire_slow(None);
        }
    }

    /// Takes a permit if one is free right now.
    pub fn try_acquire(&self) -> bool {
        let mut current = self.permits.load(Ordering::Relaxed);
        while current > 0 {
            match self.permits.compare_exchange_weak(
                current,
                current - 1,
                Ordering::Acquire,
                Ordering::Relaxed,
            ) {
                Ok(_) => return true,
                Err(now) => current = now,
            }
        }
        false
    }

    /// Returns one permit, waking a waiter if there is one.
    ///
    /// # Panics
    ///
    /// If the count would pass [`MAX_PERMITS`](Self::MAX_PERMITS), a bug of the caller's
    /// (as an overflowing reference count is).
    pub fn release(&self) {
        self.release_n(1);
    }

    /// Returns `n` permits at once.
    ///
    /// # Panics
    ///
    /// If the count would pass [`MAX_PERMITS`](Self::MAX_PERMITS).
    pub fn release_n(&self, n: u32) {
        if let Err(full) = self.release_up_to(n, Self::MAX_PERMITS) {
            panic!("{full}");
        }
    }

    /// Adds `n` permits unless the count would pass `bound`; wakes as many waiters.
    fn release_up_to(&self, n: u32, bound: u32) -> Result<(), OverRelease> {
        let mut current = self.permits.load(Ordering::Relaxed);
        loop {
            let next = match current.checked_add(n) {
                Some(next) if next <= bound => next,
                _ => {
                    return Err(OverRelease {
                        released: n,
                        value: current,
                        bound,
                    })
                }
            };
            match self.permits.compare_exchange_weak(
                current,
                next,
                Ordering::Release,
                Ordering::Relaxed,
            ) {
                Ok(_) => break,
                Err(now) => current = now,
            }
        }
        // Pairs with the fence in `waiting`: either this load sees the waiter's
        // increment, or the waiter's next look at `permits` sees ours. Without the two
        // fences both could read stale values and the wake-up be lost (store buffering).
        fence(Ordering::SeqCst);
        if n > 0 && self.waiters.load(Ordering::Relaxed) > 0 {
            if n == 1 {
                W::wake_one(&self.permits);
            } else {
                W::wake_all(&self.permits);
            }
        }
        Ok(())
    }

    #[cold]
    fn acquire_slow(&self, deadline: Option<u64>) -> bool {
        if !spin_while::<W>(Awaiting::Answer, || !self.try_acquire()) {
            return true;
        }
        let _waiting = self.waiting();
        loop {
            // Try before looking at the clock: a waiter that was woken for a permit
            // must take it, or pass the wake on, rather than leave with it unused.
            if self.try_acquire() {
                return true;
            }
            if expired::<W>(deadline) {
                return false;
            }
            W::wait(&self.permits, 0, deadline);
        }
    }

    /// Counts the caller among the waiters until the returned value is dropped.
    fn waiting(&self) -> Waiting<'_, W> {
        self.waiters.fetch_add(1, Ordering::Relaxed);
        // Pairs with the fence in `release_up_to` (see there).
        fence(Ordering::SeqCst);
        Waiting(self)
    }
}

/// One acquirer counted in `waiters`; a future dropped while pending is uncounted too.
struct Waiting<'a, W>(&'a Semaphore<W>);

impl<W> Drop for Waiting<'_, W> {
    fn drop(&mut self) {
        self.0.waiters.fetch_sub(1, Ordering::Relaxed);
    }
}

/// The timed forms, for a backend with a clock ([`Timed`]).
impl<W: Timed> Semaphore<W> {
    /// Takes a permit, waiting at most `timeout` for one. Returns whether it did.
    pub fn acquire_timeout(&self, timeout: Duration) -> bool {
        self.try_acquire() || self.acquire_slow(Some(deadline_after::<W>(timeout)))
    }
}

#[cfg(feature = "embassy")]
impl<W: crate::WakeTasks> Semaphore<W> {
    /// The async form of [`acquire`](Self::acquire), for tasks of one executor.
    /// Dropping the future before it completes takes no permit and loses no wake-up.
    /// For a timeout, race it against a timer (`embassy_time::with_timeout`).
    pub async fn acquire_async(&self) {
        if self.try_acquire() {
            return;
        }
        let _waiting = self.waiting();
        core::future::poll_fn(|cx| {
            // Register first: a release after the try below then wakes us.
            W::register(&self.permits, cx.waker());
            if self.try_acquire() {
                core::task::Poll::Ready(())
            } else {
                core::task::Poll::Pending
            }
        })
        .await
    }
}

impl<W> Default for Semaphore<W> {
    /// A semaphore with one permit, as Python's `Semaphore()`.
    fn default() -> Self {
        Self::new(1)
    }
}

impl<W> fmt::Debug for Semaphore<W> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Semaphore")
            .field("value", &self.value())
            .finish()
    }
}

/// A semaphore that refuses to be released above its initial value, as Python's
/// `BoundedSemaphore`: an extra release is a bug, reported as [`OverRelease`].
///
/// 12 bytes, `#[repr(C)]`, atomics only.
///
/// # Example
///
/// ```
/// use shmsync_core::spin::BoundedSemaphore;
///
/// let sem: BoundedSemaphore = BoundedSemaphore::new(2);
/// sem.acquire();
/// sem.release().unwrap();
/// let err = sem.release().unwrap_err(); // already back at 2
/// assert_eq!(sem.value(), 2);
/// println!("{err}");
/// ```
#[repr(C)]
pub struct BoundedSemaphore<W> {
    semaphore: Semaphore<W>,
    bound: AtomicU32,
}

impl<W> BoundedSemaphore<W> {
    const_fn! {
        /// A semaphore holding `permits` permits, which is also its upper bound.
        pub fn new(permits: u32) -> Self {
            BoundedSemaphore { semaphore: Semaphore::new(permits), bound: AtomicU32::new(permits) }
        }
    }

    /// The number of free permits right now (Python's `get_value()`).
    pub fn value(&self) -> u32 {
        self.semaphore.value()
    }

    /// Python's name for [`value`](Self::value).
    pub fn get_value(&self) -> u32 {
        self.value()
    }

    /// The most permits it may hold: its initial value.
    pub fn bound(&self) -> u32 {
        self.bound.load(Ordering::Relaxed)
    }

    /// How many acquirers have said they are waiting: see
    /// [`Semaphore::waiters_announced`].
    pub fn waiters_announced(&self) -> u32 {
        self.semaphore.waiters_announced()
    }
}

#[cfg(feature = "embassy")]
impl<W: crate::WakeTasks> BoundedSemaphore<W> {
    /// The async form of [`acquire`](Self::acquire); see
    /// [`Semaphore::acquire_async`].
    pub async fn acquire_async(&self) {
        self.semaphore.acquire_async().await
    }
}

impl<W: Wait> BoundedSemaphore<W> {
    /// Takes a permit, blocking while there is none.
    pub fn acquire(&self) {
        self.semaphore.acquire()
    }

    /// Takes a permit if one is free right now.
    pub fn try_acquire(&self) -> bool {
        self.semaphore.try_acquire()
    }

    /// Returns one permit; an error, and no change, if that would pass the bound.
    pub fn release(&self) -> Result<(), OverRelease> {
        self.release_n(1)
    }

    /// Returns `n` permits; an error, and no change, if that would pass the bound.
    pub fn release_n(&self, n: u32) -> Result<(), OverRelease> {
        self.semaphore.release_up_to(n, self.bound())
    }
}

/// The timed forms, for a backend with a clock ([`Timed`]).
impl<W: Timed> BoundedSemaphore<W> {
    /// Takes a permit, waiting at most `timeout`. Returns whether it did.
    pub fn acquire_timeout(&self, timeout: Duration) -> bool {
        self.semaphore.acquire_timeout(timeout)
    }
}

impl<W> fmt::Debug for BoundedSemaphore<W> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("BoundedSemaphore")
            .field("value", &self.value())
            .field("bound", &self.bound())
            .finish()
    }
}
