//! The sans-IO SMTP client session: a state machine that consumes server bytes and
//! says what to send, when to start TLS and close, what happened, and the outcome.
//!
//! It never touches a socket or reads the clock (DESIGN habit 1): the transport feeds it
//! with [`Session::handle_input`], [`Session::handle_tls_established`], the failures it
//! meets ([`Session::handle_tls_failed`], [`Session::handle_read_failed`],
//! [`Session::handle_write_failed`], [`Session::handle_eof`]) and
//! [`Session::handle_timeout`] for the deadline [`Session::poll_timeout`] gave it. After
//! each call it drains [`Session::poll_event`] (what happened, in the past tense: typed
//! and already redacted, rendered as transcript lines by [`crate::transcript::lines_of`])
//! and [`Session::poll_io`] (what to do: transmit, start TLS, close). Only the session
//! decides the outcome ([`Event::Finished`]). Same bytes in, same events out.
//!
//! Each state carries the data only it needs, and each transition consumes the old
//! state and returns the next (DESIGN habit 2): the AUTH exchange exists only with an
//! [`AuthConfig`], the mail transaction only with a [`MailConfig`], so neither can end
//! with an outcome made up for a configuration that is not there.
//!
//! Security rules enforced here (each has a test below):
//! - STARTTLS (RFC 3207): only a 220 starts TLS; bytes received after that reply and
//!   before the handshake abort the session (`starttls.injection`); everything learned
//!   before TLS is discarded and EHLO is sent again; STARTTLS is never sent twice; a
//!   missing or refused STARTTLS stops the session, never continuing in clear.
//! - No credentials on an unencrypted connection unless explicitly allowed.
//! - One AUTH attempt, no fallback to another mechanism after a failure.
//! - A success reply before the credentials were sent is a failure, never "OK".
//! - SCRAM (RFC 5802 §3) is mutual: a 235 is success only after the server's signature
//!   verified; a wrong or missing signature fails the check (`auth.server-not-verified`)
//!   even though the server said 235.
//! - The SCRAM client proof and the server signature are redacted where they are
//!   recorded: with the salt and nonces either would allow an offline password guess.
//! - A SCRAM server nonce that does not extend ours, or an iteration count above
//!   [`sasl::SCRAM_MAX_ITERATIONS`], cancels the exchange (`*`) before any proof is sent.
//! - `--auth auto` picks the strongest mechanism offered for the credential
//!   ([`pick_mechanism`]); it never tries a second one.
//! - HELO fallback (RFC 5321 §4.1.1.1): only after a 500/502 to the first EHLO, once;
//!   a HELO-only server never gets STARTTLS, AUTH or ESMTP parameters.
//! - The message is never sent when it exceeds the announced SIZE (RFC 1870 §4) or needs
//!   SMTPUTF8/8BITMIME that the server did not announce (RFC 6531 §3.4, RFC 6152 §3).
//! - `--quit-after STAGE` sends QUIT right after that stage passed; pipelining is off so
//!   no later command is in flight.

use crate::failure::Failure;
use crate::protocol::command::encode_data;
use crate::protocol::sasl::{self, Encoded};
use crate::protocol::{
    escape_bytes, Capabilities, Command, Mechanism, Reply, ReplyError, ReplyParser,
};
use crate::secret::Secret;
use crate::stage::Stage;
use crate::tls_mode::TlsMode;
use std::collections::VecDeque;
use std::time::Duration;

/// The most bytes of unexpected server data (injected, unsolicited, or a partial reply
/// before a close) kept as evidence: enough to recognise what was sent, without carrying
/// up to the parser's caps (72 KiB, four times that escaped) into every output.
pub const EVIDENCE_BYTES: usize = 512;

/// Unexpected server bytes as evidence: escaped, and cut after [`EVIDENCE_BYTES`] with
/// the total size noted.
fn excerpt(bytes: &[u8]) -> String {
    if bytes.len() <= EVIDENCE_BYTES {
        return escape_bytes(bytes);
    }
    format!(
        "{}… ({} bytes in all)",
        escape_bytes(&bytes[..EVIDENCE_BYTES]),
        bytes.len()
    )
}

/// Which SASL mechanism to use for a password.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum AuthChoice {
    /// The strongest offered: see [`pick_mechanism`].
    #[default]
    Auto,
    /// PLAIN only.
    Plain,
    /// LOGIN only.
    Login,
    /// CRAM-MD5 only (RFC 2195).
    CramMd5,
    /// SCRAM-SHA-1 only (RFC 5802).
    ScramSha1,
    /// SCRAM-SHA-256 only (RFC 7677).
    ScramSha256,
}

impl AuthChoice {
    /// The one mechanism a forced choice means (`None` for auto).
    pub fn forced(self) -> Option<Mechanism> {
        match self {
            AuthChoice::Auto => None,
            AuthChoice::Plain => Some(Mechanism::Plain),
            AuthChoice::Login => Some(Mechanism::Login),
            AuthChoice::CramMd5 => Some(Mechanism::CramMd5),
            AuthChoice::ScramSha1 => Some(Mechanism::ScramSha1),
            AuthChoice::ScramSha256 => Some(Mechanism::ScramSha256),
        }
    }
}

/// `--auth auto` for a password: the strongest mechanism the server offers, and why.
///
/// SCRAM-SHA-256, then SCRAM-SHA-1: the password never crosses the wire and the server
/// proves it knows it (RFC 5802 §1). Inside verified TLS, PLAIN and LOGIN come next: TLS
/// protects them and the server may store only a hash, which CRAM-MD5 does not allow
/// (RFC 2195 §3, MD5); without TLS (`--allow-plaintext-auth`), CRAM-MD5 comes before
/// them, since it at least keeps the password off the wire.
pub fn pick_mechanism(offered: &[String], tls: bool) -> Option<(Mechanism, String)> {
    let has = |m: Mechanism| offered.iter().any(|o| o.eq_ignore_ascii_case(m.name()));
    let order: &[Mechanism] = if tls {
        &[
            Mechanism::ScramSha256,
            Mechanism::ScramSha1,
            Mechanism::Plain,
            Mechanism::Login,
            Mechanism::CramMd5,
        ]
    } else {
        &[
            Mechanism::ScramSha256,
            Mechanism::ScramSha1,
            Mechanism::CramMd5,
            Mechanism::Plain,
            Mechanism::Login,
        ]
    };
    let m = order.iter().copied().find(|&m| has(m))?;
    let why = match m {
        Mechanism::ScramSha256 | Mechanism::ScramSha1 => {
            "SCRAM keeps the password off the wire and makes the server prove it knows it"
        }
        Mechanism::CramMd5 if !tls => {
            "no SCRAM offered; without TLS, CRAM-MD5 at least keeps the password off the wire"
        }
        Mechanism::CramMd5 => "the only password mechanism offered that smtprobe supports",
        Mechanism::Plain => "no SCRAM offered; PLAIN inside TLS, one round trip",
        _ => "no SCRAM or PLAIN offered",
    };
    let list = offered.join(" ");
    Some((
        m,
        format!(
            "automatic mechanism choice: {} from the offered {list}: {why}",
            m.name()
        ),
    ))
}

/// The credential for AUTH. Its `Debug` names the kind, never the secret.
#[derive(Clone)]
pub enum Credential {
    /// A password (or app password) used with PLAIN or LOGIN.
    Password {
        /// The password.
        secret: Secret,
        /// The mechanism to use.
        choice: AuthChoice,
    },
    /// An OAuth 2.0 bearer token: XOAUTH2 when offered, else OAUTHBEARER (RFC 7628).
    OAuthToken(Secret),
    /// SASL EXTERNAL (RFC 4422 appendix A): the TLS client certificate is the
    /// credential; the user name, when not empty, is the authorization identity.
    External,
}

/// What to authenticate with. Its `Debug` shows the user, never the credential.
#[derive(Clone)]
pub struct AuthConfig {
    /// The user name, as typed (for Gmail, the full address).
    pub user: String,
    /// The password or token.
    pub credential: Credential,
}

/// The optional test message.
#[derive(Debug, Clone)]
pub struct MailConfig {
    /// MAIL FROM address.
    pub from: String,
    /// RCPT TO addresses (at least one).
    pub to: Vec<String>,
    /// The complete message (headers and body), LF or CRLF line ends; it is dot-stuffed
    /// and CRLF-normalised when sent.
    pub message: String,
}

/// Everything the session needs to know. Values are validated before the session
/// exists (see [`crate::protocol::command::check_line_safe`]). Its `Debug` redacts the
/// credential.
#[derive(Clone)]
pub struct SessionConfig {
    /// The EHLO name.
    pub helo: String,
    /// The connection's security mode. With `Implicit`, the transport has already
    /// completed the TLS handshake when the session starts.
    pub mode: TlsMode,
    /// Credentials; `None` skips the auth stage.
    pub auth: Option<AuthConfig>,
    /// Permit AUTH on a connection without TLS (`--allow-plaintext-auth`).
    pub allow_plaintext_auth: bool,
    /// The test message; `None` skips MAIL/RCPT/DATA.
    pub mail: Option<MailConfig>,
    /// Use RFC 2920 pipelining for MAIL/RCPT/DATA when the server offers it.
    pub pipelining: bool,
    /// Fresh random printable text for the SCRAM client nonce (RFC 5802 §5.1); the
    /// session reads no randomness itself (DESIGN habit 1).
    pub nonce: String,
    /// `--quit-after`: send QUIT once this stage passed.
    pub quit_after: Option<Stage>,
}

/// What the session asks the transport to do. Its `Debug` shows the length of a
/// [`Io::Transmit`], never its bytes (they may hold credentials).
#[derive(PartialEq)]
pub enum Io {
    /// Write these bytes to the connection. They may contain credentials: never log
    /// them; the matching [`Event::CommandSent`] holds the redacted form.
    Transmit(Vec<u8>),
    /// Perform the TLS handshake now, then call [`Session::handle_tls_established`] or
    /// [`Session::handle_tls_failed`].
    StartTls,
    /// The session is over ([`Event::Finished`] says how): write what is queued, then
    /// close the connection.
    Close,
}

/// A line the client sent, typed and already redacted: it never holds the wire bytes
/// of a credential (RFC 4954 AUTH lines keep only their `shown` form, see
/// [`sasl::Encoded`]).
#[derive(Debug, Clone, PartialEq)]
pub enum SentLine {
    /// An SMTP command; none of them carries a secret.
    Command(Command),
    /// An AUTH command or SASL response, as the transcript shows it (redacted).
    Sasl(String),
    /// The message content after DATA's 354 (RFC 5321 §4.1.1.4), by its size.
    Message {
        /// Lines in the message as given.
        lines: usize,
        /// Bytes on the wire, dot-stuffing and the final `.` included.
        bytes: usize,
    },
    /// The lone `.` that ends an empty message after a pipelined group failed
    /// (RFC 2920 §3.1).
    EmptyMessageEnd,
}

/// What happened, in the past tense: the transcript and the stage timings are made
/// from these (see [`crate::transcript::lines_of`]). `stage` is the stage a line
/// belongs to, `tls` whether it travelled inside TLS.
#[derive(Debug, Clone, PartialEq)]
pub enum Event {
    /// A stage began (the transport starts its timer).
    StageStarted(Stage),
    /// A stage passed.
    StagePassed(Stage),
    /// The client sent a line.
    CommandSent {
        /// The stage of the command (in a pipelined group, the one it belongs to).
        stage: Stage,
        /// True inside TLS.
        tls: bool,
        /// What was sent, redacted.
        line: SentLine,
    },
    /// A complete reply arrived; a SCRAM server signature (RFC 5802 §9) in it is
    /// already replaced by a redaction note.
    ReplyReceived {
        /// The stage of the command it answers.
        stage: Stage,
        /// True inside TLS.
        tls: bool,
        /// The reply.
        reply: Reply,
    },
    /// Server bytes that are not a reply where one was due (unparseable, unsolicited,
    /// injected after STARTTLS's 220): escaped and cut to [`EVIDENCE_BYTES`].
    BytesReceived {
        /// The stage running when they came.
        stage: Stage,
        /// True inside TLS.
        tls: bool,
        /// The bytes, escaped.
        shown: String,
    },
    /// Something the session noticed or decided, in words (a `*` transcript line).
    Noted {
        /// The stage it concerns.
        stage: Stage,
        /// True inside TLS.
        tls: bool,
        /// The note.
        note: String,
    },
    /// The session is over; `Err` carries the first failure. Always followed by
    /// [`Io::Close`].
    Finished(Result<(), Failure>),
}

impl std::fmt::Debug for Credential {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Credential::Password { secret, choice } => f
                .debug_struct("Password")
                .field("secret", secret)
                .field("choice", choice)
                .finish(),
            Credential::OAuthToken(token) => f.debug_tuple("OAuthToken").field(token).finish(),
            Credential::External => f.write_str("External"),
        }
    }
}

impl std::fmt::Debug for AuthConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AuthConfig")
            .field("user", &self.user)
            .field("credential", &self.credential)
            .finish()
    }
}

impl std::fmt::Debug for SessionConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SessionConfig")
            .field("helo", &self.helo)
            .field("mode", &self.mode)
            .field("auth", &self.auth)
            .field("allow_plaintext_auth", &self.allow_plaintext_auth)
            .field("mail", &self.mail)
            .field("pipelining", &self.pipelining)
            .field("quit_after", &self.quit_after)
            .finish_non_exhaustive()
    }
}

impl std::fmt::Debug for Io {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            // The bytes may be an AUTH payload: the length is enough to debug with, and
            // the matching `CommandSent` holds the redacted text.
            Io::Transmit(bytes) => write!(f, "Transmit(<{} bytes>)", bytes.len()),
            Io::StartTls => f.write_str("StartTls"),
            Io::Close => f.write_str("Close"),
        }
    }
}

impl std::fmt::Debug for Session {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Session")
            .field("cfg", &self.cfg)
            .field("state", &self.state)
            .field("tls", &self.tls)
            .field("found", &self.found)
            .field("events", &self.events)
            .field("io", &self.io)
            .finish_non_exhaustive()
    }
}

/// What the session waits for, each state with the data only it needs. Transitions
/// consume the old state and return the next one (DESIGN habit 2).
enum State {
    AwaitGreeting,
    /// EHLO sent; `after_starttls` for the one RFC 3207 §4.2 requires after the
    /// handshake (which must succeed: no HELO fallback, no second STARTTLS).
    AwaitEhlo {
        after_starttls: bool,
    },
    /// HELO sent after EHLO was refused with 500/502.
    AwaitHelo,
    AwaitStartTls,
    AwaitTlsHandshake,
    /// The AUTH exchange; only built from an [`AuthConfig`].
    Auth(AuthExchange),
    /// We cancelled the exchange with `*` (RFC 4954 §4); the failure is decided, the
    /// server's 501 is awaited before QUIT.
    AuthCancelled(Failure),
    /// Replies to MAIL/RCPT/DATA in order; only built from a [`MailConfig`].
    Transaction(Transaction),
    AwaitDataEnd,
    /// A lone "." was sent after a pipelined group failed; then QUIT with this failure.
    AwaitEmptyDataEnd(Failure),
    /// QUIT sent; the outcome is decided, the reply is awaited only out of courtesy.
    AwaitQuit(Result<(), Failure>),
    Done,
}

impl State {
    /// The stage running in this state: the one a timeout, a close or unexpected bytes
    /// belong to.
    fn stage(&self) -> Stage {
        match self {
            State::AwaitGreeting => Stage::Greeting,
            State::AwaitEhlo { .. } | State::AwaitHelo => Stage::Ehlo,
            State::AwaitStartTls => Stage::Starttls,
            State::AwaitTlsHandshake => Stage::Tls,
            State::Auth(_) | State::AuthCancelled(_) => Stage::Auth,
            State::Transaction(t) => t.stage,
            State::AwaitDataEnd | State::AwaitEmptyDataEnd(_) => Stage::Data,
            State::AwaitQuit(_) | State::Done => Stage::Quit,
        }
    }
}

