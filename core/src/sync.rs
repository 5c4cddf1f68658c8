//! The atomics every primitive is built on.
//!
//! Under `cfg(loom)` they are loom's, so that the model checker sees every access;
//! otherwise they are portable-atomic's, which compile to native instructions where the
//! target has them.

#[cfg(loom)]
pub use loom::sync::atomic::{fence, AtomicU16, AtomicU32, AtomicU64, AtomicU8, Ordering};
#[cfg(all(not(loom), has_atomic_64))]
pub use portable_atomic::AtomicU64;
#[cfg(not(loom))]
pub use portable_atomic::{fence, AtomicU16, AtomicU32, AtomicU8, Ordering};

/// A hint inside bounded spin loops; under loom it lets the model schedule another thread.
#[inline]
pub(crate) fn spin_loop() {
    #[cfg(loom)]
    loom::thread::yield_now();
    #[cfg(not(loom))]
    core::hint::spin_loop();
}

/// Declares a constructor that is `const` except under loom, whose atomics cannot be
/// built in a constant.
macro_rules! const_fn {
    ($(#[$meta:meta])* $vis:vis fn $($rest:tt)*) => {
        #[cfg(not(loom))]
        $(#[$meta])* $vis const fn $($rest)*
        #[cfg(loom)]
        $(#[$meta])* $vis fn $($rest)*
    };
}
pub(crate) use const_fn;
