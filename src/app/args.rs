//! The check flags and what they become.
//!
//! - [`NetworkArgs`]: the flags of every command that touches the network (`check`,
//!   `batch`, `discover`): trust anchors, the per-wait timeout, `-4`/`-6`.
//! - [`ConnectionArgs`]: the connection and check flags `check` and `batch` share (for
//!   `batch`: every row's defaults), with [`NetworkArgs`] inside.
//! - [`CheckArgs`]: `check`'s flags, [`ConnectionArgs`] flattened in.
//! - [`CheckSpec`]: one check as plain data, no clap: what the flags, a batch row
//!   ([`crate::app::batch`]) and a web request ([`crate::app::web::request`]) all
//!   become, a row or request being merged over the flags' defaults.
//! - [`config_from_spec`]: the one conversion of a [`CheckSpec`] into a validated
//!   [`Config`] (the timeout rule is [`timeout_from_secs`], the TLS choice is the
//!   library's [`TlsChoice`] from flag to report).

use crate::probe::{Config, MailTarget, TlsChoice};
use crate::secret::Secret;
use crate::session::{AuthChoice, AuthConfig, Credential};
use crate::setting::Setting;
use crate::stage::Stage;
use crate::transport::IpVersion;
use clap::{Args, ValueEnum};
use std::io::IsTerminal;
use std::net::{IpAddr, SocketAddr};
use std::path::PathBuf;
use std::time::Duration;

/// `--timeout`'s default for `check` and `batch`, in seconds.
pub const DEFAULT_TIMEOUT: f64 = 15.0;
/// `--timeout`'s default for `discover`: its probes are credential-free and parallel.
pub const DISCOVER_TIMEOUT: f64 = 5.0;

/// `--auth` values.
#[derive(Debug, Clone, Copy, ValueEnum, PartialEq, Eq)]
pub enum AuthArg {
    /// The strongest offered: SCRAM-SHA-256, SCRAM-SHA-1, then PLAIN, LOGIN, CRAM-MD5
    /// (CRAM-MD5 before PLAIN without TLS); the report says which and why.
    Auto,
    /// AUTH PLAIN.
    Plain,
    /// AUTH LOGIN.
    Login,
    /// AUTH CRAM-MD5 (RFC 2195).
    CramMd5,
    /// AUTH SCRAM-SHA-1 (RFC 5802): the server must prove it knows the password.
    #[value(name = "scram-sha-1")]
    ScramSha1,
    /// AUTH SCRAM-SHA-256 (RFC 7677).
    #[value(name = "scram-sha-256")]
    ScramSha256,
    /// AUTH EXTERNAL (RFC 4422): the client certificate is the credential (needs
    /// --client-cert; --user, if given, is the authorization identity).
    External,
}

impl AuthArg {
    /// The mechanism choice for a password (EXTERNAL takes no password: `Auto`).
    fn choice(self) -> AuthChoice {
        match self {
            AuthArg::Auto | AuthArg::External => AuthChoice::Auto,
            AuthArg::Plain => AuthChoice::Plain,
            AuthArg::Login => AuthChoice::Login,
            AuthArg::CramMd5 => AuthChoice::CramMd5,
            AuthArg::ScramSha1 => AuthChoice::ScramSha1,
            AuthArg::ScramSha256 => AuthChoice::ScramSha256,
        }
    }

    /// Parses a batch row's `auth` field (the same names as the flag).
    pub fn parse(s: &str) -> Option<AuthArg> {
        <AuthArg as ValueEnum>::from_str(s, true).ok()
    }
}

/// `--quit-after` values.
#[derive(Debug, Clone, Copy, ValueEnum, PartialEq, Eq)]
pub enum QuitAfterArg {
    /// After the TCP connection (or the proxy tunnel) opened; nothing is read.
    Connect,
    /// After the 220 greeting.
    Greeting,
    /// After the first EHLO (before STARTTLS).
    Ehlo,
    /// After the TLS handshake (implicit TLS: after the greeting).
    Tls,
    /// After AUTH succeeded.
    Auth,
    /// After MAIL FROM was accepted.
    Mail,
    /// After every RCPT TO was accepted (DATA is not sent).
    Rcpt,
}

