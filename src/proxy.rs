//! Proxy clients: SOCKS5 (RFC 1928) with user/password (RFC 1929) and HTTP CONNECT
//! (RFC 9110 §9.3.6).
//!
//! [`Handshake`] is sans-IO like the session: bytes in, bytes out, no socket, no clock.
//! It says how many bytes it wants next ([`Handshake::wants`]) so the driver reads
//! exactly the proxy's reply and never a byte of the SMTP greeting that follows it on
//! the same stream. [`connect`] is the thin tokio driver, with a deadline on every wait.
//!
//! The destination name is sent to the proxy (SOCKS5 address type 3, like curl's
//! `socks5h://`; HTTP CONNECT always does): the proxy resolves it, as it must when the
//! client's network has no DNS of its own. Proxy credentials are secrets: they never
//! reach a transcript, an error or a `Debug` string.

use crate::protocol::escape_bytes;
use crate::secret::Secret;
use base64::engine::general_purpose::STANDARD as B64;
use base64::Engine as _;
use serde::Serialize;
use std::time::Duration;

/// Why the proxy handshake failed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
#[non_exhaustive]
pub enum ProxyFailureKind {
    /// The proxy itself could not be reached (refused, unreachable, no answer to connect).
    Unreachable,
    /// The proxy did not answer the handshake before the deadline.
    Timeout,
    /// The proxy answered with bytes that are not its protocol, or closed mid-handshake.
    Protocol,
    /// The proxy wants credentials, or refused the ones given (RFC 1929, HTTP 407).
    AuthFailed,
    /// The proxy could not or would not reach the destination.
    DestinationRefused,
}

/// A failed proxy handshake, with its evidence.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[non_exhaustive]
pub struct ProxyFailure {
    /// What went wrong.
    pub kind: ProxyFailureKind,
    /// The proxy, as `scheme://host:port` (never with its credentials).
    pub proxy: String,
    /// What the proxy said or did, escaped.
    pub detail: String,
}

/// The proxy protocol.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ProxyKind {
    /// SOCKS version 5 (RFC 1928).
    Socks5,
    /// HTTP CONNECT.
    Http,
}

/// `--proxy URL` parsed. No `Debug` derive: it can hold the proxy password.
#[derive(Clone)]
pub struct ProxyConfig {
    /// The protocol.
    pub kind: ProxyKind,
    /// The proxy host (name or address).
    pub host: String,
    /// The proxy port.
    pub port: u16,
    /// Proxy credentials (RFC 1929 user/password, HTTP Basic), when in the URL.
    pub credentials: Option<(String, Secret)>,
}

impl std::fmt::Debug for ProxyConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.shown())
    }
}

/// Why a proxy URL was refused. It never holds the URL: the URL may hold a password.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum ProxyUrlError {
    /// No `scheme://`.
    NoScheme,
    /// A scheme other than `socks5`, `socks5h` or `http`.
    UnsupportedScheme(String),
    /// Something after `host:port/`.
    HasPath,
    /// No `:port`.
    NoPort,
    /// The port is not a number from 1 to 65535.
    BadPort,
    /// The host is empty or has spaces or line breaks.
    BadHost,
    /// The user name (`password: false`) or password has a bad `%`-escape.
    BadEscape {
        /// Whether it is the password (else the user name).
        password: bool,
        /// What is wrong with the escape.
        why: PercentError,
    },
    /// A SOCKS5 user name or password over 255 bytes (RFC 1929 §2).
    CredentialsTooLong,
    /// The credentials contain CR or LF.
    LineBreak,
}

/// A bad `%`-escape in a URL's user information (RFC 3986 §2.1).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PercentError {
    /// `%` not followed by two hex digits.
    BadEscape,
    /// The decoded bytes are not UTF-8.
    NotUtf8,
}

impl std::fmt::Display for PercentError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            PercentError::BadEscape => "a bad %-escape",
            PercentError::NotUtf8 => "%-escapes that are not UTF-8",
        })
    }
}

