//! The conformance suite's shared state and scenarios. Each scenario is written once
//! and run by the tests in four modes: threads, forked processes over an anonymous
//! segment, unrelated processes (the `shmsync-helper` binary) over a named segment, and
//! spawned processes (the test binary started afresh) handed a memfd or a named
//! segment.

#![allow(missing_docs)] // test support, not an API

pub mod faults;
pub mod ownership;

use shmsync::{
    shm_struct, Array, Barrier, Condition, Event, ExitStatus, Lock, LockError, Process, Queue,
    RLock, RwLock, Semaphore, Spawn, Value,
};
use std::process::Stdio;
use std::time::{Duration, Instant};

/// How long a test waits for a child before it calls it hung: far longer than any test
/// takes, so that only a hang reaches it, and a hang fails the test instead of stalling
/// the run.
pub const HANG: Duration = Duration::from_secs(180);

/// Waits until `done()` holds, failing the test if it does not within [`HANG`]:
/// `what` says what never happened.
#[track_caller]
pub fn until(mut done: impl FnMut() -> bool, what: &str) {
    let deadline = Instant::now() + HANG;
    while !done() {
        assert!(
            Instant::now() < deadline,
            "gave up after {HANG:?} waiting for {what}"
        );
        std::thread::sleep(Duration::from_micros(50));
    }
}

/// Marks `child` a daemon: dropped, it is killed instead of waited for, so that a test
/// that fails before it joins a child that may never end (one that loops, or waits
/// for what the failure left undone) fails instead of hanging.
pub fn daemon(mut child: Process) -> Process {
    child.set_daemon(true);
    child
}

/// Joins `thread`, failing the test if it runs longer than [`HANG`]. A hung thread
/// cannot be ended: it is left behind, detached, so that the test fails instead of
/// hanging (the data it uses must outlive the test, hence `'static`).
#[track_caller]
pub fn join_thread<T>(thread: std::thread::JoinHandle<T>) -> T {
    until(|| thread.is_finished(), "a thread to finish");
    thread
        .join()
        .unwrap_or_else(|panic| std::panic::resume_unwind(panic))
}

/// A small deterministic generator: the kill points of a fault suite vary, and a run
/// repeats.
pub struct XorShift(pub u64);

impl XorShift {
    /// A number below `n`.
    pub fn below(&mut self, n: u64) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0 % n
    }
}

/// Sets its flag when dropped, however the test ends: threads of a scope that loop
/// until the flag is set then end, and a test that fails inside the scope fails
/// instead of waiting for them for ever.
pub struct Stop<'a>(pub &'a std::sync::atomic::AtomicBool);

impl Drop for Stop<'_> {
    fn drop(&mut self) {
        self.0.store(true, std::sync::atomic::Ordering::SeqCst);
    }
}

/// Starts, on `scope`, the parent threads that used to hang a forked child: two that
/// hold stdout's lock (as a logger does) and allocate while they hold it, and one that
/// keeps starting threads that take their very first lock (the library's per-thread
/// set-up) on `lock`, count themselves in `born`, then die. They run until `stop` is
/// set, which the returned guard does when dropped.
#[must_use = "the threads run until the guard is dropped"]
pub fn busy_parent_threads<'scope>(
    scope: &'scope std::thread::Scope<'scope, '_>,
    stop: &'scope std::sync::atomic::AtomicBool,
    lock: &'scope Lock,
    born: &'scope Value<u64>,
) -> Stop<'scope> {
    use std::io::Write;
    use std::sync::atomic::Ordering;
    for _ in 0..2 {
        scope.spawn(move || {
            while !stop.load(Ordering::Relaxed) {
                let mut out = std::io::stdout().lock();
                let text = vec![b'.'; 64];
                let _ = out.write_all(&text[..0]);
                std::hint::black_box(&text);
            }
        });
    }
    scope.spawn(move || {
        while !stop.load(Ordering::Relaxed) {
            std::thread::scope(|newborns| {
                for _ in 0..2 {
                    newborns.spawn(|| {
                        drop(lock.lock().unwrap());
                        born.fetch_add(1);
                    });
                }
            });
        }
    });
    Stop(stop)
}