impl QuitAfterArg {
    /// The stage this value names.
    pub fn stage(self) -> Stage {
        match self {
            QuitAfterArg::Connect => Stage::Connect,
            QuitAfterArg::Greeting => Stage::Greeting,
            QuitAfterArg::Ehlo => Stage::Ehlo,
            QuitAfterArg::Tls => Stage::Tls,
            QuitAfterArg::Auth => Stage::Auth,
            QuitAfterArg::Mail => Stage::Mail,
            QuitAfterArg::Rcpt => Stage::Rcpt,
        }
    }

    /// Parses a batch row's `quit_after` field.
    pub fn parse(s: &str) -> Option<QuitAfterArg> {
        <QuitAfterArg as ValueEnum>::from_str(s, true).ok()
    }
}

/// The flags of every command that touches the network: `check`, `batch`, `discover`.
#[derive(Debug, Args, Clone, Default)]
pub struct NetworkArgs {
    /// Extra trust anchors (PEM), besides the bundled web PKI roots.
    #[arg(long, value_name = "PEM")]
    pub ca_file: Option<PathBuf>,
    /// Seconds to wait for each network step (connect, each reply, TLS handshake)
    /// [default: 15].
    #[arg(long, value_name = "SECS")]
    pub timeout: Option<f64>,
    /// Use IPv4 only.
    #[arg(short = '4', conflicts_with = "ipv6")]
    pub ipv4: bool,
    /// Use IPv6 only.
    #[arg(short = '6')]
    pub ipv6: bool,
}

impl NetworkArgs {
    /// `-4` / `-6` as an [`IpVersion`].
    pub fn ip(&self) -> IpVersion {
        if self.ipv4 {
            IpVersion::V4
        } else if self.ipv6 {
            IpVersion::V6
        } else {
            IpVersion::Any
        }
    }
}

/// The connection and check flags of `check` and `batch`. For `batch` they are every
/// row's defaults; a row's own field wins.
#[derive(Debug, Args, Clone)]
pub struct ConnectionArgs {
    /// Port (default: 587 for starttls/auto, 465 for implicit, 25 for none).
    #[arg(long)]
    pub port: Option<u16>,
    /// Connection security.
    #[arg(long, value_enum, default_value = "auto")]
    pub tls: TlsChoice,
    /// SASL mechanism.
    #[arg(long, value_enum, default_value = "auto")]
    pub auth: AuthArg,
    /// Send a test message from this address (needs --to).
    #[arg(long, value_name = "ADDR", requires = "to")]
    pub from: Option<String>,
    /// Send the test message to this address (repeatable).
    #[arg(long, value_name = "ADDR")]
    pub to: Vec<String>,
    /// Connect to this IP instead of resolving the host; TLS still verifies the host name.
    #[arg(long, value_name = "ADDR")]
    pub connect_to: Option<IpAddr>,
    /// EHLO name (default: this host's name if fully qualified, else its address literal).
    #[arg(long, value_name = "NAME")]
    pub helo: Option<String>,
    /// Allow AUTH on an unencrypted connection (lab servers only: the password crosses
    /// the network in clear).
    #[arg(long)]
    pub allow_plaintext_auth: bool,
    /// Send MAIL/RCPT/DATA one at a time even when the server offers PIPELINING.
    #[arg(long)]
    pub no_pipelining: bool,
    /// Trust anchors, timeout, address family.
    #[command(flatten)]
    pub net: NetworkArgs,
}

impl ConnectionArgs {
    /// These flags as a [`CheckSpec`] (no host yet): the template a batch row fills in.
    pub fn spec(&self) -> CheckSpec {
        CheckSpec {
            port: self.port,
            tls: self.tls,
            auth: self.auth,
            from: self.from.clone(),
            to: self.to.clone(),
            ca_file: self.net.ca_file.clone(),
            connect_to: self.connect_to,
            timeout: self.net.timeout.unwrap_or(DEFAULT_TIMEOUT),
            helo: self.helo.clone(),
            ip: self.net.ip(),
            allow_plaintext_auth: self.allow_plaintext_auth,
            pipelining: !self.no_pipelining,
            ..CheckSpec::default()
        }
    }
}

