//! Semaphores whose permits come back when their holder dies: [`TrackedSemaphore`] and
//! [`TrackedBoundedSemaphore`].
//!
//! ```
//! use shmsync_core::spin::Lock;
//! use shmsync_core::{TrackedSemaphore, Unowned};
//! # use shmsync_core::Spin;
//!
//! // At most two workers at a time, as with Python's `Semaphore(2)`.
//! let slots: TrackedSemaphore<Spin, Unowned> = TrackedSemaphore::new(2);
//! let permit = slots.permit(); // given back when dropped
//! assert_eq!(slots.value(), 1);
//! drop(permit);
//! assert_eq!(slots.value(), 2);
//! ```
//!
//! # How the permits are kept
//!
//! Every change of the counts happens under an internal [`Lock`], so that a process
//! killed in the middle of one leaves nothing that cannot be repaired. The counts are
//! kept so that one store commits each change:
//!
//! - `total`: the permits that exist;
//! - per holder slot, `held`: how many permits the slot's thread holds. A thread that
//!   holds permits owns its slot's own lock, so that its death marks the slot (with the
//!   hosted crate's owner backend, the kernel does it);
//! - `untracked`: permits held by threads that found no free slot;
//! - `free`, the word sleepers wait on, is always `total - held - untracked` (and a
//!   SLEEPERS bit): whoever finds a dead holder's slot, or the internal lock's last
//!   holder dead, drops the dead slot's permits and recomputes it.
//!
//! The counts live in memory other processes may write. Counts that cannot be (holders
//! holding more than `total`, or more than a `u32` in all) leave no permit free, never
//! more: the arithmetic saturates, so that the error is on the side of waiting, not of
//! handing out permits that do not exist.

use core::fmt;
use core::time::Duration;

use crate::error::{NotHeld, OverRelease, TryLockError};
use crate::lock::{Lock, LockState};
use crate::owner::Owner;
use crate::sync::{AtomicU32, Ordering};
use crate::wait::{
    deadline_after, expired, next_look, spin_while, Awaiting, Timed, Wait, MOMENT_NS,
};

/// Threads that can hold permits of one semaphore at once with their deaths tracked;
/// further holders at the same moment hold untracked permits.
pub const TRACKED_HOLDERS: usize = if cfg!(loom) { 2 } else { 8 };

/// Set in `free` when some acquirer sleeps (or is about to) on it.
const SLEEPERS: u32 = 1 << 31;
const COUNT: u32 = SLEEPERS - 1;

/// One thread's holding: the lock it owns while it holds any permit, and how many.
#[repr(C)]
struct Holder<W, O: Owner> {
    lock: Lock<W, O>,
    held: AtomicU32,
}

/// The state and algorithm shared by both semaphores.
#[repr(C)]
struct Permits<W, O: Owner> {
    /// Free permits (the low 31 bits) and SLEEPERS: the word sleepers wait on.
    free: AtomicU32,
    total: AtomicU32,
    untracked: AtomicU32,
    /// The most permits there may be, for a bounded semaphore; unused (and 0, so that
    /// all-zero bytes are `new(0)`) for an unbounded one.
    bound: AtomicU32,
    /// Serialises changes of the counts.
    guard: Lock<W, O>,
    holders: [Holder<W, O>; TRACKED_HOLDERS],
}