/// Runs `f` on a thread and says whether it returned within `limit`: a hang check
/// for calls that promise to end, with a limit only a hang reaches.
pub fn returns_within<T: Send + 'static>(
    limit: Duration,
    f: impl FnOnce() -> T + Send + 'static,
) -> bool {
    let (done, finished) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let _ = done.send(f());
    });
    finished.recv_timeout(limit).is_ok()
}

/// A peer process stopped (SIGSTOP) at a random moment of its calls never makes
/// another's timed calls wait past their deadlines. Each of `trials` times, `setup`
/// starts a peer and returns it with the calls to make (on a thread) while it is
/// stopped; they must return within 5 s.
pub fn timed_calls_end_while_a_peer_is_stopped<C: FnOnce() + Send + 'static>(
    seed: u64,
    trials: u32,
    mut setup: impl FnMut() -> (Process, C),
) {
    let mut random = XorShift(seed);
    for trial in 0..trials {
        let (child, calls) = setup();
        std::thread::sleep(Duration::from_micros(200 + random.below(2_000)));
        nix::sys::signal::kill(
            nix::unistd::Pid::from_raw(child.pid() as i32),
            nix::sys::signal::Signal::SIGSTOP,
        )
        .unwrap();
        let calls_end = returns_within(Duration::from_secs(5), calls);
        child.kill().unwrap();
        let _ = join(child);
        assert!(
            calls_end,
            "trial {trial}: a timed call waited for a stopped process"
        );
    }
}

/// A segment name unique to this test run, removed again when dropped.
pub struct ShmName(pub String);

impl ShmName {
    pub fn new(what: &str) -> ShmName {
        use std::sync::atomic::{AtomicU32, Ordering};
        static N: AtomicU32 = AtomicU32::new(0);
        // The clock as well as the pid: process ids wrap (at 32768 by default), and a
        // name left by an earlier run killed with the same pid must not be this one.
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap_or_default();
        ShmName(format!(
            "shmsync-test-{what}-{}-{:x}-{}",
            std::process::id(),
            now.as_nanos() as u32,
            N.fetch_add(1, Ordering::Relaxed)
        ))
    }

    /// Where the kernel keeps it.
    pub fn path(&self) -> std::path::PathBuf {
        std::path::Path::new("/dev/shm").join(&self.0)
    }

    pub fn exists(&self) -> bool {
        self.path().exists()
    }

    /// Whether the name leads to `segment` (and not to another segment made since).
    pub fn leads_to<T: shmsync::ShmSafe>(&self, segment: &shmsync::Shared<T>) -> bool {
        self.leads_elsewhere(segment).is_none()
    }

    /// What the name leads to if not to `segment`: nothing, another file, or an error.
    pub fn leads_elsewhere<T: shmsync::ShmSafe>(
        &self,
        segment: &shmsync::Shared<T>,
    ) -> Option<String> {
        use std::os::unix::fs::MetadataExt;
        let fd = segment.fd().expect("a named segment has a file");
        let mine = std::fs::File::from(fd.try_clone_to_owned().expect("dup"))
            .metadata()
            .expect("fstat");
        match std::fs::metadata(self.path()) {
            Ok(named) if named.ino() == mine.ino() => None,
            Ok(named) => Some(format!(
                "{} leads to inode {}, not to this segment's {} ({} links)",
                self.0,
                named.ino(),
                mine.ino(),
                mine.nlink()
            )),
            Err(error) => Some(format!(
                "{} does not lead to this segment's inode {} ({} links): {error}",
                self.0,
                mine.ino(),
                mine.nlink()
            )),
        }
    }
}

impl ShmName {
    /// Holds the segment's gate (byte 0 of its file's lock space) exclusively, as a
    /// process removing or reclaiming it does, until the returned file is dropped.
    pub fn hold_gate(&self) -> std::fs::File {
        use std::os::fd::AsRawFd;
        let file = std::fs::OpenOptions::new()
            .read(true)
            .write(true)
            .open(self.path())
            .expect("open the segment's file");
        // SAFETY: `flock` is plain integers; zero is valid and `l_pid` must be 0.
        let mut gate: nix::libc::flock = unsafe { std::mem::zeroed() };
        gate.l_type = nix::libc::F_WRLCK as nix::libc::c_short;
        gate.l_whence = nix::libc::SEEK_SET as nix::libc::c_short;
        gate.l_len = 1;
        // SAFETY: a valid descriptor and a valid `flock`.
        let held = unsafe { nix::libc::fcntl(file.as_raw_fd(), nix::libc::F_OFD_SETLK, &gate) };
        assert_eq!(held, 0, "the gate is free");
        file
    }
}