/// Flags of `smtprobe check`. Its `Debug` redacts `--password`, `--password-command` and
/// `--proxy` (whose URL may carry a password).
#[derive(Args, Clone)]
pub struct CheckArgs {
    /// The SMTP server, e.g. smtp.gmail.com (optional with --provider), or an email
    /// address: its settings are discovered first and --user defaults to it.
    #[arg(required_unless_present = "provider", value_name = "HOST|ADDRESS")]
    pub host: Option<String>,
    /// Discovery and DNS settings (--dns-server also applies to HOST).
    #[command(flatten)]
    pub discovery: DiscoveryFlags,
    /// Fill host, port and TLS mode from a known provider's documented settings:
    /// gmail, outlook, office365, yahoo, icloud, zoho. HOST, --port and --tls still win.
    #[arg(long, value_name = "NAME")]
    pub provider: Option<String>,
    /// Port, TLS, mechanism, test message envelope, timeouts (shared with `batch`).
    #[command(flatten)]
    pub conn: ConnectionArgs,
    /// User name (for Gmail: the full address). Without it, AUTH is not tested.
    #[arg(long)]
    pub user: Option<String>,
    /// Read the password from this file (a trailing newline is not part of it).
    #[arg(long, value_name = "PATH")]
    pub password_file: Option<PathBuf>,
    /// The password on the command line: visible to other local users in the process
    /// list. Prefer SMTPROBE_PASSWORD, --password-file or the prompt.
    #[arg(long, value_name = "PASSWORD", hide_env_values = true)]
    pub password: Option<String>,
    /// Use an OAuth 2.0 access token from this environment variable (XOAUTH2/OAUTHBEARER).
    #[arg(long, value_name = "VAR")]
    pub oauth2_token_env: Option<String>,
    /// Print one JSON document instead of the human report.
    #[arg(long)]
    pub json: bool,
    /// Explain each transcript line (human output).
    #[arg(long)]
    pub annotate: bool,
    /// Also write a self-contained, redacted HTML report to FILE (to attach to a ticket).
    #[arg(long, value_name = "FILE")]
    pub html: Option<PathBuf>,
    /// Record the session as a fixture file (created 0600, never overwritten).
    #[arg(long, value_name = "FILE")]
    pub record: Option<PathBuf>,
    /// Stop after this stage (QUIT); the report lists what was not tested.
    #[arg(long, value_enum, value_name = "STAGE")]
    pub quit_after: Option<QuitAfterArg>,
    /// Offer this TLS client certificate (PEM chain, leaf first); needs --client-key.
    #[arg(long, value_name = "PEM", requires = "client_key")]
    pub client_cert: Option<PathBuf>,
    /// The private key (PEM) of --client-cert.
    #[arg(long, value_name = "PEM", requires = "client_cert")]
    pub client_key: Option<PathBuf>,
    /// Add a header to the test message, or replace a default one (Subject, From, …);
    /// repeatable.
    #[arg(long, value_name = "'NAME: VALUE'")]
    pub header: Vec<String>,
    /// The test message's body text.
    #[arg(long, value_name = "TEXT", conflicts_with = "body_file")]
    pub body: Option<String>,
    /// Read the test message's body from this file (UTF-8 text).
    #[arg(long, value_name = "PATH")]
    pub body_file: Option<PathBuf>,
    /// Attach this file (MIME multipart, base64); repeatable.
    #[arg(long, value_name = "PATH")]
    pub attach: Vec<PathBuf>,
    /// Pad the test message to exactly this many bytes, to probe the size limit; the
    /// check compares it with the SIZE the server announces before sending.
    #[arg(long, value_name = "BYTES")]
    pub size: Option<u64>,
    /// Run this shell command and use the first line it prints as the password (like
    /// msmtp's passwordeval); bounded by --timeout.
    #[arg(long, value_name = "CMD", conflicts_with_all = ["password_file", "password"])]
    pub password_command: Option<String>,
    /// Take the login and password for HOST from ~/.netrc (or $NETRC).
    #[arg(long)]
    pub netrc: bool,
    /// Connect through a proxy: `socks5://[user:pass@]host:port` (the proxy resolves
    /// HOST) or `http://[user:pass@]host:port` (CONNECT). Default: `$ALL_PROXY`.
    #[arg(long, value_name = "URL")]
    pub proxy: Option<String>,
}

