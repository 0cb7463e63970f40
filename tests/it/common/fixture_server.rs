//! smtprobe's own scripted servers, written as fixtures (`fixtures/README.md`) and
//! played lock-step by the project's replay server (`smtprobe::replay`, strict mode):
//! one trace format for recorded sessions, bundled scenarios, hostile servers and test
//! expectations (DESIGN habit 7). A test writes the steps, optionally led by header
//! lines; [`fixture`] fills in the rest of the header.

use super::Seen;
use smtprobe::fixture::{Fixture, HEADER_KEYS};
use smtprobe::replay::{ClientTap, ReplayOptions, ReplayServer};
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// A fixture from a test's text: leading `# key: value` lines are header keys, the rest
/// are steps; each line is trimmed (indentation in a Rust string), so a trailing space
/// is written `\x20`. Missing keys: `name: test`, `host: localhost`, `port: 25`,
/// `expect: ok`, and `mode` from the steps (`* TLS` first: implicit; a `* TLS` or
/// `C: STARTTLS` later: starttls; else none). Panics with the fixture error (file:line
/// as in the text) when it does not parse: a test's script is wrong.
pub fn fixture(text: &str) -> Fixture {
    let mut lines: Vec<&str> = text.lines().map(str::trim).collect();
    while lines.first() == Some(&"") {
        lines.remove(0);
    }
    let given = lines
        .iter()
        .take_while(|l| {
            l.strip_prefix("# ")
                .and_then(|l| l.split_once(": "))
                .is_some_and(|(k, _)| HEADER_KEYS.contains(&k))
        })
        .count();
    let (head, steps) = lines.split_at(given);
    let has = |k: &str| head.iter().any(|l| l.starts_with(&format!("# {k}: ")));
    let first_step = steps
        .iter()
        .find(|l| !l.is_empty() && !l.starts_with("# "))
        .copied();
    let mode = if first_step == Some("* TLS") {
        "implicit"
    } else if steps
        .iter()
        .any(|l| *l == "* TLS" || l.eq_ignore_ascii_case("C: STARTTLS"))
    {
        "starttls"
    } else {
        "none"
    };
    let mut out: Vec<String> = head.iter().map(|l| l.to_string()).collect();
    for (k, v) in [
        ("name", "test"),
        ("story", "a scripted server in smtprobe's tests"),
        ("host", "localhost"),
        ("port", "25"),
        ("mode", mode),
        ("expect", "ok"),
    ] {
        if !has(k) {
            out.push(format!("# {k}: {v}"));
        }
    }
    out.push(String::new());
    out.extend(steps.iter().map(|l| l.to_string()));
    let text = out.join("\n") + "\n";
    Fixture::parse(&text).unwrap_or_else(|e| panic!("{e}\n{text}"))
}

/// A replay server on 127.0.0.1 playing `fixtures[i]` on the i-th connection, strict,
/// recording what the client sent.
pub struct FixtureServer {
    pub addr: SocketAddr,
    seen: Arc<Mutex<Seen>>,
    tap: ClientTap,
    /// The server's CA (PEM), for `--ca-file`.
    pub ca: PathBuf,
    /// The same CA (DER), for a library configuration's `extra_roots`.
    pub ca_der: rustls::pki_types::CertificateDer<'static>,
    _dir: tempfile::TempDir,
}

impl FixtureServer {
    /// Plays these fixture texts (see [`fixture`]), one per connection, with a 10 s
    /// read deadline.
    pub async fn start(texts: &[&str]) -> FixtureServer {
        FixtureServer::start_with(ReplayOptions::default(), texts).await
    }

    /// [`FixtureServer::start`] with options (`strict` is always set).
    pub async fn start_with(opts: ReplayOptions, texts: &[&str]) -> FixtureServer {
        FixtureServer::start_inner(opts, None, texts).await
    }

    /// [`FixtureServer::start`] presenting this TLS configuration (a server that
    /// demands a client certificate).
    pub async fn start_with_tls(
        config: Arc<rustls::ServerConfig>,
        texts: &[&str],
    ) -> FixtureServer {
        FixtureServer::start_inner(ReplayOptions::default(), Some(config), texts).await
    }

