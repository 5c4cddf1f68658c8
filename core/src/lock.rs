//! A mutual-exclusion lock in a 32-bit word, which survives the death of its owner.
//!
//! ```
//! use shmsync_core::spin::{Lock, Value};
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

use crate::error::{DataError, LockError, NotHeld, TryLockError};
use crate::fault::{self, KillPoint};
use crate::owner::Owner;
use crate::sync::{const_fn, AtomicU32, Ordering};
use crate::wait::{
    deadline_after, expired, next_look, spin_while, Awaiting, Timed, Wait, UNUSABLE_LOOK_NS,
};

// The word has the layout of a Linux robust futex, so that the kernel itself can mark
// it when a holder dies (see `Owner`):
//
// | word                                  | state                                         |
// |---------------------------------------|-----------------------------------------------|
// | `0`                                   | free                                          |
// | `id`                                  | held by `id`                                  |
// | `id \| WAITERS`                       | held; lockers sleep on it: the release wakes one |
// | `OWNER_DIED [\| WAITERS]`             | free; its holder died holding it: the next locker gets `OwnerDied` |
// | `OWNER_DIED \| id [\| WAITERS]`       | held by `id`, who got `OwnerDied` and has not yet marked the data consistent |
// | `OWNER_DIED \| UNUSABLE [\| WAITERS]` | not recoverable: never taken again            |
// | `HANDED \| WAITERS`                   | free, handed to the lockers that have slept: others wait |
//
// Only a holder, the kernel (at the holder's death) and lockers setting WAITERS change a
// held word; only lockers change a free one. A handed word is taken by a locker that
// has slept (the one its releaser woke, or another sleeper), or freed again by its
// releaser if it woke nobody; the kernel never marks it, since it names no thread.
//
// Lockers sleep on a second word, the bell, not on the lock's word. The lock's word
// names its holder, so it changes each time the lock changes hands: under contention
// a locker about to sleep on it mostly found it changed already and went round again,
// runnable all the while, and the scheduler then kept every locker waiting for a CPU
// in turn. The bell changes only when a release rings it for a sleeper:
//
// | bell               | meaning                                                     |
// |--------------------|-------------------------------------------------------------|
// | `rings << 1`       | the count of rings, which sleepers wait to see change       |
// | `… \| ON_ITS_WAY`  | a sleeper was woken and has not looked at the lock yet      |
//
// A release that finds a sleeper on its way wakes nobody: that sleeper will take the
// lock or mark WAITERS again before it sleeps, so the next release rings. One woken
// locker at a time keeps the others asleep instead of queueing for a CPU.

/// Some locker sleeps (or is about to) waiting for the lock: a release must ring the
/// bell (`FUTEX_WAITERS`).
const WAITERS: u32 = 1 << 31;
/// The last holder died holding the lock, and the data has not been marked consistent
/// since (`FUTEX_OWNER_DIED`).
const OWNER_DIED: u32 = 1 << 30;
/// The holder's id, from [`Owner::id`]; 0 when free (`FUTEX_TID_MASK`).
const ID: u32 = (1 << 30) - 1;
/// The id of a lock that is not recoverable: no thread has it (Linux thread ids are
/// below 2^22) and no backend hands it out.
const UNUSABLE: u32 = ID;
const NOT_RECOVERABLE: u32 = OWNER_DIED | UNUSABLE;
/// The id of a lock its releaser handed to a sleeping locker (eventual fairness, see
/// [`Wait::hand_off_due`]): free for a locker that has slept, held for the others. No
/// thread has it, and no backend hands it out.
const HANDED: u32 = ID - 2;
/// How long a locker sleeps on a lock handed over before it looks again, and may take
/// it: a woken sleeper takes it within tens of microseconds, unless it died on its way.
const HANDED_LOOK_NS: u64 = 1_000_000;

/// How long a locker that sleeps without watching the lock's word, while one other
/// thread keeps taking the lock and nobody else waits, sleeps before it looks again:
/// if that thread dies holding the lock, nobody may come to take it and ring (see
/// `Lock::sleep`).
const LONE_LOOK_NS: u64 = 1_000_000;

/// In the bell: a sleeper was woken (a backend said so, see
/// [`Wait::wake_one_reporting`]) and has not looked at the lock since.
const ON_ITS_WAY: u32 = 1;
/// What one ring adds to the bell.
const RING: u32 = 2;

