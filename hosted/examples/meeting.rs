//! Two programs that are not parent and child share memory by name, as Python's
//! `multiprocessing.shared_memory.SharedMemory(name=...)` lets them: a host creates a
//! named segment holding a greeting and waits for a reply; a guest, knowing only the
//! name, opens it, reads the greeting and replies. In one terminal:
//!
//!     cargo run -p shmsync --example meeting -- host
//!
//! and in another:
//!
//!     cargo run -p shmsync --example meeting -- guest
//!
//! The guest may start first: it waits up to ten seconds for the host's segment.
//! A name after the role meets in a segment of that name instead.

use shmsync::{shm_struct, Array, Event, Shared};
use std::error::Error;
use std::time::Duration;

const NAME: &str = "shmsync-example-meeting";

shm_struct! {
    struct Meeting {
        greeting: Array<u8, 64>,
        reply: Array<u8, 64>,
        replied: Event,
    }
}

/// Public so that the tour, started again as its lesson 4 guest, can take the same arguments.
pub fn main() -> Result<(), Box<dyn Error>> {
    let mut args = std::env::args().skip(1);
    let role = args.next();
    let name = args.next().unwrap_or_else(|| NAME.to_owned());
    match role.as_deref() {
        Some("host") => host(&name, Duration::from_secs(60)),
        Some("guest") => guest(&name),
        _ => Err("usage: meeting host [NAME] | meeting guest [NAME]".into()),
    }
}

/// Creates the segment, so its name is free when the host starts and removed when it
/// returns.
pub fn host(name: &str, wait: Duration) -> Result<(), Box<dyn Error>> {
    // Made in place: every field starts as zeros (empty texts, the event clear).
    let meeting = Shared::<Meeting>::create_with(name, |_| {})?;
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

/// Opens the segment by name, waiting for the host to create it, since the two may
/// start in either order.
pub fn guest(name: &str) -> Result<(), Box<dyn Error>> {
    let meeting = Shared::<Meeting>::open(name, Duration::from_secs(10))?;
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
