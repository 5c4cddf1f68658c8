//! shmsync's core types shared by two cores and an interrupt handler, under QEMU: the
//! RISC-V `virt` machine with two harts, or Arm's MPS2-AN521 with two Cortex-M33.
//!
//! The cores meet (a `Semaphore`, a start `Event`, then a spinning rendezvous before each
//! phase, so that the phases overlap), then:
//! 1. take turns at one `Lock`, each adding to a `Value` in two steps under it;
//! 2. share one ring (an `Array` under its own lock, counted by two `Semaphore`s): core 1
//!    and a timer interrupt handler on core 0 put items in, core 0 takes them out, with
//!    checksums in `Value`s. The handler only calls operations that never wait (`try_`
//!    forms, `release`, `set`); when it has put all its items it `set`s an `Event` that
//!    core 1 waits for.
//!
//! A waiter sleeps its core (the `Cores` backend: `wfi` on RISC-V, `wfe` on Arm) until
//! the other core or the interrupt handler rings its doorbell. No critical section is
//! involved: the types are atomics. Core 0 checks every invariant and exits 0 only if
//! all held.
#![no_std]
#![no_main]

#[cfg_attr(target_arch = "riscv32", path = "virt.rs")]
#[cfg_attr(target_arch = "arm", path = "an521.rs")]
mod board;

use core::time::Duration;

#[cfg(target_arch = "arm")]
use cortex_m_semihosting::{debug, hprintln};
#[cfg(target_arch = "riscv32")]
use riscv_semihosting::{debug, hprintln};
use shmsync_core::{Clock, Cores, LockError, TryLockError, Unowned};

// Waiters sleep the core until the board's doorbell rings; timeouts are measured on the
// board's clock. Locks record no owner: a core cannot die on its own holding one.
type Chip = Cores<board::Bell, board::Uptime>;
type Array<T, const N: usize> = shmsync_core::Array<T, N, Chip, Unowned>;
type RingGuard<'a> = shmsync_core::ArrayGuard<'a, u32, SLOTS, Chip, Unowned>;
type Event = shmsync_core::Event<Chip>;
type Lock = shmsync_core::Lock<Chip, Unowned>;
type Semaphore = shmsync_core::Semaphore<Chip>;
type Value<T> = shmsync_core::Value<T, Chip, Unowned>;

/// Two-step additions under the lock, per core: at least this many, ...
const ROUNDS: u32 = 20_000;
/// ... and until each core has found the lock held by the other this often, ...
const CONTENDED: u32 = 100;
/// ... or this much time has passed.
const PHASE_1_LIMIT: Duration = Duration::from_secs(2);
const SLOTS: usize = 4;
/// Items core 1 puts into the ring.
const ITEMS: u32 = 20_000;
/// Items the timer interrupt handler puts into the ring, one per tick at most.
const TICKS: u32 = 100;
const TIMEOUT: Duration = Duration::from_millis(10);

/// Who put an item into the ring: the top half of the item.
const CORE1: u32 = 1;
const HANDLER: u32 = 2;

// Meeting.
static ARRIVED: Semaphore = Semaphore::new(0);
static START: Event = Event::new();
static NEVER: Event = Event::new();
static MEETINGS: Value<u32> = Value::new(0);
/// How long core 1 waited for a lock core 0 held, giving up after `TIMEOUT`, in µs; 0 if
/// it got the lock.
static CORE1_TIMED_OUT_US: Value<u32> = Value::new(0);
// 1. Turns at one lock.
static COUNTER_LOCK: Lock = Lock::new();
static COUNTER: Value<u32> = Value::new(0);
// 2. The ring. `HEAD` and `TAIL` (next slot to fill, next to drain) change under its lock.
static RING: Array<u32, SLOTS> = Array::zeroed();
static HEAD: Value<u32> = Value::new(0);
static TAIL: Value<u32> = Value::new(0);
static FREE: Semaphore = Semaphore::new(SLOTS as u32);
static FILLED: Semaphore = Semaphore::new(0);
/// The most items the ring ever held: never more than its slots.
static MOST_FILLED: Value<u32> = Value::new(0);
/// Checksums of what each producer put and of what core 0 took from each.
static PUT_SUM: [Value<u32>; 3] = [const { Value::new(0) }; 3];
static TAKEN_SUM: [Value<u32>; 3] = [const { Value::new(0) }; 3];
/// Items core 0 took out of the order their producer put them in.
static OUT_OF_ORDER: Value<u32> = Value::new(0);
// The interrupt handler.
static TICKED: Value<u32> = Value::new(0);
static HANDLER_PUT: Value<u32> = Value::new(0);
/// Ticks at which the handler could not put its item: the ring was full, or its lock
/// held (by core 1, or by the code on core 0 it interrupted).
static HANDLER_FULL: Value<u32> = Value::new(0);
static HANDLER_LOCK_BUSY: Value<u32> = Value::new(0);
static HANDLER_DONE: Event = Event::new();
static CORE1_DONE: Event = Event::new();