impl CheckArgs {
    /// These flags as a [`CheckSpec`].
    pub fn spec(&self) -> CheckSpec {
        let password = if let Some(cmd) = &self.password_command {
            PasswordSource::Command(cmd.clone())
        } else if let Some(path) = &self.password_file {
            PasswordSource::File(path.clone())
        } else if let Some(p) = &self.password {
            PasswordSource::Flag(Secret::new(p.clone()))
        } else {
            PasswordSource::Ask
        };
        CheckSpec {
            host: self.host.clone(),
            provider: self.provider.clone(),
            user: self.user.clone(),
            password,
            oauth2_token_env: self.oauth2_token_env.clone(),
            netrc: self.netrc,
            dns_server: self.discovery.dns_server,
            quit_after: self.quit_after.map(QuitAfterArg::stage),
            client_cert: self.client_cert.clone(),
            client_key: self.client_key.clone(),
            message: MessageFlags {
                header: self.header.clone(),
                body: self.body.clone(),
                body_file: self.body_file.clone(),
                attach: self.attach.clone(),
                size: self.size,
            },
            proxy: self.proxy.clone().map(Secret::new),
            ..self.conn.spec()
        }
    }
}

impl std::fmt::Debug for CheckArgs {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        use crate::secret::redacted;
        f.debug_struct("CheckArgs")
            .field("host", &self.host)
            .field("discovery", &self.discovery)
            .field("provider", &self.provider)
            .field("conn", &self.conn)
            .field("user", &self.user)
            .field("password_file", &self.password_file)
            .field("password", &redacted(&self.password))
            .field("oauth2_token_env", &self.oauth2_token_env)
            .field("json", &self.json)
            .field("annotate", &self.annotate)
            .field("record", &self.record)
            .field("html", &self.html)
            .field("quit_after", &self.quit_after)
            .field("client_cert", &self.client_cert)
            .field("client_key", &self.client_key)
            .field("header", &self.header)
            .field("body", &self.body)
            .field("body_file", &self.body_file)
            .field("attach", &self.attach)
            .field("size", &self.size)
            // A command such as `echo PASSWORD` holds the password itself.
            .field("password_command", &redacted(&self.password_command))
            .field("netrc", &self.netrc)
            .field("proxy", &redacted(&self.proxy))
            .finish()
    }
}

/// Where a check's password comes from.
#[derive(Clone, Default)]
pub enum PasswordSource {
    /// `--password`: used, with a warning that the process list shows it.
    Flag(Secret),
    /// Already in hand: a batch row's `password` or `password_env`, a web request's
    /// `password`.
    Given(Secret),
    /// `--password-file`, a batch row's `password_file`.
    File(PathBuf),
    /// `--password-command`, bounded by the timeout.
    Command(String),
    /// None given: `~/.netrc` (with `--netrc`), `SMTPROBE_PASSWORD`, else the prompt on
    /// a terminal.
    #[default]
    Ask,
}

/// The test message's shape: `--header`, `--body`, `--body-file`, `--attach`, `--size`.
#[derive(Clone, Debug, Default)]
pub struct MessageFlags {
    /// `--header 'NAME: VALUE'`, repeatable.
    pub header: Vec<String>,
    /// `--body`.
    pub body: Option<String>,
    /// `--body-file`.
    pub body_file: Option<PathBuf>,
    /// `--attach`, repeatable.
    pub attach: Vec<PathBuf>,
    /// `--size`.
    pub size: Option<u64>,
}

impl MessageFlags {
    fn is_empty(&self) -> bool {
        self.size.is_none()
            && self.body.is_none()
            && self.body_file.is_none()
            && self.attach.is_empty()
            && self.header.is_empty()
    }
}

