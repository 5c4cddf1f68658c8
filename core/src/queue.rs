//! A fixed-capacity FIFO queue of plain items, as Python's `queue.Queue(maxsize)` and
//! `multiprocessing.JoinableQueue`, that a participant killed anywhere inside `put` or
//! `get` never wedges.
//!
//! ```
//! use shmsync_core::spin::Queue;
//!
//! static JOBS: Queue<u32, 8> = Queue::new();
//!
//! std::thread::scope(|s| {
//!     s.spawn(|| {
//!         for job in 1..=100 {
//!             JOBS.put(job).unwrap(); // blocks while 8 are waiting
//!         }
//!         JOBS.close(); // no more: once drained, `get` says Closed
//!     });
//!     let mut total = 0;
//!     while let Ok(job) = JOBS.get() {
//!         total += job;
//!     }
//!     assert_eq!(total, 5050);
//! });
//! ```

use core::fmt;
use core::mem::MaybeUninit;
use core::time::Duration;

use crate::error::{Closed, GetError, NoTaskPending, PutError};
use crate::fault::{survives, KillPoint};
use crate::lock::{Lock, LockGuard};
use crate::owner::Owner;
use crate::pod::Pod;
use crate::sync::{const_fn, AtomicU32, Ordering};
use crate::wait::{
    deadline_after, expired, next_look, spin_while, Awaiting, Timed, Wait, MOMENT_NS,
};
use crate::{Field, Layout, ShmSafe};
use core::mem::offset_of;

/// Set in a counter word when some caller sleeps on it (or is about to): the next
/// store to the word wakes them.
const SLEEPERS: u32 = 1 << 31;
/// Set in `tail` and `head` once the queue is closed.
const CLOSED: u32 = 1 << 30;
/// The count in a counter word.
const COUNT: u32 = CLOSED - 1;

/// A fixed-capacity, multi-producer multi-consumer FIFO queue of [`Pod`] items, shared
/// between threads, processes or tasks: Python's `Queue(maxsize=N)`, with
/// `JoinableQueue`'s [`task_done`](Self::task_done) and [`join`](Self::join), and
/// Python 3.13's `shutdown` as [`close`](Self::close).
///
/// Items are copied in and out by value. `#[repr(C)]`, atomics only, no pointers: a
/// [`Lock`], three counter words, and `N` slots of `T`'s size (rounded up to 4 bytes).
///
/// # What a death can do
///
/// A participant killed at any instruction inside a call never wedges the queue for
/// the others (see [below](Self#how-it-survives-a-death) for why):
///
/// - an item is delivered whole exactly once, or not at all; a half-written slot is
///   never read;
/// - an item whose `put` returned `Ok` stays in the queue until a `get` takes it;
/// - an item whose `put` was killed is either in the queue, whole, or not;
/// - an item whose `get` was killed after it was taken off the queue but before the
///   caller saw it is lost: it was delivered to the dead consumer, to nobody else;
/// - a task whose consumer died before its [`task_done`](Self::task_done) is never
///   done: [`join`](Self::join) then waits for ever, so a joiner that must survive dead
///   consumers uses [`join_timeout`](Self::join_timeout) and
///   [`unfinished_tasks`](Self::unfinished_tasks) to see how many are missing;
/// - a sleeper whose wake-up died with its sender looks again on its own within
///   [`Owner::RECHECK_NS`] (50 ms with the hosted crate).
///
/// A process stopped (`SIGSTOP`) inside a call holds the internal lock: the others'
/// timed calls time out, their `try_` calls give up after a moment (100 µs) with
/// `Full`/`Empty`, and their blocking calls wait for it.
///
/// # How it survives a death
///
/// Every change happens under one internal robust [`Lock`], and each operation
/// commits with a single store:
///
/// | word   | holds                                   | its store commits  | who sleeps on it |
/// |--------|-----------------------------------------|--------------------|------------------|
/// | `tail` | items ever put (a count), `CLOSED`      | a put; a close     | getters          |
/// | `head` | items ever taken, `CLOSED`              | a get              | putters          |
/// | `done` | tasks ever marked done                  | a `task_done`      | joiners          |
///
/// The items in the queue are the slots from `head` to `tail`. A put copies its item
/// into the slot at `tail`, then advances `tail`; a get copies the item at `head` out,
/// then advances `head`. A process killed at any instruction in between leaves one of
/// two states, both consistent: before the commit store (a slot beyond `tail` may be
/// half-written, and is never read; an item copied out by a get is still in the queue),
/// or after it. Its lock is then marked by the owner backend (with the hosted crate's,
/// by the kernel), and the next caller finds nothing to repair but a close half done
/// (`CLOSED` is set in `tail` first, then in `head`), which it completes. The slots are
/// claimed and published in the same step, under the lock: there is no claimed slot
/// that a dead producer could leave unpublished.
///
/// A lock-free ring (a sequence number per slot, producers claiming slots with a
/// compare-and-swap, in the manner of Vyukov's queue) lets producers and consumers
/// overlap, but a producer killed between its claim and its publish leaves a slot that
/// every consumer must wait at for ever, and telling a dead claimer from a slow one
/// needs the same robust ownership per slot that the lock gives here for the whole
/// queue. The lock's critical sections are a few dozen instructions.
///
/// Measured between processes on a 2-vCPU VM (the benchmark crate): 6 to 8 million
/// `u64` items a second from one producer to one consumer, about 4.6× a pipe carrying
/// the same 8-byte items, and about 100 ns of CPU per item for both sides together. A
/// variant with two locks, producers and consumers each on their own lock and cache
/// line (the two-lock queue of Michael and Scott), cost 10 to 15% more CPU per item
/// (its commits and announcements need read-modify-writes where one lock makes plain
/// stores enough), and its throughput, measured on the same 2 vCPUs while they were
/// busy with other work, was no higher.
///
/// A sleeper marks the word it sleeps on (`SLEEPERS`, under the lock), and the commit
/// that changes that word wakes every sleeper on it, so a wake-up is never lost between
/// a look and a sleep. A waker killed between its commit and its wake-up call leaves
/// the sleepers asleep: they look again on their own every
/// [`Owner::RECHECK_NS`](crate::Owner::RECHECK_NS) (50 ms with the hosted crate).
///
/// # Order
///
/// Items come out in the order they went in, whoever put them (so FIFO per producer).
/// [`qsize`](Self::qsize), [`empty`](Self::empty) and [`full`](Self::full) are
/// snapshots that may be stale as soon as they return, as in Python.
///
/// # Example
///
/// ```
/// use shmsync_core::spin::Queue;
/// use shmsync_core::{GetError, PutError};
///
/// let q: Queue<u64, 2> = Queue::new();
/// q.put(1).unwrap();
/// q.try_put(2).unwrap();
/// assert_eq!(q.try_put(3), Err(PutError::Full(3)));
/// assert_eq!((q.qsize(), q.full()), (2, true));
/// assert_eq!(q.get(), Ok(1));
/// assert_eq!(q.try_get(), Ok(2));
/// assert_eq!(q.try_get(), Err(GetError::Empty));
///
/// // JoinableQueue: one task_done per item taken.
/// assert_eq!(q.unfinished_tasks(), 2);
/// q.task_done().unwrap();
/// q.task_done().unwrap();
/// q.join(); // returns at once: every task is done
/// ```
#[repr(C)]
pub struct Queue<T: Pod, const N: usize, W, O: Owner> {
    /// Serialises every change of the words and the slots.
    lock: Lock<W, O>,
    /// Items put, counted modulo [`Self::LAP`]; `CLOSED`; `SLEEPERS` (getters).
    tail: AtomicU32,
    /// Items taken, counted modulo [`Self::LAP`]; `CLOSED`; `SLEEPERS` (putters).
    head: AtomicU32,
    /// Tasks done, counted modulo [`Self::LAP`]; `SLEEPERS` (joiners).
    done: AtomicU32,
    slots: [Slot<T>; N],
}

