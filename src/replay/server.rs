//! The replay server's SMTP state machine, without I/O (DESIGN habit 1): bytes from
//! the client go in ([`Server::push`]), what to do comes out ([`Server::poll`]: write,
//! pause, start TLS, close, fall silent). No sockets, no clock.
//!
//! It plays a [`Behaviour`] (the fixture folded into "what the server answers at each
//! stage") for *any* conforming client, not only the one the fixture was recorded with:
//! AUTH in any advertised mechanism, with or without an initial response; RSET, NOOP,
//! HELP, VRFY, HELO, `*`; pipelined groups (RFC 2920); BDAT (RFC 3030); any user,
//! sender and recipient unless the fixture says `# require:`.
//!
//! Rules it keeps, each pinned by a test below:
//! - A refused AUTH is refused again, with the same reply, on every later attempt in
//!   the session (the provider would refuse again). `503` is sent to AUTH only after a
//!   *successful* AUTH (RFC 4954 §4): Python's smtplib reads 503 as "already
//!   authenticated", so a 503 after a refusal would turn a failure into success.
//! - AUTH before EHLO, during a transaction or when not advertised never gets 503
//!   either: `503` is reserved for the RFC 4954 case above.
//! - After the `220` to STARTTLS, bytes the client already sent are discarded, never
//!   read as commands after the handshake (RFC 3207 §4.2).
//! - Nothing credential-bearing is logged: AUTH payloads and every line answering a
//!   `334` are redacted where they are read.
//! - Every buffer is capped: a command line over [`MAX_COMMAND_LINE`] gets `500` and a
//!   close; [`MAX_ERRORS`] bad commands get `421` and a close.
//!
//! It also judges the client ([`Verdict`]): did it receive the scenario's decisive
//! reply, and what did it do that an app should not ([`Finding`]).

use super::behaviour::{After, AuthExchange, Behaviour, Reply};
use super::sasl_server::{self as sasl, Part, Response};
use crate::certs::ServerCert;
use crate::protocol::escape::escape_bytes;
use crate::protocol::{Capabilities, Command, LineEvent, LineReader};
use crate::tls_mode::TlsMode;
use std::collections::VecDeque;
use std::sync::Arc;
use std::time::Duration;

/// Longest command line read (RFC 4954 §4 allows AUTH responses of 12288 octets; the
/// RFC 5321 §4.5.3.1.4 command limit of 512 is too small for them).
pub const MAX_COMMAND_LINE: usize = 16 * 1024;
/// Bad commands tolerated on one connection before `421` and a close.
pub const MAX_ERRORS: usize = 10;
/// RFC 5321 §4.5.3.1.4: a command line is at most 512 octets with its CRLF.
const RFC_COMMAND_LINE: usize = 512;
/// RFC 4954 §4: an AUTH command or response line may be up to 12288 octets.
const RFC_AUTH_LINE: usize = 12288;
/// RFC 5321 §4.5.3.1.6: a text line of the message is at most 1000 octets with CRLF.
const RFC_TEXT_LINE: usize = 1000;

/// Chooses scenarios by name when several are served (a folder): the AUTH user's
/// local part or the EHLO name's first label is the key (`fixtures/README.md`).
pub trait Catalog: Send + Sync {
    /// The scenario for `key`, if one is named so; a sequence hands out its next one.
    fn pick(&self, key: &str, mode: TlsMode) -> Option<Arc<Behaviour>>;
}

/// What the I/O layer does next.
#[derive(Debug, PartialEq, Eq)]
pub enum Action {
    /// Wait this long (a fixture `~` pause) before the next action.
    Pause(Duration),
    /// Write these bytes.
    Write(Vec<u8>),
    /// Write these bytes one at a time, this long apart (`~ trickle`).
    Trickle(Vec<u8>, Duration),
    /// Perform the TLS handshake presenting this certificate, then call
    /// [`Server::tls_started`] or [`Server::tls_failed`].
    StartTls(ServerCert),
    /// Close the connection (after a short linger feeding [`Server::push`]).
    Close,
    /// Stop answering: keep reading and ignoring until the client closes or the read
    /// deadline passes.
    Silence,
}

/// Something a client did that an application should not do.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct Finding {
    /// A stable rule name (`fixtures/README.md` lists them).
    pub rule: &'static str,
    /// What happened, for people.
    pub message: String,
    /// True for a security rule: the connection fails even without
    /// `--fail-on-findings`.
    pub security: bool,
}

/// The judgement on one connection.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct Verdict {
    /// The scenario that was played (the fixture's name).
    pub scenario: String,
    /// Its `expect` header.
    pub expect: String,
    /// True when the client received the scenario's decisive reply (for `expect: ok`
    /// the final success; otherwise the reply of the failing stage). With a bad
    /// certificate, true when the client sent no credentials or mail over it.
    pub result_delivered: bool,
    /// What it did that an app should not, in order (one per rule).
    pub findings: Vec<Finding>,
}

