//! Types whose all-zero bytes are a value: what a fresh shared mapping holds, so that a
//! value of any size can be made where it will live instead of on the stack.

use crate::{
    Array, BoundedSemaphore, Event, Lock, Owner, Pod, Queue, Scalar, Semaphore,
    TrackedBoundedSemaphore, TrackedSemaphore, Value,
};

/// A type for which all-zero bytes are a valid value, and the one its plain constructor
/// makes: an unlocked [`Lock`], a clear [`Event`], a semaphore with no permits (and, for
/// a bounded one, a bound of 0), zero in every [`Value`] and [`Array`], an empty open
/// [`Queue`].
///
/// A new shared mapping is all zeros. The hosted crate's `Shared::*_with` constructors
/// use this to build a value in place, in the mapping, however large it is, and hand
/// it to an `init` closure to set what should not be zero.
///
/// [`shm_struct!`](crate::shm_struct) implements it for the structs it declares, after
/// checking that every field is `Zeroable`.
///
/// # Safety
///
/// All-zero bytes must be a valid value of the type, for which every method keeps its
/// promises (a zero that breaks an invariant of the type is not allowed).
///
/// # Example
///
/// ```
/// use shmsync_core::spin::Lock;
/// use shmsync_core::Zeroable;
///
/// #[repr(C)]
/// struct Pair {
///     lock: Lock,
///     items: [u32; 2],
/// }
/// // SAFETY: #[repr(C)], and every field is `Zeroable`.
/// unsafe impl Zeroable for Pair {}
///
/// // SAFETY: `Pair` is `Zeroable`.
/// let pair: Pair = unsafe { core::mem::zeroed() };
/// assert!(!pair.lock.is_locked());
/// ```
#[diagnostic::on_unimplemented(
    message = "`{Self}` cannot be made from zeroed memory: it is not `Zeroable`",
    label = "not `Zeroable`",
    note = "shmsync's types and `shm_struct!` structs are `Zeroable`; for a type of your own whose all-zero bytes are a valid value, implement it (`unsafe impl Zeroable`)"
)]
pub unsafe trait Zeroable {}

// The primitives are `Zeroable` where they are `ShmSafe` (`shm_safe.rs`).

// SAFETY: an array of `Zeroable` items has no other bytes than theirs.
unsafe impl<T: Zeroable, const N: usize> Zeroable for [T; N] {}
// SAFETY: word 0 is unlocked, and the record is `Zeroable` (by the bound; an owner's
// unheld record is all zeros, as `Owner::UNHELD` says).
unsafe impl<W, O: Owner> Zeroable for Lock<W, O> where O::Record: Zeroable {}
// SAFETY: word 0 is clear.
unsafe impl<W> Zeroable for Event<W> {}
// SAFETY: no permits and no waiters; for the bounded one, a bound of 0: `new(0)`.
unsafe impl<W> Zeroable for Semaphore<W> {}
// SAFETY: as above.
unsafe impl<W> Zeroable for BoundedSemaphore<W> {}
// SAFETY: a zeroed lock (above) and zero bits, which are 0, 0.0 or false for every
// scalar.
unsafe impl<T: Scalar, W, O: Owner> Zeroable for Value<T, W, O> where O::Record: Zeroable {}
// SAFETY: as above, for each item.
unsafe impl<T: Scalar, const N: usize, W, O: Owner> Zeroable for Array<T, N, W, O> where
    O::Record: Zeroable
{
}
// SAFETY: zeroed locks (above) and zero counts: no permits, no holders, no hand-offs.
// The unbounded semaphore ignores its bound field, so zero is `new(0)`.
unsafe impl<W, O: Owner> Zeroable for TrackedSemaphore<W, O> where O::Record: Zeroable {}
// SAFETY: as above, with a bound of 0: `new(0)`.
unsafe impl<W, O: Owner> Zeroable for TrackedBoundedSemaphore<W, O> where O::Record: Zeroable {}
// SAFETY: a zeroed lock (above), counts of 0 (empty, open, no task pending) and zeroed
// slots, which is what `new` makes. (`new` also refuses a capacity of 0 or above
// `MAX_CAPACITY` at compile time; with such a capacity the queue's counts cannot be
// computed, and its methods do not compile or panic, never misbehave.)
unsafe impl<T: Pod, const N: usize, W, O: Owner> Zeroable for Queue<T, N, W, O> where
    O::Record: Zeroable
{
}
