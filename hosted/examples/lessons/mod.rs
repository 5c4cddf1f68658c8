//! The lessons of Python's multiprocessing/threading notes, retold in Rust. Each example
//! binary runs one; `tour` runs them all.
#![allow(dead_code)] // each example binary uses some of the lessons

use shmsync::{
    shm_struct, Array, Event, Lock, Process, Semaphore, Shared, ShmError, Thread, Value,
};
use std::error::Error;
use std::time::{Duration, Instant};

pub type Result<T = ()> = std::result::Result<T, Box<dyn Error>>;

shm_struct! {
    struct Bank {
        money: Value<i32>,            // Value('i', 5000)
        prices: Array<i32, 5>,        // Array('i', [1, 2, 3, 4, 5])
        motto: Array<u8, 32>,         // Array('c', b'...')
    }
}

/// Value and Array shared between a parent and forked children.
pub fn value_and_array() -> Result {
    let bank = Shared::anonymous(Bank {
        money: Value::new(5000),
        prices: Array::new([1, 2, 3, 4, 5]),
        motto: Array::zeroed(),
    })?;
    bank.motto.set_value(b"shared memory")?;
    println!(
        "parent: money = {}, prices = {:?}",
        bank.money.get(),
        bank.prices.snapshot()
    );

    // Python's `obj.value += 1` from two processes loses updates; `update` cannot.
    let saver = Process::spawn_named("saver", || {
        for _ in 0..10_000 {
            bank.money
                .update(|m| m + 1)
                .expect("nobody died holding the lock");
        }
    })?;
    let spender = Process::spawn_named("spender", || {
        for _ in 0..10_000 {
            bank.money.fetch_sub(1);
        }
    })?;
    let doubler = Process::spawn_named("doubler", || {
        let mut prices = bank.prices.lock().unwrap();
        for i in 0..prices.snapshot().len() {
            let price = prices.get(i).unwrap();
            prices.set(i, price * 2).unwrap();
        }
        bank.motto.set_value(b"changed by a child").unwrap();
    })?;
    for child in [saver, spender, doubler] {
        let name = child.name().to_owned();
        println!("{name} {}", child.join()?);
    }
    println!(
        "parent: money = {} (10,000 deposits and 10,000 withdrawals, none lost)",
        bank.money.get()
    );
    println!("parent: prices = {:?}", bank.prices.snapshot()?);
    println!(
        "parent: motto = {:?}",
        String::from_utf8_lossy(&bank.motto.value()?)
    );
    match bank.prices.get(5) {
        Err(error) => println!("parent: prices[5] -> error: {error}"),
        Ok(price) => println!("parent: prices[5] = {price}?!"),
    }
    Ok(())
}

shm_struct! {
    struct Room {
        seats: Semaphore,
        inside: Value<u32>,
        most_inside: Value<u32>,
    }
}

/// A Semaphore limiting how many processes work at once.
pub fn semaphore_limit() -> Result {
    const SEATS: u32 = 3;
    let room = Shared::anonymous(Room {
        seats: Semaphore::new(SEATS),
        inside: Value::new(0),
        most_inside: Value::new(0),
    })?;
    let began = Instant::now();
    let workers: Vec<Process> = (1..=6)
        .map(|n| {
            Process::spawn(|| {
                room.seats.acquire();
                let now = room.inside.fetch_add(1) + 1;
                room.most_inside
                    .update(|most| most.max(now))
                    .expect("nobody died holding the lock");
                println!(
                    "  worker {n} works ({now} inside, {} seats left)",
                    room.seats.value()
                );
                std::thread::sleep(Duration::from_millis(100));
                room.inside.fetch_sub(1);
                room.seats.release();
            })
        })
        .collect::<std::result::Result<_, _>>()?;
    for worker in workers {
        worker.join()?;
    }
    println!(
        "6 workers, Semaphore({SEATS}): at most {} at once, done in {:.1?} (two rounds of 100 ms)",
        room.most_inside.get(),
        began.elapsed()
    );
    Ok(())
}

/// Threads with an Event and a Lock.
pub fn threads_event_lock() -> Result {
    // Event: a thread waits for the main thread to publish a value.
    static PASSWORD: Value<u32> = Value::new(0);
    static PUBLISHED: Event = Event::new();
    let guard = Thread::spawn("guard", || {
        println!("  guard: waiting for the password");
        PUBLISHED.wait();
        println!("  guard: got {}", PASSWORD.get());
        PASSWORD.get() == 1234
    })?;
    std::thread::sleep(Duration::from_millis(50));
    PASSWORD.set(1234);
    PUBLISHED.set();
    println!(
        "guard thread says the password is right: {:?}",
        guard.join().ok()
    );

    // Lock: a and b change together; a checker never sees them differ.
    static LOCK: Lock = Lock::new();
    static A: Value<u64> = Value::new(0);
    static B: Value<u64> = Value::new(0);
    static STOP: Event = Event::new();
    let writer = Thread::spawn("writer", || {
        for _ in 0..100_000 {
            let _held = LOCK.lock().unwrap();
            A.set(A.get() + 1);
            B.set(B.get() + 1);
        }
        STOP.set();
    })?;
    let checker = Thread::spawn("checker", || {
        let mut mismatches = 0;
        let mut checks = 0;
        while !STOP.is_set() {
            let _held = LOCK.lock().unwrap();
            checks += 1;
            if A.get() != B.get() {
                mismatches += 1;
            }
        }
        (checks, mismatches)
    })?;
    writer.join().ok();
    let (checks, mismatches) = checker.join().unwrap_or_default();
    println!(
        "lock: a = b = {} after 100,000 paired updates; {mismatches} mismatches in {checks} checks",
        A.get()
    );
    Ok(())
}

shm_struct! {
    pub struct Meeting {
        greeting: Array<u8, 64>,
        reply: Array<u8, 64>,
        replied: Event,
    }
}

/// The first of two unrelated processes: creates the named segment and waits for a
/// reply.
pub fn meeting_host(name: &str, wait: Duration) -> Result {
    let meeting = Shared::create(
        name,
        Meeting {
            greeting: Array::zeroed(),
            reply: Array::zeroed(),
            replied: Event::new(),
        },
    )?;
    meeting
        .greeting
        .set_value(format!("hello from process {}", std::process::id()).as_bytes())?;
    println!("host: created segment {name:?}; waiting up to {wait:?} for a guest");
    if meeting.replied.wait_timeout(wait) {
        println!(
            "host: the guest replied {:?}",
            String::from_utf8_lossy(&meeting.reply.value()?)
        );
    } else {
        println!("host: nobody came");
    }
    Ok(()) // dropping `meeting` removes the name
}

/// The second: opens the segment by name (waiting a while for the host to create it),
/// reads the greeting, replies.
pub fn meeting_guest(name: &str) -> Result {
    let began = Instant::now();
    let meeting = loop {
        match Shared::<Meeting>::open(name, Duration::from_secs(5)) {
            Err(ShmError::NotFound { .. }) if began.elapsed() < Duration::from_secs(10) => {
                std::thread::sleep(Duration::from_millis(10));
            }
            opened => break opened?,
        }
    };
    println!(
        "guest: read {:?}",
        String::from_utf8_lossy(&meeting.greeting.value()?)
    );
    meeting
        .reply
        .set_value(format!("hello back from process {}", std::process::id()).as_bytes())?;
    meeting.replied.set();
    Ok(())
}
