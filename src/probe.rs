//! One check, end to end: resolve, connect per address, run the session, and — when the
//! TLS mode looks wrong — a second, credential-free connection to find out which mode the
//! port speaks. With `--tls auto` a detected mismatch switches mode before any
//! credential is sent; with an explicit mode it is only diagnosed.

use crate::diagnosis::{self, CredentialShape};
use crate::failure::{ConnectAttempt, Failure, TlsFailureKind};
use crate::protocol::command::{check_helo_name, check_line_safe, check_mailbox, UnsafeValue};
use crate::report::{Report, Settings};
use crate::session::{AuthConfig, Credential, MailConfig, Session, SessionConfig};
use crate::setting::Setting;
use crate::stage::Stage;
use crate::tls_mode::TlsMode;
use crate::transcript::Direction;
use crate::transport::{
    self, connected_event_text, Clock, IpVersion, Recorder, TlsInfo, TlsSettings,
};
use rustls::pki_types::CertificateDer;
use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;
use tokio::net::TcpStream;

/// How to secure the connection: what a user asks for (`--tls`, a batch row's `tls`, a
/// web request's `tls`). [`TlsMode`] is what a check then used; `auto` is the only
/// choice that is not a mode. With the `cli` feature this is also the `--tls` flag's
/// value type (`auto`, `starttls`, `implicit`, `none`): one type from flag to report.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[cfg_attr(feature = "cli", derive(clap::ValueEnum))]
pub enum TlsChoice {
    /// Implicit TLS on 465, STARTTLS otherwise; switches when the port speaks the other.
    #[default]
    Auto,
    /// Plain connection upgraded with STARTTLS (RFC 3207; port 587).
    Starttls,
    /// TLS from the first byte (RFC 8314; port 465).
    Implicit,
    /// No encryption (lab servers, port 25 relays).
    None,
}

impl TlsChoice {
    /// The mode this choice starts with on `port`.
    pub fn initial_mode(self, port: u16) -> TlsMode {
        match self.fixed() {
            Some(mode) => mode,
            None if port == 465 => TlsMode::Implicit,
            None => TlsMode::Starttls,
        }
    }

    /// The mode this choice fixes; `None` for [`TlsChoice::Auto`], which picks by port
    /// and may switch.
    pub fn fixed(self) -> Option<TlsMode> {
        match self {
            TlsChoice::Auto => None,
            TlsChoice::Starttls => Some(TlsMode::Starttls),
            TlsChoice::Implicit => Some(TlsMode::Implicit),
            TlsChoice::None => Some(TlsMode::None),
        }
    }

    /// The port used when none is given: 587, 465 or 25.
    pub fn default_port(self) -> u16 {
        self.fixed().map_or(587, TlsMode::default_port)
    }

    /// The name used on the command line and in requests: auto, starttls, implicit, none.
    pub fn as_str(self) -> &'static str {
        self.fixed().map_or("auto", TlsMode::as_str)
    }

    /// Parses [`TlsChoice::as_str`]'s names (a batch row's or web request's `tls`).
    pub fn parse(s: &str) -> Option<TlsChoice> {
        [
            TlsChoice::Auto,
            TlsChoice::Starttls,
            TlsChoice::Implicit,
            TlsChoice::None,
        ]
        .into_iter()
        .find(|c| c.as_str() == s)
    }
}

impl From<TlsMode> for TlsChoice {
    /// Exactly this mode, no switching.
    fn from(mode: TlsMode) -> TlsChoice {
        match mode {
            TlsMode::Starttls => TlsChoice::Starttls,
            TlsMode::Implicit => TlsChoice::Implicit,
            TlsMode::None => TlsChoice::None,
        }
    }
}

/// The test message's envelope.
#[derive(Debug, Clone)]
pub struct MailTarget {
    /// MAIL FROM.
    pub from: String,
    /// RCPT TO (at least one).
    pub to: Vec<String>,
}

/// Everything one check needs. Build with [`Config::new`] and set fields. Its `Debug`
/// redacts the credentials (AUTH and proxy).
#[derive(Clone)]
#[non_exhaustive]
pub struct Config {
    /// The host name the user configured (certificates are verified against it).
    pub host: String,
    /// The port; `None` picks the mode's default.
    pub port: Option<u16>,
    /// How to secure the connection.
    pub tls: TlsChoice,
    /// Credentials; `None` tests everything up to AUTH without logging in.
    pub auth: Option<AuthConfig>,
    /// Send a test message after AUTH.
    pub mail: Option<MailTarget>,
    /// Extra trust anchors (`--ca-file`), besides webpki-roots.
    pub extra_roots: Vec<CertificateDer<'static>>,
    /// Connect to this address instead of resolving `host` (`--connect-to`).
    pub connect_to: Option<IpAddr>,
    /// Deadline for each network wait.
    pub timeout: Duration,
    /// The EHLO name; `None` picks a valid one for this host.
    pub helo: Option<String>,
    /// Address family restriction (`-4`/`-6`).
    pub ip: IpVersion,
    /// Permit AUTH without TLS.
    pub allow_plaintext_auth: bool,
    /// Pipeline MAIL/RCPT/DATA when the server offers PIPELINING (RFC 2920).
    pub pipelining: bool,
    /// Told about every transcript line and finished stage as the check runs.
    pub observer: Option<transport::Observer>,
    /// `--quit-after`: stop after this stage (connect, greeting, ehlo, tls, auth, mail,
    /// rcpt); the report lists what was not tested.
    pub quit_after: Option<Stage>,
    /// The test message's headers, body, attachments and size (default: a short one).
    pub message: crate::message::MessageSpec,
    /// A TLS client certificate to offer (`--client-cert`, `--client-key`).
    pub client_cert: Option<Arc<transport::ClientCert>>,
    /// Connect through this proxy (`--proxy`, `ALL_PROXY`); the proxy resolves `host`.
    pub proxy: Option<crate::proxy::ProxyConfig>,
    /// Resolve through this DNS server instead of the system resolver (`--dns-server`,
    /// a testing aid).
    pub dns_server: Option<SocketAddr>,
}

