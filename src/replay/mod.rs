//! The replay server: plays the server side of a [`Fixture`] over TCP, with STARTTLS
//! (RFC 3207) or implicit TLS (RFC 8314) as recorded, and checks every client line.
//!
//! Users test their own apps in CI against it (`smtprobe serve FIXTURE`), and
//! smtprobe's tests run the real probe against it, with no network beyond loopback.
//! The certificate is generated at start ([`TestPki`]) for `localhost`, `127.0.0.1`,
//! `::1` and the fixture's host; its CA can be written out for the client to trust.
//!
//! A client that deviates gets the answer a real server would give (RFC 5321 §4.2.4:
//! 500 unrecognised, 501 bad arguments, 503 bad sequence; RFC 4954 §4 for AUTH), and
//! the deviation is reported with the fixture line it broke. Credentials received are
//! never logged, not even decoded.

mod script;

use crate::certs::{CertError, ServerCert, TestPki};
use crate::fixture::{
    step_text, Fixture, FixtureError, Mismatch, MismatchKind, Step, StepLine, MAX_FIXTURE_BYTES,
};
use crate::protocol::escape::escape_bytes;
use crate::protocol::{Command, LineEvent, LineReader};
use script::{Action, Script};
use std::fmt;
use std::io;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::task::JoinSet;
use tokio::time::timeout;
use tokio_rustls::TlsAcceptor;

/// Longest command line read (RFC 4954 §4 allows AUTH responses of 12288 octets; the
/// RFC 5321 §4.5.3.1.4 command limit of 512 is too small for them).
pub const MAX_COMMAND_LINE: usize = 16 * 1024;
/// Largest message body read after DATA.
pub const MAX_MESSAGE: usize = 64 * 1024 * 1024;
/// Deviations tolerated on one connection before the server gives up with 421.
pub const MAX_DEVIATIONS: usize = 10;
/// How long the server waits, after its last line, for the client to close (so its
/// last reply is not lost to a TCP reset).
const LINGER: Duration = Duration::from_secs(2);

/// How the replay server behaves.
#[derive(Debug, Clone)]
pub struct ReplayOptions {
    /// Deadline for each read (and write): a client that goes silent is answered
    /// `421 4.4.2` and dropped. Default 30 s.
    pub read_timeout: Duration,
    /// Extra latency before each reply (`--delay MS`). Default none.
    pub delay: Duration,
    /// Which certificate to present (the broken ones exercise certificate diagnoses).
    pub certificate: ServerCert,
    /// How long [`ReplayServer::serve_one`] waits for a connection; `None` waits
    /// until one arrives.
    pub accept_timeout: Option<Duration>,
}

impl Default for ReplayOptions {
    fn default() -> Self {
        ReplayOptions {
            read_timeout: Duration::from_secs(30),
            delay: Duration::ZERO,
            certificate: ServerCert::Valid,
            accept_timeout: None,
        }
    }
}

/// Why the replay server could not start or accept.
#[derive(Debug)]
pub enum ReplayError {
    /// Binding or accepting failed.
    Io(io::Error),
    /// The test certificate could not be made.
    Cert(CertError),
    /// No connection arrived within [`ReplayOptions::accept_timeout`].
    AcceptTimeout,
}

impl fmt::Display for ReplayError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ReplayError::Io(e) => write!(f, "replay server: {e}"),
            ReplayError::Cert(e) => write!(f, "replay server: {e}"),
            ReplayError::AcceptTimeout => f.write_str("replay server: no client connected in time"),
        }
    }
}

impl std::error::Error for ReplayError {}

impl From<io::Error> for ReplayError {
    fn from(e: io::Error) -> Self {
        ReplayError::Io(e)
    }
}

/// One way a client left the fixture's path.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Deviation {
    /// The fixture line whose step was not followed (0: after the fixture's end).
    pub line: usize,
    /// What the fixture expected there (credentials as placeholders).
    pub expected: String,
    /// What happened instead (credential lines redacted).
    pub got: String,
    /// The reply the server sent in answer, if any.
    pub answer: Option<String>,
}

impl fmt::Display for Deviation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.line > 0 {
            write!(f, "fixture line {}: ", self.line)?;
        }
        write!(f, "expected `{}`, got {}", self.expected, self.got)?;
        if let Some(a) = &self.answer {
            write!(f, " (answered `{a}`)")?;
        }
        Ok(())
    }
}

/// What happened on one connection.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConnectionResult {
    /// The client's address.
    pub peer: Option<SocketAddr>,
    /// True when the client followed the fixture to its end without deviating.
    pub followed: bool,
    /// Every deviation, in order.
    pub deviations: Vec<Deviation>,
    /// How many fixture steps were played.
    pub steps_played: usize,
    /// How many steps the fixture has.
    pub steps_total: usize,
}

