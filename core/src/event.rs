//! A flag that threads wait for, as Python's `threading.Event`.
//!
//! ```
//! use shmsync_core::spin::Event;
//!
//! static START: Event = Event::new();
//! START.set();     // the start gun: every waiter goes
//! START.wait();
//! assert!(START.is_set());
//! ```

use core::fmt;
use core::marker::PhantomData;
use core::time::Duration;

use crate::sync::{const_fn, AtomicU32, Ordering};
use crate::wait::{deadline_after, expired, spin_while, Awaiting, Timed, Wait};

/// The flag.
const SET: u32 = 1;
/// Somebody sleeps on the word: `set` must wake them.
const WAITERS: u32 = 1 << 1;
/// Bits 2..=31 count the times the flag went from clear to set.
const GENERATION: u32 = 1 << 2;

/// An event flag: [`set`](Self::set) wakes every waiter, [`clear`](Self::clear) resets it.
///
/// 4 bytes, `#[repr(C)]`, atomics only. Besides the flag, the word counts the times it
/// was set: a thread that was waiting when `set` happened returns even if `clear`
/// follows at once, before it gets to run. (The count wraps after 2^30 sets; a waiter
/// would have to sleep through exactly that many set/clear pairs to miss one.)
///
/// `set` and `clear` take no lock: atomic instructions and, for `set`, a wake-up call
/// (on Linux a futex call). A signal handler may call them, as may an interrupt
/// handler on a microcontroller.
///
/// # Example
///
/// ```
/// use shmsync_core::spin::Event;
///
/// let event = Event::new();
/// assert!(!event.is_set());
/// event.set();
/// event.wait(); // returns at once: the event is set
/// event.clear();
/// assert!(!event.is_set());
/// ```
#[repr(C)]
pub struct Event<W> {
    word: AtomicU32,
    _wait: PhantomData<fn() -> W>,
}

impl<W> Event<W> {
    const_fn! {
        /// An event that is not set.
        pub fn new() -> Self {
            Event { word: AtomicU32::new(0), _wait: PhantomData }
        }
    }

    /// Whether the flag is set.
    pub fn is_set(&self) -> bool {
        self.word.load(Ordering::Acquire) & SET != 0
    }

    /// Resets the flag; later waiters block until the next [`set`](Self::set).
    pub fn clear(&self) {
        self.word.fetch_and(!SET, Ordering::Relaxed);
    }

    /// Whether some waiter has said that it sleeps on the flag, so that the next
    /// [`set`](Self::set) makes a wake-up call. It tells that somebody waits, not how
    /// many; a waiter that timed out or died asleep may leave it set until the next
    /// `set`. For diagnostics.
    pub fn sleepers_announced(&self) -> bool {
        self.word.load(Ordering::Relaxed) & WAITERS != 0
    }
}

impl<W: Wait> Event<W> {
    /// Sets the flag and wakes every waiter. Setting a set event does nothing.
    pub fn set(&self) {
        let mut current = self.word.load(Ordering::Relaxed);
        loop {
            if current & SET != 0 {
                return;
            }
            let next = (current & !WAITERS).wrapping_add(GENERATION) | SET;
            match self.word.compare_exchange_weak(
                current,
                next,
                Ordering::Release,
                Ordering::Relaxed,
            ) {
                Ok(_) => break,
                Err(now) => current = now,
            }
        }
        if current & WAITERS != 0 {
            W::wake_all(&self.word);
        }
    }

    /// Blocks until the flag is set.
    pub fn wait(&self) {
        self.wait_until(None);
    }

    fn wait_until(&self, deadline: Option<u64>) -> bool {
        let generation = self.word.load(Ordering::Acquire) & !(SET | WAITERS);
        // Until we mark WAITERS, `set` costs the setter no system call.
        spin_while::<W>(Awaiting::Answer, || {
            let current = self.word.load(Ordering::Acquire);
            current & SET == 0 && current & !(SET | WAITERS) == generation
        });
        loop {
            let Some(current) = self.check_or_mark(generation) else {
                return true;
            };
            if expired::<W>(deadline) {
                return false;
            }
            W::wait(&self.word, current, deadline);
        }
    }

    /// `None` once the flag is set or was set since `generation`; else marks the word
    /// WAITERS, so that `set` wakes us, and returns it to wait on.
    fn check_or_mark(&self, generation: u32) -> Option<u32> {
        let mut current = self.word.load(Ordering::Acquire);
        loop {
            if current & SET != 0 || current & !(SET | WAITERS) != generation {
                return None;
            }
            if current & WAITERS != 0 {
                return Some(current);
            }
            match self.word.compare_exchange_weak(
                current,
                current | WAITERS,
                Ordering::Acquire,
                Ordering::Acquire,
            ) {
                Ok(_) => return Some(current | WAITERS),
                Err(now) => current = now,
            }
        }
    }
}

/// The timed forms, for a backend with a clock ([`Timed`]).
impl<W: Timed> Event<W> {
    /// Blocks until the flag is set or `timeout` passes. Returns whether it was set
    /// (Python's `wait(timeout)` return value).
    pub fn wait_timeout(&self, timeout: Duration) -> bool {
        self.is_set() || self.wait_until(Some(deadline_after::<W>(timeout)))
    }
}

#[cfg(feature = "embassy")]
impl<W: crate::WakeTasks> Event<W> {
    /// The async form of [`wait`](Self::wait), for tasks of one executor. For a
    /// timeout, race it against a timer (`embassy_time::with_timeout`).
    pub async fn wait_async(&self) {
        let generation = self.word.load(Ordering::Acquire) & !(SET | WAITERS);
        core::future::poll_fn(|cx| {
            // Register first: a `set` after the look below then wakes us.
            W::register(&self.word, cx.waker());
            match self.check_or_mark(generation) {
                None => core::task::Poll::Ready(()),
                Some(_) => core::task::Poll::Pending,
            }
        })
        .await
    }
}

impl<W> Default for Event<W> {
    fn default() -> Self {
        Self::new()
    }
}

impl<W> fmt::Debug for Event<W> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Event")
            .field("set", &self.is_set())
            .finish()
    }
}
