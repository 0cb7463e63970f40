//! The command line: clap definitions, turned into a validated [`Config`]; the exit code
//! is decided once, in [`exit_code`].

use crate::probe::{Config, MailTarget, TlsChoice};
use crate::report::{Report, Style};
use crate::secret::Secret;
use crate::session::{AuthChoice, AuthConfig, Credential};
use crate::stage::Stage;
use crate::transport::IpVersion;
use clap::{Args, Parser, Subcommand, ValueEnum};
use std::io::IsTerminal;
use std::net::IpAddr;
use std::path::PathBuf;
use std::time::Duration;

/// Exit codes, listed in the README. Decided in one place.
pub mod exit {
    /// Every requested stage passed.
    pub const OK: i32 = 0;
    /// smtprobe itself failed (I/O on a local file, an internal error).
    pub const INTERNAL: i32 = 1;
    /// Bad flags or input: nothing was sent.
    pub const USAGE: i32 = 2;
    /// DNS, the proxy or TCP connect failed.
    pub const NETWORK: i32 = 3;
    /// TLS or STARTTLS failed.
    pub const TLS: i32 = 4;
    /// The SMTP dialogue failed (greeting, EHLO, malformed or missing replies, QUIT).
    pub const DIALOGUE: i32 = 5;
    /// Authentication failed.
    pub const AUTH: i32 = 6;
    /// Sending the test message failed (MAIL, RCPT, DATA).
    pub const SEND: i32 = 7;
    /// `batch`: at least one row failed its check or was a bad row.
    pub const BATCH_SOME_FAILED: i32 = 8;
    /// `batch`: stopped by Ctrl-C before every row ran.
    pub const BATCH_INTERRUPTED: i32 = 130;
}

/// The exit code for a finished check.
pub fn exit_code(report: &Report) -> i32 {
    match report.failed_stage {
        None => exit::OK,
        Some(Stage::Dns | Stage::Proxy | Stage::Connect) => exit::NETWORK,
        Some(Stage::Tls | Stage::Starttls) => exit::TLS,
        Some(Stage::Greeting | Stage::Ehlo | Stage::Quit) => exit::DIALOGUE,
        Some(Stage::Auth) => exit::AUTH,
        Some(Stage::Mail | Stage::Rcpt | Stage::Data) => exit::SEND,
    }
}

const CHECK_EXAMPLES: &str = "\
Examples:
  SMTPROBE_PASSWORD='abcd efgh ijkl mnop' smtprobe check smtp.gmail.com --user you@gmail.com
  smtprobe check smtp.gmail.com --port 465 --user you@gmail.com --password-file ~/.gmail-app-password
  smtprobe check mail.example.org --user me --from me@example.org --to me@example.org
  smtprobe check smtp.gmail.com            # no credentials: network, TLS and capabilities only

Exit codes: 0 ok, 2 usage, 3 network, 4 TLS, 5 SMTP dialogue, 6 auth, 7 sending, 1 internal.";

/// smtprobe: tells you exactly why your SMTP setup fails, and how to fix it.
// `Debug` by hand (below, with `Command`'s and `CheckArgs`'s): they hold a password.
#[derive(Parser)]
#[command(name = "smtprobe", version, about, long_about = None, after_help = CHECK_EXAMPLES)]
pub struct Cli {
    /// More tracing on stderr (-v, -vv, -vvv); RUST_LOG overrides.
    #[arg(short, long, action = clap::ArgAction::Count, global = true)]
    pub verbose: u8,
    /// The command.
    #[command(subcommand)]
    pub command: Command,
}

