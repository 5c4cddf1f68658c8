//! Waiters on crowded CPUs: with many more ping-pong partners than CPUs, the waiters
//! for an answer stop spinning and sleep at once (see `Futex::crowded`). Every answer
//! still reaches its waiter: no round of any pair waits out its timeout.

use shmsync::{Event, Futex, Queue, Semaphore};
use shmsync_core::Wait;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;

/// Pairs at once: far more runnable threads than the CPUs of a CI machine.
const PAIRS: usize = 16;
const ROUNDS: u32 = 2_000;
/// Far longer than a round takes even on a crowded machine: only a lost wake-up
/// reaches it.
const LOST: Duration = Duration::from_secs(30);

/// Runs `PAIRS` pairs of `serve` and `ask`, each on its own thread, at once.
fn pairs<S: Sync>(make: impl Fn() -> S, ask: fn(&S, u32), serve: fn(&S, u32)) {
    let pairs: Vec<S> = (0..PAIRS).map(|_| make()).collect();
    // Rounds that began on a thread that found the CPUs crowded: printed, not
    // asserted (a machine with many CPUs is not crowded by these threads).
    let crowded = AtomicU32::new(0);
    let counted = |round: u32| {
        if Futex::crowded() {
            crowded.fetch_add(1, Ordering::Relaxed);
        }
        round
    };
    std::thread::scope(|s| {
        for pair in &pairs {
            s.spawn(|| (0..ROUNDS).for_each(|round| serve(pair, counted(round))));
            s.spawn(|| (0..ROUNDS).for_each(|round| ask(pair, counted(round))));
        }
    });
    eprintln!(
        "{} of {} rounds began on a thread that found the CPUs crowded",
        crowded.load(Ordering::Relaxed),
        2 * PAIRS as u32 * ROUNDS
    );
}

#[test]
fn event_partners_outnumbering_the_cpus_lose_no_wake_up() {
    pairs(
        || [Event::new(), Event::new()],
        |[ping, pong], round| {
            ping.set();
            assert!(
                pong.wait_timeout(LOST),
                "round {round}: the answer was lost"
            );
            pong.clear();
        },
        |[ping, pong], round| {
            assert!(
                ping.wait_timeout(LOST),
                "round {round}: the question was lost"
            );
            ping.clear();
            pong.set();
        },
    );
}

#[test]
fn semaphore_partners_outnumbering_the_cpus_lose_no_wake_up() {
    pairs(
        || [Semaphore::new(0), Semaphore::new(0)],
        |[ping, pong], round| {
            ping.release();
            assert!(
                pong.acquire_timeout(LOST),
                "round {round}: the answer was lost"
            );
        },
        |[ping, pong], round| {
            assert!(
                ping.acquire_timeout(LOST),
                "round {round}: the question was lost"
            );
            pong.release();
        },
    );
}

#[test]
fn queue_partners_outnumbering_the_cpus_lose_no_wake_up() {
    pairs(
        || [Queue::<u32, 1>::new(), Queue::<u32, 1>::new()],
        |[ping, pong], round| {
            ping.put_timeout(round, LOST).unwrap();
            assert_eq!(pong.get_timeout(LOST).unwrap(), round);
        },
        |[ping, pong], round| {
            assert_eq!(ping.get_timeout(LOST).unwrap(), round);
            pong.put_timeout(round, LOST).unwrap();
        },
    );
}
