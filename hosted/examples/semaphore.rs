//! A Semaphore limiting how many processes work at once.
mod lessons;

fn main() -> lessons::Result {
    lessons::semaphore_limit()
}
