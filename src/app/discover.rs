//! The command-line runs of discovery: `smtprobe discover ADDRESS` and
//! `smtprobe check ADDRESS` (the clap flags live in [`crate::app::args`] and [`crate::app::cli`]).

use crate::app::args::{self, CheckArgs, DiscoveryFlags, TlsArg, UsageError};
use crate::app::exit::{code as exit, exit_code};
use crate::discover::{address, discover, Discovery, Options};
use crate::failure::TlsMode;
use crate::transport::IpVersion;
use std::io::{IsTerminal, Write as _};
use std::path::Path;
use std::time::Duration;

fn options(
    flags: &DiscoveryFlags,
    ca_file: Option<&Path>,
    timeout: f64,
    ip: IpVersion,
) -> Result<Options, UsageError> {
    if !(timeout.is_finite() && timeout > 0.0 && timeout <= 3600.0) {
        return Err(UsageError(
            "--timeout must be a number of seconds above 0 and at most 3600".into(),
        ));
    }
    if flags.concurrency == 0 || flags.concurrency > 256 {
        return Err(UsageError("--concurrency must be between 1 and 256".into()));
    }
    let mut o = Options::new();
    o.dns_server = flags.dns_server;
    o.timeout = Duration::from_secs_f64(timeout);
    o.concurrency = flags.concurrency;
    o.port_map = flags.port_map.clone();
    o.https_port = flags.https_port;
    o.ip = ip;
    if let Some(path) = ca_file {
        o.extra_roots = crate::transport::load_ca_file(path)
            .map_err(|e| UsageError(format!("--ca-file: {e}")))?;
    }
    Ok(o)
}

fn print(text: &str) {
    let mut out = std::io::stdout().lock();
    let _ = out.write_all(text.as_bytes()).and_then(|_| out.flush());
}

async fn run(address_text: &str, opts: &Options) -> Result<Discovery, UsageError> {
    let addr = address::parse(address_text).map_err(|e| UsageError(e.0))?;
    discover(addr, opts).await.map_err(UsageError)
}

/// `smtprobe discover`: prints the discovery; `Ok(true)` when settings were found.
pub async fn discover_cli(
    address_text: &str,
    flags: &DiscoveryFlags,
    ca_file: Option<&Path>,
    timeout: f64,
    ip: IpVersion,
    json: bool,
) -> Result<bool, UsageError> {
    let opts = options(flags, ca_file, timeout, ip)?;
    let d = run(address_text, &opts).await?;
    if json {
        let mut t = serde_json::to_string_pretty(&d).unwrap_or_else(|_| "{}".into());
        t.push('\n');
        print(&t);
    } else {
        print(&d.render());
    }
    Ok(d.best.is_some())
}

/// True when a password (or token) can be had without failing.
fn password_available(args: &CheckArgs) -> bool {
    args.password_file.is_some()
        || args.password.is_some()
        || args.oauth2_token_env.is_some()
        || std::env::var_os("SMTPROBE_PASSWORD").is_some()
        || (std::io::stdin().is_terminal() && std::io::stderr().is_terminal())
}

/// `smtprobe check ADDRESS`: discovery, then ONE check (one AUTH attempt: every failed
/// login spends the provider's budget) on the best candidate, with `--user` defaulting
/// to the address. Returns the exit code.
pub async fn check_address(args: CheckArgs) -> Result<i32, UsageError> {
    let address_text = args.host.clone().unwrap_or_default();
    if args.port.is_some() || args.provider.is_some() || args.connect_to.is_some() {
        return Err(UsageError(
            "with an email address the server, port and mode are discovered: give a HOST to use --port, --provider or --connect-to".into(),
        ));
    }
    let ip = if args.ipv4 {
        IpVersion::V4
    } else if args.ipv6 {
        IpVersion::V6
    } else {
        IpVersion::Any
    };
    // Discovery probes are credential-free and in parallel; they need no long waits.
    let opts = options(
        &args.discovery,
        args.ca_file.as_deref(),
        args.timeout.min(5.0),
        ip,
    )?;
    let d = run(&address_text, &opts).await?;
    if !args.json {
        print(&d.render());
    }
    let Some(best) = d.best().cloned() else {
        if args.json {
            let doc = serde_json::json!({ "discovery": d, "check": null });
            print(&format!(
                "{}\n",
                serde_json::to_string_pretty(&doc).unwrap_or_default()
            ));
        }
        return Ok(exit::NETWORK);
    };
    let mut check = args.clone();
    check.host = Some(best.candidate.host.clone());
    check.port = Some(opts.mapped(best.candidate.port));
    check.tls = match best.candidate.mode {
        TlsMode::Implicit => TlsArg::Implicit,
        TlsMode::Starttls => TlsArg::Starttls,
        TlsMode::None => TlsArg::None,
    };
    let mut note = None;
    if check.user.is_none() {
        if password_available(&args) {
            check.user = d.username.clone().or_else(|| Some(d.address.ascii()));
        } else {
            note = Some(
                "no password given (SMTPROBE_PASSWORD, --password-file or a terminal prompt): the login was not tested",
            );
        }
    }
    let config = args::config_from_args(&check)?;
    if !args.json {
        print(&format!(
            "\nChecking {}:{} ({}){}\n\n",
            best.candidate.host,
            best.candidate.port,
            crate::diagnosis::providers::mode_label(best.candidate.mode),
            match &config.auth {
                Some(a) => format!(" with one login as {}", a.user),
                None => String::new(),
            }
        ));
        if let Some(n) = note {
            print(&format!("note: {n}\n\n"));
        }
    }
    let report = crate::probe::check(config)
        .await
        .map_err(|e| UsageError(e.to_string()))?;
    if args.json {
        let doc = serde_json::json!({ "discovery": d, "check": report.to_json() });
        print(&format!(
            "{}\n",
            serde_json::to_string_pretty(&doc).unwrap_or_default()
        ));
    } else {
        crate::app::cli::print_report(&report, false, args.annotate);
    }
    Ok(exit_code(&report))
}
