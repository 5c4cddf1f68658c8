//! Which types may live in memory shared between processes.

use crate::{
    Array, BoundedSemaphore, Event, Lock, Owner, Scalar, Semaphore, TrackedBoundedSemaphore,
    TrackedSemaphore, Value,
};

/// A type that stays valid when the same bytes are mapped by several processes, each
/// at its own address.
///
/// The hosted crate places only `ShmSafe` types in shared memory.
///
/// # Safety
///
/// Implement it only for a type that
/// - holds no pointer, reference, or other address (`&T`, `Box`, `fn`), nor a
///   process-local handle (a file descriptor, a thread id meant for this process only);
/// - changes its bytes only through atomics (every shmsync type does), so that
///   concurrent access from several processes is no data race;
/// - has a layout fixed by `#[repr(C)]` (or a primitive's), so that every program that
///   maps it agrees on it;
/// - is made only of `ShmSafe` fields;
/// - needs an alignment of at most 4096 bytes (a page: a mapping's address is aligned
///   to no more; the hosted crate refuses larger alignments at compile time).
///
/// [`shm_struct!`](crate::shm_struct) declares such a struct and checks the fields for
/// you.
///
/// # Example
///
/// ```
/// use shmsync_core::spin::{Lock, Value};
/// use shmsync_core::ShmSafe;
///
/// #[repr(C)]
/// struct Stats {
///     lock: Lock,
///     count: Value<u64>,
///     ids: [u32; 4],
/// }
/// // SAFETY: #[repr(C)], no addresses, every field is ShmSafe.
/// unsafe impl ShmSafe for Stats {}
/// ```
#[diagnostic::on_unimplemented(
    message = "`{Self}` cannot be placed in shared memory: it is not `ShmSafe`",
    label = "not `ShmSafe`",
    note = "declare a struct of shared fields with `shm_struct!`, which checks each field and implements `ShmSafe` for it"
)]
pub unsafe trait ShmSafe: Sync {}

macro_rules! plain_data {
    ($($t:ty),*) => {$(
        // SAFETY: a primitive without addresses; shared, it is only ever read (a
        // `ShmSafe` type changes its bytes through atomics).
        unsafe impl ShmSafe for $t {}
    )*};
}
plain_data!(
    u8,
    i8,
    u16,
    i16,
    u32,
    i32,
    u64,
    i64,
    u128,
    i128,
    f32,
    f64,
    bool,
    char,
    ()
);

// SAFETY: an array of `ShmSafe` items has no other bytes than theirs.
unsafe impl<T: ShmSafe, const N: usize> ShmSafe for [T; N] {}
// SAFETY: `#[repr(C)]`: an atomic, the owner's record (`ShmSafe` by `Owner`'s bound)
// and a zero-sized marker.
unsafe impl<W, O: Owner> ShmSafe for Lock<W, O> {}
// SAFETY: each of these is `#[repr(C)]` and holds only atomics, zero-sized markers and
// (in `Value` and `Array`) a `Lock`.
unsafe impl<W> ShmSafe for Event<W> {}
// SAFETY: as above.
unsafe impl<W> ShmSafe for Semaphore<W> {}
// SAFETY: as above.
unsafe impl<W> ShmSafe for BoundedSemaphore<W> {}
// SAFETY: as above.
unsafe impl<T: Scalar, W, O: Owner> ShmSafe for Value<T, W, O> {}
// SAFETY: as above.
unsafe impl<W, O: Owner> ShmSafe for TrackedSemaphore<W, O> {}
// SAFETY: as above.
unsafe impl<W, O: Owner> ShmSafe for TrackedBoundedSemaphore<W, O> {}
// SAFETY: as above.
unsafe impl<T: Scalar, const N: usize, W, O: Owner> ShmSafe for Array<T, N, W, O> {}

/// Declares a `#[repr(C)]` struct and implements [`ShmSafe`] for it, after checking at
/// compile time that every field is `ShmSafe`.
///
/// # Example
///
/// ```
/// use shmsync_core::spin::{Event, Lock, Value};
/// use shmsync_core::{shm_struct, ShmSafe};
///
/// shm_struct! {
///     /// What the workers share.
///     pub struct Shared {
///         pub start: Event,
///         pub lock: Lock,
///         pub total: Value<i64>,
///     }
/// }
///
/// fn needs_shm_safe<T: ShmSafe>() {}
/// needs_shm_safe::<Shared>();
/// ```
///
/// A field that may not be shared does not compile:
///
/// ```compile_fail
/// shmsync_core::shm_struct! {
///     struct Bad { name: &'static str }
/// }
/// ```
#[macro_export]
macro_rules! shm_struct {
    (
        $(#[$meta:meta])*
        $vis:vis struct $name:ident {
            $($(#[$field_meta:meta])* $field_vis:vis $field:ident : $ty:ty),* $(,)?
        }
    ) => {
        $(#[$meta])*
        #[repr(C)]
        $vis struct $name {
            $($(#[$field_meta])* $field_vis $field: $ty),*
        }

        // SAFETY: `#[repr(C)]`, and every field is `ShmSafe` (checked just below).
        unsafe impl $crate::ShmSafe for $name {}

        const _: () = {
            fn assert_shm_safe<T: $crate::ShmSafe>() {}
            #[allow(dead_code)]
            fn every_field_is_shm_safe() {
                $(assert_shm_safe::<$ty>();)*
            }
        };
    };
}
