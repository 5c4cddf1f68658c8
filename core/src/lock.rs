//! A mutual-exclusion lock in one 32-bit word, which survives the death of its owner.
//!
//! ```
//! use shmsync_core::{Lock, Value};
//!
//! static LOCK: Lock = Lock::new();
//! static TOTAL: Value<u64> = Value::new(0);
//!
//! {
//!     let _guard = LOCK.lock().unwrap();
//!     TOTAL.set(TOTAL.get() + 1); // a two-step update, safe under the lock
//! } // released here
//! assert_eq!(TOTAL.get(), 1);
//! ```

use core::fmt;
use core::marker::PhantomData;
use core::time::Duration;

use crate::error::{LockError, NotHeld};
use crate::spin::Spin;
use crate::sync::{const_fn, AtomicU32, Ordering};
use crate::wait::{deadline_after, expired, Wait};

// The word, after Linux's robust futex: owner id, owner-died mark and waiters bit.

/// Some thread sleeps (or is about to) in `Wait::wait` on the word: unlock must wake one.
const WAITERS: u32 = 1 << 31;
/// The lock is held.
const LOCKED: u32 = 1 << 30;
/// The holder took the lock from an owner that died holding it, and has not yet said
/// the protected data is consistent again.
const OWNER_DIED: u32 = 1 << 29;
/// The id of the holder, from [`Wait::owner_id`] (0: not recorded). A Linux thread id
/// fits: `pid_max` is at most 2^22.
const OWNER_MASK: u32 = (1 << 29) - 1;
/// A lock whose inconsistent data nobody repaired: it can never be taken again. The
/// owner field holds an id no thread has.
const NOT_RECOVERABLE: u32 = LOCKED | OWNER_DIED | OWNER_MASK;

/// How often a sleeping locker checks that the recorded owner is still alive: the
/// bound on how late an owner's death is noticed, and the only cost of noticing it
/// (one check per interval of waiting; none on the uncontended path).
const OWNER_CHECK_INTERVAL_NS: u64 = if cfg!(loom) { 1 } else { 20_000_000 };

/// A lock in the manner of Python's `threading.Lock` / `multiprocessing.Lock`, with
/// Rust's RAII guards, that survives the death of its owner.
///
/// 4 bytes, `#[repr(C)]`, no pointers: it can live in a `static` or in memory shared
/// between processes mapped at different addresses. `W` is how a blocked locker waits
/// (see [`Wait`]).
///
/// Like Python's lock and unlike `std::sync::Mutex`, it does not own the data it
/// protects: the data lives in atomics ([`Value`](crate::Value), [`Array`](crate::Array))
/// that are sound to touch without it, and the lock makes multi-step updates atomic.
///
/// # When the owner dies
///
/// Where the backend records owners ([`Wait::owner_id`]; the hosted crate's futex
/// records Linux thread ids), a locker that waits on a lock whose owner died (a
/// process killed, a thread that exited holding it) notices within a few tens of
/// milliseconds and takes the lock, as glibc's robust mutexes do:
///
/// - the lock call returns [`LockError::OwnerDied`] holding the guard (`EOWNERDEAD`):
///   the protected data may be half-updated. Check or repair it, then call
///   [`LockGuard::mark_consistent`];
/// - if that guard is dropped without `mark_consistent`, the lock becomes unusable and
///   every later lock call returns [`LockError::NotRecoverable`] (`ENOTRECOVERABLE`), so
///   that nobody goes on with data that may be corrupt.
///
/// # Example
///
/// ```
/// use shmsync_core::{Lock, LockError};
/// use core::time::Duration;
///
/// let lock: Lock = Lock::new();
/// let guard = lock.lock().unwrap();
/// assert!(matches!(lock.try_lock(), Err(LockError::WouldBlock)));
/// drop(guard);
/// assert!(lock.lock_timeout(Duration::from_millis(10)).is_ok());
///
/// // Python's names, without a guard:
/// lock.acquire().unwrap();
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
/// let guard: LockGuard<'_> = lock.lock().unwrap();
/// assert!(lock.is_locked());
/// drop(guard);
/// assert!(!lock.is_locked());
/// ```
#[must_use = "the lock is released as soon as the guard is dropped"]
pub struct LockGuard<'a, W: Wait = Spin> {
    lock: &'a Lock<W>,
    // Not `Send`: the lock records the thread that took it.
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
    /// A lock that is [not recoverable](LockError::NotRecoverable) counts as held.
    #[doc(alias = "locked")]
    pub fn is_locked(&self) -> bool {
        self.word.load(Ordering::Relaxed) & LOCKED != 0
    }
}

impl<W: Wait> Lock<W> {
    /// Blocks until the lock is free, takes it, and returns a guard that releases it.
    ///
    /// Fails only when an owner died holding it: with [`LockError::OwnerDied`] (the lock
    /// is yours; see [the type's docs](Lock#when-the-owner-dies)) or
    /// [`LockError::NotRecoverable`].
    pub fn lock(&self) -> Result<LockGuard<'_, W>, LockError<LockGuard<'_, W>>> {
        self.guarded(self.take(None))
    }