/// Subcommands.
// Parsed once per run: boxing CheckArgs to shrink the enum would buy nothing.
#[allow(clippy::large_enum_variant)]
#[derive(Subcommand)]
pub enum Command {
    /// Probe a submission server stage by stage and explain the result.
    #[command(after_help = CHECK_EXAMPLES)]
    Check(CheckArgs),
    /// Explain a diagnosis code (auth.bad-credentials), a reply code (535), an
    /// enhanced status code (5.7.8) or a provider (gmail, office365; see `providers`).
    Explain {
        /// What to explain.
        query: String,
    },
    /// List the known providers and their documented settings; `explain NAME` shows one
    /// with the source and checked date of every fact.
    Providers,
    /// Run every bundled scenario against the built-in replay server (no network), or
    /// show one in full.
    Demo {
        /// A scenario name to show in full (see the list without it).
        name: Option<String>,
        /// Explain each transcript line (with NAME).
        #[arg(long)]
        annotate: bool,
        /// JSON output (with NAME).
        #[arg(long)]
        json: bool,
        /// Also write a self-contained HTML report: NAME's report, or without NAME a
        /// table of every scenario.
        #[arg(long, value_name = "FILE")]
        html: Option<PathBuf>,
    },
    /// Play a provider's behaviour from a fixture as a local SMTP server, for testing an
    /// app against it, and judge what the app did.
    Serve(ServeArgs),
    /// Check many accounts from a JSON Lines file, concurrently; one JSON result per line.
    Batch(crate::batch::BatchArgs),
    /// Find the SMTP settings for an email address (provider table, MX, SRV, autoconfig,
    /// guesses) and probe them without credentials.
    #[command(after_help = DISCOVER_EXAMPLES)]
    Discover(DiscoverArgs),
    /// A local web page and HTTP API for checks (127.0.0.1:8025 by default).
    Web(crate::web::WebArgs),
    /// Print shell completions.
    Completions {
        /// The shell.
        shell: clap_complete::Shell,
    },
}

const DISCOVER_EXAMPLES: &str = "\
Examples:
  smtprobe discover you@acme.com
  smtprobe discover you@acme.com --json
  smtprobe check you@acme.com        # discover, then ONE login on the best candidate

Exit codes: 0 settings found, 2 usage, 3 nothing found that answers.";

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

/// Flags of `smtprobe discover`.
#[derive(Debug, Args, Clone)]
pub struct DiscoverArgs {
    /// The email address, e.g. you@acme.com.
    pub address: String,
    /// Discovery settings.
    #[command(flatten)]
    pub flags: DiscoveryFlags,
    /// Extra trust anchors (PEM) for SMTP and the autoconfig HTTPS fetch.
    #[arg(long, value_name = "PEM")]
    pub ca_file: Option<PathBuf>,
    /// Seconds to wait for each network step of each probe.
    #[arg(long, value_name = "SECS", default_value = "5")]
    pub timeout: f64,
    /// Use IPv4 only.
    #[arg(short = '4', conflicts_with = "ipv6")]
    pub ipv4: bool,
    /// Use IPv6 only.
    #[arg(short = '6')]
    pub ipv6: bool,
    /// Print one JSON document instead of the human report.
    #[arg(long)]
    pub json: bool,
}

/// Runs `smtprobe discover`.
pub async fn run_discover(args: DiscoverArgs) -> i32 {
    let ip = ip_version(args.ipv4, args.ipv6);
    match crate::discover::run::discover_cli(
        &args.address,
        &args.flags,
        args.ca_file.as_deref(),
        args.timeout,
        ip,
        args.json,
    )
    .await
    {
        Ok(found) => {
            if found {
                exit::OK
            } else {
                exit::NETWORK
            }
        }
        Err(e) => {
            eprintln!("smtprobe: {e}");
            exit::USAGE
        }
    }
}

fn ip_version(v4: bool, v6: bool) -> IpVersion {
    if v4 {
        IpVersion::V4
    } else if v6 {
        IpVersion::V6
    } else {
        IpVersion::Any
    }
}