/// A lock in the manner of Python's `threading.Lock` / `multiprocessing.Lock`, with
/// Rust's RAII guards, that survives the death of its owner.
///
/// `#[repr(C)]` atomics, no pointers that another process reads: it can live in a
/// `static` or in memory shared between processes mapped at different addresses. `W` is
/// how a blocked locker waits (see [`Wait`]); `O` is how the holder is recorded (see
/// [`Owner`]). Two 4-byte words, the lock's and the one its sleepers wait on, then the
/// owner's record (nothing for [`Unowned`](crate::Unowned); the hosted crate's takes
/// the lock to 40 bytes, for the kernel's robust list).
///
/// Like Python's lock and unlike `std::sync::Mutex`, it does not own the data it
/// protects: the data lives in atomics ([`Value`](crate::Value), [`Array`](crate::Array))
/// that are sound to touch without it, and the lock makes multi-step updates atomic.
///
/// # Who may release it
///
/// With an owner-tracking backend the lock belongs to the thread that took it: only
/// that thread's guard or [`release`](Self::release) gives it up, and a release by any
/// other thread is [`NotHeld`] and changes nothing. A thread that exits still holding
/// it has died holding it (below). Python's hand-off (one thread acquires, another
/// releases) is what a semaphore is for: use a `Semaphore` or `BoundedSemaphore(1)`.
/// With [`Unowned`](crate::Unowned) any thread may release a held lock, as in Python.
///
/// # When the owner dies
///
/// Where the backend tracks owners (the hosted crate's does, through the kernel), the
/// word is marked when a holder dies holding the lock: a process killed, a thread that
/// exited, a program that `exec`ed. The next locker takes the lock, as with glibc's
/// robust mutexes. A locker that fell asleep while the holder kept the lock is woken
/// at once (the backend's [`Wait::wait_either`] watches the word too, and the hosted
/// crate's sees the kernel's wake-up). One that fell asleep while the lock changed
/// hands faster than a sleep begins watches only its own wake-ups: it is woken by the
/// release of whoever takes the lock next, or looks again on its own: within a
/// millisecond if it was the only locker waiting for one other thread that kept
/// taking the lock, else within the owner backend's [`RECHECK_NS`](Owner::RECHECK_NS)
/// (50 ms for the hosted crate). Then:
///
/// - the lock call returns [`LockError::OwnerDied`] holding the guard (`EOWNERDEAD`):
///   the protected data may be half-updated. Check or repair it, then call
///   [`LockGuard::mark_consistent`];
/// - if that guard is dropped without `mark_consistent`, the lock becomes unusable and
///   every later lock call returns [`LockError::NotRecoverable`] (`ENOTRECOVERABLE`), so
///   that nobody goes on with data that may be corrupt.
///
/// Only the holder told `OwnerDied` can mark the data consistent.
///
/// # Fairness
///
/// A released lock goes to whoever takes it first, which is mostly the thread that just
/// released it, back for more: that keeps a contended lock busy, but could keep a
/// sleeping locker waiting for as long as another thread keeps taking it. So, where the
/// backend keeps time for it ([`Wait::hand_off_due`]; the hosted futex does, about
/// every half millisecond of a thread's contended releases), a release that leaves
/// lockers asleep hands the lock to one of them instead: until a locker that has slept
/// takes it, newcomers (the releaser included) wait. A hand-off that finds nobody
/// asleep frees the lock at once. If the woken locker dies before it takes the lock,
/// a locker that finds the lock handed over looks again within a millisecond and may
/// then take it; one asleep since before the hand-off, within `RECHECK_NS`.
///
/// Where the backend can tell that a wake-up reached a sleeper
/// ([`Wait::wake_one_reporting`]; the hosted futex can), a release wakes no second
/// sleeper while the first has not yet looked at the lock: under contention one
/// woken locker at a time competes, and the others stay asleep instead of queueing
/// for a CPU. (A woken locker killed before it looks holds up the next wake-up until
/// a sleeper looks again, within `RECHECK_NS`.)
///
/// # In a signal handler
///
/// Not async-signal-safe, like `std::sync::Mutex` and glibc's mutexes: a handler must
/// not take a lock (nor use a primitive built on one: `RLock`, `Condition`, `RwLock`,
/// `Queue`, the hosted `Semaphore`, `Value::update`) on the thread it interrupted.
/// With an owner-tracking backend that thread may be in the middle of taking or
/// releasing a lock, and the handler's take would overwrite its record of what it is
/// doing: a lock could be left where the kernel would not find it at the thread's
/// death. A handler may set an [`Event`](crate::Event), which takes no lock, and
/// another thread may take the lock.
///
/// # Example
///
/// ```
/// use shmsync_core::spin::Lock;
/// use shmsync_core::TryLockError;
///
/// let lock = Lock::new();
/// let guard = lock.lock().unwrap();
/// assert!(matches!(lock.try_lock(), Err(TryLockError::WouldBlock)));
/// drop(guard);
/// assert!(lock.try_lock().is_ok());
///
/// // Python's names, without a guard:
/// lock.acquire().unwrap();
/// lock.release().unwrap();
/// assert!(lock.release().is_err()); // releasing an unheld lock is an error
/// ```
#[repr(C)]
pub struct Lock<W, O: Owner> {
    word: AtomicU32,
    /// What sleeping lockers wait on (see the table above).
    bell: AtomicU32,
    record: O::Record,
    _wait: PhantomData<fn() -> W>,
}

/// Holds a [`Lock`] until dropped.
///
/// # Example
///
/// ```
/// use shmsync_core::spin::{Lock, LockGuard};
///
/// let lock: Lock = Lock::new();
/// let guard: LockGuard<'_> = lock.lock().unwrap();
/// assert!(lock.is_locked());
/// drop(guard);
/// assert!(!lock.is_locked());
/// ```
#[must_use = "the lock is released as soon as the guard is dropped"]
pub struct LockGuard<'a, W: Wait, O: Owner> {
    lock: &'a Lock<W, O>,
    /// The hold this guard stands for: it releases that one and no later hold, even by
    /// the same thread (with an owner-tracking backend).
    hold: O::Hold,
    // Where the owner is a thread, the guard is not `Send`: the thread that took the
    // lock is the one that must give it up.
    _owner: PhantomData<O::GuardMarker>,
}

/// What a blocking lock call returns: the guard, or that an owner died.
pub type LockResult<'a, W, O> = Result<LockGuard<'a, W, O>, LockError<LockGuard<'a, W, O>>>;

