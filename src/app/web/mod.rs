//! `smtprobe web`: a local web page and an HTTP API for checks, on 127.0.0.1:8025 by
//! default.
//!
//! - `GET /` the page: a form (inputs named like the API fields), stages arriving live,
//!   the HTML report with a download button, and the bundled demo scenarios.
//! - `POST /api/v1/check` JSON in (a batch profile row's fields plus `password` or
//!   `oauth2_token`, see [`request`]), the `check --json` document out; with
//!   `Accept: text/event-stream` (or `?stream=1`) a stream of `line`, `stage` and
//!   finally `report` (or `error`) events.
//! - `GET /api/v1/explain/CODE`, `GET /api/v1/demos`, `POST /api/v1/demo/NAME`,
//!   `GET /healthz`; `POST /check` is the form without script (answers the report).
//!
//! Safe to expose (see [`safety`]): the password lives in the request only for its one
//! check and is never logged, stored or sent back; POSTs from a browser must come from
//! this page (Origin / Sec-Fetch-Site, a JSON content type that forces a CORS preflight
//! we never grant, and a double-submit CSRF token); bodies are capped (16 KiB) and must
//! arrive within 10 s, headers within 10 s; each client gets a token bucket of checks a
//! minute; checks running at once are bounded (503 beyond); every check keeps its
//! per-wait timeouts and an overall deadline; targets are vetted after resolving and the
//! probe connects to the vetted address; on loopback the Host header must name this
//! server (a rebinding page cannot read answers); listening beyond loopback needs
//! `--public`.
//!
//! axum (on hyper) because it is the well-kept tokio HTTP stack: routing, extractors and
//! server-sent events without hand-written HTTP parsing; the accept loop is ours so the
//! connection count and the header timeout are bounded.

pub mod address;
pub mod request;
pub mod safety;

use crate::app::exit::{CommandError, Finished};
use crate::report::html;
use crate::transport::{Observer, Progress};
use axum::body::Body;
use axum::extract::{Path, State};
use axum::http::{header, HeaderMap, HeaderValue, Method, Request, StatusCode, Uri};
use axum::response::sse::{Event, KeepAlive, Sse};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::Router;
use clap::Args;
use request::ApiError;
use rustls::pki_types::CertificateDer;
use serde_json::Value;
use std::convert::Infallible;
use std::net::{IpAddr, SocketAddr};
use std::path::PathBuf;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::{Duration, Instant};
use tokio::net::TcpListener;
use tokio::sync::{mpsc, Semaphore};

/// Flags of `smtprobe web`.
#[derive(Debug, Args, Clone)]
pub struct WebArgs {
    /// Address to listen on. Beyond loopback needs --public.
    #[arg(long, default_value = "127.0.0.1:8025")]
    pub listen: SocketAddr,
    /// Allow listening on a non-loopback address (anyone who can reach it can make this
    /// machine connect to mail servers; put it behind authentication).
    #[arg(long)]
    pub public: bool,
    /// Allow checks of loopback, private and link-local addresses (a lab; never on a
    /// shared server: it opens the local network to whoever can reach the page).
    #[arg(long)]
    pub allow_private: bool,
    /// Extra trust anchors (PEM) for every check, besides the bundled web PKI roots.
    #[arg(long, value_name = "PEM")]
    pub ca_file: Option<PathBuf>,
    /// Checks running at once; more are answered 503.
    #[arg(long, value_name = "N", default_value = "8", value_parser = clap::value_parser!(u32).range(1..=1024))]
    pub max_checks: u32,
    /// Checks a minute per client address (a token bucket); 0 turns the limit off.
    #[arg(long, value_name = "N", default_value = "20")]
    pub rate_limit: u32,
    /// The longest per-wait `timeout` a request may ask for, in seconds.
    #[arg(long, value_name = "SECS", default_value = "30")]
    pub max_timeout: f64,
    /// Testing aid: resolve through this DNS server (IP:PORT), for every check and for
    /// the discovery of an email address.
    #[arg(long, value_name = "IP:PORT", hide = true)]
    pub dns_server: Option<SocketAddr>,
    /// Testing aid: in discovery, connect to port TO whenever a candidate says FROM.
    #[arg(long, value_name = "FROM=TO", hide = true, value_parser = crate::app::args::parse_port_map)]
    pub port_map: Vec<(u16, u16)>,
}