impl std::fmt::Debug for Config {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // `auth` and `proxy` redact their own secrets (`AuthConfig`, `ProxyConfig`).
        f.debug_struct("Config")
            .field("host", &self.host)
            .field("port", &self.port)
            .field("tls", &self.tls)
            .field("auth", &self.auth)
            .field("mail", &self.mail)
            .field("extra_roots", &self.extra_roots.len())
            .field("connect_to", &self.connect_to)
            .field("timeout", &self.timeout)
            .field("helo", &self.helo)
            .field("ip", &self.ip)
            .field("allow_plaintext_auth", &self.allow_plaintext_auth)
            .field("pipelining", &self.pipelining)
            .field("quit_after", &self.quit_after)
            .field("message", &self.message)
            .field("client_cert", &self.client_cert)
            .field("proxy", &self.proxy)
            .field("observer", &self.observer)
            .finish()
    }
}

impl Config {
    /// A check of `host` with the defaults: auto TLS, port 587, 15 s per wait, no auth.
    pub fn new(host: impl Into<String>) -> Config {
        Config {
            host: host.into(),
            port: None,
            tls: TlsChoice::Auto,
            auth: None,
            mail: None,
            extra_roots: Vec::new(),
            connect_to: None,
            timeout: Duration::from_secs(15),
            helo: None,
            ip: IpVersion::Any,
            allow_plaintext_auth: false,
            pipelining: true,
            observer: None,
            quit_after: None,
            message: crate::message::MessageSpec::default(),
            client_cert: None,
            proxy: None,
            dns_server: None,
        }
    }

    /// The port the check uses.
    pub fn effective_port(&self) -> u16 {
        self.port.unwrap_or_else(|| self.tls.default_port())
    }

    /// Refuses values that cannot be sent safely (CR/LF injection, empty names) before
    /// anything touches the network.
    pub fn validate(&self) -> Result<(), UnsafeValue> {
        if self.host.is_empty() {
            return Err(UnsafeValue {
                what: Setting::Host,
                reason: "is empty",
            });
        }
        check_line_safe(Setting::Host, &self.host)?;
        // A name TLS cannot verify is the user's to fix, not a DNS answer (every mode
        // needs it: `auto` and the diagnose-only probes may speak TLS).
        transport::tls_server_name(&self.host)?;
        if let Some(h) = &self.helo {
            check_helo_name(h)?;
        }
        if let Some(a) = &self.auth {
            check_line_safe(Setting::User, &a.user)?;
            // EXTERNAL may leave the authorization identity to the certificate.
            if a.user.is_empty() && !matches!(a.credential, Credential::External) {
                return Err(UnsafeValue {
                    what: Setting::User,
                    reason: "is empty",
                });
            }
        }
        if let Some(m) = &self.mail {
            check_mailbox(Setting::From, &m.from)?;
            if m.to.is_empty() {
                return Err(UnsafeValue {
                    what: Setting::To,
                    reason: "is required with the sender address setting",
                });
            }
            for t in &m.to {
                check_mailbox(Setting::To, t)?;
            }
            let stamp = crate::message::Stamp::longest();
            if crate::message::check(&self.message, &m.from, &m.to, &self.host, &stamp).is_err() {
                return Err(UnsafeValue {
                    what: Setting::Size,
                    reason: "is smaller than the message without filler, or above 100 MiB",
                });
            }
        }
        if matches!(
            self.auth.as_ref().map(|a| &a.credential),
            Some(Credential::External)
        ) && self.client_cert.is_none()
        {
            return Err(UnsafeValue {
                what: Setting::Mechanism,
                reason: "EXTERNAL needs the client certificate setting",
            });
        }
        if matches!(
            self.quit_after,
            Some(Stage::Dns | Stage::Proxy | Stage::Starttls | Stage::Data | Stage::Quit)
        ) {
            return Err(UnsafeValue {
                what: Setting::QuitAfter,
                reason: "must be connect, greeting, ehlo, tls, auth, mail or rcpt",
            });
        }
        if self.timeout.is_zero() {
            return Err(UnsafeValue {
                what: Setting::Timeout,
                reason: "must be more than zero",
            });
        }
        Ok(())
    }
}

