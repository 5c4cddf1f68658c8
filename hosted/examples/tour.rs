//! Every lesson, end to end, with a readable transcript:
//!
//!     cargo run -p shmsync --example tour
mod lessons;

use std::process::Command;
use std::time::Duration;

fn main() -> lessons::Result {
    let mut args = std::env::args().skip(1);
    if let (Some(flag), Some(name)) = (args.next(), args.next()) {
        if flag == "--guest" {
            return lessons::meeting_guest(&name); // the tour running itself as the guest
        }
    }

    heading("1. Value and Array, shared with forked children");
    lessons::value_and_array()?;
    heading("2. A Semaphore lets three processes in at a time");
    lessons::semaphore_limit()?;
    heading("3. Threads: an Event to signal, a Lock to keep two values in step");
    lessons::threads_event_lock()?;
    heading("4. Two unrelated processes meet in a named segment");
    let name = format!("shmsync-tour-{}", std::process::id());
    std::thread::scope(|s| -> lessons::Result {
        let host = s.spawn(|| {
            lessons::meeting_host(&name, Duration::from_secs(10)).map_err(|e| e.to_string())
        });
        // The guest is this program started again: a separate process that knows only the name.
        let mut guest = Command::new(std::env::current_exe()?)
            .args(["--guest", &name])
            .spawn()?;
        let status = guest.wait()?;
        host.join().map_err(|_| "the host panicked")??;
        println!("guest process {status}");
        Ok(())
    })?;
    heading("done");
    Ok(())
}

fn heading(title: &str) {
    println!("\n=== {title}");
}