/// How the server behaves (the library face of [`WebArgs`]).
#[derive(Clone)]
pub struct WebOptions {
    /// Permit private, loopback and link-local targets.
    pub allow_private: bool,
    /// Accept any Host header (set when listening beyond loopback).
    pub public: bool,
    /// Trust anchors added to every check.
    pub extra_roots: Vec<CertificateDer<'static>>,
    /// Checks running at once.
    pub max_checks: usize,
    /// Checks a minute per client; 0 is unlimited.
    pub rate_per_minute: u32,
    /// Cap on a request's `timeout` (seconds).
    pub max_timeout: f64,
    /// Testing aid (`--dns-server`): resolve through this DNS server.
    pub dns_server: Option<SocketAddr>,
    /// Testing aid (`--port-map`): discovery's candidate port mapping.
    pub port_map: Vec<(u16, u16)>,
}

impl Default for WebOptions {
    fn default() -> Self {
        WebOptions {
            allow_private: false,
            public: false,
            extra_roots: Vec::new(),
            max_checks: 8,
            rate_per_minute: 20,
            max_timeout: 30.0,
            dns_server: None,
            port_map: Vec::new(),
        }
    }
}

/// The largest request body accepted (a check request is a few hundred bytes).
pub const MAX_BODY: usize = 16 * 1024;
/// Connections served at once; more wait in the kernel's backlog.
const MAX_CONNECTIONS: usize = 512;
const HEADER_TIMEOUT: Duration = Duration::from_secs(10);
const BODY_TIMEOUT: Duration = Duration::from_secs(10);
/// A connection's whole life (an event stream lasts as long as its check).
const CONNECTION_LIFETIME: Duration = Duration::from_secs(15 * 60);
const CSRF_COOKIE: &str = "smtprobe_csrf";
const CSRF_HEADER: &str = "x-smtprobe-csrf";

struct AppState {
    opts: WebOptions,
    limiter: safety::RateLimiter,
    checks: Arc<Semaphore>,
    /// `host:port` values the Host header may carry on loopback.
    hosts: Vec<String>,
    demos: Vec<crate::app::demo::Scenario>,
}

type St = Arc<AppState>;

/// A bound `smtprobe web` server.
pub struct WebServer {
    listener: TcpListener,
    state: St,
}

/// The client's address, put on each request by the accept loop.
#[derive(Clone, Copy)]
struct Peer(SocketAddr);

impl WebServer {
    /// Binds `addr` (port 0 picks a free port).
    pub async fn bind(addr: SocketAddr, opts: WebOptions) -> std::io::Result<WebServer> {
        let listener = TcpListener::bind(addr).await?;
        let port = listener.local_addr()?.port();
        let hosts = ["127.0.0.1", "localhost", "[::1]"]
            .iter()
            .map(|h| format!("{h}:{port}"))
            .collect();
        let demos = crate::app::demo::scenarios().map_err(std::io::Error::other)?;
        Ok(WebServer {
            listener,
            state: Arc::new(AppState {
                limiter: safety::RateLimiter::new(opts.rate_per_minute),
                checks: Arc::new(Semaphore::new(opts.max_checks.max(1))),
                opts,
                hosts,
                demos,
            }),
        })
    }

    /// The address it listens on.
    pub fn local_addr(&self) -> std::io::Result<SocketAddr> {
        self.listener.local_addr()
    }