impl std::error::Error for PercentError {}

impl std::fmt::Display for ProxyUrlError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ProxyUrlError::NoScheme => {
                f.write_str("expected scheme://host:port (socks5:// or http://)")
            }
            ProxyUrlError::UnsupportedScheme(s) => {
                write!(
                    f,
                    "scheme {s:?} is not supported (use socks5:// or http://)"
                )
            }
            ProxyUrlError::HasPath => f.write_str("a proxy URL has no path"),
            ProxyUrlError::NoPort => {
                f.write_str("the port is missing (socks5://host:1080, http://host:3128)")
            }
            ProxyUrlError::BadPort => f.write_str("the port is not a number from 1 to 65535"),
            ProxyUrlError::BadHost => f.write_str("the proxy host is empty or has spaces"),
            ProxyUrlError::BadEscape { password, why } => {
                let what = if *password { "password" } else { "user name" };
                write!(f, "the {what} has {why}")
            }
            ProxyUrlError::CredentialsTooLong => {
                f.write_str("SOCKS5 user names and passwords are at most 255 bytes")
            }
            ProxyUrlError::LineBreak => f.write_str("the credentials contain a line break"),
        }
    }
}

impl std::error::Error for ProxyUrlError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            ProxyUrlError::BadEscape { why, .. } => Some(why),
            _ => None,
        }
    }
}

fn percent_decode(s: &str) -> Result<String, PercentError> {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'%' {
            let hex = b
                .get(i + 1..i + 3)
                .and_then(|h| std::str::from_utf8(h).ok())
                .and_then(|h| u8::from_str_radix(h, 16).ok())
                .ok_or(PercentError::BadEscape)?;
            out.push(hex);
            i += 3;
        } else {
            out.push(b[i]);
            i += 1;
        }
    }
    String::from_utf8(out).map_err(|_| PercentError::NotUtf8)
}

impl ProxyConfig {
    /// Parses `socks5://[user:password@]host:port`, `socks5h://…` (the same: the name is
    /// always resolved by the proxy) or `http://[user:password@]host:port`. Errors never
    /// repeat the URL (it may hold a password).
    pub fn parse(url: &str) -> Result<ProxyConfig, ProxyUrlError> {
        let (scheme, rest) = url.split_once("://").ok_or(ProxyUrlError::NoScheme)?;
        let kind = match scheme.to_ascii_lowercase().as_str() {
            "socks5" | "socks5h" => ProxyKind::Socks5,
            "http" => ProxyKind::Http,
            other => return Err(ProxyUrlError::UnsupportedScheme(other.to_owned())),
        };
        let rest = rest.trim_end_matches('/');
        if rest.contains('/') {
            return Err(ProxyUrlError::HasPath);
        }
        let (userinfo, hostport) = match rest.rsplit_once('@') {
            Some((u, h)) => (Some(u), h),
            None => (None, rest),
        };
        let (host, port) = hostport.rsplit_once(':').ok_or(ProxyUrlError::NoPort)?;
        let host = host.trim_start_matches('[').trim_end_matches(']');
        let port: u16 = port
            .parse()
            .ok()
            .filter(|&p| p > 0)
            .ok_or(ProxyUrlError::BadPort)?;
        if host.is_empty() || host.contains(['\r', '\n', ' ']) {
            return Err(ProxyUrlError::BadHost);
        }
        let credentials = match userinfo {
            None => None,
            Some(u) => {
                let (user, pass) = u.split_once(':').unwrap_or((u, ""));
                let user = percent_decode(user).map_err(|why| ProxyUrlError::BadEscape {
                    password: false,
                    why,
                })?;
                let pass = percent_decode(pass).map_err(|why| ProxyUrlError::BadEscape {
                    password: true,
                    why,
                })?;
                // RFC 1929 §2: one length byte each.
                if kind == ProxyKind::Socks5 && (user.len() > 255 || pass.len() > 255) {
                    return Err(ProxyUrlError::CredentialsTooLong);
                }
                if user.contains(['\r', '\n']) || pass.contains(['\r', '\n']) {
                    return Err(ProxyUrlError::LineBreak);
                }
                Some((user, Secret::new(pass)))
            }
        };
        Ok(ProxyConfig {
            kind,
            host: host.to_owned(),
            port,
            credentials,
        })
    }

