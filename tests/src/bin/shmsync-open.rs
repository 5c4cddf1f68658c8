//! A program whose `main` returns the library's error, as a user's does: it opens a
//! named segment holding a `Value<u64>` and prints the value.
//!
//! Usage: `shmsync-open NAME TIMEOUT_MS`

use shmsync::{Shared, ShmError, Value};
use std::time::Duration;

fn main() -> Result<(), ShmError> {
    let mut args = std::env::args().skip(1);
    let name = args.next().unwrap_or_default();
    let timeout = Duration::from_millis(args.next().and_then(|a| a.parse().ok()).unwrap_or(0));
    let value = Shared::<Value<u64>>::open(&name, timeout)?;
    println!("{}", value.get());
    Ok(())
}
