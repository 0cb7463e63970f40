//! The replay server's cursor through a fixture, without I/O (DESIGN habit 1): it says
//! what to do next (write, pause, start TLS, read) and judges each received line.

use crate::fixture::{ClientPattern, Fixture, Mismatch, Step};
use crate::protocol::escape::unescape;
use crate::protocol::reply;
use std::time::Duration;

/// What the server does next.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Action {
    /// Write these bytes in one write: every consecutive `S:` line, CRLF-terminated
    /// (this is how an injected `250` travels in the same packet as the `220`).
    Write(Vec<u8>),
    /// Write these bytes one at a time, this long apart (`~ trickle`).
    Trickle(Vec<u8>, Duration),
    /// Wait before the next action.
    Pause(Duration),
    /// Perform the TLS handshake (RFC 8314 implicit, or RFC 3207 after STARTTLS).
    Tls,
    /// Read one command line and pass it to [`Script::on_line`].
    ReadLine,
    /// Read a message body up to the `.` line, then call [`Script::on_message`].
    ReadMessage,
    /// The fixture is over: close the connection.
    End,
    /// `* silence`: stop answering; read and ignore until the client gives up.
    Silence,
    /// `~ repeat N`: write these bytes this many times (a flood), stopping when the
    /// client stops reading.
    Repeat(Vec<u8>, u32),
    /// `* read`: wait for at least one byte from the client and discard it.
    Read,
}

/// A position in a fixture.
#[derive(Debug)]
pub(crate) struct Script<'f> {
    fixture: &'f Fixture,
    pos: usize,
    /// True after a `334` challenge: the client's next line carries credentials.
    in_auth: bool,
    /// A `~ trickle` step seen: the next write goes out byte by byte.
    trickle: Option<Duration>,
    /// A `~ repeat` step seen: the next write goes out this many times.
    repeat: Option<u32>,
}

impl<'f> Script<'f> {
    pub(crate) fn new(fixture: &'f Fixture) -> Self {
        Script {
            fixture,
            pos: 0,
            in_auth: false,
            trickle: None,
            repeat: None,
        }
    }

