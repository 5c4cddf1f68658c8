//! A condition variable, as Python's `threading.Condition` and Rust's
//! `std::sync::Condvar`, which nobody's death wedges.
//!
//! ```
//! use shmsync_core::spin::{Condition, Lock, Value};
//!
//! static LOCK: Lock = Lock::new();
//! static READY: Condition = Condition::new();
//! static ITEMS: Value<u32> = Value::new(0);
//!
//! std::thread::scope(|s| {
//!     s.spawn(|| {
//!         let held = LOCK.lock().unwrap();
//!         ITEMS.set(ITEMS.get() + 1);
//!         READY.notify_one();
//!         drop(held);
//!     });
//!     let held = LOCK.lock().unwrap();
//!     let held = READY.wait_for(held, || ITEMS.get() > 0).unwrap();
//!     ITEMS.set(ITEMS.get() - 1);
//!     drop(held);
//! });
//! ```
//!
//! # How waiters are kept
//!
//! Each waiter takes a slot for the length of its wait: the slot's own [`Lock`], held by
//! the waiting thread (so that, with an owner-tracking backend, the kernel marks the
//! slot when the waiter dies), and a word that is at once the waiter's ticket (its place
//! in the order of arrival), its phase, and what it sleeps on:
//!
//! | `state`                 | meaning                                                   |
//! |-------------------------|-----------------------------------------------------------|
//! | `0`                     | free                                                      |
//! | `ticket << 2 \| WAITING`  | its waiter waits                                          |
//! | `ticket << 2 \| NOTIFIED` | a notify chose its waiter, who has not taken the lock back yet |
//!
//! A notify moves the oldest live waiters from `WAITING` to `NOTIFIED` with a
//! compare-and-swap and wakes each on its own word: nobody else can take that wake-up,
//! and a waiter that timed out first (and freed its slot) is not chosen. A slot
//! `NOTIFIED` whose waiter died before it took the lock back holds a wake-up nobody will
//! use: whoever finds it (a notify, a waiter woken or looking again, a waiter taking the
//! slot) frees it and passes the wake-up on to the oldest waiter left. A waiter that
//! finds every slot taken waits outside them: on `overflow`, which every notify bumps.

use core::fmt;
use core::time::Duration;

use crate::error::LockError;
use crate::fault::{ends_here_if_killed, KillPoint};
use crate::lock::{Lock, LockGuard};
use crate::owner::{DistinctIds, Owner};
use crate::rlock::{RLock, RLockGuard, Recursion};
use crate::sync::{AtomicU32, Ordering};
use crate::wait::{deadline_after, expired, next_look, Timed, Wait};

/// The phase of a slot, in the low bits of its `state`.
const PHASE: u32 = 0b11;
const FREE: u32 = 0;
const WAITING: u32 = 1;
const NOTIFIED: u32 = 2;
/// Tickets count modulo 2^30; two live ones are never half that apart.
const TICKET: u32 = (1 << 30) - 1;
/// In `overflow`: some waiter sleeps on it, so a notify must bump it and wake them.
const SLEEPERS: u32 = 1;