impl<T: Pod, const N: usize, W, O: Owner> Queue<T, N, W, O> {
    /// The largest capacity `N`.
    pub const MAX_CAPACITY: usize = MAX_CAPACITY as usize;

    /// Refuses, at compile time, a capacity of 0 or above [`Self::MAX_CAPACITY`].
    const CAPACITY_CHECK: () = assert!(
        N > 0 && N <= Self::MAX_CAPACITY,
        "a Queue holds from 1 to 2^29 items"
    );

    /// The counts run modulo the largest multiple of `N` that fits in their 30 bits, so
    /// that count % N names the same slot across the wrap.
    const LAP: u32 = lap(N as u32);

    const_fn! {
        /// An empty, open queue of capacity `N` (Python's `Queue(maxsize=N)`).
        ///
        /// A capacity of 0 or above [`MAX_CAPACITY`](Self::MAX_CAPACITY) does not
        /// compile.
        pub fn new() -> Self {
            #[allow(clippy::let_unit_value)] // evaluated for its compile-time check
            let () = Self::CAPACITY_CHECK;
            Queue {
                lock: Lock::new(),
                tail: AtomicU32::new(0),
                head: AtomicU32::new(0),
                done: AtomicU32::new(0),
                slots: Slot::array(),
            }
        }
    }

    /// How many items it holds at most: `N` (Python's `maxsize`).
    pub const fn capacity(&self) -> usize {
        N
    }

    /// How many items it holds right now (Python's `qsize()`): a snapshot.
    pub fn qsize(&self) -> usize {
        // `head` first: `tail` never falls behind it, so the difference is never
        // negative, however many calls run between the two loads.
        let head = self.head.load(Ordering::Acquire);
        let tail = self.tail.load(Ordering::Acquire);
        Self::distance(tail, head).min(N as u32) as usize
    }

    /// Whether it holds no item right now (Python's `empty()`): a snapshot.
    pub fn empty(&self) -> bool {
        self.qsize() == 0
    }

    /// Whether it holds `N` items right now (Python's `full()`): a snapshot.
    pub fn full(&self) -> bool {
        self.qsize() == N
    }

    /// Whether it was [closed](Self::close) (Python 3.13's `is_shutdown`).
    pub fn is_closed(&self) -> bool {
        self.tail.load(Ordering::Acquire) & CLOSED != 0
    }

    /// Items put and not yet marked done by [`task_done`](Self::task_done), whether
    /// they are still in the queue or were taken (`JoinableQueue`'s count of unfinished
    /// tasks). Counts up to 2^29; past that it wraps.
    pub fn unfinished_tasks(&self) -> usize {
        let done = self.done.load(Ordering::Acquire);
        let tail = self.tail.load(Ordering::Acquire);
        Self::distance(tail, done) as usize
    }

