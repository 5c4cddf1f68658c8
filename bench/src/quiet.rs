//! Whether the machine was quiet while the benchmark ran: anything else running steals
//! the CPUs that the figures assume, and a 2-CPU machine is disturbed by one busy
//! neighbour. Before and after each round the benchmark looks at how many tasks besides
//! itself are runnable; a round where others were is disturbed, and the report then
//! says "disturbed: rerun" instead of a verdict.

use std::time::Duration;

/// More other runnable tasks than this, on average over a look, disturb a round.
pub const DISTURBED_ABOVE: f64 = 0.5;

/// How many times one look reads the run queue, and how far apart.
const READINGS: u32 = 20;
const BETWEEN_READINGS: Duration = Duration::from_millis(5);

/// The number of runnable tasks on the machine, this one included
/// (`procs_running` of /proc/stat), if it can be read.
fn runnable() -> Option<u32> {
    let stat = std::fs::read_to_string("/proc/stat").ok()?;
    stat.lines()
        .find_map(|line| line.strip_prefix("procs_running "))?
        .trim()
        .parse()
        .ok()
}

/// Other runnable tasks, on average over a tenth of a second; `None` where the run
/// queue cannot be read.
pub fn others_runnable() -> Option<f64> {
    let mut total = 0u32;
    for _ in 0..READINGS {
        total += runnable()?.saturating_sub(1);
        std::thread::sleep(BETWEEN_READINGS);
    }
    Some(f64::from(total) / f64::from(READINGS))
}

/// The load average over the last minute (/proc/loadavg), if it can be read.
pub fn load_average() -> Option<f64> {
    std::fs::read_to_string("/proc/loadavg")
        .ok()?
        .split_whitespace()
        .next()?
        .parse()
        .ok()
}

/// The scheduling priority the benchmark runs at when it is not the default: its own
/// nice value, or that of its autogroup (/proc/self/autogroup), which is what counts
/// against other sessions' tasks where autogroups are on. Raising it lets a benchmark
/// on a busy machine take most of the CPU time; the report says so.
pub fn raised_priority() -> Option<String> {
    // SAFETY: getpriority has no preconditions; errno is not consulted (nice 0 is
    // what a failure would read as, and then nothing is reported).
    let nice = unsafe { libc::getpriority(libc::PRIO_PROCESS, 0) };
    let autogroup = std::fs::read_to_string("/proc/self/autogroup")
        .ok()
        .and_then(|line| line.split("nice").nth(1)?.trim().parse::<i32>().ok())
        .unwrap_or(0);
    let mut parts = Vec::new();
    if nice != 0 {
        parts.push(format!("nice {nice}"));
    }
    if autogroup != 0 {
        parts.push(format!("autogroup nice {autogroup}"));
    }
    (!parts.is_empty()).then(|| parts.join(", "))
}

/// What the run queue looked like around the rounds of a run.
#[derive(Debug, Default, Clone, PartialEq)]
pub struct Quiet {
    /// The load average when the run began.
    pub load_at_start: Option<f64>,
    /// The priority the benchmark ran at, if raised or lowered ([`raised_priority`]).
    pub priority: Option<String>,
    /// Other runnable tasks before and after each round.
    pub rounds: Vec<(Option<f64>, Option<f64>)>,
}

impl Quiet {
    /// How many rounds were disturbed.
    pub fn disturbed_rounds(&self) -> usize {
        self.rounds
            .iter()
            .filter(|(before, after)| {
                [before, after]
                    .into_iter()
                    .any(|look| look.is_some_and(|others| others > DISTURBED_ABOVE))
            })
            .count()
    }

    /// The verdict of a target in this run: "yes"/"no", or "disturbed: rerun" if any
    /// round was disturbed.
    pub fn verdict(&self, met: bool) -> String {
        if self.disturbed_rounds() > 0 {
            "disturbed: rerun".to_owned()
        } else if met {
            "yes".to_owned()
        } else {
            "no".to_owned()
        }
    }

    /// A line for the report: the load at the start, and each round's looks.
    pub fn describe(&self) -> String {
        let look = |l: &Option<f64>| l.map_or("?".to_owned(), |x| format!("{x:.1}"));
        let rounds: Vec<String> = self
            .rounds
            .iter()
            .map(|(before, after)| format!("{}/{}", look(before), look(after)))
            .collect();
        let priority = self.priority.as_ref().map_or(String::new(), |p| {
            format!(" The benchmark ran at {p}, ahead of the other tasks.")
        });
        format!(
            "Load average at the start: {}. Other runnable tasks before/after each round: {} \
             ({} of {} rounds disturbed, above {DISTURBED_ABOVE}).{priority}",
            look(&self.load_at_start),
            rounds.join(", "),
            self.disturbed_rounds(),
            self.rounds.len()
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_busy_look_disturbs_its_round() {
        let mut quiet = Quiet {
            load_at_start: Some(0.1),
            priority: None,
            rounds: vec![(Some(0.0), Some(0.1))],
        };
        assert_eq!(quiet.disturbed_rounds(), 0);
        assert_eq!(quiet.verdict(true), "yes");
        assert_eq!(quiet.verdict(false), "no");
        quiet.rounds.push((Some(0.0), Some(1.5)));
        assert_eq!(quiet.disturbed_rounds(), 1);
        assert_eq!(quiet.verdict(true), "disturbed: rerun");
        assert!(quiet
            .describe()
            .contains("0.0/0.1, 0.0/1.5 (1 of 2 rounds disturbed"));
        assert!(!quiet.describe().contains("ran at"));
        quiet.priority = Some("autogroup nice -20".to_owned());
        assert!(quiet
            .describe()
            .ends_with("The benchmark ran at autogroup nice -20, ahead of the other tasks."));
    }

    #[test]
    fn the_run_queue_can_be_read_here() {
        assert!(runnable().is_some_and(|n| n >= 1));
    }
}
