//! Threads with what Python's `threading.Thread` has and `std::thread` lacks: a join
//! with a timeout.

use std::io;
use std::sync::Arc;
use std::thread::{Builder, JoinHandle};
use std::time::Duration;

use crate::Event;

/// A named thread that can be joined with a timeout.
///
/// # Example
///
/// ```
/// use shmsync::Thread;
/// use std::time::Duration;
///
/// let worker = Thread::spawn("worker", || 6 * 7)?;
/// assert_eq!(worker.name(), "worker");
/// let answer = worker.join_timeout(Duration::from_secs(10)).ok().unwrap().unwrap();
/// assert_eq!(answer, 42);
/// # Ok::<(), std::io::Error>(())
/// ```
pub struct Thread<T> {
    handle: JoinHandle<T>,
    finished: Arc<Event>,
}

/// Sets the event when the thread's closure ends, by return or by panic.
struct SetOnDrop(Arc<Event>);

impl Drop for SetOnDrop {
    fn drop(&mut self) {
        self.0.set();
    }
}

impl<T: Send + 'static> Thread<T> {
    /// Starts `f` on a new thread called `name`.
    pub fn spawn(name: &str, f: impl FnOnce() -> T + Send + 'static) -> io::Result<Thread<T>> {
        let finished = Arc::new(Event::new());
        let on_exit = SetOnDrop(finished.clone());
        let handle = Builder::new().name(name.to_owned()).spawn(move || {
            let _on_exit = on_exit;
            f()
        })?;
        Ok(Thread { handle, finished })
    }
}

impl<T> Thread<T> {
    /// The thread's name.
    pub fn name(&self) -> &str {
        self.handle.thread().name().unwrap_or_default()
    }

    /// Whether its closure is still running.
    pub fn is_alive(&self) -> bool {
        !self.finished.is_set()
    }

    /// Waits for it to finish and returns its result (`Err` if it panicked).
    pub fn join(self) -> std::thread::Result<T> {
        self.handle.join()
    }

    /// Waits at most `timeout`: its result if it finished, or the thread back if not.
    pub fn join_timeout(self, timeout: Duration) -> Result<std::thread::Result<T>, Self> {
        if self.finished.wait_timeout(timeout) {
            Ok(self.handle.join())
        } else {
            Err(self)
        }
    }
}