/// Flags of `smtprobe serve` (`fixtures/README.md`, "Replay server", is the reference).
#[derive(Debug, Args, Clone)]
pub struct ServeArgs {
    /// A .fixture file, or a folder of them (the scenario is then chosen by the AUTH
    /// user's local part or the EHLO name's first label).
    pub path: PathBuf,
    /// Address to listen on (port 0 picks a free port; the first stdout line says which).
    #[arg(long, default_value = "127.0.0.1:2525")]
    pub listen: std::net::SocketAddr,
    /// Write the CA certificate (PEM) here, for the client to trust.
    #[arg(long, value_name = "PATH")]
    pub ca_out: Option<PathBuf>,
    /// Serve one connection, then exit 0 if it passed, 1 if not (= --connections 1).
    #[arg(long, conflicts_with = "connections")]
    pub once: bool,
    /// Serve N connections, then exit 0 if every one passed, 1 if not.
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u64).range(1..))]
    pub connections: Option<u64>,
    /// Exit 1 when no client connects within SECS (each wait for the next connection).
    #[arg(long, value_name = "SECS")]
    pub accept_timeout: Option<f64>,
    /// One JSON object per stdout line.
    #[arg(long)]
    pub json: bool,
    /// Every finding fails the connection, not only the security rules.
    #[arg(long)]
    pub fail_on_findings: bool,
    /// Play the fixture as a lock-step script: the client must send exactly the
    /// fixture's client lines (smtprobe's own tests).
    #[arg(long)]
    pub strict: bool,
    /// An extra name in the certificate (the host name your app is configured with);
    /// repeatable.
    #[arg(long, value_name = "NAME")]
    pub cert_name: Vec<String>,
    /// Present this certificate chain (PEM) instead of a generated one (needs --key).
    #[arg(
        long,
        value_name = "PEM",
        requires = "key",
        conflicts_with = "state_dir"
    )]
    pub cert: Option<PathBuf>,
    /// The private key (PEM) of --cert.
    #[arg(long, value_name = "PEM", requires = "cert")]
    pub key: Option<PathBuf>,
    /// Keep the CA in DIR (ca.pem, ca-key.pem) across runs, so clients trust it once.
    #[arg(long, value_name = "DIR")]
    pub state_dir: Option<PathBuf>,
    /// Present a broken certificate to test the app's verification: wrong-name,
    /// untrusted, expired. Overrides the fixture's `certificate` header (`valid`: keep
    /// the fixture's).
    #[arg(long, value_name = "MODE", value_parser = parse_cert_mode)]
    pub certificate: Option<crate::certs::ServerCert>,
    /// Folder mode: the scenario a connection starts with (default: `default`, else the
    /// first `expect: ok` STARTTLS fixture by name).
    #[arg(long, value_name = "NAME")]
    pub scenario: Option<String>,
    /// Milliseconds of latency before each reply.
    #[arg(long, value_name = "MS", default_value = "0")]
    pub delay: u64,
    /// Seconds to wait for each client line before answering 421.
    #[arg(long, value_name = "SECS", default_value = "30")]
    pub timeout: u64,
}

fn parse_cert_mode(s: &str) -> Result<crate::certs::ServerCert, String> {
    crate::fixture::cert_mode_parse(s)
        .ok_or_else(|| format!("`{s}`: one of valid, wrong-name, untrusted, expired"))
}

/// Runs `smtprobe serve`.
pub async fn run_serve(args: ServeArgs) -> i32 {
    let accept_timeout = match args.accept_timeout {
        None => None,
        Some(s) if s.is_finite() && s > 0.0 && s <= 86_400.0 => Some(Duration::from_secs_f64(s)),
        Some(_) => {
            eprintln!("smtprobe serve: --accept-timeout must be seconds above 0 and at most 86400");
            return exit::USAGE;
        }
    };
    if args.ca_out.is_some() && args.cert.is_some() {
        eprintln!(
            "smtprobe serve: --ca-out writes the generated CA; with --cert you already have yours"
        );
        return exit::USAGE;
    }
    let identity = match (args.cert, args.key, args.state_dir) {
        (Some(cert), Some(key), _) => crate::replay::Identity::Files { cert, key },
        (_, _, Some(dir)) => crate::replay::Identity::StateDir(dir),
        _ => crate::replay::Identity::Generated,
    };
    let replay = crate::replay::ReplayOptions {
        read_timeout: Duration::from_secs(args.timeout.max(1)),
        delay: Duration::from_millis(args.delay),
        certificate: args.certificate.unwrap_or_default(),
        accept_timeout,
        strict: args.strict,
        fail_on_findings: args.fail_on_findings,
        cert_names: args.cert_name,
        identity,
    };
    crate::replay::serve_main(crate::replay::ServeOptions {
        path: args.path,
        listen: args.listen,
        ca_out: args.ca_out,
        connections: if args.once {
            Some(1)
        } else {
            args.connections.map(|n| n as usize)
        },
        json: args.json,
        scenario: args.scenario,
        replay,
    })
    .await
}

