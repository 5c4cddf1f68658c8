//! A mutual-exclusion lock in one 32-bit word.
//!
//! ```
//! use shmsync_core::{Lock, Value};
//!
//! static LOCK: Lock = Lock::new();
//! static TOTAL: Value<u64> = Value::new(0);
//!
//! {
//!     let _guard = LOCK.lock();
//!     TOTAL.set(TOTAL.get() + 1); // a two-step update, safe under the lock
//! } // released here
//! assert_eq!(TOTAL.get(), 1);
//! ```

use core::fmt;
use core::marker::PhantomData;
use core::time::Duration;

use crate::error::NotHeld;
use crate::spin::Spin;
use crate::sync::{const_fn, spin_loop, AtomicU32, Ordering};
use crate::wait::{deadline_after, expired, Wait};

/// Some thread sleeps (or is about to) in `Wait::wait` on the word: unlock must wake one.
pub(crate) const WAITERS: u32 = 1 << 31;
/// The lock is held.
pub(crate) const LOCKED: u32 = 1 << 30;
/// Bit 29 is reserved for an "owner died" mark and bits 0..=28 for the owner's id (a
/// Linux thread id fits: `pid_max` is at most 2^22), after the robust-futex word.
#[allow(dead_code)]
pub(crate) const OWNER_MASK: u32 = (1 << 29) - 1;

/// Rounds of spinning on a held lock before a locker marks itself waiting and sleeps.
/// A short critical section usually ends within them, which saves both sides a system
/// call; the bound keeps a long wait from costing CPU.
const SPIN_ROUNDS: u32 = if cfg!(loom) { 1 } else { 100 };

/// A lock in the manner of Python's `threading.Lock` / `multiprocessing.Lock`, with
/// Rust's RAII guards.
///
/// 4 bytes, `#[repr(C)]`, no pointers: it can live in a `static` or in memory shared
/// between processes mapped at different addresses. `W` is how a blocked locker waits
/// (see [`Wait`]).
///
/// Like Python's lock and unlike `std::sync::Mutex`, it does not own the data it
/// protects: the data lives in atomics ([`Value`](crate::Value), [`Array`](crate::Array))
/// that are sound to touch without it, and the lock makes multi-step updates atomic.
///
/// # Example
///
/// ```
/// use shmsync_core::Lock;
/// use core::time::Duration;
///
/// let lock: Lock = Lock::new();
/// let guard = lock.lock();
/// assert!(lock.try_lock().is_none());
/// drop(guard);
/// assert!(lock.lock_timeout(Duration::from_millis(10)).is_some());
///
/// // Python's names, without a guard:
/// assert!(lock.acquire_timeout(Duration::ZERO));
/// lock.release().unwrap();
/// assert!(lock.release().is_err()); // releasing an unheld lock is an error
/// ```
#[repr(C)]
pub struct Lock<W = Spin> {
    word: AtomicU32,
    _wait: PhantomData<fn() -> W>,
}

/// Holds a [`Lock`] until dropped.
///
/// # Example
///
/// ```
/// use shmsync_core::{Lock, LockGuard};
///
/// let lock: Lock = Lock::new();
/// let guard: LockGuard<'_> = lock.lock();
/// assert!(lock.is_locked());
/// drop(guard);
/// assert!(!lock.is_locked());
/// ```
#[must_use = "the lock is released as soon as the guard is dropped"]
pub struct LockGuard<'a, W: Wait = Spin> {
    lock: &'a Lock<W>,
    // Not `Send`: a later owner-tracking lock records the thread that took it.
    _not_send: PhantomData<*const ()>,
}

impl<W> Lock<W> {
    const_fn! {
        /// An unlocked lock.
        pub fn new() -> Self {
            Lock { word: AtomicU32::new(0), _wait: PhantomData }
        }
    }

    /// Whether some thread or process holds the lock right now (Python's `locked()`).
    #[doc(alias = "locked")]
    pub fn is_locked(&self) -> bool {
        self.word.load(Ordering::Relaxed) & LOCKED != 0
    }
}

