//! A re-entrant lock whose holders are SIGKILLed at random depths and points: the
//! survivors always finish, never two hold it at once, the holder after a death is told
//! (and repairs what the dead one half-did), and the depth is always the caller's.

use shmsync::{shm_struct, Event, LockError, RLock, RLockGuard, Shared, TryLockError, Value};
use shmsync_tests::faults::{self, Crew};
use shmsync_tests::XorShift;

const WORKERS: usize = 4;
const TRIALS: u32 = 60;

shm_struct! {
    struct Arena {
        lock: RLock,
        /// A pair the holder updates in two steps: unequal only while it is inside (or
        /// after it died there).
        low: Value<u64>,
        high: Value<u64>,
        /// The pid of the holder, set at its first level and cleared at its last.
        holder: Value<u32>,
        overlaps: Value<u32>,
        wrong_depths: Value<u32>,
        repairs: Value<u32>,
        unusable: Value<u32>,
        rounds: Value<u64>,
        stop: Event,
    }
}

impl Arena {
    fn new() -> Arena {
        Arena {
            lock: RLock::new(),
            low: Value::new(0),
            high: Value::new(0),
            holder: Value::new(0),
            overlaps: Value::new(0),
            wrong_depths: Value::new(0),
            repairs: Value::new(0),
            unusable: Value::new(0),
            rounds: Value::new(0),
            stop: Event::new(),
        }
    }

    /// One more level; after a death, the repair of what the dead holder half-did.
    fn level(&self) -> Option<RLockGuard<'_>> {
        let me = std::process::id();
        let first = !self.lock.is_owned_by_current_thread();
        match self.lock.lock() {
            Ok(guard) => {
                if first && self.holder.swap(me) != 0 {
                    self.overlaps.fetch_add(1);
                }
                Some(guard)
            }
            Err(LockError::OwnerDied(guard)) => {
                self.high.set(self.low.get());
                self.holder.set(me);
                self.repairs.fetch_add(1);
                guard.mark_consistent();
                Some(guard)
            }
            Err(_) => {
                self.unusable.fetch_add(1);
                None
            }
        }
    }

    fn work(&self, seed: u64) {
        let mut random = XorShift(seed);
        while !self.stop.is_set() {
            let depth = 1 + random.below(3) as u32;
            let mut levels = Vec::new();
            for _ in 0..depth {
                match self.level() {
                    Some(level) => levels.push(level),
                    None => return,
                }
            }
            if self.lock.recursion_count() != depth {
                self.wrong_depths.fetch_add(1);
            }
            self.low.set(self.low.get() + 1);
            for _ in 0..random.below(500) {
                std::hint::spin_loop();
            }
            self.high.set(self.low.get());
            // Released one level at a time, the last after clearing `holder`.
            while levels.len() > 1 {
                levels.pop();
            }
            self.holder.set(0);
            drop(levels);
            self.rounds.fetch_add(1);
        }
    }
}

#[test]
fn rlock_survives_holders_killed_at_any_depth() {
    let mut random = XorShift(0x5eed_0101);
    let (mut kills, mut hangs, mut repairs) = (0, 0, 0);
    for trial in 0..TRIALS {
        let arena = Shared::anonymous(Arena::new()).unwrap();
        let seed = faults::seed(&mut random);
        let mut crew = Crew::spawn(WORKERS, |w| arena.work(seed + w as u64));
        faults::wait_for_rounds(&arena.rounds, 20);
        let victims = 1 + random.below(2);
        crew.kill_at_random(&mut random, victims, 2_000);
        kills += crew.kills;
        arena.stop.set();
        hangs += crew.join_survivors();
        // Whoever takes it now (a dead holder keeps nobody out) finds the pair whole, or
        // is told it may not be.
        match arena.lock.lock_timeout(faults::FINISH_WITHIN) {
            Ok(_) => {}
            Err(TryLockError::OwnerDied(guard)) => {
                arena.high.set(arena.low.get());
                arena.repairs.fetch_add(1);
                guard.mark_consistent();
            }
            Err(error) => panic!("trial {trial}: {error}"),
        }
        assert_eq!(
            arena.low.get(),
            arena.high.get(),
            "trial {trial}: a torn pair nobody was told of"
        );
        assert_eq!(
            arena.overlaps.get(),
            0,
            "trial {trial}: two holders at once"
        );
        assert_eq!(arena.wrong_depths.get(), 0, "trial {trial}: a wrong depth");
        assert_eq!(
            arena.unusable.get(),
            0,
            "trial {trial}: the lock became unusable"
        );
        assert!(!arena.lock.is_locked());
        repairs += arena.repairs.get();
    }
    eprintln!(
        "RLock: {TRIALS} trials, {kills} kills, {repairs} repairs after a death, {hangs} hangs"
    );
    assert_eq!(hangs, 0, "survivors hung");
}
