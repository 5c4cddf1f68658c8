//! A queue whose producers and consumers are SIGKILLed at random points of `put` and
//! `get`: the survivors always finish, no item is delivered twice or half, and every
//! item whose `put` returned is delivered, except one per killed consumer (the item
//! its `get` had taken off the queue when it died).

use shmsync::{pod_struct, shm_struct, Event, Layout, Process, Queue, Shared, ShmSafe};
use shmsync_tests::{daemon, join, timed_calls_end_while_a_peer_is_stopped, XorShift};
use std::sync::atomic::{AtomicU32, AtomicU64, Ordering};
use std::time::{Duration, Instant};

const PRODUCERS: usize = 2;
const CONSUMERS: usize = 2;
/// The most items a producer puts in one trial (it stops sooner when told).
const EACH: usize = 20_000;
const TRIALS: u32 = 300;
/// How long a survivor may take to finish once told to: far more than it needs, so
/// that only a hang reaches it.
const FINISH_WITHIN: Duration = Duration::from_secs(20);

pod_struct! {
    /// 256 bytes, so that a put spends its time writing them and many kills land
    /// half-way through.
    struct Item {
        producer: u32,
        seq: u32,
        payload: [u64; 30],
        check: u64,
    }
}

impl Item {
    fn new(producer: usize, seq: usize) -> Item {
        let (producer, seq) = (producer as u32, seq as u32);
        let mut payload = [0u64; 30];
        for (k, word) in payload.iter_mut().enumerate() {
            *word = (u64::from(seq) + k as u64).wrapping_mul(0x9e37_79b9_7f4a_7c15);
        }
        Item {
            producer,
            seq,
            payload,
            check: Self::checksum(producer, seq, payload),
        }
    }

    fn checksum(producer: u32, seq: u32, payload: [u64; 30]) -> u64 {
        payload
            .iter()
            .fold(u64::from(producer) << 32 | u64::from(seq), |sum, word| {
                sum.rotate_left(17) ^ word
            })
    }

    /// Its index among all items, if it is whole and one that was put.
    fn index(&self) -> Option<usize> {
        let whole = self.check == Self::checksum(self.producer, self.seq, self.payload);
        let (producer, seq) = (self.producer as usize, self.seq as usize);
        (whole && producer < PRODUCERS && seq < EACH).then_some(producer * EACH + seq)
    }
}

/// What a trial shares besides the queue: what was put, what was delivered.
#[repr(C)]
struct Tally {
    /// Per producer: how many of its puts have returned `Ok` (in order).
    acked: [AtomicU64; PRODUCERS],
    /// Per item: how many times a `get` returned it.
    delivered: [AtomicU32; PRODUCERS * EACH],
    /// Items that were not whole, or not ever put.
    torn: AtomicU32,
    /// Items a consumer got before an earlier item of the same producer.
    out_of_order: AtomicU32,
}

// SAFETY: `#[repr(C)]`, atomics only.
unsafe impl ShmSafe for Tally {
    const LAYOUT: Layout = Layout::opaque::<Self>("queue_faults::Tally").accessed_atomically();
}

shm_struct! {
    struct Arena {
        queue: Queue<Item, 8>,
        stop: Event,
        tally: Tally,
    }
}

impl Arena {
    fn new() -> Self {
        Arena {
            queue: Queue::new(),
            stop: Event::new(),
            tally: Tally {
                acked: [const { AtomicU64::new(0) }; PRODUCERS],
                delivered: [const { AtomicU32::new(0) }; PRODUCERS * EACH],
                torn: AtomicU32::new(0),
                out_of_order: AtomicU32::new(0),
            },
        }
    }

    fn produce(&self, producer: usize) {
        for seq in 0..EACH {
            if self.stop.is_set() {
                return;
            }
            if self.queue.put(Item::new(producer, seq)).is_err() {
                return; // closed
            }
            self.tally.acked[producer].store(seq as u64 + 1, Ordering::SeqCst);
        }
    }

