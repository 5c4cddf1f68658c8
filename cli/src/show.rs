//! `shmsync show NAME`: a segment's header, its participants, and its value part by
//! part with what each part's bytes say; `--watch` shows it again and again.

use std::io::{self, IsTerminal, Write};
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use clap::Args;
use shmsync::inspect::{Contents, ReadOptions, Segment, ValueReading, Verification};
use shmsync::ShmError;

use crate::output::{self, complain, Tone};
use crate::Outcome;

#[derive(Args, Debug)]
pub struct ShowArgs {
    /// The segment's name (as in /dev/shm).
    name: String,
    /// Show it again every interval, until interrupted (Ctrl-C) or --count frames.
    #[arg(short, long)]
    watch: bool,
    /// With --watch: milliseconds between frames.
    #[arg(long, value_name = "MS", default_value_t = 1000, requires = "watch")]
    interval: u64,
    /// With --watch: stop after this many frames.
    #[arg(long, value_name = "N", requires = "watch")]
    count: Option<u64>,
    /// Show at most this many items of each array.
    #[arg(long, value_name = "N", default_value_t = 64)]
    items: usize,
}

pub fn run(args: &ShowArgs, json: bool) -> io::Result<Outcome> {
    let options = ReadOptions::default().with_max_items(args.items);
    if !args.watch {
        let mut frame = Vec::new();
        let outcome = frame_of(&args.name, &options, json, &mut frame)?;
        anstream::stdout().lock().write_all(&frame)?;
        return Ok(outcome);
    }
    watch(args, &options, json)
}

/// Set by SIGINT or SIGTERM: the watch ends after the frame it is in.
static INTERRUPTED: AtomicBool = AtomicBool::new(false);

extern "C" fn interrupted(_: std::ffi::c_int) {
    // Async-signal-safe: one store.
    INTERRUPTED.store(true, Ordering::Relaxed);
}

/// Ends the watch, not the process, on Ctrl-C: the frame being written is finished and
/// the status is 0, as `watch` and `top` end.
fn catch_interrupts() -> io::Result<()> {
    use nix::sys::signal::{sigaction, SaFlags, SigAction, SigHandler, SigSet, Signal};
    let action = SigAction::new(
        SigHandler::Handler(interrupted),
        SaFlags::empty(),
        SigSet::empty(),
    );
    for signal in [Signal::SIGINT, Signal::SIGTERM] {
        // SAFETY: the handler only stores to an atomic, which is async-signal-safe.
        unsafe { sigaction(signal, &action) }.map_err(io::Error::from)?;
    }
    Ok(())
}

fn watch(args: &ShowArgs, options: &ReadOptions, json: bool) -> io::Result<Outcome> {
    catch_interrupts()?;
    let interval = Duration::from_millis(args.interval);
    let terminal = io::stdout().is_terminal() && !json;
    let mut shown = 0u64;
    while !INTERRUPTED.load(Ordering::Relaxed) {
        let began = Instant::now();
        let mut frame = Vec::new();
        if terminal {
            writeln!(
                frame,
                "every {} ms: shmsync show {} (Ctrl-C to stop)\n",
                args.interval, args.name
            )?;
        } else if shown > 0 && !json {
            writeln!(frame)?;
        }
        // A segment that goes away, or is not one, is shown as such: the watch goes on.
        frame_of(&args.name, options, json, &mut frame)?;
        if terminal {
            // Home and clear, then the frame: the screen shows the latest. Not through
            // anstream, which takes out escapes when colours are off.
            let mut screen = io::stdout().lock();
            screen.write_all(b"\x1b[H\x1b[2J")?;
            screen.flush()?;
        }
        let mut out = anstream::stdout().lock();
        out.write_all(&frame)?;
        out.flush()?;
        drop(out);
        shown += 1;
        if args.count.is_some_and(|count| shown >= count) {
            break;
        }
        while !INTERRUPTED.load(Ordering::Relaxed) && began.elapsed() < interval {
            let left = interval.saturating_sub(began.elapsed());
            std::thread::sleep(left.min(Duration::from_millis(20)));
        }
    }
    Ok(Outcome::Done)
}

