//! The ways a blocked caller can wait, one file each: what implements
//! [`Wait`](crate::Wait) in this crate. The hosted `shmsync` crate adds the Linux futex, and
//! its own owner backend, in the same shape.

pub mod cores;
pub mod spin;

#[cfg(feature = "embassy")]
pub mod embassy;