    /// `socks5://host:port` or `http://host:port`, without credentials.
    pub fn shown(&self) -> String {
        let scheme = match self.kind {
            ProxyKind::Socks5 => "socks5",
            ProxyKind::Http => "http",
        };
        if self.host.contains(':') {
            format!("{scheme}://[{}]:{}", self.host, self.port)
        } else {
            format!("{scheme}://{}:{}", self.host, self.port)
        }
    }
}

/// What the handshake asks of the driver after an input.
#[derive(PartialEq, Eq)]
pub enum HandshakeStep {
    /// Send these bytes (may hold proxy credentials: never log them), then read
    /// [`Handshake::wants`] bytes.
    Send(Vec<u8>),
    /// Read [`Handshake::wants`] more bytes.
    Read,
    /// The tunnel is open: the next byte on the stream is the destination's.
    Done(String),
    /// The proxy failed.
    Failed(ProxyFailureKind, String),
}

impl std::fmt::Debug for HandshakeStep {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            HandshakeStep::Send(b) => write!(f, "Send({} bytes)", b.len()),
            HandshakeStep::Read => f.write_str("Read"),
            HandshakeStep::Done(s) => write!(f, "Done({s:?})"),
            HandshakeStep::Failed(k, d) => write!(f, "Failed({k:?}, {d:?})"),
        }
    }
}

enum State {
    /// SOCKS5: method selection reply (2 bytes).
    SocksMethod,
    /// SOCKS5: RFC 1929 sub-negotiation reply (2 bytes).
    SocksAuth,
    /// SOCKS5: CONNECT reply head (VER REP RSV ATYP).
    SocksReplyHead,
    /// SOCKS5: the length byte of a domain-name bound address (ATYP 3).
    SocksReplyNameLen,
    /// SOCKS5: the bound address and port (length known from ATYP); REP was 0.
    SocksReplyTail,
    /// HTTP: the response head, byte by byte until CRLF CRLF.
    HttpHead,
    Over,
}

/// The most bytes an HTTP proxy's response head may have.
pub const MAX_HTTP_HEAD: usize = 16 * 1024;

/// One proxy handshake, sans-IO.
pub struct Handshake {
    state: State,
    credentials: Option<(String, Secret)>,
    dest_host: String,
    dest_port: u16,
    buf: Vec<u8>,
    want: usize,
}

impl Handshake {
    /// Starts a handshake to `dest_host:dest_port`; returns the first bytes to send.
    pub fn new(cfg: &ProxyConfig, dest_host: &str, dest_port: u16) -> (Handshake, Vec<u8>) {
        let mut h = Handshake {
            state: State::Over,
            credentials: cfg.credentials.clone(),
            dest_host: dest_host
                .trim_start_matches('[')
                .trim_end_matches(']')
                .to_owned(),
            dest_port,
            buf: Vec::new(),
            want: 0,
        };
        let first = match cfg.kind {
            ProxyKind::Socks5 => {
                h.state = State::SocksMethod;
                h.want = 2;
                // RFC 1928 §3: offer "no authentication" and, with credentials,
                // "username/password" (method 2).
                if h.credentials.is_some() {
                    vec![5, 2, 0, 2]
                } else {
                    vec![5, 1, 0]
                }
            }
            ProxyKind::Http => {
                h.state = State::HttpHead;
                h.want = 1;
                let target = if h.dest_host.contains(':') {
                    format!("[{}]:{}", h.dest_host, dest_port)
                } else {
                    format!("{}:{}", h.dest_host, dest_port)
                };
                let mut req = format!("CONNECT {target} HTTP/1.1\r\nHost: {target}\r\n");
                if let Some((u, p)) = &h.credentials {
                    let token = B64.encode(format!("{u}:{}", p.expose()));
                    req.push_str(&format!("Proxy-Authorization: Basic {token}\r\n"));
                }
                req.push_str("\r\n");
                req.into_bytes()
            }
        };
        (h, first)
    }