/// One check as plain data: what `check`'s flags, a batch row and a web request become
/// before [`config_from_spec`] validates it. No clap; its fields are the flags' meanings,
/// and [`Default`] is the flags' defaults. No `Debug`: it holds the password.
#[derive(Clone)]
pub struct CheckSpec {
    /// HOST (or from `provider`).
    pub host: Option<String>,
    /// `--provider NAME`.
    pub provider: Option<String>,
    /// `--port`.
    pub port: Option<u16>,
    /// `--tls`.
    pub tls: TlsChoice,
    /// `--auth`.
    pub auth: AuthArg,
    /// `--user`.
    pub user: Option<String>,
    /// The password's source.
    pub password: PasswordSource,
    /// `--oauth2-token-env VAR`.
    pub oauth2_token_env: Option<String>,
    /// `--netrc`.
    pub netrc: bool,
    /// `--from`.
    pub from: Option<String>,
    /// `--to`.
    pub to: Vec<String>,
    /// `--ca-file`.
    pub ca_file: Option<PathBuf>,
    /// `--connect-to`.
    pub connect_to: Option<IpAddr>,
    /// `--timeout`, seconds (checked by [`timeout_from_secs`]).
    pub timeout: f64,
    /// `--helo`.
    pub helo: Option<String>,
    /// `-4` / `-6`.
    pub ip: IpVersion,
    /// `--allow-plaintext-auth`.
    pub allow_plaintext_auth: bool,
    /// Not `--no-pipelining`.
    pub pipelining: bool,
    /// `--dns-server`.
    pub dns_server: Option<SocketAddr>,
    /// `--quit-after`.
    pub quit_after: Option<Stage>,
    /// `--client-cert`.
    pub client_cert: Option<PathBuf>,
    /// `--client-key`.
    pub client_key: Option<PathBuf>,
    /// The test message's shape.
    pub message: MessageFlags,
    /// `--proxy` (a secret: the URL may carry the proxy's password); `None` falls back
    /// to `ALL_PROXY`.
    pub proxy: Option<Secret>,
}

impl Default for CheckSpec {
    fn default() -> CheckSpec {
        CheckSpec {
            host: None,
            provider: None,
            port: None,
            tls: TlsChoice::Auto,
            auth: AuthArg::Auto,
            user: None,
            password: PasswordSource::Ask,
            oauth2_token_env: None,
            netrc: false,
            from: None,
            to: Vec::new(),
            ca_file: None,
            connect_to: None,
            timeout: DEFAULT_TIMEOUT,
            helo: None,
            ip: IpVersion::Any,
            allow_plaintext_auth: false,
            pipelining: true,
            dns_server: None,
            quit_after: None,
            client_cert: None,
            client_key: None,
            message: MessageFlags::default(),
            proxy: None,
        }
    }
}

/// A usage error: printed to stderr, exit code 2, nothing sent.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UsageError(pub String);

impl std::fmt::Display for UsageError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for UsageError {}

/// A library error about one setting, as the CLI says it: the setting's flag instead of
/// its words ("--helo: contains a space"), flags added after other settings it names.
impl From<crate::protocol::command::UnsafeValue> for UsageError {
    fn from(e: crate::protocol::command::UnsafeValue) -> UsageError {
        UsageError(format!(
            "{}: {}",
            e.what.cli_flag(),
            crate::setting::with_cli_flags(e.reason)
        ))
    }
}

/// A test-message error, naming its flag ("--size 10: …").
impl From<crate::message::MessageError> for UsageError {
    fn from(e: crate::message::MessageError) -> UsageError {
        UsageError(format!("{}{}", e.setting().cli_flag(), e.detail()))
    }
}

/// The timeout rule, in one place: seconds above 0 and at most an hour.
pub fn timeout_from_secs(secs: f64) -> Result<Duration, UsageError> {
    if secs.is_finite() && secs > 0.0 && secs <= 3600.0 {
        Ok(Duration::from_secs_f64(secs))
    } else {
        Err(UsageError(
            "--timeout must be a number of seconds above 0 and at most 3600".into(),
        ))
    }
}