impl<W: Wait> Lock<W> {
    /// Blocks until the lock is free, takes it, and returns a guard that releases it.
    pub fn lock(&self) -> LockGuard<'_, W> {
        self.acquire();
        self.guard()
    }

    /// Takes the lock if it is free right now.
    pub fn try_lock(&self) -> Option<LockGuard<'_, W>> {
        self.try_acquire().then(|| self.guard())
    }

    /// Like [`lock`](Self::lock), but gives up after `timeout`.
    pub fn lock_timeout(&self, timeout: Duration) -> Option<LockGuard<'_, W>> {
        self.acquire_timeout(timeout).then(|| self.guard())
    }

    /// Python's `acquire()`: blocks until the lock is taken. Pair it with
    /// [`release`](Self::release); prefer [`lock`](Self::lock), whose guard cannot be
    /// forgotten.
    pub fn acquire(&self) {
        if !self.try_acquire() {
            self.acquire_slow(None);
        }
    }

    /// Python's `acquire(blocking=False)`.
    pub fn try_acquire(&self) -> bool {
        self.word
            .compare_exchange(0, LOCKED, Ordering::Acquire, Ordering::Relaxed)
            .is_ok()
    }

    /// Python's `acquire(timeout=...)`: whether the lock was taken within `timeout`.
    pub fn acquire_timeout(&self, timeout: Duration) -> bool {
        self.try_acquire() || self.acquire_slow(Some(deadline_after::<W>(timeout)))
    }

    /// Python's `release()`. Any thread or process may release a held lock, as in
    /// Python; releasing a lock that nobody holds is an error and changes nothing.
    pub fn release(&self) -> Result<(), NotHeld> {
        // An unheld lock's word is 0, so swapping in 0 leaves it as it was.
        let previous = self.word.swap(0, Ordering::Release);
        if previous & LOCKED == 0 {
            return Err(NotHeld);
        }
        if previous & WAITERS != 0 {
            W::wake_one(&self.word);
        }
        Ok(())
    }

    fn guard(&self) -> LockGuard<'_, W> {
        LockGuard {
            lock: self,
            _not_send: PhantomData,
        }
    }

    #[cold]
    fn acquire_slow(&self, deadline: Option<u64>) -> bool {
        let mut spins = SPIN_ROUNDS;
        // Once this thread has slept, others may be asleep too, unseen: it must take the
        // lock with WAITERS set so that its own release wakes the next one.
        let mut slept = false;
        loop {
            let current = self.word.load(Ordering::Relaxed);
            if current & LOCKED == 0 {
                let taken = current | LOCKED | if slept { WAITERS } else { 0 };
                if self
                    .word
                    .compare_exchange(current, taken, Ordering::Acquire, Ordering::Relaxed)
                    .is_ok()
                {
                    return true;
                }
                continue;
            }
            if spins > 0 && current & WAITERS == 0 {
                spins -= 1;
                spin_loop();
                continue;
            }
            if current & WAITERS == 0
                && self
                    .word
                    .compare_exchange(
                        current,
                        current | WAITERS,
                        Ordering::Relaxed,
                        Ordering::Relaxed,
                    )
                    .is_err()
            {
                continue;
            }
            // WAITERS is set on the held lock, so its release wakes a sleeper: leaving now
            // cannot strand one, even if the wake we may have consumed was meant for it.
            if expired::<W>(deadline) {
                return false;
            }
            W::wait(&self.word, current | WAITERS, deadline);
            slept = true;
        }
    }
}

impl<W> Default for Lock<W> {
    fn default() -> Self {
        Self::new()
    }
}

impl<W> fmt::Debug for Lock<W> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Lock")
            .field("locked", &self.is_locked())
            .finish()
    }
}

impl<W: Wait> Drop for LockGuard<'_, W> {
    fn drop(&mut self) {
        // It fails only if the lock was released behind the guard's back with
        // `Lock::release`; there is nothing left to undo then.
        let _ = self.lock.release();
    }
}

impl<W: Wait> fmt::Debug for LockGuard<'_, W> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("LockGuard").finish_non_exhaustive()
    }
}