/// A counting semaphore, as Python's `multiprocessing.Semaphore`, whose permits come
/// back when a thread or process that holds them dies.
///
/// [`permit`](Self::permit) takes a permit, blocking while there are none, and returns
/// a [`Permit`] that gives it back when dropped (Python's `with sem:`);
/// [`acquire`](Self::acquire) and [`release`](Self::release) are Python's manual style.
///
/// # Who holds a permit
///
/// A permit is held by the thread that acquired it. Where the owner backend tracks
/// owners (the hosted crate's does), the permits of a thread that dies (killed, exited,
/// `exec`ed) return to the count, found by the next caller that looks: any `acquire`,
/// `release` or [`value`](Self::value); a waiter looks every
/// [`Owner::RECHECK_NS`]. The permits of up to [`TRACKED_HOLDERS`] holding threads at
/// once are tracked; a further thread that acquires while all slots are taken holds an
/// untracked permit, lost if it dies holding it.
///
/// Python's hand-off, one thread or process acquiring and another releasing, is
/// declared by the acquirer: [`hand_off`](Self::hand_off) (or
/// [`Permit::hand_off`]) makes a permit it holds no longer its own, so that its death
/// does not return it, and the release by another completes the hand-off. A release by
/// a thread that holds no permit completes a hand-off if one is pending, or else adds
/// a permit (a producer's release), never beyond a bounded semaphore's bound; it never
/// takes another thread's own permit.
///
/// Python's other pattern, signalling, where a producer releases and a consumer
/// acquires and never releases (`Semaphore(0)` counting items), is the same hand-off
/// seen from the consumer: a consumer must declare each item it takes with
/// [`hand_off`](Self::hand_off), or its items come back, to be taken again, when it
/// exits. A hand-off whose releaser dies before it releases is lost, as in Python.
///
/// # Waiting
///
/// Every call serialises on the semaphore's internal lock for a few dozen instructions.
/// [`try_acquire`](Self::try_acquire) and [`value`](Self::value) wait for it at most a
/// moment (100 µs), and [`acquire_timeout`](Self::acquire_timeout) at most its timeout,
/// so a process stopped (`SIGSTOP`) while it holds that lock delays nobody past a
/// deadline; [`acquire`](Self::acquire), [`release`](Self::release) and
/// [`hand_off`](Self::hand_off) wait for it as long as it takes. A semaphore whose bytes
/// a peer overwrote may be unusable: its timed calls then time out, and its blocking
/// ones wait.
///
/// # Panics
///
/// The internal lock, and the slot of a thread that holds permits, are robust locks of
/// the calling thread while it holds them (with an owner-tracking backend): a thread
/// that already holds the most locks its backend allows (32 in the hosted crate, each
/// semaphore it holds permits of counting as one) panics when it calls any of these
/// methods.
///
/// # Example
///
/// ```
/// use shmsync_core::{Spin, TrackedSemaphore, Unowned};
///
/// let sem: TrackedSemaphore<Spin, Unowned> = TrackedSemaphore::new(1);
/// assert!(sem.try_acquire());
/// assert!(!sem.try_acquire());
/// sem.release();
/// sem.release_n(2);
/// assert_eq!(sem.get_value(), 3);
/// ```
#[repr(C)]
pub struct TrackedSemaphore<W, O: Owner> {
    permits: Permits<W, O>,
}

/// A [`TrackedSemaphore`] that refuses to be released above its initial value, as
/// Python's `BoundedSemaphore`: an extra release is a bug, reported as
/// [`OverRelease`], and no death ever returns more permits than were taken.
///
/// # Example
///
/// ```
/// use shmsync_core::{Spin, TrackedBoundedSemaphore, Unowned};
///
/// let sem: TrackedBoundedSemaphore<Spin, Unowned> = TrackedBoundedSemaphore::new(2);
/// sem.acquire(); // Python's manual style
/// sem.release().unwrap();
/// let err = sem.release().unwrap_err(); // already back at 2
/// assert_eq!(sem.value(), 2);
/// println!("{err}");
/// ```
#[repr(C)]
pub struct TrackedBoundedSemaphore<W, O: Owner> {
    permits: Permits<W, O>,
}

/// A permit taken from a semaphore, given back when dropped (Python's `with sem:`).
///
/// # Example
///
/// ```
/// use shmsync_core::{Spin, TrackedSemaphore, Unowned};
///
/// let sem: TrackedSemaphore<Spin, Unowned> = TrackedSemaphore::new(1);
/// {
///     let _permit = sem.permit();
///     assert_eq!(sem.value(), 0);
/// }
/// assert_eq!(sem.value(), 1);
/// ```
#[must_use = "the permit is given back as soon as it is dropped"]
pub struct Permit<'a, W: Wait, O: Owner> {
    permits: &'a Permits<W, O>,
    /// Whether the semaphore has a bound.
    bounded: bool,
    _owner: core::marker::PhantomData<O::GuardMarker>,
}