/// A condition variable: threads wait (releasing a lock) until another notifies them.
///
/// Use it with a [`Lock`] or an [`RLock`] over the same backends: [`wait`](Self::wait)
/// takes the lock's guard, releases the lock, sleeps until notified, and takes the lock
/// back before it returns the guard (`std::sync::Condvar`'s shape). As in Python, a
/// waiter returns only when a [`notify`](Self::notify) chose it (or its timeout passed):
/// no spurious wake-ups among the first `WAITERS` waiters at once.
///
/// `#[repr(C)]`, atomics only: it can live in a `static` or in memory shared between
/// processes. `WAITERS` slots, each a [`Lock`] and a word (12 bytes each with
/// [`Unowned`](crate::Unowned); 48 with the hosted crate), plus 8 bytes.
///
/// # What a notify wakes
///
/// - `notify(n)` wakes the `n` longest-waiting threads (all of them if fewer wait), and
///   returns how many it woke. A thread that starts waiting after the notify is not
///   among them (no stolen wake-ups); one that is waiting is never missed (no lost
///   ones). A waiter whose timeout passes as it is chosen returns notified, not timed out.
/// - Beyond `WAITERS` threads waiting at once, the extra ones wait outside the slots and
///   wake at every notify (as `std`'s may, spuriously): use [`wait_for`](Self::wait_for)
///   or a loop over the predicate, as with any condition variable.
///
/// Notify while holding the lock, or between a change of the predicate under the lock
/// and a waiter's check it can be missed; Python requires it, `std` does not.
///
/// # When a participant dies
///
/// With an owner-tracking backend (the hosted crate's):
///
/// - a waiter killed while it waits holds nothing the others need: notifies pass over
///   it, and its slot is taken back by a later waiter;
/// - a waiter killed after a notify chose it, before it took the lock back, does not
///   swallow the wake-up: the next notify, or a waiter looking again (every
///   [`Owner::RECHECK_NS`]), passes it on to the longest-waiting thread left;
/// - a thread killed holding the lock (a notifier, or a waiter that had taken it back)
///   leaves it to the next locker with [`LockError::OwnerDied`], and so to a waiter
///   taking it back: that waiter's wait returns the error, holding the guard;
/// - a notifier killed before it notifies notifies nobody: use the timed forms where a
///   notify may never come.
///
/// # Example
///
/// ```
/// use shmsync_core::spin::{Condition, Lock};
///
/// let lock = Lock::new();
/// let condition = Condition::new();
/// assert_eq!(condition.notify_all(), 0); // nobody waits
/// let held = lock.lock().unwrap();
/// let held = condition.wait_for(held, || true).unwrap(); // already true: no wait
/// drop(held);
/// ```
#[repr(C)]
pub struct Condition<W, O: Owner, const WAITERS: usize> {
    /// The next ticket; waiters take them in the order they arrive.
    tickets: AtomicU32,
    /// For waiters beyond the slots: a count bumped by every notify (bits 1..) and
    /// SLEEPERS.
    overflow: AtomicU32,
    slots: [Slot<W, O>; WAITERS],
}

/// One waiter's place.
#[repr(C)]
struct Slot<W, O: Owner> {
    /// Held by the waiting thread from before it releases the lock until it has taken it
    /// back (or timed out).
    owner: Lock<W, O>,
    /// Ticket and phase (see the module's table); the word its waiter sleeps on.
    state: AtomicU32,
}

/// Whether a timed wait on a [`Condition`] returned because its timeout passed
/// (`std::sync::WaitTimeoutResult`).
///
/// # Example
///
/// ```
/// use core::time::Duration;
/// use shmsync_core::{Clock, Condition, Lock, Spin, Unowned};
/// # struct Uptime;
/// # impl Clock for Uptime {
/// #     fn now_ns() -> u64 {
/// #         static T: std::sync::OnceLock<std::time::Instant> = std::sync::OnceLock::new();
/// #         T.get_or_init(std::time::Instant::now).elapsed().as_nanos() as u64
/// #     }
/// # }
///
/// let lock: Lock<Spin<Uptime>, Unowned> = Lock::new();
/// let condition: Condition<Spin<Uptime>, Unowned, 4> = Condition::new();
/// let held = lock.lock().unwrap();
/// let (held, result) = condition.wait_timeout(held, Duration::from_millis(1)).unwrap();
/// assert!(result.timed_out()); // nobody notified
/// drop(held);
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct WaitTimeoutResult(bool);

impl WaitTimeoutResult {
    /// Whether the wait ended because its timeout passed (for the predicate forms:
    /// with the predicate still false).
    pub fn timed_out(&self) -> bool {
        self.0
    }
}

/// What a timed wait returns: the guard and whether it timed out, or the lock's error
/// with both.
pub type WaitTimeout<G> = Result<(G, WaitTimeoutResult), LockError<(G, WaitTimeoutResult)>>;