/// Hand-written: the AUTH states hold the password, so only the step's name shows.
impl std::fmt::Debug for State {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            State::AwaitGreeting => f.write_str("AwaitGreeting"),
            State::AwaitEhlo { after_starttls } => f
                .debug_struct("AwaitEhlo")
                .field("after_starttls", after_starttls)
                .finish(),
            State::AwaitHelo => f.write_str("AwaitHelo"),
            State::AwaitStartTls => f.write_str("AwaitStartTls"),
            State::AwaitTlsHandshake => f.write_str("AwaitTlsHandshake"),
            State::Auth(a) => f.debug_tuple("Auth").field(&a.step.name()).finish(),
            State::AuthCancelled(failure) => f.debug_tuple("AuthCancelled").field(failure).finish(),
            State::Transaction(t) => f
                .debug_struct("Transaction")
                .field("outstanding", &t.outstanding)
                .field("failure", &t.failure)
                .field("accepted_rcpts", &t.accepted_rcpts)
                .finish_non_exhaustive(),
            State::AwaitDataEnd => f.write_str("AwaitDataEnd"),
            State::AwaitEmptyDataEnd(failure) => {
                f.debug_tuple("AwaitEmptyDataEnd").field(failure).finish()
            }
            State::AwaitQuit(outcome) => f.debug_tuple("AwaitQuit").field(outcome).finish(),
            State::Done => f.write_str("Done"),
        }
    }
}

/// An AUTH exchange under way (RFC 4954 §4): who authenticates, and the step.
struct AuthExchange {
    user: String,
    step: AuthStep,
}

/// The steps of each mechanism. The password travels in the steps that still need it.
enum AuthStep {
    /// The credentials are sent (PLAIN, LOGIN's password, the CRAM-MD5 response,
    /// EXTERNAL, or SCRAM's empty answer after the verified signature): expecting 235.
    CredentialsSent,
    /// `AUTH PLAIN` sent without initial response: expecting an empty 334.
    PlainAwaitChallenge(Secret),
    /// `AUTH LOGIN` sent: expecting the first 334 (user name).
    LoginAwaitUser(Secret),
    /// User name sent: expecting the second 334 (password).
    LoginAwaitPassword(Secret),
    /// `AUTH CRAM-MD5` sent: expecting the 334 challenge.
    CramAwaitChallenge(Secret),
    /// SCRAM client-first sent: expecting the server-first challenge.
    ScramAwaitFirst(sasl::ScramStart, Secret),
    /// SCRAM client-final sent: expecting the server-final (334 or in the 235).
    ScramAwaitFinal(sasl::ScramProof),
    /// The bearer token sent (XOAUTH2 or OAUTHBEARER).
    OAuthSent(Mechanism),
    /// Error challenge answered; expecting the final failure.
    OAuthAwaitFinal { challenge: String },
}

impl AuthStep {
    fn name(&self) -> &'static str {
        match self {
            AuthStep::CredentialsSent => "CredentialsSent",
            AuthStep::PlainAwaitChallenge(_) => "PlainAwaitChallenge",
            AuthStep::LoginAwaitUser(_) => "LoginAwaitUser",
            AuthStep::LoginAwaitPassword(_) => "LoginAwaitPassword",
            AuthStep::CramAwaitChallenge(_) => "CramAwaitChallenge",
            AuthStep::ScramAwaitFirst(..) => "ScramAwaitFirst",
            AuthStep::ScramAwaitFinal(_) => "ScramAwaitFinal",
            AuthStep::OAuthSent(_) => "OAuthSent",
            AuthStep::OAuthAwaitFinal { .. } => "OAuthAwaitFinal",
        }
    }

    /// Still before the credentials: a success reply here proves nothing.
    fn before_credentials(&self) -> bool {
        matches!(
            self,
            AuthStep::PlainAwaitChallenge(_)
                | AuthStep::LoginAwaitUser(_)
                | AuthStep::LoginAwaitPassword(_)
                | AuthStep::CramAwaitChallenge(_)
                | AuthStep::ScramAwaitFirst(..)
        )
    }
}

/// The mail transaction (RFC 5321 §3.3), pipelined or one command at a time.
struct Transaction {
    mail: MailConfig,
    /// Stages of MAIL/RCPT/DATA commands whose replies are outstanding, in order
    /// (RFC 2920 §3.1: replies come in command order).
    outstanding: VecDeque<Stage>,
    /// The first failure (later replies of a pipelined group are still consumed).
    failure: Option<Failure>,
    /// Recipients the server accepted so far.
    accepted_rcpts: usize,
    /// The stage whose reply was handled last, or whose command was sent.
    stage: Stage,
}
/// The longest wait for QUIT's reply (see [`Session::poll_timeout`]).
pub const QUIT_GRACE: Duration = Duration::from_secs(2);

/// What a session waits for, so the transport knows which deadline applies.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Wait {
    /// The greeting or the reply to a command of this stage.
    Reply(Stage),
    /// Only QUIT's reply: the outcome is decided, a short grace applies.
    QuitReply,
    /// The TLS handshake the transport was asked to run.
    TlsHandshake,
}

/// What the session learned on the way, reported once it is over.
#[derive(Debug, Default)]
struct Findings {
    greeting: Option<Reply>,
    /// From the last EHLO (after TLS, where TLS is used).
    caps: Option<Capabilities>,
    mechanism: Option<Mechanism>,
    mechanism_reason: Option<String>,
    authenticated: bool,
    message_accepted: bool,
    helo_fallback: bool,
    quit_early: Option<Stage>,
    size_note: Option<String>,
}

/// The sans-IO client session. Its `Debug` shows where the session is, never the
/// credential or the bytes queued for the wire.
pub struct Session {
    cfg: SessionConfig,
    state: State,
    parser: ReplyParser,
    events: VecDeque<Event>,
    io: VecDeque<Io>,
    /// The connection is encrypted: from the start with implicit TLS, else once the
    /// handshake after STARTTLS completed. Every line is tagged with it.
    tls: bool,
    found: Findings,
}

impl Session {
    /// A session at its start: waiting for the server's greeting.
    pub fn new(cfg: SessionConfig) -> Session {
        let tls = cfg.mode == TlsMode::Implicit;
        let mut s = Session {
            cfg,
            state: State::AwaitGreeting,
            parser: ReplyParser::new(),
            events: VecDeque::new(),
            io: VecDeque::new(),
            tls,
            found: Findings::default(),
        };
        s.events.push_back(Event::StageStarted(Stage::Greeting));
        s
    }

    /// The next thing that happened, or `None`. Drain it after every `handle_*` call,
    /// before [`Session::poll_io`].
    pub fn poll_event(&mut self) -> Option<Event> {
        self.events.pop_front()
    }

    /// The next I/O request, or `None` when the session needs input.
    pub fn poll_io(&mut self) -> Option<Io> {
        self.io.pop_front()
    }

    /// The stage currently running (the one a timeout or close belongs to).
    pub fn stage(&self) -> Stage {
        self.state.stage()
    }

    /// True once [`Event::Finished`] has been queued.
    pub fn is_done(&self) -> bool {
        matches!(self.state, State::Done)
    }

    /// What the session waits for now; `None` once it has finished.
    pub fn waiting_for(&self) -> Option<Wait> {
        Some(match &self.state {
            State::Done => return None,
            State::AwaitQuit(_) => Wait::QuitReply,
            State::AwaitTlsHandshake => Wait::TlsHandshake,
            other => Wait::Reply(other.stage()),
        })
    }

    /// How long the current wait may last, counted from the last command sent, given
    /// the check's per-wait `timeout`; `None` once the session has finished. QUIT's
    /// reply gets at most [`QUIT_GRACE`]: the outcome is already decided, and RFC 5321
    /// §4.1.1.10 lets the client close once it has sent QUIT.
    pub fn poll_timeout(&self, timeout: Duration) -> Option<Duration> {
        Some(match self.waiting_for()? {
            Wait::QuitReply => timeout.min(QUIT_GRACE),
            Wait::Reply(_) | Wait::TlsHandshake => timeout,
        })
    }

    /// True when the connection is encrypted.
    pub fn is_tls(&self) -> bool {
        self.tls
    }

    /// The server's greeting, once received.
    pub fn greeting(&self) -> Option<&Reply> {
        self.found.greeting.as_ref()
    }

    /// The capabilities from the last EHLO (after TLS, where TLS is used).
    pub fn capabilities(&self) -> Option<&Capabilities> {
        self.found.caps.as_ref()
    }

    /// The SASL mechanism used, once AUTH has been sent.
    pub fn mechanism(&self) -> Option<Mechanism> {
        self.found.mechanism
    }

    /// True when the server accepted the credentials.
    pub fn authenticated(&self) -> bool {
        self.found.authenticated
    }

    /// True when the test message was accepted for delivery.
    pub fn message_accepted(&self) -> bool {
        self.found.message_accepted
    }

    /// Why `--auth auto` chose its mechanism, once AUTH was sent.
    pub fn mechanism_reason(&self) -> Option<&str> {
        self.found.mechanism_reason.as_deref()
    }

    /// True when EHLO was refused and HELO accepted (the server is not ESMTP).
    pub fn helo_fallback(&self) -> bool {
        self.found.helo_fallback
    }

    /// The stage after which `--quit-after` ended the session, when it did.
    pub fn quit_early(&self) -> Option<Stage> {
        self.found.quit_early
    }

    /// The SIZE the server announced and whether the message fits (RFC 1870), once the
    /// transaction started.
    pub fn size_note(&self) -> Option<&str> {
        self.found.size_note.as_deref()
    }

    /// Bytes arrived from the server.
    pub fn handle_input(&mut self, bytes: &[u8]) {
        if matches!(self.state, State::Done) {
            return;
        }
        if matches!(self.state, State::AwaitTlsHandshake) {
            // The transport owns the stream during the handshake; bytes here mean the
            // server talked past its 220 (RFC 3207 §5).
            let shown = excerpt(bytes);
            self.bytes_received(Stage::Tls, shown.clone());
            self.state = self.finish(Err(Failure::StartTlsInjection { bytes: shown }));
            return;
        }
        self.parser.push(bytes);
        while !matches!(self.state, State::Done | State::AwaitTlsHandshake) {
            match self.parser.next_reply() {
                None => break,
                Some(Err(error)) => self.on_malformed(error),
                Some(Ok(reply)) => {
                    self.reply_received(&reply);
                    let state = std::mem::replace(&mut self.state, State::Done);
                    self.state = self.on_reply(state, reply);
                }
            }
        }
    }

    /// A reply the parser refused: the end of the session (QUIT's reply excepted: the
    /// outcome is decided then).
    fn on_malformed(&mut self, error: ReplyError) {
        self.state = match std::mem::replace(&mut self.state, State::Done) {
            State::AwaitQuit(outcome) => self.finish(outcome),
            state => {
                let stage = state.stage();
                let shown = match &error {
                    ReplyError::Malformed { line, .. } => line.clone(),
                    ReplyError::LineTooLong { start } => format!("{start}…"),
                    ReplyError::ReplyTooLarge { .. } => "…".to_owned(),
                };
                self.bytes_received(stage, shown);
                self.note(stage, format!("unparseable reply: {error}"));
                self.finish(Err(Failure::Malformed { stage, error }))
            }
        };
    }

    /// Reports a reply, tagged with the stage of the command it answers: the oldest
    /// outstanding MAIL/RCPT/DATA (RFC 2920: replies come in command order), and QUIT's
    /// once QUIT was sent, though the reported stage stays the one that failed. A SCRAM
    /// server-final-message (`v=`) is redacted here, where it is captured: with the
    /// server-first-message it is enough to guess the password offline (RFC 5802 §9).
    fn reply_received(&mut self, reply: &Reply) {
        let stage = match &self.state {
            State::Transaction(t) => t.outstanding.front().copied().unwrap_or(t.stage),
            State::AwaitQuit(_) => Stage::Quit,
            other => other.stage(),
        };
        let tls = self.tls;
        let scram_final = matches!(
            &self.state,
            State::Auth(AuthExchange {
                step: AuthStep::ScramAwaitFinal(_),
                ..
            })
        );
        let event = match scram_final.then(|| scram_redacted(reply)).flatten() {
            None => Event::ReplyReceived {
                stage,
                tls,
                reply: reply.clone(),
            },
            // The note is itself a valid reply line.
            Some(shown) => match Reply::from_lines(&[&shown]) {
                Ok(reply) => Event::ReplyReceived { stage, tls, reply },
                Err(_) => Event::BytesReceived { stage, tls, shown },
            },
        };
        self.events.push_back(event);
    }

    /// The TLS handshake after STARTTLS completed: send EHLO again (RFC 3207 §4.2).
    pub fn handle_tls_established(&mut self) {
        if !matches!(self.state, State::AwaitTlsHandshake) {
            return;
        }
        self.tls = true;
        self.mark_passed(Stage::Tls);
        self.state = match self.quit_here(Stage::Tls) {
            Some(quitting) => quitting,
            None => self.send_ehlo(true),
        };
    }

    /// The TLS handshake failed: implicit TLS before the greeting (RFC 8314 §3) or the
    /// one after STARTTLS's 220 (RFC 3207 §4). `failure` is the transport's typed
    /// verdict with its evidence (the rustls error's kind, the certificate);
    /// `detail` says it in words for the transcript. The check ends here, without
    /// QUIT: there is no channel left to send it on.
    pub fn handle_tls_failed(&mut self, failure: Failure, detail: &str) {
        if matches!(self.state, State::Done) {
            return;
        }
        // The line belongs to the TLS stage and was not sent under TLS, whichever
        // mode: the handshake never completed.
        self.events.push_back(Event::Noted {
            stage: Stage::Tls,
            tls: false,
            note: format!("TLS handshake failed: {detail}"),
        });
        self.state = self.finish(Err(failure));
    }

    /// Writing to the server failed (reset, timed out, closed): the session cannot be
    /// heard any more, which for its outcome is the same as the server closing.
    pub fn handle_write_failed(&mut self, detail: &str) {
        if matches!(self.state, State::Done) {
            return;
        }
        self.note(self.state.stage(), format!("write failed: {detail}"));
        self.handle_eof();
    }

    /// Reading from the server failed. `alert` is set when the failure is a TLS alert
    /// the server sent after the handshake: its typed verdict, not a silent close.
    pub fn handle_read_failed(&mut self, detail: &str, alert: Option<Failure>) {
        if matches!(self.state, State::Done) {
            return;
        }
        self.note(self.state.stage(), format!("read failed: {detail}"));
        match alert {
            Some(failure) => self.state = self.finish(Err(failure)),
            None => self.handle_eof(),
        }
    }

    /// The server closed the connection.
    pub fn handle_eof(&mut self) {
        self.state = match std::mem::replace(&mut self.state, State::Done) {
            State::Done => State::Done,
            State::AwaitQuit(outcome) => self.finish(outcome),
            state => {
                let stage = state.stage();
                let partial = self.parser.discard();
                let partial = (!partial.is_empty()).then(|| excerpt(&partial));
                self.note(stage, "connection closed by server".into());
                self.finish(Err(Failure::Closed { stage, partial }))
            }
        };
    }

    /// The deadline for the current wait passed.
    pub fn handle_timeout(&mut self) {
        self.state = match std::mem::replace(&mut self.state, State::Done) {
            State::Done => State::Done,
            State::AwaitQuit(outcome) => {
                self.note(Stage::Quit, "no reply to QUIT; closing anyway".into());
                self.finish(outcome)
            }
            state => {
                let stage = state.stage();
                self.note(stage, "no reply before the deadline".into());
                self.finish(Err(Failure::Timeout { stage }))
            }
        };
    }

