//! Waking async tasks: the backend for the `*_async` forms, over embassy-sync.
//!
//! The primitives keep only atomics, so a task's waker cannot live in them: it is
//! registered in a small table keyed by the address of the word the task waits on, and
//! the same `wake_one` / `wake_all` calls that wake threads wake the tasks.
//!
//! ```
//! use shmsync_core::{Embassy, Semaphore};
//!
//! static SLOTS: Semaphore<Embassy> = Semaphore::new(1);
//!
//! async fn worker() {
//!     SLOTS.acquire_async().await;
//!     // ... at most one task here ...
//!     SLOTS.release();
//! }
//! # let _ = worker;
//! ```

use core::cell::RefCell;
use core::task::Waker;

use embassy_sync::blocking_mutex::CriticalSectionMutex;
use embassy_sync::waitqueue::MultiWakerRegistration;

use core::marker::PhantomData;

use crate::backend::spin::sealed::TimeSource;
use crate::backend::spin::{Clock, NoClock, Spin};
use crate::sync::AtomicU32;
use crate::wait::{Timed, Wait};

/// A [`Wait`] backend that can also wake async tasks; the `*_async` forms need it.
///
/// # Example
///
/// ```
/// use shmsync_core::{Embassy, WakeTasks};
/// fn takes_a_task_backend<W: WakeTasks>() {}
/// takes_a_task_backend::<Embassy>();
/// ```
pub trait WakeTasks: Wait {
    /// Arranges for `waker` to be woken by the next `wake_one` or `wake_all` on `word`.
    /// It may also be woken sooner, for no reason: pollers check their condition again.
    fn register(word: &AtomicU32, waker: &Waker);
}

/// The backend for tasks of an embassy executor (or any executor) in one address space.
///
/// Waits in [`lock_async`](crate::Lock::lock_async),
/// [`acquire_async`](crate::Semaphore::acquire_async) and
/// [`wait_async`](crate::Event::wait_async) yield to the executor; a release, `set` or
/// unlock wakes every task waiting on that word (each checks again and all but the
/// winners wait again), so a future dropped before it completes can never swallow a
/// wake-up meant for another. The blocking forms spin, as [`Spin`] does: on a
/// cooperative executor use the async or `try_` forms.
///
/// Timeouts need a clock, as with [`Spin`]: `Embassy<MyClock>` is [`Timed`]; plain
/// `Embassy` ([`NoClock`]) has no timed forms (race the async forms against a timer
/// instead, for example `embassy_time::with_timeout`).
///
/// Needs a `critical-section` implementation in the final binary (for example
/// cortex-m's `critical-section-single-core`).
///
/// # Example
///
/// ```
/// use shmsync_core::{Embassy, Event};
///
/// static READY: Event<Embassy> = Event::new();
///
/// async fn consumer() {
///     READY.wait_async().await;
/// }
/// READY.set();
/// # let _ = consumer;
/// ```
pub struct Embassy<C = NoClock>(PhantomData<fn() -> C>);

/// Words that tasks can wait on at once; past that, a task is woken at once and polls
/// again (slower, still correct).
const WORDS: usize = 16;
/// Tasks remembered per word; past that, embassy-sync wakes them all and starts over.
const TASKS_PER_WORD: usize = 4;

struct Waiters {
    /// The word's address; 0 for a free slot.
    word: usize,
    tasks: MultiWakerRegistration<TASKS_PER_WORD>,
}

static TABLE: CriticalSectionMutex<RefCell<[Waiters; WORDS]>> =
    CriticalSectionMutex::new(RefCell::new(
        [const {
            Waiters {
                word: 0,
                tasks: MultiWakerRegistration::new(),
            }
        }; WORDS],
    ));

fn address(word: &AtomicU32) -> usize {
    word as *const AtomicU32 as usize
}

impl<C: TimeSource> Wait for Embassy<C> {
    /// Whatever its clock: tasks are woken through their wakers.
    const NAME: &'static str = "Embassy";

    fn now() -> u64 {
        Spin::<C>::now()
    }

    fn wait(word: &AtomicU32, expected: u32, deadline: Option<u64>) {
        Spin::<C>::wait(word, expected, deadline)
    }

    fn wake_one(word: &AtomicU32) {
        // Every waiter, not one: the one we would pick may belong to a dropped future.
        Self::wake_all(word)
    }

    fn wake_all(word: &AtomicU32) {
        let word = address(word);
        TABLE.lock(|table| {
            let mut table = table.borrow_mut();
            if let Some(slot) = table.iter_mut().find(|slot| slot.word == word) {
                slot.tasks.wake();
                slot.word = 0;
            }
        });
    }
}

impl<C: Clock> Timed for Embassy<C> {}

impl<C: TimeSource> WakeTasks for Embassy<C> {
    fn register(word: &AtomicU32, waker: &Waker) {
        let word = address(word);
        let registered = TABLE.lock(|table| {
            let mut table = table.borrow_mut();
            let slot = match table.iter().position(|slot| slot.word == word) {
                Some(i) => Some(i),
                None => table.iter().position(|slot| slot.word == 0),
            };
            slot.map(|i| {
                table[i].word = word;
                table[i].tasks.register(waker);
            })
        });
        if registered.is_none() {
            waker.wake_by_ref();
        }
    }
}
