//! A readers-writer lock: many readers at once, or one writer, writers first. It
//! survives the death of a writer as [`Lock`] does, and of a reader without a trace.
//!
//! ```
//! use shmsync_core::spin::{RwLock, Value};
//!
//! static TABLE: RwLock = RwLock::new();
//! static LOW: Value<u32> = Value::new(0);
//! static HIGH: Value<u32> = Value::new(0);
//!
//! {
//!     let _writing = TABLE.write().unwrap();
//!     LOW.set(1);
//!     HIGH.set(2); // readers never see one without the other
//! }
//! let _reading = TABLE.read().unwrap();
//! assert_eq!((LOW.get(), HIGH.get()), (1, 2));
//! ```
//!
//! # How readers and writers are kept
//!
//! Each reader holds one of `READERS` slots for as long as it reads: a [`Lock`] of its
//! own, taken without waiting, so that with an owner-tracking backend the kernel frees a
//! dead reader's slot. Writers take the `writer` lock one at a time; the holder sets
//! WRITER in `state`, which turns new readers away, then waits for every occupied slot
//! to be given up (by locking it), then sets WRITING. A reader publishes its slot before
//! it looks at WRITER, and a writer publishes WRITER before it looks at the slots
//! (sequentially consistent fences between): one of the two always sees the other.
//!
//! | `state`    | meaning                                                          |
//! |------------|------------------------------------------------------------------|
//! | `WRITER`   | a writer holds `writer` and shuts readers out                    |
//! | `WRITING`  | it has waited out the readers and may be changing the data       |
//! | `SLEEPERS` | readers sleep on `state` until WRITER clears                     |
//! | `UNUSABLE` | a writer told `OwnerDied` gave the lock up unrepaired: not recoverable |
//!
//! A writer that dies before WRITING changed nothing: whoever takes `writer` next (a
//! writer, or a reader that found it dead) clears its WRITER and goes on, unharmed.
//! One that dies with WRITING set may have left the data half-written: whoever takes
//! `writer` next is told [`LockError::OwnerDied`], holding the write lock.

use core::fmt;
use core::marker::PhantomData;
use core::time::Duration;

use crate::error::{LockError, TryLockError};
use crate::fault::{ends_here_if_killed, KillPoint};
use crate::lock::{Lock, Taken};
use crate::owner::Owner;
use crate::sync::{fence, AtomicU32, Ordering};
use crate::wait::{deadline_after, expired, next_look, sleep_flagged, Timed, Wait};

const WRITER: u32 = 1;
const WRITING: u32 = 1 << 1;
const SLEEPERS: u32 = 1 << 2;
const UNUSABLE: u32 = 1 << 3;

/// A read: the reader's slot and the hold of its lock.
type Read<O> = (usize, <O as Owner>::Hold);
/// An outcome in holds, before guards are made of them (for `OwnerDied`, the write
/// lock's), of a call that may give up.
type Held<T, O> = Result<T, TryLockError<<O as Owner>::Hold>>;
/// The same, of a call that does not give up.
type Decided<T, O> = Result<T, LockError<<O as Owner>::Hold>>;

/// The deadline of a call that must not wait: one look.
const NOW: Option<u64> = Some(0);
/// How long a reader that found every slot taken waits on one before it looks at all of
/// them again.
const SLOT_LOOK_NS: u64 = 1_000_000;

