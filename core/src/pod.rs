//! Plain old data: the types a [`Queue`](crate::Queue) carries by value, byte for byte.

use crate::ShmSafe;

/// A [`ShmSafe`] type made of plain bytes: every bit pattern is a valid value, and no
/// byte is padding. A [`Queue`](crate::Queue) copies its items in and out of shared
/// memory through atomic words, which needs both: a peer can leave any bytes in a slot,
/// and a padding byte has no value to copy (reading it is undefined behaviour).
///
/// Implemented for the integers, `f32`, `f64`, `()` and arrays of `Pod` types (not for
/// `bool` or `char`, which have invalid bit patterns). Declare a struct of `Pod` fields
/// with [`pod_struct!`](crate::pod_struct), which checks both rules at compile time.
///
/// # Safety
///
/// Implement it only for a [`ShmSafe`] type whose every bit pattern is a valid value and
/// whose size is the sum of its fields' sizes (no padding anywhere inside it).
///
/// # Example
///
/// ```
/// use shmsync_core::Pod;
///
/// fn carried_by_a_queue<T: Pod>() {}
/// carried_by_a_queue::<u64>();
/// carried_by_a_queue::<[f32; 3]>();
/// ```
#[diagnostic::on_unimplemented(
    message = "`{Self}` cannot be carried by a queue: it is not `Pod`",
    label = "not `Pod`",
    note = "declare a struct of plain fields (integers, floats, arrays of them) with `pod_struct!`"
)]
pub unsafe trait Pod: ShmSafe + Copy + Send + 'static {}

// The integers, floats and `()` are `Pod` where `shm_safe.rs` makes them `ShmSafe`: one
// list for both.

// SAFETY: an array has no bytes besides its items', and no padding between them (an
// item's size is a multiple of its alignment).
unsafe impl<T: Pod, const N: usize> Pod for [T; N] {}

/// Declares a `#[repr(C)]`, `Copy` struct of [`Pod`] fields and implements [`Pod`] (and,
/// through [`shm_struct!`](crate::shm_struct), [`ShmSafe`] with its layout) for it,
/// after checking at compile time that every field is `Pod` and that the fields fill
/// the struct (no padding). It derives `Clone` and `Copy`; add
/// other derives (`Debug`, `PartialEq`) as attributes.
///
/// # Example
///
/// ```
/// use shmsync_core::pod_struct;
///
/// pod_struct! {
///     /// One sample, as a producer sends it.
///     #[derive(Debug, PartialEq)]
///     pub struct Reading {
///         pub sensor: u32,
///         pub value: f32,
///         pub at: u64,
///     }
/// }
///
/// let r = Reading { sensor: 1, value: 0.5, at: 10 };
/// let copy = r;
/// assert_eq!(r, copy);
/// ```
///
/// Padding does not compile (a `u8` beside a `u32` leaves three bytes unused):
///
/// ```compile_fail
/// shmsync_core::pod_struct! {
///     struct Padded { flag: u8, count: u32 }
/// }
/// ```
#[macro_export]
macro_rules! pod_struct {
    (
        $(#[$meta:meta])*
        $vis:vis struct $name:ident {
            $($(#[$field_meta:meta])* $field_vis:vis $field:ident : $ty:ty),* $(,)?
        }
    ) => {
        $crate::shm_struct! {
            $(#[$meta])*
            #[derive(Clone, Copy)]
            $vis struct $name {
                $($(#[$field_meta])* $field_vis $field: $ty),*
            }
        }

        // SAFETY: `ShmSafe` (above), every field is `Pod` and the fields' sizes add up
        // to the struct's, so no byte is padding (both checked below).
        unsafe impl $crate::Pod for $name {}

        const _: () = {
            fn assert_pod<T: $crate::Pod>() {}
            #[allow(dead_code)]
            fn every_field_is_pod() {
                $(assert_pod::<$ty>();)*
            }
            assert!(
                ::core::mem::size_of::<$name>() == 0 $(+ ::core::mem::size_of::<$ty>())*,
                concat!("`", stringify!($name), "` has padding: reorder its fields (largest first) or add explicit ones")
            );
        };
    };
}