    // ---- reply handling: each returns the next state --------------------------------

    fn on_reply(&mut self, state: State, reply: Reply) -> State {
        match state {
            State::AwaitGreeting => self.on_greeting(reply),
            State::AwaitEhlo { after_starttls } => self.on_ehlo(reply, after_starttls),
            State::AwaitHelo => self.on_helo(reply),
            State::AwaitStartTls => self.on_starttls(reply),
            State::Auth(exchange) => self.on_auth(exchange, reply),
            State::AuthCancelled(failure) => match self.stop_if_server_closing(&reply, Stage::Auth)
            {
                Some(stop) => stop,
                None => self.fail_and_quit(failure),
            },
            State::Transaction(t) => self.on_transaction(t, reply),
            State::AwaitDataEnd => self.on_data_end(&reply),
            State::AwaitEmptyDataEnd(failure) if reply.code() == 421 => {
                // RFC 5321 §3.8: the server is closing; no QUIT.
                self.finish(Err(failure))
            }
            State::AwaitEmptyDataEnd(failure) => self.fail_and_quit(failure),
            State::AwaitQuit(outcome) => self.finish(outcome),
            // The loop in `handle_input` stops in these states.
            state @ (State::AwaitTlsHandshake | State::Done) => state,
        }
    }

    /// Any reply code 421 means the server is closing the channel (RFC 5321 §3.8):
    /// the session ends at once, without QUIT.
    fn stop_if_server_closing(&mut self, reply: &Reply, stage: Stage) -> Option<State> {
        (reply.code() == 421).then(|| {
            self.finish(Err(Failure::Reply {
                stage,
                reply: reply.clone(),
            }))
        })
    }

    /// `None` when the reply's code is `want`; else the state that ends the session
    /// (421: at once, RFC 5321 §3.8; anything else: QUIT).
    fn stop_unless_code(&mut self, reply: &Reply, stage: Stage, want: u16) -> Option<State> {
        if let Some(stop) = self.stop_if_server_closing(reply, stage) {
            return Some(stop);
        }
        (reply.code() != want).then(|| {
            self.fail_and_quit(Failure::Reply {
                stage,
                reply: reply.clone(),
            })
        })
    }

    fn on_greeting(&mut self, reply: Reply) -> State {
        // RFC 5321 §3.1: a 554 greeting means "no service here"; we QUIT politely.
        let stop = self.stop_unless_code(&reply, Stage::Greeting, 220);
        self.found.greeting = Some(reply);
        if let Some(stop) = stop {
            return stop;
        }
        self.mark_passed(Stage::Greeting);
        // Implicit TLS was done before the greeting; quitting after TLS means here.
        if let Some(quitting) = self.quit_here(Stage::Greeting) {
            return quitting;
        }
        if self.cfg.mode == TlsMode::Implicit {
            if let Some(quitting) = self.quit_here(Stage::Tls) {
                return quitting;
            }
        }
        self.unless_out_of_turn(Stage::Greeting, |s| s.send_ehlo(false))
    }

    fn on_ehlo(&mut self, reply: Reply, after_starttls: bool) -> State {
        if let Some(stop) = self.stop_if_server_closing(&reply, Stage::Ehlo) {
            return stop;
        }
        // Only the first EHLO (the one after STARTTLS must succeed, RFC 3207 §4.2).
        if matches!(reply.code(), 500 | 502) && !after_starttls {
            // RFC 5321 §4.1.1.1 / §3.2: a server that does not know EHLO answers 500 or
            // 502; the client may then use HELO, once, and gets no extensions.
            self.found.helo_fallback = true;
            self.note(
                Stage::Ehlo,
                format!(
                    "EHLO refused with {}: trying HELO once (the server may not speak ESMTP)",
                    reply.code()
                ),
            );
            return self.unless_out_of_turn(Stage::Ehlo, |s| {
                s.send_command(Stage::Ehlo, Command::Helo(s.cfg.helo.clone()));
                State::AwaitHelo
            });
        }
        if reply.code() != 250 {
            return self.fail_and_quit(Failure::Reply {
                stage: Stage::Ehlo,
                reply,
            });
        }
        let caps = Capabilities::from_ehlo(&reply);
        let starttls_offered = caps.has("STARTTLS");
        self.found.caps = Some(caps);
        self.mark_passed(Stage::Ehlo);
        if !after_starttls {
            if let Some(quitting) = self.quit_here(Stage::Ehlo) {
                return quitting;
            }
            if let Some(quitting) = self.quit_after_tls_without_tls() {
                return quitting;
            }
        }
        // The EHLO after STARTTLS runs inside TLS, so this is only ever the first one:
        // STARTTLS is never sent twice (RFC 3207 §4.2).
        if self.cfg.mode == TlsMode::Starttls && !self.tls {
            if !starttls_offered {
                return self.fail_and_quit(Failure::StartTlsNotOffered);
            }
            return self.unless_out_of_turn(Stage::Ehlo, |s| {
                s.start_stage(Stage::Starttls);
                s.send_command(Stage::Starttls, Command::StartTls);
                State::AwaitStartTls
            });
        }
        self.unless_out_of_turn(Stage::Ehlo, Self::after_ehlo)
    }

    fn on_helo(&mut self, reply: Reply) -> State {
        if let Some(stop) = self.stop_unless_code(&reply, Stage::Ehlo, 250) {
            return stop;
        }
        self.mark_passed(Stage::Ehlo);
        self.found.caps = Some(Capabilities::default());
        self.note(
            Stage::Ehlo,
            "HELO accepted: the server is not ESMTP (no STARTTLS, no AUTH, no extensions)".into(),
        );
        if let Some(quitting) = self.quit_here(Stage::Ehlo) {
            return quitting;
        }
        let needed = if self.cfg.mode == TlsMode::Starttls {
            Some("STARTTLS")
        } else if self.cfg.auth.is_some() {
            Some("AUTH")
        } else {
            None
        };
        match needed {
            Some(needed) => self.fail_and_quit(Failure::NotEsmtp { needed }),
            None => self.unless_out_of_turn(Stage::Ehlo, Self::after_ehlo),
        }
    }

    fn on_starttls(&mut self, reply: Reply) -> State {
        if let Some(stop) = self.stop_unless_code(&reply, Stage::Starttls, 220) {
            return stop;
        }
        if !self.parser.is_idle() {
            // RFC 3207 §5: anything after the 220, before the handshake, may be an
            // attacker's injection. Abort; never use it.
            let injected = excerpt(&self.parser.discard());
            self.bytes_received(Stage::Starttls, injected.clone());
            self.note(
                Stage::Starttls,
                "bytes after the 220 to STARTTLS, before TLS: aborting".into(),
            );
            return self.finish(Err(Failure::StartTlsInjection { bytes: injected }));
        }
        self.mark_passed(Stage::Starttls);
        // RFC 3207 §4.2: discard all knowledge obtained before TLS.
        self.found.caps = None;
        self.parser = ReplyParser::new();
        self.start_stage(Stage::Tls);
        self.io.push_back(Io::StartTls);
        State::AwaitTlsHandshake
    }

    /// After EHLO (or HELO): AUTH when credentials are configured, else the
    /// transaction.
    fn after_ehlo(&mut self) -> State {
        match self.cfg.auth.clone() {
            Some(auth) => self.begin_auth(auth),
            None => self.after_auth(),
        }
    }

    /// The mechanism for this credential among those offered, or the failure saying
    /// why there is none.
    fn choose_mechanism(
        &mut self,
        credential: &Credential,
        offered: Vec<String>,
    ) -> Result<Mechanism, Box<Failure>> {
        let has = |m: Mechanism| offered.iter().any(|o| o.eq_ignore_ascii_case(m.name()));
        let mech = match credential {
            Credential::Password {
                choice: AuthChoice::Auto,
                ..
            } => pick_mechanism(&offered, self.tls).map(|(m, why)| {
                self.found.mechanism_reason = Some(why);
                m
            }),
            Credential::Password { choice, .. } => choice.forced().filter(|&m| has(m)),
            Credential::OAuthToken(_) if has(Mechanism::XOAuth2) => Some(Mechanism::XOAuth2),
            Credential::OAuthToken(_) if has(Mechanism::OAuthBearer) => {
                Some(Mechanism::OAuthBearer)
            }
            Credential::OAuthToken(_) => None,
            Credential::External => has(Mechanism::External).then_some(Mechanism::External),
        };
        mech.ok_or_else(|| {
            let wanted = match credential {
                Credential::Password { choice, .. } => choice.forced().map(|m| m.name().to_owned()),
                Credential::OAuthToken(_) => Some("XOAUTH2 or OAUTHBEARER".to_owned()),
                Credential::External => Some("EXTERNAL".to_owned()),
            };
            Box::new(Failure::MechanismUnsupported { wanted, offered })
        })
    }

    fn begin_auth(&mut self, auth: AuthConfig) -> State {
        self.start_stage(Stage::Auth);
        if !self.tls && !self.cfg.allow_plaintext_auth {
            self.note(
                Stage::Auth,
                "not sending credentials over an unencrypted connection (use TLS, or, on a lab server, the plaintext-authentication setting)".into(),
            );
            return self.fail_and_quit(Failure::PlaintextAuthRefused);
        }
        let caps = self.found.caps.clone().unwrap_or_default();
        if !caps.offers_auth() {
            return self.fail_and_quit(Failure::AuthNotOffered {
                tls: self.tls,
                starttls_offered: caps.has("STARTTLS"),
            });
        }
        let mech = match self.choose_mechanism(&auth.credential, caps.auth_mechanisms()) {
            Ok(m) => m,
            Err(failure) => return self.fail_and_quit(*failure),
        };
        if let Some(why) = self.found.mechanism_reason.clone() {
            self.note(Stage::Auth, why);
        }
        self.found.mechanism = Some(mech);
        let AuthConfig { user, credential } = auth;
        let step = self.send_first_auth_line(&user, credential, mech);
        State::Auth(AuthExchange { user, step })
    }

    /// Sends the AUTH command of `mech` (with its initial response where the mechanism
    /// has one, RFC 4954 §4) and returns the step that awaits the server's answer.
    fn send_first_auth_line(
        &mut self,
        user: &str,
        credential: Credential,
        mech: Mechanism,
    ) -> AuthStep {
        match (credential, mech) {
            (Credential::Password { secret, .. }, Mechanism::Plain) => {
                match sasl::plain_initial(user, &secret) {
                    Some(enc) => {
                        self.send_encoded(enc);
                        AuthStep::CredentialsSent
                    }
                    None => {
                        self.send_encoded(sasl::plain_command_without_ir());
                        AuthStep::PlainAwaitChallenge(secret)
                    }
                }
            }
            (Credential::Password { secret, .. }, Mechanism::CramMd5) => {
                self.send_encoded(sasl::bare_command(Mechanism::CramMd5));
                AuthStep::CramAwaitChallenge(secret)
            }
            (
                Credential::Password { secret, .. },
                Mechanism::ScramSha1 | Mechanism::ScramSha256,
            ) => {
                let hash = if mech == Mechanism::ScramSha1 {
                    sasl::ScramHash::Sha1
                } else {
                    sasl::ScramHash::Sha256
                };
                let (enc, start) = sasl::scram_initial(hash, user, &self.cfg.nonce);
                self.send_encoded(enc);
                AuthStep::ScramAwaitFirst(start, secret)
            }
            (Credential::Password { secret, .. }, _) => {
                self.send_encoded(sasl::login_command());
                AuthStep::LoginAwaitUser(secret)
            }
            (Credential::External, _) => {
                self.send_encoded(sasl::external_initial(user));
                AuthStep::CredentialsSent
            }
            (Credential::OAuthToken(token), Mechanism::OAuthBearer) => {
                self.send_encoded(sasl::oauthbearer_initial(user, &token));
                AuthStep::OAuthSent(Mechanism::OAuthBearer)
            }
            (Credential::OAuthToken(token), _) => {
                self.send_encoded(sasl::xoauth2_initial(user, &token));
                AuthStep::OAuthSent(Mechanism::XOAuth2)
            }
        }
    }

    /// One reply of the AUTH exchange (RFC 4954 §4): the rules common to every
    /// mechanism here; a mechanism's own steps in `login_step`, `cram_step`,
    /// `scram_first_step`, `scram_final_step` and `oauth_error_step`.
    fn on_auth(&mut self, exchange: AuthExchange, reply: Reply) -> State {
        if let Some(stop) = self.stop_if_server_closing(&reply, Stage::Auth) {
            return stop;
        }
        let AuthExchange { user, step } = exchange;
        let code = reply.code();
        match step {
            AuthStep::CredentialsSent | AuthStep::OAuthSent(_) if code == 235 => {
                self.credentials_accepted()
            }
            // A 2yz before the credentials were sent proves nothing about them.
            step if step.before_credentials() && reply.is_positive() => {
                self.fail_and_quit(Failure::AuthProtocol {
                    reply,
                    reason: "the server reported success before the credentials were sent",
                })
            }
            AuthStep::CredentialsSent if code == 334 => self.cancel(Failure::AuthProtocol {
                reply,
                reason: "the server asked for more after the credentials were sent",
            }),
            AuthStep::PlainAwaitChallenge(secret) if code == 334 => {
                self.send_encoded(sasl::plain_response(&user, &secret));
                self.auth_step(user, AuthStep::CredentialsSent)
            }
            step @ (AuthStep::LoginAwaitUser(_) | AuthStep::LoginAwaitPassword(_))
                if code == 334 =>
            {
                self.login_step(user, step, reply)
            }
            AuthStep::CramAwaitChallenge(secret) if code == 334 => {
                self.cram_step(user, &secret, reply)
            }
            AuthStep::ScramAwaitFirst(start, secret) if code == 334 => {
                self.scram_first_step(user, start, &secret, reply)
            }
            AuthStep::ScramAwaitFinal(proof) if code == 334 || code == 235 => {
                self.scram_final_step(user, &proof, reply)
            }
            AuthStep::OAuthSent(mech) if code == 334 => self.oauth_error_step(user, mech, reply),
            // RFC 7628 §3.2.2: after the error challenge and the client's dummy
            // response the server must fail; a success then contradicts its own error.
            AuthStep::OAuthAwaitFinal { .. } if reply.is_positive() => {
                self.fail_and_quit(Failure::AuthProtocol {
                    reply,
                    reason: "the server reported success after its own OAuth error challenge",
                })
            }
            // A second challenge: the exchange is still open, so cancel it (RFC 4954 §4)
            // rather than send QUIT as if it were the response.
            AuthStep::OAuthAwaitFinal { challenge } if code == 334 => {
                self.cancel(Failure::OAuthRejected { challenge, reply })
            }
            AuthStep::OAuthAwaitFinal { challenge } => {
                self.fail_and_quit(Failure::OAuthRejected { challenge, reply })
            }
            _ => self.fail_and_quit(Failure::Reply {
                stage: Stage::Auth,
                reply,
            }),
        }
    }

    fn auth_step(&mut self, user: String, step: AuthStep) -> State {
        State::Auth(AuthExchange { user, step })
    }

    /// The server accepted the credentials (235).
    fn credentials_accepted(&mut self) -> State {
        self.found.authenticated = true;
        self.mark_passed(Stage::Auth);
        if let Some(quitting) = self.quit_here(Stage::Auth) {
            return quitting;
        }
        self.unless_out_of_turn(Stage::Auth, Self::after_auth)
    }

