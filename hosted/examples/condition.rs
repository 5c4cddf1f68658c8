//! Retells Python's lesson on `Condition` and `Barrier` with processes: three workers
//! cross a barrier with the parent, then wait on a condition for jobs the parent hands
//! out one at a time. One worker is killed while it waits; the notifies pass over it,
//! and the other two do every job.
//!
//!     cargo run -p shmsync --example condition

use shmsync::{shm_struct, Barrier, Condition, Lock, Process, Shared, Value};
use std::error::Error;
use std::time::Duration;

const WORKERS: u32 = 3;
const JOBS: u32 = 6;

shm_struct! {
    struct Jobs {
        start: Barrier,
        lock: Lock,
        ready: Condition,
        waiting: Value<u32>,
        jobs: Value<u32>,
        done: Value<u32>,
        closed: Value<u32>,
    }
}

/// Public so that the tour can run this lesson among the others.
pub fn main() -> Result<(), Box<dyn Error>> {
    let shared = Shared::anonymous(Jobs {
        start: Barrier::new(WORKERS + 1),
        lock: Lock::new(),
        ready: Condition::new(),
        waiting: Value::new(0),
        jobs: Value::new(0),
        done: Value::new(0),
        closed: Value::new(0),
    })?;
    let mut workers: Vec<Process> = (1..=WORKERS)
        .map(|n| {
            Process::spawn(|| {
                let crossed = shared.start.wait().expect("nobody breaks the barrier");
                let arrived = crossed.index() + 1;
                println!("  worker {n} crossed the barrier (it arrived {arrived} of 4)");
                let mut held = shared.lock.lock().expect("nobody dies holding the lock");
                shared.waiting.fetch_add(1);
                loop {
                    if shared.jobs.get() > 0 {
                        shared.jobs.set(shared.jobs.get() - 1);
                        shared.done.fetch_add(1);
                        println!("  worker {n} took a job");
                    } else if shared.closed.get() == 1 {
                        return;
                    } else {
                        held = shared
                            .ready
                            .wait(held)
                            .expect("nobody dies holding the lock");
                    }
                }
            })
        })
        .collect::<Result<_, _>>()?;
    let crossed = shared.start.wait()?;
    println!(
        "the parent crossed too; it was the leader: {}",
        crossed.is_leader()
    );
    // Once every worker has counted itself and let the lock go, all of them wait.
    while shared.waiting.get() < WORKERS {
        std::thread::sleep(Duration::from_millis(1));
    }
    drop(shared.lock.lock().map_err(|e| e.to_string())?);
    let victim = workers.remove(0);
    victim.kill()?;
    println!("worker 1 killed while it waited: {}", victim.join()?);
    for _ in 0..JOBS {
        let _held = shared.lock.lock().map_err(|e| e.to_string())?;
        shared.jobs.set(shared.jobs.get() + 1);
        shared.ready.notify(1); // never to the dead worker
    }
    {
        let _held = shared.lock.lock().map_err(|e| e.to_string())?;
        shared.closed.set(1);
        shared.ready.notify_all();
    }
    for worker in workers {
        worker.join()?;
    }
    println!(
        "{} of {JOBS} jobs done by the 2 survivors",
        shared.done.get()
    );
    assert_eq!(shared.done.get(), JOBS);
    Ok(())
}
