//! A re-entrant lock, as Python's `threading.RLock` / `multiprocessing.RLock`, which
//! survives the death of its owner as [`Lock`] does.
//!
//! ```
//! # use shmsync_core::{AtomicU32, DistinctIds, Owner, Spin};
//! # struct OneThread;
//! # impl Owner for OneThread {
//! #     const NAME: &'static str = "OneThread";
//! #     type Record = (); const UNHELD: () = (); type Hold = (); type GuardMarker = *const ();
//! #     const RECHECK_NS: Option<u64> = None;
//! #     fn id() -> u32 { 1 }
//! #     fn attempt(_: &AtomicU32, _: &()) {} fn taken(_: &AtomicU32, _: &()) {}
//! #     fn missed(_: &AtomicU32, _: &()) {}
//! #     fn holding(_: &AtomicU32, _: &()) -> Option<()> { Some(()) }
//! #     fn releasing(_: &AtomicU32, _: ()) {} fn released(_: ()) {}
//! #     fn forget(_: &AtomicU32, _: &(), _: bool) {}
//! # }
//! # impl DistinctIds for OneThread {}
//! # type RLock = shmsync_core::RLock<Spin, OneThread>;
//! // With the hosted crate: `use shmsync::RLock;`
//! static LOCK: RLock = RLock::new();
//!
//! fn transfer() {
//!     let _held = LOCK.lock().unwrap();
//!     audit(); // takes the lock again: fine, the caller holds it
//! }
//! fn audit() {
//!     let _held = LOCK.lock().unwrap();
//! }
//! transfer();
//! assert!(!LOCK.is_locked());
//! ```

use core::fmt;
use core::marker::PhantomData;
use core::time::Duration;

use crate::error::{LockError, NotHeld, TryLockError};
use crate::lock::{Lock, Taken};
use crate::owner::DistinctIds;
use crate::sync::{const_fn, AtomicU32, Ordering};
use crate::wait::{deadline_after, Timed, Wait};

/// A lock that the thread holding it may take again, as Python's `RLock`: each
/// [`lock`](Self::lock) (or [`acquire`](Self::acquire)) by the holder goes in at once and
/// must be matched by one release; the lock is free again after the last.
///
/// `#[repr(C)]`: a [`Lock`] (the holder's id, in the word the kernel marks at its
/// death), then the depth of the holder's recursion and a number that tells its holds
/// apart. Only the holder writes the last two. With the hosted crate it is 48 bytes.
///
/// It needs an owner backend that tells threads apart ([`DistinctIds`]): the hosted
/// crate's `Robust`, or one of a firmware's own (see there). Over
/// [`Unowned`](crate::Unowned), which cannot, it would let everyone in, so it does not
/// compile:
///
/// ```compile_fail,E0277
/// use shmsync_core::{RLock, Spin, Unowned};
/// let lock: RLock<Spin, Unowned> = RLock::new();
/// ```
///
/// # When the owner dies
///
/// As with [`Lock`](crate::Lock#when-the-owner-dies): whatever its depth, a holder that
/// dies holding the lock leaves it to the next locker with [`LockError::OwnerDied`] (at
/// depth 1); if that holder releases it without marking it consistent, it is
/// [not recoverable](LockError::NotRecoverable). The holder told `OwnerDied` that takes
/// it again before marking it gets it without the error, as with glibc's robust
/// recursive mutexes: it knows already.
///
/// # Guards and Python's names
///
/// Each guard releases one level when dropped, and only from the hold it was given: after
/// the lock was released behind its back with [`release`](Self::release) (and perhaps
/// taken again since), a guard releases nothing.
///
/// # Example
///
/// ```
/// # use shmsync_core::{AtomicU32, DistinctIds, Owner, Spin};
/// # struct OneThread;
/// # impl Owner for OneThread {
/// #     const NAME: &'static str = "OneThread";
/// #     type Record = (); const UNHELD: () = (); type Hold = (); type GuardMarker = *const ();
/// #     const RECHECK_NS: Option<u64> = None;
/// #     fn id() -> u32 { 1 }
/// #     fn attempt(_: &AtomicU32, _: &()) {} fn taken(_: &AtomicU32, _: &()) {}
/// #     fn missed(_: &AtomicU32, _: &()) {}
/// #     fn holding(_: &AtomicU32, _: &()) -> Option<()> { Some(()) }
/// #     fn releasing(_: &AtomicU32, _: ()) {} fn released(_: ()) {}
/// #     fn forget(_: &AtomicU32, _: &(), _: bool) {}
/// # }
/// # impl DistinctIds for OneThread {}
/// # type RLock = shmsync_core::RLock<Spin, OneThread>;
/// // With the hosted crate: `use shmsync::RLock;`
/// let lock = RLock::new();
/// lock.acquire().unwrap(); // Python's names
/// lock.acquire().unwrap();
/// assert_eq!(lock.recursion_count(), 2);
/// lock.release().unwrap();
/// assert!(lock.is_locked());
/// lock.release().unwrap();
/// assert!(!lock.is_locked());
/// assert!(lock.release().is_err()); // one release too many
/// ```
#[repr(C)]
pub struct RLock<W, O: DistinctIds> {
    lock: Lock<W, O>,
    /// How many times the holder has taken it (1 or more while it is held).
    depth: AtomicU32,
    /// Changes with each first taking, so that a guard tells its hold from a later one.
    hold: AtomicU32,
}