/// Runs `smtprobe batch` (it starts its own multi-threaded runtime) and returns the
/// exit code.
pub fn run_batch(args: crate::batch::BatchArgs) -> i32 {
    crate::batch::run(args)
}

/// Runs `smtprobe web` (it starts its own multi-threaded runtime).
pub fn run_web(args: crate::web::WebArgs) -> i32 {
    crate::web::run(args)
}

/// Writes `--html FILE`; the error names the file.
fn write_html(path: &std::path::Path, html: &str) -> i32 {
    match crate::report::html::write_file(path, html) {
        Ok(()) => {
            eprintln!("smtprobe: wrote the HTML report to {}", path.display());
            exit::OK
        }
        Err(e) => {
            eprintln!("smtprobe: --html: {e}");
            exit::INTERNAL
        }
    }
}

/// Runs `smtprobe explain`.
pub fn run_explain(query: &str) -> i32 {
    match crate::diagnosis::explain::explain(query) {
        Ok(page) => {
            let page = crate::diagnosis::settings::with_cli_flags(&page);
            print!("{page}");
            if !page.ends_with('\n') {
                println!();
            }
            exit::OK
        }
        Err(e) => {
            eprintln!("smtprobe: {e}");
            exit::USAGE
        }
    }
}

/// Runs `smtprobe providers`.
pub fn run_providers() -> i32 {
    print!("{}", crate::diagnosis::explain::providers_list());
    exit::OK
}

/// Runs `smtprobe demo [NAME]`.
pub async fn run_demo(
    name: Option<String>,
    annotate: bool,
    json: bool,
    html: Option<PathBuf>,
) -> i32 {
    use crate::report::html::{self as h, BatchRow, Meta};
    let scenarios = match crate::demo::scenarios() {
        Ok(s) => s,
        Err(e) => {
            eprintln!("smtprobe: {e}");
            return exit::INTERNAL;
        }
    };
    if let Some(name) = name {
        let Some(s) = scenarios.iter().find(|s| s.name == name) else {
            eprintln!("smtprobe: no scenario named {name:?}; run `smtprobe demo` for the list");
            return exit::USAGE;
        };
        // With --json, stdout is one JSON document and nothing else (scripts pipe it
        // to jq); the scenario's story is a human preface only.
        if !json {
            println!("# {}: {}\n", s.name, s.story);
        }
        return match crate::demo::run(s).await {
            Ok(o) => {
                print_report(&o.report, json, annotate);
                if let Some(path) = &html {
                    let meta = Meta {
                        story: Some(format!("Demo {}: {}", s.name, s.story)),
                        generated: None,
                    };
                    let failed = write_html(path, &h::report(&o.report, &meta));
                    if failed != exit::OK {
                        return failed;
                    }
                }
                exit_code(&o.report)
            }
            Err(e) => {
                eprintln!("smtprobe: {e}");
                exit::INTERNAL
            }
        };
    }
    let color = use_color();
    let width = scenarios.iter().map(|s| s.name.len()).max().unwrap_or(10);
    let mut unexpected = 0;
    let mut rows = Vec::new();
    println!("smtprobe demo: {} scenarios against the built-in replay server on 127.0.0.1 (no network, no account)\n", scenarios.len());
    for s in &scenarios {
        match crate::demo::run(s).await {
            Ok(o) => {
                // The check's own time: the end of its last stage.
                let ms = o
                    .report
                    .stages
                    .iter()
                    .map(|st| st.start_ms + st.ms)
                    .fold(0.0, f64::max);
                rows.push(BatchRow::checked(
                    &s.name,
                    rows.len() as u64 + 1,
                    &o.report,
                    ms,
                ));
                let ok = o.as_expected(s);
                if !ok {
                    unexpected += 1;
                }
                let code = o.report.diagnosis.code;
                let code_shown = if color {
                    let c = if code == "ok" { "32" } else { "33" };
                    format!("\x1b[{c}m{code:<32}\x1b[0m")
                } else {
                    format!("{code:<32}")
                };
                let mark = if ok { "" } else { "  (UNEXPECTED: wanted " };
                let want = if ok {
                    String::new()
                } else {
                    format!("{}{})", mark, s.expect.1)
                };
                println!(
                    "{:<width$}  {code_shown} {}{want}",
                    s.name, o.report.diagnosis.summary
                );
            }
            Err(e) => {
                unexpected += 1;
                println!("{:<width$}  error: {e}", s.name);
            }
        }
    }
    println!("\nSee one in full: smtprobe demo NAME [--annotate]; a code explained: smtprobe explain CODE");
    if let Some(path) = &html {
        let meta = Meta {
            story: Some("Every bundled scenario, played by the built-in replay server on 127.0.0.1 (no network, no account).".into()),
            generated: None,
        };
        let failed = write_html(path, &h::batch("smtprobe demo", &rows, 0, &meta));
        if failed != exit::OK {
            return failed;
        }
    }
    if unexpected == 0 {
        exit::OK
    } else {
        exit::INTERNAL
    }
}

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

