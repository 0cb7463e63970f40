//! The transcript: every line in and out, timestamped, with its stage and TLS state.
//!
//! Entries are written already redacted (the session records the redacted form of every
//! AUTH line it sends), so the same text can be logged, shown, recorded as a fixture and
//! annotated without any later pass having to remember to hide something.

use crate::session::{Event, SentLine};
use crate::stage::Stage;
use serde::Serialize;

/// Who produced a transcript line.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub enum Direction {
    /// The client (smtprobe) sent it.
    #[serde(rename = "C")]
    Client,
    /// The server sent it.
    #[serde(rename = "S")]
    Server,
    /// An event: connection opened, TLS established, a note.
    #[serde(rename = "*")]
    Event,
}

impl Direction {
    /// `C`, `S` or `*`, as in RFC traces and fixtures.
    pub fn marker(self) -> &'static str {
        match self {
            Direction::Client => "C",
            Direction::Server => "S",
            Direction::Event => "*",
        }
    }
}

/// One line of the transcript.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Entry {
    /// Milliseconds since the check started.
    pub ms: f64,
    /// Who sent it.
    pub dir: Direction,
    /// True when the line travelled inside TLS.
    pub tls: bool,
    /// The stage the line belongs to.
    pub stage: Stage,
    /// The text: redacted for credentials, escaped for control bytes.
    pub text: String,
}

/// A transcript line before it is timestamped.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Line {
    /// Who sent it.
    pub dir: Direction,
    /// The stage the line belongs to.
    pub stage: Stage,
    /// True when the line travelled inside TLS.
    pub tls: bool,
    /// The text: redacted for credentials, escaped for control bytes.
    pub text: String,
}

/// The transcript lines a session event is written as: the one place a typed
/// [`Event`] becomes text (a reply is one line per reply line; stage changes and the
/// outcome are not lines). The event is already redacted (see [`SentLine`]).
pub fn lines_of(event: &Event) -> Vec<Line> {
    let line = |dir, stage: &Stage, tls: &bool, text| Line {
        dir,
        stage: *stage,
        tls: *tls,
        text,
    };
    match event {
        Event::CommandSent {
            stage,
            tls,
            line: sent,
        } => {
            vec![line(Direction::Client, stage, tls, sent_text(sent))]
        }
        Event::ReplyReceived { stage, tls, reply } => reply
            .display_lines()
            .into_iter()
            .map(|text| line(Direction::Server, stage, tls, text))
            .collect(),
        Event::BytesReceived { stage, tls, shown } => {
            vec![line(Direction::Server, stage, tls, shown.clone())]
        }
        Event::Noted { stage, tls, note } => {
            vec![line(Direction::Event, stage, tls, note.clone())]
        }
        Event::StageStarted(_) | Event::StagePassed(_) | Event::Finished(_) => Vec::new(),
    }
}

/// How a client line reads in the transcript (RFC 5321 command syntax; the message by
/// its size, never its content).
fn sent_text(sent: &SentLine) -> String {
    match sent {
        SentLine::Command(c) => c.line(),
        SentLine::Sasl(shown) => shown.clone(),
        SentLine::Message { lines, bytes } => format!("<message: {lines} lines, {bytes} bytes>"),
        SentLine::EmptyMessageEnd => ".".to_owned(),
    }
}

/// The ordered list of entries of one check.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
#[serde(transparent)]
pub struct Transcript {
    entries: Vec<Entry>,
}

impl Transcript {
    /// An empty transcript.
    pub fn new() -> Self {
        Self::default()
    }

    /// Appends an entry and emits it as a `tracing` event (target `smtprobe::wire`), so an
    /// embedding program sees the wire through its own subscriber.
    pub fn push(&mut self, entry: Entry) {
        tracing::debug!(
            target: "smtprobe::wire",
            stage = entry.stage.as_str(),
            dir = entry.dir.marker(),
            tls = entry.tls,
            "{}",
            entry.text
        );
        self.entries.push(entry);
    }

    /// All entries in order.
    pub fn entries(&self) -> &[Entry] {
        &self.entries
    }

    /// Appends every entry of another transcript (a second connection of the same check).
    pub fn extend(&mut self, other: Transcript) {
        self.entries.extend(other.entries);
    }
}

/// Event text that marks a completed TLS handshake. Fixtures and the replay server find
/// the TLS boundary by this prefix; the rest of the line describes version, cipher and
/// certificate.
pub const TLS_ESTABLISHED: &str = "TLS established";
/// Event text that marks the opened TCP connection (`connected to ADDR`).
pub const CONNECTED: &str = "connected to";
