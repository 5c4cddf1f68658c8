//! Who holds a lock: the seam between the lock's algorithm and the platform's record of
//! owners, apart from [`Wait`](crate::Wait), which only waits and wakes.
//!
//! A [`Lock`](crate::Lock) writes its holder's [`id`](Owner::id) into its word and tells
//! the backend when it tries for, takes and gives up the lock. A backend that tracks owners arranges for the word to be
//! marked `OWNER_DIED` when a holder dies (the hosted crate registers each held lock with
//! the kernel's robust-futex list); the lock only ever reads that mark, so the algorithm
//! is the same for every backend. Backends without owners use [`Unowned`].

use crate::sync::AtomicU32;
use crate::ShmSafe;

/// How a [`Lock`](crate::Lock) records and checks its holder.
///
/// # Example
///
/// ```
/// use shmsync_core::{Lock, Spin, Unowned};
///
/// // Firmware tasks share one address space and do not die alone: no owner tracking.
/// static LOCK: Lock<Spin, Unowned> = Lock::new();
/// drop(LOCK.lock().unwrap());
/// ```
pub trait Owner {
    /// How layouts name this way of recording owners: two backends may share a name
    /// only if they write the same ids into the word and the same record beside it.
    const NAME: &'static str;

    /// What the lock keeps beside its word for this concern (`()` for none). It lives in
    /// memory that other processes may map, so it must be valid for every byte pattern.
    type Record: ShmSafe;

    /// The record of a lock that nobody holds; all-zero bytes.
    #[allow(clippy::declare_interior_mutable_const)] // a fresh value per lock, by design
    const UNHELD: Self::Record;

    /// One hold of a lock by a thread: what [`taken`](Owner::taken) and
    /// [`holding`](Owner::holding) return. Two holds of the same lock by the same thread,
    /// one after the other, differ, so that a guard releases only its own.
    type Hold: Copy + PartialEq;

    /// `*const ()` when a guard must be dropped on the thread that took the lock (the
    /// owner is a thread), `()` when it may move.
    type GuardMarker;

    /// How long a sleeping locker waits before it looks at the word again uninvited, for
    /// a wake-up that died with its sender (a holder killed between its release and its
    /// wake). `None`: only when woken.
    const RECHECK_NS: Option<u64>;

    /// The id the calling thread writes into a lock it takes: from 1 to
    /// `(1 << 30) - 4` (the ids above are the lock's own marks). Owner-less backends
    /// return [`Unowned::ANONYMOUS`].
    fn id() -> u32;

    /// The calling thread is about to try to take the lock whose word and record these
    /// are: a death from here until [`taken`](Owner::taken) or [`missed`](Owner::missed)
    /// is not missed if the attempt succeeds.
    fn attempt(word: &AtomicU32, record: &Self::Record);

    /// The attempt took the lock: until [`released`](Owner::released), the calling
    /// thread's death marks the word `OWNER_DIED`. Returns the new hold.
    fn taken(word: &AtomicU32, record: &Self::Record) -> Self::Hold;

    /// The attempt did not take the lock.
    fn missed(word: &AtomicU32, record: &Self::Record);

    /// Whether the calling thread holds the lock whose `record` this is, by the
    /// backend's own account (never by the word alone, which another process may have
    /// written): what a release checks, after the word names [`id`](Owner::id).
    fn holding(word: &AtomicU32, record: &Self::Record) -> Option<Self::Hold>;

    /// The calling thread is about to release the lock (the word still names it). A
    /// death from here until [`released`](Owner::released) must still mark the word if
    /// the release has not happened yet, and should still wake a waiter if it has.
    fn releasing(word: &AtomicU32, hold: Self::Hold);

    /// A guard's release in its common case, in one step: if the lock's word, which
    /// reads `holder`, names the calling thread ([`id`](Owner::id)) and `hold` is still
    /// its hold of the lock by the backend's own account, does what
    /// [`releasing`](Owner::releasing) does and returns true; else returns false and
    /// changes nothing. A backend may also return false where telling takes more work
    /// than a few comparisons: the lock then asks [`id`](Owner::id) and
    /// [`holding`](Owner::holding), and releases the usual way. This keeps what a guard's
    /// drop inlines small.
    #[inline]
    fn releasing_held(
        word: &AtomicU32,
        record: &Self::Record,
        holder: u32,
        hold: Self::Hold,
    ) -> bool {
        let held = holder == Self::id() && Self::holding(word, record) == Some(hold);
        if held {
            Self::releasing(word, hold);
        }
        held
    }

