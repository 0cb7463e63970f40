//! The replay server: plays a provider's *behaviour*, read from a [`Fixture`], over
//! TCP, with STARTTLS (RFC 3207) or implicit TLS (RFC 8314) as recorded, for any SMTP
//! client, and judges what the client did.
//!
//! Users test their own apps in CI against it (`smtprobe serve FIXTURE`), and
//! smtprobe's tests run the real probe against it, with no network beyond loopback.
//! The certificate is generated at start ([`TestPki`]) for `localhost`, `127.0.0.1`,
//! `::1` and the fixture's host; its CA can be written out for the client to trust.
//!
//! Two ways to play:
//! - as a server (the default): a sans-IO SMTP server state
//!   machine, answers any valid client sequence with the fixture's reply at the stage
//!   where it happens, and gives a [`Verdict`] per connection;
//! - `strict` ([`ReplayOptions::strict`], `--strict`): the fixture is a lock-step script
//!   (the `script` module); a client line that differs gets the answer a real server would give
//!   (RFC 5321 §4.2.4) and is reported with the fixture line it broke. smtprobe's own
//!   tests use it to prove the probe follows every fixture.
//!
//! Credentials received are never logged, not even decoded.

mod behaviour;
mod player;
mod sasl_server;
mod script;
pub mod serve;
pub(crate) mod server;

pub use behaviour::Behaviour;
pub use serve::{serve_main, ServeOptions};
pub use server::{Finding, Verdict};

pub use crate::certs::{CertError, ServerCert, TestPki};
use crate::fixture::{
    step_text, Fixture, FixtureError, Mismatch, MismatchKind, Step, StepLine, MAX_FIXTURE_BYTES,
};
use crate::protocol::{Command, LineEvent, LineReader};
use script::{Action, Script};
use server::Catalog;
use std::fmt;
use std::io;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::task::JoinSet;
use tokio::time::timeout;
use tokio_rustls::TlsAcceptor;

pub use server::MAX_COMMAND_LINE;
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
    /// Play the fixture as a lock-step script (`--strict`): the client must send what
    /// the fixture's client sent, line by line. Default false: play it as a server.
    pub strict: bool,
    /// Every finding fails the connection, not only the security rules
    /// (`--fail-on-findings`).
    pub fail_on_findings: bool,
    /// Extra names in the certificate (`--cert-name`), besides `localhost`,
    /// `127.0.0.1`, `::1` and each fixture's host.
    pub cert_names: Vec<String>,
    /// Where the certificate comes from.
    pub identity: Identity,
}

/// Where the replay server's certificate comes from.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub enum Identity {
    /// A fresh CA and certificate at every start.
    #[default]
    Generated,
    /// A CA kept in this folder across runs (`--state-dir`); see
    /// [`TestPki::load_or_create`].
    StateDir(PathBuf),
    /// The user's own certificate chain and key, PEM (`--cert`, `--key`).
    Files {
        /// The certificate chain.
        cert: PathBuf,
        /// The private key.
        key: PathBuf,
    },
}

impl Default for ReplayOptions {
    fn default() -> Self {
        ReplayOptions {
            read_timeout: Duration::from_secs(30),
            delay: Duration::ZERO,
            certificate: ServerCert::Valid,
            accept_timeout: None,
            strict: false,
            fail_on_findings: false,
            cert_names: Vec::new(),
            identity: Identity::Generated,
        }
    }
}

/// Why the replay server could not start or accept.
#[derive(Debug)]
#[non_exhaustive]
pub enum ReplayError {
    /// Binding or accepting failed.
    Io(io::Error),
    /// The test certificate could not be made.
    Cert(CertError),
    /// No connection arrived within [`ReplayOptions::accept_timeout`].
    AcceptTimeout,
    /// A fixture cannot be played as a server.
    Fixture {
        /// The fixture's name.
        name: String,
        /// What is wrong, with its line.
        error: FixtureError,
    },
    /// A lock-step sequence of fixtures ([`Scenarios::strict_sequence`]) without
    /// [`ReplayOptions::strict`]: it has no server behaviour to play.
    SequenceNeedsStrict,
}