    /// Serves until the task is dropped.
    pub async fn serve(self) {
        use hyper_util::rt::{TokioIo, TokioTimer};
        let router = router(self.state.clone());
        let conns = Arc::new(Semaphore::new(MAX_CONNECTIONS));
        loop {
            let Ok(permit) = conns.clone().acquire_owned().await else {
                return;
            };
            let (tcp, peer) = match self.listener.accept().await {
                Ok(a) => a,
                Err(e) => {
                    // Out of file descriptors and the like: wait, do not spin.
                    tracing::warn!("smtprobe web: accept failed: {e}");
                    tokio::time::sleep(Duration::from_millis(100)).await;
                    continue;
                }
            };
            let _ = tcp.set_nodelay(true);
            let router = router.clone();
            let svc = hyper::service::service_fn(move |mut req: Request<hyper::body::Incoming>| {
                req.extensions_mut().insert(Peer(peer));
                let mut router = router.clone();
                async move { tower_service::Service::call(&mut router, req.map(Body::new)).await }
            });
            tokio::spawn(async move {
                let conn = hyper::server::conn::http1::Builder::new()
                    .timer(TokioTimer::new())
                    .header_read_timeout(HEADER_TIMEOUT)
                    .max_buf_size(64 * 1024)
                    .serve_connection(TokioIo::new(tcp), svc);
                let _ = tokio::time::timeout(CONNECTION_LIFETIME, conn).await;
                drop(permit);
            });
        }
    }
}

/// Runs `smtprobe web` on its own multi-threaded runtime, until Ctrl-C.
pub fn run(args: WebArgs) -> Finished {
    let usage = |m: std::fmt::Arguments| Finished::Usage(CommandError::new("smtprobe web", m));
    if !args.listen.ip().is_loopback() && !args.public {
        return usage(format_args!(
            "{} is not a loopback address; listening beyond this machine needs --public",
            args.listen
        ));
    }
    if !(args.max_timeout.is_finite() && args.max_timeout > 0.0 && args.max_timeout <= 300.0) {
        return usage(format_args!(
            "--max-timeout must be above 0 and at most 300 seconds"
        ));
    }
    let extra_roots = match &args.ca_file {
        Some(p) => match crate::transport::load_ca_file(p) {
            Ok(r) => r,
            Err(e) => return usage(format_args!("--ca-file: {e}")),
        },
        None => Vec::new(),
    };
    let opts = WebOptions {
        allow_private: args.allow_private,
        public: args.public && !args.listen.ip().is_loopback(),
        extra_roots,
        max_checks: args.max_checks as usize,
        rate_per_minute: args.rate_limit,
        max_timeout: args.max_timeout,
        dns_server: args.dns_server,
        port_map: args.port_map.clone(),
    };
    crate::app::exit::block_on(&mut tokio::runtime::Builder::new_multi_thread(), async {
        let server = match WebServer::bind(args.listen, opts.clone()).await {
            Ok(s) => s,
            Err(e) => {
                return Finished::Internal(CommandError::new(
                    "smtprobe web",
                    format_args!("cannot listen on {}: {e}", args.listen),
                ))
            }
        };
        let addr = server.local_addr().unwrap_or(args.listen);
        if opts.public {
            eprintln!("smtprobe web: WARNING: listening on {addr}, beyond this machine: anyone who can reach it can make this host connect to mail servers and try passwords. Put it behind authentication and TLS.");
        }
        if opts.allow_private {
            eprintln!("smtprobe web: WARNING: --allow-private: checks may reach loopback, private and link-local addresses (lab use only)");
        }
        eprintln!("smtprobe web: open http://{addr}/ (Ctrl-C stops)");
        tokio::select! {
            () = server.serve() => Finished::Internal(CommandError::new("smtprobe web", "the server stopped")),
            _ = tokio::signal::ctrl_c() => Finished::Ok,
        }
    })
}

fn router(state: St) -> Router {
    Router::new()
        .route("/", get(page))
        .route(
            "/assets/app.js",
            get(|| async { asset("text/javascript", APP_JS) }),
        )
        .route(
            "/assets/app.css",
            get(|| async { asset("text/css", APP_CSS) }),
        )
        .route("/healthz", get(healthz))
        .route("/api/v1/explain/{code}", get(explain))
        .route("/api/v1/demos", get(demos))
        .route("/api/v1/demo/{name}", post(demo))
        .route("/api/v1/check", post(api_check))
        .route("/check", post(form_check))
        .method_not_allowed_fallback(|| async {
            error(&ApiError::new(
                405,
                "method-not-allowed",
                "this endpoint does not take that method",
            ))
        })
        .fallback(|| async {
            error(&ApiError::new(
                404,
                "not-found",
                "no such page or API endpoint",
            ))
        })
        .layer(axum::middleware::from_fn_with_state(state.clone(), guard))
        .with_state(state)
}