/// Writes one view of the segment `name` into `out`; reports on standard error what
/// keeps it from being shown.
fn frame_of(
    name: &str,
    options: &ReadOptions,
    json: bool,
    out: &mut Vec<u8>,
) -> io::Result<Outcome> {
    let segment = match Segment::look(name) {
        Ok(segment) => segment,
        Err(error) => {
            let message = match error {
                ShmError::NotFound { .. } => "no such segment".to_owned(),
                other => other.to_string(),
            };
            complain(format_args!("cannot show '{name}': {message}"));
            if json {
                writeln!(
                    out,
                    "{}",
                    serde_json::json!({"name": name, "error": message})
                )?;
            }
            return Ok(Outcome::SomeFailed);
        }
    };
    let not_ours = match segment.contents() {
        Contents::Foreign => Some("not a shmsync segment (it has no shmsync header)".to_owned()),
        Contents::OtherVersion { format } => Some(format!(
            "format version {format}; this shmsync reads version {}",
            shmsync::FORMAT_VERSION
        )),
        _ => None,
    };
    let value = segment.read_value(options);
    if json {
        let mut object = output::segment_json(&segment);
        let fields = object.as_object_mut().expect("an object");
        match &value {
            Ok(value) => {
                fields.insert(
                    "layout".into(),
                    verification_json(&value.verification).into(),
                );
                fields.insert("value".into(), output::part_json(&value.root));
            }
            Err(why) => {
                fields.insert("value_error".into(), why.to_string().into());
            }
        }
        writeln!(out, "{object}")?;
    } else {
        write_header(out, &segment, value.as_ref().ok())?;
        match &value {
            Ok(value) => write_value(out, value)?,
            // A header cut short says so above.
            Err(why) if not_ours.is_none() && *segment.contents() != Contents::CutShort => {
                writeln!(out, "\nvalue not shown: {why}")?
            }
            Err(_) => {}
        }
    }
    if let Some(why) = not_ours {
        complain(format_args!("{name}: {why}"));
        return Ok(Outcome::SomeFailed);
    }
    Ok(Outcome::Done)
}

fn verification_json(verification: &Verification) -> &'static str {
    match verification {
        Verification::Matches => "checked",
        Verification::Differs => "differs",
        _ => "unchecked",
    }
}

fn write_header(
    out: &mut Vec<u8>,
    segment: &Segment,
    value: Option<&ValueReading>,
) -> io::Result<()> {
    let (words, tone) = output::state_words(segment);
    writeln!(out, "{}: {}", segment.name(), tone.paint(words))?;
    let row = |out: &mut Vec<u8>, key: &str, text: &dyn std::fmt::Display| {
        writeln!(out, "  {key:<10} {text}")
    };
    let age = output::age(segment.age());
    match segment.contents() {
        Contents::Header(header) => {
            let checked = match value.map(|value| &value.verification) {
                Some(Verification::Matches) => String::new(),
                Some(other) => format!(
                    "\n  {:<10} {}",
                    "",
                    Tone::Trouble.paint(format!("layout {other}"))
                ),
                None => String::new(),
            };
            row(
                out,
                "type",
                &format!("{}{checked}", output::printable(&header.held.description)),
            )?;
            row(
                out,
                "created",
                &format!(
                    "{age} ago by pid {}, format {}.{}",
                    header.creator_pid,
                    shmsync::FORMAT_VERSION,
                    header.minor
                ),
            )?;
            row(out, "removal", &output::unlink_words(header.unlink))?;
            let size = if segment.file_len() < header.len {
                Tone::Trouble.paint(format!(
                    "{} bytes, but its header calls for {}: another program cut it short",
                    segment.file_len(),
                    header.len
                ))
            } else {
                format!(
                    "{} bytes (the value {} at offset {})",
                    header.len,
                    header.len.saturating_sub(header.value_offset),
                    header.value_offset
                )
            };
            row(out, "size", &size)?;
            write_participants(out, segment)?;
        }
        Contents::CutShort => {
            row(
                out,
                "file",
                &format!(
                    "{} bytes: its header is cut short (another program truncated it)",
                    segment.file_len()
                ),
            )?;
        }
        Contents::Unwritten => {
            row(
                out,
                "file",
                &format!(
                    "{} bytes, changed {age} ago, no header: a creator making it, one that died \
                 before writing it, or another program's file that starts with zeros",
                    segment.file_len()
                ),
            )?;
        }
        _ => row(
            out,
            "file",
            &format!("{} bytes, changed {age} ago", segment.file_len()),
        )?,
    }
    Ok(())
}

