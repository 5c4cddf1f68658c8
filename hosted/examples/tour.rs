//! Every lesson, end to end, with a readable transcript:
//!
//!     cargo run -p shmsync --example tour
//!
//! Each lesson is an example of its own, readable on its own; the tour compiles them in
//! as modules and calls their `main`.

mod condition;
mod meeting;
mod queue;
mod semaphore;
mod threads;
mod value_array;

use std::error::Error;
use std::process::Command;
use std::time::Duration;

fn main() -> Result<(), Box<dyn Error>> {
    if std::env::args().nth(1).as_deref() == Some("guest") {
        // The tour started again as lesson 4's guest: `guest NAME`, as the meeting
        // example takes it.
        return meeting::main();
    }

    heading("1. Value and Array, shared with forked children");
    value_array::main()?;
    heading("2. A Semaphore lets three processes in at a time");
    semaphore::main()?;
    heading("3. Threads: an Event to signal, a Lock to keep two values in step");
    threads::main()?;
    heading("4. Two unrelated processes meet in a named segment");
    let name = format!("shmsync-tour-{}", std::process::id());
    std::thread::scope(|s| -> Result<(), Box<dyn Error>> {
        let host =
            s.spawn(|| meeting::host(&name, Duration::from_secs(10)).map_err(|e| e.to_string()));
        // The guest is this program started again: a separate process that knows only the name.
        let mut guest = Command::new(std::env::current_exe()?)
            .args(["guest", &name])
            .spawn()?;
        let status = guest.wait()?;
        host.join().map_err(|_| "the host panicked")??;
        println!("guest process {status}");
        Ok(())
    })?;
    heading("5. A Queue carries jobs from producer to worker processes");
    queue::main()?;
    heading("6. A Barrier, then jobs handed out over a Condition, one waiter killed");
    condition::main()?;
    heading("done");
    Ok(())
}

fn heading(title: &str) {
    println!("\n=== {title}");
}