    /// The fixture being played.
    pub(crate) fn fixture(&self) -> &'f Fixture {
        self.fixture
    }

    /// How many steps have been played.
    pub(crate) fn position(&self) -> usize {
        self.pos
    }

    /// True when the client's next line is a credential line (an answer to a `334`,
    /// RFC 4954 §4): a line received now must not be logged. An AUTH *command* line is
    /// not one: it is logged with its payload redacted, and a QUIT sent where the
    /// fixture expects AUTH is shown as `QUIT`.
    pub(crate) fn expects_credentials(&self) -> bool {
        self.in_auth
    }

    /// The next thing to do. Server-side steps are consumed; a client step stays
    /// until [`Script::on_line`] or [`Script::on_message`] accepts it.
    pub(crate) fn next_action(&mut self) -> Action {
        let steps = &self.fixture.steps;
        let mut out = Vec::new();
        // Where the last server line starts in `out`.
        let mut last_reply = 0;
        while let Some(s) = steps.get(self.pos) {
            match &s.step {
                Step::Server(text) => {
                    // Escapes were validated by `Fixture::parse`.
                    last_reply = out.len();
                    out.extend(unescape(text).unwrap_or_default());
                    out.extend_from_slice(b"\r\n");
                    self.pos += 1;
                }
                Step::Raw(text) => {
                    last_reply = out.len();
                    out.extend(unescape(text).unwrap_or_default());
                    self.pos += 1;
                }
                Step::Note(_) => self.pos += 1,
                _ if !out.is_empty() => break,
                Step::Repeat(n) => {
                    self.pos += 1;
                    self.repeat = Some(*n);
                }
                Step::Read => {
                    self.pos += 1;
                    return Action::Read;
                }
                Step::Close => {
                    self.pos = steps.len();
                    return Action::End;
                }
                Step::Silence => {
                    self.pos = steps.len();
                    return Action::Silence;
                }
                Step::Pause(d) => {
                    self.pos += 1;
                    return Action::Pause(*d);
                }
                Step::Trickle(d) => {
                    self.pos += 1;
                    self.trickle = Some(*d);
                }
                Step::Tls(_) => {
                    self.pos += 1;
                    return Action::Tls;
                }
                Step::Client {
                    pattern: ClientPattern::Message,
                    ..
                } => return Action::ReadMessage,
                Step::Client { .. } => return Action::ReadLine,
            }
        }
        if out.is_empty() {
            return Action::End;
        }
        // RFC 4954 §4: a 334 asks for a response that carries credentials.
        self.in_auth = reply::code_of(&out[last_reply..]) == Some(334);
        if let Some(n) = self.repeat.take() {
            return Action::Repeat(out, n);
        }
        match self.trickle.take() {
            Some(gap) => Action::Trickle(out, gap),
            None => Action::Write(out),
        }
    }

    /// Judges a received command line. On a match the step is consumed. An optional
    /// step (`C?:`) that does not match is skipped together with its replies, and the
    /// line is tried against the next client step.
    pub(crate) fn on_line(&mut self, line: &[u8]) -> Result<(), Mismatch> {
        let steps = &self.fixture.steps;
        let mut at = self.pos;
        let mut expected: Vec<String> = Vec::new();
        loop {
            let result = self.fixture.matches_client_line(at, line);
            let Err(mismatch) = result else {
                self.pos = at + 1;
                self.in_auth = false;
                return Ok(());
            };
            let optional = matches!(
                steps.get(at).map(|s| &s.step),
                Some(Step::Client { optional: true, .. })
            );
            expected.push(mismatch.expected.clone());
            let next = optional
                .then(|| {
                    (at + 1..steps.len()).find(|&j| {
                        !matches!(
                            steps[j].step,
                            Step::Server(_)
                                | Step::Raw(_)
                                | Step::Note(_)
                                | Step::Pause(_)
                                | Step::Trickle(_)
                                | Step::Repeat(_)
                        )
                    })
                })
                .flatten()
                .filter(|&j| matches!(steps[j].step, Step::Client { .. }));
            match next {
                Some(j) => at = j,
                None => {
                    let first_line = steps.get(self.pos).map_or(0, |s| s.line);
                    return Err(Mismatch {
                        expected: expected.join("` or `"),
                        line: first_line,
                        ..mismatch
                    });
                }
            }
        }
    }

    /// The message body has been read (its content is a pattern).
    pub(crate) fn on_message(&mut self) {
        self.pos += 1;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fixture::MismatchKind;

    const TEXT: &str = "# name: t
# story: s
# host: mx.example
# port: 25
# mode: none
# expect: ok

S: 220 hi
C: EHLO {any}
S: 250-mx
S: 250 PIPELINING
C: MAIL FROM:<a@b>
S: 530 5.7.0 Authentication Required
C?: RCPT TO:<c@d>
S: 530 5.7.0 Authentication Required
C?: DATA
S: 530 5.7.0 Authentication Required
C: QUIT
S: 221 bye
";

    fn play(lines: &[&[u8]]) -> (Vec<Action>, Vec<Result<(), Mismatch>>) {
        let f = Fixture::parse(TEXT).unwrap();
        let mut s = Script::new(&f);
        let mut actions = Vec::new();
        let mut results = Vec::new();
        let mut input = lines.iter();
        loop {
            let a = s.next_action();
            match a {
                Action::ReadLine => match input.next() {
                    Some(l) => results.push(s.on_line(l)),
                    None => break,
                },
                Action::End => {
                    actions.push(a);
                    break;
                }
                other => actions.push(other),
            }
        }
        (actions, results)
    }

    #[test]
    fn consecutive_server_lines_are_one_write() {
        let (actions, _) = play(&[b"EHLO x"]);
        assert_eq!(
            actions[1],
            Action::Write(b"250-mx\r\n250 PIPELINING\r\n".to_vec())
        );
    }

    #[test]
    fn optional_lines_may_be_sent_or_skipped() {
        let pipelining: &[&[u8]] = &[
            b"EHLO x",
            b"MAIL FROM:<a@b>",
            b"RCPT TO:<c@d>",
            b"DATA",
            b"QUIT",
        ];
        let (actions, results) = play(pipelining);
        assert!(results.iter().all(Result::is_ok), "{results:?}");
        assert_eq!(actions.last(), Some(&Action::End));

        let one_by_one: &[&[u8]] = &[b"EHLO x", b"MAIL FROM:<a@b>", b"QUIT"];
        let (actions, results) = play(one_by_one);
        assert!(results.iter().all(Result::is_ok), "{results:?}");
        assert_eq!(actions.last(), Some(&Action::End));
        assert_eq!(
            actions[actions.len() - 2],
            Action::Write(b"221 bye\r\n".to_vec())
        );
    }

    #[test]
    fn a_deviation_names_the_line_and_all_acceptable_lines() {
        let (_, results) = play(&[b"EHLO x", b"MAIL FROM:<a@b>", b"NOOP"]);
        let m = results[2].clone().unwrap_err();
        assert_eq!(m.line, 14);
        assert_eq!(m.kind, MismatchKind::Sequence);
        assert_eq!(m.expected, "RCPT TO:<c@d>` or `DATA` or `QUIT");
    }
}