impl std::fmt::Debug for Cli {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Cli")
            .field("verbose", &self.verbose)
            .field("command", &self.command)
            .finish()
    }
}

impl std::fmt::Debug for Command {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Command::Check(a) => f.debug_tuple("Check").field(a).finish(),
            Command::Explain { query } => f.debug_struct("Explain").field("query", query).finish(),
            Command::Providers => f.write_str("Providers"),
            // `..`: a flag added later is left out rather than breaking the build.
            Command::Demo {
                name,
                annotate,
                json,
                html,
                ..
            } => f
                .debug_struct("Demo")
                .field("name", name)
                .field("annotate", annotate)
                .field("json", json)
                .field("html", html)
                .finish_non_exhaustive(),
            Command::Serve(a) => f.debug_tuple("Serve").field(a).finish(),
            Command::Batch(a) => f.debug_tuple("Batch").field(a).finish(),
            Command::Web(a) => f.debug_tuple("Web").field(a).finish(),
            Command::Discover(a) => f.debug_tuple("Discover").field(a).finish(),
            Command::Completions { shell } => {
                f.debug_struct("Completions").field("shell", shell).finish()
            }
        }
    }
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

/// True when colour should be used on stdout (a terminal, and NO_COLOR unset or empty).
pub fn use_color() -> bool {
    std::io::stdout().is_terminal() && std::env::var_os("NO_COLOR").is_none_or(|v| v.is_empty())
}

/// Sets up tracing on stderr from `-v` and RUST_LOG.
pub fn init_tracing(verbose: u8) {
    let default = match verbose {
        0 => "warn",
        1 => "info,smtprobe=debug",
        2 => "debug,smtprobe=trace",
        _ => "trace",
    };
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(default));
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(std::io::stderr().is_terminal())
        .try_init();
}

/// Runs `smtprobe check` and returns the exit code.
pub async fn run_check(args: CheckArgs) -> i32 {
    if args.proxy.as_deref().is_some_and(|p| p.contains('@')) {
        eprintln!(
            "smtprobe: warning: the --proxy password is visible to other local users in the process list; prefer ALL_PROXY"
        );
    }
    // An argument with `@` is an address: discover, then check the best candidate.
    if args.host.as_deref().is_some_and(|h| h.contains('@')) {
        return match crate::discover::run::check_address(args).await {
            Ok(code) => code,
            Err(e) => {
                eprintln!("smtprobe: {e}");
                exit::USAGE
            }
        };
    }
    let config = match config_from_args(&args) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("smtprobe: {e}");
            return exit::USAGE;
        }
    };
    let report = match crate::probe::check(config).await {
        Ok(r) => r,
        Err(e) => {
            eprintln!("smtprobe: {e}");
            return exit::USAGE;
        }
    };
    print_report(&report, args.json, args.annotate);
    if let Some(path) = &args.html {
        let html = crate::report::html::report(&report, &Default::default());
        let failed = write_html(path, &html);
        if failed != exit::OK {
            return failed;
        }
    }
    if let Some(path) = &args.record {
        if let Err(e) = record(&report, path) {
            eprintln!("smtprobe: --record: {e}");
            return exit::INTERNAL;
        }
        eprintln!("smtprobe: recorded the session as {}", path.display());
    }
    exit_code(&report)
}