/// A readers-writer lock: any number of readers up to `READERS` at once, or one writer.
///
/// A writer that is waiting for the readers inside to leave turns new readers away, so
/// that writers are not starved (writer-preferring, as glibc's
/// `PTHREAD_RWLOCK_PREFER_WRITER_NONRECURSIVE_NP`). Beyond `READERS` readers at once, a
/// new reader waits for one to leave.
///
/// Like [`Lock`], it does not own the data it protects (the data lives in atomics:
/// [`Value`](crate::Value), [`Array`](crate::Array)); it makes multi-step reads and
/// updates consistent. `#[repr(C)]`, atomics only, for a `static` or memory shared
/// between processes: a word, the writers' [`Lock`], and `READERS` more (8 bytes each
/// with [`Unowned`](crate::Unowned), 40 with the hosted crate).
///
/// A thread that holds a read and asks for the write lock, or the reverse, waits for
/// itself for ever; so may one that takes a second read while a writer waits (it is
/// turned away behind the writer, which waits for its first read), as with `std`.
///
/// # When a reader or writer dies
///
/// With an owner-tracking backend (the hosted crate's):
///
/// - a reader that dies reading frees its slot (the kernel marks the slot's lock): a
///   writer waiting for it goes in, and nothing is reported, since a reader changes
///   nothing;
/// - a writer that dies before it could change anything (waiting for the readers) is
///   forgotten: the readers it had turned away go in, and the next writer too;
/// - a writer that dies holding the write lock leaves the data perhaps half-written:
///   the next [`write`](Self::write), or a [`read`](Self::read) that finds it dead, is
///   told [`LockError::OwnerDied`] and holds the write lock, to check and repair the data
///   and [mark it consistent](RwLockWriteGuard::mark_consistent). Released unmarked, the
///   lock is [not recoverable](LockError::NotRecoverable), for readers too;
/// - readers turned away by a writer that then died learn it when next woken, or by
///   looking again every [`Owner::RECHECK_NS`] (50 ms in the hosted crate) if no other
///   writer comes.
///
/// # Example
///
/// ```
/// use shmsync_core::spin::RwLock;
/// use shmsync_core::TryLockError;
///
/// let lock = RwLock::new();
/// let first = lock.read().unwrap();
/// let second = lock.read().unwrap(); // readers share
/// assert!(matches!(lock.try_write(), Err(TryLockError::WouldBlock)));
/// drop((first, second));
/// let writing = lock.write().unwrap();
/// assert!(lock.try_read().is_err());
/// drop(writing);
/// ```
#[repr(C)]
pub struct RwLock<W, O: Owner, const READERS: usize> {
    /// WRITER, WRITING, SLEEPERS, UNUSABLE; the word turned-away readers sleep on.
    state: AtomicU32,
    /// Held by the writer (and by whoever takes a dead writer's place).
    writer: Lock<W, O>,
    /// Held by each reader while it reads.
    readers: [Lock<W, O>; READERS],
}

/// A read of an [`RwLock`], given up when dropped.
///
/// # Example
///
/// ```
/// use shmsync_core::spin::{RwLock, RwLockReadGuard};
///
/// let lock = RwLock::new();
/// let reading: RwLockReadGuard<'_> = lock.read().unwrap();
/// assert!(lock.is_locked());
/// drop(reading);
/// assert!(!lock.is_locked());
/// ```
#[must_use = "the read is given up as soon as the guard is dropped"]
pub struct RwLockReadGuard<'a, W: Wait, O: Owner, const READERS: usize> {
    rwlock: &'a RwLock<W, O, READERS>,
    slot: usize,
    hold: O::Hold,
    _owner: PhantomData<O::GuardMarker>,
}

/// The write lock of an [`RwLock`], released when dropped.
///
/// # Example
///
/// ```
/// use shmsync_core::spin::{RwLock, RwLockWriteGuard};
///
/// let lock = RwLock::new();
/// let writing: RwLockWriteGuard<'_> = lock.write().unwrap();
/// assert!(lock.is_locked_exclusive());
/// drop(writing);
/// assert!(!lock.is_locked());
/// ```
#[must_use = "the write lock is released as soon as the guard is dropped"]
pub struct RwLockWriteGuard<'a, W: Wait, O: Owner, const READERS: usize> {
    rwlock: &'a RwLock<W, O, READERS>,
    hold: O::Hold,
    _owner: PhantomData<O::GuardMarker>,
}

/// What a read call returns: the read, or why not. A reader that finds the last writer
/// dead with the data perhaps half-written is given the write lock to repair it, in
/// [`LockError::OwnerDied`].
pub type ReadResult<'a, W, O, const READERS: usize> =
    Result<RwLockReadGuard<'a, W, O, READERS>, LockError<RwLockWriteGuard<'a, W, O, READERS>>>;

/// What a write call returns: the write lock, or why it was not simply taken.
pub type WriteResult<'a, W, O, const READERS: usize> =
    Result<RwLockWriteGuard<'a, W, O, READERS>, LockError<RwLockWriteGuard<'a, W, O, READERS>>>;

/// What a read call that may give up returns (`try_read`, `read_timeout`): as
/// [`ReadResult`], or [`TryLockError::WouldBlock`].
pub type TryReadResult<'a, W, O, const READERS: usize> =
    Result<RwLockReadGuard<'a, W, O, READERS>, TryLockError<RwLockWriteGuard<'a, W, O, READERS>>>;

