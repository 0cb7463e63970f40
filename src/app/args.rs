//! The flags of `smtprobe check`, and their one conversion into a validated [`Config`].
//!
//! A module of its own, beside `cli` and `batch`: `batch` rows and `web` requests fill in
//! a [`CheckArgs`] too, and importing it from here keeps the imports one-way
//! (`cli` → `batch` → `check_args`, never `batch` → `cli`).

use crate::probe::{Config, MailTarget, TlsChoice};
use crate::secret::Secret;
use crate::session::{AuthChoice, AuthConfig, Credential};
use crate::stage::Stage;
use crate::transport::IpVersion;
use clap::{Args, ValueEnum};
use std::io::IsTerminal;
use std::net::IpAddr;
use std::path::PathBuf;
use std::time::Duration;

/// `--tls` values.
#[derive(Debug, Clone, Copy, ValueEnum, PartialEq, Eq)]
pub enum TlsArg {
    /// Implicit TLS on 465, STARTTLS otherwise; switches when the port speaks the other.
    Auto,
    /// Plain connection upgraded with STARTTLS (port 587).
    Starttls,
    /// TLS from the first byte (port 465).
    Implicit,
    /// No encryption (lab servers, port 25 relays).
    None,
}

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
    fn stage(self) -> Stage {
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
    /// Port (default: 587 for starttls/auto, 465 for implicit, 25 for none).
    #[arg(long)]
    pub port: Option<u16>,
    /// Connection security.
    #[arg(long, value_enum, default_value = "auto")]
    pub tls: TlsArg,
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
    /// SASL mechanism.
    #[arg(long, value_enum, default_value = "auto")]
    pub auth: AuthArg,
    /// Send a test message from this address (needs --to).
    #[arg(long, value_name = "ADDR", requires = "to")]
    pub from: Option<String>,
    /// Send the test message to this address (repeatable).
    #[arg(long, value_name = "ADDR")]
    pub to: Vec<String>,
    /// Extra trust anchors (PEM), besides the bundled web PKI roots.
    #[arg(long, value_name = "PEM")]
    pub ca_file: Option<PathBuf>,
    /// Connect to this IP instead of resolving HOST; TLS still verifies HOST.
    #[arg(long, value_name = "ADDR")]
    pub connect_to: Option<IpAddr>,
    /// Seconds to wait for each network step (connect, each reply, TLS handshake).
    #[arg(long, value_name = "SECS", default_value = "15")]
    pub timeout: f64,
    /// EHLO name (default: this host's name if fully qualified, else its address literal).
    #[arg(long, value_name = "NAME")]
    pub helo: Option<String>,
    /// Use IPv4 only.
    #[arg(short = '4', conflicts_with = "ipv6")]
    pub ipv4: bool,
    /// Use IPv6 only.
    #[arg(short = '6')]
    pub ipv6: bool,
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
    /// Allow AUTH on an unencrypted connection (lab servers only: the password crosses
    /// the network in clear).
    #[arg(long)]
    pub allow_plaintext_auth: bool,
    /// Send MAIL/RCPT/DATA one at a time even when the server offers PIPELINING.
    #[arg(long)]
    pub no_pipelining: bool,
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

impl std::fmt::Debug for CheckArgs {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        use crate::secret::redacted;
        f.debug_struct("CheckArgs")
            .field("host", &self.host)
            .field("provider", &self.provider)
            .field("port", &self.port)
            .field("tls", &self.tls)
            .field("user", &self.user)
            .field("password_file", &self.password_file)
            .field("password", &redacted(&self.password))
            .field("oauth2_token_env", &self.oauth2_token_env)
            .field("auth", &self.auth)
            .field("from", &self.from)
            .field("to", &self.to)
            .field("ca_file", &self.ca_file)
            .field("connect_to", &self.connect_to)
            .field("timeout", &self.timeout)
            .field("helo", &self.helo)
            .field("ipv4", &self.ipv4)
            .field("ipv6", &self.ipv6)
            .field("json", &self.json)
            .field("annotate", &self.annotate)
            .field("record", &self.record)
            .field("html", &self.html)
            .field("allow_plaintext_auth", &self.allow_plaintext_auth)
            .field("no_pipelining", &self.no_pipelining)
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

/// A usage error: printed to stderr, exit code 2, nothing sent.
#[derive(Debug)]
pub struct UsageError(pub String);

impl std::fmt::Display for UsageError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

/// Where a password can come from, in order of precedence.
fn read_password(args: &CheckArgs, user: &str) -> Result<Secret, UsageError> {
    if let Some(cmd) = &args.password_command {
        let timeout = Duration::from_secs_f64(args.timeout);
        return crate::password::from_command(cmd, timeout).map_err(UsageError);
    }
    if let Some(path) = &args.password_file {
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
        // The trailing newline an editor adds is not part of the password.
        if text.ends_with('\n') {
            text.pop();
            if text.ends_with('\r') {
                text.pop();
            }
        }
        return Ok(Secret::new(text));
    }
    if let Some(p) = &args.password {
        eprintln!(
            "smtprobe: warning: --password is visible to other local users in the process list; prefer SMTPROBE_PASSWORD or --password-file"
        );
        return Ok(Secret::new(p.clone()));
    }
    if args.netrc {
        let host = args.host.as_deref().unwrap_or_default();
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

/// `check`'s flags at their defaults (HOST unset), whatever flags it grows: the template
/// `batch` rows and `smtprobe web` requests fill in.
pub fn default_check_args() -> CheckArgs {
    use clap::FromArgMatches as _;
    let matches = <CheckArgs as Args>::augment_args(clap::Command::new("check"))
        .try_get_matches_from(["check", "placeholder.invalid"])
        .expect("check's own defaults parse");
    let mut args = CheckArgs::from_arg_matches(&matches).expect("check's own defaults parse");
    args.host = None;
    args
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
    Ok(crate::password::netrc_lookup(&text, host, user))
}

/// Turns `check` flags into a validated [`Config`].
pub fn config_from_args(args: &CheckArgs) -> Result<Config, UsageError> {
    config_from_args_with(args, None)
}

/// [`config_from_args`] with the password already in hand (`batch` reads it from the
/// row): `Some` is used instead of `--password-file`, `--password`, the environment or
/// the prompt.
pub fn config_from_args_with(
    args: &CheckArgs,
    password: Option<Secret>,
) -> Result<Config, UsageError> {
    let provider = match &args.provider {
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
    let host = match (&args.host, provider) {
        (Some(h), _) => h.clone(),
        (None, Some(p)) => p.host().to_owned(),
        (None, None) => return Err(UsageError("HOST is required (or --provider NAME)".into())),
    };
    let mut c = Config::new(host);
    if args.port == Some(0) {
        return Err(UsageError("--port must be between 1 and 65535".into()));
    }
    c.tls = match args.tls {
        TlsArg::Auto => TlsChoice::Auto,
        TlsArg::Starttls => TlsChoice::Starttls,
        TlsArg::Implicit => TlsChoice::Implicit,
        TlsArg::None => TlsChoice::None,
    };
    c.port = args.port;
    if let Some(p) = provider {
        // The provider's preferred documented setting, or the one for the port given.
        let setting = match args.port {
            Some(port) => p.setting_for_port(port),
            None => p.submission().first(),
        };
        if let Some(&crate::diagnosis::providers::Setting { port, mode, .. }) = setting {
            c.port = Some(port);
            if args.tls == TlsArg::Auto {
                c.tls = match mode {
                    crate::failure::TlsMode::Starttls => TlsChoice::Starttls,
                    crate::failure::TlsMode::Implicit => TlsChoice::Implicit,
                    crate::failure::TlsMode::None => TlsChoice::None,
                };
            }
        }
    }
    if !(args.timeout.is_finite() && args.timeout > 0.0 && args.timeout <= 3600.0) {
        return Err(UsageError(
            "--timeout must be a number of seconds above 0 and at most 3600".into(),
        ));
    }
    c.timeout = Duration::from_secs_f64(args.timeout);
    c.helo = args.helo.clone();
    c.connect_to = args.connect_to;
    c.ip = ip_version(args.ipv4, args.ipv6);
    c.allow_plaintext_auth = args.allow_plaintext_auth;
    c.pipelining = !args.no_pipelining;
    c.dns_server = args.discovery.dns_server;
    c.quit_after = args.quit_after.map(QuitAfterArg::stage);
    if let (Some(cert), Some(key)) = (&args.client_cert, &args.client_key) {
        c.client_cert = Some(std::sync::Arc::new(
            crate::transport::ClientCert::load(cert, key)
                .map_err(|e| UsageError(format!("--client-cert: {e}")))?,
        ));
    }
    let proxy = args.proxy.clone().or_else(|| {
        ["ALL_PROXY", "all_proxy"]
            .iter()
            .find_map(|v| std::env::var(v).ok().filter(|p| !p.is_empty()))
    });
    if let Some(url) = proxy {
        let from = if args.proxy.is_some() {
            "--proxy"
        } else {
            "ALL_PROXY"
        };
        c.proxy = Some(
            crate::proxy::ProxyConfig::parse(&url)
                .map_err(|e| UsageError(format!("{from}: {e}")))?,
        );
    }
    c.message = message_spec(args)?;
    if let Some(path) = &args.ca_file {
        c.extra_roots = crate::transport::load_ca_file(path)
            .map_err(|e| UsageError(format!("--ca-file: {e}")))?;
    }
    if let Some(from) = &args.from {
        c.mail = Some(MailTarget {
            from: from.clone(),
            to: args.to.clone(),
        });
    } else if !args.to.is_empty() {
        return Err(UsageError("--to needs --from (the sender address)".into()));
    }
    if args.oauth2_token_env.is_some() && args.user.is_none() {
        return Err(UsageError("--oauth2-token-env needs --user".into()));
    }
    if let (Some(m), Some(_)) = (&c.mail, args.size) {
        // The detailed message (the validate() one is generic).
        let stamp = crate::message::Stamp {
            date: "Thu, 01 Jan 1970 00:00:00 +0000".into(),
            id: format!("{}.{}", "f".repeat(32), "f".repeat(8)),
        };
        crate::message::build(&c.message, &m.from, &m.to, &c.host, &stamp)
            .map_err(|e| UsageError(e.to_string()))?;
    }
    if c.mail.is_none()
        && (args.size.is_some()
            || args.body.is_some()
            || args.body_file.is_some()
            || !args.attach.is_empty()
            || !args.header.is_empty())
    {
        return Err(UsageError(
            "--header, --body, --body-file, --attach and --size shape the test message: they need --from and --to".into(),
        ));
    }
    if args.auth == AuthArg::External {
        if c.client_cert.is_none() {
            return Err(UsageError(
                "--auth external needs --client-cert and --client-key".into(),
            ));
        }
        let user = args.user.clone().unwrap_or_default();
        crate::protocol::command::check_line_safe("--user", &user)
            .map_err(|e| UsageError(e.to_string()))?;
        c.auth = Some(AuthConfig {
            user,
            credential: Credential::External,
        });
        c.validate().map_err(|e| UsageError(e.to_string()))?;
        return Ok(c);
    }
    // Validate everything else before asking for a password.
    c.validate().map_err(|e| UsageError(e.to_string()))?;
    // --netrc without --user: the login comes from the entry too.
    let mut netrc_user = None;
    if args.user.is_none() && args.netrc && args.oauth2_token_env.is_none() {
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
    let user_arg = args
        .user
        .clone()
        .or_else(|| netrc_user.as_ref().map(|(u, _)| u.clone()));
    let password = password.or_else(|| netrc_user.as_ref().map(|(_, s)| s.clone()));
    if let Some(user) = &user_arg {
        crate::protocol::command::check_line_safe("--user", user)
            .map_err(|e| UsageError(e.to_string()))?;
        let credential = if let Some(var) = &args.oauth2_token_env {
            let token = std::env::var(var).map_err(|_| {
                UsageError(format!(
                    "--oauth2-token-env: environment variable {var} is not set"
                ))
            })?;
            Credential::OAuthToken(Secret::new(token))
        } else {
            Credential::Password {
                secret: match password {
                    Some(p) => p,
                    None => read_password(args, user)?,
                },
                choice: match args.auth {
                    AuthArg::Auto | AuthArg::External => AuthChoice::Auto,
                    AuthArg::Plain => AuthChoice::Plain,
                    AuthArg::Login => AuthChoice::Login,
                    AuthArg::CramMd5 => AuthChoice::CramMd5,
                    AuthArg::ScramSha1 => AuthChoice::ScramSha1,
                    AuthArg::ScramSha256 => AuthChoice::ScramSha256,
                },
            }
        };
        c.auth = Some(AuthConfig {
            user: user.clone(),
            credential,
        });
    }
    c.validate().map_err(|e| UsageError(e.to_string()))?;
    Ok(c)
}

/// The test message from --header, --body, --body-file, --attach and --size.
fn message_spec(args: &CheckArgs) -> Result<crate::message::MessageSpec, UsageError> {
    let err = |e: crate::message::MessageError| UsageError(e.0);
    let mut spec = crate::message::MessageSpec {
        size: args.size,
        body: args.body.clone(),
        ..Default::default()
    };
    for h in &args.header {
        spec.headers
            .push(crate::message::parse_header(h).map_err(err)?);
    }
    if let Some(path) = &args.body_file {
        let raw = crate::message::read_capped("--body-file", path).map_err(err)?;
        spec.body = Some(String::from_utf8(raw).map_err(|_| {
            UsageError(format!(
                "--body-file {}: not UTF-8 text (send binary data with --attach)",
                path.display()
            ))
        })?);
    }
    for path in &args.attach {
        spec.attachments
            .push(crate::message::read_attachment(path).map_err(err)?);
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

pub(crate) fn parse_port_map(s: &str) -> Result<(u16, u16), String> {
    let (a, b) = s
        .split_once('=')
        .ok_or_else(|| format!("{s:?}: expected FROM=TO, e.g. 587=40587"))?;
    let port = |x: &str| {
        x.parse::<u16>()
            .ok()
            .filter(|p| *p != 0)
            .ok_or_else(|| format!("{x:?} is not a port (1-65535)"))
    };
    Ok((port(a)?, port(b)?))
}

/// `-4` / `-6` as an [`IpVersion`].
pub(crate) fn ip_version(v4: bool, v6: bool) -> IpVersion {
    if v4 {
        IpVersion::V4
    } else if v6 {
        IpVersion::V6
    } else {
        IpVersion::Any
    }
}