impl std::ops::Deref for ShmName {
    type Target = str;
    fn deref(&self) -> &str {
        &self.0
    }
}

impl Drop for ShmName {
    fn drop(&mut self) {
        // Whatever the test left there, a foreign file included (which
        // `Shared::unlink` leaves alone).
        let _ = nix::sys::mman::shm_unlink(format!("/{}", self.0).as_str());
    }
}

/// Runs `f` in a child process of its own and asserts that it succeeded. A named
/// segment this process holds is shared by every child forked while it holds it (the
/// child inherits the open file), and the test harness runs other tests' forks in
/// parallel: a test that asserts when a segment is removed or reclaimed keeps its
/// segments out of this process this way.
#[track_caller]
pub fn in_child(f: impl FnOnce()) {
    let child = Process::spawn(f).expect("fork");
    assert!(join(child).success(), "the test's child failed");
}

/// Joins every child (see [`join`]), asserting that each succeeded and was reaped.
#[track_caller]
pub fn join_all_reaped(children: Vec<Process>) {
    for child in children {
        let pid = child.pid();
        assert!(join(child).success(), "child {pid} failed");
        assert!(
            !std::path::Path::new(&format!("/proc/{pid}")).exists(),
            "child {pid} not reaped"
        );
    }
}

/// Joins `child`, failing the test (after killing and reaping it) if it runs longer
/// than [`HANG`].
#[track_caller]
pub fn join(mut child: Process) -> ExitStatus {
    match child.join_timeout(HANG).expect("waiting for a child") {
        Some(status) => status,
        None => {
            let pid = child.pid();
            let _ = child.kill();
            let _ = child.join_timeout(HANG);
            panic!(
                "child {pid} ({}) hung: still running after {HANG:?}",
                child.name()
            );
        }
    }
}

/// Waits for an exec'd `child`, failing the test (after killing it) if it runs longer
/// than [`HANG`].
#[track_caller]
pub fn wait(child: &mut std::process::Child) -> std::process::ExitStatus {
    let deadline = Instant::now() + HANG;
    loop {
        if let Some(status) = child.try_wait().expect("waiting for a child") {
            return status;
        }
        if Instant::now() >= deadline {
            let _ = child.kill();
            let _ = child.wait();
            panic!("child {} hung: still running after {HANG:?}", child.id());
        }
        std::thread::sleep(Duration::from_millis(5));
    }
}

/// A child spawned from this test binary, started afresh to run only the test `test`,
/// whose first statement must be `run_if_spawned(…)` with `entry` among the entries.
/// The harness's own chatter on the child's stdout is dropped; its stderr (a panic's
/// message) is kept.
pub fn respawn<'a>(test: &str, entry: &str) -> Spawn<'a> {
    Spawn::new(entry)
        .exe_args(["--exact", test, "--nocapture", "--test-threads=1"])
        .stdout(Stdio::null())
}

/// Lock-protected increments per worker.
pub const INCREMENTS: u64 = 100_000;
/// Permits of the semaphore scenario.
pub const PERMITS: u32 = 2;
/// Items of the array scenario.
pub const ITEMS: usize = 32;
/// Items each of the queue scenario's two producers puts.
pub const QUEUED_EACH: u64 = 500_000;
/// One bit per item of the queue scenario: set by the consumer that took it.
const DELIVERED_WORDS: usize = (2 * QUEUED_EACH as usize).div_ceil(64);
/// Rounds of the re-entrant lock, barrier and readers-writer scenarios, per worker.
pub const ROUNDS: u64 = 5_000;
/// Items the coordinator hands to the workers through the condition.
pub const HANDED: u64 = 10_000;
/// Parties of the barrier scenario: every worker.
pub const PARTIES: u32 = 4;