impl fmt::Display for ReplayError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ReplayError::Io(e) => write!(f, "replay server: {e}"),
            ReplayError::Cert(e) => write!(f, "replay server: {e}"),
            ReplayError::AcceptTimeout => f.write_str("replay server: no client connected in time"),
            ReplayError::Fixture { name, error } => write!(f, "replay server: {name}: {error}"),
            ReplayError::SequenceNeedsStrict => f.write_str(
                "replay server: a lock-step sequence of fixtures is played only with strict mode",
            ),
        }
    }
}

impl std::error::Error for ReplayError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            ReplayError::Io(e) => Some(e),
            ReplayError::Cert(e) => Some(e),
            ReplayError::Fixture { error, .. } => Some(error),
            ReplayError::AcceptTimeout | ReplayError::SequenceNeedsStrict => None,
        }
    }
}

/// Why fixtures or scenarios could not be loaded ([`read_fixture_file`],
/// [`serve::load`], [`Scenarios::set`]), with the file and line at fault.
#[derive(Debug)]
#[non_exhaustive]
pub enum LoadError {
    /// Reading a file or folder failed.
    Io {
        /// The file or folder.
        path: std::path::PathBuf,
        /// What the system said.
        error: io::Error,
    },
    /// A fixture does not parse, or cannot be played as a server.
    Fixture {
        /// The fixture file (`None`: a fixture given in memory).
        path: Option<std::path::PathBuf>,
        /// What is wrong, with its line.
        error: FixtureError,
    },
    /// A `.sequence` file over 64 KiB.
    SequenceTooLarge(std::path::PathBuf),
    /// A `.sequence` line naming no fixture of the folder.
    UnknownInSequence {
        /// The sequence file.
        path: std::path::PathBuf,
        /// The 1-based line.
        line: usize,
        /// The name on it.
        name: String,
    },
    /// A `.sequence` mixing TLS modes (one listener speaks one mode).
    MixedModes {
        /// The sequence file.
        path: std::path::PathBuf,
        /// The 1-based line.
        line: usize,
        /// The scenario on that line.
        name: String,
        /// Its mode.
        mode: crate::TlsMode,
        /// The mode the sequence started with.
        first: crate::TlsMode,
    },
    /// A `.sequence` that names no scenario.
    NoNamesInSequence(std::path::PathBuf),
    /// Two scenarios of a folder with one name (`file` holds the second).
    DuplicateName {
        /// The second file.
        file: std::path::PathBuf,
        /// The name.
        name: String,
        /// True when a `.sequence` has a fixture's name.
        sequence: bool,
    },
    /// A folder with no `.fixture` file.
    NoFixtures(std::path::PathBuf),
    /// A one-fixture file asked to start with another scenario.
    ScenarioNotInFile {
        /// The scenario asked for.
        asked: String,
        /// The file.
        path: std::path::PathBuf,
        /// The one scenario it plays.
        plays: String,
    },
    /// No scenario has the name asked for as the default.
    NoSuchScenario(String),
    /// A sequence with no fixture in it.
    EmptySequence,
}

impl fmt::Display for LoadError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            LoadError::Io { path, error } => write!(f, "{}: {error}", path.display()),
            LoadError::Fixture {
                path: Some(path),
                error,
            } => write!(f, "{}: {error}", path.display()),
            LoadError::Fixture { path: None, error } => error.fmt(f),
            LoadError::SequenceTooLarge(p) => write!(f, "{}: over 64 KiB", p.display()),
            LoadError::UnknownInSequence { path, line, name } => write!(
                f,
                "{}:{line}: no fixture named `{name}` in this folder",
                path.display()
            ),
            LoadError::MixedModes {
                path,
                line,
                name,
                mode,
                first,
            } => write!(
                f,
                "{}:{line}: `{name}` uses mode {}, the sequence started with {} (one \
                 listener speaks one TLS mode)",
                path.display(),
                mode.as_str(),
                first.as_str()
            ),
            LoadError::NoNamesInSequence(p) => {
                write!(f, "{}: no scenario names in it", p.display())
            }
            LoadError::DuplicateName {
                file,
                name,
                sequence: false,
            } => write!(f, "{}: a second scenario named `{name}`", file.display()),
            LoadError::DuplicateName {
                file,
                name,
                sequence: true,
            } => write!(
                f,
                "{}: a fixture has the same name `{name}`",
                file.display()
            ),
            LoadError::NoFixtures(p) => {
                write!(f, "{}: no .fixture file in this folder", p.display())
            }
            LoadError::ScenarioNotInFile { asked, path, plays } => write!(
                f,
                "scenario {asked}: {} plays only `{plays}`",
                path.display()
            ),
            LoadError::NoSuchScenario(name) => write!(f, "no scenario named `{name}`"),
            LoadError::EmptySequence => f.write_str("an empty sequence"),
        }
    }
}