/// A lock's guard that a [`Condition`] on the backends `W` and `O` can release while it
/// waits and take back after: [`LockGuard`] and [`RLockGuard`] (whose every level is
/// released, and restored after).
///
/// # Example
///
/// ```
/// use shmsync_core::spin::{Condition, Lock, LockGuard};
/// use shmsync_core::{ConditionGuard, LockError, Spin, Unowned};
///
/// fn wait_once<G: ConditionGuard<Spin, Unowned>>(c: &Condition, g: G) -> Result<G, LockError<G>> {
///     c.wait_for(g, || true)
/// }
/// let lock = Lock::new();
/// let held: LockGuard<'_> = wait_once(&Condition::new(), lock.lock().unwrap()).unwrap();
/// # drop(held);
/// ```
pub trait ConditionGuard<W: Wait, O: Owner>: Sized + sealed::Relock<W, O> {}

pub(crate) mod sealed {
    use crate::error::LockError;

    /// How a condition's wait gives up a lock and takes it back.
    pub trait Relock<W, O>: Sized {
        /// What the wait keeps to take the lock back.
        type Released;

        /// Releases the lock this guard holds (every level of it): as the guard's drop
        /// would, except that an unrepaired `OwnerDied` is passed on, not made final.
        fn release_for_wait(self) -> Self::Released;

        /// Takes the lock back, blocking, as the guard had it.
        fn retake(released: Self::Released) -> Result<Self, LockError<Self>>;

        /// The async form of `retake`.
        #[cfg(feature = "embassy")]
        fn retake_async(
            released: Self::Released,
        ) -> impl core::future::Future<Output = Result<Self, LockError<Self>>>
        where
            W: crate::WakeTasks;
    }
}

impl<'a, W: Wait, O: Owner> sealed::Relock<W, O> for LockGuard<'a, W, O> {
    type Released = &'a Lock<W, O>;

    fn release_for_wait(self) -> &'a Lock<W, O> {
        let (lock, hold) = self.into_parts();
        lock.release_for_wait(hold);
        lock
    }

    fn retake(lock: &'a Lock<W, O>) -> Result<Self, LockError<Self>> {
        lock.lock()
    }

    #[cfg(feature = "embassy")]
    async fn retake_async(lock: &'a Lock<W, O>) -> Result<Self, LockError<Self>>
    where
        W: crate::WakeTasks,
    {
        lock.lock_async().await
    }
}

impl<W: Wait, O: Owner> ConditionGuard<W, O> for LockGuard<'_, W, O> {}

impl<'a, W: Wait, O: DistinctIds> sealed::Relock<W, O> for RLockGuard<'a, W, O> {
    type Released = (&'a RLock<W, O>, Option<Recursion>);

    fn release_for_wait(self) -> Self::Released {
        let (rlock, hold) = self.into_parts();
        (rlock, rlock.release_for_wait(hold))
    }

    fn retake((rlock, recursion): Self::Released) -> Result<Self, LockError<Self>> {
        let guard = |hold| RLockGuard::from_parts(rlock, hold);
        let retaken = match recursion {
            Some(recursion) => rlock.retake(rlock.inner().take_blocking(), recursion),
            // The guard held nothing to release: the thread takes a level, as `lock`.
            None => rlock.enter(Lock::take_blocking),
        };
        retaken.map(guard).map_err(|error| error.map(guard))
    }

    #[cfg(feature = "embassy")]
    async fn retake_async((rlock, recursion): Self::Released) -> Result<Self, LockError<Self>>
    where
        W: crate::WakeTasks,
    {
        let guard = |hold| RLockGuard::from_parts(rlock, hold);
        let retaken = match recursion {
            Some(recursion) => rlock.retake(rlock.inner().take_async().await, recursion),
            None if rlock.is_owned_by_current_thread() => rlock.enter(Lock::take_blocking),
            None => rlock.entered(rlock.inner().take_async().await),
        };
        retaken.map(guard).map_err(|error| error.map(guard))
    }
}

impl<W: Wait, O: DistinctIds> ConditionGuard<W, O> for RLockGuard<'_, W, O> {}

/// Where a waiter waits.
enum Place<H> {
    /// In slot `index`, whose lock it holds as `hold`.
    Slot { index: usize, hold: H },
    /// Outside the slots, until `overflow` is no longer `seen`.
    Overflow { seen: u32 },
}

#[cfg(not(loom))]
impl<W, O: Owner> Slot<W, O> {
    #[allow(clippy::declare_interior_mutable_const)] // a fresh value per slot
    const FREE: Self = Slot {
        owner: Lock::new(),
        state: AtomicU32::new(FREE),
    };
}

impl<W, O: Owner, const WAITERS: usize> Condition<W, O, WAITERS> {
    /// How many waiters hold a slot right now, each from before it releases the lock
    /// until it has taken it back (a waiter beyond the slots is not counted): for
    /// diagnostics.
    ///
    /// ```
    /// use shmsync_core::spin::Condition;
    ///
    /// let condition = Condition::new();
    /// assert_eq!(condition.waiting(), 0);
    /// ```
    pub fn waiting(&self) -> usize {
        (self.slots.iter())
            .filter(|slot| {
                matches!(
                    slot.owner.state(),
                    crate::lock::LockState::Held { .. } | crate::lock::LockState::Recovering { .. }
                )
            })
            .count()
    }