/// Runs one check and returns its report. Fails only for an invalid [`Config`]; every
/// network or protocol problem is a diagnosis inside the report.
///
/// ```no_run
/// # async fn demo() -> Result<(), Box<dyn std::error::Error>> {
/// use smtprobe::{check, Config, Secret};
/// use smtprobe::session::{AuthConfig, AuthChoice, Credential};
///
/// let mut config = Config::new("smtp.gmail.com");
/// config.auth = Some(AuthConfig {
///     user: "you@gmail.com".into(),
///     credential: Credential::Password {
///         secret: Secret::new(std::env::var("SMTPROBE_PASSWORD")?),
///         choice: AuthChoice::Auto,
///     },
/// });
/// let report = check(config).await?;
/// println!("{}: {}", report.diagnosis.code, report.diagnosis.summary);
/// # Ok(()) }
/// ```
pub async fn check(config: Config) -> Result<Report, UnsafeValue> {
    config.validate()?;
    let roots = shared_roots(&config.extra_roots);
    let mut tls = TlsSettings::new(&config.host, roots)?;
    tls.client_cert = config.client_cert.clone();
    // Boxed: the running check's state (about 10 kB) is allocated when it starts, not
    // in every future that merely holds a `check` call — `batch` keeps up to twice its
    // concurrency of rows admitted but waiting for a permit, each a task of its own.
    Ok(Box::pin(Probe::new(config).run(tls)).await)
}

struct Probe {
    config: Config,
    port: u16,
    rec: Recorder,
    attempts: Vec<ConnectAttempt>,
    notes: Vec<String>,
    /// The diagnose-only implicit-TLS probe already ran on this port (it runs once).
    tls_probed: bool,
}

/// How long a silent greeting is awaited before a diagnose-only implicit-TLS probe starts
/// on a second connection (on every port but 25). A submission server greets at once
/// (RFC 5321 §3.1 allows a delay, but greeting delays are an anti-spam measure of port 25,
/// not of 587/465), while
/// an implicit-TLS port (RFC 8314 §3.3) waits silently for our ClientHello: without the
/// probe the verdict would cost the whole `--timeout`.
pub const GREETING_GRACE: Duration = Duration::from_secs(1);

/// What the wait for the greeting found, before the session reads it.
enum GreetingWait {
    /// Bytes (or EOF, or an error) are there for the session to read.
    Arrived,
    /// No greeting, and a second connection completed a TLS handshake.
    ExpectsTls,
    /// No greeting before the deadline, and the second connection did not speak TLS;
    /// what is left of the greeting deadline.
    Silent(Duration),
}

impl Probe {
    fn new(config: Config) -> Probe {
        let port = config.effective_port();
        let mut rec = Recorder::new(Clock::start());
        rec.observer = config.observer.clone();
        Probe {
            config,
            port,
            rec,
            attempts: Vec::new(),
            notes: Vec::new(),
            tls_probed: false,
        }
    }

    async fn run(mut self, tls: TlsSettings) -> Report {
        let mut mode = self.config.tls.initial_mode(self.port);
        self.rec.start(Stage::Dns);
        let addrs = if let Some(proxy) = &self.config.proxy {
            // Remote DNS (RFC 1928 address type 3, HTTP CONNECT): the proxy resolves.
            let text = format!(
                "{} is resolved by the proxy {}, not here",
                self.config.host,
                proxy.shown()
            );
            self.rec.event(Stage::Dns, false, text);
            self.rec.end(Stage::Dns, true);
            Vec::new()
        } else {
            match transport::resolve_with_server(
                &self.config.host,
                self.port,
                self.config.connect_to,
                self.config.ip,
                self.config.timeout,
                self.config.dns_server,
            )
            .await
            {
                Ok(a) => {
                    let list: Vec<String> = a.iter().map(|s| s.ip().to_string()).collect();
                    self.rec.event(
                        Stage::Dns,
                        false,
                        format!("{} resolves to {}", self.config.host, list.join(", ")),
                    );
                    self.rec.end(Stage::Dns, true);
                    a
                }
                Err(f) => {
                    self.rec.close(Some(Stage::Dns));
                    return self.finish(mode, Err(f), None, None);
                }
            }
        };

        let mut switched = false;
        loop {
            // Where this attempt's stages begin: an abandoned attempt is dropped from
            // `stages[]` when `--tls auto` switches (the notes and transcript keep it).
            let attempt_start = self.rec.stages.len();
            let outcome = self.connection(&addrs, mode, &tls).await;
            let (result, session, tls_info) = match outcome {
                Err(f) => return self.finish(mode, Err(f), None, None),
                // The greeting grace found a port that expects TLS from the first byte.
                Ok(None) => (Err(Failure::TlsExpectedByServer), None, None),
                Ok(Some((r, s, t))) => (r, Some(s), t),
            };
            let may_switch = self.config.tls == TlsChoice::Auto && !switched;
            // Wrong TLS mode, direction 1: we spoke TLS, the server greeted in clear.
            if may_switch && answered_tls_in_clear(&result) {
                let why = format!(
                    "port {} answered in clear text: it speaks STARTTLS, not implicit TLS; trying STARTTLS",
                    self.port
                );
                mode = self.switch_mode(TlsMode::Starttls, why, attempt_start);
                switched = true;
                continue;
            }
            // Direction 2: we waited for a greeting, the server waits for a ClientHello.
            let expects_tls = matches!(result, Err(Failure::TlsExpectedByServer))
                || (no_greeting(&result)
                    && mode != TlsMode::Implicit
                    && !switched
                    && !self.tls_probed
                    && self.speaks_tls(&addrs, &tls).await);
            if expects_tls {
                if may_switch {
                    let why = format!(
                        "port {} sent no greeting but completes a TLS handshake: it expects TLS from the first byte; trying implicit TLS",
                        self.port
                    );
                    mode = self.switch_mode(TlsMode::Implicit, why, attempt_start);
                    switched = true;
                    continue;
                }
                return self.finish(mode, Err(Failure::TlsExpectedByServer), session, tls_info);
            }
            return self.finish(mode, result, session, tls_info);
        }
    }