const APP_JS: &str = include_str!("app.js");
const APP_CSS: &str = include_str!("app.css");
const PAGE: &str = include_str!("page.html");

fn asset(kind: &'static str, body: &'static str) -> Response {
    (
        [
            (header::CONTENT_TYPE, kind),
            (header::CACHE_CONTROL, "no-cache"),
        ],
        body,
    )
        .into_response()
}

/// A refusal as `{"error": {...}}` with its status (and `Retry-After` for 429/503).
fn error(e: &ApiError) -> Response {
    let status = StatusCode::from_u16(e.status).unwrap_or(StatusCode::BAD_REQUEST);
    (
        status,
        [(header::CONTENT_TYPE, "application/json")],
        e.to_json().to_string(),
    )
        .into_response()
}

fn json(v: &Value) -> Response {
    ([(header::CONTENT_TYPE, "application/json")], v.to_string()).into_response()
}

fn retry_after(mut r: Response, secs: u64) -> Response {
    if let Ok(v) = HeaderValue::from_str(&secs.to_string()) {
        r.headers_mut().insert(header::RETRY_AFTER, v);
    }
    r
}

/// Runs before every handler: the Host header (on loopback), the origin of POSTs, and
/// the security headers of every answer.
async fn guard(State(st): State<St>, req: Request<Body>, next: axum::middleware::Next) -> Response {
    let headers = req.headers();
    let host = headers
        .get(header::HOST)
        .and_then(|h| h.to_str().ok())
        .unwrap_or("");
    if !st.opts.public && !st.hosts.iter().any(|h| h.eq_ignore_ascii_case(host)) {
        // A DNS-rebinding page reaches us under its own name: refuse it.
        return secure(error(&ApiError::new(
            421,
            "bad-host",
            "the Host header does not name this server (open it as http://127.0.0.1:PORT/)",
        )));
    }
    if req.method() == Method::POST {
        if let Some(site) = headers.get("sec-fetch-site").and_then(|v| v.to_str().ok()) {
            if !matches!(site, "same-origin" | "none") {
                return secure(error(&ApiError::new(
                    403,
                    "csrf",
                    "cross-site request refused",
                )));
            }
        }
        if let Some(origin) = headers.get(header::ORIGIN).and_then(|v| v.to_str().ok()) {
            if origin != format!("http://{host}") && origin != format!("https://{host}") {
                return secure(error(&ApiError::new(
                    403,
                    "csrf",
                    "request from another origin refused",
                )));
            }
        }
    }
    secure(next.run(req).await)
}

fn secure(mut r: Response) -> Response {
    let h = r.headers_mut();
    h.insert(
        "x-content-type-options",
        HeaderValue::from_static("nosniff"),
    );
    h.insert("referrer-policy", HeaderValue::from_static("no-referrer"));
    h.insert("x-frame-options", HeaderValue::from_static("DENY"));
    h.entry(header::CACHE_CONTROL)
        .or_insert(HeaderValue::from_static("no-store"));
    h.entry(header::CONTENT_SECURITY_POLICY)
        .or_insert(HeaderValue::from_static(
            "default-src 'none'; frame-ancestors 'none'",
        ));
    r
}

fn cookie(headers: &HeaderMap, name: &str) -> Option<String> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|kv| kv.trim().split_once('='))
        .find(|(k, _)| *k == name)
        .map(|(_, v)| v.to_owned())
}

fn csrf_refused() -> Response {
    error(&ApiError::new(
        403,
        "csrf",
        "missing or wrong CSRF token (reload the page)",
    ))
}

fn csrf_ok(headers: &HeaderMap, sent: Option<&str>) -> bool {
    match (cookie(headers, CSRF_COOKIE), sent) {
        (Some(c), Some(s)) => safety::tokens_match(&c, s),
        _ => false,
    }
}