shm_struct! {
    /// Everything the scenarios share.
    pub struct Arena {
        pub lock: Lock,
        pub counter: Value<u64>,
        pub semaphore: Semaphore,
        pub inside: Value<u32>,
        pub most_inside: Value<u32>,
        pub start: Event,
        pub ready: Value<u32>,
        pub started: Value<u32>,
        pub array: Array<u64, ITEMS>,
        pub torn: Value<u32>,
        pub no_permits: Semaphore,
        pub never_set: Event,
        pub early_timeouts: Value<u32>,
        pub queue: Queue<u64, 64>,
        pub producers_done: Value<u32>,
        pub delivered: Array<u64, DELIVERED_WORDS>,
        pub delivered_twice: Value<u64>,
        pub out_of_order: Value<u64>,
        pub checksum: Value<u64>,
        pub never_filled: Queue<u32, 1>,
        pub rlock: RLock,
        pub wrong_depths: Value<u32>,
        pub condition: Condition,
        pub items: Value<u64>,
        pub taken: Value<u64>,
        pub no_more: Value<u32>,
        pub notified: Value<u64>,
        pub woken: Value<u64>,
        pub barrier: Barrier,
        pub arrivals: Value<u64>,
        pub left_early: Value<u32>,
        pub leaders: Value<u64>,
        pub index_sum: Value<u64>,
        pub rwlock: RwLock,
        pub low: Value<u64>,
        pub high: Value<u64>,
        pub torn_reads: Value<u32>,
        pub writers_inside: Value<u32>,
        pub readers_inside: Value<u32>,
        pub overlaps: Value<u32>,
    }
}

impl Arena {
    /// The state before any scenario ran.
    pub const fn new() -> Self {
        Arena {
            lock: Lock::new(),
            counter: Value::new(0),
            semaphore: Semaphore::new(PERMITS),
            inside: Value::new(0),
            most_inside: Value::new(0),
            start: Event::new(),
            ready: Value::new(0),
            started: Value::new(0),
            array: Array::zeroed(),
            torn: Value::new(0),
            no_permits: Semaphore::new(0),
            never_set: Event::new(),
            early_timeouts: Value::new(0),
            queue: Queue::new(),
            producers_done: Value::new(0),
            delivered: Array::zeroed(),
            delivered_twice: Value::new(0),
            out_of_order: Value::new(0),
            checksum: Value::new(0),
            never_filled: Queue::new(),
            rlock: RLock::new(),
            wrong_depths: Value::new(0),
            condition: Condition::new(),
            items: Value::new(0),
            taken: Value::new(0),
            no_more: Value::new(0),
            notified: Value::new(0),
            woken: Value::new(0),
            barrier: Barrier::new(PARTIES),
            arrivals: Value::new(0),
            left_early: Value::new(0),
            leaders: Value::new(0),
            index_sum: Value::new(0),
            rwlock: RwLock::new(),
            low: Value::new(0),
            high: Value::new(0),
            torn_reads: Value::new(0),
            writers_inside: Value::new(0),
            readers_inside: Value::new(0),
            overlaps: Value::new(0),
        }
    }
}

impl Default for Arena {
    fn default() -> Self {
        Self::new()
    }
}

/// One behaviour every mode must show.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Scenario {
    /// Workers increment a counter under the lock in two steps (get, then set).
    LockedCounter,
    /// Workers pass through a semaphore, measuring how many are inside at once.
    SemaphoreLimit,
    /// Workers wait on an event; the coordinator sets it once all have arrived.
    StartGun,
    /// Even workers write whole-array rounds; odd workers snapshot and check them.
    UntornArray,
    /// Workers time out waiting for a permit, an event and an item that never come.
    Timeouts,
    /// Two producers put a million numbered items through a queue of 64; two consumers
    /// take them, checking each producer's order, each item's single delivery and a
    /// checksum.
    QueueChecksum,
    /// Workers take a re-entrant lock two levels deep and update a counter at each.
    ReentrantDepth,
    /// The coordinator hands out items one at a time, each with `notify(1)`; workers
    /// wait for them on the condition.
    ConditionHandOff,
    /// Workers cross a barrier round after round.
    BarrierGenerations,
    /// Even workers write a pair under the write lock; odd workers read it.
    ReadersWriter,
}

impl Scenario {
    /// Every scenario.
    pub const ALL: [Scenario; 10] = [
        Scenario::LockedCounter,
        Scenario::SemaphoreLimit,
        Scenario::StartGun,
        Scenario::UntornArray,
        Scenario::Timeouts,
        Scenario::QueueChecksum,
        Scenario::ReentrantDepth,
        Scenario::ConditionHandOff,
        Scenario::BarrierGenerations,
        Scenario::ReadersWriter,
    ];

