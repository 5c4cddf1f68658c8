//! A [`Wait`] backend for the cores of one chip: a waiter sleeps until another core, or
//! an interrupt handler, changes the word.
//!
//! The primitives keep their state in atomics, so between cores that share memory they
//! need no critical section, only a way to sleep and to wake a sleeper. That part is
//! the platform's, given as a [`Doorbell`]: `wfe`/`sev` on Arm, an inter-processor
//! interrupt and `wfi` on RISC-V. The firmware implements it, because only the firmware
//! knows its board (where the interrupt controller is, how many cores there are).
//!
//! ```
//! use shmsync_core::{Cores, Doorbell, NoClock, Semaphore};
//!
//! /// Cores that never sleep: each wait returns at once and the caller looks again.
//! /// A real doorbell sleeps (see `Doorbell`).
//! struct Busy;
//! impl Doorbell for Busy {
//!     const NAME: &'static str = "Busy";
//!     fn ring() {}
//!     fn sleep() {}
//! }
//!
//! static ITEMS: Semaphore<Cores<Busy, NoClock>> = Semaphore::new(0);
//!
//! std::thread::scope(|s| {
//!     s.spawn(|| ITEMS.acquire()); // "core 1" waits for an item
//!     ITEMS.release(); // "core 0", or an interrupt handler, hands it over
//! });
//! ```
//!
//! # From interrupt handlers
//!
//! An interrupt handler may call every operation that never waits: [`Event::set`],
//! [`Semaphore::release`] and [`try_acquire`](crate::Semaphore::try_acquire),
//! [`BoundedSemaphore::release`](crate::BoundedSemaphore::release), the
//! [`Value`](crate::Value) operations `get`, `set`, `swap`, `compare_exchange` and
//! `fetch_*`, [`Array::get`](crate::Array::get), and the `try_lock` of
//! [`Lock`](crate::Lock::try_lock) and [`Array`](crate::Array::try_lock) (it fails if the
//! interrupted code holds the lock: try again at the next interrupt).
//! Each is a few atomic instructions and, at most, a [`Doorbell::ring`]: no lock that
//! the interrupted code could be holding, no allocation, no waiting.
//! [`Queue::try_put`](crate::Queue::try_put) and [`try_get`](crate::Queue::try_get) may
//! be called too, but they wait a moment (100 µs on the backend's clock; one look with
//! `NoClock`) for the queue's internal lock: if the interrupted code holds it, the
//! handler spends that moment and the queue counts as full or empty. It must not call
//! the operations that wait (`lock`, `acquire`, `wait` and their timed forms) nor those
//! that take a lock on its behalf (`Value::update`, `Array::set`, `Array::snapshot`,
//! `Array::read`, `Array::write`): the code it interrupted may hold that lock, and
//! would never run again to release it.
//!
//! On a single core without compare-and-swap (Cortex-M0, with this crate's
//! `critical-section` feature), the same operations stay safe in interrupt handlers:
//! each emulated atomic runs with interrupts masked. Between cores of such a chip
//! (RP2040), the `critical-section` implementation must be one that excludes the other
//! core too, such as a hardware spinlock.
//!
//! [`Event::set`]: crate::Event::set
//! [`Semaphore::release`]: crate::Semaphore::release

use core::marker::PhantomData;

use crate::backend::spin::sealed::TimeSource;
use crate::backend::spin::{Clock, Spin};
use crate::sync::{AtomicU32, Ordering};
use crate::wait::{Timed, Wait};