#[cfg(not(loom))]
impl<W, O: Owner> Holder<W, O> {
    #[allow(clippy::declare_interior_mutable_const)] // a fresh value per slot
    const FREE: Self = Holder {
        lock: Lock::new(),
        held: AtomicU32::new(0),
    };
}

impl<W, O: Owner> Permits<W, O> {
    #[cfg(not(loom))]
    const fn new(permits: u32, bound: u32) -> Self {
        let permits = if permits > COUNT { COUNT } else { permits };
        Permits {
            free: AtomicU32::new(permits),
            total: AtomicU32::new(permits),
            untracked: AtomicU32::new(0),
            bound: AtomicU32::new(bound),
            guard: Lock::new(),
            holders: [Holder::FREE; TRACKED_HOLDERS],
        }
    }

    #[cfg(loom)]
    fn new(permits: u32, bound: u32) -> Self {
        let permits = permits.min(COUNT);
        Permits {
            free: AtomicU32::new(permits),
            total: AtomicU32::new(permits),
            untracked: AtomicU32::new(0),
            bound: AtomicU32::new(bound),
            guard: Lock::new(),
            holders: core::array::from_fn(|_| Holder {
                lock: Lock::new(),
                held: AtomicU32::new(0),
            }),
        }
    }

    fn free_count(&self) -> u32 {
        self.free.load(Ordering::Relaxed) & COUNT
    }

    /// The words as they stand, each read once, without the internal lock.
    fn state(&self, bounded: bool) -> SemaphoreState {
        let free = self.free.load(Ordering::Relaxed);
        let mut holders = [Holding {
            lock: LockState::Free,
            permits: 0,
        }; TRACKED_HOLDERS];
        for (seen, holder) in holders.iter_mut().zip(&self.holders) {
            seen.lock = holder.lock.state();
            seen.permits = holder.held.load(Ordering::Relaxed);
        }
        SemaphoreState {
            free: free & COUNT,
            sleepers_announced: free & SLEEPERS != 0,
            total: self.total.load(Ordering::Relaxed),
            untracked: self.untracked.load(Ordering::Relaxed),
            bound: bounded.then(|| self.bound.load(Ordering::Relaxed)),
            guard: self.guard.state(),
            holders,
        }
    }
}

/// What a [`TrackedSemaphore`]'s or [`TrackedBoundedSemaphore`]'s words say, each read
/// once without the internal lock: for diagnostics (the `shmsync` command shows it for
/// a semaphore in a segment). The words are read one after the other while other
/// threads may change them, so the counts need not add up.
///
/// # Example
///
/// ```
/// use shmsync_core::{LockState, Spin, TrackedSemaphore, Unowned};
///
/// let sem: TrackedSemaphore<Spin, Unowned> = TrackedSemaphore::new(3);
/// let _permit = sem.permit();
/// let state = sem.state();
/// assert_eq!((state.free, state.total, state.bound), (2, 3, None));
/// let holding: Vec<_> = state.holders.iter().filter(|h| h.permits > 0).collect();
/// assert_eq!(holding.len(), 1);
/// assert!(matches!(holding[0].lock, LockState::Held { .. }));
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SemaphoreState {
    /// Free permits as of the last change. The permits of a holder that died since are
    /// not among them yet: the next call that looks returns them (see
    /// [`holders`](Self::holders)).
    pub free: u32,
    /// Whether some acquirer has said it sleeps waiting for a permit: somebody waits
    /// (not how many), or waited and died asleep.
    pub sleepers_announced: bool,
    /// The permits that exist: free, held, and handed off.
    pub total: u32,
    /// Permits held by threads that found no free holder slot: lost if they die.
    pub untracked: u32,
    /// The bound of a [`TrackedBoundedSemaphore`]; `None` for a [`TrackedSemaphore`].
    pub bound: Option<u32>,
    /// The internal lock that serialises every change: held for a few dozen
    /// instructions at a time, for longer only by a stopped or dying holder.
    pub guard: LockState,
    /// The holder slots: each slot's lock is held by the thread that holds its permits,
    /// so a holder that died shows as [`LockState::OwnerDied`].
    pub holders: [Holding; TRACKED_HOLDERS],
}