    /// What its counter words say right now, read without its lock: for diagnostics.
    /// The words are read one after the other while others may change them.
    ///
    /// ```
    /// use shmsync_core::spin::Queue;
    ///
    /// let q: Queue<u32, 4> = Queue::new();
    /// q.put(7).unwrap();
    /// let state = q.state();
    /// assert_eq!((state.len, state.capacity, state.unfinished_tasks), (1, 4, 1));
    /// assert!(!state.closed);
    /// ```
    pub fn state(&self) -> QueueState {
        let head = self.head.load(Ordering::Acquire);
        let tail = self.tail.load(Ordering::Acquire);
        let done = self.done.load(Ordering::Acquire);
        QueueState::from_words(N, tail, head, done)
    }

    /// `later - earlier` for two counts modulo [`Self::LAP`].
    fn distance(later: u32, earlier: u32) -> u32 {
        distance(later, earlier, Self::LAP)
    }

    /// `word` with its count advanced by one and `SLEEPERS` cleared (the store of it
    /// wakes them).
    fn advance(word: u32) -> u32 {
        let count = word & COUNT;
        let next = if count + 1 >= Self::LAP { 0 } else { count + 1 };
        word & CLOSED | next
    }

    /// The slot of count `word`.
    fn slot(&self, word: u32) -> &Slot<T> {
        &self.slots[(word & COUNT) as usize % N]
    }
}

/// The lap of a queue of `capacity` slots (from 1 to 2^29): the counts run modulo the
/// largest multiple of `capacity` that fits in their 30 bits.
const fn lap(capacity: u32) -> u32 {
    capacity * ((COUNT + 1) / capacity)
}

/// `later - earlier` for two counts modulo `lap`.
fn distance(later: u32, earlier: u32, lap: u32) -> u32 {
    let (later, earlier) = (later & COUNT, earlier & COUNT);
    if later >= earlier {
        later - earlier
    } else {
        later.wrapping_add(lap).wrapping_sub(earlier)
    }
}

/// What a [`Queue`]'s counter words say: [`Queue::state`], or
/// [`from_words`](Self::from_words) for a program that reads a queue's bytes without
/// its type.
///
/// # Example
///
/// ```
/// use shmsync_core::QueueState;
///
/// // 5 items put, 2 taken, 1 marked done, in a queue of 4 slots.
/// let state = QueueState::from_words(4, 5, 2, 1);
/// assert_eq!((state.len, state.unfinished_tasks), (3, 4));
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct QueueState {
    /// Items in the queue (Python's `qsize()`).
    pub len: usize,
    /// Its capacity `N`.
    pub capacity: usize,
    /// Whether it was [closed](Queue::close).
    pub closed: bool,
    /// Items put and not yet marked done ([`Queue::unfinished_tasks`]).
    pub unfinished_tasks: usize,
    /// Whether some getter has said it sleeps waiting for an item.
    pub getters_sleep: bool,
    /// Whether some putter has said it sleeps waiting for room.
    pub putters_sleep: bool,
    /// Whether some joiner has said it sleeps waiting for every task to be done.
    pub joiners_sleep: bool,
}

impl QueueState {
    /// What the counter words `tail`, `head` and `done` of a queue of `capacity` slots
    /// say, for a program that reads a queue's bytes without its type (the queue's
    /// [layout](crate::Layout) names the words and where they are), as the `shmsync`
    /// command does. Any words make a state; a capacity of 0 or above
    /// [`Queue::MAX_CAPACITY`] (no queue's) makes one with every count 0.
    pub fn from_words(capacity: usize, tail: u32, head: u32, done: u32) -> QueueState {
        let lap = match u32::try_from(capacity) {
            Ok(slots @ 1..=MAX_CAPACITY) => lap(slots),
            _ => 0,
        };
        let count = |later, earlier| match lap {
            0 => 0,
            lap => distance(later, earlier, lap) as usize,
        };
        QueueState {
            len: count(tail, head).min(capacity),
            capacity,
            closed: tail & CLOSED != 0,
            unfinished_tasks: count(tail, done),
            getters_sleep: tail & SLEEPERS != 0,
            putters_sleep: head & SLEEPERS != 0,
            joiners_sleep: done & SLEEPERS != 0,
        }
    }
}

/// The largest capacity of a queue, as a word.
const MAX_CAPACITY: u32 = 1 << 29;

/// What stopped one attempt.
enum Blocked {
    /// No room (for a put), no item (for a get), or tasks still unfinished (for a
    /// join): wait while the word slept on holds this value (announced, if asked).
    Waiting(u32),
    /// The queue is closed (and, for a get, empty).
    Closed,
    /// The internal lock was not had by the deadline.
    Busy,
    /// The model checker killed the caller (never outside it).
    Killed,
}

/// How long a call waits: for the internal lock, and for room, an item or the tasks.
#[derive(Clone, Copy)]
enum Patience {
    /// For the lock only a moment, for the rest not at all (the `try_` forms).
    Now,
    /// Until this time on the backend's clock.
    Until(u64),
    /// For ever.
    Forever,
}

