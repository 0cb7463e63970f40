//! `smtprobe demo`: every bundled scenario, run in-process against the replay server on
//! 127.0.0.1 (no network, no credentials), plus the transport-level cases (wrong TLS mode,
//! bad certificates) that need no fixture.

use crate::certs::ServerCert;
use crate::fixture::{ClientPattern, Expect, Fixture, Step};
use crate::probe::{self, Config, MailTarget, TlsChoice};
use crate::replay::{ConnectionResult, ReplayOptions, ReplayServer};
use crate::report::Report;
use crate::secret::Secret;
use crate::session::{AuthChoice, AuthConfig, Credential};
use crate::stage::Stage;
use crate::tls_mode::TlsMode;
use std::time::Duration;

/// The bundled fixtures, compiled into the binary (a test checks this list matches
/// `fixtures/`).
pub const BUNDLED: &[(&str, &str)] = &[
    (
        "gmail-465-bad-credentials",
        include_str!("../../fixtures/gmail-465-bad-credentials.fixture"),
    ),
    (
        "gmail-465-login-ok",
        include_str!("../../fixtures/gmail-465-login-ok.fixture"),
    ),
    (
        "gmail-587-421-at-ehlo",
        include_str!("../../fixtures/gmail-587-421-at-ehlo.fixture"),
    ),
    (
        "gmail-587-421-at-mail",
        include_str!("../../fixtures/gmail-587-421-at-mail.fixture"),
    ),
    (
        "gmail-587-app-password-required",
        include_str!("../../fixtures/gmail-587-app-password-required.fixture"),
    ),
    (
        "gmail-587-auth-before-starttls",
        include_str!("../../fixtures/gmail-587-auth-before-starttls.fixture"),
    ),
    (
        "gmail-587-bad-credentials",
        include_str!("../../fixtures/gmail-587-bad-credentials.fixture"),
    ),
    (
        "gmail-587-bad-credentials-learn-more",
        include_str!("../../fixtures/gmail-587-bad-credentials-learn-more.fixture"),
    ),
    (
        "gmail-587-daily-limit",
        include_str!("../../fixtures/gmail-587-daily-limit.fixture"),
    ),
    (
        "gmail-587-mail-without-auth",
        include_str!("../../fixtures/gmail-587-mail-without-auth.fixture"),
    ),
    (
        "gmail-587-message-too-large",
        include_str!("../../fixtures/gmail-587-message-too-large.fixture"),
    ),
    (
        "gmail-587-plain-auth-ok",
        include_str!("../../fixtures/gmail-587-plain-auth-ok.fixture"),
    ),
    (
        "gmail-587-plain-send-ok",
        include_str!("../../fixtures/gmail-587-plain-send-ok.fixture"),
    ),
    (
        "gmail-587-rcpt-syntax-error",
        include_str!("../../fixtures/gmail-587-rcpt-syntax-error.fixture"),
    ),
    (
        "gmail-587-starttls-injection",
        include_str!("../../fixtures/gmail-587-starttls-injection.fixture"),
    ),
    (
        "gmail-587-starttls-stripped",
        include_str!("../../fixtures/gmail-587-starttls-stripped.fixture"),
    ),
    (
        "gmail-587-too-many-login-attempts",
        include_str!("../../fixtures/gmail-587-too-many-login-attempts.fixture"),
    ),
    (
        "gmail-587-web-login-required",
        include_str!("../../fixtures/gmail-587-web-login-required.fixture"),
    ),
    (
        "gmail-587-xoauth2-token-rejected",
        include_str!("../../fixtures/gmail-587-xoauth2-token-rejected.fixture"),
    ),
    (
        "office365-587-smtp-auth-disabled",
        include_str!("../../fixtures/office365-587-smtp-auth-disabled.fixture"),
    ),
    (
        "postfix-587-bad-credentials",
        include_str!("../../fixtures/postfix-587-bad-credentials.fixture"),
    ),
];

/// Why a scenario could not be run (as opposed to ending otherwise than expected).
#[derive(Debug)]
pub enum DemoError {
    /// A bundled fixture does not parse: a build defect; names the file and line.
    Fixture {
        /// The fixture's name (`fixtures/NAME.fixture`).
        name: &'static str,
        /// What is wrong with it.
        error: crate::fixture::FixtureError,
    },
    /// The replay server could not start on 127.0.0.1.
    Replay(crate::replay::ReplayError),
    /// The replay server's own address could not be read.
    Address(std::io::Error),
    /// The scenario's configuration was refused before anything was sent.
    Config(crate::protocol::command::UnsafeValue),
}

impl std::fmt::Display for DemoError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            DemoError::Fixture { name, error } => write!(f, "fixtures/{name}.fixture: {error}"),
            DemoError::Replay(e) => write!(f, "replay server: {e}"),
            DemoError::Address(e) => write!(f, "replay server address: {e}"),
            DemoError::Config(e) => write!(f, "{e}"),
        }
    }
}