/// Holds one level of an [`RLock`] until dropped.
///
/// # Example
///
/// ```
/// # use shmsync_core::{AtomicU32, DistinctIds, Owner, Spin};
/// # struct OneThread;
/// # impl Owner for OneThread {
/// #     const NAME: &'static str = "OneThread";
/// #     type Record = (); const UNHELD: () = (); type Hold = (); type GuardMarker = *const ();
/// #     const RECHECK_NS: Option<u64> = None;
/// #     fn id() -> u32 { 1 }
/// #     fn attempt(_: &AtomicU32, _: &()) {} fn taken(_: &AtomicU32, _: &()) {}
/// #     fn missed(_: &AtomicU32, _: &()) {}
/// #     fn holding(_: &AtomicU32, _: &()) -> Option<()> { Some(()) }
/// #     fn releasing(_: &AtomicU32, _: ()) {} fn released(_: ()) {}
/// #     fn forget(_: &AtomicU32, _: &(), _: bool) {}
/// # }
/// # impl DistinctIds for OneThread {}
/// # type RLock = shmsync_core::RLock<Spin, OneThread>;
/// let lock = RLock::new();
/// let outer = lock.lock().unwrap();
/// let inner = lock.lock().unwrap();
/// drop(inner);
/// assert!(lock.is_locked());
/// drop(outer);
/// assert!(!lock.is_locked());
/// ```
#[must_use = "one level of the lock is released as soon as the guard is dropped"]
pub struct RLockGuard<'a, W: Wait, O: DistinctIds> {
    rlock: &'a RLock<W, O>,
    /// The hold this guard belongs to (see `RLock::hold`).
    hold: u32,
    _owner: PhantomData<O::GuardMarker>,
}

/// What an [`RLock`] lock call returns: the guard, or why the lock was not simply taken.
pub type RLockResult<'a, W, O> = Result<RLockGuard<'a, W, O>, LockError<RLockGuard<'a, W, O>>>;

/// What an [`RLock`] call that may give up returns (`try_lock`, `lock_timeout`): the
/// guard, or why the lock was not simply taken.
pub type RLockTryResult<'a, W, O> =
    Result<RLockGuard<'a, W, O>, TryLockError<RLockGuard<'a, W, O>>>;

/// A level entered: the hold it belongs to, or why not (with the hold, for
/// `OwnerDied`).
type Entered = Result<u32, LockError<u32>>;

/// What a thread gives up when a [`Condition`](crate::Condition) wait releases the lock
/// at every level, and takes back after.
pub struct Recursion {
    depth: u32,
    hold: u32,
}

impl<W, O: DistinctIds> RLock<W, O> {
    const_fn! {
        /// An unlocked lock.
        pub fn new() -> Self {
            RLock { lock: Lock::new(), depth: AtomicU32::new(0), hold: AtomicU32::new(0) }
        }
    }

    /// Whether some thread or process holds it right now. A lock that is
    /// [not recoverable](LockError::NotRecoverable) counts as held.
    #[doc(alias = "locked")]
    pub fn is_locked(&self) -> bool {
        self.lock.is_locked()
    }

    /// Whether a holder died holding it and nobody has marked the data consistent since
    /// (see [`Lock::holder_died`]).
    pub fn holder_died(&self) -> bool {
        self.lock.holder_died()
    }

    /// What its lock's word says right now (see [`Lock::state`]), and how many levels
    /// its holder holds as stored (0 when free): for diagnostics.
    pub fn state(&self) -> (crate::lock::LockState, u32) {
        (self.lock.state(), self.depth.load(Ordering::Relaxed))
    }

    /// Whether some locker has said it sleeps waiting (see
    /// [`Lock::sleepers_announced`]).
    pub fn sleepers_announced(&self) -> bool {
        self.lock.sleepers_announced()
    }
}

