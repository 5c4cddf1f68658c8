//! shmsync's core types across embassy tasks on a Cortex-M, printing over semihosting.
//!
//! Two producers fill a `Queue`; a consumer drains it; an `Event` starts everyone;
//! `Value`s count the items and their checksums. A wait that nobody answers must time
//! out. The program exits 0 only when every invariant holds.
#![no_std]
#![no_main]

mod time_driver;

use cortex_m as _; // its critical-section implementation
use cortex_m_semihosting::{debug, hprintln};
use embassy_executor::Spawner;
use embassy_time::{with_timeout, Duration, Instant, Timer};
// The types on the embassy backend: waiters park their task, and locks record no owner
// (a task cannot die on its own while it holds one).
use shmsync_core::embassy::{Event, Queue, Value};

const SLOTS: usize = 4;
const PRODUCERS: u32 = 2;
const ITEMS_EACH: u32 = 100;
const ITEMS: u32 = PRODUCERS * ITEMS_EACH;

static START: Event = Event::new();
static NEVER: Event = Event::new();
static DONE: Event = Event::new();
static RING: Queue<u32, SLOTS> = Queue::new();
static PRODUCED: Value<u32> = Value::new(0);
static CONSUMED: Value<u32> = Value::new(0);
static SUM_PRODUCED: Value<u32> = Value::new(0);
static SUM_CONSUMED: Value<u32> = Value::new(0);
/// The most items the queue ever held: never more than its slots.
static MOST_FILLED: Value<u32> = Value::new(0);

fn item(producer: u32, n: u32) -> u32 {
    producer * 10_000 + n
}

#[embassy_executor::task(pool_size = 2)]
async fn producer(id: u32) {
    START.wait_async().await;
    for n in 0..ITEMS_EACH {
        // Waits while the queue is full; nobody closes it.
        RING.put_async(item(id, n)).await.unwrap();
        // Owner-less tasks cannot die holding the value's lock: this cannot fail.
        let _ = MOST_FILLED.update(|most| most.max(RING.qsize() as u32));
        PRODUCED.fetch_add(1);
        SUM_PRODUCED.fetch_add(item(id, n));
        if n < 2 {
            hprintln!("  producer {} put item {}", id, item(id, n));
        }
        if n % 8 == 7 {
            Timer::after(Duration::from_millis(1)).await; // let the others in
        }
    }
    hprintln!("  producer {} done: {} items", id, ITEMS_EACH);
}

#[embassy_executor::task]
async fn consumer() {
    START.wait_async().await;
    for n in 0..ITEMS {
        let item = RING.get_async().await.unwrap();
        RING.task_done().unwrap();
        CONSUMED.fetch_add(1);
        SUM_CONSUMED.fetch_add(item);
        if n < 3 {
            hprintln!("  consumer took item {}", item);
        }
    }
    hprintln!("  consumer done: {} items", ITEMS);
    DONE.set();
}

fn check(what: &str, ok: bool) -> bool {
    hprintln!("  [{}] {}", if ok { "ok" } else { "FAILED" }, what);
    ok
}

#[embassy_executor::main]
async fn main(spawner: Spawner) {
    let peripherals = cortex_m::Peripherals::take().unwrap();
    time_driver::start(peripherals.SYST);
    hprintln!(
        "shmsync embedded demo: {} producers, 1 consumer, a queue of {} slots",
        PRODUCERS,
        SLOTS
    );

    for id in 0..PRODUCERS {
        spawner.spawn(producer(id).unwrap());
    }
    spawner.spawn(consumer().unwrap());

    hprintln!("waiting 20 ms for an event nobody sets...");
    let began = Instant::now();
    let timed_out = with_timeout(Duration::from_millis(20), NEVER.wait_async())
        .await
        .is_err();
    hprintln!("  timed out after {} ms", began.elapsed().as_millis());

    hprintln!("start!");
    START.set();
    let finished = with_timeout(Duration::from_secs(10), DONE.wait_async())
        .await
        .is_ok();

    hprintln!("checks:");
    let expected_sum = (0..PRODUCERS)
        .flat_map(|p| (0..ITEMS_EACH).map(move |n| item(p, n)))
        .fold(0u32, u32::wrapping_add);
    let mut ok = check("the consumer finished within 10 s", finished);
    ok &= check("the wait with a timeout timed out", timed_out);
    ok &= check(
        "items produced = items consumed",
        PRODUCED.get() == ITEMS && CONSUMED.get() == ITEMS,
    );
    ok &= check(
        "checksums match",
        SUM_PRODUCED.get() == expected_sum && SUM_CONSUMED.get() == expected_sum,
    );
    ok &= check(
        "the queue never held more than its slots",
        MOST_FILLED.get() <= SLOTS as u32,
    );
    ok &= check(
        "the queue is empty, every item marked done",
        RING.empty() && RING.unfinished_tasks() == 0,
    );
    hprintln!(
        "{}",
        if ok {
            "all invariants hold"
        } else {
            "INVARIANTS BROKEN"
        }
    );
    debug::exit(if ok {
        debug::EXIT_SUCCESS
    } else {
        debug::EXIT_FAILURE
    });
}

#[panic_handler]
fn panic(info: &core::panic::PanicInfo) -> ! {
    hprintln!("panic: {}", info);
    debug::exit(debug::EXIT_FAILURE);
    loop {
        cortex_m::asm::wfi();
    }
}