/// One holder slot of a [`SemaphoreState`]: who holds it, and how many permits.
///
/// # Example
///
/// ```
/// use shmsync_core::{Holding, LockState};
///
/// let nobody = Holding { lock: LockState::Free, permits: 0 };
/// assert_eq!(nobody.permits, 0);
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Holding {
    /// The slot's lock: held by the holding thread, marked when it dies.
    pub lock: LockState,
    /// The permits it holds.
    pub permits: u32,
}

impl<W: Wait, O: Owner> Permits<W, O> {
    /// Runs `f` holding the internal lock, after returning the permits of dead
    /// holders. `f`'s changes are committed by one store each; `free` is recomputed
    /// after it. Returns what `f` returned and whether sleepers must be woken.
    fn locked<R>(&self, deadline: Option<u64>, f: impl FnOnce(&Self) -> R) -> Option<(R, bool)> {
        // A holder that died may have left a change without the recomputation that
        // follows it: `repair`.
        let (guard, repair) = self.guard.enter_internal(deadline, &self.free)?;
        let mut wake = false;
        if self.return_dead_holders() || repair {
            wake |= self.recompute_free();
        }
        let result = f(self);
        wake |= self.recompute_free();
        guard.mark_consistent();
        drop(guard);
        Some((result, wake))
    }

    /// `locked` for calls with no deadline, which cannot time out.
    fn locked_for_good<R>(&self, f: impl FnOnce(&Self) -> R) -> (R, bool) {
        match self.locked(None, f) {
            Some(done) => done,
            None => unreachable!("a lock call with no deadline does not time out"),
        }
    }

    /// Takes back the slots of holders that died, whose permits are then free again
    /// (`free` is recomputed from `held`). Returns whether there were any.
    fn return_dead_holders(&self) -> bool {
        let mut returned = false;
        for holder in &self.holders {
            if holder.lock.holder_died() {
                if let Err(TryLockError::OwnerDied(slot)) = holder.lock.try_lock() {
                    holder.held.store(0, Ordering::Relaxed);
                    slot.mark_consistent();
                    returned = true;
                }
            }
        }
        returned
    }

    /// Sets `free` to what the counts say is free; returns whether a sleeper must be
    /// woken (it was asleep, and a permit is free).
    fn recompute_free(&self) -> bool {
        // Saturating: counts a peer wrote may add up past `u32::MAX`, which then
        // leaves nothing free.
        let held = self.holders.iter().fold(0u32, |held, holder| {
            held.saturating_add(holder.held.load(Ordering::Relaxed))
        });
        let count = self
            .total
            .load(Ordering::Relaxed)
            .saturating_sub(held)
            .saturating_sub(self.untracked.load(Ordering::Relaxed))
            .min(COUNT);
        let previous = self.free.load(Ordering::Relaxed);
        let wake = previous & SLEEPERS != 0 && count > 0;
        let sleepers = if wake { 0 } else { previous & SLEEPERS };
        if previous != count | sleepers {
            self.free.store(count | sleepers, Ordering::Release);
        }
        wake
    }

    /// The calling thread's slot, if it has one.
    fn my_slot(&self) -> Option<&Holder<W, O>> {
        self.holders.iter().find(|holder| holder.lock.is_mine())
    }

    /// Takes `holder`'s slot for the calling thread if it is free, also from a holder
    /// that died since `return_dead_holders` looked (whose permits the caller's count
    /// then replaces).
    fn claim(&self, holder: &Holder<W, O>) -> bool {
        match holder.lock.try_acquire() {
            Ok(()) => true,
            Err(TryLockError::OwnerDied(())) => {
                let _ = holder.lock.mark_consistent();
                true
            }
            Err(_) => false,
        }
    }