/// What a core saw. A wait is a `try_` that failed, so that the core had to wait: the
/// other core held the lock, or the ring was full (core 1) or empty (core 0).
struct Seen {
    rounds: Value<u32>,
    counter_lock_waits: Value<u32>,
    ring_lock_waits: Value<u32>,
    ring_waits: Value<u32>,
    /// How often the doorbell slept this core by the end of each phase.
    sleeps: [Value<u32>; 2],
}

static SEEN: [Seen; 2] = [const {
    Seen {
        rounds: Value::new(0),
        counter_lock_waits: Value::new(0),
        ring_lock_waits: Value::new(0),
        ring_waits: Value::new(0),
        sleeps: [const { Value::new(0) }; 2],
    }
}; 2];

/// Both cores leave here together, within nanoseconds, so that the next phase really
/// overlaps: each spins until the other has arrived for the `n`th time. (Waking a
/// sleeping core takes microseconds: the other would be well into the phase by then.)
fn meet(n: u32) {
    MEETINGS.fetch_add(1);
    while MEETINGS.get() < 2 * n {
        core::hint::spin_loop();
    }
}

/// Takes a lock with `try_lock`, or, if another holds it, counts a wait in `waits` and
/// takes it with `lock`.
fn lock_counting<G>(
    waits: &Value<u32>,
    try_lock: impl FnOnce() -> Result<G, TryLockError<G>>,
    lock: impl FnOnce() -> Result<G, LockError<G>>,
) -> G {
    // A lock that records no owner never reports a dead one.
    match try_lock() {
        Ok(guard) => guard,
        Err(TryLockError::WouldBlock) => {
            waits.fetch_add(1);
            lock().unwrap_or_else(|_| panic!("an owner-less lock reported a dead owner"))
        }
        Err(_) => panic!("an owner-less lock reported a dead owner"),
    }
}

/// Takes a permit, counting in `waits` the times there was none.
fn acquire_counting(semaphore: &Semaphore, waits: &Value<u32>) {
    if !semaphore.try_acquire() {
        waits.fetch_add(1);
        semaphore.acquire();
    }
}

/// Phase 1: each core adds 1, in two steps that only the lock makes one, at least
/// `ROUNDS` times and until both cores have had to wait for the other `CONTENDED` times
/// (or for `PHASE_1_LIMIT`, if the host never runs them at once).
#[cfg_attr(feature = "break-exclusion", allow(unused_variables))]
fn take_turns(core: usize) {
    let (me, other) = (&SEEN[core], &SEEN[1 - core]);
    let give_up = board::Uptime::now_ns() + PHASE_1_LIMIT.as_nanos() as u64;
    let mut rounds = 0;
    loop {
        {
            #[cfg(not(feature = "break-exclusion"))]
            let _held = lock_counting(
                &me.counter_lock_waits,
                || COUNTER_LOCK.try_lock(),
                || COUNTER_LOCK.lock(),
            );
            COUNTER.set(COUNTER.get() + 1);
        }
        rounds += 1;
        if rounds >= ROUNDS && rounds % 1024 == 0 {
            let contended = [me, other]
                .iter()
                .all(|seen| seen.counter_lock_waits.get() >= CONTENDED);
            if contended || board::Uptime::now_ns() >= give_up {
                break;
            }
        }
    }
    me.rounds.set(rounds);
}

fn item(producer: u32, n: u32) -> u32 {
    producer << 16 | n
}