impl Patience {
    /// Until when the call waits for the internal lock.
    fn for_lock<W: Wait>(self) -> Option<u64> {
        match self {
            Patience::Now => Some(W::now().saturating_add(MOMENT_NS)),
            Patience::Until(deadline) => Some(deadline),
            Patience::Forever => None,
        }
    }
}

/// Under the model checker, where a model may kill the caller at `$point`: stops the
/// operation there, as a death would (the lock stays held by the dead).
macro_rules! or_die {
    ($point:ident $(, $guard:expr)?) => {
        if !survives(KillPoint::$point) {
            $(core::mem::forget($guard);)?
            return Err(Blocked::Killed);
        }
    };
}

impl<T: Pod, const N: usize, W: Wait, O: Owner> Queue<T, N, W, O> {
    /// Puts `item` at the back, blocking while the queue is full. [`Closed`], with the
    /// item, if the queue is closed (also while this call waits).
    pub fn put(&self, item: T) -> Result<(), Closed<T>> {
        self.put_with(item, Patience::Forever)
            .map_err(|e| Closed(e.into_inner()))
    }

    /// Puts `item` if there is room right now (Python's `put_nowait`). Waits a moment
    /// (100 µs) at most for the internal lock, which other calls hold only for a few
    /// dozen instructions; if a stopped process holds it longer, the queue counts as
    /// full.
    pub fn try_put(&self, item: T) -> Result<(), PutError<T>> {
        self.put_with(item, Patience::Now)
    }

    /// Takes the item at the front, blocking while the queue is empty. [`Closed`] once
    /// the queue is closed and empty (also while this call waits).
    pub fn get(&self) -> Result<T, Closed> {
        self.get_with(Patience::Forever).map_err(|_| Closed(()))
    }

    /// Takes the item at the front if there is one right now (Python's `get_nowait`).
    /// Waits for the internal lock as [`try_put`](Self::try_put) does; if a stopped
    /// process holds it, the queue counts as empty.
    pub fn try_get(&self) -> Result<T, GetError> {
        self.get_with(Patience::Now)
    }

    /// Closes the queue (Python 3.13's `shutdown()`): every `put` from now on, and every
    /// one waiting, fails with [`Closed`] and gives its item back; `get` takes the items
    /// still in the queue, then fails with `Closed`, and so does every get waiting on an
    /// empty queue. [`join`](Self::join) is unaffected: it still waits for the tasks.
    /// Closing a closed queue does nothing.
    pub fn close(&self) {
        let guard = self.enter_for_good();
        let tail = self.tail.load(Ordering::Relaxed);
        if tail & CLOSED == 0 {
            // The commit; `head` follows so that putters asleep on it see the change
            // (a death in between is completed by `repair`).
            self.tail.store(tail | CLOSED, Ordering::Release);
            let head = self.head.load(Ordering::Relaxed);
            self.head.store(head | CLOSED, Ordering::Release);
        }
        drop(guard);
        W::wake_all(&self.tail);
        W::wake_all(&self.head);
    }

    /// Marks one task done (`JoinableQueue.task_done()`): call it once for each item
    /// taken, when the work on it is finished; [`join`](Self::join) returns once every
    /// item put has been marked. [`NoTaskPending`] if there are more calls than items
    /// put.
    pub fn task_done(&self) -> Result<(), NoTaskPending> {
        let guard = self.enter_for_good();
        let done = self.done.load(Ordering::Relaxed);
        if Self::distance(self.tail.load(Ordering::Relaxed), done) == 0 {
            return Err(NoTaskPending);
        }
        self.done.store(Self::advance(done), Ordering::Release); // the commit
        drop(guard);
        if done & SLEEPERS != 0 {
            W::wake_all(&self.done);
        }
        Ok(())
    }

    /// Blocks until every item put has been marked done with
    /// [`task_done`](Self::task_done) (`JoinableQueue.join()`). A task whose consumer
    /// died before marking it is never done: see
    /// [what a death can do](Self#what-a-death-can-do), and
    /// [`join_timeout`](Self::join_timeout).
    pub fn join(&self) {
        let _ = self.join_with(Patience::Forever);
    }

    fn put_with(&self, item: T, patience: Patience) -> Result<(), PutError<T>> {
        let lock_deadline = patience.for_lock::<W>();
        match self.persist(patience, &self.head, |announce| {
            self.put_once(&item, lock_deadline, announce)
        }) {
            Ok(()) => Ok(()),
            Err(Blocked::Closed | Blocked::Killed) => Err(PutError::Closed(item)),
            Err(Blocked::Waiting(_) | Blocked::Busy) => Err(PutError::Full(item)),
        }
    }

    fn get_with(&self, patience: Patience) -> Result<T, GetError> {
        let lock_deadline = patience.for_lock::<W>();
        self.persist(patience, &self.tail, |announce| {
            self.get_once(lock_deadline, announce)
        })
        .map_err(|blocked| match blocked {
            Blocked::Closed | Blocked::Killed => GetError::Closed,
            Blocked::Waiting(_) | Blocked::Busy => GetError::Empty,
        })
    }

    /// Whether every task was done in time.
    fn join_with(&self, patience: Patience) -> bool {
        let lock_deadline = patience.for_lock::<W>();
        self.persist(patience, &self.done, |announce| {
            self.join_once(lock_deadline, announce)
        })
        .is_ok()
    }