    /// Its name on the helper's command line.
    pub fn name(self) -> &'static str {
        match self {
            Scenario::LockedCounter => "locked-counter",
            Scenario::SemaphoreLimit => "semaphore-limit",
            Scenario::StartGun => "start-gun",
            Scenario::UntornArray => "untorn-array",
            Scenario::Timeouts => "timeouts",
            Scenario::QueueChecksum => "queue-checksum",
            Scenario::ReentrantDepth => "reentrant-depth",
            Scenario::ConditionHandOff => "condition-hand-off",
            Scenario::BarrierGenerations => "barrier-generations",
            Scenario::ReadersWriter => "readers-writer",
        }
    }

    /// The scenario called `name`.
    pub fn from_name(name: &str) -> Option<Scenario> {
        Scenario::ALL.into_iter().find(|s| s.name() == name)
    }

    /// What worker `id` does.
    pub fn work(self, arena: &Arena, id: u32) {
        match self {
            Scenario::LockedCounter => {
                for _ in 0..INCREMENTS {
                    let _held = arena.lock.lock().unwrap();
                    arena.counter.set(arena.counter.get() + 1);
                }
            }
            Scenario::SemaphoreLimit => {
                for _ in 0..2_000 {
                    arena.semaphore.acquire();
                    let now = arena.inside.fetch_add(1) + 1;
                    arena.most_inside.update(|most| most.max(now)).unwrap();
                    std::hint::spin_loop();
                    arena.inside.fetch_sub(1);
                    arena.semaphore.release();
                }
            }
            Scenario::StartGun => {
                arena.ready.fetch_add(1);
                arena.start.wait();
                arena.started.fetch_add(1);
            }
            Scenario::UntornArray => {
                for round in 1..=5_000u64 {
                    if id.is_multiple_of(2) {
                        arena
                            .array
                            .write(0, &[round * 1000 + u64::from(id); ITEMS])
                            .unwrap();
                    } else {
                        let snapshot = arena.array.snapshot().unwrap();
                        if snapshot.iter().any(|&x| x != snapshot[0]) {
                            arena.torn.fetch_add(1);
                        }
                    }
                }
            }
            Scenario::Timeouts => {
                let timeout = Duration::from_millis(20);
                let began = Instant::now();
                let acquired = arena.no_permits.acquire_timeout(timeout);
                if acquired || began.elapsed() < timeout {
                    arena.early_timeouts.fetch_add(1);
                }
                let began = Instant::now();
                let set = arena.never_set.wait_timeout(timeout);
                if set || began.elapsed() < timeout {
                    arena.early_timeouts.fetch_add(1);
                }
                let began = Instant::now();
                let got = arena.never_filled.get_timeout(timeout);
                if got.is_ok() || began.elapsed() < timeout {
                    arena.early_timeouts.fetch_add(1);
                }
            }
            Scenario::QueueChecksum => queue_checksum_work(arena, id),
            Scenario::ReentrantDepth => {
                for _ in 0..ROUNDS {
                    let outer = arena.rlock.lock().unwrap();
                    arena.counter.set(arena.counter.get() + 1);
                    let inner = arena.rlock.lock().unwrap();
                    if arena.rlock.recursion_count() != 2 {
                        arena.wrong_depths.fetch_add(1);
                    }
                    arena.counter.set(arena.counter.get() + 1);
                    drop(inner);
                    if arena.rlock.recursion_count() != 1 {
                        arena.wrong_depths.fetch_add(1);
                    }
                    drop(outer);
                }
            }
            Scenario::ConditionHandOff => take_handed_items(arena),
            Scenario::BarrierGenerations => {
                for round in 0..ROUNDS {
                    arena.arrivals.fetch_add(1);
                    let result = arena.barrier.wait().unwrap();
                    // Nobody leaves a generation before every party arrived in it.
                    if arena.arrivals.get() < (round + 1) * u64::from(PARTIES) {
                        arena.left_early.fetch_add(1);
                    }
                    arena.index_sum.fetch_add(u64::from(result.index()));
                    if result.is_leader() {
                        arena.leaders.fetch_add(1);
                    }
                }
            }
            Scenario::ReadersWriter => {
                for _ in 0..ROUNDS {
                    if id.is_multiple_of(2) {
                        let _writing = arena.rwlock.write().unwrap();
                        if arena.writers_inside.fetch_add(1) != 0 || arena.readers_inside.get() != 0
                        {
                            arena.overlaps.fetch_add(1);
                        }
                        arena.low.set(arena.low.get() + 1);
                        std::hint::spin_loop();
                        arena.high.set(arena.low.get());
                        arena.writers_inside.fetch_sub(1);
                    } else {
                        let _reading = arena.rwlock.read().unwrap();
                        arena.readers_inside.fetch_add(1);
                        if arena.writers_inside.get() != 0 {
                            arena.overlaps.fetch_add(1);
                        }
                        if arena.low.get() != arena.high.get() {
                            arena.torn_reads.fetch_add(1);
                        }
                        arena.readers_inside.fetch_sub(1);
                    }
                }
            }
        }
    }

    /// What the coordinating test does while the workers run.
    pub fn coordinate(self, arena: &Arena, workers: u32) {
        if self == Scenario::ConditionHandOff {
            hand_out_items(arena);
        }
        if self == Scenario::StartGun {
            until(
                || arena.ready.get() >= workers,
                "every worker at the start gun",
            );
            assert_eq!(
                arena.started.get(),
                0,
                "a worker passed the gun before it fired"
            );
            arena.start.set();
        }
    }

    /// The assertions once every worker is done.
    pub fn check(self, arena: &Arena, workers: u32) {
        match self {
            Scenario::LockedCounter => {
                assert_eq!(
                    arena.counter.get(),
                    u64::from(workers) * INCREMENTS,
                    "lost increments"
                );
                assert!(!arena.lock.is_locked());
            }
            Scenario::SemaphoreLimit => {
                let most = arena.most_inside.get();
                assert!(
                    (1..=PERMITS).contains(&most),
                    "{most} inside Semaphore({PERMITS})"
                );
                assert_eq!(
                    arena.semaphore.value(),
                    PERMITS,
                    "a permit was lost or made up"
                );
            }
            Scenario::StartGun => assert_eq!(arena.started.get(), workers),
            Scenario::UntornArray => assert_eq!(arena.torn.get(), 0, "torn snapshots seen"),
            Scenario::Timeouts => {
                assert_eq!(
                    arena.early_timeouts.get(),
                    0,
                    "a wait ended before its timeout"
                )
            }
            Scenario::QueueChecksum => queue_checksum_check(arena, workers),
            Scenario::ReentrantDepth => {
                assert_eq!(
                    arena.counter.get(),
                    u64::from(workers) * ROUNDS * 2,
                    "lost increments"
                );
                assert_eq!(arena.wrong_depths.get(), 0, "a wrong recursion depth");
                assert!(!arena.rlock.is_locked());
            }
            Scenario::ConditionHandOff => {
                assert_eq!(arena.taken.get(), HANDED, "items lost or taken twice");
                assert_eq!(arena.items.get(), 0);
                // Every return from a wait was one that a notify counted: no lost and
                // no spurious wake-ups.
                assert_eq!(
                    arena.woken.get(),
                    arena.notified.get(),
                    "wake-ups not as notified"
                );
            }
            Scenario::BarrierGenerations => {
                assert_eq!(workers, PARTIES);
                assert_eq!(arena.left_early.get(), 0, "a party left before all arrived");
                assert_eq!(arena.leaders.get(), ROUNDS, "not one leader per generation");
                // Each generation handed out the indices 0..parties once each.
                let per_generation = u64::from(PARTIES * (PARTIES - 1) / 2);
                assert_eq!(arena.index_sum.get(), ROUNDS * per_generation);
                assert_eq!(arena.barrier.n_waiting(), 0);
                assert!(!arena.barrier.is_broken());
            }
            Scenario::ReadersWriter => {
                assert_eq!(
                    arena.overlaps.get(),
                    0,
                    "a writer inside with another reader or writer"
                );
                assert_eq!(arena.torn_reads.get(), 0, "a reader saw half a write");
                let writers = u64::from(workers).div_ceil(2);
                assert_eq!(arena.low.get(), writers * ROUNDS, "lost writes");
                assert_eq!(arena.high.get(), arena.low.get());
                assert!(!arena.rwlock.is_locked());
            }
        }
    }
}