/// Puts `item` at the head of the ring, whose lock the caller holds and where the
/// caller has taken a free slot.
fn put(ring: &mut RingGuard<'_>, item: u32) {
    let head = HEAD.get();
    ring.set(head as usize % SLOTS, item).unwrap();
    HEAD.set(head + 1);
    let filled = head + 1 - TAIL.get();
    if filled > MOST_FILLED.get() {
        MOST_FILLED.set(filled); // under the ring's lock: no other writer
    }
    PUT_SUM[(item >> 16) as usize].fetch_add(item);
}

/// Phase 2 on core 1: puts `ITEMS` items into the ring.
fn produce() {
    let seen = &SEEN[1];
    for n in 0..ITEMS {
        acquire_counting(&FREE, &seen.ring_waits);
        {
            let mut ring = lock_counting(&seen.ring_lock_waits, || RING.try_lock(), || RING.lock());
            put(&mut ring, item(CORE1, n));
        }
        FILLED.release();
    }
}

/// Phase 2 on core 0: takes every item out of the ring.
fn consume() {
    let seen = &SEEN[0];
    let mut next = [0u32; 3];
    for _ in 0..ITEMS + TICKS {
        acquire_counting(&FILLED, &seen.ring_waits);
        let item = {
            let ring = lock_counting(&seen.ring_lock_waits, || RING.try_lock(), || RING.lock());
            let tail = TAIL.get();
            TAIL.set(tail + 1);
            ring.get(tail as usize % SLOTS).unwrap()
        };
        FREE.release();
        let producer = (item >> 16) as usize;
        TAKEN_SUM[producer].fetch_add(item);
        if item & 0xFFFF != next[producer] {
            OUT_OF_ORDER.fetch_add(1);
        }
        next[producer] = (item & 0xFFFF) + 1;
    }
}

/// The timer interrupt handler, on core 0: puts one item into the ring per tick if it
/// can, with operations that never wait. Returns whether it wants another tick.
pub fn on_tick() -> bool {
    if HANDLER_DONE.is_set() {
        return false; // a tick that was already pending when the last one stopped them
    }
    TICKED.fetch_add(1);
    if !FREE.try_acquire() {
        HANDLER_FULL.fetch_add(1);
        return true;
    }
    let Ok(mut ring) = RING.try_lock() else {
        FREE.release(); // the slot stays free for the others
        HANDLER_LOCK_BUSY.fetch_add(1);
        return true;
    };
    let n = HANDLER_PUT.get();
    put(&mut ring, item(HANDLER, n));
    drop(ring);
    HANDLER_PUT.set(n + 1);
    FILLED.release();
    if n + 1 < TICKS {
        return true;
    }
    HANDLER_DONE.set();
    false
}

fn end_of_phase(core: usize, phase: usize) {
    SEEN[core].sleeps[phase].set(board::sleeps(core));
}

/// Core 1, started by core 0.
pub fn core1() -> ! {
    // Core 0 holds the counter lock until we have arrived: a timeout across cores.
    let began = board::Uptime::now_ns();
    if let Err(TryLockError::WouldBlock) = COUNTER_LOCK.lock_timeout(TIMEOUT) {
        CORE1_TIMED_OUT_US.set(((board::Uptime::now_ns() - began) / 1_000) as u32);
    }
    ARRIVED.release();
    START.wait();
    meet(1);
    take_turns(1);
    end_of_phase(1, 0);
    meet(2);
    produce();
    // Set by the interrupt handler on core 0.
    HANDLER_DONE.wait();
    end_of_phase(1, 1);
    CORE1_DONE.set();
    board::park()
}

/// Core 0: starts core 1, runs its share, then checks and reports.
pub fn core0() -> ! {
    hprintln!(
        "shmsync multicore demo on {}: 2 cores and a timer interrupt",
        board::NAME
    );

    let began = board::Uptime::now_ns();
    let timed_out = !NEVER.wait_timeout(TIMEOUT);
    let waited_us = (board::Uptime::now_ns() - began) / 1_000;

    let held = COUNTER_LOCK.lock().unwrap();
    board::start_core1();
    // The meeting: core 1 is up, then both go at once.
    ARRIVED.acquire();
    drop(held);
    START.set();

    meet(1);
    take_turns(0);
    end_of_phase(0, 0);
    meet(2);
    board::start_ticks();
    consume();
    end_of_phase(0, 1);
    CORE1_DONE.wait();

    let ok = report(timed_out, waited_us);
    hprintln!(
        "{}",
        if ok {
            "all invariants hold"
        } else {
            "INVARIANTS BROKEN"
        }
    );
    exit(ok)
}

