//! Where the model checker kills a participant in the middle of an operation.
//!
//! A process can be killed at any instruction; what another process can then observe
//! is the shared state the dead one had written so far. The operations that promise to
//! survive that name the places where their shared writes stand in between (after the
//! lock is taken, half-way through a slot, before and after the commit store, after
//! the release), and under `cfg(loom)` a model can make the calling thread die at one
//! of them: the operation calls the model's `die` (which plays the kernel's part, as
//! at a real death) and stops there, releasing nothing. Outside loom every place is
//! survived and compiles to nothing.
//!
//! An operation stops in one of two ways: the queue's return at once ([`survives`]
//! says whether to); those that cannot return from where they are (a condition's wait
//! deep in its sleep, a barrier's trip) unwind the thread ([`ends_here_if_killed`]),
//! and are placed only where no value with a destructor is alive, so that the
//! unwinding runs no code a killed thread would not run.

/// A place inside an operation where its caller can die.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KillPoint {
    // A lock's take.
    /// A sleeping locker has been woken and has not looked at the lock yet.
    LockerWoken,

    // A queue's put or get.
    /// The operation's lock is taken; nothing is written yet.
    Locked,
    /// Half of the item's words are in its slot (a put).
    HalfWritten,
    /// The item is in its slot (a put) or copied out of it (a get); the commit store
    /// has not happened.
    BeforeCommit,
    /// The commit store happened; the lock is still held.
    Committed,
    /// The lock is released; the waiters have not been woken yet.
    Unlocked,

    // A condition's wait and notify.
    /// A condition's waiter has taken a slot, before it marks itself waiting in it.
    ConditionSlotTaken,
    /// A condition's waiter waits in its slot, its lock released, not yet asleep.
    ConditionWaiting,
    /// A notify has chosen a waiter and not yet woken it.
    ConditionChosen,
    /// A chosen (or timed out) waiter has not taken its lock back yet.
    ConditionWoken,
    /// A chosen waiter holds its lock again and has not left its slot.
    ConditionLockRetaken,

    // A barrier's wait.
    /// A party has arrived and waits for the others.
    BarrierArrived,
    /// The last party has tripped the barrier and not yet woken the others.
    BarrierTripped,

    // A readers-writer lock's read and write.
    /// A reader holds a slot and has not yet looked for a writer.
    ReaderInSlot,
    /// A writer has shut new readers out and waits for those inside.
    WriterWaitingForReaders,
    /// A writer holds the write lock and may be changing the data.
    Writing,
    /// A writer let the readers in again and has not woken them yet.
    WriteReleased,
}

/// Whether the calling thread lives past `point`: always, outside the model checker.
#[cfg(not(loom))]
#[inline(always)]
pub(crate) fn survives(_: KillPoint) -> bool {
    true
}

/// Outside the model checker, every place is survived.
#[cfg(not(loom))]
#[inline(always)]
pub(crate) fn ends_here_if_killed(_: KillPoint) {}

// loom's thread-locals are std's.
#[cfg(loom)]
extern crate std;

#[cfg(loom)]
loom::thread_local! {
    static DOOM: core::cell::Cell<Option<(KillPoint, fn())>> = core::cell::Cell::new(None);
}

/// Makes the calling thread die at `point` of its next operation that passes it: `die`
/// runs there (it must do what the kernel does at a death), and the operation stops.
#[cfg(loom)]
pub fn kill_at(point: KillPoint, die: fn()) {
    DOOM.with(|doom| doom.set(Some((point, die))));
}

/// Whether the calling thread lives past `point` (see [`kill_at`]).
#[cfg(loom)]
pub(crate) fn survives(point: KillPoint) -> bool {
    match DOOM.with(|doom| doom.get()) {
        Some((doomed, die)) if doomed == point => {
            DOOM.with(|doom| doom.set(None));
            die();
            false
        }
        _ => true,
    }
}

/// What a thread killed at an [`ends_here_if_killed`] place unwinds with: a model that
/// runs such an operation catches it (`std::panic::catch_unwind`) where the thread
/// would have ended.
#[cfg(loom)]
pub struct Killed;

/// Ends the calling thread's operation by unwinding if it dies at `point` (see
/// [`kill_at`]).
#[cfg(loom)]
pub(crate) fn ends_here_if_killed(point: KillPoint) {
    if !survives(point) {
        std::panic::resume_unwind(std::boxed::Box::new(Killed));
    }
}