async fn page(State(st): State<St>) -> Response {
    let Some(token) = safety::new_token() else {
        return error(&ApiError::new(
            500,
            "internal",
            "no random numbers for the CSRF token",
        ));
    };
    let mut providers = html::Html::new();
    for p in crate::diagnosis::providers::all() {
        providers
            .raw("<option value=\"")
            .text(&p.name)
            .raw("\">")
            .text(&p.display_name)
            .raw("</option>");
    }
    let mut demos = html::Html::new();
    for s in &st.demos {
        demos
            .raw("<li><button type=\"button\" class=\"demo\" data-demo=\"")
            .text(&s.name)
            .raw("\"><code>")
            .text(&s.name)
            .raw("</code></button> <span>")
            .text(&s.story)
            .raw("</span> <code class=\"expect\">")
            .text(&s.expect.1)
            .raw("</code></li>");
    }
    let body = PAGE
        .replace("<!--CSRF-->", &token)
        .replace("<!--PROVIDERS-->", &providers.finish())
        .replace("<!--DEMOS-->", &demos.finish())
        .replace("<!--VERSION-->", env!("CARGO_PKG_VERSION"));
    let csp = format!(
        "default-src 'none'; script-src 'self'; style-src 'self' {}; connect-src 'self'; img-src 'self' data:; frame-src 'self'; form-action 'self'; base-uri 'none'; frame-ancestors 'none'",
        html::style_hash()
    );
    let mut r = ([(header::CONTENT_TYPE, "text/html; charset=utf-8")], body).into_response();
    let h = r.headers_mut();
    if let Ok(v) = HeaderValue::from_str(&csp) {
        h.insert(header::CONTENT_SECURITY_POLICY, v);
    }
    if let Ok(v) = HeaderValue::from_str(&format!(
        "{CSRF_COOKIE}={token}; Path=/; HttpOnly; SameSite=Strict"
    )) {
        h.insert(header::SET_COOKIE, v);
    }
    r
}

async fn healthz() -> Response {
    json(&serde_json::json!({"status": "ok", "version": env!("CARGO_PKG_VERSION")}))
}

async fn explain(Path(code): Path<String>) -> Response {
    match crate::diagnosis::explain::explain(&code) {
        Ok(text) => {
            let mut v =
                serde_json::json!({ "query": crate::protocol::escape_str(&code), "text": text });
            if let (Some(info), Value::Object(m)) = (
                crate::diagnosis::codes::lookup(&code.to_ascii_lowercase()),
                &mut v,
            ) {
                m.insert("code".into(), info.code.as_str().into());
                m.insert("title".into(), info.title.into());
                m.insert("why".into(), info.why.into());
                m.insert("fix".into(), info.fix.into());
                m.insert("rfcs".into(), info.rfcs.into());
            }
            json(&v)
        }
        Err(e) => error(&ApiError::new(404, "unknown-code", e.to_string())),
    }
}

async fn demos(State(st): State<St>) -> Response {
    let list: Vec<Value> = st
        .demos
        .iter()
        .map(|s| {
            serde_json::json!({
                "name": s.name, "story": s.story,
                "expect": { "stage": s.expect.0, "code": s.expect.1 },
            })
        })
        .collect();
    json(&Value::Array(list))
}

/// Reads the body, at most [`MAX_BODY`] bytes within [`BODY_TIMEOUT`].
async fn read_body(body: Body) -> Result<axum::body::Bytes, ApiError> {
    match tokio::time::timeout(BODY_TIMEOUT, axum::body::to_bytes(body, MAX_BODY)).await {
        Err(_) => Err(ApiError::new(
            408,
            "body-timeout",
            "the request body did not arrive within 10 s",
        )),
        Ok(Err(_)) => Err(ApiError::new(
            413,
            "body-too-large",
            format!("the request body is larger than {MAX_BODY} bytes (or broken)"),
        )),
        Ok(Ok(b)) => Ok(b),
    }
}

/// The rate limit and the concurrency bound, in that order. A refusal carries its
/// `Retry-After` seconds.
fn admit(
    st: &AppState,
    peer: Option<Peer>,
) -> Result<tokio::sync::OwnedSemaphorePermit, (ApiError, u64)> {
    let client = peer.map_or(IpAddr::from([0, 0, 0, 0]), |p| safety::client_key(p.0.ip()));
    if let Err(secs) = st.limiter.take(client, Instant::now()) {
        let e = ApiError::new(
            429,
            "rate-limited",
            format!(
                "too many checks from {client}: at most {} a minute; retry in {secs} s",
                st.opts.rate_per_minute
            ),
        );
        return Err((e, secs));
    }
    st.checks.clone().try_acquire_owned().map_err(|_| {
        let e = ApiError::new(
            503,
            "busy",
            format!(
                "{} checks are running, the most this server runs at once; retry shortly",
                st.opts.max_checks
            ),
        );
        (e, 1)
    })
}