    /// A condition nobody waits on.
    #[cfg(not(loom))]
    pub const fn new() -> Self {
        Condition {
            tickets: AtomicU32::new(0),
            overflow: AtomicU32::new(0),
            slots: [Slot::FREE; WAITERS],
        }
    }

    /// A condition nobody waits on.
    #[cfg(loom)]
    pub fn new() -> Self {
        Condition {
            tickets: AtomicU32::new(0),
            overflow: AtomicU32::new(0),
            slots: core::array::from_fn(|_| Slot {
                owner: Lock::new(),
                state: AtomicU32::new(FREE),
            }),
        }
    }
}

impl<W: Wait, O: Owner, const WAITERS: usize> Condition<W, O, WAITERS> {
    /// Releases the lock `guard` holds, sleeps until a notify chooses this thread, and
    /// takes the lock back (Python's `wait()`).
    ///
    /// Taking it back fails as [`Lock::lock`] does: with [`LockError::OwnerDied`] (and
    /// the guard) if a holder died holding it meanwhile, or
    /// [`LockError::NotRecoverable`]. A lock the guard held with `OwnerDied`, unrepaired,
    /// is passed on as it is: the next locker (perhaps this waiter) is told.
    pub fn wait<G: ConditionGuard<W, O>>(&self, guard: G) -> Result<G, LockError<G>> {
        self.wait_until(guard, None).0
    }

    /// Waits until `predicate` is true, checking it under the lock before each wait
    /// (Python's `wait_for(predicate)`). Returns at once if it is true already. A lock
    /// error while taking the lock back ends the wait without checking the predicate.
    pub fn wait_for<G: ConditionGuard<W, O>>(
        &self,
        mut guard: G,
        mut predicate: impl FnMut() -> bool,
    ) -> Result<G, LockError<G>> {
        while !predicate() {
            guard = self.wait(guard)?;
        }
        Ok(guard)
    }

    /// Waits while `condition` is true (`std::sync::Condvar::wait_while`): the same as
    /// [`wait_for`](Self::wait_for) with the predicate negated.
    pub fn wait_while<G: ConditionGuard<W, O>>(
        &self,
        guard: G,
        mut condition: impl FnMut() -> bool,
    ) -> Result<G, LockError<G>> {
        self.wait_for(guard, || !condition())
    }

    /// Wakes the `n` threads that have waited longest (all of them if fewer wait), and
    /// every waiter beyond the slots; returns how many waiters in slots it woke
    /// (Python's `notify(n)`).
    pub fn notify(&self, n: usize) -> usize {
        self.pass_on_lost_wakes();
        let mut woken = 0;
        while woken < n && self.notify_oldest() {
            woken += 1;
        }
        if n > 0 {
            self.wake_overflow();
        }
        woken
    }

    /// Wakes the thread that has waited longest; returns whether there was one
    /// (`std::sync::Condvar::notify_one`).
    pub fn notify_one(&self) -> bool {
        self.notify(1) == 1
    }

    /// Wakes every waiting thread; returns how many waiters in slots it woke.
    pub fn notify_all(&self) -> usize {
        self.notify(usize::MAX)
    }