impl Verdict {
    /// True when the result was delivered and no security rule was broken (with
    /// `all_findings`: no finding at all).
    pub fn passed(&self, all_findings: bool) -> bool {
        self.result_delivered && !self.findings.iter().any(|f| f.security || all_findings)
    }
}

/// Where in an AUTH exchange the server is.
struct AuthFlow {
    mechanism: String,
    /// The responses still expected and the challenge to send before each.
    parts: VecDeque<(Part, String)>,
    user: Option<String>,
    oauth_error_sent: bool,
}

enum State {
    /// Implicit TLS (RFC 8314): the handshake comes before the greeting.
    AwaitImplicitTls,
    /// The `220` to STARTTLS is out; the handshake is next.
    AwaitStartTls,
    AwaitCommand,
    AwaitAuthResponse(AuthFlow),
    /// Reading the message after `354`, up to the `.` line (RFC 5321 §4.1.1.4).
    AwaitMessage,
    /// Reading a BDAT chunk's octets (RFC 3030 §2).
    AwaitChunk {
        size: usize,
        remaining: usize,
        last: bool,
    },
    /// Closed or silent; `after_421` marks lines that arrive later as the client
    /// carrying on after a `421` (RFC 5321 §3.8).
    Done {
        after_421: bool,
    },
}

/// Transaction and session state, reset as RFC 5321 §4.1.4 and RFC 3207 §4.2 say.
#[derive(Default)]
struct Session {
    tls: bool,
    greeted: bool,
    caps: Capabilities,
    authenticated: bool,
    /// The last AUTH refusal, replayed for every later attempt.
    refused: Option<Reply>,
    mail_ok: bool,
    rcpt_ok: bool,
    bdat_seen: bool,
}

/// The replay server for one connection.
pub struct Server {
    scenario: Arc<Behaviour>,
    catalog: Option<Arc<dyn Catalog>>,
    picked: Vec<String>,
    state: State,
    s: Session,
    reader: LineReader,
    out: VecDeque<Action>,
    errors: usize,
    sent: Vec<(String, usize)>,
    findings: Vec<Finding>,
    log: Vec<String>,
    /// Credentials or mail sent inside TLS (with a bad certificate: a finding).
    used_tls: bool,
    /// `--certificate`: presented whatever the scenario says.
    cert_override: Option<ServerCert>,
    tls_requested: bool,
}

impl Server {
    /// A connection has been accepted: the greeting (or the implicit TLS handshake) is
    /// queued.
    pub fn new(scenario: Arc<Behaviour>, catalog: Option<Arc<dyn Catalog>>) -> Server {
        let implicit = scenario.mode == TlsMode::Implicit;
        let mut s = Server {
            scenario,
            catalog,
            picked: Vec::new(),
            state: State::AwaitCommand,
            s: Session::default(),
            reader: LineReader::new(MAX_COMMAND_LINE),
            out: VecDeque::new(),
            errors: 0,
            sent: Vec::new(),
            findings: Vec::new(),
            log: Vec::new(),
            used_tls: false,
            cert_override: None,
            tls_requested: false,
        };
        if implicit {
            s.state = State::AwaitImplicitTls;
        } else {
            let g = s.scenario.greeting.clone();
            s.reply(&g);
        }
        s
    }

    /// Presents this certificate whatever the scenario's `certificate` header says
    /// (`--certificate`).
    pub fn with_certificate(mut self, which: ServerCert) -> Server {
        self.cert_override = Some(which);
        self
    }

    /// The certificate this connection presents.
    fn certificate(&self) -> ServerCert {
        self.cert_override.unwrap_or(self.scenario.certificate)
    }

    /// The next thing to do; `None`: read more input.
    pub fn poll(&mut self) -> Option<Action> {
        if matches!(self.state, State::AwaitImplicitTls) && !self.tls_requested {
            self.tls_requested = true;
            return Some(Action::StartTls(self.certificate()));
        }
        self.out.pop_front()
    }

    /// Lines for the log, redacted where they were read.
    pub fn take_log(&mut self) -> Vec<String> {
        std::mem::take(&mut self.log)
    }

    /// The verdict so far (final once the connection has ended).
    pub fn verdict(&self) -> Verdict {
        let b = &self.scenario;
        let result_delivered = if self.certificate() != ServerCert::Valid {
            !self.used_tls
        } else {
            self.sent
                .iter()
                .any(|(n, l)| *n == b.name && *l == b.decisive_line)
        };
        Verdict {
            scenario: b.name.clone(),
            expect: b.expect.to_string(),
            result_delivered,
            findings: self.findings.clone(),
        }
    }

    /// The TLS handshake succeeded.
    pub fn tls_started(&mut self) {
        let implicit = matches!(self.state, State::AwaitImplicitTls);
        self.s = Session {
            tls: true,
            ..Session::default()
        };
        // RFC 3207 §4.2: the server discards what the client learned and sent before.
        self.reader = LineReader::new(MAX_COMMAND_LINE);
        self.state = State::AwaitCommand;
        self.log.push("* TLS established".into());
        if implicit {
            let g = self.scenario.greeting.clone();
            self.reply(&g);
        }
    }