fn wants_stream(headers: &HeaderMap, uri: &Uri) -> bool {
    uri.query().is_some_and(|q| {
        q.split('&')
            .any(|kv| kv == "stream=1" || kv == "stream=true")
    }) || headers
        .get(header::ACCEPT)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.contains("text/event-stream"))
}

fn content_type_is(headers: &HeaderMap, want: &str) -> bool {
    headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split(';').next())
        .is_some_and(|v| v.trim().eq_ignore_ascii_case(want))
}

async fn api_check(State(st): State<St>, req: Request<Body>) -> Response {
    let (parts, body) = req.into_parts();
    let peer = parts.extensions.get::<Peer>().copied();
    if !content_type_is(&parts.headers, "application/json") {
        return error(&ApiError::new(
            415,
            "unsupported-media-type",
            "send the request as Content-Type: application/json",
        ));
    }
    // A browser announces its origin; then the page's CSRF token must come along too.
    if parts.headers.contains_key(header::ORIGIN)
        && !csrf_ok(
            &parts.headers,
            parts.headers.get(CSRF_HEADER).and_then(|v| v.to_str().ok()),
        )
    {
        return csrf_refused();
    }
    let permit = match admit(&st, peer) {
        Ok(p) => p,
        Err((e, secs)) => return retry_after(error(&e), secs),
    };
    let map = match read_body(body)
        .await
        .and_then(|b| request::parse_json_body(&b))
    {
        Ok(m) => m,
        Err(e) => return error(&e),
    };
    let stream = wants_stream(&parts.headers, &parts.uri);
    if address::address_of(&map).is_some() {
        return api_address(st, permit, map, stream).await;
    }
    let config = match request::config_from_request(&map, st.opts.max_timeout) {
        Ok(c) => c,
        Err(e) => return error(&e),
    };
    let config = match vet(&st.opts, config).await {
        Ok(c) => c,
        Err(e) => return error(&e),
    };
    let deadline = overall_deadline(config.timeout);
    let job = move |observer: Option<Observer>| async move {
        let mut config = config;
        config.observer = observer;
        match tokio::time::timeout(deadline, crate::probe::check(config)).await {
            Ok(Ok(r)) => Ok((r, None)),
            Ok(Err(e)) => Err(ApiError::field("host", e.to_string())),
            Err(_) => Err(ApiError::new(
                504,
                "check-timeout",
                format!("the check did not finish within {} s", deadline.as_secs()),
            )),
        }
    };
    if stream {
        return event_stream(permit, None, job);
    }
    let result = job(None).await;
    drop(permit);
    match result {
        Ok((r, _)) => json(&r.to_json()),
        Err(e) => error(&e),
    }
}

/// `POST /api/v1/check` for an email address: the `check ADDRESS --json` document
/// (`{"discovery": …, "check": … or null}`), or the event stream with the discovery in
/// its `report` event (an `error` event `no-candidate` when nothing worked).
async fn api_address(
    st: St,
    permit: tokio::sync::OwnedSemaphorePermit,
    map: serde_json::Map<String, Value>,
    stream: bool,
) -> Response {
    if stream {
        return event_stream(permit, None, move |observer| async move {
            let found = address::check(&st.opts, map, observer).await?;
            let d = serde_json::to_value(&found.discovery).unwrap_or(Value::Null);
            match found.report {
                Some(r) => Ok((r, Some(d))),
                None => Err(address::nothing_found(&found.discovery)),
            }
        });
    }
    let result = address::check(&st.opts, map, None).await;
    drop(permit);
    match result {
        Ok(found) => json(&serde_json::json!({
            "discovery": found.discovery,
            "check": found.report.map(|r| r.to_json()),
        })),
        Err(e) => error(&e),
    }
}

/// Every wait has its own deadline; this bounds the sum (a second connection, many
/// replies) so a check never holds its slot for long.
fn overall_deadline(per_wait: Duration) -> Duration {
    (per_wait * 12).min(Duration::from_secs(300)) + Duration::from_secs(2)
}