/// What a write call that may give up returns (`try_write`, `write_timeout`): as
/// [`WriteResult`], or [`TryLockError::WouldBlock`].
pub type TryWriteResult<'a, W, O, const READERS: usize> =
    Result<RwLockWriteGuard<'a, W, O, READERS>, TryLockError<RwLockWriteGuard<'a, W, O, READERS>>>;

impl<W, O: Owner, const READERS: usize> RwLock<W, O, READERS> {
    /// `READERS` of 0 would let no reader in: refused when the type is used.
    const SOME_READERS: () = assert!(READERS > 0, "an RwLock needs room for a reader");

    /// An unlocked lock.
    #[cfg(not(loom))]
    pub const fn new() -> Self {
        let () = Self::SOME_READERS;
        RwLock {
            state: AtomicU32::new(0),
            writer: Lock::new(),
            readers: [const { Lock::new() }; READERS],
        }
    }

    /// An unlocked lock.
    #[cfg(loom)]
    pub fn new() -> Self {
        let () = Self::SOME_READERS;
        RwLock {
            state: AtomicU32::new(0),
            writer: Lock::new(),
            readers: core::array::from_fn(|_| Lock::new()),
        }
    }

    /// Whether anyone reads or writes right now (or a writer waits for the readers).
    pub fn is_locked(&self) -> bool {
        self.is_locked_exclusive() || self.readers.iter().any(Lock::is_locked)
    }

    /// How many readers hold a slot right now, and how many slots a reader that died
    /// holds (freed by the next reader or writer that looks): for diagnostics.
    ///
    /// ```
    /// use shmsync_core::spin::RwLock;
    ///
    /// let lock = RwLock::new();
    /// let _reading = lock.read().unwrap();
    /// assert_eq!(lock.readers(), (1, 0));
    /// ```
    pub fn readers(&self) -> (usize, usize) {
        use crate::lock::LockState;
        let (mut reading, mut died) = (0, 0);
        for slot in &self.readers {
            match slot.state() {
                LockState::Held { .. } | LockState::Recovering { .. } => reading += 1,
                LockState::OwnerDied | LockState::NotRecoverable => died += 1,
                LockState::Free | LockState::HandedOver => {}
            }
        }
        (reading, died)
    }

    /// What its writer lock's word says right now (see [`Lock::state`]), and whether
    /// readers are turned away (a writer holds it or waits for the readers): for
    /// diagnostics.
    ///
    /// ```
    /// use shmsync_core::spin::RwLock;
    /// use shmsync_core::LockState;
    ///
    /// let lock = RwLock::new();
    /// assert_eq!(lock.writer(), (LockState::Free, false));
    /// ```
    pub fn writer(&self) -> (crate::lock::LockState, bool) {
        let state = self.state.load(Ordering::Relaxed);
        (self.writer.state(), state & WRITER != 0)
    }

    /// Whether a writer holds it (or waits for the readers inside to leave).
    pub fn is_locked_exclusive(&self) -> bool {
        self.state.load(Ordering::Relaxed) & WRITER != 0 || self.writer.is_locked()
    }

    /// Whether a writer died holding the write lock, perhaps half-way through a change,
    /// and nobody has marked the data consistent since; also true of a lock that is not
    /// recoverable.
    pub fn writer_died(&self) -> bool {
        let state = self.state.load(Ordering::Relaxed);
        state & UNUSABLE != 0 || state & WRITING != 0 && self.writer.holder_died()
    }
}