impl<W: Wait, O: DistinctIds> RLock<W, O> {
    /// Takes the lock, at once if the calling thread holds it already, else blocking
    /// until it is free; returns a guard that releases one level.
    ///
    /// Fails only when an owner died holding it: with [`LockError::OwnerDied`] (the lock
    /// is yours, at depth 1; see [the type's docs](RLock#when-the-owner-dies)) or
    /// [`LockError::NotRecoverable`].
    pub fn lock(&self) -> RLockResult<'_, W, O> {
        self.guarded(self.enter(Lock::take_blocking))
    }

    /// Takes the lock if the calling thread holds it or it is free right now;
    /// [`TryLockError::WouldBlock`] if another holds it.
    pub fn try_lock(&self) -> RLockTryResult<'_, W, O> {
        self.try_guarded(self.try_enter(Lock::take_now))
    }

    /// Python's `acquire()`. Pair each with one [`release`](Self::release) on the same
    /// thread; prefer [`lock`](Self::lock), whose guard cannot be forgotten.
    pub fn acquire(&self) -> Result<(), LockError> {
        self.enter(Lock::take_blocking)
            .map(drop)
            .map_err(|e| e.map(drop))
    }

    /// Python's `acquire(blocking=False)`.
    pub fn try_acquire(&self) -> Result<(), TryLockError> {
        without_guard(self.try_enter(Lock::take_now))
    }

    /// Python's `release()`: gives up one level. [`NotHeld`] (and no change) if the
    /// calling thread does not hold it. The last release of a lock taken with
    /// [`LockError::OwnerDied`] and not [marked consistent](Self::mark_consistent)
    /// makes it not recoverable.
    pub fn release(&self) -> Result<(), NotHeld> {
        if !self.lock.is_mine() {
            return Err(NotHeld);
        }
        self.leave();
        Ok(())
    }

    /// Says that the data a lock taken with [`LockError::OwnerDied`] protects is
    /// consistent again. [`NotHeld`] if the calling thread does not hold it.
    pub fn mark_consistent(&self) -> Result<(), NotHeld> {
        self.lock.mark_consistent()
    }

    /// Whether the calling thread holds the lock (parking_lot's name; Python's
    /// `_is_owned()`).
    pub fn is_owned_by_current_thread(&self) -> bool {
        self.lock.is_mine()
    }

    /// How many times the calling thread holds the lock: 0 if it does not (Python's
    /// `_recursion_count()`).
    pub fn recursion_count(&self) -> u32 {
        if self.lock.is_mine() {
            self.depth.load(Ordering::Relaxed).max(1)
        } else {
            0
        }
    }

    /// One more level for the calling thread: at once if it holds the lock, else by
    /// `take`. Returns the hold it is a level of.
    pub(crate) fn enter(&self, take: impl FnOnce(&Lock<W, O>) -> Taken<O>) -> Entered {
        match self.reenter() {
            Some(entered) => entered,
            None => self.entered(take(&self.lock)),
        }
    }

    /// As [`enter`](Self::enter), with a `take` that may give up (`None`).
    fn try_enter(&self, take: impl FnOnce(&Lock<W, O>) -> Option<Taken<O>>) -> Option<Entered> {
        match self.reenter() {
            Some(entered) => Some(entered),
            None => take(&self.lock).map(|taken| self.entered(taken)),
        }
    }

    /// One more level, if the calling thread holds the lock already.
    fn reenter(&self) -> Option<Entered> {
        // Only the holder writes `depth` and `hold`, so the holder reads them as it
        // left them; anyone else does not read them at all.
        if !self.lock.is_mine() {
            return None;
        }
        let depth = self.depth.load(Ordering::Relaxed);
        let deeper = depth.checked_add(1).unwrap_or_else(|| {
            panic!("an RLock taken {depth} times by one thread cannot be taken again")
        });
        self.depth.store(deeper, Ordering::Relaxed);
        Some(Ok(self.hold.load(Ordering::Relaxed)))
    }

    /// The first level, once the lock is taken (`taken`), from a dead owner perhaps.
    pub(crate) fn entered(&self, taken: Taken<O>) -> Entered {
        match taken {
            Ok(_) => Ok(self.first_level()),
            Err(LockError::OwnerDied(_)) => Err(LockError::OwnerDied(self.first_level())),
            Err(LockError::NotRecoverable) => Err(LockError::NotRecoverable),
        }
    }

    /// The lock was just taken (from a dead owner, perhaps): depth 1, a new hold.
    fn first_level(&self) -> u32 {
        let hold = self.hold.load(Ordering::Relaxed).wrapping_add(1);
        self.hold.store(hold, Ordering::Relaxed);
        self.depth.store(1, Ordering::Relaxed);
        hold
    }

    /// Gives up one level of the calling thread's hold, which it has.
    fn leave(&self) {
        let depth = self.depth.load(Ordering::Relaxed);
        if depth > 1 {
            self.depth.store(depth - 1, Ordering::Relaxed);
        } else {
            // The last level (or a depth a peer overwrote: the lock goes free rather
            // than stay held by a thread that believes it let go).
            let _ = self.lock.release();
        }
    }

    /// Releases every level of the calling thread's `hold` for a condition's wait, as
    /// [`Lock::release_for_wait`] does; `None` if it is not the current hold.
    pub(crate) fn release_for_wait(&self, hold: u32) -> Option<Recursion> {
        if !self.lock.is_mine() || self.hold.load(Ordering::Relaxed) != hold {
            return None;
        }
        let recursion = Recursion {
            depth: self.depth.load(Ordering::Relaxed).max(1),
            hold,
        };
        let lock_hold = self.lock.current_hold()?;
        self.lock.release_for_wait(lock_hold);
        Some(recursion)
    }

    /// The lock taken back (`taken`) after a condition's wait: at the depth and as the
    /// hold it had (so that the guards of the outer levels still release it).
    pub(crate) fn retake(
        &self,
        taken: Taken<O>,
        recursion: Recursion,
    ) -> Result<u32, LockError<u32>> {
        let restore = |_| {
            self.hold.store(recursion.hold, Ordering::Relaxed);
            self.depth.store(recursion.depth, Ordering::Relaxed);
            recursion.hold
        };
        taken.map(restore).map_err(|error| error.map(restore))
    }

    pub(crate) fn inner(&self) -> &Lock<W, O> {
        &self.lock
    }

    fn guarded(&self, entered: Entered) -> RLockResult<'_, W, O> {
        let guard = |hold| RLockGuard::from_parts(self, hold);
        entered.map(guard).map_err(|error| error.map(guard))
    }

    /// The outcome of an attempt that may give up (`None`), with a guard wherever a
    /// level is now held.
    fn try_guarded(&self, entered: Option<Entered>) -> RLockTryResult<'_, W, O> {
        match entered {
            None => Err(TryLockError::WouldBlock),
            Some(entered) => self.guarded(entered).map_err(TryLockError::from),
        }
    }
}