/// The queue scenario's item `n` of producer `producer`.
fn queued_item(producer: u64, n: u64) -> u64 {
    producer * QUEUED_EACH + n
}

/// What a consumer adds to the checksum for `item`: a mix, so that a lost item and a
/// doubled one do not cancel out.
fn queued_mix(item: u64) -> u64 {
    (item ^ 0x9e37_79b9_7f4a_7c15).wrapping_mul(0xbf58_476d_1ce4_e5b9)
}

/// Workers 0 and 1 produce (the last to finish closes the queue); the others consume
/// until the queue is closed and drained.
fn queue_checksum_work(arena: &Arena, id: u32) {
    if id < 2 {
        for n in 0..QUEUED_EACH {
            arena.queue.put(queued_item(u64::from(id), n)).unwrap();
        }
        if arena.producers_done.fetch_add(1) == 1 {
            arena.queue.close();
        }
        return;
    }
    let mut taken = Vec::new();
    let mut last = [None::<u64>; 2];
    let mut checksum = 0u64;
    while let Ok(item) = arena.queue.get() {
        let (producer, n) = ((item / QUEUED_EACH) as usize, item % QUEUED_EACH);
        if producer > 1 || last[producer].is_some_and(|l| l >= n) {
            arena.out_of_order.fetch_add(1);
        }
        last[producer.min(1)] = Some(n);
        checksum = checksum.wrapping_add(queued_mix(item));
        taken.push(item);
    }
    arena.checksum.fetch_add(checksum);
    // One bit per item, under the bitmap's lock once per consumer: a bit already set
    // is an item delivered twice.
    let mut delivered = arena.delivered.lock().unwrap();
    for item in taken {
        let (word, bit) = ((item / 64) as usize, 1u64 << (item % 64));
        let Ok(bits) = delivered.get(word) else {
            arena.out_of_order.fetch_add(1); // not an item that was put
            continue;
        };
        if bits & bit != 0 {
            arena.delivered_twice.fetch_add(1);
        }
        delivered.set(word, bits | bit).unwrap();
    }
}