    /// Waits as [`wait`](Self::wait) does, until `deadline` (`None`: for ever). Returns
    /// the outcome of taking the lock back and whether a notify chose this waiter (or,
    /// beyond the slots, whether any notify came).
    fn wait_until<G: ConditionGuard<W, O>>(
        &self,
        guard: G,
        deadline: Option<u64>,
    ) -> (Result<G, LockError<G>>, bool) {
        let place = self.register();
        let released = guard.release_for_wait();
        ends_here_if_killed(KillPoint::ConditionWaiting);
        match place {
            Place::Slot { index, hold } => {
                let slot = &self.slots[index];
                let notified = self.sleep_in_slot(slot, deadline);
                if !notified {
                    // It left its slot as it timed out: nobody can choose it now.
                    slot.owner.give_back(hold);
                }
                ends_here_if_killed(KillPoint::ConditionWoken);
                // Not dropped if the thread dies here: a killed thread releases nothing.
                let retaken = core::mem::ManuallyDrop::new(G::retake(released));
                ends_here_if_killed(KillPoint::ConditionLockRetaken);
                if notified {
                    self.leave(slot, hold);
                }
                (core::mem::ManuallyDrop::into_inner(retaken), notified)
            }
            Place::Overflow { seen } => {
                let notified = self.sleep_outside(seen, deadline);
                (G::retake(released), notified)
            }
        }
    }

    /// Takes a slot for the calling thread, which holds the lock: a ticket, and the
    /// first free slot (or one whose waiter died). Outside the slots if all are taken.
    fn register(&self) -> Place<O::Hold> {
        let ticket = self.tickets.fetch_add(1, Ordering::Relaxed) & TICKET;
        for (index, slot) in self.slots.iter().enumerate() {
            if slot.owner.is_locked() {
                continue;
            }
            let (hold, died) = match slot.owner.take_now() {
                Some(Ok(hold)) => (hold, false),
                Some(Err(LockError::OwnerDied(hold))) => {
                    // The slot's last waiter died: the slot is as it left it.
                    let _ = slot.owner.mark_consistent();
                    (hold, true)
                }
                _ => continue,
            };
            let previous = slot.state.swap(FREE, Ordering::AcqRel);
            if died && previous & PHASE == NOTIFIED {
                // A wake-up that died with its waiter: to one that is waiting.
                self.notify_oldest();
            }
            ends_here_if_killed(KillPoint::ConditionSlotTaken);
            slot.state.store(ticket << 2 | WAITING, Ordering::Release);
            return Place::Slot { index, hold };
        }
        let seen = self.overflow.fetch_or(SLEEPERS, Ordering::Relaxed) | SLEEPERS;
        Place::Overflow { seen }
    }

    /// Sleeps in `slot` until a notify chooses it (true) or `deadline` passes, when it
    /// leaves the slot (false).
    fn sleep_in_slot(&self, slot: &Slot<W, O>, deadline: Option<u64>) -> bool {
        loop {
            let state = slot.state.load(Ordering::Acquire);
            if state & PHASE != WAITING {
                // Chosen. (A phase no waiter sets, from a peer's write, counts as woken:
                // the caller checks its predicate again, which is safe.)
                return true;
            }
            if expired::<W>(deadline) {
                match slot
                    .state
                    .compare_exchange(state, FREE, Ordering::AcqRel, Ordering::Acquire)
                {
                    Ok(_) => return false,
                    Err(_) => continue, // chosen meanwhile
                }
            }
            W::wait(&slot.state, state, next_look::<W>(deadline, O::RECHECK_NS));
            if slot.state.load(Ordering::Acquire) & PHASE == WAITING {
                // Not for us: perhaps a look again, for a wake-up a dead waiter holds.
                self.pass_on_lost_wakes();
            }
        }
    }

    /// Sleeps until a notify bumps `overflow` past `seen` (true) or `deadline` passes
    /// (false).
    fn sleep_outside(&self, seen: u32, deadline: Option<u64>) -> bool {
        loop {
            if self.overflow.load(Ordering::Acquire) != seen {
                return true;
            }
            if expired::<W>(deadline) {
                return false;
            }
            W::wait(
                &self.overflow,
                seen,
                next_look::<W>(deadline, O::RECHECK_NS),
            );
        }
    }