    /// The TLS handshake failed (with a bad certificate: the client refused it, as it
    /// should).
    pub fn tls_failed(&mut self, why: &str) {
        self.log.push(format!("* TLS handshake failed: {why}"));
        self.state = State::Done { after_421: false };
    }

    /// The client closed the connection (normal at any point: without QUIT after a
    /// failure or a success, too).
    pub fn closed_by_client(&mut self) {
        if !matches!(self.state, State::Done { .. }) {
            self.log.push("* the client closed the connection".into());
        }
        self.state = State::Done { after_421: false };
    }

    /// The read deadline passed with nothing from the client (RFC 5321 §4.5.3.2: the
    /// server may close with 421).
    pub fn timed_out(&mut self) {
        if matches!(self.state, State::Done { .. }) {
            return;
        }
        self.write_text("421 4.4.2 Timeout waiting for the client, closing connection");
        self.close(false);
    }

    /// Bytes from the client.
    pub fn push(&mut self, bytes: &[u8]) {
        match self.state {
            // Before the handshake nothing is read as a command (RFC 3207 §4.2); the
            // player hands TLS bytes to rustls, not here.
            State::AwaitImplicitTls | State::AwaitStartTls => {
                self.reader.push(bytes);
                return;
            }
            _ => {}
        }
        self.reader.push(bytes);
        self.run();
    }

    /// Bytes the client sent after STARTTLS, before the handshake: taken out (never
    /// used) and reported.
    pub fn take_early_bytes(&mut self) -> usize {
        let early = self.reader.take_buffered();
        if !early.is_empty() {
            self.find(
                "data-before-tls-handshake",
                format!(
                    "the client sent {} bytes after STARTTLS, before the TLS handshake; they \
                     are discarded (RFC 3207 §4.2)",
                    early.len()
                ),
                false,
            );
        }
        early.len()
    }

    fn run(&mut self) {
        loop {
            match &mut self.state {
                State::Done { after_421 } => {
                    let after_421 = *after_421;
                    return self.drain_after_end(after_421);
                }
                State::AwaitImplicitTls | State::AwaitStartTls => return,
                State::AwaitChunk {
                    size,
                    remaining,
                    last,
                } => {
                    let (size, remaining_now, last) = (*size, *remaining, *last);
                    let mut buf = self.reader.take_buffered();
                    let n = remaining_now.min(buf.len());
                    let rest = buf.split_off(n);
                    buf.fill(0);
                    self.reader.push(&rest);
                    if n < remaining_now {
                        self.state = State::AwaitChunk {
                            size,
                            remaining: remaining_now - n,
                            last,
                        };
                        return;
                    }
                    self.state = State::AwaitCommand;
                    self.chunk_done(size, last);
                    continue;
                }
                _ => {}
            }
            let line = match self.reader.next_line() {
                None => return,
                Some(LineEvent::TooLong(_)) => {
                    self.find(
                        "line-too-long",
                        format!(
                            "a line over {MAX_COMMAND_LINE} bytes (RFC 5321 §4.5.3.1.4 allows \
                             512 for commands)"
                        ),
                        false,
                    );
                    self.log
                        .push(format!("C: <a line over {MAX_COMMAND_LINE} bytes>"));
                    // The stream cannot be resynchronised: answer and close.
                    self.write_text("500 5.5.6 Line too long, closing connection");
                    self.close(false);
                    continue;
                }
                Some(LineEvent::Line(l)) => l,
            };
            let bare_lf = self.reader.last_line_bare_lf();
            let state = std::mem::replace(&mut self.state, State::AwaitCommand);
            match state {
                State::AwaitMessage => {
                    self.state = State::AwaitMessage;
                    self.message_line(&line, bare_lf);
                }
                State::AwaitAuthResponse(flow) => {
                    if bare_lf {
                        self.bare_lf("an AUTH response");
                    }
                    self.log
                        .push(format!("C: <redacted: {} bytes>", line.len()));
                    self.auth_response(flow, &line);
                }
                _ => self.command_line(&line, bare_lf),
            }
        }
    }

    /// After the end (QUIT answered, or a 421): what still arrives is read and, after a
    /// 421, judged (RFC 5321 §3.8: 421 closes the session).
    fn drain_after_end(&mut self, after_421: bool) {
        while let Some(LineEvent::Line(l)) = self.reader.next_line() {
            if after_421 && Command::verb_of(&l) != "QUIT" {
                self.find(
                    "continued-after-421",
                    format!(
                        "the client sent `{}` after the server's 421 (RFC 5321 §3.8: \
                         421 closes the session)",
                        shown_command(&l)
                    ),
                    false,
                );
            }
        }
    }

    /// One line of the message after DATA; `.` ends it (RFC 5321 §4.5.2).
    fn message_line(&mut self, line: &[u8], bare_lf: bool) {
        if bare_lf {
            self.bare_lf("a message line");
        }
        if line.len() + 2 > RFC_TEXT_LINE {
            self.find(
                "line-too-long",
                format!(
                    "a message line of {} bytes (RFC 5321 §4.5.3.1.6: at most 1000 \
                     with CRLF)",
                    line.len() + 2
                ),
                false,
            );
        }
        if line == b"." {
            self.log.push("C: <message>".into());
            self.state = State::AwaitCommand;
            self.message_done();
        }
    }