fn queue_checksum_check(arena: &Arena, workers: u32) {
    assert!(
        workers >= 3,
        "the queue scenario needs 2 producers and a consumer"
    );
    let items = 2 * QUEUED_EACH;
    assert_eq!(
        arena.out_of_order.get(),
        0,
        "a producer's items out of order"
    );
    assert_eq!(arena.delivered_twice.get(), 0, "items delivered twice");
    let delivered = arena.delivered.snapshot().unwrap();
    let missing = (0..items)
        .filter(|&item| delivered[(item / 64) as usize] & 1 << (item % 64) == 0)
        .count();
    assert_eq!(missing, 0, "items never delivered");
    let expected = (0..items).fold(0u64, |sum, item| sum.wrapping_add(queued_mix(item)));
    assert_eq!(arena.checksum.get(), expected, "checksum");
    assert!(arena.queue.is_closed() && arena.queue.empty());
    assert_eq!(arena.queue.unfinished_tasks() as u64, items);
}

/// The coordinator's side of [`Scenario::ConditionHandOff`]: one item at a time under
/// the lock, each announced with `notify(1)`; then no more, announced to all.
fn hand_out_items(arena: &Arena) {
    for _ in 0..HANDED {
        let _held = arena.lock.lock().unwrap();
        arena.items.set(arena.items.get() + 1);
        arena.notified.fetch_add(arena.condition.notify(1) as u64);
    }
    let _held = arena.lock.lock().unwrap();
    arena.no_more.set(1);
    arena
        .notified
        .fetch_add(arena.condition.notify_all() as u64);
}

/// A worker's side of [`Scenario::ConditionHandOff`]: takes items until there are no
/// more, counting each return from a wait.
fn take_handed_items(arena: &Arena) {
    let mut held = arena.lock.lock().unwrap();
    loop {
        if arena.items.get() > 0 {
            arena.items.set(arena.items.get() - 1);
            arena.taken.fetch_add(1);
        } else if arena.no_more.get() == 1 {
            return;
        } else {
            held = arena
                .condition
                .wait(held)
                .unwrap_or_else(|error: LockError<_>| panic!("{error}"));
            arena.woken.fetch_add(1);
        }
    }
}
