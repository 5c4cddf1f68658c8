//! shmsync's core types shared by two cores and an interrupt handler, under QEMU: the
//! RISC-V `virt` machine with two harts, or Arm's MPS2-AN521 with two Cortex-M33.
//!
//! The cores meet (a `Semaphore`, a start `Event`, then a spinning rendezvous before each
//! phase, so that the phases overlap), then:
//! 1. take turns at one `Lock`, each adding to a `Value` in two steps under it;
//! 2. pass items through a ring built of the core types (an `Array` under its own lock,
//!    counted by two `Semaphore`s): core 1 and a timer interrupt handler on core 0 put
//!    items in, core 0 takes them out, with checksums in `Value`s and their order
//!    checked;
//! 3. do the same through a `Queue`.
//!
//! The handler only calls operations that never wait (`try_` forms, `release`, `set`);
//! when it has put all its items it `set`s an `Event` that core 1 waits for. A waiter
//! sleeps its core (the `Cores` backend: `wfi` on RISC-V, `wfe` on Arm) until the other
//! core or the handler rings its doorbell. No critical section is involved: the types
//! are atomics. Core 0 checks every invariant and exits 0 only if all held.
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
use shmsync_core::{Clock, Cores, GetError, LockError, PutError, TryLockError, Unowned};

// Waiters sleep the core until the board's doorbell rings; timeouts are measured on the
// board's clock. Locks record no owner: a core cannot die on its own holding one.
type Chip = Cores<board::Bell, board::Uptime>;
type Array<T, const N: usize> = shmsync_core::Array<T, N, Chip, Unowned>;
type Event = shmsync_core::Event<Chip>;
type Lock = shmsync_core::Lock<Chip, Unowned>;
type Queue<T, const N: usize> = shmsync_core::Queue<T, N, Chip, Unowned>;
type Semaphore = shmsync_core::Semaphore<Chip>;
type Value<T> = shmsync_core::Value<T, Chip, Unowned>;

/// Two-step additions under the lock, per core: at least this many, ...
const ROUNDS: u32 = 20_000;
/// ... and until each core has found the lock held by the other this often, ...
const CONTENDED: u32 = 100;
/// ... or this much time has passed.
const PHASE_1_LIMIT: Duration = Duration::from_secs(2);
const SLOTS: usize = 4;
/// Items core 1 puts into each channel.
const ITEMS: u32 = 20_000;
/// Items the timer interrupt handler puts into each channel, one per tick at most.
const TICKS: u32 = 100;
const TIMEOUT: Duration = Duration::from_millis(10);

/// Who put an item: the top half of the item.
const FROM_CORE1: u32 = 0;
const FROM_HANDLER: u32 = 1;

// Meeting.
static ARRIVED: Semaphore = Semaphore::new(0);
static START: Event = Event::new();
static NEVER: Event = Event::new();
static MEETINGS: Value<u32> = Value::new(0);
/// How long core 1 waited for a lock core 0 held, giving up after `TIMEOUT`, in µs; 0 if
/// it got the lock.
static CORE1_TIMED_OUT_US: Value<u32> = Value::new(0);
static CORE1_DONE: Event = Event::new();
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
// 3. The queue.
static QUEUE: Queue<u32, SLOTS> = Queue::new();
/// Which channel the timer interrupt handler puts into: `RING_PHASE`, `QUEUE_PHASE`, or
/// none.
static TICKING: Value<u32> = Value::new(0);

const RING_PHASE: usize = 1;
const QUEUE_PHASE: usize = 2;
const CHANNELS: [(usize, &str); 2] = [(RING_PHASE, "ring"), (QUEUE_PHASE, "queue")];

/// What a core saw in each phase. A wait is a `try_` that failed, so that the core had
/// to wait: the other core held the lock, or the channel was full (core 1) or empty
/// (core 0).
struct Seen {
    /// Phase 1's two-step additions.
    rounds: Value<u32>,
    lock_waits: [Value<u32>; 3],
    channel_waits: [Value<u32>; 3],
    /// How often the doorbell had slept this core by the end of each phase.
    sleeps: [Value<u32>; 3],
}

static SEEN: [Seen; 2] = [const {
    Seen {
        rounds: Value::new(0),
        lock_waits: [const { Value::new(0) }; 3],
        channel_waits: [const { Value::new(0) }; 3],
        sleeps: [const { Value::new(0) }; 3],
    }
}; 2];

