//! What `ls`, `show` and `rm` share in their output: messages on standard error, the
//! words for a segment's state, ages, colours (only on a terminal, and never with
//! `NO_COLOR` set), and the JSON forms of what the library reads.

use std::fmt;
use std::time::Duration;

use anstyle::{AnsiColor, Style};
use serde_json::{json, Value as Json};
use shmsync::inspect::{
    Condition, Contents, HolderIds, LockState, LockView, Part, PartState, ParticipantRecord,
    ScalarValue, Segment, SegmentHeader,
};
use shmsync::Unlink;

/// Writes `shmsync: MESSAGE` on standard error.
pub fn complain(message: fmt::Arguments<'_>) {
    eprintln!("shmsync: {message}");
}

/// `text` with its control characters escaped (`\u{1b}`): a segment's description is
/// another program's bytes, which must not drive the terminal.
pub fn printable(text: &str) -> String {
    text.chars()
        .flat_map(|c| {
            let escaped: Vec<char> = if c.is_control() {
                c.escape_unicode().collect()
            } else {
                vec![c]
            };
            escaped
        })
        .collect()
}

/// How much a state calls for attention.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Tone {
    Plain,
    /// Busy, or worth a look: held, waited on, stale.
    Notice,
    /// Broken: a holder died, a lock is not recoverable, bytes are missing.
    Trouble,
    /// Fine and in use.
    Good,
}

impl Tone {
    fn style(self) -> Style {
        match self {
            Tone::Plain => Style::new(),
            Tone::Notice => AnsiColor::Yellow.on_default(),
            Tone::Trouble => AnsiColor::Red.on_default().bold(),
            Tone::Good => AnsiColor::Green.on_default(),
        }
    }

    /// `text` in this tone's colour (anstream drops the colour where it is unwanted).
    pub fn paint(self, text: impl fmt::Display) -> String {
        let style = self.style();
        format!("{style}{text}{style:#}")
    }
}

/// One word or two for a segment's state, and how it sounds: `live`, `stale`, `kept`,
/// `live, initialising`, `foreign`.
pub fn state_words(segment: &Segment) -> (String, Tone) {
    let condition = match segment.condition() {
        Condition::Live => "live",
        Condition::Kept => "kept",
        Condition::Stale => "stale",
        Condition::Busy => "busy",
        _ => "",
    };
    let (words, tone) = match segment.contents() {
        Contents::Header(header) => {
            let mut words = condition.to_owned();
            let mut tone = match segment.condition() {
                Condition::Live => Tone::Good,
                Condition::Stale => Tone::Notice,
                _ => Tone::Plain,
            };
            if !header.ready {
                words.push_str(if segment.condition() == Condition::Stale {
                    ", half-made"
                } else {
                    ", initialising"
                });
            }
            if segment.file_len() < header.len {
                words.push_str(", truncated");
                tone = Tone::Trouble;
            }
            (words, tone)
        }
        Contents::CutShort => (format!("{condition}, header cut short"), Tone::Trouble),
        Contents::Unwritten => (
            match segment.condition() {
                Condition::Busy => "being created".to_owned(),
                _ => format!("{condition}, no header"),
            },
            Tone::Notice,
        ),
        Contents::Foreign => ("foreign".to_owned(), Tone::Plain),
        Contents::OtherVersion { format } => (format!("format {format}"), Tone::Notice),
        _ => ("unknown".to_owned(), Tone::Notice),
    };
    (words, tone)
}

/// `5s`, `3m`, `2h`, `4d`: an age as `ps` writes it, to its largest unit.
pub fn age(age: Option<Duration>) -> String {
    let Some(age) = age else {
        return "-".into();
    };
    let seconds = age.as_secs();
    match seconds {
        0..60 => format!("{seconds}s"),
        60..3600 => format!("{}m", seconds / 60),
        3600..86_400 => format!("{}h", seconds / 3600),
        _ => format!("{}d", seconds / 86_400),
    }
}

/// How a part's state sounds.
pub fn tone_of(state: &PartState) -> Tone {
    let lock_tone = |lock: &LockView| match lock.state {
        LockState::OwnerDied | LockState::Recovering { .. } | LockState::NotRecoverable => {
            Tone::Trouble
        }
        LockState::Held { .. } => Tone::Notice,
        _ if lock.sleepers_announced => Tone::Notice,
        _ => Tone::Plain,
    };
    match state {
        PartState::Lock(lock)
        | PartState::RLock { lock, .. }
        | PartState::Value { lock, .. }
        | PartState::Array { lock, .. }
        | PartState::Queue { lock, .. } => lock_tone(lock),
        PartState::RwLock {
            writer,
            readers_died,
            writer_died,
            ..
        } => {
            if *writer_died || *readers_died > 0 {
                Tone::Trouble
            } else {
                lock_tone(writer)
            }
        }
        PartState::Barrier { broken: true, .. } => Tone::Trouble,
        PartState::Semaphore { state, .. } => {
            let died = state.holders.iter().any(|holding| {
                matches!(
                    holding.lock,
                    LockState::OwnerDied | LockState::NotRecoverable
                )
            });
            if died || state.guard != LockState::Free {
                Tone::Trouble
            } else if state.sleepers_announced {
                Tone::Notice
            } else {
                Tone::Plain
            }
        }
        PartState::Event {
            sleepers_announced: true,
            ..
        } => Tone::Notice,
        PartState::Unreadable(_) | PartState::Struct { complete: false } => Tone::Trouble,
        PartState::NotRead(_) | PartState::Opaque => Tone::Notice,
        _ => Tone::Plain,
    }
}

