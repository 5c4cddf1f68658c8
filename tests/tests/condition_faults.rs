//! A bounded hand-off over one lock and two conditions (Python's `Queue` in
//! miniature), whose consumers are SIGKILLed at random points (asleep, just chosen by a
//! notify, taking the lock back, holding it): no item is lost or made up, neither side
//! is left asleep with work to do (a wake-up chosen for a dead waiter is passed on),
//! and the survivors all finish.

use shmsync::{shm_struct, Condition, Lock, LockError, LockGuard, Shared, Value};
use shmsync_tests::faults::{self, Crew, FINISH_WITHIN};
use shmsync_tests::XorShift;
use std::time::{Duration, Instant};

const CONSUMERS: usize = 4;
const TRIALS: u32 = 60;
const ITEMS: u64 = 2_000;
/// Items waiting at most: the producer waits for room beyond.
const CAPACITY: u64 = 4;

shm_struct! {
    struct Arena {
        lock: Lock,
        not_empty: Condition,
        not_full: Condition,
        /// Items waiting; always `produced - consumed` once repaired.
        items: Value<u64>,
        produced: Value<u64>,
        consumed: Value<u64>,
        no_more: Value<u32>,
        repairs: Value<u32>,
    }
}

impl Arena {
    fn new() -> Arena {
        Arena {
            lock: Lock::new(),
            not_empty: Condition::new(),
            not_full: Condition::new(),
            items: Value::new(0),
            produced: Value::new(0),
            consumed: Value::new(0),
            no_more: Value::new(0),
            repairs: Value::new(0),
        }
    }

    /// What a locker told that a holder died does: the counts are changed one step at
    /// a time, and this puts them right.
    fn repaired<'a>(
        &self,
        taken: Result<LockGuard<'a>, LockError<LockGuard<'a>>>,
    ) -> LockGuard<'a> {
        match taken {
            Ok(guard) => guard,
            Err(LockError::OwnerDied(guard)) => {
                self.items.set(self.produced.get() - self.consumed.get());
                self.repairs.fetch_add(1);
                guard.mark_consistent();
                guard
            }
            Err(error) => panic!("{error}"),
        }
    }

    fn consume(&self, seed: u64) {
        let mut random = XorShift(seed);
        let mut held = self.repaired(self.lock.lock());
        loop {
            if self.items.get() > 0 {
                self.items.set(self.items.get() - 1);
                self.consumed.fetch_add(1);
                self.not_full.notify(1);
                // Now and then, let the lock go between items.
                if random.below(4) == 0 {
                    drop(held);
                    held = self.repaired(self.lock.lock());
                }
            } else if self.no_more.get() == 1 {
                return;
            } else {
                // No timeout: a lost wake-up shows as a hang.
                held = self.repaired(self.not_empty.wait(held));
            }
        }
    }

    /// Produces `count` items; false if it waited for room for longer than a live
    /// consumer ever takes (a lost wake-up).
    fn produce(&self, count: u64) -> bool {
        for _ in 0..count {
            let mut held = self.repaired(self.lock.lock());
            while self.items.get() >= CAPACITY {
                match self.not_full.wait_timeout(held, FINISH_WITHIN) {
                    Ok((again, result)) if !result.timed_out() => held = again,
                    Ok(_) => return false,
                    Err(LockError::OwnerDied((again, _))) => {
                        held = self.repaired(Err(LockError::OwnerDied(again)))
                    }
                    Err(error) => panic!("{error}"),
                }
            }
            self.produced.fetch_add(1);
            self.items.set(self.items.get() + 1);
            self.not_empty.notify(1);
        }
        true
    }
}

