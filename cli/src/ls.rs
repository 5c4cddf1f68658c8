//! `shmsync ls`: the segments in `/dev/shm`, one a line, as `ipcs -m` lists System V
//! segments.

use std::io::{self, Write};

use clap::Args;
use shmsync::inspect::{self, Contents, Segment, TypeDescription};
use shmsync::ShmError;

use crate::output::{self, complain, Tone};
use crate::Outcome;

#[derive(Args, Debug)]
pub struct LsArgs {
    /// List every file in /dev/shm, other programs' too (as `ls -a` shows hidden
    /// files).
    #[arg(short, long)]
    all: bool,
    /// The names to list (default: every shmsync segment in /dev/shm).
    names: Vec<String>,
}

/// A row of the listing.
struct Row {
    name: String,
    kind: String,
    size: String,
    creator: String,
    attached: String,
    gone: String,
    age: String,
    state: (String, Tone),
}

const HEADINGS: [&str; 8] = [
    "NAME", "TYPE", "SIZE", "CREATOR", "ATTACHED", "GONE", "AGE", "STATE",
];

pub fn run(args: &LsArgs, json: bool) -> io::Result<Outcome> {
    let named = !args.names.is_empty();
    let names = if named {
        args.names.clone()
    } else {
        inspect::names().map_err(|error| {
            io::Error::new(error.kind(), format!("cannot read /dev/shm: {error}"))
        })?
    };
    let mut outcome = Outcome::Done;
    let mut segments = Vec::new();
    for name in &names {
        match Segment::look(name) {
            Ok(segment) => {
                let ours = matches!(
                    segment.contents(),
                    Contents::Header(_) | Contents::CutShort | Contents::OtherVersion { .. }
                );
                if ours || args.all || named {
                    segments.push(segment);
                }
            }
            // Gone since the directory was read, or another user's: not ours to list.
            Err(ShmError::NotFound { .. } | ShmError::PermissionDenied { .. }) if !named => {}
            Err(ShmError::NotFound { .. }) => {
                complain(format_args!("cannot access '{name}': no such segment"));
                outcome = Outcome::SomeFailed;
            }
            Err(error) => {
                complain(format_args!("cannot access '{name}': {error}"));
                outcome = Outcome::SomeFailed;
            }
        }
    }
    let mut out = anstream::stdout().lock();
    if json {
        let list: Vec<_> = segments.iter().map(output::segment_json).collect();
        writeln!(out, "{}", serde_json::Value::from(list))?;
    } else {
        write_table(&mut out, &segments.iter().map(row).collect::<Vec<_>>())?;
    }
    Ok(outcome)
}

fn row(segment: &Segment) -> Row {
    let dash = || "-".to_owned();
    let (kind, creator, attached, gone) = match segment.contents() {
        Contents::Header(header) => (
            TypeDescription::parse(&header.held.description)
                .map(|described| described.root.short_name())
                .unwrap_or_else(|_| "(unreadable description)".into()),
            header.creator_pid.to_string(),
            output::count(segment.participants(), true).to_string(),
            output::count(segment.participants(), false).to_string(),
        ),
        _ => (dash(), dash(), dash(), dash()),
    };
    Row {
        name: segment.name().to_owned(),
        kind,
        size: segment.file_len().to_string(),
        creator,
        attached,
        gone,
        age: output::age(segment.age()),
        state: output::state_words(segment),
    }
}

fn write_table(out: &mut impl Write, rows: &[Row]) -> io::Result<()> {
    let cells = |row: &Row| {
        [
            row.name.clone(),
            row.kind.clone(),
            row.size.clone(),
            row.creator.clone(),
            row.attached.clone(),
            row.gone.clone(),
            row.age.clone(),
        ]
    };
    let mut widths = HEADINGS.map(|heading| heading.chars().count());
    for row in rows {
        for (width, cell) in widths.iter_mut().zip(cells(row)) {
            *width = (*width).max(cell.chars().count());
        }
    }
    // Numbers to the right, as `ls -l` and `ipcs` align them.
    let right = [false, false, true, true, true, true, true];
    let line = |texts: [String; 7], state: String| {
        let mut line = String::new();
        for (i, text) in texts.iter().enumerate() {
            let pad = widths[i] - text.chars().count();
            if right[i] {
                line.push_str(&" ".repeat(pad));
                line.push_str(text);
            } else {
                line.push_str(text);
                line.push_str(&" ".repeat(pad));
            }
            line.push_str("  ");
        }
        line.push_str(&state);
        line
    };
    writeln!(
        out,
        "{}",
        line(
            HEADINGS[..7]
                .iter()
                .map(|h| h.to_string())
                .collect::<Vec<_>>()
                .try_into()
                .expect("7"),
            HEADINGS[7].into()
        )
    )?;
    for row in rows {
        let (words, tone) = &row.state;
        writeln!(out, "{}", line(cells(row), tone.paint(words)))?;
    }
    Ok(())
}