/// What went through a channel, by producer (core 1, the handler), and what the
/// interrupt handler saw.
struct Flow {
    put_sum: [Value<u32>; 2],
    taken_sum: [Value<u32>; 2],
    /// Items core 0 took out of the order their producer put them in.
    out_of_order: Value<u32>,
    ticks: Value<u32>,
    handler_put: Value<u32>,
    /// Ticks at which the handler could not put its item: the channel was full, or the
    /// ring's lock was held (by core 1, or by the code on core 0 it interrupted).
    handler_full: Value<u32>,
    handler_lock_held: Value<u32>,
    handler_done: Event,
}

static FLOW: [Flow; 3] = [const {
    Flow {
        put_sum: [const { Value::new(0) }; 2],
        taken_sum: [const { Value::new(0) }; 2],
        out_of_order: Value::new(0),
        ticks: Value::new(0),
        handler_put: Value::new(0),
        handler_full: Value::new(0),
        handler_lock_held: Value::new(0),
        handler_done: Event::new(),
    }
}; 3];

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
                &me.lock_waits[0],
                || COUNTER_LOCK.try_lock(),
                || COUNTER_LOCK.lock(),
            );
            COUNTER.set(COUNTER.get() + 1);
        }
        rounds += 1;
        if rounds >= ROUNDS && rounds % 1024 == 0 {
            let contended = [me, other]
                .iter()
                .all(|seen| seen.lock_waits[0].get() >= CONTENDED);
            if contended || board::Uptime::now_ns() >= give_up {
                break;
            }
        }
    }
    me.rounds.set(rounds);
}

/// Why the interrupt handler could not put its item.
enum Refused {
    Full,
    LockHeld,
}

/// Where core 1 and the handler put items and core 0 takes them: the hand-built ring
/// (phase 2) or the `Queue` (phase 3).
trait Channel {
    /// Puts `item`, waiting while the channel is full; counts in `seen` how often the
    /// caller had to wait.
    fn put(&self, item: u32, seen: &Seen, phase: usize);
    /// Puts `item` if it can right now, never waiting: for the interrupt handler.
    fn try_put(&self, item: u32) -> Result<(), Refused>;
    /// Takes the next item, waiting while the channel is empty.
    fn take(&self, seen: &Seen, phase: usize) -> u32;
    /// Checks what the channel itself promises, once every item is through.
    fn check_drained(&self) -> bool;
}

/// The ring of phase 2, made of the statics above.
struct Ring;

impl Ring {
    /// Puts `item` at the head; the caller holds the ring's lock and a free slot.
    fn put_at_head(ring: &mut shmsync_core::ArrayGuard<'_, u32, SLOTS, Chip, Unowned>, item: u32) {
        let head = HEAD.get();
        ring.set(head as usize % SLOTS, item).unwrap();
        HEAD.set(head + 1);
        let filled = head + 1 - TAIL.get();
        if filled > MOST_FILLED.get() {
            MOST_FILLED.set(filled); // under the ring's lock: no other writer
        }
    }
}

impl Channel for Ring {
    fn put(&self, item: u32, seen: &Seen, phase: usize) {
        acquire_counting(&FREE, &seen.channel_waits[phase]);
        let mut ring = lock_counting(&seen.lock_waits[phase], || RING.try_lock(), || RING.lock());
        Self::put_at_head(&mut ring, item);
        drop(ring);
        FILLED.release();
    }

    fn try_put(&self, item: u32) -> Result<(), Refused> {
        if !FREE.try_acquire() {
            return Err(Refused::Full);
        }
        let Ok(mut ring) = RING.try_lock() else {
            FREE.release(); // the slot stays free for the others
            return Err(Refused::LockHeld);
        };
        Self::put_at_head(&mut ring, item);
        drop(ring);
        FILLED.release();
        Ok(())
    }

    fn take(&self, seen: &Seen, phase: usize) -> u32 {
        acquire_counting(&FILLED, &seen.channel_waits[phase]);
        let ring = lock_counting(&seen.lock_waits[phase], || RING.try_lock(), || RING.lock());
        let tail = TAIL.get();
        TAIL.set(tail + 1);
        let item = ring.get(tail as usize % SLOTS).unwrap();
        drop(ring);
        FREE.release();
        item
    }