    /// Takes one free permit for the calling thread, under the internal lock.
    fn take(&self, slept: bool) -> bool {
        if self.free_count() == 0 {
            // Announce a sleeper before the caller sleeps; released under this same
            // lock, so no release can slip in between unseen.
            self.free.fetch_or(SLEEPERS, Ordering::Relaxed);
            return false;
        }
        if let Some(holder) = self.my_slot() {
            holder.held.fetch_add(1, Ordering::Relaxed);
        } else if let Some(holder) = self.holders.iter().find(|h| self.claim(h)) {
            holder.held.store(1, Ordering::Relaxed);
        } else {
            self.untracked.fetch_add(1, Ordering::Relaxed);
        }
        if slept {
            // Others may sleep too, unseen: the next release must wake one of them.
            self.free.fetch_or(SLEEPERS, Ordering::Relaxed);
        }
        true
    }

    /// Gives back `n` permits: the calling thread's own first, then handed-off and
    /// untracked ones, then new ones up to the bound (`bounded`) or the most there can
    /// be. All or nothing. Never another thread's tracked permit: that one comes back by
    /// its release or its death.
    fn give(&self, n: u32, bounded: bool) -> Result<(), OverRelease> {
        let mine = self.my_slot();
        let from_mine = mine.map_or(0, |h| n.min(h.held.load(Ordering::Relaxed)));
        let from_untracked = (n - from_mine).min(self.untracked.load(Ordering::Relaxed));
        let added = n - from_mine - from_untracked;
        let total = self.total.load(Ordering::Relaxed);
        let bound = if bounded {
            self.bound.load(Ordering::Relaxed).min(COUNT)
        } else {
            COUNT
        };
        if total.checked_add(added).is_none_or(|t| t > bound) {
            return Err(OverRelease {
                released: n,
                value: self.free_count(),
                bound,
            });
        }
        // Each store below commits its part; `free` is recomputed after them.
        if let Some(mine) = mine {
            if from_mine > 0 {
                mine.held.fetch_sub(from_mine, Ordering::Relaxed);
            }
            self.free_slot_if_empty(mine);
        }
        if from_untracked > 0 {
            self.untracked.fetch_sub(from_untracked, Ordering::Relaxed);
        }
        if added > 0 {
            self.total.fetch_add(added, Ordering::Relaxed);
        }
        Ok(())
    }

    /// Makes one of the calling thread's permits a hand-off: taken until anyone
    /// releases it, and not returned if this thread dies.
    fn hand_off(&self) -> Result<(), NotHeld> {
        let mine = self
            .my_slot()
            .filter(|h| h.held.load(Ordering::Relaxed) > 0);
        let mine = mine.ok_or(NotHeld)?;
        // The order matters to a death in between: counted twice is repaired (the dead
        // slot goes), counted nowhere would make a permit up.
        self.untracked.fetch_add(1, Ordering::Relaxed);
        mine.held.fetch_sub(1, Ordering::Relaxed);
        self.free_slot_if_empty(mine);
        Ok(())
    }

    /// Frees the calling thread's slot once it holds nothing, for other holders.
    fn free_slot_if_empty(&self, mine: &Holder<W, O>) {
        if mine.held.load(Ordering::Relaxed) == 0 {
            let _ = mine.lock.release();
        }
    }

    fn acquire(&self, deadline: Option<u64>) -> bool {
        let mut slept = false;
        loop {
            let Some((taken, wake)) = self.locked(deadline, |permits| permits.take(slept)) else {
                return false;
            };
            if wake {
                W::wake_one(&self.free);
            }
            if taken {
                return true;
            }
            if expired::<W>(deadline) {
                return false;
            }
            // A partner that releases within the spin saves both a system call.
            if !spin_while::<W>(Awaiting::Answer, || self.free_count() == 0) {
                continue;
            }
            let observed = self.free.load(Ordering::Acquire);
            if observed & COUNT == 0 && observed & SLEEPERS != 0 {
                let slice = next_look::<W>(deadline, O::RECHECK_NS);
                W::wait(&self.free, observed, slice);
            }
            slept = true;
        }
    }