/// What a lock call that may give up returns: the guard, or why the lock was not
/// simply taken.
pub type TryLockResult<'a, W, O> = Result<LockGuard<'a, W, O>, TryLockError<LockGuard<'a, W, O>>>;

impl<W, O: Owner> Lock<W, O> {
    const_fn! {
        /// An unlocked lock.
        pub fn new() -> Self {
            Lock {
                word: AtomicU32::new(0),
                bell: AtomicU32::new(0),
                record: O::UNHELD,
                _wait: PhantomData,
            }
        }
    }

    /// Whether some thread or process holds the lock right now (Python's `locked()`).
    /// A lock that is [not recoverable](LockError::NotRecoverable) counts as held, and
    /// so does one [handed over](LockState::HandedOver) to a locker about to take it.
    #[doc(alias = "locked")]
    pub fn is_locked(&self) -> bool {
        self.word.load(Ordering::Relaxed) & ID != 0
    }

    /// Whether a holder died holding the lock and nobody has marked the data consistent
    /// since: the next locker will be told [`LockError::OwnerDied`] (or it is already
    /// held by one who was). Also true of a lock that is not recoverable.
    pub fn holder_died(&self) -> bool {
        self.word.load(Ordering::Relaxed) & OWNER_DIED != 0
    }

    /// The id of its holder as the holder recorded it (with the hosted backend, a Linux
    /// thread id in the holder's own PID namespace), or `None` if it is free. For
    /// diagnostics only: another namespace's id may name another thread here.
    pub fn holder(&self) -> Option<u32> {
        match self.word.load(Ordering::Relaxed) & ID {
            0 | UNUSABLE | HANDED => None,
            id => Some(id),
        }
    }

    /// What the lock's word says right now, in one load: for diagnostics (the
    /// `shmsync` command shows it for a lock in a segment). Stale as soon as it returns.
    pub fn state(&self) -> LockState {
        LockState::of_word(self.word.load(Ordering::Relaxed))
    }

    /// Whether some locker has said that it sleeps waiting for the lock (the word's
    /// `FUTEX_WAITERS` bit), so that the release makes a wake-up call. It tells that
    /// somebody waits, not how many; a locker that timed out or died asleep may leave
    /// it set until the next release. For diagnostics.
    pub fn sleepers_announced(&self) -> bool {
        self.word.load(Ordering::Relaxed) & WAITERS != 0
    }
}

/// What a [`Lock`]'s word says, as [`Lock::state`] reads it.
///
/// The ids are the backend's: with the hosted crate's robust backend, the Linux thread
/// id of the holder in its own PID namespace (in another namespace the same number may
/// name another thread, or none); with [`Unowned`](crate::Unowned),
/// [`Unowned::ANONYMOUS`](crate::Unowned::ANONYMOUS).
///
/// # Example
///
/// ```
/// use shmsync_core::spin::Lock;
/// use shmsync_core::{LockState, Unowned};
///
/// let lock = Lock::new();
/// assert_eq!(lock.state(), LockState::Free);
/// let guard = lock.lock().unwrap();
/// assert_eq!(lock.state(), LockState::Held { holder: Unowned::ANONYMOUS });
/// drop(guard);
/// assert!(!lock.sleepers_announced());
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LockState {
    /// Nobody holds it.
    Free,
    /// `holder` holds it.
    Held {
        /// The holder's id.
        holder: u32,
    },
    /// Nobody holds it, and its last holder died holding it: the next locker is told
    /// [`LockError::OwnerDied`], and the data it protects may be half-updated.
    OwnerDied,
    /// `holder` holds it, was told its previous holder died, and has not yet marked the
    /// data consistent ([`LockGuard::mark_consistent`]).
    Recovering {
        /// The holder's id.
        holder: u32,
    },
    /// A holder died, the next one released it without marking the data consistent:
    /// it is never taken again ([`LockError::NotRecoverable`]).
    NotRecoverable,
    /// Nobody holds it: its last holder handed it to a locker that was waiting (a
    /// fair turn), which is about to take it. Other lockers wait meanwhile.
    HandedOver,
}

impl LockState {
    /// The state a lock's word holds, `WAITERS` aside.
    pub fn of_word(word: u32) -> LockState {
        match (word & OWNER_DIED != 0, word & ID) {
            (false, 0) => LockState::Free,
            (false, HANDED) => LockState::HandedOver,
            (false, holder) => LockState::Held { holder },
            (true, 0) => LockState::OwnerDied,
            (true, UNUSABLE) => LockState::NotRecoverable,
            (true, holder) => LockState::Recovering { holder },
        }
    }
}

