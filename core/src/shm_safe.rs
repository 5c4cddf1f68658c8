//! Which types may live in memory shared between processes.

use crate::layout::{Arg, Layout};
use crate::{
    Array, Barrier, BoundedSemaphore, Condition, DistinctIds, Event, Lock, Owner, RLock, RwLock,
    Scalar, Semaphore, TrackedBoundedSemaphore, TrackedSemaphore, Value, Wait,
};

/// A type that stays valid when the same bytes are mapped by several processes, each
/// at its own address, and written by programs this one does not control.
///
/// The hosted crate places only `ShmSafe` types in shared memory, and records each
/// one's [`LAYOUT`](Self::LAYOUT) so that another program opens it only as the same
/// layout.
///
/// # Safety
///
/// Implement it only for a type that
/// - is valid for every bit pattern of its size: any process that maps the memory, or
///   a program that is not Rust at all, can write any bytes into it, and safe code must
///   never read a value that cannot exist. So no `bool`, `char`, enum, `NonZero*`,
///   reference or `Option<&T>`: store a flag as [`Value<bool>`](crate::Value), which
///   reads any non-zero byte as `true`, and a character as its `u32`;
/// - changes its bytes only through atomics (every shmsync type does), so that
///   concurrent access from several processes is no data race, or is plain data
///   (integers, floats, arrays of them) that its [`LAYOUT`](Self::LAYOUT) shows as
///   such ([`Layout::has_plain_data`]). Plain data is for memory one program controls
///   (a `static`, written before it is shared): between processes, a peer may write it
///   while this one reads it through `&T`, a data race whatever this program does, so
///   the hosted crate refuses at compile time to place a type with plain data in a
///   segment. A type whose bytes are all atomics, or copied only through atomics, but
///   described otherwise, says so with [`Layout::accessed_atomically`];
/// - holds no pointer, reference, or other address (`&T`, `Box`, `fn`), nor a
///   process-local handle (a file descriptor, a thread id meant for this process only);
/// - has a layout fixed by `#[repr(C)]` (or a primitive's), so that every program that
///   maps it agrees on it;
/// - is made only of `ShmSafe` fields;
/// - needs an alignment of at most 4096 bytes (a page: a mapping's address is aligned
///   to no more; the hosted crate refuses larger alignments at compile time).
///
/// [`LAYOUT`](Self::LAYOUT) must describe the type truly: a type valid for every byte
/// stays valid when another program's type is mapped over it, but a layout that hides
/// plain data lets it into shared memory, where a peer may write it while this program
/// reads it, and a wrong layout lets a mix-up through the check, with meaningless
/// values.
///
/// [`shm_struct!`](crate::shm_struct) declares such a struct, checks the fields and
/// describes them for you.
///
/// ```compile_fail,E0277
/// fn shared<T: shmsync_core::ShmSafe>() {}
/// shared::<bool>(); // a peer may write byte 2: use Value<bool>
/// ```
///
/// ```compile_fail,E0277
/// fn shared<T: shmsync_core::ShmSafe>() {}
/// shared::<char>(); // a peer may write 0xD800: use u32
/// ```
///
/// # Example
///
/// By hand, for a struct `shm_struct!` cannot declare (here, a generic one):
///
/// ```
/// use core::mem::offset_of;
/// use shmsync_core::spin::Lock;
/// use shmsync_core::{Field, Layout, ShmSafe};
///
/// #[repr(C)]
/// struct Slots<T> {
///     lock: Lock,
///     slots: [T; 4],
/// }
/// // SAFETY: #[repr(C)], no addresses, every field is ShmSafe.
/// unsafe impl<T: ShmSafe> ShmSafe for Slots<T> {
///     const LAYOUT: Layout = Layout::structure::<Self>("app::Slots", &[
///         Field::new("lock", offset_of!(Self, lock), &<Lock as ShmSafe>::LAYOUT),
///         Field::new("slots", offset_of!(Self, slots), &<[T; 4] as ShmSafe>::LAYOUT),
///     ]);
/// }
///
/// assert_eq!(
///     Slots::<u32>::LAYOUT.description().as_str(),
///     "app::Slots (24 bytes, align 4) { lock: Lock<Spin, Unowned>@0, slots: [u32; 4]@8 }"
/// );
/// ```
#[diagnostic::on_unimplemented(
    message = "`{Self}` cannot be placed in shared memory: it is not `ShmSafe`",
    label = "not `ShmSafe`",
    note = "declare a struct of shared fields with `shm_struct!`, which checks each field and implements `ShmSafe` for it; a `bool` is shared as `Value<bool>`, a `char` as `u32`"
)]
pub unsafe trait ShmSafe: Sync {
    /// What the type looks like, for another program that maps it: see
    /// [`Layout`]. Build it with [`Layout::structure`] (fields described: programs that
    /// declare the type in different modules agree) or [`Layout::opaque`] (a name that
    /// only this type uses).
    const LAYOUT: Layout;
}

