//! A program unrelated to the test that runs it: it opens a named segment and does one
//! worker's part of a conformance scenario.
//!
//! Usage: `shmsync-helper SCENARIO SEGMENT WORKER_ID`

use shmsync::Shared;
use shmsync_tests::{Arena, Scenario};
use std::process::ExitCode;
use std::time::Duration;

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let [scenario, segment, id] = args.as_slice() else {
        eprintln!("usage: shmsync-helper SCENARIO SEGMENT WORKER_ID");
        return ExitCode::from(2);
    };
    let (Some(scenario), Ok(id)) = (Scenario::from_name(scenario), id.parse()) else {
        eprintln!("unknown scenario {scenario:?} or bad worker id {id:?}");
        return ExitCode::from(2);
    };
    match Shared::<Arena>::open(segment, Duration::from_secs(10)) {
        Ok(arena) => {
            scenario.work(&arena, id);
            ExitCode::SUCCESS
        }
        Err(error) => {
            eprintln!("shmsync-helper: {error}");
            ExitCode::FAILURE
        }
    }
}