impl<W: Wait, O: Owner, const READERS: usize> RwLock<W, O, READERS> {
    /// Blocks until no writer holds or waits for the lock, and reads.
    ///
    /// Fails when a writer died: with [`LockError::OwnerDied`] holding the write lock,
    /// to repair the data (see [the type's docs](RwLock#when-a-reader-or-writer-dies)),
    /// or [`LockError::NotRecoverable`].
    pub fn read(&self) -> ReadResult<'_, W, O, READERS> {
        self.guarded_read(decided(|| self.read_until(None)))
    }

    /// Reads if no writer holds or waits for the lock and a slot is free right now;
    /// [`TryLockError::WouldBlock`] if not.
    pub fn try_read(&self) -> TryReadResult<'_, W, O, READERS> {
        self.try_guarded_read(self.read_until(NOW))
    }

    /// Blocks until the lock is free of readers and writers, and takes it for writing.
    ///
    /// Fails when the last writer died holding it: with [`LockError::OwnerDied`] (the
    /// write lock is yours: repair the data and mark it consistent), or
    /// [`LockError::NotRecoverable`].
    pub fn write(&self) -> WriteResult<'_, W, O, READERS> {
        self.guarded_write(decided(|| self.write_until(None)))
    }

    /// Takes the lock for writing if nobody reads or writes right now;
    /// [`TryLockError::WouldBlock`] if not.
    pub fn try_write(&self) -> TryWriteResult<'_, W, O, READERS> {
        self.try_guarded_write(self.write_until(NOW))
    }

    /// Reads, waiting until `deadline`: the slot and its hold, or why not (with the
    /// write lock's hold, for `OwnerDied`).
    fn read_until(&self, deadline: Option<u64>) -> Held<Read<O>, O> {
        let start = O::id() as usize % READERS;
        loop {
            let (slot, hold) = match self.claim_slot(start) {
                Some(claimed) => claimed,
                None => match self.wait_for_slot(start, deadline)? {
                    Some(claimed) => claimed,
                    None => continue,
                },
            };
            // Pairs with the writer's fence: either it sees this slot taken, or this
            // reader sees its WRITER.
            fence(Ordering::SeqCst);
            ends_here_if_killed(KillPoint::ReaderInSlot);
            let state = self.state.load(Ordering::Acquire);
            if state & (WRITER | UNUSABLE) == 0 {
                return Ok((slot, hold));
            }
            self.readers[slot].give_back(hold);
            self.wait_for_writer(deadline)?;
        }
    }

    /// Takes a free reader slot (or one whose reader died), starting at `start`.
    fn claim_slot(&self, start: usize) -> Option<(usize, O::Hold)> {
        (0..READERS)
            .map(|i| (start + i) % READERS)
            .find_map(|slot| {
                let lock = &self.readers[slot];
                if lock.is_locked() {
                    return None;
                }
                take_slot(lock, NOW).ok().map(|hold| (slot, hold))
            })
    }

    /// Every slot is taken: waits a while for slot `start`. `None` if it is still taken
    /// then (look at the others again).
    #[cold]
    fn wait_for_slot(&self, start: usize, deadline: Option<u64>) -> Held<Option<Read<O>>, O> {
        if expired::<W>(deadline) {
            return Err(TryLockError::WouldBlock);
        }
        let slice = next_look::<W>(deadline, Some(SLOT_LOOK_NS));
        match take_slot(&self.readers[start], slice) {
            Ok(hold) => Ok(Some((start, hold))),
            Err(Refused::WouldBlock) => Ok(None),
            Err(Refused::NotRecoverable) => Err(TryLockError::NotRecoverable),
        }
    }

    /// A writer turned this reader away: waits until it leaves (or takes its place if it
    /// died).
    fn wait_for_writer(&self, deadline: Option<u64>) -> Held<(), O> {
        loop {
            let state = self.state.load(Ordering::Acquire);
            if state & UNUSABLE != 0 {
                return Err(TryLockError::NotRecoverable);
            }
            if state & WRITER == 0 {
                return Ok(());
            }
            if self.writer.holder_died() {
                let taken = take(&self.writer, deadline).ok_or(TryLockError::WouldBlock)?;
                self.take_dead_writers_place(taken)?;
                continue;
            }
            if expired::<W>(deadline) {
                return Err(TryLockError::WouldBlock);
            }
            sleep_flagged::<W>(
                &self.state,
                state,
                SLEEPERS,
                next_look::<W>(deadline, O::RECHECK_NS),
            );
        }
    }

    /// A reader found the writer dead and tried to take the writer lock (`taken`). If
    /// the dead writer was writing, this reader now holds the write lock, told
    /// `OwnerDied`; otherwise the lock goes back to the readers.
    fn take_dead_writers_place(&self, taken: Taken<O>) -> Decided<(), O> {
        let hold = self.recover(taken)?;
        self.release_write(hold);
        Ok(())
    }

    /// The writer lock was taken (`taken`): if its last holder died without changing
    /// anything, forget it; if it died writing, report it.
    fn recover(&self, taken: Taken<O>) -> Decided<O::Hold, O> {
        match taken {
            Ok(hold) | Err(LockError::OwnerDied(hold))
                if self.state.load(Ordering::Acquire) & UNUSABLE != 0 =>
            {
                // A holder told `OwnerDied` gave up without repairing, and died before
                // it let the writer lock go: give it up unrepaired too, as it meant.
                self.writer.give_back(hold);
                Err(LockError::NotRecoverable)
            }
            Ok(hold) => Ok(hold),
            Err(LockError::OwnerDied(hold)) => {
                if self.state.load(Ordering::Acquire) & WRITING != 0 {
                    // Readers are still shut out (WRITER is set): the repair is safe.
                    return Err(LockError::OwnerDied(hold));
                }
                let _ = self.writer.mark_consistent();
                Ok(hold)
            }
            Err(LockError::NotRecoverable) => Err(LockError::NotRecoverable),
        }
    }

    /// Takes the lock for writing, waiting until `deadline`.
    fn write_until(&self, deadline: Option<u64>) -> Held<O::Hold, O> {
        let taken = take(&self.writer, deadline).ok_or(TryLockError::WouldBlock)?;
        let hold = self.recover(taken)?;
        self.shut_readers_out();
        for slot in &self.readers {
            while slot.is_locked() {
                match take_slot(slot, deadline) {
                    Ok(reader_left) => slot.give_back(reader_left),
                    Err(refused) => {
                        self.release_write(hold);
                        return Err(refused.into());
                    }
                }
            }
        }
        // The readers' releases, seen as free slots above, happen before the writing.
        fence(Ordering::Acquire);
        self.state.fetch_or(WRITING, Ordering::Relaxed);
        ends_here_if_killed(KillPoint::Writing);
        Ok(hold)
    }

    /// Sets WRITER, so that new readers are turned away, before the writer looks at the
    /// slots.
    fn shut_readers_out(&self) {
        self.state.fetch_or(WRITER, Ordering::Relaxed);
        // Pairs with the reader's fence: either this writer sees its slot taken, or the
        // reader sees WRITER.
        fence(Ordering::SeqCst);
        ends_here_if_killed(KillPoint::WriterWaitingForReaders);
    }

    /// Gives up the writer's `hold`: readers may go in again, and the next writer.
    fn release_write(&self, hold: O::Hold) {
        let previous = if self.writer.holder_died() {
            // Told `OwnerDied` and never marked consistent: not recoverable, for
            // readers too (the writer lock itself becomes so below).
            self.state.swap(UNUSABLE, Ordering::Release)
        } else {
            self.state
                .fetch_and(!(WRITER | WRITING | SLEEPERS), Ordering::Release)
        };
        ends_here_if_killed(KillPoint::WriteReleased);
        if previous & SLEEPERS != 0 {
            W::wake_all(&self.state);
        }
        self.writer.give_back(hold);
    }

    fn guarded_read(&self, read: Decided<Read<O>, O>) -> ReadResult<'_, W, O, READERS> {
        read.map(|read| self.read_guard(read))
            .map_err(|error| error.map(|hold| self.write_guard(hold)))
    }

    fn try_guarded_read(&self, read: Held<Read<O>, O>) -> TryReadResult<'_, W, O, READERS> {
        read.map(|read| self.read_guard(read))
            .map_err(|error| error.map(|hold| self.write_guard(hold)))
    }

    fn guarded_write(&self, write: Decided<O::Hold, O>) -> WriteResult<'_, W, O, READERS> {
        write
            .map(|hold| self.write_guard(hold))
            .map_err(|error| error.map(|hold| self.write_guard(hold)))
    }

    fn try_guarded_write(&self, write: Held<O::Hold, O>) -> TryWriteResult<'_, W, O, READERS> {
        write
            .map(|hold| self.write_guard(hold))
            .map_err(|error| error.map(|hold| self.write_guard(hold)))
    }

    fn read_guard(&self, (slot, hold): Read<O>) -> RwLockReadGuard<'_, W, O, READERS> {
        RwLockReadGuard {
            rwlock: self,
            slot,
            hold,
            _owner: PhantomData,
        }
    }

    fn write_guard(&self, hold: O::Hold) -> RwLockWriteGuard<'_, W, O, READERS> {
        RwLockWriteGuard {
            rwlock: self,
            hold,
            _owner: PhantomData,
        }
    }
}