    /// Records one item a `get` returned.
    fn record(&self, item: &Item, last: &mut [Option<u32>; PRODUCERS]) {
        let Some(index) = item.index() else {
            self.tally.torn.fetch_add(1, Ordering::SeqCst);
            return;
        };
        let producer = item.producer as usize;
        if last[producer].is_some_and(|l| l >= item.seq) {
            self.tally.out_of_order.fetch_add(1, Ordering::SeqCst);
        }
        last[producer] = Some(item.seq);
        self.tally.delivered[index].fetch_add(1, Ordering::SeqCst);
    }

    fn consume(&self) {
        let mut last = [None; PRODUCERS];
        while let Ok(item) = self.queue.get() {
            self.record(&item, &mut last);
        }
    }
}

/// Stops `child` (SIGSTOP) and waits until it is stopped: true. False if it ended
/// first (a producer that put all its items): it is left unreaped, for its `join`.
fn stop(child: &Process) -> bool {
    let pid = child.pid() as libc::pid_t;
    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(pid),
        nix::sys::signal::Signal::SIGSTOP,
    )
    .unwrap();
    // SAFETY: a zeroed siginfo_t is valid for waitid to fill; WNOWAIT leaves an ended
    // child to be reaped by its `Process`.
    let info = unsafe {
        let mut info: libc::siginfo_t = std::mem::zeroed();
        let waited = libc::waitid(
            libc::P_PID,
            pid as libc::id_t,
            &mut info,
            libc::WSTOPPED | libc::WEXITED | libc::WNOWAIT,
        );
        assert_eq!(waited, 0, "{}", std::io::Error::last_os_error());
        info
    };
    info.si_code == libc::CLD_STOPPED
}

/// Lets a stopped `child` go on (SIGCONT).
fn resume(child: &Process) {
    let pid = nix::unistd::Pid::from_raw(child.pid() as i32);
    nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGCONT).unwrap();
}

/// The id in the queue's internal lock word (its first 4 bytes: see `Lock`'s layout).
fn lock_holder<T: shmsync::Pod, const N: usize>(queue: &Queue<T, N>) -> u32 {
    // SAFETY: the queue is `#[repr(C)]` and begins with its lock, whose first field is
    // its 32-bit word; only atomics live there, read here atomically.
    let word = unsafe { &*(queue as *const Queue<T, N>).cast::<AtomicU32>() };
    word.load(Ordering::SeqCst) & ((1 << 30) - 1)
}

#[derive(Default)]
struct Summary {
    kills: [u32; 2],
    holding_the_lock: u32,
    delivered: u64,
    lost_with_dead_consumers: u64,
    hangs: u32,
}

/// Closes the queue from a child process and says whether that ended within `limit`.
/// `close` waits for the queue's internal lock as long as it takes; a lock that a fault
/// left wedged (what these suites look for) must fail the test, not hang it, so the
/// closer is a child the test can give up on (and kills).
fn closes_within(arena: &Arena, limit: Duration) -> bool {
    let Ok(closer) = Process::spawn(|| arena.queue.close()) else {
        return false;
    };
    let mut closer = daemon(closer);
    matches!(closer.join_timeout(limit), Ok(Some(status)) if status.success())
}