/// Who removes the name, in words.
pub fn unlink_words(rule: Unlink) -> &'static str {
    match rule {
        Unlink::ByCreator => "its creator removes the name as it leaves",
        Unlink::ByLastOut => "the last process to leave removes the name",
        Unlink::Never => "the name is kept until removed (Unlink::Never)",
    }
}

fn unlink_json(rule: Unlink) -> &'static str {
    match rule {
        Unlink::ByCreator => "by-creator",
        Unlink::ByLastOut => "by-last-out",
        Unlink::Never => "never",
    }
}

fn condition_json(condition: Condition) -> &'static str {
    match condition {
        Condition::Live => "live",
        Condition::Kept => "kept",
        Condition::Stale => "stale",
        Condition::Busy => "busy",
        _ => "unknown",
    }
}

/// What a file is, in one word for scripts.
fn kind_json(contents: &Contents) -> &'static str {
    match contents {
        Contents::Header(_) => "segment",
        Contents::CutShort => "cut-short",
        Contents::Unwritten => "unwritten",
        Contents::Foreign => "foreign",
        Contents::OtherVersion { .. } => "other-version",
        _ => "unknown",
    }
}

/// A segment as `ls --json` lists it, and as `show --json` heads it.
pub fn segment_json(segment: &Segment) -> Json {
    let mut object = json!({
        "name": segment.name(),
        "kind": kind_json(segment.contents()),
        "condition": condition_json(segment.condition()),
        "state": state_words(segment).0,
        "file_size": segment.file_len(),
        "age_seconds": segment.age().map(|age| age.as_secs_f64()),
    });
    let fields = object.as_object_mut().expect("an object");
    match segment.contents() {
        Contents::Header(header) => {
            fields.extend(header_json(header).as_object().expect("an object").clone());
            let participants: Vec<Json> = segment
                .participants()
                .iter()
                .map(participant_json)
                .collect();
            fields.insert(
                "attached".into(),
                count(segment.participants(), true).into(),
            );
            fields.insert("gone".into(), count(segment.participants(), false).into());
            fields.insert("participants".into(), participants.into());
        }
        Contents::OtherVersion { format } => {
            fields.insert("format".into(), (*format).into());
        }
        _ => {}
    }
    object
}

/// How many participants are attached (or, with `attached` false, went without
/// leaving).
pub fn count(participants: &[ParticipantRecord], attached: bool) -> usize {
    participants
        .iter()
        .filter(|record| record.attached == attached)
        .count()
}

fn header_json(header: &SegmentHeader) -> Json {
    let type_name = shmsync::inspect::TypeDescription::parse(&header.held.description)
        .map(|described| described.root.short_name())
        .ok();
    json!({
        "format": shmsync::FORMAT_VERSION,
        "minor": header.minor,
        "ready": header.ready,
        "size": header.len,
        "value_offset": header.value_offset,
        "type": &*header.held.description,
        "type_name": type_name,
        "fingerprint": format!("{:#018x}", header.held.fingerprint),
        "creator_pid": header.creator_pid,
        "created_unix_ns": header.created_unix_ns,
        "unlink": unlink_json(header.unlink),
    })
}

fn participant_json(record: &ParticipantRecord) -> Json {
    json!({
        "slot": record.slot,
        "pid": record.pid,
        "creator": record.creator,
        "attached": record.attached,
        "since_unix_ns": record.since_unix_ns,
    })
}

/// A part as `show --json` writes it.
pub fn part_json(part: &Part) -> Json {
    let mut object = json!({
        "name": part.name,
        "offset": part.offset,
        "type": part.described,
        "type_name": part.type_name,
        "summary": part.state.to_string().trim_start_matches([':', ' ', '=']).to_owned(),
    });
    let fields = object.as_object_mut().expect("an object");
    let state = state_json(&part.state);
    fields.extend(state.as_object().expect("an object").clone());
    if !part.parts.is_empty() {
        let parts: Vec<Json> = part.parts.iter().map(part_json).collect();
        fields.insert("parts".into(), parts.into());
    }
    object
}