    /// A command line: its length judged (RFC 5321 §4.5.3.1.4, RFC 4954 §4 for AUTH),
    /// logged, answered.
    fn command_line(&mut self, line: &[u8], bare_lf: bool) {
        if bare_lf {
            self.bare_lf("a command");
        }
        let limit = if Command::verb_of(line) == "AUTH" {
            RFC_AUTH_LINE
        } else {
            RFC_COMMAND_LINE
        };
        if line.len() + 2 > limit {
            self.find(
                "line-too-long",
                format!(
                    "a command line of {} bytes (RFC 5321 §4.5.3.1.4 / RFC 4954 §4: \
                     at most {limit} with CRLF)",
                    line.len() + 2
                ),
                false,
            );
        }
        self.log.push(format!("C: {}", shown_command(line)));
        self.command(line);
    }

    fn bare_lf(&mut self, what: &str) {
        self.find(
            "bare-lf",
            format!(
                "{what} ended in a bare LF instead of CRLF (RFC 5321 §2.3.8, §4.1.1.4: SMTP lines \
                 end in CRLF)"
            ),
            false,
        );
    }

    fn find(&mut self, rule: &'static str, message: String, security: bool) {
        if !self.findings.iter().any(|f| f.rule == rule) {
            self.findings.push(Finding {
                rule,
                message,
                security,
            });
        }
    }

    /// Queues a reply and what follows it.
    fn reply(&mut self, r: &Reply) {
        if !r.pause.is_zero() {
            self.out.push_back(Action::Pause(r.pause));
        }
        if !r.wire.is_empty() {
            for l in r.wire.split(|&b| b == b'\n').filter(|l| !l.is_empty()) {
                let l = l.strip_suffix(b"\r").unwrap_or(l);
                self.log.push(format!("S: {}", escape_bytes(l)));
            }
            self.out.push_back(if r.trickle.is_zero() {
                Action::Write(r.wire.clone())
            } else {
                Action::Trickle(r.wire.clone(), r.trickle)
            });
        }
        if r.line != 0 {
            self.sent.push((self.scenario.name.clone(), r.line));
        }
        match r.after {
            After::Continue => {}
            After::Tls => {
                self.state = State::AwaitStartTls;
                self.out.push_back(Action::StartTls(self.certificate()));
            }
            After::Close => self.close(r.code == 421),
            After::Silence => {
                self.state = State::Done { after_421: false };
                self.out.push_back(Action::Silence);
            }
        }
    }

    fn write_text(&mut self, text: &str) {
        self.reply(&Reply::made_up(text));
    }

    fn close(&mut self, after_421: bool) {
        // Lines already buffered were sent before the client could see the 421 (a
        // pipelined group, RFC 2920): they are not the client carrying on.
        if after_421 {
            let _ = self.reader.take_buffered();
        }
        self.state = State::Done { after_421 };
        self.out.push_back(Action::Close);
    }

    /// An error reply to a bad command; too many of them end the session.
    fn error(&mut self, text: &str) {
        self.errors += 1;
        if self.errors >= MAX_ERRORS {
            self.write_text("421 4.7.0 Too many errors, closing connection");
            self.close(false);
        } else {
            self.write_text(text);
        }
    }

    fn pick(&mut self, key: &str) {
        let Some(catalog) = &self.catalog else {
            return;
        };
        if key.is_empty() || self.picked.iter().any(|k| k.eq_ignore_ascii_case(key)) {
            return;
        }
        if let Some(b) = catalog.pick(&key.to_ascii_lowercase(), self.scenario.mode) {
            self.picked.push(key.to_string());
            self.log.push(format!(
                "* scenario {} (chosen by `{}`)",
                b.name,
                escape_bytes(key.as_bytes())
            ));
            self.scenario = b;
        }
    }

    fn command(&mut self, line: &[u8]) {
        let verb = Command::verb_of(line);
        let arg = line
            .get(verb.len()..)
            .map(|a| String::from_utf8_lossy(a).trim().to_string())
            .unwrap_or_default();
        match verb.as_str() {
            "EHLO" | "HELO" => self.ehlo(verb == "EHLO", &arg),
            "STARTTLS" => self.starttls(&arg),
            "AUTH" => self.auth(line),
            "MAIL" => self.mail(line),
            "RCPT" => self.rcpt(line),
            "DATA" => self.data(&arg),
            "BDAT" => self.bdat(&arg),
            // RFC 5321 §4.1.1.5: RSET aborts the transaction.
            "RSET" if arg.is_empty() => {
                self.s.mail_ok = false;
                self.s.rcpt_ok = false;
                self.write_text("250 2.0.0 OK");
            }
            "NOOP" => self.write_text("250 2.0.0 OK"),
            "HELP" => self.write_text(
                "214 2.0.0 Commands: EHLO HELO STARTTLS AUTH MAIL RCPT DATA BDAT RSET NOOP VRFY HELP QUIT",
            ),
            // RFC 5321 §3.5.3: 252 when the server will not verify.
            "VRFY" => self.write_text("252 2.5.0 Cannot VRFY user, but will accept the message"),
            "EXPN" => self.write_text("502 5.5.1 EXPN not implemented"),
            "QUIT" => {
                let q = self
                    .scenario
                    .quit
                    .clone()
                    .unwrap_or_else(|| Reply::made_up("221 2.0.0 Bye"));
                self.reply(&q);
                if q.after != After::Close {
                    self.close(false);
                }
            }
            "RSET" => self.error("501 5.5.4 RSET takes no arguments"),
            _ => self.error("500 5.5.2 Syntax error, command unrecognized"),
        }
    }