impl std::error::Error for LoadError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            LoadError::Io { error, .. } => Some(error),
            LoadError::Fixture { error, .. } => Some(error),
            _ => None,
        }
    }
}

impl LoadError {
    fn io(path: &std::path::Path) -> impl FnOnce(io::Error) -> LoadError + '_ {
        move |error| LoadError::Io {
            path: path.to_owned(),
            error,
        }
    }

    fn fixture(path: &std::path::Path) -> impl FnOnce(FixtureError) -> LoadError + '_ {
        move |error| LoadError::Fixture {
            path: Some(path.to_owned()),
            error,
        }
    }
}

impl From<io::Error> for ReplayError {
    fn from(e: io::Error) -> Self {
        ReplayError::Io(e)
    }
}

/// One way a client left the fixture's path.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
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

/// Most lines a [`ClientTap`] keeps (a client flooding a silent server cannot grow it
/// without bound).
pub const MAX_TAPPED_LINES: usize = 10_000;

/// A copy of what a strict-mode client sent, raw, for a test harness that must assert
/// what reached the server ("the password never reached the server", "exactly one
/// AUTH", the message headers): smtprobe's own tests play their scripted servers as
/// fixtures and check smtprobe, the client, this way. It holds credentials in clear, so
/// it is off unless [`ReplayServer::with_tap`] sets it, is never logged, and its
/// `Debug` shows only counts.
#[derive(Clone, Default)]
pub struct ClientTap(Arc<std::sync::Mutex<Tapped>>);

/// What a [`ClientTap`] holds (no `Debug`: credentials in clear).
#[derive(Clone, Default)]
pub struct Tapped {
    /// Every command line received, lossy UTF-8, without its line end; also what
    /// arrived during `* silence`. At most [`MAX_TAPPED_LINES`].
    pub lines: Vec<String>,
    /// The last message body received after `354`, lines with the ending each had
    /// (CRLF, or a bare LF), without the final `.` line.
    pub body: String,
}

impl fmt::Debug for ClientTap {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let n = self.0.lock().map_or(0, |t| t.lines.len());
        write!(f, "ClientTap({n} lines)")
    }
}

impl ClientTap {
    /// A copy of what was received so far.
    pub fn get(&self) -> Tapped {
        self.0.lock().map(|t| t.clone()).unwrap_or_default()
    }

    fn line(&self, line: &[u8]) {
        if let Ok(mut t) = self.0.lock() {
            if t.lines.len() < MAX_TAPPED_LINES {
                t.lines.push(String::from_utf8_lossy(line).into_owned());
            }
        }
    }

    fn body(&self, body: String) {
        if let Ok(mut t) = self.0.lock() {
            t.body = body;
        }
    }
}

/// What happened on one connection.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct ConnectionResult {
    /// The client's address.
    pub peer: Option<SocketAddr>,
    /// Strict mode: true when the client followed the fixture to its end without
    /// deviating. Server mode: the same as [`ConnectionResult::passed`].
    pub followed: bool,
    /// Strict mode: every deviation, in order.
    pub deviations: Vec<Deviation>,
    /// Strict mode: how many fixture steps were played.
    pub steps_played: usize,
    /// Strict mode: how many steps the fixture has.
    pub steps_total: usize,
    /// The scenario played (the fixture's name).
    pub scenario: String,
    /// Its `expect` header (`ok`, or `STAGE CODE`).
    pub expect: String,
    /// True when the client received the scenario's decisive reply (strict mode: it
    /// followed the fixture).
    pub result_delivered: bool,
    /// What the client did that an app should not (server mode).
    pub findings: Vec<Finding>,
    /// True when the connection passed: the result was delivered and no security rule
    /// was broken (with `fail_on_findings`: no finding at all).
    pub passed: bool,
    /// True when played in strict mode.
    pub strict: bool,
}

/// One finding as `serve --json` prints it.
#[derive(serde::Serialize)]
struct FindingJson<'a> {
    rule: &'a str,
    message: &'a str,
    security: bool,
}