impl fmt::Display for ConnectionResult {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let peer = self
            .peer
            .map_or_else(|| "client".to_string(), |p| p.to_string());
        if self.followed {
            return write!(
                f,
                "{peer}: followed the fixture to its end ({} steps)",
                self.steps_total
            );
        }
        write!(
            f,
            "{peer}: did not follow the fixture (stopped at step {} of {})",
            self.steps_played, self.steps_total
        )?;
        for d in &self.deviations {
            write!(f, "\n  {d}")?;
        }
        Ok(())
    }
}

/// A bound replay server.
pub struct ReplayServer {
    fixture: Arc<Fixture>,
    listener: TcpListener,
    pki: TestPki,
    acceptor: TlsAcceptor,
    opts: ReplayOptions,
}

impl fmt::Debug for ReplayServer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ReplayServer")
            .field("fixture", &self.fixture.header.name)
            .field("listener", &self.listener)
            .field("opts", &self.opts)
            .finish_non_exhaustive()
    }
}

impl ReplayServer {
    /// Generates the certificate and binds `addr` (port 0 picks a free port; read it
    /// back with [`ReplayServer::local_addr`]).
    pub async fn bind(
        fixture: Fixture,
        addr: SocketAddr,
        opts: ReplayOptions,
    ) -> Result<ReplayServer, ReplayError> {
        let host = fixture.header.host.clone();
        let mut names = vec!["localhost", "127.0.0.1", "::1"];
        if !names.contains(&host.as_str()) {
            names.push(&host);
        }
        let pki = TestPki::generate(&names).map_err(ReplayError::Cert)?;
        let config = pki
            .server_config_for(opts.certificate)
            .map_err(ReplayError::Cert)?;
        let listener = TcpListener::bind(addr).await?;
        Ok(ReplayServer {
            fixture: Arc::new(fixture),
            listener,
            pki,
            acceptor: TlsAcceptor::from(config),
            opts,
        })
    }

    /// The address the server listens on.
    pub fn local_addr(&self) -> io::Result<SocketAddr> {
        self.listener.local_addr()
    }

    /// The CA certificate (PEM) a client must trust to verify the server.
    pub fn ca_pem(&self) -> String {
        self.pki.ca_pem()
    }

    /// The test PKI (for a client configuration trusting it, in tests).
    pub fn pki(&self) -> &TestPki {
        &self.pki
    }

    /// The fixture being played.
    pub fn fixture(&self) -> &Fixture {
        &self.fixture
    }

    /// Accepts one connection and plays the fixture on it.
    pub async fn serve_one(&self) -> Result<ConnectionResult, ReplayError> {
        let accepted = match self.opts.accept_timeout {
            Some(d) => timeout(d, self.listener.accept())
                .await
                .map_err(|_| ReplayError::AcceptTimeout)?,
            None => self.listener.accept().await,
        };
        let (stream, peer) = accepted?;
        Ok(play(stream, peer, &self.fixture, &self.acceptor, &self.opts).await)
    }

    /// Serves connections concurrently until accepting fails, calling `on_result` with
    /// each finished connection's result.
    pub async fn run_forever(
        self,
        mut on_result: impl FnMut(ConnectionResult),
    ) -> Result<(), ReplayError> {
        let mut tasks = JoinSet::new();
        loop {
            tokio::select! {
                accepted = self.listener.accept() => {
                    let (stream, peer) = accepted?;
                    let fixture = self.fixture.clone();
                    let acceptor = self.acceptor.clone();
                    let opts = self.opts.clone();
                    tasks.spawn(async move {
                        play(stream, peer, &fixture, &acceptor, &opts).await
                    });
                }
                Some(done) = tasks.join_next(), if !tasks.is_empty() => {
                    if let Ok(result) = done {
                        on_result(result);
                    }
                }
            }
        }
    }
}

/// Options of `smtprobe serve` (the CLI maps its flags onto this).
#[derive(Debug, Clone)]
pub struct ServeOptions {
    /// The fixture file.
    pub fixture: PathBuf,
    /// Where to listen (`--listen`, e.g. `127.0.0.1:2525`; port 0 picks one).
    pub listen: SocketAddr,
    /// Where to write the CA certificate in PEM (`--ca-out`).
    pub ca_out: Option<PathBuf>,
    /// Serve one connection, then exit 0 if it followed the fixture, else 1 (`--once`).
    pub once: bool,
    /// Server behaviour (delay, read deadline, certificate).
    pub replay: ReplayOptions,
}