    /// How many bytes to read next (never more than the proxy's reply holds).
    pub fn wants(&self) -> usize {
        self.want.saturating_sub(self.buf.len())
    }

    /// The proxy closed the connection before the handshake ended.
    pub fn handle_eof(&mut self) -> HandshakeStep {
        let got = if self.buf.is_empty() {
            "the proxy closed the connection without answering".to_owned()
        } else {
            format!(
                "the proxy closed the connection after {}",
                escape_bytes(&self.buf)
            )
        };
        self.state = State::Over;
        HandshakeStep::Failed(ProxyFailureKind::Protocol, got)
    }

    /// Bytes arrived (at most [`Handshake::wants`]).
    pub fn handle_input(&mut self, bytes: &[u8]) -> HandshakeStep {
        self.buf.extend_from_slice(bytes);
        if self.buf.len() < self.want {
            return HandshakeStep::Read;
        }
        match std::mem::replace(&mut self.state, State::Over) {
            State::SocksMethod => self.socks_method(),
            State::SocksAuth => self.socks_auth(),
            State::SocksReplyHead => self.socks_reply_head(),
            State::SocksReplyNameLen => {
                let len = self.take()[0] as usize;
                self.state = State::SocksReplyTail;
                self.want = len + 2;
                HandshakeStep::Read
            }
            State::SocksReplyTail => HandshakeStep::Done(format!(
                "the SOCKS5 proxy connected to {}:{}",
                self.dest_host, self.dest_port
            )),
            State::HttpHead => self.http_head(),
            State::Over => {
                HandshakeStep::Failed(ProxyFailureKind::Protocol, "handshake over".into())
            }
        }
    }

    fn take(&mut self) -> Vec<u8> {
        std::mem::take(&mut self.buf)
    }

    fn garbage(&mut self, what: &str) -> HandshakeStep {
        let b = self.take();
        HandshakeStep::Failed(
            ProxyFailureKind::Protocol,
            format!("{what}: got {}", escape_bytes(&b)),
        )
    }

    fn socks_method(&mut self) -> HandshakeStep {
        let b = self.take();
        if b[0] != 5 {
            self.buf = b;
            return self.garbage("not a SOCKS5 reply (version byte is not 5)");
        }
        match (b[1], &self.credentials) {
            (0, _) => self.socks_connect(),
            (2, Some((user, pass))) => {
                // RFC 1929 §2: VER=1 ULEN UNAME PLEN PASSWD.
                let mut m = vec![1, user.len() as u8];
                m.extend_from_slice(user.as_bytes());
                m.push(pass.expose().len() as u8);
                m.extend_from_slice(pass.expose().as_bytes());
                self.state = State::SocksAuth;
                self.want = 2;
                HandshakeStep::Send(m)
            }
            (0xff, None) => HandshakeStep::Failed(
                ProxyFailureKind::AuthFailed,
                "the SOCKS5 proxy accepts none of the offered methods: it wants credentials (socks5://user:password@host:port)".into(),
            ),
            (0xff, Some(_)) => HandshakeStep::Failed(
                ProxyFailureKind::AuthFailed,
                "the SOCKS5 proxy accepts neither no-authentication nor user/password".into(),
            ),
            (m, _) => HandshakeStep::Failed(
                ProxyFailureKind::Protocol,
                format!("the SOCKS5 proxy chose method {m}, which was not offered"),
            ),
        }
    }

