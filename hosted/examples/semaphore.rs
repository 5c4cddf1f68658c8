//! Retells the Python lesson on `multiprocessing.Semaphore`: six processes want to work,
//! a semaphore of three seats lets three in at a time, so the work takes two rounds.
//! Each worker records how many were inside with it, and the parent reports the most.
//!
//!     cargo run -p shmsync --example semaphore

use shmsync::{shm_struct, Process, Semaphore, Shared, Value};
use std::error::Error;
use std::time::{Duration, Instant};

const SEATS: u32 = 3;
const WORKERS: u32 = 6;

shm_struct! {
    struct Room {
        seats: Semaphore,
        inside: Value<u32>,
        most_inside: Value<u32>,
    }
}

/// Public so that the tour can run this lesson among the others.
pub fn main() -> Result<(), Box<dyn Error>> {
    let room = Shared::anonymous(Room {
        seats: Semaphore::new(SEATS),
        inside: Value::new(0),
        most_inside: Value::new(0),
    })?;
    let began = Instant::now();
    let workers: Vec<Process> = (1..=WORKERS)
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
        .collect::<Result<_, _>>()?;
    for worker in workers {
        worker.join()?;
    }
    println!(
        "{WORKERS} workers, Semaphore({SEATS}): at most {} at once, done in {:.1?} (two rounds of 100 ms)",
        room.most_inside.get(),
        began.elapsed()
    );
    Ok(())
}
