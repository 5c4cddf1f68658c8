//! `shmsync rm`: removes segments' names by the rules shmsync's `create` follows to
//! reclaim a stale one, never one somebody is attached to unless forced.

use std::io::{self, Write};

use clap::Args;
use shmsync::inspect::{self, RemoveIf, Removed, Segment};
use shmsync::ShmError;

use crate::output::{self, complain};
use crate::Outcome;

#[derive(Args, Debug)]
#[command(group = clap::ArgGroup::new("which").required(true).multiple(true).args(["names", "stale"]))]
pub struct RmArgs {
    /// The segments to remove (with --stale: the ones to look at).
    names: Vec<String>,
    /// Remove the stale shmsync segments in /dev/shm (or among NAMES): nobody attached
    /// and not kept on purpose; never another program's file, nor a file without a
    /// shmsync header. Names that are not stale are left without a word.
    #[arg(long, conflicts_with = "force")]
    stale: bool,
    /// Remove the names even while processes are attached (they keep their memory;
    /// later ones cannot open it), and files without a shmsync header.
    #[arg(short, long)]
    force: bool,
    /// Say what was removed.
    #[arg(short, long)]
    verbose: bool,
}

/// What became of one name.
struct Result {
    name: String,
    error: Option<String>,
}

pub fn run(args: &RmArgs, json: bool) -> io::Result<Outcome> {
    let results = if args.stale {
        remove_stale(&args.names)?
    } else {
        args.names
            .iter()
            .map(|name| remove_named(name, args.force))
            .collect()
    };
    let mut outcome = Outcome::Done;
    let mut out = anstream::stdout().lock();
    for result in &results {
        match &result.error {
            Some(error) => {
                complain(format_args!("cannot remove '{}': {error}", result.name));
                outcome = Outcome::SomeFailed;
            }
            None if args.verbose && !json => writeln!(out, "removed '{}'", result.name)?,
            None => {}
        }
    }
    if json {
        let removed: Vec<&str> = (results.iter())
            .filter(|result| result.error.is_none())
            .map(|result| result.name.as_str())
            .collect();
        let failed: Vec<serde_json::Value> = (results.iter())
            .filter_map(|result| {
                let error = result.error.as_ref()?;
                Some(serde_json::json!({"name": result.name, "error": error}))
            })
            .collect();
        writeln!(
            out,
            "{}",
            serde_json::json!({"removed": removed, "failed": failed})
        )?;
    }
    Ok(outcome)
}

fn remove_named(name: &str, force: bool) -> Result {
    let rule = if force {
        RemoveIf::Forced
    } else {
        RemoveIf::Unused
    };
    // How many are attached, to say so; the removal itself decides by the leases.
    let attached = Segment::look(name)
        .map(|segment| output::count(segment.participants(), true))
        .unwrap_or(0);
    let error = match inspect::remove(name, rule) {
        Ok(Removed::Removed) => None,
        Ok(Removed::Gone) => Some("no such segment".to_owned()),
        Ok(Removed::Attached) => Some(match attached {
            0 => "processes are attached (use --force)".to_owned(),
            1 => "1 process is attached (use --force)".to_owned(),
            n => format!("{n} processes are attached (use --force)"),
        }),
        Ok(Removed::Busy) => {
            Some("another process is creating or removing it; try again in a moment".to_owned())
        }
        Ok(Removed::Unmarked) => Some(
            "it has no shmsync header yet, and may be another program's file (use --force)"
                .to_owned(),
        ),
        Ok(Removed::Kept | _) => Some("it is kept on purpose".to_owned()),
        Err(ShmError::NotShmsync { .. }) => Some(
            "not a shmsync segment (another program's file; remove it with rm /dev/shm/NAME)"
                .replace("NAME", name),
        ),
        Err(ShmError::VersionMismatch { found, .. }) => Some(format!(
            "format version {found}, whose participants this shmsync cannot read (use --force)"
        )),
        Err(error) => Some(error.to_string()),
    };
    Result {
        name: name.to_owned(),
        error,
    }
}

fn remove_stale(among: &[String]) -> io::Result<Vec<Result>> {
    let names = if among.is_empty() {
        inspect::names().map_err(|error| {
            io::Error::new(error.kind(), format!("cannot read /dev/shm: {error}"))
        })?
    } else {
        among.to_vec()
    };
    let mut results = Vec::new();
    for name in names {
        match inspect::remove(&name, RemoveIf::Stale) {
            Ok(Removed::Removed) => results.push(Result { name, error: None }),
            // Other programs' files, other versions, other users' and live ones are not
            // this sweep's to remove.
            Ok(_)
            | Err(
                ShmError::NotShmsync { .. }
                | ShmError::VersionMismatch { .. }
                | ShmError::PermissionDenied { .. }
                | ShmError::NotFound { .. },
            ) => {}
            Err(error) => results.push(Result {
                name,
                error: Some(error.to_string()),
            }),
        }
    }
    Ok(results)
}
