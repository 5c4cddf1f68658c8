//! Python's `spawn` start method from a threaded parent: workers that are this program
//! started afresh, handed a memfd segment, add to a shared total under its lock while
//! the parent's own threads keep running.
//!
//! ```sh
//! cargo run -p shmsync --example spawn
//! ```

use shmsync::{run_if_spawned, shm_struct, Lock, Shared, Spawn, Spawned, Value};
use std::error::Error;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

shm_struct! {
    struct Tally { lock: Lock, total: Value<u64>, workers: Value<u32> }
}

/// A worker: adds `arg(0)` to the total, one locked step at a time.
fn add(child: &Spawned) -> Result<(), Box<dyn Error>> {
    let tally = child.segment::<Tally>(0)?;
    let times: u64 = child.arg(0)?.parse()?;
    for _ in 0..times {
        let _held = tally.lock.lock().map_err(|error| error.to_string())?;
        tally.total.set(tally.total.get() + 1);
    }
    tally.workers.fetch_add(1);
    Ok(())
}

/// Spawns four workers handed `tally` and waits for them.
fn run_workers(tally: &Shared<Tally>) -> Result<(), Box<dyn Error>> {
    let workers = (0..4)
        .map(|i| {
            Spawn::new("add")
                .name(&format!("adder-{i}"))
                .arg("10000")
                .segment(tally)
                .start()
        })
        .collect::<Result<Vec<_>, _>>()?;
    for worker in workers {
        let name = worker.name().to_owned();
        println!("{name}: {}", worker.join()?);
    }
    Ok(())
}

fn main() -> Result<(), Box<dyn Error>> {
    // In a spawned child this runs `add` and exits; here it returns at once.
    run_if_spawned(&[("add", add)]);

    let tally = Shared::memfd(
        "tally",
        Tally {
            lock: Lock::new(),
            total: Value::new(0),
            workers: Value::new(0),
        },
    )?;
    let stop = AtomicBool::new(false);
    std::thread::scope(|s| {
        // A thread of the parent that holds stdout's lock now and then: a forked
        // child that printed could wait for it for ever; a spawned one cannot.
        s.spawn(|| {
            while !stop.load(Ordering::Relaxed) {
                let _out = std::io::stdout().lock();
                std::thread::sleep(Duration::from_micros(50));
            }
        });
        let ran = run_workers(&tally);
        stop.store(true, Ordering::Relaxed);
        ran
    })?;
    println!(
        "{} spawned workers added {} in all",
        tally.workers.get(),
        tally.total.get()
    );
    assert_eq!(tally.total.get(), 40_000);
    Ok(())
}