/// One connection as `serve --json` prints it (fields in this order).
#[derive(serde::Serialize)]
struct ConnectionJson<'a> {
    event: &'static str,
    peer: Option<String>,
    scenario: &'a str,
    expect: &'a str,
    result_delivered: bool,
    findings: Vec<FindingJson<'a>>,
    passed: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    deviations: Option<Vec<String>>,
}

impl ConnectionResult {
    /// The JSON object (one line) `serve --json` prints for this connection:
    /// `{"event":"connection","peer":…,"scenario":…,"expect":…,"result_delivered":…,
    /// "findings":[{"rule":…,"message":…,"security":…}],"passed":…}`, plus
    /// `"deviations"` in strict mode.
    pub fn to_json(&self) -> String {
        let v = ConnectionJson {
            event: "connection",
            peer: self.peer.map(|p| p.to_string()),
            scenario: &self.scenario,
            expect: &self.expect,
            result_delivered: self.result_delivered,
            findings: self
                .findings
                .iter()
                .map(|f| FindingJson {
                    rule: f.rule,
                    message: &f.message,
                    security: f.security,
                })
                .collect(),
            passed: self.passed,
            deviations: self
                .strict
                .then(|| self.deviations.iter().map(|d| d.to_string()).collect()),
        };
        serde_json::to_string(&v).unwrap_or_else(|_| "{}".into())
    }
}

impl fmt::Display for ConnectionResult {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let peer = self
            .peer
            .map_or_else(|| "client".to_string(), |p| p.to_string());
        if !self.strict {
            let verdict = if self.passed { "passed" } else { "FAILED" };
            let delivered = if self.result_delivered {
                "the client received the result"
            } else {
                "the client did NOT receive the result"
            };
            write!(
                f,
                "{peer} {} ({}): {verdict}: {delivered}",
                self.scenario, self.expect
            )?;
            for x in &self.findings {
                let kind = if x.security { "security" } else { "finding" };
                write!(f, "; {kind} {}: {}", x.rule, x.message)?;
            }
            return Ok(());
        }
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

/// The scenarios one server plays: one fixture, or a folder's fixtures and sequences.
pub struct Scenarios {
    entries: Vec<Entry>,
    default: usize,
    /// The fixtures themselves, for strict mode: one, or a lock-step sequence across
    /// connections ([`Scenarios::strict_sequence`]).
    fixtures: Vec<Arc<Fixture>>,
    /// The next connection's index into `fixtures` (the last repeats).
    next_fixture: AtomicUsize,
}

/// A scenario, or a sequence handing out scenarios on successive connections.
struct Entry {
    name: String,
    items: Vec<Arc<Behaviour>>,
    next: AtomicUsize,
}

impl Entry {
    /// The next scenario: a sequence advances, then repeats its last.
    fn take(&self) -> Arc<Behaviour> {
        let i = self.next.fetch_add(1, Ordering::Relaxed);
        self.items[i.min(self.items.len() - 1)].clone()
    }
}

impl fmt::Debug for Scenarios {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let names: Vec<&str> = self.entries.iter().map(|e| e.name.as_str()).collect();
        f.debug_struct("Scenarios")
            .field("names", &names)
            .field("default", &self.entries.get(self.default).map(|e| &e.name))
            .finish()
    }
}

impl Scenarios {
    /// One fixture.
    pub fn single(fixture: Fixture) -> Result<Scenarios, FixtureError> {
        let b = Arc::new(Behaviour::from_fixture(&fixture)?);
        Ok(Scenarios {
            entries: vec![Entry {
                name: b.name.clone(),
                items: vec![b],
                next: AtomicUsize::new(0),
            }],
            default: 0,
            fixtures: vec![Arc::new(fixture)],
            next_fixture: AtomicUsize::new(0),
        })
    }

    /// Strict mode only: the i-th connection plays `fixtures[i]` lock-step (the last one
    /// repeats). No server behaviour is derived, so a fixture that is no valid server
    /// (no greeting, raw bytes) can still be played: smtprobe's own tests script hostile
    /// servers this way, one fixture per connection of a check.
    pub fn strict_sequence(fixtures: Vec<Fixture>) -> Result<Scenarios, LoadError> {
        if fixtures.is_empty() {
            return Err(LoadError::EmptySequence);
        }
        Ok(Scenarios {
            entries: Vec::new(),
            default: 0,
            fixtures: fixtures.into_iter().map(Arc::new).collect(),
            next_fixture: AtomicUsize::new(0),
        })
    }

