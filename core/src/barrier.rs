//! A barrier for a fixed number of parties, as Python's `threading.Barrier` and Rust's
//! `std::sync::Barrier`, which a party that never comes cannot wedge for ever.
//!
//! ```
//! use shmsync_core::spin::Barrier;
//!
//! static PHASE: Barrier = Barrier::new(3);
//!
//! std::thread::scope(|s| {
//!     let leaders: Vec<_> = (0..3)
//!         .map(|_| s.spawn(|| PHASE.wait().unwrap().is_leader()))
//!         .collect();
//!     let leaders = leaders.into_iter().filter_map(|l| l.join().unwrap().then_some(())).count();
//!     assert_eq!(leaders, 1); // exactly one party per generation is told it was last
//! });
//! ```

use core::fmt;
use core::marker::PhantomData;
use core::time::Duration;

use crate::error::BarrierError;
use crate::fault::{ends_here_if_killed, KillPoint};
use crate::owner::Owner;
use crate::sync::{const_fn, AtomicU32, Ordering};
use crate::wait::{deadline_after, expired, next_look, sleep_flagged, Timed, Wait};

// The barrier's whole state is one word, so that every change is one compare-and-swap
// (and a party killed at any instruction leaves it whole):
//
// | bits   | field      | meaning                                                     |
// |--------|------------|-------------------------------------------------------------|
// | 0..=13 | count      | parties arrived in the current generation                   |
// | 14..=25| generation | which trip of the barrier this is (modulo 4096)             |
// | 26..=29| history    | how the last 4 generations ended: bit 26 the one before the |
// |        |            | current, set if it was reset rather than tripped            |
// | 30     | BROKEN     | the current generation is broken (aborted, or timed out)    |
// | 31     | WAITERS    | some party sleeps on the word: the next change wakes them   |
//
// A party waits until the generation it arrived in ends, and learns from `history` how.

const COUNT: u32 = (1 << 14) - 1;
/// The count never reaches the parties (the last to arrive trips the barrier instead).
const MAX_PARTIES: u32 = COUNT + 1;
const GENERATION_SHIFT: u32 = 14;
const GENERATION: u32 = (1 << 12) - 1;
const HISTORY_SHIFT: u32 = 26;
const HISTORY: u32 = (1 << 4) - 1;
const BROKEN: u32 = 1 << 30;
const WAITERS: u32 = 1 << 31;

/// A barrier: each of `parties` threads calls [`wait`](Self::wait), and all go on once
/// the last has arrived; then it is ready for the next round (a new generation).
///
/// `#[repr(C)]`, 8 bytes of atomics: it can live in a `static` or in memory shared
/// between processes. `W` is how a party waits; `O`, the owner backend, says how long a
/// sleeping party trusts that it will be woken ([`Owner::RECHECK_NS`]): a party killed
/// between tripping the barrier and waking the others strands them no longer than that.
///
/// # Broken barriers (Python's `BrokenBarrierError`)
///
/// The barrier breaks when a party's timeout passes before every party arrived (that
/// party gets [`BarrierError::TimedOut`]), when anyone calls [`abort`](Self::abort), or,
/// for the parties waiting at that moment, when anyone calls [`reset`](Self::reset).
/// Every party waiting then, and every later one, gets [`BarrierError::Broken`] until
/// [`reset`](Self::reset) makes it ready again.
///
/// A party that dies before it arrives leaves the others waiting: that is what a
/// barrier is. Their way out is a timeout ([`wait_timeout`](Self::wait_timeout)), or
/// [`abort`](Self::abort) from any thread or process that sees the party gone. A party
/// that dies after it arrived has arrived: the others go on when the rest arrive.
///
/// Used by more threads than parties, a party that does not get to run while four more
/// generations end cannot tell any more whether its own tripped or was reset, and is
/// told it broke; and one that does not run while 4,096 end may take a later one for
/// its own. With as many threads as parties neither can happen: a generation cannot
/// trip without every party, and only [`reset`](Self::reset) ends one otherwise.
///
/// All-zero bytes (a fresh shared mapping) are a barrier of no parties, on which every
/// wait fails as [`BarrierError::Broken`]: a barrier built in place must be given its
/// parties (`*barrier = Barrier::new(n)`) before anyone waits.
///
/// # Example
///
/// ```
/// use shmsync_core::spin::Barrier;
/// use shmsync_core::BarrierError;
///
/// let barrier = Barrier::new(1);
/// assert!(barrier.wait().unwrap().is_leader()); // one party: it is always last
/// barrier.abort();
/// assert_eq!(barrier.wait().unwrap_err(), BarrierError::Broken);
/// barrier.reset();
/// assert!(barrier.wait().is_ok());
/// ```
#[repr(C)]
pub struct Barrier<W, O> {
    word: AtomicU32,
    parties: AtomicU32,
    _backends: PhantomData<fn() -> (W, O)>,
}