fn trial(trial: u32, random: &mut XorShift, summary: &mut Summary) {
    let arena = Shared::anonymous(Arena::new()).unwrap();
    // Daemons: if the trial fails, dropping them kills them, where waiting could hang
    // (a stopped child, consumers asleep on a queue nobody will close).
    let mut producers: Vec<Option<Process>> = (0..PRODUCERS)
        .map(|p| Some(daemon(Process::spawn(|| arena.produce(p)).unwrap())))
        .collect();
    let mut consumers: Vec<Option<Process>> = (0..CONSUMERS)
        .map(|_| Some(daemon(Process::spawn(|| arena.consume()).unwrap())))
        .collect();
    // Once items flow, one or two kills at random moments, of producers and consumers
    // alike: most land inside a put or a get, which is all they do.
    let began = Instant::now();
    let acked = || {
        arena
            .tally
            .acked
            .iter()
            .map(|a| a.load(Ordering::SeqCst))
            .sum::<u64>()
    };
    while acked() < 200 && began.elapsed() < FINISH_WITHIN {
        std::thread::sleep(Duration::from_micros(100));
    }
    let mut consumers_killed = 0;
    for _ in 0..1 + random.below(2) {
        std::thread::sleep(Duration::from_micros(random.below(2_000)));
        let victim = random.below((PRODUCERS + CONSUMERS) as u64) as usize;
        let (consumer, index) = if victim < PRODUCERS {
            (false, victim)
        } else {
            (true, victim - PRODUCERS)
        };
        let kind = if consumer {
            &mut consumers
        } else {
            &mut producers
        };
        let child = kind[index].take();
        if let Some(child) = child {
            // Stopped first, to see whether it dies holding the queue's lock (its word
            // then names the child's only thread). Half the kills aim there: stopped
            // and resumed until caught inside, at whatever instruction that is.
            let aim = random.below(2) == 0;
            let mut ended = false;
            for _ in 0..if aim { 500 } else { 1 } {
                if !stop(&child) {
                    ended = true;
                    break;
                }
                if lock_holder(&arena.queue) == child.pid() {
                    summary.holding_the_lock += 1;
                    break;
                }
                resume(&child);
                std::thread::sleep(Duration::from_micros(random.below(50)));
            }
            if ended {
                // It finished before the kill: a survivor, joined with the others.
                let kind = if consumer {
                    &mut consumers
                } else {
                    &mut producers
                };
                kind[index] = Some(child);
                continue;
            }
            child.kill().unwrap();
            assert!(join(child).signal().is_some());
            summary.kills[usize::from(consumer)] += 1;
            consumers_killed += u64::from(consumer);
        }
    }
    // The survivors finish: producers stop; the parent takes items as a consumer
    // would while it waits for them (every consumer may be dead), then closes the
    // queue and everyone drains it.
    arena.stop.set();
    let began = Instant::now();
    let mut last = [None; PRODUCERS];
    let mut hung = false;
    for child in producers.iter_mut().filter_map(Option::take) {
        let mut child = child;
        loop {
            if let Ok(item) = arena.queue.get_timeout(Duration::from_millis(1)) {
                arena.record(&item, &mut last);
            }
            match child.join_timeout(Duration::ZERO).unwrap() {
                Some(status) => {
                    assert!(status.success(), "trial {trial}: a producer {status}");
                    break;
                }
                None if began.elapsed() > FINISH_WITHIN => {
                    hung = true;
                    child.kill().unwrap();
                    let _ = join(child);
                    break;
                }
                None => {}
            }
        }
    }
    assert!(
        closes_within(&arena, FINISH_WITHIN),
        "trial {trial}: closing the queue hung: its lock is wedged"
    );
    while let Ok(item) = arena.queue.get_timeout(FINISH_WITHIN) {
        arena.record(&item, &mut last);
    }
    for child in consumers.into_iter().flatten() {
        let mut child = child;
        match child.join_timeout(FINISH_WITHIN).unwrap() {
            Some(status) => assert!(status.success(), "trial {trial}: a consumer {status}"),
            None => {
                hung = true;
                child.kill().unwrap();
                let _ = join(child);
            }
        }
    }
    summary.hangs += u32::from(hung);
    assert!(!hung, "trial {trial}: a survivor hung");

    let tally = &arena.tally;
    assert_eq!(
        tally.torn.load(Ordering::SeqCst),
        0,
        "trial {trial}: half items"
    );
    assert_eq!(
        tally.out_of_order.load(Ordering::SeqCst),
        0,
        "trial {trial}: a producer's items out of order"
    );
    let count = |index: usize| tally.delivered[index].load(Ordering::SeqCst);
    let twice = (0..PRODUCERS * EACH).filter(|&i| count(i) > 1).count();
    assert_eq!(twice, 0, "trial {trial}: items delivered twice");
    let mut missing = 0;
    for producer in 0..PRODUCERS {
        let acked = tally.acked[producer].load(Ordering::SeqCst) as usize;
        missing += (0..acked)
            .filter(|&seq| count(producer * EACH + seq) == 0)
            .count() as u64;
    }
    assert!(
        missing <= consumers_killed,
        "trial {trial}: {missing} items put and never delivered, {consumers_killed} consumers killed"
    );
    summary.lost_with_dead_consumers += missing;
    summary.delivered += (0..PRODUCERS * EACH)
        .map(|i| u64::from(count(i)))
        .sum::<u64>();
    assert!(arena.queue.is_closed() && arena.queue.empty());
}