/// Reads a fixture file, refusing one over [`MAX_FIXTURE_BYTES`] before reading it all.
pub fn read_fixture_file(path: &std::path::Path) -> Result<Fixture, String> {
    let file = std::fs::File::open(path).map_err(|e| format!("{}: {e}", path.display()))?;
    let mut bytes = Vec::new();
    io::Read::read_to_end(
        &mut io::Read::take(file, MAX_FIXTURE_BYTES as u64 + 1),
        &mut bytes,
    )
    .map_err(|e| format!("{}: {e}", path.display()))?;
    Fixture::parse_bytes(&bytes).map_err(|e: FixtureError| format!("{}: {e}", path.display()))
}

/// `smtprobe serve`: prints `listening on ADDR` on stdout, then one summary per
/// connection. Returns the exit code: 0 (stopped, or `--once` and the client followed
/// the fixture), 1 (`--once` and it did not), 2 (the fixture, address or CA file is
/// unusable).
pub async fn serve_main(opts: ServeOptions) -> i32 {
    let fixture = match read_fixture_file(&opts.fixture) {
        Ok(f) => f,
        Err(e) => {
            eprintln!("smtprobe serve: {e}");
            return 2;
        }
    };
    let server = match ReplayServer::bind(fixture, opts.listen, opts.replay.clone()).await {
        Ok(s) => s,
        Err(e) => {
            eprintln!("smtprobe serve: {}: {e}", opts.listen);
            return 2;
        }
    };
    if let Some(path) = &opts.ca_out {
        if let Err(e) = std::fs::write(path, server.ca_pem()) {
            eprintln!("smtprobe serve: writing {}: {e}", path.display());
            return 2;
        }
    }
    match server.local_addr() {
        Ok(a) => println!("listening on {a}"),
        Err(e) => {
            eprintln!("smtprobe serve: {e}");
            return 2;
        }
    }
    if opts.once {
        return match server.serve_one().await {
            Ok(r) => {
                println!("{r}");
                i32::from(!r.followed)
            }
            Err(e) => {
                eprintln!("smtprobe serve: {e}");
                1
            }
        };
    }
    tokio::select! {
        r = server.run_forever(|r| println!("{r}")) => match r {
            Ok(()) => 0,
            Err(e) => { eprintln!("smtprobe serve: {e}"); 2 }
        },
        _ = tokio::signal::ctrl_c() => 0,
    }
}

// ---- one connection -------------------------------------------------------------------

trait Io: AsyncRead + AsyncWrite + Unpin + Send {}
impl<T: AsyncRead + AsyncWrite + Unpin + Send> Io for T {}

/// The connection, before or after the TLS handshake.
enum Conn {
    Plain(TcpStream),
    Tls(Box<tokio_rustls::server::TlsStream<TcpStream>>),
}

impl Conn {
    fn io(&mut self) -> &mut dyn Io {
        match self {
            Conn::Plain(s) => s,
            Conn::Tls(s) => s.as_mut(),
        }
    }
}

enum ReadError {
    Eof,
    Timeout,
    TooLong,
    Io(io::Error),
}

struct Player<'a> {
    script: Script<'a>,
    reader: LineReader,
    opts: &'a ReplayOptions,
    deviations: Vec<Deviation>,
}

async fn play(
    stream: TcpStream,
    peer: SocketAddr,
    fixture: &Fixture,
    acceptor: &TlsAcceptor,
    opts: &ReplayOptions,
) -> ConnectionResult {
    // Replies are small writes that follow each other (TLS tickets then the greeting,
    // several reply lines): without TCP_NODELAY, Nagle holds the second until the client's
    // delayed ACK, adding ~40 ms to a wait the real servers do not have.
    let _ = stream.set_nodelay(true);
    let mut p = Player {
        script: Script::new(fixture),
        reader: LineReader::new(MAX_COMMAND_LINE),
        opts,
        deviations: Vec::new(),
    };
    let reached_end = p.run(Conn::Plain(stream), acceptor).await;
    let result = ConnectionResult {
        peer: Some(peer),
        followed: reached_end && p.deviations.is_empty(),
        deviations: p.deviations,
        steps_played: p.script.position(),
        steps_total: fixture.steps.len(),
    };
    tracing::info!(target: "smtprobe::replay", "{result}");
    result
}