    /// LOGIN answers by step, not by prompt text (servers word prompts differently),
    /// but the challenge must at least be valid base64.
    fn login_step(&mut self, user: String, step: AuthStep, reply: Reply) -> State {
        let text = reply.raw_texts().next().unwrap_or(&[]);
        if sasl::decode_challenge(text).is_none() {
            return self.cancel(Failure::AuthProtocol {
                reply,
                reason: "the server's 334 challenge is not valid base64",
            });
        }
        match step {
            AuthStep::LoginAwaitUser(secret) => {
                self.send_encoded(sasl::login_username(&user));
                self.auth_step(user, AuthStep::LoginAwaitPassword(secret))
            }
            AuthStep::LoginAwaitPassword(secret) => {
                self.send_encoded(sasl::login_password(&secret));
                self.auth_step(user, AuthStep::CredentialsSent)
            }
            other => self.auth_step(user, other),
        }
    }

    /// RFC 2195 §2: the response is the user and the keyed MD5 of the challenge.
    fn cram_step(&mut self, user: String, secret: &Secret, reply: Reply) -> State {
        let text = reply.raw_texts().next().unwrap_or(&[]);
        match sasl::decode_challenge(text) {
            Some(challenge) if !challenge.is_empty() => {
                self.send_encoded(sasl::cram_md5_response(&user, secret, &challenge));
                self.auth_step(user, AuthStep::CredentialsSent)
            }
            _ => self.cancel(Failure::AuthProtocol {
                reply,
                reason: "the server's CRAM-MD5 challenge is empty or not valid base64",
            }),
        }
    }

    /// RFC 5802 §3: the server-first-message gives salt, iterations and nonce; the
    /// client answers with its proof, or cancels when they are not acceptable.
    fn scram_first_step(
        &mut self,
        user: String,
        start: sasl::ScramStart,
        secret: &Secret,
        reply: Reply,
    ) -> State {
        let text = reply.raw_texts().next().unwrap_or(&[]);
        let answer = match sasl::decode_challenge(text) {
            Some(first) => start.respond(&first, secret),
            None => Err(sasl::ScramError::BadServerFirst("is not valid base64")),
        };
        match answer {
            Ok((enc, proof)) => {
                self.send_encoded(enc);
                self.auth_step(user, AuthStep::ScramAwaitFinal(proof))
            }
            Err(e) => {
                self.note(Stage::Auth, format!("SCRAM: {e}; cancelling"));
                self.cancel(Failure::AuthProtocol {
                    reply,
                    reason: scram_reason(&e),
                })
            }
        }
    }

    /// RFC 4954 §4: the server-final-message comes as a 334 challenge (the client
    /// answers with an empty line), or as the text of the 235. Only a verified server
    /// signature makes a 235 a success (RFC 5802 §3).
    fn scram_final_step(&mut self, user: String, proof: &sasl::ScramProof, reply: Reply) -> State {
        let code = reply.code();
        let text = reply.raw_texts().next().unwrap_or(&[]);
        let verdict = match sasl::decode_challenge(text) {
            Some(v) if !v.is_empty() => proof.verify(&v),
            _ => Err(sasl::ScramError::BadServerFinal),
        };
        match verdict {
            Ok(()) => {
                self.note(
                    Stage::Auth,
                    "SCRAM: the server's signature verified: it knows the password".into(),
                );
                if code == 334 {
                    self.send_encoded(sasl::empty_response());
                    self.auth_step(user, AuthStep::CredentialsSent)
                } else {
                    self.credentials_accepted()
                }
            }
            Err(error) => {
                self.note(Stage::Auth, format!("SCRAM: {error}"));
                // The evidence keeps the reply as the transcript shows it.
                let reply = match scram_redacted(&reply) {
                    Some(shown) => Reply::from_lines(&[shown]).unwrap_or(reply),
                    None => reply,
                };
                let failure = Failure::ScramServerUnverified { error, reply };
                if code == 334 {
                    self.cancel(failure)
                } else {
                    self.fail_and_quit(failure)
                }
            }
        }
    }

    /// Google sends base64 JSON describing the error; RFC 7628 §3.2.2: the client
    /// answers (XOAUTH2: empty line; OAUTHBEARER: %x01) and the server then sends the
    /// final failure.
    fn oauth_error_step(&mut self, user: String, mech: Mechanism, reply: Reply) -> State {
        let text = reply.raw_texts().next().unwrap_or(&[]);
        let challenge = sasl::OAuthChallenge::decode(text).shown;
        self.note(
            Stage::Auth,
            format!("server's OAuth error challenge decodes to {challenge}"),
        );
        if mech == Mechanism::OAuthBearer {
            self.send_encoded(sasl::oauthbearer_ack());
        } else {
            self.send_encoded(sasl::empty_response());
        }
        self.auth_step(user, AuthStep::OAuthAwaitFinal { challenge })
    }

    /// Ends the AUTH exchange after a protocol violation in the middle of it: the
    /// client answers `*` first (RFC 4954 §4), then waits for the server's 501 before
    /// QUIT.
    fn cancel(&mut self, failure: Failure) -> State {
        self.send_encoded(sasl::cancel());
        State::AuthCancelled(failure)
    }

    /// After AUTH passed (or when there is none): the transaction when a message is
    /// configured, else QUIT with success.
    fn after_auth(&mut self) -> State {
        if let Some(quitting) = self.quit_here(Stage::Auth) {
            return quitting;
        }
        match self.cfg.mail.clone() {
            Some(mail) => self.begin_mail(mail),
            // Nothing more was asked for: every configured stage passed.
            None => self.quit(Ok(())),
        }
    }

    /// The SIZE check (RFC 1870 §4) and the note saying how the message fits; `Err`
    /// when it does not.
    fn check_size(&mut self, caps: &Capabilities, wire_size: u64) -> Result<(), Box<Failure>> {
        // RFC 1870 §4: the client should not send a message larger than the SIZE the
        // server announced; 0 (or no number) means no fixed limit.
        let (note, fits) = match caps.size_limit() {
            Some(limit) if limit > 0 && wire_size > limit => (
                format!("the server announced SIZE {limit}; the message is {wire_size} bytes: it does not fit, so it was not sent"),
                Err(Box::new(Failure::MessageTooLarge {
                    size: wire_size,
                    limit,
                })),
            ),
            Some(limit) if limit > 0 => (
                format!("the server announced SIZE {limit}; the message is {wire_size} bytes: it fits"),
                Ok(()),
            ),
            _ if caps.has("SIZE") => (
                format!("the server announced SIZE with no fixed limit; the message is {wire_size} bytes"),
                Ok(()),
            ),
            _ => (
                format!("the server announced no SIZE; the message is {wire_size} bytes"),
                Ok(()),
            ),
        };
        self.found.size_note = Some(note.clone());
        self.note(Stage::Mail, note);
        fits
    }

    /// MAIL FROM parameters the message needs: BODY=8BITMIME for 8-bit text (RFC 6152
    /// §3), SMTPUTF8 for non-ASCII addresses (RFC 6531 §3.4); `Err` when the server did
    /// not announce what is needed.
    fn mail_params(
        caps: &Capabilities,
        mail: &MailConfig,
    ) -> Result<Vec<&'static str>, Box<Failure>> {
        let mut params = Vec::new();
        if !mail.message.is_ascii() {
            if !caps.has("8BITMIME") && !caps.has("SMTPUTF8") {
                return Err(Box::new(Failure::ExtensionNotOffered {
                    extension: "8BITMIME",
                    why: "the message has 8-bit (non-ASCII) text",
                }));
            }
            if caps.has("8BITMIME") {
                params.push("BODY=8BITMIME");
            }
        }
        if !mail.from.is_ascii() || mail.to.iter().any(|t| !t.is_ascii()) {
            if !caps.has("SMTPUTF8") {
                return Err(Box::new(Failure::ExtensionNotOffered {
                    extension: "SMTPUTF8",
                    why: "an address is not ASCII",
                }));
            }
            params.push("SMTPUTF8");
        }
        Ok(params)
    }

    fn begin_mail(&mut self, mail: MailConfig) -> State {
        let caps = self.found.caps.clone().unwrap_or_default();
        self.start_stage(Stage::Mail);
        // RFC 1870 §3: the size counts CRLF pairs but not the terminating dot or the
        // doubled quoting dots.
        let wire_size = crlf_len(&mail.message);
        let params = match self
            .check_size(&caps, wire_size)
            .and_then(|()| Self::mail_params(&caps, &mail))
        {
            Ok(params) => params,
            Err(failure) => return self.fail_and_quit(*failure),
        };
        let size = caps.has("SIZE").then_some(wire_size);
        // With --quit-after mail/rcpt nothing after that command may be in flight.
        let pipelining = self.cfg.pipelining
            && caps.has("PIPELINING")
            && !matches!(self.cfg.quit_after, Some(Stage::Mail | Stage::Rcpt));
        let mut t = Transaction {
            outstanding: VecDeque::new(),
            failure: None,
            accepted_rcpts: 0,
            stage: Stage::Mail,
            mail,
        };
        let from = Command::MailFrom {
            addr: t.mail.from.clone(),
            size,
            params,
        };
        self.send_transaction_command(&mut t, from, Stage::Mail);
        if pipelining {
            // RFC 2920 §3.1: MAIL, RCPT… and DATA may be sent as one group; DATA is the
            // last command of the group.
            for to in t.mail.to.clone() {
                self.send_transaction_command(&mut t, Command::RcptTo(to), Stage::Rcpt);
            }
            self.send_transaction_command(&mut t, Command::Data, Stage::Data);
        }
        State::Transaction(t)
    }

    fn on_transaction(&mut self, mut t: Transaction, reply: Reply) -> State {
        let Some(stage) = t.outstanding.pop_front() else {
            return self.finish(Err(Failure::Unsolicited {
                stage: t.stage,
                bytes: excerpt(&reply.to_wire()),
            }));
        };
        t.stage = stage;
        if let Some(stop) = self.stop_if_server_closing(&reply, stage) {
            return stop;
        }
        let ok = match stage {
            Stage::Mail => reply.code() == 250,
            Stage::Rcpt => (250..=252).contains(&reply.code()),
            _ => reply.code() == 354,
        };
        if stage == Stage::Data {
            return self.on_data_reply(t, reply, ok);
        }
        if !ok {
            t.failure.get_or_insert(Failure::Reply { stage, reply });
        } else {
            if stage == Stage::Rcpt {
                t.accepted_rcpts += 1;
            }
            if t.failure.is_none() {
                self.mark_passed(stage);
            }
        }
        // Pipelined: more replies of the group are due.
        if !t.outstanding.is_empty() {
            return State::Transaction(t);
        }
        // Not pipelined: one command at a time.
        if let Some(f) = t.failure.take() {
            return self.fail_and_quit(f);
        }
        let sent_rcpts = match stage {
            Stage::Mail => 0,
            _ => t.accepted_rcpts,
        };
        if stage == Stage::Mail && self.parser.is_idle() {
            if let Some(quitting) = self.quit_here(Stage::Mail) {
                return quitting;
            }
        }
        if sent_rcpts >= t.mail.to.len() && self.parser.is_idle() {
            if let Some(quitting) = self.quit_here(Stage::Rcpt) {
                return quitting;
            }
        }
        self.unless_out_of_turn(stage, move |s| {
            match t.mail.to.get(sent_rcpts).cloned() {
                Some(to) => {
                    s.start_stage(Stage::Rcpt);
                    t.stage = Stage::Rcpt;
                    s.send_transaction_command(&mut t, Command::RcptTo(to), Stage::Rcpt);
                }
                None => {
                    s.start_stage(Stage::Data);
                    t.stage = Stage::Data;
                    s.send_transaction_command(&mut t, Command::Data, Stage::Data);
                }
            }
            State::Transaction(t)
        })
    }

    /// DATA's reply: 354 sends the message, unless an earlier command of the group
    /// failed.
    fn on_data_reply(&mut self, mut t: Transaction, reply: Reply, ok: bool) -> State {
        if t.failure.is_some() || !ok {
            let accepted = reply.code() == 354;
            let failure = t.failure.take().unwrap_or(Failure::Reply {
                stage: Stage::Data,
                reply,
            });
            if accepted {
                // RFC 2920 §3.1: DATA was accepted though an earlier command of the
                // group failed; end the (empty) message with "." alone, take the
                // server's answer to it, then QUIT with the earlier failure.
                self.send_line(Stage::Data, SentLine::EmptyMessageEnd, b".\r\n".to_vec());
                return State::AwaitEmptyDataEnd(failure);
            }
            return self.fail_and_quit(failure);
        }
        if !self.parser.is_idle() {
            // A server that sends more after 354 is out of turn; never send the body.
            return self.unless_out_of_turn(Stage::Data, |_| State::AwaitDataEnd);
        }
        self.mark_passed(Stage::Data);
        self.start_stage(Stage::Data);
        let body = encode_data(&t.mail.message);
        let lines = t.mail.message.lines().count();
        self.send_line(
            Stage::Data,
            SentLine::Message {
                lines,
                bytes: body.len(),
            },
            body,
        );
        State::AwaitDataEnd
    }

    /// The reply to the message's final "." (RFC 5321 §4.1.1.4).
    fn on_data_end(&mut self, reply: &Reply) -> State {
        if let Some(stop) = self.stop_unless_code(reply, Stage::Data, 250) {
            return stop;
        }
        self.found.message_accepted = true;
        self.mark_passed(Stage::Data);
        self.unless_out_of_turn(Stage::Data, |s| s.quit(Ok(())))
    }

    // ---- helpers --------------------------------------------------------------------

    /// Runs `next` (which sends the next command and returns the state that awaits its
    /// reply) only if the server has not sent anything beyond the reply just handled
    /// (of `stage`): a server may not talk out of turn (RFC 5321 §4.1; pipelined groups
    /// are handled separately). Else the session stops with the bytes as evidence.
    fn unless_out_of_turn(&mut self, stage: Stage, next: impl FnOnce(&mut Self) -> State) -> State {
        if self.parser.is_idle() {
            return next(self);
        }
        let bytes = excerpt(&self.parser.discard());
        self.bytes_received(stage, bytes.clone());
        self.note(
            stage,
            "the server sent data nobody asked for; stopping".into(),
        );
        self.finish(Err(Failure::Unsolicited { stage, bytes }))
    }

    /// `--quit-after`: when `stage` is the one asked for, QUIT now with success and say
    /// so in the transcript; the quitting state, or `None` to go on.
    fn quit_here(&mut self, stage: Stage) -> Option<State> {
        if self.cfg.quit_after != Some(stage) || self.found.quit_early.is_some() {
            return None;
        }
        self.found.quit_early = Some(stage);
        self.note(stage, format!("asked to stop after {stage}: stopping here"));
        Some(self.quit(Ok(())))
    }

    /// `--quit-after tls` on a connection that has no TLS: stop after EHLO.
    fn quit_after_tls_without_tls(&mut self) -> Option<State> {
        if self.cfg.mode != TlsMode::None || self.cfg.quit_after != Some(Stage::Tls) {
            return None;
        }
        self.found.quit_early = Some(Stage::Ehlo);
        self.note(
            Stage::Ehlo,
            "asked to stop after tls, but this connection uses no TLS: stopping after EHLO".into(),
        );
        Some(self.quit(Ok(())))
    }

    fn send_ehlo(&mut self, after_starttls: bool) -> State {
        self.start_stage(Stage::Ehlo);
        self.send_command(Stage::Ehlo, Command::Ehlo(self.cfg.helo.clone()));
        State::AwaitEhlo { after_starttls }
    }

    fn fail_and_quit(&mut self, failure: Failure) -> State {
        self.quit(Err(failure))
    }

    /// Sends QUIT (it gets its own timer and its own transcript stage); the failing
    /// stage stays the reported one, carried by the failure.
    fn quit(&mut self, outcome: Result<(), Failure>) -> State {
        self.start_stage(Stage::Quit);
        self.send_command(Stage::Quit, Command::Quit);
        State::AwaitQuit(outcome)
    }

    fn start_stage(&mut self, stage: Stage) {
        self.events.push_back(Event::StageStarted(stage));
    }

    fn mark_passed(&mut self, stage: Stage) {
        self.events.push_back(Event::StagePassed(stage));
    }

    /// The end: QUIT's stage passes with a success; the transport closes.
    fn finish(&mut self, outcome: Result<(), Failure>) -> State {
        if outcome.is_ok() {
            self.mark_passed(Stage::Quit);
        }
        self.events.push_back(Event::Finished(outcome));
        self.io.push_back(Io::Close);
        State::Done
    }

    fn send_command(&mut self, stage: Stage, cmd: Command) {
        let wire = cmd.to_wire();
        self.send_line(stage, SentLine::Command(cmd), wire);
    }

    /// Sends MAIL, RCPT or DATA and queues the stage its reply belongs to. The transcript
    /// tags the line with that stage, not the one running: in a pipelined group
    /// (RFC 2920 §3.1) RCPT and DATA go out while MAIL's reply is still awaited.
    fn send_transaction_command(&mut self, t: &mut Transaction, cmd: Command, stage: Stage) {
        self.send_command(stage, cmd);
        t.outstanding.push_back(stage);
    }

    /// Sends a SASL line: the wire bytes to the transport, only `shown` to the events.
    fn send_encoded(&mut self, enc: Encoded) {
        self.send_line(Stage::Auth, SentLine::Sasl(enc.shown), enc.wire);
    }

    fn send_line(&mut self, stage: Stage, line: SentLine, wire: Vec<u8>) {
        self.events.push_back(Event::CommandSent {
            stage,
            tls: self.tls,
            line,
        });
        self.io.push_back(Io::Transmit(wire));
    }

    fn bytes_received(&mut self, stage: Stage, shown: String) {
        self.events.push_back(Event::BytesReceived {
            stage,
            tls: self.tls,
            shown,
        });
    }

    fn note(&mut self, stage: Stage, note: String) {
        self.events.push_back(Event::Noted {
            stage,
            tls: self.tls,
            note,
        });
    }
}