impl std::error::Error for DemoError {}

/// The password every demo uses: the replay server accepts any, and it is redacted
/// like a real one.
const DEMO_PASSWORD: &str = "demo-app-password";

/// One demo scenario: a fixture, and how the client is configured against it.
#[derive(Debug, Clone)]
pub struct Scenario {
    /// Name shown in the list.
    pub name: String,
    /// The story.
    pub story: String,
    /// The fixture the server plays.
    pub fixture: Fixture,
    /// The client's TLS choice (differs from the fixture's mode in wrong-mode demos).
    pub client_tls: TlsChoice,
    /// The certificate the server presents.
    pub certificate: ServerCert,
    /// Per-wait timeout for the client.
    pub timeout: Duration,
    /// Connections the server accepts (2 when the probe confirms a mode with a second one).
    pub connections: usize,
    /// What the probe must conclude: stage (None for ok) and code.
    pub expect: (Option<Stage>, String),
}

/// Parses every bundled fixture. A broken bundled fixture is a build defect; its error
/// names the file and line.
pub fn bundled_fixtures() -> Result<Vec<Fixture>, DemoError> {
    BUNDLED
        .iter()
        .map(|(name, text)| {
            Fixture::parse(text).map_err(|error| DemoError::Fixture { name, error })
        })
        .collect()
}

impl Scenario {
    /// A fixture played as it is: the client uses the fixture's TLS mode against a valid
    /// certificate, and must conclude the fixture's `expect`.
    pub fn of_fixture(f: &Fixture) -> Scenario {
        Scenario {
            name: f.header.name.clone(),
            story: f.header.story.clone(),
            fixture: f.clone(),
            client_tls: f.header.mode.into(),
            certificate: ServerCert::Valid,
            timeout: Duration::from_secs(5),
            connections: 1,
            expect: match &f.header.expect {
                Expect::Ok => (None, "ok".into()),
                Expect::Failure { stage, code } => (Some(*stage), code.clone()),
            },
        }
    }
}

/// Every scenario: the bundled fixtures, then the transport-level cases.
pub fn scenarios() -> Result<Vec<Scenario>, DemoError> {
    let fixtures = bundled_fixtures()?;
    let mut out: Vec<Scenario> = fixtures.iter().map(Scenario::of_fixture).collect();
    let find = |name: &str| fixtures.iter().find(|f| f.header.name == name).cloned();
    if let (Some(f587), Some(f465)) = (find("gmail-587-plain-auth-ok"), find("gmail-465-login-ok"))
    {
        let extra =
            |name: &str, story: &str, f: &Fixture, tls, cert, timeout, conns, stage, code: &str| {
                Scenario {
                    name: name.into(),
                    story: story.into(),
                    fixture: f.clone(),
                    client_tls: tls,
                    certificate: cert,
                    timeout,
                    connections: conns,
                    expect: (stage, code.into()),
                }
            };
        let t = Duration::from_secs(5);
        out.push(extra(
            "wrong-mode-implicit-on-587",
            "The app uses SSL/TLS on port 587, which speaks STARTTLS.",
            &f587,
            TlsChoice::Implicit,
            ServerCert::Valid,
            t,
            1,
            Some(Stage::Tls),
            "tls.implicit-on-starttls-port",
        ));
        out.push(extra(
            "wrong-mode-starttls-on-465",
            "The app uses STARTTLS on port 465, which expects TLS at once.",
            &f465,
            TlsChoice::Starttls,
            ServerCert::Valid,
            Duration::from_secs(1),
            2,
            Some(Stage::Tls),
            "tls.starttls-on-implicit-port",
        ));
        out.push(extra(
            "cert-expired",
            "The server presents an expired certificate.",
            &f465,
            TlsChoice::Implicit,
            ServerCert::Expired,
            t,
            1,
            Some(Stage::Tls),
            "tls.expired-certificate",
        ));
        out.push(extra(
            "cert-wrong-name",
            "The certificate names another host (interception, or a wrong host name).",
            &f465,
            TlsChoice::Implicit,
            ServerCert::WrongName,
            t,
            1,
            Some(Stage::Tls),
            "tls.hostname-mismatch",
        ));
        out.push(extra(
            "cert-untrusted",
            "The certificate is self-signed, not from a trusted authority.",
            &f465,
            TlsChoice::Implicit,
            ServerCert::SelfSigned,
            t,
            1,
            Some(Stage::Tls),
            "tls.untrusted-certificate",
        ));
    }
    Ok(out)
}