    /// Makes `attempt`s until one succeeds, stops for good, or `patience` runs out,
    /// sleeping on `word` in between. An attempt told to announce marks `word` so that
    /// the store that changes it wakes us.
    fn persist<R>(
        &self,
        patience: Patience,
        word: &AtomicU32,
        mut attempt: impl FnMut(bool) -> Result<R, Blocked>,
    ) -> Result<R, Blocked> {
        let deadline = match patience {
            Patience::Now => return attempt(false),
            Patience::Until(deadline) => Some(deadline),
            Patience::Forever => None,
        };
        let mut spun = false;
        loop {
            let observed = match attempt(spun) {
                Err(Blocked::Waiting(observed)) => observed,
                done => return done,
            };
            if expired::<W>(deadline) {
                return Err(Blocked::Waiting(observed));
            }
            if !spun {
                // A partner that answers within the spin saves both sides a system
                // call; only then does the next attempt announce us.
                spun = true;
                spin_while::<W>(Awaiting::Answer, || {
                    word.load(Ordering::Acquire) == observed
                });
                continue;
            }
            W::wait(word, observed, next_look::<W>(deadline, O::RECHECK_NS));
        }
    }

    /// One attempt at a put.
    fn put_once(
        &self,
        item: &T,
        lock_deadline: Option<u64>,
        announce: bool,
    ) -> Result<(), Blocked> {
        let guard = self.enter(lock_deadline).ok_or(Blocked::Busy)?;
        or_die!(Locked, guard);
        let tail = self.tail.load(Ordering::Relaxed);
        if tail & CLOSED != 0 {
            return Err(Blocked::Closed);
        }
        let head = self.head.load(Ordering::Relaxed);
        if Self::distance(tail, head) >= N as u32 {
            return Err(Blocked::Waiting(Self::announce(&self.head, head, announce)));
        }
        if !self.slot(tail).write(item) {
            core::mem::forget(guard);
            return Err(Blocked::Killed);
        }
        or_die!(BeforeCommit, guard);
        // The commit: from this store on, the item is in the queue.
        self.tail.store(Self::advance(tail), Ordering::Release);
        or_die!(Committed, guard);
        drop(guard);
        or_die!(Unlocked);
        if tail & SLEEPERS != 0 {
            W::wake_all(&self.tail);
        }
        Ok(())
    }

    /// One attempt at a get.
    fn get_once(&self, lock_deadline: Option<u64>, announce: bool) -> Result<T, Blocked> {
        let guard = self.enter(lock_deadline).ok_or(Blocked::Busy)?;
        or_die!(Locked, guard);
        let head = self.head.load(Ordering::Relaxed);
        let tail = self.tail.load(Ordering::Relaxed);
        if Self::distance(tail, head) == 0 {
            if tail & CLOSED != 0 {
                return Err(Blocked::Closed);
            }
            return Err(Blocked::Waiting(Self::announce(&self.tail, tail, announce)));
        }
        let item = self.slot(head).read();
        or_die!(BeforeCommit, guard);
        // The commit: from this store on, the item is the caller's and nobody else's.
        self.head.store(Self::advance(head), Ordering::Release);
        or_die!(Committed, guard);
        drop(guard);
        or_die!(Unlocked);
        if head & SLEEPERS != 0 {
            W::wake_all(&self.head);
        }
        Ok(item)
    }

    /// One look at whether every task is done.
    fn join_once(&self, lock_deadline: Option<u64>, announce: bool) -> Result<(), Blocked> {
        let _guard = self.enter(lock_deadline).ok_or(Blocked::Busy)?;
        let done = self.done.load(Ordering::Relaxed);
        if Self::distance(self.tail.load(Ordering::Relaxed), done) == 0 {
            return Ok(());
        }
        Err(Blocked::Waiting(Self::announce(&self.done, done, announce)))
    }

    /// The value to sleep on `word` (which holds `current`, under the lock), marked so
    /// that its next store wakes the sleeper if `announce`.
    fn announce(word: &AtomicU32, current: u32, announce: bool) -> u32 {
        if !announce || current & SLEEPERS != 0 {
            return current;
        }
        word.store(current | SLEEPERS, Ordering::Relaxed);
        current | SLEEPERS
    }

    /// Takes the internal lock, waiting until `deadline` (`None`: for ever), and
    /// completes what a holder that died left half done.
    fn enter(&self, deadline: Option<u64>) -> Option<LockGuard<'_, W, O>> {
        let (guard, died) = self.lock.enter_internal(deadline, &self.tail)?;
        if died {
            self.repair();
            guard.mark_consistent();
        }
        Some(guard)
    }

    /// [`enter`](Self::enter) with no deadline, which always gets the lock.
    fn enter_for_good(&self) -> LockGuard<'_, W, O> {
        // Without a deadline `enter` only returns with the guard; the loop says so
        // without a panic path.
        loop {
            if let Some(guard) = self.enter(None) {
                return guard;
            }
        }
    }

    /// Under the lock, after its holder died: each operation commits with one store, so
    /// the words are as before or after it, but for a close, whose second store
    /// (`head`'s) is done here. The dead may have committed without waking its
    /// sleepers: all of them are woken, to look again.
    fn repair(&self) {
        let tail = self.tail.load(Ordering::Relaxed);
        let head = self.head.load(Ordering::Relaxed);
        if tail & CLOSED != 0 && head & CLOSED == 0 {
            self.head.store(head | CLOSED, Ordering::Release);
        }
        W::wake_all(&self.tail);
        W::wake_all(&self.head);
        W::wake_all(&self.done);
    }
}

