//! Threads with an Event and a Lock.
mod lessons;

fn main() -> lessons::Result {
    lessons::threads_event_lock()
}