/// Resolves the host, refuses internal addresses (unless `--allow-private`), and pins
/// the check to the first address that passed, so the probe never resolves again.
async fn vet(opts: &WebOptions, mut config: crate::Config) -> Result<crate::Config, ApiError> {
    config.extra_roots = opts.extra_roots.clone();
    config.allow_plaintext_auth = false;
    // A proxy (the server's ALL_PROXY) would resolve the host itself, past the vetting.
    config.proxy = None;
    let port = config.effective_port();
    config.dns_server = config.dns_server.or(opts.dns_server);
    let addrs = crate::transport::resolve_with_server(
        &config.host,
        port,
        None,
        crate::transport::IpVersion::Any,
        config.timeout,
        config.dns_server,
    )
    .await
    .map_err(|f| {
        let detail = match &f {
            crate::Failure::Dns { detail, .. } => detail.clone(),
            other => format!("{other:?}"),
        };
        ApiError {
            status: 422,
            code: "dns",
            message: format!(
                "cannot resolve {}: {}",
                crate::protocol::escape_str(&config.host),
                crate::protocol::escape_str(&detail)
            ),
            field: Some("host".into()),
        }
    })?;
    let mut refused = None;
    for a in &addrs {
        match safety::refusal(a.ip()) {
            Some(why) if !opts.allow_private => refused = refused.or(Some((a.ip(), why))),
            _ => {
                config.connect_to = Some(a.ip());
                return Ok(config);
            }
        }
    }
    let (ip, why) = refused.ok_or_else(|| ApiError::field("host", "the host has no address"))?;
    Err(ApiError {
        status: 403,
        code: "refused-address",
        message: format!(
            "{} resolves to {ip}, {why}: this server does not connect to loopback, private, link-local, multicast or cloud-metadata addresses (start it with --allow-private for a lab)",
            crate::protocol::escape_str(&config.host)
        ),
        field: Some("host".into()),
    })
}

/// The receiving end of an event stream, as the `Stream` axum's `Sse` wants.
struct Events(mpsc::UnboundedReceiver<Event>);

impl futures_core::Stream for Events {
    type Item = Result<Event, Infallible>;
    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        self.0.poll_recv(cx).map(|e| e.map(Ok))
    }
}

fn json_event(kind: &'static str, v: &Value) -> Event {
    Event::default().event(kind).data(v.to_string())
}

/// Runs `job` in its own task, streaming its lines and stages, then `report` (the JSON
/// document and the HTML report) or `error`. The check runs to its end (bounded by its
/// deadlines) even when the client goes away; `permit` is held until then.
fn event_stream<F, Fut>(
    permit: tokio::sync::OwnedSemaphorePermit,
    meta: Option<html::Meta>,
    job: F,
) -> Response
where
    F: FnOnce(Option<Observer>) -> Fut + Send + 'static,
    Fut: std::future::Future<Output = Result<(crate::Report, Option<Value>), ApiError>>
        + Send
        + 'static,
{
    let (tx, rx) = mpsc::unbounded_channel();
    let live = tx.clone();
    let observer = Observer(Arc::new(move |p: Progress<'_>| {
        let ev = match p {
            Progress::Line(e) => serde_json::to_value(e).map(|v| json_event("line", &v)),
            Progress::Stage(s) => serde_json::to_value(s).map(|v| json_event("stage", &v)),
        };
        if let Ok(ev) = ev {
            let _ = live.send(ev);
        }
    }));
    tokio::spawn(async move {
        let ev = match job(Some(observer)).await {
            Ok((report, discovery)) => {
                let page = html::report(&report, &meta.unwrap_or_default());
                let mut doc = serde_json::json!({ "report": report.to_json(), "html": page });
                if let Some(d) = discovery {
                    doc["discovery"] = d;
                }
                json_event("report", &doc)
            }
            Err(e) => json_event("error", &e.to_json()),
        };
        let _ = tx.send(ev);
        drop(permit);
    });
    Sse::new(Events(rx))
        .keep_alive(KeepAlive::default())
        .into_response()
}