    fn check_drained(&self) -> bool {
        let mut ok = check(
            format_args!("ring: every item put was taken once"),
            HEAD.get() == ITEMS + TICKS && TAIL.get() == ITEMS + TICKS,
        );
        ok &= check(
            format_args!("ring: it never held more than its slots"),
            MOST_FILLED.get() <= SLOTS as u32,
        );
        ok &= check(
            format_args!("ring: every permit is back, its lock is free"),
            FREE.value() == SLOTS as u32 && FILLED.value() == 0 && RING.try_lock().is_ok(),
        );
        ok
    }
}

impl Channel for Queue<u32, SLOTS> {
    fn put(&self, item: u32, seen: &Seen, phase: usize) {
        if let Err(PutError::Full(item)) = self.try_put(item) {
            seen.channel_waits[phase].fetch_add(1);
            self.put(item)
                .unwrap_or_else(|_| panic!("the queue is never closed"));
        }
    }

    fn try_put(&self, item: u32) -> Result<(), Refused> {
        // Also full while the queue's lock is held for longer than a moment.
        Queue::try_put(self, item).map_err(|_| Refused::Full)
    }

    fn take(&self, seen: &Seen, phase: usize) -> u32 {
        match self.try_get() {
            Ok(item) => item,
            Err(GetError::Empty) => {
                seen.channel_waits[phase].fetch_add(1);
                self.get()
                    .unwrap_or_else(|_| panic!("the queue is never closed"))
            }
            Err(GetError::Closed) => panic!("the queue is never closed"),
        }
    }

    fn check_drained(&self) -> bool {
        check(
            format_args!("queue: it is empty"),
            self.empty() && self.qsize() == 0,
        )
    }
}

fn item(producer: u32, n: u32) -> u32 {
    producer << 16 | n
}

/// Core 1 in phases 2 and 3: puts `ITEMS` items.
fn produce(channel: &impl Channel, phase: usize) {
    for n in 0..ITEMS {
        channel.put(item(FROM_CORE1, n), &SEEN[1], phase);
        FLOW[phase].put_sum[0].fetch_add(item(FROM_CORE1, n));
    }
}

/// Core 0 in phases 2 and 3: takes every item that core 1 and the handler put.
fn consume(channel: &impl Channel, phase: usize) {
    let flow = &FLOW[phase];
    let mut next = [0u32; 2];
    for _ in 0..ITEMS + TICKS {
        let item = channel.take(&SEEN[0], phase);
        let producer = (item >> 16) as usize;
        flow.taken_sum[producer].fetch_add(item);
        if item & 0xFFFF != next[producer] {
            flow.out_of_order.fetch_add(1);
        }
        next[producer] = (item & 0xFFFF) + 1;
    }
}

/// The timer interrupt handler, on core 0. Returns whether it wants another tick.
pub fn on_tick() -> bool {
    match TICKING.get() as usize {
        RING_PHASE => tick(&Ring, RING_PHASE),
        QUEUE_PHASE => tick(&QUEUE, QUEUE_PHASE),
        _ => false,
    }
}