/// How the cores of one chip sleep and wake each other: the platform's part of
/// [`Cores`].
///
/// Every core has a one-bit *event latch*, as Arm's event register is:
///
/// - [`ring`](Self::ring) sets the latch of every core, **the calling core's included**,
///   and wakes the cores asleep in [`sleep`](Self::sleep). Every write the caller made
///   before `ring` is visible to a core once it wakes from it (Arm: `dsb` before `sev`;
///   RISC-V: a `fence` before the inter-processor interrupt).
/// - [`sleep`](Self::sleep) returns at once, clearing it, if the calling core's latch is
///   set; otherwise it sleeps until the latch is set, and clears it. It may also return
///   for no reason (an interrupt, say).
///
/// The latch is what makes "look at the word, then sleep" safe: a `ring` that comes
/// after the look but before the sleep is remembered, and the sleep returns at once.
/// A `sleep` without one (a `wfi` waiting only for interrupts that arrive after it)
/// loses that wake-up, and the core sleeps for ever. The calling core's own latch is
/// set so that an interrupt handler that rings, having interrupted its core between
/// the look and the sleep, wakes that core's sleep too. The crate's loom models check
/// both halves (`core/tests/loom.rs`, the `cores_*` models).
///
/// # Implementations
///
/// On Arm (`sev` sets the event register of every core, its own included; an interrupt
/// taken in `wfe` wakes it too):
///
/// ```ignore
/// struct SendEvent;
/// impl Doorbell for SendEvent {
///     const NAME: &'static str = "sev";
///     fn ring() {
///         cortex_m::asm::dsb(); // the word's new value first, then the event
///         cortex_m::asm::sev();
///     }
///     fn sleep() {
///         cortex_m::asm::wfe();
///     }
/// }
/// ```
///
/// On RISC-V, a hart's pending machine software interrupt (`mip.MSIP`, set through the
/// CLINT's `msip` register of that hart) is the latch: `ring` writes 1 to every hart's
/// `msip` after a `fence`; `sleep` masks interrupts (`mstatus.MIE`), enables `mie.MSIE`
/// so that `wfi` wakes on it, runs `wfi`, clears its own `msip`, and restores both. The
/// multi-core demo in the repository has one for QEMU's `virt` machine.
///
/// # Example
///
/// Threads standing in for cores: a latch per thread, kept as the number of rings it
/// has seen.
///
/// ```
/// use shmsync_core::{Cores, Doorbell, Event, NoClock};
/// use std::cell::Cell;
/// use std::sync::{Condvar, Mutex};
///
/// static RINGS: Mutex<u64> = Mutex::new(0);
/// static RUNG: Condvar = Condvar::new();
/// thread_local!(static SEEN: Cell<u64> = const { Cell::new(0) });
///
/// struct Threads;
/// impl Doorbell for Threads {
///     const NAME: &'static str = "Threads";
///     fn ring() {
///         *RINGS.lock().unwrap() += 1; // sets every latch: a ring nobody has seen yet
///         RUNG.notify_all();
///     }
///     fn sleep() {
///         let seen = SEEN.get();
///         let rings = RUNG.wait_while(RINGS.lock().unwrap(), |rings| *rings == seen).unwrap();
///         SEEN.set(*rings); // clears this thread's latch
///     }
/// }
///
/// static START: Event<Cores<Threads, NoClock>> = Event::new();
/// std::thread::scope(|s| {
///     s.spawn(|| START.wait());
///     START.set();
/// });
/// ```
pub trait Doorbell {
    /// How layouts name this doorbell, and so the [`Cores`] backend over it (see
    /// [`Wait::NAME`]): firmware images that share memory, one per core, must ring the
    /// same doorbell, so they name it alike (`"sev"` for Arm's event register, say).
    const NAME: &'static str;

    /// Sets every core's event latch, the caller's included, and wakes the sleepers.
    fn ring();

    /// Sleeps until the calling core's event latch is set (at once if it is), then
    /// clears it. May return sooner.
    fn sleep();
}

/// Waits by sleeping the core until another core, or an interrupt handler, rings the
/// doorbell `D`; every release, unlock or `set` that has a waiter rings it.
///
/// For memory shared between the cores of one chip (RP2040, ESP32, STM32H7, nRF5340)
/// and with interrupt handlers. The uncontended paths never ring: a waiter marks the
/// word first, and only then does a release ring.
///
/// Timeouts need a clock, given as `C` (see [`Clock`]): `Cores<D, MyClock>` is [`Timed`]
/// and has the timed forms (`lock_timeout`, ...); `Cores<D, NoClock>` has none. A timed
/// wait polls the clock instead of sleeping, because the doorbell wakes a core for a
/// ring and not at a deadline; only untimed waits sleep.
///
/// A core that sleeps wakes for every ring, not only for the word it waits on: it looks
/// at its word again and, if nothing changed for it, sleeps again. With two cores that
/// costs little; with many cores that often wait at once, a doorbell per word would
/// wake fewer.
///
/// # Example
///
/// Firmware names its doorbell and its clock once, in aliases:
///
/// ```
/// use shmsync_core::{Cores, Doorbell, NoClock, Unowned};
///
/// struct Bell; // a real one sleeps: see `Doorbell`
/// impl Doorbell for Bell {
///     const NAME: &'static str = "Bell";
///     fn ring() {}
///     fn sleep() {}
/// }
///
/// type Lock = shmsync_core::Lock<Cores<Bell, NoClock>, Unowned>;
/// type Value<T> = shmsync_core::Value<T, Cores<Bell, NoClock>, Unowned>;
///
/// static RING_LOCK: Lock = Lock::new();
/// static ITEMS: Value<u32> = Value::new(0);
///
/// let _ring = RING_LOCK.lock().unwrap();
/// ITEMS.set(ITEMS.get() + 1);
/// ```
pub struct Cores<D, C>(PhantomData<fn() -> (D, C)>);

impl<D: Doorbell, C: Clock> Timed for Cores<D, C> {}

impl<D: Doorbell, C: TimeSource> Wait for Cores<D, C> {
    /// The doorbell's, whatever the clock: a waiter sleeps until that doorbell rings.
    const NAME: &'static str = D::NAME;

    fn now() -> u64 {
        C::now_ns()
    }

    fn wait(word: &AtomicU32, expected: u32, deadline: Option<u64>) {
        if deadline.is_some() {
            return Spin::<C>::wait(word, expected, deadline);
        }
        // A ring after this look sets our latch, and the sleep returns at once.
        if word.load(Ordering::Acquire) == expected {
            D::sleep();
        }
    }

    fn wake_one(_: &AtomicU32) {
        // The doorbell wakes every core: the caller's algorithm lets the ones that were
        // not meant sleep again.
        D::ring();
    }

    fn wake_all(_: &AtomicU32) {
        D::ring();
    }
}