    /// The fixture the next strict connection plays.
    fn next_strict(&self) -> Option<Arc<Fixture>> {
        let i = self.next_fixture.fetch_add(1, Ordering::Relaxed);
        self.fixtures
            .get(i.min(self.fixtures.len().saturating_sub(1)))
            .cloned()
    }

    /// Several scenarios: `(name, items)` in order, a sequence having several items;
    /// `default` names the one a connection starts with.
    pub fn set(
        entries: Vec<(String, Vec<Arc<Behaviour>>)>,
        default: &str,
    ) -> Result<Scenarios, LoadError> {
        let default = entries
            .iter()
            .position(|(n, _)| n == default)
            .ok_or_else(|| LoadError::NoSuchScenario(default.to_owned()))?;
        if entries.iter().any(|(_, items)| items.is_empty()) {
            return Err(LoadError::EmptySequence);
        }
        Ok(Scenarios {
            entries: entries
                .into_iter()
                .map(|(name, items)| Entry {
                    name,
                    items,
                    next: AtomicUsize::new(0),
                })
                .collect(),
            default,
            fixtures: Vec::new(),
            next_fixture: AtomicUsize::new(0),
        })
    }

    /// The scenario a new connection starts with (server mode; a strict-only set has
    /// none and is never asked).
    pub fn first(&self) -> Arc<Behaviour> {
        self.entries[self.default].take()
    }

    /// The names, in order.
    pub fn names(&self) -> Vec<&str> {
        self.entries.iter().map(|e| e.name.as_str()).collect()
    }

    fn catalog(self: &Arc<Self>) -> Option<Arc<dyn Catalog>> {
        (self.entries.len() > 1).then(|| self.clone() as Arc<dyn Catalog>)
    }

    /// Every host name the certificate must carry.
    fn hosts(&self) -> Vec<String> {
        let mut out: Vec<String> = Vec::new();
        for e in &self.entries {
            for b in &e.items {
                if !out.contains(&b.host) {
                    out.push(b.host.clone());
                }
            }
        }
        for f in &self.fixtures {
            if !out.contains(&f.header.host) {
                out.push(f.header.host.clone());
            }
        }
        out
    }
}

impl Catalog for Scenarios {
    /// The folder rule (`fixtures/README.md`): `key` is a scenario's full name, or the
    /// end of it after a `-` (`app-password-required` names
    /// `gmail-587-app-password-required`); the first by name among those whose TLS
    /// mode is the connection's. A sequence hands out its next scenario.
    fn pick(&self, key: &str, mode: crate::TlsMode) -> Option<Arc<Behaviour>> {
        let suffix = format!("-{key}");
        let fits = |e: &&Entry| e.items.iter().all(|b| b.mode == mode);
        let exact = self.entries.iter().filter(fits).find(|e| e.name == key);
        exact
            .or_else(|| {
                self.entries
                    .iter()
                    .filter(fits)
                    .find(|e| e.name.ends_with(&suffix))
            })
            .map(Entry::take)
    }
}

/// The TLS acceptors for each certificate mode.
pub(crate) struct Tls {
    valid: TlsAcceptor,
    broken: Vec<(ServerCert, TlsAcceptor)>,
}

impl Tls {
    fn acceptor(&self, which: ServerCert) -> &TlsAcceptor {
        self.broken
            .iter()
            .find(|(c, _)| *c == which)
            .map_or(&self.valid, |(_, a)| a)
    }
}

/// A bound replay server.
pub struct ReplayServer {
    scenarios: Arc<Scenarios>,
    listener: TcpListener,
    pki: TestPki,
    tls: Arc<Tls>,
    opts: ReplayOptions,
    tap: Option<ClientTap>,
}