/// The outcome of an attempt that may give up, for Python's manual `acquire`: the level
/// stays held (also after `OwnerDied`) until `release`.
fn without_guard(entered: Option<Entered>) -> Result<(), TryLockError> {
    match entered {
        None => Err(TryLockError::WouldBlock),
        Some(entered) => entered.map(drop).map_err(|e| e.map(drop).into()),
    }
}

/// The timed forms, for a backend with a clock ([`Timed`]).
impl<W: Timed, O: DistinctIds> RLock<W, O> {
    /// Like [`lock`](Self::lock), but gives up with [`TryLockError::WouldBlock`] after
    /// `timeout`.
    pub fn lock_timeout(&self, timeout: Duration) -> RLockTryResult<'_, W, O> {
        let deadline = Some(deadline_after::<W>(timeout));
        self.try_guarded(self.try_enter(|lock| lock.take(deadline)))
    }

    /// Python's `acquire(timeout=...)`.
    pub fn acquire_timeout(&self, timeout: Duration) -> Result<(), TryLockError> {
        let deadline = Some(deadline_after::<W>(timeout));
        without_guard(self.try_enter(|lock| lock.take(deadline)))
    }
}

impl<W, O: DistinctIds> Default for RLock<W, O> {
    fn default() -> Self {
        Self::new()
    }
}

impl<W, O: DistinctIds> fmt::Debug for RLock<W, O> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RLock")
            .field("locked", &self.is_locked())
            .finish()
    }
}

impl<'a, W: Wait, O: DistinctIds> RLockGuard<'a, W, O> {
    /// Says that the protected data is consistent again after
    /// [`LockError::OwnerDied`]; without it, the last release makes the lock not
    /// recoverable.
    pub fn mark_consistent(&self) {
        let _ = self.rlock.mark_consistent();
    }

    /// The lock and hold of this guard, which no longer releases it: for a condition's
    /// wait, which releases and takes back the lock in its place.
    pub(crate) fn into_parts(self) -> (&'a RLock<W, O>, u32) {
        let parts = (self.rlock, self.hold);
        core::mem::forget(self);
        parts
    }

    pub(crate) fn from_parts(rlock: &'a RLock<W, O>, hold: u32) -> Self {
        RLockGuard {
            rlock,
            hold,
            _owner: PhantomData,
        }
    }
}

impl<W: Wait, O: DistinctIds> Drop for RLockGuard<'_, W, O> {
    fn drop(&mut self) {
        if self.rlock.lock.is_mine() && self.rlock.hold.load(Ordering::Relaxed) == self.hold {
            self.rlock.leave();
        }
    }
}

impl<W: Wait, O: DistinctIds> fmt::Debug for RLockGuard<'_, W, O> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RLockGuard").finish_non_exhaustive()
    }
}