    /// The word is released (the wake-up of a waiter follows): the lock is no longer
    /// this thread's.
    fn released(hold: Self::Hold);

    /// The lock is being dropped (its memory freed). A backend that has the lock on
    /// record for the calling thread forgets it; one that may have it on record for
    /// another thread must not let the memory go.
    fn forget(word: &AtomicU32, record: &Self::Record, held_by_someone: bool);
}

/// Owners that are not tracked: any thread may release a held lock (as in Python), and a
/// holder that dies is never detected. For tasks of one firmware image, which cannot
/// die alone.
///
/// # Example
///
/// ```
/// use shmsync_core::{Lock, Spin, Unowned};
///
/// let lock: Lock<Spin, Unowned> = Lock::new();
/// lock.acquire().unwrap();
/// std::thread::scope(|s| {
///     s.spawn(|| lock.release().unwrap()); // another thread may release it
/// });
/// assert!(!lock.is_locked());
/// ```
pub struct Unowned;

impl Unowned {
    /// The id an owner-less lock is held by: never a thread id.
    pub const ANONYMOUS: u32 = (1 << 30) - 2;
}

impl Owner for Unowned {
    const NAME: &'static str = "Unowned";
    type Record = ();
    const UNHELD: () = ();
    type Hold = ();
    type GuardMarker = ();
    const RECHECK_NS: Option<u64> = None;

    #[inline]
    fn id() -> u32 {
        Self::ANONYMOUS
    }

    #[inline]
    fn attempt(_: &AtomicU32, _: &()) {}

    #[inline]
    fn taken(_: &AtomicU32, _: &()) {}

    #[inline]
    fn missed(_: &AtomicU32, _: &()) {}

    #[inline]
    fn holding(_: &AtomicU32, _: &()) -> Option<()> {
        Some(())
    }

    #[inline]
    fn releasing(_: &AtomicU32, _: ()) {}

    #[inline]
    fn released(_: ()) {}

    #[inline]
    fn forget(_: &AtomicU32, _: &(), _: bool) {}
}

/// An owner backend whose [`id`](Owner::id) differs between any two threads that may
/// hold the same lock: what an [`RLock`](crate::RLock) relies on to tell its holder
/// coming back from another thread arriving.
///
/// [`Unowned`] is not one: every caller has its id, so a re-entrant lock over it would
/// let every thread in at once, and `RLock<_, Unowned>` does not compile. The hosted
/// crate's `Robust` is one (Linux thread ids).
///
/// # Example
///
/// Firmware with a notion of who runs can say so. Here two cores, whose number tells
/// them apart (tasks of one executor on one core could not be told apart this way):
///
/// ```
/// use shmsync_core::{AtomicU32, DistinctIds, Owner, RLock, Spin};
///
/// struct ByCore;
///
/// impl Owner for ByCore {
///     const NAME: &'static str = "ByCore";
///     type Record = ();
///     const UNHELD: () = ();
///     type Hold = ();
///     type GuardMarker = *const (); // a guard stays on its core
///     const RECHECK_NS: Option<u64> = None;
///     fn id() -> u32 {
///         1 + current_core()
///     }
///     fn attempt(_: &AtomicU32, _: &()) {}
///     fn taken(_: &AtomicU32, _: &()) {}
///     fn missed(_: &AtomicU32, _: &()) {}
///     // Asked only once the lock's word names this core.
///     fn holding(_: &AtomicU32, _: &()) -> Option<()> {
///         Some(())
///     }
///     fn releasing(_: &AtomicU32, _: ()) {}
///     fn released(_: ()) {}
///     fn forget(_: &AtomicU32, _: &(), _: bool) {}
/// }
///
/// impl DistinctIds for ByCore {}
/// # fn current_core() -> u32 { 0 }
///
/// static LOCK: RLock<Spin, ByCore> = RLock::new();
/// let outer = LOCK.lock().unwrap();
/// let inner = LOCK.lock().unwrap(); // the same core again: it goes in
/// assert_eq!(LOCK.recursion_count(), 2);
/// drop(inner);
/// drop(outer);
/// assert!(!LOCK.is_locked());
/// ```
pub trait DistinctIds: Owner {}
