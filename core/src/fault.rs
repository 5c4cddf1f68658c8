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

/// A place inside a queue operation where its caller can die.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KillPoint {
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
}

/// Whether the calling thread lives past `point`: always, outside the model checker.
#[cfg(not(loom))]
#[inline(always)]
pub(crate) fn survives(_: KillPoint) -> bool {
    true
}

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