/// Where a password can come from, in order of precedence.
fn read_password(spec: &CheckSpec, user: &str) -> Result<Secret, UsageError> {
    match &spec.password {
        PasswordSource::Given(secret) => return Ok(secret.clone()),
        PasswordSource::Command(cmd) => {
            let timeout = timeout_from_secs(spec.timeout)?;
            return crate::app::password::from_command(cmd, timeout)
                .map_err(|e| UsageError(format!("--password-command: {e}")));
        }
        PasswordSource::File(path) => return read_password_file(path),
        PasswordSource::Flag(secret) => {
            eprintln!(
                "smtprobe: warning: --password is visible to other local users in the process list; prefer SMTPROBE_PASSWORD or --password-file"
            );
            return Ok(secret.clone());
        }
        PasswordSource::Ask => {}
    }
    if spec.netrc {
        let host = spec.host.as_deref().unwrap_or_default();
        if let Some(entry) = netrc_entry(host, Some(user))? {
            return Ok(entry.1);
        }
    }
    if let Ok(p) = std::env::var("SMTPROBE_PASSWORD") {
        return Ok(Secret::new(p));
    }
    if std::io::stdin().is_terminal() && std::io::stderr().is_terminal() {
        let p = rpassword::prompt_password(format!("Password for {user}: "))
            .map_err(|e| UsageError(format!("cannot read the password from the terminal: {e}")))?;
        return Ok(Secret::new(p));
    }
    Err(UsageError(
        "--user needs a password: set SMTPROBE_PASSWORD, use --password-file PATH, or run on a terminal to be prompted".into(),
    ))
}

/// `--password-file`: its text, without the trailing newline an editor adds.
fn read_password_file(path: &std::path::Path) -> Result<Secret, UsageError> {
    let raw = std::fs::read(path).map_err(|e| {
        UsageError(format!(
            "cannot read --password-file {}: {e}",
            path.display()
        ))
    })?;
    let mut text = String::from_utf8(raw).map_err(|_| {
        UsageError(format!(
            "--password-file {}: not UTF-8 text",
            path.display()
        ))
    })?;
    if text.ends_with('\n') {
        text.pop();
        if text.ends_with('\r') {
            text.pop();
        }
    }
    Ok(Secret::new(text))
}

/// The `~/.netrc` (or `$NETRC`) entry for `host` (and `user`, when given).
fn netrc_entry(host: &str, user: Option<&str>) -> Result<Option<(String, Secret)>, UsageError> {
    let path = match std::env::var_os("NETRC") {
        Some(p) => PathBuf::from(p),
        None => match std::env::var_os("HOME") {
            Some(h) => PathBuf::from(h).join(".netrc"),
            None => return Err(UsageError("--netrc: HOME is not set".into())),
        },
    };
    let text = std::fs::read_to_string(&path)
        .map_err(|e| UsageError(format!("--netrc: cannot read {}: {e}", path.display())))?;
    Ok(crate::app::password::netrc_lookup(&text, host, user))
}

/// Turns `check` flags into a validated [`Config`].
pub fn config_from_args(args: &CheckArgs) -> Result<Config, UsageError> {
    config_from_spec(&args.spec())
}

/// The one conversion of a check's description — flags, batch row or web request —
/// into a validated [`Config`]. Everything is validated before a password is asked for.
pub fn config_from_spec(spec: &CheckSpec) -> Result<Config, UsageError> {
    let mut c = destination(spec)?;
    connection(spec, &mut c)?;
    test_message(spec, &mut c)?;
    credentials(spec, &mut c)?;
    c.validate()?;
    Ok(c)
}

/// Host, port and TLS choice: the spec's, else the provider's documented setting.
fn destination(spec: &CheckSpec) -> Result<Config, UsageError> {
    let provider = match &spec.provider {
        None => None,
        Some(name) => Some(crate::diagnosis::providers::by_name(name).ok_or_else(|| {
            let names: Vec<&str> = crate::diagnosis::providers::all()
                .iter()
                .map(|p| p.name.as_str())
                .collect();
            UsageError(format!(
                "--provider {name:?} is not known; known providers: {}",
                names.join(", ")
            ))
        })?),
    };
    let host = match (&spec.host, provider) {
        (Some(h), _) => h.clone(),
        (None, Some(p)) => p.host().to_owned(),
        (None, None) => return Err(UsageError("HOST is required (or --provider NAME)".into())),
    };
    let mut c = Config::new(host);
    if spec.port == Some(0) {
        return Err(UsageError("--port must be between 1 and 65535".into()));
    }
    c.tls = spec.tls;
    c.port = spec.port;
    if let Some(p) = provider {
        // The provider's preferred documented setting, or the one for the port given.
        let setting = match spec.port {
            Some(port) => p.setting_for_port(port),
            None => p.submission().first(),
        };
        if let Some(&crate::diagnosis::providers::Setting { port, mode, .. }) = setting {
            c.port = Some(port);
            if spec.tls == TlsChoice::Auto {
                c.tls = mode.into();
            }
        }
    }
    Ok(c)
}