/// Prints a report as JSON or for people. A closed pipe (`| head`) is not an error.
pub fn print_report(report: &Report, json: bool, annotate: bool) {
    use std::io::Write as _;
    let text = if json {
        let mut t = serde_json::to_string_pretty(&report.to_json()).unwrap_or_else(|_| "{}".into());
        t.push('\n');
        t
    } else {
        let mut style = Style::plain();
        style.color = use_color();
        style.annotate = annotate;
        // The library names settings; on the command line they are flags.
        let mut shown = report.clone();
        let d = &mut shown.diagnosis;
        d.fix = crate::diagnosis::settings::with_cli_flags(&d.fix);
        for h in &mut d.hints {
            *h = crate::diagnosis::settings::with_cli_flags(h);
        }
        shown.render(style)
    };
    let mut out = std::io::stdout().lock();
    let _ = out.write_all(text.as_bytes()).and_then(|_| out.flush());
}

/// Writes the report's transcript as a fixture, with the observed outcome as its
/// expectation. The file is created with mode 0600 and never replaces an existing one.
pub fn record(report: &Report, path: &std::path::Path) -> Result<(), String> {
    use crate::fixture::{Expect, Fixture, Header};
    use std::io::Write as _;
    let expect = match report.failed_stage {
        None => Expect::Ok,
        Some(stage) => Expect::Failure {
            stage,
            code: report.diagnosis.code.to_owned(),
        },
    };
    let name: String = path
        .file_stem()
        .map(|s| s.to_string_lossy().into_owned())
        .unwrap_or_else(|| "recorded".into())
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || "._-".contains(c) {
                c.to_ascii_lowercase()
            } else {
                '-'
            }
        })
        .collect();
    let header = Header {
        name,
        story: format!(
            "Recorded by smtprobe: {}",
            report.diagnosis.summary.replace(['\r', '\n'], " ")
        ),
        host: report.host.clone(),
        port: report.port,
        mode: report.mode,
        user: report
            .settings
            .as_ref()
            .and_then(|s| s.username.clone())
            .or_else(|| {
                report.transcript.entries().iter().find_map(|e| {
                    e.text
                        .strip_prefix("AUTH PLAIN <redacted: user ")
                        .and_then(|r| r.strip_suffix('>'))
                        .map(str::to_owned)
                })
            }),
        expect,
    };
    let text = Fixture::from_transcript(header, report.transcript.entries()).to_text();
    let mut opts = std::fs::OpenOptions::new();
    opts.write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt as _;
        opts.mode(0o600);
    }
    let mut f = opts.open(path).map_err(|e| {
        format!(
            "cannot create {}: {e} (an existing file is never overwritten)",
            path.display()
        )
    })?;
    f.write_all(text.as_bytes())
        .map_err(|e| format!("cannot write {}: {e}", path.display()))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn check_args(argv: &[&str]) -> CheckArgs {
        let mut full = vec!["smtprobe", "check"];
        full.extend_from_slice(argv);
        match Cli::try_parse_from(full).unwrap().command {
            Command::Check(a) => a,
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn provider_fills_host_port_and_mode() {
        let c = config_from_args(&check_args(&["--provider", "gmail"])).unwrap();
        assert_eq!(
            (c.host.as_str(), c.effective_port(), c.tls),
            ("smtp.gmail.com", 587, TlsChoice::Starttls)
        );
        let c = config_from_args(&check_args(&["--provider", "gmail", "--port", "465"])).unwrap();
        assert_eq!((c.effective_port(), c.tls), (465, TlsChoice::Implicit));
        let c = config_from_args(&check_args(&["--provider", "office365"])).unwrap();
        assert_eq!(c.host, "smtp.office365.com");
        // An explicit HOST and --tls win over the provider's defaults.
        let c = config_from_args(&check_args(&[
            "lab.example",
            "--provider",
            "gmail",
            "--tls",
            "implicit",
        ]))
        .unwrap();
        assert_eq!(
            (c.host.as_str(), c.tls),
            ("lab.example", TlsChoice::Implicit)
        );
    }

    #[test]
    fn unknown_provider_lists_the_known_ones() {
        let e = config_from_args(&check_args(&["--provider", "gmial"])).unwrap_err();
        assert!(e.0.contains("gmail") && e.0.contains("office365"), "{e}");
    }

    #[test]
    fn host_or_provider_is_required() {
        assert!(Cli::try_parse_from(["smtprobe", "check"]).is_err());
    }
}
