//! A readers-writer lock whose readers and writers are SIGKILLed at random points: no
//! reader ever sees a write half done (a writer killed half-way is reported to whoever
//! comes next, who repairs it before anyone reads), a dead reader never keeps writers
//! out, and the survivors always finish.

use shmsync::{
    shm_struct, Event, LockError, RwLock, RwLockWriteGuard, Shared, TryLockError, Value,
};
use shmsync_tests::faults::{self, Crew};
use shmsync_tests::XorShift;
use std::time::Duration;

const WRITERS: usize = 2;
const READERS: usize = 3;
const TRIALS: u32 = 60;

shm_struct! {
    struct Arena {
        lock: RwLock,
        /// A pair a writer updates in two steps.
        low: Value<u64>,
        high: Value<u64>,
        torn: Value<u32>,
        repairs: Value<u32>,
        unusable: Value<u32>,
        rounds: Value<u64>,
        stop: Event,
    }
}

impl Arena {
    fn new() -> Arena {
        Arena {
            lock: RwLock::new(),
            low: Value::new(0),
            high: Value::new(0),
            torn: Value::new(0),
            repairs: Value::new(0),
            unusable: Value::new(0),
            rounds: Value::new(0),
            stop: Event::new(),
        }
    }

    /// Puts the pair right after a writer died half-way.
    fn repair(&self, writing: RwLockWriteGuard<'_>) {
        self.high.set(self.low.get());
        self.repairs.fetch_add(1);
        writing.mark_consistent();
    }

    fn work(&self, worker: usize, seed: u64) {
        let mut random = XorShift(seed);
        while !self.stop.is_set() {
            if worker < WRITERS {
                let writing = match self.lock.write() {
                    Ok(writing) => writing,
                    Err(LockError::OwnerDied(writing)) => {
                        self.repair(writing);
                        continue;
                    }
                    Err(_) => {
                        self.unusable.fetch_add(1);
                        return;
                    }
                };
                self.low.set(self.low.get() + 1);
                for _ in 0..random.below(500) {
                    std::hint::spin_loop();
                }
                self.high.set(self.low.get());
                drop(writing);
            } else {
                match self.lock.read() {
                    Ok(_reading) => {
                        let low = self.low.get();
                        for _ in 0..random.below(500) {
                            std::hint::spin_loop();
                        }
                        if self.high.get() != low {
                            self.torn.fetch_add(1);
                        }
                    }
                    Err(LockError::OwnerDied(writing)) => self.repair(writing),
                    Err(_) => {
                        self.unusable.fetch_add(1);
                        return;
                    }
                }
            }
            self.rounds.fetch_add(1);
        }
    }
}

#[test]
fn rwlock_survives_readers_and_writers_killed_anywhere() {
    let mut random = XorShift(0x5eed_0401);
    let (mut kills, mut hangs, mut repairs) = (0, 0, 0);
    for trial in 0..TRIALS {
        let arena = Shared::anonymous(Arena::new()).unwrap();
        let seed = faults::seed(&mut random);
        let mut crew = Crew::spawn(WRITERS + READERS, |w| arena.work(w, seed + w as u64));
        faults::wait_for_rounds(&arena.rounds, 50);
        let victims = 1 + random.below(2);
        crew.kill_at_random(&mut random, victims, 2_000);
        kills += crew.kills;
        arena.stop.set();
        hangs += crew.join_survivors();
        // A writer gets in now (a dead reader keeps nobody out), told if it must repair.
        match arena.lock.write_timeout(Duration::from_secs(10)) {
            Ok(_) => {}
            Err(TryLockError::OwnerDied(writing)) => arena.repair(writing),
            Err(error) => panic!("trial {trial}: {error}"),
        }
        assert_eq!(
            arena.torn.get(),
            0,
            "trial {trial}: a reader saw half a write"
        );
        assert_eq!(
            arena.unusable.get(),
            0,
            "trial {trial}: the lock became unusable"
        );
        assert_eq!(arena.low.get(), arena.high.get(), "trial {trial}");
        assert!(!arena.lock.is_locked());
        repairs += arena.repairs.get();
    }
    eprintln!("RwLock: {TRIALS} trials, {kills} kills, {repairs} repairs after a writer's death, {hangs} hangs");
    assert_eq!(hangs, 0, "survivors hung");
}
