//! One conformance suite, four modes: threads; forked processes over an anonymous
//! segment; unrelated processes (exec'd helpers) over a named segment; spawned
//! processes (this test binary started afresh, Python's `spawn` start method) handed a
//! memfd segment, or a named one.

use shmsync::{run_if_spawned, Entry, Process, Shared, Spawned};
use shmsync_tests::{daemon, join_all_reaped, join_thread, respawn, wait, Arena, Scenario};
use std::error::Error;
use std::path::Path;
use std::process::Command;
use std::sync::atomic::{AtomicU32, Ordering};

const WORKERS: u32 = 4;

/// A spawned worker: `arg(0)` names the scenario, `arg(1)` is the worker's id, and
/// segment 0 is the arena.
fn worker(child: &Spawned) -> Result<(), Box<dyn Error>> {
    let scenario = Scenario::from_name(child.arg(0)?).ok_or("unknown scenario")?;
    let id = child.arg(1)?.parse()?;
    let arena = child.segment::<Arena>(0)?;
    scenario.work(&arena, id);
    Ok(())
}

const ENTRIES: &[(&str, Entry)] = &[("worker", worker)];

static SEGMENTS: AtomicU32 = AtomicU32::new(0);

/// A segment name of its own for each test.
fn segment_name(scenario: Scenario) -> String {
    format!(
        "shmsync-test-{}-{}-{}",
        scenario.name(),
        std::process::id(),
        SEGMENTS.fetch_add(1, Ordering::Relaxed)
    )
}

fn in_threads(scenario: Scenario) {
    // Leaked, not scoped: a worker that hangs is left behind, and the test fails.
    let arena: &'static Arena = Box::leak(Box::default());
    let workers: Vec<_> = (0..WORKERS)
        .map(|id| std::thread::spawn(move || scenario.work(arena, id)))
        .collect();
    scenario.coordinate(arena, WORKERS);
    for worker in workers {
        join_thread(worker);
    }
    scenario.check(arena, WORKERS);
}

fn in_forked_processes(scenario: Scenario) {
    let arena = Shared::anonymous(Arena::new()).unwrap();
    // Daemons: once one has failed, the others may wait for it for ever.
    let children: Vec<Process> = (0..WORKERS)
        .map(|id| daemon(Process::spawn(|| scenario.work(&arena, id)).unwrap()))
        .collect();
    scenario.coordinate(&arena, WORKERS);
    join_all_reaped(children);
    scenario.check(&arena, WORKERS);
}

/// Exec'd helpers, killed and reaped if the test fails before waiting for them all:
/// once one has failed, the others may wait for it for ever.
struct Helpers(Vec<std::process::Child>);

impl Drop for Helpers {
    fn drop(&mut self) {
        for helper in &mut self.0 {
            if let Ok(None) = helper.try_wait() {
                let _ = helper.kill();
                let _ = helper.wait();
            }
        }
    }
}

fn in_unrelated_processes(scenario: Scenario) {
    let name = segment_name(scenario);
    {
        let arena = Shared::create(&name, Arena::new()).unwrap();
        let mut helpers = Helpers(
            (0..WORKERS)
                .map(|id| {
                    Command::new(env!("CARGO_BIN_EXE_shmsync-helper"))
                        .args([scenario.name(), &name, &id.to_string()])
                        .spawn()
                        .unwrap()
                })
                .collect(),
        );
        scenario.coordinate(&arena, WORKERS);
        for helper in &mut helpers.0 {
            assert!(wait(helper).success());
        }
        scenario.check(&arena, WORKERS);
    }
    assert!(
        !Path::new(&format!("/dev/shm/{name}")).exists(),
        "{name} left behind"
    );
}

/// How the spawned workers are handed the arena.
enum Handed {
    Memfd,
    Named,
}

/// The workers are this test binary started afresh to run `test` (which must register
/// [`ENTRIES`] first), handed the arena as a memfd or by name.
fn in_spawned_processes(scenario: Scenario, test: &str, handed: Handed) {
    let name = segment_name(scenario);
    {
        let arena = match handed {
            Handed::Memfd => Shared::memfd(&name, Arena::new()),
            Handed::Named => Shared::create(&name, Arena::new()),
        }
        .unwrap();
        let children: Vec<Process> = (0..WORKERS)
            .map(|id| {
                daemon(
                    respawn(test, "worker")
                        .args([scenario.name().to_owned(), id.to_string()])
                        .segment(&arena)
                        .start()
                        .unwrap(),
                )
            })
            .collect();
        scenario.coordinate(&arena, WORKERS);
        join_all_reaped(children);
        scenario.check(&arena, WORKERS);
    }
    assert!(
        !Path::new(&format!("/dev/shm/{name}")).exists(),
        "{name} left behind"
    );
}

macro_rules! in_every_mode {
    ($($scenario:ident => $threads:ident, $forked:ident, $unrelated:ident,
        $spawned_memfd:ident, $spawned_named:ident;)*) => {$(
        #[test]
        fn $threads() {
            in_threads(Scenario::$scenario);
        }
        #[test]
        fn $forked() {
            in_forked_processes(Scenario::$scenario);
        }
        #[test]
        fn $unrelated() {
            in_unrelated_processes(Scenario::$scenario);
        }
        #[test]
        fn $spawned_memfd() {
            run_if_spawned(ENTRIES);
            in_spawned_processes(Scenario::$scenario, stringify!($spawned_memfd), Handed::Memfd);
        }
        #[test]
        fn $spawned_named() {
            run_if_spawned(ENTRIES);
            in_spawned_processes(Scenario::$scenario, stringify!($spawned_named), Handed::Named);
        }
    )*};
}

in_every_mode! {
    LockedCounter => locked_counter_threads, locked_counter_forked, locked_counter_unrelated,
        locked_counter_spawned_memfd, locked_counter_spawned_named;
    SemaphoreLimit => semaphore_limit_threads, semaphore_limit_forked, semaphore_limit_unrelated,
        semaphore_limit_spawned_memfd, semaphore_limit_spawned_named;
    StartGun => start_gun_threads, start_gun_forked, start_gun_unrelated,
        start_gun_spawned_memfd, start_gun_spawned_named;
    UntornArray => untorn_array_threads, untorn_array_forked, untorn_array_unrelated,
        untorn_array_spawned_memfd, untorn_array_spawned_named;
    Timeouts => timeouts_threads, timeouts_forked, timeouts_unrelated,
        timeouts_spawned_memfd, timeouts_spawned_named;
    QueueChecksum => queue_checksum_threads, queue_checksum_forked, queue_checksum_unrelated,
        queue_checksum_spawned_memfd, queue_checksum_spawned_named;
    ReentrantDepth => reentrant_depth_threads, reentrant_depth_forked, reentrant_depth_unrelated,
        reentrant_depth_spawned_memfd, reentrant_depth_spawned_named;
    ConditionHandOff => condition_hand_off_threads, condition_hand_off_forked,
        condition_hand_off_unrelated, condition_hand_off_spawned_memfd,
        condition_hand_off_spawned_named;
    BarrierGenerations => barrier_generations_threads, barrier_generations_forked,
        barrier_generations_unrelated, barrier_generations_spawned_memfd,
        barrier_generations_spawned_named;
    ReadersWriter => readers_writer_threads, readers_writer_forked, readers_writer_unrelated,
        readers_writer_spawned_memfd, readers_writer_spawned_named;
}