/// Which party a [`Barrier::wait`] was: the order of its arrival.
///
/// # Example
///
/// ```
/// use shmsync_core::spin::Barrier;
///
/// let barrier = Barrier::new(1);
/// let result = barrier.wait().unwrap();
/// assert_eq!(result.index(), 0);
/// assert!(result.is_leader());
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BarrierWaitResult {
    index: u32,
    parties: u32,
}

impl BarrierWaitResult {
    /// Whether this party arrived last, and so released the others
    /// (`std::sync::BarrierWaitResult::is_leader`): exactly one per generation.
    pub fn is_leader(&self) -> bool {
        self.index + 1 == self.parties
    }

    /// The order in which this party arrived, from 0 to `parties - 1` (Python's
    /// return value of `wait()`): each once per generation.
    pub fn index(&self) -> u32 {
        self.index
    }
}

/// A party's arrival: it tripped the barrier, or waits in a generation.
enum Arrival {
    Tripped(BarrierWaitResult),
    Waiting {
        generation: u32,
        result: BarrierWaitResult,
    },
}

/// How a generation a party waits in stands.
enum Outcome {
    Waiting,
    Passed,
    Broken,
}

impl<W, O> Barrier<W, O> {
    /// The most parties a barrier can have.
    pub const MAX_PARTIES: u32 = MAX_PARTIES;

    const_fn! {
        /// A barrier for `parties` parties (Python's `Barrier(parties)`).
        ///
        /// # Panics
        ///
        /// If `parties` is 0 or above [`MAX_PARTIES`](Self::MAX_PARTIES) (at compile time
        /// for a barrier in a `static`).
        pub fn new(parties: u32) -> Self {
            assert!(matches!(parties, 1..=MAX_PARTIES), "a barrier has from 1 to 16,384 parties");
            Barrier { word: AtomicU32::new(0), parties: AtomicU32::new(parties), _backends: PhantomData }
        }
    }

    /// How many parties it waits for (Python's `parties`).
    pub fn parties(&self) -> u32 {
        self.parties.load(Ordering::Relaxed)
    }

    /// How many parties wait in the current generation (Python's `n_waiting`).
    pub fn n_waiting(&self) -> u32 {
        self.word.load(Ordering::Relaxed) & COUNT
    }

    /// Whether it is broken (Python's `broken`): every `wait` fails until
    /// [`reset`](Self::reset).
    pub fn is_broken(&self) -> bool {
        self.word.load(Ordering::Relaxed) & BROKEN != 0
    }

    /// The parties as stored, if they are a number of parties: bytes a peer wrote may
    /// not be, and then the barrier counts as broken.
    fn valid_parties(&self) -> Result<u32, BarrierError> {
        match self.parties() {
            parties @ 1..=Self::MAX_PARTIES => Ok(parties),
            _ => Err(BarrierError::Broken),
        }
    }