/// The client configuration a fixture implies: its host (verified against the replay
/// server's certificate) reached through 127.0.0.1, its user, its mechanism, its
/// envelope.
pub fn config_for(f: &Fixture, port: u16, tls: TlsChoice, ca_pem: &str) -> Config {
    let mut c = Config::new(f.header.host.clone());
    c.port = Some(port);
    c.tls = tls;
    c.connect_to = Some(std::net::IpAddr::from([127, 0, 0, 1]));
    c.helo = Some("demo.smtprobe.invalid".into());
    c.extra_roots = rustls_pemfile::certs(&mut ca_pem.as_bytes())
        .filter_map(Result::ok)
        .collect();
    let clients: Vec<&ClientPattern> = f
        .steps
        .iter()
        .filter_map(|s| match &s.step {
            Step::Client { pattern, .. } => Some(pattern),
            _ => None,
        })
        .collect();
    if let Some(user) = &f.header.user {
        let oauth = clients
            .iter()
            .any(|p| matches!(p, ClientPattern::OAuth { .. }));
        let login = clients.iter().any(|p| matches!(p, ClientPattern::Line(l) if l.to_ascii_uppercase().starts_with("AUTH LOGIN")));
        let credential = if oauth {
            Credential::OAuthToken(Secret::new("demo-oauth-token"))
        } else {
            Credential::Password {
                secret: Secret::new(DEMO_PASSWORD),
                choice: if login {
                    AuthChoice::Login
                } else {
                    AuthChoice::Auto
                },
            }
        };
        c.auth = Some(AuthConfig {
            user: user.clone(),
            credential,
        });
        // A fixture recorded without TLS shows what a server does with AUTH in clear.
        c.allow_plaintext_auth = f.header.mode == TlsMode::None;
    }
    let addr = |prefix: &str| {
        clients.iter().find_map(|p| match p {
            ClientPattern::Line(l) if l.to_ascii_uppercase().starts_with(prefix) => {
                let start = l.find('<')? + 1;
                let end = l[start..].find('>')? + start;
                let a = &l[start..end];
                // Patterned addresses (`{any}`) stand for whatever the app sent.
                Some(
                    if crate::protocol::command::check_mailbox(crate::setting::Setting::To, a)
                        .is_ok()
                    {
                        a.to_owned()
                    } else {
                        "friend@example.com".to_owned()
                    },
                )
            }
            _ => None,
        })
    };
    if let (Some(from), Some(to)) = (addr("MAIL FROM:"), addr("RCPT TO:")) {
        c.mail = Some(MailTarget { from, to: vec![to] });
    } else if let Some(from) = addr("MAIL FROM:") {
        c.mail = Some(MailTarget {
            from,
            to: vec!["friend@example.com".into()],
        });
    }
    c
}

/// What one scenario produced: the probe's report and the replay server's judgement.
#[derive(Debug)]
pub struct ScenarioRun {
    /// The probe's report.
    pub report: Report,
    /// What the replay server saw, per connection.
    pub server: Vec<ConnectionResult>,
}

impl ScenarioRun {
    /// True when the probe concluded what the scenario expects.
    pub fn as_expected(&self, s: &Scenario) -> bool {
        self.report.failed_stage == s.expect.0 && self.report.diagnosis.code == s.expect.1.as_str()
    }
}

/// Runs one scenario against a replay server on 127.0.0.1.
pub async fn run(s: &Scenario) -> Result<ScenarioRun, DemoError> {
    run_observed(s, None).await
}

/// [`run`], telling `observer` each line and stage as it happens (`smtprobe web`).
pub async fn run_observed(
    s: &Scenario,
    observer: Option<crate::transport::Observer>,
) -> Result<ScenarioRun, DemoError> {
    let opts = ReplayOptions {
        read_timeout: Duration::from_secs(10),
        certificate: s.certificate,
        accept_timeout: Some(Duration::from_secs(30)),
        // The demo proves the probe follows each fixture line by line.
        strict: true,
        ..ReplayOptions::default()
    };
    let server = ReplayServer::bind(
        s.fixture.clone(),
        std::net::SocketAddr::from(([127, 0, 0, 1], 0)),
        opts,
    )
    .await
    .map_err(DemoError::Replay)?;
    let port = server.local_addr().map_err(DemoError::Address)?.port();
    let mut config = config_for(&s.fixture, port, s.client_tls, &server.ca_pem());
    config.timeout = s.timeout;
    config.observer = observer;
    config.validate().map_err(DemoError::Config)?;
    let conns = s.connections;
    // Accepted concurrently, like any real server: the probe opens its diagnose-only
    // second connection while the first still waits for a greeting.
    let serving = async {
        futures_util::future::join_all((0..conns).map(|_| server.serve_one()))
            .await
            .into_iter()
            .flatten()
            .collect::<Vec<_>>()
    };
    let (report, results) = tokio::join!(probe::check(config), serving);
    let report = report.map_err(DemoError::Config)?;
    Ok(ScenarioRun {
        report,
        server: results,
    })
}