    /// Takes the lock if it is free right now; [`LockError::WouldBlock`] if not. It
    /// does not wait, so it does not look for a dead owner either: the blocking and
    /// timed forms do.
    pub fn try_lock(&self) -> Result<LockGuard<'_, W>, LockError<LockGuard<'_, W>>> {
        self.guarded(self.take_now())
    }

    /// Like [`lock`](Self::lock), but gives up with [`LockError::WouldBlock`] after
    /// `timeout`.
    pub fn lock_timeout(
        &self,
        timeout: Duration,
    ) -> Result<LockGuard<'_, W>, LockError<LockGuard<'_, W>>> {
        self.guarded(self.take(Some(deadline_after::<W>(timeout))))
    }

    /// Python's `acquire()`: blocks until the lock is taken. Pair it with
    /// [`release`](Self::release); prefer [`lock`](Self::lock), whose guard cannot be
    /// forgotten. After [`LockError::OwnerDied`] the lock is held: repair the data, call
    /// [`mark_consistent`](Self::mark_consistent), then release.
    pub fn acquire(&self) -> Result<(), LockError> {
        self.take(None)
    }

    /// Python's `acquire(blocking=False)`.
    pub fn try_acquire(&self) -> Result<(), LockError> {
        self.take_now()
    }

    /// Python's `acquire(timeout=...)`.
    pub fn acquire_timeout(&self, timeout: Duration) -> Result<(), LockError> {
        self.take(Some(deadline_after::<W>(timeout)))
    }