/// How to reach the server: the timeout rule, EHLO name, address, client certificate,
/// proxy, trust anchors.
fn connection(spec: &CheckSpec, c: &mut Config) -> Result<(), UsageError> {
    c.timeout = timeout_from_secs(spec.timeout)?;
    c.helo = spec.helo.clone();
    c.connect_to = spec.connect_to;
    c.ip = spec.ip;
    c.allow_plaintext_auth = spec.allow_plaintext_auth;
    c.pipelining = spec.pipelining;
    c.dns_server = spec.dns_server;
    c.quit_after = spec.quit_after;
    if let (Some(cert), Some(key)) = (&spec.client_cert, &spec.client_key) {
        c.client_cert = Some(std::sync::Arc::new(
            crate::transport::ClientCert::load(cert, key)
                .map_err(|e| UsageError(format!("--client-cert: {e}")))?,
        ));
    }
    let (proxy, from) = match &spec.proxy {
        Some(url) => (Some(url.expose().to_owned()), "--proxy"),
        None => (
            ["ALL_PROXY", "all_proxy"]
                .iter()
                .find_map(|v| std::env::var(v).ok().filter(|p| !p.is_empty())),
            "ALL_PROXY",
        ),
    };
    if let Some(url) = proxy {
        c.proxy = Some(
            crate::proxy::ProxyConfig::parse(&url)
                .map_err(|e| UsageError(format!("{from}: {e}")))?,
        );
    }
    if let Some(path) = &spec.ca_file {
        c.extra_roots = crate::transport::load_ca_file(path)
            .map_err(|e| UsageError(format!("--ca-file: {e}")))?;
    }
    Ok(())
}

/// The test message: its envelope and shape (checked against `--size` up front).
fn test_message(spec: &CheckSpec, c: &mut Config) -> Result<(), UsageError> {
    c.message = message_spec(&spec.message)?;
    if let Some(from) = &spec.from {
        c.mail = Some(MailTarget {
            from: from.clone(),
            to: spec.to.clone(),
        });
    } else if !spec.to.is_empty() {
        return Err(UsageError("--to needs --from (the sender address)".into()));
    }
    if let (Some(m), Some(_)) = (&c.mail, spec.message.size) {
        // The detailed message (the validate() one is generic).
        let stamp = crate::message::Stamp::longest();
        crate::message::check(&c.message, &m.from, &m.to, &c.host, &stamp)?;
    }
    if c.mail.is_none() && !spec.message.is_empty() {
        return Err(UsageError(
            "--header, --body, --body-file, --attach and --size shape the test message: they need --from and --to".into(),
        ));
    }
    Ok(())
}

/// The login: EXTERNAL, an OAuth token, or a password from its source (asked for last,
/// after everything else validated).
fn credentials(spec: &CheckSpec, c: &mut Config) -> Result<(), UsageError> {
    if spec.oauth2_token_env.is_some() && spec.user.is_none() {
        return Err(UsageError("--oauth2-token-env needs --user".into()));
    }
    if spec.auth == AuthArg::External {
        if c.client_cert.is_none() {
            return Err(UsageError(
                "--auth external needs --client-cert and --client-key".into(),
            ));
        }
        let user = spec.user.clone().unwrap_or_default();
        crate::protocol::command::check_line_safe(Setting::User, &user)?;
        c.auth = Some(AuthConfig {
            user,
            credential: Credential::External,
        });
        return Ok(());
    }
    // Validate everything else before asking for a password.
    c.validate()?;
    // --netrc without --user: the login comes from the entry too.
    let mut netrc_user = None;
    if spec.user.is_none() && spec.netrc && spec.oauth2_token_env.is_none() {
        let host = c.host.clone();
        match netrc_entry(&host, None)? {
            Some((login, secret)) => netrc_user = Some((login, secret)),
            None => {
                return Err(UsageError(format!(
                    "--netrc: no \"machine {host}\" (or \"default\") entry with a login"
                )))
            }
        }
    }
    let user = spec
        .user
        .clone()
        .or_else(|| netrc_user.as_ref().map(|(u, _)| u.clone()));
    if let Some(user) = user {
        crate::protocol::command::check_line_safe(Setting::User, &user)?;
        let credential = if let Some(var) = &spec.oauth2_token_env {
            let token = std::env::var(var).map_err(|_| {
                UsageError(format!(
                    "--oauth2-token-env: environment variable {var} is not set"
                ))
            })?;
            Credential::OAuthToken(Secret::new(token))
        } else {
            let secret = match (netrc_user, &spec.password) {
                (Some((_, secret)), source) if !matches!(source, PasswordSource::Given(_)) => {
                    secret
                }
                _ => read_password(spec, &user)?,
            };
            Credential::Password {
                secret,
                choice: spec.auth.choice(),
            }
        };
        c.auth = Some(AuthConfig { user, credential });
    }
    Ok(())
}