    fn socks_auth(&mut self) -> HandshakeStep {
        let b = self.take();
        if b[0] != 1 {
            self.buf = b;
            return self.garbage("not an RFC 1929 reply");
        }
        if b[1] != 0 {
            return HandshakeStep::Failed(
                ProxyFailureKind::AuthFailed,
                format!(
                    "the SOCKS5 proxy refused the user name and password (status {})",
                    b[1]
                ),
            );
        }
        self.socks_connect()
    }

    fn socks_connect(&mut self) -> HandshakeStep {
        // RFC 1928 §4: VER CMD=CONNECT RSV ATYP DST.ADDR DST.PORT.
        let mut m = vec![5, 1, 0];
        match self.dest_host.parse::<std::net::IpAddr>() {
            Ok(std::net::IpAddr::V4(a)) => {
                m.push(1);
                m.extend_from_slice(&a.octets());
            }
            Ok(std::net::IpAddr::V6(a)) => {
                m.push(4);
                m.extend_from_slice(&a.octets());
            }
            Err(_) if self.dest_host.len() <= 255 => {
                m.push(3);
                m.push(self.dest_host.len() as u8);
                m.extend_from_slice(self.dest_host.as_bytes());
            }
            Err(_) => {
                return HandshakeStep::Failed(
                    ProxyFailureKind::DestinationRefused,
                    "the host name is longer than SOCKS5 allows (255 bytes)".into(),
                )
            }
        }
        m.extend_from_slice(&self.dest_port.to_be_bytes());
        self.state = State::SocksReplyHead;
        self.want = 4;
        HandshakeStep::Send(m)
    }

    fn socks_reply_head(&mut self) -> HandshakeStep {
        let b = self.take();
        if b[0] != 5 || b[2] != 0 {
            self.buf = b;
            return self.garbage("not a SOCKS5 CONNECT reply");
        }
        // RFC 1928 §6 reply codes.
        let why = match b[1] {
            0 => None,
            1 => Some("general SOCKS server failure"),
            2 => Some("connection not allowed by ruleset"),
            3 => Some("network unreachable"),
            4 => Some("host unreachable"),
            5 => Some("connection refused by the destination"),
            6 => Some("TTL expired"),
            7 => Some("command not supported"),
            8 => Some("address type not supported"),
            _ => Some("an unassigned reply code"),
        };
        if let Some(why) = why {
            let kind = if matches!(b[1], 7 | 8) || b[1] > 8 {
                ProxyFailureKind::Protocol
            } else {
                ProxyFailureKind::DestinationRefused
            };
            return HandshakeStep::Failed(
                kind,
                format!(
                    "the SOCKS5 proxy answered {:02x} ({why}) for {}:{}",
                    b[1], self.dest_host, self.dest_port
                ),
            );
        }
        let tail = match b[3] {
            1 => 4 + 2,
            4 => 16 + 2,
            3 => {
                // The length byte comes first; read it, then the name and port.
                self.state = State::SocksReplyNameLen;
                self.want = 1;
                return HandshakeStep::Read;
            }
            _ => {
                self.buf = b;
                return self.garbage("a SOCKS5 reply with an unknown address type");
            }
        };
        self.state = State::SocksReplyTail;
        self.want = tail;
        HandshakeStep::Read
    }