impl Player<'_> {
    /// Plays until the fixture ends (true) or the connection is given up (false).
    async fn run(&mut self, mut conn: Conn, acceptor: &TlsAcceptor) -> bool {
        loop {
            match self.script.next_action() {
                Action::Write(bytes) => {
                    if self.write(&mut conn, &bytes).await.is_err() {
                        return false;
                    }
                }
                Action::Pause(d) => tokio::time::sleep(d).await,
                Action::Tls => {
                    conn = match self.start_tls(conn, acceptor).await {
                        Some(c) => c,
                        None => return false,
                    }
                }
                Action::ReadLine => {
                    if !self.read_command(&mut conn).await {
                        return false;
                    }
                }
                Action::ReadMessage => {
                    if !self.read_message(&mut conn).await {
                        return false;
                    }
                }
                Action::End => {
                    linger(&mut conn).await;
                    return true;
                }
            }
        }
    }

    async fn write(&mut self, conn: &mut Conn, bytes: &[u8]) -> Result<(), ()> {
        if !self.opts.delay.is_zero() {
            tokio::time::sleep(self.opts.delay).await;
        }
        let io = conn.io();
        let written = timeout(self.opts.read_timeout, async {
            io.write_all(bytes).await?;
            io.flush().await
        })
        .await;
        match written {
            Ok(Ok(())) => Ok(()),
            Ok(Err(e)) => {
                self.deviate_plain(format!("write failed: {e}"));
                Err(())
            }
            Err(_) => {
                self.deviate_plain("the client stopped reading (write deadline)".into());
                Err(())
            }
        }
    }

    async fn start_tls(&mut self, conn: Conn, acceptor: &TlsAcceptor) -> Option<Conn> {
        let Conn::Plain(tcp) = conn else {
            // `Fixture::parse` allows one TLS step only.
            return Some(conn);
        };
        let early = self.reader.take_buffered();
        if !early.is_empty() {
            // RFC 3207 §4.2 (and CVE-2011-0411): bytes sent before the handshake must
            // not be used after it.
            self.deviate_plain(format!(
                "{} bytes sent after STARTTLS, before the TLS handshake (discarded, RFC 3207 §4.2)",
                early.len()
            ));
        }
        match timeout(self.opts.read_timeout, acceptor.accept(tcp)).await {
            Ok(Ok(tls)) => Some(Conn::Tls(Box::new(tls))),
            Ok(Err(e)) => {
                self.deviate_plain(format!("a failed TLS handshake ({e})"));
                None
            }
            Err(_) => {
                self.deviate_plain("no TLS handshake before the deadline".into());
                None
            }
        }
    }

    /// Reads one line and judges it; false when the connection must end.
    async fn read_command(&mut self, conn: &mut Conn) -> bool {
        let line = match self.read_line(conn).await {
            Ok(l) => l,
            Err(e) => return self.read_failed(conn, e).await,
        };
        let redact = self.script.expects_credentials();
        match self.script.on_line(&line) {
            Ok(()) => {
                tracing::debug!(target: "smtprobe::replay", "C: {}", shown(&line, redact));
                true
            }
            Err(m) => self.answer_deviation(conn, &line, redact, m).await,
        }
    }

    async fn answer_deviation(
        &mut self,
        conn: &mut Conn,
        line: &[u8],
        redact: bool,
        m: Mismatch,
    ) -> bool {
        // A deviating QUIT is still a QUIT: answer it and close (RFC 5321 §4.1.1.10).
        let quit = Command::verb_of(line) == "QUIT";
        let too_many = self.deviations.len() + 1 >= MAX_DEVIATIONS;
        let answer = if quit {
            "221 2.0.0 Bye".to_string()
        } else if too_many {
            "421 4.7.0 Too many errors, closing connection".to_string()
        } else {
            format!(
                "{} (smtprobe replay: see fixture line {})",
                reply_for(m.kind),
                m.line
            )
        };
        self.deviate(
            m.expected,
            format!("`{}`", shown(line, redact)),
            Some(answer.clone()),
        );
        let mut wire = answer.into_bytes();
        wire.extend_from_slice(b"\r\n");
        if self.write(conn, &wire).await.is_err() {
            return false;
        }
        if quit || too_many {
            linger(conn).await;
            return false;
        }
        true
    }

    /// Reads the message body up to the `.` line (RFC 5321 §4.1.1.4).
    async fn read_message(&mut self, conn: &mut Conn) -> bool {
        let mut size = 0usize;
        loop {
            let line = match self.read_line(conn).await {
                Ok(l) => l,
                Err(e) => return self.read_failed(conn, e).await,
            };
            if line == b"." {
                self.script.on_message();
                return true;
            }
            size += line.len() + 2;
            if size > MAX_MESSAGE {
                let answer = "552 5.3.4 Message too big for the replay server";
                self.deviate(
                    "<message>".into(),
                    format!("a message over {MAX_MESSAGE} bytes"),
                    Some(answer.into()),
                );
                let _ = self.write(conn, format!("{answer}\r\n").as_bytes()).await;
                return false;
            }
        }
    }

    async fn read_line(&mut self, conn: &mut Conn) -> Result<Vec<u8>, ReadError> {
        let mut buf = [0u8; 4096];
        loop {
            match self.reader.next_line() {
                Some(LineEvent::Line(l)) => return Ok(l),
                Some(LineEvent::TooLong(_)) => return Err(ReadError::TooLong),
                None => {}
            }
            let n = timeout(self.opts.read_timeout, conn.io().read(&mut buf))
                .await
                .map_err(|_| ReadError::Timeout)?
                .map_err(ReadError::Io)?;
            if n == 0 {
                return Err(ReadError::Eof);
            }
            self.reader.push(&buf[..n]);
        }
    }

    /// Records why reading stopped, answers when a real server would; always false.
    async fn read_failed(&mut self, conn: &mut Conn, e: ReadError) -> bool {
        let (got, answer) = match e {
            ReadError::Eof => ("the end of the connection".to_string(), None),
            ReadError::Io(e) => (format!("a read error ({e})"), None),
            // RFC 5321 §4.5.3.2: a server may close an idle connection with 421.
            ReadError::Timeout => (
                format!("nothing for {} s", self.opts.read_timeout.as_secs_f32()),
                Some("421 4.4.2 Timeout waiting for the client, closing connection"),
            ),
            // RFC 5321 §4.5.3.1.4 / §4.2.2: 500 for a line that is too long.
            ReadError::TooLong => (
                format!("a line longer than {MAX_COMMAND_LINE} bytes"),
                Some("500 5.5.6 Line too long"),
            ),
        };
        let (_, expected) = self.expected_here();
        self.deviate(expected, got, answer.map(str::to_string));
        if let Some(a) = answer {
            let _ = self.write(conn, format!("{a}\r\n").as_bytes()).await;
        }
        false
    }

    /// The fixture line and expected text at the current position (credentials as
    /// placeholders).
    fn expected_here(&self) -> (usize, String) {
        match self.script.fixture().steps.get(self.script.position()) {
            Some(StepLine {
                line,
                step: Step::Client { pattern, .. },
            }) => (*line, pattern.text()),
            Some(s) => (s.line, step_text(&s.step)),
            None => (0, "the end of the conversation".into()),
        }
    }

    fn deviate(&mut self, expected: String, got: String, answer: Option<String>) {
        let (line, _) = self.expected_here();
        let d = Deviation {
            line,
            expected,
            got,
            answer,
        };
        tracing::info!(target: "smtprobe::replay", "{d}");
        self.deviations.push(d);
    }

    fn deviate_plain(&mut self, got: String) {
        let (_, expected) = self.expected_here();
        self.deviate(expected, got, None);
    }
}