impl<W: Wait, O: Owner> Lock<W, O> {
    /// Blocks until the lock is free, takes it, and returns a guard that releases it.
    ///
    /// Fails only when an owner died holding it: with [`LockError::OwnerDied`] (the lock
    /// is yours; see [the type's docs](Lock#when-the-owner-dies)) or
    /// [`LockError::NotRecoverable`].
    // Always inlined, with the guard's drop: where the lock is used in many places the
    // compiler otherwise calls both out of line, which costs an uncontended lock and
    // unlock about a quarter of its time on the hosted backend.
    #[inline(always)]
    pub fn lock(&self) -> LockResult<'_, W, O> {
        self.guarded(self.take_blocking())
    }

    /// Takes the lock if it is free right now; [`TryLockError::WouldBlock`] if not. A
    /// lock whose holder died is free: it is taken with [`TryLockError::OwnerDied`].
    pub fn try_lock(&self) -> TryLockResult<'_, W, O> {
        self.try_guarded(self.take_now())
    }

    /// Like [`lock`](Self::lock), waiting until the absolute `deadline` on `W`'s clock
    /// (`None`: for ever).
    pub(crate) fn lock_until(&self, deadline: Option<u64>) -> TryLockResult<'_, W, O> {
        self.try_guarded(self.take(deadline))
    }

    /// Python's `acquire()`: blocks until the lock is taken. Pair it with
    /// [`release`](Self::release) on the same thread; prefer [`lock`](Self::lock), whose
    /// guard cannot be forgotten. After [`LockError::OwnerDied`] the lock is held: repair
    /// the data, call [`mark_consistent`](Self::mark_consistent), then release.
    pub fn acquire(&self) -> Result<(), LockError> {
        self.take_blocking().map(drop).map_err(|e| e.map(drop))
    }

    /// Python's `acquire(blocking=False)`.
    pub fn try_acquire(&self) -> Result<(), TryLockError> {
        Self::held_without_guard(self.take_now())
    }

    /// Python's `release()`. Releasing a lock that the calling thread does not hold
    /// (free, or held by another thread or process) is an error and changes nothing; see
    /// [who may release it](Lock#who-may-release-it).
    ///
    /// Releasing a lock taken with [`LockError::OwnerDied`] before
    /// [`mark_consistent`](Self::mark_consistent) makes it not recoverable.
    #[inline]
    pub fn release(&self) -> Result<(), NotHeld> {
        let current = self.word.load(Ordering::Relaxed);
        let hold = self.my_hold(current)?;
        self.release_hold(current, hold);
        Ok(())
    }

    /// Releases the calling thread's `hold`, the word being `current`.
    #[inline]
    fn release_hold(&self, current: u32, hold: O::Hold) {
        // Only the holder changes OWNER_DIED, so `current` still tells which release
        // this is.
        if current & OWNER_DIED == 0 {
            self.release_clean(current, hold);
            return;
        }
        // Never marked consistent: it stays held for ever, and every waiter is told.
        O::releasing(&self.word, hold);
        self.word.swap(NOT_RECOVERABLE, Ordering::Release);
        O::released(hold);
        self.ring_all();
    }

    /// Releases the calling thread's clean `hold` (its word `current`, WAITERS aside):
    /// hands the lock to a sleeper when a hand-off is due, frees it otherwise.
    #[inline]
    fn release_clean(&self, current: u32, hold: O::Hold) {
        O::releasing(&self.word, hold);
        if current & WAITERS != 0 && W::hand_off_due() {
            self.hand_off(hold);
            return;
        }
        self.free(hold);
    }

    /// Frees the lock, which the calling thread holds cleanly and is releasing
    /// ([`Owner::releasing`]), and wakes a sleeper if there is one.
    #[inline]
    fn free(&self, hold: O::Hold) {
        // WAITERS may have been set since the caller looked, which the swap sees.
        let previous = self.word.swap(0, Ordering::AcqRel);
        // Done before the wake-up: the release is complete, and a death during the
        // wake-up call must not leave it pending (see the owner backend).
        O::released(hold);
        if previous & WAITERS != 0 {
            self.ring_unless_one_is_on_its_way();
        }
    }

    /// Wakes a sleeping locker, for a release that found WAITERS, unless one woken
    /// earlier has not yet looked at the lock: that one takes the lock, or marks
    /// WAITERS again before it sleeps, and the release after that rings.
    #[cold]
    fn ring_unless_one_is_on_its_way(&self) {
        // A read-modify-write even when it rings nobody, as the woken locker's clearing
        // of the mark is: either that clearing comes first, and this release rings, or
        // it reads this mark, and the woken locker's look at the word then sees this
        // release.
        if self.bell.fetch_or(ON_ITS_WAY, Ordering::AcqRel) & ON_ITS_WAY != 0 {
            return;
        }
        self.bell.fetch_add(RING, Ordering::AcqRel);
        if !W::wake_one_reporting(&self.bell) {
            // Nobody was asleep (or the backend cannot tell), so nobody is on the way.
            // A locker may have fallen asleep since, on the bell as it stood, counting
            // on a release that relied on this ring: wake it as well.
            self.bell.fetch_and(!ON_ITS_WAY, Ordering::AcqRel);
            W::wake_one(&self.bell);
        }
    }

    /// Wakes a sleeping locker whether or not another is on its way; whether one woke.
    #[cold]
    fn ring_one(&self) -> bool {
        self.bell.fetch_add(RING, Ordering::AcqRel);
        W::wake_one_reporting(&self.bell)
    }

    /// Wakes every sleeping locker.
    #[cold]
    fn ring_all(&self) {
        self.bell.fetch_add(RING, Ordering::AcqRel);
        W::wake_all(&self.bell);
    }

    /// Says that the data a lock taken with [`LockError::OwnerDied`] protects is
    /// consistent again (`pthread_mutex_consistent`). Only the calling thread's own
    /// hold can be marked: on a lock it does not hold this is [`NotHeld`], and on a lock
    /// it holds cleanly it does nothing.
    pub fn mark_consistent(&self) -> Result<(), NotHeld> {
        self.my_hold(self.word.load(Ordering::Relaxed))?;
        // Only the holder clears OWNER_DIED; lockers may set WAITERS meanwhile.
        self.word.fetch_and(!OWNER_DIED, Ordering::Relaxed);
        Ok(())
    }

    /// Gives up a lock taken with [`LockError::OwnerDied`] without repairing it and
    /// without deciding that it never can be: the next locker is told the owner died,
    /// as if this holder had never taken it. For operations that take the lock on a
    /// caller's behalf (`Value::update`, `Array::snapshot`) and must not pass judgement
    /// on data they do not understand.
    pub(crate) fn pass_on_unrepaired(&self) {
        let Ok(hold) = self.my_hold(self.word.load(Ordering::Relaxed)) else {
            return;
        };
        O::releasing(&self.word, hold);
        let previous = self.word.fetch_and(WAITERS | OWNER_DIED, Ordering::AcqRel);
        O::released(hold);
        if previous & WAITERS != 0 {
            self.ring_unless_one_is_on_its_way();
        }
    }

    /// Runs `f` holding the lock, for an operation that takes it on the caller's behalf.
    /// If the last holder died, `f` does not run: the caller gets
    /// [`DataError::OwnerDied`], and the next locker [`LockError::OwnerDied`], to repair
    /// the data.
    pub(crate) fn run_locked<R>(&self, f: impl FnOnce() -> R) -> Result<R, DataError> {
        match self.take_blocking() {
            Ok(_) => {
                let result = f();
                let _ = self.release();
                Ok(result)
            }
            Err(LockError::OwnerDied(_)) => {
                self.pass_on_unrepaired();
                Err(DataError::OwnerDied)
            }
            Err(_) => Err(DataError::NotRecoverable),
        }
    }

    /// Takes a primitive's internal lock on the caller's behalf, waiting until
    /// `deadline` (`None`: for ever): the guard, and whether its last holder died (the
    /// caller then completes what it left half done and marks the lock consistent);
    /// `None` past the deadline.
    ///
    /// Whoever is told an internal lock's holder died repairs and marks it, so only a
    /// peer that wrote into the primitive's memory can make it not recoverable: the
    /// primitive cannot be used. A timed call times out; a blocking one waits (looking
    /// again now and then, on `park_on`), as it would for a holder that never lets go.
    pub(crate) fn enter_internal(
        &self,
        deadline: Option<u64>,
        park_on: &AtomicU32,
    ) -> Option<(LockGuard<'_, W, O>, bool)> {
        loop {
            match self.lock_until(deadline) {
                Ok(guard) => return Some((guard, false)),
                Err(TryLockError::OwnerDied(guard)) => return Some((guard, true)),
                Err(TryLockError::WouldBlock) => return None,
                Err(TryLockError::NotRecoverable) => {
                    if expired::<W>(deadline) {
                        return None;
                    }
                    let observed = park_on.load(Ordering::Relaxed);
                    W::wait(
                        park_on,
                        observed,
                        next_look::<W>(deadline, Some(UNUSABLE_LOOK_NS)),
                    );
                }
            }
        }
    }

    /// Releases `hold` if it is the calling thread's current hold of the lock, as its
    /// guard's drop does: a hold that was released behind the holder's back (and perhaps
    /// taken again since) is left alone.
    #[inline]
    pub(crate) fn give_back(&self, hold: O::Hold) {
        let current = self.word.load(Ordering::Relaxed);
        // The common case, small enough that a guard's drop is inlined where it is
        // dropped: held cleanly by this thread, nobody asleep. The rest (sleepers, a
        // hand-off, a dead owner, a hold released behind the guard's back) goes the
        // long way.
        if current & (WAITERS | OWNER_DIED) == 0
            && O::releasing_held(&self.word, &self.record, current, hold)
        {
            self.free(hold);
        } else {
            self.give_back_unusual(hold);
        }
    }

    /// Releases the lock, which the calling thread holds cleanly and others sleep
    /// waiting for, into the hands of the lockers that have slept, and wakes one of
    /// them: whoever takes it next has waited, not the releaser back for more.
    /// Called between [`Owner::releasing`] and the release, as `release_clean` is.
    #[cold]
    fn hand_off(&self, hold: O::Hold) {
        // WAITERS was set: only a release clears it.
        self.word.swap(HANDED | WAITERS, Ordering::Release);
        O::released(hold);
        if self.ring_one() {
            return;
        }
        // Nobody slept after all (WAITERS outlived its sleepers): free it, and wake one
        // that may have fallen asleep on the handed word meanwhile. Fails only if a
        // locker that had slept took it.
        if self
            .word
            .compare_exchange(HANDED | WAITERS, 0, Ordering::Release, Ordering::Relaxed)
            .is_ok()
        {
            self.ring_one();
        }
    }

    /// [`give_back`](Self::give_back) of a lock that others sleep waiting for, taken
    /// from a dead owner, not held any more, or moved while held (or whose backend
    /// could not tell quickly).
    #[cold]
    fn give_back_unusual(&self, hold: O::Hold) {
        let current = self.word.load(Ordering::Relaxed);
        if let Ok(mine) = self.my_hold(current) {
            if mine == hold {
                self.release_hold(current, hold);
            }
        }
    }

    /// Releases `hold` (if current) while its holder waits on a condition: as
    /// [`give_back`](Self::give_back), except that a lock taken with
    /// [`LockError::OwnerDied`] and not yet marked consistent stays so, and the next
    /// locker (perhaps this thread again) is told, rather than becoming not recoverable.
    pub(crate) fn release_for_wait(&self, hold: O::Hold) {
        let current = self.word.load(Ordering::Relaxed);
        if current & OWNER_DIED != 0 {
            if self.my_hold(current) == Ok(hold) {
                self.pass_on_unrepaired();
            }
        } else {
            self.give_back(hold);
        }
    }

    /// The calling thread's current hold of the lock, if it has one.
    pub(crate) fn current_hold(&self) -> Option<O::Hold> {
        self.my_hold(self.word.load(Ordering::Relaxed)).ok()
    }

    /// Whether the calling thread holds the lock (with [`Unowned`](crate::Unowned), whether anyone does).
    pub(crate) fn is_mine(&self) -> bool {
        self.my_hold(self.word.load(Ordering::Relaxed)).is_ok()
    }

    /// The calling thread's hold of the lock, by the word (`current`) and by the
    /// backend's account: both must agree.
    #[inline]
    fn my_hold(&self, current: u32) -> Result<O::Hold, NotHeld> {
        if current & ID != O::id() {
            self.forget_stale_hold();
            return Err(NotHeld);
        }
        O::holding(&self.word, &self.record).ok_or(NotHeld)
    }

    /// The word does not name the calling thread. If the backend still has the lock on
    /// record for it (a peer overwrote the word), the record goes: the lock is not this
    /// thread's any more.
    #[cold]
    fn forget_stale_hold(&self) {
        if let Some(hold) = O::holding(&self.word, &self.record) {
            O::releasing(&self.word, hold);
            O::released(hold);
        }
    }

    /// The outcome of taking the lock, with a guard wherever the lock is now held.
    #[inline]
    pub(crate) fn guarded(&self, taken: Taken<O>) -> LockResult<'_, W, O> {
        taken
            .map(|hold| self.guard(hold))
            .map_err(|error| error.map(|hold| self.guard(hold)))
    }

    /// The outcome of an attempt that may give up (`None`), with a guard wherever the
    /// lock is now held.
    fn try_guarded(&self, taken: Option<Taken<O>>) -> TryLockResult<'_, W, O> {
        match taken {
            None => Err(TryLockError::WouldBlock),
            Some(taken) => self.guarded(taken).map_err(TryLockError::from),
        }
    }

    #[inline]
    fn guard(&self, hold: O::Hold) -> LockGuard<'_, W, O> {
        LockGuard {
            lock: self,
            hold,
            _owner: PhantomData,
        }
    }

    /// The outcome of an attempt that may give up, for Python's manual `acquire`: the
    /// lock stays held (also after `OwnerDied`) until `release`.
    fn held_without_guard(taken: Option<Taken<O>>) -> Result<(), TryLockError> {
        match taken {
            None => Err(TryLockError::WouldBlock),
            Some(taken) => taken.map(drop).map_err(|e| e.map(drop).into()),
        }
    }

    /// Takes the lock if it is free, without waiting; `None` if it is held.
    pub(crate) fn take_now(&self) -> Option<Taken<O>> {
        match self.take_or_mark(O::id(), false, false) {
            Step::Taken(outcome) => Some(outcome),
            Step::NotRecoverable => Some(Err(LockError::NotRecoverable)),
            Step::Wait { .. } => None,
        }
    }

    /// Takes the lock, however long that takes.
    #[inline]
    pub(crate) fn take_blocking(&self) -> Taken<O> {
        match self.take_free() {
            Ok(hold) => Ok(hold),
            Err(me) => self.take_slow_blocking(me),
        }
    }

    /// Takes the lock, waiting until `deadline` (`None`: for ever); `None` if the
    /// deadline passed first.
    #[inline]
    pub(crate) fn take(&self, deadline: Option<u64>) -> Option<Taken<O>> {
        match self.take_free() {
            Ok(hold) => Some(Ok(hold)),
            Err(me) => self.take_slow(me, deadline),
        }
    }

    /// The uncontended path: one compare-and-swap from free to held by the calling
    /// thread. Its hold, or else the calling thread's id.
    #[inline(always)]
    fn take_free(&self) -> Result<O::Hold, u32> {
        let me = O::id();
        O::attempt(&self.word, &self.record);
        if self
            .word
            .compare_exchange(0, me, Ordering::Acquire, Ordering::Relaxed)
            .is_ok()
        {
            return Ok(O::taken(&self.word, &self.record));
        }
        O::missed(&self.word, &self.record);
        Err(me)
    }

    /// [`take_slow`](Self::take_slow) without a deadline, which only returns with an
    /// outcome (the loop says so without a panic path).
    #[cold]
    fn take_slow_blocking(&self, me: u32) -> Taken<O> {
        loop {
            if let Some(taken) = self.take_slow(me, None) {
                return taken;
            }
        }
    }

    #[cold]
    fn take_slow(&self, me: u32, deadline: Option<u64>) -> Option<Taken<O>> {
        // First a bounded spin (`W::SPIN_NS`, offering the CPU as it goes), as the Event
        // and the Semaphore do. Without it, a locker that finds the lock held marks
        // WAITERS and sleeps at once, though the holder, running on another CPU, lets go
        // within a microsecond: each hand-off then costs a wake call and a sleeper's
        // wake-up. The spin takes a lock freed meanwhile with no call at all. (It costs
        // the holder a cache line at each look, which is why it is bounded.) Unlike
        // theirs, it goes on when the CPUs are crowded: see `Awaiting::Release`.
        let mut seen = Seen::since(self.word.load(Ordering::Relaxed) & ID);
        spin_while::<W>(Awaiting::Release, || {
            let id = self.word.load(Ordering::Relaxed) & ID;
            seen.saw(id);
            id != 0
        });
        // Once this thread has slept, others may be asleep too, unseen: it must take the
        // lock with WAITERS set so that its own release wakes the next one.
        let mut slept = false;
        loop {
            // Read before the look at the lock: a ring after that look changes it, and
            // the sleep below returns at once.
            let rings = self.bell.load(Ordering::Acquire);
            let (current, marked) = match self.take_or_mark(me, slept, true) {
                Step::Taken(outcome) => return Some(outcome),
                Step::NotRecoverable => return Some(Err(LockError::NotRecoverable)),
                Step::Wait { word, marked } => (word, marked),
            };
            // WAITERS is set on the held lock, so its release wakes a sleeper: leaving now
            // cannot strand one, even if the wake we may have consumed was meant for it.
            if expired::<W>(deadline) {
                return None;
            }
            let id = current & ID;
            let kept = seen.kept;
            // A holder that kept the lock since this locker's last look may be one
            // that dies holding it: watch its word too (see `sleep`).
            let watch_word = kept == id;
            seen.saw(id);
            // Nobody else waits, and one other thread keeps taking the lock: if it
            // dies holding it, nobody may come to take it and ring.
            let lone = marked && seen.one_holder();
            // A lock handed over has no holder: the one this locker saw before is still
            // the last that held it.
            seen = Seen::since(if id == HANDED { kept } else { id });
            let look_ns = if id == HANDED {
                // It waits for the sleeper woken to take it, which may have died on its
                // way (or, with an owner backend that never looks again, be the only
                // one that would): look again soon, as one that has slept.
                Some(HANDED_LOOK_NS)
            } else if lone && !watch_word {
                O::RECHECK_NS.map(|ns| ns.min(LONE_LOOK_NS))
            } else {
                O::RECHECK_NS
            };
            self.sleep(
                rings,
                current,
                watch_word,
                next_look::<W>(deadline, look_ns),
            );
            slept = true;
        }
    }

    /// Sleeps until the bell rings past `rings`, or `until`. If `watch_word`, also
    /// until the lock's word changes from `current` or is woken: the owner backend's
    /// wake at a holder's death (the kernel's, for the hosted crate) comes there, so a
    /// locker asleep on an abandoned lock learns of it at once.
    ///
    /// Only a lock that one holder kept since the locker's last look (its spin, for
    /// the first sleep) is worth watching: a word that changed before the sleep began
    /// ends it at once, and under contention the lock changes hands faster than a
    /// locker falls asleep. Watching it then kept lockers going round, runnable,
    /// instead of asleep. A locker that sleeps without watching learns of a death from
    /// the ring of whoever takes the lock next, or at its next look: within
    /// `LONE_LOOK_NS` if it found nobody else waiting and one other thread taking the
    /// lock (then nobody may come to take it), else within `Owner::RECHECK_NS`.
    fn sleep(&self, rings: u32, current: u32, watch_word: bool, until: Option<u64>) {
        if watch_word {
            W::wait_either(&self.bell, rings, &self.word, current, until);
        } else {
            W::wait(&self.bell, rings, until);
        }
        fault::ends_here_if_killed(KillPoint::LockerWoken);
        // Woken or not, this locker looks next: no release need wake another for it.
        self.bell.fetch_and(!ON_ITS_WAY, Ordering::AcqRel);
    }

    /// One look at the word: takes the lock if it is free (from a dead holder too);
    /// else, if `mark`, makes sure its release will wake a waiter.
    /// `keep_waiters`: take it with WAITERS set, for a locker that has waited and so
    /// may not be the only one.
    fn take_or_mark(&self, me: u32, keep_waiters: bool, mark: bool) -> Step<O> {
        let mut current = self.word.load(Ordering::Relaxed);
        loop {
            let id = current & ID;
            if id == UNUSABLE {
                return Step::NotRecoverable;
            }
            // A handed lock goes to a locker that has slept: the others wait their turn.
            let taking = id == 0 || id == HANDED && keep_waiters;
            let next = if taking {
                current & !ID | me | if keep_waiters { WAITERS } else { 0 }
            } else if current & WAITERS != 0 || !mark {
                return Step::Wait {
                    word: current,
                    marked: false,
                };
            } else {
                current | WAITERS
            };
            if taking {
                O::attempt(&self.word, &self.record);
            }
            match self
                .word
                .compare_exchange(current, next, Ordering::AcqRel, Ordering::Relaxed)
            {
                Ok(_) if taking => {
                    let hold = O::taken(&self.word, &self.record);
                    return Step::Taken(if current & OWNER_DIED != 0 {
                        Err(LockError::OwnerDied(hold))
                    } else {
                        Ok(hold)
                    });
                }
                Ok(_) => {
                    return Step::Wait {
                        word: next,
                        marked: true,
                    }
                }
                Err(now) => {
                    if taking {
                        O::missed(&self.word, &self.record);
                    }
                    current = now;
                }
            }
        }
    }
}