/// The timed forms, for a backend with a clock ([`Timed`]).
impl<T: Pod, const N: usize, W: Timed, O: Owner> Queue<T, N, W, O> {
    /// Puts `item`, waiting at most `timeout` for room (Python's `put(item,
    /// timeout=...)`). [`PutError::Full`] if there was none in time.
    pub fn put_timeout(&self, item: T, timeout: Duration) -> Result<(), PutError<T>> {
        self.put_with(item, Patience::Until(deadline_after::<W>(timeout)))
    }

    /// Takes the item at the front, waiting at most `timeout` for one (Python's
    /// `get(timeout=...)`). [`GetError::Empty`] if none came in time.
    pub fn get_timeout(&self, timeout: Duration) -> Result<T, GetError> {
        self.get_with(Patience::Until(deadline_after::<W>(timeout)))
    }

    /// Like [`join`](Self::join), waiting at most `timeout`. Returns whether every task
    /// was done; if not, [`unfinished_tasks`](Self::unfinished_tasks) says how many are
    /// missing (a consumer that died holding a task never marks it).
    pub fn join_timeout(&self, timeout: Duration) -> bool {
        self.join_with(Patience::Until(deadline_after::<W>(timeout)))
    }
}

#[cfg(feature = "embassy")]
impl<T: Pod, const N: usize, W: crate::WakeTasks, O: Owner> Queue<T, N, W, O> {
    /// The async form of [`put`](Self::put), for tasks of one executor: it waits for
    /// room by yielding to the executor. Dropping the future before it completes puts
    /// nothing. For a timeout, race it against a timer (`embassy_time::with_timeout`).
    pub async fn put_async(&self, item: T) -> Result<(), Closed<T>> {
        let outcome = self
            .poll_until(&self.head, |announce| {
                self.put_once(&item, Some(0), announce)
            })
            .await;
        outcome.map_err(|_| Closed(item))
    }

    /// The async form of [`get`](Self::get). Dropping the future before it completes
    /// takes nothing.
    pub async fn get_async(&self) -> Result<T, Closed> {
        let outcome = self
            .poll_until(&self.tail, |announce| self.get_once(Some(0), announce))
            .await;
        outcome.map_err(|_| Closed(()))
    }

    /// The async form of [`join`](Self::join).
    pub async fn join_async(&self) {
        let _ = self
            .poll_until(&self.done, |announce| self.join_once(Some(0), announce))
            .await;
    }

    /// Polls `attempt` (announced on `word`, registered there first so that the store
    /// that changes it wakes the task) until it succeeds or stops for good.
    async fn poll_until<R>(
        &self,
        word: &AtomicU32,
        mut attempt: impl FnMut(bool) -> Result<R, Blocked>,
    ) -> Result<R, Blocked> {
        core::future::poll_fn(|cx| {
            W::register(word, cx.waker());
            match attempt(true) {
                Err(Blocked::Waiting(_)) => core::task::Poll::Pending,
                // Another task, interrupt or core is inside a call for a few
                // instructions: look again soon.
                Err(Blocked::Busy) => {
                    cx.waker().wake_by_ref();
                    core::task::Poll::Pending
                }
                outcome => core::task::Poll::Ready(outcome),
            }
        })
        .await
    }
}

impl<T: Pod, const N: usize, W, O: Owner> Default for Queue<T, N, W, O> {
    fn default() -> Self {
        Self::new()
    }
}

impl<T: Pod, const N: usize, W, O: Owner> fmt::Debug for Queue<T, N, W, O> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Queue")
            .field("qsize", &self.qsize())
            .field("capacity", &N)
            .field("closed", &self.is_closed())
            .finish()
    }
}

// SAFETY: `#[repr(C)]`: a `Lock` (`ShmSafe`), atomics, and slots whose bytes are only
// ever accessed through atomics, of `Pod` items (no addresses, any bytes valid). The
// layout names every field, the counter words as the `u32`s they are, and declares the
// whole accessed atomically: the words are atomics, the slots copied through atomics.
unsafe impl<T: Pod, const N: usize, W: Wait, O: Owner> ShmSafe for Queue<T, N, W, O> {
    const LAYOUT: Layout = Layout::structure::<Self>(
        "shmsync_core::Queue",
        &[
            Field::new(
                "lock",
                offset_of!(Self, lock),
                &<Lock<W, O> as ShmSafe>::LAYOUT,
            ),
            Field::new("tail", offset_of!(Self, tail), &<u32 as ShmSafe>::LAYOUT),
            Field::new("head", offset_of!(Self, head), &<u32 as ShmSafe>::LAYOUT),
            Field::new("done", offset_of!(Self, done), &<u32 as ShmSafe>::LAYOUT),
            Field::new(
                "slots",
                offset_of!(Self, slots),
                &<[Slot<T>; N] as ShmSafe>::LAYOUT,
            ),
        ],
    )
    .accessed_atomically();
}

// SAFETY: `#[repr(C)]`, one `Pod` item's bytes (then padding to 4), only ever accessed
// through atomics (see `Slot`).
unsafe impl<T: Pod> ShmSafe for Slot<T> {
    const LAYOUT: Layout = Layout::structure::<Self>(
        "shmsync_core::queue::Slot",
        &[Field::new("item", 0, &T::LAYOUT)],
    )
    .accessed_atomically();
}

