//! The command-line runs of discovery: `smtprobe discover ADDRESS` and
//! `smtprobe check ADDRESS` (the flags live in [`crate::app::args`] and [`crate::app::cli`]).

use crate::app::args::{self, CheckArgs, DiscoveryFlags, NetworkArgs, PasswordSource, UsageError};
use crate::app::cli::print;
use crate::app::exit::Finished;
use crate::discover::{address, discover, Discovery, Options};
use std::io::IsTerminal;

/// Discovery's options from the flags; `timeout` in seconds (checked by the one rule,
/// [`args::timeout_from_secs`]).
fn options(flags: &DiscoveryFlags, net: &NetworkArgs, timeout: f64) -> Result<Options, UsageError> {
    let timeout = args::timeout_from_secs(timeout)?;
    if flags.concurrency == 0 || flags.concurrency > 256 {
        return Err(UsageError("--concurrency must be between 1 and 256".into()));
    }
    let mut o = Options::new();
    o.dns_server = flags.dns_server;
    o.timeout = timeout;
    o.concurrency = flags.concurrency;
    o.port_map = flags.port_map.clone();
    o.https_port = flags.https_port;
    o.ip = net.ip();
    if let Some(path) = &net.ca_file {
        o.extra_roots = crate::transport::load_ca_file(path)
            .map_err(|e| UsageError(format!("--ca-file: {e}")))?;
    }
    Ok(o)
}

async fn run(address_text: &str, opts: &Options) -> Result<Discovery, UsageError> {
    let addr = address::parse(address_text).map_err(|e| UsageError(e.to_string()))?;
    discover(addr, opts)
        .await
        .map_err(|e| UsageError(e.to_string()))
}

/// `smtprobe discover`: prints the discovery; [`Finished::NothingFound`] when no
/// candidate answered.
pub async fn discover_cli(
    address_text: &str,
    flags: &DiscoveryFlags,
    net: &NetworkArgs,
    json: bool,
) -> Result<Finished, UsageError> {
    let timeout = net.timeout.unwrap_or(args::DISCOVER_TIMEOUT);
    let opts = options(flags, net, timeout)?;
    let d = run(address_text, &opts).await?;
    if json {
        let mut t = serde_json::to_string_pretty(&d).unwrap_or_else(|_| "{}".into());
        t.push('\n');
        print(&t);
    } else {
        print(&d.render());
    }
    Ok(if d.best.is_some() {
        Finished::Ok
    } else {
        Finished::NothingFound
    })
}

/// True when a password (or token) can be had without failing.
fn password_available(spec: &args::CheckSpec) -> bool {
    !matches!(spec.password, PasswordSource::Ask)
        || spec.oauth2_token_env.is_some()
        || std::env::var_os("SMTPROBE_PASSWORD").is_some()
        || (std::io::stdin().is_terminal() && std::io::stderr().is_terminal())
}

/// `smtprobe check ADDRESS`: discovery, then ONE check (one AUTH attempt: every failed
/// login spends the provider's budget) on the best candidate, with `--user` defaulting
/// to the address.
pub async fn check_address(args: &CheckArgs) -> Result<Finished, UsageError> {
    let address_text = args.host.clone().unwrap_or_default();
    if args.conn.port.is_some() || args.provider.is_some() || args.conn.connect_to.is_some() {
        return Err(UsageError(
            "with an email address the server, port and mode are discovered: give a HOST to use --port, --provider or --connect-to".into(),
        ));
    }
    let spec = args.spec();
    // Discovery probes are credential-free and in parallel; they need no long waits.
    let opts = options(
        &args.discovery,
        &args.conn.net,
        spec.timeout.min(args::DISCOVER_TIMEOUT),
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
        return Ok(Finished::NothingFound);
    };
    let mut check = spec.clone();
    check.host = Some(best.candidate.host.clone());
    check.port = Some(opts.mapped(best.candidate.port));
    check.tls = best.candidate.mode.into();
    let mut note = None;
    if check.user.is_none() {
        if password_available(&spec) {
            check.user = d.username.clone().or_else(|| Some(d.address.ascii()));
        } else {
            note = Some(
                "no password given (SMTPROBE_PASSWORD, --password-file or a terminal prompt): the login was not tested",
            );
        }
    }
    // The trust anchors `options` already read: the file is read once.
    check.ca_file = None;
    let mut config = args::config_from_spec(&check)?;
    config.extra_roots = opts.extra_roots.clone();
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
    let report = crate::probe::check(config).await?;
    if args.json {
        let doc = serde_json::json!({ "discovery": d, "check": report.to_json() });
        print(&format!(
            "{}\n",
            serde_json::to_string_pretty(&doc).unwrap_or_default()
        ));
    } else {
        crate::app::cli::print_report(&report, false, args.annotate);
    }
    Ok(Finished::Checked(report.failed_stage))
}