/// What a locker has seen of the lock's holders since its last look (its spin, for
/// its first sleep), by the ids in the lock's word.
struct Seen {
    /// The holder at that look, or 0 once the word has shown anything else since.
    kept: u32,
    /// 0 before any holder, then the one seen (perhaps more than once), or `SEVERAL`.
    /// A free lock, or one handed over, has no holder.
    holders: u32,
}

/// More than one holder; no id (ids have 30 bits).
const SEVERAL: u32 = u32::MAX;

impl Seen {
    /// After a look that found `id`.
    fn since(id: u32) -> Seen {
        let mut seen = Seen {
            kept: id,
            holders: 0,
        };
        seen.saw(id);
        seen
    }

    /// Notes the id a look at the word found.
    fn saw(&mut self, id: u32) {
        if id != self.kept {
            self.kept = 0;
        }
        if id != 0 && id != HANDED && id != self.holders {
            self.holders = if self.holders == 0 { id } else { SEVERAL };
        }
    }

    /// Whether exactly one holder was seen.
    fn one_holder(&self) -> bool {
        self.holders != 0 && self.holders != SEVERAL
    }
}

/// The outcome of an attempt to take the lock: the hold, or why not.
pub(crate) type Taken<O> = Result<<O as Owner>::Hold, LockError<<O as Owner>::Hold>>;