/// Runs `attempt`, which waits without a deadline, until it decides: it only gives up
/// when its deadline passed, which it has none of (the loop says so without a panic
/// path).
fn decided<T, H>(
    mut attempt: impl FnMut() -> Result<T, TryLockError<H>>,
) -> Result<T, LockError<H>> {
    loop {
        match attempt() {
            Ok(done) => return Ok(done),
            Err(TryLockError::OwnerDied(hold)) => return Err(LockError::OwnerDied(hold)),
            Err(TryLockError::NotRecoverable) => return Err(LockError::NotRecoverable),
            Err(TryLockError::WouldBlock) => {}
        }
    }
}

/// Takes `lock` by `deadline`, without waiting at all for [`NOW`]; `None` if it gave up.
fn take<W: Wait, O: Owner>(lock: &Lock<W, O>, deadline: Option<u64>) -> Option<Taken<O>> {
    if deadline == NOW {
        lock.take_now()
    } else {
        lock.take(deadline)
    }
}

/// Takes a reader slot by `deadline`: a slot whose reader died is as good as a free one
/// (a reader changes nothing), so it is marked consistent at once.
fn take_slot<W: Wait, O: Owner>(
    slot: &Lock<W, O>,
    deadline: Option<u64>,
) -> Result<O::Hold, Refused> {
    match take(slot, deadline) {
        Some(Ok(hold)) => Ok(hold),
        Some(Err(LockError::OwnerDied(hold))) => {
            let _ = slot.mark_consistent();
            Ok(hold)
        }
        None => Err(Refused::WouldBlock),
        Some(Err(LockError::NotRecoverable)) => Err(Refused::NotRecoverable),
    }
}