    /// `--tls auto` found the other mode: says why, and drops the abandoned attempt's
    /// stages (from `attempt_start`) so that `stages[]` describes the connection that
    /// works; the notes and the transcript keep the attempt.
    fn switch_mode(&mut self, to: TlsMode, why: String, attempt_start: usize) -> TlsMode {
        self.note(why);
        self.rec.stages.truncate(attempt_start);
        to
    }

    fn note(&mut self, text: String) {
        self.rec.event(Stage::Connect, false, text.clone());
        self.notes.push(text);
    }

    /// One connection: connect (Happy Eyeballs over every address, or the proxy) and run
    /// the session. `Ok(None)`: no greeting came and the port expects TLS from the first
    /// byte (found by the greeting grace probe before the session ran).
    #[allow(clippy::type_complexity)]
    async fn connection(
        &mut self,
        addrs: &[SocketAddr],
        mode: TlsMode,
        tls: &TlsSettings,
    ) -> Result<Option<(Result<(), Failure>, Session, Option<TlsInfo>)>, Failure> {
        let Some(stream) = self.open(addrs).await? else {
            return Err(Failure::Connect {
                attempts: self.attempts.clone(),
            });
        };
        let helo = self
            .config
            .helo
            .clone()
            .unwrap_or_else(|| default_helo(stream.local_addr().ok()));
        let mut nonce = [0u8; 18];
        // RFC 5802 §5.1: a fresh, unpredictable nonce per exchange.
        let _ = ring::rand::SecureRandom::fill(&ring::rand::SystemRandom::new(), &mut nonce);
        let session = Session::new(SessionConfig {
            helo,
            mode,
            auth: self.config.auth.clone(),
            allow_plaintext_auth: self.config.allow_plaintext_auth,
            mail: self.config.mail.as_ref().map(|m| MailConfig {
                from: m.from.clone(),
                to: m.to.clone(),
                message: build_message(&self.config.message, &m.from, &m.to, &self.config.host),
            }),
            pipelining: self.config.pipelining,
            nonce: base64::Engine::encode(&base64::engine::general_purpose::STANDARD, nonce),
            quit_after: self.config.quit_after,
        });
        if self.config.quit_after == Some(Stage::Connect) {
            self.rec.event(
                Stage::Connect,
                false,
                "asked to stop after connect: closing without reading the greeting".into(),
            );
            return Ok(Some((Ok(()), session, None)));
        }
        let mut timeout = self.config.timeout;
        // Not on port 25: MTAs there delay the greeting on purpose (postscreen's greet
        // pause, RFC 5321 §4.5.3.2 allows minutes) and count bytes sent before it as a
        // spammer's sign; the late probe after the timeout still runs.
        if mode != TlsMode::Implicit && !self.tls_probed && self.port != 25 {
            // Timed here only when no greeting comes; otherwise the session starts its
            // own greeting stage.
            self.rec.start(Stage::Greeting);
            let wait = self.await_greeting(&stream, tls).await;
            if let GreetingWait::ExpectsTls = wait {
                self.rec.close(Some(Stage::Greeting));
                return Ok(None);
            }
            self.rec.close(None);
            // Let the session observe a timeout itself (its transcript and stages),
            // within what is left of the greeting deadline.
            if let GreetingWait::Silent(left) = wait {
                timeout = left.max(Duration::from_millis(1));
            }
        }
        let out =
            transport::run_connection(stream, session, mode, tls, timeout, &mut self.rec).await;
        Ok(Some((out.result, out.session, out.tls)))
    }
    /// Waits for the greeting without consuming it (`peek`). After [`GREETING_GRACE`] of
    /// silence, a diagnose-only implicit-TLS probe (no credentials) runs on a second
    /// connection to the same address while the wait goes on: a greeting that arrives
    /// later still wins; a completed handshake ends the wait in protocol time instead of
    /// timeout time.
    async fn await_greeting(&mut self, stream: &TcpStream, tls: &TlsSettings) -> GreetingWait {
        let start = tokio::time::Instant::now();
        let deadline = start + self.config.timeout;
        let mut byte = [0u8; 1];
        let grace = GREETING_GRACE.min(self.config.timeout);
        if tokio::time::timeout(grace, stream.peek(&mut byte))
            .await
            .is_ok()
        {
            return GreetingWait::Arrived;
        }
        self.tls_probed = true;
        self.rec.event(
            Stage::Greeting,
            false,
            format!(
                "no greeting after {}: checking with a second connection (no credentials) whether the port expects TLS",
                transport::secs(grace)
            ),
        );
        let open = self.probe_stream(stream.peer_addr().ok());
        let (tls, timeout) = (tls.clone(), self.config.timeout);
        let probe = async move {
            match open.await {
                Some(s) => speaks_tls(s, &tls, timeout).await,
                None => false,
            }
        };
        tokio::pin!(probe);
        let mut probe_done = false;
        loop {
            tokio::select! {
                biased;
                _ = stream.peek(&mut byte) => {
                    if !probe_done {
                        self.rec.event(
                            Stage::Greeting,
                            false,
                            format!(
                                "the greeting came after {} ms: the second connection is abandoned",
                                start.elapsed().as_millis()
                            ),
                        );
                    }
                    return GreetingWait::Arrived;
                }
                speaks = &mut probe, if !probe_done => {
                    probe_done = true;
                    self.rec.event(Stage::Tls, false, speaks_tls_text(speaks));
                    if speaks {
                        return GreetingWait::ExpectsTls;
                    }
                }
                _ = tokio::time::sleep_until(deadline) => {
                    // The greeting deadline passed: the probe, bounded by its own
                    // timeout, still decides between "expects TLS" and "silent".
                    if !probe_done {
                        let speaks = (&mut probe).await;
                        self.rec.event(Stage::Tls, false, speaks_tls_text(speaks));
                        if speaks {
                            return GreetingWait::ExpectsTls;
                        }
                    }
                    return GreetingWait::Silent(Duration::ZERO);
                }
            }
        }
    }

