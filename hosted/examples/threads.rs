//! Retells the Python lesson on `threading.Event` and `threading.Lock`: a guard thread
//! waits on an Event until the main thread has published a password, then a writer
//! changes two values together under a Lock while a checker, taking the same Lock,
//! never sees them differ. The types need no shared memory segment between threads: they
//! live in `static`s.
//!
//!     cargo run -p shmsync --example threads

use shmsync::{Event, Lock, Thread, Value};
use std::error::Error;
use std::time::Duration;

/// Public so that the tour can run this lesson among the others.
pub fn main() -> Result<(), Box<dyn Error>> {
    signal_with_an_event()?;
    keep_two_values_in_step()
}

fn signal_with_an_event() -> Result<(), Box<dyn Error>> {
    static PASSWORD: Value<u32> = Value::new(0);
    static PUBLISHED: Event = Event::new();
    let guard = Thread::spawn_named("guard", || {
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
    Ok(())
}

fn keep_two_values_in_step() -> Result<(), Box<dyn Error>> {
    static LOCK: Lock = Lock::new();
    static A: Value<u64> = Value::new(0);
    static B: Value<u64> = Value::new(0);
    static STOP: Event = Event::new();
    let writer = Thread::spawn_named("writer", || {
        for _ in 0..100_000 {
            let _held = LOCK.lock().unwrap();
            A.set(A.get() + 1);
            B.set(B.get() + 1);
        }
        STOP.set();
    })?;
    let checker = Thread::spawn_named("checker", || {
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