/// What one look at the word led to.
enum Step<O: Owner> {
    /// The lock was free and is now ours: cleanly, or from an owner that died.
    Taken(Taken<O>),
    /// It never will be.
    NotRecoverable,
    /// It is held (marked WAITERS if the look was to mark it): wait while the word
    /// holds this value. `marked`: this look set WAITERS, which nobody had set before
    /// (as far as it saw, no other locker waits).
    Wait { word: u32, marked: bool },
}

/// The timed forms, for a backend with a clock ([`Timed`]).
impl<W: Timed, O: Owner> Lock<W, O> {
    /// Like [`lock`](Self::lock), but gives up with [`TryLockError::WouldBlock`] after
    /// `timeout`.
    pub fn lock_timeout(&self, timeout: Duration) -> TryLockResult<'_, W, O> {
        self.try_guarded(self.take(Some(deadline_after::<W>(timeout))))
    }

    /// Python's `acquire(timeout=...)`.
    pub fn acquire_timeout(&self, timeout: Duration) -> Result<(), TryLockError> {
        Self::held_without_guard(self.take(Some(deadline_after::<W>(timeout))))
    }
}

#[cfg(feature = "embassy")]
impl<W: crate::WakeTasks, O: Owner> Lock<W, O> {
    /// The async form of [`lock`](Self::lock), for tasks of one executor: it waits by
    /// yielding to the executor, woken by the release. Dropping the future before it
    /// completes gives up cleanly (a wake meant for it reaches the other waiters).
    ///
    /// For a timeout, race it against a timer (`embassy_time::with_timeout`).
    pub async fn lock_async(&self) -> LockResult<'_, W, O> {
        self.guarded(self.take_async().await)
    }

    /// The async form of [`take`](Self::take), without a deadline.
    pub(crate) async fn take_async(&self) -> Taken<O> {
        let me = O::id();
        core::future::poll_fn(|cx| {
            // Register first: a release after the look below then wakes us.
            W::register(&self.bell, cx.waker());
            match self.take_or_mark(me, true, true) {
                Step::Taken(outcome) => core::task::Poll::Ready(outcome),
                Step::NotRecoverable => core::task::Poll::Ready(Err(LockError::NotRecoverable)),
                Step::Wait { .. } => core::task::Poll::Pending,
            }
        })
        .await
    }
}