fn state_json(state: &PartState) -> Json {
    match state {
        PartState::Struct { complete } => json!({"kind": "struct", "complete": complete}),
        PartState::Elements { len } => json!({"kind": "array", "len": len}),
        PartState::Lock(lock) => {
            let mut object = json!({"kind": "lock"});
            object
                .as_object_mut()
                .expect("an object")
                .extend(lock_json(lock).as_object().expect("an object").clone());
            object
        }
        PartState::Event {
            set,
            sleepers_announced,
        } => json!({"kind": "event", "set": set, "waiters": sleepers_announced}),
        PartState::RLock { lock, depth } => {
            let mut object = json!({"kind": "rlock", "depth": depth});
            let fields = object.as_object_mut().expect("an object");
            fields.extend(lock_json(lock).as_object().expect("an object").clone());
            object
        }
        PartState::Condition { waiting } => json!({"kind": "condition", "waiting": waiting}),
        PartState::Barrier {
            parties,
            waiting,
            broken,
        } => json!({"kind": "barrier", "parties": parties, "waiting": waiting, "broken": broken}),
        PartState::RwLock {
            writer,
            readers_turned_away,
            readers,
            readers_died,
            writer_died,
        } => json!({
            "kind": "rwlock",
            "readers": readers,
            "readers_died": readers_died,
            "readers_turned_away": readers_turned_away,
            "writer": lock_json(writer),
            "writer_died": writer_died,
        }),
        PartState::Semaphore { state, ids } => {
            let (holders, guard) = shmsync::inspect::holdings(state, *ids);
            let holders: Vec<Json> = (holders.iter())
                .map(|(lock, permits)| {
                    let mut object = lock_json(lock);
                    let fields = object.as_object_mut().expect("an object");
                    fields.remove("waiters");
                    fields.insert("permits".into(), (*permits).into());
                    object
                })
                .collect();
            json!({
                "kind": "semaphore",
                "free": state.free,
                "total": state.total,
                "bound": state.bound,
                "untracked": state.untracked,
                "waiters": state.sleepers_announced,
                "holders": holders,
                "internal_lock": lock_json(&guard)["state"],
            })
        }
        PartState::UntrackedSemaphore {
            free,
            waiters_announced,
            bound,
        } => json!({
            "kind": "semaphore",
            "free": free,
            "bound": bound,
            "waiters_announced": waiters_announced,
        }),
        PartState::Value { value, lock } => {
            json!({"kind": "value", "value": scalar_json(value), "lock": lock_json(lock)})
        }
        PartState::Array {
            items,
            len,
            text,
            lock,
        } => json!({
            "kind": "array",
            "len": len,
            "items": items.iter().map(scalar_json).collect::<Vec<_>>(),
            "text": text,
            "lock": lock_json(lock),
        }),
        PartState::Queue { state, lock } => json!({
            "kind": "queue",
            "len": state.len,
            "capacity": state.capacity,
            "closed": state.closed,
            "unfinished_tasks": state.unfinished_tasks,
            "getters_wait": state.getters_sleep,
            "putters_wait": state.putters_sleep,
            "joiners_wait": state.joiners_sleep,
            "lock": lock_json(lock),
        }),
        PartState::Scalar(value) => json!({"kind": "scalar", "value": scalar_json(value)}),
        PartState::Scalars { items, len, text } => json!({
            "kind": "array",
            "len": len,
            "items": items.iter().map(scalar_json).collect::<Vec<_>>(),
            "text": text,
        }),
        PartState::Opaque => json!({"kind": "opaque"}),
        PartState::NotRead(why) => json!({"kind": "not-read", "why": why}),
        PartState::Unreadable(why) => json!({"kind": "unreadable", "why": why.to_string()}),
        _ => json!({"kind": "unknown"}),
    }
}

/// A lock as scripts see it: `state` is `free`, `held`, `owner-died`, `recovering`,
/// `not-recoverable` or `handed-over` (free, kept for a locker that waited);
/// `holder_tid` is the holder's thread id in its own PID namespace.
fn lock_json(lock: &LockView) -> Json {
    let (state, holder) = match lock.state {
        LockState::Free => ("free", None),
        LockState::Held { holder } => ("held", Some(holder)),
        LockState::OwnerDied => ("owner-died", None),
        LockState::Recovering { holder } => ("recovering", Some(holder)),
        LockState::NotRecoverable => ("not-recoverable", None),
        LockState::HandedOver => ("handed-over", None),
    };
    let holder = holder.filter(|_| lock.ids == HolderIds::Threads);
    json!({"state": state, "holder_tid": holder, "waiters": lock.sleepers_announced})
}

fn scalar_json(value: &ScalarValue) -> Json {
    match *value {
        ScalarValue::Unsigned(n) => {
            u64::try_from(n).map_or_else(|_| n.to_string().into(), Json::from)
        }
        ScalarValue::Signed(n) => {
            i64::try_from(n).map_or_else(|_| n.to_string().into(), Json::from)
        }
        ScalarValue::F32(x) => json!(x),
        ScalarValue::F64(x) => json!(x),
        ScalarValue::Bool(b) => json!(b),
        ScalarValue::Unit => Json::Null,
        _ => value.to_string().into(),
    }
}