    fn http_head(&mut self) -> HandshakeStep {
        if !self.buf.ends_with(b"\r\n\r\n") && !self.buf.ends_with(b"\n\n") {
            if self.buf.len() >= MAX_HTTP_HEAD {
                let n = self.buf.len();
                self.buf.truncate(200);
                return self.garbage(&format!(
                    "the HTTP proxy's response head exceeds {MAX_HTTP_HEAD} bytes ({n})"
                ));
            }
            if self.buf.len() >= 5 && !self.buf.starts_with(b"HTTP/") {
                return self.garbage("not an HTTP response");
            }
            self.state = State::HttpHead;
            self.want = self.buf.len() + 1;
            return HandshakeStep::Read;
        }
        let head = self.take();
        let status_line = head.split(|&b| b == b'\n').next().unwrap_or(&[]);
        let status_line = escape_bytes(status_line.strip_suffix(b"\r").unwrap_or(status_line));
        let code = status_line
            .split(' ')
            .nth(1)
            .and_then(|c| c.parse::<u16>().ok());
        match code {
            Some(200..=299) => {
                HandshakeStep::Done(format!("the HTTP proxy opened the tunnel: {status_line}"))
            }
            Some(407) => HandshakeStep::Failed(
                ProxyFailureKind::AuthFailed,
                format!(
                    "the HTTP proxy wants {}credentials: {status_line}",
                    if self.credentials.is_some() {
                        "other "
                    } else {
                        ""
                    }
                ),
            ),
            Some(_) => HandshakeStep::Failed(
                ProxyFailureKind::DestinationRefused,
                format!("the HTTP proxy refused CONNECT: {status_line}"),
            ),
            None => HandshakeStep::Failed(
                ProxyFailureKind::Protocol,
                format!("not an HTTP status line: {status_line}"),
            ),
        }
    }
}

