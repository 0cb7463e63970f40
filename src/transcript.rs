//! The transcript: every line in and out, timestamped, with its stage and TLS state.
//!
//! Entries are written already redacted (the session records the redacted form of every
//! AUTH line it sends), so the same text can be logged, shown, recorded as a fixture and
//! annotated without any later pass having to remember to hide something.

use crate::session::{Event, SentLine};
use crate::stage::Stage;
use serde::Serialize;

/// Who produced a transcript line; for smtprobe's own event lines (`*`), which kind,
/// so in-memory readers (fixture recording, annotation) find the connection and TLS
/// boundaries by type, never by the line's text. All event kinds are `*` in the text
/// and the JSON.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub enum Direction {
    /// The client (smtprobe) sent it.
    #[serde(rename = "C")]
    Client,
    /// The server sent it.
    #[serde(rename = "S")]
    Server,
    /// An event: a note, a DNS answer, a proxy step, a decision.
    #[serde(rename = "*")]
    Event,
    /// The event that the TCP connection opened (`connected to ADDR`).
    #[serde(rename = "*")]
    Connected,
    /// The event that a TLS handshake completed (`TLS established: version cipher…`):
    /// every later line travels inside TLS (RFC 3207 §4.2, RFC 8314 §3).
    #[serde(rename = "*")]
    TlsEstablished,
}

impl Direction {
    /// `C`, `S` or `*`, as in RFC traces and fixtures.
    pub fn marker(self) -> &'static str {
        match self {
            Direction::Client => "C",
            Direction::Server => "S",
            Direction::Event | Direction::Connected | Direction::TlsEstablished => "*",
        }
    }

    /// True for smtprobe's own event lines (`*`), of any kind.
    pub fn is_event(self) -> bool {
        self.marker() == "*"
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

/// Event text that begins a completed TLS handshake's line ([`Direction::TlsEstablished`]);
/// the rest describes version, cipher and certificate. Only a saved fixture's text is
/// searched for it; in memory the direction says it.
pub const TLS_ESTABLISHED: &str = "TLS established";
/// Event text of an opened TCP connection's line (`connected to ADDR`,
/// [`Direction::Connected`]).
pub const CONNECTED: &str = "connected to";