    /// Opens the TCP connection: through the proxy, or to each address in turn.
    /// `Ok(None)` when no address answered (the attempts are kept).
    async fn open(
        &mut self,
        addrs: &[SocketAddr],
    ) -> Result<Option<tokio::net::TcpStream>, Failure> {
        if let Some(proxy) = self.config.proxy.clone() {
            self.rec.start(Stage::Proxy);
            // --connect-to still picks the address (the proxy connects to it); TLS
            // verifies the host name either way.
            let dest = self
                .config
                .connect_to
                .map(|ip| ip.to_string())
                .unwrap_or_else(|| self.config.host.clone());
            return match transport::connect_via_proxy(&proxy, &dest, self.port, self.config.timeout)
                .await
            {
                Ok((stream, text)) => {
                    self.rec.event(Stage::Proxy, false, text);
                    self.rec.end(Stage::Proxy, true);
                    Ok(Some(stream))
                }
                Err(f) => {
                    self.rec
                        .event(Stage::Proxy, false, format!("proxy failed: {}", f.detail));
                    self.rec.close(Some(Stage::Proxy));
                    Err(f.into())
                }
            };
        }
        self.rec.start(Stage::Connect);
        let (stream, attempts) = transport::connect(addrs, self.config.timeout).await;
        for a in &attempts {
            if a.error.is_some() {
                self.rec.event(
                    Stage::Connect,
                    false,
                    format!("connect to {} failed: {}", a.addr, a.detail),
                );
            }
        }
        self.attempts.extend(attempts.iter().cloned());
        let Some(stream) = stream else {
            self.rec.close(Some(Stage::Connect));
            return Ok(None);
        };
        let peer = stream.peer_addr().ok();
        if let Some(p) = peer {
            self.rec.line(
                Direction::Connected,
                Stage::Connect,
                false,
                connected_event_text(p),
            );
        }
        self.rec.end(Stage::Connect, true);
        Ok(Some(stream))
    }