/// `334 <redacted: SCRAM server signature>` when `reply` carries a `v=` (RFC 5802 §9:
/// with the salt and nonces it allows an offline password guess).
fn scram_redacted(reply: &Reply) -> Option<String> {
    let text = reply.raw_texts().next()?;
    let decoded = sasl::decode_challenge(text)?;
    decoded
        .starts_with(b"v=")
        .then(|| format!("{} <redacted: SCRAM server signature>", reply.code()))
}

/// The length of `text` with every bare LF counted as CRLF (how it goes on the wire).
fn crlf_len(text: &str) -> u64 {
    let b = text.as_bytes();
    let bare_lf = b
        .iter()
        .enumerate()
        .filter(|&(i, &c)| c == b'\n' && (i == 0 || b[i - 1] != b'\r'))
        .count();
    (b.len() + bare_lf) as u64
}

/// A static reason for a SCRAM protocol error (the evidence keeps the reply).
fn scram_reason(e: &sasl::ScramError) -> &'static str {
    use sasl::ScramError as E;
    match e {
        E::BadServerFirst(_) => "the server's SCRAM challenge (server-first-message) is malformed",
        E::NonceMismatch => "the server's SCRAM nonce does not extend the client's (RFC 5802 §5.1)",
        E::TooManyIterations(_) => {
            "the server asks for more SCRAM iterations than smtprobe computes (1 000 000)"
        }
        E::ServerError(_) => "the server sent a SCRAM error (e=) instead of its challenge",
        E::BadServerFinal | E::SignatureMismatch => "the server's SCRAM final message is malformed",
    }
}

#[cfg(test)]
mod tests {
    //! Session tests written as RFC-style `C:`/`S:` traces (DESIGN: imap-next style).
    //! Each trace is run with the server's bytes fed whole, one byte at a time, and in
    //! odd-sized chunks; all runs must produce the same transcript and outcome.

    use super::*;
    use crate::failure::Failure;
    use crate::transcript::{lines_of, Direction};
    use base64::engine::general_purpose::STANDARD as B64;
    use base64::Engine as _;

    const PW: &str = "abcd efgh ijkl mnop";

    fn cfg(mode: TlsMode) -> SessionConfig {
        SessionConfig {
            helo: "client.example".into(),
            mode,
            auth: Some(AuthConfig {
                user: "you@gmail.com".into(),
                credential: Credential::Password {
                    secret: Secret::new(PW),
                    choice: AuthChoice::Auto,
                },
            }),
            allow_plaintext_auth: false,
            mail: None,
            pipelining: true,
            nonce: "fyko+d2lbbFgONRv9qkxdawL".into(),
            quit_after: None,
        }
    }

    /// A session with [`cfg`] in `mode`, fed `inputs` one call at a time.
    fn fed(mode: TlsMode, inputs: &[&str]) -> Session {
        let mut s = Session::new(cfg(mode));
        for input in inputs {
            s.handle_input(input.as_bytes());
        }
        s
    }

    /// The outcome among the events queued so far.
    fn finished(s: &mut Session) -> Option<Result<(), Failure>> {
        std::iter::from_fn(|| s.poll_event()).find_map(|e| match e {
            Event::Finished(o) => Some(o),
            _ => None,
        })
    }

    struct Run {
        lines: Vec<String>,
        wire: Vec<u8>,
        outcome: Option<Result<(), Failure>>,
    }

    /// Drives the session through `script`. `S:` groups are fed in chunks of `chunk`
    /// bytes; `* TLS` completes a requested handshake; `* EOF` / `* TIMEOUT` end the
    /// connection. Returns the recorded C/S lines and the outcome.
    fn drive(cfg: SessionConfig, script: &str, chunk: usize) -> Run {
        let mut s = Session::new(cfg);
        let mut run = Run {
            lines: vec![],
            wire: vec![],
            outcome: None,
        };
        let mut starttls_requested = false;
        let drain = |s: &mut Session, run: &mut Run, st: &mut bool| {
            while let Some(ev) = s.poll_event() {
                if let Event::Finished(o) = ev {
                    run.outcome = Some(o);
                    continue;
                }
                for l in lines_of(&ev) {
                    if l.dir != Direction::Event {
                        run.lines.push(format!("{}: {}", l.dir.marker(), l.text))
                    }
                }
            }
            while let Some(io) = s.poll_io() {
                match io {
                    Io::Transmit(b) => run.wire.extend(b),
                    Io::StartTls => *st = true,
                    Io::Close => {}
                }
            }
        };
        let mut pending = Vec::new();
        let lines: Vec<&str> = script
            .lines()
            .map(str::trim)
            .filter(|l| !l.is_empty())
            .collect();
        for (i, line) in lines.iter().enumerate() {
            if let Some(t) = line.strip_prefix("S: ") {
                pending.extend_from_slice(t.as_bytes());
                pending.extend_from_slice(b"\r\n");
                let next_is_s = lines.get(i + 1).is_some_and(|l| l.starts_with("S: "));
                if !next_is_s {
                    for c in pending.chunks(chunk) {
                        s.handle_input(c);
                        drain(&mut s, &mut run, &mut starttls_requested);
                    }
                    pending.clear();
                }
            } else if *line == "* TLS" {
                assert!(
                    starttls_requested,
                    "TLS in script but session did not ask for it"
                );
                s.handle_tls_established();
            } else if *line == "* TLS FAILED" {
                assert!(starttls_requested || s.cfg.mode == TlsMode::Implicit);
                s.handle_tls_failed(handshake_closed(), "the server closed the connection");
            } else if *line == "* WRITE FAILED" {
                s.handle_write_failed("broken pipe");
            } else if *line == "* EOF" {
                s.handle_eof();
            } else if *line == "* TIMEOUT" {
                s.handle_timeout();
            }
            drain(&mut s, &mut run, &mut starttls_requested);
        }
        run
    }

    /// Runs the script at several chunk sizes, checks the C/S lines equal the script's
    /// and that every run agrees; returns the outcome.
    fn check(cfg: SessionConfig, script: &str) -> (Result<(), Failure>, Vec<u8>) {
        let expected: Vec<String> = script
            .lines()
            .map(str::trim)
            .filter(|l| l.starts_with("C: ") || l.starts_with("S: "))
            .map(str::to_string)
            .collect();
        let whole = drive(cfg.clone(), script, usize::MAX);
        assert_eq!(whole.lines, expected, "transcript differs from the trace");
        for chunk in [1, 2, 5, 11] {
            let r = drive(cfg.clone(), script, chunk);
            assert_eq!(r.lines, whole.lines, "chunk size {chunk}");
            assert_eq!(r.outcome, whole.outcome, "chunk size {chunk}");
            assert_eq!(r.wire, whole.wire, "chunk size {chunk}");
        }
        (whole.outcome.expect("session did not finish"), whole.wire)
    }

    // Trace pieces the tests share, spliced in with `format!`: each is a run of `C:`/`S:`
    // lines as they stand in the RFC examples, so a trace still reads top to bottom.

    /// The plain test server's greeting and EHLO, up to its last EHLO line: each trace
    /// writes that line itself, since it names the extensions the trace is about.
    const MX_EHLO: &str = "
        S: 220 mx
        C: EHLO client.example
        S: 250-mx";

    /// [`MX_EHLO`] with an `ESMTP` greeting.
    const MX_ESMTP_EHLO: &str = "
        S: 220 mx ESMTP
        C: EHLO client.example
        S: 250-mx";

    /// PLAIN with the test account, accepted (RFC 4954 §4).
    const PLAIN_OK: &str = "
        C: AUTH PLAIN <redacted: user you@gmail.com>
        S: 235 ok";

    /// LOGIN with the usual prompts, user name then password, both answered.
    const LOGIN_ANSWERED: &str = "
        C: AUTH LOGIN
        S: 334 VXNlcm5hbWU6
        C: <redacted username>
        S: 334 UGFzc3dvcmQ6
        C: <redacted password>";

    /// The plain test server offering PLAIN alone, and PLAIN sent.
    const MX_PLAIN_SENT: &str = "
        S: 220 mx
        C: EHLO client.example
        S: 250-mx
        S: 250 AUTH PLAIN
        C: AUTH PLAIN <redacted: user you@gmail.com>";

    /// MAIL and RCPT one at a time (no pipelining), both accepted.
    const MAIL_RCPT_OK: &str = "
        C: MAIL FROM:<you@gmail.com>
        S: 250 ok
        C: RCPT TO:<friend@example.com>
        S: 250 ok";

    /// QUIT and its 221: how a trace ends once the outcome is decided (RFC 5321
    /// §4.1.1.10).
    const QUIT_BYE: &str = "
        C: QUIT
        S: 221 bye";

    /// Asserts that `text` is nowhere in the bytes the session sent (which are UTF-8).
    /// The message names only the text: the wire may hold a credential.
    fn never_sent(wire: &[u8], text: &str) {
        let wire = std::str::from_utf8(wire).expect("the session sent UTF-8");
        assert!(!wire.contains(text), "the session sent {text:?}");
    }

    /// The stage a trace failed at and the code of the reply that failed it.
    fn stage_and_code(outcome: Result<(), Failure>) -> (Stage, u16) {
        let f = outcome.expect_err("the trace should fail");
        let code = f.reply().expect("a failure with a reply").code();
        (f.stage(), code)
    }

    const GREETING_587: &str = "
        S: 220 smtp.gmail.com ESMTP t66sm6271302pjb.45 - gsmtp
        C: EHLO client.example
        S: 250-smtp.gmail.com at your service, [203.0.113.7]
        S: 250-SIZE 35882577
        S: 250-8BITMIME
        S: 250-STARTTLS
        S: 250-ENHANCEDSTATUSCODES
        S: 250-PIPELINING
        S: 250 SMTPUTF8
        C: STARTTLS
        S: 220 2.0.0 Ready to start TLS
        * TLS
        C: EHLO client.example
        S: 250-smtp.gmail.com at your service, [203.0.113.7]
        S: 250-SIZE 35882577
        S: 250-AUTH LOGIN PLAIN XOAUTH2 PLAIN-CLIENTTOKEN OAUTHBEARER XOAUTH
        S: 250-ENHANCEDSTATUSCODES
        S: 250-PIPELINING
        S: 250 SMTPUTF8
    ";

    /// PLAIN accepted, then QUIT sent: the end of a successful Gmail trace.
    const PLAIN_ACCEPTED_THEN_QUIT: &str = "
        C: AUTH PLAIN <redacted: user you@gmail.com>
        S: 235 2.7.0 Accepted
        C: QUIT";

    #[test]
    fn gmail_587_plain_success() {
        let script = format!(
            "{GREETING_587}
            {PLAIN_ACCEPTED_THEN_QUIT}
            S: 221 2.0.0 closing connection t66sm6271302pjb.45 - gsmtp"
        );
        let (outcome, wire) = check(cfg(TlsMode::Starttls), &script);
        assert_eq!(outcome, Ok(()));
        // Exactly the protocol minimum: EHLO, STARTTLS, EHLO, AUTH, QUIT.
        let wire = String::from_utf8(wire).unwrap();
        assert_eq!(wire.matches("\r\n").count(), 5, "{wire}");
        assert!(wire.contains("AUTH PLAIN AHlvdUBnbWFpbC5jb20AYWJjZCBlZmdoIGlqa2wgbW5vcA==\r\n"));
    }

    #[test]
    fn gmail_bad_credentials_stops_at_auth_and_quits() {
        let script = format!(
            "{GREETING_587}
            C: AUTH PLAIN <redacted: user you@gmail.com>
            S: 535-5.7.8 Username and Password not accepted. For more information, go to
            S: 535 5.7.8  https://support.google.com/mail/?p=BadCredentials af79 - gsmtp
            C: QUIT
            S: 221 2.0.0 closing connection"
        );
        let (outcome, _) = check(cfg(TlsMode::Starttls), &script);
        assert_eq!(stage_and_code(outcome), (Stage::Auth, 535));
    }

    #[test]
    fn implicit_tls_login_by_step_not_prompt_text() {
        let c = cfg_choosing(TlsMode::Implicit, AuthChoice::Login);
        // Prompts reversed ("Password:" first): LOGIN answers by step, so the user name
        // still goes first.
        let script = "
            S: 220 smtp.gmail.com ESMTP x - gsmtp
            C: EHLO client.example
            S: 250-smtp.gmail.com at your service
            S: 250 AUTH LOGIN PLAIN
            C: AUTH LOGIN
            S: 334 UGFzc3dvcmQ6
            C: <redacted username>
            S: 334 VXNlcm5hbWU6
            C: <redacted password>
            S: 235 2.7.0 Accepted
            C: QUIT
            S: 221 bye";
        let (outcome, wire) = check(c, script);
        assert_eq!(outcome, Ok(()));
        let wire = String::from_utf8(wire).unwrap();
        assert!(wire.contains("\r\neW91QGdtYWlsLmNvbQ==\r\nYWJjZCBlZmdoIGlqa2wgbW5vcA==\r\n"));
    }

    /// A server that offers AUTH but no STARTTLS, and the QUIT the session answers with.
    fn auth_offered_in_clear() -> String {
        format!(
            "{MX_ESMTP_EHLO}
            S: 250 AUTH PLAIN LOGIN
            {QUIT_BYE}"
        )
    }

    #[test]
    fn starttls_not_offered_never_continues_in_clear() {
        let (outcome, wire) = check(cfg(TlsMode::Starttls), &auth_offered_in_clear());
        assert_eq!(outcome, Err(Failure::StartTlsNotOffered));
        never_sent(&wire, "AUTH");
    }