#[cfg(not(loom))]
type Bytes<T> = core::cell::UnsafeCell<MaybeUninit<T>>;
#[cfg(loom)]
type Bytes<T> = loom::cell::UnsafeCell<MaybeUninit<T>>;

/// One item's bytes in shared memory. Read and written only through atomics, a 4-byte
/// word at a time and then byte by byte (under loom, by plain copies that the model
/// checks for races), and only under the queue's lock. Never uninitialised: zeroed at
/// first, and every write is of a [`Pod`] item, which has no padding.
#[repr(C, align(4))]
struct Slot<T> {
    bytes: Bytes<T>,
}

// SAFETY: the bytes are only ever accessed through atomics (see `store_word` and the
// like), so sharing a slot between threads is no data race; they hold a `Pod` item,
// which has no addresses or thread-local handles.
unsafe impl<T: Send> Sync for Slot<T> {}

impl<T: Pod> Slot<T> {
    #[cfg(not(loom))]
    #[allow(clippy::declare_interior_mutable_const)] // a fresh value per slot
    const EMPTY: Self = Slot {
        bytes: core::cell::UnsafeCell::new(MaybeUninit::zeroed()),
    };

    #[cfg(not(loom))]
    const fn array<const N: usize>() -> [Self; N] {
        [Self::EMPTY; N]
    }

    #[cfg(loom)]
    fn array<const N: usize>() -> [Self; N] {
        core::array::from_fn(|_| Slot {
            bytes: loom::cell::UnsafeCell::new(MaybeUninit::zeroed()),
        })
    }

    /// Copies `item` into the slot. Returns `false` where the model checker killed the
    /// caller part-way.
    fn write(&self, item: &T) -> bool {
        let source = (item as *const T).cast::<u8>();
        #[cfg(not(loom))]
        // SAFETY: the slot's bytes, 4-aligned and `size_of::<T>()` long, accessed only
        // atomically; `source` is a whole `T`, whose every byte is initialised (`Pod`).
        return unsafe { copy_in(self.bytes.get().cast::<u8>(), source, size_of::<T>()) };
        #[cfg(loom)]
        // SAFETY: as above; loom checks that no access races with this one.
        return self
            .bytes
            .with_mut(|bytes| unsafe { copy_in(bytes.cast::<u8>(), source, size_of::<T>()) });
    }

    /// Copies the item out of the slot.
    fn read(&self) -> T {
        let mut item = MaybeUninit::<T>::uninit();
        let target = item.as_mut_ptr().cast::<u8>();
        #[cfg(not(loom))]
        // SAFETY: as in `write`; `target` is a `T`'s worth of bytes of our own.
        unsafe {
            copy_out(target, self.bytes.get().cast::<u8>(), size_of::<T>())
        };
        #[cfg(loom)]
        // SAFETY: as above; loom checks that no access races with this one.
        self.bytes
            .with(|bytes| unsafe { copy_out(target, bytes.cast::<u8>(), size_of::<T>()) });
        // SAFETY: `copy_out` wrote every byte, and every bit pattern is a `T` (`Pod`).
        unsafe { item.assume_init() }
    }
}

/// Copies `size` bytes from `source` into the slot at `slot`: 4-byte words, then the
/// bytes left. Returns `false` where the model checker killed the caller after the
/// first of several words.
///
/// # Safety
///
/// `slot` is 4-aligned, valid for `size` bytes, initialised, and accessed by others
/// only through atomics; `source` is valid for reading `size` initialised bytes.
unsafe fn copy_in(slot: *mut u8, source: *const u8, size: usize) -> bool {
    let words = size / 4;
    for i in 0..words {
        // SAFETY: within `source`, which may be unaligned.
        let word = unsafe { source.add(4 * i).cast::<u32>().read_unaligned() };
        // SAFETY: within the slot, 4-aligned.
        unsafe { store_word(slot.add(4 * i), word) };
        if i == 0 && words > 1 && !survives(KillPoint::HalfWritten) {
            return false;
        }
    }
    for i in 4 * words..size {
        // SAFETY: within both.
        unsafe { store_byte(slot.add(i), source.add(i).read()) };
    }
    true
}

/// Copies `size` bytes out of the slot at `slot` into `target`.
///
/// # Safety
///
/// As [`copy_in`]; `target` is valid for writing `size` bytes.
unsafe fn copy_out(target: *mut u8, slot: *const u8, size: usize) {
    let words = size / 4;
    for i in 0..words {
        // SAFETY: within the slot (4-aligned) and within `target` (maybe unaligned).
        unsafe {
            let word = load_word(slot.add(4 * i));
            target.add(4 * i).cast::<u32>().write_unaligned(word);
        }
    }
    for i in 4 * words..size {
        // SAFETY: within both.
        unsafe { target.add(i).write(load_byte(slot.add(i))) };
    }
}

// Relaxed: the queue's lock orders every access to a slot.

/// # Safety
/// `at` is 4-aligned, valid, initialised, and accessed by others only atomically.
#[cfg(not(loom))]
unsafe fn store_word(at: *mut u8, word: u32) {
    // SAFETY: the caller's promise is `from_ptr`'s.
    unsafe { portable_atomic::AtomicU32::from_ptr(at.cast()) }.store(word, Ordering::Relaxed);
}

