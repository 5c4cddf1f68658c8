//! What the fault suites of the newer primitives (`tests/*_faults.rs`) share: a trial's
//! workers, forked children of which some are SIGKILLed at random moments, and the
//! check that the others all finish.

use crate::XorShift;
use shmsync::{Process, Value};
use std::time::Duration;

/// How long a survivor may take to finish once told to stop: far beyond any wait a
/// live peer causes (the longest is a look again after a death, 50 ms), so that only a
/// wedge reaches it.
pub const FINISH_WITHIN: Duration = Duration::from_secs(10);

/// The workers of one trial.
pub struct Crew {
    workers: Vec<Option<Process>>,
    /// How many were killed.
    pub kills: u32,
}

impl Crew {
    /// Forks `count` workers, worker `w` running `work(w)`. They are daemons: a trial
    /// that fails kills them as it drops the crew, instead of waiting for workers that
    /// may never finish.
    pub fn spawn(count: usize, work: impl Fn(usize)) -> Crew {
        let workers = (0..count)
            .map(|w| {
                let mut worker = Process::spawn(|| work(w)).expect("fork a worker");
                worker.set_daemon(true);
                Some(worker)
            })
            .collect();
        Crew { workers, kills: 0 }
    }

    /// Kills `victims` workers picked at random (perhaps the same one twice: then
    /// fewer), each after a random pause of up to `pause_us` µs: holders, waiters and
    /// workers in the middle of a call alike.
    pub fn kill_at_random(&mut self, random: &mut XorShift, victims: u64, pause_us: u64) {
        for _ in 0..victims {
            std::thread::sleep(Duration::from_micros(random.below(pause_us)));
            let victim = random.below(self.workers.len() as u64) as usize;
            if let Some(child) = self.workers[victim].take() {
                child.kill().expect("kill a worker");
                let status = crate::join(child);
                assert!(status.signal().is_some(), "a killed worker {status}");
                self.kills += 1;
            }
        }
    }

    /// Whether worker `w` is alive (was not killed).
    pub fn survives(&self, w: usize) -> bool {
        self.workers[w].is_some()
    }

    /// Waits for every survivor to finish, for up to [`FINISH_WITHIN`] each. Returns
    /// how many hung (those are killed and reaped); panics if one failed.
    pub fn join_survivors(self) -> u32 {
        let mut hangs = 0;
        for mut child in self.workers.into_iter().flatten() {
            match child
                .join_timeout(FINISH_WITHIN)
                .expect("wait for a worker")
            {
                Some(status) => assert!(status.success(), "a survivor {status}"),
                None => {
                    hangs += 1;
                    child.kill().expect("kill a hung worker");
                    let _ = crate::join(child);
                }
            }
        }
        hangs
    }
}

/// A seed for a trial's workers, from the suite's generator: never 0, which would
/// leave a `XorShift` at 0 for ever.
pub fn seed(random: &mut XorShift) -> u64 {
    random.below(u64::MAX - 1) + 1
}

/// Waits until the workers have made `rounds` rounds between them (counted in
/// `made`), so that the kills come in the middle of the work, not before it. Panics if
/// they make none for [`HANG`](crate::HANG): they hang.
pub fn wait_for_rounds(made: &Value<u64>, rounds: u64) {
    let mut last = (made.get(), std::time::Instant::now());
    while made.get() < rounds {
        let now = made.get();
        if now != last.0 {
            last = (now, std::time::Instant::now());
        }
        assert!(
            last.1.elapsed() < crate::HANG,
            "the workers made no round for {:?}: they hang",
            crate::HANG
        );
        std::thread::sleep(Duration::from_micros(100));
    }
}