    fn release(&self, n: u32, bounded: bool) -> Result<(), OverRelease> {
        let (given, wake) = self.locked_for_good(|permits| permits.give(n, bounded));
        if wake {
            if n == 1 {
                W::wake_one(&self.free);
            } else {
                W::wake_all(&self.free);
            }
        }
        given
    }

    fn value(&self) -> u32 {
        let moment = Some(W::now().saturating_add(MOMENT_NS));
        match self.locked(moment, |permits| permits.free_count()) {
            Some((value, wake)) => {
                if wake {
                    W::wake_one(&self.free);
                }
                value
            }
            // The internal lock is held (by a stopped process, say): the count as it
            // stands, without the permits of holders that died since.
            None => self.free_count(),
        }
    }
}

macro_rules! semaphore_api {
    ($type:ident, $bounded:literal, $release:ty, $release_doc:literal, $release_map:expr) => {
        impl<W, O: Owner> $type<W, O> {
            /// The most permits a semaphore can hold.
            pub const MAX_PERMITS: u32 = COUNT;

            /// What its words say right now, read without its internal lock (which
            /// [`value`](Self::value) takes): for diagnostics.
            pub fn state(&self) -> SemaphoreState {
                self.permits.state($bounded)
            }
        }

        impl<W: Wait, O: Owner> $type<W, O> {
            /// Takes a permit, blocking while there is none, and returns a guard that
            /// gives it back when dropped (Python's `with sem:`).
            pub fn permit(&self) -> Permit<'_, W, O> {
                self.permits.acquire(None);
                self.permits.permit($bounded)
            }

            /// Python's `acquire()`: takes a permit, blocking while there is none. Give
            /// it back with [`release`](Self::release); prefer
            /// [`permit`](Self::permit), whose guard cannot be forgotten.
            pub fn acquire(&self) {
                self.permits.acquire(None);
            }

            /// Takes a permit if one is free right now (Python's
            /// `acquire(blocking=False)`); released by [`release`](Self::release).
            pub fn try_acquire(&self) -> bool {
                let moment = Some(W::now().saturating_add(MOMENT_NS));
                match self.permits.locked(moment, |permits| permits.take(false)) {
                    Some((taken, wake)) => {
                        if wake {
                            W::wake_one(&self.permits.free);
                        }
                        taken
                    }
                    None => false,
                }
            }

            #[doc = $release_doc]
            pub fn release(&self) -> $release {
                $release_map(self.permits.release(1, $bounded))
            }

            /// Gives back `n` permits at once; see [`release`](Self::release).
            pub fn release_n(&self, n: u32) -> $release {
                $release_map(self.permits.release(n, $bounded))
            }

            /// The number of free permits right now (Python's `get_value()`), after
            /// returning the permits of holders that died.
            pub fn value(&self) -> u32 {
                self.permits.value()
            }

            /// Python's name for [`value`](Self::value).
            pub fn get_value(&self) -> u32 {
                self.value()
            }

            /// Declares a hand-off of one permit this thread took with
            /// [`acquire`](Self::acquire): it stays taken until some thread or process
            /// calls [`release`](Self::release), and does not come back if this thread
            /// dies. [`NotHeld`] if this thread holds no permit.
            pub fn hand_off(&self) -> Result<(), NotHeld> {
                self.permits.locked_for_good(|permits| permits.hand_off()).0
            }

            /// Whether some acquirer has said it sleeps waiting for a permit, so that the
            /// next release makes a wake-up call. A mark left by a waiter that died asleep
            /// costs one such call, and that release clears it. For diagnostics.
            pub fn sleepers_announced(&self) -> bool {
                self.permits.free.load(Ordering::Relaxed) & SLEEPERS != 0
            }
        }

        /// The timed form, for a backend with a clock ([`Timed`]).
        impl<W: Timed, O: Owner> $type<W, O> {
            /// Takes a permit, waiting at most `timeout` (Python's
            /// `acquire(timeout=...)`); released by [`release`](Self::release).
            /// Returns whether it did.
            pub fn acquire_timeout(&self, timeout: Duration) -> bool {
                self.permits.acquire(Some(deadline_after::<W>(timeout)))
            }
        }

        impl<W, O: Owner> fmt::Debug for $type<W, O> {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.debug_struct(stringify!($type))
                    .field("free", &self.permits.free_count())
                    .finish_non_exhaustive()
            }
        }
    };
}