    /// A fresh connection for a diagnose-only probe: through the proxy when one is
    /// configured, else to `peer` (the address the check connected to). Owns what it
    /// needs, so it can run while the probe waits on the first connection.
    fn probe_stream(
        &self,
        peer: Option<SocketAddr>,
    ) -> impl std::future::Future<Output = Option<TcpStream>> + 'static {
        let proxy = self.config.proxy.clone();
        let dest = self
            .config
            .connect_to
            .map(|ip| ip.to_string())
            .unwrap_or_else(|| self.config.host.clone());
        let (port, timeout) = (self.port, self.config.timeout);
        async move {
            match (proxy, peer) {
                (Some(p), _) => transport::connect_via_proxy(&p, &dest, port, timeout)
                    .await
                    .ok()
                    .map(|(s, _)| s),
                (None, Some(addr)) => transport::connect(&[addr], timeout).await.0,
                (None, None) => None,
            }
        }
    }

    /// A credential-free TLS handshake on a fresh connection: does this port speak TLS
    /// from the first byte? (After the session saw the server close without a greeting.)
    async fn speaks_tls(&mut self, addrs: &[SocketAddr], tls: &TlsSettings) -> bool {
        self.tls_probed = true;
        let stream = match &self.config.proxy {
            Some(_) => self.probe_stream(None).await,
            None => transport::connect(addrs, self.config.timeout).await.0,
        };
        let Some(stream) = stream else { return false };
        self.rec.event(
            Stage::Tls,
            false,
            "no greeting: checking with a second connection (no credentials) whether the port expects TLS".into(),
        );
        let speaks = speaks_tls(stream, tls, self.config.timeout).await;
        self.rec.event(Stage::Tls, false, speaks_tls_text(speaks));
        speaks
    }

    /// The user name the report names, when AUTH was tried (it worked, or the check
    /// failed somewhere).
    fn reported_user(&self, tried: bool) -> Option<String> {
        let a = self.config.auth.as_ref().filter(|_| tried)?;
        Some(match &a.credential {
            // EXTERNAL without an authorization identity: the certificate names us.
            Credential::External if a.user.is_empty() => {
                "the client certificate's identity (SASL EXTERNAL)".to_owned()
            }
            _ => a.user.clone(),
        })
    }

    /// The diagnosis of the check's outcome, with what the session learned as context.
    fn diagnose(
        &self,
        mode: TlsMode,
        failure: Option<&Failure>,
        session: Option<&Session>,
        tls: Option<&TlsInfo>,
        user: Option<&str>,
    ) -> diagnosis::Diagnosis {
        let banner = session.and_then(|s| s.greeting()).map(|g| g.joined_text());
        let shape = self.config.auth.as_ref().and_then(|a| match &a.credential {
            Credential::Password { secret, .. } => Some(CredentialShape::inspect(secret)),
            Credential::OAuthToken(_) | Credential::External => None,
        });
        let mut diagnosis = diagnosis::diagnose(
            failure,
            &diagnosis::Context {
                host: &self.config.host,
                port: self.port,
                mode,
                banner: banner.as_deref(),
                user,
                credential: shape.as_ref(),
                sent_message: session.is_some_and(|s| s.message_accepted()),
                mechanism: session.and_then(|s| s.mechanism()).map(|m| m.name()),
                from: self.config.mail.as_ref().map(|m| m.from.as_str()),
                tls_verified: tls.is_some_and(|t| t.verified),
                transcript: self.rec.transcript.entries(),
            },
        );
        if self.config.client_cert.is_none() && asks_for_client_cert(failure) {
            diagnosis.hints.insert(
                0,
                "The server asks for a TLS client certificate: give it and its key with the client certificate setting.".into(),
            );
        }
        diagnosis
    }

    fn finish(
        mut self,
        mode: TlsMode,
        result: Result<(), Failure>,
        session: Option<Session>,
        tls: Option<TlsInfo>,
    ) -> Report {
        let failure = result.err();
        let quit_early = failure
            .is_none()
            .then_some(self.config.quit_after)
            .flatten();
        if let Some(s) = &session {
            self.notes.extend(session_notes(s));
        }
        if let Some(stage) = quit_early {
            self.notes.push(format!(
                "stopped after {stage} as asked: not tested: {}",
                untested_after(stage, &self.config, mode)
            ));
        }
        let authenticated = session.as_ref().is_some_and(|s| s.authenticated());
        let user = self.reported_user(authenticated || failure.is_some());
        let mut diagnosis = self.diagnose(
            mode,
            failure.as_ref(),
            session.as_ref(),
            tls.as_ref(),
            user.as_deref(),
        );
        if let Some(stage) = quit_early {
            diagnosis.summary = format!(
                "{}:{}: every stage up to {stage} passed; stopped there as asked (quit after {stage}); not tested: {}.",
                self.config.host,
                self.port,
                untested_after(stage, &self.config, mode)
            );
        }
        let settings = failure.is_none().then(|| Settings {
            host: self.config.host.clone(),
            port: self.port,
            security: mode,
            username: user.clone(),
            mechanism: session
                .as_ref()
                .and_then(|s| s.mechanism())
                .map(|m| m.name().to_owned()),
        });
        let capabilities = session
            .as_ref()
            .and_then(|s| s.capabilities())
            .map(capability_lines)
            .unwrap_or_default();
        self.rec.close(None);
        Report {
            host: self.config.host.clone(),
            port: self.port,
            mode,
            failed_stage: failure.as_ref().map(Failure::stage),
            reply: failure.as_ref().and_then(Failure::reply).cloned(),
            diagnosis,
            stages: self.rec.stages,
            tls,
            transcript: self.rec.transcript,
            connect_attempts: self.attempts,
            auth_tested: self.config.auth.is_some(),
            settings,
            capabilities,
            notes: self.notes,
            failure,
        }
    }
}

/// Implicit TLS met a server that greeted in clear text (RFC 8314 §3 vs RFC 3207).
fn answered_tls_in_clear(result: &Result<(), Failure>) -> bool {
    matches!(
        result,
        Err(Failure::Tls(t))
            if !t.after_starttls && matches!(t.kind, TlsFailureKind::ClearTextReply { .. })
    )
}

/// No greeting came: silence until the deadline, or a close without a byte (what a
/// port that waits for a ClientHello looks like to a client waiting for a greeting).
fn no_greeting(result: &Result<(), Failure>) -> bool {
    matches!(
        result,
        Err(Failure::Timeout {
            stage: Stage::Greeting
        }) | Err(Failure::Closed {
            stage: Stage::Greeting,
            partial: None
        })
    )
}

/// What the session noticed that the report keeps as notes: why the mechanism was
/// chosen, a HELO fallback, how the message fits the announced SIZE.
fn session_notes(s: &Session) -> Vec<String> {
    [
        s.mechanism_reason().map(str::to_owned),
        s.helo_fallback().then(|| {
            "EHLO was refused and HELO accepted: the server is not ESMTP (no STARTTLS, no AUTH, no SIZE)".to_owned()
        }),
        s.size_note().map(str::to_owned),
    ]
    .into_iter()
    .flatten()
    .collect()
}

/// The EHLO extensions as the report lists them: keyword and parameters.
fn capability_lines(caps: &crate::protocol::Capabilities) -> Vec<String> {
    caps.extensions
        .iter()
        .map(|e| {
            std::iter::once(e.keyword.clone())
                .chain(e.params.iter().cloned())
                .collect::<Vec<_>>()
                .join(" ")
        })
        .collect()
}