    /// A chosen waiter, holding the lock again, frees its slot.
    fn leave(&self, slot: &Slot<W, O>, hold: O::Hold) {
        slot.state.store(FREE, Ordering::Release);
        slot.owner.give_back(hold);
    }

    /// Chooses the longest-waiting live waiter in a slot and wakes it; false if there is
    /// none.
    fn notify_oldest(&self) -> bool {
        loop {
            let mut oldest: Option<(&Slot<W, O>, u32)> = None;
            for slot in &self.slots {
                let state = slot.state.load(Ordering::Acquire);
                if state & PHASE != WAITING || slot.owner.holder_died() {
                    continue;
                }
                if oldest.is_none_or(|(_, best)| earlier(state >> 2, best >> 2)) {
                    oldest = Some((slot, state));
                }
            }
            let Some((slot, state)) = oldest else {
                return false;
            };
            let chosen = (state & !PHASE) | NOTIFIED;
            if slot
                .state
                .compare_exchange(state, chosen, Ordering::AcqRel, Ordering::Relaxed)
                .is_ok()
            {
                ends_here_if_killed(KillPoint::ConditionChosen);
                W::wake_one(&slot.state);
                return true;
            }
            // It timed out, or another notify chose it: look again.
        }
    }

    /// Frees the slots of waiters that died after a notify chose them, passing each
    /// wake-up on to the longest-waiting live waiter.
    fn pass_on_lost_wakes(&self) {
        for slot in &self.slots {
            let state = slot.state.load(Ordering::Acquire);
            if state & PHASE == NOTIFIED
                && slot.owner.holder_died()
                && slot
                    .state
                    .compare_exchange(state, FREE, Ordering::AcqRel, Ordering::Relaxed)
                    .is_ok()
            {
                self.notify_oldest();
            }
        }
    }

    /// Wakes every waiter outside the slots, if any sleeps.
    fn wake_overflow(&self) {
        let mut current = self.overflow.load(Ordering::Relaxed);
        while current & SLEEPERS != 0 {
            // Adding 1 clears SLEEPERS and carries into the count.
            match self.overflow.compare_exchange_weak(
                current,
                current.wrapping_add(1),
                Ordering::Release,
                Ordering::Relaxed,
            ) {
                Ok(_) => {
                    W::wake_all(&self.overflow);
                    return;
                }
                Err(now) => current = now,
            }
        }
    }
}

/// Whether ticket `a` was handed out before ticket `b` (modulo 2^30).
fn earlier(a: u32, b: u32) -> bool {
    a != b && (b.wrapping_sub(a) & TICKET) < (1 << 29)
}

/// The timed forms, for a backend with a clock ([`Timed`]).
impl<W: Timed, O: Owner, const WAITERS: usize> Condition<W, O, WAITERS> {
    /// Like [`wait`](Self::wait), but wakes after `timeout` if no notify chose it
    /// (Python's `wait(timeout)`). It takes the lock back in either case, waiting as
    /// long as that takes, as `std` and Python do.
    pub fn wait_timeout<G: ConditionGuard<W, O>>(
        &self,
        guard: G,
        timeout: Duration,
    ) -> WaitTimeout<G> {
        let (retaken, notified) = self.wait_until(guard, Some(deadline_after::<W>(timeout)));
        let result = WaitTimeoutResult(!notified);
        retaken
            .map(|guard| (guard, result))
            .map_err(|error| error.map(|guard| (guard, result)))
    }

    /// Waits until `predicate` is true or `timeout` passes (Python's
    /// `wait_for(predicate, timeout)`); [`WaitTimeoutResult::timed_out`] says the
    /// predicate was still false.
    pub fn wait_for_timeout<G: ConditionGuard<W, O>>(
        &self,
        mut guard: G,
        timeout: Duration,
        mut predicate: impl FnMut() -> bool,
    ) -> WaitTimeout<G> {
        let deadline = deadline_after::<W>(timeout);
        loop {
            if predicate() {
                return Ok((guard, WaitTimeoutResult(false)));
            }
            if expired::<W>(Some(deadline)) {
                return Ok((guard, WaitTimeoutResult(true)));
            }
            let result = WaitTimeoutResult(false);
            guard = self
                .wait_until(guard, Some(deadline))
                .0
                .map_err(|error| error.map(|guard| (guard, result)))?;
        }
    }