semaphore_api!(
    TrackedSemaphore,
    false,
    (),
    "Gives back a permit (see [who holds a permit](Self#who-holds-a-permit)), waking a \
     waiter if there is one.\n\n# Panics\n\nIf the count would pass \
     [`MAX_PERMITS`](Self::MAX_PERMITS), a bug of the caller's (as an overflowing \
     reference count is).",
    |given: Result<(), OverRelease>| if let Err(full) = given {
        panic!("{full}")
    }
);

semaphore_api!(
    TrackedBoundedSemaphore,
    true,
    Result<(), OverRelease>,
    "Gives back a permit (see [who holds a permit](TrackedSemaphore#who-holds-a-permit));\
     an error, and no change, if that would pass the bound.",
    |given| given
);

impl<W, O: Owner> TrackedSemaphore<W, O> {
    crate::sync::const_fn! {
        /// A semaphore holding `permits` free permits (at most
        /// [`MAX_PERMITS`](Self::MAX_PERMITS)).
        pub fn new(permits: u32) -> Self {
            TrackedSemaphore { permits: Permits::new(permits, 0) }
        }
    }
}

impl<W, O: Owner> TrackedBoundedSemaphore<W, O> {
    crate::sync::const_fn! {
        /// A semaphore holding `permits` permits, which is also its upper bound.
        pub fn new(permits: u32) -> Self {
            TrackedBoundedSemaphore { permits: Permits::new(permits, permits) }
        }
    }

    /// The most permits it may hold: its initial value.
    pub fn bound(&self) -> u32 {
        self.permits.bound.load(Ordering::Relaxed)
    }
}

impl<W: Wait, O: Owner> Permits<W, O> {
    fn permit(&self, bounded: bool) -> Permit<'_, W, O> {
        Permit {
            permits: self,
            bounded,
            _owner: core::marker::PhantomData,
        }
    }
}

impl<W: Wait, O: Owner> Permit<'_, W, O> {
    /// Declares a hand-off: the permit stays taken until some thread or process calls
    /// `release`, and does not come back if this thread dies (see
    /// [who holds a permit](TrackedSemaphore#who-holds-a-permit)).
    pub fn hand_off(self) {
        let permits = self.permits;
        core::mem::forget(self);
        // This thread holds the permit the guard stands for.
        let _ = permits.locked_for_good(|permits| permits.hand_off());
    }
}

impl<W: Wait, O: Owner> Drop for Permit<'_, W, O> {
    fn drop(&mut self) {
        // One permit is held, so giving one back cannot pass the bound.
        let _ = self.permits.release(1, self.bounded);
    }
}

impl<W: Wait, O: Owner> fmt::Debug for Permit<'_, W, O> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Permit").finish_non_exhaustive()
    }
}

#[cfg(all(test, not(loom)))]
mod tests {
    use super::*;
    use crate::{Spin, Unowned};

    /// Holder counts a peer wrote that add up past `u32::MAX` leave no permit free
    /// once the counts are next recomputed: no overflow panic, no permit made up.
    #[test]
    fn impossible_holder_counts_leave_nothing_free() {
        let semaphore: TrackedSemaphore<Spin, Unowned> = TrackedSemaphore::new(3);
        for holder in &semaphore.permits.holders {
            holder.held.store(0x8000_0000, Ordering::Relaxed);
        }
        // The first call recomputes `free` from the counts (after reading it).
        let _ = semaphore.value();
        assert_eq!(semaphore.value(), 0);
        assert!(!semaphore.try_acquire());
    }
}
