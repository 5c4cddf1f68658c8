//! Two unrelated processes meeting in a named segment. In one terminal:
//!
//!     cargo run -p shmsync --example meeting -- host
//!
//! and in another, while the first waits:
//!
//!     cargo run -p shmsync --example meeting -- guest
mod lessons;

use std::time::Duration;

const NAME: &str = "shmsync-example-meeting";

fn main() -> lessons::Result {
    match std::env::args().nth(1).as_deref() {
        Some("host") => lessons::meeting_host(NAME, Duration::from_secs(60)),
        Some("guest") => lessons::meeting_guest(NAME),
        _ => Err("usage: meeting host | meeting guest".into()),
    }
}