/// Why a reader slot was not taken.
enum Refused {
    /// Held past the deadline.
    WouldBlock,
    /// Never to be taken again: only a peer's write into the lock can make a slot so,
    /// since a slot taken from a dead reader is marked consistent at once.
    NotRecoverable,
}

impl<H> From<Refused> for TryLockError<H> {
    fn from(refused: Refused) -> Self {
        match refused {
            Refused::WouldBlock => TryLockError::WouldBlock,
            Refused::NotRecoverable => TryLockError::NotRecoverable,
        }
    }
}

/// The timed forms, for a backend with a clock ([`Timed`]).
impl<W: Timed, O: Owner, const READERS: usize> RwLock<W, O, READERS> {
    /// Like [`read`](Self::read), but gives up with [`TryLockError::WouldBlock`] after
    /// `timeout`.
    pub fn read_timeout(&self, timeout: Duration) -> TryReadResult<'_, W, O, READERS> {
        self.try_guarded_read(self.read_until(Some(deadline_after::<W>(timeout))))
    }

    /// Like [`write`](Self::write), but gives up with [`TryLockError::WouldBlock`]
    /// after `timeout` (readers it had turned away meanwhile go in).
    pub fn write_timeout(&self, timeout: Duration) -> TryWriteResult<'_, W, O, READERS> {
        self.try_guarded_write(self.write_until(Some(deadline_after::<W>(timeout))))
    }
}

