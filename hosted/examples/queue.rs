//! Retells the Python lesson on `multiprocessing.JoinableQueue`: two producer
//! processes put jobs, three worker processes take them and mark each done, and the
//! parent joins the tasks, then closes the queue so that the workers stop. Then a
//! worker is killed in the middle of its work: the others carry on, and the parent's
//! timed join says whether a job died with it.
//!
//!     cargo run -p shmsync --example queue

use shmsync::{pod_struct, shm_struct, Process, Queue, Shared, Value};
use std::error::Error;
use std::time::Duration;

const JOBS_EACH: u32 = 500;

pod_struct! {
    /// One job: who made it, and the number to square.
    struct Job {
        producer: u32,
        n: u32,
    }
}

shm_struct! {
    struct Work {
        jobs: Queue<Job, 16>,
        total: Value<u64>,
        done: Value<u32>,
    }
}

/// Public so that the tour can run this lesson among the others.
pub fn main() -> Result<(), Box<dyn Error>> {
    let work = Shared::anonymous(Work {
        jobs: Queue::new(),
        total: Value::new(0),
        done: Value::new(0),
    })?;
    let work = &*work;
    let mut workers: Vec<Process> = (0..3)
        .map(|_| {
            Process::spawn(|| {
                // Until the queue is closed and empty.
                while let Ok(job) = work.jobs.get() {
                    work.total.fetch_add(u64::from(job.n) * u64::from(job.n));
                    work.done.fetch_add(1);
                    work.jobs.task_done().expect("one task_done per job taken");
                }
            })
        })
        .collect::<Result<_, _>>()?;
    let producers: Vec<Process> = (0..2)
        .map(|producer| {
            Process::spawn(move || {
                for n in 1..=JOBS_EACH {
                    work.jobs
                        .put(Job { producer, n })
                        .expect("the queue is open");
                }
            })
        })
        .collect::<Result<_, _>>()?;
    for producer in producers {
        producer.join()?;
    }
    work.jobs.join(); // JoinableQueue.join(): every job taken and marked done
    let expected: u64 = 2 * (1..=u64::from(JOBS_EACH)).map(|n| n * n).sum::<u64>();
    println!(
        "  {} jobs done by 3 workers, sum of squares {} (expected {expected})",
        work.done.get(),
        work.total.get()
    );

    // A worker killed while the jobs flow: whatever instruction of `get` it was at,
    // the queue goes on for the others.
    let feeder = Process::spawn(|| {
        for n in 1..=200 {
            work.jobs
                .put(Job { producer: 9, n })
                .expect("the queue is open");
            std::thread::sleep(Duration::from_micros(200));
        }
    })?;
    while work.done.get() < 2 * JOBS_EACH + 50 {
        std::thread::sleep(Duration::from_millis(1));
    }
    let victim = workers.remove(0);
    victim.kill()?;
    victim.join()?;
    feeder.join()?;
    if work.jobs.join_timeout(Duration::from_secs(5)) {
        println!("  a worker was killed between jobs: all 200 more jobs done");
    } else {
        println!(
            "  a worker was killed holding a job: {} job died with it, the other {} were done",
            work.jobs.unfinished_tasks(),
            200 - work.jobs.unfinished_tasks()
        );
    }
    work.jobs.close(); // Python 3.13's shutdown(): the workers' `get` ends
    for worker in workers {
        worker.join()?;
    }
    println!("  queue closed; the 2 surviving workers stopped");
    Ok(())
}