/// Connects to the proxy and runs the handshake to `dest_host:dest_port`, every wait
/// bounded by `timeout`. On success, the stream is the tunnel and the text says so.
pub async fn connect(
    cfg: &ProxyConfig,
    dest_host: &str,
    dest_port: u16,
    timeout: Duration,
) -> Result<(tokio::net::TcpStream, String), ProxyFailure> {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let fail = |kind, detail: String| ProxyFailure {
        kind,
        proxy: cfg.shown(),
        detail,
    };
    let target = (cfg.host.as_str(), cfg.port);
    let addrs: Vec<std::net::SocketAddr> =
        match tokio::time::timeout(timeout, tokio::net::lookup_host(target)).await {
            Ok(Ok(a)) => a.collect(),
            Ok(Err(e)) => {
                return Err(fail(
                    ProxyFailureKind::Unreachable,
                    format!("cannot resolve the proxy host {}: {e}", cfg.host),
                ))
            }
            Err(_) => {
                return Err(fail(
                    ProxyFailureKind::Unreachable,
                    format!("no DNS answer for the proxy host {}", cfg.host),
                ))
            }
        };
    let mut last = format!("{} has no address", cfg.host);
    let mut stream = None;
    for addr in addrs {
        match tokio::time::timeout(timeout, tokio::net::TcpStream::connect(addr)).await {
            Ok(Ok(s)) => {
                stream = Some(s);
                break;
            }
            Ok(Err(e)) => last = format!("connect to the proxy at {addr} failed: {e}"),
            Err(_) => {
                last = format!(
                    "connect to the proxy at {addr}: no answer within {}s",
                    timeout.as_secs_f64()
                )
            }
        }
    }
    let Some(mut stream) = stream else {
        return Err(fail(ProxyFailureKind::Unreachable, last));
    };
    let _ = stream.set_nodelay(true);
    let (mut hs, first) = Handshake::new(cfg, dest_host, dest_port);
    let mut step = HandshakeStep::Send(first);
    let mut buf = vec![0u8; 512];
    loop {
        match step {
            HandshakeStep::Done(text) => return Ok((stream, text)),
            HandshakeStep::Failed(kind, detail) => return Err(fail(kind, detail)),
            HandshakeStep::Send(bytes) => {
                let w = tokio::time::timeout(timeout, stream.write_all(&bytes)).await;
                if !matches!(w, Ok(Ok(()))) {
                    return Err(fail(
                        ProxyFailureKind::Protocol,
                        "the proxy stopped reading the handshake".into(),
                    ));
                }
            }
            HandshakeStep::Read => {}
        }
        let n = hs.wants().min(buf.len());
        step = match tokio::time::timeout(timeout, stream.read(&mut buf[..n])).await {
            Err(_) => {
                return Err(fail(
                    ProxyFailureKind::Timeout,
                    format!(
                        "the proxy did not answer the handshake within {}s",
                        timeout.as_secs_f64()
                    ),
                ))
            }
            Ok(Ok(0)) | Ok(Err(_)) => hs.handle_eof(),
            Ok(Ok(got)) => hs.handle_input(&buf[..got]),
        };
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Feeds `reply` to the handshake `chunk` bytes at a time (never more than it
    /// wants), collecting what it sends; returns the final step.
    fn run(cfg: &ProxyConfig, replies: &[&[u8]], chunk: usize) -> (Vec<Vec<u8>>, HandshakeStep) {
        let (mut hs, first) = Handshake::new(cfg, "smtp.example.org", 587);
        let mut sent = vec![first];
        let input: Vec<u8> = replies.concat();
        let mut at = 0;
        loop {
            let n = hs.wants().min(chunk);
            if at >= input.len() {
                return (sent, hs.handle_eof());
            }
            let end = (at + n).min(input.len());
            let step = hs.handle_input(&input[at..end]);
            at = end;
            match step {
                HandshakeStep::Send(b) => sent.push(b),
                HandshakeStep::Read => {}
                HandshakeStep::Done(d) => {
                    assert_eq!(at, input.len(), "stopped before the end of the reply");
                    return (sent, HandshakeStep::Done(d));
                }
                other => return (sent, other),
            }
        }
    }

    #[test]
    fn socks5_with_user_password_and_remote_dns() {
        let cfg = ProxyConfig::parse("socks5://al%40ice:s3cr%3At@127.0.0.1:1080").unwrap();
        assert_eq!(cfg.shown(), "socks5://127.0.0.1:1080");
        assert!(!format!("{cfg:?}").contains("s3cr"));
        for chunk in [1, 2, 3, 100] {
            let reply: &[&[u8]] = &[&[5, 2], &[1, 0], &[5, 0, 0, 1, 127, 0, 0, 1, 0x1f, 0x90]];
            let (sent, step) = run(&cfg, reply, chunk);
            assert!(matches!(step, HandshakeStep::Done(_)), "{step:?}");
            assert_eq!(sent[0], [5, 2, 0, 2]);
            assert_eq!(sent[1], b"\x01\x06al@ice\x06s3cr:t".to_vec());
            let mut connect = vec![5, 1, 0, 3, 16];
            connect.extend_from_slice(b"smtp.example.org");
            connect.extend_from_slice(&587u16.to_be_bytes());
            assert_eq!(sent[2], connect);
        }
        // A domain-name bound address (ATYP 3) is consumed exactly.
        let reply: &[&[u8]] = &[&[5, 2], &[1, 0], &[5, 0, 0, 3, 2, b'h', b'x', 0, 25]];
        assert!(matches!(run(&cfg, reply, 1).1, HandshakeStep::Done(_)));
    }

    #[test]
    fn socks5_failures_are_typed() {
        let anon = ProxyConfig::parse("socks5://127.0.0.1:1080").unwrap();
        let with = ProxyConfig::parse("socks5://u:p@127.0.0.1:1080").unwrap();
        let kind = |cfg: &ProxyConfig, r: &[&[u8]]| match run(cfg, r, 7).1 {
            HandshakeStep::Failed(k, _) => k,
            other => panic!("{other:?}"),
        };
        assert_eq!(kind(&anon, &[&[5, 0xff]]), ProxyFailureKind::AuthFailed);
        assert_eq!(
            kind(&with, &[&[5, 2], &[1, 1]]),
            ProxyFailureKind::AuthFailed
        );
        assert_eq!(
            kind(&anon, &[&[5, 0], &[5, 5, 0, 1]]),
            ProxyFailureKind::DestinationRefused
        );
        assert_eq!(
            kind(&anon, &[&[5, 0], &[5, 2, 0, 1]]),
            ProxyFailureKind::DestinationRefused
        );
        assert_eq!(
            kind(&anon, &[b"HTTP/1.1 400 Bad"]),
            ProxyFailureKind::Protocol
        );
        assert_eq!(kind(&anon, &[b"22"]), ProxyFailureKind::Protocol);
        assert_eq!(kind(&anon, &[&[5, 2]]), ProxyFailureKind::Protocol);
        assert_eq!(kind(&anon, &[]), ProxyFailureKind::Protocol);
        assert_eq!(kind(&anon, &[&[5, 0], &[5, 0]]), ProxyFailureKind::Protocol);
    }

    #[test]
    fn http_connect_reads_exactly_the_head() {
        let cfg = ProxyConfig::parse("http://bob:pw@proxy.test:3128").unwrap();
        for chunk in [1, 4, 1000] {
            let (sent, step) = run(
                &cfg,
                &[b"HTTP/1.1 200 Connection established\r\nProxy-Agent: x\r\n\r\n"],
                chunk,
            );
            assert!(matches!(step, HandshakeStep::Done(_)), "{step:?}");
            assert_eq!(
                String::from_utf8(sent[0].clone()).unwrap(),
                "CONNECT smtp.example.org:587 HTTP/1.1\r\nHost: smtp.example.org:587\r\nProxy-Authorization: Basic Ym9iOnB3\r\n\r\n"
            );
        }
        let kind = |r: &[u8]| match run(&cfg, &[r], 3).1 {
            HandshakeStep::Failed(k, d) => (k, d),
            other => panic!("{other:?}"),
        };
        assert_eq!(
            kind(b"HTTP/1.1 407 Proxy Authentication Required\r\n\r\n").0,
            ProxyFailureKind::AuthFailed
        );
        let (k, d) = kind(b"HTTP/1.1 403 Filtered\r\n\r\n");
        assert_eq!(k, ProxyFailureKind::DestinationRefused);
        assert!(d.contains("403 Filtered"), "{d}");
        assert_eq!(kind(b"220 mx ESMTP\r\n").0, ProxyFailureKind::Protocol);
        assert_eq!(kind(b"HTTP/1.1 2").0, ProxyFailureKind::Protocol);
        let flood = format!("HTTP/1.1 200 OK\r\nX: {}", "a".repeat(MAX_HTTP_HEAD));
        assert_eq!(kind(flood.as_bytes()).0, ProxyFailureKind::Protocol);
    }

    #[test]
    fn bad_urls_are_refused_without_echoing_them() {
        let bad_escape = ProxyUrlError::BadEscape {
            password: true,
            why: PercentError::BadEscape,
        };
        for (url, want) in [
            (
                "socks4://h:1",
                ProxyUrlError::UnsupportedScheme("socks4".into()),
            ),
            ("h:1080", ProxyUrlError::NoScheme),
            ("socks5://h", ProxyUrlError::NoPort),
            ("socks5://h:0", ProxyUrlError::BadPort),
            ("socks5://h:99999", ProxyUrlError::BadPort),
            ("http://u:p%zz@h:1", bad_escape),
            ("http://h:1/path", ProxyUrlError::HasPath),
        ] {
            let e = ProxyConfig::parse(url).unwrap_err();
            assert_eq!(e, want, "{url}");
            assert!(!e.to_string().contains("p%zz"), "{e}");
        }
        let e = ProxyConfig::parse("http://u:p%zz@h:1").unwrap_err();
        assert_eq!(e.to_string(), "the password has a bad %-escape");
        // Neither the text nor the Debug form of an error carries the password.
        for url in [
            "socks5://u:s3cr%zzet@h:1",
            "socks5://u:s3cret@h",
            "socks5://u:s3cret@h:0",
            "socks5://u:s3cret@h:1/x",
            "ftp://u:s3cret@h:1",
        ] {
            let e = ProxyConfig::parse(url).unwrap_err();
            let both = format!("{e} {e:?}");
            assert!(!both.contains("s3cr"), "{url}: {both}");
        }
        let v6 = ProxyConfig::parse("socks5://[::1]:1080").unwrap();
        assert_eq!(
            (v6.host.as_str(), v6.shown()),
            ("::1", "socks5://[::1]:1080".into())
        );
    }
}