/// Closes our side, then waits briefly for the client to close, so the client reads
/// our last reply before the socket goes (a close with unread data sends a reset).
async fn linger(conn: &mut Conn) {
    let io = conn.io();
    let _ = timeout(LINGER, async {
        let _ = io.shutdown().await;
        let mut buf = [0u8; 1024];
        while matches!(io.read(&mut buf).await, Ok(n) if n > 0) {}
    })
    .await;
}

/// The reply a real server gives for each kind of deviation.
fn reply_for(kind: MismatchKind) -> &'static str {
    match kind {
        // RFC 5321 §4.2.4
        MismatchKind::Sequence | MismatchKind::AfterEnd => "503 5.5.1 Bad sequence of commands",
        MismatchKind::Unrecognized => "500 5.5.2 Syntax error, command unrecognized",
        MismatchKind::Arguments => "501 5.5.4 Syntax error in parameters or arguments",
        // RFC 4954 §4: undecodable response, or `*`, gets 501.
        MismatchKind::BadBase64 => "501 5.5.2 Cannot decode response",
        MismatchKind::AuthCancelled => "501 5.7.0 Authentication cancelled",
        // RFC 4954 §6
        MismatchKind::WrongUser => "535 5.7.8 Authentication credentials invalid",
    }
}

/// A received line as it may be logged: AUTH payloads and lines inside an AUTH
/// exchange are redacted (never shown, not even decoded).
fn shown(line: &[u8], in_auth: bool) -> String {
    if Command::verb_of(line) == "AUTH" {
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
    if in_auth {
        return format!("<redacted: {} bytes>", line.len());
    }
    let mut s = escape_bytes(&line[..line.len().min(200)]);
    if line.len() > 200 {
        s.push('…');
    }
    s
}