    fn ehlo(&mut self, extended: bool, arg: &str) {
        let Some(name) = arg.split_whitespace().next() else {
            // RFC 5321 §4.1.1.1: a domain or an address literal.
            return self.error("501 5.5.4 EHLO needs a domain or address literal");
        };
        // The EHLO name's first label may choose the scenario (a folder).
        self.pick(name.split('.').next().unwrap_or_default());
        let tls = usize::from(self.s.tls);
        let r = self.scenario.ehlo[tls]
            .clone()
            .unwrap_or_else(|| Reply::made_up(&format!("250 {}", self.scenario.host)));
        // RFC 5321 §4.1.4: EHLO resets the transaction.
        self.s.mail_ok = false;
        self.s.rcpt_ok = false;
        if extended {
            self.s.greeted = r.class() == 2;
            self.s.caps = if self.s.greeted {
                self.scenario.capabilities(self.s.tls)
            } else {
                Capabilities::default()
            };
            self.reply(&r);
        } else {
            // HELO: the first line only, no extensions (RFC 5321 §4.1.1.1).
            self.s.greeted = r.class() == 2;
            self.s.caps = Capabilities::default();
            if r.class() == 2 {
                let first = r.wire.split(|&b| b == b'\r').next().unwrap_or_default();
                let text = String::from_utf8_lossy(first.get(4..).unwrap_or_default()).into_owned();
                self.reply(&Reply {
                    wire: format!("250 {text}\r\n").into_bytes(),
                    ..r
                });
            } else {
                self.reply(&r);
            }
        }
    }

    fn starttls(&mut self, arg: &str) {
        if !arg.is_empty() {
            return self.error("501 5.5.4 STARTTLS takes no arguments");
        }
        if self.s.tls {
            return self.error("554 5.5.1 TLS already active");
        }
        let offered = self.s.caps.has("STARTTLS");
        match &self.scenario.starttls {
            Some(r) if offered => {
                let r = r.clone();
                self.reply(&r);
            }
            // RFC 3207 §4: 454 when TLS is not available (here: the offer was stripped
            // on the way, so the real server never saw the STARTTLS it would accept).
            _ if self.scenario.mode == TlsMode::Starttls => {
                self.error("454 4.7.0 TLS not available due to temporary reason")
            }
            _ => self.error("502 5.5.1 STARTTLS not offered"),
        }
    }