#[test]
fn producers_and_consumers_killed_anywhere_never_wedge_the_queue() {
    let mut random = XorShift(0x5eed_0013);
    let mut summary = Summary::default();
    for n in 0..TRIALS {
        trial(n, &mut random, &mut summary);
    }
    eprintln!(
        "Queue: {TRIALS} trials, {} producers and {} consumers killed ({} holding the \
         queue's lock), {} items delivered (none twice, none torn, each producer's in \
         order), {} lost with the consumers killed holding them, {} hangs",
        summary.kills[0],
        summary.kills[1],
        summary.holding_the_lock,
        summary.delivered,
        summary.lost_with_dead_consumers,
        summary.hangs
    );
}

/// A process stopped (SIGSTOP) anywhere in its queue calls, the internal lock perhaps
/// held, never makes another's `try_` or timed calls wait past their deadline.
#[test]
fn timed_calls_end_while_a_peer_is_stopped_anywhere() {
    timed_calls_end_while_a_peer_is_stopped(0x5eed_0014, 20, || {
        let queue: &'static Shared<Queue<u64, 4>> =
            Box::leak(Box::new(Shared::anonymous(Queue::new()).unwrap()));
        let child = Process::spawn(|| loop {
            let _ = queue.try_put(1);
            let _ = queue.try_get();
        })
        .unwrap();
        (child, move || {
            let _ = queue.try_put(2);
            let _ = queue.try_get();
            let _ = queue.put_timeout(3, Duration::from_millis(10));
            let _ = queue.get_timeout(Duration::from_millis(10));
            let _ = queue.qsize();
        })
    });
}

/// Consumers asleep on an empty queue; one of them is killed right after a put woke
/// them. The others still get that item and the next ones.
#[test]
fn a_woken_consumer_killed_before_taking_strands_nobody() {
    for round in 0..30 {
        let arena = Shared::anonymous(Arena::new()).unwrap();
        let mut consumers: Vec<Process> = (0..3)
            .map(|_| daemon(Process::spawn(|| arena.consume()).unwrap()))
            .collect();
        std::thread::sleep(Duration::from_millis(5)); // all asleep
                                                      // Timed puts: 10 items do not fit in the queue's 8 slots unless the survivors
                                                      // take some, and a put that waits for ever would hang the test, not fail it.
        let put = |seq| {
            arena
                .queue
                .put_timeout(Item::new(0, seq), FINISH_WITHIN)
                .unwrap_or_else(|e| panic!("round {round}: put {seq}: {e}"));
        };
        put(0);
        let victim = consumers.remove(round % 3);
        victim.kill().unwrap();
        let _ = join(victim);
        for seq in 1..10 {
            put(seq);
        }
        let began = Instant::now();
        while !arena.queue.empty() && began.elapsed() < FINISH_WITHIN {
            std::thread::sleep(Duration::from_millis(1));
        }
        assert!(
            arena.queue.empty(),
            "round {round}: the survivors took nothing"
        );
        assert!(
            closes_within(&arena, FINISH_WITHIN),
            "round {round}: closing the queue hung"
        );
        for consumer in consumers {
            assert!(join(consumer).success(), "round {round}");
        }
        let delivered: u32 = (0..10)
            .map(|seq| arena.tally.delivered[seq].load(Ordering::SeqCst))
            .sum();
        // The victim may have taken item 0 before it died, and nothing else.
        assert!(delivered >= 9, "round {round}: {delivered} of 10 delivered");
    }
}

#[test]
fn a_victim_that_ended_before_its_stop_is_left_to_its_join() {
    let child = Process::spawn(|| {}).unwrap();
    // SAFETY: a zeroed siginfo_t is valid for waitid to fill; WNOWAIT leaves the
    // ended child unreaped.
    let waited = unsafe {
        let mut info: libc::siginfo_t = std::mem::zeroed();
        libc::waitid(
            libc::P_PID,
            child.pid() as libc::id_t,
            &mut info,
            libc::WEXITED | libc::WNOWAIT,
        )
    };
    assert_eq!(waited, 0);
    assert!(!stop(&child), "an ended child cannot be stopped");
    assert!(join(child).success());
}