    /// Counts the calling party in, tripping the barrier if it is the last.
    fn arrive(&self) -> Result<Arrival, BarrierError>
    where
        W: Wait,
    {
        let parties = self.valid_parties()?;
        let mut current = self.word.load(Ordering::Relaxed);
        loop {
            if current & BROKEN != 0 {
                return Err(BarrierError::Broken);
            }
            let index = current & COUNT;
            let result = BarrierWaitResult { index, parties };
            let (next, trips) = match (index + 1).cmp(&parties) {
                core::cmp::Ordering::Less => (current + 1, false),
                core::cmp::Ordering::Equal => (advance(current, false), true),
                // A count no party could have made (a peer's write): fail safe.
                core::cmp::Ordering::Greater => return Err(BarrierError::Broken),
            };
            // Release: a party's writes before the barrier reach every party after it;
            // acquire: the last to arrive sees them all before it releases them.
            match self.word.compare_exchange_weak(
                current,
                next,
                Ordering::AcqRel,
                Ordering::Relaxed,
            ) {
                Ok(_) if trips => {
                    ends_here_if_killed(KillPoint::BarrierTripped);
                    if current & WAITERS != 0 {
                        W::wake_all(&self.word);
                    }
                    return Ok(Arrival::Tripped(result));
                }
                Ok(_) => {
                    return Ok(Arrival::Waiting {
                        generation: generation(current),
                        result,
                    })
                }
                Err(now) => current = now,
            }
        }
    }

    /// Applies `change` to the word (unless it returns `None`) and wakes the sleepers.
    /// Returns whether it changed it.
    fn change(&self, change: impl Fn(u32) -> Option<u32>) -> bool
    where
        W: Wait,
    {
        let mut current = self.word.load(Ordering::Relaxed);
        loop {
            let Some(next) = change(current) else {
                return false;
            };
            match self.word.compare_exchange_weak(
                current,
                next,
                Ordering::AcqRel,
                Ordering::Relaxed,
            ) {
                Ok(_) => {
                    if current & WAITERS != 0 {
                        W::wake_all(&self.word);
                    }
                    return true;
                }
                Err(now) => current = now,
            }
        }
    }

    /// Breaks `generation` if it is still the current one and not broken yet; returns
    /// whether this call broke it.
    fn break_generation(&self, generation_: u32) -> bool
    where
        W: Wait,
    {
        self.change(|current| {
            (generation(current) == generation_ && current & BROKEN == 0)
                .then_some((current | BROKEN) & !WAITERS)
        })
    }
}

impl<W: Wait, O: Owner> Barrier<W, O> {
    /// Waits until every party has arrived (Python's and std's `wait()`); says which
    /// party this was. [`BarrierError::Broken`] if the barrier is broken, or breaks
    /// while this party waits.
    pub fn wait(&self) -> Result<BarrierWaitResult, BarrierError> {
        self.wait_until(None)
    }

    /// Breaks the barrier (Python's `abort()`): every party waiting, and every later
    /// one, gets [`BarrierError::Broken`] until [`reset`](Self::reset). Any thread or
    /// process may call it, a party or not.
    pub fn abort(&self) {
        self.change(|current| (current & BROKEN == 0).then_some((current | BROKEN) & !WAITERS));
    }

    /// Makes the barrier ready for a new round (Python's `reset()`): a new generation,
    /// with nobody arrived and not broken. The parties waiting in the generation it ends
    /// get [`BarrierError::Broken`].
    pub fn reset(&self) {
        self.change(|current| Some(advance(current, true)));
    }

    fn wait_until(&self, deadline: Option<u64>) -> Result<BarrierWaitResult, BarrierError> {
        let (generation, result) = match self.arrive()? {
            Arrival::Tripped(result) => return Ok(result),
            Arrival::Waiting { generation, result } => (generation, result),
        };
        ends_here_if_killed(KillPoint::BarrierArrived);
        loop {
            let current = self.word.load(Ordering::Acquire);
            match outcome(current, generation) {
                Outcome::Passed => return Ok(result),
                Outcome::Broken => return Err(BarrierError::Broken),
                Outcome::Waiting => {}
            }
            if expired::<W>(deadline) {
                if self.break_generation(generation) {
                    return Err(BarrierError::TimedOut);
                }
                continue; // it ended meanwhile: see how
            }
            sleep_flagged::<W>(
                &self.word,
                current,
                WAITERS,
                next_look::<W>(deadline, O::RECHECK_NS),
            );
        }
    }
}