    /// Python's `release()`. Any thread or process may release a held lock, as in
    /// Python; releasing a lock that nobody holds is an error and changes nothing.
    ///
    /// Releasing a lock taken with [`LockError::OwnerDied`] before
    /// [`mark_consistent`](Self::mark_consistent) makes it not recoverable.
    pub fn release(&self) -> Result<(), NotHeld> {
        let current = self.word.load(Ordering::Relaxed);
        if current & OWNER_DIED != 0 {
            return self.abandon(current);
        }
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

    /// Says that the data a lock taken with [`LockError::OwnerDied`] protects is
    /// consistent again (`pthread_mutex_consistent`). Does nothing otherwise.
    pub fn mark_consistent(&self) {
        let mut current = self.word.load(Ordering::Relaxed);
        while current & OWNER_DIED != 0 && current != NOT_RECOVERABLE {
            match self.word.compare_exchange_weak(
                current,
                current & !OWNER_DIED,
                Ordering::Relaxed,
                Ordering::Relaxed,
            ) {
                Ok(_) => return,
                Err(now) => current = now,
            }
        }
    }

    /// Releases a lock whose data was never marked consistent: it stays held forever
    /// and every waiter is told so.
    #[cold]
    fn abandon(&self, mut current: u32) -> Result<(), NotHeld> {
        loop {
            if current == NOT_RECOVERABLE || current & LOCKED == 0 {
                return Err(NotHeld);
            }
            match self.word.compare_exchange_weak(
                current,
                NOT_RECOVERABLE,
                Ordering::Release,
                Ordering::Relaxed,
            ) {
                Ok(_) => break,
                Err(now) => current = now,
            }
        }
        W::wake_all(&self.word);
        Ok(())
    }

    /// The outcome of taking the lock, with a guard wherever the lock is now held.
    fn guarded(
        &self,
        taken: Result<(), LockError>,
    ) -> Result<LockGuard<'_, W>, LockError<LockGuard<'_, W>>> {
        let guard = |()| LockGuard {
            lock: self,
            _not_send: PhantomData,
        };
        taken.map(guard).map_err(|error| error.map(guard))
    }

    /// The uncontended path: one compare-and-swap from free to held by `me`. On
    /// failure, the word as it was.
    #[inline]
    fn take_free(&self, me: u32) -> Result<u32, u32> {
        self.word
            .compare_exchange(0, LOCKED | me, Ordering::Acquire, Ordering::Relaxed)
    }

    /// Takes the lock if it is free, without waiting.
    fn take_now(&self) -> Result<(), LockError> {
        match self.take_free(W::owner_id() & OWNER_MASK) {
            Ok(_) => Ok(()),
            Err(NOT_RECOVERABLE) => Err(LockError::NotRecoverable),
            Err(_) => Err(LockError::WouldBlock),
        }
    }

    /// Takes the lock, waiting until `deadline` (`None`: for ever).
    #[inline]
    fn take(&self, deadline: Option<u64>) -> Result<(), LockError> {
        let me = W::owner_id() & OWNER_MASK;
        match self.take_free(me) {
            Ok(_) => Ok(()),
            Err(_) => self.take_slow(me, deadline),
        }
    }

    #[cold]
    fn take_slow(&self, me: u32, deadline: Option<u64>) -> Result<(), LockError> {
        // No spin before sleeping, unlike the Event and the Semaphore: a waiter that
        // spins on the word slows the holder (each look steals its cache line), and
        // under contention the holder re-takes a free lock at once anyway. Measured on
        // 2 processes: a 1 µs spin halved the throughput of a contended counter.
        //
        // Once this thread has slept, others may be asleep too, unseen: it must take the
        // lock with WAITERS set so that its own release wakes the next one.
        let mut slept = false;
        let mut next_owner_check = None;
        // The owner last seen alive, and which incarnation of that id it was.
        let mut watched: Option<(u32, u64)> = None;
        loop {
            let current = match self.take_or_mark(me, slept) {
                Step::Taken => return Ok(()),
                Step::NotRecoverable => return Err(LockError::NotRecoverable),
                Step::Wait(current) => current,
            };
            let owner = current & OWNER_MASK;
            if owner != 0 && next_owner_check.is_some_and(|at| W::now() >= at) {
                next_owner_check = None;
                if owner_is_dead::<W>(owner, &mut watched) {
                    // Take it over, still marked WAITERS: others may sleep on it.
                    let taken = LOCKED | OWNER_DIED | me | WAITERS;
                    if self
                        .word
                        .compare_exchange(current, taken, Ordering::Acquire, Ordering::Relaxed)
                        .is_ok()
                    {
                        return Err(LockError::OwnerDied(()));
                    }
                    continue;
                }
            }
            // WAITERS is set on the held lock, so its release wakes a sleeper: leaving now
            // cannot strand one, even if the wake we may have consumed was meant for it.
            if expired::<W>(deadline) {
                return Err(LockError::WouldBlock);
            }
            // With a recorded owner, sleep in slices, to look at the owner between them.
            let slice = if owner == 0 {
                deadline
            } else {
                let at = *next_owner_check
                    .get_or_insert_with(|| W::now().saturating_add(OWNER_CHECK_INTERVAL_NS));
                Some(deadline.map_or(at, |d| d.min(at)))
            };
            W::wait(&self.word, current, slice);
            slept = true;
        }
    }

    /// Takes the lock if it is free; else makes sure its release will wake a waiter.
    /// `keep_waiters`: take it with WAITERS set, for a locker that has waited and so
    /// may not be the only one.
    fn take_or_mark(&self, me: u32, keep_waiters: bool) -> Step {
        loop {
            let current = self.word.load(Ordering::Relaxed);
            if current == NOT_RECOVERABLE {
                return Step::NotRecoverable;
            }
            if current & LOCKED == 0 {
                let taken = current | LOCKED | me | if keep_waiters { WAITERS } else { 0 };
                if self
                    .word
                    .compare_exchange(current, taken, Ordering::Acquire, Ordering::Relaxed)
                    .is_ok()
                {
                    return Step::Taken;
                }
            } else if current & WAITERS != 0 {
                return Step::Wait(current);
            } else if self
                .word
                .compare_exchange(
                    current,
                    current | WAITERS,
                    Ordering::Relaxed,
                    Ordering::Relaxed,
                )
                .is_ok()
            {
                return Step::Wait(current | WAITERS);
            }
        }
    }
}

/// What one look at the word led to.
enum Step {
    /// The lock was free and is now ours.
    Taken,
    /// It never will be.
    NotRecoverable,
    /// It is held, marked WAITERS, so that its release wakes a waiter: wait while the
    /// word holds this value.
    Wait(u32),
}

#[cfg(feature = "embassy")]
impl<W: crate::WakeTasks> Lock<W> {
    /// The async form of [`lock`](Self::lock), for tasks of one executor: it waits by
    /// yielding to the executor, woken by the release. Dropping the future before it
    /// completes gives up cleanly (a wake meant for it reaches the other waiters).
    ///
    /// Owners are not recorded by task backends, so a dead owner is not looked for.
    /// For a timeout, race it against a timer (`embassy_time::with_timeout`).
    pub async fn lock_async(&self) -> Result<LockGuard<'_, W>, LockError<LockGuard<'_, W>>> {
        let me = W::owner_id() & OWNER_MASK;
        let taken = core::future::poll_fn(|cx| {
            // Register first: a release after the look below then wakes us.
            W::register(&self.word, cx.waker());
            match self.take_or_mark(me, true) {
                Step::Taken => core::task::Poll::Ready(Ok(())),
                Step::NotRecoverable => core::task::Poll::Ready(Err(LockError::NotRecoverable)),
                Step::Wait(_) => core::task::Poll::Pending,
            }
        });
        self.guarded(taken.await)
    }
}

/// Whether `owner` has died, or its id now names another thread than the one last
/// seen (`watched`), which means the same.
fn owner_is_dead<W: Wait>(owner: u32, watched: &mut Option<(u32, u64)>) -> bool {
    match (W::owner_incarnation(owner), *watched) {
        (None, _) => true,
        (Some(now), Some((id, then))) if id == owner && now != then => true,
        (Some(now), _) => {
            *watched = Some((owner, now));
            false
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

impl<W: Wait> LockGuard<'_, W> {
    /// Says that the protected data is consistent again after
    /// [`LockError::OwnerDied`]; without it, dropping this guard makes the lock not
    /// recoverable.
    pub fn mark_consistent(&self) {
        self.lock.mark_consistent();
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