/// The test message from --header, --body, --body-file, --attach and --size.
fn message_spec(flags: &MessageFlags) -> Result<crate::message::MessageSpec, UsageError> {
    let mut spec = crate::message::MessageSpec {
        size: flags.size,
        body: flags.body.clone(),
        ..Default::default()
    };
    for h in &flags.header {
        spec.headers.push(crate::message::parse_header(h)?);
    }
    if let Some(path) = &flags.body_file {
        let raw = crate::message::read_capped(Setting::BodyFile, path)?;
        spec.body = Some(String::from_utf8(raw).map_err(|_| {
            UsageError(format!(
                "--body-file {}: not UTF-8 text (send binary data with --attach)",
                path.display()
            ))
        })?);
    }
    for path in &flags.attach {
        spec.attachments
            .push(crate::message::read_attachment(path)?);
    }
    Ok(spec)
}

/// Flags shared by `discover` and `check ADDRESS`.
#[derive(Debug, Args, Clone)]
pub struct DiscoveryFlags {
    /// Resolve through this DNS server (IP:PORT) instead of the system resolver. A
    /// testing aid: point it at a local test DNS server.
    #[arg(long, value_name = "IP:PORT")]
    pub dns_server: Option<std::net::SocketAddr>,
    /// Probes run at once during discovery.
    #[arg(long, value_name = "N", default_value = "8")]
    pub concurrency: usize,
    /// Testing aid: connect to port TO whenever a candidate says port FROM (repeatable).
    #[arg(long, value_name = "FROM=TO", hide = true, value_parser = parse_port_map)]
    pub port_map: Vec<(u16, u16)>,
    /// Testing aid: the HTTPS port of the autoconfig fetch.
    #[arg(long, value_name = "PORT", hide = true, default_value = "443")]
    pub https_port: u16,
}

pub(crate) fn parse_port_map(s: &str) -> Result<(u16, u16), UsageError> {
    let (a, b) = s
        .split_once('=')
        .ok_or_else(|| UsageError(format!("{s:?}: expected FROM=TO, e.g. 587=40587")))?;
    let port = |x: &str| {
        x.parse::<u16>()
            .ok()
            .filter(|p| *p != 0)
            .ok_or_else(|| UsageError(format!("{x:?} is not a port (1-65535)")))
    };
    Ok((port(a)?, port(b)?))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn library_errors_name_the_flag_on_the_command_line() {
        let e = crate::protocol::command::check_helo_name("a b").unwrap_err();
        assert_eq!(e.to_string(), "the EHLO name setting: contains a space");
        assert_eq!(UsageError::from(e).0, "--helo: contains a space");
        let e = crate::protocol::command::UnsafeValue {
            what: Setting::To,
            reason: "is required with the sender address setting",
        };
        assert_eq!(
            UsageError::from(e).0,
            "--to: is required with the sender address setting (--from)"
        );
        let e = crate::message::parse_header("NoColon").unwrap_err();
        assert_eq!(
            e.to_string(),
            "the header setting \"NoColon\": expected 'Name: value'"
        );
        assert_eq!(
            UsageError::from(e).0,
            "--header \"NoColon\": expected 'Name: value'"
        );
    }
}