/// Puts one item into `channel` if it can, with operations that never wait.
fn tick(channel: &impl Channel, phase: usize) -> bool {
    let flow = &FLOW[phase];
    if flow.handler_done.is_set() {
        return false; // a tick that was already pending when the last one stopped them
    }
    flow.ticks.fetch_add(1);
    let n = flow.handler_put.get();
    match channel.try_put(item(FROM_HANDLER, n)) {
        Ok(()) => {}
        Err(Refused::Full) => {
            flow.handler_full.fetch_add(1);
            return true;
        }
        Err(Refused::LockHeld) => {
            flow.handler_lock_held.fetch_add(1);
            return true;
        }
    }
    flow.put_sum[1].fetch_add(item(FROM_HANDLER, n));
    flow.handler_put.set(n + 1);
    if n + 1 < TICKS {
        return true;
    }
    flow.handler_done.set();
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
    produce(&Ring, RING_PHASE);
    // Set by the interrupt handler on core 0.
    FLOW[RING_PHASE].handler_done.wait();
    end_of_phase(1, RING_PHASE);
    meet(3);
    produce(&QUEUE, QUEUE_PHASE);
    FLOW[QUEUE_PHASE].handler_done.wait();
    end_of_phase(1, QUEUE_PHASE);
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
    TICKING.set(RING_PHASE as u32);
    board::start_ticks();
    consume(&Ring, RING_PHASE);
    end_of_phase(0, RING_PHASE);
    meet(3);
    TICKING.set(QUEUE_PHASE as u32);
    board::start_ticks();
    consume(&QUEUE, QUEUE_PHASE);
    end_of_phase(0, QUEUE_PHASE);
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

fn check(what: core::fmt::Arguments<'_>, ok: bool) -> bool {
    hprintln!("  [{}] {}", if ok { "ok" } else { "FAILED" }, what);
    ok
}

fn report(timed_out: bool, waited_us: u64) -> bool {
    hprintln!("what the cores saw (a wait: a try_ failed, the core had to wait; sleeps: in the doorbell):");
    for (core, seen) in SEEN.iter().enumerate() {
        let slept = |phase: usize| {
            let before = if phase == 0 {
                0
            } else {
                seen.sleeps[phase - 1].get()
            };
            seen.sleeps[phase].get() - before
        };
        hprintln!(
            "  core {}: 1. counter: {} rounds, lock held {} times, {} sleeps",
            core,
            seen.rounds.get(),
            seen.lock_waits[0].get(),
            slept(0),
        );
        let waited = if core == 0 { "empty" } else { "full" };
        hprintln!(
            "          2. ring: lock held {} times, {} {} times, {} sleeps",
            seen.lock_waits[RING_PHASE].get(),
            waited,
            seen.channel_waits[RING_PHASE].get(),
            slept(RING_PHASE),
        );
        hprintln!(
            "          3. queue: {} {} times, {} sleeps",
            waited,
            seen.channel_waits[QUEUE_PHASE].get(),
            slept(QUEUE_PHASE),
        );
    }
    for (phase, name) in CHANNELS {
        let flow = &FLOW[phase];
        hprintln!(
            "  interrupt handler, {}: {} ticks, {} items put; could not put at {} ticks (full) and {} (the ring's lock held)",
            name,
            flow.ticks.get(),
            flow.handler_put.get(),
            flow.handler_full.get(),
            flow.handler_lock_held.get(),
        );
    }
    board::report_sleeps();

    hprintln!("checks:");
    let timeout_us = TIMEOUT.as_micros() as u64;
    let core1_waited_us = u64::from(CORE1_TIMED_OUT_US.get());
    let mut ok = check(
        format_args!("a wait for an event nobody sets timed out, no earlier than asked"),
        timed_out && waited_us >= timeout_us,
    );
    hprintln!("      after {} us (asked: {} us)", waited_us, timeout_us);
    ok &= check(
        format_args!("core 1 timed out on the lock core 0 held, no earlier than asked"),
        core1_waited_us >= timeout_us,
    );
    hprintln!("      after {} us", core1_waited_us);
    let rounds = SEEN[0].rounds.get() + SEEN[1].rounds.get();
    ok &= check(
        format_args!("the counter under the lock lost no update"),
        COUNTER.get() == rounds,
    );
    hprintln!("      {} of {}", COUNTER.get(), rounds);
    ok &= check(
        format_args!("the counter's lock is free"),
        !COUNTER_LOCK.is_locked(),
    );
    ok &= check_flow(RING_PHASE, "ring") & Ring.check_drained();
    ok &= check_flow(QUEUE_PHASE, "queue") & QUEUE.check_drained();
    ok
}

/// The checksums and the order of what went through a channel.
fn check_flow(phase: usize, name: &str) -> bool {
    let flow = &FLOW[phase];
    let expected =
        |producer, count| (0..count).fold(0u32, |s, n| s.wrapping_add(item(producer, n)));
    let mut ok = true;
    for (producer, count, who) in [
        (FROM_CORE1, ITEMS, "core 1"),
        (FROM_HANDLER, TICKS, "the handler"),
    ] {
        let (put, taken) = (
            flow.put_sum[producer as usize].get(),
            flow.taken_sum[producer as usize].get(),
        );
        ok &= check(
            format_args!(
                "{name}: checksums of the {count} items from {who}: put = taken = expected"
            ),
            put == taken && put == expected(producer, count),
        );
    }
    ok & check(
        format_args!("{name}: every item came out in the order its producer put it in"),
        flow.out_of_order.get() == 0,
    )
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