macro_rules! plain_data {
    ($($t:ty),*) => {$(
        // SAFETY: a primitive without addresses, valid for every bit pattern; its
        // layout shows it as plain data, which the hosted crate keeps out of memory
        // shared between processes.
        unsafe impl ShmSafe for $t {
            const LAYOUT: Layout = Layout::plain::<$t>(stringify!($t));
        }
        // SAFETY: an integer, a float or `()`: no padding, and every bit pattern is a
        // value.
        unsafe impl crate::Pod for $t {}
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
    ()
);

// SAFETY: an array of `ShmSafe` items has no other bytes than theirs.
unsafe impl<T: ShmSafe, const N: usize> ShmSafe for [T; N] {
    const LAYOUT: Layout = Layout::array::<Self>(&T::LAYOUT, N);
}
// SAFETY: `#[repr(C)]`: an atomic, the owner's record (`ShmSafe` by `Owner`'s bound)
// and a zero-sized marker.
unsafe impl<W: Wait, O: Owner> ShmSafe for Lock<W, O> {
    const LAYOUT: Layout =
        Layout::builtin::<Self>("Lock", &[Arg::Name(W::NAME), Arg::Name(O::NAME)]);
}
// SAFETY: each of these is `#[repr(C)]` and holds only atomics, zero-sized markers and
// (in `Value`, `Array` and the tracked semaphores) `Lock`s; a `Value` or an `Array`
// reads its atomics' bits through `Scalar::from_bits`, which takes every pattern.
unsafe impl<W: Wait> ShmSafe for Event<W> {
    const LAYOUT: Layout = Layout::builtin::<Self>("Event", &[Arg::Name(W::NAME)]);
}
// SAFETY: as above.
unsafe impl<W: Wait> ShmSafe for Semaphore<W> {
    const LAYOUT: Layout = Layout::builtin::<Self>("Semaphore", &[Arg::Name(W::NAME)]);
}
// SAFETY: as above.
unsafe impl<W: Wait> ShmSafe for BoundedSemaphore<W> {
    const LAYOUT: Layout = Layout::builtin::<Self>("BoundedSemaphore", &[Arg::Name(W::NAME)]);
}
// SAFETY: as above.
unsafe impl<T: Scalar, W: Wait, O: Owner> ShmSafe for Value<T, W, O> {
    const LAYOUT: Layout = Layout::builtin::<Self>(
        "Value",
        &[Arg::Name(T::NAME), Arg::Name(W::NAME), Arg::Name(O::NAME)],
    );
}
// SAFETY: as above.
unsafe impl<W: Wait, O: Owner> ShmSafe for TrackedSemaphore<W, O> {
    const LAYOUT: Layout = Layout::builtin::<Self>(
        "TrackedSemaphore",
        &[Arg::Name(W::NAME), Arg::Name(O::NAME)],
    );
}
// SAFETY: as above.
unsafe impl<W: Wait, O: Owner> ShmSafe for TrackedBoundedSemaphore<W, O> {
    const LAYOUT: Layout = Layout::builtin::<Self>(
        "TrackedBoundedSemaphore",
        &[Arg::Name(W::NAME), Arg::Name(O::NAME)],
    );
}
// SAFETY: as above.
unsafe impl<T: Scalar, const N: usize, W: Wait, O: Owner> ShmSafe for Array<T, N, W, O> {
    const LAYOUT: Layout = Layout::builtin::<Self>(
        "Array",
        &[
            Arg::Name(T::NAME),
            Arg::Len(N),
            Arg::Name(W::NAME),
            Arg::Name(O::NAME),
        ],
    );
}
// SAFETY: as above (atomics and `Lock`s).
unsafe impl<W: Wait, O: DistinctIds> ShmSafe for RLock<W, O> {
    const LAYOUT: Layout =
        Layout::builtin::<Self>("RLock", &[Arg::Name(W::NAME), Arg::Name(O::NAME)]);
}
// SAFETY: as above (atomics and `Lock`s).
unsafe impl<W: Wait, O: Owner, const WAITERS: usize> ShmSafe for Condition<W, O, WAITERS> {
    const LAYOUT: Layout = Layout::builtin::<Self>(
        "Condition",
        &[Arg::Name(W::NAME), Arg::Name(O::NAME), Arg::Len(WAITERS)],
    );
}
// SAFETY: as above.
unsafe impl<W: Wait, O: Owner> ShmSafe for Barrier<W, O> {
    const LAYOUT: Layout =
        Layout::builtin::<Self>("Barrier", &[Arg::Name(W::NAME), Arg::Name(O::NAME)]);
}
// SAFETY: as above (atomics and `Lock`s).
unsafe impl<W: Wait, O: Owner, const READERS: usize> ShmSafe for RwLock<W, O, READERS> {
    const LAYOUT: Layout = Layout::builtin::<Self>(
        "RwLock",
        &[Arg::Name(W::NAME), Arg::Name(O::NAME), Arg::Len(READERS)],
    );
}

/// Declares a `#[repr(C)]` struct and implements [`ShmSafe`] for it, after checking at
/// compile time that every field is `ShmSafe`. Its [`LAYOUT`](ShmSafe::LAYOUT) lists
/// the fields, with their names, offsets and types, under the struct's path.
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
/// // The struct's path, then its size and fields.
/// assert!(Shared::LAYOUT.description().as_str().ends_with(
///     "::Shared (32 bytes, align 8) { start: Event<Spin>@0, \
///      lock: Lock<Spin, Unowned>@4, total: Value<i64, Spin, Unowned>@16 }"
/// ));
/// ```
///
/// A field that may not be shared does not compile:
///
/// ```compile_fail,E0277
/// shmsync_core::shm_struct! {
///     struct Bad { name: &'static str }
/// }
/// ```
///
/// Nor does a `bool`, whose byte another program could set to 2; share a flag as a
/// `Value<bool>`, which reads any non-zero byte as `true`:
///
/// ```compile_fail,E0277
/// shmsync_core::shm_struct! {
///     struct Flags { ready: bool }
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

        // SAFETY: `#[repr(C)]`, and every field is `ShmSafe`: the layout names
        // `<$ty as ShmSafe>::LAYOUT` for each, which compiles only if it is.
        unsafe impl $crate::ShmSafe for $name {
            const LAYOUT: $crate::Layout = $crate::Layout::structure::<Self>(
                ::core::concat!(::core::module_path!(), "::", ::core::stringify!($name)),
                &[$($crate::Field::new(
                    ::core::stringify!($field),
                    ::core::mem::offset_of!(Self, $field),
                    &<$ty as $crate::ShmSafe>::LAYOUT,
                )),*],
            );
        }
    };
}