fn check(what: &str, ok: bool) -> bool {
    hprintln!("  [{}] {}", if ok { "ok" } else { "FAILED" }, what);
    ok
}

fn report(timed_out: bool, waited_us: u64) -> bool {
    hprintln!("what the cores saw (a wait: a try_ failed, the core had to wait):");
    for (core, seen) in SEEN.iter().enumerate() {
        let phase1 = seen.sleeps[0].get();
        hprintln!(
            "  core {}: 1. counter lock: {} rounds, {} waits, {} sleeps | 2. ring lock: {} waits, ring {}: {} waits, {} sleeps",
            core,
            seen.rounds.get(),
            seen.counter_lock_waits.get(),
            phase1,
            seen.ring_lock_waits.get(),
            if core == 0 { "empty" } else { "full" },
            seen.ring_waits.get(),
            seen.sleeps[1].get() - phase1,
        );
    }
    hprintln!(
        "  interrupt handler: {} ticks, {} items put; could not put at {} ticks (full) and {} ticks (lock held)",
        TICKED.get(),
        HANDLER_PUT.get(),
        HANDLER_FULL.get(),
        HANDLER_LOCK_BUSY.get(),
    );
    board::report_sleeps();

    hprintln!("checks:");
    let timeout_us = TIMEOUT.as_micros() as u64;
    let core1_waited_us = u64::from(CORE1_TIMED_OUT_US.get());
    let mut ok = check(
        "a wait for an event nobody sets timed out, no earlier than asked",
        timed_out && waited_us >= timeout_us,
    );
    hprintln!("      after {} us (asked: {} us)", waited_us, timeout_us);
    ok &= check(
        "core 1 timed out on the lock core 0 held, no earlier than asked",
        core1_waited_us >= timeout_us,
    );
    hprintln!("      after {} us", core1_waited_us);
    let rounds = SEEN[0].rounds.get() + SEEN[1].rounds.get();
    ok &= check(
        "the counter under the lock lost no update",
        COUNTER.get() == rounds,
    );
    hprintln!("      {} of {}", COUNTER.get(), rounds);
    let sum = |producer, count| (0..count).fold(0u32, |s, n| s.wrapping_add(item(producer, n)));
    for (producer, count, who) in [(CORE1, ITEMS, "core 1"), (HANDLER, TICKS, "the handler")] {
        let (put, taken) = (
            PUT_SUM[producer as usize].get(),
            TAKEN_SUM[producer as usize].get(),
        );
        ok &= check(
            "ring checksums: put = taken = expected",
            put == taken && put == sum(producer, count),
        );
        hprintln!("      from {}: {} items, checksum {}", who, count, taken);
    }
    ok &= check(
        "every item came out in the order it was put in",
        OUT_OF_ORDER.get() == 0,
    );
    ok &= check(
        "every item put was taken once",
        HEAD.get() == ITEMS + TICKS && TAIL.get() == ITEMS + TICKS,
    );
    ok &= check(
        "the ring never held more than its slots",
        MOST_FILLED.get() <= SLOTS as u32,
    );
    ok &= check(
        "every ring permit is back",
        FREE.value() == SLOTS as u32 && FILLED.value() == 0,
    );
    ok &= check(
        "no lock is held",
        !COUNTER_LOCK.is_locked() && RING.try_lock().is_ok(),
    );
    ok
}

/// Ends the QEMU run with status 0 (`ok`) or 1, through semihosting.
fn exit(ok: bool) -> ! {
    debug::exit(if ok {
        debug::EXIT_SUCCESS
    } else {
        debug::EXIT_FAILURE
    });
    board::park()
}

#[panic_handler]
fn panic(info: &core::panic::PanicInfo) -> ! {
    hprintln!("panic on core {}: {}", board::core(), info);
    exit(false)
}