impl<W, O: Owner> Default for Lock<W, O> {
    fn default() -> Self {
        Self::new()
    }
}

impl<W, O: Owner> Drop for Lock<W, O> {
    fn drop(&mut self) {
        let id = self.word.load(Ordering::Relaxed) & ID;
        O::forget(
            &self.word,
            &self.record,
            !matches!(id, 0 | UNUSABLE | HANDED),
        );
    }
}

impl<W, O: Owner> fmt::Debug for Lock<W, O> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Lock")
            .field("locked", &self.is_locked())
            .finish()
    }
}

impl<W: Wait, O: Owner> LockGuard<'_, W, O> {
    /// Says that the protected data is consistent again after
    /// [`LockError::OwnerDied`]; without it, dropping this guard makes the lock not
    /// recoverable.
    pub fn mark_consistent(&self) {
        // The guard's thread holds the lock, unless it was released by hand.
        let _ = self.lock.mark_consistent();
    }
}

impl<'a, W: Wait, O: Owner> LockGuard<'a, W, O> {
    /// The lock and hold of this guard, which no longer releases it: for a condition's
    /// wait, which releases and takes back the lock in its place.
    pub(crate) fn into_parts(self) -> (&'a Lock<W, O>, O::Hold) {
        let parts = (self.lock, self.hold);
        core::mem::forget(self);
        parts
    }
}

impl<W: Wait, O: Owner> Drop for LockGuard<'_, W, O> {
    #[inline(always)]
    fn drop(&mut self) {
        // Only the hold this guard stands for: if the lock was released behind the
        // guard's back with `Lock::release`, whoever holds it now (this thread too, by a
        // later lock call) keeps it.
        self.lock.give_back(self.hold);
    }
}

impl<W: Wait, O: Owner> fmt::Debug for LockGuard<'_, W, O> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("LockGuard").finish_non_exhaustive()
    }
}