    fn security_of_plaintext(&self) -> Option<&'static str> {
        if self.s.tls {
            return None;
        }
        Some(if self.s.caps.has("STARTTLS") {
            "the server offered STARTTLS and the client did not use it"
        } else if self.scenario.mode == TlsMode::Starttls {
            "the STARTTLS offer was stripped (RFC 3207 §4: a client that requires TLS must stop)"
        } else {
            "the server offers no TLS at all"
        })
    }

    fn auth(&mut self, line: &[u8]) {
        let mechanism = Command::first_arg_of(line);
        let ir: Option<Vec<u8>> = line
            .split(|&b| b == b' ')
            .filter(|w| !w.is_empty())
            .nth(2)
            .map(<[u8]>::to_vec);
        if mechanism.is_empty() {
            return self.error("501 5.5.4 AUTH needs a mechanism");
        }
        if self.s.authenticated {
            // RFC 4954 §4: after a successful AUTH, further AUTH commands get 503.
            return self.error("503 5.5.1 Already authenticated");
        }
        self.judge_auth_start(&mechanism);
        let advertised = self.s.caps.auth_mechanisms();
        let slot = usize::from(self.s.tls);
        // A reply the fixture gives to the AUTH command itself, before any credentials
        // (Gmail's `530 5.7.0 Must issue a STARTTLS command first`).
        let recorded = self.scenario.auth[slot].clone();
        if let Some(ex) = &recorded {
            if refused_at_command(&ex.result) && ex.challenges.is_empty() {
                return self.auth_result(ex.result.clone());
            }
        }
        if !self.s.caps.offers_auth() {
            let text = if !self.s.tls && self.scenario.starttls.is_some() {
                "530 5.7.0 Must issue a STARTTLS command first"
            } else {
                "502 5.5.1 AUTH not available"
            };
            return self.auth_result(Reply::made_up(text));
        }
        if !advertised.contains(&mechanism) {
            // RFC 4954 §4: 504 for a mechanism the server does not support.
            return self.error("504 5.5.4 Unrecognized authentication type");
        }
        if self.s.mail_ok {
            // RFC 4954 §4: AUTH is not permitted during a mail transaction.
            return self.error("501 5.5.1 AUTH not permitted during a mail transaction");
        }
        let parts = self.auth_parts(&mechanism, recorded.as_ref());
        let mut flow = AuthFlow {
            mechanism,
            parts,
            user: None,
            oauth_error_sent: false,
        };
        if let Some(ir) = ir {
            // CRAM-MD5 has no initial response (RFC 2195); others take it (RFC 4954 §4).
            if flow.mechanism != "CRAM-MD5" {
                if let Some((part, _)) = flow.parts.pop_front() {
                    match sasl::read(&ir, part) {
                        Response::Cancel => {
                            return self.error("501 5.7.0 Authentication cancelled")
                        }
                        Response::Undecodable => {
                            return self.error("501 5.5.2 Cannot decode the initial response")
                        }
                        Response::Decoded(name) => flow.user = flow.user.take().or(name),
                    }
                }
            }
        }
        self.auth_next(flow);
    }

    /// Findings about an AUTH command itself: sent in clear, not advertised, or after a
    /// permanent refusal.
    fn judge_auth_start(&mut self, mechanism: &str) {
        if let Some(why) = self.security_of_plaintext() {
            self.find(
                "auth-without-tls",
                format!(
                    "AUTH {mechanism} started on an unencrypted connection: {why} (the \
                     credentials go in clear to any server that accepts)"
                ),
                true,
            );
        }
        self.note_tls_use("AUTH");
        if !self.s.caps.offers_auth() {
            self.find(
                "auth-not-advertised",
                "AUTH sent although the EHLO reply does not list AUTH (RFC 4954 §3)".into(),
                false,
            );
        }
        if let Some(prev) = self.s.refused.clone() {
            if prev.class() == 5 {
                self.find(
                    "auth-after-permanent-failure",
                    format!(
                        "a second AUTH after the permanent refusal `{}` (each try spends the \
                         provider's login budget)",
                        first_line(&prev.wire)
                    ),
                    false,
                );
            }
        }
    }

    /// The challenges the server will send for `mechanism`, each with the part of the
    /// response it reads: a conforming server's, with the fixture's own LOGIN prompts.
    fn auth_parts(
        &self,
        mechanism: &str,
        recorded: Option<&AuthExchange>,
    ) -> VecDeque<(Part, String)> {
        let host = self.scenario.host.clone();
        let mut parts: VecDeque<(Part, String)> = match mechanism {
            "PLAIN" => [(Part::Plain, sasl::EMPTY.to_string())].into(),
            "LOGIN" => [
                (Part::LoginUser, sasl::LOGIN_USERNAME.to_string()),
                (Part::Anonymous, sasl::LOGIN_PASSWORD.to_string()),
            ]
            .into(),
            "XOAUTH2" => [(Part::XOAuth2, sasl::EMPTY.to_string())].into(),
            "OAUTHBEARER" => [(Part::OAuthBearer, sasl::EMPTY.to_string())].into(),
            "CRAM-MD5" => [(Part::Anonymous, sasl::cram_md5_challenge(&host))].into(),
            _ => [(Part::Anonymous, sasl::EMPTY.to_string())].into(),
        };
        // The fixture's own challenges for the mechanism it recorded (same text as a
        // conforming server, but the provider's exact bytes).
        if let Some(ex) = recorded.filter(|e| e.mechanism == mechanism) {
            for (p, c) in parts.iter_mut().zip(&ex.challenges) {
                if mechanism == "LOGIN" {
                    p.1 = String::from_utf8_lossy(first_line(&c.wire).as_bytes()).into_owned();
                }
            }
        }
        parts
    }

    fn note_tls_use(&mut self, what: &str) {
        if self.s.tls {
            self.used_tls = true;
            if self.certificate() != ServerCert::Valid {
                self.find(
                    "accepted-bad-certificate",
                    format!(
                        "{what} sent over TLS with a {} certificate: the client does not \
                         verify the server's certificate",
                        crate::fixture::cert_mode_name(self.certificate())
                    ),
                    true,
                );
            }
        }
    }

    /// Sends the next challenge, or the result once every response is in.
    fn auth_next(&mut self, mut flow: AuthFlow) {
        if let Some((_, challenge)) = flow.parts.front() {
            let c = challenge.clone();
            self.write_text(&c);
            self.state = State::AwaitAuthResponse(flow);
            return;
        }
        if let Some(user) = flow.user.clone() {
            let local = user.split('@').next().unwrap_or_default().to_string();
            self.pick(&local);
            if self.scenario.require_user
                && self.scenario.user.as_deref().is_some_and(|u| u != user)
            {
                return self.auth_result(Reply::made_up(
                    "535 5.7.8 Authentication credentials invalid",
                ));
            }
        }
        let slot = usize::from(self.s.tls);
        let result = self.scenario.auth[slot]
            .as_ref()
            .map(|e: &AuthExchange| e.result.clone())
            .unwrap_or_else(|| Reply::made_up("235 2.7.0 Authentication successful"));
        let oauth = matches!(flow.mechanism.as_str(), "XOAUTH2" | "OAUTHBEARER");
        if oauth && result.class() >= 4 && !flow.oauth_error_sent {
            // RFC 7628 §3.2.2: the error as a challenge first; the fixture's own one
            // when it recorded this mechanism.
            let challenge = self.scenario.auth[slot]
                .as_ref()
                .filter(|e| e.mechanism == flow.mechanism)
                .and_then(|e| e.challenges.last().cloned())
                .unwrap_or_else(|| Reply::made_up(sasl::OAUTH_ERROR));
            flow.oauth_error_sent = true;
            flow.parts.push_back((Part::Anonymous, String::new()));
            self.reply(&Reply {
                after: After::Continue,
                ..challenge
            });
            self.state = State::AwaitAuthResponse(flow);
            return;
        }
        self.auth_result(result);
    }

    fn auth_result(&mut self, r: Reply) {
        self.state = State::AwaitCommand;
        if r.class() == 2 {
            self.s.authenticated = true;
        } else {
            self.s.refused = Some(r.clone());
        }
        self.reply(&r);
    }

    fn auth_response(&mut self, mut flow: AuthFlow, line: &[u8]) {
        let Some((part, challenge)) = flow.parts.pop_front() else {
            return self.auth_next(flow);
        };
        // After the challenge text was sent, this is its answer.
        let _ = challenge;
        match sasl::read(line, part) {
            // RFC 4954 §4: `*` cancels; the server answers 501.
            Response::Cancel => self.write_text("501 5.7.0 Authentication cancelled"),
            Response::Undecodable if !flow.oauth_error_sent => {
                self.write_text("501 5.5.2 Cannot decode response")
            }
            Response::Undecodable => self.auth_next(flow),
            Response::Decoded(name) => {
                flow.user = flow.user.take().or(name);
                self.auth_next(flow);
            }
        }
    }

    fn need_greeting(&mut self) -> bool {
        if !self.s.greeted {
            self.error("503 5.5.1 Send EHLO first");
            return false;
        }
        true
    }

    fn mail(&mut self, line: &[u8]) {
        if !self.need_greeting() {
            return;
        }
        if self.s.mail_ok {
            return self.error("503 5.5.1 Nested MAIL command");
        }
        if self.scenario.mode == TlsMode::Starttls && !self.s.tls {
            self.find(
                "mail-without-tls",
                format!(
                    "MAIL sent on an unencrypted connection: {}",
                    self.security_of_plaintext().unwrap_or_default()
                ),
                true,
            );
        }
        self.note_tls_use("MAIL");
        let b = self.scenario.clone();
        if !required_matches(b.mail.as_ref(), b.require_from, line) {
            return self.write_text("553 5.7.1 Sender address rejected: not owned by user");
        }
        // A server that refused AUTH in clear because it wants TLS first (Gmail's
        // `530 5.7.0 Must issue a STARTTLS command first`, RFC 3207 §4: a server may
        // require TLS before accepting other commands) refuses MAIL in clear with the
        // same reply: an app that skips the login because no AUTH was offered still
        // learns that the provider wants TLS, as it would from the real server.
        let tls_first = b.auth[0]
            .as_ref()
            .filter(|ex| !self.s.tls && ex.challenges.is_empty())
            .filter(|ex| matches!(ex.result.code, 530 | 538))
            .map(|ex| ex.result.clone());
        let r = match tls_first {
            Some(r) => r,
            None => match &b.mail {
                // A submission server that offers STARTTLS wants it before mail (Gmail on
                // 587 answers this; the fixture's MAIL was recorded inside TLS).
                _ if b.mode == TlsMode::Starttls && !self.s.tls => {
                    Reply::made_up("530 5.7.0 Must issue a STARTTLS command first")
                }
                Some(rec) if rec.authenticated == self.s.authenticated => rec.reply.clone(),
                // The fixture's MAIL came after a successful login: without one, a
                // submission server wants AUTH (RFC 4954 §6).
                Some(rec) if rec.authenticated => {
                    Reply::made_up("530 5.7.0 Authentication required")
                }
                _ if !self.s.authenticated && b.auth[1].is_some() && self.s.caps.offers_auth() => {
                    Reply::made_up("530 5.7.0 Authentication required")
                }
                _ => Reply::made_up("250 2.1.0 OK"),
            },
        };
        self.s.mail_ok = r.class() == 2;
        self.reply(&r);
    }

    fn rcpt(&mut self, line: &[u8]) {
        if !self.need_greeting() {
            return;
        }
        let b = self.scenario.clone();
        if !self.s.mail_ok {
            let r = b
                .rcpt_without_mail
                .clone()
                .unwrap_or_else(|| Reply::made_up("503 5.5.1 MAIL first"));
            return self.reply(&r);
        }
        if !required_matches(b.rcpt.as_ref(), b.require_to, line) {
            return self.write_text("550 5.1.1 No such user");
        }
        let r = b
            .rcpt
            .as_ref()
            .map(|r| r.reply.clone())
            .unwrap_or_else(|| Reply::made_up("250 2.1.5 OK"));
        self.s.rcpt_ok |= r.class() == 2;
        self.reply(&r);
    }

    fn data(&mut self, arg: &str) {
        if !arg.is_empty() {
            return self.error("501 5.5.4 DATA takes no arguments");
        }
        if !self.need_greeting() {
            return;
        }
        if !self.s.rcpt_ok || self.s.bdat_seen {
            let text = if self.s.mail_ok {
                "503 5.5.1 RCPT first"
            } else {
                "503 5.5.1 MAIL first"
            };
            let r = self
                .scenario
                .data_without_rcpt
                .clone()
                .unwrap_or_else(|| Reply::made_up(text));
            return self.reply(&r);
        }
        let r = self
            .scenario
            .data
            .clone()
            .unwrap_or_else(|| Reply::made_up("354 Go ahead"));
        let go = r.code == 354;
        self.reply(&r);
        if go && matches!(self.state, State::AwaitCommand) {
            self.state = State::AwaitMessage;
        }
    }

    fn message_done(&mut self) {
        self.s.mail_ok = false;
        self.s.rcpt_ok = false;
        self.s.bdat_seen = false;
        let r = self
            .scenario
            .message
            .clone()
            .unwrap_or_else(|| Reply::made_up("250 2.0.0 OK queued"));
        self.reply(&r);
    }

    /// RFC 3030 §2: `BDAT size [LAST]`; the octets are read whatever the reply.
    fn bdat(&mut self, arg: &str) {
        let mut w = arg.split_whitespace();
        let size = w.next().and_then(|s| s.parse::<usize>().ok());
        let last = match w.next() {
            None => false,
            Some(l) if l.eq_ignore_ascii_case("LAST") => true,
            Some(_) => return self.error("501 5.5.4 BDAT size [LAST]"),
        };
        let Some(size) = size else {
            // Without a size the chunk's end cannot be found: close.
            self.write_text("501 5.5.4 BDAT needs a chunk size, closing connection");
            return self.close(false);
        };
        self.state = State::AwaitChunk {
            size,
            remaining: size,
            last,
        };
    }

    fn chunk_done(&mut self, size: usize, last: bool) {
        self.log.push(format!("C: <BDAT chunk: {size} bytes>"));
        if !self.s.caps.has("CHUNKING") {
            return self.error("502 5.5.1 BDAT not offered (no CHUNKING in EHLO)");
        }
        if !self.s.rcpt_ok {
            let text = if self.s.mail_ok {
                "503 5.5.1 RCPT first"
            } else {
                "503 5.5.1 MAIL first"
            };
            return self.write_text(text);
        }
        self.s.bdat_seen = true;
        if last {
            self.message_done();
        } else {
            self.write_text(&format!("250 2.0.0 {size} octets received"));
        }
    }
}

