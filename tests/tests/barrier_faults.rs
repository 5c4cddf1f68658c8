//! A barrier whose parties are SIGKILLed at random points: nobody ever passes a
//! generation before every party arrived in it, the survivors are freed (by their
//! timeout breaking the barrier, or by an `abort` from outside) instead of waiting for
//! ever, and after `reset` the barrier works again.

use shmsync::{shm_struct, Barrier, BarrierError, Shared, Value};
use shmsync_tests::faults::{self, Crew};
use shmsync_tests::XorShift;
use std::time::Duration;

const PARTIES: u32 = 4;
const TRIALS: u32 = 40;
/// How long a party waits for the others before it breaks the barrier.
const PATIENCE: Duration = Duration::from_millis(300);

shm_struct! {
    struct Arena {
        barrier: Barrier,
        /// Arrivals, counted before each wait.
        arrivals: Value<u64>,
        passed: Value<u64>,
        left_early: Value<u32>,
        broken: Value<u32>,
        timed_out: Value<u32>,
    }
}

impl Arena {
    fn new() -> Arena {
        Arena {
            barrier: Barrier::new(PARTIES),
            arrivals: Value::new(0),
            passed: Value::new(0),
            left_early: Value::new(0),
            broken: Value::new(0),
            timed_out: Value::new(0),
        }
    }

    /// Crosses the barrier round after round until it breaks.
    fn party(&self) {
        for round in 0.. {
            self.arrivals.fetch_add(1);
            match self.barrier.wait_timeout(PATIENCE) {
                Ok(_) => {
                    // A party killed before it arrived was counted by `arrivals` (or
                    // not at all): never too few here unless one went early.
                    if self.arrivals.get() < (round + 1) * u64::from(PARTIES) {
                        self.left_early.fetch_add(1);
                    }
                    self.passed.fetch_add(1);
                }
                Err(BarrierError::Broken) => {
                    self.broken.fetch_add(1);
                    return;
                }
                Err(BarrierError::TimedOut) => {
                    self.timed_out.fetch_add(1);
                    return;
                }
            }
        }
    }
}

#[test]
fn barrier_frees_the_survivors_of_a_killed_party() {
    let mut random = XorShift(0x5eed_0301);
    let (mut kills, mut hangs, mut aborted) = (0, 0, 0);
    for trial in 0..TRIALS {
        let arena = Shared::anonymous(Arena::new()).unwrap();
        let mut crew = Crew::spawn(PARTIES as usize, |_| arena.party());
        faults::wait_for_rounds(&arena.passed, 40);
        crew.kill_at_random(&mut random, 1, 2_000);
        kills += crew.kills;
        // Half the time someone who saw the party go frees the others at once; else
        // their timeouts do.
        if trial % 2 == 0 {
            arena.barrier.abort();
            aborted += 1;
        }
        hangs += crew.join_survivors();
        assert_eq!(
            arena.left_early.get(),
            0,
            "trial {trial}: a party left early"
        );
        let survivors = PARTIES - 1;
        assert_eq!(
            arena.broken.get() + arena.timed_out.get(),
            survivors,
            "trial {trial}: every survivor is freed with an error"
        );
        if trial % 2 == 1 {
            assert!(
                arena.timed_out.get() >= 1,
                "trial {trial}: freed without a timeout"
            );
        }
        assert!(arena.barrier.is_broken());
        // Made ready again, it works for a new set of parties.
        arena.barrier.reset();
        assert_eq!(arena.barrier.n_waiting(), 0);
        std::thread::scope(|s| {
            let parties: Vec<_> = (0..PARTIES)
                .map(|_| s.spawn(|| arena.barrier.wait_timeout(Duration::from_secs(10))))
                .collect();
            let leaders = parties
                .into_iter()
                .map(|party| {
                    party
                        .join()
                        .unwrap()
                        .expect("the barrier works after reset")
                })
                .filter(|result| result.is_leader())
                .count();
            assert_eq!(leaders, 1);
        });
    }
    eprintln!(
        "Barrier({PARTIES}): {TRIALS} trials, {kills} kills, {aborted} freed by abort, the \
         rest by a timeout; {hangs} hangs"
    );
    assert_eq!(hangs, 0, "survivors hung");
}