/// The timed form, for a backend with a clock ([`Timed`]).
impl<W: Timed, O: Owner> Barrier<W, O> {
    /// Like [`wait`](Self::wait), but if not every party has arrived after `timeout`,
    /// breaks the barrier for all and returns [`BarrierError::TimedOut`] (Python's
    /// `wait(timeout)`).
    pub fn wait_timeout(&self, timeout: Duration) -> Result<BarrierWaitResult, BarrierError> {
        self.wait_until(Some(deadline_after::<W>(timeout)))
    }
}

#[cfg(feature = "embassy")]
impl<W: crate::WakeTasks, O: Owner> Barrier<W, O> {
    /// The async form of [`wait`](Self::wait), for tasks of one executor. Dropping the
    /// future after its party arrived and before the barrier tripped breaks the barrier,
    /// as a timeout does: the party has left, and the others must not go on counting it.
    ///
    /// For a timeout, race it against a timer (`embassy_time::with_timeout`).
    pub async fn wait_async(&self) -> Result<BarrierWaitResult, BarrierError> {
        let (generation, result) = match self.arrive()? {
            Arrival::Tripped(result) => return Ok(result),
            Arrival::Waiting { generation, result } => (generation, result),
        };
        let leaving = LeaveBreaks {
            barrier: self,
            generation,
        };
        let outcome = core::future::poll_fn(|cx| {
            // Register first: a change after the look below then wakes us.
            W::register(&self.word, cx.waker());
            let current = self.word.load(Ordering::Acquire);
            match outcome(current, generation) {
                Outcome::Passed => core::task::Poll::Ready(Ok(result)),
                Outcome::Broken => core::task::Poll::Ready(Err(BarrierError::Broken)),
                Outcome::Waiting => {
                    if current & WAITERS == 0 {
                        let _ = self.word.compare_exchange(
                            current,
                            current | WAITERS,
                            Ordering::Acquire,
                            Ordering::Acquire,
                        );
                        cx.waker().wake_by_ref(); // look again at once
                    }
                    core::task::Poll::Pending
                }
            }
        })
        .await;
        core::mem::forget(leaving);
        outcome
    }
}

/// A party whose async wait is dropped before its generation ended breaks it.
#[cfg(feature = "embassy")]
struct LeaveBreaks<'a, W: Wait, O> {
    barrier: &'a Barrier<W, O>,
    generation: u32,
}

#[cfg(feature = "embassy")]
impl<W: Wait, O> Drop for LeaveBreaks<'_, W, O> {
    fn drop(&mut self) {
        self.barrier.break_generation(self.generation);
    }
}

/// The word after the current generation ends, by a trip or (`broken`) a reset: the
/// next generation, nobody arrived, not broken, nobody asleep.
fn advance(current: u32, broken: bool) -> u32 {
    let next_generation = (generation(current) + 1) & GENERATION;
    let history = ((current >> HISTORY_SHIFT) << 1 | u32::from(broken)) & HISTORY;
    next_generation << GENERATION_SHIFT | history << HISTORY_SHIFT
}

fn generation(word: u32) -> u32 {
    (word >> GENERATION_SHIFT) & GENERATION
}

/// How the generation `generation`, in which a party waits, stands by the word `current`.
fn outcome(current: u32, generation_: u32) -> Outcome {
    let since = generation(current).wrapping_sub(generation_) & GENERATION;
    match since {
        0 if current & BROKEN != 0 => Outcome::Broken,
        0 => Outcome::Waiting,
        1..=4 if current >> (HISTORY_SHIFT + since - 1) & 1 == 0 => Outcome::Passed,
        // Reset, or too long ago to tell: fail safe.
        _ => Outcome::Broken,
    }
}

impl<W, O> fmt::Debug for Barrier<W, O> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Barrier")
            .field("parties", &self.parties())
            .field("n_waiting", &self.n_waiting())
            .field("broken", &self.is_broken())
            .finish()
    }
}
