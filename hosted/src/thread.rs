//! Threads with what Python's `threading.Thread` has and `std::thread` lacks: a join
//! with a timeout.

use std::io;
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::Arc;
use std::thread::{Builder, JoinHandle};
use std::time::Duration;

use crate::Event;

/// A named thread that can be joined with a timeout, in the same shape as a
/// [`Process`](crate::Process).
///
/// # Example
///
/// ```
/// use shmsync::Thread;
/// use std::time::Duration;
///
/// let mut worker = Thread::spawn_named("worker", || 6 * 7)?;
/// assert_eq!(worker.name(), "worker");
/// let answer = worker.join_timeout(Duration::from_secs(10)).expect("finished in time");
/// assert_eq!(answer.expect("did not panic"), 42);
/// # Ok::<(), std::io::Error>(())
/// ```
pub struct Thread<T> {
    name: String,
    /// `None` once [`join_timeout`](Self::join_timeout) has handed out the result.
    handle: Option<JoinHandle<T>>,
    finished: Arc<Event>,
}

/// Sets the event when the thread's closure ends, by return or by panic.
struct SetOnDrop(Arc<Event>);

impl Drop for SetOnDrop {
    fn drop(&mut self) {
        self.0.set();
    }
}

static SPAWNED: AtomicU32 = AtomicU32::new(0);

impl<T: Send + 'static> Thread<T> {
    /// Starts `f` on a new thread named `Thread-N`, as Python names them.
    pub fn spawn(f: impl FnOnce() -> T + Send + 'static) -> io::Result<Thread<T>> {
        let n = SPAWNED.fetch_add(1, Ordering::Relaxed) + 1;
        Self::start(format!("Thread-{n}"), f)
    }

    /// Starts `f` on a new thread called `name`.
    pub fn spawn_named(
        name: &str,
        f: impl FnOnce() -> T + Send + 'static,
    ) -> io::Result<Thread<T>> {
        SPAWNED.fetch_add(1, Ordering::Relaxed);
        Self::start(name.to_owned(), f)
    }

    fn start(name: String, f: impl FnOnce() -> T + Send + 'static) -> io::Result<Thread<T>> {
        let finished = Arc::new(Event::new());
        let on_exit = SetOnDrop(finished.clone());
        let handle = Builder::new().name(name.clone()).spawn(move || {
            let _on_exit = on_exit;
            f()
        })?;
        Ok(Thread {
            name,
            handle: Some(handle),
            finished,
        })
    }
}

impl<T> Thread<T> {
    /// The name it was given.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// Whether its closure is still running.
    pub fn is_alive(&self) -> bool {
        !self.finished.is_set()
    }

    /// Waits for it to finish and returns its result (`Err` if it panicked).
    ///
    /// # Panics
    ///
    /// If [`join_timeout`](Self::join_timeout) already returned the result: a result is
    /// handed out once.
    pub fn join(mut self) -> std::thread::Result<T> {
        self.take_handle().join()
    }

    /// Waits at most `timeout` for it to finish: its result (`Err` if it panicked), or
    /// `None` if it is still running, as [`Process::join_timeout`](crate::Process::join_timeout).
    ///
    /// # Panics
    ///
    /// If an earlier call already returned the result.
    pub fn join_timeout(&mut self, timeout: Duration) -> Option<std::thread::Result<T>> {
        if self.finished.wait_timeout(timeout) {
            Some(self.take_handle().join())
        } else {
            None
        }
    }

    fn take_handle(&mut self) -> JoinHandle<T> {
        self.handle
            .take()
            .expect("the thread's result was already returned by join_timeout")
    }
}