/// # Safety
/// As [`store_word`].
#[cfg(not(loom))]
unsafe fn load_word(at: *const u8) -> u32 {
    // SAFETY: the caller's promise is `from_ptr`'s; the atomic is only loaded from.
    unsafe { portable_atomic::AtomicU32::from_ptr(at.cast_mut().cast()) }.load(Ordering::Relaxed)
}

/// # Safety
/// `at` is valid, initialised, and accessed by others only atomically.
#[cfg(not(loom))]
unsafe fn store_byte(at: *mut u8, byte: u8) {
    // SAFETY: the caller's promise is `from_ptr`'s.
    unsafe { portable_atomic::AtomicU8::from_ptr(at) }.store(byte, Ordering::Relaxed);
}

/// # Safety
/// As [`store_byte`].
#[cfg(not(loom))]
unsafe fn load_byte(at: *const u8) -> u8 {
    // SAFETY: the caller's promise is `from_ptr`'s; the atomic is only loaded from.
    unsafe { portable_atomic::AtomicU8::from_ptr(at.cast_mut()) }.load(Ordering::Relaxed)
}

/// # Safety
/// `at` is 4-aligned and valid: loom hands out the slot's pointer for one access.
#[cfg(loom)]
unsafe fn store_word(at: *mut u8, word: u32) {
    // SAFETY: the caller's promise.
    unsafe { at.cast::<u32>().write(word) }
}

/// # Safety
/// As [`store_word`].
#[cfg(loom)]
unsafe fn load_word(at: *const u8) -> u32 {
    // SAFETY: the caller's promise.
    unsafe { at.cast::<u32>().read() }
}

/// # Safety
/// `at` is valid: loom hands out the slot's pointer for one access.
#[cfg(loom)]
unsafe fn store_byte(at: *mut u8, byte: u8) {
    // SAFETY: the caller's promise.
    unsafe { at.write(byte) }
}

/// # Safety
/// As [`store_byte`].
#[cfg(loom)]
unsafe fn load_byte(at: *const u8) -> u8 {
    // SAFETY: the caller's promise.
    unsafe { at.read() }
}

#[cfg(all(test, not(loom)))]
mod tests {
    use super::*;
    use crate::{Spin, Unowned};

    /// A queue whose counts stand `before` steps short of where they wrap.
    fn near_the_wrap<const N: usize>(before: u32) -> Queue<u32, N, Spin, Unowned> {
        let q = Queue::new();
        let start = Queue::<u32, N, Spin, Unowned>::LAP - before;
        for word in [&q.tail, &q.head, &q.done] {
            word.store(start, Ordering::Relaxed);
        }
        q
    }

    fn through_the_wrap<const N: usize>() {
        let q = near_the_wrap::<N>(2 * N as u32);
        let mut next = 0;
        for round in 0..4 * N as u32 {
            // Fill it, then take all but one: the items in it straddle the wrap.
            while q.try_put(round * 1000 + next).is_ok() {
                next += 1;
            }
            assert_eq!(q.qsize(), N);
            let mut expected = round * 1000 + next - N as u32;
            while q.qsize() > 1 {
                assert_eq!(q.try_get(), Ok(expected));
                q.task_done().unwrap();
                expected += 1;
            }
            assert_eq!(q.unfinished_tasks(), 1);
            // What a reader of the bytes sees, by the words alone, across the wrap.
            let state = q.state();
            assert_eq!((state.len, state.unfinished_tasks), (1, 1));
            assert_eq!(q.try_get(), Ok(expected));
            q.task_done().unwrap();
            assert_eq!(q.try_get(), Err(GetError::Empty));
            next = 0;
        }
    }

    #[test]
    fn the_counts_wrap_where_every_slot_keeps_its_place() {
        through_the_wrap::<1>();
        through_the_wrap::<3>(); // 2^30 is no multiple of 3: the lap is shorter
        through_the_wrap::<7>();
        through_the_wrap::<8>();
    }

    #[test]
    fn the_distance_between_counts_is_taken_around_the_lap() {
        type Q = Queue<u8, 3, Spin, Unowned>;
        let lap = Q::LAP;
        assert_eq!(lap % 3, 0);
        assert!(lap > (1 << 29) && lap <= 1 << 30);
        assert_eq!(Q::distance(1, lap - 2), 3);
        assert_eq!(Q::distance(5 | CLOSED | SLEEPERS, 2), 3);
        assert_eq!(Q::advance((lap - 1) | CLOSED | SLEEPERS), CLOSED);
    }

    /// A reader of another program's bytes gets a state from any words, never a panic.
    #[test]
    fn any_words_make_a_queue_state() {
        let state = QueueState::from_words(3, 1 | CLOSED | SLEEPERS, Q3_LAP - 2, 0);
        assert_eq!(
            (state.len, state.closed, state.getters_sleep),
            (3, true, true)
        );
        for capacity in [0, 1, 3, 1 << 29, (1 << 29) + 1, usize::MAX] {
            for word in [0, 1, COUNT, CLOSED, SLEEPERS, u32::MAX] {
                let state = QueueState::from_words(capacity, word, !word, word / 3);
                assert!(state.len <= capacity);
            }
        }
    }

    const Q3_LAP: u32 = Queue::<u8, 3, Spin, Unowned>::LAP;
}
