//! What the ownership tests (`tests/ownership.rs`) and their helper program
//! (`shmsync-owner`) share: one lock, and counters in the same segment that show two
//! holders at once and lost updates, whichever process or namespace they happen in.
//!
//! Every result is kept in shared memory rather than returned, so that a waiter in a
//! forked child, another user or another PID namespace reports to the test the same way.

use shmsync::{shm_struct, Event, Lock, TryLockError, TryLockResult, Value};
use std::time::{Duration, Instant};

/// How long any locker waits: far beyond a live holder's longest hold, so that only a
/// lock nobody will ever release (or a missed owner death) runs into it.
pub const WAIT: Duration = Duration::from_secs(10);

/// What a single lock call ended with, as stored in [`Contended::outcome`].
pub mod outcome {
    /// Nothing recorded yet.
    pub const NONE: u32 = 0;
    /// `Ok`.
    pub const OK: u32 = 1;
    /// `Err(OwnerDied(_))`.
    pub const OWNER_DIED: u32 = 2;
    /// `Err(WouldBlock)`: the wait timed out.
    pub const WOULD_BLOCK: u32 = 3;
    /// `Err(NotRecoverable)`.
    pub const NOT_RECOVERABLE: u32 = 4;

    /// Its name, for messages.
    pub fn name(code: u32) -> &'static str {
        match code {
            NONE => "nothing",
            OK => "Ok",
            OWNER_DIED => "OwnerDied",
            WOULD_BLOCK => "WouldBlock",
            NOT_RECOVERABLE => "NotRecoverable",
            _ => "?",
        }
    }
}

shm_struct! {
    /// A lock and the evidence of how it was held.
    pub struct Contended {
        pub lock: Lock,
        /// Holders inside the critical section right now: more than one is the bug.
        pub inside: Value<u32>,
        /// Times a holder entered while another was inside.
        pub overlaps: Value<u32>,
        /// Incremented in two steps (read, then write) under the lock: an overlap
        /// loses an increment.
        pub counter: Value<u64>,
        /// Critical sections completed, counted atomically: what `counter` must equal.
        pub done: Value<u64>,
        /// Lock calls that said the owner died.
        pub owner_died: Value<u32>,
        /// Lock calls that timed out.
        pub timeouts: Value<u32>,
        /// Lock calls that found the lock not recoverable.
        pub not_recoverable: Value<u32>,
        /// Contenders that are ready to start (or have reached a later phase).
        pub ready: Value<u32>,
        /// Contenders that have finished.
        pub finished: Value<u32>,
        /// Starts the contenders together.
        pub go: Event,
        /// Set by a holder once it holds the lock.
        pub held: Event,
        /// Set by the test once it has killed the holder.
        pub killed: Event,
        /// A single waiter's result (see [`outcome`]).
        pub outcome: Value<u32>,
        /// How long that waiter waited, in microseconds.
        pub waited_us: Value<u64>,
        /// A child's set-up: 0 not done, 1 done, anything else the step that failed.
        pub setup: Value<u32>,
        /// The errno of the step that failed.
        pub setup_errno: Value<i32>,
    }
}

impl Contended {
    /// Free lock, every count at zero.
    pub const fn new() -> Self {
        Contended {
            lock: Lock::new(),
            inside: Value::new(0),
            overlaps: Value::new(0),
            counter: Value::new(0),
            done: Value::new(0),
            owner_died: Value::new(0),
            timeouts: Value::new(0),
            not_recoverable: Value::new(0),
            ready: Value::new(0),
            finished: Value::new(0),
            go: Event::new(),
            held: Event::new(),
            killed: Event::new(),
            outcome: Value::new(outcome::NONE),
            waited_us: Value::new(0),
            setup: Value::new(0),
            setup_errno: Value::new(0),
        }
    }