    async fn start_inner(
        opts: ReplayOptions,
        tls: Option<Arc<rustls::ServerConfig>>,
        texts: &[&str],
    ) -> FixtureServer {
        let fixtures: Vec<Fixture> = texts.iter().map(|t| fixture(t)).collect();
        let n = fixtures.len();
        let scenarios = smtprobe::replay::Scenarios::strict_sequence(fixtures).unwrap();
        let opts = ReplayOptions {
            strict: true,
            read_timeout: Duration::from_secs(10),
            ..opts
        };
        let tap = ClientTap::default();
        let server = ReplayServer::bind_scenarios(scenarios, "127.0.0.1:0".parse().unwrap(), opts)
            .await
            .unwrap()
            .with_tap(tap.clone());
        let server = match tls {
            Some(config) => server.with_tls_config(config),
            None => server,
        };
        let addr = server.local_addr().unwrap();
        let dir = tempfile::tempdir().unwrap();
        let ca = dir.path().join("ca.pem");
        std::fs::write(&ca, server.ca_pem()).unwrap();
        let ca_der = server.pki().ca_der();
        let seen = Arc::new(Mutex::new(Seen::default()));
        let seen2 = seen.clone();
        tokio::spawn(async move {
            let handler = Arc::new(server.handler());
            for _ in 0..n {
                let Ok(Ok((tcp, peer))) =
                    tokio::time::timeout(Duration::from_secs(60), server.accept()).await
                else {
                    return;
                };
                seen2.lock().unwrap().connections += 1;
                let seen3 = seen2.clone();
                let handler = handler.clone();
                tokio::spawn(async move {
                    let r = tokio::time::timeout(Duration::from_secs(30), handler(tcp, peer)).await;
                    let mut s = seen3.lock().unwrap();
                    s.ended += 1;
                    if let Ok(r) = r {
                        s.completed |= r.followed;
                        s.results.push(r.to_string());
                    }
                });
            }
        });
        FixtureServer {
            addr,
            seen,
            tap,
            ca,
            ca_der,
            _dir: dir,
        }
    }

    /// What the server saw so far.
    pub fn seen(&self) -> Seen {
        let mut s = self.seen.lock().unwrap().clone();
        let t = self.tap.get();
        s.lines = t.lines;
        s.body = t.body;
        s
    }

    /// What the server saw, once every accepted connection has ended (or after
    /// `limit`): the client may exit before the server has read its last bytes.
    pub async fn seen_when_ended(&self, limit: Duration) -> Seen {
        let until = tokio::time::Instant::now() + limit;
        loop {
            let seen = self.seen();
            if seen.ended >= seen.connections || tokio::time::Instant::now() >= until {
                return seen;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
}

impl super::Listening for FixtureServer {
    fn port(&self) -> u16 {
        self.addr.port()
    }
}

/// A Gmail-like STARTTLS conversation up to the `220` to STARTTLS (fixture steps).
pub const GMAIL_BEFORE_TLS: &str = "
    S: 220 smtp.gmail.com ESMTP t66sm6271302pjb.45 - gsmtp
    C: EHLO client.test
    S: 250-smtp.gmail.com at your service, [127.0.0.1]
    S: 250-SIZE 35882577
    S: 250-8BITMIME
    S: 250-STARTTLS
    S: 250-ENHANCEDSTATUSCODES
    S: 250-PIPELINING
    S: 250-CHUNKING
    S: 250 SMTPUTF8
    C: STARTTLS
    S: 220 2.0.0 Ready to start TLS
";

/// After [`GMAIL_BEFORE_TLS`]: the handshake and the second EHLO's reply.
pub const GMAIL_AFTER_TLS: &str = "
    * TLS
    C: EHLO client.test
    S: 250-smtp.gmail.com at your service, [127.0.0.1]
    S: 250-SIZE 35882577
    S: 250-8BITMIME
    S: 250-AUTH LOGIN PLAIN XOAUTH2 PLAIN-CLIENTTOKEN OAUTHBEARER XOAUTH
    S: 250-ENHANCEDSTATUSCODES
    S: 250-PIPELINING
    S: 250-CHUNKING
    S: 250 SMTPUTF8
";

/// A Gmail-like STARTTLS conversation up to the second EHLO's reply, then `rest`.
pub fn gmail_starttls(rest: &str) -> String {
    format!("{GMAIL_BEFORE_TLS}{GMAIL_AFTER_TLS}{rest}")
}

/// An implicit-TLS server that greets, offers AUTH PLAIN, and expects QUIT (a
/// credential-free check runs through it).
pub const IMPLICIT_GREETING_THEN_QUIT: &str = "
    * TLS
    S: 220 mx ESMTP
    C: EHLO {any}
    S: 250-mx
    S: 250 AUTH PLAIN
    C: QUIT
    S: 221 bye
";

/// An `S!:` step (raw bytes, no CRLF added) for these bytes: a TLS record, a partial
/// reply.
/// Long writes are split into several `S!:` lines (one write still: consecutive server
/// lines go out together), each within the fixture's line cap.
pub fn raw(bytes: &[u8]) -> String {
    use smtprobe::fixture::{step_text, Step};
    bytes
        .chunks(4096)
        .map(|c| step_text(&Step::Raw(smtprobe::protocol::escape::escape_bytes(c))) + "\n")
        .collect()
}

/// `S:` steps, one per line of `lines` (a multi-line reply as one text).
pub fn replies(lines: &str) -> String {
    lines
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .map(|l| format!("S: {l}\n"))
        .collect()
}