    /// Waits while `condition` is true or until `timeout` passes
    /// (`std::sync::Condvar::wait_timeout_while`).
    pub fn wait_timeout_while<G: ConditionGuard<W, O>>(
        &self,
        guard: G,
        timeout: Duration,
        mut condition: impl FnMut() -> bool,
    ) -> WaitTimeout<G> {
        self.wait_for_timeout(guard, timeout, || !condition())
    }
}

#[cfg(feature = "embassy")]
impl<W: crate::WakeTasks, O: Owner, const WAITERS: usize> Condition<W, O, WAITERS> {
    /// The async form of [`wait`](Self::wait), for tasks of one executor: it releases
    /// the lock, yields until a notify chooses it, and takes the lock back with
    /// [`Lock::lock_async`]. Dropping the future before it completes leaves its slot;
    /// a notify that had chosen it goes to the next waiter.
    ///
    /// For a timeout, race it against a timer (`embassy_time::with_timeout`).
    pub async fn wait_async<G: ConditionGuard<W, O>>(&self, guard: G) -> Result<G, LockError<G>> {
        let place = self.register();
        let released = guard.release_for_wait();
        let waiting = AsyncWait {
            condition: self,
            place,
        };
        core::future::poll_fn(|cx| match &waiting.place {
            Place::Slot { index, .. } => {
                let slot = &self.slots[*index];
                // Register first: a notify after the look below then wakes us.
                W::register(&slot.state, cx.waker());
                if slot.state.load(Ordering::Acquire) & PHASE == WAITING {
                    core::task::Poll::Pending
                } else {
                    core::task::Poll::Ready(())
                }
            }
            Place::Overflow { seen } => {
                W::register(&self.overflow, cx.waker());
                if self.overflow.load(Ordering::Acquire) == *seen {
                    core::task::Poll::Pending
                } else {
                    core::task::Poll::Ready(())
                }
            }
        })
        .await;
        let retaken = G::retake_async(released).await;
        waiting.finish();
        retaken
    }
}

/// An async waiter's place until it has taken the lock back; dropped before, it leaves,
/// passing on a wake-up that chose it.
#[cfg(feature = "embassy")]
struct AsyncWait<'a, W: Wait, O: Owner, const WAITERS: usize> {
    condition: &'a Condition<W, O, WAITERS>,
    place: Place<O::Hold>,
}

#[cfg(feature = "embassy")]
impl<W: Wait, O: Owner, const WAITERS: usize> AsyncWait<'_, W, O, WAITERS> {
    fn finish(self) {
        if let Place::Slot { index, hold } = self.place {
            self.condition.leave(&self.condition.slots[index], hold);
        }
        core::mem::forget(self);
    }
}

#[cfg(feature = "embassy")]
impl<W: Wait, O: Owner, const WAITERS: usize> Drop for AsyncWait<'_, W, O, WAITERS> {
    fn drop(&mut self) {
        if let Place::Slot { index, hold } = self.place {
            let slot = &self.condition.slots[index];
            let previous = slot.state.swap(FREE, Ordering::AcqRel);
            slot.owner.give_back(hold);
            if previous & PHASE == NOTIFIED {
                self.condition.notify_oldest();
            }
        }
    }
}

impl<W, O: Owner, const WAITERS: usize> Default for Condition<W, O, WAITERS> {
    fn default() -> Self {
        Self::new()
    }
}

impl<W, O: Owner, const WAITERS: usize> fmt::Debug for Condition<W, O, WAITERS> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let waiting = self
            .slots
            .iter()
            .filter(|slot| slot.state.load(Ordering::Relaxed) & PHASE == WAITING)
            .count();
        f.debug_struct("Condition")
            .field("waiting", &waiting)
            .finish_non_exhaustive()
    }
}