impl fmt::Debug for ReplayServer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ReplayServer")
            .field("scenarios", &self.scenarios)
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
        let name = fixture.header.name.clone();
        let scenarios =
            Scenarios::single(fixture).map_err(|error| ReplayError::Fixture { name, error })?;
        ReplayServer::bind_scenarios(scenarios, addr, opts).await
    }

    /// Binds a server playing several scenarios (a folder).
    pub async fn bind_scenarios(
        scenarios: Scenarios,
        addr: SocketAddr,
        opts: ReplayOptions,
    ) -> Result<ReplayServer, ReplayError> {
        if scenarios.entries.is_empty() && !opts.strict {
            // A strict sequence has no server behaviour to play.
            return Err(ReplayError::SequenceNeedsStrict);
        }
        let mut names: Vec<String> = ["localhost", "127.0.0.1", "::1"]
            .iter()
            .map(|s| s.to_string())
            .collect();
        for n in scenarios.hosts().into_iter().chain(opts.cert_names.clone()) {
            if !names.contains(&n) {
                names.push(n);
            }
        }
        let refs: Vec<&str> = names.iter().map(String::as_str).collect();
        let pki = match &opts.identity {
            Identity::StateDir(dir) => TestPki::load_or_create(dir, &refs),
            _ => TestPki::generate(&refs),
        }
        .map_err(ReplayError::Cert)?;
        let valid = match &opts.identity {
            Identity::Files { cert, key } => {
                crate::certs::server_config_from_pem_files(cert, key).map_err(ReplayError::Cert)?
            }
            _ => pki.server_config(),
        };
        let mut broken = Vec::new();
        for which in [
            ServerCert::Expired,
            ServerCert::WrongName,
            ServerCert::SelfSigned,
        ] {
            let cfg = pki.server_config_for(which).map_err(ReplayError::Cert)?;
            broken.push((which, TlsAcceptor::from(cfg)));
        }
        let listener = TcpListener::bind(addr).await?;
        Ok(ReplayServer {
            scenarios: Arc::new(scenarios),
            listener,
            pki,
            tls: Arc::new(Tls {
                valid: TlsAcceptor::from(valid),
                broken,
            }),
            opts,
            tap: None,
        })
    }

    /// Strict mode: copies every line the client sends, raw, into `tap` (see
    /// [`ClientTap`]).
    pub fn with_tap(mut self, tap: ClientTap) -> ReplayServer {
        self.tap = Some(tap);
        self
    }

    /// Presents this TLS configuration instead of the generated certificate (the broken
    /// certificate modes stay): a server that demands a client certificate, a
    /// certificate whose names carry escapes. For smtprobe's own tests.
    pub fn with_tls_config(mut self, config: Arc<rustls::ServerConfig>) -> ReplayServer {
        self.tls = Arc::new(Tls {
            valid: TlsAcceptor::from(config),
            broken: self.tls.broken.clone(),
        });
        self
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

    /// The fixture being played (single-fixture servers).
    pub fn fixture(&self) -> Option<&Fixture> {
        self.scenarios.fixtures.first().map(|f| &**f)
    }

    /// The scenarios being played.
    pub fn scenarios(&self) -> &Scenarios {
        &self.scenarios
    }

    /// Waits for the next connection (bounded by [`ReplayOptions::accept_timeout`]).
    pub async fn accept(&self) -> Result<(TcpStream, SocketAddr), ReplayError> {
        let accepted = match self.opts.accept_timeout {
            Some(d) => timeout(d, self.listener.accept())
                .await
                .map_err(|_| ReplayError::AcceptTimeout)?,
            None => self.listener.accept().await,
        };
        Ok(accepted?)
    }

    /// Accepts one connection and plays on it.
    pub async fn serve_one(&self) -> Result<ConnectionResult, ReplayError> {
        let (stream, peer) = self.accept().await?;
        Ok(self.handler()(stream, peer).await)
    }

    /// A function playing one accepted connection, detached from `self` (for spawning).
    pub fn handler(
        &self,
    ) -> impl Fn(
        TcpStream,
        SocketAddr,
    ) -> std::pin::Pin<Box<dyn std::future::Future<Output = ConnectionResult> + Send>>
           + Send
           + Sync
           + 'static {
        let scenarios = self.scenarios.clone();
        let tls = self.tls.clone();
        let opts = self.opts.clone();
        let tap = self.tap.clone();
        move |stream, peer| {
            // Chosen now, not when the task first runs: connections of a strict
            // sequence get their fixtures in the order they were accepted.
            let strict = opts.strict.then(|| scenarios.next_strict()).flatten();
            let scenarios = scenarios.clone();
            let tls = tls.clone();
            let opts = opts.clone();
            let tap = tap.clone();
            Box::pin(async move {
                match strict {
                    Some(f) => {
                        let acceptor = tls.acceptor(if opts.certificate != ServerCert::Valid {
                            opts.certificate
                        } else {
                            f.serve.certificate
                        });
                        play(stream, peer, &f, acceptor, &opts, tap).await
                    }
                    None => player::serve_connection(stream, peer, &scenarios, &tls, &opts).await,
                }
            })
        }
    }

    /// Serves connections concurrently until accepting fails, calling `on_result` with
    /// each finished connection's result.
    pub async fn run_forever(
        self,
        mut on_result: impl FnMut(ConnectionResult),
    ) -> Result<(), ReplayError> {
        let mut tasks = JoinSet::new();
        let handler = self.handler();
        loop {
            tokio::select! {
                accepted = self.listener.accept() => {
                    let (stream, peer) = accepted?;
                    tasks.spawn(handler(stream, peer));
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

/// Reads a fixture file, refusing one over [`MAX_FIXTURE_BYTES`] before reading it all.
pub fn read_fixture_file(path: &std::path::Path) -> Result<Fixture, LoadError> {
    let file = std::fs::File::open(path).map_err(LoadError::io(path))?;
    let mut bytes = Vec::new();
    io::Read::read_to_end(
        &mut io::Read::take(file, MAX_FIXTURE_BYTES as u64 + 1),
        &mut bytes,
    )
    .map_err(LoadError::io(path))?;
    Fixture::parse_bytes(&bytes).map_err(LoadError::fixture(path))
}

/// An I/O error as users may read it: rustls's documentation URLs (its "unexpected
/// EOF" message links to its manual) are cut off.
pub(crate) fn clean_io_error(e: &io::Error) -> String {
    let text = e.to_string();
    match text.find(": https://") {
        Some(i) => text[..i].to_string(),
        None => text,
    }
}

// ---- one connection -------------------------------------------------------------------

pub(crate) trait Io: AsyncRead + AsyncWrite + Unpin + Send {}
impl<T: AsyncRead + AsyncWrite + Unpin + Send> Io for T {}

/// The connection, before or after the TLS handshake.
pub(crate) enum Conn {
    Plain(TcpStream),
    Tls(Box<tokio_rustls::server::TlsStream<TcpStream>>),
}

impl Conn {
    pub(crate) fn io(&mut self) -> &mut dyn Io {
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
    tap: Option<ClientTap>,
}

async fn play(
    stream: TcpStream,
    peer: SocketAddr,
    fixture: &Fixture,
    acceptor: &TlsAcceptor,
    opts: &ReplayOptions,
    tap: Option<ClientTap>,
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
        tap,
    };
    let reached_end = p.run(Conn::Plain(stream), acceptor).await;
    let followed = reached_end && p.deviations.is_empty();
    let result = ConnectionResult {
        peer: Some(peer),
        followed,
        deviations: p.deviations,
        steps_played: p.script.position(),
        steps_total: fixture.steps.len(),
        scenario: fixture.header.name.clone(),
        expect: fixture.header.expect.to_string(),
        result_delivered: followed,
        findings: Vec::new(),
        passed: followed,
        strict: true,
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
                Action::Trickle(bytes, gap) => {
                    if trickle(&mut conn, &bytes, gap, self.opts.read_timeout)
                        .await
                        .is_err()
                    {
                        self.deviate_plain("the client stopped reading (write deadline)".into());
                        return false;
                    }
                }
                Action::Repeat(bytes, n) => {
                    if !self.repeat(&mut conn, &bytes, n).await {
                        return false;
                    }
                }
                Action::Read => {
                    if !self.read_some(&mut conn).await {
                        return false;
                    }
                }
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
                Action::Silence => {
                    match self.tap.clone() {
                        // A test harness records what the client sends meanwhile.
                        Some(tap) => {
                            let mut lines = LineReader::new(MAX_COMMAND_LINE);
                            lines.push(&self.reader.take_buffered());
                            silence_with(&mut conn, self.opts.read_timeout, |b| {
                                lines.push(b);
                                while let Some(LineEvent::Line(l)) = lines.next_line() {
                                    tap.line(&l);
                                }
                            })
                            .await
                        }
                        None => silence(&mut conn, self.opts.read_timeout).await,
                    }
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

    /// `~ repeat N`: the same write N times, each within the write deadline; false when
    /// the client stopped reading (a client that hangs up on a flood ends it).
    async fn repeat(&mut self, conn: &mut Conn, bytes: &[u8], n: u32) -> bool {
        if !self.opts.delay.is_zero() {
            tokio::time::sleep(self.opts.delay).await;
        }
        for i in 0..n {
            let io = conn.io();
            let written = timeout(self.opts.read_timeout, io.write_all(bytes)).await;
            if !matches!(written, Ok(Ok(()))) {
                self.deviate_plain(format!(
                    "the client stopped reading after {i} of {n} repeated writes"
                ));
                return false;
            }
        }
        let _ = timeout(self.opts.read_timeout, conn.io().flush()).await;
        true
    }

    /// `* read`: waits for at least one byte and discards what has arrived (bounded by
    /// the read deadline); false when the client closed or stayed silent.
    async fn read_some(&mut self, conn: &mut Conn) -> bool {
        if !self.reader.take_buffered().is_empty() {
            return true;
        }
        let mut buf = [0u8; 4096];
        match timeout(self.opts.read_timeout, conn.io().read(&mut buf)).await {
            Ok(Ok(n)) if n > 0 => true,
            Ok(Ok(_)) => self.read_failed(conn, ReadError::Eof).await,
            Ok(Err(e)) => self.read_failed(conn, ReadError::Io(e)).await,
            Err(_) => self.read_failed(conn, ReadError::Timeout).await,
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
                self.deviate_plain(format!("a failed TLS handshake ({})", clean_io_error(&e)));
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
        if let Some(t) = &self.tap {
            t.line(&line);
        }
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
        let mut body = String::new();
        loop {
            let line = match self.read_line(conn).await {
                Ok(l) => l,
                Err(e) => return self.read_failed(conn, e).await,
            };
            if line == b"." {
                self.script.on_message();
                if let Some(t) = &self.tap {
                    t.body(body);
                }
                return true;
            }
            if self.tap.is_some() {
                body.push_str(&String::from_utf8_lossy(&line));
                body.push_str(if self.reader.last_line_bare_lf() {
                    "\n"
                } else {
                    "\r\n"
                });
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
    linger_with(conn, |_| {}).await
}

/// [`linger`], handing what still arrives to `seen` (a client carrying on after 421).
pub(crate) async fn linger_with(conn: &mut Conn, mut seen: impl FnMut(&[u8])) {
    let io = conn.io();
    let _ = timeout(LINGER, async {
        let _ = io.shutdown().await;
        let mut buf = [0u8; 1024];
        while let Ok(n) = io.read(&mut buf).await {
            if n == 0 {
                break;
            }
            seen(&buf[..n]);
        }
    })
    .await;
}

/// `~ trickle`: writes `bytes` one at a time, `gap` apart, each write within `deadline`.
pub(crate) async fn trickle(
    conn: &mut Conn,
    bytes: &[u8],
    gap: Duration,
    deadline: Duration,
) -> Result<(), ()> {
    let io = conn.io();
    for (i, b) in bytes.iter().enumerate() {
        if i > 0 {
            tokio::time::sleep(gap).await;
        }
        match timeout(deadline, async {
            io.write_all(std::slice::from_ref(b)).await?;
            io.flush().await
        })
        .await
        {
            Ok(Ok(())) => {}
            _ => return Err(()),
        }
    }
    Ok(())
}

/// `* silence`: read and ignore until the client closes, for `deadline` at most in all
/// (a client trickling bytes cannot hold the connection longer).
pub(crate) async fn silence(conn: &mut Conn, deadline: Duration) {
    silence_with(conn, deadline, |_| {}).await
}

/// [`silence`], handing what arrives to `seen`.
async fn silence_with(conn: &mut Conn, deadline: Duration, mut seen: impl FnMut(&[u8])) {
    let mut buf = [0u8; 4096];
    let io = conn.io();
    let _ = timeout(deadline, async {
        while let Ok(n) = io.read(&mut buf).await {
            if n == 0 {
                break;
            }
            seen(&buf[..n]);
        }
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
    if in_auth && Command::verb_of(line) != "AUTH" {
        return format!("<redacted: {} bytes>", line.len());
    }
    server::shown_command(line)
}