fn write_participants(out: &mut Vec<u8>, segment: &Segment) -> io::Result<()> {
    let describe = |record: &shmsync::inspect::ParticipantRecord| {
        let mut text = if record.pid == 0 {
            "(not recorded)".to_owned()
        } else {
            format!("pid {}", record.pid)
        };
        if record.creator {
            text.push_str(" (creator)");
        }
        text
    };
    let attached: Vec<String> = (segment.participants().iter())
        .filter(|record| record.attached)
        .map(describe)
        .collect();
    let gone: Vec<String> = (segment.participants().iter())
        .filter(|record| !record.attached)
        .map(describe)
        .collect();
    let attached = if attached.is_empty() {
        "nobody".to_owned()
    } else {
        attached.join(", ")
    };
    writeln!(out, "  {:<10} {attached}", "attached")?;
    if !gone.is_empty() {
        writeln!(
            out,
            "  {:<10} {}: went without leaving (killed, crashed or exec'd)",
            "gone",
            Tone::Notice.paint(gone.join(", "))
        )?;
    }
    Ok(())
}

fn write_value(out: &mut Vec<u8>, value: &ValueReading) -> io::Result<()> {
    writeln!(out)?;
    write_part(out, &value.root, 0)?;
    if names_threads(&value.root) {
        writeln!(
            out,
            "\n(thread ids as each holder sees itself, in its own PID namespace)"
        )?;
    }
    Ok(())
}

/// Whether a part, or a part inside, names a holder by its thread id.
fn names_threads(part: &shmsync::inspect::Part) -> bool {
    use shmsync::inspect::{HolderIds, LockState, LockView, PartState};
    let names = |lock: &LockView| {
        lock.ids == HolderIds::Threads
            && matches!(
                lock.state,
                LockState::Held { .. } | LockState::Recovering { .. }
            )
    };
    let here = match &part.state {
        PartState::Lock(lock)
        | PartState::RLock { lock, .. }
        | PartState::RwLock { writer: lock, .. }
        | PartState::Value { lock, .. }
        | PartState::Array { lock, .. }
        | PartState::Queue { lock, .. } => names(lock),
        PartState::Semaphore { state, ids } => {
            let (holders, guard) = shmsync::inspect::holdings(state, *ids);
            names(&guard) || holders.iter().any(|(lock, _)| names(lock))
        }
        _ => false,
    };
    here || part.parts.iter().any(names_threads)
}

fn write_part(out: &mut Vec<u8>, part: &shmsync::inspect::Part, depth: usize) -> io::Result<()> {
    let indent = "  ".repeat(depth);
    // The names come from another program's description: no control characters.
    let name = (part.name.as_ref())
        .map(|name| format!("{}: ", output::printable(name)))
        .unwrap_or_default();
    let state = output::printable(&part.state.to_string());
    let tone = output::tone_of(&part.state);
    let state = if state.is_empty() {
        state
    } else {
        tone.paint(state)
    };
    let type_name = output::printable(&part.type_name);
    writeln!(out, "{indent}{name}{type_name}{state}")?;
    for inner in &part.parts {
        write_part(out, inner, depth + 1)?;
    }
    if let shmsync::inspect::PartState::Elements { len } = part.state {
        if len > part.parts.len() {
            writeln!(out, "{indent}  … {} more", len - part.parts.len())?;
        }
    }
    Ok(())
}