#[test]
fn condition_survives_waiters_killed_anywhere() {
    let mut random = XorShift(0x5eed_0201);
    let (mut kills, mut hangs, mut stranded, mut repairs) = (0, 0, 0, 0);
    let mut stalled = 0;
    for trial in 0..TRIALS {
        let arena = Shared::anonymous(Arena::new()).unwrap();
        let seed = faults::seed(&mut random);
        let mut crew = Crew::spawn(CONSUMERS, |w| arena.consume(seed + w as u64));
        std::thread::scope(|s| {
            let producer = s.spawn(|| arena.produce(ITEMS));
            let victims = 1 + random.below(2);
            crew.kill_at_random(&mut random, victims, 20_000);
            if !producer.join().unwrap() {
                stalled += 1;
            }
        });
        kills += crew.kills;
        // Every item is taken by the survivors without another notify.
        let began = Instant::now();
        while arena.items.get() > 0 && began.elapsed() < FINISH_WITHIN {
            std::thread::sleep(Duration::from_millis(1));
        }
        if arena.items.get() > 0 {
            stranded += 1;
        }
        {
            let _held = arena.repaired(arena.lock.lock());
            arena.no_more.set(1);
            arena.not_empty.notify_all();
        }
        hangs += crew.join_survivors();
        let _held = arena.repaired(arena.lock.lock());
        if stalled == 0 {
            assert_eq!(arena.produced.get(), ITEMS, "trial {trial}");
        }
        assert_eq!(
            arena.consumed.get() + arena.items.get(),
            arena.produced.get(),
            "trial {trial}: items lost or made up"
        );
        repairs += arena.repairs.get();
    }
    eprintln!(
        "Condition: {TRIALS} trials, {kills} kills, {repairs} repairs after a death, \
         {stranded} with items stranded, {stalled} with the producer stalled, {hangs} hangs"
    );
    assert_eq!(stalled, 0, "the producer was left waiting for room");
    assert_eq!(stranded, 0, "items left with the survivors asleep");
    assert_eq!(hangs, 0, "survivors hung");
}

/// The exact case a plain futex condition variable loses: a notify chooses a waiter,
/// and that waiter is killed before it takes the lock back. Another waiter gets the
/// wake-up, with no further notify.
#[test]
fn a_waiter_killed_as_a_notify_chooses_it_passes_the_wake_up_on() {
    shm_struct! {
        struct Gate { lock: Lock, condition: Condition, waiting: Value<u32>, woken: Value<u32> }
    }
    for round in 0..30 {
        let gate = Shared::anonymous(Gate {
            lock: Lock::new(),
            condition: Condition::new(),
            waiting: Value::new(0),
            woken: Value::new(0),
        })
        .unwrap();
        // One at a time, so that the first is the longest waiting, whom the notify
        // chooses.
        let waiters: Vec<_> = (0..3)
            .map(|n| {
                // A daemon: a lost wake-up leaves it asleep, to be killed, not waited for.
                let waiter = shmsync_tests::daemon(
                    shmsync::Process::spawn(|| {
                        let held = gate.lock.lock().unwrap();
                        gate.waiting.fetch_add(1);
                        let held = gate.condition.wait(held).unwrap();
                        gate.woken.fetch_add(1);
                        drop(held);
                    })
                    .unwrap(),
                );
                shmsync_tests::until(|| gate.waiting.get() > n, "the waiter to wait");
                waiter
            })
            .collect();
        {
            // Once the lock is ours, every waiter has released it: all are asleep.
            let _held = gate.lock.lock().unwrap();
            assert_eq!(gate.condition.notify(1), 1);
        }
        let mut waiters = waiters.into_iter();
        let chosen = waiters.next().unwrap();
        chosen.kill().unwrap();
        let chosen_status = shmsync_tests::join(chosen);
        let began = Instant::now();
        let expected = if chosen_status.success() { 1 } else { 0 } + 1;
        // If the chosen one was killed first, its wake-up goes to another; if it got
        // through first, nobody else was chosen, and the next notify wakes one.
        if chosen_status.success() {
            let _held = gate.lock.lock().unwrap();
            gate.condition.notify(1);
        }
        while gate.woken.get() < expected && began.elapsed() < FINISH_WITHIN {
            std::thread::sleep(Duration::from_millis(1));
        }
        assert_eq!(
            gate.woken.get(),
            expected,
            "round {round}: the wake-up was lost"
        );
        {
            let _held = gate.lock.lock().unwrap();
            gate.condition.notify_all();
        }
        for waiter in waiters {
            assert!(shmsync_tests::join(waiter).success(), "round {round}");
        }
    }
}