async fn demo(State(st): State<St>, Path(name): Path<String>, req: Request<Body>) -> Response {
    let peer = req.extensions().get::<Peer>().copied();
    if !csrf_ok(
        req.headers(),
        req.headers().get(CSRF_HEADER).and_then(|v| v.to_str().ok()),
    ) {
        return csrf_refused();
    }
    let Some(s) = st.demos.iter().find(|s| s.name == name).cloned() else {
        return error(&ApiError::new(
            404,
            "unknown-demo",
            "no demo scenario by that name (GET /api/v1/demos lists them)",
        ));
    };
    let permit = match admit(&st, peer) {
        Ok(p) => p,
        Err((e, secs)) => return retry_after(error(&e), secs),
    };
    let meta = html::Meta {
        story: Some(format!("Demo {}: {}", s.name, s.story)),
        generated: None,
    };
    event_stream(permit, Some(meta), move |observer| async move {
        crate::app::demo::run_observed(&s, observer)
            .await
            .map(|o| (o.report, None))
            .map_err(|e| ApiError::new(500, "demo-failed", e.to_string()))
    })
}

/// The form without script: the same check, answered with the HTML report itself.
async fn form_check(State(st): State<St>, req: Request<Body>) -> Response {
    let (parts, body) = req.into_parts();
    let peer = parts.extensions.get::<Peer>().copied();
    let page_error = |e: &ApiError| {
        let mut h = html::Html::new();
        h.raw("<!DOCTYPE html><meta charset=\"utf-8\"><title>smtprobe: request refused</title><p>")
            .text(&e.message)
            .raw("</p><p><a href=\"/\">Back to the form</a></p>");
        let status = StatusCode::from_u16(e.status).unwrap_or(StatusCode::BAD_REQUEST);
        (
            status,
            [(header::CONTENT_TYPE, "text/html; charset=utf-8")],
            h.finish(),
        )
            .into_response()
    };
    if !content_type_is(&parts.headers, "application/x-www-form-urlencoded") {
        return page_error(&ApiError::new(
            415,
            "unsupported-media-type",
            "send the form URL-encoded",
        ));
    }
    let body = match read_body(body).await {
        Ok(b) => b,
        Err(e) => return page_error(&e),
    };
    let (map, csrf) = match request::form_to_map(&body) {
        Ok(m) => m,
        Err(e) => return page_error(&e),
    };
    if !csrf_ok(&parts.headers, csrf.as_deref()) {
        return page_error(&ApiError::new(
            403,
            "csrf",
            "missing or wrong CSRF token: reload the form and try again",
        ));
    }
    let permit = match admit(&st, peer) {
        Ok(p) => p,
        Err((e, secs)) => return retry_after(error(&e), secs),
    };
    let result = if address::address_of(&map).is_some() {
        match address::check(&st.opts, map, None).await {
            Ok(address::Found {
                report: Some(r), ..
            }) => Ok(Ok(r)),
            Ok(found) => return page_error(&address::nothing_found(&found.discovery)),
            Err(e) => return page_error(&e),
        }
    } else {
        let config = match request::config_from_request(&map, st.opts.max_timeout) {
            Ok(c) => c,
            Err(e) => return page_error(&e),
        };
        let config = match vet(&st.opts, config).await {
            Ok(c) => c,
            Err(e) => return page_error(&e),
        };
        let deadline = overall_deadline(config.timeout);
        tokio::time::timeout(deadline, crate::probe::check(config)).await
    };
    drop(permit);
    match result {
        Ok(Ok(report)) => {
            let mut r = (
                [(header::CONTENT_TYPE, "text/html; charset=utf-8")],
                html::report(&report, &Default::default()),
            )
                .into_response();
            // The report carries its own CSP meta; the header says the same.
            if let Ok(v) = HeaderValue::from_str(&format!(
                "default-src 'none'; style-src {}; img-src data:; base-uri 'none'; form-action 'none'; frame-ancestors 'none'",
                html::style_hash()
            )) {
                r.headers_mut().insert(header::CONTENT_SECURITY_POLICY, v);
            }
            r
        }
        Ok(Err(e)) => page_error(&ApiError::field("host", e.to_string())),
        Err(_) => page_error(&ApiError::new(
            504,
            "check-timeout",
            "the check did not finish in time",
        )),
    }
}