    /// A plain greeting and EHLO offering STARTTLS, and STARTTLS sent.
    const STARTTLS_SENT: &str = "
        S: 220 mx ESMTP
        C: EHLO client.example
        S: 250-mx
        S: 250 STARTTLS
        C: STARTTLS";

    fn handshake_closed() -> Failure {
        Failure::Tls(crate::failure::TlsFailure {
            kind: crate::failure::TlsFailureKind::ClosedDuringHandshake,
            certificate: None,
            after_starttls: true,
        })
    }

    #[test]
    fn tls_failed_mid_handshake_ends_without_quit_and_ignores_later_bytes() {
        let script = format!(
            "{STARTTLS_SENT}
            S: 220 go ahead
            * TLS FAILED
            * EOF"
        );
        let (outcome, wire) = check(cfg(TlsMode::Starttls), &script);
        assert_eq!(outcome, Err(handshake_closed()));
        // No QUIT in the clear after a failed handshake: the channel is gone.
        never_sent(&wire, "QUIT");
    }

    #[test]
    fn implicit_tls_failed_before_the_greeting_is_the_outcome() {
        let (outcome, wire) = check(cfg(TlsMode::Implicit), "* TLS FAILED\n* TIMEOUT");
        assert_eq!(outcome, Err(handshake_closed()));
        assert!(wire.is_empty());
    }

    #[test]
    fn write_failed_is_a_close_in_the_stage_that_wrote() {
        let script = "
            S: 220 mx ESMTP
            C: EHLO client.example
            * WRITE FAILED";
        let (outcome, _) = check(cfg(TlsMode::Starttls), script);
        assert_eq!(
            outcome,
            Err(Failure::Closed {
                stage: Stage::Ehlo,
                partial: None
            })
        );
    }

    #[test]
    fn write_failed_on_quit_keeps_the_outcome_decided_before() {
        let script = format!(
            "{GREETING_587}
            {PLAIN_ACCEPTED_THEN_QUIT}
            * WRITE FAILED"
        );
        assert_eq!(check(cfg(TlsMode::Starttls), &script).0, Ok(()));
    }

    #[test]
    fn the_session_says_what_it_waits_for_and_how_long() {
        let t = Duration::from_secs(30);
        let mut s = Session::new(cfg(TlsMode::Starttls));
        assert_eq!(s.waiting_for(), Some(Wait::Reply(Stage::Greeting)));
        s.handle_input(b"220 mx\r\n");
        assert_eq!(s.waiting_for(), Some(Wait::Reply(Stage::Ehlo)));
        s.handle_input(b"250-mx\r\n250 STARTTLS\r\n");
        assert_eq!(s.waiting_for(), Some(Wait::Reply(Stage::Starttls)));
        s.handle_input(b"220 go\r\n");
        assert_eq!(s.waiting_for(), Some(Wait::TlsHandshake));
        assert_eq!(s.poll_timeout(t), Some(t));
        s.handle_tls_established();
        s.handle_input(b"250-mx\r\n250 AUTH PLAIN\r\n");
        assert_eq!(s.waiting_for(), Some(Wait::Reply(Stage::Auth)));
        s.handle_input(b"535 5.7.8 no\r\n");
        assert_eq!(s.waiting_for(), Some(Wait::QuitReply));
        assert_eq!(s.poll_timeout(t), Some(QUIT_GRACE));
        assert_eq!(
            s.poll_timeout(Duration::from_secs(1)),
            Some(Duration::from_secs(1))
        );
        s.handle_timeout();
        assert_eq!((s.waiting_for(), s.poll_timeout(t)), (None, None));
    }

    #[test]
    fn eof_in_each_state_fails_the_stage_it_waited_in() {
        let steps = [
            ("", Stage::Greeting),
            ("S: 220 mx\nC: EHLO client.example", Stage::Ehlo),
            (
                "S: 220 mx\nC: EHLO client.example\nS: 250-mx\nS: 250 STARTTLS\nC: STARTTLS",
                Stage::Starttls,
            ),
            (
                "S: 220 mx\nC: EHLO client.example\nS: 250-mx\nS: 250 STARTTLS\nC: STARTTLS\nS: 220 go",
                Stage::Tls,
            ),
            (GREETING_587, Stage::Auth),
        ];
        for (prefix, stage) in steps {
            let mut script = prefix.to_string();
            if stage == Stage::Auth {
                script.push_str("\nC: AUTH PLAIN <redacted: user you@gmail.com>");
            }
            script.push_str("\n* EOF");
            let (outcome, _) = check(cfg(TlsMode::Starttls), &script);
            assert_eq!(outcome.unwrap_err().stage(), stage, "{script}");
        }
        // Once QUIT is sent the outcome is already decided: EOF keeps it.
        let quit = format!(
            "{GREETING_587}
            C: AUTH PLAIN <redacted: user you@gmail.com>
            S: 535 5.7.8 Username and Password not accepted
            C: QUIT
            * EOF"
        );
        assert_eq!(
            check(cfg(TlsMode::Starttls), &quit).0.unwrap_err().stage(),
            Stage::Auth
        );
    }

    #[test]
    fn starttls_refused_stops() {
        let script = format!(
            "{STARTTLS_SENT}
            S: 454 4.7.0 TLS not available due to temporary reason
            C: QUIT
            S: 221 bye"
        );
        let (outcome, _) = check(cfg(TlsMode::Starttls), &script);
        assert_eq!(stage_and_code(outcome), (Stage::Starttls, 454));
    }

    #[test]
    fn starttls_odd_positive_replies_do_not_start_tls() {
        for odd in ["250 OK", "354 go on", "221 bye"] {
            let script = format!(
                "S: 220 mx ESMTP
                C: EHLO client.example
                S: 250-mx
                S: 250 STARTTLS
                C: STARTTLS
                S: {odd}
                C: QUIT
                S: 221 bye"
            );
            let (outcome, _) = check(cfg(TlsMode::Starttls), &script);
            assert_eq!(outcome.unwrap_err().stage(), Stage::Starttls, "{odd}");
        }
    }

    #[test]
    fn starttls_injection_in_same_packet_aborts_without_credentials() {
        let mut s = fed(
            TlsMode::Starttls,
            &[
                "220 mx\r\n",
                "250-mx\r\n250-STARTTLS\r\n250 AUTH PLAIN\r\n",
                "220 Ready\r\n250-mx\r\n250 AUTH PLAIN\r\n",
            ],
        );
        let events: Vec<Event> = std::iter::from_fn(|| s.poll_event()).collect();
        assert!(!std::iter::from_fn(|| s.poll_io()).any(|io| io == Io::StartTls));
        let fin = events.iter().find_map(|e| match e {
            Event::Finished(o) => Some(o.clone()),
            _ => None,
        });
        assert!(
            matches!(fin, Some(Err(Failure::StartTlsInjection { .. }))),
            "{fin:?}"
        );
        assert!(s.is_done());
    }

    #[test]
    fn starttls_injection_partial_line_aborts() {
        let mut s = fed(
            TlsMode::Starttls,
            &[
                "220 mx\r\n",
                "250-mx\r\n250 STARTTLS\r\n",
                "220 Ready\r\n235 fa",
            ],
        );
        let fin = finished(&mut s);
        assert!(matches!(fin, Some(Err(Failure::StartTlsInjection { .. }))));
    }

    #[test]
    fn capabilities_before_tls_are_forgotten() {
        // Before TLS the server lists AUTH PLAIN; after TLS only LOGIN. The session must
        // use what it learned after TLS (RFC 3207 §4.2).
        let script = format!(
            "{MX_ESMTP_EHLO}
            S: 250-AUTH PLAIN
            S: 250 STARTTLS
            C: STARTTLS
            S: 220 go
            * TLS
            C: EHLO client.example
            S: 250-mx
            S: 250 AUTH LOGIN
            {LOGIN_ANSWERED}
            S: 235 ok
            {QUIT_BYE}"
        );
        assert_eq!(check(cfg(TlsMode::Starttls), &script).0, Ok(()));
    }

    #[test]
    fn plaintext_auth_refused_without_flag() {
        let (outcome, wire) = check(cfg(TlsMode::None), &auth_offered_in_clear());
        assert_eq!(outcome, Err(Failure::PlaintextAuthRefused));
        never_sent(&wire, "AUTH");
        let mut allowed = cfg(TlsMode::None);
        allowed.allow_plaintext_auth = true;
        let script = format!(
            "{MX_ESMTP_EHLO}
            S: 250 AUTH PLAIN LOGIN
            {PLAIN_OK}
            {QUIT_BYE}"
        );
        assert_eq!(check(allowed, &script).0, Ok(()));
    }

    /// [`cfg`] with the SASL mechanism chosen instead of picked.
    fn cfg_choosing(mode: TlsMode, choice: AuthChoice) -> SessionConfig {
        let mut c = cfg(mode);
        c.auth.as_mut().unwrap().credential = Credential::Password {
            secret: Secret::new(PW),
            choice,
        };
        c
    }

    #[test]
    fn success_before_credentials_is_a_failure() {
        let c = cfg_choosing(TlsMode::Implicit, AuthChoice::Login);
        let script = format!(
            "{MX_EHLO}
            S: 250 AUTH LOGIN
            C: AUTH LOGIN
            S: 235 2.7.0 Accepted
            {QUIT_BYE}"
        );
        let (outcome, wire) = check(c, &script);
        assert!(
            matches!(outcome, Err(Failure::AuthProtocol { .. })),
            "{outcome:?}"
        );
        // Not even the start of the password's base64.
        never_sent(&wire, "YWJj");
    }

    #[test]
    fn auth_503_is_a_failure_not_success() {
        let script = format!(
            "{MX_PLAIN_SENT}
            S: 503 5.5.1 Error: already authenticated
            {QUIT_BYE}"
        );
        let (outcome, _) = check(cfg(TlsMode::Implicit), &script);
        assert_eq!(stage_and_code(outcome), (Stage::Auth, 503));
    }

    #[test]
    fn extra_challenge_after_plain_is_cancelled() {
        let script = format!(
            "{MX_PLAIN_SENT}
            S: 334
            C: *
            S: 501 5.7.0 cancelled
            {QUIT_BYE}"
        );
        let (outcome, _) = check(cfg(TlsMode::Implicit), &script);
        assert!(matches!(outcome, Err(Failure::AuthProtocol { .. })));
    }

    #[test]
    fn invalid_base64_login_challenge_and_third_prompt_are_cancelled() {
        let c = cfg_choosing(TlsMode::Implicit, AuthChoice::Login);
        for exchange in [
            "C: AUTH LOGIN
            S: 334 not*base64!"
                .to_owned(),
            format!(
                "{LOGIN_ANSWERED}
                S: 334 T25lIG1vcmU6"
            ),
        ] {
            let script = format!(
                "{MX_EHLO}
                S: 250 AUTH LOGIN
                {exchange}
                C: *
                S: 501 cancelled
                {QUIT_BYE}"
            );
            assert!(
                matches!(
                    check(c.clone(), &script).0,
                    Err(Failure::AuthProtocol { .. })
                ),
                "{script}"
            );
        }
    }

    #[test]
    fn mechanism_forced_but_not_offered() {
        let c = cfg_choosing(TlsMode::Implicit, AuthChoice::Plain);
        let script = format!(
            "{MX_EHLO}
            S: 250 AUTH LOGIN CRAM-MD5
            {QUIT_BYE}"
        );
        let (outcome, _) = check(c, &script);
        assert_eq!(
            outcome,
            Err(Failure::MechanismUnsupported {
                wanted: Some("PLAIN".into()),
                offered: vec!["LOGIN".into(), "CRAM-MD5".into()]
            })
        );
    }

    /// [`cfg`] with an OAuth token for the account instead of a password.
    fn cfg_oauth() -> SessionConfig {
        let mut c = cfg(TlsMode::Implicit);
        c.auth.as_mut().unwrap().credential = Credential::OAuthToken(Secret::new("ya29.tok"));
        c
    }

