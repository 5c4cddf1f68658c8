//! One conformance suite, three modes: threads; forked processes over an anonymous
//! segment; unrelated processes (exec'd helpers) over a named segment.

use shmsync::{Process, Shared};
use shmsync_tests::{join, wait, Arena, Scenario};
use std::path::Path;
use std::process::Command;
use std::sync::atomic::{AtomicU32, Ordering};

const WORKERS: u32 = 4;

fn in_threads(scenario: Scenario) {
    let arena = Arena::new();
    std::thread::scope(|s| {
        for id in 0..WORKERS {
            let arena = &arena;
            s.spawn(move || scenario.work(arena, id));
        }
        scenario.coordinate(&arena, WORKERS);
    });
    scenario.check(&arena, WORKERS);
}

fn in_forked_processes(scenario: Scenario) {
    let arena = Shared::anonymous(Arena::new()).unwrap();
    let children: Vec<Process> = (0..WORKERS)
        .map(|id| Process::spawn(|| scenario.work(&arena, id)).unwrap())
        .collect();
    scenario.coordinate(&arena, WORKERS);
    for child in children {
        let pid = child.pid();
        assert!(join(child).success());
        assert!(
            !Path::new(&format!("/proc/{pid}")).exists(),
            "child {pid} not reaped"
        );
    }
    scenario.check(&arena, WORKERS);
}

fn in_unrelated_processes(scenario: Scenario) {
    static SEGMENTS: AtomicU32 = AtomicU32::new(0);
    let name = format!(
        "shmsync-test-{}-{}-{}",
        scenario.name(),
        std::process::id(),
        SEGMENTS.fetch_add(1, Ordering::Relaxed)
    );
    {
        let arena = Shared::create(&name, Arena::new()).unwrap();
        let mut helpers: Vec<_> = (0..WORKERS)
            .map(|id| {
                Command::new(env!("CARGO_BIN_EXE_shmsync-helper"))
                    .args([scenario.name(), &name, &id.to_string()])
                    .spawn()
                    .unwrap()
            })
            .collect();
        scenario.coordinate(&arena, WORKERS);
        for helper in &mut helpers {
            assert!(wait(helper).success());
        }
        scenario.check(&arena, WORKERS);
    }
    assert!(
        !Path::new(&format!("/dev/shm/{name}")).exists(),
        "{name} left behind"
    );
}

macro_rules! in_three_modes {
    ($($scenario:ident => $threads:ident, $forked:ident, $unrelated:ident;)*) => {$(
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
    )*};
}

in_three_modes! {
    LockedCounter => locked_counter_threads, locked_counter_forked, locked_counter_unrelated;
    SemaphoreLimit => semaphore_limit_threads, semaphore_limit_forked, semaphore_limit_unrelated;
    StartGun => start_gun_threads, start_gun_forked, start_gun_unrelated;
    UntornArray => untorn_array_threads, untorn_array_forked, untorn_array_unrelated;
    Timeouts => timeouts_threads, timeouts_forked, timeouts_unrelated;
}
