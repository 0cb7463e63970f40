//! The command line: clap definitions and the runners of each subcommand. The check
//! flags and their conversion into a [`crate::probe::Config`] live in
//! [`crate::app::args`]; each runner returns a [`Finished`], which only `main` turns into
//! an exit code ([`crate::app::exit::code`]).

use crate::app::args::{config_from_args, CheckArgs, DiscoveryFlags, NetworkArgs};
use crate::app::exit::{CommandError, Finished};
use crate::report::{Report, Style};
use clap::{Args, Parser, Subcommand};
use std::io::IsTerminal;
use std::path::PathBuf;
use std::time::Duration;

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
    Batch(crate::app::batch::BatchArgs),
    /// Find the SMTP settings for an email address (provider table, MX, SRV, autoconfig,
    /// guesses) and probe them without credentials.
    #[command(after_help = DISCOVER_EXAMPLES)]
    Discover(DiscoverArgs),
    /// A local web page and HTTP API for checks (127.0.0.1:8025 by default).
    Web(crate::app::web::WebArgs),
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

/// Flags of `smtprobe discover`.
#[derive(Debug, Args, Clone)]
// Discovery's probes are credential-free and parallel: a shorter default wait.
#[command(mut_arg("timeout", |a| a.help("Seconds to wait for each network step of each probe [default: 5]")))]
pub struct DiscoverArgs {
    /// The email address, e.g. you@acme.com.
    pub address: String,
    /// Discovery settings.
    #[command(flatten)]
    pub flags: DiscoveryFlags,
    /// Trust anchors (also for the autoconfig HTTPS fetch), timeout, address family.
    #[command(flatten)]
    pub net: NetworkArgs,
    /// Print one JSON document instead of the human report.
    #[arg(long)]
    pub json: bool,
}