    /// The decoded error challenge and the reply code of an `OAuthRejected` outcome.
    fn oauth_rejected(outcome: Option<Result<(), Failure>>) -> (String, u16) {
        match outcome {
            Some(Err(Failure::OAuthRejected { challenge, reply })) => (challenge, reply.code()),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn xoauth2_error_challenge_is_answered_and_decoded() {
        let script = "
            S: 220 smtp.gmail.com ESMTP x - gsmtp
            C: EHLO client.example
            S: 250-smtp.gmail.com at your service
            S: 250 AUTH LOGIN PLAIN XOAUTH2 OAUTHBEARER
            C: AUTH XOAUTH2 <redacted: token for user you@gmail.com>
            S: 334 eyJzdGF0dXMiOiI0MDAiLCJzY2hlbWVzIjoiQmVhcmVyIiwic2NvcGUiOiJodHRwczovL21haWwuZ29vZ2xlLmNvbS8ifQ==
            C: 
            S: 535-5.7.8 Username and Password not accepted.
            S: 535 5.7.8 https://support.google.com/mail/?p=BadCredentials x - gsmtp
            C: QUIT
            S: 221 bye";
        // The empty client line trims to "C:"; compare without the trim.
        let (challenge, code) = oauth_rejected(drive(cfg_oauth(), script, 3).outcome);
        assert!(challenge.contains("\"status\":\"400\""), "{challenge}");
        assert_eq!(code, 535);
    }

    /// Found by the hostile-server suite: a 235 after the server's own XOAUTH2 error
    /// challenge was reported as a successful login; a second 334 was answered with
    /// QUIT, which the server reads as the SASL response.
    #[test]
    fn xoauth2_success_or_second_challenge_after_an_error_challenge() {
        let head = format!(
            "{MX_EHLO}
            S: 250 AUTH XOAUTH2
            C: AUTH XOAUTH2 <redacted: token for user you@gmail.com>
            S: 334 eyJzdGF0dXMiOiI0MDEifQ==
            C: "
        );
        let run = drive(
            cfg_oauth(),
            &format!("{head}\nS: 235 2.7.0 Accepted\n{QUIT_BYE}"),
            3,
        );
        match run.outcome {
            Some(Err(Failure::AuthProtocol { reply, .. })) => assert_eq!(reply.code(), 235),
            other => panic!("{other:?}"),
        }
        let wire = String::from_utf8(run.wire).unwrap();
        assert!(wire.ends_with("\r\n\r\nQUIT\r\n"), "{wire:?}");

        let run = drive(
            cfg_oauth(),
            &format!("{head}\nS: 334 eyJzdGF0dXMiOiI0MDEifQ==\nC: *\nS: 501 cancelled\n{QUIT_BYE}"),
            3,
        );
        let (challenge, code) = oauth_rejected(run.outcome);
        assert!(challenge.contains("401"), "{challenge}");
        assert_eq!(code, 334);
        let wire = String::from_utf8(run.wire).unwrap();
        assert!(wire.ends_with("\r\n\r\n*\r\nQUIT\r\n"), "{wire:?}");
    }

    fn with_mail(mut c: SessionConfig, pipelining: bool) -> SessionConfig {
        c.pipelining = pipelining;
        c.mail = Some(MailConfig {
            from: "you@gmail.com".into(),
            to: vec!["friend@example.com".into()],
            message: "Subject: t\n\n.hidden dot\nbye\n".into(),
        });
        c
    }

    #[test]
    fn pipelined_send_when_offered() {
        let script = format!(
            "{MX_EHLO}
            S: 250-PIPELINING
            S: 250-SIZE 1000
            S: 250 AUTH PLAIN
            {PLAIN_OK}
            C: MAIL FROM:<you@gmail.com> SIZE=32
            C: RCPT TO:<friend@example.com>
            C: DATA
            S: 250 2.1.0 OK
            S: 250 2.1.5 OK
            S: 354  Go ahead
            C: <message: 4 lines, 36 bytes>
            S: 250 2.0.0 OK  1746829334 - gsmtp
            {QUIT_BYE}"
        );
        let (outcome, wire) = check(with_mail(cfg(TlsMode::Implicit), true), &script);
        assert_eq!(outcome, Ok(()));
        assert!(String::from_utf8(wire)
            .unwrap()
            .contains("Subject: t\r\n\r\n..hidden dot\r\nbye\r\n.\r\n"));
    }

    /// Feeds `replies` one at a time; every transcript line as `stage dir text`.
    fn tagged(cfg: SessionConfig, replies: &[&str]) -> Vec<String> {
        let mut s = Session::new(cfg);
        let mut lines = Vec::new();
        for r in replies {
            s.handle_input(r.replace('\n', "\r\n").as_bytes());
            while let Some(ev) = s.poll_event() {
                for l in lines_of(&ev) {
                    if l.dir != Direction::Event {
                        lines.push(format!(
                            "{} {}: {}",
                            l.stage.as_str(),
                            l.dir.marker(),
                            l.text
                        ));
                    }
                }
            }
        }
        lines
    }

    /// Issue 10: pipelined RCPT/DATA and their replies were tagged `mail` (the stage
    /// running when they were sent or arrived), and the 221 after a failure was tagged
    /// with the failed stage.
    #[test]
    fn transcript_tags_each_line_with_the_command_it_belongs_to() {
        let greet = [
            "220 mx\n",
            "250-mx\n250-PIPELINING\n250 AUTH PLAIN\n",
            "235 ok\n",
        ];
        let mut replies = greet.to_vec();
        replies.extend([
            "250 2.1.0 OK\n250 2.1.5 OK\n354 go\n",
            "250 2.0.0 queued\n",
            "221 bye\n",
        ]);
        let lines = tagged(with_mail(cfg(TlsMode::Implicit), true), &replies);
        let tail: Vec<&str> = lines.iter().map(String::as_str).skip(7).collect();
        assert_eq!(
            tail,
            [
                "mail C: MAIL FROM:<you@gmail.com>",
                "rcpt C: RCPT TO:<friend@example.com>",
                "data C: DATA",
                "mail S: 250 2.1.0 OK",
                "rcpt S: 250 2.1.5 OK",
                "data S: 354 go",
                "data C: <message: 4 lines, 36 bytes>",
                "data S: 250 2.0.0 queued",
                "quit C: QUIT",
                "quit S: 221 bye",
            ],
            "{lines:#?}"
        );
        // A failure: the check reports rcpt, but QUIT and its 221 belong to quit.
        let mut replies = greet.to_vec();
        replies.extend([
            "250 2.1.0 OK\n550 5.1.1 no such user\n554 no valid recipients\n",
            "221 bye\n",
        ]);
        let lines = tagged(with_mail(cfg(TlsMode::Implicit), true), &replies);
        assert!(
            lines.ends_with(&[
                "rcpt S: 550 5.1.1 no such user".to_owned(),
                "data S: 554 no valid recipients".to_owned(),
                "quit C: QUIT".to_owned(),
                "quit S: 221 bye".to_owned(),
            ]),
            "{lines:#?}"
        );
    }

    #[test]
    fn sequential_send_without_pipelining_and_recipient_rejected() {
        let script = format!(
            "{MX_PLAIN_SENT}
            S: 235 ok
            C: MAIL FROM:<you@gmail.com>
            S: 250 ok
            C: RCPT TO:<friend@example.com>
            S: 550 5.1.1 no such user
            {QUIT_BYE}"
        );
        let (outcome, _) = check(with_mail(cfg(TlsMode::Implicit), true), &script);
        assert_eq!(stage_and_code(outcome), (Stage::Rcpt, 550));
    }

    #[test]
    fn pipelined_group_failure_reports_first_failure_and_ends_empty_data() {
        let script = format!(
            "{MX_EHLO}
            S: 250-PIPELINING
            S: 250 AUTH PLAIN
            {PLAIN_OK}
            C: MAIL FROM:<you@gmail.com>
            C: RCPT TO:<friend@example.com>
            C: DATA
            S: 530-5.7.0 Authentication Required. Learn more at
            S: 530 5.7.0 https://support.google.com/mail/?p=WantAuthError x - gsmtp
            S: 503 5.5.1 RCPT first
            S: 354 go ahead anyway
            C: .
            S: 554 no valid recipients
            {QUIT_BYE}"
        );
        let (outcome, wire) = check(with_mail(cfg(TlsMode::Implicit), true), &script);
        assert_eq!(stage_and_code(outcome), (Stage::Mail, 530));
        // The body must not be sent.
        never_sent(&wire, "hidden dot");
    }

    #[test]
    fn data_without_354_sends_no_body() {
        let script = format!(
            "{MX_PLAIN_SENT}
            S: 235 ok
            {MAIL_RCPT_OK}
            C: DATA
            S: 250 thanks
            {QUIT_BYE}"
        );
        let (outcome, wire) = check(with_mail(cfg(TlsMode::Implicit), false), &script);
        assert_eq!(outcome.unwrap_err().stage(), Stage::Data);
        never_sent(&wire, "hidden dot");
    }

    #[test]
    fn service_unavailable_421_stops_without_quit() {
        // The trace ends at the 421: no QUIT follows (RFC 5321 §3.8).
        for (script, stage) in [
            (
                "S: 421 4.7.0 Try again later, closing connection. (EHLO) x - gsmtp",
                Stage::Greeting,
            ),
            (
                "S: 220 mx\nC: EHLO client.example\nS: 421 4.7.0 Try again later, closing connection. (EHLO) g4sm - gsmtp",
                Stage::Ehlo,
            ),
        ] {
            let (outcome, _) = check(cfg(TlsMode::Implicit), script);
            assert_eq!(stage_and_code(outcome), (stage, 421), "{script}");
        }
    }

    #[test]
    fn reply_421_after_the_message_ends_without_quit() {
        let script = format!(
            "{MX_PLAIN_SENT}
            S: 235 ok
            {MAIL_RCPT_OK}
            C: DATA
            S: 354 go ahead
            C: <message: 4 lines, 36 bytes>
            S: 421 4.3.2 Service shutting down"
        );
        let (outcome, wire) = check(with_mail(cfg(TlsMode::Implicit), false), &script);
        assert_eq!(stage_and_code(outcome), (Stage::Data, 421));
        never_sent(&wire, "QUIT");
    }

    /// Found by the hostile-server suite: a greeting followed by 60 KB of unfinished
    /// continuation lines (or the same after the 220 to STARTTLS, or before a close)
    /// became an evidence line of tens of KB in every output.
    #[test]
    fn unexpected_bytes_are_kept_as_a_short_excerpt() {
        // 100 lines of 500 bytes: under the reply caps, so the parser keeps waiting.
        let flood = format!("250-{}\r\n", "p".repeat(494)).repeat(100);
        let run = |mode: TlsMode, inputs: &[&str], eof: bool| {
            let mut s = fed(mode, inputs);
            if eof {
                s.handle_eof();
            }
            let mut outcome = None;
            while let Some(ev) = s.poll_event() {
                if let Event::Finished(o) = ev {
                    outcome = Some(o);
                }
            }
            outcome.expect("finished").unwrap_err()
        };
        let unsolicited = run(TlsMode::Implicit, &[&format!("220 mx\r\n{flood}")], false);
        let injected = run(
            TlsMode::Starttls,
            &[
                "220 mx\r\n",
                "250-mx\r\n250 STARTTLS\r\n",
                &format!("220 go\r\n{flood}"),
            ],
            false,
        );
        let closed = run(TlsMode::Implicit, &[&flood], true);
        for failure in [unsolicited, injected, closed] {
            let text = match failure {
                Failure::Unsolicited { bytes, .. } | Failure::StartTlsInjection { bytes } => bytes,
                Failure::Closed { partial, .. } => partial.unwrap(),
                other => panic!("{other:?}"),
            };
            assert!(text.len() < 2 * EVIDENCE_BYTES, "{} bytes", text.len());
            assert!(text.starts_with("250-ppp"), "{text}");
            assert!(text.ends_with("… (50000 bytes in all)"), "{text}");
        }
    }

    #[test]
    fn silence_close_and_garbage() {
        let (o, _) = check(cfg(TlsMode::Starttls), "* TIMEOUT");
        assert_eq!(
            o,
            Err(Failure::Timeout {
                stage: Stage::Greeting
            })
        );
        let (o, _) = check(
            cfg(TlsMode::Starttls),
            "S: 220 mx\nC: EHLO client.example\n* EOF",
        );
        assert!(matches!(
            o,
            Err(Failure::Closed {
                stage: Stage::Ehlo,
                ..
            })
        ));
        let (o, _) = check(cfg(TlsMode::Starttls), "S: SSH-2.0-OpenSSH_9.2p1");
        assert!(matches!(
            o,
            Err(Failure::Malformed {
                stage: Stage::Greeting,
                ..
            })
        ));
    }

    #[test]
    fn unsolicited_bytes_after_greeting_stop_the_session() {
        let fin = finished(&mut fed(TlsMode::Starttls, &["220 mx\r\n250 surprise\r\n"]));
        assert!(matches!(fin, Some(Err(Failure::Unsolicited { .. }))));
    }

    #[test]
    fn no_user_means_no_auth_stage() {
        let mut c = cfg(TlsMode::Implicit);
        c.auth = None;
        let script = format!(
            "{MX_EHLO}
            S: 250 AUTH PLAIN
            {QUIT_BYE}"
        );
        assert_eq!(check(c, &script).0, Ok(()));
    }

    /// Issue 10: I/O requests and past-tense events come apart. The AUTH line is sent
    /// as bytes (`Io::Transmit`) and reported typed and redacted (`CommandSent`), the
    /// reply as a `Reply`; the session ends with `Finished`, then `Io::Close`, once.
    #[test]
    fn io_requests_and_events_are_apart_and_events_hold_no_secret() {
        let mut s = Session::new(cfg(TlsMode::Implicit));
        let (mut events, mut io) = (Vec::new(), Vec::new());
        for input in [
            "220 mx\r\n",
            "250-mx\r\n250 AUTH PLAIN\r\n",
            "235 2.7.0 ok\r\n",
            "221 bye\r\n",
        ] {
            s.handle_input(input.as_bytes());
            events.extend(std::iter::from_fn(|| s.poll_event()));
            io.extend(std::iter::from_fn(|| s.poll_io()));
        }
        let auth_b64 = "AHlvdUBnbWFpbC5jb20AYWJjZCBlZmdoIGlqa2wgbW5vcA==";
        assert!(events.contains(&Event::CommandSent {
            stage: Stage::Auth,
            tls: true,
            line: SentLine::Sasl("AUTH PLAIN <redacted: user you@gmail.com>".into()),
        }));
        assert!(events.iter().any(|e| matches!(
            e,
            Event::ReplyReceived { stage: Stage::Auth, reply, .. } if reply.code() == 235
        )));
        assert!(events.contains(&Event::CommandSent {
            stage: Stage::Quit,
            tls: true,
            line: SentLine::Command(Command::Quit),
        }));
        let debug = format!("{events:?}");
        assert!(!debug.contains(auth_b64) && !debug.contains(PW), "{debug}");
        assert_eq!(events.last(), Some(&Event::Finished(Ok(()))));
        assert_eq!(
            events
                .iter()
                .filter(|e| matches!(e, Event::Finished(_)))
                .count(),
            1
        );
        // The wire bytes only in the I/O requests, whose Debug shows their length.
        assert!(io.contains(&Io::Transmit(
            format!("AUTH PLAIN {auth_b64}\r\n").into_bytes()
        )));
        let io_debug = format!("{io:?}");
        assert!(
            !io_debug.contains(auth_b64) && io_debug.contains("Transmit(<"),
            "{io_debug}"
        );
        assert_eq!(io.last(), Some(&Io::Close));
        assert_eq!(io.iter().filter(|i| **i == Io::Close).count(), 1);
        assert!(s.is_done() && s.waiting_for().is_none());
    }

    /// The state says what the session waits for, and for which stage: a pipelined
    /// group waits for MAIL's reply first, QUIT's reply has only the grace.
    #[test]
    fn waiting_for_follows_the_state() {
        let mut c = cfg(TlsMode::Implicit);
        c.mail = Some(MailConfig {
            from: "you@gmail.com".into(),
            to: vec!["a@example.com".into()],
            message: "Subject: t\n\nhi\n".into(),
        });
        let mut s = Session::new(c);
        s.handle_input(b"220 mx\r\n");
        s.handle_input(b"250-mx\r\n250-PIPELINING\r\n250 AUTH PLAIN\r\n");
        assert_eq!(s.waiting_for(), Some(Wait::Reply(Stage::Auth)));
        s.handle_input(b"235 ok\r\n");
        assert_eq!(s.waiting_for(), Some(Wait::Reply(Stage::Mail)));
        s.handle_input(b"550 5.7.1 no\r\n");
        // RCPT and DATA replies of the group are still due.
        assert!(matches!(s.waiting_for(), Some(Wait::Reply(_))));
        s.handle_input(b"250 ok\r\n554 no valid recipients\r\n");
        assert_eq!(s.waiting_for(), Some(Wait::QuitReply));
        assert_eq!(s.poll_timeout(Duration::from_secs(30)), Some(QUIT_GRACE));
        s.handle_timeout();
        let fin = finished(&mut s);
        // The first failure of the group is the verdict, QUIT's silence changes nothing.
        assert!(
            matches!(
                &fin,
                Some(Err(Failure::Reply {
                    stage: Stage::Mail,
                    ..
                }))
            ),
            "{fin:?}"
        );
    }

    #[test]
    fn transcript_never_contains_the_password_or_its_base64() {
        let script = format!(
            "{GREETING_587}
            {PLAIN_ACCEPTED_THEN_QUIT}
            S: 221 bye"
        );
        let mut s = Session::new(cfg(TlsMode::Starttls));
        let mut texts = String::new();
        for line in script.lines().map(str::trim) {
            if let Some(t) = line.strip_prefix("S: ") {
                s.handle_input(format!("{t}\r\n").as_bytes());
            } else if line == "* TLS" {
                s.handle_tls_established();
            }
            while let Some(ev) = s.poll_event() {
                for l in lines_of(&ev) {
                    texts.push_str(&l.text);
                }
            }
        }
        assert!(!texts.contains(PW) && !texts.contains("YWJjZCBl") && !texts.contains("AHlvdUBn"));
        assert!(texts.contains("<redacted: user you@gmail.com>"));
    }
    fn with_choice(mode: TlsMode, choice: AuthChoice) -> SessionConfig {
        let mut c = cfg(mode);
        c.auth = Some(AuthConfig {
            user: "user".into(),
            credential: Credential::Password {
                secret: Secret::new("pencil"),
                choice,
            },
        });
        c
    }

    /// RFC 5802 §5 example through the session, the server-final as a 334 (RFC 4954 §4).
    const SCRAM_SHA1_TRACE: &str = "
        S: 220 mx
        C: EHLO client.example
        S: 250-mx
        S: 250 AUTH PLAIN LOGIN CRAM-MD5 SCRAM-SHA-1
        C: AUTH SCRAM-SHA-1 <client-first: user user>
        S: 334 cj1meWtvK2QybGJiRmdPTlJ2OXFreGRhd0wzcmZjTkhZSlkxWlZ2V1ZzN2oscz1RU1hDUitRNnNlazhiZjkyLGk9NDA5Ng==
        C: <redacted: SCRAM client proof for user user>";

    #[test]
    fn scram_sha1_rfc5802_example_and_auto_prefers_scram() {
        let script = format!(
            "{SCRAM_SHA1_TRACE}
            S: 334 dj1ybUY5cHFWOFM3c3VBb1pXamE0ZEpSa0ZzS1E9
            C: 
            S: 235 2.7.0 Authentication successful
            C: QUIT
            S: 221 bye"
        );
        let run = drive(with_choice(TlsMode::Implicit, AuthChoice::Auto), &script, 3);
        assert_eq!(run.outcome, Some(Ok(())));
        let wire = String::from_utf8(run.wire).unwrap();
        // The client-final-message of RFC 5802 §5, base64.
        assert!(wire.contains(&format!(
            "{}\r\n\r\nQUIT",
            B64.encode("c=biws,r=fyko+d2lbbFgONRv9qkxdawL3rfcNHYJY1ZVvWVs7j,p=v0X8v3Bz2T0CJGbJQyF0X+HI4Ts=")
        )), "{wire}");
        for chunk in [1, 2, 5, 11, usize::MAX] {
            let r = drive(
                with_choice(TlsMode::Implicit, AuthChoice::Auto),
                &script,
                chunk,
            );
            assert_eq!(r.outcome, Some(Ok(())), "chunk {chunk}");
        }
        // The reason is recorded for the report.
        let mut s = Session::new(with_choice(TlsMode::Implicit, AuthChoice::Auto));
        s.handle_input(b"220 mx\r\n");
        s.handle_input(b"250-mx\r\n250 AUTH PLAIN SCRAM-SHA-1\r\n");
        assert_eq!(s.mechanism(), Some(Mechanism::ScramSha1));
        assert!(s.mechanism_reason().unwrap().contains("SCRAM"));
    }

    /// Drives `script` at several chunk sizes (server lines the session redacts cannot be
    /// compared with the script); returns the outcome and the recorded lines.
    fn drive_all(cfg: SessionConfig, script: &str) -> (Result<(), Failure>, Vec<String>) {
        let whole = drive(cfg.clone(), script, usize::MAX);
        for chunk in [1, 2, 5, 11] {
            let r = drive(cfg.clone(), script, chunk);
            assert_eq!(
                (&r.lines, &r.outcome, &r.wire),
                (&whole.lines, &whole.outcome, &whole.wire),
                "chunk {chunk}"
            );
        }
        (whole.outcome.expect("finished"), whole.lines)
    }

    #[test]
    fn scram_server_final_inside_the_235_is_verified_and_redacted() {
        let script = format!(
            "{SCRAM_SHA1_TRACE}
            S: 235 dj1ybUY5cHFWOFM3c3VBb1pXamE0ZEpSa0ZzS1E9
            C: QUIT
            S: 221 bye"
        );
        let (o, lines) = drive_all(
            with_choice(TlsMode::Implicit, AuthChoice::ScramSha1),
            &script,
        );
        assert_eq!(o, Ok(()));
        // With the server-first, the signature would allow an offline password guess.
        assert!(lines.contains(&"S: 235 <redacted: SCRAM server signature>".to_owned()));
        assert!(!lines.iter().any(|l| l.contains("dj1ybUY5")), "{lines:?}");
    }

    /// A server (or a man in the middle) that does not know the password cannot compute
    /// the signature: the 235 that follows is not trusted, the exchange is cancelled.
    #[test]
    fn scram_wrong_or_missing_server_signature_fails_despite_235() {
        for (tail, want, shown) in [
            (
                "S: 334 dj1BQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUE9\nC: *\nS: 501 5.7.0 cancelled",
                sasl::ScramError::SignatureMismatch,
                "S: 334 <redacted: SCRAM server signature>",
            ),
            (
                "S: 235 2.7.0 ok",
                sasl::ScramError::BadServerFinal,
                "S: 235 2.7.0 ok",
            ),
        ] {
            let script = format!("{SCRAM_SHA1_TRACE}\n{tail}\nC: QUIT\nS: 221 bye");
            let (o, lines) = drive_all(
                with_choice(TlsMode::Implicit, AuthChoice::ScramSha1),
                &script,
            );
            assert!(
                matches!(&o, Err(Failure::ScramServerUnverified { error, .. }) if *error == want),
                "{o:?}"
            );
            assert!(lines.contains(&shown.to_owned()), "{lines:?}");
            if let Err(Failure::ScramServerUnverified { reply, .. }) = &o {
                assert_eq!(format!("S: {}", reply.display_lines().join("")), shown);
            }
            assert_eq!(lines.last().map(String::as_str), Some("S: 221 bye"));
        }
    }

    #[test]
    fn cram_md5_or_scram_success_before_any_response_is_a_failure() {
        for (choice, cmd) in [
            (AuthChoice::CramMd5, "AUTH CRAM-MD5"),
            (
                AuthChoice::ScramSha256,
                "AUTH SCRAM-SHA-256 <client-first: user user>",
            ),
        ] {
            let script = format!(
                "S: 220 mx\nC: EHLO client.example\nS: 250-mx\nS: 250 AUTH CRAM-MD5 SCRAM-SHA-256\n\
                 C: {cmd}\nS: 235 2.7.0 welcome\nC: QUIT\nS: 221 bye"
            );
            let (o, _) = check(with_choice(TlsMode::Implicit, choice), &script);
            assert!(matches!(o, Err(Failure::AuthProtocol { .. })), "{o:?}");
        }
    }

    #[test]
    fn scram_nonce_not_extending_ours_is_cancelled_before_any_proof() {
        // r=attacker-chosen nonce, not starting with the client's.
        let script = format!(
            "{MX_EHLO}
            S: 250 AUTH SCRAM-SHA-256
            C: AUTH SCRAM-SHA-256 <client-first: user user>
            S: 334 cj1ldmlsLHM9UVNYQ1IrUTZzZWs4YmY5MixpPTQwOTY=
            C: *
            S: 501 cancelled
            {QUIT_BYE}"
        );
        let (o, wire) = check(with_choice(TlsMode::Implicit, AuthChoice::Auto), &script);
        assert!(matches!(o, Err(Failure::AuthProtocol { .. })), "{o:?}");
        never_sent(&wire, "p=");
    }

    #[test]
    fn cram_md5_rfc2195_example_and_auto_without_tls() {
        let mut c = cfg(TlsMode::None);
        c.allow_plaintext_auth = true;
        c.auth = Some(AuthConfig {
            user: "tim".into(),
            credential: Credential::Password {
                secret: Secret::new("tanstaaftanstaaf"),
                choice: AuthChoice::Auto,
            },
        });
        // Without TLS, CRAM-MD5 comes before PLAIN: the password stays off the wire.
        let script = format!(
            "{MX_EHLO}
            S: 250 AUTH PLAIN LOGIN CRAM-MD5
            C: AUTH CRAM-MD5
            S: 334 PDE4OTYuNjk3MTcwOTUyQHBvc3RvZmZpY2UucmVzdG9uLm1jaS5uZXQ+
            C: <redacted: CRAM-MD5 response for user tim>
            S: 235 2.7.0 ok
            {QUIT_BYE}"
        );
        let (o, wire) = check(c, &script);
        assert_eq!(o, Ok(()));
        let wire = String::from_utf8(wire).unwrap();
        assert!(wire.contains("\r\ndGltIGI5MTNhNjAyYzdlZGE3YTQ5NWI0ZTZlNzMzNGQzODkw\r\n"));
        assert!(!wire.contains("tanstaaf"));
    }

    #[test]
    fn auto_inside_tls_prefers_plain_to_cram_md5_but_uses_cram_md5_alone() {
        let offered = |l: &str| l.split(' ').map(str::to_owned).collect::<Vec<_>>();
        let pick = |l: &str, tls| pick_mechanism(&offered(l), tls).map(|p| p.0);
        assert_eq!(pick("CRAM-MD5 PLAIN LOGIN", true), Some(Mechanism::Plain));
        assert_eq!(pick("CRAM-MD5", true), Some(Mechanism::CramMd5));
        assert_eq!(pick("CRAM-MD5 PLAIN", false), Some(Mechanism::CramMd5));
        assert_eq!(
            pick("SCRAM-SHA-1 SCRAM-SHA-256 PLAIN", true),
            Some(Mechanism::ScramSha256)
        );
        assert_eq!(pick("GSSAPI DIGEST-MD5", true), None);
    }

    #[test]
    fn external_with_client_certificate() {
        let mut c = cfg(TlsMode::Implicit);
        c.auth = Some(AuthConfig {
            user: String::new(),
            credential: Credential::External,
        });
        let script = format!(
            "{MX_EHLO}
            S: 250 AUTH PLAIN EXTERNAL
            C: AUTH EXTERNAL =
            S: 235 2.7.0 ok
            {QUIT_BYE}"
        );
        assert_eq!(check(c.clone(), &script).0, Ok(()));
        let script = format!(
            "{MX_EHLO}
            S: 250 AUTH PLAIN
            {QUIT_BYE}"
        );
        assert!(matches!(
            check(c, &script).0,
            Err(Failure::MechanismUnsupported { wanted: Some(w), .. }) if w == "EXTERNAL"
        ));
    }

    #[test]
    fn helo_fallback_once_and_never_auth_or_starttls() {
        let mut c = cfg(TlsMode::None);
        c.auth = None;
        let mut s = Session::new(c.clone());
        for l in ["220 old.mx SMTP\r\n", "502 5.5.1 no\r\n", "250 old.mx\r\n"] {
            s.handle_input(l.as_bytes());
        }
        assert!(s.helo_fallback());
        // HELO after a 502 or 500 to EHLO (RFC 5321 §4.1.4); STARTTLS or AUTH is
        // impossible on a HELO-only server.
        for (config, ehlo_reply, want) in [
            (c, "502 5.5.1 command not implemented", Ok(())),
            (
                cfg(TlsMode::Starttls),
                "500 unrecognized command",
                Err(Failure::NotEsmtp { needed: "STARTTLS" }),
            ),
        ] {
            let script = format!(
                "S: 220 old.mx SMTP
                C: EHLO client.example
                S: {ehlo_reply}
                C: HELO client.example
                S: 250 old.mx
                {QUIT_BYE}"
            );
            assert_eq!(check(config, &script).0, want, "{script}");
        }
        // A refused HELO is the EHLO-stage failure; a 550 to EHLO is no reason for HELO.
        for refusal in [
            "S: 502 no
            C: HELO client.example
            S: 501 no",
            "S: 550 go away",
        ] {
            let script = format!(
                "S: 220 mx
                C: EHLO client.example
                {refusal}
                {QUIT_BYE}"
            );
            assert!(
                matches!(
                    check(cfg(TlsMode::Starttls), &script).0,
                    Err(Failure::Reply {
                        stage: Stage::Ehlo,
                        ..
                    })
                ),
                "{script}"
            );
        }
    }

    #[test]
    fn quit_after_each_stage_sends_nothing_more() {
        let quit = |stage: Stage, mode: TlsMode, script: &str| {
            let mut c = with_mail(cfg(mode), true);
            c.quit_after = Some(stage);
            let (o, wire) = check(c, script);
            assert_eq!(o, Ok(()), "{stage}");
            String::from_utf8(wire).unwrap()
        };
        quit(
            Stage::Greeting,
            TlsMode::Starttls,
            "S: 220 mx\nC: QUIT\nS: 221 bye",
        );
        quit(
            Stage::Ehlo,
            TlsMode::Starttls,
            "S: 220 mx\nC: EHLO client.example\nS: 250-mx\nS: 250 STARTTLS\nC: QUIT\nS: 221 bye",
        );
        quit(
            Stage::Tls,
            TlsMode::Starttls,
            "S: 220 mx\nC: EHLO client.example\nS: 250-mx\nS: 250 STARTTLS\nC: STARTTLS\nS: 220 go\n* TLS\nC: QUIT\nS: 221 bye",
        );
        quit(
            Stage::Tls,
            TlsMode::Implicit,
            "S: 220 mx\nC: QUIT\nS: 221 bye",
        );
        quit(
            Stage::Ehlo,
            TlsMode::Implicit,
            "S: 220 mx\nC: EHLO client.example\nS: 250-mx\nS: 250 AUTH PLAIN\nC: QUIT\nS: 221 bye",
        );
        quit(
            Stage::Tls,
            TlsMode::None,
            "S: 220 mx\nC: EHLO client.example\nS: 250-mx\nS: 250 AUTH PLAIN\nC: QUIT\nS: 221 bye",
        );
        let head = "S: 220 mx\nC: EHLO client.example\nS: 250-mx\nS: 250-PIPELINING\nS: 250 AUTH PLAIN\nC: AUTH PLAIN <redacted: user you@gmail.com>\nS: 235 ok";
        quit(
            Stage::Auth,
            TlsMode::Implicit,
            &format!("{head}\nC: QUIT\nS: 221 bye"),
        );
        // Pipelining is off, so RCPT and DATA are not in flight when quitting after MAIL.
        let w = quit(
            Stage::Mail,
            TlsMode::Implicit,
            &format!("{head}\nC: MAIL FROM:<you@gmail.com>\nS: 250 ok\nC: QUIT\nS: 221 bye"),
        );
        assert!(!w.contains("RCPT"));
        let w = quit(
            Stage::Rcpt,
            TlsMode::Implicit,
            &format!("{head}\nC: MAIL FROM:<you@gmail.com>\nS: 250 ok\nC: RCPT TO:<friend@example.com>\nS: 250 ok\nC: QUIT\nS: 221 bye"),
        );
        assert!(!w.contains("DATA"));
    }

    #[test]
    fn message_over_the_announced_size_is_not_sent() {
        let script = format!(
            "{MX_EHLO}
            S: 250-SIZE 20
            S: 250 AUTH PLAIN
            {PLAIN_OK}
            {QUIT_BYE}"
        );
        let (o, wire) = check(with_mail(cfg(TlsMode::Implicit), true), &script);
        assert_eq!(
            o,
            Err(Failure::MessageTooLarge {
                size: 32,
                limit: 20
            })
        );
        never_sent(&wire, "MAIL");
    }

    #[test]
    fn smtputf8_and_8bitmime_are_used_when_needed_or_the_message_is_not_sent() {
        let utf8 = |c: SessionConfig| {
            let mut c = with_mail(c, false);
            let m = c.mail.as_mut().unwrap();
            m.to = vec!["jörg@bücher.example".into()];
            m.message = "Subject: grüße\n\nhé\n".into();
            c
        };
        let script = format!(
            "{MX_EHLO}
            S: 250-8BITMIME
            S: 250-SMTPUTF8
            S: 250 AUTH PLAIN
            {PLAIN_OK}
            C: MAIL FROM:<you@gmail.com> BODY=8BITMIME SMTPUTF8
            S: 250 ok
            C: RCPT TO:<jörg@bücher.example>
            S: 250 ok
            C: DATA
            S: 354 go
            C: <message: 3 lines, 28 bytes>
            S: 250 queued
            {QUIT_BYE}"
        );
        assert_eq!(check(utf8(cfg(TlsMode::Implicit)), &script).0, Ok(()));
        let script = format!(
            "{MX_EHLO}
            S: 250-8BITMIME
            S: 250 AUTH PLAIN
            {PLAIN_OK}
            {QUIT_BYE}"
        );
        assert_eq!(
            check(utf8(cfg(TlsMode::Implicit)), &script).0,
            Err(Failure::ExtensionNotOffered {
                extension: "SMTPUTF8",
                why: "an address is not ASCII"
            })
        );
        let mut ascii_addr = utf8(cfg(TlsMode::Implicit));
        ascii_addr.mail.as_mut().unwrap().to = vec!["friend@example.com".into()];
        let script = format!(
            "{MX_PLAIN_SENT}
            S: 235 ok
            {QUIT_BYE}"
        );
        assert!(matches!(
            check(ascii_addr, &script).0,
            Err(Failure::ExtensionNotOffered {
                extension: "8BITMIME",
                ..
            })
        ));
    }
}