#[cfg(feature = "embassy")]
impl<W: crate::WakeTasks, O: Owner, const READERS: usize> RwLock<W, O, READERS> {
    /// The async form of [`read`](Self::read), for tasks of one executor. Dropping the
    /// future before it completes holds nothing. For a timeout, race it against a timer
    /// (`embassy_time::with_timeout`).
    pub async fn read_async(&self) -> ReadResult<'_, W, O, READERS> {
        let start = O::id() as usize % READERS;
        let read = loop {
            let (slot, hold) = match self.claim_slot(start) {
                Some(claimed) => claimed,
                None => match self.readers[start].take_async().await {
                    Ok(hold) | Err(LockError::OwnerDied(hold)) => {
                        let _ = self.readers[start].mark_consistent();
                        (start, hold)
                    }
                    Err(_) => break Err(LockError::NotRecoverable),
                },
            };
            fence(Ordering::SeqCst);
            if self.state.load(Ordering::Acquire) & (WRITER | UNUSABLE) == 0 {
                break Ok((slot, hold));
            }
            self.readers[slot].give_back(hold);
            if let Err(error) = self.writer_gone_async().await {
                break Err(error);
            }
        };
        self.guarded_read(read)
    }

    /// The async form of [`write`](Self::write). Dropping the future before it
    /// completes gives everything up (readers it had turned away go in).
    pub async fn write_async(&self) -> WriteResult<'_, W, O, READERS> {
        let hold = match self.recover(self.writer.take_async().await) {
            Ok(hold) => hold,
            Err(error) => return self.guarded_write(Err(error)),
        };
        self.shut_readers_out();
        let pending = PendingWrite { rwlock: self, hold };
        for slot in &self.readers {
            while slot.is_locked() {
                match slot.take_async().await {
                    Ok(reader_left) | Err(LockError::OwnerDied(reader_left)) => {
                        let _ = slot.mark_consistent();
                        slot.give_back(reader_left);
                    }
                    // Dropping `pending` gives the write up.
                    Err(_) => return self.guarded_write(Err(LockError::NotRecoverable)),
                }
            }
        }
        core::mem::forget(pending);
        fence(Ordering::Acquire);
        self.state.fetch_or(WRITING, Ordering::Relaxed);
        self.guarded_write(Ok(hold))
    }

    /// Waits until the writer that turned this reader away leaves; takes its place if it
    /// died (see `take_dead_writers_place`).
    async fn writer_gone_async(&self) -> Decided<(), O> {
        loop {
            let writer_died = core::future::poll_fn(|cx| {
                // Register first: a release after the look below then wakes us.
                W::register(&self.state, cx.waker());
                let state = self.state.load(Ordering::Acquire);
                if state & UNUSABLE != 0 {
                    return core::task::Poll::Ready(Err(LockError::NotRecoverable));
                }
                if state & WRITER == 0 {
                    return core::task::Poll::Ready(Ok(false));
                }
                if self.writer.holder_died() {
                    return core::task::Poll::Ready(Ok(true));
                }
                if state & SLEEPERS == 0 {
                    self.state.fetch_or(SLEEPERS, Ordering::Acquire);
                    cx.waker().wake_by_ref(); // look again at once
                }
                core::task::Poll::Pending
            })
            .await?;
            if !writer_died {
                return Ok(());
            }
            let taken = self.writer.take_async().await;
            self.take_dead_writers_place(taken)?;
        }
    }
}

/// A write whose future is dropped while it waits for the readers gives up.
#[cfg(feature = "embassy")]
struct PendingWrite<'a, W: Wait, O: Owner, const READERS: usize> {
    rwlock: &'a RwLock<W, O, READERS>,
    hold: O::Hold,
}

#[cfg(feature = "embassy")]
impl<W: Wait, O: Owner, const READERS: usize> Drop for PendingWrite<'_, W, O, READERS> {
    fn drop(&mut self) {
        self.rwlock.release_write(self.hold);
    }
}

impl<W, O: Owner, const READERS: usize> Default for RwLock<W, O, READERS> {
    fn default() -> Self {
        Self::new()
    }
}

impl<W, O: Owner, const READERS: usize> fmt::Debug for RwLock<W, O, READERS> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RwLock")
            .field(
                "readers",
                &self.readers.iter().filter(|r| r.is_locked()).count(),
            )
            .field("writer", &self.is_locked_exclusive())
            .finish()
    }
}

impl<W: Wait, O: Owner, const READERS: usize> Drop for RwLockReadGuard<'_, W, O, READERS> {
    fn drop(&mut self) {
        self.rwlock.readers[self.slot].give_back(self.hold);
    }
}

impl<W: Wait, O: Owner, const READERS: usize> RwLockWriteGuard<'_, W, O, READERS> {
    /// Says that the data is consistent again after [`LockError::OwnerDied`]; without
    /// it, dropping this guard makes the lock not recoverable.
    pub fn mark_consistent(&self) {
        let _ = self.rwlock.writer.mark_consistent();
    }
}

impl<W: Wait, O: Owner, const READERS: usize> Drop for RwLockWriteGuard<'_, W, O, READERS> {
    fn drop(&mut self) {
        if self.rwlock.writer.current_hold() == Some(self.hold) {
            self.rwlock.release_write(self.hold);
        }
    }
}

impl<W: Wait, O: Owner, const READERS: usize> fmt::Debug for RwLockReadGuard<'_, W, O, READERS> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RwLockReadGuard").finish_non_exhaustive()
    }
}

impl<W: Wait, O: Owner, const READERS: usize> fmt::Debug for RwLockWriteGuard<'_, W, O, READERS> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RwLockWriteGuard").finish_non_exhaustive()
    }
}