/// Runs `smtprobe discover`.
pub async fn run_discover(args: DiscoverArgs) -> Finished {
    crate::app::discover::discover_cli(&args.address, &args.flags, &args.net, args.json)
        .await
        .unwrap_or_else(Finished::usage)
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

fn parse_cert_mode(s: &str) -> Result<crate::certs::ServerCert, crate::app::args::UsageError> {
    crate::fixture::cert_mode_parse(s).ok_or_else(|| {
        crate::app::args::UsageError(format!(
            "`{s}`: one of valid, wrong-name, untrusted, expired"
        ))
    })
}

/// Runs `smtprobe serve`.
pub async fn run_serve(args: ServeArgs) -> Finished {
    let usage = |m: &str| Finished::Usage(CommandError::new("smtprobe serve", m));
    let accept_timeout = match args.accept_timeout {
        None => None,
        Some(s) if s.is_finite() && s > 0.0 && s <= 86_400.0 => Some(Duration::from_secs_f64(s)),
        Some(_) => {
            return usage("--accept-timeout must be seconds above 0 and at most 86400");
        }
    };
    if args.ca_out.is_some() && args.cert.is_some() {
        return usage("--ca-out writes the generated CA; with --cert you already have yours");
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
    crate::app::serve::serve(crate::app::serve::ServeOptions {
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

/// Writes `--html FILE`; the error names the file.
fn write_html(path: &std::path::Path, html: &str) -> Result<(), Finished> {
    crate::report::html::write_file(path, html)
        .map_err(|e| Finished::internal(format_args!("--html: {e}")))?;
    eprintln!("smtprobe: wrote the HTML report to {}", path.display());
    Ok(())
}

/// Runs `smtprobe explain`.
pub fn run_explain(query: &str) -> Finished {
    match crate::diagnosis::explain::explain(query) {
        Ok(page) => {
            let page = crate::setting::with_cli_flags(&page);
            print!("{page}");
            if !page.ends_with('\n') {
                println!();
            }
            Finished::Ok
        }
        Err(e) => Finished::usage(e),
    }
}

/// Runs `smtprobe providers`.
pub fn run_providers() -> Finished {
    print!("{}", crate::diagnosis::explain::providers_list());
    Finished::Ok
}

/// Runs `smtprobe demo [NAME]`.
pub async fn run_demo(
    name: Option<String>,
    annotate: bool,
    json: bool,
    html: Option<PathBuf>,
) -> Finished {
    let scenarios = match crate::app::demo::scenarios() {
        Ok(s) => s,
        Err(e) => return Finished::internal(e),
    };
    let result = match name {
        Some(name) => demo_one(&scenarios, &name, annotate, json, html.as_deref()).await,
        None => demo_all(&scenarios, html.as_deref()).await,
    };
    result.unwrap_or_else(|finished| finished)
}

/// `smtprobe demo NAME`: one scenario in full.
async fn demo_one(
    scenarios: &[crate::app::demo::Scenario],
    name: &str,
    annotate: bool,
    json: bool,
    html: Option<&std::path::Path>,
) -> Result<Finished, Finished> {
    let Some(s) = scenarios.iter().find(|s| s.name == name) else {
        return Err(Finished::usage(format_args!(
            "no scenario named {name:?}; run `smtprobe demo` for the list"
        )));
    };
    // With --json, stdout is one JSON document and nothing else (scripts pipe it
    // to jq); the scenario's story is a human preface only.
    if !json {
        println!("# {}: {}\n", s.name, s.story);
    }
    let run = crate::app::demo::run(s).await.map_err(Finished::internal)?;
    print_report(&run.report, json, annotate);
    if let Some(path) = html {
        let meta = crate::report::html::Meta {
            story: Some(format!("Demo {}: {}", s.name, s.story)),
            generated: None,
        };
        write_html(path, &crate::report::html::report(&run.report, &meta))?;
    }
    Ok(Finished::Checked(run.report.failed_stage))
}

/// `smtprobe demo`: every scenario, one line each.
async fn demo_all(
    scenarios: &[crate::app::demo::Scenario],
    html: Option<&std::path::Path>,
) -> Result<Finished, Finished> {
    use crate::report::html::{self as h, BatchRow, Meta};
    let color = use_color();
    let width = scenarios.iter().map(|s| s.name.len()).max().unwrap_or(10);
    let mut unexpected = 0;
    let mut rows = Vec::new();
    println!("smtprobe demo: {} scenarios against the built-in replay server on 127.0.0.1 (no network, no account)\n", scenarios.len());
    for s in scenarios {
        match crate::app::demo::run(s).await {
            Ok(run) => {
                // The check's own time: the end of its last stage.
                let ms = run
                    .report
                    .stages
                    .iter()
                    .map(|st| st.start_ms + st.ms)
                    .fold(0.0, f64::max);
                rows.push(BatchRow::checked(
                    &s.name,
                    rows.len() as u64 + 1,
                    &run.report,
                    ms,
                ));
                let ok = run.as_expected(s);
                if !ok {
                    unexpected += 1;
                }
                println!(
                    "{:<width$}  {}",
                    s.name,
                    demo_line(&run.report, color, (!ok).then_some(&s.expect.1))
                );
            }
            Err(e) => {
                unexpected += 1;
                println!("{:<width$}  error: {e}", s.name);
            }
        }
    }
    println!("\nSee one in full: smtprobe demo NAME [--annotate]; a code explained: smtprobe explain CODE");
    if let Some(path) = html {
        let meta = Meta {
            story: Some("Every bundled scenario, played by the built-in replay server on 127.0.0.1 (no network, no account).".into()),
            generated: None,
        };
        write_html(path, &h::batch("smtprobe demo", &rows, 0, &meta))?;
    }
    Ok(if unexpected == 0 {
        Finished::Ok
    } else {
        Finished::DemoUnexpected
    })
}

/// One scenario's line in the demo list: the code (coloured on a terminal), the summary,
/// and what was wanted when it differs.
fn demo_line(report: &Report, color: bool, wanted: Option<&String>) -> String {
    let code = report.diagnosis.code;
    let code_shown = if color {
        let c = if code == "ok" { "32" } else { "33" };
        format!("\x1b[{c}m{code:<32}\x1b[0m")
    } else {
        format!("{code:<32}")
    };
    let want = wanted.map_or(String::new(), |w| format!("  (UNEXPECTED: wanted {w})"));
    format!("{code_shown} {}{want}", report.diagnosis.summary)
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

/// Runs `smtprobe check`.
pub async fn run_check(args: CheckArgs) -> Finished {
    if args.proxy.as_deref().is_some_and(|p| p.contains('@')) {
        eprintln!(
            "smtprobe: warning: the --proxy password is visible to other local users in the process list; prefer ALL_PROXY"
        );
    }
    // An argument with `@` is an address: discover, then check the best candidate.
    if args.host.as_deref().is_some_and(|h| h.contains('@')) {
        return crate::app::discover::check_address(&args)
            .await
            .unwrap_or_else(Finished::usage);
    }
    check_host(&args).await.unwrap_or_else(|finished| finished)
}

async fn check_host(args: &CheckArgs) -> Result<Finished, Finished> {
    let config = config_from_args(args).map_err(Finished::usage)?;
    let report = crate::probe::check(config)
        .await
        .map_err(|e| Finished::usage(crate::app::args::UsageError::from(e)))?;
    print_report(&report, args.json, args.annotate);
    if let Some(path) = &args.html {
        let html = crate::report::html::report(&report, &Default::default());
        write_html(path, &html)?;
    }
    if let Some(path) = &args.record {
        record(&report, path).map_err(|e| Finished::internal(format_args!("--record: {e}")))?;
        eprintln!("smtprobe: recorded the session as {}", path.display());
    }
    Ok(Finished::Checked(report.failed_stage))
}

/// Prints a report as JSON or for people. A closed pipe (`| head`) is not an error.
pub fn print_report(report: &Report, json: bool, annotate: bool) {
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
        d.fix = crate::setting::with_cli_flags(&d.fix);
        for h in &mut d.hints {
            *h = crate::setting::with_cli_flags(h);
        }
        shown.render(style)
    };
    print(&text);
}

/// Writes `text` to stdout and flushes it. A closed pipe (`| head`) is not an error.
pub(crate) fn print(text: &str) {
    use std::io::Write as _;
    let mut out = std::io::stdout().lock();
    let _ = out.write_all(text.as_bytes()).and_then(|_| out.flush());
}

/// Writes the report's transcript as a fixture, with the observed outcome as its
/// expectation. The file is created with mode 0600 and never replaces an existing one.
pub fn record(report: &Report, path: &std::path::Path) -> Result<(), RecordError> {
    use crate::fixture::{Expect, Fixture, Header};
    use std::io::Write as _;
    let expect = match report.failed_stage {
        None => Expect::Ok,
        Some(stage) => Expect::Failure {
            stage,
            code: report.diagnosis.code.to_string(),
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
    let mut f = opts
        .open(path)
        .map_err(|e| RecordError::Create(path.to_owned(), e))?;
    f.write_all(text.as_bytes())
        .map_err(|e| RecordError::Write(path.to_owned(), e))
}

/// Why `--record FILE` failed.
#[derive(Debug)]
pub enum RecordError {
    /// The file could not be created (an existing one is never overwritten).
    Create(PathBuf, std::io::Error),
    /// The file could not be written.
    Write(PathBuf, std::io::Error),
}

impl std::fmt::Display for RecordError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            RecordError::Create(path, e) => write!(
                f,
                "cannot create {}: {e} (an existing file is never overwritten)",
                path.display()
            ),
            RecordError::Write(path, e) => write!(f, "cannot write {}: {e}", path.display()),
        }
    }
}

impl std::error::Error for RecordError {}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::probe::TlsChoice;
    use crate::tls_mode::TlsMode;

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

    /// `--tls`'s values are the library's `TlsChoice` names, which batch rows and web
    /// requests parse too: one type from flag to report.
    #[test]
    fn tls_flag_values_are_the_choice_names() {
        use clap::ValueEnum as _;
        for choice in TlsChoice::value_variants() {
            let flag = choice.to_possible_value().unwrap();
            assert_eq!(flag.get_name(), choice.as_str());
            assert_eq!(TlsChoice::parse(choice.as_str()), Some(*choice));
            let c = config_from_args(&check_args(&["h.test", "--tls", choice.as_str()])).unwrap();
            assert_eq!(c.tls, *choice);
        }
        for mode in [TlsMode::Starttls, TlsMode::Implicit, TlsMode::None] {
            assert_eq!(TlsChoice::from(mode).fixed(), Some(mode));
        }
        assert_eq!(TlsChoice::Auto.fixed(), None);
    }

    /// A batch row and the same flags make the same check: one conversion.
    #[test]
    fn flags_and_a_batch_row_become_the_same_config() {
        let flags = config_from_args(&check_args(&[
            "h.test",
            "--port",
            "2465",
            "--tls",
            "implicit",
            "--timeout",
            "7",
            "--helo",
            "client.test",
            "--no-pipelining",
            "--quit-after",
            "auth",
        ]))
        .unwrap();
        let row = crate::app::batch::row_config(
            r#"{"id":"x","host":"h.test","port":2465,"tls":"implicit","timeout":7,"helo":"client.test","pipelining":false,"quit_after":"auth"}"#,
        )
        .unwrap_or_else(|e| panic!("{}", e.message));
        for c in [&flags, &row] {
            assert_eq!(
                (
                    c.host.as_str(),
                    c.effective_port(),
                    c.tls,
                    c.timeout.as_secs()
                ),
                ("h.test", 2465, TlsChoice::Implicit, 7)
            );
            assert_eq!(
                (c.helo.as_deref(), c.pipelining, c.quit_after),
                (Some("client.test"), false, Some(crate::stage::Stage::Auth))
            );
        }
    }

    #[test]
    fn host_or_provider_is_required() {
        assert!(Cli::try_parse_from(["smtprobe", "check"]).is_err());
    }
}
