//! A check request for an email address: `host` holding an `@` (the same rule as
//! `smtprobe check ADDRESS` and a batch row's `host`, so one vocabulary serves all three).
//! Discovery runs first ([`crate::discover::discover`]: credential-free candidate
//! probes), then ONE check with the request's credentials on the best candidate, with
//! `user` defaulting to the address, exactly as `check ADDRESS` does.
//!
//! Every candidate connection is vetted like a `host` request (the web module's `vet`): resolved,
//! refused when internal unless `--allow-private`, and pinned to the vetted address. The
//! autoconfig HTTPS fetch resolves and connects on its own, so it cannot be pinned the
//! same way: without `--allow-private` that source is skipped and its row says so.

use super::request::{self, ApiError};
use super::WebOptions;
use crate::discover::{self, Discovery};
use crate::tls_mode::TlsMode;
use crate::transport::Observer;
use serde_json::{Map, Value};
use std::sync::Arc;
use std::time::Duration;

/// Why web mode skips the autoconfig source (see the module docs).
pub const AUTOCONFIG_SKIPPED: &str = "smtprobe web cannot pin the autoconfig HTTPS fetch to a vetted address, so it does not ask this source (start it with --allow-private for a lab)";

/// The address of a request whose `host` holds an `@`.
pub fn address_of(map: &Map<String, Value>) -> Option<String> {
    map.get("host")
        .and_then(Value::as_str)
        .filter(|h| h.contains('@'))
        .map(str::to_owned)
}

/// What an address request found: the discovery, and the check on its best candidate
/// (`None`: no candidate worked, nothing was checked).
pub struct Found {
    /// Sources and probes.
    pub discovery: Discovery,
    /// The one check with credentials.
    pub report: Option<crate::Report>,
}

/// Discovery for the address in `map`'s `host`, then one check on the best candidate.
/// The request's other fields are validated before any network work.
pub async fn check(
    opts: &WebOptions,
    mut map: Map<String, Value>,
    observer: Option<Observer>,
) -> Result<Found, ApiError> {
    let text = address_of(&map).unwrap_or_default();
    for field in ["port", "provider"] {
        if map.contains_key(field) {
            return Err(ApiError::field(
                field,
                format!("with an email address in \"host\" the server, port and mode are discovered: leave out \"{field}\", or give a server name in \"host\""),
            ));
        }
    }
    let addr =
        discover::address::parse(&text).map_err(|e| ApiError::field("host", e.to_string()))?;
    let has_secret = map.contains_key("password") || map.contains_key("oauth2_token");
    // Validate every other field now, against a stand-in host (the domain).
    let mut probe = map.clone();
    probe.insert("host".into(), Value::String(addr.domain.clone()));
    if has_secret && !probe.contains_key("user") {
        probe.insert("user".into(), Value::String(addr.ascii()));
    }
    let timeout = request::config_from_request(&probe, opts.max_timeout)?.timeout;

    let mut d_opts = discover::Options::new();
    d_opts.dns_server = opts.dns_server;
    d_opts.extra_roots = opts.extra_roots.clone();
    // Discovery probes are credential-free and in parallel; they need no long waits.
    d_opts.timeout = timeout.min(Duration::from_secs(5));
    d_opts.port_map = opts.port_map.clone();
    if !opts.allow_private {
        d_opts.skip_autoconfig = Some(AUTOCONFIG_SKIPPED.into());
    }
    let vet_opts = opts.clone();
    d_opts.vet = Some(Arc::new(move |config| {
        let o = vet_opts.clone();
        Box::pin(async move {
            super::vet(&o, config)
                .await
                .map_err(|e| -> discover::VetError { format!("not probed: {}", e.message).into() })
        })
    }));
    let discovery = discover::discover(addr, &d_opts)
        .await
        .map_err(|e| ApiError::new(500, "discovery-failed", e.to_string()))?;
    let Some(best) = discovery.best().cloned() else {
        return Ok(Found {
            discovery,
            report: None,
        });
    };
    map.insert("host".into(), Value::String(best.candidate.host.clone()));
    map.insert(
        "port".into(),
        Value::from(d_opts.mapped(best.candidate.port)),
    );
    map.insert(
        "tls".into(),
        Value::String(TlsMode::as_str(best.candidate.mode).into()),
    );
    if has_secret && !map.contains_key("user") {
        let user = discovery
            .username
            .clone()
            .unwrap_or_else(|| discovery.address.ascii());
        map.insert("user".into(), Value::String(user));
    }
    let mut config = request::config_from_request(&map, opts.max_timeout)?;
    config.dns_server = opts.dns_server;
    let mut config = super::vet(opts, config).await?;
    config.observer = observer;
    let deadline = super::overall_deadline(config.timeout);
    let report = match tokio::time::timeout(deadline, crate::probe::check(config)).await {
        Ok(Ok(r)) => r,
        Ok(Err(e)) => return Err(ApiError::field("host", e.to_string())),
        Err(_) => {
            return Err(ApiError::new(
                504,
                "check-timeout",
                format!("the check did not finish within {} s", deadline.as_secs()),
            ))
        }
    };
    Ok(Found {
        discovery,
        report: Some(report),
    })
}

/// The error when discovery found nothing to check.
pub fn nothing_found(d: &Discovery) -> ApiError {
    ApiError::new(
        422,
        "no-candidate",
        format!(
            "no working submission server found for {}: {}",
            crate::protocol::escape_str(&d.address.ascii()),
            crate::protocol::escape_str(&d.tried())
        ),
    )
}