/// Postfix (smtpd_tls_req_ccert) completes TLS, then refuses in its greeting with a
/// reply that names the client certificate.
fn asks_for_client_cert(failure: Option<&Failure>) -> bool {
    failure.and_then(Failure::reply).is_some_and(|r| {
        r.joined_text()
            .to_ascii_lowercase()
            .contains("client certificate")
    })
}

/// The trust store for a set of extra anchors, shared by every check that uses the same
/// set: a store of the ~150 web PKI roots is about 9 kB, and a batch of 1000 open checks
/// (each row naming the same `ca_file`) would otherwise hold 1000 copies. A handful of
/// distinct sets are kept (batch rows rarely name more than a few CA files); beyond that
/// a store is built per check, as before.
fn shared_roots(extra: &[CertificateDer<'static>]) -> Arc<rustls::RootCertStore> {
    use std::sync::{Mutex, OnceLock};
    type Cache = Mutex<Vec<(Vec<CertificateDer<'static>>, Arc<rustls::RootCertStore>)>>;
    const KEPT: usize = 16;
    static CACHE: OnceLock<Cache> = OnceLock::new();
    let cache = CACHE.get_or_init(|| Mutex::new(Vec::new()));
    let Ok(mut cache) = cache.lock() else {
        return Arc::new(transport::root_store(extra));
    };
    if let Some((_, roots)) = cache.iter().find(|(k, _)| k.as_slice() == extra) {
        return roots.clone();
    }
    let roots = Arc::new(transport::root_store(extra));
    if cache.len() < KEPT {
        cache.push((extra.to_vec(), roots.clone()));
    }
    roots
}

/// A credential-free TLS handshake on `stream`, a fresh connection: does this port speak
/// TLS from the first byte? A certificate failure still proves it speaks TLS. Nothing is
/// sent after the greeting (no session is configured with credentials).
pub async fn speaks_tls(stream: TcpStream, tls: &TlsSettings, timeout: Duration) -> bool {
    let mut scratch = Recorder::new(Clock::start());
    let session = Session::new(SessionConfig {
        helo: "smtprobe.invalid".into(),
        mode: TlsMode::Implicit,
        auth: None,
        allow_plaintext_auth: false,
        mail: None,
        pipelining: false,
        nonce: String::new(),
        quit_after: None,
    });
    let out = transport::run_connection(
        stream,
        session,
        TlsMode::Implicit,
        tls,
        timeout,
        &mut scratch,
    )
    .await;
    match &out.result {
        Ok(()) => true,
        // A certificate complaint proves the port speaks TLS; clear text, a close or
        // a broken handshake does not.
        Err(Failure::Tls(t)) => !matches!(
            t.kind,
            TlsFailureKind::ClearTextReply { .. }
                | TlsFailureKind::ClosedDuringHandshake
                | TlsFailureKind::Handshake { .. }
        ),
        Err(f) => f.stage() != Stage::Tls,
    }
}

fn speaks_tls_text(speaks: bool) -> String {
    if speaks {
        "the second connection completed a TLS handshake: the port expects TLS from the first byte"
            .into()
    } else {
        "the second connection did not speak TLS either".into()
    }
}

/// A valid EHLO name for this host (RFC 5321 §4.1.1.1): the host name when it is a
/// fully qualified domain, else the address literal of the local end of the connection.
pub fn default_helo(local: Option<SocketAddr>) -> String {
    if let Ok(name) = dns_lookup::get_hostname() {
        let valid = name.contains('.')
            && !name.ends_with('.')
            && name
                .split('.')
                .all(|l| !l.is_empty() && l.chars().all(|c| c.is_ascii_alphanumeric() || c == '-'));
        if valid {
            return name;
        }
    }
    match local.map(|a| a.ip()) {
        Some(IpAddr::V4(a)) => format!("[{a}]"),
        Some(IpAddr::V6(a)) => format!("[IPv6:{a}]"),
        None => "[127.0.0.1]".into(),
    }
}

/// What a check stopped by `--quit-after stage` did not test, in protocol order.
fn untested_after(stage: Stage, config: &Config, mode: TlsMode) -> String {
    let mut later: Vec<&str> = Vec::new();
    let order = [
        (Stage::Connect, "greeting"),
        (Stage::Greeting, "EHLO"),
        (
            Stage::Ehlo,
            if mode == TlsMode::Starttls {
                "STARTTLS/TLS"
            } else {
                ""
            },
        ),
        (Stage::Tls, if config.auth.is_some() { "AUTH" } else { "" }),
        (
            Stage::Auth,
            if config.mail.is_some() {
                "MAIL FROM"
            } else {
                ""
            },
        ),
        (
            Stage::Mail,
            if config.mail.is_some() { "RCPT TO" } else { "" },
        ),
        (
            Stage::Rcpt,
            if config.mail.is_some() {
                "DATA (the message)"
            } else {
                ""
            },
        ),
    ];
    // Implicit TLS happens before the greeting, so "tls" is reached at the greeting.
    let rank = |s: Stage| order.iter().position(|(o, _)| *o == s).unwrap_or(0);
    let from = match (stage, mode) {
        (Stage::Tls, TlsMode::Implicit) => rank(Stage::Greeting),
        (Stage::Tls, TlsMode::None) => rank(Stage::Ehlo),
        _ => rank(stage),
    };
    if stage == Stage::Connect && mode == TlsMode::Implicit {
        later.push("TLS");
    }
    for (i, (_, what)) in order.iter().enumerate() {
        if i >= from && !what.is_empty() {
            later.push(what);
        }
    }
    if config.auth.is_none() && !later.contains(&"AUTH") {
        later.push("AUTH (no user given)");
    }
    if later.is_empty() {
        "nothing".into()
    } else {
        later.join(", ")
    }
}

fn build_message(
    spec: &crate::message::MessageSpec,
    from: &str,
    to: &[String],
    host: &str,
) -> String {
    use std::time::{SystemTime, UNIX_EPOCH};
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default();
    let date = ::time::OffsetDateTime::from_unix_timestamp(now.as_secs() as i64)
        .ok()
        .and_then(|d| {
            d.format(&::time::format_description::well_known::Rfc2822)
                .ok()
        })
        .unwrap_or_else(|| "Thu, 01 Jan 1970 00:00:00 +0000".into());
    let stamp = crate::message::Stamp {
        date,
        id: format!("{:x}.{:x}", now.as_nanos(), std::process::id()),
    };
    // Config::validate already built it once with the same spec: it cannot fail here.
    crate::message::build(spec, from, to, host, &stamp).unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quit_after_lists_what_was_not_tested() {
        let mut c = Config::new("mx.test");
        let none = untested_after(Stage::Connect, &c, TlsMode::Implicit);
        assert_eq!(none, "TLS, greeting, EHLO, AUTH (no user given)");
        c.auth = Some(AuthConfig {
            user: "u".into(),
            credential: Credential::External,
        });
        c.mail = Some(MailTarget {
            from: "a@x.test".into(),
            to: vec!["b@x.test".into()],
        });
        assert_eq!(
            untested_after(Stage::Ehlo, &c, TlsMode::Starttls),
            "STARTTLS/TLS, AUTH, MAIL FROM, RCPT TO, DATA (the message)"
        );
        assert_eq!(
            untested_after(Stage::Tls, &c, TlsMode::Implicit),
            "EHLO, AUTH, MAIL FROM, RCPT TO, DATA (the message)"
        );
        assert_eq!(
            untested_after(Stage::Rcpt, &c, TlsMode::Starttls),
            "DATA (the message)"
        );
    }
}

#[cfg(test)]
mod mode_and_name_tests {
    use super::*;

    /// Both `--tls auto` directions go through `switch_mode`: the abandoned attempt's
    /// stages leave `stages[]`, earlier ones (DNS) stay, the reason is a note.
    #[test]
    fn a_mode_switch_drops_the_abandoned_attempt_from_the_stages() {
        let mut p = Probe::new(Config::new("mx.example.org"));
        p.rec.start(Stage::Dns);
        p.rec.end(Stage::Dns, true);
        let attempt_start = p.rec.stages.len();
        p.rec.start(Stage::Connect);
        p.rec.end(Stage::Connect, true);
        p.rec.start(Stage::Tls);
        p.rec.close(Some(Stage::Tls));
        let clear = Err(Failure::Tls(crate::failure::TlsFailure {
            kind: TlsFailureKind::ClearTextReply {
                first_line: "220 mx ESMTP".into(),
            },
            certificate: None,
            after_starttls: false,
        }));
        assert!(answered_tls_in_clear(&clear));
        assert!(!no_greeting(&clear));
        let mode = p.switch_mode(TlsMode::Starttls, "trying STARTTLS".into(), attempt_start);
        assert_eq!(mode, TlsMode::Starttls);
        let stages: Vec<_> = p.rec.stages.iter().map(|s| (s.stage, s.ok)).collect();
        assert_eq!(stages, [(Stage::Dns, true)]);
        assert_eq!(p.notes, ["trying STARTTLS"]);
        assert!(no_greeting(&Err(Failure::Timeout {
            stage: Stage::Greeting
        })));
    }

    /// A host rustls cannot use as a TLS server name is the user's configuration error,
    /// refused before any lookup: before, it came back as "dns.no-such-host".
    #[tokio::test]
    async fn a_host_tls_cannot_verify_is_a_configuration_error_not_dns() {
        for host in [
            "bücher.example",
            "mail..example.org",
            "-mx.example.org",
            "a b",
        ] {
            let err = check(Config::new(host)).await.expect_err(host);
            assert_eq!(err.what, Setting::Host, "{host}");
            assert_eq!(err.reason, transport::INVALID_SERVER_NAME, "{host}");
            assert!(err.to_string().contains("xn--"), "{err}");
        }
        // The same rule as the TLS layer uses, and IP literals (bracketed too) pass.
        for host in [
            "smtp.gmail.com",
            "127.0.0.1",
            "[::1]",
            "::1",
            "mail_1.example",
        ] {
            assert!(Config::new(host).validate().is_ok(), "{host}");
            assert!(transport::tls_server_name(host).is_ok(), "{host}");
        }
        let e = transport::tls_server_name("bücher.example").unwrap_err();
        assert_eq!(
            e.to_string(),
            format!("\"bücher.example\" {}", transport::INVALID_SERVER_NAME)
        );
    }
}