    /// The critical section: counts a second holder, and does a two-step increment
    /// with `hold` (or a short spin) between its steps, so that a second holder loses
    /// an update.
    pub fn section(&self, hold: Duration) {
        if self.inside.fetch_add(1) != 0 {
            self.overlaps.fetch_add(1);
        }
        let before = self.counter.get();
        if hold.is_zero() {
            for _ in 0..200 {
                std::hint::spin_loop();
            }
        } else {
            std::thread::sleep(hold);
        }
        self.counter.set(before + 1);
        self.inside.fetch_sub(1);
        self.done.fetch_add(1);
    }

    /// One locked critical section. `false` once going on is pointless: the lock
    /// timed out (a live holder never holds it that long) or is not recoverable.
    pub fn cycle(&self, hold: Duration) -> bool {
        match self.lock.lock_timeout(WAIT) {
            Ok(guard) => {
                self.section(hold);
                drop(guard);
                true
            }
            Err(TryLockError::OwnerDied(guard)) => {
                // Every holder in these tests lives: this is a takeover.
                self.owner_died.fetch_add(1);
                self.section(hold);
                guard.mark_consistent();
                drop(guard);
                true
            }
            Err(TryLockError::WouldBlock) => {
                self.timeouts.fetch_add(1);
                false
            }
            Err(TryLockError::NotRecoverable) => {
                self.not_recoverable.fetch_add(1);
                false
            }
        }
    }

    /// `cycles` critical sections; every `long_every`-th holds for `long`, long
    /// enough that the others sleep in the lock and look at its owner.
    pub fn contend(&self, cycles: u64, long_every: u64, long: Duration) {
        for i in 1..=cycles {
            let hold = if long_every != 0 && i % long_every == 0 {
                long
            } else {
                Duration::ZERO
            };
            if !self.cycle(hold) {
                break;
            }
        }
    }

    /// Records what one lock call ended with and how long it took; a guard from
    /// `OwnerDied` is marked consistent and, like any other, released.
    pub fn record<'a>(&self, began: Instant, result: TryLockResult<'a>) {
        self.waited_us.set(began.elapsed().as_micros() as u64);
        let code = match result {
            Ok(guard) => {
                self.section(Duration::ZERO);
                drop(guard);
                outcome::OK
            }
            Err(TryLockError::OwnerDied(guard)) => {
                self.section(Duration::ZERO);
                guard.mark_consistent();
                drop(guard);
                outcome::OWNER_DIED
            }
            Err(TryLockError::WouldBlock) => outcome::WOULD_BLOCK,
            Err(TryLockError::NotRecoverable) => outcome::NOT_RECOVERABLE,
        };
        self.outcome.set(code);
    }

    /// The counts, for the log.
    pub fn summary(&self) -> String {
        let (done, counter) = (self.done.get(), self.counter.get());
        format!(
            "{done} sections, counter {counter} ({} lost updates), {} overlaps, {} \
             OwnerDied, {} timeouts, {} NotRecoverable",
            done.saturating_sub(counter),
            self.overlaps.get(),
            self.owner_died.get(),
            self.timeouts.get(),
            self.not_recoverable.get(),
        )
    }

    /// The lock was never held twice, never taken from a live holder, never timed
    /// out, and every section counted.
    #[track_caller]
    pub fn assert_exclusive(&self, at_least: u64) {
        let summary = self.summary();
        assert_eq!(self.overlaps.get(), 0, "two holders at once: {summary}");
        assert_eq!(
            self.counter.get(),
            self.done.get(),
            "lost updates: {summary}"
        );
        assert_eq!(
            self.owner_died.get(),
            0,
            "a live holder was declared dead: {summary}"
        );
        assert_eq!(self.timeouts.get(), 0, "a lock call timed out: {summary}");
        assert_eq!(
            self.not_recoverable.get(),
            0,
            "the lock became not recoverable: {summary}"
        );
        assert!(
            self.done.get() >= at_least,
            "only {} of {at_least} sections ran: {summary}",
            self.done.get()
        );
    }
}

impl Default for Contended {
    fn default() -> Self {
        Self::new()
    }
}
