//! `shmsync`: who holds what in shmsync's shared-memory segments, as `ipcs` tells it
//! for System V IPC.
//!
//! - `shmsync ls`: every shmsync segment in `/dev/shm`, its type, size, creator,
//!   participants attached and gone, age, and whether it is stale;
//! - `shmsync show NAME`: the value's tree with each lock's, event's, semaphore's,
//!   queue's and value's state, read without taking anything (`--watch` refreshes it);
//! - `shmsync rm NAME…` and `shmsync rm --stale`: remove names nobody uses.
//!
//! Everything is read through the files and the kernel's lease records (see
//! `shmsync::inspect`): the command never maps a segment, takes a lock or waits on one.
//! Exit status: 0 when all went well, 1 when some name could not be listed, shown or
//! removed, 2 for a usage error.

mod ls;
mod output;
mod rm;
mod show;

use std::process::ExitCode;

use clap::{Parser, Subcommand};

/// See who holds what in shmsync's shared-memory segments.
#[derive(Parser)]
#[command(name = "shmsync", version, about, long_about = None)]
struct Cli {
    /// Write JSON for scripts instead of text.
    #[arg(long, global = true)]
    json: bool,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// List the shmsync segments in /dev/shm.
    Ls(ls::LsArgs),
    /// Show a segment's value with the live state of each part, read without taking
    /// any lock.
    Show(show::ShowArgs),
    /// Remove segments' names, never one somebody is attached to (unless --force).
    Rm(rm::RmArgs),
}

/// How a command went: each name that failed has been reported on standard error.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Outcome {
    Done,
    SomeFailed,
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let outcome = match cli.command {
        Command::Ls(args) => ls::run(&args, cli.json),
        Command::Show(args) => show::run(&args, cli.json),
        Command::Rm(args) => rm::run(&args, cli.json),
    };
    match outcome {
        Ok(Outcome::Done) => ExitCode::SUCCESS,
        Ok(Outcome::SomeFailed) => ExitCode::from(1),
        // A reader that went away (`shmsync ls | head`) is no failure of ours.
        Err(error) if error.kind() == std::io::ErrorKind::BrokenPipe => ExitCode::SUCCESS,
        Err(error) => {
            output::complain(format_args!("{error}"));
            ExitCode::from(1)
        }
    }
}