/// `# require: from` / `to`: true when the value need not match, or matches the
/// fixture's recorded line.
fn required_matches(
    recorded: Option<&super::behaviour::Recorded>,
    required: bool,
    line: &[u8],
) -> bool {
    match recorded {
        Some(rec) if required => rec
            .pattern
            .as_deref()
            .is_some_and(|p| Behaviour::matches_recorded(p, line)),
        _ => true,
    }
}

/// Reply codes a server gives to the AUTH command itself, before reading any
/// credentials (RFC 4954 §4, §6: 530/538 encryption or auth policy, 421, 454 TLS, 502,
/// 504).
fn refused_at_command(r: &Reply) -> bool {
    matches!(r.code, 421 | 502 | 504 | 530 | 538)
}

fn first_line(wire: &[u8]) -> String {
    let l = wire
        .split(|&b| b == b'\r' || b == b'\n')
        .next()
        .unwrap_or_default();
    escape_bytes(l)
}

/// A command line as it may be logged: the AUTH payload is redacted (never shown, not
/// even decoded); a line that is no SMTP command is shown by its length only (it may be
/// a credential sent out of turn); long lines are cut.
pub(crate) fn shown_command(line: &[u8]) -> String {
    let verb = Command::verb_of(line);
    if !crate::fixture::KNOWN_VERBS.contains(&verb.as_str()) {
        return format!("<unrecognised line: {} bytes>", line.len());
    }
    if verb == "AUTH" {
        let mut words = line.split(|&b| b == b' ').filter(|w| !w.is_empty());
        let verb = words.next().unwrap_or_default();
        let mech = words.next().map(escape_bytes).unwrap_or_default();
        let payload = if words.next().is_some() {
            " <redacted>"
        } else {
            ""
        };
        return format!("{} {mech}{payload}", escape_bytes(verb))
            .trim_end()
            .to_string();
    }
    let mut s = escape_bytes(&line[..line.len().min(200)]);
    if line.len() > 200 {
        s.push('…');
    }
    s
}

#[cfg(test)]
mod tests;
